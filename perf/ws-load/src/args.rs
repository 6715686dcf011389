//! Command line: one subcommand, then its options.

use std::time::Duration;

use lexopt::prelude::*;

pub const USAGE: &str = "\
ws-load: WebSocket load client for squall's benchmarks

Usage:
  ws-load echo --url ws://HOST:PORT/ws --connections N --duration SECS --size BYTES
               [--binary] [--pipeline K]
  ws-load idle --url ws://HOST:PORT/ws --connections N [--hold SECS]
  ws-load broadcast --url ws://HOST:PORT/broadcast --subscribers N --rate R --duration SECS
               [--settle SECS] [--grace SECS]

Subcommands:
  echo       every connection sends a message, waits for its echo and repeats
             (closed loop, K messages in flight per connection with --pipeline K);
             prints `echo messages=.. rate=.. p50_us=.. p99_us=.. max_us=.. errors=..`
  idle       opens N connections and keeps them open without traffic; prints
             `idle ready connections=N failed=F` once all are open, then holds them
             until --hold expires, SIGTERM/SIGINT, or (without --hold) a line or
             end of file on stdin; then closes them cleanly and prints `idle done ..`
  broadcast  N subscribers and one publisher on the same URL; the publisher sends R
             text messages a second (`seq=<n> t=<unix ns>`) for SECS, each subscriber
             must receive every one; prints delivery counts, missing messages and
             latency (receive time - t)

Options for every subcommand:
  --url URL              ws://host:port/path (plain ws only)
  --threads N            tokio worker threads; 1 (default) is a current-thread runtime
  --concurrency N        handshakes in flight while connecting (default 256)
  --connect-timeout SECS per connection, TCP connect and handshake (default 10)
  --per-address N        connections per client source address when the server is on
                         127.0.0.0/8: 127.0.0.2, 127.0.0.3, ... (default 20000); 0 lets
                         the kernel choose (127.0.0.1 only, ~28k ports at most)

echo:
  --connections N   (default 64)      --duration SECS (default 10)
  --size BYTES      (default 32)      --binary        binary messages instead of text
  --pipeline K      (default 1)

idle:
  --connections N   (required)        --hold SECS     hold this long, ignore stdin

broadcast:
  --subscribers N   (required)        --rate R        messages per second (default 10)
  --duration SECS   (default 10)      --settle SECS   pause between the last subscriber
                                                      joining and the first message (default 1)
  --grace SECS      wait for stragglers after the last message (default 3)

Durations accept fractions (0.5). Exit status: 0 when every connection opened and
worked, 1 when some failed (the report still prints), 2 for a usage error.
";

#[derive(Debug, Clone)]
pub struct Common {
    pub url: String,
    pub threads: usize,
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub per_address: usize,
}

#[derive(Debug, Clone)]
pub struct Echo {
    pub connections: usize,
    pub duration: Duration,
    pub size: usize,
    pub binary: bool,
    pub pipeline: usize,
}

#[derive(Debug, Clone)]
pub struct Idle {
    pub connections: usize,
    pub hold: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Broadcast {
    pub subscribers: usize,
    pub rate: f64,
    pub duration: Duration,
    pub settle: Duration,
    pub grace: Duration,
}

#[derive(Debug, Clone)]
pub enum Command {
    Echo(Echo),
    Idle(Idle),
    Broadcast(Broadcast),
}

pub enum Parsed {
    Run(Common, Command),
    Help,
}

/// Parses the process arguments; the error is a message for the user.
pub fn parse() -> Result<Parsed, String> {
    parse_from(std::env::args_os().skip(1))
}

pub fn parse_from<I>(args: I) -> Result<Parsed, String>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    let mut p = lexopt::Parser::from_args(args);
    let sub = match p.next().map_err(|e| e.to_string())? {
        Some(Value(v)) => v.string().map_err(|e| e.to_string())?,
        Some(Short('h')) | Some(Long("help")) => return Ok(Parsed::Help),
        Some(other) => return Err(format!("expected a subcommand first, found {other:?}")),
        None => return Err("missing subcommand (echo, idle or broadcast)".to_owned()),
    };
    if !matches!(sub.as_str(), "echo" | "idle" | "broadcast") {
        return Err(format!(
            "unknown subcommand '{sub}' (echo, idle or broadcast)"
        ));
    }

    let mut url = None;
    let mut threads = 1usize;
    let mut concurrency = 256usize;
    let mut connect_timeout = Duration::from_secs(10);
    let mut per_address = 20_000usize;
    let mut connections = None;
    let mut duration = Duration::from_secs(10);
    let mut size = 32usize;
    let mut binary = false;
    let mut pipeline = 1usize;
    let mut hold = None;
    let mut subscribers = None;
    let mut rate = 10.0f64;
    let mut settle = Duration::from_secs(1);
    let mut grace = Duration::from_secs(3);

    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let name = match &arg {
            Long(name) => name.to_string(),
            Short('h') => return Ok(Parsed::Help),
            _ => return Err(arg.unexpected().to_string()),
        };
        // Options valid for this subcommand only.
        let allowed = match name.as_str() {
            "help" => return Ok(Parsed::Help),
            "url" | "threads" | "concurrency" | "connect-timeout" | "per-address" => true,
            "connections" => sub != "broadcast",
            "duration" => sub != "idle",
            "size" | "binary" | "pipeline" => sub == "echo",
            "hold" => sub == "idle",
            "subscribers" | "rate" | "settle" | "grace" => sub == "broadcast",
            _ => return Err(format!("unknown option --{name} (see --help)")),
        };
        if !allowed {
            return Err(format!("--{name} does not apply to '{sub}' (see --help)"));
        }
        match name.as_str() {
            "binary" => binary = true,
            "url" => url = Some(string(&mut p, &name)?),
            "threads" => threads = positive(&mut p, &name)?,
            "concurrency" => concurrency = positive(&mut p, &name)?,
            "connect-timeout" => connect_timeout = seconds(&mut p, &name)?,
            "per-address" => per_address = number(&mut p, &name)?,
            "connections" => connections = Some(positive(&mut p, &name)?),
            "duration" => duration = seconds(&mut p, &name)?,
            "size" => size = number(&mut p, &name)?,
            "pipeline" => pipeline = positive(&mut p, &name)?,
            "hold" => hold = Some(seconds(&mut p, &name)?),
            "subscribers" => subscribers = Some(positive(&mut p, &name)?),
            "rate" => {
                rate = number::<f64>(&mut p, &name)?;
                if !(rate > 0.0 && rate.is_finite()) {
                    return Err("--rate must be a positive number of messages per second".into());
                }
            }
            "settle" => settle = seconds(&mut p, &name)?,
            "grace" => grace = seconds(&mut p, &name)?,
            _ => unreachable!("every allowed option is handled"),
        }
    }

    let url = url.ok_or("--url is required (e.g. --url ws://127.0.0.1:8080/ws)")?;
    let common = Common {
        url,
        threads,
        concurrency,
        connect_timeout,
        per_address,
    };
    let command = match sub.as_str() {
        "echo" => Command::Echo(Echo {
            connections: connections.unwrap_or(64),
            duration,
            size,
            binary,
            pipeline,
        }),
        "idle" => Command::Idle(Idle {
            connections: connections.ok_or("idle needs --connections N")?,
            hold,
        }),
        _ => Command::Broadcast(Broadcast {
            subscribers: subscribers.ok_or("broadcast needs --subscribers N")?,
            rate,
            duration,
            settle,
            grace,
        }),
    };
    Ok(Parsed::Run(common, command))
}

fn string(p: &mut lexopt::Parser, name: &str) -> Result<String, String> {
    p.value()
        .map_err(|e| format!("--{name}: {e}"))?
        .string()
        .map_err(|e| format!("--{name}: {e}"))
}

fn number<T>(p: &mut lexopt::Parser, name: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let v = string(p, name)?;
    v.parse()
        .map_err(|e| format!("--{name}: '{v}' is not a valid number ({e})"))
}

fn positive(p: &mut lexopt::Parser, name: &str) -> Result<usize, String> {
    match number::<usize>(p, name)? {
        0 => Err(format!("--{name} must be at least 1")),
        n => Ok(n),
    }
}

fn seconds(p: &mut lexopt::Parser, name: &str) -> Result<Duration, String> {
    let secs = number::<f64>(p, name)?;
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("--{name} must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<(Common, Command), String> {
        match parse_from(args.iter().copied())? {
            Parsed::Run(c, cmd) => Ok((c, cmd)),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn echo_defaults_and_options() {
        let (c, cmd) = run(&["echo", "--url", "ws://127.0.0.1:1/ws", "--pipeline", "4"]).unwrap();
        assert_eq!(c.url, "ws://127.0.0.1:1/ws");
        assert_eq!(c.concurrency, 256);
        let Command::Echo(e) = cmd else { panic!() };
        assert_eq!(
            (e.connections, e.size, e.pipeline, e.binary),
            (64, 32, 4, false)
        );
        assert_eq!(e.duration, Duration::from_secs(10));
    }

    #[test]
    fn rejects_misplaced_and_bad_options() {
        assert!(
            run(&[
                "idle",
                "--url",
                "ws://h:1/",
                "--connections",
                "3",
                "--size",
                "1"
            ])
            .unwrap_err()
            .contains("does not apply")
        );
        assert!(
            run(&["idle", "--url", "ws://h:1/"])
                .unwrap_err()
                .contains("--connections")
        );
        assert!(run(&["echo"]).unwrap_err().contains("--url"));
        assert!(run(&["echo", "--url", "u", "--connections", "0"]).is_err());
        assert!(run(&["echo", "--url", "u", "--duration", "-1"]).is_err());
        assert!(run(&["nope"]).unwrap_err().contains("unknown subcommand"));
        assert!(
            run(&[
                "broadcast",
                "--url",
                "u",
                "--subscribers",
                "2",
                "--rate",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn fractional_durations() {
        let (_, cmd) = run(&["idle", "--url", "u", "--connections", "2", "--hold", "0.5"]).unwrap();
        let Command::Idle(i) = cmd else { panic!() };
        assert_eq!(i.hold, Some(Duration::from_millis(500)));
    }
}
