#!/bin/sh
# The real installer, unattended, in the lab VM: exactly what the ISO will run.
# The binary comes from the scenario's `binaries` (on PATH as /lab/bin/tappaas-installer).
set -u
mkdir -p /run/lab
tappaas-installer install --site "$LAB_SITE" --payload "$LAB_PAYLOAD" --yes \
    --progress-fd 3 3>/run/lab/progress.jsonl >/run/lab/install.log 2>&1
rc=$?
cat /run/lab/install.log
grep '"event":"finished"' /run/lab/progress.jsonl | tail -n 1 >/run/lab/finished.json
[ -s /run/lab/finished.json ] || echo 'null' >/run/lab/finished.json
jq -n --argjson rc "$rc" --rawfile log /run/lab/install.log --slurpfile fin /run/lab/finished.json \
   '{ok: ($rc == 0), exit: $rc, finished: $fin[0], log: $log}
    + (if $rc != 0 then {error: ("tappaas-installer install exited " + ($rc | tostring))} else {} end)' \
   >"$LAB_RESULT"
exit "$rc"
