//! A lab for the agent against the PVE simulator: one simulated node per site node, each with
//! its own root directory holding what the installer leaves (`/etc/tappaas/node.toml`,
//! `/etc/tappaas/site.toml`), the node's certificate and a `/sys/class/net` tree; a connector
//! that maps management addresses to the simulator's loopback endpoints; and doubles for the
//! boundaries the simulator does not cover (systemd, commands such as `chpasswd`).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tappaas_bootstrap::config::{NodeConfig, Paths};
use tappaas_bootstrap::connect::Connector;
use tappaas_bootstrap::pve::{
    ClientOptions, Credentials, Fingerprint, PveApi, PveClient, RetryPolicy, Secret, TaskWait,
};
use tappaas_bootstrap::runner::{Cmd, Output, Runner};
use tappaas_bootstrap::state::StateStore;
use tappaas_bootstrap::steps::{self, Env, Outcome, Timing};
use tappaas_bootstrap::systemd::{Notify, Systemd};
use tappaas_pve_sim::{Latencies, NodeCert, NodeSpec, SimConfig, SimSite};
use tappaas_site::manifest::NodeManifest;

pub const SITE: &str = include_str!("../../../docs/examples/three-node-site.toml");
pub const SECRET: &str = "lab-one-time-join-secret-7";

/// A simulated site and the nodes' root directories.
pub struct Lab {
    pub rt: tokio::runtime::Runtime,
    pub site: Arc<SimSite>,
    pub dir: tempfile::TempDir,
    pub site_toml: String,
    pub timing: Timing,
    pub options: ClientOptions,
    /// What the installer wrote to the primary's `/etc/tappaas/tls/` (`api.pem`, `api.key`)
    /// from the site file's `primary-certificate` and `primary-key`.
    pub primary_tls: Option<(String, String)>,
    /// Nodes whose agent pins its own API by the certificate files under `/etc/pve/local`, as
    /// the real connector does (the others pin what the simulator serves).
    pub file_pinned: Vec<u8>,
    /// The primary's certificate, made in advance (as `join-keys` does): a reinstalled
    /// primary that gets it again serves the fingerprint the site pins.
    pub primary_cert: NodeCert,
}

pub fn node_name(n: u8) -> String {
    format!("tappaas{n}")
}

fn role(n: u8) -> tappaas_site::Role {
    match n {
        1 => tappaas_site::Role::Primary,
        3 => tappaas_site::Role::Backup,
        _ => tappaas_site::Role::Member,
    }
}

pub fn fast_timing() -> Timing {
    Timing {
        unit_wait: Duration::from_secs(2),
        join_wait: Duration::from_secs(30),
        turn_wait: Duration::from_secs(5),
        quorum_wait: Duration::from_secs(10),
        pin_grace: Duration::from_secs(10),
        poll: Duration::from_millis(20),
        task: TaskWait {
            timeout: Duration::from_secs(30),
            poll: Duration::from_millis(20),
        },
    }
}

impl Lab {
    /// Three nodes; the primary's certificate is made before anything starts, so its
    /// fingerprint goes into the site file as an operator's would. `down` nodes start down.
    pub fn new(latencies: Latencies, down: &[&str]) -> Lab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let primary_cert = NodeCert::generate("tappaas1").unwrap();
        let primary_fp = primary_cert.fingerprint();
        let mut nodes: Vec<NodeSpec> = (1..=3).map(NodeSpec::tappaas).collect();
        nodes[0].certificate = Some(primary_cert.clone());
        for n in &mut nodes {
            if down.contains(&n.name.as_str()) {
                n.start_down = Some(tappaas_pve_sim::DownMode::Refuse);
            }
        }
        let site = rt
            .block_on(SimSite::start(SimConfig { nodes, latencies }))
            .unwrap();
        let site_toml = format!(
            "{SITE}\n[cluster]\njoin-secret = \"{SECRET}\"\nprimary-fingerprint = \"{primary_fp}\"\n"
        );
        let lab = Lab {
            rt,
            site: Arc::new(site),
            dir: tempfile::tempdir().unwrap(),
            site_toml,
            timing: fast_timing(),
            options: client_options(),
            primary_tls: None,
            file_pinned: Vec::new(),
            primary_cert,
        };
        for n in 1..=3 {
            lab.install(n, false);
        }
        lab
    }

    /// Three nodes from a site file that carries a pre-made `primary-certificate` and
    /// `primary-key` (as `tappaas-installer join-keys` makes them); every simulated node starts
    /// with its own self-signed certificate. Installed as the installer does
    /// (installer/src/system/manifest.rs): every node's site copy has the certificate and key
    /// replaced by the fingerprint they pin, and only the primary gets `/etc/tappaas/tls/api.pem`
    /// and `api.key`, here with `key_pem` (normally the site's `primary-key`). The primary's
    /// agent pins its own API by its certificate files, which follow what the simulated node
    /// has written to `/etc/pve/local/` (`pveproxy-ssl.pem` appears with an upload).
    pub fn with_primary_certificate(
        latencies: Latencies,
        cert_pem: &str,
        primary_key: &str,
        key_pem: &str,
    ) -> Lab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let nodes: Vec<NodeSpec> = (1..=3).map(NodeSpec::tappaas).collect();
        let site = rt
            .block_on(SimSite::start(SimConfig { nodes, latencies }))
            .unwrap();
        let source = format!(
            "{SITE}\n[cluster]\njoin-secret = \"{SECRET}\"\nprimary-certificate = {}\nprimary-key = {}\n",
            toml_str(cert_pem),
            toml_str(primary_key),
        );
        let opts = tappaas_site::ParseOptions::default();
        tappaas_site::parse(&source, &opts).unwrap_or_else(|e| panic!("{e:?}"));
        let site_toml = tappaas_site::copy::without_primary_key(&source, &opts).unwrap();
        let site = Arc::new(site);
        let lab = Lab {
            rt,
            site,
            dir: tempfile::tempdir().unwrap(),
            site_toml,
            timing: fast_timing(),
            options: client_options(),
            primary_tls: Some((cert_pem.to_string(), key_pem.to_string())),
            file_pinned: vec![1],
            // The site's certificate, with the key the site file gives for it.
            primary_cert: NodeCert::from_pem(cert_pem, primary_key).unwrap(),
        };
        spawn_file_mirror(Arc::downgrade(&lab.site), lab.dir.path().to_path_buf(), 3);
        for n in 1..=3 {
            lab.install(n, false);
        }
        lab
    }

    pub fn root(&self, n: u8) -> PathBuf {
        self.dir.path().join(node_name(n))
    }

    /// What the installer leaves on node `n` (and what its first boot finds).
    pub fn install(&self, n: u8, replace: bool) {
        let root = self.root(n);
        let _ = std::fs::remove_dir_all(&root);
        let name = node_name(n);
        let addr = format!("10.0.0.{}", 9 + n);
        let pool = if n == 3 { "tank2" } else { "tank1" };
        // As the installer's template (templates/system/etc/tappaas/node.toml.j2) renders it.
        let manifest = format!(
            r#"# TAPPaaS node manifest: what tappaas-installer installed on this machine.
format = 1
site = "community-centre"
installed-at = 2026-11-24T10:00:00Z
plan-sha256 = "{zeros}"

[node]
name = "{name}"
id = {n}
role = "{role}"
fqdn = "{name}.mgmt.internal"
address = "{addr}/24"
replace = {replace}

[cluster]
name = "TAPPaaS"
primary-address = "10.0.0.10"
link0 = "{addr}"

[pools]
rpool = "rpool"
{pool} = "{pool}"
"#,
            zeros = "0".repeat(64),
            role = role(n).as_str(),
        );
        NodeManifest::parse(&manifest).unwrap();
        let w = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("etc/tappaas/node.toml", &manifest);
        let mut site = self.site_toml.clone();
        if replace {
            let line = format!("role = \"{}\"", role(n).as_str());
            site = site.replacen(&line, &format!("{line}\nreplace = true"), 1);
        }
        w("etc/tappaas/site.toml", &site);
        if let (1, Some((cert, key))) = (n, &self.primary_tls) {
            w("etc/tappaas/tls/api.pem", cert);
            w("etc/tappaas/tls/api.key", key);
        }
        self.refresh_cert(n);
        for (bridge, port) in [("lan", "enp2s0"), ("wan", "enp1s0")] {
            std::fs::create_dir_all(root.join(format!("sys/class/net/{bridge}/bridge"))).unwrap();
            std::fs::create_dir_all(root.join(format!("sys/class/net/{bridge}/brif/{port}")))
                .unwrap();
            w(&format!("sys/class/net/{port}/carrier"), "1\n");
        }
        w(
            "etc/proxmox-backup/proxy.pem",
            &NodeCert::generate(&name).unwrap().cert_pem(),
        );
    }

    /// `/etc/pve/local/pve-ssl.pem` as the simulated node serves it now.
    pub fn refresh_cert(&self, n: u8) {
        let node = self.site.node(&node_name(n)).unwrap();
        let p = self.root(n).join("etc/pve/local/pve-ssl.pem");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, node.cert_pem()).unwrap();
    }

    pub fn config(&self, n: u8) -> NodeConfig {
        NodeConfig::load(&Paths::new(self.root(n))).unwrap()
    }

    pub fn state(&self, n: u8) -> tappaas_bootstrap::state::State {
        StateStore::new(Paths::new(self.root(n)).state())
            .load()
            .unwrap()
            .unwrap()
    }

    /// One run of the agent on node `n`, as systemd starts it.
    pub fn run_once(&self, n: u8) -> anyhow::Result<Outcome> {
        let paths = Paths::new(self.root(n));
        let config = NodeConfig::load(&paths)?;
        let name = node_name(n);
        let runner = SimRunner {
            site: self.site.clone(),
            node: name.clone(),
            log: Mutex::new(Vec::new()),
        };
        let connector = SimConnector {
            site: self.site.clone(),
            node: name,
            options: self.options,
            password: config.join_secret().ok(),
            token: Mutex::new(None),
            files: self.file_pinned.contains(&n).then(|| paths.clone()),
        };
        let systemd = FakeSystemd::default();
        let notify = Recorder::default();
        let env = Env {
            paths: &paths,
            config: &config,
            connector: &connector,
            systemd: &systemd,
            notify: &notify,
            runner: &runner,
            timing: self.timing,
        };
        steps::run(&env, &StateStore::new(paths.state()))
    }

    /// Runs the agent on node `n` until it finishes, restarting it after a failure as
    /// systemd does (at most `attempts` runs); returns every failure seen on the way.
    pub fn run_until_done(&self, n: u8, attempts: u32) -> (anyhow::Result<Outcome>, Vec<String>) {
        let mut errors = Vec::new();
        for _ in 0..attempts {
            match self.run_once(n) {
                Ok(o) => return (Ok(o), errors),
                Err(e) => errors.push(format!("{e:#}")),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let last = errors.last().cloned().unwrap_or_default();
        (Err(anyhow::anyhow!("{last}")), errors)
    }
}

/// A TOML basic string holding `text`.
pub fn toml_str(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('"', "\\\"")
    )
}

/// Keeps each node's `/etc/pve/local/pveproxy-ssl.pem` under `dir` what the simulated node has
/// written (`NodeHandle::custom_cert_pem`), as pmxcfs shows `/etc/pve/nodes/NAME/` at once,
/// until the site is dropped.
pub fn spawn_file_mirror(site: std::sync::Weak<SimSite>, dir: PathBuf, nodes: u8) {
    std::thread::spawn(move || loop {
        let Some(site) = site.upgrade() else {
            return;
        };
        for n in 1..=nodes {
            let Some(node) = site.node(&node_name(n)) else {
                continue;
            };
            let p = dir
                .join(node_name(n))
                .join("etc/pve/local/pveproxy-ssl.pem");
            let want = node.custom_cert_pem();
            if std::fs::read_to_string(&p).ok() != want {
                match want {
                    Some(pem) if p.parent().is_some_and(|d| d.exists()) => {
                        let tmp = p.with_extension("tmp");
                        let _ = std::fs::write(&tmp, pem).and_then(|()| std::fs::rename(&tmp, &p));
                    }
                    Some(_) => {}
                    None => {
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
        drop(site);
        std::thread::sleep(Duration::from_millis(5));
    });
}

pub fn client_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
    }
}

/// Maps management addresses to the simulator's endpoints. Opens the node's own API as the
/// real connector does: a root@pam ticket with the join secret while that is root's password,
/// otherwise root's API token (made through the simulator's API, standing in for `pveum`).
pub struct SimConnector {
    pub site: Arc<SimSite>,
    pub node: String,
    pub options: ClientOptions,
    pub password: Option<Secret>,
    pub token: Mutex<Option<Secret>>,
    /// Pin this node's own API by its certificate files (`Paths::api_cert`), as the real
    /// connector does; `None`: by what the simulator serves.
    pub files: Option<Paths>,
}

impl SimConnector {
    /// A connector for `node` with no join secret (API token only).
    pub fn new(lab: &Lab, node: &str) -> SimConnector {
        SimConnector {
            site: lab.site.clone(),
            node: node.into(),
            options: lab.options,
            password: None,
            token: Mutex::new(None),
            files: None,
        }
    }

    fn local_url_fp(&self) -> anyhow::Result<(String, Fingerprint)> {
        let n = self.site.node(&self.node).unwrap();
        match &self.files {
            Some(paths) => Ok((
                n.url(),
                tappaas_bootstrap::config::local_fingerprint(paths)?,
            )),
            None => Ok((n.url(), Fingerprint::parse(&n.fingerprint())?)),
        }
    }

    /// `pveum user token add root@pam tappaas-bootstrap --privsep 0`: root on the node needs
    /// no password for it; here the simulator's root password stands in for that.
    fn make_token(&self) -> anyhow::Result<Secret> {
        let n = self.site.node(&self.node).unwrap();
        let (url, fp) = self.local_url_fp()?;
        let root = PveClient::new(
            &url,
            fp,
            Credentials::Password {
                user: "root@pam".into(),
                password: Secret::new(n.root_password()),
            },
            self.options,
        )?;
        let path = "/access/users/root@pam/token/tappaas-bootstrap";
        let _ = root.call(reqwest::Method::DELETE, path, &[]);
        let v = root.call(
            reqwest::Method::POST,
            path,
            &[("privsep".to_string(), "0".to_string())],
        )?;
        let value = v
            .get("value")
            .and_then(|s| s.as_str())
            .ok_or_else(|| anyhow::anyhow!("no token value in {v}"))?;
        Ok(Secret::new(value))
    }
}

impl Connector for SimConnector {
    fn local(&self) -> anyhow::Result<Box<dyn PveApi>> {
        if let Some(pw) = &self.password {
            let api = self.local_root(pw)?;
            match api.version() {
                Ok(_) => return Ok(api),
                Err(tappaas_bootstrap::pve::PveError::Login { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (url, fp) = self.local_url_fp()?;
        let cached = self.token.lock().unwrap().clone();
        if let Some(secret) = cached {
            let client = PveClient::new(
                &url,
                fp,
                Credentials::Token {
                    id: "root@pam!tappaas-bootstrap".into(),
                    secret,
                },
                self.options,
            )?;
            if client.version().is_ok() {
                return Ok(Box::new(client));
            }
        }
        let secret = self.make_token()?;
        *self.token.lock().unwrap() = Some(secret.clone());
        Ok(Box::new(PveClient::new(
            &url,
            fp,
            Credentials::Token {
                id: "root@pam!tappaas-bootstrap".into(),
                secret,
            },
            self.options,
        )?))
    }

    fn local_root(&self, password: &Secret) -> anyhow::Result<Box<dyn PveApi>> {
        let (url, fp) = self.local_url_fp()?;
        Ok(Box::new(PveClient::new(
            &url,
            fp,
            Credentials::Password {
                user: "root@pam".into(),
                password: password.clone(),
            },
            self.options,
        )?))
    }

    fn remote(
        &self,
        address: Ipv4Addr,
        fingerprint: Fingerprint,
        password: &Secret,
    ) -> anyhow::Result<Box<dyn PveApi>> {
        let url = self
            .site
            .url_for(&address.to_string())
            .ok_or_else(|| anyhow::anyhow!("no simulated node at {address}"))?;
        Ok(Box::new(PveClient::new(
            &url,
            fingerprint,
            Credentials::Password {
                user: "root@pam".into(),
                password: password.clone(),
            },
            self.options,
        )?))
    }

    fn join_hostname(&self, address: Ipv4Addr) -> String {
        address.to_string()
    }

    fn api_socket(&self, address: Ipv4Addr) -> SocketAddr {
        let url = self.site.url_for(&address.to_string()).unwrap_or_default();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn cleanup(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The commands a node runs, applied to the simulated node where they change what its API
/// shows (`chpasswd` changes root@pam's password, `pvecm expected` the expected votes), and
/// answered as the real tools answer otherwise.
pub struct SimRunner {
    pub site: Arc<SimSite>,
    pub node: String,
    pub log: Mutex<Vec<String>>,
}

impl SimRunner {
    /// The runner of `node` in `lab`, e.g. to run `join-window open` there by hand.
    pub fn of(lab: &Lab, node: &str) -> SimRunner {
        SimRunner {
            site: lab.site.clone(),
            node: node.into(),
            log: Mutex::new(Vec::new()),
        }
    }
}

impl Runner for SimRunner {
    fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.log.lock().unwrap().push(cmd.display());
        let ok = |s: &str| {
            Ok(Output {
                code: 0,
                stdout: s.into(),
                stderr: String::new(),
            })
        };
        let argv = cmd.argv();
        let node = self.site.node(&self.node).unwrap();
        match argv.as_slice() {
            ["ip", "-j", "addr", "show", "dev", "lan"] => ok(&format!(
                r#"[{{"ifname":"lan","addr_info":[{{"family":"inet","local":"{}","prefixlen":24}}]}}]"#,
                node.address()
            )),
            ["arping", ..] => ok(""),
            ["chpasswd"] => {
                let input = cmd.stdin.as_ref().unwrap().expose().to_string();
                let pw = input.trim_end().strip_prefix("root:").unwrap();
                node.set_root_password(pw);
                ok("")
            }
            ["chpasswd", "-e"] => {
                // The site's hash becomes root's password: nobody here knows the clear text.
                node.set_root_password(&uuid_like());
                ok("")
            }
            ["pvecm", "expected", n] => {
                self.site.set_expected_votes(&self.node, n.parse().unwrap());
                ok("")
            }
            ["pvecm", "updatecerts"] | ["ssh-keygen", ..] => ok(""),
            ["zfs", "list", ..] => Ok(Output {
                code: 1,
                stdout: String::new(),
                stderr: "dataset does not exist".into(),
            }),
            ["zfs", "create", ..] => ok(""),
            ["proxmox-backup-manager", .., "list", "--output-format", "json"] => ok("[]"),
            ["proxmox-backup-manager", "user", "generate-token", ..] => {
                ok(r#"{"tokenid":"root@pam!pve","value":"5b0c8a9e-pbs-token"}"#)
            }
            ["proxmox-backup-manager", ..] => ok(""),
            other => anyhow::bail!("the lab does not know the command {other:?}"),
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// systemd as the agent finds it on a booted node: Proxmox's units are active.
#[derive(Default)]
pub struct FakeSystemd {
    pub disabled: Mutex<Vec<String>>,
}

impl Systemd for FakeSystemd {
    fn active_state(&self, _unit: &str) -> anyhow::Result<String> {
        Ok("active".into())
    }
    fn start(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    fn stop(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    fn restart(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
    fn daemon_reload(&self) -> anyhow::Result<()> {
        Ok(())
    }
    fn disable(&self, unit: &str) -> anyhow::Result<()> {
        self.disabled.lock().unwrap().push(unit.into());
        Ok(())
    }
    fn enable(&self, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
pub struct Recorder {
    pub messages: Mutex<Vec<String>>,
}

impl Notify for Recorder {
    fn notify(&self, msg: &str) {
        self.messages.lock().unwrap().push(msg.into());
    }
}

/// The site's three nodes form one quorate cluster named TAPPaaS, as `seen_from` sees it.
pub fn assert_formed(lab: &Lab, seen_from: &str) {
    for n in ["tappaas1", "tappaas2", "tappaas3"] {
        assert!(lab.site.quorate(n), "{n} not quorate");
        assert!(
            lab.site.same_cluster(seen_from, n),
            "{n} not in the cluster"
        );
    }
    let mut members = lab.site.cluster_members(seen_from);
    members.sort();
    assert_eq!(members, ["tappaas1", "tappaas2", "tappaas3"]);
    assert_eq!(
        lab.site.cluster_name("tappaas2").as_deref(),
        Some("TAPPaaS")
    );
}

/// The simulator's schema check rejected nothing the agent sent (401s are the agent probing
/// whether the join secret works, which is how it checks a join window).
pub fn assert_no_request_rejected(lab: &Lab) {
    let rejected: Vec<_> = lab
        .site
        .rejected_requests()
        .into_iter()
        .filter(|r| r.status == 400 || r.status == 501)
        .collect();
    assert!(rejected.is_empty(), "{rejected:#?}");
}
