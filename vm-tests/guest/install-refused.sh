#!/bin/sh
# The real installer must REFUSE this site on this machine before writing anything: it exits 1
# and its output names the reason given in $LAB_EXPECT_ERROR. The scenario marks every disk as
# a bystander, so the host also checks that nothing at all was written.
set -u
mkdir -p /run/lab
tappaas-installer install --site "$LAB_SITE" --payload "$LAB_PAYLOAD" --yes \
    >/run/lab/install.log 2>&1
rc=$?
cat /run/lab/install.log
if [ "$rc" -eq 1 ] && grep -qF "$LAB_EXPECT_ERROR" /run/lab/install.log; then ok=true; else ok=false; fi
jq -n --argjson rc "$rc" --argjson ok "$ok" --arg want "$LAB_EXPECT_ERROR" \
      --rawfile log /run/lab/install.log \
   '{ok: $ok, exit: $rc, expected_error: $want, log: $log}
    + (if $ok then {} else {error: ("expected exit 1 naming " + ($want | tojson) + ", got exit " + ($rc | tostring))} end)' \
   >"$LAB_RESULT"
[ "$ok" = true ]
