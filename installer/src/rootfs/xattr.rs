//! The squashfs xattr table, which `backhand` does not read (upstream TODO #32).
//!
//! Layout (squashfs 4.0, little endian), from `superblock.xattr_table`:
//! `{u64 kv_start; u32 ids; u32 unused}` then one u64 pointer per metadata block of the
//! id table, whose 16-byte records are `{u64 ref; u32 count; u32 size}`. `ref` points
//! into the key/value metadata stream that starts at `kv_start`: block offset (relative
//! to `kv_start`) in the upper 48 bits, offset in the uncompressed block in the lower 16.
//! Each pair is `{u16 type; u16 name_size; name}` then `{u32 value_size; value}`; when
//! `type & 0x100` the value is stored out of line and the inline value is a u64 ref.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{anyhow, ensure, Context, Result};
use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::SuperBlock;

const NOT_SET: u64 = u64::MAX;
const METADATA_MAX: usize = 8192;
/// Superblock flag: the image was made with `-no-xattrs`.
const NO_XATTRS: u16 = 0x0200;
/// Namespace prefixes by type (`type & 0xff`), as squashfs-tools writes them.
const PREFIXES: [&str; 3] = ["user.", "trusted.", "security."];
/// Sanity bound on the number of distinct xattr sets an image may declare.
const MAX_IDS: u32 = 1 << 20;

/// One inode's extended attributes: `(full name, value)` pairs.
pub(crate) type XattrSet = Vec<(CString, Vec<u8>)>;

/// All xattr sets of an image, indexed by the inodes' `xattr_index`.
#[derive(Debug, Default)]
pub(crate) struct XattrTable {
    pub sets: Vec<XattrSet>,
}

impl XattrTable {
    /// Read and decode the whole table (empty when the image has none).
    pub fn read(file: &File, sb: &SuperBlock, comp: Compressor) -> Result<Self> {
        if sb.xattr_table == NOT_SET || sb.flags & NO_XATTRS != 0 {
            return Ok(Self::default());
        }
        let head = read_at(file, sb.xattr_table, 16)?;
        let kv_start = le64(&head, 0)?;
        let ids = le32(&head, 8)?;
        ensure!(ids <= MAX_IDS, "implausible xattr id count {ids}");
        if ids == 0 {
            return Ok(Self::default());
        }
        let id_bytes = ids as usize * 16;
        let nblocks = id_bytes.div_ceil(METADATA_MAX);
        let ptrs = read_at(file, sb.xattr_table + 16, nblocks * 8)?;
        let mut id_table = Vec::with_capacity(id_bytes);
        let mut first_id_block = u64::MAX;
        for i in 0..nblocks {
            let at = le64(&ptrs, i * 8)?;
            first_id_block = first_id_block.min(at);
            id_table.extend_from_slice(&metadata_block(file, at, comp)?.0);
        }
        ensure!(id_table.len() >= id_bytes, "xattr id table is truncated");
        ensure!(
            kv_start <= first_id_block,
            "xattr table pointers are out of order"
        );

        // The key/value stream runs from kv_start up to the first id block.
        let mut stream = Vec::new();
        let mut block_at = HashMap::new();
        let mut at = kv_start;
        while at < first_id_block {
            let (block, disk_len) = metadata_block(file, at, comp)?;
            block_at.insert(at - kv_start, stream.len());
            stream.extend_from_slice(&block);
            at += disk_len;
        }
        let resolve = |r: u64| -> Result<usize> {
            let base = block_at
                .get(&(r >> 16))
                .ok_or_else(|| anyhow!("xattr ref {r:#x} is dangling"))?;
            Ok(base + (r & 0xffff) as usize)
        };

        let mut sets = Vec::with_capacity(ids as usize);
        for i in 0..ids as usize {
            let rec = &id_table[i * 16..i * 16 + 16];
            let (kv_ref, count) = (le64(rec, 0)?, le32(rec, 8)?);
            let mut pos = resolve(kv_ref)?;
            let mut set = Vec::new();
            for _ in 0..count {
                let kind = le16(&stream, pos)?;
                let name_len = usize::from(le16(&stream, pos + 2)?);
                let name = slice(&stream, pos + 4, name_len)?;
                pos += 4 + name_len;
                let vlen = le32(&stream, pos)? as usize;
                let mut value = slice(&stream, pos + 4, vlen)?;
                pos += 4 + vlen;
                if kind & 0x100 != 0 {
                    let vpos = resolve(le64(value, 0)?)?;
                    let olen = le32(&stream, vpos)? as usize;
                    value = slice(&stream, vpos + 4, olen)?;
                }
                let prefix = PREFIXES
                    .get(usize::from(kind & 0xff))
                    .ok_or_else(|| anyhow!("unknown xattr namespace {}", kind & 0xff))?;
                let full = [prefix.as_bytes(), name].concat();
                let full = CString::new(full).context("xattr name contains NUL")?;
                set.push((full, value.to_vec()));
            }
            sets.push(set);
        }
        Ok(Self { sets })
    }

    /// Validate an inode's `xattr_index`, returning it as an index into `sets`.
    pub fn index(&self, xattr_index: u32) -> Result<usize> {
        let i = xattr_index as usize;
        ensure!(
            i < self.sets.len(),
            "xattr index {xattr_index} out of range"
        );
        Ok(i)
    }
}

/// Read one metadata block at `at`: `(uncompressed bytes, bytes it occupies on disk)`.
fn metadata_block(file: &File, at: u64, comp: Compressor) -> Result<(Vec<u8>, u64)> {
    let header = le16(&read_at(file, at, 2)?, 0)?;
    let len = usize::from(header & 0x7fff);
    ensure!(
        len > 0 && len <= METADATA_MAX,
        "corrupt metadata block header at {at}"
    );
    let raw = read_at(file, at + 2, len)?;
    let data = if header & 0x8000 != 0 {
        raw
    } else {
        let mut out = Vec::with_capacity(METADATA_MAX);
        DefaultCompressor
            .decompress(&raw, &mut out, comp)
            .map_err(|e| anyhow!("decompressing metadata block at {at}: {e}"))?;
        out
    };
    ensure!(
        data.len() <= METADATA_MAX,
        "metadata block at {at} is too large"
    );
    Ok((data, 2 + len as u64))
}

fn read_at(file: &File, at: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, at)
        .with_context(|| format!("reading {len} bytes at {at}"))?;
    Ok(buf)
}

fn slice(b: &[u8], at: usize, len: usize) -> Result<&[u8]> {
    at.checked_add(len)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| anyhow!("xattr data is truncated"))
}

fn le16(b: &[u8], at: usize) -> Result<u16> {
    let s = slice(b, at, 2)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> Result<u32> {
    let s = slice(b, at, 4)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> Result<u64> {
    let s = slice(b, at, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}
