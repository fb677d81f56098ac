//! The install's file effects for real, in a temporary directory: a small root squashfs (made
//! with `mksquashfs`) extracted by the real host, the configuration applied over it, the
//! image's SSH host keys removed, our agent installed, the provenance file and the install log
//! written. Commands and disks go to the dry-run host (recorded, not run), so nothing outside
//! the temporary directory is touched.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod golden;
mod install_common;

use install_common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tappaas_installer::exec::{
    Cmd, CmdError, DiskIo, DryRunHost, ExtractProgress, Host, HostError, Output, PartitionNode,
    RealHost,
};
use tappaas_installer::install::{self, SimulatedZfs};
use tappaas_installer::rootfs::ExtractReport;
use tappaas_installer::system::hostid_bytes;

/// File effects on the real file system, but only below `root`; the rest to the dry run.
struct Hybrid {
    root: PathBuf,
    real: RealHost,
    fake: DryRunHost,
}

impl Hybrid {
    fn inside(&self, p: &Path) {
        assert!(
            p.starts_with(&self.root),
            "{} is outside the test directory",
            p.display()
        );
    }
}

impl Host for Hybrid {
    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        self.fake.run(cmd)
    }
    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), HostError> {
        self.inside(path);
        self.real.write_file(path, contents, mode)
    }
    fn open_disk(&self, path: &Path) -> Result<Box<dyn DiskIo>, HostError> {
        self.fake.open_disk(path)
    }
    fn reread_partitions(&self, disk: &Path) -> Result<(), HostError> {
        self.fake.reread_partitions(disk)
    }
    fn wait_for_partitions(&self, n: &[PartitionNode], t: Duration) -> Result<(), HostError> {
        self.fake.wait_for_partitions(n, t)
    }
    fn create_dir(&self, path: &Path, mode: u32) -> Result<(), HostError> {
        self.inside(path);
        self.real.create_dir(path, mode)
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), HostError> {
        self.inside(link);
        self.real.symlink(target, link)
    }
    fn remove_file(&self, path: &Path) -> Result<(), HostError> {
        self.inside(path);
        self.real.remove_file(path)
    }
    fn path_exists(&self, path: &Path) -> bool {
        self.fake.path_exists(path) || self.real.path_exists(path)
    }
    fn find_program(&self, name: &str) -> Option<PathBuf> {
        self.fake.find_program(name)
    }
    fn extract_image(
        &self,
        image: &Path,
        dest: &Path,
        progress: &mut dyn ExtractProgress,
    ) -> Result<ExtractReport, HostError> {
        self.inside(dest);
        self.real.extract_image(image, dest, progress)
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A small stand-in root: a Debian-like tree with dpkg, chpasswd and ssh-keygen (empty
/// programs), an old hostname and SSH host keys that must not survive.
fn stand_in_image(dir: &Path) -> Option<PathBuf> {
    if Command::new("mksquashfs").arg("-version").output().is_err() {
        println!("SKIPPED: mksquashfs is not installed (apt-get install squashfs-tools)");
        return None;
    }
    let src = dir.join("standin");
    for d in [
        "etc/ssh", "usr/bin", "usr/sbin", "var/log", "var/lib", "proc", "sys", "dev", "run", "root",
    ] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    for (f, body, m) in [
        ("etc/hostname", "standin\n", 0o644),
        ("etc/ssh/ssh_host_ed25519_key", "old private key\n", 0o600),
        (
            "etc/ssh/ssh_host_ed25519_key.pub",
            "old public key\n",
            0o644,
        ),
        (
            "etc/ssh/sshd_config",
            "PermitRootLogin prohibit-password\n",
            0o644,
        ),
        ("usr/bin/dpkg", "#!/bin/sh\n", 0o755),
        ("usr/sbin/chpasswd", "#!/bin/sh\n", 0o755),
        ("usr/bin/ssh-keygen", "#!/bin/sh\n", 0o755),
    ] {
        fs::write(src.join(f), body).unwrap();
        fs::set_permissions(src.join(f), fs::Permissions::from_mode(m)).unwrap();
    }
    let me = fs::metadata(dir).unwrap();
    let img = dir.join("standin.squashfs");
    let o = Command::new("mksquashfs")
        .arg(&src)
        .arg(&img)
        .args([
            "-noappend",
            "-quiet",
            "-no-progress",
            "-no-xattrs",
            "-force-uid",
        ])
        .arg(me.uid().to_string())
        .arg("-force-gid")
        .arg(me.gid().to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(img)
}

#[test]
fn the_root_is_extracted_and_configured_for_real() {
    let mut lab = lab(1);
    let Some(img) = stand_in_image(lab.dir.path()) else {
        return;
    };
    // The payload's root image is the stand-in, pinned like any payload.
    let payload = lab.ctx.payload.clone();
    fs::copy(&img, payload.join("pve-base.squashfs")).unwrap();
    let manifest = fs::read_to_string(payload.join("manifest.toml")).unwrap();
    let old = manifest.split("sha256 = \"").nth(1).unwrap()[..64].to_string();
    let old_size = manifest
        .split("size = ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let sha =
        tappaas_installer::preflight::sha256_file(&payload.join("pve-base.squashfs")).unwrap();
    let size = fs::metadata(payload.join("pve-base.squashfs"))
        .unwrap()
        .len();
    let manifest = manifest.replacen(&old, &sha, 1).replacen(
        &format!("size = {old_size}\n"),
        &format!("size = {size}\n"),
        1,
    );
    fs::write(payload.join("manifest.toml"), manifest).unwrap();
    let agent = lab.dir.path().join("tappaas-bootstrap");
    fs::write(&agent, b"\x7fELF stand-in agent").unwrap();
    lab.ctx.bootstrap_binary = Some(agent);

    let t = lab.ctx.target.clone();
    let sim = SimulatedZfs::new(&lab.plan, &t);
    let host = Hybrid {
        root: lab.dir.path().to_path_buf(),
        real: RealHost::new(),
        fake: DryRunHost::for_plan(&lab.plan).respond_with(move |c| sim.answer(c)),
    };
    let mut sink = Collect::default();
    let report = install::execute(&lab.plan, &lab.site, &lab.src, &lab.ctx, &host, &mut sink)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", host.fake.render()));

    // Configuration over the image, with the rendered modes.
    assert_eq!(
        fs::read_to_string(t.join("etc/hostname")).unwrap(),
        "tappaas1\n"
    );
    assert_eq!(mode(&t.join("etc/hostname")), 0o644);
    assert_eq!(mode(&t.join("root/.ssh")), 0o700);
    assert_eq!(mode(&t.join("root/.ssh/authorized_keys")), 0o600);
    assert_eq!(
        fs::read(t.join("etc/hostid")).unwrap(),
        hostid_bytes(0x00c0_ffee)
    );
    assert!(fs::read_link(t.join("etc/localtime"))
        .unwrap()
        .starts_with("/usr/share/zoneinfo/"));
    assert_eq!(
        fs::read_to_string(t.join("etc/tappaas/site.toml")).unwrap(),
        lab.src
    );
    assert_eq!(mode(&t.join("etc/tappaas/site.toml")), 0o600);
    assert_eq!(mode(&t.join("var/lib/tappaas")), 0o700);
    // The image's host keys are gone, its other files stay.
    assert!(!t.join("etc/ssh/ssh_host_ed25519_key").exists());
    assert!(!t.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
    assert!(t.join("etc/ssh/sshd_config").exists());
    // The packages ran with service starts blocked, and the block is gone.
    let effects = host.fake.render();
    assert!(
        effects.contains("/usr/bin/dpkg --force-confold --configure -a"),
        "{effects}"
    );
    assert!(!t.join("usr/sbin/policy-rc.d").exists());
    // Our agent.
    assert_eq!(
        fs::read(t.join("usr/bin/tappaas-bootstrap")).unwrap(),
        b"\x7fELF stand-in agent"
    );
    assert_eq!(mode(&t.join("usr/bin/tappaas-bootstrap")), 0o755);

    // Provenance.
    let p: serde_json::Value =
        serde_json::from_slice(&fs::read(t.join("var/lib/tappaas/provenance.json")).unwrap())
            .unwrap();
    assert_eq!(p["format"], 1);
    assert_eq!(p["installer"]["name"], "tappaas-installer");
    assert_eq!(p["node"], "tappaas1");
    assert_eq!(p["hostid"], "00c0ffee");
    assert_eq!(p["installed-at"], "2026-01-01T00:00:00Z");
    assert_eq!(
        p["plan-sha256"],
        install::journal::plan_sha256(&lab.plan).as_str()
    );
    assert_eq!(p["payload"][0]["kind"], "root-squashfs");
    assert_eq!(p["payload"][0]["sha256"], sha.as_str());
    let steps: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let planned: Vec<&str> = lab.plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(steps, planned);
    assert!(p["notices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("no proxmox-boot-tool")));
    assert_eq!(p["notices"].as_array().unwrap().len(), report.notices.len());

    // The install log: the JSON lines up to the finish step, no secret.
    let log = fs::read_to_string(t.join("var/log/tappaas-install.log")).unwrap();
    assert_eq!(mode(&t.join("var/log/tappaas-install.log")), 0o640);
    assert!(!log.contains(golden::HASH));
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "started");
    assert!(
        log.contains(r#""event":"step-progress","step":"root""#),
        "extraction progress"
    );
    let finish = format!(r#""step":"finish","index":{}"#, lab.plan.steps.len());
    assert!(log.contains(&finish), "{log}");
}
