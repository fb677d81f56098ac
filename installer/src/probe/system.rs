//! CPU, memory, firmware, DMI and the kernel command line.

use super::parse::{attr, impossible};
use super::root::SysRoot;
use crate::inventory::{Cpu, Dmi, Firmware, FirmwareMode, Memory};
use std::collections::BTreeSet;

/// More logical CPUs than Linux supports (`NR_CPUS` is at most 8192 today): a `cpuinfo` that
/// says so is damaged.
const MAX_CPUS: u32 = 1 << 16;

/// `SecureBoot` variable of the EFI global-variable GUID.
const SECURE_BOOT_VAR: &str =
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

pub(crate) fn probe_cpu(root: &dyn SysRoot) -> anyhow::Result<Cpu> {
    let text = root.read_to_string("proc/cpuinfo").unwrap_or_default();
    let mut cpu = Cpu::default();
    let mut threads = 0u32;
    let mut cores: BTreeSet<(String, String)> = BTreeSet::new();
    let mut sockets: BTreeSet<String> = BTreeSet::new();
    let mut cores_per_socket = 0u32;
    // One block per logical CPU; `physical id`/`core id` come before the flags, so track the
    // current block's ids.
    let mut phys = String::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => {
                threads += 1;
                phys.clear();
            }
            "model name" if cpu.model.is_empty() => cpu.model = value.to_string(),
            "vendor_id" if cpu.vendor.is_empty() => cpu.vendor = value.to_string(),
            "physical id" => {
                phys = value.to_string();
                sockets.insert(phys.clone());
            }
            "core id" => {
                cores.insert((phys.clone(), value.to_string()));
            }
            "cpu cores" => {
                cores_per_socket = match value.parse::<u32>() {
                    Ok(n) if n <= MAX_CPUS => n,
                    _ => {
                        return Err(impossible(
                            root,
                            "proc/cpuinfo",
                            &format!("cpu cores: {value}"),
                            "no processor",
                        ))
                    }
                }
            }
            "flags" if cpu.virtualization.is_none() => {
                let flags: Vec<&str> = value.split_whitespace().collect();
                cpu.virtualization = ["vmx", "svm"]
                    .into_iter()
                    .find(|f| flags.contains(f))
                    .map(str::to_string);
            }
            _ => {}
        }
    }
    cpu.threads = threads;
    let socket_count = u32::try_from(sockets.len().max(1)).unwrap_or(1);
    cpu.cores = if !cores.is_empty() {
        u32::try_from(cores.len()).unwrap_or(u32::MAX)
    } else if cores_per_socket > 0 {
        cores_per_socket
            .checked_mul(socket_count)
            .filter(|n| *n <= MAX_CPUS)
            .ok_or_else(|| {
                impossible(
                    root,
                    "proc/cpuinfo",
                    &format!("{cores_per_socket} cores in each of {socket_count} sockets"),
                    "no machine",
                )
            })?
    } else {
        threads
    };
    cpu.iommu = root
        .read_dir("sys/class/iommu")
        .is_ok_and(|e| !e.is_empty());
    Ok(cpu)
}

pub(crate) fn probe_memory(root: &dyn SysRoot) -> anyhow::Result<Memory> {
    let text = root.read_to_string("proc/meminfo").unwrap_or_default();
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let total_bytes = kb.checked_mul(1024).ok_or_else(|| {
        impossible(
            root,
            "proc/meminfo",
            &format!("MemTotal: {kb} kB"),
            "no machine",
        )
    })?;
    Ok(Memory { total_bytes })
}

pub(crate) fn probe_firmware(root: &dyn SysRoot) -> Firmware {
    if !root.is_dir("sys/firmware/efi") {
        return Firmware {
            mode: FirmwareMode::Bios,
            secure_boot: None,
        };
    }
    // efivarfs: 4 bytes of attributes, then the 1-byte value.
    let secure_boot = root
        .read(SECURE_BOOT_VAR)
        .ok()
        .and_then(|b| b.get(4).copied())
        .map(|v| v == 1);
    Firmware {
        mode: FirmwareMode::Uefi,
        secure_boot,
    }
}

pub(crate) fn probe_dmi(root: &dyn SysRoot) -> Dmi {
    // product_serial is root-only on a live system: unreadable is as good as blank.
    let f = |name: &str| attr(root, &format!("sys/class/dmi/id/{name}")).unwrap_or_default();
    Dmi {
        sys_vendor: f("sys_vendor"),
        product_name: f("product_name"),
        product_version: f("product_version"),
        product_serial: f("product_serial"),
        board_vendor: f("board_vendor"),
        board_name: f("board_name"),
        bios_version: f("bios_version"),
    }
}

pub(crate) fn probe_cmdline(root: &dyn SysRoot) -> String {
    attr(root, "proc/cmdline").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::MemRoot;

    #[test]
    fn cpu_topology_from_ids_and_from_cpu_cores() {
        let block = |n: u32, phys: u32, core: u32| {
            format!(
                "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) N100\n\
                 physical id\t: {phys}\ncore id\t\t: {core}\ncpu cores\t: 2\nflags\t\t: fpu vmx sse\n\n"
            )
        };
        // 2 sockets x 2 cores x 2 threads.
        let mut text = String::new();
        for (n, (p, c)) in [
            (0, 0),
            (0, 0),
            (0, 1),
            (0, 1),
            (1, 0),
            (1, 0),
            (1, 1),
            (1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            text.push_str(&block(u32::try_from(n).unwrap_or(0), p, c));
        }
        let mut root = MemRoot::new("t");
        root.insert_file("proc/cpuinfo", text);
        let cpu = probe_cpu(&root).expect("cpu");
        assert_eq!((cpu.threads, cpu.cores), (8, 4));
        assert_eq!(cpu.virtualization.as_deref(), Some("vmx"));
        assert_eq!(cpu.model, "Intel(R) N100");
        assert!(!cpu.iommu);

        // Without core ids: `cpu cores` x sockets.
        let mut root = MemRoot::new("t");
        root.insert_file(
            "proc/cpuinfo",
            "processor : 0\ncpu cores : 4\nflags : svm\n\nprocessor : 1\ncpu cores : 4\n",
        );
        root.insert_dir("sys/class/iommu/dmar0");
        let cpu = probe_cpu(&root).expect("cpu");
        assert_eq!((cpu.threads, cpu.cores), (2, 4));
        assert_eq!(cpu.virtualization.as_deref(), Some("svm"));
        assert!(cpu.iommu);
    }

    #[test]
    fn secure_boot_variable() {
        let mut root = MemRoot::new("t");
        root.insert_file(SECURE_BOOT_VAR, vec![6, 0, 0, 0, 1]);
        assert_eq!(probe_firmware(&root).secure_boot, Some(true));
        root.insert_file(SECURE_BOOT_VAR, vec![6, 0, 0, 0, 0]);
        assert_eq!(probe_firmware(&root).mode, FirmwareMode::Uefi);
        assert_eq!(probe_firmware(&root).secure_boot, Some(false));
        assert_eq!(probe_firmware(&MemRoot::new("t")).mode, FirmwareMode::Bios);
    }

    #[test]
    fn impossible_counts_are_errors_naming_the_file_not_wrapped_values() {
        // 2^54 kB is 2^64 bytes: one more than fits.
        let mut root = MemRoot::new("t");
        root.insert_file("proc/meminfo", format!("MemTotal: {} kB\n", 1u64 << 54));
        let e = probe_memory(&root).unwrap_err().to_string();
        assert!(e.contains("proc/meminfo") && e.contains("MemTotal"), "{e}");
        root.insert_file("proc/meminfo", "MemTotal: 16000000 kB\n");
        assert_eq!(
            probe_memory(&root).expect("memory").total_bytes,
            16_384_000_000
        );

        let mut root = MemRoot::new("t");
        root.insert_file(
            "proc/cpuinfo",
            "processor : 0\nphysical id : 0\ncpu cores : 2147483647\n\n\
             processor : 1\nphysical id : 1\ncpu cores : 2147483647\n",
        );
        let e = probe_cpu(&root).unwrap_err().to_string();
        assert!(e.contains("proc/cpuinfo") && e.contains("cpu cores"), "{e}");
    }
}
