#!/usr/bin/env bash
# Builds the release `warrant` and runs bench-verity: `warrant verity format|verify` side by side
# with `veritysetup format|verify` on the same generated 1 GiB image (created in a temp folder
# and deleted afterwards; needs ~1.1 GiB free there, or pass --dir DIR).
#
#   scripts/bench-verity.sh [--size MIB] [--runs N] [--dir DIR]
#
# Results and how to read them: docs/benchmarks.md. Not part of scripts/test.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

command -v veritysetup >/dev/null || scripts/install-deps.sh

# Never bench a stale binary: build first, and stop if that fails.
cargo build --release --locked -p node --bin warrant
cargo bench --locked -p tests --bench bench-verity -- "$@"
