//! Reading side of root image extraction: open a squashfs with `backhand`, walk its
//! directory table into a flat, validated entry list, and read file data with `pread`
//! so that several workers can decompress at once without sharing a seek position.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, ensure, Context, Result};
use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::v4::inode::{Inode, InodeInner};
use backhand::{DataSize, Fragment, Squashfs};

use super::xattr::{XattrSet, XattrTable};

/// Fragment index meaning "this file has no tail in a fragment block".
const NO_FRAGMENT: u32 = 0xffff_ffff;
/// Inode xattr index meaning "no extended attributes".
const NO_XATTR: u32 = 0xffff_ffff;
/// Largest data block squashfs allows (1 MiB); bounds every decompression buffer.
const MAX_BLOCK: usize = 1 << 20;

/// Owner, permissions and time of one image inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch (squashfs keeps whole seconds).
    pub mtime: u32,
    /// Index into [`Image::xattrs`], if the inode carries extended attributes.
    pub xattrs: Option<usize>,
}

/// Where a regular file's bytes live in the image.
#[derive(Debug, Clone)]
pub(crate) struct FileData {
    pub size: u64,
    pub blocks_start: u64,
    pub blocks: Vec<DataSize>,
    /// `(fragment index, offset in the fragment block)` of the tail, if any.
    pub fragment: Option<(u32, u32)>,
}

/// What kind of thing an entry is, with what it takes to create it.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A directory; its children are `entries[children]` (contiguous by construction).
    Dir {
        children: Range<usize>,
    },
    File(FileData),
    Symlink(Vec<u8>),
    CharDev(u32),
    BlockDev(u32),
    Fifo,
    Socket,
    /// A second (or later) name of the non-directory inode created for `entries[target]`.
    HardLink {
        target: usize,
    },
}

/// One name in the image. `entries[0]` is the root (path "").
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path relative to the extraction root, built only from validated single names.
    pub path: PathBuf,
    pub meta: Meta,
    pub kind: Kind,
}

impl Entry {
    /// The last path component: what `*at` calls get, relative to the parent's fd.
    pub fn name(&self) -> &OsStr {
        self.path.file_name().unwrap_or_else(|| OsStr::new("."))
    }
}

/// An opened image: validated entry list plus what workers need to read file data.
pub(crate) struct Image {
    /// Display name for errors ("pve-base.squashfs").
    pub label: String,
    pub file: File,
    pub compressor: Compressor,
    pub block_size: u32,
    pub fragments: Vec<Fragment>,
    pub entries: Vec<Entry>,
    pub xattrs: Vec<XattrSet>,
    pub fragment_cache: FragmentCache,
}

impl Image {
    /// Open `path`, read the superblock and tables, and walk every directory.
    pub fn open(path: &Path) -> Result<Self> {
        let label = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let file = File::open(path).with_context(|| format!("opening image {}", path.display()))?;
        let reader = BufReader::new(
            file.try_clone()
                .with_context(|| format!("opening image {}", path.display()))?,
        );
        let sqfs = Squashfs::from_reader(reader)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("reading the squashfs tables of {}", path.display()))?;
        let sb = sqfs.superblock;
        ensure!(
            (4096..=MAX_BLOCK as u32).contains(&sb.block_size) && sb.block_size.is_power_of_two(),
            "{label}: implausible block size {}",
            sb.block_size
        );
        let xtable = XattrTable::read(&file, &sb, sb.compressor)
            .with_context(|| format!("reading the xattr table of {}", path.display()))?;
        let mut walker = Walker {
            sqfs: &sqfs,
            xtable: &xtable,
            entries: Vec::with_capacity(sb.inode_count as usize),
            first_name_of_inode: HashMap::new(),
        };
        walker
            .walk()
            .with_context(|| format!("reading the directory tree of {}", path.display()))?;
        let entries = walker.entries;
        Ok(Self {
            label,
            file,
            compressor: sb.compressor,
            block_size: sb.block_size,
            fragments: sqfs.fragments.unwrap_or_default(),
            entries,
            xattrs: xtable.sets,
            fragment_cache: FragmentCache::default(),
        })
    }
}

/// Builds `entries` breadth-first per directory: a directory's children are appended as one
/// contiguous run, so every child has a larger index than its parent.
struct Walker<'a, 'b> {
    sqfs: &'a Squashfs<'b>,
    xtable: &'a XattrTable,
    entries: Vec<Entry>,
    first_name_of_inode: HashMap<u32, usize>,
}

impl<'a> Walker<'a, '_> {
    fn walk(&mut self) -> Result<()> {
        let root = &self.sqfs.root_inode;
        let meta = self.meta(root)?;
        self.entries.push(Entry {
            path: PathBuf::new(),
            meta,
            kind: Kind::Dir { children: 0..0 },
        });
        let mut visited = HashSet::from([root.header.inode_number]);
        let mut pending = vec![(0usize, root.header.inode_number)];
        while let Some((dir_idx, inode_no)) = pending.pop() {
            let inode = self.inode(inode_no)?;
            let listing = self.listing(inode)?;
            let start = self.entries.len();
            let mut seen = HashSet::with_capacity(listing.len());
            for (name, child_no, dtype) in listing {
                let parent = &self.entries[dir_idx].path;
                check_name(&name).with_context(|| format!("in directory /{}", parent.display()))?;
                let path = parent.join(OsStr::from_bytes(&name));
                ensure!(seen.insert(name), "duplicate entry /{}", path.display());
                let child = self.inode(child_no)?;
                ensure!(
                    base_type(&child.inner) == dtype,
                    "/{}: directory entry type {dtype} does not match its inode",
                    path.display()
                );
                let meta = self.meta(child)?;
                let idx = self.entries.len();
                let kind = if dtype == 1 {
                    ensure!(
                        visited.insert(child_no),
                        "/{}: directory loop",
                        path.display()
                    );
                    pending.push((idx, child_no));
                    Kind::Dir { children: 0..0 }
                } else if let Some(&target) = self.first_name_of_inode.get(&child_no) {
                    Kind::HardLink { target }
                } else {
                    self.first_name_of_inode.insert(child_no, idx);
                    leaf_kind(child).with_context(|| format!("/{}", path.display()))?
                };
                self.entries.push(Entry { path, meta, kind });
            }
            let end = self.entries.len();
            self.entries[dir_idx].kind = Kind::Dir {
                children: start..end,
            };
        }
        Ok(())
    }

    fn inode(&self, number: u32) -> Result<&'a Inode> {
        self.sqfs
            .inodes
            .get(&number)
            .ok_or_else(|| anyhow!("inode {number} is missing"))
    }

    fn meta(&self, inode: &Inode) -> Result<Meta> {
        let h = inode.header;
        let id = |i: u16| {
            self.sqfs
                .id
                .get(usize::from(i))
                .map(|id| id.num)
                .ok_or_else(|| anyhow!("inode {}: id index {i} out of range", h.inode_number))
        };
        let xattr_index = match &inode.inner {
            InodeInner::ExtendedDirectory(d) => d.xattr_index,
            InodeInner::ExtendedFile(f) => f.xattr_index,
            InodeInner::ExtendedSymlink(s) => s.xattr_index,
            InodeInner::ExtendedBlockDevice(d) | InodeInner::ExtendedCharacterDevice(d) => {
                d.xattr_index
            }
            InodeInner::ExtendedNamedPipe(p) | InodeInner::ExtendedSocket(p) => p.xattr_index,
            _ => NO_XATTR,
        };
        let xattrs = if xattr_index == NO_XATTR {
            None
        } else {
            Some(
                self.xtable
                    .index(xattr_index)
                    .with_context(|| format!("inode {}", h.inode_number))?,
            )
        };
        Ok(Meta {
            perm: u32::from(h.permissions) & 0o7777,
            uid: id(h.uid)?,
            gid: id(h.gid)?,
            mtime: h.mtime,
            xattrs,
        })
    }

    /// Parse a directory's listing into `(name, inode number, basic type)` triples.
    fn listing(&self, dir: &Inode) -> Result<Vec<(Vec<u8>, u32, u16)>> {
        let (block, offset, size) = match &dir.inner {
            InodeInner::BasicDirectory(d) => (
                u64::from(d.block_index),
                usize::from(d.block_offset),
                u64::from(d.file_size),
            ),
            InodeInner::ExtendedDirectory(d) => (
                u64::from(d.block_index),
                usize::from(d.block_offset),
                u64::from(d.file_size),
            ),
            _ => bail!("inode {} is not a directory", dir.header.inode_number),
        };
        // The stored size counts 3 bytes for the "." and ".." entries that are not stored.
        let len = usize::try_from(size.saturating_sub(3))?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let (map, bytes) = &self.sqfs.dir_blocks;
        let bad = || {
            anyhow!(
                "directory inode {} points outside the directory table",
                dir.header.inode_number
            )
        };
        let base = usize::try_from(*map.get(&block).ok_or_else(bad)?)?;
        let mut buf = bytes
            .get(base + offset..base + offset + len)
            .ok_or_else(bad)?;
        let mut out = Vec::new();
        while !buf.is_empty() {
            let count = u32_at(buf, 0)? as usize + 1;
            let inode_base = u32_at(buf, 8)?;
            ensure!(count <= 256, "corrupt directory header (count {count})");
            buf = &buf[12..];
            for _ in 0..count {
                let delta = i32::from(u16_at(buf, 2)? as i16);
                let dtype = u16_at(buf, 4)?;
                let name_len = usize::from(u16_at(buf, 6)?) + 1;
                let name = buf
                    .get(8..8 + name_len)
                    .ok_or_else(|| anyhow!("truncated directory entry"))?;
                let number = inode_base
                    .checked_add_signed(delta)
                    .ok_or_else(|| anyhow!("corrupt inode number in directory entry"))?;
                out.push((name.to_vec(), number, dtype));
                buf = &buf[8 + name_len..];
            }
        }
        Ok(out)
    }
}

/// A single path component that cannot escape: not empty, `.`, `..`, and no `/` or NUL.
fn check_name(name: &[u8]) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name != b"."
            && name != b".."
            && !name.contains(&b'/')
            && !name.contains(&0),
        "refusing unsafe entry name {:?}",
        String::from_utf8_lossy(name)
    );
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b
        .get(at..at + 2)
        .ok_or_else(|| anyhow!("truncated directory table"))?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b
        .get(at..at + 4)
        .ok_or_else(|| anyhow!("truncated directory table"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The basic (non-extended) squashfs type number of an inode, as directory entries store it.
fn base_type(inner: &InodeInner) -> u16 {
    match inner {
        InodeInner::BasicDirectory(_) | InodeInner::ExtendedDirectory(_) => 1,
        InodeInner::BasicFile(_) | InodeInner::ExtendedFile(_) => 2,
        InodeInner::BasicSymlink(_) | InodeInner::ExtendedSymlink(_) => 3,
        InodeInner::BasicBlockDevice(_) | InodeInner::ExtendedBlockDevice(_) => 4,
        InodeInner::BasicCharacterDevice(_) | InodeInner::ExtendedCharacterDevice(_) => 5,
        InodeInner::BasicNamedPipe(_) | InodeInner::ExtendedNamedPipe(_) => 6,
        InodeInner::BasicSocket(_) | InodeInner::ExtendedSocket(_) => 7,
    }
}

fn leaf_kind(inode: &Inode) -> Result<Kind> {
    let frag = |index: u32, offset: u32| (index != NO_FRAGMENT).then_some((index, offset));
    Ok(match &inode.inner {
        InodeInner::BasicFile(f) => Kind::File(FileData {
            size: u64::from(f.file_size),
            blocks_start: u64::from(f.blocks_start),
            blocks: f.block_sizes.clone(),
            fragment: frag(f.frag_index, f.block_offset),
        }),
        InodeInner::ExtendedFile(f) => Kind::File(FileData {
            size: f.file_size,
            blocks_start: f.blocks_start,
            blocks: f.block_sizes.clone(),
            fragment: frag(f.frag_index, f.block_offset),
        }),
        InodeInner::BasicSymlink(s) => Kind::Symlink(s.target_path.clone()),
        InodeInner::ExtendedSymlink(s) => Kind::Symlink(s.target_path.clone()),
        InodeInner::BasicCharacterDevice(d) => Kind::CharDev(d.device_number),
        InodeInner::ExtendedCharacterDevice(d) => Kind::CharDev(d.device_number),
        InodeInner::BasicBlockDevice(d) => Kind::BlockDev(d.device_number),
        InodeInner::ExtendedBlockDevice(d) => Kind::BlockDev(d.device_number),
        InodeInner::BasicNamedPipe(_) | InodeInner::ExtendedNamedPipe(_) => Kind::Fifo,
        InodeInner::BasicSocket(_) | InodeInner::ExtendedSocket(_) => Kind::Socket,
        InodeInner::BasicDirectory(_) | InodeInner::ExtendedDirectory(_) => {
            bail!("unexpected directory inode")
        }
    })
}

/// Decompressed fragment blocks shared by all workers. Consecutive small files share a
/// fragment block, but consecutive batches go to different workers: without sharing, the
/// same 128 KiB block was decompressed ~2.3 times on a root-like image.
#[derive(Debug, Default)]
pub(crate) struct FragmentCache {
    slots: Mutex<VecDeque<(u32, Arc<Vec<u8>>)>>,
}

/// Fragment blocks kept by [`FragmentCache`] (each at most one block, 128 KiB by default).
const FRAGMENT_SLOTS: usize = 32;

impl FragmentCache {
    fn get(&self, index: u32) -> Option<Arc<Vec<u8>>> {
        let slots = self.slots.lock().ok()?;
        slots
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| Arc::clone(b))
    }

    fn put(&self, index: u32, block: Arc<Vec<u8>>) {
        if let Ok(mut slots) = self.slots.lock() {
            if slots.len() >= FRAGMENT_SLOTS {
                slots.pop_front();
            }
            slots.push_back((index, block));
        }
    }
}

/// Per-worker reader of file data: owns its scratch buffers and decompression context.
pub(crate) struct DataReader<'a> {
    img: &'a Image,
    raw: Vec<u8>,
    frag: Option<(u32, Arc<Vec<u8>>)>,
    /// Reused zstd context (backhand's generic path creates one per block).
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl<'a> DataReader<'a> {
    pub fn new(img: &'a Image) -> Self {
        Self {
            img,
            raw: Vec::with_capacity(MAX_BLOCK),
            frag: None,
            zstd: None,
        }
    }

    /// Stream a file's contents as `(offset, bytes)` chunks; holes (sparse blocks) are skipped,
    /// so the caller must extend the file to `data.size` itself.
    pub fn for_each_chunk(
        &mut self,
        data: &FileData,
        out: &mut Vec<u8>,
        mut sink: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let bs = u64::from(self.img.block_size);
        let mut disk = data.blocks_start;
        let mut pos = 0u64;
        for ds in &data.blocks {
            let want = (data.size - pos).min(bs);
            ensure!(want > 0, "more data blocks than the file size needs");
            if ds.size() != 0 {
                self.read_block(disk, *ds, out)
                    .with_context(|| format!("data block at offset {disk}"))?;
                ensure!(
                    out.len() as u64 == want,
                    "data block at offset {disk} holds {} bytes, expected {want}",
                    out.len()
                );
                sink(pos, out)?;
                disk += u64::from(ds.size());
            }
            pos += want;
        }
        if let Some((index, offset)) = data.fragment {
            let tail = data.size - pos;
            let block = self.fragment(index)?;
            let start = offset as usize;
            let bytes = usize::try_from(tail)
                .ok()
                .and_then(|t| block.get(start..start.checked_add(t)?))
                .ok_or_else(|| anyhow!("fragment {index} is shorter than the file tail"))?;
            sink(pos, bytes)?;
        } else {
            ensure!(
                pos == data.size,
                "data blocks cover {pos} of {} bytes",
                data.size
            );
        }
        Ok(())
    }

    fn fragment(&mut self, index: u32) -> Result<Arc<Vec<u8>>> {
        if let Some((i, block)) = &self.frag {
            if *i == index {
                return Ok(Arc::clone(block));
            }
        }
        let cache = &self.img.fragment_cache;
        let block = match cache.get(index) {
            Some(block) => block,
            None => {
                let f = *self
                    .img
                    .fragments
                    .get(index as usize)
                    .ok_or_else(|| anyhow!("fragment index {index} out of range"))?;
                let mut buf = Vec::new();
                self.read_block(f.start, f.size, &mut buf)
                    .with_context(|| format!("fragment block {index} at offset {}", f.start))?;
                ensure!(
                    buf.len() <= self.img.block_size as usize,
                    "fragment {index} is larger than a block"
                );
                let block = Arc::new(buf);
                cache.put(index, Arc::clone(&block));
                block
            }
        };
        self.frag = Some((index, Arc::clone(&block)));
        Ok(block)
    }

    /// Read the block of on-disk size `ds` at `offset` and decompress it into `out`.
    fn read_block(&mut self, offset: u64, ds: DataSize, out: &mut Vec<u8>) -> Result<()> {
        let len = ds.size() as usize;
        ensure!(len <= MAX_BLOCK, "block claims {len} bytes");
        out.clear();
        if ds.uncompressed() {
            out.resize(len, 0);
            self.img.file.read_exact_at(out, offset)?;
            return Ok(());
        }
        self.raw.resize(len, 0);
        self.img.file.read_exact_at(&mut self.raw, offset)?;
        out.reserve(MAX_BLOCK);
        if self.img.compressor == Compressor::Zstd {
            let z = match &mut self.zstd {
                Some(z) => z,
                None => self.zstd.insert(zstd::bulk::Decompressor::new()?),
            };
            z.decompress_to_buffer(&self.raw, out)
                .map_err(|e| anyhow!("zstd: {e}"))?;
        } else {
            DefaultCompressor
                .decompress(&self.raw, out, self.img.compressor)
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    }
}
