//! The blog example end to end in process (through `squall::testing::TestClient`), against
//! the local PostgreSQL: accounts, login, XSRF, writing and listing posts, both languages,
//! static files. Skips with a reason when PostgreSQL is down, unless
//! `SQUALL_REQUIRE_SERVICES=1`. The browser test (`scripts/browser-test.sh`) drives the
//! same pages in Chromium.
#![cfg(all(
    feature = "auth",
    feature = "compress",
    feature = "files",
    feature = "i18n",
    feature = "postgres",
    feature = "signed",
    feature = "template",
    feature = "xsrf"
))]

#[path = "../examples/blog/app.rs"]
#[allow(dead_code)]
mod app;
mod services;
#[path = "../examples/blog/store.rs"]
#[allow(dead_code)]
mod store;

use std::time::Duration;

use squall::db::postgres::PgConfig;
use squall::i18n::Translations;
use squall::signed::SigningKeys;
use squall::testing::{run, TestClient, TestResponse};

/// The blog's settings, or `None` (test skipped) when PostgreSQL is not reachable.
fn settings() -> Option<app::Settings> {
    let url = services::env_or("DATABASE_URL", squall::db::postgres::DEFAULT_DATABASE_URL);
    let authority = url.split('/').nth(2).unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    let reachable =
        services::tcp_reachable(host, port.parse().unwrap_or(5432), Duration::from_secs(1));
    if !services::require_or_skip(&format!("PostgreSQL at {url}"), reachable) {
        return None;
    }
    let pg = PgConfig::from_url(&url).expect("DATABASE_URL parses");
    store::create_schema(&pg).expect("schema");
    Some(app::Settings {
        pg,
        keys: SigningKeys::new(1, [9u8; 32]).expect("32 bytes"),
        translations: Translations::load(app::LOCALES_DIR, "en").expect("catalogues load"),
        static_dir: app::STATIC_DIR.into(),
    })
}

/// A user name no earlier run has taken.
fn fresh_name(prefix: &str) -> String {
    format!("{prefix}_{:08x}", fastrand::u32(..))
}

fn hidden_xsrf(page: &TestResponse) -> String {
    let text = page.text();
    let at = text
        .find(r#"name="_xsrf" value=""#)
        .expect("a form with the xsrf field")
        + 20;
    text[at..]
        .split('"')
        .next()
        .expect("closing quote")
        .to_owned()
}

async fn sign_up(client: &TestClient, name: &str, password: &str) -> TestResponse {
    let form = client.get("/signup").send().await;
    let token = hidden_xsrf(&form);
    client
        .post("/signup")
        .form(&[
            ("name", name),
            ("password", password),
            ("password_confirm", password),
            ("next", "/write"),
            ("_xsrf", &token),
        ])
        .send()
        .await
}

#[test]
fn signing_up_writing_and_listing_a_post() {
    let Some(settings) = settings() else { return };
    run(async {
        let client = TestClient::new(app::app(&settings).expect("app")).expect("routes");
        // Writing needs a login.
        let r = client.get("/write").send().await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.header("location"), Some("/login?next=%2Fwrite"));

        let name = fresh_name("ada");
        let r = sign_up(&client, &name, "correct horse").await;
        assert_eq!(r.status(), 303, "{}", r.text());
        assert_eq!(r.header("location"), Some("/write"));

        let form = client.get("/write").send().await;
        assert_eq!(form.status(), 200);
        let token = hidden_xsrf(&form);
        let title = format!("On <storms> & {name}");
        let r = client
            .post("/write")
            .form(&[
                ("title", &title),
                ("body", "First paragraph.\n\nSecond."),
                ("_xsrf", &token),
            ])
            .send()
            .await;
        assert_eq!(r.status(), 303, "{}", r.text());

        let page = client.get("/").send().await;
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let html = page.text();
        let escaped = format!("On &lt;storms&gt; &amp; {name}");
        assert!(html.contains(&escaped), "the title, escaped, is listed");
        assert!(html.contains(&format!("Posted by {name} on ")), "{html}");
        assert!(html.contains("<p>Second.</p>"));
        assert!(html.contains("Welcome back"));

        // Logging out forgets the user.
        let token = hidden_xsrf(&page);
        let r = client
            .post("/logout")
            .form(&[("_xsrf", &token)])
            .send()
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(client.get("/write").send().await.status(), 302);
    })
    .expect("an executor");
}

#[test]
fn forms_say_what_is_wrong_and_refuse_forgeries() {
    let Some(settings) = settings() else { return };
    run(async {
        let client = TestClient::new(app::app(&settings).expect("app")).expect("routes");
        let name = fresh_name("grace");
        assert_eq!(sign_up(&client, &name, "long enough").await.status(), 303);
        client.set_cookie("user", None);

        let r = sign_up(&client, &name, "long enough").await;
        assert_eq!(r.status(), 422);
        assert!(r.text().contains("is already taken"), "{}", r.text());
        let r = sign_up(&client, "x", "long enough").await;
        assert!(r.text().contains("Usernames have 3 to 32"), "{}", r.text());
        let r = sign_up(&client, &fresh_name("short"), "short").await;
        assert!(r.text().contains("at least 8 characters"), "{}", r.text());

        let form = client.get("/login").send().await;
        let token = hidden_xsrf(&form);
        let r = client
            .post("/login")
            .form(&[
                ("name", &name),
                ("password", "wrong password"),
                ("_xsrf", &token),
            ])
            .send()
            .await;
        assert_eq!(r.status(), 422);
        assert!(r.text().contains("Wrong username or password."));
        // No token: refused before the handler runs.
        let r = client
            .post("/login")
            .form(&[("name", &name), ("password", "long enough")])
            .send()
            .await;
        assert_eq!(r.status(), 403);
        let r = client
            .post("/login")
            .form(&[
                ("name", &name),
                ("password", "long enough"),
                ("_xsrf", &token),
            ])
            .send()
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.header("location"), Some("/"));
    })
    .expect("an executor");
}

#[test]
fn the_language_follows_the_browser_until_the_visitor_picks_one() {
    let Some(settings) = settings() else { return };
    run(async {
        let client = TestClient::new(app::app(&settings).expect("app")).expect("routes");
        let r = client
            .get("/")
            .header("accept-language", "es-MX,es;q=0.9,en;q=0.5")
            .send()
            .await;
        assert!(r.text().contains(r#"<html lang="es">"#));
        assert!(r.text().contains("Inicio"));
        let token = hidden_xsrf(&r);
        let r = client
            .post("/language")
            .form(&[("locale", "en"), ("next", "/"), ("_xsrf", &token)])
            .send()
            .await;
        assert_eq!(r.status(), 303);
        let r = client.get("/").header("accept-language", "es").send().await;
        assert!(r.text().contains(r#"<html lang="en">"#), "the cookie wins");
        let vary = r.header_all("vary");
        assert!(vary
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("Accept-Language"))));
    })
    .expect("an executor");
}

#[test]
fn pages_link_versioned_static_files() {
    let Some(settings) = settings() else { return };
    run(async {
        let client = TestClient::new(app::app(&settings).expect("app")).expect("routes");
        let html = client.get("/login").send().await.text();
        let at = html
            .find("/static/blog.css")
            .expect("the stylesheet is linked");
        let url = html[at..]
            .split('"')
            .next()
            .expect("closing quote")
            .to_owned();
        assert!(url.contains("?v="), "{url}");
        let css = client.get(&url).send().await;
        assert_eq!(css.status(), 200);
        assert!(css
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/css")));
        assert!(css
            .header("cache-control")
            .is_some_and(|c| c.contains("immutable")));
        assert!(css.text().contains("--accent"));
        let js = client.get("/static/blog.js").send().await;
        assert_eq!(js.status(), 200);
        assert_eq!(client.get("/static/../app.rs").send().await.status(), 403);
    })
    .expect("an executor");
}
