#!/usr/bin/env bash
# Headless desktop end-to-end test of hardmute-panel (Linux): a private Xvfb display, a private
# D-Bus session with a minimal StatusNotifierWatcher, hardmuted with the simulated backend or
# (HARDMUTE_E2E_BACKEND=linux) the real PipeWire backend, and xdotool pressing the real hotkey.
#
# Checks: the hotkey toggles the daemon's state (read back with `hardmute status`), the tray's
# StatusNotifierItem (tooltip, icon) follows, the tray menu mutes and unmutes, clicks and typing
# in the real panel window reach the daemon (state button, release-on-mute, a new hotkey stored
# by the daemon), a leftover panel.toml is migrated once, push-to-talk holds the mic live only
# while the keys are down, a mode set with the CLI is followed, Quit ends the agent, a missing
# display is reported; the level feed sends nothing while muted and a level while live, and the
# panel draws it.
# With HARDMUTE_E2E_BACKEND=linux, also on a private headless PipeWire + WirePlumber (from
# tests/e2e-linux) with a fake physical mic playing a known noise: recordings of "HardMute
# Microphone" (pw-record, judged by hm-wav) are exact zeros while muted (fresh start, tray Mute)
# and the fake mic's signal after the hotkey unmuted.
# About 35 s (simulated) after the build. Also: the default input reported unprotected and fixed
# from the banner, the tray menu and "Check protection"'s table; the guard's toggle in the panel
# (simulated: on and holding, the check closed, off again; linux: no toggle, the CLI said); a daemon whose device another
# user owns (simulated); one panel per user (a second start shows the first's window).
#
#   tests/desktop-e2e/run.sh                 # the checks; ends with "N passed, N failed"
#   HARDMUTE_E2E_BACKEND=linux tests/desktop-e2e/run.sh   # against the real Linux backend
#   UPDATE_DOCS=1 tests/desktop-e2e/run.sh   # also copies the screenshots into docs/
#   MEASURE_SECS=60 tests/desktop-e2e/run.sh # only measures panel CPU/RSS (meter running, then idle)
#   PANEL_BIN=target/release/hardmute-panel MEASURE_SECS=60 tests/desktop-e2e/run.sh  # a release build
#
# Needs: xvfb xdotool imagemagick dbus python3-gi (system python), fonts-dejavu-core; for the
# linux backend also pipewire pipewire-bin pipewire-pulse wireplumber (and, to build,
# libpipewire-0.3-dev libspa-0.2-dev clang libclang-dev).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if [ "${1:-}" != "--inner" ]; then
    missing=""
    for tool in Xvfb xdotool dbus-run-session gdbus import; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    /usr/bin/python3 -c 'import gi' 2>/dev/null || missing="$missing python3-gi"
    if [ -n "$missing" ]; then
        echo "missing:$missing (apt-get install xvfb xdotool imagemagick dbus python3-gi)"
        echo "0 passed, 1 failed"
        exit 1
    fi
    BACKEND=${HARDMUTE_E2E_BACKEND:-simulated}
    TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    if [ -z "${BIN_DIR:-}" ]; then
        (cd "$ROOT" && cargo build -q -p hardmuted -p hardmute-cli -p hardmute-panel) || {
            echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
        BIN_DIR=$TARGET_DIR/debug
    fi
    if [ "$BACKEND" = linux ]; then
        # The fake physical mic's player and the WAV analyser of tests/e2e-linux.
        (cd "$ROOT" && cargo build -q --release -p hardmute-e2e-wavtool) || {
            echo "build failed (hardmute-e2e-wavtool)"; echo "0 passed, 1 failed"; exit 1; }
        for tool in pipewire wireplumber pipewire-pulse pw-record pw-cli pw-link; do
            command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
        done
        if [ -n "$missing" ]; then
            echo "missing:$missing (apt-get install pipewire pipewire-bin pipewire-pulse wireplumber)"
            echo "0 passed, 1 failed"
            exit 1
        fi
    fi
    if [ -n "${PANEL_BIN:-}" ]; then
        PANEL_BIN="$(cd "$(dirname "$PANEL_BIN")" && pwd)/$(basename "$PANEL_BIN")"
        export PANEL_BIN
    fi
    WORK=$(mktemp -d /tmp/hardmute-desktop-e2e.XXXXXX)
    # Xvfb picks a free display itself and reports it (-displayfd): other runs on the same
    # machine may start at the same moment, so guessing a free number races.
    Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
    XVFB=$!
    display=""
    for _ in $(seq 1 100); do
        display=$(tr -dc 0-9 <"$WORK/display" 2>/dev/null)
        [ -n "$display" ] && [ -S "/tmp/.X11-unix/X$display" ] && break
        sleep 0.1
    done
    [ -n "$display" ] || { echo "Xvfb did not start: $(cat "$WORK/xvfb.log")"; echo "0 passed, 1 failed"; exit 1; }
    DISPLAY=":$display" WORK="$WORK" BIN_DIR="$BIN_DIR" ROOT="$ROOT" BACKEND="$BACKEND" \
        HMWAV="$TARGET_DIR/release/hm-wav" HMPLAY="$TARGET_DIR/release/hm-play" \
        dbus-run-session -- "$0" --inner
    rc=$?
    kill "$XVFB" 2>/dev/null; wait "$XVFB" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then echo "logs and screenshots kept in $WORK"; else rm -rf "$WORK"; fi
    exit $rc
fi

# ---- inside the private D-Bus session, DISPLAY set ----
PASSED=0
FAILED=0
check() { # check "what" command...
    local what=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); echo "ok   - $what"
    else FAILED=$((FAILED + 1)); echo "FAIL - $what"; fi
}

export HARDMUTE_SOCKET="$WORK/run/hardmute.sock"
export HARDMUTE_CONFIG_DIR="$WORK/config"
export XDG_RUNTIME_DIR="$WORK/run"
mkdir -p "$WORK/run" "$WORK/config"
chmod 700 "$WORK/run"
HARDMUTE="$BIN_DIR/hardmute"
# PANEL_BIN=target/release/hardmute-panel measures a release build against debug daemon/CLI.
PANEL_BIN=${PANEL_BIN:-$BIN_DIR/hardmute-panel}
PIDS=()
summary() { echo "$PASSED passed, $FAILED failed"; }

if [ "$BACKEND" = linux ]; then
    # The audio side of tests/e2e-linux: a private headless PipeWire + WirePlumber +
    # pipewire-pulse in $XDG_RUNTIME_DIR, a fake physical mic (null-audio-sink driving the graph)
    # playing hm-play's 1 s periodic noise, pw-record as the app, hm-wav as the judge.
    # shellcheck source=../e2e-linux/lib.sh
    source "$ROOT/tests/e2e-linux/lib.sh"   # sets HERE to tests/e2e-linux (its config lives there)
    die() { echo "FAIL - $*"; FAILED=$((FAILED + 1)); summary; exit 1; }
    export XDG_CONFIG_HOME=$WORK/xdg-config
    unset PIPEWIRE_REMOTE PIPEWIRE_RUNTIME_DIR PIPEWIRE_CONFIG_DIR PIPEWIRE_CONFIG_NAME \
        PIPEWIRE_NODE PIPEWIRE_AUTOCONNECT PULSE_RUNTIME_PATH || true
    export PULSE_SERVER=unix:$XDG_RUNTIME_DIR/pulse/native
    mkdir -p "$XDG_CONFIG_HOME/pipewire"   # start_stack puts the rig's pipewire.conf there
    cp -r "$HERE/wireplumber" "$XDG_CONFIG_HOME/wireplumber"
fi
# Stops everything this script started, newest first (the panel and hardmuted before PipeWire).
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

/usr/bin/python3 "$ROOT/tests/desktop-e2e/sni_watcher.py" >"$WORK/watcher.log" 2>&1 &
PIDS+=($!)
if [ "$BACKEND" = linux ]; then
    start_stack
    make_fake_mic
    play_fake_mic
fi
# The simulated OS default input lives in this file (HARDMUTE_SIM_DEFAULT_INPUT_FILE): the user's
# default before HardMute is the simulated noise mic.
SIM_DEFAULT=$WORK/sim-default-input
echo sim-noise >"$SIM_DEFAULT"
start_daemon() { # start_daemon LOG [VAR=value...]: hardmuted in the background, waits for it
    local log=$1; shift
    env "$@" HARDMUTE_SIM_DEFAULT_INPUT_FILE="$SIM_DEFAULT" \
        "$BIN_DIR/hardmuted" --backend "$BACKEND" >"$WORK/$log" 2>&1 &
    DAEMON=$!
    PIDS+=($DAEMON)
    for _ in $(seq 1 100); do "$HARDMUTE" status >/dev/null 2>&1 && break; sleep 0.1; done
}
start_daemon daemon.log

# recording_is zero|signal NAME: what an app recording the HardMute Microphone gets right now
# (linux backend only). pw-record for 2 s after the graph settled; hm-wav checks every sample is
# exactly 0, or that the recording is the fake mic's noise (aligned, RMS within 0.5 dB, no gap).
recording_is() {
    local want=$1 name=$2
    rec_pw "$name" 48000 1 f32
    wait_recs "$name"
    sleep 2
    stop_rec "$name"
    if [ "$want" = zero ]; then
        analyse "$WORK/$name.wav" --skip 1.0 --min-seconds 1.5 --expect-zero
    else
        analyse "$WORK/$name.wav" --skip 1.0 --min-seconds 1.5 --expect-signal --tol 0.5 --max-zero-run 8
    fi
}
# level_is none|some: what a client of hardmuted's level feed (subscribe_level) gets in 1.5 s:
# not one event (muted, while the mic plays), or >= 10 events (<= 20/s) with a non-zero level.
level_is() {
    local out
    out=$(/usr/bin/python3 "$ROOT/tests/desktop-e2e/level_client.py" "$HARDMUTE_SOCKET" 1.5)
    echo "     level feed: $out"
    case $1 in
        none) [[ $out == "subscribed=True events=0 "* ]] ;;
        some) echo "$out" | awk '{split($2,e,"="); split($3,p,"="); exit !(e[2] >= 10 && e[2] <= 32 && p[2] > 0.05)}' ;;
    esac
}
if [ "$BACKEND" = linux ]; then
    check "linux backend: hardmuted links the fake mic into the gate" \
        bash -c "for _ in \$(seq 1 100); do \"$HARDMUTE\" --json status | grep -q '\"physical_open\":true' && exit 0; sleep 0.1; done; exit 1"
fi

# state_is muted|live [source]: polls `hardmute status` for up to 5 s.
state_is() {
    local want=$1 source=${2:-} json
    for _ in $(seq 1 50); do
        json=$("$HARDMUTE" --json status 2>/dev/null)
        if [ "$want" = muted ]; then echo "$json" | grep -q '"muted":true' || { sleep 0.1; continue; }
        else echo "$json" | grep -q '"muted":false' || { sleep 0.1; continue; }; fi
        [ -z "$source" ] && return 0
        echo "$json" | grep -q "\"source\":\"$source\"" && return 0
        sleep 0.1
    done
    echo "     status: $json"
    return 1
}

start_panel() { # start_panel logname [args...]
    local log=$1; shift
    "$PANEL_BIN" "$@" >"$WORK/$log" 2>&1 &
    PANEL=$!
    PIDS+=($PANEL)
    WID=""
    # Generous waits: the first start of a fresh debug build on a loaded 2-core CI machine is slow.
    [ "${HIDDEN:-0}" = 1 ] || for _ in $(seq 1 300); do
        WID=$(xdotool search --name "HardMute control panel" 2>/dev/null | head -1)
        [ -n "$WID" ] && break
        sleep 0.1
    done
    ITEM=""
    for _ in $(seq 1 150); do
        ITEM=$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
            --method org.freedesktop.DBus.ListNames | grep -o "org.kde.StatusNotifierItem-$PANEL-[0-9]*" | head -1)
        [ -n "$ITEM" ] && break
        sleep 0.1
    done
    # The hotkey grab and the first state arrive just after the window maps.
    for _ in $(seq 1 150); do grep -q "global hotkey ready" "$WORK/$log" && break; sleep 0.1; done
    sleep 0.5
}

sni_get() { gdbus call --session --dest "$ITEM" --object-path /StatusNotifierItem \
    --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierItem "$1" 2>/dev/null; }
tooltip_is() { # tooltip_is TEXT: polls the item's ToolTip for up to 3 s
    for _ in $(seq 1 30); do sni_get ToolTip | grep -q "$1" && return 0; sleep 0.1; done
    echo "     ToolTip: $(sni_get ToolTip | cut -c1-120)"; return 1
}
icon_hash() { sni_get IconPixmap | md5sum | cut -c1-32; }
menu_click() { # menu_click LABEL (a menu whose items just changed may renumber them: retried)
    local path layout id attempt
    for attempt in 1 2 3; do
        path=$(sni_get Menu | grep -o "'/[^']*'" | tr -d "'")
        layout=$(gdbus call --session --dest "$ITEM" --object-path "$path" \
            --method com.canonical.dbusmenu.GetLayout -- 0 -1 "@as []")
        id=$(echo "$layout" | grep -o "([0-9]*, {[^}]*'label': <'$1'>" | head -1 | grep -o '^([0-9]*' | tr -d '(')
        if [ -n "$id" ] && gdbus call --session --dest "$ITEM" --object-path "$path" \
            --method com.canonical.dbusmenu.Event -- "$id" clicked "<0>" 0 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.3
    done
    echo "     no menu item '$1' in: $(echo "$layout" | cut -c1-300)"; return 1
}
quit_panel() { # Quit from the tray menu; a panel still running after 3 s is a failure, then killed
    menu_click Quit
    for _ in $(seq 1 30); do kill -0 "$PANEL" 2>/dev/null || return 0; sleep 0.1; done
    echo "     the panel did not quit"; kill "$PANEL"; wait "$PANEL" 2>/dev/null; return 1
}
shot() { timeout 20 import -window "$WID" "$WORK/$1" 2>/dev/null && [ -s "$WORK/$1" ]; }

measure() { # measure LABEL: CPU and RSS of $PANEL over $MEASURE_SECS seconds
    local ticks u0 s0 u1 s1 t0 t1 rss hwm cpu
    ticks=$(getconf CLK_TCK)
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$PANEL/stat")
    t0=$(date +%s.%N)
    sleep "$MEASURE_SECS"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PANEL/stat")
    t1=$(date +%s.%N)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$PANEL/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PANEL/status")
    cpu=$(echo "scale=2; 100 * ($u1 + $s1 - $u0 - $s0) / $ticks / ($t1 - $t0)" | bc)
    echo "$1, ${MEASURE_SECS} s: CPU ${cpu}% of one core, RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
}

if [ -n "${MEASURE_SECS:-}" ]; then
    echo "binary: $PANEL_BIN"
    start_panel panel-measure.log --demo-level
    "$HARDMUTE" unmute >/dev/null # the meter runs while the physical mic is open
    sleep 2
    measure "panel + tray + hotkey, meter redrawn at 20 Hz (--demo-level), live"
    shot measure.png
    kill "$PANEL"; wait "$PANEL" 2>/dev/null
    start_panel panel-idle.log
    sleep 2
    measure "panel + tray + hotkey, no level feed (idle window), live"
    if [ "$BACKEND" = linux ]; then
        # The real feed: an app records HardMute Microphone, so the physical mic is open and
        # hardmuted streams the level (<= 20 Hz) that the panel draws.
        rec_pw feed 48000 1 f32
        wait_recs feed
        sleep 2
        measure "panel + tray + hotkey, drawing hardmuted's level feed (an app records HardMute), live"
        stop_rec feed
    fi
    exit 0
fi

# 1. No display: the agent says so instead of pretending.
out=$(env -u DISPLAY "$PANEL_BIN" --no-tray 2>&1); rc=$?
check "without a display the panel exits non-zero and says why" \
    bash -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -qi 'display'" _ "$out"

# 2. Toggle mode (the default Ctrl+Alt+M).
start_panel panel.log
check "the panel window is mapped" test -n "$WID"
check "the tray registered a StatusNotifierItem" test -n "$ITEM"
check "the panel grabbed the hotkey" grep -q "global hotkey ready" "$WORK/panel.log"
check "fresh install: muted" state_is muted
[ "$BACKEND" = linux ] && check "recording HardMute Microphone while muted: exact zeros (pw-record)" recording_is zero fresh_muted
check "muted: the level feed sends nothing (the mic is playing)" level_is none
check "tray tooltip says MUTED" tooltip_is "HardMute: MUTED"
MUTED_ICON=$(icon_hash)
check "screenshot of the muted panel" shot panel-muted.png

xdotool key ctrl+alt+m
check "hotkey Ctrl+Alt+M unmutes (hardmute status: live, source hotkey)" state_is live hotkey
check "tray tooltip follows: LIVE" tooltip_is "HardMute: LIVE"
check "tray icon follows" bash -c "[ \"$(icon_hash)\" != \"$MUTED_ICON\" ]"
[ "$BACKEND" = linux ] && check "recording after the hotkey unmuted: the fake mic's signal" recording_is signal hotkey_live
check "live: the level feed sends a non-zero level at <= 20 Hz" level_is some
check "live: the panel draws the daemon's level on its meter" grep -q "meter: drawing hardmuted's level" "$WORK/panel.log"
sleep 0.3
check "screenshot of the live panel" shot panel-live.png

xdotool key ctrl+m
sleep 0.5
check "Ctrl+M alone does nothing" state_is live hotkey

menu_click Mute
check "tray menu Mute mutes (source tray)" state_is muted tray
check "tray tooltip follows: MUTED" tooltip_is "HardMute: MUTED"
check "tray icon is the muted one again" bash -c "[ \"$(icon_hash)\" = \"$MUTED_ICON\" ]"
[ "$BACKEND" = linux ] && check "recording after tray Mute: exact zeros" recording_is zero tray_muted

menu_click Unmute
check "tray menu Unmute unmutes (source tray)" state_is live tray
xdotool key ctrl+alt+m
check "hotkey mutes again" state_is muted hotkey
[ "$BACKEND" = linux ] && check "recording after the hotkey muted: exact zeros" recording_is zero hotkey_muted

"$HARDMUTE" unmute >/dev/null
check "a change from the CLI reaches the tray" tooltip_is "HardMute: LIVE"
"$HARDMUTE" mute >/dev/null
# The state button does what its label says; let the panel show MUTED before clicking it.
tooltip_is "HardMute: MUTED" >/dev/null

# The panel itself, driven with the mouse and keyboard in the real window (coordinates in the
# window at its preferred 460x640 size; see docs/panel-muted.png).
field_is() { # field_is NAME VALUE: polls `hardmute --json status` for "NAME":VALUE
    for _ in $(seq 1 30); do "$HARDMUTE" --json status | grep -q "\"$1\":$2" && return 0; sleep 0.1; done
    echo "     status: $("$HARDMUTE" --json status)"; return 1
}
xdotool mousemove --window "$WID" 230 80 click 1
check "a click on the panel's MUTED button unmutes (source panel)" state_is live panel
xdotool mousemove --window "$WID" 230 80 click 1
check "a click on LIVE mutes (source panel)" state_is muted panel
xdotool mousemove --window "$WID" 25 512 click 1
check "the release-on-mute checkbox sets the daemon option" field_is release_on_mute true
check "muted with release-on-mute: the physical mic is closed" field_is physical_open false
sleep 0.3
check "screenshot: mic released while muted" shot panel-released.png
xdotool mousemove --window "$WID" 25 512 click 1
check "unticking it clears the option" field_is release_on_mute false

# Without a window manager nothing gives the window keyboard focus: do it as a WM would.
xdotool windowfocus --sync "$WID"
xdotool mousemove --window "$WID" 125 395 click 1
xdotool key ctrl+a
xdotool type --delay 20 "Ctrl+Alt+K"
xdotool key Return
for _ in $(seq 1 30); do grep -q "hotkey: Ctrl+Alt+K active" "$WORK/panel.log" && break; sleep 0.1; done
xdotool key ctrl+alt+m
sleep 0.5
check "after typing Ctrl+Alt+K into the panel, the old Ctrl+Alt+M is released" state_is muted panel
xdotool key ctrl+alt+k
check "the new hotkey Ctrl+Alt+K unmutes" state_is live hotkey
xdotool key ctrl+alt+k
check "and mutes again" state_is muted hotkey
check "the new hotkey is stored by the daemon (hardmute status)" field_is hotkey '"Ctrl+Alt+K"'
check "and not in a panel.toml" test ! -e "$HARDMUTE_CONFIG_DIR/panel.toml"

xdotool mousemove --window "$WID" 196 231 click 1
sleep 0.5
check "screenshot of the listeners tab" shot panel-listeners.png
xdotool mousemove --window "$WID" 390 231 click 1
sleep 0.5
check "screenshot of the About tab (Slint attribution)" shot panel-about.png

menu_click Quit
for _ in $(seq 1 30); do kill -0 "$PANEL" 2>/dev/null || break; sleep 0.1; done
check "tray menu Quit ends the agent" bash -c "! kill -0 $PANEL 2>/dev/null"
check "the daemon keeps its state after the agent quits" state_is muted

# 3. Push-to-talk, from a panel.toml an older panel left behind (it kept the hotkey itself):
#    handed to the daemon once, then live only while the keys are held.
printf 'hotkey = "Ctrl+Alt+M"\nmode = "push_to_talk"\n' >"$HARDMUTE_CONFIG_DIR/panel.toml"
HIDDEN=1 start_panel panel-ptt.log --hidden
for _ in $(seq 1 50); do grep -q "hotkey: Ctrl+Alt+M active (hold to talk)" "$WORK/panel-ptt.log" && break; sleep 0.1; done
check "a leftover panel.toml is migrated to the daemon: Ctrl+Alt+M, push to talk" \
    bash -c "\"$HARDMUTE\" --json status | grep -q '\"hotkey\":\"Ctrl+Alt+M\",\"hotkey_mode\":\"push_to_talk\"'"
check "and renamed, so it is migrated only once" \
    bash -c "[ ! -e \"$HARDMUTE_CONFIG_DIR/panel.toml\" ] && [ -e \"$HARDMUTE_CONFIG_DIR/panel.toml.migrated\" ]"
visible_window() { xdotool search --onlyvisible --name "HardMute control panel" 2>/dev/null | head -1; }
check "--hidden (autostart): tray registered, no window shown" \
    bash -c "[ -n \"$ITEM\" ] && [ -z \"\$(xdotool search --onlyvisible --name 'HardMute control panel' 2>/dev/null)\" ]"
menu_click "Open panel"
for _ in $(seq 1 50); do WID=$(visible_window); [ -n "$WID" ] && break; sleep 0.1; done
check "tray menu Open panel shows the window" test -n "$WID"
xdotool keydown ctrl+alt+m
check "push-to-talk: held keys unmute" state_is live hotkey
xdotool keyup m
check "push-to-talk: releasing mutes" state_is muted hotkey
xdotool keyup ctrl+alt

# The mode changed from the CLI (the daemon owns it): the running panel follows.
seen=$(wc -l <"$WORK/panel-ptt.log")
"$HARDMUTE" set hotkey-mode toggle >/dev/null
for _ in $(seq 1 50); do
    tail -n +"$((seen + 1))" "$WORK/panel-ptt.log" | grep -q "hotkey: Ctrl+Alt+M active (press to toggle)" && break
    sleep 0.1
done
xdotool key ctrl+alt+m
check "hardmute set hotkey-mode toggle: a press and release now leaves it live" state_is live hotkey
sleep 0.5
check "and it stays live after the release" state_is live hotkey
"$HARDMUTE" mute >/dev/null

# 4. Protection: the default input. The user picks another default after HardMute claimed
#    it; hardmuted notices, the tray and the panel say so plainly and offer the one-click fix;
#    "Check protection" runs `hardmute check` and shows its table with a Fix button.
check "tray menu Quit ends the push-to-talk panel" quit_panel
field_within() { # field_within SECS NAME VALUE: polls `hardmute --json status` for "NAME":VALUE
    for _ in $(seq 1 $(($1 * 10))); do "$HARDMUTE" --json status | grep -q "\"$2\":$3" && return 0; sleep 0.1; done
    echo "     status: $("$HARDMUTE" --json status)"; return 1
}
unprotect() { # the user makes another input the default
    if [ "$BACKEND" = linux ]; then pactl set-default-source fake-mic
    else echo sim-noise >"$SIM_DEFAULT"; fi
}
title_has() { # title_has TEXT: polls the window's title (what window lists and taskbars show)
    for _ in $(seq 1 30); do xdotool getwindowname "$WID" 2>/dev/null | grep -q -- "$1" && return 0; sleep 0.1; done
    echo "     title: $(xdotool getwindowname "$WID" 2>/dev/null)"; return 1
}
log_has() { # log_has LOG TEXT [SECS]: polls a log for TEXT
    for _ in $(seq 1 $((${3:-5} * 10))); do grep -q -- "$2" "$WORK/$1" && return 0; sleep 0.1; done
    echo "     not in $1: $2"; return 1
}
menu_has() { # menu_has TEXT: the tray menu's layout contains TEXT
    local path
    path=$(sni_get Menu | grep -o "'/[^']*'" | tr -d "'")
    gdbus call --session --dest "$ITEM" --object-path "$path" \
        --method com.canonical.dbusmenu.GetLayout -- 0 -1 "@as []" | grep -q -- "$1"
}
menu_item_disabled() { # menu_item_disabled LABEL: the item is there and not enabled
    local path item
    path=$(sni_get Menu | grep -o "'/[^']*'" | tr -d "'")
    item=$(gdbus call --session --dest "$ITEM" --object-path "$path" \
        --method com.canonical.dbusmenu.GetLayout -- 0 -1 "@as []" | grep -o "{[^}]*'label': <'$1'>[^}]*}")
    echo "$item" | grep -q "'enabled': <false>" || { echo "     item: $item"; return 1; }
}
if [ "$BACKEND" = simulated ]; then
    check "hardmuted made HardMute the (simulated) default input at install" \
        bash -c "[ \"\$(cat '$SIM_DEFAULT')\" = hardmute_mic ]"
fi
check "status: the default input is protected" field_within 5 default_input_protected true
start_panel panel-protect.log
unprotect
check "the user picks another default: hardmuted reports it unprotected" field_within 8 default_input_protected false
check "tray tooltip says apps on the default input are NOT protected" \
    tooltip_is "HardMute: MUTED — apps on the default input are NOT protected"
check "the panel's title says the default input is NOT protected" title_has "default input NOT protected"
check "the panel says it plainly (its log repeats the banner)" \
    log_has panel-protect.log "Apps on the default input are NOT protected"
check "the tray menu offers the fix" menu_has "Protect the default input"
sleep 0.3
check "screenshot: default input not protected" shot panel-unprotected.png
# The banner's Protect button (right of the banner, under the state button).
xdotool mousemove --window "$WID" 412 192 click 1
check "a click on the banner's Protect makes HardMute the default again" field_within 5 default_input_protected true
check "the tooltip is plain MUTED again" tooltip_is "'HardMute: MUTED'"
check "the title drops the warning" bash -c "for _ in \$(seq 1 30); do xdotool getwindowname $WID | grep -q 'NOT protected' || exit 0; sleep 0.1; done; exit 1"
unprotect
field_within 8 default_input_protected false >/dev/null
menu_click "Protect the default input"
check "tray menu 'Protect the default input' fixes it too" field_within 5 default_input_protected true
unprotect
field_within 8 default_input_protected false >/dev/null
# The Protection tab (the banner above moves the tabs down), then "Check protection".
xdotool mousemove --window "$WID" 280 293 click 1
sleep 0.3
xdotool mousemove --window "$WID" 380 345 click 1
check "Check protection runs hardmute check: the default input is OPEN, with a one-click fix" \
    log_has panel-protect.log "default input=OPEN (one-click fix)" 20
sleep 0.5
check "screenshot: the protection check" shot panel-check.png
xdotool mousemove --window "$WID" 425 420 click 1
check "its Fix button makes HardMute the default input" field_within 5 default_input_protected true
check "and the check, run again, finds the default input closed" \
    log_has panel-protect.log "default input=closed" 20
if [ "$BACKEND" = simulated ]; then
    # The simulated backend models the daemon-held guard (macOS/Windows), off by default: after
    # the fix it is the one open route; its bridge on the physical mic is HardMute's own.
    check "and, on the simulated backend, the one open route left is the guard, off by default" \
        log_has panel-protect.log "check: 1 route is OPEN.*guard (apps kept off the physical mic)=OPEN" 5
    check "the bridge on the physical mic is not an open route (it is HardMute's own)" \
        log_has panel-protect.log "check: 1 route is OPEN.*apps recording a physical mic now=closed" 5
    # The guard's toggle, below the check table (macOS/Windows: hardmuted holds the guard;
    # modelled by the simulated backend). With the banner gone after the fix it is at y 495.
    check "the panel offers the guard's toggle: off" log_has panel-protect.log "guard: Off: any app may open"
    xdotool mousemove --window "$WID" 230 495 click 1
    check "a click on the panel's guard toggle turns hardmuted's guard on, and it holds (hardmute status)" \
        field_within 5 guard '{"on":true,"holds":true}'
    check "the panel says the guard holds" log_has panel-protect.log "guard: On: hardmuted holds the physical mic"
    check "the check table, run again by itself after the switch: the guard closed, no route open" \
        log_has panel-protect.log "check: No open route found.*guard (apps kept off the physical mic)=closed" 20
    sleep 0.3
    check "screenshot: the guard on" shot panel-guard.png
    xdotool mousemove --window "$WID" 230 495 click 1
    check "a second click turns the guard off again (hardmute status)" field_within 5 guard '{"on":false,"holds":false}'
else
    # Linux backend: the guard is configuration `hardmute guard on` writes; no toggle.
    check "the panel has no guard toggle and says to run hardmute guard on" \
        log_has panel-protect.log "guard: On Linux the guard is PipeWire and WirePlumber configuration.*hardmute guard on"
fi
check "tray menu Quit ends the panel" quit_panel

# 5. Another user owns the device (#14): the daemon stays up muted and says why; the panel and
#    tray say who can unmute and do not offer an unmute; mute still works.
if [ "$BACKEND" = simulated ]; then
    "$HARDMUTE" unmute >/dev/null   # saved live: the refused unmute at start is the test
    kill "$DAEMON"; wait "$DAEMON" 2>/dev/null
    start_daemon daemon-not-owner.log HARDMUTE_SIM_NOT_OWNER="the HardMute Microphone belongs to uid 1001 (simulated)"
    check "not the owner: hardmuted stays up, muted, and status says why" \
        bash -c "\"$HARDMUTE\" --json status | grep -q '\"muted\":true.*\"not_owner\":\"the HardMute Microphone belongs to uid 1001'"
    out=$("$HARDMUTE" unmute 2>&1); rc=$?
    check "hardmute unmute is refused (not the owner) and it stays muted" \
        bash -c "[ $rc -ne 0 ] && echo \"\$1\" | grep -q 'uid 1001' && \"$HARDMUTE\" --json status | grep -q '\"muted\":true'" _ "$out"
    check "hardmute mute is allowed" "$HARDMUTE" mute
    HIDDEN=1 start_panel panel-not-owner.log --hidden
    check "tray tooltip: another user owns the mic, only they can unmute" \
        tooltip_is "HardMute: MUTED — another user owns the microphone: only they can unmute it"
    check "tray menu does not offer the unmute (disabled, says only the owner can)" menu_item_disabled "Unmute (only the owning user can)"
    # 6. One panel per user (#16): a second start (a menu click while the autostarted panel
    #    runs hidden) shows the first one's window and exits 0; no second window or tray icon.
    "$PANEL_BIN" >"$WORK/panel-second.log" 2>&1; rc=$?
    check "a second panel exits 0 and says one is running" \
        bash -c "[ $rc -eq 0 ] && grep -q 'already running for this user' '$WORK/panel-second.log'"
    for _ in $(seq 1 50); do WID=$(visible_window); [ -n "$WID" ] && break; sleep 0.1; done
    check "the first panel showed its window" test -n "$WID"
    check "exactly one panel window" bash -c "[ \$(xdotool search --name 'HardMute control panel' | wc -l) -eq 1 ]"
    check "exactly one tray icon" bash -c "[ \$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.ListNames | grep -o 'StatusNotifierItem-[0-9]*-[0-9]*' | wc -l) -eq 1 ]"
    # The first shows its window on its UI thread just after answering: wait for that log line.
    log_has panel-not-owner.log "panel window shown" >/dev/null
    shown=$(grep -c "panel window shown" "$WORK/panel-not-owner.log")
    "$PANEL_BIN" >"$WORK/panel-third.log" 2>&1; rc=$?
    one_visible_window() {
        for _ in $(seq 1 30); do
            [ "$(xdotool search --onlyvisible --name 'HardMute control panel' 2>/dev/null | wc -l)" -eq 1 ] && return 0
            sleep 0.1
        done
        echo "     visible panel windows: $(xdotool search --onlyvisible --name 'HardMute control panel' | wc -l)"; return 1
    }
    check "a third start while the window is open: exits 0, the first raises (maps again) its one window" \
        bash -c "[ $rc -eq 0 ] && for _ in \$(seq 1 30); do [ \$(grep -c 'panel window shown' '$WORK/panel-not-owner.log') -gt $shown ] && exit 0; sleep 0.1; done; exit 1"
    check "still exactly one visible panel window" one_visible_window
    WID=$(visible_window)
    check "the panel's title says another user owns the mic" title_has "another user owns the mic"
    check "the panel says who can unmute" log_has panel-not-owner.log "only that user can unmute it. You can still mute it."
    xdotool mousemove --window "$WID" 230 80 click 1
    sleep 0.5
    check "a click on MUTED does not try an unmute (still muted, the panel says why)" \
        bash -c "\"$HARDMUTE\" --json status | grep -q '\"muted\":true' && grep -q 'unmute not offered' '$WORK/panel-not-owner.log'"
    sleep 0.3
    xdotool key ctrl+alt+m
    sleep 0.5
    check "the hotkey cannot unmute either (the daemon refuses it)" state_is muted
    check "screenshot: another user owns the mic" shot panel-not-owner.png
    check "tray menu Quit ends the not-owner panel" quit_panel
fi

if [ "${UPDATE_DOCS:-0}" = 1 ]; then
    for f in panel-muted.png panel-live.png panel-released.png panel-listeners.png panel-about.png \
        panel-unprotected.png panel-check.png panel-guard.png panel-not-owner.png; do
        [ -e "$WORK/$f" ] && cp "$WORK/$f" "$ROOT/docs/$f"
    done
    echo "screenshots copied to docs/"
fi

summary
[ "$FAILED" -eq 0 ]
