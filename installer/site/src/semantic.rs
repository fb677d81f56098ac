//! Checks across fields and nodes: version, node count, roles, duplicates, addresses against
//! the management network, pool names, disks named twice.
//!
//! Every check skips values that were already refused ([`Meta::bad`]), so one mistake gives one
//! error, not a cascade.

use crate::diag::Diags;
use crate::model::*;
use crate::walk::Meta;
use std::collections::HashMap;
use std::net::Ipv4Addr;

pub(crate) fn check(site: &Site, meta: &Meta, d: &mut Diags) {
    if !meta.bad("version") && site.version != 1 {
        d.err_hint(
            meta.pos("version"),
            "version",
            format!(
                "unsupported site file version {}: this installer reads version 1",
                site.version
            ),
            "write version = 1 (see docs/site-file.md)",
        );
    }
    nodes_count(site, meta, d);
    roles(site, meta, d);
    duplicates(site, meta, d);
    addresses(site, meta, d);
    pools(site, meta, d);
    disks(site, meta, d);
    join_settings(site, meta, d);
    api_fingerprints(site, meta, d);
    replaced_primary_needs_a_survivor(site, meta, d);
    if !meta.bad("network.lan-bridge")
        && !meta.bad("network.wan-bridge")
        && site.network.lan_bridge == site.network.wan_bridge
    {
        d.err(
            meta.pos("network.wan-bridge"),
            "network.wan-bridge",
            "the LAN and WAN bridges have the same name",
        );
    }
}

/// A site of several nodes forms its cluster unattended only with a join secret; without one
/// every node stops at its first boot's `open-join-window`. Not an error: the file still
/// installs, and the secret can be added before the first boot.
fn join_settings(site: &Site, meta: &Meta, d: &mut Diags) {
    if site.nodes.len() < 2 || site.cluster.join_secret.is_some() || meta.bad("cluster.join-secret")
    {
        return;
    }
    d.warn_hint(
        meta.pos("cluster"),
        "cluster.join-secret",
        format!(
            "{} nodes and no join-secret: the nodes cannot form their cluster unattended (each \
             stops at its first boot's open-join-window)",
            site.nodes.len()
        ),
        "`tappaas-installer join-keys` prints a [cluster] table with a fresh join-secret and \
         the primary's certificate; paste it into the site file",
    );
}

fn npath(i: usize) -> String {
    format!("node[{i}]")
}

/// `node[0] (tappaas1, line 12)`
fn who(site: &Site, i: usize) -> String {
    match site.nodes.get(i) {
        Some(n) => format!("node[{i}] ({}, line {})", n.name, n.pos.line),
        None => npath(i),
    }
}

fn nodes_count(site: &Site, meta: &Meta, d: &mut Diags) {
    if site.nodes.is_empty() && !meta.bad("node") {
        d.err_hint(
            meta.pos("node"),
            "node",
            "the site has no nodes",
            "add a [[node]] table for each machine",
        );
    }
    if site.nodes.len() > 9 {
        d.err(
            site.nodes[9].pos,
            &npath(9),
            format!("{} nodes: a site has at most 9", site.nodes.len()),
        );
    }
}

fn roles(site: &Site, meta: &Meta, d: &mut Diags) {
    let with = |role: Role| -> Vec<usize> {
        (0..site.nodes.len())
            .filter(|&i| site.nodes[i].role == role && !meta.bad(&format!("node[{i}].role")))
            .collect()
    };
    let any_role_bad = (0..site.nodes.len()).any(|i| meta.bad(&format!("node[{i}].role")));
    let primaries = with(Role::Primary);
    if primaries.is_empty() && !site.nodes.is_empty() && !any_role_bad {
        d.err_hint(
            site.nodes[0].pos,
            "node[0].role",
            "no node has role = \"primary\"",
            "exactly one node creates the cluster: give it role = \"primary\"",
        );
    }
    for &i in primaries.iter().skip(1) {
        d.err_hint(
            meta.pos(&format!("node[{i}].role")),
            &format!("node[{i}].role"),
            format!(
                "a second primary: {} is already the primary",
                who(site, primaries[0])
            ),
            "exactly one node is primary; make this one role = \"member\"",
        );
    }
    let backups = with(Role::Backup);
    for &i in backups.iter().skip(1) {
        d.err_hint(
            meta.pos(&format!("node[{i}].role")),
            &format!("node[{i}].role"),
            format!(
                "a second backup node: {} is already the backup node",
                who(site, backups[0])
            ),
            "a site has at most one backup node; make this one role = \"member\"",
        );
    }
    if backups.is_empty() && site.nodes.len() >= 2 && !any_role_bad {
        let msg = if site.nodes.len() == 2 {
            "two nodes and no backup node: the cluster loses quorum when either node fails"
        } else {
            "no backup node: nothing runs Proxmox Backup Server"
        };
        d.warn_hint(
            site.nodes[0].pos,
            "node",
            msg,
            "add a small third node with role = \"backup\"",
        );
    }
    for (i, n) in site.nodes.iter().enumerate() {
        let p = npath(i);
        if meta.bad(&format!("{p}.role")) {
            continue;
        }
        if n.role == Role::Backup && n.tank2.is_none() {
            d.warn_hint(
                n.pos,
                &format!("{p}.tank2"),
                "the backup node has no [node.tank2]: Proxmox Backup Server has no datastore",
                "add [node.tank2] with the backup disk(s)",
            );
        }
        if let Some(t1) = &n.tank1 {
            let path = format!("{p}.tank1.layout");
            let one_disk = match t1.disks.as_slice() {
                [DiskSelector::Filter(f)] => f.count == 1,
                [_] => true,
                _ => false,
            };
            if t1.layout == Layout::Single && one_disk && !meta.bad(&path) {
                let msg = if site.nodes.len() == 1 {
                    "tank1 on a single disk: no redundancy; a failed disk loses the VMs until restored from backup"
                } else {
                    "tank1 on a single disk: no redundancy on this node; replication between nodes only"
                };
                d.warn_hint(
                    meta.pos(&path),
                    &path,
                    msg,
                    "add a second disk with layout = \"mirror\"",
                );
            }
        }
        if n.role != Role::Backup && n.tank1.is_none() {
            d.warn_hint(
                n.pos,
                &format!("{p}.tank1"),
                format!(
                    "{} node without [node.tank1]: it cannot hold or receive replicated VMs",
                    n.role
                ),
                "add [node.tank1] with the VM disk(s)",
            );
        }
    }
}

/// Reports the second and later holders of the same value.
fn dup<K: std::hash::Hash + Eq>(
    d: &mut Diags,
    meta: &Meta,
    what: &str,
    entries: Vec<(K, String, String)>, // (value, display, path)
) {
    let mut seen: HashMap<K, (String, String)> = HashMap::new();
    for (k, shown, path) in entries {
        if meta.bad(&path) {
            continue;
        }
        match seen.get(&k) {
            Some((first, _)) => {
                let dflt = if meta.has(&path) { "" } else { " (by default)" };
                d.err(
                    meta.pos(&path),
                    &path,
                    format!(
                        "duplicate {what} {shown}{dflt}: {first} has it too (line {})",
                        meta.pos(first).line
                    ),
                );
            }
            None => {
                seen.insert(k, (path.clone(), shown));
            }
        }
    }
}

/// The primary's `api-fingerprint` is the certificate the cluster pins for it: two values for
/// one certificate cannot both be right.
fn api_fingerprints(site: &Site, meta: &Meta, d: &mut Diags) {
    if ["cluster.primary-fingerprint", "cluster.primary-certificate"]
        .iter()
        .any(|p| meta.bad(p))
    {
        return;
    }
    let Some(pinned) = site.cluster.pinned_fingerprint() else {
        return;
    };
    for (i, n) in site.nodes.iter().enumerate() {
        let p = format!("node[{i}].api-fingerprint");
        if n.role != Role::Primary || meta.bad(&p) || meta.bad(&format!("node[{i}].role")) {
            continue;
        }
        if let Some(given) = &n.api_fingerprint {
            if *given != pinned {
                d.err_hint(
                    meta.pos(&p),
                    &p,
                    format!(
                        "the primary's api-fingerprint `{given}` is not the fingerprint the cluster pins for it, {pinned}"
                    ),
                    "leave api-fingerprint out on the primary (the cluster's pin is used), or make \
                     the two agree",
                );
            }
        }
    }
}

/// A replaced primary of a multi-node site joins through a survivor it pins: without any
/// other node's `api-fingerprint` its first boot stops and asks for one. Said here already,
/// before the stick is used; a warning, since the line can still be added on the node.
fn replaced_primary_needs_a_survivor(site: &Site, meta: &Meta, d: &mut Diags) {
    if site.nodes.len() < 2 {
        return;
    }
    for (i, n) in site.nodes.iter().enumerate() {
        if n.role != Role::Primary || !n.replace || meta.bad(&format!("node[{i}].role")) {
            continue;
        }
        let pinned = site
            .nodes
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.api_fingerprint.is_some());
        if !pinned {
            let p = format!("node[{i}].replace");
            d.warn_hint(
                meta.pos(&p),
                &p,
                "the primary is replaced, but no other node has an api-fingerprint: the \
                 replacement joins the cluster through a surviving node and must pin its \
                 certificate, so its first boot will stop and ask for one",
                "run `tappaas-bootstrap join-window open --site <this file>` on a surviving \
                 node and add the `api-fingerprint = \"...\"` line it prints to that node",
            );
        }
    }
}

fn duplicates(site: &Site, meta: &Meta, d: &mut Diags) {
    let nodes = site.nodes.iter().enumerate();
    // Names and addresses computed from a duplicate id would only repeat the id's error.
    let mut ids = std::collections::HashSet::new();
    let dup_id: Vec<bool> = site.nodes.iter().map(|n| !ids.insert(n.id)).collect();
    let derived =
        |i: usize, key: &str| -> bool { dup_id[i] && !meta.has(&format!("node[{i}].{key}")) };
    dup(
        d,
        meta,
        "node id",
        nodes
            .clone()
            .map(|(i, n)| (n.id, n.id.to_string(), format!("node[{i}].id")))
            .collect(),
    );
    dup(
        d,
        meta,
        "node name",
        nodes
            .clone()
            .filter(|(i, _)| !derived(*i, "name"))
            .map(|(i, n)| {
                (
                    n.name.clone(),
                    format!("`{}`", n.name),
                    format!("node[{i}].name"),
                )
            })
            .collect(),
    );
    dup(
        d,
        meta,
        "address",
        nodes
            .clone()
            .filter(|(i, _)| !derived(*i, "address"))
            .map(|(i, n)| {
                (
                    n.address,
                    n.address.to_string(),
                    format!("node[{i}].address"),
                )
            })
            .collect(),
    );
    // A node may be identified by the MAC of its own WAN or LAN port; other nodes may not share it.
    let mut macs: HashMap<Mac, (usize, String)> = HashMap::new();
    for (i, n) in nodes.clone() {
        let mut mine: Vec<(Mac, String)> = Vec::new();
        if let Identify::Mac(m) = n.identify {
            mine.push((m, format!("node[{i}].identify.mac")));
        }
        for (role, sel) in [("wan", &n.nics.wan), ("lan", &n.nics.lan)] {
            if let Some(NicSelector::Mac(m)) = sel {
                mine.push((*m, format!("node[{i}].nics.{role}.mac")));
            }
        }
        for (m, path) in mine {
            match macs.get(&m) {
                Some((j, first)) if *j != i => {
                    d.err(
                        meta.pos(&path),
                        &path,
                        format!(
                            "duplicate MAC {m}: {first} has it too (line {})",
                            meta.pos(first).line
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    macs.insert(m, (i, path));
                }
            }
        }
    }
    let mut pairs: Vec<((String, u32), String, String)> = Vec::new();
    for (i, n) in nodes {
        if let Identify::Profile { profile, index } = &n.identify {
            pairs.push((
                (profile.clone(), *index),
                format!("(profile `{profile}`, index {index})"),
                format!("node[{i}].identify"),
            ));
        }
    }
    let before = d.list.len();
    dup(d, meta, "identify", pairs);
    for diag in &mut d.list[before..] {
        diag.hint = Some(
            "nodes sharing a profile need different index values; boot each with tappaas.index=N"
                .into(),
        );
    }
}

fn addresses(site: &Site, meta: &Meta, d: &mut Diags) {
    if meta.bad("network.management") {
        return;
    }
    firewall_address(&site.network, meta, d);
    node_addresses(site, meta, d);
    upstream_addresses(&site.network, meta, d);
}

/// What `ip` is when it is the network or broadcast address of `mgmt`, which no host may be.
fn special(mgmt: Ipv4Net, ip: Ipv4Addr) -> Option<&'static str> {
    if ip == mgmt.addr {
        Some("the network address")
    } else if ip == mgmt.broadcast() {
        Some("the broadcast address")
    } else {
        None
    }
}

fn firewall_address(net: &Network, meta: &Meta, d: &mut Diags) {
    let mgmt = net.management;
    if !meta.bad("network.firewall") {
        let p = "network.firewall";
        if !mgmt.contains(net.firewall) {
            d.err_hint(
                meta.pos(p),
                p,
                format!(
                    "firewall {} is outside the management network {mgmt}",
                    net.firewall
                ),
                format!(
                    "use an address in {mgmt}, usually {}",
                    mgmt.nth(1).unwrap_or(mgmt.addr)
                ),
            );
        } else if let Some(what) = special(mgmt, net.firewall) {
            d.err(
                meta.pos(p),
                p,
                format!("firewall {} is {what} of {mgmt}", net.firewall),
            );
        }
    }
}

fn node_addresses(site: &Site, meta: &Meta, d: &mut Diags) {
    let net = &site.network;
    let mgmt = net.management;
    for (i, n) in site.nodes.iter().enumerate() {
        let p = format!("node[{i}].address");
        if meta.bad(&p) {
            continue;
        }
        let dflt = if meta.has(&p) {
            ""
        } else {
            " (the default for its id)"
        };
        if !mgmt.contains(n.address) {
            d.err_hint(
                meta.pos(&p),
                &p,
                format!(
                    "address {}{dflt} is outside the management network {mgmt}",
                    n.address
                ),
                format!("use an address in {mgmt}"),
            );
        } else if let Some(what) = special(mgmt, n.address) {
            d.err(
                meta.pos(&p),
                &p,
                format!("address {}{dflt} is {what} of {mgmt}", n.address),
            );
        } else if n.address == net.firewall && !meta.bad("network.firewall") {
            d.err_hint(
                meta.pos(&p),
                &p,
                format!("address {}{dflt} is the firewall's address", n.address),
                "nodes use .10 and up by default; the firewall has .1",
            );
        }
    }
}

fn upstream_addresses(net: &Network, meta: &Meta, d: &mut Diags) {
    let mgmt = net.management;
    if let Upstream::Static {
        address, gateway, ..
    } = &net.upstream
    {
        let (pa, pg) = ("network.upstream.address", "network.upstream.gateway");
        if !meta.bad(pa) {
            let up = Ipv4Net {
                addr: Ipv4Addr::from(u32::from(address.addr) & prefix_mask(address.prefix)),
                prefix: address.prefix,
            };
            if up.contains(mgmt.addr) || mgmt.contains(up.addr) {
                d.err_hint(meta.pos(pa), pa, format!("the upstream network {up} overlaps the management network {mgmt}"),
                    "the firewall routes between them: they must not overlap; change [network] management");
            }
            if !meta.bad(pg) {
                if !up.contains(*gateway) {
                    d.err(
                        meta.pos(pg),
                        pg,
                        format!("gateway {gateway} is outside the upstream network {up}"),
                    );
                } else if *gateway == address.addr {
                    d.err(
                        meta.pos(pg),
                        pg,
                        format!("gateway {gateway} is the firewall's own WAN address"),
                    );
                }
            }
        }
    }
}

fn pools(site: &Site, meta: &Meta, d: &mut Diags) {
    let s = &site.storage;
    let all = [
        ("rpool", &s.rpool),
        ("tank1", &s.tank1),
        ("tank2", &s.tank2),
    ];
    for (k, (key, p)) in all.iter().enumerate() {
        let path = format!("storage.{key}.name");
        if meta.bad(&path) {
            continue;
        }
        if let Some((other, _)) = all[..k]
            .iter()
            .find(|(o, q)| q.name == p.name && !meta.bad(&format!("storage.{o}.name")))
        {
            d.err(meta.pos(&path), &path, format!("pool name `{}` is also the name of {other}; the three pools need different names", p.name));
        }
    }
}

fn disks(site: &Site, meta: &Meta, d: &mut Diags) {
    let key = |s: &DiskSelector| -> Option<(&'static str, String)> {
        match s {
            DiskSelector::ById(v) => Some(("by-id", v.clone())),
            DiskSelector::Serial(v) => Some(("serial", v.clone())),
            DiskSelector::Wwn(v) => Some(("wwn", v.clone())),
            DiskSelector::Filter(_) => None,
        }
    };
    let mut everywhere: HashMap<(&'static str, String), (usize, String)> = HashMap::new();
    for (i, n) in site.nodes.iter().enumerate() {
        let mut here: HashMap<(&'static str, String), String> = HashMap::new();
        let roles = [
            ("boot", Some(&n.boot)),
            ("tank1", n.tank1.as_ref()),
            ("tank2", n.tank2.as_ref()),
        ];
        for (rk, role) in roles {
            let Some(role) = role else { continue };
            // Refused selectors were dropped from `disks`, so indexes come from the walk order.
            let mut idx = 0usize;
            for sel in &role.disks {
                let mut path = format!("node[{i}].{rk}.disks[{idx}]");
                while meta.bad(&path) {
                    idx += 1;
                    path = format!("node[{i}].{rk}.disks[{idx}]");
                }
                idx += 1;
                let Some(k) = key(sel) else { continue };
                if let Some(first) = here.get(&k) {
                    d.err_hint(meta.pos(&path), &path,
                        format!("{} `{}` is used twice on this node: {first} names the same disk (line {})", k.0, k.1, meta.pos(first).line),
                        "each disk serves one role once");
                    continue;
                }
                if let Some((j, first)) = everywhere.get(&k) {
                    if *j != i {
                        d.warn(meta.pos(&path), &path,
                            format!("{} `{}` is also named by {first} (line {}); one disk cannot be in two machines", k.0, k.1, meta.pos(first).line));
                    }
                } else {
                    everywhere.insert(k.clone(), (i, path.clone()));
                }
                here.insert(k, path);
            }
        }
    }
}
