//! The rules behind rendered values (ARC size, hostid bytes, keyboard names, dates), the node
//! manifest's round trip, and the plans `system::render` refuses.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

mod golden;

use golden::*;
use sha2::Digest;
use std::path::Path;
use tappaas_installer::system::{self, GeneratedIds, NodeManifest, RenderError, RenderedFile};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

#[test]
fn arc_max_is_a_tenth_of_ram_within_64_mib_and_16_gib() {
    // (RAM, expected zfs_arc_max)
    for (ram, want) in [
        (0, 64 * MIB),
        (256 * MIB, 64 * MIB),        // 25.6 MiB -> floor
        (640 * MIB, 64 * MIB),        // exactly the floor
        (GIB, 102 * MIB),             // 102.4 MiB, rounded to whole MiB
        (4_101_402_624, 391 * MIB),   // qemu-lab: MemTotal 3911 MiB
        (16 * GIB, 1638 * MIB),       // 1638.4
        (16_638_619_648, 1587 * MIB), // Qotom Q20300G9: 15867 MiB -> 1586.7
        (64 * GIB, 6554 * MIB),       // 6553.6 rounds up
        (160 * GIB, 16 * GIB),        // exactly the ceiling
        (512 * GIB, 16 * GIB),        // capped
        (u64::MAX, 16 * GIB),         // no overflow
    ] {
        assert_eq!(system::zfs_arc_max(ram), want, "RAM {ram}");
        assert_eq!(want % MIB, 0);
    }
    assert_eq!(system::ARC_MAX_FLOOR, 64 * MIB);
    assert_eq!(system::ARC_MAX_CEILING, 16 * GIB);
}

#[test]
fn zfs_conf_carries_the_arc_rule_for_the_planned_machine() {
    let (plan, site) = plan_site("qotom-q20300g9", &golden_site("qotom-q20300g9"), "tappaas1");
    let files = system::render(&plan, &site, "", &ids()).unwrap();
    let conf = text(&files, "/etc/modprobe.d/zfs.conf");
    let want = system::zfs_arc_max(plan.machine.memory_bytes);
    assert!(
        conf.ends_with(&format!("\noptions zfs zfs_arc_max={want}\n")),
        "{conf}"
    );
}

#[test]
fn hostid_is_little_endian_like_zgenhostid() {
    // `zgenhostid deadbeef` writes ef be ad de; `hostid` then prints deadbeef.
    assert_eq!(system::hostid_bytes(0xdead_beef), [0xef, 0xbe, 0xad, 0xde]);
    assert_eq!(system::hostid_bytes(0x0000_0001), [1, 0, 0, 0]);
    let (plan, site) = plan_site("qemu-lab", &golden_site("qemu-lab"), "tappaas1");
    let ids = GeneratedIds {
        hostid: 0x1234_5678,
        ..ids()
    };
    let files = system::render(&plan, &site, "", &ids).unwrap();
    assert_eq!(bytes(&files, "/etc/hostid"), [0x78, 0x56, 0x34, 0x12]);
}

#[test]
fn machine_id_is_32_hex_digits_and_a_newline() {
    let (plan, site) = plan_site("qemu-lab", &golden_site("qemu-lab"), "tappaas1");
    let files = system::render(&plan, &site, "", &ids()).unwrap();
    let id = text(&files, "/etc/machine-id");
    assert_eq!(id, "4f1c2a935b6d4e7f8a90abcdef012345\n");
    assert_eq!(ids().machine_id_hex(), id.trim_end());
}

#[test]
fn generated_ids_are_usable_and_differ() {
    let a = GeneratedIds::generate();
    let b = GeneratedIds::generate();
    assert_ne!(a.machine_id, [0; 16]);
    assert!(a.hostid != 0 && a.hostid != u32::MAX);
    assert_ne!(a.machine_id, b.machine_id);
    assert!(a.installed_at > 1_700_000_000);
    let hex = a.machine_id_hex();
    assert!(
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn rfc3339_dates() {
    for (secs, want) in [
        (0, "1970-01-01T00:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (1_767_225_600, "2026-01-01T00:00:00Z"),
        (1_772_323_199, "2026-02-28T23:59:59Z"),
        (4_107_542_399, "2100-02-28T23:59:59Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
    ] {
        assert_eq!(system::format_rfc3339(secs), want, "{secs}");
    }
}

#[test]
fn keyboard_names_map_to_xkb_and_proxmox() {
    for (site, layout, variant, pve) in [
        ("us", "us", "", Some("en-us")),
        ("en-us", "us", "", Some("en-us")),
        ("dk", "dk", "nodeadkeys", Some("da")),
        ("de", "de", "nodeadkeys", Some("de")),
        ("de-ch", "ch", "de_nodeadkeys", Some("de-ch")),
        ("gb", "gb", "", Some("en-gb")),
        ("se", "se", "nodeadkeys", Some("sv")),
        ("ru", "ru", "", None),
        ("ru-phonetic", "ru", "phonetic", None),
    ] {
        let k = system::keyboard_map(site);
        assert_eq!(
            (k.xkb_layout.as_str(), k.xkb_variant.as_str(), k.pve),
            (layout, variant, pve),
            "{site}"
        );
    }
}

/// An unknown layout still gets a console keymap; Proxmox's keyboard is then left unset.
#[test]
fn datacenter_cfg_omits_a_keyboard_proxmox_does_not_know() {
    let src = with_site_keys(&golden_site("qemu-lab"), "keyboard = \"ru\"\n");
    let (plan, site) = plan_site("qemu-lab", &src, "tappaas1");
    let files = system::render(&plan, &site, &src, &ids()).unwrap();
    assert_eq!(text(&files, "/var/lib/tappaas/pve-seed/datacenter.cfg"), "");
    assert!(text(&files, "/etc/default/keyboard").contains("\nXKBLAYOUT=\"ru\"\n"));
}

#[test]
fn the_backup_nodes_tank2_is_not_offered_as_vm_storage() {
    let src = golden_site("qotom-q20300g9");
    let storages = |node: &str| -> Vec<String> {
        let (plan, site) = plan_site("qotom-q20300g9", &src, node);
        let files = system::render(&plan, &site, &src, &ids()).unwrap();
        text(&files, "/var/lib/tappaas/pve-seed/storage.cfg")
            .lines()
            .filter_map(|l| l.strip_prefix("zfspool: "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(storages("tappaas1"), ["local-zfs", "tank1", "tank2"]);
    // The backup node keeps tank2 for Proxmox Backup Server's datastore.
    assert_eq!(storages("tappaas3"), ["local-zfs", "tank1"]);
}

#[test]
fn node_manifest_reads_back_and_pins_the_plan() {
    for (profile_id, node) in [("qemu-lab", "tappaas1"), ("qotom-q20300g9", "tappaas3")] {
        let src = custom_site(profile_id);
        let (plan, site) = plan_site(profile_id, &src, node);
        let files = system::render(&plan, &site, &src, &ids()).unwrap();
        let json = bytes(&files, "/etc/tappaas/plan.json");
        let mut want_json = serde_json::to_vec_pretty(&plan).unwrap();
        want_json.push(b'\n');
        assert_eq!(json, want_json);
        assert_eq!(
            serde_json::from_slice::<tappaas_installer::plan::Plan>(json).unwrap(),
            plan
        );
        assert_eq!(bytes(&files, "/etc/tappaas/site.toml"), src.as_bytes());

        let m = NodeManifest::parse(text(&files, "/etc/tappaas/node.toml")).unwrap();
        let sha: String = sha2::Sha256::digest(json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(m.plan_sha256, sha);
        assert_eq!(m, system::node_manifest(&plan, sha, &ids()).unwrap());
        assert_eq!(m.format, system::MANIFEST_FORMAT);
        assert_eq!(m.site, "golden");
        assert_eq!(m.installed_at.to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(m.node.name, node);
        assert_eq!(m.node.role, plan.node.role);
        assert_eq!(m.cluster.name, "acme-lab");
        assert_eq!(m.cluster.primary_address.to_string(), "10.0.0.10");
        let pools: Vec<(&str, &str)> = m
            .pools
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pools,
            [("rpool", "rpool"), ("tank1", "tanka1"), ("tank2", "tankb1")]
        );
    }
}

fn refused(
    plan: &tappaas_installer::plan::Plan,
    site: &tappaas_site::Site,
    ids: &GeneratedIds,
) -> String {
    match system::render(plan, site, "", ids) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("rendered a plan it should refuse"),
    }
}

#[test]
fn bad_ids_and_values_are_refused_before_anything_is_written() {
    let (plan, site) = plan_site("qemu-lab", &golden_site("qemu-lab"), "tappaas1");
    let e = refused(&plan, &site, &GeneratedIds { hostid: 0, ..ids() });
    assert!(e.contains("/etc/hostid"), "{e}");
    let e = refused(
        &plan,
        &site,
        &GeneratedIds {
            machine_id: [0; 16],
            ..ids()
        },
    );
    assert!(e.contains("/etc/machine-id"), "{e}");

    // A value that would end a line and start another one (a plan read back from JSON).
    let mut p = plan.clone();
    p.system.bridges[0].port = "enp0s4\nauto evil".into();
    assert!(refused(&p, &site, &ids()).contains("not a single word"));
    let mut p = plan.clone();
    p.system.bridges[1].port_mac = "not-a-mac".into();
    assert!(refused(&p, &site, &ids()).contains("not a MAC address"));
    let mut p = plan.clone();
    p.system.bridges[1].port = p.system.bridges[0].port.clone();
    assert!(refused(&p, &site, &ids()).contains("used twice"));
    let mut p = plan.clone();
    p.system.timezone = "../../etc/passwd".into();
    assert!(refused(&p, &site, &ids()).contains("not a time zone"));

    // A data pool whose name is one of Proxmox's own storages, or not a storage id.
    let mut p = plan.clone();
    p.pools[1].name = "local".into();
    assert!(refused(&p, &site, &ids()).contains("already has"));
    let mut p = plan.clone();
    p.pools[1].name = "Tank_1".into();
    assert!(refused(&p, &site, &ids()).contains("storage id"));

    // A plan without the root dataset Proxmox boots from.
    let mut p = plan.clone();
    p.pools[0].datasets.retain(|d| !d.ends_with("ROOT/pve-1"));
    assert!(refused(&p, &site, &ids()).contains("rpool/ROOT/pve-1"));

    // The plan and the site file must be about the same site.
    let mut p = plan.clone();
    p.site = "elsewhere".into();
    assert!(refused(&p, &site, &ids()).contains("site"));

    let err = system::render(&p, &site, "", &ids()).unwrap_err();
    assert!(matches!(err, RenderError::Invalid { .. }));
}

fn find<'a>(files: &'a [RenderedFile], path: &str) -> &'a RenderedFile {
    files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} not rendered"))
}

fn bytes<'a>(files: &'a [RenderedFile], path: &str) -> &'a [u8] {
    find(files, path).bytes_content().expect("a regular file")
}

fn text<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
    std::str::from_utf8(bytes(files, path)).expect("utf-8")
}
