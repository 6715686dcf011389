//! Signed values: HMAC-SHA256 over a name, a value and the time it was signed, with keys that
//! rotate by version, and the signed cookies built on them.
//!
//! The application gives its keys with [`App::signing_keys`](crate::App::signing_keys);
//! handlers sign and read cookies through [`SignedCookies`], a trait on
//! [`Request`]:
//!
//! ```
//! use squall::signed::{SignedCookies, SigningKeys};
//! use squall::{App, Request, Response};
//!
//! async fn save_theme(req: Request) -> Result<Response, squall::Error> {
//!     Ok(Response::text("saved").set_cookie(req.sign_cookie("theme", "dark")?))
//! }
//!
//! async fn theme(req: Request) -> String {
//!     req.signed_cookie("theme").unwrap_or_else(|| "light".to_owned())
//! }
//!
//! # fn demo() -> Result<(), squall::Error> {
//! let keys = SigningKeys::new(1, [7u8; 32])?;
//! let app = App::new()
//!     .signing_keys(keys)
//!     .post("/theme", save_theme)
//!     .get("/theme", theme);
//! # Ok(()) }
//! # demo().expect("a 32-byte key");
//! ```
//!
//! A signed value reads `s1.<key version>.<unix seconds>.<value>.<signature>`, value and
//! signature in unpadded URL-safe base64, so it is a valid cookie value as is. The signature
//! covers the cookie's name too, so a value signed for one cookie cannot be replayed as
//! another. Reading a value checks, in order: the format, that the key version is one this
//! application holds, the signature (in constant time), and the age. Any failure reads as
//! "absent" — a handler cannot tell a tampered cookie from a missing one, and need not.
//!
//! Rotation: sign with a new version while still accepting the old one
//! ([`SigningKeys::accept`]); once every old cookie has expired, drop the old key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;
use crate::request::Request;
use crate::router::App;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted: a key for HMAC-SHA256 should carry at least as much entropy
/// as its output.
pub const MIN_SECRET_BYTES: usize = 32;

/// How old a signed value may be by default (31 days), as with Tornado's secure cookies.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// A value signed in the future by more than this is rejected (clock skew between servers).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

const FORMAT: &str = "s1";

/// The keys an application signs and verifies with: one current key that signs, and older
/// versions that still verify.
#[derive(Clone)]
pub struct SigningKeys {
    current: u32,
    keys: Vec<(u32, HmacSha256)>,
}

impl SigningKeys {
    /// Keys that sign with `secret` as version `version`. A secret shorter than
    /// [`MIN_SECRET_BYTES`] is a configuration error.
    pub fn new(version: u32, secret: impl AsRef<[u8]>) -> Result<SigningKeys, Error> {
        Ok(SigningKeys {
            current: version,
            keys: vec![(version, key(version, secret.as_ref())?)],
        })
    }

    /// Also accepts values signed with an older (or newer) key `version`, without signing
    /// with it.
    pub fn accept(mut self, version: u32, secret: impl AsRef<[u8]>) -> Result<SigningKeys, Error> {
        if self.keys.iter().any(|(v, _)| *v == version) {
            return Err(Error::config(format!(
                "signing key version {version} is given twice"
            )));
        }
        self.keys.push((version, key(version, secret.as_ref())?));
        Ok(self)
    }

    /// Reads keys from environment variable `var`: `version:secret` pairs separated by commas,
    /// the first pair signing (`SQUALL_COOKIE_SECRET="2:new-secret,1:old-secret"`), so a
    /// secret cannot itself contain a comma. A missing
    /// variable or a malformed pair is a configuration error naming the variable.
    pub fn from_env(var: &str) -> Result<SigningKeys, Error> {
        let value = std::env::var(var).map_err(|_| {
            Error::config(format!("{var} is not set: give it version:secret pairs"))
        })?;
        SigningKeys::parse(var, &value)
    }

    fn parse(var: &str, value: &str) -> Result<SigningKeys, Error> {
        let mut pairs = value.split(',').map(|pair| {
            let (version, secret) = pair.trim().split_once(':').ok_or_else(|| {
                Error::config(format!("{var}: expected version:secret, got no colon"))
            })?;
            let version = version.parse::<u32>().map_err(|_| {
                Error::config(format!("{var}: key version {version:?} is not a number"))
            })?;
            Ok::<_, Error>((version, secret))
        });
        let (version, secret) = pairs
            .next()
            .ok_or_else(|| Error::config(format!("{var} is empty")))??;
        let mut keys = SigningKeys::new(version, secret)?;
        for pair in pairs {
            let (version, secret) = pair?;
            keys = keys.accept(version, secret)?;
        }
        Ok(keys)
    }

    /// The version new values are signed with.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// Signs `value` for `name`, stamped with the current time.
    pub fn sign(&self, name: &str, value: &str) -> String {
        self.sign_at(name, value, unix_now())
    }

    fn sign_at(&self, name: &str, value: &str, signed_at: u64) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(value);
        let unsigned = format!("{FORMAT}.{}.{signed_at}.{encoded}", self.current);
        let mac = self
            .mac(self.current, name, &unsigned)
            .expect("the current version is always among the keys");
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{unsigned}.{signature}")
    }

    /// The value inside `signed` if it was signed for `name` by one of these keys no longer
    /// than `max_age` ago; `None` for anything else.
    pub fn verify(&self, name: &str, signed: &str, max_age: Duration) -> Option<String> {
        self.verify_at(name, signed, max_age, unix_now())
    }

    fn verify_at(&self, name: &str, signed: &str, max_age: Duration, now: u64) -> Option<String> {
        let (unsigned, signature) = signed.rsplit_once('.')?;
        let mut fields = unsigned.splitn(4, '.');
        if fields.next()? != FORMAT {
            return None;
        }
        let version = fields.next()?.parse::<u32>().ok()?;
        let signed_at = fields.next()?.parse::<u64>().ok()?;
        let encoded = fields.next()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // `verify_slice` compares in constant time.
        self.mac(version, name, unsigned)?
            .verify_slice(&signature)
            .ok()?;
        let too_old = now.saturating_sub(signed_at) > max_age.as_secs();
        let from_the_future = signed_at.saturating_sub(now) > MAX_CLOCK_SKEW.as_secs();
        if too_old || from_the_future {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
    }

    /// The MAC of `unsigned` for cookie `name` under key `version`; `None` for a version
    /// these keys do not hold.
    fn mac(&self, version: u32, name: &str, unsigned: &str) -> Option<HmacSha256> {
        let (_, key) = self.keys.iter().find(|(v, _)| *v == version)?;
        let mut mac = key.clone();
        // The name's length first, so `a` + `b.c` and `a.b` + `c` cannot collide.
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.as_bytes());
        mac.update(unsigned.as_bytes());
        Some(mac)
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions: Vec<u32> = self.keys.iter().map(|(v, _)| *v).collect();
        f.debug_struct("SigningKeys")
            .field("current", &self.current)
            .field("versions", &versions)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The keys signed cookies are signed and verified with ([`SignedCookies`]).
    pub fn signing_keys(mut self, keys: SigningKeys) -> App {
        self.extensions_mut().insert(keys);
        self
    }
}

/// Signed cookies, read from and made for a request with the keys of its application
/// ([`App::signing_keys`]). Implemented for [`Request`]; bring it into scope with
/// `use squall::signed::SignedCookies`.
pub trait SignedCookies {
    /// Signed cookie `name` if it is intact, signed by one of the application's keys and at
    /// most 31 days old ([`DEFAULT_MAX_AGE`]); `None` otherwise, tampered or not.
    fn signed_cookie(&self, name: &str) -> Option<String>;

    /// Signed cookie `name` if it was signed no longer than `max_age` ago.
    fn signed_cookie_within(&self, name: &str, max_age: Duration) -> Option<String>;

    /// A cookie carrying `value` signed with the application's current key, for
    /// [`Response::set_cookie`](crate::Response::set_cookie): `Path=/`, `HttpOnly`,
    /// `SameSite=Lax`, `Secure` when the request came over TLS through a trusted proxy
    /// ([`Request::is_secure`]), and a 31-day `Max-Age` matching what
    /// [`signed_cookie`](Self::signed_cookie) accepts. Change any of these on the returned
    /// cookie. An application without [`App::signing_keys`] gets a 500 error.
    fn sign_cookie(&self, name: &str, value: &str) -> Result<cookie::Cookie<'static>, Error>;
}

impl SignedCookies for Request {
    fn signed_cookie(&self, name: &str) -> Option<String> {
        self.signed_cookie_within(name, DEFAULT_MAX_AGE)
    }

    fn signed_cookie_within(&self, name: &str, max_age: Duration) -> Option<String> {
        let keys = self.app_extensions().get::<SigningKeys>()?;
        let signed = self.cookie(name)?;
        keys.verify(name, &signed, max_age)
    }

    fn sign_cookie(&self, name: &str, value: &str) -> Result<cookie::Cookie<'static>, Error> {
        let keys = self.app_extensions().get::<SigningKeys>().ok_or_else(|| {
            Error::internal("sign_cookie needs App::signing_keys to be configured")
        })?;
        let max_age = cookie::time::Duration::seconds(DEFAULT_MAX_AGE.as_secs() as i64);
        Ok(
            cookie::Cookie::build((name.to_owned(), keys.sign(name, value)))
                .path("/")
                .http_only(true)
                .same_site(cookie::SameSite::Lax)
                .secure(self.is_secure())
                .max_age(max_age)
                .build(),
        )
    }
}

fn key(version: u32, secret: &[u8]) -> Result<HmacSha256, Error> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(Error::config(format!(
            "signing key version {version} is {} bytes; use at least {MIN_SECRET_BYTES} random bytes",
            secret.len()
        )));
    }
    HmacSha256::new_from_slice(secret)
        .map_err(|_| Error::config("signing key is not usable for HMAC-SHA256"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "an old secret of at least thirty-two bytes";
    const NEW: &str = "the new secret and also thirty-two bytes or more";
    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_signed_value_reads_back_only_under_its_own_name() {
        let keys = SigningKeys::new(1, NEW).expect("long secret");
        let signed = keys.sign("user", "ada|admin");
        assert_eq!(
            keys.verify("user", &signed, DAY).as_deref(),
            Some("ada|admin")
        );
        assert_eq!(keys.verify("role", &signed, DAY), None);
        assert!(signed
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b','));
    }

    #[test]
    fn tampering_anywhere_is_rejected() {
        let keys = SigningKeys::new(1, NEW).expect("long secret");
        let signed = keys.sign("user", "ada");
        let forged_value = URL_SAFE_NO_PAD.encode("root");
        let fields: Vec<&str> = signed.split('.').collect();
        let swapped = format!(
            "{}.{}.{}.{forged_value}.{}",
            fields[0], fields[1], fields[2], fields[4]
        );
        assert_eq!(keys.verify("user", &swapped, DAY), None);
        let mut flipped = signed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(keys.verify("user", &flipped, DAY), None);
        for junk in [
            "",
            "s1",
            "s1.1.2.3",
            "s1.x.1.YQ.sig",
            "v9.1.1.YQ.sig",
            "ada",
        ] {
            assert_eq!(keys.verify("user", junk, DAY), None, "{junk:?}");
        }
    }

    #[test]
    fn old_and_future_values_are_rejected() {
        let keys = SigningKeys::new(1, NEW).expect("long secret");
        let now = unix_now();
        let week_old = keys.sign_at("user", "ada", now - 7 * 86_400);
        assert_eq!(keys.verify("user", &week_old, DAY), None);
        assert!(keys.verify("user", &week_old, DEFAULT_MAX_AGE).is_some());
        let future = keys.sign_at("user", "ada", now + 3_600);
        assert_eq!(keys.verify("user", &future, DAY), None);
    }

    #[test]
    fn rotation_verifies_old_versions_and_signs_with_the_new_one() {
        let before = SigningKeys::new(1, OLD).expect("long secret");
        let old_cookie = before.sign("user", "ada");
        let rotated = SigningKeys::new(2, NEW)
            .and_then(|k| k.accept(1, OLD))
            .expect("two keys");
        assert_eq!(
            rotated.verify("user", &old_cookie, DAY).as_deref(),
            Some("ada")
        );
        let new_cookie = rotated.sign("user", "ada");
        assert!(new_cookie.starts_with("s1.2."), "{new_cookie}");
        // A server that no longer holds the old key, or never held the new one, rejects.
        let retired = SigningKeys::new(2, NEW).expect("long secret");
        assert_eq!(retired.verify("user", &old_cookie, DAY), None);
        assert_eq!(before.verify("user", &new_cookie, DAY), None);
        // The same version with a different secret is a foreign key.
        let foreign = SigningKeys::new(1, NEW).expect("long secret");
        assert_eq!(foreign.verify("user", &old_cookie, DAY), None);
    }

    #[test]
    fn keys_parse_from_version_secret_pairs() {
        let keys = SigningKeys::parse("VAR", &format!("2:{NEW}, 1:{OLD}")).expect("two pairs");
        assert_eq!(keys.current_version(), 2);
        let old_cookie = SigningKeys::new(1, OLD).expect("long").sign("user", "ada");
        assert!(keys.verify("user", &old_cookie, DAY).is_some());
        for bad in ["", "nocolon", "x:secret-of-thirty-two-bytes-or-more!!"] {
            let err = SigningKeys::parse("VAR", bad).expect_err("malformed");
            assert!(err.to_string().starts_with("VAR"), "{err}");
        }
    }

    #[test]
    fn weak_or_duplicate_keys_fail_at_startup() {
        let err = SigningKeys::new(1, "short").expect_err("too short");
        assert!(err.to_string().contains("at least 32"), "{err}");
        let err = SigningKeys::new(1, NEW)
            .and_then(|k| k.accept(1, OLD))
            .expect_err("same version twice");
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
