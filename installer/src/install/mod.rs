//! `execute(plan, ...)`: the install orchestrator. Runs the plan's steps in the plan's order
//! through the [`Host`], emitting progress events, keeping a journal of completed steps, and
//! cleaning up (unmount, export) after a failure unless asked to keep the state for debugging.
//!
//! One file per group of steps: `check` (preflight), `pools` (hostid, ZFS), `root` (ESPs, root
//! image, packages, the chroot), `configure` (configuration files, password, keys, TAPPaaS's
//! own files), `finish` (boot entries, provenance, export). `docs/install.md` describes every
//! step, what it touches, and what happens on failure, rerun and power cut.

mod check;
mod configure;
mod dryrun;
mod finish;
pub mod journal;
mod pools;
mod root;
#[cfg(test)]
mod tests;

pub use dryrun::{dry_run_host, SimulatedZfs, DRY_RUN_ASSUMED};
pub use finish::{INSTALL_LOG_PATH, PROVENANCE_FORMAT, PROVENANCE_PATH};
pub use journal::{InstallJournal, JOURNAL_PATH};

use crate::exec::{Cmd, Host, Output};
use crate::inventory::Inventory;
use crate::plan::{DiskKey, Plan, Step, StepId, StepKind};
use crate::preflight::Manifest;
use crate::progress::{Event, JsonLines, Level, MonotonicClock, Outcome, Sink};
use crate::system::{GeneratedIds, RenderedFile};
use anyhow::{anyhow, Context, Result};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tappaas_site::Site;

/// Where the new root is assembled (pools are created with this altroot).
pub const DEFAULT_TARGET: &str = "/mnt/tappaas-target";

/// Where preflight re-probes the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Machine {
    /// A root directory: `/` on the live system, a capture or a fixture directory.
    Root(PathBuf),
    /// An inventory probed already (a profile's embedded fixture, for dry runs and tests).
    Inventory(Box<Inventory>),
}

/// Everything `execute` needs besides the plan and the site.
#[derive(Debug, Clone)]
pub struct InstallContext {
    /// Where the target root is mounted ([`DEFAULT_TARGET`]).
    pub target: PathBuf,
    /// The payload directory (holds `manifest.toml`).
    pub payload: PathBuf,
    /// Where preflight re-probes the machine.
    pub machine: Machine,
    /// machine-id, hostid and install time; a resumed install uses the journal's instead.
    pub ids: GeneratedIds,
    /// After a failure, leave pools imported and the target mounted for debugging.
    pub keep_on_error: bool,
    /// Where the journal is kept ([`JOURNAL_PATH`]); `None` keeps it in memory only.
    pub journal: Option<PathBuf>,
    /// Our first-boot agent, installed as `/usr/bin/tappaas-bootstrap` when given.
    pub bootstrap_binary: Option<PathBuf>,
    /// A dry run: payload problems are warnings, so every effect can be shown without it.
    pub dry_run: bool,
}

impl InstallContext {
    /// A context with the default target, a fresh set of ids, no journal file.
    pub fn new(payload: impl Into<PathBuf>, machine: Machine) -> InstallContext {
        InstallContext {
            target: PathBuf::from(DEFAULT_TARGET),
            payload: payload.into(),
            machine,
            ids: GeneratedIds::generate(),
            keep_on_error: false,
            journal: None,
            bootstrap_binary: None,
            dry_run: false,
        }
    }
}

/// How one step ended in a run that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The plan's step id.
    pub id: StepId,
    /// Done or skipped (with the reason).
    pub outcome: Outcome,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// What a successful install did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The node.
    pub node: String,
    /// Every step in order.
    pub steps: Vec<StepReport>,
    /// Steps an earlier run had completed (from the journal).
    pub resumed: Vec<String>,
    /// The notices shown (steps skipped because the root image lacks a tool, ...).
    pub notices: Vec<String>,
    /// The ids the installed system got.
    pub ids: GeneratedIds,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// A failed install: the original error first, then what cleanup could not undo.
#[derive(Debug)]
pub struct InstallError {
    /// The step that failed (`None` before the first step).
    pub step: Option<String>,
    /// The original error with its context chain.
    pub error: anyhow::Error,
    /// Cleanup failures, reported after the original error.
    pub cleanup: Vec<anyhow::Error>,
    /// `--keep-on-error`: nothing was cleaned up.
    pub kept: bool,
    /// Steps completed before the failure (this run and earlier ones).
    pub completed: Vec<String>,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Some(s) => write!(f, "step {s} failed: {:#}", self.error)?,
            None => write!(f, "{:#}", self.error)?,
        }
        if self.kept {
            f.write_str(
                "\nkept as it is for debugging (--keep-on-error): pools stay imported and the \
                 target mounted",
            )?;
        }
        for c in &self.cleanup {
            write!(f, "\ncleanup after the failure also failed: {c:#}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InstallError {}

/// A `Write` into shared memory: the install log, copied into the target at the end.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The caller's sink, plus the install log as JSON lines.
struct Events<'a> {
    sink: &'a mut dyn Sink,
    log: JsonLines<SharedBuf>,
    log_buf: SharedBuf,
}

impl Events<'_> {
    fn emit(&mut self, e: &Event) {
        self.sink.event(e);
        self.log.event(e);
    }
}

/// What preflight found in the payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Payload {
    /// The manifest, when it could be read.
    manifest: Option<Manifest>,
    /// The root squashfs.
    root_image: PathBuf,
    /// `.deb` files to unpack (kind `package`), by file name.
    packages: Vec<PathBuf>,
}

/// The state of one run of `execute`.
pub(crate) struct Run<'a> {
    plan: &'a Plan,
    site: &'a Site,
    site_src: &'a str,
    ctx: &'a InstallContext,
    host: &'a dyn Host,
    events: Events<'a>,
    ids: GeneratedIds,
    journal: InstallJournal,
    /// Whether a journal of this plan was found (a rerun).
    resuming: bool,
    /// Steps completed by earlier runs.
    resumed: Vec<String>,
    /// The step running now.
    step: Option<StepId>,
    files: Vec<RenderedFile>,
    payload: Payload,
    /// Mount points this run mounted (chroot file systems, the payload), in mount order.
    mounts: Vec<PathBuf>,
    /// Pools imported or created, in plan order: exported at the end and by cleanup.
    imported: Vec<String>,
    hostid_set: bool,
    notices: Vec<String>,
    steps: Vec<StepReport>,
    started_at: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn millis(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Run<'_> {
    fn log(&mut self, level: Level, message: impl Into<String>) {
        let message = message.into();
        if level != Level::Info {
            self.notices.push(message.clone());
        }
        let step = self.step.as_ref().map(StepId::to_string);
        self.events.emit(&Event::Log {
            step,
            level,
            message,
        });
    }

    /// A visible notice: a step (or part of one) skipped, never silently.
    fn notice(&mut self, message: impl Into<String>) {
        self.log(Level::Notice, message);
    }

    /// Runs `cmd` through the host, logging its command line (never its stdin).
    fn cmd(&mut self, cmd: &Cmd) -> Result<Output> {
        self.log(Level::Info, format!("$ {cmd}"));
        Ok(self.host.run(cmd)?)
    }

    fn target(&self, abs: impl AsRef<Path>) -> PathBuf {
        let p = abs.as_ref();
        self.ctx.target.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// The path of `name` inside the target root (`/usr/sbin/name`, ...), if the image has it.
    fn target_tool(&self, name: &str) -> Option<String> {
        ["usr/sbin", "usr/bin", "sbin", "bin"]
            .iter()
            .map(|d| format!("/{d}/{name}"))
            .find(|p| self.host.path_exists(&self.target(p)))
    }

    /// `chroot TARGET program`.
    fn chroot(&self, program: &str) -> Cmd {
        Cmd::new("chroot")
            .arg(self.ctx.target.as_os_str())
            .arg(program)
    }

    fn save_journal(&mut self) {
        if let Some(path) = &self.ctx.journal {
            if let Err(e) = self.journal.store(path) {
                let msg = format!("the install journal could not be saved: {e:#}");
                self.log(Level::Warning, msg);
            }
        }
    }

    fn run_step(&mut self, step: &Step) -> Result<Option<String>> {
        let earlier = self.journal.is_complete(&step.id);
        match step.id.kind() {
            StepKind::Preflight => check::preflight(self),
            StepKind::Wipe(key) => {
                let d = disk_by_key(self.plan, *key)?;
                crate::disk::wipe(self.host, d).with_context(|| format!("wiping {}", d.disk))?;
                Ok(None)
            }
            StepKind::Partition(key) => {
                let d = disk_by_key(self.plan, *key)?;
                crate::disk::write_gpt(self.host, d, Some(&self.plan.install_marker))
                    .and_then(|()| crate::disk::settle(self.host, d, crate::disk::SETTLE_TIMEOUT))
                    .with_context(|| format!("partitioning {}", d.disk))?;
                Ok(None)
            }
            StepKind::Pool(name) => pools::pool_step(self, name, earlier),
            StepKind::Esp => root::esp(self),
            StepKind::Root => root::extract(self),
            StepKind::Packages => root::packages(self),
            StepKind::Configure => configure::configure(self),
            StepKind::Tappaas => configure::tappaas(self),
            StepKind::Bootloader => finish::bootloader(self),
            StepKind::Finish => finish::finish(self),
        }
    }

    /// Unmounts what this run mounted and exports the pools it imported, collecting errors.
    fn cleanup(&mut self) -> Vec<anyhow::Error> {
        let mut errors = self.unmount_all();
        errors.extend(pools::export_all(self));
        errors
    }
}

fn disk_by_key(plan: &Plan, key: DiskKey) -> Result<&crate::plan::DiskPlan> {
    plan.disks
        .iter()
        .find(|d| key.names(d))
        .ok_or_else(|| anyhow!("the plan has no disk {key}"))
}

/// Steps that run again on a resume although the journal has them: preflight (it checks and
/// renders, writing nothing) and the pools (imported again and re-verified).
fn reruns(id: &StepId) -> bool {
    matches!(id.kind(), StepKind::Preflight | StepKind::Pool(_))
}

/// Runs the install of `plan` on `host`, step by step in the plan's order. See the module
/// documentation and `docs/install.md`.
///
/// On failure the error is an [`InstallError`]: the original error with its context chain,
/// then any cleanup failure.
pub fn execute(
    plan: &Plan,
    site: &Site,
    site_src: &str,
    ctx: &InstallContext,
    host: &dyn Host,
    sink: &mut dyn Sink,
) -> Result<InstallReport> {
    let t0 = Instant::now();
    let mut run = Run::new(plan, site, site_src, ctx, host, sink);
    run.events.emit(&Event::Started {
        node: plan.node.name.clone(),
        steps: plan.steps.iter().map(|s| s.id.to_string()).collect(),
    });
    if let Err(e) = open_journal(&mut run) {
        return Err(fail(&mut run, None, e, t0));
    }
    let complete = run.journal.is_complete(&StepKind::Finish.into());
    if complete {
        run.notice(
            "an earlier run in this live session completed this install (see the journal); \
             nothing to do",
        );
    }
    let resumed: Vec<String> = run.journal.completed.iter().map(|c| c.id.clone()).collect();
    run.resumed = resumed.clone();
    for (i, step) in plan.steps.iter().enumerate() {
        if let Err((e, duration_ms)) = run.step_in_turn(i, step, complete) {
            let failed = (step.id.to_string(), duration_ms);
            return Err(fail(&mut run, Some(failed), e, t0));
        }
    }
    run.step = None;
    let duration_ms = millis(t0);
    run.events.emit(&Event::Finished {
        outcome: Outcome::Done,
        duration_ms,
    });
    Ok(InstallReport {
        node: plan.node.name.clone(),
        steps: run.steps,
        resumed,
        notices: run.notices,
        ids: run.ids,
        duration_ms,
    })
}

impl<'a> Run<'a> {
    /// A run of `plan` that has done nothing yet, with a fresh journal.
    fn new(
        plan: &'a Plan,
        site: &'a Site,
        site_src: &'a str,
        ctx: &'a InstallContext,
        host: &'a dyn Host,
        sink: &'a mut dyn Sink,
    ) -> Run<'a> {
        let log_buf = SharedBuf::default();
        let events = Events {
            sink,
            log: JsonLines::new(log_buf.clone(), Box::new(MonotonicClock::start())),
            log_buf,
        };
        Run {
            plan,
            site,
            site_src,
            ctx,
            host,
            events,
            ids: ctx.ids.clone(),
            journal: InstallJournal::new(plan, site_src, &ctx.ids),
            resuming: false,
            resumed: Vec::new(),
            step: None,
            files: Vec::new(),
            payload: Payload::default(),
            mounts: Vec::new(),
            imported: Vec::new(),
            hostid_set: false,
            notices: Vec::new(),
            steps: Vec::new(),
            started_at: now_secs(),
        }
    }

    /// Step `i` of the plan, announced and reported, or skipped when an earlier run did it
    /// (all of them once the install `complete`d). A failure comes back with its duration.
    fn step_in_turn(
        &mut self,
        i: usize,
        step: &Step,
        complete: bool,
    ) -> Result<(), (anyhow::Error, u64)> {
        self.step = Some(step.id.clone());
        self.events.emit(&Event::StepStarted {
            step: step.id.to_string(),
            index: i + 1,
            total: self.plan.steps.len(),
            description: step.description.clone(),
        });
        let t = Instant::now();
        let earlier = self.journal.is_complete(&step.id);
        let skipped = if earlier && (complete || !reruns(&step.id)) {
            Some("completed by an earlier run (journal)".to_string())
        } else {
            self.run_step(step).map_err(|e| (e, millis(t)))?
        };
        let outcome = match skipped {
            None => Outcome::Done,
            Some(reason) => Outcome::Skipped { reason },
        };
        let duration_ms = millis(t);
        self.events.emit(&Event::StepFinished {
            step: step.id.to_string(),
            outcome: outcome.clone(),
            duration_ms,
        });
        if !earlier {
            let word = if outcome == Outcome::Done {
                "done"
            } else {
                "skipped"
            };
            self.journal
                .complete(&step.id, word, duration_ms, now_secs());
            self.save_journal();
        }
        self.steps.push(StepReport {
            id: step.id.clone(),
            outcome,
            duration_ms,
        });
        Ok(())
    }
}

/// Reads the journal: the same plan resumes (with its ids); anything else starts afresh.
fn open_journal(run: &mut Run<'_>) -> Result<()> {
    let Some(path) = run.ctx.journal.clone() else {
        return Ok(());
    };
    match InstallJournal::load(&path) {
        Ok(Some(j)) if j.plan_sha256 == run.journal.plan_sha256 => {
            run.ids = j.generated_ids()?;
            run.journal = j;
            run.resuming = true;
            let done: Vec<&str> = run
                .journal
                .completed
                .iter()
                .map(|c| c.id.as_str())
                .collect();
            let msg = format!(
                "resuming the install of this plan from the journal {}: completed earlier: {}",
                path.display(),
                if done.is_empty() {
                    "nothing".to_string()
                } else {
                    done.join(", ")
                }
            );
            run.log(Level::Info, msg);
        }
        Ok(Some(j)) => {
            let msg = format!(
                "the journal {} is about another plan (node {}); this install starts afresh and \
                 replaces it",
                path.display(),
                j.node
            );
            run.log(Level::Info, msg);
            run.journal = InstallJournal::new(run.plan, run.site_src, &run.ids);
        }
        Ok(None) => {}
        Err(e) => {
            let msg = format!("ignoring the unreadable journal: {e:#}");
            run.log(Level::Warning, msg);
        }
    }
    run.save_journal();
    Ok(())
}

/// Emits the failure, cleans up unless asked not to, and builds the error.
fn fail(
    run: &mut Run<'_>,
    step: Option<(String, u64)>,
    error: anyhow::Error,
    t0: Instant,
) -> anyhow::Error {
    let text = format!("{error:#}");
    if let Some((s, duration_ms)) = &step {
        run.events.emit(&Event::StepFinished {
            step: s.clone(),
            outcome: Outcome::Failed {
                error: text.clone(),
            },
            duration_ms: *duration_ms,
        });
    }
    run.step = None;
    let kept = run.ctx.keep_on_error && (!run.mounts.is_empty() || !run.imported.is_empty());
    let cleanup = if run.ctx.keep_on_error {
        Vec::new()
    } else {
        run.cleanup()
    };
    if kept {
        let msg = format!(
            "--keep-on-error: left pools {} imported and {} mounted for debugging; `zpool \
             export` them before rerunning on another system",
            run.imported.join(", "),
            run.ctx.target.display()
        );
        run.log(Level::Warning, msg);
    }
    for c in &cleanup {
        run.log(
            Level::Warning,
            format!("cleanup after the failure also failed: {c:#}"),
        );
    }
    run.events.emit(&Event::Finished {
        outcome: Outcome::Failed { error: text },
        duration_ms: millis(t0),
    });
    anyhow::Error::new(InstallError {
        step: step.map(|(s, _)| s),
        error,
        cleanup,
        kept,
        completed: run.journal.completed.iter().map(|c| c.id.clone()).collect(),
    })
}
