#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The agent against the PVE simulator: nodes form one quorate cluster from what the installer
//! left in `/etc/tappaas/`, a member that boots first waits, a replaced node rejoins, and each
//! injected fault ends in a retry that succeeds or a clear, persisted error.

mod common;

use common::*;
use std::time::Duration;
use tappaas_bootstrap::pve::{CreateCluster, PveError, Secret};
use tappaas_bootstrap::state::StepState;
use tappaas_pve_sim::{DownMode, Latencies};

fn run_all(lab: &Lab, nodes: &[u8]) -> Vec<(u8, anyhow::Result<()>, Vec<String>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|&n| {
                s.spawn(move || {
                    let (r, errors) = lab.run_until_done(n, 5);
                    (n, r.map(|_| ()), errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn three_nodes_form_one_quorate_cluster_from_their_installed_files() {
    let lab = Lab::new(Latencies::default(), &[]);
    for (n, r, errors) in run_all(&lab, &[1, 2, 3]) {
        r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}\nearlier: {errors:#?}"));
    }
    assert_formed(&lab, "tappaas1");

    // Storage: each pool lists exactly the nodes that have it.
    let storage = lab.site.storages("tappaas2");
    assert_eq!(storage["tank1"]["type"], "zfspool");
    assert_eq!(storage["tank1"]["nodes"], "tappaas1,tappaas2");
    assert_eq!(storage["tank2"]["nodes"], "tappaas3");
    // The backup node's PBS, pinned by its fingerprint, and the nightly job.
    let pbs = &storage["pbs"];
    assert_eq!(pbs["type"], "pbs");
    assert_eq!(pbs["server"], "10.0.0.12");
    assert_eq!(pbs["datastore"], "tappaas");
    let pem = std::fs::read(lab.root(3).join("etc/proxmox-backup/proxy.pem")).unwrap();
    let fp = tappaas_bootstrap::pve::Fingerprint::of_pem(&pem).unwrap();
    assert!(pbs["fingerprint"].eq_ignore_ascii_case(&fp.to_string()));
    let jobs = lab.site.backup_jobs("tappaas1");
    assert_eq!(jobs["tappaas-nightly"]["storage"], "pbs");
    assert_eq!(jobs["tappaas-nightly"]["schedule"], "21:00");

    // The join window is closed and no node keeps the secret.
    assert_ne!(lab.site.node("tappaas1").unwrap().root_password(), SECRET);
    for n in 1..=3 {
        let site = std::fs::read_to_string(lab.root(n).join("etc/tappaas/site.toml")).unwrap();
        assert!(!site.contains(SECRET), "tappaas{n} kept the join secret");
        let st = lab.state(n);
        assert!(st.all_done(), "{st:#?}");
        assert!(lab.root(n).join("var/lib/tappaas/bootstrap.done").exists());
        // A rerun after the end changes nothing and fails nothing.
        lab.run_once(n).unwrap();
    }
    assert_no_request_rejected(&lab);
}

#[test]
fn a_member_that_boots_before_the_primary_waits_and_then_joins() {
    let lab = Lab::new(Latencies::default(), &["tappaas1"]);
    std::thread::scope(|s| {
        let member = s.spawn(|| lab.run_until_done(2, 3));
        // The member is waiting, and says for what.
        std::thread::sleep(Duration::from_millis(800));
        let st = lab.state(2);
        let wait = st.step("wait-for-primary").unwrap();
        assert_eq!(wait.state, StepState::Running, "{st:#?}");
        lab.rt.block_on(lab.site.node("tappaas1").unwrap().set_up());
        let primary = s.spawn(|| lab.run_until_done(1, 3));
        let backup = s.spawn(|| lab.run_until_done(3, 3));
        for (name, h) in [
            ("tappaas2", member),
            ("tappaas1", primary),
            ("tappaas3", backup),
        ] {
            let (r, errors) = h.join().unwrap();
            r.unwrap_or_else(|e| panic!("{name}: {e:#}\nearlier: {errors:#?}"));
        }
    });
    assert_formed(&lab, "tappaas1");
}

#[test]
fn a_primary_that_never_comes_is_a_clear_persisted_error() {
    let mut lab = Lab::new(Latencies::default(), &["tappaas1"]);
    lab.timing.join_wait = Duration::from_millis(300);
    let err = format!("{:#}", lab.run_once(2).unwrap_err());
    assert!(
        err.contains("gave up waiting for the primary at 10.0.0.10"),
        "{err}"
    );
    assert!(err.contains("nothing listens"), "{err}");
    let st = lab.state(2);
    let step = st.step("wait-for-primary").unwrap();
    assert_eq!(step.state, StepState::Failed);
    assert!(
        step.last_error.as_deref().unwrap().contains("10.0.0.10"),
        "{step:?}"
    );
    assert!(!lab.root(2).join("var/lib/tappaas/bootstrap.done").exists());
}

#[test]
fn a_wrong_primary_fingerprint_stops_before_the_secret_is_sent() {
    let lab = Lab::new(Latencies::default(), &[]);
    let site = std::fs::read_to_string(lab.root(2).join("etc/tappaas/site.toml")).unwrap();
    let real = lab.site.node("tappaas1").unwrap().fingerprint();
    let first = if real.starts_with("00") { "11" } else { "00" };
    let wrong = format!("{first}{}", &real[2..]);
    std::fs::write(
        lab.root(2).join("etc/tappaas/site.toml"),
        site.replace(&real, &wrong),
    )
    .unwrap();
    let err = format!("{:#}", lab.run_once(2).unwrap_err());
    assert!(err.contains("is not the one the site file pins"), "{err}");
    assert!(err.contains(&real), "{err}");
    let st = lab.state(2);
    assert_eq!(
        st.step("wait-for-primary").unwrap().state,
        StepState::Failed
    );
    // Nothing reached the primary from tappaas2 with a password: no ticket request, no join.
    assert!(!lab
        .site
        .requests()
        .iter()
        .any(|r| r.path.contains("/cluster/config/join") && r.node == "tappaas2"));
}

#[test]
fn an_injected_join_error_is_retried_and_succeeds() {
    let lab = Lab::new(Latencies::default(), &[]);
    lab.site.fail_requests(
        Some("POST"),
        "/cluster/config/join",
        1,
        500,
        "unable to create directory '/etc/pve/nodes' - Permission denied",
    );
    let results = run_all(&lab, &[1, 2, 3]);
    let mut seen = false;
    for (n, r, errors) in results {
        r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}"));
        if errors.iter().any(|e| e.contains("Permission denied")) {
            seen = true;
            let st = lab.state(n);
            assert_eq!(st.step("join-cluster").unwrap().attempts, 2, "{st:#?}");
        }
    }
    assert!(seen, "the injected error was never seen");
    assert_formed(&lab, "tappaas1");
}

#[test]
fn a_join_that_fails_half_way_is_reported_and_repaired() {
    let lab = Lab::new(Latencies::default(), &[]);
    lab.site
        .node("tappaas2")
        .unwrap()
        .fail_next_joins_halfway(1);
    let results = run_all(&lab, &[1, 2, 3]);
    for (n, r, errors) in &results {
        r.as_ref()
            .unwrap_or_else(|e| panic!("tappaas{n}: {e:#}\nearlier: {errors:#?}"));
    }
    let (_, _, errors) = results.iter().find(|(n, _, _)| *n == 2).unwrap();
    assert!(
        errors.iter().any(|e| e.contains("joining failed half-way")),
        "{errors:#?}"
    );
    assert_formed(&lab, "tappaas1");
}

#[test]
fn a_replaced_node_rejoins_under_its_old_name() {
    let lab = Lab::new(Latencies::default(), &[]);
    for (n, r, _) in run_all(&lab, &[1, 2, 3]) {
        r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}"));
    }
    // A replication job to tappaas2, as the platform would have made.
    let primary = SimConnector::new(&lab, "tappaas1");
    let api = tappaas_bootstrap::connect::Connector::local(&primary).unwrap();
    api.replication_create(&tappaas_bootstrap::pve::ReplicationJob {
        id: "110-0".into(),
        target: "tappaas2".into(),
        schedule: Some("*/15".into()),
        source: None,
        rate: None,
        comment: None,
        remove_job: None,
    })
    .unwrap();
    let old_fp = lab.site.node("tappaas2").unwrap().fingerprint();

    // tappaas2 dies; the same stick reinstalls it; the operator reopens the join window.
    let node2 = lab.site.node("tappaas2").unwrap();
    lab.rt.block_on(node2.set_down(DownMode::Refuse));
    lab.rt
        .block_on(node2.reinstall("fresh-root-password", None))
        .unwrap();
    assert_ne!(node2.fingerprint(), old_fp);
    // `tappaas-bootstrap join-window open` on the primary.
    let primary_runner = SimRunner::of(&lab, "tappaas1");
    tappaas_bootstrap::steps::set_root_password(&primary_runner, &Secret::new(SECRET)).unwrap();
    lab.install(2, true);

    let (r, errors) = lab.run_until_done(2, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    assert_formed(&lab, "tappaas1");
    assert!(lab.site.corosync_nodes("tappaas1").contains_key("tappaas2"));
    let st = lab.state(2);
    for step in [
        "remember-replication",
        "remove-old-node",
        "join-cluster",
        "refresh-ssh-keys",
        "restore-replication",
    ] {
        assert_eq!(st.step(step).unwrap().state, StepState::Done, "{step}");
    }
    assert_eq!(st.memory.replication_jobs.as_ref().unwrap()[0].id, "110-0");
    assert!(lab.site.replication_jobs("tappaas1").contains_key("110-0"));
    assert!(lab.site.storages("tappaas1")["tank1"]["nodes"].contains("tappaas2"));
    // `tappaas-bootstrap join-window close`: the secret stops working.
    let hash = lab.config(1).site.credentials.root_password_hash;
    tappaas_bootstrap::steps::restore_root_password(&primary_runner, &hash).unwrap();
    assert_ne!(lab.site.node("tappaas1").unwrap().root_password(), SECRET);
}

#[test]
fn the_simulator_rejects_a_deliberately_wrong_request() {
    let lab = Lab::new(Latencies::default(), &[]);
    let c = SimConnector::new(&lab, "tappaas1");
    let root = Secret::new(lab.site.node("tappaas1").unwrap().root_password());
    let api = tappaas_bootstrap::connect::Connector::local_root(&c, &root).unwrap();
    let err = api
        .create_cluster(&CreateCluster {
            clustername: "not a name!".into(),
            nodeid: Some(1),
            link0: "address=10.0.0.10".into(),
        })
        .unwrap_err();
    match &err {
        PveError::Api { status, errors, .. } => {
            assert_eq!(*status, 400);
            assert!(errors.contains_key("clustername"), "{err}");
        }
        other => panic!("expected a parameter error, got {other:?}"),
    }
    assert!(err.to_string().contains("clustername"), "{err}");
    let rejected = lab.site.rejected_requests();
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert_eq!(rejected[0].status, 400);
}

#[test]
fn a_hung_primary_is_a_bounded_wait_with_its_reason() {
    let mut lab = Lab::new(Latencies::default(), &[]);
    lab.rt
        .block_on(lab.site.node("tappaas1").unwrap().set_down(DownMode::Hang));
    lab.options.request_timeout = Duration::from_millis(200);
    lab.options.retry.attempts = 1;
    lab.timing.join_wait = Duration::from_millis(600);
    let start = std::time::Instant::now();
    let err = format!("{:#}", lab.run_once(2).unwrap_err());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        err.contains("gave up waiting for the primary at 10.0.0.10"),
        "{err}"
    );
    assert!(err.contains("cannot reach"), "{err}");
}

#[test]
fn transient_api_errors_are_retried_inside_a_step() {
    let lab = Lab::new(Latencies::default(), &[]);
    // pveproxy answers 503 while a backend restarts: the client backs off and tries again.
    lab.site
        .fail_requests(Some("POST"), "/storage", 2, 503, "service unavailable");
    let results = run_all(&lab, &[1, 2, 3]);
    for (n, r, errors) in results {
        r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}"));
        assert!(
            errors.is_empty(),
            "tappaas{n} needed a restart: {errors:#?}"
        );
    }
    assert_formed(&lab, "tappaas1");
    assert!(lab.site.faults().is_empty(), "{:#?}", lab.site.faults());
}
