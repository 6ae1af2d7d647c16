//! From a verified quote to proven logs, then to `policy::appraise`: the firmware event log
//! must replay to the quoted firmware PCRs, Warrant's CEL log to the quoted PCR 15, and only
//! then are their events compared with the reference values.

use crate::core::{parse_firmware_log, Evidence, Finding};
use measure::pcr::PcrBanks;
use measure::tpm2::VerifiedQuote;
use policy::appraise::{self as pa, VerifiedWarrantLog, WarrantLog};
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
    let verified = measure::eventlog::replay::verify(&log, &expected).map_err(|e| {
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
        Finding::fail(
            "warrant-log",
            format!("Warrant's measurement log does not replay to the quoted PCRs: {e}"),
        )
    })?;
    findings.push(Finding::pass(
        "warrant-log",
        format!("{} records replay to the quoted PCR 15", records.len()),
    ));
    let proven = pa::Evidence {
        quoted,
        firmware_log: Some(&verified),
        warrant_log: &warrant,
        ima: None,
    };
    Ok(then(&proven))
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
