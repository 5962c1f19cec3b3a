#!/usr/bin/env bash
# Builds the .deb (build-deb.sh: cargo-deb from release binaries), checks what it contains, then (as root)
# installs it with dpkg on this machine, uses what it installed (programs, man pages, shell
# completions, the menu entry under Xvfb), purges it and checks that nothing is left.
#   bash installer/linux/test-deb.sh
#   needs: cargo-deb (cargo install cargo-deb --locked), dpkg-dev, desktop-file-utils,
#          librsvg2-bin, zsh, fish, man-db, xvfb, xdotool, and the package's dependencies
#          (scripts/deps.sh installs them all). Without root only the build and content checks run.
#   KEEP_INSTALLED=1 leaves the package installed.
# Prints "N passed, N failed" last.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
passed=0 failed=0
check() { if eval "$2"; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

if ! cargo deb --version >/dev/null 2>&1; then
    echo "SKIPPED: cargo-deb is not installed (cargo install cargo-deb --locked)"
    echo "0 passed, 0 failed"
    exit 0
fi
for tool in dpkg-deb desktop-file-validate rsvg-convert; do
    check "tool $tool present" 'command -v $tool >/dev/null'
done
[ "$failed" = 0 ] || finish
REL=target/release
DEB=$(bash installer/linux/build-deb.sh | tail -1) || { echo "FAIL build-deb.sh"; failed=$((failed + 1)); finish; }
LIST=$(dpkg -c "$DEB")
INFO=$(dpkg-deb -I "$DEB")
check "deb built" '[ -s "$DEB" ]'

PROGRAMS=(hardmuted hardmute hardmute-panel hardmute-leak-test)
FILES=(
    ./usr/lib/systemd/user/hardmuted.service
    ./usr/share/applications/org.hardmute.Panel.desktop
    ./etc/xdg/autostart/hardmute-panel.desktop
    ./usr/share/bash-completion/completions/hardmute
    ./usr/share/zsh/vendor-completions/_hardmute
    ./usr/share/fish/vendor_completions.d/hardmute.fish
    ./usr/share/icons/hicolor/scalable/apps/hardmute.svg
    ./usr/lib/hardmute/libhardmute_linux_gate.so
    ./usr/share/hardmute/pipewire.conf.d/50-hardmute.conf
)
SIZES=(16 22 24 32 48 64 128 256 512)
for s in "${SIZES[@]}"; do FILES+=("./usr/share/icons/hicolor/${s}x${s}/apps/hardmute.png"); done
MANS=()
for m in "$REL"/deb-assets/man/*.1.gz; do MANS+=("./usr/share/man/man1/$(basename "$m")"); done
check "man pages generated (hardmute + one per subcommand)" '[ ${#MANS[@]} -ge 10 ]'
FILES+=("${MANS[@]}")
for p in "${PROGRAMS[@]}"; do
    check "contains ./usr/bin/$p, executable" 'grep -q "^-rwxr-xr-x .* ./usr/bin/$p\$" <<<"$LIST"'
done
for f in "${FILES[@]}"; do
    check "contains $f (0644)" 'grep -q "^-rw-r--r-- .* $f\$" <<<"$LIST"'
done
DEPENDS=$(sed -n 's/^ Depends: //p' <<<"$INFO")
for dep in "libpipewire-0.3-0 (" "libfontconfig1 (" "pipewire (>= 0.3.65)" "wireplumber | pipewire-media-session" libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxi6 libxrandr2; do
    check "depends on $dep" 'grep -qF "$dep" <<<"$DEPENDS"'
done
CTRL() { dpkg-deb --ctrl-tarfile "$DEB" | tar -xO "./$1"; }
check "postinst enables the user unit the dh_installsystemduser way" \
    'CTRL postinst | grep -q "deb-systemd-helper --user enable .hardmuted.service."'
check "postrm purges the enablement state" 'CTRL postrm | grep -q "deb-systemd-helper --user purge .hardmuted.service."'
check "maintainer scripts are valid sh" 'CTRL postinst | sh -n && CTRL postrm | sh -n'
INSTALLED_KIB=$(sed -n 's/^ Installed-Size: //p' <<<"$INFO")
echo "     installed size: ${INSTALLED_KIB} KiB; .deb: $(($(stat -c %s "$DEB") / 1024)) KiB"

tmp=$(mktemp -d); dpkg-deb -x "$DEB" "$tmp"
check "packaged unit is the generated one" 'cmp -s "$tmp/usr/lib/systemd/user/hardmuted.service" installer/linux/debian/hardmuted.service'
check "packaged hardmuted runs" '"$tmp/usr/bin/hardmuted" --version >/dev/null'
check "packaged gate exports ladspa_descriptor" 'nm -D --defined-only "$tmp/usr/lib/hardmute/libhardmute_linux_gate.so" | grep -q " T ladspa_descriptor\$"'
check "packaged drop-in loads the packaged gate" 'grep -q "plugin = \"/usr/lib/hardmute/libhardmute_linux_gate.so\"" "$tmp/usr/share/hardmute/pipewire.conf.d/50-hardmute.conf"'
if command -v systemd-analyze >/dev/null; then
    # As a user unit (--user), so BindsTo=pipewire.service resolves against the user unit dirs;
    # any unknown or invalid directive is reported with the file's name.
    check "systemd accepts the packaged unit as a user unit" 'sed "s|/usr/bin/hardmuted|$tmp/usr/bin/hardmuted|" "$tmp/usr/lib/systemd/user/hardmuted.service" >"$tmp/hardmuted.service" && mkdir -p "$tmp/run" && XDG_RUNTIME_DIR="$tmp/run" systemd-analyze --user verify --man=no "$tmp/hardmuted.service" 2>&1 | { ! grep -q hardmuted.service; }'
fi
for d in "$tmp/usr/share/applications/org.hardmute.Panel.desktop" "$tmp/etc/xdg/autostart/hardmute-panel.desktop"; do
    check "desktop-file-validate $(basename "$d")" 'desktop-file-validate "$d" | { ! grep -q "error:"; }'
done
for s in "${SIZES[@]}"; do
    check "icon ${s}x${s} is a ${s}x${s} PNG" 'python3 -c "import struct,sys; d=open(sys.argv[1],\"rb\").read(24); sys.exit(not (d[:8]==b\"\\x89PNG\\r\\n\\x1a\\n\" and struct.unpack(\">II\",d[16:24])==($s,$s)))" "$tmp/usr/share/icons/hicolor/${s}x${s}/apps/hardmute.png"'
done
rm -rf "$tmp"

# ---- install on this machine ----
if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED install/purge checks: not root"
    finish
fi
if dpkg -s hardmute >/dev/null 2>&1; then
    echo "FAIL a hardmute package is already installed; remove it first (dpkg --purge hardmute)"
    failed=$((failed + 1)); finish
fi
for tool in zsh fish man Xvfb xdotool; do
    check "tool $tool present" 'command -v $tool >/dev/null'
done
WORK=$(mktemp -d /tmp/hardmute-test-deb.XXXXXX)
PIDS=()
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${KEEP_INSTALLED:-0}" != 1 ] && dpkg -s hardmute >/dev/null 2>&1; then dpkg --purge hardmute >/dev/null 2>&1; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
check "dpkg -i installs it" 'dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; false; }'
check "postinst says how to start it now" 'grep -q "systemctl --user start hardmuted" "$WORK/dpkg-i.log"'
OWNED=$(dpkg -L hardmute)
for p in "${PROGRAMS[@]}"; do
    check "installed /usr/bin/$p" '[ -x "/usr/bin/$p" ] && grep -qx "/usr/bin/$p" <<<"$OWNED"'
done
for f in "${FILES[@]}"; do
    check "installed ${f#.}" '[ -f "${f#.}" ] && grep -qx "${f#.}" <<<"$OWNED"'
done
check "user unit enabled for every user (default.target and pipewire.service wants)" \
    '[ "$(readlink /etc/systemd/user/default.target.wants/hardmuted.service)" = /usr/lib/systemd/user/hardmuted.service ] && [ -L /etc/systemd/user/pipewire.service.wants/hardmuted.service ]'

check "hardmute --help runs and lists is-muted" '/usr/bin/hardmute --help | grep -q "is-muted"'
export HARDMUTE_SOCKET="$WORK/run/hardmute.sock" HARDMUTE_CONFIG_DIR="$WORK/config" XDG_RUNTIME_DIR="$WORK/run"
mkdir -p "$WORK/run" && chmod 700 "$WORK/run"
out=$(/usr/bin/hardmute status 2>&1); rc=$?
check "not running: exit 3 and names systemctl --user start hardmuted" '[ $rc = 3 ] && grep -q "systemctl --user start hardmuted" <<<"$out"'
/usr/bin/hardmute is-muted 2>/dev/null; rc=$?
check "is-muted without a daemon: 3" '[ $rc = 3 ]'
/usr/bin/hardmuted --backend simulated >"$WORK/hardmuted.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do /usr/bin/hardmute status >/dev/null 2>&1 && break; sleep 0.1; done
/usr/bin/hardmute mute >/dev/null; /usr/bin/hardmute is-muted; rc_muted=$?
/usr/bin/hardmute unmute >/dev/null; /usr/bin/hardmute is-muted; rc_live=$?
check "is-muted: 0 muted, 1 live (installed programs, simulated daemon)" '[ $rc_muted = 0 ] && [ $rc_live = 1 ]'
/usr/bin/hardmute mute >/dev/null
check "hardmute leak-test --help runs the installed hardmute-leak-test" \
    '/usr/bin/hardmute leak-test --help | grep -q "Exit status"'

for m in "${MANS[@]}"; do
    check "man -l ${m#./usr/share/man/man1/} renders without warnings" \
        'out=$(MANWIDTH=80 man --warnings -l "${m#.}" 2>"$WORK/man.err") && [ -n "$out" ] && [ ! -s "$WORK/man.err" ]'
done
check "man hardmute (by name, from the man path) shows the subcommands" \
    'MANWIDTH=80 man -P cat hardmute 2>/dev/null | grep -q "is-muted"'
check "man hardmute-is-muted documents the exit codes" \
    'MANWIDTH=200 man -P cat hardmute-is-muted 2>/dev/null | grep -q "0 muted, 1 live"'

check "bash completion completes subcommands" \
    'bash -c "source /usr/share/bash-completion/completions/hardmute; COMP_WORDS=(hardmute is-m); COMP_CWORD=1; COMP_LINE=\"hardmute is-m\"; COMP_POINT=\${#COMP_LINE}; _hardmute hardmute is-m hardmute; printf \"%s\n\" \"\${COMPREPLY[@]}\"" | grep -qx is-muted'
check "bash completion completes set options" \
    'bash -c "source /usr/share/bash-completion/completions/hardmute; COMP_WORDS=(hardmute set hotkey-m); COMP_CWORD=2; COMP_LINE=\"hardmute set hotkey-m\"; COMP_POINT=\${#COMP_LINE}; _hardmute hardmute hotkey-m set; printf \"%s\n\" \"\${COMPREPLY[@]}\"" | grep -qx hotkey-mode'
check "zsh finds _hardmute through its default fpath (compinit)" \
    'HOME=$WORK zsh -f -c "autoload -Uz compinit && compinit -u -d $WORK/zcompdump && [[ \${_comps[hardmute]} == _hardmute ]]"'
check "fish completes subcommands from vendor_completions.d" \
    'HOME=$WORK XDG_CONFIG_HOME=$WORK/fishcfg XDG_DATA_HOME=$WORK/fishdata fish -c "complete -C \"hardmute is-m\"" | grep -q "^is-muted"'

# The menu entry, launched the way a desktop does (its Exec= line), under a private X server.
EXEC=$(sed -n 's/^Exec=//p' /usr/share/applications/org.hardmute.Panel.desktop | head -1 | sed 's/ %[fFuUick]//g')
check "menu entry runs the installed panel" '[ "$(command -v "${EXEC%% *}")" = /usr/bin/hardmute-panel ]'
Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
display=""
for _ in $(seq 1 100); do
    display=$(tr -dc 0-9 <"$WORK/display" 2>/dev/null)
    [ -n "$display" ] && [ -S "/tmp/.X11-unix/X$display" ] && break
    sleep 0.1
done
check "Xvfb started" '[ -n "$display" ]'
if [ -n "$display" ]; then
    DISPLAY=":$display" dbus-run-session -- sh -c "exec $EXEC" >"$WORK/panel.log" 2>&1 &
    PIDS+=($!)
    WID=""
    for _ in $(seq 1 300); do
        WID=$(DISPLAY=":$display" xdotool search --name "HardMute control panel" 2>/dev/null | head -1)
        [ -n "$WID" ] && break
        sleep 0.1
    done
    check "the panel's window opens from the menu entry" '[ -n "$WID" ] || { cat "$WORK/panel.log"; false; }'
    # The title follows the state: "HardMute control panel — MUTED" once it talks to hardmuted.
    title=""
    for _ in $(seq 1 100); do
        title=$(DISPLAY=":$display" xdotool getwindowname "$WID" 2>/dev/null)
        grep -q "MUTED" <<<"$title" && break
        sleep 0.1
    done
    check "the panel talks to the installed daemon (title: ${title:-none})" 'grep -q "— MUTED" <<<"$title"'
fi
for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
wait 2>/dev/null
PIDS=()

# ---- purge ----
check "dpkg --purge removes it" 'dpkg --purge hardmute >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; false; }'
check "package gone" '! dpkg -s hardmute >/dev/null 2>&1'
left=""
while read -r path; do
    case "$path" in /. | /usr | /usr/* | /etc | /etc/xdg | /etc/xdg/autostart) [ -d "$path" ] && continue ;; esac
    [ -e "$path" ] || [ -L "$path" ] && left="$left $path"
done <<<"$OWNED"
check "no installed file is left" '[ -z "$left" ] || { echo "left:$left"; false; }'
check "no enablement symlink or helper state is left" \
    '[ -z "$(find /etc/systemd/user /var/lib/systemd/deb-systemd-user-helper-enabled -name "*hardmuted*" 2>/dev/null)" ]'
finish
