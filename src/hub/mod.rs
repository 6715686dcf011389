//! The publish/subscribe hub for WebSocket connections: named topics, per core, with fan-out
//! to every core and, once [bridged](Hub::bridge_redis), through Redis to other machines.
//!
//! Each core keeps its own subscriber table: a subscription is a [`WsSender`] in a slab under
//! its topic, and delivering a message is a `try_send` into each subscriber's bounded queue,
//! so a slow subscriber is closed by its own queue's policy and never holds up the others.
//! A publish delivers on its own core, then sends one job per other core through
//! [`cores`], which delivers to that core's subscribers there.

// This file keeps the per-core topic table and the cross-core fan-out; bridge, the link to
// other machines through Redis pub/sub, which needs the `redis` feature.
#[cfg(feature = "redis")]
mod bridge;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use slab::Slab;

#[cfg(feature = "redis")]
use self::bridge::Bridge;
use crate::cores;
#[cfg(feature = "redis")]
use crate::db::redis;
use crate::error::Error;
use crate::per_core::ExecutorLocal;
use crate::ws::{Message, WsSender};

#[derive(Default)]
struct State {
    topics: RefCell<HashMap<Box<str>, Slab<WsSender>>>,
    /// Messages this core handed to its subscribers' queues, and those it could not (the
    /// subscriber's queue was full or it had closed); read by a metrics scrape.
    deliveries: Cell<Deliveries>,
    #[cfg(feature = "redis")]
    bridge: RefCell<Option<Rc<Bridge>>>,
}

/// What a core's hub has delivered to its subscribers since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deliveries {
    /// Messages taken by a subscriber's queue.
    pub(crate) delivered: u64,
    /// Messages a subscriber could not take (its queue was full, or it had closed).
    pub(crate) refused: u64,
}

/// This core's hub deliveries, if it has a hub (for a metrics scrape).
#[cfg_attr(
    not(feature = "metrics"),
    allow(dead_code, reason = "read by the metrics feature alone")
)]
pub(crate) fn deliveries() -> Deliveries {
    HUB.with(|hub| {
        hub.get()
            .map(|state| state.deliveries.get())
            .unwrap_or_default()
    })
}

thread_local! {
    // One hub per executor thread, so per core.
    static HUB: ExecutorLocal<State> = const { ExecutorLocal::new() };
}

/// This core's hub. Cheap to clone; every clone on a core is the same hub.
///
/// ```no_run
/// # async fn chat(socket: squall::ws::WebSocket) {
/// use squall::hub::Hub;
///
/// let hub = Hub::current();
/// let _subscription = hub.subscribe("lobby", socket.sender());
/// while let Some(message) = socket.recv().await {
///     let _ = hub.publish("lobby", message).await; // to every core's "lobby"
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Hub {
    state: Rc<State>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hub = f.debug_struct("Hub");
        hub.field("topics", &self.state.topics.borrow().len());
        #[cfg(feature = "redis")]
        hub.field("bridged", &self.state.bridge.borrow().is_some());
        hub.finish()
    }
}

impl Hub {
    /// The hub of the core this runs on.
    pub fn current() -> Hub {
        Hub {
            state: HUB.with(|hub| hub.get_or_init(State::default)),
        }
    }

    /// Delivers what is published to `topic` to `sender` until the subscription is dropped.
    pub fn subscribe(&self, topic: &str, sender: WsSender) -> Subscription {
        let mut topics = self.state.topics.borrow_mut();
        let key = match topics.get_mut(topic) {
            Some(subscribers) => subscribers.insert(sender),
            None => {
                let mut subscribers = Slab::new();
                let key = subscribers.insert(sender);
                topics.insert(topic.into(), subscribers);
                key
            }
        };
        Subscription {
            state: Rc::clone(&self.state),
            topic: topic.into(),
            key,
        }
    }

    /// How many subscriptions to `topic` this core holds (a connection that has closed
    /// counts until its [`Subscription`] is dropped).
    pub fn local_subscribers(&self, topic: &str) -> usize {
        self.state.topics.borrow().get(topic).map_or(0, Slab::len)
    }

    /// Publishes to the subscribers of `topic` on every core, and on other machines when the
    /// hub is [bridged](Hub::bridge_redis). This core's subscribers are served first; then
    /// it waits while another core's mesh channel is full, and for Redis to take the message.
    /// An `Err` means the Redis bridge failed; the local cores were served regardless.
    pub async fn publish(&self, topic: &str, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        // This core first: nothing below (a full mesh channel, a Redis round trip) delays it.
        self.publish_local(topic, message.clone());
        let me = cores::current();
        for core in (0..cores::count()).filter(|&core| core != me) {
            let topic: Box<str> = topic.into();
            let message = message.clone();
            let deliver = move || {
                Hub::current().publish_local(&topic, message);
            };
            // Fails only while the cores shut down; nobody is left to deliver to.
            let _ = cores::send(core, Box::new(deliver)).await;
        }
        #[cfg(feature = "redis")]
        {
            let bridge = self.state.bridge.borrow().clone();
            if let Some(bridge) = bridge {
                return bridge.publish(topic, &message).await;
            }
        }
        Ok(())
    }

    /// Delivers to the subscribers of `topic` on this core only; returns how many took it.
    /// A subscriber whose queue is full is closed (1008) rather than waited for.
    pub fn publish_local(&self, topic: &str, message: impl Into<Message>) -> usize {
        let message = message.into();
        let topics = self.state.topics.borrow();
        let Some(subscribers) = topics.get(topic) else {
            return 0;
        };
        let delivered = subscribers
            .iter()
            .filter(|(_, sender)| sender.try_send(message.clone()).is_ok())
            .count();
        let mut counted = self.state.deliveries.get();
        counted.delivered += delivered as u64;
        counted.refused += (subscribers.len() - delivered) as u64;
        self.state.deliveries.set(counted);
        delivered
    }

    /// Number of cores a publish reaches (1 until the server has joined them).
    pub fn cores(&self) -> usize {
        cores::count()
    }

    /// Bridges this core's hub to other machines through Redis pub/sub: publishes also go
    /// to the Redis channel `prefix` + topic, and what other machines publish there is
    /// delivered here. Call it on every core (in the application factory); each core keeps
    /// its own subscriber connection, reconnecting with backoff while Redis is away.
    ///
    /// Needs the `redis` feature.
    #[cfg(feature = "redis")]
    pub fn bridge_redis(&self, config: redis::RedisConfig, prefix: &str) {
        let bridge = Bridge::start(config, prefix, self.clone());
        *self.state.bridge.borrow_mut() = Some(bridge);
    }
}

/// A subscription to a topic; dropping it unsubscribes.
pub struct Subscription {
    state: Rc<State>,
    topic: Box<str>,
    key: usize,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.state.topics.borrow_mut();
        if let Some(subscribers) = topics.get_mut(&*self.topic) {
            subscribers.try_remove(self.key);
            if subscribers.is_empty() {
                topics.remove(&*self.topic);
            }
        }
    }
}
