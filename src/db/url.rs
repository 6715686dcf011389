//! Query strings of connection URLs (`?sslmode=verify-full&sslrootcert=/ca.pem`), read the
//! way tokio-postgres reads them: pairs split on `&` and the first `=`, each side
//! percent-decoded (a `+` stays a `+`: these are paths, not form fields).

use std::borrow::Cow;

/// One `name=value` pair of a query string, with the text it came from.
pub(crate) struct Pair<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) value: Cow<'a, str>,
    /// The pair as written, to pass on unchanged.
    pub(crate) raw: &'a str,
}

/// The pairs of `query` (the text after `?`), skipping empty ones; `Err` names a pair that
/// is not valid UTF-8 once decoded.
pub(crate) fn pairs(query: &str) -> impl Iterator<Item = Result<Pair<'_>, String>> {
    query.split('&').filter(|raw| !raw.is_empty()).map(|raw| {
        let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
        let decode = |part| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map_err(|_| format!("query parameter {raw:?} is not valid percent-encoded UTF-8"))
        };
        Ok(Pair {
            name: decode(name)?,
            value: decode(value)?,
            raw,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_percent_decoded_and_keep_their_text() {
        let got: Vec<(String, String, String)> = pairs("a=1&&ssl%72ootcert=%2Ftmp%2Fa+b.pem&flag")
            .map(|p| {
                let p = p.expect("valid");
                (p.name.into_owned(), p.value.into_owned(), p.raw.to_owned())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), "1".into(), "a=1".into()),
                (
                    "sslrootcert".into(),
                    "/tmp/a+b.pem".into(),
                    "ssl%72ootcert=%2Ftmp%2Fa+b.pem".into()
                ),
                ("flag".into(), "".into(), "flag".into()),
            ]
        );
        assert!(pairs("a=%ff").next().expect("one").is_err());
    }
}
