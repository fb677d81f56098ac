use super::parse::*;
use super::*;
use crate::plan::Vdev;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zfs");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn tank1_plan() -> PoolPlan {
    PoolPlan {
        name: "tank1".into(),
        role: DiskRoleKind::Tank1,
        vdevs: vec![Vdev {
            layout: Layout::Mirror,
            members: vec![
                "/dev/disk/by-id/virtio-tank1a-part1".into(),
                "/dev/disk/by-id/virtio-tank1b-part1".into(),
            ],
        }],
        properties: BTreeMap::from([
            ("ashift".into(), "12".into()),
            ("autotrim".into(), "on".into()),
            ("compatibility".into(), "openzfs-2.1-linux".into()),
        ]),
        fs_properties: BTreeMap::from([
            ("compression".into(), "lz4".into()),
            ("atime".into(), "off".into()),
            ("xattr".into(), "sa".into()),
        ]),
        datasets: vec![],
        usable_bytes: 0,
    }
}

#[test]
fn create_args_name_every_property_and_member() {
    let a = create_args(&tank1_plan(), Path::new("/target"));
    assert_eq!(
        a.join(" "),
        "create -o ashift=12 -o autotrim=on -o compatibility=openzfs-2.1-linux -o cachefile=none \
         -O atime=off -O compression=lz4 -O xattr=sa -R /target tank1 mirror \
         /dev/disk/by-id/virtio-tank1a-part1 /dev/disk/by-id/virtio-tank1b-part1"
    );
}

#[test]
fn rpool_datasets_get_proxmox_mountpoints() {
    let mut p = tank1_plan();
    p.name = "rpool".into();
    p.role = DiskRoleKind::Boot;
    p.datasets = ["ROOT", "ROOT/pve-1", "data", "var-lib-vz"]
        .iter()
        .map(|d| format!("rpool/{d}"))
        .collect();
    let calls: Vec<String> = dataset_args(&p).iter().map(|a| a.join(" ")).collect();
    assert_eq!(
        calls,
        vec![
            "create -o mountpoint=none rpool/ROOT",
            "create -o mountpoint=/ rpool/ROOT/pve-1",
            "create rpool/data",
            "create -o mountpoint=/var/lib/vz rpool/var-lib-vz",
        ]
    );
    assert!(create_args(&p, Path::new("/t")).contains(&"sync=disabled".to_string()));
    let fin: Vec<String> = finish_args(&p).iter().map(|a| a.join(" ")).collect();
    assert_eq!(
        fin,
        vec![
            "zfs set sync=standard rpool",
            "zpool set bootfs=rpool/ROOT/pve-1 rpool"
        ]
    );
}

#[test]
fn parses_status_with_mirror_and_single_pools() {
    let pools = parse_status(&fixture("status-P.txt")).expect("parse");
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["tank1", "tank2"]);
    let t1 = &pools[0];
    assert_eq!(t1.state, "ONLINE");
    assert_eq!(t1.vdevs.len(), 1);
    assert_eq!(t1.vdevs[0].kind, "mirror");
    assert_eq!(
        t1.vdevs[0].members,
        vec![
            "/dev/disk/by-id/virtio-tank1a-part1",
            "/dev/disk/by-id/virtio-tank1b-part1"
        ]
    );
    assert_eq!(t1.errors.as_deref(), Some("No known data errors"));
    let t2 = &pools[1];
    assert_eq!(t2.vdevs[0].kind, "disk");
    assert_eq!(
        t2.vdevs[0].members,
        vec!["/dev/disk/by-id/virtio-tank2a-part1"]
    );
}

#[test]
fn parses_import_listing_with_ids() {
    let pools = parse_status(&fixture("import.txt")).expect("parse");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].name, "tank1");
    assert!(pools[0]
        .id
        .as_deref()
        .is_some_and(|i| i.chars().all(|c| c.is_ascii_digit())));
    assert_eq!(pools[0].vdevs[0].members.len(), 2);
}

#[test]
fn a_degraded_pool_with_logs_and_cache_keeps_only_data_vdevs() {
    let text = "  pool: big\n state: DEGRADED\nstatus: One or more devices could not be used.\n\
        \tSufficient replicas exist.\naction: Attach the missing device.\n config:\n\n\
        \tNAME        STATE     READ WRITE CKSUM\n\
        \tbig         DEGRADED     0     0     0\n\
        \t  raidz1-0  DEGRADED     0     0     0\n\
        \t    /dev/a  ONLINE       0     0     0\n\
        \t    /dev/b  UNAVAIL      0     0     0  cannot open\n\
        \t    /dev/c  ONLINE       0     0     0\n\
        \t  mirror-1  ONLINE       0     0     0\n\
        \t    /dev/d  ONLINE       0     0     0\n\
        \t    /dev/e  ONLINE       0     0     0\n\
        \tlogs\n\
        \t  /dev/f    ONLINE       0     0     0\n\
        \tcache\n\
        \t  /dev/g    ONLINE       0     0     0\n\n\
        errors: No known data errors\n";
    let p = &parse_status(text).expect("parse")[0];
    assert_eq!(p.state, "DEGRADED");
    let shape: Vec<(&str, usize)> = p
        .vdevs
        .iter()
        .map(|v| (v.kind.as_str(), v.members.len()))
        .collect();
    assert_eq!(shape, vec![("raidz1", 3), ("mirror", 2)]);
    assert_eq!(p.vdevs[0].state, "DEGRADED");
}

#[test]
fn garbage_in_the_tree_is_an_error_with_its_line() {
    let text = "  pool: x\n state: ONLINE\n config:\n\n\tNAME STATE\n\ty ONLINE\n";
    let e = parse_status(text).expect_err("pool row must be the pool");
    assert_eq!(e.line, 6);
}

#[test]
fn tsv_listings() {
    let l =
        parse_pool_list("rpool\t33285996544\tONLINE\ntank1\t17045651456\tONLINE\n").expect("list");
    assert_eq!(l[1].size, 17_045_651_456);
    let e = parse_pool_list("rpool\tlots\tONLINE\n").expect_err("size");
    assert_eq!(e.line, 1);
    let g = parse_get(&fixture("get.txt")).expect("get");
    assert_eq!(g[&("tank1".to_string(), "ashift".to_string())], "12");
    assert!(parse_tsv("x", "a\tb\n", 3).is_err());
}

#[test]
fn decide_creates_imports_or_stops() {
    let p = tank1_plan();
    assert_eq!(decide(&p, &[], &[]), PoolAction::Create);
    let importable = parse_status(&fixture("import.txt")).expect("parse");
    assert!(matches!(
        decide(&p, &[], &importable),
        PoolAction::Import { .. }
    ));
    let imported = parse_status(&fixture("status-P.txt")).expect("parse");
    assert_eq!(decide(&p, &imported, &[]), PoolAction::AlreadyImported);
    // Same name, other disks: stop, and say what is there.
    let mut other = p.clone();
    other.vdevs[0].members[1] = "/dev/disk/by-id/virtio-other-part1".into();
    match decide(&other, &imported, &[]) {
        PoolAction::Conflict(m) => assert!(m.contains("already imported"), "{m}"),
        a => panic!("expected a conflict, got {a:?}"),
    }
    // Another pool on our partitions: stop.
    let mut renamed = importable.clone();
    renamed[0].name = "oldpool".into();
    match decide(&p, &[], &renamed) {
        PoolAction::Conflict(m) => assert!(m.contains("still carry pool oldpool"), "{m}"),
        a => panic!("expected a conflict, got {a:?}"),
    }
}

#[test]
fn verify_reports_every_difference() {
    let p = tank1_plan();
    let status = parse_status(&fixture("status-P.txt")).expect("parse");
    let props = parse_get(&fixture("get.txt")).expect("get");
    assert_eq!(verify(&p, &status[0], &props, &[]), Vec::<String>::new());
    let mut skipped_mirror = p.clone();
    skipped_mirror.vdevs[0].layout = Layout::Single;
    skipped_mirror.vdevs[0].members.truncate(1);
    let d = verify(&skipped_mirror, &status[0], &props, &[]);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].contains("has vdevs mirror("), "{}", d[0]);
    let mut wrong = p.clone();
    wrong
        .properties
        .insert("compatibility".into(), "openzfs-2.2-linux".into());
    wrong.datasets.push("tank1/missing".into());
    let d = verify(&wrong, &status[0], &props, &["tank1".into()]);
    assert_eq!(
        d,
        vec![
            "pool tank1 has compatibility=openzfs-2.1-linux, the plan wants openzfs-2.2-linux",
            "dataset tank1/missing is missing"
        ]
    );
}
