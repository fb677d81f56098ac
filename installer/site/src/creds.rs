//! Checks for the credentials: crypt(3) hashes and OpenSSH public keys.
//!
//! Messages never repeat a value that might be a clear-text password.

use crate::check::{err, err_hint, Check};

const HASH_HINT: &str = "make a hash with `openssl passwd -6` or `mkpasswd -m yescrypt` and \
                         paste its output (starting with $6$ or $y$)";

/// crypt(3)'s base64 alphabet.
fn crypt64(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/')
}

/// Checks a crypt(3) hash: `$y$`, `$gy$`, `$7$`, `$6$`, `$5$`, `$2a$`/`$2b$`/`$2y$`.
pub(crate) fn crypt_hash(s: &str) -> Check<String> {
    if !s.starts_with('$') {
        // Do not echo the value: it is probably the password itself.
        return err_hint(
            "this looks like a clear-text password, not a crypt hash; the site file must \
             never hold the password itself",
            HASH_HINT,
        );
    }
    let parts: Vec<&str> = s.split('$').collect();
    let id = parts.get(1).copied().unwrap_or("");
    let bad = |what: &str| err_hint(format!("malformed ${id}$ hash: {what}"), HASH_HINT);
    match id {
        "6" | "5" => {
            let want = if id == "6" { 86 } else { 43 };
            let (salt, hash) = match parts.as_slice() {
                ["", _, rounds, salt, hash] if rounds.starts_with("rounds=") => {
                    let n = rounds["rounds=".len()..].parse::<u64>();
                    if !n.is_ok_and(|n| (1000..=999_999_999).contains(&n)) {
                        return bad("rounds= must be 1000 to 999999999");
                    }
                    (*salt, *hash)
                }
                ["", _, salt, hash] => (*salt, *hash),
                _ => return bad("expected $id$[rounds=N$]salt$hash"),
            };
            if salt.is_empty() || salt.len() > 16 {
                return bad("the salt must have 1 to 16 characters");
            }
            if hash.len() != want || !crypt64(hash) {
                return bad(&format!("the hash part must be {want} characters of [./0-9A-Za-z] (truncated when pasted?)"));
            }
            Check::Ok(s.to_string())
        }
        "y" | "gy" | "7" => match parts.as_slice() {
            ["", _, params, salt, hash]
                if !params.is_empty() && !salt.is_empty() && hash.len() == 43 && crypt64(hash) =>
            {
                Check::Ok(s.to_string())
            }
            _ => bad(
                "expected $y$params$salt$hash with a 43-character hash (truncated when pasted?)",
            ),
        },
        "2a" | "2b" | "2y" => match parts.as_slice() {
            ["", _, cost, rest]
                if cost.len() == 2
                    && cost.parse::<u8>().is_ok_and(|c| (4..=31).contains(&c))
                    && rest.len() == 53
                    && crypt64(rest) =>
            {
                Check::Ok(s.to_string())
            }
            _ => bad("expected $2b$NN$ and 53 characters"),
        },
        "1" => err_hint(
            "$1$ (MD5-crypt) hashes are cracked in seconds; they are refused",
            HASH_HINT,
        ),
        _ => err_hint(format!("unknown hash scheme ${id}$"), HASH_HINT),
    }
}

/// Decodes the base64 field of an SSH key (standard alphabet, padded, no whitespace: the
/// line was split on it); `None` when malformed.
fn base64(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    crate::pem::base64(s)
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks one OpenSSH public key line: `TYPE BASE64 [comment]`. The base64 body must decode
/// and name the same type, which catches keys truncated or wrapped when pasted.
pub(crate) fn ssh_key(s: &str) -> Check<String> {
    let line = s.trim();
    if line.contains("PRIVATE KEY") {
        return err_hint(
            "this is a PRIVATE key; it must never leave your machine",
            "paste the public key: the contents of the .pub file (ssh-keygen -y -f KEY prints it)",
        );
    }
    let mut fields = line.split_whitespace();
    let ty = fields.next().unwrap_or("");
    let body = fields.next().unwrap_or("");
    if ty == "ssh-dss" {
        return err("DSA keys (ssh-dss) are disabled in current OpenSSH; use an ed25519 key (ssh-keygen -t ed25519)");
    }
    if !KEY_TYPES.contains(&ty) {
        return err_hint(
            format!("`{}` is not an SSH public key type", ty.chars().take(40).collect::<String>()),
            "a key line looks like \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... comment\" (options such as from=\"...\" are not supported)",
        );
    }
    if line.contains(['\n', '\r']) {
        return err("the key spans several lines; put it on one line");
    }
    let Some(blob) = base64(body) else {
        return err_hint(
            format!("the {ty} key's base64 body is malformed"),
            "copy the whole line from the .pub file again",
        );
    };
    let len = blob
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
    let inner = len.and_then(|n| blob.get(4..4 + n));
    if inner != Some(ty.as_bytes()) {
        return err_hint(
            format!("the key body does not encode a {ty} key (truncated or mixed-up key?)"),
            "copy the whole line from the .pub file again",
        );
    }
    if ty == "ssh-ed25519" && blob.len() != 51 {
        return err_hint(
            "the ssh-ed25519 key body has the wrong length (truncated?)",
            "copy the whole line from the .pub file again",
        );
    }
    Check::Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Throwaway keys made with ssh-keygen for these tests; the private halves were deleted.
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICs4Fy8pLyxMdPeEqWAR0+mKt2tSQM+9lAT1IhRwwGkc admin@laptop";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNsMM6SOzwjs0/raQ14vcMCMi+lkhQCzvvX96GWr2hy/qSZbBxfqfZtaWN77ZucZFcm9vfdXsFotL5TKcRQev8A= ops";

    #[test]
    fn keys() {
        assert!(matches!(ssh_key(ED), Check::Ok(_)));
        assert!(matches!(ssh_key(ECDSA), Check::Ok(_)));
        assert!(matches!(ssh_key(&ED[..60]), Check::Err(..)));
        let wrong_type = ED.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(matches!(ssh_key(&wrong_type), Check::Err(m, _) if m.contains("does not encode")));
        assert!(matches!(ssh_key("ssh-dss AAAA"), Check::Err(m, _) if m.contains("DSA")));
        assert!(
            matches!(ssh_key("-----BEGIN OPENSSH PRIVATE KEY-----"), Check::Err(m, _) if m.contains("PRIVATE"))
        );
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64("aGVsbA=="), Some(b"hell".to_vec()));
        assert_eq!(base64("aGVs"), Some(b"hel".to_vec()));
        assert_eq!(base64("aGV"), None);
        assert_eq!(base64("a=Vs"), None);
        assert_eq!(base64("===="), None);
    }

    // Real hashes of the throwaway password "change-me" (openssl passwd -6 / -5,
    // mkpasswd -m yescrypt, Python's crypt for $2b$ and rounds=).
    pub(crate) const SHA512: &str = "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/";
    const SHA512_ROUNDS: &str = "$6$rounds=10000$saltsalt$dKDkGLTOOmMYzLFXB5HniYAw8iZAaahPPtLppx/pCUisjmIbnFDkQr/u5c.8.EFV7vO3CPolCCghC.aAheMr71";
    const SHA256: &str = "$5$pcRZe8oUVSEc7vGG$dR2SzzR3aNLEHYAjnG37n3zctb6M0rjBi50/xkKLrj1";
    const YESCRYPT: &str =
        "$y$j9T$fOy6lihNnsplzB2r8Xojt1$Nmam28fBipvuNCAZpAFHRBgdWdaw1DadqiWsJsv3mMA";
    const BCRYPT: &str = "$2b$10$abcdefghijklmnopqrstuuLL/yj83dfjz.vJ1Q40f2H5zyNqFutFS";

    #[test]
    fn hashes() {
        for good in [SHA512, SHA512_ROUNDS, SHA256, YESCRYPT, BCRYPT] {
            assert!(matches!(crypt_hash(good), Check::Ok(_)), "{good}");
            assert!(
                matches!(crypt_hash(&good[..good.len() - 5]), Check::Err(..)),
                "{good}"
            );
        }
        assert!(matches!(crypt_hash("hunter2"), Check::Err(m, _) if !m.contains("hunter2")));
        assert!(matches!(crypt_hash("$1$abc$def"), Check::Err(..)));
        assert!(matches!(crypt_hash("$9$abc$def"), Check::Err(m, _) if m.contains("unknown")));
        assert!(
            matches!(crypt_hash("$6$rounds=5$salt$x"), Check::Err(m, _) if m.contains("rounds"))
        );
    }
}
