//! JSON-RPC 2.0 over loopback: every example of section 7 of the specification, the
//! `examples/rpc.rs` methods, id and params checks, the batch cap, failures that must not
//! leak, methods that see the request, and the HTTP rules around the endpoint.
#![cfg(feature = "rpc")]

#[path = "../examples/rpc.rs"]
#[allow(dead_code)]
mod example;
mod support;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use serde::Deserialize;
use serde_json::{json, Value};
use squall::middleware::Next;
use squall::rpc::{Rpc, RpcError};
use squall::{App, Error, Request, RunningServer};
use support::{get, post, request, start, start_with};

#[derive(Deserialize)]
struct Subtraction {
    minuend: i64,
    subtrahend: i64,
}

async fn subtract(s: Subtraction) -> Result<i64, RpcError> {
    Ok(s.minuend - s.subtrahend)
}

async fn sum(terms: Vec<i64>) -> Result<i64, RpcError> {
    Ok(terms.iter().sum())
}

async fn get_data(_: ()) -> Result<Value, RpcError> {
    Ok(json!(["hello", 5]))
}

async fn ignore(_: Value) -> Result<(), RpcError> {
    Ok(())
}

struct User(String);

async fn whoami(req: Rc<Request>, _: ()) -> Result<Value, RpcError> {
    let user = req.extensions().get::<User>().map(|u| u.0.clone());
    Ok(json!({ "user": user, "agent": req.header("user-agent") }))
}

/// The specification's methods, failing methods, and a method that sees the request.
fn app() -> App {
    let hellos = Rc::new(Cell::new(0u32));
    let counted = Rc::clone(&hellos);
    let spec = Rpc::new()
        .method("subtract", subtract)
        .method("sum", sum)
        .method("get_data", get_data)
        .method("update", ignore)
        .method("notify_sum", ignore)
        .method("notify_hello", move |_: Value| {
            counted.set(counted.get() + 1);
            async { Ok::<_, RpcError>(()) }
        })
        .method("hellos", move |_: ()| {
            let seen = hellos.get();
            async move { Ok::<_, RpcError>(seen) }
        })
        .method("panics", |_: ()| async {
            if true {
                panic!("secret panic text");
            }
            Ok::<(), RpcError>(())
        })
        .method(
            "panics_early",
            |_: ()| -> std::future::Ready<Result<(), RpcError>> { panic!("secret panic text") },
        )
        .method("fails", |_: ()| async {
            Err::<(), _>(Error::internal("secret database password"))
        })
        .method("forbidden", |_: ()| async {
            Err::<(), _>(Error::forbidden("not yours"))
        })
        .method("refuses", |_: ()| async {
            Err::<(), _>(RpcError::new(42, "no such luck").with_data(json!({"retry": false})))
        })
        .method("echo", |params: Value| async { Ok::<_, RpcError>(params) })
        .method_with_request("whoami", whoami);
    App::new()
        .wrap(|mut req: Request, next: Next| async move {
            if let Some(user) = req.header("x-user").map(str::to_owned) {
                req.extensions_mut().insert(User(user));
            }
            next.run(req).await
        })
        .post("/rpc", spec)
        .post("/small", Rpc::new().method("sum", sum).max_batch(3))
}

fn server() -> RunningServer {
    start(app)
}

/// Posts `body` as JSON to `path`; asserts a JSON-RPC answer (200, JSON) and parses it.
fn call_at(addr: SocketAddr, path: &str, body: &str) -> Value {
    let response = request(addr, post(path, "application/json", body));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    serde_json::from_slice(&response.body).expect("a JSON answer")
}

fn call(addr: SocketAddr, body: &str) -> Value {
    call_at(addr, "/rpc", body)
}

/// Posts `body`; asserts there is no answer at all: 204 with no body.
fn expect_no_answer(addr: SocketAddr, body: &str) {
    let response = request(addr, post("/rpc", "application/json", body));
    assert_eq!(response.status, 204, "{}", response.text());
    assert!(response.body.is_empty());
    assert_eq!(response.header("content-length"), None);
}

/// The specification's examples show no `data`; squall adds an explanation to -32600 and
/// -32602 errors, checked on its own in `errors_explain_themselves_in_data`.
fn without_data(mut answer: Value) -> Value {
    let replies = match &mut answer {
        Value::Array(replies) => replies.iter_mut().collect(),
        reply => vec![reply],
    };
    for reply in replies {
        if let Some(error) = reply.get_mut("error").and_then(Value::as_object_mut) {
            error.remove("data");
        }
    }
    answer
}

/// Each specification example as (request, expected answer).
fn assert_answers(addr: SocketAddr, cases: &[(&str, Value)]) {
    for (body, expected) in cases {
        assert_eq!(&without_data(call(addr, body)), expected, "for {body}");
    }
}

#[test]
fn spec_positional_parameters() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[
            (
                r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
                json!({"jsonrpc": "2.0", "result": 19, "id": 1}),
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
                json!({"jsonrpc": "2.0", "result": -19, "id": 2}),
            ),
        ],
    );
}

#[test]
fn spec_named_parameters() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[
            (
                r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
                json!({"jsonrpc": "2.0", "result": 19, "id": 3}),
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
                json!({"jsonrpc": "2.0", "result": 19, "id": 4}),
            ),
        ],
    );
}

#[test]
fn spec_notifications_are_run_and_not_answered() {
    let server = server();
    let addr = server.local_addr();
    expect_no_answer(
        addr,
        r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
    );
    expect_no_answer(addr, r#"{"jsonrpc": "2.0", "method": "foobar"}"#);
    // Notifications run even though nobody hears back.
    expect_no_answer(
        addr,
        r#"{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}"#,
    );
    let seen = call(addr, r#"{"jsonrpc": "2.0", "method": "hellos", "id": 1}"#);
    assert_eq!(seen, json!({"jsonrpc": "2.0", "result": 1, "id": 1}));
    // Failing notifications are not answered either.
    expect_no_answer(addr, r#"{"jsonrpc": "2.0", "method": "panics"}"#);
    expect_no_answer(
        addr,
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [1]}"#,
    );
}

#[test]
fn spec_non_existent_method() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}),
        )],
    );
}

#[test]
fn spec_invalid_json() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}),
        )],
    );
}

#[test]
fn spec_invalid_request_object() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
            json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}),
        )],
    );
}

#[test]
fn spec_batch_with_invalid_json() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            r#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#,
            json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}),
        )],
    );
}

#[test]
fn spec_empty_array() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            "[]",
            json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}),
        )],
    );
}

#[test]
fn spec_invalid_batches() {
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null});
    let server = server();
    assert_answers(
        server.local_addr(),
        &[
            ("[1]", json!([invalid])),
            ("[1,2,3]", json!([invalid, invalid, invalid])),
        ],
    );
}

#[test]
fn spec_mixed_batch() {
    let server = server();
    assert_answers(
        server.local_addr(),
        &[(
            r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#,
            json!([
                {"jsonrpc": "2.0", "result": 7, "id": "1"},
                {"jsonrpc": "2.0", "result": 19, "id": "2"},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
                {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
            ]),
        )],
    );
}

#[test]
fn spec_batch_of_notifications_only() {
    let server = server();
    expect_no_answer(
        server.local_addr(),
        r#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#,
    );
}

#[test]
fn example_add_takes_positional_and_named_numbers_and_echo_returns_its_params() {
    let server = start(example::app);
    let addr = server.local_addr();
    let answer = call(
        addr,
        r#"[
        {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}, "id": 2},
        {"jsonrpc": "2.0", "method": "add", "params": [1.5, 2], "id": 3},
        {"jsonrpc": "2.0", "method": "add", "params": [9223372036854775807, 1], "id": 4},
        {"jsonrpc": "2.0", "method": "echo", "params": {"x": [1, "two", null]}, "id": 5},
        {"jsonrpc": "2.0", "method": "echo", "params": [true], "id": 6},
        {"jsonrpc": "2.0", "method": "echo", "id": 7}
    ]"#,
    );
    assert_eq!(
        answer,
        json!([
            {"jsonrpc": "2.0", "result": 3, "id": 1},
            {"jsonrpc": "2.0", "result": 3, "id": 2},
            {"jsonrpc": "2.0", "result": 3.5, "id": 3},
            {"jsonrpc": "2.0", "result": 9223372036854775808.0, "id": 4},
            {"jsonrpc": "2.0", "result": {"x": [1, "two", null]}, "id": 5},
            {"jsonrpc": "2.0", "result": [true], "id": 6},
            {"jsonrpc": "2.0", "result": null, "id": 7}
        ])
    );
    let wrong = call(
        addr,
        r#"{"jsonrpc": "2.0", "method": "add", "params": {"a": 1}, "id": 8}"#,
    );
    assert_eq!(
        wrong,
        json!({"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params", "data": "missing field `b`"}, "id": 8})
    );
    let client = request(
        addr,
        "POST /rpc HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"client\",\"id\":\"c\"}\n",
    );
    let client: Value = serde_json::from_slice(&client.body).expect("json");
    assert_eq!(
        client,
        json!({"jsonrpc": "2.0", "result": {"ip": "127.0.0.1", "user_agent": "probe/1"}, "id": "c"})
    );
}

#[test]
fn ids_must_be_strings_numbers_or_null_and_come_back_unchanged() {
    let server = server();
    let addr = server.local_addr();
    let echo_id = |id: &str| {
        call(
            addr,
            &format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1],"id":{id}}}"#),
        )
    };
    for id in [r#""abc""#, "0", "-7", "1.5", "18446744073709551615", "null"] {
        let expected: Value = serde_json::from_str(id).expect("literal");
        assert_eq!(
            echo_id(id),
            json!({"jsonrpc": "2.0", "result": 1, "id": expected}),
            "id {id}"
        );
    }
    for id in ["true", "[1]", r#"{"a":1}"#] {
        let answer = echo_id(id);
        assert_eq!(answer["error"]["code"], -32600, "id {id}: {answer}");
        assert_eq!(answer["id"], Value::Null, "id {id}");
        assert_eq!(
            answer["error"]["data"],
            "id must be a string, a number or null"
        );
    }
}

#[test]
fn errors_explain_themselves_in_data() {
    let server = server();
    let addr = server.local_addr();
    let cases = [
        (
            r#"{"jsonrpc":"1.0","method":"sum","id":1}"#,
            -32600,
            json!(1),
            json!("jsonrpc must be \"2.0\""),
        ),
        (
            r#"{"method":"sum","id":2}"#,
            -32600,
            json!(2),
            json!("jsonrpc must be \"2.0\""),
        ),
        (
            r#"{"jsonrpc":"2.0","method":7,"id":3}"#,
            -32600,
            json!(3),
            json!("method must be a string"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"sum","params":"x","id":4}"#,
            -32600,
            json!(4),
            json!("params must be an array or an object"),
        ),
        (
            r#""sum""#,
            -32600,
            Value::Null,
            json!("a call is an object"),
        ),
        (
            "[]",
            -32600,
            Value::Null,
            json!("a batch holds at least one call"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"sum","params":["x"],"id":5}"#,
            -32602,
            json!(5),
            json!("invalid type: string \"x\", expected i64"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"subtract","id":6}"#,
            -32602,
            json!(6),
            json!("invalid type: null, expected struct Subtraction"),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"subtract","params":[1,2,3],"id":7}"#,
            -32602,
            json!(7),
            json!("invalid length 3, expected fewer elements in array"),
        ),
    ];
    for (body, code, id, data) in cases {
        let answer = call(addr, body);
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(answer["id"], id, "{body}: {answer}");
        assert_eq!(answer["error"]["data"], data, "{body}: {answer}");
    }
}

#[test]
fn methods_without_params_accept_none_an_empty_array_or_an_empty_object() {
    let server = server();
    let addr = server.local_addr();
    for params in ["", r#","params":[]"#, r#","params":{}"#] {
        let answer = call(
            addr,
            &format!(r#"{{"jsonrpc":"2.0","method":"get_data"{params},"id":1}}"#),
        );
        assert_eq!(answer["result"], json!(["hello", 5]), "params {params:?}");
    }
    let answer = call(
        addr,
        r#"{"jsonrpc":"2.0","method":"get_data","params":[1],"id":1}"#,
    );
    assert_eq!(answer["error"]["code"], -32602);
}

#[test]
fn batches_are_capped() {
    let server = server();
    let addr = server.local_addr();
    let batch = |n: usize| {
        let calls: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[{i}],"id":{i}}}"#))
            .collect();
        format!("[{}]", calls.join(","))
    };
    let answer = call_at(addr, "/small", &batch(3));
    assert_eq!(answer.as_array().map(Vec::len), Some(3));
    assert_eq!(answer[2], json!({"jsonrpc": "2.0", "result": 2, "id": 2}));
    assert_eq!(
        call_at(addr, "/small", &batch(4)),
        json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request", "data": "a batch holds at most 3 calls; this one has 4"}, "id": null})
    );
    // The default cap is 100.
    assert_eq!(call(addr, &batch(100)).as_array().map(Vec::len), Some(100));
    assert_eq!(call(addr, &batch(101))["error"]["code"], -32600);
}

#[test]
fn failures_answer_internal_error_without_leaking() {
    let server = server();
    let addr = server.local_addr();
    let internal = |id: u32| json!({"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}, "id": id});
    let response = request(
        addr,
        post(
            "/rpc",
            "application/json",
            r#"[{"jsonrpc":"2.0","method":"panics","id":1},
                {"jsonrpc":"2.0","method":"panics_early","id":2},
                {"jsonrpc":"2.0","method":"fails","id":3},
                {"jsonrpc":"2.0","method":"sum","params":[2,3],"id":4}]"#,
        ),
    );
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(!text.contains("secret"), "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        answer,
        json!([internal(1), internal(2), internal(3), {"jsonrpc": "2.0", "result": 5, "id": 4}])
    );
    // The core survived the panics and goes on answering.
    assert_eq!(
        call(
            addr,
            r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":9}"#
        )["result"],
        1
    );
}

#[test]
fn application_errors_and_4xx_errors_reach_the_client() {
    let server = server();
    let addr = server.local_addr();
    assert_eq!(
        call(addr, r#"{"jsonrpc":"2.0","method":"refuses","id":1}"#),
        json!({"jsonrpc": "2.0", "error": {"code": 42, "message": "no such luck", "data": {"retry": false}}, "id": 1})
    );
    assert_eq!(
        call(addr, r#"{"jsonrpc":"2.0","method":"forbidden","id":2}"#),
        json!({"jsonrpc": "2.0", "error": {"code": -32000, "message": "not yours", "data": {"status": 403}}, "id": 2})
    );
}

#[test]
fn methods_see_the_request_and_what_middleware_attached() {
    let server = server();
    let addr = server.local_addr();
    let body = r#"[{"jsonrpc":"2.0","method":"whoami","id":1},{"jsonrpc":"2.0","method":"whoami","id":2}]"#;
    let response = request(
        addr,
        format!(
            "POST /rpc HTTP/1.1\r\nHost: t\r\nX-User: ada\r\nUser-Agent: probe/2\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    let me = json!({"user": "ada", "agent": "probe/2"});
    assert_eq!(
        answer,
        json!([{"jsonrpc": "2.0", "result": me, "id": 1}, {"jsonrpc": "2.0", "result": me, "id": 2}])
    );
    let anonymous = call(addr, r#"{"jsonrpc":"2.0","method":"whoami","id":3}"#);
    assert_eq!(anonymous["result"], json!({"user": null, "agent": null}));
}

#[test]
fn http_rules_around_the_endpoint() {
    let server = start_with(support::config().limits(support::small_limits()), app);
    let addr = server.local_addr();
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":1}"#;

    let wrong_type = request(addr, post("/rpc", "text/plain", body));
    assert_eq!(wrong_type.status, 415);
    let no_type = request(
        addr,
        format!(
            "POST /rpc HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(no_type.status, 415);

    let with_charset = request(addr, post("/rpc", "application/json; charset=utf-8", body));
    assert_eq!(with_charset.status, 200);

    let get = request(addr, get("/rpc"));
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("OPTIONS, POST"));

    // The server's body limit (1 KiB here) bounds JSON-RPC messages too.
    let padding = " ".repeat(2000);
    let too_large = request(
        addr,
        post("/rpc", "application/json", &format!("{body}{padding}")),
    );
    assert_eq!(too_large.status, 413);

    let empty = call(addr, "");
    assert_eq!(empty["error"]["code"], -32700);
}

#[test]
fn a_method_registered_twice_stops_the_server_from_starting() {
    let outcome = squall::Server::new(support::config())
        .spawn(|| App::new().post("/rpc", Rpc::new().method("sum", sum).method("sum", sum)));
    let err = outcome.expect_err("startup must fail");
    assert!(
        err.to_string()
            .contains("rpc method \"sum\" is registered twice"),
        "{err}"
    );
}
