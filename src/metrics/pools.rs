//! The PostgreSQL pools' and Redis clients' families of a scrape: each core's figures, read
//! from the pools and clients registered on it ([`db`](crate::db)), labelled by core and by
//! the server and database they talk to.
//!
//! Series that are zero are written too (every state, every kind of failure), so that a
//! query such as `rate(squall_postgres_query_errors_total[5m])` has a series before the
//! first error. An application with no pool gets none of these families.
//!
//! Built with the `postgres` or `redis` feature; each part with its own.

use super::exposition::{Family, Kind, Labels, Sample};
use crate::db::stats::Failure;

/// One core's pools and clients, as that core reported them.
#[derive(Debug, Default)]
pub(super) struct CorePools {
    #[cfg(feature = "postgres")]
    postgres: Vec<crate::db::postgres::stats::PgFigures>,
    #[cfg(feature = "redis")]
    redis: Vec<crate::db::redis::stats::RedisFigures>,
}

impl CorePools {
    /// The pools and clients of the core this runs on.
    pub(super) fn here() -> CorePools {
        CorePools {
            #[cfg(feature = "postgres")]
            postgres: crate::db::postgres::stats::figures(),
            #[cfg(feature = "redis")]
            redis: crate::db::redis::stats::figures(),
        }
    }
}

/// Samples of one series per (core, pool), and of one per (core, pool, `label`) when
/// `values` gives several.
fn samples<'a, P: 'a>(
    pools: impl Iterator<Item = (usize, &'a P)>,
    pool_label: (&'static str, fn(&P) -> &str),
    label: Option<&'static str>,
    values: impl Fn(&P) -> Vec<(&'static str, u64)>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    for (core, pool) in pools {
        for (value_label, n) in values(pool) {
            let mut labels: Labels = vec![
                ("core", core.to_string()),
                (pool_label.0, pool_label.1(pool).to_owned()),
            ];
            if let Some(name) = label {
                labels.push((name, value_label.to_owned()));
            }
            samples.push(Sample::Value(labels, n));
        }
    }
    samples
}

/// A family of one value per pool.
fn family<'a, P: 'a>(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    pools: impl Iterator<Item = (usize, &'a P)>,
    pool_label: (&'static str, fn(&P) -> &str),
    value: fn(&P) -> u64,
) -> Family {
    Family {
        name,
        help,
        kind,
        samples: samples(pools, pool_label, None, |p| vec![("", value(p))]),
    }
}

/// `failures` as (kind, count) pairs.
fn by_kind(failures: &[u64; Failure::ALL.len()]) -> Vec<(&'static str, u64)> {
    Failure::ALL
        .iter()
        .zip(failures)
        .map(|(kind, &n)| (kind.label(), n))
        .collect()
}

/// The PostgreSQL and Redis families of every core's figures, `cores` as (core, figures).
pub(super) fn families(cores: &[(usize, &CorePools)]) -> Vec<Family> {
    let mut families = Vec::new();
    #[cfg(feature = "postgres")]
    families.extend(postgres(cores));
    #[cfg(feature = "redis")]
    families.extend(redis(cores));
    families
}

#[cfg(feature = "postgres")]
fn postgres(cores: &[(usize, &CorePools)]) -> Vec<Family> {
    use crate::db::postgres::stats::PgFigures;
    if cores.iter().all(|(_, c)| c.postgres.is_empty()) {
        return Vec::new();
    }
    let pools = || {
        cores
            .iter()
            .flat_map(|(core, c)| c.postgres.iter().map(move |p| (*core, p)))
    };
    let pool: (&'static str, fn(&PgFigures) -> &str) = ("pool", |p| &p.pool);
    vec![
        Family {
            name: "squall_postgres_connections",
            help: "PostgreSQL connections of each core's pool, by state: idle (open, nothing under way), in_use (open, with queries under way; connections are shared and pipelined), connecting.",
            kind: Kind::Gauge,
            samples: samples(pools(), pool, Some("state"), |p| {
                vec![
                    ("idle", p.idle),
                    ("in_use", p.in_use),
                    ("connecting", p.connecting),
                ]
            }),
        },
        family(
            "squall_postgres_connections_max",
            "Connections each core's PostgreSQL pool keeps (its configured size).",
            Kind::Gauge,
            pools(),
            pool,
            |p| p.size,
        ),
        family(
            "squall_postgres_queries_in_flight",
            "PostgreSQL operations (query, execute, prepare, batch) under way.",
            Kind::Gauge,
            pools(),
            pool,
            |p| p.in_flight,
        ),
        family(
            "squall_postgres_waiters",
            "PgPool::get calls waiting for a connection to open.",
            Kind::Gauge,
            pools(),
            pool,
            |p| p.waiters,
        ),
        family(
            "squall_postgres_connects",
            "PostgreSQL connections the pool began to open.",
            Kind::Counter,
            pools(),
            pool,
            |p| p.connects,
        ),
        family(
            "squall_postgres_connect_errors",
            "PostgreSQL connections that could not be opened (unreachable, refused, authentication, timed out).",
            Kind::Counter,
            pools(),
            pool,
            |p| p.connect_failures,
        ),
        family(
            "squall_postgres_get_errors",
            "PgPool::get calls that failed because no connection could be opened.",
            Kind::Counter,
            pools(),
            pool,
            |p| p.get_failures,
        ),
        family(
            "squall_postgres_queries",
            "PostgreSQL operations (query, execute, prepare, batch) started.",
            Kind::Counter,
            pools(),
            pool,
            |p| p.queries,
        ),
        Family {
            name: "squall_postgres_query_errors",
            help: "PostgreSQL operations that failed, by kind: connection (lost), timeout (the pool's query timeout or the handler's time limit), server (an error from the server), client (a wrong number of rows, a value that does not convert).",
            kind: Kind::Counter,
            samples: samples(pools(), pool, Some("kind"), |p| by_kind(&p.failures)),
        },
    ]
}

#[cfg(feature = "redis")]
fn redis(cores: &[(usize, &CorePools)]) -> Vec<Family> {
    use crate::db::redis::stats::RedisFigures;
    if cores.iter().all(|(_, c)| c.redis.is_empty()) {
        return Vec::new();
    }
    let clients = || {
        cores
            .iter()
            .flat_map(|(core, c)| c.redis.iter().map(move |r| (*core, r)))
    };
    let client: (&'static str, fn(&RedisFigures) -> &str) = ("client", |r| &r.client);
    vec![
        Family {
            name: "squall_redis_connections",
            help: "Redis connections open, by role: a client's connection for commands, a subscriber's.",
            kind: Kind::Gauge,
            samples: samples(clients(), client, Some("role"), |r| {
                vec![
                    ("commands", r.command_connections),
                    ("subscriber", r.subscriber_connections),
                ]
            }),
        },
        family(
            "squall_redis_subscriptions",
            "Redis channels and patterns the subscribers hold.",
            Kind::Gauge,
            clients(),
            client,
            |r| r.subscriptions,
        ),
        family(
            "squall_redis_commands_in_flight",
            "Redis commands sent on a client's connection and not yet answered (a pipeline counts once).",
            Kind::Gauge,
            clients(),
            client,
            |r| r.in_flight,
        ),
        family(
            "squall_redis_waiters",
            "Redis commands waiting for their client's connection to open.",
            Kind::Gauge,
            clients(),
            client,
            |r| r.waiters,
        ),
        family(
            "squall_redis_connects",
            "Redis connections begun, by clients and subscribers.",
            Kind::Counter,
            clients(),
            client,
            |r| r.connects,
        ),
        family(
            "squall_redis_connect_errors",
            "Redis connections that could not be opened (unreachable, refused, authentication, timed out).",
            Kind::Counter,
            clients(),
            client,
            |r| r.connect_failures,
        ),
        family(
            "squall_redis_reconnects",
            "Redis connections opened to replace one that was lost.",
            Kind::Counter,
            clients(),
            client,
            |r| r.reconnects,
        ),
        family(
            "squall_redis_commands",
            "Redis commands sent: a command, a pipeline or a subscription change counts once.",
            Kind::Counter,
            clients(),
            client,
            |r| r.commands,
        ),
        Family {
            name: "squall_redis_command_errors",
            help: "Redis commands that failed, by kind: connection (lost, or could not be opened), timeout (no reply within the command timeout), server (an error reply), client (a command that cannot be encoded, an unexpected reply).",
            kind: Kind::Counter,
            samples: samples(clients(), client, Some("kind"), |r| by_kind(&r.failures)),
        },
    ]
}

#[cfg(all(test, feature = "postgres", feature = "redis"))]
mod tests {
    use super::*;
    use crate::db::postgres::stats::PgFigures;
    use crate::db::redis::stats::RedisFigures;
    use crate::metrics::exposition::{encode, Format};

    #[test]
    fn pools_are_labelled_by_core_and_server_with_every_state_and_kind() {
        let pg = PgFigures {
            pool: "127.0.0.1:5432/test".into(),
            size: 4,
            idle: 2,
            in_use: 1,
            queries: 9,
            failures: [0, 0, 3, 0],
            ..PgFigures::default()
        };
        let redis = RedisFigures {
            client: "127.0.0.1:6379/0".into(),
            command_connections: 1,
            connect_failures: 2,
            ..RedisFigures::default()
        };
        let one = CorePools {
            postgres: vec![pg],
            redis: vec![redis],
        };
        let none = CorePools::default();
        let text = encode(&families(&[(0, &none), (1, &one)]), Format::Prometheus);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        let pool = "core=\"1\",pool=\"127.0.0.1:5432/test\"";
        has(&format!(
            "squall_postgres_connections{{{pool},state=\"idle\"}} 2"
        ));
        has(&format!(
            "squall_postgres_connections{{{pool},state=\"in_use\"}} 1"
        ));
        has(&format!(
            "squall_postgres_connections{{{pool},state=\"connecting\"}} 0"
        ));
        has(&format!("squall_postgres_connections_max{{{pool}}} 4"));
        has(&format!("squall_postgres_queries_total{{{pool}}} 9"));
        has(&format!(
            "squall_postgres_query_errors_total{{{pool},kind=\"server\"}} 3"
        ));
        has(&format!(
            "squall_postgres_query_errors_total{{{pool},kind=\"timeout\"}} 0"
        ));
        let client = "core=\"1\",client=\"127.0.0.1:6379/0\"";
        has(&format!(
            "squall_redis_connections{{{client},role=\"commands\"}} 1"
        ));
        has(&format!("squall_redis_connect_errors_total{{{client}}} 2"));
        has("# TYPE squall_redis_command_errors_total counter");
        assert!(!text.contains("core=\"0\""), "{text}");

        assert!(families(&[(0, &none)]).is_empty(), "no pool, no family");
    }
}
