//! The hardware probe: reads a machine from a root directory (default `/`) into an
//! [`Inventory`].
//!
//! Sources: sysfs (`sys/block`, `sys/class/net`, `sys/class/dmi/id`, `sys/firmware/efi`),
//! procfs (`proc/cpuinfo`, `proc/meminfo`, `proc/cmdline`, `proc/self/mountinfo`), the udev
//! database (`run/udev/data`) and `dev/disk/by-id`. The probe only reads files, through
//! [`SysRoot`]: it never opens a block device and never runs a command, so a captured root
//! ([`capture`]) or an embedded fixture ([`embedded_fixture`]) replays a machine exactly.
//! Missing files are normal (odd hardware, trimmed fixtures) and give `None` or empty values.
//!
//! The JSON form of the result is documented in `docs/probe-json.md`.

mod boot;
mod bundle;
mod capture;
mod disks;
mod embedded;
mod nics;
mod parse;
mod render;
mod root;
mod system;

pub use capture::{capture, Access, CaptureReport, RecordingRoot};
pub use embedded::{embedded_fixture, embedded_fixture_ids};
pub use render::render_human;
pub use root::{DirRoot, MemRoot, SysRoot};

use crate::inventory::{Inventory, INVENTORY_SCHEMA};
use anyhow::bail;
use std::path::Path;

/// Probes the machine whose root directory is `root`.
///
/// Fails only when `root` is not a Linux root at all (no `sys/block`) or `sys/block` cannot be
/// listed; everything else degrades to empty values.
pub fn probe(root: &dyn SysRoot) -> anyhow::Result<Inventory> {
    if !root.is_dir("sys/block") {
        bail!(
            "{} is not a Linux root: {} is missing (give the directory that holds sys/, proc/ \
             and run/, e.g. / or a capture)",
            root.describe(),
            root.display_path("sys/block")
        );
    }
    let cmdline = system::probe_cmdline(root);
    let mounts = parse::parse_mountinfo(
        &root
            .read_to_string("proc/self/mountinfo")
            .unwrap_or_default(),
    );
    Ok(Inventory {
        schema: INVENTORY_SCHEMA,
        dmi: system::probe_dmi(root),
        cpu: system::probe_cpu(root)?,
        memory: system::probe_memory(root)?,
        firmware: system::probe_firmware(root),
        disks: disks::probe_disks(root, &mounts, &cmdline)?,
        nics: nics::probe_nics(root),
        cmdline,
    })
}

/// Probes the root directory at `path` (`/` for the running machine).
pub fn probe_root(path: &Path) -> anyhow::Result<Inventory> {
    probe(&DirRoot::new(path))
}

/// Every interface's link state under `root`, sorted by name: the TUI polls this to follow
/// the cable the user plugs in.
pub fn probe_links(root: &dyn SysRoot) -> Vec<(String, crate::inventory::LinkState)> {
    nics::probe_nics(root)
        .into_iter()
        .map(|n| (n.name, n.link))
        .collect()
}
