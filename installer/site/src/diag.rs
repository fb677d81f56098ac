//! Diagnostics: what is wrong with a site file, where, and what to do about it.
//!
//! Every problem is reported at once (unlike Proxmox's answer file, which stops at the first)
//! as `FILE:LINE:COL: error: PATH: MESSAGE` plus an optional `  hint: ...` line.

use crate::model::Pos;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a diagnostic is. Warnings never fail validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The site file cannot be used.
    Error,
    /// The site file works, but probably not as intended (for example no redundancy).
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a site file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the file (1-based line and column, in characters).
    pub pos: Pos,
    /// The field path, e.g. `node[1].tank1.disks[0].serial` (array indexes count from 0, as in
    /// the file). Empty for TOML syntax errors.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// Whether this diagnostic fails validation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: error: PATH: MESSAGE`, plus `\n  hint: HINT` when there is a hint.
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{self}")
    }
}

impl fmt::Display for Diagnostic {
    /// `LINE:COL: error: PATH: MESSAGE` (and the hint line); [`Diagnostic::render`] prefixes the
    /// file name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.pos, self.severity)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Renders every diagnostic (one [`Diagnostic::render`] each, newline-terminated) followed by
/// a summary line such as `site.toml: 3 errors, 1 warning`.
pub fn render_all(diags: &[Diagnostic], file: &str) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(file));
        out.push('\n');
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    out.push_str(&format!(
        "{file}: {errors} error{}, {warnings} warning{}\n",
        plural(errors),
        plural(warnings)
    ));
    out
}

/// Like [`render_all`], with the offending source line and a caret under the column, the way
/// compilers show it. Meant for terminals.
pub fn render_with_source(diags: &[Diagnostic], file: &str, src: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(file));
        out.push('\n');
        let idx = (d.pos.line as usize).saturating_sub(1);
        // A secret's line would show the secret.
        let secret = crate::schema::SECRET_PATHS.contains(&d.path.as_str());
        if let Some(line) = lines.get(idx).filter(|_| !secret) {
            let num = d.pos.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_at: String = line
                .chars()
                .take((d.pos.col as usize).saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{num} | {line}\n{pad} | {caret_at}^\n"));
        }
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    out.push_str(&format!(
        "{file}: {errors} error{}, {warnings} warning{}\n",
        plural(errors),
        plural(warnings)
    ));
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Maps byte offsets of the source to 1-based line:column (columns count characters).
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    /// The position of byte `offset` (clamped to the source; never panics).
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.src.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let mut end = offset;
        while end > start && !self.src.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.src.get(start..end).map_or(0, |s| s.chars().count());
        Pos {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Collects diagnostics while walking and checking.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub(crate) list: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            pos,
            path: path.to_string(),
            message: message.into(),
            hint,
        });
    }

    pub(crate) fn err(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, pos, path, message, None);
    }

    pub(crate) fn err_hint(
        &mut self,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Error, pos, path, message, Some(hint.into()));
    }

    pub(crate) fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, pos, path, message, None);
    }

    pub(crate) fn warn_hint(
        &mut self,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Warning, pos, path, message, Some(hint.into()));
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// Sorted by position (errors before warnings at the same spot), duplicates removed.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.list.sort_by(|a, b| {
            (a.pos, a.severity, &a.path, &a.message).cmp(&(b.pos, b.severity, &b.path, &b.message))
        });
        self.list.dedup();
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_characters() {
        let src = "a = 1\nb = \"é\" x\n\nlast";
        let li = LineIndex::new(src);
        assert_eq!(li.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(li.pos(6), Pos { line: 2, col: 1 });
        // Offset of `x` on line 2: "b = \"é\" " is 9 bytes, 8 characters.
        let x = src.find('x').unwrap_or(0);
        assert_eq!(li.pos(x), Pos { line: 2, col: 9 });
        assert_eq!(li.pos(src.len() + 10), Pos { line: 4, col: 5 });
        // Inside a multi-byte character: rounds down, no panic.
        let e = src.find('é').unwrap_or(0);
        assert_eq!(li.pos(e + 1), li.pos(e));
    }

    #[test]
    fn render_formats() {
        let d = Diagnostic {
            severity: Severity::Error,
            pos: Pos { line: 3, col: 7 },
            path: "node[0].name".into(),
            message: "bad".into(),
            hint: Some("fix it".into()),
        };
        assert_eq!(
            d.render("s.toml"),
            "s.toml:3:7: error: node[0].name: bad\n  hint: fix it"
        );
        let all = render_with_source(&[d], "s.toml", "a\nb\nname = x\n");
        assert!(all.contains("3 | name = x\n  |       ^\n"), "{all}");
        assert!(all.ends_with("s.toml: 1 error, 0 warnings\n"));
    }
}
