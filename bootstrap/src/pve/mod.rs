//! The Proxmox VE API client: pinned TLS ([`tls`]), ticket and token authentication, typed
//! calls ([`api`]), task polling ([`wait_task`]) and retries ([`RetryPolicy`]).

pub mod api;
mod client;
mod error;
mod fingerprint;
pub mod tls;

pub use api::*;
pub use client::{ClientOptions, Credentials, PveClient, RetryPolicy};
pub use error::PveError;
pub use fingerprint::{BadFingerprint, Fingerprint};

use std::time::{Duration, Instant};

/// A secret string (password, token, ticket): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How long to wait for a task and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct TaskWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// Ask this often.
    pub poll: Duration,
}

impl Default for TaskWait {
    fn default() -> Self {
        TaskWait {
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(1),
        }
    }
}

/// Polls a task until it stops; `Ok` for `OK` and `WARNINGS: n`, otherwise the exit status
/// and the end of the task log. Transient errors while polling (the join restarts the node's
/// API) are waited out within the same timeout.
pub fn wait_task(api: &dyn PveApi, upid: &Upid, wait: TaskWait) -> Result<(), PveError> {
    let node = upid.node().ok_or_else(|| PveError::Decode {
        method: "POST".into(),
        path: api.url(),
        message: format!("{upid} is not a task id (UPID:<node>:...)"),
    })?;
    let start = Instant::now();
    loop {
        match api.task_status(node, upid) {
            Ok(st) if st.status == "stopped" => {
                let exit = st.exitstatus.unwrap_or_default();
                if exit == "OK" || exit.starts_with("WARNINGS") {
                    return Ok(());
                }
                let mut log = api.task_log(node, upid).unwrap_or_default();
                let keep = log.len().saturating_sub(5);
                log.drain(..keep);
                return Err(PveError::TaskFailed {
                    upid: upid.0.clone(),
                    exitstatus: exit,
                    log,
                });
            }
            Ok(_) => {}
            Err(e) if e.is_transient() => tracing::debug!("polling {upid}: {e}"),
            Err(e) => return Err(e),
        }
        if start.elapsed() >= wait.timeout {
            return Err(PveError::TaskTimeout {
                upid: upid.0.clone(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(wait.poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upid() -> Upid {
        Upid("UPID:tappaas1:00001234:00005678:6743A0B0:clustercreate::root@pam:".into())
    }

    #[test]
    fn upid_names_its_node() {
        assert_eq!(upid().node(), Some("tappaas1"));
        assert_eq!(Upid("nonsense".into()).node(), None);
        assert_eq!(Upid("UPID::x".into()).node(), None);
    }

    #[test]
    fn waits_through_transient_errors_until_ok() {
        let mut api = MockPveApi::new();
        let mut n = 0;
        api.expect_task_status().times(3).returning(move |node, _| {
            assert_eq!(node, "tappaas1");
            n += 1;
            match n {
                1 => Err(PveError::Unreachable {
                    url: "u".into(),
                    message: "connection refused".into(),
                }),
                2 => Ok(TaskStatus {
                    status: "running".into(),
                    exitstatus: None,
                }),
                _ => Ok(TaskStatus {
                    status: "stopped".into(),
                    exitstatus: Some("OK".into()),
                }),
            }
        });
        let wait = TaskWait {
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(1),
        };
        wait_task(&api, &upid(), wait).unwrap();
    }

    #[test]
    fn a_failed_task_carries_its_exit_status_and_log_tail() {
        let mut api = MockPveApi::new();
        api.expect_task_status().returning(|_, _| {
            Ok(TaskStatus {
                status: "stopped".into(),
                exitstatus: Some("cluster config '/etc/pve/corosync.conf' already exists".into()),
            })
        });
        api.expect_task_log()
            .returning(|_, _| Ok((1..=8).map(|i| format!("line {i}")).collect()));
        api.expect_url().returning(|| "https://x:8006".into());
        let err = wait_task(&api, &upid(), TaskWait::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("already exists"), "{msg}");
        assert!(msg.contains("line 8") && !msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn a_task_that_never_ends_times_out() {
        let mut api = MockPveApi::new();
        api.expect_task_status().returning(|_, _| {
            Ok(TaskStatus {
                status: "running".into(),
                exitstatus: None,
            })
        });
        let wait = TaskWait {
            timeout: Duration::from_millis(20),
            poll: Duration::from_millis(5),
        };
        let err = wait_task(&api, &upid(), wait).unwrap_err();
        assert!(matches!(err, PveError::TaskTimeout { .. }), "{err}");
    }

    #[test]
    fn retry_stops_on_permanent_errors_and_backs_off_on_transient_ones() {
        let policy = RetryPolicy {
            attempts: 4,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        assert_eq!(policy.delay(1), Duration::from_millis(1));
        assert_eq!(policy.delay(3), Duration::from_millis(2));
        let mut calls = 0;
        let r: Result<(), _> = policy.run(|| {
            calls += 1;
            Err(PveError::Api {
                method: "POST".into(),
                path: "/x".into(),
                status: 503,
                message: "busy".into(),
                errors: Default::default(),
            })
        });
        assert!(r.is_err());
        assert_eq!(calls, 4);
        let mut calls = 0;
        let r: Result<(), _> = policy.run(|| {
            calls += 1;
            Err(PveError::Api {
                method: "POST".into(),
                path: "/x".into(),
                status: 400,
                message: "bad".into(),
                errors: Default::default(),
            })
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r = policy.run(|| {
            calls += 1;
            if calls < 3 {
                Err(PveError::Unreachable {
                    url: "u".into(),
                    message: "refused".into(),
                })
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Credentials::Password {
            user: "root@pam".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let j = JoinCluster {
            hostname: "10.0.0.10".into(),
            fingerprint: "AA".into(),
            password: "hunter2".into(),
            nodeid: Some(2),
            link0: "address=10.0.0.11".into(),
            force: false,
        };
        assert!(!format!("{j:?}").contains("hunter2"));
    }
}
