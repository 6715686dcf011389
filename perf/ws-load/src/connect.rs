//! Opening many WebSocket connections: the target, client source addresses,
//! bounded concurrency and a tally of what went wrong.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect, resolved once.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// Connections per source address, 0 for "let the kernel choose".
    per_address: usize,
    timeout: Duration,
}

impl Target {
    /// Checks the URL (plain `ws://host[:port]/path`) and resolves its host.
    pub async fn resolve(
        url: &str,
        per_address: usize,
        timeout: Duration,
    ) -> Result<Arc<Target>, String> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| {
            format!("--url must start with ws:// (got '{url}'; wss is not supported)")
        })?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!("--url '{url}' has no host"));
        }
        let host_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let addr = tokio::net::lookup_host(&host_port)
            .await
            .map_err(|e| format!("cannot resolve '{host_port}': {e}"))?
            .next()
            .ok_or_else(|| format!("'{host_port}' resolves to no address"))?;
        let per_address = match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => per_address,
            _ => 0,
        };
        Ok(Arc::new(Target {
            url: url.to_owned(),
            addr,
            per_address,
            timeout,
        }))
    }

    /// The client address connection `index` binds to: 127.0.0.2 for the
    /// first `per_address` connections, 127.0.0.3 for the next, and so on.
    /// One source/destination pair only has ~28k ephemeral ports, and a
    /// separate address per block keeps every block far from that limit.
    pub fn source(&self, index: usize) -> Option<Ipv4Addr> {
        if self.per_address == 0 {
            return None;
        }
        let base = u32::from(Ipv4Addr::new(127, 0, 0, 2));
        let block = u32::try_from(index / self.per_address).ok()?;
        // Stay inside 127.0.0.0/8 and off 127.255.255.255.
        (block < 0x00ff_fffd).then(|| Ipv4Addr::from(base + block))
    }

    /// One connection: TCP (from its source address), then the handshake.
    pub async fn connect(&self, index: usize) -> Result<Ws, ConnectError> {
        match tokio::time::timeout(self.timeout, self.connect_inner(index)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::TimedOut(self.timeout)),
        }
    }

    async fn connect_inner(&self, index: usize) -> Result<Ws, ConnectError> {
        let socket = match self.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(ConnectError::Socket)?;
        if let Some(ip) = self.source(index) {
            bind_address_no_port(&socket).map_err(ConnectError::Socket)?;
            socket
                .bind(SocketAddr::new(IpAddr::V4(ip), 0))
                .map_err(|e| ConnectError::Bind(ip, e))?;
        }
        let stream = socket
            .connect(self.addr)
            .await
            .map_err(ConnectError::Connect)?;
        stream.set_nodelay(true).map_err(ConnectError::Socket)?;
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), stream, Some(config()))
                .await
                .map_err(ConnectError::Handshake)?;
        Ok(ws)
    }
}

/// The client's own per-connection memory matters with 19,000 connections
/// in one process; 4 KiB reads are plenty for small messages.
fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// IP_BIND_ADDRESS_NO_PORT: with a source address bound, pick the port at
/// connect time from the full 4-tuple instead of at bind time, so ports in
/// TIME_WAIT towards an earlier server port do not run the range dry.
fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[derive(Debug)]
pub enum ConnectError {
    Socket(std::io::Error),
    Bind(Ipv4Addr, std::io::Error),
    Connect(std::io::Error),
    Handshake(WsError),
    TimedOut(Duration),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Socket(e) => write!(f, "socket: {e}"),
            ConnectError::Bind(ip, e) => write!(f, "bind to {ip}: {e}"),
            ConnectError::Connect(e) => write!(f, "connect: {e}"),
            ConnectError::Handshake(WsError::Http(rsp)) => {
                write!(f, "handshake: server answered {}", rsp.status())
            }
            ConnectError::Handshake(e) => write!(f, "handshake: {e}"),
            ConnectError::TimedOut(d) => write!(f, "no connection within {}s", d.as_secs_f64()),
        }
    }
}

/// Opens `count` connections, at most `concurrency` handshakes at a time.
/// The result is indexed like the connections (index i used source(i)).
pub async fn open_many(
    target: &Arc<Target>,
    first_index: usize,
    count: usize,
    concurrency: usize,
) -> Vec<Result<Ws, ConnectError>> {
    let mut results: Vec<Option<Result<Ws, ConnectError>>> = (0..count).map(|_| None).collect();
    let mut done = stream::iter(0..count)
        .map(|i| {
            let target = Arc::clone(target);
            // Spawned, so that a multi-thread runtime spreads the handshakes.
            let task = tokio::spawn(async move { target.connect(first_index + i).await });
            async move {
                let result = task.await.unwrap_or_else(|e| {
                    Err(ConnectError::Socket(std::io::Error::other(format!(
                        "connect task failed: {e}"
                    ))))
                });
                (i, result)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((i, result)) = done.next().await {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every index is yielded once"))
        .collect()
}

/// Distinct error messages and how often each happened.
#[derive(Debug, Default)]
pub struct Tally {
    counts: BTreeMap<String, usize>,
}

impl Tally {
    pub fn add(&mut self, what: impl std::fmt::Display) {
        *self.counts.entry(what.to_string()).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Prints the most frequent errors to stderr under `heading`.
    pub fn print(&self, heading: &str) {
        if self.counts.is_empty() {
            return;
        }
        let mut by_count: Vec<_> = self.counts.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        eprintln!("{heading}: {} in all", self.total());
        for (what, n) in by_count.iter().take(8) {
            eprintln!("  {n:>7} x {what}");
        }
        if by_count.len() > 8 {
            eprintln!("  ... and {} other kinds", by_count.len() - 8);
        }
    }
}

/// Opens `count` connections (see `open_many`) and prints the failures by cause
/// as "`what` that did not open"; an error when none opened.
pub async fn open_some(
    target: &Arc<Target>,
    count: usize,
    concurrency: usize,
    what: &str,
) -> Result<(Vec<Ws>, Tally), String> {
    let (conns, failed) = partition(open_many(target, 0, count, concurrency).await);
    failed.print(&format!("{what} that did not open"));
    if conns.is_empty() {
        return Err(format!("none of the {count} {what} opened"));
    }
    Ok((conns, failed))
}

/// Splits opened connections from failures, tallying the failures.
pub fn partition(results: Vec<Result<Ws, ConnectError>>) -> (Vec<Ws>, Tally) {
    let mut ok = Vec::with_capacity(results.len());
    let mut failed = Tally::default();
    for r in results {
        match r {
            Ok(ws) => ok.push(ws),
            Err(e) => failed.add(e),
        }
    }
    (ok, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(per_address: usize) -> Target {
        Target {
            url: "ws://127.0.0.1:1/ws".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            per_address,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn source_addresses_are_spread_in_blocks() {
        let t = target(20_000);
        assert_eq!(t.source(0), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(t.source(19_999), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(t.source(20_000), Some(Ipv4Addr::new(127, 0, 0, 3)));
        let t = target(1);
        assert_eq!(t.source(254), Some(Ipv4Addr::new(127, 0, 1, 0)));
        assert_eq!(target(0).source(5), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn resolve_checks_the_url() {
        let d = Duration::from_secs(1);
        assert!(Target::resolve("http://x/", 1, d).await.is_err());
        assert!(Target::resolve("ws:///ws", 1, d).await.is_err());
        let t = Target::resolve("ws://127.0.0.1:9/ws", 7, d).await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(t.per_address, 7);
        let t = Target::resolve("ws://127.0.0.1/x", 7, d).await.unwrap();
        assert_eq!(t.addr.port(), 80);
    }
}
