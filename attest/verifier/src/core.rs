//! The pure attestation core: from a node's evidence to a verdict with its findings. No
//! sockets, no clock, no storage: the service passes in what it knows (the node's AK, the
//! challenge it issued, the last clock it accepted) and records what comes out.
//!
//! Checks, in order; the first that fails ends the attestation (later ones would rest on
//! evidence that is not proven):
//! 1. `size`: each log within its limit;
//! 2. `quote`: the quote parses, is signed by the node's activated AK, carries this challenge's
//!    nonce (`nonce`), and its PCR digest equals the reported values (`pcr-digest`);
//! 3. `pcr-selection`: the quote covers every PCR the reference values need;
//! 4. `clock`: the TPM did not reboot between challenge and quote, and its clock did not go
//!    back since the last accepted quote;
//! 5. `firmware-log`: the firmware event log replays to the quoted PCRs;
//! 6. `warrant-log`: Warrant's own log replays to the quoted PCR 15;
//! 7. `ima-log` (when the policy has one): the IMA list replays to the quoted PCR 10;
//! 8. appraisal of the proven events against the reference values (`policy::appraise`).

use measure::eventlog::EventLog;
use measure::pcr::PcrBanks;
use measure::tpm2::{ClockInfo, Quote, QuoteError, VerifiedQuote};
use serde::{Deserialize, Serialize};

/// Largest firmware event log accepted (real ones are well under 200 KiB).
pub const MAX_FIRMWARE_LOG: usize = 4 * 1024 * 1024;
/// Largest Warrant measurement log accepted.
pub const MAX_WARRANT_LOG: usize = 1024 * 1024;
/// Largest IMA list accepted.
pub const MAX_IMA_LOG: usize = 12 * 1024 * 1024;

/// One check and its outcome, as the node, the audit trail and the watch stream see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier of the check (e.g. `nonce`, `clock`, `pcr-value`).
    pub check: String,
    pub passed: bool,
    pub expected: String,
    pub actual: String,
    pub reason: String,
}

impl Finding {
    pub fn pass(check: &str, reason: impl Into<String>) -> Finding {
        Finding {
            check: check.to_string(),
            passed: true,
            expected: String::new(),
            actual: String::new(),
            reason: reason.into(),
        }
    }

    pub fn fail(check: &str, reason: impl Into<String>) -> Finding {
        Finding {
            check: check.to_string(),
            passed: false,
            expected: String::new(),
            actual: String::new(),
            reason: reason.into(),
        }
    }

    fn with(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Finding {
        self.expected = expected.into();
        self.actual = actual.into();
        self
    }
}

/// What a node sent in answer to a challenge.
pub struct Evidence<'a> {
    pub attest: &'a [u8],
    pub signature: &'a [u8],
    pub pcrs: &'a PcrBanks,
    pub firmware_log: &'a [u8],
    pub warrant_log: &'a [u8],
    pub ima_log: &'a [u8],
}

/// What the verifier knows when the evidence arrives.
pub struct Expectation<'a> {
    /// The node's activated AK (`TPM2B_PUBLIC`), from the verifier's own records.
    pub ak_public: &'a [u8],
    /// The nonce the verifier issued (already taken, single use, by the caller).
    pub nonce: &'a [u8],
    /// The TPM clock the node showed when it asked for the nonce.
    pub challenge_clock: ClockInfo,
    /// The clock of the last quote the verifier accepted from this TPM, if any.
    pub last_clock: Option<ClockInfo>,
    pub refs: &'a policy::refvalues::ReferenceValues,
}

/// The outcome of one attestation.
#[derive(Debug, Clone)]
pub struct Report {
    pub admitted: bool,
    pub findings: Vec<Finding>,
    /// The quote's clock, when the quote verified (the caller stores it as the last clock).
    pub clock: Option<ClockInfo>,
}

impl Report {
    fn denied(mut findings: Vec<Finding>, last: Finding, clock: Option<ClockInfo>) -> Report {
        findings.push(last);
        Report {
            admitted: false,
            findings,
            clock,
        }
    }
}

/// Maps a quote error to the check it failed, with a precise reason.
pub fn quote_finding(e: &QuoteError) -> Finding {
    let check = match e {
        QuoteError::NonceMismatch => "nonce",
        QuoteError::PcrDigestMismatch { .. } => "pcr-digest",
        QuoteError::PcrSelectionMismatch { .. } => "pcr-selection",
        QuoteError::BadSignature => "quote-signature",
        _ => "quote",
    };
    let reason = match e {
        QuoteError::NonceMismatch => {
            "the quote does not carry this challenge's nonce (a replayed or foreign quote)"
                .to_string()
        }
        QuoteError::BadSignature => {
            "the quote's signature does not verify with this node's activated AK (signed by \
             another key)"
                .to_string()
        }
        other => other.to_string(),
    };
    Finding::fail(check, reason)
}

/// Checks a clock against the last accepted one: it never goes back.
pub fn clock_not_back(now: ClockInfo, last: Option<ClockInfo>) -> Result<(), Finding> {
    let Some(last) = last else { return Ok(()) };
    let back = |what: &str, was: String, is: String| {
        Err(Finding::fail(
            "clock",
            format!(
                "the TPM's {what} went back from {was} to {is} since the last accepted quote \
                 (a rolled-back or replayed TPM state)"
            ),
        )
        .with(format!(">= {was}"), is))
    };
    if now.reset_count < last.reset_count {
        return back(
            "resetCount",
            last.reset_count.to_string(),
            now.reset_count.to_string(),
        );
    }
    if now.reset_count == last.reset_count {
        if now.restart_count < last.restart_count {
            return back(
                "restartCount",
                last.restart_count.to_string(),
                now.restart_count.to_string(),
            );
        }
        if now.clock < last.clock {
            return back(
                "clock",
                format!("{} ms", last.clock),
                format!("{} ms", now.clock),
            );
        }
    }
    Ok(())
}

/// Checks the evidence quote's clock against the one shown at challenge time.
fn clock_since_challenge(quote: ClockInfo, challenge: ClockInfo) -> Result<(), Finding> {
    if quote.reset_count != challenge.reset_count || quote.restart_count != challenge.restart_count
    {
        return Err(Finding::fail(
            "clock",
            format!(
                "the TPM rebooted between challenge and quote (resetCount {} -> {}, \
                 restartCount {} -> {}): evidence from two boots proves neither",
                challenge.reset_count,
                quote.reset_count,
                challenge.restart_count,
                quote.restart_count
            ),
        )
        .with(
            format!(
                "resetCount {}, restartCount {}",
                challenge.reset_count, challenge.restart_count
            ),
            format!(
                "resetCount {}, restartCount {}",
                quote.reset_count, quote.restart_count
            ),
        ));
    }
    if quote.clock < challenge.clock {
        return Err(Finding::fail(
            "clock",
            format!(
                "the quote's clock ({} ms) is before the challenge's ({} ms)",
                quote.clock, challenge.clock
            ),
        ));
    }
    Ok(())
}

/// Verifies a quote and returns it, or the finding that refuses it.
pub fn verify_quote(
    attest: &[u8],
    signature: &[u8],
    ak_public: &[u8],
    nonce: &[u8],
    pcrs: &PcrBanks,
) -> Result<VerifiedQuote, Finding> {
    Quote::verify(attest, signature, ak_public, nonce, pcrs).map_err(|e| quote_finding(&e))
}

/// Runs every check on `evidence`; see the module documentation.
pub fn attest(expect: &Expectation<'_>, evidence: &Evidence<'_>) -> Report {
    let mut findings = Vec::new();
    for (what, len, max) in [
        (
            "firmware event log",
            evidence.firmware_log.len(),
            MAX_FIRMWARE_LOG,
        ),
        (
            "measurement log",
            evidence.warrant_log.len(),
            MAX_WARRANT_LOG,
        ),
        ("IMA list", evidence.ima_log.len(), MAX_IMA_LOG),
    ] {
        if len > max {
            return Report::denied(
                findings,
                Finding::fail("size", format!("the {what} has {len} bytes, over {max}"))
                    .with(format!("<= {max}"), len.to_string()),
                None,
            );
        }
    }
    let quote = match verify_quote(
        evidence.attest,
        evidence.signature,
        expect.ak_public,
        expect.nonce,
        evidence.pcrs,
    ) {
        Ok(q) => q,
        Err(f) => return Report::denied(findings, f, None),
    };
    findings.push(Finding::pass(
        "quote",
        "signed by the node's activated AK over this challenge's nonce; PCR digest matches",
    ));
    let clock = quote.clock_info();

    // Every PCR the reference values need must be in the quote.
    for (bank, pcrs) in expect.refs.quote_selection() {
        for pcr in pcrs {
            if quote.pcrs().get(bank, pcr).is_none() {
                return Report::denied(
                    findings,
                    Finding::fail(
                        "pcr-selection",
                        format!("the quote does not cover PCR {pcr} of bank {bank}"),
                    ),
                    Some(clock),
                );
            }
        }
    }

    if let Err(f) = clock_since_challenge(clock, expect.challenge_clock)
        .and_then(|()| clock_not_back(clock, expect.last_clock))
    {
        return Report::denied(findings, f, Some(clock));
    }
    findings.push(Finding::pass(
        "clock",
        format!(
            "resetCount {}, restartCount {}, clock {} ms: same boot as the challenge, never back",
            clock.reset_count, clock.restart_count, clock.clock
        ),
    ));

    match crate::appraisal::appraise(expect.refs, &quote, evidence, &mut findings) {
        Ok(()) => {}
        Err(f) => return Report::denied(findings, f, Some(clock)),
    }
    let admitted = findings.iter().all(|f| f.passed);
    Report {
        admitted,
        findings,
        clock: Some(clock),
    }
}

/// Parses the firmware event log, with a finding when it cannot be read.
pub fn parse_firmware_log(bytes: &[u8]) -> Result<EventLog, Finding> {
    EventLog::parse(bytes).map_err(|e| {
        Finding::fail(
            "firmware-log",
            format!("the firmware event log does not parse: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    fn clock(reset: u32, restart: u32, ms: u64) -> ClockInfo {
        ClockInfo {
            clock: ms,
            reset_count: reset,
            restart_count: restart,
            safe: true,
        }
    }

    #[test]
    fn a_clock_may_move_forward_or_reboot_but_never_go_back() {
        let last = Some(clock(5, 2, 1_000));
        assert!(clock_not_back(clock(5, 2, 1_000), last).is_ok());
        assert!(clock_not_back(clock(5, 2, 2_000), last).is_ok());
        assert!(clock_not_back(clock(5, 3, 1_200), last).is_ok(), "a resume");
        // Clock is saved on an orderly shutdown: after a resume it may not be earlier.
        assert!(clock_not_back(clock(5, 3, 10), last).is_err());
        assert!(clock_not_back(clock(6, 0, 10), last).is_ok(), "a reboot");
        assert!(clock_not_back(clock(0, 0, 0), None).is_ok(), "first quote");
        for (now, what) in [
            (clock(4, 9, 9_999), "resetCount"),
            (clock(5, 1, 9_999), "restartCount"),
            (clock(5, 2, 999), "clock"),
        ] {
            let f = clock_not_back(now, last).unwrap_err();
            assert_eq!(f.check, "clock");
            assert!(!f.passed);
            assert!(
                f.reason.contains(&format!("{what} went back")),
                "{}",
                f.reason
            );
        }
    }

    #[test]
    fn the_quote_must_come_from_the_challenged_boot() {
        let at_challenge = clock(5, 2, 1_000);
        assert!(clock_since_challenge(clock(5, 2, 1_500), at_challenge).is_ok());
        let f = clock_since_challenge(clock(6, 0, 50), at_challenge).unwrap_err();
        assert!(f.reason.contains("rebooted between challenge and quote"));
        let f = clock_since_challenge(clock(5, 3, 1_500), at_challenge).unwrap_err();
        assert!(f.reason.contains("rebooted"));
        let f = clock_since_challenge(clock(5, 2, 500), at_challenge).unwrap_err();
        assert!(f.reason.contains("before the challenge"));
    }

    #[test]
    fn quote_errors_name_their_check() {
        assert_eq!(quote_finding(&QuoteError::NonceMismatch).check, "nonce");
        assert_eq!(
            quote_finding(&QuoteError::BadSignature).check,
            "quote-signature"
        );
        assert_eq!(
            quote_finding(&QuoteError::NotAQuote { tag: 0x8017 }).check,
            "quote"
        );
    }
}
