//! The install journal: which steps of which plan have completed, with the ids the install
//! generated, kept on the live system's tmpfs (`/run/tappaas/install-journal.json`).
//!
//! It survives a failed run and a rerun in the same live session, so the rerun resumes after
//! the last completed step with the same plan and the same machine-id and hostid. It does not
//! survive a power cut (the live system's RAM is gone): the next run starts from the beginning,
//! and its wipe step clears what the interrupted run left on the planned disks.

use crate::plan::{Plan, StepId};
use crate::system::GeneratedIds;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Where the journal lives on the live system (tmpfs: gone after a reboot).
pub const JOURNAL_PATH: &str = "/run/tappaas/install-journal.json";
/// Version of the journal's JSON form.
pub const JOURNAL_FORMAT: u32 = 1;

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sha256 of the plan as the installed system's `/etc/tappaas/plan.json` holds it (pretty
/// JSON plus a newline): the same value as `plan-sha256` in `/etc/tappaas/node.toml`.
pub fn plan_sha256(plan: &Plan) -> String {
    let mut json = serde_json::to_vec_pretty(plan).unwrap_or_default();
    json.push(b'\n');
    sha256_hex(&json)
}

/// The generated ids, as the journal keeps them (none of them is a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JournalIds {
    /// 32 hex digits.
    pub machine_id: String,
    /// The hostid.
    pub hostid: u32,
    /// Seconds since the epoch when the first run began.
    pub installed_at: u64,
}

/// One completed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CompletedStep {
    /// The plan's step id.
    pub id: String,
    /// `done` or `skipped`.
    pub outcome: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// When it ended, seconds since the epoch (UTC).
    pub finished_at: u64,
}

/// The journal of one install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallJournal {
    /// [`JOURNAL_FORMAT`].
    pub format: u32,
    /// The node being installed.
    pub node: String,
    /// [`plan_sha256`] of `plan`.
    pub plan_sha256: String,
    /// sha256 of the site file's text.
    pub site_sha256: String,
    /// The plan the user consented to: a rerun resumes this plan, not a new one made from a
    /// probe that now sees the partial install on the disks.
    pub plan: Plan,
    /// The ids of this install.
    pub ids: JournalIds,
    /// Completed steps, in order.
    pub completed: Vec<CompletedStep>,
}

impl InstallJournal {
    /// A journal with nothing completed.
    pub fn new(plan: &Plan, site_source: &str, ids: &GeneratedIds) -> InstallJournal {
        InstallJournal {
            format: JOURNAL_FORMAT,
            node: plan.node.name.clone(),
            plan_sha256: plan_sha256(plan),
            site_sha256: sha256_hex(site_source.as_bytes()),
            plan: plan.clone(),
            ids: JournalIds {
                machine_id: ids.machine_id_hex(),
                hostid: ids.hostid,
                installed_at: ids.installed_at,
            },
            completed: Vec::new(),
        }
    }

    /// Reads the journal at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<InstallJournal>> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let j: InstallJournal = serde_json::from_str(&text)
            .with_context(|| format!("parsing the install journal {}", path.display()))?;
        if j.format != JOURNAL_FORMAT {
            bail!(
                "{} has format {}, this installer writes format {JOURNAL_FORMAT}",
                path.display(),
                j.format
            );
        }
        if j.plan_sha256 != plan_sha256(&j.plan) {
            bail!(
                "{}: the plan it holds does not match its plan-sha256",
                path.display()
            );
        }
        Ok(Some(j))
    }

    /// Writes the journal atomically (temporary file, fsync, rename), its directory 0700.
    pub fn store(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.new");
        let json = serde_json::to_vec_pretty(self).context("serialising the journal")?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
    }

    /// Whether this journal is about `site_source`'s node `node`: the CLI then resumes its plan.
    pub fn is_for(&self, site_source: &str, node: &str) -> bool {
        self.node == node && self.site_sha256 == sha256_hex(site_source.as_bytes())
    }

    /// Whether step `id` completed.
    pub fn is_complete(&self, id: &StepId) -> bool {
        self.completed.iter().any(|c| *id == c.id)
    }

    /// Records step `id` as completed (once).
    pub fn complete(&mut self, id: &StepId, outcome: &str, duration_ms: u64, finished_at: u64) {
        if !self.is_complete(id) {
            self.completed.push(CompletedStep {
                id: id.to_string(),
                outcome: outcome.to_string(),
                duration_ms,
                finished_at,
            });
        }
    }

    /// The ids the install began with.
    pub fn generated_ids(&self) -> Result<GeneratedIds> {
        let hex = &self.ids.machine_id;
        let mut machine_id = [0u8; 16];
        if hex.len() != 32 {
            bail!("the journal's machine-id {hex:?} is not 32 hex digits");
        }
        for (i, b) in machine_id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .with_context(|| format!("the journal's machine-id {hex:?} is not hex"))?;
        }
        Ok(GeneratedIds {
            machine_id,
            hostid: self.ids.hostid,
            installed_at: self.ids.installed_at,
        })
    }
}
