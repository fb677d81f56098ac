//! Turns the checked tree into the [`Site`] model: computed defaults (node names, ids,
//! addresses, layouts) and the shape rules of one table (one `identify` kind, one NIC key,
//! a disk selector's keys, a role's disk count against its layout).
//!
//! Values that were refused get placeholders and their paths are poisoned in [`Meta`], so the
//! cross-checks in [`crate::semantic`] skip them instead of reporting follow-up errors.

use crate::diag::Diags;
use crate::model::*;
use crate::walk::{Meta, Tbl, Val};
use std::net::Ipv4Addr;

pub(crate) struct Builder<'a> {
    pub(crate) diags: &'a mut Diags,
    pub(crate) meta: &'a mut Meta,
}

const DEFAULT_NET: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 0, 0, 0),
    prefix: 24,
};

pub(crate) fn str_of(t: &Tbl, key: &str) -> String {
    t.str(key).unwrap_or_default().to_string()
}

fn ips(t: &Tbl, key: &str) -> Option<Vec<Ipv4Addr>> {
    let list = t.list(key)?;
    Some(
        list.iter()
            .filter_map(|i| match &i.val {
                Some(Val::Ip(ip)) => Some(*ip),
                _ => None,
            })
            .collect(),
    )
}

impl Builder<'_> {
    pub(crate) fn site(&mut self, root: &Tbl) -> Site {
        let empty = Tbl::default();
        let site = root.table("site").unwrap_or(&empty);
        let creds = root.table("credentials").unwrap_or(&empty);
        let storage = root.table("storage").unwrap_or(&empty);
        let network = self.network(root.table("network").unwrap_or(&empty));
        let nodes = match root.list("node") {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match &item.val {
                    Some(Val::Table(t)) => Some(self.node(i, t, &network)),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        Site {
            version: root
                .int("version")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            site: SiteInfo {
                name: str_of(site, "name"),
                domain: str_of(site, "domain"),
                internal_domain: str_of(site, "internal-domain"),
                admin_email: str_of(site, "admin-email"),
                timezone: str_of(site, "timezone"),
                keyboard: str_of(site, "keyboard"),
                country: str_of(site, "country"),
            },
            credentials: Credentials {
                root_password_hash: str_of(creds, "root-password-hash"),
                ssh_keys: creds
                    .list("ssh-keys")
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| match &i.val {
                        Some(Val::Str(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
            },
            network,
            cluster: match root.table("cluster") {
                Some(c) => {
                    let cluster = Cluster {
                        name: str_of(c, "name"),
                        join_secret: c.str("join-secret").map(String::from),
                        primary_fingerprint: c.str("primary-fingerprint").map(String::from),
                        primary_certificate: c.str("primary-certificate").map(String::from),
                        primary_key: c.str("primary-key").map(String::from),
                        join_wait_minutes: c
                            .int("join-wait-minutes")
                            .and_then(|v| u32::try_from(v).ok())
                            .unwrap_or(120),
                    };
                    self.primary_keys(c, &cluster);
                    cluster
                }
                None => Cluster {
                    name: String::new(),
                    ..Cluster::default()
                },
            },
            storage: Storage {
                rpool: pool(storage.table("rpool").unwrap_or(&empty), "rpool"),
                tank1: pool(storage.table("tank1").unwrap_or(&empty), "tank1"),
                tank2: pool(storage.table("tank2").unwrap_or(&empty), "tank2"),
            },
            nodes,
        }
    }

    /// `primary-certificate` and `primary-key` come as a pair, and a `primary-fingerprint`
    /// given with them must be the certificate's.
    fn primary_keys(&mut self, c: &Tbl, cluster: &Cluster) {
        const CERT: &str = "primary-certificate";
        const KEY: &str = "primary-key";
        const FP: &str = "primary-fingerprint";
        let refused = |k: &str| c.has(k) && c.str(k).is_none() || self.meta.bad(&c.path_of(k));
        if refused(CERT) || refused(KEY) {
            return;
        }
        let pair_hint = "give both (`tappaas-installer join-keys` prints a matching pair), or \
            neither (then `tappaas-bootstrap fingerprint` on the installed primary gives the \
            primary-fingerprint)";
        match (&cluster.primary_certificate, &cluster.primary_key) {
            (Some(_), None) => self.diags.err_hint(
                c.pos_of(CERT),
                &c.path_of(KEY),
                "primary-certificate is given without primary-key: the primary could not serve it",
                pair_hint,
            ),
            (None, Some(_)) => self.diags.err_hint(
                c.pos_of(KEY),
                &c.path_of(CERT),
                "primary-key is given without primary-certificate",
                pair_hint,
            ),
            (Some(cert), Some(key))
                if crate::pem::key_belongs_to_certificate(cert, key) == Some(false) =>
            {
                self.diags.err_hint(
                    c.pos_of(KEY),
                    &c.path_of(KEY),
                    "primary-key is not the key of primary-certificate: the primary could not \
                     serve it",
                    "make a matching pair with `tappaas-installer join-keys` and copy both from \
                     its output",
                );
            }
            _ => {}
        }
        let (Some(given), Some(cert)) =
            (&cluster.primary_fingerprint, &cluster.primary_certificate)
        else {
            return;
        };
        if refused(FP) {
            return;
        }
        if let Some(computed) = crate::pem::certificate_fingerprint(cert) {
            if *given != computed {
                self.diags.err_hint(
                    c.pos_of(FP),
                    &c.path_of(FP),
                    format!(
                        "`{given}` is not the fingerprint of primary-certificate, which is {computed}"
                    ),
                    "leave primary-fingerprint out (it is computed from primary-certificate), \
                     or write the certificate's",
                );
            }
        }
    }

    fn network(&mut self, t: &Tbl) -> Network {
        let management = match t.item("management").and_then(|i| i.val.as_ref()) {
            Some(Val::Net(n)) => *n,
            _ => DEFAULT_NET,
        };
        let firewall = match t.ip("firewall") {
            Some(ip) => ip,
            None => {
                if self.meta.bad("network.management") || t.has("firewall") {
                    self.meta.poison("network.firewall");
                }
                management.nth(1).unwrap_or(management.addr)
            }
        };
        let dns = match ips(t, "dns") {
            Some(list) => {
                if list.is_empty() && !self.meta.bad("network.dns") {
                    self.diags.err_hint(
                        t.pos_of("dns"),
                        "network.dns",
                        "no DNS servers",
                        "leave dns out to use the firewall, or list at least one address",
                    );
                }
                list
            }
            None => {
                if self.meta.bad("network.firewall") {
                    self.meta.poison("network.dns");
                }
                vec![firewall]
            }
        };
        let empty = Tbl::default();
        let up = t.table("upstream").unwrap_or(&empty);
        let upstream = if up.str("mode") == Some("static") {
            for key in ["address", "gateway"] {
                if !up.has(key) {
                    self.diags.err_hint(
                        up.pos_of("mode"),
                        &up.path_of(key),
                        format!("mode = \"static\" needs `{key}`"),
                        if key == "address" {
                            "add address = \"192.168.1.50/24\""
                        } else {
                            "add gateway = \"192.168.1.1\""
                        },
                    );
                    self.meta.poison(&up.path_of(key));
                }
            }
            let address = match up.item("address").and_then(|i| i.val.as_ref()) {
                Some(Val::If(a)) => *a,
                _ => Ipv4If {
                    addr: Ipv4Addr::UNSPECIFIED,
                    prefix: 32,
                },
            };
            let gateway = up.ip("gateway").unwrap_or(Ipv4Addr::UNSPECIFIED);
            let dns = ips(up, "dns").unwrap_or_else(|| vec![gateway]);
            Upstream::Static {
                address,
                gateway,
                dns,
            }
        } else {
            for key in ["address", "gateway", "dns"] {
                if up.has(key) && up.str("mode").is_some() {
                    self.diags.err_hint(
                        up.pos_of(key),
                        &up.path_of(key),
                        format!("`{key}` only applies with mode = \"static\""),
                        "add mode = \"static\", or remove this key to use DHCP",
                    );
                }
            }
            Upstream::Dhcp
        };
        Network {
            management,
            firewall,
            dns,
            lan_bridge: str_of(t, "lan-bridge"),
            wan_bridge: str_of(t, "wan-bridge"),
            upstream,
        }
    }

    fn node(&mut self, index: usize, t: &Tbl, net: &Network) -> Node {
        let p = t.path.clone();
        let pos_id = u8::try_from(index + 1).unwrap_or(u8::MAX);
        let id = match t.int("id") {
            Some(v) => u8::try_from(v).unwrap_or(0),
            None => {
                if t.has("id") {
                    self.meta.poison(&format!("{p}.id"));
                }
                pos_id
            }
        };
        let name = match t.str("name") {
            Some(n) => n.to_string(),
            None => {
                if self.meta.bad(&format!("{p}.id")) {
                    self.meta.poison(&format!("{p}.name"));
                }
                format!("tappaas{id}")
            }
        };
        let role = match t.str("role") {
            Some("primary") => Role::Primary,
            Some("backup") => Role::Backup,
            Some(_) => Role::Member,
            None => {
                self.meta.poison(&format!("{p}.role"));
                Role::Member
            }
        };
        let identify = self.identify(t);
        let id_profile = match &identify {
            Identify::Profile { profile, .. } => Some(profile.clone()),
            _ => None,
        };
        let profile = match (t.str("profile"), id_profile) {
            (Some(a), Some(b)) if a != b => {
                self.diags.err_hint(t.pos_of("identify"), &format!("{p}.identify.profile"),
                    format!("identify names profile `{b}` but the node's profile is `{a}`"),
                    "use the same profile id in both, or drop `profile` (it defaults to identify's)");
                Some(a.to_string())
            }
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b,
        };
        // A profile that was given but refused still counts: "no profile" errors would only
        // repeat the profile's own error.
        let has_profile = profile.is_some() || t.has("profile");
        let address = self.node_address(t, id, net);
        let empty = Tbl {
            pos: t.pos,
            path: format!("{p}.boot"),
            ..Tbl::default()
        };
        let nics = self.node_nics(t, has_profile);
        let boot_t = t.table("boot").unwrap_or(&empty);
        let boot = self.role(boot_t, "boot", has_profile);
        let tank1 = t.table("tank1").map(|d| self.role(d, "tank1", has_profile));
        let tank2 = t.table("tank2").map(|d| self.role(d, "tank2", has_profile));
        Node {
            name,
            id,
            role,
            profile,
            identify,
            address,
            nics,
            boot,
            tank1,
            tank2,
            replace: t.bool("replace").unwrap_or(false),
            api_fingerprint: t.str("api-fingerprint").map(String::from),
            pos: t.pos,
        }
    }

    /// The node's address: given, or the management network's 9 + id-th.
    fn node_address(&mut self, t: &Tbl, id: u8, net: &Network) -> Ipv4Addr {
        let p = &t.path;
        match t.ip("address") {
            Some(ip) => ip,
            None => {
                let computed = net.management.nth(9 + u32::from(id));
                let bad = t.has("address")
                    || self.meta.bad(&format!("{p}.id"))
                    || self.meta.bad("network.management");
                if bad || computed.is_none() {
                    if !bad {
                        self.diags.err_hint(t.pos, &format!("{p}.address"),
                            format!("no default address: {} has no address {} (9 + id {id})", net.management, 9 + u32::from(id)),
                            "set address = \"...\" for this node, or use a larger management network");
                    }
                    self.meta.poison(&format!("{p}.address"));
                }
                computed.unwrap_or(Ipv4Addr::UNSPECIFIED)
            }
        }
    }

    /// The node's WAN and LAN ports, which must differ.
    fn node_nics(&mut self, t: &Tbl, has_profile: bool) -> NicRoles {
        let p = &t.path;
        let nics = t
            .table("nics")
            .map(|n| NicRoles {
                wan: self.nic(n, "wan", has_profile),
                lan: self.nic(n, "lan", has_profile),
            })
            .unwrap_or_default();
        if let (Some(w), Some(l)) = (&nics.wan, &nics.lan) {
            if w == l {
                self.diags.err(
                    t.table("nics").map_or(t.pos, |n| n.pos_of("lan")),
                    &format!("{p}.nics.lan"),
                    "wan and lan name the same NIC; the node needs two different ports",
                );
            }
        }
        nics
    }

    fn identify(&mut self, node: &Tbl) -> Identify {
        let Some(t) = node.table("identify").filter(|t| t.given) else {
            return Identify::Explicit;
        };
        if self.meta.bad(&t.path) {
            return Identify::Explicit;
        }
        let kinds: Vec<&str> = ["mac", "dmi-serial", "profile"]
            .into_iter()
            .filter(|k| t.has(k))
            .collect();
        if kinds.len() != 1 {
            let msg = if kinds.is_empty() {
                "identify needs one of `mac`, `dmi-serial` or `profile`".to_string()
            } else {
                format!(
                    "identify takes one of `mac`, `dmi-serial` or `profile`, not {}",
                    kinds.join(" and ")
                )
            };
            self.diags.err_hint(t.pos, &t.path, msg,
                "e.g. identify = { mac = \"a8:b8:e0:01:02:03\" }, or leave identify out and pick the node with --node");
            self.meta.poison(&t.path);
            return Identify::Explicit;
        }
        if t.has("index") && kinds[0] != "profile" {
            self.diags.err(
                t.pos_of("index"),
                &t.path_of("index"),
                "`index` only applies with `profile`",
            );
        }
        if self.meta.bad(&t.path) {
            return Identify::Explicit;
        }
        match kinds[0] {
            "mac" => t.mac("mac").map_or(Identify::Explicit, Identify::Mac),
            "dmi-serial" => Identify::DmiSerial(str_of(t, "dmi-serial")),
            _ => Identify::Profile {
                profile: str_of(t, "profile"),
                index: t
                    .int("index")
                    .and_then(|i| u32::try_from(i).ok())
                    .unwrap_or(1),
            },
        }
    }

    fn nic(&mut self, nics: &Tbl, role: &str, has_profile: bool) -> Option<NicSelector> {
        let t = nics.table(role).filter(|t| t.given)?;
        if self.meta.bad(&t.path) {
            return None;
        }
        let kinds: Vec<&str> = ["mac", "name", "pci", "port"]
            .into_iter()
            .filter(|k| t.has(k))
            .collect();
        if kinds.len() != 1 {
            self.diags.err_hint(
                t.pos,
                &t.path,
                if kinds.is_empty() {
                    "empty NIC selector".to_string()
                } else {
                    format!(
                        "give one of mac, name, pci or port, not {}",
                        kinds.join(" and ")
                    )
                },
                "e.g. { mac = \"a8:b8:e0:01:02:03\" } or { port = \"ETH1\" }",
            );
            self.meta.poison(&t.path);
            return None;
        }
        if self.meta.bad(&t.path) {
            return None;
        }
        match kinds[0] {
            "mac" => t.mac("mac").map(NicSelector::Mac),
            "name" => {
                let n = str_of(t, "name");
                if n.strip_prefix("eth")
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                {
                    self.diags.warn_hint(t.pos_of("name"), &t.path_of("name"),
                        format!("`{n}` is assigned in probe order and can change between boots"),
                        "prefer { mac = \"...\" }, { pci = \"...\" } or a predictable name such as \"enp1s0\"");
                }
                Some(NicSelector::Name(n))
            }
            "pci" => Some(NicSelector::Pci(str_of(t, "pci"))),
            _ => {
                if !has_profile {
                    self.diags.err_hint(
                        t.pos_of("port"),
                        &t.path_of("port"),
                        "port labels come from a hardware profile, and this node has none",
                        "set the node's profile, or pick the NIC by mac, pci or name",
                    );
                }
                Some(NicSelector::Port(str_of(t, "port")))
            }
        }
    }
}

fn pool(t: &Tbl, key: &str) -> PoolSettings {
    PoolSettings {
        name: t.str("name").unwrap_or(key).to_string(),
        ashift: t
            .int("ashift")
            .and_then(|a| u8::try_from(a).ok())
            .unwrap_or(12),
        compression: str_of(t, "compression"),
        atime: t.bool("atime").unwrap_or(false),
        xattr: str_of(t, "xattr"),
        autotrim: t.bool("autotrim").unwrap_or(true),
        compatibility: str_of(t, "compatibility"),
    }
}
