//! The runner against real processes: capture, exit codes, errors, timeouts that kill the whole
//! process group, pipes held open by a grandchild, and secrets that appear nowhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tappaas_runner::{run_command, run_to_end, Cmd, CmdError, PIPE_GRACE};

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

/// The pids a script wrote to `file`, one word each.
fn pids_in(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Waits up to 3 s for every pid to be dead (a reparented grandchild is reaped asynchronously)
/// and names the first survivor.
fn assert_all_dead(pids: &[String], what: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    while !pids.iter().all(|p| dead(p)) && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        assert!(dead(p), "{what}: process {p} survived the timeout");
    }
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
fn run_to_end_reports_any_exit_code_and_a_signal_with_the_output() {
    let end = run_to_end(&sh("echo out; echo err >&2; exit 7")).unwrap();
    assert_eq!(end.status.code(), Some(7));
    assert_eq!(end.stdout, b"out\n");
    assert_eq!(end.stderr, b"err\n");
    let end = run_to_end(&sh("kill -9 $$")).unwrap();
    assert_eq!(end.status.code(), None);
}

#[test]
fn the_environment_has_lc_all_c_and_the_commands_own_variables() {
    let out = run_command(&sh("echo $LC_ALL $TAPPAAS_X").env("TAPPAAS_X", "y")).unwrap();
    assert_eq!(out.stdout_text(), "C y\n");
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
    let pids = pids_in(&pids);
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_all_dead(&pids, "the shell or its grandchild");
}

/// What the agent's own runner did not do: it killed only the direct child, so the shell's
/// children lived on (and held the pipes).
#[test]
fn timeout_kills_the_whole_process_group_background_and_foreground() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 100 & a=$!; sleep 100 & b=$!; echo $$ $a $b > {}; wait",
        pids.display()
    );
    let t0 = Instant::now();
    let err = run_to_end(&sh(&script).timeout(Duration::from_millis(300))).unwrap_err();
    assert!(matches!(err, CmdError::Timeout { .. }), "{err:?}");
    // Everything in the group is dead, so the pipes close at once: no grace period spent.
    assert!(t0.elapsed() < PIPE_GRACE, "{:?}", t0.elapsed());
    let pids = pids_in(&pids);
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_all_dead(&pids, "sh -c 'sleep 100 & sleep 100 & wait'");
}

/// The other thing the agent's runner did not do: it joined its pipe threads without a bound,
/// so a grandchild holding stdout or stderr kept the run going as long as the grandchild lived.
#[test]
fn a_grandchild_holding_the_pipes_after_the_child_exits_does_not_hang_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!("sleep 60 & echo $! > {}; exit 0", pids.display());
    let t0 = Instant::now();
    let out = run_command(&sh(&script)).unwrap();
    let took = t0.elapsed();
    let sleeper = pids_in(&pids).remove(0);
    // Ours to clean up: the runner leaves a command that exited cleanly alone.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper.parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(out.code, 0);
    assert!(
        took >= PIPE_GRACE,
        "returned after {took:?}: the grandchild did not hold the pipes, the test proves nothing"
    );
    assert!(
        took < PIPE_GRACE + Duration::from_secs(3),
        "returned only after {took:?}"
    );
}

/// A `MakeWriter` for tracing-subscriber that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn secrets_appear_in_no_log_line_and_no_error() {
    const SECRET: &str = "hunter2-s3cret";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let with_secrets = |c: Cmd| {
        c.env("TAPPAAS_TOKEN", format!("env-{SECRET}"))
            .secret_stdin(format!("root:{SECRET}\n"))
    };
    let errors = tracing::subscriber::with_default(subscriber, || {
        let ok = run_command(&with_secrets(sh("cat >/dev/null; echo fine"))).unwrap();
        assert_eq!(ok.stdout_text(), "fine\n");
        vec![
            run_command(&with_secrets(sh(
                "cat >/dev/null; echo refused >&2; exit 4",
            ))),
            run_command(&with_secrets(
                sh("cat >/dev/null; echo waiting >&2; sleep 5").timeout(Duration::from_millis(300)),
            )),
            run_command(&with_secrets(Cmd::new("/nonexistent/chpasswd"))),
        ]
    });
    let logs = logs.text();
    assert!(logs.contains("running"), "nothing was logged: {logs}");
    assert!(
        logs.contains("secret"),
        "the secret stdin is not even named: {logs}"
    );
    assert!(!logs.contains(SECRET), "{logs}");
    for e in errors {
        let e = e.unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
