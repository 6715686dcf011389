//! The server's TLS configuration: what the operator names ([`TlsConfig`]), the checked
//! files it loads to (`TlsMaterial`), and the rustls configuration each core builds from
//! those for itself.
//!
//! Loading happens once per start or reload, off the cores; each core then builds its own
//! `ServerConfig` (its own signing keys, certificate resolver, client verifier and
//! ticketer), so a handshake touches nothing another core writes. A reload sends the new
//! material to every core, which swaps its configuration between handshakes: new
//! connections get the new certificate, open ones carry on with the keys they have.
//!
//! **Session resumption across cores.** A client that resumes may land on any core (each has
//! its own `SO_REUSEPORT` listener). Tickets are therefore stateless and every core can read
//! every ticket: the ticket key for each six-hour epoch is derived (HKDF-SHA256) from one
//! random process secret, so cores agree on keys without talking. A ticket is accepted in
//! the epoch it was made and the next. TLS 1.2 session IDs would need a cache shared between
//! cores, so squall keeps none: a TLS 1.2 client resumes by ticket (RFC 5077) or not at all,
//! instead of resuming on one core and failing on the next.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ProducesTickets, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{provider, read_certificates, read_private_key, read_roots, PROTOCOL_VERSIONS};
use crate::error::Error;

/// The application protocols offered in ALPN, most preferred first. `h2` joins here when
/// HTTP/2 does; a client offering only protocols not in this list is refused with TLS's
/// `no_application_protocol` alert.
pub(crate) const ALPN_PROTOCOLS: &[&[u8]] = &[b"http/1.1"];

/// How long a session-ticket key is used to make tickets; it still opens them for one more
/// epoch, so a ticket lives between one and two epochs.
const TICKET_EPOCH_SECS: u64 = 6 * 3600;

/// The server's TLS: certificates (chosen by SNI), and optionally client certificates.
///
/// Built in code, or read by [`Config::from_env`](crate::Config::from_env) from
/// `SQUALL_TLS_CERT` (a PEM certificate chain, leaf first), `SQUALL_TLS_KEY` (its PEM private
/// key), `SQUALL_TLS_CLIENT_CA` (a PEM bundle of CAs whose client certificates are accepted)
/// and `SQUALL_TLS_CLIENT_AUTH` (`required`, the default when a CA is given, or `optional`).
///
/// ```no_run
/// use squall::tls::TlsConfig;
///
/// let tls = TlsConfig::new("/etc/squall/example.com.pem", "/etc/squall/example.com.key")
///     .certificate("/etc/squall/example.org.pem", "/etc/squall/example.org.key")
///     .client_ca("/etc/squall/clients-ca.pem");
/// let config = squall::Config::default().tls(tls);
/// ```
///
/// The files are read at startup and again on every reload (`SIGHUP`, or
/// [`RunningServer::reload_tls`](crate::RunningServer::reload_tls)). A file that is missing
/// or unreadable, a certificate that has expired or is not valid yet, or a key that does not
/// match its certificate stops the server at startup with one message; on reload it leaves
/// the certificates in use unchanged and logs the same message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate used when no other one's names match the client's SNI (or it sent
    /// none), then the others in order.
    certificates: Vec<CertificateFiles>,
    client_ca: Option<PathBuf>,
    client_auth: ClientAuth,
}

/// A certificate chain and its key, as files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CertificateFiles {
    chain: PathBuf,
    key: PathBuf,
}

/// Whether a client must present a certificate once a client CA is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Handshakes without a valid client certificate are refused.
    #[default]
    Required,
    /// A client may present no certificate; one it presents must be valid. The handler sees
    /// which ([`TlsSession::peer_certificates`](super::TlsSession::peer_certificates)).
    Optional,
}

impl TlsConfig {
    /// TLS with the certificate chain and private key in these PEM files.
    pub fn new(chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            certificates: vec![CertificateFiles {
                chain: chain.into(),
                key: key.into(),
            }],
            client_ca: None,
            client_auth: ClientAuth::Required,
        }
    }

    /// Adds a certificate chosen when the client's SNI matches one of its DNS names (its
    /// subject alternative names; `*.example.com` matches one label). The first certificate
    /// stays the default for any other name.
    pub fn certificate(mut self, chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsConfig {
        self.certificates.push(CertificateFiles {
            chain: chain.into(),
            key: key.into(),
        });
        self
    }

    /// Asks clients for certificates issued by a CA in this PEM bundle (mutual TLS).
    pub fn client_ca(mut self, bundle: impl Into<PathBuf>) -> TlsConfig {
        self.client_ca = Some(bundle.into());
        self
    }

    /// Whether a client certificate is required or optional (with [`client_ca`](Self::client_ca)).
    pub fn client_auth(mut self, auth: ClientAuth) -> TlsConfig {
        self.client_auth = auth;
        self
    }

    /// The configuration the `SQUALL_TLS_*` variables describe (looked up by `var`, which
    /// answers only for set, non-empty variables), or `None` when neither `SQUALL_TLS_CERT`
    /// nor `SQUALL_TLS_KEY` is set.
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TlsConfig>, Error> {
        let tls = match (var("SQUALL_TLS_CERT"), var("SQUALL_TLS_KEY")) {
            (None, None) => {
                if var("SQUALL_TLS_CLIENT_CA").is_some() {
                    return Err(Error::config(
                        "SQUALL_TLS_CLIENT_CA is set without SQUALL_TLS_CERT and SQUALL_TLS_KEY",
                    ));
                }
                return Ok(None);
            }
            (Some(chain), Some(key)) => TlsConfig::new(chain, key),
            (Some(_), None) => {
                return Err(Error::config(
                    "SQUALL_TLS_CERT is set but SQUALL_TLS_KEY is not: TLS needs both",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "SQUALL_TLS_KEY is set but SQUALL_TLS_CERT is not: TLS needs both",
                ))
            }
        };
        let tls = match var("SQUALL_TLS_CLIENT_CA") {
            Some(bundle) => tls.client_ca(bundle),
            None => tls,
        };
        let auth = match var("SQUALL_TLS_CLIENT_AUTH").as_deref().map(str::trim) {
            None | Some("required") => ClientAuth::Required,
            Some("optional") => ClientAuth::Optional,
            Some(other) => {
                return Err(Error::config(format!(
                    "SQUALL_TLS_CLIENT_AUTH={other:?}: expected required or optional"
                )))
            }
        };
        Ok(Some(tls.client_auth(auth)))
    }

    /// Reads and checks every file, as of `now`.
    pub(crate) fn load(&self, now: SystemTime) -> Result<TlsMaterial, Error> {
        let certificates = self
            .certificates
            .iter()
            .map(|files| LoadedCertificate::load(files, now))
            .collect::<Result<Vec<_>, _>>()?;
        let client_roots = match &self.client_ca {
            Some(bundle) => Some(read_roots(bundle, "client CA bundle")?),
            None => None,
        };
        Ok(TlsMaterial {
            certificates,
            client_roots,
            client_auth: self.client_auth,
        })
    }
}

/// Checked TLS files, ready for each core to build its configuration from.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    certificates: Vec<LoadedCertificate>,
    client_roots: Option<RootCertStore>,
    client_auth: ClientAuth,
}

impl TlsMaterial {
    /// A line for the log: each certificate's names, serial and expiry.
    pub(crate) fn describe(&self) -> String {
        let parts: Vec<String> = self
            .certificates
            .iter()
            .map(|c| {
                format!(
                    "{} (serial {}, expires {})",
                    if c.names.is_empty() {
                        "no DNS names".to_owned()
                    } else {
                        c.names.join(", ")
                    },
                    c.serial,
                    c.not_after
                )
            })
            .collect();
        let mut text = parts.join("; ");
        if self.client_roots.is_some() {
            text.push_str(match self.client_auth {
                ClientAuth::Required => "; client certificates required",
                ClientAuth::Optional => "; client certificates optional",
            });
        }
        text
    }

    /// This core's own rustls configuration.
    pub(crate) fn server_config(&self, tickets: &TicketSecret) -> Result<ServerConfig, Error> {
        let provider = provider();
        let signed = |c: &LoadedCertificate| -> Result<Arc<CertifiedKey>, Error> {
            let key = provider
                .key_provider
                .load_private_key(c.key.clone_key())
                .map_err(|e| Error::config(format!("{}: {e}", c.key_path.display())))?;
            Ok(Arc::new(CertifiedKey::new(c.chain.clone(), key)))
        };
        let mut by_name = Vec::new();
        for certificate in &self.certificates {
            let key = signed(certificate)?;
            by_name.extend(
                certificate
                    .names
                    .iter()
                    .map(|n| (n.clone(), Arc::clone(&key))),
            );
        }
        let resolver = SniResolver {
            fallback: signed(&self.certificates[0])?,
            by_name,
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|e| Error::config(format!("TLS: {e}")))?;
        let builder = match &self.client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider);
                let verifier = match self.client_auth {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| Error::config(format!("client CA bundle: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.ticketer = Arc::new(EpochTicketer {
            secret: tickets.0,
            now: unix_now,
        });
        // No 0-RTT data: it can be replayed, and nothing tells a handler it was.
        config.max_early_data_size = 0;
        Ok(config)
    }
}

/// One certificate chain and key, read and checked.
struct LoadedCertificate {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_path: PathBuf,
    /// The DNS names SNI can choose it by (subject alternative names), lowercased.
    names: Vec<String>,
    serial: String,
    not_after: String,
}

impl std::fmt::Debug for LoadedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("LoadedCertificate")
            .field("names", &self.names)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl LoadedCertificate {
    fn load(files: &CertificateFiles, now: SystemTime) -> Result<LoadedCertificate, Error> {
        let chain = read_certificates(&files.chain, "certificate chain")?;
        let key = read_private_key(&files.key)?;
        let shown = files.chain.display();
        let (_, leaf) = X509Certificate::from_der(&chain[0])
            .map_err(|e| Error::config(format!("certificate chain {shown}: unreadable: {e}")))?;
        let validity = leaf.validity();
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if now_secs < validity.not_before.timestamp() {
            return Err(Error::config(format!(
                "certificate {shown} is not valid until {}",
                validity.not_before
            )));
        }
        if now_secs > validity.not_after.timestamp() {
            return Err(Error::config(format!(
                "certificate {shown} expired on {}",
                validity.not_after
            )));
        }
        let names = dns_names(&leaf);
        let serial = leaf.raw_serial_as_string();
        let not_after = validity.not_after.to_string();
        // The key must be the certificate's: rustls checks the public halves match.
        let signing = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| Error::config(format!("private key {}: {e}", files.key.display())))?;
        CertifiedKey::new(chain.clone(), signing)
            .keys_match()
            .map_err(|e| {
                Error::config(format!(
                    "private key {} does not match certificate {shown}: {e}",
                    files.key.display()
                ))
            })?;
        Ok(LoadedCertificate {
            chain,
            key,
            key_path: files.key.clone(),
            names,
            serial,
            not_after,
        })
    }
}

/// The DNS names of a certificate's subject alternative names, lowercased.
fn dns_names(certificate: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Picks a certificate by the client's SNI: an exact name, then a wildcard for the name's
/// parent (`*.example.com` for `a.example.com`), then the first certificate.
#[derive(Debug)]
struct SniResolver {
    fallback: Arc<CertifiedKey>,
    by_name: Vec<(String, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn pick(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name.map(str::to_ascii_lowercase) else {
            return &self.fallback;
        };
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        let find = |wanted: &str| self.by_name.iter().find(|(n, _)| n == wanted);
        find(&name)
            .or_else(|| wildcard.as_deref().and_then(find))
            .map_or(&self.fallback, |(_, key)| key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        super::record_sni(client_hello.server_name());
        Some(Arc::clone(self.pick(client_hello.server_name())))
    }
}

/// The process's secret for session tickets: made once per process, the same on every core.
#[derive(Clone, Copy)]
pub(crate) struct TicketSecret([u8; 32]);

impl TicketSecret {
    /// A new random secret.
    pub(crate) fn generate() -> Result<TicketSecret, Error> {
        let mut secret = [0; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| Error::startup("cannot draw a random session-ticket secret"))?;
        Ok(TicketSecret(secret))
    }
}

impl std::fmt::Debug for TicketSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketSecret(..)")
    }
}

/// Stateless session tickets whose keys every core derives alike; see the module docs.
///
/// A ticket is `epoch (4 bytes) ‖ nonce (12) ‖ AES-256-GCM(state) ‖ tag (16)`, with the
/// epoch as associated data. Keys are derived per call (HKDF, well under a microsecond
/// against a handshake's ~100 µs), so the ticketer holds no state to lock.
struct EpochTicketer {
    secret: [u8; 32],
    now: fn() -> u64,
}

impl std::fmt::Debug for EpochTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochTicketer")
    }
}

const EPOCH_LEN: usize = 4;

impl EpochTicketer {
    fn epoch(&self) -> u32 {
        u32::try_from((self.now)() / TICKET_EPOCH_SECS).unwrap_or(u32::MAX)
    }

    fn key(&self, epoch: u32) -> Option<LessSafeKey> {
        let info = [b"squall session ticket".as_slice(), &epoch.to_be_bytes()];
        let prk = Salt::new(HKDF_SHA256, &[]).extract(&self.secret);
        let okm = prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

impl ProducesTickets for EpochTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(TICKET_EPOCH_SECS).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let epoch = self.epoch();
        let key = self.key(epoch)?;
        let mut nonce = [0; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(epoch.to_be_bytes()),
            &mut sealed,
        )
        .ok()?;
        let mut ticket = Vec::with_capacity(EPOCH_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&epoch.to_be_bytes());
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (epoch, rest) = ticket.split_first_chunk::<EPOCH_LEN>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        let made = u32::from_be_bytes(*epoch);
        let now = self.epoch();
        if made != now && made.checked_add(1) != Some(now) {
            return None; // Expired, or from a clock we do not trust.
        }
        let mut opened = sealed.to_vec();
        let plain = self
            .key(made)?
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(*epoch),
                &mut opened,
            )
            .ok()?
            .len();
        opened.truncate(plain);
        Some(opened)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticketer(secret: u8, now: fn() -> u64) -> EpochTicketer {
        EpochTicketer {
            secret: [secret; 32],
            now,
        }
    }

    #[test]
    fn a_ticket_made_on_one_core_opens_on_another() {
        let one = ticketer(7, || 1_000_000);
        let other = ticketer(7, || 1_000_000);
        let ticket = one.encrypt(b"session state").expect("encrypt");
        assert_eq!(
            other.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..])
        );
    }

    #[test]
    fn a_ticket_lives_for_its_epoch_and_the_next_only() {
        let made = ticketer(7, || 10 * TICKET_EPOCH_SECS);
        let ticket = made.encrypt(b"state").expect("encrypt");
        let next = ticketer(7, || 11 * TICKET_EPOCH_SECS + 5);
        assert!(next.decrypt(&ticket).is_some());
        let later = ticketer(7, || 12 * TICKET_EPOCH_SECS);
        assert!(later.decrypt(&ticket).is_none());
        let earlier = ticketer(7, || 9 * TICKET_EPOCH_SECS);
        assert!(earlier.decrypt(&ticket).is_none());
    }

    #[test]
    fn forged_truncated_or_foreign_tickets_are_refused() {
        let core = ticketer(7, || 1_000_000);
        let ticket = core.encrypt(b"state").expect("encrypt");
        let mut flipped = ticket.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(core.decrypt(&flipped).is_none());
        assert!(core.decrypt(&ticket[..10]).is_none());
        assert!(core.decrypt(&[]).is_none());
        let other_process = ticketer(8, || 1_000_000);
        assert!(other_process.decrypt(&ticket).is_none());
        // The epoch is authenticated: moving a ticket to another epoch breaks it.
        let mut moved = ticket;
        moved[3] ^= 1;
        assert!(core.decrypt(&moved).is_none());
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_default() {
        let key = |_: &str| -> Arc<CertifiedKey> {
            let provider = provider();
            let generated = rcgen::KeyPair::generate().expect("key");
            let der = PrivateKeyDer::try_from(generated.serialize_der()).expect("der");
            let signing = provider.key_provider.load_private_key(der).expect("load");
            Arc::new(CertifiedKey::new(Vec::new(), signing))
        };
        let fallback = key("default");
        let exact = key("a.example.com");
        let wild = key("*.example.com");
        let resolver = SniResolver {
            fallback: Arc::clone(&fallback),
            by_name: vec![
                ("a.example.com".into(), Arc::clone(&exact)),
                ("*.example.com".into(), Arc::clone(&wild)),
            ],
        };
        assert!(Arc::ptr_eq(resolver.pick(Some("A.Example.com")), &exact));
        assert!(Arc::ptr_eq(resolver.pick(Some("b.example.com")), &wild));
        assert!(Arc::ptr_eq(
            resolver.pick(Some("x.b.example.com")),
            &fallback
        ));
        assert!(Arc::ptr_eq(resolver.pick(Some("example.com")), &fallback));
        assert!(Arc::ptr_eq(resolver.pick(None), &fallback));
    }
}
