#!/usr/bin/env bash
# Warrant's end-to-end demo on embedded defaults. For now: the event-log core on real logs.
#   1. replay a real firmware log (a RHEL 8 VM with Secure Boot) into every PCR bank,
#   2. verify it against the PCR values recorded for that boot,
#   3. catch a log of another boot (Arch Linux, different kernel) claiming the same PCRs.
# Later issues grow this into: swtpm, sealing, attestation and join.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --quiet -p node
W=target/release/warrant
DATA=measure/testdata/eventlogs
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Expected PCR values for a log, taken from the fixture manifest (the values the source
# projects recorded for that boot).
expected() { jq ".\"$1\".pcrs" "$DATA/expected.json" > "$TMP/$1.json"; echo "$TMP/$1.json"; }

echo "== 1. The decoded boot of a RHEL 8 VM (first events)"
$W eventlog show "$DATA/rhel8-uefi.bin" | head -n 24
echo "   ..."

echo
echo "== 2. Replay it and verify it against the PCRs recorded for that boot"
$W eventlog replay "$DATA/rhel8-uefi.bin" --expect "$(expected rhel8-uefi.bin)"

echo
echo "== 3. A log of another boot, presented with the first boot's PCR values"
if $W eventlog replay "$DATA/event-arch-linux.bin" --expect "$(expected event-arch-linux.bin)" > "$TMP/out" 2> "$TMP/err"; then
  echo "demo FAILED: a log of another boot was accepted" >&2
  exit 1
fi
cat "$TMP/err"
echo "   -> rejected, as it must be (exit status 1)."

echo
echo "== 4. Every bundled real log, replayed"
for f in "$DATA"/*.bin; do
  printf '%-34s %s\n' "$(basename "$f")" "$($W eventlog replay "$f" --json | jq -c '{format, events, banks: (.banks | keys)}')"
done
echo
echo "demo OK"
