//! The `Date` header value, formatted once per second rather than once per response.
//!
//! The codec only formats; the server keeps one cached line per core and a per-core timer
//! refreshes it, so no response pays for formatting and no core shares mutable state.

use std::time::SystemTime;

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// Formats `now` as an IMF-fixdate (RFC 9110 5.6.7).
pub fn http_date(now: SystemTime) -> [u8; DATE_LEN] {
    let text = httpdate::fmt_http_date(now);
    let mut out = [b' '; DATE_LEN];
    let n = text.len().min(DATE_LEN);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

/// The `server` and `date` header lines that open every response, rebuilt once per second.
#[derive(Clone, Debug)]
pub struct DateLine {
    line: Vec<u8>,
    date_at: usize,
}

impl DateLine {
    /// Builds the lines for `server_name` at time `now`.
    pub fn new(server_name: &str, now: SystemTime) -> DateLine {
        let mut line = Vec::with_capacity(server_name.len() + DATE_LEN + 20);
        line.extend_from_slice(b"server: ");
        line.extend_from_slice(server_name.as_bytes());
        line.extend_from_slice(b"\r\ndate: ");
        let date_at = line.len();
        line.extend_from_slice(&http_date(now));
        line.extend_from_slice(b"\r\n");
        DateLine { line, date_at }
    }

    /// Rewrites the date part in place.
    pub fn refresh(&mut self, now: SystemTime) {
        self.line[self.date_at..self.date_at + DATE_LEN].copy_from_slice(&http_date(now));
    }

    /// The header lines, ending in CRLF.
    pub fn as_bytes(&self) -> &[u8] {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_imf_fixdate() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(&http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn refresh_rewrites_only_the_date() {
        let mut line = DateLine::new("squall", UNIX_EPOCH);
        line.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(
            line.as_bytes(),
            b"server: squall\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
    }
}
