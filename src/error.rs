//! The crate's one public error type.
//!
//! An [`Error`] is either a request-time error that answers with an HTTP status (a handler's
//! `Err(Error::bad_request("..."))`, a malformed argument, a body that is not JSON) or a
//! startup error (bad configuration, an address in use, no io_uring). The mapping from errors to
//! statuses happens here and nowhere else.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error with the HTTP status it answers with and a message safe to show the client.
pub struct Error {
    kind: Kind,
    status: StatusCode,
    message: Cow<'static, str>,
    source: Option<Source>,
}

/// What went wrong, at the coarsest level that a caller branches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A request could not be served as asked; [`Error::status`] says how to answer.
    Request,
    /// The configuration is unusable.
    Config,
    /// The server could not start: address, io_uring, CPU placement, memory lock.
    Startup,
    /// An I/O operation failed.
    Io,
}

impl Error {
    /// A request-time error answering with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind: Kind::Request,
            status,
            message: message.into(),
            source: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 Not Found.
    pub fn not_found() -> Error {
        Error::new(StatusCode::NOT_FOUND, "not found")
    }

    /// 413 Content Too Large.
    pub fn payload_too_large() -> Error {
        Error::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    }

    /// 415 Unsupported Media Type, naming the type that was expected.
    pub fn unsupported_media_type(expected: &str) -> Error {
        Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected content type {expected}"),
        )
    }

    /// 500 Internal Server Error. The message is logged, never shown to the client.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 Service Unavailable.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Error {
        Error::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub(crate) fn config(message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind: Kind::Config,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn startup(message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            kind: Kind::Startup,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn io(context: impl Into<Cow<'static, str>>, err: std::io::Error) -> Error {
        Error {
            kind: Kind::Io,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: context.into(),
            source: Some(Box::new(err)),
        }
    }

    /// Attaches the underlying cause, kept for logs.
    pub fn with_source(mut self, source: impl Into<Source>) -> Error {
        self.source = Some(source.into());
        self
    }

    /// The status a response to this error carries.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The message. For server errors (5xx) it is for logs; clients see only the status.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message a client may see: the message for 4xx, the reason phrase for 5xx.
    pub fn public_message(&self) -> &str {
        if self.status.is_server_error() {
            self.status.canonical_reason().unwrap_or("server error")
        } else {
            &self.message
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("status", &self.status.as_u16())
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Error {
        Error::internal("json serialization failed").with_source(err)
    }
}

/// A caught panic's payload.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// Makes a future with `make` and runs it, catching a panic in either step: a closure may
/// panic before it returns its future as well as while the future runs, and an uncaught panic
/// would take the whole core's executor down.
pub(crate) async fn catch_panics<F: std::future::Future>(
    make: impl FnOnce() -> F,
) -> Result<F::Output, Panic> {
    use futures_lite::FutureExt;
    let running = std::panic::catch_unwind(std::panic::AssertUnwindSafe(make))?;
    std::panic::AssertUnwindSafe(running).catch_unwind().await
}

/// The text of a caught panic's payload, for logs and error pages.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_message_from_clients() {
        let e = Error::internal("pool exhausted on core 3");
        assert_eq!(e.public_message(), "Internal Server Error");
        let e = Error::bad_request("missing argument: id");
        assert_eq!(e.public_message(), "missing argument: id");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn display_includes_the_source() {
        let e = Error::io(
            "cannot bind",
            std::io::Error::from(std::io::ErrorKind::AddrInUse),
        );
        assert!(e.to_string().starts_with("cannot bind: "), "{e}");
        assert_eq!(e.kind(), Kind::Io);
    }
}
