//! `probe --capture DIR`: copy exactly the part of a root that a probe reads, so that
//! `probe --root DIR` replays the same [`Inventory`] anywhere (bug reports, new fixtures).

use super::root::{resolve, DirRoot, Node, SysRoot, Tree};
use crate::inventory::Inventory;
use anyhow::{bail, Context};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One access a probe made, by logical path (as asked, before symlinks are followed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// `read` / `read_to_string`.
    Read(String),
    /// `read_link`.
    ReadLink(String),
    /// `read_dir`.
    List(String),
    /// `exists` / `is_dir`.
    Stat(String),
}

/// A [`SysRoot`] that records every path asked of the root it wraps.
pub struct RecordingRoot<'a> {
    inner: &'a dyn SysRoot,
    log: RefCell<BTreeSet<Access>>,
}

impl<'a> RecordingRoot<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn SysRoot) -> Self {
        RecordingRoot {
            inner,
            log: RefCell::new(BTreeSet::new()),
        }
    }

    /// Every distinct access so far, sorted.
    pub fn accesses(&self) -> Vec<Access> {
        self.log.borrow().iter().cloned().collect()
    }

    fn note(&self, a: Access) {
        self.log.borrow_mut().insert(a);
    }
}

impl SysRoot for RecordingRoot<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.note(Access::Read(path.to_string()));
        self.inner.read(path)
    }
    fn read_link(&self, path: &str) -> io::Result<String> {
        self.note(Access::ReadLink(path.to_string()));
        self.inner.read_link(path)
    }
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.note(Access::List(path.to_string()));
        self.inner.read_dir(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.note(Access::Stat(path.to_string()));
        self.inner.exists(path)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.note(Access::Stat(path.to_string()));
        self.inner.is_dir(path)
    }
    fn display_path(&self, path: &str) -> String {
        self.inner.display_path(path)
    }
}

/// What a capture wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureReport {
    /// Regular files written.
    pub files: usize,
    /// Directories created.
    pub dirs: usize,
    /// Symlinks recreated.
    pub links: usize,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// The inventory probed while capturing (a probe of `dest` gives the same).
    pub inventory: Inventory,
}

/// Probes `root` and copies every file, directory and symlink the probe touched into `dest`
/// (which must not exist or be empty). Reads only from `root`.
pub fn capture(root: &Path, dest: &Path) -> anyhow::Result<CaptureReport> {
    if fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        bail!("capture destination {} is not empty", dest.display());
    }
    let src = DirRoot::new(root);
    let rec = RecordingRoot::new(&src);
    let inventory = super::probe(&rec)?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut w = Writer {
        src: &src,
        dest: dest.to_path_buf(),
        report: CaptureReport::default(),
    };
    for access in rec.accesses() {
        w.copy(&access)?;
    }
    w.report.inventory = inventory;
    Ok(w.report)
}

struct Writer<'a> {
    src: &'a DirRoot,
    dest: PathBuf,
    report: CaptureReport,
}

impl Writer<'_> {
    fn copy(&mut self, access: &Access) -> anyhow::Result<()> {
        let (path, follow) = match access {
            Access::Read(p) | Access::List(p) | Access::Stat(p) => (p, true),
            Access::ReadLink(p) => (p, false),
        };
        let mut met = Vec::new();
        let resolved = resolve(
            self.src,
            path,
            follow,
            &mut |p, t| {
                met.push((p.to_string(), t.to_string()));
            },
            None,
        );
        // Every link met is recreated, even when the lookup then fails: the replay must fail
        // the same way.
        for (p, t) in met {
            self.link(&p, &t)?;
        }
        let Ok((phys, node)) = resolved else {
            return Ok(());
        };
        match (access, node) {
            (Access::ReadLink(_), Node::Link(t)) => self.link(&phys, &t)?,
            (Access::Read(_) | Access::Stat(_), Node::File) => self.file(&phys)?,
            (Access::Stat(_), Node::Dir) => self.dir(&phys)?,
            (Access::List(_), Node::Dir) => {
                self.dir(&phys)?;
                let names = self.src.list_phys(&phys).unwrap_or_default();
                for name in names {
                    let child = if phys.is_empty() {
                        name
                    } else {
                        format!("{phys}/{name}")
                    };
                    match self.src.lstat(&child) {
                        Ok(Node::Link(t)) => self.link(&child, &t)?,
                        Ok(Node::Dir) => self.dir(&child)?,
                        Ok(Node::File) => self.file(&child)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn target(&self, phys: &str) -> anyhow::Result<Option<PathBuf>> {
        let full = self.dest.join(phys);
        if fs::symlink_metadata(&full).is_ok() {
            return Ok(None);
        }
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok(Some(full))
    }

    fn link(&mut self, phys: &str, text: &str) -> anyhow::Result<()> {
        if let Some(full) = self.target(phys)? {
            std::os::unix::fs::symlink(text, &full)
                .with_context(|| format!("creating the symlink {}", full.display()))?;
            self.report.links += 1;
        }
        Ok(())
    }

    fn dir(&mut self, phys: &str) -> anyhow::Result<()> {
        if phys.is_empty() {
            return Ok(());
        }
        if let Some(full) = self.target(phys)? {
            fs::create_dir(&full).with_context(|| format!("creating {}", full.display()))?;
            self.report.dirs += 1;
        }
        Ok(())
    }

    fn file(&mut self, phys: &str) -> anyhow::Result<()> {
        // Unreadable attributes (a down NIC's `carrier`, root-only DMI serials) are left out:
        // the probe treats a missing file exactly as an unreadable one.
        let Ok(bytes) = self.src.read_phys(phys) else {
            return Ok(());
        };
        if let Some(full) = self.target(phys)? {
            fs::write(&full, &bytes).with_context(|| format!("writing {}", full.display()))?;
            self.report.files += 1;
            self.report.bytes += bytes.len() as u64;
        }
        Ok(())
    }
}
