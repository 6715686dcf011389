//! Commands: [`Cmd`], and the RESP2 encoding every command goes through.

use bytes::BytesMut;
use redis_protocol::resp2::encode::extend_encode_borrowed;
use redis_protocol::resp2::types::BorrowedFrame;
use smallvec::SmallVec;

use crate::error::Error;

/// A command built argument by argument, for arguments of mixed types.
///
/// ```
/// use squall::db::redis::Cmd;
///
/// let mut cmd = Cmd::new("SET");
/// cmd.arg("counter").arg_int(42).arg("EX").arg_int(60);
/// assert_eq!(cmd.len(), 5);
/// ```
#[derive(Clone, Debug)]
pub struct Cmd {
    data: Vec<u8>,
    ends: SmallVec<[usize; 8]>,
}

impl Cmd {
    /// A command named `name` (`"GET"`, `"HSET"`, ...) with no arguments yet.
    pub fn new(name: impl AsRef<[u8]>) -> Cmd {
        let mut cmd = Cmd {
            data: Vec::with_capacity(64),
            ends: SmallVec::new(),
        };
        cmd.arg(name);
        cmd
    }

    /// Appends a binary-safe argument.
    pub fn arg(&mut self, arg: impl AsRef<[u8]>) -> &mut Cmd {
        self.data.extend_from_slice(arg.as_ref());
        self.ends.push(self.data.len());
        self
    }

    /// Appends an integer argument in decimal.
    pub fn arg_int(&mut self, n: i64) -> &mut Cmd {
        self.arg(itoa::Buffer::new().format(n))
    }

    /// The number of parts, the command name included.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the command has no parts; never true for a command made by [`Cmd::new`].
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub(super) fn parts(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.data[start..end]
        })
    }
}

/// Encodes one command as a RESP2 array of bulk strings at the end of `out`.
pub(super) fn encode<'a>(
    out: &mut BytesMut,
    parts: impl Iterator<Item = &'a [u8]>,
) -> Result<(), Error> {
    let frames: SmallVec<[BorrowedFrame<'a>; 8]> = parts.map(BorrowedFrame::BulkString).collect();
    if frames.is_empty() {
        return Err(Error::internal("redis: empty command"));
    }
    extend_encode_borrowed(out, &BorrowedFrame::Array(&frames), false)
        .map(drop)
        .map_err(|e| Error::internal("redis: cannot encode command").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = BytesMut::new();
        let mut cmd = Cmd::new("SET");
        cmd.arg("k").arg(b"v\r\n").arg_int(-5);
        encode(&mut out, cmd.parts()).expect("encodes");
        assert_eq!(
            &out[..],
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\n-5\r\n"
        );
        assert!(encode(&mut out, std::iter::empty()).is_err());
    }
}
