//! The `tappaas-pve-sim` binary: prints its endpoints, serves them, obeys its control endpoint.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::pinned_client;
use serde_json::Value;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with two nodes; returns it (killed when dropped) and the endpoints it
/// printed.
fn start_sim() -> (Killed, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tappaas-pve-sim"))
        .args([
            "--node",
            "tappaas1=10.0.0.10",
            "--node",
            "tappaas2=10.0.0.11",
            "--root-password",
            "lab-root-pw",
            "--realistic",
            "--latency-scale",
            "0.01",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_endpoints_and_serves_them() {
    let (child, out) = start_sim();
    let nodes = out["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1]["name"], "tappaas2");
    assert_eq!(nodes[1]["address"], "10.0.0.11");
    let fp = nodes[0]["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 95);

    let url = nodes[0]["url"].as_str().unwrap();
    let http = pinned_client(fp, std::time::Duration::from_secs(5));
    let r = http
        .post(format!("{url}/api2/json/access/ticket"))
        .form(&[("username", "root@pam"), ("password", "lab-root-pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["data"]["ticket"]
        .as_str()
        .unwrap()
        .starts_with("PVE:root@pam:"));
    // A client pinning another fingerprint refuses the node.
    let other = pinned_client(
        nodes[1]["fingerprint"].as_str().unwrap(),
        std::time::Duration::from_secs(5),
    );
    assert!(other
        .get(format!("{url}/api2/json/version"))
        .send()
        .await
        .is_err());

    control_endpoint_takes_node_1_down_and_up(&http, out["admin"].as_str().unwrap(), url).await;
    drop(child);
}

/// The control endpoint takes node 1 down and up again, injects a fault, and logs requests.
async fn control_endpoint_takes_node_1_down_and_up(http: &reqwest::Client, admin: &str, url: &str) {
    let plain = http.clone(); // plain HTTP needs no TLS; any client will do
    let r = plain
        .post(format!("{admin}/nodes/tappaas1/down?mode=refuse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let err = http
        .get(format!("{url}/api2/json/version"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let state: Value = plain
        .get(format!("{admin}/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["nodes"][0]["down"], "refuse");
    plain
        .post(format!("{admin}/nodes/tappaas1/up"))
        .send()
        .await
        .unwrap();
    let r = http
        .get(format!("{url}/api2/json/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "up again, and wants a ticket");
    let r = plain
        .post(format!("{admin}/faults"))
        .body(r#"{"path": "/version", "status": 500, "message": "boom"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!("{url}/api2/json/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let log: Value = plain
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().last().unwrap()["status"], 500);
}
