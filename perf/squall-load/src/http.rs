//! One HTTP/1.1 keep-alive connection under load: keep up to `pipeline` requests in flight,
//! send each when its schedule says (or at once in closed loop), frame the responses, record
//! latencies from intended send times, reconnect after failures.

use std::os::fd::AsRawFd;
use std::time::Instant;

use futures_util::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::driver::{Core, Deadline, InFlight, Lane, Outcome, Wake, wait};
use crate::net;
use crate::response::{self, Parse};
use crate::schedule::latency_ns;
use crate::stats::ErrorKind;
use crate::tls::Stream;

/// The bytes of one request, built once.
pub fn encode_request(config: &Config) -> Vec<u8> {
    let target = &config.target;
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        config.method, target.path, target.host
    );
    let mut has_length = false;
    for (name, value) in &config.headers {
        has_length |= name.eq_ignore_ascii_case("content-length");
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    let wants_length =
        !config.body.is_empty() || matches!(config.method.as_str(), "POST" | "PUT" | "PATCH");
    if wants_length && !has_length {
        out.push_str(&format!("Content-Length: {}\r\n", config.body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&config.body);
    bytes
}

/// Smallest free space a read is given; the buffer doubles when a response needs more.
const READ_CHUNK: usize = 4096;

/// Bytes read and not yet framed.
struct ReadBuf {
    bytes: Vec<u8>,
    filled: usize,
}

/// Runs one connection until its share of the load is done.
pub async fn drive(core: &Core, mut stream: Option<Stream>, mut lane: Lane) {
    let config = &core.config;
    let head_request = config.method.eq_ignore_ascii_case("HEAD");
    let mut buf = ReadBuf {
        bytes: vec![0u8; READ_CHUNK],
        filled: 0,
    };
    let mut outstanding: InFlight = InFlight::with_capacity(config.pipeline);
    let deadline = core.deadline();
    loop {
        let Some(s) = stream.as_mut() else {
            if !lane.more_to_send(Instant::now()) {
                return;
            }
            stream = core.reconnect(&mut lane).await.and_then(|c| c.into_http());
            continue;
        };
        let outcome = session(
            core,
            s,
            &mut lane,
            &mut outstanding,
            &mut buf,
            head_request,
            &deadline,
        )
        .await;
        deadline.disarm();
        core.open.set(core.open.get() - 1);
        match outcome {
            Outcome::Done => return,
            Outcome::Closed => {}
            Outcome::Failed(kind) => core.tally.borrow_mut().error(kind),
        }
        // Requests in flight on a dead connection are gone: their slots of the schedule are
        // not sent again.
        outstanding.clear();
        buf.filled = 0;
        stream = None;
    }
}

async fn session(
    core: &Core,
    stream: &mut Stream,
    lane: &mut Lane,
    outstanding: &mut InFlight,
    buf: &mut ReadBuf,
    head_request: bool,
    deadline: &Deadline,
) -> Outcome {
    let fd = stream.as_raw_fd();
    let ReadBuf { bytes: buf, filled } = buf;
    let config = &core.config;
    let request_len = core.request_len;
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        let due = lane.take_due(now, outstanding, config.pipeline);
        if due > 0 {
            if outstanding.len() == due {
                last_progress = now;
            }
            let bytes = &core.requests[..due * request_len];
            deadline.arm(fd, now + config.timeout);
            let written = stream.write_all(bytes).await;
            if deadline.disarm() {
                return Outcome::Failed(ErrorKind::Timeout);
            }
            if let Err(e) = written {
                return Outcome::Failed(net::classify(&e));
            }
            continue;
        }
        if outstanding.is_empty() && !lane.more_to_send(now) {
            return Outcome::Done;
        }
        let next_send = lane.next_send(now, outstanding, config.pipeline);
        if buf.len() - *filled < READ_CHUNK / 2 {
            buf.resize(buf.len() * 2, 0);
        }
        if !outstanding.is_empty() {
            deadline.arm(fd, last_progress + config.timeout);
        }
        let read = match next_send {
            // Open loop with room in the pipeline: wake up for the next send too.
            Some(at) => {
                wait(
                    at.saturating_duration_since(now),
                    stream.read(&mut buf[*filled..]),
                )
                .await
            }
            None => Wake::Done(stream.read(&mut buf[*filled..]).await),
        };
        if deadline.disarm() {
            return Outcome::Failed(ErrorKind::Timeout);
        }
        match read {
            Wake::Timer => {}
            Wake::Done(Err(e)) => return Outcome::Failed(net::classify(&e)),
            Wake::Done(Ok(0)) => {
                // A response framed by the end of the connection is complete now.
                if let Ok(Parse::UntilClose { status }) =
                    response::parse(&buf[..*filled], head_request)
                    && let Some((intended, measured)) = outstanding.pop_front()
                {
                    core.complete(status, intended, measured, Instant::now());
                }
                return if outstanding.is_empty() {
                    Outcome::Closed
                } else {
                    Outcome::Failed(ErrorKind::Reset)
                };
            }
            Wake::Done(Ok(n)) => {
                *filled += n;
                let done = Instant::now();
                last_progress = done;
                let mut at = 0;
                let mut closing = false;
                while at < *filled {
                    match response::parse(&buf[at..*filled], head_request) {
                        Ok(Parse::Complete(framed)) => {
                            let Some((intended, measured)) = outstanding.pop_front() else {
                                return Outcome::Failed(ErrorKind::Protocol);
                            };
                            core.complete(framed.status, intended, measured, done);
                            at += framed.len;
                            if framed.close {
                                closing = true;
                                break;
                            }
                        }
                        Ok(Parse::Partial | Parse::UntilClose { .. }) => break,
                        Err(_) => return Outcome::Failed(ErrorKind::Protocol),
                    }
                }
                buf.copy_within(at..*filled, 0);
                *filled -= at;
                if closing {
                    return if outstanding.is_empty() {
                        Outcome::Closed
                    } else {
                        // Pipelined requests behind a `Connection: close` response are lost.
                        Outcome::Failed(ErrorKind::Reset)
                    };
                }
            }
        }
    }
}

impl Core {
    /// Counts one response.
    pub(crate) fn complete(&self, status: u16, intended: Instant, measured: bool, done: Instant) {
        let mut tally = self.tally.borrow_mut();
        tally.seen += 1;
        if !(200..300).contains(&status) {
            tally.error(ErrorKind::BadStatus(status));
        }
        if measured {
            let latency = latency_ns(intended, done);
            tally.record(latency);
            if !(200..300).contains(&status) {
                tally.record_refused(latency);
            }
            *tally.statuses.entry(status).or_default() += 1;
            self.last_done.set(Some(done));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn config(url: &str) -> Config {
        Config::new(Target::parse(url).expect("valid url"))
    }

    #[test]
    fn get_request() {
        let config = config("http://127.0.0.1:8080/plaintext");
        assert_eq!(
            encode_request(&config),
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
    }

    #[test]
    fn post_with_headers_and_body() {
        let mut config = config("http://localhost:9/echo");
        config.method = "POST".into();
        config
            .headers
            .push(("Content-Type".into(), "text/plain".into()));
        config.body = b"hello".to_vec();
        assert_eq!(
            encode_request(&config),
            b"POST /echo HTTP/1.1\r\nHost: localhost:9\r\nContent-Type: text/plain\r\n\
              Content-Length: 5\r\n\r\nhello"
        );
        config.body.clear();
        assert!(
            String::from_utf8(encode_request(&config))
                .expect("ascii")
                .contains("Content-Length: 0\r\n")
        );
    }
}
