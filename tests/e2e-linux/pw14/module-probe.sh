#!/usr/bin/env bash
# tests/e2e-linux/module-probe.sh inside the Debian 13 root (PipeWire 1.4 + WirePlumber 0.5)
# that pw14/run.sh makes and caches. Run pw14/run.sh once first (it makes the root); the module,
# the plugin and the test tools are built on the host (Debian 12) and used as they are: they
# link libpipewire-0.3.so.0, which Debian 13 has too.
#
#   bash tests/e2e-linux/pw14/module-probe.sh      (root: mount, chroot; env as module-probe.sh)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
E2E=$(cd "$HERE/.." && pwd)
ROOT=$(cd "$E2E/../.." && pwd)
ROOTFS=${HARDMUTE_TRIXIE_CACHE:-${HOME:-/root}/.cache/hardmute-trixie}/root
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
[ -x "$ROOTFS/usr/bin/pipewire" ] || { echo "no Debian 13 root at $ROOTFS: run tests/e2e-linux/pw14/run.sh first"; exit 1; }
(cd "$ROOT" && cargo build -q --release -p hardmute-linux-gate -p hardmute-linux-module \
    -p hardmute-e2e-wavtool --example page_ctl) || { echo "host build failed"; exit 1; }
OUT=${OUT:-$ROOT/target/module-probe-pw14.txt}
SCRATCH=$(mktemp -d -t hm-pw14-probe.XXXXXX)
export ROOTFS ROOT E2E SCRATCH OUT
PASS="PATH=$HERE/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SKIP_BUILD=1 OUT=$OUT"
for v in MEASURE_SECS ROUNDS SKIP_MEASURE SKIP_FUNCTIONAL KEEP_WORK; do
    [ -n "${!v+x}" ] && PASS="$PASS $v=${!v}"
done
export PASS
unshare --mount --propagation private bash -c '
    set -u
    mount --make-rprivate / && mount -t proc proc "$ROOTFS/proc" && mount --rbind /dev "$ROOTFS/dev" &&
        mount --bind "$SCRATCH" "$ROOTFS/tmp" && mkdir -p "$ROOTFS$ROOT" && mount --bind "$ROOT" "$ROOTFS$ROOT" ||
        { echo "mounts failed"; exit 1; }
    # shellcheck disable=SC2086
    chroot "$ROOTFS" /usr/bin/env -i $PASS bash "$E2E/module-probe.sh"'
RC=$?
rm -rf "$SCRATCH"
exit $RC
