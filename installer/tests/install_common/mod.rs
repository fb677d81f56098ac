//! Shared by the `install_*` tests: the golden qemu-lab primary plan, a payload directory with
//! a manifest, an install context in a temporary directory, a sink that keeps the events, and
//! the captured ZFS output under `tests/fixtures/zfs/`.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::golden;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tappaas_installer::exec::{CmdError, Output};
use tappaas_installer::install::{InstallContext, Machine};
use tappaas_installer::plan::Plan;
use tappaas_installer::preflight::sha256_file;
use tappaas_installer::probe;
use tappaas_installer::progress::{Event, Sink};
use tappaas_site::Site;

/// The golden site's primary on the qemu-lab machine, ready to install in a temporary dir.
pub struct Lab {
    pub plan: Plan,
    pub site: Site,
    pub src: String,
    pub ctx: InstallContext,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn journal_path(&self) -> PathBuf {
        self.ctx.journal.clone().expect("journal path")
    }
}

/// Writes `dir/manifest.toml` with a root image (and `packages` .deb files) pinned by sha256.
pub fn make_payload(dir: &Path, packages: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = vec![("pve-base", "pve-base.squashfs", "root-squashfs")];
    let names: Vec<String> = (0..packages).map(|i| format!("pkg{i}.deb")).collect();
    for n in &names {
        entries.push(("pkg", n.as_str(), "package"));
    }
    let mut manifest = String::from("format = 1\n");
    for (name, file, kind) in entries {
        let path = dir.join(file);
        std::fs::write(&path, format!("stand-in bytes of {file}")).unwrap();
        manifest.push_str(&format!(
            "\n[[payload]]\nname = \"{name}\"\nfile = \"{file}\"\nkind = \"{kind}\"\n\
             sha256 = \"{}\"\nsize = {}\n",
            sha256_file(&path).unwrap(),
            std::fs::metadata(&path).unwrap().len()
        ));
    }
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
    dir.to_path_buf()
}

pub fn lab(packages: usize) -> Lab {
    let src = golden::golden_site("qemu-lab");
    let (plan, site) = golden::plan_site("qemu-lab", &src, "tappaas1");
    let dir = tempfile::tempdir().unwrap();
    let payload = make_payload(&dir.path().join("payload"), packages);
    let fixture = probe::embedded_fixture("qemu-lab").expect("qemu-lab fixture");
    let inv = probe::probe(&fixture).unwrap();
    let mut ctx = InstallContext::new(payload, Machine::Inventory(Box::new(inv)));
    ctx.target = dir.path().join("target");
    ctx.ids = golden::ids();
    ctx.journal = Some(dir.path().join("run/tappaas/install-journal.json"));
    Lab {
        plan,
        site,
        src,
        ctx,
        dir,
    }
}

/// A sink that keeps every event.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn event(&mut self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    pub fn json(&self) -> String {
        self.events()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect()
    }
}

pub fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/zfs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn stdout(text: impl Into<String>) -> Option<Result<Output, CmdError>> {
    Some(Ok(Output {
        code: 0,
        stdout: text.into().into_bytes(),
        stderr: Vec::new(),
    }))
}

/// What `zpool` prints when a command fails, as the runner reports it.
pub fn failed(command: String, stderr: &str) -> Option<Result<Output, CmdError>> {
    Some(Err(CmdError::Failed {
        command,
        status: "exit code 1".into(),
        code: Some(1),
        stderr: stderr.into(),
    }))
}
