//! The one way TAPPaaS runs an external command, shared by the installer and the first-boot
//! agent: an argv vector (never a shell string), a timeout on every call, stdout and stderr
//! captured, and an error that names the full command line, how it ended and the tail of its
//! stderr.
//!
//! The child runs in its own process group so that a timeout kills everything it started
//! (`zpool` and `udevadm` both spawn helpers that would otherwise keep our pipes open), and the
//! output pipes get a short grace period after the child has ended, so a daemon that escaped
//! the group cannot hang the caller. Secrets go on stdin only and appear nowhere: not in logs,
//! not in errors, not in `Debug`.

mod cmd;
mod error;
mod run;

pub use cmd::{Cmd, DEFAULT_TIMEOUT};
pub use error::CmdError;
pub use run::{run_command, run_to_end, Finished, Output, PIPE_GRACE};
