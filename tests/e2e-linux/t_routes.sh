# Routes around the gate (docs/design.md invariant 7): HardMute as the default input, and
# `hardmute check`. Sourced by run.sh (ROUTES_TESTS joins its test list).
# shellcheck shell=bash

ROUTES_TESTS="t14_default_input"

default_source() { pactl get-default-source 2>/dev/null; }
default_is() { [ "$(default_source)" = "$1" ]; }
status_json() { "$HMCLI" --json status; }
json_field() { python3 -c 'import json,sys; v=json.loads(sys.stdin.read()).get(sys.argv[1]); print("null" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$1"; }
protected_is() { [ "$(status_json | json_field default_input_protected)" = "$1" ]; }

# An app that records "the default" (no device named): parecord / pw-record without a target.
rec_pa_default() { # rec_pa_default NAME
    parecord --rate=48000 --channels=1 --format=float32le --file-format=wav --client-name="rec-$1" \
        --latency-msec=20 "$WORK/$1.wav" >"$WORK/rec-$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
}
rec_pw_default() { # rec_pw_default NAME
    pw-record --rate 48000 --channels 1 --format f32 -P "{ node.name = rec-$1 }" "$WORK/$1.wav" \
        >"$WORK/rec-$1.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$1=$!"
}

# 14. a fresh install makes HardMute the default source (the previous default feeds it); apps
#     that name no device get exact zeros while muted; a later user choice is not fought but
#     reported as NOT protected; `hardmute protect` fixes it; uninstall restores the default.
t14_default_input() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    setup_env; start_stack; make_fake_mic; play_fake_mic
    wait_for 5 default_is fake-mic || die "control: the fake mic is not the default before the install ($(default_source))"
    rm -f "$WORK/mute-state"; hm_start          # a fresh install
    [[ $HM_READY == *"muted=true"* ]] || die "fresh start not muted: $HM_READY"
    wait_for 5 default_is hardmute_mic || die "HardMute is not the default source after the install: $(default_source)"
    protected_is true || die "status does not say protected: $(status_json)"
    [ "$(status_json | json_field device)" = fake-mic ] || die "the replaced default does not feed HardMute: $(status_json)"
    wait_for 5 capture_linked || die "mic not linked"
    rec_pa_default pa; rec_pw_default pw; rec_pw control 48000 1 f32 fake-mic
    wait_recs pa pw control
    linked_from hardmute_mic rec-pa || die "parecord with no device is not on hardmute_mic"
    linked_from hardmute_mic rec-pw || die "pw-record with no target is not on hardmute_mic"
    sleep 2; stop_rec pa pw control
    analyse "$WORK/pa.wav" --expect-zero --min-seconds 1.5 || exit 1
    analyse "$WORK/pw.wav" --expect-zero --min-seconds 1.5 || exit 1
    analyse "$WORK/control.wav" --skip 1.0 --expect-signal || exit 1

    # The user picks the physical mic as default: not fought, reported.
    pactl set-default-source fake-mic || die "pactl set-default-source"
    wait_for 8 protected_is false || die "status still says protected after the user changed the default: $(status_json)"
    sleep 1; default_is fake-mic || die "hardmuted fought the user's choice: $(default_source)"
    local text; text=$("$HMCLI" status)
    grep -q 'default input:    fake-mic -- apps recording the default input are NOT protected.*hardmute protect' <<<"$text" ||
        die "status text does not say NOT protected: $text"
    log "status says: $(grep 'default input' <<<"$text")"
    # ... and it is true: an app on the default hears the room while HardMute says muted.
    rec_pa_default leak; wait_recs leak; sleep 1.2; stop_rec leak
    analyse "$WORK/leak.wav" --skip 0.2 --expect-signal || die "control: an app on the physical default did not hear it"

    "$HMCLI" protect >"$WORK/protect.out" 2>&1 || die "hardmute protect failed: $(cat "$WORK/protect.out")"
    wait_for 5 default_is hardmute_mic || die "protect did not make HardMute the default: $(default_source)"
    protected_is true || die "status does not say protected after protect"

    HOME=$WORK "$HMCLI" uninstall --no-activate >"$WORK/uninstall.out" 2>&1 || die "uninstall failed: $(cat "$WORK/uninstall.out")"
    wait_for 5 default_is fake-mic || die "uninstall did not restore the previous default: $(default_source)"
    log "uninstall: default source back to $(default_source)"
}
