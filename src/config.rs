//! Server configuration: plain data with safe defaults, a builder, and the environment.
//!
//! Every knob of the server lives here: address, workers, limits, timeouts.
//! [`Config::from_env`] reads the variables below on top of the defaults; the builder methods
//! override either. The parts with settings of their own keep them beside their code:
//! [`PgConfig`](crate::db::postgres::PgConfig) (`DATABASE_URL`),
//! [`RedisConfig`](crate::db::redis::RedisConfig) (`REDIS_URL`) and
//! [`WsConfig`](crate::ws::WsConfig) (per WebSocket route).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SQUALL_ADDR` | listen address: `IP:port`, or `unix:/absolute/path` for a Unix socket ([`ListenAddr`]) | `127.0.0.1:8080` |
//! | `SQUALL_UNIX_MODE` | permissions of the Unix socket file, in octal | `660` |
//! | `SQUALL_WORKERS` | executors (one per core, pinned); set, the cpu quota is not read | the CPUs this process may use, at most its cgroup v2 `cpu.max` quota rounded up |
//! | `SQUALL_BACKLOG` | listen backlog per core | `4096` |
//! | `SQUALL_PORT_SHARING` | `exclusive`: refuse to start on a port another server listens on; `takeover`: start beside it, as the new half of a restart ([`PortSharing`]) | `exclusive` |
//! | `SQUALL_HANDOFF` | a Unix socket path: a server started with the path a running server listens on takes its listening sockets over, and the old one drains and exits — a restart that loses no connection ([`Config::handoff`]) | none |
//! | `SQUALL_ACCESS_LOG` | `1`/`true` logs every request through `tracing` | off |
//! | `SQUALL_SHUTDOWN_TIMEOUT` | graceful shutdown deadline | `30s` |
//! | `SQUALL_DRAIN_DELAY` | after a stop, how long to keep accepting and serving with `/readyz` at 503 before the graceful shutdown ([`health`](crate::health)) | `0s` |
//! | `SQUALL_TRUSTED_PROXIES` | comma-separated IPs/CIDRs allowed to set `X-Forwarded-For`; `unix` trusts every peer on the Unix socket | none |
//! | `SQUALL_MAX_HEAD_BYTES` | request line + headers (at most 65535) | `65535` |
//! | `SQUALL_MAX_HEADERS` | header count (at most 512) | `100` |
//! | `SQUALL_MAX_TARGET_BYTES` | request target | `16384` |
//! | `SQUALL_MAX_BODY_BYTES` | request body | `16777216` |
//! | `SQUALL_MAX_CHUNK_EXTENSION_BYTES` | extensions on one chunk-size line | `1024` |
//! | `SQUALL_MAX_TRAILER_BYTES` | trailer fields after a chunked body | `16384` |
//! | `SQUALL_HEADER_READ_TIMEOUT` | whole head, counted from its first byte | `10s` |
//! | `SQUALL_BODY_READ_TIMEOUT` | silence while a body is being read | `30s` |
//! | `SQUALL_KEEP_ALIVE_TIMEOUT` | idle time between requests | `60s` |
//! | `SQUALL_WRITE_TIMEOUT` | a peer that stops reading our output | `30s` |
//! | `SQUALL_MAX_CONNECTIONS_PER_CORE` | open connections per core | `25000` |
//! | `SQUALL_MAX_PENDING_OUTPUT` | buffered output before a connection stops reading | `1048576` |
//!
//! Durations take a unit: `250ms`, `10s`, `2m`; a bare number means seconds.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::error::Error;

/// The largest header count a server can be configured to accept; the parser's header table
/// lives on the stack, and this bounds it.
pub const MAX_HEADERS_CEILING: usize = 512;

/// The largest request head a server can be configured to accept (64 KiB − 1): offsets into a
/// head are 16-bit, which keeps parsed requests small.
pub const MAX_HEAD_CEILING: usize = u16::MAX as usize;

/// Bounds on what one peer may make the server hold or wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus header block, in bytes; over it → 431.
    pub max_head_bytes: usize,
    /// Header fields in one request; over it → 431.
    pub max_headers: usize,
    /// Request target, in bytes; over it → 414.
    pub max_target_bytes: usize,
    /// Request body, in bytes; over it → 413 as soon as it is known.
    pub max_body_bytes: u64,
    /// Chunk extensions on one chunk-size line, in bytes; over it → 400.
    pub max_chunk_extension_bytes: usize,
    /// The trailer section of a chunked body, in bytes; over it → 431.
    pub max_trailer_bytes: usize,
    /// Time allowed for a whole request head, from its first byte (not reset per byte).
    pub header_read_timeout: Duration,
    /// Longest silence while a request body is being read.
    pub body_read_timeout: Duration,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keep_alive_timeout: Duration,
    /// Longest a write may wait for a peer that does not read.
    pub write_timeout: Duration,
    /// Open connections per core; the core stops accepting at this count.
    pub max_connections_per_core: usize,
    /// Output buffered for one connection before it stops processing pipelined requests and
    /// waits for the peer to read.
    pub max_pending_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: MAX_HEAD_CEILING,
            max_headers: 100,
            max_target_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_chunk_extension_bytes: 1024,
            max_trailer_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections_per_core: 25_000,
            max_pending_output: 1024 * 1024,
        }
    }
}

/// Whether a server may start on a port another server already listens on.
///
/// Every core listens through its own `SO_REUSEPORT` socket, and the kernel would let a
/// second server join them and split the traffic between the two — an old instance left
/// running after a deploy would silently keep half the users. So a server refuses a port
/// that is already served unless it says it is the new half of a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortSharing {
    /// Startup fails with "address in use" when another socket listens on the address.
    #[default]
    Exclusive,
    /// Start beside the server already listening, sharing the port through `SO_REUSEPORT`
    /// (same user only), so that the old one can drain while this one takes new connections.
    /// On a Unix socket the new server binds beside the path and renames its socket over
    /// it, which sends new connections to it at once.
    Takeover,
}

/// Everything a server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen: a TCP address, which every core listens on through its own
    /// `SO_REUSEPORT` socket, or a Unix socket that every core shares.
    pub addr: ListenAddr,
    /// Permissions of the Unix socket file (with [`ListenAddr::Unix`]); see
    /// [`Config::unix_mode`].
    pub unix_mode: u32,
    /// Executors to run, each pinned to one CPU. `None` means one per CPU this process may
    /// use, but no more than its cgroup v2 CPU quota (`cpu.max`, rounded up to whole CPUs).
    pub workers: Option<usize>,
    /// Listen backlog of each core's socket.
    pub backlog: u32,
    /// Whether to start on a port another server already listens on.
    pub port_sharing: PortSharing,
    /// A Unix socket path through which a running server hands its listening sockets to
    /// the next process started with the same path, for restarts that lose no connection
    /// (see [`Config::handoff`]).
    pub handoff: Option<std::path::PathBuf>,
    /// Value of the `Server` header.
    pub server_name: String,
    /// Log one `tracing` event per request (target `squall::access`).
    pub access_log: bool,
    /// How long graceful shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// After a stop is asked for, how long every core keeps accepting and serving as before,
    /// with `/readyz` answering 503, before the graceful shutdown begins; zero begins it at
    /// once. See [`health`](crate::health).
    pub drain_delay: Duration,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Whether every peer on the Unix socket is a trusted proxy; see
    /// [`Config::trust_unix_peers`].
    pub trust_unix_peers: bool,
    /// Per-connection bounds.
    pub limits: Limits,
    /// Serve HTTPS with these certificates instead of plain HTTP.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 8080))),
            unix_mode: DEFAULT_UNIX_MODE,
            workers: None,
            backlog: 4096,
            port_sharing: PortSharing::Exclusive,
            handoff: None,
            server_name: "squall".to_owned(),
            access_log: false,
            shutdown_timeout: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            trusted_proxies: Vec::new(),
            trust_unix_peers: false,
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Config {
    /// The defaults, overridden by any `SQUALL_*` variable that is set.
    ///
    /// A variable that is set but cannot be parsed is an error naming it.
    pub fn from_env() -> Result<Config, Error> {
        Config::default().with_env_from(|name| std::env::var(name).ok())
    }

    /// Applies variables looked up by `lookup` (the environment, or a map in tests).
    pub fn with_env_from(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("SQUALL_ADDR") {
            self.addr = v.parse().map_err(|e| env_error("SQUALL_ADDR", &v, &e))?;
        }
        if let Some(v) = var("SQUALL_UNIX_MODE") {
            self.unix_mode = parse_mode(&v).map_err(|e| env_error("SQUALL_UNIX_MODE", &v, &e))?;
        }
        if let Some(v) = var("SQUALL_WORKERS") {
            self.workers = Some(parse_number("SQUALL_WORKERS", &v)?);
        }
        if let Some(v) = var("SQUALL_BACKLOG") {
            self.backlog = parse_number("SQUALL_BACKLOG", &v)?;
        }
        if let Some(v) = var("SQUALL_HANDOFF") {
            self.handoff = Some(v.trim().into());
        }
        if let Some(v) = var("SQUALL_PORT_SHARING") {
            self.port_sharing = match v.trim().to_ascii_lowercase().as_str() {
                "exclusive" => PortSharing::Exclusive,
                "takeover" => PortSharing::Takeover,
                _ => {
                    return Err(env_error(
                        "SQUALL_PORT_SHARING",
                        &v,
                        &"expected exclusive or takeover",
                    ))
                }
            };
        }
        if let Some(v) = var("SQUALL_ACCESS_LOG") {
            self.access_log = parse_bool("SQUALL_ACCESS_LOG", &v)?;
        }
        if let Some(v) = var("SQUALL_SHUTDOWN_TIMEOUT") {
            self.shutdown_timeout = parse_env_duration("SQUALL_SHUTDOWN_TIMEOUT", &v)?;
        }
        if let Some(v) = var("SQUALL_DRAIN_DELAY") {
            self.drain_delay = parse_env_duration("SQUALL_DRAIN_DELAY", &v)?;
        }
        if let Some(v) = var("SQUALL_TRUSTED_PROXIES") {
            let entries = v.split(',').map(str::trim).filter(|s| !s.is_empty());
            self.trust_unix_peers = entries.clone().any(|s| s.eq_ignore_ascii_case("unix"));
            self.trusted_proxies = entries
                .filter(|s| !s.eq_ignore_ascii_case("unix"))
                .map(|s| parse_net(s).map_err(|e| env_error("SQUALL_TRUSTED_PROXIES", s, &e)))
                .collect::<Result<_, _>>()?;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = crate::tls::TlsConfig::from_vars(var)? {
            self.tls = Some(tls);
        }
        #[cfg(not(feature = "tls"))]
        for name in ["SQUALL_TLS_CERT", "SQUALL_TLS_KEY", "SQUALL_TLS_CLIENT_CA"] {
            if var(name).is_some() {
                return Err(Error::config(format!(
                    "{name} is set, but this build has no TLS (the `tls` cargo feature is off)"
                )));
            }
        }
        let l = &mut self.limits;
        let sizes: [(&str, &mut usize); 7] = [
            ("SQUALL_MAX_HEAD_BYTES", &mut l.max_head_bytes),
            ("SQUALL_MAX_HEADERS", &mut l.max_headers),
            ("SQUALL_MAX_TARGET_BYTES", &mut l.max_target_bytes),
            (
                "SQUALL_MAX_CONNECTIONS_PER_CORE",
                &mut l.max_connections_per_core,
            ),
            ("SQUALL_MAX_PENDING_OUTPUT", &mut l.max_pending_output),
            (
                "SQUALL_MAX_CHUNK_EXTENSION_BYTES",
                &mut l.max_chunk_extension_bytes,
            ),
            ("SQUALL_MAX_TRAILER_BYTES", &mut l.max_trailer_bytes),
        ];
        for (name, slot) in sizes {
            if let Some(v) = var(name) {
                *slot = parse_number(name, &v)?;
            }
        }
        if let Some(v) = var("SQUALL_MAX_BODY_BYTES") {
            l.max_body_bytes = parse_number("SQUALL_MAX_BODY_BYTES", &v)?;
        }
        let durations: [(&str, &mut Duration); 4] = [
            ("SQUALL_HEADER_READ_TIMEOUT", &mut l.header_read_timeout),
            ("SQUALL_BODY_READ_TIMEOUT", &mut l.body_read_timeout),
            ("SQUALL_KEEP_ALIVE_TIMEOUT", &mut l.keep_alive_timeout),
            ("SQUALL_WRITE_TIMEOUT", &mut l.write_timeout),
        ];
        for (name, slot) in durations {
            if let Some(v) = var(name) {
                *slot = parse_env_duration(name, &v)?;
            }
        }
        Ok(self)
    }

    /// Sets the TCP listen address.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = ListenAddr::Tcp(addr);
        self
    }

    /// Listens on a Unix stream socket at `path` (absolute) instead of TCP; see
    /// [`ListenAddr`].
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.addr = ListenAddr::Unix(path.into());
        self
    }

    /// Sets the permissions of the Unix socket file (say `0o660`), applied when it is
    /// created. Connecting needs write permission, so the default, `0o660`, lets the
    /// server's user and group in (put the proxy in the group) and nobody else; the process
    /// umask is not consulted, so that the socket's reach does not depend on how the service
    /// happened to be started.
    pub fn unix_mode(mut self, mode: u32) -> Self {
        self.unix_mode = mode;
        self
    }

    /// Sets whether every peer on the Unix socket is a trusted proxy, whose
    /// `X-Forwarded-For`, `X-Real-IP` and `X-Forwarded-Proto` are believed (`unix` in
    /// `SQUALL_TRUSTED_PROXIES`). Off by default, as for TCP: only a proxy that sets those
    /// headers itself may be trusted (nginx passes a client's `X-Forwarded-For` through
    /// untouched unless told otherwise), and who may connect is up to the socket's mode.
    pub fn trust_unix_peers(mut self, trust: bool) -> Self {
        self.trust_unix_peers = trust;
        self
    }

    /// Sets the number of executors (one per core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Serves HTTPS (and `wss://`) with `tls` instead of plain HTTP.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the listen backlog of each core's socket.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets whether to start on a port another server already listens on; see
    /// [`PortSharing`].
    pub fn port_sharing(mut self, sharing: PortSharing) -> Self {
        self.port_sharing = sharing;
        self
    }

    /// Restarts through a handoff socket at `path`: this server listens there once it runs,
    /// and a new server started with the same path takes its listening sockets over
    /// instead of binding its own. The new one starts its cores on the very sockets the old
    /// one accepted on, then tells it so; the old one stops accepting, drains its open
    /// connections as on `SIGTERM` (without the drain delay: the port is never unserved)
    /// and exits. No accept queue is ever closed, so no connection is refused or reset.
    /// Should the new server fail before it is ready, the old one serves on.
    ///
    /// The socket is created with mode 0600 and only a peer of the same user (or root) is
    /// given the listeners. See `src/server/handoff.rs` for why this beats starting beside
    /// the old server ([`PortSharing::Takeover`]).
    pub fn handoff(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.handoff = Some(path.into());
        self
    }

    /// Sets the `Server` header value.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Turns the access log on or off.
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Sets the graceful shutdown deadline.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets the drain delay: after a stop, how long to keep accepting and serving with
    /// `/readyz` at 503 before the graceful shutdown.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Adds a trusted proxy address or network.
    pub fn trust_proxy(mut self, net: impl Into<IpNet>) -> Self {
        self.trusted_proxies.push(net.into());
        self
    }

    /// Replaces the per-connection limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the values that would otherwise fail later, less clearly.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let l = &self.limits;
        let invalid = |what: &str| Err(Error::config(format!("invalid configuration: {what}")));
        if self.workers == Some(0) {
            return invalid("workers must be at least 1");
        }
        if let ListenAddr::Unix(path) = &self.addr {
            check_unix_path(path).map_err(|e| {
                Error::config(format!("invalid configuration: {e}: {}", path.display()))
            })?;
        }
        if self.unix_mode > 0o777 {
            return invalid("unix_mode must be permission bits, at most 0o777");
        }
        if l.max_headers == 0 || l.max_headers > MAX_HEADERS_CEILING {
            return invalid(&format!(
                "max_headers must be between 1 and {MAX_HEADERS_CEILING}"
            ));
        }
        if l.max_target_bytes == 0 || l.max_head_bytes < l.max_target_bytes {
            return invalid("max_target_bytes must be at least 1 and at most max_head_bytes");
        }
        if l.max_head_bytes > MAX_HEAD_CEILING {
            return invalid(&format!(
                "max_head_bytes must be at most {MAX_HEAD_CEILING}"
            ));
        }
        if l.max_connections_per_core == 0 {
            return invalid("max_connections_per_core must be at least 1");
        }
        if l.max_pending_output == 0 {
            return invalid("max_pending_output must be at least 1");
        }
        let durations = [
            ("header_read_timeout", l.header_read_timeout),
            ("body_read_timeout", l.body_read_timeout),
            ("keep_alive_timeout", l.keep_alive_timeout),
            ("write_timeout", l.write_timeout),
        ];
        for (name, d) in durations {
            if d.is_zero() {
                return invalid(&format!("{name} must be longer than zero"));
            }
        }
        if let Some(path) = &self.handoff {
            // `sun_path` holds 108 bytes with the terminating NUL.
            if path.as_os_str().is_empty() || path.as_os_str().len() > 107 {
                return invalid("the handoff socket path must be 1 to 107 bytes long");
            }
            // A Unix socket restarts by renaming the new one over the old
            // (`SQUALL_PORT_SHARING=takeover`): new connections reach only the new socket, and
            // the old server accepts what its own queue still holds before it closes.
            if matches!(self.addr, ListenAddr::Unix(_)) {
                return invalid(
                    "SQUALL_HANDOFF hands over TCP listeners; a server on a Unix socket \
                     restarts with SQUALL_PORT_SHARING=takeover",
                );
            }
        }
        if http::HeaderValue::from_str(&self.server_name).is_err() {
            return invalid("server_name must be a valid header value");
        }
        Ok(())
    }
}

fn env_error(name: &str, value: &str, why: &dyn std::fmt::Display) -> Error {
    Error::config(format!("invalid {name}={value:?}: {why}"))
}

fn parse_net(v: &str) -> Result<IpNet, String> {
    if let Ok(net) = v.parse::<IpNet>() {
        return Ok(net);
    }
    v.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| "expected an IP address or CIDR network".to_owned())
}

fn parse_number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, Error> {
    v.trim()
        .parse()
        .map_err(|_| env_error(name, v, &"expected a non-negative integer"))
}

fn parse_bool(name: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(env_error(name, v, &"expected true or false")),
    }
}

fn parse_env_duration(name: &str, v: &str) -> Result<Duration, Error> {
    parse_duration(v)
        .ok_or_else(|| env_error(name, v, &"expected a duration such as 250ms, 10s or 2m"))
}

/// Parses `250ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// The default mode of a Unix socket file: read and write (which connecting needs) for
/// the server's user and group only.
pub const DEFAULT_UNIX_MODE: u32 = 0o660;

/// Where a server listens: a TCP address, or the path of a Unix stream socket for a server
/// behind a proxy on the same machine.
///
/// Parsed from `SQUALL_ADDR`: `127.0.0.1:8080`, `[::]:443`, or `unix:/run/app/http.sock`.
/// A Unix socket path must be absolute (the proxy names the same path, and a relative one
/// would depend on the directory the service was started in) and at most 107 bytes (the
/// kernel's `sun_path` holds 108 with the terminating NUL). Abstract sockets are not
/// supported.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP address; every core listens on it through its own `SO_REUSEPORT` socket.
    Tcp(SocketAddr),
    /// A Unix stream socket at this path, one listening socket that every core shares.
    Unix(PathBuf),
}

impl ListenAddr {
    /// A Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> ListenAddr {
        ListenAddr::Unix(path.into())
    }

    /// The TCP address, or `None` for a Unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }

    /// The socket path, or `None` for TCP.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            ListenAddr::Tcp(_) => None,
            ListenAddr::Unix(path) => Some(path),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> ListenAddr {
        ListenAddr::Tcp(addr)
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => addr.fmt(f),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// `IP:port`, or `unix:` and an absolute path; the error says what was expected.
    fn from_str(v: &str) -> Result<ListenAddr, String> {
        let v = v.trim();
        if let Some(path) = v.strip_prefix("unix:") {
            let path = Path::new(path);
            check_unix_path(path)?;
            return Ok(ListenAddr::Unix(path.to_owned()));
        }
        v.parse().map(ListenAddr::Tcp).map_err(|_| {
            "expected an IP address and port such as 127.0.0.1:8080, or unix:/path/to.sock"
                .to_owned()
        })
    }
}

/// Why `path` cannot name a Unix socket, if it cannot.
fn check_unix_path(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err("the unix socket path is empty".to_owned());
    }
    if bytes.contains(&0) {
        return Err("the unix socket path contains a NUL byte".to_owned());
    }
    if !path.is_absolute() {
        return Err("the unix socket path must be absolute (start with /)".to_owned());
    }
    if bytes.len() > MAX_UNIX_PATH {
        return Err(format!(
            "the unix socket path is {} bytes; at most {MAX_UNIX_PATH} fit in sun_path",
            bytes.len()
        ));
    }
    Ok(())
}

/// The longest Unix socket path: `sun_path` is 108 bytes, with room for the NUL.
const MAX_UNIX_PATH: usize = 107;

/// Octal permission bits (`660`, `0660` or `0o660`), at most `777`.
fn parse_mode(v: &str) -> Result<u32, String> {
    let digits = v.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err("expected octal permission bits such as 660".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::default().with_env_from(|k| map.get(k).cloned())
    }

    #[test]
    fn environment_overrides_defaults() {
        let c = from(&[
            ("SQUALL_ADDR", "0.0.0.0:9000"),
            ("SQUALL_WORKERS", "2"),
            ("SQUALL_KEEP_ALIVE_TIMEOUT", "250ms"),
            ("SQUALL_MAX_BODY_BYTES", "1024"),
            ("SQUALL_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            ("SQUALL_ACCESS_LOG", "true"),
            ("SQUALL_MAX_TRAILER_BYTES", "512"),
            ("SQUALL_PORT_SHARING", "takeover"),
            ("SQUALL_DRAIN_DELAY", "5s"),
        ])
        .expect("valid environment");
        assert_eq!(c.limits.max_trailer_bytes, 512);
        assert_eq!(c.drain_delay, Duration::from_secs(5));
        assert_eq!(Config::default().drain_delay, Duration::ZERO);
        assert_eq!(c.port_sharing, PortSharing::Takeover);
        assert_eq!(Config::default().port_sharing, PortSharing::Exclusive);
        assert_eq!(c.addr, "0.0.0.0:9000".parse().expect("literal"));
        assert_eq!(c.workers, Some(2));
        assert_eq!(c.limits.keep_alive_timeout, Duration::from_millis(250));
        assert_eq!(c.limits.max_body_bytes, 1024);
        assert!(c.access_log);
        let trusted = |ip: &str| {
            let ip: IpAddr = ip.parse().expect("literal");
            c.trusted_proxies.iter().any(|n| n.contains(&ip))
        };
        assert!(trusted("10.1.2.3") && trusted("127.0.0.1") && !trusted("127.0.0.2"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = from(&[("SQUALL_ADDR", "localhost")]).expect_err("not an address");
        assert!(err.to_string().contains("SQUALL_ADDR"), "{err}");
        let err = from(&[("SQUALL_WORKERS", "-1")]).expect_err("negative");
        assert!(err.to_string().contains("SQUALL_WORKERS"), "{err}");
        let err = from(&[("SQUALL_PORT_SHARING", "yes")]).expect_err("not a mode");
        assert!(err.to_string().contains("SQUALL_PORT_SHARING"), "{err}");
        let err = from(&[("SQUALL_DRAIN_DELAY", "a while")]).expect_err("not a duration");
        assert!(err.to_string().contains("SQUALL_DRAIN_DELAY"), "{err}");
        let err = from(&[("SQUALL_WRITE_TIMEOUT", "soon")]).expect_err("no unit");
        assert!(err.to_string().contains("SQUALL_WRITE_TIMEOUT"), "{err}");
    }

    #[test]
    fn unix_socket_addresses_and_modes_are_checked() {
        let c = from(&[
            ("SQUALL_ADDR", "unix:/run/app/http.sock"),
            ("SQUALL_UNIX_MODE", "0o600"),
            ("SQUALL_TRUSTED_PROXIES", "unix, 10.0.0.1"),
        ])
        .expect("valid");
        assert_eq!(c.addr, ListenAddr::unix("/run/app/http.sock"));
        assert_eq!(c.addr.to_string(), "unix:/run/app/http.sock");
        assert_eq!(c.unix_mode, 0o600);
        assert!(c.trust_unix_peers && c.trusted_proxies.len() == 1);
        assert_eq!(Config::default().unix_mode, 0o660);
        assert!(!Config::default().trust_unix_peers);
        assert_eq!(
            from(&[("SQUALL_UNIX_MODE", "660")])
                .expect("octal")
                .unix_mode,
            0o660
        );
        let long = format!("unix:/{}", "a".repeat(107));
        let refused = [
            ("unix:", "empty"),
            ("unix:relative.sock", "absolute"),
            ("unix:/tmp/a\0b", "NUL"),
            (long.as_str(), "108 bytes"),
        ];
        for (addr, why) in refused {
            let err = from(&[("SQUALL_ADDR", addr)]).expect_err("refused");
            let message = err.to_string();
            assert!(
                message.contains("SQUALL_ADDR") && message.contains(why),
                "{message}"
            );
        }
        assert!(from(&[("SQUALL_ADDR", &format!("unix:/{}", "a".repeat(106)))]).is_ok());
        for mode in ["rw", "1777", "8"] {
            let err = from(&[("SQUALL_UNIX_MODE", mode)]).expect_err("not a mode");
            assert!(err.to_string().contains("SQUALL_UNIX_MODE"), "{err}");
        }
        // The builder's values are checked at startup too.
        assert!(Config::default().unix_socket("x.sock").validate().is_err());
        assert!(Config::default().unix_mode(0o4755).validate().is_err());
    }

    #[test]
    fn a_handoff_socket_needs_a_tcp_address_and_a_usable_path() {
        let c = from(&[("SQUALL_HANDOFF", "/run/squall/handoff.sock")]).expect("valid");
        assert!(c.validate().is_ok());
        let unix = Config::default()
            .unix_socket("/run/app/http.sock")
            .handoff("/run/squall/handoff.sock");
        let err = unix.validate().expect_err("handoff over a Unix socket");
        assert!(
            err.to_string().contains("SQUALL_PORT_SHARING=takeover"),
            "{err}"
        );
        let long = format!("/{}", "x".repeat(107));
        assert!(Config::default().handoff(long).validate().is_err());
    }

    #[test]
    fn validation_rejects_unusable_limits() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.limits.max_headers = MAX_HEADERS_CEILING + 1;
        assert!(c.validate().is_err());
        let c = Config::default().workers(0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5ms"), Some(Duration::from_millis(5)));
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("1d"), None);
    }
}
