//! Cluster formation, quorum, half-failed joins and node replacement, over real HTTPS.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::{create_cluster, join, join_with, Pve};
use tappaas_pve_sim::{DownMode, SimConfig, SimSite};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_one_quorate_cluster() {
    let site = three_node_cluster().await;
    let n1 = site.node("tappaas1").unwrap();
    let n3 = site.node("tappaas3").unwrap();
    for n in ["tappaas1", "tappaas2", "tappaas3"] {
        assert_eq!(
            site.cluster_members(n),
            ["tappaas1", "tappaas2", "tappaas3"]
        );
        assert!(site.quorate(n));
        assert_eq!(site.cluster_name(n).as_deref(), Some("TAPPaaS"));
    }
    assert!(site.same_cluster("tappaas1", "tappaas3"));
    assert_eq!(site.config_version("tappaas2"), Some(3));
    // The joiners got a certificate from the cluster: the join info names the new one.
    let log = &site.tasks("tappaas2")[0].log;
    assert!(
        log.iter()
            .any(|l| l.starts_with("generated new node certificate")),
        "{log:?}"
    );
    let ids: Vec<u32> = site
        .corosync_nodes("tappaas1")
        .values()
        .map(|e| e.nodeid)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        site.corosync_nodes("tappaas1")["tappaas2"].ring0_addr,
        "10.0.0.11"
    );

    // Seen through the API of the last joiner.
    let pve = Pve::login(&n3).await;
    let status = pve.ok("GET", "/cluster/status", &[]).await;
    let cluster = &status[0];
    assert_eq!(cluster["type"], "cluster");
    assert_eq!(cluster["quorate"], 1);
    assert_eq!(cluster["nodes"], 3);
    assert_eq!(
        status
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["online"] == 1)
            .count(),
        3
    );
    let nodes = pve.ok("GET", "/nodes", &[]).await;
    assert_eq!(nodes.as_array().unwrap().len(), 3);
    assert_eq!(nodes[0]["ssl_fingerprint"], n1.fingerprint());

    // The join info carries every member's fingerprint.
    let info = pve.ok("GET", "/cluster/config/join", &[]).await;
    assert_eq!(info["nodelist"][0]["pve_fp"], n1.fingerprint());
    assert_eq!(info["totem"]["cluster_name"], "TAPPaaS");

    // Storage written on one member is cluster-wide.
    let p1 = Pve::login(&n1).await;
    p1.ok(
        "POST",
        "/storage",
        &[
            ("storage", "tank1"),
            ("type", "zfspool"),
            ("pool", "tank1"),
            ("content", "images,rootdir"),
            ("nodes", "tappaas1,tappaas2"),
        ],
    )
    .await;
    // One cluster, one auth key: a ticket from tappaas1 is valid on tappaas3.
    let cross = Pve {
        ticket: p1.ticket.clone(),
        ..Pve::new(&n3)
    };
    let got = cross.ok("GET", "/storage/tank1", &[]).await;
    assert_eq!(got["type"], "zfspool");
    assert_eq!(got["nodes"], "tappaas1,tappaas2");
    assert!(site.storages("tappaas2").contains_key("tank1"));

    // A task of another member is readable through this one (PVE proxies /nodes/{node}).
    let upid = site.tasks("tappaas1")[0].upid.clone();
    assert_eq!(pve.wait_task(&upid).await["type"], "clustercreate");
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_checks_fingerprint_password_and_target() {
    let site = SimSite::start(SimConfig::with_nodes(3)).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());

    // Target not clustered yet.
    let (st, _) = join(&n2, &n1, &[]).await;
    assert!(
        st["exitstatus"]
            .as_str()
            .unwrap()
            .contains("is not in a cluster"),
        "{st}"
    );

    create_cluster(&n1).await;
    // Wrong fingerprint: the fingerprint of another node.
    let (st, _) = join_with(&n2, &n1, &n3.fingerprint(), &n1.root_password(), &[]).await;
    let e = st["exitstatus"].as_str().unwrap();
    assert!(
        e.contains("certificate verify failed") && e.contains(&n1.fingerprint()),
        "{e}"
    );
    // Wrong password.
    let (st, log) = join_with(&n2, &n1, &n1.fingerprint(), "not-the-password", &[]).await;
    assert_eq!(st["exitstatus"], "401 authentication failure");
    assert_eq!(
        log.last().unwrap(),
        "TASK ERROR: 401 authentication failure"
    );
    assert_eq!(site.cluster_members("tappaas1"), ["tappaas1"]);

    // Lowercase fingerprint is accepted (PVE compares case-insensitively).
    let fp = n1.fingerprint().to_lowercase();
    let (st, _) = join_with(&n2, &n1, &fp, &n1.root_password(), &[]).await;
    assert_eq!(st["exitstatus"], "OK");

    // A second join of a member is refused before a task starts.
    let pve = Pve::login(&n2).await;
    let r = pve
        .call(
            "POST",
            "/cluster/config/join",
            &[
                ("hostname", "10.0.0.10"),
                ("fingerprint", &n1.fingerprint()),
                ("password", &n1.root_password()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("already is part of a cluster"));

    // A second cluster create is refused by its task.
    let p1 = Pve::login(&n1).await;
    let upid = p1
        .ok("POST", "/cluster/config", &[("clustername", "Other")])
        .await;
    let st = p1.wait_task(upid.as_str().unwrap()).await;
    assert_eq!(
        st["exitstatus"],
        "cluster config '/etc/pve/corosync.conf' already exists"
    );
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_boots_first_fails_then_joins_once_the_primary_is_up() {
    let mut config = SimConfig::with_nodes(2);
    config.nodes[0].start_down = Some(DownMode::Refuse);
    let site = SimSite::start(config).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| site.node(&format!("tappaas{i}")).unwrap());

    // The primary's API refuses connections while it is down.
    let err = Pve::new(&n1).try_login_err().await;
    assert!(err.is_connect(), "{err:?}");
    let (st, _) = join(&n2, &n1, &[]).await;
    assert_eq!(
        st["exitstatus"],
        "500 Can't connect to 10.0.0.10:8006 (Connection refused)"
    );

    n1.set_down(DownMode::Hang).await;
    let (st, _) = join(&n2, &n1, &[]).await;
    assert_eq!(
        st["exitstatus"],
        "500 Can't connect to 10.0.0.10:8006 (Connection timed out)"
    );

    n1.set_up().await;
    create_cluster(&n1).await;
    let (st, _) = join(&n2, &n1, &[]).await;
    assert_eq!(st["exitstatus"], "OK");
    assert!(site.quorate("tappaas2"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_follows_online_members_and_guards_cluster_config() {
    let site = three_node_cluster().await;
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    let p1 = Pve::login(&n1).await;

    n3.set_down(DownMode::Refuse).await;
    assert!(site.quorate("tappaas1"), "2 of 3 votes is a majority");
    let status = p1.ok("GET", "/cluster/status", &[]).await;
    let n3_entry = status
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "tappaas3")
        .unwrap()
        .clone();
    assert_eq!(n3_entry["online"], 0);

    n2.set_down(DownMode::Hang).await;
    assert!(!site.quorate("tappaas1"));
    let status = p1.ok("GET", "/cluster/status", &[]).await;
    assert_eq!(status[0]["quorate"], 0);
    let r = p1
        .call(
            "POST",
            "/storage",
            &[("storage", "tank2"), ("type", "zfspool"), ("pool", "tank2")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.body["message"], "cluster not ready - no quorum?\n");
    // Reads still work without quorum.
    p1.ok("GET", "/storage", &[]).await;
    // Another member's data is not reachable while it is down.
    let r = p1.call("GET", "/nodes/tappaas2/status", &[]).await.unwrap();
    assert_eq!(r.status, 595);

    // A hung node accepts the connection but never answers.
    let hung = Pve::with_timeout(&n2, std::time::Duration::from_millis(500));
    let err = hung.call("GET", "/version", &[]).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    n2.set_up().await;
    assert!(site.quorate("tappaas1"));
    p1.ok(
        "POST",
        "/storage",
        &[("storage", "tank2"), ("type", "zfspool"), ("pool", "tank2")],
    )
    .await;
    // The node that was down answers again on the same port with the same state.
    n3.set_up().await;
    let p3 = Pve::login(&n3).await;
    assert_eq!(p3.ok("GET", "/storage/tank2", &[]).await["pool"], "tank2");
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_that_fails_half_way_leaves_the_node_listed_until_cleaned_up() {
    let site = SimSite::start(SimConfig::with_nodes(3)).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    create_cluster(&n1).await;
    assert_eq!(join(&n2, &n1, &[]).await.0["exitstatus"], "OK");

    n3.fail_next_joins_halfway(1);
    let (st, log) = join(&n3, &n1, &[]).await;
    assert!(
        st["exitstatus"]
            .as_str()
            .unwrap()
            .contains("join failed half-way"),
        "{st}"
    );
    assert!(
        log.iter()
            .any(|l| l == "Join request OK, finishing setup locally"),
        "{log:?}"
    );
    // The primary lists it and expects its vote; the node itself is still standalone.
    assert_eq!(
        site.cluster_members("tappaas1"),
        ["tappaas1", "tappaas2", "tappaas3"]
    );
    assert!(site.cluster_members("tappaas3").is_empty());
    assert!(site.quorate("tappaas1"), "2 of 3 votes");
    let p1 = Pve::login(&n1).await;
    let status = p1.ok("GET", "/cluster/status", &[]).await;
    let e = status
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "tappaas3")
        .unwrap()
        .clone();
    assert_eq!(e["online"], 0);

    // A forced retry that conflicts otherwise changes nothing.
    let (st, _) = join(&n3, &n1, &[("force", "1"), ("link0", "10.0.0.11")]).await;
    assert_eq!(
        st["exitstatus"],
        "500 Node IP '10.0.0.11' already used by 'tappaas2'"
    );
    assert_eq!(
        site.corosync_nodes("tappaas1")["tappaas3"].ring0_addr,
        "10.0.0.12"
    );
    // A plain retry is refused: the name is taken.
    let (st, _) = join(&n3, &n1, &[]).await;
    assert_eq!(st["exitstatus"], "500 can't add existing node 'tappaas3'");
    // Clean-up: remove the stale entry, then join again.
    p1.ok("DELETE", "/cluster/config/nodes/tappaas3", &[]).await;
    assert_eq!(site.cluster_members("tappaas1"), ["tappaas1", "tappaas2"]);
    let (st, _) = join(&n3, &n1, &[]).await;
    assert_eq!(st["exitstatus"], "OK");
    assert!(site.same_cluster("tappaas1", "tappaas3"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_failed_second_node_costs_the_primary_its_quorum() {
    let site = SimSite::start(SimConfig::with_nodes(2)).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    create_cluster(&n1).await;
    n2.fail_next_joins_halfway(1);
    let (st, _) = join(&n2, &n1, &[]).await;
    assert_ne!(st["exitstatus"], "OK");
    assert!(!site.quorate("tappaas1"), "1 of 2 expected votes");
    let p1 = Pve::login(&n1).await;
    let r = p1
        .call("DELETE", "/cluster/config/nodes/tappaas2", &[])
        .await
        .unwrap();
    assert_eq!(r.body["message"], "cluster not ready - no quorum?\n");
    // `pvecm expected 1` on the primary, then a forced re-join keeps the node id.
    site.set_expected_votes("tappaas1", 1);
    assert!(site.quorate("tappaas1"));
    let (st, log) = join(&n2, &n1, &[("force", "1")]).await;
    assert_eq!(st["exitstatus"], "OK", "{log:?}");
    assert!(log
        .iter()
        .any(|l| l.contains("forcing overwrite of configured node 'tappaas2'")));
    assert_eq!(site.corosync_nodes("tappaas1")["tappaas2"].nodeid, 2);
    assert!(site.quorate("tappaas1") && site.quorate("tappaas2"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_node_rejoins_under_its_old_name() {
    let site = three_node_cluster().await;
    let [n1, _n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    let old_fp = n3.fingerprint();
    n3.set_down(DownMode::Refuse).await;
    let p1 = Pve::login(&n1).await;
    let r = p1
        .call("DELETE", "/cluster/config/nodes/tappaas1", &[])
        .await
        .unwrap();
    assert_eq!(r.body["message"], "Cannot delete myself from cluster!\n");
    let r = p1
        .call("DELETE", "/cluster/config/nodes/tappaas9", &[])
        .await
        .unwrap();
    assert_eq!(
        r.body["message"],
        "Node/IP: tappaas9 is not a known host of the cluster.\n"
    );
    p1.ok("DELETE", "/cluster/config/nodes/tappaas3", &[]).await;
    assert_eq!(site.cluster_members("tappaas2"), ["tappaas1", "tappaas2"]);

    n3.reinstall("new-root-password", None).await.unwrap();
    assert_ne!(n3.fingerprint(), old_fp);
    assert!(site.cluster_members("tappaas3").is_empty());
    let (st, _) = join(&n3, &n1, &[]).await;
    assert_eq!(st["exitstatus"], "OK");
    assert_eq!(
        site.cluster_members("tappaas3"),
        ["tappaas1", "tappaas2", "tappaas3"]
    );
    assert_eq!(site.corosync_nodes("tappaas1")["tappaas3"].nodeid, 3);
    let info = p1.ok("GET", "/cluster/config/join", &[]).await;
    assert_eq!(info["nodelist"][2]["pve_fp"], n3.fingerprint());
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_to_a_one_node_cluster_cost_the_second_its_quorum() {
    // Like PVE: the first join raises expected votes to 2 before the joiner syncs, so the
    // primary is not quorate while it runs, and a second join at the same time is refused.
    let mut config = SimConfig::with_nodes(3);
    config
        .latencies
        .tasks
        .insert("clusterjoin".into(), std::time::Duration::from_secs(2));
    let site = SimSite::start(config).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    create_cluster(&n1).await;
    let (a, b) = tokio::join!(join(&n2, &n1, &[]), join(&n3, &n1, &[]));
    let results = [
        a.0["exitstatus"].as_str().unwrap().to_string(),
        b.0["exitstatus"].as_str().unwrap().to_string(),
    ];
    assert!(results.contains(&"OK".to_string()), "{results:?}");
    assert!(
        results.contains(&"500 cluster not ready - no quorum?".to_string()),
        "{results:?}"
    );
    assert_eq!(site.cluster_members("tappaas1").len(), 2);
    assert!(site.quorate("tappaas1"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_reissues_the_default_certificate_but_keeps_a_custom_one() {
    let mut config = SimConfig::with_nodes(3);
    let custom = tappaas_pve_sim::NodeCert::generate("tappaas3").unwrap();
    config.nodes[2].certificate = Some(custom.clone());
    let site = SimSite::start(config).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    create_cluster(&n1).await;
    let (fp1, fp2) = (n1.fingerprint(), n2.fingerprint());
    assert_eq!(join(&n2, &n1, &[]).await.0["exitstatus"], "OK");
    assert_eq!(join(&n3, &n1, &[]).await.0["exitstatus"], "OK");
    assert_eq!(
        n1.fingerprint(),
        fp1,
        "cluster create keeps the certificate"
    );
    assert_ne!(n2.fingerprint(), fp2, "pve-ssl.pem is re-issued on join");
    assert_eq!(
        n3.fingerprint(),
        custom.fingerprint(),
        "a custom pveproxy-ssl.pem is kept"
    );
    // A client pinning the old fingerprint is refused; the join info has the new one.
    let stale = Pve {
        http: common::pinned_client(&fp2, std::time::Duration::from_secs(5)),
        ..Pve::new(&n2)
    };
    assert!(stale.call("GET", "/version", &[]).await.is_err());
    let info = Pve::login(&n1)
        .await
        .ok("GET", "/cluster/config/join", &[])
        .await;
    assert_eq!(info["nodelist"][1]["pve_fp"], n2.fingerprint());
    assert_eq!(site.return_violations(), Vec::<String>::new());
}
