#!/bin/sh
# Regenerates the golden quote sets in this folder from a fresh swtpm, with tpm2-tools 5.x only
# (independent of Warrant's own TPM code). Needs swtpm, swtpm_setup, tpm2-tools and python3.
# Usage: sh measure/testdata/quote/generate.sh   (PORT=... to pick another TCP port pair)
set -eu
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mkdir "$work/state"
swtpm_setup --tpm2 --tpmstate "$work/state" --pcr-banks sha1,sha256 --overwrite >/dev/null
port=${PORT:-23321}
swtpm socket --tpm2 --tpmstate dir="$work/state" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1
T="swtpm:host=127.0.0.1,port=$port"
cd "$work"
nonce=0123456789abcdef0123456789abcdef
tpm2_pcrextend -T "$T" 7:sha256=$(printf warrant | sha256sum | cut -d' ' -f1)
tpm2_pcrextend -T "$T" 0:sha1=$(printf warrant | sha1sum | cut -d' ' -f1)
tpm2_pcrread -T "$T" sha256:0,1,7+sha1:0 > pcrread.yaml
# tpm2_pcrread's output ("  sha256:" / "    7 : 0xHEX") -> Warrant's PCR JSON (measure::pcr).
python3 - pcrread.yaml "$out/pcrs.json" <<'PY'
import json, sys
banks, bank = {}, None
for line in open(sys.argv[1]):
    if line.strip().endswith(":") and not line.strip().startswith(("0x",)):
        bank = line.strip()[:-1]; banks[bank] = {}
    elif ":" in line:
        i, v = (p.strip() for p in line.split(":", 1))
        banks[bank][str(int(i))] = v[2:].lower() if v.startswith("0x") else v.lower()
json.dump(banks, open(sys.argv[2], "w"), indent=1, sort_keys=True)
PY
printf %s $nonce > "$out/nonce.hex"
tpm2_createek -T "$T" -c ek.ctx -G rsa -u ek.pub
tpm2_flushcontext -T "$T" -t
for set in ecc-p256:ecc:ecdsa rsa-rsassa:rsa:rsassa rsa-rsapss:rsa:rsapss; do
  name=${set%%:*}; rest=${set#*:}; G=${rest%%:*}; s=${rest#*:}
  tpm2_createak -T "$T" -C ek.ctx -c ak.ctx -G "$G" -g sha256 -s "$s" -u ak.pub -n ak.name -f tss
  tpm2_flushcontext -T "$T" -t
  tpm2_flushcontext -T "$T" -s
  tpm2_quote -T "$T" -c ak.ctx -l sha256:0,1,7+sha1:0 -q $nonce -m attest.bin -s sig.bin -g sha256 --scheme "$s"
  tpm2_flushcontext -T "$T" -t
  cp attest.bin "$out/$name.attest"
  cp sig.bin "$out/$name.sig"
  cp ak.pub "$out/$name.akpub"
  cp ak.name "$out/$name.akname"
  chmod 644 "$out/$name".*
done
