#!/usr/bin/env bash
# Assemble HardMute.driver from the two per-architecture plug-in builds (universal binary).
# usage: build-bundle.sh OUT_DIR VERSION ARM64_DYLIB X86_64_DYLIB
#   The dylibs are the cdylib outputs linked with -bundle (MH_BUNDLE), e.g. from
#   `cargo rustc -p hardmute-macos-plugin --release --lib --crate-type cdylib --target <T> -- -Clink-arg=-bundle`
#   on a Mac (or `cargo xtask cross-check macos` on Linux, unsigned).
set -euo pipefail
OUT=$1 VERSION=$2 ARM=$3 X86=$4
HERE=$(cd "$(dirname "$0")" && pwd)
LIPO=${LIPO:-$(command -v lipo || command -v llvm-lipo || echo /usr/lib/llvm-22/bin/llvm-lipo)}
B="$OUT/HardMute.driver/Contents"
rm -rf "$OUT/HardMute.driver"
mkdir -p "$B/MacOS" "$B/Resources"
"$LIPO" -create "$ARM" "$X86" -output "$B/MacOS/HardMute"
sed "s/@VERSION@/$VERSION/g" "$HERE/Info.plist.in" > "$B/Info.plist"
if command -v plutil >/dev/null; then plutil -lint "$B/Info.plist"; else
  python3 -c 'import plistlib,sys; plistlib.load(open(sys.argv[1],"rb"))' "$B/Info.plist"; fi
echo "$OUT/HardMute.driver"
