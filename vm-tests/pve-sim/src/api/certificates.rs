//! `/nodes/{node}/certificates/custom`: a custom API certificate for pveproxy.
//!
//! As pve-manager's `upload_custom_cert` with PVE::CertHelpers::set_cert_files: the files are
//! `/etc/pve/nodes/{node}/pveproxy-ssl.{pem,key}`; an existing pair is only replaced with
//! `force`; without `key` the existing key is kept (and must exist); `restart` reloads
//! pveproxy, which then serves the new certificate (after `Latencies::pveproxy_restart`,
//! dropping open connections). The key must belong to the certificate.

use std::sync::Arc;

use serde_json::json;

use super::nodes::target_node;
use super::{fail, Handled, Params, Shared};
use crate::tls::NodeCert;

/// The text from its first `-----BEGIN` on (PVE::Certificate::strip_leading_text).
fn strip_leading_text(pem: &str) -> &str {
    pem.find("-----BEGIN ").map_or(pem, |i| &pem[i..])
}

/// A 400 "Parameter verification failed." with one parameter's message, as `raise_param_exc`.
fn param_error<T>(param: &str, message: &str) -> Result<T, (u16, String)> {
    Err((400, json!({ param: message }).to_string()))
}

pub(super) fn upload_custom_cert(shared: &Arc<Shared>, node: &str, p: &Params) -> Handled {
    let mut st = shared.lock();
    let target = target_node(&st, node, p.str("node"))?;
    let n = st
        .nodes
        .get(&target)
        .ok_or((500, "no such node".to_string()))?;
    let certs = strip_leading_text(p.str("certificates"));
    // The key on "disk" now: the staged upload's, else the served custom certificate's.
    let existing_key = match (&n.staged_cert, n.custom_cert) {
        (Some(c), _) => Some(c.key_pem()),
        (None, true) => Some(n.cert.key_pem()),
        (None, false) => None,
    };
    let key = match p.get("key").map(strip_leading_text) {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => match existing_key {
            Some(k) => k,
            None => {
                return param_error(
                    "key",
                    "Attempted to upload custom certificate without (existing) key.",
                )
            }
        },
    };
    if n.custom_cert && !p.bool("force") {
        return fail("Custom certificate file exists but force flag is not set.");
    }
    let cert = match NodeCert::from_pem(certs, &key) {
        Ok(c) => c,
        Err(e) => {
            // Tell a certificate or key PVE's openssl could not read from a pair that does not
            // belong together (PVE::Certificate::assert_certificate_matches_key).
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
            if CertificateDer::from_pem_slice(certs.as_bytes()).is_err() {
                return fail(format!(
                    "Setting certificate files failed - unable to read certificate: {e}"
                ));
            }
            if PrivatePkcs8KeyDer::from_pem_slice(key.as_bytes()).is_err() {
                return param_error(
                    "key",
                    "Failed to load private key into SSL context (the simulator reads PKCS#8 keys)",
                );
            }
            return param_error(
                "key",
                "Failed to validate private key and certificate: the key does not belong to the certificate",
            );
        }
    };
    let info = json!({
        "filename": "pveproxy-ssl.pem",
        "fingerprint": cert.fingerprint(),
        "pem": cert.cert_pem(),
    });
    let restart = p.bool("restart");
    let latency = st.latencies.pveproxy_restart;
    let fingerprint = cert.fingerprint();
    if let Some(n) = st.nodes.get_mut(&target) {
        n.custom_cert = true;
        n.staged_cert = Some(cert);
    }
    drop(st);
    if restart {
        // `systemctl reload-or-restart pveproxy`: the answer goes out first; the new
        // workers serve the new certificate, and the old ones' connections end.
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            {
                let mut st = shared.lock();
                if let Some(n) = st.nodes.get_mut(&target) {
                    if n.staged_cert
                        .as_ref()
                        .is_some_and(|c| c.fingerprint() == fingerprint)
                    {
                        if let Some(c) = n.staged_cert.take() {
                            n.cert = c;
                            n.generation += 1;
                        }
                    }
                }
            }
            shared.changed.send_modify(|g| *g += 1);
        });
    }
    Ok(info)
}
