#!/usr/bin/env bash
# Assemble HardMute.app, the panel as a menu-bar app (LSUIElement), around a built panel binary.
# usage: build-app.sh OUT_DIR VERSION HARDMUTE_PANEL_BINARY
#   The icon (Contents/Resources/HardMute.icns) comes from installer/icons/hardmute.svg: rendered
#   with rsvg-convert (librsvg: Homebrew `librsvg`, Debian `librsvg2-bin`) and packed with
#   iconutil on a Mac, png2icns (Debian `icnsutils`) elsewhere.
set -euo pipefail
OUT=$1 VERSION=$2 PANEL=$3
HERE=$(cd "$(dirname "$0")" && pwd)
SVG="$HERE/../icons/hardmute.svg"
APP="$OUT/HardMute.app"
C="$APP/Contents"
rm -rf "$APP"
mkdir -p "$C/MacOS" "$C/Resources"
cp "$PANEL" "$C/MacOS/hardmute-panel"
chmod 755 "$C/MacOS/hardmute-panel"
sed "s/@VERSION@/$VERSION/g" "$HERE/panel-Info.plist.in" > "$C/Info.plist"
printf 'APPL????' > "$C/PkgInfo"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
if command -v iconutil >/dev/null; then
  SET="$WORK/HardMute.iconset"; mkdir -p "$SET"
  for s in 16 32 128 256 512; do
    rsvg-convert -w $s -h $s "$SVG" -o "$SET/icon_${s}x${s}.png"
    rsvg-convert -w $((s * 2)) -h $((s * 2)) "$SVG" -o "$SET/icon_${s}x${s}@2x.png"
  done
  iconutil -c icns "$SET" -o "$C/Resources/HardMute.icns"
else
  # png2icns takes the sizes it has an icns type for: 16 32 48 128 256 512 (1024 is not one).
  for s in 16 32 48 128 256 512; do rsvg-convert -w $s -h $s "$SVG" -o "$WORK/$s.png"; done
  png2icns "$C/Resources/HardMute.icns" "$WORK"/{16,32,48,128,256,512}.png >/dev/null
fi
if command -v plutil >/dev/null; then plutil -lint "$C/Info.plist"; else
  python3 -c 'import plistlib,sys; plistlib.load(open(sys.argv[1],"rb"))' "$C/Info.plist"; fi
echo "$APP"
