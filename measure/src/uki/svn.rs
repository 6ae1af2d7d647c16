//! Anti-rollback for signed PCR 11 policies: a security version number (SVN) per image, checked
//! by the TPM against a monotonic NV counter with `TPM2_PolicyNV` (TPM 2.0 Part 3, 23.9).
//!
//! A `.pcrsig` entry made with `--svn V` signs, instead of `PolicyPCR(11)` alone,
//!
//! ```text
//! pol = PolicyPCR(11 = predicted) then PolicyNV(index, operandB = V as 8 big-endian bytes,
//!                                              offset 0, TPM_EO_UNSIGNED_LE)
//! ```
//!
//! which holds while the counter is at most `V`: once an image with a higher SVN has advanced
//! the counter, the TPM refuses every older image's policy. The counter is a `TPM_NT_COUNTER`
//! index (Part 3, 31.8 `TPM2_NV_Increment`): it only goes up, and a counter index that is
//! undefined and defined again starts above the highest value any counter of this TPM ever
//! held (`NvReadMaxCount` in the reference implementation), so the owner cannot reset it (see
//! docs/sealing.md, "Anti-rollback").
//!
//! The signature is over `aHash = SHA-256(pol || SVN_POLICY_REF)`: objects sealed for
//! anti-rollback use `PolicyAuthorize(key, policyRef = SVN_POLICY_REF)`, so a plain
//! (PolicyPCR-only, empty policyRef) signature by the same key, such as the one
//! `systemd-measure sign` puts in every UKI, can never authorise them, and an SVN signature
//! never authorises a plain `systemd-tpm2` object.
//!
//! Everything here is pure: the index's Name is computed from its public area, which is fixed
//! by [`SVN_INDEX_ATTRIBUTES`], so the policy can be signed offline, far from the TPM.

use super::policy::{policy_pcr_digest, sign_predictions, PolicyError, PolicyPublicKey};
use super::policy::{BlindingRng, PolicySigningKey, SignedPolicy};
use super::{Uki, PCR_KERNEL_BOOT};
use crate::HashAlg;
use serde::Serialize;
use std::collections::BTreeMap;

/// The default NV index of the SVN counter: in the owner range `0x01800000..=0x01BFFFFF` of the
/// TCG "Registry of Reserved TPM 2.0 Handles and Localities" (section 2.2.2).
pub const DEFAULT_SVN_INDEX: u32 = 0x0180_5752;
/// The owner range of NV indices.
pub const OWNER_NV_FIRST: u32 = 0x0180_0000;
pub const OWNER_NV_LAST: u32 = 0x01BF_FFFF;
/// `TPM_CC_PolicyNV` (Part 2, 6.5.2).
pub const TPM_CC_POLICY_NV: u32 = 0x0000_0149;
/// `TPM_EO_UNSIGNED_LE` (Part 2, 6.8): A <= B, unsigned.
pub const TPM_EO_UNSIGNED_LE: u16 = 0x0009;
/// `TPM_ALG_SHA256`, the index's nameAlg.
const TPM_ALG_SHA256: u16 = 0x000B;
/// The counter's size in bytes (Part 1: counters are 64 bits).
pub const SVN_INDEX_SIZE: u16 = 8;
/// `TPMA_NV` bits (Part 2, 13.4).
pub const TPMA_NV_OWNERWRITE: u32 = 1 << 1;
pub const TPMA_NV_OWNERREAD: u32 = 1 << 17;
pub const TPMA_NV_AUTHREAD: u32 = 1 << 18;
pub const TPMA_NV_NO_DA: u32 = 1 << 25;
pub const TPMA_NV_WRITTEN: u32 = 1 << 29;
/// `TPM_NT_COUNTER` in the `TPM_NT` field (bits 7:4).
pub const TPMA_NV_NT_COUNTER: u32 = 0x1 << 4;
/// The SVN counter's attributes: a counter (`TPM_NT_COUNTER`), incremented with owner
/// authorisation (`OWNERWRITE`), read by anyone with its own empty authValue (`AUTHREAD`, what
/// PolicyNV uses at boot) or the owner's (`OWNERREAD`), outside dictionary-attack counting
/// (`NO_DA`: its authValue is empty). Empty authPolicy. `WRITTEN` is added by the TPM on the
/// first increment and is part of the Name PolicyNV hashes.
pub const SVN_INDEX_ATTRIBUTES: u32 =
    TPMA_NV_OWNERWRITE | TPMA_NV_NT_COUNTER | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;
/// The policyRef of anti-rollback `PolicyAuthorize` (Part 3, 23.16): binds SVN signatures
/// and SVN-sealed objects to each other, apart from plain `.pcrsig` signatures.
pub const SVN_POLICY_REF: &[u8] = b"warrant-svn-v1";

/// Whether `handle` is an NV index of the owner range.
pub fn is_owner_nv_index(handle: u32) -> bool {
    (OWNER_NV_FIRST..=OWNER_NV_LAST).contains(&handle)
}

/// The Name of an NV index (Part 1, 16 "Names"): `nameAlg || H_nameAlg(TPMS_NV_PUBLIC)` with
/// `TPMS_NV_PUBLIC = nvIndex (u32) || nameAlg (u16) || attributes (u32) || authPolicy
/// (TPM2B) || dataSize (u16)`, all big-endian (Part 2, 13.5). SHA-256 name algorithm. `None`
/// for an authPolicy longer than a digest (64 bytes), which no TPM accepts.
pub fn nv_index_name(
    handle: u32,
    attributes: u32,
    auth_policy: &[u8],
    data_size: u16,
) -> Option<Vec<u8>> {
    if auth_policy.len() > 64 {
        return None;
    }
    let policy_len = u16::try_from(auth_policy.len()).ok()?;
    let digest = HashAlg::Sha256.hash_parts(&[
        &handle.to_be_bytes(),
        &TPM_ALG_SHA256.to_be_bytes(),
        &attributes.to_be_bytes(),
        &policy_len.to_be_bytes(),
        auth_policy,
        &data_size.to_be_bytes(),
    ]);
    let mut name = TPM_ALG_SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&digest);
    Some(name)
}

/// The Name of Warrant's SVN counter at `handle` once initialised (`WRITTEN` set), as
/// `TPM2_NV_ReadPublic` returns it and PolicyNV hashes it.
pub fn svn_index_name(handle: u32) -> Vec<u8> {
    // The authPolicy is empty: the `None` of an oversized policy cannot happen.
    nv_index_name(
        handle,
        SVN_INDEX_ATTRIBUTES | TPMA_NV_WRITTEN,
        &[],
        SVN_INDEX_SIZE,
    )
    .unwrap_or_default()
}

/// The SHA-256 policy digest after `TPM2_PolicyNV` (Part 3, 23.9):
/// `H(previous || TPM_CC_PolicyNV || H(operandB || offset || operation) || nvIndexName)`.
pub fn policy_nv_digest(
    previous: &[u8],
    operand_b: &[u8],
    offset: u16,
    operation: u16,
    nv_name: &[u8],
) -> Vec<u8> {
    let sha = HashAlg::Sha256;
    let args = sha.hash_parts(&[operand_b, &offset.to_be_bytes(), &operation.to_be_bytes()]);
    sha.hash_parts(&[previous, &TPM_CC_POLICY_NV.to_be_bytes(), &args, nv_name])
}

/// The PolicyNV step of an SVN policy: `counter <= svn` (8 big-endian bytes at offset 0,
/// unsigned), appended to `previous` (a PolicyPCR digest).
pub fn svn_nv_digest(previous: &[u8], svn: u64, nv_name: &[u8]) -> Vec<u8> {
    policy_nv_digest(previous, &svn.to_be_bytes(), 0, TPM_EO_UNSIGNED_LE, nv_name)
}

/// The digest an SVN `.pcrsig` entry signs for PCR 11 of the sha256 bank = `pcr11`:
/// `PolicyPCR(11)` then `PolicyNV(counter <= svn)`.
pub fn svn_policy_digest(pcr11: &[u8], svn: u64, nv_name: &[u8]) -> Result<Vec<u8>, PolicyError> {
    let pcr = policy_pcr_digest(HashAlg::Sha256, PCR_KERNEL_BOOT, pcr11)?;
    Ok(svn_nv_digest(&pcr, svn, nv_name))
}

/// What an SVN signature binds: the image's SVN and the counter (its handle, informative, and
/// its Name, which the policy hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvnBinding {
    pub svn: u64,
    pub index: u32,
    pub index_name: Vec<u8>,
}

/// One SVN-bound entry of a `.pcrsig` bank array: systemd's four fields, whose `pol` is the
/// PolicyPCR + PolicyNV digest and whose `sig` is over `pol || SVN_POLICY_REF`, and three more
/// that systemd ignores and Warrant's unlock reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SvnSignedPolicy {
    #[serde(flatten)]
    pub policy: SignedPolicy,
    #[serde(rename = "warrant-svn")]
    pub svn: u64,
    /// `0x` and eight hex digits.
    #[serde(rename = "warrant-svn-index")]
    pub index: String,
    #[serde(rename = "warrant-svn-index-name", serialize_with = "crate::serde_hex")]
    pub index_name: Vec<u8>,
}

/// A `.pcrsig` of SVN-bound entries (sha256 bank only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SvnPcrSignature(pub BTreeMap<String, Vec<SvnSignedPolicy>>);

/// One SVN-bound entry for PCR 11 (sha256 bank) = `pcr11`: `pol` =
/// [`svn_policy_digest`], `sig` = RSASSA-PKCS1-v1_5 with SHA-256 over `pol || SVN_POLICY_REF`
/// (the `aHash` `TPM2_PolicyAuthorize` checks). `pkfp` is the key's fingerprint.
pub fn sign_svn_policy(
    key: &PolicySigningKey,
    pkfp: &[u8],
    pcr11: &[u8],
    binding: &SvnBinding,
    rng: &mut BlindingRng,
) -> Result<SvnSignedPolicy, PolicyError> {
    let pol = svn_policy_digest(pcr11, binding.svn, &binding.index_name)?;
    let mut message = pol.clone();
    message.extend_from_slice(SVN_POLICY_REF);
    let sig = key.sign(rng, HashAlg::Sha256, &message)?;
    Ok(SvnSignedPolicy {
        policy: SignedPolicy {
            pcrs: vec![PCR_KERNEL_BOOT],
            pkfp: pkfp.to_vec(),
            pol,
            sig,
        },
        svn: binding.svn,
        index: format!("{:#010x}", binding.index),
        index_name: binding.index_name.clone(),
    })
}

/// As [`super::policy::sign_policies`] for the sha256 bank, with each phase's policy bound to
/// `binding` (PolicyPCR then PolicyNV) and signed over `pol || SVN_POLICY_REF`.
pub fn sign_svn_policies(
    uki: &Uki<'_>,
    key: &PolicySigningKey,
    public: Option<&PolicyPublicKey>,
    phases: &[String],
    binding: &SvnBinding,
    blinding_seed: [u8; 32],
) -> Result<SvnPcrSignature, PolicyError> {
    let mut rng = BlindingRng::from_seed(blinding_seed);
    let sha256 = &[HashAlg::Sha256];
    let signed = sign_predictions(uki, key, public, sha256, phases, |_, pkfp, pcr11| {
        sign_svn_policy(key, pkfp, pcr11, binding, &mut rng)
    })?;
    Ok(SvnPcrSignature(signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_the_documented_ones() {
        assert_eq!(SVN_INDEX_ATTRIBUTES, 0x0206_0012);
        assert_eq!(SVN_INDEX_ATTRIBUTES | TPMA_NV_WRITTEN, 0x2206_0012);
        assert!(is_owner_nv_index(DEFAULT_SVN_INDEX));
        assert!(!is_owner_nv_index(0x01C0_0002));
        assert!(!is_owner_nv_index(0x8100_0001));
    }

    #[test]
    fn nv_name_is_name_alg_then_hash_of_public_area() {
        // tpm2_nvreadpublic on swtpm for `tpm2_nvdefine 0x1500018 -C p -s 8 -a
        // "nt=bits|ppwrite|ownerwrite|authread|ownerread|no_da|platformcreate"` (0x42060023):
        // name 000b25b6d06b884907012df507391b8c7b27ac53c157ea15e1cf60904a494bbeb201.
        let name = nv_index_name(0x0150_0018, 0x4206_0023, &[], 8).unwrap();
        assert!(nv_index_name(0x0150_0018, 0x4206_0023, &[0; 65], 8).is_none());
        assert_eq!(
            hex::encode(name),
            "000b25b6d06b884907012df507391b8c7b27ac53c157ea15e1cf60904a494bbeb201"
        );
    }

    #[test]
    fn policy_nv_digest_shape() {
        let name = svn_index_name(DEFAULT_SVN_INDEX);
        assert_eq!(name.len(), 34);
        let a = svn_nv_digest(&[0; 32], 2, &name);
        let b = svn_nv_digest(&[0; 32], 3, &name);
        assert_ne!(a, b);
        let sha = HashAlg::Sha256;
        let args = sha.hash_parts(&[&2u64.to_be_bytes(), &[0, 0], &[0, 9]]);
        assert_eq!(
            a,
            sha.hash_parts(&[&[0; 32], &[0, 0, 1, 0x49], &args, &name])
        );
    }
}
