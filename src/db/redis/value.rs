//! Replies: [`Value`] decoded from RESP2 frames, and the errors that error replies become.

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

use crate::error::Error;

/// One reply from Redis (RESP2).
///
/// A top-level error reply becomes an `Err` of the call that sent the command; `Value::Error`
/// only appears nested, for example inside the reply to `EXEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// The null bulk string or null array: a missing key, a timed-out `BLPOP`.
    Nil,
    /// An integer reply (`INCR`, `DEL`, `EXISTS`, ...).
    Int(i64),
    /// A bulk string: binary-safe data.
    Bulk(Bytes),
    /// A simple status string such as `OK` or `PONG`.
    Status(Bytes),
    /// An array reply (`MGET`, `KEYS`, `EXEC`, ...).
    Array(Vec<Value>),
    /// An error reply nested in an array.
    Error(String),
}

impl Value {
    /// Whether this is [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The bytes of a bulk or status string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            _ => None,
        }
    }

    /// A bulk or status string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// An integer reply, or a string holding a decimal integer (`GET` of a counter).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => self.as_str().and_then(|s| s.parse().ok()),
        }
    }

    /// Takes the bytes of a bulk or status string without copying.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            _ => None,
        }
    }

    /// Takes the elements of an array reply.
    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(values) => Some(values),
            _ => None,
        }
    }
}

impl From<BytesFrame> for Value {
    fn from(frame: BytesFrame) -> Value {
        match frame {
            BytesFrame::Null => Value::Nil,
            BytesFrame::Integer(n) => Value::Int(n),
            BytesFrame::BulkString(b) => Value::Bulk(b),
            BytesFrame::SimpleString(b) => Value::Status(b),
            BytesFrame::Error(message) => Value::Error(message.to_string()),
            BytesFrame::Array(frames) => {
                Value::Array(frames.into_iter().map(Value::from).collect())
            }
        }
    }
}

/// The error for an error reply. Replies that say "try later" answer 503, others 500.
pub(super) fn reply_error(message: &str) -> Error {
    const TRANSIENT: [&str; 6] = [
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "READONLY",
    ];
    let code = message.split(' ').next().unwrap_or_default();
    let text = format!("redis: {message}");
    if TRANSIENT.contains(&code) {
        Error::unavailable(text)
    } else {
        Error::internal(text)
    }
}

pub(super) fn unexpected(command: &str, value: &Value) -> Error {
    Error::internal(format!("redis: unexpected reply to {command}: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use redis_protocol::resp2::decode::decode_bytes_mut;

    #[test]
    fn replies_decode_into_values() {
        let mut buf = BytesMut::from(&b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n+OK\r\n-ERR x\r\n"[..]);
        let frames: Vec<Value> = std::iter::from_fn(|| {
            decode_bytes_mut(&mut buf)
                .expect("valid")
                .map(|(f, _, _)| Value::from(f))
        })
        .collect();
        assert_eq!(
            frames,
            vec![
                Value::Array(vec![
                    Value::Bulk(Bytes::from_static(b"a")),
                    Value::Nil,
                    Value::Int(7)
                ]),
                Value::Status(Bytes::from_static(b"OK")),
                Value::Error("ERR x".to_owned()),
            ]
        );
        assert_eq!(Value::Bulk(Bytes::from_static(b"42")).as_int(), Some(42));
    }

    #[test]
    fn error_replies_map_to_statuses() {
        assert_eq!(reply_error("LOADING dataset").status().as_u16(), 503);
        assert_eq!(reply_error("WRONGTYPE Operation").status().as_u16(), 500);
    }
}
