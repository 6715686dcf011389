//! Cross-site request forgery protection, opt-in per application with
//! `App::new().wrap(Xsrf::default())`.
//!
//! The model is the double-submit token: the middleware gives every browser a random token
//! in a cookie (`_xsrf`), and every request with a method other than `GET`, `HEAD`,
//! `OPTIONS` and `TRACE` must carry the same token somewhere a cross-site page cannot put
//! it — another site can make the browser send the cookie, but cannot read it. The token may
//! travel:
//!
//! - in a form field named `_xsrf` of an `application/x-www-form-urlencoded` body — put
//!   [`form_field`] inside every form;
//! - in an `X-XSRF-Token` or `X-CSRF-Token` header — for scripts, which may also copy the raw
//!   cookie value there (the cookie is readable by the page's own scripts for that reason);
//! - for `multipart/form-data` bodies, which are streamed and not searched, in the header or
//!   in a `_xsrf` query argument ([`form_action`] appends it).
//!
//! Tokens are compared in constant time. The token a page embeds is masked afresh each time
//! (a random mask, then the token XOR the mask), so a compressed page never repeats the same
//! secret bytes — the BREACH attack recovers secrets that compression leaks through repetition.
//! A refused request gets `403` with a message saying what was missing or wrong.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Method;
use subtle::ConstantTimeEq;

use crate::body::RequestBody;
use crate::error::Error;
use crate::future::LocalFuture;
use crate::middleware::{Middleware, Next};
use crate::request::{Args, Request};
use crate::response::{IntoResponse, Response};

const TOKEN_BYTES: usize = 16;
/// The form field and query argument that carry the token.
pub const FIELD: &str = "_xsrf";
const HEADERS: [&str; 2] = ["x-xsrf-token", "x-csrf-token"];

/// The XSRF middleware; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Xsrf {
    settings: Rc<Settings>,
}

#[derive(Debug)]
struct Settings {
    cookie_name: String,
}

impl Default for Xsrf {
    fn default() -> Self {
        Xsrf::with_cookie_name("_xsrf")
    }
}

impl Xsrf {
    /// The middleware with its token cookie named `name` instead of `_xsrf`.
    pub fn with_cookie_name(name: &str) -> Xsrf {
        Xsrf {
            settings: Rc::new(Settings {
                cookie_name: name.to_owned(),
            }),
        }
    }
}

/// The request's token, attached by the middleware for [`token`] and [`form_field`].
struct Token([u8; TOKEN_BYTES]);

impl Middleware for Xsrf {
    fn call(&self, mut req: Request, next: Next) -> LocalFuture<'static, Response> {
        let settings = Rc::clone(&self.settings);
        Box::pin(async move {
            let from_cookie = req
                .cookie(&settings.cookie_name)
                .and_then(|value| decode_raw(&value));
            let token = match from_cookie {
                Some(token) => token,
                None => match random_token() {
                    Ok(token) => token,
                    Err(e) => return e.into_response(),
                },
            };
            let refusal = if changes_state(req.method()) {
                check(&mut req, from_cookie.as_ref()).await.err()
            } else {
                None
            };
            req.extensions_mut().insert(Token(token));
            let response = match refusal {
                Some(refusal) => refusal.into_response(),
                None => next.run(req).await,
            };
            if from_cookie.is_some() {
                return response;
            }
            // Readable by the page's scripts on purpose (see the module docs); `SameSite`
            // keeps it off cross-site subrequests.
            let cookie = cookie::Cookie::build((
                settings.cookie_name.clone(),
                URL_SAFE_NO_PAD.encode(token),
            ))
            .path("/")
            .same_site(cookie::SameSite::Lax)
            .build();
            response.set_cookie(cookie)
        })
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

async fn check(req: &mut Request, cookie: Option<&[u8; TOKEN_BYTES]>) -> Result<(), Error> {
    let submitted = submitted_token(req).await?;
    let Some(cookie) = cookie else {
        return Err(Error::forbidden("xsrf cookie missing or malformed"));
    };
    let Some(submitted) = submitted else {
        return Err(Error::forbidden(
            "xsrf token missing: send the _xsrf form field or an X-XSRF-Token header",
        ));
    };
    let matches = decode_submitted(&submitted).is_some_and(|t| bool::from(t.ct_eq(cookie)));
    if matches {
        Ok(())
    } else {
        Err(Error::forbidden(
            "xsrf token does not match the xsrf cookie",
        ))
    }
}

/// The token the request carries: a header, else the form field of a urlencoded body (read
/// and put back for the handler), else for multipart bodies the query argument.
async fn submitted_token(req: &mut Request) -> Result<Option<String>, Error> {
    if let Some(value) = HEADERS.iter().find_map(|name| req.header(name)) {
        return Ok(Some(value.trim().to_owned()));
    }
    match req.content_type().as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let body = req.bytes().await?;
            let token = Args::parse(&body).raw(FIELD).map(str::to_owned);
            *req.body_mut() = RequestBody::buffered(body);
            Ok(token)
        }
        Some("multipart/form-data") => Ok(req.query_args().raw(FIELD).map(str::to_owned)),
        _ => Ok(None),
    }
}

fn random_token() -> Result<[u8; TOKEN_BYTES], Error> {
    let mut token = [0; TOKEN_BYTES];
    getrandom::fill(&mut token)
        .map_err(|e| Error::internal(format!("no randomness for an xsrf token: {e}")))?;
    Ok(token)
}

fn decode_raw(text: &str) -> Option<[u8; TOKEN_BYTES]> {
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

/// A submitted token is either masked (mask then token XOR mask) or the raw cookie value.
fn decode_submitted(text: &str) -> Option<[u8; TOKEN_BYTES]> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    match bytes.len() {
        TOKEN_BYTES => bytes.try_into().ok(),
        len if len == 2 * TOKEN_BYTES => {
            let (mask, masked) = bytes.split_at(TOKEN_BYTES);
            let mut token = [0; TOKEN_BYTES];
            for (i, byte) in token.iter_mut().enumerate() {
                *byte = mask[i] ^ masked[i];
            }
            Some(token)
        }
        _ => None,
    }
}

fn mask(token: &[u8; TOKEN_BYTES]) -> Result<String, Error> {
    let mask = random_token()?;
    let mut out = [0; 2 * TOKEN_BYTES];
    out[..TOKEN_BYTES].copy_from_slice(&mask);
    for i in 0..TOKEN_BYTES {
        out[TOKEN_BYTES + i] = token[i] ^ mask[i];
    }
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// The request's XSRF token, masked afresh, for a form field or a script. Fails when the
/// application does not use the [`Xsrf`] middleware.
pub fn token(req: &Request) -> Result<String, Error> {
    let Token(raw) = req
        .extensions()
        .get::<Token>()
        .ok_or_else(|| Error::internal("xsrf::token needs the Xsrf middleware (App::wrap)"))?;
    mask(raw)
}

/// A hidden form field carrying the token: `<input type="hidden" name="_xsrf" value="…">`.
/// Its value is URL-safe base64, so it needs no escaping; in a Sailfish template emit it
/// unescaped with `<%- xsrf_field %>`.
pub fn form_field(req: &Request) -> Result<String, Error> {
    Ok(format!(
        r#"<input type="hidden" name="{FIELD}" value="{}">"#,
        token(req)?
    ))
}

/// `action` with the token appended as a query argument, for `multipart/form-data` forms,
/// whose bodies the middleware does not search.
pub fn form_action(req: &Request, action: &str) -> Result<String, Error> {
    let separator = if action.contains('?') { '&' } else { '?' };
    Ok(format!("{action}{separator}{FIELD}={}", token(req)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_each_time_and_unmask_to_the_token() {
        let token = random_token().expect("randomness");
        let a = mask(&token).expect("randomness");
        let b = mask(&token).expect("randomness");
        assert_ne!(a, b);
        assert_eq!(decode_submitted(&a), Some(token));
        assert_eq!(decode_submitted(&b), Some(token));
        let raw = URL_SAFE_NO_PAD.encode(token);
        assert_eq!(decode_submitted(&raw), Some(token));
        assert_eq!(decode_submitted("not base64!"), None);
        assert_eq!(decode_submitted(&URL_SAFE_NO_PAD.encode([1u8; 20])), None);
    }
}
