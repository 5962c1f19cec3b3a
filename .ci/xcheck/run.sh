#!/usr/bin/env bash
# The cross-target part of CI, in one call for .ci/run:
#   1. install the rig's system packages and inputs (Debian 12, as root; quick when present),
#   2. the xtask's own tests (inspection helpers against real ld64.lld / lld-link output),
#   3. every cross-check stage, ending with a summary table (incl. `windows`: driver .sys, programs
#      linked for msvc+gnu, installer; `windows-wine`: the Windows crates' tests run under wine;
#      `windows-msi`: the per-user MSI built with wixl and read back table by table; `macos-run`:
#      the HAL plug-in's shipped x86_64 slice loaded on Linux and driven by the simulated coreaudiod).
# Per-target std/core builds are cached in $HARDMUTE_XCHECK_CACHE (default ~/.cache/hardmute-xcheck),
# outside the clone, so a fresh CI clone stays warm.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo xtask cross-check deps
cargo test -p xtask
cargo xtask cross-check all
