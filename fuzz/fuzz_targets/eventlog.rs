#![no_main]
//! Whole firmware event logs: parse, decode every event, replay (plain and with every quirk),
//! and verify against the log's own replay and against all-zero PCRs (which tries the quirks).
//! Must never panic, on any input; the one `panic!` here is a property check of the replay.
use libfuzzer_sys::fuzz_target;
use measure::eventlog::replay::{replay, replay_with, verify, Quirk};
use measure::eventlog::EventLog;
use measure::pcr::PcrBanks;

fuzz_target!(|data: &[u8]| {
    let Ok(log) = EventLog::parse(data) else {
        return;
    };
    for event in &log.events {
        let _ = event.decode();
    }
    let plain = replay(&log);
    let _ = replay_with(&log, &Quirk::ALL);
    // A log always verifies against the values of its own plain replay.
    if !plain.banks.is_empty() {
        if let Err(e) = verify(&log, &plain.banks) {
            panic!("log does not verify against its own replay: {e}");
        }
    }
    // Mismatching expected values: exercises the quirk search and mismatch reporting.
    let mut zeros = PcrBanks::new();
    for (alg, pcrs) in plain.banks.banks() {
        for pcr in pcrs.keys() {
            zeros.set(alg, *pcr, alg.zero());
        }
    }
    if let Err(e) = verify(&log, &zeros) {
        let _ = e.to_string();
    }
});
