//! Opening one connection: dialling the configured addresses in turn, the startup handshake
//! (TLS included) through tokio-postgres, and the task that drives the connection afterwards.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::conn::{describe, Conn};
use super::pool::Settings;
use crate::db::dial;
use crate::net::Socket;

/// One address to dial.
#[derive(Clone, Debug)]
// Without TLS nothing reads the host name beside an address.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(super) enum Target {
    /// `hostaddr`, with the `host` given beside it if any.
    Addr(SocketAddr, Option<String>),
    Host(String, u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr, _) => write!(f, "{addr}"),
            Target::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl Target {
    pub(super) async fn dial(&self) -> std::io::Result<Socket> {
        match self {
            Target::Addr(addr, _) => dial::connect_any(&[*addr]).await,
            Target::Host(host, port) => dial::connect_any(&dial::resolve(host, *port).await?).await,
        }
    }

    /// The name TLS sends and checks the certificate against: the host, else the address.
    #[cfg(feature = "tls")]
    fn server_name(&self) -> String {
        match self {
            Target::Addr(_, Some(host)) | Target::Host(host, _) => host.clone(),
            Target::Addr(addr, None) => addr.ip().to_string(),
        }
    }
}

/// How a connection to `target` (or a cancel request) negotiates TLS: as the pool's
/// `sslmode` says, with the pool's connector.
#[cfg(feature = "tls")]
pub(super) fn tls_for(settings: &Settings, target: &Target) -> super::tls::Connect {
    super::tls::Connect::new(settings.tls.clone(), target.server_name())
}

/// Without the `tls` feature the configuration allows only `disable` and `prefer`, which
/// tokio-postgres then treats alike.
#[cfg(not(feature = "tls"))]
pub(super) fn tls_for(_: &Settings, _: &Target) -> tokio_postgres::NoTls {
    tokio_postgres::NoTls
}

/// Opens one connection, trying each configured address in turn under the connect timeout.
pub(super) async fn open(settings: &Rc<Settings>) -> Result<Conn, Rc<str>> {
    let limit = settings.config.connect_timeout;
    let mut last = String::from("no address to connect to");
    for target in &settings.targets {
        match crate::deadline::within(limit, open_one(settings, target)).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => last = format!("cannot connect to postgres at {target}: {e}"),
            Err(_) => {
                last = format!("cannot connect to postgres at {target}: timed out after {limit:?}")
            }
        }
        tracing::warn!(target: "squall::db", "{last}");
    }
    Err(last.into())
}

async fn open_one(settings: &Rc<Settings>, target: &Target) -> Result<Conn, String> {
    let pg = &settings.config.postgres;
    let stream = target.dial().await.map_err(|e| e.to_string())?;
    if pg.get_keepalives() {
        set_keepalive(&stream, pg);
    }
    let (client, connection) = pg
        .connect_raw(stream.compat(), tls_for(settings, target))
        .await
        .map_err(|e| describe(&e))?;
    glommio::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::info!(target: "squall::db", "postgres connection closed: {}", describe(&e));
        }
    })
    .detach();
    Ok(Conn {
        client,
        statements: RefCell::new(HashMap::new()),
        broken: Cell::new(false),
        in_flight: Cell::new(0),
        settings: settings.clone(),
        target: target.clone(),
    })
}

/// TCP keepalive as the connection string asks (`keepalives`, `keepalives_idle`, ...), so a
/// server host that vanished without closing is noticed on idle connections too.
fn set_keepalive(stream: &Socket, pg: &tokio_postgres::Config) {
    let mut keepalive = socket2::TcpKeepalive::new().with_time(pg.get_keepalives_idle());
    if let Some(interval) = pg.get_keepalives_interval() {
        keepalive = keepalive.with_interval(interval);
    }
    if let Some(retries) = pg.get_keepalives_retries() {
        keepalive = keepalive.with_retries(retries);
    }
    if let Err(e) = stream.as_socket2().set_tcp_keepalive(&keepalive) {
        tracing::debug!(target: "squall::db", "cannot set tcp keepalive: {e}");
    }
}
