//! Request ids: the `X-Request-Id` a trusted proxy sent, or one made here, so that a request
//! can be followed through the proxy's log, the access log, the handler's own events and
//! the response the client got.
//!
//! Turned on by [`App::request_ids`](crate::App::request_ids). A made id is this thread's
//! random 64-bit prefix and its own counter, in hex (`5f0c9e21d3a47b18-2a`): unique within
//! the process without any atomic shared between cores (each core counts alone, and the
//! prefixes of two threads collide with odds of about one in 2⁶⁴), and unlike the previous
//! run's ids after a restart. An id from the request is believed only when the connection
//! came from one of [`Config::trusted_proxies`](crate::Config::trusted_proxies) and it is
//! 1 to [`MAX_LEN`] visible ASCII characters; otherwise a new one replaces it, so a client
//! cannot forge ids in the log or fill it with control characters.

use std::cell::Cell;
use std::hash::BuildHasher;

use http::HeaderValue;

/// The longest request id taken from a proxy; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The header a request id travels in, both ways.
pub(crate) const HEADER: http::header::HeaderName =
    http::header::HeaderName::from_static("x-request-id");

thread_local! {
    // Per thread, so per core: the counter is never shared, and each thread draws its own
    // prefix from the standard library's randomly keyed hasher (seeded from the OS once per
    // thread).
    static NEXT: Cell<(u64, u64)> = Cell::new((
        std::collections::hash_map::RandomState::new().hash_one(std::process::id()),
        0,
    ));
}

/// `value` as a request id when it is one: 1 to [`MAX_LEN`] visible ASCII characters.
pub(crate) fn accept(value: &[u8]) -> Option<HeaderValue> {
    let fits =
        !value.is_empty() && value.len() <= MAX_LEN && value.iter().all(|b| b.is_ascii_graphic());
    if fits {
        HeaderValue::from_bytes(value).ok()
    } else {
        None
    }
}

/// A new id, unique within this process.
pub(crate) fn generate() -> HeaderValue {
    let (prefix, count) = NEXT.with(|next| {
        let (prefix, count) = next.get();
        next.set((prefix, count.wrapping_add(1)));
        (prefix, count)
    });
    // 16 hex digits, a dash and at most 16 more.
    let mut text = [0u8; 33];
    let mut len = 0;
    for digit in (0..16).rev() {
        text[len] = hex((prefix >> (digit * 4)) as u8);
        len += 1;
    }
    text[len] = b'-';
    len += 1;
    let digits = (64 - count.leading_zeros()).div_ceil(4).max(1);
    for digit in (0..digits).rev() {
        text[len] = hex((count >> (digit * 4)) as u8);
        len += 1;
    }
    HeaderValue::from_bytes(&text[..len]).expect("hex digits and a dash are a valid header value")
}

fn hex(nibble: u8) -> u8 {
    b"0123456789abcdef"[usize::from(nibble & 0xf)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_accepted() {
        assert_eq!(
            accept(b"abc-123").as_ref().map(HeaderValue::as_bytes),
            Some(&b"abc-123"[..])
        );
        assert!(accept(&[b'a'; MAX_LEN]).is_some());
        assert!(accept(&[b'a'; MAX_LEN + 1]).is_none());
        assert!(accept(b"").is_none());
        assert!(accept(b"has space").is_none());
        assert!(accept(b"tab\there").is_none());
        assert!(accept(b"nl\nx").is_none());
        assert!(accept("caf\u{e9}".as_bytes()).is_none());
        assert!(accept(b"del\x7f").is_none());
    }

    #[test]
    fn generated_ids_are_distinct_and_well_formed() {
        let ids: Vec<HeaderValue> = (0..1000).map(|_| generate()).collect();
        let mut unique: Vec<&[u8]> = ids.iter().map(HeaderValue::as_bytes).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert!(accept(id.as_bytes()).is_some(), "{id:?}");
            let text = id.to_str().expect("ascii");
            let (prefix, count) = text.split_once('-').expect("a dash");
            assert_eq!(prefix.len(), 16);
            assert!(u64::from_str_radix(count, 16).is_ok(), "{text}");
        }
        // Another thread has another prefix.
        let here = generate();
        let there = std::thread::spawn(generate).join().expect("thread");
        assert_ne!(here.as_bytes()[..16], there.as_bytes()[..16]);
    }
}
