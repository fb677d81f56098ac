//! Read-only access to a machine's root directory: the live `/`, a captured copy on disk, or an
//! in-memory tree (embedded fixtures, tests).
//!
//! Paths are relative and '/'-separated (`sys/block/sda/size`); a leading '/' is ignored.
//! Symlinks are resolved *textually inside the root*: an absolute link text restarts at the
//! root, `..` stops at the root. On the live `/` this is exactly what the kernel does; on a
//! captured tree it means a link such as `sys/block/sda -> ../devices/...` or an absolute
//! `/sys/devices/...` never escapes into the host that replays it. Nothing here writes.

use anyhow::Context;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::bundle;

/// A read-only view of a Linux root directory.
pub trait SysRoot {
    /// Human name of the root for messages: a directory path or `fixture <id>`.
    fn describe(&self) -> String;
    /// Reads a whole file, following symlinks.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Reads the text of a symlink (the final component is not followed; the text is not
    /// resolved and its target need not exist).
    fn read_link(&self, path: &str) -> io::Result<String>;
    /// Names in a directory, sorted.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// The path exists after following symlinks (a dangling link does not exist).
    fn exists(&self, path: &str) -> bool;
    /// The path is a directory after following symlinks.
    fn is_dir(&self, path: &str) -> bool;
    /// Reads a whole file as UTF-8 (invalid bytes replaced).
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        self.read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    /// `path` as shown in messages.
    fn display_path(&self, path: &str) -> String {
        format!("{}:{}", self.describe(), path.trim_start_matches('/'))
    }
}

/// One path component, as seen without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File,
    Link(String),
    Missing,
}

/// The primitive operations on *physical* paths (no symlink in any component) that
/// [`SysRoot`] is built from, shared by [`DirRoot`] and [`MemRoot`].
pub(crate) trait Tree {
    fn lstat(&self, phys: &str) -> io::Result<Node>;
    fn read_phys(&self, phys: &str) -> io::Result<Vec<u8>>;
    fn list_phys(&self, phys: &str) -> io::Result<Vec<String>>;
}

/// Linux gives up after 40 links in one lookup; so do we, so a link loop in a fixture is an
/// error rather than a hang.
const MAX_LINKS: usize = 40;

/// Logical directory path -> physical path, remembered by [`DirRoot`] for one probe: without
/// it every read re-walks `sys/block/X -> ../devices/pci.../block/X` component by component,
/// which is most of a probe's system calls.
pub(crate) type DirCache = Mutex<HashMap<String, String>>;

/// Resolves `path` to a physical path inside the root. `on_link(link_path, text)` is called for
/// every symlink followed, in order (capture recreates exactly these; it passes no cache, since
/// a cached prefix reports no links). Returns the physical path (`""` is the root) and what is
/// there; `Node::Missing` only for the final component.
pub(crate) fn resolve(
    tree: &dyn Tree,
    path: &str,
    follow_last: bool,
    on_link: &mut dyn FnMut(&str, &str),
    cache: Option<&DirCache>,
) -> io::Result<(String, Node)> {
    let orig: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut start = 0;
    if let Some(map) = cache.and_then(|c| c.lock().ok()) {
        // The longest cached proper prefix: the last component is always looked at, since it
        // may be a link that this call must not follow.
        for k in (1..orig.len()).rev() {
            if let Some(phys) = map.get(&orig[..k].join("/")) {
                cur = components(phys).collect();
                start = k;
                break;
            }
        }
    }
    // `todo` is [components of link texts being expanded..., original components left...].
    let mut todo: VecDeque<String> = orig[start..].iter().map(|c| c.to_string()).collect();
    let mut orig_left = todo.len();
    let mut node = Node::Dir;
    let mut links = 0;
    while let Some(comp) = todo.pop_front() {
        if todo.len() < orig_left {
            orig_left = todo.len();
        }
        match node {
            Node::Dir => {}
            Node::Missing => return Err(not_found(path)),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{path}: a component is not a directory"),
                ))
            }
        }
        match comp.as_str() {
            "." => continue,
            ".." => {
                // `..` of the root is the root, as in the kernel.
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(comp);
        let phys = cur.join("/");
        node = tree.lstat(&phys)?;
        if let Node::Link(text) = &node {
            if todo.is_empty() && !follow_last {
                break;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::other(format!(
                    "{path}: too many levels of symbolic links"
                )));
            }
            on_link(&phys, text);
            cur.pop();
            if text.starts_with('/') {
                cur.clear();
            }
            for c in components(text).collect::<Vec<_>>().into_iter().rev() {
                todo.push_front(c);
            }
            node = Node::Dir;
        }
        // A whole original prefix is resolved to a directory: remember it.
        if todo.len() == orig_left && orig_left > 0 && node == Node::Dir {
            if let Some(mut map) = cache.and_then(|c| c.lock().ok()) {
                map.insert(orig[..orig.len() - orig_left].join("/"), cur.join("/"));
            }
        }
    }
    Ok((cur.join("/"), node))
}

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{path}: no such file or directory"),
    )
}

fn sys_read(tree: &dyn Tree, cache: Option<&DirCache>, path: &str) -> io::Result<Vec<u8>> {
    match resolve(tree, path, true, &mut |_, _| {}, cache)? {
        (phys, Node::File) => tree.read_phys(&phys),
        (_, Node::Dir) => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{path}: is a directory"),
        )),
        _ => Err(not_found(path)),
    }
}

fn sys_read_link(tree: &dyn Tree, cache: Option<&DirCache>, path: &str) -> io::Result<String> {
    match resolve(tree, path, false, &mut |_, _| {}, cache)? {
        (_, Node::Link(text)) => Ok(text),
        (_, Node::Missing) => Err(not_found(path)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path}: not a symbolic link"),
        )),
    }
}

fn sys_read_dir(tree: &dyn Tree, cache: Option<&DirCache>, path: &str) -> io::Result<Vec<String>> {
    match resolve(tree, path, true, &mut |_, _| {}, cache)? {
        (phys, Node::Dir) => {
            let mut names = tree.list_phys(&phys)?;
            names.sort();
            Ok(names)
        }
        (_, Node::Missing) => Err(not_found(path)),
        _ => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{path}: not a directory"),
        )),
    }
}

fn sys_node(tree: &dyn Tree, cache: Option<&DirCache>, path: &str) -> Node {
    resolve(tree, path, true, &mut |_, _| {}, cache)
        .map(|(_, n)| n)
        .unwrap_or(Node::Missing)
}

macro_rules! impl_sysroot {
    ($t:ty) => {
        impl SysRoot for $t {
            fn describe(&self) -> String {
                self.describe_root()
            }
            fn read(&self, path: &str) -> io::Result<Vec<u8>> {
                sys_read(self, self.cache(), path)
            }
            fn read_link(&self, path: &str) -> io::Result<String> {
                sys_read_link(self, self.cache(), path)
            }
            fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
                sys_read_dir(self, self.cache(), path)
            }
            fn exists(&self, path: &str) -> bool {
                !matches!(sys_node(self, self.cache(), path), Node::Missing)
            }
            fn is_dir(&self, path: &str) -> bool {
                matches!(sys_node(self, self.cache(), path), Node::Dir)
            }
            fn display_path(&self, path: &str) -> String {
                self.display_in_root(path)
            }
        }
    };
}

/// A root directory on disk: `/` on the live system, or a captured tree.
///
/// It remembers where directories resolved to, so make a new one for each probe of a live
/// system (devices come and go).
#[derive(Debug)]
pub struct DirRoot {
    root: PathBuf,
    dirs: DirCache,
}

impl DirRoot {
    /// A view of the tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirRoot {
            root: root.into(),
            dirs: Mutex::new(HashMap::new()),
        }
    }

    /// The directory this root reads.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn cache(&self) -> Option<&DirCache> {
        Some(&self.dirs)
    }

    fn full(&self, phys: &str) -> PathBuf {
        if phys.is_empty() {
            self.root.clone()
        } else {
            self.root.join(phys)
        }
    }

    fn describe_root(&self) -> String {
        self.root.display().to_string()
    }

    fn display_in_root(&self, path: &str) -> String {
        self.full(path.trim_start_matches('/'))
            .display()
            .to_string()
    }
}

impl Tree for DirRoot {
    fn lstat(&self, phys: &str) -> io::Result<Node> {
        let full = self.full(phys);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                let text = fs::read_link(&full)?;
                Ok(Node::Link(text.to_string_lossy().into_owned()))
            }
            Ok(m) if m.is_dir() => Ok(Node::Dir),
            Ok(_) => Ok(Node::File),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Node::Missing),
            Err(e) => Err(e),
        }
    }

    fn read_phys(&self, phys: &str) -> io::Result<Vec<u8>> {
        fs::read(self.full(phys))
    }

    fn list_phys(&self, phys: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.full(phys))? {
            // Names that are not UTF-8 never occur in sysfs, procfs or the udev database.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

impl_sysroot!(DirRoot);

#[derive(Debug, Clone, PartialEq, Eq)]
enum MemNode {
    Dir,
    File(Vec<u8>),
    Link(String),
}

/// An in-memory tree of files, directories and symlinks (embedded fixtures, tests).
///
/// Builders take *physical* paths: insert `sys/devices/.../block/sda/size`, not a path through
/// the `sys/block/sda` link. Missing parent directories are created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemRoot {
    name: String,
    nodes: BTreeMap<String, MemNode>,
}

fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl MemRoot {
    /// An empty tree named `name` (shown in messages).
    pub fn new(name: impl Into<String>) -> Self {
        MemRoot {
            name: name.into(),
            nodes: BTreeMap::new(),
        }
    }

    fn insert(&mut self, path: &str, node: MemNode) -> &mut Self {
        let path = clean(path);
        let mut parent = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            self.nodes.entry(parent.clone()).or_insert(MemNode::Dir);
        }
        if !path.is_empty() {
            self.nodes.insert(path, node);
        }
        self
    }

    /// Adds a directory.
    pub fn insert_dir(&mut self, path: &str) -> &mut Self {
        self.insert(path, MemNode::Dir)
    }

    /// Adds (or replaces) a file.
    pub fn insert_file(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> &mut Self {
        self.insert(path, MemNode::File(contents.into()))
    }

    /// Adds a symlink with link text `target` (not resolved, need not exist).
    pub fn insert_symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.insert(path, MemNode::Link(target.to_string()))
    }

    /// Number of files, directories and links.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Unpacks a bundle (see `probe/bundle.rs` for the format).
    pub fn from_bundle(name: impl Into<String>, bytes: &[u8]) -> anyhow::Result<Self> {
        let mut root = MemRoot::new(name);
        let entries = bundle::decode(bytes)
            .with_context(|| format!("decoding the bundle of {}", root.name))?;
        for e in entries {
            let node = match e.kind {
                bundle::Kind::Dir => MemNode::Dir,
                bundle::Kind::File => MemNode::File(e.data.to_vec()),
                bundle::Kind::Link => MemNode::Link(String::from_utf8_lossy(e.data).into_owned()),
            };
            root.insert(e.path, node);
        }
        Ok(root)
    }

    /// Packs the tree into a bundle.
    pub fn to_bundle(&self) -> Vec<u8> {
        let mut out = bundle::MAGIC.to_vec();
        for (path, node) in &self.nodes {
            match node {
                MemNode::Dir => bundle::push(&mut out, bundle::Kind::Dir, path, &[]),
                MemNode::File(b) => bundle::push(&mut out, bundle::Kind::File, path, b),
                MemNode::Link(t) => bundle::push(&mut out, bundle::Kind::Link, path, t.as_bytes()),
            }
        }
        out
    }

    /// Loads a directory tree (symlinks kept as links) into memory.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let bytes =
            bundle::pack_dir(dir).with_context(|| format!("reading the tree {}", dir.display()))?;
        MemRoot::from_bundle(dir.display().to_string(), &bytes)
    }

    /// Writes the tree under `dir` (created if missing): files, directories, and symlinks with
    /// their link text.
    pub fn write_to_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (path, node) in &self.nodes {
            let full = dir.join(path);
            match node {
                MemNode::Dir => fs::create_dir_all(&full),
                MemNode::File(b) => fs::write(&full, b),
                MemNode::Link(t) => std::os::unix::fs::symlink(t, &full),
            }
            .with_context(|| format!("writing {}", full.display()))?;
        }
        Ok(())
    }

    fn describe_root(&self) -> String {
        self.name.clone()
    }

    fn cache(&self) -> Option<&DirCache> {
        // Lookups in memory are as cheap as the cache would be.
        None
    }

    fn display_in_root(&self, path: &str) -> String {
        format!("{}:{}", self.name, path.trim_start_matches('/'))
    }
}

impl Tree for MemRoot {
    fn lstat(&self, phys: &str) -> io::Result<Node> {
        if phys.is_empty() {
            return Ok(Node::Dir);
        }
        Ok(match self.nodes.get(phys) {
            None => Node::Missing,
            Some(MemNode::Dir) => Node::Dir,
            Some(MemNode::File(_)) => Node::File,
            Some(MemNode::Link(t)) => Node::Link(t.clone()),
        })
    }

    fn read_phys(&self, phys: &str) -> io::Result<Vec<u8>> {
        match self.nodes.get(phys) {
            Some(MemNode::File(b)) => Ok(b.clone()),
            _ => Err(not_found(phys)),
        }
    }

    fn list_phys(&self, phys: &str) -> io::Result<Vec<String>> {
        let prefix = if phys.is_empty() {
            String::new()
        } else {
            format!("{phys}/")
        };
        Ok(self
            .nodes
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .map(|k| &k[prefix.len()..])
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }
}

impl_sysroot!(MemRoot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_reject_corruption_and_escaping_paths() {
        let mut good = MemRoot::new("t");
        good.insert_file("a/b", "x").insert_symlink("a/l", "/b");
        let bytes = good.to_bundle();
        assert_eq!(
            MemRoot::from_bundle("u", &bytes)
                .map(|m| m.to_bundle())
                .ok(),
            Some(bytes.clone())
        );
        assert!(MemRoot::from_bundle("u", &bytes[..bytes.len() - 1]).is_err());
        assert!(MemRoot::from_bundle("u", b"not a bundle").is_err());
        for path in ["../etc/passwd", "/etc/passwd", "a//b", "a/../../b"] {
            let mut evil = bundle::MAGIC.to_vec();
            bundle::push(&mut evil, bundle::Kind::File, path, b"x");
            assert!(
                MemRoot::from_bundle("evil", &evil).is_err(),
                "{path} accepted"
            );
        }
    }

    #[test]
    fn resolution_stays_in_the_root_and_stops_on_loops() {
        let mut r = MemRoot::new("t");
        r.insert_file("etc/hostname", "fixture\n")
            .insert_symlink("sys/up", "../../../../..")
            .insert_symlink("sys/abs", "/etc")
            .insert_symlink("sys/self", "self");
        assert_eq!(
            r.read_to_string("sys/up/etc/hostname").ok().as_deref(),
            Some("fixture\n")
        );
        assert_eq!(
            r.read_to_string("sys/abs/hostname").ok().as_deref(),
            Some("fixture\n")
        );
        assert_eq!(r.read_link("sys/abs").ok().as_deref(), Some("/etc"));
        assert!(r.read("sys/self").is_err());
        assert!(r.is_dir("sys/abs") && !r.is_dir("etc/hostname") && r.exists("etc/hostname"));
        assert!(r.read("etc/hostname/x").is_err());
    }
}
