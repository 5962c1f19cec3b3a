# Routes around the gate (docs/design.md invariant 7): HardMute as the default input, and
# `hardmute check`. Sourced by run.sh (ROUTES_TESTS joins its test list).
# shellcheck shell=bash

ROUTES_TESTS="t19_default_input t20_check_routes t23_impostor_nodes t24_chromium_getusermedia"

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

# 19. a fresh install makes HardMute the default source (the previous default feeds it); apps
#     that name no device get exact zeros while muted; a later user choice is not fought but
#     reported as NOT protected; `hardmute protect` fixes it; uninstall restores the default.
t19_default_input() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    setup_env; start_stack; make_fake_mic; play_fake_mic
    # The user's own choice before the install. (With the gate's node in the graph from PipeWire's
    # start, WirePlumber may otherwise pick hardmute_mic as the default by itself.)
    pactl set-default-source fake-mic || die "pactl set-default-source"
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
    # (Only "it hears something": a non-realtime recorder on a loaded machine may miss a cycle,
    # which would fail a sample-exact check without saying anything about the route.)
    local heard; heard=$("$HMWAV" analyse "$WORK/leak.wav" --skip 0.2 | sed -n 's/.*nonzero=\([0-9]*\)\/.*/\1/p' | head -1)
    log "control: an app on the physical default recorded $heard non-zero samples"
    [ "${heard:-0}" -gt 24000 ] || die "control: an app on the physical default did not hear the fake mic ($heard non-zero samples)"

    "$HMCLI" protect >"$WORK/protect.out" 2>&1 || die "hardmute protect failed: $(cat "$WORK/protect.out")"
    wait_for 5 default_is hardmute_mic || die "protect did not make HardMute the default: $(default_source)"
    protected_is true || die "status does not say protected after protect"

    HOME=$WORK "$HMCLI" uninstall --no-activate >"$WORK/uninstall.out" 2>&1 || die "uninstall failed: $(cat "$WORK/uninstall.out")"
    wait_for 5 default_is fake-mic || die "uninstall did not restore the previous default: $(default_source)"
    log "uninstall: default source back to $(default_source)"
    sleep 3.5   # the daemon still runs here (--no-activate): it must not claim the default again
    default_is fake-mic || die "hardmuted took the default back after the uninstall: $(default_source)"
}

# `hardmute check --json`: the status of route $1 (first match), "missing" if absent.
route_status() { # route_status ROUTE [CHECK_JSON_FILE]
    python3 -c '
import json, sys
r = json.load(open(sys.argv[2]))
print(next((x["status"] for x in r["routes"] if x["route"] == sys.argv[1]), "missing"))' "$1" "$2"
}
run_check() { # run_check NAME: writes $WORK/NAME.json, sets CHECK_RC
    "$HMCLI" --json check >"$WORK/$1.json" 2>"$WORK/$1.err"; CHECK_RC=$?
    python3 -c '
import json, sys
for x in json.load(open(sys.argv[1]))["routes"]:
    print("      %-44s %-7s %s" % (x["route"], x["status"], x["detail"]))' "$WORK/$1.json"
}
expect_route() { # expect_route NAME ROUTE STATUS
    local got; got=$(route_status "$2" "$WORK/$1.json")
    [ "$got" = "$3" ] || die "check $1: route \"$2\" is $got, expected $3"
}

# 20. `hardmute check` names each planted route OPEN and closed after its fix: the default
#     changed to the physical mic (fix: `hardmute protect`), an app recording the physical mic
#     (fix: it stops), a link from the mic into hardmute_mic after the gate (fix: unlink). The
#     physical mic itself stays OPEN by name: the guard is off by default (t22 turns it on).
t20_check_routes() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    setup_env; start_stack; make_fake_mic; play_fake_mic
    rm -f "$WORK/mute-state"; hm_start
    wait_for 5 default_is hardmute_mic || die "HardMute is not the default source"
    wait_for 5 capture_linked || die "mic not linked"
    run_check clean
    for r in "default input" "default input (parecord, no device)" "default input (pw-record, no target)" \
        "HardMute Microphone itself" "apps recording a physical mic now" "links into HardMute Microphone"; do
        expect_route clean "$r" closed
    done
    expect_route clean "physical source fake-mic (by name)" open
    [ "$CHECK_RC" = 4 ] || die "check exit status $CHECK_RC with a route open, expected 4"

    # Planted: the default changed to the physical mic.
    pactl set-default-source fake-mic
    wait_for 8 protected_is false || die "status did not see the changed default"
    run_check default
    expect_route default "default input" open
    expect_route default "default input (parecord, no device)" open
    expect_route default "default input (pw-record, no target)" open
    "$HMCLI" protect >/dev/null || die "protect failed"
    wait_for 5 default_is hardmute_mic || die "protect did not take"
    run_check default_fixed
    expect_route default_fixed "default input" closed
    expect_route default_fixed "default input (parecord, no device)" closed

    # Planted: an app recording the physical mic.
    rec_pw direct 48000 1 f32 fake-mic; wait_recs direct
    run_check direct
    expect_route direct "apps recording a physical mic now" open
    grep -q "pid $PID_direct" "$WORK/direct.json" || die "check does not name the recorder's pid $PID_direct"
    stop_rec direct
    wait_for 5 sh -c "! pw-link -l | grep -q rec-direct"
    run_check direct_fixed
    expect_route direct_fixed "apps recording a physical mic now" closed

    # Planted: the physical mic linked straight into hardmute_mic, after the gate (if it has
    # input ports to link to).
    local in_port; in_port=$(pw-link -i | grep '^hardmute_mic:' | head -1)
    if [ -n "$in_port" ]; then
        pw-link fake-mic:capture_MONO "$in_port" || die "cannot plant the link"
        run_check link
        expect_route link "links into HardMute Microphone" open
        log "with the planted link, HardMute Microphone itself is: $(route_status "HardMute Microphone itself" "$WORK/link.json")"
        pw-link -d fake-mic:capture_MONO "$in_port"
        run_check link_fixed
        expect_route link_fixed "links into HardMute Microphone" closed
    else
        log "hardmute_mic has no input port: nothing can be linked after the gate (route absent)"
    fi
}

# 23. an app's imitation of the gate: a recorder on the physical mic that names its node
#     hardmute_capture and carries the gate's marker (`hardmute.role = capture`) and calls itself
#     hardmuted. Only nodes the PipeWire server made (by the pid the server verified) are the
#     gate, so: `hardmute listeners` lists the imitation with its pid as capturing the physical
#     mic, `hardmute check` names it as an open route, hardmuted warns about it, the mic stays
#     linked into the server's gate only, and HardMute Microphone is still exact zeros while muted.
t23_impostor_nodes() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    setup_env; start_stack; make_fake_mic; play_fake_mic
    echo muted >"$WORK/mute-state"; hm_start
    wait_for 5 capture_linked || die "mic not linked"
    pw-record --target fake-mic --rate 48000 --channels 1 --format f32 \
        -P '{ node.name = hardmute_capture hardmute.role = capture application.name = hardmuted }' \
        "$WORK/imp.wav" >"$WORK/rec-imp.log" 2>&1 &
    PIDS+=($!); PID_imp=$!
    rec_pw m 48000 1 f32; wait_recs m
    local l
    imp_listed() { l=$(hm_cmd listeners); grep -q "captures=Physical { source_name: \"fake-mic\" } app=hardmuted pid=$PID_imp " <<<"$l"; }
    wait_for 5 imp_listed || die "the imitation (pid $PID_imp) is not listed on the physical mic: $l"
    echo "$l" | sed 's/^/    /'
    wait_for 5 grep -q "named or marked like HardMute's gate" "$WORK/node.log" ||
        die "hardmuted did not warn about the imitation"
    grep "named or marked like HardMute's gate" "$WORK/node.log" | sed 's/^/    /'
    run_check impostor
    expect_route impostor "apps recording a physical mic now" open
    grep -q "pid $PID_imp" "$WORK/impostor.json" || die "check does not name the imitation's pid $PID_imp"
    # The mic still feeds the server's gate (of the two nodes named hardmute_capture, the one
    # made by the PipeWire server's own client) and nothing else of the imitation; HardMute
    # Microphone delivers zeros.
    local into; into=$(pw-dump | python3 -c '
import json, sys
d = json.load(sys.stdin); server = int(sys.argv[1])
props = lambda o: (o.get("info") or {}).get("props") or {}
pid = {o["id"]: int(props(o).get("pipewire.sec.pid", 0)) for o in d if o["type"].endswith(":Client")}
name = {o["id"]: props(o).get("node.name") for o in d if o["type"].endswith(":Node")}
maker = {o["id"]: pid.get(int(props(o).get("client.id", -1))) for o in d if o["type"].endswith(":Node")}
for o in d:
    if o["type"].endswith(":Link") and name.get(o["info"]["output-node-id"]) == "fake-mic":
        n = o["info"]["input-node-id"]
        if name.get(n) == "hardmute_capture":
            print("gate" if maker.get(n) == server else "imitation(%s)" % maker.get(n))' "$PW_PID" | sort -u | tr '\n' ' ')
    log "links from fake-mic into nodes named hardmute_capture: $into"
    [[ $into == *gate* ]] || die "the mic is not linked into the server's gate: $into"
    sleep 1.5; stop_rec m
    analyse "$WORK/m.wav" --expect-zero --min-seconds 1.5 || exit 1
    kill -INT "$PID_imp"; wait "$PID_imp" 2>/dev/null || true
    analyse "$WORK/imp.wav" --skip 0.5 --expect-signal >/dev/null ||
        die "the imitation did not record the room (the route this test is about was not open)"
}

# 24. Chromium (headless; the real browser, through pipewire-pulse) as a web app that asks for "a
#     microphone" (getUserMedia, no device chosen) after a fresh start: exact zeros while muted,
#     the tone once live (the control: the browser does capture); its input list names HardMute
#     Microphone. Picking the physical mic by its label hears the room while muted: the by-name
#     route the guard closes (t22), reported OPEN by check (t20).
t24_chromium_getusermedia() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    setup_env; start_stack; make_fake_mic; play_fake_mic
    rm -f "$WORK/mute-state"; hm_start
    wait_for 5 default_is hardmute_mic || die "HardMute is not the default source"
    wait_for 5 capture_linked || die "mic not linked"
    [[ $(hm_cmd status) == *"muted=true"* ]] || die "a fresh start is not muted"
    local r; r=$(chromium_record muted)
    log "muted, no device chosen: $r"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1] or "{}")
assert "error" not in r, r
assert r["samples"] >= 48000 and r["nonzero"] == 0, "not exact zeros: %r" % r
assert "HardMute Microphone" in r["devices"], "HardMute Microphone not in the input list: %r" % r["devices"]
' "$r" || die "Chromium with no device chosen while muted"
    [[ $(hm_cmd unmute) == ok\ unmuted* ]] || die "unmute failed"
    r=$(chromium_record live)
    log "live, no device chosen: $r"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1] or "{}")
assert "error" not in r and r["nonzero"] > r["samples"] // 2, "the control heard no tone: %r" % r
' "$r" || die "Chromium heard nothing while live (the capture path itself is broken)"
    [[ $(hm_cmd mute) == ok\ muted* ]] || die "mute failed"
    r=$(chromium_record byname "Fake microphone")
    log "muted, the physical mic picked by name: $r"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1] or "{}")
assert "error" not in r and r["nonzero"] > 0, r
' "$r" || die "picking the physical mic by name did not hear it (this route is open without the guard)"
}
