# The guard (`hardmute guard on`): apps cannot open the physical mic; hardmuted still can.
# Sourced by run.sh (GUARD_TESTS joins its test list).
# shellcheck shell=bash

GUARD_TESTS="t22_guard"

# The rig's own set-up steps (creating and feeding the fake mic, reading links) need to see the
# mic: they run as a client the guard trusts, by the same argv[0] claim a same-user app could
# make (docs/threat-model.md: what the guard does not close).
trusted_bin() {
    TRUSTED=$WORK/trusted-bin
    mkdir -p "$TRUSTED"
    # PipeWire 0.3.83+: the session manager's socket (trusted by the guard script); before: argv[0]
    # "wireplumber" (trusted by access.allowed).
    local t env=""
    version_ge "$(pw_version)" 0.3.83 && env="PIPEWIRE_REMOTE=pipewire-0-manager "
    for t in pw-cli pw-link pw-dump pw-metadata; do
        printf '#!/bin/bash\n%sexec -a wireplumber %s "$@"\n' "${env:+export $env; }" "$(command -v "$t")" >"$TRUSTED/$t"
        chmod +x "$TRUSTED/$t"
    done
}
as_trusted() { PATH=$TRUSTED:$PATH "$@"; }
trusted_run() { # trusted_run PROGRAM ARGS... (execs; run it in a subshell)
    version_ge "$(pw_version)" 0.3.83 && export PIPEWIRE_REMOTE=pipewire-0-manager
    exec -a wireplumber "$@"
}
pw_version() { pipewire --version | awk '/Linked with libpipewire/{print $NF}'; }
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# An app's attempts on the physical mic; each sets GUARD_<name>=open|closed and logs why.
# "open" = the app was linked from fake-mic (seen by a trusted client) or heard the tone while
# HardMute was muted (a fallback to the HardMute Microphone records zeros then).
heard_nonzero() { "$HMWAV" analyse "$1" --skip 0.2 2>/dev/null | sed -n 's/.*nonzero=\([0-9]*\)\/.*/\1/p' | head -1; }
attempt_verdict() { # attempt_verdict NAME CLIENT WAV
    local linked=no n
    as_trusted linked_from fake-mic "$2" && linked=yes
    n=$(heard_nonzero "$3"); n=${n:-0}
    if [ $linked = yes ] || [ "$n" -gt 0 ]; then
        eval "GUARD_$1=open"
    else
        eval "GUARD_$1=closed"
    fi
    log "attempt $1: linked from fake-mic: $linked, non-zero samples while muted: $n -> $(eval echo "\$GUARD_$1")"
}

attack_routes() { # attack_routes TAG: every route an app has to the mic, while muted
    local tag=$1
    # Listing: pactl and pw-link as an app sees them.
    local src; src=$(pactl list sources short 2>&1)
    grep -q hardmute_mic <<<"$src" || die "control: pactl does not list hardmute_mic: $src"
    if grep -q 'fake-mic' <<<"$src"; then GUARD_pactl=open; else GUARD_pactl=closed; fi
    log "attempt pactl: $(awk '{print $2}' <<<"$src" | tr '\n' ' ')-> $GUARD_pactl"
    # pw-link on the apps' socket: a fresh client that lists the ports at once (the connect
    # race); pw-link waits for the registry's first round trip, pw-cli's one-shot ls does not.
    if pw-link -r pipewire-0 -o 2>/dev/null | grep -q '^fake-mic:'; then GUARD_pwlist=open; else GUARD_pwlist=closed; fi
    log "attempt pw-link -o -r pipewire-0 (apps' socket) lists fake-mic's ports: $GUARD_pwlist"
    # pw-dump as PipeWire's tools run it: from 1.x on they ask for the session manager's socket
    # (remote.intention = manager: pipewire-0-manager first, even with -r pipewire-0).
    if pw-dump 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(((o.get("info") or {}).get("props") or {}).get("node.name") == "fake-mic" for o in json.load(sys.stdin)) else 1)'; then GUARD_pwdump=open; else GUARD_pwdump=closed; fi
    log "attempt pw-dump (a tool: the manager's socket where there is one) lists fake-mic: $GUARD_pwdump"
    # pw-record --target and parecord --device name the mic.
    rec_pw "pw$tag" 48000 1 f32 fake-mic
    rec_pa "pa$tag" 48000 1 float32le fake-mic
    sleep 2
    attempt_verdict pwrecord "rec-pw$tag" "$WORK/pw$tag.wav"
    attempt_verdict parecord "rec-pa$tag" "$WORK/pa$tag.wav"
    stop_rec "pw$tag" "pa$tag"
    # pw-link from the mic's port into an app's own port (a recorder nobody links), on the
    # apps' socket (pipewire-0), then on the default remote of PipeWire's tools (on 0.3.83+
    # that is the session manager's socket, pipewire-0-manager).
    pwlink_attempt pwlink "own$tag" -r pipewire-0
    pwlink_attempt pwlinkdefault "owd$tag"
    # Chromium as a web app: its input list, and the mic picked by its label.
    local chr n; chr=$(chromium_record "chr$tag" "Fake microphone")
    GUARD_chromium=closed
    [[ $(chromium_field "$chr" devices) == *'"Fake microphone"'* ]] && GUARD_chromium=open
    n=$(chromium_field "$chr" nonzero)
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] && GUARD_chromium=open
    log "attempt chromium (lists or records \"Fake microphone\"): ${chr:-no result} -> $GUARD_chromium"
}

pwlink_attempt() { # pwlink_attempt NAME RECORDER [pw-link remote args]
    local name=$1 rec=$2; shift 2
    pw-record --rate 48000 --channels 1 --format f32 \
        -P "{ node.name = rec-$rec node.autoconnect = false }" "$WORK/$rec.wav" >"$WORK/rec-$rec.log" 2>&1 &
    local own=$!; PIDS+=($own)
    wait_for 5 as_trusted has_port -i "rec-$rec:input_MONO" || die "control: the app's own port rec-$rec:input_MONO never appeared"
    local out; out=$(pw-link "$@" fake-mic:capture_MONO "rec-$rec:input_MONO" 2>&1); local rc=$?
    sleep 1.5
    attempt_verdict "$name" "rec-$rec" "$WORK/$rec.wav"
    log "  (pw-link $* exit $rc: ${out:-no output})"
    kill -INT $own; wait $own 2>/dev/null || true
}

# 22. The guard on: an app that names the physical mic (pw-record --target, parecord --device,
#     pw-link of its port, Chromium picking it by label) cannot record it, pactl, pw-link and
#     Chromium's input list do not list it, a client connected
#     before the mic appeared never sees it; hardmuted still feeds HardMute (signal while live)
#     and `hardmute check` calls the guard closed. The guard off (files removed, stack restarted):
#     the same routes are open again, and check says so.
#     Named expected-open results per PipeWire version are listed in docs/threat-model.md.
#     PipeWire 0.3.65 itself crashed (SIGSEGV in pw_impl_client_update_permissions, walking its
#     global list) in about half of the rig's starts while the script's updates sent "any"; the
#     script no longer does. Should it happen, the attempt is logged as that known crash and
#     the whole run made again (at most 4 attempts), so the assertions run on a stack that came
#     up; a crash on 0.3.75 or later fails the test.
t22_guard() {
    [ "$HM_IMPL" = daemon ] || { log "SKIP: needs hardmuted (HM_IMPL=daemon)"; return 0; }
    local attempt out rc v; v=$(pw_version)
    for attempt in 1 2 3 4; do
        out=$(mktemp); ( guard_run ) 2>&1 | tee "$out"; rc=${PIPESTATUS[0]}
        if [ $rc = 0 ]; then rm -f "$out"; return 0; fi
        if grep -q 'Segmentation fault.*pipewire' "$out" && ! version_ge "$v" 0.3.75; then
            log "KNOWN CRASH on PipeWire $v (attempt $attempt): PipeWire died of SIGSEGV with the guard on (docs/threat-model.md)"
            rm -f "$out"; continue
        fi
        rm -f "$out"; return 1
    done
    die "PipeWire $v crashed in every attempt with the guard on"
}

guard_run() {
    setup_env; trusted_bin
    install_gate
    rig_pw_conf    # the user's own pipewire.conf: guard on keeps it and puts it back at off
    "$HMCLI" guard on --no-activate >"$WORK/guard-on.out" 2>&1 || die "hardmute guard on: $(cat "$WORK/guard-on.out")"
    [ "$("$HMCLI" --json guard status)" = '{"guard":true}' ] || die "guard status does not say on"
    local v; v=$(pw_version)
    log "PipeWire $v, WirePlumber $WP_VERSION; guard files: $(grep -c . "$WORK/guard-on.out")"
    # (Trusted: with the guard on, a client that connects before WirePlumber waits for it.)
    as_trusted start_stack
    # A client connected before the mic exists, watching every port that appears.
    pw-link -r pipewire-0 -m -o >"$WORK/watch.log" 2>&1 &
    PIDS+=($!)
    sleep 0.3
    # WirePlumber 0.4 on PipeWire < 0.3.75 links a stream to any source with a session item,
    # whatever the stream's client may see; the guard's ALSA rule (wp04-guard.lua) gives real
    # ALSA capture nodes wireplumber.is-endpoint so they get none. The fake mic is not ALSA:
    # it gets the property the rule would set.
    local wp_props=""
    case $WP_VERSION in 0.[0-4].*) wp_props="wireplumber.is-endpoint=true" ;; esac
    [ -n "$wp_props" ] && log "fake mic made with $wp_props (what the guard's ALSA rule sets on WirePlumber $WP_VERSION)"
    FAKE_MIC_PROPS=$wp_props as_trusted make_fake_mic
    # The player stands in for the mic's hardware: PipeWire 1.x refuses a link between nodes
    # whose clients cannot see each other, so it runs as a trusted client.
    ( trusted_run "$HMPLAY" ) >"$WORK/player.log" 2>&1 &
    PIDS+=($!)
    as_trusted link_player
    echo muted >"$WORK/mute-state"; hm_start --source fake-mic
    [ "${GUARD_DEBUG:-0}" = 1 ] && as_trusted pw-dump | python3 -c '
import json,sys
for o in json.load(sys.stdin):
  t=o["type"].split(":")[-1]
  if t in ("Client","Node"):
    p=(o.get("info") or {}).get("props",{})
    print("   ", o["id"], t, p.get("node.name") or p.get("application.name"), p.get("pipewire.access"), p.get("application.process.binary"), p.get("pipewire.sec.socket"))'
    wait_for 8 as_trusted capture_linked || die "hardmuted did not link the guarded mic into hardmute_capture"
    as_trusted node_id fake-mic >/dev/null

    attack_routes on
    local on_pactl=$GUARD_pactl on_pwlist=$GUARD_pwlist on_pwdump=$GUARD_pwdump on_pwrecord=$GUARD_pwrecord on_parecord=$GUARD_parecord on_pwlink=$GUARD_pwlink on_pwlinkdefault=$GUARD_pwlinkdefault on_chromium=$GUARD_chromium
    local watched=closed
    grep -Eq '^[=+] fake-mic:' "$WORK/watch.log" && watched=open
    log "attempt watcher (connected before the mic appeared) saw fake-mic: $watched"

    # hardmuted still feeds HardMute: live, an app on hardmute_mic hears the tone.
    [[ $(hm_cmd unmute) == ok\ unmuted* ]] || die "unmute failed"
    rec_pw live 48000 1 f32; wait_recs live; sleep 1.5; stop_rec live
    analyse "$WORK/live.wav" --skip 0.5 --expect-signal || die "hardmute_mic carries no signal while live with the guard on"
    [[ $(hm_cmd mute) == ok\ muted* ]] || die "mute failed"
    run_check guard_on
    local check_guard; check_guard=$(route_status "guard (apps kept off the physical mic)" "$WORK/guard_on.json")
    local check_src; check_src=$(route_status "physical source fake-mic (by name)" "$WORK/guard_on.json")

    # Per version: what must hold, and what is a named expected-open result.
    # PipeWire 0.3.65 (no module conditions): the stock module-access grants every client all
    # permissions at connect, before WirePlumber's guard script revokes them (the connect race),
    # and the server does not check link permissions (< 0.3.75): a fresh pw-link may win.
    local expect_open=""
    # 0.3.83+: the guard restricts the apps' socket (access.socket), so a fresh client there
    # gets nothing until the guard script has granted it: no connect race. The session
    # manager's socket stays unrestricted, and PipeWire's own tools (pw-dump) connect there:
    # any app of the user can, and the script trusts its clients.
    if version_ge "$v" 0.3.83; then expect_open="pwdump"; fi
    local bad="" r val
    for r in pactl pwlist pwdump pwrecord parecord pwlink pwlinkdefault chromium watched; do
        case $r in
            pactl) val=$on_pactl ;; pwlist) val=$on_pwlist ;; pwrecord) val=$on_pwrecord ;;
            pwdump) val=$on_pwdump ;;
            parecord) val=$on_parecord ;; pwlink) val=$on_pwlink ;; watched) val=$watched ;;
            pwlinkdefault) val=$on_pwlinkdefault ;; chromium) val=$on_chromium ;;
        esac
        if [ "$val" = open ]; then
            if [[ " $expect_open " == *" $r "* ]]; then
                log "EXPECTED-OPEN on PipeWire $v: $r (docs/threat-model.md)"
            else
                bad="$bad $r"
            fi
        elif [[ " $expect_open " == *" $r "* ]]; then
            log "note: $r, expected open on PipeWire $v, was closed this run"
        fi
    done
    [ -z "$bad" ] || die "with the guard on, these routes reached the physical mic:$bad"
    [ "$check_src" != open ] || die "hardmute check: recording fake-mic by name heard the room with the guard on"
    [ "$check_guard" = closed ] || die "hardmute check calls the guard $check_guard with the guard holding"
    [ "$check_src" = closed ] || die "hardmute check: physical source fake-mic is $check_src with the guard on"
    # The session manager's socket: check names it as the route left open where there is one.
    local check_mgr; check_mgr=$(route_status "session manager's socket" "$WORK/guard_on.json")
    if version_ge "$v" 0.3.83; then
        [ "$check_mgr" = open ] || die "hardmute check: the session manager's socket is '$check_mgr', not open, on PipeWire $v"
    else
        [ "$check_mgr" = missing ] || die "hardmute check names a session manager's socket ($check_mgr) on PipeWire $v"
    fi

    # Guard off: the same routes open again (the test can fail).
    "$HMCLI" guard off --no-activate >"$WORK/guard-off.out" 2>&1 || die "hardmute guard off failed"
    [ "$("$HMCLI" --json guard status)" = '{"guard":false}' ] || die "guard status does not say off"
    hm_kill9; as_trusted stop_stack
    start_stack; make_fake_mic; play_fake_mic
    hm_start --source fake-mic
    wait_for 8 capture_linked || die "mic not linked with the guard off"
    attack_routes off
    for r in pactl pwlist pwdump pwrecord parecord pwlink pwlinkdefault chromium; do
        val=GUARD_$r
        [ "${!val}" = open ] || die "control: with the guard off, $r did not reach the physical mic"
    done
    run_check guard_off
    expect_route guard_off "guard (apps kept off the physical mic)" open
    expect_route guard_off "physical source fake-mic (by name)" open
}
