#!/usr/bin/env bash
# Builds target/debian/hardmute_<version>_<arch>.deb: the release programs, the generated
# assets (build-assets.sh: man pages, completions, icons), then cargo-deb. Prints the .deb's path.
#   bash installer/linux/build-deb.sh
#   needs: cargo-deb (cargo install cargo-deb --locked), dpkg-dev, librsvg2-bin (scripts/deps.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
cargo deb --version >/dev/null 2>&1 || { echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }
cargo build --release -q -p hardmuted -p hardmute-cli -p hardmute-panel -p hardmute-leaktest -p hardmute-linux-gate
bash installer/linux/build-assets.sh target/release target/release/deb-assets
rm -rf target/debian
cargo deb -q -p hardmute-installer-linux --no-build -o target/debian/ >/dev/null
ls target/debian/hardmute_*.deb
