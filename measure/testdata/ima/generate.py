#!/usr/bin/env python3
"""Generates the synthetic IMA measurement lists synthetic-* and their expected values
(expected-synthetic.json).

An implementation independent of Warrant's Rust code (Python standard library only: hashlib,
struct, json), written from the kernel sources it cites:

- binary list:   ima_measurements_show (security/integrity/ima/ima_fs.c)
- ASCII list:    ima_ascii_measurements_show (ima_fs.c), ima_show_template_data_ascii
                 (ima_template_lib.c)
- field bytes:   ima_eventdigest_init_common, ima_eventname_init_common,
                 ima_write_template_field_data (ima_template_lib.c)
- template hash: ima_calc_field_array_hash_tfm (ima_crypto.c)
- PCR extend:    ima_add_template_entry / ima_pcr_extend (ima_queue.c); violations extend
                 0xff.. (ima_init_digests); before Linux 5.8 every bank got the SHA-1 template
                 hash zero-padded
- boot_aggregate: ima_calc_boot_aggregate_tfm (ima_crypto.c)

Rerun from this directory with `python3 generate.py`; the output is deterministic.
"""

import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

BANKS = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sm3_256": 32}
# hashlib name of each bank; SM3 is computed only when this Python's OpenSSL has it.
HASHLIB = {"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sm3_256": "sm3"}


def available(bank):
    try:
        hashlib.new(HASHLIB[bank])
        return True
    except ValueError:
        return False


REPLAY_BANKS = [b for b in ["sha1", "sha256", "sha384", "sha512", "sm3_256"] if available(b)]


def H(bank, data):
    return hashlib.new(HASHLIB[bank], data).digest()


# ---- field encodings (ima_template_lib.c) ---------------------------------------------------

def d_ng(algo, digest, digest_type=None):
    prefix = (digest_type + ":" if digest_type else "") + algo + ":"
    return prefix.encode() + b"\0" + digest


def n_ng(name):
    return name.encode() + b"\0"


class Entry:
    """One measurement: a template name and the kernel's field bytes (or d/n for 'ima')."""

    def __init__(self, pcr, template, fields, violation=False, show=None):
        self.pcr = pcr
        self.template = template
        self.fields = fields  # list of bytes; for 'ima': [d(20), name bytes without NUL]
        self.violation = violation
        self.show = show  # how each field prints in ASCII: 'digest-ng', 'string', 'hex'

    def hash_input(self, order):
        if self.template == "ima":
            d, n = self.fields
            return d + n.ljust(256, b"\0")
        return b"".join(struct.pack(order + "I", len(f)) + f for f in self.fields)

    def template_hash(self, bank, order):
        if self.violation:
            return bytes(BANKS[bank])
        return H(bank, self.hash_input(order))

    def extend_digest(self, bank, order, mode):
        size = BANKS[bank]
        if mode == "per-bank-template-hash":
            if self.violation:
                return b"\xff" * size
            return H(bank, self.hash_input(order))
        sha1 = b"\xff" * 20 if self.violation else H("sha1", self.hash_input(order))
        return sha1.ljust(size, b"\0")

    def binary(self, order, hash_bank):
        out = struct.pack(order + "I", self.pcr) + self.template_hash(hash_bank, order)
        name = self.template.encode()
        out += struct.pack(order + "I", len(name)) + name
        if self.template == "ima":
            d, n = self.fields
            return out + d + struct.pack(order + "I", len(n)) + n
        data = self.hash_input(order)
        return out + struct.pack(order + "I", len(data)) + data

    def ascii(self, order, hash_bank):
        line = "%2d %s %s" % (self.pcr, self.template_hash(hash_bank, order).hex(), self.template)
        for field, show in zip(self.fields, self.show):
            line += " "
            if not field:
                continue
            if show == "digest-ng":
                colon = field.index(b":\0")
                line += field[: colon + 1].decode() + field[colon + 2 :].hex()
            elif show == "string":
                line += field.rstrip(b"\0").decode()
            elif show == "uint":
                line += str(struct.unpack(order + "I", field)[0])
            else:
                line += field.hex()
        return line + "\n"


NG = ["digest-ng", "string"]


def ng(pcr, algo, digest, name, template="ima-ng", extra=(), extra_show=(), violation=False, dtype=None):
    return Entry(pcr, template, [d_ng(algo, digest, dtype), n_ng(name)] + list(extra), violation, NG + list(extra_show))


def file_digest(algo, content):
    return hashlib.new(algo, content).digest()


# ---- firmware PCRs and boot aggregates ------------------------------------------------------

FIRMWARE = {
    bank: {i: H(bank, b"warrant synthetic firmware PCR %d" % i) for i in range(10)}
    for bank in ["sha1", "sha256"]
}


def boot_aggregate(bank, last):
    return H(bank, b"".join(FIRMWARE[bank][i] for i in range(last + 1)))


# ---- the lists ------------------------------------------------------------------------------

def main_entries():
    sig = bytes.fromhex("030204") + b"\x12\x34\x56\x78" + b"\x00\x04" + b"SIGN"
    cmdline = b"BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro ima_policy=tcb"
    cert = bytes(range(64))
    return [
        ng(10, "sha256", boot_aggregate("sha256", 9), "boot_aggregate"),
        ng(10, "sha256", file_digest("sha256", b"#!/bin/sh\n"), "/usr/bin/sh"),
        ng(10, "sha256", file_digest("sha256", b"signed"), "/usr/bin/signed", "ima-sig", [sig], ["hex"]),
        ng(10, "sha256", file_digest("sha256", b"unsigned"), "/usr/bin/unsigned", "ima-sig", [b""], ["hex"]),
        ng(10, "sha256", file_digest("sha256", cmdline), "kexec-cmdline", "ima-buf", [cmdline], ["hex"]),
        ng(10, "sha256", file_digest("sha256", cert), ".ima", "ima-buf", [cert], ["hex"]),
        ng(10, "sha512", file_digest("sha512", b"module"), "/lib/modules/6.1/kernel/a.ko", "ima-modsig",
           [sig, d_ng("sha256", file_digest("sha256", b"module-without-sig")), b"\x30\x82\x01\x00PKCS7"],
           ["hex", "digest-ng", "hex"]),
        ng(10, "sha256", file_digest("sha256", b"plain module"), "/lib/modules/6.1/kernel/b.ko", "ima-modsig",
           [b"", b"", b""], ["hex", "digest-ng", "hex"]),
        ng(10, "sha256", file_digest("sha256", b"verity"), "/usr/bin/verity", "ima-ngv2", dtype="verity"),
        ng(10, "sha256", file_digest("sha256", b"sigv2"), "/usr/bin/sigv2", "ima-sigv2", [sig], ["hex"], dtype="ima"),
        # ToMToU violation, recorded with the 20 zero bytes of kernels before 5.19.
        ng(10, "sha256", bytes(20), "/var/log/messages", violation=True),
        # Open-writer violation, recorded with a full-size zero digest (5.19+).
        ng(10, "sha256", bytes(32), "/etc/shadow", violation=True),
        ng(10, "sha1", file_digest("sha1", b"legacy"), "/usr/bin/legacy"),
        ng(10, "sm3", bytes(range(32)), "/usr/bin/sm3-measured"),
        # Policy rule with pcr=11.
        ng(11, "sha256", file_digest("sha256", b"container"), "/usr/bin/runc"),
        ng(10, "sha256", file_digest("sha256", b"last"), "/usr/bin/last"),
    ]


def ima_template_entries():
    def ima(name, content, violation=False):
        d = bytes(20) if violation else file_digest("sha1", content)
        return Entry(10, "ima", [d, name.encode()], violation, ["hex", "string"])

    return [
        Entry(10, "ima", [boot_aggregate("sha1", 7), b"boot_aggregate"], False, ["hex", "string"]),
        ima("/init", b"init"),
        ima("ld-2.31.so", b"ld"),
        ima("/tmp/open-writer", b"", violation=True),
        ima("x" * 255, b"longest name"),
    ]


def custom_entries():
    # A template without a name is named by its format (ima_measurements_show); 'iuid' is a u32.
    uid = struct.pack("<I", 1000)
    fmt = "d-ng|n-ng|iuid"
    return [
        Entry(10, fmt, [d_ng("sha256", file_digest("sha256", b"a")), n_ng("/home/user/a"), uid], False,
              ["digest-ng", "string", "uint"]),
    ]


def replay(entries, order, mode):
    pcrs = {}
    for bank in REPLAY_BANKS:
        for e in entries:
            pcr = pcrs.setdefault(bank, {}).setdefault(e.pcr, bytes(BANKS[bank]))
            pcrs[bank][e.pcr] = H(bank, pcr + e.extend_digest(bank, order, mode))
    return {bank: {str(p): v.hex() for p, v in sorted(values.items())} for bank, values in pcrs.items()}


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    expected = {
        "generator": "generate.py",
        "firmware_pcrs": {b: {str(i): v.hex() for i, v in p.items()} for b, p in FIRMWARE.items()},
        "lists": {},
    }
    lists = [
        ("synthetic-main-le.bin", main_entries(), "binary", "<", "sha1", "pcr0-to9"),
        ("synthetic-main-be.bin", main_entries(), "binary", ">", "sha1", "pcr0-to9"),
        ("synthetic-main-sha256.bin", main_entries(), "binary", "<", "sha256", "pcr0-to9"),
        ("synthetic-main.ascii", main_entries(), "ascii", "<", "sha1", "pcr0-to9"),
        ("synthetic-main-sha256.ascii", main_entries(), "ascii", "<", "sha256", "pcr0-to9"),
        ("synthetic-main-be.ascii", main_entries(), "ascii", ">", "sha1", "pcr0-to9"),
        ("synthetic-ima-template.bin", ima_template_entries(), "binary", "<", "sha1", "pcr0-to7"),
        ("synthetic-ima-template.ascii", ima_template_entries(), "ascii", "<", "sha1", "pcr0-to7"),
        ("synthetic-custom-template.bin", custom_entries(), "binary", "<", "sha1", None),
        ("synthetic-custom-template.ascii", custom_entries(), "ascii", "<", "sha1", None),
    ]
    for name, entries, fmt, order, bank, aggregate in lists:
        if fmt == "binary":
            write(name, b"".join(e.binary(order, bank) for e in entries))
        else:
            write(name, "".join(e.ascii(order, bank) for e in entries).encode())
        recomputable = fmt == "binary" or not any("|" in e.template for e in entries)
        pcrs = {"per-bank-template-hash": replay(entries, order, "per-bank-template-hash"),
                "padded-sha1": replay(entries, order, "padded-sha1")}
        if not recomputable:
            # ASCII entries of unknown templates replay only in their own (SHA-1) bank.
            pcrs = {m: {"sha1": v["sha1"]} for m, v in pcrs.items()}
        expected["lists"][name] = {
            "format": fmt,
            "byte_order": "little" if order == "<" else "big",
            "template_hash_algorithm": bank,
            "entries": len(entries),
            "violations": [i for i, e in enumerate(entries) if e.violation],
            "unknown_templates": [i for i, e in enumerate(entries) if "|" in e.template],
            "not_recomputable": [] if recomputable else [i for i, e in enumerate(entries) if "|" in e.template],
            "pcrs": pcrs,
            "boot_aggregate": aggregate,
        }
    with open(os.path.join(HERE, "expected-synthetic.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote %d lists to %s (banks: %s)" % (len(lists), HERE, ", ".join(REPLAY_BANKS)))


if __name__ == "__main__":
    main()
