//! Replaying an IMA list into PCRs and checking it against quoted values.
//!
//! For each entry the kernel extends one digest per PCR bank into the entry's PCR
//! (`ima_add_template_entry` → `ima_pcr_extend` in `ima_queue.c`). Which digest depends on the
//! kernel ([`ReplayMode`]):
//!
//! - Linux 5.8+ (`ima: Calculate and extend PCR with digests in ima_template_entry`): each bank
//!   gets the template hash computed with the bank's own algorithm (`ima_calc_field_array_hash`,
//!   one pass per bank) — [`ReplayMode::PerBankTemplateHash`]. A bank whose algorithm the kernel
//!   crypto API lacks still gets the zero-padded SHA-1 hash; Warrant computes every bank it knows.
//! - Before 5.8 the kernel computed only the SHA-1 template hash and `tpm_pcr_extend` copied it,
//!   zero-padded, into every bank — [`ReplayMode::PaddedSha1`].
//!
//! The SHA-1 bank is the same in both modes. A violation (zero template hash) extends
//! `0xff` × the bank's digest size in 5.8+ (`ima_init_digests`), and 20 bytes of `0xff`
//! zero-padded before.
//!
//! Recomputing a bank's template hash needs the entry's hashed bytes: always available from a
//! binary list, and from an ASCII list for the templates Warrant re-encodes. The bank the list
//! recorded is taken as recorded — whether that hash is the hash of the data is the separate
//! check of [`ImaList::check_template_hashes`], which [`verify`] also requires.

use super::{ImaEntry, ImaList, ListFormat, Location, TemplateHashCheck};
use crate::alg::HashAlg;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// PCR values by bank, then by PCR index.
pub type BankPcrs = BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>;

/// How the kernel derived the digest it extended into non-SHA-1 banks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayMode {
    /// Linux 5.8+: the template hash computed with each bank's algorithm.
    PerBankTemplateHash,
    /// Before Linux 5.8: the SHA-1 template hash, zero-padded to the bank's digest size.
    PaddedSha1,
}

impl fmt::Display for ReplayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayMode::PerBankTemplateHash => "per-bank template hash",
            ReplayMode::PaddedSha1 => "zero-padded SHA-1 template hash",
        })
    }
}

/// PCR values computed from a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImaReplay {
    pub mode: ReplayMode,
    /// Number of entries replayed.
    pub entries: usize,
    /// Every PCR the list extends, in every requested bank.
    #[serde(serialize_with = "serialize_bank_pcrs")]
    pub pcrs: BankPcrs,
}

impl ImaReplay {
    /// The value of `pcr` in `bank`, if the list extends it.
    pub fn pcr(&self, bank: HashAlg, pcr: u32) -> Option<&[u8]> {
        self.pcrs.get(&bank)?.get(&pcr).map(Vec::as_slice)
    }
}

/// One PCR whose replayed value is not the expected one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrMismatch {
    pub bank: HashAlg,
    pub pcr: u32,
    #[serde(serialize_with = "crate::serde_hex")]
    pub expected: Vec<u8>,
    /// The value after replaying the whole list.
    #[serde(serialize_with = "crate::serde_hex")]
    pub computed: Vec<u8>,
}

impl fmt::Display for PcrMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCR {} ({}): the list replays to {} but the expected value is {}",
            self.pcr,
            self.bank,
            hex::encode(&self.computed),
            hex::encode(&self.expected)
        )
    }
}

/// Why a list does not reproduce the expected PCRs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    #[error("entry {number} at {at}: its {bank} template hash cannot be recomputed from an ASCII {template} entry")]
    NotRecomputable {
        number: usize,
        at: Location,
        bank: HashAlg,
        template: String,
    },
    #[error(
        "entry {number} at {at}: the recorded template hash is not the hash of the entry's data"
    )]
    TemplateHash {
        number: usize,
        at: Location,
        recorded: Vec<u8>,
        computed: Vec<u8>,
    },
    #[error("entry {number} at {at} extends PCR {pcr}, for which no {bank} value is expected")]
    PcrNotExpected {
        number: usize,
        at: Location,
        pcr: u32,
        bank: HashAlg,
    },
    /// No prefix of the list reproduces the expected values. `first` is the first mismatching
    /// PCR (banks and PCRs in ascending order), `all` every one.
    #[error("replay ({mode}) does not match: {first}")]
    Mismatch {
        mode: ReplayMode,
        first: PcrMismatch,
        all: Vec<PcrMismatch>,
    },
    #[error("no expected PCR value was given")]
    NothingExpected,
}

/// The digest the kernel extended into `bank` for `entry`.
pub fn extend_digest(
    list: &ImaList,
    entry: &ImaEntry,
    bank: HashAlg,
    mode: ReplayMode,
) -> Result<Vec<u8>, ReplayError> {
    let size = bank.digest_len();
    if entry.violation {
        return Ok(match mode {
            ReplayMode::PerBankTemplateHash => vec![0xff; size],
            ReplayMode::PaddedSha1 => padded(&[0xff; 20], size),
        });
    }
    let recorded = list.template_hash_algorithm;
    let digest_in = |alg: HashAlg| -> Result<Vec<u8>, ReplayError> {
        if alg == recorded {
            return Ok(entry.template_hash.clone());
        }
        entry
            .template_digest(alg)
            .ok_or_else(|| ReplayError::NotRecomputable {
                number: entry.number,
                at: entry.location,
                bank: alg,
                template: entry.template_name.clone(),
            })
    };
    match mode {
        ReplayMode::PerBankTemplateHash => digest_in(bank),
        ReplayMode::PaddedSha1 => Ok(padded(&digest_in(HashAlg::Sha1)?, size)),
    }
}

fn padded(digest: &[u8], size: usize) -> Vec<u8> {
    let mut out = digest.to_vec();
    out.resize(size, 0);
    out
}

/// Replays the whole list into every PCR it extends, in each of `banks`, from zero (PCRs 10
/// and up are reset to zero at boot).
pub fn replay(
    list: &ImaList,
    banks: &[HashAlg],
    mode: ReplayMode,
) -> Result<ImaReplay, ReplayError> {
    let mut pcrs = BankPcrs::new();
    for entry in &list.entries {
        for &bank in banks {
            let digest = extend_digest(list, entry, bank, mode)?;
            let pcr = pcrs
                .entry(bank)
                .or_default()
                .entry(entry.pcr)
                .or_insert_with(|| bank.zero());
            bank.extend(pcr, &digest);
        }
    }
    Ok(ImaReplay {
        mode,
        entries: list.entries.len(),
        pcrs,
    })
}

/// A list prefix that reproduced quoted PCR values and whose every template hash is the hash of
/// its data: the only IMA type policy should trust. It can only be made by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedImaList {
    mode: ReplayMode,
    format: ListFormat,
    template_hash_algorithm: HashAlg,
    entries: Vec<ImaEntry>,
    unverified_tail: usize,
    violations: Vec<usize>,
    unbound: Vec<usize>,
}

impl VerifiedImaList {
    /// The replay mode that matched.
    pub fn mode(&self) -> ReplayMode {
        self.mode
    }
    pub fn format(&self) -> ListFormat {
        self.format
    }
    pub fn template_hash_algorithm(&self) -> HashAlg {
        self.template_hash_algorithm
    }
    /// The verified entries: the prefix of the list that the expected PCRs cover.
    pub fn entries(&self) -> &[ImaEntry] {
        &self.entries
    }
    /// Entries after the verified prefix (measured after the quote): not verified, not here.
    pub fn unverified_tail(&self) -> usize {
        self.unverified_tail
    }
    /// Entry numbers of violations among the verified entries. Their data is bound to nothing.
    pub fn violations(&self) -> &[usize] {
        &self.violations
    }
    /// Entry numbers whose data could not be checked against the template hash (ASCII entries
    /// of templates Warrant does not decode): their position is verified, their fields are not.
    pub fn unbound(&self) -> &[usize] {
        &self.unbound
    }
}

fn all_match(running: &BankPcrs, expected: &BankPcrs) -> bool {
    expected.iter().all(|(bank, pcrs)| {
        pcrs.iter()
            .all(|(pcr, value)| running.get(bank).and_then(|b| b.get(pcr)) == Some(value))
    })
}

/// Replays `list` in `mode` and accepts the shortest prefix after which every expected PCR (in
/// every bank given) equals its expected value — entries appended after the quote stay out.
/// Fails if no prefix matches (naming the first PCR that differs after the whole list), if an
/// entry of the prefix extends a PCR that has no expected value, or if an entry of the prefix
/// has a template hash that is not the hash of its data.
pub fn verify(
    list: &ImaList,
    expected: &BankPcrs,
    mode: ReplayMode,
) -> Result<VerifiedImaList, ReplayError> {
    if expected.values().all(BTreeMap::is_empty) {
        return Err(ReplayError::NothingExpected);
    }
    let mut running: BankPcrs = expected
        .iter()
        .filter(|(_, pcrs)| !pcrs.is_empty())
        .map(|(bank, pcrs)| (*bank, pcrs.keys().map(|p| (*p, bank.zero())).collect()))
        .collect();
    let mut covered = if all_match(&running, expected) {
        Some(0)
    } else {
        None
    };
    let mut first_unexpected: Option<ReplayError> = None;
    if covered.is_none() {
        for (index, entry) in list.entries.iter().enumerate() {
            for (bank, pcrs) in running.iter_mut() {
                let digest = extend_digest(list, entry, *bank, mode)?;
                match pcrs.get_mut(&entry.pcr) {
                    Some(pcr) => bank.extend(pcr, &digest),
                    None => {
                        first_unexpected.get_or_insert(ReplayError::PcrNotExpected {
                            number: entry.number,
                            at: entry.location,
                            pcr: entry.pcr,
                            bank: *bank,
                        });
                    }
                }
            }
            if all_match(&running, expected) {
                covered = Some(index + 1);
                break;
            }
        }
    }
    let Some(covered) = covered else {
        let all: Vec<PcrMismatch> = expected
            .iter()
            .flat_map(|(bank, pcrs)| {
                let running = &running;
                pcrs.iter().filter_map(move |(pcr, value)| {
                    let computed = running.get(bank)?.get(pcr)?;
                    (computed != value).then(|| PcrMismatch {
                        bank: *bank,
                        pcr: *pcr,
                        expected: value.clone(),
                        computed: computed.clone(),
                    })
                })
            })
            .collect();
        return Err(match all.first() {
            Some(first) => ReplayError::Mismatch {
                mode,
                first: first.clone(),
                all,
            },
            None => ReplayError::NothingExpected,
        });
    };
    if let Some(err) = first_unexpected {
        return Err(err);
    }
    let prefix = list.entries.get(..covered).unwrap_or_default();
    let mut violations = Vec::new();
    let mut unbound = Vec::new();
    for entry in prefix {
        match entry.check_template_hash(list.template_hash_algorithm) {
            TemplateHashCheck::Match => {}
            TemplateHashCheck::Violation => violations.push(entry.number),
            TemplateHashCheck::NotRecomputable => unbound.push(entry.number),
            TemplateHashCheck::Mismatch { recorded, computed } => {
                return Err(ReplayError::TemplateHash {
                    number: entry.number,
                    at: entry.location,
                    recorded,
                    computed,
                })
            }
        }
    }
    Ok(VerifiedImaList {
        mode,
        format: list.format,
        template_hash_algorithm: list.template_hash_algorithm,
        entries: prefix.to_vec(),
        unverified_tail: list.entries.len() - covered,
        violations,
        unbound,
    })
}

/// [`verify`] with the current kernels' [`ReplayMode::PerBankTemplateHash`] first and, only if
/// that fails, the pre-5.8 [`ReplayMode::PaddedSha1`]. The mode that matched is recorded in the
/// result; when both fail the per-bank error is returned.
pub fn verify_any_mode(
    list: &ImaList,
    expected: &BankPcrs,
) -> Result<VerifiedImaList, ReplayError> {
    match verify(list, expected, ReplayMode::PerBankTemplateHash) {
        Ok(verified) => Ok(verified),
        Err(first) => verify(list, expected, ReplayMode::PaddedSha1).map_err(|_| first),
    }
}

pub(crate) fn serialize_bank_pcrs<S: Serializer>(pcrs: &BankPcrs, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pcrs.iter().map(|(bank, values)| {
        let values: BTreeMap<u32, String> =
            values.iter().map(|(p, v)| (*p, hex::encode(v))).collect();
        (*bank, values)
    }))
}
