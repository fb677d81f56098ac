//! The plan as a human reads it: every disk written with its partitions, every disk left alone
//! and why, pools, system settings and steps. Plain text, no colour, so it reads the same on a
//! serial console, in a log and in the TUI's summary.

use super::{DiskKey, Plan};
use crate::inventory::human_bytes;
use std::fmt::Write;

/// Binary size for partitions (`512.0 MiB`, `237.5 GiB`), which is how partitioning tools count.
fn ibytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Renders the plan for people.
pub fn render_human(p: &Plan) -> String {
    let mut o = String::new();
    header(&mut o, p);
    disks(&mut o, p);
    untouched(&mut o, p);
    pools(&mut o, p);
    system(&mut o, p);
    steps(&mut o, p);
    o
}

// Writing to a String cannot fail; the results below are ignored on purpose.

/// The node, how it was recognised, the machine.
fn header(o: &mut String, p: &Plan) {
    let _ = writeln!(
        o,
        "TAPPaaS install plan: site {}, node {} ({}, node {}){}",
        p.site,
        p.node.name,
        p.node.role,
        p.node.id,
        if p.node.replace {
            ", REPLACES the failed node of that name"
        } else {
            ""
        }
    );
    let _ = writeln!(o, "  recognised by: {}", p.node.identified_by);
    let _ = writeln!(
        o,
        "  machine: {}; {}; {} RAM; {} firmware",
        if p.machine.product.is_empty() {
            "unknown model"
        } else {
            &p.machine.product
        },
        if p.machine.cpu.is_empty() {
            "unknown CPU"
        } else {
            &p.machine.cpu
        },
        ibytes(p.machine.memory_bytes),
        match p.machine.firmware {
            crate::inventory::FirmwareMode::Uefi => "UEFI",
            crate::inventory::FirmwareMode::Bios => "BIOS",
        }
    );
    if let Some(prof) = &p.node.profile {
        let _ = writeln!(o, "  hardware profile: {prof}");
    }
}

/// Every disk written, with what it loses and its partitions.
fn disks(o: &mut String, p: &Plan) {
    let _ = writeln!(o, "\nDisks that will be WRITTEN ({}):", p.disks.len());
    for d in &p.disks {
        let _ = writeln!(o, "  [{}] {}", DiskKey::of(d), d.disk);
        let _ = writeln!(o, "      {}", d.disk.by_id);
        match &d.erases {
            Some(what) => {
                let _ = writeln!(o, "      !! ERASES: {what} (wipe = true given)");
            }
            None => {
                let _ = writeln!(o, "      holds nothing; stale signatures are cleared");
            }
        }
        let _ = writeln!(
            o,
            "      {:>2}  {:>12}  {:>12}  {:<10}  label",
            "#", "start", "size", "type"
        );
        for part in &d.partitions {
            let _ = writeln!(
                o,
                "      {:>2}  {:>12}  {:>12}  {:<10}  {}",
                part.number,
                ibytes(part.start_bytes),
                ibytes(part.size_bytes),
                part.kind.as_str(),
                part.label
            );
        }
    }
}

/// Every disk left alone, and why.
fn untouched(o: &mut String, p: &Plan) {
    let _ = writeln!(
        o,
        "\nDisks that will NOT be touched ({}):",
        p.untouched.len()
    );
    if p.untouched.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for u in &p.untouched {
        let _ = writeln!(o, "  {}: {}", u.disk, u.reason);
    }
}

/// The pools, their vdevs and properties.
fn pools(o: &mut String, p: &Plan) {
    let _ = writeln!(o, "\nPools:");
    for pool in &p.pools {
        let _ = writeln!(
            o,
            "  {} on {} disks: about {} usable",
            pool.name,
            pool.role,
            human_bytes(pool.usable_bytes)
        );
        for v in &pool.vdevs {
            let _ = writeln!(o, "    {}:", v.layout);
            for m in &v.members {
                let _ = writeln!(o, "      {m}");
            }
        }
        let props: Vec<String> = pool
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let fs: Vec<String> = pool
            .fs_properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(o, "    pool properties: {}", props.join(" "));
        let _ = writeln!(o, "    dataset properties: {}", fs.join(" "));
        if !pool.datasets.is_empty() {
            let _ = writeln!(o, "    datasets: {}", pool.datasets.join(", "));
        }
    }
}

/// Host name, addresses, bridges, cluster, locale.
fn system(o: &mut String, p: &Plan) {
    let s = &p.system;
    let _ = writeln!(o, "\nSystem:");
    let _ = writeln!(o, "  hostname {} ({})", s.hostname, s.fqdn);
    let _ = writeln!(
        o,
        "  address {} via {}, DNS {}",
        s.address,
        s.gateway,
        s.dns
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for b in &s.bridges {
        let _ = writeln!(
            o,
            "  bridge {}: port {} ({}){}{}",
            b.name,
            b.port,
            b.port_mac,
            if b.vlan_aware {
                ", VLAN-aware 2-4094"
            } else {
                ""
            },
            b.address
                .as_ref()
                .map(|a| format!(", {a}"))
                .unwrap_or_else(|| ", no host address".into())
        );
    }
    let _ = writeln!(
        o,
        "  cluster {}: {} (corosync link0 {})",
        s.cluster.name, s.cluster.action, s.cluster.link0
    );
    let _ = writeln!(
        o,
        "  timezone {}, keyboard {}, {} SSH key{} for root",
        s.timezone,
        s.keyboard,
        s.ssh_keys,
        if s.ssh_keys == 1 { "" } else { "s" }
    );
}

/// The steps in order, then the warnings.
fn steps(o: &mut String, p: &Plan) {
    let _ = writeln!(o, "\nSteps:");
    for (i, st) in p.steps.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {:>2}. {}{}",
            i + 1,
            if st.destructive {
                "[destroys data] "
            } else {
                ""
            },
            st.description
        );
    }
    if !p.warnings.is_empty() {
        let _ = writeln!(o, "\nWarnings:");
        for w in &p.warnings {
            let _ = writeln!(o, "  ! {w}");
        }
    }
}
