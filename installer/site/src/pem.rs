//! PEM blocks (RFC 7468) as the site file carries them: the primary's API certificate and its
//! private key. Only the armour and the base64 are checked here; what the bytes mean is the
//! business of whoever installs them (pveproxy).
//!
//! Messages about a private key never quote any of its text.
//!
//! The armour is read here, not with rustls-pki-types' PEM reader (which the agent uses):
//! that reader skips blocks whose label it does not know, such as `ENCRYPTED PRIVATE KEY`,
//! and its errors do not say which part of a pasted block is wrong; both are what the
//! messages below are for. The base64 between the lines is the `base64` crate's.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Labels accepted for the primary's private key: PKCS#8 (what `openssl genpkey` and rcgen
/// write) and the traditional EC and RSA forms, all of which pveproxy reads.
pub const KEY_LABELS: &[&str] = &["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

/// The label and DER bytes of the one PEM block in `text`, or what is wrong with it.
pub fn decode_one(text: &str) -> Result<(String, Vec<u8>), String> {
    let t = text.trim();
    let begins = t.matches("-----BEGIN ").count();
    if begins == 0 {
        return Err("holds no PEM block (a line `-----BEGIN ...-----`)".into());
    }
    if begins > 1 {
        return Err(format!("holds {begins} PEM blocks; exactly one is needed"));
    }
    let rest = t
        .strip_prefix("-----BEGIN ")
        .ok_or("has text before its `-----BEGIN ...-----` line")?;
    let (label, rest) = rest
        .split_once("-----")
        .ok_or("has a malformed `-----BEGIN ...-----` line")?;
    if label.contains('\n') || label.contains('-') {
        return Err("has a malformed `-----BEGIN ...-----` line".into());
    }
    let end = format!("-----END {label}-----");
    let body = rest
        .strip_suffix(end.as_str())
        .ok_or_else(|| format!("does not end with `{end}` (or has text after it)"))?;
    let der = base64(body).ok_or("is not valid base64 between its BEGIN and END lines")?;
    if der.is_empty() {
        return Err("is an empty PEM block".into());
    }
    Ok((label.to_string(), der))
}

/// Standard base64 (RFC 4648) with `=` padding required, as PEM and OpenSSH write it.
/// Unused low bits of the last character are ignored, as OpenSSL does.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes standard base64, ignoring whitespace; `None` when malformed.
pub(crate) fn base64(s: &str) -> Option<Vec<u8>> {
    let chars: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(chars).ok()
}

/// The DER of a PEM `CERTIFICATE` block, or what is wrong with it.
pub fn certificate_der(text: &str) -> Result<Vec<u8>, String> {
    let (label, der) = decode_one(text)?;
    if label != "CERTIFICATE" {
        return Err(format!("is a PEM `{label}` block, not a `CERTIFICATE`"));
    }
    // Every X.509 certificate is a DER SEQUENCE.
    if der.first() != Some(&0x30) {
        return Err("holds no X.509 certificate (its content is not a DER sequence)".into());
    }
    Ok(der)
}

/// Checks that `text` is one unencrypted PEM private key block. Never quotes the key.
pub fn check_private_key(text: &str) -> Result<(), String> {
    let (label, der) = decode_one(text)?;
    if label == "ENCRYPTED PRIVATE KEY" {
        return Err("is an encrypted private key; Proxmox needs it without a passphrase".into());
    }
    if !KEY_LABELS.contains(&label.as_str()) {
        return Err(format!("is a PEM `{label}` block, not a `PRIVATE KEY`"));
    }
    if der.first() != Some(&0x30) {
        return Err("holds no private key (its content is not a DER sequence)".into());
    }
    Ok(())
}

/// Whether the private key in PEM `key` belongs to the certificate in PEM `cert`: the key's
/// public half must be the certificate's subject public key. `None` when that cannot be told
/// here: the key is in a form this check does not read (traditional EC or RSA PEM; Proxmox
/// still reads them), or either block is malformed (reported on its own).
pub fn key_belongs_to_certificate(cert: &str, key: &str) -> Option<bool> {
    use rcgen::PublicKeyData;
    let pair = rcgen::KeyPair::from_pem(key).ok()?;
    let spki = pair.subject_public_key_info();
    let der = certificate_der(cert).ok()?;
    if spki.is_empty() {
        return None;
    }
    Some(der.windows(spki.len()).any(|w| w == spki.as_slice()))
}

/// The SHA-256 digest of a DER certificate: what Proxmox's fingerprints are made of.
pub fn fingerprint_bytes(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The SHA-256 fingerprint of DER bytes as Proxmox shows it: upper-case hex pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    fingerprint_bytes(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of the certificate in PEM `text`, when it is one.
pub fn certificate_fingerprint(text: &str) -> Option<String> {
    certificate_der(text).ok().map(|der| fingerprint(&der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        // RFC 4648 section 10.
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64(enc).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
        assert_eq!(base64("Zm9\nv"), Some(b"foo".to_vec()));
        for bad in ["Zm9", "Zm=v", "Z===", "Zg==Zg==", "Zm9*"] {
            assert_eq!(base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_key_belongs_only_to_its_own_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["tappaas1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        assert_eq!(
            key_belongs_to_certificate(&cert, &key.serialize_pem()),
            Some(true)
        );
        assert_eq!(
            key_belongs_to_certificate(&cert, &other.serialize_pem()),
            Some(false)
        );
        // A traditional EC key is not read here: no verdict rather than a wrong one.
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(key_belongs_to_certificate(&cert, sec1), None);
        assert_eq!(
            key_belongs_to_certificate("not a certificate", &key.serialize_pem()),
            None
        );
    }

    #[test]
    fn blocks_are_counted_and_labels_checked() {
        let one = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(certificate_der(one), Ok(vec![0x30, 0]));
        let two = format!("{one}{one}");
        assert!(certificate_der(&two).unwrap_err().contains("2 PEM blocks"));
        assert!(certificate_der("MAA=")
            .unwrap_err()
            .contains("no PEM block"));
        let key = one.replace("CERTIFICATE", "PRIVATE KEY");
        assert!(certificate_der(&key).unwrap_err().contains("`PRIVATE KEY`"));
        assert_eq!(check_private_key(&key), Ok(()));
        let enc = one.replace("CERTIFICATE", "ENCRYPTED PRIVATE KEY");
        assert!(check_private_key(&enc).unwrap_err().contains("passphrase"));
        let cut = "-----BEGIN CERTIFICATE-----\nMAA=\n";
        assert!(certificate_der(cut)
            .unwrap_err()
            .contains("-----END CERTIFICATE-----"));
    }
}
