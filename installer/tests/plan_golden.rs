//! Golden plans: every hardware profile x every role, planned from a site file against the
//! profile's embedded fixture, pinned as snapshots (human text and JSON). A change to the
//! planner, a profile or a fixture shows up here as a reviewable diff.
//!
//! Regenerate after an intended change: `INSTA_UPDATE=always cargo test --test plan_golden`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

mod golden;

use golden::{golden_site, plan_site, NODES};
use tappaas_installer::plan::{self, Plan};
use tappaas_installer::profile;

fn plan_for(profile_id: &str, node: &str) -> Plan {
    plan_site(profile_id, &golden_site(profile_id), node).0
}

#[test]
fn every_profile_and_role_plans_and_matches_its_golden() {
    let ids = profile::ids();
    assert!(
        ids.len() >= 6,
        "expected at least six profiles, have {ids:?}"
    );
    for id in ids {
        for (node, role) in NODES {
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
