//! systemd 252's `systemd-tpm2` LUKS2 tokens: unsealing the ones `systemd-cryptenroll
//! --tpm2-device=...` enrolls, and sealing new ones that `systemd-cryptsetup` opens.
//!
//! What systemd 252 does (`src/shared/tpm2-util.c`: `tpm2_make_primary`, `tpm2_make_policy_session`,
//! `tpm2_seal`, `tpm2_unseal`, `hash_pin`, `openssl_pubkey_to_tpm2_pubkey`;
//! `src/cryptenroll/cryptenroll-tpm2.c`: `get_pin`, `enroll_tpm2`), checked against the
//! installed 252.39 by `tests/systemd_swtpm.rs`, and what this module does the same way:
//!
//! - **Primary key.** Created again on every use under the owner hierarchy (empty owner auth,
//!   empty sensitive, no outside info, no creation PCRs) from a fixed template:
//!   `fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|decrypt` (no `noDA`, unlike
//!   the TCG SRK template Warrant's own [`crate::seal`] uses), SHA-256 name, AES-128-CFB, null
//!   scheme, and either ECC NIST P-256 with a null KDF (`tpm2-primary-alg` `ecc`, or absent) or
//!   RSA 2048 with the default exponent (`rsa`). Enrollment tries ECC first and falls back to RSA.
//! - **Sealed object** (the token's `tpm2-blob`, a marshalled `TPM2B_PRIVATE` followed by a
//!   marshalled `TPM2B_PUBLIC`): a keyed-hash object, SHA-256 name, attributes
//!   `fixedTPM|fixedParent` only (`userWithAuth` clear: only the policy authorises it; `noDA`
//!   clear), null scheme, holding 32 random bytes. With a PIN its authValue is
//!   `SHA-256(PIN bytes)`, no salt (`tpm2_salt` came after 252).
//! - **Policy** (SHA-256 session), in this order: with `tpm2_pubkey`, `PolicyPCR` over
//!   `tpm2_pubkey_pcrs` then `PolicyAuthorize` by that RSA key (empty policyRef; the signature
//!   is found in the `.pcrsig` JSON by bank, PCR set, key fingerprint and policy digest, and
//!   verified by the TPM with `VerifySignature` over `SHA-256(policy)`); then `PolicyPCR` over
//!   `tpm2-pcrs` in `tpm2-pcr-bank` (absent: sha256, what systemd before 250 hard-coded); then,
//!   with `tpm2-pin`, `PolicyAuthValue`. Before unsealing, systemd compares the session's digest
//!   with `tpm2-policy-hash` and gives up on a mismatch; so does this module.
//! - **Passphrase.** The keyslot's passphrase is the unsealed secret in standard base64 with
//!   padding (`base64mem`), no newline: what `systemd-cryptenroll` adds with
//!   `crypt_keyslot_add_by_volume_key` and `systemd-cryptsetup` passes to
//!   `crypt_activate_by_passphrase`.
//!
//! Differences, on purpose: Warrant runs `Unseal` in one policy session salted with the primary
//! key and with response encryption (systemd adds a second, bound HMAC session for it); the
//! secret crosses the bus encrypted either way. Warrant computes the policy digest at
//! enrollment from the PCR values it reads (systemd asks the TPM in a policy session); the
//! result is the same digest, which the tests check against systemd's own.
//!
//! Token variants from later systemd releases (`tpm2_salt`, `tpm2_srk`, `tpm2_pcrlock`,
//! `tpm2_pcrlock_nv`, several blobs, unknown fields) are refused as
//! [`SystemdError::Unsupported`], never guessed at.

use crate::device::{
    cmd, private_to_tpm2b, public_to_tpm2b, salted_session, unmarshal_private, unmarshal_public,
};
use crate::guard::{Guard, Release};
use crate::rollback::{parse_index, svn_nv_digest, RollbackError, SVN_POLICY_REF};
use crate::seal::{
    authorize_signed, kind, load_public, lockout_interval, policy_session, selection,
    AuthorizeError, PcrList, RsaKey, SealError, TPM_CC_POLICY_AUTHORIZE, TPM_CC_POLICY_AUTH_VALUE,
};
use crate::{Tpm, TpmError};
use measure::alg::HashAlg;
use measure::luks2::{OneOrMany, PcrBank, PrimaryAlg, SystemdTpm2Token};
use serde_json::Value;
use std::io::Read;
use thiserror::Error;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccPoint, KeyedHashScheme, Name, Private, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyRsa, PublicKeyedHashParameters,
    PublicRsaParametersBuilder, RsaExponent, SensitiveData, SymmetricDefinitionObject,
};
use tss_esapi::Context;
use zeroize::Zeroizing;

/// Bytes of secret systemd 252 seals (and so the keyslot passphrase is 44 base64 characters).
pub const SECRET_LEN: usize = 32;

/// `TPM_CC_PolicyPCR` (TPM 2.0 Part 2, section 6.5.2).
const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;

/// Why a systemd token could not be unsealed or sealed. The first variants are the ones a
/// user acts on.
#[derive(Debug, Error)]
pub enum SystemdError {
    /// The policy the TPM computes for this boot differs from the token's `tpm2-policy-hash`.
    #[error(
        "the PCR policy ({bank}: {pcrs}) does not match this boot: PCRs changed since enrollment"
    )]
    PcrsChanged { bank: HashAlg, pcrs: PcrList },
    #[error("wrong PIN")]
    WrongPin,
    #[error("this token is enrolled with a PIN; none was given")]
    PinRequired,
    #[error("this token is enrolled without a PIN, but one was given")]
    PinNotExpected,
    /// TPM_RC_LOCKOUT: too many authorisation failures.
    #[error("TPM is in dictionary-attack lockout; retry after {}", retry_text(*.retry_after_secs))]
    Lockout { retry_after_secs: Option<u32> },
    /// The sealed object does not load under this TPM's primary key.
    #[error("the token was enrolled on a different TPM (or before this TPM was cleared): its sealed key does not load here")]
    DifferentTpm,
    #[error("this token uses a signed PCR policy (tpm2_pubkey); give the PCR signature (.pcrsig)")]
    SignatureRequired,
    #[error("no signed PCR policy for the token's key matches this boot ({bank}: {pcrs})")]
    NoSignatureForThisBoot { bank: HashAlg, pcrs: PcrList },
    #[error("the PCR policy signature is not by the token's policy key")]
    WrongSigner,
    /// A token from a newer systemd, or a variant Warrant does not implement.
    #[error("unsupported systemd-tpm2 token: {feature}")]
    Unsupported { feature: String },
    #[error("malformed systemd-tpm2 token: {reason}")]
    BadToken { reason: &'static str },
    #[error("malformed PCR signature JSON (.pcrsig): {reason}")]
    BadSignatureFile { reason: &'static str },
    #[error(
        "the policy key is not an RSA public key in PEM (BEGIN PUBLIC KEY, 1024 to 4096 bits)"
    )]
    BadPolicyKey,
    #[error("the PIN is empty")]
    EmptyPin,
    #[error("no PCRs chosen for the policy")]
    NoPcrs,
    #[error("PCR {pcr} is out of range 0..=23")]
    PcrOutOfRange { pcr: u32 },
    #[error("reading random bytes from the operating system failed: {source}")]
    Random { source: std::io::Error },
    #[error(transparent)]
    Tpm(#[from] TpmError),
    #[error(transparent)]
    Seal(SealError),
    /// Anti-rollback (`crate::rollback`): the image is older than the TPM's SVN, or the
    /// counter is missing, foreign or uninitialised.
    #[error(transparent)]
    Rollback(#[from] RollbackError),
    #[error("anti-rollback needs a signed PCR policy: give a policy key and the PCRs it signs")]
    AntiRollbackNeedsPolicyKey,
    #[error("no SVN-bound signed policy for the token's key and NV index {index:#010x} matches this boot ({bank}: {pcrs}): sign the image with `warrant uki sign-policy --svn`")]
    NoSvnSignatureForThisBoot {
        bank: HashAlg,
        pcrs: PcrList,
        index: u32,
    },
}

impl From<SealError> for SystemdError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Tpm(e) => SystemdError::Tpm(e),
            SealError::BadPolicyKey => SystemdError::BadPolicyKey,
            SealError::PcrOutOfRange { pcr } => SystemdError::PcrOutOfRange { pcr },
            other => SystemdError::Seal(other),
        }
    }
}

fn retry_text(secs: Option<u32>) -> String {
    match secs {
        Some(s) => format!("{s} s"),
        None => "the lockout interval".to_string(),
    }
}

/// A signed PCR policy to enroll (`systemd-cryptenroll --tpm2-public-key=PEM
/// --tpm2-public-key-pcrs=...`).
#[derive(Debug, Clone, Copy)]
pub struct SignedPolicyKey<'a> {
    /// The RSA public key, PEM `BEGIN PUBLIC KEY` (e.g. a UKI's `.pcrpkey`); stored in the
    /// token as is.
    pub public_key_pem: &'a [u8],
    /// PCRs whose values the key signs (typically 11).
    pub pcrs: &'a [u32],
}

fn hash_alg(bank: PcrBank) -> HashAlg {
    match bank {
        PcrBank::Sha1 => HashAlg::Sha1,
        PcrBank::Sha256 => HashAlg::Sha256,
        PcrBank::Sha384 => HashAlg::Sha384,
        PcrBank::Sha512 => HashAlg::Sha512,
    }
}

/// The keyslot passphrase for a secret: standard base64 with padding (systemd `base64mem`).
fn passphrase(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(measure::uki::policy::base64(secret).into_bytes())
}

/// The sealed object's authValue for a PIN: SHA-256 of its bytes (systemd 252 `hash_pin`).
fn pin_auth(pin: &str) -> Result<Auth, TpmError> {
    let digest = Zeroizing::new(HashAlg::Sha256.hash(pin.as_bytes()));
    Auth::try_from(digest.to_vec()).map_err(cmd("PIN authValue"))
}

/// systemd 252's primary key template (`tpm2_make_primary`).
fn primary_template(alg: PrimaryAlg) -> Result<Public, TpmError> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(cmd("primary attributes"))?;
    let builder = PublicBuilder::new()
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes);
    let builder = match alg {
        PrimaryAlg::Ecc => builder
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()
                .map_err(cmd("primary ECC parameters"))?,
            )
            .with_ecc_unique_identifier(EccPoint::default()),
        PrimaryAlg::Rsa => builder
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_rsa_parameters(
                PublicRsaParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    RsaKeyBits::Rsa2048,
                    RsaExponent::default(),
                )
                .build()
                .map_err(cmd("primary RSA parameters"))?,
            )
            .with_rsa_unique_identifier(PublicKeyRsa::default()),
    };
    builder.build().map_err(cmd("primary template"))
}

/// Creates systemd's primary key; flushed when the guard drops.
fn create_primary(ctx: &mut Context, alg: PrimaryAlg) -> Result<(Guard<'_>, KeyHandle), TpmError> {
    let template = primary_template(alg)?;
    let created = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(cmd("CreatePrimary (systemd primary)"))?;
    let handle = created.key_handle;
    Ok((
        Guard::new(ctx, ObjectHandle::from(handle), Release::Flush),
        handle,
    ))
}

/// Splits `tpm2-blob` into its `TPM2B_PRIVATE` and `TPM2B_PUBLIC`, each size checked against
/// what remains and no byte left over.
fn split_blob(blob: &[u8]) -> Result<(Private, Public), SystemdError> {
    let bad = |reason| SystemdError::BadToken { reason };
    let private_len = match blob {
        [a, b, ..] => 2 + usize::from(u16::from_be_bytes([*a, *b])),
        _ => return Err(bad("tpm2-blob is too short for a TPM2B_PRIVATE")),
    };
    if blob.len() < private_len {
        return Err(bad("tpm2-blob: TPM2B_PRIVATE runs past the end"));
    }
    let (private, public) = blob.split_at(private_len);
    match public {
        [a, b, rest @ ..] if usize::from(u16::from_be_bytes([*a, *b])) == rest.len() => {}
        _ => {
            return Err(bad(
                "tpm2-blob: the TPM2B_PUBLIC after the TPM2B_PRIVATE is truncated or followed by other bytes",
            ))
        }
    }
    let private =
        unmarshal_private(private).ok_or(bad("tpm2-blob: not a marshalled TPM2B_PRIVATE"))?;
    let public = unmarshal_public(public).ok_or(bad("tpm2-blob: not a marshalled TPM2B_PUBLIC"))?;
    Ok((private, public))
}

/// PCR numbers from a token, ascending, as `u32`.
fn pcr_list(pcrs: &[u8]) -> Vec<u32> {
    let mut out: Vec<u32> = pcrs.iter().map(|p| u32::from(*p)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The one element of a field systemd 252 writes as a single string.
fn single<'a>(v: &'a OneOrMany<Vec<u8>>, field: &str) -> Result<&'a [u8], SystemdError> {
    match v.as_slice() {
        [one] => Ok(one),
        _ => Err(SystemdError::Unsupported {
            feature: format!("{field} with several values (a newer systemd)"),
        }),
    }
}

/// Refuses what systemd 252 would not have written: later releases' fields and flags.
fn check_supported(token: &SystemdTpm2Token) -> Result<(), SystemdError> {
    let unsupported = |feature: &str| {
        Err(SystemdError::Unsupported {
            feature: feature.to_string(),
        })
    };
    if token.pcrlock == Some(true) || token.pcrlock_nv.is_some() {
        return unsupported("tpm2_pcrlock (a pcrlock NV index policy, systemd 255+)");
    }
    if token.salt.is_some() {
        return unsupported("tpm2_salt (a salted PIN, systemd 253+)");
    }
    if token.srk.is_some() {
        return unsupported("tpm2_srk (sealed under a persistent SRK, systemd 254+)");
    }
    if let Some(field) = token.extra.keys().next() {
        return unsupported(&format!("unknown field {field:?}"));
    }
    Ok(())
}

/// The policy key of a token (`tpm2_pubkey`, a PEM file's bytes).
fn policy_key_from_pem(pem: &[u8]) -> Result<RsaKey, SystemdError> {
    let der = pem_public_key(pem).ok_or(SystemdError::BadPolicyKey)?;
    RsaKey::from_spki(&der).map_err(|_| SystemdError::BadPolicyKey)
}

/// The policy key's public area as systemd 252 builds it (`openssl_pubkey_to_tpm2_pubkey`):
/// `sign|decrypt|userWithAuth`, SHA-256 name, null scheme and symmetric, and, unlike
/// Warrant's own [`crate::seal`] and tpm2-tools, the exponent field set to the exponent
/// (65537) rather than 0 for "the default". systemd copies OpenSSL's big-endian exponent bytes
/// into the first bytes of a host-order `uint32_t`: on a little-endian host (x86, arm64) the
/// field is the exponent read little-endian, which for 65537 (`01 00 01`) is 65537. The
/// field is part of the key's Name, which `PolicyAuthorize` puts into the policy digest.
fn systemd_policy_public(key: &RsaKey) -> Result<Public, SystemdError> {
    let be = key.exponent.to_be_bytes();
    let significant: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    let mut field = [0u8; 4];
    for (dst, src) in field.iter_mut().zip(&significant) {
        *dst = *src;
    }
    Ok(key.public_area(u32::from_le_bytes(field))?)
}

/// Loads systemd's form of the policy key (TPM2_LoadExternal, owner hierarchy); flushed when
/// the guard drops. Returns its handle and Name.
fn load_systemd_policy_key<'a>(
    ctx: &'a mut Context,
    key: &RsaKey,
) -> Result<(Guard<'a>, KeyHandle, Name), SystemdError> {
    Ok(load_public(ctx, systemd_policy_public(key)?)?)
}

/// The DER of the first `BEGIN PUBLIC KEY` block (what OpenSSL's `PEM_read_PUBKEY` reads).
fn pem_public_key(pem: &[u8]) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find(BEGIN)? + BEGIN.len();
    let body = text.get(start..)?;
    let end = body.find(END)?;
    let b64: String = body
        .get(..end)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64_decode(&b64)
}

/// Strict standard base64 with padding (RFC 4648, section 4): only the canonical encoding of
/// some bytes decodes.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.len() / 4;
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == chunks;
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for c in chunk.iter().take(4 - pad) {
            n = (n << 6) | value(*c)?;
        }
        n <<= 6 * pad as u32;
        let [_, a, b, c] = n.to_be_bytes();
        out.push(a);
        if pad < 2 {
            out.push(b);
        }
        if pad < 1 {
            out.push(c);
        }
        // Canonical: the bits the padding drops must be zero.
        let dropped = match pad {
            1 => u32::from(c),
            2 => u32::from(b) | u32::from(c),
            _ => 0,
        };
        if dropped != 0 {
            return None;
        }
    }
    Some(out)
}

/// One entry of a `.pcrsig` bank array.
struct PcrSig {
    pcrs: Vec<u32>,
    pkfp: Vec<u8>,
    pol: Vec<u8>,
    sig: Vec<u8>,
    /// Warrant's anti-rollback fields (`warrant-svn`, `warrant-svn-index`,
    /// `warrant-svn-index-name`), which systemd does not read.
    svn: Option<SvnEntry>,
}

/// The SVN an entry's policy is bound to, and the NV index it is checked against.
struct SvnEntry {
    svn: u64,
    index: u32,
    index_name: Vec<u8>,
}

/// The entries for `bank` in a `.pcrsig` JSON (`{"sha256": [{"pcrs": [11], "pkfp": hex,
/// "pol": hex, "sig": base64}, ...]}`), parsed strictly. A bank that is absent has none.
fn pcrsig_entries(json: &[u8], bank: HashAlg) -> Result<Vec<PcrSig>, SystemdError> {
    let bad = |reason| SystemdError::BadSignatureFile { reason };
    let value: Value = serde_json::from_slice(json).map_err(|_| bad("not JSON"))?;
    let Value::Object(banks) = value else {
        return Err(bad("not a JSON object"));
    };
    let Some(entries) = banks.get(bank.name()) else {
        return Ok(Vec::new());
    };
    let Value::Array(entries) = entries else {
        return Err(bad("a bank is not an array"));
    };
    entries
        .iter()
        .map(|e| {
            let field = |name| e.get(name).and_then(Value::as_str);
            let pcrs = e
                .get("pcrs")
                .and_then(Value::as_array)
                .ok_or(bad("an entry lacks a pcrs array"))?
                .iter()
                .map(|p| {
                    p.as_u64()
                        .and_then(|p| u32::try_from(p).ok())
                        .filter(|p| *p <= 23)
                        .ok_or(bad("a PCR is not a number 0..=23"))
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let hex = |name, reason| {
                field(name)
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or(bad(reason))
            };
            Ok(PcrSig {
                pcrs: {
                    let mut p = pcrs;
                    p.sort_unstable();
                    p.dedup();
                    p
                },
                pkfp: hex("pkfp", "an entry's pkfp is missing or not hex")?,
                pol: hex("pol", "an entry's pol is missing or not hex")?,
                sig: field("sig")
                    .and_then(base64_decode)
                    .ok_or(bad("an entry's sig is missing or not base64"))?,
                svn: match e.get("warrant-svn") {
                    None => None,
                    Some(v) => Some(SvnEntry {
                        svn: v.as_u64().ok_or(bad("warrant-svn is not a number"))?,
                        index: field("warrant-svn-index")
                            .and_then(parse_index)
                            .ok_or(bad("warrant-svn-index is missing or not 0x and hex"))?,
                        index_name: hex(
                            "warrant-svn-index-name",
                            "warrant-svn-index-name is missing or not hex",
                        )?,
                    }),
                },
            })
        })
        .collect()
}

/// The marshalled single-bank `TPML_PCR_SELECTION` systemd uses (`count = 1`,
/// `sizeofSelect = 3`).
fn pcr_selection_bytes(bank: HashAlg, pcrs: &[u32]) -> Vec<u8> {
    let mut select = [0u8; 3];
    for p in pcrs {
        if let Some(byte) = select.get_mut((p / 8) as usize) {
            *byte |= 1 << (p % 8);
        }
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&bank.tpm_alg_id().to_be_bytes());
    out.push(3);
    out.extend_from_slice(&select);
    out
}

/// The policy digest systemd 252 computes at enrollment (SHA-256 session), extended as the TPM
/// does (Part 3 sections 23.7, 23.16, 23.18): `PolicyAuthorize(key)` when signed, then
/// `PolicyPCR(pcrs = values)` when there are PCRs, then `PolicyAuthValue` with a PIN. Pure:
/// `warrant disk status` compares it, for the PCR values of now or of a coming update, with a
/// token's `tpm2-policy-hash`.
pub fn enrollment_policy(
    authorize_key_name: Option<&[u8]>,
    bank: HashAlg,
    pcrs: &[u32],
    values: &[Vec<u8>],
    pin: bool,
) -> Vec<u8> {
    enrollment_policy_with_ref(authorize_key_name, &[], bank, pcrs, values, pin)
}

/// [`enrollment_policy`] with a policyRef for `PolicyAuthorize`: `H(a || policyRef)` (empty
/// for systemd; [`SVN_POLICY_REF`] for anti-rollback tokens).
pub fn enrollment_policy_with_ref(
    authorize_key_name: Option<&[u8]>,
    policy_ref: &[u8],
    bank: HashAlg,
    pcrs: &[u32],
    values: &[Vec<u8>],
    pin: bool,
) -> Vec<u8> {
    let sha = HashAlg::Sha256;
    let mut d = sha.zero();
    if let Some(name) = authorize_key_name {
        let a = sha.hash_parts(&[&d, &TPM_CC_POLICY_AUTHORIZE.to_be_bytes(), name]);
        d = sha.hash_parts(&[&a, policy_ref]);
    }
    if !pcrs.is_empty() {
        let parts: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let pcr_digest = sha.hash_parts(&parts);
        d = sha.hash_parts(&[
            &d,
            &TPM_CC_POLICY_PCR.to_be_bytes(),
            &pcr_selection_bytes(bank, pcrs),
            &pcr_digest,
        ]);
    }
    if pin {
        d = sha.hash_parts(&[&d, &TPM_CC_POLICY_AUTH_VALUE.to_be_bytes()]);
    }
    d
}

fn check_pcrs(pcrs: &[u32]) -> Result<Vec<u32>, SystemdError> {
    if let Some(pcr) = pcrs.iter().copied().find(|p| *p > 23) {
        return Err(SystemdError::PcrOutOfRange { pcr });
    }
    let mut out = pcrs.to_vec();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// 32 bytes from the operating system's CSPRNG (systemd uses `getrandom`).
fn random_secret() -> Result<Zeroizing<Vec<u8>>, SystemdError> {
    let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|source| SystemdError::Random { source })?;
    Ok(secret)
}

/// Unseals a `systemd-tpm2` token as systemd 252's `tpm2_unseal` does, and returns the LUKS2
/// keyslot passphrase exactly as `systemd-cryptsetup` passes it to libcryptsetup: the 32-byte
/// secret in standard base64 (44 bytes).
///
/// `pin` is required when the token says `tpm2-pin: true`, and refused otherwise. `pcrsig` is
/// systemd's `.pcrsig` JSON, required when the token has `tpm2_pubkey` with PCRs.
///
/// Nothing is returned unless the TPM released the secret. Errors name the cause: PCRs
/// changed ([`SystemdError::PcrsChanged`], checked before `Unseal` against
/// `tpm2-policy-hash`), wrong PIN, dictionary-attack lockout, another TPM (the blob does not
/// load), a token variant after systemd 252 ([`SystemdError::Unsupported`]).
pub fn unseal(
    tpm: &mut Tpm,
    token: &SystemdTpm2Token,
    pin: Option<&str>,
    pcrsig: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, SystemdError> {
    unseal_with(tpm, token, pin, pcrsig, None)
}

/// [`unseal`], and with `svn_index` the anti-rollback variant (`crate::rollback`): the signed
/// step is `PolicyPCR` then `PolicyNV(counter at svn_index <= the entry's SVN)`, authorised
/// with policyRef [`SVN_POLICY_REF`], and only SVN-bound `.pcrsig` entries for that index count.
pub(crate) fn unseal_with(
    tpm: &mut Tpm,
    token: &SystemdTpm2Token,
    pin: Option<&str>,
    pcrsig: Option<&[u8]>,
    svn_index: Option<u32>,
) -> Result<Zeroizing<Vec<u8>>, SystemdError> {
    check_supported(token)?;
    let blob = single(&token.blob, "tpm2-blob")?;
    let policy_hash = single(&token.policy_hash, "tpm2-policy-hash")?;
    let with_pin = token.pin.unwrap_or(false);
    match (with_pin, pin) {
        (true, None) => return Err(SystemdError::PinRequired),
        (false, Some(_)) => return Err(SystemdError::PinNotExpected),
        _ => {}
    }
    let bank = hash_alg(token.pcr_bank.unwrap_or(PcrBank::Sha256));
    let alg = token.primary_alg.unwrap_or(PrimaryAlg::Ecc);
    let hash_pcrs = pcr_list(&token.pcrs);
    let pubkey_pcrs = pcr_list(token.pubkey_pcrs.as_deref().unwrap_or(&[]));
    // systemd parses the key even when no PCRs are signed by it; so does Warrant.
    let key = token
        .pubkey
        .as_deref()
        .map(policy_key_from_pem)
        .transpose()?;
    let signed = match (&key, pubkey_pcrs.is_empty()) {
        (Some(key), false) => {
            let json = pcrsig.ok_or(SystemdError::SignatureRequired)?;
            Some((key, pcrsig_entries(json, bank)?))
        }
        _ => None,
    };
    if svn_index.is_some() && signed.is_none() {
        return Err(SystemdError::AntiRollbackNeedsPolicyKey);
    }
    let (private, public) = split_blob(blob)?;
    let Public::KeyedHash { auth_policy, .. } = &public else {
        return Err(SystemdError::BadToken {
            reason: "tpm2-blob does not hold a keyed-hash (sealed data) object",
        });
    };
    if auth_policy.value() != policy_hash {
        return Err(SystemdError::BadToken {
            reason: "tpm2-policy-hash differs from the sealed object's authPolicy",
        });
    }
    let auth = pin.map(pin_auth).transpose()?;
    let all_pcrs = {
        let mut p = hash_pcrs.clone();
        p.extend_from_slice(&pubkey_pcrs);
        p.sort_unstable();
        p.dedup();
        p
    };
    let changed = || SystemdError::PcrsChanged {
        bank,
        pcrs: PcrList(all_pcrs.clone()),
    };

    let (mut primary_guard, primary) = create_primary(tpm.context(), alg)?;
    let object = primary_guard
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.load(primary, private, public)
        })
        .map_err(|e| match kind(&e) {
            Some(Tss2ResponseCodeKind::Integrity) => SystemdError::DifferentTpm,
            // systemd's primary has `noDA` clear: in lockout even its empty-password use for
            // Load is refused, so a token without a PIN waits out a lockout too.
            Some(Tss2ResponseCodeKind::Lockout) => SystemdError::Lockout {
                retry_after_secs: lockout_interval(&mut primary_guard),
            },
            _ => cmd("Load (systemd sealed object)")(e).into(),
        })?;
    let mut object_guard = Guard::new(
        &mut primary_guard,
        ObjectHandle::from(object),
        Release::Flush,
    );
    if let Some(auth) = auth {
        object_guard
            .tr_set_auth(ObjectHandle::from(object), auth)
            .map_err(cmd("TR_SetAuth"))?;
    }
    let (mut session_guard, session, ps) =
        policy_session(&mut object_guard, Some(primary), SessionType::Policy)?;
    if let Some((key, entries)) = &signed {
        session_guard
            .policy_pcr(ps, Digest::default(), selection(bank, &pubkey_pcrs)?)
            .map_err(cmd("PolicyPCR (signed PCRs)"))?;
        let pcr_policy = session_guard
            .policy_get_digest(ps)
            .map_err(cmd("PolicyGetDigest"))?;
        // The entry's policy for this boot: PolicyPCR alone, or (anti-rollback) PolicyPCR then
        // PolicyNV with the entry's SVN and index Name, for the token's index only.
        let expected = |e: &PcrSig| -> Option<Vec<u8>> {
            match (svn_index, &e.svn) {
                (None, _) => Some(pcr_policy.value().to_vec()),
                (Some(index), Some(s)) if s.index == index => {
                    Some(svn_nv_digest(pcr_policy.value(), s.svn, &s.index_name))
                }
                (Some(_), _) => None,
            }
        };
        let mut for_this_boot: Vec<&PcrSig> = entries
            .iter()
            .filter(|e| e.pcrs == pubkey_pcrs && expected(e).as_deref() == Some(e.pol.as_slice()))
            .collect();
        if for_this_boot.is_empty() {
            return Err(match svn_index {
                None => SystemdError::NoSignatureForThisBoot {
                    bank,
                    pcrs: PcrList(pubkey_pcrs),
                },
                Some(index) => SystemdError::NoSvnSignatureForThisBoot {
                    bank,
                    pcrs: PcrList(pubkey_pcrs),
                    index,
                },
            });
        }
        // Several SVNs signed for the same image: the newest first.
        for_this_boot.sort_by_key(|e| std::cmp::Reverse(e.svn.as_ref().map(|s| s.svn)));
        let entry = for_this_boot
            .into_iter()
            .find(|e| e.pkfp == key.pkfp)
            .ok_or(SystemdError::WrongSigner)?;
        let (approved, policy_ref) = match (svn_index, &entry.svn) {
            (Some(index), Some(s)) => {
                crate::rollback::policy_svn(&mut session_guard, ps, index, s.svn, &s.index_name)?;
                let approved = session_guard
                    .policy_get_digest(ps)
                    .map_err(cmd("PolicyGetDigest"))?;
                (approved, SVN_POLICY_REF)
            }
            _ => (pcr_policy, &[][..]),
        };
        let (mut key_guard, key_handle, name) = load_systemd_policy_key(&mut session_guard, key)?;
        authorize_signed(
            &mut key_guard,
            key_handle,
            &name,
            ps,
            approved,
            policy_ref,
            &entry.sig,
        )
        .map_err(|e| match e {
            AuthorizeError::WrongSigner => SystemdError::WrongSigner,
            AuthorizeError::Tpm(e) => SystemdError::Tpm(e),
        })?;
    }
    if !hash_pcrs.is_empty() {
        session_guard
            .policy_pcr(ps, Digest::default(), selection(bank, &hash_pcrs)?)
            .map_err(cmd("PolicyPCR"))?;
    }
    if with_pin {
        session_guard
            .policy_auth_value(ps)
            .map_err(cmd("PolicyAuthValue"))?;
    }
    let digest = session_guard
        .policy_get_digest(ps)
        .map_err(cmd("PolicyGetDigest"))?;
    if digest.value() != policy_hash {
        return Err(changed());
    }
    let result = session_guard.execute_with_sessions((Some(session), None, None), |c| {
        c.unseal(ObjectHandle::from(object))
    });
    match result {
        Ok(data) => Ok(passphrase(data.value())),
        Err(e) => Err(match kind(&e) {
            Some(Tss2ResponseCodeKind::PolicyFail) => changed(),
            Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
                SystemdError::WrongPin
            }
            Some(Tss2ResponseCodeKind::Lockout) => SystemdError::Lockout {
                retry_after_secs: lockout_interval(&mut session_guard),
            },
            _ => cmd("Unseal")(e).into(),
        }),
    }
}

/// Enrolls as `systemd-cryptenroll --tpm2-device=... --tpm2-pcrs=PCRS [--tpm2-with-pin=yes]
/// [--tpm2-public-key=... --tpm2-public-key-pcrs=...]` of systemd 252 does: seals 32 fresh
/// random bytes (from the OS) under systemd's primary key (ECC, or RSA if the TPM has no ECC)
/// to systemd's policy over `pcrs` of `bank` (their current values), and returns the token
/// (with no `keyslots` yet: the caller adds the keyslot and sets it) and the keyslot
/// passphrase (base64 of the secret).
///
/// Unless the policy is signed, the new token is unsealed once before it is returned, as
/// systemd does, so that a token that would not open is never handed out.
pub fn seal(
    tpm: &mut Tpm,
    pcrs: &[u32],
    bank: PcrBank,
    pin: Option<&str>,
    signed: Option<&SignedPolicyKey<'_>>,
) -> Result<(SystemdTpm2Token, Zeroizing<Vec<u8>>), SystemdError> {
    seal_with(tpm, pcrs, bank, pin, signed, None)
}

/// [`seal`], and with `svn_index` for anti-rollback (`crate::rollback`): the signed policy is
/// authorised with policyRef [`SVN_POLICY_REF`], and the counter at `svn_index` must exist and
/// be initialised.
pub(crate) fn seal_with(
    tpm: &mut Tpm,
    pcrs: &[u32],
    bank: PcrBank,
    pin: Option<&str>,
    signed: Option<&SignedPolicyKey<'_>>,
    svn_index: Option<u32>,
) -> Result<(SystemdTpm2Token, Zeroizing<Vec<u8>>), SystemdError> {
    let hash_pcrs = check_pcrs(pcrs)?;
    let pubkey_pcrs = signed.map(|s| check_pcrs(s.pcrs)).transpose()?;
    if hash_pcrs.is_empty() && pubkey_pcrs.as_ref().is_none_or(Vec::is_empty) {
        return Err(SystemdError::NoPcrs);
    }
    if let Some(index) = svn_index {
        if pubkey_pcrs.as_ref().is_none_or(Vec::is_empty) {
            return Err(SystemdError::AntiRollbackNeedsPolicyKey);
        }
        // Refuse to enroll against a counter that is missing, foreign or uninitialised.
        tpm.svn_read(index)?;
    }
    if pin == Some("") {
        return Err(SystemdError::EmptyPin);
    }
    let key = signed
        .map(|s| policy_key_from_pem(s.public_key_pem))
        .transpose()?;
    let alg = hash_alg(bank);
    let values = if hash_pcrs.is_empty() {
        Vec::new()
    } else {
        let current = tpm.read_selection(&[(alg, hash_pcrs.clone())])?;
        hash_pcrs
            .iter()
            .map(|p| {
                current
                    .get(alg, *p)
                    .map(<[u8]>::to_vec)
                    .ok_or(TpmError::Malformed { op: "PCR_Read" })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let secret = random_secret()?;
    let auth = pin.map(pin_auth).transpose()?;

    let ctx = tpm.context();
    let key_name = match &key {
        Some(key) => {
            let (_guard, _, name) = load_systemd_policy_key(ctx, key)?;
            Some(name.value().to_vec())
        }
        None => None,
    };
    let policy_ref = if svn_index.is_some() {
        SVN_POLICY_REF
    } else {
        &[][..]
    };
    let policy = enrollment_policy_with_ref(
        key_name.as_deref(),
        policy_ref,
        alg,
        &hash_pcrs,
        &values,
        pin.is_some(),
    );
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .build()
        .map_err(cmd("sealed object attributes"))?;
    let template = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(Digest::try_from(policy.clone()).map_err(cmd("policy digest"))?)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::try_from(vec![0u8; 32]).map_err(cmd("unique"))?)
        .build()
        .map_err(cmd("sealed object template"))?;
    let data = SensitiveData::try_from(secret.to_vec()).map_err(cmd("sealed data"))?;

    // ECC first; RSA when the TPM cannot make an ECC primary (systemd's fallback).
    let primary_alg = match create_primary(ctx, PrimaryAlg::Ecc) {
        Ok(_) => PrimaryAlg::Ecc,
        Err(_) => PrimaryAlg::Rsa,
    };
    let (mut primary_guard, primary) = create_primary(ctx, primary_alg)?;
    let (mut salted, hmac) = salted_session(&mut primary_guard, primary)?;
    let created = salted
        .execute_with_sessions((Some(hmac), None, None), |c| {
            c.create(primary, template, auth, Some(data), None, None)
        })
        .map_err(cmd("Create (systemd sealed object)"))?;
    let mut blob = private_to_tpm2b(&created.out_private);
    blob.extend_from_slice(&public_to_tpm2b(&created.out_public)?);
    drop(salted);
    drop(primary_guard);

    let signed_pcrs = pubkey_pcrs.filter(|p| !p.is_empty());
    let to_u8 =
        |pcrs: &[u32]| -> Vec<u8> { pcrs.iter().filter_map(|p| u8::try_from(*p).ok()).collect() };
    let token = SystemdTpm2Token {
        keyslots: Vec::new(),
        blob: OneOrMany::One(blob),
        pcrs: to_u8(&hash_pcrs),
        pcr_bank: Some(bank),
        primary_alg: Some(primary_alg),
        policy_hash: OneOrMany::One(policy),
        pin: Some(pin.is_some()),
        pcrlock: None,
        pubkey_pcrs: signed_pcrs.as_deref().map(to_u8),
        pubkey: match (&signed_pcrs, signed) {
            (Some(_), Some(s)) => Some(s.public_key_pem.to_vec()),
            _ => None,
        },
        salt: None,
        srk: None,
        pcrlock_nv: None,
        extra: serde_json::Map::new(),
    };
    let out = passphrase(&secret);
    if token.pubkey.is_none() {
        let check = unseal(tpm, &token, pin, None)?;
        if check.as_slice() != out.as_slice() {
            return Err(SystemdError::Tpm(TpmError::Malformed {
                op: "Unseal (enrollment check)",
            }));
        }
    }
    Ok((token, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_strict_and_round_trips() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            let text = measure::uki::policy::base64(&bytes);
            assert_eq!(base64_decode(&text).unwrap(), bytes);
        }
        assert_eq!(base64_decode("AA==").unwrap(), vec![0]);
        assert!(base64_decode("AB==").is_none()); // non-zero dropped bits
        assert!(base64_decode("AA=").is_none());
        assert!(base64_decode("A===").is_none());
        assert!(base64_decode("AA==AAAA").is_none());
        assert!(base64_decode("AA A").is_none());
    }

    #[test]
    fn blobs_are_split_strictly() {
        assert!(matches!(
            split_blob(&[]),
            Err(SystemdError::BadToken { .. })
        ));
        assert!(matches!(
            split_blob(&[0, 5, 1]),
            Err(SystemdError::BadToken { .. })
        ));
        // A TPM2B_PUBLIC with a byte after it.
        assert!(matches!(
            split_blob(&[0, 1, 9, 0, 1, 0, 7]),
            Err(SystemdError::BadToken { .. })
        ));
    }

    /// The digest of `PolicyPCR` alone matches `measure`'s independent computation.
    #[test]
    fn pcr_policy_matches_measure() {
        let v = vec![7u8; 32];
        let ours = enrollment_policy(
            None,
            HashAlg::Sha256,
            &[11],
            std::slice::from_ref(&v),
            false,
        );
        let theirs = measure::uki::policy::policy_pcr_digest(HashAlg::Sha256, 11, &v).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            enrollment_policy(None, HashAlg::Sha256, &[], &[], false),
            vec![0; 32]
        );
    }

    #[test]
    fn pcrsig_parsing_is_strict() {
        let good = br#"{"sha256":[{"pcrs":[11],"pkfp":"00ff","pol":"aa","sig":"AAEC"}]}"#;
        let e = pcrsig_entries(good, HashAlg::Sha256).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].sig, vec![0, 1, 2]);
        assert!(pcrsig_entries(good, HashAlg::Sha1).unwrap().is_empty());
        assert!(e[0].svn.is_none());
        let svn = br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAEC","warrant-svn":3,"warrant-svn-index":"0x01805752","warrant-svn-index-name":"000b"}]}"#;
        let e = pcrsig_entries(svn, HashAlg::Sha256).unwrap();
        let s = e[0].svn.as_ref().unwrap();
        assert_eq!(
            (s.svn, s.index, s.index_name.clone()),
            (3, 0x0180_5752, vec![0, 11])
        );
        for bad in [
            &br#"[]"#[..],
            br#"{"sha256":{}}"#,
            br#"{"sha256":[{"pcrs":[24],"pkfp":"00","pol":"aa","sig":"AAEC"}]}"#,
            br#"{"sha256":[{"pcrs":[11],"pkfp":"0","pol":"aa","sig":"AAEC"}]}"#,
            br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAE"}]}"#,
            // Anti-rollback fields: all three, well-formed, or the file is refused.
            br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAEC","warrant-svn":-1,"warrant-svn-index":"0x01805752","warrant-svn-index-name":"00"}]}"#,
            br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAEC","warrant-svn":2,"warrant-svn-index-name":"00"}]}"#,
            br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAEC","warrant-svn":2,"warrant-svn-index":"1805752","warrant-svn-index-name":"00"}]}"#,
            br#"{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"aa","sig":"AAEC","warrant-svn":2,"warrant-svn-index":"0x01805752"}]}"#,
        ] {
            assert!(matches!(
                pcrsig_entries(bad, HashAlg::Sha256),
                Err(SystemdError::BadSignatureFile { .. })
            ));
        }
    }
}
