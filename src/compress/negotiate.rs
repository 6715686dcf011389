//! Content negotiation for codings: which of the codings on offer a request's
//! `Accept-Encoding` prefers (RFC 9110 12.5.3).

use crate::http::fields::weighted_items;
use crate::request::Request;

/// A content coding squall can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    /// `br`
    Brotli,
    /// `gzip`
    Gzip,
    /// No coding.
    Identity,
}

impl Coding {
    /// The token used in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }

    /// Ranks codings the client likes equally: smaller output first.
    fn rank(self) -> u8 {
        match self {
            Coding::Brotli => 2,
            Coding::Gzip => 1,
            Coding::Identity => 0,
        }
    }
}

/// What a request's `Accept-Encoding` allows, as q-values in thousandths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    brotli: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
    present: bool,
}

/// An identity that is merely not excluded ranks below every coding the client named.
const IMPLICIT_IDENTITY: u16 = 0;

impl AcceptEncoding {
    /// Parses the values of every `Accept-Encoding` line (none: the header is absent).
    /// Unknown codings and elements with a malformed q-value are ignored.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> AcceptEncoding {
        let mut accept = AcceptEncoding::default();
        for value in values {
            accept.present = true;
            for (coding, quality) in weighted_items(value) {
                let slot = if coding.eq_ignore_ascii_case("br") {
                    &mut accept.brotli
                } else if coding.eq_ignore_ascii_case("gzip")
                    || coding.eq_ignore_ascii_case("x-gzip")
                {
                    &mut accept.gzip
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut accept.identity
                } else if coding == "*" {
                    &mut accept.any
                } else {
                    continue;
                };
                slot.get_or_insert(quality);
            }
        }
        accept
    }

    /// The `Accept-Encoding` of `req`.
    pub fn from_request(req: &Request) -> AcceptEncoding {
        AcceptEncoding::parse(
            req.headers()
                .filter(|(name, _)| name.eq_ignore_ascii_case("accept-encoding"))
                .map(|(_, value)| value),
        )
    }

    /// The client's preference for `coding` in thousandths; 0 means not acceptable, except
    /// for identity, which is acceptable unless excluded (`identity;q=0`, or `*;q=0`
    /// without naming identity) and then ranks below everything named.
    fn quality(&self, coding: Coding) -> Option<u16> {
        if !self.present {
            return (coding == Coding::Identity).then_some(IMPLICIT_IDENTITY);
        }
        let named = match coding {
            Coding::Brotli => self.brotli,
            Coding::Gzip => self.gzip,
            Coding::Identity => self.identity,
        };
        match (named.or(self.any), coding) {
            (Some(0), _) => None,
            (Some(q), _) => Some(q),
            (None, Coding::Identity) => Some(IMPLICIT_IDENTITY),
            (None, _) => None,
        }
    }

    /// The coding among `offered` the client prefers, or `None` if it accepts none of them.
    pub fn preferred(&self, offered: &[Coding]) -> Option<Coding> {
        offered
            .iter()
            .filter_map(|&coding| Some((self.quality(coding)?, coding.rank(), coding)))
            .max_by_key(|&(quality, rank, _)| (quality, rank))
            .map(|(_, _, coding)| coding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(header: &str) -> AcceptEncoding {
        AcceptEncoding::parse([header.as_bytes()])
    }

    const ALL: &[Coding] = &[Coding::Brotli, Coding::Gzip, Coding::Identity];

    #[test]
    fn negotiation_follows_q_values() {
        use Coding::*;
        let cases: &[(&str, Option<Coding>)] = &[
            ("gzip", Some(Gzip)),
            ("br", Some(Brotli)),
            ("gzip, deflate, br", Some(Brotli)),
            ("gzip;q=1.0, br;q=0.8", Some(Gzip)),
            ("br;q=0, gzip", Some(Gzip)),
            ("br;q=0, gzip;q=0", Some(Identity)),
            ("identity", Some(Identity)),
            ("identity;q=1, gzip;q=0.5", Some(Identity)),
            ("gzip;q=0.5", Some(Gzip)),
            ("*", Some(Brotli)),
            ("*;q=0.5, br;q=0.2", Some(Gzip)),
            ("*;q=0", None),
            ("*;q=0, identity", Some(Identity)),
            ("gzip, *;q=0", Some(Gzip)),
            ("identity;q=0", None),
            ("", Some(Identity)),
            ("x-gzip", Some(Gzip)),
            ("GZIP;Q=0.5", Some(Gzip)),
            ("gzip;q=2", Some(Identity)),
            ("gzip;q=0.0001", Some(Identity)),
            ("compress, deflate", Some(Identity)),
        ];
        for (header, expected) in cases {
            assert_eq!(accept(header).preferred(ALL), *expected, "{header:?}");
        }
        let absent = AcceptEncoding::parse(std::iter::empty());
        assert_eq!(absent.preferred(ALL), Some(Identity));
        assert_eq!(accept("br").preferred(&[Gzip, Identity]), Some(Identity));
    }
}
