//! Sealing a small secret (a disk key) to the TPM under a PCR policy, optionally with a PIN.
//!
//! - The parent is the SRK: the TCG default ECC NIST P-256 storage primary key of the owner
//!   hierarchy (TCG "TPM 2.0 Provisioning Guidance" 1.0, section 7.5.1, and systemd's
//!   `tpm2_get_srk_template`): restricted decrypt, AES-128-CFB, SHA-256 name, empty unique. It is
//!   created again on every use (TPM2_CreatePrimary, Part 3 section 24.1); the same template
//!   always yields the same key until the owner seed changes (TPM2_Clear).
//! - The secret is a keyed-hash "sealed data object" (Part 1 section 27.2.5, TPM2_Create Part 3
//!   section 12.1) with `userWithAuth` clear: only its policy can authorise it. The policy is
//!   `TPM2_PolicyPCR` (Part 3 section 23.7) over the chosen PCRs of one bank with the values
//!   at seal time, then, with a PIN, `TPM2_PolicyAuthValue` (23.17), the object's authValue
//!   being SHA-256(PIN) and dictionary-attack protection on (`noDA` clear).
//! - The secret travels encrypted on the bus both ways: `Create` runs in an HMAC session
//!   salted with the SRK and `Unseal` in a policy session salted with the SRK, both with
//!   AES-128-CFB parameter encryption.
//! - [`SealedBlob`] is Warrant's own versioned JSON; it records the SRK's Name, so that a blob
//!   from another TPM (or from before a TPM clear) is refused as such before anything else.

use crate::device::{
    cmd, private_to_tpm2b, public_to_tpm2b, salted_session, slot, to_hashing, unmarshal_private,
    unmarshal_public,
};
use crate::guard::{Guard, Release};
use crate::{Tpm, TpmError};
use measure::alg::HashAlg;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::{CapabilityType, PropertyTag, SessionType};
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Auth, CapabilityData, Digest, EccPoint, KeyedHashScheme, Name, Nonce, PcrSelectionList,
    PcrSelectionListBuilder, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyRsa, PublicKeyedHashParameters, PublicRsaParameters, RsaExponent, RsaScheme,
    RsaSignature, SensitiveData, Signature, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::Context;
use zeroize::Zeroizing;

/// Largest secret a sealed data object holds (`MAX_SYM_DATA`, Part 2 section 10.4.3).
pub const MAX_SECRET: usize = 128;
/// Version of the [`SealedBlob`] format written by this code.
pub const BLOB_VERSION: u32 = 1;
/// The `format` field of a [`SealedBlob`].
const BLOB_FORMAT: &str = "warrant-sealed";

/// A list of PCR indices, shown as `7,11`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrList(pub Vec<u32>);

impl fmt::Display for PcrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Why sealing or unsealing failed. The first variants are the ones a user acts on.
#[derive(Debug, Error)]
pub enum SealError {
    /// The PCRs of the policy hold other values than at seal time.
    #[error("the PCR policy ({bank}: {pcrs}) does not match this boot (changed: {changed})")]
    PcrMismatch {
        bank: HashAlg,
        pcrs: PcrList,
        changed: PcrList,
    },
    /// The blob was sealed under another storage root key: another TPM, or this one before a
    /// TPM clear.
    #[error(
        "sealed for a different TPM (or before this TPM was cleared): its storage root key differs"
    )]
    DifferentTpm,
    /// A signed policy: no signature in the `.pcrsig` covers this boot's PCR values.
    #[error("no signed PCR policy matches this boot ({bank}: {pcrs}): sign a policy for the current PCR values")]
    NoSignatureForThisBoot { bank: HashAlg, pcrs: PcrList },
    /// A signed policy: the signature is not by the key the secret is sealed to.
    #[error("the PCR policy signature is not by the policy key this secret is sealed to")]
    WrongSigner,
    #[error("this secret is sealed to a signed PCR policy; give the PCR signature")]
    SignatureRequired,
    #[error(
        "the policy key is not an RSA public key (SubjectPublicKeyInfo DER, 1024 to 4096 bits)"
    )]
    BadPolicyKey,
    #[error("a signed PCR policy needs the sha256 bank (the signature is over a SHA-256 policy digest), not {bank}")]
    SignedBankUnsupported { bank: HashAlg },
    #[error("a value is given for PCR {pcr}, which is not in the policy, twice, not a digest of the bank, or used with a signed policy")]
    BadSuppliedValue { pcr: u32 },
    #[error("wrong PIN")]
    WrongPin,
    #[error("this secret is sealed with a PIN; none was given")]
    PinRequired,
    #[error("this secret is sealed without a PIN, but one was given")]
    PinNotExpected,
    /// TPM_RC_LOCKOUT: too many authorisation failures.
    #[error("TPM is in dictionary-attack lockout; retry after {}", retry_text(*.retry_after_secs))]
    Lockout { retry_after_secs: Option<u32> },
    #[error("the secret is {len} bytes; a sealed object holds at most {MAX_SECRET}")]
    SecretTooLong { len: usize },
    #[error("the PIN is empty")]
    EmptyPin,
    #[error("no PCRs chosen for the policy")]
    NoPcrs,
    #[error("PCR {pcr} is out of range 0..=23")]
    PcrOutOfRange { pcr: u32 },
    #[error("sealed blob: {reason}")]
    BadBlob { reason: &'static str },
    #[error("sealed blob version {version} is not supported (this is version {BLOB_VERSION})")]
    UnsupportedVersion { version: u32 },
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

fn retry_text(secs: Option<u32>) -> String {
    match secs {
        Some(s) => format!("{s} s"),
        None => "the lockout interval".to_string(),
    }
}

/// What the secret is sealed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPolicy {
    /// The PCR bank whose values the policy checks.
    pub bank: HashAlg,
    /// The PCRs, 0..=23.
    pub pcrs: Vec<u32>,
    /// With a key (an RSA public key, DER `SubjectPublicKeyInfo`): the policy is
    /// `TPM2_PolicyAuthorize` by that key, and any PolicyPCR policy it signs for `pcrs` of
    /// `bank` unseals (systemd's `.pcrsig`). Without: PolicyPCR with the values read now.
    pub signed_by: Option<Vec<u8>>,
    /// Values to seal to instead of the current ones, for some of `pcrs` (a prediction for
    /// the next boot); the others are read from the TPM. Not used with `signed_by`.
    pub values: Vec<(u32, Vec<u8>)>,
}

/// One signed PCR policy, an element of a bank's array in systemd's `.pcrsig` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPcrPolicy {
    pub pcrs: Vec<u32>,
    /// SHA-256 of the signing key's PKCS#1 `RSAPublicKey` DER.
    pub pkfp: Vec<u8>,
    /// The PolicyPCR policy digest (SHA-256 session).
    pub pol: Vec<u8>,
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `pol`.
    pub sig: Vec<u8>,
}

/// A secret sealed by [`Tpm::seal`]: safe to store anywhere (the private part is encrypted
/// by the SRK and useless off this TPM), as JSON ([`SealedBlob::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Marshalled `TPM2B_PUBLIC` of the sealed object.
    pub public: Vec<u8>,
    /// Marshalled `TPM2B_PRIVATE` of the sealed object.
    pub private: Vec<u8>,
    /// The SRK's Name (`nameAlg || H(TPMT_PUBLIC)`) at seal time.
    pub srk_name: Vec<u8>,
    pub bank: HashAlg,
    /// PCRs of the policy, ascending.
    pub pcrs: Vec<u32>,
    /// Their values at seal time, in the order of `pcrs` (empty for a signed policy).
    pub pcr_values: Vec<Vec<u8>>,
    /// The policy key of a signed policy (RSA, DER `SubjectPublicKeyInfo`).
    pub policy_key: Option<Vec<u8>>,
    /// Whether the policy includes PolicyAuthValue (a PIN).
    pub pin: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobJson {
    format: String,
    version: u32,
    srk_name: String,
    public: String,
    private: String,
    policy: PolicyJson,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    /// "pcr" (PolicyPCR), "pcr+pin" (PolicyPCR, PolicyAuthValue), "signed"
    /// (PolicyAuthorize) or "signed+pin" (PolicyAuthorize, PolicyAuthValue).
    kind: String,
    bank: String,
    pcrs: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pcr_values: Vec<String>,
    /// DER SubjectPublicKeyInfo of the policy key, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// SHA-256 of the policy key's PKCS#1 DER, hex, as in `.pcrsig`'s `pkfp` (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pkfp: Option<String>,
}

impl SealedBlob {
    /// The blob as pretty JSON (version 1).
    pub fn to_json(&self) -> Vec<u8> {
        let json = BlobJson {
            format: BLOB_FORMAT.to_string(),
            version: BLOB_VERSION,
            srk_name: hex::encode(&self.srk_name),
            public: hex::encode(&self.public),
            private: hex::encode(&self.private),
            policy: PolicyJson {
                kind: match (self.policy_key.is_some(), self.pin) {
                    (false, false) => "pcr",
                    (false, true) => "pcr+pin",
                    (true, false) => "signed",
                    (true, true) => "signed+pin",
                }
                .to_string(),
                bank: self.bank.name().to_string(),
                pcrs: self.pcrs.clone(),
                pcr_values: self.pcr_values.iter().map(hex::encode).collect(),
                key: self.policy_key.as_ref().map(hex::encode),
                pkfp: self
                    .policy_key
                    .as_ref()
                    .and_then(|k| RsaKey::from_spki(k).ok())
                    .map(|k| hex::encode(k.pkfp)),
            },
        };
        let mut out = serde_json::to_vec_pretty(&json).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses and checks a blob written by [`SealedBlob::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<SealedBlob, SealError> {
        let bad = |reason| SealError::BadBlob { reason };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(BLOB_FORMAT) {
            return Err(bad(
                "not a Warrant sealed blob (format is not \"warrant-sealed\")",
            ));
        }
        let version = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or(bad("no version"))?;
        if version != u64::from(BLOB_VERSION) {
            return Err(SealError::UnsupportedVersion {
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let json: BlobJson = serde_json::from_value(value)
            .map_err(|_| bad("fields missing, unknown or mistyped"))?;
        let unhex = |s: &str, reason| hex::decode(s).map_err(|_| bad(reason));
        let (signed, pin) = match json.policy.kind.as_str() {
            "pcr" => (false, false),
            "pcr+pin" => (false, true),
            "signed" => (true, false),
            "signed+pin" => (true, true),
            _ => return Err(bad("unknown policy kind")),
        };
        let policy_key = match (signed, &json.policy.key) {
            (true, Some(k)) => {
                let der = unhex(k, "policy key not hex")?;
                RsaKey::from_spki(&der)?;
                Some(der)
            }
            (false, None) => None,
            _ => {
                return Err(bad(
                    "policy key present without a signed policy, or missing",
                ))
            }
        };
        let bank = HashAlg::from_name(&json.policy.bank).ok_or(bad("unknown PCR bank"))?;
        let pcrs = json.policy.pcrs;
        if pcrs.is_empty() || pcrs.windows(2).any(|w| w.first() >= w.get(1)) {
            return Err(bad("PCR list empty or not strictly ascending"));
        }
        if let Some(pcr) = pcrs.iter().copied().find(|p| *p > 23) {
            return Err(SealError::PcrOutOfRange { pcr });
        }
        let pcr_values = json
            .policy
            .pcr_values
            .iter()
            .map(|v| unhex(v, "PCR value not hex"))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = if signed { 0 } else { pcrs.len() };
        if pcr_values.len() != expected || pcr_values.iter().any(|v| v.len() != bank.digest_len()) {
            return Err(bad("PCR values do not match the PCR list and bank"));
        }
        let blob = SealedBlob {
            public: unhex(&json.public, "public not hex")?,
            private: unhex(&json.private, "private not hex")?,
            srk_name: unhex(&json.srk_name, "srk_name not hex")?,
            bank,
            pcrs,
            pcr_values,
            policy_key,
            pin,
        };
        // Fail early on structures the TPM would refuse anyway.
        public_from(&blob.public)?;
        private_from(&blob.private)?;
        Ok(blob)
    }
}

fn public_from(bytes: &[u8]) -> Result<Public, SealError> {
    unmarshal_public(bytes).ok_or(SealError::BadBlob {
        reason: "public is not a marshalled TPM2B_PUBLIC",
    })
}

fn private_from(bytes: &[u8]) -> Result<Private, SealError> {
    unmarshal_private(bytes).ok_or(SealError::BadBlob {
        reason: "private is not a marshalled TPM2B_PRIVATE",
    })
}

/// The object's authValue for a PIN: SHA-256 of its bytes (so any PIN length fits the
/// 32-byte authValue of a SHA-256 object).
fn pin_auth(pin: &[u8]) -> Result<Auth, SealError> {
    if pin.is_empty() {
        return Err(SealError::EmptyPin);
    }
    let digest = Zeroizing::new(HashAlg::Sha256.hash(pin));
    Auth::try_from(digest.to_vec()).map_err(|e| cmd("PIN authValue")(e).into())
}

/// The SRK template (ECC NIST P-256, TCG Provisioning Guidance section 7.5.1).
fn srk_template() -> Result<Public, TpmError> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(cmd("SRK attributes"))?;
    let params = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()
    .map_err(cmd("SRK parameters"))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(cmd("SRK template"))
}

/// Creates the SRK (owner hierarchy, empty owner authValue); flushed when the guard drops.
/// Returns its handle and Name.
fn load_srk(ctx: &mut Context) -> Result<(Guard<'_>, KeyHandle, Vec<u8>), TpmError> {
    let template = srk_template()?;
    let created = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(cmd("CreatePrimary (SRK)"))?;
    let handle = created.key_handle;
    let mut guard = Guard::new(ctx, ObjectHandle::from(handle), Release::Flush);
    let (_, name, _) = guard.read_public(handle).map_err(cmd("ReadPublic (SRK)"))?;
    Ok((guard, handle, name.value().to_vec()))
}

pub(crate) fn selection(bank: HashAlg, pcrs: &[u32]) -> Result<PcrSelectionList, SealError> {
    let slots = pcrs
        .iter()
        .map(|p| slot(*p))
        .collect::<Result<Vec<_>, _>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(to_hashing(bank), &slots)
        .build()
        .map_err(|e| cmd("PCR selection")(e).into())
}

/// Starts a policy (or trial) session with SHA-256; salted with `salt` when given, with
/// AES-128-CFB response parameter encryption (the Unseal result travels encrypted).
pub(crate) fn policy_session(
    ctx: &mut Context,
    salt: Option<KeyHandle>,
    kind: SessionType,
) -> Result<(Guard<'_>, AuthSession, PolicySession), TpmError> {
    let session = ctx
        .start_auth_session(
            salt,
            None,
            None,
            kind,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(cmd("StartAuthSession (policy)"))?
        .ok_or(TpmError::Malformed {
            op: "StartAuthSession",
        })?;
    let mut guard = Guard::new(
        ctx,
        ObjectHandle::from(SessionHandle::from(session)),
        Release::Flush,
    );
    if salt.is_some() {
        // Unseal has no command parameter to encrypt: only `encrypt` (the response).
        let (attrs, mask) = SessionAttributesBuilder::new().with_encrypt(true).build();
        guard
            .tr_sess_set_attributes(session, attrs, mask)
            .map_err(cmd("TR_SetAttributes"))?;
    }
    let policy = PolicySession::try_from(session).map_err(cmd("PolicySession"))?;
    Ok((guard, session, policy))
}

/// The PolicyPCR `pcrDigest` of a SHA-256 session: SHA-256 of the values concatenated in
/// selection order (Part 3 section 23.7).
fn pcr_digest(values: &[Vec<u8>]) -> Result<Digest, TpmError> {
    let parts: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    Digest::try_from(HashAlg::Sha256.hash_parts(&parts)).map_err(cmd("PCR digest"))
}

/// The TPM's response code kind, for errors the user must see by name.
pub(crate) fn kind(e: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match e {
        tss_esapi::Error::Tss2Error(rc) => rc.kind(),
        tss_esapi::Error::WrapperError(_) => None,
    }
}

/// Why a signed PCR policy did not authorise a session.
pub(crate) enum AuthorizeError {
    /// The signature is not the policy key's over this policy.
    WrongSigner,
    Tpm(TpmError),
}

/// `TPM2_VerifySignature` of `signature` (RSASSA-PKCS1-v1_5, SHA-256) over
/// `H(approved || policyRef)` with the loaded policy key, then `TPM2_PolicyAuthorize(approved,
/// policyRef, key name, ticket)` on `session` (Part 3 sections 20.1 and 23.16): the step shared
/// by Warrant's own signed policies and systemd's (empty policyRef) and by anti-rollback
/// policies (`crate::rollback`).
pub(crate) fn authorize_signed(
    ctx: &mut Context,
    key: KeyHandle,
    key_name: &Name,
    session: PolicySession,
    approved: Digest,
    policy_ref: &[u8],
    signature: &[u8],
) -> Result<(), AuthorizeError> {
    let tpm = |e: TpmError| AuthorizeError::Tpm(e);
    let a_hash = Digest::try_from(HashAlg::Sha256.hash_parts(&[approved.value(), policy_ref]))
        .map_err(|e| tpm(cmd("aHash")(e)))?;
    let policy_ref = Nonce::try_from(policy_ref.to_vec()).map_err(|e| tpm(cmd("policyRef")(e)))?;
    let sig =
        PublicKeyRsa::try_from(signature.to_vec()).map_err(|_| AuthorizeError::WrongSigner)?;
    let signature = Signature::RsaSsa(
        RsaSignature::create(HashingAlgorithm::Sha256, sig)
            .map_err(|_| AuthorizeError::WrongSigner)?,
    );
    let ticket = ctx
        .verify_signature(key, a_hash, signature)
        .map_err(|e| match kind(&e) {
            Some(
                Tss2ResponseCodeKind::Signature
                | Tss2ResponseCodeKind::Value
                | Tss2ResponseCodeKind::Size,
            ) => AuthorizeError::WrongSigner,
            _ => tpm(cmd("VerifySignature")(e)),
        })?;
    ctx.policy_authorize(session, approved, policy_ref, key_name, ticket)
        .map_err(|e| tpm(cmd("PolicyAuthorize")(e)))
}

/// `TPM_CC_PolicyAuthorize` and `TPM_CC_PolicyAuthValue` (Part 2 section 6.5.2).
pub(crate) const TPM_CC_POLICY_AUTHORIZE: u32 = 0x0000_016A;
pub(crate) const TPM_CC_POLICY_AUTH_VALUE: u32 = 0x0000_016B;

/// The authPolicy of a signed policy, computed as the TPM does (Part 3 sections 23.16 and
/// 23.17): `H(H(0^32 || CC_PolicyAuthorize || keyName) || policyRef)` with an empty
/// policyRef, then `H(d || CC_PolicyAuthValue)` with a PIN.
fn authorize_policy_digest(key_name: &[u8], pin: bool) -> Vec<u8> {
    let sha = HashAlg::Sha256;
    let d = sha.hash_parts(&[&[0u8; 32], &TPM_CC_POLICY_AUTHORIZE.to_be_bytes(), key_name]);
    let d = sha.hash(&d);
    if pin {
        sha.hash_parts(&[&d, &TPM_CC_POLICY_AUTH_VALUE.to_be_bytes()])
    } else {
        d
    }
}

/// An RSA policy key, from its DER SubjectPublicKeyInfo.
pub(crate) struct RsaKey {
    pub(crate) modulus: Vec<u8>,
    pub(crate) exponent: u32,
    /// SHA-256 of the PKCS#1 `RSAPublicKey` DER (`.pcrsig`'s `pkfp`).
    pub(crate) pkfp: Vec<u8>,
}

impl RsaKey {
    pub(crate) fn from_spki(der: &[u8]) -> Result<RsaKey, SealError> {
        let spki: picky_asn1_x509::SubjectPublicKeyInfo =
            picky_asn1_der::from_bytes(der).map_err(|_| SealError::BadPolicyKey)?;
        let picky_asn1_x509::PublicKey::Rsa(rsa) = spki.subject_public_key else {
            return Err(SealError::BadPolicyKey);
        };
        let pkcs1 = picky_asn1_der::to_vec(&rsa.0).map_err(|_| SealError::BadPolicyKey)?;
        let modulus = rsa.0.modulus.as_unsigned_bytes_be().to_vec();
        let e = rsa.0.public_exponent.as_unsigned_bytes_be();
        if e.len() > 4 || !matches!(modulus.len(), 128 | 256 | 384 | 512) {
            return Err(SealError::BadPolicyKey);
        }
        let exponent = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        Ok(RsaKey {
            modulus,
            exponent,
            pkfp: HashAlg::Sha256.hash(&pkcs1),
        })
    }

    /// The public area LoadExternal takes, shaped as systemd's
    /// `tpm2_tpm2b_public_from_openssl_pkey` (sign|decrypt|userWithAuth, null scheme), with
    /// Warrant's (and tpm2-tools') exponent field: 0 for the default 65537.
    fn tpm_public(&self) -> Result<Public, SealError> {
        self.public_area(if self.exponent == 65537 {
            0
        } else {
            self.exponent
        })
    }

    /// The policy key's public area with `exponent_field` as `TPMS_RSA_PARMS.exponent`: the
    /// field is part of the key's Name, so each sealing format must fill it as its signer does
    /// (see [`crate::systemd`]).
    pub(crate) fn public_area(&self, exponent_field: u32) -> Result<Public, SealError> {
        let bits = match self.modulus.len() {
            128 => RsaKeyBits::Rsa1024,
            256 => RsaKeyBits::Rsa2048,
            384 => RsaKeyBits::Rsa3072,
            512 => RsaKeyBits::Rsa4096,
            _ => return Err(SealError::BadPolicyKey),
        };
        let exponent = RsaExponent::create(exponent_field).map_err(|_| SealError::BadPolicyKey)?;
        let attributes = ObjectAttributesBuilder::new()
            .with_decrypt(true)
            .with_sign_encrypt(true)
            .with_user_with_auth(true)
            .build()
            .map_err(cmd("policy key attributes"))?;
        let params = PublicRsaParameters::new(
            SymmetricDefinitionObject::Null,
            RsaScheme::Null,
            bits,
            exponent,
        );
        let unique =
            PublicKeyRsa::try_from(self.modulus.clone()).map_err(|_| SealError::BadPolicyKey)?;
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_rsa_parameters(params)
            .with_rsa_unique_identifier(unique)
            .build()
            .map_err(|e| cmd("policy key public area")(e).into())
    }
}

/// Loads the policy key's public part (TPM2_LoadExternal, Part 3 section 12.3, owner
/// hierarchy so that VerifySignature's ticket is usable); flushed when the guard drops.
fn load_policy_key<'a>(
    ctx: &'a mut Context,
    key: &RsaKey,
) -> Result<(Guard<'a>, KeyHandle, Name), SealError> {
    load_public(ctx, key.tpm_public()?).map_err(SealError::Tpm)
}

/// Loads a public area (TPM2_LoadExternal, owner hierarchy); flushed when the guard drops.
/// Returns its handle and Name.
pub(crate) fn load_public(
    ctx: &mut Context,
    public: Public,
) -> Result<(Guard<'_>, KeyHandle, Name), TpmError> {
    let handle = ctx
        .load_external_public(public, Hierarchy::Owner)
        .map_err(cmd("LoadExternal (policy key)"))?;
    let mut guard = Guard::new(ctx, ObjectHandle::from(handle), Release::Flush);
    let (_, name, _) = guard
        .read_public(handle)
        .map_err(cmd("ReadPublic (policy key)"))?;
    Ok((guard, handle, name))
}

impl Tpm {
    /// Seals `secret` (at most [`MAX_SECRET`] bytes) under the SRK to `policy` (PCR values read
    /// now, or a policy key), and to `pin` if given.
    pub fn seal(
        &mut self,
        secret: &[u8],
        policy: &SealPolicy,
        pin: Option<&[u8]>,
    ) -> Result<SealedBlob, SealError> {
        if secret.len() > MAX_SECRET {
            return Err(SealError::SecretTooLong { len: secret.len() });
        }
        let mut pcrs = policy.pcrs.clone();
        pcrs.sort_unstable();
        pcrs.dedup();
        if pcrs.is_empty() {
            return Err(SealError::NoPcrs);
        }
        if let Some(pcr) = pcrs.iter().copied().find(|p| *p > 23) {
            return Err(SealError::PcrOutOfRange { pcr });
        }
        let bank = policy.bank;
        let key = policy
            .signed_by
            .as_deref()
            .map(RsaKey::from_spki)
            .transpose()?;
        if key.is_some() && bank != HashAlg::Sha256 {
            return Err(SealError::SignedBankUnsupported { bank });
        }
        let auth = pin.map(pin_auth).transpose()?;
        let with_pin = auth.is_some();
        let list = selection(bank, &pcrs)?;
        for (i, (pcr, value)) in policy.values.iter().enumerate() {
            let twice = policy.values.iter().skip(i + 1).any(|(p, _)| p == pcr);
            if key.is_some() || twice || !pcrs.contains(pcr) || value.len() != bank.digest_len() {
                return Err(SealError::BadSuppliedValue { pcr: *pcr });
            }
        }
        let pcr_values = if key.is_some() {
            Vec::new()
        } else {
            let current = self.read_selection(&[(bank, pcrs.clone())])?;
            pcrs.iter()
                .map(|p| {
                    let supplied = policy.values.iter().find(|(q, _)| q == p);
                    supplied
                        .map(|(_, v)| v.as_slice())
                        .or_else(|| current.get(bank, *p))
                        .map(<[u8]>::to_vec)
                        .ok_or(TpmError::Malformed { op: "PCR_Read" })
                })
                .collect::<Result<Vec<_>, _>>()?
        };

        let ctx = self.context();
        let auth_policy = match &key {
            Some(key) => {
                let (_guard, _, name) = load_policy_key(ctx, key)?;
                Digest::try_from(authorize_policy_digest(name.value(), with_pin))
                    .map_err(cmd("policy digest"))?
            }
            // The policy digest, from a trial session (Part 1 section 19.7.7).
            None => {
                let (mut trial, _, ps) = policy_session(ctx, None, SessionType::Trial)?;
                trial
                    .policy_pcr(ps, pcr_digest(&pcr_values)?, list)
                    .map_err(cmd("PolicyPCR (trial)"))?;
                if with_pin {
                    trial
                        .policy_auth_value(ps)
                        .map_err(cmd("PolicyAuthValue (trial)"))?;
                }
                trial
                    .policy_get_digest(ps)
                    .map_err(cmd("PolicyGetDigest"))?
            }
        };
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            // A PIN is guessable: let the dictionary-attack logic count failures.
            .with_no_da(!with_pin)
            .build()
            .map_err(cmd("sealed object attributes"))?;
        let template = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_auth_policy(auth_policy)
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(Digest::default())
            .build()
            .map_err(cmd("sealed object template"))?;
        let data = SensitiveData::try_from(secret.to_vec())
            .map_err(|_| SealError::SecretTooLong { len: secret.len() })?;

        let (mut srk_guard, srk, srk_name) = load_srk(ctx)?;
        let (mut salted, hmac) = salted_session(&mut srk_guard, srk)?;
        let created = salted
            .execute_with_sessions((Some(hmac), None, None), |c| {
                c.create(srk, template, auth, Some(data), None, None)
            })
            .map_err(cmd("Create (sealed object)"))?;
        Ok(SealedBlob {
            public: public_to_tpm2b(&created.out_public)?,
            private: private_to_tpm2b(&created.out_private),
            srk_name,
            bank,
            pcrs,
            pcr_values,
            policy_key: policy.signed_by.clone(),
            pin: with_pin,
        })
    }

    /// Unseals `blob`: checks the SRK's Name, then the PCRs (or finds the signature in
    /// `signatures` for this boot's values), then runs the policy in a salted policy session
    /// and unseals with response encryption. `signatures` is only used by a signed policy.
    pub fn unseal(
        &mut self,
        blob: &SealedBlob,
        pin: Option<&[u8]>,
        signatures: &[SignedPcrPolicy],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match (blob.pin, pin) {
            (true, None) => return Err(SealError::PinRequired),
            (false, Some(_)) => return Err(SealError::PinNotExpected),
            _ => {}
        }
        let key = blob
            .policy_key
            .as_deref()
            .map(RsaKey::from_spki)
            .transpose()?;
        if key.is_some() && signatures.is_empty() {
            return Err(SealError::SignatureRequired);
        }
        let auth = pin.map(pin_auth).transpose()?;
        let public = public_from(&blob.public)?;
        let private = private_from(&blob.private)?;
        let list = selection(blob.bank, &blob.pcrs)?;
        let mismatch = |changed: Vec<u32>| SealError::PcrMismatch {
            bank: blob.bank,
            pcrs: PcrList(blob.pcrs.clone()),
            changed: PcrList(changed),
        };
        let no_signature = || SealError::NoSignatureForThisBoot {
            bank: blob.bank,
            pcrs: PcrList(blob.pcrs.clone()),
        };

        {
            let (_srk_guard, _, srk_name) = load_srk(self.context())?;
            if srk_name != blob.srk_name {
                return Err(SealError::DifferentTpm);
            }
        }
        if key.is_none() {
            let current = self.read_selection(&[(blob.bank, blob.pcrs.clone())])?;
            let changed: Vec<u32> = blob
                .pcrs
                .iter()
                .zip(&blob.pcr_values)
                .filter(|(p, v)| current.get(blob.bank, **p) != Some(v.as_slice()))
                .map(|(p, _)| *p)
                .collect();
            if !changed.is_empty() {
                return Err(mismatch(changed));
            }
        }

        let ctx = self.context();
        let (mut srk_guard, srk, _) = load_srk(ctx)?;
        let object = srk_guard
            .execute_with_session(Some(AuthSession::Password), |c| {
                c.load(srk, private, public)
            })
            .map_err(|e| match kind(&e) {
                Some(Tss2ResponseCodeKind::Integrity) => SealError::DifferentTpm,
                _ => cmd("Load (sealed object)")(e).into(),
            })?;
        let mut object_guard =
            Guard::new(&mut srk_guard, ObjectHandle::from(object), Release::Flush);
        if let Some(auth) = auth {
            object_guard
                .tr_set_auth(ObjectHandle::from(object), auth)
                .map_err(cmd("TR_SetAuth"))?;
        }
        let (mut session_guard, session, ps) =
            policy_session(&mut object_guard, Some(srk), SessionType::Policy)?;
        // An empty pcrDigest: the TPM hashes the current values; a change shows at Unseal.
        session_guard
            .policy_pcr(ps, Digest::default(), list)
            .map_err(cmd("PolicyPCR"))?;
        if let Some(key) = &key {
            let current = session_guard
                .policy_get_digest(ps)
                .map_err(cmd("PolicyGetDigest"))?;
            let mut sorted: Vec<&SignedPcrPolicy> = signatures
                .iter()
                .filter(|s| {
                    let mut p = s.pcrs.clone();
                    p.sort_unstable();
                    p == blob.pcrs && s.pol == current.value()
                })
                .collect();
            if sorted.is_empty() {
                return Err(no_signature());
            }
            sorted.retain(|s| s.pkfp == key.pkfp);
            let signed = sorted.first().ok_or(SealError::WrongSigner)?;
            let (mut key_guard, key_handle, name) = load_policy_key(&mut session_guard, key)?;
            authorize_signed(
                &mut key_guard,
                key_handle,
                &name,
                ps,
                current,
                &[],
                &signed.sig,
            )
            .map_err(|e| match e {
                AuthorizeError::WrongSigner => SealError::WrongSigner,
                AuthorizeError::Tpm(e) => SealError::Tpm(e),
            })?;
        }
        if blob.pin {
            session_guard
                .policy_auth_value(ps)
                .map_err(cmd("PolicyAuthValue"))?;
        }
        let result = session_guard.execute_with_sessions((Some(session), None, None), |c| {
            c.unseal(ObjectHandle::from(object))
        });
        match result {
            Ok(data) => Ok(Zeroizing::new(data.value().to_vec())),
            Err(e) => Err(match kind(&e) {
                Some(Tss2ResponseCodeKind::PolicyFail) if key.is_none() => {
                    mismatch(blob.pcrs.clone())
                }
                Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
                    SealError::WrongPin
                }
                Some(Tss2ResponseCodeKind::Lockout) => SealError::Lockout {
                    retry_after_secs: lockout_interval(&mut session_guard),
                },
                _ => cmd("Unseal")(e).into(),
            }),
        }
    }
}

/// TPM_PT_LOCKOUT_INTERVAL: seconds until one failure is forgiven (Part 2 section 6.13).
pub(crate) fn lockout_interval(ctx: &mut Context) -> Option<u32> {
    let (data, _) = ctx
        .execute_without_session(|c| {
            c.get_capability(
                CapabilityType::TpmProperties,
                u32::from(PropertyTag::LockoutInterval),
                1,
            )
        })
        .ok()?;
    let CapabilityData::TpmProperties(list) = data else {
        return None;
    };
    list.find(PropertyTag::LockoutInterval).map(|p| p.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob() -> SealedBlob {
        SealedBlob {
            public: vec![0, 0],
            private: vec![0, 1, 7],
            srk_name: vec![0, 11, 1, 2],
            bank: HashAlg::Sha256,
            pcrs: vec![7, 11],
            pcr_values: vec![vec![0; 32], vec![1; 32]],
            policy_key: None,
            pin: true,
        }
    }

    #[test]
    fn blob_json_is_strict() {
        let b = blob();
        let json = b.to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["policy"]["kind"], "pcr+pin");
        // An empty TPM2B_PUBLIC does not parse: the blob is refused, typed.
        assert!(matches!(
            SealedBlob::from_json(&json),
            Err(SealError::BadBlob { .. })
        ));
        let mut v2 = v.clone();
        v2["version"] = 2.into();
        assert!(matches!(
            SealedBlob::from_json(&serde_json::to_vec(&v2).unwrap()),
            Err(SealError::UnsupportedVersion { version: 2 })
        ));
        let mut v3 = v.clone();
        v3["extra"] = 1.into();
        assert!(SealedBlob::from_json(&serde_json::to_vec(&v3).unwrap()).is_err());
        assert!(SealedBlob::from_json(b"{}").is_err());
        assert!(SealedBlob::from_json(b"not json").is_err());
    }

    #[test]
    fn messages_name_the_policy() {
        let e = SealError::PcrMismatch {
            bank: HashAlg::Sha256,
            pcrs: PcrList(vec![7, 11]),
            changed: PcrList(vec![11]),
        };
        assert_eq!(
            e.to_string(),
            "the PCR policy (sha256: 7,11) does not match this boot (changed: 11)"
        );
        let e = SealError::Lockout {
            retry_after_secs: Some(1000),
        };
        assert_eq!(
            e.to_string(),
            "TPM is in dictionary-attack lockout; retry after 1000 s"
        );
    }
}
