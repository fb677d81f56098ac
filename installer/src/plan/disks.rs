//! Which probed disk serves which role. Identity selectors (by-id, serial, WWN) are resolved
//! first, then filters over what is left; a filter that matches more disks than it asks for is
//! an error ("ambiguous"), never a silent choice. The boot medium is never a candidate.

use super::holdings::{holdings, install_marker, interrupted_description, interrupted_install};
use super::{DiskRoleKind, Hints, Problems, Untouched};
use crate::inventory::{Disk, Inventory, Transport};
use tappaas_site::{glob_match, DiskFilter, DiskRole, DiskSelector, Layout, Node, Pos};

/// A disk chosen for a role.
#[derive(Debug, Clone)]
pub(crate) struct Picked<'a> {
    pub role: DiskRoleKind,
    pub index: usize,
    pub layout: Layout,
    pub disk: &'a Disk,
    /// The by-id link the install engine will use.
    pub by_id: String,
    /// What the disk holds now (consent given), if anything.
    pub erases: Option<String>,
}

/// Why a disk can never be a target, or `None` if it can.
fn never_target(d: &Disk) -> Option<String> {
    if d.boot_medium {
        // The probe lists every piece of evidence, most telling first; one is enough here.
        let reasons = d
            .boot_medium_reason
            .as_deref()
            .unwrap_or("the installer runs from it");
        let mut it = reasons.split("; ");
        let first = it.next().unwrap_or(reasons);
        let more = it.count();
        return Some(format!(
            "the live system's boot medium ({first}{})",
            if more > 0 {
                format!(", and {more} more sign{}", if more == 1 { "" } else { "s" })
            } else {
                String::new()
            }
        ));
    }
    if d.read_only {
        return Some("read-only device".into());
    }
    match d.transport {
        Transport::Loop => return Some("loop device".into()),
        Transport::Optical => return Some("optical drive".into()),
        Transport::Other if d.by_id.is_empty() => {
            return Some("virtual device (zram, md, dm or similar)".into())
        }
        _ => {}
    }
    if d.size_bytes == 0 {
        return Some("no medium (size 0)".into());
    }
    if d.by_id.is_empty() {
        return Some("has no /dev/disk/by-id name, so it cannot be named stably".into());
    }
    None
}

fn filter_mismatch(f: &DiskFilter, d: &Disk) -> Option<String> {
    let glob = |what: &str, pat: &Option<String>, val: Option<&str>| -> Option<String> {
        let pat = pat.as_ref()?;
        let v = val.unwrap_or("");
        (!glob_match(pat, v)).then(|| format!("{what} {v:?} does not match {pat:?}"))
    };
    glob("model", &f.model, d.model.as_deref())
        .or_else(|| glob("serial", &f.serial, d.serial.as_deref()))
        .or_else(|| glob("vendor", &f.vendor, d.vendor.as_deref()))
        .or_else(|| glob("transport", &f.transport, Some(d.transport.as_str())))
        .or_else(|| {
            let min = f.min_size?;
            (d.size_bytes < min).then(|| {
                format!(
                    "size {} is below min-size {}",
                    crate::inventory::human_bytes(d.size_bytes),
                    crate::inventory::human_bytes(min)
                )
            })
        })
        .or_else(|| {
            let max = f.max_size?;
            (d.size_bytes > max).then(|| {
                format!(
                    "size {} is above max-size {}",
                    crate::inventory::human_bytes(d.size_bytes),
                    crate::inventory::human_bytes(max)
                )
            })
        })
        .or_else(|| {
            let r = f.rotational?;
            (d.rotational != r).then(|| {
                if d.rotational {
                    "is a spinning disk".to_string()
                } else {
                    "is solid-state".to_string()
                }
            })
        })
}

fn identity_matches(sel: &DiskSelector, d: &Disk) -> bool {
    match sel {
        DiskSelector::ById(id) => d.by_id.iter().any(|l| l == id),
        DiskSelector::Serial(s) => d.serial.as_deref() == Some(s.as_str()),
        DiskSelector::Wwn(w) => d.wwn.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(w)),
        DiskSelector::Filter(_) => false,
    }
}

fn describe_selector(sel: &DiskSelector) -> String {
    match sel {
        DiskSelector::ById(s) => format!("by-id {s:?}"),
        DiskSelector::Serial(s) => format!("serial {s:?}"),
        DiskSelector::Wwn(s) => format!("WWN {s:?}"),
        DiskSelector::Filter(f) => {
            let mut p = Vec::new();
            for (k, v) in [
                ("model", &f.model),
                ("serial", &f.serial),
                ("vendor", &f.vendor),
                ("transport", &f.transport),
            ] {
                if let Some(v) = v {
                    p.push(format!("{k} = {v:?}"));
                }
            }
            if let Some(v) = f.min_size {
                p.push(format!("min-size = {v}"));
            }
            if let Some(v) = f.max_size {
                p.push(format!("max-size = {v}"));
            }
            if let Some(v) = f.rotational {
                p.push(format!("rotational = {v}"));
            }
            format!("filter {{ {} }}", p.join(", "))
        }
    }
}

struct RoleReq<'n> {
    kind: DiskRoleKind,
    role: Option<&'n DiskRole>,
    selectors: Vec<DiskSelector>,
    from_hints: bool,
    pos: Pos,
}

/// Assigns disks to the node's roles; pushes every problem found.
pub(crate) fn assign<'a>(
    inv: &'a Inventory,
    site: &str,
    node: &Node,
    hints: &Hints,
    npath: &str,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) -> (Vec<Picked<'a>>, String) {
    let reqs = requests(node, hints, npath, problems);
    let mut a = Assigning {
        inv,
        node,
        hints,
        npath,
        problems,
        warnings,
        taken: vec![None; inv.disks.len()],
        chosen: vec![Vec::new(); reqs.len()],
    };
    a.identities(&reqs);
    a.filters(&reqs);

    let marker = install_marker(
        site,
        &node.name,
        a.chosen
            .iter()
            .flatten()
            .filter_map(|&di| inv.disks[di].preferred_by_id()),
    );
    let mut picked = Vec::new();
    for (ri, req) in reqs.iter().enumerate() {
        let Some(role) = req.role else { continue };
        let disks = std::mem::take(&mut a.chosen[ri]);
        let layout = a.check_role(req, role, &disks);
        for (index, &di) in disks.iter().enumerate() {
            picked.extend(a.pick(req, role, layout, index, &inv.disks[di], &marker));
        }
    }
    (picked, marker)
}

/// The node's roles with the selectors that find their disks (the site's, else the hints').
fn requests<'n>(
    node: &'n Node,
    hints: &Hints,
    npath: &str,
    problems: &mut Problems,
) -> Vec<RoleReq<'n>> {
    let hint_for = |k: DiskRoleKind| -> Vec<DiskSelector> {
        hints
            .disks
            .iter()
            .filter(|(r, _)| *r == k)
            .map(|(_, f)| DiskSelector::Filter(f.clone()))
            .collect()
    };
    let mut reqs = Vec::new();
    for (kind, role) in [
        (DiskRoleKind::Boot, Some(&node.boot)),
        (DiskRoleKind::Tank1, node.tank1.as_ref()),
        (DiskRoleKind::Tank2, node.tank2.as_ref()),
    ] {
        let Some(role) = role else { continue };
        let (selectors, from_hints) = if role.disks.is_empty() {
            (hint_for(kind), true)
        } else {
            (role.disks.clone(), false)
        };
        if selectors.is_empty() {
            problems.push(
                Some(role.pos),
                format!("{npath}.{kind}.disks"),
                format!("[node.{kind}] names no disks and no hardware profile suggests any"),
                Some(format!(
                    "list the disks, e.g. disks = [{{ serial = \"...\" }}]; `tappaas-installer \
                     probe` shows serials{}",
                    hints
                        .profile
                        .as_ref()
                        .map(|p| format!(" (profile {p} has no {kind} hint)"))
                        .unwrap_or_default()
                )),
            );
            continue;
        }
        reqs.push(RoleReq {
            kind,
            role: Some(role),
            selectors,
            from_hints,
            pos: role.pos,
        });
    }
    reqs
}

/// The state of one assignment: what is taken, what each request chose, what went wrong.
struct Assigning<'a, 'c> {
    inv: &'a Inventory,
    node: &'c Node,
    hints: &'c Hints,
    npath: &'c str,
    problems: &'c mut Problems,
    warnings: &'c mut Vec<String>,
    /// Per disk of the inventory, the role that took it.
    taken: Vec<Option<DiskRoleKind>>,
    /// Per request, the indices in `inv.disks` chosen for it, in selector order.
    chosen: Vec<Vec<usize>>,
}

impl Assigning<'_, '_> {
    fn take(&mut self, di: usize, ri: usize, kind: DiskRoleKind) {
        self.taken[di] = Some(kind);
        self.chosen[ri].push(di);
    }

    /// Pass 1: identities, so a filter never steals a disk named explicitly elsewhere.
    fn identities(&mut self, reqs: &[RoleReq<'_>]) {
        let inv = self.inv;
        for (ri, req) in reqs.iter().enumerate() {
            for (si, sel) in req.selectors.iter().enumerate() {
                if matches!(sel, DiskSelector::Filter(_)) {
                    continue;
                }
                let path = format!("{}.{}.disks[{si}]", self.npath, req.kind);
                let Some(di) = inv.disks.iter().position(|d| identity_matches(sel, d)) else {
                    self.problems.push(
                        Some(req.pos),
                        path,
                        format!("no disk on this machine has {}", describe_selector(sel)),
                        Some(format!("disks present: {}", list_disks(inv))),
                    );
                    continue;
                };
                let d = &inv.disks[di];
                if let Some(why) = never_target(d) {
                    self.problems.push(
                        Some(req.pos),
                        path,
                        format!("{} is {why}: it can never be installed to", d.describe()),
                        None,
                    );
                    continue;
                }
                if let Some(other) = self.taken[di] {
                    self.problems.push(
                        Some(req.pos),
                        path,
                        format!("{} is already used for {other}", d.describe()),
                        Some("each disk serves one role".into()),
                    );
                    continue;
                }
                self.take(di, ri, req.kind);
            }
        }
    }

    /// Pass 2: filters, over what is still free, in role order.
    fn filters(&mut self, reqs: &[RoleReq<'_>]) {
        for (ri, req) in reqs.iter().enumerate() {
            for (si, sel) in req.selectors.iter().enumerate() {
                let DiskSelector::Filter(f) = sel else {
                    continue;
                };
                if let Some(hits) = self.filter(req, si, sel, f) {
                    for di in hits {
                        self.take(di, ri, req.kind);
                    }
                }
            }
        }
    }

    /// The free disks filter `f` (selector `si` of `req`) takes, or `None` (a problem pushed)
    /// when it matches fewer or more than it asks for.
    fn filter(
        &mut self,
        req: &RoleReq<'_>,
        si: usize,
        sel: &DiskSelector,
        f: &DiskFilter,
    ) -> Option<Vec<usize>> {
        let inv = self.inv;
        let path = if req.from_hints {
            format!("{}.{}", self.npath, req.kind)
        } else {
            format!("{}.{}.disks[{si}]", self.npath, req.kind)
        };
        let want = f.count.max(1) as usize;
        let (hits, why_not) = self.free_matches(f);
        let src = if req.from_hints {
            format!(
                "profile {}'s {} hint {}",
                self.hints.profile.as_deref().unwrap_or("?"),
                req.kind,
                describe_selector(sel)
            )
        } else {
            describe_selector(sel)
        };
        if hits.len() < want {
            self.problems.push(
                Some(req.pos),
                path,
                format!(
                    "{src} needs {want} disk{} but {} free disk{} match{}",
                    if want == 1 { "" } else { "s" },
                    hits.len(),
                    if hits.len() == 1 { "" } else { "s" },
                    if why_not.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why_not.join("; "))
                    }
                ),
                Some("name the disks by serial or by-id (see `tappaas-installer probe`)".into()),
            );
            return None;
        }
        if hits.len() > want {
            self.problems.push(
                Some(req.pos),
                path,
                format!(
                    "{src} is ambiguous: it matches {} disks ({}) but asks for {want}",
                    hits.len(),
                    hits.iter()
                        .map(|&i| inv.disks[i].describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                Some("narrow the filter (model, size range) or name the disks by serial".into()),
            );
            return None;
        }
        Some(hits)
    }

    /// The free disks `f` matches, and why each other disk worth naming does not.
    fn free_matches(&self, f: &DiskFilter) -> (Vec<usize>, Vec<String>) {
        let mut why_not = Vec::new();
        let mut hits = Vec::new();
        for (di, d) in self.inv.disks.iter().enumerate() {
            if let Some(why) = never_target(d) {
                if d.boot_medium {
                    why_not.push(format!("{}: {why}", d.name));
                }
                continue;
            }
            if let Some(role) = self.taken[di] {
                why_not.push(format!("{}: already used for {role}", d.name));
                continue;
            }
            match filter_mismatch(f, d) {
                Some(m) => why_not.push(format!("{}: {m}", d.name)),
                None => hits.push(di),
            }
        }
        (hits, why_not)
    }

    /// The role's layout, with every problem of its disks taken together (count, layout,
    /// mirror sizes).
    fn check_role(&mut self, req: &RoleReq<'_>, role: &DiskRole, disks: &[usize]) -> Layout {
        let n = disks.len();
        // Layout: the site's when it listed disks; otherwise derived from what the hints found.
        let layout = if req.from_hints {
            if n >= 2 {
                Layout::Mirror
            } else {
                Layout::Single
            }
        } else {
            role.layout
        };
        let rpath = format!("{}.{}", self.npath, req.kind);
        if n > 0 && n < layout.min_disks() {
            self.problems.push(
                Some(req.pos),
                format!("{rpath}.layout"),
                format!(
                    "layout {layout} needs at least {} disks, but {n} {} found",
                    layout.min_disks(),
                    if n == 1 { "was" } else { "were" }
                ),
                None,
            );
        }
        if layout == Layout::Single && n > 1 {
            // tank2 is the non-redundant tier by design (backups, services with their own
            // redundancy), so a stripe there is a choice; for boot and tank1 it is a mistake.
            if req.kind == DiskRoleKind::Tank2 {
                self.warnings.push(format!(
                    "tank2 on {} stripes {n} disks: one failed disk loses the whole pool",
                    self.node.name
                ));
            } else {
                self.problems.push(
                    Some(req.pos),
                    format!("{rpath}.layout"),
                    format!("{n} disks with layout single would be a stripe: one failed disk loses the pool"),
                    Some("use layout = \"mirror\" (or raidz1/raidz2)".into()),
                );
            }
        }
        if req.kind == DiskRoleKind::Boot && n > 2 {
            self.problems.push(
                Some(req.pos),
                rpath.clone(),
                format!("the boot role takes one disk or a mirror of two, not {n}"),
                None,
            );
        }
        if layout == Layout::Mirror && n >= 2 {
            self.check_mirror(req, &rpath, disks);
        }
        if req.kind == DiskRoleKind::Tank1 && n == 1 {
            self.warnings.push(format!(
                "tank1 on {} is a single disk: no redundancy on this node, only replication \
                 between nodes protects its VMs",
                self.node.name
            ));
        }
        layout
    }

    fn check_mirror(&mut self, req: &RoleReq<'_>, rpath: &str, disks: &[usize]) {
        let inv = self.inv;
        let sizes: Vec<u64> = disks.iter().map(|&i| inv.disks[i].size_bytes).collect();
        let (min, max) = (
            sizes.iter().copied().min().unwrap_or(0),
            sizes.iter().copied().max().unwrap_or(0),
        );
        // Proxmox's rule: mirror members within 10% of each other.
        if min > 0 && (max - min) * 10 > min {
            self.problems.push(
                Some(req.pos),
                format!("{rpath}.disks"),
                format!(
                    "mirror members differ in size by more than 10%: {}",
                    disks
                        .iter()
                        .map(|&i| inv.disks[i].describe())
                        .collect::<Vec<_>>()
                        .join(" vs ")
                ),
                Some("use disks of similar size; the mirror would only use the smaller".into()),
            );
        }
        let lss: std::collections::BTreeSet<u32> = disks
            .iter()
            .map(|&i| inv.disks[i].logical_sector_size)
            .collect();
        if lss.len() > 1 {
            self.warnings.push(format!(
                "{}: mirror members have different logical sector sizes ({lss:?}); ashift=12 covers both",
                req.kind
            ));
        }
    }

    /// Disk `index` of the role, checked on its own (size, in use, consent to erase it).
    fn pick<'a>(
        &mut self,
        req: &RoleReq<'_>,
        role: &DiskRole,
        layout: Layout,
        index: usize,
        d: &'a Disk,
        marker: &str,
    ) -> Option<Picked<'a>> {
        let rpath = format!("{}.{}", self.npath, req.kind);
        let min_size = match req.kind {
            DiskRoleKind::Boot => self
                .hints
                .min_boot_disk_bytes
                .unwrap_or(super::DEFAULT_MIN_BOOT_DISK),
            _ => super::MIN_DATA_DISK,
        };
        let mut erases = holdings(d);
        let interrupted = erases.is_some() && interrupted_install(d, marker);
        if interrupted {
            erases = Some(interrupted_description(marker));
        }
        if d.size_bytes < min_size {
            self.problems.push(
                Some(req.pos),
                format!("{rpath}.disks"),
                format!(
                    "{} is too small for {}: it needs at least {}",
                    d.describe(),
                    req.kind,
                    crate::inventory::human_bytes(min_size)
                ),
                Some("choose a larger disk".into()),
            );
        }
        if d.is_mounted() {
            self.problems.push(
                Some(req.pos),
                rpath.clone(),
                format!("{} is mounted on the live system", d.describe()),
                Some(
                    "unmount it (or pick another disk); the installer never writes a mounted disk"
                        .into(),
                ),
            );
        }
        for usage in d.in_use() {
            self.problems.push(
                Some(req.pos),
                rpath.clone(),
                format!("{}: {usage}", d.describe()),
                Some(
                    "stop what uses it first (swapoff, mdadm --stop, dmsetup remove), or pick \
                     another disk"
                        .into(),
                ),
            );
        }
        if let Some(what) = &erases {
            if !role.wipe && !interrupted {
                self.problems.push(
                    Some(req.pos),
                    format!("{rpath}.wipe"),
                    format!("{} holds {what}", d.describe()),
                    Some(format!(
                        "to erase it, add `wipe = true` to [node.{}] of node {}; otherwise \
                         choose another disk",
                        req.kind, self.node.name
                    )),
                );
            }
        }
        // never_target() already excluded disks without by-id links.
        let by_id = d.preferred_by_id()?;
        Some(Picked {
            role: req.kind,
            index,
            layout,
            disk: d,
            by_id: by_id.to_string(),
            erases,
        })
    }
}

fn list_disks(inv: &Inventory) -> String {
    let v: Vec<String> = inv
        .disks
        .iter()
        .filter(|d| never_target(d).is_none())
        .map(|d| d.describe())
        .collect();
    if v.is_empty() {
        "none that can be installed to".into()
    } else {
        v.join("; ")
    }
}

/// Every probed disk the plan does not write, with the reason.
pub(crate) fn untouched(inv: &Inventory, picked: &[Picked<'_>]) -> Vec<Untouched> {
    inv.disks
        .iter()
        .filter(|d| !picked.iter().any(|p| std::ptr::eq(p.disk, *d)))
        .map(|d| Untouched {
            disk: d.describe(),
            reason: never_target(d).unwrap_or_else(|| match holdings(d) {
                Some(h) => format!("not named by the site file (holds {h}; left as it is)"),
                None => "not named by the site file".into(),
            }),
        })
        .collect()
}
