//! The error a JSON-RPC call answers with.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::error::Error;

/// A JSON-RPC error: a code, a message and optional data, as the client receives them.
///
/// Applications use [`RpcError::new`] with codes of their own (the specification reserves
/// -32768 to -32000 for itself), [`RpcError::invalid_params`] for params that deserialized
/// but make no sense, and [`RpcError::internal`] for failures whose details belong in the
/// log rather than in the answer.
#[derive(Debug)]
pub struct RpcError {
    pub(super) code: i64,
    pub(super) message: Cow<'static, str>,
    pub(super) data: Option<Value>,
    /// What the log says about an internal error; never sent.
    detail: Option<Cow<'static, str>>,
}

impl RpcError {
    /// -32700: the message is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// -32600: the JSON is not a valid Request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// -32601: no method of that name.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// -32602: the params do not suit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// -32603: the server failed; the details are in its log.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// -32000 (the first implementation-defined server error): a method returned a
    /// [`squall::Error`](crate::error::Error) with a 4xx status, which `data` carries as
    /// `{"status": 403}`.
    pub const REQUEST_ERROR: i64 = -32000;

    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<Cow<'static, str>>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
            detail: None,
        }
    }

    /// Attaches `data`, sent to the client with the error.
    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    /// -32602 Invalid params, with `why` as the error's data.
    pub fn invalid_params(why: impl Into<Cow<'static, str>>) -> RpcError {
        Self::explained(Self::INVALID_PARAMS, "Invalid params", why.into())
    }

    /// -32603 Internal error. `detail` is logged (target `squall::rpc`), never sent.
    pub fn internal(detail: impl Into<Cow<'static, str>>) -> RpcError {
        RpcError {
            detail: Some(detail.into()),
            ..RpcError::new(Self::INTERNAL_ERROR, "Internal error")
        }
    }

    pub(super) fn parse_error() -> RpcError {
        RpcError::new(Self::PARSE_ERROR, "Parse error")
    }

    pub(super) fn invalid_request(why: impl Into<Cow<'static, str>>) -> RpcError {
        Self::explained(Self::INVALID_REQUEST, "Invalid Request", why.into())
    }

    pub(super) fn method_not_found() -> RpcError {
        RpcError::new(Self::METHOD_NOT_FOUND, "Method not found")
    }

    fn explained(code: i64, message: &'static str, why: Cow<'static, str>) -> RpcError {
        let why = match why {
            Cow::Borrowed(why) => Value::from(why),
            Cow::Owned(why) => Value::from(why),
        };
        RpcError::new(code, message).with_data(why)
    }

    /// What the log says about an internal error.
    pub(super) fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The code.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The data the client sees, if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "json-rpc error {}: {}", self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

impl From<Error> for RpcError {
    /// A server error (5xx) becomes -32603 with its message kept for the log; any other
    /// becomes [`RpcError::REQUEST_ERROR`] with the message a client may see.
    fn from(error: Error) -> RpcError {
        if error.status().is_server_error() {
            return RpcError::internal(error.to_string());
        }
        RpcError::new(Self::REQUEST_ERROR, error.public_message().to_owned())
            .with_data(serde_json::json!({ "status": error.status().as_u16() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squall_errors_keep_4xx_messages_and_hide_5xx_ones() {
        let hidden = RpcError::from(Error::internal("db password wrong"));
        assert_eq!(hidden.code(), RpcError::INTERNAL_ERROR);
        assert_eq!(hidden.message(), "Internal error");
        assert_eq!(hidden.data(), None);
        let shown = RpcError::from(Error::forbidden("not yours"));
        assert_eq!(shown.code(), RpcError::REQUEST_ERROR);
        assert_eq!(shown.message(), "not yours");
        assert_eq!(shown.data(), Some(&serde_json::json!({"status": 403})));
    }
}
