//! Extraction must be indistinguishable from `unsquashfs -f -d` on the same image: types,
//! modes (setuid/setgid/sticky), owners, sizes, contents, symlink targets, device numbers,
//! mtimes, hard-link identity and xattrs. Images are made with the real mksquashfs.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod rootfs_common;

use std::path::{Path, PathBuf};

use rootfs_common::*;
use tappaas_installer::rootfs::{extract, ExtractOptions, Progress};

fn extract_both(img: &Path, work: &Path, opts: &ExtractOptions) -> (usize, Vec<Progress>) {
    let (ours, theirs) = (work.join("ours"), work.join("theirs"));
    let mut seen = Vec::new();
    let report = extract(img, &ours, opts, &mut |p| seen.push(p)).unwrap();
    unsquashfs(img, &theirs);
    let n = assert_same_tree(&ours, &theirs);
    assert!(report.files > 0 && report.dirs > 0, "{report:?}");
    (n, seen)
}

fn test_tree_with(comp: &str) {
    if !have_squashfs_tools(&format!("rootfs_compare/{comp}")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pseudo = build_tree(&tmp.path().join("src"));
    let pseudo: Vec<String> = if is_root() {
        pseudo
    } else {
        eprintln!("note: not root, leaving devices and foreign owners out of the image");
        Vec::new()
    };
    let img = tmp.path().join(format!("test-{comp}.squashfs"));
    mksquashfs(&tmp.path().join("src"), &img, comp, &pseudo, &[]);
    let (n, _) = extract_both(&img, tmp.path(), &ExtractOptions::default());
    assert!(n >= 30, "only {n} entries compared");
}

#[test]
fn same_as_unsquashfs_zstd() {
    test_tree_with("zstd");
}

#[test]
fn same_as_unsquashfs_gzip() {
    test_tree_with("gzip");
}

#[test]
fn same_as_unsquashfs_xz() {
    test_tree_with("xz");
}

#[test]
fn same_as_unsquashfs_lz4() {
    test_tree_with("lz4");
}

/// Uncompressed tables and data, no fragments, single worker: other code paths of the reader.
#[test]
fn same_as_unsquashfs_uncompressed_no_fragments_one_thread() {
    if !have_squashfs_tools("rootfs_compare/uncompressed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pseudo = build_tree(&tmp.path().join("src"));
    let pseudo = if is_root() { pseudo } else { Vec::new() };
    let img = tmp.path().join("plain.squashfs");
    let extra = [
        "-noI",
        "-noD",
        "-noF",
        "-noX",
        "-no-fragments",
        "-b",
        "4096",
    ];
    mksquashfs(&tmp.path().join("src"), &img, "gzip", &pseudo, &extra);
    extract_both(
        &img,
        tmp.path(),
        &ExtractOptions {
            threads: 1,
            ..Default::default()
        },
    );
}

#[test]
fn progress_is_bounded_monotonic_and_ends_once_at_totals() {
    if !have_squashfs_tools("rootfs_compare/progress") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_tree(&tmp.path().join("src"));
    let img = tmp.path().join("p.squashfs");
    mksquashfs(&tmp.path().join("src"), &img, "zstd", &[], &[]);
    let mut seen = Vec::new();
    let report = extract(
        &img,
        &tmp.path().join("out"),
        &ExtractOptions::default(),
        &mut |p| seen.push(p),
    )
    .unwrap();
    let last = *seen.last().unwrap();
    assert_eq!(seen[0].files_done, 0);
    assert_eq!(seen[0].bytes_done, 0);
    assert_eq!(last.files_done, last.files_total);
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(
        seen.iter().filter(|p| **p == last).count(),
        1,
        "totals reported more than once: {seen:?}"
    );
    assert!(seen
        .windows(2)
        .all(|w| w[0].files_done <= w[1].files_done && w[0].bytes_done <= w[1].bytes_done));
    assert!(seen
        .iter()
        .all(|p| p.files_total == last.files_total && p.bytes_total == last.bytes_total));
    assert_eq!(last.bytes_total, report.bytes);
    let entries = report.dirs + report.files + report.symlinks + report.hard_links + report.special;
    assert_eq!(last.files_total, entries);
}

/// Extracting again into the same target: an error by default, like-for-like with
/// `replace_existing` (as `unsquashfs -f` does).
#[test]
fn second_extraction_needs_replace_existing() {
    if !have_squashfs_tools("rootfs_compare/replace") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_tree(&tmp.path().join("src"));
    let img = tmp.path().join("r.squashfs");
    mksquashfs(&tmp.path().join("src"), &img, "zstd", &[], &[]);
    let out = tmp.path().join("ours");
    extract(&img, &out, &ExtractOptions::default(), &mut |_| {}).unwrap();
    let err = extract(&img, &out, &ExtractOptions::default(), &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("r.squashfs") && msg.contains("already exists"),
        "{msg}"
    );
    let opts = ExtractOptions {
        replace_existing: true,
        ..Default::default()
    };
    extract(&img, &out, &opts, &mut |_| {}).unwrap();
    unsquashfs(&img, &tmp.path().join("theirs"));
    assert_same_tree(&out, &tmp.path().join("theirs"));
}

/// A real Debian root (the lab's stand-in for pve-base.squashfs, or any image):
/// `TAPPAAS_ROOTFS_IMAGE=/path/to/root.squashfs cargo test --test rootfs_compare -- --ignored`.
#[test]
#[ignore = "needs TAPPAAS_ROOTFS_IMAGE (a real root squashfs); takes a while"]
fn same_as_unsquashfs_real_root_image() {
    let Some(img) = std::env::var_os("TAPPAAS_ROOTFS_IMAGE").map(PathBuf::from) else {
        eprintln!("SKIP: TAPPAAS_ROOTFS_IMAGE is not set");
        return;
    };
    if !have_squashfs_tools("rootfs_compare/real") {
        return;
    }
    let tmp = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .unwrap();
    let (n, seen) = extract_both(&img, tmp.path(), &ExtractOptions::default());
    eprintln!("{n} entries identical; {} progress reports", seen.len());
}

/// The comparison itself must notice a difference (guards against a vacuous harness), and
/// the test tree must really hold the entry kinds this file claims to compare.
#[test]
fn comparison_sees_differences_and_tree_has_everything() {
    if !have_squashfs_tools("rootfs_compare/harness") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pseudo = build_tree(&tmp.path().join("src"));
    let pseudo = if is_root() { pseudo } else { Vec::new() };
    let img = tmp.path().join("h.squashfs");
    mksquashfs(&tmp.path().join("src"), &img, "zstd", &pseudo, &[]);
    let ours = tmp.path().join("ours");
    extract(&img, &ours, &ExtractOptions::default(), &mut |_| {}).unwrap();
    let snap = snapshot(&ours);
    let kinds: String = snap.values().map(|r| r.kind).collect();
    for k in ['d', 'f', 'l', 'p', 's'] {
        assert!(kinds.contains(k), "no {k:?} entry in {kinds}");
    }
    let rec = |p: &str| {
        snap.get(Path::new(p))
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(rec("tmp").mode, 0o1777);
    assert_eq!(rec("private").mode, 0o700);
    assert_eq!(rec("a/hard-link").same_as, Path::new("small.txt"));
    assert_eq!(
        rec("a/rel-link").link.as_deref(),
        Some(Path::new("../small.txt"))
    );
    assert_eq!(rec("sparse.img").size, 3 << 20);
    if is_root() {
        assert_eq!(rec("shared").mode, 0o2775);
        assert_eq!((rec("owned").uid, rec("owned").gid), (1234, 5678));
        assert_eq!((rec("suid").mode, rec("suid").uid), (0o4755, 1000));
        assert_eq!(rec("dev/null").kind, 'c');
        assert_eq!(rec("dev/null").rdev, nix::sys::stat::makedev(1, 3));
        assert_eq!(rec("dev/big").rdev, nix::sys::stat::makedev(300, 70000));
        assert_eq!(rec("dev/sda").kind, 'b');
        assert!(
            rec("cap").xattrs.contains_key("security.capability"),
            "{:?}",
            rec("cap")
        );
        assert!(rec("abs-link").xattrs.contains_key("trusted.tappaas"));
        assert!(rec("fifo").xattrs.contains_key("trusted.tappaas"));
    }
    unsquashfs(&img, &tmp.path().join("theirs"));
    std::fs::write(ours.join("a/b/c/d/deep.txt"), b"changed").unwrap();
    let caught = std::panic::catch_unwind(|| assert_same_tree(&ours, &tmp.path().join("theirs")));
    assert!(caught.is_err(), "a changed file went unnoticed");
}
