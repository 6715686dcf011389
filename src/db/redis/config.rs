//! Configuration: where the Redis server is and how long to wait for it.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// The URL used when `REDIS_URL` is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Where the Redis server is and how long to wait for it.
///
/// Built from a URL, `redis://[[username]:password@]host[:port][/db]`, usually the `REDIS_URL`
/// environment variable; the password may be percent-encoded. `Debug` never shows the password.
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
        }
    }
}

impl RedisConfig {
    /// Parses `redis://[[username]:password@]host[:port][/db]`.
    ///
    /// The port defaults to 6379 and the database to 0. `rediss://` (TLS) and Unix sockets are
    /// not supported and say so. Error messages never repeat the password.
    pub fn from_url(url: &str) -> Result<RedisConfig, Error> {
        let bad = |why: String| Error::config(format!("invalid redis URL: {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected redis://host[:port][/db]".to_owned()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => return Err(bad("TLS (rediss://) is not supported".to_owned())),
            "unix" | "redis+unix" => {
                return Err(bad(
                    "unix sockets are not supported; use redis://host".to_owned()
                ))
            }
            other => return Err(bad(format!("unknown scheme {other:?}, expected redis://"))),
        }
        if rest.contains(['?', '#']) {
            return Err(bad(
                "query parameters and fragments are not supported".to_owned()
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let mut config = RedisConfig::default();
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
            .finish()
    }
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
            "rediss://h",
            "unix:///tmp/redis.sock",
            "redis://",
            "redis://h:0",
            "redis://h:port",
            "redis://h:70000",
            "redis://h/db",
            "redis://h/-1",
            "redis://h?db=1",
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
}
