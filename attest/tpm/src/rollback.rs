//! Anti-rollback: a security version number (SVN) per boot image, enforced by the TPM.
//!
//! A disk key sealed to a *signed* PCR 11 policy opens for every image whose policy the key
//! ever signed, including old, vulnerable ones: a signature does not expire. Here the signed
//! policy also checks an NV counter with `TPM2_PolicyNV` (TPM 2.0 Part 3, 23.9):
//!
//! ```text
//! sealed object:  authPolicy = PolicyAuthorize(key, policyRef = "warrant-svn-v1")
//!                              [then PolicyPCR(other PCRs)] [then PolicyAuthValue]
//! signed (.pcrsig entry of image V):
//!                 PolicyPCR(11 = predicted) then PolicyNV(counter <= V)
//! ```
//!
//! Booting image V advances the counter to V ([`Tpm::svn_advance`]); from then on the TPM
//! itself refuses the policy of every image below V. The pure half (the index's Name, the
//! policy digests, signing) is `measure::uki::svn`, so policies are signed offline.
//!
//! ## Why a counter, not a bit field
//! The counter is a `TPM_NT_COUNTER` index (`TPM2_NV_Increment`, Part 3 31.8: a counter
//! never written starts from the largest value any counter of the TPM held, `NvReadMaxCount`
//! in the reference implementation's `NV_Increment.c`). Whoever holds the owner
//! authorisation (empty on most machines) can undefine an owner index and define it again
//! with the same attributes, hence the same Name, so the same signed policies. A
//! `TPM_NT_BITS` index comes back as 0 (tried on swtpm: set bit 3, undefine, define,
//! `SetBits(0)`: reads 0): a full rollback. A counter comes back above the highest value any
//! counter of this TPM ever held (the TPM keeps that maximum across undefines; on swtpm: 5,
//! undefine, define, increment: 6), so redefining only *raises* it: a denial of service,
//! never a rollback. Making the index undeletable by the owner
//! (`TPMA_NV_POLICY_DELETE`, `TPMA_NV_PLATFORMCREATE`) needs the platform hierarchy, which
//! firmware closes before the OS runs. See docs/sealing.md, "Anti-rollback".
//!
//! ## Index
//! [`DEFAULT_SVN_INDEX`] (owner range), attributes [`SVN_INDEX_ATTRIBUTES`]: incremented with
//! the owner's authorisation (empty by default), read with the index's own empty authValue
//! (what PolicyNV uses at boot), `NO_DA`, 8 bytes, SHA-256 Name, empty authPolicy.

use crate::device::cmd;
use crate::guard::{Guard, Release};
use crate::seal::kind;
use crate::systemd::{SignedPolicyKey, SystemdError};
use crate::{Tpm, TpmError};
use measure::luks2::{PcrBank, SystemdTpm2Token};
pub use measure::uki::svn::{
    is_owner_nv_index, nv_index_name, svn_index_name, svn_nv_digest, svn_policy_digest,
    DEFAULT_SVN_INDEX, SVN_INDEX_ATTRIBUTES, SVN_INDEX_SIZE, SVN_POLICY_REF, TPMA_NV_WRITTEN,
    TPM_EO_UNSIGNED_LE,
};
use serde_json::{Map, Value};
use std::convert::TryFrom;
use thiserror::Error;
use tss_esapi::attributes::NvIndexAttributes;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{CapabilityData, NvPublicBuilder};
use tss_esapi::Context;
use zeroize::Zeroizing;

/// The LUKS2 token type of anti-rollback tokens. systemd's `systemd-tpm2` token cannot say
/// "run PolicyNV", so these tokens have a type of their own that systemd-cryptsetup never
/// tries; otherwise they are `systemd-tpm2` tokens plus [`TOKEN_INDEX_FIELD`].
pub const TOKEN_TYPE: &str = "warrant-tpm2";
/// The token field naming the SVN counter: `0x` and eight hex digits.
pub const TOKEN_INDEX_FIELD: &str = "warrant-svn-index";

/// An anti-rollback LUKS2 token: systemd 252's fields (`tpm2-blob`, `tpm2-pcrs`,
/// `tpm2_pubkey`, ...; the sealed object's policy is `PolicyAuthorize(key, SVN_POLICY_REF)`
/// instead of an empty policyRef) and the counter's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiRollbackToken {
    pub token: SystemdTpm2Token,
    pub svn_index: u32,
}

impl AntiRollbackToken {
    /// Parses a `warrant-tpm2` token object strictly: the `systemd-tpm2` fields as
    /// `measure::luks2` parses them, plus [`TOKEN_INDEX_FIELD`], and a policy key.
    pub fn from_object(object: &Map<String, Value>) -> Result<Self, RollbackError> {
        let bad = |reason: String| RollbackError::BadToken { reason };
        match object.get("type") {
            Some(Value::String(t)) if t == TOKEN_TYPE => {}
            _ => return Err(bad(format!("type is not {TOKEN_TYPE:?}"))),
        }
        let svn_index = match object.get(TOKEN_INDEX_FIELD) {
            Some(Value::String(text)) => parse_index(text),
            _ => None,
        }
        .ok_or_else(|| bad(format!("{TOKEN_INDEX_FIELD} is missing or not 0x and hex")))?;
        let mut inner = object.clone();
        inner.remove(TOKEN_INDEX_FIELD);
        inner.insert("type".into(), Value::from("systemd-tpm2"));
        let token = SystemdTpm2Token::from_object(&inner).map_err(|e| bad(e.to_string()))?;
        if token.pubkey.is_none() || token.pubkey_pcrs.as_ref().is_none_or(Vec::is_empty) {
            return Err(bad("no policy key (tpm2_pubkey, tpm2_pubkey_pcrs)".into()));
        }
        Ok(AntiRollbackToken { token, svn_index })
    }

    /// The token as Warrant writes it: `systemd-tpm2`'s JSON with `type` = [`TOKEN_TYPE`] and
    /// [`TOKEN_INDEX_FIELD`].
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = self.token.to_object();
        m.insert("type".into(), Value::from(TOKEN_TYPE));
        m.insert(
            TOKEN_INDEX_FIELD.into(),
            Value::from(format!("{:#010x}", self.svn_index)),
        );
        m
    }
}

/// `0x` and one to eight hex digits.
pub fn parse_index(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Enrolls an anti-rollback token: as `crate::systemd::seal` with a signed policy, the
/// sealed object's policy being `PolicyAuthorize(key, SVN_POLICY_REF)` [then `PolicyPCR(pcrs)`]
/// [then `PolicyAuthValue`]. The counter at `svn_index` must be initialised
/// ([`Tpm::svn_init`]). Returns the token (no keyslots yet) and the keyslot passphrase.
pub fn seal(
    tpm: &mut Tpm,
    pcrs: &[u32],
    bank: PcrBank,
    pin: Option<&str>,
    signed: &SignedPolicyKey<'_>,
    svn_index: u32,
) -> Result<(AntiRollbackToken, Zeroizing<Vec<u8>>), SystemdError> {
    let (token, passphrase) =
        crate::systemd::seal_with(tpm, pcrs, bank, pin, Some(signed), Some(svn_index))?;
    Ok((AntiRollbackToken { token, svn_index }, passphrase))
}

/// Unseals an anti-rollback token with the SVN-bound entries of `pcrsig` (`warrant uki
/// sign-policy --svn`): `PolicyPCR`, `PolicyNV(counter <= SVN)`, `PolicyAuthorize`, then the
/// token's other PCRs and PIN. A rolled-back image gets [`RollbackError::RolledBack`] (inside
/// [`SystemdError::Rollback`]); nothing is returned unless the TPM released the secret.
pub fn unseal(
    tpm: &mut Tpm,
    token: &AntiRollbackToken,
    pin: Option<&str>,
    pcrsig: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, SystemdError> {
    crate::systemd::unseal_with(tpm, &token.token, pin, pcrsig, Some(token.svn_index))
}

/// The largest step [`Tpm::svn_advance`] takes in one call: each step is one
/// `TPM2_NV_Increment`, one NV write.
pub const MAX_SVN_STEP: u64 = 1024;

/// Why an anti-rollback operation failed. The first variants are the ones a user acts on.
#[derive(Debug, Error)]
pub enum RollbackError {
    /// PolicyNV failed: the TPM's counter is above this image's SVN.
    #[error("rolled back: this image's SVN {svn} is older than the TPM's (SVN counter {index:#010x} = {}); boot an image with SVN {} or later", tpm_text(*.tpm_svn), tpm_text(*.tpm_svn))]
    RolledBack {
        svn: u64,
        tpm_svn: Option<u64>,
        index: u32,
    },
    #[error("the anti-rollback NV index {index:#010x} does not exist on this TPM (deleted?); nothing unseals without it: `warrant tpm svn init`, then sign the images with an SVN at or above the new counter")]
    IndexMissing { index: u32 },
    #[error("NV index {index:#010x} is not Warrant's SVN counter (attributes {attributes:#010x}, expected {expected:#010x}): redefined, or used by something else")]
    NotSvnIndex {
        index: u32,
        attributes: u32,
        expected: u32,
    },
    #[error("the SVN counter {index:#010x} has never been incremented: `warrant tpm svn init`")]
    Uninitialized { index: u32 },
    #[error("the signed policy names another NV index than the TPM's {index:#010x} (its Name differs): re-sign for this index")]
    NameMismatch { index: u32 },
    #[error("{index:#010x} is not an owner NV index (0x01800000..=0x01bfffff)")]
    BadIndex { index: u32 },
    #[error("advancing the SVN counter from {from} to {to} takes more than {MAX_SVN_STEP} increments; advance in steps")]
    StepTooLarge { from: u64, to: u64 },
    #[error("the SVN counter {index:#010x} cannot be written with the owner authorisation (is an owner password set?): {source}")]
    OwnerAuth { index: u32, source: TpmError },
    #[error("malformed {TOKEN_TYPE} token: {reason}")]
    BadToken { reason: String },
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

fn tpm_text(v: Option<u64>) -> String {
    v.map_or_else(|| "unreadable".to_string(), |v| v.to_string())
}

/// The counter as the TPM holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvnState {
    pub index: u32,
    /// The counter: the lowest SVN whose signed policies still hold.
    pub value: u64,
    /// The index's Name (what PolicyNV hashes).
    pub name: Vec<u8>,
}

/// What `TPM2_NV_ReadPublic` says about an index: `None` when absent.
struct IndexPublic {
    attributes: u32,
    /// SHA-256 name algorithm, empty authPolicy, 8 bytes: the rest of Warrant's public area.
    shape_ok: bool,
    name: Vec<u8>,
}

fn nv_handle(index: u32) -> Result<NvIndexTpmHandle, RollbackError> {
    if !is_owner_nv_index(index) {
        return Err(RollbackError::BadIndex { index });
    }
    NvIndexTpmHandle::new(index).map_err(|_| RollbackError::BadIndex { index })
}

/// Opens an ESYS reference to the NV index (`TR_FromTPMPublic`, which reads its public area);
/// closed when the guard drops. `Ok(None)` when the TPM has no such index.
fn open_index(
    ctx: &mut Context,
    index: u32,
) -> Result<Option<(Guard<'_>, NvIndexHandle)>, RollbackError> {
    let tpm_handle = nv_handle(index)?;
    // Ask first (GetCapability, Part 3 30.2): TR_FromTPMPublic on an absent index works too,
    // but libtss2 logs the TPM's error on standard error.
    let (data, _) = ctx
        .execute_without_session(|c| c.get_capability(CapabilityType::Handles, index, 1))
        .map_err(cmd("GetCapability(HANDLES)"))?;
    let CapabilityData::Handles(list) = data else {
        return Err(TpmError::Malformed {
            op: "GetCapability(HANDLES)",
        }
        .into());
    };
    if !list.into_inner().into_iter().any(|h| u32::from(h) == index) {
        return Ok(None);
    }
    match ctx.execute_without_session(|c| c.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle))) {
        Ok(h) => {
            let nv = NvIndexHandle::from(h);
            Ok(Some((Guard::new(ctx, h, Release::Close), nv)))
        }
        Err(e) if kind(&e) == Some(Tss2ResponseCodeKind::Handle) => Ok(None),
        Err(e) => Err(cmd("TR_FromTPMPublic (SVN index)")(e).into()),
    }
}

fn read_public(ctx: &mut Context, nv: NvIndexHandle) -> Result<IndexPublic, RollbackError> {
    let (public, name) = ctx
        .execute_without_session(|c| c.nv_read_public(nv))
        .map_err(cmd("NV_ReadPublic (SVN index)"))?;
    let attributes = tss_esapi::tss2_esys::TPMA_NV::try_from(public.attributes())
        .map_err(cmd("SVN index attributes"))?;
    Ok(IndexPublic {
        attributes,
        shape_ok: public.name_algorithm() == HashingAlgorithm::Sha256
            && public.authorization_policy().value().is_empty()
            && public.data_size() == usize::from(SVN_INDEX_SIZE),
        name: name.value().to_vec(),
    })
}

/// Checks that the index at hand is Warrant's counter (attributes and Name) and written.
fn check_ours(index: u32, public: &IndexPublic) -> Result<(), RollbackError> {
    if !public.shape_ok || public.attributes & !TPMA_NV_WRITTEN != SVN_INDEX_ATTRIBUTES {
        return Err(RollbackError::NotSvnIndex {
            index,
            attributes: public.attributes,
            expected: SVN_INDEX_ATTRIBUTES,
        });
    }
    if public.attributes & TPMA_NV_WRITTEN == 0 {
        return Err(RollbackError::Uninitialized { index });
    }
    Ok(())
}

/// Reads the 8-byte counter with the index's own (empty) authValue.
fn read_counter(ctx: &mut Context, nv: NvIndexHandle) -> Result<u64, RollbackError> {
    let data = ctx
        .execute_with_session(Some(AuthSession::Password), |c| {
            c.nv_read(NvAuth::NvIndex(nv), nv, SVN_INDEX_SIZE, 0)
        })
        .map_err(cmd("NV_Read (SVN counter)"))?;
    let bytes: [u8; 8] = data
        .value()
        .try_into()
        .map_err(|_| TpmError::Malformed { op: "NV_Read" })?;
    Ok(u64::from_be_bytes(bytes))
}

fn increment(ctx: &mut Context, index: u32, nv: NvIndexHandle) -> Result<(), RollbackError> {
    ctx.execute_with_session(Some(AuthSession::Password), |c| {
        c.nv_increment(NvAuth::Owner, nv)
    })
    .map_err(|e| match kind(&e) {
        Some(
            Tss2ResponseCodeKind::BadAuth
            | Tss2ResponseCodeKind::AuthFail
            | Tss2ResponseCodeKind::Lockout,
        ) => RollbackError::OwnerAuth {
            index,
            source: cmd("NV_Increment")(e),
        },
        _ => cmd("NV_Increment (SVN counter)")(e).into(),
    })
}

/// Runs `TPM2_PolicyNV(counter <= svn)` on `session`, after checking that the index is
/// Warrant's counter and that its Name is `expected_name` (the one the policy was signed
/// for). Errors name the cause: missing, foreign or never-initialised index, another index
/// signed for, or a rolled-back image (the TPM's `TPM_RC_POLICY`).
pub(crate) fn policy_svn(
    ctx: &mut Context,
    session: PolicySession,
    index: u32,
    svn: u64,
    expected_name: &[u8],
) -> Result<(), RollbackError> {
    let (mut guard, nv) = open_index(ctx, index)?.ok_or(RollbackError::IndexMissing { index })?;
    let public = read_public(&mut guard, nv)?;
    check_ours(index, &public)?;
    if public.name != expected_name {
        return Err(RollbackError::NameMismatch { index });
    }
    let result = guard.execute_with_session(Some(AuthSession::Password), |c| {
        c.policy_nv(
            NvAuth::NvIndex(nv),
            nv,
            session,
            &svn.to_be_bytes(),
            0,
            TPM_EO_UNSIGNED_LE,
        )
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(match kind(&e) {
            Some(Tss2ResponseCodeKind::Policy) => RollbackError::RolledBack {
                svn,
                tpm_svn: read_counter(&mut guard, nv).ok(),
                index,
            },
            Some(Tss2ResponseCodeKind::NvUninitialized) => RollbackError::Uninitialized { index },
            _ => cmd("PolicyNV (SVN counter)")(e).into(),
        }),
    }
}

impl Tpm {
    /// Defines Warrant's SVN counter at `index` (owner hierarchy, empty authValue) if it is
    /// absent, and increments it once if it was never written, so that it can be read and
    /// PolicyNV can check it. Idempotent: an initialised counter is left as it is. A fresh
    /// counter starts at 1 on a TPM that never had counters, or above the highest value any
    /// counter of this TPM held (after a delete and redefine, for instance).
    pub fn svn_init(&mut self, index: u32) -> Result<SvnState, RollbackError> {
        let ctx = self.context();
        if open_index(ctx, index)?.is_none() {
            let attributes = NvIndexAttributes::try_from(SVN_INDEX_ATTRIBUTES)
                .map_err(cmd("SVN index attributes"))?;
            let public = NvPublicBuilder::new()
                .with_nv_index(nv_handle(index)?)
                .with_index_name_algorithm(HashingAlgorithm::Sha256)
                .with_index_attributes(attributes)
                .with_data_area_size(usize::from(SVN_INDEX_SIZE))
                .build()
                .map_err(cmd("SVN index public area"))?;
            let nv = ctx
                .execute_with_session(Some(AuthSession::Password), |c| {
                    c.nv_define_space(Provision::Owner, None, public)
                })
                .map_err(|e| match kind(&e) {
                    Some(Tss2ResponseCodeKind::BadAuth | Tss2ResponseCodeKind::AuthFail) => {
                        RollbackError::OwnerAuth {
                            index,
                            source: cmd("NV_DefineSpace")(e),
                        }
                    }
                    _ => cmd("NV_DefineSpace (SVN counter)")(e).into(),
                })?;
            drop(Guard::new(ctx, ObjectHandle::from(nv), Release::Close));
        }
        let (mut guard, nv) =
            open_index(ctx, index)?.ok_or(RollbackError::IndexMissing { index })?;
        let public = read_public(&mut guard, nv)?;
        match check_ours(index, &public) {
            Ok(()) => {}
            Err(RollbackError::Uninitialized { .. }) => increment(&mut guard, index, nv)?,
            Err(e) => return Err(e),
        }
        drop(guard);
        self.svn_read(index)
    }

    /// The counter at `index`, checked to be Warrant's and initialised.
    pub fn svn_read(&mut self, index: u32) -> Result<SvnState, RollbackError> {
        let (mut guard, nv) =
            open_index(self.context(), index)?.ok_or(RollbackError::IndexMissing { index })?;
        let public = read_public(&mut guard, nv)?;
        check_ours(index, &public)?;
        let value = read_counter(&mut guard, nv)?;
        Ok(SvnState {
            index,
            value,
            name: public.name,
        })
    }

    /// Advances the counter to `svn` (one `TPM2_NV_Increment` per step, at most
    /// [`MAX_SVN_STEP`]); a counter already at or above `svn` is left alone: it never goes
    /// down. Returns the counter before and after.
    pub fn svn_advance(
        &mut self,
        index: u32,
        svn: u64,
    ) -> Result<(SvnState, SvnState), RollbackError> {
        let before = self.svn_read(index)?;
        if svn <= before.value {
            return Ok((before.clone(), before));
        }
        let steps = svn - before.value;
        if steps > MAX_SVN_STEP {
            return Err(RollbackError::StepTooLarge {
                from: before.value,
                to: svn,
            });
        }
        {
            let (mut guard, nv) =
                open_index(self.context(), index)?.ok_or(RollbackError::IndexMissing { index })?;
            for _ in 0..steps {
                increment(&mut guard, index, nv)?;
            }
        }
        let after = self.svn_read(index)?;
        Ok((before, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_message_names_both_svns() {
        let e = RollbackError::RolledBack {
            svn: 2,
            tpm_svn: Some(3),
            index: DEFAULT_SVN_INDEX,
        };
        assert_eq!(
            e.to_string(),
            "rolled back: this image's SVN 2 is older than the TPM's (SVN counter 0x01805752 = 3); boot an image with SVN 3 or later"
        );
    }

    fn token_json() -> serde_json::Value {
        serde_json::json!({
            "type": "warrant-tpm2",
            "keyslots": ["1"],
            "tpm2-blob": "AAAA",
            "tpm2-pcrs": [7],
            "tpm2-pcr-bank": "sha256",
            "tpm2-primary-alg": "ecc",
            "tpm2-policy-hash": "00ff",
            "tpm2-pin": false,
            "tpm2_pubkey": "cGVt",
            "tpm2_pubkey_pcrs": [11],
            "warrant-svn-index": "0x01805752",
        })
    }

    fn parse(v: &serde_json::Value) -> Result<AntiRollbackToken, RollbackError> {
        AntiRollbackToken::from_object(v.as_object().unwrap())
    }

    #[test]
    fn tokens_parse_strictly_and_round_trip() {
        let v = token_json();
        let t = parse(&v).unwrap();
        assert_eq!(t.svn_index, DEFAULT_SVN_INDEX);
        assert_eq!(t.token.pubkey_pcrs, Some(vec![11]));
        assert!(t.token.extra.is_empty());
        assert_eq!(serde_json::Value::Object(t.to_object()), v);
        let bad = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
            let mut v = token_json();
            edit(v.as_object_mut().unwrap());
            matches!(parse(&v), Err(RollbackError::BadToken { .. }))
        };
        assert!(bad(&|m| {
            m.remove("warrant-svn-index");
        }));
        assert!(bad(&|m| {
            m.insert("warrant-svn-index".into(), "01805752".into());
        }));
        assert!(bad(&|m| {
            m.insert("warrant-svn-index".into(), 25188178.into());
        }));
        assert!(bad(&|m| {
            m.insert("warrant-svn-index".into(), "0x1018057520".into());
        }));
        assert!(bad(&|m| {
            m.insert("type".into(), "systemd-tpm2".into());
        }));
        assert!(bad(&|m| {
            m.remove("tpm2_pubkey");
            m.remove("tpm2_pubkey_pcrs");
        }));
        assert!(bad(&|m| {
            m.insert("tpm2_pubkey_pcrs".into(), serde_json::json!([]));
        }));
        assert!(bad(&|m| {
            m.insert("tpm2-blob".into(), "not base64!".into());
        }));
        assert_eq!(parse_index("0x1"), Some(1));
        assert_eq!(parse_index("0x"), None);
        assert_eq!(parse_index("0x-1"), None);
        assert_eq!(parse_index("0X1"), None);
    }

    #[test]
    fn foreign_attributes_are_refused() {
        let public = IndexPublic {
            attributes: SVN_INDEX_ATTRIBUTES | TPMA_NV_WRITTEN,
            shape_ok: true,
            name: Vec::new(),
        };
        assert!(check_ours(DEFAULT_SVN_INDEX, &public).is_ok());
        let bits = IndexPublic {
            attributes: (SVN_INDEX_ATTRIBUTES & !0xf0) | 0x20 | TPMA_NV_WRITTEN,
            shape_ok: true,
            name: Vec::new(),
        };
        assert!(matches!(
            check_ours(DEFAULT_SVN_INDEX, &bits),
            Err(RollbackError::NotSvnIndex { .. })
        ));
        let fresh = IndexPublic {
            attributes: SVN_INDEX_ATTRIBUTES,
            shape_ok: true,
            name: Vec::new(),
        };
        assert!(matches!(
            check_ours(DEFAULT_SVN_INDEX, &fresh),
            Err(RollbackError::Uninitialized { .. })
        ));
        assert!(matches!(
            nv_handle(0x8100_0001),
            Err(RollbackError::BadIndex { .. })
        ));
    }
}
