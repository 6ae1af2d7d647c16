//! From a verified quote to proven logs, then to `policy::appraise`: the firmware event log
//! must replay to the quoted firmware PCRs, Warrant's CEL log to the quoted PCR 15, and only
//! then are their events compared with the reference values.

use crate::core::{parse_firmware_log, Evidence, Finding};
use measure::pcr::PcrBanks;
use measure::tpm2::VerifiedQuote;
use policy::appraise::{self as pa, VerifiedWarrantLog, WarrantLog, WarrantLogError};
use policy::refvalues::ReferenceValues;

/// The quoted values of `pcrs` (every quoted bank), what the firmware log must replay to.
fn quoted_subset(quoted: &PcrBanks, pcrs: &[u32]) -> PcrBanks {
    let mut out = PcrBanks::new();
    for (bank, values) in quoted.banks() {
        for (pcr, value) in values {
            if pcrs.contains(pcr) {
                out.set(bank, *pcr, value.clone());
            }
        }
    }
    out
}

/// Proves the logs of `evidence` against `quoted` and runs `then` on the proven evidence.
/// Pushes a passing finding per proven log; returns the first failure.
pub fn with_proven<R>(
    firmware_pcrs: &[u32],
    quoted: &PcrBanks,
    evidence: &Evidence<'_>,
    findings: &mut Vec<Finding>,
    then: impl FnOnce(&pa::Evidence<'_>) -> R,
) -> Result<R, Finding> {
    let log = parse_firmware_log(evidence.firmware_log)?;
    let expected = quoted_subset(quoted, firmware_pcrs);
    // Only the quoted banks: a bank the quote does not cover proves nothing.
    let verified = measure::eventlog::replay::verify_quoted(&log, &expected).map_err(|e| {
        Finding::fail(
            "firmware-log",
            format!("the firmware event log does not replay to the quoted PCRs: {e}"),
        )
    })?;
    findings.push(Finding::pass(
        "firmware-log",
        format!(
            "{} events replay to the quoted PCRs {:?}",
            log.events.len(),
            firmware_pcrs
        ),
    ));
    let records = measure::cel::parse(evidence.warrant_log).map_err(|e| {
        Finding::fail(
            "warrant-log",
            format!("Warrant's measurement log does not parse: {e}"),
        )
    })?;
    let warrant: VerifiedWarrantLog = WarrantLog::verify(&records, quoted).map_err(|e| {
        let what = match e {
            WarrantLogError::Mismatch { .. } | WarrantLogError::Pcr15NotQuoted => {
                "does not replay to the quoted PCRs"
            }
            _ => "is not a log of Warrant's measurements",
        };
        Finding::fail(
            "warrant-log",
            format!("Warrant's measurement log {what}: {e}"),
        )
    })?;
    findings.push(Finding::pass(
        "warrant-log",
        format!("{} records replay to the quoted PCR 15", records.len()),
    ));
    let ima = prove_ima(quoted, evidence.ima_log, findings)?;
    let proven = pa::Evidence {
        quoted,
        firmware_log: Some(&verified),
        warrant_log: &warrant,
        ima: ima.as_ref(),
    };
    Ok(then(&proven))
}

/// The IMA list, when the node sent one: parsed (ASCII or binary), and replayed to the
/// quoted PCR 10 of every quoted bank (per-bank template hashes, or padded SHA-1 for kernels
/// before 5.8). `None` when no list was sent: a policy that wants IMA then fails on it.
fn prove_ima(
    quoted: &PcrBanks,
    bytes: &[u8],
    findings: &mut Vec<Finding>,
) -> Result<Option<measure::ima::VerifiedImaList>, Finding> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let fail = |reason: String| Finding::fail("ima-log", reason);
    // An ASCII list starts with the PCR number in digits; a binary one with a 32-bit PCR
    // index (10 is 0x0a or, big-endian, 0x00).
    let ascii =
        bytes.first().is_some_and(u8::is_ascii_digit) && !bytes.iter().take(64).any(|b| *b == 0);
    let list = if ascii {
        measure::ima::ImaList::parse_ascii(bytes)
    } else {
        measure::ima::ImaList::parse_binary(bytes)
    }
    .map_err(|e| fail(format!("the IMA list does not parse: {e}")))?;
    let mut expected = measure::ima::replay::BankPcrs::new();
    for (bank, values) in quoted.banks() {
        if let Some(v) = values.get(&policy::refvalues::IMA_PCR) {
            expected
                .entry(bank)
                .or_default()
                .insert(policy::refvalues::IMA_PCR, v.clone());
        }
    }
    if expected.is_empty() {
        return Err(fail(
            "the quote does not cover PCR 10, so the IMA list proves nothing".into(),
        ));
    }
    let verified = measure::ima::replay::verify_any_mode(&list, &expected).map_err(|e| {
        fail(format!(
            "the IMA list does not replay to the quoted PCR 10: {e}"
        ))
    })?;
    findings.push(Finding::pass(
        "ima-log",
        "the IMA list replays to the quoted PCR 10",
    ));
    Ok(Some(verified))
}

/// Proves the logs and appraises them against `refs`, pushing every finding.
pub fn appraise(
    refs: &ReferenceValues,
    quote: &VerifiedQuote,
    evidence: &Evidence<'_>,
    findings: &mut Vec<Finding>,
) -> Result<(), Finding> {
    let appraisal = with_proven(
        &refs.firmware_log_pcrs(),
        quote.pcrs(),
        evidence,
        findings,
        |proven| pa::appraise(refs, proven),
    )?;
    for f in appraisal.findings {
        findings.push(Finding {
            check: f.check.to_string(),
            passed: f.passed,
            expected: f.expected,
            actual: f.actual,
            reason: f.reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code
    use super::*;
    use measure::alg::HashAlg;

    /// A real ima-ng list (kunpengsecl) and the SHA-256 PCR 10 its project published.
    fn fixture() -> (Vec<u8>, PcrBanks) {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../measure/testdata/ima");
        let list = std::fs::read(root.join("kunpengsecl-raagent-ima-ng-sha256.ascii")).unwrap();
        let mut quoted = PcrBanks::new();
        quoted.set(
            HashAlg::Sha256,
            10,
            hex::decode("9d7f5614ab14f6dbc6ee694084b05a3c37ede74993eb64f8a74471bbf94368e1")
                .unwrap(),
        );
        (list, quoted)
    }

    #[test]
    fn an_ima_list_is_proven_against_the_quoted_pcr_10() {
        let (list, quoted) = fixture();
        let mut findings = Vec::new();
        let verified = prove_ima(&quoted, &list, &mut findings).unwrap();
        assert!(verified.is_some());
        assert!(findings.iter().all(|f| f.passed && f.check == "ima-log"));
        // Nothing sent: nothing proven, and nothing claimed.
        assert!(prove_ima(&quoted, &[], &mut Vec::new()).unwrap().is_none());
    }

    #[test]
    fn an_edited_ima_list_or_another_pcr_10_is_refused() {
        let (list, quoted) = fixture();
        // The last entry's file name changed: its template hash no longer matches, so the
        // replay cannot reach the quoted value.
        let text = String::from_utf8(list).unwrap();
        let edited = text.replacen("ld.so.cache", "ld.so.cachf", 1);
        assert_ne!(edited, text);
        let f = prove_ima(&quoted, edited.as_bytes(), &mut Vec::new()).unwrap_err();
        assert_eq!(f.check, "ima-log");
        let mut other = PcrBanks::new();
        other.set(HashAlg::Sha256, 10, vec![0x11; 32]);
        let f = prove_ima(&other, text.as_bytes(), &mut Vec::new()).unwrap_err();
        assert!(f.reason.contains("does not replay"), "{}", f.reason);
        let f = prove_ima(&PcrBanks::new(), text.as_bytes(), &mut Vec::new()).unwrap_err();
        assert!(f.reason.contains("does not cover PCR 10"), "{}", f.reason);
        let f = prove_ima(&quoted, b"10 garbage", &mut Vec::new()).unwrap_err();
        assert!(f.reason.contains("does not parse"), "{}", f.reason);
    }
}
