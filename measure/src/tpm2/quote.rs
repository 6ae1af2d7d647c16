//! Verifying a TPM quote (TPM 2.0 Library Part 3, section 18.4 `TPM2_Quote`): the signature
//! over the `TPMS_ATTEST` with a restricted signing key, the nonce, and the PCR values behind
//! the quoted `pcrDigest`.

use super::attest::{Attest, Attested, ClockInfo, PcrSelection};
use super::public::{EccCurve, Public, PublicParams};
use super::signature::Signature;
use super::ParseError;
use crate::alg::HashAlg;
use crate::pcr::PcrBanks;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Why a quote is not accepted. The variants are precise for logs and audit records; tell a
/// peer no more than "quote rejected".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuoteError {
    #[error("attestation (TPMS_ATTEST) is malformed: {0}")]
    Attest(#[source] ParseError),
    #[error("signature (TPMT_SIGNATURE) is malformed: {0}")]
    Signature(#[source] ParseError),
    #[error("attestation key (TPM2B_PUBLIC/TPMT_PUBLIC) is malformed: {0}")]
    AkPublic(#[source] ParseError),
    /// The attestation is of another type (e.g. `TPM_ST_ATTEST_CERTIFY`).
    #[error("attestation type {tag:#06x} is not TPM_ST_ATTEST_QUOTE (0x8018)")]
    NotAQuote { tag: u16 },
    /// The key may sign arbitrary digests or decrypt, so its signature says nothing about what
    /// the TPM built (Part 1, "Restricted Signing Key"; Part 2, section 8.3.3.1).
    #[error(
        "attestation key attributes {attributes:#010x} are not restricted|sign without decrypt"
    )]
    NotRestrictedSigningKey { attributes: u32 },
    /// The signature's scheme does not fit the key's type or the scheme fixed in the key.
    #[error(
        "signature scheme {sig_scheme:#06x}/{sig_hash:?} does not match the key \
         (type {key_type}, scheme {key_scheme:?}/{key_hash:?})"
    )]
    SchemeMismatch {
        sig_scheme: u16,
        sig_hash: Option<HashAlg>,
        key_type: &'static str,
        key_scheme: Option<u16>,
        key_hash: Option<HashAlg>,
    },
    /// A key or hash this verifier cannot check (e.g. a curve other than P-256/P-384).
    #[error("unsupported {what}: {value:#06x}")]
    Unsupported { what: &'static str, value: u32 },
    /// The public key itself is invalid (e.g. not a point on the curve).
    #[error("attestation key is not a valid {what} public key")]
    BadKey { what: &'static str },
    /// The signature does not verify with the attestation key.
    #[error("signature does not verify with the attestation key")]
    BadSignature,
    /// `extraData` is not the verifier's nonce: a replayed or foreign quote.
    #[error("quote's extraData is not the expected nonce")]
    NonceMismatch,
    /// The quote covers other PCRs than the ones supplied.
    #[error("PCR {pcr} of bank {bank} is {}", if *in_quote { "quoted but not supplied" } else { "supplied but not quoted" })]
    PcrSelectionMismatch {
        bank: HashAlg,
        pcr: u32,
        in_quote: bool,
    },
    /// The supplied PCR values do not hash to the quoted `pcrDigest`.
    #[error("supplied PCR values do not hash ({alg}) to the quoted pcrDigest")]
    PcrDigestMismatch { alg: HashAlg },
}

/// Entry point of quote verification.
pub struct Quote;

/// A quote whose signature, nonce and PCR digest have been checked: the only place Warrant
/// takes PCR values from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    pcrs: PcrBanks,
    selection: Vec<PcrSelection>,
    clock_info: ClockInfo,
    firmware_version: u64,
    qualified_signer: Vec<u8>,
    ak_name: Vec<u8>,
    signature_hash: HashAlg,
}

impl VerifiedQuote {
    /// The quoted PCR values (exactly the selected PCRs).
    pub fn pcrs(&self) -> &PcrBanks {
        &self.pcrs
    }
    /// The quote's `TPML_PCR_SELECTION`, in the TPM's order.
    pub fn selection(&self) -> &[PcrSelection] {
        &self.selection
    }
    /// The TPM's clock, reset and restart counts when it signed.
    pub fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }
    /// The TPM's vendor-specific firmware version.
    pub fn firmware_version(&self) -> u64 {
        self.firmware_version
    }
    /// `qualifiedSigner`: the AK's qualified name as the TPM reported it.
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }
    /// The AK's Name, computed from the public area the caller supplied.
    pub fn ak_name(&self) -> &[u8] {
        &self.ak_name
    }
    /// The hash of the signing scheme (also the hash of `pcrDigest`).
    pub fn signature_hash(&self) -> HashAlg {
        self.signature_hash
    }
}

impl Quote {
    /// Verifies a quote made by `TPM2_Quote` (Part 3, section 18.4).
    ///
    /// - `attest`: the marshalled `TPMS_ATTEST` (Part 2, section 10.12.12) the TPM signed;
    /// - `signature`: the marshalled `TPMT_SIGNATURE` (Part 2, section 11.3.4);
    /// - `ak_public`: the attestation key's `TPM2B_PUBLIC` or `TPMT_PUBLIC` (Part 2, 12.2), as
    ///   the caller trusts it (bound to the TPM's EK by credential activation);
    /// - `nonce`: the freshness value the verifier sent (`qualifyingData`);
    /// - `pcrs`: the PCR values the node reports; they must be exactly the quoted selection.
    ///
    /// Checks, in order: every structure parses completely; the key is a restricted signing
    /// key (not decrypt); the signature scheme fits the key; the signature over
    /// `H_scheme(attest)` verifies (RSASSA-PKCS1-v1_5, RSA-PSS, ECDSA P-256/P-384); the type is
    /// `TPM_ST_ATTEST_QUOTE` (the magic was checked by the parser); `extraData == nonce` in
    /// constant time; the selection equals the supplied PCRs; and `pcrDigest` is the scheme's
    /// hash of the supplied values, banks in selection order and PCRs ascending.
    pub fn verify(
        attest: &[u8],
        signature: &[u8],
        ak_public: &[u8],
        nonce: &[u8],
        pcrs: &PcrBanks,
    ) -> Result<VerifiedQuote, QuoteError> {
        let parsed = Attest::parse(attest).map_err(QuoteError::Attest)?;
        let sig = Signature::parse(signature).map_err(QuoteError::Signature)?;
        let ak = Public::parse(ak_public).map_err(QuoteError::AkPublic)?;

        let attrs = ak.attributes;
        if !attrs.restricted() || !attrs.sign() || attrs.decrypt() {
            return Err(QuoteError::NotRestrictedSigningKey {
                attributes: attrs.0,
            });
        }
        let hash = check_scheme(&ak, &sig)?;
        verify_signature(&ak, &sig, hash, attest)?;

        let info = match parsed.attested {
            Attested::Quote(info) => info,
            other => return Err(QuoteError::NotAQuote { tag: other.tag() }),
        };
        let nonce_ok: bool = (parsed.extra_data.len() == nonce.len())
            && bool::from(parsed.extra_data.as_slice().ct_eq(nonce));
        if !nonce_ok {
            return Err(QuoteError::NonceMismatch);
        }
        check_selection(&info.pcr_select, pcrs)?;
        let mut parts: Vec<&[u8]> = Vec::new();
        for sel in &info.pcr_select {
            for pcr in &sel.pcrs {
                // Present: check_selection proved every selected PCR is supplied.
                let value = pcrs
                    .get(sel.bank, *pcr)
                    .ok_or(QuoteError::PcrSelectionMismatch {
                        bank: sel.bank,
                        pcr: *pcr,
                        in_quote: true,
                    })?;
                parts.push(value);
            }
        }
        let digest = hash.hash_parts(&parts);
        if !bool::from(digest.as_slice().ct_eq(info.pcr_digest.as_slice())) {
            return Err(QuoteError::PcrDigestMismatch { alg: hash });
        }
        Ok(VerifiedQuote {
            pcrs: pcrs.clone(),
            selection: info.pcr_select,
            clock_info: parsed.clock_info,
            firmware_version: parsed.firmware_version,
            qualified_signer: parsed.qualified_signer,
            ak_name: ak.name(),
            signature_hash: hash,
        })
    }
}

/// The selected `(bank, pcr)` pairs must be exactly the supplied ones.
fn check_selection(selection: &[PcrSelection], pcrs: &PcrBanks) -> Result<(), QuoteError> {
    for sel in selection {
        for pcr in &sel.pcrs {
            if pcrs.get(sel.bank, *pcr).is_none() {
                return Err(QuoteError::PcrSelectionMismatch {
                    bank: sel.bank,
                    pcr: *pcr,
                    in_quote: true,
                });
            }
        }
    }
    for (bank, values) in pcrs.banks() {
        for pcr in values.keys() {
            let quoted = selection
                .iter()
                .any(|s| s.bank == bank && s.pcrs.contains(pcr));
            if !quoted {
                return Err(QuoteError::PcrSelectionMismatch {
                    bank,
                    pcr: *pcr,
                    in_quote: false,
                });
            }
        }
    }
    Ok(())
}

fn key_type(ak: &Public) -> &'static str {
    match ak.params {
        PublicParams::Rsa { .. } => "RSA",
        PublicParams::Ecc { .. } => "ECC",
    }
}

/// The signature's scheme must suit the key type and equal the key's fixed scheme, if any.
/// Returns the scheme's hash.
fn check_scheme(ak: &Public, sig: &Signature) -> Result<HashAlg, QuoteError> {
    let key_scheme = ak.scheme();
    let mismatch = || QuoteError::SchemeMismatch {
        sig_scheme: sig.scheme(),
        sig_hash: sig.hash(),
        key_type: key_type(ak),
        key_scheme: key_scheme.map(|s| s.alg),
        key_hash: key_scheme.and_then(|s| s.hash),
    };
    let fits_type = matches!(
        (&ak.params, sig),
        (
            PublicParams::Rsa { .. },
            Signature::RsaSsa { .. } | Signature::RsaPss { .. }
        ) | (PublicParams::Ecc { .. }, Signature::Ecdsa { .. })
    );
    let hash = sig.hash().ok_or_else(mismatch)?;
    if !fits_type {
        return Err(mismatch());
    }
    if let Some(ks) = key_scheme {
        if ks.alg != sig.scheme() || ks.hash != Some(hash) {
            return Err(mismatch());
        }
    }
    Ok(hash)
}

fn verify_signature(
    ak: &Public,
    sig: &Signature,
    hash: HashAlg,
    attest: &[u8],
) -> Result<(), QuoteError> {
    match (&ak.params, sig) {
        (
            PublicParams::Rsa {
                exponent, modulus, ..
            },
            Signature::RsaSsa { sig, .. },
        ) => verify_rsa(*exponent, modulus, hash, &hash.hash(attest), sig, false),
        (
            PublicParams::Rsa {
                exponent, modulus, ..
            },
            Signature::RsaPss { sig, .. },
        ) => verify_rsa(*exponent, modulus, hash, &hash.hash(attest), sig, true),
        (PublicParams::Ecc { curve, x, y, .. }, Signature::Ecdsa { r, s, .. }) => {
            verify_ecdsa(*curve, x, y, hash, attest, r, s)
        }
        _ => Err(QuoteError::SchemeMismatch {
            sig_scheme: sig.scheme(),
            sig_hash: sig.hash(),
            key_type: key_type(ak),
            key_scheme: ak.scheme().map(|s| s.alg),
            key_hash: ak.scheme().and_then(|s| s.hash),
        }),
    }
}

/// `DigestInfo` prefix of SHA-1 for EMSA-PKCS1-v1_5 (RFC 8017, section 9.2, note 1).
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// RSASSA-PKCS1-v1_5 or RSASSA-PSS (Part 1, Annex B.7; the TPM's PSS salt is as long as the
/// digest when the key allows, else as long as fits: `min(hLen, k - hLen - 2)`).
fn verify_rsa(
    exponent: u32,
    modulus: &[u8],
    hash: HashAlg,
    digest: &[u8],
    sig: &[u8],
    pss: bool,
) -> Result<(), QuoteError> {
    use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
    let e = if exponent == 0 { 65_537 } else { exponent };
    let key = RsaPublicKey::new(BigUint::from_bytes_be(modulus), BigUint::from(e))
        .map_err(|_| QuoteError::BadKey { what: "RSA" })?;
    let unsupported = QuoteError::Unsupported {
        what: "RSA signature hash",
        value: u32::from(hash.tpm_alg_id()),
    };
    let result = if pss {
        let k = modulus.len();
        let h = hash.digest_len();
        let salt = h.min(k.saturating_sub(h).saturating_sub(2));
        let scheme = match hash {
            HashAlg::Sha1 => Pss::new_with_salt::<sha1::Sha1>(salt),
            HashAlg::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt),
            HashAlg::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt),
            HashAlg::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt),
            HashAlg::Sm3_256 => return Err(unsupported),
        };
        key.verify(scheme, digest, sig)
    } else {
        let scheme = match hash {
            HashAlg::Sha1 => Pkcs1v15Sign {
                hash_len: Some(20),
                prefix: SHA1_DIGEST_INFO.to_vec().into_boxed_slice(),
            },
            HashAlg::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            HashAlg::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            HashAlg::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
            HashAlg::Sm3_256 => return Err(unsupported),
        };
        key.verify(scheme, digest, sig)
    };
    result.map_err(|_| QuoteError::BadSignature)
}

/// Left-pads a big-endian integer to `len` bytes; `None` if it does not fit.
fn pad(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let trimmed = match bytes.iter().position(|b| *b != 0) {
        Some(i) => bytes.get(i..)?,
        None => &[],
    };
    let zeros = len.checked_sub(trimmed.len())?;
    let mut out = vec![0u8; zeros];
    out.extend_from_slice(trimmed);
    Some(out)
}

/// ECDSA over `H_hash(attest)` (Part 1, Annex C.5; the digest is truncated to the curve's
/// order length as in FIPS 186-4, section 6.4).
///
/// The two pairs TPM attestation keys use, P-256 with SHA-256 and P-384 with SHA-384, are
/// checked with `ring` (its fixed-length `r || s` form, each padded to the field size), several
/// times faster than RustCrypto's `p256`/`p384`. Other pairs (SHA-1, SHA-512, a hash longer
/// than the curve), which `ring` does not offer, use RustCrypto. When `ring` refuses, RustCrypto
/// is asked too, only to tell a bad key ([`QuoteError::BadKey`]) from a bad signature; the
/// answer stays a refusal whatever it says.
fn verify_ecdsa(
    curve: EccCurve,
    x: &[u8],
    y: &[u8],
    hash: HashAlg,
    attest: &[u8],
    r: &[u8],
    s: &[u8],
) -> Result<(), QuoteError> {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED};
    let field = match curve {
        EccCurve::NIST_P256 => 32,
        EccCurve::NIST_P384 => 48,
        other => {
            return Err(QuoteError::Unsupported {
                what: "ECC curve",
                value: u32::from(other.0),
            })
        }
    };
    let what = if field == 32 { "P-256" } else { "P-384" };
    let mut point = vec![0x04];
    point.extend(pad(x, field).ok_or(QuoteError::BadKey { what })?);
    point.extend(pad(y, field).ok_or(QuoteError::BadKey { what })?);
    let mut rs = pad(r, field).ok_or(QuoteError::BadSignature)?;
    rs.extend(pad(s, field).ok_or(QuoteError::BadSignature)?);
    let ring_alg = match (field, hash) {
        (32, HashAlg::Sha256) => Some(&ECDSA_P256_SHA256_FIXED),
        (48, HashAlg::Sha384) => Some(&ECDSA_P384_SHA384_FIXED),
        _ => None,
    };
    let Some(alg) = ring_alg else {
        return verify_ecdsa_prehash(field, &point, &hash.hash(attest), &rs);
    };
    if UnparsedPublicKey::new(alg, &point)
        .verify(attest, &rs)
        .is_ok()
    {
        return Ok(());
    }
    match verify_ecdsa_prehash(field, &point, &hash.hash(attest), &rs) {
        Err(e) => Err(e),
        // Never reached with a correct `ring`; refused all the same.
        Ok(()) => Err(QuoteError::BadSignature),
    }
}

/// ECDSA with RustCrypto over a prehashed `digest`; `point` is the uncompressed SEC1 point and
/// `rs` is `r || s`, each `field` bytes.
fn verify_ecdsa_prehash(
    field: usize,
    point: &[u8],
    digest: &[u8],
    rs: &[u8],
) -> Result<(), QuoteError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let what = if field == 32 { "P-256" } else { "P-384" };
    let ok = if field == 32 {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| QuoteError::BadKey { what })?;
        let sig = p256::ecdsa::Signature::from_slice(rs).map_err(|_| QuoteError::BadSignature)?;
        key.verify_prehash(digest, &sig).is_ok()
    } else {
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| QuoteError::BadKey { what })?;
        let sig = p384::ecdsa::Signature::from_slice(rs).map_err(|_| QuoteError::BadSignature)?;
        key.verify_prehash(digest, &sig).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(QuoteError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    /// A signature made by RustCrypto over `H(msg)`, as `(x, y, r, s)`.
    fn sign(curve: EccCurve, hash: HashAlg, msg: &[u8]) -> [Vec<u8>; 4] {
        let digest = hash.hash(msg);
        if curve == EccCurve::NIST_P256 {
            let key = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
            let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
            let point = key.verifying_key().to_encoded_point(false);
            let (r, s) = sig.split_bytes();
            [
                point.x().unwrap().to_vec(),
                point.y().unwrap().to_vec(),
                r.to_vec(),
                s.to_vec(),
            ]
        } else {
            let key = p384::ecdsa::SigningKey::from_slice(&[0x17; 48]).unwrap();
            let sig: p384::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
            let point = key.verifying_key().to_encoded_point(false);
            let (r, s) = sig.split_bytes();
            [
                point.x().unwrap().to_vec(),
                point.y().unwrap().to_vec(),
                r.to_vec(),
                s.to_vec(),
            ]
        }
    }

    /// Every curve and hash pair, whether `ring` or RustCrypto checks it, accepts a good
    /// signature and refuses a changed message or signature.
    #[test]
    fn ecdsa_pairs_verify_and_refuse_tampering() {
        let msg = b"a TPMS_ATTEST".as_slice();
        for (curve, hash) in [
            (EccCurve::NIST_P256, HashAlg::Sha256),
            (EccCurve::NIST_P256, HashAlg::Sha384),
            (EccCurve::NIST_P256, HashAlg::Sha1),
            (EccCurve::NIST_P384, HashAlg::Sha384),
            (EccCurve::NIST_P384, HashAlg::Sha256),
            (EccCurve::NIST_P384, HashAlg::Sha512),
        ] {
            let [x, y, r, s] = sign(curve, hash, msg);
            let case = format!("{curve:?} {hash}");
            assert_eq!(
                verify_ecdsa(curve, &x, &y, hash, msg, &r, &s),
                Ok(()),
                "{case}"
            );
            // r and s are padded or trimmed to the field size (TPMs drop leading zeros).
            let r_long = [&[0u8, 0][..], &r].concat();
            assert_eq!(
                verify_ecdsa(curve, &x, &y, hash, msg, &r_long, &s),
                Ok(()),
                "{case}"
            );
            assert_eq!(
                verify_ecdsa(curve, &x, &y, hash, b"another TPMS_ATTEST", &r, &s),
                Err(QuoteError::BadSignature),
                "{case}"
            );
            let mut bad_s = s.clone();
            bad_s[5] ^= 1;
            assert_eq!(
                verify_ecdsa(curve, &x, &y, hash, msg, &r, &bad_s),
                Err(QuoteError::BadSignature),
                "{case}"
            );
            // r = 0 is never a signature.
            assert_eq!(
                verify_ecdsa(curve, &x, &y, hash, msg, &[0], &s),
                Err(QuoteError::BadSignature),
                "{case}"
            );
            // A point off the curve is the key's fault, whichever library looked first.
            let mut bad_y = y.clone();
            let last = bad_y.len() - 1;
            bad_y[last] ^= 1;
            assert!(
                matches!(
                    verify_ecdsa(curve, &x, &bad_y, hash, msg, &r, &s),
                    Err(QuoteError::BadKey { .. })
                ),
                "{case}"
            );
        }
    }
}
