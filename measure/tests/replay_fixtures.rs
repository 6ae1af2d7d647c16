//! Every real log of `testdata/eventlogs/expected.json` against its manifest entry: the
//! expected PCR values come only from the manifest, never from this file.

use measure::eventlog::replay::{replay, verify, ReplayError};
use measure::eventlog::{EventLog, LogFormat};
use measure::pcr::PcrBanks;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/eventlogs")
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        _ => panic!("manifest is not an object"),
    }
}

fn load(name: &str) -> EventLog {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    EventLog::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn manifest_covers_every_log_file() {
    let m = manifest();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".bin") {
            assert!(m.contains_key(&name), "{name} has no manifest entry");
        }
    }
    assert!(m.len() >= 25);
}

#[test]
fn every_log_meets_its_manifest_verdict() {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (name, entry) in manifest() {
        let log = load(&name);
        let want_format = entry["format"].as_str().unwrap();
        let format = match log.format {
            LogFormat::CryptoAgile => "crypto-agile",
            LogFormat::Sha1Legacy => "sha1-legacy",
        };
        assert_eq!(format, want_format, "{name}: format");
        let expected = PcrBanks::from_json(&entry["pcrs"]).unwrap();
        let verdict = entry["expect"].as_str().unwrap();
        *counts.entry(verdict.to_string()).or_default() += 1;
        match verdict {
            "replay-matches" => {
                let v = verify(&log, &expected).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(v.replay().quirks.is_empty(), "{name}: needed quirks");
                // Replay lists exactly the PCRs the manifest lists (only PCRs with events).
                for (alg, pcrs) in expected.banks() {
                    let got = v.replay().banks.bank(alg).unwrap();
                    assert_eq!(
                        got.keys().collect::<Vec<_>>(),
                        pcrs.keys().collect::<Vec<_>>(),
                        "{name}: {alg} PCR set"
                    );
                }
            }
            "replay-mismatch" => {
                let err = verify(&log, &expected).expect_err(&name);
                let ReplayError::Mismatch { mismatches, .. } = err else {
                    panic!("{name}: {err}")
                };
                // The manifest's note names PCR 4; the first mismatch must be it, in both banks.
                assert!(mismatches.iter().all(|m| m.pcr == 4), "{name}: {mismatches:?}");
                assert_eq!(mismatches.len(), 2);
                // And what the reference tool computed from this very file is reproduced.
                let tool = PcrBanks::from_json(&entry["tool_replay_pcrs"]).unwrap();
                verify(&log, &tool).unwrap_or_else(|e| panic!("{name} vs tool: {e}"));
            }
            "parse-only" => {
                assert!(expected.is_empty());
                assert!(matches!(verify(&log, &expected), Err(ReplayError::NothingToCompare)));
                let _ = replay(&log);
            }
            other => panic!("{name}: unknown verdict {other}"),
        }
    }
    assert_eq!(counts.get("replay-mismatch"), Some(&1));
    assert!(counts.get("replay-matches").copied().unwrap_or(0) >= 20);
}

#[test]
fn one_flipped_bit_in_an_expected_value_is_caught() {
    for (name, entry) in manifest() {
        if entry["expect"] != "replay-matches" {
            continue;
        }
        let log = load(&name);
        let mut pcrs = entry["pcrs"].clone();
        let bank = pcrs.as_object_mut().unwrap().values_mut().next().unwrap();
        let (pcr, value) = bank.as_object_mut().unwrap().iter_mut().last().unwrap();
        let pcr: u32 = pcr.parse().unwrap();
        let mut bytes = hex::decode(value.as_str().unwrap()).unwrap();
        bytes[0] ^= 1;
        *value = Value::String(hex::encode(bytes));
        let err = verify(&log, &PcrBanks::from_json(&pcrs).unwrap()).expect_err(&name);
        let ReplayError::Mismatch { mismatches, .. } = err else { panic!("{name}") };
        assert_eq!(mismatches[0].pcr, pcr, "{name}");
    }
}
