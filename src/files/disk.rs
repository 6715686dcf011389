//! The filesystem side of static files: opening a file without leaving the root, what it is,
//! and reading it in bounded pieces.
//!
//! Serving a request waits for no disk on the core's thread. Files are opened through
//! glommio's io_uring API; once a file is open its inode is in memory, and what is needed of
//! it (kind, size, modification time, inode, resolved path) is read through
//! `/proc/self/fd/N` with ordinary calls that cannot wait for a disk. The exception is
//! `static_url`'s stat and hash ([`version_blocking`], [`stamp_blocking`]), blocking calls
//! because templates call `static_url` synchronously. Reads take what
//! the page cache holds with `preadv2(RWF_NOWAIT)`, which fails rather than wait, and the rest
//! through io_uring (see [`read_at`]).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_lite::Stream;
use glommio::io::{BufferedFile, OpenOptions};
use glommio::sync::Semaphore;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::per_core::ExecutorLocal;

/// What identifies one version of a file: if any of it changes, cached copies are stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Device and inode, so a file replaced by another with the same size and time counts
    /// as changed.
    pub inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            inode: (meta.dev(), meta.ino()),
        }
    }

    /// The strong entity tag: size and modification time, never the content, so it costs
    /// nothing to compute. `suffix` tells precompressed siblings apart.
    pub(crate) fn etag(&self, suffix: &str) -> String {
        let nanos = i128::from(self.mtime.0) * 1_000_000_000 + i128::from(self.mtime.1);
        format!("\"{:x}-{:x}{suffix}\"", self.len, nanos)
    }
}

/// What an opened path turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A device, FIFO or socket: never served.
    Other,
}

/// An open file under the root.
pub(crate) struct Opened {
    pub file: BufferedFile,
    pub kind: Kind,
    pub stamp: Stamp,
    pub modified: SystemTime,
}

/// Why a path could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// It does not exist (404).
    Missing,
    /// It exists but may not be served: outside the root once links are resolved, or not
    /// readable (403).
    Forbidden,
    /// Anything else (500).
    Io(io::Error),
}

impl OpenError {
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            OpenError::Missing => Error::not_found(),
            OpenError::Forbidden => Error::forbidden("forbidden path"),
            OpenError::Io(e) => Error::io(format!("static file {what}"), e),
        }
    }
}

fn classify(e: glommio::GlommioError<()>) -> OpenError {
    // The plain conversion to io::Error keeps the kind but drops the errno.
    let e = match e {
        glommio::GlommioError::EnhancedIoError { source, .. }
        | glommio::GlommioError::IoError(source) => source,
        other => io::Error::from(other),
    };
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => OpenError::Missing,
        Some(libc::EACCES | libc::EPERM | libc::ELOOP) => OpenError::Forbidden,
        _ => OpenError::Io(e),
    }
}

/// Opens `path` (absolute, under `root`) for reading, and refuses it if the file actually
/// opened lies outside `root` (a symbolic link pointing out). Checking the opened file, not
/// the name, leaves no window for the link to change in between.
pub(crate) async fn open_confined(root: &Path, path: &Path) -> Result<Opened, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .buffered_open(path)
        .await
        .map_err(classify)?;
    let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let resolved = std::fs::read_link(&fd_path).map_err(OpenError::Io)?;
    if !resolved.starts_with(root) {
        return Err(OpenError::Forbidden);
    }
    let meta = std::fs::metadata(&fd_path).map_err(OpenError::Io)?;
    let kind = if meta.is_file() {
        Kind::File
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    };
    Ok(Opened {
        file,
        kind,
        stamp: Stamp::of(&meta),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// Whether this process can name its open files through `/proc/self/fd`, which
/// [`open_confined`] relies on.
pub(crate) fn proc_fd_available() -> bool {
    Path::new("/proc/self/fd").is_dir()
}

/// How many bytes of file reads one core keeps in flight. glommio reads a buffered file into
/// a buffer from the executor's io_uring memory (512 KiB per core, `IO_MEMORY` in
/// `server`) and falls back to the heap when that is exhausted. Under load the heap
/// fallback cost a page fault for nearly every 4 KiB read (glibc trims and regrows the heap
/// as 64 connections' buffers come and go): 1 MiB responses over 64 connections took
/// ~150 minor faults and ~720 µs of CPU each, against none and 532 µs with reads queued to
/// stay within this budget (BENCHMARKS.md, "Static files").
const READ_BUDGET: u64 = 384 * 1024;

thread_local! {
    /// The budget of the core this thread runs (one executor per thread).
    static READS_IN_FLIGHT: ExecutorLocal<Semaphore> = const { ExecutorLocal::new() };
}

/// Up to `len` bytes of `file` from `position` (empty at the end of the file).
///
/// What the page cache already holds is copied straight into the buffer that becomes the
/// body chunk, with `preadv2(RWF_NOWAIT)`: the kernel answers `EAGAIN` instead of waiting
/// for the disk, so the core never blocks. Anything else goes through io_uring, into a
/// buffer of glommio's, and is copied out, waiting first for room in the core's read budget.
/// For a hot file the first way saves the io_uring round trip and that copy: 1 MiB
/// responses over 64 connections took 363 µs of CPU each against 532 µs through io_uring
/// alone (medians of five runs, BENCHMARKS.md "Static files").
async fn read_at(file: &BufferedFile, position: u64, len: usize) -> io::Result<Bytes> {
    match read_cached(file, position, len) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EOPNOTSUPP)) => {}
        Err(e) => return Err(e),
    }
    let budget = READS_IN_FLIGHT.with(|budget| budget.get_or_init(|| Semaphore::new(READ_BUDGET)));
    let units = (len as u64).min(READ_BUDGET);
    let _permit = budget
        .acquire_permit(units)
        .await
        .map_err(io::Error::from)?;
    let read = file.read_at(position, len).await?;
    Ok(Bytes::copy_from_slice(&read))
}

/// Reads what the page cache holds of `len` bytes at `position` without waiting for the
/// disk: `EAGAIN` when none of it is cached, `EOPNOTSUPP` on filesystems that cannot say.
fn read_cached(file: &BufferedFile, position: u64, len: usize) -> io::Result<Bytes> {
    let offset = libc::off_t::try_from(position).map_err(io::Error::other)?;
    let mut buffer = BytesMut::with_capacity(len);
    let spare = buffer.spare_capacity_mut();
    let target = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: len.min(spare.len()),
    };
    // SAFETY: `target` covers spare capacity of `buffer`, which is writable and outlives the
    // call; the descriptor stays open as long as `file` is borrowed.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &target, 1, offset, libc::RWF_NOWAIT) };
    let read = usize::try_from(read).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the kernel wrote `read` bytes (at most `iov_len`) at the start of the spare
    // capacity.
    unsafe { buffer.set_len(read) };
    Ok(buffer.freeze())
}

/// Reads the first `len` bytes of `file` (a small file: the caller bounds `len`).
pub(crate) async fn read_all(file: &BufferedFile, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let first = read_at(file, 0, len).await?;
    if first.len() == len {
        // The usual case: one read held the whole file; keep its buffer rather than copy it.
        return Ok(first);
    }
    let mut content = Vec::with_capacity(len);
    content.extend_from_slice(&first);
    while content.len() < len {
        let read = read_at(file, content.len() as u64, len - content.len()).await?;
        if read.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        content.extend_from_slice(&read);
    }
    Ok(Bytes::from(content))
}

/// Bytes `start..start + len` of `file` as a stream of chunks of at most `chunk` bytes. One
/// chunk is read only when the connection asks for it, after writing the one before, so a
/// slow client holds the reader back and memory stays at one chunk. A file that turns out
/// shorter than promised ends the stream with an error, which closes the connection rather
/// than leaving the client waiting for the promised length.
pub(crate) fn stream(
    file: BufferedFile,
    start: u64,
    len: u64,
    chunk: usize,
) -> impl Stream<Item = Result<Bytes, Error>> {
    futures_lite::stream::unfold(
        (file, start, len),
        move |(file, position, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            let want = usize::try_from(remaining).map_or(chunk, |r| r.min(chunk));
            let piece = match read_at(&file, position, want).await {
                Ok(read) if !read.is_empty() => read,
                Ok(_) => {
                    let e = Error::internal("static file shrank while being sent");
                    return Some((Err(e), (file, position, 0)));
                }
                Err(e) => {
                    let e = Error::io("static file read failed", e);
                    return Some((Err(e), (file, position, 0)));
                }
            };
            let advanced = piece.len() as u64;
            Some((Ok(piece), (file, position + advanced, remaining - advanced)))
        },
    )
}

/// The version tag of content: the first 8 bytes of its SHA-256, in hex.
fn version_of(hasher: Sha256) -> String {
    use std::fmt::Write;
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(16);
    for byte in &digest[..8] {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The version tag of `content`.
pub(crate) fn version_of_bytes(content: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(content);
    version_of(hasher)
}

/// The version tag of the first `len` bytes of an open file, read in `chunk`-sized pieces.
pub(crate) async fn version_of_file(
    file: &BufferedFile,
    len: u64,
    chunk: usize,
) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut position = 0;
    while position < len {
        let want = usize::try_from(len - position).map_or(chunk, |r| r.min(chunk));
        let read = read_at(file, position, want).await?;
        if read.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being hashed",
            ));
        }
        hasher.update(&read[..]);
        position += read.len() as u64;
    }
    Ok(version_of(hasher))
}

/// For `static_url`, which templates call synchronously: the stamp and version tag of
/// `path`, read with blocking calls, refusing a file whose real path leaves `root`.
pub(crate) fn version_blocking(root: &Path, path: &Path) -> io::Result<(Stamp, String)> {
    use std::io::Read;
    let real: PathBuf = std::fs::canonicalize(path)?;
    if !real.starts_with(root) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "outside the static root",
        ));
    }
    let mut file = std::fs::File::open(&real)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok((Stamp::of(&meta), version_of(hasher)))
}

/// The stamp of `path` now, with blocking calls (for `static_url`'s revalidation).
pub(crate) fn stamp_blocking(path: &Path) -> io::Result<Stamp> {
    std::fs::metadata(path).map(|meta| Stamp::of(&meta))
}
