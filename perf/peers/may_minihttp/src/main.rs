//! may_minihttp peer: the shape of its TechEmpower entry (a `HttpService`
//! per connection, JSON serialized straight into the response buffer).

use std::io;

use bytes::BufMut;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// One instance per connection; it holds no state.
struct Bench;

impl HttpService for Bench {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match req.path() {
            "/plaintext" => {
                rsp.header("Content-Type: text/plain").body("Hello, World!");
            }
            "/json" => {
                rsp.header("Content-Type: application/json");
                let msg = Message {
                    message: "Hello, World!",
                };
                // Serialized on every request, into the connection's buffer.
                serde_json::to_writer(rsp.body_mut().writer(), &msg)?;
            }
            _ => {
                rsp.status_code(404, "Not Found");
            }
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Bench;

    fn new_service(&self, _id: usize) -> Bench {
        Bench
    }
}

fn main() {
    let addr = std::env::var("SQUALL_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let workers = workers();
    may::config()
        .set_workers(workers)
        .set_pool_capacity(1000)
        .set_stack_size(0x1000);
    eprintln!("may_minihttp listening on {addr} with {workers} worker(s)");
    let server = Factory.start(&addr).expect("bind");
    server.join().expect("server coroutine");
}

/// SQUALL_WORKERS, else every core this process may run on.
fn workers() -> usize {
    std::env::var("SQUALL_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
