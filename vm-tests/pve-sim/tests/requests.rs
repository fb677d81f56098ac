//! The schema check, authentication, tokens and injected faults, seen by an HTTPS client.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{create_cluster, Pve};
use tappaas_pve_sim::api::IMPLEMENTED;
use tappaas_pve_sim::schema::Schema;
use tappaas_pve_sim::{SimConfig, SimSite};

const UNDEFINED: &str =
    "property is not defined in schema and the schema does not allow additional properties";

#[test]
fn the_vendored_schema_lists_exactly_the_implemented_endpoints() {
    let schema = Schema::vendored().as_ref().unwrap();
    let implemented: Vec<(String, String)> = IMPLEMENTED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(schema.endpoints(), implemented);
    let prov = schema.provenance();
    assert!(prov["source"]
        .as_str()
        .unwrap()
        .contains("pve-api-schema.json.gz"));
    assert_eq!(prov["extracted_by"], "schema/extract.py");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberately_wrong_requests_are_rejected_like_pve_does() {
    let site = SimSite::start(SimConfig::with_nodes(1)).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    let pve = Pve::login(&n1).await;
    // Twelve 400s in all, counted in the request log below.
    unknown_parameter_enum_pattern_and_type(&pve).await;
    missing_too_long_format_path_and_range(&pve).await;
    options_of_another_storage_type_and_json_bodies(&pve).await;
    // Unknown path / method.
    let r = pve.call("GET", "/cluster/nothing", &[]).await.unwrap();
    assert_eq!(r.status, 501);
    let r = pve.call("PATCH", "/version", &[]).await.unwrap();
    assert_eq!(r.status, 501);

    // Nothing of that changed the node, and every rejection is in the request log.
    assert!(site.cluster_members("tappaas1").is_empty());
    assert!(!site.storages("tappaas1").contains_key("pbs1"));
    let rejected = site.rejected_requests();
    assert_eq!(rejected.iter().filter(|r| r.status == 400).count(), 12);
    assert!(rejected
        .iter()
        .any(|r| r.error.as_deref().unwrap_or("").contains("colour")));
    a_correct_request_still_works(&site, &pve, &n1.fingerprint()).await;
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

/// An unknown parameter, a bad enum value, a bad pattern, wrong types: five 400s.
async fn unknown_parameter_enum_pattern_and_type(pve: &Pve) {
    // Unknown parameter.
    let r = pve
        .call(
            "POST",
            "/cluster/config",
            &[("clustername", "TAPPaaS"), ("colour", "blue")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.error("colour"), UNDEFINED);
    assert_eq!(r.body["data"], serde_json::Value::Null);
    assert_eq!(r.body["message"], "Parameter verification failed.\n");
    // Bad enum.
    let r = pve
        .call(
            "POST",
            "/storage",
            &[
                ("storage", "tank1"),
                ("type", "zfs-pool"),
                ("pool", "tank1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.error("type").starts_with(
            "value 'zfs-pool' does not have a value in the enumeration 'btrfs, cephfs,"
        ),
        "{r:?}"
    );
    // Bad pattern.
    let r = pve
        .call(
            "POST",
            "/cluster/config/join",
            &[
                ("hostname", "10.0.0.10"),
                ("fingerprint", "AA:BB"),
                ("password", "x"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error("fingerprint"),
        "value does not match the regex pattern"
    );
    // Wrong type.
    let r = pve
        .call(
            "POST",
            "/cluster/config",
            &[("clustername", "TAPPaaS"), ("nodeid", "one")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.error("nodeid"),
        "type check ('integer') failed - got 'one'"
    );
    let r = pve
        .call(
            "POST",
            "/storage",
            &[
                ("storage", "t"),
                ("type", "zfspool"),
                ("pool", "t"),
                ("sparse", "maybe"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        r.error("sparse"),
        "type check ('boolean') failed - got 'maybe'"
    );
}

/// A missing required parameter, one too long, a bad format, a bad path parameter, a value
/// out of range: five 400s.
async fn missing_too_long_format_path_and_range(pve: &Pve) {
    // Missing required, too long, bad format, bad path parameter, range.
    let r = pve.call("POST", "/cluster/config", &[]).await.unwrap();
    assert_eq!(
        r.error("clustername"),
        "property is missing and it is not optional"
    );
    let r = pve
        .call(
            "POST",
            "/cluster/config",
            &[("clustername", "TAPPaaS-community")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.error("clustername"),
        "value may only be 15 characters long"
    );
    let r = pve
        .call(
            "POST",
            "/cluster/config",
            &[("clustername", "TAPPaaS"), ("link0", "not an ip!")],
        )
        .await
        .unwrap();
    assert!(
        r.error("link0").starts_with("invalid format - address:"),
        "{r:?}"
    );
    let r = pve
        .call("GET", "/nodes/no_such_node!/status", &[])
        .await
        .unwrap();
    assert_eq!(
        r.error("node"),
        "value does not look like a valid node name"
    );
    let r = pve
        .call(
            "POST",
            "/storage",
            &[
                ("storage", "pbs1"),
                ("type", "pbs"),
                ("server", "10.0.0.12"),
                ("datastore", "ds"),
                ("port", "70000"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.error("port"), "value must have a maximum value of 65535");
}

/// Options of another storage type (SectionConfig) with a required one missing, and a JSON
/// body checked like a form: two 400s.
async fn options_of_another_storage_type_and_json_bodies(pve: &Pve) {
    // Options of another storage type (SectionConfig), and a required one missing.
    let r = pve
        .call(
            "POST",
            "/storage",
            &[
                ("storage", "pbs1"),
                ("type", "pbs"),
                ("server", "10.0.0.12"),
                ("pool", "tank1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error("pool"),
        "property is not allowed for storage type 'pbs'"
    );
    assert_eq!(
        r.error("datastore"),
        "property is missing and it is not optional"
    );
    // JSON bodies are checked the same way.
    let r = pve
        .http
        .post(format!("{}/cluster/config", pve.base))
        .header(
            "Cookie",
            format!(
                "PVEAuthCookie={}",
                common::urlencode(&pve.ticket.as_ref().unwrap().0)
            ),
        )
        .header("CSRFPreventionToken", &pve.ticket.as_ref().unwrap().1)
        .json(&serde_json::json!({"clustername": "TAPPaaS", "votes": "many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"]["votes"],
        "type check ('integer') failed - got 'many'"
    );
}

/// A correct request still works, and the password it sets is neither readable nor logged.
async fn a_correct_request_still_works(site: &SimSite, pve: &Pve, fingerprint: &str) {
    pve.ok(
        "POST",
        "/storage",
        &[
            ("storage", "pbs1"),
            ("type", "pbs"),
            ("server", "10.0.0.12"),
            ("datastore", "tank2"),
            ("username", "root@pam"),
            ("password", "secret"),
            ("fingerprint", fingerprint),
            ("content", "backup"),
            (
                "prune-backups",
                "keep-last=4,keep-daily=14,keep-weekly=8,keep-monthly=12,keep-yearly=6",
            ),
        ],
    )
    .await;
    let got = pve.ok("GET", "/storage/pbs1", &[]).await;
    assert!(
        got.get("password").is_none(),
        "passwords are not readable: {got}"
    );
    assert_eq!(
        site.storage_secret("tappaas1", "pbs1", "password")
            .as_deref(),
        Some("secret")
    );
    assert!(site
        .requests()
        .iter()
        .all(|r| r.params.get("password").is_none_or(|p| p == "***")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_tickets_csrf_tokens_and_passwords() {
    let site = SimSite::start(SimConfig::with_nodes(2)).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    let mut anon = Pve::new(&n1);
    let r = anon.call("GET", "/version", &[]).await.unwrap();
    assert_eq!(
        (r.status, r.body["message"].as_str().unwrap()),
        (401, "No ticket\n")
    );
    let r = anon.try_login("wrong").await;
    assert_eq!(
        (r.status, r.body["message"].as_str().unwrap()),
        (401, "authentication failure\n")
    );
    // A ticket from another node is not valid here (different auth key).
    let other = Pve::login(&site.node("tappaas2").unwrap()).await;
    anon.ticket = other.ticket.clone();
    assert_eq!(anon.call("GET", "/version", &[]).await.unwrap().status, 401);

    let mut pve = Pve::login(&n1).await;
    assert_eq!(pve.ok("GET", "/version", &[]).await["release"], "9.1");
    // Writes need the CSRF token.
    let csrf_less = Pve {
        ticket: pve.ticket.clone().map(|(t, _)| (t, "0:bad".into())),
        ..Pve::new(&n1)
    };
    let r = csrf_less
        .call(
            "POST",
            "/storage",
            &[("storage", "x1"), ("type", "zfspool"), ("pool", "x1")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.body["message"],
        "Permission denied - invalid csrf token\n"
    );

    // Password rotation: the old password stops working, the new one works.
    let old = n1.root_password();
    pve.ok(
        "PUT",
        "/access/password",
        &[
            ("userid", "root@pam"),
            ("password", "a-new-long-password"),
            ("confirmation-password", &old),
        ],
    )
    .await;
    assert_eq!(n1.root_password(), "a-new-long-password");
    assert_eq!(pve.try_login(&old).await.status, 401);
    assert_eq!(pve.try_login("a-new-long-password").await.status, 200);
    let r = pve
        .call(
            "PUT",
            "/access/password",
            &[("userid", "root@pam"), ("password", "short")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.error("password"),
        "value must be at least 8 characters long"
    );
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_can_be_created_used_and_deleted() {
    let site = SimSite::start(SimConfig::with_nodes(1)).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    let pve = Pve::login(&n1).await;
    let tok = pve
        .ok(
            "POST",
            "/access/users/root@pam/token/agent",
            &[("privsep", "0"), ("comment", "first boot")],
        )
        .await;
    assert_eq!(tok["full-tokenid"], "root@pam!agent");
    let secret = tok["value"].as_str().unwrap().to_string();
    let r = pve
        .call("POST", "/access/users/root@pam/token/agent", &[])
        .await
        .unwrap();
    assert_eq!(r.body["message"], "Token already exists.\n");

    let mut with_token = Pve::new(&n1);
    with_token.token = Some(format!("root@pam!agent={secret}"));
    assert_eq!(
        with_token.ok("GET", "/cluster/status", &[]).await[0]["name"],
        "tappaas1"
    );
    with_token
        .ok(
            "POST",
            "/storage",
            &[("storage", "tank1"), ("type", "zfspool"), ("pool", "tank1")],
        )
        .await;
    // Cluster create/join/delnode have no `permissions` in the schema: root@pam only, not its
    // tokens.
    let r = with_token
        .call("POST", "/cluster/config", &[("clustername", "TAPPaaS")])
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["message"].as_str().unwrap()),
        (403, "Permission check failed (user != root@pam)\n")
    );
    // Tokens may not change passwords (allowtoken 0 in the schema).
    let r = with_token
        .call(
            "PUT",
            "/access/password",
            &[("userid", "root@pam"), ("password", "abcdefghij")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    // A privilege-separated token has no rights without ACLs.
    let sep = pve
        .ok("POST", "/access/users/root@pam/token/sep", &[])
        .await;
    let mut sep_client = Pve::new(&n1);
    sep_client.token = Some(format!("root@pam!sep={}", sep["value"].as_str().unwrap()));
    assert_eq!(
        sep_client
            .call("GET", "/cluster/status", &[])
            .await
            .unwrap()
            .status,
        403
    );

    pve.ok("DELETE", "/access/users/root@pam/token/agent", &[])
        .await;
    assert_eq!(
        with_token
            .call("GET", "/cluster/status", &[])
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(site.tokens("tappaas1"), ["root@pam!sep"]);
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_and_delays_hit_the_next_matching_requests_only() {
    let site = SimSite::start(SimConfig::with_nodes(2)).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    site.fail_requests(
        Some("POST"),
        "/cluster/config",
        2,
        500,
        "injected: pveproxy restarting",
    );
    let pve = Pve::login(&n1).await;
    for _ in 0..2 {
        let r = pve
            .call("POST", "/cluster/config", &[("clustername", "TAPPaaS")])
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.body["message"].as_str().unwrap()),
            (500, "injected: pveproxy restarting\n")
        );
    }
    assert!(site.faults().is_empty());
    assert_eq!(create_cluster(&n1).await["exitstatus"], "OK");

    // A delay longer than the client's timeout looks like a hang; the retry goes through.
    site.delay_requests(None, "/cluster/config/join", 1, Duration::from_secs(5));
    let p2 = Pve::login(&n2).await;
    // Only the delayed call gets a short timeout, so a slow machine cannot fail the login.
    let impatient = Pve {
        http: common::pinned_client(&n2.fingerprint(), Duration::from_millis(800)),
        ..Pve::new(&n2)
    };
    let impatient = Pve {
        ticket: p2.ticket.clone(),
        ..impatient
    };
    let fp = n1.fingerprint();
    let pw = n1.root_password();
    let params = [
        ("hostname", "tappaas1.mgmt.internal"),
        ("fingerprint", fp.as_str()),
        ("password", pw.as_str()),
    ];
    let err = impatient
        .call("POST", "/cluster/config/join", &params)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let upid = p2.ok("POST", "/cluster/config/join", &params).await;
    assert!(upid.as_str().unwrap().starts_with("UPID:tappaas2:"));
    // A path prefix with '*' matches every path below it, on one node only.
    site.inject(tappaas_pve_sim::Fault {
        node: Some("tappaas1".into()),
        method: None,
        path: "/nodes/*".into(),
        remaining: 1,
        kind: tappaas_pve_sim::FaultKind::Status {
            status: 503,
            message: "busy".into(),
        },
    });
    assert_eq!(
        pve.call("GET", "/nodes/tappaas1/status", &[])
            .await
            .unwrap()
            .status,
        503
    );
    assert_eq!(
        pve.call("GET", "/nodes/tappaas1/status", &[])
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_have_pve_upids_latency_and_logs() {
    let mut config = SimConfig::with_nodes(1);
    config
        .latencies
        .tasks
        .insert("clustercreate".into(), Duration::from_millis(1500));
    let site = SimSite::start(config).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    let pve = Pve::login(&n1).await;
    let started = std::time::Instant::now();
    let upid = pve
        .ok("POST", "/cluster/config", &[("clustername", "TAPPaaS")])
        .await;
    let upid = upid.as_str().unwrap().to_string();
    let parts: Vec<&str> = upid.split(':').collect();
    assert_eq!(parts.len(), 9, "{upid}");
    assert_eq!(
        (parts[0], parts[1], parts[5], parts[6], parts[7], parts[8]),
        (
            "UPID",
            "tappaas1",
            "clustercreate",
            "TAPPaaS",
            "root@pam",
            ""
        )
    );
    for hex in &parts[2..5] {
        assert_eq!(hex.len(), 8);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
            "{upid}"
        );
    }
    let path = format!("/nodes/tappaas1/tasks/{}/status", common::urlencode(&upid));
    assert_eq!(pve.ok("GET", &path, &[]).await["status"], "running");
    let st = pve.wait_task(&upid).await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(st["exitstatus"], "OK");
    let log = pve.task_log(&upid).await;
    assert_eq!(log.last().unwrap(), "TASK OK");
    let tasks = pve.ok("GET", "/nodes/tappaas1/tasks", &[]).await;
    assert_eq!(tasks[0]["upid"], upid.as_str());
    let r = pve
        .call("GET", "/nodes/tappaas1/tasks/UPID:garbage/status", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_updates_honour_the_digest_and_delete_list() {
    let site = SimSite::start(SimConfig::with_nodes(1)).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    let pve = Pve::login(&n1).await;
    pve.ok(
        "POST",
        "/storage",
        &[
            ("storage", "tank1"),
            ("type", "zfspool"),
            ("pool", "tank1"),
            ("sparse", "1"),
        ],
    )
    .await;
    let got = pve.ok("GET", "/storage/tank1", &[]).await;
    let digest = got["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 40);
    pve.ok(
        "PUT",
        "/storage/tank1",
        &[
            ("digest", &digest),
            ("nodes", "tappaas1"),
            ("delete", "sparse"),
        ],
    )
    .await;
    let cfg = &site.storages("tappaas1")["tank1"];
    assert_eq!(cfg.get("nodes").map(String::as_str), Some("tappaas1"));
    assert!(!cfg.contains_key("sparse"));
    // The old digest is stale now.
    let r = pve
        .call(
            "PUT",
            "/storage/tank1",
            &[("digest", &digest), ("content", "images")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.body["message"],
        "detected modified configuration - file changed by other user? Try again.\n"
    );
    let r = pve
        .call("PUT", "/storage/tank1", &[("server", "x")])
        .await
        .unwrap();
    assert_eq!(
        r.error("server"),
        "property is not allowed for storage type 'zfspool'"
    );
    pve.ok("DELETE", "/storage/tank1", &[]).await;
    let r = pve.call("GET", "/storage/tank1", &[]).await.unwrap();
    assert_eq!(r.body["message"], "storage 'tank1' does not exist\n");
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_replication_jobs_are_cluster_wide() {
    let mut config = SimConfig::with_nodes(2);
    config.latencies = tappaas_pve_sim::Latencies::realistic().scaled(0.01);
    let site = SimSite::start(config).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| site.node(&format!("tappaas{i}")).unwrap());
    create_cluster(&n1).await;
    assert_eq!(common::join(&n2, &n1, &[]).await.0["exitstatus"], "OK");
    assert!(
        site.wait_for(Duration::from_secs(5), |s| s.quorate("tappaas2")
            && s.same_cluster("tappaas1", "tappaas2"))
            .await
    );
    let pve = Pve::login(&n2).await;
    let r = pve
        .call(
            "POST",
            "/cluster/backup",
            &[
                ("id", "nightly"),
                ("storage", "pbs1"),
                ("schedule", "21:00"),
                ("all", "1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.body["message"], "storage 'pbs1' does not exist\n");
    pve.ok(
        "POST",
        "/cluster/backup",
        &[
            ("id", "nightly"),
            ("storage", "local"),
            ("schedule", "21:00"),
            ("all", "1"),
            ("mode", "snapshot"),
            ("compress", "zstd"),
        ],
    )
    .await;
    let r = pve
        .call("POST", "/cluster/backup", &[("id", "x"), ("mode", "hot")])
        .await
        .unwrap();
    assert!(
        r.error("mode")
            .starts_with("value 'hot' does not have a value in the enumeration"),
        "{r:?}"
    );
    pve.ok(
        "POST",
        "/cluster/replication",
        &[
            ("id", "110-0"),
            ("target", "tappaas1"),
            ("type", "local"),
            ("schedule", "*/15"),
        ],
    )
    .await;
    let r = pve
        .call(
            "POST",
            "/cluster/replication",
            &[("id", "110-1"), ("target", "tappaas7"), ("type", "local")],
        )
        .await
        .unwrap();
    assert_eq!(r.body["message"], "unknown node 'tappaas7'\n");
    let p1 = Pve::login(&n1).await;
    assert_eq!(
        p1.ok("GET", "/cluster/backup", &[]).await[0]["id"],
        "nightly"
    );
    let rep = p1.ok("GET", "/cluster/replication", &[]).await;
    assert_eq!(
        (rep[0]["guest"].as_u64(), rep[0]["target"].as_str()),
        (Some(110), Some("tappaas1"))
    );
    assert!(site.backup_jobs("tappaas1").contains_key("nightly"));
    assert_eq!(site.return_violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_generated_certificates_are_served() {
    let cert = tappaas_pve_sim::NodeCert::generate("tappaas1").unwrap();
    let mut config = SimConfig::with_nodes(1);
    config.nodes[0].certificate =
        Some(tappaas_pve_sim::NodeCert::from_pem(&cert.cert_pem(), &cert.key_pem()).unwrap());
    let site = SimSite::start(config).await.unwrap();
    let n1 = site.node("tappaas1").unwrap();
    assert_eq!(n1.fingerprint(), cert.fingerprint());
    Pve::login(&n1).await;
    assert_eq!(site.return_violations(), Vec::<String>::new());
}
