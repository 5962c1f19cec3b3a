#!/bin/sh
# Remove HardMute: daemon, panel, plug-in, files, package receipt. Run with sudo.
set -e
[ "$(id -u)" = 0 ] || { echo "run with sudo" >&2; exit 1; }
USER_ID=$(stat -f %u /dev/console 2>/dev/null || echo 0)
for label in org.hardmute.panel org.hardmute.daemon; do
  [ "$USER_ID" != "0" ] && launchctl bootout "gui/$USER_ID/$label" 2>/dev/null || true
  rm -f "/Library/LaunchAgents/$label.plist"
done
rm -rf /Library/Audio/Plug-Ins/HAL/HardMute.driver
rm -f /usr/local/bin/hardmute
rm -rf "/Library/Application Support/HardMute" /Applications/HardMute.app
# Each user's logs stay (~/Library/Logs/HardMute) for whoever wants to read them.
pkgutil --forget org.hardmute.pkg 2>/dev/null || true
# Unload the plug-in: apps recording from the HardMute Microphone move to another input.
killall coreaudiod 2>/dev/null || true
echo "HardMute removed."
