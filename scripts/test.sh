#!/usr/bin/env bash
# Warrant's one test command (README; CI runs it through .ci/run in a fresh clone with CI=true):
# system packages, formatting, lints, every test of the workspace, doc tests.
# Fuzzing (scripts/fuzz.sh) and benchmarks (scripts/bench.sh) are separate: too slow for here.
set -euo pipefail

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/install-deps.sh

if [ "${CI:-}" = "true" ]; then
  export CARGO_TERM_COLOR=never
fi
# Not RUSTFLAGS=-D warnings: clippy below already fails on every rustc warning of every target,
# and changing RUSTFLAGS would rebuild the whole dependency tree.

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Doc tests first (nextest does not run them), so the run ends on the summary of the real
# test run rather than on a doc-test line that counts no test.
step "cargo test --doc"
cargo test --doc --workspace --locked

# The end-to-end tests run the built `warrant` and `warrant-verifier` (tests/tests/support):
# cargo builds a package's binaries for its own integration tests only, and the verifier has
# none, so build every binary first.
step "cargo build --bins"
cargo build --workspace --bins --locked

if cargo nextest --version >/dev/null 2>&1; then
  step "cargo nextest run"
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "test: cargo-nextest not found; using cargo test (install: cargo install cargo-nextest --locked)"
  step "cargo test"
  cargo test --workspace --locked --no-fail-fast
fi

step "all checks passed"
