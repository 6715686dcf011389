//! Translations: plural forms in English and Spanish, locale negotiation over real loopback
//! requests, number and date formatting, templates, and the errors loading reports.
#![cfg(all(feature = "i18n", feature = "template"))]

mod support;

use std::path::{Path, PathBuf};

use sailfish::TemplateSimple;
use squall::error::Kind;
use squall::i18n::time::{Date, Month};
use squall::i18n::{Catalog, Locale, Negotiator, Translations};
use squall::{App, Request};
use support::{request, start};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/locales")
}

fn translations() -> Translations {
    Translations::load(fixtures(), "en").expect("the fixture catalogues load")
}

fn catalog() -> Catalog {
    translations().catalog()
}

fn locale(tag: &str) -> Locale {
    catalog()
        .locale(tag)
        .unwrap_or_else(|| panic!("no locale for {tag}"))
}

fn posts(locale: &Locale, count: f64) -> String {
    locale.tr_with("posts", &[("count", count.into())])
}

#[test]
fn english_plurals_are_one_and_other() {
    let en = locale("en");
    let cases = [
        (0.0, "0 posts"),
        (1.0, "1 post"),
        (2.0, "2 posts"),
        (5.0, "5 posts"),
        (1.5, "1.5 posts"),
        (1234.0, "1,234 posts"),
    ];
    for (count, expected) in cases {
        assert_eq!(posts(&en, count), expected, "count {count}");
    }
}

#[test]
fn spanish_plurals_are_one_and_other_in_fluents_cldr_data() {
    let es = locale("es");
    let cases = [
        (0.0, "0 entradas"),
        (1.0, "1 entrada"),
        (2.0, "2 entradas"),
        (5.0, "5 entradas"),
        (1.5, "1,5 entradas"),
        // CLDR 38+ would say `many` ("1.000.000 de entradas"); Fluent's CLDR 37 rules say
        // `other`. If this starts failing, the plural data was updated: use the `many` text.
        (1_000_000.0, "1.000.000 entradas"),
    ];
    for (count, expected) in cases {
        assert_eq!(posts(&es, count), expected, "count {count}");
    }
}

#[test]
fn messages_take_arguments_and_attributes() {
    let es = locale("es");
    assert_eq!(
        es.tr_with("hello", &[("name", "Ana".into())]),
        "¡Hola, Ana!"
    );
    assert_eq!(es.tr("login"), "Iniciar sesión");
    assert_eq!(es.tr("login.title"), "Accede a tu cuenta");
    assert_eq!(locale("en").tr("login.title"), "Sign in to your account");
}

#[test]
fn missing_messages_fall_back_to_the_default_then_to_the_id() {
    let es = locale("es");
    assert_eq!(
        es.tr("only-in-english"),
        "This message has no Spanish translation"
    );
    assert_eq!(es.tr("no-such-message"), "no-such-message");
    assert_eq!(es.tr("login.no-such-attribute"), "login.no-such-attribute");
    // Asking again (the warning is logged once) gives the same answer.
    assert_eq!(es.tr("no-such-message"), "no-such-message");
}

/// Log lines written while `work` runs on this thread.
fn logged(work: impl FnOnce()) -> String {
    let buffer = support::CapturedLog::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, work);
    buffer.text()
}

#[test]
fn a_missing_message_is_logged_once_per_core() {
    let es = locale("es");
    let log = logged(|| {
        for _ in 0..3 {
            assert_eq!(es.tr("no-such-message"), "no-such-message");
            es.tr("only-in-english");
        }
    });
    assert_eq!(log.matches("no-such-message").count(), 1, "{log}");
    assert_eq!(log.matches("only-in-english").count(), 1, "{log}");
    assert!(log.contains("using the en one"), "{log}");
}

#[test]
fn numbers_follow_each_locales_cldr_conventions() {
    let (en, es) = (locale("en"), locale("es"));
    assert_eq!(en.format_number(1234567.891), "1,234,567.891");
    assert_eq!(es.format_number(1234567.891), "1.234.567,891");
    // Spanish groups only from five integer digits (CLDR minimum grouping digits = 2).
    assert_eq!(en.format_number(1234.0), "1,234");
    assert_eq!(es.format_number(1234.0), "1234");
    assert_eq!(es.format_number(12345.5), "12.345,5");
    assert_eq!(en.format_number(-0.25), "-0.25");
    assert_eq!(en.format_integer(i64::MAX), "9,223,372,036,854,775,807");
    assert_eq!(es.format_integer(-1_000_000), "-1.000.000");
    assert_eq!(en.format_number(f64::NAN), "NaN");
}

#[test]
fn dates_use_each_locales_long_form() {
    let date = Date::from_calendar_date(2026, Month::November, 24).expect("valid date");
    assert_eq!(locale("en").format_date(date), "November 24, 2026");
    assert_eq!(locale("es").format_date(date), "24 de noviembre de 2026");
    let date = Date::from_calendar_date(2027, Month::January, 1).expect("valid date");
    assert_eq!(locale("es").format_date(date), "1 de enero de 2027");
}

#[test]
fn catalogues_list_their_locales_and_match_tags() {
    let catalog = catalog();
    let tags: Vec<String> = catalog.locales().map(|l| l.tag().to_owned()).collect();
    assert_eq!(tags, ["en", "es"]);
    assert_eq!(catalog.default_locale().tag(), "en");
    assert_eq!(
        catalog
            .locale("es-MX")
            .map(|l| l.tag().to_owned())
            .as_deref(),
        Some("es")
    );
    assert_eq!(catalog.locale("EN-gb"), Some(catalog.default_locale()));
    assert!(catalog.locale("fr").is_none());
}

#[derive(TemplateSimple)]
#[template(path = "i18n/greeting.stpl")]
struct Greeting<'a> {
    locale: &'a Locale,
    name: String,
    count: i64,
}

#[test]
fn templates_call_the_locale() {
    let es = locale("es");
    let page = Greeting {
        locale: &es,
        name: "<Ana>".to_owned(),
        count: 3,
    }
    .render_once()
    .expect("renders");
    assert!(page.contains(r#"<html lang="es">"#), "{page}");
    assert!(
        page.contains("<title>Sitio de prueba de Squall</title>"),
        "{page}"
    );
    assert!(page.contains(r#"title="Accede a tu cuenta""#), "{page}");
    assert!(page.contains("¡Hola, &lt;Ana&gt;!"), "escaped: {page}");
    assert!(page.contains("<p>3 entradas</p>"), "{page}");
}

// --- negotiation over loopback ---

async fn describe(req: Request) -> Result<String, squall::Error> {
    let locale = Locale::of(&req)?;
    Ok(format!("{} {}", locale.tag(), locale.tr("login")))
}

fn negotiating_app(translations: Translations) -> impl Fn() -> App + Send + Sync + 'static {
    move || {
        App::new()
            .wrap(Negotiator::new(translations.catalog()))
            .get("/", describe)
    }
}

fn ask(addr: std::net::SocketAddr, target: &str, headers: &str) -> support::Response {
    request(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n"),
    )
}

#[test]
fn negotiation_weighs_accept_language_and_overrides() {
    let server = start(negotiating_app(translations()));
    let addr = server.local_addr();
    let cases: &[(&str, &str, &str)] = &[
        ("/", "", "en Log in"),
        ("/", "Accept-Language: es\r\n", "es Iniciar sesión"),
        (
            "/",
            "Accept-Language: es-MX,es;q=0.9,en;q=0.8\r\n",
            "es Iniciar sesión",
        ),
        (
            "/",
            "Accept-Language: en;q=0.4, es;q=0.7\r\n",
            "es Iniciar sesión",
        ),
        ("/", "Accept-Language: es;q=0, *\r\n", "en Log in"),
        ("/", "Accept-Language: fr, *;q=0.5\r\n", "en Log in"),
        ("/", "Accept-Language: *, en;q=0\r\n", "es Iniciar sesión"),
        ("/", "Accept-Language: fr-CA, de\r\n", "en Log in"),
        ("/", "Accept-Language: ;;;q=x, es\r\n", "es Iniciar sesión"),
        // Overrides: the cookie beats the header, the query beats both.
        (
            "/",
            "Accept-Language: en\r\nCookie: locale=es\r\n",
            "es Iniciar sesión",
        ),
        ("/?lang=es", "Accept-Language: en\r\n", "es Iniciar sesión"),
        (
            "/?lang=en",
            "Accept-Language: es\r\nCookie: locale=es\r\n",
            "en Log in",
        ),
        ("/?lang=es-AR", "", "es Iniciar sesión"),
        // An override the app cannot serve is ignored.
        ("/?lang=fr", "Accept-Language: es\r\n", "es Iniciar sesión"),
        (
            "/?lang=%FF",
            "Cookie: locale=*\r\nAccept-Language: es\r\n",
            "es Iniciar sesión",
        ),
    ];
    for (target, headers, expected) in cases {
        let r = ask(addr, target, headers);
        assert_eq!(r.status, 200, "{target} {headers:?}");
        assert_eq!(r.text(), *expected, "{target} {headers:?}");
        assert_eq!(r.header("vary"), Some("Accept-Language, Cookie"));
    }
}

#[test]
fn overrides_can_be_turned_off_and_vary_follows() {
    let translations = translations();
    let server = start(move || {
        App::new()
            .wrap(
                Negotiator::new(translations.catalog())
                    .cookie(None)
                    .query(Some("hl")),
            )
            .get("/", describe)
    });
    let addr = server.local_addr();
    let r = ask(addr, "/", "Cookie: locale=es\r\n");
    assert_eq!(r.text(), "en Log in");
    assert_eq!(r.header("vary"), Some("Accept-Language"));
    assert_eq!(ask(addr, "/?lang=es", "").text(), "en Log in");
    assert_eq!(ask(addr, "/?hl=es", "").text(), "es Iniciar sesión");
    // The router's own answers carry Vary too.
    assert_eq!(
        ask(addr, "/missing", "").header("vary"),
        Some("Accept-Language")
    );
}

#[test]
fn a_handler_without_the_middleware_gets_a_clear_server_error() {
    let server = start(|| App::new().get("/", describe));
    assert_eq!(ask(server.local_addr(), "/", "").status, 500);
}

// --- loading errors ---

/// A fresh directory of `.ftl` files: `(relative path, contents)`.
fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("i18n")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("under root")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    std::fs::create_dir_all(&root).expect("mkdir");
    root
}

#[track_caller]
fn load_error(root: &Path, default: &str) -> String {
    let error = Translations::load(root, default).expect_err("should not load");
    assert_eq!(error.kind(), Kind::Config);
    error.to_string()
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    let root = tree(
        "syntax",
        &[
            ("en/main.ftl", "ok = fine\n"),
            ("en/broken.ftl", "good = yes\nbad = { $x ] }\nafter = y\n"),
        ],
    );
    let message = load_error(&root, "en");
    let file = root.join("en/broken.ftl");
    assert!(
        message.starts_with(&format!("{}:2:12: ", file.display())),
        "{message}"
    );
}

#[test]
fn duplicate_ids_across_files_are_refused() {
    let root = tree(
        "duplicate",
        &[
            ("en/a.ftl", "title = One\n-brand = Squall\n"),
            ("en/b.ftl", "other = Two\ntitle = Again\n"),
        ],
    );
    let message = load_error(&root, "en");
    assert!(message.contains("b.ftl"), "{message}");
    assert!(message.contains("`title` is defined twice"), "{message}");
    assert!(message.contains("a.ftl"), "{message}");

    let root = tree(
        "duplicate-term",
        &[("en/a.ftl", "-brand = A\n-brand = B\n")],
    );
    let message = load_error(&root, "en");
    assert!(message.contains("`-brand` is defined twice"), "{message}");
}

#[test]
fn unexpected_layouts_are_refused() {
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Files<'_>, &str)] = &[
        (
            "stray-file",
            &[("en/a.ftl", "a = A\n"), ("README.md", "hi")],
            "unexpected file",
        ),
        (
            "not-a-tag",
            &[("en/a.ftl", "a = A\n"), ("english!/a.ftl", "a = A\n")],
            "not a language tag",
        ),
        (
            "not-ftl",
            &[("en/a.ftl", "a = A\n"), ("en/notes.txt", "")],
            "unexpected file",
        ),
        (
            "nested",
            &[("en/a.ftl", "a = A\n"), ("en/more/b.ftl", "b = B\n")],
            "unexpected file",
        ),
        (
            "twin",
            &[("en-US/a.ftl", "a = A\n"), ("en-us/a.ftl", "a = A\n")],
            "a second directory",
        ),
        ("empty", &[], "no locale directories"),
    ];
    for (name, files, expected) in cases {
        let message = load_error(&tree(name, files), "en");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let root = tree("empty-locale", &[("es/a.ftl", "a = A\n")]);
    std::fs::create_dir_all(root.join("en")).expect("mkdir");
    assert!(load_error(&root, "en").contains("no .ftl files for locale en"));
}

#[test]
fn the_default_locale_must_exist() {
    let root = tree("no-default", &[("es/a.ftl", "a = A\n")]);
    let message = load_error(&root, "en");
    assert!(
        message.contains("no directory for the default locale en (found es)"),
        "{message}"
    );
    assert!(load_error(&root, "not a tag!").contains("not a language tag"));
    assert!(load_error(&root.join("missing"), "en").contains("cannot read"));
}

#[test]
fn the_blog_catalogues_load_and_spanish_covers_english() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/blog/locales");
    let catalog = Translations::load(&dir, "en")
        .expect("the blog catalogues load")
        .catalog();
    let ids = |tag: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join(tag).join("blog.ftl")).expect("read");
        text.lines()
            .filter_map(|l| l.split_once(" ="))
            .map(|(id, _)| id.trim().to_owned())
            .filter(|id| !id.is_empty() && !id.starts_with(['#', '.', ' ']))
            .collect()
    };
    let (en, es) = (ids("en"), ids("es"));
    assert!(en.len() > 20, "{en:?}");
    assert_eq!(en, es, "the same messages in the same order");
    let es = catalog.locale("es").expect("es");
    assert_eq!(
        es.tr_with("post-count", &[("count", 1.into())]),
        "1 entrada"
    );
    assert_eq!(
        es.tr_with("post-count", &[("count", 7.into())]),
        "7 entradas"
    );
    assert_eq!(
        catalog
            .default_locale()
            .tr_with("post-count", &[("count", 1.into())]),
        "1 post"
    );
}
