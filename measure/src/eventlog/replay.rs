//! Replay of a firmware event log into PCR banks, comparison with expected PCR values, and the
//! named list of firmware quirks (TCG PC Client PFP 1.06 sections 3.3.4 and 10.4).
//!
//! ## Rules
//! - Every event except `EV_NO_ACTION` is extended, `PCR := H(PCR || digest)`, into the PCR it
//!   names, in every bank the log carries (the Spec ID algorithms; SHA-1 for legacy logs).
//! - PCRs start at zero, except PCR 0, which starts at `00..00 || locality` when a
//!   `StartupLocality` `EV_NO_ACTION` event precedes the first PCR 0 extension (locality 3 when
//!   `TPM2_Startup` came from locality 3; locality 4 after an H-CRTM sequence, whose digest is
//!   the following `EV_EFI_HCRTM_EVENT`). A log with an H-CRTM event but no StartupLocality
//!   event starts PCR 0 at locality 4.
//! - A bank is only reported if every extended event carries a digest for it.
//! - Where PFP says an event's digest is the hash of its data, a digest that is not is reported
//!   as a warning (the TPM extended the digest, so replay still uses it; but the data of such
//!   an event must not be believed).
//!
//! ## Verifying only what a quote covers
//! [`verify`] replays every bank of the log, as `warrant eventlog replay --expect` shows them.
//! [`verify_quoted`] replays only the banks the expected values are in (the banks a quote
//! covered): a bank nobody compares proves nothing, and its digest checks and extensions (a
//! SHA-384 bank, say) would cost as much as the bank that matters. What it did not replay it
//! lists in [`Replay::skipped_banks`]; its warnings are those of the replayed banks (a digest
//! mismatch or a missing digest in a skipped bank is not looked for, so not reported).
//!
//! ## Quirks
//! Real firmware and kernels produce logs that do not replay as the specification says. The
//! ways Warrant knows are the [`Quirk`] list. A quirk is tried only when a plain replay
//! disagrees with the expected values, the smallest set of quirks that makes every expected
//! value match is used, and the result reports it. A verified log exposes the events *as the
//! quirks corrected them*, so policy sees exactly what the TPM recorded.

use super::decode::{measured_bytes, measured_bytes_quirks, DecodeError, DigestQuirk, EventData};
use super::noaction::STARTUP_LOCALITY;
use super::{Event, EventDigest, EventLog, EventType};
use crate::alg::HashAlg;
use crate::pcr::PcrBanks;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A known way in which real logs deviate from what the TPM recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quirk {
    /// The log lacks the two `EV_EFI_ACTION` events PFP 10.4.4 requires in PCR 5 at
    /// `ExitBootServices()` ("Exit Boot Services Invocation" and "Exit Boot Services Returned
    /// with Success"): firmware extended them after the OS had copied the log (Linux before it
    /// read the TCG2 Final Events table). The quirk appends both events to PCR 5.
    MissingExitBootServices,
    /// The log ends with a second copy of its last events: Linux 5.3 and 5.4 appended the whole
    /// TCG2 Final Events table, whose events the main log already held (fixed in Linux 5.5,
    /// "tpm: Don't duplicate events from the final event log in the TCG2 log"). The quirk drops
    /// the repeated copy.
    DuplicatedFinalEvents,
}

impl Quirk {
    /// Every quirk Warrant knows, in the order they are tried.
    pub const ALL: [Quirk; 2] = [Quirk::MissingExitBootServices, Quirk::DuplicatedFinalEvents];

    pub fn name(self) -> &'static str {
        match self {
            Quirk::MissingExitBootServices => "missing-exit-boot-services",
            Quirk::DuplicatedFinalEvents => "duplicated-final-events",
        }
    }
}

/// A quirk applied to a replay, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedQuirk {
    pub name: Quirk,
    /// Numbers of the events the quirk added (numbered after the log's last event) or removed.
    pub events: Vec<usize>,
    pub description: String,
}

/// Something worth a reader's attention that does not stop the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReplayWarning {
    /// The event's digest is not the hash of its data, where PFP says it must be.
    DigestMismatch {
        event: usize,
        pcr: u32,
        event_type: EventType,
        algorithm: HashAlg,
    },
    /// The event's digest is not the hash PFP prescribes, but the hash a known firmware or
    /// boot-loader deviation computes (see [`DigestQuirk`]): the data is consistent with the
    /// digest, by a documented rule.
    DigestRule {
        event: usize,
        event_type: EventType,
        rule: DigestQuirk,
    },
    /// The event has no digest for a bank of the log, so the bank cannot be replayed.
    MissingDigest { event: usize, algorithm: HashAlg },
    /// The log carries a bank Warrant cannot compute; it is not replayed.
    UnsupportedBank { algorithm_id: u16 },
    /// An event type not in PFP 1.06; its digest is still extended.
    UnknownEventType { event: usize, event_type: u32 },
    /// The event's data does not decode as its type requires.
    UndecodableEvent { event: usize, error: String },
    /// An `EV_SEPARATOR` other than the normal `00000000`: the firmware signalled an error.
    ErrorSeparator { event: usize, pcr: u32 },
    /// A StartupLocality event after PCR 0 was first extended, or a second one: ignored.
    IgnoredStartupLocality { event: usize },
    /// A StartupLocality value other than 0, 3 or 4.
    UnusualStartupLocality { event: usize, locality: u8 },
}

/// The PCR values an event log replays to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// Only PCRs that at least one event extended.
    pub banks: PcrBanks,
    /// PCR 0's starting locality.
    pub startup_locality: u8,
    /// The banks replayed: every bank of the log that Warrant can compute and for which every
    /// extended event has a digest (even if no event extended any PCR); from [`verify_quoted`],
    /// only those of them it was asked about.
    #[serde(skip)]
    pub replayed_banks: Vec<HashAlg>,
    /// Banks of the log that [`verify_quoted`] was not asked about and did not replay (always
    /// empty from [`replay`], [`replay_with`] and [`verify`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_banks: Vec<HashAlg>,
    pub quirks: Vec<AppliedQuirk>,
    pub warnings: Vec<ReplayWarning>,
}

/// The banks a log carries and that Warrant can compute, with warnings for the others.
fn log_banks(log: &EventLog, warnings: &mut Vec<ReplayWarning>) -> Vec<HashAlg> {
    match &log.spec_id {
        None => vec![HashAlg::Sha1],
        Some(spec) => spec
            .algorithms
            .iter()
            .filter_map(|a| {
                if a.algorithm.is_none() {
                    warnings.push(ReplayWarning::UnsupportedBank {
                        algorithm_id: a.algorithm_id,
                    });
                }
                a.algorithm
            })
            .collect(),
    }
}

/// Replays the log exactly as recorded: no quirks.
pub fn replay(log: &EventLog) -> Replay {
    replay_events(log, &log.events, Vec::new(), None).0
}

/// Replays the log with `quirks` applied. Quirks that do not apply to this log change nothing
/// and are not reported.
pub fn replay_with(log: &EventLog, quirks: &[Quirk]) -> Replay {
    let (events, applied) = apply_quirks(log, quirks);
    replay_events(log, &events, applied, None).0
}

/// PCR 0's starting locality, from the first StartupLocality event before any PCR 0 extension
/// (or 4 when an H-CRTM event is present without one).
fn startup_locality(events: &[Event], warnings: &mut Vec<ReplayWarning>) -> u8 {
    let mut locality = None;
    let mut pcr0_extended = false;
    for ev in events.iter().filter(|e| e.pcr == 0) {
        if ev.event_type != EventType::EV_NO_ACTION {
            pcr0_extended = true;
            continue;
        }
        if !ev.data.starts_with(STARTUP_LOCALITY) {
            continue;
        }
        match ev.decode() {
            Ok(EventData::StartupLocality(s)) if locality.is_none() && !pcr0_extended => {
                if !matches!(s.locality, 0 | 3 | 4) {
                    warnings.push(ReplayWarning::UnusualStartupLocality {
                        event: ev.number,
                        locality: s.locality,
                    });
                }
                locality = Some(s.locality);
            }
            _ => warnings.push(ReplayWarning::IgnoredStartupLocality { event: ev.number }),
        }
    }
    locality.unwrap_or_else(|| {
        let hcrtm = events
            .iter()
            .any(|e| e.event_type == EventType::EV_EFI_HCRTM_EVENT);
        if hcrtm {
            4
        } else {
            0
        }
    })
}

/// Replays `events` in the log's banks, or only in those of them listed in `only`. Returns the
/// replay and every event's decoded data (in `events` order), which the replay decodes anyway
/// for its warnings and a verified log keeps for policy.
fn replay_events(
    log: &EventLog,
    events: &[Event],
    quirks: Vec<AppliedQuirk>,
    only: Option<&[HashAlg]>,
) -> (Replay, Vec<Result<EventData, DecodeError>>) {
    let mut warnings = Vec::new();
    let (banks, skipped_banks): (Vec<HashAlg>, Vec<HashAlg>) = log_banks(log, &mut warnings)
        .into_iter()
        .partition(|alg| only.is_none_or(|only| only.contains(alg)));
    let locality = startup_locality(events, &mut warnings);
    let mut decoded = Vec::with_capacity(events.len());
    let mut values: BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
    let mut incomplete: Vec<HashAlg> = Vec::new();

    for ev in events {
        if let EventType::Unknown(t) = ev.event_type {
            warnings.push(ReplayWarning::UnknownEventType {
                event: ev.number,
                event_type: t,
            });
        }
        let data = ev.decode();
        if let Err(e) = &data {
            warnings.push(ReplayWarning::UndecodableEvent {
                event: ev.number,
                error: e.to_string(),
            });
        }
        decoded.push(data);
        if ev.event_type == EventType::EV_NO_ACTION {
            continue;
        }
        if ev.event_type == EventType::EV_SEPARATOR && ev.data != [0, 0, 0, 0] {
            warnings.push(ReplayWarning::ErrorSeparator {
                event: ev.number,
                pcr: ev.pcr,
            });
        }
        let measured = measured_bytes(ev.event_type, ev.pcr, &ev.data);
        for &alg in &banks {
            if incomplete.contains(&alg) {
                continue;
            }
            let Some(digest) = ev.digest(alg) else {
                warnings.push(ReplayWarning::MissingDigest {
                    event: ev.number,
                    algorithm: alg,
                });
                incomplete.push(alg);
                continue;
            };
            if let Some(bytes) = &measured {
                if alg.hash(bytes) != digest {
                    let w = digest_warning(ev, alg, digest);
                    // A rule explains the event in every bank: say so once.
                    if !(matches!(w, ReplayWarning::DigestRule { .. }) && warnings.contains(&w)) {
                        warnings.push(w);
                    }
                }
            }
            let pcr = values
                .entry(alg)
                .or_default()
                .entry(ev.pcr)
                .or_insert_with(|| reset_value(alg, ev.pcr, locality));
            alg.extend(pcr, digest);
        }
    }
    let mut out = PcrBanks::new();
    for (alg, pcrs) in values {
        if incomplete.contains(&alg) {
            continue;
        }
        for (pcr, value) in pcrs {
            out.set(alg, pcr, value);
        }
    }
    let replayed_banks = banks
        .into_iter()
        .filter(|a| !incomplete.contains(a))
        .collect();
    let replay = Replay {
        banks: out,
        startup_locality: locality,
        replayed_banks,
        skipped_banks,
        quirks,
        warnings,
    };
    (replay, decoded)
}

/// The warning for an event whose digest is not the hash of its [`measured_bytes`]: a named
/// deviation when one explains the digest, a mismatch otherwise.
fn digest_warning(ev: &Event, alg: HashAlg, digest: &[u8]) -> ReplayWarning {
    measured_bytes_quirks(ev.event_type, ev.pcr, &ev.data)
        .into_iter()
        .find(|(_, bytes)| alg.hash(bytes) == digest)
        .map_or(
            ReplayWarning::DigestMismatch {
                event: ev.number,
                pcr: ev.pcr,
                event_type: ev.event_type,
                algorithm: alg,
            },
            |(rule, _)| ReplayWarning::DigestRule {
                event: ev.number,
                event_type: ev.event_type,
                rule,
            },
        )
}

/// A PCR's value after TPM2_Startup: zeros, except PCR 0's last byte, which is the locality.
pub fn reset_value(alg: HashAlg, pcr: u32, locality: u8) -> Vec<u8> {
    let mut v = alg.zero();
    if pcr == 0 {
        if let Some(last) = v.last_mut() {
            *last = locality;
        }
    }
    v
}

const EBS_INVOCATION: &[u8] = b"Exit Boot Services Invocation";
const EBS_SUCCESS: &[u8] = b"Exit Boot Services Returned with Success";

fn apply_quirks(log: &EventLog, quirks: &[Quirk]) -> (Vec<Event>, Vec<AppliedQuirk>) {
    let mut events = log.events.clone();
    let mut applied = Vec::new();
    let mut next_number = events.last().map_or(1, |e| e.number + 1);
    for &quirk in quirks {
        match quirk {
            Quirk::DuplicatedFinalEvents => {
                if let Some(k) = duplicated_tail(&events) {
                    let removed: Vec<usize> = events
                        .split_off(events.len() - k)
                        .iter()
                        .map(|e| e.number)
                        .collect();
                    applied.push(AppliedQuirk {
                        name: quirk,
                        description: format!(
                            "dropped {k} events that repeat the {k} before them (Linux 5.3/5.4 final-events duplication)"
                        ),
                        events: removed,
                    });
                }
            }
            Quirk::MissingExitBootServices => {
                let has_ebs = events.iter().any(|e| {
                    e.pcr == 5
                        && e.event_type == EventType::EV_EFI_ACTION
                        && e.data == EBS_INVOCATION
                });
                if has_ebs {
                    continue;
                }
                let mut added = Vec::new();
                for text in [EBS_INVOCATION, EBS_SUCCESS] {
                    events.push(synthetic_action(log, next_number, 5, text));
                    added.push(next_number);
                    next_number += 1;
                }
                applied.push(AppliedQuirk {
                    name: quirk,
                    description: "appended the two ExitBootServices EV_EFI_ACTION events to PCR 5"
                        .to_string(),
                    events: added,
                });
            }
        }
    }
    (events, applied)
}

/// Most events the duplicated-final-events quirk will consider repeated. The TCG2 Final Events
/// table holds only what firmware logged between the OS's `GetEventLog()` and
/// `ExitBootServices()`: a few dozen events in practice. The cap keeps the search bounded
/// (at most `MAX_DUPLICATED_TAIL²/2` event comparisons) whatever the log.
pub const MAX_DUPLICATED_TAIL: usize = 256;

/// The largest `k` (at most [`MAX_DUPLICATED_TAIL`]) such that the last `k` events repeat the
/// `k` events just before them.
fn duplicated_tail(events: &[Event]) -> Option<usize> {
    let n = events.len();
    (1..=(n / 2).min(MAX_DUPLICATED_TAIL)).rev().find(|&k| {
        let (Some(a), Some(b)) = (events.get(n - 2 * k..n - k), events.get(n - k..)) else {
            return false;
        };
        a.iter().zip(b).all(|(x, y)| {
            x.pcr == y.pcr
                && x.event_type == y.event_type
                && x.digests == y.digests
                && x.data == y.data
        })
    })
}

/// An `EV_EFI_ACTION` event with the digests the firmware would have logged for `text`.
fn synthetic_action(log: &EventLog, number: usize, pcr: u32, text: &[u8]) -> Event {
    let mut ignored = Vec::new();
    let digests = log_banks(log, &mut ignored)
        .into_iter()
        .map(|alg| EventDigest {
            algorithm_id: alg.tpm_alg_id(),
            algorithm: Some(alg),
            digest: alg.hash(text),
        })
        .collect();
    Event {
        number,
        offset: 0,
        pcr,
        event_type: EventType::EV_EFI_ACTION,
        digests,
        data: text.to_vec(),
        data_offset: 0,
    }
}

/// One expected PCR value the replay did not reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrMismatch {
    pub algorithm: HashAlg,
    pub pcr: u32,
    #[serde(serialize_with = "crate::serde_hex")]
    pub expected: Vec<u8>,
    /// What the log replays to; `None` when the log has no digests for this bank.
    #[serde(serialize_with = "serde_opt_hex")]
    pub replayed: Option<Vec<u8>>,
    /// The events that extended this PCR, in order (number, type). The hash chain cannot say
    /// which of them differs from what the TPM saw; the last one is where the chain ends.
    pub events: Vec<(usize, EventType)>,
}

fn serde_opt_hex<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

/// Why a log does not prove the expected PCR values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReplayError {
    /// No expected value was given: nothing would be proven, so nothing is verified.
    #[error("no expected PCR values to compare with")]
    NothingToCompare,
    /// At least one expected value differs from the plain replay, and no set of quirks fixes it.
    #[error("{}", describe_mismatch(.mismatches))]
    Mismatch {
        /// Every disagreeing value of the plain replay, the first (lowest PCR) first.
        mismatches: Vec<PcrMismatch>,
        /// The quirks that applied to this log and were tried without success.
        quirks_tried: Vec<Quirk>,
    },
}

fn describe_mismatch(mismatches: &[PcrMismatch]) -> String {
    let Some(m) = mismatches.first() else {
        return "replay disagrees".to_string();
    };
    let replayed = m.replayed.as_ref().map_or_else(
        || format!("the log has no {} digests", m.algorithm),
        |v| format!("replayed {}", hex::encode(v)),
    );
    let last = m.events.last().map_or_else(
        || "no event of the log extends it".to_string(),
        |(n, t)| {
            let list: Vec<String> = m.events.iter().map(|(n, _)| n.to_string()).collect();
            format!(
                "last extended by event {n} ({t}); events {}",
                list.join(", ")
            )
        },
    );
    format!(
        "PCR {} ({}) disagrees: expected {}, {}; {}{}",
        m.pcr,
        m.algorithm,
        hex::encode(&m.expected),
        replayed,
        last,
        match mismatches.len() {
            1 => String::new(),
            2 => " (and 1 more disagreeing value)".to_string(),
            n => format!(" (and {} more disagreeing values)", n - 1),
        }
    )
}

/// A log whose replay reproduced every expected PCR value. Only this type exposes events to
/// policy: they are the events the TPM recorded (after any reported quirk).
#[derive(Debug, Clone)]
pub struct VerifiedLog<'a> {
    log: &'a EventLog,
    /// The log's own events (borrowed) when no quirk applied, else the corrected copy.
    events: Cow<'a, [Event]>,
    /// `events[i].decode()`, decoded once by the replay.
    decoded: Vec<Result<EventData, DecodeError>>,
    replay: Replay,
}

impl<'a> VerifiedLog<'a> {
    /// The events as the TPM recorded them (quirks applied).
    pub fn events(&self) -> &[Event] {
        &self.events
    }
    /// The decoded data of each of [`VerifiedLog::events`], in the same order: what
    /// [`Event::decode`] returns, computed once.
    pub fn decoded(&self) -> &[Result<EventData, DecodeError>] {
        &self.decoded
    }
    /// The events with their decoded data.
    pub fn events_decoded(
        &self,
    ) -> impl Iterator<Item = (&Event, &Result<EventData, DecodeError>)> + '_ {
        self.events.iter().zip(&self.decoded)
    }
    pub fn replay(&self) -> &Replay {
        &self.replay
    }
    pub fn log(&self) -> &'a EventLog {
        self.log
    }
}

fn mismatches(events: &[Event], replay: &Replay, expected: &PcrBanks) -> Vec<PcrMismatch> {
    let mut out = Vec::new();
    for (alg, pcrs) in expected.banks() {
        for (&pcr, want) in pcrs {
            let got = replay.replayed_banks.contains(&alg).then(|| {
                replay.banks.get(alg, pcr).map_or_else(
                    || reset_value(alg, pcr, replay.startup_locality),
                    <[u8]>::to_vec,
                )
            });
            if got.as_deref() != Some(want.as_slice()) {
                out.push(PcrMismatch {
                    algorithm: alg,
                    pcr,
                    expected: want.clone(),
                    replayed: got,
                    events: events
                        .iter()
                        .filter(|e| e.pcr == pcr && e.event_type != EventType::EV_NO_ACTION)
                        .map(|e| (e.number, e.event_type))
                        .collect(),
                });
            }
        }
    }
    out.sort_by_key(|m| (m.pcr, m.algorithm));
    out
}

/// Replays `log` and checks every value in `expected`. When the plain replay disagrees, each
/// subset of [`Quirk::ALL`] that applies to the log is tried, smallest first; the first that
/// reproduces every expected value is used and reported. Fails closed: an empty `expected`, a
/// bank the log lacks, or any remaining difference is an error.
pub fn verify<'a>(log: &'a EventLog, expected: &PcrBanks) -> Result<VerifiedLog<'a>, ReplayError> {
    verify_in(log, expected, None)
}

/// [`verify`], replaying only the banks `expected` has values in (the quoted banks, for a
/// verifier): the verdict and the verified events are those of [`verify`], which compares
/// only those banks too; the result's [`Replay`] lacks the other banks' values and warnings
/// and names them in [`Replay::skipped_banks`].
pub fn verify_quoted<'a>(
    log: &'a EventLog,
    expected: &PcrBanks,
) -> Result<VerifiedLog<'a>, ReplayError> {
    let banks: Vec<HashAlg> = expected.banks().map(|(alg, _)| alg).collect();
    verify_in(log, expected, Some(&banks))
}

fn verify_in<'a>(
    log: &'a EventLog,
    expected: &PcrBanks,
    only: Option<&[HashAlg]>,
) -> Result<VerifiedLog<'a>, ReplayError> {
    if expected.is_empty() {
        return Err(ReplayError::NothingToCompare);
    }
    let (plain, decoded) = replay_events(log, &log.events, Vec::new(), only);
    let first = mismatches(&log.events, &plain, expected);
    if first.is_empty() {
        return Ok(VerifiedLog {
            log,
            events: Cow::Borrowed(&log.events),
            decoded,
            replay: plain,
        });
    }
    let mut tried = Vec::new();
    let n = Quirk::ALL.len();
    let mut subsets: Vec<Vec<Quirk>> = (1u32..(1 << n))
        .map(|mask| {
            Quirk::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, q)| *q)
                .collect()
        })
        .collect();
    subsets.sort_by_key(Vec::len);
    for subset in subsets {
        let (events, applied) = apply_quirks(log, &subset);
        // Only subsets whose every quirk changes something are distinct candidates.
        if applied.len() != subset.len() {
            continue;
        }
        for q in &subset {
            if !tried.contains(q) {
                tried.push(*q);
            }
        }
        let (r, decoded) = replay_events(log, &events, applied, only);
        if mismatches(&events, &r, expected).is_empty() {
            return Ok(VerifiedLog {
                log,
                events: Cow::Owned(events),
                decoded,
                replay: r,
            });
        }
    }
    Err(ReplayError::Mismatch {
        mismatches: first,
        quirks_tried: tried,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test code
    use super::*;

    /// Every real log with expected values, verified against each quoted bank alone and
    /// against all of them: [`verify_quoted`] gives [`verify`]'s verdict, events and values in
    /// the quoted banks, and only drops what belongs to the other banks.
    #[test]
    fn verify_quoted_agrees_with_verify_on_the_quoted_banks() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/eventlogs");
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let manifest: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        let mut compared = 0;
        for (name, entry) in &manifest {
            let log = EventLog::parse(&std::fs::read(dir.join(name)).unwrap()).unwrap();
            let all = PcrBanks::from_json(&entry["pcrs"]).unwrap();
            let mut cases = vec![all.clone()];
            for (alg, pcrs) in all.banks() {
                let mut one = PcrBanks::new();
                for (pcr, v) in pcrs {
                    one.set(alg, *pcr, v.clone());
                }
                cases.push(one);
            }
            for expected in cases {
                let quoted: Vec<HashAlg> = expected.banks().map(|(a, _)| a).collect();
                let (full, part) = match (verify(&log, &expected), verify_quoted(&log, &expected)) {
                    (Ok(full), Ok(part)) => (full, part),
                    (Err(a), Err(b)) => {
                        assert_eq!(a, b, "{name} {quoted:?}");
                        continue;
                    }
                    (a, b) => panic!("{name} {quoted:?}: {:?} vs {:?}", a.err(), b.err()),
                };
                compared += 1;
                assert_eq!(full.events(), part.events(), "{name}");
                assert_eq!(full.decoded(), part.decoded(), "{name}");
                let decoded: Vec<_> = part.events().iter().map(Event::decode).collect();
                assert_eq!(part.decoded(), decoded.as_slice(), "{name}");
                let (f, p) = (full.replay(), part.replay());
                assert_eq!(f.quirks, p.quirks, "{name}");
                assert_eq!(f.startup_locality, p.startup_locality, "{name}");
                assert!(f.skipped_banks.is_empty());
                for alg in &f.replayed_banks {
                    if quoted.contains(alg) {
                        assert!(p.replayed_banks.contains(alg), "{name} {alg}");
                        assert_eq!(f.banks.bank(*alg), p.banks.bank(*alg), "{name} {alg}");
                    } else {
                        assert!(p.skipped_banks.contains(alg), "{name} {alg}");
                        assert!(p.banks.bank(*alg).is_none(), "{name} {alg}");
                    }
                }
                assert!(p.replayed_banks.iter().all(|a| quoted.contains(a)));
                // Warnings: the same, less those about a skipped bank.
                let about_skipped = |w: &ReplayWarning| match w {
                    ReplayWarning::DigestMismatch { algorithm, .. }
                    | ReplayWarning::MissingDigest { algorithm, .. } => {
                        p.skipped_banks.contains(algorithm)
                    }
                    _ => false,
                };
                let kept: Vec<&ReplayWarning> =
                    f.warnings.iter().filter(|w| !about_skipped(w)).collect();
                assert_eq!(kept, p.warnings.iter().collect::<Vec<_>>(), "{name}");
            }
        }
        assert!(compared >= 40, "{compared}");
    }
}
