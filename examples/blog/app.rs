//! The blog's routes and pages, shared by `main.rs` and the tests in `tests/blog.rs`.

use std::rc::Rc;

use sailfish::TemplateSimple;
use squall::auth::{authenticated, safe_next, RequestAuth};
use squall::compress::Compression;
use squall::files::StaticFiles;
use squall::i18n::{Catalog, FluentValue, Locale, Negotiator, Translations};
use squall::signed::{SignedCookies, SigningKeys};
use squall::template::Page;
use squall::xsrf::{self, Xsrf};
use squall::{App, Args, Error, IntoResponse, Request, Response, StatusCode};

use crate::store::{Post, SignUp, Store, User};

pub(crate) const LOCALES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/blog/locales");
pub(crate) const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/blog/static");
const USER_COOKIE: &str = "user";
const LOCALE_COOKIE: &str = "locale";
const MIN_PASSWORD: usize = 8;

/// What `main` prepares once and every core builds its application from.
pub(crate) struct Settings {
    pub(crate) pg: squall::db::postgres::PgConfig,
    pub(crate) keys: SigningKeys,
    pub(crate) translations: Translations,
    pub(crate) static_dir: std::path::PathBuf,
}

/// A random signing key, for a server started without `BLOG_COOKIE_SECRET`.
pub(crate) fn random_keys() -> Result<SigningKeys, Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    SigningKeys::new(1, secret)
}

/// This core's state, shared by its handlers.
struct Blog {
    store: Store,
    statics: StaticFiles,
    catalog: Catalog,
    /// The language switcher's choices, `(tag, the language's own name)`, made once.
    languages: Rc<[(String, String)]>,
}

/// The application for one core.
pub(crate) fn app(settings: &Settings) -> Result<App, Error> {
    let catalog = settings.translations.catalog();
    let languages = catalog
        .locales()
        .map(|l| (l.tag().to_owned(), l.tr("language-name")))
        .collect();
    let blog = Rc::new(Blog {
        store: Store::new(&settings.pg)?,
        statics: StaticFiles::new(&settings.static_dir)?,
        catalog,
        languages,
    });
    let app = App::new()
        .wrap(Compression::default())
        .wrap(Negotiator::new(blog.catalog.clone()).cookie(Some(LOCALE_COOKIE)))
        .wrap(Xsrf::default())
        .signing_keys(settings.keys.clone())
        .login_url("/login")
        .current_user(|req: &Request| std::future::ready(user_from_cookie(req)))
        .get("/", with(&blog, index))
        .get("/write", authenticated(with(&blog, write_form)))
        .post("/write", authenticated(with(&blog, write)))
        .get("/login", with(&blog, login_form))
        .post("/login", with(&blog, login))
        .get("/signup", with(&blog, signup_form))
        .post("/signup", with(&blog, signup))
        .post("/logout", logout)
        .post("/language", language)
        .get("/static/{*path}", blog.statics.clone());
    Ok(app)
}

/// A handler given this core's state.
fn with<F, Fut>(blog: &Rc<Blog>, handler: F) -> impl Fn(Request) -> Fut + 'static
where
    F: Fn(Request, Rc<Blog>) -> Fut + 'static,
    Fut: std::future::Future<Output = Response> + 'static,
{
    let blog = Rc::clone(blog);
    move |req| handler(req, Rc::clone(&blog))
}

/// The signed `user` cookie holds `id:name`.
fn user_from_cookie(req: &Request) -> Option<User> {
    let value = req.signed_cookie(USER_COOKIE)?;
    let (id, name) = value.split_once(':')?;
    Some(User {
        id: id.parse().ok()?,
        name: name.to_owned(),
    })
}

/// What every page's layout needs.
pub(crate) struct Chrome {
    locale: Locale,
    user: Option<String>,
    title: String,
    xsrf_field: String,
    path: String,
    css: String,
    js: String,
    languages: Rc<[(String, String)]>,
}

impl Chrome {
    async fn of(req: &mut Request, blog: &Blog, title_id: &str) -> Result<Chrome, Error> {
        let locale = Locale::of(req)?.clone();
        let user = req.current_user::<User>().await.map(|u| u.name.clone());
        let title = locale.tr_with("page-title", &[("title", locale.tr(title_id).into())]);
        Ok(Chrome {
            user,
            title,
            xsrf_field: xsrf::form_field(req)?,
            path: req.head().target().to_owned(),
            css: blog.statics.static_url("blog.css"),
            js: blog.statics.static_url("blog.js"),
            languages: Rc::clone(&blog.languages),
            locale,
        })
    }

    pub(crate) fn tr(&self, id: &str) -> String {
        self.locale.tr(id)
    }

    pub(crate) fn tr_with(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        self.locale.tr_with(id, args)
    }
}

#[derive(TemplateSimple)]
#[template(path = "blog/index.stpl")]
struct IndexPage {
    chrome: Chrome,
    posts: Vec<Post>,
    count: i64,
}

#[derive(TemplateSimple)]
#[template(path = "blog/write.stpl")]
struct WritePage {
    chrome: Chrome,
    error: Option<String>,
    title: String,
    body: String,
}

#[derive(TemplateSimple)]
#[template(path = "blog/account.stpl")]
struct AccountPage {
    chrome: Chrome,
    /// `login` or `signup`: where the form posts, and which fields it has.
    action: &'static str,
    error: Option<String>,
    name: String,
    next: String,
}

async fn index(mut req: Request, blog: Rc<Blog>) -> Response {
    let result = async {
        let chrome = Chrome::of(&mut req, &blog, "nav-home").await?;
        let (posts, count) = blog.store.posts().await?;
        Ok::<_, Error>(
            Page(IndexPage {
                chrome,
                posts,
                count,
            })
            .into_response(),
        )
    };
    result.await.into_response()
}

async fn write_form(mut req: Request, blog: Rc<Blog>) -> Response {
    let page = async {
        let chrome = Chrome::of(&mut req, &blog, "nav-write").await?;
        Ok::<_, Error>(Page(WritePage {
            chrome,
            error: None,
            title: String::new(),
            body: String::new(),
        }))
    };
    page.await.into_response()
}

async fn write(mut req: Request, blog: Rc<Blog>) -> Response {
    let result = async {
        let args = req.args().await?;
        let title = args.raw("title").unwrap_or("").trim().to_owned();
        let body = args.raw("body").unwrap_or("").trim().to_owned();
        let user = req
            .current_user::<User>()
            .await
            .ok_or_else(|| Error::forbidden("login required"))?;
        let problem = if title.is_empty() {
            Some("error-title-empty")
        } else if body.is_empty() {
            Some("error-body-empty")
        } else {
            None
        };
        if let Some(problem) = problem {
            let chrome = Chrome::of(&mut req, &blog, "nav-write").await?;
            let error = Some(chrome.tr(problem));
            let page = Page(WritePage {
                chrome,
                error,
                title,
                body,
            })
            .into_response();
            return Ok(page.with_status(StatusCode::UNPROCESSABLE_ENTITY));
        }
        blog.store.add_post(&user, &title, &body).await?;
        Ok::<_, Error>(Response::redirect_with(StatusCode::SEE_OTHER, "/"))
    };
    result.await.into_response()
}

async fn account_page(
    req: &mut Request,
    blog: &Blog,
    action: &'static str,
    error: Option<String>,
    name: String,
) -> Result<Response, Error> {
    let title = if action == "login" {
        "nav-login"
    } else {
        "nav-signup"
    };
    let chrome = Chrome::of(req, blog, title).await?;
    let next = safe_next(req.query_args().raw("next")).to_owned();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = Page(AccountPage {
        chrome,
        action,
        error,
        name,
        next,
    });
    Ok(page.into_response().with_status(status))
}

async fn login_form(mut req: Request, blog: Rc<Blog>) -> Response {
    account_page(&mut req, &blog, "login", None, String::new())
        .await
        .into_response()
}

async fn signup_form(mut req: Request, blog: Rc<Blog>) -> Response {
    account_page(&mut req, &blog, "signup", None, String::new())
        .await
        .into_response()
}

/// Logs `user` in and sends them on to `next`.
fn logged_in(req: &Request, user: &User, args: &Args) -> Result<Response, Error> {
    let cookie = req.sign_cookie(USER_COOKIE, &format!("{}:{}", user.id, user.name))?;
    let next = safe_next(args.raw("next"));
    Ok(Response::redirect_with(StatusCode::SEE_OTHER, next).set_cookie(cookie))
}

async fn login(mut req: Request, blog: Rc<Blog>) -> Response {
    let result = async {
        let args = req.args().await?;
        let name = args.raw("name").unwrap_or("").trim().to_owned();
        let password = args.raw("password").unwrap_or("");
        match blog.store.log_in(&name, password).await? {
            Some(user) => logged_in(&req, &user, &args),
            None => {
                let error = Locale::of(&req)?.tr("error-wrong-password");
                account_page(&mut req, &blog, "login", Some(error), name).await
            }
        }
    };
    result.await.into_response()
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

async fn signup(mut req: Request, blog: Rc<Blog>) -> Response {
    let result = async {
        let args = req.args().await?;
        let name = args.raw("name").unwrap_or("").trim().to_owned();
        let password = args.raw("password").unwrap_or("");
        let locale = Locale::of(&req)?.clone();
        let error = if !valid_name(&name) {
            Some(locale.tr("error-username-invalid"))
        } else if password.chars().count() < MIN_PASSWORD {
            Some(locale.tr_with("error-password-short", &[("min", MIN_PASSWORD.into())]))
        } else if args.raw("password_confirm") != Some(password) {
            Some(locale.tr("error-passwords-differ"))
        } else {
            match blog.store.sign_up(&name, password).await? {
                SignUp::Created(user) => return logged_in(&req, &user, &args),
                SignUp::NameTaken => Some(locale.tr_with(
                    "error-username-taken",
                    &[("username", name.as_str().into())],
                )),
            }
        };
        account_page(&mut req, &blog, "signup", error, name).await
    };
    result.await.into_response()
}

async fn logout(_req: Request) -> Response {
    Response::redirect_with(StatusCode::SEE_OTHER, "/").clear_cookie(USER_COOKIE)
}

/// Remembers the chosen language in a cookie, which the negotiator prefers to the browser's
/// `Accept-Language`.
async fn language(mut req: Request) -> Result<Response, Error> {
    let args = req.args().await?;
    let tag = args.get::<String>("locale")?;
    let valid = !tag.is_empty()
        && tag.len() <= 35
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(Error::bad_request("invalid locale"));
    }
    let cookie = squall::cookie::Cookie::build((LOCALE_COOKIE, tag))
        .path("/")
        .same_site(squall::cookie::SameSite::Lax)
        .max_age(squall::cookie::time::Duration::days(365))
        .build();
    Ok(
        Response::redirect_with(StatusCode::SEE_OTHER, safe_next(args.raw("next")))
            .set_cookie(cookie),
    )
}

/// Paragraphs of a post: blank lines separate them.
pub(crate) fn paragraphs(body: &str) -> impl Iterator<Item = &str> {
    body.split("\n\n").map(str::trim).filter(|p| !p.is_empty())
}
