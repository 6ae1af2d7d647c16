#![no_main]
//! The verifier's whole attestation core (`verifier::core::attest`) on evidence from an untrusted
//! node, against fixed expectations: the golden quotes of `measure/testdata/quote/` (tpm2-tools
//! on swtpm) give the AK, the nonce, the reported PCRs and the challenge clock, and the
//! reference values are a fixed valid document.
//!
//! Input: `k` (one byte: which golden AK, `k % 3`), the `TPMS_ATTEST` length (u16 LE), the
//! `TPMT_SIGNATURE` length (u16 LE), the firmware event log length (u32 LE), then those three
//! fields, then Warrant's measurement log (the rest). Lengths past the end are cut to it.
//!
//! Almost every input is denied; the target checks that none panics and that a report which
//! admits the node passed every check. The golden quotes do not cover PCR 15, which every
//! reference-values document requires, so evidence signed by them stops at `pcr-selection`:
//! the log stages are reached only through other targets (`eventlog`, `cel`).
use libfuzzer_sys::fuzz_target;
use measure::pcr::PcrBanks;
use measure::tpm2::{Attest, ClockInfo};
use policy::refvalues::ReferenceValues;
use std::sync::OnceLock;
use verifier::core::{attest, Evidence, Expectation};

/// The golden AKs (`TPM2B_PUBLIC`) and one quote each (for the challenge clock).
const AKS: [(&[u8], &[u8]); 3] = [
    (
        include_bytes!("../../measure/testdata/quote/ecc-p256.akpub"),
        include_bytes!("../../measure/testdata/quote/ecc-p256.attest"),
    ),
    (
        include_bytes!("../../measure/testdata/quote/rsa-rsassa.akpub"),
        include_bytes!("../../measure/testdata/quote/rsa-rsassa.attest"),
    ),
    (
        include_bytes!("../../measure/testdata/quote/rsa-rsapss.akpub"),
        include_bytes!("../../measure/testdata/quote/rsa-rsapss.attest"),
    ),
];
const NONCE_HEX: &str = include_str!("../../measure/testdata/quote/nonce.hex");
const PCRS_JSON: &str = include_str!("../../measure/testdata/quote/pcrs.json");

/// Valid reference values over the golden quotes' bank, with the Secure Boot check on.
const REFS_JSON: &str = r#"{
  "schema": "warrant-reference-values/1",
  "bank": "sha256",
  "firmware_log_pcrs": [0, 1, 7],
  "pcr_values": {"1": ["0000000000000000000000000000000000000000000000000000000000000000"]},
  "secure_boot": true
}"#;

struct Fixed {
    refs: ReferenceValues,
    pcrs: PcrBanks,
    nonce: Vec<u8>,
    clocks: [ClockInfo; 3],
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let refs =
            ReferenceValues::from_json(REFS_JSON.as_bytes()).expect("fixed reference values");
        let pcrs = serde_json::from_str(PCRS_JSON).expect("golden pcrs.json");
        let pcrs = PcrBanks::from_json(&pcrs).expect("golden pcrs.json");
        let nonce = hex::decode(NONCE_HEX.trim()).expect("golden nonce.hex");
        let clocks = AKS.map(|(_, quote)| Attest::parse(quote).expect("golden quote").clock_info);
        Fixed {
            refs,
            pcrs,
            nonce,
            clocks,
        }
    })
}

/// Splits off a length-prefixed field: `len` bytes of `rest`, or all of it if shorter.
fn take(rest: &[u8], len: usize) -> (&[u8], &[u8]) {
    rest.split_at(len.min(rest.len()))
}

fuzz_target!(|data: &[u8]| {
    let [k, a0, a1, s0, s1, f0, f1, f2, f3, rest @ ..] = data else {
        return;
    };
    let (attest_bytes, rest) = take(rest, usize::from(u16::from_le_bytes([*a0, *a1])));
    let (signature, rest) = take(rest, usize::from(u16::from_le_bytes([*s0, *s1])));
    let fw_len = usize::try_from(u32::from_le_bytes([*f0, *f1, *f2, *f3])).unwrap_or(usize::MAX);
    let (firmware_log, warrant_log) = take(rest, fw_len);

    let fixed = fixed();
    let which = usize::from(*k) % AKS.len();
    let expect = Expectation {
        ak_public: AKS[which].0,
        nonce: &fixed.nonce,
        challenge_clock: fixed.clocks[which],
        last_clock: None,
        refs: &fixed.refs,
    };
    let evidence = Evidence {
        attest: attest_bytes,
        signature,
        pcrs: &fixed.pcrs,
        firmware_log,
        warrant_log,
        ima_log: &[],
    };
    let report = attest(&expect, &evidence);
    if report.admitted {
        assert!(
            report.findings.iter().all(|f| f.passed),
            "admitted with a failed check"
        );
    }
});
