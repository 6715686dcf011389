//! Helpers for loopback integration tests: start a server on an ephemeral port, talk to it
//! with exact bytes over `std::net::TcpStream` (or a `UnixStream`), and split what comes
//! back into responses.
//!
//! Nothing here is clever on purpose: the client writes the bytes a test gives it and parses
//! responses strictly (CRLF line ends, `Content-Length` or chunked framing, close-delimited
//! otherwise), so a framing mistake in the server shows up as a parse failure here.

#![allow(dead_code)]

pub mod certs;
pub mod tls_client;
pub mod ws;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use squall::{App, Config, Limits, RunningServer, Server};

/// How long a read may wait before the test gives up on the server.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A config listening on an ephemeral loopback port with one worker and a short shutdown.
pub fn config() -> Config {
    Config::default()
        .addr("127.0.0.1:0".parse().expect("literal address"))
        .workers(1)
        .shutdown_timeout(Duration::from_secs(2))
}

/// Limits small enough for size tests and timeouts long enough not to interfere with them.
pub fn small_limits() -> Limits {
    Limits {
        max_head_bytes: 4096,
        max_headers: 16,
        max_target_bytes: 256,
        max_body_bytes: 1024,
        ..Limits::default()
    }
}

/// Starts a server with `config`; panics with the startup error if it cannot start.
pub fn start_with<F>(config: Config, app: F) -> RunningServer
where
    F: Fn() -> App + Send + Sync + 'static,
{
    match Server::new(config).spawn(app) {
        Ok(server) => server,
        Err(e) => panic!("server failed to start: {e}"),
    }
}

/// Starts a one-worker server with the default limits.
pub fn start<F>(app: F) -> RunningServer
where
    F: Fn() -> App + Send + Sync + 'static,
{
    start_with(config(), app)
}

/// A directory of fixture files under the system's temporary directory, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name starts with `name`.
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("squall-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `content` to `relative` inside the directory, creating parent directories.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> std::path::PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(&path, content).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Log output captured in memory, for tests that check what was logged: give a clone to
/// `tracing_subscriber::fmt().with_writer(move || log.clone())`.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// Whether the body was delimited by the connection closing.
    pub close_delimited: bool,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the response says the connection closes after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// How a connection ended, as seen by a reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Orderly close: read returned 0.
    Eof,
    /// The server reset the connection.
    Reset,
    /// Nothing arrived before the read timeout; the connection is still open.
    TimedOut,
    /// More bytes arrived (they are returned).
    Data(Vec<u8>),
}

/// A byte stream a [`Client`] can talk over: a TCP or Unix connection, or a TLS session over
/// one.
pub trait TestStream: Read + Write {
    /// Limits how long one read waits.
    fn set_read_timeout(&self, timeout: Duration);
}

impl TestStream for TcpStream {
    fn set_read_timeout(&self, timeout: Duration) {
        TcpStream::set_read_timeout(self, Some(timeout)).expect("set read timeout");
    }
}

impl TestStream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Duration) {
        std::os::unix::net::UnixStream::set_read_timeout(self, Some(timeout))
            .expect("set read timeout");
    }
}

/// A raw HTTP/1.1 client over one connection (TCP unless said otherwise).
pub struct Client<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr` with the default read timeout.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).expect("connect to the test server"))
    }

    /// A client over a stream the test connected itself.
    pub fn over(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("set nodelay");
        Client::over_stream(stream)
    }
}

impl Client<std::os::unix::net::UnixStream> {
    /// Connects to the Unix socket at `path` with the default read timeout.
    pub fn connect_unix(path: &std::path::Path) -> Client<std::os::unix::net::UnixStream> {
        let stream = std::os::unix::net::UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        Client::over_stream(stream)
    }
}

impl<S: TestStream> Client<S> {
    /// A client over any test stream, with the default read timeout.
    pub fn over_stream(stream: S) -> Client<S> {
        stream.set_read_timeout(READ_TIMEOUT);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The underlying stream (for cloning into a writer thread).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Changes the read timeout.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(timeout);
    }

    /// Writes `data` exactly, in one call.
    pub fn send(&mut self, data: impl AsRef<[u8]>) {
        self.stream
            .write_all(data.as_ref())
            .expect("write to the test server");
    }

    /// Writes `data`, reporting failure instead of panicking (the server may have closed).
    pub fn try_send(&mut self, data: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.stream.write_all(data.as_ref())
    }

    /// Bytes received and not yet parsed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads once more into the buffer: `Ok(0)` at EOF.
    ///
    /// `EINTR` is retried (a few times at most). It does happen here: the thread that calls
    /// `Server::spawn` sees one spurious `EINTR` on its next timed blocking socket call, from
    /// the io_uring probe ring that startup creates and closes on that thread.
    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let mut interrupted = 0;
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted && interrupted < 10 => {
                    interrupted += 1;
                }
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Makes at least `n` bytes available, or explains why not.
    fn need(&mut self, n: usize) -> Result<(), String> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => {
                    return Err(format!(
                        "eof after {} bytes, wanted {n}; have {:?}",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "read failed ({e}) with {} bytes buffered, wanted {n}; have {:?}",
                        self.buf.len(),
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
            }
        }
        Ok(())
    }

    /// The offset just past the next CRLF at or after `from`, reading more as needed.
    fn line_end(&mut self, from: usize) -> Result<usize, String> {
        loop {
            if let Some(at) = find(&self.buf[from..], b"\r\n") {
                return Ok(from + at + 2);
            }
            let have = self.buf.len();
            self.need(have + 1)?;
        }
    }

    /// Reads the next response to a non-HEAD request; panics with context on failure.
    pub fn response(&mut self) -> Response {
        self.try_response(false)
            .unwrap_or_else(|e| panic!("no valid response: {e}"))
    }

    /// Reads the next response to a HEAD request (no body whatever the headers say).
    pub fn head_response(&mut self) -> Response {
        self.try_response(true)
            .unwrap_or_else(|e| panic!("no valid response: {e}"))
    }

    /// Reads and parses the next response.
    pub fn try_response(&mut self, to_head: bool) -> Result<Response, String> {
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            let have = self.buf.len();
            self.need(have + 1)?;
        };
        let head = String::from_utf8(self.buf[..head_end - 4].to_vec())
            .map_err(|_| "response head is not utf-8".to_owned())?;
        if head
            .split("\r\n")
            .any(|l| l.contains('\n') || l.contains('\r'))
        {
            return Err(format!("bare CR or LF in response head: {head:?}"));
        }
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "HTTP/1.1" {
            return Err(format!("bad status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            if name.is_empty() || name.contains(' ') {
                return Err(format!("bad header name in {line:?}"));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        self.buf.drain(..head_end);
        let mut response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            chunked: false,
            close_delimited: false,
        };
        let no_body = to_head || (100..200).contains(&status) || status == 204 || status == 304;
        let chunked = response
            .header("transfer-encoding")
            .map(|v| v.eq_ignore_ascii_case("chunked"));
        let length = response.header("content-length").map(str::to_owned);
        if no_body {
            return Ok(response);
        }
        match (chunked, length) {
            (Some(true), None) => {
                response.chunked = true;
                response.body = self.read_chunked()?;
            }
            (Some(_), _) => {
                return Err("response with transfer-encoding other than chunked alone".into())
            }
            (None, Some(len)) => {
                let n: usize = len
                    .parse()
                    .map_err(|_| format!("bad content-length {len:?}"))?;
                self.need(n)?;
                response.body = self.buf.drain(..n).collect();
            }
            (None, None) => {
                response.close_delimited = true;
                loop {
                    match self.fill() {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(format!("close-delimited body: read failed: {e}")),
                    }
                }
                response.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let end = self.line_end(0)?;
            let line = String::from_utf8_lossy(&self.buf[..end - 2]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            self.buf.drain(..end);
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let end = self.line_end(0)?;
                    self.buf.drain(..end);
                    if end == 2 {
                        return Ok(body);
                    }
                }
            }
            self.need(size + 2)?;
            body.extend_from_slice(&self.buf[..size]);
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
            self.buf.drain(..size + 2);
        }
    }

    /// Reads `n` responses to non-HEAD requests.
    pub fn responses(&mut self, n: usize) -> Vec<Response> {
        (0..n).map(|_| self.response()).collect()
    }

    /// What happens next on the connection: EOF, reset, more data, or nothing before the
    /// read timeout. Buffered unparsed bytes count as data.
    pub fn ending(&mut self) -> Ending {
        if !self.buf.is_empty() {
            return Ending::Data(std::mem::take(&mut self.buf));
        }
        match self.fill() {
            Ok(0) => Ending::Eof,
            Ok(_) => Ending::Data(std::mem::take(&mut self.buf)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ending::TimedOut
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ending::Reset,
            Err(e) => panic!("unexpected read error: {e}"),
        }
    }

    /// Asserts the server closed the connection in order (read returns 0) without sending
    /// anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        match self.ending() {
            Ending::Eof => {}
            Ending::Reset => panic!("connection was reset instead of closed in order"),
            Ending::TimedOut => panic!("connection still open after {READ_TIMEOUT:?}"),
            Ending::Data(d) => panic!(
                "expected the connection to close, got more bytes: {:?}",
                String::from_utf8_lossy(&d)
            ),
        }
    }

    /// Like [`expect_closed`](Client::expect_closed), but a reset also counts: for tests whose
    /// client keeps writing after the server has decided to close.
    #[track_caller]
    pub fn expect_closed_or_reset(&mut self) {
        match self.ending() {
            Ending::Eof | Ending::Reset => {}
            Ending::TimedOut => panic!("connection still open after {READ_TIMEOUT:?}"),
            Ending::Data(d) => panic!(
                "expected the connection to close, got more bytes: {:?}",
                String::from_utf8_lossy(&d)
            ),
        }
    }

    /// Every byte until the connection ends (EOF or reset), and how it ended.
    #[track_caller]
    pub fn read_to_close(&mut self) -> (Vec<u8>, Ending) {
        let mut all = std::mem::take(&mut self.buf);
        loop {
            match self.ending() {
                Ending::Data(d) => all.extend_from_slice(&d),
                Ending::TimedOut => panic!(
                    "connection still open after {:?}",
                    String::from_utf8_lossy(&all)
                ),
                end => return (all, end),
            }
        }
    }

    /// Reads and counts bytes until the connection ends (EOF or reset); returns the count and
    /// how it ended. Panics if it is still open after the read timeout.
    #[track_caller]
    pub fn drain_until_closed(&mut self) -> (usize, Ending) {
        let mut total = std::mem::take(&mut self.buf).len();
        loop {
            match self.ending() {
                Ending::Data(d) => total += d.len(),
                Ending::TimedOut => panic!("connection still open after {total} bytes"),
                end => return (total, end),
            }
        }
    }

    /// Asserts the connection is still open: nothing arrives within `wait`.
    #[track_caller]
    pub fn expect_open(&mut self, wait: Duration) {
        self.set_read_timeout(wait);
        let ending = self.ending();
        self.set_read_timeout(READ_TIMEOUT);
        assert_eq!(ending, Ending::TimedOut, "connection should still be open");
    }

    /// Waits for the connection to close and returns how long it took.
    #[track_caller]
    pub fn time_until_closed(&mut self) -> Duration {
        let started = Instant::now();
        self.expect_closed();
        started.elapsed()
    }
}

/// One request, framed and sent, its response returned: a fresh connection each time.
pub fn request(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Response {
    let mut client = Client::connect(addr);
    client.send(raw);
    client.response()
}

/// `GET path` on HTTP/1.1 with a Host header, keeping the connection open.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// `POST path` with a `Content-Length` body and a content type.
pub fn post(path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Equivalent escapes and whitespace between tags are equally valid; normalise them away.
pub fn normalise_html(html: &str) -> String {
    let mut out = html
        .replace("&#039;", "&#39;")
        .replace("&#x27;", "&#39;")
        .replace("&#34;", "&quot;")
        .replace("&#x22;", "&quot;");
    while let Some(at) = out.find(">\n").or_else(|| out.find("> <")) {
        out.remove(at + 1);
    }
    out.trim().to_owned()
}
