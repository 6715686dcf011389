//! Opening a connection: connect, then `AUTH`, `SELECT` and `CLIENT SETNAME`; and reading
//! whole frames from a socket that has no reader task.

use std::future::poll_fn;
use std::io;

use crate::net::Socket;
use bytes::BytesMut;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use smallvec::SmallVec;

use super::cmd::encode;
use super::config::RedisConfig;
use super::conn::poll_read_into;
use crate::db::dial;
use crate::error::Error;

/// [`open`] within the connect timeout.
pub(super) async fn open_in_time(config: &RedisConfig) -> Result<(Socket, BytesMut), Error> {
    let timeout = config.connect_timeout;
    match crate::deadline::within(timeout, open(config)).await {
        Ok(result) => result,
        Err(_) => Err(Error::unavailable(format!(
            "connecting to redis at {}:{} timed out after {timeout:?}",
            config.host, config.port
        ))),
    }
}

/// Connects and runs `AUTH`, `SELECT` and `CLIENT SETNAME` as configured. Returns the stream
/// and any bytes read past the handshake replies.
async fn open(config: &RedisConfig) -> Result<(Socket, BytesMut), Error> {
    let target = || format!("{}:{}", config.host, config.port);
    let addrs = dial::resolve(&config.host, config.port)
        .await
        .map_err(|e| {
            Error::unavailable(format!("cannot resolve redis host {:?}", config.host))
                .with_source(e)
        })?;
    let mut stream = dial::connect_any(&addrs).await.map_err(|e| {
        Error::unavailable(format!("cannot connect to redis at {}", target())).with_source(e)
    })?;

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
    stream: &mut Socket,
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
