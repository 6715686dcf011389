//! ws-load: the WebSocket load client of squall's benchmarks (scripts/bench-ws.sh).
//!
//! Three workloads, each printing one `key=value` line on stdout for scripts
//! and a human summary on stderr: `echo` (closed-loop round trips), `idle`
//! (many open, silent connections) and `broadcast` (one publisher, many
//! subscribers). Run `ws-load --help` for the options.
//!
//! By default everything runs on one current-thread tokio runtime, so
//! `taskset -c 1 ws-load ...` confines the client to one CPU.

mod args;
mod broadcast;
mod connect;
mod echo;
mod idle;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::args::{Command, Parsed};
use crate::connect::Ws;

/// Descriptors kept aside for stdio, the runtime's own and the odd file.
const SPARE_FDS: u64 = 64;

fn main() -> ExitCode {
    let (common, command) = match args::parse() {
        Ok(Parsed::Run(common, command)) => (common, command),
        Ok(Parsed::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ws-load: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };

    let sockets = match &command {
        Command::Echo(a) => a.connections,
        Command::Idle(a) => a.connections,
        Command::Broadcast(a) => a.subscribers + 1,
    } as u64;
    let limit = raise_fd_limit();
    if sockets + SPARE_FDS > limit {
        eprintln!(
            "ws-load: {sockets} connections need about {} file descriptors, but this process may \
             open only {limit} (ulimit -n); use fewer connections or run several ws-load processes",
            sockets + SPARE_FDS
        );
        return ExitCode::from(2);
    }

    let runtime = if common.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws-load: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &command {
            Command::Echo(a) => echo::run(&common, a).await,
            Command::Idle(a) => idle::run(&common, a).await,
            Command::Broadcast(a) => broadcast::run(&common, a).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ws-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Sends a close frame and reads until the server's close reply ends the
/// stream (messages still in flight are read and dropped).
pub(crate) async fn close_cleanly(ws: &mut Ws, within: Duration) -> Result<(), String> {
    let handshake = async {
        match ws.close(None).await {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
            Err(e) => return Err(format!("close: {e}")),
        }
        loop {
            match ws.next().await {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("close: {e}")),
            }
        }
    };
    tokio::time::timeout(within, handshake)
        .await
        .unwrap_or_else(|_| Err(format!("no close reply within {}s", within.as_secs_f64())))
}

/// How a connection ends: the close handshake when it worked to the end (the
/// handshake's error, if any), nothing when it `failed` already.
pub(crate) async fn close_unless_failed(
    ws: &mut Ws,
    failed: bool,
    within: Duration,
) -> Option<String> {
    if failed {
        return None;
    }
    close_cleanly(ws, within).await.err()
}

/// Resolves on SIGTERM or SIGINT; says which.
pub(crate) async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("ws-load: cannot install signal handlers; only --hold or stdin end the hold");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
