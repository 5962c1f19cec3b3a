#!/usr/bin/env bash
# System packages HardMute needs on Debian/Ubuntu to build, run and test on Linux.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
PKGS=(
  pkg-config clang libclang-dev                 # bindgen for the pipewire crate
  libpipewire-0.3-dev libspa-0.2-dev            # the PipeWire node
  pipewire pipewire-bin pipewire-pulse wireplumber pulseaudio-utils   # real daemon + real clients for e2e
  sox python3 dbus procps dpkg-dev systemd
  libasound2-dev pipewire-alsa                  # the leak test's device mode (cpal) run on Linux
  libfontconfig-dev libfreetype-dev fonts-dejavu-core  # the control panel (Slint)
  libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0
  xvfb xauth xdotool imagemagick python3-gi bc         # the headless desktop e2e
  desktop-file-utils librsvg2-bin zsh fish man-db       # the .deb: icons, and installer/linux/test-deb.sh
  mmdebstrap                                    # the e2e suite on PipeWire 1.4 (Debian 13 root, tests/e2e-linux/pw14)
  systemd-container                             # systemd-nspawn: the user unit under a booted systemd (installer/linux/test-systemd.sh)
  chromium                                      # a real browser's getUserMedia in the e2e suite (t22, t24)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[deps] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
