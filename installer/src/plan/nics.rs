//! Which NIC is the LAN port and which the WAN port, from the site file or the profile's port
//! hints, and the bridges built on them (TAPPaaS: VLAN-aware `lan` with the management address,
//! plain `wan`).

use super::{BridgePlan, Hints, Problems};
use crate::inventory::{Inventory, Nic};
use tappaas_site::{Mac, NicSelector, Node, Role, Site};

fn nic_matches(sel: &NicSelector, n: &Nic) -> bool {
    match sel {
        NicSelector::Mac(m) => [n.permanent_mac.as_deref(), Some(n.mac.as_str())]
            .into_iter()
            .flatten()
            .any(|x| Mac::parse(x).as_ref() == Some(m)),
        NicSelector::Name(name) => &n.name == name,
        NicSelector::Pci(pci) => n
            .pci
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(pci) || p.ends_with(&format!(":{pci}"))),
        NicSelector::Port(_) => false,
    }
}

fn describe(sel: &NicSelector) -> String {
    match sel {
        NicSelector::Mac(m) => format!("MAC {m}"),
        NicSelector::Name(n) => format!("name {n:?}"),
        NicSelector::Pci(p) => format!("PCI address {p}"),
        NicSelector::Port(p) => format!("port {p:?}"),
    }
}

fn list(inv: &Inventory) -> String {
    let v: Vec<String> = inv
        .nics
        .iter()
        .filter(|n| n.physical)
        .map(|n| {
            format!(
                "{} ({}{})",
                n.name,
                n.permanent_mac.as_deref().unwrap_or(&n.mac),
                n.pci
                    .as_deref()
                    .map(|p| format!(", PCI {p}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Resolves a selector (following a port label through the profile) to a physical NIC.
fn resolve<'a>(
    inv: &'a Inventory,
    sel: &NicSelector,
    hints: &Hints,
) -> Result<&'a Nic, (String, Option<String>)> {
    let (sel, via) = match sel {
        NicSelector::Port(label) => {
            let Some((_, s)) = hints.ports.iter().find(|(l, _)| l == label) else {
                let labels: Vec<&str> = hints.ports.iter().map(|(l, _)| l.as_str()).collect();
                return Err((
                    format!(
                        "port {label:?} is not a port of {}",
                        hints
                            .profile
                            .as_deref()
                            .map(|p| format!("profile {p}"))
                            .unwrap_or_else(|| "this machine (no hardware profile)".into())
                    ),
                    Some(if labels.is_empty() {
                        "name the NIC by mac, name or pci instead".into()
                    } else {
                        format!("the profile's ports are: {}", labels.join(", "))
                    }),
                ));
            };
            (s, format!(" (port {label})"))
        }
        s => (s, String::new()),
    };
    let hits: Vec<&Nic> = inv
        .nics
        .iter()
        .filter(|n| n.physical && nic_matches(sel, n))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err((
            format!("no network port has {}{via}", describe(sel)),
            Some(format!("ports present: {}", list(inv))),
        )),
        many => Err((
            format!(
                "{}{via} matches {} ports: {}",
                describe(sel),
                many.len(),
                many.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        )),
    }
}

/// Resolves `lan` and `wan` and returns the bridges; pushes every problem found.
pub(crate) fn assign(
    inv: &Inventory,
    site: &Site,
    node: &Node,
    hints: &Hints,
    npath: &str,
    problems: &mut Problems,
) -> Vec<BridgePlan> {
    let pick = |role: &str,
                given: Option<&NicSelector>,
                hint: Option<&String>,
                problems: &mut Problems| {
        pick_port(
            inv,
            hints,
            node,
            &format!("{npath}.nics.{role}"),
            given,
            hint,
            problems,
        )
    };
    let mut lan = pick(
        "lan",
        node.nics.lan.as_ref(),
        hints.lan_port.as_ref(),
        problems,
    );
    let wan = pick(
        "wan",
        node.nics.wan.as_ref(),
        hints.wan_port.as_ref(),
        problems,
    );
    let explicit_or_hinted_lan = node.nics.lan.is_some() || hints.lan_port.is_some();
    if lan.is_none() && !explicit_or_hinted_lan {
        lan = only_port(inv, node, npath, problems);
    }
    check_pair(inv, node, hints, npath, lan, wan, problems);
    bridges(site, node, lan, wan)
}

/// The port the site (`given`) or the profile (`hint`, a port label) names for one role.
fn pick_port<'i>(
    inv: &'i Inventory,
    hints: &Hints,
    node: &Node,
    path: &str,
    given: Option<&NicSelector>,
    hint: Option<&String>,
    problems: &mut Problems,
) -> Option<&'i Nic> {
    let sel = match (given, hint) {
        (Some(s), _) => s.clone(),
        (None, Some(label)) => NicSelector::Port(label.clone()),
        (None, None) => return None,
    };
    match resolve(inv, &sel, hints) {
        Ok(n) => Some(n),
        Err((msg, hint)) => {
            problems.push(Some(node.pos), path, msg, hint);
            None
        }
    }
}

/// The LAN when nothing names it: with a single port there is nothing to choose.
fn only_port<'i>(
    inv: &'i Inventory,
    node: &Node,
    npath: &str,
    problems: &mut Problems,
) -> Option<&'i Nic> {
    let physical: Vec<&Nic> = inv.nics.iter().filter(|n| n.physical).collect();
    match physical.as_slice() {
        [only] => return Some(only),
        [] => problems.push(
            Some(node.pos),
            format!("{npath}.nics"),
            "this machine has no physical network port",
            None,
        ),
        _ => problems.push(
            Some(node.pos),
            format!("{npath}.nics.lan"),
            format!(
                "which port is the LAN? this machine has {} ports: {}",
                physical.len(),
                list(inv)
            ),
            Some("add [node.nics] lan = { mac = \"...\" } (and wan for the primary)".into()),
        ),
    }
    None
}

/// The primary has a WAN port, and the LAN and the WAN are two ports.
fn check_pair(
    inv: &Inventory,
    node: &Node,
    hints: &Hints,
    npath: &str,
    lan: Option<&Nic>,
    wan: Option<&Nic>,
    problems: &mut Problems,
) {
    if node.role == Role::Primary
        && wan.is_none()
        && node.nics.wan.is_none()
        && hints.wan_port.is_none()
    {
        problems.push(
            Some(node.pos),
            format!("{npath}.nics.wan"),
            "the primary node needs a WAN port for the firewall VM".to_string(),
            Some(format!(
                "add [node.nics] wan = {{ mac = \"...\" }}; ports present: {}",
                list(inv)
            )),
        );
    }
    if let (Some(l), Some(w)) = (lan, wan) {
        if l.name == w.name {
            problems.push(
                Some(node.pos),
                format!("{npath}.nics"),
                format!("LAN and WAN are the same port {}", l.name),
                Some("the LAN and WAN need two different ports".into()),
            );
        }
    }
}

/// The LAN bridge (the host's address, VLAN-aware) and the WAN bridge, for the ports found.
fn bridges(site: &Site, node: &Node, lan: Option<&Nic>, wan: Option<&Nic>) -> Vec<BridgePlan> {
    let mut bridges = Vec::new();
    if let Some(l) = lan {
        bridges.push(BridgePlan {
            name: site.network.lan_bridge.clone(),
            port: l.name.clone(),
            port_mac: l.permanent_mac.clone().unwrap_or_else(|| l.mac.clone()),
            address: Some(format!(
                "{}/{}",
                node.address, site.network.management.prefix
            )),
            gateway: Some(site.network.firewall),
            vlan_aware: true,
        });
    }
    if let Some(w) = wan {
        bridges.push(BridgePlan {
            name: site.network.wan_bridge.clone(),
            port: w.name.clone(),
            port_mac: w.permanent_mac.clone().unwrap_or_else(|| w.mac.clone()),
            address: None,
            gateway: None,
            vlan_aware: false,
        });
    }
    bridges
}
