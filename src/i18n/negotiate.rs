//! Picking a request's locale: a user's explicit choice (query argument, cookie), else the
//! `Accept-Language` header weighed by its q-values, else the default.
//!
//! fluent-langneg's header parser drops the weights (it keeps the order only), so q=0
//! exclusions and out-of-order weights would be lost; the matching here is RFC 4647 lookup
//! over the few locales an application ships, small enough to keep in view.

use super::{Catalog, Locale};
use crate::future::LocalFuture;
use crate::http::fields::weighted_items;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

/// Entries of one `Accept-Language` header considered at most; browsers send a handful, and
/// the cap bounds the work a peer can ask for.
const MAX_PREFERENCES: usize = 32;

/// One language range the client accepts, with its weight in thousandths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Preference<'a> {
    pub(crate) range: &'a str,
    pub(crate) weight: u16,
}

/// The ranges of an `Accept-Language` value, heaviest first (ties keep the client's order).
/// Malformed entries are skipped, so one bad entry does not discard the rest.
pub(crate) fn parse_accept_language(value: &str) -> Vec<Preference<'_>> {
    let mut preferences: Vec<Preference<'_>> = weighted_items(value.as_bytes())
        .filter(|(range, _)| is_language_range(range))
        .map(|(range, weight)| Preference { range, weight })
        .take(MAX_PREFERENCES)
        .collect();
    preferences.sort_by_key(|p| std::cmp::Reverse(p.weight));
    preferences
}

/// `*`, or 1–8 letters followed by `-`-separated groups of 1–8 letters or digits.
fn is_language_range(range: &str) -> bool {
    if range == "*" {
        return true;
    }
    let mut subtags = range.split('-');
    let primary_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether `range` names `tag` or a prefix of it at a subtag boundary (`es` covers `es-MX`).
fn covers(range: &str, tag: &str) -> bool {
    tag.len() >= range.len()
        && tag[..range.len()].eq_ignore_ascii_case(range)
        && (tag.len() == range.len() || tag.as_bytes()[range.len()] == b'-')
}

/// The index in `tags` that serves `wanted`: the same tag; else `wanted` with subtags
/// dropped from the end (`es-MX` → `es`); else a tag of the same language (`es` →
/// `es-ES`). Indexes `allowed` rejects are passed over.
pub(crate) fn best_match(
    wanted: &str,
    tags: &[String],
    allowed: impl Fn(usize) -> bool,
) -> Option<usize> {
    let find = |pred: &dyn Fn(&str) -> bool| {
        tags.iter()
            .enumerate()
            .find(|&(i, tag)| allowed(i) && pred(tag))
            .map(|(i, _)| i)
    };
    let mut prefix = wanted;
    loop {
        if let Some(found) = find(&|tag| tag.eq_ignore_ascii_case(prefix)) {
            return Some(found);
        }
        match prefix.rfind('-') {
            Some(cut) => prefix = &prefix[..cut],
            None => break,
        }
    }
    find(&|tag| covers(prefix, tag))
}

/// The locale an `Accept-Language` value asks for among `tags`, or `default`.
pub(crate) fn choose(header: &str, tags: &[String], default: usize) -> usize {
    let preferences = parse_accept_language(header);
    let excluded = |i: usize| {
        preferences
            .iter()
            .any(|p| p.weight == 0 && p.range != "*" && covers(p.range, &tags[i]))
    };
    for preference in preferences.iter().filter(|p| p.weight > 0) {
        let found = if preference.range == "*" {
            std::iter::once(default)
                .chain(0..tags.len())
                .find(|&i| !excluded(i))
        } else {
            best_match(preference.range, tags, |i| !excluded(i))
        };
        if let Some(found) = found {
            return found;
        }
    }
    default
}

/// Middleware that negotiates each request's [`Locale`] and attaches it for handlers
/// ([`Locale::of`]).
///
/// The choice, first that applies: the query argument (`?lang=es`, name configurable), the
/// cookie (`locale=es`), the `Accept-Language` header by q-value (q=0 excludes, `*` takes
/// the default, `es-MX` falls back to `es`), the catalogue's default. An override naming a
/// locale the application does not have is ignored. Responses get `Vary: Accept-Language`,
/// and `Vary: Cookie` too while the cookie override is on, so shared caches keep the
/// languages apart.
///
/// ```no_run
/// use squall::i18n::{Locale, Negotiator, Translations};
/// use squall::{App, Request, Server};
///
/// async fn home(req: Request) -> Result<String, squall::Error> {
///     Ok(Locale::of(&req)?.tr("site-title"))
/// }
///
/// fn main() -> Result<(), squall::Error> {
///     let translations = Translations::load("locales", "en")?; // once per process
///     Server::from_env()?.serve(move || {
///         let catalog = translations.catalog(); // per core
///         App::new().wrap(Negotiator::new(catalog)).get("/", home)
///     })
/// }
/// ```
pub struct Negotiator {
    catalog: Catalog,
    cookie: Option<String>,
    query: Option<String>,
}

impl Negotiator {
    /// Negotiates among `catalog`'s locales, with overrides from the `lang` query argument
    /// and the `locale` cookie.
    pub fn new(catalog: Catalog) -> Negotiator {
        Negotiator {
            catalog,
            cookie: None,
            query: None,
        }
        .cookie(Some("locale"))
        .query(Some("lang"))
    }

    /// The cookie whose value overrides the header, or `None` for no cookie override.
    pub fn cookie(mut self, name: Option<&str>) -> Negotiator {
        self.cookie = name.map(str::to_owned);
        self
    }

    /// The query argument whose value overrides cookie and header, or `None` for none.
    pub fn query(mut self, name: Option<&str>) -> Negotiator {
        self.query = name.map(str::to_owned);
        self
    }

    /// The locale for `req`, as the middleware would choose it.
    pub fn negotiate(&self, req: &Request) -> Locale {
        let tags = self.catalog.tags();
        let overridden = |wanted: Option<String>| {
            let wanted = wanted?;
            let wanted = wanted.trim();
            if wanted == "*" || !is_language_range(wanted) {
                return None;
            }
            best_match(wanted, tags, |_| true)
        };
        let index = self
            .query
            .as_deref()
            .and_then(|name| overridden(req.query_args().raw(name).map(str::to_owned)))
            .or_else(|| {
                self.cookie
                    .as_deref()
                    .and_then(|name| overridden(req.cookie(name)))
            })
            .unwrap_or_else(|| {
                let default = self.catalog.default_index();
                req.header("accept-language")
                    .map_or(default, |header| choose(header, tags, default))
            });
        self.catalog.locale_at(index)
    }
}

impl Middleware for Negotiator {
    fn call(&self, mut req: Request, next: Next) -> LocalFuture<'static, Response> {
        let locale = self.negotiate(&req);
        req.extensions_mut().insert(locale);
        let varies_on_cookie = self.cookie.is_some();
        Box::pin(async move {
            let mut response = next.run(req).await;
            response.vary("Accept-Language");
            if varies_on_cookie {
                response.vary("Cookie");
            }
            response
        })
    }
}

impl std::fmt::Debug for Negotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiator")
            .field("locales", &self.catalog.tags())
            .field("cookie", &self.cookie)
            .field("query", &self.query)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn weights_order_the_ranges_and_bad_entries_are_skipped() {
        let parsed = parse_accept_language("fr;q=0.5, es-MX , en;q=0.8, de;q=2, x y, it;q=0");
        let ranges: Vec<(&str, u16)> = parsed.iter().map(|p| (p.range, p.weight)).collect();
        assert_eq!(
            ranges,
            vec![("es-MX", 1000), ("en", 800), ("fr", 500), ("it", 0)]
        );
    }

    #[test]
    fn lookup_drops_subtags_then_tries_the_language() {
        let available = tags(&["en", "es-ES", "pt"]);
        assert_eq!(best_match("en-GB", &available, |_| true), Some(0));
        assert_eq!(best_match("ES", &available, |_| true), Some(1));
        assert_eq!(best_match("es-MX", &available, |_| true), Some(1));
        assert_eq!(best_match("pt-BR-x-foo", &available, |_| true), Some(2));
        assert_eq!(best_match("de", &available, |_| true), None);
        assert_eq!(best_match("e", &available, |_| true), None);
    }

    #[test]
    fn choice_follows_weights_exclusions_and_wildcards() {
        let available = tags(&["en", "es"]);
        assert_eq!(choose("es-MX,en;q=0.5", &available, 0), 1);
        assert_eq!(choose("en;q=0.3,es;q=0.9", &available, 0), 1);
        assert_eq!(choose("de,*;q=0.1", &available, 1), 1);
        assert_eq!(choose("*,en;q=0", &available, 0), 1);
        assert_eq!(choose("es;q=0,*", &available, 1), 0);
        assert_eq!(choose("fr", &available, 1), 1);
        assert_eq!(choose("", &available, 0), 0);
        // Every locale excluded: the default still answers.
        assert_eq!(choose("en;q=0,es;q=0", &available, 0), 0);
    }
}
