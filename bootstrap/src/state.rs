//! The agent's persisted state (`/var/lib/tappaas/state.json`): every step's state, timings,
//! attempts and last error, plus what a step must remember across restarts. Written
//! atomically (temporary file, fsync, rename, fsync of the directory) with mode 0600.

use crate::pve::ReplicationJob;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version of the state file.
pub const STATE_FORMAT: u32 = 1;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// Not started yet.
    #[default]
    Pending,
    /// Started and not finished: the agent runs it now, or crashed in it.
    Running,
    /// Done; never run again.
    Done,
    /// The last attempt failed; the next run tries again.
    Failed,
}

impl StepState {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done => "done",
            StepState::Failed => "failed",
        }
    }
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StepRecord {
    /// Step name (`check-network`, `join-cluster`, ...).
    pub name: String,
    /// What it does, one line.
    pub description: String,
    /// Where it stands.
    pub state: StepState,
    /// When the last attempt started (RFC 3339, UTC).
    pub started_at: Option<String>,
    /// When it finished, done or failed.
    pub finished_at: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Attempts so far.
    pub attempts: u32,
    /// The last attempt's error, with its causes.
    pub last_error: Option<String>,
}

/// What steps remember between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Memory {
    /// Replication jobs that involved this node, read before a replacement removed the dead
    /// node, to re-create them after the rejoin.
    #[serde(default)]
    pub replication_jobs: Option<Vec<ReplicationJob>>,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// This node.
    pub node: String,
    /// Its role.
    pub role: String,
    /// The steps, in order.
    pub steps: Vec<StepRecord>,
    /// What steps remember.
    #[serde(default)]
    pub memory: Memory,
}

impl State {
    /// The record of `name`, if that step is in the list.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }
    /// Mutable record of `name`.
    pub fn step_mut(&mut self, name: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| s.name == name)
    }
    /// Whether every step is done.
    pub fn all_done(&self) -> bool {
        self.steps.iter().all(|s| s.state == StepState::Done)
    }
}

/// Reads and writes the state file.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// The store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StateStore {
        StateStore { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state, or `None` when the agent never ran.
    pub fn load(&self) -> anyhow::Result<Option<State>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let state: State = serde_json::from_str(&text)
            .with_context(|| format!("reading {}: not a state file", self.path.display()))?;
        if state.format != STATE_FORMAT {
            anyhow::bail!(
                "{} has format {}, this agent knows {STATE_FORMAT}",
                self.path.display(),
                state.format
            );
        }
        Ok(Some(state))
    }

    /// Replaces the state file atomically.
    pub fn save(&self, state: &State) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(state)?;
        json.push(b'\n');
        write_atomic(&self.path, &json, 0o600)
    }
}

/// Replaces `path` with `bytes` (mode `mode`) so that a crash leaves the old or the new file,
/// never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Now, as an RFC 3339 UTC timestamp with seconds.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as an RFC 3339 UTC timestamp with seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    tappaas_site::date::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn saves_atomically_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("sub/state.json"));
        assert!(store.load().unwrap().is_none());
        let state = State {
            format: STATE_FORMAT,
            node: "tappaas2".into(),
            role: "member".into(),
            steps: vec![StepRecord {
                name: "join-cluster".into(),
                state: StepState::Failed,
                attempts: 2,
                last_error: Some("cannot reach".into()),
                ..Default::default()
            }],
            memory: Memory::default(),
        };
        store.save(&state).unwrap();
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), state);
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
        fs::write(store.path(), "{").unwrap();
        let err = store.load().unwrap_err();
        assert!(format!("{err:#}").contains("not a state file"), "{err:#}");
    }
}
