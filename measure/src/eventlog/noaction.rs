//! `EV_NO_ACTION` event payloads (TCG PC Client PFP 1.06, section 10.4.5 and 9.4.5): the Spec ID
//! header, the StartupLocality event, and the SP800-155 reference manifest event. These events
//! are never extended into a PCR; StartupLocality sets PCR 0's starting value.

use crate::alg::HashAlg;
use crate::codec::{CodecError, Reader};
use crate::efi::Guid;
use serde::Serialize;

/// Signature of the crypto-agile header event, `"Spec ID Event03\0"`.
pub const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";
/// Signature of the SHA-1 header event some TPM 1.2 era logs carry, `"Spec ID Event00\0"`.
pub const SPEC_ID_EVENT00: &[u8; 16] = b"Spec ID Event00\0";
/// Signature of the StartupLocality event, `"StartupLocality\0"`.
pub const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";
/// Signature of the SP800-155 reference manifest event, `"SP800-155 Event\0"`.
pub const SP800_155_EVENT: &[u8; 16] = b"SP800-155 Event\0";
/// Signature of the SP800-155 Event3 (PFP 1.06 section 10.4.5.3), `"SP800-155 Event3"`.
pub const SP800_155_EVENT3: &[u8; 16] = b"SP800-155 Event3";

/// One `TCG_EfiSpecIdEventAlgorithmSize` entry: an algorithm the log carries and its digest size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlgorithmSize {
    /// The raw `TPM_ALG_ID`.
    pub algorithm_id: u16,
    /// The algorithm, when Warrant can compute it.
    pub algorithm: Option<HashAlg>,
    pub digest_size: u16,
}

/// `TCG_EfiSpecIDEventStruct` (PFP 1.06 section 10.4.5.1), the first event of a crypto-agile log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecIdEvent {
    pub signature: String,
    pub platform_class: u32,
    pub spec_version_minor: u8,
    pub spec_version_major: u8,
    pub spec_errata: u8,
    pub uintn_size: u8,
    pub algorithms: Vec<AlgorithmSize>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub vendor_info: Vec<u8>,
}

/// Why a Spec ID event is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecIdError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("Spec ID event at offset {offset} lists no algorithms")]
    NoAlgorithms { offset: usize },
    #[error("Spec ID event at offset {offset} gives {algorithm} a digest size of {size}, not {expected}")]
    WrongDigestSize {
        offset: usize,
        algorithm: HashAlg,
        size: u16,
        expected: usize,
    },
    #[error("Spec ID event at offset {offset} lists algorithm {algorithm_id:#06x} twice")]
    DuplicateAlgorithm { offset: usize, algorithm_id: u16 },
    #[error(
        "Spec ID event at offset {offset} gives algorithm {algorithm_id:#06x} a digest size of 0"
    )]
    ZeroDigestSize { offset: usize, algorithm_id: u16 },
}

impl SpecIdEvent {
    /// Parses a whole Spec ID Event03 payload (the signature included). `base` is the payload's
    /// absolute offset in the log. Bytes after the structure are an error.
    pub fn parse(data: &[u8], base: usize) -> Result<Self, SpecIdError> {
        let (spec, used) = Self::parse_prefix(data, base)?;
        Reader::at(data.get(used..).unwrap_or_default(), base + used).finish("SpecID event")?;
        Ok(spec)
    }

    /// Parses a Spec ID Event03 structure at the start of `data` and returns it with the number
    /// of bytes it occupies, which the structure itself determines (through its algorithm count
    /// and vendor-info size).
    pub fn parse_prefix(data: &[u8], base: usize) -> Result<(Self, usize), SpecIdError> {
        let mut r = Reader::at(data, base);
        let signature = r.take(16, "SpecID signature")?;
        let platform_class = r.u32_le("SpecID platformClass")?;
        let spec_version_minor = r.u8("SpecID specVersionMinor")?;
        let spec_version_major = r.u8("SpecID specVersionMajor")?;
        let spec_errata = r.u8("SpecID specErrata")?;
        let uintn_size = r.u8("SpecID uintnSize")?;
        let count_offset = r.offset();
        let count = r.u32_le("SpecID numberOfAlgorithms")?;
        // Each entry is 4 bytes: check the count against what remains before allocating.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count.saturating_mul(4) > r.remaining() {
            return Err(CodecError::Truncated {
                offset: r.offset(),
                what: "SpecID digestSizes",
                needed: count.saturating_mul(4),
                remaining: r.remaining(),
            }
            .into());
        }
        if count == 0 {
            return Err(SpecIdError::NoAlgorithms {
                offset: count_offset,
            });
        }
        let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.offset();
            let algorithm_id = r.u16_le("SpecID algorithmId")?;
            let digest_size = r.u16_le("SpecID digestSize")?;
            let algorithm = HashAlg::from_tpm_alg_id(algorithm_id);
            if let Some(alg) = algorithm {
                if usize::from(digest_size) != alg.digest_len() {
                    return Err(SpecIdError::WrongDigestSize {
                        offset: at,
                        algorithm: alg,
                        size: digest_size,
                        expected: alg.digest_len(),
                    });
                }
            }
            if digest_size == 0 {
                return Err(SpecIdError::ZeroDigestSize {
                    offset: at,
                    algorithm_id,
                });
            }
            if algorithms.iter().any(|a| a.algorithm_id == algorithm_id) {
                return Err(SpecIdError::DuplicateAlgorithm {
                    offset: at,
                    algorithm_id,
                });
            }
            algorithms.push(AlgorithmSize {
                algorithm_id,
                algorithm,
                digest_size,
            });
        }
        let vendor_info_size = r.u8("SpecID vendorInfoSize")?;
        let vendor_info = r
            .take(usize::from(vendor_info_size), "SpecID vendorInfo")?
            .to_vec();
        let used = r.offset() - base;
        let spec = SpecIdEvent {
            signature: c_string(signature),
            platform_class,
            spec_version_minor,
            spec_version_major,
            spec_errata,
            uintn_size,
            algorithms,
            vendor_info,
        };
        Ok((spec, used))
    }

    /// The digest size the header declares for `algorithm_id`.
    pub fn digest_size(&self, algorithm_id: u16) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|a| a.algorithm_id == algorithm_id)
            .map(|a| usize::from(a.digest_size))
    }
}

/// `TCG_EfiStartupLocalityEvent` (PFP 1.06 section 10.4.5.3): the locality from which
/// `TPM2_Startup` was issued, which is PCR 0's initial value (its last byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartupLocality {
    pub locality: u8,
}

impl StartupLocality {
    pub fn parse(data: &[u8], base: usize) -> Result<Self, CodecError> {
        let mut r = Reader::at(data, base);
        r.take(16, "StartupLocality signature")?;
        let locality = r.u8("StartupLocality locality")?;
        r.finish("StartupLocality event")?;
        Ok(StartupLocality { locality })
    }
}

/// `TCG_Sp800_155_PlatformId_Event` / `Event2` (PFP 1.06 section 10.4.5.2): the platform's
/// reference manifest identity. The vendor strings are `UINT8` length-prefixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sp800155Event {
    pub signature: String,
    pub vendor_id: u32,
    pub reference_manifest_guid: Guid,
    /// The remaining identity fields, kept verbatim: their layout differs between versions
    /// (`Event`, `Event2`, `Event3`) and no appraisal uses them yet.
    #[serde(serialize_with = "crate::serde_hex")]
    pub rest: Vec<u8>,
}

impl Sp800155Event {
    pub fn parse(data: &[u8], base: usize) -> Result<Self, CodecError> {
        let mut r = Reader::at(data, base);
        let signature = c_string(r.take(16, "SP800-155 signature")?);
        let vendor_id = r.u32_le("SP800-155 VendorId")?;
        let reference_manifest_guid = r.guid("SP800-155 ReferenceManifestGuid")?;
        let rest = r.rest().to_vec();
        Ok(Sp800155Event {
            signature,
            vendor_id,
            reference_manifest_guid,
            rest,
        })
    }
}

/// The printable part of a NUL-terminated signature.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}
