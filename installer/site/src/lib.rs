//! The TAPPaaS site file (version 1): one TOML file that describes a whole site, so the same
//! USB stick installs every node. Shared by the installer and the first-boot agent.
//!
//! [`parse`] reads a site file and reports every problem at once, each with line, column,
//! field path and a hint; [`docs::reference_markdown`] generates the field reference from the
//! same [`schema`] that drives validation.

mod build;
mod build_disks;
mod check;
pub mod copy;
mod creds;
pub mod date;
pub mod diag;
mod disknames;
pub mod docs;
pub mod glob;
pub mod joinkeys;
pub mod manifest;
pub mod model;
mod net;
pub mod pem;
pub mod schema;
mod semantic;
pub mod size;
mod values;
mod walk;
pub mod write;

pub use diag::{render_all, render_with_source, Diagnostic, Severity};
pub use disknames::looks_like_kernel_disk;
pub use glob::glob_match;
pub use model::*;
pub use size::parse_size;
pub use values::did_you_mean;

use diag::{Diags, LineIndex};
use toml::de::DeTable;

/// What the parser needs to know beyond the file itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Hardware profile ids that exist. A `profile` not in this list is an error (with a
    /// did-you-mean). Empty means "don't check".
    pub known_profiles: Vec<String>,
}

/// Parses and validates a site file. On failure returns every diagnostic (errors and
/// warnings, in file order); on success the warnings are dropped: use
/// [`parse_with_warnings`] to show them.
pub fn parse(src: &str, opts: &ParseOptions) -> Result<Site, Vec<Diagnostic>> {
    match parse_with_warnings(src, opts) {
        (Some(site), _) => Ok(site),
        (None, diags) => Err(diags),
    }
}

/// Parses and validates a site file, returning the site (when there are no errors) and every
/// diagnostic, warnings included, sorted by position.
///
/// TOML syntax errors are reported alone (all of them, at most one per line): checking the
/// fields of a file the TOML parser had to guess at would only add noise.
pub fn parse_with_warnings(src: &str, opts: &ParseOptions) -> (Option<Site>, Vec<Diagnostic>) {
    let li = LineIndex::new(src);
    let mut diags = Diags::default();
    let (doc, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        let mut lines = std::collections::BTreeMap::new();
        for e in &errors {
            let span = e.span().unwrap_or(0..0);
            let pos = li.pos(span.start);
            let (msg, hint) = syntax_message(e.message(), src.get(span).unwrap_or(""));
            let entry = lines
                .entry(pos.line)
                .or_insert((pos, msg.clone(), hint.clone()));
            if pos.col < entry.0.col {
                *entry = (pos, msg, hint);
            }
        }
        for (_, (pos, msg, hint)) in lines {
            diags.push(
                Severity::Error,
                pos,
                "",
                format!("TOML syntax: {msg}"),
                hint,
            );
        }
        return (None, diags.finish());
    }
    let mut meta = walk::Meta::default();
    let root = {
        let mut w = walk::Walker {
            li: &li,
            opts,
            diags: &mut diags,
            meta: &mut meta,
        };
        w.table(
            &schema::ROOT,
            doc.get_ref(),
            model::Pos { line: 1, col: 1 },
            "",
            true,
        )
    };
    let site = build::Builder {
        diags: &mut diags,
        meta: &mut meta,
    }
    .site(&root);
    semantic::check(&site, &meta, &mut diags);
    if diags.has_errors() {
        (None, diags.finish())
    } else {
        (Some(site), diags.finish())
    }
}

/// The TOML parser's message, with the offending key named and a hint for common mistakes.
fn syntax_message(msg: &str, text: &str) -> (String, Option<String>) {
    let hint = |h: &str| Some(h.to_string());
    if msg.starts_with("duplicate key") {
        let what = if text.is_empty() {
            String::new()
        } else {
            format!(" `{text}`")
        };
        return (
            format!("duplicate key{what}"),
            hint("a key or a [table] header may appear only once; for several nodes write [[node]] each time"),
        );
    }
    let h = if msg.contains("string values must be quoted") {
        hint("put the value in quotes, e.g. key = \"value\"")
    } else if msg.contains("basic string") || msg.contains("literal string") {
        hint("close the string with a matching quote on the same line")
    } else if msg.contains("missing comma") || msg.contains("unclosed array") {
        hint("separate array elements with commas and close the array with ]")
    } else if msg.contains("inline table") {
        hint("an inline table { ... } must fit on one line, its entries separated by commas")
    } else {
        None
    };
    (msg.to_string(), h)
}
