//! Outside services (PostgreSQL, Redis) in integration tests.
//!
//! A test that needs a service checks it first and asks [`require_or_skip`] whether to go on.
//! When the service is down the test prints why and passes, so `cargo test` works on a machine
//! without databases; with `SQUALL_REQUIRE_SERVICES=1` (CI sets it) the same test fails
//! instead, so a broken service can never look like a green run.

#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "SQUALL_REQUIRE_SERVICES";

/// True when services must be reachable (`SQUALL_REQUIRE_SERVICES` is `1` or `true`).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR)
        .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Whether a test that needs `what` should run: true when `reachable`. Otherwise prints the
/// reason and returns false, or panics if [`required`].
///
/// `what` names the service and, ideally, where it was looked for and why it failed:
/// `"PostgreSQL at postgres://...: connection refused"`.
pub fn require_or_skip(what: &str, reachable: bool) -> bool {
    if reachable {
        return true;
    }
    if required() {
        panic!("{what} is not reachable, and {REQUIRE_VAR}=1 requires it");
    }
    eprintln!("skipping: {what} is not reachable (set {REQUIRE_VAR}=1 to fail instead)");
    false
}

/// The value of `var`, or `default` when unset or blank.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Whether a TCP connection to `host:port` opens within `timeout` (a quick probe from any
/// thread, with no executor needed).
pub fn tcp_reachable(host: &str, port: u16, timeout: Duration) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}
