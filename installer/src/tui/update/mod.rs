//! `update(state, msg) -> commands`: the only place the state changes. Pure: no I/O, no clock,
//! no randomness. Whatever needs the outside world (reading a file, hashing a password with a
//! fresh salt, running the install) is returned as a [`Command`] for the runtime, whose answer
//! comes back as a [`Msg`].

mod answers;
mod machine;
mod resume;

pub use answers::{plan_of, replan};
pub use resume::offer as offer_resume;

use super::sitefile;
use super::state::{
    Input, Modal, Progress, Purpose, Screen, State, StepState, StepView, KEYBOARDS,
};
use crate::inventory::LinkState;
use crate::plan::{self, DiskRoleKind, Plan};
use crate::progress::{Event, Outcome};
use answers::{
    change_node, commit, loaded, network_next, new_node, role_next, site_finished, site_next,
};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use machine::{cycle_disk, on_links, set_nic_role, toggle_wipe};
use tappaas_site::Site;

/// Something that happened: a key, or an answer from the runtime or a worker.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// The terminal changed size (the next frame redraws at the new size).
    Resize,
    /// The link watcher's latest reading, per NIC name.
    Links(Vec<(String, LinkState)>),
    /// One event of the running install.
    Install(Event),
    /// The install thread ended: `Err` carries the error chain.
    InstallEnded(Result<(), String>),
    /// A site file was read: (path, its text or why it could not be read).
    SiteFileRead(String, Result<String, String>),
    /// The site screen's work is done: the password's hash and the SSH key, when asked for.
    SiteFinished {
        /// The crypt hash of the typed password.
        hash: Option<Result<String, String>>,
        /// The key read from the given file.
        key: Option<Result<String, String>>,
        /// The join settings, when asked for.
        join: Option<Result<JoinAnswer, String>>,
    },
    /// The site file was saved (its path) or could not be.
    Saved(Result<String, String>),
    /// The console's keymap was switched (what was done), left alone (`None`), or not.
    KeymapSet(Result<Option<String>, String>),
}

/// The join settings the site screen asks the runtime to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRequest {
    /// A new site: a join secret and the primary's certificate and key (`join-keys`).
    NewSite {
        /// The primary's host name, for the certificate.
        name: String,
        /// The primary's management address, for the certificate.
        address: std::net::Ipv4Addr,
    },
    /// A machine added to (or replacing a node of) a loaded site: a fresh join secret.
    FreshSecret,
}

/// The join settings made. `Debug` shows no secret.
#[derive(Clone)]
pub enum JoinAnswer {
    /// For a new site.
    Keys(crate::joinkeys::JoinKeys),
    /// A fresh join secret.
    Secret(String),
}

impl std::fmt::Debug for JoinAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinAnswer::Keys(k) => f.debug_tuple("Keys").field(k).finish(),
            JoinAnswer::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// Work for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Read a site file; answer with [`Msg::SiteFileRead`].
    ReadSiteFile(String),
    /// Hash `password` and read an SSH key file; answer with [`Msg::SiteFinished`].
    FinishSite {
        /// The typed password, when one was typed.
        password: Option<String>,
        /// The SSH key file, when one was given.
        ssh_key_path: Option<String>,
        /// Join settings to make (they need the OS's random numbers).
        join: Option<JoinRequest>,
    },
    /// Switch the live console's keymap to the chosen layout (`loadkeys`), so the password
    /// is typed in the layout the volunteer sees; answer with [`Msg::KeymapSet`].
    SetConsoleKeymap {
        /// The site file's keyboard name (`de`, `gb`, ...).
        keyboard: String,
        /// `--simulate`: say what would be done, do nothing.
        simulate: bool,
    },
    /// Write the site file (0600); answer with [`Msg::Saved`].
    SaveSiteFile {
        /// Where.
        path: String,
        /// The TOML.
        text: String,
    },
    /// Run the install of `plan` in a worker; its events come back as [`Msg::Install`].
    StartInstall {
        /// The plan the user confirmed.
        plan: Box<Plan>,
        /// The site.
        site: Box<Site>,
        /// The site as site-file text (the install keeps a copy on the node).
        src: String,
    },
    /// Leave the TUI.
    Quit,
}

/// How many rows the current screen has (list items and fields), for moving the focus.
pub fn rows(s: &State) -> usize {
    match s.screen {
        Screen::Welcome => KEYBOARDS.len(),
        Screen::Role => Purpose::ALL.len() + 1,
        Screen::Disks => s.inv.disks.len(),
        Screen::Network => s.physical_nics().len() + 4,
        Screen::Site => 7,
        _ => 1,
    }
}

/// The text field under the focus, if the focus is on one.
fn focused_input(s: &mut State) -> Option<&mut Input> {
    let nics = s.physical_nics().len();
    let f = &mut s.fields;
    match (s.screen, s.focus) {
        (Screen::Role, 4) => Some(&mut f.load_path),
        (Screen::Network, i) => match i.checked_sub(nics) {
            Some(0) => Some(&mut f.hostname),
            Some(1) => Some(&mut f.address),
            Some(2) => Some(&mut f.wan_address),
            Some(3) => Some(&mut f.wan_gateway),
            _ => None,
        },
        (Screen::Site, 0) => Some(&mut f.site_name),
        (Screen::Site, 1) => Some(&mut f.domain),
        (Screen::Site, 2) => Some(&mut f.email),
        (Screen::Site, 3) => Some(&mut f.timezone),
        (Screen::Site, 4) => Some(&mut f.password),
        (Screen::Site, 5) => Some(&mut f.password2),
        (Screen::Site, 6) => Some(&mut f.ssh_key_path),
        (Screen::Confirm, _) => Some(&mut f.confirm),
        _ => None,
    }
}

/// Applies one message to the state and returns the work it asks for.
pub fn update(s: &mut State, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Key(k) => {
            if k.kind == KeyEventKind::Release {
                return Vec::new();
            }
            key(s, k)
        }
        Msg::Resize => Vec::new(),
        Msg::Links(links) => {
            on_links(s, links);
            Vec::new()
        }
        Msg::Install(e) => {
            let steps = s.plan.as_ref().map(|p| p.steps.as_slice()).unwrap_or(&[]);
            on_event(&mut s.progress, e, steps);
            Vec::new()
        }
        Msg::InstallEnded(r) => {
            if s.progress.finished.is_none() {
                s.progress.finished = Some(match r {
                    Ok(()) => Outcome::Done,
                    Err(error) => Outcome::Failed { error },
                });
            }
            if let Err(e) = &r_error(&s.progress) {
                s.progress.log.push(format!("error: {e}"));
            }
            // The progress screen stays, showing every step, until the user presses Enter.
            s.progress
                .log
                .push("The install has ended: press Enter to continue.".into());
            Vec::new()
        }
        Msg::SiteFileRead(path, r) => {
            loaded(s, &path, r);
            Vec::new()
        }
        Msg::SiteFinished { hash, key, join } => {
            site_finished(s, hash, key, join);
            Vec::new()
        }
        Msg::Saved(r) => {
            match r {
                Ok(p) => {
                    let mut notice = format!(
                        "Saved the answers to {p} (readable by root only). Install the next \
                         machine from it with: tappaas-installer install --site {p}"
                    );
                    if s.site.cluster.join_secret.is_some() {
                        notice.push_str(
                            ". It holds the cluster's join secret: keep it safe until every \
                             node has joined",
                        );
                    }
                    if s.added_node || s.purpose == Purpose::Replace {
                        // A replaced primary joins through a surviving node.
                        let primary = match s.this_node() {
                            Some(n) if n.role == tappaas_site::Role::Primary => "a surviving node",
                            _ => s
                                .site
                                .nodes
                                .iter()
                                .find(|n| n.role == tappaas_site::Role::Primary)
                                .map_or("the primary", |n| n.name.as_str()),
                        };
                        notice.push_str(&format!(
                            ". Before this machine first starts, open the join window on \
                             {primary}: tappaas-bootstrap join-window open --site {p}"
                        ));
                    }
                    s.notice = Some(notice);
                    s.errors.clear();
                }
                Err(e) => s.errors = vec![format!("could not save the site file: {e}")],
            }
            Vec::new()
        }
        Msg::KeymapSet(r) => {
            // Not an error: the install goes on, but the volunteer must know which layout
            // the password is typed in.
            s.notice = match r {
                Ok(Some(done)) => Some(format!("Console keyboard: {done}.")),
                Ok(None) => None,
                Err(e) => Some(format!(
                    "The console keyboard could not be switched ({e}): type the password in \
                     the layout the keys show here."
                )),
            };
            Vec::new()
        }
    }
}

fn r_error(p: &Progress) -> Result<(), String> {
    match &p.finished {
        Some(Outcome::Failed { error }) => Err(error.clone()),
        _ => Ok(()),
    }
}

fn on_event(p: &mut Progress, e: Event, planned: &[plan::Step]) {
    match e {
        Event::Started { steps, .. } => {
            // Pending steps show the plan's words; the id only for a step the plan lacks.
            p.steps = steps
                .into_iter()
                .map(|id| StepView {
                    description: planned
                        .iter()
                        .find(|st| st.id == id)
                        .map(|st| st.description.clone())
                        .unwrap_or_else(|| id.clone()),
                    id,
                    state: StepState::Pending,
                    count: None,
                })
                .collect();
        }
        Event::StepStarted {
            step, description, ..
        } => {
            if let Some(v) = p.steps.iter_mut().find(|v| v.id == step) {
                v.state = StepState::Running;
                v.description = description.clone();
            }
            p.log.push(format!("{step}: {description}"));
        }
        Event::StepProgress {
            step, done, total, ..
        } => {
            if let Some(v) = p.steps.iter_mut().find(|v| v.id == step) {
                v.count = Some((done, total));
            }
        }
        Event::Log { level, message, .. } => {
            let tag = match level {
                crate::progress::Level::Info => "",
                crate::progress::Level::Notice => "notice: ",
                crate::progress::Level::Warning => "warning: ",
            };
            p.log.push(format!("{tag}{message}"));
        }
        Event::StepFinished { step, outcome, .. } => {
            if let Outcome::Failed { error } = &outcome {
                p.log.push(format!("{step} failed: {error}"));
            }
            if let Some(v) = p.steps.iter_mut().find(|v| v.id == step) {
                v.state = StepState::Ended(outcome);
            }
        }
        Event::Finished { outcome, .. } => p.finished = Some(outcome),
    }
    // The log pane shows the tail; keep memory flat on a long install.
    const KEEP: usize = 500;
    if p.log.len() > KEEP {
        let cut = p.log.len() - KEEP;
        p.log.drain(..cut);
    }
}

fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
        s.modal = Some(Modal::Quit);
        return Vec::new();
    }
    if let Some(m) = s.modal.clone() {
        return modal_key(s, m, k.code, ctrl);
    }
    if let Some(cmds) = nav_key(s, k.code) {
        return cmds;
    }
    if let Some(input) = focused_input(s) {
        match k.code {
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Char(c) if !ctrl => input.text.push(c),
            _ => {}
        }
        return Vec::new();
    }
    screen_key(s, k.code)
}

/// A key while a question is over the screen.
fn modal_key(s: &mut State, m: Modal, code: KeyCode, ctrl: bool) -> Vec<Command> {
    match (m, code) {
        (Modal::Quit, KeyCode::Char('y') | KeyCode::Char('Y')) => {
            s.quit = true;
            vec![Command::Quit]
        }
        (Modal::Quit, KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc)
        | (Modal::Save, KeyCode::Esc) => {
            s.modal = None;
            Vec::new()
        }
        (Modal::Save, KeyCode::Enter) => {
            s.modal = None;
            let path = s.fields.save_path.text.trim().to_string();
            if path.is_empty() {
                s.errors = vec!["type where to save the site file".into()];
                return Vec::new();
            }
            vec![Command::SaveSiteFile {
                path,
                text: sitefile::to_toml(&s.site),
            }]
        }
        (Modal::Save, KeyCode::Backspace) => {
            s.fields.save_path.text.pop();
            Vec::new()
        }
        (Modal::Save, KeyCode::Char(c)) if !ctrl => {
            s.fields.save_path.text.push(c);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Enter, Esc and the keys that move the focus or scroll; `None` for any other key.
fn nav_key(s: &mut State, code: KeyCode) -> Option<Vec<Command>> {
    match code {
        KeyCode::Enter => return Some(next(s)),
        KeyCode::Esc => back(s),
        KeyCode::Tab | KeyCode::Down => {
            if s.screen == Screen::Summary {
                s.scroll = s.scroll.saturating_add(1).min(summary_lines(s));
            } else {
                s.focus = (s.focus + 1) % rows(s).max(1);
            }
        }
        KeyCode::BackTab | KeyCode::Up => {
            if s.screen == Screen::Summary {
                s.scroll = s.scroll.saturating_sub(1);
            } else {
                let n = rows(s).max(1);
                s.focus = (s.focus + n - 1) % n;
            }
        }
        KeyCode::PageDown if s.screen == Screen::Summary => {
            s.scroll = s.scroll.saturating_add(10).min(summary_lines(s));
        }
        KeyCode::PageUp if s.screen == Screen::Summary => {
            s.scroll = s.scroll.saturating_sub(10);
        }
        _ => return None,
    }
    Some(Vec::new())
}

/// A screen's own keys (not in a text field).
fn screen_key(s: &mut State, code: KeyCode) -> Vec<Command> {
    match (s.screen, code) {
        (Screen::Disks, KeyCode::Char(' ')) => cycle_disk(s),
        (Screen::Disks, KeyCode::Char('w')) => toggle_wipe(s),
        (Screen::Network, KeyCode::Char('w')) => set_nic_role(s, focused_nic(s), true),
        (Screen::Network, KeyCode::Char('l')) => set_nic_role(s, focused_nic(s), false),
        (Screen::Network, KeyCode::Char('f')) => s.follow_wan = !s.follow_wan,
        (Screen::Summary | Screen::Done, KeyCode::Char('s')) => {
            s.modal = Some(Modal::Save);
            s.notice = None;
        }
        (Screen::Role, KeyCode::Char('n')) => new_node(s),
        (Screen::Role, KeyCode::Left) => change_node(s, false),
        (Screen::Role, KeyCode::Right) => change_node(s, true),
        (Screen::Done, KeyCode::Char('q')) => {
            s.quit = true;
            return vec![Command::Quit];
        }
        _ => {}
    }
    Vec::new()
}

/// How far the summary can scroll: the plan's line count (the view stops at the last page).
fn summary_lines(s: &State) -> u16 {
    let n = match &s.plan {
        Ok(p) => plan::render_human(p).lines().count(),
        Err(e) => e.lines().count() + 1,
    };
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn focused_nic(s: &State) -> usize {
    s.physical_nics()
        .get(s.focus)
        .copied()
        .unwrap_or(usize::MAX)
}

fn go(s: &mut State, to: Screen) {
    s.screen = to;
    s.focus = 0;
    s.errors.clear();
    s.scroll = 0;
    if to == Screen::Network {
        // The focus starts on the host name, the field most people change.
        s.focus = s.physical_nics().len();
    }
}

fn back(s: &mut State) {
    s.errors.clear();
    s.notice = None;
    let to = match s.screen {
        Screen::Resume => return resume::start_afresh(s),
        // Resuming: the plan is the interrupted install's, not the answers' to edit.
        Screen::Confirm if s.resume.is_some() => Screen::Resume,
        Screen::Welcome | Screen::Progress | Screen::Done => return,
        Screen::Hardware => Screen::Welcome,
        Screen::Role => Screen::Hardware,
        Screen::Disks => Screen::Role,
        Screen::Network => Screen::Disks,
        Screen::Site => Screen::Network,
        Screen::Summary => Screen::Site,
        Screen::Confirm => Screen::Summary,
    };
    go(s, to);
}

fn next(s: &mut State) -> Vec<Command> {
    s.errors.clear();
    s.notice = None;
    match s.screen {
        Screen::Welcome => {
            let mut cand = s.site.clone();
            cand.site.keyboard = KEYBOARDS
                .get(s.focus)
                .map(|(k, _)| k.to_string())
                .unwrap_or_else(|| "us".into());
            s.keyboard = s.focus;
            if commit(s, &cand) {
                go(s, Screen::Hardware);
                return vec![Command::SetConsoleKeymap {
                    keyboard: s.site.site.keyboard.clone(),
                    simulate: s.simulate,
                }];
            }
        }
        Screen::Hardware => go(s, Screen::Role),
        Screen::Role => return role_next(s),
        Screen::Disks => {
            let no_boot = s
                .disk_roles
                .as_ref()
                .is_some_and(|r| !r.contains(&Some(DiskRoleKind::Boot)));
            if no_boot {
                s.errors = vec![
                    "no disk is the boot disk: press Space on a disk until it says BOOT".into(),
                ];
            } else if let Err(e) = &s.plan {
                s.errors = vec![format!("the disks do not fit yet:\n{e}")];
            } else {
                go(s, Screen::Network);
            }
        }
        Screen::Network => network_next(s),
        Screen::Site => return site_next(s),
        Screen::Summary => match &s.plan {
            Ok(_) => {
                s.fields.confirm.text.clear();
                go(s, Screen::Confirm);
            }
            Err(e) => s.errors = vec![format!("nothing can be installed yet:\n{e}")],
        },
        Screen::Confirm => return confirm_next(s),
        Screen::Resume => resume::resume_next(s),
        Screen::Progress => {
            if s.progress.finished.is_some() {
                go(s, Screen::Done);
            }
        }
        Screen::Done => {
            s.quit = true;
            return vec![Command::Quit];
        }
    }
    Vec::new()
}

fn confirm_next(s: &mut State) -> Vec<Command> {
    let typed = s.fields.confirm.text.trim().to_string();
    let Ok(plan) = s.plan.clone() else {
        go(s, Screen::Summary);
        return Vec::new();
    };
    if typed != plan.node.name {
        s.errors = vec![format!(
            "that is not the host name; type {} exactly to erase the disks and install, or \
             press Esc to go back",
            plan.node.name
        )];
        return Vec::new();
    }
    s.progress = Progress::default();
    go(s, Screen::Progress);
    // A resumed install runs from the site text its journal is about, so the engine
    // recognises it; otherwise from the answers.
    let src = match s.resume.take() {
        Some(r) => r.src,
        None => sitefile::to_toml(&s.site),
    };
    vec![Command::StartInstall {
        src,
        site: Box::new(s.site.clone()),
        plan: Box::new(plan),
    }]
}
