//! Conditional and range requests (RFC 9110 sections 13 and 14), as pure decisions over
//! header text: what to answer is decided here, how to send it in `files`.

use std::time::{SystemTime, UNIX_EPOCH};

use smallvec::SmallVec;

/// What a representation is recognised by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validators<'a> {
    /// The strong entity tag, quotes included (`"…"`).
    pub etag: &'a str,
    /// Last modification, whole seconds since the epoch (what `Last-Modified` can say).
    pub modified: u64,
}

/// The outcome of the preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Answer normally.
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` failed.
    Failed,
}

/// Which part of the representation to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// 200 with everything: no `Range`, one that does not apply, or several ranges.
    Full,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// 416: no byte of the range exists.
    Unsatisfiable,
}

/// The conditional and range headers of a request. Lists may span several header lines.
#[derive(Debug, Default)]
pub(crate) struct Conditions<'a> {
    if_match: SmallVec<[&'a str; 1]>,
    if_none_match: SmallVec<[&'a str; 1]>,
    if_modified_since: Option<&'a str>,
    if_unmodified_since: Option<&'a str>,
    if_range: Option<&'a str>,
    range: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    /// Picks the relevant headers out of `headers`; values that are not text are ignored.
    pub(crate) fn from_headers(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut conditions = Conditions::default();
        for (name, value) in headers {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            if name.eq_ignore_ascii_case("if-none-match") {
                conditions.if_none_match.push(value);
            } else if name.eq_ignore_ascii_case("if-modified-since") {
                conditions.if_modified_since.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("range") {
                conditions.range.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("if-range") {
                conditions.if_range.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("if-match") {
                conditions.if_match.push(value);
            } else if name.eq_ignore_ascii_case("if-unmodified-since") {
                conditions.if_unmodified_since.get_or_insert(value);
            }
        }
        conditions
    }

    /// Whether the request asks for a range at all.
    pub(crate) fn has_range(&self) -> bool {
        self.range.is_some()
    }

    /// Evaluates the preconditions of a GET or HEAD in the order RFC 9110 13.2.2 gives:
    /// `If-Match`, else `If-Unmodified-Since`; then `If-None-Match`, else
    /// `If-Modified-Since`. An `If-None-Match` present makes `If-Modified-Since` irrelevant.
    pub(crate) fn evaluate(&self, current: Validators<'_>) -> Precondition {
        if !self.if_match.is_empty() {
            if !any_tag_matches(&self.if_match, current.etag, Comparison::Strong) {
                return Precondition::Failed;
            }
        } else if let Some(date) = self.if_unmodified_since.and_then(parse_date) {
            if current.modified > date {
                return Precondition::Failed;
            }
        }
        if !self.if_none_match.is_empty() {
            if any_tag_matches(&self.if_none_match, current.etag, Comparison::Weak) {
                return Precondition::NotModified;
            }
        } else if let Some(date) = self.if_modified_since.and_then(parse_date) {
            if current.modified <= date {
                return Precondition::NotModified;
            }
        }
        Precondition::Proceed
    }

    /// Decides the range to send of a representation `len` bytes long. `If-Range` that does
    /// not match, an unknown unit, a malformed or a multi-range header all mean the whole
    /// representation: serving several ranges would need `multipart/byteranges`, which no
    /// browser needs and which is easy to abuse (many overlapping ranges).
    pub(crate) fn range(&self, current: Validators<'_>, len: u64) -> RangeOutcome {
        let Some(range) = self.range else {
            return RangeOutcome::Full;
        };
        if let Some(if_range) = self.if_range {
            if !if_range_matches(if_range, current) {
                return RangeOutcome::Full;
            }
        }
        parse_range(range, len)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and equal (`If-Match`, `If-Range`).
    Strong,
    /// Equal once `W/` is ignored (`If-None-Match`).
    Weak,
}

/// Whether `*` or any tag in the comma lists `lines` matches `etag` (a strong tag).
fn any_tag_matches(lines: &[&str], etag: &str, comparison: Comparison) -> bool {
    lines.iter().any(|line| {
        line.trim() == "*"
            || entity_tags(line)
                .any(|(weak, tag)| tag == etag && !(weak && comparison == Comparison::Strong))
    })
}

/// The entity tags of a comma list as `(weak, "opaque")`, quotes kept. Parsing stops at
/// the first malformed element; tags may contain commas, so the list is not split on them.
fn entity_tags(list: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let weak = match rest.strip_prefix("W/") {
            Some(after) => {
                rest = after;
                true
            }
            None => false,
        };
        let after_quote = rest.strip_prefix('"')?;
        let close = after_quote.find('"')?;
        let tag = &rest[..close + 2];
        rest = &after_quote[close + 1..];
        Some((weak, tag))
    })
}

/// `If-Range` holds either an entity tag, compared strongly, or the exact `Last-Modified`.
fn if_range_matches(value: &str, current: Validators<'_>) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return value == current.etag;
    }
    parse_date(value) == Some(current.modified)
}

/// An HTTP-date as seconds since the epoch; `None` when it is not one.
fn parse_date(value: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(value.trim()).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Seconds since the epoch of a modification time (0 before the epoch).
pub(crate) fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn parse_range(value: &str, len: u64) -> RangeOutcome {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    match (first, last) {
        ("", suffix) => match digits(suffix) {
            None => RangeOutcome::Full,
            Some(0) => RangeOutcome::Unsatisfiable,
            Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
            Some(n) => RangeOutcome::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (first, last) => {
            let Some(start) = digits(first) else {
                return RangeOutcome::Full;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match digits(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeOutcome::Full,
                }
            };
            if start >= len {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Partial {
                start,
                end: end.min(len - 1),
            }
        }
    }
}

/// A non-empty run of ASCII digits that fits in a u64.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: Validators<'static> = Validators {
        etag: "\"abc\"",
        // Sun, 06 Nov 1994 08:49:37 GMT
        modified: 784111777,
    };

    fn conditions<'a>(headers: &'a [(&'a str, &'a str)]) -> Conditions<'a> {
        Conditions::from_headers(headers.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    fn evaluate(headers: &[(&str, &str)]) -> Precondition {
        conditions(headers).evaluate(CURRENT)
    }

    #[test]
    fn if_none_match_compares_weakly_and_beats_if_modified_since() {
        use Precondition::*;
        let cases: &[(&[(&str, &str)], Precondition)] = &[
            (&[("if-none-match", "\"abc\"")], NotModified),
            (&[("if-none-match", "W/\"abc\"")], NotModified),
            (&[("if-none-match", "\"x\", \"abc\"")], NotModified),
            (
                &[("if-none-match", "\"x\""), ("if-none-match", "\"abc\"")],
                NotModified,
            ),
            (&[("if-none-match", "\"a,b\", \"abc\"")], NotModified),
            (&[("if-none-match", "*")], NotModified),
            (&[("if-none-match", "\"x\"")], Proceed),
            (&[("if-none-match", "abc")], Proceed),
            // Not modified since then, but the tag differs: the tag decides.
            (
                &[
                    ("if-none-match", "\"x\""),
                    ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ],
                Proceed,
            ),
            (
                &[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
                NotModified,
            ),
            (
                &[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")],
                NotModified,
            ),
            (
                &[("if-modified-since", "Sun, 06 Nov 1994 08:49:36 GMT")],
                Proceed,
            ),
            (&[("if-modified-since", "yesterday")], Proceed),
            (&[("if-match", "\"abc\"")], Proceed),
            (&[("if-match", "W/\"abc\"")], Failed),
            (&[("if-match", "\"x\"")], Failed),
            (&[("if-match", "*")], Proceed),
            (
                &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:36 GMT")],
                Failed,
            ),
            (
                &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
                Proceed,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(evaluate(headers), *expected, "{headers:?}");
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeOutcome::*;
        let partial = |start, end| Partial { start, end };
        let cases = [
            ("bytes=0-9", 100, partial(0, 9)),
            ("bytes=10-", 100, partial(10, 99)),
            ("bytes=-10", 100, partial(90, 99)),
            ("bytes=-1000", 100, partial(0, 99)),
            ("bytes=90-1000", 100, partial(90, 99)),
            ("BYTES = 5-5", 100, partial(5, 5)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=0-1,5-6", 100, Full),
            ("bytes=5-1", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=1", 100, Full),
            ("bytes=99999999999999999999-", 100, Full),
        ];
        for (range, len, expected) in cases {
            let headers = [("range", range)];
            let c = conditions(&headers);
            assert_eq!(c.range(CURRENT, len), expected, "{range} of {len}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_tag_or_the_exact_date() {
        let partial = RangeOutcome::Partial { start: 0, end: 0 };
        let cases = [
            ("\"abc\"", partial),
            ("W/\"abc\"", RangeOutcome::Full),
            ("\"x\"", RangeOutcome::Full),
            ("Sun, 06 Nov 1994 08:49:37 GMT", partial),
            ("Sun, 06 Nov 1994 08:49:38 GMT", RangeOutcome::Full),
            ("garbage", RangeOutcome::Full),
        ];
        for (if_range, expected) in cases {
            let headers = [("range", "bytes=0-0"), ("if-range", if_range)];
            let c = conditions(&headers);
            assert_eq!(c.range(CURRENT, 10), expected, "{if_range}");
        }
    }
}
