//! The server over TLS, with real clients: rustls (tests/support/tls_client.rs), curl,
//! `openssl s_client` and Python's `ssl`. Certificates are made by each test
//! (tests/support/certs.rs).

#![cfg(feature = "tls")]

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use squall::tls::{ClientAuth, TlsConfig};
use squall::ws::{self, WebSocket};
use squall::{App, Request, Response, RunningServer};
use support::certs::{CertDir, Issued, TestCa};
use support::tls_client::{serial_of, ClientOptions, TlsStream};
use support::Client;

/// The test application: who am I talking to, bodies both ways, a WebSocket echo.
fn app() -> App {
    App::new()
        .get("/plaintext", |_req| async { "Hello, World!" })
        .get("/info", |req: Request| async move {
            let tls = req.tls().expect("a TLS request");
            format!(
                "{:?} alpn={} sni={} client_certs={} secure={}",
                tls.protocol().expect("version"),
                tls.alpn().map(String::from_utf8_lossy).unwrap_or_default(),
                tls.server_name().unwrap_or("-"),
                tls.peer_certificates().len(),
                req.is_secure()
            )
        })
        .get("/client-serial", |req: Request| async move {
            let tls = req.tls().expect("a TLS request");
            match tls.peer_certificates().first() {
                Some(cert) => serial_of(cert).to_string(),
                None => "none".to_owned(),
            }
        })
        .post("/echo", |mut req: Request| async move {
            let body = req.bytes().await?;
            Ok::<_, squall::Error>(Response::with_body(squall::response::OCTET_STREAM, body))
        })
        .get("/mib", |_req| async { vec![b'x'; 1 << 20] })
        .get("/ws", |req: Request| async move {
            Ok::<_, ws::Rejection>(ws::Upgrade::new(req)?.open(|socket: WebSocket| async move {
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            }))
        })
}

/// A CA, a server certificate for localhost and 127.0.0.1, and their files.
struct Pki {
    ca: TestCa,
    dir: CertDir,
    server: Issued,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let ca = TestCa::new("squall test CA");
        let dir = CertDir::new(label);
        let server = ca.server(&["localhost", "127.0.0.1"]);
        dir.write("server.pem", &server.cert_pem);
        dir.write("server.key", &server.key_pem);
        dir.write("ca.pem", &ca.cert_pem());
        Pki { ca, dir, server }
    }

    fn tls(&self) -> TlsConfig {
        TlsConfig::new(
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn client(&self) -> ClientOptions<'_> {
        // The CA PEM lives as long as the Pki; leak one copy per call for the borrow.
        ClientOptions::new(Box::leak(self.ca.cert_pem().into_boxed_str()))
    }
}

fn start(tls: TlsConfig) -> RunningServer {
    support::start_with(support::config().tls(tls), app)
}

fn connect(addr: SocketAddr, options: &ClientOptions<'_>) -> Client<TlsStream> {
    let stream = TlsStream::connect(addr, "localhost", options.config()).expect("TLS handshake");
    Client::over_stream(stream)
}

fn get(client: &mut Client<TlsStream>, path: &str) -> support::Response {
    client.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    client.response()
}

#[test]
fn tls13_and_tls12_both_serve_with_alpn_http11_and_sni() {
    let pki = Pki::new("versions");
    let server = start(pki.tls());
    for (version, name) in [
        (&rustls::version::TLS13, "TLSv1_3"),
        (&rustls::version::TLS12, "TLSv1_2"),
    ] {
        let mut options = pki.client();
        let versions = [version];
        options.versions = &versions;
        let mut client = connect(server.local_addr(), &options);
        assert_eq!(
            client.stream().conn().alpn_protocol(),
            Some(&b"http/1.1"[..])
        );
        let info = get(&mut client, "/info").text();
        assert_eq!(
            info,
            format!("{name} alpn=http/1.1 sni=localhost client_certs=0 secure=true")
        );
        // The connection persists: a second request on it.
        assert_eq!(get(&mut client, "/plaintext").text(), "Hello, World!");
    }
}

#[test]
fn a_client_offering_only_other_application_protocols_is_refused() {
    let pki = Pki::new("alpn");
    let server = start(pki.tls());
    let mut options = pki.client();
    let h2_only: [&[u8]; 1] = [b"h2"];
    options.alpn = &h2_only;
    let err = TlsStream::connect(server.local_addr(), "localhost", options.config())
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("NoApplicationProtocol"),
        "unexpected error: {err}"
    );
    // No ALPN at all is fine: HTTP/1.1 is assumed.
    let mut options = pki.client();
    options.alpn = &[];
    let mut client = connect(server.local_addr(), &options);
    assert!(get(&mut client, "/info").text().contains("alpn= "));
}

#[test]
fn pipelined_requests_and_mebibyte_bodies_both_ways() {
    let pki = Pki::new("bodies");
    let server = start(pki.tls());
    let mut client = connect(server.local_addr(), &pki.client());
    let batch = "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(64);
    client.send(batch);
    for response in client.responses(64) {
        assert_eq!(response.text(), "Hello, World!");
    }
    let body: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    client.send(&request);
    let echoed = client.response();
    assert_eq!(echoed.status, 200);
    assert!(echoed.body == body, "the 1 MiB body came back changed");
    let big = get(&mut client, "/mib");
    assert_eq!(big.body.len(), 1 << 20);
}

#[test]
fn sni_picks_the_certificate_whose_names_match() {
    let pki = Pki::new("sni");
    let other = pki.ca.server(&["other.test", "*.wild.test"]);
    let chain = pki.dir.write("other.pem", &other.cert_pem);
    let key = pki.dir.write("other.key", &other.key_pem);
    let server = start(pki.tls().certificate(chain, key));
    let options = pki.client();
    let cases = [
        ("localhost", pki.server.serial),
        ("other.test", other.serial),
        ("a.wild.test", other.serial),
    ];
    for (name, serial) in cases {
        let stream =
            TlsStream::connect(server.local_addr(), name, options.config()).expect("handshake");
        assert_eq!(stream.server_serial(), serial, "certificate for {name}");
    }
    // A name no certificate carries gets the default one, which the client then refuses.
    let err = TlsStream::connect(server.local_addr(), "unknown.test", options.config())
        .err()
        .expect("name mismatch");
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[test]
fn client_certificates_required_accepted_and_refused() {
    let pki = Pki::new("mtls");
    let client_ca = TestCa::new("client CA");
    let bundle = pki.dir.write("clients.pem", &client_ca.cert_pem());
    let server = start(pki.tls().client_ca(&bundle));
    let good = client_ca.client("alice");
    let mut options = pki.client();
    options.client_cert = Some(&good);
    let mut client = connect(server.local_addr(), &options);
    assert_eq!(
        get(&mut client, "/client-serial").text(),
        good.serial.to_string()
    );

    // Without a certificate: TLS 1.3 reports the refusal on the first read.
    let mut anonymous = TlsStream::connect(server.local_addr(), "localhost", pki.client().config())
        .map(Client::over_stream);
    if let Ok(client) = anonymous.as_mut() {
        let _ = client.try_send("GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(
            client.try_response(false).is_err(),
            "served without a client certificate"
        );
    }
    // A certificate from another CA is refused too.
    let stranger = pki.ca.client("mallory");
    let mut options = pki.client();
    options.client_cert = Some(&stranger);
    if let Ok(mut client) = TlsStream::connect(server.local_addr(), "localhost", options.config())
        .map(Client::over_stream)
    {
        let _ = client.try_send("GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(
            client.try_response(false).is_err(),
            "served a stranger's certificate"
        );
    }
    // The server still serves the good client.
    let mut options = pki.client();
    options.client_cert = Some(&good);
    let mut client = connect(server.local_addr(), &options);
    assert_eq!(get(&mut client, "/plaintext").text(), "Hello, World!");
}

#[test]
fn optional_client_certificates_let_anonymous_clients_in() {
    let pki = Pki::new("mtls-optional");
    let client_ca = TestCa::new("client CA");
    let bundle = pki.dir.write("clients.pem", &client_ca.cert_pem());
    let server = start(
        pki.tls()
            .client_ca(&bundle)
            .client_auth(ClientAuth::Optional),
    );
    let mut anonymous = connect(server.local_addr(), &pki.client());
    assert_eq!(get(&mut anonymous, "/client-serial").text(), "none");
    let bob = client_ca.client("bob");
    let mut options = pki.client();
    options.client_cert = Some(&bob);
    let mut known = connect(server.local_addr(), &options);
    assert_eq!(
        get(&mut known, "/client-serial").text(),
        bob.serial.to_string()
    );
}

#[test]
fn reload_serves_the_new_certificate_and_open_connections_carry_on() {
    let pki = Pki::new("reload");
    let server = start(pki.tls());
    let options = pki.client();
    let mut old = connect(server.local_addr(), &options);
    assert_eq!(old.stream().server_serial(), pki.server.serial);
    assert_eq!(get(&mut old, "/plaintext").text(), "Hello, World!");

    let renewed = pki.ca.server(&["localhost"]);
    pki.dir.write("server.pem", &renewed.cert_pem);
    pki.dir.write("server.key", &renewed.key_pem);
    let loaded = server.reload_tls().expect("reload");
    assert!(loaded.contains("localhost"), "{loaded}");
    let fresh = TlsStream::connect(server.local_addr(), "localhost", options.config())
        .expect("handshake after reload");
    assert_eq!(fresh.server_serial(), renewed.serial);
    assert_eq!(
        get(&mut old, "/plaintext").text(),
        "Hello, World!",
        "old connection"
    );

    // Broken reloads change nothing, and say why.
    let expired = pki.ca.issue(&["localhost"], "localhost", |params| {
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    });
    let other_key = pki.ca.server(&["localhost"]);
    let cases: [(&str, &str, &str); 4] = [
        ("garbage", "not a certificate", "no CERTIFICATE"),
        (&expired.cert_pem, &expired.key_pem, "expired"),
        (&renewed.cert_pem, &other_key.key_pem, "does not match"),
        (&renewed.cert_pem, "", "PRIVATE KEY"),
    ];
    for (cert, key, expected) in cases {
        pki.dir.write("server.pem", cert);
        pki.dir.write("server.key", key);
        let err = server.reload_tls().expect_err("a broken reload");
        assert!(err.to_string().contains(expected), "{err}");
        let stream = TlsStream::connect(server.local_addr(), "localhost", options.config())
            .expect("handshake");
        assert_eq!(
            stream.server_serial(),
            renewed.serial,
            "after a failed reload"
        );
    }
    std::fs::remove_file(pki.dir.path().join("server.pem")).expect("remove");
    let err = server.reload_tls().expect_err("a missing file");
    assert!(err.to_string().contains("server.pem"), "{err}");
}

#[test]
fn startup_refuses_bad_certificates_with_one_clear_message() {
    let pki = Pki::new("startup");
    let expired = pki.ca.issue(&["localhost"], "localhost", |params| {
        params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    });
    let future = pki.ca.issue(&["localhost"], "localhost", |params| {
        params.not_before = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(20);
    });
    let other = pki.ca.server(&["localhost"]);
    let cases = [
        (&expired.cert_pem, &expired.key_pem, "expired on"),
        (&future.cert_pem, &future.key_pem, "not valid until"),
        (&pki.server.cert_pem, &other.key_pem, "does not match"),
    ];
    for (cert, key, expected) in cases {
        let chain = pki.dir.write("bad.pem", cert);
        let key = pki.dir.write("bad.key", key);
        let err = squall::Server::new(support::config().tls(TlsConfig::new(chain, key)))
            .spawn(app)
            .expect_err("startup should fail");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = squall::Server::new(support::config().tls(TlsConfig::new(
        pki.dir.path().join("missing.pem"),
        pki.dir.path().join("server.key"),
    )))
    .spawn(app)
    .expect_err("missing file");
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[test]
fn plain_http_on_the_tls_port_gets_a_400_in_the_clear() {
    let pki = Pki::new("plain");
    let server = start(pki.tls());
    let response = support::request(
        server.local_addr(),
        "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(response.status, 400);
    assert!(response.text().contains("HTTPS"), "{}", response.text());
}

/// An SSLv3 ClientHello (record version 3.0, hello version 3.0), as bytes: Debian's OpenSSL
/// cannot send one at all.
const SSLV3_HELLO: &[u8] = &[
    0x16, 0x03, 0x00, 0x00, 0x2f, // handshake record, SSL 3.0, 47 bytes
    0x01, 0x00, 0x00, 0x2b, // ClientHello, 43 bytes
    0x03, 0x00, // client version SSL 3.0
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,   // random
    0x00, // no session id
    0x00, 0x04, 0x00, 0x0a, 0x00, 0x2f, // two cipher suites
    0x01, 0x00, // null compression
];

#[test]
fn garbage_and_old_hellos_close_only_their_own_connection() {
    let pki = Pki::new("garbage");
    let server = start(pki.tls());
    let mut survivor = connect(server.local_addr(), &pki.client());
    assert_eq!(get(&mut survivor, "/plaintext").text(), "Hello, World!");
    let inputs: [&[u8]; 3] = [
        SSLV3_HELLO,
        b"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff", // a handshake record of nonsense
        &[
            0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
        ], // SSLv2-style
    ];
    for input in inputs {
        let mut raw = Client::connect(server.local_addr());
        raw.send(input);
        let (bytes, _) = raw.read_to_close();
        // At most one alert record (type 21) comes back, never application data.
        assert!(bytes.is_empty() || bytes[0] == 0x15, "answered {bytes:?}");
    }
    assert_eq!(get(&mut survivor, "/plaintext").text(), "Hello, World!");
}

#[test]
fn a_handshake_that_stalls_is_closed_by_the_header_read_deadline() {
    let pki = Pki::new("stall");
    let limits = squall::Limits {
        header_read_timeout: Duration::from_millis(300),
        ..squall::Limits::default()
    };
    let server = support::start_with(support::config().limits(limits).tls(pki.tls()), app);
    // Half a ClientHello record, then nothing.
    let mut raw = Client::connect(server.local_addr());
    raw.send(&SSLV3_HELLO[..8]);
    let waited = raw.time_until_closed();
    assert!(waited < Duration::from_secs(2), "closed after {waited:?}");
    // Connected and silent.
    let mut silent = Client::connect(server.local_addr());
    let waited = silent.time_until_closed();
    assert!(waited < Duration::from_secs(2), "closed after {waited:?}");
}

#[test]
fn sessions_resume_on_every_core() {
    let pki = Pki::new("resume");
    let server = support::start_with(support::config().workers(2).tls(pki.tls()), app);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut options = pki.client();
        let versions = [version];
        options.versions = &versions;
        options.resumption = true;
        let config = options.config();
        let mut first = Client::over_stream(
            TlsStream::connect(server.local_addr(), "localhost", config.clone()).expect("first"),
        );
        // The tickets arrive after the handshake; a request makes sure they were read.
        assert_eq!(get(&mut first, "/plaintext").text(), "Hello, World!");
        // Connections spread over both cores' listeners; every one resumes.
        let mut resumed = 0;
        for _ in 0..12 {
            let mut client = Client::over_stream(
                TlsStream::connect(server.local_addr(), "localhost", config.clone())
                    .expect("handshake"),
            );
            if client.stream().conn().handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                resumed += 1;
            }
            assert_eq!(get(&mut client, "/plaintext").text(), "Hello, World!");
        }
        assert_eq!(resumed, 12, "{version:?}: resumed {resumed} of 12");
    }
}

#[test]
fn websockets_over_tls_echo_fragments_and_close_codes() {
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::Message;
    let pki = Pki::new("wss");
    let server = start(pki.tls());
    let stream = TlsStream::connect(server.local_addr(), "localhost", pki.client().config())
        .expect("handshake");
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());
    let (mut socket, response) = tungstenite::client(url.as_str(), stream).expect("upgrade");
    assert_eq!(response.status(), 101);
    socket.send(Message::text("hello over tls")).expect("send");
    assert_eq!(
        socket.read().expect("echo"),
        Message::text("hello over tls")
    );
    let big = vec![7u8; 300_000];
    socket.send(Message::binary(big.clone())).expect("send big");
    assert_eq!(socket.read().expect("echo big"), Message::binary(big));
    // A fragmented message, written as raw frames under the same session.
    let mut first = support::ws::frame(0x01, b"frag", true);
    first[0] &= 0x7f; // FIN off: more fragments follow
    let last = support::ws::frame(0x00, b"ments", true);
    let stream = socket.get_mut();
    stream.write_all(&first).expect("first fragment");
    stream.write_all(&last).expect("last fragment");
    assert_eq!(socket.read().expect("echo"), Message::text("fragments"));
    socket
        .close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        }))
        .expect("close");
    loop {
        match socket.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Away);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("no close frame back: {e}"),
        }
    }
}

/// Whether a command exists, for the tests that drive outside clients.
fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn curl_speaks_tls13_and_tls12() {
    assert!(have("curl"), "curl is needed for this test");
    let pki = Pki::new("curl");
    let server = start(pki.tls());
    let port = server.local_addr().port();
    for version in ["--tlsv1.3", "--tlsv1.2"] {
        let mut args = vec![
            "-sS".to_owned(),
            "--cacert".to_owned(),
            pki.ca_file(),
            "--resolve".to_owned(),
            format!("localhost:{port}:127.0.0.1"),
            version.to_owned(),
            "-w".to_owned(),
            " %{http_code}".to_owned(),
        ];
        if version == "--tlsv1.2" {
            args.extend(["--tls-max".to_owned(), "1.2".to_owned()]);
        }
        args.push(format!("https://localhost:{port}/info"));
        let out = Command::new("curl").args(&args).output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = if version == "--tlsv1.3" {
            "TLSv1_3"
        } else {
            "TLSv1_2"
        };
        assert!(
            text.starts_with(expected) && text.ends_with(" 200"),
            "{text}"
        );
    }
}

#[test]
fn openssl_refuses_tls10_and_tls11_and_negotiates_alpn() {
    assert!(have("openssl"), "openssl is needed for this test");
    let pki = Pki::new("openssl");
    let server = start(pki.tls());
    let connect = format!("127.0.0.1:{}", server.local_addr().port());
    let run = |extra: &[&str]| {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .args(["-CAfile", &pki.ca_file()])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run openssl");
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("openssl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // Debian's OpenSSL offers TLS 1.0 and 1.1 only at security level 0.
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = run(&[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{old} was accepted: {text}");
        // rustls answers an old hello with a fatal alert (handshake_failure: such hellos
        // carry no signature_algorithms) before any certificate is sent.
        assert!(text.contains("alert handshake failure"), "{old}: {text}");
        assert!(
            text.contains("no peer certificate available"),
            "{old}: {text}"
        );
    }
    let (ok, text) = run(&["-alpn", "h2,http/1.1"]);
    assert!(ok, "{text}");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

#[test]
fn python_ssl_speaks_to_it() {
    assert!(have("python3"), "python3 is needed for this test");
    let pki = Pki::new("python");
    let server = start(pki.tls());
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile={ca:?})
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
with socket.create_connection(("127.0.0.1", {port})) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        print(tls.version(), data.split(b"\r\n")[0].decode(), data.endswith(b"Hello, World!"))
"#,
        ca = pki.ca_file(),
        port = server.local_addr().port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim(), "TLSv1.3 HTTP/1.1 200 OK True");
}

#[test]
fn tls_settings_come_from_the_environment() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let config = squall::Config::default()
        .with_env_from(vars(&[
            ("SQUALL_TLS_CERT", "/c.pem"),
            ("SQUALL_TLS_KEY", "/k.pem"),
            ("SQUALL_TLS_CLIENT_CA", "/ca.pem"),
            ("SQUALL_TLS_CLIENT_AUTH", "optional"),
        ]))
        .expect("valid");
    assert_eq!(
        config.tls,
        Some(
            TlsConfig::new("/c.pem", "/k.pem")
                .client_ca("/ca.pem")
                .client_auth(ClientAuth::Optional)
        )
    );
    let cases: [(&'static [(&'static str, &'static str)], &str); 3] = [
        (&[("SQUALL_TLS_CERT", "/c.pem")], "SQUALL_TLS_KEY is not"),
        (
            &[("SQUALL_TLS_CLIENT_CA", "/ca.pem")],
            "without SQUALL_TLS_CERT",
        ),
        (
            &[
                ("SQUALL_TLS_CERT", "/c.pem"),
                ("SQUALL_TLS_KEY", "/k.pem"),
                ("SQUALL_TLS_CLIENT_AUTH", "sometimes"),
            ],
            "expected required or optional",
        ),
    ];
    for (pairs, expected) in cases {
        let err = squall::Config::default()
            .with_env_from(vars(pairs))
            .expect_err("invalid");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn unfinished_handshakes_count_toward_the_connection_limit() {
    let pki = Pki::new("limit");
    let limits = squall::Limits {
        max_connections_per_core: 2,
        header_read_timeout: Duration::from_millis(800),
        ..squall::Limits::default()
    };
    let server = support::start_with(support::config().limits(limits).tls(pki.tls()), app);
    // Two connections that never start their handshakes fill the core.
    let silent: Vec<Client> = (0..2)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let mut client = connect(server.local_addr(), &pki.client());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "a third handshake finished after {waited:?}, while two unfinished ones held the core"
    );
    assert_eq!(get(&mut client, "/plaintext").text(), "Hello, World!");
    drop(silent);
}
