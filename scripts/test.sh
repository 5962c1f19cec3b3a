#!/usr/bin/env bash
# Runs every test of HardMute on this machine (Debian/Ubuntu; installs what the tests need).
#   scripts/test.sh
# Environment: E2E_TOGGLE_SECS (default 60) — length of the Linux e2e toggling test;
#              FUZZ_SECS (default 12) — seconds per fuzz target in the smoke run.
#              HARDMUTE_SKIP_PW14=1 — skip the e2e run on PipeWire 1.4 (tests/e2e-linux/pw14).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s\n' "$*"; }

step "system packages"
scripts/deps.sh

step "unit, property and integration tests (every crate; simulated coreaudiod and PortCls included)"
cargo test --workspace

step "global-shortcuts portal client against the real xdg-desktop-portal frontend (unpacked, not installed)"
bash userspace/portal-shortcuts/scripts/real-frontend-test.sh

step "fuzz smoke run: every target in fuzz/ (IPC, IOCTL, HAL properties, ring positions, Linux gate page), ${FUZZ_SECS:-12} s each"
scripts/fuzz.sh smoke "${FUZZ_SECS:-12}"

step "Linux end to end: private PipeWire + WirePlumber + pipewire-pulse, real clients (tests/e2e-linux)"
TOGGLE_SECS="${E2E_TOGGLE_SECS:-60}" bash tests/e2e-linux/run.sh

if [ "${HARDMUTE_SKIP_PW14:-0}" != 1 ]; then
  step "Linux end to end again on PipeWire 1.4 + WirePlumber 0.5 (Debian 13 root, cached in ~/.cache/hardmute-trixie; HARDMUTE_SKIP_PW14=1 skips)"
  TOGGLE_SECS="${E2E_TOGGLE_SECS:-60}" bash tests/e2e-linux/pw14/run.sh
fi

step "leak test against the real Linux backend (the PETS 2022 attack, short mode)"
bash userspace/leaktest/scripts/linux-leak-test.sh target/leak-test-linux

step "leak test, device mode (the cpal path of macOS/Windows) through ALSA on the private PipeWire"
bash userspace/leaktest/scripts/linux-device-leak-test.sh target/leak-test-linux-device

step "desktop e2e: hotkey, tray (StatusNotifierItem), panel and level feed under Xvfb, simulated backend (tests/desktop-e2e)"
bash tests/desktop-e2e/run.sh

step "desktop e2e against the real Linux backend: private PipeWire, fake mic, recordings of HardMute Microphone"
HARDMUTE_E2E_BACKEND=linux bash tests/desktop-e2e/run.sh

step "Linux packaging: the .deb (cargo-deb) and what it contains"
cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
bash installer/linux/test-deb.sh

step "the .deb's user unit under a real systemd user manager (nspawn --boot, Debian 12 root cached in ~/.cache/hardmute-systemd; reuses test-deb.sh's .deb)"
bash installer/linux/test-systemd.sh
