//! Signed PCR 11 policies in systemd's `.pcrsig` JSON format.
//!
//! `systemd-measure sign` (systemd `src/boot/measure.c`, `verb_sign`) writes, per bank, one
//! object per boot phase:
//! `{"sha256": [{"pcrs": [11], "pkfp": <hex>, "pol": <hex>, "sig": <base64>}, ...]}` where
//! - `pol` is the TPM2 policy digest of `TPM2_PolicyPCR` on PCR 11 of that bank with the
//!   predicted value, in a SHA-256 policy session (TPM 2.0 Part 3, 23.7):
//!   `SHA256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || SHA256(pcr value))`;
//! - `sig` is the RSASSA-PKCS1-v1_5 signature (RFC 8017, 8.2) of `pol`, hashed with the
//!   *bank's* algorithm (`EVP_DigestSign` with the bank's `EVP_MD`) — deterministic;
//! - `pkfp` is SHA-256 of the public key in DER as `i2d_PublicKey` writes it: for RSA the PKCS#1
//!   `RSAPublicKey` (not the SubjectPublicKeyInfo).
//!
//! `systemd-cryptenroll --tpm2-public-key=` seals a disk key to `TPM2_PolicyAuthorize` with that
//! public key; at boot systemd-stub hands `.pcrsig` to the initrd (`/.extra/tpm2-pcr-signature.json`),
//! systemd-cryptsetup picks the entry whose `pol` matches the live PCR 11, has the TPM check
//! `sig`, and the key unseals for every UKI whose policy was signed by the same key.

use super::{Uki, UkiError, PCR_KERNEL_BOOT};
use crate::HashAlg;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// `TPM_CC_PolicyPCR` (TPM 2.0 Part 2, 6.5.2).
pub const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;
/// Size of the PCR select bitmap systemd (and every PC-client TPM) uses: 24 PCRs.
const PCR_SELECT_SIZE: u8 = 3;

/// A key or signing failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error(transparent)]
    Uki(#[from] UkiError),
    /// The private key is not an unencrypted RSA key in PEM (PKCS#8 or PKCS#1).
    #[error("not an unencrypted RSA private key in PEM (PKCS#8 \"PRIVATE KEY\" or PKCS#1)")]
    BadPrivateKey,
    /// The public key is not an RSA public key in PEM.
    #[error("not an RSA public key in PEM (\"PUBLIC KEY\" or \"RSA PUBLIC KEY\")")]
    BadPublicKey,
    /// The public key given does not belong to the private key.
    #[error("the public key does not match the private key")]
    KeyMismatch,
    /// PCR index beyond the 24-PCR selection.
    #[error("PCR {pcr} is outside the 24-PCR selection")]
    BadPcr { pcr: u32 },
    /// The bank has no PKCS#1 v1.5 DigestInfo here.
    #[error("bank {alg} cannot be signed")]
    UnsupportedBank { alg: HashAlg },
    /// The RSA operation failed (key too small for the DigestInfo, ...).
    #[error("RSA signing with {alg} failed")]
    Sign { alg: HashAlg },
}

/// The RSA key that signs PCR policies. Deliberately neither `Debug` nor `Serialize`; the
/// inner key zeroizes itself on drop.
pub struct PolicySigningKey {
    key: RsaPrivateKey,
}

impl PolicySigningKey {
    /// Parses an unencrypted PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl
    /// genpkey` writes) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, PolicyError> {
        let text = std::str::from_utf8(pem).map_err(|_| PolicyError::BadPrivateKey)?;
        let key = RsaPrivateKey::from_pkcs8_pem(text)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
            .map_err(|_| PolicyError::BadPrivateKey)?;
        Ok(PolicySigningKey { key })
    }

    /// The public half.
    pub fn public_key(&self) -> PolicyPublicKey {
        PolicyPublicKey(self.key.to_public_key())
    }

    /// RSASSA-PKCS1-v1_5 over `message`, hashed with `alg`. The private-key operation is
    /// blinded with randomness from `rng` (against timing side channels); the signature itself
    /// is deterministic and does not depend on `rng`.
    pub fn sign(
        &self,
        rng: &mut BlindingRng,
        alg: HashAlg,
        message: &[u8],
    ) -> Result<Vec<u8>, PolicyError> {
        let prefix = digest_info_prefix(alg).ok_or(PolicyError::UnsupportedBank { alg })?;
        let padding = Pkcs1v15Sign {
            hash_len: Some(alg.digest_len()),
            prefix: prefix.into(),
        };
        self.key
            .sign_with_rng(rng, padding, &alg.hash(message))
            .map_err(|_| PolicyError::Sign { alg })
    }
}

/// Randomness for RSA blinding: SHA-256 in counter mode over a 32-byte seed the caller draws
/// from the operating system (this crate reads no device). Not `Debug`.
pub struct BlindingRng {
    seed: [u8; 32],
    counter: u64,
    block: Vec<u8>,
}

impl BlindingRng {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        BlindingRng {
            seed,
            counter: 0,
            block: Vec::new(),
        }
    }
}

impl rsa::rand_core::RngCore for BlindingRng {
    fn next_u32(&mut self) -> u32 {
        rsa::rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rsa::rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest.iter_mut() {
            if self.block.is_empty() {
                self.counter = self.counter.wrapping_add(1);
                self.block = HashAlg::Sha256.hash_parts(&[&self.seed, &self.counter.to_le_bytes()]);
            }
            *byte = self.block.pop().unwrap_or_default();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for BlindingRng {}

impl Drop for BlindingRng {
    fn drop(&mut self) {
        self.seed = [0; 32];
        std::hint::black_box(&self.seed);
    }
}

impl PolicySigningKey {}

/// The public key PCR signatures are checked against (the one that goes in `.pcrpkey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPublicKey(RsaPublicKey);

impl PolicyPublicKey {
    /// Parses `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo) or `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, PolicyError> {
        let text = std::str::from_utf8(pem).map_err(|_| PolicyError::BadPublicKey)?;
        RsaPublicKey::from_public_key_pem(text)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
            .map(PolicyPublicKey)
            .map_err(|_| PolicyError::BadPublicKey)
    }

    /// `pkfp`: SHA-256 of the PKCS#1 `RSAPublicKey` DER (OpenSSL `i2d_PublicKey`).
    pub fn fingerprint(&self) -> Result<Vec<u8>, PolicyError> {
        let der = self
            .0
            .to_pkcs1_der()
            .map_err(|_| PolicyError::BadPublicKey)?;
        Ok(HashAlg::Sha256.hash(der.as_bytes()))
    }
}

/// The DER `DigestInfo` prefix of RSASSA-PKCS1-v1_5 (RFC 8017, 9.2, note 1).
fn digest_info_prefix(alg: HashAlg) -> Option<&'static [u8]> {
    match alg {
        HashAlg::Sha1 => Some(&[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ]),
        HashAlg::Sha256 => Some(&[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ]),
        HashAlg::Sha384 => Some(&[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ]),
        HashAlg::Sha512 => Some(&[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ]),
        HashAlg::Sm3_256 => None,
    }
}

/// The SHA-256 policy digest of a trial session after one `TPM2_PolicyPCR` selecting `pcr` of
/// bank `alg` with value `value` (TPM 2.0 Part 3, 23.7; systemd `tpm2_calculate_policy_pcr`):
/// `SHA256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || SHA256(value))`, where the
/// selection is `count=1, hash=alg, sizeofSelect=3, pcrSelect` (all big-endian).
pub fn policy_pcr_digest(alg: HashAlg, pcr: u32, value: &[u8]) -> Result<Vec<u8>, PolicyError> {
    let mut select = [0u8; PCR_SELECT_SIZE as usize];
    let byte = select
        .get_mut((pcr / 8) as usize)
        .ok_or(PolicyError::BadPcr { pcr })?;
    *byte |= 1 << (pcr % 8);
    let session = HashAlg::Sha256;
    let pcr_digest = session.hash(value);
    Ok(session.hash_parts(&[
        &session.zero(),
        &TPM_CC_POLICY_PCR.to_be_bytes(),
        &1u32.to_be_bytes(),
        &alg.tpm_alg_id().to_be_bytes(),
        &[PCR_SELECT_SIZE],
        &select,
        &pcr_digest,
    ]))
}

/// One signed policy: an element of a bank's array in `.pcrsig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedPolicy {
    pub pcrs: Vec<u32>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub pkfp: Vec<u8>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub pol: Vec<u8>,
    #[serde(serialize_with = "base64_ser")]
    pub sig: Vec<u8>,
}

/// The `.pcrsig` JSON: bank name → one signed policy per phase (phases in the order given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PcrSignature(pub BTreeMap<String, Vec<SignedPolicy>>);

/// Predicts PCR 11 of `uki` for each bank and phase and signs each policy, as
/// `systemd-measure sign` does. `public` defaults to the key's own public half; a different
/// key is refused. `blinding_seed` (32 bytes from the OS) only protects the RSA operation; the
/// output does not depend on it.
pub fn sign_policies(
    uki: &Uki<'_>,
    key: &PolicySigningKey,
    public: Option<&PolicyPublicKey>,
    banks: &[HashAlg],
    phases: &[String],
    blinding_seed: [u8; 32],
) -> Result<PcrSignature, PolicyError> {
    let mut rng = BlindingRng::from_seed(blinding_seed);
    let signed = sign_predictions(uki, key, public, banks, phases, |alg, pkfp, pcr11| {
        let pol = policy_pcr_digest(alg, PCR_KERNEL_BOOT, pcr11)?;
        let sig = key.sign(&mut rng, alg, &pol)?;
        Ok(SignedPolicy {
            pcrs: vec![PCR_KERNEL_BOOT],
            pkfp: pkfp.to_vec(),
            pol,
            sig,
        })
    })?;
    Ok(PcrSignature(signed))
}

/// What [`sign_policies`] and [`super::svn::sign_svn_policies`] share: refuses a `public` key
/// other than `key`'s own, predicts PCR 11 of `uki` for each bank and phase, and calls
/// `sign(bank, key fingerprint, predicted PCR 11)` once per prediction, in phase order.
pub(super) fn sign_predictions<T>(
    uki: &Uki<'_>,
    key: &PolicySigningKey,
    public: Option<&PolicyPublicKey>,
    banks: &[HashAlg],
    phases: &[String],
    mut sign: impl FnMut(HashAlg, &[u8], &[u8]) -> Result<T, PolicyError>,
) -> Result<BTreeMap<String, Vec<T>>, PolicyError> {
    let own = key.public_key();
    if public.is_some_and(|p| *p != own) {
        return Err(PolicyError::KeyMismatch);
    }
    let pkfp = own.fingerprint()?;
    let prediction = uki.predict(banks, phases)?;
    let mut out = BTreeMap::new();
    for alg in banks {
        let values = prediction
            .0
            .get(alg.name())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut signed = Vec::with_capacity(values.len());
        for value in values {
            signed.push(sign(*alg, &pkfp, &value.hash)?);
        }
        out.insert(alg.name().to_string(), signed);
    }
    Ok(out)
}

fn base64_ser<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64(bytes))
}

/// Standard base64 with padding (RFC 4648, section 4), as systemd's JSON writes it.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |i: u32| char::from(ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn policy_pcr_digest_matches_systemd_measure_252() {
        // From `systemd-measure sign` (systemd 252.39, trial session on swtpm) for a UKI whose
        // enter-initrd sha256 PCR 11 prediction was 58117e...e20d.
        let value = hex::decode("58117ec08dbbd2c9adf5a0c5b86f2b6e65a8eb162368687b3901747ac401e20d")
            .unwrap();
        assert_eq!(
            hex::encode(policy_pcr_digest(HashAlg::Sha256, 11, &value).unwrap()),
            "be2a8b2a6b0e76793d448607fbbe9eae9c0010479d01b0f746c6b8be17a23f93"
        );
        assert!(matches!(
            policy_pcr_digest(HashAlg::Sha256, 24, &value),
            Err(PolicyError::BadPcr { pcr: 24 })
        ));
    }

    #[test]
    fn garbage_keys_are_typed_errors() {
        assert!(matches!(
            PolicySigningKey::from_pem(b"nope"),
            Err(PolicyError::BadPrivateKey)
        ));
        assert!(matches!(
            PolicySigningKey::from_pem(&[0xff, 0xfe]),
            Err(PolicyError::BadPrivateKey)
        ));
        assert_eq!(
            PolicyPublicKey::from_pem(
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            ),
            Err(PolicyError::BadPublicKey)
        );
    }
}
