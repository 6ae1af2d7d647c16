#![no_main]
//! Warrant's own measurement log (TCG CEL, JSON) as the verifier receives it: parse and replay.
//! Must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = measure::cel::parse(data) {
        let _ = measure::cel::replay(&records);
    }
});
