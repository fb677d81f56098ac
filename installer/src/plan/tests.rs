//! Planner unit tests on hand-built machines and sites: each rule of the planner, one test.

use super::*;
use crate::inventory::{Content, Cpu, Disk, Firmware, Memory, Nic, Partition, Transport};
use tappaas_site::*;

const GB: u64 = 1_000_000_000;

fn disk(name: &str, serial: &str, size: u64, transport: Transport) -> Disk {
    let prefix = match transport {
        Transport::Nvme => "nvme-Model",
        Transport::Usb => "usb-Stick",
        Transport::Virtio => "virtio",
        _ => "ata-Model",
    };
    Disk {
        name: name.into(),
        devno: "8:0".into(),
        by_id: vec![format!("{prefix}_{serial}")],
        serial: Some(serial.into()),
        model: Some(format!("Model {serial}")),
        size_bytes: size,
        logical_sector_size: 512,
        physical_sector_size: 4096,
        transport,
        ..Disk::default()
    }
}

fn nic(name: &str, mac: &str) -> Nic {
    Nic {
        name: name.into(),
        mac: mac.into(),
        permanent_mac: Some(mac.into()),
        physical: true,
        pci: Some(format!("0000:0{}:00.0", &name[name.len() - 1..])),
        ..Nic::default()
    }
}

fn machine() -> Inventory {
    let mut stick = disk("sda", "STICK1", 32 * GB, Transport::Usb);
    stick.boot_medium = true;
    stick.boot_medium_reason = Some("mounted at /iso".into());
    Inventory {
        schema: 1,
        cpu: Cpu {
            model: "Test CPU".into(),
            virtualization: Some("vmx".into()),
            cores: 4,
            threads: 4,
            ..Cpu::default()
        },
        memory: Memory {
            total_bytes: 16 * (1 << 30),
        },
        firmware: Firmware {
            mode: FirmwareMode::Uefi,
            secure_boot: Some(false),
        },
        disks: vec![
            disk("nvme0n1", "BOOT1", 256 * GB, Transport::Nvme),
            stick,
            disk("sdb", "DATA1", 1000 * GB, Transport::Sata),
            disk("sdc", "DATA2", 1000 * GB, Transport::Sata),
            disk("sdd", "BULK1", 4000 * GB, Transport::Sata),
        ],
        nics: vec![
            nic("enp1s0", "58:47:ca:00:00:01"),
            nic("enp2s0", "58:47:ca:00:00:02"),
        ],
        ..Inventory::default()
    }
}

fn role(disks: Vec<DiskSelector>, layout: Layout) -> DiskRole {
    DiskRole {
        layout,
        disks,
        wipe: false,
        pos: Pos { line: 20, col: 1 },
    }
}

fn serial(s: &str) -> DiskSelector {
    DiskSelector::Serial(s.into())
}

fn settings(name: &str) -> PoolSettings {
    PoolSettings {
        name: name.into(),
        ashift: 12,
        compression: "lz4".into(),
        atime: false,
        xattr: "sa".into(),
        autotrim: true,
        compatibility: "openzfs-2.1-linux".into(),
    }
}

fn site() -> Site {
    let node = Node {
        name: "tappaas1".into(),
        id: 1,
        role: Role::Primary,
        profile: None,
        identify: Identify::Mac(Mac::parse("58:47:ca:00:00:01").unwrap_or(Mac([0; 6]))),
        address: "10.0.0.10"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        nics: NicRoles {
            wan: Some(NicSelector::Name("enp1s0".into())),
            lan: Some(NicSelector::Name("enp2s0".into())),
        },
        boot: role(vec![serial("BOOT1")], Layout::Single),
        tank1: Some(role(vec![serial("DATA1"), serial("DATA2")], Layout::Mirror)),
        tank2: Some(role(vec![serial("BULK1")], Layout::Single)),
        replace: false,
        api_fingerprint: None,
        pos: Pos { line: 10, col: 1 },
    };
    Site {
        version: 1,
        site: SiteInfo {
            name: "test".into(),
            domain: "example.org".into(),
            internal_domain: "mgmt.internal".into(),
            admin_email: "admin@example.org".into(),
            timezone: "UTC".into(),
            keyboard: "us".into(),
            country: "us".into(),
        },
        credentials: Credentials {
            root_password_hash: "$6$x$y".into(),
            ssh_keys: vec![],
        },
        network: Network {
            management: Ipv4Net {
                addr: "10.0.0.0"
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                prefix: 24,
            },
            firewall: "10.0.0.1"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            dns: vec!["10.0.0.1"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)],
            lan_bridge: "lan".into(),
            wan_bridge: "wan".into(),
            upstream: Upstream::Dhcp,
        },
        cluster: Cluster::default(),
        storage: Storage {
            rpool: settings("rpool"),
            tank1: settings("tank1"),
            tank2: settings("tank2"),
        },
        nodes: vec![node],
    }
}

fn run(inv: &Inventory, site: &Site) -> Result<Plan, PlanError> {
    let choice = select_node(inv, site, None, None)?;
    plan(inv, site, &choice, &Hints::default())
}

fn problems(r: Result<Plan, PlanError>) -> Vec<Problem> {
    match r {
        Ok(p) => panic!("expected the plan to fail, got {}", render_human(&p)),
        Err(e) => e.problems,
    }
}

#[test]
fn plans_boot_mirror_and_bulk_with_proxmox_layout() {
    let p = run(&machine(), &site()).expect("plan");
    assert_eq!(p.node.identified_by, "MAC 58:47:ca:00:00:01 on enp1s0");
    let boot = &p.disks[0];
    assert_eq!(boot.disk.serial, "BOOT1");
    let parts: Vec<(u32, PartKind, u64, &str)> = boot
        .partitions
        .iter()
        .map(|x| (x.number, x.kind, x.start_lba, x.label.as_str()))
        .collect();
    assert_eq!(
        parts,
        vec![
            (1, PartKind::BiosBoot, 34, "tappaas-bios-0"),
            (2, PartKind::Esp, 2048, "tappaas-esp-0"),
            (3, PartKind::Zfs, 2048 + 2 * 1024 * 1024, "tappaas-rpool-0"),
        ]
    );
    // 256 GB > 100 GiB: a 1 GiB ESP, as Proxmox does.
    assert_eq!(boot.partitions[1].size_bytes, 1 << 30);
    let tank1 = p.pools.iter().find(|x| x.name == "tank1").expect("tank1");
    assert_eq!(tank1.vdevs.len(), 1);
    assert_eq!(tank1.vdevs[0].layout, Layout::Mirror);
    assert_eq!(
        tank1.vdevs[0].members,
        vec![
            "/dev/disk/by-id/ata-Model_DATA1-part1",
            "/dev/disk/by-id/ata-Model_DATA2-part1"
        ]
    );
    assert_eq!(tank1.properties["compatibility"], "openzfs-2.1-linux");
    let rpool = p.pools.iter().find(|x| x.name == "rpool").expect("rpool");
    assert_eq!(rpool.datasets[1], "rpool/ROOT/pve-1");
    // The boot medium is listed as untouched, with its reason.
    let stick = p
        .untouched
        .iter()
        .find(|u| u.disk.starts_with("sda"))
        .expect("sda");
    assert!(stick.reason.contains("boot medium"), "{}", stick.reason);
    assert_eq!(p.system.bridges[0].name, "lan");
    assert_eq!(p.system.bridges[0].port, "enp2s0");
    assert_eq!(p.system.cluster.action, "create cluster TAPPaaS");
    // Writes are ordered before the boot loader, which comes last but one.
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.last(), Some(&"finish"));
    assert_eq!(ids[ids.len() - 2], "bootloader");
}

#[test]
fn plan_is_deterministic() {
    let a = serde_json::to_string(&run(&machine(), &site()).expect("a")).expect("json");
    let b = serde_json::to_string(&run(&machine(), &site()).expect("b")).expect("json");
    assert_eq!(a, b);
}

#[test]
fn the_boot_medium_is_refused_even_by_serial() {
    let mut s = site();
    s.nodes[0].tank2 = Some(role(vec![serial("STICK1")], Layout::Single));
    let p = problems(run(&machine(), &s));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "node[0].tank2.disks[0]");
    assert!(p[0].message.contains("boot medium"), "{}", p[0].message);
    assert!(p[0].message.contains("can never be installed to"));
}

#[test]
fn a_missing_disk_is_named_and_present_disks_listed() {
    let mut s = site();
    s.nodes[0].tank2 = Some(role(vec![serial("NOPE")], Layout::Single));
    let p = problems(run(&machine(), &s));
    assert_eq!(p[0].message, "no disk on this machine has serial \"NOPE\"");
    let hint = p[0].hint.as_deref().unwrap_or("");
    assert!(
        hint.contains("sdd Model BULK1 (serial BULK1, 4.0 TB)"),
        "{hint}"
    );
    assert!(!hint.contains("STICK1"), "boot medium offered: {hint}");
}

#[test]
fn data_needs_consent_and_the_error_says_what_it_holds() {
    let mut inv = machine();
    inv.disks[2].content = Content {
        partition_table: Some("gpt".into()),
        ..Content::default()
    };
    inv.disks[2].partitions = vec![Partition {
        name: "sdb1".into(),
        number: 1,
        content: Content {
            fs_type: Some("zfs_member".into()),
            fs_label: Some("oldtank".into()),
            ..Content::default()
        },
        ..Partition::default()
    }];
    let p = problems(run(&inv, &site()));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "node[0].tank1.wipe");
    assert_eq!(p[0].pos, Some(Pos { line: 20, col: 1 }));
    assert!(
        p[0].message.contains(
            "holds a GPT partition table with 1 partition, ZFS pool \"oldtank\" on partition 1"
        ),
        "{}",
        p[0].message
    );
    let mut s = site();
    if let Some(t) = s.nodes[0].tank1.as_mut() {
        t.wipe = true;
    }
    let plan = run(&inv, &s).expect("with consent");
    let erased = plan
        .disks
        .iter()
        .find(|d| d.disk.serial == "DATA1")
        .expect("DATA1");
    assert!(erased.erases.as_deref().unwrap_or("").contains("oldtank"));
}

/// Gives inventory disk `i` the partitions that `plan` writes on it, named as `write_gpt` names
/// them with `marker`, as a probe would see them after a power cut mid-install.
fn as_left_by_a_cut(inv: &mut Inventory, i: usize, plan: &Plan, marker: &str) {
    let serial = inv.disks[i].serial.clone().unwrap_or_default();
    let dp = plan
        .disks
        .iter()
        .find(|d| d.disk.serial == serial)
        .expect("planned");
    inv.disks[i].content = Content {
        partition_table: Some("gpt".into()),
        ..Content::default()
    };
    inv.disks[i].partitions = dp
        .partitions
        .iter()
        .map(|p| Partition {
            name: format!("{}{}", inv.disks[i].name, p.number),
            number: p.number,
            part_label: Some(super::marked_label(&p.label, marker)),
            content: Content {
                fs_type: (p.kind == super::PartKind::Zfs).then(|| "zfs_member".into()),
                fs_label: (p.kind == super::PartKind::Zfs).then(|| "tank1".into()),
                ..Content::default()
            },
            ..Partition::default()
        })
        .collect();
}

#[test]
fn an_install_cut_off_by_a_power_cut_is_recognised_by_its_marker_without_consent() {
    let clean = run(&machine(), &site()).expect("clean plan");
    assert_eq!(clean.install_marker.len(), 8);
    let mut inv = machine();
    as_left_by_a_cut(&mut inv, 2, &clean, &clean.install_marker);
    let again = run(&inv, &site()).expect("the rerun plans without wipe = true");
    assert_eq!(again.install_marker, clean.install_marker);
    let d = again
        .disks
        .iter()
        .find(|d| d.disk.serial == "DATA1")
        .expect("DATA1");
    let erases = d.erases.as_deref().unwrap_or("");
    assert!(erases.contains("unfinished TAPPaaS install"), "{erases}");
    assert!(erases.contains(&clean.install_marker), "{erases}");
    // Apart from what the disk holds, the rerun is the clean install.
    let mut same = again.clone();
    for (a, c) in same.disks.iter_mut().zip(&clean.disks) {
        a.erases = c.erases.clone();
    }
    same.steps = clean.steps.clone();
    assert_eq!(same, clean);
}

#[test]
fn a_marker_of_another_install_or_a_finished_node_still_needs_consent() {
    let clean = run(&machine(), &site()).expect("clean plan");
    // Another node's or other disks' marker.
    let mut inv = machine();
    as_left_by_a_cut(&mut inv, 2, &clean, "0badc0de");
    let p = problems(run(&inv, &site()));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "node[0].tank1.wipe");
    // A finished node's disk: final names, no marker.
    let mut inv = machine();
    as_left_by_a_cut(&mut inv, 2, &clean, &clean.install_marker);
    for part in &mut inv.disks[2].partitions {
        part.part_label = part
            .part_label
            .as_deref()
            .and_then(|l| l.split('~').next())
            .map(str::to_string);
    }
    assert_eq!(problems(run(&inv, &site()))[0].path, "node[0].tank1.wipe");
    // The marker, but also a filesystem this install never makes.
    let mut inv = machine();
    as_left_by_a_cut(&mut inv, 2, &clean, &clean.install_marker);
    inv.disks[2].partitions[0].content.fs_type = Some("ext4".into());
    assert_eq!(problems(run(&inv, &site()))[0].path, "node[0].tank1.wipe");
    // The marker, and one more partition that is not ours.
    let mut inv = machine();
    as_left_by_a_cut(&mut inv, 2, &clean, &clean.install_marker);
    inv.disks[2].partitions.push(Partition {
        name: "sdb9".into(),
        number: 9,
        part_label: Some("photos".into()),
        ..Partition::default()
    });
    assert_eq!(problems(run(&inv, &site()))[0].path, "node[0].tank1.wipe");
}

#[test]
fn the_marker_depends_on_site_node_and_disks() {
    let base = run(&machine(), &site()).expect("plan").install_marker;
    let mut s = site();
    s.site.name = "other".into();
    assert_ne!(run(&machine(), &s).expect("plan").install_marker, base);
    let mut inv = machine();
    inv.disks[2].by_id = vec!["ata-OTHER_DISK".into()];
    inv.disks[2].serial = Some("DATA1".into());
    assert_ne!(run(&inv, &site()).expect("plan").install_marker, base);
}

#[test]
fn mirror_members_more_than_ten_percent_apart_are_refused() {
    let mut inv = machine();
    inv.disks[3].size_bytes = 1200 * GB;
    let p = problems(run(&inv, &site()));
    assert_eq!(p[0].path, "node[0].tank1.disks");
    assert!(p[0].message.contains("more than 10%"), "{}", p[0].message);
    inv.disks[3].size_bytes = 1050 * GB;
    assert!(run(&inv, &site()).is_ok());
}

#[test]
fn a_mirror_with_one_disk_found_is_refused() {
    let mut s = site();
    s.nodes[0].tank1 = Some(role(vec![serial("DATA1")], Layout::Mirror));
    let p = problems(run(&machine(), &s));
    assert_eq!(p[0].path, "node[0].tank1.layout");
    assert!(p[0]
        .message
        .contains("mirror needs at least 2 disks, but 1 was found"));
}

#[test]
fn ambiguous_filters_are_errors_not_guesses() {
    let mut s = site();
    s.nodes[0].tank1 = Some(role(
        vec![DiskSelector::Filter(DiskFilter {
            transport: Some("sata".into()),
            count: 2,
            ..DiskFilter::default()
        })],
        Layout::Mirror,
    ));
    s.nodes[0].tank2 = None;
    let p = problems(run(&machine(), &s));
    assert!(
        p[0].message.contains("ambiguous: it matches 3 disks"),
        "{}",
        p[0].message
    );
    // Naming the bulk disk elsewhere leaves exactly two for the filter: identities go first.
    s.nodes[0].tank2 = Some(role(vec![serial("BULK1")], Layout::Single));
    let plan = run(&machine(), &s).expect("plan");
    let t1: Vec<&str> = plan
        .disks
        .iter()
        .filter(|d| d.role == DiskRoleKind::Tank1)
        .map(|d| d.disk.serial.as_str())
        .collect();
    assert_eq!(t1, vec!["DATA1", "DATA2"]);
}

#[test]
fn too_little_ram_is_refused_with_both_figures() {
    let mut inv = machine();
    inv.memory.total_bytes = 4 << 30;
    let p = problems(run(&inv, &site()));
    assert_eq!(
        p[0].message,
        "this machine has 4.0 GiB of RAM, below the minimum of 8.0 GiB"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut inv = machine();
    inv.memory.total_bytes = 4 << 30;
    inv.disks[3].size_bytes = 1500 * GB;
    let mut s = site();
    s.nodes[0].tank2 = Some(role(vec![serial("NOPE")], Layout::Single));
    s.nodes[0].nics.wan = Some(NicSelector::Name("eth9".into()));
    let p = problems(run(&inv, &s));
    let paths: Vec<&str> = p.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "node[0]",
            "node[0].tank2.disks[0]",
            "node[0].tank1.disks",
            "node[0].nics.wan"
        ]
    );
}

#[test]
fn no_matching_node_lists_this_machines_macs() {
    let mut s = site();
    s.nodes[0].identify = Identify::Mac(Mac([2, 0, 0, 0, 0, 9]));
    let e = select_node(&machine(), &s, None, None).expect_err("no node");
    let m = &e.problems[0].message;
    assert!(m.contains("58:47:ca:00:00:01 (enp1s0)"), "{m}");
    let by_flag = select_node(&machine(), &s, Some("tappaas1"), None).expect("--node");
    assert_eq!(by_flag.reason, "--node tappaas1");
    let typo = select_node(&machine(), &s, Some("tappas1"), None).expect_err("typo");
    assert_eq!(
        typo.problems[0].hint.as_deref(),
        Some("did you mean tappaas1?")
    );
}

#[test]
fn kernel_command_line_picks_the_node() {
    let mut inv = machine();
    inv.cmdline = "init=/nix/store/x quiet tappaas.node=tappaas1".into();
    let mut s = site();
    s.nodes[0].identify = Identify::Explicit;
    let c = select_node(&inv, &s, None, None).expect("cmdline");
    assert_eq!(c.reason, "kernel command line tappaas.node= tappaas1");
}

#[test]
fn primary_without_a_wan_port_is_refused() {
    let mut inv = machine();
    inv.nics.truncate(1);
    let mut s = site();
    s.nodes[0].nics = NicRoles::default();
    let p = problems(run(&inv, &s));
    assert_eq!(p[0].path, "node[0].nics.wan");
}

#[test]
fn four_kn_boot_disk_gets_no_bios_boot_partition() {
    let mut inv = machine();
    inv.disks[0].logical_sector_size = 4096;
    let p = run(&inv, &site()).expect("plan");
    let kinds: Vec<PartKind> = p.disks[0].partitions.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, vec![PartKind::Esp, PartKind::Zfs]);
    assert_eq!(p.disks[0].partitions[0].start_lba, 256);
    assert!(p.warnings.iter().any(|w| w.contains("4096-byte sectors")));
}

#[test]
fn a_boot_disk_below_the_minimum_is_too_small() {
    let mut inv = machine();
    inv.disks[0].size_bytes = 16 * GB;
    let p = problems(run(&inv, &site()));
    assert_eq!(p[0].path, "node[0].boot.disks");
    assert_eq!(
        p[0].message,
        "nvme0n1 Model BOOT1 (serial BOOT1, 16.0 GB) is too small for boot: it needs at least 34.4 GB"
    );
    let hints = Hints {
        min_boot_disk_bytes: Some(8 * GB),
        ..Hints::default()
    };
    let choice = select_node(&inv, &site(), None, None).expect("node");
    assert!(plan(&inv, &site(), &choice, &hints).is_ok());
}

#[test]
fn disks_in_use_as_swap_or_under_md_are_refused() {
    let mut inv = machine();
    inv.disks[2].partitions = vec![Partition {
        name: "sdb1".into(),
        number: 1,
        swap: true,
        holders: vec!["md127".into()],
        ..Partition::default()
    }];
    let mut s = site();
    if let Some(t) = s.nodes[0].tank1.as_mut() {
        t.wipe = true;
    }
    let p = problems(run(&inv, &s));
    let msgs: Vec<&str> = p.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(
        msgs,
        vec![
            "sdb Model DATA1 (serial DATA1, 1.0 TB): sdb1 is active swap",
            "sdb Model DATA1 (serial DATA1, 1.0 TB): sdb1 is held by md127 (device-mapper or md)",
        ]
    );
}
