#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]
//! The D-Bus side of the systemd boundary: `DbusSystemd` against a private bus with a stand-in
//! for systemd's manager that has systemd's method signatures (LoadUnit `s`->`o`, StartUnit
//! `ss`->`o`, DisableUnitFiles `asb`->`a(sss)`, ...). A wrong argument type would be refused
//! by the bus, as systemd refuses it. Skipped when `dbus-daemon` is not installed.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tappaas_bootstrap::systemd::{wait_active, DbusSystemd, Notify, Systemd};
use zbus::zvariant::OwnedObjectPath;

type Log = Arc<Mutex<Vec<String>>>;
type States = Arc<Mutex<std::collections::BTreeMap<String, String>>>;

fn unit_path(name: &str) -> String {
    // systemd's escaping of unit names in object paths.
    let mut out = String::from("/org/freedesktop/systemd1/unit/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

struct Manager {
    log: Log,
    states: States,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn load_unit(&self, name: &str) -> OwnedObjectPath {
        self.log.lock().unwrap().push(format!("LoadUnit {name}"));
        OwnedObjectPath::try_from(unit_path(name)).unwrap()
    }
    fn start_unit(&self, name: &str, mode: &str) -> OwnedObjectPath {
        self.log
            .lock()
            .unwrap()
            .push(format!("StartUnit {name} {mode}"));
        self.states
            .lock()
            .unwrap()
            .insert(name.into(), "active".into());
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/1").unwrap()
    }
    fn stop_unit(&self, name: &str, mode: &str) -> OwnedObjectPath {
        self.log
            .lock()
            .unwrap()
            .push(format!("StopUnit {name} {mode}"));
        self.states
            .lock()
            .unwrap()
            .insert(name.into(), "inactive".into());
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/2").unwrap()
    }
    fn restart_unit(&self, name: &str, mode: &str) -> OwnedObjectPath {
        self.log
            .lock()
            .unwrap()
            .push(format!("RestartUnit {name} {mode}"));
        OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/3").unwrap()
    }
    fn reload(&self) {
        self.log.lock().unwrap().push("Reload".into());
    }
    fn disable_unit_files(
        &self,
        files: Vec<String>,
        runtime: bool,
    ) -> Vec<(String, String, String)> {
        self.log
            .lock()
            .unwrap()
            .push(format!("DisableUnitFiles {files:?} {runtime}"));
        vec![(
            "unlink".into(),
            format!("/etc/systemd/system/multi-user.target.wants/{}", files[0]),
            String::new(),
        )]
    }
    fn enable_unit_files(
        &self,
        files: Vec<String>,
        runtime: bool,
        force: bool,
    ) -> (bool, Vec<(String, String, String)>) {
        self.log
            .lock()
            .unwrap()
            .push(format!("EnableUnitFiles {files:?} {runtime} {force}"));
        (false, Vec::new())
    }
}

struct Unit {
    name: String,
    states: States,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    fn active_state(&self) -> String {
        self.states
            .lock()
            .unwrap()
            .get(&self.name)
            .cloned()
            .unwrap_or_else(|| "inactive".into())
    }
}

struct Bus {
    daemon: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn private_bus() -> Option<Bus> {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("bus").display());
    let daemon = Command::new("dbus-daemon")
        .args([
            "--session",
            "--nofork",
            "--nopidfile",
            &format!("--address={address}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if dir.path().join("bus").exists() {
            return Some(Bus {
                daemon,
                address,
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

struct Quiet;
impl Notify for Quiet {
    fn notify(&self, _: &str) {}
}

#[test]
fn drives_systemd_over_dbus_with_its_signatures() {
    let Some(bus) = private_bus() else {
        eprintln!("skipped: dbus-daemon is not available");
        return;
    };
    let log: Log = Arc::default();
    let states: States = Arc::default();
    states
        .lock()
        .unwrap()
        .insert("pve-cluster.service".into(), "active".into());
    let mut builder = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at(
            "/org/freedesktop/systemd1",
            Manager {
                log: log.clone(),
                states: states.clone(),
            },
        )
        .unwrap();
    for unit in [
        "pve-cluster.service",
        "pveproxy.service",
        "tappaas-bootstrap.service",
    ] {
        builder = builder
            .serve_at(
                unit_path(unit),
                Unit {
                    name: unit.into(),
                    states: states.clone(),
                },
            )
            .unwrap();
    }
    let _server = builder.build().unwrap();

    let sd = DbusSystemd::connect_to(&bus.address).unwrap();
    assert_eq!(sd.active_state("pve-cluster.service").unwrap(), "active");
    assert_eq!(sd.active_state("pveproxy.service").unwrap(), "inactive");
    wait_active(
        &sd,
        &Quiet,
        "pve-cluster.service",
        Duration::from_secs(2),
        Duration::from_millis(10),
    )
    .unwrap();
    let err = wait_active(
        &sd,
        &Quiet,
        "pveproxy.service",
        Duration::from_millis(50),
        Duration::from_millis(10),
    )
    .unwrap_err();
    assert!(err.to_string().contains("it is inactive"), "{err}");
    sd.start("pveproxy.service").unwrap();
    assert_eq!(sd.active_state("pveproxy.service").unwrap(), "active");
    sd.stop("pveproxy.service").unwrap();
    sd.restart("pveproxy.service").unwrap();
    sd.daemon_reload().unwrap();
    sd.disable("tappaas-bootstrap.service").unwrap();
    sd.enable("tappaas-bootstrap.service").unwrap();
    let log = log.lock().unwrap().clone();
    for want in [
        "StartUnit pveproxy.service replace",
        "StopUnit pveproxy.service replace",
        "RestartUnit pveproxy.service replace",
        "Reload",
        "DisableUnitFiles [\"tappaas-bootstrap.service\"] false",
        "EnableUnitFiles [\"tappaas-bootstrap.service\"] false true",
    ] {
        assert!(log.iter().any(|l| l == want), "missing {want} in {log:#?}");
    }
}
