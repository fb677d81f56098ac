//! Root image extraction throughput: `tappaas_installer::rootfs::extract` next to
//! `unsquashfs -f -d` on the same image, into the same filesystem, fresh target each run.
//!
//! `cargo bench -p tappaas-installer --bench extract`
//!
//! Environment (all optional):
//! - `TAPPAAS_BENCH_IMAGE`: a squashfs to use (e.g. the lab's stand-in
//!   `~/.cache/tappaas/vm-tests/standin-*/payload/pve-base.squashfs`, or a real
//!   `pve-base.squashfs`). Default: a synthetic root-like image built once and cached as
//!   `~/.cache/tappaas/bench/synthetic-v1.squashfs` (40k files, ~0.5 GB, zstd).
//! - `TAPPAAS_BENCH_TARGET`: directory on the filesystem to extract into (say, a ZFS dataset,
//!   or `/dev/shm/x` for tmpfs: pure CPU and syscall cost). Default: `target/bench-extract`
//!   of this workspace. Each run gets a fresh directory; all are removed after the last run.
//! - `TAPPAAS_BENCH_ROUNDS`: counted runs per tool (default 3) after one warm-up run each,
//!   alternating which tool goes first. The medians are printed with their ratio.
//! - `TAPPAAS_BENCH_TOOLS`: `ours` or `unsquashfs` to run only one (profiling); default both.
//! - `TAPPAAS_BENCH_COLD=1`: evict the image from the page cache before each run
//!   (`posix_fadvise(DONTNEED)` on the image only: nothing else on the machine is dropped).
//! - `TAPPAAS_BENCH_THREADS`: worker threads for ours (default: automatic).
//!
//! Each run prints the time until the tool returns and the time including `syncfs` of the
//! target (the installer syncs the pool once at the end, so that is the figure that counts).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tappaas_installer::rootfs::{extract, ExtractOptions};

const SYNTHETIC: &str = "synthetic-v1.squashfs";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` / `cargo bench -- --list` probing
    }
    let image = match env_path("TAPPAAS_BENCH_IMAGE") {
        Some(p) => p,
        None => synthetic_image(),
    };
    let target = env_path("TAPPAAS_BENCH_TARGET")
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-extract"));
    let rounds: usize = env_num("TAPPAAS_BENCH_ROUNDS").unwrap_or(3);
    let cold = std::env::var_os("TAPPAAS_BENCH_COLD").is_some_and(|v| v == "1");
    let opts = ExtractOptions {
        threads: env_num("TAPPAAS_BENCH_THREADS").unwrap_or(0),
        ..Default::default()
    };
    fs::create_dir_all(&target).unwrap();
    let runs = target.join(format!("runs-{}", std::process::id()));
    fs::create_dir_all(&runs).unwrap();

    let img_len = fs::metadata(&image).unwrap().len();
    println!("image   {} ({:.0} MB)", image.display(), mb(img_len));
    println!("target  {} ({})", target.display(), fs_type(&target));
    println!(
        "cache   {}",
        if cold {
            "cold: image evicted before each run"
        } else {
            "warm: image in page cache"
        }
    );
    println!(
        "cpus    {} (shared machine: figures are indicative)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "{:<11} {:>3} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "tool", "run", "files", "MB", "s", "MB/s", "s+sync", "MB/s"
    );

    let tools = std::env::var("TAPPAAS_BENCH_TOOLS").unwrap_or_else(|_| "both".into());
    let (with_ours, with_theirs) = (tools != "unsquashfs", tools != "ours");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // Round 0 is a warm-up (printed as "w", not counted): it pays for first-touch effects
    // such as reading the image into the page cache and the filesystem allocator's state.
    for round in 0..=rounds {
        // Alternate which tool goes first, so neither always gets the other's leftovers.
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_ours in order {
            if (is_ours && !with_ours) || (!is_ours && !with_theirs) {
                continue;
            }
            // A fresh, never-used directory per run. Old trees are removed only after all
            // runs: on ext4 without a journal, creating inodes right after deleting many
            // pays for scanning "recently deleted" inodes (`recently_deleted()` in the
            // kernel), which would bill one tool for the other's cleanup.
            let dest = runs.join(format!(
                "{}-{round}",
                if is_ours { "ours" } else { "unsquashfs" }
            ));
            sync_fs(&target);
            if cold {
                evict(&image);
            }
            let t0 = Instant::now();
            let (files, bytes) = if is_ours {
                let r = extract(&image, &dest, &opts, &mut |_| {}).unwrap();
                (
                    r.files + r.dirs + r.symlinks + r.hard_links + r.special,
                    r.bytes,
                )
            } else {
                let out = Command::new("unsquashfs")
                    .args(["-f", "-n", "-q", "-d"])
                    .arg(&dest)
                    .arg(&image)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "unsquashfs: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (0, 0)
            };
            let t_ret = t0.elapsed();
            sync_fs(&dest);
            let t_sync = t0.elapsed();
            let (files, bytes) = if is_ours {
                (files, bytes)
            } else {
                tree_size(&dest)
            };
            let name = if is_ours { "ours" } else { "unsquashfs" };
            let row = (t_ret, t_sync, files, bytes);
            let run = if round == 0 {
                "w".to_string()
            } else {
                round.to_string()
            };
            println!(
                "{name:<11} {run:>3} {files:>7} {:>9.1} {:>8.2} {:>8.1} {:>8.2} {:>8.1}",
                mb(bytes),
                t_ret.as_secs_f64(),
                mb(bytes) / t_ret.as_secs_f64(),
                t_sync.as_secs_f64(),
                mb(bytes) / t_sync.as_secs_f64()
            );
            if round == 0 {
                // warm-up: not counted
            } else if is_ours {
                ours.push(row)
            } else {
                theirs.push(row)
            }
        }
    }
    let _ = fs::remove_dir_all(&runs);
    let med = |v: &mut Vec<(Duration, Duration, u64, u64)>, sync: bool| {
        v.sort_by_key(|r| if sync { r.1 } else { r.0 });
        let r = v[v.len() / 2];
        (if sync { r.1 } else { r.0 }).as_secs_f64()
    };
    println!();
    if ours.is_empty() || theirs.is_empty() {
        return;
    }
    for sync in [false, true] {
        let (a, b) = (med(&mut ours, sync), med(&mut theirs, sync));
        let bytes = ours[0].3;
        println!(
            "median {:<14} ours {a:.2} s ({:.1} MB/s)  unsquashfs {b:.2} s ({:.1} MB/s)  ratio {:.2}x",
            if sync { "(incl. sync):" } else { "(to return):" },
            mb(bytes) / a,
            mb(bytes) / b,
            b / a
        );
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn env_num(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn sync_fs(p: &Path) {
    let f = fs::File::open(p).unwrap();
    nix::unistd::syncfs(&f).unwrap();
}

fn evict(p: &Path) {
    let f = fs::File::open(p).unwrap();
    nix::fcntl::posix_fadvise(
        &f,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .unwrap();
}

fn fs_type(p: &Path) -> String {
    let out = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output();
    out.map_or_else(
        |_| "?".into(),
        |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// Entries (root excluded) and regular-file bytes (hard links once) of a tree.
fn tree_size(root: &Path) -> (u64, u64) {
    let (mut n, mut bytes, mut seen) = (0, 0, std::collections::HashSet::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            n += 1;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert(m.ino()) {
                bytes += m.len();
            }
        }
    }
    (n, bytes)
}

/// Build (once) a root-like tree and pack it with `mksquashfs -comp zstd`: 40,000 files in
/// ~4,000 directories, sizes skewed like a Debian root (half under 2 KiB, a few MiB-sized),
/// content mostly text-like with some incompressible parts, plus symlinks and hard links.
fn synthetic_image() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let dir = home.join(".cache/tappaas/bench");
    let img = dir.join(SYNTHETIC);
    if img.exists() {
        return img;
    }
    fs::create_dir_all(&dir).unwrap();
    let tree = dir.join("synthetic-tree.tmp");
    let _ = fs::remove_dir_all(&tree);
    eprintln!("building {} once (a minute or two) ...", img.display());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let words = [
        "lib", "usr", "share", "perl", "python3", "module", "config", "the", "and", "data",
        "proxmox", "=", "{", "}", "\n", "0x1f", "return", "static",
    ];
    let mut dirs = vec![tree.clone()];
    fs::create_dir_all(&tree).unwrap();
    for i in 0..4000 {
        let parent = dirs[(next() % dirs.len() as u64) as usize].clone();
        let d = parent.join(format!("d{i}"));
        fs::create_dir(&d).unwrap();
        dirs.push(d);
    }
    let mut files = Vec::new();
    for i in 0..40_000u64 {
        let r = next() % 1000;
        let size = match r {
            0..550 => next() % 2048,
            550..900 => 2048 + next() % (14 << 10),
            900..985 => (16 << 10) + next() % (48 << 10),
            985..999 => (64 << 10) + next() % (448 << 10),
            _ => (1 << 20) + next() % (3 << 20),
        } as usize;
        let mut data = Vec::with_capacity(size + 16);
        while data.len() < size {
            if next() % 10 < 7 {
                data.extend_from_slice(words[(next() % words.len() as u64) as usize].as_bytes());
                data.push(b' ');
            } else {
                data.extend_from_slice(&next().to_le_bytes());
            }
        }
        data.truncate(size);
        let d = &dirs[(next() % dirs.len() as u64) as usize];
        let p = d.join(format!("f{i}.bin"));
        fs::write(&p, &data).unwrap();
        files.push(p);
    }
    for i in 0..2000 {
        let target = &files[(next() % files.len() as u64) as usize];
        let d = &dirs[(next() % dirs.len() as u64) as usize];
        symlink(target, d.join(format!("l{i}"))).unwrap();
    }
    for i in 0..200 {
        let target = &files[(next() % files.len() as u64) as usize];
        fs::hard_link(target, dirs[i % dirs.len()].join(format!("h{i}"))).unwrap();
    }
    let tmp_img = dir.join(format!("{SYNTHETIC}.tmp"));
    let st = Command::new("mksquashfs")
        .arg(&tree)
        .arg(&tmp_img)
        .args(["-comp", "zstd", "-noappend", "-quiet", "-no-progress"])
        .status()
        .expect("mksquashfs (apt-get install squashfs-tools)");
    assert!(st.success());
    fs::rename(&tmp_img, &img).unwrap();
    fs::remove_dir_all(&tree).unwrap();
    img
}
