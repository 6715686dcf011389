//! A JSON-RPC 2.0 endpoint at `POST /rpc`:
//!
//! - `add`: the sum of two numbers, positional `[1, 2]` or named `{"a": 1, "b": 2}`; integers
//!   stay integers while the sum fits in 64 bits.
//! - `echo`: returns its params (`null` when there are none).
//! - `client`: what the HTTP request says about the caller (address and `User-Agent`), to
//!   show a method that sees the request.
//!
//! ```sh
//! cargo run --example rpc
//! curl -s localhost:8080/rpc -H 'content-type: application/json' \
//!   -d '[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},
//!        {"jsonrpc":"2.0","method":"echo","params":{"hi":true},"id":2}]'
//! ```

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use squall::rpc::{Rpc, RpcError};
use squall::{App, Request, Server};

#[derive(Deserialize)]
struct Addends {
    a: Number,
    b: Number,
}

async fn add(Addends { a, b }: Addends) -> Result<Number, RpcError> {
    if let Some(sum) = a
        .as_i64()
        .zip(b.as_i64())
        .and_then(|(a, b)| a.checked_add(b))
    {
        return Ok(sum.into());
    }
    let sum = a.as_f64().unwrap_or(f64::NAN) + b.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum).ok_or_else(|| RpcError::invalid_params("the sum is not a finite number"))
}

async fn echo(params: Value) -> Result<Value, RpcError> {
    Ok(params)
}

#[derive(Serialize)]
struct Caller {
    ip: String,
    user_agent: Option<String>,
}

async fn client(req: Rc<Request>, _params: ()) -> Result<Caller, RpcError> {
    Ok(Caller {
        ip: req.client_ip().to_string(),
        user_agent: req.header("user-agent").map(str::to_owned),
    })
}

/// The application: built once per core, so the registry is too.
pub(crate) fn app() -> App {
    App::new().post(
        "/rpc",
        Rpc::new()
            .method("add", add)
            .method("echo", echo)
            .method_with_request("client", client),
    )
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = Server::from_env().and_then(|server| server.serve(app)) {
        eprintln!("rpc: {e}");
        std::process::exit(1);
    }
}
