//! Server CPU per full TLS 1.3 handshake, rustls with the `ring` provider against rustls with
//! the `aws-lc-rs` provider: the measurement behind squall's choice of aws-lc-rs.
//!
//! In memory, no sockets: a client and a server connection hand their records to each other
//! through byte buffers until both finish the handshake (and the server has written its
//! session tickets). Only the server's calls are timed (`ServerConnection::new`, `read_tls`,
//! `process_new_packets`, `write_tls`). The certificate is ECDSA P-256 from rcgen; the client
//! never resumes, so every handshake is a full one. Each provider runs twice: key exchange
//! forced to X25519 on both sides, and each side with the provider's default groups.
//!
//! ```sh
//! taskset -c 1 cargo run --release --manifest-path perf/tls-provider/Cargo.toml [-- ROUNDS HANDSHAKES]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// A provider and the key-exchange groups both sides offer.
struct Setup {
    name: &'static str,
    groups: &'static str,
    provider: CryptoProvider,
}

// rustls deprecates ring's provider for lacking post-quantum key exchange; comparing against
// it is the point here.
#[allow(deprecated)]
fn setups() -> Vec<Setup> {
    let providers = [
        (
            "ring",
            rustls::crypto::ring::default_provider(),
            rustls::crypto::ring::kx_group::X25519,
        ),
        (
            "aws-lc-rs",
            rustls::crypto::aws_lc_rs::default_provider(),
            rustls::crypto::aws_lc_rs::kx_group::X25519,
        ),
    ];
    let forced = providers.iter().map(|(name, provider, x25519)| Setup {
        name,
        groups: "X25519",
        provider: CryptoProvider {
            kx_groups: vec![*x25519],
            ..provider.clone()
        },
    });
    let defaults = providers.iter().map(|(name, provider, _)| Setup {
        name,
        groups: "default",
        provider: provider.clone(),
    });
    forced.chain(defaults).collect()
}

/// A matching pair of configurations over one provider and one certificate.
struct Pair {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn pair(provider: &CryptoProvider, cert: &CertificateDer<'static>, key: &[u8]) -> Pair {
    let provider = Arc::new(provider.clone());
    let mut roots = RootCertStore::empty();
    roots
        .add(cert.clone())
        .expect("rcgen's certificate is a valid trust anchor");
    let mut client = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = Resumption::disabled();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    // The server keeps rustls's defaults (stateful resumption, two TLS 1.3 tickets written
    // after the handshake), as the peers and squall's own do.
    let server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is supported")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the key matches the certificate");
    Pair {
        client: Arc::new(client),
        server: Arc::new(server),
    }
}

/// Moves every record `from` has to write into `to`'s reader.
fn transfer_to_server(
    from: &mut ClientConnection,
    to: &mut ServerConnection,
    spent: &mut Duration,
) {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).expect("writing to a Vec");
    }
    let started = Instant::now();
    let mut rest = &buf[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("reading from a slice");
        to.process_new_packets()
            .expect("the client's flight is valid");
    }
    *spent += started.elapsed();
}

fn transfer_to_client(
    from: &mut ServerConnection,
    to: &mut ClientConnection,
    spent: &mut Duration,
) {
    let mut buf = Vec::new();
    let started = Instant::now();
    while from.wants_write() {
        from.write_tls(&mut buf).expect("writing to a Vec");
    }
    *spent += started.elapsed();
    let mut rest = &buf[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("reading from a slice");
        to.process_new_packets()
            .expect("the server's flight is valid");
    }
}

/// One full handshake; the server's time, and the group it negotiated.
fn handshake(pair: &Pair) -> (Duration, String) {
    let name = ServerName::try_from("localhost").expect("a valid name");
    let mut client = ClientConnection::new(Arc::clone(&pair.client), name).expect("client");
    let started = Instant::now();
    let mut server = ServerConnection::new(Arc::clone(&pair.server)).expect("server");
    let mut spent = started.elapsed();
    while client.is_handshaking() || server.is_handshaking() || server.wants_write() {
        transfer_to_server(&mut client, &mut server, &mut spent);
        transfer_to_client(&mut server, &mut client, &mut spent);
    }
    let group = server
        .negotiated_key_exchange_group()
        .map_or_else(|| "?".to_owned(), |g| format!("{:?}", g.name()));
    (spent, group)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("ROUNDS is a number"));
    let per_round: u32 = args
        .next()
        .map_or(2000, |a| a.parse().expect("HANDSHAKES is a number"));

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("a valid name")
        .self_signed(&key)
        .expect("self-signed certificate");
    let cert = cert.der().clone();
    let key = key.serialize_der();

    let setups = setups();
    let pairs: Vec<Pair> = setups
        .iter()
        .map(|s| pair(&s.provider, &cert, &key))
        .collect();
    let mut groups = vec![String::new(); setups.len()];
    let mut per_handshake_us: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    // Warm-up: caches, lazy tables and the allocator settle before anything counts.
    for pair in &pairs {
        for _ in 0..per_round / 10 {
            handshake(pair);
        }
    }
    // Rounds alternate the order of the setups, so no one always runs first or last.
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..setups.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let mut spent = Duration::ZERO;
            for _ in 0..per_round {
                let (time, group) = handshake(&pairs[i]);
                spent += time;
                groups[i] = group;
            }
            per_handshake_us[i].push(spent.as_secs_f64() * 1e6 / f64::from(per_round));
        }
    }

    println!("server CPU per full TLS 1.3 handshake (ECDSA P-256 certificate, no resumption)");
    println!(
        "{rounds} rounds x {per_round} handshakes; median of the rounds' means, then min-max\n"
    );
    println!("| provider | groups offered | negotiated | µs per handshake (median) | range |");
    println!("|---|---|---|---:|---:|");
    for (i, setup) in setups.iter().enumerate() {
        let values = &per_handshake_us[i];
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {} | {} | {:.1} | {:.1}–{:.1} |",
            setup.name,
            setup.groups,
            groups[i],
            median(values.clone()),
            min,
            max
        );
    }
}
