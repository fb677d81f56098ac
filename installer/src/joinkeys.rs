//! `join-keys`: everything a multi-node site's `[cluster]` needs for an unattended first boot,
//! made in advance: a one-time join secret, and the primary's API certificate with its key, so
//! that every joining node can pin the primary before the primary is even installed
//! (docs/first-boot.md).

use anyhow::{bail, Context, Result};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

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

/// Today's date (UTC) as year, month, day.
fn today() -> (i32, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        i32::try_from(y).unwrap_or(2026),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

/// A fresh join secret and a self-signed ECDSA P-256 certificate for the primary's API, valid
/// for [`VALID_YEARS`] years from today, naming the primary the way Proxmox's own certificate
/// does (its host name, `pve`, `localhost`, its address and 127.0.0.1).
pub fn generate(primary: &PrimaryId) -> Result<JoinKeys> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("making the primary's key pair")?;
    let mut params = CertificateParams::new(vec![
        primary.name.clone(),
        "pve".to_string(),
        "localhost".to_string(),
    ])
    .with_context(|| format!("the host name {:?} for the certificate", primary.name))?;
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
    let (y, m, d) = today();
    params.not_before = rcgen::date_time_ymd(y, m, d);
    // 29 February does not come back every tenth year.
    params.not_after = rcgen::date_time_ymd(y + VALID_YEARS, m, d.min(28));
    let cert = params
        .self_signed(&key)
        .context("signing the primary's certificate")?;
    Ok(JoinKeys {
        join_secret: join_secret(),
        certificate_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: tappaas_site::pem::fingerprint(cert.der()),
    })
}

/// Checks a cluster name the way the site file does: `[A-Za-z0-9-]`, at most 15 characters.
fn check_cluster_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!("--cluster-name {name:?}: a cluster name is 1 to 15 letters, digits and `-` (a Proxmox rule)");
    }
    Ok(())
}

/// The `[cluster]` table holding `keys`, as TOML for the site file.
pub fn snippet(keys: &JoinKeys, cluster_name: Option<&str>) -> Result<String> {
    let mut out = String::from(
        "# Made by `tappaas-installer join-keys`. It holds the join secret and the primary's\n\
         # private key: keep the site file like a key until the site is up (docs/first-boot.md).\n\
         [cluster]\n",
    );
    if let Some(name) = cluster_name {
        check_cluster_name(name)?;
        out.push_str(&format!("name = \"{name}\"\n"));
    }
    out.push_str(&format!("join-secret = \"{}\"\n", keys.join_secret));
    out.push_str(&format!(
        "# The primary's fingerprint, which every joining node pins (computed from\n\
         # primary-certificate; no primary-fingerprint is needed):\n\
         # primary-fingerprint: {}\n",
        keys.fingerprint
    ));
    out.push_str(&format!(
        "primary-certificate = \"\"\"\n{}\"\"\"\n",
        keys.certificate_pem
    ));
    out.push_str(&format!("primary-key = \"\"\"\n{}\"\"\"\n", keys.key_pem));
    Ok(out)
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
    fn today_is_a_real_date() {
        let (y, m, d) = today();
        assert!((2025..2200).contains(&y), "{y}");
        assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{m} {d}");
    }

    #[test]
    fn the_key_belongs_to_the_certificate_and_debug_hides_it() {
        let keys = generate(&PrimaryId {
            name: "tappaas1".into(),
            address: Ipv4Addr::new(10, 0, 0, 10),
        })
        .unwrap();
        let key = KeyPair::from_pem(&keys.key_pem).unwrap();
        let der = tappaas_site::pem::certificate_der(&keys.certificate_pem).unwrap();
        use rcgen::PublicKeyData;
        let spki = key.subject_public_key_info();
        assert!(der.windows(spki.len()).any(|w| w == spki.as_slice()));
        assert_eq!(keys.fingerprint, tappaas_site::pem::fingerprint(&der));
        let debug = format!("{keys:?}");
        assert!(!debug.contains(&keys.join_secret) && !debug.contains("PRIVATE"));
        assert!(snippet(&keys, Some("way too long a name")).is_err());
    }
}
