#!/bin/sh
# ============================================================================================
#  STAND-IN FOR THE INSTALLER. This script plays the part of `tappaas-installer install` until
#  the install engine exists; the harness appends it to the live initramfs as /lab/run.sh.
#  Replace it in the scenarios by a script that runs `tappaas-installer install` (see README).
# ============================================================================================
# What it does (the layout the installer is expected to produce, much simplified):
#   boot disk:  GPT  p1 BIOS boot (LBA 34-2047)  p2 ESP (1 MiB + 512 MiB, vfat)  p3 rpool (rest)
#               rpool/ROOT/pve-1 gets the payload's root squashfs unpacked into it
#   tank1:      GPT  p1 from 1 MiB on each disk; pool tank1 = mirror of the -part1 by-id paths
#   tank2:      GPT  p1 from 1 MiB; pool tank2 = that one partition
#   (the layout, labels and datasets `tappaas-installer plan` shows for the qemu-lab machine)
#   all pools:  ashift=12 compatibility=openzfs-2.1-linux, exported at the end
# Disks are found by the roles the harness passes in $LAB_DISKS ("role:serial ..."); the real
# installer finds them from the site file ($LAB_SITE) instead.
# $LAB_SABOTAGE makes it misbehave on purpose, for vm-tests/selftest:
#   single-disk-tank1   tank1 on one disk (no mirror)
#   write-bystander     writes a few bytes onto the bystander disk
#   keep-old-labels     does not clear old ZFS labels and signatures off the disks
set -eu
STEPS=/run/lab/steps.jsonl
: >"$STEPS"
now() { cut -d' ' -f1 /proc/uptime; }
T_LAST=$(now)
step() {  # step NAME: the time since the previous step goes to NAME
    t=$(now)
    jq -cn --arg n "$1" --argjson s "$(awk -v a="$T_LAST" -v b="$t" 'BEGIN{printf "%.2f", b-a}')" \
        '{step: $n, seconds: $s}' >>"$STEPS"
    echo "[standin] $1 done ($(awk -v a="$T_LAST" -v b="$t" 'BEGIN{printf "%.1f", b-a}') s)"
    T_LAST=$t
}
CURRENT=start
on_exit() {
    rc=$?
    if [ $rc -ne 0 ]; then
        jq -n --arg e "failed in step $CURRENT (exit $rc)" --slurpfile steps "$STEPS" \
            '{ok: false, standin: true, error: $e, steps: $steps}' >"$LAB_RESULT"
    fi
}
trap on_exit EXIT

disks_of() {  # disks_of ROLE: by-id paths of the disks with that role
    for x in $LAB_DISKS; do
        [ "${x%%:*}" = "$1" ] && echo "/dev/disk/by-id/virtio-${x#*:}"
    done
    return 0
}
wait_for() {  # wait_for PATH...: until udev made the links
    for p in "$@"; do
        i=0
        while [ ! -e "$p" ]; do
            i=$((i + 1)); [ $i -gt 100 ] && { echo "no $p" >&2; return 1; }
            udevadm settle --timeout=5; sleep 0.1
        done
    done
}
POOLOPTS="-o ashift=12 -o compatibility=openzfs-2.1-linux -o autotrim=on -O compression=lz4 -O atime=off -O xattr=sa"

CURRENT=inventory
BOOT=$(disks_of boot); TANK1=$(disks_of tank1); TANK2=$(disks_of tank2); BYSTANDER=$(disks_of bystander)
[ -n "$BOOT" ] && [ -n "$TANK1" ] || { echo "need a boot and a tank1 disk" >&2; exit 2; }
wait_for $BOOT $TANK1 $TANK2 $BYSTANDER
ls -l /dev/disk/by-id/
step inventory

CURRENT=payload
MANIFEST=$LAB_PAYLOAD/manifest.toml
file=$(sed -n 's/^file *= *"\(.*\)"/\1/p' "$MANIFEST" | head -1)
want=$(sed -n 's/^sha256 *= *"\(.*\)"/\1/p' "$MANIFEST" | head -1)
got=$(sha256sum "$LAB_PAYLOAD/$file" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "payload $file: sha256 $got, manifest says $want" >&2; exit 3; }
step payload-verified

CURRENT=wipe
# Old ZFS labels live inside the old partitions (a whole-disk pool is on part1 from 1 MiB):
# clear every partition first, then the disk. Wiping only the disk leaves them, and a new
# partition that starts where the old one did (here: BIOS boot at 1 MiB) shows the old pool.
if [ "${LAB_SABOTAGE:-}" != keep-old-labels ]; then
    for d in $BOOT $TANK1 $TANK2; do
        for p in "$d"-part*; do
            [ -e "$p" ] || continue
            zpool labelclear -f "$p" 2>/dev/null || true
            wipefs -a -q "$p"
        done
        zpool labelclear -f "$d" 2>/dev/null || true
        wipefs -a -q "$d"
    done
fi
step wipe

CURRENT=partition
# The layout `tappaas-installer plan` prints for this machine (installer/src/plan/layout.rs):
# BIOS boot LBA 34-2047, ESP 1 MiB + 512 MiB, ZFS to the last whole MiB before the backup GPT.
aligned_end() {  # aligned_end DEV: last LBA of the last whole MiB before the backup table
    total=$(blockdev --getsz "$1")
    echo $(( ( (total - 34 + 1) / 2048 ) * 2048 - 1 ))
}
sgdisk -o -a 1 -n1:34:2047 -t1:EF02 -c1:tappaas-bios-0 -n2:2048:1050623 -t2:EF00 -c2:tappaas-esp-0 \
    -n3:1050624:"$(aligned_end "$BOOT")" -t3:BF01 -c3:tappaas-rpool-0 "$BOOT" >/dev/null
i=0; for d in $TANK1; do
    sgdisk -o -a 1 -n1:2048:"$(aligned_end "$d")" -t1:BF01 -c1:tappaas-tank1-$i "$d" >/dev/null; i=$((i + 1))
done
i=0; for d in $TANK2; do
    sgdisk -o -a 1 -n1:2048:"$(aligned_end "$d")" -t1:BF01 -c1:tappaas-tank2-$i "$d" >/dev/null; i=$((i + 1))
done
udevadm settle --timeout=30
wait_for "$BOOT-part3"
for d in $TANK1 $TANK2; do wait_for "$d-part1"; done
step partition

CURRENT=esp
mkfs.vfat -F 32 -n EFI "$BOOT-part2" >/dev/null
step esp

CURRENT=rpool
mkdir -p /target
# shellcheck disable=SC2086
zpool create -f $POOLOPTS -O acltype=posixacl -O mountpoint=none -R /target rpool "$BOOT-part3"
zfs create -o mountpoint=none rpool/ROOT
zfs create -o mountpoint=/ rpool/ROOT/pve-1
zfs create -o mountpoint=none rpool/data
zpool set bootfs=rpool/ROOT/pve-1 rpool
step rpool

CURRENT=unpack-root
unsquashfs -q -f -d /target "$LAB_PAYLOAD/$file" >/dev/null
echo "$LAB_VM" >/target/etc/hostname
zfs create -o mountpoint=/var/lib/vz rpool/var-lib-vz
ROOT_FILES=$(find /target -xdev | wc -l)
step unpack-root

CURRENT=tank1
T1PARTS=$(for d in $TANK1; do echo "$d-part1"; done)
if [ "${LAB_SABOTAGE:-}" = single-disk-tank1 ]; then
    T1VDEVS=$(echo $T1PARTS | cut -d' ' -f1)            # sabotage: no mirror
else
    T1VDEVS="mirror $(echo $T1PARTS)"
fi
# shellcheck disable=SC2086
zpool create -f $POOLOPTS -m none tank1 $T1VDEVS
zfs create -o mountpoint=none tank1/vm
step tank1

CURRENT=tank2
if [ -n "$TANK2" ]; then
    # shellcheck disable=SC2086
    zpool create -f $POOLOPTS -m none tank2 $(for d in $TANK2; do echo "$d-part1"; done)
    step tank2
fi

if [ "${LAB_SABOTAGE:-}" = write-bystander ] && [ -n "$BYSTANDER" ]; then
    echo "[standin] SABOTAGE: writing onto the bystander disk"
    printf 'the installer was here' | dd of="$BYSTANDER" bs=512 seek=8192 conv=notrunc 2>/dev/null
    sync
fi

CURRENT=export
POOLS=$(zpool list -H -o name | tr '\n' ' ')
zpool status -P
zpool export -a
step export

CURRENT=result
NICS=$(for n in /sys/class/net/*; do [ -e "$n/device" ] && echo "$(basename "$n")=$(cat "$n/address")"; done | tr '\n' ' ')
jq -n --arg pools "$POOLS" --arg nics "$NICS" --arg sha "$got" --arg file "$file" \
      --argjson files "$ROOT_FILES" --arg byid "$(ls /dev/disk/by-id/ | tr '\n' ' ')" --slurpfile steps "$STEPS" \
   '{ok: true, standin: true,
     pools: ($pools | split(" ") | map(select(length > 0))),
     payload: {file: $file, sha256: $sha, verified: true, root_files: $files},
     nics: ($nics | split(" ") | map(select(length > 0) | split("=") | {(.[0]): .[1]}) | add),
     by_id: ($byid | split(" ") | map(select(length > 0))),
     steps: $steps}' >"$LAB_RESULT"
