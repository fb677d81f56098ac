//! Errors of the Proxmox API client. Each carries what Proxmox itself said, and says whether
//! trying again can help.

use super::Fingerprint;
use std::collections::BTreeMap;
use std::time::Duration;

/// What went wrong talking to a Proxmox API.
#[derive(Debug, thiserror::Error)]
pub enum PveError {
    /// No connection (refused, unreachable, reset, timed out): the node is down or restarting.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The API base URL.
        url: String,
        /// The transport error, with its causes.
        message: String,
    },
    /// The peer presented another certificate than the pinned one: never retried.
    #[error("{url} presented certificate {got}, but {expected} is pinned: wrong host, a reinstalled node, or someone in between")]
    FingerprintMismatch {
        /// The API base URL.
        url: String,
        /// The pinned fingerprint.
        expected: Fingerprint,
        /// What the server presented.
        got: Fingerprint,
    },
    /// Log-in refused.
    #[error("{url} refused the log-in of {user}: {message}")]
    Login {
        /// The API base URL.
        url: String,
        /// The user (never the password).
        user: String,
        /// Proxmox's message.
        message: String,
    },
    /// Proxmox answered with an error status.
    #[error("{method} {path} failed with {status}: {message}{}", fmt_param_errors(.errors))]
    Api {
        /// HTTP method.
        method: String,
        /// API path (below `/api2/json`).
        path: String,
        /// HTTP status.
        status: u16,
        /// Proxmox's message (the status line's reason or the body's `message`).
        message: String,
        /// Per-parameter errors from the schema check.
        errors: BTreeMap<String, String>,
    },
    /// A response that does not have the documented shape.
    #[error("{method} {path}: unexpected response: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// What did not fit.
        message: String,
    },
    /// A task ended with another exit status than `OK`.
    #[error("task {upid} failed: {exitstatus}{}", fmt_log(.log))]
    TaskFailed {
        /// The task.
        upid: String,
        /// Proxmox's exit status (the error message).
        exitstatus: String,
        /// The last lines of the task log.
        log: Vec<String>,
    },
    /// A task did not end in time.
    #[error("task {upid} still running after {waited:?}")]
    TaskTimeout {
        /// The task.
        upid: String,
        /// How long we waited.
        waited: Duration,
    },
}

fn fmt_param_errors(errors: &BTreeMap<String, String>) -> String {
    errors
        .iter()
        .map(|(k, v)| format!("; {k}: {}", v.trim()))
        .collect()
}

fn fmt_log(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (log: {})", log.join(" | "))
    }
}

impl PveError {
    /// Whether the same request may succeed later: the node is unreachable or restarting
    /// (pveproxy answers 502/503/504 or its own 595/596 while a backend restarts).
    pub fn is_transient(&self) -> bool {
        match self {
            PveError::Unreachable { .. } => true,
            PveError::Api { status, .. } => matches!(status, 502 | 503 | 504 | 595 | 596),
            _ => false,
        }
    }
}
