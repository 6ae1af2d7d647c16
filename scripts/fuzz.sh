#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a while, each seeded from the
# project's fixtures. Not part of scripts/test.sh: it takes minutes. See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs default to every [[bin]] of fuzz/Cargo.toml.
# Exits non-zero if any target found a crash; the reproducer is in fuzz/artifacts/<target>/.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
shift || true

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^warrant-fuzz$')
fi

# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=...). Use a nightly toolchain if rustup
# has one; otherwise let the stable compiler accept them (RUSTC_BOOTSTRAP=1).
if rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo_cmd=(cargo +nightly)
else
  echo "fuzz: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  cargo_cmd=(cargo)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# ---- corpora (fuzz/corpus is gitignored; seeds are added, never removed) ----
seed() { # seed TARGET FILE...: copy files into the target's corpus, named by content hash
  local dir="fuzz/corpus/$1"
  shift
  mkdir -p "$dir"
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp "$f" "$dir/$(sha1sum "$f" | cut -d' ' -f1)"
  done
}

shopt -s nullglob
logs=(measure/testdata/eventlogs/*.bin)
ima=(measure/testdata/ima/*)
seed eventlog "${logs[@]}"
seed ima_binary "${ima[@]}"
seed ima_ascii "${ima[@]}"
seed uki measure/testdata/uki/uki.efi
seed ek_chain policy/testdata/ek/swtpm/*.der policy/testdata/ek/synthetic/*.der
seed tpm2_attest measure/testdata/quote/*
# luks2_header: the header (both copies) of a LUKS2 file cryptsetup made, with a token.
if command -v cryptsetup >/dev/null; then
  ltmp=$(mktemp -d)
  truncate -s 20M "$ltmp/disk"
  printf 'fuzz' >"$ltmp/key"
  cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --batch-mode \
    --key-file "$ltmp/key" "$ltmp/disk" >/dev/null
  printf '{"type":"warrant-fuzz","keyslots":["0"],"x":1}' |
    cryptsetup token import --json-file - "$ltmp/disk" >/dev/null || true
  head -c 32768 "$ltmp/disk" >"$ltmp/hdr"
  seed luks2_header "$ltmp/hdr"
  rm -rf "$ltmp"
fi
# hardening_state: the audit's input fixtures (kernel configs, mountinfo, sysctl lines...).
seed hardening_state policy/testdata/hardening/*.cmdline policy/testdata/hardening/*.mountinfo \
  policy/testdata/hardening/*.sysctl policy/testdata/hardening/*.txt policy/testdata/hardening/kspp-*.config
# refvalues, make_credential, verifier_core: seeds built from the golden quotes and the docs.
if command -v python3 >/dev/null; then
  python3 fuzz/seed_attestation.py
fi
# verity_superblock: the first 4 KiB of hash devices veritysetup made, in a few configurations.
if command -v veritysetup >/dev/null; then
  vtmp=$(mktemp -d)
  head -c 65536 /dev/zero >"$vtmp/data"
  for opts in "" "--hash=sha1 --salt=-" "--hash=sha512 --data-block-size=512 --hash-block-size=1024"; do
    # shellcheck disable=SC2086
    veritysetup format $opts "$vtmp/data" "$vtmp/hash" >/dev/null
    head -c 4096 "$vtmp/hash" >"$vtmp/sb-$(echo "$opts" | sha1sum | cut -c1-8)"
  done
  seed verity_superblock "$vtmp"/sb-*
  rm -rf "$vtmp"
fi

# event_data takes `type (u32 LE) || pcr (u32 LE) || data`: cut every event of every fixture log
# into one seed. Framing per TCG PC Client PFP 1.06 section 10.2; a log that does not frame
# cleanly contributes the events before the problem.
mkdir -p fuzz/corpus/event_data
if command -v python3 >/dev/null; then
  python3 - fuzz/corpus/event_data "${logs[@]}" <<'PY'
import hashlib, struct, sys

out, paths = sys.argv[1], sys.argv[2:]
written = 0
for path in paths:
    b = open(path, "rb").read()
    off, sizes, first = 0, None, True
    try:
        while off + 8 <= len(b):
            pcr, typ = struct.unpack_from("<II", b, off)
            p = off + 8
            if sizes is None:  # SHA-1 legacy framing (and the crypto-agile header)
                p += 20
            else:
                (count,) = struct.unpack_from("<I", b, p)
                p += 4
                for _ in range(count):
                    (alg,) = struct.unpack_from("<H", b, p)
                    p += 2 + sizes[alg]
            (size,) = struct.unpack_from("<I", b, p)
            data = b[p + 4 : p + 4 + size]
            if len(data) != size:
                break
            if first and typ == 3 and data.startswith(b"Spec ID Event03\0"):
                (n,) = struct.unpack_from("<I", data, 24)
                sizes = dict(struct.unpack_from("<HH", data, 28 + 4 * i) for i in range(n))
            first = False
            seed = struct.pack("<II", typ, pcr) + data
            name = hashlib.sha1(seed).hexdigest()
            with open(f"{out}/{name}", "wb") as f:
                f.write(seed)
            written += 1
            off = p + 4 + size
    except (struct.error, KeyError):
        pass
print(f"fuzz: {written} event_data seeds from {len(paths)} logs")
PY
else
  echo "fuzz: python3 not found; event_data is seeded with whole logs only"
  for f in "${logs[@]}"; do
    { printf '\x03\x00\x00\x00\x00\x00\x00\x00'; cat "$f"; } >"fuzz/corpus/event_data/log-$(basename "$f")"
  done
fi

# ---- run ----
status=0
summary=()
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "fuzz: fuzz/fuzz_targets/$t.rs missing" >&2
    exit 2
  fi
  mkdir -p "fuzz/corpus/$t"
  echo "==> fuzz $t for ${secs}s (corpus: $(find "fuzz/corpus/$t" -type f | wc -l) files)"
  log="fuzz/artifacts/$t.log"
  mkdir -p fuzz/artifacts
  set +e
  "${cargo_cmd[@]}" fuzz run "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    summary+=("$t: ok, ${execs:-?} execs in ${secs}s")
  else
    status=1
    summary+=("$t: FAILED (exit $rc), reproducer in fuzz/artifacts/$t/, output in $log")
  fi
done

echo
echo "==> fuzz summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
