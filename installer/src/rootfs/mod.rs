//! Root image extraction: unpack a squashfs (Proxmox VE's `pve-base.squashfs`, or any
//! squashfs 4.0 image) onto the new root, faster than `unsquashfs` and without ever writing
//! through a symlink. See `docs/rootfs-extraction.md`.
//!
//! Phases: (1) a producer thread walks the directory tree depth first, creates every
//! directory (mode 0700 for now) and hands batches of a directory's other entries, together
//! with that directory's open fd, to (2) a pool of workers that create files, symlinks and
//! special files relative to that fd, decompressing with `pread` so they never share a file
//! position; (3) hard links; (4) directory owners, modes, xattrs and times, deepest first.
//! Nothing is fsync'ed: the engine syncs the pool once at the end.

mod create;
mod image;
mod xattr;

use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use create::{open_dir, what, Creator, Stats};
use image::{DataReader, Image, Kind};

/// How to extract. `Default` is what the installer wants.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Worker threads creating entries; 0 means "pick from the CPU count".
    pub threads: usize,
    /// Replace non-directories that already exist in `dest` (like `unsquashfs -f`).
    /// Off: an existing entry is an error. Existing directories are always merged into.
    pub replace_existing: bool,
    /// Count and log xattrs that cannot be set instead of failing. Off by default:
    /// a Proxmox root without `security.capability` on e.g. `ping` is broken.
    pub ignore_xattr_errors: bool,
}

/// Extraction progress; totals come from the image's tables before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Entries (directories, files, links, special files) created so far.
    pub files_done: u64,
    /// Entries in the image, the root excluded.
    pub files_total: u64,
    /// Regular-file bytes written so far (sparse holes count as written).
    pub bytes_done: u64,
    /// Regular-file bytes in the image (a hard-linked file counts once).
    pub bytes_total: u64,
}

/// What an extraction did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractReport {
    /// Directories, the root excluded.
    pub dirs: u64,
    /// Regular files (first names of their inodes).
    pub files: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Extra names of inodes already created (hard links).
    pub hard_links: u64,
    /// Character and block devices, fifos and sockets.
    pub special: u64,
    /// Regular-file bytes.
    pub bytes: u64,
    /// Extended attributes set.
    pub xattrs_set: u64,
    /// Extended attributes that could not be set (only with `ignore_xattr_errors`).
    pub xattr_failures: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time from opening the image to the last directory's metadata.
    pub elapsed: Duration,
}

/// Entries per batch handed to a worker, and the data size that ends a batch early.
const BATCH_ENTRIES: usize = 64;
const BATCH_BYTES: u64 = 8 << 20;
/// Minimum interval between two progress reports.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// A worker's unit: some non-directory children of one directory, and that directory's fd.
struct Job {
    dir: Arc<OwnedFd>,
    entries: Range<usize>,
    /// The directory existed before (e.g. the target root): its children may inherit a
    /// setgid group, so their owner is always set explicitly.
    preexisting: bool,
}

/// Extract squashfs `image` onto directory `dest` (created if missing; existing directories
/// are merged into). `progress` is called on this thread at most every 100 ms, first with
/// nothing done and last, exactly once, with the totals.
pub fn extract(
    image: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExtractReport> {
    let start = Instant::now();
    let img = Image::open(image)?;
    let opened = start.elapsed();
    let label = &img.label;
    let mut report = count(&img);
    let totals = Progress {
        files_done: img.entries.len() as u64 - 1,
        files_total: img.entries.len() as u64 - 1,
        bytes_done: report.bytes,
        bytes_total: report.bytes,
    };
    let root = open_dest(dest, label)?;
    let threads = match opts.threads {
        0 => {
            thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 8)
                * 2
        }
        n => n,
    };
    report.threads = threads;
    let stats = Stats::default();
    let creator = Creator::new(
        &img,
        &stats,
        opts.replace_existing,
        opts.ignore_xattr_errors,
    );
    let snapshot = || Progress {
        files_done: stats.entries.load(Relaxed),
        bytes_done: stats.bytes.load(Relaxed),
        ..totals
    };
    create_all(&creator, root.as_fd(), threads, &snapshot, totals, progress)?;
    let created = start.elapsed();

    for (idx, e) in img.entries.iter().enumerate() {
        if let Kind::HardLink { target } = e.kind {
            creator
                .hard_link(root.as_fd(), idx, target)
                .with_context(|| what(&img, e))?;
        }
    }
    let linked = start.elapsed();
    finish_dirs(&creator, root.as_fd())?;
    tracing::debug!(?opened, ?created, ?linked, done = ?start.elapsed(), threads, "extracted {label}");
    report.xattrs_set = stats.xattrs_set.load(Relaxed);
    report.xattr_failures = stats.xattr_failures.load(Relaxed);
    report.elapsed = start.elapsed();
    debug_assert_eq!(snapshot(), totals);
    progress(totals);
    Ok(report)
}

/// `dest`, created if missing, opened as the directory everything is created relative to.
fn open_dest(dest: &Path, label: &str) -> Result<OwnedFd> {
    if let Err(e) = std::fs::create_dir(dest) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e).with_context(|| format!("creating {}", dest.display()));
        }
    }
    open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {} to extract {label} into it", dest.display()))
}

/// Every entry but the hard links, by `threads` workers fed by one producer walking the
/// image, while this thread reports `progress` (first with nothing done, never the totals:
/// those come once, at the very end). The first error stops the workers and is returned.
fn create_all(
    creator: &Creator<'_>,
    root: BorrowedFd<'_>,
    threads: usize,
    snapshot: &dyn Fn() -> Progress,
    totals: Progress,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let fail = |e: anyhow::Error| {
        failed.store(true, Relaxed);
        if let Ok(mut slot) = first_error.lock() {
            slot.get_or_insert(e);
        }
    };
    let mut last = Progress {
        files_done: 0,
        bytes_done: 0,
        ..totals
    };
    progress(last);

    let stop_prefetch = AtomicBool::new(false);
    thread::scope(|s| {
        let (tx, rx) = sync_channel::<Job>(threads * 4);
        // Each worker owns a handle: when every worker is gone (even by a panic) the
        // receiver is dropped and the producer's send fails instead of blocking forever.
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(threads + 1);
        for _ in 0..threads {
            let (rx, c, f, fail) = (Arc::clone(&rx), creator, &failed, &fail);
            handles.push(s.spawn(move || worker(c, &rx, f, fail)));
        }
        drop(rx);
        let (c, f) = (creator, &failed);
        handles.push(s.spawn(move || {
            if let Err(e) = produce(c, root, &tx, f) {
                fail(e);
            }
        }));
        let prefetcher = s.spawn(|| prefetch(&creator.img.file, &stop_prefetch));
        let mut last_at = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            thread::sleep(Duration::from_millis(10));
            let now = snapshot();
            if last_at.elapsed() >= PROGRESS_EVERY && now != last && now != totals {
                progress(now);
                (last, last_at) = (now, Instant::now());
            }
        }
        stop_prefetch.store(true, Relaxed);
        drop(prefetcher);
    });
    match first_error
        .into_inner()
        .map_err(|_| anyhow!("worker panicked"))?
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Ask the kernel to read the image ahead, sequentially, in the order the workers consume
/// it. Workers `pread` at scattered offsets from several threads, which defeats the
/// kernel's own readahead; on a cold image (the ISO on a USB stick) that costs more than
/// decompression. Advice only: errors are ignored.
fn prefetch(file: &std::fs::File, stop: &AtomicBool) {
    const STEP: i64 = 8 << 20;
    let len = file.metadata().map_or(0, |m| m.len());
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut at = 0;
    while at < len && !stop.load(Relaxed) {
        let advice = nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED;
        if nix::fcntl::posix_fadvise(file, at, STEP, advice).is_err() {
            return;
        }
        at += STEP;
    }
}

/// Count entries by kind up front (the totals for progress and the report).
fn count(img: &Image) -> ExtractReport {
    let mut r = ExtractReport::default();
    for e in &img.entries[1..] {
        match &e.kind {
            Kind::Dir { .. } => r.dirs += 1,
            Kind::File(d) => {
                r.files += 1;
                r.bytes += d.size;
            }
            Kind::Symlink(_) => r.symlinks += 1,
            Kind::HardLink { .. } => r.hard_links += 1,
            Kind::CharDev(_) | Kind::BlockDev(_) | Kind::Fifo | Kind::Socket => r.special += 1,
        }
    }
    r
}

/// Depth-first, in the image's own order (the order mksquashfs stored the data in, so
/// batches read the image nearly sequentially and neighbours share fragment blocks), with a
/// stack of open directory fds bounded by the tree depth. Runs of non-directory children
/// become batches for the workers; a subdirectory is created, opened and descended into
/// where it appears.
fn produce(
    c: &Creator<'_>,
    root: BorrowedFd<'_>,
    tx: &SyncSender<Job>,
    failed: &AtomicBool,
) -> Result<()> {
    struct Level {
        fd: Arc<OwnedFd>,
        rest: Range<usize>,
        preexisting: bool,
    }
    let entries = &c.img.entries;
    let children = |i: usize| match &entries[i].kind {
        Kind::Dir { children } => children.clone(),
        _ => 0..0,
    };
    let is_dir = |i: usize| matches!(entries[i].kind, Kind::Dir { .. });
    let mut stack = vec![Level {
        fd: Arc::new(root.try_clone_to_owned()?),
        rest: children(0),
        preexisting: true,
    }];
    while let Some(top) = stack.last_mut() {
        if failed.load(Relaxed) {
            return Ok(());
        }
        let start = top.rest.start;
        let (mut end, mut bytes) = (start, 0u64);
        while end < top.rest.end
            && !is_dir(end)
            && end - start < BATCH_ENTRIES
            && bytes < BATCH_BYTES
        {
            if let Kind::File(d) = &entries[end].kind {
                bytes += d.size;
            }
            end += 1;
        }
        if end > start {
            let job = Job {
                dir: Arc::clone(&top.fd),
                entries: start..end,
                preexisting: top.preexisting,
            };
            top.rest.start = end;
            tx.send(job)
                .map_err(|_| anyhow!("extraction workers stopped"))?;
        } else if let Some(i) = top.rest.next() {
            let e = &entries[i];
            let existed = c.mkdir(top.fd.as_fd(), i).with_context(|| what(c.img, e))?;
            let fd = open_dir(top.fd.as_fd(), e.name()).with_context(|| what(c.img, e))?;
            stack.push(Level {
                fd: Arc::new(fd),
                rest: children(i),
                preexisting: existed,
            });
        } else {
            stack.pop();
        }
    }
    Ok(())
}

fn worker(
    c: &Creator<'_>,
    rx: &Mutex<Receiver<Job>>,
    failed: &AtomicBool,
    fail: &(dyn Fn(anyhow::Error) + Sync),
) {
    let mut reader = DataReader::new(c.img);
    let mut buf = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // After a failure keep draining, so the producer never blocks on a full channel.
        if failed.load(Relaxed) {
            continue;
        }
        for i in job.entries {
            let run = || c.leaf(job.dir.as_fd(), i, job.preexisting, &mut reader, &mut buf);
            let r = panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
                Err(anyhow!("internal error (panic) while creating this entry"))
            });
            if let Err(e) = r {
                fail(e.context(what(c.img, &c.img.entries[i])));
                break;
            }
        }
    }
}

/// Apply directory metadata deepest first (post-order), root last, one open fd per level.
fn finish_dirs(c: &Creator<'_>, root: BorrowedFd<'_>) -> Result<()> {
    let entries = &c.img.entries;
    let kids = |i: usize| match &entries[i].kind {
        Kind::Dir { children } => children.clone(),
        _ => 0..0,
    };
    let mut stack: Vec<(usize, OwnedFd, Range<usize>)> =
        vec![(0, root.try_clone_to_owned()?, kids(0))];
    while let Some((idx, fd, rest)) = stack.last_mut() {
        let next = rest.find(|&i| matches!(entries[i].kind, Kind::Dir { .. }));
        if let Some(i) = next {
            let sub = open_dir(fd.as_fd(), entries[i].name())
                .with_context(|| what(c.img, &entries[i]))?;
            stack.push((i, sub, kids(i)));
        } else {
            let e = &entries[*idx];
            c.dir_meta(fd.as_fd(), &e.meta)
                .with_context(|| what(c.img, e))?;
            stack.pop();
        }
    }
    Ok(())
}
