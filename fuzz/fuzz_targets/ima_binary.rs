#![no_main]
//! Binary IMA measurement lists (`binary_runtime_measurements`): parse in both byte orders and
//! with every template-hash bank, check template hashes, replay in both modes, and check the
//! boot aggregate. Must never panic, and decoded fields must always re-encode to the
//! template data read (`ImaError::NonCanonical` would be a parser bug).
use libfuzzer_sys::fuzz_target;
use measure::ima::{
    check_boot_aggregate, replay, BinaryOptions, ByteOrder, ImaError, ImaList, ReplayMode,
};
use measure::HashAlg;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so the fuzzer explores every combination.
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let byte_order = match selector & 3 {
        0 => None,
        1 => Some(ByteOrder::Little),
        _ => Some(ByteOrder::Big),
    };
    let bank = pick_bank(selector >> 2);
    let options = BinaryOptions {
        byte_order,
        template_hash_algorithm: bank,
    };
    for parsed in [
        ImaList::parse_binary(data),
        ImaList::parse_binary_with(bytes, options),
    ] {
        match parsed {
            Ok(list) => exercise(&list),
            // Decoding is lossless for any input that parses: this error is a parser bug.
            Err(e @ ImaError::NonCanonical { .. }) => panic!("{e}"),
            Err(_) => {}
        }
    }
});

fn exercise(list: &ImaList) {
    let _ = list.check_template_hashes();
    let _ = list.unknown_templates();
    for mode in [ReplayMode::PerBankTemplateHash, ReplayMode::PaddedSha1] {
        let _ = replay(list, &HashAlg::ALL, mode);
    }
    let _ = check_boot_aggregate(list, &BTreeMap::new());
}

fn pick_bank(n: u8) -> HashAlg {
    HashAlg::ALL
        .get(usize::from(n) % HashAlg::ALL.len())
        .copied()
        .unwrap_or(HashAlg::Sha1)
}
