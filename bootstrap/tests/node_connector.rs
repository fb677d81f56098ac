#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The real connector (`NodeConnector`) against a simulated node: while the join secret is
//! root's password it logs in with a ticket, which Proxmox requires for a cluster create;
//! once the window is closed it falls back to an API token made by `pveum` (here a stand-in
//! that makes the token through the simulator's API), with which a create is refused.

mod common;

use common::*;
use std::sync::Mutex;
use tappaas_bootstrap::config::Paths;
use tappaas_bootstrap::connect::{Connector, NodeConnector};
use tappaas_bootstrap::pve::{CreateCluster, Credentials, Fingerprint, PveClient, Secret};
use tappaas_bootstrap::runner::{Cmd, Output, Runner};
use tappaas_pve_sim::Latencies;

/// `pveum user token add|remove root@pam NAME` on the simulated node.
struct Pveum {
    site: std::sync::Arc<tappaas_pve_sim::SimSite>,
    node: String,
    calls: Mutex<Vec<String>>,
}

impl Runner for Pveum {
    fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.calls.lock().unwrap().push(cmd.display());
        // pveum needs no password as root on the node; its stand-in uses the current one.
        let node = self.site.node(&self.node).unwrap();
        let root = PveClient::new(
            &node.url(),
            Fingerprint::parse(&node.fingerprint())?,
            Credentials::Password {
                user: "root@pam".into(),
                password: Secret::new(node.root_password()),
            },
            client_options(),
        )?;
        let argv = cmd.argv();
        let path = format!("/access/users/root@pam/token/{}", argv[5]);
        match argv[..4] {
            ["pveum", "user", "token", "remove"] => {
                let code = i32::from(root.call(reqwest::Method::DELETE, &path, &[]).is_err());
                Ok(Output {
                    code,
                    ..Default::default()
                })
            }
            ["pveum", "user", "token", "add"] => {
                assert!(argv.windows(2).any(|w| w == ["--privsep", "0"]));
                let v = root.call(
                    reqwest::Method::POST,
                    &path,
                    &[("privsep".to_string(), "0".to_string())],
                )?;
                Ok(Output {
                    code: 0,
                    stdout: v.to_string(),
                    stderr: String::new(),
                })
            }
            _ => anyhow::bail!("unexpected {argv:?}"),
        }
    }
}

#[test]
fn a_ticket_while_the_window_is_open_a_token_afterwards() {
    let lab = Lab::new(Latencies::default(), &[]);
    let node = lab.site.node("tappaas1").unwrap();
    let pveum = Pveum {
        site: lab.site.clone(),
        node: "tappaas1".into(),
        calls: Mutex::new(Vec::new()),
    };
    let create = CreateCluster {
        clustername: "TAPPaaS".into(),
        nodeid: Some(1),
        link0: "address=10.0.0.10".into(),
    };

    // The window is closed (root's password is not the secret): a token, and no create.
    let mut c = NodeConnector::new(Paths::new(lab.root(1)), &pveum, client_options())
        .with_password(Some(Secret::new(SECRET)));
    c.local_url = node.url();
    let api = c.local().unwrap();
    assert_eq!(api.version().unwrap(), "9.1");
    let err = api.create_cluster(&create).unwrap_err();
    assert!(err.to_string().contains("root@pam"), "{err}");
    // The token is reused while it works.
    c.local().unwrap();
    let adds = |p: &Pveum| {
        p.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" add "))
            .count()
    };
    assert_eq!(adds(&pveum), 1);

    // The window is open: a root@pam ticket, and the create works.
    node.set_root_password(SECRET);
    let api = c.local().unwrap();
    let upid = api.create_cluster(&create).unwrap();
    tappaas_bootstrap::pve::wait_task(api.as_ref(), &upid, Default::default()).unwrap();
    assert_eq!(
        lab.site.cluster_name("tappaas1").as_deref(),
        Some("TAPPaaS")
    );
    assert_eq!(adds(&pveum), 1);
    c.cleanup().unwrap();
    assert!(
        lab.site.tokens("tappaas1").is_empty(),
        "{:?}",
        lab.site.tokens("tappaas1")
    );
}
