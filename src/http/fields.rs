//! Header field values built from lists: comma-separated elements and their quality values.
//!
//! Several fields share this grammar (`Transfer-Encoding`, `Connection`, `Upgrade`, `Vary`,
//! `Accept-Encoding`, `Accept-Language`), and the request decoder, the response, content
//! negotiation and the WebSocket handshake all read it. One reading keeps them from
//! disagreeing about whitespace, empty elements or a malformed `q`.

/// The non-empty elements of a comma-separated field value, trimmed of optional whitespace.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// The elements of a comma-separated list of weighted tokens (`Accept-Encoding`,
/// `Accept-Language`): each element's token with its `q` weight in thousandths (1000 when
/// absent). An element whose `q` is malformed, or that is not UTF-8, is skipped, so one bad
/// element does not discard the rest; other parameters are ignored.
#[cfg_attr(
    not(any(feature = "compress", feature = "i18n")),
    allow(dead_code, reason = "used by the compress and i18n features")
)]
pub(crate) fn weighted_items(value: &[u8]) -> impl Iterator<Item = (&str, u16)> {
    list_items(value).filter_map(|item| {
        let mut parts = std::str::from_utf8(item).ok()?.split(';');
        let token = parts.next()?.trim();
        let mut weight = 1000;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    weight = qvalue(value)?;
                }
            }
        }
        Some((token, weight))
    })
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110), in thousandths.
#[cfg_attr(
    not(any(feature = "compress", feature = "i18n")),
    allow(dead_code, reason = "used by the compress and i18n features")
)]
pub(crate) fn qvalue(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `s` without the optional whitespace (spaces and tabs) around it (RFC 9110 5.6.3).
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_skip_empty_elements_and_trim_whitespace() {
        let items: Vec<&[u8]> = list_items(b" gzip ,, \tchunked\t,").collect();
        assert_eq!(items, vec![&b"gzip"[..], &b"chunked"[..]]);
        assert_eq!(list_items(b" , ").count(), 0);
        assert_eq!(trim_ows(b"\t a b \t"), b"a b");
    }

    #[test]
    fn weighted_items_default_to_1000_and_skip_bad_weights() {
        let items: Vec<(&str, u16)> =
            weighted_items(b"br;q=0.8, gzip, x;q=2, de;level=1;Q=0.5").collect();
        assert_eq!(items, vec![("br", 800), ("gzip", 1000), ("de", 500)]);
    }

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.12"), Some(120));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue(" 0 "), Some(0));
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue("0.1234"), None);
        assert_eq!(qvalue("-1"), None);
        assert_eq!(qvalue("-0"), None);
        assert_eq!(qvalue(""), None);
    }
}
