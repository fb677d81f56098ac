//! The answers: the state at start, filling the fields from a site, checking answers through
//! the site-file parser, planning them, and the screens that change the site as a whole (what
//! this machine becomes, network names, site and credentials).

use super::super::sitefile;
use super::super::state::{Fields, Input, Progress, Purpose, Screen, State, KEYBOARDS};
use super::{go, Command, JoinAnswer, JoinRequest};
use crate::inventory::Inventory;
use crate::plan::{self, Plan};
use std::net::Ipv4Addr;
use tappaas_site::{Role, Site};

impl State {
    /// The state at start: the probed machine, a new site on its profile.
    pub fn new(inv: Inventory, profile: Option<String>, simulate: bool, ascii: bool) -> State {
        let hints = crate::profile::hints_for(profile.as_deref());
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
            added_node: false,
            join_settings_made: false,
            fields: Fields::default(),
            focus: 0,
            keyboard: 0,
            plan: Err(String::new()),
            scroll: 0,
            errors: Vec::new(),
            notice: None,
            modal: None,
            progress: Progress::default(),
            found_site_files: Vec::new(),
            found_keys: Vec::new(),
            ascii,
            simulate,
            quit: false,
            resume: None,
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
pub(super) fn empty_site() -> Site {
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
        cluster: tappaas_site::Cluster::default(),
        storage: tappaas_site::Storage {
            rpool: pool("rpool"),
            tank1: pool("tank1"),
            tank2: pool("tank2"),
        },
        nodes: Vec::new(),
    }
}

pub(super) fn pool(name: &str) -> tappaas_site::PoolSettings {
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
pub(super) fn fill_fields(s: &mut State) {
    let f = &mut s.fields;
    let site = &s.site;
    f.site_name = Input::new(&site.site.name);
    f.domain = Input::new(&site.site.domain);
    f.email = Input::new(&site.site.admin_email);
    f.timezone = Input::new(&site.site.timezone);
    (f.wan_address, f.wan_gateway) = match &site.network.upstream {
        tappaas_site::Upstream::Dhcp => (Input::default(), Input::default()),
        tappaas_site::Upstream::Static {
            address, gateway, ..
        } => (
            Input::new(address.to_string()),
            Input::new(gateway.to_string()),
        ),
    };
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
    let hints = crate::frontdoor::node_hints(site, node, detected);
    plan::plan(inv, site, &choice, &hints).map_err(|e| human(&e))
}

/// The planner's problems for the screen: what is wrong and what to do, without the site-file
/// positions the command line shows (the TUI user never saw the file).
pub(super) fn human(e: &plan::PlanError) -> String {
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
pub(super) fn commit(s: &mut State, candidate: &Site) -> bool {
    let text = sitefile::to_toml(candidate);
    match crate::frontdoor::parse_site(&text) {
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

/// Left/Right on the role screen with a loaded site: which of its nodes this machine is.
pub(super) fn change_node(s: &mut State, forward: bool) {
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

pub(super) fn role_next(s: &mut State) -> Vec<Command> {
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
                Some(i) if cand.nodes.get(s.node).map(|n| n.role) != Some(want) => s.node = i,
                Some(_) => {}
                // The site has no such machine yet (a site saved after its first node): this
                // machine becomes a new node of it.
                None => match add_node(s, &mut cand, want) {
                    Ok(i) => {
                        s.node = i;
                        s.added_node = true;
                    }
                    Err(e) => {
                        s.errors = vec![e];
                        return Vec::new();
                    }
                },
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

/// Adds this machine to `site` as a new node with `role`: the next free number, the TAPPaaS
/// name and address for it, this machine's profile, disks and ports from the profile's hints.
/// Its index, or why it cannot be added.
pub(super) fn add_node(s: &State, site: &mut Site, role: Role) -> Result<usize, String> {
    let id = (1..=9u8)
        .find(|i| site.nodes.iter().all(|n| n.id != *i))
        .ok_or_else(|| "the site has nine nodes already, the most a site can have".to_string())?;
    let address = site
        .network
        .management
        .nth(9 + u32::from(id))
        .ok_or_else(|| format!("the management network has no address for node {id}"))?;
    let hinted = |pos| tappaas_site::DiskRole {
        layout: tappaas_site::Layout::Single,
        disks: Vec::new(),
        wipe: false,
        pos,
    };
    site.nodes.push(tappaas_site::Node {
        name: format!("tappaas{id}"),
        id,
        role,
        profile: s.profile.clone(),
        identify: tappaas_site::Identify::Explicit,
        address,
        nics: Default::default(),
        boot: hinted(Default::default()),
        tank1: Some(hinted(Default::default())),
        tank2: Some(hinted(Default::default())),
        replace: false,
        api_fingerprint: None,
        pos: Default::default(),
    });
    Ok(site.nodes.len() - 1)
}

/// `n` on the role screen with a loaded site: this machine becomes a new node of the site,
/// with the role under the focus (join: member, backup: backup).
pub(super) fn new_node(s: &mut State) {
    let role = match Purpose::ALL.get(s.focus) {
        Some(Purpose::Join) => Role::Member,
        Some(Purpose::Backup) => Role::Backup,
        _ => {
            s.errors = vec!["move to \"Join\" or \"backup\" first, then press n".into()];
            return;
        }
    };
    if s.loaded_from.is_none() {
        s.errors = vec!["load the site's file first, then press n to add this machine".into()];
        return;
    }
    let mut cand = s.site.clone();
    match add_node(s, &mut cand, role) {
        Ok(i) => {
            let old = s.node;
            s.node = i;
            if commit(s, &cand) {
                s.added_node = true;
                s.disk_roles = None;
                fill_fields(s);
                s.notice = Some(format!(
                    "This machine is a new {role} node of the site: {}.",
                    s.this_node().map(|n| n.name.as_str()).unwrap_or_default()
                ));
            } else {
                s.node = old;
            }
        }
        Err(e) => s.errors = vec![e],
    }
}

pub(super) fn loaded(s: &mut State, path: &str, r: Result<String, String>) {
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

/// How the firewall reaches the internet: DHCP without a WAN address, else that fixed address
/// (`a.b.c.d/nn`) and gateway, the gateway also as DNS (the site file's default).
fn upstream(address: &str, gateway: &str) -> Result<tappaas_site::Upstream, String> {
    let (address, gateway) = (address.trim(), gateway.trim());
    if address.is_empty() {
        return Ok(tappaas_site::Upstream::Dhcp);
    }
    let parsed = address.split_once('/').and_then(|(a, p)| {
        let addr = a.parse::<Ipv4Addr>().ok()?;
        let prefix = p.parse::<u8>().ok().filter(|p| *p <= 32)?;
        Some(tappaas_site::Ipv4If { addr, prefix })
    });
    let Some(address) = parsed else {
        return Err(format!(
            "WAN address: {address:?} is not an address with prefix such as 192.168.1.50/24 \
             (leave it empty when the internet router hands out addresses by DHCP)"
        ));
    };
    let Ok(gateway) = gateway.parse::<Ipv4Addr>() else {
        return Err(format!(
            "WAN gateway: {gateway:?} is not an IPv4 address such as 192.168.1.1 (your \
             internet router)"
        ));
    };
    Ok(tappaas_site::Upstream::Static {
        address,
        gateway,
        dns: vec![gateway],
    })
}

pub(super) fn network_next(s: &mut State) {
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
    match upstream(&s.fields.wan_address.text, &s.fields.wan_gateway.text) {
        Ok(u) => cand.network.upstream = u,
        Err(e) => {
            s.errors = vec![e];
            return;
        }
    }
    let (wan, lan) = s.nic_roles();
    if wan.is_none() || lan.is_none() || wan == lan {
        s.errors = vec![
            "choose a WAN port and a different LAN port: move to a port and press w or l".into(),
        ];
        return;
    }
    // So that the saved site file installs this machine unattended, the node recognises it by
    // the permanent MAC of its LAN port (a loaded site's own rule is kept, and a MAC another
    // node of the site already claims is not taken twice).
    let mac = lan
        .and_then(|i| s.inv.nics.get(i))
        .and_then(|nic| tappaas_site::Mac::parse(nic.permanent_mac.as_deref().unwrap_or(&nic.mac)));
    if let Some(mac) = mac {
        let claimed = cand
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| i != s.node && n.identify == tappaas_site::Identify::Mac(mac));
        if let Some(node) = cand.nodes.get_mut(s.node) {
            if node.identify == tappaas_site::Identify::Explicit && !claimed {
                node.identify = tappaas_site::Identify::Mac(mac);
            }
        }
    }
    if commit(s, &cand) {
        if let Err(e) = &s.plan {
            s.errors = vec![format!("the network does not fit yet:\n{e}")];
            return;
        }
        go(s, Screen::Site);
    }
}

pub(super) fn site_next(s: &mut State) -> Vec<Command> {
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
        join: join_request(s),
    }]
}

/// What the site's join settings need, so that the nodes form their cluster unattended:
/// a new site gets a join secret and the primary's certificate (its primary then forms a
/// cluster, even of one, that machines added later join); a machine added to a loaded site
/// gets a fresh secret (the one the site had was used up by the earlier joins).
fn join_request(s: &State) -> Option<JoinRequest> {
    if s.join_settings_made {
        return None;
    }
    let node = s.this_node()?;
    let c = &s.site.cluster;
    if s.added_node || s.purpose == Purpose::Replace {
        return Some(JoinRequest::FreshSecret);
    }
    // A loaded site's own join settings (or their absence) are kept.
    let new_site = s.loaded_from.is_none()
        && c.join_secret.is_none()
        && c.primary_certificate.is_none()
        && c.primary_fingerprint.is_none();
    (node.role == Role::Primary && new_site).then(|| JoinRequest::NewSite {
        name: node.name.clone(),
        address: node.address,
    })
}

pub(super) fn site_finished(
    s: &mut State,
    hash: Option<Result<String, String>>,
    key: Option<Result<String, String>>,
    join: Option<Result<JoinAnswer, String>>,
) {
    let before = s.site.cluster.join_secret.clone();
    let mut cand = s.site.clone();
    match join {
        Some(Ok(JoinAnswer::Keys(k))) => {
            cand.cluster.join_secret = Some(k.join_secret);
            cand.cluster.primary_certificate = Some(k.certificate_pem);
            cand.cluster.primary_key = Some(k.key_pem);
            cand.cluster.primary_fingerprint = None;
        }
        Some(Ok(JoinAnswer::Secret(secret))) => cand.cluster.join_secret = Some(secret),
        Some(Err(e)) => {
            s.errors = vec![format!("making the cluster's join settings: {e}")];
            return;
        }
        None => {}
    }
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
        s.join_settings_made |= s.site.cluster.join_secret != before;
        go(s, Screen::Summary);
    }
}
