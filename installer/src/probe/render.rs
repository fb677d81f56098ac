//! The human form of an [`Inventory`]: what `tappaas-installer probe` prints on a console.

use crate::inventory::{human_bytes, Content, Disk, FirmwareMode, Inventory, LinkState};
use std::fmt::Write;

/// A compact report: machine, CPU, RAM, firmware, disks, NICs.
pub fn render_human(inv: &Inventory) -> String {
    let mut out = String::new();
    let dmi = &inv.dmi;
    let machine = join_nonempty(&[&dmi.sys_vendor, &dmi.product_name, &dmi.product_version]);
    let board = join_nonempty(&[&dmi.board_vendor, &dmi.board_name]);
    let serial = shown(&dmi.product_serial);
    let mut extra = Vec::new();
    if !board.is_empty() && board != machine {
        extra.push(format!("board {board}"));
    }
    if !dmi.bios_version.is_empty() {
        extra.push(format!("BIOS {}", dmi.bios_version));
    }
    if !serial.is_empty() {
        extra.push(format!("serial {serial}"));
    }
    let machine = if machine.is_empty() {
        "unknown (no DMI data)".to_string()
    } else {
        machine
    };
    let _ = write!(out, "Machine   {machine}");
    if !extra.is_empty() {
        let _ = write!(out, " ({})", extra.join(", "));
    }
    out.push('\n');

    let cpu = &inv.cpu;
    let virt = match cpu.virtualization.as_deref() {
        Some("vmx") => "VT-x",
        Some("svm") => "AMD-V",
        Some(_) => "virtualization",
        None => "no VT-x/AMD-V",
    };
    let model = if cpu.model.is_empty() {
        "unknown"
    } else {
        &cpu.model
    };
    let _ = writeln!(
        out,
        "CPU       {model}: {} cores, {} threads, {virt}, IOMMU {}",
        cpu.cores,
        cpu.threads,
        if cpu.iommu { "on" } else { "off" }
    );
    if cpu.virtualization.is_none() {
        out.push_str(
            "          ! no hardware virtualization: Proxmox VE cannot run VMs; enable VT-x/AMD-V \
             (SVM) in the firmware setup\n",
        );
    }
    let _ = writeln!(out, "RAM       {}", human_bytes(inv.memory.total_bytes));
    let sb = match inv.firmware.secure_boot {
        Some(true) => "Secure Boot on",
        Some(false) => "Secure Boot off",
        None => "Secure Boot unknown",
    };
    let _ = match inv.firmware.mode {
        FirmwareMode::Uefi => writeln!(out, "Firmware  UEFI, {sb}"),
        FirmwareMode::Bios => writeln!(out, "Firmware  legacy BIOS"),
    };

    let _ = writeln!(out, "\nDisks ({})", inv.disks.len());
    let mut rows = vec![row(&[
        "NAME", "MODEL", "SERIAL", "SIZE", "BUS", "NOTE", "HOLDS",
    ])];
    let mut notes = Vec::new();
    for d in &inv.disks {
        rows.push(vec![
            d.name.clone(),
            d.model.clone().unwrap_or_else(|| "-".into()),
            d.serial.clone().unwrap_or_else(|| "-".into()),
            human_bytes(d.size_bytes),
            d.transport.as_str().to_string(),
            if d.boot_medium {
                "BOOT MEDIUM".into()
            } else {
                "-".into()
            },
            holds(d),
        ]);
        if let Some(why) = &d.boot_medium_reason {
            // The first reason is enough for a person; the JSON has them all.
            let mut reasons = why.split("; ");
            let first = reasons.next().unwrap_or_default();
            let more = match reasons.count() {
                0 => String::new(),
                1 => " (and 1 more reason)".into(),
                n => format!(" (and {n} more reasons)"),
            };
            notes.push(format!("  {} is the boot medium: {first}{more}", d.name));
        }
    }
    table(&mut out, &rows);
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }

    let (physical, virtual_): (Vec<_>, Vec<_>) = inv.nics.iter().partition(|n| n.physical);
    let _ = writeln!(out, "\nNICs ({} physical)", physical.len());
    let mut rows = vec![row(&["NAME", "MAC", "DRIVER", "PCI", "LINK", "SPEED"])];
    for n in &physical {
        rows.push(vec![
            n.name.clone(),
            n.mac.clone(),
            n.driver.clone().unwrap_or_else(|| "-".into()),
            n.pci.clone().unwrap_or_else(|| "-".into()),
            match n.link {
                LinkState::Up => "up",
                LinkState::Down => "down",
                LinkState::Unknown => "unknown",
            }
            .to_string(),
            n.speed_mbps
                .map_or_else(|| "-".into(), |s| format!("{s} Mb/s")),
        ]);
    }
    table(&mut out, &rows);
    if !virtual_.is_empty() {
        let names: Vec<&str> = virtual_.iter().map(|n| n.name.as_str()).collect();
        let _ = writeln!(out, "  virtual: {}", names.join(", "));
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Firmware vendors fill unused DMI fields with placeholders; a person is better served by
/// nothing.
fn shown(value: &str) -> &str {
    const PLACEHOLDERS: [&str; 9] = [
        "default string",
        "to be filled by o.e.m.",
        "system product name",
        "system manufacturer",
        "system version",
        "not applicable",
        "not specified",
        "none",
        "0123456789",
    ];
    if PLACEHOLDERS.contains(&value.to_ascii_lowercase().as_str()) {
        ""
    } else {
        value
    }
}

fn join_nonempty(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| shown(p))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Left-aligned columns two spaces apart, indented by two.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            let _ = write!(line, " {cell:<w$}", w = widths[c]);
            line.push(' ');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn fs_desc(c: &Content) -> Option<String> {
    let fs = c.fs_type.as_deref()?;
    Some(match &c.fs_label {
        Some(l) => format!("{fs} \"{l}\""),
        None => fs.to_string(),
    })
}

/// `gpt, 2 partitions (vfat, zfs_member "oldtank"), mounted`.
fn holds(d: &Disk) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(t) = &d.content.partition_table {
        parts.push(t.clone());
    }
    if let Some(f) = fs_desc(&d.content) {
        parts.push(f);
    }
    if !d.partitions.is_empty() {
        let inner: Vec<String> = d
            .partitions
            .iter()
            .filter_map(|p| fs_desc(&p.content))
            .collect();
        let n = d.partitions.len();
        let noun = if n == 1 { "partition" } else { "partitions" };
        if inner.is_empty() {
            parts.push(format!("{n} {noun}"));
        } else {
            parts.push(format!("{n} {noun} ({})", inner.join(", ")));
        }
    }
    if parts.is_empty() {
        parts.push("empty".into());
    }
    if d.is_mounted() {
        parts.push("mounted".into());
    }
    parts.join(", ")
}
