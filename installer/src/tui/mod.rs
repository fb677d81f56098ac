//! The guided installer: a terminal UI over the same path as the site file,
//! answers -> [`Site`](tappaas_site::Site) -> `plan::plan` -> `install::execute`.
//!
//! - [`state`]: the whole state, a plain struct; [`queries`]: read-only questions about it.
//! - [`update`]: `update(state, msg) -> commands`, pure.
//! - [`view`]: `view(state, frame)`, draws only.
//! - [`worker`]: the link watcher and the install, off the UI thread, talking by messages.
//! - [`sitefile`]: answers <-> site-file TOML, the password hash.
//!
//! [`App`] ties them together without a terminal (tests drive it with keys); [`run`] adds the
//! terminal. `docs/tui.md` describes the screens and keys.

pub mod queries;
pub mod sitefile;
pub mod state;
pub mod update;
pub mod view;
pub mod worker;

use crate::frontdoor::{self, RunFiles};
use crate::inventory::Inventory;
use crate::probe::{self, SysRoot};
use crate::profile;
use anyhow::{bail, Context, Result};
use crossterm::event::{self, Event as TermEvent, KeyEvent};
use state::State;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use update::{update, Command, Msg};
use worker::{Target, TargetMachine};

/// How the TUI was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--simulate PROFILE`: that profile's fixture and the dry-run host.
    pub simulate: Option<String>,
    /// `--root DIR`: probe (and watch the links of) this root instead of `/` or the fixture.
    pub root: Option<PathBuf>,
    /// `--ascii`: draw with ASCII only.
    pub ascii: bool,
    /// `--payload DIR`: the payload directory of a real install.
    pub payload: Option<PathBuf>,
    /// Where the install's journal and site copy are kept, so a rerun resumes an interrupted
    /// install: `/run/tappaas` for a real install when `None`; a simulation keeps them only
    /// when given (tests give a temporary directory).
    pub run_dir: Option<PathBuf>,
}

/// Whether to draw with ASCII only: asked for, or a terminal whose font may lack box drawing
/// (the Linux console, serial terminals announced as vt100/vt220, dumb terminals).
pub fn want_ascii(flag: bool, term: Option<&str>) -> bool {
    flag || matches!(term, Some(t) if t == "linux" || t == "dumb" || t.starts_with("vt"))
}

/// The TUI without a terminal: the state, the message channel and the workers.
pub struct App {
    /// The state.
    pub state: State,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    target: Target,
    install: Option<JoinHandle<()>>,
    links_stop: Arc<AtomicBool>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.links_stop.store(true, Ordering::Relaxed);
    }
}

/// The probed machine, its profile, the root to watch links in, and where the install runs.
type Machine = (Inventory, Option<String>, Box<dyn SysRoot + Send>, Target);

fn machine(o: &Options) -> Result<Machine> {
    match (&o.simulate, &o.root) {
        (Some(id), root) => {
            if profile::find(id).is_none() {
                bail!(
                    "no hardware profile named {id:?}; known profiles: {}",
                    profile::ids().join(", ")
                );
            }
            let root: Box<dyn SysRoot + Send> = match root {
                Some(dir) => Box::new(probe::DirRoot::new(dir)),
                None => Box::new(probe::embedded_fixture(id).with_context(|| {
                    format!("profile {id} has no embedded fixture to simulate")
                })?),
            };
            let inv = probe::probe(root.as_ref())
                .with_context(|| format!("probing {}", root.describe()))?;
            let target = Target {
                machine: TargetMachine::Simulated(Box::new(inv.clone())),
                files: o.run_dir.as_deref().map(RunFiles::under),
            };
            Ok((inv, Some(id.clone()), root, target))
        }
        (None, root) => {
            let dir = root.clone().unwrap_or_else(|| PathBuf::from("/"));
            let inv =
                probe::probe_root(&dir).with_context(|| format!("probing {}", dir.display()))?;
            let detected = profile::match_dmi(&inv.dmi).map(|p| p.id.clone());
            let target = Target {
                machine: TargetMachine::Real {
                    root: dir.clone(),
                    payload: o
                        .payload
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("payload")),
                },
                files: Some(
                    o.run_dir
                        .as_deref()
                        .map(RunFiles::under)
                        .unwrap_or_default(),
                ),
            };
            Ok((inv, detected, Box::new(probe::DirRoot::new(dir)), target))
        }
    }
}

impl App {
    /// Probes the machine (or the simulated profile) and starts the link watcher, polling
    /// every `poll`.
    pub fn start(o: &Options, ascii: bool, poll: Duration) -> Result<App> {
        let (inv, profile, root, target) = machine(o)?;
        let mut state = State::new(inv, profile, o.simulate.is_some(), ascii);
        // The embedded fixture has no files to look at; a real root or --root does.
        if o.simulate.is_none() || o.root.is_some() {
            let dir = o.root.clone().unwrap_or_else(|| PathBuf::from("/"));
            state.found_site_files = worker::find_on_sticks(&state.inv, &dir, "toml");
            state.found_keys = worker::find_on_sticks(&state.inv, &dir, "pub");
            if let Some(first) = state.found_site_files.first() {
                state.fields.load_path = state::Input::new(first.clone());
            }
        }
        // An install of this live session that did not finish: offer to resume it.
        if let Some(files) = &target.files {
            match frontdoor::interrupted(files) {
                Ok(Some(found)) => update::offer_resume(&mut state, found),
                Ok(None) => {}
                Err(why) => {
                    state.notice = Some(format!(
                        "An earlier install on this machine cannot be resumed ({why}); this one \
                         starts afresh."
                    ));
                }
            }
        }
        let (tx, rx) = channel();
        let links_stop = Arc::new(AtomicBool::new(false));
        worker::watch_links(root, poll, tx.clone(), links_stop.clone())
            .context("starting the link watcher")?;
        Ok(App {
            state,
            tx,
            rx,
            target,
            install: None,
            links_stop,
        })
    }

    /// Applies one message and carries out the commands it gives, feeding their answers back.
    pub fn handle(&mut self, msg: Msg) {
        let mut queue = vec![msg];
        while let Some(m) = queue.pop() {
            for cmd in update(&mut self.state, m) {
                if let Some(answer) = worker::perform(&cmd) {
                    queue.push(answer);
                } else if let Command::StartInstall { plan, site, src } = cmd {
                    match worker::start_install(
                        *plan,
                        *site,
                        src,
                        self.target.clone(),
                        self.tx.clone(),
                    ) {
                        Ok(h) => self.install = Some(h),
                        Err(e) => queue.push(Msg::InstallEnded(Err(format!(
                            "could not start the install: {e}"
                        )))),
                    }
                }
            }
        }
    }

    /// A key press.
    pub fn key(&mut self, k: KeyEvent) {
        self.handle(Msg::Key(k));
    }

    /// Handles every message the workers have sent so far; whether there was any.
    pub fn pump(&mut self) -> bool {
        let mut any = false;
        while let Ok(m) = self.rx.try_recv() {
            self.handle(m);
            any = true;
        }
        any
    }

    /// Handles worker messages until `done` holds or `timeout` passes; whether it held.
    pub fn pump_until(&mut self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while !done(&self.state) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Ok(m) = self.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                self.handle(m);
            }
        }
        true
    }
}

/// Runs the TUI on the terminal until the user leaves. Exit code 0 after a completed install
/// (or simulation), 1 after a failed one, 130 when the user quit before the end.
pub fn run(o: &Options) -> Result<std::process::ExitCode> {
    let ascii = want_ascii(o.ascii, std::env::var("TERM").ok().as_deref());
    let mut app = App::start(o, ascii, Duration::from_millis(500))?;
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = event_loop(&mut app, &mut terminal);
    ratatui::restore();
    result?;
    Ok(match &app.state.progress.finished {
        Some(crate::progress::Outcome::Failed { .. }) => std::process::ExitCode::from(1),
        Some(_) => std::process::ExitCode::SUCCESS,
        None => std::process::ExitCode::from(130),
    })
}

fn event_loop(app: &mut App, terminal: &mut ratatui::DefaultTerminal) -> Result<()> {
    let mut dirty = true;
    while !app.state.quit {
        if dirty {
            terminal
                .draw(|f| view::view(&app.state, f))
                .context("drawing the screen")?;
            dirty = false;
        }
        if event::poll(Duration::from_millis(100)).context("reading the keyboard")? {
            match event::read().context("reading the keyboard")? {
                TermEvent::Key(k) => app.key(k),
                TermEvent::Resize(..) => app.handle(Msg::Resize),
                _ => continue,
            }
            dirty = true;
        }
        dirty |= app.pump();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::want_ascii;

    #[test]
    fn ascii_on_consoles_whose_fonts_may_lack_box_drawing() {
        assert!(want_ascii(false, Some("linux")));
        assert!(want_ascii(false, Some("vt220")));
        assert!(want_ascii(false, Some("dumb")));
        assert!(want_ascii(true, Some("xterm-256color")));
        assert!(!want_ascii(false, Some("xterm-256color")));
        assert!(!want_ascii(false, Some("tmux-256color")));
        assert!(!want_ascii(false, None));
    }
}
