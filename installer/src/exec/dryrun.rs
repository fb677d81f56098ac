//! [`DryRunHost`]: records every effect as an [`Effect`], performs none.
//!
//! Disks are simulated by [`MemDisk`]: a sparse in-memory image of the planned size that reads
//! zeros where nothing was written. So the engine runs its whole logic in a dry run, including
//! reading back and verifying the partition table it "wrote", and the journal shows exactly which
//! bytes a real run would write. What a dry run cannot show is the disks' current content: it
//! starts from blank disks, so the old partitions a real wipe would clear do not appear.
//!
//! Files are simulated by the set of paths that exist: those the host was told about
//! ([`DryRunHost::with_paths`]) and those it "created". Commands succeed with empty output
//! unless a [`Responder`] answers them (the install engine's ZFS simulation, the tests' fakes).

use super::{
    Cmd, CmdError, DiskIo, DiskPolicy, ExtractProgress, ExtractReport, Host, HostError, MemDisk,
    Output, PartitionNode, Progress,
};
use crate::plan::Plan;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Answers a command a [`DryRunHost`] was asked to run (after it was recorded): `None` for the
/// default (success, empty output), `Some` for a scripted output or failure.
pub type Responder = Box<dyn Fn(&Cmd) -> Option<Result<Output, CmdError>> + Send + Sync>;

/// One effect a host was asked to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run a command (its display form: no env values, no stdin).
    Run {
        /// The command line.
        command: String,
        /// `N bytes on stdin` or `secret stdin`, when stdin is fed.
        stdin: Option<String>,
    },
    /// Replace a file.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Its new length.
        bytes: usize,
        /// Permission bits.
        mode: u32,
    },
    /// Write bytes to a disk (consecutive writes are merged).
    WriteDisk {
        /// The disk.
        disk: PathBuf,
        /// Byte offset.
        offset: u64,
        /// Length in bytes.
        len: u64,
        /// Every byte written is zero (a wipe).
        zeros: bool,
    },
    /// Re-read a disk's partition table.
    RereadPartitions {
        /// The disk.
        disk: PathBuf,
    },
    /// Wait for partition nodes.
    WaitForPartitions {
        /// The nodes.
        nodes: Vec<PathBuf>,
        /// For at most this long.
        timeout: Duration,
    },
    /// Create a directory (and missing parents) and set its mode.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// Replace whatever is at `link` by a symbolic link.
    Symlink {
        /// The link's target, as written.
        target: PathBuf,
        /// The link.
        link: PathBuf,
    },
    /// Remove a file or link, if present.
    RemoveFile {
        /// The path.
        path: PathBuf,
    },
    /// Extract a root image.
    Extract {
        /// The squashfs image.
        image: PathBuf,
        /// The directory it is extracted onto.
        dest: PathBuf,
    },
}

/// `16 MiB`, `16 KiB`, `512 B`: exact, in the unit that divides.
pub(crate) fn exact_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    for (unit, name) in [(KIB * KIB * KIB, "GiB"), (KIB * KIB, "MiB"), (KIB, "KiB")] {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {name}", n / unit);
        }
    }
    format!("{n} B")
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Run { command, stdin } => {
                write!(f, "run {command}")?;
                if let Some(s) = stdin {
                    write!(f, " (with {s})")?;
                }
                Ok(())
            }
            Effect::WriteFile { path, bytes, mode } => {
                write!(
                    f,
                    "write file {} ({bytes} bytes, mode {mode:04o})",
                    path.display()
                )
            }
            Effect::WriteDisk {
                disk,
                offset,
                len,
                zeros,
            } => write!(
                f,
                "write {}{} to {} at byte {offset}",
                exact_bytes(*len),
                if *zeros { " of zeros" } else { "" },
                disk.display()
            ),
            Effect::RereadPartitions { disk } => {
                write!(f, "re-read the partition table of {}", disk.display())
            }
            Effect::WaitForPartitions { nodes, timeout } => {
                write!(f, "wait up to {}s for", timeout.as_secs_f64())?;
                for n in nodes {
                    write!(f, " {}", n.display())?;
                }
                Ok(())
            }
            Effect::CreateDir { path, mode } => {
                write!(f, "create directory {} (mode {mode:04o})", path.display())
            }
            Effect::Symlink { target, link } => {
                write!(f, "link {} -> {}", link.display(), target.display())
            }
            Effect::RemoveFile { path } => write!(f, "remove {} if present", path.display()),
            Effect::Extract { image, dest } => {
                write!(f, "extract {} onto {}", image.display(), dest.display())
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A shared, ordered list of effects. Clones share the same list.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Effect>>>);

impl Journal {
    /// Appends `e`, merging a disk write into the previous one when it continues it.
    pub fn push(&self, e: Effect) {
        let mut v = lock(&self.0);
        if let (
            Some(Effect::WriteDisk {
                disk,
                offset,
                len,
                zeros,
            }),
            Effect::WriteDisk {
                disk: d2,
                offset: o2,
                len: l2,
                zeros: z2,
            },
        ) = (v.last_mut(), &e)
        {
            if disk == d2 && *zeros == *z2 && *offset + *len == *o2 {
                *len += l2;
                return;
            }
        }
        v.push(e);
    }

    /// The effects so far.
    pub fn effects(&self) -> Vec<Effect> {
        lock(&self.0).clone()
    }

    /// Removes and returns the effects so far.
    pub fn take(&self) -> Vec<Effect> {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// The dry-run host: knows the planned disks, applies the production disk policy, records
/// every effect in order, and touches nothing. Commands "succeed" with empty output unless a
/// [`Responder`] says otherwise; every program is taken as installed unless listed with
/// [`DryRunHost::without_program`].
#[derive(Default)]
pub struct DryRunHost {
    policy: DiskPolicy,
    journal: Journal,
    disks: Mutex<BTreeMap<PathBuf, MemDisk>>,
    paths: Mutex<BTreeSet<PathBuf>>,
    missing_programs: BTreeSet<String>,
    responder: Option<Responder>,
}

impl fmt::Debug for DryRunHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DryRunHost")
            .field("disks", &lock(&self.disks).keys().collect::<Vec<_>>())
            .field("paths", &lock(&self.paths).len())
            .field("responder", &self.responder.is_some())
            .field("effects", &self.journal.effects().len())
            .finish()
    }
}

impl DryRunHost {
    /// A dry-run host that knows no disks yet.
    pub fn new() -> DryRunHost {
        DryRunHost::default()
    }

    /// Adds a blank simulated disk.
    pub fn with_disk(self, path: impl Into<PathBuf>, size: u64, sector: u32) -> DryRunHost {
        let path = path.into();
        let disk = MemDisk::new(path.clone(), size, sector).recording(self.journal.clone());
        lock(&self.disks).insert(path, disk);
        self
    }

    /// Takes over `other`'s simulated disks with what was written on them, as a machine keeps
    /// its disks across a crash or reboot; writes are recorded in this host's journal.
    pub fn with_disks_from(self, other: &DryRunHost) -> DryRunHost {
        let carried: Vec<(PathBuf, MemDisk)> = lock(&other.disks)
            .iter()
            .map(|(p, d)| (p.clone(), d.clone().recording(self.journal.clone())))
            .collect();
        lock(&self.disks).extend(carried);
        self
    }

    /// A dry-run host with a blank simulated disk for every disk the plan writes, at its
    /// planned by-id path, size and sector size.
    pub fn for_plan(plan: &Plan) -> DryRunHost {
        plan.disks.iter().fold(DryRunHost::new(), |h, d| {
            h.with_disk(&d.disk.by_id, d.disk.size_bytes, d.disk.logical_sector_size)
        })
    }

    /// Pretends these paths exist (for [`Host::path_exists`]).
    pub fn with_paths<I, P>(self, paths: I) -> DryRunHost
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        lock(&self.paths).extend(paths.into_iter().map(Into::into));
        self
    }

    /// Pretends the live system lacks program `name` (for [`Host::find_program`]).
    pub fn without_program(mut self, name: &str) -> DryRunHost {
        self.missing_programs.insert(name.to_string());
        self
    }

    /// Answers commands with `responder` (after recording them).
    pub fn respond_with(
        mut self,
        responder: impl Fn(&Cmd) -> Option<Result<Output, CmdError>> + Send + Sync + 'static,
    ) -> DryRunHost {
        self.responder = Some(Box::new(responder));
        self
    }

    /// The effects recorded so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.journal.effects()
    }

    /// The journal (shared with the simulated disks).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The effects as numbered lines, for `--dry-run` output.
    pub fn render(&self) -> String {
        self.effects()
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{:>3}. {e}\n", i + 1))
            .collect()
    }

    fn add_path(&self, path: &Path) {
        let mut paths = lock(&self.paths);
        for a in path.ancestors() {
            if !a.as_os_str().is_empty() {
                paths.insert(a.to_path_buf());
            }
        }
    }
}

impl Host for DryRunHost {
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        self.journal.push(Effect::Run {
            command: cmd.to_string(),
            stdin: cmd.stdin_summary().map(|(n, secret)| {
                if secret {
                    "secret stdin".to_string()
                } else {
                    format!("{n} bytes on stdin")
                }
            }),
        });
        match &self.responder {
            Some(r) => r(cmd).unwrap_or_else(|| Ok(Output::default())),
            None => Ok(Output::default()),
        }
    }

    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), HostError> {
        self.journal.push(Effect::WriteFile {
            path: path.to_path_buf(),
            bytes: contents.len(),
            mode,
        });
        self.add_path(path);
        Ok(())
    }

    fn open_disk(&self, path: &Path) -> Result<Box<dyn DiskIo>, HostError> {
        self.policy.check(path)?;
        match lock(&self.disks).get(path) {
            Some(d) => {
                let mut d = d.clone();
                d.pos = 0;
                Ok(Box::new(d))
            }
            None => Err(HostError::NotAllowed {
                path: path.to_path_buf(),
                reason: "the dry run simulates only the disks the plan writes".into(),
            }),
        }
    }

    fn reread_partitions(&self, disk: &Path) -> Result<(), HostError> {
        self.policy.check(disk)?;
        self.journal.push(Effect::RereadPartitions {
            disk: disk.to_path_buf(),
        });
        Ok(())
    }

    fn wait_for_partitions(
        &self,
        nodes: &[PartitionNode],
        timeout: Duration,
    ) -> Result<(), HostError> {
        self.journal.push(Effect::WaitForPartitions {
            nodes: nodes.iter().map(|n| n.path.clone()).collect(),
            timeout,
        });
        Ok(())
    }

    fn create_dir(&self, path: &Path, mode: u32) -> Result<(), HostError> {
        self.journal.push(Effect::CreateDir {
            path: path.to_path_buf(),
            mode,
        });
        self.add_path(path);
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError> {
        self.journal.push(Effect::Symlink {
            target: target.to_path_buf(),
            link: link.to_path_buf(),
        });
        self.add_path(link);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<(), HostError> {
        self.journal.push(Effect::RemoveFile {
            path: path.to_path_buf(),
        });
        lock(&self.paths).remove(path);
        Ok(())
    }

    fn path_exists(&self, path: &Path) -> bool {
        lock(&self.paths).contains(path)
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        (!self.missing_programs.contains(name)).then(|| PathBuf::from(name))
    }

    fn extract_image(
        &self,
        image: &Path,
        dest: &Path,
        progress: &mut dyn ExtractProgress,
    ) -> Result<ExtractReport, HostError> {
        self.journal.push(Effect::Extract {
            image: image.to_path_buf(),
            dest: dest.to_path_buf(),
        });
        self.add_path(dest);
        progress.report(Progress::default());
        Ok(ExtractReport::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn dry_run_simulates_paths_and_answers_commands_through_the_responder() {
        let h = DryRunHost::new()
            .with_paths(["/t/usr/bin/dpkg"])
            .respond_with(|c| {
                (c.program() == "zpool").then(|| {
                    Ok(Output {
                        stdout: b"tank1\n".to_vec(),
                        ..Output::default()
                    })
                })
            });
        assert!(h.path_exists(Path::new("/t/usr/bin/dpkg")));
        assert!(!h.path_exists(Path::new("/t/etc/ssh")));
        h.create_dir(Path::new("/t/etc/ssh"), 0o755).unwrap();
        h.symlink(
            Path::new("/etc/machine-id"),
            Path::new("/t/var/lib/dbus/machine-id"),
        )
        .unwrap();
        assert!(h.path_exists(Path::new("/t/etc")));
        assert!(h.path_exists(Path::new("/t/var/lib/dbus/machine-id")));
        h.remove_file(Path::new("/t/usr/bin/dpkg")).unwrap();
        assert!(!h.path_exists(Path::new("/t/usr/bin/dpkg")));
        assert_eq!(h.run(&Cmd::new("zpool")).unwrap().stdout, b"tank1\n");
        assert_eq!(h.run(&Cmd::new("zfs")).unwrap(), Output::default());
        let mut calls = 0;
        h.extract_image(Path::new("/p/root.sfs"), Path::new("/t"), &mut |_| {
            calls += 1
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(
            h.render(),
            "  1. create directory /t/etc/ssh (mode 0755)\n  \
             2. link /t/var/lib/dbus/machine-id -> /etc/machine-id\n  \
             3. remove /t/usr/bin/dpkg if present\n  \
             4. run zpool\n  \
             5. run zfs\n  \
             6. extract /p/root.sfs onto /t\n"
        );
    }

    #[test]
    fn mem_disk_is_sparse_and_reads_back() {
        let mut d = MemDisk::new("/dev/disk/by-id/x", 64 << 30, 512);
        d.seek(SeekFrom::Start(5000)).unwrap();
        d.write_all(b"hello").unwrap();
        assert_eq!(d.read_at(4998, 9), b"\0\0hello\0\0");
        assert_eq!(d.written_ranges(), vec![(4096, 4096)]);
        d.seek(SeekFrom::Start(0)).unwrap();
        d.write_all(&vec![0u8; 1 << 20]).unwrap();
        assert!(d.written_ranges().is_empty(), "zeros must free blocks");
        assert_eq!(d.seek(SeekFrom::End(0)).unwrap(), 64 << 30);
        assert!(d.write(b"x").is_err(), "writing past the end must fail");
    }

    #[test]
    fn journal_merges_consecutive_disk_writes_only() {
        let j = Journal::default();
        let mut d = MemDisk::new("/dev/disk/by-id/x", 1 << 30, 512).recording(j.clone());
        d.write_all(&[0u8; 512]).unwrap();
        d.write_all(&[0u8; 512]).unwrap();
        d.write_all(&[1u8; 512]).unwrap();
        d.seek(SeekFrom::Start(0)).unwrap();
        d.write_all(&[0u8; 512]).unwrap();
        let e = j.take();
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(
            e[0].to_string(),
            "write 1 KiB of zeros to /dev/disk/by-id/x at byte 0"
        );
        assert_eq!(
            e[1].to_string(),
            "write 512 B to /dev/disk/by-id/x at byte 1024"
        );
        assert!(j.effects().is_empty());
    }

    #[test]
    fn dry_run_records_commands_without_secrets() {
        let h = DryRunHost::new();
        let out = h
            .run(&Cmd::new("chpasswd").secret_stdin("root:hunter2"))
            .unwrap();
        assert_eq!(out, Output::default());
        h.write_file(Path::new("/target/etc/hostname"), b"tappaas1\n", 0o644)
            .unwrap();
        let r = h.render();
        assert!(!r.contains("hunter2"));
        assert_eq!(
            r,
            "  1. run chpasswd (with secret stdin)\n  2. write file /target/etc/hostname (9 bytes, mode 0644)\n"
        );
    }

    #[test]
    fn dry_run_refuses_unplanned_and_non_by_id_disks() {
        let h = DryRunHost::new().with_disk("/dev/disk/by-id/virtio-a", 1 << 30, 512);
        assert!(h.open_disk(Path::new("/dev/disk/by-id/virtio-a")).is_ok());
        assert!(h.open_disk(Path::new("/dev/disk/by-id/virtio-b")).is_err());
        assert!(h.open_disk(Path::new("/dev/vda")).is_err());
    }
}
