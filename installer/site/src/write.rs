//! The write side of the site file: a [`Site`] back to site-file TOML that [`crate::parse`]
//! reads to an equal `Site` (positions aside). The guided installer saves its answers with it;
//! the join-keys maker ([`crate::joinkeys`]) writes its `[cluster]` table with the same pieces.
//!
//! The document is built with `toml_edit`, which lays out tables, inline tables and arrays and
//! keeps comments; only string values are spelled here ([`quote`]), so saved files stay the
//! bytes they have always been (toml_edit would pick literal strings for values holding `"`
//! or `\`, and other escapes for some control characters).

use crate::model::{
    Cluster, DiskFilter, DiskRole, DiskSelector, Identify, NicSelector, Node, PoolSettings, Site,
    Upstream,
};
use std::fmt::Write as _;
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// A TOML basic string, quoted and escaped: `"`, `\`, newline and tab by their short escapes,
/// every other control character as `\uXXXX`.
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

/// `s` as a TOML string value spelled by [`quote`].
pub fn string(s: &str) -> Value {
    // quote() always yields a valid basic string; toml_edit's own spelling is the fallback.
    quote(s).parse().unwrap_or_else(|_| Value::from(s))
}

/// A multi-line basic string (`"""` then a newline, `s`, `"""`) for PEM blocks, which read
/// as they do in their own files. Falls back to [`string`] when `s` is not plain PEM text.
pub fn multi_line(s: &str) -> Value {
    let plain = s
        .chars()
        .all(|c| c == '\n' || !(c.is_control() || c == '"' || c == '\\'));
    if !plain {
        return string(s);
    }
    format!("\"\"\"\n{s}\"\"\"")
        .parse()
        .unwrap_or_else(|_| string(s))
}

/// `n` as a TOML integer; a count of bytes past TOML's integer range as its decimal digits in
/// a string, which the size parser reads back.
fn integer(n: u64) -> Value {
    i64::try_from(n).map_or_else(|_| string(&n.to_string()), Value::from)
}

fn list<T: std::fmt::Display>(items: &[T]) -> Value {
    Value::Array(items.iter().map(|i| string(&i.to_string())).collect())
}

fn inline<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut t = InlineTable::new();
    for (k, v) in pairs {
        t.insert(k, v);
    }
    Value::InlineTable(t)
}

fn nic_selector(s: &NicSelector) -> Value {
    match s {
        NicSelector::Mac(m) => inline([("mac", string(&m.to_string()))]),
        NicSelector::Name(n) => inline([("name", string(n))]),
        NicSelector::Pci(p) => inline([("pci", string(p))]),
        NicSelector::Port(p) => inline([("port", string(p))]),
    }
}

fn filter(f: &DiskFilter) -> Value {
    let mut t = InlineTable::new();
    for (k, v) in [
        ("model", &f.model),
        ("serial", &f.serial),
        ("vendor", &f.vendor),
        ("transport", &f.transport),
    ] {
        if let Some(v) = v {
            t.insert(k, string(v));
        }
    }
    if let Some(n) = f.min_size {
        t.insert("min-size", integer(n));
    }
    if let Some(n) = f.max_size {
        t.insert("max-size", integer(n));
    }
    if let Some(r) = f.rotational {
        t.insert("rotational", Value::from(r));
    }
    t.insert("count", Value::from(i64::from(f.count)));
    Value::InlineTable(t)
}

fn disk_selector(d: &DiskSelector) -> Value {
    match d {
        DiskSelector::ById(v) => inline([("by-id", string(v))]),
        DiskSelector::Serial(v) => inline([("serial", string(v))]),
        DiskSelector::Wwn(v) => inline([("wwn", string(v))]),
        DiskSelector::Filter(f) => filter(f),
    }
}

fn disk_role(r: &DiskRole) -> Item {
    let mut t = Table::new();
    if !r.disks.is_empty() {
        t["disks"] = Item::Value(Value::Array(r.disks.iter().map(disk_selector).collect()));
        // Only with disks: with the profile's hints the parser ignores (and warns about) it.
        t["layout"] = Item::Value(string(r.layout.as_str()));
    }
    t["wipe"] = Item::Value(Value::from(r.wipe));
    Item::Table(t)
}

fn pool(p: &PoolSettings) -> Item {
    let mut t = Table::new();
    t["name"] = Item::Value(string(&p.name));
    t["ashift"] = Item::Value(Value::from(i64::from(p.ashift)));
    t["compression"] = Item::Value(string(&p.compression));
    t["atime"] = Item::Value(Value::from(p.atime));
    t["xattr"] = Item::Value(string(&p.xattr));
    t["autotrim"] = Item::Value(Value::from(p.autotrim));
    t["compatibility"] = Item::Value(string(&p.compatibility));
    Item::Table(t)
}

/// `[site]`, `[credentials]` and `[network]` with its `[network.upstream]`.
fn site_tables(doc: &mut DocumentMut, site: &Site) {
    let s = &site.site;
    let mut t = Table::new();
    t["name"] = Item::Value(string(&s.name));
    t["domain"] = Item::Value(string(&s.domain));
    t["internal-domain"] = Item::Value(string(&s.internal_domain));
    t["admin-email"] = Item::Value(string(&s.admin_email));
    t["timezone"] = Item::Value(string(&s.timezone));
    t["keyboard"] = Item::Value(string(&s.keyboard));
    t["country"] = Item::Value(string(&s.country));
    doc["site"] = Item::Table(t);

    let c = &site.credentials;
    let mut t = Table::new();
    t["root-password-hash"] = Item::Value(string(&c.root_password_hash));
    t["ssh-keys"] = Item::Value(list(&c.ssh_keys));
    doc["credentials"] = Item::Table(t);

    let n = &site.network;
    let mut t = Table::new();
    t["management"] = Item::Value(string(&n.management.to_string()));
    t["firewall"] = Item::Value(string(&n.firewall.to_string()));
    t["dns"] = Item::Value(list(&n.dns));
    t["lan-bridge"] = Item::Value(string(&n.lan_bridge));
    t["wan-bridge"] = Item::Value(string(&n.wan_bridge));
    let mut up = Table::new();
    match &n.upstream {
        Upstream::Dhcp => up["mode"] = Item::Value(string("dhcp")),
        Upstream::Static {
            address,
            gateway,
            dns,
        } => {
            up["mode"] = Item::Value(string("static"));
            up["address"] = Item::Value(string(&address.to_string()));
            up["gateway"] = Item::Value(string(&gateway.to_string()));
            up["dns"] = Item::Value(list(dns));
        }
    }
    t["upstream"] = Item::Table(up);
    doc["network"] = Item::Table(t);
}

/// `[cluster]`. The first boot's join settings (docs/first-boot.md) are kept as loaded: the
/// join secret stays the one the other nodes' copies of the file carry.
fn cluster_table(c: &Cluster) -> Item {
    let mut t = Table::new();
    t["name"] = Item::Value(string(&c.name));
    for (k, v) in [
        ("join-secret", &c.join_secret),
        ("primary-fingerprint", &c.primary_fingerprint),
        ("primary-certificate", &c.primary_certificate),
        ("primary-key", &c.primary_key),
    ] {
        if let Some(v) = v {
            t[k] = Item::Value(string(v));
        }
    }
    if c.join_wait_minutes != Cluster::default().join_wait_minutes {
        t["join-wait-minutes"] = Item::Value(Value::from(i64::from(c.join_wait_minutes)));
    }
    Item::Table(t)
}

/// One `[[node]]` with its disk roles.
fn node_table(node: &Node) -> Table {
    let mut t = Table::new();
    t["name"] = Item::Value(string(&node.name));
    t["id"] = Item::Value(Value::from(i64::from(node.id)));
    t["role"] = Item::Value(string(node.role.as_str()));
    if let Some(p) = &node.profile {
        t["profile"] = Item::Value(string(p));
    }
    let identify = match &node.identify {
        Identify::Explicit => None,
        Identify::Mac(m) => Some(inline([("mac", string(&m.to_string()))])),
        Identify::DmiSerial(s) => Some(inline([("dmi-serial", string(s))])),
        Identify::Profile { profile, index } => Some(inline([
            ("profile", string(profile)),
            ("index", Value::from(i64::from(*index))),
        ])),
    };
    if let Some(v) = identify {
        t["identify"] = Item::Value(v);
    }
    t["address"] = Item::Value(string(&node.address.to_string()));
    t["replace"] = Item::Value(Value::from(node.replace));
    if let Some(fp) = &node.api_fingerprint {
        t["api-fingerprint"] = Item::Value(string(fp));
    }
    let mut nics = InlineTable::new();
    if let Some(w) = &node.nics.wan {
        nics.insert("wan", nic_selector(w));
    }
    if let Some(l) = &node.nics.lan {
        nics.insert("lan", nic_selector(l));
    }
    if !nics.is_empty() {
        t["nics"] = Item::Value(Value::InlineTable(nics));
    }
    t["boot"] = disk_role(&node.boot);
    if let Some(r) = &node.tank1 {
        t["tank1"] = disk_role(r);
    }
    if let Some(r) = &node.tank2 {
        t["tank2"] = disk_role(r);
    }
    t
}

/// `text` as `# ` comment lines (a bare `#` for an empty line).
pub fn comment_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "#{}{line}", if line.is_empty() { "" } else { " " });
    }
    out
}

/// The site as site-file TOML, every value explicit, under `comment` (its lines become `# `
/// comment lines, then a blank line). Secrets appear only as the crypt hash.
pub fn site_file(site: &Site, comment: &str) -> String {
    let mut doc = DocumentMut::new();
    doc["version"] = Item::Value(Value::from(i64::from(site.version)));
    if !comment.is_empty() {
        if let Some(mut key) = doc.as_table_mut().key_mut("version") {
            key.leaf_decor_mut()
                .set_prefix(format!("{}\n", comment_lines(comment)));
        }
    }
    site_tables(&mut doc, site);
    doc["cluster"] = cluster_table(&site.cluster);
    let mut storage = Table::new();
    storage.set_implicit(true);
    storage["rpool"] = pool(&site.storage.rpool);
    storage["tank1"] = pool(&site.storage.tank1);
    storage["tank2"] = pool(&site.storage.tank2);
    doc["storage"] = Item::Table(storage);
    let mut nodes = ArrayOfTables::new();
    for node in &site.nodes {
        nodes.push(node_table(node));
    }
    if !nodes.is_empty() {
        doc["node"] = Item::ArrayOfTables(nodes);
    }
    doc.to_string()
}
