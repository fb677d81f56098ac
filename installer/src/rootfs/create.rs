//! Writing side of root image extraction: every entry is created with an `*at` call whose
//! path is ONE validated name relative to an open directory fd, and that fd was itself opened
//! with `O_NOFOLLOW | O_DIRECTORY` from its parent. Nothing inside the destination is ever
//! reached through a symlink, whatever the image or a pre-existing tree contains.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use rustix::fs::XattrFlags;

use super::image::{DataReader, Entry, Image, Kind, Meta};

/// Counters shared by all workers; read by the progress loop and the final report.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub entries: AtomicU64,
    pub bytes: AtomicU64,
    pub xattrs_set: AtomicU64,
    pub xattr_failures: AtomicU64,
}

/// Process facts and options every creation needs.
pub(crate) struct Creator<'a> {
    pub img: &'a Image,
    pub stats: &'a Stats,
    pub replace_existing: bool,
    pub ignore_xattr_errors: bool,
    umask: u32,
    euid: u32,
    egid: u32,
}

impl<'a> Creator<'a> {
    pub fn new(
        img: &'a Image,
        stats: &'a Stats,
        replace_existing: bool,
        ignore_xattr_errors: bool,
    ) -> Self {
        Self {
            img,
            stats,
            replace_existing,
            ignore_xattr_errors,
            umask: current_umask(),
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    /// Create directory `idx` inside `parent` with mode 0700 (its real metadata comes last).
    /// Returns whether a directory of that name already existed (then it is reused).
    pub fn mkdir(&self, parent: BorrowedFd<'_>, idx: usize) -> Result<bool> {
        let name = self.img.entries[idx].name();
        let mut replaced = false;
        loop {
            match mkdirat(parent, name, Mode::S_IRWXU) {
                Ok(()) => break,
                Err(Errno::EEXIST) => {
                    let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                        self.stats.entries.fetch_add(1, Relaxed);
                        return Ok(true);
                    }
                    if !self.replace_existing || replaced {
                        bail!("a non-directory is in the way");
                    }
                    unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?;
                    replaced = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.stats.entries.fetch_add(1, Relaxed);
        Ok(false)
    }

    /// Create one non-directory entry (file, symlink, device, fifo, socket) inside `dir`.
    /// Hard links and directories are skipped here: they have their own phases.
    pub fn leaf(
        &self,
        dir: BorrowedFd<'_>,
        idx: usize,
        preexisting_dir: bool,
        reader: &mut DataReader<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let e = &self.img.entries[idx];
        let name = e.name();
        let m = &e.meta;
        let chown = preexisting_dir || m.uid != self.euid || m.gid != self.egid;
        match &e.kind {
            Kind::Dir { .. } | Kind::HardLink { .. } => return Ok(()),
            Kind::File(data) => {
                let flags = OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let mode = Mode::from_bits_truncate(m.perm);
                let fd = self.retry_exists(dir, name, || openat(dir, name, flags, mode))?;
                let file = File::from(fd);
                let mut end = 0u64;
                reader.for_each_chunk(data, buf, |pos, bytes| {
                    file.write_all_at(bytes, pos)?;
                    // Holes before this chunk count as done too.
                    let chunk_end = pos + bytes.len() as u64;
                    self.stats.bytes.fetch_add(chunk_end - end, Relaxed);
                    end = chunk_end;
                    Ok(())
                })?;
                if end < data.size {
                    // Trailing sparse blocks: extend without writing zeros.
                    file.set_len(data.size)?;
                    self.stats.bytes.fetch_add(data.size - end, Relaxed);
                }
                self.fd_meta(file.as_fd(), m, chown, false)?;
            }
            Kind::Symlink(target) => {
                let target = OsStr::from_bytes(target);
                self.retry_exists(dir, name, || symlinkat(target, dir, name))?;
                self.at_meta(dir, name, m, chown, false)?;
            }
            Kind::CharDev(dev) | Kind::BlockDev(dev) => {
                let kind = if matches!(e.kind, Kind::CharDev(_)) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
                let devno = makedev(u64::from(major), u64::from(minor));
                let mode = Mode::from_bits_truncate(m.perm);
                self.retry_exists(dir, name, || mknodat(dir, name, kind, mode, devno))?;
                self.at_meta(dir, name, m, chown, true)?;
            }
            Kind::Fifo | Kind::Socket => {
                let kind = if matches!(e.kind, Kind::Fifo) {
                    SFlag::S_IFIFO
                } else {
                    SFlag::S_IFSOCK
                };
                let mode = Mode::from_bits_truncate(m.perm);
                self.retry_exists(dir, name, || mknodat(dir, name, kind, mode, 0))?;
                self.at_meta(dir, name, m, chown, true)?;
            }
        }
        self.stats.entries.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Second and later names of an inode: `linkat` without following (a hard link to a
    /// symlink links the symlink itself). Both parents are reached with `open_beneath`.
    pub fn hard_link(&self, root: BorrowedFd<'_>, idx: usize, target: usize) -> Result<()> {
        let (link, orig) = (&self.img.entries[idx], &self.img.entries[target]);
        let new_dir = open_beneath(root, parent_of(&link.path))?;
        let old_dir = open_beneath(root, parent_of(&orig.path))?;
        let (new_name, old_name) = (link.name(), orig.name());
        self.retry_exists(new_dir.as_fd(), new_name, || {
            linkat(&old_dir, old_name, &new_dir, new_name, AtFlags::empty())
        })
        .with_context(|| format!("linking to /{}", orig.path.display()))?;
        self.stats.entries.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Final metadata of a directory (always chown + chmod: it was created 0700).
    pub fn dir_meta(&self, fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        self.fd_meta(fd, meta, true, true)
    }

    /// Run `create`; on EEXIST and `replace_existing`, unlink the old entry and try once more.
    fn retry_exists<T>(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        mut create: impl FnMut() -> nix::Result<T>,
    ) -> Result<T> {
        match create() {
            Err(Errno::EEXIST) if self.replace_existing => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                    .context("removing the existing entry")?;
                Ok(create()?)
            }
            Err(Errno::EEXIST) => bail!("it already exists in the destination"),
            other => Ok(other?),
        }
    }

    /// chown, then chmod (chown clears setuid/setgid), then xattrs (chown also clears
    /// `security.capability`), then times last (nothing after may touch mtime).
    fn fd_meta(&self, fd: BorrowedFd<'_>, m: &Meta, chown: bool, force_chmod: bool) -> Result<()> {
        if chown {
            fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid))).context("chown")?;
        }
        if force_chmod || self.needs_chmod(m.perm, chown) {
            fchmod(fd, Mode::from_bits_truncate(m.perm)).context("chmod")?;
        }
        if let Some(set) = m.xattrs {
            for (name, value) in &self.img.xattrs[set] {
                let r = rustix::fs::fsetxattr(fd, name.as_c_str(), value, XattrFlags::empty());
                self.xattr_result(r, name.to_string_lossy().as_ref())?;
            }
        }
        let t = TimeSpec::new(i64::from(m.mtime), 0);
        futimens(fd, &t, &t).context("setting times")?;
        Ok(())
    }

    /// The same for entries that must not be opened (symlinks, devices, fifos, sockets).
    fn at_meta(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        m: &Meta,
        chown: bool,
        chmod: bool,
    ) -> Result<()> {
        if chown {
            let (u, g) = (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)));
            fchownat(dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW).context("chown")?;
        }
        if chmod && self.needs_chmod(m.perm, chown) {
            // Linux has no lchmod; this entry was just created by us as a non-symlink in a
            // directory only we can reach, so following is moot.
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(m.perm),
                FchmodatFlags::FollowSymlink,
            )
            .context("chmod")?;
        }
        if let Some(set) = m.xattrs {
            // No setxattrat before Linux 6.13: name the entry through its directory's fd.
            let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
            path.push(name);
            for (xname, value) in &self.img.xattrs[set] {
                let r = rustix::fs::lsetxattr(&path, xname.as_c_str(), value, XattrFlags::empty());
                self.xattr_result(r, xname.to_string_lossy().as_ref())?;
            }
        }
        let t = TimeSpec::new(i64::from(m.mtime), 0);
        utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).context("setting times")?;
        Ok(())
    }

    fn needs_chmod(&self, perm: u32, chowned: bool) -> bool {
        perm & 0o7000 != 0 || perm & self.umask != 0 || (chowned && perm & 0o6000 != 0)
    }

    fn xattr_result(&self, r: rustix::io::Result<()>, name: &str) -> Result<()> {
        match r {
            Ok(()) => {
                self.stats.xattrs_set.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) if self.ignore_xattr_errors => {
                tracing::warn!("could not set xattr {name}: {e}");
                self.stats.xattr_failures.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("setting xattr {name}")),
        }
    }
}

/// Open directory `rel` under `root`, one component at a time, never following a symlink.
pub(crate) fn open_beneath(root: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd> {
    let mut fd = root.try_clone_to_owned()?;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            bail!("unexpected path component in {}", rel.display())
        };
        fd = open_dir(fd.as_fd(), name)?;
    }
    Ok(fd)
}

/// `openat(parent, name, O_DIRECTORY | O_NOFOLLOW)`: fails on a symlink instead of following it.
pub(crate) fn open_dir(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(openat(parent, name, flags, Mode::empty())?)
}

fn parent_of(p: &Path) -> &Path {
    p.parent().unwrap_or_else(|| Path::new(""))
}

/// The process umask, read without changing it (`umask(2)` can only set). Unknown means
/// "assume everything is masked", which just makes every entry get an explicit chmod.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
        })
        .unwrap_or(0o777)
}

/// Error context for one entry: "extracting usr/bin/foo from pve-base.squashfs".
pub(crate) fn what(img: &Image, e: &Entry) -> String {
    let path = if e.path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &e.path
    };
    format!("extracting {} from {}", path.display(), img.label)
}
