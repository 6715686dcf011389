//! Listening on a Unix stream socket (`SQUALL_ADDR=unix:/path`), for a server behind a proxy
//! on the same machine.
//!
//! ## One socket for every core
//!
//! `SO_REUSEPORT` spreads connections only over TCP and UDP sockets, so the cores cannot
//! each bind the path. Instead one socket is bound and every core gets a duplicate of its
//! descriptor, registered in that core's own edge-triggered epoll set. A connection wakes
//! every core's set; each takes connections with `accept4` until the queue is empty, and a
//! core that loses the race gets `EAGAIN` and waits for the next edge. So the cores share
//! one queue, and a busy core leaves the connections to the one that reaches `accept` first.
//!
//! `EPOLLEXCLUSIVE` would not reduce those wake-ups here: the kernel counts an exclusive
//! wake-up as delivered only to a thread sleeping in `epoll_wait` on the set, and ours are
//! never slept on (the io_uring ring polls the epoll descriptor). Measured: two epoll sets
//! registered on one listening Unix socket with `EPOLLIN | EPOLLET | EPOLLEXCLUSIVE` and
//! watched by `poll` both report a single connection, as they do without the flag. With two
//! cores the extra wake-up costs one failed `accept4` per burst of connections.
//!
//! Measured (tests/unix_socket.rs `two_cores_share_the_connections`, debug build, two
//! shared vCPUs, 2026-12-05): 50 concurrent clients of 5 requests each, five runs, gave the
//! cores 16/34, 33/17, 8/42, 36/14 and 8/42 connections. Uneven, since the core that reaches
//! `accept` first takes what is queued, but neither core is left out; a core per socket
//! would need a path per core, which the proxy in front would then have to balance.
//!
//! ## The socket file
//!
//! - A path where a socket exists that nobody listens on (`connect` is refused: a server
//!   that crashed or was killed) is removed and bound again. A live server there makes
//!   startup fail with "address in use", unless the configuration asks to take over
//!   ([`PortSharing::Takeover`]): then the new socket is bound under a temporary name beside
//!   the path and renamed over it, so new connections go to the new server at once while the
//!   old one drains what it accepted. Anything else at the path (a file, a directory, a
//!   symbolic link) is never touched: startup fails and says what is there.
//! - The file's mode is set on the socket before `bind` (Linux creates the file with the
//!   socket's mode less the umask), so it is never more open than asked for, and then with
//!   `chmod` to exactly the configured mode (the umask may have removed bits).
//! - The file is removed when the server stops, if it is still the one this server bound
//!   (same device and inode): after a takeover, the path is the new server's.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Type};

use crate::config::PortSharing;
use crate::error::Error;

/// The socket file this server bound, removed when dropped if it is still there.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The path the server listens on.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the Unix socket at `path` with `mode`, listening with `backlog`, and returns one
/// descriptor of it per core (`count`) and the file to remove at shutdown.
pub(crate) fn bind_all(
    path: &Path,
    mode: u32,
    count: usize,
    backlog: u32,
    sharing: PortSharing,
) -> Result<(Vec<socket2::Socket>, SocketFile), Error> {
    let fail =
        |why: String| Error::startup(format!("cannot listen on unix:{}: {why}", path.display()));
    let (socket, file) = match sharing {
        PortSharing::Exclusive => {
            clear_stale(path).map_err(fail)?;
            bind_at(path, mode, backlog).map_err(|e| fail(describe(e)))?
        }
        PortSharing::Takeover => {
            refuse_if_not_socket(path).map_err(fail)?;
            take_over(path, mode, backlog).map_err(fail)?
        }
    };
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        sockets.push(
            socket.try_clone().map_err(|e| {
                Error::io("cannot duplicate the unix listening socket for a core", e)
            })?,
        );
    }
    sockets.push(socket);
    Ok((sockets, file))
}

/// Makes room at `path` for a new socket: removes a socket nobody listens on; refuses a
/// live one and anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), String> {
    if !refuse_if_not_socket(path)? {
        return Ok(());
    }
    match probe(path) {
        Probe::Refused => match std::fs::remove_file(path) {
            Ok(()) => {
                tracing::info!(target: "squall::server", "removed stale unix socket {} (nothing listened on it)", path.display());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "a stale socket is in the way and cannot be removed: {e}"
            )),
        },
        Probe::Served => Err(
            "address in use: another server already listens on it; stop it, or if this is \
             the new half of a restart set SQUALL_PORT_SHARING=takeover \
             (Config::port_sharing) to take the path over"
                .to_owned(),
        ),
        Probe::Unknown(e) => Err(format!("cannot tell whether a server listens on it: {e}")),
    }
}

/// Whether a socket exists at `path` (`false`: nothing does); an error for anything else,
/// which is never removed.
fn refuse_if_not_socket(path: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(true),
        Ok(meta) => {
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_file() {
                "a regular file"
            } else {
                "not a socket"
            };
            Err(format!(
                "the path exists and is {what}, not a socket; it is left alone: remove it or \
                 choose another path"
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot inspect the path: {e}")),
    }
}

/// What connecting to an existing socket file says about it.
enum Probe {
    /// Refused: nobody listens (the server that bound it is gone).
    Refused,
    /// Accepted, or the queue is full: a server listens.
    Served,
    /// Something else (no permission, say).
    Unknown(io::Error),
}

fn probe(path: &Path) -> Probe {
    let attempt = || -> io::Result<()> {
        // Non-blocking, so a live server with a full queue answers EAGAIN instead of
        // holding startup.
        let socket =
            socket2::Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        socket.connect(&SockAddr::unix(path)?)
    };
    match attempt() {
        Ok(()) => Probe::Served,
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Probe::Refused,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Probe::Served,
        Err(e) => Probe::Unknown(e),
    }
}

/// Binds and listens at `path` with `mode`.
fn bind_at(path: &Path, mode: u32, backlog: u32) -> io::Result<(socket2::Socket, SocketFile)> {
    let socket = socket2::Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
    // Linux creates the file with the socket inode's mode less the umask, so the file is
    // never more open than `mode`, even for the moment before the chmod below.
    // SAFETY: fchmod on a descriptor we own; no pointers.
    if unsafe { libc::fchmod(socket.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&SockAddr::unix(path)?)?;
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    // The umask may have taken bits the configuration asks for.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok((socket, file))
}

/// Binds under a temporary name beside `path` and renames the socket over it: the path
/// goes from the old server to this one in one step.
fn take_over(
    path: &Path,
    mode: u32,
    backlog: u32,
) -> Result<(socket2::Socket, SocketFile), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}", std::process::id()));
    // Left by a process with this id that died: ours to replace.
    if refuse_if_not_socket(&temporary)? {
        let _ = std::fs::remove_file(&temporary);
    }
    let (socket, mut file) = bind_at(&temporary, mode, backlog).map_err(|e| {
        format!(
            "cannot bind {} to take over: {}",
            temporary.display(),
            describe(e)
        )
    })?;
    std::fs::rename(&temporary, path)
        .map_err(|e| format!("cannot rename {} over it: {e}", temporary.display()))?;
    file.path = path.to_owned();
    Ok((socket, file))
}

fn describe(err: io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            "address in use: another socket was bound there meanwhile".to_owned()
        }
        io::ErrorKind::NotFound => "its directory does not exist".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("squall-unix-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn the_file_gets_the_mode_and_goes_at_the_end_if_still_ours() {
        let dir = temp_dir("mode");
        let path = dir.join("s.sock");
        let (sockets, file) = bind_all(&path, 0o600, 2, 16, PortSharing::Exclusive).expect("bind");
        assert_eq!(sockets.len(), 2);
        let mode = std::fs::metadata(&path)
            .expect("bound")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        // Served: a second server is refused.
        let err = bind_all(&path, 0o600, 1, 16, PortSharing::Exclusive).expect_err("in use");
        assert!(err.to_string().contains("address in use"), "{err}");
        drop((sockets, file));
        assert!(!path.exists(), "removed with the server");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_takeover_renames_over_the_old_socket_which_then_leaves_the_path_alone() {
        let dir = temp_dir("takeover");
        let path = dir.join("s.sock");
        let (old_sockets, old_file) =
            bind_all(&path, 0o660, 1, 16, PortSharing::Exclusive).expect("old");
        let (new_sockets, new_file) =
            bind_all(&path, 0o660, 1, 16, PortSharing::Takeover).expect("new");
        drop((old_sockets, old_file));
        assert!(path.exists(), "the new server's socket stays");
        std::os::unix::net::UnixStream::connect(&path).expect("the new server listens");
        drop((new_sockets, new_file));
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
