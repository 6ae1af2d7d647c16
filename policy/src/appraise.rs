//! Appraisal: comparing a node's *verified* evidence with [`ReferenceValues`], and capturing
//! reference values from a golden node.
//!
//! ## Inputs and what makes them trustworthy
//! - `quoted`: the PCR values of a [`VerifiedQuote`] ([`VerifiedQuote::pcrs`]). Only values a
//!   verified quote covers may reach [`Evidence::quoted`]; [`Evidence::from_quote`] makes that
//!   the easy path.
//! - The firmware event log, as a [`VerifiedLog`]: the verifier core replayed it against the
//!   quoted values of [`ReferenceValues::firmware_log_pcrs`]. Appraisal checks that again
//!   (`firmware-log`) in the appraised bank, then reads only events of those PCRs, and reads an
//!   event's *data* (a variable, a command line) only when the event's digest is the hash of that
//!   data: anything else could be text written next to a digest the TPM never saw.
//! - Warrant's own CEL log, as a [`VerifiedWarrantLog`] made by [`WarrantLog::verify`].
//! - The IMA list, as a [`VerifiedImaList`].
//!
//! ## Fail closed
//! Every check configured in the reference values yields at least one [`Finding`]. Evidence a
//! check needs that is missing (no log, no SecureBoot variable, no root hash, no command line,
//! an event without a digest in the bank) is a failing finding, never a pass and never silence.

use crate::refvalues::{
    ImaFileDigest, ImaPolicy, ReferenceValues, BOOT_LOADER_PCR, CMDLINE_PCRS,
    DEFAULT_FIRMWARE_LOG_PCRS, FIRMWARE_PCR, SECURE_BOOT_PCR, WARRANT_PCR,
};
use measure::alg::HashAlg;
use measure::cel::{self, CelError, CelRecord, CONTENT_TYPE_WARRANT};
use measure::efi::guids::{EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE_GUID};
use measure::efi::siglist::SignatureValue;
use measure::efi::text::TextEncoding;
use measure::efi::variable::{VariableData, VariableValue};
use measure::efi::Guid;
use measure::eventlog::decode::{measured_bytes, measured_bytes_quirks, IplKind};
use measure::eventlog::replay::{reset_value, VerifiedLog};
use measure::eventlog::{DecodeError, Event, EventData, EventType};
use measure::ima::VerifiedImaList;
use measure::pcr::PcrBanks;
use measure::tpm2::VerifiedQuote;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use thiserror::Error;

// ---------------------------------------------------------------------------------------------
// Warrant's own log (TCG CEL, PCR 15)
// ---------------------------------------------------------------------------------------------

/// Prefix of a `warrant` record marking a boot phase (`phase:agent-start`).
pub const PHASE_PREFIX: &str = "phase:";
/// Prefix of a `warrant` record carrying the dm-verity root hash of the read-only root.
pub const ROOT_HASH_PREFIX: &str = "verity-root-hash:";
/// Prefix of a `warrant` record saying the kernel found a corrupted block on a dm-verity device
/// (`verity-corrupted:<device-mapper name>`): the agent measures it when `veritysetup status`
/// reports `corrupted`, and no node that measured it is ever admitted.
pub const VERITY_CORRUPTED_PREFIX: &str = "verity-corrupted:";

/// One measurement Warrant's agent made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WarrantMeasurement {
    /// `phase:<word>`.
    Phase { phase: String },
    /// `verity-root-hash:<lowercase hex>`.
    VerityRootHash {
        #[serde(serialize_with = "measure::serde_hex")]
        root_hash: Vec<u8>,
    },
    /// `verity-corrupted:<device>`: dm-verity met a block whose hash is wrong.
    VerityCorrupted { device: String },
}

/// A record of the CEL log whose PCR was quoted and matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarrantEvent {
    pub recnum: u64,
    pub pcr: u32,
    pub measurement: WarrantMeasurement,
}

/// Entry point of the CEL log check.
pub struct WarrantLog;

/// Warrant's CEL log after its replay reproduced the quoted PCR 15 (and every other quoted PCR
/// it touches). Only [`WarrantLog::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWarrantLog {
    events: Vec<WarrantEvent>,
    /// The quoted values the log was verified against, PCR 15 in every quoted bank.
    pcr15: BTreeMap<HashAlg, Vec<u8>>,
}

impl VerifiedWarrantLog {
    /// The verified records, in log order.
    pub fn events(&self) -> &[WarrantEvent] {
        &self.events
    }
    /// The dm-verity root hashes measured into PCR 15, in log order.
    pub fn root_hashes(&self) -> impl Iterator<Item = &[u8]> {
        self.events.iter().filter_map(|e| match &e.measurement {
            WarrantMeasurement::VerityRootHash { root_hash } if e.pcr == WARRANT_PCR => {
                Some(root_hash.as_slice())
            }
            _ => None,
        })
    }
    /// The dm-verity devices reported corrupted, in log order.
    pub fn corrupted_devices(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|e| match &e.measurement {
            WarrantMeasurement::VerityCorrupted { device } if e.pcr == WARRANT_PCR => {
                Some(device.as_str())
            }
            _ => None,
        })
    }
    /// The boot phases measured into PCR 15, in log order.
    pub fn phases(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|e| match &e.measurement {
            WarrantMeasurement::Phase { phase } if e.pcr == WARRANT_PCR => Some(phase.as_str()),
            _ => None,
        })
    }
}

/// Why Warrant's CEL log does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WarrantLogError {
    #[error(transparent)]
    Cel(#[from] CelError),
    #[error("record {recnum}: content type {content_type:?}, Warrant's log holds only {CONTENT_TYPE_WARRANT:?} records")]
    NotWarrantRecord { recnum: u64, content_type: String },
    #[error(
        "record {recnum}: {text:?} is none of phase:<word>, verity-root-hash:<lowercase hex>, verity-corrupted:<device>"
    )]
    UnknownMeasurement { recnum: u64, text: String },
    #[error("PCR {WARRANT_PCR} is not in the quote: Warrant's log cannot be checked")]
    Pcr15NotQuoted,
    #[error("PCR {pcr} ({bank}) is quoted as {}, the log replays to {}", hex::encode(.quoted), hex::encode(.replayed))]
    Mismatch {
        pcr: u32,
        bank: HashAlg,
        quoted: Vec<u8>,
        replayed: Vec<u8>,
    },
}

impl WarrantLog {
    /// Replays `records` (TCG CEL, Warrant's `warrant` records) and compares with `quoted`:
    /// every quoted PCR the records touch must equal its replay, and the quoted PCR 15 (in
    /// every quoted bank) must equal the replay of the records in PCR 15, all zeros when the log
    /// has none. Records of PCRs the quote does not cover (in a bank the record has a digest
    /// for) are left out of [`VerifiedWarrantLog::events`]: nothing binds them.
    pub fn verify(
        records: &[CelRecord],
        quoted: &PcrBanks,
    ) -> Result<VerifiedWarrantLog, WarrantLogError> {
        let mut decoded = Vec::with_capacity(records.len());
        for r in records {
            if r.content_type != CONTENT_TYPE_WARRANT {
                return Err(WarrantLogError::NotWarrantRecord {
                    recnum: r.recnum,
                    content_type: r.content_type.clone(),
                });
            }
            // Checks every digest against the content (and the PCR range).
            let digests = r.checked_digests()?;
            let text = r
                .content
                .get("string")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            decoded.push((r, digests, decode_measurement(r.recnum, text)?));
        }
        let replayed = cel::replay(records)?;
        let mut pcr15 = BTreeMap::new();
        for (bank, values) in quoted.banks() {
            for (&pcr, value) in values {
                let replay = replayed.get(bank, pcr);
                let expect = match (pcr, replay) {
                    (_, Some(v)) => v.to_vec(),
                    (WARRANT_PCR, None) => bank.zero(),
                    _ => continue,
                };
                if expect != *value {
                    return Err(WarrantLogError::Mismatch {
                        pcr,
                        bank,
                        quoted: value.clone(),
                        replayed: expect,
                    });
                }
                if pcr == WARRANT_PCR {
                    pcr15.insert(bank, value.clone());
                }
            }
        }
        if pcr15.is_empty() {
            return Err(WarrantLogError::Pcr15NotQuoted);
        }
        let events = decoded
            .into_iter()
            .filter(|(r, digests, _)| {
                digests
                    .iter()
                    .any(|(bank, _)| quoted.get(*bank, r.pcr).is_some())
            })
            .map(|(r, _, measurement)| WarrantEvent {
                recnum: r.recnum,
                pcr: r.pcr,
                measurement,
            })
            .collect();
        Ok(VerifiedWarrantLog { events, pcr15 })
    }
}

/// A device-mapper name as the agent measures it: 1 to 127 letters, digits, `-`, `_` and `.`,
/// not starting with `.` (no path, no space, nothing to escape in a record or a report).
pub fn is_dm_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn decode_measurement(recnum: u64, text: &str) -> Result<WarrantMeasurement, WarrantLogError> {
    let unknown = || WarrantLogError::UnknownMeasurement {
        recnum,
        text: text.chars().take(200).collect(),
    };
    if let Some(phase) = text.strip_prefix(PHASE_PREFIX) {
        let ok = !phase.is_empty()
            && phase
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        return ok
            .then(|| WarrantMeasurement::Phase {
                phase: phase.to_string(),
            })
            .ok_or_else(unknown);
    }
    if let Some(device) = text.strip_prefix(VERITY_CORRUPTED_PREFIX) {
        return is_dm_name(device)
            .then(|| WarrantMeasurement::VerityCorrupted {
                device: device.to_string(),
            })
            .ok_or_else(unknown);
    }
    if let Some(h) = text.strip_prefix(ROOT_HASH_PREFIX) {
        let lower = h
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return match hex::decode(h) {
            Ok(root_hash) if lower && !root_hash.is_empty() => {
                Ok(WarrantMeasurement::VerityRootHash { root_hash })
            }
            _ => Err(unknown()),
        };
    }
    Err(unknown())
}

// ---------------------------------------------------------------------------------------------
// Evidence, findings
// ---------------------------------------------------------------------------------------------

/// Everything appraisal looks at, each part already verified.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The quoted PCR values: [`VerifiedQuote::pcrs`] and nothing else.
    pub quoted: &'a PcrBanks,
    /// The firmware event log, verified against the quoted firmware-log PCRs.
    pub firmware_log: Option<&'a VerifiedLog<'a>>,
    pub warrant_log: &'a VerifiedWarrantLog,
    pub ima: Option<&'a VerifiedImaList>,
}

impl<'a> Evidence<'a> {
    /// Evidence whose PCR values are those of `quote`.
    pub fn from_quote(
        quote: &'a VerifiedQuote,
        firmware_log: Option<&'a VerifiedLog<'a>>,
        warrant_log: &'a VerifiedWarrantLog,
        ima: Option<&'a VerifiedImaList>,
    ) -> Self {
        Evidence {
            quoted: quote.pcrs(),
            firmware_log,
            warrant_log,
            ima,
        }
    }
}

/// The checks, with stable kebab-case ids (used in reports and audit records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// Every PCR the reference values need is quoted in the appraised bank.
    PcrSelection,
    /// The firmware log replays, in the appraised bank, to the quoted firmware-log PCRs.
    FirmwareLog,
    /// Warrant's log was verified against these quoted PCR 15 values.
    WarrantLog,
    /// A PCR's quoted value is one of the allowed values.
    PcrValue,
    /// PCR 0 firmware measurements.
    FirmwareDigest,
    /// PCR 4 `EV_EFI_BOOT_SERVICES_APPLICATION` digests.
    BootLoaderDigest,
    SecureBoot,
    Pk,
    Kek,
    Db,
    Dbx,
    RootHash,
    KernelCmdline,
    Ima,
}

impl CheckId {
    pub fn name(self) -> &'static str {
        match self {
            CheckId::PcrSelection => "pcr-selection",
            CheckId::FirmwareLog => "firmware-log",
            CheckId::WarrantLog => "warrant-log",
            CheckId::PcrValue => "pcr-value",
            CheckId::FirmwareDigest => "firmware-digest",
            CheckId::BootLoaderDigest => "boot-loader-digest",
            CheckId::SecureBoot => "secure-boot",
            CheckId::Pk => "pk",
            CheckId::Kek => "kek",
            CheckId::Db => "db",
            CheckId::Dbx => "dbx",
            CheckId::RootHash => "root-hash",
            CheckId::KernelCmdline => "kernel-cmdline",
            CheckId::Ima => "ima",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of one check on one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: CheckId,
    pub passed: bool,
    /// What the reference values allow (hex digests, parameters), readable.
    pub expected: String,
    /// What the evidence shows.
    pub actual: String,
    /// One sentence saying why the check passed or failed.
    pub reason: String,
}

/// Every finding of one appraisal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appraisal {
    pub findings: Vec<Finding>,
}

impl Appraisal {
    /// True when there is at least one finding and every finding passed.
    pub fn passed(&self) -> bool {
        !self.findings.is_empty() && self.findings.iter().all(|f| f.passed)
    }
    /// The failing findings.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.passed)
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        check: CheckId,
        passed: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.0.push(Finding {
            check,
            passed,
            expected: expected.into(),
            actual: actual.into(),
            reason: reason.into(),
        });
    }
    fn fail(&mut self, check: CheckId, expected: impl Into<String>, reason: impl Into<String>) {
        self.push(check, false, expected, "", reason);
    }
}

fn hex_join(list: &[Vec<u8>]) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = list.iter().take(SHOWN).map(hex::encode).collect();
    if list.len() > SHOWN {
        s.push(format!("and {} more", list.len() - SHOWN));
    }
    s.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Firmware-log helpers
// ---------------------------------------------------------------------------------------------

/// An extended event of a verified log, with its data as the replay decoded it (once: the
/// checks below read the same PCR 7 variables several times, certificates and all).
#[derive(Clone, Copy)]
struct LogEvent<'e> {
    event: &'e Event,
    /// What [`Event::decode`] returns for `event`.
    decoded: &'e Result<EventData, DecodeError>,
}

impl std::ops::Deref for LogEvent<'_> {
    type Target = Event;
    fn deref(&self) -> &Event {
        self.event
    }
}

/// The extended events of `log` in the PCRs the reference values verify.
fn log_events<'e>(
    log: &'e VerifiedLog<'_>,
    pcrs: &'e BTreeSet<u32>,
) -> impl Iterator<Item = LogEvent<'e>> + 'e {
    log.events_decoded()
        .filter(move |(e, _)| pcrs.contains(&e.pcr) && e.event_type != EventType::EV_NO_ACTION)
        .map(|(event, decoded)| LogEvent { event, decoded })
}

/// True when the event's data is bound to its `bank` digest: the digest is the hash of the
/// bytes PFP (or a documented deviation, [`measured_bytes_quirks`]) says it covers, or, for the
/// UTF-16 command lines of systemd-boot and systemd-stub, of the string with or without its NUL.
fn data_is_bound(ev: &Event, bank: HashAlg) -> bool {
    let Some(digest) = ev.digest(bank) else {
        return false;
    };
    if let Some(bytes) = measured_bytes(ev.event_type, ev.pcr, &ev.data) {
        return bank.hash(&bytes) == digest
            || measured_bytes_quirks(ev.event_type, ev.pcr, &ev.data)
                .iter()
                .any(|(_, b)| bank.hash(b) == digest);
    }
    ev.event_type == EventType::EV_IPL
        && (bank.hash(&ev.data) == digest
            || ev
                .data
                .strip_suffix(&[0, 0])
                .is_some_and(|d| bank.hash(d) == digest))
}

/// A Secure Boot policy variable of PCR 7 (`EV_EFI_VARIABLE_DRIVER_CONFIG`).
fn is_variable(v: &VariableData, vendor: Guid, name: &str) -> bool {
    v.vendor == vendor && v.name == name
}

#[derive(Clone, Copy)]
struct PolicyVariable {
    check: CheckId,
    vendor: Guid,
    name: &'static str,
}

const PK: PolicyVariable = PolicyVariable {
    check: CheckId::Pk,
    vendor: EFI_GLOBAL_VARIABLE,
    name: "PK",
};
const KEK: PolicyVariable = PolicyVariable {
    check: CheckId::Kek,
    vendor: EFI_GLOBAL_VARIABLE,
    name: "KEK",
};
const DB: PolicyVariable = PolicyVariable {
    check: CheckId::Db,
    vendor: EFI_IMAGE_SECURITY_DATABASE_GUID,
    name: "db",
};
const DBX: PolicyVariable = PolicyVariable {
    check: CheckId::Dbx,
    vendor: EFI_IMAGE_SECURITY_DATABASE_GUID,
    name: "dbx",
};
const SECURE_BOOT: PolicyVariable = PolicyVariable {
    check: CheckId::SecureBoot,
    vendor: EFI_GLOBAL_VARIABLE,
    name: "SecureBoot",
};

/// The PCR 7 driver-config events of `var`, with their decoded data (`None` when it does not
/// decode).
fn variable_events<'e>(
    events: &[LogEvent<'e>],
    var: PolicyVariable,
) -> Vec<(LogEvent<'e>, Option<&'e VariableData>)> {
    events
        .iter()
        .filter(|e| {
            e.pcr == SECURE_BOOT_PCR && e.event_type == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        })
        .filter_map(|e| match e.decoded {
            Ok(EventData::Variable(v)) if is_variable(v, var.vendor, var.name) => {
                Some((*e, Some(v)))
            }
            // Not decodable: it might be this variable; the name is at a fixed place, so look.
            Err(_) if raw_variable_name_is(&e.data, var) => Some((*e, None)),
            _ => None,
        })
        .collect()
}

/// Whether undecodable `UEFI_VARIABLE_DATA` names `var` (GUID and UTF-16 name at the start).
fn raw_variable_name_is(data: &[u8], var: PolicyVariable) -> bool {
    let name: Vec<u8> = var.name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    data.get(..16) == Some(&var.vendor.0[..]) && data.get(32..32 + name.len()) == Some(&name[..])
}

/// A kernel command line read from the log.
struct Cmdline<'e> {
    event: LogEvent<'e>,
    /// `None` when the event's data is not bound to its digest.
    parameters: Option<Vec<String>>,
}

fn cmdlines<'e>(events: &[LogEvent<'e>], bank: HashAlg) -> Vec<Cmdline<'e>> {
    events
        .iter()
        .filter(|e| CMDLINE_PCRS.contains(&e.pcr) && e.event_type == EventType::EV_IPL)
        .filter_map(|e| match e.decoded {
            Ok(EventData::Ipl(ipl)) if ipl.kind == IplKind::KernelCmdline => {
                let value = ipl.value.as_deref().unwrap_or(&ipl.text);
                let mut tokens = cmdline_tokens(value);
                // GRUB logs the kernel's path first; the kernel never sees it as a parameter.
                if ipl.encoding == TextEncoding::Utf8 && !tokens.is_empty() {
                    tokens.remove(0);
                }
                Some(Cmdline {
                    event: *e,
                    parameters: data_is_bound(e, bank).then_some(tokens),
                })
            }
            _ => None,
        })
        .collect()
}

/// Splits a kernel command line as the kernel does (`lib/cmdline.c` `next_arg`): on blanks,
/// except inside double quotes. Quotes are kept, so `"dm=1 vroot ..."` stays one token as
/// written.
pub fn cmdline_tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
            current.push(c);
        } else if c.is_whitespace() && !quoted {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The key of a parameter: the text before `=` (quotes removed), or the whole flag.
fn parameter_key(p: &str) -> String {
    let key = p.split_once('=').map_or(p, |(k, _)| k);
    key.replace('"', "")
}

/// What a command line says about `required`: `Ok` when the last parameter with its key is
/// exactly `required` (the kernel and most modules take the last occurrence), else the reason.
fn check_parameter(parameters: &[String], required: &str) -> Result<(), String> {
    let key = parameter_key(required);
    match parameters.iter().rev().find(|p| parameter_key(p) == key) {
        Some(p) if p == required => Ok(()),
        Some(p) if required.contains('=') => Err(format!(
            "`{required}` is required, but the command line's last `{key}` is `{p}`"
        )),
        Some(_) | None => Err(format!("`{required}` is missing")),
    }
}

/// The parameters `parameters` ends up with: for each key, its last occurrence, in order.
fn effective_parameters(parameters: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, p) in parameters.iter().enumerate() {
        let key = parameter_key(p);
        let later = parameters
            .iter()
            .skip(i + 1)
            .any(|q| parameter_key(q) == key);
        if !later && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

fn describe_event(ev: LogEvent<'_>) -> String {
    let path = match ev.decoded {
        Ok(EventData::ImageLoad(img)) => img.device_path.as_ref().map(|p| format!(" ({p})")),
        _ => None,
    };
    format!(
        "event {} ({}, PCR {}){}",
        ev.number,
        ev.event_type,
        ev.pcr,
        path.unwrap_or_default()
    )
}

// ---------------------------------------------------------------------------------------------
// Appraisal
// ---------------------------------------------------------------------------------------------

/// Appraises `evidence` against `refs`. Every configured check yields findings; the node
/// passes when [`Appraisal::passed`].
pub fn appraise(refs: &ReferenceValues, evidence: &Evidence<'_>) -> Appraisal {
    let mut f = Findings(Vec::new());
    let bank = refs.bank;
    check_quote_selection(refs, evidence, &mut f);
    check_warrant_log(evidence, &mut f);
    check_pcr_values(refs, evidence, &mut f);

    let events: Option<Vec<LogEvent<'_>>> = evidence
        .firmware_log
        .map(|log| log_events(log, &refs.firmware_log_pcrs).collect());
    if !refs.firmware_log_pcrs.is_empty() {
        check_firmware_log(refs, evidence, &mut f);
    }
    match &events {
        Some(events) => {
            if let Some(allowed) = &refs.firmware_digests {
                check_event_digests(events, bank, allowed, EventKind::Firmware, &mut f);
            }
            if let Some(allowed) = &refs.boot_loader_digests {
                check_event_digests(events, bank, allowed, EventKind::BootLoader, &mut f);
            }
            if refs.secure_boot {
                check_secure_boot(events, bank, &mut f);
            }
            for (var, allowed) in [
                (PK, &refs.pk),
                (KEK, &refs.kek),
                (DB, &refs.db),
                (DBX, &refs.dbx),
            ] {
                if let Some(allowed) = allowed {
                    check_variable_digest(events, bank, var, allowed, &mut f);
                }
            }
            if let Some(required) = &refs.dbx_contains {
                check_dbx_contains(events, bank, required, &mut f);
            }
            if let Some(required) = &refs.kernel_cmdline {
                check_kernel_cmdline(events, bank, required, &mut f);
            }
        }
        // Parsing guarantees that every check of log events has its PCR in the list.
        None if !refs.firmware_log_pcrs.is_empty() => f.fail(
            CheckId::FirmwareLog,
            "a firmware event log verified against the quote",
            format!(
                "no firmware event log was provided; the reference values verify PCRs {:?} with one",
                refs.firmware_log_pcrs()
            ),
        ),
        None => {}
    }
    // Whatever the policy: a node whose dm-verity met a corrupted block is not admitted.
    for device in evidence.warrant_log.corrupted_devices() {
        f.fail(
            CheckId::RootHash,
            "no dm-verity device reports corruption",
            format!(
                "dm-verity found a corrupted block on {device}: the read-only image was changed"
            ),
        );
    }
    if let Some(allowed) = &refs.root_hashes {
        check_root_hashes(evidence.warrant_log, allowed, &mut f);
    }
    if let Some(ima) = &refs.ima {
        check_ima(ima, evidence.ima, &mut f);
    }
    Appraisal { findings: f.0 }
}

fn check_quote_selection(refs: &ReferenceValues, evidence: &Evidence<'_>, f: &mut Findings) {
    for (bank, pcrs) in refs.quote_selection() {
        let missing: Vec<String> = pcrs
            .iter()
            .filter(|p| evidence.quoted.get(bank, **p).is_none())
            .map(ToString::to_string)
            .collect();
        let expected = format!("PCRs {pcrs:?} of the {bank} bank quoted");
        if missing.is_empty() {
            f.push(
                CheckId::PcrSelection,
                true,
                expected,
                "all quoted",
                format!("the quote covers every PCR the reference values need in the {bank} bank"),
            );
        } else {
            f.push(
                CheckId::PcrSelection,
                false,
                expected,
                format!("missing {}", missing.join(", ")),
                format!(
                    "PCR {} {} not quoted in the {bank} bank",
                    missing.join(", "),
                    if missing.len() == 1 { "was" } else { "were" }
                ),
            );
        }
    }
}

fn check_warrant_log(evidence: &Evidence<'_>, f: &mut Findings) {
    // The log type proves it matched *some* quote; make sure it is this one.
    for (bank, verified) in &evidence.warrant_log.pcr15 {
        let quoted = evidence.quoted.get(*bank, WARRANT_PCR);
        let ok = quoted == Some(verified.as_slice());
        let actual = quoted.map_or_else(|| "not quoted".to_string(), hex::encode);
        let reason = if ok {
            format!("Warrant's log replays to the quoted PCR {WARRANT_PCR} ({bank})")
        } else {
            format!(
                "Warrant's log was verified against PCR {WARRANT_PCR} ({bank}) = {}, but the quote has {actual}",
                hex::encode(verified)
            )
        };
        f.push(
            CheckId::WarrantLog,
            ok,
            hex::encode(verified),
            actual,
            reason,
        );
    }
}

fn check_pcr_values(refs: &ReferenceValues, evidence: &Evidence<'_>, f: &mut Findings) {
    let bank = refs.bank;
    for (pcr, allowed) in &refs.pcr_values {
        let expected = hex_join(allowed);
        match evidence.quoted.get(bank, *pcr) {
            None => f.fail(
                CheckId::PcrValue,
                expected,
                format!("PCR {pcr} was not quoted in the {bank} bank"),
            ),
            Some(value) => {
                let ok = allowed.iter().any(|a| a.as_slice() == value);
                let reason = if ok {
                    format!("PCR {pcr} is an allowed value")
                } else {
                    format!(
                        "PCR {pcr} is {}, the policy allows {expected}",
                        hex::encode(value)
                    )
                };
                f.push(CheckId::PcrValue, ok, expected, hex::encode(value), reason);
            }
        }
    }
}

fn check_firmware_log(refs: &ReferenceValues, evidence: &Evidence<'_>, f: &mut Findings) {
    let bank = refs.bank;
    let Some(log) = evidence.firmware_log else {
        return;
    };
    let replay = log.replay();
    if !replay.replayed_banks.contains(&bank) {
        f.fail(
            CheckId::FirmwareLog,
            format!("a {bank} replay of PCRs {:?}", refs.firmware_log_pcrs()),
            format!("the firmware event log has no complete {bank} bank"),
        );
        return;
    }
    let mut bad = Vec::new();
    for &pcr in &refs.firmware_log_pcrs {
        let replayed = replay.banks.get(bank, pcr).map_or_else(
            || reset_value(bank, pcr, replay.startup_locality),
            <[u8]>::to_vec,
        );
        match evidence.quoted.get(bank, pcr) {
            Some(q) if q == replayed.as_slice() => {}
            Some(q) => bad.push(format!(
                "PCR {pcr} is quoted as {}, the log replays to {}",
                hex::encode(q),
                hex::encode(&replayed)
            )),
            None => bad.push(format!("PCR {pcr} was not quoted")),
        }
    }
    let expected = format!(
        "{bank} replay equal to the quoted PCRs {:?}",
        refs.firmware_log_pcrs()
    );
    if bad.is_empty() {
        let quirks: Vec<&str> = replay.quirks.iter().map(|q| q.name.name()).collect();
        f.push(
            CheckId::FirmwareLog,
            true,
            expected,
            "equal",
            if quirks.is_empty() {
                "the firmware event log replays to the quoted PCRs".to_string()
            } else {
                format!(
                    "the firmware event log replays to the quoted PCRs with quirks {}",
                    quirks.join(", ")
                )
            },
        );
    } else {
        f.push(
            CheckId::FirmwareLog,
            false,
            expected,
            bad.join("; "),
            format!(
                "the firmware event log does not prove the quote: {}",
                bad.join("; ")
            ),
        );
    }
}

#[derive(Clone, Copy)]
enum EventKind {
    Firmware,
    BootLoader,
}

impl EventKind {
    fn selects(self, e: &Event) -> bool {
        match self {
            // Every measurement of firmware code and configuration in PCR 0.
            EventKind::Firmware => e.pcr == FIRMWARE_PCR && e.event_type != EventType::EV_SEPARATOR,
            EventKind::BootLoader => {
                e.pcr == BOOT_LOADER_PCR
                    && e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION
            }
        }
    }
    fn check(self) -> CheckId {
        match self {
            EventKind::Firmware => CheckId::FirmwareDigest,
            EventKind::BootLoader => CheckId::BootLoaderDigest,
        }
    }
    fn what(self) -> &'static str {
        match self {
            EventKind::Firmware => "no firmware measurement was logged in PCR 0",
            EventKind::BootLoader => {
                "no boot application (EV_EFI_BOOT_SERVICES_APPLICATION) was logged in PCR 4"
            }
        }
    }
}

fn check_event_digests(
    events: &[LogEvent<'_>],
    bank: HashAlg,
    allowed: &[Vec<u8>],
    kind: EventKind,
    f: &mut Findings,
) {
    let expected = hex_join(allowed);
    let selected: Vec<&LogEvent<'_>> = events.iter().filter(|e| kind.selects(e)).collect();
    if selected.is_empty() {
        f.fail(kind.check(), expected, kind.what());
        return;
    }
    for ev in selected {
        let what = describe_event(*ev);
        match ev.digest(bank) {
            None => f.fail(
                kind.check(),
                expected.clone(),
                format!("{what} has no {bank} digest"),
            ),
            Some(d) => {
                let ok = allowed.iter().any(|a| a.as_slice() == d);
                let reason = if ok {
                    format!("{what}: digest is allowed")
                } else {
                    format!("{what}: digest {} is not in the policy", hex::encode(d))
                };
                f.push(kind.check(), ok, expected.clone(), hex::encode(d), reason);
            }
        }
    }
}

fn check_secure_boot(events: &[LogEvent<'_>], bank: HashAlg, f: &mut Findings) {
    let found = variable_events(events, SECURE_BOOT);
    let expected = "SecureBoot variable is 1";
    if found.is_empty() {
        f.fail(
            CheckId::SecureBoot,
            expected,
            "no SecureBoot variable was measured in PCR 7",
        );
        return;
    }
    for (ev, var) in found {
        let n = ev.number;
        if !data_is_bound(&ev, bank) {
            f.fail(
                CheckId::SecureBoot,
                expected,
                format!("SecureBoot event {n}: its {bank} digest is not the hash of its data"),
            );
            continue;
        }
        let (ok, actual, reason) = match var.map(|v| &v.value) {
            Some(VariableValue::Boolean { value: true, raw }) => (
                true,
                raw.to_string(),
                format!("Secure Boot is on (SecureBoot variable is {raw}, event {n})"),
            ),
            Some(VariableValue::Boolean { value: false, raw }) => (
                false,
                raw.to_string(),
                format!("Secure Boot is off (SecureBoot variable is {raw})"),
            ),
            Some(VariableValue::Empty) => (
                false,
                "empty".into(),
                "Secure Boot is off (the SecureBoot variable is empty: it does not exist)".into(),
            ),
            _ => (
                false,
                "undecodable".into(),
                format!("SecureBoot event {n} is not a one-byte boolean"),
            ),
        };
        f.push(CheckId::SecureBoot, ok, expected, actual, reason);
    }
}

fn check_variable_digest(
    events: &[LogEvent<'_>],
    bank: HashAlg,
    var: PolicyVariable,
    allowed: &[Vec<u8>],
    f: &mut Findings,
) {
    let expected = hex_join(allowed);
    let found = variable_events(events, var);
    if found.is_empty() {
        f.fail(
            var.check,
            expected,
            format!("no {} variable was measured in PCR 7", var.name),
        );
        return;
    }
    for (ev, _) in found {
        match ev.digest(bank) {
            None => f.fail(
                var.check,
                expected.clone(),
                format!("{} event {} has no {bank} digest", var.name, ev.number),
            ),
            Some(d) => {
                let ok = allowed.iter().any(|a| a.as_slice() == d);
                let reason = if ok {
                    format!("{} (event {}) is an allowed value", var.name, ev.number)
                } else {
                    format!(
                        "{} (event {}) has digest {}, which is not in the policy",
                        var.name,
                        ev.number,
                        hex::encode(d)
                    )
                };
                f.push(var.check, ok, expected.clone(), hex::encode(d), reason);
            }
        }
    }
}

/// The entries a dbx lists, when its data is bound and decodes: image hashes
/// (`EFI_CERT_SHA*`), certificate TBS hashes (`EFI_CERT_X509_SHA*`) and, for revoked
/// certificates (`EFI_CERT_X509`), the SHA-256 of the certificate's DER encoding.
fn dbx_entries<'v>(
    ev: &Event,
    var: Option<&'v VariableData>,
    bank: HashAlg,
) -> Result<Vec<Cow<'v, [u8]>>, String> {
    if !data_is_bound(ev, bank) {
        return Err(format!(
            "dbx event {}: its {bank} digest is not the hash of its data",
            ev.number
        ));
    }
    match var.map(|v| &v.value) {
        Some(VariableValue::Empty) => Ok(Vec::new()),
        Some(VariableValue::SignatureLists { lists }) => Ok(lists
            .iter()
            .flat_map(|l| &l.signatures)
            .filter_map(|s| match &s.value {
                SignatureValue::Hash { digest, .. }
                | SignatureValue::CertificateHash { digest, .. } => {
                    Some(Cow::Borrowed(digest.as_slice()))
                }
                // A revoked certificate: the SHA-256 of its DER encoding.
                SignatureValue::X509(cert) => hex::decode(&cert.sha256).ok().map(Cow::Owned),
                SignatureValue::Raw { .. } => None,
            })
            .collect()),
        _ => Err(format!(
            "dbx event {} does not decode as signature lists",
            ev.number
        )),
    }
}

fn check_dbx_contains(
    events: &[LogEvent<'_>],
    bank: HashAlg,
    required: &[Vec<u8>],
    f: &mut Findings,
) {
    let expected = format!("dbx lists {} required entries", required.len());
    let found = variable_events(events, DBX);
    if found.is_empty() {
        f.fail(
            CheckId::Dbx,
            expected,
            "no dbx variable was measured in PCR 7",
        );
        return;
    }
    for (ev, var) in found {
        match dbx_entries(&ev, var, bank) {
            Err(reason) => f.fail(CheckId::Dbx, expected.clone(), reason),
            Ok(entries) => {
                // A set: a real dbx lists hundreds of entries, and so may `required`.
                let listed: HashSet<&[u8]> = entries.iter().map(|e| &**e).collect();
                let missing: Vec<Vec<u8>> = required
                    .iter()
                    .filter(|r| !listed.contains(r.as_slice()))
                    .cloned()
                    .collect();
                let actual = format!("{} entries", entries.len());
                if missing.is_empty() {
                    f.push(
                        CheckId::Dbx,
                        true,
                        expected.clone(),
                        actual,
                        format!("dbx (event {}) lists every required entry", ev.number),
                    );
                } else {
                    f.push(
                        CheckId::Dbx,
                        false,
                        expected.clone(),
                        actual,
                        format!(
                            "dbx (event {}) lacks {} of the {} required entries: {}",
                            ev.number,
                            missing.len(),
                            required.len(),
                            hex_join(&missing)
                        ),
                    );
                }
            }
        }
    }
}

fn check_kernel_cmdline(
    events: &[LogEvent<'_>],
    bank: HashAlg,
    required: &[String],
    f: &mut Findings,
) {
    let expected = required.join(" ");
    let lines = cmdlines(events, bank);
    if lines.is_empty() {
        f.fail(
            CheckId::KernelCmdline,
            expected,
            "no kernel command line was measured (PCR 8 or 12)",
        );
        return;
    }
    for line in lines {
        let what = format!(
            "kernel command line (event {}, PCR {})",
            line.event.number, line.event.pcr
        );
        let Some(parameters) = line.parameters else {
            f.fail(
                CheckId::KernelCmdline,
                expected.clone(),
                format!("{what}: its {bank} digest is not the hash of its text"),
            );
            continue;
        };
        let problems: Vec<String> = required
            .iter()
            .filter_map(|r| check_parameter(&parameters, r).err())
            .collect();
        let actual = parameters.join(" ");
        if problems.is_empty() {
            f.push(
                CheckId::KernelCmdline,
                true,
                expected.clone(),
                actual,
                format!("{what} has every required parameter"),
            );
        } else {
            f.push(
                CheckId::KernelCmdline,
                false,
                expected.clone(),
                actual,
                format!("{what}: {}", problems.join("; ")),
            );
        }
    }
}

fn check_root_hashes(log: &VerifiedWarrantLog, allowed: &[Vec<u8>], f: &mut Findings) {
    let expected = hex_join(allowed);
    let measured: Vec<&[u8]> = log.root_hashes().collect();
    if measured.is_empty() {
        f.fail(
            CheckId::RootHash,
            expected,
            "no dm-verity root hash was measured",
        );
        return;
    }
    for h in measured {
        let ok = allowed.iter().any(|a| a.as_slice() == h);
        let reason = if ok {
            format!("dm-verity root hash {} is allowed", hex::encode(h))
        } else {
            format!(
                "dm-verity root hash {} is not in the policy",
                hex::encode(h)
            )
        };
        f.push(
            CheckId::RootHash,
            ok,
            expected.clone(),
            hex::encode(h),
            reason,
        );
    }
}

/// The IMA entry naming the boot aggregate (a hash of PCRs 0-9, not a file).
const BOOT_AGGREGATE: &[u8] = b"boot_aggregate";

fn check_ima(policy: &ImaPolicy, ima: Option<&VerifiedImaList>, f: &mut Findings) {
    let Some(list) = ima else {
        f.fail(
            CheckId::Ima,
            "a verified IMA measurement list",
            "no IMA measurement list was provided",
        );
        return;
    };
    let Some(allowed) = &policy.file_digests else {
        f.push(
            CheckId::Ima,
            true,
            "a verified IMA measurement list",
            format!("{} verified entries", list.entries().len()),
            "a verified IMA measurement list is present",
        );
        return;
    };
    let expected = format!("{} allowed file digests", allowed.len());
    let mut failures = 0usize;
    for entry in list.entries() {
        let n = entry.number;
        let name = entry.template.name().map(|n| n.as_bytes().to_vec());
        if name.as_deref() == Some(BOOT_AGGREGATE) {
            continue;
        }
        let shown = name
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let problem = if list.violations().contains(&n) {
            Some(format!(
                "IMA entry {n} ({shown}) is a violation: its file digest is bound to nothing"
            ))
        } else if list.unbound().contains(&n) {
            Some(format!(
                "IMA entry {n} ({shown}): its data is not bound to its template hash"
            ))
        } else {
            match entry.template.file_digest() {
                None => Some(format!("IMA entry {n} has no file digest")),
                Some(d) => {
                    let fd = ImaFileDigest {
                        algorithm: d.algorithm.to_string(),
                        digest: d.digest.to_vec(),
                    };
                    (!allowed.contains(&fd)).then(|| {
                        format!("IMA entry {n} ({shown}): file digest {fd} is not in the policy")
                    })
                }
            }
        };
        if let Some(reason) = problem {
            failures += 1;
            f.push(CheckId::Ima, false, expected.clone(), shown, reason);
        }
    }
    if failures == 0 {
        f.push(
            CheckId::Ima,
            true,
            expected,
            format!("{} verified entries", list.entries().len()),
            "every IMA file digest is allowed",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Capture
// ---------------------------------------------------------------------------------------------

/// The PCR whose quoted value capture records: the UKI as measured by systemd-stub.
pub const UKI_PCR: u32 = 11;

/// Reference values describing a golden node's evidence, so that `appraise(&capture(e), e)`
/// passes: every check whose evidence is present and usable is filled in from it.
///
/// - `bank`: sha256 when quoted, else the first quoted bank.
/// - `firmware_log_pcrs`: those of [`DEFAULT_FIRMWARE_LOG_PCRS`] (and PCR 12 when the log
///   extends it) that are quoted and that the log replays to; none without a log.
/// - `pcr_values`: the quoted PCR 11, when quoted.
/// - digests of PCR 0 and PCR 4 events, PK, KEK and db; `dbx_contains` with every hash the dbx
///   lists (not the dbx digest: a dbx update that only adds revocations keeps passing).
/// - `secure_boot`: true when the SecureBoot variable is 1.
/// - `kernel_cmdline`: the parameters every measured command line ends up with.
/// - `root_hashes` from Warrant's log; `ima` (with its file digests) when a list is present.
pub fn capture(evidence: &Evidence<'_>) -> ReferenceValues {
    let quoted = evidence.quoted;
    let bank = if quoted.bank(HashAlg::Sha256).is_some() {
        HashAlg::Sha256
    } else {
        quoted.banks().next().map_or(HashAlg::Sha256, |(b, _)| b)
    };
    let mut refs = ReferenceValues {
        bank,
        firmware_log_pcrs: BTreeSet::new(),
        pcr_values: BTreeMap::new(),
        firmware_digests: None,
        boot_loader_digests: None,
        secure_boot: false,
        pk: None,
        kek: None,
        db: None,
        dbx: None,
        dbx_contains: None,
        root_hashes: None,
        kernel_cmdline: None,
        ima: None,
    };
    if let Some(v) = quoted.get(bank, UKI_PCR) {
        refs.pcr_values.insert(UKI_PCR, vec![v.to_vec()]);
    }
    let roots: Vec<Vec<u8>> = dedup(evidence.warrant_log.root_hashes().map(<[u8]>::to_vec));
    refs.root_hashes = non_empty(roots);
    if let Some(list) = evidence.ima {
        refs.ima = Some(capture_ima(list));
    }
    if let Some(log) = evidence.firmware_log {
        capture_firmware(&mut refs, log, quoted);
    }
    refs
}

fn dedup(items: impl Iterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn capture_ima(list: &VerifiedImaList) -> ImaPolicy {
    let mut set = BTreeSet::new();
    for entry in list.entries() {
        if entry.template.name().map(|n| n.as_bytes()) == Some(BOOT_AGGREGATE) {
            continue;
        }
        let usable =
            !list.violations().contains(&entry.number) && !list.unbound().contains(&entry.number);
        match entry.template.file_digest() {
            Some(d) if usable => {
                set.insert(ImaFileDigest {
                    algorithm: d.algorithm.to_string(),
                    digest: d.digest.to_vec(),
                });
            }
            // An entry no digest list can allow: require only that IMA is present.
            _ => return ImaPolicy { file_digests: None },
        }
    }
    ImaPolicy {
        file_digests: (!set.is_empty()).then_some(set),
    }
}

fn capture_firmware(refs: &mut ReferenceValues, log: &VerifiedLog<'_>, quoted: &PcrBanks) {
    let bank = refs.bank;
    let replay = log.replay();
    if !replay.replayed_banks.contains(&bank) {
        return;
    }
    let extends_12 = log
        .events()
        .iter()
        .any(|e| e.pcr == CMDLINE_PCRS[1] && e.event_type != EventType::EV_NO_ACTION);
    let candidates = DEFAULT_FIRMWARE_LOG_PCRS
        .into_iter()
        .chain(extends_12.then_some(CMDLINE_PCRS[1]));
    for pcr in candidates {
        let replayed = replay.banks.get(bank, pcr).map_or_else(
            || reset_value(bank, pcr, replay.startup_locality),
            <[u8]>::to_vec,
        );
        if quoted.get(bank, pcr) == Some(replayed.as_slice()) {
            refs.firmware_log_pcrs.insert(pcr);
        }
    }
    let pcrs = refs.firmware_log_pcrs.clone();
    let events: Vec<LogEvent<'_>> = log_events(log, &pcrs).collect();
    let digests_of = |kind: EventKind| -> Option<Vec<Vec<u8>>> {
        let selected: Vec<&LogEvent<'_>> = events.iter().filter(|e| kind.selects(e)).collect();
        let digests: Option<Vec<Vec<u8>>> = selected
            .iter()
            .map(|e| e.digest(bank).map(<[u8]>::to_vec))
            .collect();
        digests.map(|d| dedup(d.into_iter())).and_then(non_empty)
    };
    if pcrs.contains(&FIRMWARE_PCR) {
        refs.firmware_digests = digests_of(EventKind::Firmware);
    }
    if pcrs.contains(&BOOT_LOADER_PCR) {
        refs.boot_loader_digests = digests_of(EventKind::BootLoader);
    }
    if pcrs.contains(&SECURE_BOOT_PCR) {
        let sb = variable_events(&events, SECURE_BOOT);
        refs.secure_boot = !sb.is_empty()
            && sb.iter().all(|(ev, var)| {
                data_is_bound(ev, bank)
                    && matches!(
                        var.map(|v| &v.value),
                        Some(VariableValue::Boolean { value: true, .. })
                    )
            });
        let var_digests = |var: PolicyVariable| -> Option<Vec<Vec<u8>>> {
            let found = variable_events(&events, var);
            let digests: Option<Vec<Vec<u8>>> = found
                .iter()
                .map(|(e, _)| e.digest(bank).map(<[u8]>::to_vec))
                .collect();
            digests.map(|d| dedup(d.into_iter())).and_then(non_empty)
        };
        refs.pk = var_digests(PK);
        refs.kek = var_digests(KEK);
        refs.db = var_digests(DB);
        let dbx = variable_events(&events, DBX);
        let entries: Option<Vec<Vec<Vec<u8>>>> = dbx
            .iter()
            .map(|(ev, var)| {
                dbx_entries(ev, *var, bank)
                    .ok()
                    .map(|l| l.into_iter().map(Cow::into_owned).collect())
            })
            .collect();
        // Entries every measured dbx lists.
        refs.dbx_contains = entries.and_then(|lists| {
            let (first, rest) = lists.split_first()?;
            let common = first
                .iter()
                .filter(|e| rest.iter().all(|l| l.contains(e)))
                .cloned();
            non_empty(dedup(common))
        });
    }
    if CMDLINE_PCRS.iter().any(|p| pcrs.contains(p)) {
        let lines = cmdlines(&events, bank);
        let params: Option<Vec<Vec<String>>> = lines
            .into_iter()
            .map(|l| l.parameters.map(|p| effective_parameters(&p)))
            .collect();
        refs.kernel_cmdline = params.and_then(|lists| {
            let (first, rest) = lists.split_first()?;
            let common: Vec<String> = first
                .iter()
                .filter(|p| rest.iter().all(|l| l.contains(p)))
                .cloned()
                .collect();
            non_empty(common)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_the_kernel() {
        assert_eq!(
            cmdline_tokens("  ro  \"dm=1 vroot none\" quiet=\"a b\"\tx "),
            vec!["ro", "\"dm=1 vroot none\"", "quiet=\"a b\"", "x"]
        );
        assert!(cmdline_tokens(" \t ").is_empty());
    }

    #[test]
    fn the_last_occurrence_of_a_parameter_wins() {
        let p: Vec<String> = cmdline_tokens("console=tty1 ro module.sig_enforce=1 console=ttyS0")
            .into_iter()
            .collect();
        assert_eq!(check_parameter(&p, "ro"), Ok(()));
        assert_eq!(check_parameter(&p, "console=ttyS0"), Ok(()));
        assert!(check_parameter(&p, "console=tty1")
            .unwrap_err()
            .contains("last `console` is `console=ttyS0`"));
        assert_eq!(
            check_parameter(&p, "lockdown=integrity"),
            Err("`lockdown=integrity` is missing".to_string())
        );
        assert_eq!(
            effective_parameters(&p),
            vec!["ro", "module.sig_enforce=1", "console=ttyS0"]
        );
    }

    #[test]
    fn warrant_measurements_are_strict() {
        assert_eq!(
            decode_measurement(0, "phase:agent-start"),
            Ok(WarrantMeasurement::Phase {
                phase: "agent-start".into()
            })
        );
        assert_eq!(
            decode_measurement(0, "verity-root-hash:00ff"),
            Ok(WarrantMeasurement::VerityRootHash {
                root_hash: vec![0, 0xff]
            })
        );
        assert_eq!(
            decode_measurement(0, "verity-corrupted:root"),
            Ok(WarrantMeasurement::VerityCorrupted {
                device: "root".into()
            })
        );
        for bad in [
            "phase:",
            "phase:Agent Start",
            "verity-root-hash:",
            "verity-root-hash:00FF",
            "verity-root-hash:0",
            "verity-root-hash:zz",
            "verity-corrupted:",
            "verity-corrupted:root dev",
            "verity-corrupted:../x\n",
            "verity-corrupted:.root",
            "kernel:x",
            "",
        ] {
            assert!(
                matches!(
                    decode_measurement(3, bad),
                    Err(WarrantLogError::UnknownMeasurement { recnum: 3, .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn check_ids_are_kebab_case() {
        assert_eq!(CheckId::BootLoaderDigest.to_string(), "boot-loader-digest");
        assert_eq!(
            serde_json::to_value(CheckId::KernelCmdline).unwrap_or_default(),
            "kernel-cmdline"
        );
    }

    #[test]
    fn an_empty_appraisal_does_not_pass() {
        assert!(!Appraisal {
            findings: Vec::new()
        }
        .passed());
    }
}
