//! docs/site-file.md is generated from the schema; this test fails when it is stale.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/site-file.md")
}

#[test]
fn site_file_reference_is_up_to_date() {
    let want = tappaas_site::docs::reference_markdown();
    let path = doc_path();
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(have.lines().count().min(want.lines().count()) + 1, |i| {
                i + 1
            });
        panic!(
            "docs/site-file.md is stale (first difference at line {line}).\n\
             Regenerate it with: UPDATE_DOCS=1 cargo test -p tappaas-site --test docs\n\
             (or: cargo run -p tappaas-installer -- docs site-file > docs/site-file.md)"
        );
    }
}

#[test]
fn reference_covers_every_key() {
    let md = tappaas_site::docs::reference_markdown();
    for (_, table) in tappaas_site::schema::tables() {
        for f in table.fields {
            assert!(
                md.contains(&format!("| `{}` |", f.key)),
                "key {} missing",
                f.key
            );
        }
    }
}

#[test]
fn every_literal_default_passes_its_own_check() {
    // An empty-but-complete site uses every literal default; none may produce a diagnostic.
    let src = format!(
        "version = 1\n[site]\nname = \"a\"\ndomain = \"a.example\"\nadmin-email = \"a@a.example\"\n\
         [credentials]\nroot-password-hash = \"{}\"\n[[node]]\nrole = \"primary\"\n\
         profile = \"p\"\n[node.tank1]\n",
        "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/"
    );
    let (site, diags) = tappaas_site::parse_with_warnings(&src, &Default::default());
    assert!(site.is_some(), "{diags:#?}");
    assert!(diags.is_empty(), "{diags:#?}");
}
