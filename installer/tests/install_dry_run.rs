//! A dry run of the golden qemu-lab primary through `install::execute`: every effect, in the
//! order a careful installer must have them, no secret anywhere, boot entries after every
//! write that makes the system.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod golden;
mod install_common;

use install_common::*;
use std::path::Path;
use tappaas_installer::exec::Effect;
use tappaas_installer::install::{self, INSTALL_LOG_PATH, PROVENANCE_PATH};
use tappaas_installer::progress::{Event, Level, Outcome};

fn position(effects: &[String], what: &str, pred: impl Fn(&str) -> bool) -> Vec<usize> {
    let v: Vec<usize> = effects
        .iter()
        .enumerate()
        .filter(|(_, e)| pred(e))
        .map(|(i, _)| i)
        .collect();
    assert!(
        !v.is_empty(),
        "no effect for {what}:\n{}",
        effects.join("\n")
    );
    v
}

#[test]
fn dry_run_of_the_primary_orders_every_effect() {
    let lab = lab(2);
    let host = install::dry_run_host(&lab.plan, &lab.ctx);
    let mut sink = Collect::default();
    let report = install::execute(&lab.plan, &lab.site, &lab.src, &lab.ctx, &host, &mut sink)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", host.render()));
    let target = lab.ctx.target.display().to_string();
    let effects: Vec<String> = host.effects().iter().map(ToString::to_string).collect();
    let text = host.render();

    // Every step ran (none was skipped: the dry run assumes a complete Proxmox root).
    let ids: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    let planned: Vec<&str> = lab.plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, planned);
    assert!(
        report.steps.iter().all(|s| s.outcome == Outcome::Done),
        "{:?}",
        report.steps
    );

    let wipe = position(&effects, "wipe", |e| {
        e.contains(" of zeros to /dev/disk/by-id/")
    });
    let gpt = position(&effects, "GPT", |e| {
        e.starts_with("write ") && !e.contains("of zeros") && e.contains("/dev/disk/by-id/")
    });
    let hostid = position(&effects, "hostid", |e| e == "run zgenhostid -f 00c0ffee");
    let create = position(&effects, "zpool create", |e| {
        e.starts_with("run zpool create")
    });
    let mkfs = position(&effects, "mkfs.vfat", |e| e.starts_with("run mkfs.vfat"));
    let extract = position(&effects, "extraction", |e| e.starts_with("extract "));
    let dpkg = position(&effects, "dpkg", |e| e.contains("/usr/bin/dpkg "));
    let etc = format!("{target}/etc/");
    let config = position(&effects, "config writes", |e| {
        (e.starts_with("write file ")
            || e.starts_with("link ")
            || e.starts_with("create directory"))
            && e.contains(&etc)
    });
    let boot = position(&effects, "bootloader", |e| {
        e.contains("proxmox-boot-tool init")
    });
    let export = position(&effects, "export", |e| e.starts_with("run zpool export"));

    // After the pools are exported, the last writes drop the install marker from the
    // partition names: on every planned disk, nothing but its two GPT copies.
    let last_export = *export.last().unwrap();
    let (gpt, renames): (Vec<usize>, Vec<usize>) = gpt.into_iter().partition(|&i| i < last_export);
    for d in &lab.plan.disks {
        assert!(
            renames.iter().any(|&i| effects[i].contains(&d.disk.by_id)),
            "no rename on {}: {text}",
            d.disk.by_id
        );
    }
    assert!(wipe[0] < gpt[0], "{text}");
    assert!(hostid[0] < create[0], "{text}");
    assert!(
        gpt.last() < create.first(),
        "every GPT before any pool: {text}"
    );
    assert!(create.last() < mkfs.first(), "{text}");
    assert!(mkfs.last() < extract.first(), "{text}");
    assert!(extract.last() < dpkg.first(), "{text}");
    assert!(
        dpkg.last() < config.first(),
        "files after dpkg --configure: {text}"
    );
    assert!(export.first() > boot.last(), "{text}");
    assert_eq!(create.len(), 3, "{text}");
    assert_eq!(
        export.len(),
        3,
        "every pool exported, once, data pools first: {text}"
    );
    assert_eq!(effects[export[2]], "run zpool export rpool", "{text}");
    assert!(effects[create[1]].contains(&format!("-R {target} tank1 mirror")));

    // Boot entries after every write that makes the system; only the provenance file and the
    // install log (finish) come after them.
    let last_boot = *boot.last().unwrap();
    for (i, e) in host.effects().iter().enumerate().skip(last_boot) {
        match e {
            Effect::WriteFile { path, .. } => assert!(
                path.ends_with(PROVENANCE_PATH.trim_start_matches('/'))
                    || path.ends_with(INSTALL_LOG_PATH.trim_start_matches('/')),
                "{i}: {e} after the boot entries"
            ),
            Effect::WriteDisk { .. } if i > last_export => {}
            Effect::WriteDisk { .. }
            | Effect::CreateDir { .. }
            | Effect::Symlink { .. }
            | Effect::RemoveFile { .. }
            | Effect::Extract { .. } => panic!("{i}: {e} after the boot entries:\n{text}"),
            _ => {}
        }
    }
    // The chroot file systems are unmounted before the pools are exported.
    let umount = position(&effects, "umount", |e| e.starts_with("run umount"));
    assert!(umount.last() < export.first(), "{text}");
    assert!(text.contains(&format!(
        "run mount -t efivarfs efivarfs {target}/sys/firmware/efi/efivars"
    )));

    // rpool: created with its root mounted at TARGET/rpool, datasets unmounted, then the root
    // file system on the target first.
    let zfs_lines: Vec<&str> = effects
        .iter()
        .map(String::as_str)
        .filter(|e| e.starts_with("run zfs unmount") || e.starts_with("run zfs mount"))
        .take(5)
        .collect();
    assert_eq!(
        zfs_lines,
        [
            "run zfs unmount rpool",
            "run zfs mount rpool/ROOT/pve-1",
            "run zfs mount rpool",
            "run zfs mount rpool/data",
            "run zfs mount rpool/var-lib-vz",
        ],
        "{text}"
    );
    assert!(text.contains("run zfs create -u -o mountpoint=/ rpool/ROOT/pve-1"));

    // The packages: unpacked from the bind-mounted payload with service starts blocked.
    let policy = position(&effects, "policy-rc.d", |e| {
        e.contains("usr/sbin/policy-rc.d")
    });
    assert!(policy[0] < dpkg[0] && dpkg.last() < policy.last(), "{text}");
    assert!(text.contains(&format!(
        "run chroot {target} /usr/bin/dpkg --force-depends --force-confold --unpack \
         /run/tappaas-payload/pkg0.deb /run/tappaas-payload/pkg1.deb"
    )));

    // Secrets: the password hash only on a secret stdin, never in effects or events.
    assert!(
        text.contains(&format!(
            "run chroot {target} /usr/sbin/chpasswd -e (with secret stdin)"
        )),
        "{text}"
    );
    let json = sink.json();
    for s in [golden::HASH, "tappaasgolden"] {
        assert!(!text.contains(s), "secret in the effects");
        assert!(!json.contains(s), "secret in the events");
    }
    assert!(
        json.contains("wrote /etc/tappaas/site.toml (secret, "),
        "{json}"
    );

    // ESPs, boot entries on UEFI without `grub`, bootfs, sync.
    assert!(text.contains("run mkfs.vfat -F 32 -n ESP0 /dev/disk/by-id/virtio-boot0-part2"));
    assert!(text.contains(&format!(
        "run chroot {target} /usr/sbin/proxmox-boot-tool init /dev/disk/by-id/virtio-boot0-part2\n"
    )));
    assert!(text.contains("run zfs set sync=standard rpool"));
    assert!(text.contains("run zpool set bootfs=rpool/ROOT/pve-1 rpool"));

    // The dry run touched nothing.
    assert!(!lab.ctx.target.exists());
    assert!(!Path::new("/dev/disk/by-id/virtio-boot0").exists());
}

#[test]
fn a_root_image_without_proxmox_tools_skips_with_notices() {
    let lab = lab(0);
    // The stand-in: a small Debian with dpkg, chpasswd and ssh-keygen, nothing of Proxmox.
    let t = &lab.ctx.target;
    let host = tappaas_installer::exec::DryRunHost::for_plan(&lab.plan)
        .with_paths(["usr/bin/dpkg", "usr/sbin/chpasswd", "usr/bin/ssh-keygen"].map(|p| t.join(p)))
        .respond_with({
            let sim = install::SimulatedZfs::new(&lab.plan, t);
            move |c| sim.answer(c)
        });
    let mut sink = Collect::default();
    let report = install::execute(&lab.plan, &lab.site, &lab.src, &lab.ctx, &host, &mut sink)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let notices: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Log {
                level: Level::Notice,
                message,
                step,
            } => Some(format!("{}: {message}", step.unwrap_or_default())),
            _ => None,
        })
        .collect();
    for want in [
        "packages: no Proxmox packages in the payload: skipped",
        "configure: the root image has no create_pmxcfs_db (the lab's stand-in)",
        "configure: the root image has no update-initramfs",
        "bootloader: the root image has no proxmox-boot-tool (the lab's stand-in): no boot entries",
    ] {
        assert!(
            notices.iter().any(|n| n.starts_with(want)),
            "missing notice {want:?} in {notices:#?}"
        );
    }
    let skipped: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Skipped { .. }))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(skipped, ["packages", "bootloader"]);
    let text = host.render();
    assert!(!text.contains("proxmox-boot-tool"));
    assert!(text.contains("/usr/bin/ssh-keygen -A"));
}
