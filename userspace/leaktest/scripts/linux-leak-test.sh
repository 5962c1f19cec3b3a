#!/usr/bin/env bash
# The leak test against the real Linux backend: a private headless PipeWire + WirePlumber
# (started by tests/e2e-linux/lib.sh, isolated XDG_RUNTIME_DIR), the fake physical mic, the
# HardMute node hard-muted, and real pw-record clients; the clips are played into the fake mic
# with pw-cat.
#
#   bash userspace/leaktest/scripts/linux-leak-test.sh [OUT_DIR] [leaktest args...]
#   default args: --short --clips 4 --secs 3 --alpha 0.001 (about 3 minutes of real-time playback;
#   alpha 0.001 keeps a false alarm from wall-clock noise to about 0.2 % of runs)
#
# Needs userspace/backend/linux (the hardmute_node example) and tests/e2e-linux/lib.sh from the Linux
# backend, and the packages of tests/e2e-linux (pipewire pipewire-bin wireplumber ...).
# Without them it says SKIP and exits 0: nothing is faked.
# LEAKTEST_STAND_IN=1 replaces HardMute Microphone by an unfed virtual source (zeros) to check
# this script's plumbing only; its result says nothing about HardMute.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$ROOT/target/leak-test-linux}
shift || true
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--short --clips 4 --secs 3 --alpha 0.001)

LIB=$ROOT/tests/e2e-linux/lib.sh
if [ ! -f "$LIB" ] || [ ! -d "$ROOT/userspace/backend/linux" ]; then
    echo "SKIP: the Linux backend (userspace/backend/linux, tests/e2e-linux) is not in this tree"
    exit 0
fi
for tool in pipewire wireplumber pw-cli pw-link pw-record pw-cat; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (see tests/e2e-linux)"; exit 0; }
done

(cd "$ROOT" && cargo build -q -p hardmute-leaktest &&
    { [ "${LEAKTEST_STAND_IN:-0}" = 1 ] || cargo build -q -p hardmute-backend-linux --example hardmute_node; }) ||
    { echo "build failed"; exit 1; }
LEAKTEST=$ROOT/target/debug/hardmute-leak-test

# shellcheck source=/dev/null
source "$LIB"
setup_env
start_stack
make_fake_mic
if [ "${LEAKTEST_STAND_IN:-0}" = 1 ]; then
    log "STAND-IN: recording an unfed virtual source instead of HardMute Microphone (plumbing check)"
    pw-cli create-node adapter "{ factory.name=support.null-audio-sink node.name=leaktest-stand-in
        media.class=Audio/Source/Virtual audio.position=[ MONO ] audio.rate=48000 object.linger=true
        monitor.channel-volumes=false
        adapter.auto-port-config={ mode=dsp monitor=true control=false position=preserve } }" >/dev/null
    export HARDMUTE_LEAKTEST_TARGET=leaktest-stand-in
    sleep 0.5
else
    echo muted >"$WORK/mute-state"
    hm_start
    wait_for 5 capture_linked || die "HardMute is not capturing the fake mic (the gate, not a missing link, must make the zeros)"
    grep -q 'muted=true' <<<"$HM_READY" || die "HardMute did not start muted: $HM_READY"
    export HARDMUTE_LEAKTEST_TARGET=hardmute_mic
fi
export HARDMUTE_LEAKTEST_MIC=fake-mic
"$LEAKTEST" --backend linux --out "$OUT" "${ARGS[@]}"
rc=$?
log "leak test exit status $rc; report in $OUT/report.md"
exit $rc
