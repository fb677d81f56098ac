//! `/cluster/replication` and `/cluster/replication/{id}`: jobs are created, listed, marked for
//! removal and removed as PVE does, cluster-wide.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{create_cluster, join, Pve};
use serde_json::Value;
use tappaas_pve_sim::{DownMode, NodeHandle, SimConfig, SimSite};

async fn three_node_cluster() -> SimSite {
    let site = SimSite::start(SimConfig::with_nodes(3)).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    assert_eq!(create_cluster(&n1).await["exitstatus"], "OK");
    for n in [&n2, &n3] {
        let (status, log) = join(n, &n1, &[]).await;
        assert_eq!(status["exitstatus"], "OK", "{log:?}");
    }
    site
}

fn job<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|j| j["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_jobs_are_marked_removed_and_recreated_like_pve() {
    let site = three_node_cluster().await;
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    let pve = Pve::login(&n1).await;
    for (id, target) in [
        ("110-0", "tappaas2"),
        ("120-0", "tappaas3"),
        ("130-0", "tappaas2"),
    ] {
        pve.ok(
            "POST",
            "/cluster/replication",
            &[
                ("id", id),
                ("target", target),
                ("type", "local"),
                ("schedule", "*/30"),
                ("rate", "50"),
                ("comment", "db replica"),
            ],
        )
        .await;
    }
    // Seen from another member: the jobs live in the cluster's replication.cfg.
    let list = Pve::login(&n3)
        .await
        .ok("GET", "/cluster/replication", &[])
        .await;
    let j = job(&list, "120-0").unwrap();
    assert_eq!(
        (&j["target"], &j["rate"], &j["guest"], &j["jobnum"]),
        (
            &Value::from("tappaas3"),
            &Value::from(50.0),
            &Value::from(110 + 10),
            &Value::from(0)
        )
    );
    assert_eq!(j["comment"], "db replica");
    sources_are_checked_cluster_wide(&pve).await;
    removal_waits_for_the_target(&site, &pve, &n2).await;
    force_drops_a_job_at_once(&site, &pve).await;
    let mut ids: Vec<String> = site.replication_jobs("tappaas2").into_keys().collect();
    ids.sort();
    assert_eq!(ids, ["110-0", "120-0"]);
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

/// replication.cfg is cluster-wide: a job to the member that takes the request is fine (PVE
/// checks against the guest's node when the job runs), one from a node to itself not.
async fn sources_are_checked_cluster_wide(pve: &Pve) {
    // replication.cfg is cluster-wide: a job to the member that takes the request is fine
    // (PVE checks against the guest's node when the job runs), one from a node to itself not.
    pve.ok(
        "POST",
        "/cluster/replication",
        &[
            ("id", "140-0"),
            ("target", "tappaas1"),
            ("source", "tappaas2"),
            ("type", "local"),
        ],
    )
    .await;
    let r = pve
        .call(
            "POST",
            "/cluster/replication",
            &[
                ("id", "150-0"),
                ("target", "tappaas3"),
                ("source", "tappaas3"),
                ("type", "local"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body["message"],
        "source and target node 'tappaas3' are the same\n"
    );
}

/// Without force a job is only marked until the runner reaches its target; `keep` needs no
/// target.
async fn removal_waits_for_the_target(site: &SimSite, pve: &Pve, n2: &NodeHandle) {
    // Without force, a job is only marked; its target (or, for 140-0, the guest's node) is
    // down, so the runner cannot remove it and the job stays, listed with `remove_job`, and
    // its id stays taken.
    n2.set_down(DownMode::Refuse).await;
    pve.ok("DELETE", "/cluster/replication/110-0", &[]).await;
    pve.ok("DELETE", "/cluster/replication/140-0", &[]).await;
    let list = pve.ok("GET", "/cluster/replication", &[]).await;
    assert_eq!(job(&list, "110-0").unwrap()["remove_job"], "full");
    assert_eq!(job(&list, "140-0").unwrap()["remove_job"], "full");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(site.replication_jobs("tappaas1").contains_key("110-0"));
    assert!(site.replication_jobs("tappaas1").contains_key("140-0"));
    let r = pve
        .call(
            "POST",
            "/cluster/replication",
            &[("id", "110-0"), ("target", "tappaas3"), ("type", "local")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body["message"],
        "replication job '110-0' already exists\n"
    );
    // `keep` removes local snapshots only: no need to reach the target.
    pve.ok("DELETE", "/cluster/replication/130-0", &[("keep", "1")])
        .await;
    assert!(
        site.wait_for(Duration::from_secs(5), |s| !s
            .replication_jobs("tappaas1")
            .contains_key("130-0"))
            .await
    );
    // The target back: the runner finishes the removal.
    n2.set_up().await;
    assert!(
        site.wait_for(Duration::from_secs(5), |s| {
            let jobs = s.replication_jobs("tappaas1");
            !jobs.contains_key("110-0") && !jobs.contains_key("140-0")
        })
        .await
    );
}

/// `force` drops a job at once (and an unknown id is fine with it), so its id is free again.
async fn force_drops_a_job_at_once(site: &SimSite, pve: &Pve) {
    // `force` drops the entry at once; the id can be used again.
    pve.ok(
        "POST",
        "/cluster/replication",
        &[("id", "110-0"), ("target", "tappaas2"), ("type", "local")],
    )
    .await;
    pve.ok("DELETE", "/cluster/replication/110-0", &[("force", "1")])
        .await;
    assert!(!site.replication_jobs("tappaas3").contains_key("110-0"));
    pve.ok(
        "POST",
        "/cluster/replication",
        &[("id", "110-0"), ("target", "tappaas3"), ("type", "local")],
    )
    .await;
    // An unknown id: fine with force (nothing to drop), an error without.
    pve.ok("DELETE", "/cluster/replication/999-0", &[("force", "1")])
        .await;
    let r = pve
        .call("DELETE", "/cluster/replication/999-0", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.body["message"], "no such job '999-0'\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_replication_deletes_are_rejected() {
    let site = three_node_cluster().await;
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    let pve = Pve::login(&n1).await;
    pve.ok(
        "POST",
        "/cluster/replication",
        &[("id", "110-0"), ("target", "tappaas2"), ("type", "local")],
    )
    .await;
    // Schema: the id's pattern, booleans, unknown parameters.
    for (path, params, param) in [
        ("/cluster/replication/99-0", vec![], "id"),
        (
            "/cluster/replication/110-0",
            vec![("force", "sure")],
            "force",
        ),
        ("/cluster/replication/110-0", vec![("purge", "1")], "purge"),
    ] {
        let r = pve.call("DELETE", path, &params).await.unwrap();
        assert_eq!(r.status, 400, "{path} {params:?}: {r:?}");
        assert!(!r.error(param).is_empty(), "{r:?}");
    }
    // The handler: keep and force contradict each other.
    let r = pve
        .call(
            "DELETE",
            "/cluster/replication/110-0",
            &[("force", "1"), ("keep", "1")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.error("keep"), "conflicts with parameter 'force'");
    // Without quorum replication.cfg is read-only.
    n2.set_down(DownMode::Refuse).await;
    n3.set_down(DownMode::Refuse).await;
    let r = pve
        .call("DELETE", "/cluster/replication/110-0", &[("force", "1")])
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.body["message"], "cluster not ready - no quorum?\n");
    assert!(site.replication_jobs("tappaas1").contains_key("110-0"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}
