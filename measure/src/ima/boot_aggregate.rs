//! The `boot_aggregate`: IMA's first entry, binding the list to the firmware PCRs.
//!
//! At initialisation IMA measures a digest over PCRs read from the TPM and records it as the
//! file digest of an entry named `boot_aggregate` (`ima_add_boot_aggregate` in `ima_init.c`,
//! `ima_calc_boot_aggregate` in `ima_crypto.c`):
//!
//! - The bank is the one whose algorithm is `ima_hash` if the TPM has it, else SHA-256, else
//!   SHA-1, and the entry's digest is tagged with that algorithm (`sha256:...`). Older kernels
//!   (before commit `ima: Switch to ima_hash_algo for boot aggregate`, Linux 5.8 era) always used
//!   SHA-1 over the SHA-1 bank.
//! - The digest is `H(PCR0 || ... || PCR7)` over that bank ([`BootAggregateVariant::Pcr0To7`]).
//!   Since commit `ima: extend boot_aggregate with kernel measurements` (same era) non-SHA-1
//!   banks also include PCR 8 and 9, which hold the kernel command line and image:
//!   `H(PCR0 || ... || PCR9)` ([`BootAggregateVariant::Pcr0To9`]). The SHA-1 boot aggregate
//!   never includes them ("to avoid ambiguity"). A kernel with the first commit but not the
//!   second, and some TPM-simulator harnesses, produce a non-SHA-1 `Pcr0To7` aggregate.
//! - Without a TPM (TPM-bypass), or with the `ima` template when no SHA-1 bank is usable, the
//!   digest is all zeros; old kernels also recorded that entry as a violation.
//! - Kernels built with `IMA_INIT_LATE_SYNC` (initialising IMA at `late_initcall_sync`) name the
//!   entry `boot_aggregate_late` so that verifiers can tell; both names are accepted.

use super::algo::kernel_hash_algo;
use super::{EventName, ImaList};
use crate::alg::HashAlg;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use thiserror::Error;

/// Name of the first entry (`boot_aggregate_name` in `ima_init.c`).
pub const BOOT_AGGREGATE_NAME: &[u8] = b"boot_aggregate";
/// Its name when IMA initialises late (`IMA_INIT_LATE_SYNC`).
pub const BOOT_AGGREGATE_LATE_NAME: &[u8] = b"boot_aggregate_late";

/// Which PCRs the boot aggregate covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootAggregateVariant {
    /// `H(PCR0..PCR7)`: every SHA-1 boot aggregate, and non-SHA-1 ones of transitional kernels.
    Pcr0To7,
    /// `H(PCR0..PCR9)`: non-SHA-1 boot aggregates of current kernels.
    Pcr0To9,
}

impl BootAggregateVariant {
    pub fn pcrs(self) -> RangeInclusive<u32> {
        match self {
            BootAggregateVariant::Pcr0To7 => 0..=7,
            BootAggregateVariant::Pcr0To9 => 0..=9,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BootAggregateError {
    #[error("PCR {pcr} of the {bank} bank is missing")]
    MissingPcr { bank: HashAlg, pcr: u32 },
    #[error("PCR {pcr} of the {bank} bank has {len} bytes (expected {expected})")]
    PcrLength {
        bank: HashAlg,
        pcr: u32,
        len: usize,
        expected: usize,
    },
    #[error("the list is empty")]
    NoEntries,
    #[error("the first entry is {found}, not boot_aggregate or boot_aggregate_late")]
    NotBootAggregate { found: String },
    #[error("the boot_aggregate entry's template {template} has no file digest")]
    NoDigest { template: String },
    #[error("the boot_aggregate uses {algorithm}, which is no TPM bank algorithm")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("no {bank} PCR values were given")]
    MissingBank { bank: HashAlg },
}

/// `H(PCR_i || ...)` over the PCRs of `variant`, all of the `alg` bank: the boot aggregate as
/// `ima_calc_boot_aggregate_tfm` computes it. A missing PCR is an error, never a zero.
pub fn boot_aggregate(
    pcrs: &BTreeMap<u32, Vec<u8>>,
    alg: HashAlg,
    variant: BootAggregateVariant,
) -> Result<Vec<u8>, BootAggregateError> {
    let mut parts = Vec::new();
    for pcr in variant.pcrs() {
        let value = pcrs
            .get(&pcr)
            .ok_or(BootAggregateError::MissingPcr { bank: alg, pcr })?;
        if value.len() != alg.digest_len() {
            return Err(BootAggregateError::PcrLength {
                bank: alg,
                pcr,
                len: value.len(),
                expected: alg.digest_len(),
            });
        }
        parts.push(value.as_slice());
    }
    Ok(alg.hash_parts(&parts))
}

/// A boot aggregate Warrant computed from the firmware PCRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputedAggregate {
    pub variant: BootAggregateVariant,
    #[serde(serialize_with = "crate::serde_hex")]
    pub digest: Vec<u8>,
}

/// What the recorded boot aggregate turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "variant")]
pub enum BootAggregateVerdict {
    /// The recorded digest is the hash of the firmware PCRs in this variant.
    Matched(BootAggregateVariant),
    /// The recorded digest is all zeros: IMA ran without a usable TPM. Nothing binds the list
    /// to the firmware.
    Zero,
    /// No variant gives the recorded digest.
    Mismatch,
}

/// Result of [`check_boot_aggregate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootAggregateCheck {
    /// The bank the boot aggregate was computed over (its file-digest algorithm).
    pub algorithm: HashAlg,
    #[serde(serialize_with = "crate::serde_hex")]
    pub recorded: Vec<u8>,
    pub verdict: BootAggregateVerdict,
    /// Every variant computed, in the order tried.
    pub computed: Vec<ComputedAggregate>,
    /// Variants that could not be computed because PCR 8 or 9 was not given.
    pub not_computed: Vec<BootAggregateVariant>,
}

/// Checks the list's first entry against firmware PCR values (from a quote, or from replaying
/// the firmware event log), by bank. For SHA-1 only [`BootAggregateVariant::Pcr0To7`] is tried;
/// for other banks [`BootAggregateVariant::Pcr0To9`] first, then `Pcr0To7`.
///
/// The entry's digest is only as trustworthy as the list: call this on entries whose template
/// hash was checked and replayed ([`super::replay::verify`]).
pub fn check_boot_aggregate(
    list: &ImaList,
    firmware_pcrs_by_bank: &BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
) -> Result<BootAggregateCheck, BootAggregateError> {
    let first = list.entries.first().ok_or(BootAggregateError::NoEntries)?;
    let name = first.template.name();
    let name_bytes = name.map(EventName::as_bytes);
    if name_bytes != Some(BOOT_AGGREGATE_NAME) && name_bytes != Some(BOOT_AGGREGATE_LATE_NAME) {
        return Err(BootAggregateError::NotBootAggregate {
            found: name.map_or_else(|| first.template_name.clone(), ToString::to_string),
        });
    }
    let digest = first
        .template
        .file_digest()
        .ok_or_else(|| BootAggregateError::NoDigest {
            template: first.template_name.clone(),
        })?;
    let algorithm = kernel_hash_algo(digest.algorithm.as_bytes())
        .and_then(|a| a.hash_alg)
        .ok_or_else(|| BootAggregateError::UnsupportedAlgorithm {
            algorithm: digest.algorithm.to_owned(),
        })?;
    let recorded = digest.digest.to_vec();
    let mut check = BootAggregateCheck {
        algorithm,
        recorded,
        verdict: BootAggregateVerdict::Mismatch,
        computed: Vec::new(),
        not_computed: Vec::new(),
    };
    if check.recorded.iter().all(|b| *b == 0) {
        check.verdict = BootAggregateVerdict::Zero;
        return Ok(check);
    }
    let pcrs = firmware_pcrs_by_bank
        .get(&algorithm)
        .ok_or(BootAggregateError::MissingBank { bank: algorithm })?;
    let variants: &[BootAggregateVariant] = if algorithm == HashAlg::Sha1 {
        &[BootAggregateVariant::Pcr0To7]
    } else {
        &[BootAggregateVariant::Pcr0To9, BootAggregateVariant::Pcr0To7]
    };
    for &variant in variants {
        let digest = match boot_aggregate(pcrs, algorithm, variant) {
            Ok(d) => d,
            Err(BootAggregateError::MissingPcr { pcr: 8 | 9, .. }) => {
                check.not_computed.push(variant);
                continue;
            }
            Err(e) => return Err(e),
        };
        let matched = digest == check.recorded;
        check.computed.push(ComputedAggregate { variant, digest });
        if matched {
            check.verdict = BootAggregateVerdict::Matched(variant);
            break;
        }
    }
    Ok(check)
}
