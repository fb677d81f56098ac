//! `update(state, msg) -> commands`: the only place the state changes. Pure: no I/O, no clock,
//! no randomness. Whatever needs the outside world (reading a file, hashing a password with a
//! fresh salt, running the install) is returned as a [`Command`] for the runtime, whose answer
//! comes back as a [`Msg`].

use super::sitefile;
use super::state::{
    Fields, Input, Modal, Progress, Purpose, Screen, State, StepState, StepView, KEYBOARDS,
};
use crate::inventory::{Inventory, LinkState};
use crate::plan::{self, DiskRoleKind, Hints, Plan};
use crate::progress::{Event, Outcome};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use tappaas_site::{DiskRole, DiskSelector, Layout, NicSelector, Role, Site};

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
    },
    /// The site file was saved (its path) or could not be.
    Saved(Result<String, String>),
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

impl State {
    /// The state at start: the probed machine, a new site on its profile.
    pub fn new(inv: Inventory, profile: Option<String>, simulate: bool, ascii: bool) -> State {
        let hints = crate::cli::hints_for(profile.as_deref());
        let links = inv.nics.iter().map(|n| (n.name.clone(), n.link)).collect();
        // The template is ours and always valid; a failure would be a bug the unit tests catch,
        // and the fallback still lets the user load a site file.
        let site = sitefile::parse(&sitefile::new_site_toml(profile.as_deref()), "new site")
            .or_else(|_| sitefile::parse(&sitefile::new_site_toml(None), "new site"));
        let mut s = State {
            screen: Screen::Welcome,
            inv,
            profile,
            hints,
            links,
            follow_wan: true,
            site: site.unwrap_or_else(|_| empty_site()),
            node: 0,
            purpose: Purpose::NewSite,
            disk_roles: None,
            loaded_from: None,
            password_set: false,
            fields: Fields::default(),
            focus: 0,
            keyboard: 0,
            plan: Err(String::new()),
            scroll: 0,
            errors: Vec::new(),
            notice: None,
            modal: None,
            progress: Progress::default(),
            ascii,
            simulate,
            quit: false,
        };
        s.fields.save_path = Input::new("tappaas-site.toml");
        fill_fields(&mut s);
        // A new site asks for these: the template's placeholders are not answers.
        s.fields.domain.text.clear();
        s.fields.email.text.clear();
        replan(&mut s);
        s
    }

    /// The node this machine becomes.
    pub fn this_node(&self) -> Option<&tappaas_site::Node> {
        self.site.nodes.get(self.node)
    }

    /// Whether the install is running.
    pub fn installing(&self) -> bool {
        self.screen == Screen::Progress && self.progress.finished.is_none()
    }
}

/// A site that cannot be planned, for the impossible case that our own template fails to
/// parse: the user can still load a site file.
fn empty_site() -> Site {
    Site {
        version: 1,
        site: tappaas_site::SiteInfo {
            name: String::new(),
            domain: String::new(),
            internal_domain: String::new(),
            admin_email: String::new(),
            timezone: "UTC".into(),
            keyboard: "us".into(),
            country: "us".into(),
        },
        credentials: tappaas_site::Credentials {
            root_password_hash: String::new(),
            ssh_keys: Vec::new(),
        },
        network: tappaas_site::Network {
            management: tappaas_site::Ipv4Net {
                addr: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 24,
            },
            firewall: Ipv4Addr::new(10, 0, 0, 1),
            dns: Vec::new(),
            lan_bridge: "lan".into(),
            wan_bridge: "wan".into(),
            upstream: tappaas_site::Upstream::Dhcp,
        },
        cluster: tappaas_site::Cluster {
            name: "TAPPaaS".into(),
        },
        storage: tappaas_site::Storage {
            rpool: pool("rpool"),
            tank1: pool("tank1"),
            tank2: pool("tank2"),
        },
        nodes: Vec::new(),
    }
}

fn pool(name: &str) -> tappaas_site::PoolSettings {
    tappaas_site::PoolSettings {
        name: name.into(),
        ashift: 12,
        compression: "lz4".into(),
        atime: false,
        xattr: "sa".into(),
        autotrim: true,
        compatibility: "openzfs-2.1-linux".into(),
    }
}

/// Copies the site's values into the text fields (after start and after loading a file).
fn fill_fields(s: &mut State) {
    let f = &mut s.fields;
    let site = &s.site;
    f.site_name = Input::new(&site.site.name);
    f.domain = Input::new(&site.site.domain);
    f.email = Input::new(&site.site.admin_email);
    f.timezone = Input::new(&site.site.timezone);
    f.password = Input::secret();
    f.password2 = Input::secret();
    if let Some(n) = site.nodes.get(s.node) {
        f.hostname = Input::new(&n.name);
        f.address = Input::new(n.address.to_string());
    }
    s.keyboard = KEYBOARDS
        .iter()
        .position(|(k, _)| *k == site.site.keyboard)
        .unwrap_or(0);
    s.password_set = site.credentials.root_password_hash != sitefile::PLACEHOLDER_HASH;
    s.purpose = match site.nodes.get(s.node) {
        Some(n) if n.replace => Purpose::Replace,
        Some(n) if n.role == Role::Member => Purpose::Join,
        Some(n) if n.role == Role::Backup => Purpose::Backup,
        _ => Purpose::NewSite,
    };
}

/// Re-plans the current answers: the same `plan::plan` the `plan` command runs.
pub fn replan(s: &mut State) {
    s.plan = plan_of(&s.inv, &s.site, s.node, s.profile.as_deref());
}

/// The hints for the site's node `node` (its own profile, else the machine's).
fn hints_of(site: &Site, node: usize, detected: Option<&str>) -> Hints {
    let p = site
        .nodes
        .get(node)
        .and_then(|n| n.profile.as_deref())
        .or(detected);
    crate::cli::hints_for(p)
}

/// Plans node `node` of `site` on `inv`, as `tappaas-installer plan --node NAME` does.
pub fn plan_of(
    inv: &Inventory,
    site: &Site,
    node: usize,
    detected: Option<&str>,
) -> Result<Plan, String> {
    let name = site
        .nodes
        .get(node)
        .map(|n| n.name.clone())
        .ok_or_else(|| "the site has no node for this machine".to_string())?;
    let choice = plan::select_node(inv, site, Some(&name), detected).map_err(|e| human(&e))?;
    let hints = hints_of(site, node, detected);
    plan::plan(inv, site, &choice, &hints).map_err(|e| human(&e))
}

/// The planner's problems for the screen: what is wrong and what to do, without the site-file
/// positions the command line shows (the TUI user never saw the file).
fn human(e: &plan::PlanError) -> String {
    let mut out = Vec::new();
    for p in &e.problems {
        out.push(format!("- {}", p.message));
        if let Some(h) = &p.hint {
            out.push(format!("  ({h})"));
        }
    }
    out.join("\n")
}

/// Rebuilds `candidate` through the site-file parser (so the answers are checked by the
/// same rules as a site file) and, when valid, takes it as the answers and re-plans.
fn commit(s: &mut State, candidate: &Site) -> bool {
    let text = sitefile::to_toml(candidate);
    match tappaas_site::parse(&text, &sitefile::parse_options()) {
        Ok(site) => {
            s.site = site;
            replan(s);
            true
        }
        Err(diags) => {
            s.errors = diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| match &d.hint {
                    Some(h) => format!("{}: {} ({h})", d.path, d.message),
                    None => format!("{}: {}", d.path, d.message),
                })
                .collect();
            false
        }
    }
}

/// How many rows the current screen has (list items and fields), for moving the focus.
pub fn rows(s: &State) -> usize {
    match s.screen {
        Screen::Welcome => KEYBOARDS.len(),
        Screen::Role => Purpose::ALL.len() + 1,
        Screen::Disks => s.inv.disks.len(),
        Screen::Network => physical_nics(&s.inv).len() + 2,
        Screen::Site => 7,
        _ => 1,
    }
}

/// Indices of the physical NICs in the inventory.
pub fn physical_nics(inv: &Inventory) -> Vec<usize> {
    (0..inv.nics.len())
        .filter(|&i| inv.nics[i].physical)
        .collect()
}

/// The text field under the focus, if the focus is on one.
fn focused_input(s: &mut State) -> Option<&mut Input> {
    let f = &mut s.fields;
    match (s.screen, s.focus) {
        (Screen::Role, 4) => Some(&mut f.load_path),
        (Screen::Network, i) => {
            let n = physical_nics(&s.inv).len();
            match i.checked_sub(n) {
                Some(0) => Some(&mut f.hostname),
                Some(1) => Some(&mut f.address),
                _ => None,
            }
        }
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
            on_event(&mut s.progress, e);
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
        Msg::SiteFinished { hash, key } => {
            site_finished(s, hash, key);
            Vec::new()
        }
        Msg::Saved(r) => {
            match r {
                Ok(p) => {
                    s.notice = Some(format!(
                        "Saved the answers to {p} (readable by root only). Install the next \
                         machine from it with: tappaas-installer install --site {p}"
                    ));
                    s.errors.clear();
                }
                Err(e) => s.errors = vec![format!("could not save the site file: {e}")],
            }
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

fn on_event(p: &mut Progress, e: Event) {
    match e {
        Event::Started { steps, .. } => {
            p.steps = steps
                .into_iter()
                .map(|id| StepView {
                    description: id.clone(),
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

/// Which NIC (index into `inv.nics`) a selector picks, with the profile's port labels.
pub fn resolve_nic(sel: &NicSelector, hints: &Hints, inv: &Inventory) -> Option<usize> {
    let norm = |m: &str| m.to_ascii_lowercase();
    match sel {
        NicSelector::Name(n) => inv.nics.iter().position(|x| &x.name == n),
        NicSelector::Mac(m) => {
            let m = m.to_string();
            inv.nics.iter().position(|x| {
                x.permanent_mac.as_deref().map(norm) == Some(m.clone()) || norm(&x.mac) == m
            })
        }
        NicSelector::Pci(p) => inv.nics.iter().position(|x| x.pci.as_deref() == Some(p)),
        NicSelector::Port(label) => {
            let (_, inner) = hints.ports.iter().find(|(l, _)| l == label)?;
            match inner {
                NicSelector::Port(_) => None,
                other => resolve_nic(other, hints, inv),
            }
        }
    }
}

/// The NIC (index into `inv.nics`) the node uses as WAN and as LAN: its own selectors, else
/// the profile's default ports.
pub fn nic_roles(s: &State) -> (Option<usize>, Option<usize>) {
    let hints = hints_of(&s.site, s.node, s.profile.as_deref());
    let Some(node) = s.this_node() else {
        return (None, None);
    };
    let pick = |own: &Option<NicSelector>, default: &Option<String>| {
        own.clone()
            .or_else(|| default.clone().map(NicSelector::Port))
            .and_then(|sel| resolve_nic(&sel, &hints, &s.inv))
    };
    (
        pick(&node.nics.wan, &hints.wan_port),
        pick(&node.nics.lan, &hints.lan_port),
    )
}

/// The selector the site gets for NIC `i`: the profile's port label when it has one (stable
/// across machines of the model, so the site file suits the next node), else its name.
fn selector_for(s: &State, i: usize) -> Option<NicSelector> {
    let hints = hints_of(&s.site, s.node, s.profile.as_deref());
    let nic = s.inv.nics.get(i)?;
    let label = hints.ports.iter().find(|(_, sel)| {
        !matches!(sel, NicSelector::Port(_)) && resolve_nic(sel, &hints, &s.inv) == Some(i)
    });
    Some(match label {
        Some((l, _)) => NicSelector::Port(l.clone()),
        None => NicSelector::Name(nic.name.clone()),
    })
}

/// Makes NIC `i` the WAN (`wan = true`) or LAN port; the other role moves off it.
fn set_nic_role(s: &mut State, i: usize, wan: bool) {
    let (cur_wan, cur_lan) = nic_roles(s);
    let Some(sel) = selector_for(s, i) else {
        return;
    };
    let mut cand = s.site.clone();
    let Some(node) = cand.nodes.get_mut(s.node) else {
        return;
    };
    let (other_cur, mine_cur) = if wan {
        (cur_lan, cur_wan)
    } else {
        (cur_wan, cur_lan)
    };
    // Taking the other role's port: swap, so the two roles never share one port.
    let other_sel = if other_cur == Some(i) {
        mine_cur.and_then(|j| selector_for(s, j))
    } else {
        other_cur.and_then(|j| selector_for(s, j))
    };
    if wan {
        node.nics.wan = Some(sel);
        node.nics.lan = other_sel;
    } else {
        node.nics.lan = Some(sel);
        node.nics.wan = other_sel;
    }
    s.errors.clear();
    commit(s, &cand);
}

fn on_links(s: &mut State, links: Vec<(String, LinkState)>) {
    let mut came_up = Vec::new();
    for (name, state) in links {
        let before = s.links.insert(name.clone(), state);
        if state == LinkState::Up && before.is_some_and(|b| b != LinkState::Up) {
            came_up.push(name);
        }
    }
    if s.screen != Screen::Network || !s.follow_wan {
        return;
    }
    if let Some(name) = came_up.first() {
        if let Some(i) = s.inv.nics.iter().position(|n| &n.name == name) {
            set_nic_role(s, i, true);
            s.notice = Some(format!(
                "A cable was plugged into {name}: it is now the WAN port (to your internet \
                 router)."
            ));
        }
    }
}

/// Each disk's role (by index into `inv.disks`) in the current answers.
pub fn disk_roles(s: &State) -> Vec<Option<DiskRoleKind>> {
    if let Some(r) = &s.disk_roles {
        return r.clone();
    }
    let from_plan: BTreeMap<String, DiskRoleKind> = match &s.plan {
        Ok(p) => p
            .disks
            .iter()
            .map(|d| (d.disk.by_id.clone(), d.role))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let node = s.this_node();
    s.inv
        .disks
        .iter()
        .map(|d| {
            if let Some(r) = d
                .by_id
                .iter()
                .find_map(|b| from_plan.get(&format!("/dev/disk/by-id/{b}")))
            {
                return Some(*r);
            }
            // Without a plan, disks named exactly in the answers still show their role.
            let named = |role: &Option<DiskRole>| {
                role.as_ref().is_some_and(|r| {
                    r.disks.iter().any(|sel| match sel {
                        DiskSelector::Serial(x) => d.serial.as_deref() == Some(x.as_str()),
                        DiskSelector::ById(x) => d.by_id.iter().any(|b| b == x),
                        DiskSelector::Wwn(x) => d.wwn.as_deref() == Some(x.as_str()),
                        DiskSelector::Filter(_) => false,
                    })
                })
            };
            let n = node?;
            if named(&Some(n.boot.clone())) {
                Some(DiskRoleKind::Boot)
            } else if named(&n.tank1) {
                Some(DiskRoleKind::Tank1)
            } else if named(&n.tank2) {
                Some(DiskRoleKind::Tank2)
            } else {
                None
            }
        })
        .collect()
}

fn next_role(r: Option<DiskRoleKind>) -> Option<DiskRoleKind> {
    match r {
        None => Some(DiskRoleKind::Boot),
        Some(DiskRoleKind::Boot) => Some(DiskRoleKind::Tank1),
        Some(DiskRoleKind::Tank1) => Some(DiskRoleKind::Tank2),
        Some(DiskRoleKind::Tank2) => None,
    }
}

/// Space on the disks screen: the focused disk gets the next role, and every role's disks
/// are named exactly (by serial, else by-id) from then on.
fn cycle_disk(s: &mut State) {
    let i = s.focus;
    let Some(disk) = s.inv.disks.get(i) else {
        return;
    };
    if disk.boot_medium {
        s.errors = vec![format!(
            "{} is the installer's own medium: it is never used",
            disk.name
        )];
        return;
    }
    let mut roles = disk_roles(s);
    roles[i] = next_role(roles[i]);
    let sel = |d: &crate::inventory::Disk| -> Option<DiskSelector> {
        d.serial
            .clone()
            .filter(|x| !x.is_empty())
            .map(DiskSelector::Serial)
            .or_else(|| d.preferred_by_id().map(|b| DiskSelector::ById(b.into())))
    };
    let pick = |kind: DiskRoleKind| -> Vec<DiskSelector> {
        s.inv
            .disks
            .iter()
            .zip(&roles)
            .filter(|(_, r)| **r == Some(kind))
            .filter_map(|(d, _)| sel(d))
            .collect()
    };
    let layout = |n: usize| match n {
        0 | 1 => Layout::Single,
        2 => Layout::Mirror,
        3 => Layout::Raidz1,
        _ => Layout::Raidz2,
    };
    let boot = pick(DiskRoleKind::Boot);
    let tank1 = pick(DiskRoleKind::Tank1);
    let tank2 = pick(DiskRoleKind::Tank2);
    let mut cand = s.site.clone();
    let Some(node) = cand.nodes.get_mut(s.node) else {
        return;
    };
    let wipe = node.boot.wipe;
    let role = |disks: Vec<DiskSelector>, pos| DiskRole {
        layout: layout(disks.len()),
        disks,
        wipe,
        pos,
    };
    node.boot = role(boot, node.boot.pos);
    node.tank1 = (!tank1.is_empty()).then(|| role(tank1, Default::default()));
    node.tank2 = (!tank2.is_empty()).then(|| role(tank2, Default::default()));
    s.disk_roles = Some(roles);
    s.errors.clear();
    commit(s, &cand);
}

/// `w` on the disks screen: consent (or not) to erase disks that hold data.
fn toggle_wipe(s: &mut State) {
    let mut cand = s.site.clone();
    let Some(node) = cand.nodes.get_mut(s.node) else {
        return;
    };
    let wipe = !node.boot.wipe;
    node.boot.wipe = wipe;
    for t in [&mut node.tank1, &mut node.tank2].into_iter().flatten() {
        t.wipe = wipe;
    }
    s.errors.clear();
    commit(s, &cand);
}

fn key(s: &mut State, k: KeyEvent) -> Vec<Command> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('q')) {
        s.modal = Some(Modal::Quit);
        return Vec::new();
    }
    match s.modal {
        Some(Modal::Quit) => {
            return match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    s.quit = true;
                    vec![Command::Quit]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    s.modal = None;
                    Vec::new()
                }
                _ => Vec::new(),
            }
        }
        Some(Modal::Save) => {
            return match k.code {
                KeyCode::Esc => {
                    s.modal = None;
                    Vec::new()
                }
                KeyCode::Enter => {
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
                KeyCode::Backspace => {
                    s.fields.save_path.text.pop();
                    Vec::new()
                }
                KeyCode::Char(c) if !ctrl => {
                    s.fields.save_path.text.push(c);
                    Vec::new()
                }
                _ => Vec::new(),
            }
        }
        None => {}
    }
    match k.code {
        KeyCode::Enter => return next(s),
        KeyCode::Esc => {
            back(s);
            return Vec::new();
        }
        KeyCode::Tab | KeyCode::Down => {
            if s.screen == Screen::Summary {
                s.scroll = s.scroll.saturating_add(1).min(summary_lines(s));
            } else {
                s.focus = (s.focus + 1) % rows(s).max(1);
            }
            return Vec::new();
        }
        KeyCode::BackTab | KeyCode::Up => {
            if s.screen == Screen::Summary {
                s.scroll = s.scroll.saturating_sub(1);
            } else {
                let n = rows(s).max(1);
                s.focus = (s.focus + n - 1) % n;
            }
            return Vec::new();
        }
        KeyCode::PageDown if s.screen == Screen::Summary => {
            s.scroll = s.scroll.saturating_add(10).min(summary_lines(s));
            return Vec::new();
        }
        KeyCode::PageUp if s.screen == Screen::Summary => {
            s.scroll = s.scroll.saturating_sub(10);
            return Vec::new();
        }
        _ => {}
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
    match (s.screen, k.code) {
        (Screen::Disks, KeyCode::Char(' ')) => cycle_disk(s),
        (Screen::Disks, KeyCode::Char('w')) => toggle_wipe(s),
        (Screen::Network, KeyCode::Char('w')) => set_nic_role(s, focused_nic(s), true),
        (Screen::Network, KeyCode::Char('l')) => set_nic_role(s, focused_nic(s), false),
        (Screen::Network, KeyCode::Char('f')) => s.follow_wan = !s.follow_wan,
        (Screen::Summary, KeyCode::Char('s')) => {
            s.modal = Some(Modal::Save);
            s.notice = None;
        }
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
    physical_nics(&s.inv)
        .get(s.focus)
        .copied()
        .unwrap_or(usize::MAX)
}

/// Left/Right on the role screen with a loaded site: which of its nodes this machine is.
fn change_node(s: &mut State, forward: bool) {
    let n = s.site.nodes.len();
    if s.loaded_from.is_none() || n < 2 {
        return;
    }
    s.node = if forward {
        (s.node + 1) % n
    } else {
        (s.node + n - 1) % n
    };
    s.disk_roles = None;
    fill_fields(s);
    replan(s);
}

fn go(s: &mut State, to: Screen) {
    s.screen = to;
    s.focus = 0;
    s.errors.clear();
    s.scroll = 0;
    if to == Screen::Network {
        // The focus starts on the host name, the field most people change.
        s.focus = physical_nics(&s.inv).len();
    }
}

fn back(s: &mut State) {
    s.errors.clear();
    s.notice = None;
    let to = match s.screen {
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

fn role_next(s: &mut State) -> Vec<Command> {
    if s.focus == Purpose::ALL.len() {
        let path = s.fields.load_path.text.trim().to_string();
        if path.is_empty() {
            s.errors = vec!["type the path of the site file, e.g. /media/usb/site.toml".into()];
            return Vec::new();
        }
        return vec![Command::ReadSiteFile(path)];
    }
    let purpose = Purpose::ALL
        .get(s.focus)
        .copied()
        .unwrap_or(Purpose::NewSite);
    if purpose != Purpose::NewSite && s.loaded_from.is_none() {
        s.errors = vec![
            "to join an existing site, load its site file first: move down to \"Load a site \
             file\", type its path (e.g. /media/usb/site.toml) and press Enter"
                .into(),
        ];
        return Vec::new();
    }
    let mut cand = s.site.clone();
    match purpose {
        Purpose::NewSite if s.loaded_from.is_none() => {}
        Purpose::Replace => {
            if let Some(n) = cand.nodes.get_mut(s.node) {
                n.replace = true;
            }
        }
        p => {
            let want = match p {
                Purpose::Join => Role::Member,
                Purpose::Backup => Role::Backup,
                _ => Role::Primary,
            };
            match cand.nodes.iter().position(|n| n.role == want) {
                Some(i) if cand.nodes[s.node].role != want => s.node = i,
                Some(_) => {}
                None => {
                    s.errors = vec![format!(
                        "the loaded site has no {want} node; choose another answer or load \
                         another site file"
                    )];
                    return Vec::new();
                }
            }
            if let Some(n) = cand.nodes.get_mut(s.node) {
                n.replace = false;
            }
        }
    }
    s.purpose = purpose;
    if commit(s, &cand) {
        if s.loaded_from.is_some() {
            // Another node of the loaded site may have been chosen: show its answers.
            fill_fields(s);
            s.purpose = purpose;
        }
        go(s, Screen::Disks);
    }
    Vec::new()
}

fn loaded(s: &mut State, path: &str, r: Result<String, String>) {
    let site = r.and_then(|src| sitefile::parse(&src, path));
    match site {
        Ok(site) => {
            // Which node is this machine: the one the site's `identify` picks, else the first.
            let detected = s.profile.clone();
            let node = plan::select_node(&s.inv, &site, None, detected.as_deref())
                .map(|c| c.index)
                .unwrap_or(0);
            s.site = site;
            s.node = node;
            s.loaded_from = Some(path.to_string());
            s.disk_roles = None;
            fill_fields(s);
            replan(s);
            s.errors.clear();
            let name = s.this_node().map(|n| n.name.clone()).unwrap_or_default();
            s.notice = Some(format!(
                "Loaded {path}: every screen starts from it. This machine is {name} \
                 (Left/Right to change)."
            ));
            s.focus = s.purpose_index();
        }
        Err(e) => {
            s.errors = vec![format!("could not load {path}:\n{e}")];
        }
    }
}

impl State {
    fn purpose_index(&self) -> usize {
        Purpose::ALL
            .iter()
            .position(|p| *p == self.purpose)
            .unwrap_or(0)
    }
}

fn network_next(s: &mut State) {
    let mut cand = s.site.clone();
    let Some(node) = cand.nodes.get_mut(s.node) else {
        return;
    };
    let name = s.fields.hostname.text.trim().to_string();
    let addr = s.fields.address.text.trim();
    match addr.parse::<Ipv4Addr>() {
        Ok(a) => node.address = a,
        Err(_) => {
            s.errors = vec![format!(
                "address: {addr:?} is not an IPv4 address such as {}",
                s.site
                    .network
                    .management
                    .nth(10)
                    .unwrap_or(Ipv4Addr::new(10, 0, 0, 10))
            )];
            return;
        }
    }
    node.name = name;
    let (wan, lan) = nic_roles(s);
    if wan.is_none() || lan.is_none() || wan == lan {
        s.errors = vec![
            "choose a WAN port and a different LAN port: move to a port and press w or l".into(),
        ];
        return;
    }
    if commit(s, &cand) {
        if let Err(e) = &s.plan {
            s.errors = vec![format!("the network does not fit yet:\n{e}")];
            return;
        }
        go(s, Screen::Site);
    }
}

fn site_next(s: &mut State) -> Vec<Command> {
    let f = &s.fields;
    let pw = f.password.text.clone();
    if pw != f.password2.text {
        s.errors = vec!["the two passwords differ: type the same password twice".into()];
        return Vec::new();
    }
    if pw.is_empty() && !s.password_set {
        s.errors = vec!["choose a password for the administrator (root)".into()];
        return Vec::new();
    }
    if !pw.is_empty() && sitefile::strength(&pw) == sitefile::Strength::TooShort {
        s.errors = vec!["the password is too short: at least 8 characters".into()];
        return Vec::new();
    }
    let mut cand = s.site.clone();
    cand.site.name = f.site_name.text.trim().to_string();
    cand.site.domain = f.domain.text.trim().to_string();
    cand.site.admin_email = f.email.text.trim().to_string();
    cand.site.timezone = f.timezone.text.trim().to_string();
    if !commit(s, &cand) {
        return Vec::new();
    }
    let key = s.fields.ssh_key_path.text.trim().to_string();
    vec![Command::FinishSite {
        password: (!pw.is_empty()).then_some(pw),
        ssh_key_path: (!key.is_empty()).then_some(key),
    }]
}

fn site_finished(
    s: &mut State,
    hash: Option<Result<String, String>>,
    key: Option<Result<String, String>>,
) {
    let mut cand = s.site.clone();
    match hash {
        Some(Ok(h)) => {
            cand.credentials.root_password_hash = h;
            s.fields.password.text.clear();
            s.fields.password2.text.clear();
            s.password_set = true;
        }
        Some(Err(e)) => {
            s.errors = vec![e];
            return;
        }
        None => {}
    }
    match key {
        Some(Ok(k)) if !cand.credentials.ssh_keys.contains(&k) => {
            cand.credentials.ssh_keys.push(k);
        }
        Some(Err(e)) => {
            s.errors = vec![format!("SSH key: {e}")];
            return;
        }
        _ => {}
    }
    if commit(s, &cand) {
        go(s, Screen::Summary);
    }
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
    vec![Command::StartInstall {
        src: sitefile::to_toml(&s.site),
        site: Box::new(s.site.clone()),
        plan: Box::new(plan),
    }]
}
