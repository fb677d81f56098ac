//! An in-memory directory tree (files, symlinks, directories implied by paths), written to and
//! read back from disk, so generated fixtures can be compared with committed ones.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

/// One node of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with its bytes.
    File(Vec<u8>),
    /// A symbolic link with its (verbatim, unresolved) text.
    Link(String),
    /// An empty directory (non-empty ones are implied by their contents).
    Dir,
}

/// Relative `/`-separated path -> node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// The nodes, sorted by path.
    pub nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Adds a file.
    pub fn file(&mut self, path: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.nodes.insert(path.into(), Node::File(data.into()));
    }

    /// Adds a text file ending in a newline, as sysfs attributes read.
    pub fn attr(&mut self, path: impl Into<String>, value: impl std::fmt::Display) {
        self.file(path, format!("{value}\n"));
    }

    /// Adds a symlink.
    pub fn link(&mut self, path: impl Into<String>, target: impl Into<String>) {
        self.nodes.insert(path.into(), Node::Link(target.into()));
    }

    /// Adds an empty directory.
    pub fn dir(&mut self, path: impl Into<String>) {
        self.nodes.insert(path.into(), Node::Dir);
    }

    /// Writes the tree under `root` (created if missing). Existing files are overwritten.
    pub fn write_to(&self, root: &Path) -> io::Result<()> {
        fs::create_dir_all(root)?;
        for (rel, node) in &self.nodes {
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            match node {
                Node::File(data) => fs::write(&path, data)?,
                Node::Dir => fs::create_dir_all(&path)?,
                Node::Link(target) => {
                    if fs::symlink_metadata(&path).is_ok() {
                        fs::remove_file(&path)?;
                    }
                    std::os::unix::fs::symlink(target, &path)?;
                }
            }
        }
        Ok(())
    }

    /// Reads the tree under `root` (symlinks are not followed; only empty directories are
    /// recorded as [`Node::Dir`]).
    pub fn read_from(root: &Path) -> io::Result<Tree> {
        let mut tree = Tree::default();
        read_into(root, "", &mut tree)?;
        Ok(tree)
    }

    /// Human-readable differences from `other` (empty when equal), at most `max` lines.
    pub fn diff(&self, other: &Tree, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (p, n) in &self.nodes {
            match other.nodes.get(p) {
                None => out.push(format!("only in first: {p}")),
                Some(m) if m != n => out.push(format!("differs: {p}")),
                Some(_) => {}
            }
        }
        for p in other.nodes.keys() {
            if !self.nodes.contains_key(p) {
                out.push(format!("only in second: {p}"));
            }
        }
        out.truncate(max);
        out
    }
}

fn read_into(base: &Path, rel: &str, tree: &mut Tree) -> io::Result<()> {
    let here = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    let mut any = false;
    for entry in fs::read_dir(&here)? {
        let entry = entry?;
        any = true;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            let target = fs::read_link(entry.path())?;
            tree.link(path, target.to_string_lossy().into_owned());
        } else if ft.is_dir() {
            read_into(base, &path, tree)?;
        } else {
            tree.file(path, fs::read(entry.path())?);
        }
    }
    if !any && !rel.is_empty() {
        tree.dir(rel);
    }
    Ok(())
}
