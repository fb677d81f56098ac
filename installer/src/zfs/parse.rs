//! Parsers for what the ZFS tools print: the `zpool status -P` / `zpool import` tree, and the
//! tab-separated `-Hp` listings. Written with nom against output captured from real ZFS 2.1 and
//! 2.3 (fixtures under `installer/tests/fixtures/zfs/`).

use nom::bytes::complete::{tag, take_till1, take_while, take_while1};
use nom::character::complete::{line_ending, not_line_ending, space0, space1};
use nom::combinator::{opt, rest};
use nom::sequence::preceded;
use nom::{IResult, Parser};
use std::collections::BTreeMap;

/// A pool as `zpool status -P` or `zpool import` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// `state:` (ONLINE, DEGRADED, ...).
    pub state: String,
    /// `id:` (only in `zpool import` listings).
    pub id: Option<String>,
    /// The top-level vdevs of the data class, in order.
    pub vdevs: Vec<VdevStatus>,
    /// `errors:` line, if any.
    pub errors: Option<String>,
}

/// A top-level vdev: a group (mirror-0, raidz1-0) or a single disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdevStatus {
    /// `mirror-0`, `raidz1-0`, or the device path for a single-disk vdev.
    pub name: String,
    /// `mirror`, `raidz1`, `raidz2`, or `disk`.
    pub kind: String,
    /// State column.
    pub state: String,
    /// Member devices (for a single-disk vdev: itself).
    pub members: Vec<String>,
}

/// A parse failure, with the line it happened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {what} output at line {line}: {text:?}")]
pub struct ParseError {
    /// Which output.
    pub what: &'static str,
    /// 1-based line.
    pub line: usize,
    /// The offending line.
    pub text: String,
}

/// `   pool: tank1` style header line: key and value.
fn header(i: &str) -> IResult<&str, (&str, &str)> {
    let (i, _) = space0(i)?;
    let (i, key) = take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_')(i)?;
    let (i, _) = tag(":")(i)?;
    let (i, value) = preceded(space0, not_line_ending).parse(i)?;
    Ok((i, (key, value.trim_end())))
}

/// A row of the config tree: indentation, name, state, and the rest.
fn tree_row(i: &str) -> IResult<&str, (usize, &str, &str)> {
    let (i, ws) = take_while(|c: char| c == ' ' || c == '\t')(i)?;
    let (i, name) = take_till1(|c: char| c == ' ' || c == '\t')(i)?;
    let (i, _) = opt(space1).parse(i)?;
    let (i, state) = take_while(|c: char| c.is_ascii_alphabetic())(i)?;
    let (i, _) = rest(i)?;
    // A tab counts as 8 columns, as the tools align with tabs then spaces.
    let indent = ws.chars().map(|c| if c == '\t' { 8 } else { 1 }).sum();
    Ok((i, (indent, name, state)))
}

fn group_kind(name: &str) -> Option<&'static str> {
    ["mirror", "raidz1", "raidz2", "raidz3", "draid"]
        .into_iter()
        .find(|k| name.starts_with(&format!("{k}-")))
        .or_else(|| name.starts_with("raidz-").then_some("raidz1"))
}

/// Section headers inside a config tree that start a non-data vdev class.
const CLASSES: [&str; 6] = ["logs", "cache", "spares", "special", "dedup", "replacing"];

/// Parses `zpool status -P` (one or more pools) or `zpool import` (importable pools).
pub fn parse_status(text: &str) -> Result<Vec<PoolStatus>, ParseError> {
    let mut pools: Vec<PoolStatus> = Vec::new();
    let mut in_config = false;
    let mut root_indent: Option<usize> = None;
    let mut vdev_indent: Option<usize> = None;
    let mut in_class = false;
    let lines: Vec<&str> = text.lines().collect();
    let err = |n: usize, l: &str| ParseError {
        what: "zpool status",
        line: n + 1,
        text: l.to_string(),
    };
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Ok((_, (key, value))) = header(line) {
            // Header keys are indented at most a few spaces; tree rows are tab-indented.
            if !line.starts_with('\t') && line.len() - line.trim_start().len() < 8 {
                match key {
                    "pool" => {
                        pools.push(PoolStatus {
                            name: value.to_string(),
                            ..PoolStatus::default()
                        });
                        in_config = false;
                        root_indent = None;
                        vdev_indent = None;
                        in_class = false;
                        continue;
                    }
                    "config" => {
                        in_config = true;
                        continue;
                    }
                    _ => {
                        in_config = false;
                        if let Some(p) = pools.last_mut() {
                            match key {
                                "state" => p.state = value.to_string(),
                                "id" => p.id = Some(value.to_string()),
                                "errors" => p.errors = Some(value.to_string()),
                                _ => {}
                            }
                        }
                        continue;
                    }
                }
            }
        }
        if !in_config {
            // Continuation lines of `status:`/`action:` prose, `see:` URLs and the like.
            continue;
        }
        let Some(pool) = pools.last_mut() else {
            return Err(err(n, line));
        };
        let Ok((_, (indent, name, state))) = tree_row(line) else {
            return Err(err(n, line));
        };
        if name == "NAME" && state == "STATE" {
            continue;
        }
        let Some(root) = root_indent else {
            // The first row is the pool itself.
            if name != pool.name {
                return Err(err(n, line));
            }
            root_indent = Some(indent);
            continue;
        };
        if indent <= root {
            // Same level as the pool: a class header (logs, cache, ...), or a new tree.
            in_class = CLASSES.contains(&name);
            continue;
        }
        if in_class {
            continue;
        }
        // The first row below the pool fixes the indentation of top-level vdevs; deeper rows
        // are members of the last group.
        let top = *vdev_indent.get_or_insert(indent);
        if indent <= top {
            match group_kind(name) {
                Some(kind) => pool.vdevs.push(VdevStatus {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    state: state.to_string(),
                    members: Vec::new(),
                }),
                None => pool.vdevs.push(VdevStatus {
                    name: name.to_string(),
                    kind: "disk".to_string(),
                    state: state.to_string(),
                    members: vec![name.to_string()],
                }),
            }
        } else if let Some(v) = pool.vdevs.last_mut() {
            v.members.push(name.to_string());
        }
    }
    Ok(pools)
}

fn tsv_row(i: &str) -> IResult<&str, Vec<&str>> {
    let (i, line) = not_line_ending(i)?;
    let (i, _) = opt(line_ending).parse(i)?;
    Ok((i, line.split('\t').collect()))
}

/// Parses `-H` tab-separated output with `columns` columns per row.
pub fn parse_tsv<'a>(
    what: &'static str,
    text: &'a str,
    columns: usize,
) -> Result<Vec<Vec<&'a str>>, ParseError> {
    let mut out = Vec::new();
    let mut rest_text = text;
    let mut line = 0;
    while !rest_text.is_empty() {
        line += 1;
        let Ok((r, row)) = tsv_row(rest_text) else {
            break;
        };
        rest_text = r;
        if row.len() == 1 && row[0].is_empty() {
            continue;
        }
        if row.len() != columns {
            return Err(ParseError {
                what,
                line,
                text: row.join("\t"),
            });
        }
        out.push(row);
    }
    Ok(out)
}

/// `zpool get -Hp -o name,property,value ...` or `zfs get -Hp -o name,property,value ...`:
/// (object, property) -> value.
pub fn parse_get(text: &str) -> Result<BTreeMap<(String, String), String>, ParseError> {
    Ok(parse_tsv("get", text, 3)?
        .into_iter()
        .map(|r| ((r[0].to_string(), r[1].to_string()), r[2].to_string()))
        .collect())
}

/// A row of `zpool list -Hp -o name,size,health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolListing {
    /// Pool name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Health.
    pub health: String,
}

/// Parses `zpool list -Hp -o name,size,health`.
pub fn parse_pool_list(text: &str) -> Result<Vec<PoolListing>, ParseError> {
    parse_tsv("zpool list", text, 3)?
        .into_iter()
        .enumerate()
        .map(|(n, r)| {
            Ok(PoolListing {
                name: r[0].to_string(),
                size: r[1].parse().map_err(|_| ParseError {
                    what: "zpool list",
                    line: n + 1,
                    text: r.join("\t"),
                })?,
                health: r[2].to_string(),
            })
        })
        .collect()
}

/// Parses `zfs list -Hp -o name` into dataset names.
pub fn parse_dataset_names(text: &str) -> Result<Vec<String>, ParseError> {
    Ok(parse_tsv("zfs list", text, 1)?
        .into_iter()
        .map(|r| r[0].to_string())
        .collect())
}
