#![no_main]
//! Whole firmware event logs: parse, decode every event, replay. Must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = measure::eventlog::EventLog::parse(data) {
        for event in &log.events {
            let _ = event.decode();
        }
    }
});
