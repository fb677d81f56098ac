//! Which disk holds the running live system. Nothing may ever plan to wipe it, so this errs on
//! the side of marking too much, and every mark says why.

use super::parse::{decode_hex_escapes, Mount};
use crate::inventory::{Content, Disk};
use std::collections::BTreeMap;

/// Facts about devices that the inventory does not carry but the boot-medium search needs.
#[derive(Debug, Default)]
pub(crate) struct BootFacts {
    /// Loop device -> its backing file (`sys/block/loopN/loop/backing_file`).
    pub loop_backing: BTreeMap<String, String>,
    /// Stacked device (dm, md, loop) -> the devices under it (`sys/block/X/slaves`).
    pub slaves: BTreeMap<String, Vec<String>>,
    /// Disk or partition -> `major:minor` (partitions do not carry it in the inventory).
    pub devnos: BTreeMap<String, String>,
}

/// Mount points that only the running system or its boot medium occupy.
const LIVE_MOUNTS: &[(&str, &str)] = &[
    ("/", "the running system's root"),
    ("/boot", "the running system's /boot"),
    ("/boot/efi", "the running system's ESP"),
    ("/efi", "the running system's ESP"),
    ("/iso", "the NixOS live medium"),
    ("/nix/.ro-store", "the NixOS live store"),
    ("/run/initramfs/live", "the dracut live medium"),
    ("/run/rootfsbase", "the dracut live root"),
    ("/run/live/medium", "the Debian live medium"),
    ("/lib/live/mount/medium", "the Debian live medium"),
    ("/cdrom", "the installer medium"),
    ("/run/archiso/bootmnt", "the Arch live medium"),
];

/// A filesystem named on the kernel command line: the live system looks for it to boot.
#[derive(Debug, PartialEq, Eq)]
enum NamedFs {
    Label(String),
    Uuid(String),
}

fn named_filesystems(cmdline: &str) -> Vec<(String, NamedFs)> {
    let mut out = Vec::new();
    for tok in cmdline.split_whitespace() {
        if tok == "--" {
            break; // the rest is for init, not the kernel
        }
        let Some((key, value)) = tok.split_once('=') else {
            continue;
        };
        let value = value.trim_matches('"');
        let named = match key {
            "archisolabel" => Some(NamedFs::Label(decode_hex_escapes(value))),
            "root" | "tappaas.medium" => {
                let v = value.strip_prefix("live:").unwrap_or(value);
                if let Some(l) = v
                    .strip_prefix("LABEL=")
                    .or_else(|| v.strip_prefix("CDLABEL="))
                    .or_else(|| v.strip_prefix("/dev/disk/by-label/"))
                {
                    Some(NamedFs::Label(decode_hex_escapes(l)))
                } else {
                    v.strip_prefix("UUID=")
                        .or_else(|| v.strip_prefix("/dev/disk/by-uuid/"))
                        .map(|u| NamedFs::Uuid(u.to_string()))
                }
            }
            _ => None,
        };
        if let Some(n) = named {
            out.push((tok.to_string(), n));
        }
    }
    out
}

/// A disk or partition, flattened for the search.
struct Dev<'a> {
    name: &'a str,
    devno: &'a str,
    content: &'a Content,
    mountpoints: &'a [String],
    disk: usize,
}

/// Kinds of evidence, most telling first: reasons are listed in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    LiveMount,
    IsoMounted,
    BackingFile,
    Stacked,
    Cmdline,
}

struct Search {
    reasons: BTreeMap<String, Vec<(Evidence, String)>>,
    todo: Vec<String>,
}

impl Search {
    fn add(&mut self, dev: &str, kind: Evidence, reason: String) {
        let list = self.reasons.entry(dev.to_string()).or_default();
        if list.is_empty() {
            self.todo.push(dev.to_string());
        }
        if !list.iter().any(|(_, r)| *r == reason) {
            list.push((kind, reason));
        }
    }
}

/// Sets `boot_medium` and `boot_medium_reason` on every disk that backs the live system.
pub(crate) fn mark_boot_media(
    disks: &mut [Disk],
    facts: &BootFacts,
    mounts: &[Mount],
    cmdline: &str,
) {
    let mut devs: Vec<Dev> = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        devs.push(Dev {
            name: &d.name,
            devno: facts.devnos.get(&d.name).map_or("", String::as_str),
            content: &d.content,
            mountpoints: &d.mountpoints,
            disk: i,
        });
        for p in &d.partitions {
            devs.push(Dev {
                name: &p.name,
                devno: facts.devnos.get(&p.name).map_or("", String::as_str),
                content: &p.content,
                mountpoints: &p.mountpoints,
                disk: i,
            });
        }
    }
    let named = named_filesystems(cmdline);
    let mut s = Search {
        reasons: BTreeMap::new(),
        todo: Vec::new(),
    };

    for d in &devs {
        for mp in d.mountpoints {
            if let Some((_, why)) = LIVE_MOUNTS.iter().find(|(m, _)| m == mp) {
                s.add(
                    d.name,
                    Evidence::LiveMount,
                    format!("{} is mounted at {mp} ({why})", d.name),
                );
            }
            let iso_mount = mounts
                .iter()
                .any(|m| m.mountpoint == *mp && m.devno == d.devno && m.fstype == "iso9660");
            if iso_mount || d.content.fs_type.as_deref() == Some("iso9660") {
                s.add(
                    d.name,
                    Evidence::IsoMounted,
                    format!("{} holds an iso9660 filesystem mounted at {mp}", d.name),
                );
            }
        }
        for (tok, n) in &named {
            let hit = match n {
                NamedFs::Label(l) => d.content.fs_label.as_deref() == Some(l.as_str()),
                NamedFs::Uuid(u) => d.content.fs_uuid.as_deref() == Some(u.as_str()),
            };
            if hit {
                s.add(
                    d.name,
                    Evidence::Cmdline,
                    format!(
                        "{} holds the filesystem named by {tok} on the kernel command line",
                        d.name
                    ),
                );
            }
        }
    }

    // Follow the live system down the stack: a loop device to the disk holding its backing
    // file (NixOS: /nix/.ro-store is loop0 on /iso/nix-store.squashfs), a dm/md device to the
    // devices under it.
    while let Some(dev) = s.todo.pop() {
        let Some(disk) = devs.iter().find(|d| d.name == dev).map(|d| d.disk) else {
            continue;
        };
        let disk_name = disks[disk].name.clone();
        if let Some(file) = facts.loop_backing.get(&disk_name) {
            if let Some(m) = mount_holding(mounts, file) {
                for d in devs
                    .iter()
                    .filter(|d| !d.devno.is_empty() && d.devno == m.devno)
                {
                    s.add(
                        d.name,
                        Evidence::BackingFile,
                        format!("{} holds {file}, the backing file of {disk_name}", d.name),
                    );
                }
            }
        }
        for under in facts.slaves.get(&disk_name).into_iter().flatten() {
            if devs.iter().any(|d| d.name == under) {
                s.add(
                    under,
                    Evidence::Stacked,
                    format!("{under} is under {disk_name}, which backs the live system"),
                );
            }
        }
    }

    for disk in disks.iter_mut() {
        let mut why: Vec<(Evidence, String)> = Vec::new();
        let names = std::iter::once(disk.name.as_str())
            .chain(disk.partitions.iter().map(|p| p.name.as_str()));
        for name in names {
            why.extend(s.reasons.get(name).into_iter().flatten().cloned());
        }
        // Stable: within a kind, the disk before its partitions.
        why.sort_by_key(|(kind, _)| *kind);
        let why: Vec<String> = why.into_iter().map(|(_, r)| r).collect();
        disk.boot_medium = !why.is_empty();
        disk.boot_medium_reason = (!why.is_empty()).then(|| why.join("; "));
    }
}

/// The mount whose mount point is the longest prefix of `file` (the last one if stacked).
fn mount_holding<'a>(mounts: &'a [Mount], file: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| {
            m.mountpoint == "/"
                || file == m.mountpoint
                || file
                    .strip_prefix(m.mountpoint.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|m| m.mountpoint.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Partition;

    fn mount(devno: &str, mountpoint: &str, fstype: &str) -> Mount {
        Mount {
            devno: devno.into(),
            mountpoint: mountpoint.into(),
            fstype: fstype.into(),
        }
    }

    #[test]
    fn command_line_names() {
        let named = named_filesystems(
            "quiet root=live:CDLABEL=Fedora-41 tappaas.medium=UUID=1234-ABCD \
             archisolabel=ARCH_2025 root=/dev/disk/by-label/My\\x20Disk -- root=LABEL=ignored",
        );
        let values: Vec<&NamedFs> = named.iter().map(|(_, n)| n).collect();
        assert_eq!(
            values,
            [
                &NamedFs::Label("Fedora-41".into()),
                &NamedFs::Uuid("1234-ABCD".into()),
                &NamedFs::Label("ARCH_2025".into()),
                &NamedFs::Label("My Disk".into()),
            ]
        );
    }

    #[test]
    fn root_on_device_mapper_marks_the_disk_below() {
        let mut disks = vec![
            Disk {
                name: "dm-0".into(),
                devno: "253:0".into(),
                mountpoints: vec!["/".into()],
                ..Disk::default()
            },
            Disk {
                name: "sda".into(),
                devno: "8:0".into(),
                partitions: vec![Partition {
                    name: "sda2".into(),
                    number: 2,
                    ..Partition::default()
                }],
                ..Disk::default()
            },
            Disk {
                name: "sdb".into(),
                devno: "8:16".into(),
                ..Disk::default()
            },
        ];
        let mut facts = BootFacts::default();
        facts.slaves.insert("dm-0".into(), vec!["sda2".into()]);
        facts.devnos.insert("dm-0".into(), "253:0".into());
        facts.devnos.insert("sda2".into(), "8:2".into());
        let mounts = [mount("253:0", "/", "ext4")];
        mark_boot_media(&mut disks, &facts, &mounts, "");
        assert!(disks[0].boot_medium);
        assert!(disks[1].boot_medium);
        assert_eq!(
            disks[1].boot_medium_reason.as_deref(),
            Some("sda2 is under dm-0, which backs the live system")
        );
        assert!(!disks[2].boot_medium && disks[2].boot_medium_reason.is_none());
    }

    #[test]
    fn iso_mounted_anywhere_and_most_telling_reason_first() {
        let mut disks = vec![Disk {
            name: "sdc".into(),
            devno: "8:32".into(),
            content: Content {
                fs_label: Some("LIVE".into()),
                ..Content::default()
            },
            partitions: vec![Partition {
                name: "sdc1".into(),
                number: 1,
                mountpoints: vec!["/media/stick".into()],
                ..Partition::default()
            }],
            ..Disk::default()
        }];
        let mut facts = BootFacts::default();
        facts.devnos.insert("sdc1".into(), "8:33".into());
        let mounts = [mount("8:33", "/media/stick", "iso9660")];
        mark_boot_media(&mut disks, &facts, &mounts, "root=LABEL=LIVE");
        assert_eq!(
            disks[0].boot_medium_reason.as_deref(),
            Some(
                "sdc1 holds an iso9660 filesystem mounted at /media/stick; sdc holds the \
                 filesystem named by root=LABEL=LIVE on the kernel command line"
            )
        );
    }
}
