//! This machine's hardware in the answers: which port is WAN and LAN (and following the
//! cable), and which disk serves which role.

use super::super::queries::resolve_nic;
use super::super::state::{Screen, State};
use super::answers::commit;
use crate::inventory::LinkState;
use crate::plan::DiskRoleKind;
use tappaas_site::{DiskRole, DiskSelector, Layout, NicSelector};

/// The selector the site gets for NIC `i`: the profile's port label when it has one (stable
/// across machines of the model, so the site file suits the next node), else its name.
pub(super) fn selector_for(s: &State, i: usize) -> Option<NicSelector> {
    let hints = s.node_hints();
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
pub(super) fn set_nic_role(s: &mut State, i: usize, wan: bool) {
    let (cur_wan, cur_lan) = s.nic_roles();
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

pub(super) fn on_links(s: &mut State, links: Vec<(String, LinkState)>) {
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

pub(super) fn next_role(r: Option<DiskRoleKind>) -> Option<DiskRoleKind> {
    match r {
        None => Some(DiskRoleKind::Boot),
        Some(DiskRoleKind::Boot) => Some(DiskRoleKind::Tank1),
        Some(DiskRoleKind::Tank1) => Some(DiskRoleKind::Tank2),
        Some(DiskRoleKind::Tank2) => None,
    }
}

/// Space on the disks screen: the focused disk gets the next role, and every role's disks
/// are named exactly (by serial, else by-id) from then on.
pub(super) fn cycle_disk(s: &mut State) {
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
    let mut roles = s.roles_by_disk();
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
pub(super) fn toggle_wipe(s: &mut State) {
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
