//! Golden renders: every file the installer writes into the target root, for real plans made from
//! the hardware profiles' fixtures, pinned as snapshots, plus the invariants every profile and
//! role must keep.
//!
//! Regenerate after an intended change: `INSTA_UPDATE=always cargo test --test system_golden`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

mod golden;

use golden::*;
use std::collections::BTreeMap;
use std::path::Path;
use tappaas_installer::profile;
use tappaas_installer::system::{self, FileContent, RenderedFile};

fn render(profile_id: &str, src: &str, node: &str) -> Vec<RenderedFile> {
    let (plan, site) = plan_site(profile_id, src, node);
    system::render(&plan, &site, src, &ids()).unwrap_or_else(|e| panic!("{profile_id} {node}: {e}"))
}

/// Every entry as `==> PATH (MODE[, secret]) <==` followed by its content: text as it is, other
/// bytes in hex, links as `-> TARGET`.
fn dump(files: &[RenderedFile]) -> String {
    let mut out = String::new();
    for f in files {
        let secret = if f.secret { ", secret" } else { "" };
        out.push_str(&format!(
            "==> {} ({:04o}{secret}) <==\n",
            f.path.display(),
            f.mode
        ));
        match &f.content {
            // Pinned by plan_golden and by the input itself; here only their identity matters.
            FileContent::Bytes(b) if f.path == Path::new("/etc/tappaas/plan.json") => {
                out.push_str(&format!(
                    "(the plan as JSON, {} bytes, sha256 {})\n",
                    b.len(),
                    sha256(b)
                ));
            }
            FileContent::Bytes(b) if f.path == Path::new("/etc/tappaas/site.toml") => {
                out.push_str(&format!(
                    "(the site file as given, {} bytes, sha256 {})\n",
                    b.len(),
                    sha256(b)
                ));
            }
            FileContent::Dir => out.push_str("(directory)\n"),
            FileContent::Symlink(t) => out.push_str(&format!("-> {}\n", t.display())),
            FileContent::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if !s.contains('\0') => out.push_str(s),
                _ => {
                    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                    out.push_str(&format!("(binary) {}\n", hex.join(" ")));
                }
            },
        }
        out.push('\n');
    }
    out
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn by_path(files: &[RenderedFile]) -> BTreeMap<&Path, &RenderedFile> {
    files.iter().map(|f| (f.path.as_path(), f)).collect()
}

fn text<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
    let f = by_path(files)[Path::new(path)];
    std::str::from_utf8(f.bytes_content().expect("a regular file")).expect("utf-8")
}

#[test]
fn golden_renders() {
    for (profile_id, node, src, name) in [
        (
            "qemu-lab",
            "tappaas1",
            golden_site("qemu-lab"),
            "qemu-lab-primary",
        ),
        (
            "qotom-q20300g9",
            "tappaas3",
            golden_site("qotom-q20300g9"),
            "qotom-q20300g9-backup",
        ),
        // Every default the files depend on changed: keyboard, time zone, domain, DNS, pool names.
        (
            "qotom-q20300g9",
            "tappaas1",
            custom_site("qotom-q20300g9"),
            "qotom-q20300g9-primary-custom",
        ),
    ] {
        let files = render(profile_id, &src, node);
        insta::assert_snapshot!(name, dump(&files));
    }
}

/// The exact list of entries, with their modes, kinds and secret flags.
#[test]
fn paths_modes_and_secret_flags() {
    let files = render("qemu-lab", &golden_site("qemu-lab"), "tappaas1");
    let got: Vec<(String, String, bool)> = files
        .iter()
        .map(|f| {
            let kind = match f.content {
                FileContent::Bytes(_) => format!("file {:04o}", f.mode),
                FileContent::Symlink(_) => "link".to_string(),
                FileContent::Dir => format!("dir {:04o}", f.mode),
            };
            (f.path.display().to_string(), kind, f.secret)
        })
        .collect();
    let want: Vec<(&str, &str, bool)> = vec![
        ("/etc/default/grub.d", "dir 0755", false),
        ("/etc/default/grub.d/tappaas.cfg", "file 0644", false),
        ("/etc/default/keyboard", "file 0644", false),
        ("/etc/fstab", "file 0644", false),
        ("/etc/hostid", "file 0644", false),
        ("/etc/hostname", "file 0644", false),
        ("/etc/hosts", "file 0644", false),
        ("/etc/kernel/cmdline", "file 0644", false),
        ("/etc/localtime", "link", false),
        ("/etc/machine-id", "file 0444", false),
        ("/etc/modprobe.d/zfs.conf", "file 0644", false),
        ("/etc/network/interfaces", "file 0644", false),
        ("/etc/resolv.conf", "file 0644", false),
        (
            "/etc/systemd/network/10-tappaas-lan.link",
            "file 0644",
            false,
        ),
        (
            "/etc/systemd/network/10-tappaas-wan.link",
            "file 0644",
            false,
        ),
        (
            "/etc/systemd/system/multi-user.target.wants/tappaas-bootstrap.service",
            "link",
            false,
        ),
        (
            "/etc/systemd/system/tappaas-bootstrap.service",
            "file 0644",
            false,
        ),
        (
            "/etc/systemd/system/zfs-import.target.wants/zfs-import@tank1.service",
            "link",
            false,
        ),
        (
            "/etc/systemd/system/zfs-import.target.wants/zfs-import@tank2.service",
            "link",
            false,
        ),
        ("/etc/tappaas", "dir 0755", false),
        ("/etc/tappaas/node.toml", "file 0600", false),
        ("/etc/tappaas/plan.json", "file 0644", false),
        ("/etc/tappaas/site.toml", "file 0600", true),
        ("/etc/timezone", "file 0644", false),
        ("/root/.ssh", "dir 0700", false),
        ("/root/.ssh/authorized_keys", "file 0600", false),
        ("/var/lib/dbus/machine-id", "link", false),
        ("/var/lib/tappaas", "dir 0700", false),
        ("/var/lib/tappaas/pve-seed", "dir 0700", false),
        (
            "/var/lib/tappaas/pve-seed/datacenter.cfg",
            "file 0600",
            false,
        ),
        ("/var/lib/tappaas/pve-seed/storage.cfg", "file 0600", false),
        ("/var/lib/tappaas/pve-seed/user.cfg", "file 0600", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .into_iter()
        .map(|(p, k, s)| (p.to_string(), k.to_string(), s))
        .collect();
    assert_eq!(got, want);

    let links: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| match &f.content {
            FileContent::Symlink(t) => {
                Some((f.path.display().to_string(), t.display().to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(links["/etc/localtime"], "/usr/share/zoneinfo/UTC");
    assert_eq!(
        links["/etc/systemd/system/multi-user.target.wants/tappaas-bootstrap.service"],
        "/etc/systemd/system/tappaas-bootstrap.service"
    );
    assert_eq!(links["/var/lib/dbus/machine-id"], "/etc/machine-id");
}

/// The root password hash appears only in the verbatim site file (secret, 0600) and in the
/// dedicated chpasswd item; never in a file that may be logged or read by others.
#[test]
fn the_password_hash_stays_in_the_secret_items() {
    for id in profile::ids() {
        for (node, _) in NODES {
            let src = golden_site(id);
            let (plan, site) = plan_site(id, &src, node);
            let files = system::render(&plan, &site, &src, &ids()).unwrap();
            let holders: Vec<&RenderedFile> = files
                .iter()
                .filter(|f| {
                    f.bytes_content()
                        .is_some_and(|b| String::from_utf8_lossy(b).contains(HASH))
                })
                .collect();
            assert_eq!(holders.len(), 1, "{id} {node}: {holders:?}");
            assert_eq!(holders[0].path, Path::new("/etc/tappaas/site.toml"));
            assert!(holders[0].secret && holders[0].mode == 0o600);
            assert!(
                !format!("{holders:?}").contains(HASH),
                "Debug shows a secret file"
            );
            assert!(files
                .iter()
                .filter(|f| f.secret)
                .all(|f| f.mode & 0o077 == 0));

            let pw = system::root_password(&site);
            assert_eq!(pw.hash(), HASH);
            assert_eq!(pw.chpasswd_input(), format!("root:{HASH}\n").into_bytes());
            assert!(!format!("{pw:?}").contains(HASH));
        }
    }
}

/// On every profile and role: one VLAN-aware LAN bridge carrying the management address, a WAN
/// bridge without an address, each port declared once and pinned by a `.link` file.
#[test]
fn interfaces_invariants_for_every_profile_and_role() {
    for id in profile::ids() {
        for (node, role) in NODES {
            let (plan, site) = plan_site(id, &golden_site(id), node);
            let files = system::render(&plan, &site, "", &ids()).unwrap();
            let ifaces = text(&files, "/etc/network/interfaces");
            let stanzas: BTreeMap<&str, &str> = ifaces
                .split("\n\n")
                .filter_map(|s| {
                    let s = s.trim_start_matches('\n');
                    let name = s.lines().find_map(|l| l.strip_prefix("iface "))?;
                    Some((name.split_whitespace().next()?, s))
                })
                .collect();
            let ctx = format!("{id} {role}:\n{ifaces}");
            assert_eq!(ifaces.matches("bridge-vlan-aware yes").count(), 1, "{ctx}");
            let lan = stanzas["lan"];
            assert!(
                lan.starts_with("auto lan\niface lan inet static\n"),
                "{ctx}"
            );
            assert!(
                lan.contains("\tbridge-vlan-aware yes\n\tbridge-vids 2-4094\n"),
                "{ctx}"
            );
            assert!(
                lan.contains(&format!("\taddress {}\n", plan.system.address)),
                "{ctx}"
            );
            assert!(
                lan.contains(&format!("\tgateway {}\n", plan.system.gateway)),
                "{ctx}"
            );
            let wan = stanzas["wan"];
            assert!(
                wan.starts_with("auto wan\niface wan inet manual\n"),
                "{ctx}"
            );
            assert!(
                !wan.contains("address") && !wan.contains("gateway"),
                "{ctx}"
            );
            assert!(!wan.contains("vlan"), "{ctx}");
            for b in &plan.system.bridges {
                assert!(stanzas[b.name.as_str()].contains(&format!("\tbridge-ports {}\n", b.port)));
                assert_eq!(
                    stanzas[b.port.as_str()].trim_end(),
                    format!("iface {} inet manual", b.port),
                    "{ctx}"
                );
                let link = text(
                    &files,
                    &format!("/etc/systemd/network/10-tappaas-{}.link", b.name),
                );
                assert!(link.contains(&format!("\nMACAddress={}\nType=ether\n", b.port_mac)));
                assert!(link.ends_with(&format!("\n[Link]\nName={}\n", b.port)));
            }
            assert_eq!(ifaces.matches("inet static").count(), 1, "{ctx}");
            assert!(ifaces.starts_with("# network interface settings"));
            assert!(
                ifaces.ends_with("\nsource /etc/network/interfaces.d/*\n"),
                "{ctx}"
            );
            assert!(
                ifaces.contains("\nauto lo\niface lo inet loopback\n"),
                "{ctx}"
            );
        }
    }
}

/// How the firewall reaches the internet is the firewall's business: the nodes' files are the
/// same with a static upstream, except the copy of the site file itself.
#[test]
fn a_static_upstream_changes_only_the_site_file_copy() {
    for (id, node) in [("qemu-lab", "tappaas1"), ("qotom-q20300g9", "tappaas2")] {
        let dhcp = render(id, &golden_site(id), node);
        let src = static_upstream_site(id);
        let fixed = render(id, &src, node);
        assert_eq!(dhcp.len(), fixed.len());
        for (a, b) in dhcp.iter().zip(&fixed) {
            assert_eq!(a.path, b.path);
            if a.path == Path::new("/etc/tappaas/site.toml") {
                assert_eq!(b.bytes_content(), Some(src.as_bytes()));
            } else {
                assert_eq!(a, b, "{}", a.path.display());
            }
        }
    }
}

#[test]
fn rendering_is_deterministic_and_sorted() {
    for id in profile::ids() {
        let src = golden_site(id);
        let (plan, site) = plan_site(id, &src, "tappaas1");
        let a = system::render(&plan, &site, &src, &ids()).unwrap();
        let b = system::render(&plan, &site, &src, &ids()).unwrap();
        assert_eq!(a, b, "{id}");
        assert!(
            a.windows(2).all(|w| w[0].path < w[1].path),
            "{id}: not sorted or duplicated"
        );
        for f in &a {
            assert!(f.path.is_absolute(), "{}", f.path.display());
            assert!(!f.relative_path().is_absolute());
            // A directory is listed before anything inside it.
            if let Some(parent) = f.path.parent() {
                if let Some(d) = a.iter().position(|d| d.path == parent) {
                    assert!(a[d].path < f.path);
                }
            }
        }
    }
}

/// A test-only certificate and key (made with openssl; never used outside the tests).
const TLS_CERT: &str = include_str!("../site/tests/data/primary.pem");
const TLS_KEY: &str = include_str!("../site/tests/data/primary.key");

/// The golden site with the primary's certificate and key in `[cluster]`.
fn site_with_primary_keys(profile_id: &str) -> String {
    with_tables(
        &golden_site(profile_id),
        &format!(
            "[cluster]\njoin-secret = \"one-time-secret-0123456789\"\n\
             primary-certificate = \"\"\"\n{TLS_CERT}\"\"\"\nprimary-key = \"\"\"\n{TLS_KEY}\"\"\"\n"
        ),
    )
}

/// With the site's certificate and key, the primary gets them where its first boot's
/// `api-certificate` step looks (the key root-only and secret); nothing else changes but the
/// copy of the site file.
#[test]
fn the_primary_gets_the_sites_certificate_and_key() {
    let plain = render("qemu-lab", &golden_site("qemu-lab"), "tappaas1");
    let src = site_with_primary_keys("qemu-lab");
    let files = render("qemu-lab", &src, "tappaas1");
    let got: Vec<(String, String, bool)> = files
        .iter()
        .filter(|f| f.path.starts_with("/etc/tappaas/tls"))
        .map(|f| {
            let kind = match f.content {
                FileContent::Dir => format!("dir {:04o}", f.mode),
                _ => format!("file {:04o}", f.mode),
            };
            (f.path.display().to_string(), kind, f.secret)
        })
        .collect();
    let want = [
        ("/etc/tappaas/tls", "dir 0700", false),
        ("/etc/tappaas/tls/api.key", "file 0600", true),
        ("/etc/tappaas/tls/api.pem", "file 0644", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(p, k, s)| (p.to_string(), k.to_string(), *s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        by_path(&files)[Path::new(system::TLS_DIR)].path,
        Path::new("/etc/tappaas/tls")
    );
    assert_eq!(text(&files, "/etc/tappaas/tls/api.pem"), TLS_CERT);
    assert_eq!(text(&files, "/etc/tappaas/tls/api.key"), TLS_KEY);
    let key = by_path(&files)[Path::new("/etc/tappaas/tls/api.key")];
    assert!(!format!("{key:?}").contains("PRIVATE KEY"), "{key:?}");
    // Everything else is as without the keys (the site file's copy: see only_the_primary_gets_the_key).
    let others: Vec<&RenderedFile> = files
        .iter()
        .filter(|f| {
            !f.path.starts_with("/etc/tappaas/tls") && f.path != Path::new("/etc/tappaas/site.toml")
        })
        .collect();
    let plain: Vec<&RenderedFile> = plain
        .iter()
        .filter(|f| f.path != Path::new("/etc/tappaas/site.toml"))
        .collect();
    assert_eq!(others, plain);
}

/// The key lets whoever holds it pose as the primary to joining nodes: the members and the
/// backup node never get it (nor the certificate as a file), and on the primary it is only in
/// secret, root-only files.
#[test]
fn only_the_primary_gets_the_key() {
    let body: String = TLS_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for id in profile::ids() {
        let src = site_with_primary_keys(id);
        for (node, role) in NODES {
            let (plan, site) = plan_site(id, &src, node);
            let files = system::render(&plan, &site, &src, &ids()).unwrap();
            let tls: Vec<&RenderedFile> = files
                .iter()
                .filter(|f| f.path.starts_with(system::TLS_DIR))
                .collect();
            let holders: Vec<&Path> = files
                .iter()
                .filter(|f| {
                    f.bytes_content().is_some_and(|b| {
                        let s = String::from_utf8_lossy(b).replace('\n', "");
                        s.contains(&body)
                    })
                })
                .map(|f| f.path.as_path())
                .collect();
            if role == "primary" {
                assert_eq!(tls.len(), 3, "{id} {node}");
                assert_eq!(
                    holders,
                    [Path::new("/etc/tappaas/tls/api.key")],
                    "{id} {node}"
                );
                let key = by_path(&files)[Path::new("/etc/tappaas/tls/api.key")];
                assert!(key.secret && key.mode == 0o600, "{id} {node}: {key:?}");
            } else {
                assert!(tls.is_empty(), "{id} {node} ({role}): {tls:?}");
                assert!(holders.is_empty(), "{id} {node} ({role}): {holders:?}");
            }
            // Every node's copy of the site file pins the certificate by its fingerprint.
            let copy = text(&files, "/etc/tappaas/site.toml");
            assert!(!copy.contains("PRIVATE KEY") && !copy.contains("BEGIN CERTIFICATE"));
            let back = tappaas_site::parse(copy, &tappaas_site::ParseOptions::default()).unwrap();
            assert_eq!(
                back.cluster.primary_fingerprint,
                site.cluster.pinned_fingerprint(),
                "{id} {node}"
            );
        }
    }
}

/// A key that is not the certificate's is refused before anything is written, naming the field,
/// even by a caller that skipped validation (which refuses it at the key's line).
#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let other = tappaas_installer::joinkeys::generate(&tappaas_installer::joinkeys::PrimaryId {
        name: "tappaas1".into(),
        address: "10.0.0.10".parse().unwrap(),
    })
    .unwrap();
    let src = site_with_primary_keys("qemu-lab");
    let swapped = src.replace(TLS_KEY, &other.key_pem);
    let diags = tappaas_site::parse(&swapped, &tappaas_site::ParseOptions::default()).unwrap_err();
    assert_eq!(diags[0].path, "cluster.primary-key", "{diags:?}");
    let (plan, mut site) = plan_site("qemu-lab", &src, "tappaas1");
    site.cluster.primary_key = Some(other.key_pem.clone());
    let err = system::render(&plan, &site, &src, &ids()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("primary-key is not the key of its primary-certificate"),
        "{msg}"
    );
    assert!(!msg.contains("PRIVATE"), "{msg}");
    // Members do not get the key, so they do not check it.
    let (plan, mut site) = plan_site("qemu-lab", &src, "tappaas2");
    site.cluster.primary_key = Some(other.key_pem);
    assert!(system::render(&plan, &site, &src, &ids()).is_ok());
}
