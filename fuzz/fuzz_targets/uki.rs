#![no_main]
//! Unified Kernel Images: PE/COFF parse, the stub's version, and the PCR 11 prediction (with
//! every stub release assumed when the image has none). Must never panic.
use libfuzzer_sys::fuzz_target;
use measure::HashAlg;

fuzz_target!(|data: &[u8]| {
    let _ = measure::uki::pe::PeImage::parse(data);
    let phases: Vec<String> = Vec::new();
    for assume in [None, Some(252), Some(255), Some(257)] {
        if let Ok(uki) = measure::uki::Uki::parse_assuming(data, assume) {
            let _ = uki.predict(&[HashAlg::Sha256], &phases);
        }
    }
});
