//! Raw WebSocket clients for loopback tests: an upgrade written byte for byte, client frames
//! built by hand (so tests can send what a well-behaved client never would) and server frames
//! read strictly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The `Sec-WebSocket-Key` every raw handshake sends (RFC 6455's example).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for `path`, with `extra` header lines (each ending in CRLF).
pub fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

/// Sends a raw upgrade request and returns the stream and the response head.
pub fn raw_upgrade(addr: SocketAddr, request: &str) -> (TcpStream, String) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(super::READ_TIMEOUT))
        .expect("timeout");
    upgrade_over(stream, request)
}

/// Sends a raw upgrade request over a stream the test connected (with its read timeout
/// set) and returns it with the response head.
pub fn upgrade_over<S: Read + Write>(mut stream: S, request: &str) -> (S, String) {
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read the response head");
        assert_eq!(n, 1, "the server closed during the handshake: {head:?}");
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// An opened raw connection.
pub fn raw_open(addr: SocketAddr, path: &str) -> TcpStream {
    let (stream, head) = raw_upgrade(addr, &handshake(path, ""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// A client frame: FIN set, the given opcode, masked unless `masked` is false.
pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads one server frame: (opcode, payload). Server frames are never masked.
pub fn read_frame(stream: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    assert_eq!(head[1] & 0x80, 0, "server frames must not be masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n)?;
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n)?;
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload)?;
    Ok((head[0] & 0x0f, payload))
}

/// Reads frames until a close frame; returns its code.
pub fn expect_close_code(stream: &mut impl Read) -> u16 {
    loop {
        let (opcode, payload) = read_frame(stream).expect("a close frame");
        if opcode == 0x8 {
            assert!(payload.len() >= 2, "close frame without a code");
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}
