//! The first-boot steps and the engine that runs them. Each step checks the real state first
//! and acts only when needed, so running it again (after a crash, a reboot, a restart by
//! systemd) is safe; the engine persists each step's state, timings and last error.

mod cluster;
pub use cluster::{restore_root_password, set_root_password, window_advice, WindowAdvice};
mod pbs;
mod storage;
#[cfg(test)]
mod tests;

use crate::config::{NodeConfig, Paths};
use crate::connect::Connector;
use crate::net::{NetCheck, NetExpect};
use crate::pve::TaskWait;
use crate::runner::Runner;
use crate::state::{now_rfc3339, Memory, State, StateStore, StepRecord, StepState, STATE_FORMAT};
use crate::systemd::{wait_active, Notify, Systemd, OWN_UNIT};
use anyhow::Context as _;
use std::time::{Duration, Instant};
use tappaas_site::Role;

/// Time limits and polling intervals.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long to wait for `pve-cluster` and `pveproxy`.
    pub unit_wait: Duration,
    /// How long members wait for the primary, and the primary for the members
    /// (the site's `join-wait-minutes`).
    pub join_wait: Duration,
    /// How long a node waits for its turn to join (earlier nodes first, one join at a time)
    /// before it joins anyway.
    pub turn_wait: Duration,
    /// How long a cluster must take to become quorate after a create or join.
    pub quorum_wait: Duration,
    /// How long a member keeps waiting while the primary presents another certificate than
    /// the pinned one: a primary whose site certificate was made in advance serves its own
    /// until its `api-certificate` step has installed the pinned one. Nothing is sent
    /// meanwhile (the TLS handshake fails before any password).
    pub pin_grace: Duration,
    /// Polling interval for every wait.
    pub poll: Duration,
    /// Proxmox tasks.
    pub task: TaskWait,
}

impl Timing {
    /// The defaults for a real node, with the site's join wait.
    pub fn for_site(config: &NodeConfig) -> Timing {
        Timing {
            unit_wait: Duration::from_secs(600),
            join_wait: config.join_wait(),
            turn_wait: config.join_wait().min(Duration::from_secs(600)),
            quorum_wait: Duration::from_secs(300),
            pin_grace: Duration::from_secs(900),
            poll: Duration::from_secs(5),
            task: TaskWait {
                timeout: Duration::from_secs(900),
                poll: Duration::from_secs(1),
            },
        }
    }
}

/// Everything a step may use.
pub struct Env<'a> {
    /// Files.
    pub paths: &'a Paths,
    /// Manifest and site.
    pub config: &'a NodeConfig,
    /// API clients.
    pub connector: &'a dyn Connector,
    /// systemd.
    pub systemd: &'a dyn Systemd,
    /// sd_notify.
    pub notify: &'a dyn Notify,
    /// External commands.
    pub runner: &'a dyn Runner,
    /// Limits.
    pub timing: Timing,
}

impl Env<'_> {
    /// Tells systemd what we wait for and extends the start timeout meanwhile.
    pub fn waiting(&self, what: &str) {
        self.notify.notify(&format!(
            "STATUS={what}\nEXTEND_TIMEOUT_USEC={}",
            (self.timing.poll.as_micros() as u64)
                .saturating_mul(4)
                .max(60_000_000)
        ));
    }

    /// Polls `check` until it is ready, at most `limit`; the error names `what` and the last
    /// reason `check` gave. An `Err` from `check` ends the wait at once.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> anyhow::Result<Poll<T>>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        let mut last;
        loop {
            match check()? {
                Poll::Ready(v) => return Ok(v),
                Poll::Pending(reason) => last = reason,
            }
            if start.elapsed() >= limit {
                anyhow::bail!(
                    "gave up waiting for {what} after {}s: {last}",
                    limit.as_secs()
                );
            }
            self.waiting(&format!("waiting for {what}: {last}"));
            std::thread::sleep(self.timing.poll);
        }
    }
}

/// One look at something the agent waits for.
#[derive(Debug)]
pub enum Poll<T> {
    /// There it is.
    Ready(T),
    /// Not yet, and why.
    Pending(String),
}

/// A step's body.
pub type StepFn = fn(&Env<'_>, &mut Memory) -> anyhow::Result<()>;

/// One step of the plan.
#[derive(Clone)]
pub struct StepDef {
    /// Short name (`join-cluster`).
    pub name: &'static str,
    /// One line for `plan` and `status`.
    pub description: String,
    /// What it does.
    pub run: StepFn,
}

impl std::fmt::Debug for StepDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

pub(crate) fn step(name: &'static str, description: String, run: StepFn) -> StepDef {
    StepDef {
        name,
        description,
        run,
    }
}

/// The steps for this node, in order: the checks every node makes, its way into the cluster
/// (by role), the backup node's own steps, then the close of the join window.
pub fn plan(c: &NodeConfig) -> Vec<StepDef> {
    let mut v = first_steps(c);
    push_cluster_steps(&mut v, c);
    if c.role() == Role::Backup {
        push_backup_steps(&mut v, c);
    }
    push_closing_steps(&mut v, c);
    v
}

/// The network and Proxmox checks every node makes, then (when a cluster forms) the open join
/// window.
fn first_steps(c: &NodeConfig) -> Vec<StepDef> {
    let mut v = vec![
        step(
            "check-network",
            format!(
                "bridge {} up with {}, the LAN port has a link, no other machine uses the address",
                c.site.network.lan_bridge,
                c.address_cidr()
            ),
            check_network,
        ),
        step(
            "wait-for-proxmox",
            "pve-cluster and pveproxy are running".into(),
            wait_for_proxmox,
        ),
    ];
    if c.forms_cluster() {
        // Proxmox creates, joins and removes nodes only for a root@pam ticket (not for root's
        // API tokens), and the join needs the primary's root password: the one-time secret is
        // root's password on each node until its part is done.
        v.push(step(
            "open-join-window",
            "make the site's one-time join secret root's password until this node's part is done"
                .into(),
            cluster::open_join_window,
        ));
    }
    v
}

/// How this node comes into the cluster: a primary creates it (or, replaced, rejoins it
/// through a survivor); a member or backup node waits for the primary and joins (or rejoins).
fn push_cluster_steps(v: &mut Vec<StepDef>, c: &NodeConfig) {
    let primary = c.primary().map(|p| p.name.clone()).unwrap_or_default();
    let replace = c.rejoins();
    let api_certificate = || {
        step(
            "api-certificate",
            "this node serves the certificate the site pins (installing the pre-generated one if given)".into(),
            cluster::api_certificate,
        )
    };
    match c.role() {
        Role::Primary if replace => {
            // The cluster lives on without its primary: rejoin it through a survivor. First
            // serve the certificate the site pins for the primary again, so that nodes
            // installed or replaced later can still pin it.
            v.push(api_certificate());
            let survivor = c.survivor().ok();
            v.push(step(
                "wait-for-survivor",
                format!(
                    "{} answers with its pinned certificate and has a quorate cluster",
                    survivor.map_or("a surviving node with an api-fingerprint".into(), |n| {
                        format!("{} at {}", n.name, n.address)
                    })
                ),
                cluster::wait_for_peer,
            ));
            let via = survivor.map_or("a surviving node", |n| n.name.as_str());
            // Right after join-cluster: the join replaced this node's /etc/pve.
            let after_join = step(
                "api-certificate-after-join",
                "after the join, this node still serves the certificate the site pins for the primary; then its key file goes".into(),
                cluster::api_certificate_after_join,
            );
            push_rejoin(v, c, via, Some(after_join));
        }
        Role::Primary => {
            v.push(api_certificate());
            // A single node without a join secret forms no cluster (and without a join window
            // the agent has no root@pam ticket, which the create requires).
            if c.forms_cluster() {
                v.push(step(
                    "create-cluster",
                    format!(
                        "create cluster {} with link0 {}",
                        c.manifest.cluster.name, c.manifest.cluster.link0
                    ),
                    cluster::create_cluster,
                ));
            }
            // Before the window opens: no join in flight can take the quorum this write needs.
            v.push(register_storage(c));
        }
        Role::Member | Role::Backup => {
            v.push(step(
                "wait-for-primary",
                format!(
                    "{primary} at {} answers with the pinned certificate and has a quorate cluster",
                    c.manifest.cluster.primary_address
                ),
                cluster::wait_for_peer,
            ));
            if replace {
                push_rejoin(v, c, &primary, None);
            } else {
                v.push(step(
                    "join-cluster",
                    format!(
                        "join {primary}'s cluster as node {} (pinned, no prompt)",
                        c.manifest.node.id
                    ),
                    cluster::join_cluster,
                ));
                v.push(register_storage(c));
            }
        }
    }
}

/// The backup node's Proxmox Backup Server: datastore, its jobs, its storage in the cluster and
/// the nightly backup job.
fn push_backup_steps(v: &mut Vec<StepDef>, c: &NodeConfig) {
    v.push(step(
        "pbs-datastore",
        format!(
            "Proxmox Backup Server datastore {} on {}, after its ZFS mount",
            pbs::DATASTORE,
            pbs::dataset(c)
        ),
        pbs::datastore,
    ));
    v.push(step(
        "pbs-jobs",
        "prune (keep last 4, daily 14, weekly 8, monthly 12, yearly 6), garbage collection 03:00, verify 04:00".into(),
        pbs::jobs,
    ));
    v.push(step(
        "pbs-storage",
        format!(
            "register the datastore in the cluster as storage {} with its fingerprint",
            pbs::STORAGE
        ),
        pbs::storage,
    ));
    v.push(step(
        "backup-job",
        "nightly backup of every guest at 21:00 (snapshot, zstd)".into(),
        pbs::backup_job,
    ));
}

/// Once every node is in (the primary waits for them), the join secret stops working and is
/// forgotten.
fn push_closing_steps(v: &mut Vec<StepDef>, c: &NodeConfig) {
    if c.role() == Role::Primary && c.forms_cluster() {
        v.push(step(
            "wait-for-members",
            "every node of the site is in the cluster and online".into(),
            cluster::wait_for_members,
        ));
    }
    if c.forms_cluster() {
        v.push(step(
            "close-join-window",
            "restore root's password from the site's hash: the join secret stops working".into(),
            cluster::close_join_window,
        ));
        v.push(step(
            "forget-join-secret",
            "remove the join secret from this node's copy of the site file".into(),
            cluster::forget_join_secret,
        ));
    }
}

/// A replacement's way back in, through `via` (the primary, or for a replaced primary the
/// survivor): note its replication jobs, have `via` remove the dead node of its name, join
/// with force under the same name, id and address, replace its SSH host key, add it to its
/// pools' storage and re-create the jobs. `after_join` comes right after the join.
fn push_rejoin(v: &mut Vec<StepDef>, c: &NodeConfig, via: &str, after_join: Option<StepDef>) {
    v.push(step(
        "remember-replication",
        format!("note the replication jobs that involve {}", c.name()),
        storage::remember_replication,
    ));
    v.push(step(
        "remove-old-node",
        format!("{via} removes the failed {} from the cluster", c.name()),
        cluster::remove_old_node,
    ));
    v.push(step(
        "join-cluster",
        format!(
            "join the cluster through {via} as node {} (pinned, forced: same name and id)",
            c.manifest.node.id
        ),
        cluster::join_cluster,
    ));
    v.extend(after_join);
    v.push(step(
        "refresh-ssh-keys",
        "drop the failed node's SSH host keys from the cluster's known_hosts".into(),
        cluster::refresh_ssh_keys,
    ));
    v.push(register_storage(c));
    v.push(step(
        "restore-replication",
        "re-create the replication jobs the failed node had".into(),
        storage::restore_replication,
    ));
}

fn register_storage(c: &NodeConfig) -> StepDef {
    step(
        "register-storage",
        format!(
            "add this node to the zfspool storage of {}",
            c.data_pools()
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        storage::register_pools,
    )
}

fn check_network(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    let prefix = env
        .config
        .address_cidr()
        .split_once('/')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(24);
    let want = NetExpect {
        lan_bridge: env.config.site.network.lan_bridge.clone(),
        wan_bridge: env.config.site.network.wan_bridge.clone(),
        address: env.config.address()?,
        prefix,
    };
    let check = NetCheck {
        sys_class_net: env.paths.at("/sys/class/net"),
        runner: env.runner,
    };
    // A link may take a few seconds after boot: look again before failing.
    let limit = env.timing.unit_wait.min(Duration::from_secs(60));
    env.wait_for("the management network", limit, || {
        let p = check.problems(&want);
        Ok(if p.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending(p.join("; "))
        })
    })
}

fn wait_for_proxmox(env: &Env<'_>, _: &mut Memory) -> anyhow::Result<()> {
    for unit in ["pve-cluster.service", "pveproxy.service"] {
        wait_active(
            env.systemd,
            env.notify,
            unit,
            env.timing.unit_wait,
            env.timing.poll,
        )?;
    }
    Ok(())
}

/// What a run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step is done (now or before).
    Done,
}

/// A fresh state for `steps`, or `old` brought up to date (records kept by name).
pub fn reconcile(config: &NodeConfig, steps: &[StepDef], old: Option<State>) -> State {
    let (mut records, memory) = match old {
        Some(s) if s.node == config.name() => (s.steps, s.memory),
        _ => (Vec::new(), Memory::default()),
    };
    let steps = steps
        .iter()
        .map(|d| {
            let mut r = records
                .iter_mut()
                .find(|r| r.name == d.name)
                .map(std::mem::take)
                .unwrap_or_else(|| StepRecord {
                    name: d.name.to_string(),
                    ..Default::default()
                });
            r.description = d.description.clone();
            r
        })
        .collect();
    State {
        format: STATE_FORMAT,
        node: config.name().to_string(),
        role: config.role().to_string(),
        steps,
        memory,
    }
}

/// Runs every step that is not done, in order, persisting each state change; stops at the
/// first failure (systemd restarts the agent with a backoff). When all are done: writes the
/// done marker, tells systemd READY=1, removes the API token and disables the unit.
pub fn run(env: &Env<'_>, store: &StateStore) -> anyhow::Result<Outcome> {
    run_steps(env, store, &plan(env.config))
}

/// [`run`] with a given step list.
pub fn run_steps(env: &Env<'_>, store: &StateStore, steps: &[StepDef]) -> anyhow::Result<Outcome> {
    let mut state = reconcile(env.config, steps, store.load()?);
    store.save(&state)?;
    let total = steps.len();
    for (i, def) in steps.iter().enumerate() {
        if state.step(def.name).map(|r| r.state) == Some(StepState::Done) {
            continue;
        }
        env.notify.notify(&format!(
            "STATUS=step {}/{total}: {} ({})",
            i + 1,
            def.name,
            def.description
        ));
        tracing::info!("step {}: {}", def.name, def.description);
        let started = Instant::now();
        if let Some(r) = state.step_mut(def.name) {
            r.state = StepState::Running;
            r.attempts += 1;
            r.started_at = Some(now_rfc3339());
            r.finished_at = None;
            r.duration_ms = None;
        }
        store.save(&state)?;
        let mut memory = state.memory.clone();
        let result = (def.run)(env, &mut memory);
        state.memory = memory;
        let r = state
            .step_mut(def.name)
            .context("the state lost a step it was given")?;
        r.finished_at = Some(now_rfc3339());
        r.duration_ms = Some(started.elapsed().as_millis() as u64);
        match result {
            Ok(()) => {
                r.state = StepState::Done;
                r.last_error = None;
                store.save(&state)?;
            }
            Err(e) => {
                let msg = format!("{e:#}");
                r.state = StepState::Failed;
                r.last_error = Some(msg.clone());
                store.save(&state)?;
                env.notify
                    .notify(&format!("STATUS=step {} failed: {msg}", def.name));
                return Err(e.context(format!("step {} failed", def.name)));
            }
        }
    }
    finish(env)?;
    Ok(Outcome::Done)
}

fn finish(env: &Env<'_>) -> anyhow::Result<()> {
    if let Err(e) = env.connector.cleanup() {
        tracing::warn!("removing the agent's API token: {e:#}");
    }
    crate::state::write_atomic(
        &env.paths.done_marker(),
        format!("{}\n", now_rfc3339()).as_bytes(),
        0o644,
    )?;
    env.notify
        .notify("READY=1\nSTATUS=first boot done: cluster, storage and backup are set up");
    if let Err(e) = env.systemd.disable(OWN_UNIT) {
        tracing::warn!("disabling {OWN_UNIT}: {e:#}");
    }
    Ok(())
}
