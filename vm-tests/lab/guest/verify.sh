#!/bin/sh
# Verification boot (appended per run as /lab/run.sh). The disks are attached read-only; this
# imports every pool it finds, one by one, read-only (-N: nothing mounted) and reports, as JSON:
#   pools[].status   `zpool status -P <pool>` (text; the host parses the vdev tree)
#   pools[].props    `zpool get -Hp all <pool>` as {property: value}
#   datasets         `zfs get -Hp -o name,property,value,source all` as {dataset: {property: value}}
#                    (mountpoints without the altroot the pools are imported under)
#                    (properties that have a source, i.e. no read-only statistics; plus type)
#   importable       `zpool import` output before importing (text)
#   lsblk            `lsblk -J` of the guest's view
#   root_files       {path: content} of a few files of the installed root (hostname, hosts,
#                    network interfaces, the node manifest and site file copy, the primary's
#                    API certificate, what the lab's test package's postinst recorded,
#                    policy-rc.d if it was left behind), read from <pool>/ROOT/pve-1 mounted
#                    read-only under an altroot; plus, under keys starting with `$ `, what the
#                    installed first-boot agent says of that root (`tappaas-bootstrap --root
#                    <it> plan`) and the modes of the agent and the primary's key
set -u
out=$LAB_RESULT
t=/run/lab/verify; mkdir -p $t
udevadm settle --timeout=30
zpool import -d /dev/disk/by-id >$t/importable 2>&1
# One pool at a time, by id: a broken leftover (zpool import -a can abort on one) must not hide
# the others. import_rc = how many imports failed.
import_rc=0
: >$t/import.log
for id in $(awk '$1 == "id:" {print $2}' $t/importable); do
    # -R: an altroot, so mounting the installed root (mountpoint=/) cannot cover the live one.
    if ! zpool import -d /dev/disk/by-id -N -f -o readonly=on -R /run/lab/altroot "$id" >>$t/import.log 2>&1; then
        echo "import of pool id $id failed" >>$t/import.log
        import_rc=$((import_rc + 1))
    fi
done
zpool list -H -o name >$t/pools 2>/dev/null
: >$t/pools.json
for p in $(cat $t/pools); do
    zpool status -P "$p" >$t/status.$p 2>&1
    zpool get -Hp -o property,value all "$p" >$t/props.$p 2>&1
    jq -n --arg name "$p" --rawfile status $t/status.$p --rawfile props $t/props.$p \
        '{name: $name, status: $status,
          props: ($props | split("\n") | map(select(length > 0) | split("\t")) | map({(.[0]): .[1]}) | add)}' \
        >>$t/pools.json
done
zfs get -Hp -o name,property,value,source all >$t/zfsget 2>/dev/null
echo '{}' >$t/rootfiles.json
root_ds=$(zfs list -H -o name 2>/dev/null | grep '/ROOT/pve-1$' | head -n 1)
if [ -n "$root_ds" ] && zfs mount "$root_ds" >>$t/import.log 2>&1; then
    add() { # key, file with the value
        jq --arg k "$1" --rawfile v "$2" '. + {($k): $v}' $t/rootfiles.json >$t/rf.tmp \
            && mv $t/rf.tmp $t/rootfiles.json
    }
    for f in /etc/hostname /etc/hosts /etc/network/interfaces /etc/tappaas/node.toml \
             /etc/tappaas/site.toml /etc/tappaas/tls/api.pem \
             /var/lib/tappaas-lab/postinst.txt /usr/sbin/policy-rc.d; do
        [ -f "/run/lab/altroot$f" ] || continue
        add "$f" "/run/lab/altroot$f"
    done
    agent=/run/lab/altroot/usr/bin/tappaas-bootstrap
    if [ -f "$agent" ]; then
        stat -c '%a %U' "$agent" "/run/lab/altroot/etc/tappaas/tls/api.key" >$t/modes 2>&1
        add '$ stat -c "%a %U" /usr/bin/tappaas-bootstrap /etc/tappaas/tls/api.key' $t/modes
        # The installed agent, run from here on the installed root (nothing is written: plan
        # only reads the node manifest and the site file).
        "$agent" --root /run/lab/altroot plan >$t/plan 2>&1 || echo "exit $?" >>$t/plan
        add '$ tappaas-bootstrap plan' $t/plan
    fi
    zfs unmount "$root_ds" >>$t/import.log 2>&1
fi
lsblk -J -o NAME,SERIAL,SIZE,TYPE,FSTYPE,LABEL,PARTLABEL >$t/lsblk 2>/dev/null || echo '{}' >$t/lsblk
jq -n --argjson rc $import_rc --rawfile importable $t/importable --rawfile importlog $t/import.log \
      --slurpfile pools $t/pools.json --rawfile zfsget $t/zfsget --slurpfile lsblk $t/lsblk \
      --slurpfile rootfiles $t/rootfiles.json \
   '{ok: true, import_rc: $rc, importable: $importable, import_log: $importlog, pools: $pools,
     datasets: ($zfsget | split("\n") | map(select(length > 0) | split("\t"))
                | map(select(.[3] != "-" or .[1] == "type" or .[1] == "mountpoint"))
                | map(if .[1] == "mountpoint" and (.[2] | startswith("/run/lab/altroot"))
                      then .[2] = (.[2] | ltrimstr("/run/lab/altroot") | if . == "" then "/" else . end)
                      else . end)
                | reduce .[] as $r ({}; .[$r[0]][$r[1]] = $r[2])),
     lsblk: $lsblk[0], root_files: $rootfiles[0]}' >"$out"
