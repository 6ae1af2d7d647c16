//! `TPMT_SIGNATURE` (TPM 2.0 Library Part 2, section 11.3.4) for the schemes an attestation key
//! uses: RSASSA-PKCS1-v1_5, RSA-PSS and ECDSA.

use super::{
    hash_alg, tpm2b, ParseError, MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES, TPM_ALG_ECDSA, TPM_ALG_NULL,
    TPM_ALG_RSAPSS, TPM_ALG_RSASSA,
};
use crate::alg::HashAlg;
use crate::codec::Reader;

/// A parsed `TPMT_SIGNATURE`. Unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// `TPM_ALG_RSASSA` with `TPMS_SIGNATURE_RSA` (Part 2, section 11.3.1).
    RsaSsa { hash: HashAlg, sig: Vec<u8> },
    /// `TPM_ALG_RSAPSS` with `TPMS_SIGNATURE_RSA` (Part 2, section 11.3.1).
    RsaPss { hash: HashAlg, sig: Vec<u8> },
    /// `TPM_ALG_ECDSA` with `TPMS_SIGNATURE_ECC` (Part 2, section 11.3.2): `r` and `s`
    /// big-endian.
    Ecdsa {
        hash: HashAlg,
        r: Vec<u8>,
        s: Vec<u8>,
    },
    /// `TPM_ALG_NULL`: no signature (an unsigned attestation). Never verifies.
    Null,
}

impl Signature {
    /// Parses a whole marshalled `TPMT_SIGNATURE`; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let offset = r.offset();
        let alg = r.u16_be("TPMT_SIGNATURE.sigAlg")?;
        let out = match alg {
            TPM_ALG_RSASSA | TPM_ALG_RSAPSS => {
                let hash = hash_alg(&mut r, "TPMS_SIGNATURE_RSA.hash")?;
                let sig = tpm2b(&mut r, "TPMS_SIGNATURE_RSA.sig", MAX_RSA_KEY_BYTES)?.to_vec();
                if alg == TPM_ALG_RSASSA {
                    Signature::RsaSsa { hash, sig }
                } else {
                    Signature::RsaPss { hash, sig }
                }
            }
            TPM_ALG_ECDSA => {
                let hash = hash_alg(&mut r, "TPMS_SIGNATURE_ECC.hash")?;
                let sr = tpm2b(&mut r, "TPMS_SIGNATURE_ECC.signatureR", MAX_ECC_KEY_BYTES)?;
                let ss = tpm2b(&mut r, "TPMS_SIGNATURE_ECC.signatureS", MAX_ECC_KEY_BYTES)?;
                Signature::Ecdsa {
                    hash,
                    r: sr.to_vec(),
                    s: ss.to_vec(),
                }
            }
            TPM_ALG_NULL => Signature::Null,
            alg => {
                return Err(ParseError::UnsupportedAlgorithm {
                    offset,
                    what: "TPMT_SIGNATURE.sigAlg",
                    alg,
                })
            }
        };
        r.finish("TPMT_SIGNATURE")?;
        Ok(out)
    }

    /// The `TPM_ALG_ID` of the signature scheme.
    pub fn scheme(&self) -> u16 {
        match self {
            Signature::RsaSsa { .. } => TPM_ALG_RSASSA,
            Signature::RsaPss { .. } => TPM_ALG_RSAPSS,
            Signature::Ecdsa { .. } => TPM_ALG_ECDSA,
            Signature::Null => TPM_ALG_NULL,
        }
    }

    /// The digest algorithm of the scheme (`None` for `TPM_ALG_NULL`).
    pub fn hash(&self) -> Option<HashAlg> {
        match self {
            Signature::RsaSsa { hash, .. }
            | Signature::RsaPss { hash, .. }
            | Signature::Ecdsa { hash, .. } => Some(*hash),
            Signature::Null => None,
        }
    }
}
