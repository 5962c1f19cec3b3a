#!/usr/bin/env bash
# Runs every test of HardMute on this machine (Debian/Ubuntu; installs what the tests need).
#   scripts/test.sh
# Environment: E2E_TOGGLE_SECS (default 60) — length of the Linux e2e toggling test;
#              FUZZ_SECS (default 20) — the IPC parser fuzz smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s\n' "$*"; }

step "system packages"
scripts/deps.sh

step "unit, property and integration tests (every crate; simulated coreaudiod and PortCls included)"
cargo test --workspace

step "fuzz smoke run: IPC parser (${FUZZ_SECS:-20} s)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ipc_parse -- -max_total_time="${FUZZ_SECS:-20}" -dict=ipc_parse.dict)
