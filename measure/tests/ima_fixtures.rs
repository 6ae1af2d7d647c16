//! IMA measurement lists under `testdata/ima/`: real lists from public projects (expected values
//! in `expected-real.json`, copied from their sources) and the `synthetic-*` lists of
//! `generate.py` (expected values in `expected-synthetic.json`, computed by that independent
//! Python implementation). See `testdata/ima/README.md` for where each file comes from.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use measure::ima::replay::BankPcrs;
use measure::ima::{
    check_boot_aggregate, replay, verify, verify_any_mode, AsciiOptions, BinaryOptions,
    BootAggregateVariant, BootAggregateVerdict, ByteOrder, ImaError, ImaList, ListFormat, Location,
    ReplayMode,
};
use measure::HashAlg;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/ima")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap()
}

fn bank(name: &str) -> HashAlg {
    HashAlg::from_name(name).unwrap_or_else(|| panic!("bank {name}"))
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as usize)
        .collect()
}

/// `{"sha1": {"10": "hex"}}` as bank → PCR → value.
fn bank_pcrs(v: &Value) -> BankPcrs {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(b, pcrs)| {
            let pcrs = pcrs
                .as_object()
                .unwrap()
                .iter()
                .map(|(p, hex_value)| {
                    (
                        p.parse().unwrap(),
                        hex::decode(hex_value.as_str().unwrap()).unwrap(),
                    )
                })
                .collect::<BTreeMap<u32, Vec<u8>>>();
            (bank(b), pcrs)
        })
        .collect()
}

fn variant(name: &str) -> BootAggregateVerdict {
    match name {
        "pcr0-to7" => BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To7),
        "pcr0-to9" => BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To9),
        "zero" => BootAggregateVerdict::Zero,
        other => panic!("unknown boot_aggregate verdict {other}"),
    }
}

fn check_common(name: &str, list: &ImaList, want: &Value) {
    assert_eq!(
        list.entries.len() as u64,
        want["entries"].as_u64().unwrap(),
        "{name}: entries"
    );
    assert_eq!(
        list.template_hash_algorithm,
        bank(want["template_hash_algorithm"].as_str().unwrap()),
        "{name}"
    );
    let report = list.check_template_hashes();
    assert!(
        report.mismatches.is_empty(),
        "{name}: {:?}",
        report.mismatches
    );
    assert_eq!(
        report.violations,
        indices(&want["violations"]),
        "{name}: violations"
    );
    if let Some(nr) = want.get("not_recomputable") {
        assert_eq!(
            report.not_recomputable,
            indices(nr),
            "{name}: not recomputable"
        );
    } else {
        assert!(report.not_recomputable.is_empty(), "{name}");
    }
    // Every entry gets a JSON form.
    serde_json::to_string(list).unwrap();
}

#[test]
fn synthetic_lists_match_the_python_generator() {
    let m = manifest("expected-synthetic.json");
    let firmware = bank_pcrs(&m["firmware_pcrs"]);
    let lists = m["lists"].as_object().unwrap();
    assert_eq!(lists.len(), 10);
    for (name, want) in lists {
        let bytes = read(name);
        let order = match want["byte_order"].as_str().unwrap() {
            "little" => ByteOrder::Little,
            _ => ByteOrder::Big,
        };
        let alg = bank(want["template_hash_algorithm"].as_str().unwrap());
        let list = if want["format"] == "binary" {
            // Byte order detected, bank given (binary lists do not say).
            let opts = BinaryOptions {
                byte_order: None,
                template_hash_algorithm: alg,
            };
            ImaList::parse_binary_with(&bytes, opts).unwrap()
        } else {
            // Bank detected, byte order given (ASCII lists do not say).
            let opts = AsciiOptions {
                template_hash_algorithm: None,
                byte_order: order,
            };
            ImaList::parse_ascii_with(&bytes, opts).unwrap()
        };
        assert_eq!(list.byte_order, order, "{name}");
        assert_eq!(
            list.format == ListFormat::Binary,
            want["format"] == "binary",
            "{name}"
        );
        check_common(name, &list, want);
        assert_eq!(
            list.unknown_templates(),
            indices(&want["unknown_templates"]),
            "{name}"
        );

        for (mode_name, mode) in [
            ("per-bank-template-hash", ReplayMode::PerBankTemplateHash),
            ("padded-sha1", ReplayMode::PaddedSha1),
        ] {
            let expected = bank_pcrs(&want["pcrs"][mode_name]);
            let banks: Vec<HashAlg> = expected.keys().copied().collect();
            let replayed = replay(&list, &banks, mode).unwrap();
            assert_eq!(replayed.pcrs, expected, "{name} {mode_name}");
            let verified = verify(&list, &expected, mode).unwrap();
            assert_eq!(
                verified.entries().len(),
                list.entries.len(),
                "{name} {mode_name}"
            );
            assert_eq!(
                verified.violations(),
                indices(&want["violations"]).as_slice()
            );
            // verify_any_mode tries per-bank first and falls back to padded SHA-1.
            let any = verify_any_mode(&list, &expected).unwrap();
            if banks.iter().any(|b| *b != HashAlg::Sha1) {
                assert_eq!(any.mode(), mode, "{name} {mode_name}");
            }
        }

        match want["boot_aggregate"].as_str() {
            Some(v) => {
                let check = check_boot_aggregate(&list, &firmware).unwrap();
                assert_eq!(check.verdict, variant(v), "{name}: {check:?}");
            }
            None => assert!(check_boot_aggregate(&list, &firmware).is_err()),
        }
    }
}

#[test]
fn real_lists_parse_and_their_template_hashes_verify() {
    let m = manifest("expected-real.json");
    let lists = m["lists"].as_object().unwrap();
    assert_eq!(lists.len(), 13);
    for (name, want) in lists {
        let bytes = read(name);
        let parsed = ImaList::parse_ascii(&bytes);
        if let Some(err) = want.get("error") {
            assert_eq!(err, "unknown-digest-algorithm");
            match parsed {
                Err(ImaError::UnknownDigestAlgorithm { at, algorithm, .. }) => {
                    assert_eq!(
                        at,
                        Location::Line(want["line"].as_u64().unwrap() as usize),
                        "{name}"
                    );
                    assert_eq!(algorithm, want["algorithm"].as_str().unwrap(), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
            continue;
        }
        let list = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        check_common(name, &list, want);
        assert!(list.unknown_templates().is_empty(), "{name}");

        if let Some(pcrs) = want.get("expected_pcrs") {
            // PCR 10 as the source's TPM (simulator) reported it: the list must reproduce it, in
            // the per-bank mode of current kernels, recomputing non-SHA-1 template hashes from
            // the ASCII fields.
            let expected = bank_pcrs(pcrs);
            let verified = verify(&list, &expected, ReplayMode::PerBankTemplateHash)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(verified.entries().len(), list.entries.len());
            assert_eq!(verified.unverified_tail(), 0);
            // The other mode does not produce the same non-SHA-1 values.
            if expected.keys().any(|b| *b != HashAlg::Sha1) {
                assert!(
                    verify(&list, &expected, ReplayMode::PaddedSha1).is_err(),
                    "{name}"
                );
            }
        }
        if let Some(v) = want.get("boot_aggregate") {
            let firmware = match want.get("firmware") {
                Some(f) => bank_pcrs(&m["firmware_pcrs"][f.as_str().unwrap()]),
                None => BTreeMap::new(),
            };
            let check =
                check_boot_aggregate(&list, &firmware).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                check.verdict,
                variant(v.as_str().unwrap()),
                "{name}: {check:?}"
            );
        }
    }
}

#[test]
fn ascii_and_binary_synthetic_lists_decode_to_the_same_entries() {
    let le = ImaList::parse_binary(&read("synthetic-main-le.bin")).unwrap();
    let be = ImaList::parse_binary(&read("synthetic-main-be.bin")).unwrap();
    let ascii = ImaList::parse_ascii(&read("synthetic-main.ascii")).unwrap();
    let sha256 = ImaList::parse_binary_with(
        &read("synthetic-main-sha256.bin"),
        BinaryOptions {
            byte_order: None,
            template_hash_algorithm: HashAlg::Sha256,
        },
    )
    .unwrap();
    for (((a, b), c), d) in le
        .entries
        .iter()
        .zip(&be.entries)
        .zip(&ascii.entries)
        .zip(&sha256.entries)
    {
        assert_eq!(a.template, b.template);
        assert_eq!(a.template, c.template);
        assert_eq!(a.template, d.template);
        assert_eq!(a.template_hash, c.template_hash);
        assert_eq!(a.hashed_template_data(), c.hashed_template_data());
        if !a.violation {
            assert_eq!(
                d.template_digest(HashAlg::Sha1),
                Some(a.template_hash.clone())
            );
            assert_eq!(
                a.template_digest(HashAlg::Sha256),
                Some(d.template_hash.clone())
            );
        }
    }
}
