#!/usr/bin/env bash
# Builds the .deb (cargo-deb) from release binaries and checks what it contains.
#   bash installer/linux/test-deb.sh      needs: cargo-deb (cargo install cargo-deb --locked), dpkg-dev
# Prints "N passed, N failed" last.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
passed=0 failed=0
check() { if eval "$2"; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }

if ! cargo deb --version >/dev/null 2>&1; then
    echo "SKIPPED: cargo-deb is not installed (cargo install cargo-deb --locked)"
    echo "0 passed, 0 failed"
    exit 0
fi
cargo build --release -q -p hardmuted -p hardmute-cli -p hardmute-pw-gate || { echo "0 passed, 1 failed"; exit 1; }
rm -rf target/debian
cargo deb -q -p hardmute-installer-linux --no-build -o target/debian/ >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
DEB=$(ls target/debian/hardmute_*.deb)
LIST=$(dpkg -c "$DEB")
INFO=$(dpkg-deb -I "$DEB")
check "deb built" '[ -s "$DEB" ]'
for f in ./usr/bin/hardmuted ./usr/bin/hardmute ./usr/lib/systemd/user/hardmuted.service \
    ./usr/lib/hardmute/libhardmute_pw_gate.so ./usr/share/hardmute/pipewire.conf.d/50-hardmute.conf; do
    check "contains $f" 'grep -q " $f\$" <<<"$LIST"'
done
check "binaries are executable" '[ "$(grep -c "^-rwxr-xr-x .* ./usr/bin/hardmute" <<<"$LIST")" = 2 ]'
check "depends on libpipewire (shlibdeps) and pipewire" 'grep -q "^ Depends:.*libpipewire-0.3-0.*pipewire (>= 0.3.65)" <<<"$INFO"'
check "postinst enables the user unit, no reboot" 'grep -q "postinst" <<<"$INFO" && dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./postinst | grep -q "systemctl --global enable hardmuted.service"'
check "maintainer scripts are valid sh" 'dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./postinst | sh -n && dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./prerm | sh -n'
tmp=$(mktemp -d); dpkg-deb -x "$DEB" "$tmp"
check "packaged unit is the generated one" 'cmp -s "$tmp/usr/lib/systemd/user/hardmuted.service" installer/linux/debian/hardmuted.service'
check "packaged hardmuted runs" '"$tmp/usr/bin/hardmuted" --version >/dev/null'
check "packaged gate exports ladspa_descriptor" 'nm -D --defined-only "$tmp/usr/lib/hardmute/libhardmute_pw_gate.so" | grep -q " T ladspa_descriptor\$"'
check "packaged drop-in loads the packaged gate" 'grep -q "plugin = \"/usr/lib/hardmute/libhardmute_pw_gate.so\"" "$tmp/usr/share/hardmute/pipewire.conf.d/50-hardmute.conf"'
if command -v systemd-analyze >/dev/null; then
    check "systemd accepts the packaged unit" 'sed "s|/usr/bin/hardmuted|$tmp/usr/bin/hardmuted|" "$tmp/usr/lib/systemd/user/hardmuted.service" >"$tmp/hardmuted.service" && systemd-analyze verify --man=no "$tmp/hardmuted.service" 2>&1 | { ! grep -q hardmuted.service; }'
fi
rm -rf "$tmp"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
