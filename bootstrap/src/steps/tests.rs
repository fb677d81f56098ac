//! Step and engine tests with mocks at the boundaries (API, systemd, commands).

use super::*;
use crate::connect::MockConnector;
use crate::pve::{ClusterStatusEntry, Fingerprint, MockPveApi, PveError, TaskStatus, Upid};
use crate::runner::{MockRunner, Output};
use crate::systemd::{MockNotify, MockSystemd};
use std::sync::{Arc, Mutex};
use tappaas_site::manifest::{ManifestCluster, ManifestNode, NodeManifest};

const SITE: &str = include_str!("../../../docs/examples/three-node-site.toml");
pub(crate) const SECRET: &str = "one-time-join-secret-0123";

fn fp() -> Fingerprint {
    Fingerprint([0xab; 32])
}

pub(crate) fn config(node: u8, replace: bool) -> NodeConfig {
    config_with(
        node,
        replace,
        &format!("primary-fingerprint = \"{}\"\n", fp()),
    )
}

/// A node of the example site whose `[cluster]` pins the primary with `pin` (TOML lines).
fn config_with(node: u8, replace: bool, pin: &str) -> NodeConfig {
    config_src(node, replace, SITE, pin)
}

/// The survivor's pinned certificate in [`replaced_primary`].
fn survivor_fp() -> Fingerprint {
    Fingerprint([0xcd; 32])
}

/// The primary, replaced; with `survivor`, the member (tappaas2, 10.0.0.11) has an
/// `api-fingerprint`.
fn replaced_primary(survivor: bool) -> NodeConfig {
    let site = if survivor {
        SITE.replacen(
            "role = \"member\"",
            &format!("role = \"member\"\napi-fingerprint = \"{}\"", survivor_fp()),
            1,
        )
    } else {
        SITE.to_string()
    };
    config_src(
        1,
        true,
        &site,
        &format!("primary-fingerprint = \"{}\"\n", fp()),
    )
}

fn config_src(node: u8, replace: bool, site: &str, pin: &str) -> NodeConfig {
    let site =
        format!("{site}\n[cluster]\njoin-secret = \"{SECRET}\"\n{pin}join-wait-minutes = 1\n");
    let (name, role) = match node {
        1 => ("tappaas1", Role::Primary),
        2 => ("tappaas2", Role::Member),
        _ => ("tappaas3", Role::Backup),
    };
    let mut pools = std::collections::BTreeMap::new();
    pools.insert("rpool".to_string(), "rpool".to_string());
    if node == 3 {
        pools.insert("tank2".to_string(), "tank2".to_string());
    } else {
        pools.insert("tank1".to_string(), "tank1".to_string());
    }
    let addr = format!("10.0.0.{}", 9 + node);
    let manifest = NodeManifest {
        format: 1,
        site: "community-centre".into(),
        installed_at: "2026-11-24T10:00:00Z".parse().unwrap(),
        plan_sha256: "00".into(),
        node: ManifestNode {
            name: name.into(),
            id: node,
            role,
            fqdn: format!("{name}.mgmt.internal"),
            address: format!("{addr}/24"),
            replace,
        },
        cluster: ManifestCluster {
            name: "TAPPaaS".into(),
            primary_address: "10.0.0.10".parse().unwrap(),
            link0: addr.parse().unwrap(),
        },
        pools,
    };
    NodeConfig::from_parts(manifest, &site, "site.toml").unwrap()
}

fn timing() -> Timing {
    Timing {
        unit_wait: Duration::from_millis(50),
        join_wait: Duration::from_millis(50),
        turn_wait: Duration::from_millis(20),
        quorum_wait: Duration::from_millis(50),
        pin_grace: Duration::ZERO,
        poll: Duration::from_millis(1),
        task: TaskWait {
            timeout: Duration::from_millis(200),
            poll: Duration::from_millis(1),
        },
    }
}

fn quiet() -> MockNotify {
    let mut n = MockNotify::new();
    n.expect_notify().return_const(());
    n
}

fn names(steps: &[StepDef]) -> Vec<&'static str> {
    steps.iter().map(|s| s.name).collect()
}

#[test]
fn the_configuration_never_shows_the_secret() {
    let shown = format!("{:?}", config(2, false));
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("$6$"), "{shown}");
}

#[test]
fn each_role_gets_its_steps() {
    assert_eq!(
        names(&plan(&config(1, false))),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
            "api-certificate",
            "create-cluster",
            "register-storage",
            "wait-for-members",
            "close-join-window",
            "forget-join-secret"
        ]
    );
    assert_eq!(
        names(&plan(&config(2, false))),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
            "wait-for-primary",
            "join-cluster",
            "register-storage",
            "close-join-window",
            "forget-join-secret"
        ]
    );
    assert_eq!(
        names(&plan(&config(3, false))),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
            "wait-for-primary",
            "join-cluster",
            "register-storage",
            "pbs-datastore",
            "pbs-jobs",
            "pbs-storage",
            "backup-job",
            "close-join-window",
            "forget-join-secret"
        ]
    );
    assert_eq!(
        names(&plan(&config(2, true))),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
            "wait-for-primary",
            "remember-replication",
            "remove-old-node",
            "join-cluster",
            "refresh-ssh-keys",
            "register-storage",
            "restore-replication",
            "close-join-window",
            "forget-join-secret"
        ]
    );
}

fn flaky(_: &Env<'_>, m: &mut Memory) -> anyhow::Result<()> {
    // Fails on its first attempt, as a step whose peer is not there yet.
    if m.replication_jobs.is_none() {
        m.replication_jobs = Some(Vec::new());
        anyhow::bail!("the primary is not there yet")
    }
    Ok(())
}

fn ok(_: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    Ok(())
}

fn never_again(_: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    anyhow::bail!("a done step ran again")
}

#[test]
fn the_engine_persists_failures_and_resumes_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, false);
    let store = StateStore::new(paths.state());
    let mut sd = MockSystemd::new();
    sd.expect_disable()
        .withf(|u| u == "tappaas-bootstrap.service")
        .times(1)
        .returning(|_| Ok(()));
    let mut conn = MockConnector::new();
    conn.expect_cleanup().times(1).returning(|| Ok(()));
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut notify = MockNotify::new();
    let s = sent.clone();
    notify
        .expect_notify()
        .returning(move |m| s.lock().unwrap().push(m.to_string()));
    let runner = MockRunner::new();
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let steps = vec![
        step("first", "first".into(), ok),
        step("second", "second".into(), flaky),
    ];
    let err = run_steps(&env, &store, &steps).unwrap_err();
    assert!(format!("{err:#}").contains("step second failed: the primary is not there yet"));
    let st = store.load().unwrap().unwrap();
    assert_eq!(st.step("first").unwrap().state, StepState::Done);
    let second = st.step("second").unwrap();
    assert_eq!(second.state, StepState::Failed);
    assert_eq!(second.attempts, 1);
    assert_eq!(
        second.last_error.as_deref(),
        Some("the primary is not there yet")
    );
    assert!(!paths.done_marker().exists());
    assert!(sent
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.starts_with("STATUS=step second failed")));

    // The restart: the done step is not run again, the failed one is, and the agent finishes.
    let steps = vec![
        step("first", "first".into(), never_again),
        step("second", "second".into(), flaky),
    ];
    run_steps(&env, &store, &steps).unwrap();
    let st = store.load().unwrap().unwrap();
    assert!(st.all_done());
    assert_eq!(st.step("second").unwrap().attempts, 2);
    assert!(st.step("second").unwrap().last_error.is_none());
    assert!(paths.done_marker().exists());
    assert!(sent
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.starts_with("READY=1")));
}

fn status(cluster: Option<&str>, quorate: bool, nodes: &[(&str, bool)]) -> Vec<ClusterStatusEntry> {
    let mut v = Vec::new();
    if let Some(c) = cluster {
        v.push(ClusterStatusEntry {
            kind: "cluster".into(),
            name: c.into(),
            id: "cluster".into(),
            nodeid: None,
            online: None,
            local: None,
            ip: None,
            quorate: Some(u8::from(quorate)),
            nodes: Some(nodes.len() as u32),
        });
    }
    for (n, on) in nodes {
        v.push(ClusterStatusEntry {
            kind: "node".into(),
            name: (*n).into(),
            id: format!("node/{n}"),
            nodeid: None,
            online: Some(u8::from(*on)),
            local: None,
            ip: None,
            quorate: None,
            nodes: None,
        });
    }
    v
}

fn stopped_ok() -> Result<TaskStatus, PveError> {
    Ok(TaskStatus {
        status: "stopped".into(),
        exitstatus: Some("OK".into()),
    })
}

#[test]
fn the_primary_creates_the_cluster_from_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(1, false);
    let created = Arc::new(Mutex::new(false));
    let mut conn = MockConnector::new();
    let c2 = created.clone();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        let c3 = c2.clone();
        api.expect_cluster_status().returning(move || {
            Ok(if *c3.lock().unwrap() {
                status(Some("TAPPaaS"), true, &[("tappaas1", true)])
            } else {
                Vec::new()
            })
        });
        let c4 = c2.clone();
        api.expect_create_cluster()
            .times(0..=1)
            .returning(move |req| {
                assert_eq!(req.clustername, "TAPPaaS");
                assert_eq!(req.link0, "address=10.0.0.10");
                assert_eq!(req.nodeid, Some(1));
                *c4.lock().unwrap() = true;
                Ok(Upid(
                    "UPID:tappaas1:0000A:0000B:6743A0B0:clustercreate::root@pam:".into(),
                ))
            });
        api.expect_task_status().returning(|n, _| {
            assert_eq!(n, "tappaas1");
            stopped_ok()
        });
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    cluster::create_cluster(&env, &mut Memory::default()).unwrap();
    assert!(*created.lock().unwrap());
    // Again: it sees the cluster and creates nothing.
    cluster::create_cluster(&env, &mut Memory::default()).unwrap();
}

#[test]
fn a_node_in_another_cluster_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, false);
    let mut conn = MockConnector::new();
    conn.expect_local().returning(|| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status()
            .returning(|| Ok(status(Some("Other"), true, &[("tappaas2", true)])));
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let err = cluster::join_cluster(&env, &mut Memory::default()).unwrap_err();
    assert!(
        err.to_string().contains("already in cluster Other"),
        "{err}"
    );
}

#[test]
fn a_failed_join_that_left_the_node_half_joined_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, false);
    let calls = Arc::new(Mutex::new(0));
    let mut conn = MockConnector::new();
    conn.expect_join_hostname().returning(|a| a.to_string());
    conn.expect_remote().returning(|_, _, _| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status()
            .returning(|| Ok(status(Some("TAPPaaS"), true, &[("tappaas1", true)])));
        Ok(Box::new(api))
    });
    let c = calls.clone();
    conn.expect_local().returning(move || {
        let n = {
            let mut g = c.lock().unwrap();
            *g += 1;
            *g
        };
        let mut api = MockPveApi::new();
        // First look: no cluster; after the failed join: corosync has a cluster config.
        api.expect_cluster_status().returning(move || {
            Ok(if n == 1 {
                Vec::new()
            } else {
                status(Some("TAPPaaS"), false, &[("tappaas2", true)])
            })
        });
        api.expect_join_cluster().returning(|req| {
            assert_eq!(req.hostname, "10.0.0.10");
            assert_eq!(req.password, SECRET);
            assert_eq!(req.fingerprint, fp().to_string());
            assert_eq!(req.link0, "address=10.0.0.11");
            assert!(!req.force);
            Ok(Upid(
                "UPID:tappaas2:0000A:0000B:6743A0B0:clusterjoin::root@pam:".into(),
            ))
        });
        api.expect_task_status().returning(|_, _| {
            Ok(TaskStatus {
                status: "stopped".into(),
                exitstatus: Some("unable to join: corosync did not start".into()),
            })
        });
        api.expect_task_log()
            .returning(|_, _| Ok(vec!["starting corosync".into()]));
        api.expect_url()
            .returning(|| "https://127.0.0.1:8006".into());
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let err = format!(
        "{:#}",
        cluster::join_cluster(&env, &mut Memory::default()).unwrap_err()
    );
    assert!(err.contains("half-joined"), "{err}");
    assert!(err.contains("corosync did not start"), "{err}");
}

#[test]
fn the_join_window_uses_chpasswd_with_the_secret_on_stdin_only() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(1, false);
    // Which password root@pam has: the site's hash ("site") or the join secret.
    let password = Arc::new(Mutex::new("site".to_string()));
    let mut conn = MockConnector::new();
    let p = password.clone();
    conn.expect_local_root().returning(move |secret| {
        let works = *p.lock().unwrap() == secret.expose();
        let mut api = MockPveApi::new();
        api.expect_version().returning(move || {
            if works {
                Ok("9.1".into())
            } else {
                Err(PveError::Login {
                    url: "u".into(),
                    user: "root@pam".into(),
                    message: "authentication failure".into(),
                })
            }
        });
        Ok(Box::new(api))
    });
    let mut runner = MockRunner::new();
    let p = password.clone();
    runner.expect_run().returning(move |cmd| {
        assert_eq!(cmd.program, "chpasswd");
        let stdin = cmd.stdin.as_ref().unwrap().expose().to_string();
        assert!(!cmd.display().contains(SECRET));
        if cmd.args == ["-e"] {
            assert!(stdin.starts_with("root:$6$"), "the site's hash");
            *p.lock().unwrap() = "site".into();
        } else {
            assert_eq!(stdin, format!("root:{SECRET}\n"));
            *p.lock().unwrap() = SECRET.into();
        }
        Ok(Output::default())
    });
    let (sd, notify) = (MockSystemd::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    cluster::open_join_window(&env, &mut Memory::default()).unwrap();
    assert_eq!(*password.lock().unwrap(), SECRET);
    cluster::open_join_window(&env, &mut Memory::default()).unwrap();
    cluster::close_join_window(&env, &mut Memory::default()).unwrap();
    assert_eq!(*password.lock().unwrap(), "site");
}

/// The backup node's commands, recorded in `cmds`: no dataset yet, empty PBS lists, a token.
fn pbs_runner(cmds: &Arc<Mutex<Vec<String>>>) -> MockRunner {
    let mut runner = MockRunner::new();
    let c = cmds.clone();
    runner.expect_run().returning(move |cmd| {
        let line = cmd.display();
        c.lock().unwrap().push(line.clone());
        let out = |s: &str| {
            Ok(Output {
                code: 0,
                stdout: s.into(),
                stderr: String::new(),
            })
        };
        match line.as_str() {
            "zfs list -H -o name tank2/pbs" => Ok(Output {
                code: 1,
                stdout: String::new(),
                stderr: "dataset does not exist".into(),
            }),
            l if l.ends_with(" list --output-format json") => out("[]"),
            l if l.contains("generate-token") => {
                out(r#"{"tokenid":"root@pam!pve","value":"7d3c-secret"}"#)
            }
            _ => out(""),
        }
    });
    runner
}

/// systemd as the PBS steps need it: one reload, the two PBS services started and active.
fn pbs_systemd() -> MockSystemd {
    let mut sd = MockSystemd::new();
    sd.expect_daemon_reload().times(1).returning(|| Ok(()));
    sd.expect_start()
        .withf(|u| u == "proxmox-backup.service" || u == "proxmox-backup-proxy.service")
        .times(2)
        .returning(|_| Ok(()));
    sd.expect_active_state().returning(|_| Ok("active".into()));
    sd
}

/// The local API: a quorate one-node cluster with no storage and no backup jobs; the storage
/// registered lands in `registered`, each nightly job created counts in `jobs`.
fn pbs_connector(
    registered: &Arc<Mutex<Vec<(String, String)>>>,
    jobs: &Arc<Mutex<i32>>,
) -> MockConnector {
    let mut conn = MockConnector::new();
    let r = registered.clone();
    let j = jobs.clone();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        api.expect_cluster_status()
            .returning(|| Ok(status(Some("TAPPaaS"), true, &[("tappaas3", true)])));
        api.expect_storage_list().returning(|| Ok(Vec::new()));
        let r2 = r.clone();
        api.expect_storage_create().returning(move |req| {
            *r2.lock().unwrap() = req.params.clone();
            Ok(())
        });
        api.expect_backup_jobs().returning(|| Ok(Vec::new()));
        let j2 = j.clone();
        api.expect_backup_job_create()
            .withf(|id, storage, schedule| {
                id == "tappaas-nightly" && storage == "pbs" && schedule == "21:00"
            })
            .returning(move |_, _, _| {
                *j2.lock().unwrap() += 1;
                Ok(())
            });
        Ok(Box::new(api))
    });
    conn
}

#[test]
fn the_backup_node_sets_up_pbs_with_tappaas_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(3, false);
    let cmds = Arc::new(Mutex::new(Vec::<String>::new()));
    let runner = pbs_runner(&cmds);
    let sd = pbs_systemd();
    let pbs_cert = rcgen::generate_simple_self_signed(vec!["tappaas3".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/proxmox-backup")).unwrap();
    std::fs::write(paths.pbs_cert(), pbs_cert.cert.pem()).unwrap();
    let pbs_fp = Fingerprint::of_der(pbs_cert.cert.der()).to_string();
    let registered = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let jobs = Arc::new(Mutex::new(0));
    let conn = pbs_connector(&registered, &jobs);
    let notify = quiet();
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let mut m = Memory::default();
    pbs::datastore(&env, &mut m).unwrap();
    pbs::jobs(&env, &mut m).unwrap();
    pbs::storage(&env, &mut m).unwrap();
    pbs::backup_job(&env, &mut m).unwrap();
    assert_eq!(*jobs.lock().unwrap(), 1);
    let cmds = cmds.lock().unwrap().clone();
    let expect = [
        "zfs create -o mountpoint=/tank2/pbs tank2/pbs",
        "proxmox-backup-manager datastore create tappaas /tank2/pbs --gc-schedule 03:00",
        "proxmox-backup-manager datastore update tappaas --gc-schedule 03:00",
        "proxmox-backup-manager prune-job create tappaas-prune --store tappaas --schedule 02:00 --keep-last 4 --keep-daily 14 --keep-weekly 8 --keep-monthly 12 --keep-yearly 6",
        "proxmox-backup-manager verify-job create tappaas-verify --store tappaas --schedule 04:00 --ignore-verified true --outdated-after 30",
        "proxmox-backup-manager user generate-token root@pam pve --output-format json",
        "proxmox-backup-manager acl update /datastore/tappaas DatastoreBackup --auth-id root@pam!pve",
    ];
    for e in expect {
        assert!(cmds.iter().any(|c| c == e), "missing `{e}` in {cmds:#?}");
    }
    let dropin = std::fs::read_to_string(
        paths.at("/etc/systemd/system/proxmox-backup-proxy.service.d/tappaas-zfs.conf"),
    )
    .unwrap();
    assert!(dropin.contains("RequiresMountsFor=/tank2/pbs"), "{dropin}");
    let params = registered.lock().unwrap().clone();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("type"), Some("pbs"));
    assert_eq!(get("server"), Some("10.0.0.12"));
    assert_eq!(get("datastore"), Some("tappaas"));
    assert_eq!(get("username"), Some("root@pam!pve"));
    assert_eq!(get("password"), Some("7d3c-secret"));
    assert_eq!(get("fingerprint"), Some(pbs_fp.as_str()));
}

#[test]
fn a_replacement_refuses_to_remove_a_live_node_and_removes_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, true);
    for (online, expect_delete) in [(true, false), (false, true)] {
        let mut conn = MockConnector::new();
        conn.expect_local().returning(|| {
            let mut api = MockPveApi::new();
            api.expect_cluster_status().returning(|| Ok(Vec::new()));
            Ok(Box::new(api))
        });
        conn.expect_remote().returning(move |_, _, _| {
            let mut api = MockPveApi::new();
            api.expect_cluster_status().returning(move || {
                Ok(status(
                    Some("TAPPaaS"),
                    true,
                    &[("tappaas1", true), ("tappaas2", online)],
                ))
            });
            api.expect_delete_node()
                .withf(|n| n == "tappaas2")
                .times(usize::from(expect_delete))
                .returning(|_| Ok(()));
            Ok(Box::new(api))
        });
        let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
        let env = Env {
            paths: &paths,
            config: &cfg,
            connector: &conn,
            systemd: &sd,
            notify: &notify,
            runner: &runner,
            timing: timing(),
        };
        let r = cluster::remove_old_node(&env, &mut Memory::default());
        if online {
            let err = r.unwrap_err();
            assert!(
                err.to_string().contains("refusing to remove a live node"),
                "{err}"
            );
        } else {
            r.unwrap();
        }
    }
}

#[test]
fn the_primary_installs_the_pinned_certificate_or_says_what_to_pin() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let own = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/pve/local")).unwrap();
    std::fs::write(paths.at("/etc/pve/local/pve-ssl.pem"), own.cert.pem()).unwrap();
    let site_cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    let pinned = Fingerprint::of_der(site_cert.cert.der());
    let mut cfg = config(1, false);
    cfg.site.cluster.primary_fingerprint = Some(pinned.to_string());
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());

    // Without the pinned certificate on the node: a message that says what to do.
    let conn = MockConnector::new();
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let err = cluster::api_certificate(&env, &mut Memory::default()).unwrap_err();
    let own_fp = Fingerprint::of_der(own.cert.der());
    assert!(
        err.to_string()
            .contains(&format!("put {own_fp} into [cluster] primary-fingerprint")),
        "{err}"
    );

    // With it: installed through the API, and the key file is gone afterwards.
    std::fs::create_dir_all(paths.at("/etc/tappaas/tls")).unwrap();
    std::fs::write(paths.at(cluster::API_CERT), site_cert.cert.pem()).unwrap();
    std::fs::write(
        paths.at(cluster::API_KEY),
        site_cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let mut conn = MockConnector::new();
    let root = dir.path().to_path_buf();
    let pem = site_cert.cert.pem();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        let root = root.clone();
        let pem = pem.clone();
        api.expect_set_custom_certificate()
            .returning(move |node, cert, key| {
                assert_eq!(node, "tappaas1");
                assert_eq!(cert, pem);
                assert!(key.contains("PRIVATE KEY"));
                // What Proxmox does: pveproxy-ssl.pem, then a pveproxy restart.
                std::fs::write(root.join("etc/pve/local/pveproxy-ssl.pem"), cert).unwrap();
                Ok(String::new())
            });
        api.expect_version().returning(|| Ok("9.1".into()));
        Ok(Box::new(api))
    });
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    cluster::api_certificate(&env, &mut Memory::default()).unwrap();
    assert_eq!(crate::config::local_fingerprint(&paths).unwrap(), pinned);
    assert!(!paths.at(cluster::API_KEY).exists());
    // Again: nothing to do.
    cluster::api_certificate(&env, &mut Memory::default()).unwrap();
}

/// A site that gives only the primary's certificate (no primary-fingerprint) pins the
/// certificate's own fingerprint: on the members for the join, on the primary for the
/// certificate it must serve.
#[test]
fn a_site_with_only_the_certificate_pins_its_fingerprint() {
    let site_cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    let pin = format!(
        "primary-certificate = \"\"\"\n{}\"\"\"\nprimary-key = \"\"\"\n{}\"\"\"\n",
        site_cert.cert.pem(),
        site_cert.signing_key.serialize_pem()
    );
    let computed = Fingerprint::of_der(site_cert.cert.der());
    for node in [1, 2, 3] {
        let cfg = config_with(node, false, &pin);
        assert_eq!(cfg.site.cluster.primary_fingerprint, None);
        assert_eq!(cfg.primary_fingerprint().unwrap(), computed, "node {node}");
    }

    // The primary, serving its own certificate and without the site's on disk, says which
    // fingerprint the site pins: the computed one.
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let own = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/pve/local")).unwrap();
    std::fs::write(paths.at("/etc/pve/local/pve-ssl.pem"), own.cert.pem()).unwrap();
    let cfg = config_with(1, false, &pin);
    let (sd, runner, notify, conn) = (
        MockSystemd::new(),
        MockRunner::new(),
        quiet(),
        MockConnector::new(),
    );
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let err = cluster::api_certificate(&env, &mut Memory::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("the site file pins {computed} for the primary")),
        "{err}"
    );

    // Neither a fingerprint nor a certificate: the message names both ways to pin.
    let none = config_with(2, false, "");
    let err = none.primary_fingerprint().unwrap_err();
    assert!(err.to_string().contains("join-keys"), "{err}");
}

#[test]
fn a_write_refused_for_lack_of_quorum_is_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, false);
    let mut conn = MockConnector::new();
    conn.expect_local().returning(|| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status().returning(|| {
            Ok(status(
                Some("TAPPaaS"),
                true,
                &[("tappaas1", true), ("tappaas2", true)],
            ))
        });
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let mut tries = 0;
    let r = cluster::with_quorum(&env, || {
        tries += 1;
        if tries < 3 {
            Err(PveError::Api {
                method: "POST".into(),
                path: "/storage".into(),
                status: 500,
                message: "cluster not ready - no quorum?".into(),
                errors: Default::default(),
            })
            .context("adding zfspool storage tank1")
        } else {
            Ok(tries)
        }
    });
    assert_eq!(r.unwrap(), 3);
    // Other errors are not retried.
    let mut tries = 0;
    let r: anyhow::Result<()> = cluster::with_quorum(&env, || {
        tries += 1;
        anyhow::bail!("storage tank1 exists but is a dir storage")
    });
    assert!(r.is_err());
    assert_eq!(tries, 1);
}

#[test]
fn a_single_node_forms_no_cluster_and_needs_no_secret() {
    let manifest = NodeManifest {
        format: 1,
        site: "home".into(),
        installed_at: "2026-11-24T10:00:00Z".parse().unwrap(),
        plan_sha256: "00".into(),
        node: ManifestNode {
            name: "tappaas1".into(),
            id: 1,
            role: Role::Primary,
            fqdn: "tappaas1.mgmt.internal".into(),
            address: "10.0.0.10/24".into(),
            replace: false,
        },
        cluster: ManifestCluster {
            name: "TAPPaaS".into(),
            primary_address: "10.0.0.10".parse().unwrap(),
            link0: "10.0.0.10".parse().unwrap(),
        },
        pools: [("rpool".to_string(), "rpool".to_string())].into(),
    };
    let site = include_str!("../../../docs/examples/one-node-site.toml");
    let cfg = NodeConfig::from_parts(manifest, site, "site.toml").unwrap();
    assert_eq!(
        names(&plan(&cfg)),
        [
            "check-network",
            "wait-for-proxmox",
            "api-certificate",
            "register-storage"
        ]
    );
    // With a join secret (the TUI gives every new site one) the node forms a cluster of one,
    // which machines added later join; after the secret is forgotten the plan stays the same.
    let with_secret = format!("{site}\n[cluster]\njoin-secret = \"Zx8-one-time-secret-42\"\n");
    let cfg = NodeConfig::from_parts(cfg.manifest.clone(), &with_secret, "site.toml").unwrap();
    let growing = [
        "check-network",
        "wait-for-proxmox",
        "open-join-window",
        "api-certificate",
        "create-cluster",
        "register-storage",
        "wait-for-members",
        "close-join-window",
        "forget-join-secret",
    ];
    assert_eq!(names(&plan(&cfg)), growing);
    let forgotten = crate::config::without_join_secret(&with_secret);
    let cfg = NodeConfig::from_parts(cfg.manifest.clone(), &forgotten, "site.toml").unwrap();
    assert_eq!(cfg.site.cluster.join_secret, None);
    assert_eq!(names(&plan(&cfg)), growing);
}

#[test]
fn a_replacement_re_creates_the_replication_jobs_the_cluster_lost() {
    use crate::pve::ReplicationJob;
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = config(2, true);
    let job = |id: &str| ReplicationJob {
        id: id.into(),
        target: "tappaas2".into(),
        schedule: Some("*/15".into()),
        source: Some("tappaas1".into()),
        rate: None,
        comment: None,
        remove_job: None,
    };
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut conn = MockConnector::new();
    let c = created.clone();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        api.expect_cluster_status().returning(|| {
            Ok(status(
                Some("TAPPaaS"),
                true,
                &[("tappaas1", true), ("tappaas2", true)],
            ))
        });
        // 110-0 survived the removal, 120-0 did not.
        api.expect_replication_list()
            .returning(move || Ok(vec![job("110-0")]));
        let c2 = c.clone();
        api.expect_replication_create().returning(move |j| {
            assert_eq!(j.schedule.as_deref(), Some("*/15"));
            c2.lock().unwrap().push(j.id.clone());
            Ok(())
        });
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = Env {
        paths: &paths,
        config: &cfg,
        connector: &conn,
        systemd: &sd,
        notify: &notify,
        runner: &runner,
        timing: timing(),
    };
    let mut memory = Memory {
        replication_jobs: Some(vec![job("110-0"), job("120-0")]),
    };
    storage::restore_replication(&env, &mut memory).unwrap();
    assert_eq!(*created.lock().unwrap(), ["120-0"]);
}

#[test]
fn a_replaced_primary_rejoins_through_a_survivor() {
    assert_eq!(
        names(&plan(&replaced_primary(true))),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
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
            "forget-join-secret"
        ]
    );
    let p = plan(&replaced_primary(true));
    let desc = |n: &str| p.iter().find(|s| s.name == n).unwrap().description.clone();
    assert!(desc("wait-for-survivor").contains("tappaas2 at 10.0.0.11"));
    assert!(desc("remove-old-node").starts_with("tappaas2 removes the failed tappaas1"));
    assert!(desc("join-cluster").contains("through tappaas2 as node 1"));
    // Without a survivor to pin the plan is the same (the step says why it cannot go on).
    assert_eq!(
        names(&plan(&replaced_primary(false))),
        names(&plan(&replaced_primary(true)))
    );
    // A single-node site has no cluster to rejoin: a replaced single node is set up afresh,
    // forming a new cluster of one since the site has a join secret, and none without one.
    let mut single = replaced_primary(false);
    single.site.nodes.truncate(1);
    assert!(!single.rejoins());
    assert_eq!(
        names(&plan(&single)),
        [
            "check-network",
            "wait-for-proxmox",
            "open-join-window",
            "api-certificate",
            "create-cluster",
            "register-storage",
            "wait-for-members",
            "close-join-window",
            "forget-join-secret"
        ]
    );
    single.site.cluster.join_secret = None;
    single.site_source = crate::config::without_join_secret(&single.site_source)
        .replace(crate::config::FORGOTTEN_SECRET_LINE, "");
    assert_eq!(
        names(&plan(&single)),
        [
            "check-network",
            "wait-for-proxmox",
            "api-certificate",
            "register-storage"
        ]
    );
}

/// The first other node by id with an api-fingerprint is the survivor, whatever the file order.
#[test]
fn the_survivor_is_the_first_other_node_by_id_with_an_api_fingerprint() {
    let mut c = replaced_primary(true);
    assert_eq!(c.survivor().unwrap().name, "tappaas2");
    c.site.nodes[2].api_fingerprint = Some(Fingerprint([0xee; 32]).to_string());
    assert_eq!(c.survivor().unwrap().name, "tappaas2");
    c.site.nodes[1].api_fingerprint = None;
    assert_eq!(c.survivor().unwrap().name, "tappaas3");
    c.site.nodes.swap(1, 2);
    c.site.nodes[2].api_fingerprint = Some(survivor_fp().to_string());
    assert_eq!(c.survivor().unwrap().name, "tappaas2");
    // The primary's own value never makes it its own survivor.
    let mut alone = replaced_primary(false);
    alone.site.nodes[0].api_fingerprint = Some(fp().to_string());
    assert!(alone.survivor().is_err());
}

fn env_for<'a>(
    paths: &'a Paths,
    cfg: &'a NodeConfig,
    conn: &'a MockConnector,
    sd: &'a MockSystemd,
    runner: &'a MockRunner,
    notify: &'a MockNotify,
) -> Env<'a> {
    Env {
        paths,
        config: cfg,
        connector: conn,
        systemd: sd,
        notify,
        runner,
        timing: timing(),
    }
}

#[test]
fn without_a_survivor_to_pin_a_replaced_primary_stops_at_once_and_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = replaced_primary(false);
    // No expectations: any API call would fail the test.
    let conn = MockConnector::new();
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    let err = format!(
        "{:#}",
        cluster::wait_for_peer(&env, &mut Memory::default()).unwrap_err()
    );
    assert!(
        err.contains("no other node of the site has an api-fingerprint"),
        "{err}"
    );
    assert!(
        err.contains("tappaas-bootstrap join-window open --site"),
        "{err}"
    );
    assert!(err.contains("api-fingerprint = \"...\""), "{err}");
    assert!(err.contains("for example tappaas2"), "{err}");
    // The later steps that talk to the survivor refuse the same way, before any call.
    assert!(storage::remember_replication(&env, &mut Memory::default()).is_err());
}

#[test]
fn a_replaced_primary_waits_for_the_survivor_it_pins() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = replaced_primary(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut conn = MockConnector::new();
    conn.expect_api_socket().returning(move |a| {
        assert_eq!(a.to_string(), "10.0.0.11");
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    });
    conn.expect_remote()
        .withf(|a, f, pw| {
            a.to_string() == "10.0.0.11" && *f == survivor_fp() && pw.expose() == SECRET
        })
        .returning(|_, _, _| {
            let mut api = MockPveApi::new();
            // The old primary is still listed, offline: 2 of 3 votes, quorate.
            api.expect_cluster_status().returning(|| {
                Ok(status(
                    Some("TAPPaaS"),
                    true,
                    &[("tappaas1", false), ("tappaas2", true), ("tappaas3", true)],
                ))
            });
            Ok(Box::new(api))
        });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    cluster::wait_for_peer(&env, &mut Memory::default()).unwrap();

    // A survivor that serves another certificate ends the step at once, naming the field.
    let mut conn = MockConnector::new();
    conn.expect_api_socket()
        .returning(move |_| std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    conn.expect_remote().returning(|_, _, _| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status().returning(|| {
            Err(PveError::FingerprintMismatch {
                url: "https://10.0.0.11:8006".into(),
                expected: survivor_fp(),
                got: fp(),
            })
        });
        Ok(Box::new(api))
    });
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    let err = format!(
        "{:#}",
        cluster::wait_for_peer(&env, &mut Memory::default()).unwrap_err()
    );
    assert!(
        err.contains("the certificate of the surviving node tappaas2 is not the one the site file pins (api-fingerprint of node tappaas2)"),
        "{err}"
    );
    drop(listener);
}

#[test]
fn the_survivor_removes_the_dead_primary_but_never_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = replaced_primary(true);
    for (online, expect_delete) in [(true, false), (false, true)] {
        let mut conn = MockConnector::new();
        conn.expect_local().returning(|| {
            let mut api = MockPveApi::new();
            api.expect_cluster_status().returning(|| Ok(Vec::new()));
            Ok(Box::new(api))
        });
        conn.expect_remote()
            .withf(|a, f, _| a.to_string() == "10.0.0.11" && *f == survivor_fp())
            .returning(move |_, _, _| {
                let mut api = MockPveApi::new();
                api.expect_cluster_status().returning(move || {
                    Ok(status(
                        Some("TAPPaaS"),
                        true,
                        &[("tappaas1", online), ("tappaas2", true), ("tappaas3", true)],
                    ))
                });
                api.expect_delete_node()
                    .withf(|n| n == "tappaas1")
                    .times(usize::from(expect_delete))
                    .returning(|_| Ok(()));
                Ok(Box::new(api))
            });
        let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
        let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
        let r = cluster::remove_old_node(&env, &mut Memory::default());
        if online {
            let err = r.unwrap_err();
            assert!(
                err.to_string().contains("refusing to remove a live node"),
                "{err}"
            );
        } else {
            r.unwrap();
        }
    }
}

#[test]
fn a_replaced_primary_joins_through_the_survivor_with_force_under_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = replaced_primary(true);
    let joined = Arc::new(Mutex::new(false));
    let mut conn = MockConnector::new();
    conn.expect_join_hostname().returning(|a| a.to_string());
    conn.expect_remote()
        .withf(|a, f, _| a.to_string() == "10.0.0.11" && *f == survivor_fp())
        .returning(|_, _, _| {
            let mut api = MockPveApi::new();
            // After remove-old-node: two nodes, both online, quorate; turn at once.
            api.expect_cluster_status().returning(|| {
                Ok(status(
                    Some("TAPPaaS"),
                    true,
                    &[("tappaas2", true), ("tappaas3", true)],
                ))
            });
            Ok(Box::new(api))
        });
    let j = joined.clone();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        let j2 = j.clone();
        api.expect_cluster_status().returning(move || {
            Ok(if *j2.lock().unwrap() {
                status(
                    Some("TAPPaaS"),
                    true,
                    &[("tappaas1", true), ("tappaas2", true), ("tappaas3", true)],
                )
            } else {
                Vec::new()
            })
        });
        let j3 = j.clone();
        api.expect_join_cluster().returning(move |req| {
            assert_eq!(req.hostname, "10.0.0.11");
            assert_eq!(req.fingerprint, survivor_fp().to_string());
            assert_eq!(req.password, SECRET);
            assert_eq!(req.nodeid, Some(1));
            assert_eq!(req.link0, "address=10.0.0.10");
            assert!(req.force);
            *j3.lock().unwrap() = true;
            Ok(Upid(
                "UPID:tappaas1:0000A:0000B:6743A0B0:clusterjoin::root@pam:".into(),
            ))
        });
        api.expect_task_status().returning(|_, _| stopped_ok());
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    cluster::join_cluster(&env, &mut Memory::default()).unwrap();
    assert!(*joined.lock().unwrap());
}

/// The turn rule waits for members with lower ids, never for the primary: a replaced primary
/// (id 1) has nobody to wait for, and a member never waits for a primary being replaced.
#[test]
fn the_turn_to_join_never_waits_for_the_primary() {
    assert!(cluster::earlier_nodes(&replaced_primary(true)).is_empty());
    assert!(cluster::earlier_nodes(&config(2, true)).is_empty());
    assert_eq!(cluster::earlier_nodes(&config(3, false)), ["tappaas2"]);
    // A primary with a higher id waits only for the survivors before it.
    let mut c = replaced_primary(true);
    c.manifest.node.id = 3;
    c.site.nodes[0].id = 3;
    c.site.nodes[2].id = 1;
    assert_eq!(cluster::earlier_nodes(&c), ["tappaas2", "tappaas3"]);
}

/// A replaced primary whose cluster lost quorum never expects fewer votes: the survivors being
/// unreachable is not a half-way join of a forming cluster.
#[test]
fn a_replaced_primary_never_lowers_the_expected_votes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let mut conn = MockConnector::new();
    conn.expect_local().returning(|| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status().returning(|| {
            Ok(status(
                Some("TAPPaaS"),
                false,
                &[("tappaas1", true), ("tappaas2", false)],
            ))
        });
        Ok(Box::new(api))
    });
    let (sd, notify) = (MockSystemd::new(), quiet());
    // No command expected: `pvecm expected 1` would fail the test.
    let runner = MockRunner::new();
    let mut cfg = replaced_primary(true);
    cfg.site.nodes.truncate(2);
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    let err = cluster::wait_quorate_locally(&env).unwrap_err();
    assert!(format!("{err:#}").contains("quorate false"), "{err:#}");
    // The same view on a primary that created the cluster is repaired.
    let mut runner = MockRunner::new();
    runner
        .expect_run()
        .withf(|c| c.argv() == ["pvecm", "expected", "1"])
        .times(1..)
        .returning(|_| {
            Ok(Output {
                code: 0,
                stdout: String::new(),
                stderr: String::new(),
            })
        });
    let mut fresh = config(1, false);
    fresh.site.nodes.truncate(2);
    let env = env_for(&paths, &fresh, &conn, &sd, &runner, &notify);
    let _ = cluster::wait_quorate_locally(&env);
    runner.checkpoint();
}

#[test]
fn a_replaced_primary_without_the_sites_certificate_goes_on_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let own = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/pve/local")).unwrap();
    std::fs::write(paths.at("/etc/pve/local/pve-ssl.pem"), own.cert.pem()).unwrap();
    let cfg = replaced_primary(true);
    let conn = MockConnector::new();
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    // The old primary's own certificate died with it: nothing here can serve it.
    cluster::api_certificate(&env, &mut Memory::default()).unwrap();
    // A primary that is not a replacement still stops.
    let fresh = config(1, false);
    let env = env_for(&paths, &fresh, &conn, &sd, &runner, &notify);
    cluster::api_certificate(&env, &mut Memory::default()).unwrap_err();
}

#[test]
fn the_join_window_advice_gives_the_line_for_the_site_file() {
    let served = survivor_fp();
    let line = format!("api-fingerprint = \"{served}\"");
    let without = replaced_primary(false);
    let a = window_advice(served, Some("tappaas2"), &without.site, "site.toml");
    assert_eq!(a.line, line);
    assert!(
        a.note
            .contains("add the line above to the [[node]] table of tappaas2 in site.toml"),
        "{}",
        a.note
    );
    let with = replaced_primary(true);
    let a = window_advice(served, Some("tappaas2"), &with.site, "site.toml");
    assert!(
        a.note.contains("already pins this node's certificate"),
        "{}",
        a.note
    );
    let a = window_advice(
        Fingerprint([0x11; 32]),
        Some("tappaas2"),
        &with.site,
        "site.toml",
    );
    assert!(a.note.contains("but this node serves 11:11"), "{}", a.note);
    assert!(a.note.contains(&survivor_fp().to_string()), "{}", a.note);
    let a = window_advice(served, None, &with.site, "site.toml");
    assert_eq!(a.line, line);
    assert!(a.note.contains("this node's [[node]] table"), "{}", a.note);
}

/// A two-node site whose primary died leaves the survivor with half the votes: the wait says
/// so, and what an operator can do about it; it never lowers the votes itself.
#[test]
fn a_survivor_without_quorum_is_a_wait_with_its_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let mut cfg = replaced_primary(true);
    cfg.site.nodes.truncate(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut conn = MockConnector::new();
    conn.expect_api_socket()
        .returning(move |_| std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    conn.expect_remote().returning(|_, _, _| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status().returning(|| {
            Ok(status(
                Some("TAPPaaS"),
                false,
                &[("tappaas1", false), ("tappaas2", true)],
            ))
        });
        Ok(Box::new(api))
    });
    // No command expected.
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    let err = format!(
        "{:#}",
        cluster::wait_for_peer(&env, &mut Memory::default()).unwrap_err()
    );
    assert!(
        err.contains("gave up waiting for the surviving node tappaas2 at 10.0.0.11"),
        "{err}"
    );
    assert!(err.contains("not quorate (1 of 2 nodes online)"), "{err}");
    assert!(err.contains("`pvecm expected 1` on tappaas2"), "{err}");
    drop(listener);
}

/// A replaced primary with the site's certificate installs it before the join and keeps the
/// key; the join replaces /etc/pve with the cluster's, so after it the certificate is installed
/// again if it is not served, and only then the key file goes.
#[test]
fn a_replaced_primary_serves_the_pinned_certificate_again_after_its_join() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let own = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/pve/local")).unwrap();
    std::fs::write(paths.at("/etc/pve/local/pve-ssl.pem"), own.cert.pem()).unwrap();
    let site_cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    let pinned = Fingerprint::of_der(site_cert.cert.der());
    let mut cfg = replaced_primary(true);
    cfg.site.cluster.primary_fingerprint = Some(pinned.to_string());
    std::fs::create_dir_all(paths.at("/etc/tappaas/tls")).unwrap();
    std::fs::write(paths.at(cluster::API_CERT), site_cert.cert.pem()).unwrap();
    std::fs::write(
        paths.at(cluster::API_KEY),
        site_cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let installs = Arc::new(Mutex::new(0));
    let mut conn = MockConnector::new();
    let root = dir.path().to_path_buf();
    let n = installs.clone();
    conn.expect_local().returning(move || {
        let mut api = MockPveApi::new();
        let root = root.clone();
        let n = n.clone();
        api.expect_set_custom_certificate()
            .returning(move |_, cert, _| {
                *n.lock().unwrap() += 1;
                std::fs::write(root.join("etc/pve/local/pveproxy-ssl.pem"), cert).unwrap();
                Ok(String::new())
            });
        api.expect_version().returning(|| Ok("9.1".into()));
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    cluster::api_certificate(&env, &mut Memory::default()).unwrap();
    assert_eq!(*installs.lock().unwrap(), 1);
    assert_eq!(crate::config::local_fingerprint(&paths).unwrap(), pinned);
    assert!(
        paths.at(cluster::API_KEY).exists(),
        "the key went before the join"
    );

    // The join: the cluster's /etc/pve has no custom certificate for this node.
    std::fs::remove_file(paths.at("/etc/pve/local/pveproxy-ssl.pem")).unwrap();
    cluster::api_certificate_after_join(&env, &mut Memory::default()).unwrap();
    assert_eq!(*installs.lock().unwrap(), 2);
    assert_eq!(crate::config::local_fingerprint(&paths).unwrap(), pinned);
    assert!(!paths.at(cluster::API_KEY).exists());
    // Again: nothing to do.
    cluster::api_certificate_after_join(&env, &mut Memory::default()).unwrap();
    assert_eq!(*installs.lock().unwrap(), 2);
}

/// A key file left behind while the pinned certificate is served (the agent stopped between
/// the install and the removal) is removed by the next run.
#[test]
fn a_key_left_behind_while_the_pin_is_served_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let site_cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
    std::fs::create_dir_all(paths.at("/etc/pve/local")).unwrap();
    std::fs::write(
        paths.at("/etc/pve/local/pveproxy-ssl.pem"),
        site_cert.cert.pem(),
    )
    .unwrap();
    std::fs::create_dir_all(paths.at("/etc/tappaas/tls")).unwrap();
    std::fs::write(paths.at(cluster::API_KEY), "key").unwrap();
    let mut cfg = config(1, false);
    cfg.site.cluster.primary_fingerprint =
        Some(Fingerprint::of_der(site_cert.cert.der()).to_string());
    let conn = MockConnector::new();
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    cluster::api_certificate(&env, &mut Memory::default()).unwrap();
    assert!(!paths.at(cluster::API_KEY).exists());
}

/// A "survivor" in no cluster cannot be one (the api-fingerprint is on the wrong node, or that
/// node was reinstalled too): said at once rather than waited for.
#[test]
fn a_survivor_in_no_cluster_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path());
    let cfg = replaced_primary(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut conn = MockConnector::new();
    conn.expect_api_socket()
        .returning(move |_| std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    conn.expect_remote().times(1).returning(|_, _, _| {
        let mut api = MockPveApi::new();
        api.expect_cluster_status()
            .returning(|| Ok(status(None, true, &[("tappaas2", true)])));
        Ok(Box::new(api))
    });
    let (sd, runner, notify) = (MockSystemd::new(), MockRunner::new(), quiet());
    let env = env_for(&paths, &cfg, &conn, &sd, &runner, &notify);
    let err = format!(
        "{:#}",
        cluster::wait_for_peer(&env, &mut Memory::default()).unwrap_err()
    );
    assert!(
        err.contains("the surviving node tappaas2 is in no cluster"),
        "{err}"
    );
    drop(listener);
}
