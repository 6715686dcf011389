//! The hub's bridge between machines: Redis pub/sub carries what one machine publishes to
//! the hubs of the others.
//!
//! Every core keeps its own Redis subscriber and delivers what arrives to its own
//! subscribers only, so nothing crosses cores on this path either. A publish goes to Redis
//! once, from the publishing core, tagged with its server's id; each server skips its own
//! messages, which its cores have already had through the mesh.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};

use super::Hub;
use crate::db::redis::{self, Subscriber};
use crate::error::Error;
use crate::ws::Message;

const TEXT: u8 = b't';
const BINARY: u8 = b'b';

pub(crate) struct Bridge {
    client: redis::Client,
    prefix: Box<str>,
}

impl Bridge {
    /// Starts this core's listener and returns the publishing side.
    pub(crate) fn start(config: redis::RedisConfig, prefix: &str, hub: Hub) -> Rc<Bridge> {
        let pattern = format!("{}*", escape_glob(prefix));
        glommio::spawn_local(listen(config.clone(), pattern, prefix.len(), hub)).detach();
        Rc::new(Bridge {
            client: redis::Client::new(config),
            prefix: prefix.into(),
        })
    }

    pub(crate) async fn publish(&self, topic: &str, message: &Message) -> Result<(), Error> {
        let channel = [self.prefix.as_bytes(), topic.as_bytes()].concat();
        self.client
            .publish(channel, encode(crate::cores::server_id(), message))
            .await?;
        Ok(())
    }
}

/// Delivers what other machines publish, for as long as the core runs. The subscriber
/// connects on first use and reconnects, backing off, whenever Redis goes away.
async fn listen(config: redis::RedisConfig, pattern: String, prefix_len: usize, hub: Hub) {
    let mut subscriber = Subscriber::new(config);
    // Remembered even if this fails: the subscriber subscribes again when it reconnects.
    if let Err(e) = subscriber.psubscribe(&[pattern.as_bytes()]).await {
        tracing::warn!(target: "squall::ws", "hub bridge: subscribing failed ({e}); will retry");
    }
    loop {
        match subscriber.next().await {
            Ok(published) => {
                let Some(topic) = published
                    .channel
                    .get(prefix_len..)
                    .and_then(|t| std::str::from_utf8(t).ok())
                else {
                    continue;
                };
                match decode(published.payload) {
                    Some((from, message)) if from != crate::cores::server_id() => {
                        hub.publish_local(topic, message);
                    }
                    Some(_) => {} // Our own: the mesh has delivered it already.
                    None => {
                        tracing::warn!(target: "squall::ws", "hub bridge: skipped a malformed message on topic {topic}");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(target: "squall::ws", "hub bridge: lost redis ({e}); reconnecting");
            }
        }
    }
}

/// `origin (8 bytes) | kind (1 byte) | payload`.
fn encode(origin: u64, message: &Message) -> Bytes {
    let payload = message.as_bytes();
    let mut out = BytesMut::with_capacity(9 + payload.len());
    out.put_u64(origin);
    out.put_u8(match message {
        Message::Text(_) => TEXT,
        Message::Binary(_) => BINARY,
    });
    out.put_slice(payload);
    out.freeze()
}

fn decode(mut payload: Bytes) -> Option<(u64, Message)> {
    if payload.len() < 9 {
        return None;
    }
    let header = payload.split_to(9);
    let from = u64::from_be_bytes(header[..8].try_into().ok()?);
    let message = match header[8] {
        TEXT => Message::Text(payload.try_into().ok()?),
        BINARY => Message::Binary(payload),
        _ => return None,
    };
    Some((from, message))
}

/// A prefix taken literally inside a Redis glob pattern.
fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_wire_format() {
        for message in [Message::text("héllo"), Message::binary(vec![0, 255, 7])] {
            let (from, back) = decode(encode(42, &message)).expect("decodes");
            assert_eq!(from, 42);
            assert_eq!(back, message);
        }
        assert_eq!(decode(Bytes::from_static(b"short")), None);
        let mut bad_text = encode(1, &Message::text("x")).to_vec();
        bad_text.push(0xff);
        assert_eq!(decode(bad_text.into()), None);
    }

    #[test]
    fn prefixes_are_literal_in_patterns() {
        assert_eq!(escape_glob("app:hub:"), "app:hub:");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
