//! Opening a connection: connect, the TLS handshake for `rediss://`, then `AUTH`, `SELECT`
//! and `CLIENT SETNAME`; and reading whole frames from a stream that has no reader task.

use std::future::poll_fn;
use std::io;

use bytes::BytesMut;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use smallvec::SmallVec;

use super::cmd::encode;
use super::config::RedisConfig;
use super::conn::poll_read_into;
use crate::db::dial;
use crate::db::stream::Stream;
use crate::error::Error;

/// This core's TLS connector for one client or subscriber, built on its first connect (the
/// certificate files are read then) and kept for its reconnects, whose sessions it resumes.
#[derive(Default)]
pub(super) struct TlsCache {
    #[cfg(feature = "tls")]
    connector: std::cell::OnceCell<crate::tls::client::Connector>,
}

impl TlsCache {
    #[cfg(feature = "tls")]
    fn connector(
        &self,
        tls: &super::config::RedisTls,
    ) -> Result<&crate::tls::client::Connector, Error> {
        use crate::tls::client::{connector, Identity, Roots, Settings, Verify};
        if let Some(connector) = self.connector.get() {
            return Ok(connector);
        }
        let built = connector(&Settings {
            verify: if tls.insecure_skip_verify {
                Verify::Nothing
            } else {
                Verify::Full
            },
            roots: Some(tls.ca.as_deref().map_or(Roots::System, Roots::File)),
            identity: tls
                .client_cert
                .as_ref()
                .map(|(cert, key)| Identity { cert, key }),
            alpn: None,
        })
        .map_err(|e| Error::config(format!("redis TLS: {}", e.message())))?;
        Ok(self.connector.get_or_init(|| built))
    }
}

/// [`open`] within the connect timeout.
pub(super) async fn open_in_time(
    config: &RedisConfig,
    tls: &TlsCache,
) -> Result<(Stream, BytesMut), Error> {
    let timeout = config.connect_timeout;
    match crate::deadline::within(timeout, open(config, tls)).await {
        Ok(result) => result,
        Err(_) => Err(Error::unavailable(format!(
            "connecting to redis at {}:{} timed out after {timeout:?}",
            config.host, config.port
        ))),
    }
}

/// Connects (over TLS if configured) and runs `AUTH`, `SELECT` and `CLIENT SETNAME` as
/// configured. Returns the stream and any bytes read past the handshake replies.
async fn open(config: &RedisConfig, tls: &TlsCache) -> Result<(Stream, BytesMut), Error> {
    let target = || format!("{}:{}", config.host, config.port);
    #[cfg(feature = "tls")]
    let connector = match &config.tls {
        Some(settings) => Some(tls.connector(settings)?),
        None => None,
    };
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    let addrs = dial::resolve(&config.host, config.port)
        .await
        .map_err(|e| {
            Error::unavailable(format!("cannot resolve redis host {:?}", config.host))
                .with_source(e)
        })?;
    let socket = dial::connect_any(&addrs).await.map_err(|e| {
        Error::unavailable(format!("cannot connect to redis at {}", target())).with_source(e)
    })?;
    #[cfg(feature = "tls")]
    let mut stream = match connector {
        Some(connector) => {
            let session = connector.connect(&config.host, socket).await.map_err(|e| {
                Error::unavailable(format!("TLS handshake with redis at {} failed", target()))
                    .with_source(e)
            })?;
            Stream::Tls(Box::new(session))
        }
        None => Stream::Plain(socket),
    };
    #[cfg(not(feature = "tls"))]
    let mut stream = Stream::Plain(socket);

    let mut out = BytesMut::new();
    let mut sent: SmallVec<[&str; 3]> = SmallVec::new();
    if let Some(password) = &config.password {
        match &config.username {
            Some(user) => encode(
                &mut out,
                [b"AUTH".as_slice(), user.as_bytes(), password.as_bytes()].into_iter(),
            )?,
            None => encode(
                &mut out,
                [b"AUTH".as_slice(), password.as_bytes()].into_iter(),
            )?,
        }
        sent.push("AUTH");
    }
    if config.db != 0 {
        let db = itoa::Buffer::new().format(config.db).to_owned();
        encode(&mut out, [b"SELECT".as_slice(), db.as_bytes()].into_iter())?;
        sent.push("SELECT");
    }
    if let Some(name) = &config.client_name {
        encode(
            &mut out,
            [b"CLIENT".as_slice(), b"SETNAME", name.as_bytes()].into_iter(),
        )?;
        sent.push("CLIENT SETNAME");
    }
    let mut buf = BytesMut::new();
    if sent.is_empty() {
        return Ok((stream, buf));
    }
    let lost = |e: io::Error| {
        Error::unavailable(format!(
            "redis connection to {} lost while connecting",
            target()
        ))
        .with_source(e)
    };
    futures_lite::AsyncWriteExt::write_all(&mut stream, &out)
        .await
        .map_err(lost)?;
    futures_lite::AsyncWriteExt::flush(&mut stream)
        .await
        .map_err(lost)?;
    let mut scratch = [0; 512];
    for command in sent {
        match read_frame(&mut stream, &mut scratch, &mut buf)
            .await
            .map_err(lost)?
        {
            BytesFrame::Error(message) => {
                return Err(Error::unavailable(format!(
                    "redis at {} rejected {command}: {message}",
                    target()
                )))
            }
            _ => continue,
        }
    }
    Ok((stream, buf))
}

/// Reads until `buf` holds one complete frame, and takes it.
pub(super) async fn read_frame(
    stream: &mut Stream,
    scratch: &mut [u8],
    buf: &mut BytesMut,
) -> io::Result<BytesFrame> {
    loop {
        match decode_bytes_mut(buf) {
            Ok(Some((frame, _, _))) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        let n = poll_fn(|cx| poll_read_into(stream, cx, scratch, buf)).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed by the server",
            ));
        }
    }
}
