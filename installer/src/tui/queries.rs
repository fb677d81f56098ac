//! Read-only questions about the [`State`] that the views and `update` both ask: which NIC is
//! WAN and LAN, which disk has which role, which NICs are physical. They read the state and
//! change nothing, so they live beside it, not in `update`.

use super::state::State;
use crate::frontdoor;
use crate::inventory::Inventory;
use crate::plan::{DiskRoleKind, Hints};
use std::collections::BTreeMap;
use tappaas_site::{DiskRole, DiskSelector, NicSelector};

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

impl State {
    /// The hints for the answers' node: its own profile, else the machine's.
    pub fn node_hints(&self) -> Hints {
        frontdoor::node_hints(&self.site, self.node, self.profile.as_deref())
    }

    /// Indices of the physical NICs in the inventory.
    pub fn physical_nics(&self) -> Vec<usize> {
        (0..self.inv.nics.len())
            .filter(|&i| self.inv.nics[i].physical)
            .collect()
    }

    /// The NIC (index into `inv.nics`) the node uses as WAN and as LAN: its own selectors,
    /// else the profile's default ports.
    pub fn nic_roles(&self) -> (Option<usize>, Option<usize>) {
        let hints = self.node_hints();
        let Some(node) = self.this_node() else {
            return (None, None);
        };
        let pick = |own: &Option<NicSelector>, default: &Option<String>| {
            own.clone()
                .or_else(|| default.clone().map(NicSelector::Port))
                .and_then(|sel| resolve_nic(&sel, &hints, &self.inv))
        };
        (
            pick(&node.nics.wan, &hints.wan_port),
            pick(&node.nics.lan, &hints.lan_port),
        )
    }

    /// Each disk's role (by index into `inv.disks`) in the current answers: the roles the
    /// user chose on the disks screen, else the plan's, else the disks the answers name.
    pub fn roles_by_disk(&self) -> Vec<Option<DiskRoleKind>> {
        if let Some(r) = &self.disk_roles {
            return r.clone();
        }
        let from_plan: BTreeMap<String, DiskRoleKind> = match &self.plan {
            Ok(p) => p
                .disks
                .iter()
                .map(|d| (d.disk.by_id.clone(), d.role))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let node = self.this_node();
        self.inv
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
}
