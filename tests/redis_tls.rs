//! The Redis client over TLS (`rediss://`) against real servers the tests start themselves:
//! `redis-server` with TLS only (`--port 0 --tls-port ...`) on a free port, certificates
//! from a CA each test makes, stopped when the test ends, failed or not.
//!
//! When `redis-server` is missing or built without TLS, each test prints why and passes,
//! unless `SQUALL_REQUIRE_SERVICES=1`.
#![cfg(all(feature = "redis", feature = "tls"))]

#[allow(dead_code)]
#[path = "support/certs.rs"]
mod certs;
mod services;

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::{timer::sleep, LocalExecutorBuilder};
use squall::db::redis::{Client, RedisConfig, Subscriber, Value};
use squall::StatusCode;

use certs::{CertDir, TestCa};

/// Whether clients must present a certificate (`--tls-auth-clients`).
#[derive(Clone, Copy)]
enum ClientAuth {
    Optional,
    Required,
}

/// A TLS-only redis-server, killed when dropped, with the PEM files of its CA and of a
/// client certificate that CA issued.
struct Server {
    child: Child,
    port: u16,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// Holds the files; removed on drop.
    _dir: CertDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `rediss://127.0.0.1:<port>` trusting the server's CA, without a client certificate.
    fn config(&self) -> RedisConfig {
        RedisConfig::from_url(&format!("rediss://127.0.0.1:{}", self.port))
            .expect("url")
            .tls_ca(&self.ca)
            .connect_timeout(Duration::from_secs(2))
    }

    /// [`Server::config`] with the client certificate.
    fn config_with_cert(&self) -> RedisConfig {
        self.config()
            .tls_client_cert(&self.client_cert, &self.client_key)
    }
}

/// Starts a server whose certificate carries `names`, or says why it cannot.
fn start(auth: ClientAuth, names: &[&str]) -> Result<Server, String> {
    let ca = TestCa::new("squall redis test CA");
    let dir = CertDir::new("redis");
    let server = ca.server(names);
    let client = ca.client("squall-test-client");
    let server_cert = dir.write("server.crt", &server.cert_pem);
    let server_key = dir.write("server.key", &server.key_pem);
    let ca_file = dir.write("ca.crt", &ca.cert_pem());
    let client_cert = dir.write("client.crt", &client.cert_pem);
    let client_key = dir.write("client.key", &client.key_pem);
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let auth = match auth {
        ClientAuth::Optional => "optional",
        ClientAuth::Required => "yes",
    };
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-port",
            &port.to_string(),
        ])
        .arg("--tls-cert-file")
        .arg(&server_cert)
        .arg("--tls-key-file")
        .arg(&server_key)
        .arg("--tls-ca-cert-file")
        .arg(&ca_file)
        .args([
            "--tls-auth-clients",
            auth,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "redis-server exited ({status}): {}",
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&output.stderr).lines())
                    .last()
                    .unwrap_or("")
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("redis-server did not listen on {port} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server {
        child,
        port,
        ca: ca_file,
        client_cert,
        client_key,
        _dir: dir,
    })
}

/// Runs `test` on a glommio executor with a fresh server, or skips.
fn with_server<F, Fut>(auth: ClientAuth, names: &[&str], test: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = match start(auth, names) {
        Ok(server) => server,
        Err(reason) => {
            services::require_or_skip(&format!("redis-server with TLS ({reason})"), false);
            return;
        }
    };
    LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor")
        .run(test(server));
}

#[test]
fn commands_pipelines_and_pubsub_run_over_tls() {
    with_server(
        ClientAuth::Optional,
        &["localhost", "127.0.0.1"],
        |server| async move {
            // The server listens for TLS only (--port 0), so every reply below came over TLS.
            let redis = Client::new(server.config());
            assert!(redis.config().is_tls());
            redis.set("tls:greeting", "hello").await.expect("SET");
            assert_eq!(
                redis.get("tls:greeting").await.expect("GET"),
                Some(Bytes::from_static(b"hello"))
            );
            let big = "x".repeat(200_000);
            redis.set("tls:big", &big).await.expect("SET of 200 kB");
            assert_eq!(
                redis.get("tls:big").await.expect("GET").map(|b| b.len()),
                Some(big.len())
            );
            let mut batch = redis.pipeline();
            for _ in 0..100 {
                batch.cmd(&["INCR", "tls:counter"]);
            }
            let replies = batch.run().await.expect("pipeline");
            assert_eq!(replies.last(), Some(&Value::Int(100)));

            // The host name works too (the certificate names localhost), and so does the URL form.
            let url = format!(
                "rediss://localhost:{}/2?ca={}",
                server.port,
                server.ca.display()
            );
            let by_name = Client::new(RedisConfig::from_url(&url).expect("url"));
            by_name.ping().await.expect("PING via localhost");

            let mut sub = Subscriber::connect(server.config())
                .await
                .expect("subscriber");
            sub.subscribe(&["tls:news"]).await.expect("SUBSCRIBE");
            assert_eq!(redis.publish("tls:news", "one").await.expect("PUBLISH"), 1);
            assert_eq!(redis.publish("tls:news", "two").await.expect("PUBLISH"), 1);
            for expected in ["one", "two"] {
                let msg = sub.next().await.expect("message");
                assert_eq!(msg.payload, Bytes::from(expected));
            }
        },
    );
}

#[test]
fn client_certificates_are_presented_when_required() {
    with_server(ClientAuth::Required, &["127.0.0.1"], |server| async move {
        let with_cert = Client::new(server.config_with_cert());
        with_cert
            .ping()
            .await
            .expect("PING with a client certificate");

        let without = Client::new(server.config());
        let err = without.ping().await.expect_err("no client certificate");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
        println!("no client certificate: {err}");

        // A certificate from a CA the server does not trust.
        let stranger = TestCa::new("stranger").client("stranger");
        let dir = CertDir::new("redis-stranger");
        let cert = dir.write("client.crt", &stranger.cert_pem);
        let key = dir.write("client.key", &stranger.key_pem);
        let refused = Client::new(server.config().tls_client_cert(&cert, &key));
        let err = refused
            .ping()
            .await
            .expect_err("an untrusted client certificate");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
        println!("untrusted client certificate: {err}");

        // A key that does not belong to the certificate is a configuration error, at once.
        let mismatched = Client::new(server.config().tls_client_cert(&server.client_cert, &key));
        let err = mismatched
            .ping()
            .await
            .expect_err("key of another certificate");
        assert_eq!(err.kind(), squall::error::Kind::Config, "{err}");
        println!("mismatched key: {err}");
    });
}

#[test]
fn the_wrong_ca_or_name_is_refused() {
    // The certificate names only redis.example, not the 127.0.0.1 connected to.
    with_server(
        ClientAuth::Optional,
        &["redis.example"],
        |server| async move {
            let err = Client::new(server.config())
                .ping()
                .await
                .expect_err("the certificate does not name 127.0.0.1");
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
            assert!(err.to_string().contains("not valid for name"), "{err}");
            println!("wrong name: {err}");

            let other = TestCa::new("another CA");
            let dir = CertDir::new("redis-other-ca");
            let other_ca = dir.write("ca.crt", &other.cert_pem());
            let url = format!(
                "rediss://127.0.0.1:{}?ca={}",
                server.port,
                other_ca.display()
            );
            let err = Client::new(RedisConfig::from_url(&url).expect("url"))
                .ping()
                .await
                .expect_err("a CA that did not issue the certificate");
            assert!(err.to_string().contains("UnknownIssuer"), "{err}");
            println!("wrong CA: {err}");

            let err = Client::new(server.config().tls_ca(dir.path().join("missing.crt")))
                .ping()
                .await
                .expect_err("no such CA file");
            assert_eq!(err.kind(), squall::error::Kind::Config, "{err}");
            assert!(err.to_string().contains("missing.crt"), "{err}");

            // Skipping verification connects anyway (encrypted, unauthenticated).
            let url = format!(
                "rediss://127.0.0.1:{}?insecure_skip_verify=true",
                server.port
            );
            Client::new(RedisConfig::from_url(&url).expect("url"))
                .ping()
                .await
                .expect("insecure_skip_verify accepts any certificate");
        },
    );
}

#[test]
fn clients_and_subscribers_reconnect_over_tls() {
    with_server(ClientAuth::Required, &["127.0.0.1"], |server| async move {
        let redis = Client::new(server.config_with_cert());
        let admin = Client::new(server.config_with_cert());
        let first: i64 = redis
            .cmd(&["CLIENT", "ID"])
            .await
            .expect("CLIENT ID")
            .as_int()
            .expect("an id");
        let killed = admin
            .cmd(&["CLIENT", "KILL", "ID", &first.to_string()])
            .await
            .expect("CLIENT KILL");
        assert_eq!(killed, Value::Int(1));
        // The first command after the kill may be the one that finds the connection dead.
        let deadline = Instant::now() + Duration::from_secs(3);
        let second = loop {
            match redis.cmd(&["CLIENT", "ID"]).await {
                Ok(id) => break id.as_int().expect("an id"),
                Err(e) => assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}"),
            }
            assert!(Instant::now() < deadline, "no reconnect within 3 s");
            sleep(Duration::from_millis(10)).await;
        };
        assert_ne!(first, second, "a new connection");

        let mut sub = Subscriber::connect(server.config_with_cert().client_name("tls-sub"))
            .await
            .expect("subscriber");
        sub.subscribe(&["tls:again"]).await.expect("SUBSCRIBE");
        let killed = admin
            .cmd(&["CLIENT", "KILL", "USER", "default", "SKIPME", "yes"])
            .await
            .expect("CLIENT KILL");
        assert!(matches!(killed, Value::Int(n) if n >= 2), "{killed:?}");
        let publisher = {
            let admin = admin.clone();
            glommio::spawn_local(async move {
                for _ in 0..300 {
                    if let Ok(n) = admin.publish("tls:again", "back").await {
                        if n > 0 {
                            return true;
                        }
                    }
                    sleep(Duration::from_millis(10)).await;
                }
                false
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let msg = loop {
            assert!(Instant::now() < deadline, "no message after the kill");
            if let Ok(msg) = sub.next().await {
                break msg;
            }
        };
        assert_eq!(msg.payload, Bytes::from_static(b"back"));
        assert!(publisher.await, "the subscriber came back");
        redis.ping().await.expect("the client is back too");
    });
}
