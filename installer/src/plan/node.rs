//! Which `[[node]]` is this machine? Decided from `--node`, the kernel command line, or the
//! node's `identify` rule against the probed hardware, never by guessing.

use super::{PlanError, Problems};
use crate::inventory::Inventory;
use tappaas_site::{Identify, Mac, Node, Site};

/// The node a plan is for, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeChoice {
    /// Index into `site.nodes`.
    pub index: usize,
    /// How it was chosen, for the plan and the log.
    pub reason: String,
}

fn cmdline_arg<'a>(inv: &'a Inventory, key: &str) -> Option<&'a str> {
    inv.cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Picks the node: `explicit` (from `--node`) wins, then `tappaas.node=NAME` on the kernel
/// command line, then the nodes' `identify` rules. No match, or more than one, is an error that
/// lists what this machine looks like so the user can fix the site file.
///
/// `profile` is the hardware profile this machine matched (by DMI), if any.
pub fn select_node(
    inv: &Inventory,
    site: &Site,
    explicit: Option<&str>,
    profile: Option<&str>,
) -> Result<NodeChoice, PlanError> {
    if let Some(name) = explicit {
        return by_name(site, name, "--node");
    }
    if let Some(name) = cmdline_arg(inv, "tappaas.node") {
        return by_name(site, name, "kernel command line tappaas.node=");
    }
    let macs = physical_macs(inv);
    let index_arg = cmdline_arg(inv, "tappaas.index").and_then(|s| s.parse::<u32>().ok());
    let mut matches: Vec<NodeChoice> = site
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(index, n)| {
            let reason = identifies(inv, site, n, &macs, profile, index_arg)?;
            Some(NodeChoice { index, reason })
        })
        .collect();
    let mut problems = Problems::default();
    match matches.len() {
        1 => return Ok(matches.remove(0)),
        0 => {
            let seen = format!(
                "this machine: DMI {:?} serial {:?}, profile {}, MACs {}",
                format!("{} {}", inv.dmi.sys_vendor, inv.dmi.product_name).trim(),
                inv.dmi.product_serial,
                profile.unwrap_or("none"),
                if macs.is_empty() {
                    "none".to_string()
                } else {
                    macs.iter()
                        .map(|(m, n)| format!("{m} ({n})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            problems.push(
                None,
                "node",
                format!("no [[node]] of the site identifies this machine ({seen})"),
                Some(
                    "pass --node NAME, boot with tappaas.node=NAME, or give the node an \
                     `identify = { mac = ... }` that matches one of the MACs above"
                        .into(),
                ),
            );
        }
        _ => {
            let list: Vec<String> = matches
                .iter()
                .map(|m| format!("{} ({})", site.nodes[m.index].name, m.reason))
                .collect();
            problems.push(
                None,
                "node",
                format!("several nodes identify this machine: {}", list.join("; ")),
                Some(
                    "pass --node NAME, or boot with tappaas.index=N to pick among nodes of the \
                     same profile"
                        .into(),
                ),
            );
        }
    }
    Err(PlanError {
        node: None,
        problems: problems.0,
    })
}

/// The node named `name` (given by `how`), or an error with the names close to it.
fn by_name(site: &Site, name: &str, how: &str) -> Result<NodeChoice, PlanError> {
    if let Some(i) = site.nodes.iter().position(|n| n.name == name) {
        return Ok(NodeChoice {
            index: i,
            reason: format!("{how} {name}"),
        });
    }
    let names: Vec<&str> = site.nodes.iter().map(|n| n.name.as_str()).collect();
    let close = names
        .iter()
        .filter(|n| strsim::levenshtein(n, name) <= 2)
        .copied()
        .collect::<Vec<_>>();
    let mut problems = Problems::default();
    problems.push(
        None,
        "node",
        format!("the site has no node named {name:?} (given by {how})"),
        Some(if close.is_empty() {
            format!("the site's nodes are: {}", names.join(", "))
        } else {
            format!("did you mean {}?", close.join(" or "))
        }),
    );
    Err(PlanError {
        node: None,
        problems: problems.0,
    })
}

/// Every MAC of the physical ports (the permanent one, then the current one), with the port.
fn physical_macs(inv: &Inventory) -> Vec<(Mac, &str)> {
    inv.nics
        .iter()
        .filter(|n| n.physical)
        .flat_map(|n| {
            [n.permanent_mac.as_deref(), Some(n.mac.as_str())]
                .into_iter()
                .flatten()
                .filter_map(|m| Mac::parse(m).map(|m| (m, n.name.as_str())))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Why node `n`'s `identify` rule matches this machine, or `None`.
fn identifies(
    inv: &Inventory,
    site: &Site,
    n: &Node,
    macs: &[(Mac, &str)],
    profile: Option<&str>,
    index_arg: Option<u32>,
) -> Option<String> {
    match &n.identify {
        Identify::Explicit => None,
        Identify::Mac(m) => macs
            .iter()
            .find(|(mac, _)| mac == m)
            .map(|(mac, nic)| format!("MAC {mac} on {nic}")),
        Identify::DmiSerial(s) => {
            (!s.is_empty() && inv.dmi.product_serial.trim() == s).then(|| format!("DMI serial {s}"))
        }
        Identify::Profile {
            profile: p,
            index: idx,
        } => {
            let same_profile = site
                .nodes
                .iter()
                .filter(|o| matches!(&o.identify, Identify::Profile { profile: q, .. } if q == p))
                .count();
            let index_ok = match index_arg {
                Some(k) => k == *idx,
                None => same_profile == 1,
            };
            (profile == Some(p.as_str()) && index_ok)
                .then(|| format!("hardware profile {p}, index {idx}"))
        }
    }
}
