#!/usr/bin/env bash
# Generates what the .deb ships besides the programs, from the sources of truth:
#   man pages and shell completions from the `hardmute` program's clap definition,
#   the hicolor icon set (PNG sizes + SVG) from installer/icons/hardmute.svg.
# usage: build-assets.sh BIN_DIR OUT_DIR       (BIN_DIR holds the built `hardmute`)
#   needs: rsvg-convert (librsvg2-bin), gzip
set -euo pipefail
BIN=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SVG="$HERE/../icons/hardmute.svg"
rm -rf "$OUT"
mkdir -p "$OUT/man" "$OUT/completions" "$OUT/icons/scalable"
"$BIN/hardmute" man-pages "$OUT/man" >/dev/null
gzip -9n "$OUT"/man/*.1                      # Debian policy 12.1: compressed with gzip -9n
"$BIN/hardmute" completions bash >"$OUT/completions/hardmute"
"$BIN/hardmute" completions zsh >"$OUT/completions/_hardmute"
"$BIN/hardmute" completions fish >"$OUT/completions/hardmute.fish"
cp "$SVG" "$OUT/icons/scalable/hardmute.svg"
for size in 16 22 24 32 48 64 128 256 512; do
    mkdir -p "$OUT/icons/${size}x${size}"
    rsvg-convert -w "$size" -h "$size" "$SVG" -o "$OUT/icons/${size}x${size}/hardmute.png"
done
