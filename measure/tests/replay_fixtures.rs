//! Every real log of `testdata/eventlogs/expected.json` against its manifest entry: the
//! expected PCR values come only from the manifest, never from this file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

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
                assert!(
                    mismatches.iter().all(|m| m.pcr == 4),
                    "{name}: {mismatches:?}"
                );
                assert_eq!(mismatches.len(), 2);
                // And what the reference tool computed from this very file is reproduced.
                let tool = PcrBanks::from_json(&entry["tool_replay_pcrs"]).unwrap();
                verify(&log, &tool).unwrap_or_else(|e| panic!("{name} vs tool: {e}"));
            }
            "parse-only" => {
                assert!(expected.is_empty());
                assert!(matches!(
                    verify(&log, &expected),
                    Err(ReplayError::NothingToCompare)
                ));
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
        let ReplayError::Mismatch { mismatches, .. } = err else {
            panic!("{name}")
        };
        assert_eq!(mismatches[0].pcr, pcr, "{name}");
    }
}

/// The bytes of a log with some events removed or repeated, built from a real log so the
/// quirk tests run on real firmware data. `keep(i)` says which event (by index) stays.
fn rebuild(
    bytes: &[u8],
    log: &EventLog,
    keep: impl Fn(usize) -> bool,
    repeat_tail: usize,
) -> Vec<u8> {
    let header_end = log.events.first().map_or(bytes.len(), |e| e.offset);
    let spans: Vec<(usize, usize)> = log
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                e.offset,
                log.events.get(i + 1).map_or(bytes.len(), |n| n.offset),
            )
        })
        .collect();
    let mut out = bytes[..header_end].to_vec();
    for (i, (a, b)) in spans.iter().enumerate() {
        if keep(i) {
            out.extend_from_slice(&bytes[*a..*b]);
        }
    }
    for (a, b) in &spans[spans.len() - repeat_tail..] {
        out.extend_from_slice(&bytes[*a..*b]);
    }
    out
}

const QUIRK_LOG: &str = "ubuntu-2104-no-secure-boot.bin";

#[test]
fn missing_exit_boot_services_is_a_reported_quirk_not_a_silent_fix() {
    use measure::eventlog::replay::Quirk;
    let bytes = std::fs::read(dir().join(QUIRK_LOG)).unwrap();
    let full = EventLog::parse(&bytes).unwrap();
    let expected = PcrBanks::from_json(&manifest()[QUIRK_LOG]["pcrs"]).unwrap();
    // Drop the two ExitBootServices events, as a log copied before ExitBootServices lacks them.
    let ebs: Vec<usize> = full
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.pcr == 5 && e.data.starts_with(b"Exit Boot Services"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ebs.len(), 2);
    let cut = EventLog::parse(&rebuild(&bytes, &full, |i| !ebs.contains(&i), 0)).unwrap();
    assert_eq!(cut.events.len(), full.events.len() - 2);

    // The plain replay disagrees on PCR 5 only...
    let plain = replay(&cut);
    assert!(plain.quirks.is_empty());
    for (alg, pcrs) in expected.banks() {
        for (pcr, want) in pcrs {
            let got = plain.banks.get(alg, *pcr).unwrap();
            assert_eq!(got == want.as_slice(), *pcr != 5, "{alg} PCR {pcr}");
        }
    }
    let v = verify(&cut, &expected).unwrap();
    // ...and verification succeeds only through the named quirk, which is reported.
    let names: Vec<Quirk> = v.replay().quirks.iter().map(|q| q.name).collect();
    assert_eq!(names, vec![Quirk::MissingExitBootServices]);
    assert_eq!(v.events().len(), full.events.len());
    // The quirk never hides a real difference: a log that also lost another PCR 5 event fails.
    let gpt = full
        .events
        .iter()
        .position(|e| e.pcr == 5 && e.data.starts_with(b"EFI PART"))
        .unwrap();
    let worse = EventLog::parse(&rebuild(
        &bytes,
        &full,
        |i| !ebs.contains(&i) && i != gpt,
        0,
    ))
    .unwrap();
    let err = verify(&worse, &expected).unwrap_err();
    let ReplayError::Mismatch {
        mismatches,
        quirks_tried,
    } = err
    else {
        panic!()
    };
    assert_eq!(mismatches[0].pcr, 5);
    assert!(quirks_tried.contains(&Quirk::MissingExitBootServices));
}

#[test]
fn duplicated_final_events_are_dropped_only_when_needed() {
    use measure::eventlog::replay::Quirk;
    let bytes = std::fs::read(dir().join(QUIRK_LOG)).unwrap();
    let full = EventLog::parse(&bytes).unwrap();
    let expected = PcrBanks::from_json(&manifest()[QUIRK_LOG]["pcrs"]).unwrap();
    let doubled = EventLog::parse(&rebuild(&bytes, &full, |_| true, 3)).unwrap();
    assert_eq!(doubled.events.len(), full.events.len() + 3);
    let v = verify(&doubled, &expected).unwrap();
    assert_eq!(v.replay().quirks.len(), 1);
    assert_eq!(v.replay().quirks[0].name, Quirk::DuplicatedFinalEvents);
    assert_eq!(v.replay().quirks[0].events.len(), 3);
    assert_eq!(v.events().len(), full.events.len());
    // The unmodified log needs no quirk at all.
    assert!(verify(&full, &expected).unwrap().replay().quirks.is_empty());
}

#[test]
fn startup_locality_sets_pcr0_and_matters() {
    // glinux-alex.bin logs StartupLocality 3; replaying PCR 0 from zero would not match.
    let log = load("glinux-alex.bin");
    let r = replay(&log);
    assert_eq!(r.startup_locality, 3);
    let plain = replay(&load("rhel8-uefi.bin"));
    assert_eq!(plain.startup_locality, 0);
}

#[test]
fn a_bank_the_log_lacks_fails_closed() {
    let log = load("debian-10.bin"); // SHA-1 only
    let expected =
        PcrBanks::from_json(&serde_json::json!({"sha256": {"0": "00".repeat(32)}})).unwrap();
    let err = verify(&log, &expected).unwrap_err();
    let ReplayError::Mismatch { mismatches, .. } = err else {
        panic!()
    };
    assert_eq!(mismatches[0].replayed, None);
}

#[test]
fn data_that_does_not_match_its_digest_is_reported() {
    use measure::eventlog::replay::ReplayWarning;
    let mut bytes = std::fs::read(dir().join("rhel8-uefi.bin")).unwrap();
    let log = EventLog::parse(&bytes).unwrap();
    assert!(!replay(&log)
        .warnings
        .iter()
        .any(|w| matches!(w, ReplayWarning::DigestMismatch { .. })));
    // Rewrite the text of an EV_EFI_ACTION event, leaving its digests: the replay is unchanged
    // (the TPM extended the digests) but the event's data can no longer be believed.
    let ev = log
        .events
        .iter()
        .find(|e| e.event_type == measure::eventlog::EventType::EV_EFI_ACTION)
        .unwrap();
    bytes[ev.data_offset] ^= 0x20;
    let forged = EventLog::parse(&bytes).unwrap();
    let r = replay(&forged);
    assert_eq!(r.banks, replay(&log).banks);
    let flagged: Vec<_> = r
        .warnings
        .iter()
        .filter_map(|w| match w {
            ReplayWarning::DigestMismatch { event, .. } => Some(*event),
            _ => None,
        })
        .collect();
    assert_eq!(
        flagged,
        vec![ev.number; 3],
        "one warning per bank (sha1, sha256, sha384)"
    );
}
