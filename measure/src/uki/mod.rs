//! Unified Kernel Images (UKI): sections, the PCR 11 value systemd-stub will produce, and
//! signed PCR policies in systemd's `.pcrsig` format.
//!
//! A UKI is a PE/COFF image — systemd-stub plus `.linux`, `.initrd`, `.cmdline`, `.osrel`, ...
//! sections (UAPI.5 "Unified Kernel Image", <https://uapi-group.org/specifications/specs/unified_kernel_image/>).
//! At boot the stub measures, into PCR 11, for each section it knows and in its fixed order,
//! `H(name || NUL)` then `H(content)`; systemd-pcrphase later extends `H(word)` (no NUL) for
//! each boot phase word (`enter-initrd`, `leave-initrd`, `sysinit`, `ready`). This module predicts
//! those values from the image alone, as `systemd-measure calculate` does from the section
//! files, and signs the resulting TPM2 PolicyPCR digests as `systemd-measure sign` does
//! ([`policy`]).
//!
//! ## Trust assumptions
//! The image is untrusted input: it is parsed through [`crate::codec::Reader`] ([`pe`]), every
//! section is bounds-checked, and an ambiguous image (two sections of a measured name,
//! overlapping sections) is refused rather than guessed at. Which sections are measured depends
//! on the stub's version, read from the image itself ([`stub`]); a stub older or newer than the
//! known tables is refused unless the caller states which release to assume.

pub mod pe;
pub mod policy;
pub mod stub;
pub mod svn;

use crate::HashAlg;
use pe::{MeasuredContent, PeError, PeImage, Section};
use serde::Serialize;
use std::collections::BTreeMap;
use stub::{StubError, StubProfile, StubVersion};
use thiserror::Error;

/// The PCR systemd-stub measures UKI sections into (`TPM2_PCR_KERNEL_BOOT`).
pub const PCR_KERNEL_BOOT: u32 = 11;

/// The phases `systemd-measure` predicts when none are given: from entering the initrd to the
/// system being up (systemd `src/boot/measure.c`, `parse_argv`).
pub const DEFAULT_PHASES: [&str; 4] = [
    "enter-initrd",
    "enter-initrd:leave-initrd",
    "enter-initrd:leave-initrd:sysinit",
    "enter-initrd:leave-initrd:sysinit:ready",
];

/// The banks Warrant predicts when none are given.
pub const DEFAULT_BANKS: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

/// A UKI that cannot be predicted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UkiError {
    #[error(transparent)]
    Pe(#[from] PeError),
    #[error(transparent)]
    Stub(#[from] StubError),
    /// Two sections carry a name the stub measures; which one it picks is not something to bet
    /// a disk key on.
    #[error("section {name} appears {count} times")]
    DuplicateSection { name: String, count: usize },
    /// There is no `.linux` section, so this is no UKI.
    #[error("no .linux section: not a unified kernel image")]
    NoLinux,
    /// The bank cannot be predicted (systemd-stub measures SHA-1/SHA-2 banks only here).
    #[error("bank {alg} is not supported for PCR 11 prediction")]
    UnsupportedBank { alg: HashAlg },
}

/// A section the stub will measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasuredSection {
    pub name: &'static str,
    /// `VirtualSize`: bytes measured (file bytes then zeros).
    pub size: usize,
    /// Of which zeros beyond `SizeOfRawData`.
    pub zero_fill: usize,
}

/// A parsed UKI: its PE layout, the stub version, and what that stub measures.
#[derive(Debug, Clone)]
pub struct Uki<'a> {
    file: &'a [u8],
    pub pe: PeImage,
    /// From `.sdmagic`; `None` only when the caller assumed a release for a stub without one.
    pub stub: Option<StubVersion>,
    pub profile: StubProfile,
}

impl<'a> Uki<'a> {
    /// Parses `file`, reading the stub's release from `.sdmagic`.
    pub fn parse(file: &'a [u8]) -> Result<Self, UkiError> {
        Self::parse_assuming(file, None)
    }

    /// Parses `file`; with `assume_release`, uses that systemd release's measurement table
    /// instead of the one `.sdmagic` names (for stubs Warrant does not know yet, after checking
    /// their section table by hand).
    pub fn parse_assuming(file: &'a [u8], assume_release: Option<u32>) -> Result<Self, UkiError> {
        let pe = PeImage::parse(file)?;
        let stub = match unique(&pe, ".sdmagic")? {
            Some(s) => Some(StubVersion::from_sdmagic(s.measured_content(file).bytes)?),
            None if assume_release.is_some() => None,
            None => return Err(StubError::NoSdmagic.into()),
        };
        let profile = match (assume_release, &stub) {
            (Some(major), _) => StubProfile::for_release(major, &major.to_string())?,
            (None, Some(v)) => StubProfile::for_release(v.major, &v.version)?,
            (None, None) => return Err(StubError::NoSdmagic.into()),
        };
        for name in profile.unpredicted {
            if !pe.sections_named(name).is_empty() {
                return Err(StubError::Unpredicted {
                    section: (*name).to_string(),
                    major: profile.major,
                }
                .into());
            }
        }
        for name in profile.measured {
            unique(&pe, name)?;
        }
        if unique(&pe, ".linux")?.is_none() {
            return Err(UkiError::NoLinux);
        }
        Ok(Uki {
            file,
            pe,
            stub,
            profile,
        })
    }

    /// The section named `name`, if present (names are unique among measured ones).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.pe.sections_named(name).first().copied()
    }

    /// The in-memory content of a section.
    pub fn content(&self, section: &Section) -> MeasuredContent<'a> {
        section.measured_content(self.file)
    }

    /// The sections the stub will measure, in order; absent and empty ones are skipped, as the
    /// stub skips them.
    pub fn measured(&self) -> Vec<(&'static str, MeasuredContent<'a>)> {
        self.profile
            .measured
            .iter()
            .filter_map(|name| {
                let content = self.content(self.section(name)?);
                (!content.is_empty()).then_some((*name, content))
            })
            .collect()
    }

    /// Summary of [`Uki::measured`].
    pub fn measured_sections(&self) -> Vec<MeasuredSection> {
        self.measured()
            .into_iter()
            .map(|(name, c)| MeasuredSection {
                name,
                size: c.len(),
                zero_fill: c.zeros,
            })
            .collect()
    }

    /// PCR 11 after the stub has measured the image (before any phase).
    pub fn pcr11_after_stub(&self, alg: HashAlg) -> Result<Vec<u8>, UkiError> {
        check_bank(alg)?;
        let mut pcr = alg.zero();
        for (name, content) in self.measured() {
            // The name with its trailing NUL (`strsize8` in stub.c, `strlen + 1` in measure.c).
            let name_digest = alg.hash_parts(&[name.as_bytes(), &[0]]);
            alg.extend(&mut pcr, &name_digest);
            alg.extend(&mut pcr, &content.digest(alg));
        }
        Ok(pcr)
    }

    /// PCR 11 for each bank and each phase, in `systemd-measure calculate --json`'s shape.
    pub fn predict(&self, banks: &[HashAlg], phases: &[String]) -> Result<Prediction, UkiError> {
        let mut out = BTreeMap::new();
        for alg in banks {
            let base = self.pcr11_after_stub(*alg)?;
            let entries = phases
                .iter()
                .map(|phase| PhaseValue {
                    phase: (!phase.is_empty()).then(|| phase.clone()),
                    pcr: PCR_KERNEL_BOOT,
                    hash: extend_phase(*alg, &base, phase),
                })
                .collect();
            out.insert(alg.name().to_string(), entries);
        }
        Ok(Prediction(out))
    }
}

fn check_bank(alg: HashAlg) -> Result<(), UkiError> {
    match alg {
        HashAlg::Sha1 | HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512 => Ok(()),
        HashAlg::Sm3_256 => Err(UkiError::UnsupportedBank { alg }),
    }
}

/// The only section named `name`, or `None`; two or more is an error.
fn unique<'p>(pe: &'p PeImage, name: &str) -> Result<Option<&'p Section>, UkiError> {
    match pe.sections_named(name).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        more => Err(UkiError::DuplicateSection {
            name: name.to_string(),
            count: more.len(),
        }),
    }
}

/// PCR 11 after extending `H(word)` for each colon-separated word of `phase` (systemd-pcrphase
/// extends the bare word, without NUL; `measure_phase` in `src/boot/measure.c`).
pub fn extend_phase(alg: HashAlg, base: &[u8], phase: &str) -> Vec<u8> {
    let mut pcr = base.to_vec();
    for word in phase.split(':').filter(|w| !w.is_empty()) {
        alg.extend(&mut pcr, &alg.hash(word.as_bytes()));
    }
    pcr
}

/// The phase list as `systemd-measure` builds it: the defaults when none are given; otherwise
/// each normalised (empty words dropped, so `::a::b:` is `a:b`), then sorted and deduplicated.
pub fn normalize_phases(phases: &[String]) -> Vec<String> {
    if phases.is_empty() {
        return DEFAULT_PHASES.iter().map(|p| (*p).to_string()).collect();
    }
    let mut out: Vec<String> = phases
        .iter()
        .map(|p| {
            p.split(':')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One predicted value, as an element of `systemd-measure calculate --json`'s arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseValue {
    /// Absent for the empty phase (the value right after the stub), as in systemd-measure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub pcr: u32,
    #[serde(serialize_with = "crate::serde_hex")]
    pub hash: Vec<u8>,
}

/// Predicted PCR 11 values: `{"sha256": [{"phase": ..., "pcr": 11, "hash": ...}, ...], ...}`,
/// banks in name order like systemd-measure's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Prediction(pub BTreeMap<String, Vec<PhaseValue>>);

#[cfg(test)]
mod tests;
