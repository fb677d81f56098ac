//! `docs/plan-json.md` names every key that `plan --json` can print: the keys of every golden
//! plan (all profiles x roles, which between them fill every optional field) and of a plan
//! error are collected and each must appear in the doc as `` `key` ``.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const DOC: &str = include_str!("../../docs/plan-json.md");

fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // Property maps are data (zpool property names), not format fields.
                if k != "properties" && k != "fs_properties" {
                    keys(v, out);
                }
                out.insert(k.clone());
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn every_plan_key_is_documented() {
    let snaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut found = BTreeSet::new();
    let mut plans = 0;
    for entry in std::fs::read_dir(&snaps).expect("snapshots") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("plan_golden__") || !name.ends_with("-json.snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        // insta's header ends at the second `---` line.
        let body = text.split("\n---\n").nth(1).expect("snapshot body");
        let v: Value = serde_json::from_str(body).expect("snapshot json");
        keys(&v, &mut found);
        plans += 1;
    }
    assert!(plans >= 18, "expected the golden plans, found {plans}");

    let err = tappaas_installer::plan::PlanError {
        node: Some("n".into()),
        problems: vec![tappaas_installer::plan::Problem {
            pos: Some(tappaas_site::Pos { line: 1, col: 1 }),
            path: "p".into(),
            message: "m".into(),
            hint: Some("h".into()),
        }],
    };
    keys(&serde_json::to_value(&err).unwrap(), &mut found);

    let missing: Vec<&String> = found
        .iter()
        .filter(|k| !DOC.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/plan-json.md does not mention: {missing:?}"
    );
}
