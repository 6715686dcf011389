//! Turning the tail of a request path into a path relative to the static root, or refusing.
//!
//! The tail is taken still percent-encoded, so that a separator smuggled inside a segment
//! (`..%2Fsecret`) can be told apart from a real one. Each segment is decoded on its own and
//! refused when it could climb out of the root or mean something else to the filesystem.
//! This is the first of two guards: after opening, the file's resolved path is checked
//! against the root as well (symbolic links), in `disk`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// A request tail that is safe to join to the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tail<'a> {
    /// Decoded segments joined with `/`; empty for the root itself. Borrowed from the
    /// request when nothing needed decoding, as for nearly every request.
    pub relative: Cow<'a, str>,
    /// Whether the URL ended with `/` (asks for a directory).
    pub trailing_slash: bool,
}

/// Why a tail was refused (all answer 403; the reason is for tests and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Starts with `/`: an absolute path.
    Absolute,
    /// `a//b`: an empty segment.
    EmptySegment,
    /// `.` or `..`, literally or percent-encoded.
    DotSegment,
    /// A decoded segment holds `/`, `\` or NUL.
    ForbiddenByte,
    /// A segment that is not UTF-8 once decoded.
    NotUtf8,
}

/// Checks and decodes `raw`, the part of the request path after the mount prefix.
pub(crate) fn sanitize(raw: &str) -> Result<Tail<'_>, Refusal> {
    if raw.starts_with('/') {
        return Err(Refusal::Absolute);
    }
    let (body, trailing_slash) = match raw.strip_suffix('/') {
        Some(body) => (body, true),
        None => (raw, raw.is_empty()),
    };
    if body.is_empty() {
        return Ok(Tail {
            relative: Cow::Borrowed(""),
            trailing_slash,
        });
    }
    // Each segment is decoded and checked once. The target is ASCII (the codec refuses
    // anything else), so until a segment needs decoding the body is its own answer and
    // nothing is copied; from the first one that does, segments go into an owned path.
    let mut decoded_path: Option<String> = None;
    let mut before = 0; // bytes of `body` ahead of this segment, its '/' included
    for segment in body.split('/') {
        let decoded: Cow<'_, [u8]> = percent_decode_str(segment).into();
        let text = check_segment(&decoded)?;
        if decoded_path.is_none() && matches!(decoded, Cow::Owned(_)) {
            decoded_path = Some(body[..before].to_owned());
        }
        if let Some(path) = &mut decoded_path {
            path.push_str(text);
            path.push('/');
        }
        before += segment.len() + 1;
    }
    let relative = match decoded_path {
        Some(mut path) => {
            path.pop(); // the '/' after the last segment
            Cow::Owned(path)
        }
        None => Cow::Borrowed(body),
    };
    Ok(Tail {
        relative,
        trailing_slash,
    })
}

/// The decoded segment as text, if it may be part of a file path.
fn check_segment(decoded: &[u8]) -> Result<&str, Refusal> {
    if decoded.is_empty() {
        return Err(Refusal::EmptySegment);
    }
    if decoded.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
        return Err(Refusal::ForbiddenByte);
    }
    if decoded == b"." || decoded == b".." {
        return Err(Refusal::DotSegment);
    }
    std::str::from_utf8(decoded).map_err(|_| Refusal::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(relative: &str, trailing_slash: bool) -> Result<Tail<'_>, Refusal> {
        Ok(Tail {
            relative: Cow::Borrowed(relative),
            trailing_slash,
        })
    }

    #[test]
    fn plain_paths_decode_segment_by_segment() {
        assert_eq!(sanitize("css/site.css"), ok("css/site.css", false));
        assert_eq!(sanitize("a%20b/c%2Bd.txt"), ok("a b/c+d.txt", false));
        assert_eq!(sanitize("css/a%20b.css/x"), ok("css/a b.css/x", false));
        assert_eq!(sanitize("docs/"), ok("docs", true));
        assert_eq!(sanitize(""), ok("", true));
        assert_eq!(sanitize("caf%C3%A9.txt"), ok("café.txt", false));
        // Dots inside a name are just dots.
        assert_eq!(sanitize("..hidden/a..b"), ok("..hidden/a..b", false));
        // An invalid escape stays literal text, as browsers send it.
        assert_eq!(sanitize("100%.txt"), ok("100%.txt", false));
    }

    #[test]
    fn everything_that_could_leave_the_root_is_refused() {
        let cases = [
            ("../secret", Refusal::DotSegment),
            ("a/../../secret", Refusal::DotSegment),
            ("./a", Refusal::DotSegment),
            ("%2e%2e/secret", Refusal::DotSegment),
            ("%2E%2E/secret", Refusal::DotSegment),
            (".%2e/secret", Refusal::DotSegment),
            ("a/..", Refusal::DotSegment),
            ("a/../", Refusal::DotSegment),
            ("..%2Fsecret", Refusal::ForbiddenByte),
            ("..%2fsecret", Refusal::ForbiddenByte),
            ("%2Fetc%2Fpasswd", Refusal::ForbiddenByte),
            ("..%5Csecret", Refusal::ForbiddenByte),
            ("..\\secret", Refusal::ForbiddenByte),
            ("a%00.txt", Refusal::ForbiddenByte),
            ("/etc/passwd", Refusal::Absolute),
            ("//etc/passwd", Refusal::Absolute),
            ("a//b", Refusal::EmptySegment),
            ("a/%FF", Refusal::NotUtf8),
        ];
        for (raw, why) in cases {
            assert_eq!(sanitize(raw), Err(why), "{raw}");
        }
    }
}
