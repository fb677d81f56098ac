#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! A site that grows: the first machine is installed alone from a site file with a join secret
//! (the TUI gives every new site one), so its primary forms a cluster of one; a machine added
//! later, with a fresh secret and the primary's join window opened by hand, joins that cluster.

mod common;

use common::*;
use tappaas_bootstrap::pve::Secret;
use tappaas_bootstrap::state::StepState;
use tappaas_pve_sim::Latencies;

/// The three-node example cut after its first `count` nodes.
fn first_nodes(count: usize) -> String {
    let starts: Vec<usize> = SITE.match_indices("\n[[node]]\n").map(|(i, _)| i).collect();
    match starts.get(count) {
        Some(&end) => SITE[..end].to_string(),
        None => SITE.to_string(),
    }
}

#[test]
fn a_primary_installed_alone_forms_a_cluster_that_a_later_machine_joins() {
    let mut lab = Lab::new(Latencies::default(), &[]);
    let pin = lab
        .site_toml
        .lines()
        .find(|l| l.starts_with("primary-fingerprint"))
        .unwrap()
        .to_string();

    // The first machine: a site of one node, with a join secret.
    lab.site_toml = format!(
        "{}\n[cluster]\njoin-secret = \"{SECRET}\"\n{pin}\n",
        first_nodes(1)
    );
    lab.install(1, false);
    assert!(lab.config(1).forms_cluster());
    let (r, errors) = lab.run_until_done(1, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    assert!(lab.site.quorate("tappaas1"));
    assert_eq!(lab.site.cluster_members("tappaas1"), ["tappaas1"]);
    assert_eq!(
        lab.site.cluster_name("tappaas1").as_deref(),
        Some("TAPPaaS")
    );
    // Its window closed and its copy of the secret gone, as on any cluster's primary.
    assert_ne!(lab.site.node("tappaas1").unwrap().root_password(), SECRET);
    let copy = std::fs::read_to_string(lab.root(1).join("etc/tappaas/site.toml")).unwrap();
    assert!(!copy.contains(SECRET));
    let st = lab.state(1);
    for step in ["create-cluster", "close-join-window", "forget-join-secret"] {
        assert_eq!(st.step(step).unwrap().state, StepState::Done, "{step}");
    }

    // Months later: a second machine, from the site file saved with it and a fresh secret.
    const FRESH: &str = "a-fresh-one-time-secret-for-tappaas2";
    lab.site_toml = format!(
        "{}\n[cluster]\njoin-secret = \"{FRESH}\"\n{pin}\n",
        first_nodes(2)
    );
    // `tappaas-bootstrap join-window open --site <that file>` on the primary.
    let primary_runner = SimRunner::of(&lab, "tappaas1");
    tappaas_bootstrap::steps::set_root_password(&primary_runner, &Secret::new(FRESH)).unwrap();
    lab.install(2, false);
    let (r, errors) = lab.run_until_done(2, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    let mut members = lab.site.cluster_members("tappaas1");
    members.sort();
    assert_eq!(members, ["tappaas1", "tappaas2"]);
    assert!(lab.site.quorate("tappaas2"));
    assert!(lab.site.storages("tappaas1")["tank1"]["nodes"].contains("tappaas2"));
    let copy = std::fs::read_to_string(lab.root(2).join("etc/tappaas/site.toml")).unwrap();
    assert!(!copy.contains(FRESH));
    // `join-window close` on the primary: the fresh secret stops working there too.
    let hash = lab.config(1).site.credentials.root_password_hash;
    tappaas_bootstrap::steps::restore_root_password(&primary_runner, &hash).unwrap();
    assert_ne!(lab.site.node("tappaas1").unwrap().root_password(), FRESH);
}
