#!/usr/bin/env bash
# Builds the release `warrant` and runs bench-disk: `warrant disk enroll` and `warrant disk unlock
# --test` on LUKS2 image files side by side with `systemd-cryptenroll` and libcryptsetup
# (`cryptsetup luksAddKey`, `cryptsetup open --test-passphrase`), all on one swtpm started for
# the run.
#
#   scripts/bench-disk.sh [--iterations N]
#
# Results and how to read them: docs/benchmarks.md. Not part of scripts/test.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

command -v systemd-cryptenroll >/dev/null && command -v cryptsetup >/dev/null &&
    command -v swtpm >/dev/null || scripts/install-deps.sh

# Never bench a stale binary: build first, and stop if that fails.
cargo build --release --locked -p node --bin warrant
cargo bench --locked -p tests --bench bench-disk -- "$@"
