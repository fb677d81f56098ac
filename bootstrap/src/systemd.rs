//! systemd, over D-Bus (zbus): unit states, start/stop, disabling the agent's own unit; and the
//! `sd_notify` protocol on `$NOTIFY_SOCKET` for readiness, status lines and timeout extensions.

use anyhow::{bail, Context as _};
use std::time::{Duration, Instant};

/// The agent's own unit.
pub const OWN_UNIT: &str = "tappaas-bootstrap.service";

/// What the agent asks of systemd. [`DbusSystemd`] is the real one; tests use the mock.
#[cfg_attr(test, mockall::automock)]
pub trait Systemd {
    /// The unit's `ActiveState` (`active`, `activating`, `failed`, `inactive`, ...).
    fn active_state(&self, unit: &str) -> anyhow::Result<String>;
    /// `StartUnit(unit, "replace")`.
    fn start(&self, unit: &str) -> anyhow::Result<()>;
    /// `StopUnit(unit, "replace")`.
    fn stop(&self, unit: &str) -> anyhow::Result<()>;
    /// `RestartUnit(unit, "replace")`.
    fn restart(&self, unit: &str) -> anyhow::Result<()>;
    /// `Reload()`: re-read unit files (after writing a drop-in).
    fn daemon_reload(&self) -> anyhow::Result<()>;
    /// `DisableUnitFiles([unit], false)`.
    fn disable(&self, unit: &str) -> anyhow::Result<()>;
    /// `EnableUnitFiles([unit], false, true)`.
    fn enable(&self, unit: &str) -> anyhow::Result<()>;
}

/// Tells systemd how the agent is doing. [`SdNotify`] is the real one.
#[cfg_attr(test, mockall::automock)]
pub trait Notify {
    /// Sends `msg` (`READY=1`, `STATUS=...`, `EXTEND_TIMEOUT_USEC=...`).
    fn notify(&self, msg: &str);
}

/// Waits until `unit` is active, at most `timeout`; fails naming the unit and its last state.
/// While waiting, extends the agent's start timeout so systemd does not kill it.
pub fn wait_active(
    sd: &dyn Systemd,
    notify: &dyn Notify,
    unit: &str,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let last = match sd.active_state(unit) {
            Ok(s) if s == "active" => return Ok(()),
            Ok(s) => s,
            Err(e) => format!("unknown ({e:#})"),
        };
        if start.elapsed() >= timeout {
            bail!(
                "{unit} is not active after {}s (it is {last}); see `journalctl -u {unit}`",
                timeout.as_secs()
            );
        }
        notify.notify(&format!(
            "STATUS=waiting for {unit} ({last})\nEXTEND_TIMEOUT_USEC={}",
            (poll.as_micros() as u64).saturating_mul(4).max(30_000_000)
        ));
        std::thread::sleep(poll);
    }
}

/// systemd's manager over the system bus.
pub struct DbusSystemd {
    conn: zbus::blocking::Connection,
}

impl std::fmt::Debug for DbusSystemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbusSystemd")
    }
}

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

impl DbusSystemd {
    /// Connects to the system bus.
    pub fn connect() -> anyhow::Result<DbusSystemd> {
        let conn =
            zbus::blocking::Connection::system().context("connecting to the system D-Bus")?;
        Ok(DbusSystemd { conn })
    }

    /// Connects to the bus at `address` (`unix:path=...`), for tests with a private bus.
    pub fn connect_to(address: &str) -> anyhow::Result<DbusSystemd> {
        let conn = zbus::blocking::connection::Builder::address(address)
            .and_then(|b| b.build())
            .with_context(|| format!("connecting to D-Bus at {address}"))?;
        Ok(DbusSystemd { conn })
    }

    fn manager(&self) -> anyhow::Result<zbus::blocking::Proxy<'_>> {
        zbus::blocking::Proxy::new(&self.conn, DEST, PATH, MANAGER)
            .context("talking to systemd over D-Bus")
    }

    fn job(&self, method: &str, unit: &str) -> anyhow::Result<()> {
        let _job: zbus::zvariant::OwnedObjectPath = self
            .manager()?
            .call(method, &(unit, "replace"))
            .with_context(|| format!("{method} {unit}"))?;
        Ok(())
    }
}

impl Systemd for DbusSystemd {
    fn active_state(&self, unit: &str) -> anyhow::Result<String> {
        // LoadUnit (unlike GetUnit) also answers for units that are not loaded yet.
        let path: zbus::zvariant::OwnedObjectPath = self
            .manager()?
            .call("LoadUnit", &(unit,))
            .with_context(|| format!("loading {unit}"))?;
        let unit_proxy =
            zbus::blocking::Proxy::new(&self.conn, DEST, path, "org.freedesktop.systemd1.Unit")?;
        unit_proxy
            .get_property::<String>("ActiveState")
            .with_context(|| format!("reading the state of {unit}"))
    }
    fn start(&self, unit: &str) -> anyhow::Result<()> {
        self.job("StartUnit", unit)
    }
    fn stop(&self, unit: &str) -> anyhow::Result<()> {
        self.job("StopUnit", unit)
    }
    fn restart(&self, unit: &str) -> anyhow::Result<()> {
        self.job("RestartUnit", unit)
    }
    fn daemon_reload(&self) -> anyhow::Result<()> {
        let () = self
            .manager()?
            .call("Reload", &())
            .context("reloading systemd")?;
        Ok(())
    }
    fn disable(&self, unit: &str) -> anyhow::Result<()> {
        let _changes: Vec<(String, String, String)> = self
            .manager()?
            .call("DisableUnitFiles", &(vec![unit], false))
            .with_context(|| format!("disabling {unit}"))?;
        Ok(())
    }
    fn enable(&self, unit: &str) -> anyhow::Result<()> {
        let _r: (bool, Vec<(String, String, String)>) = self
            .manager()?
            .call("EnableUnitFiles", &(vec![unit], false, true))
            .with_context(|| format!("enabling {unit}"))?;
        Ok(())
    }
}

/// `sd_notify` over the datagram socket systemd names in `$NOTIFY_SOCKET` (a path, or an
/// abstract name starting with `@`). Without it (run by hand) messages are dropped.
#[derive(Debug, Default)]
pub struct SdNotify {
    socket: Option<String>,
}

impl SdNotify {
    /// From `$NOTIFY_SOCKET`.
    pub fn from_env() -> SdNotify {
        SdNotify {
            socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
    /// To a given socket (tests).
    pub fn to_socket(socket: &str) -> SdNotify {
        SdNotify {
            socket: Some(socket.to_string()),
        }
    }

    fn send(&self, msg: &str) -> std::io::Result<()> {
        use std::os::unix::net::UnixDatagram;
        let Some(sock) = &self.socket else {
            return Ok(());
        };
        let d = UnixDatagram::unbound()?;
        if let Some(name) = sock.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            d.send_to_addr(msg.as_bytes(), &addr)?;
        } else {
            d.send_to(msg.as_bytes(), sock)?;
        }
        Ok(())
    }
}

impl Notify for SdNotify {
    fn notify(&self, msg: &str) {
        if let Err(e) = self.send(msg) {
            tracing::warn!("sd_notify: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mockall::predicate::eq;

    #[test]
    fn sends_datagrams_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let n = SdNotify::to_socket(path.to_str().unwrap());
        n.notify("READY=1\nSTATUS=done");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=done");
        // Without a socket nothing happens, and nothing fails.
        SdNotify::default().notify("READY=1");
    }

    #[test]
    fn waits_for_a_unit_and_names_it_when_it_never_comes_up() {
        let mut sd = MockSystemd::new();
        let mut n = 0;
        sd.expect_active_state()
            .with(eq("pve-cluster.service"))
            .returning(move |_| {
                n += 1;
                Ok(if n < 3 { "activating" } else { "active" }.to_string())
            });
        let mut notify = MockNotify::new();
        notify
            .expect_notify()
            .withf(|m| {
                m.contains("waiting for pve-cluster.service") && m.contains("EXTEND_TIMEOUT_USEC=")
            })
            .times(2)
            .return_const(());
        wait_active(
            &sd,
            &notify,
            "pve-cluster.service",
            Duration::from_secs(5),
            Duration::from_millis(1),
        )
        .unwrap();

        let mut sd = MockSystemd::new();
        sd.expect_active_state()
            .returning(|_| Ok("failed".to_string()));
        let mut notify = MockNotify::new();
        notify.expect_notify().return_const(());
        let err = wait_active(
            &sd,
            &notify,
            "pveproxy.service",
            Duration::from_millis(5),
            Duration::from_millis(1),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("pveproxy.service is not active"),
            "{err}"
        );
        assert!(err.to_string().contains("it is failed"), "{err}");
    }
}
