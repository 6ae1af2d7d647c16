#![no_main]
//! ASCII IMA measurement lists (`ascii_runtime_measurements[_<algo>]`): parse (bank detected
//! and forced, both byte orders), check template hashes, replay in both modes, and check the
//! boot aggregate. Must never panic.
use libfuzzer_sys::fuzz_target;
use measure::ima::{check_boot_aggregate, replay, AsciiOptions, ByteOrder, ImaList, ReplayMode};
use measure::HashAlg;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let options = AsciiOptions {
        template_hash_algorithm: (selector & 1 == 1).then(|| pick_bank(selector >> 2)),
        byte_order: if selector & 2 == 0 {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        },
    };
    for list in [
        ImaList::parse_ascii(data),
        ImaList::parse_ascii_with(text, options),
    ]
    .into_iter()
    .flatten()
    {
        let _ = list.check_template_hashes();
        let _ = list.unknown_templates();
        for mode in [ReplayMode::PerBankTemplateHash, ReplayMode::PaddedSha1] {
            let _ = replay(&list, &HashAlg::ALL, mode);
        }
        let _ = check_boot_aggregate(&list, &BTreeMap::new());
    }
});

fn pick_bank(n: u8) -> HashAlg {
    HashAlg::ALL
        .get(usize::from(n) % HashAlg::ALL.len())
        .copied()
        .unwrap_or(HashAlg::Sha1)
}
