//! The one way to run an external command: an argv vector (never a shell string), a timeout on
//! every call, stdout and stderr captured, and an error that names the full command line, how it
//! ended and the tail of its stderr.
//!
//! The child runs in its own process group so that a timeout kills everything it started
//! (`zpool` and `udevadm` both spawn helpers that would otherwise keep our pipes open).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Timeout of a [`Cmd`] that does not set its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long to wait for the output pipes to close after the child has exited or been killed.
/// A grandchild that escaped the process group (a daemon) may hold them open forever.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How much of stderr an error carries.
const STDERR_TAIL_BYTES: usize = 4096;

/// Bytes fed to a command's standard input.
#[derive(Clone, PartialEq, Eq)]
enum Stdin {
    /// May appear in logs and dry-run output (as a length).
    Plain(Vec<u8>),
    /// Never logged, never shown: passwords, keys.
    Secret(Vec<u8>),
}

/// An external command: program, arguments, environment, stdin and timeout.
///
/// `Display` gives the command line as a user could paste it into a shell (each argument quoted
/// where needed). Environment values and stdin are never part of it, nor of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Stdin>,
    timeout: Duration,
    ok_codes: Vec<i32>,
}

impl Cmd {
    /// A command with no arguments, [`DEFAULT_TIMEOUT`], and success meaning exit code 0.
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            ok_codes: vec![0],
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (its value is never logged).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feeds `bytes` to standard input. Logged as a length only.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(Stdin::Plain(bytes.into()));
        self
    }

    /// Feeds secret `bytes` (a password for `chpasswd`, a key) to standard input: never logged,
    /// never shown in a dry run, not even in `Debug`.
    pub fn secret_stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(Stdin::Secret(bytes.into()));
        self
    }

    /// Kills the command (and everything it started) after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Also treats exit code `code` as success (`zpool import` exits 1 when it finds nothing).
    pub fn ok_code(mut self, code: i32) -> Cmd {
        self.ok_codes.push(code);
        self
    }

    /// The program.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The names (not the values) of the environment variables set.
    pub fn env_keys(&self) -> impl Iterator<Item = &OsStr> {
        self.env.iter().map(|(k, _)| k.as_os_str())
    }

    /// The timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether stdin is fed, and if so its length and whether it is secret.
    pub fn stdin_summary(&self) -> Option<(usize, bool)> {
        match &self.stdin {
            None => None,
            Some(Stdin::Plain(b)) => Some((b.len(), false)),
            Some(Stdin::Secret(b)) => Some((b.len(), true)),
        }
    }

    fn stdin_bytes(&self) -> Option<&[u8]> {
        match &self.stdin {
            None => None,
            Some(Stdin::Plain(b)) | Some(Stdin::Secret(b)) => Some(b),
        }
    }
}

/// Quotes one word for a POSIX shell, only when needed.
fn shell_word(w: &OsStr) -> String {
    let s = w.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',')
        });
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_word(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_word(a))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("line", &self.to_string())
            .field("env_keys", &self.env_keys().collect::<Vec<_>>())
            .field("stdin", &self.stdin_summary())
            .field("timeout", &self.timeout)
            .finish()
    }
}

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

/// Why a command did not succeed. Every variant names the full command line.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started (not installed, not executable).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The error from `exec`.
        source: io::Error,
    },
    /// The command ran past its timeout and was killed with its whole process group.
    #[error("`{command}` did not finish within {}s and was killed{}", timeout.as_secs_f64(), tail(stderr))]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout it was given.
        timeout: Duration,
        /// The tail of what it wrote to stderr before it was killed.
        stderr: String,
    },
    /// The command exited with a code it was not expected to, or died from a signal.
    #[error("`{command}` failed ({status}){}", tail(stderr))]
    Failed {
        /// The command line.
        command: String,
        /// `exit code N` or `killed by signal N`.
        status: String,
        /// The exit code, when it exited normally.
        code: Option<i32>,
        /// The tail of its stderr.
        stderr: String,
    },
    /// Waiting for the command failed (rare: the kernel refused `waitpid`).
    #[error("running `{command}`: {source}")]
    Io {
        /// The command line.
        command: String,
        /// The error.
        source: io::Error,
    },
}

impl CmdError {
    /// The command line the error is about.
    pub fn command(&self) -> &str {
        match self {
            CmdError::Spawn { command, .. }
            | CmdError::Timeout { command, .. }
            | CmdError::Failed { command, .. }
            | CmdError::Io { command, .. } => command,
        }
    }
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; stderr:\n{}", stderr.trim_end())
    }
}

/// The last [`STDERR_TAIL_BYTES`] of `bytes` as text, cut at a line start when possible.
fn stderr_tail(bytes: &[u8]) -> String {
    if bytes.len() <= STDERR_TAIL_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let cut = &bytes[bytes.len() - STDERR_TAIL_BYTES..];
    let start = cut.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    format!("...\n{}", String::from_utf8_lossy(&cut[start..]))
}

fn status_text(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => s.to_string(),
    }
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

/// Kills the child's whole process group (it is its leader), then the child itself.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
}

/// Runs `cmd`: logs its command line (never env values or stdin), captures stdout and stderr,
/// kills it and everything it started when the timeout passes, and turns any failure into a
/// [`CmdError`] naming the command line, how it ended and its stderr tail.
///
/// The environment is inherited, plus `LC_ALL=C` so that tools print messages we can match and
/// numbers we can parse, plus the command's own variables.
pub fn run_command(cmd: &Cmd) -> Result<Output, CmdError> {
    let line = cmd.to_string();
    tracing::info!(
        command = %line,
        timeout_s = cmd.timeout.as_secs_f64(),
        stdin = ?cmd.stdin_summary().map(|(n, secret)| if secret { "secret".to_string() } else { format!("{n} bytes") }),
        "running"
    );
    let started = Instant::now();
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env("LC_ALL", "C")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|source| CmdError::Spawn {
        command: line.clone(),
        source,
    })?;

    if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), cmd.stdin_bytes()) {
        let bytes = bytes.to_vec();
        // A child that exits without reading stdin gives EPIPE here; its exit status tells more.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let (tx, rx) = mpsc::channel();
    drain(child.stdout.take(), 0, &tx);
    drain(child.stderr.take(), 1, &tx);
    drop(tx);

    let mut poll = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(source) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(CmdError::Io {
                    command: line,
                    source,
                });
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= cmd.timeout {
            kill_group(&mut child);
            let _ = child.wait();
            break None;
        }
        thread::sleep(poll.min(cmd.timeout - elapsed));
        poll = (poll * 2).min(Duration::from_millis(50));
    };

    let mut out = [Vec::new(), Vec::new()];
    let grace_end = Instant::now() + PIPE_GRACE;
    for _ in 0..2 {
        let left = grace_end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((which, bytes)) => out[which] = bytes,
            Err(_) => {
                tracing::warn!(command = %line, "output pipe still open after exit; something it started holds it");
                break;
            }
        }
    }
    let [stdout, stderr] = out;

    let Some(status) = status else {
        tracing::warn!(command = %line, timeout_s = cmd.timeout.as_secs_f64(), "timed out, killed");
        return Err(CmdError::Timeout {
            command: line,
            timeout: cmd.timeout,
            stderr: stderr_tail(&stderr),
        });
    };
    tracing::debug!(
        command = %line,
        status = %status_text(status),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "finished"
    );
    match status.code() {
        Some(code) if cmd.ok_codes.contains(&code) => Ok(Output {
            code,
            stdout,
            stderr,
        }),
        code => Err(CmdError::Failed {
            command: line,
            status: status_text(status),
            code,
            stderr: stderr_tail(&stderr),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sh(script: &str) -> Cmd {
        Cmd::new("sh").arg("-c").arg(script).arg("sh")
    }

    /// Whether a process is gone (or a zombie nobody has reaped yet, which is dead too).
    fn dead(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false),
        }
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Cmd::new("sgdisk")
            .arg("--change-name=1:tappaas rpool")
            .arg("/dev/disk/by-id/nvme-X_1")
            .arg("it's")
            .arg("");
        assert_eq!(
            c.to_string(),
            r"sgdisk '--change-name=1:tappaas rpool' /dev/disk/by-id/nvme-X_1 'it'\''s' ''"
        );
    }

    #[test]
    fn debug_never_shows_env_values_or_stdin() {
        let c = Cmd::new("chpasswd")
            .env("SECRET_TOKEN", "hunter2-env")
            .secret_stdin("root:hunter2-stdin");
        let d = format!("{c:?} {c}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("SECRET_TOKEN"), "{d}");
        assert_eq!(c.stdin_summary(), Some((18, true)));
    }

    #[test]
    fn captures_stdout_and_stderr_and_feeds_stdin() {
        let out = run_command(&sh("cat; echo warn >&2").stdin("hello")).unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"warn\n");
        assert_eq!(out.code, 0);
    }

    #[test]
    fn non_zero_exit_names_the_command_line_status_and_stderr() {
        let err = run_command(&sh("echo 'no such pool: tank9' >&2; exit 3")).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, CmdError::Failed { code: Some(3), .. }),
            "{err:?}"
        );
        assert!(msg.contains("`sh -c 'echo '\\''no such pool"), "{msg}");
        assert!(msg.contains("exit code 3"), "{msg}");
        assert!(msg.contains("no such pool: tank9"), "{msg}");
    }

    #[test]
    fn accepted_exit_codes_are_success() {
        let out = run_command(&sh("exit 1").ok_code(1)).unwrap();
        assert_eq!(out.code, 1);
    }

    #[test]
    fn missing_program_is_a_spawn_error_naming_it() {
        let err = run_command(&Cmd::new("/nonexistent/zpool").arg("status")).unwrap_err();
        assert!(matches!(err, CmdError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/zpool status"));
    }

    #[test]
    fn timeout_kills_the_child_and_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "echo started >&2; sleep 60 & echo $$ $! > {}; wait",
            pids.display()
        );
        let t0 = Instant::now();
        let err = run_command(&sh(&script).timeout(Duration::from_millis(500))).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let msg = err.to_string();
        assert!(matches!(err, CmdError::Timeout { .. }), "{err:?}");
        assert!(
            msg.contains("did not finish within 0.5s and was killed"),
            "{msg}"
        );
        assert!(msg.contains("started"), "stderr tail missing: {msg}");
        let text = std::fs::read_to_string(&pids).unwrap();
        let mut it = text.split_whitespace();
        let (shell, sleeper) = (it.next().unwrap(), it.next().unwrap());
        // The grandchild is reparented and reaped asynchronously; give it a moment.
        let until = Instant::now() + Duration::from_secs(3);
        while !(dead(shell) && dead(sleeper)) && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(dead(shell), "the shell {shell} survived the timeout");
        assert!(
            dead(sleeper),
            "the grandchild {sleeper} survived the timeout"
        );
        assert!(Path::new(&pids).exists());
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut long = Vec::new();
        for i in 0..2000 {
            long.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let t = stderr_tail(&long);
        assert!(t.starts_with("...\nline "), "{}", &t[..20]);
        assert!(t.ends_with("line 1999\n"));
        assert!(t.len() <= STDERR_TAIL_BYTES + 4);
    }
}
