#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Replacing a failed node that replication jobs involve, end to end against the PVE
//! simulator: the replacement remembers the cluster's jobs that involve its name, and once it
//! has rejoined re-creates exactly those, whatever an administrator deleted meanwhile; jobs
//! that do not involve it are left alone.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tappaas_bootstrap::pve::{Credentials, Fingerprint, PveClient, Secret};
use tappaas_bootstrap::state::StepState;
use tappaas_pve_sim::{DownMode, Latencies};

type Jobs = BTreeMap<String, BTreeMap<String, String>>;

/// A replication job: (id, target, source, schedule, rate, comment).
type JobSpec = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// Two jobs involve tappaas2 (as target, and as the guest's source), two do not.
const JOBS: &[JobSpec] = &[
    (
        "110-0",
        "tappaas2",
        None,
        "*/30",
        Some("50"),
        Some("database replica"),
    ),
    ("111-0", "tappaas1", Some("tappaas2"), "21:30", None, None),
    ("120-0", "tappaas3", None, "*/15", Some("20"), None),
    (
        "121-0",
        "tappaas1",
        Some("tappaas3"),
        "*/15",
        None,
        Some("web"),
    ),
];

/// root@pam on the primary, as an administrator at its web UI.
fn admin(lab: &Lab) -> PveClient {
    let n1 = lab.site.node("tappaas1").unwrap();
    PveClient::new(
        &n1.url(),
        Fingerprint::parse(&n1.fingerprint()).unwrap(),
        Credentials::Password {
            user: "root@pam".into(),
            password: Secret::new(n1.root_password()),
        },
        lab.options,
    )
    .unwrap()
}

/// A formed cluster with [`JOBS`]; returns the jobs as the cluster holds them.
fn formed_with_jobs(latencies: Latencies) -> (Lab, Jobs) {
    let lab = Lab::new(latencies, &[]);
    std::thread::scope(|s| {
        let lab = &lab;
        let hs: Vec<_> = [1u8, 2, 3]
            .into_iter()
            .map(|n| s.spawn(move || (n, lab.run_until_done(n, 5))))
            .collect();
        for h in hs {
            let (n, (r, errors)) = h.join().unwrap();
            r.unwrap_or_else(|e| panic!("tappaas{n}: {e:#}\nearlier: {errors:#?}"));
        }
    });
    let root = admin(&lab);
    for (id, target, source, schedule, rate, comment) in JOBS {
        let mut params = vec![
            ("id".to_string(), id.to_string()),
            ("type".into(), "local".into()),
            ("target".into(), target.to_string()),
            ("schedule".into(), schedule.to_string()),
        ];
        for (k, v) in [("source", source), ("rate", rate), ("comment", comment)] {
            if let Some(v) = v {
                params.push((k.into(), v.to_string()));
            }
        }
        root.call(reqwest::Method::POST, "/cluster/replication", &params)
            .unwrap();
    }
    let jobs = lab.site.replication_jobs("tappaas1");
    assert_eq!(jobs.len(), 4, "{jobs:#?}");
    (lab, jobs)
}

/// tappaas2 dies and is reinstalled from the same stick with `replace = true`; the operator
/// reopens the join window on the primary (`tappaas-bootstrap join-window open`).
fn replace_tappaas2(lab: &Lab) {
    let node2 = lab.site.node("tappaas2").unwrap();
    lab.rt.block_on(node2.set_down(DownMode::Refuse));
    lab.rt
        .block_on(node2.reinstall("fresh-root-password", None))
        .unwrap();
    let runner = SimRunner::of(lab, "tappaas1");
    tappaas_bootstrap::steps::set_root_password(&runner, &Secret::new(SECRET)).unwrap();
    lab.install(2, true);
}

fn delete_job(lab: &Lab, id: &str, force: bool) {
    let params = if force {
        vec![("force".to_string(), "1".to_string())]
    } else {
        Vec::new()
    };
    admin(lab)
        .call(
            reqwest::Method::DELETE,
            &format!("/cluster/replication/{id}"),
            &params,
        )
        .unwrap();
}

/// The jobs the replacement must bring back are the ones it had, by id, target, schedule,
/// rate and comment; the others are exactly as they were.
fn assert_restored(lab: &Lab, before: &Jobs) {
    let after = lab.site.replication_jobs("tappaas1");
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{after:#?}"
    );
    for (id, job) in before {
        let got = &after[id];
        if id.starts_with("12") {
            assert_eq!(
                got, job,
                "{id} does not involve tappaas2 and must be untouched"
            );
            continue;
        }
        for k in ["target", "schedule", "rate", "comment", "type"] {
            assert_eq!(got.get(k), job.get(k), "{id}: {k} in {got:#?}");
        }
        assert_eq!(
            got.get("remove_job"),
            None,
            "{id} is marked for removal: {got:#?}"
        );
    }
}

#[test]
fn jobs_an_admin_deleted_with_force_after_they_were_remembered_are_re_created() {
    let (lab, before) = formed_with_jobs(Latencies::default());
    replace_tappaas2(&lab);
    // The first attempt remembers the jobs, then stops at remove-old-node.
    lab.site.fail_requests(
        Some("DELETE"),
        "/cluster/config/nodes/{node}",
        1,
        500,
        "injected: pmxcfs busy",
    );
    let err = format!("{:#}", lab.run_once(2).unwrap_err());
    assert!(err.contains("injected: pmxcfs busy"), "{err}");
    let st = lab.state(2);
    assert_eq!(
        st.step("remember-replication").unwrap().state,
        StepState::Done
    );
    let remembered: Vec<&str> = st
        .memory
        .replication_jobs
        .as_ref()
        .unwrap()
        .iter()
        .map(|j| j.id.as_str())
        .collect();
    assert_eq!(remembered, ["110-0", "111-0"]);
    // The administrator clears the dead node's jobs, as PVE asks before removing a node.
    for id in ["110-0", "111-0"] {
        delete_job(&lab, id, true);
    }
    assert!(!lab.site.replication_jobs("tappaas1").contains_key("110-0"));

    let (r, errors) = lab.run_until_done(2, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    assert_eq!(
        lab.state(2).step("restore-replication").unwrap().state,
        StepState::Done
    );
    assert!(lab.site.same_cluster("tappaas1", "tappaas2"));
    assert_restored(&lab, &before);
    assert_eq!(lab.site.return_violations(), Vec::<String>::new());
}

#[test]
fn jobs_marked_for_removal_while_the_node_was_dead_are_re_created_after_the_runner_removed_them() {
    // The replication runner looks every 300 ms here (every minute in PVE).
    let latencies = Latencies {
        default_task: Duration::from_millis(300),
        ..Latencies::default()
    };
    let (lab, before) = formed_with_jobs(latencies);
    let node2 = lab.site.node("tappaas2").unwrap();
    lab.rt.block_on(node2.set_down(DownMode::Refuse));
    // Deleted without force: PVE only marks the jobs, and cannot finish their removal while
    // tappaas2 is unreachable, so they stay listed.
    for id in ["110-0", "111-0"] {
        delete_job(&lab, id, false);
    }
    std::thread::sleep(Duration::from_millis(700));
    let marked = lab.site.replication_jobs("tappaas1");
    assert_eq!(marked["110-0"]["remove_job"], "full");
    assert_eq!(marked["111-0"]["remove_job"], "full");

    replace_tappaas2(&lab);
    let (r, errors) = lab.run_until_done(2, 3);
    r.unwrap_or_else(|e| panic!("{e:#}\nearlier: {errors:#?}"));
    // Once tappaas2 is back, the runner removes the marked jobs; the replacement must not
    // have taken them for its own and left them to vanish.
    std::thread::sleep(Duration::from_millis(900));
    assert_restored(&lab, &before);
    let memory = lab.state(2).memory.replication_jobs.unwrap();
    assert_eq!(memory.len(), 2, "{memory:#?}");
}
