//! Certificate fingerprints in Proxmox's form: SHA-256 of the DER certificate, upper-case hex
//! pairs separated by colons (`AA:BB:...`, 32 pairs), as `pvenode cert info` prints them and as
//! `POST /cluster/config/join` expects them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// SHA-256 fingerprint of an X.509 certificate (its DER encoding).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// A fingerprint string that is not 32 colon-separated hex pairs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a SHA-256 fingerprint (32 hex pairs separated by ':', e.g. AB:01:...)")]
pub struct BadFingerprint(pub String);

impl Fingerprint {
    /// Parses `AA:BB:...` (any case).
    pub fn parse(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = || BadFingerprint(s.to_string());
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(tappaas_site::pem::fingerprint_bytes(der))
    }

    /// The fingerprint of the first certificate in a PEM file (as `pve-ssl.pem`,
    /// `pveproxy-ssl.pem` or PBS's `proxy.pem` hold them, the end-entity certificate first).
    pub fn of_pem(pem: &[u8]) -> Result<Fingerprint, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let cert = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or_else(|| "no CERTIFICATE block".to_string())?
            .map_err(|e| format!("bad PEM: {e:?}"))?;
        Ok(Fingerprint::of_der(cert.as_ref()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fingerprint::parse(s)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Fingerprint::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_proxmox_form_and_refuses_others() {
        let s = (0..32u8)
            .map(|i| format!("{:02x}", i * 7))
            .collect::<Vec<_>>()
            .join(":");
        let fp = Fingerprint::parse(&s).unwrap();
        assert_eq!(fp.to_string(), s.to_uppercase());
        assert_eq!(Fingerprint::parse(&fp.to_string()).unwrap(), fp);
        for bad in [
            "",
            "AA:BB",
            &s[..s.len() - 3],
            &format!("{s}:00"),
            &s.replace(':', "-"),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
        assert!(Fingerprint::parse(&s.replacen("00", "0g", 1)).is_err());
    }

    #[test]
    fn pem_and_der_agree() {
        let cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
        let der = Fingerprint::of_der(cert.cert.der());
        let pem = Fingerprint::of_pem(cert.cert.pem().as_bytes()).unwrap();
        assert_eq!(der, pem);
        assert!(Fingerprint::of_pem(b"nothing here").is_err());
    }
}
