//! Configuration: where the Redis server is, how to reach it (TLS) and how long to wait
//! for it.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// The URL used when `REDIS_URL` is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Where the Redis server is and how long to wait for it.
///
/// Built from a URL, `redis://[[username]:password@]host[:port][/db]`, usually the `REDIS_URL`
/// environment variable; the password may be percent-encoded. `Debug` never shows the password.
///
/// ## TLS
///
/// `rediss://` (with the `tls` feature, on by default) connects over TLS, checking that the
/// server's certificate was issued by a CA the operating system trusts and names the URL's
/// host (sent as SNI too). Query parameters, or the builder methods after them, change that:
///
/// | parameter | builder | meaning |
/// |---|---|---|
/// | `ca=/path/ca.pem` | [`tls_ca`](Self::tls_ca) | trust the CA certificates in this PEM file instead of the system's |
/// | `cert=/path/client.pem&key=/path/client.key` | [`tls_client_cert`](Self::tls_client_cert) | present this client certificate (for `tls-auth-clients yes`) |
/// | `insecure_skip_verify=true` | [`tls_insecure_skip_verify`](Self::tls_insecure_skip_verify) | accept any certificate: encrypted, but not authenticated |
///
/// `rediss://cache.internal:6380/0?ca=/etc/redis/ca.pem`. Paths are percent-decoded. The
/// files are read when a [`Client`](super::Client) or [`Subscriber`](super::Subscriber)
/// first connects, by each core for its own connections; a file that cannot be read or
/// parsed fails that connect with an error naming it. Reconnects resume the TLS session.
#[derive(Clone)]
pub struct RedisConfig {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) db: u32,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) client_name: Option<String>,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    /// `Some` for TLS (`rediss://`).
    #[cfg(feature = "tls")]
    pub(super) tls: Option<RedisTls>,
}

/// How a TLS connection checks the server and presents itself.
#[cfg(feature = "tls")]
#[derive(Clone, Debug, Default)]
pub(super) struct RedisTls {
    /// A PEM bundle of trusted CAs; the system's when `None`.
    pub(super) ca: Option<PathBuf>,
    /// A client certificate chain and its key, PEM files.
    pub(super) client_cert: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate.
    pub(super) insecure_skip_verify: bool,
}

impl Default for RedisConfig {
    /// `redis://127.0.0.1:6379`, database 0, no password, 1 s connect and 2 s command timeouts.
    fn default() -> RedisConfig {
        RedisConfig {
            host: "127.0.0.1".to_owned(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            client_name: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl RedisConfig {
    /// Parses `redis://[[username]:password@]host[:port][/db]`, or `rediss://...` for TLS
    /// with the query parameters described [above](RedisConfig#tls).
    ///
    /// The port defaults to 6379 and the database to 0. Unix sockets are not supported and
    /// say so; so does `rediss://` without the `tls` feature. Error messages never repeat the
    /// password.
    pub fn from_url(url: &str) -> Result<RedisConfig, Error> {
        let bad = |why: String| Error::config(format!("invalid redis URL: {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected redis://host[:port][/db]".to_owned()));
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "redis" => false,
            "rediss" if cfg!(feature = "tls") => true,
            "rediss" => {
                return Err(bad(
                    "TLS (rediss://) needs squall's `tls` cargo feature".to_owned()
                ))
            }
            "unix" | "redis+unix" => {
                return Err(bad(
                    "unix sockets are not supported; use redis://host".to_owned()
                ))
            }
            other => return Err(bad(format!("unknown scheme {other:?}, expected redis://"))),
        };
        if rest.contains('#') {
            return Err(bad("fragments are not supported".to_owned()));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let mut config = RedisConfig::default();
        if query.is_some() && !tls {
            return Err(bad(
                "query parameters (ca, cert, key, insecure_skip_verify) need rediss://".to_owned(),
            ));
        }
        #[cfg(feature = "tls")]
        if tls {
            config.tls = Some(parse_tls_query(query.unwrap_or(""), &bad)?);
        }
        let hostport = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let Some((user, password)) = userinfo.split_once(':') else {
                    return Err(bad(
                        "credentials must be user:password@ or :password@".to_owned()
                    ));
                };
                let decode = |part: &str, what: &str| {
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .map(Cow::into_owned)
                        .map_err(|_| bad(format!("the {what} is not valid percent-encoded UTF-8")))
                };
                if !user.is_empty() {
                    config.username = Some(decode(user, "username")?);
                }
                config.password = Some(decode(password, "password")?);
                hostport
            }
            None => authority,
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(bad("unterminated [ in an IPv6 host".to_owned()));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad(format!("unexpected {after:?} after the host"))),
                },
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host".to_owned()));
        }
        config.host = host.to_owned();
        if let Some(port) = port {
            config.port = match port.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(format!("invalid port {port:?}"))),
            };
        }
        if !path.is_empty() {
            config.db = path
                .parse()
                .map_err(|_| bad(format!("invalid database index {path:?}")))?;
        }
        Ok(config)
    }

    /// Reads `REDIS_URL`, falling back to [`DEFAULT_URL`] when it is unset or empty.
    pub fn from_env() -> Result<RedisConfig, Error> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => RedisConfig::from_url(url.trim()),
            Ok(_) | Err(std::env::VarError::NotPresent) => RedisConfig::from_url(DEFAULT_URL),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(
                "invalid redis URL: REDIS_URL is not valid UTF-8",
            )),
        }
    }

    /// How long opening a connection (TCP connect plus `AUTH`/`SELECT`) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command or pipeline may take from call to reply, connecting included.
    ///
    /// Blocking commands (`BLPOP` and friends) need a timeout longer than their own.
    pub fn command_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.command_timeout = timeout;
        self
    }

    /// A name sent with `CLIENT SETNAME` on every connection, shown by `CLIENT LIST`.
    ///
    /// Names may not contain spaces; Redis rejects such a name when connecting.
    pub fn client_name(mut self, name: impl Into<String>) -> RedisConfig {
        self.client_name = Some(name.into());
        self
    }

    /// Connects over TLS, trusting the operating system's CA certificates and checking the
    /// server's name, as `rediss://` does.
    #[cfg(feature = "tls")]
    pub fn tls(mut self) -> RedisConfig {
        self.tls.get_or_insert_with(RedisTls::default);
        self
    }

    /// Connects over TLS, trusting the CA certificates in the PEM file at `path` (instead of
    /// the system's).
    #[cfg(feature = "tls")]
    pub fn tls_ca(mut self, path: impl Into<PathBuf>) -> RedisConfig {
        self.tls.get_or_insert_with(RedisTls::default).ca = Some(path.into());
        self
    }

    /// Connects over TLS, presenting the client certificate chain in the PEM file `cert`
    /// with the private key in `key`, for servers that ask for one (`tls-auth-clients`).
    #[cfg(feature = "tls")]
    pub fn tls_client_cert(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> RedisConfig {
        self.tls.get_or_insert_with(RedisTls::default).client_cert =
            Some((cert.into(), key.into()));
        self
    }

    /// Connects over TLS and accepts **any** certificate, ignoring any CA set: the traffic is
    /// encrypted, but whoever answers at the address is trusted. For tests and networks you
    /// trust anyway; prefer [`tls_ca`](Self::tls_ca) with the server's CA.
    #[cfg(feature = "tls")]
    pub fn tls_insecure_skip_verify(mut self) -> RedisConfig {
        self.tls
            .get_or_insert_with(RedisTls::default)
            .insecure_skip_verify = true;
        self
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database index selected on every connection.
    pub fn db(&self) -> u32 {
        self.db
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("tls", &self.is_tls())
            .finish()
    }
}

/// The TLS settings in a `rediss://` URL's query string.
#[cfg(feature = "tls")]
fn parse_tls_query(query: &str, bad: &dyn Fn(String) -> Error) -> Result<RedisTls, Error> {
    let mut tls = RedisTls::default();
    let (mut cert, mut key) = (None, None);
    for pair in crate::db::url::pairs(query) {
        let crate::db::url::Pair { name, value, .. } = pair.map_err(bad)?;
        match &*name {
            "ca" => tls.ca = Some(PathBuf::from(&*value)),
            "cert" => cert = Some(PathBuf::from(&*value)),
            "key" => key = Some(PathBuf::from(&*value)),
            "insecure_skip_verify" => {
                tls.insecure_skip_verify = match &*value {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(bad(format!(
                            "insecure_skip_verify={other:?}: expected true or false"
                        )))
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter {other:?}; expected ca, cert, key or insecure_skip_verify"
                )))
            }
        }
    }
    tls.client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(bad("cert and key go together".to_owned())),
    };
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn urls_parse_with_defaults() {
        let c = RedisConfig::from_url("redis://localhost").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("localhost", 6379, 0));
        let c = RedisConfig::from_url("redis://10.0.0.2:6380/3").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("10.0.0.2", 6380, 3));
        let c = RedisConfig::from_url("redis://[::1]:7000/").expect("valid");
        assert_eq!((c.host(), c.port(), c.db()), ("::1", 7000, 0));
        let c = RedisConfig::from_url("REDIS://:s%40cret@h").expect("valid");
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.username, None);
        let c = RedisConfig::from_url("redis://ann:pw@h:1/2").expect("valid");
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.password.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_urls_are_config_errors_that_hide_the_password() {
        for url in [
            "localhost:6379",
            "http://localhost",
            "unix:///tmp/redis.sock",
            "redis://",
            "redis://h:0",
            "redis://h:port",
            "redis://h:70000",
            "redis://h/db",
            "redis://h/-1",
            "redis://h?db=1",
            "redis://h?ca=/ca.pem",
            "redis://h#frag",
            "redis://justuser@h",
            "redis://[::1",
            "redis://:hunter2@h:x",
        ] {
            let e = RedisConfig::from_url(url).expect_err(url);
            assert_eq!(e.kind(), Kind::Config, "{url}");
            assert!(e.message().starts_with("invalid redis URL: "), "{url}: {e}");
            assert!(!e.message().contains("hunter2"), "{url}: {e}");
        }
        let config = RedisConfig::from_url("redis://:hunter2@h").expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn rediss_urls_carry_the_tls_settings() {
        let c = RedisConfig::from_url("rediss://h:6380/1").expect("valid");
        assert!(c.is_tls());
        let tls = c.tls.expect("tls");
        assert_eq!(
            (tls.ca, tls.client_cert, tls.insecure_skip_verify),
            (None, None, false)
        );
        let c = RedisConfig::from_url(
            "rediss://:pw@h/?ca=%2Fetc%2Fca.pem&cert=/c.pem&key=/c.key&insecure_skip_verify=false",
        )
        .expect("valid");
        let tls = c.tls.expect("tls");
        assert_eq!(tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            tls.client_cert,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/c.key")))
        );
        let c = RedisConfig::from_url("rediss://h?insecure_skip_verify=true").expect("valid");
        assert!(c.tls.expect("tls").insecure_skip_verify);
        for url in [
            "rediss://h?cert=/c.pem",
            "rediss://h?key=/c.key",
            "rediss://h?insecure_skip_verify=yes",
            "rediss://h?verify=none",
        ] {
            let e = RedisConfig::from_url(url).expect_err(url);
            assert!(e.message().starts_with("invalid redis URL: "), "{url}: {e}");
        }
        let c = RedisConfig::from_url("redis://h")
            .expect("valid")
            .tls_ca("/ca.pem")
            .tls_client_cert("/c.pem", "/c.key");
        assert!(c.is_tls());
        assert!(format!("{c:?}").contains("tls: true"));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn rediss_needs_the_tls_feature() {
        let e = RedisConfig::from_url("rediss://h").expect_err("no tls");
        assert!(e.message().contains("`tls` cargo feature"), "{e}");
    }
}
