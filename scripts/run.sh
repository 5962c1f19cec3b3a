#!/usr/bin/env bash
# Runs HardMute on this machine: installs what it needs (Debian/Ubuntu), builds, starts the daemon.
#   scripts/run.sh [hardmuted options…]
# With a PipeWire session running, the real "HardMute Microphone" appears (Linux backend);
# without one (a server, a container), the daemon runs its simulated backend so the CLI can be
# tried. Stop with Ctrl-C. Then, in another terminal: target/release/hardmute status|toggle|watch
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p hardmuted -p hardmute-cli
backend=simulated
if command -v pw-cli >/dev/null && pw-cli info 0 >/dev/null 2>&1 && target/release/hardmuted --help 2>&1 | grep -q linux; then
  backend=linux
fi
echo "[run] starting hardmuted --backend $backend (CLI: target/release/hardmute)"
exec target/release/hardmuted --backend "$backend" "$@"
