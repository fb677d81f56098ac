//! [`DryRunHost`]: records every effect as an [`Effect`], performs none.
//!
//! Disks are simulated by [`MemDisk`]: a sparse in-memory image of the planned size that reads
//! zeros where nothing was written. So the engine runs its whole logic in a dry run, including
//! reading back and verifying the partition table it "wrote", and the journal shows exactly which
//! bytes a real run would write. What a dry run cannot show is the disks' current content: it
//! starts from blank disks, so the old partitions a real wipe would clear do not appear.

use super::{Cmd, CmdError, DiskIo, DiskPolicy, Host, HostError, Output, PartitionNode};
use crate::plan::Plan;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
}

/// `16 MiB`, `16 KiB`, `512 B`: exact, in the unit that divides.
pub(crate) fn exact_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    for (unit, name) in [(KIB * KIB * KIB, "GiB"), (KIB * KIB, "MiB"), (KIB, "KiB")] {
        if n >= unit && n % unit == 0 {
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
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

const BLOCK: u64 = 4096;

#[derive(Debug)]
struct Store {
    size: u64,
    sector: u32,
    /// Non-zero 4 KiB blocks by index; absent blocks read as zeros.
    blocks: BTreeMap<u64, Box<[u8]>>,
}

/// A sparse in-memory disk. Clones share the same content (each has its own position), so a test
/// can keep a handle to a disk it gave to the engine.
#[derive(Clone)]
pub struct MemDisk {
    store: Arc<Mutex<Store>>,
    path: PathBuf,
    pos: u64,
    journal: Option<Journal>,
}

impl fmt::Debug for MemDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.store);
        write!(
            f,
            "MemDisk({}, {} bytes, {}-byte sectors, {} blocks written)",
            self.path.display(),
            s.size,
            s.sector,
            s.blocks.len()
        )
    }
}

impl MemDisk {
    /// A blank disk of `size` bytes with `sector`-byte logical sectors, known as `path`.
    pub fn new(path: impl Into<PathBuf>, size: u64, sector: u32) -> MemDisk {
        MemDisk {
            store: Arc::new(Mutex::new(Store {
                size,
                sector,
                blocks: BTreeMap::new(),
            })),
            path: path.into(),
            pos: 0,
            journal: None,
        }
    }

    /// Records every write into `journal` from now on.
    pub fn recording(mut self, journal: Journal) -> MemDisk {
        self.journal = Some(journal);
        self
    }

    /// Reads `len` bytes at `offset` (zeros past the end of what was written).
    pub fn read_at(&self, offset: u64, len: usize) -> Vec<u8> {
        let s = lock(&self.store);
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let at = offset + done as u64;
            let (idx, within) = (at / BLOCK, (at % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(len - done);
            if let Some(b) = s.blocks.get(&idx) {
                out[done..done + n].copy_from_slice(&b[within..within + n]);
            }
            done += n;
        }
        out
    }

    /// Offsets and lengths of the non-zero 4 KiB blocks, merged into ranges.
    pub fn written_ranges(&self) -> Vec<(u64, u64)> {
        let s = lock(&self.store);
        let mut out: Vec<(u64, u64)> = Vec::new();
        for idx in s.blocks.keys() {
            match out.last_mut() {
                Some((o, l)) if *o + *l == idx * BLOCK => *l += BLOCK,
                _ => out.push((idx * BLOCK, BLOCK)),
            }
        }
        out
    }

    fn write_at(&self, offset: u64, buf: &[u8]) {
        let mut s = lock(&self.store);
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let (idx, within) = (at / BLOCK, (at % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(buf.len() - done);
            let chunk = &buf[done..done + n];
            let zero = chunk.iter().all(|&b| b == 0);
            match s.blocks.get_mut(&idx) {
                Some(b) => {
                    b[within..within + n].copy_from_slice(chunk);
                    if zero && b.iter().all(|&x| x == 0) {
                        s.blocks.remove(&idx);
                    }
                }
                None if zero => {}
                None => {
                    let mut b = vec![0u8; BLOCK as usize].into_boxed_slice();
                    b[within..within + n].copy_from_slice(chunk);
                    s.blocks.insert(idx, b);
                }
            }
            done += n;
        }
    }
}

impl Read for MemDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = lock(&self.store).size;
        let n = (size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        buf[..n].copy_from_slice(&self.read_at(self.pos, n));
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for MemDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let size = lock(&self.store).size;
        if self.pos >= size && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "write past the end of {} ({size} bytes)",
                    self.path.display()
                ),
            ));
        }
        let n = (size - self.pos).min(buf.len() as u64) as usize;
        self.write_at(self.pos, &buf[..n]);
        if let Some(j) = &self.journal {
            j.push(Effect::WriteDisk {
                disk: self.path.clone(),
                offset: self.pos,
                len: n as u64,
                zeros: buf[..n].iter().all(|&b| b == 0),
            });
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let size = lock(&self.store).size;
        let new = match pos {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

impl DiskIo for MemDisk {
    fn path(&self) -> &Path {
        &self.path
    }
    fn size_bytes(&self) -> u64 {
        lock(&self.store).size
    }
    fn logical_sector_size(&self) -> u32 {
        lock(&self.store).sector
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The dry-run host: knows the planned disks, applies the production disk policy, records
/// every effect in order, and touches nothing. Commands "succeed" with empty output.
#[derive(Debug, Default)]
pub struct DryRunHost {
    policy: DiskPolicy,
    journal: Journal,
    disks: Mutex<BTreeMap<PathBuf, MemDisk>>,
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

    /// A dry-run host with a blank simulated disk for every disk the plan writes, at its
    /// planned by-id path, size and sector size.
    pub fn for_plan(plan: &Plan) -> DryRunHost {
        plan.disks.iter().fold(DryRunHost::new(), |h, d| {
            h.with_disk(&d.disk.by_id, d.disk.size_bytes, d.disk.logical_sector_size)
        })
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
        Ok(Output::default())
    }

    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), HostError> {
        self.journal.push(Effect::WriteFile {
            path: path.to_path_buf(),
            bytes: contents.len(),
            mode,
        });
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
