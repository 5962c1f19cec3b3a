# Helpers for the HardMute Linux end-to-end tests. Sourced by run.sh; every test runs in its
# own subshell with its own private PipeWire + WirePlumber + pipewire-pulse (isolated
# XDG_RUNTIME_DIR), so nothing leaks between tests or into the user's session.
# shellcheck shell=bash

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HM_NODE=${HM_NODE:-$ROOT/target/debug/examples/hardmute_node}
HMWAV=${HMWAV:-$ROOT/target/release/hm-wav}
HMPLAY=${HMPLAY:-$ROOT/target/release/hm-play}
# The gate plugin the drop-in loads (built by run.sh; another checkout or a chroot may point
# elsewhere). GATE_DROPIN=none starts PipeWire without HardMute (a control).
HM_GATE_PLUGIN=${HM_GATE_PLUGIN:-$ROOT/target/release/libhardmute_linux_gate.so}
GATE_DROPIN=${GATE_DROPIN:-install}
# PipeWire 1.x (e.g. Debian 13, pw14/run.sh): WirePlumber 0.5 ignores the 0.4 Lua files in
# wireplumber/ and gets the same settings from pw14/wireplumber.conf.d; pw-cat reads raw samples
# from stdin only with --raw ("$PWCAT_RAW", empty where pw-cat has no such option, as on 0.3).
WP_VERSION=$(wireplumber --version 2>/dev/null | awk '/Linked with/{print $NF}')
PWCAT_RAW=$(pw-cat --help 2>&1 | grep -q -- '--raw' && echo --raw)

log() { echo "    [$(date +%T.%3N)] $*"; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
    local rc=$?
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ $rc -ne 0 ]; then
        log "logs kept in $WORK"
        for f in "$WORK"/*.log "$WORK"/node*.out; do
            [ -s "$f" ] && { echo "    --- $f"; tail -n 15 "$f" | sed 's/^/    /'; }
        done
    elif [ "${KEEP_WORK:-0}" != 1 ]; then
        rm -rf "$WORK"
    fi
    exit $rc
}

setup_env() {
    WORK=$(mktemp -d -t hm-e2e.XXXXXX)
    PIDS=()
    trap cleanup EXIT
    export XDG_RUNTIME_DIR=$WORK/run XDG_CONFIG_HOME=$WORK/config XDG_STATE_HOME=$WORK/state HOME=$WORK
    export PULSE_SERVER=unix:$WORK/run/pulse/native
    unset PIPEWIRE_REMOTE PIPEWIRE_RUNTIME_DIR PIPEWIRE_CONFIG_DIR PIPEWIRE_CONFIG_NAME \
        PIPEWIRE_NODE PIPEWIRE_AUTOCONNECT DBUS_SESSION_BUS_ADDRESS PULSE_RUNTIME_PATH || true
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
    mkdir -p "$XDG_CONFIG_HOME/pipewire" "$XDG_STATE_HOME"
    cp -r "$HERE/wireplumber" "$XDG_CONFIG_HOME/wireplumber"
    case ${WP_VERSION:-0.4} in
        0.[0-4].*) ;;
        *) cp -r "$HERE/pw14/wireplumber.conf.d" "$XDG_CONFIG_HOME/wireplumber/" ;;
    esac
    export HARDMUTE_CONFIG_DIR=$WORK/hmconf HARDMUTE_SOCKET=$WORK/run/hardmute.sock
}

# The product's install step, as a user runs it: `hardmute install` writes the PipeWire drop-in
# (and a systemd user unit, unused here) under this test's HOME/XDG_CONFIG_HOME; the private
# PipeWire below reads its config from there, so it loads exactly that drop-in.
install_gate() { # install_gate [extra `hardmute install` args]
    [ -x "$HMCLI" ] || (cd "$ROOT" && cargo build -q -p hardmute-cli) || die "cannot build hardmute"
    # Scripts that source this file (the leak tests) may not have built the gate.
    [ -f "$HM_GATE_PLUGIN" ] || (cd "$ROOT" && cargo build -q --release -p hardmute-linux-gate) ||
        die "cannot build the gate plugin"
    "$HMCLI" install --no-activate --gate-plugin "$HM_GATE_PLUGIN" "$@" >>"$WORK/install.log" 2>&1 ||
        die "hardmute install failed: $(cat "$WORK/install.log")"
    GATE_CONF=$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/50-hardmute.conf
    [ -f "$GATE_CONF" ] || die "hardmute install wrote no drop-in"
}

wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.01
    done
}

rig_pw_conf() { cp "$HERE/pipewire-e2e.conf" "$XDG_CONFIG_HOME/pipewire/pipewire.conf"; }

# The desktop stack: PipeWire, WirePlumber (session manager: moves apps whose source vanished,
# which is what the fail-closed design must survive) and pipewire-pulse (the PulseAudio API).
start_stack() {
    # The rig's PipeWire config, as the user's ~/.config/pipewire/pipewire.conf: PipeWire then
    # also reads the user's pipewire.conf.d/, where `hardmute install` put the drop-in.
    # (Kept while `hardmute guard on` holds the user's own file beside its edited copy: t_guard.sh.)
    local conf=$XDG_CONFIG_HOME/pipewire/pipewire.conf
    [ -e "$conf.hardmute-orig" ] || rig_pw_conf
    if [ "${DUP_DEFAULT_METADATA:-0}" = 1 ]; then  # the rig's old mistake, kept for t13
        sed -i 's/^context.objects = \[$/&\n    { factory = metadata args = { metadata.name = default } }/' "$conf"
        grep -q 'metadata.name = default' "$conf" || die "cannot add the second default metadata"
    fi
    if [ "$GATE_DROPIN" = install ] && [ -z "${GATE_CONF:-}" ]; then install_gate; fi
    pipewire >>"$WORK/pipewire.log" 2>&1 &
    PW_PID=$!
    PIDS+=($!)
    wait_for 10 pw-cli info 0 || die "pipewire did not start"
    wireplumber >>"$WORK/wireplumber.log" 2>&1 &
    PIDS+=($!)
    local wp=$!
    WP_PID=$wp
    wp_up() { local c; c=$(pw-cli ls Client 2>/dev/null) && grep -q 'WirePlumber' <<<"$c"; }
    wait_for 10 wp_up || die "wireplumber did not start"
    pipewire-pulse >>"$WORK/pulse.log" 2>&1 &
    PULSE_PID=$!
    PIDS+=($!)
    wait_for 10 test -S "$XDG_RUNTIME_DIR/pulse/native" || die "pipewire-pulse did not start"
    # One quantum for the whole test: a client joining with a smaller latency (parecord) would
    # otherwise change it mid-recording, and a quantum change shifts every stream by a buffer,
    # which the sample-exact checks would rightly call a glitch.
    pw-metadata -n settings 0 clock.force-quantum "${QUANTUM:-1024}" >/dev/null || die "cannot force the quantum"
    sleep 0.3
    kill -0 "$wp" || die "wireplumber exited"
}

# The stack going away as in `systemctl --user restart pipewire` (SIGTERM, then gone).
stop_stack() {
    kill "$PULSE_PID" "$WP_PID" "$PW_PID" 2>/dev/null
    wait "$PULSE_PID" "$WP_PID" "$PW_PID" 2>/dev/null || true
    wait_for 5 sh -c '! pw-cli info 0' || die "pipewire still answers"
}

has_port() { local p; p=$(pw-link "$1" 2>/dev/null) && grep -qx "$2" <<<"$p"; }
link() { wait_for 5 has_port -o "$1" && wait_for 5 has_port -i "$2" || die "no port $1 or $2"; pw-link "$1" "$2" || die "pw-link $1 $2"; }
node_id() { pw-cli ls Node | awk -v n="node.name = \"$1\"" '/^\tid /{id=$2; sub(",","",id)} index($0,n){print id}' | head -1; }
pw_node_exists() { [ -n "$(node_id "$1")" ]; }
count_nodes() { pw-cli ls Node | grep -c "node.name = \"$1\"" || true; }

# The fake physical mic: a null-audio-sink Audio/Source/Virtual that drives the graph (like a
# real ALSA source does, priority.driver about 2000), fed by hm-play with the test signal.
FAKE_POSITIONS="MONO"
make_fake_mic() {
    FAKE_POSITIONS=${1:-MONO}
    pw-cli create-node adapter "{ factory.name=support.null-audio-sink node.name=fake-mic
        node.description=\"Fake microphone\" media.class=Audio/Source/Virtual
        audio.position=[ $FAKE_POSITIONS ] audio.rate=48000 object.linger=true
        monitor.channel-volumes=false priority.driver=2000
        adapter.auto-port-config={ mode=dsp monitor=true control=false position=preserve }
        ${FAKE_MIC_PROPS:-} }" \
        >/dev/null || die "cannot create fake-mic"
    wait_for 5 has_port -o "fake-mic:capture_${FAKE_POSITIONS%% *}" || die "fake-mic has no ports"
}

link_player() {
    local pos
    for pos in $FAKE_POSITIONS; do link fake-mic-player:output_MONO "fake-mic:input_$pos"; done
}

play_fake_mic() { # play_fake_mic [hm-play args]
    "$HMPLAY" "$@" >"$WORK/player.log" 2>&1 &
    PIDS+=($!)
    link_player
}

# --- the HardMute daemon -------------------------------------------------------------------
# HM_IMPL=daemon (default): the real `hardmuted --backend linux`, driven by the `hardmute` CLI,
#   its state in $WORK/hmconf/state.toml.
# HM_IMPL=node: userspace/backend/linux's test binary (examples/hardmute_node.rs), commands on stdin.
# Either way the tests speak one small language: hm_start [--release-on-mute] [--source NAME],
# hm_cmd mute|unmute|status|stats|listeners|"source NAME", hm_kill9. Before the first start a
# test may write $WORK/mute-state ("muted"/"unmuted"; absent = a fresh install).
HM_IMPL=${HM_IMPL:-daemon}
HMD=${HMD:-$ROOT/target/debug/hardmuted}
HMCLI=${HMCLI:-$ROOT/target/debug/hardmute}
HM_N=0

hm_start() {
    HM_N=$((HM_N + 1))
    HM_OUT=$WORK/node$HM_N.out
    if [ "$HM_IMPL" = node ]; then
        local fifo=$WORK/ctl$HM_N
        mkfifo "$fifo"
        "$HM_NODE" --state-file "$WORK/mute-state" "$@" <"$fifo" >"$HM_OUT" 2>>"$WORK/node.log" &
        HM_PID=$!
        PIDS+=($HM_PID)
        exec {HM_FD}>"$fifo"
        wait_for 15 grep -q '^ready' "$HM_OUT" || die "hardmute node not ready"
        HM_READY=$(grep '^ready' "$HM_OUT")
        return
    fi
    if [ ! -x "$HMD" ] || [ ! -x "$HMCLI" ]; then   # scripts that source this file may not have built them
        (cd "$ROOT" && cargo build -q -p hardmuted -p hardmute-cli) || die "cannot build hardmuted and hardmute"
    fi
    if [ "$HM_N" = 1 ]; then    # the persisted state the test asked for
        mkdir -p "$HARDMUTE_CONFIG_DIR"
        local release=false device=
        while [ $# -gt 0 ]; do
            case $1 in
                --release-on-mute) release=true ;;
                --source) device=$2; shift ;;
            esac
            shift
        done
        if [ -e "$WORK/mute-state" ] || [ $release = true ] || [ -n "$device" ]; then
            local muted=true
            [ "$(cat "$WORK/mute-state" 2>/dev/null)" = unmuted ] && muted=false
            [ -e "$WORK/mute-state" ] || muted=true
            {
                echo "muted = $muted"
                echo "release_on_mute = $release"
                [ -n "$device" ] && echo "device = \"$device\""
            } >"$HARDMUTE_CONFIG_DIR/state.toml"
        fi
    fi
    "$HMD" --backend linux >>"$WORK/node.log" 2>&1 &
    HM_PID=$!
    PIDS+=($HM_PID)
    daemon_up() { "$HMCLI" --json status >"$HM_OUT" 2>/dev/null; }
    wait_for 15 daemon_up || die "hardmuted not up"
    HM_READY="ready muted=$(sed -n 's/.*"muted":\([a-z]*\).*/\1/p' "$HM_OUT")"
}

# One line per command in the test binary's format (JSON from the CLI turned into it).
json_counter() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
hm_cmd() {
    if [ "$HM_IMPL" != node ]; then
        local out rc
        case $1 in
            mute | unmute)
                out=$("$HMCLI" --json "$1" 2>&1) || { echo "error $out"; return; }
                local m; m=$(sed -n 's/.*"muted":\([a-z]*\).*/\1/p' <<<"$out")
                local word=unmuted; [ "$m" = true ] && word=muted
                echo "ok $word delivered=$(json_counter frames_delivered <<<"$out") zeroed=$(json_counter frames_zeroed <<<"$out")" ;;
            status)
                out=$("$HMCLI" --json status 2>&1) || { echo "error $out"; return; }
                local open; open=$(sed -n 's/.*"physical_open":\([a-z]*\).*/\1/p' <<<"$out")
                echo "status muted=$(sed -n 's/.*"muted":\([a-z]*\).*/\1/p' <<<"$out") physical_open=$open" ;;
            stats)
                out=$("$HMCLI" --json status 2>&1) || { echo "error $out"; return; }
                echo "stats delivered=$(json_counter frames_delivered <<<"$out") zeroed=$(json_counter frames_zeroed <<<"$out") underruns=$(json_counter underruns <<<"$out")" ;;
            listeners)
                "$HMCLI" --json listeners | python3 -c '
import json, sys
for l in json.loads(sys.stdin.read()):
    t = l["target"]
    cap = "HardMute" if t["kind"] == "virtual" else "Physical { source_name: \"%s\" }" % t["name"]
    print("listener captures=%s app=%s pid=%s binary=%s" % (cap, l["app"], l.get("pid"), l.get("binary")))
print("end")' ;;
            source*)
                local name=${1#source }; [ "$name" = - ] && name=default
                out=$("$HMCLI" use "$name" 2>&1); rc=$?
                if [ $rc = 0 ]; then echo ok; else echo "error ${out#hardmute: }"; fi ;;
            *) echo "error unknown command $1" ;;
        esac
        return
    fi
    local before; before=$(wc -l <"$HM_OUT")
    echo "$1" >&"$HM_FD"
    local want=$((before + 1))
    if [ "$1" = listeners ]; then
        has_end() { tail -n +"$((before + 1))" "$HM_OUT" | grep -qx end; }
        wait_for 5 has_end || die "no answer to $1"
        tail -n +"$((before + 1))" "$HM_OUT"
        return
    fi
    has_line() { [ "$(wc -l <"$HM_OUT")" -ge "$want" ]; }
    wait_for 5 has_line || die "no answer to $1"
    sed -n "${want}p" "$HM_OUT"
}

hm_kill9() {
    kill -9 "$HM_PID"
    wait "$HM_PID" 2>/dev/null || true
    [ "$HM_IMPL" = node ] && exec {HM_FD}>&-
    return 0
}

# The physical source is linked into the gate's input (by hardmuted). Whether it *runs* depends
# on whether anything records (the link is passive): see `physical_running`.
capture_linked() { local l; l=$(pw-link -l 2>/dev/null) && grep -q '|-> hardmute_capture:' <<<"$l"; }
physical_running() { local s; s=$(hm_cmd status) && grep -Eq 'physical_open=true|running=true' <<<"$s"; }
# pw-dump's state of a node by name ("running", "idle", "suspended", ...).
node_state() {
    pw-dump 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o.get("type", "").endswith("Node") and (o.get("info") or {}).get("props", {}).get("node.name") == sys.argv[1]:
        print(o["info"]["state"]); break' "$1"
}
not_running() { [ "$(node_state "$1")" != running ]; }
is_running() { [ "$(node_state "$1")" = running ]; }
# The gate's page, as any process of this user can reach it (the hostile tests write to it).
gate_page() { readlink "$XDG_RUNTIME_DIR/hardmute/gate"; }

# --- real clients ---
rec_pw() { # rec_pw NAME RATE CHANNELS FORMAT [TARGET]  (native PipeWire client)
    pw-record --target "${5:-hardmute_mic}" --rate "$2" --channels "$3" --format "$4" \
        -P "{ node.name = rec-$1 }" "$WORK/$1.wav" >"$WORK/rec-$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
}
rec_pa() { # rec_pa NAME RATE CHANNELS FORMAT [DEVICE]  (PulseAudio client via pipewire-pulse)
    parecord --device="${5:-hardmute_mic}" --rate="$2" --channels="$3" --format="$4" \
        --file-format=wav --client-name="rec-$1" --latency-msec=20 "$WORK/$1.wav" >"$WORK/rec-$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
}
# Recorders are started together, then awaited together: a client joining re-plans the graph,
# which can shift the streams already running by a quantum, so every sample-exact check skips
# the first SETTLE seconds, and the tests act only after that.
SETTLE=0.8
wait_recs() { # wait_recs NAME...: every recorder linked, then let the graph settle
    local n
    for n in "$@"; do wait_for 10 client_linked "rec-$n" || die "recorder $n never linked"; done
    sleep "$SETTLE"
}
client_linked() { local l; l=$(pw-link -l) && grep -q "|-> $1:" <<<"$l"; }
linked_from() { # linked_from SOURCE_NODE CLIENT: a link SOURCE_NODE:* -> CLIENT:* exists
    pw-link -l | awk -v s="$1:" -v c="$2:" 'index($0,s)==1{cur=1; next} /^[^ ]/{cur=0} cur && index($0,"|-> " c){f=1} END{exit !f}'
}
# Chromium, headless, records like a web app (getusermedia.html) through pipewire-pulse; prints
# the page's JSON result. chromium_record NAME [INPUT_LABEL]  (no label: no device chosen).
chromium_record() {
    local name=$1 url="file://$HERE/getusermedia.html" log=$WORK/chromium-$1.log
    command -v chromium >/dev/null || die "chromium is not installed (scripts/deps.sh installs it)"
    [ -n "${2:-}" ] && url="$url#$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$2")"
    # --no-sandbox: the rig runs as root; the fake UI grants the microphone as a click would.
    setsid chromium --headless=new --no-sandbox --no-first-run --use-fake-ui-for-media-stream \
        --autoplay-policy=no-user-gesture-required --enable-logging=stderr --v=0 \
        --user-data-dir="$WORK/chromium-$name" "$url" >"$log" 2>&1 &
    local pid=$!
    wait_for 40 grep -q "HM-RESULT" "$log"
    kill -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    sed -n 's/.*"HM-RESULT \(.*\)", source: .*/\1/p' "$log" | head -1
}
chromium_field() { python3 -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print(json.dumps(v) if isinstance(v, list) else v)' "$1" "$2"; }
stop_rec() { local n p; for n in "$@"; do p="PID_$n"; kill -INT "${!p}" 2>/dev/null; wait "${!p}" 2>/dev/null || true; done; }

analyse() { "$HMWAV" analyse "$@" | sed 's/^/    /'; return "${PIPESTATUS[0]}"; }
