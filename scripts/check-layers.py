#!/usr/bin/env python3
"""Fails when a module of src/ depends on one it must not (the layout in src/lib.rs).

Reads every `crate::<module>` path in src/ (use lines and inline paths, outside comments),
builds the graph between top-level modules, and checks it against the rules below and for
cycles. Run by scripts/test.sh:

    python3 scripts/check-layers.py            # exit 1 and one line per violation
    python3 scripts/check-layers.py --graph    # also print the graph
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

TOOLKIT = {"auth", "signed", "xsrf", "cors", "i18n", "files", "compress", "multipart", "rpc", "metrics"}
ASYNC = {"deadline", "per_core", "net", "server", "dispatch", "ws", "hub", "db", "cores", "tasks",
         "testing", "future", "body"}

# (who, which it must not use, why): `who` is a set of modules.
RULES = [
    ({"http"}, ASYNC | {"request", "response", "router", "handler", "middleware", "routes"},
     "the codec is pure: nothing async, nothing above it"),
    ({"net"}, None, "the socket layer uses only the OS"),
    ({"request", "router", "handler", "middleware"}, {"server", "net", "db"},
     "the application layer never sees sockets, the server or the data layer"),
    ({"request"}, {"auth", "signed", "xsrf", "i18n"}, "Request knows nothing of the toolkit"),
    ({"db"}, {"http", "request", "router", "ws", "server"}, "the data layer knows no HTTP"),
    ({"ws"}, {"db"}, "the WebSocket protocol does not depend on the data layer"),
    (TOOLKIT, {"server", "net"}, "the toolkit never sees sockets or the server"),
]

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs") if len(rel.parts) > 1 else rel.stem


def code_of(text: str) -> str:
    """The text without its unit tests, comments and string literals (docs name modules
    freely, and tests may use the test client)."""
    text = text.split("#[cfg(test)]\nmod tests")[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def graph() -> dict:
    edges: dict = {}
    for path in sorted(SRC.rglob("*.rs")):
        module = module_of(path)
        if module == "lib":
            continue
        code = code_of(path.read_text())
        used = set(PATH.findall(code))
        for group in USE_GROUP.findall(code):
            used |= {item.strip().split("::")[0] for item in group.split(",") if item.strip()}
        used.discard(module)
        # `crate::Error` and friends are lib.rs re-exports: resolve the common ones.
        used = {m for m in used if m[0].islower()}
        edges.setdefault(module, set()).update(used)
    return edges


def cycles(edges: dict) -> list:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def main() -> int:
    edges = graph()
    problems = []
    for who, forbidden, why in RULES:
        for module in sorted(who):
            for used in sorted(edges.get(module, ())):
                if forbidden is None or used in forbidden:
                    problems.append(f"{module} uses {used}: {why}")
    for module, used in sorted(edges.items()):
        if "server" in used:
            problems.append(f"{module} uses server: only lib.rs may")
    for cycle in cycles(edges):
        problems.append("import cycle: " + " -> ".join(cycle))
    if "--graph" in sys.argv:
        for module, used in sorted(edges.items()):
            print(f"{module}: {', '.join(sorted(used))}")
    for problem in problems:
        print(f"layering: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
