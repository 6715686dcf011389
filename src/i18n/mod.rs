//! Translations: Fluent catalogues, per-request locale negotiation, and numbers and dates in
//! the locale's conventions.
//!
//! ## Layout and loading
//!
//! Catalogues are [Fluent](https://projectfluent.org) files, one directory per language tag:
//!
//! ```text
//! locales/en/main.ftl      locales/es/main.ftl
//! locales/en/forms.ftl     locales/es/forms.ftl
//! ```
//!
//! [`Translations::load`] reads and parses every file once per process and fails with the
//! file and the problem (a syntax error with its line and column, a message defined twice, a
//! stray file, a directory that is not a language tag, the default locale missing). Parsed
//! resources are shared read-only by every core through `Arc`; each core's application
//! factory calls [`Translations::catalog`] to build its own Fluent bundles (they cache
//! formatters in `RefCell`s and are not `Send`), so serving a message takes no lock.
//!
//! ## Per request
//!
//! [`Negotiator`] is middleware that picks a [`Locale`] per request (query argument, cookie,
//! `Accept-Language`, default) and attaches it; handlers get it with [`Locale::of`]:
//!
//! ```
//! # fn demo() -> Result<(), squall::Error> {
//! use squall::i18n::Translations;
//!
//! let translations = Translations::load("tests/fixtures/locales", "en")?;
//! let es = translations.catalog().locale("es-MX").expect("es serves es-MX");
//! assert_eq!(es.tr_with("posts", &[("count", 1.into())]), "1 entrada");
//! assert_eq!(es.tr_with("posts", &[("count", 1234.into())]), "1234 entradas");
//! assert_eq!(es.format_number(1234567.891), "1.234.567,891");
//! # Ok(()) }
//! # demo().expect("fixtures load");
//! ```
//!
//! Plural variants (`[one]`, `[other]`, …) are chosen by CLDR plural rules for the locale.
//! Numbers placed in messages are formatted like [`Locale::format_number`]. Note that
//! Fluent's plural data is CLDR 37, which has no `many` category for Spanish (CLDR 38 added
//! it for "1 millón de …"); a `[many]` variant in a Spanish catalogue is never chosen.
//!
//! ## Templates
//!
//! A template takes the locale as a field and calls it:
//!
//! ```text
//! #[derive(sailfish::TemplateSimple)]
//! #[template(path = "i18n/greeting.stpl")]
//! struct Greeting<'a> { locale: &'a Locale, count: i64 }
//!
//! <h1><%= locale.tr("site-title") %></h1>
//! <p><%= locale.tr_with("posts", &[("count", count.into())]) %></p>
//! ```
//!
//! ## Missing messages
//!
//! A message missing from the request's locale is taken from the default locale; missing
//! from both, [`Locale::tr`] returns the id itself, so a page shows `login-button` rather
//! than failing. Each such case is logged as a warning once per core (not per request), up
//! to a bounded number of distinct ids.

mod format;
mod load;
mod negotiate;

use std::cell::{OnceCell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use fluent_bundle::{FluentArgs, FluentBundle, FluentMessage, FluentResource};
use fluent_syntax::ast;
use icu_decimal::DecimalFormatter;
use unic_langid::LanguageIdentifier;

use crate::error::Error;
use crate::request::Request;

pub use fluent_bundle::FluentValue;
pub use negotiate::Negotiator;
/// The crate of [`time::Date`], which [`Locale::format_date`] takes.
pub use time;

use format::DateFormatter;
use load::{bundle, describe_fluent_errors, Shared};

/// Distinct missing or broken message ids warned about per core; past it, they go unlogged.
const MAX_WARNED: usize = 1024;

/// Every locale's parsed catalogues, loaded once per process. Cheap to clone and `Send +
/// Sync`: move it into the server's application factory and build a [`Catalog`] per core.
#[derive(Clone)]
pub struct Translations {
    shared: Arc<Shared>,
    bidi_isolation: bool,
}

impl Translations {
    /// Loads `dir/<language-tag>/*.ftl` for every language directory in `dir`; `default`
    /// is the locale used when negotiation finds nothing better and for messages another
    /// locale lacks. Fails with a [`Kind::Config`](crate::error::Kind::Config) error naming
    /// the file and the problem.
    pub fn load(dir: impl AsRef<Path>, default: &str) -> Result<Translations, Error> {
        let shared = load::load(dir.as_ref(), default)?;
        Ok(Translations {
            shared: Arc::new(shared),
            bidi_isolation: false,
        })
    }

    /// Whether placeables in messages are wrapped in Unicode isolation marks (U+2068 …
    /// U+2069), which keep right-to-left names from reordering the text around them. Off by
    /// default: the marks are invisible in pages but end up in plain text, e-mails and
    /// attribute values; turn it on for an application with right-to-left languages.
    pub fn bidi_isolation(mut self, on: bool) -> Translations {
        self.bidi_isolation = on;
        self
    }

    /// The language tags loaded, in directory order.
    pub fn tags(&self) -> &[String] {
        &self.shared.tags
    }

    /// The default locale's tag.
    pub fn default_tag(&self) -> &str {
        &self.shared.tags[self.shared.default]
    }

    /// Builds this core's bundles from the shared parsed files. Call it in the application
    /// factory, once per core.
    pub fn catalog(&self) -> Catalog {
        let bundles = self
            .shared
            .locales
            .iter()
            .map(|locale| {
                // Conflicts were reported by `load`, which built the same bundle.
                let (fluent, _) = bundle(locale, self.bidi_isolation);
                Bundle {
                    fluent,
                    numbers: OnceCell::new(),
                    dates: OnceCell::new(),
                }
            })
            .collect();
        Catalog {
            inner: Rc::new(CatalogInner {
                shared: Arc::clone(&self.shared),
                bundles,
                warned: RefCell::default(),
            }),
        }
    }
}

impl fmt::Debug for Translations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Translations")
            .field("locales", &self.shared.tags)
            .field("default", &self.default_tag())
            .finish()
    }
}

/// One core's Fluent bundles for every locale. Cheap to clone (`Rc`); not `Send`.
#[derive(Clone)]
pub struct Catalog {
    inner: Rc<CatalogInner>,
}

struct CatalogInner {
    shared: Arc<Shared>,
    bundles: Vec<Bundle>,
    warned: RefCell<Warned>,
}

/// The ids already warned about on this core.
#[derive(Default)]
struct Warned {
    /// Per locale index; grown on first use.
    ids: Vec<HashSet<String>>,
    total: usize,
}

struct Bundle {
    fluent: FluentBundle<Arc<FluentResource>>,
    numbers: OnceCell<DecimalFormatter>,
    dates: OnceCell<DateFormatter>,
}

impl Catalog {
    /// The locale that serves `tag`: the same tag, else with subtags dropped (`es-MX` →
    /// `es`), else one of the same language (`es` → `es-ES`).
    pub fn locale(&self, tag: &str) -> Option<Locale> {
        negotiate::best_match(tag, self.tags(), |_| true).map(|i| self.locale_at(i))
    }

    /// The default locale.
    pub fn default_locale(&self) -> Locale {
        self.locale_at(self.default_index())
    }

    /// Every locale, in directory order (for a language switcher).
    pub fn locales(&self) -> impl Iterator<Item = Locale> + '_ {
        (0..self.inner.bundles.len()).map(|i| self.locale_at(i))
    }

    fn tags(&self) -> &[String] {
        &self.inner.shared.tags
    }

    fn default_index(&self) -> usize {
        self.inner.shared.default
    }

    fn locale_at(&self, index: usize) -> Locale {
        Locale {
            catalog: self.clone(),
            index,
        }
    }

    /// Warns about `id` in locale `index` once per core, while the record has room.
    fn warn_once(&self, index: usize, id: &str, problem: impl FnOnce() -> String) {
        let mut warned = self.inner.warned.borrow_mut();
        if warned.total >= MAX_WARNED {
            return;
        }
        if warned.ids.len() <= index {
            warned.ids.resize_with(index + 1, HashSet::new);
        }
        // Looked up by `&str`: a message asked for on every request costs no allocation.
        if warned.ids[index].contains(id) {
            return;
        }
        warned.ids[index].insert(id.to_owned());
        warned.total += 1;
        tracing::warn!(locale = %self.tags()[index], id, "{}", problem());
    }
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("locales", &self.tags())
            .finish()
    }
}

/// A request's language: its messages, and numbers and dates in its conventions.
///
/// Cheap to clone. Got from the request with [`Locale::of`] once [`Negotiator`] has run, or
/// from a [`Catalog`] directly.
#[derive(Clone)]
pub struct Locale {
    catalog: Catalog,
    index: usize,
}

impl Locale {
    /// The locale [`Negotiator`] attached to `req`. Without the middleware → 500 saying so.
    pub fn of(req: &Request) -> Result<&Locale, Error> {
        req.extensions().get::<Locale>().ok_or_else(|| {
            Error::internal("no locale on the request: wrap the app in i18n::Negotiator")
        })
    }

    /// The language tag, as its directory is named (`en`, `es-MX`).
    pub fn tag(&self) -> &str {
        &self.catalog.tags()[self.index]
    }

    /// Message `id` (or attribute `id.attr`) without arguments. See the [module
    /// docs](self#missing-messages) for what a missing message gives.
    pub fn tr(&self, id: &str) -> String {
        self.translate(id, None)
    }

    /// Message `id` (or `id.attr`) with named arguments: `tr_with("posts", &[("count",
    /// 3.into())])`. Numbers select plural variants by the locale's CLDR rules.
    pub fn tr_with(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let args: FluentArgs<'_> = args.iter().map(|(k, v)| (*k, v.clone())).collect();
        self.translate(id, Some(&args))
    }

    /// `value` with the locale's separators and grouping: 1234567.891 is "1,234,567.891"
    /// in English and "1.234.567,891" in Spanish (where, by CLDR's minimum grouping digits,
    /// 1234 stays "1234"). Non-finite values print as Rust prints them.
    pub fn format_number(&self, value: f64) -> String {
        format::format_f64(self.numbers(), value)
    }

    /// An integer with the locale's grouping, exactly (no rounding through `f64`).
    pub fn format_integer(&self, value: i64) -> String {
        format::format_i64(self.numbers(), value)
    }

    /// `date` in the locale's long form: "November 24, 2026", "24 de noviembre de 2026".
    pub fn format_date(&self, date: time::Date) -> String {
        let bundle = self.bundle();
        let formatter = bundle
            .dates
            .get_or_init(|| format::date_formatter(&self.language()));
        format::format_date(formatter, date)
    }

    fn numbers(&self) -> &DecimalFormatter {
        self.bundle()
            .numbers
            .get_or_init(|| format::decimal_formatter(&self.language(), true))
    }

    fn bundle(&self) -> &Bundle {
        &self.catalog.inner.bundles[self.index]
    }

    fn language(&self) -> LanguageIdentifier {
        self.catalog.inner.shared.locales[self.index].id.clone()
    }

    fn translate(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let (message_id, attribute) = match id.split_once('.') {
            Some((message, attribute)) => (message, Some(attribute)),
            None => (id, None),
        };
        let default = self.catalog.default_index();
        for index in [self.index, default] {
            let fluent = &self.catalog.inner.bundles[index].fluent;
            let Some(pattern) = fluent
                .get_message(message_id)
                .as_ref()
                .and_then(|m| pattern_of(m, attribute))
            else {
                if index == default {
                    break;
                }
                continue;
            };
            let mut errors = Vec::new();
            let text = fluent
                .format_pattern(pattern, args, &mut errors)
                .into_owned();
            if index != self.index {
                self.catalog.warn_once(self.index, id, || {
                    format!(
                        "message missing; using the {} one",
                        self.catalog.tags()[index]
                    )
                });
            }
            if !errors.is_empty() {
                self.catalog
                    .warn_once(index, id, || describe_fluent_errors(&errors));
            }
            return text;
        }
        self.catalog.warn_once(self.index, id, || {
            "message missing; showing its id".to_owned()
        });
        id.to_owned()
    }
}

fn pattern_of<'m>(
    message: &FluentMessage<'m>,
    attribute: Option<&str>,
) -> Option<&'m ast::Pattern<&'m str>> {
    match attribute {
        None => message.value(),
        Some(name) => message.get_attribute(name).map(|a| a.value()),
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Locale").field(&self.tag()).finish()
    }
}

impl PartialEq for Locale {
    /// Locales are equal when they name the same language of the same catalogue.
    fn eq(&self, other: &Locale) -> bool {
        Rc::ptr_eq(&self.catalog.inner, &other.catalog.inner) && self.index == other.index
    }
}
