//! The bundle format: a directory tree (files, directories, symlinks) packed into one byte string.
//!
//! `build.rs` packs every `hardware-profiles/fixtures/<id>/` into a bundle that the binary embeds,
//! and [`super::MemRoot`] unpacks it. This file uses only `std` because `build.rs` includes it
//! with `#[path]` (a build script cannot depend on the crate it builds).
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic    b"TAPPAAS-BUNDLE-1\n"
//! entry*   kind: u8        b'D' directory, b'F' file, b'L' symlink
//!          path_len: u32   then path_len bytes of UTF-8 path, relative, '/'-separated
//!          data_len: u64   then data_len bytes: file contents, link text, nothing for 'D'
//! ```
//!
//! Entries appear parents first (a directory before its contents), sorted by path, so the same
//! tree always gives the same bytes. Link text is stored verbatim and never resolved: fixture
//! links may point outside the captured subset, or at absolute paths of the captured machine.

use std::fs;
use std::io;
use std::path::Path;

/// File magic, first bytes of every bundle.
pub const MAGIC: &[u8] = b"TAPPAAS-BUNDLE-1\n";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link; the data is the link text.
    Link,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Dir => b'D',
            Kind::File => b'F',
            Kind::Link => b'L',
        }
    }
}

/// One decoded entry, borrowing from the bundle bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Kind of node.
    pub kind: Kind,
    /// Relative '/'-separated path.
    pub path: &'a str,
    /// File contents or link text.
    pub data: &'a [u8],
}

/// Appends one entry to `out` (which must already start with [`MAGIC`]).
pub fn push(out: &mut Vec<u8>, kind: Kind, path: &str, data: &[u8]) {
    out.push(kind.tag());
    // Paths and files in a fixture are far below 4 GiB; saturate rather than wrap if not.
    out.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
}

/// Packs the tree under `dir` (not following symlinks). Other node types (fifos, devices,
/// sockets) and non-UTF-8 names are errors: a fixture holds none.
pub fn pack_dir(dir: &Path) -> io::Result<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    pack_into(dir, "", &mut out)?;
    Ok(out)
}

fn pack_into(base: &Path, rel: &str, out: &mut Vec<u8>) -> io::Result<()> {
    let here = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(&here)? {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|n| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("non-UTF-8 name {n:?} in {}", here.display()),
            )
        })?;
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let full = base.join(&path);
        let meta = fs::symlink_metadata(&full)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let text = fs::read_link(&full)?;
            let text = text.to_str().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("non-UTF-8 link text in {}", full.display()),
                )
            })?;
            push(out, Kind::Link, &path, text.as_bytes());
        } else if ft.is_dir() {
            push(out, Kind::Dir, &path, &[]);
            pack_into(base, &path, out)?;
        } else if ft.is_file() {
            push(out, Kind::File, &path, &fs::read(&full)?);
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is neither file, directory nor symlink", full.display()),
            ));
        }
    }
    Ok(())
}

/// Decodes a bundle. Fails on a bad magic, a truncated entry, an unknown kind or a bad path.
pub fn decode(bytes: &[u8]) -> io::Result<Vec<Entry<'_>>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bundle: {what}"));
    let mut rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("bad magic"))?;
    let mut entries = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        let kind = match tag {
            b'D' => Kind::Dir,
            b'F' => Kind::File,
            b'L' => Kind::Link,
            _ => return Err(bad("unknown entry kind")),
        };
        let (len, tail) = split_len::<4>(tail).ok_or_else(|| bad("truncated path length"))?;
        let (path, tail) = split_at(tail, len).ok_or_else(|| bad("truncated path"))?;
        let path = std::str::from_utf8(path).map_err(|_| bad("non-UTF-8 path"))?;
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c.is_empty())
        {
            return Err(bad("path is not a clean relative path"));
        }
        let (len, tail) = split_len::<8>(tail).ok_or_else(|| bad("truncated data length"))?;
        let (data, tail) = split_at(tail, len).ok_or_else(|| bad("truncated data"))?;
        entries.push(Entry { kind, path, data });
        rest = tail;
    }
    Ok(entries)
}

fn split_len<const N: usize>(b: &[u8]) -> Option<(usize, &[u8])> {
    let (head, tail) = split_at(b, N)?;
    let mut buf = [0u8; 8];
    buf[..N].copy_from_slice(head);
    Some((usize::try_from(u64::from_le_bytes(buf)).ok()?, tail))
}

fn split_at(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (b.len() >= n).then(|| b.split_at(n))
}
