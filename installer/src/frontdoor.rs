//! The front door every front end walks through: the CLI's subcommands and the guided
//! installer load a site file, find which node this machine is, and prepare an install with
//! the same functions, so they cannot drift apart. The front ends keep only what is theirs:
//! clap and printing in `cli`, screens in `tui`.
//!
//! - [`parse_options`] / [`parse_site`]: the one set of site-file parse options.
//! - [`read_machine`]: the probed machine, from `/`, a captured root or a profile's fixture.
//! - [`resolve_node`]: which node of the site this machine is, with its profile's hints.
//! - [`RunFiles`], [`resumable`], [`interrupted`], [`keep_site_copy`]: an install interrupted
//!   in this live session resumes the plan the user consented to, whichever front end runs it.
//! - [`bootstrap_binary`]: the first-boot agent shipped beside this program.

use crate::install::{self, InstallJournal};
use crate::inventory::Inventory;
use crate::plan::{self, Hints, NodeChoice, PlanError, StepKind};
use crate::{probe, profile};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tappaas_site::{Diagnostic, ParseOptions, Site};

/// The site-file parse options of every installer front end: the hardware profiles this
/// build knows, so a misspelt `profile` is an error with a did-you-mean.
pub fn parse_options() -> ParseOptions {
    ParseOptions {
        known_profiles: profile::ids().iter().map(|s| s.to_string()).collect(),
    }
}

/// Parses and validates site-file text with [`parse_options`].
pub fn parse_site(src: &str) -> Result<Site, Vec<Diagnostic>> {
    tappaas_site::parse(src, &parse_options())
}

/// Reads a site file's text.
pub fn read_site(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading site file {}", path.display()))
}

/// The machine: the fixture of hardware profile `profile_id`, else the system under `root`
/// (default `/`).
pub fn read_machine(root: Option<&Path>, profile_id: Option<&str>) -> Result<Inventory> {
    if let Some(id) = profile_id {
        let Some(fixture) = probe::embedded_fixture(id) else {
            bail!(
                "no hardware profile named {id:?}; known profiles: {}",
                profile::ids().join(", ")
            );
        };
        return probe::probe(&fixture)
            .with_context(|| format!("probing the fixture of profile {id}"));
    }
    let root = root.unwrap_or(Path::new("/"));
    probe::probe_root(root).with_context(|| format!("probing {}", root.display()))
}

/// The id of the embedded profile whose DMI rules match this machine.
pub fn detected_profile(inv: &Inventory) -> Option<String> {
    profile::match_dmi(&inv.dmi).map(|p| p.id.clone())
}

/// The hints for node `index` of `site`: the profile the node names, else `detected`.
pub fn node_hints(site: &Site, index: usize, detected: Option<&str>) -> Hints {
    let named = site.nodes.get(index).and_then(|n| n.profile.as_deref());
    profile::hints_for(named.or(detected))
}

/// Which node of the site this machine is (`explicit`, else the one whose identity matches),
/// with the hints of its hardware profile (the one the node names, else the one its DMI
/// matches).
pub fn resolve_node(
    inv: &Inventory,
    site: &Site,
    explicit: Option<&str>,
) -> Result<(NodeChoice, Hints), PlanError> {
    let detected = detected_profile(inv);
    let choice = plan::select_node(inv, site, explicit, detected.as_deref())?;
    let hints = node_hints(site, choice.index, detected.as_deref());
    Ok((choice, hints))
}

/// The first-boot agent beside this program (`tappaas-bootstrap` in the same directory), which
/// the install puts on the node; `None` when it is not there.
pub fn bootstrap_binary() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("tappaas-bootstrap")))
        .filter(|p| p.is_file())
}

/// Where a live session keeps what an interrupted install needs to resume: the engine's
/// journal, and (for the guided installer, whose site file may never have been saved) the
/// site-file text the install ran from. Both are in a tmpfs (`/run`), root only, and gone
/// after a reboot, as the install they describe would be restarted then anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    /// The install journal ([`install::JOURNAL_PATH`]).
    pub journal: PathBuf,
    /// The site-file text of the install the journal is about.
    pub site_copy: PathBuf,
}

/// The site copy's name beside the journal.
pub const SITE_COPY_NAME: &str = "install-site.toml";

impl Default for RunFiles {
    fn default() -> RunFiles {
        RunFiles::under(
            Path::new(install::JOURNAL_PATH)
                .parent()
                .unwrap_or(Path::new("/run/tappaas")),
        )
    }
}

impl RunFiles {
    /// The files in directory `dir` (tests give a temporary one).
    pub fn under(dir: &Path) -> RunFiles {
        let journal_name = Path::new(install::JOURNAL_PATH)
            .file_name()
            .unwrap_or("install-journal.json".as_ref());
        RunFiles {
            journal: dir.join(journal_name),
            site_copy: dir.join(SITE_COPY_NAME),
        }
    }
}

/// The journal at `path` when it is about node `node` of `site_source`: the install then
/// resumes its plan, not a new one made from a probe that sees the partial install on the
/// disks as data. An unreadable journal is ignored with the returned warning.
pub fn resumable(
    path: &Path,
    site_source: &str,
    node: &str,
) -> (Option<InstallJournal>, Option<String>) {
    match InstallJournal::load(path) {
        Ok(j) => (j.filter(|j| j.is_for(site_source, node)), None),
        Err(e) => (None, Some(format!("ignoring the install journal: {e:#}"))),
    }
}

/// An install of this live session that did not finish, found by [`interrupted`].
#[derive(Debug, Clone)]
pub struct Interrupted {
    /// Its journal: the plan the user consented to and the steps that completed.
    pub journal: InstallJournal,
    /// The site it ran from.
    pub site: Site,
    /// The site-file text it ran from (the journal's site hash matches it).
    pub src: String,
}

impl Interrupted {
    /// The completed steps' ids, in order.
    pub fn completed(&self) -> Vec<String> {
        self.journal
            .completed
            .iter()
            .map(|c| c.id.to_string())
            .collect()
    }
}

/// The install the guided installer started in this live session and that did not finish:
/// a journal, the site copy it matches, and not completed. `Ok(None)` when there is none or
/// it completed; `Err` says why what is there cannot be resumed (the caller shows it and
/// starts afresh).
pub fn interrupted(files: &RunFiles) -> Result<Option<Interrupted>, String> {
    let journal = match InstallJournal::load(&files.journal) {
        Ok(Some(j)) => j,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("the install journal cannot be read: {e:#}")),
    };
    if journal.is_complete(&StepKind::Finish.into()) {
        return Ok(None);
    }
    let src = match fs::read_to_string(&files.site_copy) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "an install of node {} was interrupted, but the site it ran from was not kept \
                 ({} is missing)",
                journal.node,
                files.site_copy.display()
            ))
        }
        Err(e) => return Err(format!("reading {}: {e}", files.site_copy.display())),
    };
    if !journal.is_for(&src, &journal.node) {
        return Err(format!(
            "the install journal {} is about another site file than {}",
            files.journal.display(),
            files.site_copy.display()
        ));
    }
    let site = parse_site(&src).map_err(|d| {
        format!(
            "the kept site file {} is no longer valid: {}",
            files.site_copy.display(),
            d.first().map_or("", |d| d.message.as_str())
        )
    })?;
    Ok(Some(Interrupted { journal, site, src }))
}

/// Keeps the site-file text an install runs from beside its journal (0600, in a 0700
/// directory), so a rerun of the guided installer can resume it.
pub fn keep_site_copy(files: &RunFiles, src: &str) -> Result<()> {
    let dir = files.site_copy.parent().unwrap_or(Path::new("/"));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let tmp = files.site_copy.with_extension("toml.new");
    // The name may be left from a cut-off run: start from nothing, never follow a link.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(src.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &files.site_copy)
        .with_context(|| format!("renaming onto {}", files.site_copy.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn profiles_give_their_hints_and_unknown_ones_none() {
        let h = profile::hints_for(Some("qemu-lab"));
        assert_eq!(h.profile.as_deref(), Some("qemu-lab"));
        assert!(h.min_ram_bytes.is_some());
        assert_eq!(profile::hints_for(Some("no-such-box")), Hints::default());
        assert_eq!(profile::hints_for(None), Hints::default());
    }

    #[test]
    fn a_misspelt_profile_is_an_error_with_every_front_end() {
        let src = crate::testutil::LAB_SITE.replace("\"qemu-lab\"", "\"qemu-lap\"");
        let diags = parse_site(&src).unwrap_err();
        assert!(
            diags.iter().any(|d| d.message.contains("qemu-lap")),
            "{diags:?}"
        );
    }

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tappaas-frontdoor-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn an_interrupted_install_is_found_with_its_site_and_a_finished_one_is_not() {
        let dir = tmp("interrupted");
        let files = RunFiles::under(&dir);
        assert!(interrupted(&files).unwrap().is_none(), "nothing there yet");
        let (plan, _, _) = crate::testutil::lab_plan();
        let src = crate::testutil::LAB_SITE;
        let mut j = InstallJournal::new(&plan, src, &crate::system::GeneratedIds::generate());
        j.complete(&StepKind::Preflight.into(), "done", 1, 1);
        j.store(&files.journal).unwrap();
        let e = interrupted(&files).unwrap_err();
        assert!(e.contains("was not kept"), "{e}");

        keep_site_copy(&files, src).unwrap();
        let mode = fs::metadata(&files.site_copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let found = interrupted(&files).unwrap().expect("interrupted");
        assert_eq!(found.journal.node, "tappaas1");
        assert_eq!(found.completed(), ["preflight"]);
        assert_eq!(found.site.nodes[0].name, "tappaas1");

        // Another site's text beside the journal: not resumed, and said why.
        keep_site_copy(&files, &format!("{src}\n# edited\n")).unwrap();
        let e = interrupted(&files).unwrap_err();
        assert!(e.contains("another site file"), "{e}");

        keep_site_copy(&files, src).unwrap();
        j.complete(&StepKind::Finish.into(), "done", 1, 2);
        j.store(&files.journal).unwrap();
        assert!(interrupted(&files).unwrap().is_none(), "a finished install");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cli_resumes_only_a_journal_of_the_same_site_and_node() {
        let dir = tmp("resumable");
        let files = RunFiles::under(&dir);
        let (plan, _, _) = crate::testutil::lab_plan();
        let src = crate::testutil::LAB_SITE;
        let j = InstallJournal::new(&plan, src, &crate::system::GeneratedIds::generate());
        j.store(&files.journal).unwrap();
        assert!(resumable(&files.journal, src, "tappaas1").0.is_some());
        assert!(resumable(&files.journal, src, "tappaas2").0.is_none());
        assert!(resumable(&files.journal, "x = 1", "tappaas1").0.is_none());
        fs::write(&files.journal, "{").unwrap();
        let (j, warning) = resumable(&files.journal, src, "tappaas1");
        assert!(j.is_none());
        assert!(
            warning.is_some_and(|w| w.contains("ignoring the install journal")),
            "an unreadable journal is said"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_planted_link_at_the_temporary_name_is_not_followed() {
        let dir = tmp("link");
        let files = RunFiles::under(&dir);
        fs::create_dir_all(&dir).unwrap();
        let outside = dir.join("outside");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, files.site_copy.with_extension("toml.new")).unwrap();
        keep_site_copy(&files, "x = 1\n").unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&files.site_copy).unwrap(), "x = 1\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
