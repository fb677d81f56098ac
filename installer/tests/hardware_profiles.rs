//! Hardware profiles: every file parses, ids match file names, each profile's DMI rules match
//! its own fixture and no other, port and disk hints resolve on the fixture, minimums are
//! sane, and the documentation names every profile.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use tappaas_installer::inventory::{Dmi, Transport};
use tappaas_installer::profile::{self, glob_match, PortRole, SlotRole};
use tappaas_installer::synth::{Bus, Holds, MachineSpec};
use tappaas_site::NicSelector;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(id: &str) -> PathBuf {
    repo().join("hardware-profiles/fixtures").join(id)
}

fn spec(id: &str) -> MachineSpec {
    let path = repo().join(format!("hardware-profiles/fixtures/{id}.machine.toml"));
    MachineSpec::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The fixture's DMI, read straight from its files (missing file = empty string).
fn fixture_dmi(id: &str) -> Dmi {
    let f = |name: &str| {
        fs::read_to_string(fixture(id).join("sys/class/dmi/id").join(name))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    Dmi {
        sys_vendor: f("sys_vendor"),
        product_name: f("product_name"),
        product_version: f("product_version"),
        product_serial: f("product_serial"),
        board_vendor: f("board_vendor"),
        board_name: f("board_name"),
        bios_version: f("bios_version"),
    }
}

#[test]
fn every_profile_file_is_embedded_and_valid() {
    assert!(
        profile::load_errors().is_empty(),
        "{:?}",
        profile::load_errors()
    );
    let mut files: Vec<String> = fs::read_dir(repo().join("hardware-profiles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let embedded: Vec<&str> = profile::EMBEDDED.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        files, embedded,
        "hardware-profiles/*.toml and profile::EMBEDDED differ"
    );
    for (file, text) in profile::EMBEDDED {
        let on_disk = fs::read_to_string(repo().join("hardware-profiles").join(file)).unwrap();
        assert_eq!(&on_disk, text, "{file}");
        profile::parse(file, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let ids = profile::ids();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(ids, dedup, "ids are unique and sorted");
    for id in [
        "qotom-q20300g9",
        "minisforum-ms-01",
        "intel-nuc13-pro",
        "lenovo-m720q",
        "protectli-vp2420",
        "minisforum-ms-s1-max",
        "qemu-lab",
    ] {
        assert!(profile::find(id).is_some(), "{id} missing");
        assert!(fixture(id).is_dir(), "{id} has no fixture");
    }
}

#[test]
fn unknown_fields_and_bad_ids_are_refused() {
    let (file, text) = profile::EMBEDDED[0];
    let extra = format!("{text}\nfrobnicate = true\n");
    assert!(profile::parse(file, &extra).is_err());
    assert!(profile::parse("other-name.toml", text).is_err());
}

#[test]
fn dmi_rules_match_own_fixture_only() {
    for p in profile::profiles() {
        let dmi = fixture_dmi(&p.id);
        let hit = profile::match_dmi(&dmi).map(|m| m.id.as_str());
        assert_eq!(hit, Some(p.id.as_str()), "fixture {} matched {hit:?}", p.id);
        for other in profile::profiles().iter().filter(|o| o.id != p.id) {
            assert!(
                !other.rules.iter().any(|r| r.matches(&dmi)),
                "profile {} also matches fixture {}",
                other.id,
                p.id
            );
        }
    }
    assert!(profile::match_dmi(&Dmi::default()).is_none());
}

#[test]
fn most_specific_rule_wins() {
    let dmi = Dmi {
        sys_vendor: "LENOVO".into(),
        product_name: "10RS0001US".into(),
        product_version: "ThinkCentre M920q".into(),
        ..Dmi::default()
    };
    assert_eq!(
        profile::match_dmi(&dmi).map(|p| p.id.as_str()),
        Some("lenovo-m720q")
    );
    let asus = Dmi {
        sys_vendor: "ASUSTeK COMPUTER INC.".into(),
        product_name: "NUC13ANHi7".into(),
        ..Dmi::default()
    };
    assert_eq!(
        profile::match_dmi(&asus).map(|p| p.id.as_str()),
        Some("intel-nuc13-pro")
    );
    // Two profiles, one generic and one specific rule: the specific one wins whatever the order.
    let mut generic = profile::find("qemu-lab").unwrap().clone();
    generic.id = "generic".into();
    generic.rules.truncate(1);
    generic.rules[0].product_name = None;
    let specific = profile::find("qemu-lab").unwrap().clone();
    let lab = fixture_dmi("qemu-lab");
    for list in [
        vec![generic.clone(), specific.clone()],
        vec![specific, generic],
    ] {
        assert_eq!(profile::match_dmi_in(&list, &lab).unwrap().id, "qemu-lab");
    }
}

fn transport(bus: Bus) -> Transport {
    match bus {
        Bus::Nvme => Transport::Nvme,
        Bus::Sata => Transport::Sata,
        Bus::Usb => Transport::Usb,
        Bus::Virtio => Transport::Virtio,
        Bus::Mmc => Transport::Mmc,
    }
}

#[test]
fn port_and_disk_hints_resolve_on_the_fixture() {
    for p in profile::profiles() {
        let s = spec(&p.id);
        for port in p.nics.iter().filter(|n| !n.optional) {
            let hits = s
                .nics
                .iter()
                .filter(|n| match port.selector().unwrap() {
                    NicSelector::Pci(pci) => n.pci == pci,
                    NicSelector::Name(name) => n.name == name,
                    _ => false,
                })
                .count();
            assert_eq!(hits, 1, "{}: port {} finds {hits} NICs", p.id, port.label);
            let nic = s
                .nics
                .iter()
                .find(|n| port.names.contains(&n.name))
                .unwrap_or_else(|| panic!("{}: no NIC named like port {}", p.id, port.label));
            assert_eq!(nic.driver, port.driver, "{}: port {}", p.id, port.label);
        }
        for role in [PortRole::Wan, PortRole::Lan] {
            if let Some(label) = p.default_port(role) {
                assert!(p.port(label).is_some());
            }
        }
        for (role, filter) in p.disk_hints() {
            let hits: Vec<&str> = s
                .disks
                .iter()
                .filter(|d| d.holds != Holds::LiveIso)
                .filter(|d| Some(transport(d.bus).as_str()) == filter.transport.as_deref())
                .filter(|d| {
                    filter
                        .serial
                        .as_deref()
                        .is_none_or(|g| glob_match(g, &d.serial))
                })
                .map(|d| d.name.as_str())
                .collect();
            assert_eq!(
                hits.len() as u32,
                filter.count,
                "{}: {} hint {filter:?}",
                p.id,
                role.as_str()
            );
            // The hint picks exactly the disks the fixture's author meant for the role.
            let meant: Vec<&str> = s.disks_for(role).iter().map(|d| d.name.as_str()).collect();
            assert_eq!(
                hits,
                meant,
                "{}: {} hint vs the spec's roles",
                p.id,
                role.as_str()
            );
        }
        // Every role port of the profile (optional ones included) finds the NIC meant for it.
        for role in [PortRole::Wan, PortRole::Lan] {
            let (Some(port), Some(nic)) = (p.port_for(role), s.nic_for(role)) else {
                panic!("{}: profile or spec lacks a {role:?} port", p.id);
            };
            assert!(
                port.names.contains(&nic.name),
                "{}: {role:?} is {}",
                p.id,
                nic.name
            );
            if let Some(pci) = &port.pci {
                assert_eq!(&nic.pci, pci, "{}: {role:?} PCI", p.id);
            }
        }
        assert_eq!(
            s.disks_for(SlotRole::Boot).len(),
            1,
            "{}: one boot disk",
            p.id
        );
    }
    // Where the slots tell roles apart, the hints exist.
    let lab = profile::find("qemu-lab").unwrap().disk_hints();
    assert_eq!(lab.len(), 3, "{lab:?}");
    let lenovo = profile::find("lenovo-m720q").unwrap().disk_hints();
    assert_eq!(lenovo.len(), 2, "{lenovo:?}");
    assert!(profile::find("minisforum-ms-01")
        .unwrap()
        .disk_hints()
        .is_empty());
}

#[test]
fn minimums_are_sane_and_met_by_the_fixture() {
    for p in profile::profiles() {
        assert!(p.problems().is_empty(), "{}: {:?}", p.id, p.problems());
        let m = &p.minimums;
        let s = spec(&p.id);
        // The planner accepts MemTotal down to 95% of the nominal minimum.
        assert!(
            s.memory.total_kb * 1024 >= m.ram_bytes - m.ram_bytes / 20,
            "{}: fixture RAM below the minimum",
            p.id
        );
        let disks: Vec<_> = s
            .disks
            .iter()
            .filter(|d| d.holds != Holds::LiveIso && !d.read_only && d.size_bytes >= 1 << 30)
            .collect();
        assert!(
            disks.len() as u32 >= m.disks,
            "{}: fixture has too few disks",
            p.id
        );
        assert!(
            disks.iter().any(|d| d.size_bytes >= m.boot_disk_bytes),
            "{}: no disk big enough to boot",
            p.id
        );
        let cpuinfo = fs::read_to_string(fixture(&p.id).join("proc/cpuinfo")).unwrap();
        let virt = cpuinfo.contains(" vmx ") || cpuinfo.contains(" svm ");
        assert!(!m.virtualization || virt, "{}: CPU lacks VT-x/AMD-V", p.id);
    }
}

#[test]
fn docs_name_every_profile_and_carry_the_generated_table() {
    let path = repo().join("docs/hardware-profiles.md");
    let doc = fs::read_to_string(&path).unwrap();
    let begin = "<!-- BEGIN GENERATED: profile::markdown_table() -->\n";
    let end = "<!-- END GENERATED -->";
    let (head, rest) = doc.split_once(begin).expect("BEGIN GENERATED marker");
    let (current, tail) = rest.split_once(end).expect("END GENERATED marker");
    let table = profile::markdown_table();
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        fs::write(&path, format!("{head}{begin}{table}{end}{tail}")).unwrap();
    } else {
        assert_eq!(
            current, table,
            "docs/hardware-profiles.md is stale: rerun with UPDATE_DOCS=1"
        );
    }
    for id in profile::ids() {
        let mentions = doc.matches(&format!("`{id}`")).count();
        // Once in the generated table, once in the handwritten fixture table.
        assert!(
            mentions >= 2,
            "docs/hardware-profiles.md names `{id}` {mentions} times"
        );
    }
}
