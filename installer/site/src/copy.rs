//! The copy of the site file a node keeps (`/etc/tappaas/site.toml`): the site file as given,
//! except that the primary's certificate and private key are replaced by the fingerprint they
//! pin. No node keeps the key in its site file: the primary gets it as a file of its own, which
//! its first boot hands to Proxmox and deletes, and the other nodes need only the fingerprint.

use crate::{parse, ParseOptions};
use toml::de::{DeTable, DeValue};

/// `src` with `[cluster]`'s `primary-certificate` and `primary-key` removed and, unless the
/// file gives it already, `primary-fingerprint` set to the certificate's fingerprint. Returns
/// `src` unchanged when it has no key or certificate. The result is parsed again and must mean
/// the same site with the same pinned fingerprint; otherwise the error says why.
pub fn without_primary_key(src: &str, opts: &ParseOptions) -> Result<String, String> {
    let site = parse(src, opts).map_err(|_| "the site file is not valid".to_string())?;
    let c = &site.cluster;
    if c.primary_certificate.is_none() && c.primary_key.is_none() {
        return Ok(src.to_string());
    }
    let pinned = c.pinned_fingerprint();
    let doc = DeTable::parse(src).map_err(|_| "the site file is not valid TOML".to_string())?;
    let cluster = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == "cluster")
        .map(|(_, v)| v);
    let Some(DeValue::Table(cluster)) = cluster.map(|v| v.get_ref()) else {
        return Err("[cluster] is not a table".into());
    };
    let mut cuts: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (k, v) in cluster.iter() {
        let key = k.get_ref().as_ref();
        let with = match key {
            "primary-certificate" if c.primary_fingerprint.is_none() => match &pinned {
                Some(fp) => format!("primary-fingerprint = \"{fp}\""),
                None => return Err("primary-certificate holds no certificate".into()),
            },
            "primary-certificate" => {
                "# primary-certificate: replaced by primary-fingerprint by the installer".into()
            }
            "primary-key" => {
                "# primary-key: removed by the installer (only the primary gets it, as a file)"
                    .into()
            }
            _ => continue,
        };
        cuts.push((k.span().start..v.span().end, with));
    }
    cuts.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = src.to_string();
    for (range, with) in cuts {
        if range.start > range.end || range.end > out.len() {
            return Err("the positions of [cluster]'s keys are out of range".into());
        }
        out.replace_range(range, &with);
    }
    let back = parse(&out, opts).map_err(|d| {
        format!(
            "without the key the site file does not read back ({}); write [cluster] as a table \
             of its own, one key per line",
            d.first().map(|d| d.message.as_str()).unwrap_or("?")
        )
    })?;
    if back.cluster.primary_key.is_some()
        || back.cluster.primary_certificate.is_some()
        || back.cluster.pinned_fingerprint() != pinned
    {
        return Err("without the key the site file pins another certificate".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = include_str!("../../../docs/examples/three-node-site.toml");
    const CERT: &str = include_str!("../tests/data/primary.pem");
    const KEY: &str = include_str!("../tests/data/primary.key");

    fn key_lines() -> Vec<&'static str> {
        KEY.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    #[test]
    fn the_key_and_certificate_become_the_fingerprint() {
        let src = format!(
            "{SITE}\n[cluster]\nname = \"lab\"\nprimary-certificate = \"\"\"\n{CERT}\"\"\"\n\
             primary-key = \"\"\"\n{KEY}\"\"\"\njoin-wait-minutes = 30\n"
        );
        let opts = ParseOptions::default();
        let before = parse(&src, &opts).unwrap();
        let out = without_primary_key(&src, &opts).unwrap();
        for l in key_lines() {
            assert!(!out.contains(l), "{out}");
        }
        assert!(!out.contains("BEGIN CERTIFICATE"), "{out}");
        let after = parse(&out, &opts).unwrap();
        assert_eq!(
            after.cluster.primary_fingerprint,
            before.cluster.pinned_fingerprint()
        );
        assert_eq!(after.cluster.name, "lab");
        assert_eq!(after.cluster.join_wait_minutes, 30);
        assert_eq!(after.nodes.len(), before.nodes.len());
        // Everything before [cluster] is untouched.
        assert!(out.starts_with(SITE));
    }

    #[test]
    fn a_given_fingerprint_stays_and_a_site_without_keys_is_unchanged() {
        let opts = ParseOptions::default();
        assert_eq!(without_primary_key(SITE, &opts).unwrap(), SITE);
        let fp = crate::pem::certificate_fingerprint(CERT).unwrap();
        let src = format!(
            "{SITE}\n[cluster]\nprimary-fingerprint = \"{fp}\"\nprimary-key = '''\n{KEY}'''\n\
             primary-certificate = '''\n{CERT}'''\n"
        );
        let out = without_primary_key(&src, &opts).unwrap();
        assert_eq!(out.matches("primary-fingerprint =").count(), 1, "{out}");
        let after = parse(&out, &opts).unwrap();
        assert_eq!(after.cluster.pinned_fingerprint(), Some(fp));
        assert_eq!(after.cluster.primary_key, None);
    }
}
