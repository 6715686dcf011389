//! JSON-RPC 2.0 over HTTP: a registry of methods that is itself a [`Handler`], mounted on a
//! route of its own.
//!
//! ```
//! use serde::Deserialize;
//! use squall::rpc::{Rpc, RpcError};
//! use squall::App;
//!
//! #[derive(Deserialize)]
//! struct Pair {
//!     a: i64,
//!     b: i64,
//! }
//!
//! // Accepts `[1, 2]` and `{"a": 1, "b": 2}` alike: serde's derive reads a struct from both.
//! async fn add(Pair { a, b }: Pair) -> Result<i64, RpcError> {
//!     a.checked_add(b)
//!         .ok_or_else(|| RpcError::new(1, "the sum does not fit in 64 bits"))
//! }
//!
//! let app = App::new().post("/rpc", Rpc::new().method("add", add));
//! ```
//!
//! ## Methods
//!
//! A method is an async function from a params type to `Result<T, E>`, where the params type
//! is [`Deserialize`](serde::Deserialize), `T` is [`Serialize`] and `E` converts into
//! [`RpcError`] (an [`RpcError`] itself, or a [`squall::Error`](crate::error::Error), so `?` works
//! on request helpers and the data layer). The call's `params` (an array or an object) are deserialized
//! into the params type; absent params read as `null`, which suits `()`, `Option<T>` and
//! [`serde_json::Value`]; `[]` and `{}` also read as `null` when the type accepts nothing
//! else, so a method taking `()` accepts all three. Params the type rejects answer -32602
//! with serde's explanation as the error's `data`.
//!
//! A method that needs the HTTP request (a header, the client's address, what middleware
//! attached to [`Request::extensions`]) is registered with [`Rpc::method_with_request`] and
//! receives an `Rc<Request>` before its params. The request is shared, not handed over,
//! because every call of a batch sees the same one; its body has already been read (it was
//! the JSON-RPC message), and nothing else about it is lost.
//!
//! Methods run on the core that accepted the connection, like handlers, so they may hold
//! `Rc` state; the registry is built per core by the application factory.
//!
//! ## Errors
//!
//! The specification's codes are [`RpcError`]'s constants. What the client sees:
//!
//! | situation | answer |
//! |---|---|
//! | the body is not JSON | -32700 Parse error, `id` null |
//! | a call is not a valid Request object, or its `id` is not a string, number or null | -32600 Invalid Request (`data` says why) |
//! | an empty batch, or one longer than [`Rpc::max_batch`] | one -32600, not an array |
//! | no such method | -32601 Method not found |
//! | params the method's type rejects | -32602 Invalid params (`data` says why) |
//! | the method panics, returns a 5xx [`squall::Error`](crate::error::Error) or a result that cannot be serialized | -32603 Internal error; the details are logged (target `squall::rpc`), never sent |
//! | the method returns a 4xx [`squall::Error`](crate::error::Error) | -32000 with the error's message and `{"status": 4xx}` as `data` |
//! | the method returns `RpcError::new(code, message)` | that error, with its `data` if any |
//!
//! Notifications (calls without an `id`) are run and never answered, errors included; a
//! message made only of notifications is answered `204 No Content` with no body. Every
//! other JSON-RPC answer is `200` with `Content-Type: application/json`, and the calls of a
//! batch run concurrently with their answers kept in request order.
//!
//! ## HTTP
//!
//! The route decides the method (`App::post`, so a `GET` is answered 405 by the router). The
//! request must say `Content-Type: application/json` (or a `+json` type), as
//! [`Request::json`] requires: anything else is answered `415` before JSON-RPC begins,
//! because such a request was not sent by a JSON-RPC client and deserves no JSON-RPC answer.
//! The body is bounded by the server's [`Limits`](crate::Limits) (`413` beyond them), and
//! [`Rpc::max_batch`] bounds how many calls one message may carry.
//!
//! ## Registration mistakes
//!
//! A method name registered twice, or one starting with `rpc.` (reserved by the
//! specification), makes the server fail to start with a message naming it, like a route
//! registered twice: the registry reports it through [`Handler::registration_error`].

mod error;
mod method;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{catch_panics, panic_message};
use crate::future::LocalFuture;
use crate::handler::Handler;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

pub use self::error::RpcError;
use self::method::{Method, WithRequest};

/// How many calls a batch may carry unless [`Rpc::max_batch`] says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 100;

/// A JSON-RPC 2.0 endpoint: named methods, answered by mounting it on a route.
pub struct Rpc {
    registry: Rc<Registry>,
}

/// `Clone` only for `Rc::make_mut` while the endpoint is built; an `Rpc` is not `Clone`, so
/// the registry is never shared then and never actually copied.
#[derive(Clone)]
struct Registry {
    methods: HashMap<Box<str>, Rc<dyn Method>>,
    max_batch: usize,
    /// The first registration mistake; reported when the server starts.
    mistake: Option<String>,
}

impl Default for Rpc {
    fn default() -> Self {
        Rpc::new()
    }
}

impl Rpc {
    /// An endpoint with no methods and a batch limit of [`DEFAULT_MAX_BATCH`].
    pub fn new() -> Rpc {
        Rpc {
            registry: Rc::new(Registry {
                methods: HashMap::new(),
                max_batch: DEFAULT_MAX_BATCH,
                mistake: None,
            }),
        }
    }

    /// Registers `method` under `name`. See the [module docs](self) for what a method is.
    pub fn method<F, Fut, P, T, E>(self, name: &str, method: F) -> Rpc
    where
        F: Fn(P) -> Fut + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
        P: DeserializeOwned + 'static,
        T: Serialize,
        E: Into<RpcError>,
    {
        let ignoring_request = move |_req: Rc<Request>, params: P| method(params);
        self.register(name, Rc::new(WithRequest::new(ignoring_request)))
    }

    /// Registers under `name` a method that also receives the HTTP request: its headers,
    /// peer and [`extensions`](Request::extensions), shared by every call of a batch.
    pub fn method_with_request<F, Fut, P, T, E>(self, name: &str, method: F) -> Rpc
    where
        F: Fn(Rc<Request>, P) -> Fut + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
        P: DeserializeOwned + 'static,
        T: Serialize,
        E: Into<RpcError>,
    {
        self.register(name, Rc::new(WithRequest::new(method)))
    }

    /// How many calls one batch may carry (at least 1); a longer batch is answered with a
    /// single -32600 error and none of its calls run.
    pub fn max_batch(mut self, calls: usize) -> Rpc {
        let registry = Rc::make_mut(&mut self.registry);
        if calls == 0 {
            registry.note_mistake("rpc max_batch must be at least 1".to_owned());
        }
        registry.max_batch = calls.max(1);
        self
    }

    fn register(mut self, name: &str, method: Rc<dyn Method>) -> Rpc {
        let registry = Rc::make_mut(&mut self.registry);
        if name.starts_with("rpc.") {
            registry.note_mistake(format!(
                "rpc method {name:?}: names starting with \"rpc.\" are reserved by JSON-RPC"
            ));
        } else if registry.methods.insert(name.into(), method).is_some() {
            registry.note_mistake(format!("rpc method {name:?} is registered twice"));
        }
        self
    }
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.registry.methods.keys().map(|k| &**k).collect();
        names.sort_unstable();
        f.debug_struct("Rpc")
            .field("methods", &names)
            .field("max_batch", &self.registry.max_batch)
            .finish()
    }
}

impl Handler for Rpc {
    fn call(&self, req: Request) -> LocalFuture<'static, Response> {
        Box::pin(Rc::clone(&self.registry).serve(req))
    }

    fn registration_error(&self) -> Option<String> {
        self.registry.mistake.clone()
    }
}

impl Registry {
    fn note_mistake(&mut self, mistake: String) {
        self.mistake.get_or_insert(mistake);
    }

    async fn serve(self: Rc<Self>, mut req: Request) -> Response {
        let body = match req.json_bytes().await {
            Ok(body) => body,
            Err(e) => return e.into_response(),
        };
        match self.answer(Rc::new(req), body).await {
            Some(Answer::One(reply)) => Response::json(&reply),
            Some(Answer::Batch(replies)) => Response::json(&replies),
            None => Response::new(StatusCode::NO_CONTENT),
        }
    }

    /// The answer to one HTTP message; `None` when it held only notifications.
    async fn answer(&self, req: Rc<Request>, body: Bytes) -> Option<Answer> {
        let Ok(message) = serde_json::from_slice::<Value>(&body) else {
            return Some(Answer::One(Reply::error(
                Value::Null,
                RpcError::parse_error(),
            )));
        };
        let calls = match message {
            Value::Array(calls) => calls,
            single => return self.call(&req, single).await.map(Answer::One),
        };
        if calls.is_empty() {
            let error = RpcError::invalid_request("a batch holds at least one call");
            return Some(Answer::One(Reply::error(Value::Null, error)));
        }
        if calls.len() > self.max_batch {
            let error = RpcError::invalid_request(format!(
                "a batch holds at most {} calls; this one has {}",
                self.max_batch,
                calls.len()
            ));
            return Some(Answer::One(Reply::error(Value::Null, error)));
        }
        let replies: Vec<Reply> =
            crate::tasks::join_all(calls.into_iter().map(|call| self.call(&req, call)))
                .await
                .into_iter()
                .flatten()
                .collect();
        (!replies.is_empty()).then_some(Answer::Batch(replies))
    }

    /// Runs one call; its reply, or `None` for a notification.
    async fn call(&self, req: &Rc<Request>, call: Value) -> Option<Reply> {
        let call = match Call::parse(call) {
            Ok(call) => call,
            Err((id, why)) => return Some(Reply::error(id, RpcError::invalid_request(why))),
        };
        let outcome = self.run(req, &call.method, call.params).await;
        if let Some(detail) = outcome.as_ref().err().and_then(RpcError::detail) {
            tracing::error!(target: "squall::rpc", method = %call.method, "{detail}");
        }
        let id = call.id?;
        Some(match outcome {
            Ok(result) => Reply::result(id, result),
            Err(error) => Reply::error(id, error),
        })
    }

    async fn run(&self, req: &Rc<Request>, name: &str, params: Value) -> Result<Value, RpcError> {
        let Some(method) = self.methods.get(name) else {
            return Err(RpcError::method_not_found());
        };
        catch_panics(|| method.call(req, params))
            .await
            .unwrap_or_else(|payload| {
                let what = panic_message(&*payload);
                Err(RpcError::internal(format!("method panicked: {what}")))
            })
    }
}

/// A call that passed the Request-object checks.
struct Call {
    /// `None` for a notification; `Some(Value::Null)` is a call with a null id, answered.
    id: Option<Value>,
    method: String,
    params: Value,
}

impl Call {
    /// Checks a Request object; an invalid one comes back with the id to answer it under
    /// (null unless a valid one was found) and why it is invalid.
    fn parse(call: Value) -> Result<Call, (Value, &'static str)> {
        let Value::Object(mut fields) = call else {
            return Err((Value::Null, "a call is an object"));
        };
        let id = match fields.remove("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
            Some(_) => return Err((Value::Null, "id must be a string, a number or null")),
        };
        let invalid = |id: Option<Value>, why| Err((id.unwrap_or(Value::Null), why));
        if fields.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid(id, "jsonrpc must be \"2.0\"");
        }
        let method = match fields.remove("method") {
            Some(Value::String(method)) => method,
            _ => return invalid(id, "method must be a string"),
        };
        let params = match fields.remove("params") {
            None => Value::Null,
            Some(params @ (Value::Array(_) | Value::Object(_))) => params,
            Some(_) => return invalid(id, "params must be an array or an object"),
        };
        Ok(Call { id, method, params })
    }
}

enum Answer {
    One(Reply),
    Batch(Vec<Reply>),
}

/// A Response object.
#[derive(Serialize)]
struct Reply {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
    id: Value,
}

#[derive(Serialize)]
struct ErrorObject {
    code: i64,
    message: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl Reply {
    fn result(id: Value, result: Value) -> Reply {
        Reply {
            jsonrpc: "2.0",
            result: Some(result),
            error: None,
            id,
        }
    }

    fn error(id: Value, error: RpcError) -> Reply {
        Reply {
            jsonrpc: "2.0",
            result: None,
            error: Some(ErrorObject {
                code: error.code,
                message: error.message,
                data: error.data,
            }),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing(_: ()) -> Result<(), RpcError> {
        Ok(())
    }

    #[test]
    fn registration_mistakes_are_reported_once_and_name_the_method() {
        let rpc = Rpc::new().method("a", nothing).method("b", nothing);
        assert_eq!(rpc.registration_error(), None);
        let rpc = rpc.method("a", nothing).method("b", nothing);
        let why = rpc.registration_error().expect("a duplicate");
        assert_eq!(why, "rpc method \"a\" is registered twice");
        let why = Rpc::new()
            .method("rpc.discover", nothing)
            .registration_error()
            .expect("a reserved name");
        assert!(why.contains("reserved"), "{why}");
        assert!(Rpc::new().max_batch(0).registration_error().is_some());
    }

    #[test]
    fn a_duplicate_method_stops_the_app_from_starting() {
        let app =
            crate::App::new().post("/rpc", Rpc::new().method("a", nothing).method("a", nothing));
        let err = app.into_router(Vec::new()).err().expect("a mistake");
        assert!(
            err.to_string()
                .contains("POST /rpc: rpc method \"a\" is registered twice"),
            "{err}"
        );
    }

    #[test]
    fn calls_are_checked_as_request_objects() {
        let parse = |v: Value| Call::parse(v).map(|c| (c.id, c.method, c.params));
        let ok = parse(serde_json::json!({"jsonrpc": "2.0", "method": "m", "id": 7}));
        assert_eq!(ok, Ok((Some(Value::from(7)), "m".to_owned(), Value::Null)));
        let notification = parse(serde_json::json!({"jsonrpc": "2.0", "method": "m"}));
        assert_eq!(notification.map(|c| c.0), Ok(None));
        let null_id = parse(serde_json::json!({"jsonrpc": "2.0", "method": "m", "id": null}));
        assert_eq!(null_id.map(|c| c.0), Ok(Some(Value::Null)));
        let cases = [
            (serde_json::json!(1), Value::Null),
            (
                serde_json::json!({"jsonrpc": "2.0", "method": "m", "id": [1]}),
                Value::Null,
            ),
            (
                serde_json::json!({"jsonrpc": "2.0", "method": "m", "id": true}),
                Value::Null,
            ),
            (
                serde_json::json!({"jsonrpc": "1.0", "method": "m", "id": 1}),
                Value::from(1),
            ),
            (
                serde_json::json!({"method": "m", "id": "x"}),
                Value::from("x"),
            ),
            (
                serde_json::json!({"jsonrpc": "2.0", "method": 1, "id": 2}),
                Value::from(2),
            ),
            (
                serde_json::json!({"jsonrpc": "2.0", "method": "m", "params": 3}),
                Value::Null,
            ),
        ];
        for (call, id) in cases {
            assert_eq!(parse(call.clone()).err().map(|e| e.0), Some(id), "{call}");
        }
    }
}
