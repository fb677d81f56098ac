//! No module imports a module that imports it back (STYLE.md, issue 11).
//!
//! The check reads the sources of every crate in the workspace and collects, for each module,
//! the modules its code names (`use crate::a::b`, `crate::a::b::X` in an expression,
//! `super::c`). A reference between two modules counts between the two siblings under their
//! nearest common ancestor: `crate::plan::disks` naming `crate::probe::root` is the edge
//! `plan -> probe` inside the crate root. A module naming its own ancestor or descendant is
//! not an edge (a parent owns its children). Test-only code (`#[cfg(test)] mod ...`, and the
//! files such a declaration pulls in) does not count: test support may look anywhere.
//!
//! Within every parent, the sibling graph must be acyclic. A failure names the circle and,
//! for every arrow in it, one place (file:line) where it is made.
//!
//! Known limits, on purpose: a re-export through an ancestor (`crate::Site` where the root
//! does `pub use model::Site`) names the ancestor, so it is not seen; macros are not expanded.
//! Both keep the check simple and neither hides a circle we have had.

#![allow(clippy::expect_used, clippy::panic)] // test support: a broken tree is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One crate's modules: path segments (empty = crate root) -> source file.
struct Crate {
    name: String,
    modules: BTreeMap<Vec<String>, PathBuf>,
    /// Module -> (named module, file:line) for every reference in its non-test code.
    refs: Vec<(Vec<String>, Vec<String>, String)>,
}

/// Source text with comments, string and char literals blanked (newlines kept, so line
/// numbers stay right).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&b, i) {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                if b[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            for &ch in &b[i..(j + 1).min(b.len())] {
                out.push(blank(ch));
            }
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{..}'), or a lifetime ('a) which stays.
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    for _ in i..=j {
                        out.push(' ');
                    }
                    i = j + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Removes `#[cfg(test)] mod name { ... }` blocks; returns the text and the names of
/// `#[cfg(test)] mod name;` declarations (out-of-line test modules).
fn drop_test_code(text: &str) -> (String, BTreeSet<String>) {
    let mut out = text.to_string();
    let mut test_files = BTreeSet::new();
    let mut search = 0;
    while let Some(pos) = out[search..].find("#[cfg(test)]") {
        let at = search + pos;
        let rest = &out[at + "#[cfg(test)]".len()..];
        let trimmed = rest.trim_start();
        // Skip further attributes (#[allow(...)]) between cfg(test) and the item.
        let mut item = trimmed;
        while item.starts_with("#[") {
            match item.find(']') {
                Some(e) => item = item[e + 1..].trim_start(),
                None => break,
            }
        }
        let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
        let item = item.strip_prefix("pub ").unwrap_or(item);
        if let Some(after) = item.strip_prefix("mod ") {
            let name: String = after.chars().take_while(|&c| is_ident(c)).collect();
            let after_name = after[name.len()..].trim_start();
            if after_name.starts_with(';') {
                test_files.insert(name);
                search = at + 1;
                continue;
            }
            if after_name.starts_with('{') {
                let open = out.len() - after_name.len();
                let mut depth = 0;
                let mut end = out.len();
                for (k, ch) in out[open..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let blanked: String = out[at..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect();
                out.replace_range(at..end, &blanked);
            }
        }
        search = at + 1;
    }
    (out, test_files)
}

/// `mod name;` declarations (not test ones) in stripped text.
fn child_decls(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
        let l = l.strip_prefix("pub(super) ").unwrap_or(l);
        let l = l.strip_prefix("pub ").unwrap_or(l);
        if let Some(rest) = l.strip_prefix("mod ") {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if rest[name.len()..].trim_start().starts_with(';') {
                v.push(name);
            }
        }
    }
    v
}

fn child_file(parent_file: &Path, is_dir_owner: bool, name: &str) -> Option<PathBuf> {
    let dir = if is_dir_owner {
        parent_file.parent()?.to_path_buf()
    } else {
        parent_file.with_extension("")
    };
    let a = dir.join(format!("{name}.rs"));
    let b = dir.join(name).join("mod.rs");
    if a.is_file() {
        Some(a)
    } else if b.is_file() {
        Some(b)
    } else {
        None
    }
}

/// Every path the code names that starts at `crate::` or `super::`, made absolute, with the
/// line it is on. `use` trees are expanded (`use crate::{a::X, b}` names `a` and `b`).
fn named_paths(text: &str, here: &[String]) -> Vec<(Vec<String>, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let starts = |w: &str| {
            let wc: Vec<char> = w.chars().collect();
            chars[i..].starts_with(&wc) && (i == 0 || !is_ident(chars[i - 1]))
        };
        if starts("crate::") || starts("super::") {
            let (prefixes, end) = parse_use_tree(&chars, i);
            for p in prefixes {
                if let Some(abs) = absolute(&p, here) {
                    found.push((abs, line));
                }
            }
            for &c in &chars[i..end] {
                if c == '\n' {
                    line += 1;
                }
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Parses a path with optional `{...}` groups from `start`; returns every full path prefix
/// list and the index after it.
fn parse_use_tree(chars: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut segs = Vec::new();
    let mut i = start;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            // A group: each member is a tree of its own under `segs`.
            let mut out = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    i += 1;
                    break;
                }
                let (subs, end) = parse_use_tree(chars, i);
                for s in subs {
                    let mut full = segs.clone();
                    full.extend(s);
                    out.push(full);
                }
                if end <= i {
                    i += 1;
                } else {
                    i = end;
                }
            }
            return (out, i);
        }
        let word: String = chars[i..].iter().take_while(|&&c| is_ident(c)).collect();
        if word.is_empty() {
            return (vec![segs], i);
        }
        segs.push(word.clone());
        i += word.chars().count();
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return (vec![segs], i);
        }
    }
}

fn absolute(path: &[String], here: &[String]) -> Option<Vec<String>> {
    let mut it = path.iter().peekable();
    let mut base: Vec<String> = match it.peek().map(|s| s.as_str()) {
        Some("crate") => {
            it.next();
            Vec::new()
        }
        Some("super") => here.to_vec(),
        _ => return None,
    };
    while it.peek().map(|s| s.as_str()) == Some("super") {
        it.next();
        base.pop()?;
    }
    base.extend(it.filter(|s| s.as_str() != "self").cloned());
    Some(base)
}

fn load_crate(name: &str, root_file: &Path) -> Crate {
    let mut c = Crate {
        name: name.to_string(),
        modules: BTreeMap::new(),
        refs: Vec::new(),
    };
    let mut todo = vec![(Vec::<String>::new(), root_file.to_path_buf(), true)];
    while let Some((module, file, owns_dir)) = todo.pop() {
        let src = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (text, test_children) = drop_test_code(&strip(&src));
        for child in child_decls(&text) {
            if test_children.contains(&child) {
                continue;
            }
            if let Some(f) = child_file(&file, owns_dir, &child) {
                let owns = f.file_name().is_some_and(|n| n == "mod.rs");
                let mut m = module.clone();
                m.push(child);
                todo.push((m, f, owns));
            }
        }
        for (path, line) in named_paths(&text, &module) {
            let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("/"));
            let rel = file.strip_prefix(ws).unwrap_or(&file).display().to_string();
            c.refs.push((
                module.clone(),
                path,
                format!("{}:{line}", rel.trim_start_matches('/')),
            ));
        }
        c.modules.insert(module, file);
    }
    c
}

/// The longest prefix of `path` that is a module of the crate.
fn module_of(c: &Crate, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| c.modules.contains_key(p))
        .unwrap_or_default()
}

/// Every circle among siblings, as readable lines.
fn circles(c: &Crate) -> Vec<String> {
    // parent -> (from sibling -> (to sibling -> one place))
    type Graph = BTreeMap<String, BTreeMap<String, String>>;
    let mut graphs: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
    for (from, path, at) in &c.refs {
        let to = module_of(c, path);
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if common == from.len() || common == to.len() {
            continue; // ancestor or descendant
        }
        graphs
            .entry(from[..common].to_vec())
            .or_default()
            .entry(from[common].clone())
            .or_default()
            .entry(to[common].clone())
            .or_insert_with(|| at.clone());
    }
    let mut found = Vec::new();
    for (parent, g) in &graphs {
        for cycle in find_cycles(g) {
            let scope = if parent.is_empty() {
                c.name.clone()
            } else {
                format!("{}::{}", c.name, parent.join("::"))
            };
            let mut s = format!("in {scope}: {}", cycle.join(" -> "));
            for w in cycle.windows(2) {
                s.push_str(&format!(
                    "\n    {} -> {} at {}",
                    w[0], w[1], g[&w[0]][&w[1]]
                ));
            }
            found.push(s);
        }
    }
    found
}

/// One cycle per strongly connected component of more than one node (or a self loop),
/// as a closed walk `a -> b -> a`.
fn find_cycles(g: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = g.keys().chain(g.values().flat_map(|m| m.keys())).collect();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut cycles = Vec::new();
    for &start in &nodes {
        if reported.contains(start) {
            continue;
        }
        // Shortest path from a successor of `start` back to `start` (BFS).
        let mut prev: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue: std::collections::VecDeque<&String> = std::collections::VecDeque::new();
        let mut seen: BTreeSet<&String> = BTreeSet::new();
        queue.push_back(start);
        let mut closed = None;
        while let Some(n) = queue.pop_front() {
            for next in g.get(n).into_iter().flat_map(|m| m.keys()) {
                if next == start {
                    closed = Some(n);
                    break;
                }
                if seen.insert(next) {
                    prev.insert(next, n);
                    queue.push_back(next);
                }
            }
            if closed.is_some() {
                break;
            }
        }
        if let Some(last) = closed {
            let mut walk = vec![start.clone()];
            let mut n = last;
            let mut back = vec![n.clone()];
            while n != start {
                n = prev[n];
                if n != start {
                    back.push(n.clone());
                }
            }
            back.reverse();
            // `back` runs from start's successor to `last`.
            for b in back.into_iter().filter(|b| b != start) {
                walk.push(b);
            }
            walk.push(start.clone());
            for w in &walk {
                reported.insert(w.clone());
            }
            cycles.push(walk);
        }
    }
    cycles
}

/// The library crates of the workspace: (name, root file).
fn workspace_crates() -> Vec<(String, PathBuf)> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the installer lives in the workspace")
        .to_path_buf();
    let manifest = fs::read_to_string(ws.join("Cargo.toml")).expect("workspace Cargo.toml");
    let members: Vec<String> = manifest
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("members"))
        .take_while(|l| !l.trim().is_empty())
        .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string))
        .collect();
    assert!(
        members.len() >= 3,
        "members not found in the workspace Cargo.toml: {members:?}"
    );
    let mut v = Vec::new();
    for m in members {
        let dir = ws.join(&m);
        for root in ["src/lib.rs", "src/main.rs"] {
            let f = dir.join(root);
            if f.is_file() {
                v.push((format!("{m} ({root})"), f));
            }
        }
    }
    v
}

/// Circles allowed to exist: none since issue 11 broke the last one. The list must be exactly
/// what is found: a new circle fails, and so does a listed one that is gone, so it stays true.
const KNOWN: &[&str] = &[];

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut all = Vec::new();
    let mut modules = 0;
    for (name, root) in workspace_crates() {
        let c = load_crate(&name, &root);
        modules += c.modules.len();
        all.extend(circles(&c));
    }
    assert!(
        modules > 50,
        "only {modules} modules found: the walk is broken"
    );
    let new: Vec<&String> = all
        .iter()
        .filter(|c| !KNOWN.iter().any(|k| c.lines().next() == Some(*k)))
        .collect();
    assert!(
        new.is_empty(),
        "import circles between modules (break each by moving the shared part into a leaf \
         module both use, or onto the type it queries):\n{}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let gone: Vec<&&str> = KNOWN
        .iter()
        .filter(|k| !all.iter().any(|c| c.lines().next() == Some(**k)))
        .collect();
    assert!(
        gone.is_empty(),
        "no longer circles, take them off KNOWN: {gone:?}"
    );
}

/// The checker itself: a made-up crate with one circle, one ancestor reference, a test
/// module that looks back and a reference in a comment and a string.
#[test]
fn the_checker_finds_a_circle_and_only_that() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = |p: &str, s: &str| {
        let f = dir.path().join(p);
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(f, s).expect("write");
    };
    w(
        "lib.rs",
        "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod testutil;\n",
    );
    w(
        "a/mod.rs",
        "mod inner;\nuse crate::{b::{Thing, other}, c};\n// crate::c::not_real\n",
    );
    w(
        "a/inner.rs",
        "use super::super::c::X;\nfn f() { super::helper(); }\n",
    );
    w(
        "b.rs",
        "pub fn g() { let _ = \"crate::c::in_a_string\"; crate::a::inner::f(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::testutil::x;\n    use crate::c::Y;\n}\n",
    );
    w("c.rs", "pub struct X;\n");
    w("testutil.rs", "use crate::a::X;\nuse crate::b::g;\n");
    let c = load_crate("demo", &dir.path().join("lib.rs"));
    assert_eq!(
        c.modules.keys().map(|m| m.join("::")).collect::<Vec<_>>(),
        vec!["", "a", "a::inner", "b", "c"]
    );
    let found = circles(&c);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("in demo: a -> b -> a"), "{}", found[0]);
    assert!(found[0].contains("a -> b at "), "{}", found[0]);
    assert!(found[0].contains("a/mod.rs:2"), "{}", found[0]);
    assert!(found[0].contains("b -> a at "), "{}", found[0]);
    assert!(found[0].contains("b.rs:1"), "{}", found[0]);
    // No edge from the comment or the string, and b's test module's edge to c is not counted.
    let edges: BTreeSet<(String, String)> = c
        .refs
        .iter()
        .map(|(f, p, _)| (f.join("::"), module_of(&c, p).join("::")))
        .collect();
    assert!(edges.contains(&("a::inner".into(), "c".into())));
    assert!(!edges.contains(&("b".into(), "c".into())), "{edges:?}");
}
