//! [`Cmd`]: what to run, and how it shows in logs and errors.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::Duration;

/// Timeout of a [`Cmd`] that does not set its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

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

    /// The environment variables set, values included: for the runner only.
    pub(crate) fn env_pairs(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether exit code `code` counts as success.
    pub(crate) fn accepts(&self, code: i32) -> bool {
        self.ok_codes.contains(&code)
    }

    /// Whether stdin is fed, and if so its length and whether it is secret.
    pub fn stdin_summary(&self) -> Option<(usize, bool)> {
        match &self.stdin {
            None => None,
            Some(Stdin::Plain(b)) => Some((b.len(), false)),
            Some(Stdin::Secret(b)) => Some((b.len(), true)),
        }
    }

    /// The bytes for stdin, secret or not: for the runner only.
    pub(crate) fn stdin_bytes(&self) -> Option<&[u8]> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
