//! Valid site files: the shipped examples, and the defaults a minimal file gets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::net::Ipv4Addr;
use tappaas_site::*;

const HASH: &str = "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/";

fn head() -> String {
    format!(
        "version = 1\n[site]\nname = \"acme\"\ndomain = \"acme.example\"\n\
         admin-email = \"it@acme.example\"\n[credentials]\nroot-password-hash = \"{HASH}\"\n"
    )
}

/// The join settings a site of several nodes needs to be free of warnings.
const CLUSTER: &str = "[cluster]\njoin-secret = \"Zx8-one-time-secret-42\"\n";

fn ok(src: &str) -> Site {
    let (site, diags) = parse_with_warnings(src, &ParseOptions::default());
    match site {
        Some(s) if diags.is_empty() => s,
        _ => panic!("{}\n{}", render_all(&diags, "test.toml"), src),
    }
}

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn three_node_example_is_valid() {
    let profiles = ["qotom-q20300g9", "minisforum-ms-01", "lenovo-m720q"]
        .map(String::from)
        .to_vec();
    for opts in [
        ParseOptions::default(),
        ParseOptions {
            known_profiles: profiles,
        },
    ] {
        let (site, diags) = parse_with_warnings(&example("three-node-site.toml"), &opts);
        // The example leaves the join secret out on purpose (a secret is never copied from
        // documentation): that is its one warning, and it points to `join-keys`.
        let text = render_all(&diags, "three-node-site.toml");
        assert_eq!(diags.len(), 1, "{text}");
        assert_eq!(diags[0].path, "cluster.join-secret", "{text}");
        assert_eq!(diags[0].severity, Severity::Warning, "{text}");
        let site = site.unwrap();
        let names: Vec<_> = site
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.role, n.address))
            .collect();
        assert_eq!(
            names,
            [
                ("tappaas1", Role::Primary, ip("10.0.0.10")),
                ("tappaas2", Role::Member, ip("10.0.0.11")),
                ("tappaas3", Role::Backup, ip("10.0.0.12")),
            ]
        );
        assert_eq!(site.nodes[0].profile.as_deref(), Some("qotom-q20300g9"));
        assert_eq!(
            site.nodes[1].identify,
            Identify::Profile {
                profile: "minisforum-ms-01".into(),
                index: 1
            }
        );
        assert_eq!(site.nodes[0].tank1.as_ref().unwrap().layout, Layout::Mirror);
        assert_eq!(site.nodes[1].tank1.as_ref().unwrap().layout, Layout::Mirror);
        assert!(site.nodes[2].tank1.is_none());
        assert_eq!(site.nodes[2].tank2.as_ref().unwrap().layout, Layout::Single);
        assert_eq!(site.site.timezone, "Europe/Copenhagen");
        assert_eq!(site.credentials.ssh_keys.len(), 1);
    }
}

#[test]
fn three_node_example_refuses_unknown_profiles() {
    let opts = ParseOptions {
        known_profiles: vec!["qemu-lab".into()],
    };
    let diags = parse(&example("three-node-site.toml"), &opts).unwrap_err();
    assert!(
        diags
            .iter()
            .filter(|d| d.is_error())
            .all(|d| d.message.contains("unknown hardware profile")),
        "{diags:#?}"
    );
}

#[test]
fn one_node_example_is_valid_with_one_warning() {
    let (site, diags) =
        parse_with_warnings(&example("one-node-site.toml"), &ParseOptions::default());
    let site = site.unwrap_or_else(|| panic!("{}", render_all(&diags, "one-node-site.toml")));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].severity, Severity::Warning);
    assert_eq!(diags[0].path, "node[0].tank1.layout");
    assert!(diags[0].message.contains("no redundancy"));
    let n = &site.nodes[0];
    assert_eq!(
        (n.name.as_str(), n.id, n.address),
        ("tappaas1", 1, ip("10.0.0.10"))
    );
    assert_eq!(n.nics.wan, Some(NicSelector::Name("enp1s0".into())));
}

#[test]
fn minimal_site_gets_tappaas_defaults() {
    let src = format!(
        "{}[[node]]\nrole = \"primary\"\n[node.boot]\ndisks = [{{ serial = \"B1\" }}]\n\
         [node.tank1]\ndisks = [{{ serial = \"T1\" }}, {{ serial = \"T2\" }}]\n",
        head()
    );
    let s = ok(&format!("{src}{CLUSTER}"));
    assert_eq!(s.version, 1);
    assert_eq!(s.site.internal_domain, "mgmt.internal");
    assert_eq!(
        (
            s.site.timezone.as_str(),
            s.site.keyboard.as_str(),
            s.site.country.as_str()
        ),
        ("UTC", "us", "us")
    );
    assert_eq!(
        s.network.management,
        Ipv4Net {
            addr: ip("10.0.0.0"),
            prefix: 24
        }
    );
    assert_eq!(s.network.firewall, ip("10.0.0.1"));
    assert_eq!(s.network.dns, vec![ip("10.0.0.1")]);
    assert_eq!(
        (s.network.lan_bridge.as_str(), s.network.wan_bridge.as_str()),
        ("lan", "wan")
    );
    assert_eq!(s.network.upstream, Upstream::Dhcp);
    assert_eq!(s.cluster.name, "TAPPaaS");
    assert!(s.credentials.ssh_keys.is_empty());
    for (p, name) in [
        (&s.storage.rpool, "rpool"),
        (&s.storage.tank1, "tank1"),
        (&s.storage.tank2, "tank2"),
    ] {
        assert_eq!(
            *p,
            PoolSettings {
                name: name.into(),
                ashift: 12,
                compression: "lz4".into(),
                atime: false,
                xattr: "sa".into(),
                autotrim: true,
                compatibility: "openzfs-2.1-linux".into(),
            }
        );
    }
    let n = &s.nodes[0];
    assert_eq!(
        (n.name.as_str(), n.id, n.address),
        ("tappaas1", 1, ip("10.0.0.10"))
    );
    assert_eq!(n.identify, Identify::Explicit);
    assert_eq!(n.profile, None);
    assert!(!n.replace);
    assert_eq!(n.pos, Pos { line: 8, col: 1 });
    assert_eq!(n.boot.layout, Layout::Single);
    assert_eq!(n.boot.disks, vec![DiskSelector::Serial("B1".into())]);
    assert!(!n.boot.wipe);
    assert_eq!(n.boot.pos, Pos { line: 10, col: 1 });
    let t1 = n.tank1.as_ref().unwrap();
    assert_eq!(t1.layout, Layout::Mirror);
    assert_eq!(t1.pos, Pos { line: 12, col: 1 });
    assert!(n.tank2.is_none());
    assert_eq!(n.nics, NicRoles::default());
}

#[test]
fn node_numbering_drives_names_and_addresses() {
    let node = |role: &str, extra: &str| {
        format!("[[node]]\nrole = \"{role}\"\nprofile = \"p\"\n{extra}[node.tank1]\n[node.tank2]\n")
    };
    let src = format!(
        "{}[network]\nmanagement = \"192.168.40.0/24\"\n{}{}{}{}",
        head(),
        node("primary", ""),
        node("member", ""),
        node("member", "id = 7\n"),
        node("backup", "name = \"pbs\"\naddress = \"192.168.40.200\"\n"),
    );
    let s = ok(&format!("{src}{CLUSTER}"));
    let got: Vec<_> = s
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.id, n.address))
        .collect();
    assert_eq!(
        got,
        [
            ("tappaas1", 1, ip("192.168.40.10")),
            ("tappaas2", 2, ip("192.168.40.11")),
            ("tappaas7", 7, ip("192.168.40.16")),
            ("pbs", 4, ip("192.168.40.200")),
        ]
    );
    assert_eq!(s.network.firewall, ip("192.168.40.1"));
    // Disks from the profile: empty lists, layout left to the planner.
    assert!(s.nodes[0].boot.disks.is_empty());
    assert!(s.nodes[0].tank1.as_ref().unwrap().disks.is_empty());
}

#[test]
fn selectors_sizes_and_layouts() {
    let src = format!(
        "{}[[node]]\nrole = \"primary\"\n[node.boot]\n\
         disks = [{{ by-id = \"/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456\" }}, {{ wwn = \"0x5002538E40A1B2C3\" }}]\n\
         [node.tank1]\ndisks = [{{ transport = \"nvme\", min-size = \"1.5T\", max-size = \"2TB\", count = 3 }}]\nlayout = \"raidz1\"\n\
         [node.tank2]\ndisks = [{{ serial = \"WD-*\" }}, {{ serial = \"ZR1\", model = \"ST4000*\", rotational = true, min-size = 4000000000000 }}]\n\
         layout = \"mirror\"\nwipe = true\n",
        head()
    );
    let s = ok(&format!("{src}{CLUSTER}"));
    let n = &s.nodes[0];
    assert_eq!(n.boot.layout, Layout::Mirror);
    assert_eq!(
        n.boot.disks,
        vec![
            DiskSelector::ById("nvme-Samsung_SSD_980_1TB_S64ANS0T123456".into()),
            DiskSelector::Wwn("0x5002538e40a1b2c3".into()),
        ]
    );
    let t1 = n.tank1.as_ref().unwrap();
    assert_eq!(t1.layout, Layout::Raidz1);
    assert_eq!(
        t1.disks,
        vec![DiskSelector::Filter(DiskFilter {
            transport: Some("nvme".into()),
            min_size: Some(3 << 39),
            max_size: Some(2_000_000_000_000),
            count: 3,
            ..DiskFilter::default()
        })]
    );
    let t2 = n.tank2.as_ref().unwrap();
    assert!(t2.wipe);
    assert_eq!(
        t2.disks,
        vec![
            DiskSelector::Filter(DiskFilter {
                serial: Some("WD-*".into()),
                count: 1,
                ..DiskFilter::default()
            }),
            DiskSelector::Filter(DiskFilter {
                serial: Some("ZR1".into()),
                model: Some("ST4000*".into()),
                rotational: Some(true),
                min_size: Some(4_000_000_000_000),
                count: 1,
                ..DiskFilter::default()
            }),
        ]
    );
}

#[test]
fn identify_nics_upstream_and_inline_tables() {
    let src = format!(
        "{}[network.upstream]\nmode = \"static\"\naddress = \"192.168.1.50/24\"\ngateway = \"192.168.1.1\"\n\
         [storage.tank1]\nname = \"tanka1\"\ncompression = \"zstd-3\"\n\
         [[node]]\nrole = \"primary\"\nidentify = {{ mac = \"A8:B8:E0:01:02:03\" }}\n\
         nics = {{ wan = {{ mac = \"a8-b8-e0-01-02-03\" }}, lan = {{ pci = \"01:00.1\" }} }}\n\
         boot = {{ disks = [{{ serial = \"B1\" }}] }}\ntank1 = {{ disks = [{{ serial = \"T1\" }}, {{ serial = \"T2\" }}] }}\n\
         [[node]]\nrole = \"member\"\nidentify = {{ profile = \"ms-01\", index = 2 }}\n[node.tank1]\n\
         [[node]]\nrole = \"backup\"\nidentify = {{ dmi-serial = \"QTM42\" }}\nprofile = \"lab\"\nreplace = true\n[node.tank2]\n",
        head()
    );
    let s = ok(&format!("{src}{CLUSTER}"));
    let mac = Mac([0xa8, 0xb8, 0xe0, 1, 2, 3]);
    assert_eq!(
        s.network.upstream,
        Upstream::Static {
            address: Ipv4If {
                addr: ip("192.168.1.50"),
                prefix: 24
            },
            gateway: ip("192.168.1.1"),
            dns: vec![ip("192.168.1.1")]
        }
    );
    assert_eq!(
        (
            s.storage.tank1.name.as_str(),
            s.storage.tank1.compression.as_str()
        ),
        ("tanka1", "zstd-3")
    );
    assert_eq!(s.nodes[0].identify, Identify::Mac(mac));
    assert_eq!(s.nodes[0].nics.wan, Some(NicSelector::Mac(mac)));
    assert_eq!(
        s.nodes[0].nics.lan,
        Some(NicSelector::Pci("0000:01:00.1".into()))
    );
    assert_eq!(
        s.nodes[1].identify,
        Identify::Profile {
            profile: "ms-01".into(),
            index: 2
        }
    );
    assert_eq!(s.nodes[1].profile.as_deref(), Some("ms-01"));
    assert_eq!(s.nodes[2].identify, Identify::DmiSerial("QTM42".into()));
    assert!(s.nodes[2].replace);
}

#[test]
fn parse_returns_ok_despite_warnings() {
    let src = format!(
        "{}[[node]]\nrole = \"primary\"\nprofile = \"p\"\n[node.tank1]\n[[node]]\nrole = \"member\"\nprofile = \"p\"\n[node.tank1]\n",
        head()
    );
    let (_, diags) = parse_with_warnings(&src, &ParseOptions::default());
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert!(diags.iter().any(|d| d.message.contains("quorum")));
    assert!(diags.iter().any(|d| d.path == "cluster.join-secret"));
    assert!(parse(&src, &ParseOptions::default()).is_ok());
}
