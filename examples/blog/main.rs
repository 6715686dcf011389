//! A small Tornado-style blog: sign-up and login with signed cookies, XSRF-protected forms,
//! posts in PostgreSQL rendered through Sailfish templates with a layout, static CSS and
//! JavaScript, English and Spanish.
//!
//! ```sh
//! bash scripts/services.sh                      # PostgreSQL (and Redis), if not running
//! cargo run --release --example blog            # http://127.0.0.1:8080
//! ```
//!
//! `DATABASE_URL` names the database (its tables are created on start). `BLOG_COOKIE_SECRET`
//! holds the cookie signing keys as `version:secret` pairs; without it a random key is drawn,
//! so logins last only as long as the process.

mod app;
mod store;

use squall::db::postgres::PgConfig;
use squall::i18n::Translations;
use squall::signed::SigningKeys;
use squall::Server;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = run() {
        eprintln!("blog: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), squall::Error> {
    let pg = PgConfig::from_env()?;
    let keys = match std::env::var_os("BLOG_COOKIE_SECRET") {
        Some(_) => SigningKeys::from_env("BLOG_COOKIE_SECRET")?,
        None => {
            tracing::warn!("BLOG_COOKIE_SECRET is not set: logins end when the server stops");
            app::random_keys()?
        }
    };
    let translations = Translations::load(app::LOCALES_DIR, "en")?;
    store::create_schema(&pg)?;
    let settings = app::Settings {
        pg,
        keys,
        translations,
        static_dir: app::STATIC_DIR.into(),
    };
    Server::from_env()?.serve(move || app::app(&settings))
}
