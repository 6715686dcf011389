//! `echo`: closed-loop request/echo over N connections.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::args::{Common, Echo};
use crate::close_unless_failed;
use crate::connect::{Tally, Target, Ws, open_some};
use crate::stats::{Latencies, Recorder, process_cpu};

struct Outcome {
    messages: u64,
    /// When the last echo arrived (or the connection failed).
    finished: Instant,
    error: Option<String>,
    close_error: Option<String>,
}

pub async fn run(common: &Common, args: &Echo) -> Result<bool, String> {
    let target = Target::resolve(&common.url, common.per_address, common.connect_timeout).await?;
    let payload = if args.binary {
        Message::binary(vec![b'x'; args.size])
    } else {
        Message::text("x".repeat(args.size))
    };

    let (conns, failed) =
        open_some(&target, args.connections, common.concurrency, "connections").await?;

    let latencies = Latencies::new();
    let cpu_start = process_cpu();
    let start = Instant::now();
    let deadline = start + args.duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| {
            let payload = payload.clone();
            let rec = latencies.recorder();
            let pipeline = args.pipeline;
            tokio::spawn(connection(ws, payload, pipeline, deadline, rec))
        })
        .collect();

    let mut messages = 0u64;
    let mut last = start;
    // Every task ends with the close handshake, a negligible share of a run.
    let mut errors = Tally::default();
    let mut close_errors = Tally::default();
    for task in tasks {
        let outcome = task
            .await
            .map_err(|e| format!("connection task failed: {e}"))?;
        messages += outcome.messages;
        last = last.max(outcome.finished);
        if let Some(e) = outcome.error {
            errors.add(e);
        }
        if let Some(e) = outcome.close_error {
            close_errors.add(e);
        }
    }
    let client_cpu = process_cpu().saturating_sub(cpu_start);
    errors.print("connections that failed during the run");
    close_errors.print("connections that did not close cleanly");

    let elapsed = last.duration_since(start).max(Duration::from_millis(1));
    let rate = messages as f64 / elapsed.as_secs_f64();
    let s = latencies.summary();
    let all_errors = failed.total() + errors.total();
    println!(
        "echo connections={} size={} pipeline={} binary={} duration_s={:.3} messages={} \
         rate={:.0} {s} errors={} close_errors={} client_cpu_s={:.3} client_cpu_us_per_msg={:.3}",
        args.connections,
        args.size,
        args.pipeline,
        u8::from(args.binary),
        elapsed.as_secs_f64(),
        messages,
        rate,
        all_errors,
        close_errors.total(),
        client_cpu.as_secs_f64(),
        per_message_us(client_cpu, messages),
    );
    eprintln!(
        "echo: {messages} messages of {} bytes over {} connection(s) x {} in flight in {:.2}s: \
         {rate:.0} msg/s; latency p50 {:.1} us, p99 {:.1} us, max {:.1} us; {all_errors} error(s); \
         ws-load used {:.3} us CPU per message",
        args.size,
        args.connections,
        args.pipeline,
        elapsed.as_secs_f64(),
        s.p50_us,
        s.p99_us,
        s.max_us,
        per_message_us(client_cpu, messages),
    );
    Ok(all_errors == 0 && close_errors.total() == 0)
}

fn per_message_us(cpu: Duration, messages: u64) -> f64 {
    if messages == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e6 / messages as f64
    }
}

async fn connection(
    mut ws: Ws,
    payload: Message,
    pipeline: usize,
    deadline: Instant,
    mut rec: Recorder,
) -> Outcome {
    let mut messages = 0;
    let error = drive(
        &mut ws,
        &payload,
        pipeline,
        deadline,
        &mut rec,
        &mut messages,
    )
    .await
    .err();
    let finished = Instant::now();
    drop(rec);
    let close_error = close_unless_failed(&mut ws, error.is_some(), Duration::from_secs(5)).await;
    Outcome {
        messages,
        finished,
        error,
        close_error,
    }
}

/// Keeps `pipeline` messages in flight until the deadline, then collects the
/// echoes still owed. Every echo that has already arrived is handled before
/// the next write, so K echoes read together are answered with one write.
async fn drive(
    ws: &mut Ws,
    payload: &Message,
    pipeline: usize,
    deadline: Instant,
    rec: &mut Recorder,
    messages: &mut u64,
) -> Result<(), String> {
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(pipeline);
    send(ws, payload, pipeline, &mut in_flight).await?;
    while !in_flight.is_empty() {
        let mut echoed = 0;
        let mut next = ws.next().await;
        loop {
            match next {
                None | Some(Ok(Message::Close(_))) => {
                    return Err("closed by the server during the run".to_owned());
                }
                Some(Err(e)) => return Err(format!("read: {e}")),
                Some(Ok(msg)) if msg.is_text() || msg.is_binary() => {
                    let now = Instant::now();
                    let sent = in_flight
                        .pop_front()
                        .ok_or("a message that was not asked for")?;
                    if msg != *payload {
                        return Err("an echo that differs from the message sent".to_owned());
                    }
                    rec.record(now - sent);
                    *messages += 1;
                    echoed += 1;
                }
                // Pings are answered with the next flush; pongs need nothing.
                Some(Ok(_)) => {}
            }
            match ws.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
        if echoed > 0 && Instant::now() < deadline {
            send(ws, payload, echoed, &mut in_flight).await?;
        } else {
            ws.flush().await.map_err(|e| format!("write: {e}"))?;
        }
    }
    Ok(())
}

async fn send(
    ws: &mut Ws,
    payload: &Message,
    count: usize,
    in_flight: &mut VecDeque<Instant>,
) -> Result<(), String> {
    let now = Instant::now();
    for _ in 0..count {
        ws.feed(payload.clone())
            .await
            .map_err(|e| format!("write: {e}"))?;
        in_flight.push_back(now);
    }
    ws.flush().await.map_err(|e| format!("write: {e}"))
}
