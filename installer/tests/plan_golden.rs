//! Golden plans: every hardware profile x every role, planned from a site file against the
//! profile's embedded fixture, pinned as snapshots (human text and JSON). A change to the
//! planner, a profile or a fixture shows up here as a reviewable diff.
//!
//! Regenerate after an intended change: `INSTA_UPDATE=always cargo test --test plan_golden`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use tappaas_installer::cli::hints_for;
use tappaas_installer::plan::{self, Plan};
use tappaas_installer::profile::{PortRole, SlotRole};
use tappaas_installer::synth::MachineSpec;
use tappaas_installer::{probe, profile};

const HASH: &str = "$6$tappaasgolden$y6afYXh.S4y3mWbFHnUP/cnYL6Ln1fUxxXBsNJEkQ0K3GVV9HRFBJ/3hQXAPNR71SjLA3rdt6yCIWVJ5.fqVe/";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQBunsP8seThIskcM6k1gN2dldxunpTlZ4RWcYAZuFW golden@test";

/// A three-node site whose nodes all run on `profile`. Where the profile suggests disks or
/// ports, the site leaves them to it (exercising the hints); where it cannot (all-NVMe boxes,
/// optional add-on ports), the site names what the fixture's author meant for each role.
fn golden_site(profile_id: &str) -> String {
    let p = profile::find(profile_id).expect("profile");
    let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware-profiles/fixtures")
        .join(format!("{profile_id}.machine.toml"));
    let spec = MachineSpec::load(&spec_path).expect("fixture spec");
    let hinted: Vec<SlotRole> = p.disk_hints().iter().map(|(r, _)| *r).collect();
    let mut node_body = String::new();
    for (label, role) in [("wan", PortRole::Wan), ("lan", PortRole::Lan)] {
        if p.default_port(role).is_none() {
            if let Some(nic) = spec.nic_for(role) {
                node_body.push_str(&format!("nics.{label} = {{ name = \"{}\" }}\n", nic.name));
            }
        }
    }
    for role in [SlotRole::Boot, SlotRole::Tank1, SlotRole::Tank2] {
        let disks = spec.disks_for(role);
        if disks.is_empty() {
            continue;
        }
        // Golden fixtures may carry old data on purpose: consent is part of the plan.
        node_body.push_str(&format!("[node.{}]\nwipe = true\n", role.as_str()));
        if !hinted.contains(&role) {
            let list: Vec<String> = disks
                .iter()
                .map(|d| format!("{{ serial = \"{}\" }}", d.serial))
                .collect();
            node_body.push_str(&format!("disks = [{}]\n", list.join(", ")));
            if disks.len() > 1 {
                node_body.push_str("layout = \"mirror\"\n");
            }
        }
    }
    let mut s = format!(
        "version = 1\n\n[site]\nname = \"golden\"\ndomain = \"example.org\"\n\
         admin-email = \"admin@example.org\"\n\n[credentials]\nroot-password-hash = \"{HASH}\"\n\
         ssh-keys = [\"{KEY}\"]\n"
    );
    for (i, role) in ["primary", "member", "backup"].iter().enumerate() {
        s.push_str(&format!(
            "\n[[node]]\nname = \"tappaas{}\"\nrole = \"{role}\"\nprofile = \"{profile_id}\"\n{node_body}",
            i + 1
        ));
    }
    s
}

fn plan_for(profile_id: &str, node: &str) -> Plan {
    let src = golden_site(profile_id);
    let opts = tappaas_site::ParseOptions {
        known_profiles: profile::ids().iter().map(|s| s.to_string()).collect(),
    };
    let site = tappaas_site::parse(&src, &opts).unwrap_or_else(|d| {
        panic!(
            "golden site for {profile_id} is invalid:\n{}\n{src}",
            tappaas_site::render_all(&d, "golden.toml")
        )
    });
    let fixture = probe::embedded_fixture(profile_id).expect("embedded fixture");
    let inv = probe::probe(&fixture).expect("probe fixture");
    let choice = plan::select_node(&inv, &site, Some(node), None).expect("node");
    plan::plan(&inv, &site, &choice, &hints_for(Some(profile_id)))
        .unwrap_or_else(|e| panic!("{profile_id} {node}:\n{}", e.render("golden.toml")))
}

#[test]
fn every_profile_and_role_plans_and_matches_its_golden() {
    let ids = profile::ids();
    assert!(
        ids.len() >= 6,
        "expected at least six profiles, have {ids:?}"
    );
    for id in ids {
        for (node, role) in [
            ("tappaas1", "primary"),
            ("tappaas2", "member"),
            ("tappaas3", "backup"),
        ] {
            let p = plan_for(id, node);
            assert_eq!(p.node.role.as_str(), role);
            // Whatever the profile, the live USB stick is never written.
            assert!(
                p.disks.iter().all(|d| !d.disk.by_id.contains("usb-")),
                "{id}: a USB disk is planned"
            );
            insta::assert_snapshot!(format!("{id}-{role}"), plan::render_human(&p));
            insta::assert_json_snapshot!(format!("{id}-{role}-json"), p);
        }
    }
}

#[test]
fn planning_twice_gives_identical_json() {
    for id in profile::ids() {
        let a = serde_json::to_string(&plan_for(id, "tappaas1")).expect("json");
        let b = serde_json::to_string(&plan_for(id, "tappaas1")).expect("json");
        assert_eq!(a, b, "{id}");
    }
}
