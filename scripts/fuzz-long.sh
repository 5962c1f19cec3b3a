#!/usr/bin/env bash
# The long fuzz run: at least 10^8 executions in total across every target in fuzz/ (split
# evenly), for a release or after a parser changes. Hours on one core; run it on an idle machine
# and record its table (executions, coverage, crashes) in docs/fuzzing.md.
#   scripts/fuzz-long.sh [TOTAL_EXECUTIONS]   (default 100000000)
set -euo pipefail
exec "$(dirname "$0")/fuzz.sh" long "${1:-100000000}"
