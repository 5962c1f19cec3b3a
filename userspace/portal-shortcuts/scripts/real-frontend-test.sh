#!/usr/bin/env bash
# The portal client against the REAL xdg-desktop-portal frontend (Debian's package), with a fake
# desktop backend behind it (tests/real_frontend.rs). The frontend is unpacked into target/ and
# not installed: installed, its D-Bus service file would make it start on every session bus of
# the machine, including the desktop e2e's.
#
#   bash userspace/portal-shortcuts/scripts/real-frontend-test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
DIR=$ROOT/target/xdg-desktop-portal
if [ ! -x "$DIR/usr/libexec/xdg-desktop-portal" ]; then
    rm -rf "$DIR.download" && mkdir -p "$DIR.download" "$DIR"
    # (apt-get warns that its _apt user cannot write the folder when run as root: harmless.)
    (cd "$DIR.download" && apt-get download xdg-desktop-portal libjson-glib-1.0-0 >/dev/null 2>&1)
    for deb in "$DIR.download"/*.deb; do dpkg -x "$deb" "$DIR"; done
    rm -rf "$DIR.download"
fi
export HARDMUTE_XDP_BIN="$DIR/usr/libexec/xdg-desktop-portal"
export LD_LIBRARY_PATH="$DIR/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$HARDMUTE_XDP_BIN" --version
cd "$ROOT"
cargo test -p hardmute-portal-shortcuts --test real_frontend -- --ignored
