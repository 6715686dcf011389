//! Pool settings: the connection string, the `SQUALL_PG_*` environment, and the checks that
//! turn a configuration mistake into a clear error at startup.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode, SslNegotiation};

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
    /// keepalives). TLS is not supported; `sslmode=prefer` (the default) connects in plain text.
    pub postgres: tokio_postgres::Config,
    /// Connections each core's pool keeps open.
    pub pool_size: usize,
    /// Limit on opening one connection: TCP connect, startup and authentication.
    pub connect_timeout: Duration,
    /// Limit on one whole operation (prepare and execute) from the caller's point of view.
    pub query_timeout: Duration,
    /// Prepared statements kept per connection; beyond it statements are prepared per use.
    pub statement_cache_capacity: usize,
}

impl PgConfig {
    /// Parses a connection string (`postgres://...` URL or `key=value` pairs) with default pool
    /// settings. A `connect_timeout` parameter in the string is honoured. The rest is checked
    /// when a pool is built ([`PgPool::new`](super::PgPool::new)).
    pub fn from_url(url: &str) -> Result<PgConfig, Error> {
        let postgres = tokio_postgres::Config::from_str(url).map_err(|e| {
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
        if self.postgres.get_ssl_mode() == SslMode::Require
            || self.postgres.get_ssl_negotiation() == SslNegotiation::Direct
        {
            return invalid("TLS is not supported; use sslmode=disable or prefer".into());
        }
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
                targets.push(Target::Addr(SocketAddr::new(*ip, port(i))));
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
    fn tls_and_missing_hosts_are_refused() {
        let c = PgConfig::from_url("postgres://postgres@127.0.0.1/test?sslmode=require")
            .expect("parses");
        let err = c.validate().expect_err("tls");
        assert!(err.to_string().contains("TLS"), "{err}");
        let c = PgConfig::from_url("user=postgres dbname=test").expect("parses");
        let err = c.validate().expect_err("no host");
        assert!(err.to_string().contains("no host"), "{err}");
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
