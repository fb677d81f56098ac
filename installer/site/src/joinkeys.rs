//! `join-keys`: everything a multi-node site's `[cluster]` needs for an unattended first boot,
//! made in advance: a one-time join secret, and the primary's API certificate with its key, so
//! that every joining node can pin the primary before the primary is even installed
//! (docs/first-boot.md).

use crate::write::{comment_lines, multi_line, string};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use toml_edit::{DocumentMut, Item, Table};

/// What went wrong making or printing join keys.
#[derive(Debug, thiserror::Error)]
pub enum JoinKeysError {
    /// The key pair could not be made.
    #[error("making the primary's key pair: {0}")]
    KeyPair(rcgen::Error),
    /// The primary's name cannot name a certificate.
    #[error("the host name {name:?} for the certificate: {error}")]
    HostName {
        /// The name given.
        name: String,
        /// Why rcgen refused it.
        error: rcgen::Error,
    },
    /// The certificate could not be signed.
    #[error("signing the primary's certificate: {0}")]
    Signing(rcgen::Error),
    /// The cluster name is not one Proxmox accepts.
    #[error(
        "--cluster-name {0:?}: a cluster name is 1 to 15 letters, digits and `-` (a Proxmox rule)"
    )]
    ClusterName(String),
}

/// The result of the join-keys functions.
pub type Result<T> = std::result::Result<T, JoinKeysError>;

/// How many characters the generated join secret has (6 random bits each: 192 bits).
pub const SECRET_LEN: usize = 32;
/// How long the primary's certificate is valid, in years.
pub const VALID_YEARS: i32 = 10;

/// What the primary is called and where it is, for the certificate's names.
#[derive(Debug, Clone)]
pub struct PrimaryId {
    /// The primary's host name (the site's default is `tappaas1`).
    pub name: String,
    /// Its management address (the site's default is `10.0.0.10`).
    pub address: Ipv4Addr,
}

/// A fresh join secret and primary certificate. `Debug` shows neither secret.
#[derive(Clone)]
pub struct JoinKeys {
    /// The one-time join secret.
    pub join_secret: String,
    /// The primary's API certificate, PEM.
    pub certificate_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate's SHA-256 fingerprint, as Proxmox shows it.
    pub fingerprint: String,
}

impl fmt::Debug for JoinKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinKeys")
            .field("join_secret", &"<redacted>")
            .field("certificate_pem", &"<PEM>")
            .field("key_pem", &"<redacted>")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// A join secret of [`SECRET_LEN`] characters from `[A-Za-z0-9_-]`, from the OS random number
/// generator (through version 4 UUIDs, whose random bytes come from it).
pub fn join_secret() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: Vec<u8> = Vec::new();
    while bits.len() < SECRET_LEN {
        let b = *uuid::Uuid::new_v4().as_bytes();
        // Bytes 6 and 8 carry the version and variant bits; the other 14 are all random.
        bits.extend(
            b.iter()
                .enumerate()
                .filter(|(i, _)| *i != 6 && *i != 8)
                .map(|(_, x)| ALPHABET[usize::from(x & 0x3f)]),
        );
    }
    bits.truncate(SECRET_LEN);
    String::from_utf8_lossy(&bits).into_owned()
}

/// A fresh join secret and a self-signed ECDSA P-256 certificate for the primary's API, valid
/// for [`VALID_YEARS`] years from today, naming the primary the way Proxmox's own certificate
/// does (its host name, `pve`, `localhost`, its address and 127.0.0.1).
pub fn generate(primary: &PrimaryId) -> Result<JoinKeys> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(JoinKeysError::KeyPair)?;
    let mut params = CertificateParams::new(vec![
        primary.name.clone(),
        "pve".to_string(),
        "localhost".to_string(),
    ])
    .map_err(|error| JoinKeysError::HostName {
        name: primary.name.clone(),
        error,
    })?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(primary.address)));
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "TAPPaaS");
    dn.push(DnType::OrganizationalUnitName, "PVE Cluster Node");
    dn.push(DnType::CommonName, primary.name.clone());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (y, m, d) = crate::date::today_utc();
    params.not_before = rcgen::date_time_ymd(y, m, d);
    // 29 February does not come back every tenth year.
    params.not_after = rcgen::date_time_ymd(y + VALID_YEARS, m, d.min(28));
    let cert = params.self_signed(&key).map_err(JoinKeysError::Signing)?;
    Ok(JoinKeys {
        join_secret: join_secret(),
        certificate_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: crate::pem::fingerprint(cert.der()),
    })
}

/// Checks a cluster name the way the site file does: `[A-Za-z0-9-]`, at most 15 characters.
fn check_cluster_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(JoinKeysError::ClusterName(name.to_string()));
    }
    Ok(())
}

/// The `[cluster]` table holding `keys`, as TOML for the site file, with comments that say
/// what it holds and the fingerprint every joining node pins.
pub fn snippet(keys: &JoinKeys, cluster_name: Option<&str>) -> Result<String> {
    let mut t = Table::new();
    t.decor_mut().set_prefix(comment_lines(
        "Made by `tappaas-installer join-keys`. It holds the join secret and the primary's\n\
         private key: keep the site file like a key until the site is up (docs/first-boot.md).",
    ));
    if let Some(name) = cluster_name {
        check_cluster_name(name)?;
        t["name"] = Item::Value(string(name));
    }
    t["join-secret"] = Item::Value(string(&keys.join_secret));
    t["primary-certificate"] = Item::Value(multi_line(&keys.certificate_pem));
    if let Some(mut key) = t.key_mut("primary-certificate") {
        key.leaf_decor_mut().set_prefix(comment_lines(&format!(
            "The primary's fingerprint, which every joining node pins (computed from\n\
             primary-certificate; no primary-fingerprint is needed):\n\
             primary-fingerprint: {}",
            keys.fingerprint
        )));
    }
    t["primary-key"] = Item::Value(multi_line(&keys.key_pem));
    let mut doc = DocumentMut::new();
    doc["cluster"] = Item::Table(t);
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_varied_and_printable() {
        let a = join_secret();
        let b = join_secret();
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn the_key_belongs_to_the_certificate_and_debug_hides_it() {
        let keys = generate(&PrimaryId {
            name: "tappaas1".into(),
            address: Ipv4Addr::new(10, 0, 0, 10),
        })
        .unwrap();
        let key = KeyPair::from_pem(&keys.key_pem).unwrap();
        let der = crate::pem::certificate_der(&keys.certificate_pem).unwrap();
        use rcgen::PublicKeyData;
        let spki = key.subject_public_key_info();
        assert!(der.windows(spki.len()).any(|w| w == spki.as_slice()));
        assert_eq!(keys.fingerprint, crate::pem::fingerprint(&der));
        let debug = format!("{keys:?}");
        assert!(!debug.contains(&keys.join_secret) && !debug.contains("PRIVATE"));
        assert!(snippet(&keys, Some("way too long a name")).is_err());
    }

    /// The snippet as `join-keys` has always printed it, byte for byte.
    #[test]
    fn the_snippet_keeps_its_layout() {
        let keys = JoinKeys {
            join_secret: "s3cret-s3cret-s3cret-s3cret-0123".into(),
            certificate_pem: "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"
                .into(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n".into(),
            fingerprint: vec!["AB"; 32].join(":"),
        };
        let want = |name: &str| {
            format!(
                "# Made by `tappaas-installer join-keys`. It holds the join secret and the primary's\n\
                 # private key: keep the site file like a key until the site is up (docs/first-boot.md).\n\
                 [cluster]\n{name}join-secret = \"{}\"\n\
                 # The primary's fingerprint, which every joining node pins (computed from\n\
                 # primary-certificate; no primary-fingerprint is needed):\n\
                 # primary-fingerprint: {}\n\
                 primary-certificate = \"\"\"\n{}\"\"\"\n\
                 primary-key = \"\"\"\n{}\"\"\"\n",
                keys.join_secret, keys.fingerprint, keys.certificate_pem, keys.key_pem
            )
        };
        assert_eq!(snippet(&keys, None).unwrap(), want(""));
        assert_eq!(
            snippet(&keys, Some("lab-cluster")).unwrap(),
            want("name = \"lab-cluster\"\n")
        );
    }
}
