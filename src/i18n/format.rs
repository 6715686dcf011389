//! Numbers and dates in a locale's CLDR conventions, through ICU4X's compiled data. With the
//! formatter type `mod.rs` keeps per bundle, the only place that knows ICU4X.

use fluent_bundle::types::{FluentNumber, FluentNumberStyle};
use fluent_bundle::FluentValue;
use icu_calendar::{Date, Gregorian};
use icu_datetime::fieldsets::YMD;
use icu_datetime::FixedCalendarDateTimeFormatter;
use icu_decimal::input::Decimal;
use icu_decimal::options::{DecimalFormatterOptions, GroupingStrategy};
use icu_decimal::DecimalFormatter;
use intl_memoizer::{IntlLangMemoizer, Memoizable};
use unic_langid::LanguageIdentifier;

/// Long dates ("November 24, 2026") in the Gregorian calendar.
pub(crate) type DateFormatter = FixedCalendarDateTimeFormatter<Gregorian, YMD>;

/// The ICU locale for a Fluent language tag. Both follow BCP 47, so the text form carries
/// over; a tag ICU rejects formats in the root locale's conventions.
fn icu_locale(lang: &LanguageIdentifier) -> icu_locale_core::Locale {
    lang.to_string()
        .parse()
        .unwrap_or(icu_locale_core::Locale::UNKNOWN)
}

pub(crate) fn decimal_formatter(lang: &LanguageIdentifier, grouping: bool) -> DecimalFormatter {
    let mut options = DecimalFormatterOptions::default();
    if !grouping {
        options.grouping_strategy = Some(GroupingStrategy::Never);
    }
    let locale = icu_locale(lang);
    // Compiled data falls back to the root locale, so only a broken build could fail here;
    // the root formatter is the answer then too.
    DecimalFormatter::try_new((&locale).into(), options)
        .or_else(|_| DecimalFormatter::try_new(Default::default(), options))
        .expect("compiled data holds the root locale's decimal symbols")
}

pub(crate) fn date_formatter(lang: &LanguageIdentifier) -> DateFormatter {
    let locale = icu_locale(lang);
    DateFormatter::try_new((&locale).into(), YMD::long())
        .or_else(|_| DateFormatter::try_new(Default::default(), YMD::long()))
        .expect("compiled data holds the root locale's date patterns")
}

/// `value` as an exact decimal: Rust prints the shortest text that reads back as the same
/// `f64`, so 1234567.891 stays 1234567.891 rather than its binary approximation.
fn decimal_of(value: f64) -> Option<Decimal> {
    if !value.is_finite() {
        return None;
    }
    format!("{value}").parse().ok()
}

pub(crate) fn format_f64(formatter: &DecimalFormatter, value: f64) -> String {
    match decimal_of(value) {
        Some(decimal) => formatter.format(&decimal).to_string(),
        None => value.to_string(),
    }
}

pub(crate) fn format_i64(formatter: &DecimalFormatter, value: i64) -> String {
    formatter.format(&Decimal::from(value)).to_string()
}

pub(crate) fn format_date(formatter: &DateFormatter, date: time::Date) -> String {
    match Date::try_new_iso(date.year(), u8::from(date.month()), date.day()) {
        Ok(iso) => formatter.format(&iso.to_calendar(Gregorian)).to_string(),
        // Years ICU cannot place (beyond ±9999 or so) fall back to ISO 8601.
        Err(_) => date.to_string(),
    }
}

/// The decimal formatter a Fluent bundle memoizes, per grouping choice.
struct FluentDecimal(DecimalFormatter);

impl Memoizable for FluentDecimal {
    type Args = (bool,);
    type Error = std::convert::Infallible;

    fn construct(lang: LanguageIdentifier, (grouping,): (bool,)) -> Result<Self, Self::Error> {
        Ok(FluentDecimal(decimal_formatter(&lang, grouping)))
    }
}

/// Formats the numbers placed into Fluent messages (`{ $count } posts`) the way
/// [`format_f64`] does, so that a message reads "1.234,5" in Spanish rather than Fluent's
/// locale-blind "1234.5". Honours `NUMBER()`'s grouping, integer and fraction digit options;
/// currency, percent and significant-digit styles keep Fluent's own formatting.
pub(crate) fn fluent_number(value: &FluentValue<'_>, intls: &IntlLangMemoizer) -> Option<String> {
    let FluentValue::Number(number) = value else {
        return None;
    };
    let options = &number.options;
    if options.style != FluentNumberStyle::Decimal
        || options.minimum_significant_digits.is_some()
        || options.maximum_significant_digits.is_some()
    {
        return None;
    }
    let decimal = fluent_decimal(number)?;
    intls
        .with_try_get::<FluentDecimal, _, _>((options.use_grouping,), |f| {
            f.0.format(&decimal).to_string()
        })
        .ok()
}

fn fluent_decimal(number: &FluentNumber) -> Option<Decimal> {
    let mut decimal = decimal_of(number.value)?;
    let options = &number.options;
    let digits = |n: usize| i16::try_from(n).unwrap_or(i16::MAX);
    if let Some(max) = options.maximum_fraction_digits {
        decimal.round(-digits(max));
    }
    if let Some(min) = options.minimum_fraction_digits {
        decimal.pad_end(-digits(min));
    }
    if let Some(min) = options.minimum_integer_digits {
        decimal.pad_start(digits(min));
    }
    Some(decimal)
}
