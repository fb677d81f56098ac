//! [`MemDisk`]: a sparse in-memory disk for the dry run and the tests.

use super::dryrun::{lock, Effect, Journal};
use super::DiskIo;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    pub(super) pos: u64,
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
