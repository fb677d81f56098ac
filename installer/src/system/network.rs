//! Host name, `/etc/hosts`, `/etc/resolv.conf`, `/etc/network/interfaces` and the `.link` files
//! that pin the bridge ports' names.

use super::rules::{mac, token};
use super::templates::Templates;
use super::{invalid, RenderError, RenderedFile};
use crate::plan::{BridgePlan, Plan};
use serde::Serialize;
use std::net::Ipv4Addr;
use tappaas_site::Site;

const INTERFACES: &str = "/etc/network/interfaces";

#[derive(Serialize)]
struct Host {
    address: Ipv4Addr,
    fqdn: String,
    name: String,
}

#[derive(Serialize)]
struct Port {
    name: String,
}

#[derive(Serialize)]
struct Bridge<'a> {
    name: &'a str,
    method: &'static str,
    address: Option<&'a str>,
    gateway: Option<Ipv4Addr>,
    port: &'a str,
    vlan_aware: bool,
    /// Shown by Proxmox as the bridge's comment.
    comment: String,
}

pub(super) fn render(
    t: &Templates,
    plan: &Plan,
    site: &Site,
) -> Result<Vec<RenderedFile>, RenderError> {
    let sys = &plan.system;
    token("/etc/hostname", "host name", &sys.hostname)?;
    token("/etc/hosts", "host name", &sys.fqdn)?;
    token("/etc/resolv.conf", "domain", &site.site.internal_domain)?;
    let address = mgmt_ip(&sys.address)?;

    // Every other node of the site: Proxmox and the first-boot agent reach peers by name while
    // the firewall VM (the DNS server) is not yet, or no longer, running.
    let mut peers: Vec<(u8, Host)> = site
        .nodes
        .iter()
        .filter(|n| n.name != sys.hostname)
        .map(|n| {
            token("/etc/hosts", "host name", &n.name)?;
            Ok((
                n.id,
                Host {
                    address: n.address,
                    fqdn: format!("{}.{}", n.name, site.site.internal_domain),
                    name: n.name.clone(),
                },
            ))
        })
        .collect::<Result<_, RenderError>>()?;
    peers.sort_by_key(|(id, _)| *id);
    let peers: Vec<Host> = peers.into_iter().map(|(_, h)| h).collect();

    let mut out = vec![
        RenderedFile::text(
            "/etc/hostname",
            t.render(
                "etc/hostname",
                &serde_json::json!({ "hostname": sys.hostname }),
            )?,
            0o644,
        ),
        RenderedFile::text(
            "/etc/hosts",
            t.render(
                "etc/hosts",
                &serde_json::json!({
                    "address": address,
                    "fqdn": sys.fqdn,
                    "hostname": sys.hostname,
                    "site": plan.site,
                    "peers": peers,
                }),
            )?,
            0o644,
        ),
        RenderedFile::text(
            "/etc/resolv.conf",
            t.render(
                "etc/resolv.conf",
                &serde_json::json!({
                    "search": site.site.internal_domain,
                    "nameservers": sys.dns,
                }),
            )?,
            0o644,
        ),
        RenderedFile::text(INTERFACES, interfaces(t, plan, site)?, 0o644),
    ];
    for b in &sys.bridges {
        let path = format!("/etc/systemd/network/10-tappaas-{}.link", b.name);
        out.push(RenderedFile::text(
            &path,
            t.render(
                "etc/systemd/network/tappaas-bridge.link",
                &serde_json::json!({
                    "bridge": b.name,
                    "name": b.port,
                    "mac": mac("/etc/systemd/network/10-tappaas-*.link", &b.port_mac)?,
                }),
            )?,
            0o644,
        ));
    }
    Ok(out)
}

/// The IPv4 address of `a.b.c.d/nn`.
fn mgmt_ip(cidr: &str) -> Result<Ipv4Addr, RenderError> {
    cidr.split_once('/')
        .and_then(|(ip, prefix)| {
            prefix.parse::<u8>().ok().filter(|p| *p <= 32)?;
            ip.parse().ok()
        })
        .ok_or_else(|| invalid("/etc/hosts", format!("`{cidr}` is not an address/prefix")))
}

/// `/etc/network/interfaces` in the order Proxmox's own writer uses (loopback, physical ports
/// by name, then bridges by name), so the first edit in the web UI changes only what it must.
fn interfaces(t: &Templates, plan: &Plan, site: &Site) -> Result<String, RenderError> {
    let sys = &plan.system;
    let mut bridges: Vec<&BridgePlan> = sys.bridges.iter().collect();
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ports: Vec<&str> = Vec::new();
    for b in &bridges {
        token(INTERFACES, "bridge name", &b.name)?;
        token(INTERFACES, "interface name", &b.port)?;
        if b.name == b.port || ports.contains(&b.port.as_str()) {
            return Err(invalid(
                INTERFACES,
                format!("the port {} is used twice", b.port),
            ));
        }
        if let Some(a) = &b.address {
            mgmt_ip(a)?;
        }
        ports.push(&b.port);
    }
    if bridges.windows(2).any(|w| w[0].name == w[1].name) {
        return Err(invalid(INTERFACES, "two bridges have the same name"));
    }
    ports.sort_unstable();
    let ports: Vec<Port> = ports
        .into_iter()
        .map(|p| Port {
            name: p.to_string(),
        })
        .collect();
    let bridges: Vec<Bridge> = bridges
        .into_iter()
        .map(|b| Bridge {
            name: &b.name,
            method: if b.address.is_some() {
                "static"
            } else {
                "manual"
            },
            address: b.address.as_deref(),
            gateway: b.gateway,
            port: &b.port,
            vlan_aware: b.vlan_aware,
            comment: comment(site, plan, b),
        })
        .collect();
    t.render(
        "etc/network/interfaces",
        &serde_json::json!({ "ports": ports, "bridges": bridges }),
    )
}

fn comment(site: &Site, plan: &Plan, b: &BridgePlan) -> String {
    if b.name == site.network.lan_bridge {
        format!(
            "TAPPaaS LAN: management {} untagged, zone VLANs tagged",
            plan.system.address
        )
    } else if b.name == site.network.wan_bridge {
        "TAPPaaS WAN: upstream router, for the firewall VM only".into()
    } else {
        "TAPPaaS".into()
    }
}
