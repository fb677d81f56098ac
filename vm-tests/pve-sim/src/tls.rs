//! Per-node self-signed certificates and the rustls server configuration (ring provider).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A node's TLS identity: certificate and private key, both DER.
#[derive(Clone)]
pub struct NodeCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key, DER.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl NodeCert {
    /// A fresh self-signed certificate for `node`, valid for the name, `localhost` and the
    /// loopback addresses (like pveproxy-ssl.pem, which PVE signs with its own cluster CA).
    pub fn generate(node: &str) -> anyhow::Result<Self> {
        let names = vec![
            node.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let ck = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert_der: ck.cert.der().to_vec(),
            key_der: ck.signing_key.serialize_der(),
        })
    }

    /// SHA-256 of the certificate, as `pvenode cert info` prints it: uppercase hex pairs
    /// joined by colons.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.cert_der)
    }

    /// A certificate and PKCS#8 private key from PEM text (what `pveproxy-ssl.pem` and
    /// `pveproxy-ssl.key` hold), e.g. a certificate the installer generated in advance.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("reading the certificate PEM: {e:?}"))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("reading the private key PEM (PKCS#8 expected): {e:?}"))?;
        let this = Self {
            cert_der: cert.to_vec(),
            key_der: key.secret_pkcs8_der().to_vec(),
        };
        this.server_config()?; // the key must belong to the certificate
        Ok(this)
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert_der)
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", &self.key_der)
    }

    /// The rustls server configuration serving this certificate.
    pub(crate) fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )?;
        Ok(Arc::new(config))
    }
}

/// SHA-256 fingerprint of a DER certificate in PVE's form (`AB:CD:...`, 32 pairs).
///
/// Computed here, not with `tappaas_site::pem::fingerprint`: the simulator stands in for
/// Proxmox and depends on none of our crates, so it checks the agent's fingerprints
/// independently instead of agreeing with the same code.
pub fn fingerprint_of(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_pve_style() {
        let c = NodeCert::generate("tappaas1").unwrap();
        let fp = c.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|p| p.len() == 2
            && p.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())));
        assert!(c.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(c.server_config().is_ok());
    }

    #[test]
    fn pem_round_trip_keeps_the_fingerprint() {
        let c = NodeCert::generate("tappaas2").unwrap();
        let back = NodeCert::from_pem(&c.cert_pem(), &c.key_pem()).unwrap();
        assert_eq!(back.fingerprint(), c.fingerprint());
        let other = NodeCert::generate("tappaas3").unwrap();
        assert!(NodeCert::from_pem(&c.cert_pem(), &other.key_pem()).is_err());
        assert!(NodeCert::from_pem("junk", &c.key_pem()).is_err());
    }

    #[test]
    fn pem_base64_padding() {
        assert!(pem("X", b"M").contains("TQ==\n"));
        assert!(pem("X", b"Ma").contains("TWE=\n"));
        assert!(pem("X", b"Man").contains("TWFu\n"));
    }
}
