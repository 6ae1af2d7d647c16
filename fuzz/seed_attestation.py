#!/usr/bin/env python3
"""Seeds the corpora of the fuzz targets that came with attestation, from the project's fixtures:

- refvalues:       the JSON examples of docs/reference-values.md and a few small valid documents;
- make_credential: TCG EK templates L-1 (RSA 2048) and L-2 (ECC P-256) holding the golden AKs'
                   public keys, each followed by each golden AK name, framed `len(name) || ek || name`;
- verifier_core:   each golden quote of measure/testdata/quote/ with an empty firmware log, and with
                   the first fixture event log and an empty Warrant log, framed as the target
                   reads them (see fuzz_targets/verifier_core.rs).

Run from the repository root: `python3 fuzz/seed_attestation.py`. Seeds are named by content hash
and only ever added.
"""
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUOTE = os.path.join(ROOT, "measure/testdata/quote")
SETS = ["ecc-p256", "rsa-rsassa", "rsa-rsapss"]


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def write(target, seed):
    d = os.path.join(ROOT, "fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(seed).hexdigest()), "wb") as f:
        f.write(seed)


def refvalues():
    n = 0
    doc = read(ROOT, "docs/reference-values.md").decode()
    for block in re.findall(r"```json\n(.*?)```", doc, re.S):
        write("refvalues", block.encode())
        n += 1
    zero = "00" * 32
    for d in [
        {"schema": "warrant-reference-values/1"},
        {"schema": "warrant-reference-values/1", "bank": "sha1", "firmware_log_pcrs": [0, 7],
         "firmware_digests": ["11" * 20], "secure_boot": True, "dbx_contains": ["22" * 32]},
        {"schema": "warrant-reference-values/1", "bank": "sha256",
         "pcr_values": {"11": [zero, "ff" * 32]}, "root_hashes": ["ab" * 32],
         "kernel_cmdline": ["lockdown=integrity"], "ima": {"file_digests": ["sha256:" + zero]}},
    ]:
        write("refvalues", json.dumps(d, indent=1).encode())
        n += 1
    return n


# TPM 2.0 Part 2 constants and the TCG EK Credential Profile 2.5 templates L-1 / L-2.
L1_ATTRIBUTES = 0x000300B2
POLICY_A_SHA256 = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
AES_128_CFB = struct.pack(">HHH", 0x0006, 128, 0x0043)


def tpm2b(b):
    return struct.pack(">H", len(b)) + b


def ek_templates():
    """EK public areas (TPM2B_PUBLIC) holding the golden AKs' keys: any valid key will do."""
    rsa_ak = read(QUOTE, "rsa-rsassa.akpub")
    modulus = rsa_ak[-256:]
    assert rsa_ak[-258:-256] == b"\x01\x00", "rsa-rsassa.akpub does not end in a 2048-bit modulus"
    rsa = (struct.pack(">HHI", 0x0001, 0x000B, L1_ATTRIBUTES) + tpm2b(POLICY_A_SHA256)
           + AES_128_CFB + struct.pack(">HHI", 0x0010, 2048, 0) + tpm2b(modulus))
    ecc_ak = read(QUOTE, "ecc-p256.akpub")
    x, y = ecc_ak[-66:-34], ecc_ak[-32:]
    assert ecc_ak[-68:-66] == b"\x00\x20" and ecc_ak[-34:-32] == b"\x00\x20"
    ecc = (struct.pack(">HHI", 0x0023, 0x000B, L1_ATTRIBUTES) + tpm2b(POLICY_A_SHA256)
           + AES_128_CFB + struct.pack(">HHH", 0x0010, 0x0003, 0x0010) + tpm2b(x) + tpm2b(y))
    return [tpm2b(rsa), tpm2b(ecc)]


def make_credential():
    n = 0
    for ek in ek_templates():
        for s in SETS:
            name = read(QUOTE, s + ".akname")
            write("make_credential", bytes([len(name)]) + ek + name)
            n += 1
    return n


def verifier_core():
    n = 0
    logs = sorted(f for f in os.listdir(os.path.join(ROOT, "measure/testdata/eventlogs"))
                  if f.endswith(".bin"))
    log = read(ROOT, "measure/testdata/eventlogs", logs[0]) if logs else b""
    for k, s in enumerate(SETS):
        attest, sig = read(QUOTE, s + ".attest"), read(QUOTE, s + ".sig")
        for fw in (b"", log):
            head = struct.pack("<BHHI", k, len(attest), len(sig), len(fw))
            write("verifier_core", head + attest + sig + fw)
            n += 1
    return n


if __name__ == "__main__":
    counts = {"refvalues": refvalues(), "make_credential": make_credential(),
              "verifier_core": verifier_core()}
    print("fuzz: seeds " + ", ".join(f"{t} {c}" for t, c in counts.items()), file=sys.stderr)
