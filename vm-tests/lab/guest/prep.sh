#!/bin/sh
# Preparation boot (appended per run as /lab/run.sh): gives disks pre-existing ZFS content.
# $LAB_PREP_POOLS: "name:state:where:serial,serial;..." - one pool per entry (more than one disk:
# a mirror), a dataset with a file in it, then exported (state "exported") or left as it is
# (state "active": the pool looks in use by another system). where = "disk": on the whole disks
# (ZFS partitions them: part1 from 1 MiB); "s34": on a GPT partition from LBA 34, where the
# new BIOS boot partition will start (it is never formatted, so only a wipe removes the labels).
set -eu
udevadm settle --timeout=30
made=""
IFS=';'
for spec in $LAB_PREP_POOLS; do
    IFS=':' read -r name state where serials <<EOS
$spec
EOS
    devs=""
    IFS=','
    for s in $serials; do
        d=/dev/disk/by-id/virtio-$s
        if [ "$where" = s34 ]; then
            sgdisk -o -a 1 -n1:34:0 -t1:BF01 "$d" >/dev/null
            udevadm settle --timeout=30
            i=0; while [ ! -e "$d-part1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
            d=$d-part1
        fi
        devs="$devs $d"
    done
    IFS=' '
    n=$(echo $devs | wc -w)
    if [ "$n" -gt 1 ]; then layout="mirror $devs"; else layout="$devs"; fi
    # shellcheck disable=SC2086
    zpool create -f -o ashift=12 -O mountpoint=none "$name" $layout
    zfs create -o mountpoint=/mnt/$name "$name/data"
    echo "old data of $name" >/mnt/$name/README
    zfs umount -a
    if [ "$state" = exported ]; then zpool export "$name"; fi
    made="$made $name"
    IFS=';'
done
jq -n --arg made "$made" '{ok: true, pools: ($made | split(" ") | map(select(length > 0)))}' >"$LAB_RESULT"
