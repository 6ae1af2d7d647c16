#![no_main]
//! dm-verity superblocks read from an untrusted hash device: parse, and when valid, the tree
//! layout it implies and the round trip back to bytes. Must never panic.
use libfuzzer_sys::fuzz_target;
use measure::verity::{Layout, Superblock};

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = Superblock::parse(data) {
        let _ = sb.to_bytes();
        let _ = Layout::new(&sb.params, 0, true);
    }
});
