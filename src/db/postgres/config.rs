//! Pool settings: the connection string (with libpq's TLS parameters, which squall reads
//! itself), the `SQUALL_PG_*` environment, and the checks that turn a configuration mistake
//! into a clear error at startup.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode as WireSslMode, SslNegotiation};

use super::open::Target;
use crate::config::parse_duration;
use crate::error::Error;

/// The database used when `DATABASE_URL` is not set: the local server, user `postgres`,
/// database `test`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Connection pool settings: where the database is and how the pool behaves.
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// Connection parameters (host, port, user, password, dbname, options, application name,
    /// keepalives, `sslnegotiation`, `channel_binding`). Its TLS mode is set from
    /// [`tls`](Self::tls) when a pool is built; set that one.
    pub postgres: tokio_postgres::Config,
    /// TLS: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`.
    pub tls: PgTls,
    /// Connections each core's pool keeps open.
    pub pool_size: usize,
    /// Limit on opening one connection: TCP connect, startup and authentication.
    pub connect_timeout: Duration,
    /// Limit on one whole operation (prepare and execute) from the caller's point of view.
    pub query_timeout: Duration,
    /// Prepared statements kept per connection; beyond it statements are prepared per use.
    pub statement_cache_capacity: usize,
}

/// libpq's `sslmode`: whether a connection is encrypted, and what is checked of the
/// server's certificate.
///
/// squall's default is libpq's, [`SslMode::Prefer`]: TLS whenever the server offers it, so
/// a connection string means the same to squall as to `psql`. Against a server on the same
/// host, where there is no one to listen in, `sslmode=disable` skips the handshake and the
/// encryption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text.
    Disable,
    /// TLS if the server offers it, plain text if it refuses. The certificate is checked as
    /// for [`SslMode::Require`].
    #[default]
    Prefer,
    /// TLS, or no connection. Without a root certificate nothing about the server's
    /// certificate is checked: the traffic is encrypted against listeners, not against someone
    /// in the middle. With one ([`PgTls::root_cert`]) the chain is checked, as
    /// [`SslMode::VerifyCa`] does (libpq does the same).
    Require,
    /// TLS, and the server's certificate must be issued by a CA in [`PgTls::root_cert`]
    /// (required); its names are not checked.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the host connected to (the
    /// `host` parameter, even when `hostaddr` gives the address).
    VerifyFull,
}

impl SslMode {
    /// The name used in connection strings.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres negotiates: TLS when asked to, with or without falling back.
    pub(super) fn wire(self) -> WireSslMode {
        match self {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        }
    }
}

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<SslMode, Error> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(Error::config(
                    "sslmode=allow is not supported; use disable or prefer",
                ))
            }
            other => {
                return Err(Error::config(format!(
                    "unknown sslmode {other:?}; expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }
}

/// Where the CA certificates that a server's certificate is checked against come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates (`sslrootcert=/path/root.crt`).
    File(PathBuf),
    /// The operating system's CA bundle (`sslrootcert=system`), for a server whose
    /// certificate comes from a public CA.
    System,
}

/// TLS settings of a PostgreSQL connection, from libpq's connection parameters.
///
/// Unlike libpq, nothing is read from `~/.postgresql/`: give every file in the connection
/// string (or here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgTls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of CA certificates, or `system`.
    pub root_cert: Option<RootCert>,
    /// `sslcert`: a client certificate (PEM), for servers that check one (`clientcert=` in
    /// `pg_hba.conf`). Needs [`client_key`](Self::client_key).
    pub client_cert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
}

impl PgTls {
    /// Reads `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of a connection string,
    /// returning the rest for tokio-postgres (which knows only three of libpq's modes).
    fn take_from(conninfo: &str) -> Result<(PgTls, Cow<'_, str>), Error> {
        let mut tls = PgTls::default();
        let mut take = |name: &str, value: &str| -> Result<bool, Error> {
            let path = || PathBuf::from(value);
            match name {
                "sslmode" => tls.mode = value.parse()?,
                "sslrootcert" if value == "system" => tls.root_cert = Some(RootCert::System),
                "sslrootcert" => tls.root_cert = Some(RootCert::File(path())),
                "sslcert" => tls.client_cert = Some(path()),
                "sslkey" => tls.client_key = Some(path()),
                _ => return Ok(false),
            }
            Ok(true)
        };
        let url = ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| conninfo.starts_with(scheme));
        let rest = if url {
            let Some((base, query)) = conninfo.split_once('?') else {
                return Ok((tls, Cow::Borrowed(conninfo)));
            };
            let mut kept = Vec::new();
            for pair in crate::db::url::pairs(query) {
                let pair = pair.map_err(Error::config)?;
                if !take(&pair.name, &pair.value)? {
                    kept.push(pair.raw);
                }
            }
            match kept.is_empty() {
                true => Cow::Owned(base.to_owned()),
                false => Cow::Owned(format!("{base}?{}", kept.join("&"))),
            }
        } else {
            let mut kept = String::with_capacity(conninfo.len());
            for (name, value) in key_values(conninfo)? {
                if !take(&name, &value)? {
                    // Written back quoted, so any value reads back as it was.
                    let value = value.replace('\\', "\\\\").replace('\'', "\\'");
                    kept.push_str(&format!("{name}='{value}' "));
                }
            }
            Cow::Owned(kept)
        };
        Ok((tls, rest))
    }

    /// Checks the combination; with the `tls` feature, also that the certificate files can
    /// be read and used, by building a connector as a pool does.
    fn validate(&self, negotiation: SslNegotiation) -> Result<(), Error> {
        let mode = self.mode.as_str();
        if !cfg!(feature = "tls") {
            let needs_tls = match self.mode {
                SslMode::Disable | SslMode::Prefer => None,
                _ => Some(format!("sslmode={mode}")),
            };
            let needs_tls = needs_tls
                .or_else(|| self.root_cert.as_ref().map(|_| "sslrootcert".to_owned()))
                .or_else(|| self.client_cert.as_ref().map(|_| "sslcert".to_owned()))
                .or_else(|| {
                    (negotiation == SslNegotiation::Direct).then(|| "sslnegotiation=direct".into())
                });
            if let Some(what) = needs_tls {
                return Err(Error::config(format!(
                    "{what} needs squall's `tls` cargo feature; without it use sslmode=disable or prefer"
                )));
            }
        }
        if matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull) && self.root_cert.is_none()
        {
            return Err(Error::config(format!(
                "sslmode={mode} needs sslrootcert: a CA file, or `system` for the system's CAs"
            )));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::config("sslcert and sslkey go together"));
        }
        if negotiation == SslNegotiation::Direct
            && matches!(self.mode, SslMode::Disable | SslMode::Prefer)
        {
            return Err(Error::config(format!(
                "sslnegotiation=direct needs sslmode=require or stronger, not {mode}"
            )));
        }
        Ok(())
    }

    /// This pool's TLS connector: `None` for `sslmode=disable`. Reads the certificate files.
    #[cfg(feature = "tls")]
    pub(super) fn connector(&self) -> Result<Option<crate::tls::client::Connector>, Error> {
        use crate::tls::client::{connector, Identity, Roots, Settings, Verify};
        let verify = match self.mode {
            SslMode::Disable => return Ok(None),
            SslMode::Prefer | SslMode::Require if self.root_cert.is_none() => Verify::Nothing,
            SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => Verify::Chain,
            SslMode::VerifyFull => Verify::Full,
        };
        let roots = self.root_cert.as_ref().map(|root| match root {
            RootCert::File(path) => Roots::File(path),
            RootCert::System => Roots::System,
        });
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(Identity { cert, key }),
            _ => None,
        };
        let built = connector(&Settings {
            verify,
            roots,
            identity,
            // PostgreSQL 17 requires it for sslnegotiation=direct; older servers ignore it.
            alpn: Some(b"postgresql"),
        });
        built
            .map(Some)
            .map_err(|e| Error::config(format!("invalid postgres TLS config: {}", e.message())))
    }
}

/// The `key=value` pairs of a libpq key/value connection string, unquoted and unescaped by
/// tokio-postgres's rules (values may be single-quoted; a backslash escapes any character).
fn key_values(conninfo: &str) -> Result<Vec<(String, String)>, Error> {
    let bad = |why: &str| Error::config(format!("invalid postgres connection string: {why}"));
    let mut pairs = Vec::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(bad(&format!("expected `=` after {name:?}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => value.extend(chars.next()),
                Some('\'') if quoted => break,
                Some(c) if quoted || !c.is_whitespace() => value.push(c),
                Some(_) => break,
                None if quoted => return Err(bad("unterminated quoted value")),
                None => break,
            }
        }
        pairs.push((name, value));
    }
}

impl PgConfig {
    /// Parses a connection string (`postgres://...` URL or `key=value` pairs) with default pool
    /// settings. A `connect_timeout` parameter in the string is honoured; so are `sslmode`
    /// (all five of libpq's modes), `sslrootcert`, `sslcert` and `sslkey`, which squall reads
    /// itself ([`PgTls`]). The rest is checked when a pool is built
    /// ([`PgPool::new`](super::PgPool::new)).
    pub fn from_url(url: &str) -> Result<PgConfig, Error> {
        let (tls, url) = PgTls::take_from(url).map_err(|e| {
            Error::config(format!(
                "invalid postgres connection string: {}",
                e.message()
            ))
        })?;
        let postgres = tokio_postgres::Config::from_str(&url).map_err(|e| {
            let error = Error::config("invalid postgres connection string");
            // The cause says what is wrong; tokio-postgres's own text only repeats "invalid".
            match e.into_source() {
                Some(cause) => error.with_source(cause),
                None => error,
            }
        })?;
        let connect_timeout = postgres
            .get_connect_timeout()
            .copied()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(5));
        Ok(PgConfig {
            postgres,
            tls,
            pool_size: 4,
            connect_timeout,
            query_timeout: Duration::from_secs(5),
            statement_cache_capacity: 256,
        })
    }

    /// `DATABASE_URL` (or [`DEFAULT_DATABASE_URL`]) and the `SQUALL_PG_*` variables described
    /// in the [module documentation](super). A variable that cannot be parsed is an error
    /// naming it.
    pub fn from_env() -> Result<PgConfig, Error> {
        PgConfig::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<PgConfig, Error> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let mut config = PgConfig::from_url(&url)
            .map_err(|e| Error::config(format!("invalid DATABASE_URL: {e}")))?;
        let bad = |name: &str, value: &str, expected: &str| {
            Error::config(format!("invalid {name}={value:?}: expected {expected}"))
        };
        if let Some(v) = var("SQUALL_PG_POOL_SIZE") {
            config.pool_size = v
                .trim()
                .parse()
                .map_err(|_| bad("SQUALL_PG_POOL_SIZE", &v, "a positive integer"))?;
        }
        if let Some(v) = var("SQUALL_PG_STATEMENT_CACHE") {
            config.statement_cache_capacity = v
                .trim()
                .parse()
                .map_err(|_| bad("SQUALL_PG_STATEMENT_CACHE", &v, "a non-negative integer"))?;
        }
        let durations = [
            ("SQUALL_PG_CONNECT_TIMEOUT", &mut config.connect_timeout),
            ("SQUALL_PG_QUERY_TIMEOUT", &mut config.query_timeout),
        ];
        for (name, slot) in durations {
            if let Some(v) = var(name) {
                *slot = parse_duration(&v)
                    .ok_or_else(|| bad(name, &v, "a duration such as 250ms, 10s or 2m"))?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets the number of connections per core.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Sets the limit on opening one connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit on one whole operation.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets how many prepared statements each connection keeps.
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache_capacity = capacity;
        self
    }

    /// Sets the `application_name` the server shows in `pg_stat_activity`.
    pub fn application_name(mut self, name: &str) -> Self {
        self.postgres.application_name(name);
        self
    }

    /// Checks what would otherwise fail later, less clearly; returns the addresses to dial.
    pub(super) fn validate(&self) -> Result<Vec<Target>, Error> {
        let invalid = |what: String| Err(Error::config(format!("invalid postgres config: {what}")));
        if self.pool_size == 0 {
            return invalid("pool_size must be at least 1".into());
        }
        if self.connect_timeout.is_zero() || self.query_timeout.is_zero() {
            return invalid("timeouts must be longer than zero".into());
        }
        self.tls
            .validate(self.postgres.get_ssl_negotiation())
            .map_err(|e| Error::config(format!("invalid postgres config: {}", e.message())))?;
        let ports = self.postgres.get_ports();
        let addrs = self.postgres.get_hostaddrs();
        let hosts = self.postgres.get_hosts();
        let count = hosts.len().max(addrs.len());
        if count == 0 {
            return invalid("no host; give a TCP host such as 127.0.0.1".into());
        }
        if ports.len() > 1 && ports.len() != count {
            return invalid("give one port, or one port per host".into());
        }
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let mut targets = Vec::with_capacity(count);
        for i in 0..count {
            if let Some(ip) = addrs.get(i) {
                // The host, if given too, is the name TLS checks the certificate for.
                let name = match hosts.get(i) {
                    Some(Host::Tcp(name)) => Some(name.clone()),
                    _ => None,
                };
                targets.push(Target::Addr(SocketAddr::new(*ip, port(i)), name));
                continue;
            }
            match hosts.get(i) {
                Some(Host::Tcp(name)) => targets.push(Target::Host(name.clone(), port(i))),
                Some(Host::Unix(path)) => {
                    return invalid(format!(
                        "unix socket host {} is not supported; give a TCP host such as 127.0.0.1",
                        path.display()
                    ))
                }
                None => return invalid("hostaddr and host lists differ in length".into()),
            }
        }
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn defaults_to_the_local_test_database() {
        let c = PgConfig::from_lookup(lookup(&[])).expect("default url");
        assert_eq!(c.postgres.get_user(), Some("postgres"));
        assert_eq!(c.postgres.get_dbname(), Some("test"));
        assert_eq!(c.pool_size, 4);
        let targets = c.validate().expect("valid");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].to_string(), "127.0.0.1:5432");
    }

    #[test]
    fn environment_overrides_pool_settings() {
        let c = PgConfig::from_lookup(lookup(&[
            (
                "DATABASE_URL",
                "postgres://u:p@db.internal:6543/app?connect_timeout=2",
            ),
            ("SQUALL_PG_POOL_SIZE", "8"),
            ("SQUALL_PG_QUERY_TIMEOUT", "250ms"),
            ("SQUALL_PG_STATEMENT_CACHE", "16"),
        ]))
        .expect("valid");
        assert_eq!(c.pool_size, 8);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.query_timeout, Duration::from_millis(250));
        assert_eq!(c.statement_cache_capacity, 16);
        let targets = c.validate().expect("valid");
        assert_eq!(targets[0].to_string(), "db.internal:6543");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = PgConfig::from_lookup(lookup(&[("SQUALL_PG_POOL_SIZE", "many")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("SQUALL_PG_POOL_SIZE"), "{err}");
        let err = PgConfig::from_lookup(lookup(&[("SQUALL_PG_POOL_SIZE", "0")]))
            .expect_err("zero connections");
        assert!(err.to_string().contains("pool_size"), "{err}");
        let err = PgConfig::from_lookup(lookup(&[("DATABASE_URL", "postgres://a:b@h:notaport/")]))
            .expect_err("bad url");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn unix_socket_hosts_are_refused_clearly() {
        let c = PgConfig::from_url("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/test")
            .expect("parses");
        let err = c.validate().expect_err("unix socket");
        assert!(err.to_string().contains("unix socket"), "{err}");
        let c = PgConfig::from_url("host=/tmp user=postgres").expect("parses");
        assert!(c.validate().is_err());
    }

    #[test]
    fn missing_hosts_are_refused() {
        let c = PgConfig::from_url("user=postgres dbname=test").expect("parses");
        let err = c.validate().expect_err("no host");
        assert!(err.to_string().contains("no host"), "{err}");
    }

    #[test]
    fn tls_parameters_are_read_and_the_rest_passed_on() {
        let c = PgConfig::from_url(
            "postgres://u@db:5433/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fca%20dir%2Froot.crt&sslcert=/c.pem&sslkey=/c.key&connect_timeout=2",
        )
        .expect("parses");
        assert_eq!(
            c.tls,
            PgTls {
                mode: SslMode::VerifyFull,
                root_cert: Some(RootCert::File("/ca dir/root.crt".into())),
                client_cert: Some("/c.pem".into()),
                client_key: Some("/c.key".into()),
            }
        );
        assert_eq!(c.postgres.get_application_name(), Some("x"));
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.postgres.get_dbname(), Some("app"));

        let c = PgConfig::from_url(
            r"host=db user='o\'brien' sslmode = verify-ca sslrootcert=system dbname='my db'",
        )
        .expect("parses");
        assert_eq!(c.tls.mode, SslMode::VerifyCa);
        assert_eq!(c.tls.root_cert, Some(RootCert::System));
        assert_eq!(c.postgres.get_user(), Some("o'brien"));
        assert_eq!(c.postgres.get_dbname(), Some("my db"));

        let c = PgConfig::from_url("postgres://u@h/d?sslmode=disable").expect("parses");
        assert_eq!(c.tls.mode, SslMode::Disable);
        let c = PgConfig::from_url("postgres://u@h/d").expect("parses");
        assert_eq!(c.tls, PgTls::default());
        assert_eq!(c.tls.mode, SslMode::Prefer);
    }

    #[test]
    fn tls_mistakes_are_clear() {
        for (url, says) in [
            ("postgres://u@h/d?sslmode=allow", "sslmode=allow"),
            ("postgres://u@h/d?sslmode=verify_full", "unknown sslmode"),
            ("host=h sslrootcert='/unterminated", "unterminated"),
        ] {
            let err = PgConfig::from_url(url).expect_err(url);
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
        // Without the feature, these name the feature instead (`tls_needs_the_feature`).
        #[cfg(feature = "tls")]
        for (url, says) in [
            ("postgres://u@h/d?sslmode=verify-full", "needs sslrootcert"),
            ("postgres://u@h/d?sslmode=verify-ca", "needs sslrootcert"),
            (
                "postgres://u@h/d?sslmode=require&sslcert=/c.pem",
                "sslcert and sslkey",
            ),
            (
                "postgres://u@h/d?sslnegotiation=direct",
                "sslnegotiation=direct",
            ),
        ] {
            let c = PgConfig::from_url(url).expect(url);
            let err = c.validate().expect_err(url);
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_feature() {
        let c = PgConfig::from_url("postgres://u@h/d?sslmode=require").expect("parses");
        let err = c.validate().expect_err("no tls");
        assert!(err.to_string().contains("`tls` cargo feature"), "{err}");
        let c = PgConfig::from_url("postgres://u@h/d?sslmode=prefer").expect("parses");
        c.validate().expect("prefer is plain text without tls");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn certificate_files_are_read_when_a_pool_is_built() {
        let c = PgConfig::from_url(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
        )
        .expect("parses");
        c.validate().expect("valid combination");
        let err = c.tls.connector().expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent/root.crt"), "{err}");
        let c = PgConfig::from_url("postgres://u@h/d?sslmode=require").expect("parses");
        assert!(c.tls.connector().expect("no files needed").is_some());
        let c = PgConfig::from_url("postgres://u@h/d?sslmode=disable").expect("parses");
        assert!(c.tls.connector().expect("plain").is_none());
    }

    #[test]
    fn several_hosts_pair_with_their_ports() {
        let c = PgConfig::from_url("postgres://u@a:1,b:2/db").expect("parses");
        let targets: Vec<String> = c
            .validate()
            .expect("valid")
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(targets, ["a:1", "b:2"]);
    }
}
