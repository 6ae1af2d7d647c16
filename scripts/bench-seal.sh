#!/usr/bin/env bash
# Builds the release `warrant` and runs bench-seal: sealing a 32-byte secret to PolicyPCR(sha256:7)
# and unsealing it with Warrant (library in process, and the CLI) side by side with tpm2-tools
# (tpm2_createprimary/createpolicy/create, tpm2_load/startauthsession/policypcr/unseal), all on
# one swtpm started for the run.
#
#   scripts/bench-seal.sh [--iterations N]
#
# Results and how to read them: docs/benchmarks.md. Not part of scripts/test.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

command -v tpm2_unseal >/dev/null && command -v swtpm >/dev/null || scripts/install-deps.sh

# Never bench a stale binary: build first, and stop if that fails.
cargo build --release --locked -p node --bin warrant
cargo bench --locked -p tests --bench bench-seal -- "$@"
