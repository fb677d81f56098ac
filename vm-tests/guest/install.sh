#!/bin/sh
# The real installer, unattended, in the lab VM: exactly what the ISO will run.
# The binary comes from the scenario's `binaries` (on PATH as /lab/bin/tappaas-installer).
set -u
mkdir -p /run/lab
: >/run/lab/progress.jsonl
# For power-cut scenarios the harness follows the install's progress on the console and kills
# the VM at a chosen event.
if [ -n "${LAB_ECHO_PROGRESS:-}" ]; then
    # (busybox sed cannot unbuffer; a read loop echoes each line as it comes)
    tail -n +1 -f /run/lab/progress.jsonl | while IFS= read -r line; do
        echo "TAPPAAS-LAB-PROGRESS $line"
    done &
fi
tappaas-installer install --site "$LAB_SITE" --payload "$LAB_PAYLOAD" --yes \
    --progress-fd 3 3>/run/lab/progress.jsonl >/run/lab/install.log 2>&1
rc=$?
cat /run/lab/install.log
grep '"event":"finished"' /run/lab/progress.jsonl | tail -n 1 >/run/lab/finished.json
[ -s /run/lab/finished.json ] || echo 'null' >/run/lab/finished.json
# With LAB_EXPECT_NODE set (several VMs, one site file), the installer must have recognised
# exactly that node by itself.
node_ok=true
if [ -n "${LAB_EXPECT_NODE:-}" ] && ! grep -q "^installing node $LAB_EXPECT_NODE:" /run/lab/install.log; then
    node_ok=false
fi
jq -n --argjson rc "$rc" --argjson node_ok "$node_ok" --arg want_node "${LAB_EXPECT_NODE:-}" \
      --rawfile log /run/lab/install.log --slurpfile fin /run/lab/finished.json \
   '{ok: ($rc == 0 and $node_ok), exit: $rc, finished: $fin[0], log: $log}
    + (if $rc != 0 then {error: ("tappaas-installer install exited " + ($rc | tostring))}
       elif ($node_ok | not) then {error: ("the installer did not install node " + $want_node)}
       else {} end)' \
   >"$LAB_RESULT"
[ "$rc" -eq 0 ] && [ "$node_ok" = true ]
