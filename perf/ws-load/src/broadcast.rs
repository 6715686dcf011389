//! `broadcast`: one publisher, N subscribers on the same topic; delivery
//! completeness and latency from the publisher's send to each subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::args::{Broadcast, Common};
use crate::close_unless_failed;
use crate::connect::{Tally, Target, Ws, open_some};
use crate::stats::{Latencies, Recorder, process_cpu, unix_nanos};

/// What the subscribers share.
struct Shared {
    /// Messages the publisher will send.
    total: u64,
    /// First deliveries of a seq to a subscriber, across all subscribers.
    distinct: AtomicU64,
    /// `total` x subscribers: reaching it ends the grace period early.
    expected: u64,
    all_delivered: Notify,
    /// Unix nanoseconds of the latest delivery.
    last_delivery: AtomicU64,
}

#[derive(Default)]
struct SubscriberOutcome {
    received: u64,
    distinct: u64,
    duplicates: u64,
    error: Option<String>,
    close_error: Option<String>,
}

struct PublisherOutcome {
    received: u64,
    error: Option<String>,
    close_error: Option<String>,
}

pub async fn run(common: &Common, args: &Broadcast) -> Result<bool, String> {
    let target = Target::resolve(&common.url, common.per_address, common.connect_timeout).await?;
    let started = Instant::now();
    let (subscribers, failed) =
        open_some(&target, args.subscribers, common.concurrency, "subscribers").await?;
    // The publisher's index follows the subscribers', so it gets a source
    // port of its own.
    let publisher = target
        .connect(args.subscribers)
        .await
        .map_err(|e| format!("the publisher did not connect: {e}"))?;
    let count = subscribers.len() as u64;
    eprintln!(
        "broadcast: {count} of {} subscriber(s) and the publisher connected in {:.2}s",
        args.subscribers,
        started.elapsed().as_secs_f64()
    );

    let total = ((args.rate * args.duration.as_secs_f64()).round() as u64).max(1);
    let shared = Arc::new(Shared {
        total,
        distinct: AtomicU64::new(0),
        expected: total * count,
        all_delivered: Notify::new(),
        last_delivery: AtomicU64::new(0),
    });
    let latencies = Latencies::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = subscribers
        .into_iter()
        .map(|ws| {
            tokio::spawn(subscribe(
                ws,
                Arc::clone(&shared),
                latencies.recorder(),
                stop_rx.clone(),
            ))
        })
        .collect();

    let cpu_start = process_cpu();
    // Subscriptions may take effect a little after the handshake (on other
    // cores, say); give them time before the first message.
    tokio::time::sleep(args.settle).await;

    let (published_tx, published_rx) = oneshot::channel();
    let publisher = tokio::spawn(publish(
        publisher,
        total,
        Duration::from_secs_f64(1.0 / args.rate),
        published_tx,
        stop_rx,
    ));
    let (sent, first_send) = published_rx
        .await
        .map_err(|_| "the publisher task ended without reporting".to_owned())?;
    let publish_secs = (unix_nanos().saturating_sub(first_send)) as f64 / 1e9;
    eprintln!("broadcast: published {sent} of {total} message(s) in {publish_secs:.2}s");

    // Stragglers: wait for the last deliveries, at most the grace period.
    let complete = tokio::time::timeout(args.grace, async {
        if shared.distinct.load(Ordering::Acquire) < shared.expected {
            shared.all_delivered.notified().await;
        }
    })
    .await
    .is_ok();
    let client_cpu = process_cpu().saturating_sub(cpu_start);
    let _ = stop_tx.send(true);

    let mut received = 0;
    let mut distinct = 0;
    let mut duplicates = 0;
    let mut errors = Tally::default();
    let mut close_errors = Tally::default();
    for task in tasks {
        let o = task.await.unwrap_or_else(|e| SubscriberOutcome {
            error: Some(format!("subscriber task failed: {e}")),
            ..SubscriberOutcome::default()
        });
        received += o.received;
        distinct += o.distinct;
        duplicates += o.duplicates;
        if let Some(e) = o.error {
            errors.add(e);
        }
        if let Some(e) = o.close_error {
            close_errors.add(e);
        }
    }
    let p = publisher
        .await
        .map_err(|e| format!("publisher task failed: {e}"))?;
    if let Some(e) = p.error {
        errors.add(format!("publisher: {e}"));
    }
    if let Some(e) = p.close_error {
        close_errors.add(format!("publisher: {e}"));
    }
    errors.print("errors during the run");
    close_errors.print("connections that did not close cleanly");

    let expected = sent * count;
    let missing = expected.saturating_sub(distinct);
    let last = shared.last_delivery.load(Ordering::Acquire);
    let span = last.saturating_sub(first_send) as f64 / 1e9;
    let rate_delivered = if span > 0.0 {
        received as f64 / span
    } else {
        0.0
    };
    let s = latencies.summary();
    let all_errors = failed.total() + errors.total();
    // The client reads every delivery on its own socket; its CPU per delivery
    // says how much of the latency spread is the client's serial work.
    let client_us = if received > 0 {
        client_cpu.as_secs_f64() * 1e6 / received as f64
    } else {
        0.0
    };
    println!(
        "broadcast subscribers={count} failed={} sent={sent} delivered={received} \
         expected={expected} missing={missing} duplicates={duplicates} {s} \
         rate_delivered={rate_delivered:.0} errors={all_errors} close_errors={} \
         client_cpu_s={:.3} client_cpu_us_per_delivery={client_us:.3}",
        failed.total(),
        close_errors.total(),
        client_cpu.as_secs_f64(),
    );
    eprintln!(
        "broadcast: {received} of {expected} deliveries ({missing} missing{}), \
         {rate_delivered:.0}/s; latency p50 {:.1} us, p99 {:.1} us, max {:.1} us; \
         the publisher received {} of its own; ws-load used {client_us:.2} us CPU per delivery",
        if complete {
            ""
        } else {
            ", grace period ran out"
        },
        s.p50_us,
        s.p99_us,
        s.max_us,
        p.received,
    );
    Ok(all_errors == 0 && close_errors.total() == 0)
}

/// Sends `total` messages, one per `period`, reporting (sent, unix ns of the
/// first send) when done; then keeps reading (a publisher is a subscriber
/// too) until stopped, and closes.
async fn publish(
    mut ws: Ws,
    total: u64,
    period: Duration,
    published: oneshot::Sender<(u64, u64)>,
    mut stop: watch::Receiver<bool>,
) -> PublisherOutcome {
    let mut received = 0u64;
    let mut sent = 0u64;
    let mut first_send = 0u64;
    let mut error = None;
    let mut ticker = tokio::time::interval(period);
    // A late tick is made up for at once: the count sent is what matters.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut text = String::with_capacity(48);
    while sent < total && error.is_none() {
        tokio::select! {
            _ = ticker.tick() => {
                use std::fmt::Write;
                let now = unix_nanos();
                if sent == 0 {
                    first_send = now;
                }
                text.clear();
                let _ = write!(text, "seq={sent} t={now}");
                match ws.send(Message::text(text.as_str())).await {
                    Ok(()) => sent += 1,
                    Err(e) => error = Some(format!("send: {e}")),
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(m)) if m.is_text() || m.is_binary() => received += 1,
                Some(Ok(Message::Close(_))) | None => error = Some("closed by the server".to_owned()),
                Some(Ok(_)) => {}
                Some(Err(e)) => error = Some(format!("read: {e}")),
            },
        }
    }
    let _ = published.send((sent, first_send));
    while error.is_none() {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(m)) if m.is_text() || m.is_binary() => received += 1,
                Some(Ok(Message::Close(_))) | None => error = Some("closed by the server".to_owned()),
                Some(Ok(_)) => {}
                Some(Err(e)) => error = Some(format!("read: {e}")),
            },
            _ = stop.changed() => break,
        }
    }
    let close_error = close_unless_failed(&mut ws, error.is_some(), Duration::from_secs(10)).await;
    PublisherOutcome {
        received,
        error,
        close_error,
    }
}

async fn subscribe(
    mut ws: Ws,
    shared: Arc<Shared>,
    mut rec: Recorder,
    mut stop: watch::Receiver<bool>,
) -> SubscriberOutcome {
    let mut out = SubscriberOutcome::default();
    let mut seen = vec![0u64; shared.total.div_ceil(64) as usize];
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let now = unix_nanos();
                    let Some((seq, t)) = parse(&text) else {
                        out.error = Some(format!("a message not sent by the publisher: {:?}", short(&text)));
                        break;
                    };
                    if seq >= shared.total {
                        out.error = Some(format!("seq {seq} was never sent"));
                        break;
                    }
                    out.received += 1;
                    rec.record_ns(now.saturating_sub(t));
                    let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
                    if seen[word] & bit != 0 {
                        out.duplicates += 1;
                        continue;
                    }
                    seen[word] |= bit;
                    out.distinct += 1;
                    shared.last_delivery.fetch_max(now, Ordering::AcqRel);
                    if shared.distinct.fetch_add(1, Ordering::AcqRel) + 1 == shared.expected {
                        shared.all_delivered.notify_one();
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    out.error = Some("a binary message; the publisher sends text".to_owned());
                    break;
                }
                Some(Ok(Message::Close(_))) | None => {
                    out.error = Some("closed by the server".to_owned());
                    break;
                }
                Some(Err(e)) => {
                    out.error = Some(format!("read: {e}"));
                    break;
                }
                // A ping's pong goes out with a flush.
                Some(Ok(_)) => {
                    if let Err(e) = ws.flush().await {
                        out.error = Some(format!("write: {e}"));
                        break;
                    }
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(rec);
    out.close_error =
        close_unless_failed(&mut ws, out.error.is_some(), Duration::from_secs(10)).await;
    out
}

/// `seq=<u64> t=<u64>`.
fn parse(text: &str) -> Option<(u64, u64)> {
    let mut words = text.split_ascii_whitespace();
    let seq = words.next()?.strip_prefix("seq=")?.parse().ok()?;
    let t = words.next()?.strip_prefix("t=")?.parse().ok()?;
    words.next().is_none().then_some((seq, t))
}

fn short(text: &str) -> &str {
    let end = text.char_indices().nth(60).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_published_messages() {
        assert_eq!(parse("seq=3 t=17"), Some((3, 17)));
        assert_eq!(parse("seq=3"), None);
        assert_eq!(parse("seq=3 t=17 x"), None);
        assert_eq!(parse("t=17 seq=3"), None);
        assert_eq!(parse("seq=-1 t=17"), None);
    }
}
