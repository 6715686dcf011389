//! Work sent from one core to another.
//!
//! squall's cores share nothing on the request path; when one core does need another — to
//! fan a message out to WebSocket subscribers everywhere, to tell every core to drop a cache
//! entry — it sends a job. A job is a `Send` closure that travels through glommio's channel
//! mesh (lock-free single-producer rings between each pair of cores) and runs on the
//! receiving core, where it may start local async work that needs no `Send`:
//!
//! ```no_run
//! # async fn example() -> Result<(), squall::Error> {
//! // Every core empties its own cache; each runs the job on its own executor.
//! squall::cores::run_everywhere(|| async {
//!     // per-core state, Rc/RefCell, is reachable here
//! })
//! .await?;
//! // Only core 0 does the nightly report.
//! squall::cores::run_on(0, || async { /* … */ }).await?;
//! # Ok(()) }
//! ```
//!
//! Sending waits while the receiving core's ring is full, so a flood of jobs slows the
//! sender instead of growing memory. A job that panics is logged and dropped; the core goes
//! on. Outside a running server (a test on a bare executor) there is one core, this one.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};

use crate::error::Error;
use crate::per_core::ExecutorLocal;

/// Jobs waiting per pair of cores before a sender waits for room.
const RING_CAPACITY: usize = 1024;

/// What crosses between cores. `Sync` because glommio's mesh shares its rings between
/// threads; a job is still only ever run once, by one core.
pub(crate) type Job = Box<dyn FnOnce() + Send + Sync>;

/// What the server builds once and every core joins at startup: the mesh, and an id that
/// tells this server's messages from other servers' on shared channels (a Redis bridge).
#[derive(Clone)]
pub(crate) struct Mesh {
    builder: MeshBuilder<Job, Full>,
    server_id: u64,
}

/// The mesh for a server of `cores` workers.
pub(crate) fn mesh(cores: usize) -> Mesh {
    Mesh {
        builder: MeshBuilder::full(cores, RING_CAPACITY),
        server_id: new_server_id(),
    }
}

/// An id no other server is likely to draw: `RandomState` is seeded by the OS.
fn new_server_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// This core's place in the mesh.
struct Local {
    peers: Rc<Senders<Job>>,
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "used by the Redis bridge alone")
    )]
    server_id: u64,
}

thread_local! {
    // One per executor thread, so per core (listed in `per_core`).
    static LOCAL: ExecutorLocal<Local> = const { ExecutorLocal::new() };
}

/// Joins this core to the mesh and starts running the jobs other cores send. Called by the
/// server on each core before it reports ready; returns when every core has joined.
pub(crate) async fn join(mesh: Mesh) -> Result<(), Error> {
    let Mesh { builder, server_id } = mesh;
    let (senders, mut receivers) = builder
        .join()
        .await
        .map_err(|_| Error::startup("the cores could not join the cross-core mesh"))?;
    LOCAL.with(|local| {
        local.set(Rc::new(Local {
            peers: Rc::new(senders),
            server_id,
        }))
    });
    for (from, jobs) in receivers.streams() {
        glommio::spawn_local(async move {
            while let Some(job) = jobs.recv().await {
                if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                    let what = crate::error::panic_message(&*panic);
                    tracing::error!(target: "squall::cores", from, "a run_on job panicked: {what}");
                }
            }
        })
        .detach();
    }
    Ok(())
}

fn peers() -> Option<Rc<Senders<Job>>> {
    LOCAL.with(|local| local.get().map(|local| Rc::clone(&local.peers)))
}

/// How many cores the server runs (1 outside a server).
pub fn count() -> usize {
    peers().map_or(1, |p| p.nr_consumers())
}

/// The index of the core this runs on, `0..count()`.
pub fn current() -> usize {
    peers().map_or(0, |p| p.peer_id())
}

/// This server's id, shared by its cores and unlikely to be drawn by another server.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "used by the Redis bridge alone")
)]
pub(crate) fn server_id() -> u64 {
    LOCAL.with(|local| local.get().map_or(0, |local| local.server_id))
}

/// Sends `job` to run on `core` (on this core it runs now). Waits while that core's ring is
/// full. Fails for a core that does not exist, or while the server shuts down.
pub(crate) async fn send(core: usize, job: Job) -> Result<(), Error> {
    let Some(peers) = peers() else {
        return match core {
            0 => {
                job();
                Ok(())
            }
            _ => Err(no_such_core(core, 1)),
        };
    };
    if core == peers.peer_id() {
        job();
        return Ok(());
    }
    if core >= peers.nr_consumers() {
        return Err(no_such_core(core, peers.nr_consumers()));
    }
    peers
        .send_to(core, job)
        .await
        .map_err(|_| Error::unavailable("the server is shutting down"))
}

fn no_such_core(core: usize, count: usize) -> Error {
    Error::internal(format!("no core {core}: the server runs {count}"))
}

/// Runs the future `job` makes on core `core`, as a task of its own there. Returns once
/// the job is handed over, not when it finishes. The closure crosses threads, so what it
/// captures must be `Send + Sync`; the future it makes stays on `core` and need not be.
pub async fn run_on<F, Fut>(core: usize, job: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    send(
        core,
        Box::new(move || {
            glommio::spawn_local(async move {
                if let Err(panic) = crate::error::catch_panics(job).await {
                    let what = crate::error::panic_message(&*panic);
                    tracing::error!(target: "squall::cores", "a job from another core panicked: {what}");
                }
            })
            .detach();
        }),
    )
    .await
}

/// Runs the future `job` makes on every core, this one included.
pub async fn run_everywhere<F, Fut>(job: F) -> Result<(), Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let job = Arc::new(job);
    for core in 0..count() {
        let job = Arc::clone(&job);
        run_on(core, move || job()).await?;
    }
    Ok(())
}

/// Runs `job` on every core, this one included, and collects what each returns, in core
/// order.
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "used by the metrics feature alone")
)]
pub(crate) async fn ask_everywhere<T, F>(job: F) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: Fn() -> T + Send + Sync + Clone + 'static,
{
    let mut replies = Vec::with_capacity(count());
    for core in 0..count() {
        let (reply, answer) = futures_channel::oneshot::channel();
        let job = job.clone();
        run_on(core, move || async move {
            let _ = reply.send(job());
        })
        .await?;
        replies.push(answer);
    }
    let mut answers = Vec::with_capacity(replies.len());
    for answer in replies {
        answers.push(
            answer
                .await
                .map_err(|_| Error::unavailable("a core stopped before it answered"))?,
        );
    }
    Ok(answers)
}
