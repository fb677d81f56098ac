//! [`CmdError`]: why a command did not succeed, always with its command line.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

/// How much of stderr an error carries.
pub(crate) const STDERR_TAIL_BYTES: usize = 4096;

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
pub(crate) fn stderr_tail(bytes: &[u8]) -> String {
    if bytes.len() <= STDERR_TAIL_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let cut = &bytes[bytes.len() - STDERR_TAIL_BYTES..];
    let start = cut.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    format!("...\n{}", String::from_utf8_lossy(&cut[start..]))
}

/// `exit code N` or `killed by signal N`.
pub(crate) fn status_text(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
