#!/usr/bin/env bash
# Probe of the own-module route: loads the prototype module
# (driver/linux/module, libpipewire-module-hardmute.so: ONE pw_filter node running the gate)
# into the rig's private PipeWire, checks what it delivers, and measures the PipeWire server's
# CPU in three configurations, each on a fresh private stack:
#   a) the app records the fake mic directly (no HardMute);
#   b) the app records hardmute_mic through the shipped filter-chain drop-in (two nodes);
#   c) the app records hardmute_mic_module, the module's single node.
# A probe, not a test of the product: not run by scripts/test.sh or CI. Timings are reported,
# never asserted; the assertions are about samples (exact zeros while muted, the signal while a
# controller holds it live, non-empty recordings).
#
#   bash tests/e2e-linux/module-probe.sh            # functional checks + 2 rounds of a/b/c
#   MEASURE_SECS=60 ROUNDS=2 OUT=file bash ...       # defaults; OUT gets one line per run
#   SKIP_MEASURE=1 / SKIP_FUNCTIONAL=1               # one half only
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MEASURE_SECS=${MEASURE_SECS:-60}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$ROOT/target/module-probe.txt}
MODULE_SO=${MODULE_SO:-$ROOT/target/release/libpipewire_module_hardmute.so}
PAGE_CTL=${PAGE_CTL:-$ROOT/target/release/examples/page_ctl}
MODULE_NODE=hardmute_mic_module
GATE_DROPIN=none # the drop-ins are written here, per configuration

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build -q --release -p hardmute-linux-gate -p hardmute-linux-module \
        -p hardmute-e2e-wavtool --example page_ctl) || { echo "build failed"; exit 1; }
fi
# PipeWire 0.3.65 looks a module name up as <dir>/<name>.so in its module directories only (an
# absolute path is not accepted); PIPEWIRE_MODULE_DIR replaces the list, so it names the system
# directory too. Cargo cannot name the library with '-', so it is copied under PipeWire's name.
MODDIR=$(mktemp -d -t hm-module.XXXXXX)
cp "$MODULE_SO" "$MODDIR/libpipewire-module-hardmute.so"
SYS_MODDIR=$(pkg-config --variable=moduledir libpipewire-0.3 2>/dev/null) ||
    SYS_MODDIR=$(dirname "$(find /usr/lib* -name libpipewire-module-protocol-native.so -print -quit)")
export PIPEWIRE_MODULE_DIR="$SYS_MODDIR:$MODDIR"
trap 'rm -rf "$MODDIR"' EXIT

module_dropin() { # module_dropin [ARGS]
    mkdir -p "$XDG_CONFIG_HOME/pipewire/pipewire.conf.d"
    cat >"$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/60-hardmute-module.conf" <<EOF
context.modules = [
    { name = libpipewire-module-hardmute args = { ${1:-} } }
]
EOF
}
# The shipped drop-in (installer/linux/debian/50-hardmute.conf, the text `hardmute install`
# renders), pointed at this checkout's plugin.
filter_chain_dropin() {
    mkdir -p "$XDG_CONFIG_HOME/pipewire/pipewire.conf.d"
    sed "s|/usr/lib/hardmute/libhardmute_linux_gate.so|$ROOT/target/release/libhardmute_linux_gate.so|" \
        "$ROOT/installer/linux/debian/50-hardmute.conf" >"$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/50-hardmute.conf"
    grep -q "$ROOT/target/release/libhardmute_linux_gate.so" \
        "$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/50-hardmute.conf" || die "drop-in path not replaced"
}
# node_info NODE: "<media.class> <client pid> <hardmute.module.core> <state>" from pw-dump.
node_info() {
    pw-dump 2>/dev/null | python3 -c '
import json, sys
objs = json.load(sys.stdin)
by_id = {o["id"]: o for o in objs}
for o in objs:
    p = (o.get("info") or {}).get("props", {})
    if o.get("type", "").endswith("Node") and p.get("node.name") == sys.argv[1]:
        c = by_id.get(p.get("client.id"), {})
        cp = (c.get("info") or {}).get("props", {})
        print(p.get("media.class"), cp.get("pipewire.sec.pid", cp.get("application.process.id", "?")),
              p.get("hardmute.module.core", "-"), o["info"].get("state"))
        break' "$1"
}
# rec_linked NAME: pw-record asking for no target (--target 0), linked from the module's
# output with pw-link.
rec_linked() {
    pw-record --target 0 --rate 48000 --channels 1 --format f32 -P "{ node.name = rec-$1 }" \
        "$WORK/$1.wav" >"$WORK/rec-$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
    link "$MODULE_NODE:capture_MONO" "rec-$1:input_MONO"
}
ports_of() { pw-link "$1" 2>/dev/null | grep -c "^$2:" || true; }

functional() {
    setup_env
    module_dropin "priority.session = 10000"
    start_stack
    make_fake_mic
    play_fake_mic
    wait_for 5 pw_node_exists "$MODULE_NODE" || die "the module made no $MODULE_NODE node"
    [ "$(count_nodes "$MODULE_NODE")" = 1 ] || die "$(count_nodes "$MODULE_NODE") $MODULE_NODE nodes"
    local info; info=$(node_info "$MODULE_NODE")
    log "node: class/client-pid/core/state = $info (server pid $PW_PID)"
    echo "functional node $info server_pid=$PW_PID" >>"$OUT"
    [ "$(awk '{print $2}' <<<"$info")" = "$PW_PID" ] || die "the node is not the server's: $info"
    [ "$(ports_of -i "$MODULE_NODE")" = 1 ] && [ "$(ports_of -o "$MODULE_NODE")" = 1 ] ||
        die "ports: $(pw-link -io | grep "$MODULE_NODE")"
    log "links WirePlumber made to the module: $(pw-link -l | grep -c "$MODULE_NODE" || true) lines"
    local def; def=$(pw-metadata -n default 0 default.audio.source 2>/dev/null | sed -n "s/.*value:'\([^']*\)'.*/\1/p")
    log "default.audio.source (WirePlumber, module at priority.session 10000): $def"
    echo "functional default.audio.source=$def" >>"$OUT"

    # The fake mic into the module's input: the only way in, and before the gate.
    link fake-mic:capture_MONO "$MODULE_NODE:input_MONO"
    # What WirePlumber does with apps that ask for the node by name or ask for the default
    # (observed and reported, not asserted: the answer is the finding).
    rec_pw bytarget 48000 1 f32 "$MODULE_NODE"
    rec_pa bytargetpa 48000 1 float32le "$MODULE_NODE"
    pw-record --rate 48000 --channels 1 --format f32 -P "{ node.name = rec-notarget }" \
        "$WORK/notarget.wav" >"$WORK/rec-notarget.log" 2>&1 &
    PIDS+=($!); PID_notarget=$!
    sleep 3
    local n
    for n in bytarget bytargetpa notarget; do
        local from; from=$(pw-link -l | awk -v c="rec-$n:" '/^[^ ]/{cur=$0} index($0,"|-> " c){split(cur,a,":"); print a[1]}' | sort -u | tr '\n' ' ')
        local err; err=$(grep -m1 -io 'no node available\|Input/Output error\|error.*' "$WORK/rec-$n.log" | head -1)
        log "WirePlumber, app rec-$n: linked from [${from% }] ${err:+error: $err}"
        echo "functional wireplumber rec-$n linked_from=[${from% }] error=[${err}]" >>"$OUT"
    done
    stop_rec bytarget bytargetpa notarget
    grep -h 'no usable format\|failed to configure item' "$WORK/wireplumber.log" | sed 's/^/    wireplumber.log: /' | head -2
    grep -q 'no usable format found' "$WORK/wireplumber.log" &&
        echo "functional wireplumber.log: si-audio-adapter: no usable format found for the module node" >>"$OUT"

    # Control: the fake mic itself carries the signal.
    rec_pw direct 48000 1 f32 fake-mic
    # Muted and no controller (the page was made muted and unleased at load); the app is
    # linked to the node with pw-link, as WirePlumber does not.
    rec_linked muted
    wait_recs direct muted
    sleep 2
    stop_rec direct muted
    analyse "$WORK/direct.wav" --skip 1.0 --expect-signal --max-zero-run 100000 || die "control: no signal from the fake mic"
    analyse "$WORK/muted.wav" --expect-zero --min-seconds 1.5 || die "muted: not exact zeros"
    echo "functional muted (pw-record linked by pw-link): exact zeros: ok" >>"$OUT"

    # Live: a controller unmutes and beats for 6 s, then stops (the lease lapses in 1.5 s).
    "$PAGE_CTL" 6 >"$WORK/ctl.out" 2>&1 &
    local ctl=$!
    PIDS+=($ctl)
    wait_for 5 grep -q live "$WORK/ctl.out" || die "controller: $(cat "$WORK/ctl.out")"
    rec_linked live
    wait_recs live
    sleep 3
    stop_rec live
    wait "$ctl" || die "controller failed: $(cat "$WORK/ctl.out")"
    log "controller: $(tr '\n' ' ' <"$WORK/ctl.out")"
    sleep 1
    log "page 1 s after the controller stopped: $("$PAGE_CTL" --status)"
    analyse "$WORK/live.wav" --skip 1.0 --expect-signal --tol 0.5 || die "live: not the fake mic's signal"
    sleep 2
    rec_linked lapsed
    wait_recs lapsed
    sleep 1.6
    log "page after the lapsed recording: $("$PAGE_CTL" --status)"
    log "rec-lapsed is fed by: $(pw-link -l | awk '/^[^ ]/{cur=$0} /\|-> rec-lapsed:/{print cur}' | tr '\n' ' ')"
    stop_rec lapsed
    analyse "$WORK/lapsed.wav" --expect-zero --min-seconds 1 || die "lease lapsed: not exact zeros"
    echo "functional live signal then zeros after the controller stopped: ok" >>"$OUT"
    kill -0 "$PW_PID" || die "PipeWire died"
}

# Latency through the module (the rig's m_latency_and_reaction, with the module's node): clicks
# from the fake mic, FL linked directly, FR through the live module; hm-wav gives the offset.
latency() {
    setup_env
    module_dropin
    start_stack
    make_fake_mic
    play_fake_mic --impulse
    link fake-mic:capture_MONO "$MODULE_NODE:input_MONO"
    "$PAGE_CTL" 8 >"$WORK/ctl.out" 2>&1 &
    PIDS+=($!)
    wait_for 5 grep -q live "$WORK/ctl.out" || die "controller: $(cat "$WORK/ctl.out")"
    pw-record --target 0 --rate 48000 --channels 2 --channel-map FL,FR --format f32 \
        -P '{ node.name = rec-lat }' "$WORK/lat.wav" >"$WORK/rec-lat.log" 2>&1 &
    local rp=$!
    PIDS+=($rp)
    link fake-mic:capture_MONO rec-lat:input_FL
    link "$MODULE_NODE:capture_MONO" rec-lat:input_FR
    sleep 3
    kill -INT $rp
    wait $rp
    local lat; lat=$("$HMWAV" latency "$WORK/lat.wav") || die "latency: $lat"
    log "latency through the module: $lat"
    echo "functional latency through the module (quantum ${QUANTUM:-1024}): $lat" >>"$OUT"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure CFG ROUND: one configuration on a fresh private stack; appends one line to $OUT.
measure() {
    local cfg=$1 round=$2 target
    setup_env
    case $cfg in
        a) target=fake-mic ;;
        b) filter_chain_dropin; target=hardmute_mic ;;
        c) module_dropin; target=$MODULE_NODE ;;
    esac
    start_stack
    make_fake_mic
    play_fake_mic
    case $cfg in
        b) link fake-mic:capture_MONO hardmute_capture:input_MONO ;;
        c) link fake-mic:capture_MONO "$MODULE_NODE:input_MONO" ;;
    esac
    if [ "$cfg" = c ]; then rec_linked m; else rec_pw m 48000 1 f32 "$target"; fi
    wait_recs m
    sleep 1
    local nodes; nodes=$(pw-cli ls Node | grep -c 'node.name' || true)
    perf stat -x, -e instructions,task-clock,context-switches -p "$PW_PID" -o "$WORK/perf.txt" \
        -- sleep "$MEASURE_SECS" 2>/dev/null &
    local perf=$!
    local tck; tck=$(getconf CLK_TCK)
    local c0 t0 c1 t1
    c0=$(cpu_ticks "$PW_PID"); t0=$(date +%s.%N)
    sleep "$MEASURE_SECS"
    c1=$(cpu_ticks "$PW_PID"); t1=$(date +%s.%N)
    wait "$perf" 2>/dev/null
    stop_rec m
    local pct; pct=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$tck" 'BEGIN{printf "%.2f", (b-a)/hz/(t1-t0)*100}')
    local rss; rss=$(awk '/^VmRSS/{print $2}' "/proc/$PW_PID/status")
    local instr tclock cs
    instr=$(awk -F, '$3 ~ /^instructions/{print $1}' "$WORK/perf.txt")
    tclock=$(awk -F, '$3 ~ /^task-clock/{print $1}' "$WORK/perf.txt")
    cs=$(awk -F, '$3 ~ /^context-switches/{print $1}' "$WORK/perf.txt")
    local check=--expect-zero
    [ "$cfg" = a ] && check="--expect-signal --max-zero-run 100000"
    # shellcheck disable=SC2086
    analyse "$WORK/m.wav" --skip 1.0 --min-seconds "$((MEASURE_SECS - 2))" $check || die "$cfg: recording check failed"
    local line="measure cfg=$cfg round=$round secs=$MEASURE_SECS server_cpu_pct=$pct rss_kib=$rss nodes=$nodes perf_instructions=${instr:-?} perf_task_clock_ms=${tclock:-?} perf_context_switches=${cs:-?}"
    log "$line"
    echo "$line" >>"$OUT"
}

mkdir -p "$(dirname "$OUT")"
{
    echo "# module-probe $(date -u +%FT%TZ) pipewire $(pipewire --version | awk '/Linked with libpipewire/{print $NF}') wireplumber ${WP_VERSION:-?} $(nproc) cpus load $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$OUT"
rc=0
if [ "${SKIP_FUNCTIONAL:-0}" != 1 ]; then
    echo "== functional (module node: muted zeros, live signal, WirePlumber)"
    (functional) || rc=1
    echo "== latency (module node, live)"
    (latency) || rc=1
fi
if [ "${SKIP_MEASURE:-0}" != 1 ]; then
    for ((r = 1; r <= ROUNDS; r++)); do
        order="a b c"; [ $((r % 2)) = 0 ] && order="c b a"
        for cfg in $order; do
            echo "== measure $cfg round $r (${MEASURE_SECS}s)"
            (measure "$cfg" "$r") || rc=1
        done
    done
fi
echo "results appended to $OUT"
exit $rc
