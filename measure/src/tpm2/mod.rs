//! TPM 2.0 structures a verifier receives from a TPM, and the check of a quote.
//!
//! A TPM quote is three byte strings the TPM produced plus one the verifier chose:
//! - the marshalled `TPMS_ATTEST` (TPM 2.0 Library Part 2, section 10.12.12) that was signed,
//!   parsed by [`attest::Attest::parse`];
//! - the `TPMT_SIGNATURE` over it (Part 2, section 11.3.4), parsed by
//!   [`signature::Signature::parse`];
//! - the attestation key's `TPM2B_PUBLIC` / `TPMT_PUBLIC` (Part 2, sections 12.2.4 and 12.2.5),
//!   parsed by [`public::Public::parse`];
//! - the nonce the verifier sent, which the TPM copied into `extraData`.
//!
//! [`quote::Quote::verify`] checks all of them against the PCR values the node reported and
//! returns a [`quote::VerifiedQuote`], the only type from which PCR values may be trusted.
//!
//! Every structure is big-endian and read through [`crate::codec::Reader`]: each size is
//! checked against both its Part 2 maximum and the bytes that remain, and trailing bytes are an
//! error. Nothing here talks to a TPM.
//!
//! ## Trust assumptions
//! - The attestation key is a restricted signing key whose private part never left a genuine
//!   TPM. This module checks the key's *attributes* (restricted, sign, not decrypt) but cannot
//!   prove where the key lives: binding the AK to an endorsement key and a manufacturer
//!   certificate (credential activation) is the caller's job, and the caller must pass the AK
//!   public area it trusts, not the one the node sent along with the quote.
//! - A restricted key only signs `TPMS_ATTEST` structures the TPM built itself (Part 1,
//!   "Restricted Signing Key"), so a valid signature means the PCR digest and clock are the TPM's.

pub mod attest;
pub mod credential;
pub mod public;
pub mod quote;
pub mod signature;

pub use attest::{Attest, Attested, CertifyInfo, ClockInfo, PcrSelection, QuoteInfo};
pub use credential::{make_credential, CredentialError, MadeCredential};
pub use public::{EccCurve, ObjectAttributes, Public, PublicParams, Scheme, SymDef};
pub use quote::{Quote, QuoteError, VerifiedQuote};
pub use signature::Signature;

use crate::alg::HashAlg;
use crate::codec::{CodecError, Reader};
use thiserror::Error;

/// `TPM_ALG_NULL` (Part 2, section 6.3).
pub const TPM_ALG_NULL: u16 = 0x0010;
/// `TPM_ALG_RSA` (Part 2, section 6.3).
pub const TPM_ALG_RSA: u16 = 0x0001;
/// `TPM_ALG_ECC` (Part 2, section 6.3).
pub const TPM_ALG_ECC: u16 = 0x0023;
/// `TPM_ALG_RSASSA` (Part 2, section 6.3): RSASSA-PKCS1-v1_5.
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// `TPM_ALG_RSAES` (Part 2, section 6.3).
pub const TPM_ALG_RSAES: u16 = 0x0015;
/// `TPM_ALG_RSAPSS` (Part 2, section 6.3).
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// `TPM_ALG_OAEP` (Part 2, section 6.3).
pub const TPM_ALG_OAEP: u16 = 0x0017;
/// `TPM_ALG_ECDSA` (Part 2, section 6.3).
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// `TPM_ALG_ECDH` (Part 2, section 6.3).
pub const TPM_ALG_ECDH: u16 = 0x0019;
/// `TPM_ALG_ECDAA` (Part 2, section 6.3).
pub const TPM_ALG_ECDAA: u16 = 0x001A;
/// `TPM_ALG_SM2` (Part 2, section 6.3).
pub const TPM_ALG_SM2: u16 = 0x001B;
/// `TPM_ALG_ECSCHNORR` (Part 2, section 6.3).
pub const TPM_ALG_ECSCHNORR: u16 = 0x001C;
/// `TPM_ALG_ECMQV` (Part 2, section 6.3).
pub const TPM_ALG_ECMQV: u16 = 0x001D;
/// `TPM_ALG_AES`, `TPM_ALG_SM4`, `TPM_ALG_CAMELLIA` (Part 2, section 6.3).
pub const SYM_BLOCK_CIPHERS: [u16; 3] = [0x0006, 0x0013, 0x0026];
/// `TPM_ALG_MGF1`, `TPM_ALG_KDF1_SP800_56A`, `TPM_ALG_KDF2`, `TPM_ALG_KDF1_SP800_108`
/// (Part 2, section 6.3).
pub const KDF_SCHEMES: [u16; 4] = [0x0007, 0x0020, 0x0021, 0x0022];

/// `TPM_GENERATED_VALUE` (Part 2, section 6.2): the magic of every `TPMS_ATTEST`.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_CERTIFY` (Part 2, section 6.9).
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `TPM_ST_ATTEST_QUOTE` (Part 2, section 6.9).
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// `sizeof(TPMU_HA)` (Part 2, section 10.3.1): the largest digest, SHA-512.
pub const MAX_DIGEST: usize = 64;
/// `sizeof(TPMT_HA)` (Part 2, section 10.3.2): the bound of `TPM2B_DATA`.
pub const MAX_DATA: usize = 2 + MAX_DIGEST;
/// `sizeof(TPMU_NAME)` (Part 2, section 10.5.2): the bound of `TPM2B_NAME`.
pub const MAX_NAME: usize = 2 + MAX_DIGEST;
/// `MAX_RSA_KEY_BYTES` for 4096-bit keys (Part 2, section 11.2.4.5).
pub const MAX_RSA_KEY_BYTES: usize = 512;
/// `MAX_ECC_KEY_BYTES` for P-521 (Part 2, section 11.2.5.1).
pub const MAX_ECC_KEY_BYTES: usize = 66;
/// `HASH_COUNT` bound on the banks of a `TPML_PCR_SELECTION` (Part 2, section 10.9.7).
pub const MAX_PCR_BANKS: usize = 16;
/// Bound on `TPMS_PCR_SELECTION.sizeofSelect` (Part 2, section 10.6.2: `PCR_SELECT_MAX`; 3 bytes
/// cover the 24 PCRs of a PC Client TPM, one spare byte is tolerated if its bits are clear).
pub const MAX_PCR_SELECT: usize = 4;

/// Why bytes are not a well-formed TPM 2.0 structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Truncated input or trailing bytes.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// `TPMS_ATTEST.magic` is not `TPM_GENERATED_VALUE`: the TPM did not build this structure.
    #[error("magic {found:#010x} at offset {offset} is not TPM_GENERATED_VALUE (0xff544347)")]
    BadMagic { offset: usize, found: u32 },
    /// A `TPMI_ST_ATTEST` this parser does not know.
    #[error("unsupported attestation type {tag:#06x} at offset {offset}")]
    UnsupportedAttestType { offset: usize, tag: u16 },
    /// A size field larger than its Part 2 maximum.
    #[error("{what} at offset {offset}: size {size} exceeds the maximum {max}")]
    TooLarge {
        offset: usize,
        what: &'static str,
        size: usize,
        max: usize,
    },
    /// An algorithm identifier not allowed (or not supported) in this field.
    #[error("{what} at offset {offset}: unsupported algorithm {alg:#06x}")]
    UnsupportedAlgorithm {
        offset: usize,
        what: &'static str,
        alg: u16,
    },
    /// A PCR selection bit beyond the platform's last PCR.
    #[error("PCR selection at offset {offset} selects PCR {pcr}, beyond PCR 23")]
    PcrOutOfRange { offset: usize, pcr: u32 },
    /// The same bank twice in one `TPML_PCR_SELECTION`.
    #[error("PCR bank {bank} selected twice (offset {offset})")]
    DuplicateBank { offset: usize, bank: HashAlg },
    /// A `TPMI_YES_NO` that is neither 0 nor 1 (Part 2, section 9.2).
    #[error("{what} at offset {offset} is {value}, not 0 or 1")]
    BadBool {
        offset: usize,
        what: &'static str,
        value: u8,
    },
    /// `TPMA_OBJECT` with reserved bits set (Part 2, section 8.3.2).
    #[error("object attributes {attributes:#010x} at offset {offset} set reserved bits")]
    ReservedAttributes { offset: usize, attributes: u32 },
}

/// Reads a `TPM2B_*`: a big-endian `u16` size, checked against `max`, then that many bytes.
pub(crate) fn tpm2b<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
    max: usize,
) -> Result<&'a [u8], ParseError> {
    let offset = r.offset();
    let size = usize::from(r.u16_be(what)?);
    if size > max {
        return Err(ParseError::TooLarge {
            offset,
            what,
            size,
            max,
        });
    }
    Ok(r.take(size, what)?)
}

/// Reads a `TPMI_ALG_HASH` (Part 2, section 9.27) that must be a known digest algorithm.
pub(crate) fn hash_alg(r: &mut Reader<'_>, what: &'static str) -> Result<HashAlg, ParseError> {
    let offset = r.offset();
    let alg = r.u16_be(what)?;
    HashAlg::from_tpm_alg_id(alg).ok_or(ParseError::UnsupportedAlgorithm { offset, what, alg })
}

#[cfg(test)]
mod tests;
