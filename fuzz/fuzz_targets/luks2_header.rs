#![no_main]
//! A LUKS2 header as `warrant disk` reads it from a device: parse both copies, the JSON
//! metadata and the tokens; when it parses, writing it back must parse to the same metadata.
//! Must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = measure::luks2::Header::parse(data) {
        let bytes = header.to_bytes();
        let again = measure::luks2::Header::parse(&bytes).expect("a written header parses");
        assert_eq!(again.metadata(), header.metadata());
    }
});
