#!/usr/bin/env bash
# Warrant's end-to-end demo on embedded defaults. For now: the measurement core.
#   1. replay a real firmware log (a RHEL 8 VM with Secure Boot) into every PCR bank,
#   2. verify it against the PCR values recorded for that boot,
#   3. catch a log of another boot (Arch Linux, different kernel) claiming the same PCRs,
#   5. build the dm-verity tree of a read-only image (as veritysetup would) and catch a change,
#   6. predict the PCR 11 value of a UKI built on Debian's systemd-stub before it ever boots,
#   7. on a software TPM (swtpm): check its EK certificate chain, extend a PCR with Warrant's own
#      log, and quote the PCRs with an attestation key.
#   8. attestation before join: a verifier (SQLite, its own CA), a golden node whose evidence
#      becomes the reference values, a good node admitted with a client certificate and a
#      bootstrap token, and a tampered node (another UKI, another root image) refused, with
#      the verifier's reasons.
#   9. a TPM-sealed disk: a LUKS2 volume enrolled in systemd's token format, opened by the TPM,
#      kept shut after the boot changes, opened with the recovery key and resealed.
#  10. lockdown: this machine audited against the kubernetes-node profile (it is not a hardened
#      node: the summary and the root's finding are shown), and the agent's own confinement
#      checked in a probe process (seccomp allowlist, Landlock).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --quiet -p node -p verifier
V=target/release/warrant-verifier
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
kill $SWTPM 2>/dev/null; wait $SWTPM 2>/dev/null || true

echo
echo "== 8. Attestation before join: only a node the TPM proves unmodified gets a credential"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$TMP"' EXIT
# One software TPM per node, "booted" through a real machine's firmware log (RHEL 8 on a VM
# with Secure Boot), then systemd-stub's UKI measurement into PCR 11 and the agent's own
# measurements (its phase, the read-only root's dm-verity root hash) into PCR 15.
ROOT_HASH=4d5a3f0b1c2e9d8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f
boot_node() { # name uki-text root-hash
  local dir="$TMP/$1" port
  mkdir -p "$dir/tpm"
  swtpm_setup --tpm2 --tpmstate "$dir/tpm" --create-ek-cert --create-platform-cert \
    --pcr-banks sha1,sha256 --overwrite > /dev/null
  port=$(free_port)
  swtpm socket --tpm2 --tpmstate dir="$dir/tpm" --flags not-need-init,startup-clear \
    --server type=tcp,port=$port,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 &
  PIDS+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "swtpm:host=127.0.0.1,port=$port" > "$dir/tcti"
  local T="swtpm:host=127.0.0.1,port=$port"
  $W tpm simulate-boot --tcti "$T" --event-log $DATA/rhel8-uefi.bin > /dev/null
  tpm2_pcrextend -T "$T" "11:sha256=$(printf %s "$2" | sha256sum | cut -d' ' -f1),sha1=$(printf %s "$2" | sha1sum | cut -d' ' -f1)"
  $W agent measure --tcti "$T" --root-hash "$3" --event-log "$dir/cel.json" > /dev/null
}
attest() { # name root-hash
  local dir="$TMP/$1"
  $W agent attest --once --verifier "https://127.0.0.1:$VPORT" --ca "$TMP/verifier/ca.pem" \
    --tcti "$(cat "$dir/tcti")" --name "$1" --state "$dir/agent" --event-log "$dir/cel.json" \
    --firmware-log $DATA/rhel8-uefi.bin --root-hash "$2" \
    --ek-intermediate /var/lib/swtpm-localca/issuercert.pem
}
mkdir -p "$TMP/ekca"
cp /var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem "$TMP/ekca/"
start_verifier() { # [policy]
  $V serve --listen 127.0.0.1:0 --state "$TMP/verifier" --ca-dir "$TMP/ekca" ${1:+--policy "$1"} \
    > "$TMP/verifier.out" 2> "$TMP/verifier.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q listening "$TMP/verifier.out" 2>/dev/null && break; sleep 0.1; done
  VPORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/verifier.out")
}
start_verifier
boot_node golden "uki v1" $ROOT_HASH
attest golden $ROOT_HASH > /dev/null 2>&1 || true
$V policy capture --state "$TMP/verifier" --node golden > "$TMP/policy.json"
echo "   reference values captured from the golden node's proven evidence ($(jq -r '.schema' "$TMP/policy.json"))"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
start_verifier "$TMP/policy.json"
echo "   verifier on 127.0.0.1:$VPORT (SQLite state, its own CA, policy loaded)"
boot_node good "uki v1" $ROOT_HASH
echo "-- a good node:"
attest good $ROOT_HASH | sed 's/^/   /'
echo "-- a tampered node (another UKI, another root image):"
boot_node tampered "uki v1 with init=/bin/sh" $(printf '%064d' 0)
if attest tampered $(printf '%064d' 0) 2>/dev/null | sed 's/^/   /'; then
  echo "   the tampered node was admitted: this is a bug" >&2; exit 1
fi
echo "-- the audit trail ($($V audit --state "$TMP/verifier" | wc -l) decisions), last one:"
$V audit --state "$TMP/verifier" | tail -n 1 | jq -c '{kind, verdict, reasons: [.reasons[] | select(.passed == false) | .reason]}' | sed 's/^/   /'

echo
echo "== 9. A TPM-sealed disk: opens on this boot only, never strands its data"
boot_node disk "uki v1" $ROOT_HASH
T=$(cat "$TMP/disk/tcti")
truncate -s 20M "$TMP/disk.img"
head -c 32 /dev/urandom | base64 > "$TMP/initial.key"
chmod 600 "$TMP/initial.key"
cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --batch-mode \
  --key-file "$TMP/initial.key" "$TMP/disk.img"
$W disk recovery-key "$TMP/disk.img" --unlock-key-file "$TMP/initial.key" --tcti "$T" | tail -n 1 | tr -d '\n' > "$TMP/recovery.key"
echo "   recovery key added (printed once; kept here in $TMP/recovery.key for the demo)"
$W disk enroll "$TMP/disk.img" --pcrs 7,11 --unlock-key-file "$TMP/initial.key" --tcti "$T" | sed 's/^/   /'
$W disk unlock "$TMP/disk.img" --test --tcti "$T" | sed 's/^/   /'
echo "-- the boot changes (another UKI measured into PCR 11):"
tpm2_pcrextend -T "$T" "11:sha256=$(printf 'uki v2' | sha256sum | cut -d' ' -f1)"
if $W disk unlock "$TMP/disk.img" --test --tcti "$T" 2> "$TMP/err"; then
  echo "   the disk opened after the boot changed: this is a bug" >&2; exit 1
fi
echo "   refused: $(cat "$TMP/err")"
$W disk reseal "$TMP/disk.img" --unlock-key-file "$TMP/recovery.key" --tcti "$T" | sed 's/^/   /'
$W disk unlock "$TMP/disk.img" --test --tcti "$T" | sed 's/^/   /'

echo
echo "== 10. Lockdown: this machine audited, and the agent's own confinement checked"
$W audit --profile kubernetes-node --json > "$TMP/audit.json" 2> /dev/null || true
jq -r '"   profile \(.profile): \(.summary.pass) passed, \(.summary.fail) failed, \(.summary.unknown) unknown (this is a build machine, not a hardened node)"' "$TMP/audit.json"
jq -r '.results[] | select(.id == "verity./") | "   \(.id): \(.result): \(.actual)"' "$TMP/audit.json"
$W agent confine-check --state "$TMP/confine-probe" --outside "$TMP" | sed 's/^/   /'
echo
echo "demo OK"
