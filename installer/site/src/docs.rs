//! The site-file reference, generated from [`crate::schema`] so it cannot drift from what the
//! parser accepts. `docs/site-file.md` holds its output; a test fails when they differ.

use crate::schema::{self, Dflt, Table, Ty};

const INTRO: &str = "\
# Site file reference (version 1)

<!-- Generated from installer/site/src/schema/ by tappaas_site::docs::reference_markdown().
     Do not edit by hand: regenerate with `UPDATE_DOCS=1 cargo test -p tappaas-site --test docs`. -->

A site file is one TOML file that describes a whole TAPPaaS site: the names and network, the
root credentials, the pools, and every node with its disks and NICs. The same file (and so the
same USB stick) installs every node; each machine finds its own `[[node]]` entry.

Examples: [`examples/three-node-site.toml`](examples/three-node-site.toml) and
[`examples/one-node-site.toml`](examples/one-node-site.toml).

## Rules

- Keys are kebab-case (`admin-email`, not `admin_email`). Unknown keys are errors, with a
  did-you-mean.
- Every problem is reported at once, not just the first, as
  `FILE:LINE:COL: error: PATH: MESSAGE` followed by `  hint: WHAT TO DO`. Warnings (for example
  a tank1 without redundancy) use `warning:` and do not stop the install.
- `PATH` names the field: `node[1].tank1.disks[0].serial`. Array indexes count from 0, in file
  order, so `node[1]` is the second `[[node]]` table.
- A section such as `[node.nics]` may also be written inline (`nics = { wan = { ... } }`).
- Defaults follow TAPPaaS: management network `10.0.0.0/24`, firewall `.1`, node N named
  `tappaasN` at `.(9+N)`, domain `mgmt.internal`, cluster `TAPPaaS`, bridges `lan` and `wan`,
  pools created with `ashift=12 autotrim=on compression=lz4 atime=off xattr=sa`.

## Sizes

A size is an integer (bytes) or a string of a number and a unit. `K`, `M`, `G`, `T`, `P` (and
`KiB` .. `PiB`) are binary, powers of 1024, as `lsblk` prints them; `KB`, `MB`, `GB`, `TB`,
`PB` are decimal, powers of 1000, as disk vendors label them (a \"1 TB\" SSD is `1TB`, about
`931G`). Letters are case-insensitive; a fraction is allowed (`1.5T`).

## Disks are never named by kernel device names

`/dev/sda`, `sdb`, `nvme0n1` are handed out in probe order and change between boots; a site
file that used them could erase the wrong disk. They are refused wherever they appear. Name
disks by `by-id` (see `ls -l /dev/disk/by-id`), `serial`, `wwn`, or a filter.

";

/// The full reference, as Markdown.
pub fn reference_markdown() -> String {
    let mut out = String::from(INTRO);
    for (prefix, table) in schema::tables() {
        section(&mut out, prefix, table);
    }
    out
}

fn section(out: &mut String, prefix: &str, t: &Table) {
    let heading = if prefix.is_empty() {
        "Top level".to_string()
    } else {
        format!("`{}`", t.title)
    };
    out.push_str(&format!("## {heading}\n\n"));
    if !t.doc.is_empty() {
        out.push_str(&wrap(t.doc));
        out.push_str("\n\n");
    }
    if !prefix.is_empty() {
        out.push_str(&format!("Path: `{prefix}`\n\n"));
    }
    out.push_str("| Key | Type | Default | Description | Example |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for f in t.fields {
        let ty = match f.ty {
            Ty::Table(sub) | Ty::Tables(sub) if sub.title.starts_with('[') => {
                format!("{} (see `{}`)", kind_word(&f.ty), sub.title)
            }
            _ => f.ty.doc_name(),
        };
        let default = match f.default {
            Dflt::Required => "**required**".to_string(),
            Dflt::Lit(v) => format!("`{v}`"),
            Dflt::Computed(text) => text.to_string(),
            Dflt::Optional => "not set".to_string(),
        };
        let example = if f.example.is_empty() {
            String::new()
        } else {
            format!("`{} = {}`", f.key, f.example)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.key,
            cell(&ty),
            cell(&default),
            cell(f.doc),
            cell(&example)
        ));
    }
    if !t.refused.is_empty() {
        // Group keys refused for the same reason.
        let mut groups: Vec<(Vec<String>, &str)> = Vec::new();
        for r in t.refused {
            match groups.iter_mut().find(|(_, m)| *m == r.message) {
                Some((keys, _)) => keys.push(format!("`{}`", r.key)),
                None => groups.push((vec![format!("`{}`", r.key)], r.message)),
            }
        }
        for (keys, message) in groups {
            out.push_str(&wrap(&format!(
                "\nRefused keys: {}: {message}.",
                keys.join(", ")
            )));
            out.push('\n');
        }
    }
    out.push('\n');
}

fn kind_word(ty: &Ty) -> &'static str {
    match ty {
        Ty::Tables(_) => "array of tables",
        _ => "table",
    }
}

/// Escapes a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Wraps prose at 100 columns.
fn wrap(s: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}
