"""Run kosoku's Autobahn cases against a WebSocket echo endpoint and hold the per-case
outcomes to the committed expectations. scripts/autobahn.sh owns the virtualenv and the
server and calls this with the virtualenv's Python; it needs nothing outside the standard
library except the `kosoku` command beside that interpreter.

An outcome is kosoku's verdict on the message exchange ("behavior": OK, NON-STRICT,
INFORMATIONAL, UNIMPLEMENTED, FAILED, ERROR), followed by its verdict on the closing
handshake only when that one is not acceptable, e.g. "OK (close: WRONG CODE)". A case
regresses when either verdict got worse than the expected file says, or when it is missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

# permessage-deflate (12.*, 13.*): squall does not negotiate compression.
EXCLUDED = ["12.*", "13.*"]
# The suite runs in two parts, each under its own time limit. The 9.* cases (large messages,
# many frames) wait for the echo 10, 100 or 1000 s (9.5.*, 9.6.*) before they give up, so a
# server that stops answering stalls them for a long time; the rest wait 1-2 s at most. Apart,
# a stall in 9.* costs only the 9.* verdicts, and the others are still compared.
PARTS = {
    "protocol": {"include": [], "exclude": ["9.*"]},
    "limits": {"include": ["9.*"], "exclude": []},
}

# Lower is better. INFORMATIONAL cases never yield OK, so they share NON-STRICT's rank.
BEHAVIOR_RANK = {
    "OK": 0,
    "NON-STRICT": 1,
    "INFORMATIONAL": 1,
    "UNIMPLEMENTED": 2,
    "NO_CLOSE": 3,
    "FAILED": 3,
    "ERROR": 4,
    "MISSING": 5,
}
CLOSE_RANK = {
    "OK": 0,
    "INFORMATIONAL": 0,
    "WRONG CODE": 1,
    "FAILED BY CLIENT": 1,
    "UNCLEAN": 2,
    "FAILED": 2,
}
MISSING = ("MISSING", "OK")
OUTCOME_RE = re.compile(r"^(?P<behavior>[A-Z_-]+)(?: \(close: (?P<close>[A-Z _]+)\))?$")

# A case that still looks worse is run again alone this many times before it counts: some
# verdicts depend on whether the echo of a good frame leaves before the server fails the
# connection on the next, bad one (3.*, 4.*), which is a race in some servers.
RETRIES = 2
# More regressions than this is a real breakage; retrying them only adds minutes.
MAX_RETRIED = 20

Outcome = tuple[str, str]  # (behavior, close)


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def case_key(case_id: str) -> list[int]:
    return [int(part) for part in case_id.split(".")]


def show(outcome: Outcome) -> str:
    behavior, close = outcome
    return behavior if CLOSE_RANK.get(close, 9) == 0 else f"{behavior} (close: {close})"


def parse(text: str, where: str) -> Outcome:
    match = OUTCOME_RE.match(text)
    behavior = match and match["behavior"]
    close = (match and match["close"]) or "OK"
    if behavior not in BEHAVIOR_RANK or close not in CLOSE_RANK:
        fail(f"{where}: unknown outcome {text!r}")
    return behavior, close


def rank(outcome: Outcome) -> tuple[int, int]:
    behavior, close = outcome
    return BEHAVIOR_RANK.get(behavior, 9), CLOSE_RANK.get(close, 9)


def worse(actual: Outcome, expected: Outcome) -> bool:
    (b, c), (eb, ec) = rank(actual), rank(expected)
    return b > eb or c > ec


def merge(a: Outcome, b: Outcome, pick) -> Outcome:
    """Per verdict, the better (pick=min) or worse (pick=max) of two outcomes."""
    behavior = pick((a[0], b[0]), key=lambda v: BEHAVIOR_RANK.get(v, 9))
    close = pick((a[1], b[1]), key=lambda v: CLOSE_RANK.get(v, 9))
    return behavior, close


def preflight(url: str) -> None:
    """Fail in one line, not with 300 ERROR verdicts, when the URL does not upgrade."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        fail(f"{url}: expected a ws://host:port/path URL")
    port = parts.port or 80
    path = parts.path or "/"
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((parts.hostname, port), timeout=5) as sock:
            sock.sendall(request)
            status = sock.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as e:
        fail(f"{url}: cannot connect: {e}")
    if not status.startswith("HTTP/1.1 101"):
        fail(f"{url}: the WebSocket handshake got {status or 'no answer'!r}, not 101")


def run_kosoku(args: argparse.Namespace, outdir: Path, include: list[str], exclude: list[str]):
    """One kosoku run; returns ({case id: outcome}, {case id: duration ms}), both empty when
    the run timed out (its cases then count as missing)."""
    kosoku = Path(sys.executable).with_name("kosoku")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    cmd = [str(kosoku), args.url, "-p", str(args.parallelism), "-o", str(outdir)]
    for glob in include:
        cmd += ["-i", glob]
    for glob in EXCLUDED + exclude:
        cmd += ["-x", glob]
    log_file = outdir / "kosoku.log"
    with open(log_file, "w") as out:
        try:
            # Exit status 1 only means some case did not pass; index.json tells which.
            subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(
                f"  TIMEOUT: kosoku ({outdir.name}) did not finish within {args.timeout:.0f} s "
                "(AUTOBAHN_TIMEOUT): the server stopped answering some case; its cases count as missing"
            )
            return {}, {}
    index = outdir / "index.json"
    if not index.exists():
        tail = log_file.read_text(errors="replace")[-2000:]
        fail(f"kosoku wrote no {index}; its output ends with:\n{tail}")
    outcomes: dict[str, Outcome] = {}
    durations: dict[str, int] = {}
    # Keyed by agent (the Server header, else host:port); one agent per run.
    for cases in json.loads(index.read_text()).values():
        for case_id, entry in cases.items():
            outcomes[case_id] = (entry["behavior"], entry["behaviorClose"])
            durations[case_id] = entry.get("duration", 0)
    return outcomes, durations


def read_expected(path: Path) -> dict[str, Outcome]:
    if not path.exists():
        fail(f"{path} does not exist; create it with --update")
    raw = json.loads(path.read_text())
    return {case_id: parse(text, f"{path}: {case_id}") for case_id, text in raw.items()}


def write_expected(path: Path, outcomes: dict[str, Outcome]) -> None:
    ordered = {k: show(outcomes[k]) for k in sorted(outcomes, key=case_key)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ordered, indent=2) + "\n")


def summarize(outcomes: dict[str, Outcome], durations: dict[str, int], url: str, seconds: float):
    counts = Counter(show(o) for o in outcomes.values())
    ranks = {show(o): rank(o) for o in outcomes.values()}
    print(f"autobahn: {len(outcomes)} cases against {url} in {seconds:.1f} s")
    for text, n in sorted(counts.items(), key=lambda kv: (ranks[kv[0]], kv[0])):
        print(f"  {text:<34} {n:>4}")
    slowest = sorted(durations.items(), key=lambda kv: -kv[1])[:5]
    if slowest:
        print("  slowest: " + ", ".join(f"{k} {ms} ms" for k, ms in slowest))


def update(args: argparse.Namespace) -> None:
    """Record the worst outcome of several runs, so that a racy case does not flap in CI."""
    outcomes: dict[str, Outcome] = {}
    for n in range(1, args.update_runs + 1):
        log(f"kosoku run {n} of {args.update_runs} against {args.url}")
        got, complete = run_and_summarize(args)
        if not complete:
            fail(f"a kosoku run timed out; {args.expected} is left as it was")
        for case_id in outcomes.keys() | got.keys():
            seen = [o for o in (outcomes.get(case_id), got.get(case_id, MISSING)) if o]
            outcomes[case_id] = seen[0] if len(seen) == 1 else merge(*seen, max)
    write_expected(args.expected, outcomes)
    print(f"autobahn: wrote {args.expected} ({len(outcomes)} cases, worst of {args.update_runs} runs)")


def check(args: argparse.Namespace) -> None:
    expected = read_expected(args.expected)
    log(f"kosoku against {args.url}")
    outcomes, _ = run_and_summarize(args)
    for case_id in expected.keys() - outcomes.keys():
        outcomes[case_id] = MISSING
    regressed = sorted((k for k in expected if worse(outcomes[k], expected[k])), key=case_key)
    first_seen = {k: outcomes[k] for k in regressed}

    # A case the run did not report at all is one kosoku does not know: nothing to retry.
    retry = [k for k in regressed if outcomes[k] != MISSING]
    if len(retry) > MAX_RETRIED:
        log(f"{len(retry)} cases got worse: too many to be races, not retrying them")
        retry = []
    for attempt in range(1, RETRIES + 1):
        if not retry:
            break
        log(f"retry {attempt} of {RETRIES}: {' '.join(retry)}")
        got, _ = run_kosoku(args, args.outdir / f"retry{attempt}", retry, [])
        for case_id, outcome in got.items():
            outcomes[case_id] = merge(outcomes[case_id], outcome, min)
        retry = [k for k in retry if worse(outcomes[k], expected[k])]
    regressed = [k for k in regressed if worse(outcomes[k], expected[k])]

    for case_id in sorted(first_seen.keys() - set(regressed), key=case_key):
        print(
            f"  flaky: {case_id} was {show(first_seen[case_id])}, then "
            f"{show(outcomes[case_id])} on a retry (expected {show(expected[case_id])})"
        )
    better = [k for k in expected if worse(expected[k], outcomes[k]) and not worse(outcomes[k], expected[k])]
    for case_id in sorted(better, key=case_key):
        print(f"  better: {case_id} is {show(outcomes[case_id])}, expected {show(expected[case_id])}")
    if better:
        print("  (scripts/autobahn.sh --update records lasting improvements: it keeps the worst of 3 runs)")
    for case_id in sorted(outcomes.keys() - expected.keys(), key=case_key):
        print(f"  new: {case_id} is {show(outcomes[case_id])} and not in {args.expected}")
    for case_id in regressed:
        print(f"  REGRESSION: {case_id} is {show(outcomes[case_id])}, expected {show(expected[case_id])}")
    if regressed:
        print(f"  per-case details: {args.outdir / 'report'}/*/index.html")
    print(f"autobahn: {len(expected) - len(regressed)} passed, {len(regressed)} failed")
    if regressed:
        raise SystemExit(1)


def run_and_summarize(args: argparse.Namespace) -> tuple[dict[str, Outcome], bool]:
    """The whole suite, part by part; reports land in OUTDIR/report/PART/. Returns the outcomes
    and whether every part finished in time."""
    started = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    durations: dict[str, int] = {}
    complete = True
    for part, globs in PARTS.items():
        got, took = run_kosoku(args, args.outdir / "report" / part, globs["include"], globs["exclude"])
        complete = complete and bool(got)
        outcomes.update(got)
        durations.update(took)
    summarize(outcomes, durations, args.url, time.monotonic() - started)
    return outcomes, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://host:port/path of an echo endpoint")
    parser.add_argument("--expected", type=Path, required=True)
    parser.add_argument("--outdir", type=Path, required=True, help="kosoku's reports go here")
    parser.add_argument("--update", action="store_true", help="rewrite the expected file")
    parser.add_argument("--update-runs", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120, help="seconds per kosoku run")
    args = parser.parse_args()
    # Progress goes to stderr, results to stdout; line buffering keeps them in order in a CI log.
    sys.stdout.reconfigure(line_buffering=True)
    preflight(args.url)
    if args.update:
        update(args)
    else:
        check(args)


if __name__ == "__main__":
    main()
