#!/bin/sh
# Runs the real installer's read-only commands in the lab VM (no stand-in here):
#   tappaas-installer probe --json          must succeed and see the scenario's disks and NICs
#   tappaas-installer plan --site $LAB_SITE informational: its output and exit code are reported
# The binary comes from the scenario's `binaries` (appended to the initramfs as /lab/bin).
set -u
probe=/run/lab/probe.json
tappaas-installer probe >/run/lab/probe.txt 2>&1
cat /run/lab/probe.txt
tappaas-installer probe --json >"$probe" 2>/run/lab/probe.err
rc=$?
missing=""
for s in $LAB_EXPECT_SERIALS; do grep -q "\"$s\"" "$probe" || missing="$missing $s"; done
for m in $LAB_EXPECT_MACS; do grep -qi "\"$m\"" "$probe" || missing="$missing $m"; done
tappaas-installer plan --site "$LAB_SITE" >/run/lab/plan.txt 2>&1
plan_rc=$?
cat /run/lab/plan.txt
if [ $rc -eq 0 ] && jq -e . "$probe" >/dev/null 2>&1; then pj=$probe; else echo '{}' >/run/lab/empty.json; pj=/run/lab/empty.json; fi
jq -n --argjson rc $rc --arg missing "$missing" --slurpfile probe "$pj" --rawfile err /run/lab/probe.err \
      --argjson plan_rc $plan_rc --rawfile plan /run/lab/plan.txt \
   '{ok: ($rc == 0 and ($missing | length) == 0), probe_rc: $rc, probe_stderr: $err,
     missing: ($missing | split(" ") | map(select(length > 0))), probe: $probe[0],
     plan_rc: $plan_rc, plan: $plan}
    + (if $rc != 0 then {error: "probe failed"} elif ($missing | length) > 0 then {error: ("probe does not see" + $missing)} else {} end)' \
   >"$LAB_RESULT"
