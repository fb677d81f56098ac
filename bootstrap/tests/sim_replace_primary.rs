#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Replacing the primary, against the PVE simulator: the three nodes form the cluster, the
//! primary dies, the operator opens a survivor's join window and writes its fingerprint into
//! the site file, and the reinstalled primary rejoins through that survivor under its old name
//! and node id. Without a survivor to pin, it stops at once with a persisted error that names
//! the field, and the cluster is left as it was.

mod common;

use common::*;
use tappaas_bootstrap::config::{local_fingerprint, Paths};
use tappaas_bootstrap::connect::Connector;
use tappaas_bootstrap::pve::{ReplicationJob, Secret};
use tappaas_bootstrap::state::StepState;
use tappaas_pve_sim::{DownMode, Latencies};

/// The new one-time secret in the site file the replacement is installed from.
const NEW_SECRET: &str = "lab-second-join-secret-for-replacement";

fn form(lab: &Lab) {
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = [1u8, 2, 3]
            .iter()
            .map(|&n| s.spawn(move || (n, lab.run_until_done(n, 5))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (n, (r, errors)) in results {
        r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}\nearlier: {errors:#?}"));
    }
}

fn job(id: &str, target: &str, source: Option<&str>) -> ReplicationJob {
    ReplicationJob {
        id: id.into(),
        target: target.into(),
        schedule: Some("*/15".into()),
        source: source.map(str::to_string),
        rate: None,
        comment: None,
        remove_job: None,
    }
}

/// The formed cluster with replication jobs to and from the primary, then the primary's
/// death: powered off, its disks replaced, Proxmox reinstalled. The site's certificate (made in
/// advance) is what the installer puts back on it, so it serves the pinned fingerprint again.
fn lose_the_primary(lab: &Lab) {
    form(lab);
    let api = SimConnector::new(lab, "tappaas1").local().unwrap();
    api.replication_create(&job("100-0", "tappaas2", Some("tappaas1")))
        .unwrap();
    let api = SimConnector::new(lab, "tappaas2").local().unwrap();
    api.replication_create(&job("200-0", "tappaas1", Some("tappaas2")))
        .unwrap();
    let api = SimConnector::new(lab, "tappaas3").local().unwrap();
    api.replication_create(&job("300-0", "tappaas1", Some("tappaas3")))
        .unwrap();

    let node1 = lab.site.node("tappaas1").unwrap();
    lab.rt.block_on(node1.set_down(DownMode::Refuse));
    // Two of three votes: the survivors stay quorate and see the primary offline.
    assert!(lab.site.quorate("tappaas2"));
    assert!(lab
        .site
        .cluster_members("tappaas2")
        .contains(&"tappaas1".to_string()));
    lab.rt
        .block_on(node1.reinstall("fresh-root-password", Some(lab.primary_cert.clone())))
        .unwrap();
    assert_eq!(lab.site.cluster_name("tappaas1"), None);
}

/// The site file for the replacement: `replace = true` on the primary (`Lab::install`), a new
/// join secret, and, when `pin_survivor`, the line `join-window open` printed on tappaas2.
fn replacement_site(lab: &mut Lab, pin_survivor: bool) {
    let mut site = lab.site_toml.replace(SECRET, NEW_SECRET);
    if pin_survivor {
        // What `tappaas-bootstrap join-window open --site` does on tappaas2: read its own
        // certificate (as Proxmox serves it since it joined) and give the line.
        lab.refresh_cert(2);
        let served = local_fingerprint(&Paths::new(lab.root(2))).unwrap();
        assert_eq!(
            served.to_string(),
            lab.site.node("tappaas2").unwrap().fingerprint()
        );
        let parsed = tappaas_site::parse(&site, &Default::default()).unwrap();
        let advice =
            tappaas_bootstrap::steps::window_advice(served, Some("tappaas2"), &parsed, "site.toml");
        assert!(
            advice.note.contains("add the line above"),
            "{}",
            advice.note
        );
        site = site.replacen(
            "role = \"member\"",
            &format!("role = \"member\"\n{}", advice.line),
            1,
        );
    }
    lab.site_toml = site;
    // The operator opens the survivor's window with the new secret.
    tappaas_bootstrap::steps::set_root_password(
        &SimRunner::of(lab, "tappaas2"),
        &Secret::new(NEW_SECRET),
    )
    .unwrap();
}

#[test]
fn a_replaced_primary_rejoins_through_a_survivor_under_its_old_name_and_id() {
    let mut lab = Lab::new(Latencies::default(), &[]);
    lose_the_primary(&lab);
    let version_before = lab.site.config_version("tappaas2").unwrap();
    replacement_site(&mut lab, true);
    lab.install(1, true);

    let (r, errors) = lab.run_until_done(1, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));

    assert_rejoined_under_its_old_name(&lab, version_before);
    assert_storage_replication_and_state(&lab);
    assert_joined_through_the_survivor(&lab);
    a_later_member_joins_through_the_replaced_primary(&mut lab);
}

/// One quorate cluster of three, the primary back under its old name, id and link0 address,
/// the dead entry removed by the survivor first, the pinned certificate served.
fn assert_rejoined_under_its_old_name(lab: &Lab, version_before: u32) {
    // One quorate cluster of three, the primary under its old name, id and link0 address.
    assert_formed(lab, "tappaas2");
    let corosync = lab.site.corosync_nodes("tappaas2");
    assert_eq!(corosync["tappaas1"].nodeid, 1);
    assert_eq!(corosync["tappaas1"].ring0_addr, "10.0.0.10");
    assert_eq!(
        lab.site.cluster_name("tappaas1").as_deref(),
        Some("TAPPaaS")
    );
    // The survivor removed the dead entry before the join re-added it.
    assert!(lab.site.requests().iter().any(|r| r.node == "tappaas2"
        && r.method == "DELETE"
        && r.path == "/cluster/config/nodes/tappaas1"
        && r.status == 200));
    assert!(lab.site.config_version("tappaas2").unwrap() >= version_before + 2);
    // It still serves the pinned certificate, so nodes that pin the primary can reach it.
    let pinned = lab.config(1).primary_fingerprint().unwrap().to_string();
    assert_eq!(lab.site.node("tappaas1").unwrap().fingerprint(), pinned);
}

/// The replaced primary's storage, replication jobs and state file after the rejoin, and its
/// own join window closed.
fn assert_storage_replication_and_state(lab: &Lab) {
    // Storage, replication, state.
    assert!(lab.site.storages("tappaas2")["tank1"]["nodes"].contains("tappaas1"));
    let jobs = lab.site.replication_jobs("tappaas1");
    assert!(
        jobs.contains_key("100-0") && jobs.contains_key("200-0"),
        "{jobs:#?}"
    );
    let st = lab.state(1);
    assert!(st.all_done(), "{st:#?}");
    for step in [
        "api-certificate",
        "wait-for-survivor",
        "remember-replication",
        "remove-old-node",
        "join-cluster",
        "api-certificate-after-join",
        "refresh-ssh-keys",
        "register-storage",
        "restore-replication",
        "wait-for-members",
        "close-join-window",
        "forget-join-secret",
    ] {
        assert_eq!(st.step(step).unwrap().state, StepState::Done, "{step}");
    }
    assert!(st.step("create-cluster").is_none());
    let mut remembered: Vec<String> = st
        .memory
        .replication_jobs
        .clone()
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    remembered.sort();
    // The jobs to the primary. (A job from it is known as the primary's only when the
    // cluster reports the job's `source`, which the simulator leaves out.)
    assert_eq!(remembered, ["200-0", "300-0"]);
    // Its own window is closed and its copy of the site file has no secret left.
    assert_ne!(
        lab.site.node("tappaas1").unwrap().root_password(),
        NEW_SECRET
    );
    let site = std::fs::read_to_string(lab.root(1).join("etc/tappaas/site.toml")).unwrap();
    assert!(!site.contains(NEW_SECRET));
    assert!(lab.root(1).join("var/lib/tappaas/bootstrap.done").exists());
}

/// The join went through the survivor, pinned, with force; nothing was refused; the
/// survivor's window closes.
fn assert_joined_through_the_survivor(lab: &Lab) {
    // The join went through the survivor, pinned to its certificate, with force.
    let joins: Vec<_> = lab
        .site
        .requests()
        .into_iter()
        .filter(|r| r.node == "tappaas1" && r.path.ends_with("/cluster/config/join"))
        .collect();
    let fp2 = lab.config(1).site.nodes[1].api_fingerprint.clone().unwrap();
    assert!(
        joins.iter().any(|r| r.status == 200
            && r.params.get("hostname").map(String::as_str) == Some("10.0.0.11")
            && r.params
                .get("fingerprint")
                .map(|f| f.eq_ignore_ascii_case(&fp2))
                == Some(true)
            && r.params.get("force").map(String::as_str) == Some("1")
            && r.params.get("nodeid").map(String::as_str) == Some("1")),
        "{joins:#?}"
    );
    // Nothing the agent sent was refused by the schema check.
    assert_no_request_rejected(lab);
    // `join-window close` on the survivor.
    let hash = lab.config(2).site.credentials.root_password_hash;
    tappaas_bootstrap::steps::restore_root_password(&SimRunner::of(lab, "tappaas2"), &hash)
        .unwrap();
    assert_ne!(
        lab.site.node("tappaas2").unwrap().root_password(),
        NEW_SECRET
    );
}

/// Later, the member dies too: its replacement pins the primary as before and joins through
/// it, which works because the replaced primary serves the pinned certificate.
fn a_later_member_joins_through_the_replaced_primary(lab: &mut Lab) {
    // Later, the member dies too: its replacement pins the primary as before and joins
    // through it, which works because the replaced primary serves the pinned certificate.
    let node2 = lab.site.node("tappaas2").unwrap();
    lab.rt.block_on(node2.set_down(DownMode::Refuse));
    lab.rt
        .block_on(node2.reinstall("another-root-password", None))
        .unwrap();
    let third = "lab-third-join-secret-for-member";
    lab.site_toml = lab
        .site_toml
        .replace(NEW_SECRET, third)
        .replace("replace = true\n", "");
    tappaas_bootstrap::steps::set_root_password(
        &SimRunner::of(lab, "tappaas1"),
        &Secret::new(third),
    )
    .unwrap();
    lab.install(2, true);
    let (r, errors) = lab.run_until_done(2, 3);
    r.unwrap_or_else(|e| panic!("the later member: {e:#}\nearlier: {errors:#?}"));
    let mut members = lab.site.cluster_members("tappaas1");
    members.sort();
    assert_eq!(members, ["tappaas1", "tappaas2", "tappaas3"]);
    assert!(lab.site.quorate("tappaas2"));
}

#[test]
fn without_a_survivor_to_pin_a_replaced_primary_stops_and_changes_nothing() {
    let mut lab = Lab::new(Latencies::default(), &[]);
    lose_the_primary(&lab);
    let before: Vec<String> = lab.site.corosync_nodes("tappaas2").into_keys().collect();
    let version = lab.site.config_version("tappaas2");
    replacement_site(&mut lab, false);
    lab.install(1, true);
    let seen = lab.site.requests().len();

    let err = format!("{:#}", lab.run_once(1).unwrap_err());
    assert!(err.contains("step wait-for-survivor failed"), "{err}");
    assert!(
        err.contains("no other node of the site has an api-fingerprint"),
        "{err}"
    );
    assert!(err.contains("join-window open"), "{err}");
    let st = lab.state(1);
    let step = st.step("wait-for-survivor").unwrap();
    assert_eq!(step.state, StepState::Failed, "{st:#?}");
    assert!(
        step.last_error
            .as_deref()
            .unwrap()
            .contains("api-fingerprint = \"...\""),
        "{step:?}"
    );
    assert_eq!(
        st.step("remove-old-node").unwrap().state,
        StepState::Pending
    );
    assert!(!lab.root(1).join("var/lib/tappaas/bootstrap.done").exists());

    // The cluster is as the primary's death left it: the old entry is still there, offline,
    // nothing was written, and the replacement is in no cluster.
    let after: Vec<String> = lab.site.corosync_nodes("tappaas2").into_keys().collect();
    assert_eq!(after, before);
    assert!(after.contains(&"tappaas1".to_string()));
    assert_eq!(lab.site.config_version("tappaas2"), version);
    assert!(lab.site.quorate("tappaas2"));
    assert!(!lab.site.same_cluster("tappaas2", "tappaas1"));
    assert_eq!(lab.site.cluster_name("tappaas1"), None);
    // The agent asked the survivors nothing (so sent them no secret) and joined nowhere.
    let new = &lab.site.requests()[seen..];
    assert!(
        new.iter()
            .all(|r| r.node == "tappaas1" && !r.path.ends_with("/cluster/config/join")),
        "{new:#?}"
    );
}

#[test]
fn a_replaced_primarys_join_that_fails_half_way_is_retried_with_force() {
    let mut lab = Lab::new(Latencies::default(), &[]);
    lose_the_primary(&lab);
    replacement_site(&mut lab, true);
    lab.install(1, true);
    lab.site
        .node("tappaas1")
        .unwrap()
        .fail_next_joins_halfway(1);

    let (r, errors) = lab.run_until_done(1, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    assert!(
        errors.iter().any(|e| e.contains("joining failed half-way")),
        "{errors:#?}"
    );
    // The half-way join left tappaas1 listed and offline: 2 of 3 votes, still quorate, so the
    // retry was accepted and took the entry over.
    let st = lab.state(1);
    assert_eq!(st.step("join-cluster").unwrap().attempts, 2, "{st:#?}");
    assert_eq!(st.step("remove-old-node").unwrap().attempts, 1, "{st:#?}");
    assert!(st.all_done(), "{st:#?}");
    for n in ["tappaas1", "tappaas2", "tappaas3"] {
        assert!(lab.site.quorate(n), "{n} not quorate");
        assert!(
            lab.site.same_cluster("tappaas2", n),
            "{n} not in the cluster"
        );
    }
    assert_eq!(lab.site.corosync_nodes("tappaas2")["tappaas1"].nodeid, 1);
}
