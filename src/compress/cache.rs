//! Compressed bodies kept per core, so that the same bytes are not compressed on every
//! request.
//!
//! A strong `ETag` names one exact sequence of bytes for its target (RFC 9110 §8.8.1), so a
//! response's target, strong tag and coding are enough to reuse an earlier result: static
//! files without precompressed siblings and any handler that tags its content get one
//! compression per version instead of one per request. Responses without a strong tag are
//! always compressed afresh.

use std::cell::RefCell;

use bytes::Bytes;
use http::header::HeaderValue;

use super::Coding;

/// What one compression is remembered by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct EncodedKey {
    /// The request's path and query: tags are only unique within one target.
    pub(super) target: Box<str>,
    pub(super) etag: HeaderValue,
    pub(super) coding: Coding,
}

/// The compressed bodies of one core, bounded by the bytes they hold. `None` remembers that
/// compressing did not make the body smaller.
#[derive(Debug)]
pub(super) struct EncodedCache {
    entries: RefCell<quick_cache::unsync::Cache<EncodedKey, Option<Bytes>, EncodedWeight>>,
}

impl EncodedCache {
    pub(super) fn new(capacity_bytes: u64) -> EncodedCache {
        // quick_cache sizes its table from the expected number of entries; a few hundred
        // compressed assets is the common case, and it grows past that when needed.
        let entries = quick_cache::unsync::Cache::with_weighter(256, capacity_bytes, EncodedWeight);
        EncodedCache {
            entries: RefCell::new(entries),
        }
    }

    /// The remembered result for `key`: `Some(None)` when compressing did not pay.
    pub(super) fn get(&self, key: &EncodedKey) -> Option<Option<Bytes>> {
        self.entries.borrow().get(key).cloned()
    }

    pub(super) fn insert(&self, key: EncodedKey, encoded: Option<Bytes>) {
        self.entries.borrow_mut().insert(key, encoded);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// Weighs an entry by the bytes it holds, plus what any entry costs.
#[derive(Clone, Copy, Debug)]
struct EncodedWeight;

impl quick_cache::Weighter<EncodedKey, Option<Bytes>> for EncodedWeight {
    fn weight(&self, key: &EncodedKey, encoded: &Option<Bytes>) -> u64 {
        let body = encoded.as_ref().map_or(0, Bytes::len);
        (128 + key.target.len() + key.etag.len() + body) as u64
    }
}
