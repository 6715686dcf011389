//! The boxed future that stays on its core.
//!
//! Handlers, middleware and the connection driver all hand each other futures they cannot name
//! (async blocks, trait methods). Every core runs its own executor and nothing moves between
//! cores, so these futures need not be `Send`; one alias spells that shape for the whole crate.

use std::future::Future;
use std::pin::Pin;

/// A boxed future that stays on its core.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
