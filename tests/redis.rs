//! The Redis client against a real server: `REDIS_URL`, default `redis://127.0.0.1:6379`.
//!
//! When Redis is unreachable these tests print why and pass, unless `SQUALL_REQUIRE_SERVICES=1`,
//! in which case they fail. Keys and channels carry the process id, so concurrent runs do not
//! collide, and the tests never flush a database.
#![cfg(feature = "redis")]

mod services;

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::StreamExt;
use glommio::{spawn_local, timer::sleep, LocalExecutorBuilder};
use squall::db::redis::{Client, Cmd, RedisConfig, Subscriber, Value, DEFAULT_URL};
use squall::error::Kind;
use squall::StatusCode;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn redis_url() -> String {
    services::env_or("REDIS_URL", DEFAULT_URL)
}

/// The configuration from `REDIS_URL`, if a server answers there.
fn redis_config() -> Option<RedisConfig> {
    let config = RedisConfig::from_env().expect("REDIS_URL is a valid redis URL");
    let reachable =
        services::tcp_reachable(config.host(), config.port(), Duration::from_millis(500));
    let what = format!("redis at {}:{}", config.host(), config.port());
    services::require_or_skip(&what, reachable).then_some(config)
}

/// Runs `test` on a fresh glommio executor with the configuration, or skips.
fn with_redis<F, Fut>(test: F)
where
    F: FnOnce(RedisConfig) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(config) = redis_config() else {
        return;
    };
    on_executor(test(config));
}

fn on_executor(test: impl Future<Output = ()>) {
    LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor")
        .run(test);
}

/// A key or channel name private to this process and test.
fn name(what: &str) -> String {
    format!("squall-test:{}:{what}", std::process::id())
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// The id of the connection whose `CLIENT SETNAME` is `client_name`, from `CLIENT LIST`.
async fn connection_id(admin: &Client, client_name: &str) -> Option<String> {
    let list = admin.cmd(&["CLIENT", "LIST"]).await.expect("CLIENT LIST");
    let list = list.as_str().expect("CLIENT LIST is text").to_owned();
    list.lines().find_map(|line| {
        let field = |key: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        (field("name") == Some(client_name)).then(|| field("id").map(str::to_owned))?
    })
}

// ---------------------------------------------------------------------------------------------
// Commands and typed helpers
// ---------------------------------------------------------------------------------------------

#[test]
fn commands_round_trip() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let key = name("round-trip");
        let ok = redis.cmd(&["SET", &key, "v1"]).await.expect("SET");
        assert_eq!(ok, Value::Status(Bytes::from_static(b"OK")));
        assert_eq!(redis.cmd(&["GET", &key]).await.expect("GET"), bulk("v1"));

        // Binary-safe: CR, LF and NUL survive the round trip.
        let binary: &[u8] = b"a\r\nb\0c";
        let echoed = redis
            .cmd(&[b"ECHO".as_slice(), binary])
            .await
            .expect("ECHO");
        assert_eq!(echoed.as_bytes(), Some(binary));

        let mut cmd = Cmd::new("RPUSH");
        cmd.arg(name("list")).arg_int(1).arg("two").arg(b"3");
        assert_eq!(redis.query(&cmd).await.expect("RPUSH"), Value::Int(3));
        let range = redis
            .cmd(&["LRANGE", &name("list"), "0", "-1"])
            .await
            .expect("LRANGE");
        assert_eq!(range, Value::Array(vec![bulk("1"), bulk("two"), bulk("3")]));
        assert_eq!(
            redis.cmd(&["GET", &name("missing")]).await.expect("GET"),
            Value::Nil
        );

        // An error reply is an Err answering 500, with Redis's message.
        let e = redis
            .cmd(&["INCR", &name("list")])
            .await
            .expect_err("WRONGTYPE");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.message().contains("WRONGTYPE"), "{e}");
        let e = redis
            .cmd(&["NOSUCHCOMMAND"])
            .await
            .expect_err("unknown command");
        assert!(e.message().contains("unknown command"), "{e}");
        // ...and the connection carries on.
        redis.ping().await.expect("PING after errors");
        redis.del(&[key, name("list")]).await.expect("DEL");
    });
}

#[test]
fn typed_helpers() {
    with_redis(|config| async move {
        let redis = Client::connect(config).await.expect("connect");
        let (a, b, c) = (name("typed-a"), name("typed-b"), name("typed-c"));
        redis.del(&[&a, &b, &c]).await.expect("DEL");

        redis.ping().await.expect("PING");
        assert_eq!(redis.get(&a).await.expect("GET"), None);
        redis.set(&a, "alpha").await.expect("SET");
        assert_eq!(
            redis.get(&a).await.expect("GET").as_deref(),
            Some(&b"alpha"[..])
        );
        assert!(redis.exists(&a).await.expect("EXISTS"));

        assert_eq!(redis.incr(&b).await.expect("INCR"), 1);
        assert_eq!(redis.incr_by(&b, 41).await.expect("INCRBY"), 42);
        assert_eq!(redis.incr_by(&b, -2).await.expect("INCRBY"), 40);

        let values = redis.mget(&[&a, &b, &c]).await.expect("MGET");
        assert_eq!(
            values,
            vec![
                Some(Bytes::from_static(b"alpha")),
                Some(Bytes::from_static(b"40")),
                None
            ]
        );
        redis
            .mset(&[(&a, "one"), (&c, "three")])
            .await
            .expect("MSET");
        assert_eq!(
            redis.get(&c).await.expect("GET").as_deref(),
            Some(&b"three"[..])
        );

        assert!(!redis
            .set_nx(&a, "x", None)
            .await
            .expect("SET NX on existing"));
        assert_eq!(redis.ttl(&a).await.expect("PTTL"), None);
        assert!(redis
            .expire(&a, Duration::from_secs(60))
            .await
            .expect("PEXPIRE"));
        let ttl = redis.ttl(&a).await.expect("PTTL").expect("has a ttl");
        assert!(
            ttl > Duration::from_secs(58) && ttl <= Duration::from_secs(60),
            "{ttl:?}"
        );
        assert!(!redis
            .expire(name("typed-missing"), Duration::from_secs(1))
            .await
            .expect("PEXPIRE missing"));

        let h = name("typed-hash");
        assert!(redis.hset(&h, "f", "1").await.expect("HSET new"));
        assert!(!redis.hset(&h, "f", "2").await.expect("HSET again"));
        assert_eq!(
            redis.hget(&h, "f").await.expect("HGET").as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(redis.hget(&h, "g").await.expect("HGET"), None);

        assert_eq!(redis.del(&[&a, &b, &c, &h]).await.expect("DEL"), 4);
        assert_eq!(redis.del::<&str>(&[]).await.expect("DEL nothing"), 0);
        assert!(redis
            .mget::<&str>(&[])
            .await
            .expect("MGET nothing")
            .is_empty());
    });
}

#[test]
fn expiry_expires() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let (k, nx) = (name("expiring"), name("expiring-nx"));
        redis.del(&[&k, &nx]).await.expect("DEL");
        redis
            .set_ex(&k, "v", Duration::from_millis(60))
            .await
            .expect("SET PX");
        assert!(redis
            .set_nx(&nx, "v", Some(Duration::from_millis(60)))
            .await
            .expect("SET NX PX"));
        assert!(redis.get(&k).await.expect("GET").is_some());
        sleep(Duration::from_millis(150)).await;
        assert_eq!(redis.get(&k).await.expect("GET"), None);
        assert!(!redis.exists(&nx).await.expect("EXISTS"));
    });
}

#[test]
fn the_database_index_in_the_url_is_selected() {
    let url = redis_url();
    let has_db = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'));
    if has_db {
        eprintln!("skipping: REDIS_URL already names a database");
        return;
    }
    with_redis(|config| async move {
        let db1 = RedisConfig::from_url(&format!("{}/1", url.trim_end_matches('/'))).expect("url");
        assert_eq!(db1.db(), 1);
        let (db0, db1) = (Client::new(config), Client::new(db1));
        let key = name("db-index");
        db0.del(&[&key]).await.expect("DEL");
        db1.set_ex(&key, "in db 1", Duration::from_secs(10))
            .await
            .expect("SET in db 1");
        assert_eq!(db0.get(&key).await.expect("GET in db 0"), None);
        assert!(db1.get(&key).await.expect("GET in db 1").is_some());
        db1.del(&[&key]).await.expect("DEL");
    });
}

#[test]
fn a_host_name_is_resolved() {
    with_redis(|config| async move {
        if config.host() != "127.0.0.1" || redis_url().contains('@') {
            eprintln!("skipping: REDIS_URL is not a password-less 127.0.0.1");
            return;
        }
        let url = format!("redis://localhost:{}", config.port());
        let redis = Client::new(RedisConfig::from_url(&url).expect("url"));
        redis.ping().await.expect("PING via localhost");
    });
}

#[test]
fn a_rejected_password_is_a_clear_error() {
    with_redis(|config| async move {
        // Either the server has no password (AUTH is refused) or this one is wrong.
        let url = format!(
            "redis://:not-the-password-xyzzy@{}:{}",
            config.host(),
            config.port()
        );
        let client = Client::new(RedisConfig::from_url(&url).expect("url"));
        let e = client.ping().await.expect_err("AUTH must fail");
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message().contains("rejected AUTH"), "{e}");
        assert!(!e.to_string().contains("xyzzy"), "{e}");
    });
}

// ---------------------------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_callers_get_their_own_replies() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let redis = redis.clone();
                spawn_local(async move {
                    let payload = format!("payload-{i}");
                    let reply = redis.cmd(&["ECHO", &payload]).await.expect("ECHO");
                    assert_eq!(reply.as_str(), Some(payload.as_str()));
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
}

#[test]
fn explicit_pipelines() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let key = name("pipeline");
        redis.del(&[&key]).await.expect("DEL");

        let mut batch = redis.pipeline();
        batch
            .cmd(&["SET", &key, "10"])
            .cmd(&["INCR", &key])
            .query(Cmd::new("INCRBY").arg(&key).arg_int(5))
            .cmd(&["GET", &key]);
        assert_eq!(batch.len(), 4);
        let replies = batch.run().await.expect("pipeline");
        assert_eq!(
            replies,
            vec![
                Value::Status(Bytes::from_static(b"OK")),
                Value::Int(11),
                Value::Int(16),
                bulk("16"),
            ]
        );

        assert!(redis.pipeline().run().await.expect("empty").is_empty());

        // The first error reply fails the batch and names the command; the rest still ran.
        let mut batch = redis.pipeline();
        batch
            .cmd(&["INCR", &key])
            .cmd(&["HGET", &key, "f"])
            .cmd(&["INCR", &key]);
        let e = batch.run().await.expect_err("WRONGTYPE in the middle");
        assert!(
            e.message().contains("WRONGTYPE") && e.message().contains("command 1"),
            "{e}"
        );
        assert_eq!(
            redis.get(&key).await.expect("GET").as_deref(),
            Some(&b"18"[..])
        );

        // MULTI/EXEC: the replies are EXEC's.
        let mut tx = redis.pipeline();
        tx.atomic().cmd(&["INCR", &key]).cmd(&["GET", &key]);
        let replies = tx.run().await.expect("transaction");
        assert_eq!(replies, vec![Value::Int(19), bulk("19")]);

        // A command Redis refuses to queue aborts the transaction.
        let mut tx = redis.pipeline();
        tx.atomic().cmd(&["INCR", &key]).cmd(&["NOSUCHCOMMAND"]);
        assert!(tx.run().await.is_err());
        assert_eq!(
            redis.get(&key).await.expect("GET").as_deref(),
            Some(&b"19"[..])
        );
        redis.del(&[&key]).await.expect("DEL");
    });
}

/// N `SET`s three ways on one connection: awaited one by one, issued by N concurrent tasks
/// (pipelined automatically), and as one explicit pipeline. Prints the medians of 5 rounds.
#[test]
fn pipelining_beats_round_trips() {
    const N: usize = 1000;
    const ROUNDS: usize = 5;
    with_redis(|config| async move {
        let redis = Client::connect(config).await.expect("connect");
        let key = Rc::new(name("bench"));
        let mut sequential = Vec::new();
        let mut concurrent = Vec::new();
        let mut batched = Vec::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..N {
                redis.cmd(&["SET", key.as_str(), "x"]).await.expect("SET");
            }
            sequential.push(start.elapsed());

            let start = Instant::now();
            let tasks: Vec<_> = (0..N)
                .map(|_| {
                    let (redis, key) = (redis.clone(), Rc::clone(&key));
                    spawn_local(async move {
                        redis.cmd(&["SET", key.as_str(), "x"]).await.expect("SET");
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
            concurrent.push(start.elapsed());

            let start = Instant::now();
            let mut batch = redis.pipeline();
            for _ in 0..N {
                batch.cmd(&["SET", key.as_str(), "x"]);
            }
            assert_eq!(batch.run().await.expect("pipeline").len(), N);
            batched.push(start.elapsed());
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (s, c, b) = (median(sequential), median(concurrent), median(batched));
        println!(
            "redis: {N} SETs on one connection, median of {ROUNDS}: sequential {s:?}, \
             concurrent tasks {c:?} ({:.1}x), pipeline() {b:?} ({:.1}x)",
            s.as_secs_f64() / c.as_secs_f64(),
            s.as_secs_f64() / b.as_secs_f64()
        );
        assert!(b < s, "an explicit pipeline should beat {N} round trips");
        redis.del(&[key.as_str()]).await.expect("DEL");
    });
}

// ---------------------------------------------------------------------------------------------
// Failure, recovery and timeouts
// ---------------------------------------------------------------------------------------------

#[test]
fn recovers_after_client_kill() {
    with_redis(|config| async move {
        let redis = Client::new(config.clone());
        let admin = Client::new(config);
        let list = name("kill-list");
        let first_id = redis
            .cmd(&["CLIENT", "ID"])
            .await
            .expect("CLIENT ID")
            .as_int()
            .expect("an id");

        // A blocked BLPOP and two commands queued behind it are all in flight when the
        // connection is killed.
        let in_flight: Vec<_> = [
            vec!["BLPOP".to_owned(), list.clone(), "5".to_owned()],
            vec!["PING".to_owned()],
            vec!["ECHO".to_owned(), "queued".to_owned()],
        ]
        .into_iter()
        .map(|parts| {
            let redis = redis.clone();
            spawn_local(async move { redis.cmd(&parts).await })
        })
        .collect();
        sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let killed = admin
            .cmd(&["CLIENT", "KILL", "ID", &first_id.to_string()])
            .await
            .expect("CLIENT KILL");
        assert_eq!(killed, Value::Int(1));
        for task in in_flight {
            let e = task.await.expect_err("in-flight commands fail");
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
            assert!(e.message().contains("redis connection lost"), "{e}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "failure noticed late"
        );

        // The next command reconnects.
        let second_id = redis
            .cmd(&["CLIENT", "ID"])
            .await
            .expect("the next command reconnects")
            .as_int()
            .expect("an id");
        assert_ne!(first_id, second_id);
        redis.ping().await.expect("PING on the new connection");
    });
}

#[test]
fn command_timeout_answers_503_and_the_client_recovers() {
    with_redis(|config| async move {
        let redis = Client::new(config.command_timeout(Duration::from_millis(150)));
        redis.ping().await.expect("PING");
        let started = Instant::now();
        let e = redis
            .cmd(&["BLPOP", &name("timeout-list"), "2"])
            .await
            .expect_err("BLPOP outlives the command timeout");
        let waited = started.elapsed();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message().contains("timed out"), "{e}");
        assert!(
            waited >= Duration::from_millis(140) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        // Nothing arrived while it waited, so the connection was replaced, and the next
        // command does not queue behind the blocked BLPOP (which holds its connection for
        // 2 s): well under a second, even on a loaded machine, means a new connection.
        let started = Instant::now();
        redis.ping().await.expect("PING after a timeout");
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(1), "{waited:?}");
    });
}

#[test]
fn an_abandoned_command_does_not_shift_replies() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let abandoned = glommio::future::timeout(
            Duration::from_millis(20),
            redis.cmd(&["BLPOP", &name("abandoned-list"), "0.2"]),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up first");
        // BLPOP's nil reply arrives later and is discarded; ECHO gets its own reply.
        let reply = redis.cmd(&["ECHO", "mine"]).await.expect("ECHO");
        assert_eq!(reply, bulk("mine"));
        let reply = redis.cmd(&["ECHO", "still mine"]).await.expect("ECHO");
        assert_eq!(reply, bulk("still mine"));
    });
}

#[test]
fn dropping_the_last_client_closes_its_connection() {
    with_redis(|config| async move {
        let client_name = name("dropped").replace(':', "-");
        let admin = Client::new(config.clone());
        let redis = Client::new(config.client_name(client_name.clone()));
        redis.ping().await.expect("PING");
        assert!(connection_id(&admin, &client_name).await.is_some());
        drop(redis);
        let deadline = Instant::now() + Duration::from_secs(2);
        while connection_id(&admin, &client_name).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "connection still open after drop"
            );
            sleep(Duration::from_millis(10)).await;
        }
    });
}

#[test]
fn an_unreachable_server_answers_503_quickly() {
    on_executor(async {
        // Port 1 on loopback: nothing listens, the connect is refused at once.
        let config = RedisConfig::from_url("redis://127.0.0.1:1").expect("url");
        let redis = Client::new(config.clone());
        let started = Instant::now();
        let e = redis.ping().await.expect_err("nothing listens on port 1");
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            e.message()
                .contains("cannot connect to redis at 127.0.0.1:1"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let e = Client::connect(config).await.expect_err("connect fails");
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Subscriber::connect(RedisConfig::from_url("redis://127.0.0.1:1").expect("url"))
                .await
                .is_err()
        );
    });
}

#[test]
fn connect_timeout_bounds_a_silent_server() {
    on_executor(async {
        // A listener that never accepts: the TCP handshake completes (the backlog holds it)
        // but Redis never answers AUTH, so only the connect timeout ends the attempt.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let config = RedisConfig::from_url(&format!("redis://:pw@127.0.0.1:{port}"))
            .expect("url")
            .connect_timeout(Duration::from_millis(100))
            .command_timeout(Duration::from_secs(5));
        let started = Instant::now();
        let e = Client::new(config).ping().await.expect_err("times out");
        let waited = started.elapsed();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message().contains("timed out"), "{e}");
        assert!(
            waited >= Duration::from_millis(90) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        drop(silent);
    });
}

#[test]
fn bad_urls_are_configuration_errors() {
    for url in [
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1",
        // rediss:// is TLS (tests/redis_tls.rs); an unknown parameter is still an error.
        "rediss://127.0.0.1?verify=none",
        "redis://127.0.0.1:notaport",
        "redis://127.0.0.1/notadb",
        "redis://:secret@",
    ] {
        let e = RedisConfig::from_url(url).expect_err(url);
        assert_eq!(e.kind(), Kind::Config, "{url}");
        assert!(e.message().starts_with("invalid redis URL"), "{url}: {e}");
        assert!(!e.message().contains("secret"), "{url}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Publish/subscribe
// ---------------------------------------------------------------------------------------------

#[test]
fn pubsub_delivers_messages_in_order() {
    with_redis(|config| async move {
        let redis = Client::new(config);
        let (news, sport) = (name("news"), name("sport"));
        let pattern = format!("{}*", name("pat"));
        let mut sub = redis.subscriber().await.expect("subscriber");
        sub.subscribe(&[&news, &sport]).await.expect("SUBSCRIBE");
        sub.psubscribe(&[&pattern]).await.expect("PSUBSCRIBE");
        assert_eq!(sub.subscriptions(), 3);

        for i in 0..3 {
            let receivers = redis
                .publish(&news, format!("n{i}"))
                .await
                .expect("PUBLISH");
            assert_eq!(receivers, 1);
        }
        redis.publish(&sport, "goal").await.expect("PUBLISH");
        let matched = format!("{}-1", name("pat"));
        redis
            .publish(&matched, "via pattern")
            .await
            .expect("PUBLISH");

        let mut got = Vec::new();
        for _ in 0..5 {
            let msg = glommio::future::timeout(Duration::from_secs(2), sub.next())
                .await
                .expect("a message within 2 s")
                .expect("message");
            got.push(msg);
        }
        let payloads: Vec<_> = got.iter().map(|m| m.payload.clone()).collect();
        assert_eq!(
            payloads,
            ["n0", "n1", "n2", "goal", "via pattern"].map(Bytes::from)
        );
        assert_eq!(got[3].channel, Bytes::from(sport.clone()));
        assert_eq!(got[4].channel, Bytes::from(matched.clone()));
        assert_eq!(got[4].pattern, Some(Bytes::from(pattern.clone())));
        assert_eq!(got[0].pattern, None);

        sub.unsubscribe(&[&news]).await.expect("UNSUBSCRIBE");
        sub.punsubscribe(&[&pattern]).await.expect("PUNSUBSCRIBE");
        assert_eq!(sub.subscriptions(), 1);
        assert_eq!(redis.publish(&news, "nobody").await.expect("PUBLISH"), 0);
        assert_eq!(redis.publish(&matched, "nobody").await.expect("PUBLISH"), 0);
        assert_eq!(redis.publish(&sport, "still").await.expect("PUBLISH"), 1);

        // The same subscriber as a stream.
        let mut stream = Box::pin(sub.into_stream());
        let msg = glommio::future::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("a message within 2 s")
            .expect("streams never end")
            .expect("message");
        assert_eq!(msg.payload, Bytes::from_static(b"still"));
    });
}

#[test]
fn subscriber_resubscribes_after_client_kill() {
    with_redis(|config| async move {
        let client_name = name("subscriber").replace(':', "-");
        let channel = name("resubscribe");
        let redis = Client::new(config.clone());
        let mut sub = Subscriber::connect(config.client_name(client_name.clone()))
            .await
            .expect("subscriber");
        sub.subscribe(&[&channel]).await.expect("SUBSCRIBE");
        assert_eq!(redis.publish(&channel, "before").await.expect("PUBLISH"), 1);
        let msg = sub.next().await.expect("message before the kill");
        assert_eq!(msg.payload, Bytes::from_static(b"before"));

        let id = connection_id(&redis, &client_name)
            .await
            .expect("the subscriber's connection is listed");
        let killed = redis
            .cmd(&["CLIENT", "KILL", "ID", &id])
            .await
            .expect("KILL");
        assert_eq!(killed, Value::Int(1));

        // Publish until someone hears it: the subscriber is back only after it resubscribes.
        let publisher = {
            let (redis, channel) = (redis.clone(), channel.clone());
            spawn_local(async move {
                for _ in 0..200 {
                    if redis.publish(&channel, "after").await.expect("PUBLISH") > 0 {
                        return true;
                    }
                    sleep(Duration::from_millis(10)).await;
                }
                false
            })
        };
        let mut lost = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        let msg = loop {
            assert!(Instant::now() < deadline, "no message after the kill");
            match glommio::future::timeout(Duration::from_secs(3), sub.next()).await {
                Ok(Ok(msg)) => break msg,
                Ok(Err(e)) => {
                    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
                    lost += 1;
                }
                Err(_) => panic!("no message within 3 s"),
            }
        };
        assert_eq!(lost, 1, "the lost connection is reported once");
        assert_eq!(msg.payload, Bytes::from_static(b"after"));
        assert!(publisher.await, "the publisher found the subscriber again");
        assert_ne!(connection_id(&redis, &client_name).await, Some(id));
    });
}
