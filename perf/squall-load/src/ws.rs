//! WebSocket load: echo round trips (paced and pipelined like HTTP requests), broadcast
//! delivery (one publisher, many subscribers), and idle connections held open.
//!
//! Broadcast messages are text, `seq=<n> t=<unix ns>`, where `t` is the message's *scheduled*
//! publish time, so a publisher that falls behind does not hide the delay from the delivery
//! latencies.

use std::pin::pin;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::future::{Either, select};
use futures_util::{SinkExt, StreamExt};
use glommio::sync::Semaphore;

use crate::driver::{Anchor, Core, InFlight, Lane, Outcome, Wake, WsStream, unix_now_ns, wait};
use crate::net;
use crate::schedule::{Pace, Window, latency_ns};
use crate::stats::ErrorKind;

/// Broadcast messages per second when `--rate` is not given in subscribe mode.
pub const DEFAULT_BROADCAST_RATE: f64 = 10.0;

/// The text of broadcast message `seq`, scheduled at `unix_ns`.
pub fn stamp(seq: u64, unix_ns: u64) -> String {
    format!("seq={seq} t={unix_ns}")
}

/// The sequence number and publish time in a broadcast message.
pub fn parse_stamp(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut seq = None;
    let mut at = None;
    for field in text.split_ascii_whitespace() {
        if let Some(v) = field.strip_prefix("seq=") {
            seq = v.parse().ok();
        } else if let Some(v) = field.strip_prefix("t=") {
            at = v.parse().ok();
        }
    }
    Some((seq?, at?))
}

fn error_kind(error: &WsError) -> ErrorKind {
    match error {
        WsError::Io(e) => net::classify(e),
        WsError::ConnectionClosed | WsError::AlreadyClosed => ErrorKind::Reset,
        _ => ErrorKind::Protocol,
    }
}

impl Core {
    /// Counts one echoed message.
    fn complete_message(&self, intended: Instant, measured: bool, done: Instant) {
        let mut tally = self.tally.borrow_mut();
        tally.seen += 1;
        if measured {
            tally.record(latency_ns(intended, done));
            self.last_done.set(Some(done));
        }
    }
}

/// Runs one echo connection until its share of the load is done.
pub async fn echo(core: &Core, mut ws: Option<Box<WsStream>>, mut lane: Lane) {
    let payload = vec![b'x'; core.config.message_size];
    let message = if core.config.binary {
        Message::binary(payload)
    } else {
        Message::text(String::from_utf8(payload).expect("ASCII is UTF-8"))
    };
    let mut outstanding = InFlight::with_capacity(core.config.pipeline);
    loop {
        let Some(socket) = ws.as_mut() else {
            if !lane.more_to_send(Instant::now()) {
                return;
            }
            ws = core.reconnect(&mut lane).await.and_then(|c| c.into_ws());
            continue;
        };
        let outcome = echo_session(core, socket, &mut lane, &mut outstanding, &message).await;
        core.open.set(core.open.get() - 1);
        match outcome {
            Outcome::Done => {
                let _ = wait(Duration::from_secs(1), WsStream::close(socket, None)).await;
                return;
            }
            Outcome::Closed => {}
            Outcome::Failed(kind) => core.tally.borrow_mut().error(kind),
        }
        outstanding.clear();
        ws = None;
    }
}

async fn echo_session(
    core: &Core,
    ws: &mut WsStream,
    lane: &mut Lane,
    outstanding: &mut InFlight,
    message: &Message,
) -> Outcome {
    let config = &core.config;
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        let due = lane.take_due(now, outstanding, config.pipeline);
        if due > 0 {
            if outstanding.len() == due {
                last_progress = now;
            }
            let sent = async {
                for _ in 0..due {
                    ws.feed(message.clone()).await?;
                }
                ws.flush().await
            };
            match wait(config.timeout, sent).await {
                Wake::Done(Ok(())) => {}
                Wake::Done(Err(e)) => return Outcome::Failed(error_kind(&e)),
                Wake::Timer => return Outcome::Failed(ErrorKind::Timeout),
            }
            continue;
        }
        if outstanding.is_empty() && !lane.more_to_send(now) {
            return Outcome::Done;
        }
        let next_send = lane.next_send(now, outstanding, config.pipeline);
        let timeout_at = last_progress + config.timeout;
        let deadline = match (outstanding.is_empty(), next_send) {
            (true, Some(at)) => at,
            (true, None) => timeout_at,
            (false, Some(at)) => at.min(timeout_at),
            (false, None) => timeout_at,
        };
        match wait(deadline.saturating_duration_since(now), ws.next()).await {
            Wake::Timer => {
                if !outstanding.is_empty() && Instant::now() >= timeout_at {
                    return Outcome::Failed(ErrorKind::Timeout);
                }
            }
            Wake::Done(None) | Wake::Done(Some(Ok(Message::Close(_)))) => {
                return if outstanding.is_empty() {
                    Outcome::Closed
                } else {
                    Outcome::Failed(ErrorKind::Reset)
                };
            }
            Wake::Done(Some(Err(e))) => return Outcome::Failed(error_kind(&e)),
            Wake::Done(Some(Ok(Message::Text(_) | Message::Binary(_)))) => {
                let done = Instant::now();
                last_progress = done;
                let Some((intended, measured)) = outstanding.pop_front() else {
                    return Outcome::Failed(ErrorKind::Protocol);
                };
                core.complete_message(intended, measured, done);
            }
            Wake::Done(Some(Ok(_))) => {} // ping, pong: tungstenite answers pings itself
        }
    }
}

/// Reads broadcast deliveries until the end of the window plus the grace period.
pub async fn subscribe(core: &Core, ws: Option<Box<WsStream>>, window: Window, anchor: Anchor) {
    let Some(mut ws) = ws else { return };
    let window_end = window.end.expect("subscribe runs have a duration");
    let (start_ns, end_ns) = (
        anchor.unix_ns_at(window.start),
        anchor.unix_ns_at(window_end),
    );
    let stop = window_end + core.config.grace;
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        match wait(stop - now, ws.next()).await {
            Wake::Timer => break,
            Wake::Done(None) | Wake::Done(Some(Ok(Message::Close(_)))) => {
                core.tally.borrow_mut().error(ErrorKind::Reset);
                break;
            }
            Wake::Done(Some(Err(e))) => {
                core.tally.borrow_mut().error(error_kind(&e));
                break;
            }
            Wake::Done(Some(Ok(Message::Text(text)))) => {
                deliver(core, text.as_bytes(), start_ns, end_ns)
            }
            Wake::Done(Some(Ok(Message::Binary(bytes)))) => deliver(core, &bytes, start_ns, end_ns),
            Wake::Done(Some(Ok(_))) => {}
        }
    }
    core.open.set(core.open.get() - 1);
    let _ = wait(Duration::from_secs(1), WsStream::close(&mut ws, None)).await;
}

fn deliver(core: &Core, text: &[u8], start_ns: u64, end_ns: u64) {
    let received = unix_now_ns();
    let mut tally = core.tally.borrow_mut();
    let Some((_seq, published)) = parse_stamp(text) else {
        tally.error(ErrorKind::Protocol);
        return;
    };
    tally.seen += 1;
    if (start_ns..end_ns).contains(&published) {
        tally.record(received.saturating_sub(published));
        core.last_done.set(Some(Instant::now()));
    }
}

/// Publishes timestamped messages at the configured rate until the window ends, reading (and
/// dropping) its own copies meanwhile, then stays until the subscribers' grace period is over.
pub async fn publish(core: &Core, ws: Option<Box<WsStream>>, window: Window, anchor: Anchor) {
    let Some(mut ws) = ws else { return };
    let pace = Pace::new(
        Some(core.config.rate.unwrap_or(DEFAULT_BROADCAST_RATE)),
        anchor.instant,
        1,
        0,
    );
    let window_end = window.end.expect("subscribe runs have a duration");
    let stop = window_end + core.config.grace;
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        let due = pace.intended(seq, now);
        let publishing = !window.is_over(due);
        if !publishing && now >= stop {
            break;
        }
        if publishing && due <= now {
            let text = stamp(seq, anchor.unix_ns_at(due));
            match wait(core.config.timeout, ws.send(Message::text(text))).await {
                Wake::Done(Ok(())) => {}
                Wake::Done(Err(e)) => {
                    core.tally.borrow_mut().error(error_kind(&e));
                    break;
                }
                Wake::Timer => {
                    core.tally.borrow_mut().error(ErrorKind::Timeout);
                    break;
                }
            }
            if window.contains(due) {
                core.tally.borrow_mut().published += 1;
            }
            seq += 1;
            continue;
        }
        let until = if publishing { due } else { stop };
        match wait(until.saturating_duration_since(now), ws.next()).await {
            Wake::Done(None) | Wake::Done(Some(Ok(Message::Close(_)))) => {
                core.tally.borrow_mut().error(ErrorKind::Reset);
                break;
            }
            Wake::Done(Some(Err(e))) => {
                core.tally.borrow_mut().error(error_kind(&e));
                break;
            }
            Wake::Timer | Wake::Done(Some(Ok(_))) => {}
        }
    }
    core.open.set(core.open.get() - 1);
    let _ = wait(Duration::from_secs(1), WsStream::close(&mut ws, None)).await;
}

/// Holds one idle connection open, sending nothing, until `release` is closed (the end of
/// the run, or SIGTERM/SIGINT), then closes it and counts it as held (`completed`). A
/// connection the server closes or breaks meanwhile is lost: counted as an error and not
/// re-opened, since a new connection would not be the idle one being measured.
pub async fn hold(core: &Core, ws: Option<Box<WsStream>>, release: &Semaphore) {
    let Some(mut ws) = ws else { return };
    let lost = loop {
        let read = pin!(ws.next());
        // Never granted (no permits): it ends with an error when the semaphore is closed.
        let released = pin!(release.acquire(1));
        match select(read, released).await {
            Either::Right(_) => break None,
            Either::Left((None | Some(Ok(Message::Close(_))), _)) => break Some(ErrorKind::Reset),
            Either::Left((Some(Err(e)), _)) => break Some(error_kind(&e)),
            // A ping's pong is written by tungstenite before the next read.
            Either::Left((Some(Ok(_)), _)) => {}
        }
    };
    core.open.set(core.open.get() - 1);
    match lost {
        Some(kind) => core.tally.borrow_mut().error(kind),
        None => {
            core.tally.borrow_mut().completed += 1;
            let _ = wait(Duration::from_secs(1), WsStream::close(&mut ws, None)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let text = stamp(42, 1_700_000_000_123_456_789);
        assert_eq!(text, "seq=42 t=1700000000123456789");
        assert_eq!(
            parse_stamp(text.as_bytes()),
            Some((42, 1_700_000_000_123_456_789))
        );
        assert_eq!(parse_stamp(b"seq=1"), None);
        assert_eq!(parse_stamp(b"hello"), None);
        assert_eq!(parse_stamp(&[0xff, 0xfe]), None);
    }
}
