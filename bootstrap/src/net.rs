//! Is the network the installer wrote really up? Reads `/sys/class/net` under a root directory
//! (a fixture tree in tests) and `ip -j addr` through the command runner, and says precisely
//! what is wrong: a missing bridge, no carrier on the LAN port (and whether the cable seems to
//! be in the WAN port), a missing address, another machine answering for our address.

use crate::runner::{Cmd, Runner};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What to check.
#[derive(Debug, Clone)]
pub struct NetExpect {
    /// The LAN bridge (`lan`).
    pub lan_bridge: String,
    /// The WAN bridge (`wan`), to recognise a cable in the wrong port.
    pub wan_bridge: String,
    /// Our management address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

/// Reads the network state.
pub struct NetCheck<'a> {
    /// `/sys/class/net`, under the root.
    pub sys_class_net: PathBuf,
    /// Runs `ip` and `arping`.
    pub runner: &'a dyn Runner,
}

#[derive(Debug, Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<IpAddr>,
}

#[derive(Debug, Deserialize)]
struct IpAddr {
    family: String,
    local: String,
    prefixlen: u8,
}

impl NetCheck<'_> {
    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.sys_class_net.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn ports(&self, bridge: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.sys_class_net.join(bridge).join("brif"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn carrier(&self, iface: &str) -> bool {
        self.read(&format!("{iface}/carrier")).as_deref() == Some("1")
    }

    /// Every problem found, each one sentence that says what to do; empty when all is well.
    pub fn problems(&self, want: &NetExpect) -> Vec<String> {
        let mut problems = Vec::new();
        let lan = &want.lan_bridge;
        if !self.sys_class_net.join(lan).join("bridge").is_dir() {
            problems.push(format!(
                "bridge {lan} does not exist: /etc/network/interfaces was not applied (see `journalctl -u networking`, try `ifreload -a`)"
            ));
            return problems;
        }
        let ports = self.ports(lan);
        if ports.is_empty() {
            problems.push(format!(
                "bridge {lan} has no port: the LAN NIC named in /etc/network/interfaces is missing (renamed, or its driver did not load)"
            ));
        }
        let linked: Vec<&String> = ports.iter().filter(|p| self.carrier(p)).collect();
        if !ports.is_empty() && linked.is_empty() {
            let wan_linked: Vec<String> = self
                .ports(&want.wan_bridge)
                .into_iter()
                .filter(|p| self.carrier(p))
                .collect();
            let mut msg = format!(
                "no carrier on the LAN port {} (bridge {lan}): the cable is unplugged, broken, or the switch is off",
                ports.join(", ")
            );
            if let Some(w) = wan_linked.first() {
                msg.push_str(&format!(
                    "; the WAN port {w} (bridge {}) has a link, so the LAN cable is probably in the WAN port: swap the cables",
                    want.wan_bridge
                ));
            }
            problems.push(msg);
        }
        match self.addresses(lan) {
            Ok(addrs) => {
                if !addrs.contains(&(want.address, want.prefix)) {
                    let have = if addrs.is_empty() {
                        "none".to_string()
                    } else {
                        addrs
                            .iter()
                            .map(|(a, p)| format!("{a}/{p}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    problems.push(format!(
                        "bridge {lan} does not have the address {}/{} (it has: {have}): check /etc/network/interfaces",
                        want.address, want.prefix
                    ));
                } else if let Some(other) = self.clash(lan, want.address) {
                    problems.push(format!(
                        "address clash: another machine ({other}) also uses {} on the management network: give it another address or fix the site file",
                        want.address
                    ));
                }
            }
            Err(e) => problems.push(format!("cannot read the addresses of {lan}: {e:#}")),
        }
        problems
    }

    fn addresses(&self, iface: &str) -> anyhow::Result<Vec<(Ipv4Addr, u8)>> {
        let out = crate::runner::run_ok(
            self.runner,
            &Cmd::new("ip", ["-j", "addr", "show", "dev", iface]),
        )?;
        parse_ip_addr(&out.stdout, iface)
    }

    /// Duplicate address detection: `arping -D` exits 1 when someone else answers. Without
    /// arping (not every node has it) the check is skipped.
    fn clash(&self, iface: &str, addr: Ipv4Addr) -> Option<String> {
        let cmd = Cmd::new(
            "arping",
            ["-D", "-c", "2", "-w", "3", "-I", iface, &addr.to_string()],
        );
        match self.runner.run(&cmd) {
            Ok(out) if out.code == 1 => Some(
                out.stdout
                    .lines()
                    .find_map(|l| {
                        let s = l.find('[')?;
                        let e = l[s..].find(']')?;
                        Some(format!("MAC {}", &l[s + 1..s + e]))
                    })
                    .unwrap_or_else(|| "unknown MAC".into()),
            ),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("skipping the address-clash check: {e:#}");
                None
            }
        }
    }
}

/// The IPv4 addresses of `iface` in `ip -j addr` output.
pub fn parse_ip_addr(json: &str, iface: &str) -> anyhow::Result<Vec<(Ipv4Addr, u8)>> {
    let links: Vec<IpLink> = serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("`ip -j addr` output is not what it should be: {e}"))?;
    Ok(links
        .iter()
        .filter(|l| l.ifname == iface)
        .flat_map(|l| l.addr_info.iter())
        .filter(|a| a.family == "inet")
        .filter_map(|a| Some((a.local.parse().ok()?, a.prefixlen)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{MockRunner, Output};
    use std::fs;

    // Captured from `ip -j addr show dev lan` on a Proxmox VE 9 node.
    const IP_ADDR: &str = r#"[{"ifindex":4,"ifname":"lan","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"a8:b8:e0:01:02:04","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"10.0.0.11","prefixlen":24,"scope":"global","label":"lan","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::aab8:e0ff:fe01:204","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]"#;

    fn tree(lan_carrier: &str, wan_carrier: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let n = d.path();
        for (bridge, port, carrier) in [
            ("lan", "enp2s0", lan_carrier),
            ("wan", "enp1s0", wan_carrier),
        ] {
            fs::create_dir_all(n.join(bridge).join("bridge")).unwrap();
            fs::create_dir_all(n.join(bridge).join("brif").join(port)).unwrap();
            fs::create_dir_all(n.join(port)).unwrap();
            fs::write(n.join(port).join("carrier"), format!("{carrier}\n")).unwrap();
        }
        d
    }

    fn want() -> NetExpect {
        NetExpect {
            lan_bridge: "lan".into(),
            wan_bridge: "wan".into(),
            address: Ipv4Addr::new(10, 0, 0, 11),
            prefix: 24,
        }
    }

    fn runner(ip: &'static str, arping_code: i32) -> MockRunner {
        let mut r = MockRunner::new();
        r.expect_run().returning(move |cmd| {
            Ok(match cmd.program.as_str() {
                "ip" => {
                    assert_eq!(cmd.argv(), ["ip", "-j", "addr", "show", "dev", "lan"]);
                    Output { code: 0, stdout: ip.into(), stderr: String::new() }
                }
                "arping" => {
                    assert_eq!(cmd.argv(), ["arping", "-D", "-c", "2", "-w", "3", "-I", "lan", "10.0.0.11"]);
                    Output {
                        code: arping_code,
                        stdout: "ARPING 10.0.0.11 from 0.0.0.0 lan\nUnicast reply from 10.0.0.11 [52:54:00:AA:BB:CC]  0.7ms\n".into(),
                        stderr: String::new(),
                    }
                }
                other => panic!("unexpected {other}"),
            })
        });
        r
    }

    #[test]
    fn all_well() {
        let d = tree("1", "1");
        let r = runner(IP_ADDR, 0);
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        assert_eq!(c.problems(&want()), Vec::<String>::new());
    }

    #[test]
    fn cable_in_the_wan_port() {
        let d = tree("0", "1");
        let r = runner(IP_ADDR, 0);
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        let p = c.problems(&want());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("no carrier on the LAN port enp2s0"),
            "{p:?}"
        );
        assert!(p[0].contains("probably in the WAN port"), "{p:?}");
        let d = tree("0", "0");
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        let p = c.problems(&want());
        assert!(!p[0].contains("WAN port"), "{p:?}");
    }

    #[test]
    fn wrong_address_and_clash() {
        let d = tree("1", "0");
        let r = runner(
            r#"[{"ifname":"lan","addr_info":[{"family":"inet","local":"10.0.0.99","prefixlen":24}]}]"#,
            0,
        );
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        let p = c.problems(&want());
        assert_eq!(p, vec!["bridge lan does not have the address 10.0.0.11/24 (it has: 10.0.0.99/24): check /etc/network/interfaces".to_string()]);
        let r = runner(IP_ADDR, 1);
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        let p = c.problems(&want());
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("address clash: another machine (MAC 52:54:00:AA:BB:CC)"),
            "{p:?}"
        );
    }

    #[test]
    fn missing_bridge() {
        let d = tempfile::tempdir().unwrap();
        let r = MockRunner::new();
        let c = NetCheck {
            sys_class_net: d.path().into(),
            runner: &r,
        };
        let p = c.problems(&want());
        assert!(p[0].starts_with("bridge lan does not exist"), "{p:?}");
    }
}
