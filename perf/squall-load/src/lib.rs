//! squall-load: an HTTP/1.1 and WebSocket load generator on glommio, one executor per core.
//!
//! The run: each executor opens its connections (connection *g* lives on executor
//! *g* mod threads) along the ramp, the executors meet at a start line, warm up, then measure.
//! Every executor counts into its own [`stats::Tally`] with no locks or shared atomics on the
//! hot path; the tallies (HdrHistograms included) are merged once, at the end. See
//! [`schedule`] for how an open-loop rate is split and how coordinated omission is corrected.

pub mod args;
pub mod config;
pub mod driver;
pub mod http;
pub mod net;
pub mod response;
pub mod schedule;
pub mod signal;
pub mod stats;
pub mod tls;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::{Config, Mode, Stop};
use crate::driver::Shared;
use crate::stats::{Report, Tally};

/// Runs the load described by `config` and reports what it measured. Errors are setup
/// problems (limits, executors); failures of requests are counted in the report.
pub fn run(config: Config) -> Result<Report, String> {
    config.validate()?;
    net::raise_fd_limit(config.total_connections(), config.threads)?;
    net::raise_memlock_limit()?;
    if config.mode == Mode::WsIdle {
        signal::install()?;
    }
    let config = Arc::new(config);
    let shared = Arc::new(Shared::new(&config));
    let ramp_start = Instant::now();
    let handles = signal::blocked_while(|| {
        (0..config.threads)
            .map(|index| {
                let (config, shared) = (Arc::clone(&config), Arc::clone(&shared));
                std::thread::Builder::new()
                    .name(format!("squall-load-{index}"))
                    .spawn(move || driver::run_executor(index, config, shared, ramp_start))
                    .map_err(|e| format!("cannot start thread {index}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    watch(&config, &shared, ramp_start);
    let mut tally = Tally::default();
    let mut window_start = None;
    let mut last_done: Option<Instant> = None;
    for handle in handles {
        let outcome = handle
            .join()
            .map_err(|_| "an executor thread panicked".to_owned())??;
        tally.merge(&outcome.tally);
        window_start = Some(outcome.window_start);
        last_done = last_done.max(outcome.last_done);
    }
    let cpu = shared.start_cpu.get().map_or(Duration::ZERO, |start| {
        net::process_cpu().saturating_sub(*start)
    });
    let elapsed = match config.stop {
        // A hold may end early (SIGTERM/SIGINT): it lasted until the executors let go.
        Stop::After(duration) if config.mode == Mode::WsIdle => match (window_start, last_done) {
            (Some(start), Some(end)) => end.saturating_duration_since(start).min(duration),
            _ => Duration::ZERO,
        },
        Stop::After(duration) => duration,
        Stop::Count(_) => match (window_start, last_done) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        },
    };
    let report = Report {
        mode: config.mode.name(),
        url: config.target.url.clone(),
        connections: config.connections,
        threads: config.threads,
        pipeline: config.pipeline,
        rate: config.rate,
        elapsed,
        cpu,
        tally,
    };
    if let Some(path) = &config.json {
        let text = serde_json::to_string_pretty(&report.json())
            .map_err(|e| format!("cannot encode the report: {e}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(report)
}

/// Prints a progress line on stderr once a second until every executor has finished.
fn watch(config: &Config, shared: &Shared, ramp_start: Instant) {
    let mut last_seen = 0u64;
    let mut next_line = ramp_start + Duration::from_secs(1);
    loop {
        let finished = shared
            .progress
            .iter()
            .all(|p| p.finished.load(Ordering::Acquire));
        if finished {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if !config.progress || now < next_line {
            continue;
        }
        next_line += Duration::from_secs(1);
        let sum = |f: fn(&driver::Progress) -> u64| shared.progress.iter().map(f).sum::<u64>();
        let seen = sum(|p| p.seen.load(Ordering::Relaxed));
        let errors = sum(|p| p.errors.load(Ordering::Relaxed));
        let open = sum(|p| p.open.load(Ordering::Relaxed));
        let phase = match shared.go.get() {
            None => "connecting".to_owned(),
            Some(anchor) if now < anchor.instant + config.warmup => "warm-up".to_owned(),
            Some(anchor) => format!(
                "measuring {:.0}s",
                now.saturating_duration_since(anchor.instant + config.warmup)
                    .as_secs_f64()
            ),
        };
        eprintln!(
            "[{:>5.1}s] {phase:<14} open {open:>6}/{}  {:>9}/s  total {seen}  errors {errors}",
            now.duration_since(ramp_start).as_secs_f64(),
            config.total_connections(),
            seen - last_seen,
        );
        last_seen = seen;
    }
}
