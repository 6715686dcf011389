//! Certificates for TLS tests, made fresh by each test: a CA, server and client certificates
//! it signs (ECDSA P-256), written as PEM files into a directory that goes with the value.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};

/// A directory of PEM files, removed when dropped.
pub struct CertDir {
    path: PathBuf,
}

impl CertDir {
    /// A new empty directory under the system's temp dir.
    pub fn new(label: &str) -> CertDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "squall-tls-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the certificate directory");
        CertDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("write a PEM file");
        path
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A certificate and its key, as PEM.
pub struct Issued {
    /// The certificate (the leaf alone; the CA is not appended).
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// The serial number it was given.
    pub serial: u64,
}

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        TestCa { issuer }
    }

    /// The CA's certificate, for a trust store.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid from yesterday for
    /// a year.
    pub fn server(&self, names: &[&str]) -> Issued {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            |params| {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            },
        )
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(&[], name, |params| {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        })
    }

    /// A certificate for `names` with `common_name`, after `adjust` changes the parameters
    /// (validity dates, usages).
    pub fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        static SERIAL: AtomicU64 = AtomicU64::new(1000);
        let serial =
            SERIAL.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 100_000;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        adjust(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }
}
