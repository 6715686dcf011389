//! PostgreSQL over TLS against real servers.
//!
//! - `sslmode=require`, `prefer` and `disable` against the server at `DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`), which must have `ssl = on` (Debian's
//!   default, with its snakeoil certificate). The server's own view, `pg_stat_ssl`, says
//!   whether a connection is encrypted.
//! - `verify-ca` and `verify-full` against a server this test starts itself (initdb as the
//!   `postgres` user, its own port and data directory under the temp dir, a certificate for
//!   `localhost` and 127.0.0.1 from a CA the test makes), stopped when the test ends, failed
//!   or not. It needs root (for `runuser`) and PostgreSQL's server binaries.
//!
//! When a server is missing, each test prints why and passes, unless
//! `SQUALL_REQUIRE_SERVICES=1`.
#![cfg(all(feature = "postgres", feature = "tls"))]

#[allow(dead_code)]
#[path = "support/certs.rs"]
mod certs;
mod services;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::LocalExecutorBuilder;
use squall::db::postgres::{PgConfig, PgPool, SslMode, DEFAULT_DATABASE_URL};

use certs::{CertDir, TestCa};

const IS_ENCRYPTED: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn on_executor<T>(body: impl std::future::Future<Output = T>) -> T {
    LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor")
        .run(body)
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// A pool of one connection, opened now.
async fn pool(url: &str) -> Result<Rc<PgPool>, squall::Error> {
    let config = PgConfig::from_url(url)?
        .pool_size(1)
        .connect_timeout(Duration::from_secs(3))
        .application_name("squall-test-tls");
    PgPool::connect(config).await
}

/// Whether the server sees the pool's connection as encrypted.
async fn encrypted(pool: &PgPool) -> bool {
    pool.get()
        .await
        .expect("connection")
        .query_one(IS_ENCRYPTED, &[])
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[test]
fn require_encrypts_and_disable_does_not() {
    on_executor(async {
        let url = services::env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
        let plain = match pool(&with_param(&url, "sslmode=disable")).await {
            Ok(pool) => pool,
            Err(e) => {
                services::require_or_skip(&format!("PostgreSQL at {url} ({e})"), false);
                return;
            }
        };
        assert!(!encrypted(&plain).await, "sslmode=disable is plain text");

        let tls = pool(&with_param(&url, "sslmode=require"))
            .await
            .expect("sslmode=require against a server with ssl = on");
        assert_eq!(tls.config().tls.mode, SslMode::Require);
        assert!(encrypted(&tls).await, "sslmode=require is encrypted");
        let conn = tls.get().await.expect("connection");
        let version: String = conn
            .query_one(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_ssl")
            .get(0);
        assert!(version.starts_with("TLSv1."), "{version}");

        // libpq's default, and squall's: TLS because the server offers it.
        let prefer = pool(&url).await.expect("default sslmode");
        assert_eq!(prefer.config().tls.mode, SslMode::Prefer);
        assert!(
            encrypted(&prefer).await,
            "sslmode=prefer uses the server's TLS"
        );

        // The server's snakeoil certificate is self-signed: a CA it was not issued by fails.
        let ca = TestCa::new("squall test unrelated CA");
        let dir = CertDir::new("pg-unrelated");
        let root = dir.write("root.crt", &ca.cert_pem());
        let err = pool(&with_param(
            &url,
            &format!("sslmode=verify-ca&sslrootcert={}", root.display()),
        ))
        .await
        .expect_err("a certificate from another CA");
        assert!(err.to_string().contains("certificate"), "{err}");
    });
}

/// A PostgreSQL server of the test's own, stopped and removed when dropped.
struct OwnServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (backends end, no checkpoint wait).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed PostgreSQL's `bin` directory.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn chown_postgres(path: &Path) -> Result<(), String> {
    run(Command::new("chown").arg("-R").arg("postgres:").arg(path))
}

/// Starts a server with `ssl = on` and `server.crt`/`server.key` from `certs`, password
/// (SCRAM) authentication for TCP, user `postgres` with password `secret`.
fn start_server(server_cert: &str, server_key: &str) -> Result<OwnServer, String> {
    let bin = postgres_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql")?;
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (runuser is needed to run PostgreSQL as postgres)".into());
    }
    let dir = std::env::temp_dir().join(format!("squall-pg-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let server = |child| OwnServer {
        child,
        dir: dir.clone(),
        port: 0,
    };
    let data = dir.join("data");
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let pwfile = dir.join("pwfile");
    std::fs::write(&cert, server_cert).map_err(|e| e.to_string())?;
    std::fs::write(&key, server_key).map_err(|e| e.to_string())?;
    std::fs::write(&pwfile, "secret\n").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    chown_postgres(&dir)?;
    let as_postgres = |program: &Path| {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    };
    run(as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--no-sync", "--no-instructions"]))?;
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let child = as_postgres(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "ssl=on", "-c", "fsync=off"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", cert.display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", key.display()))
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let mut server = server(child);
    server.port = port;
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "postgres did not listen on port {port} within 20 s"
            ));
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("postgres exited at startup: {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

#[test]
fn verify_ca_and_verify_full_check_the_certificate() {
    let ca = TestCa::new("squall test CA");
    let issued = ca.server(&["localhost", "127.0.0.1"]);
    let server = match start_server(&issued.cert_pem, &issued.key_pem) {
        Ok(server) => server,
        Err(reason) => {
            services::require_or_skip(
                &format!("a PostgreSQL server of the test's own ({reason})"),
                false,
            );
            return;
        }
    };
    let port = server.port;
    let dir = CertDir::new("pg-verify");
    let root = dir.write("root.crt", &ca.cert_pem());
    let other_root = dir.write("other.crt", &TestCa::new("another CA").cert_pem());
    let url = |host: &str, params: &str| {
        format!("postgres://postgres:secret@{host}:{port}/postgres?{params}")
    };
    let verify = |mode: &str, root: &Path| format!("sslmode={mode}&sslrootcert={}", root.display());

    on_executor(async {
        // The certificate names localhost and 127.0.0.1: both pass verify-full.
        for host in ["localhost", "127.0.0.1"] {
            let tls = pool(&url(host, &verify("verify-full", &root)))
                .await
                .unwrap_or_else(|e| panic!("verify-full via {host}: {e}"));
            assert!(encrypted(&tls).await);
        }

        // tls-server-end-point channel binding: SCRAM-SHA-256-PLUS or no connection.
        let bound = pool(&url(
            "localhost",
            &format!("{}&channel_binding=require", verify("verify-full", &root)),
        ))
        .await
        .expect("SCRAM with channel binding");
        assert!(encrypted(&bound).await);

        // A name the certificate does not carry (dialled at 127.0.0.1 by hostaddr).
        let misnamed = url(
            "db.example.com",
            &format!("hostaddr=127.0.0.1&{}", verify("verify-full", &root)),
        );
        let err = pool(&misnamed).await.expect_err("wrong host name");
        let text = err.to_string();
        assert!(
            text.contains("certificate") && text.contains("db.example.com"),
            "the error says the certificate does not name the host: {text}"
        );
        println!("verify-full, wrong name: {text}");

        // verify-ca checks the chain only: the same connection passes.
        let chain_only = url(
            "db.example.com",
            &format!("hostaddr=127.0.0.1&{}", verify("verify-ca", &root)),
        );
        let tls = pool(&chain_only).await.expect("verify-ca ignores the name");
        assert!(encrypted(&tls).await);

        // require with a root certificate verifies the chain, as libpq does.
        let tls = pool(&url("localhost", &verify("require", &root)))
            .await
            .expect("require with the right root");
        assert!(encrypted(&tls).await);

        // Another CA: refused in every verifying mode.
        for mode in ["verify-ca", "verify-full", "require"] {
            let err = pool(&url("localhost", &verify(mode, &other_root)))
                .await
                .expect_err("a CA that did not issue the certificate");
            let text = err.to_string();
            assert!(text.contains("certificate"), "{mode}: {text}");
            println!("{mode}, wrong CA: {text}");
        }

        // Cancelling a timed-out query goes over TLS too.
        let config = PgConfig::from_url(&url("localhost", &verify("verify-full", &root)))
            .expect("url")
            .pool_size(1)
            .query_timeout(Duration::from_millis(300));
        let slow = PgPool::connect(config).await.expect("pool");
        let conn = slow.get().await.expect("connection");
        let err = conn
            .query_one("SELECT pg_sleep(30)::text", &[])
            .await
            .expect_err("times out");
        assert_eq!(err.status(), squall::StatusCode::SERVICE_UNAVAILABLE);
        let watcher = bound.get().await.expect("connection");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let running: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'",
                    &[],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            if running == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cancel request (over TLS) should stop the query"
            );
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    });
    drop(server);
}
