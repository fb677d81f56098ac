//! Work off the UI thread: the link watcher, the install, and the runtime's small jobs (read a
//! file, hash a password). Each answers with a [`Msg`] on the UI's channel.

use super::sitefile;
use super::update::{Command, JoinAnswer, JoinRequest, Msg};
use crate::exec::RealHost;
use crate::frontdoor::{self, RunFiles};
use crate::install::{self, InstallContext, Machine};
use crate::inventory::{Inventory, LinkState};
use crate::plan::Plan;
use crate::probe::SysRoot;
use crate::progress::{Event, Level, Sink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tappaas_site::Site;

/// Where the install runs, and where its journal and site copy are kept (so a rerun of the
/// TUI can resume it; `None` keeps the journal in memory only).
#[derive(Debug, Clone)]
pub struct Target {
    /// The machine.
    pub machine: TargetMachine,
    /// The journal and the site copy.
    pub files: Option<RunFiles>,
}

/// The machine the install runs on.
#[derive(Debug, Clone)]
pub enum TargetMachine {
    /// `--simulate`: the dry-run host, nothing is touched; preflight re-reads this inventory.
    Simulated(Box<Inventory>),
    /// This machine, for real: preflight re-probes `root`, payloads come from `payload`.
    Real {
        /// The probe root (`/`).
        root: PathBuf,
        /// The payload directory (holds `manifest.toml`).
        payload: PathBuf,
    },
}

/// Sends each progress event to the UI.
struct ChannelSink(Sender<Msg>);

impl Sink for ChannelSink {
    fn event(&mut self, e: &Event) {
        // The UI may have quit; the install goes on regardless.
        let _ = self.0.send(Msg::Install(e.clone()));
    }
}

/// Runs the install of `plan` in a thread; events arrive as [`Msg::Install`], the end as
/// [`Msg::InstallEnded`].
pub fn start_install(
    plan: Plan,
    site: Site,
    src: String,
    target: Target,
    tx: Sender<Msg>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("install".into())
        .spawn(move || {
            let mut sink = ChannelSink(tx.clone());
            let journal = target.files.as_ref().map(|f| f.journal.clone());
            if let Some(files) = &target.files {
                if let Err(e) = frontdoor::keep_site_copy(files, &src) {
                    sink.event(&Event::Log {
                        step: None,
                        level: Level::Warning,
                        message: format!(
                            "the site could not be kept for a resume ({e:#}); if this install \
                             is interrupted, it starts afresh"
                        ),
                    });
                }
            }
            let result = match target.machine {
                TargetMachine::Simulated(inv) => {
                    let mut ctx = InstallContext::new("payload", Machine::Inventory(inv));
                    ctx.dry_run = true;
                    ctx.journal = journal;
                    let host = install::dry_run_host(&plan, &ctx);
                    install::execute(&plan, &site, &src, &ctx, &host, &mut sink)
                }
                TargetMachine::Real { root, payload } => {
                    let mut ctx = InstallContext::new(payload, Machine::Root(root));
                    ctx.journal = journal;
                    ctx.bootstrap_binary = frontdoor::bootstrap_binary();
                    let host = RealHost::new().confine_writes_to(&ctx.target);
                    install::execute(&plan, &site, &src, &ctx, &host, &mut sink)
                }
            };
            let _ = tx.send(Msg::InstallEnded(
                result.map(|_| ()).map_err(|e| format!("{e:#}")),
            ));
        })
}

/// Reads every NIC's link state under `root`, sorted by name.
pub fn read_links(root: &dyn SysRoot) -> Vec<(String, LinkState)> {
    crate::probe::probe_links(root)
}

/// Polls the link state under `root` every `every` and sends [`Msg::Links`] when it changes,
/// until `stop` is set. The probe root is `/` on a real machine; a test gives a directory it
/// changes, so "plug the cable in" can be simulated.
pub fn watch_links(
    root: Box<dyn SysRoot + Send>,
    every: Duration,
    tx: Sender<Msg>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("links".into())
        .spawn(move || {
            let mut last = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let now = read_links(root.as_ref());
                if now != last {
                    if tx.send(Msg::Links(now.clone())).is_err() {
                        return;
                    }
                    last = now;
                }
                std::thread::sleep(every);
            }
        })
}

/// Files ending in `.ext` at the top of every file system mounted from a USB stick (or other
/// removable disk, the installer's own stick included), read below the probe root `root`.
/// This is where a volunteer brings a site file or an SSH public key.
pub fn find_on_sticks(inv: &Inventory, root: &Path, ext: &str) -> Vec<String> {
    let mut found = Vec::new();
    let sticks = inv.disks.iter().filter(|d| {
        d.removable || d.boot_medium || d.transport == crate::inventory::Transport::Usb
    });
    for d in sticks {
        let mounts = d
            .mountpoints
            .iter()
            .chain(d.partitions.iter().flat_map(|p| p.mountpoints.iter()));
        for m in mounts {
            let dir = root.join(m.trim_start_matches('/'));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext) && p.is_file())
                .collect();
            names.sort();
            found.extend(names.into_iter().map(|p| p.display().to_string()));
        }
    }
    found.dedup();
    found
}

/// Performs the runtime's small jobs at once and gives the answer; the install is started
/// separately (it runs for minutes).
pub fn perform(cmd: &Command) -> Option<Msg> {
    match cmd {
        Command::ReadSiteFile(path) => Some(Msg::SiteFileRead(
            path.clone(),
            std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}")),
        )),
        Command::FinishSite {
            password,
            ssh_key_path,
            join,
        } => Some(Msg::SiteFinished {
            join: join.as_ref().map(make_join_settings),
            hash: password
                .as_deref()
                .map(|p| sitefile::hash_password(p).map_err(|e| format!("{e:#}"))),
            key: ssh_key_path
                .as_deref()
                .map(|p| sitefile::read_ssh_key(Path::new(p)).map_err(|e| format!("{e:#}"))),
        }),
        Command::SaveSiteFile { path, text } => Some(Msg::Saved(
            sitefile::write_site_file(Path::new(path), text)
                .map(|()| path.clone())
                .map_err(|e| format!("{e:#}")),
        )),
        Command::SetConsoleKeymap { keyboard, simulate } => {
            let on_vt = std::env::var("TERM").is_ok_and(|t| t == "linux");
            Some(Msg::KeymapSet(set_console_keymap(
                keyboard, *simulate, on_vt,
            )))
        }
        Command::StartInstall { .. } | Command::Quit => None,
    }
}

/// A join secret, and for a new site the primary's certificate and key, as `join-keys` makes
/// them.
fn make_join_settings(req: &JoinRequest) -> Result<JoinAnswer, String> {
    match req {
        JoinRequest::NewSite { name, address } => {
            crate::joinkeys::generate(&crate::joinkeys::PrimaryId {
                name: name.clone(),
                address: *address,
            })
            .map(JoinAnswer::Keys)
            .map_err(|e| format!("{e:#}"))
        }
        JoinRequest::FreshSecret => Ok(JoinAnswer::Secret(crate::joinkeys::join_secret())),
    }
}

/// The console (kbd) keymap for a site file's keyboard name.
pub fn console_keymap(keyboard: &str) -> &str {
    match keyboard {
        "gb" => "uk",
        "se" => "se-latin1",
        "ch" => "de_CH-latin1",
        "pt" => "pt-latin1",
        other => other,
    }
}

/// `loadkeys MAP` on the Linux console (`on_vt`); elsewhere the terminal's own layout applies
/// (a serial console or SSH client), so nothing is done. Under `--simulate` only says it.
fn set_console_keymap(
    keyboard: &str,
    simulate: bool,
    on_vt: bool,
) -> Result<Option<String>, String> {
    let map = console_keymap(keyboard);
    if simulate {
        return Ok(Some(format!(
            "simulated, would run `loadkeys {map}` on the console"
        )));
    }
    if !on_vt {
        return Ok(None);
    }
    let cmd = crate::exec::Cmd::new("loadkeys")
        .arg(map)
        .timeout(std::time::Duration::from_secs(10));
    crate::exec::run_command(&cmd)
        .map(|_| Some(format!("{map} (loadkeys {map})")))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_keymaps_are_kbd_names() {
        assert_eq!(console_keymap("de"), "de");
        assert_eq!(console_keymap("gb"), "uk");
        assert_eq!(console_keymap("ch"), "de_CH-latin1");
        assert_eq!(console_keymap("se"), "se-latin1");
    }

    #[test]
    fn the_keymap_is_switched_only_on_the_linux_console() {
        // A serial console or SSH: the remote terminal's layout applies, nothing is run.
        assert_eq!(set_console_keymap("dk", false, false), Ok(None));
        let said = set_console_keymap("dk", true, true).unwrap().unwrap();
        assert!(
            said.contains("loadkeys dk") && said.contains("simulated"),
            "{said}"
        );
    }
}
