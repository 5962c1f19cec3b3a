#!/usr/bin/env bash
# The Linux e2e suite (tests/e2e-linux/run.sh) against a second PipeWire version: Debian 13's
# PipeWire 1.4 + WirePlumber 0.5 + pipewire-pulse, in a chroot. The binaries are the ones built
# on the host (Debian 12, libpipewire 0.3.65 headers) by run.sh's own build step; they link
# libpipewire-0.3.so.0, which Debian 13 provides too (checked with ldd inside the root first).
#
#   bash tests/e2e-linux/pw14/run.sh [TEST...]     (as root: mmdebstrap, mount, chroot)
#
#   HARDMUTE_TRIXIE_CACHE   where the Debian 13 root is kept (default ~/.cache/hardmute-trixie);
#                           made on first use with mmdebstrap (installed on the host if missing),
#                           reused afterwards; made again when the package list below changes
#                           (delete the folder to get Debian 13's newest packages)
#   HARDMUTE_TRIXIE_MIRROR  Debian mirror (default: mmdebstrap's, deb.debian.org)
#   TOGGLE_SECS, E2E_TOGGLE_SECS, MEASURE_SECS, MEASURE, KEEP_WORK, QUANTUM, HM_IMPL,
#   GUARD_DEBUG, WIREPLUMBER_DEBUG: passed to
#                           run.sh inside the root, same meaning
#
# All mounts (proc, /dev, the checkout, a scratch /tmp) live in a private mount namespace
# (unshare), so they vanish with it even if this script is killed; an EXIT trap unmounts them
# anyway. The measurement report that run.sh writes on a full run goes to a file of its own
# (printed at the end), not over docs/linux-measurements.md. Last line: "N passed, N failed".
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
E2E=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$E2E/../.." && pwd)
CACHE=${HARDMUTE_TRIXIE_CACHE:-${HOME:-/root}/.cache/hardmute-trixie}
ROOTFS=$CACHE/root
# Everything run.sh and lib.sh call: PipeWire's tools (pw-cli, pw-link, pw-record, pw-cat,
# pw-metadata, pw-dump: pipewire-bin), parecord/pacat (pulseaudio-utils), sox, python3, procps,
# chromium (t22, t24: getUserMedia as a web app).
PACKAGES=pipewire,pipewire-bin,wireplumber,pipewire-pulse,pulseaudio-utils,python3,sox,procps,chromium

fail() { echo "pw14: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b - a}'; }

[ "$(id -u)" = 0 ] || fail "needs root (mmdebstrap, mount, chroot)"
[ "$(uname -m)" = x86_64 ] || [ "$(uname -m)" = aarch64 ] || fail "untested architecture $(uname -m)"

# --- 1. the Debian 13 root (cached) -------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -x 9
T0=$(now)
if [ -x "$ROOTFS/usr/bin/pipewire" ] && [ "$(cat "$CACHE/packages" 2>/dev/null)" = "$PACKAGES" ]; then
    ROOT_HOW=warm
else
    ROOT_HOW=cold
    if ! command -v mmdebstrap >/dev/null; then
        echo "pw14: installing mmdebstrap (Debian package)"
        { apt-get install -y -q mmdebstrap || { apt-get update -q && apt-get install -y -q mmdebstrap; }; } \
            >"$CACHE/apt.log" 2>&1 || fail "cannot install mmdebstrap (see $CACHE/apt.log)"
    fi
    echo "pw14: making the Debian 13 root in $ROOTFS (mmdebstrap, a few minutes)"
    rm -rf "$ROOTFS.new" "$CACHE/packages"
    # shellcheck disable=SC2086 # the mirror is optional
    mmdebstrap --variant=apt --include="$PACKAGES" trixie "$ROOTFS.new" ${HARDMUTE_TRIXIE_MIRROR:-} \
        >"$CACHE/mmdebstrap.log" 2>&1 || { rm -rf "$ROOTFS.new"; fail "mmdebstrap failed (see $CACHE/mmdebstrap.log)"; }
    rm -rf "$ROOTFS"
    mv "$ROOTFS.new" "$ROOTFS"
    echo "$PACKAGES" >"$CACHE/packages"
fi
flock -s 9    # other runs may share the root (their mounts are private); a rebuild waits for them
T1=$(now)
echo "pw14: Debian 13 root $ROOT_HOW in $(secs "$T0" "$T1") s ($(du -sh "$ROOTFS" 2>/dev/null | cut -f1)):" \
    "$(chroot "$ROOTFS" dpkg-query -W -f '${Package} ${Version}, ' pipewire wireplumber pipewire-pulse | sed 's/, $//')"

# --- 2. the binaries, built on the host by run.sh's own build step ---------------------------
# `run.sh true` builds exactly what run.sh builds, then runs the one "test" `true`; hardmuted and
# hardmute are what lib.sh's hm_start builds when they are missing (the chroot's `cargo`, bin/cargo,
# only says "nothing to do").
{ MEASURE=0 bash "$E2E/run.sh" true && (cd "$ROOT" && cargo build -q -p hardmuted -p hardmute-cli); } \
    >"$CACHE/build.log" 2>&1 || { cat "$CACHE/build.log" >&2; fail "host build failed"; }
T2=$(now)
echo "pw14: host build (run.sh's build step) $(secs "$T1" "$T2") s"

# --- 3. the suite inside the root ----------------------------------------------------------
SCRATCH=$(mktemp -d -t hm-pw14.XXXXXX)    # the chroot's /tmp: test work dirs, logs
REPORT_OUT=$SCRATCH/linux-measurements-pw14.md
: >"$REPORT_OUT"
PASS_ENV=(PATH="$HERE/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root LANG=C.UTF-8 TERM=dumb)
for v in TOGGLE_SECS E2E_TOGGLE_SECS MEASURE_SECS MEASURE KEEP_WORK QUANTUM HM_IMPL GUARD_DEBUG WIREPLUMBER_DEBUG; do
    [ -n "${!v+x}" ] && PASS_ENV+=("$v=${!v}")
done

# Runs in the private mount namespace; $1.. = the tests.
inside() {
    set -uo pipefail
    mounts=()
    unmount_all() {
        local i
        for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"; done
    }
    trap unmount_all EXIT
    mnt() { # mnt TARGET MOUNT-ARGS...
        local t=$1; shift
        mount "$@" "$t" || { echo "pw14: mount $* $t failed" >&2; exit 1; }
        mounts+=("$t")
    }
    mount --make-rprivate / || exit 1
    mnt "$ROOTFS/proc" -t proc proc
    mnt "$ROOTFS/dev" --rbind /dev
    mnt "$ROOTFS/tmp" --bind "$SCRATCH"
    mkdir -p "$ROOTFS$ROOT" || exit 1
    mnt "$ROOTFS$ROOT" --bind "$ROOT"    # the checkout at the same path: run.sh's paths hold
    local target; target=$(readlink -f "$ROOT/target")
    if [ "$target" != "$ROOT/target" ]; then    # CI's target/ is a symlink to a cache outside the clone
        mkdir -p "$ROOTFS$target" || exit 1
        mnt "$ROOTFS$target" --bind "$target"
    fi
    if [ -f "$ROOT/docs/linux-measurements.md" ]; then
        mnt "$ROOTFS$ROOT/docs/linux-measurements.md" --bind "$REPORT_OUT"
    fi
    # The host-built binaries resolve against Debian 13's libraries (libpipewire-0.3.so.0 1.4).
    local b missing=0
    for b in target/debug/hardmuted target/debug/hardmute target/debug/examples/hardmute_node \
        target/release/hm-play target/release/hm-wav; do
        [ -x "$ROOT/$b" ] || continue
        chroot "$ROOTFS" test -x "$ROOT/$b" || { echo "pw14: $b is not visible inside the root" >&2; missing=1; continue; }
        if chroot "$ROOTFS" ldd "$ROOT/$b" | grep 'not found'; then
            echo "pw14: $b: missing libraries in the Debian 13 root" >&2; missing=1
        fi
    done
    [ $missing = 0 ] || exit 1
    local lib; lib=$(chroot "$ROOTFS" ldd "$ROOT/target/debug/hardmuted" | awk '/libpipewire-0.3/{print $3}')
    echo "pw14: hardmuted links $lib -> $(chroot "$ROOTFS" readlink -f "$lib") in the Debian 13 root"
    chroot "$ROOTFS" /usr/bin/env -i "${PASS_ENV[@]}" bash "$E2E/run.sh" "$@"
}
export -f inside
PASS_ENV_STR=$(declare -p PASS_ENV)
export ROOTFS ROOT E2E SCRATCH REPORT_OUT PASS_ENV_STR

unshare --mount --propagation private bash -c 'eval "$PASS_ENV_STR"; inside "$@"' pw14 "$@" | tee "$SCRATCH/suite.log"
RC=${PIPESTATUS[0]}
T3=$(now)
echo "pw14: suite in the Debian 13 root $(secs "$T2" "$T3") s (root $ROOT_HOW $(secs "$T0" "$T1") s, build $(secs "$T1" "$T2") s, total $(secs "$T0" "$T3") s)"
if [ -s "$REPORT_OUT" ]; then
    echo "pw14: measurements (PipeWire 1.4) in $REPORT_OUT:"
    sed 's/^/    /' "$REPORT_OUT"
fi
if grep -q . <(findmnt -rn -o TARGET | grep -F "$ROOTFS"); then
    echo "pw14: mounts left under $ROOTFS:" >&2; findmnt -rn -o TARGET | grep -F "$ROOTFS" >&2; RC=1
fi
LAST=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$SCRATCH/suite.log" | tail -1)
if [ "$RC" = 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
    rm -rf "$SCRATCH"
else
    echo "pw14: the chroot's /tmp (work dirs, logs) kept in $SCRATCH"
fi
echo "${LAST:-0 passed, 1 failed}"
[ "$RC" = 0 ]
