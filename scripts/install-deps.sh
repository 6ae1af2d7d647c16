#!/usr/bin/env bash
# Installs every system package Warrant's build, demo and tests need on Debian 12 (bookworm).
# Idempotent: packages already present are skipped, and apt is only asked when one is missing.
set -euo pipefail

PACKAGES=(
  # build
  pkg-config build-essential libtss2-dev protobuf-compiler libsqlite3-dev
  # the software TPM and the reference TPM tools (tpm2_eventlog is the benchmark's reference)
  swtpm swtpm-tools tpm2-tools
  # systemd-cryptenroll --tpm2-device=swtpm:... dlopens libtss2-tcti-swtpm.so.0 (also pulled in by libtss2-dev)
  libtss2-tcti-swtpm0
  # LUKS2 and dm-verity on plain files (veritysetup is in cryptsetup-bin)
  cryptsetup-bin
  # UKIs: systemd's EFI stub, objcopy to assemble them, systemd-measure (in systemd) to compare
  systemd-boot-efi binutils systemd openssl
  # misc used by scripts
  jq xxd
  # the VM boot chain (scripts/vm-e2e, docs/boot-chain.md): QEMU with OVMF firmware, a static
  # busybox for the initramfs, the read-only root's file systems, cpio for the initramfs
  qemu-system-x86 ovmf busybox-static squashfs-tools erofs-utils cpio kmod dosfstools mtools sbsigntool
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
