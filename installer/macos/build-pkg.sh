#!/usr/bin/env bash
# Build the signed, notarizable installer package on a Mac.
# usage: build-pkg.sh VERSION HardMute.driver hardmuted [hardmute [hardmute-panel]]
#   The panel is installed as /Applications/HardMute.app (build-app.sh), a menu-bar app.
# env:   APP_SIGN_ID="Developer ID Application: NAME (TEAMID)"   (codesign identity, optional)
#        PKG_SIGN_ID="Developer ID Installer: NAME (TEAMID)"     (productsign identity, optional)
#        NOTARY_PROFILE=<notarytool keychain profile>            (notarize + staple, optional)
# Without identities it produces an unsigned package for local testing only (macOS refuses to load
# an unsigned plug-in into coreaudiod on Apple silicon unless ad-hoc signed; see README.md).
set -euo pipefail
VERSION=$1 DRIVER=$2 DAEMON=$3 CLI=${4:-} PANEL=${5:-}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
mkdir -p "$ROOT/Library/Audio/Plug-Ins/HAL" "$ROOT/Library/Application Support/HardMute" \
         "$ROOT/Library/LaunchAgents" "$ROOT/usr/local/bin"
cp -R "$DRIVER" "$ROOT/Library/Audio/Plug-Ins/HAL/HardMute.driver"
cp "$DAEMON" "$ROOT/Library/Application Support/HardMute/hardmuted"
cp "$HERE/uninstall.sh" "$ROOT/Library/Application Support/HardMute/uninstall.sh"
[ -n "$CLI" ] && cp "$CLI" "$ROOT/usr/local/bin/hardmute"
cp "$HERE/org.hardmute.daemon.plist" "$ROOT/Library/LaunchAgents/org.hardmute.daemon.plist"
# The panel and its login item come together (a LaunchAgent without its program would fail at
# every login).
if [ -n "$PANEL" ]; then
  mkdir -p "$ROOT/Applications"
  "$HERE/build-app.sh" "$ROOT/Applications" "$VERSION" "$PANEL" >/dev/null
  cp "$HERE/org.hardmute.panel.plist" "$ROOT/Library/LaunchAgents/org.hardmute.panel.plist"
fi

SIGN=${APP_SIGN_ID:--}   # "-" = ad-hoc
# Hardened runtime + secure timestamp are required for notarization.
CS=(codesign --force --options runtime --timestamp -s "$SIGN")
[ "$SIGN" = "-" ] && CS=(codesign --force -s -)
"${CS[@]}" "$ROOT/Library/Audio/Plug-Ins/HAL/HardMute.driver"
"${CS[@]}" "$ROOT/Library/Application Support/HardMute/hardmuted"
[ -n "$CLI" ] && "${CS[@]}" "$ROOT/usr/local/bin/hardmute"
[ -n "$PANEL" ] && "${CS[@]}" "$ROOT/Applications/HardMute.app"

pkgbuild --root "$ROOT" --identifier org.hardmute.pkg --version "$VERSION" \
         --scripts "$HERE/scripts" --install-location / "$WORK/HardMute-component.pkg"
# The installer's welcome, licence and conclusion pages.
mkdir -p "$WORK/resources"
cp "$HERE/resources/"*.html "$WORK/resources/"
{ cat "$HERE/../../LICENSE-MIT"
  printf '\n\nHardMute is dual-licensed: MIT (above) OR Apache-2.0 (below), at your option.\n\n'
  cat "$HERE/../../LICENSE-APACHE"; } > "$WORK/resources/license.txt"
productbuild --distribution "$HERE/distribution.xml" --resources "$WORK/resources" \
             --package-path "$WORK" "$WORK/HardMute-unsigned.pkg"
OUT="HardMute-$VERSION.pkg"
if [ -n "${PKG_SIGN_ID:-}" ]; then
  productsign --sign "$PKG_SIGN_ID" "$WORK/HardMute-unsigned.pkg" "$OUT"
else
  cp "$WORK/HardMute-unsigned.pkg" "$OUT"
fi
if [ -n "${NOTARY_PROFILE:-}" ]; then
  xcrun notarytool submit "$OUT" --keychain-profile "$NOTARY_PROFILE" --wait
  xcrun stapler staple "$OUT"
fi
echo "$OUT"
