//! Starting and stopping: one pinned glommio executor per core, each with its own
//! `SO_REUSEPORT` listener, application and connections.
//!
//! Startup does everything that can fail before any core runs — configuration, io_uring,
//! memory lock, CPU placement (the affinity set and the cgroup's CPU quota), the descriptor
//! limit, binding — so a mistake is one clear error rather than a panic in
//! a worker thread. Binding refuses an address another server already listens on, unless
//! the configuration asks to start beside it ([`PortSharing::Takeover`](crate::PortSharing)).
//! Shutdown is one eventfd that every core watches.
//!
//! ## Socket activation
//!
//! Started by systemd with sockets to serve (`LISTEN_FDS` and `LISTEN_PID`), the server
//! adopts them instead of binding: one passed socket is shared by every core (one accept
//! queue), or one per worker (a socket unit that lists the address once per worker with
//! `ReusePort=yes`) keeps a queue per core. A `LISTEN_PID` that is not this process, another
//! number of sockets, or a descriptor that is not a listening TCP socket is a startup error.
//!
//! ## Restarts
//!
//! With a handoff socket ([`Config::handoff`](crate::Config::handoff)) a new server takes
//! the running one's listening sockets instead of binding, and the old one drains once the
//! new one is ready: see `handoff.rs`. Sockets taken over are shared out over this server's
//! cores (`listen::spread_over_cores`), whatever the old server's core count was.
//!
//! ## Signals
//!
//! [`Server::serve`] catches SIGINT, SIGTERM and SIGHUP (`os::StopSignals`); [`Server::spawn`]
//! leaves signals alone.
//!
//! | signal | what the server does |
//! |---|---|
//! | SIGTERM or SIGINT, the first | turns `/readyz` ([`health`](crate::health)) to 503, goes on accepting and serving for the drain delay (`Config::drain_delay`, default none), then stops accepting, lets requests in flight finish (up to `shutdown_timeout`), closes idle connections (each gets 250 ms to send one more request, answered with `Connection: close`), returns |
//! | the same signal again within 1 s of the first | nothing more: the same request to drain, logged only at debug level |
//! | the other signal, or the same one more than 1 s later | exits at once with status 128 + the signal's number (143 for SIGTERM, 130 for SIGINT) |
//! | SIGHUP | reloads the TLS certificate and key files ([`RunningServer::reload_tls`]); without TLS, logs that there is nothing to reload |
//!
//! The 1 s window is there because one stop often arrives twice: `timeout(1)` signals the
//! process and then its process group, a few milliseconds apart, and a supervisor may do
//! the same. Someone who really means "now" repeats it after more than a second, or sends
//! the other signal.

mod conn;
mod core;
mod handoff;
mod io;
mod listen;
mod os;
mod pool;
#[cfg(feature = "tls")]
mod reload;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod unix;

use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};

use self::core::Core;
use self::listen::accept_loop;
use self::os::{
    block_signals, check_io_uring, placement, raise_descriptor_limit, raise_memlock_limit,
    signal_name, unblock_signals, EventFd, Stop, StopRequests, StopSignals, REPEAT_WINDOW,
};
use crate::config::{Config, ListenAddr};
use crate::error::Error;
use crate::router::IntoApp;

/// io_uring memory per executor. Static-file reads that miss the page cache take their
/// buffers from it, and `files` keeps them within it (a 384 KiB per-core read budget);
/// nothing else uses it, so glommio's 10 MiB default would mostly be locked memory unused.
const IO_MEMORY: usize = 512 * 1024;

/// Helper threads per core for `tasks::run_blocking`; glommio starts them when the core
/// starts. Two let one long call (a password hash) not queue the next behind it.
const BLOCKING_THREADS_PER_CORE: usize = 2;

/// A configured server, ready to start.
///
/// Out of file descriptors (or kernel memory for sockets), a core goes on serving the
/// connections it has and pauses accepting until one of them closes or, at most 100 ms
/// later, tries again; new clients wait meanwhile in the listen backlog. It logs a warning
/// on target `squall::server` when accepting starts failing, at most once a second while
/// it goes on failing (with how many accepts failed), and a line when it accepts again.
#[derive(Clone, Debug)]
pub struct Server {
    config: Config,
}

impl Server {
    /// A server with `config`.
    pub fn new(config: Config) -> Server {
        Server { config }
    }

    /// A server configured from `SQUALL_*` environment variables.
    pub fn from_env() -> Result<Server, Error> {
        Ok(Server::new(Config::from_env()?))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully. `app` runs once on each
    /// core to build that core's application.
    /// A factory that returns `Result<App, Error>` stops the server with its error.
    ///
    /// The same signal again within 1 s of the first is the same request to drain (`timeout`
    /// sends one twice, to the process and to its group); the other signal, or the same one
    /// later, exits at once with status 128 + the signal's number. Handlers for SIGINT and
    /// SIGTERM are installed while it serves, and the previous ones put back when it returns.
    pub fn serve<F, A>(self, app: F) -> Result<(), Error>
    where
        F: Fn() -> A + Send + Sync + 'static,
        A: IntoApp,
    {
        let drain_delay = self.config.drain_delay;
        let signals = StopSignals::catch()?;
        // Blocked while the workers start, so that they inherit the mask and the handler
        // never interrupts an executor; this thread takes the signals again after.
        block_signals()?;
        let running = self.spawn(app);
        unblock_signals();
        let running = running?;
        let scheme = if running.is_tls() { "https" } else { "http" };
        let at = match running.listen_addr() {
            ListenAddr::Tcp(addr) => format!("{scheme}://{addr}"),
            unix => format!("{unix} ({scheme})"),
        };
        tracing::info!(target: "squall::server", "listening on {at} with {}", os::workers_text(running.workers()));
        let mut stops = StopRequests::default();
        while !running.is_finished() {
            let Some(signal) = signals.wait(Duration::from_millis(200)) else {
                continue;
            };
            let name = signal_name(signal);
            if signal == libc::SIGHUP {
                reload_on_hangup(&running);
                continue;
            }
            match stops.on_signal(signal, Instant::now()) {
                Stop::Drain => {
                    let delay = drain_delay;
                    if delay.is_zero() {
                        tracing::info!(target: "squall::server", "signal {signal} ({name}): shutting down gracefully");
                    } else {
                        tracing::info!(target: "squall::server", "signal {signal} ({name}): shutting down gracefully after a drain delay of {delay:?} (/readyz answers 503 meanwhile)");
                    }
                    running.shutdown();
                }
                Stop::Repeated => {
                    tracing::debug!(target: "squall::server", "signal {signal} ({name}) again within {} ms: already shutting down", REPEAT_WINDOW.as_millis());
                }
                Stop::Exit => {
                    tracing::warn!(target: "squall::server", "second signal {signal} ({name}): exiting now");
                    std::process::exit(128 + signal);
                }
            }
        }
        running.join()
    }

    /// Starts the server in the background and returns a handle to stop it; signals are left
    /// alone. This is what tests and embedding applications use.
    pub fn spawn<F, A>(self, app: F) -> Result<RunningServer, Error>
    where
        F: Fn() -> A + Send + Sync + 'static,
        A: IntoApp,
    {
        self.config.validate()?;
        check_io_uring()?;
        raise_memlock_limit()?;
        let cpus = placement(self.config.workers)?;
        raise_descriptor_limit(cpus.len(), self.config.limits.max_connections_per_core);
        let mut predecessor = None;
        let mut unix_file = None;
        let sockets = match (listen::passed_listeners(cpus.len())?, &self.config.addr) {
            (Some(passed), _) => passed,
            (None, ListenAddr::Tcp(addr)) => match self.take_over_listeners(*addr)? {
                Some((taken, from)) => {
                    predecessor = Some(from);
                    taken
                }
                None => listen::bind_all(
                    *addr,
                    cpus.len(),
                    self.config.backlog,
                    self.config.port_sharing,
                )?,
            },
            (None, ListenAddr::Unix(path)) => {
                let (sockets, file) = unix::bind_all(
                    path,
                    self.config.unix_mode,
                    cpus.len(),
                    self.config.backlog,
                    self.config.port_sharing,
                )?;
                unix_file = Some(file);
                sockets
            }
        };
        let local_addr = match unix_file {
            Some(_) => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            None => sockets
                .first()
                .and_then(|s| s.local_addr().ok())
                .and_then(|a| a.as_socket())
                .ok_or_else(|| Error::startup("no listener was bound"))?,
        };
        // What the handoff socket offers the next server: the listeners themselves, not one
        // duplicate per core.
        let offered = match &self.config.handoff {
            Some(_) => sockets
                .iter()
                .map(socket2::Socket::try_clone)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::io("cannot keep the listening sockets for a restart", e))?,
            None => Vec::new(),
        };
        let per_core = listen::spread_over_cores(sockets, cpus.len())?;
        #[cfg(feature = "tls")]
        let (tls_reloader, mut core_tls) = match &self.config.tls {
            Some(tls) => {
                let (reloader, cores) = reload::start(tls, cpus.len())?;
                (Some(reloader), cores.into_iter().map(Some).collect())
            }
            None => (None, Vec::new()),
        };
        let stop = Arc::new(EventFd::new()?);
        let handed_over = Arc::new(AtomicBool::new(false));
        let core_mesh = crate::cores::mesh(cpus.len());
        let app = Arc::new(app);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();

        let mut threads = Vec::with_capacity(cpus.len());
        for (index, (cpu, sockets)) in cpus.into_iter().zip(per_core).enumerate() {
            let app = Arc::clone(&app);
            let worker = Worker {
                index,
                cpu,
                config: self.config.clone(),
                sockets,
                core_mesh: core_mesh.clone(),
                stop: Arc::clone(&stop),
                handed_over: Arc::clone(&handed_over),
                ready: ready_tx.clone(),
                #[cfg(feature = "tls")]
                tls: core_tls.get_mut(index).and_then(Option::take),
            };
            let thread = std::thread::Builder::new()
                .name(format!("squall-{index}"))
                .spawn(move || run_worker(worker, app))
                .map_err(|e| Error::io("cannot start a worker thread", e))?;
            threads.push(thread);
        }
        drop(ready_tx);

        let mut running = RunningServer {
            local_addr,
            unix_file,
            stop,
            threads,
            handoff: None,
            #[cfg(feature = "tls")]
            tls: tls_reloader,
        };
        for _ in 0..running.threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    running.shutdown();
                    let _ = running.join();
                    return Err(e);
                }
                Err(_) => {
                    running.shutdown();
                    let _ = running.join();
                    return Err(Error::startup("a worker stopped before it was ready"));
                }
            }
        }
        if let Some(path) = &self.config.handoff {
            let stop = Arc::clone(&running.stop);
            let on_taken = move |_successor| {
                handed_over.store(true, Ordering::Relaxed);
                stop.signal();
            };
            // On failure `running` is dropped, which stops the cores.
            running.handoff = Some(handoff::listen(path, offered, local_addr, on_taken)?);
        }
        if let Some(predecessor) = predecessor {
            tracing::info!(
                target: "squall::server",
                "took over the listening sockets of process {} (SQUALL_HANDOFF); it drains and exits",
                predecessor.pid()
            );
            predecessor.release();
        }
        Ok(running)
    }

    /// The listening sockets of the server running on the handoff socket, if the
    /// configuration names one and a server listens there.
    fn take_over_listeners(
        &self,
        addr: std::net::SocketAddr,
    ) -> Result<Option<(Vec<socket2::Socket>, handoff::Predecessor)>, Error> {
        match &self.config.handoff {
            Some(path) => handoff::take_over(path, addr),
            None => Ok(None),
        }
    }
}

/// SIGHUP: reload the TLS certificates, or say there is nothing to reload.
fn reload_on_hangup(running: &RunningServer) {
    #[cfg(feature = "tls")]
    if running.is_tls() {
        match running.reload_tls() {
            Ok(loaded) => {
                tracing::info!(target: "squall::server", "SIGHUP: TLS reloaded: {loaded}")
            }
            Err(e) => {
                tracing::error!(target: "squall::server", "SIGHUP: TLS reload failed, keeping the certificates in use: {e}")
            }
        }
        return;
    }
    let _ = running;
    tracing::info!(target: "squall::server", "SIGHUP: no TLS configured, nothing to reload");
}

/// A server running in the background.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: std::net::SocketAddr,
    /// The Unix socket served, removed when the server has stopped (after `threads`).
    unix_file: Option<unix::SocketFile>,
    stop: Arc<EventFd>,
    threads: Vec<JoinHandle<Result<(), Error>>>,
    /// Where the next server takes the listening sockets over, if configured.
    handoff: Option<handoff::HandoffSocket>,
    #[cfg(feature = "tls")]
    tls: Option<reload::TlsReloader>,
}

impl RunningServer {
    /// The address the server listens on (with the real port when configured with port 0);
    /// on a Unix socket, which has no IP address, `0.0.0.0:0` (see
    /// [`listen_addr`](RunningServer::listen_addr)).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// Where the server listens: its TCP address (with the real port), or its Unix socket.
    pub fn listen_addr(&self) -> ListenAddr {
        match &self.unix_file {
            Some(file) => ListenAddr::Unix(file.path().to_owned()),
            None => ListenAddr::Tcp(self.local_addr),
        }
    }

    /// Number of worker cores.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Reads the TLS certificate and key files again and, when they check out, hands them to
    /// every core: new handshakes get the new certificate, open connections carry on. On any
    /// problem (a missing or broken file, an expired certificate, a key that does not match)
    /// the certificates in use stay and the error says why. Returns a description of what
    /// was loaded. `serve` calls this on `SIGHUP`.
    #[cfg(feature = "tls")]
    pub fn reload_tls(&self) -> Result<String, Error> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Err(Error::config(
                "this server has no TLS configuration to reload",
            )),
        }
    }

    /// Begins graceful shutdown on every core; returns at once.
    pub fn shutdown(&self) {
        self.stop.signal();
    }

    /// Whether every worker has stopped.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Waits for every worker to stop.
    pub fn join(mut self) -> Result<(), Error> {
        let mut first_error = None;
        for thread in self.threads.drain(..) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(Error::startup("a worker thread panicked")));
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

/// What one worker thread is given.
struct Worker {
    index: usize,
    cpu: usize,
    config: Config,
    /// The listening sockets this core accepts on: one, unless a restart took over more
    /// sockets than there are cores.
    sockets: Vec<socket2::Socket>,
    core_mesh: crate::cores::Mesh,
    stop: Arc<EventFd>,
    /// Set when the stop is a handoff to the next server: the port stays served, so the
    /// drain delay is skipped.
    handed_over: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), Error>>,
    #[cfg(feature = "tls")]
    tls: Option<reload::CoreTls>,
}

/// One core: build the application, join the other cores' mesh, then accept and serve until
/// shutdown.
fn run_worker<F, A>(worker: Worker, app: Arc<F>) -> Result<(), Error>
where
    F: Fn() -> A + Send + Sync + 'static,
    A: IntoApp,
{
    let Worker {
        index,
        cpu,
        config,
        sockets,
        core_mesh,
        stop,
        handed_over,
        ready,
        #[cfg(feature = "tls")]
        tls,
    } = worker;
    let executor = LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(&format!("squall-{index}"))
        .io_memory(IO_MEMORY)
        // `tasks::run_blocking` work goes to these threads; unpinned, so the OS can run it
        // beside the core rather than on it.
        .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS_PER_CORE))
        .make()
        .map_err(|e| Error::startup(format!("cannot start the executor on cpu {cpu}: {e}")));
    let executor = match executor {
        Ok(executor) => executor,
        Err(e) => {
            let _ = ready.send(Err(Error::startup(e.to_string())));
            return Err(e);
        }
    };
    executor.run(async move {
        let built = std::panic::catch_unwind(AssertUnwindSafe(|| app()))
            .map_err(|_| Error::config("the application factory panicked"))
            .and_then(IntoApp::into_app)
            .and_then(|app| app.into_router(&config));
        let router = match built {
            Ok(router) => router,
            Err(e) => {
                let _ = ready.send(Err(Error::config(e.to_string())));
                return Err(e);
            }
        };
        let stop_watch = stop.watch()?;
        // Every core must join before any can publish; a core that failed to start makes
        // `spawn` signal the stop, which ends the wait here.
        let joined = futures_lite::future::or(
            async { Some(crate::cores::join(core_mesh).await) },
            async {
                let _ = stop_watch.readable().await;
                None
            },
        )
        .await;
        match joined {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                let _ = ready.send(Err(Error::startup(e.to_string())));
                return Err(e);
            }
            None => return Ok(()),
        }
        // The core's epoll set is made before the first connection, so running out of
        // descriptors later cannot stop connections from being served.
        let listeners = match crate::net::prepare().and_then(|()| {
            sockets
                .into_iter()
                .map(|socket| crate::net::Listener::new(OwnedFd::from(socket)))
                .collect::<std::io::Result<Vec<_>>>()
        }) {
            Ok(listeners) => listeners,
            Err(e) => {
                let e = Error::io("cannot set up the core's epoll set and listener", e);
                let _ = ready.send(Err(Error::startup(e.to_string())));
                return Err(e);
            }
        };
        let shutdown_timeout = config.shutdown_timeout;
        let drain_delay = config.drain_delay;
        let core = Rc::new(Core::new(config, router));
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            if let Err(e) = tls.install(&core) {
                let _ = ready.send(Err(Error::startup(e.to_string())));
                return Err(e);
            }
            glommio::spawn_local(tls.receive(Rc::clone(&core))).detach();
        }
        let _ = ready.send(Ok(()));

        let ticker = glommio::spawn_local(Rc::clone(&core).run_ticker()).detach();
        let queue_probe = core.spawn_queue_probe();
        // A stop turns `/readyz` to 503 at once; with a drain delay the core goes on
        // accepting and serving as before for that long, so that a load balancer stops
        // sending first, and only then does the graceful shutdown begin.
        let shutdown = async move {
            let _ = stop_watch.readable().await;
            crate::per_core::begin_draining();
            if !drain_delay.is_zero() && !handed_over.load(Ordering::Relaxed) {
                glommio::timer::sleep(drain_delay).await;
            }
        };
        accept_loop(Rc::clone(&core), &listeners, shutdown).await;
        // Closed now rather than after the drain: the accept loop took what was queued, and
        // a listener left open would collect connections nobody accepts.
        drop(listeners);

        core.begin_shutdown();
        let drained = core.connections.close();
        let finished = futures_lite::future::or(async { drained.await.is_ok() }, async {
            glommio::timer::sleep(shutdown_timeout).await;
            false
        })
        .await;
        if !finished {
            tracing::warn!(target: "squall::server", "core {index}: shutdown deadline passed with requests in flight");
        }
        ticker.cancel();
        if let Some(probe) = queue_probe {
            probe.cancel();
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `serve` makes for a fresh connection on a bare core: what an
    /// idle connection's task holds.
    fn connection_future_size<F: std::future::Future>(
        serve: impl FnOnce(Rc<Core>, crate::net::Socket, crate::request::Peer) -> F + 'static,
    ) -> usize {
        LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(IO_MEMORY)
            .make()
            .expect("executor")
            .run(async {
                let bound = listen::bind_all(
                    "127.0.0.1:0".parse().expect("literal"),
                    1,
                    8,
                    crate::config::PortSharing::Exclusive,
                )
                .expect("bind")
                .remove(0);
                let listener = crate::net::Listener::new(bound.into()).expect("listener");
                let addr = listener.local_addr().expect("addr");
                let client = crate::net::Socket::connect(addr, None)
                    .await
                    .expect("connect");
                let (server_side, peer) = listener.accept().await.expect("accept");
                // The listener's TCP_NODELAY is inherited, which is why conn::serve sets none.
                assert!(server_side.as_socket2().tcp_nodelay().expect("getsockopt"));
                let router = crate::App::new().into_router(Vec::new()).expect("router");
                let core = Rc::new(Core::new(Config::default(), router));
                let peer = crate::request::Peer::Ip(peer.expect("a TCP peer"));
                let future = serve(core, server_side, peer);
                let size = std::mem::size_of_val(&future);
                drop((future, client));
                size
            })
    }

    /// A TLS connection's task holds the same driver plus what the handshake needs; the
    /// handshake's result must not stay reserved in it (`tls::serve`).
    #[test]
    #[cfg(feature = "tls")]
    fn an_idle_tls_connection_future_stays_small() {
        let size = connection_future_size(|core, socket, peer| {
            let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(rustls::server::ResolvesServerCertUsingSni::new()));
            tls::serve(core, socket, peer, Arc::new(config))
        });
        // 472 bytes in the test build (rustc 1.95), the plain driver's and a little more;
        // 1,848 while the handshake's result was awaited inside a `match`, which kept a whole
        // session reserved in every task, and 592 while `serve` was an `async fn` keeping its
        // arguments.
        assert!(
            size <= 512,
            "the TLS connection future grew to {size} bytes"
        );
    }

    /// Every idle connection holds its task's future; its size is most of what an idle
    /// connection costs (the read and output buffers go back to the core's pools).
    #[test]
    fn an_idle_connection_future_stays_small() {
        let size = connection_future_size(conn::serve);
        println!("connection future: {size} bytes");
        println!(
            "head {} response {} request {} decoded {}",
            std::mem::size_of::<crate::http::Head>(),
            std::mem::size_of::<crate::Response>(),
            std::mem::size_of::<crate::Request>(),
            std::mem::size_of::<Result<Option<(crate::http::Head, usize)>, crate::http::ParseError>>(
            )
        );
        // 456 bytes in the test build (rustc 1.95); an idle connection measures 904 bytes in all
        // at 10,000 connections (BENCHMARKS.md, "Idle keep-alive connections").
        assert!(size <= 512, "the connection future grew to {size} bytes");
    }

    /// The driver knows its transport only through the seam: over an in-memory pipe it
    /// answers pipelined requests in order, byte for byte as over a socket.
    #[test]
    fn the_driver_serves_an_in_memory_transport() {
        let output = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(IO_MEMORY)
            .make()
            .expect("executor")
            .run(async {
                let app = crate::App::new()
                    .get("/a", |_req| async { "first" })
                    .post("/b", |mut req: crate::Request| async move {
                        req.bytes().await.unwrap_or_default()
                    });
                let router = app.into_router(Vec::new()).expect("router");
                let core = Rc::new(Core::new(Config::default(), router));
                let (pipe, output) = transport::Pipe::new(
                    b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
                      POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecond\
                      GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                let peer = crate::request::Peer::Ip(([127, 0, 0, 1], 1).into());
                conn::serve(core, pipe, peer).await;
                let written = output.borrow().clone();
                String::from_utf8(written).expect("utf-8")
            });
        // Bodies carry no line end, so a status line may start mid-line.
        let statuses: Vec<&str> = output
            .match_indices("HTTP/1.1 ")
            .filter_map(|(at, _)| output[at..].lines().next())
            .collect();
        assert_eq!(
            statuses,
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 200 OK",
                "HTTP/1.1 404 Not Found"
            ],
            "{output}"
        );
        let first = output.find("first").expect("first body");
        let second = output.find("second").expect("second body");
        assert!(first < second, "{output}");
    }
}
