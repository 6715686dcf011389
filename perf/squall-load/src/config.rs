//! What a run does: plain data, built by `args` from the command line (or directly by tests).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// What each connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 requests with keep-alive.
    Http,
    /// WebSocket messages echoed back by the server (round-trip latency).
    WsEcho,
    /// WebSocket subscribers of a broadcast topic, plus one publisher connection that sends
    /// timestamped messages (delivery latency).
    WsSubscribe,
    /// Open, silent WebSockets held for the duration (or until SIGTERM/SIGINT), for measuring
    /// what the server keeps per idle connection.
    WsIdle,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WsEcho => "ws-echo",
            Self::WsSubscribe => "ws-subscribe",
            Self::WsIdle => "ws-idle",
        }
    }
}

/// When the measurement ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (warm-up not included).
    After(Duration),
    /// After this many measured requests (or messages), split across connections.
    Count(u64),
}

/// The server, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// `http` or `ws` (also for `https`).
    pub scheme: &'static str,
    /// `https://`: TLS over the connection.
    pub tls: bool,
    /// The authority, for the Host header.
    pub host: String,
    /// The socket address connections go to.
    pub addr: SocketAddr,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port]/path`, `https://…` or `ws://…` and resolves the host.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            ("http", false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            ("http", true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            ("ws", false, rest)
        } else {
            return Err(format!(
                "the URL must start with http://, https:// or ws:// (got '{url}')"
            ));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("the URL '{url}' has no host"));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let host_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:{}", if tls { 443 } else { 80 })
        } else {
            authority.to_owned()
        };
        let addr = host_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{host_port}': {e}"))?
            .next()
            .ok_or_else(|| format!("'{host_port}' resolves to no address"))?;
        Ok(Target {
            url: url.to_owned(),
            scheme,
            tls,
            host: authority.to_owned(),
            addr,
            path,
        })
    }

    /// The target is on 127.0.0.0/8, where any 127.x.y.z works as a source address.
    pub fn is_loopback_v4(&self) -> bool {
        matches!(self.addr.ip(), IpAddr::V4(ip) if ip.is_loopback())
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to connect.
    pub target: Target,
    /// What the connections do.
    pub mode: Mode,
    /// Concurrent connections (subscribers in `WsSubscribe`, held ones in `WsIdle`), across
    /// all executors.
    pub connections: usize,
    /// Executors (threads), one per core.
    pub threads: usize,
    /// CPUs to pin executor *i* to (`cpus[i % len]`); empty leaves them unpinned.
    pub cpus: Vec<usize>,
    /// When the measurement ends.
    pub stop: Stop,
    /// Load before the measurement starts, excluded from the statistics.
    pub warmup: Duration,
    /// Aggregate open-loop rate (requests or messages per second); `None` is closed loop. In
    /// `WsSubscribe` the publisher's rate.
    pub rate: Option<f64>,
    /// Requests (or messages) in flight per connection.
    pub pipeline: usize,
    /// The HTTP method.
    pub method: String,
    /// Extra request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The request body (sent with Content-Length when not empty or when the method is POST/PUT).
    pub body: Vec<u8>,
    /// A connection with a request outstanding and no bytes for this long fails with a timeout.
    pub timeout: Duration,
    /// Limit on one TCP connect (plus WebSocket handshake).
    pub connect_timeout: Duration,
    /// Aggregate connections opened per second; `None` opens them as fast as they complete
    /// (at most `CONNECTS_IN_FLIGHT` at a time per executor).
    pub ramp: Option<f64>,
    /// Source addresses, connection *i* binds to `sources[i % len]`; empty lets the kernel choose.
    pub sources: Vec<Ipv4Addr>,
    /// WebSocket message payload size in bytes (echo mode).
    pub message_size: usize,
    /// Send binary WebSocket messages instead of text.
    pub binary: bool,
    /// After the end, how long subscribers keep reading late broadcast deliveries.
    pub grace: Duration,
    /// Offer TLS session tickets on reconnects (off: every connection is a full handshake).
    pub tls_resume: bool,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
}

impl Config {
    /// A closed-loop HTTP GET run against `target` with defaults for everything else.
    pub fn new(target: Target) -> Config {
        let mode = if target.scheme == "ws" {
            Mode::WsEcho
        } else {
            Mode::Http
        };
        Config {
            target,
            mode,
            connections: 50,
            threads: 1,
            cpus: Vec::new(),
            stop: Stop::After(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            rate: None,
            pipeline: 1,
            method: "GET".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            ramp: None,
            sources: Vec::new(),
            message_size: 32,
            binary: false,
            grace: Duration::from_secs(2),
            tls_resume: false,
            progress: false,
            json: None,
        }
    }

    /// Connections the run opens: the publisher is one more in `WsSubscribe`.
    pub fn total_connections(&self) -> usize {
        self.connections + usize::from(self.mode == Mode::WsSubscribe)
    }

    /// Checks the combination of settings; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if self.threads > self.connections {
            return Err(format!(
                "--threads {} is more than --connections {}",
                self.threads, self.connections
            ));
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number".into());
        }
        if let Some(ramp) = self.ramp
            && !(ramp.is_finite() && ramp > 0.0)
        {
            return Err("--ramp must be a positive number per second".into());
        }
        if self.mode != Mode::Http && self.target.scheme != "ws" {
            return Err(format!("mode {} needs a ws:// URL", self.mode.name()));
        }
        if self.mode == Mode::Http && self.target.scheme != "http" {
            return Err("mode http needs an http:// or https:// URL".into());
        }
        if self.target.tls {
            // The server name must be one TLS accepts; each executor builds its client later.
            crate::tls::Client::new(&self.target.host, self.tls_resume)?;
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("timeouts must be longer than zero".into());
        }
        if matches!(self.mode, Mode::WsSubscribe | Mode::WsIdle)
            && matches!(self.stop, Stop::Count(_))
        {
            return Err(format!(
                "{} runs for a duration (-d), not a count",
                self.mode.name()
            ));
        }
        if self.mode == Mode::WsIdle && self.rate.is_some() {
            return Err("ws-idle sends nothing: --rate does not apply".into());
        }
        if self.stop == Stop::Count(0) || self.stop == Stop::After(Duration::ZERO) {
            return Err("nothing to measure: -n and -d must be above zero".into());
        }
        Ok(())
    }
}

/// Parses `1.5s`, `200ms`, `2m`, `30` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (s, ms, us, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("'{text}' is out of range"))
}

/// Parses a rate: `1000`, `1000/s`, `20k`, `1.5k/s`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim().trim_end_matches("/s");
    let (number, scale) = match trimmed.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1e3),
        None => match trimmed.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1e6),
            None => (trimmed, 1.0),
        },
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a rate (try 20000, 20k, 1000/s)"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value * scale)
    } else {
        Err(format!("'{text}' must be a positive rate"))
    }
}

/// Parses source addresses: `127.0.0.2-127.0.0.9`, `127.0.0.2,127.0.0.5`, or one address.
pub fn parse_sources(text: &str) -> Result<Vec<Ipv4Addr>, String> {
    let mut sources = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("'{s}' is not an IPv4 address"))
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (u32::from(parse(first)?), u32::from(parse(last)?));
                if last < first || last - first > 65_535 {
                    return Err(format!("'{part}' is not a sensible address range"));
                }
                sources.extend((first..=last).map(Ipv4Addr::from));
            }
            None => sources.push(parse(part)?),
        }
    }
    if sources.is_empty() {
        return Err("--source-addrs names no address".into());
    }
    Ok(sources)
}

/// Parses a CPU list: `1`, `0-3`, `0,2`.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{s}' is not a CPU number"))
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (parse(first)?, parse(last)?);
                if last < first {
                    return Err(format!("'{part}' is an empty CPU range"));
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(parse(part)?),
        }
    }
    if cpus.is_empty() {
        return Err("--cpus names no CPU".into());
    }
    Ok(cpus)
}

/// The addresses used when none are given: against a loopback server with more connections
/// than fit comfortably in one source/destination pair's ~28k ephemeral ports, 127.0.0.2 to
/// 127.0.0.9 (eight addresses hold 100,000 connections from several processes with room to
/// spare).
pub fn automatic_sources(target: &Target, total_connections: usize) -> Vec<Ipv4Addr> {
    if target.is_loopback_v4() && total_connections > AUTO_SOURCES_ABOVE {
        (2..=9).map(|last| Ipv4Addr::new(127, 0, 0, last)).collect()
    } else {
        Vec::new()
    }
}

/// Connection count above which loopback runs spread over several source addresses.
pub const AUTO_SOURCES_ABOVE: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000/s"), Ok(1000.0));
        assert_eq!(parse_rate("20k"), Ok(20_000.0));
        assert_eq!(parse_rate("1.5k/s"), Ok(1500.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn sources_and_cpus() {
        let sources = parse_sources("127.0.0.2-127.0.0.4,127.0.1.1").expect("valid");
        assert_eq!(
            sources,
            [
                Ipv4Addr::new(127, 0, 0, 2),
                Ipv4Addr::new(127, 0, 0, 3),
                Ipv4Addr::new(127, 0, 0, 4),
                Ipv4Addr::new(127, 0, 1, 1)
            ]
        );
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
        assert_eq!(parse_cpus("1"), Ok(vec![1]));
        assert_eq!(parse_cpus("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_cpus("x").is_err());
    }

    #[test]
    fn targets() {
        let target = Target::parse("http://127.0.0.1:8080/plaintext?x=1").expect("valid");
        assert_eq!(target.host, "127.0.0.1:8080");
        assert_eq!(target.path, "/plaintext?x=1");
        assert_eq!(target.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert!(target.is_loopback_v4());
        let target = Target::parse("ws://127.0.0.1:9").expect("valid");
        assert_eq!((target.scheme, target.path.as_str()), ("ws", "/"));
        let target = Target::parse("https://127.0.0.1/").expect("valid");
        assert_eq!(
            (target.scheme, target.tls, target.addr.port()),
            ("http", true, 443)
        );
        assert!(Target::parse("wss://127.0.0.1/").is_err());
        assert!(Target::parse("http:///x").is_err());
        assert_eq!(automatic_sources(&target, 10).len(), 0);
        assert_eq!(automatic_sources(&target, 5000).len(), 8);
    }
}
