//! The one way the agent runs an external command (`pveum`, `chpasswd`,
//! `proxmox-backup-manager`, `ip`, ...): argv as a list, never a shell string; the full command
//! line in the log and in the error; stderr captured; a time limit; secrets only on stdin.

use crate::pve::Secret;
use anyhow::bail;
use std::time::Duration;

/// A command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Fed to stdin, never logged.
    pub stdin: Option<Secret>,
    /// Killed after this long.
    pub timeout: Duration,
}

impl Cmd {
    /// `program args...` with the runner's default limit (2 minutes).
    pub fn new<I, S>(program: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            timeout: tappaas_runner::DEFAULT_TIMEOUT,
        }
    }
    /// Feeds `secret` on stdin.
    pub fn secret_stdin(mut self, secret: Secret) -> Cmd {
        self.stdin = Some(secret);
        self
    }
    /// The command line as shown in logs and errors.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// The same command for the shared runner; the secret goes to its secret stdin, which
    /// never logs or shows it.
    fn to_shared(&self) -> tappaas_runner::Cmd {
        let c = tappaas_runner::Cmd::new(&self.program)
            .args(&self.args)
            .timeout(self.timeout);
        match &self.stdin {
            Some(secret) => c.secret_stdin(secret.expose().as_bytes()),
            None => c,
        }
    }
    /// The argv, for assertions in tests.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs commands. The real one is [`SystemRunner`]; tests use the mock or a recorder.
#[cfg_attr(test, mockall::automock)]
pub trait Runner {
    /// Runs `cmd` to completion; `Err` only when it could not be run or timed out.
    fn run(&self, cmd: &Cmd) -> anyhow::Result<Output>;
}

/// Runs `cmd` and fails unless it exits 0, naming the command and its stderr.
pub fn run_ok(r: &dyn Runner, cmd: &Cmd) -> anyhow::Result<Output> {
    let out = r.run(cmd)?;
    if out.code != 0 {
        bail!(
            "`{}` exited with {}: {}",
            cmd.display(),
            out.code,
            out.stderr.trim()
        );
    }
    Ok(out)
}

/// Runs commands on this machine, through the runner the installer uses too
/// (`tappaas-runner`): its own process group, killed whole on timeout, the output pipes given a
/// short grace after the child ends, the secret on stdin only.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let end = tappaas_runner::run_to_end(&cmd.to_shared())?;
        Ok(Output {
            code: end.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&end.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&end.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_captures_feeds_stdin_and_times_out() {
        let r = SystemRunner;
        let out = r
            .run(
                &Cmd::new("sh", ["-c", "cat; echo oops >&2; exit 3"])
                    .secret_stdin(Secret::new("s3cret")),
            )
            .unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.stdout, "s3cret");
        assert_eq!(out.stderr.trim(), "oops");
        let err = run_ok(&r, &Cmd::new("sh", ["-c", "echo bad >&2; exit 1"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`sh -c echo bad >&2; exit 1` exited with 1: bad"),
            "{err}"
        );
        let mut slow = Cmd::new("sleep", ["5"]);
        slow.timeout = Duration::from_millis(100);
        let err = r.run(&slow).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        let err = r.run(&Cmd::new("/nonexistent/tool", ["x"])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/tool"), "{err}");
    }

    /// The agent's own runner killed only `sh` here; the shared one kills the group, so the
    /// grandchild is gone and first boot does not wait on its pipes.
    #[test]
    fn a_timeout_kills_what_the_command_started_and_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 100 & echo $! > {}; wait", pid_file.display());
        let mut slow = Cmd::new("sh", ["-c", script.as_str()]);
        slow.timeout = Duration::from_millis(300);
        let t0 = std::time::Instant::now();
        let err = SystemRunner.run(&slow).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(
            t0.elapsed() < tappaas_runner::PIPE_GRACE,
            "{:?}",
            t0.elapsed()
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let until = std::time::Instant::now() + Duration::from_secs(3);
        let alive = || {
            std::fs::read_to_string(&stat).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
            })
        };
        while alive() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive(),
            "the grandchild {} survived the timeout",
            pid.trim()
        );
    }

    #[test]
    fn the_secret_is_in_no_error() {
        let secret = || Secret::new("hunter2-join");
        let failing = Cmd::new("sh", ["-c", "cat >/dev/null; echo refused >&2; exit 1"])
            .secret_stdin(secret());
        let err = run_ok(&SystemRunner, &failing).unwrap_err();
        let mut slow = Cmd::new("sh", ["-c", "cat >/dev/null; sleep 5"]).secret_stdin(secret());
        slow.timeout = Duration::from_millis(200);
        let timeout = SystemRunner.run(&slow).unwrap_err();
        let missing = SystemRunner
            .run(&Cmd::new("/nonexistent/chpasswd", ["-e"]).secret_stdin(secret()))
            .unwrap_err();
        for e in [err, timeout, missing] {
            let shown = format!("{e:#} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(!format!("{failing:?}").contains("hunter2"));
    }
}
