#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (its own workspace; nightly features through
# RUSTC_BOOTSTRAP=1), one after the other, and prints what each did.
#   scripts/fuzz.sh smoke [SECS]      each target for SECS seconds (default 12): the CI smoke run
#   scripts/fuzz.sh long  [TOTAL]     TOTAL executions in all (default 100000000), split evenly
#                                     over the targets (what scripts/fuzz-long.sh runs)
# Targets are whatever `cargo fuzz list` names, so a new target is picked up without editing this.
# Logs: target/fuzz-<mode>/<target>.log; the corpus grows in fuzz/corpus/<target>/ (not committed);
# a crash stops its target and leaves fuzz/artifacts/<target>/crash-* to replay with
# `cargo fuzz run <target> <file>`. Exit status: non-zero if any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd fuzz
mapfile -t targets < <(cargo fuzz list)
out=../target/fuzz-$mode
mkdir -p "$out"
case $mode in
    smoke) limit=(-max_total_time="${2:-12}") ;;
    long) total=${2:-100000000}; limit=(-runs=$(( total / ${#targets[@]} ))) ;;
    *) echo "usage: $0 smoke [SECS] | long [TOTAL_EXECUTIONS]" >&2; exit 2 ;;
esac
cargo fuzz build -O -a >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
failed=0
printf '%-16s %14s %8s %8s %8s  %s\n' target executions cov ft secs result
for t in "${targets[@]}"; do
    dict=()
    [ -f "$t.dict" ] && dict=(-dict="$t.dict")
    mkdir -p "corpus/$t"
    start=$(date +%s)
    if cargo fuzz run -O -a "$t" "corpus/$t" -- "${limit[@]}" "${dict[@]}" -print_final_stats=1 >"$out/$t.log" 2>&1; then
        result=ok
    else
        result="CRASH (see $out/$t.log, fuzz/artifacts/$t/)"
        failed=1
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '#[0-9]+.*cov: ' "$out/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
    printf '%-16s %14s %8s %8s %8s  %s\n' "$t" "$execs" "$cov" "$ft" "$secs" "$result"
done
exit $failed
