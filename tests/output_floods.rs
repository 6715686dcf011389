//! A peer that makes the server produce output faster than it reads it — WebSocket pings
//! whose pongs it never reads, HTTP/1.1 requests pipelined without reading the responses —
//! must not grow the server's memory: a connection stops reading while its output cannot be
//! written, so the flood waits in TCP's buffers. Once the peer reads, every answer arrives.
//!
//! Its own test binary, with its tests run one at a time, because it measures the resident
//! memory of the whole process (the server runs in it): nothing else may allocate beside it.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall::ws::{self, WebSocket, WsConfig};
use squall::App;
use support::ws::{frame, raw_open, read_frame};

const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

/// The most the process may grow while a flood waits unread. Without backpressure 100,000
/// pings held 8.8 MiB of pongs and 1,000,000 held 147 MiB.
const MAX_GROWTH: u64 = 4 << 20;

/// Held by each test: the memory figures are the process's, so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

async fn echo(socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

fn app() -> App {
    App::new()
        .get("/ws", |req| async move {
            ws::Upgrade::with_config(req, WsConfig::default()).map(|upgrade| upgrade.open(echo))
        })
        .get("/small", |_req| async { "ok" })
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib << 10
}

/// Echoes one message on a fresh connection: the server is still serving others.
fn echo_once(addr: SocketAddr) {
    let mut stream = raw_open(addr, "/ws");
    stream
        .write_all(&frame(TEXT, b"still here", true))
        .expect("write");
    let (opcode, payload) = read_frame(&mut stream).expect("echo");
    assert_eq!((opcode, payload.as_slice()), (TEXT, &b"still here"[..]));
}

/// The most resident memory seen while `sending` writes a flood nobody reads: until it has
/// finished, or has made no progress for half a second (TCP holds it back because the server
/// stopped reading).
fn peak_while_unread(
    sending: &std::thread::JoinHandle<()>,
    sent: &AtomicUsize,
    baseline: u64,
) -> u64 {
    let mut peak = baseline;
    let mut last = (0, Instant::now());
    let started = Instant::now();
    while !sending.is_finished() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(resident_bytes());
        let now = sent.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break;
        }
    }
    peak.max(resident_bytes())
}

/// Writes `copies` of `unit` from a thread, counting units written into the returned counter;
/// stops early if the server closes.
fn send_repeatedly(
    mut writer: TcpStream,
    unit: Vec<u8>,
    copies: usize,
) -> (std::thread::JoinHandle<()>, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let sending = std::thread::spawn(move || {
        let batch = unit.repeat(500);
        let mut left = copies;
        while left > 0 {
            let n = left.min(500);
            if writer.write_all(&batch[..n * unit.len()]).is_err() {
                return; // The server closed: the reader sees why.
            }
            left -= n;
            counter.fetch_add(n, Ordering::Relaxed);
        }
    });
    (sending, sent)
}

/// What one flood did: how much the process grew while the pongs went unread, and how the
/// connection answered once they were read.
struct Flood {
    growth: u64,
    pongs: usize,
    close_code: Option<u16>,
}

fn flood(addr: SocketAddr, pings: usize) -> Flood {
    let mut reader = raw_open(addr, "/ws");
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let writer = reader.try_clone().expect("clone");
    let baseline = resident_bytes();

    let ping = frame(PING, &[b'p'; 125], true);
    let (sending, sent) = send_repeatedly(writer, ping, pings);
    let peak = peak_while_unread(&sending, &sent, baseline);
    echo_once(addr);

    // Now read: every pong comes back, or the connection is closed with a policy code.
    let mut pongs = 0;
    let mut close_code = None;
    while pongs < pings {
        let (opcode, payload) = read_frame(&mut reader).expect("a pong or a close");
        match opcode {
            PONG => pongs += 1,
            CLOSE => {
                close_code = payload
                    .get(..2)
                    .map(|code| u16::from_be_bytes([code[0], code[1]]));
                break;
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    sending.join().expect("writer thread");
    Flood {
        growth: peak.saturating_sub(baseline),
        pongs,
        close_code,
    }
}

#[test]
fn an_unread_ping_flood_is_held_back_and_every_pong_arrives_once_read() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = support::start(app);
    let addr = server.local_addr();
    echo_once(addr); // Warm up the worker before measuring.
    for pings in [100_000, 1_000_000] {
        let result = flood(addr, pings);
        eprintln!(
            "{pings} pings: grew {} KiB unread, {} pongs, close {:?}",
            result.growth >> 10,
            result.pongs,
            result.close_code
        );
        assert!(
            result.growth <= MAX_GROWTH,
            "{pings} unread pings grew the process by {} KiB",
            result.growth >> 10
        );
        match result.close_code {
            None => assert_eq!(result.pongs, pings),
            Some(code) => assert_eq!(code, 1008, "closed after {} pongs", result.pongs),
        }
    }
}

#[test]
fn unread_pipelined_responses_hold_the_requests_back_and_all_arrive_once_read() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = support::start(app);
    let requests = 100_000;
    let mut reader = TcpStream::connect(server.local_addr()).expect("connect");
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let writer = reader.try_clone().expect("clone");
    let baseline = resident_bytes();
    let request = b"GET /small HTTP/1.1\r\nHost: test\r\n\r\n".to_vec();
    let (sending, sent) = send_repeatedly(writer, request, requests);
    let growth = peak_while_unread(&sending, &sent, baseline).saturating_sub(baseline);

    // Every response arrives, in full, once read: count the status lines.
    let status = b"HTTP/1.1 200 ";
    let mut answered = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while answered < requests {
        let n = std::io::Read::read(&mut reader, &mut chunk).expect("responses");
        assert!(n > 0, "closed after {answered} responses");
        pending.extend_from_slice(&chunk[..n]);
        // A status line cut by the end of this read is kept and counted after the next.
        let mut at = 0;
        while let Some(found) = support::find(&pending[at..], status) {
            answered += 1;
            at += found + status.len();
        }
        pending.drain(..at);
    }
    sending.join().expect("writer thread");
    eprintln!(
        "{requests} pipelined requests: grew {} KiB unread",
        growth >> 10
    );
    assert!(
        growth <= MAX_GROWTH,
        "{requests} unread responses grew the process by {} KiB",
        growth >> 10
    );
    assert_eq!(answered, requests);
}
