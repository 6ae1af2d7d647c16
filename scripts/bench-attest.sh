#!/usr/bin/env bash
# Builds the release `warrant` and `warrant-verifier`, then runs bench-attest: the verifier's pure
# core on real evidence (a swtpm quote plus a real machine's 115 KiB firmware log and Warrant's
# CEL log) beside tpm2_checkquote + tpm2_eventlog spawned per attestation (the shell-out way),
# end to end over gRPC with several swtpm nodes, and the verifier's memory per registered node.
#
#   scripts/bench-attest.sh [--iterations N] [--nodes K] [--rounds R] [--registered M]
#
# Results and how to read them: docs/benchmarks.md. Not part of scripts/test.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

command -v tpm2_checkquote >/dev/null && command -v swtpm >/dev/null || scripts/install-deps.sh

# Never bench a stale binary: build first, and stop if that fails.
cargo build --release --locked -p node -p verifier
cargo bench --locked -p tests --bench bench-attest -- "$@"
