//! Running a [`Cmd`]: spawn in its own process group, feed stdin, drain the pipes on threads,
//! wait with a timeout, kill the whole group when it passes.

use crate::cmd::Cmd;
use crate::error::{status_text, stderr_tail, CmdError};

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for the output pipes to close after the child has exited or been killed.
/// A grandchild that escaped the process group (a daemon) may hold them open forever.
pub const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What a successful command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (one of the command's accepted codes).
    pub code: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error (tools print warnings there even on success).
    pub stderr: Vec<u8>,
}

impl Output {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// How a command that ran to its end ended, whatever its exit code: for callers that judge the
/// exit code themselves (the first-boot agent's `Runner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended: an exit code, or the signal that killed it.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Runs `cmd`: logs its command line (never env values or stdin), captures stdout and stderr,
/// kills it and everything it started when the timeout passes, and turns any failure into a
/// [`CmdError`] naming the command line, how it ended and its stderr tail.
///
/// The environment is inherited, plus `LC_ALL=C` so that tools print messages we can match and
/// numbers we can parse, plus the command's own variables.
pub fn run_command(cmd: &Cmd) -> Result<Output, CmdError> {
    let end = run_to_end(cmd)?;
    match end.status.code() {
        Some(code) if cmd.accepts(code) => Ok(Output {
            code,
            stdout: end.stdout,
            stderr: end.stderr,
        }),
        code => Err(CmdError::Failed {
            command: cmd.to_string(),
            status: status_text(end.status),
            code,
            stderr: stderr_tail(&end.stderr),
        }),
    }
}

/// Runs `cmd` like [`run_command`] but reports how it ended instead of judging the exit code:
/// `Err` only when it could not be started, could not be waited for, or ran past its timeout
/// (and was killed with its whole process group).
pub fn run_to_end(cmd: &Cmd) -> Result<Finished, CmdError> {
    let line = cmd.to_string();
    tracing::info!(
        command = %line,
        timeout_s = cmd.get_timeout().as_secs_f64(),
        stdin = ?cmd.stdin_summary().map(|(n, secret)| if secret { "secret".to_string() } else { format!("{n} bytes") }),
        "running"
    );
    let started = Instant::now();
    let mut child = spawn(cmd).map_err(|source| CmdError::Spawn {
        command: line.clone(),
        source,
    })?;
    feed_stdin(&mut child, cmd);
    let pipes = drain_both(&mut child);
    let status =
        wait_or_kill(&mut child, cmd.get_timeout(), started).map_err(|source| CmdError::Io {
            command: line.clone(),
            source,
        })?;
    let (stdout, stderr) = collect(&pipes, &line);

    let Some(status) = status else {
        tracing::warn!(command = %line, timeout_s = cmd.get_timeout().as_secs_f64(), "timed out, killed");
        return Err(CmdError::Timeout {
            command: line,
            timeout: cmd.get_timeout(),
            stderr: stderr_tail(&stderr),
        });
    };
    tracing::debug!(
        command = %line,
        status = %status_text(status),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "finished"
    );
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// Starts `cmd` as the leader of a new process group, stdout and stderr piped, stdin piped only
/// when there is something to feed.
fn spawn(cmd: &Cmd) -> std::io::Result<Child> {
    Command::new(cmd.program())
        .args(cmd.get_args())
        .env("LC_ALL", "C")
        .envs(cmd.env_pairs())
        .stdin(if cmd.stdin_bytes().is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Writes the command's stdin on a thread (a large input must not block the wait).
fn feed_stdin(child: &mut Child, cmd: &Cmd) {
    if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), cmd.stdin_bytes()) {
        let bytes = bytes.to_vec();
        // A child that exits without reading stdin gives EPIPE here; its exit status tells more.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
}

/// Starts reading stdout (tag 0) and stderr (tag 1) to their ends on threads.
fn drain_both(child: &mut Child) -> mpsc::Receiver<(usize, Vec<u8>)> {
    let (tx, rx) = mpsc::channel();
    drain(child.stdout.take(), 0, &tx);
    drain(child.stderr.take(), 1, &tx);
    rx
}

/// Reads a pipe to its end on a thread and sends the bytes back tagged with `which`.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    which: usize,
    tx: &mpsc::Sender<(usize, Vec<u8>)>,
) {
    let tx = tx.clone();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send((which, buf));
        });
    } else {
        let _ = tx.send((which, Vec::new()));
    }
}

/// Waits for the child until `timeout` after `started`; `None` when it had to be killed (with
/// its whole group). A failed wait kills it too before returning the error.
fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
    started: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    let mut poll = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                let _ = child.wait();
                return Err(e);
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            kill_group(child);
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(poll.min(timeout - elapsed));
        poll = (poll * 2).min(Duration::from_millis(50));
    }
}

/// Collects what the drain threads read, waiting at most [`PIPE_GRACE`] for pipes that are
/// still open (something the command started holds them); what is missing then stays empty.
fn collect(pipes: &mpsc::Receiver<(usize, Vec<u8>)>, line: &str) -> (Vec<u8>, Vec<u8>) {
    let mut out = [Vec::new(), Vec::new()];
    let grace_end = Instant::now() + PIPE_GRACE;
    for _ in 0..2 {
        let left = grace_end.saturating_duration_since(Instant::now());
        match pipes.recv_timeout(left) {
            Ok((which, bytes)) => out[which] = bytes,
            Err(_) => {
                tracing::warn!(command = %line, "output pipe still open after exit; something it started holds it");
                break;
            }
        }
    }
    let [stdout, stderr] = out;
    (stdout, stderr)
}

/// Kills the child's whole process group (it is its leader), then the child itself.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
}
