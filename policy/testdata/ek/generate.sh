#!/bin/sh
# Regenerates policy/testdata/ek/ (test-only fixtures; see README.md).
#   1. swtpm/: a real swtpm EK certificate pair and this machine's swtpm local CA (needs swtpm,
#      swtpm_setup, tpm2-tools, and a swtpm local CA at /var/lib/swtpm-localca).
#   2. synthetic/: test-only CAs and EK-like certificates made with openssl, for cases swtpm
#      cannot produce (ECDSA issuers, RSA-PSS, short-lived intermediate, wrong EKU, ...).
# Private keys are thrown away; nothing here is a real trust anchor.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'kill "$swtpm_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
swtpm_pid=
cd "$tmp"

if [ "${SKIP_SWTPM:-}" = "" ]; then
  mkdir -p "$here/swtpm" state
  swtpm_setup --tpm2 --tpmstate state --pcr-banks sha256 --create-ek-cert --overwrite >/dev/null
  port=23731
  swtpm socket --tpm2 --tpmstate dir=state --server type=tcp,port=$port,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
  swtpm_pid=$!
  sleep 1
  tpm2_nvread -T "swtpm:host=127.0.0.1,port=$port" 0x1c00002 -o "$here/swtpm/ek-rsa.der" 2>/dev/null
  tpm2_nvread -T "swtpm:host=127.0.0.1,port=$port" 0x1c00016 -o "$here/swtpm/ek-ecc.der" 2>/dev/null
  openssl x509 -in /var/lib/swtpm-localca/swtpm-localca-rootca-cert.pem -outform der -out "$here/swtpm/localca-root.der"
  openssl x509 -in /var/lib/swtpm-localca/issuercert.pem -outform der -out "$here/swtpm/localca-intermediate.der"
fi

mkdir -p "$here/synthetic"
out="$here/synthetic"
cat > ca.ext <<'X'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
X
cat > ca0.ext <<'X'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
X
cat > notca.ext <<'X'
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
X
cat > ek.ext <<'X'
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical, dirName:tpm_section
authorityKeyIdentifier = keyid
[tpm_section]
a.2.23.133.2.1 = id:54455354
a.2.23.133.2.2 = test-tpm
a.2.23.133.2.3 = id:00010002
X
cat > ek-wrongeku.ext <<'X'
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
X
cat > ek-critical.ext <<'X'
basicConstraints = critical, CA:FALSE
extendedKeyUsage = 2.23.133.8.1
authorityKeyIdentifier = keyid
1.3.6.1.4.1.99999.1 = critical, DER:0500
X

# root: self-signed; ca KEY SUBJ EXT DAYS
selfsign() { openssl req -x509 -new -key "$1" -subj "$2" -days 36500 \
  -config /dev/null -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" \
  -sha384 -out "$3" -set_serial 1; }
# sign CSR_KEY SUBJ ISSUER_CERT ISSUER_KEY EXT OUT [extra x509 args]
sign() { key=$1 subj=$2 icert=$3 ikey=$4 ext=$5 o=$6; shift 6
  openssl req -new -key "$key" -subj "$subj" -out req.csr
  openssl x509 -req -in req.csr -CA "$icert" -CAkey "$ikey" -extfile "$ext" -set_serial "$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')" "$@" -out "$o"; }

openssl ecparam -name secp384r1 -genkey -noout -out root.key
openssl ecparam -name prime256v1 -genkey -noout -out int.key
openssl genrsa -out ek.key 2048 2>/dev/null
openssl genrsa -out other.key 2048 2>/dev/null
openssl genrsa -out pss.key 2048 2>/dev/null

# ECDSA P-384 root -> ECDSA P-256 intermediate (pathlen 0) -> RSA EK (empty subject, critical SAN)
selfsign root.key "/O=Warrant test/CN=Test EK Root P-384" root.pem
sign int.key "/O=Warrant test/CN=Test EK Intermediate P-256" root.pem root.key ca0.ext int.pem -days 36500 -sha384
sign ek.key "/" int.pem int.key ek.ext ek.pem -days 36500 -sha256
sign ek.key "/" int.pem int.key ek-wrongeku.ext ek-wrongeku.pem -days 36500 -sha256
sign ek.key "/" int.pem int.key ek-critical.ext ek-critical.pem -days 36500 -sha256
# An intermediate with the same name and key that expires in 2 days (for `now` past notAfter).
sign int.key "/O=Warrant test/CN=Test EK Intermediate P-256" root.pem root.key ca0.ext int-short.pem -days 2 -sha384
# An intermediate with the same name that is not a CA.
sign int.key "/O=Warrant test/CN=Test EK Intermediate P-256" root.pem root.key notca.ext int-notca.pem -days 36500 -sha384
# A second-level intermediate below the pathlen:0 one (the path then breaks pathLenConstraint).
sign other.key "/O=Warrant test/CN=Test EK Sub-intermediate" int.pem int.key ca.ext sub.pem -days 36500 -sha256
sign ek.key "/" sub.pem other.key ek.ext ek-under-sub.pem -days 36500 -sha256
# An unrelated RSA root with the same name as the swtpm local CA root, and one with its own name.
openssl req -x509 -new -key other.key -subj "/CN=swtpm-localca-rootca" -days 36500 -config /dev/null -addext "subjectKeyIdentifier=none" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out fake-localca-root.pem
openssl req -x509 -new -key other.key -subj "/CN=Unrelated Test CA" -days 36500 -config /dev/null \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out unrelated-root.pem
# RSA-PSS: an RSA root signing an EK with RSASSA-PSS SHA-256 (salt 32).
openssl req -x509 -new -key pss.key -subj "/O=Warrant test/CN=Test EK Root RSA" -days 36500 -config /dev/null \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -addext "subjectKeyIdentifier=hash" -out pss-root.pem
sign ek.key "/" pss-root.pem pss.key ek.ext ek-pss.pem -days 36500 -sha256 \
  -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256

for f in root int ek ek-wrongeku ek-critical int-short int-notca sub ek-under-sub fake-localca-root unrelated-root pss-root ek-pss; do
  openssl x509 -in $f.pem -outform der -out "$out/$f.der"
done
cat int.pem root.pem > "$out/chain.pem"
echo "regenerated $here"
