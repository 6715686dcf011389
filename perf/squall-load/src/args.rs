//! The command line.

use std::path::PathBuf;

use lexopt::prelude::*;

use crate::config::{
    Config, Mode, Stop, Target, automatic_sources, parse_cpus, parse_duration, parse_rate,
    parse_sources,
};

/// The usage text.
pub const USAGE: &str = "\
squall-load: HTTP/1.1 and WebSocket load generator (glommio, one executor per core)

usage: squall-load [options] URL        (http://, https:// or ws://host:port/path)

  -c, --connections N    concurrent connections (subscribers in ws-subscribe) [50]
  -t, --threads N        executors, one per core [1]
      --cpus LIST        pin executor i to LIST[i % len], e.g. 1 or 0-3 [unpinned]
  -d, --duration D       measure for D (30s, 500ms, 2m) [10s]
  -n, --requests N       measure N requests (or messages) instead, split over connections
      --warmup D         load before measuring, excluded from the statistics [0s]
  -r, --rate R           open loop: R requests/s in aggregate (20000, 20k); latency counted
                         from each request's scheduled time [closed loop]
  -p, --pipeline N       requests (or messages) in flight per connection [1]
  -m, --method M         HTTP method [GET]
  -H, --header 'K: V'    extra request header (repeatable)
      --body TEXT        request body (method defaults to POST)
      --body-file PATH   request body from a file (method defaults to POST)
      --timeout D        no response for D with requests outstanding: timeout error [5s]
      --connect-timeout D  limit on one connect + WebSocket handshake [5s]
      --ramp R           open at most R connections per second, e.g. 1000/s [as fast as
                         they complete, 256 at a time per executor]
      --source-addrs A   source addresses, e.g. 127.0.0.2-127.0.0.9 (connection i uses
                         A[i % len]) [127.0.0.2-9 against loopback above 1000 connections]
      --mode M           http | ws-echo | ws-subscribe | ws-idle [http for http://, ws-echo
                         for ws://]
      --size N           ws-echo message size in bytes [32]
      --binary           ws-echo sends binary messages instead of text
      --grace D          ws-subscribe: keep reading late deliveries for D after the end [2s]
      --tls-resume       https: resume TLS sessions on reconnects [every connection is a
                         full handshake; certificates are not verified, signatures are]
      --json PATH        write the JSON report to PATH
  -q, --quiet            no progress line on stderr
  -h, --help             this text

In ws-subscribe, one extra connection publishes `seq=<n> t=<unix ns>` at --rate messages/s
(default 10) and every subscriber records delivery latency.

In ws-idle, the connections stay open and silent (pings are answered) for -d, or until
SIGTERM or SIGINT ends the hold early; once every connection has been tried, one line
`ready connections=N connected=K` goes to stdout, for scripts that measure the server
meanwhile. A connection the server closes during the hold is counted as lost (reset).
";

/// What the command line asks for.
pub enum Command {
    /// Run the load.
    Run(Box<Config>),
    /// Print the usage.
    Help,
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Command, String> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut url = None;
    let mut connections = None;
    let mut threads = None;
    let mut cpus = Vec::new();
    let mut stop = None;
    let mut warmup = None;
    let mut rate = None;
    let mut pipeline = None;
    let mut method: Option<String> = None;
    let mut headers = Vec::new();
    let mut body: Option<Vec<u8>> = None;
    let mut timeout = None;
    let mut connect_timeout = None;
    let mut ramp = None;
    let mut sources = None;
    let mut mode = None;
    let mut size = None;
    let mut binary = false;
    let mut grace = None;
    let mut json = None;
    let mut quiet = false;
    let mut tls_resume = false;
    let text = |value: Result<std::ffi::OsString, lexopt::Error>| -> Result<String, String> {
        value
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|v| format!("'{}' is not UTF-8", v.to_string_lossy()))
    };
    let number = |value: String| -> Result<usize, String> {
        value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("'{value}' is not a number"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('c') | Long("connections") => connections = Some(number(text(parser.value())?)?),
            Short('t') | Long("threads") => threads = Some(number(text(parser.value())?)?),
            Long("cpus") => cpus = parse_cpus(&text(parser.value())?)?,
            Short('d') | Long("duration") => {
                stop = Some(Stop::After(parse_duration(&text(parser.value())?)?))
            }
            Short('n') | Long("requests") => {
                stop = Some(Stop::Count(number(text(parser.value())?)? as u64))
            }
            Long("warmup") => warmup = Some(parse_duration(&text(parser.value())?)?),
            Short('r') | Long("rate") => rate = Some(parse_rate(&text(parser.value())?)?),
            Short('p') | Long("pipeline") => pipeline = Some(number(text(parser.value())?)?),
            Short('m') | Long("method") => method = Some(text(parser.value())?.to_uppercase()),
            Short('H') | Long("header") => {
                let header = text(parser.value())?;
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| format!("header '{header}' has no ':'"))?;
                let name = name.trim();
                if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(format!("header '{header}' has an invalid name"));
                }
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
            Long("body") => body = Some(text(parser.value())?.into_bytes()),
            Long("body-file") => {
                let path = PathBuf::from(parser.value().map_err(|e| e.to_string())?);
                body = Some(
                    std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                );
            }
            Long("timeout") => timeout = Some(parse_duration(&text(parser.value())?)?),
            Long("connect-timeout") => {
                connect_timeout = Some(parse_duration(&text(parser.value())?)?)
            }
            Long("ramp") => ramp = Some(parse_rate(&text(parser.value())?)?),
            Long("source-addrs") => sources = Some(parse_sources(&text(parser.value())?)?),
            Long("mode") => {
                mode = Some(match text(parser.value())?.as_str() {
                    "http" => Mode::Http,
                    "ws-echo" | "echo" => Mode::WsEcho,
                    "ws-subscribe" | "subscribe" => Mode::WsSubscribe,
                    "ws-idle" | "idle" => Mode::WsIdle,
                    other => return Err(format!("unknown mode '{other}'")),
                })
            }
            Long("size") => size = Some(number(text(parser.value())?)?),
            Long("binary") => binary = true,
            Long("grace") => grace = Some(parse_duration(&text(parser.value())?)?),
            Long("json") => json = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?)),
            Long("tls-resume") => tls_resume = true,
            Short('q') | Long("quiet") => quiet = true,
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(value) if url.is_none() => url = Some(text(Ok(value))?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let url = url.ok_or("no URL given (see --help)")?;
    let mut config = Config::new(Target::parse(&url)?);
    if let Some(mode) = mode {
        config.mode = mode;
    }
    config.connections = connections.unwrap_or(config.connections);
    config.threads = threads.unwrap_or(config.threads);
    config.cpus = cpus;
    config.stop = stop.unwrap_or(config.stop);
    config.warmup = warmup.unwrap_or(config.warmup);
    config.rate = rate;
    config.pipeline = pipeline.unwrap_or(config.pipeline);
    if let Some(body) = body {
        config.body = body;
        config.method = "POST".into();
    }
    if let Some(method) = method {
        config.method = method;
    }
    config.headers = headers;
    config.timeout = timeout.unwrap_or(config.timeout);
    config.connect_timeout = connect_timeout.unwrap_or(config.connect_timeout);
    config.ramp = ramp;
    config.sources = match sources {
        Some(sources) => sources,
        None => automatic_sources(&config.target, config.total_connections()),
    };
    config.message_size = size.unwrap_or(config.message_size);
    config.binary = binary;
    config.grace = grace.unwrap_or(config.grace);
    config.tls_resume = tls_resume;
    config.json = json;
    config.progress = !quiet;
    config.validate()?;
    Ok(Command::Run(Box::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &str) -> Result<Config, String> {
        match parse(args.split_whitespace().map(Into::into))? {
            Command::Run(config) => Ok(*config),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn a_full_command_line() {
        let config = run("-c 2000 -t 2 --cpus 1 -d 30s --warmup 2s -r 20k -p 4 \
                          -H X-A:1 --body hi --ramp 1000/s http://127.0.0.1:8080/echo")
        .expect("valid");
        assert_eq!(config.connections, 2000);
        assert_eq!(config.threads, 2);
        assert_eq!(config.cpus, [1]);
        assert_eq!(config.stop, Stop::After(Duration::from_secs(30)));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert_eq!(config.rate, Some(20_000.0));
        assert_eq!(config.pipeline, 4);
        assert_eq!(config.method, "POST");
        assert_eq!(config.headers, [("X-A".to_owned(), "1".to_owned())]);
        assert_eq!(config.ramp, Some(1000.0));
        // Above 1,000 connections to loopback, eight source addresses.
        assert_eq!(config.sources.len(), 8);
        assert!(config.progress);
    }

    #[test]
    fn modes_follow_the_scheme() {
        assert_eq!(
            run("ws://127.0.0.1:1/ws").expect("valid").mode,
            Mode::WsEcho
        );
        let config = run("--mode ws-subscribe -q ws://127.0.0.1:1/broadcast").expect("valid");
        assert_eq!(config.mode, Mode::WsSubscribe);
        assert_eq!(config.total_connections(), 51);
        assert!(run("--mode ws-echo http://127.0.0.1:1/").is_err());
        assert!(run("--mode ws-subscribe -n 10 ws://127.0.0.1:1/").is_err());
        let config = run("--mode ws-idle -c 3 -d 1m ws://127.0.0.1:1/ws").expect("valid");
        assert_eq!(config.mode, Mode::WsIdle);
        assert_eq!(config.total_connections(), 3);
        assert!(run("--mode ws-idle -n 10 ws://127.0.0.1:1/").is_err());
        assert!(run("--mode ws-idle -r 10 ws://127.0.0.1:1/").is_err());
        assert!(run("--mode ws-idle http://127.0.0.1:1/").is_err());
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(run("").is_err());
        assert!(run("-c 0 http://127.0.0.1:1/").is_err());
        assert!(run("-t 4 -c 2 http://127.0.0.1:1/").is_err());
        assert!(run("-H nocolon http://127.0.0.1:1/").is_err());
        assert!(run("--bogus http://127.0.0.1:1/").is_err());
        assert!(matches!(parse(["-h".into()]), Ok(Command::Help)));
    }
}
