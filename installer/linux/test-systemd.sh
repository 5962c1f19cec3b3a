#!/usr/bin/env bash
# The .deb's user unit under a real systemd user manager: boots a Debian 12 root with systemd as
# PID 1 (systemd-nspawn --boot), installs the project's .deb with dpkg, makes a test user whose
# user manager starts through lingering (as at login), and checks what the unit promises:
# pipewire, wireplumber and hardmuted active; hardmuted reached READY (Type=notify) from the
# packaged unit file, in session.slice, with its hardening applied (NoNewPrivs, seccomp); the
# journal's priorities (`journalctl --user -u hardmuted -p warning` has the daemon's warning and
# not its info lines); `hardmute status`/`is-muted` as that user say muted; HardMute Microphone is
# in the user's PipeWire graph; restarting pipewire.service takes hardmuted down and back
# (BindsTo= + WantedBy=pipewire.service), muted, node back.
#
#   bash installer/linux/test-systemd.sh          (as root: mmdebstrap, systemd-nspawn, nsenter)
#
#   HARDMUTE_DEB             the .deb to test (default: the newest target/debian/hardmute_*.deb of
#                            this checkout; built with build-deb.sh only when there is none)
#   HARDMUTE_SYSTEMD_CACHE   where the Debian 12 root is kept (default ~/.cache/hardmute-systemd);
#                            made on first use with mmdebstrap, reused afterwards, made again when
#                            the package list below changes. Runs never change it: the container
#                            boots with --volatile=overlay (every write goes to a tmpfs).
#   HARDMUTE_SYSTEMD_MIRROR  Debian mirror for mmdebstrap (default: deb.debian.org)
#   KEEP_WORK=1              keep the work dir (boot log, journal)
#
# needs: mmdebstrap, systemd-container (systemd-nspawn), util-linux (nsenter, setpriv); the host
# needs no systemd (nspawn runs with --register=no --keep-unit: no machined, no scope unit).
# Last line: "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${HARDMUTE_SYSTEMD_CACHE:-${HOME:-/root}/.cache/hardmute-systemd}
ROOTFS=$CACHE/root
# systemd as PID 1 with logind and a user D-Bus; PipeWire, its PulseAudio server and WirePlumber
# (their user units, enabled by their packages); pw-dump (pipewire-bin); the .deb's libraries.
PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,pipewire,pipewire-bin,pipewire-pulse,wireplumber,pulseaudio-utils,procps,libfontconfig1,libx11-xcb1,libxcursor1,libxi6,libxkbcommon-x11-0,libxrandr2
TUSER=hmtest
TUID=1000
MACHINE=hm-systemd-$$

passed=0 failed=0
check() { if eval "$2"; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }
fail() { echo "systemd: $*" >&2; failed=$((failed + 1)); finish; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b - a}'; }

[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (mmdebstrap, systemd-nspawn)"; echo "0 passed, 0 failed"; exit 0; }
for tool in systemd-nspawn nsenter setpriv; do
    command -v $tool >/dev/null || fail "$tool is missing (apt-get install systemd-container util-linux)"
done

# --- 1. the Debian 12 root (cached) --------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -x 9
T0=$(now)
if [ -x "$ROOTFS/lib/systemd/systemd" ] && [ "$(cat "$CACHE/packages" 2>/dev/null)" = "$PACKAGES" ]; then
    ROOT_HOW=warm
else
    ROOT_HOW=cold
    command -v mmdebstrap >/dev/null || fail "mmdebstrap is missing (apt-get install mmdebstrap)"
    echo "systemd: making the Debian 12 root in $ROOTFS (mmdebstrap, a minute or two)"
    rm -rf "$ROOTFS.new" "$CACHE/packages"
    # shellcheck disable=SC2086 # the mirror is optional
    timeout 900 mmdebstrap --variant=apt --include="$PACKAGES" bookworm "$ROOTFS.new" ${HARDMUTE_SYSTEMD_MIRROR:-} \
        >"$CACHE/mmdebstrap.log" 2>&1 || { rm -rf "$ROOTFS.new"; fail "mmdebstrap failed (see $CACHE/mmdebstrap.log)"; }
    rm -rf "$ROOTFS"
    mv "$ROOTFS.new" "$ROOTFS"
    echo "$PACKAGES" >"$CACHE/packages"
fi
flock -s 9   # concurrent runs share the root read-only (volatile overlay); a rebuild waits for them
T1=$(now)
echo "systemd: Debian 12 root $ROOT_HOW in $(secs "$T0" "$T1") s:" \
    "$(chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}, ' systemd pipewire wireplumber | sed 's/, $//')"

# --- 2. the .deb -------------------------------------------------------------------------
DEB=${HARDMUTE_DEB:-}
if [ -z "$DEB" ]; then
    # shellcheck disable=SC2012 # names without spaces (cargo-deb's)
    DEB=$(ls -t "$ROOT"/target/debian/hardmute_*.deb 2>/dev/null | head -1)
fi
if [ -z "$DEB" ]; then
    echo "systemd: no .deb in target/debian: building it (build-deb.sh; the panel takes minutes)"
    DEB=$(bash "$ROOT/installer/linux/build-deb.sh" | tail -1) || fail "build-deb.sh failed"
fi
[ -s "$DEB" ] || fail "no .deb at $DEB"
DEB=$(realpath "$DEB")
echo "systemd: testing $DEB"

# --- 3. boot ------------------------------------------------------------------------------
WORK=$(mktemp -d -t hm-systemd.XXXXXX)
NSPAWN=
cleanup() {
    if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
        kill -TERM "$NSPAWN" 2>/dev/null   # nspawn asks the container's systemd to power off
        for _ in $(seq 1 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN" 2>/dev/null
        wait "$NSPAWN" 2>/dev/null
    fi
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$failed" != 0 ]; then echo "systemd: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
T2=$(now)
# --volatile=overlay: the cached root read-only under a tmpfs overlay, so a run leaves it as it
# was. --register=no --keep-unit: no machined/scope unit needed on the host. No network.
systemd-nspawn -D "$ROOTFS" --volatile=overlay --boot --register=no --keep-unit --private-network \
    --machine="$MACHINE" --bind-ro="$DEB:/mnt/hardmute.deb" >"$WORK/boot.log" 2>&1 </dev/null &
NSPAWN=$!
LEADER=
for _ in $(seq 1 100); do
    LEADER=$(cat /proc/"$NSPAWN"/task/*/children 2>/dev/null | awk '{print $1; exit}')
    [ -n "$LEADER" ] && [ "$(cat /proc/"$LEADER"/comm 2>/dev/null)" = systemd ] && break
    LEADER=
    sleep 0.1
done
[ -n "$LEADER" ] || { tail -20 "$WORK/boot.log" >&2; fail "the container's systemd did not start"; }
# Runs a command in the container (all its namespaces, its root), bounded.
in_ct() { timeout "${T:-60}" nsenter -t "$LEADER" -m -u -i -n -p -C -r -w "$@"; }
# The same as the test user, with what a login session has (the user manager's bus, runtime dir).
as_user() {
    in_ct setpriv --reuid=$TUID --regid=$TUID --init-groups --reset-env \
        env HOME=/home/$TUSER USER=$TUSER LOGNAME=$TUSER XDG_RUNTIME_DIR=/run/user/$TUID \
        DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$TUID/bus PATH=/usr/bin:/bin "$@"
}
wait_for() { local end=$((SECONDS + $1)); shift; until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }

# `is-system-running --wait` needs the system bus, which is not up at once: poll instead.
booted() { BOOTSTATE=$(T=5 in_ct systemctl is-system-running 2>/dev/null); case $BOOTSTATE in running | degraded) ;; *) false ;; esac; }
BOOTSTATE=
wait_for 90 booted
T3=$(now)
echo "systemd: container booted ($BOOTSTATE) in $(secs "$T2" "$T3") s; PID 1 = $(in_ct cat /proc/1/comm)"
check "systemd is PID 1 in the container and reached running" '[ "$(in_ct cat /proc/1/comm)" = systemd ] && [ "$BOOTSTATE" = running ]'
[ "$BOOTSTATE" = running ] || in_ct systemctl --failed --no-pager | sed 's/^/    /'

# --- 4. install, the user, lingering --------------------------------------------------------
T=120 in_ct dpkg -i /mnt/hardmute.deb >"$WORK/dpkg.log" 2>&1
DPKG_RC=$?
check "dpkg -i the .deb (postinst enables the user unit)" '[ $DPKG_RC = 0 ]'
check "enablement symlink /etc/systemd/user/default.target.wants/hardmuted.service" \
    'in_ct test -L /etc/systemd/user/default.target.wants/hardmuted.service'
in_ct useradd -m -u $TUID -s /bin/bash $TUSER || fail "useradd"
# What `hardmute install` does for PipeWire (the packaged drop-in into the user's
# pipewire.conf.d), without its copy of the unit: the packaged unit is under test. A saved input
# that does not exist makes hardmuted log a known warning at start.
# setpriv, not su: su's PAM session would start the user manager (pam_systemd) too early.
in_ct setpriv --reuid=$TUID --regid=$TUID --init-groups env HOME=/home/$TUSER sh -c 'mkdir -p ~/.config/pipewire/pipewire.conf.d ~/.local/state/hardmute &&
    cp /usr/share/hardmute/pipewire.conf.d/50-hardmute.conf ~/.config/pipewire/pipewire.conf.d/ &&
    printf "muted = true\ndevice = \"hm-absent-mic\"\n" > ~/.local/state/hardmute/state.toml' ||
    fail "cannot prepare the user's files"
T4=$(now)
in_ct loginctl enable-linger $TUSER || fail "loginctl enable-linger"
wait_for 30 in_ct test -S /run/user/$TUID/bus || fail "the user manager's bus did not appear"
hm_active() { [ "$(as_user systemctl --user is-active hardmuted)" = active ]; }
wait_for 60 hm_active
T5=$(now)
echo "systemd: user manager up, hardmuted $(as_user systemctl --user is-active hardmuted) $(secs "$T4" "$T5") s after enable-linger"

# --- 5. checks ---------------------------------------------------------------------------
ACTIVE=$(as_user systemctl --user is-active pipewire wireplumber hardmuted | tr '\n' ' ')
echo "    is-active pipewire wireplumber hardmuted: $ACTIVE"
check "pipewire, wireplumber and hardmuted active in the user manager" '[ "$ACTIVE" = "active active active " ]'
SHOW=$(as_user systemctl --user show -p Type,ActiveState,SubState,NRestarts,FragmentPath,Slice,MainPID,Result hardmuted)
sed 's/^/    /' <<<"$SHOW"
val() { sed -n "s/^$1=//p" <<<"$SHOW"; }
check "the packaged unit is the one running (/usr/lib/systemd/user/hardmuted.service)" \
    '[ "$(val FragmentPath)" = /usr/lib/systemd/user/hardmuted.service ]'
check "Type=notify reached READY: active/running, no restart" \
    '[ "$(val Type)" = notify ] && [ "$(val ActiveState)" = active ] && [ "$(val SubState)" = running ] && [ "$(val NRestarts)" = 0 ]'
check "Slice=session.slice" '[ "$(val Slice)" = session.slice ]'
PID=$(val MainPID)
STATUS=$(in_ct cat /proc/"$PID"/status 2>/dev/null)
check "hardening applied to the daemon: NoNewPrivs 1, seccomp filter mode 2" \
    'grep -q "^NoNewPrivs:[[:space:]]*1" <<<"$STATUS" && grep -q "^Seccomp:[[:space:]]*2" <<<"$STATUS"'
check "the daemon runs as the user, in the user's session.slice cgroup" \
    '[ "$(in_ct stat -c %u /proc/"$PID")" = $TUID ] && in_ct cat /proc/"$PID"/cgroup | grep -q "user@$TUID.service/session.slice/hardmuted.service"'

as_user journalctl --user -u hardmuted -p warning --no-pager -o cat >"$WORK/journal-warning.txt" 2>&1
as_user journalctl --user -u hardmuted -p info --no-pager -o cat >"$WORK/journal-info.txt" 2>&1
as_user journalctl --user -u hardmuted --no-pager -o export >"$WORK/journal.export" 2>&1
echo "    journalctl --user -u hardmuted -p warning:"; sed 's/^/      /' "$WORK/journal-warning.txt" | head -8
check "journalctl --user -p warning has the daemon's warning (saved input missing)" \
    'grep -q "saved input \"hm-absent-mic\" is not available" "$WORK/journal-warning.txt"'
check "journalctl --user -p warning leaves out its info lines (start line)" \
    '! grep -q "backend started" "$WORK/journal-warning.txt"'
check "journalctl --user -p info has the start line, stripped of its <6> prefix" \
    'grep -q "^hardmuted::daemon: linux backend started MUTED" "$WORK/journal-info.txt"'
check "journald recorded PRIORITY=4 for the warning and 6 for the start line" \
    'awk -v RS= "/MESSAGE=hardmuted::daemon: saved input/ && /PRIORITY=4/{w=1} /MESSAGE=hardmuted::daemon: linux backend started/ && /PRIORITY=6/{i=1} END{exit !(w && i)}" "$WORK/journal.export"'

ST=$(as_user hardmute status 2>&1)
sed 's/^/    /' <<<"$ST" | head -4
as_user hardmute is-muted >/dev/null 2>&1
IM=$?
check "hardmute status as the user says MUTED; is-muted exits 0" 'grep -q MUTED <<<"$ST" && [ $IM = 0 ]'
# Each pw-dump is bounded (15 s, then tried again) and logged (exit status, start and end
# time, bytes, nodes, stderr) to hm_node.log, printed if the check fails: the first one after
# boot has failed this check in CI now and then (a 10 s and a 20 s wait) while hardmuted had
# already found the node; whether one call hung or several came back without it is not known.
hm_node() {
    local t0; t0=$(now)
    T=15 as_user pw-dump >"$WORK/pw-dump.out" 2>"$WORK/pw-dump.err"
    echo "rc=$? start=$t0 end=$(now) bytes=$(wc -c <"$WORK/pw-dump.out") nodes=$(grep -c '"node.name"' "$WORK/pw-dump.out") err=$(head -c 300 "$WORK/pw-dump.err" | tr '\n' ' ')" >>"$WORK/hm_node.log"
    grep -q '"node.name": "hardmute_mic"' "$WORK/pw-dump.out"
}
check "HardMute Microphone (hardmute_mic) in the user's PipeWire graph under the hardened unit" 'wait_for 45 hm_node || { sed "s/^/      /" "$WORK/hm_node.log" >&2; false; }'
# pipewire.socket is systemd's: the socket's peer credentials name systemd, so hardmuted finds the
# server as the PipeWire process holding that listening socket, and trusts only its nodes.
PW_MAIN=$(as_user systemctl --user show -p MainPID --value pipewire.service)
server_named() { as_user journalctl --user -u hardmuted --no-pager -o cat --since "@${1%.*}" 2>/dev/null | grep -q "PipeWire server is pid $2:"; }
check "socket-activated PipeWire: hardmuted names the server pid $PW_MAIN (held socket), no 'cannot tell' warning" \
    'wait_for 10 server_named "$T4" "$PW_MAIN" && ! as_user journalctl --user -u hardmuted --no-pager -o cat | grep -q "cannot tell which process"'
# hardmute check finds it the same way (it reports a "PipeWire server" route only when it cannot).
as_user hardmute check --json >"$WORK/check.json" 2>"$WORK/check.err"
check "hardmute check under socket activation: its routes name no unknown PipeWire server" \
    'grep -q "\"route\"" "$WORK/check.json" && ! grep -q "PipeWire server" "$WORK/check.json"'

# BindsTo=pipewire.service: a restart of PipeWire takes hardmuted down; WantedBy=pipewire.service
# brings it back with PipeWire.
OLD=$PID
T6=$(now)
T=30 as_user systemctl --user restart pipewire.service
new_main() { local p; p=$(as_user systemctl --user show -p MainPID --value hardmuted); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$OLD" ] && hm_active; }
wait_for 30 new_main
T7=$(now)
NEW=$(as_user systemctl --user show -p MainPID --value hardmuted)
as_user journalctl --user -u hardmuted --no-pager -o cat --since "@${T6%.*}" >"$WORK/journal-restart.txt" 2>&1
echo "    pipewire restarted: hardmuted pid $OLD -> $NEW in $(secs "$T6" "$T7") s"
check "restarting pipewire.service stopped hardmuted (BindsTo) and started it again" \
    '[ "$NEW" != "$OLD" ] && [ "$NEW" != 0 ] && hm_active && grep -q "^hardmuted: stopped; socket" "$WORK/journal-restart.txt" && grep -q "^Stopped hardmuted.service" "$WORK/journal-restart.txt"'
check "after the restart: READY again, NRestarts 0 (back through WantedBy=pipewire.service, not Restart=)" \
    '[ "$(as_user systemctl --user show -p SubState --value hardmuted)" = running ] && [ "$(as_user systemctl --user show -p NRestarts --value hardmuted)" = 0 ]'
as_user hardmute is-muted >/dev/null 2>&1
IM=$?
check "after the restart: muted, hardmute_mic back" '[ $IM = 0 ] && wait_for 10 hm_node'
PW_MAIN2=$(as_user systemctl --user show -p MainPID --value pipewire.service)
check "after the restart: hardmuted names the new server pid $PW_MAIN2 (was $PW_MAIN)" \
    '[ "$PW_MAIN2" != "$PW_MAIN" ] && wait_for 10 server_named "$T6" "$PW_MAIN2"'
in_ct journalctl --no-pager -o short-monotonic >"$WORK/journal-all.txt" 2>&1
echo "systemd: root $ROOT_HOW $(secs "$T0" "$T1") s, boot $(secs "$T2" "$T3") s, whole run $(secs "$T0" "$(now)") s"
finish
