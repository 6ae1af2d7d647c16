//! `TPMS_ATTEST` (TPM 2.0 Library Part 2, section 10.12.12): what a TPM signs in a quote or a
//! certification, with the `TPML_PCR_SELECTION` (section 10.9.7) a quote covers.

use super::{
    hash_alg, tpm2b, ParseError, MAX_DATA, MAX_DIGEST, MAX_NAME, MAX_PCR_BANKS, MAX_PCR_SELECT,
    TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY, TPM_ST_ATTEST_QUOTE,
};
use crate::alg::HashAlg;
use crate::codec::Reader;
use crate::pcr::MAX_PCR;
use serde::Serialize;

/// `TPMS_CLOCK_INFO` (Part 2, section 10.11.1): the TPM's clock when it signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared.
    pub clock: u64,
    /// `TPM_Init`s since the last `TPM2_Clear` (reboots).
    pub reset_count: u32,
    /// `TPM2_Shutdown(STATE)`/`TPM2_Startup(STATE)` cycles since the last reset (hibernations).
    pub restart_count: u32,
    /// Whether `clock` cannot have been set back since it was last reported.
    pub safe: bool,
}

/// One `TPMS_PCR_SELECTION` (Part 2, section 10.6.2): a bank and its selected PCRs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrSelection {
    pub bank: HashAlg,
    /// Selected PCR indices, ascending.
    pub pcrs: Vec<u32>,
}

/// `TPMS_QUOTE_INFO` (Part 2, section 10.12.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    /// The `TPML_PCR_SELECTION`, banks in the order the TPM hashed them.
    pub pcr_select: Vec<PcrSelection>,
    /// `H(PCR values in selection order)`, with the hash of the signing scheme (Part 3, 18.4).
    pub pcr_digest: Vec<u8>,
}

/// `TPMS_CERTIFY_INFO` (Part 2, section 10.12.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyInfo {
    /// Name of the certified object.
    pub name: Vec<u8>,
    /// Qualified name of the certified object.
    pub qualified_name: Vec<u8>,
}

/// `TPMU_ATTEST` (Part 2, section 10.12.11) for the types Warrant parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attested {
    /// `TPM_ST_ATTEST_QUOTE`.
    Quote(QuoteInfo),
    /// `TPM_ST_ATTEST_CERTIFY`.
    Certify(CertifyInfo),
}

impl Attested {
    /// The `TPMI_ST_ATTEST` tag of this variant.
    pub fn tag(&self) -> u16 {
        match self {
            Attested::Quote(_) => TPM_ST_ATTEST_QUOTE,
            Attested::Certify(_) => TPM_ST_ATTEST_CERTIFY,
        }
    }
}

/// A parsed `TPMS_ATTEST` (Part 2, section 10.12.12). **Unverified**: only
/// [`super::Quote::verify`] says the TPM signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    /// `qualifiedSigner`: the qualified name of the signing key.
    pub qualified_signer: Vec<u8>,
    /// `extraData`: the caller's nonce.
    pub extra_data: Vec<u8>,
    pub clock_info: ClockInfo,
    /// Vendor-specific firmware version.
    pub firmware_version: u64,
    pub attested: Attested,
}

impl Attest {
    /// Parses a whole marshalled `TPMS_ATTEST`; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let offset = r.offset();
        let magic = r.u32_be("TPMS_ATTEST.magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(ParseError::BadMagic {
                offset,
                found: magic,
            });
        }
        let type_offset = r.offset();
        let tag = r.u16_be("TPMS_ATTEST.type")?;
        if tag != TPM_ST_ATTEST_QUOTE && tag != TPM_ST_ATTEST_CERTIFY {
            return Err(ParseError::UnsupportedAttestType {
                offset: type_offset,
                tag,
            });
        }
        let qualified_signer = tpm2b(&mut r, "TPMS_ATTEST.qualifiedSigner", MAX_NAME)?.to_vec();
        let extra_data = tpm2b(&mut r, "TPMS_ATTEST.extraData", MAX_DATA)?.to_vec();
        let clock_info = clock_info(&mut r)?;
        let firmware_version = r.u64_be("TPMS_ATTEST.firmwareVersion")?;
        let attested = if tag == TPM_ST_ATTEST_QUOTE {
            let pcr_select = pcr_selection_list(&mut r)?;
            let pcr_digest = tpm2b(&mut r, "TPMS_QUOTE_INFO.pcrDigest", MAX_DIGEST)?.to_vec();
            Attested::Quote(QuoteInfo {
                pcr_select,
                pcr_digest,
            })
        } else {
            let name = tpm2b(&mut r, "TPMS_CERTIFY_INFO.name", MAX_NAME)?.to_vec();
            let qualified_name =
                tpm2b(&mut r, "TPMS_CERTIFY_INFO.qualifiedName", MAX_NAME)?.to_vec();
            Attested::Certify(CertifyInfo {
                name,
                qualified_name,
            })
        };
        r.finish("TPMS_ATTEST")?;
        Ok(Attest {
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            attested,
        })
    }
}

/// `TPMS_CLOCK_INFO` (Part 2, section 10.11.1).
fn clock_info(r: &mut Reader<'_>) -> Result<ClockInfo, ParseError> {
    let clock = r.u64_be("TPMS_CLOCK_INFO.clock")?;
    let reset_count = r.u32_be("TPMS_CLOCK_INFO.resetCount")?;
    let restart_count = r.u32_be("TPMS_CLOCK_INFO.restartCount")?;
    let offset = r.offset();
    let safe = match r.u8("TPMS_CLOCK_INFO.safe")? {
        0 => false,
        1 => true,
        value => {
            return Err(ParseError::BadBool {
                offset,
                what: "TPMS_CLOCK_INFO.safe",
                value,
            })
        }
    };
    Ok(ClockInfo {
        clock,
        reset_count,
        restart_count,
        safe,
    })
}

/// `TPML_PCR_SELECTION` (Part 2, section 10.9.7): at most [`MAX_PCR_BANKS`] banks, each a
/// `TPMS_PCR_SELECTION` (section 10.6.2) of at most [`MAX_PCR_SELECT`] bytes, no PCR beyond
/// [`MAX_PCR`] and no bank twice.
pub fn pcr_selection_list(r: &mut Reader<'_>) -> Result<Vec<PcrSelection>, ParseError> {
    let offset = r.offset();
    let count = r.u32_be("TPML_PCR_SELECTION.count")?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count > MAX_PCR_BANKS {
        return Err(ParseError::TooLarge {
            offset,
            what: "TPML_PCR_SELECTION.count",
            size: count,
            max: MAX_PCR_BANKS,
        });
    }
    let mut out: Vec<PcrSelection> = Vec::with_capacity(count);
    for _ in 0..count {
        let bank_offset = r.offset();
        let bank = hash_alg(r, "TPMS_PCR_SELECTION.hash")?;
        if out.iter().any(|s| s.bank == bank) {
            return Err(ParseError::DuplicateBank {
                offset: bank_offset,
                bank,
            });
        }
        let size_offset = r.offset();
        let size = usize::from(r.u8("TPMS_PCR_SELECTION.sizeofSelect")?);
        if size > MAX_PCR_SELECT {
            return Err(ParseError::TooLarge {
                offset: size_offset,
                what: "TPMS_PCR_SELECTION.sizeofSelect",
                size,
                max: MAX_PCR_SELECT,
            });
        }
        let select_offset = r.offset();
        let select = r.take(size, "TPMS_PCR_SELECTION.pcrSelect")?;
        let mut pcrs = Vec::new();
        for (byte_index, byte) in (0u32..).zip(select) {
            for bit in 0..8u32 {
                if byte & (1 << bit) != 0 {
                    let pcr = byte_index * 8 + bit;
                    if pcr > MAX_PCR {
                        return Err(ParseError::PcrOutOfRange {
                            offset: select_offset,
                            pcr,
                        });
                    }
                    pcrs.push(pcr);
                }
            }
        }
        out.push(PcrSelection { bank, pcrs });
    }
    Ok(out)
}
