//! Shared helpers for the rootfs extraction tests: a test tree with every entry type, packing
//! it with the real `mksquashfs`, extracting with `unsquashfs`, and an entry-by-entry tree
//! comparison that never follows symlinks.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// True when mksquashfs and unsquashfs are installed; otherwise prints why a test skips.
pub fn have_squashfs_tools(test: &str) -> bool {
    let ok = ["mksquashfs", "unsquashfs"]
        .iter()
        .all(|t| Command::new(t).arg("-version").output().is_ok());
    if !ok {
        eprintln!(
            "SKIP {test}: mksquashfs/unsquashfs not installed (apt-get install squashfs-tools)"
        );
    }
    ok
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn set_mtime(p: &Path, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Build the test tree under `root`. Returns pseudo definitions (owners, devices) to pass
/// to mksquashfs with `-p`, so no real foreign-owned files or device nodes are needed.
pub fn build_tree(root: &Path) -> Vec<String> {
    fs::create_dir_all(root).unwrap();
    let w = |rel: &str, data: &[u8]| fs::write(root.join(rel), data).unwrap();
    w("empty", b"");
    w("small.txt", b"hello squashfs\n");
    // Incompressible-ish multi-block file with a fragment tail.
    let mut big = Vec::with_capacity(700_000);
    let mut x: u32 = 12345;
    while big.len() < 700_001 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.extend_from_slice(&x.to_le_bytes());
    }
    big.truncate(700_001);
    w("big.bin", &big);
    // Sparse-ish: data, 1 MiB of zeros (sparse blocks in squashfs), data, zero tail.
    let f = fs::File::create(root.join("sparse.img")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"middle", 3 << 19).unwrap();
    f.set_len(3 << 20).unwrap();
    drop(f);
    w("odd name \u{e9}\u{2603}", b"unicode name\n");
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9")),
        b"bytes\n",
    )
    .unwrap();

    for d in ["private", "tmp", "shared", "a/b/c/d", "ro", "dev"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    w("a/b/c/d/deep.txt", b"deep\n");
    w("private/secret", b"secret\n");
    w("ro/file", b"read only dir\n");
    w("suid", b"#!/bin/sh\n");
    w("sgid", b"#!/bin/sh\n");
    w("cap", b"pretend ping\n");
    w("owned", b"owned by someone else\n");
    chmod(&root.join("suid"), 0o4755);
    chmod(&root.join("sgid"), 0o2711);
    chmod(&root.join("small.txt"), 0o640);
    chmod(&root.join("empty"), 0o400);

    symlink("../small.txt", root.join("a/rel-link")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    symlink("private", root.join("dir-link")).unwrap();
    fs::hard_link(root.join("small.txt"), root.join("a/hard-link")).unwrap();
    fs::hard_link(root.join("suid"), root.join("suid-link")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o620)).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    drop(sock);

    // Extended attributes, where the filesystem under the tree supports them.
    let xset = |p: &Path, n: &str, v: &[u8]| {
        rustix::fs::lsetxattr(p, n, v, rustix::fs::XattrFlags::empty()).is_ok()
    };
    if xset(&root.join("small.txt"), "user.tappaas", b"file xattr") {
        xset(&root.join("a"), "user.tappaas", b"dir xattr");
    }
    if is_root() {
        // security.capability as setcap writes it (cap_net_raw+ep, v2 format).
        let cap: [u8; 20] = [
            0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        xset(&root.join("cap"), "security.capability", &cap);
        xset(&root.join("abs-link"), "trusted.tappaas", b"symlink xattr");
        xset(&root.join("fifo"), "trusted.tappaas", b"fifo xattr");
    }

    chmod(&root.join("private"), 0o700);
    chmod(&root.join("tmp"), 0o1777);
    chmod(&root.join("shared"), 0o2775);
    chmod(&root.join("ro"), 0o555);
    // Deterministic, distinct times (after every content change above).
    let mut t = 1_000_000_000;
    for rel in walk_paths(root).into_iter().rev() {
        set_mtime(&root.join(&rel), t);
        t += 7;
    }

    vec![
        "dev/null c 666 0 0 1 3".into(),
        "dev/sda b 660 0 6 8 0".into(),
        "dev/big c 600 0 0 300 70000".into(),
        "owned m 640 1234 5678".into(),
        "suid m 4755 1000 1000".into(),
        "shared m 2775 0 50".into(),
        "pseudo-sock i 755 33 33 s".into(),
    ]
}

/// Every path under `root` (relative, root itself as ""), parents before children.
pub fn walk_paths(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::new()];
    let mut i = 0;
    while i < out.len() {
        let dir = root.join(&out[i]);
        if fs::symlink_metadata(&dir).unwrap().is_dir() {
            let mut names: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                out.push(out[i].join(n));
            }
        }
        i += 1;
    }
    out
}

/// Pack `src` with the real mksquashfs.
pub fn mksquashfs(src: &Path, img: &Path, comp: &str, pseudo: &[String], extra: &[&str]) {
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(src)
        .arg(img)
        .args(["-comp", comp, "-noappend", "-quiet", "-no-progress"]);
    for p in pseudo {
        cmd.arg("-p").arg(p);
    }
    cmd.args(extra);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "mksquashfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Extract with the real unsquashfs (`-f -d`), as the reference.
pub fn unsquashfs(img: &Path, dest: &Path) {
    let out = Command::new("unsquashfs")
        .args(["-f", "-n", "-d"])
        .arg(dest)
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "unsquashfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything the comparison looks at, for one path.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub content: u64,
    pub link: Option<PathBuf>,
    pub rdev: u64,
    pub nlink: u64,
    /// First path (in walk order) with the same inode: hard-link identity.
    pub same_as: PathBuf,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Record every entry under `root` without following symlinks.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Record> {
    let mut first_of_ino = HashMap::new();
    let mut out = BTreeMap::new();
    for rel in walk_paths(root) {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let kind = match () {
            _ if ft.is_dir() => 'd',
            _ if ft.is_file() => 'f',
            _ if ft.is_symlink() => 'l',
            _ if ft.is_char_device() => 'c',
            _ if ft.is_block_device() => 'b',
            _ if ft.is_fifo() => 'p',
            _ => 's',
        };
        let mut content = 0;
        if kind == 'f' {
            let mut h = DefaultHasher::new();
            let mut f = fs::File::open(&p).unwrap();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.write(&buf[..n]);
            }
            content = h.finish();
        }
        let same_as = first_of_ino
            .entry(m.ino())
            .or_insert_with(|| rel.clone())
            .clone();
        let mut xattrs = BTreeMap::new();
        let mut names = vec![0u8; 4096];
        if let Ok(n) = rustix::fs::llistxattr(&p, &mut names) {
            for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let name = String::from_utf8_lossy(name).into_owned();
                let mut v = vec![0u8; 4096];
                let len = rustix::fs::lgetxattr(&p, name.as_str(), &mut v).unwrap();
                v.truncate(len);
                xattrs.insert(name, v);
            }
        }
        out.insert(
            rel,
            Record {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                size: if kind == 'd' { 0 } else { m.size() },
                mtime: m.mtime(),
                content,
                link: (kind == 'l').then(|| fs::read_link(&p).unwrap()),
                rdev: m.rdev(),
                nlink: if kind == 'd' { 0 } else { m.nlink() },
                same_as,
                xattrs,
            },
        );
    }
    out
}

/// Assert two trees are identical entry by entry, printing every difference.
pub fn assert_same_tree(ours: &Path, theirs: &Path) -> usize {
    let (a, b) = (snapshot(ours), snapshot(theirs));
    let mut diffs = Vec::new();
    for (p, ra) in &a {
        match b.get(p) {
            None => diffs.push(format!("only in ours: {}", p.display())),
            Some(rb) if ra != rb => diffs.push(format!(
                "{}:\n  ours   {ra:?}\n  theirs {rb:?}",
                p.display()
            )),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("only in unsquashfs: {}", p.display()));
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    a.len()
}
