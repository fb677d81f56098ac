//! Answers <-> site file: the TUI keeps its answers as a [`Site`] (the model the site-file
//! parser produces), writes it back as site-file TOML, and turns a typed password into the
//! crypt hash the site file carries. The TOML this module writes is read back by
//! [`tappaas_site::parse`] to an equal `Site` (positions aside); a test holds it to that.

use anyhow::{Context, Result};
use std::path::Path;
use tappaas_site::write::quote;
use tappaas_site::Site;

/// Parses site-file text with the front door's options; an invalid file gives every
/// diagnostic rendered with its line.
pub fn parse(src: &str, file: &str) -> Result<Site, String> {
    crate::frontdoor::parse_site(src).map_err(|d| tappaas_site::render_with_source(&d, file, src))
}

/// What heads every site file the TUI saves.
const SAVED_COMMENT: &str =
    "TAPPaaS site file, saved by the guided installer. Every key is explained in
docs/site-file.md. Install the next node unattended from it, or load it in the
installer to start from these answers.";

/// The site as site-file TOML (the site crate's writer), every value explicit. Secrets
/// appear only as the crypt hash.
pub fn to_toml(site: &Site) -> String {
    tappaas_site::write::site_file(site, SAVED_COMMENT)
}

/// The site file for a new site on a machine of `profile`: TAPPaaS defaults everywhere, the
/// profile's hints for disks and ports, and placeholders the screens ask the user to replace.
pub fn new_site_toml(profile: Option<&str>) -> String {
    let profile_line = profile
        .map(|p| format!("profile = {}\n", quote(p)))
        .unwrap_or_default();
    format!(
        "version = 1\n\n[site]\nname = \"tappaas\"\ndomain = \"example.org\"\n\
         admin-email = \"admin@example.org\"\n\n[credentials]\n\
         root-password-hash = {}\n\n[[node]]\nname = \"tappaas1\"\nrole = \"primary\"\n\
         {profile_line}\n[node.tank1]\n\n[node.tank2]\n",
        quote(PLACEHOLDER_HASH)
    )
}

/// A well-formed hash that no password produces (its hash part is all dots), standing in
/// until the user types a password; the TUI refuses to go on while it is in place.
pub const PLACEHOLDER_HASH: &str =
    "$6$unset$......................................................................................";

/// crypt(3)'s alphabet, for salts.
const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The `$6$` (SHA-512 crypt, 5000 rounds) hash of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let rnd = uuid::Uuid::new_v4().into_bytes();
    let salt: String = rnd
        .iter()
        .map(|b| char::from(CRYPT64[usize::from(b % 64)]))
        .collect();
    hash_password_with_salt(password, &salt)
}

/// The `$6$` hash of `password` with `salt` (at most 16 crypt64 characters).
pub fn hash_password_with_salt(password: &str, salt: &str) -> Result<String> {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e:?}"))?;
    let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e:?}"))?;
    Ok(format!("$6${salt}${hash}"))
}

/// How good a password is, in words for the credentials screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Refused: shorter than 8 characters.
    TooShort,
    /// Accepted, but easy to guess.
    Weak,
    /// Reasonable.
    Fair,
    /// Long and varied.
    Strong,
}

impl Strength {
    /// The word shown next to the password.
    pub fn label(self) -> &'static str {
        match self {
            Strength::TooShort => "too short (at least 8 characters)",
            Strength::Weak => "weak: longer, or mix letters, digits and signs",
            Strength::Fair => "fair",
            Strength::Strong => "strong",
        }
    }
}

/// A rough strength estimate: length and the kinds of characters used.
pub fn strength(pw: &str) -> Strength {
    let n = pw.chars().count();
    if n < 8 {
        return Strength::TooShort;
    }
    let kinds = [
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    match (n, kinds) {
        (16.., _) | (12.., 3..) => Strength::Strong,
        (10.., 2..) | (_, 3..) => Strength::Fair,
        _ => Strength::Weak,
    }
}

/// Writes a site file readable by its owner only (it holds the root password's hash).
pub fn write_site_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // An existing file keeps its mode on open: narrow it too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to its owner", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("flushing {}", path.display()))
}

/// The first OpenSSH public key line of a file (for example `id_ed25519.pub` on a stick).
pub fn read_ssh_key(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
        .map(str::to_string)
        .with_context(|| format!("{} holds no OpenSSH public key line", path.display()))
}

/// The site with every position cleared: two sites that differ only in where their values
/// stood in a file compare equal.
pub fn without_positions(site: &Site) -> Site {
    site.without_positions()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &str, name: &str) {
        let site = parse(src, name).unwrap_or_else(|e| panic!("{e}"));
        let text = to_toml(&site);
        let back = parse(&text, "saved.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(without_positions(&back), without_positions(&site), "{text}");
    }

    #[test]
    fn example_site_files_round_trip() {
        roundtrip(
            include_str!("../../../docs/examples/three-node-site.toml"),
            "three",
        );
        roundtrip(
            include_str!("../../../docs/examples/one-node-site.toml"),
            "one",
        );
        roundtrip(crate::testutil::LAB_SITE, "lab");
    }

    #[test]
    fn every_selector_kind_and_the_join_settings_round_trip() {
        let src = r#"version = 1
[site]
name = "x"
domain = "x.example"
admin-email = "a@x.example"
[credentials]
root-password-hash = "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/"
[cluster]
name = "x-cluster"
join-secret = "one-time-secret-0123456789"
primary-fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
join-wait-minutes = 30
[network.upstream]
mode = "static"
address = "192.168.1.50/24"
gateway = "192.168.1.1"
dns = ["9.9.9.9"]
[[node]]
role = "primary"
identify = { mac = "a8:b8:e0:01:02:03" }
nics = { wan = { mac = "a8:b8:e0:01:02:03" }, lan = { pci = "0000:01:00.0" } }
[node.boot]
disks = [{ by-id = "ata-X_1" }, { wwn = "0x5002538e40a1b2c3" }]
layout = "mirror"
wipe = true
[node.tank1]
disks = [{ serial = "S1" }, { model = "Samsung*", vendor = "ATA", min-size = "1T", max-size = 3000000000000, rotational = false, serial = "S*" }]
layout = "mirror"
[[node]]
role = "backup"
identify = { dmi-serial = "QTM \"1\"" }
nics = { wan = { name = "enp1s0" }, lan = { name = "enp2s0" } }
[node.boot]
disks = [{ transport = "sata", count = 1 }]
[node.tank2]
disks = [{ transport = "usb" }]
"#;
        roundtrip(src, "kinds");
    }

    #[test]
    fn the_primarys_certificate_and_key_round_trip() {
        let cert = include_str!("../../site/tests/data/primary.pem");
        let key = include_str!("../../site/tests/data/primary.key");
        let src = format!(
            "{}\n[cluster]\njoin-secret = \"one-time-secret-0123456789\"\n\
             primary-certificate = \"\"\"\n{cert}\"\"\"\nprimary-key = \"\"\"\n{key}\"\"\"\n",
            include_str!("../../../docs/examples/three-node-site.toml")
        );
        roundtrip(&src, "keys");
        let saved = to_toml(&parse(&src, "keys").unwrap_or_else(|e| panic!("{e}")));
        let back = parse(&saved, "saved").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.cluster.primary_key.as_deref(), Some(key));
        assert_eq!(back.cluster.primary_certificate.as_deref(), Some(cert));
    }

    #[test]
    fn a_nodes_api_fingerprint_round_trips() {
        let fp = vec!["AB"; 32].join(":");
        let src = include_str!("../../../docs/examples/three-node-site.toml").replacen(
            "role = \"member\"",
            &format!("role = \"member\"\napi-fingerprint = \"{fp}\""),
            1,
        );
        roundtrip(&src, "api-fingerprint");
        let saved = to_toml(&parse(&src, "api-fingerprint").unwrap_or_else(|e| panic!("{e}")));
        let back = parse(&saved, "saved").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.nodes[1].api_fingerprint.as_deref(), Some(fp.as_str()));
        assert_eq!(back.nodes[0].api_fingerprint, None);
    }

    #[test]
    fn a_new_site_parses_with_the_profile() {
        let site = parse(&new_site_toml(Some("qemu-lab")), "new").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(site.nodes[0].profile.as_deref(), Some("qemu-lab"));
        assert_eq!(site.credentials.root_password_hash, PLACEHOLDER_HASH);
    }

    #[test]
    fn the_hash_matches_openssl() {
        // `openssl passwd -6 -salt erNM9Gso4420Jdng change-me`, as in docs/examples.
        let h = hash_password_with_salt("change-me", "erNM9Gso4420Jdng").expect("hash");
        assert_eq!(h, "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/");
        let fresh = hash_password("change-me").expect("hash");
        assert!(fresh.starts_with("$6$") && fresh != h, "{fresh}");
    }

    #[test]
    fn strength_grows_with_length_and_variety() {
        assert_eq!(strength("abc"), Strength::TooShort);
        assert_eq!(strength("abcdefgh"), Strength::Weak);
        assert_eq!(strength("abcdefgh12"), Strength::Fair);
        assert_eq!(strength("Abcdefgh12!x"), Strength::Strong);
    }

    #[test]
    fn the_site_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("site.toml");
        std::fs::write(&p, "old").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_site_file(&p, "new").expect("save");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
    }

    #[test]
    fn ssh_key_is_the_first_key_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id.pub");
        std::fs::write(&p, "# mine\nssh-ed25519 AAAA x@y\n").expect("write");
        assert_eq!(read_ssh_key(&p).expect("key"), "ssh-ed25519 AAAA x@y");
        std::fs::write(&p, "nothing").expect("write");
        assert!(read_ssh_key(&p).is_err());
    }
}
