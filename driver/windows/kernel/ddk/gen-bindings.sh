#!/usr/bin/env bash
# Regenerates src/ddk/bindings.rs (feature `mingw-ddk`) from mingw-w64's DDK headers for
# x86_64-pc-windows-msvc. C mode, so DECLARE_INTERFACE_ expands to `lpVtbl` + typed
# `<Iface>Vtbl` structs. Only the allowlisted types/functions (ddk/allowlist.txt) are kept;
# each function is wrapped in a raw-dylib link block naming the kernel image that exports
# it, looked up in mingw-w64's import libraries (Pc* -> portcls.sys).
# Needs: bindgen CLI (cargo install bindgen-cli), libclang, mingw-w64-x86-64-dev, llvm-nm.
# usage: driver/windows/kernel/ddk/gen-bindings.sh   (from anywhere)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/../src/ddk/bindings.rs
BINDGEN=${BINDGEN:-bindgen}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}
CLANG_RES=$(ls -d "$LIBCLANG_PATH"/clang/*/include | head -1)
MINGW=${MINGW:-/usr/x86_64-w64-mingw32}
NM=${LLVM_NM:-$(command -v llvm-nm-22 || command -v llvm-nm)}
args=()
while read -r kind name; do
  case "$kind" in
    type) args+=(--allowlist-type "$name") ;;
    fn) args+=(--allowlist-function "$name") ;;
  esac
done < <(grep -v '^#' "$HERE/allowlist.txt")
tmp=$(mktemp)
"$BINDGEN" "$HERE/wrapper.h" -o "$tmp" \
  --use-core --ctypes-prefix core::ffi --no-doc-comments --no-layout-tests \
  --default-enum-style moduleconsts "${args[@]}" \
  -- --target=x86_64-pc-windows-msvc -x c -fgnuc-version=4.2.1 -ffreestanding \
     -nostdinc -isystem "$CLANG_RES" -isystem "$MINGW/include" -isystem "$MINGW/include/ddk" \
     -D_AMD64_ -D_KERNEL_MODE=1 -Wno-everything
LLVM_NM=$NM python3 "$HERE/link-imports.py" "$tmp" \
  "$MINGW/lib/libntoskrnl.a" "$MINGW/lib/libhal.a" "$MINGW/lib/libks.a" > "$OUT"
rm -f "$tmp"
echo "wrote $OUT ($(wc -l < "$OUT") lines)"
