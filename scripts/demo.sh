#!/usr/bin/env bash
# Warrant's end-to-end demo on embedded defaults. For now: the measurement core.
#   1. replay a real firmware log (a RHEL 8 VM with Secure Boot) into every PCR bank,
#   2. verify it against the PCR values recorded for that boot,
#   3. catch a log of another boot (Arch Linux, different kernel) claiming the same PCRs,
#   5. build the dm-verity tree of a read-only image (as veritysetup would) and catch a change,
#   6. predict the PCR 11 value of a UKI built on Debian's systemd-stub before it ever boots,
#   7. on a software TPM (swtpm): check its EK certificate chain, extend a PCR with Warrant's own
#      log, and quote the PCRs with an attestation key.
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
echo "== 5. A read-only root image: its dm-verity tree, then a changed byte"
head -c $((8 << 20)) /dev/urandom > "$TMP/root.img"
$W verity format "$TMP/root.img" "$TMP/root.verity" --salt - --uuid 00000000-0000-0000-0000-000000000001 --json > "$TMP/verity.json"
ROOT=$(jq -r .root_hash "$TMP/verity.json")
echo "   root hash (warrant):     $ROOT"
echo "   root hash (veritysetup): $(veritysetup format "$TMP/root.img" "$TMP/root.vs" --salt - --uuid 00000000-0000-0000-0000-000000000001 | sed -n 's/^Root hash:[[:space:]]*//p')"
cmp "$TMP/root.verity" "$TMP/root.vs" && echo "   hash trees identical, byte for byte"
$W verity verify "$TMP/root.img" "$TMP/root.verity" "$ROOT" | tail -n 1
printf 'X' | dd of="$TMP/root.img" bs=1 seek=$((5 << 20)) conv=notrunc status=none
if $W verity verify "$TMP/root.img" "$TMP/root.verity" "$ROOT" 2> "$TMP/err"; then
  echo "demo FAILED: a modified image verified" >&2
  exit 1
fi
echo "   after changing one byte: $(cat "$TMP/err")"

echo
echo "== 6. A UKI on Debian's systemd-stub: PCR 11 predicted before it boots"
$W uki inspect measure/testdata/uki/uki.efi | head -n 14
$W uki predict-pcr11 measure/testdata/uki/uki.efi --bank sha256
echo
echo "== 7. A software TPM: EK chain, a measured boot phase, a quote"
mkdir -p "$TMP/tpm"
swtpm_setup --tpm2 --tpmstate "$TMP/tpm" --create-ek-cert --create-platform-cert \
  --pcr-banks sha1,sha256 --overwrite > /dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
swtpm socket --tpm2 --tpmstate dir="$TMP/tpm" --flags not-need-init,startup-clear \
  --server type=tcp,port=$PORT,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 &
SWTPM=$!
trap 'kill $SWTPM 2>/dev/null; rm -rf "$TMP"' EXIT
export WARRANT_TCTI="swtpm:host=127.0.0.1,port=$PORT"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
$W tpm ek --ca /var/lib/swtpm-localca --intermediate /var/lib/swtpm-localca/issuercert.pem | tail -n 3
$W tpm extend 16 --data "warrant-demo: enter-initrd" --event-log "$TMP/measurements.cel.json" > /dev/null
echo "   PCR 16 extended; Warrant's own log: $(jq -c '.[0] | {pcr, content}' "$TMP/measurements.cel.json")"
$W tpm ak > /dev/null
NONCE=$(head -c 16 /dev/urandom | xxd -p)
$W tpm quote --pcrs sha256:0,7,16 --nonce "$NONCE" --out-dir "$TMP/quote" > /dev/null
tpm2_checkquote -u "$TMP/quote/ak.pem" -m "$TMP/quote/quote.attest" -s "$TMP/quote/quote.sig" -q "$NONCE" > /dev/null
echo "   quote of sha256 PCRs 0,7,16 with a fresh nonce: signature and nonce verified by tpm2_checkquote"
echo
echo "demo OK"
