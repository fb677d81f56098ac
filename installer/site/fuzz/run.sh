#!/usr/bin/env bash
# Fuzzes tappaas_site::parse for a bounded time: ./run.sh [SECONDS] (default 120).
#
# cargo-fuzz wants nightly for -Zsanitizer; our one toolchain is stable, so RUSTC_BOOTSTRAP=1
# unlocks the flags (the stable toolchain ships the ASan runtime). Crashes land in
# artifacts/parse/; replay one with `RUSTC_BOOTSTRAP=1 cargo fuzz run parse artifacts/parse/FILE`.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Seed the corpus with the shipped examples so the fuzzer starts from valid files.
mkdir -p corpus/parse
cp ../../../docs/examples/*.toml corpus/parse/

# -jobs/-workers stay at 1: CI machines have 2 cores and the build already used them.
exec cargo fuzz run parse --sanitizer address -- \
    -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
