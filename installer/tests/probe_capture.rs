//! `capture` copies exactly what the probe reads, and a probe of the copy gives the same
//! inventory: for the handmade fixture, for every embedded fixture, and for this machine.
// Helpers outside #[test] functions fail loudly too: this is test code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod probe_common;

use std::fs;
use std::path::Path;
use tappaas_installer::probe::{
    capture, embedded_fixture, embedded_fixture_ids, probe, probe_root, MemRoot,
};

fn round_trip(mem: &MemRoot) {
    let src = tempfile::tempdir().expect("tempdir");
    mem.write_to_dir(src.path()).expect("writing the fixture");
    let dest = tempfile::tempdir().expect("tempdir");
    let report = capture(src.path(), dest.path()).expect("capturing");
    let expected = probe(mem).expect("probing the fixture");
    assert_eq!(report.inventory, expected);
    assert_eq!(
        probe_root(dest.path()).expect("probing the capture"),
        expected
    );
    assert!(report.files > 0 && report.links > 0 && report.bytes > 0);
}

#[test]
fn capture_of_the_handmade_fixture_replays() {
    let mem = probe_common::mini_machine();
    round_trip(&mem);

    // Exactly the subset: links kept as links with their text, untouched parts left out.
    let src = tempfile::tempdir().expect("tempdir");
    let mut mem = mem;
    mem.insert_file("etc/unrelated", "not read by the probe");
    mem.write_to_dir(src.path()).expect("writing");
    let dest = tempfile::tempdir().expect("tempdir");
    let report = capture(src.path(), dest.path()).expect("capturing");
    let link = fs::read_link(dest.path().join("sys/block/sda")).expect("sys/block/sda is a link");
    assert_eq!(
        link.to_str(),
        Some("../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda")
    );
    assert_eq!(
        fs::read_link(dest.path().join("proc/self"))
            .expect("link")
            .to_str(),
        Some("4242")
    );
    assert!(!dest.path().join("etc").exists());
    assert!(
        report.files < mem.len(),
        "{} files of {} nodes",
        report.files,
        mem.len()
    );
}

#[test]
fn capture_refuses_a_non_empty_destination() {
    let src = tempfile::tempdir().expect("tempdir");
    probe_common::mini_machine()
        .write_to_dir(src.path())
        .expect("writing");
    let dest = tempfile::tempdir().expect("tempdir");
    fs::write(dest.path().join("x"), "x").expect("write");
    let err = capture(src.path(), dest.path()).expect_err("must refuse");
    assert!(format!("{err:#}").contains("not empty"));
}

#[test]
fn embedded_fixtures_probe_and_replay() {
    assert!(embedded_fixture("no-such-fixture").is_none());
    let ids = embedded_fixture_ids();
    println!("embedded fixtures: {ids:?}");
    for id in ids {
        let mem = embedded_fixture(id).unwrap_or_else(|| panic!("fixture {id} does not decode"));
        let inv = probe(&mem).unwrap_or_else(|e| panic!("fixture {id}: {e:#}"));
        assert!(!inv.disks.is_empty(), "fixture {id} has no disks");
        round_trip(&mem);
    }
}

#[test]
fn capture_of_this_machine_replays() {
    let dest = tempfile::tempdir().expect("tempdir");
    let report = capture(Path::new("/"), dest.path()).expect("capturing /");
    let live = probe_root(Path::new("/")).expect("probing /");
    let replay = probe_root(dest.path()).expect("probing the capture");
    assert_eq!(replay, report.inventory);
    assert_eq!(replay, live);
    println!(
        "captured {} files, {} links, {} dirs, {} bytes",
        report.files, report.links, report.dirs, report.bytes
    );
    assert!(
        report.bytes < 16 * 1024 * 1024,
        "capture is not a subset: {} bytes",
        report.bytes
    );
}
