//! The disk roles of a node (`[node.boot]`, `[node.tank1]`, `[node.tank2]`): disk selectors,
//! their count against the layout, and the layout default.

use crate::build::{str_of, Builder};
use crate::glob::is_glob;
use crate::model::*;
use crate::walk::{Tbl, Val};

impl Builder<'_> {
    /// A `[node.boot]`, `[node.tank1]` or `[node.tank2]` table.
    pub(crate) fn role(&mut self, t: &Tbl, kind: &str, has_profile: bool) -> DiskRole {
        let mut disks = Vec::new();
        let mut total: u32 = 0;
        let mut any_bad = false;
        if let Some(list) = t.list("disks") {
            if list.is_empty() {
                self.diags.err_hint(
                    t.pos_of("disks"),
                    &t.path_of("disks"),
                    "empty disk list",
                    "leave `disks` out to take the profile's hints, or list at least one selector",
                );
            }
            for (i, item) in list.iter().enumerate() {
                let path = format!("{}.disks[{i}]", t.path);
                match &item.val {
                    Some(Val::Table(sel)) => match self.selector(sel, &path) {
                        Some((s, n)) => {
                            total = total.saturating_add(n);
                            disks.push(s);
                        }
                        None => any_bad = true,
                    },
                    _ => any_bad = true,
                }
            }
        } else if t.has("disks") || self.meta.bad(&t.path_of("disks")) {
            any_bad = true;
        } else if !has_profile {
            let what = if kind == "boot" {
                "no boot disks"
            } else {
                "no disks"
            };
            self.diags.err_hint(
                t.pos,
                &t.path_of("disks"),
                format!("{what}, and the node has no hardware profile to take them from"),
                format!("add disks = [{{ ... }}] to [node.{kind}], or set the node's profile"),
            );
            any_bad = true;
        }
        let layout_given = t.str("layout").map(|l| match l {
            "mirror" => Layout::Mirror,
            "raidz1" => Layout::Raidz1,
            "raidz2" => Layout::Raidz2,
            _ => Layout::Single,
        });
        let layout =
            match layout_given {
                Some(l) => l,
                None if total >= 3 && !any_bad => {
                    self.diags.err_hint(t.pos_of("disks"), &t.path_of("layout"),
                    format!("{total} disks and no layout"),
                    "say layout = \"mirror\", \"raidz1\" or \"raidz2\" (3+ disks have no default)");
                    Layout::Mirror
                }
                None if total == 2 => Layout::Mirror,
                None => Layout::Single,
            };
        if any_bad || self.meta.bad(&t.path_of("layout")) {
            self.meta.poison(&t.path_of("layout"));
        } else if disks.is_empty() {
            if layout_given.is_some() {
                self.diags.warn(
                    t.pos_of("layout"),
                    &t.path_of("layout"),
                    "layout is ignored when the disks come from the profile's hints",
                );
            }
        } else {
            self.check_layout(t, kind, layout, total);
        }
        DiskRole {
            layout,
            disks,
            wipe: t.bool("wipe").unwrap_or(false),
            pos: t.pos,
        }
    }

    fn check_layout(&mut self, t: &Tbl, kind: &str, layout: Layout, total: u32) {
        let (pos, path) = (t.pos_of("layout"), t.path_of("layout"));
        let n = total as usize;
        if n < layout.min_disks() {
            let hint = if n == 1 {
                "add a second disk, or use layout = \"single\""
            } else {
                "add disks, or choose a smaller layout"
            };
            self.diags.err_hint(pos, &path,
                format!("layout {layout} needs at least {} disks, but {n} {} given (counting each filter's count)",
                    layout.min_disks(), if n == 1 { "is" } else { "are" }), hint);
        } else if layout == Layout::Single && n > 1 {
            let msg = format!(
                "{n} disks with layout single make a stripe: one failed disk loses the pool"
            );
            if kind == "tank2" {
                self.diags.warn_hint(
                    pos,
                    &path,
                    msg,
                    "use layout = \"mirror\" or \"raidz1\" for redundancy",
                );
            } else {
                self.diags.err_hint(
                    pos,
                    &path,
                    msg,
                    "use layout = \"mirror\" (or raidz1/raidz2)",
                );
            }
        } else if kind == "boot" && n > 2 {
            self.diags.err(
                pos,
                &path,
                format!("the boot disks are one disk or a mirror of two, not {n}"),
            );
        }
    }

    /// One disk selector; returns it with the number of disks it stands for.
    fn selector(&mut self, t: &Tbl, path: &str) -> Option<(DiskSelector, u32)> {
        if self.meta.bad(path) {
            return None;
        }
        const FILTERS: [&str; 7] = [
            "model",
            "vendor",
            "transport",
            "min-size",
            "max-size",
            "rotational",
            "count",
        ];
        let filters: Vec<&str> = FILTERS.into_iter().filter(|k| t.has(k)).collect();
        let serial = t.str("serial");
        let serial_is_filter =
            serial.is_some_and(is_glob) || (serial.is_some() && !filters.is_empty());
        let mut ids: Vec<&str> = ["by-id", "wwn"].into_iter().filter(|k| t.has(k)).collect();
        if serial.is_some() && !serial_is_filter {
            ids.push("serial");
        }
        let fail = |b: &mut Self, msg: String, hint: &str| {
            b.diags.err_hint(t.pos, path, msg, hint);
            b.meta.poison(path);
            None
        };
        if ids.len() > 1 {
            return fail(
                self,
                format!(
                    "a selector names a disk one way: {} together",
                    ids.join(" and ")
                ),
                "keep one of them",
            );
        }
        if let Some(&id) = ids.first() {
            if !filters.is_empty() {
                let msg = format!(
                    "`{id}` names one disk exactly; it cannot be combined with filters ({})",
                    filters.join(", ")
                );
                return fail(self, msg, "use either the identity or the filters");
            }
            let v = str_of(t, id);
            let sel = match id {
                "by-id" => DiskSelector::ById(v),
                "wwn" => DiskSelector::Wwn(v),
                _ => DiskSelector::Serial(v),
            };
            return Some((sel, 1));
        }
        if filters.is_empty() && !serial_is_filter {
            return fail(
                self,
                "empty disk selector".into(),
                crate::schema::KERNEL_NAME_HINT,
            );
        }
        let f = DiskFilter {
            model: t.str("model").map(String::from),
            serial: serial.map(String::from),
            vendor: t.str("vendor").map(String::from),
            transport: t.str("transport").map(String::from),
            min_size: t.size("min-size"),
            max_size: t.size("max-size"),
            rotational: t.bool("rotational"),
            count: t
                .int("count")
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
        };
        if let (Some(lo), Some(hi)) = (f.min_size, f.max_size) {
            if lo > hi {
                self.diags.err(
                    t.pos_of("max-size"),
                    &t.path_of("max-size"),
                    format!(
                        "max-size {} is smaller than min-size {}",
                        crate::size::format_size(hi),
                        crate::size::format_size(lo)
                    ),
                );
            }
        }
        let n = f.count;
        Some((DiskSelector::Filter(f), n))
    }
}
