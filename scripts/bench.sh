#!/usr/bin/env bash
# Builds the release binaries and runs bench-eventlog: Warrant's event-log parse + decode + replay
# side by side with tpm2_eventlog (tpm2-tools), on the fixture with the most events.
#
#   scripts/bench.sh [--iterations N] [--file LOG]
#
# Results and how to read them: docs/benchmarks.md. Not part of scripts/test.sh.
# The dm-verity benchmark (warrant verity vs veritysetup, 1 GiB image) is scripts/bench-verity.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

command -v tpm2_eventlog >/dev/null || scripts/install-deps.sh

# The `warrant` CLI row needs target/release/warrant. If it does not build yet, the benchmark
# still runs and says why that row is skipped.
# Never bench a stale binary: if the build fails, the row is skipped.
cli=()
if ! cargo build --release --locked -p node --bin warrant; then
  echo "bench: building warrant failed; the CLI row will be skipped" >&2
  cli=(--warrant none)
fi
cargo bench --locked -p tests --bench bench-eventlog -- "${cli[@]}" "$@"
