//! How the agent reaches Proxmox APIs: its own node's (as root@pam with the join secret while
//! that is root's password, otherwise with a short-lived API token made by `pveum`) and a peer's (as root@pam with the one-time join secret, the peer's
//! certificate pinned). Tests replace this with one that points at the simulator.

use crate::config::{local_fingerprint, Paths};
use crate::pve::{ClientOptions, Credentials, Fingerprint, PveApi, PveClient, Secret};
use crate::runner::{run_ok, Cmd, Runner};
use anyhow::Context as _;
use std::net::{Ipv4Addr, SocketAddr};

/// The agent's API token on its own node (`root@pam!tappaas-bootstrap`), removed at the end.
pub const TOKEN_NAME: &str = "tappaas-bootstrap";

/// Opens API clients.
#[cfg_attr(test, mockall::automock)]
pub trait Connector {
    /// This node's API, as root: a root@pam ticket while the join secret is root's password
    /// (cluster create, join and node removal accept nothing else, not even root's API
    /// tokens), otherwise root's API token.
    fn local(&self) -> anyhow::Result<Box<dyn PveApi>>;
    /// This node's API as root@pam with `password` (a ticket).
    fn local_root(&self, password: &Secret) -> anyhow::Result<Box<dyn PveApi>>;
    /// A peer's API as root@pam with `password`, trusting only `fingerprint`.
    fn remote(
        &self,
        address: Ipv4Addr,
        fingerprint: Fingerprint,
        password: &Secret,
    ) -> anyhow::Result<Box<dyn PveApi>>;
    /// The `hostname` that `POST /cluster/config/join` gets for the peer at `address`.
    fn join_hostname(&self, address: Ipv4Addr) -> String;
    /// Where the peer's API listens, for the reachability check.
    fn api_socket(&self, address: Ipv4Addr) -> SocketAddr;
    /// Removes what `local` set up (the API token). Best effort.
    fn cleanup(&self) -> anyhow::Result<()>;
}

/// The real connector: `https://<address>:8006`; for this node `https://127.0.0.1:8006`.
pub struct NodeConnector<'a> {
    /// Where the node's certificate is.
    pub paths: Paths,
    /// Runs `pveum`.
    pub runner: &'a dyn Runner,
    /// Client settings.
    pub options: ClientOptions,
    /// The token made last, reused while the node accepts it (a join replaces the node's
    /// token store with the cluster's, which drops it).
    pub token: std::sync::Mutex<Option<Secret>>,
    /// The site's join secret: root's password while this node's join window is open.
    pub password: Option<Secret>,
    /// This node's API (`https://127.0.0.1:8006`).
    pub local_url: String,
}

impl<'a> NodeConnector<'a> {
    /// A connector for the node at `paths`.
    pub fn new(paths: Paths, runner: &'a dyn Runner, options: ClientOptions) -> NodeConnector<'a> {
        NodeConnector {
            paths,
            runner,
            options,
            token: std::sync::Mutex::new(None),
            password: None,
            local_url: "https://127.0.0.1:8006".into(),
        }
    }

    /// Logs in with `password` (the join secret) while it is root's password.
    pub fn with_password(mut self, password: Option<Secret>) -> Self {
        self.password = password;
        self
    }

    fn client(&self, secret: Secret) -> anyhow::Result<PveClient> {
        // Re-read every time: joining a cluster gives the node a new certificate.
        let fp = local_fingerprint(&self.paths)?;
        let creds = Credentials::Token {
            id: format!("root@pam!{TOKEN_NAME}"),
            secret,
        };
        Ok(PveClient::new(&self.local_url, fp, creds, self.options)?)
    }

    fn token(&self) -> anyhow::Result<Secret> {
        // A token of this name may survive a crash: replace it (its secret is not stored).
        let _ = self.runner.run(&Cmd::new(
            "pveum",
            ["user", "token", "remove", "root@pam", TOKEN_NAME],
        ));
        let out = run_ok(
            self.runner,
            &Cmd::new(
                "pveum",
                [
                    "user",
                    "token",
                    "add",
                    "root@pam",
                    TOKEN_NAME,
                    "--privsep",
                    "0",
                    "--comment",
                    "TAPPaaS first-boot agent; removed when it finishes",
                    "--output-format",
                    "json",
                ],
            ),
        )?;
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .context("reading the new API token from `pveum user token add`")?;
        let secret = v
            .get("value")
            .and_then(|s| s.as_str())
            .context("`pveum user token add` printed no token value")?;
        Ok(Secret::new(secret))
    }
}

impl Connector for NodeConnector<'_> {
    fn local(&self) -> anyhow::Result<Box<dyn PveApi>> {
        if let Some(pw) = &self.password {
            let api = self.local_root(pw)?;
            match api.version() {
                Ok(_) => return Ok(api),
                Err(crate::pve::PveError::Login { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let cached = self.token.lock().ok().and_then(|t| t.clone());
        if let Some(secret) = cached {
            let client = self.client(secret)?;
            match client.version() {
                Ok(_) => return Ok(Box::new(client)),
                Err(crate::pve::PveError::Api { status: 401, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let secret = self.token()?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some(secret.clone());
        }
        Ok(Box::new(self.client(secret)?))
    }

    fn local_root(&self, password: &Secret) -> anyhow::Result<Box<dyn PveApi>> {
        let fp = local_fingerprint(&self.paths)?;
        let creds = Credentials::Password {
            user: "root@pam".into(),
            password: password.clone(),
        };
        Ok(Box::new(PveClient::new(
            &self.local_url,
            fp,
            creds,
            self.options,
        )?))
    }

    fn remote(
        &self,
        address: Ipv4Addr,
        fingerprint: Fingerprint,
        password: &Secret,
    ) -> anyhow::Result<Box<dyn PveApi>> {
        let creds = Credentials::Password {
            user: "root@pam".into(),
            password: password.clone(),
        };
        Ok(Box::new(PveClient::new(
            &format!("https://{address}:8006"),
            fingerprint,
            creds,
            self.options,
        )?))
    }

    fn join_hostname(&self, address: Ipv4Addr) -> String {
        address.to_string()
    }

    fn api_socket(&self, address: Ipv4Addr) -> SocketAddr {
        SocketAddr::from((address, 8006))
    }

    fn cleanup(&self) -> anyhow::Result<()> {
        run_ok(
            self.runner,
            &Cmd::new("pveum", ["user", "token", "remove", "root@pam", TOKEN_NAME]),
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{MockRunner, Output};

    #[test]
    fn makes_a_fresh_token_with_pveum() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["tappaas1".into()]).unwrap();
        std::fs::create_dir_all(dir.path().join("etc/pve/local")).unwrap();
        std::fs::write(
            dir.path().join("etc/pve/local/pve-ssl.pem"),
            cert.cert.pem(),
        )
        .unwrap();
        let mut r = MockRunner::new();
        let mut seq = mockall::Sequence::new();
        r.expect_run()
            .withf(|c| {
                c.argv()
                    == [
                        "pveum",
                        "user",
                        "token",
                        "remove",
                        "root@pam",
                        "tappaas-bootstrap",
                    ]
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                Ok(Output {
                    code: 255,
                    stdout: String::new(),
                    stderr: "no such token".into(),
                })
            });
        r.expect_run()
            .withf(|c| c.argv()[..6] == ["pveum", "user", "token", "add", "root@pam", "tappaas-bootstrap"] && c.argv().contains(&"--privsep"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(Output {
                code: 0,
                stdout: r#"{"full-tokenid":"root@pam!tappaas-bootstrap","info":{"privsep":"0"},"value":"0e9a0c6a-6c44-4b5e-8f1a-4c4a0d1f2e3b"}"#.into(),
                stderr: String::new(),
            }));
        let c = NodeConnector::new(Paths::new(dir.path()), &r, ClientOptions::default());
        let api = c.local().unwrap();
        assert_eq!(api.url(), "https://127.0.0.1:8006");
    }
}
