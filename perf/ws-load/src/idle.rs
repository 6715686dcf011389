//! `idle`: N open WebSockets that carry no traffic.

use std::io::BufRead;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::args::{Common, Idle};
use crate::close_cleanly;
use crate::connect::{Tally, Target, Ws, open_many, partition};

/// How a held connection ended.
enum End {
    /// We closed it when asked; the close handshake result.
    Closed(Result<(), String>),
    /// The server closed it, or it broke, while it was being held.
    Lost(String),
}

pub async fn run(common: &Common, args: &Idle) -> Result<bool, String> {
    let target = Target::resolve(&common.url, common.per_address, common.connect_timeout).await?;
    let started = Instant::now();
    let (conns, failed) =
        partition(open_many(&target, 0, args.connections, common.concurrency).await);
    let opened = conns.len();
    failed.print("connections that did not open");
    eprintln!(
        "idle: {opened} of {} connection(s) open in {:.2}s",
        args.connections,
        started.elapsed().as_secs_f64()
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let holders: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(hold(ws, stop_rx.clone())))
        .collect();
    drop(stop_rx);

    println!("idle ready connections={opened} failed={}", failed.total());

    let why = wait_for_release(args.hold).await;
    eprintln!("idle: releasing the connections ({why})");
    let _ = stop_tx.send(true);

    let mut lost = Tally::default();
    let mut close_errors = Tally::default();
    for holder in holders {
        match holder.await {
            Ok(End::Closed(Ok(()))) => {}
            Ok(End::Closed(Err(e))) => close_errors.add(e),
            Ok(End::Lost(e)) => lost.add(e),
            Err(e) => lost.add(format!("holder task failed: {e}")),
        }
    }
    lost.print("connections lost while held");
    close_errors.print("connections that did not close cleanly");
    println!(
        "idle done connections={opened} failed={} lost={} close_errors={}",
        failed.total(),
        lost.total(),
        close_errors.total()
    );
    Ok(failed.total() == 0 && lost.total() == 0 && close_errors.total() == 0)
}

/// Keeps one connection open, answering pings, until told to close it.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>) -> End {
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                None => return End::Lost("closed by the server".to_owned()),
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map_or_else(String::new, |f| format!(" ({} {})", f.code, f.reason));
                    return End::Lost(format!("closed by the server{why}"));
                }
                Some(Err(e)) => return End::Lost(format!("read: {e}")),
                // A ping's pong goes out with a flush.
                Some(Ok(_)) => {
                    if let Err(e) = futures_util::SinkExt::flush(&mut ws).await {
                        return End::Lost(format!("write: {e}"));
                    }
                }
            },
            _ = stop.changed() => break,
        }
    }
    End::Closed(close_cleanly(&mut ws, Duration::from_secs(10)).await)
}

/// Waits for the end of the hold; says what ended it.
async fn wait_for_release(hold: Option<Duration>) -> &'static str {
    let stdin = match hold {
        Some(_) => None,
        None => Some(stdin_closed()),
    };
    let timer = async {
        match hold {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let stdin = async {
        match stdin {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = timer => "--hold expired",
        _ = stdin => "stdin: a line or end of file",
        why = crate::terminated() => why,
    }
}

/// Fires on a line or end of file on stdin. A plain thread, not tokio's
/// stdin: a blocked read would otherwise keep the runtime from shutting down.
fn stdin_closed() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("stdin".to_owned())
        .spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            let _ = tx.send(());
        })
        .expect("spawn the stdin thread");
    rx
}
