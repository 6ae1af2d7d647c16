#!/bin/sh
# Builds a small test Unified Kernel Image from the installed systemd-stub with objcopy, plus the
# reference outputs of systemd-measure for it. Used to (re)generate measure/testdata/uki/ and by
# the CLI tests.
#
#   scripts/make-test-uki.sh OUTDIR [KEY.pem]
#
# Writes into OUTDIR: the section inputs (linux, initrd, osrel, cmdline, splash[, pcrpkey]),
# uki.efi, calculate.json (`systemd-measure calculate --json=short`, all four banks, default
# phases), calculate-phases.json (a custom phase list), and, when KEY.pem is given, pcrpkey
# (its public key, also added as .pcrpkey) and sign.json (`systemd-measure sign`, which in
# systemd 252 computes the policy digest in a TPM trial session: a throw-away swtpm is started
# for it). The section contents are fake but deterministic: the prediction does not care whether
# the kernel is real.
#
# Environment: STUB (default /usr/lib/systemd/boot/efi/linuxx64.efi.stub), SYSTEMD_MEASURE
# (default /usr/lib/systemd/systemd-measure).
set -eu

out=${1:?usage: make-test-uki.sh OUTDIR [KEY.pem]}
key=${2:-}
stub=${STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
measure=${SYSTEMD_MEASURE:-/usr/lib/systemd/systemd-measure}
mkdir -p "$out"

yes 'warrant fake kernel image' | head -c 6000 >"$out/linux"
yes 'warrant fake initrd' | head -c 3000 >"$out/initrd"
printf 'ID=warrant-test\nVERSION_ID=1\n' >"$out/osrel"
printf 'root=/dev/vda2 ro quiet' >"$out/cmdline"
yes 'BM fake splash' | head -c 700 >"$out/splash"

# VMAs after the stub's own sections (objdump -h: the Debian 252 stub ends below 0x1a000),
# as in the systemd 252 objcopy recipe.
set -- \
    --add-section .osrel="$out/osrel" --change-section-vma .osrel=0x20000 \
    --add-section .cmdline="$out/cmdline" --change-section-vma .cmdline=0x30000 \
    --add-section .splash="$out/splash" --change-section-vma .splash=0x40000 \
    --add-section .linux="$out/linux" --change-section-vma .linux=0x2000000 \
    --add-section .initrd="$out/initrd" --change-section-vma .initrd=0x3000000
measure_args="--linux=$out/linux --initrd=$out/initrd --osrel=$out/osrel --cmdline=$out/cmdline --splash=$out/splash"
if [ -n "$key" ]; then
    openssl pkey -in "$key" -pubout -out "$out/pcrpkey"
    set -- "$@" --add-section .pcrpkey="$out/pcrpkey" --change-section-vma .pcrpkey=0x50000
    measure_args="$measure_args --pcrpkey=$out/pcrpkey"
fi
objcopy "$@" "$stub" "$out/uki.efi"

banks="--bank=sha1 --bank=sha256 --bank=sha384 --bank=sha512"
# shellcheck disable=SC2086 # word splitting of the argument lists is intended
"$measure" calculate $measure_args $banks --json=short >"$out/calculate.json"
# shellcheck disable=SC2086
"$measure" calculate $measure_args --bank=sha256 --phase=sysinit --phase=enter-initrd:: \
    --phase=: --phase=enter-initrd:leave-initrd --json=short >"$out/calculate-phases.json"

if [ -n "$key" ]; then
    tpm=$(mktemp -d)
    swtpm socket --tpm2 --tpmstate dir="$tpm" --flags startup-clear \
        --server type=unixio,path="$tpm/sock" --ctrl type=unixio,path="$tpm/sock.ctrl" \
        >/dev/null 2>&1 &
    swtpm_pid=$!
    trap 'kill $swtpm_pid 2>/dev/null; rm -rf "$tpm"' EXIT
    i=0
    while [ ! -S "$tpm/sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    # shellcheck disable=SC2086
    "$measure" sign $measure_args $banks --private-key="$key" \
        --tpm2-device="swtpm:path=$tpm/sock" --json=short >"$out/sign.json"
fi
