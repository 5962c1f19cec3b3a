#!/usr/bin/env bash
# The leak test's device mode (the cpal code path macOS and Windows use) run on Linux through
# ALSA and PipeWire's ALSA plugin, against a private headless PipeWire + WirePlumber started by
# tests/e2e-linux/lib.sh, with the real `hardmuted --backend linux` hard-muted.
#
#   bash userspace/leaktest/scripts/linux-device-leak-test.sh [OUT_DIR] [leaktest args...]
#   default args: --short --clips 4 --secs 3 --alpha 0.001 (about 3 minutes of real-time playback;
#   alpha: see linux-leak-test.sh)
#
# The set-up a Mac/PC user makes with BlackHole or VB-CABLE, built in PipeWire:
#   "Leaktest cable" (an Audio/Sink null node) --monitor--> fake-mic (hardmuted's source)
#                                              \-monitor--> fake-mic-tap (what (a) records)
#   ALSA PCMs (in $HOME/.asoundrc of the private session, type pipewire):
#     "Leaktest cable"       playback -> node leaktest-cable      (--play-to)
#     "Loopback input"       capture  <- node fake-mic-tap        (--mic, condition (a))
#     "HardMute Microphone"  capture  <- node hardmute_mic        (condition (b))
# (a) records a second source carrying the same loopback signal rather than fake-mic itself, so
# that (a) never shares a node with (b)'s routing. (Earlier runs that recorded fake-mic directly
# saw WirePlumber link (b) to fake-mic: the e2e rig then created a second `default` metadata
# object, fixed since — see userspace/backend/linux/README.md and e2e t12/t13. The link check below would
# catch such a run either way.)
# The leak test asks the daemon (HARDMUTE_SOCKET) whether it is hard-muted before and after (b).
#
# Needs: the packages of tests/e2e-linux, plus libasound2-dev (to build cpal's ALSA backend) and
# pipewire-alsa (the ALSA plugin). Without them it says SKIP and exits 0: nothing is faked.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$ROOT/target/leak-test-linux-device}
shift || true
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--short --clips 4 --secs 3 --alpha 0.001)

LIB=$ROOT/tests/e2e-linux/lib.sh
if [ ! -f "$LIB" ] || [ ! -d "$ROOT/userspace/backend/linux" ]; then
    echo "SKIP: the Linux backend (userspace/backend/linux, tests/e2e-linux) is not in this tree"
    exit 0
fi
for tool in pipewire wireplumber pw-cli pw-link pkg-config; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (see tests/e2e-linux)"; exit 0; }
done
pkg-config --exists alsa || { echo "SKIP: libasound2-dev not installed"; exit 0; }
ls /usr/lib/*/alsa-lib/libasound_module_pcm_pipewire.so >/dev/null 2>&1 ||
    { echo "SKIP: pipewire-alsa (PipeWire's ALSA plugin) not installed"; exit 0; }

(cd "$ROOT" && cargo build -q -p hardmute-leaktest --features device-alsa &&
    cargo build -q -p hardmuted -p hardmute-cli) || { echo "build failed"; exit 1; }
LEAKTEST=$ROOT/target/debug/hardmute-leak-test

# shellcheck source=/dev/null
source "$LIB"
setup_env
start_stack
make_fake_mic
# The loopback cable: whatever is played into it comes out of the fake physical mic.
pw-cli create-node adapter "{ factory.name=support.null-audio-sink node.name=leaktest-cable
    node.description=\"Leaktest cable\" media.class=Audio/Sink audio.position=[ MONO ]
    audio.rate=48000 object.linger=true monitor.channel-volumes=false
    adapter.auto-port-config={ mode=dsp monitor=true control=false position=preserve } }" \
    >/dev/null || die "cannot create the cable"
link leaktest-cable:monitor_MONO fake-mic:input_MONO
pw-cli create-node adapter "{ factory.name=support.null-audio-sink node.name=fake-mic-tap
    node.description=\"Loopback input\" media.class=Audio/Source/Virtual audio.position=[ MONO ]
    audio.rate=48000 object.linger=true monitor.channel-volumes=false
    adapter.auto-port-config={ mode=dsp monitor=true control=false position=preserve } }" \
    >/dev/null || die "cannot create the tap"
link leaktest-cable:monitor_MONO fake-mic-tap:input_MONO

echo muted >"$WORK/mute-state"
hm_start --source fake-mic
wait_for 10 capture_linked || die "hardmuted is not capturing the fake mic (the gate, not a missing link, must make the zeros)"
grep -q 'muted=true' <<<"$HM_READY" || die "hardmuted did not start muted: $HM_READY"

# setup_env made $WORK the session's HOME, so this is the leak test's ALSA configuration only.
cat >"$HOME/.asoundrc" <<'EOF'
pcm.leaktest_cable { type pipewire playback_node "leaktest-cable"
    hint { show on description "Leaktest cable" } }
pcm.leaktest_mic { type pipewire capture_node "fake-mic-tap"
    hint { show on description "Loopback input" } }
pcm.leaktest_hardmute { type pipewire capture_node "hardmute_mic"
    hint { show on description "HardMute Microphone" } }
EOF

# What the leak test's ALSA capture streams are linked to, sampled all through the run: (b) is
# only evidence if it was linked to hardmute_mic (an unlinked stream would record silence too).
watch_links() {
    while :; do
        pw-link -l 2>/dev/null | awk '
            /^[^ ]/ { port = $0; next }
            /\|<- / && port ~ /^ALSA Capture:/ { src = $2; sub(/:.*/, "", src); print src }' |
            sort -u | tr '\n' ' '
        echo
        sleep 0.25
    done >"$WORK/capture-links.log"
}
watch_links &
WATCH=$!
PIDS+=($WATCH)

log "device mode: cable -> fake-mic -> hardmuted; recording 'Loopback input' (a) and 'HardMute Microphone' (b)"
"$LEAKTEST" --device-mode --play-to "Leaktest cable" --mic "Loopback input" \
    --out "$OUT" "${ARGS[@]}"
rc=$?
kill "$WATCH" 2>/dev/null
log "leak test exit status $rc; report in $OUT/report.md"
# Every sample of the links: one source at a time, and both fake-mic-tap (a) and hardmute_mic (b) seen.
seen=$(tr ' ' '\n' <"$WORK/capture-links.log" | grep -v '^$' | sort | uniq -c)
log "sources linked into the leak test's ALSA capture (samples): $(echo $seen)"
awk 'NF > 1 { exit 1 }' "$WORK/capture-links.log" ||
    die "an ALSA capture stream was linked to two sources at once"
grep -q ' fake-mic-tap$' <<<"$seen" || die "condition (a) was never linked to fake-mic-tap"
grep -q ' hardmute_mic$' <<<"$seen" || die "condition (b) was never linked to hardmute_mic: its silence proves nothing"
others=$(tr ' ' '\n' <"$WORK/capture-links.log" | grep -v '^$' | grep -vx 'fake-mic-tap\|hardmute_mic' | sort -u)
[ -z "$others" ] || die "the leak test recorded other sources: $others"
exit $rc
