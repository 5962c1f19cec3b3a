#!/usr/bin/env bash
# Windows user space (hardmute-backend-windows + hardmuted), checked on Linux:
#   1. clippy -D warnings for x86_64-pc-windows-msvc: type-checks the COM/IOCTL layer for the
#      real target;
#   2. for x86_64-pc-windows-gnu (mingw gcc links): clippy of the tests, then `cargo test` run
#      under headless wine, once without any capture device and once with ALSA's null device as
#      the default input (tests/wine/asound.conf), so the WASAPI capture path really runs;
#   3. the hardmuted.exe binary under wine, where \\.\HardMuteControl cannot exist: it must
#      exit 1 with the "driver is not running" error (fail closed).
# Needs (Debian 12): rustc-web cargo-web rust-web-src rust-web-clippy (in /usr/bin, for
# -Zbuild-std), gcc-mingw-w64-x86-64, wine64 (with libasound2). The wine bcryptprimitives shim is built from
# xtask/shims/bcryptprimitives.c.
# WINUSER_CACHE (default ${TMPDIR:-/tmp}/hardmute-winuser) holds the two target dirs and the
# wine prefix: keep it between runs (the std builds dominate: cold ~12 min on 2 busy cores,
# warm ~1.5 min).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=${WINUSER_CACHE:-${TMPDIR:-/tmp}/hardmute-winuser}
SHIM_SRC=${SHIM_SRC:-$ROOT/xtask/shims/bcryptprimitives.c}
mkdir -p "$CACHE"
export PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1
export WINEPREFIX=$CACHE/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
WINESERVER=$(command -v wineserver64 || echo /usr/lib/wine/wineserver64)

# Wine 8.0 lacks bcryptprimitives.dll (ProcessPrng, imported by Rust std >= 1.78): shim it.
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -s -o "$CACHE/bcryptprimitives.dll" "$SHIM_SRC" -ladvapi32
  "$WINE" wineboot -i >/dev/null 2>&1 || true
  cp "$CACHE/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
fi
cat > "$CACHE/wine-run.sh" <<RUNNER
#!/usr/bin/env bash
exec "$WINE" "\$@"
RUNNER
chmod +x "$CACHE/wine-run.sh"
trap 'WINEPREFIX=$WINEPREFIX "$WINESERVER" -k 2>/dev/null || true' EXIT

cd "$ROOT"
PKGS=(-p hardmute-backend-windows -p hardmuted)
step() { echo "== $*" >&2; }

step "msvc: clippy (type-check of the Win32/COM/IOCTL layer)"
CARGO_TARGET_DIR=$CACHE/msvc cargo clippy --no-deps -Zbuild-std=std,panic_abort \
  --target x86_64-pc-windows-msvc "${PKGS[@]}" -- -D warnings

T=x86_64-pc-windows-gnu
# Tests need panic=unwind, hence their own std build and target dir; the binary shares it.
export CARGO_PROFILE_DEV_PANIC=unwind CARGO_TARGET_DIR=$CACHE/gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$CACHE/wine-run.sh
step "gnu: clippy of every target (tests included)"
cargo clippy --no-deps -Zbuild-std --target $T "${PKGS[@]}" --all-targets -- -D warnings
step "gnu: tests under wine, no capture device"
cargo test -Zbuild-std --target $T "${PKGS[@]}"
step "gnu: WASAPI tests under wine, ALSA null device as the default input"
ALSA_CONFIG_PATH=$ROOT/userspace/backend/windows/tests/wine/asound.conf \
  cargo test -Zbuild-std --target $T "${PKGS[@]}" \
  --test wasapi_smoke --test capture_bridge --test windows_backend

step "gnu: hardmuted.exe under wine fails closed without the driver"
cargo build -Zbuild-std --target $T -p hardmuted
mkdir -p "$CACHE/state"
set +e
"$CACHE/wine-run.sh" "$CARGO_TARGET_DIR/$T/debug/hardmuted.exe" --config-dir "Z:${CACHE//\//\\}\\state" \
  >"$CACHE/hardmuted.log" 2>&1
rc=$?
set -e
grep -v '^ALSA lib' "$CACHE/hardmuted.log" >&2 || true
if [ "$rc" -ne 1 ] || ! grep -q 'HardMuteControl does not exist' "$CACHE/hardmuted.log"; then
  echo "hardmuted.exe did not fail closed (rc=$rc)" >&2
  exit 1
fi
echo "windows userspace cross-test: ok" >&2
