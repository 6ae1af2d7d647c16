//! `TPM2B_PUBLIC` / `TPMT_PUBLIC` (TPM 2.0 Library Part 2, sections 12.2.5 and 12.2.4) for RSA
//! and ECC keys, and the object's Name (Part 1, section 16: `nameAlg || H_nameAlg(TPMT_PUBLIC)`).

use super::{
    hash_alg, tpm2b, ParseError, KDF_SCHEMES, MAX_DIGEST, MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES,
    SYM_BLOCK_CIPHERS, TPM_ALG_ECC, TPM_ALG_ECDAA, TPM_ALG_ECDH, TPM_ALG_ECDSA, TPM_ALG_ECMQV,
    TPM_ALG_ECSCHNORR, TPM_ALG_NULL, TPM_ALG_OAEP, TPM_ALG_RSA, TPM_ALG_RSAES, TPM_ALG_RSAPSS,
    TPM_ALG_RSASSA, TPM_ALG_SM2,
};
use crate::alg::HashAlg;
use crate::codec::Reader;

/// `TPMA_OBJECT` (Part 2, section 8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectAttributes(pub u32);

impl ObjectAttributes {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const ST_CLEAR: u32 = 1 << 2;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;
    pub const X509_SIGN: u32 = 1 << 19;
    /// Bits Part 2, section 8.3.2 reserves (a TPM never sets them).
    pub const RESERVED: u32 = 1 | 1 << 3 | 0b11 << 8 | 0b1111 << 12 | 0xfff0_0000;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit == bit
    }
    pub fn restricted(self) -> bool {
        self.has(Self::RESTRICTED)
    }
    pub fn sign(self) -> bool {
        self.has(Self::SIGN)
    }
    pub fn decrypt(self) -> bool {
        self.has(Self::DECRYPT)
    }
    pub fn fixed_tpm(self) -> bool {
        self.has(Self::FIXED_TPM)
    }
}

/// `TPMT_SYM_DEF_OBJECT` (Part 2, section 11.1.7) when not `TPM_ALG_NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDef {
    pub alg: u16,
    pub key_bits: u16,
    pub mode: u16,
}

/// A `TPMT_RSA_SCHEME`, `TPMT_ECC_SCHEME` or `TPMT_KDF_SCHEME` (Part 2, sections 11.2.4.2,
/// 11.2.5.6, 11.2.3.3) when not `TPM_ALG_NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub alg: u16,
    /// The scheme's hash; `None` only for `TPM_ALG_RSAES`, which has none.
    pub hash: Option<HashAlg>,
    /// `TPMS_SCHEME_ECDAA.count` (Part 2, section 11.2.3.2), for `TPM_ALG_ECDAA` only.
    pub count: Option<u16>,
}

/// `TPMI_ECC_CURVE` (Part 2, section 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EccCurve(pub u16);

impl EccCurve {
    pub const NIST_P256: EccCurve = EccCurve(0x0003);
    pub const NIST_P384: EccCurve = EccCurve(0x0004);
    pub const NIST_P521: EccCurve = EccCurve(0x0005);
}

/// `TPMU_PUBLIC_PARMS` with `TPMU_PUBLIC_ID` (Part 2, sections 12.2.3.7 and 12.2.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicParams {
    /// `TPMS_RSA_PARMS` (section 12.2.3.5) and `TPM2B_PUBLIC_KEY_RSA`.
    Rsa {
        symmetric: Option<SymDef>,
        scheme: Option<Scheme>,
        key_bits: u16,
        /// 0 means the default, 2^16 + 1.
        exponent: u32,
        modulus: Vec<u8>,
    },
    /// `TPMS_ECC_PARMS` (section 12.2.3.6) and `TPMS_ECC_POINT` (section 11.2.5.2).
    Ecc {
        symmetric: Option<SymDef>,
        scheme: Option<Scheme>,
        curve: EccCurve,
        kdf: Option<Scheme>,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// A parsed `TPMT_PUBLIC` (Part 2, section 12.2.4) of an RSA or ECC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub name_alg: HashAlg,
    pub attributes: ObjectAttributes,
    pub auth_policy: Vec<u8>,
    pub params: PublicParams,
    /// The marshalled `TPMT_PUBLIC`, from which the Name is computed.
    raw: Vec<u8>,
}

impl Public {
    /// Parses a `TPM2B_PUBLIC` if the first two bytes are the size of the rest, else a
    /// `TPMT_PUBLIC`. Either must fill `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        match bytes {
            [hi, lo, rest @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == rest.len() => {
                Self::parse_tpm2b(bytes)
            }
            _ => Self::parse_tpmt(bytes),
        }
    }

    /// Parses a whole `TPM2B_PUBLIC` (Part 2, section 12.2.5).
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let size = usize::from(r.u16_be("TPM2B_PUBLIC.size")?);
        let mut inner = r.sub(size, "TPM2B_PUBLIC.publicArea")?;
        r.finish("TPM2B_PUBLIC")?;
        Self::read_tpmt(&mut inner)
    }

    /// Parses a whole `TPMT_PUBLIC` (Part 2, section 12.2.4).
    pub fn parse_tpmt(bytes: &[u8]) -> Result<Self, ParseError> {
        Self::read_tpmt(&mut Reader::new(bytes))
    }

    fn read_tpmt(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let raw = r.peek_rest().to_vec();
        let type_offset = r.offset();
        let kind = r.u16_be("TPMT_PUBLIC.type")?;
        if kind != TPM_ALG_RSA && kind != TPM_ALG_ECC {
            return Err(ParseError::UnsupportedAlgorithm {
                offset: type_offset,
                what: "TPMT_PUBLIC.type",
                alg: kind,
            });
        }
        let name_alg = hash_alg(r, "TPMT_PUBLIC.nameAlg")?;
        let attr_offset = r.offset();
        let attributes = r.u32_be("TPMT_PUBLIC.objectAttributes")?;
        if attributes & ObjectAttributes::RESERVED != 0 {
            return Err(ParseError::ReservedAttributes {
                offset: attr_offset,
                attributes,
            });
        }
        let auth_policy = tpm2b(r, "TPMT_PUBLIC.authPolicy", MAX_DIGEST)?.to_vec();
        let symmetric = sym_def_object(r)?;
        let params = if kind == TPM_ALG_RSA {
            let scheme = read_scheme(
                r,
                "TPMT_RSA_SCHEME.scheme",
                &[TPM_ALG_RSASSA, TPM_ALG_RSAPSS, TPM_ALG_RSAES, TPM_ALG_OAEP],
            )?;
            let key_bits = r.u16_be("TPMS_RSA_PARMS.keyBits")?;
            let exponent = r.u32_be("TPMS_RSA_PARMS.exponent")?;
            let modulus = tpm2b(r, "TPMT_PUBLIC.unique.rsa", MAX_RSA_KEY_BYTES)?.to_vec();
            PublicParams::Rsa {
                symmetric,
                scheme,
                key_bits,
                exponent,
                modulus,
            }
        } else {
            let scheme = read_scheme(
                r,
                "TPMT_ECC_SCHEME.scheme",
                &[
                    TPM_ALG_ECDSA,
                    TPM_ALG_ECDH,
                    TPM_ALG_ECDAA,
                    TPM_ALG_SM2,
                    TPM_ALG_ECSCHNORR,
                    TPM_ALG_ECMQV,
                ],
            )?;
            let curve = EccCurve(r.u16_be("TPMS_ECC_PARMS.curveID")?);
            let kdf = read_scheme(r, "TPMT_KDF_SCHEME.scheme", &KDF_SCHEMES)?;
            let x = tpm2b(r, "TPMS_ECC_POINT.x", MAX_ECC_KEY_BYTES)?.to_vec();
            let y = tpm2b(r, "TPMS_ECC_POINT.y", MAX_ECC_KEY_BYTES)?.to_vec();
            PublicParams::Ecc {
                symmetric,
                scheme,
                curve,
                kdf,
                x,
                y,
            }
        };
        r.finish("TPMT_PUBLIC")?;
        Ok(Public {
            name_alg,
            attributes: ObjectAttributes(attributes),
            auth_policy,
            params,
            raw,
        })
    }

    /// The marshalled `TPMT_PUBLIC`.
    pub fn tpmt_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The object's Name: `nameAlg` (big-endian) followed by `H_nameAlg(TPMT_PUBLIC)`
    /// (Part 1, section 16; Part 2, section 10.5.3).
    pub fn name(&self) -> Vec<u8> {
        let mut out = self.name_alg.tpm_alg_id().to_be_bytes().to_vec();
        out.extend(self.name_alg.hash(&self.raw));
        out
    }

    /// The signing scheme fixed in the key, if any.
    pub fn scheme(&self) -> Option<Scheme> {
        match &self.params {
            PublicParams::Rsa { scheme, .. } | PublicParams::Ecc { scheme, .. } => *scheme,
        }
    }
}

/// `TPMT_SYM_DEF_OBJECT` (Part 2, section 11.1.7): `TPM_ALG_NULL` or a block cipher with key
/// size and mode.
fn sym_def_object(r: &mut Reader<'_>) -> Result<Option<SymDef>, ParseError> {
    let offset = r.offset();
    let alg = r.u16_be("TPMT_SYM_DEF_OBJECT.algorithm")?;
    if alg == TPM_ALG_NULL {
        return Ok(None);
    }
    if !SYM_BLOCK_CIPHERS.contains(&alg) {
        return Err(ParseError::UnsupportedAlgorithm {
            offset,
            what: "TPMT_SYM_DEF_OBJECT.algorithm",
            alg,
        });
    }
    let key_bits = r.u16_be("TPMT_SYM_DEF_OBJECT.keyBits")?;
    let mode = r.u16_be("TPMT_SYM_DEF_OBJECT.mode")?;
    Ok(Some(SymDef {
        alg,
        key_bits,
        mode,
    }))
}

/// An asymmetric scheme (Part 2, section 11.2.3): `TPM_ALG_NULL`, `TPM_ALG_RSAES` (no details),
/// `TPM_ALG_ECDAA` (hash and count) or any other allowed scheme (hash).
fn read_scheme(
    r: &mut Reader<'_>,
    what: &'static str,
    allowed: &[u16],
) -> Result<Option<Scheme>, ParseError> {
    let offset = r.offset();
    let alg = r.u16_be(what)?;
    if alg == TPM_ALG_NULL {
        return Ok(None);
    }
    if !allowed.contains(&alg) {
        return Err(ParseError::UnsupportedAlgorithm { offset, what, alg });
    }
    if alg == TPM_ALG_RSAES {
        return Ok(Some(Scheme {
            alg,
            hash: None,
            count: None,
        }));
    }
    let hash = hash_alg(r, "TPMS_SCHEME_HASH.hashAlg")?;
    let count = if alg == TPM_ALG_ECDAA {
        Some(r.u16_be("TPMS_SCHEME_ECDAA.count")?)
    } else {
        None
    };
    Ok(Some(Scheme {
        alg,
        hash: Some(hash),
        count,
    }))
}
