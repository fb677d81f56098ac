//! The write side of the site file: a [`Site`] back to site-file TOML that [`crate::parse`]
//! reads to an equal `Site` (positions aside). The guided installer saves its answers with it.

use crate::model::{
    Cluster, DiskFilter, DiskRole, DiskSelector, Identify, NicSelector, PoolSettings, Site,
    Upstream,
};
use std::fmt::Write as _;

/// A TOML basic string, quoted and escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(|i| quote(&i.to_string())).collect();
    format!("[{}]", v.join(", "))
}

fn nic_selector(s: &NicSelector) -> String {
    match s {
        NicSelector::Mac(m) => format!("{{ mac = {} }}", quote(&m.to_string())),
        NicSelector::Name(n) => format!("{{ name = {} }}", quote(n)),
        NicSelector::Pci(p) => format!("{{ pci = {} }}", quote(p)),
        NicSelector::Port(p) => format!("{{ port = {} }}", quote(p)),
    }
}

fn filter(f: &DiskFilter) -> String {
    let mut parts = Vec::new();
    let mut s = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k} = {}", quote(v)));
        }
    };
    s("model", &f.model);
    s("serial", &f.serial);
    s("vendor", &f.vendor);
    s("transport", &f.transport);
    if let Some(n) = f.min_size {
        parts.push(format!("min-size = {n}"));
    }
    if let Some(n) = f.max_size {
        parts.push(format!("max-size = {n}"));
    }
    if let Some(r) = f.rotational {
        parts.push(format!("rotational = {r}"));
    }
    parts.push(format!("count = {}", f.count));
    format!("{{ {} }}", parts.join(", "))
}

fn disk_selector(d: &DiskSelector) -> String {
    match d {
        DiskSelector::ById(v) => format!("{{ by-id = {} }}", quote(v)),
        DiskSelector::Serial(v) => format!("{{ serial = {} }}", quote(v)),
        DiskSelector::Wwn(v) => format!("{{ wwn = {} }}", quote(v)),
        DiskSelector::Filter(f) => filter(f),
    }
}

fn disk_role(out: &mut String, key: &str, r: &DiskRole) {
    let _ = writeln!(out, "\n[node.{key}]");
    if !r.disks.is_empty() {
        let v: Vec<String> = r.disks.iter().map(disk_selector).collect();
        let _ = writeln!(out, "disks = [{}]", v.join(", "));
        // Only with disks: with the profile's hints the parser ignores (and warns about) it.
        let _ = writeln!(out, "layout = {}", quote(r.layout.as_str()));
    }
    let _ = writeln!(out, "wipe = {}", r.wipe);
}

fn pool(out: &mut String, key: &str, p: &PoolSettings) {
    let _ = writeln!(out, "\n[storage.{key}]");
    let _ = writeln!(out, "name = {}", quote(&p.name));
    let _ = writeln!(out, "ashift = {}", p.ashift);
    let _ = writeln!(out, "compression = {}", quote(&p.compression));
    let _ = writeln!(out, "atime = {}", p.atime);
    let _ = writeln!(out, "xattr = {}", quote(&p.xattr));
    let _ = writeln!(out, "autotrim = {}", p.autotrim);
    let _ = writeln!(out, "compatibility = {}", quote(&p.compatibility));
}

/// The site as site-file TOML, every value explicit, under `comment` (its lines become `# `
/// comment lines, then a blank line). Secrets appear only as the crypt hash.
pub fn site_file(site: &Site, comment: &str) -> String {
    let mut o = String::new();
    for line in comment.lines() {
        let _ = writeln!(o, "#{}{line}", if line.is_empty() { "" } else { " " });
    }
    if !comment.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "version = {}", site.version);
    let s = &site.site;
    let _ = writeln!(o, "\n[site]");
    let _ = writeln!(o, "name = {}", quote(&s.name));
    let _ = writeln!(o, "domain = {}", quote(&s.domain));
    let _ = writeln!(o, "internal-domain = {}", quote(&s.internal_domain));
    let _ = writeln!(o, "admin-email = {}", quote(&s.admin_email));
    let _ = writeln!(o, "timezone = {}", quote(&s.timezone));
    let _ = writeln!(o, "keyboard = {}", quote(&s.keyboard));
    let _ = writeln!(o, "country = {}", quote(&s.country));

    let c = &site.credentials;
    let _ = writeln!(o, "\n[credentials]");
    let _ = writeln!(o, "root-password-hash = {}", quote(&c.root_password_hash));
    let _ = writeln!(o, "ssh-keys = {}", list(&c.ssh_keys));

    let n = &site.network;
    let _ = writeln!(o, "\n[network]");
    let _ = writeln!(o, "management = {}", quote(&n.management.to_string()));
    let _ = writeln!(o, "firewall = {}", quote(&n.firewall.to_string()));
    let _ = writeln!(o, "dns = {}", list(&n.dns));
    let _ = writeln!(o, "lan-bridge = {}", quote(&n.lan_bridge));
    let _ = writeln!(o, "wan-bridge = {}", quote(&n.wan_bridge));
    let _ = writeln!(o, "\n[network.upstream]");
    match &n.upstream {
        Upstream::Dhcp => {
            let _ = writeln!(o, "mode = \"dhcp\"");
        }
        Upstream::Static {
            address,
            gateway,
            dns,
        } => {
            let _ = writeln!(o, "mode = \"static\"");
            let _ = writeln!(o, "address = {}", quote(&address.to_string()));
            let _ = writeln!(o, "gateway = {}", quote(&gateway.to_string()));
            let _ = writeln!(o, "dns = {}", list(dns));
        }
    }

    let _ = writeln!(o, "\n[cluster]");
    let _ = writeln!(o, "name = {}", quote(&site.cluster.name));
    // The first boot's join settings (docs/first-boot.md) are kept as loaded: the join secret
    // stays the one the other nodes' copies of the file carry.
    if let Some(secret) = &site.cluster.join_secret {
        let _ = writeln!(o, "join-secret = {}", quote(secret));
    }
    if let Some(fp) = &site.cluster.primary_fingerprint {
        let _ = writeln!(o, "primary-fingerprint = {}", quote(fp));
    }
    if let Some(cert) = &site.cluster.primary_certificate {
        let _ = writeln!(o, "primary-certificate = {}", quote(cert));
    }
    if let Some(key) = &site.cluster.primary_key {
        let _ = writeln!(o, "primary-key = {}", quote(key));
    }
    if site.cluster.join_wait_minutes != Cluster::default().join_wait_minutes {
        let _ = writeln!(o, "join-wait-minutes = {}", site.cluster.join_wait_minutes);
    }

    pool(&mut o, "rpool", &site.storage.rpool);
    pool(&mut o, "tank1", &site.storage.tank1);
    pool(&mut o, "tank2", &site.storage.tank2);

    for node in &site.nodes {
        let _ = writeln!(o, "\n[[node]]");
        let _ = writeln!(o, "name = {}", quote(&node.name));
        let _ = writeln!(o, "id = {}", node.id);
        let _ = writeln!(o, "role = {}", quote(node.role.as_str()));
        if let Some(p) = &node.profile {
            let _ = writeln!(o, "profile = {}", quote(p));
        }
        match &node.identify {
            Identify::Explicit => {}
            Identify::Mac(m) => {
                let _ = writeln!(o, "identify = {{ mac = {} }}", quote(&m.to_string()));
            }
            Identify::DmiSerial(s) => {
                let _ = writeln!(o, "identify = {{ dmi-serial = {} }}", quote(s));
            }
            Identify::Profile { profile, index } => {
                let _ = writeln!(
                    o,
                    "identify = {{ profile = {}, index = {index} }}",
                    quote(profile)
                );
            }
        }
        let _ = writeln!(o, "address = {}", quote(&node.address.to_string()));
        let _ = writeln!(o, "replace = {}", node.replace);
        if let Some(fp) = &node.api_fingerprint {
            let _ = writeln!(o, "api-fingerprint = {}", quote(fp));
        }
        let mut nics = Vec::new();
        if let Some(w) = &node.nics.wan {
            nics.push(format!("wan = {}", nic_selector(w)));
        }
        if let Some(l) = &node.nics.lan {
            nics.push(format!("lan = {}", nic_selector(l)));
        }
        if !nics.is_empty() {
            let _ = writeln!(o, "nics = {{ {} }}", nics.join(", "));
        }
        disk_role(&mut o, "boot", &node.boot);
        if let Some(t) = &node.tank1 {
            disk_role(&mut o, "tank1", t);
        }
        if let Some(t) = &node.tank2 {
            disk_role(&mut o, "tank2", t);
        }
    }
    o
}
