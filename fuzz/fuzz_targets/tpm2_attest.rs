#![no_main]
//! TPM 2.0 structures of a quote: `TPMS_ATTEST`, `TPMT_SIGNATURE`, `TPM2B_PUBLIC`/`TPMT_PUBLIC`
//! parsed from arbitrary bytes, and `Quote::verify` with the input split three ways. Must never
//! panic.
use libfuzzer_sys::fuzz_target;
use measure::pcr::PcrBanks;
use measure::tpm2::{Attest, Public, Quote, Signature};

fuzz_target!(|data: &[u8]| {
    let _ = Attest::parse(data);
    let _ = Signature::parse(data);
    if let Ok(public) = Public::parse(data) {
        let _ = public.name();
    }
    // First two bytes choose where to cut the rest into attest / signature / key.
    if let [a, b, rest @ ..] = data {
        let first = usize::from(*a).min(rest.len());
        let (attest, rest) = rest.split_at(first);
        let second = usize::from(*b).min(rest.len());
        let (sig, key) = rest.split_at(second);
        let _ = Quote::verify(attest, sig, key, &[], &PcrBanks::new());
    }
});
