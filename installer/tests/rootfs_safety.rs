//! Hostile and broken images: entries that try to escape the target (`..`, `/` in a name,
//! a symlink and a directory of the same name, a symlink already in the target) must be
//! refused without writing outside it; truncated or corrupt images must give an error that
//! names the image, never a panic.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod rootfs_common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use rootfs_common::*;
use tappaas_installer::rootfs::{extract, ExtractOptions};

/// An image (uncompressed tables, so names can be patched) holding `zz_x`, a symlink
/// `aaaa -> <outside>` and a directory `aaab/` with `passwd` in it.
fn hostile_base(tmp: &Path) -> (PathBuf, PathBuf) {
    let (src, outside) = (tmp.join("src"), tmp.join("outside"));
    fs::create_dir_all(src.join("aaab")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(src.join("zz_x"), b"escaped\n").unwrap();
    fs::write(src.join("aaab/passwd"), b"root::0:0::/:/bin/sh\n").unwrap();
    symlink(&outside, src.join("aaaa")).unwrap();
    let img = tmp.join("hostile.squashfs");
    mksquashfs(&src, &img, "gzip", &[], &["-noI"]);
    (img, outside)
}

/// Replace the only occurrence of `from` in the image with `to` (same length).
fn patch(img: &Path, from: &[u8], to: &[u8]) {
    let mut bytes = fs::read(img).unwrap();
    let hits: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} occurs {} times",
        String::from_utf8_lossy(from),
        hits.len()
    );
    bytes[hits[0]..hits[0] + to.len()].copy_from_slice(to);
    fs::write(img, bytes).unwrap();
}

fn expect_refusal(img: &Path, dest: &Path, opts: &ExtractOptions, needle: &str) {
    let err = extract(img, dest, opts, &mut |_| {}).expect_err("hostile image was extracted");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("hostile.squashfs"),
        "error does not name the image: {msg}"
    );
    assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "something was written outside the target: {left:?}"
    );
}

#[test]
fn dotdot_name_is_refused() {
    if !have_squashfs_tools("rootfs_safety/dotdot") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, _) = hostile_base(tmp.path());
    patch(&img, b"zz_x", b"../x");
    let dest = tmp.path().join("t/dest");
    fs::create_dir_all(&dest).unwrap();
    expect_refusal(&img, &dest, &ExtractOptions::default(), "unsafe entry name");
    assert!(!tmp.path().join("t/x").exists());
    assert_empty(&dest);
}

#[test]
fn slash_in_name_is_refused() {
    if !have_squashfs_tools("rootfs_safety/slash") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, _) = hostile_base(tmp.path());
    patch(&img, b"zz_x", b"/etc");
    expect_refusal(
        &img,
        &tmp.path().join("dest"),
        &ExtractOptions::default(),
        "unsafe entry name",
    );
}

/// A symlink `aaaa -> outside` and a directory also called `aaaa` holding `passwd`: the
/// classic "write through the symlink" attack. Refused before anything is created.
#[test]
fn symlink_then_directory_of_same_name_is_refused() {
    if !have_squashfs_tools("rootfs_safety/dup") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, outside) = hostile_base(tmp.path());
    patch(&img, b"aaab", b"aaaa");
    let opts = ExtractOptions {
        replace_existing: true,
        ..Default::default()
    };
    expect_refusal(&img, &tmp.path().join("dest"), &opts, "duplicate entry");
    assert_empty(&outside);
}

/// The target already holds `aaab -> outside` (say, left by something else): the image's
/// `aaab/passwd` must not land in `outside`. Default: refused; `replace_existing`: the
/// symlink is replaced by a real directory.
#[test]
fn symlink_already_in_target_is_never_followed() {
    if !have_squashfs_tools("rootfs_safety/preexisting") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, outside) = hostile_base(tmp.path());
    let dest = tmp.path().join("dest");
    fs::create_dir_all(&dest).unwrap();
    symlink(&outside, dest.join("aaab")).unwrap();
    expect_refusal(
        &img,
        &dest,
        &ExtractOptions::default(),
        "non-directory is in the way",
    );
    assert_empty(&outside);

    let opts = ExtractOptions {
        replace_existing: true,
        ..Default::default()
    };
    extract(&img, &dest, &opts, &mut |_| {}).unwrap();
    assert_empty(&outside);
    assert!(fs::symlink_metadata(dest.join("aaab")).unwrap().is_dir());
    assert!(dest.join("aaab/passwd").is_file());
    // The image's own absolute symlink is created as a symlink, not followed.
    assert_eq!(fs::read_link(dest.join("aaaa")).unwrap(), outside);
}

fn small_image(tmp: &Path) -> PathBuf {
    build_tree(&tmp.join("src"));
    let img = tmp.join("broken.squashfs");
    mksquashfs(&tmp.join("src"), &img, "zstd", &[], &[]);
    img
}

fn expect_clean_error(img: &Path, dest: &Path) -> String {
    let r =
        std::panic::catch_unwind(|| extract(img, dest, &ExtractOptions::default(), &mut |_| {}));
    let err = r
        .expect("extract panicked")
        .expect_err("a broken image extracted without error");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("broken.squashfs"),
        "error does not name the image: {msg}"
    );
    msg
}

#[test]
fn truncated_empty_and_garbage_images_give_clean_errors() {
    if !have_squashfs_tools("rootfs_safety/truncated") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = small_image(tmp.path());
    let bytes = fs::read(&img).unwrap();
    for (i, len) in [bytes.len() / 2, 200, 96, 10, 0].into_iter().enumerate() {
        fs::write(&img, &bytes[..len]).unwrap();
        let msg = expect_clean_error(&img, &tmp.path().join(format!("t{i}")));
        eprintln!("truncated to {len}: {msg}");
    }
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&img, garbage).unwrap();
    expect_clean_error(&img, &tmp.path().join("g"));
    let msg = expect_clean_error(
        &tmp.path().join("broken.squashfs.missing"),
        &tmp.path().join("m"),
    );
    assert!(msg.contains("opening image"), "{msg}");
}

/// Data corruption is reported against the file being extracted.
#[test]
fn corrupt_data_block_names_the_file() {
    if !have_squashfs_tools("rootfs_safety/data") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let text: String = (0..60_000)
        .map(|i| format!("line {i} of a compressible file\n"))
        .collect();
    fs::write(src.join("only.txt"), text).unwrap();
    let img = tmp.path().join("broken.squashfs");
    mksquashfs(&src, &img, "zstd", &[], &[]);
    let mut bytes = fs::read(&img).unwrap();
    bytes[2000..6000].fill(0xA5); // data blocks start right after the 96-byte superblock
    fs::write(&img, bytes).unwrap();
    let msg = expect_clean_error(&img, &tmp.path().join("out"));
    assert!(
        msg.contains("extracting only.txt from broken.squashfs"),
        "{msg}"
    );
}

/// Deterministic corruption of the superblock and the metadata tables (inodes, directories,
/// fragments, ids, xattrs), compressed and raw: any outcome but a panic or a hang.
#[test]
fn random_table_corruption_never_panics() {
    if !have_squashfs_tools("rootfs_safety/fuzz") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_tree(&tmp.path().join("src"));
    let img = tmp.path().join("broken.squashfs");
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for extra in [&[][..], &["-noI", "-noX"][..]] {
        mksquashfs(&tmp.path().join("src"), &img, "zstd", &[], extra);
        let good = fs::read(&img).unwrap();
        let tables = u64::from_le_bytes(good[64..72].try_into().unwrap()) as usize;
        let (mut ok, mut failed) = (0, 0);
        for round in 0..200 {
            let mut bytes = good.clone();
            for _ in 0..(1 + next() % 3) {
                // One in eight hits the superblock, the rest the tables.
                let at = if next() % 8 == 0 {
                    (next() % 96) as usize
                } else {
                    tables + (next() % (good.len() - tables) as u64) as usize
                };
                bytes[at] = next() as u8;
            }
            fs::write(&img, &bytes).unwrap();
            let dest = tmp.path().join(format!("f{round}"));
            let r = std::panic::catch_unwind(|| {
                extract(&img, &dest, &ExtractOptions::default(), &mut |_| {})
            });
            match r {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(e)) => {
                    failed += 1;
                    assert!(format!("{e:#}").contains("broken.squashfs"), "{e:#}");
                }
                Err(_) => panic!("extract panicked on corruption round {round} ({extra:?})"),
            }
            let _ = fs::remove_dir_all(&dest);
        }
        eprintln!("{extra:?}: 200 corrupted images: {ok} extracted, {failed} refused, 0 panics");
    }
}

/// Known gap (backhand 0.25 asserts symlink targets are under 256 bytes): an image with a
/// longer target is refused with an error naming the image, never half-extracted or a panic.
/// Linux allows up to 4095 bytes; Proxmox's root has none that long today.
#[test]
fn long_symlink_target_is_a_clean_error() {
    if !have_squashfs_tools("rootfs_safety/long-symlink") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    symlink(format!("/{}", "x".repeat(300)), src.join("long")).unwrap();
    let img = tmp.path().join("broken.squashfs");
    mksquashfs(&src, &img, "zstd", &[], &[]);
    let msg = expect_clean_error(&img, &tmp.path().join("out"));
    assert!(msg.contains("reading the squashfs tables"), "{msg}");
    assert!(!tmp.path().join("out/long").exists());
}
