//! The one way the agent runs an external command (`pveum`, `chpasswd`,
//! `proxmox-backup-manager`, `ip`, ...): argv as a list, never a shell string; the full command
//! line in the log and in the error; stderr captured; a time limit; secrets only on stdin.

use crate::pve::Secret;
use anyhow::{bail, Context as _};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    /// `program args...` with a 2-minute limit.
    pub fn new<I, S>(program: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            timeout: Duration::from_secs(120),
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

/// Runs commands on this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        tracing::info!("running {}", cmd.display());
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{}`", cmd.display()))?;
        if let (Some(secret), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
            stdin
                .write_all(secret.expose().as_bytes())
                .with_context(|| format!("feeding stdin to `{}`", cmd.display()))?;
        }
        let mut out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let out_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        let err_t = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_string(&mut s);
            }
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if start.elapsed() > cmd.timeout {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "`{}` did not finish within {:?}",
                    cmd.display(),
                    cmd.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        Ok(Output {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
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
}
