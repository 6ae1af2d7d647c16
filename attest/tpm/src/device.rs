//! [`Tpm`]: one open connection to a TPM, and every operation Warrant performs on it.
//!
//! Command references are to TPM 2.0 Part 3 ("Commands"); key templates are from the TCG EK
//! Credential Profile for TPM Family 2.0, version 2.3, appendix B.3.3 (RSA 2048, "template L-1")
//! and B.3.4 (ECC NIST P-256, "template L-2").

use crate::cel::{self, CelRecord};
use crate::guard::{Guard, Release};
use crate::tcti::{Tcti, TctiError};
use measure::alg::HashAlg;
use measure::pcr::{PcrBanks, MAX_PCR};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;
use tss_esapi::abstraction::{ak, ek, AsymmetricAlgorithmSelection};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{
    AuthHandle, KeyHandle, NvIndexTpmHandle, ObjectHandle, PcrHandle, PersistentTpmHandle,
    SessionHandle, TpmHandle,
};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    AttestInfo, CapabilityData, Data, Digest, DigestValues, EncryptedSecret, IdObject,
    PcrSelectionListBuilder, PcrSlot, Private, Public, PublicBuffer, SignatureScheme,
    SymmetricDefinition,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::Context;
use zeroize::Zeroizing;

/// How many times [`Tpm::quote`] quotes again when the PCRs changed between the quote and the
/// read of their values.
pub const QUOTE_ATTEMPTS: usize = 5;

/// The default persistent handle of Warrant's attestation key (TCG "Registry of Reserved TPM
/// 2.0 Handles and Localities": 0x81010000.. is the endorsement-hierarchy range).
pub const DEFAULT_AK_HANDLE: u32 = 0x8101_0002;

/// NV indices where TPMs keep EK certificates (TCG EK Credential Profile 2.3, section 2.2.1.4).
pub const EK_CERT_INDICES: [(u32, &str); 7] = [
    (0x01c0_0002, "RSA 2048 EK certificate"),
    (0x01c0_000a, "ECC NIST P-256 EK certificate"),
    (0x01c0_0012, "RSA 2048 EK certificate (high range)"),
    (0x01c0_0014, "ECC NIST P-256 EK certificate (high range)"),
    (0x01c0_0016, "ECC NIST P-384 EK certificate (high range)"),
    (0x01c0_001c, "RSA 3072 EK certificate (high range)"),
    (0x01c0_001e, "RSA 4096 EK certificate (high range)"),
];

/// NV indices reserved for the EK certificate chain (EK Credential Profile 2.3, 2.2.1.5).
pub const EK_CHAIN_FIRST: u32 = 0x01c0_0100;
pub const EK_CHAIN_LAST: u32 = 0x01c0_01ff;

/// An error of the TSS library or the TPM, kept opaque so that Warrant's API does not speak
/// `tss_esapi` types.
pub struct TssError(tss_esapi::Error);

impl fmt::Display for TssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for TssError {}

/// Why a TPM operation failed.
#[derive(Debug, Error)]
pub enum TpmError {
    #[error(transparent)]
    Tcti(#[from] TctiError),
    #[error("no TPM at {tcti}: {source}")]
    Open { tcti: String, source: TssError },
    #[error("no TPM at {tcti}: {reason}")]
    NoDevice { tcti: String, reason: String },
    #[error("TPM operation {op} failed: {source}")]
    Command { op: &'static str, source: TssError },
    #[error("the TPM has a PCR bank Warrant does not know (TPM_ALG_ID {alg_id:#06x})")]
    UnknownBank { alg_id: u16 },
    #[error("PCR bank {bank} is not allocated on this TPM")]
    BankNotAllocated { bank: HashAlg },
    #[error("PCR {pcr} is out of range 0..={MAX_PCR}")]
    PcrOutOfRange { pcr: u32 },
    #[error("the TPM's answer to {op} is malformed")]
    Malformed { op: &'static str },
    #[error("the PCRs kept changing during {attempts} quote attempts")]
    PcrsKeptChanging { attempts: usize },
    #[error("nonce is {len} bytes; a quote takes at most 64")]
    NonceTooLong { len: usize },
    #[error("{what} is not a valid marshalled structure")]
    BadBlob { what: &'static str },
    #[error("{handle:#010x} is not a persistent handle (0x81000000..=0x81ffffff)")]
    BadHandle { handle: u32 },
    #[error("persistent handle {handle:#010x} is already in use")]
    HandleInUse { handle: u32 },
    #[error("no key at persistent handle {handle:#010x}")]
    NoKeyAt { handle: u32 },
    #[error("measurement log {path}: {reason}")]
    LogIo { path: PathBuf, reason: String },
    #[error("measurement log {path}: {source}")]
    Log {
        path: PathBuf,
        source: cel::CelError,
    },
}

pub(crate) fn cmd(op: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |e| TpmError::Command {
        op,
        source: TssError(e),
    }
}

/// EK key types Warrant creates (TCG default templates, low range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkAlg {
    /// RSA 2048, template L-1. Its certificate is at NV 0x01c00002.
    Rsa2048,
    /// ECC NIST P-256, template L-2. Its certificate is at NV 0x01c0000a.
    EccP256,
}

impl EkAlg {
    fn selection(self) -> AsymmetricAlgorithmSelection {
        match self {
            EkAlg::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            EkAlg::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EkAlg::Rsa2048 => "rsa2048",
            EkAlg::EccP256 => "eccp256",
        }
    }
}

/// Attestation key types (restricted signing keys, SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkAlg {
    /// ECDSA on NIST P-256 with SHA-256.
    EccP256,
    /// RSASSA-PKCS1-v1_5, 2048 bits, with SHA-256.
    Rsa2048,
}

/// An attestation key as blobs, to load under the EK when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkBlobs {
    /// Marshalled `TPM2B_PUBLIC`.
    pub public: Vec<u8>,
    /// Marshalled `TPM2B_PRIVATE` (wrapped by the EK: useless off this TPM).
    pub private: Vec<u8>,
}

/// Which attestation key to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkRef {
    /// A key persisted at this handle.
    Persistent(u32),
    /// A key given as blobs, loaded under the EK of this type.
    Blobs { blobs: AkBlobs, parent: EkAlg },
}

/// The public part of an attestation key, in the forms verifiers and tools want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkPublic {
    /// Marshalled `TPM2B_PUBLIC`.
    pub tpm2b_public: Vec<u8>,
    /// DER `SubjectPublicKeyInfo`.
    pub spki_der: Vec<u8>,
    /// The key's TPM name (`nameAlg || H(TPMT_PUBLIC)`), as `TPM2_MakeCredential` binds it.
    pub name: Vec<u8>,
}

/// A certificate (or chain fragment) read from an NV index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvCertificate {
    pub index: u32,
    /// What the index holds, by the EK Credential Profile, e.g. "RSA 2048 EK certificate".
    pub what: &'static str,
    /// The index's bytes, with trailing zero padding removed.
    pub der: Vec<u8>,
}

/// A quote and the PCR values it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Marshalled `TPMS_ATTEST` (the signed message).
    pub attest: Vec<u8>,
    /// Marshalled `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
    /// The quoted PCRs' values, read after the quote; their digest equals the quoted one.
    pub pcrs: PcrBanks,
    /// How many quotes were taken (more than 1 when PCRs changed in between).
    pub attempts: usize,
}

/// The secret recovered by [`Tpm::activate_credential`]: zeroed on drop, no `Debug`, no
/// `Serialize`; compare it in constant time.
pub struct CredentialSecret(Zeroizing<Vec<u8>>);

impl CredentialSecret {
    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// One open TPM connection. Not `Sync`: one user at a time, passed by `&mut`.
pub struct Tpm {
    ctx: Context,
    tcti: Tcti,
}

impl fmt::Debug for Tpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tpm").field("tcti", &self.tcti).finish()
    }
}

pub(crate) fn to_hashing(alg: HashAlg) -> HashingAlgorithm {
    match alg {
        HashAlg::Sha1 => HashingAlgorithm::Sha1,
        HashAlg::Sha256 => HashingAlgorithm::Sha256,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
        HashAlg::Sm3_256 => HashingAlgorithm::Sm3_256,
    }
}

fn from_hashing(alg: HashingAlgorithm) -> Result<HashAlg, TpmError> {
    let id = u16::from(tss_esapi::constants::AlgorithmIdentifier::from(alg));
    HashAlg::from_tpm_alg_id(id).ok_or(TpmError::UnknownBank { alg_id: id })
}

pub(crate) fn slot(pcr: u32) -> Result<PcrSlot, TpmError> {
    if pcr > MAX_PCR {
        return Err(TpmError::PcrOutOfRange { pcr });
    }
    PcrSlot::try_from(1u32 << pcr).map_err(|_| TpmError::PcrOutOfRange { pcr })
}

fn slot_index(s: PcrSlot) -> u32 {
    u32::from(s).trailing_zeros()
}

fn persistent(handle: u32) -> Result<PersistentTpmHandle, TpmError> {
    if !(0x8100_0000..=0x81ff_ffff).contains(&handle) {
        return Err(TpmError::BadHandle { handle });
    }
    PersistentTpmHandle::new(handle).map_err(|_| TpmError::BadHandle { handle })
}

/// Starts an HMAC session salted with `salt_key` (TPM2_StartAuthSession, Part 3 section 11.1,
/// `tpmKey` = the salt key), using AES-128-CFB parameter encryption both ways: the first
/// `TPM2B` parameter of the command and of the response travel encrypted under a key that
/// only this process and the TPM know. The session is flushed when the guard drops.
pub(crate) fn salted_session(
    ctx: &mut Context,
    salt_key: KeyHandle,
) -> Result<(Guard<'_>, AuthSession), TpmError> {
    let session = ctx
        .start_auth_session(
            Some(salt_key),
            None,
            None,
            SessionType::Hmac,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(cmd("StartAuthSession (salted HMAC)"))?
        .ok_or(TpmError::Malformed {
            op: "StartAuthSession",
        })?;
    let guard = Guard::new(
        ctx,
        ObjectHandle::from(SessionHandle::from(session)),
        Release::Flush,
    );
    let mut guard = guard;
    let (attrs, mask) = SessionAttributesBuilder::new()
        .with_decrypt(true)
        .with_encrypt(true)
        .with_continue_session(true)
        .build();
    guard
        .tr_sess_set_attributes(session, attrs, mask)
        .map_err(cmd("TR_SetAttributes"))?;
    Ok((guard, session))
}

/// Starts a policy session satisfied by `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)` (Part 3 section
/// 23.4): the EK's authPolicy (policy A) for the low-range templates.
fn endorsement_policy_session(ctx: &mut Context) -> Result<(Guard<'_>, AuthSession), TpmError> {
    let session = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
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
    let policy = PolicySession::try_from(session).map_err(cmd("PolicySession"))?;
    guard
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.policy_secret(
                policy,
                AuthHandle::Endorsement,
                Default::default(),
                Default::default(),
                Default::default(),
                None,
            )
        })
        .map_err(cmd("PolicySecret(endorsement)"))?;
    Ok((guard, session))
}

/// Creates the EK (TPM2_CreatePrimary in the endorsement hierarchy from the default template);
/// flushed when the guard drops. The same template always yields the same key.
fn load_ek(ctx: &mut Context, alg: EkAlg) -> Result<(Guard<'_>, KeyHandle), TpmError> {
    let handle =
        ek::create_ek_object_2(ctx, alg.selection(), None).map_err(cmd("CreatePrimary (EK)"))?;
    Ok((
        Guard::new(ctx, ObjectHandle::from(handle), Release::Flush),
        handle,
    ))
}

pub(crate) fn public_to_tpm2b(public: &Public) -> Result<Vec<u8>, TpmError> {
    PublicBuffer::try_from(public.clone())
        .and_then(|b| b.marshall())
        .map_err(cmd("marshal TPM2B_PUBLIC"))
}

/// A marshalled TPM2B_PUBLIC, or `None` if the bytes are not one.
pub(crate) fn unmarshal_public(bytes: &[u8]) -> Option<Public> {
    let buffer = PublicBuffer::unmarshall(bytes).ok()?;
    Public::try_from(buffer).ok()
}

fn public_from_tpm2b(bytes: &[u8]) -> Result<Public, TpmError> {
    unmarshal_public(bytes).ok_or(TpmError::BadBlob {
        what: "AK public (TPM2B_PUBLIC)",
    })
}

pub(crate) fn private_to_tpm2b(private: &Private) -> Vec<u8> {
    let v = private.value();
    let mut out = Vec::with_capacity(v.len() + 2);
    // A Private never exceeds TPM2B_PRIVATE's buffer size, far below u16::MAX.
    out.extend_from_slice(&u16::try_from(v.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(v);
    out
}

/// A marshalled TPM2B_PRIVATE (big-endian size, then exactly that many bytes), or `None`.
pub(crate) fn unmarshal_private(bytes: &[u8]) -> Option<Private> {
    let (len, rest) = match bytes {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return None,
    };
    if rest.len() != len {
        return None;
    }
    Private::try_from(rest.to_vec()).ok()
}

fn private_from_tpm2b(bytes: &[u8]) -> Result<Private, TpmError> {
    unmarshal_private(bytes).ok_or(TpmError::BadBlob {
        what: "AK private (TPM2B_PRIVATE)",
    })
}

fn spki_der(public: &Public) -> Result<Vec<u8>, TpmError> {
    let spki = picky_asn1_x509::SubjectPublicKeyInfo::try_from(public.clone())
        .map_err(cmd("public key to SubjectPublicKeyInfo"))?;
    picky_asn1_der::to_vec(&spki).map_err(|_| TpmError::Malformed {
        op: "SubjectPublicKeyInfo encoding",
    })
}

/// Removes zero padding after the first DER element (some TPMs size EK certificate indices
/// larger than the certificate). Bytes that are not a DER SEQUENCE are returned unchanged.
fn trim_der(bytes: &[u8]) -> Vec<u8> {
    match der_len(bytes) {
        Some(n)
            if bytes
                .get(n..)
                .is_some_and(|rest| rest.iter().all(|b| *b == 0)) =>
        {
            bytes
                .get(..n)
                .map_or_else(|| bytes.to_vec(), <[u8]>::to_vec)
        }
        _ => bytes.to_vec(),
    }
}

/// Total length of the DER SEQUENCE at the start of `bytes`, if it fits.
fn der_len(bytes: &[u8]) -> Option<usize> {
    let (tag, first) = (*bytes.first()?, *bytes.get(1)?);
    if tag != 0x30 {
        return None;
    }
    let (header, body) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = bytes
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (2 + n, len)
    };
    let total = header.checked_add(body)?;
    (total <= bytes.len()).then_some(total)
}

/// Splits concatenated DER certificates (the EK chain area holds them back to back).
pub fn split_der_certificates(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(n) = der_len(bytes) {
        let (head, rest) = bytes.split_at(n);
        out.push(head.to_vec());
        bytes = rest;
    }
    out
}

impl Tpm {
    /// Opens the TPM named by `tcti` (see [`crate::tcti`]). No global state: each `Tpm` is
    /// its own connection.
    pub fn open(tcti: &str) -> Result<Tpm, TpmError> {
        let parsed: Tcti = tcti.parse()?;
        if let Some(path) = parsed.device_path() {
            // The TSS library would only say "response code not recognized".
            if let Err(e) = std::fs::metadata(path) {
                return Err(TpmError::NoDevice {
                    tcti: tcti.to_string(),
                    reason: e.to_string(),
                });
            }
        }
        let conf = parsed.name_conf()?;
        let ctx = Context::new(conf).map_err(|e| TpmError::Open {
            tcti: tcti.to_string(),
            source: TssError(e),
        })?;
        Ok(Tpm { ctx, tcti: parsed })
    }

    pub fn tcti(&self) -> &Tcti {
        &self.tcti
    }

    /// The ESYS context, for the crate's other modules (sealing).
    pub(crate) fn context(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// The allocated PCR banks (TPM2_GetCapability(TPM_CAP_PCRS), Part 3 section 30.2).
    pub fn allocated_banks(&mut self) -> Result<Vec<HashAlg>, TpmError> {
        let (data, _) = self
            .ctx
            .execute_without_session(|ctx| ctx.get_capability(CapabilityType::AssignedPcr, 0, 1))
            .map_err(cmd("GetCapability(PCRS)"))?;
        let CapabilityData::AssignedPcr(list) = data else {
            return Err(TpmError::Malformed {
                op: "GetCapability(PCRS)",
            });
        };
        let mut out = Vec::new();
        for sel in list.get_selections() {
            if sel.is_empty() {
                continue;
            }
            out.push(from_hashing(sel.hashing_algorithm())?);
        }
        out.sort();
        Ok(out)
    }

    /// All 24 PCRs of each bank in `banks` (every allocated bank when empty).
    pub fn read_pcrs(&mut self, banks: &[HashAlg]) -> Result<PcrBanks, TpmError> {
        let allocated = self.allocated_banks()?;
        let banks = if banks.is_empty() {
            allocated.clone()
        } else {
            banks.to_vec()
        };
        let all: Vec<u32> = (0..=MAX_PCR).collect();
        let mut selection = Vec::with_capacity(banks.len());
        for bank in banks {
            if !allocated.contains(&bank) {
                return Err(TpmError::BankNotAllocated { bank });
            }
            selection.push((bank, all.clone()));
        }
        self.read_selection(&selection)
    }

    /// The PCRs in `selection`. TPM2_PCR_Read (Part 3 section 22.4) returns at most 8 digests
    /// per call and says which ones it returned: this reads until every selected PCR is in.
    /// If the PCR update counter moves between calls, the whole read starts again, so the
    /// values are one consistent snapshot.
    pub fn read_selection(
        &mut self,
        selection: &[(HashAlg, Vec<u32>)],
    ) -> Result<PcrBanks, TpmError> {
        for _ in 0..QUOTE_ATTEMPTS {
            if let Some(banks) = self.read_selection_once(selection)? {
                return Ok(banks);
            }
        }
        Err(TpmError::PcrsKeptChanging {
            attempts: QUOTE_ATTEMPTS,
        })
    }

    fn read_selection_once(
        &mut self,
        selection: &[(HashAlg, Vec<u32>)],
    ) -> Result<Option<PcrBanks>, TpmError> {
        let mut out = PcrBanks::new();
        let mut counter: Option<u32> = None;
        for (bank, pcrs) in selection {
            let mut remaining: Vec<u32> = pcrs.clone();
            remaining.sort_unstable();
            remaining.dedup();
            while !remaining.is_empty() {
                let slots = remaining
                    .iter()
                    .map(|p| slot(*p))
                    .collect::<Result<Vec<_>, _>>()?;
                let list = PcrSelectionListBuilder::new()
                    .with_selection(to_hashing(*bank), &slots)
                    .build()
                    .map_err(cmd("PCR selection"))?;
                let (update, read, digests) = self
                    .ctx
                    .execute_without_session(|ctx| ctx.pcr_read(list))
                    .map_err(cmd("PCR_Read"))?;
                if *counter.get_or_insert(update) != update {
                    return Ok(None);
                }
                let mut got: Vec<u32> = Vec::new();
                for sel in read.get_selections() {
                    if from_hashing(sel.hashing_algorithm())? != *bank {
                        return Err(TpmError::Malformed { op: "PCR_Read" });
                    }
                    got.extend(sel.selected().into_iter().map(slot_index));
                }
                got.sort_unstable();
                let values = digests.value();
                if got.is_empty() || got.len() != values.len() {
                    return Err(TpmError::Malformed { op: "PCR_Read" });
                }
                for (pcr, value) in got.iter().zip(values) {
                    if !remaining.contains(pcr) || value.len() != bank.digest_len() {
                        return Err(TpmError::Malformed { op: "PCR_Read" });
                    }
                    out.set(*bank, *pcr, value.value().to_vec());
                }
                remaining.retain(|p| !got.contains(p));
            }
        }
        Ok(Some(out))
    }

    /// Extends `H(data)` into `pcr` of every allocated bank (TPM2_PCR_Extend, Part 3 section
    /// 22.2) and appends the matching CEL record to the measurement log at `log`. Returns the
    /// record.
    ///
    /// The log is written after the extension succeeds: a crash in between leaves a PCR that
    /// the log does not explain, which replay detects (the reverse order would leave a record
    /// of an extension that never happened, equally detectable, but a failed extend would then
    /// need undoing).
    pub fn extend(&mut self, pcr: u32, data: &str, log: &Path) -> Result<CelRecord, TpmError> {
        if pcr > MAX_PCR {
            return Err(TpmError::PcrOutOfRange { pcr });
        }
        let mut records = read_log(log)?;
        let banks = self.allocated_banks()?;
        let record = CelRecord::warrant(records.len() as u64, pcr, data, &banks);
        let mut values = DigestValues::new();
        for alg in &banks {
            let digest = Digest::try_from(alg.hash(data.as_bytes())).map_err(cmd("digest"))?;
            values.set(to_hashing(*alg), digest);
        }
        let handle = PcrHandle::try_from(pcr).map_err(|_| TpmError::PcrOutOfRange { pcr })?;
        // PCR_Extend's parameters are not TPM2B (nothing to encrypt, nothing secret): the
        // PCR's empty authValue goes in a password session.
        self.ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.pcr_extend(handle, values)
            })
            .map_err(cmd("PCR_Extend"))?;
        records.push(record.clone());
        write_log(log, &records)?;
        Ok(record)
    }

    /// Extends the given digests (at most one per bank) into `pcr` (TPM2_PCR_Extend) and logs
    /// nothing: this is what firmware does for each event of its TCG log. Warrant's own
    /// measurements go through [`Tpm::extend`], which keeps the CEL log; this one exists to
    /// "boot" a software TPM through a real machine's firmware event log (tests and the demo).
    pub fn extend_digests(
        &mut self,
        pcr: u32,
        digests: &[(HashAlg, Vec<u8>)],
    ) -> Result<(), TpmError> {
        if pcr > MAX_PCR {
            return Err(TpmError::PcrOutOfRange { pcr });
        }
        let mut values = DigestValues::new();
        for (alg, digest) in digests {
            if digest.len() != alg.digest_len() {
                return Err(TpmError::BadBlob {
                    what: "PCR digest (wrong length for its bank)",
                });
            }
            let digest = Digest::try_from(digest.clone()).map_err(cmd("digest"))?;
            values.set(to_hashing(*alg), digest);
        }
        let handle = PcrHandle::try_from(pcr).map_err(|_| TpmError::PcrOutOfRange { pcr })?;
        self.ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.pcr_extend(handle, values)
            })
            .map_err(cmd("PCR_Extend"))
    }

    /// The EK's public key as DER `SubjectPublicKeyInfo`.
    pub fn ek_public(&mut self, alg: EkAlg) -> Result<Vec<u8>, TpmError> {
        let (mut ek, handle) = load_ek(&mut self.ctx, alg)?;
        let (public, _, _) = ek.read_public(handle).map_err(cmd("ReadPublic (EK)"))?;
        spki_der(&public)
    }

    /// The EK's public area as marshalled `TPM2B_PUBLIC` (what `tpm2_makecredential -u`
    /// reads).
    pub fn ek_public_tpm2b(&mut self, alg: EkAlg) -> Result<Vec<u8>, TpmError> {
        let (mut ek, handle) = load_ek(&mut self.ctx, alg)?;
        let (public, _, _) = ek.read_public(handle).map_err(cmd("ReadPublic (EK)"))?;
        public_to_tpm2b(&public)
    }

    /// Defined NV indices in `first..=last` (TPM2_GetCapability(TPM_CAP_HANDLES)).
    fn nv_indices(&mut self, first: u32, last: u32) -> Result<Vec<u32>, TpmError> {
        let mut out = Vec::new();
        let mut next = first;
        loop {
            let (data, more) = self
                .ctx
                .execute_without_session(|ctx| {
                    ctx.get_capability(CapabilityType::Handles, next, 64)
                })
                .map_err(cmd("GetCapability(HANDLES)"))?;
            let CapabilityData::Handles(list) = data else {
                return Err(TpmError::Malformed {
                    op: "GetCapability(HANDLES)",
                });
            };
            let handles: Vec<u32> = list.into_inner().into_iter().map(u32::from).collect();
            let Some(max) = handles.iter().copied().max() else {
                break;
            };
            out.extend(handles.into_iter().filter(|h| (first..=last).contains(h)));
            if !more || max >= last {
                break;
            }
            next = max + 1;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Reads a whole NV index with its own (empty) authValue (TPM2_NV_Read, Part 3 section
    /// 31.13; EK certificate indices have TPMA_NV_AUTHREAD).
    fn nv_read(&mut self, index: u32) -> Result<Vec<u8>, TpmError> {
        let nv = NvIndexTpmHandle::new(index).map_err(cmd("NV index"))?;
        let tr = self
            .ctx
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(nv)))
            .map_err(cmd("TR_FromTPMPublic (NV)"))?;
        let auth = NvAuth::NvIndex(tr.into());
        self.ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                tss_esapi::abstraction::nv::read_full(ctx, auth, nv)
            })
            .map_err(cmd("NV_Read"))
    }

    /// Every EK certificate present at the known indices ([`EK_CERT_INDICES`]), DER.
    pub fn ek_certificates(&mut self) -> Result<Vec<NvCertificate>, TpmError> {
        let present = self.nv_indices(0x01c0_0000, 0x01c0_00ff)?;
        let mut out = Vec::new();
        for (index, what) in EK_CERT_INDICES {
            if present.contains(&index) {
                let der = trim_der(&self.nv_read(index)?);
                out.push(NvCertificate { index, what, der });
            }
        }
        Ok(out)
    }

    /// Certificates in the EK chain area (0x01c00100..=0x01c001ff), split into DER
    /// certificates, in index order. Empty when the TPM stores no chain (swtpm does not).
    pub fn ek_chain(&mut self) -> Result<Vec<NvCertificate>, TpmError> {
        let present = self.nv_indices(EK_CHAIN_FIRST, EK_CHAIN_LAST)?;
        let mut out = Vec::new();
        for index in present {
            let bytes = self.nv_read(index)?;
            for der in split_der_certificates(&bytes) {
                out.push(NvCertificate {
                    index,
                    what: "EK chain certificate",
                    der,
                });
            }
        }
        Ok(out)
    }

    /// Creates an attestation key under the EK `parent` (TPM2_Create, Part 3 section 12.1,
    /// authorised by the EK's PolicySecret(endorsement)): restricted, sign-only, fixedTPM,
    /// fixedParent, SHA-256. Returns its blobs; see [`Tpm::persist_ak`].
    pub fn create_ak(&mut self, parent: EkAlg, alg: AkAlg) -> Result<AkBlobs, TpmError> {
        let (mut ek, ek_handle) = load_ek(&mut self.ctx, parent)?;
        let (key_alg, sign_alg) = match alg {
            AkAlg::EccP256 => (
                AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
                SignatureSchemeAlgorithm::EcDsa,
            ),
            AkAlg::Rsa2048 => (
                AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
                SignatureSchemeAlgorithm::RsaSsa,
            ),
        };
        let created = ak::create_ak_2(
            &mut ek,
            ek_handle,
            HashingAlgorithm::Sha256,
            key_alg,
            sign_alg,
            None,
            None,
        )
        .map_err(cmd("Create (AK)"))?;
        Ok(AkBlobs {
            public: public_to_tpm2b(&created.out_public)?,
            private: private_to_tpm2b(&created.out_private),
        })
    }

    /// Loads `blobs` under the EK `parent` and makes the key persistent at `handle`
    /// (TPM2_EvictControl, Part 3 section 28.5, owner authorisation with an empty
    /// authValue). With `replace`, a key already there is evicted first; otherwise that is
    /// [`TpmError::HandleInUse`].
    pub fn persist_ak(
        &mut self,
        parent: EkAlg,
        blobs: &AkBlobs,
        handle: u32,
        replace: bool,
    ) -> Result<(), TpmError> {
        let target = persistent(handle)?;
        if self.persistent_exists(handle)? {
            if !replace {
                return Err(TpmError::HandleInUse { handle });
            }
            let existing = self
                .ctx
                .execute_without_session(|ctx| {
                    ctx.tr_from_tpm_public(TpmHandle::Persistent(target))
                })
                .map_err(cmd("TR_FromTPMPublic"))?;
            // EvictControl on a persistent object removes it and invalidates the ESYS handle.
            self.ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.evict_control(Provision::Owner, existing, Persistent::Persistent(target))
                })
                .map_err(cmd("EvictControl (remove)"))?;
            // ESYS keeps its record of the evicted object: forget it, or a later
            // TR_FromTPMPublic of the same handle fails.
            let mut existing = existing;
            let _ = self.ctx.tr_close(&mut existing);
        }
        let mut loaded = self.load_ak_blobs(parent, blobs)?;
        let object = loaded.handle();
        let mut new_handle = loaded
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.evict_control(Provision::Owner, object, Persistent::Persistent(target))
            })
            .map_err(cmd("EvictControl (persist)"))?;
        let _ = loaded.tr_close(&mut new_handle);
        Ok(())
    }

    fn persistent_exists(&mut self, handle: u32) -> Result<bool, TpmError> {
        let (data, _) = self
            .ctx
            .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, handle, 1))
            .map_err(cmd("GetCapability(HANDLES)"))?;
        let CapabilityData::Handles(list) = data else {
            return Err(TpmError::Malformed {
                op: "GetCapability(HANDLES)",
            });
        };
        Ok(list.iter().any(|h| u32::from(*h) == handle))
    }

    /// Loads AK blobs under the EK (TPM2_Load, Part 3 section 12.2). The EK is flushed as soon
    /// as the AK is loaded; the AK is flushed when the guard drops.
    fn load_ak_blobs(&mut self, parent: EkAlg, blobs: &AkBlobs) -> Result<Guard<'_>, TpmError> {
        let public = public_from_tpm2b(&blobs.public)?;
        let private = private_from_tpm2b(&blobs.private)?;
        let handle = {
            let (mut ek, ek_handle) = load_ek(&mut self.ctx, parent)?;
            ak::load_ak(&mut ek, ek_handle, None, private, public).map_err(cmd("Load (AK)"))?
        };
        Ok(Guard::new(
            &mut self.ctx,
            ObjectHandle::from(handle),
            Release::Flush,
        ))
    }

    /// An ESYS handle to the AK: closed (persistent) or flushed (loaded blobs) on drop.
    fn ak(&mut self, ak: &AkRef) -> Result<(Guard<'_>, KeyHandle), TpmError> {
        match ak {
            AkRef::Persistent(handle) => {
                let h = persistent(*handle)?;
                if !self.persistent_exists(*handle)? {
                    return Err(TpmError::NoKeyAt { handle: *handle });
                }
                let tr = self
                    .ctx
                    .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(h)))
                    .map_err(cmd("TR_FromTPMPublic (AK)"))?;
                Ok((
                    Guard::new(&mut self.ctx, tr, Release::Close),
                    KeyHandle::from(tr),
                ))
            }
            AkRef::Blobs { blobs, parent } => {
                let guard = self.load_ak_blobs(*parent, blobs)?;
                let key = KeyHandle::from(guard.handle());
                Ok((guard, key))
            }
        }
    }

    /// The AK's public area, SubjectPublicKeyInfo and name.
    pub fn ak_public(&mut self, ak: &AkRef) -> Result<AkPublic, TpmError> {
        let (mut guard, key) = self.ak(ak)?;
        let (public, name, _) = guard.read_public(key).map_err(cmd("ReadPublic (AK)"))?;
        Ok(AkPublic {
            tpm2b_public: public_to_tpm2b(&public)?,
            spki_der: spki_der(&public)?,
            name: name.value().to_vec(),
        })
    }

    /// Recovers the secret of a credential made for this EK and AK (TPM2_ActivateCredential,
    /// Part 3 section 12.5). `credential_blob` is the contents of the `TPM2B_ID_OBJECT` and
    /// `secret` of the `TPM2B_ENCRYPTED_SECRET` (without their size fields).
    ///
    /// The AK is authorised through an HMAC session salted with the EK and with AES-128-CFB
    /// parameter encryption, so the credential goes to the TPM, and the recovered secret comes
    /// back, encrypted on the bus; the EK is authorised by its policy
    /// (PolicySecret(endorsement)).
    pub fn activate_credential(
        &mut self,
        ak: &AkRef,
        ek_alg: EkAlg,
        credential_blob: &[u8],
        secret: &[u8],
    ) -> Result<CredentialSecret, TpmError> {
        let id = IdObject::try_from(credential_blob.to_vec()).map_err(|_| TpmError::BadBlob {
            what: "credential blob (TPM2B_ID_OBJECT)",
        })?;
        let enc = EncryptedSecret::try_from(secret.to_vec()).map_err(|_| TpmError::BadBlob {
            what: "encrypted secret (TPM2B_ENCRYPTED_SECRET)",
        })?;
        let (mut ak_guard, ak_key) = self.ak(ak)?;
        let (mut ek_guard, ek_key) = load_ek(&mut ak_guard, ek_alg)?;
        let (mut salted, hmac) = salted_session(&mut ek_guard, ek_key)?;
        let (mut policy_guard, policy) = endorsement_policy_session(&mut salted)?;
        let digest = policy_guard
            .execute_with_sessions((Some(hmac), Some(policy), None), |ctx| {
                ctx.activate_credential(ak_key, ek_key, id, enc)
            })
            .map_err(cmd("ActivateCredential"))?;
        Ok(CredentialSecret(Zeroizing::new(digest.value().to_vec())))
    }

    /// Quotes `selection` with the AK (TPM2_Quote, Part 3 section 18.4; the AK's own scheme,
    /// ECDSA or RSASSA with SHA-256), then reads the quoted PCRs. If `H(values)` differs from
    /// the quoted `pcrDigest` (a PCR was extended in between), it quotes again, up to
    /// [`QUOTE_ATTEMPTS`] times.
    pub fn quote(
        &mut self,
        ak: &AkRef,
        selection: &[(HashAlg, Vec<u32>)],
        nonce: &[u8],
    ) -> Result<Quote, TpmError> {
        self.quote_with(ak, selection, nonce, |_, _| Ok(()))
    }

    /// [`Tpm::quote`], running `between(self, attempt)` between each quote and the read of
    /// the PCR values (the tests extend a PCR there to exercise the retry).
    fn quote_with(
        &mut self,
        ak: &AkRef,
        selection: &[(HashAlg, Vec<u32>)],
        nonce: &[u8],
        mut between: impl FnMut(&mut Tpm, usize) -> Result<(), TpmError>,
    ) -> Result<Quote, TpmError> {
        if nonce.len() > 64 {
            return Err(TpmError::NonceTooLong { len: nonce.len() });
        }
        let mut builder = PcrSelectionListBuilder::new();
        for (bank, pcrs) in selection {
            let slots = pcrs
                .iter()
                .map(|p| slot(*p))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.with_selection(to_hashing(*bank), &slots);
        }
        let list = builder.build().map_err(cmd("PCR selection"))?;
        for attempt in 1..=QUOTE_ATTEMPTS {
            let (attest, signature) = {
                let (mut guard, key) = self.ak(ak)?;
                let data = Data::try_from(nonce.to_vec())
                    .map_err(|_| TpmError::NonceTooLong { len: nonce.len() })?;
                let list = list.clone();
                guard
                    .execute_with_session(Some(AuthSession::Password), |ctx| {
                        ctx.quote(key, data, SignatureScheme::Null, list)
                    })
                    .map_err(cmd("Quote"))?
            };
            let AttestInfo::Quote { info } = attest.attested() else {
                return Err(TpmError::Malformed { op: "Quote" });
            };
            // The order the TPM hashed them in: selections as listed, PCRs ascending.
            let mut quoted: Vec<(HashAlg, Vec<u32>)> = Vec::new();
            for sel in info.pcr_selection().get_selections() {
                let mut pcrs: Vec<u32> = sel.selected().into_iter().map(slot_index).collect();
                pcrs.sort_unstable();
                quoted.push((from_hashing(sel.hashing_algorithm())?, pcrs));
            }
            between(self, attempt)?;
            let pcrs = self.read_selection(&quoted)?;
            let mut parts: Vec<&[u8]> = Vec::new();
            for (bank, list) in &quoted {
                for p in list {
                    parts.push(
                        pcrs.get(*bank, *p)
                            .ok_or(TpmError::Malformed { op: "PCR_Read" })?,
                    );
                }
            }
            if HashAlg::Sha256.hash_parts(&parts) == info.pcr_digest().value() {
                return Ok(Quote {
                    attest: attest.marshall().map_err(cmd("marshal TPMS_ATTEST"))?,
                    signature: signature
                        .marshall()
                        .map_err(cmd("marshal TPMT_SIGNATURE"))?,
                    pcrs,
                    attempts: attempt,
                });
            }
        }
        Err(TpmError::PcrsKeptChanging {
            attempts: QUOTE_ATTEMPTS,
        })
    }
}

/// Reads the measurement log at `path`; a missing file is an empty log.
pub fn read_log(path: &Path) -> Result<Vec<CelRecord>, TpmError> {
    match std::fs::read(path) {
        Ok(bytes) => cel::parse(&bytes).map_err(|source| TpmError::Log {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TpmError::LogIo {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Writes the whole log: to a temporary file beside it, synced, then renamed over it, so a
/// reader never sees half a log.
fn write_log(path: &Path, records: &[CelRecord]) -> Result<(), TpmError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| TpmError::LogIo {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut text = serde_json::to_vec_pretty(records).map_err(|e| TpmError::LogIo {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push(b'\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_trimming_and_splitting() {
        let a = [0x30, 0x03, 1, 2, 3];
        let b = [0x30, 0x81, 0x01, 9];
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(split_der_certificates(&both), vec![a.to_vec(), b.to_vec()]);
        let mut padded = a.to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(trim_der(&padded), a.to_vec());
        // Not zero padding: kept as is.
        let mut junk = a.to_vec();
        junk.push(7);
        assert_eq!(trim_der(&junk), junk);
        assert!(split_der_certificates(&[0x30, 0x05, 1]).is_empty());
    }

    #[test]
    fn private_blob_round_trip_is_strict() {
        let p = Private::try_from(vec![1u8, 2, 3]).unwrap();
        let bytes = private_to_tpm2b(&p);
        assert_eq!(bytes, [0, 3, 1, 2, 3]);
        assert_eq!(private_from_tpm2b(&bytes).unwrap().value(), &[1, 2, 3]);
        assert!(private_from_tpm2b(&[0, 4, 1, 2, 3]).is_err());
        assert!(private_from_tpm2b(&[0]).is_err());
    }

    /// The retry when PCRs move between the quote and the read, on a real (software) TPM.
    #[test]
    fn quote_retries_when_pcrs_change_between_quote_and_read() {
        let sw = ::tests::swtpm::Swtpm::start().unwrap();
        let mut tpm = Tpm::open(&sw.tcti()).unwrap();
        let log = sw.dir().join("log.json");
        let blobs = tpm.create_ak(EkAlg::Rsa2048, AkAlg::EccP256).unwrap();
        let ak = AkRef::Blobs {
            blobs,
            parent: EkAlg::Rsa2048,
        };
        let sel = [(HashAlg::Sha256, vec![0, 16])];
        // Extended once, after the first quote: the second quote is consistent.
        let q = tpm
            .quote_with(&ak, &sel, b"n", |t, attempt| {
                if attempt == 1 {
                    t.extend(16, "racing", &log)?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(q.attempts, 2);
        assert_eq!(
            q.pcrs.get(HashAlg::Sha256, 16),
            tpm.read_pcrs(&[HashAlg::Sha256])
                .unwrap()
                .get(HashAlg::Sha256, 16)
        );
        // A PCR that moves every time: the quote gives up, typed.
        let err = tpm
            .quote_with(&ak, &sel, b"n", |t, _| {
                t.extend(16, "again", &log).map(|_| ())
            })
            .unwrap_err();
        assert!(matches!(
            err,
            TpmError::PcrsKeptChanging {
                attempts: QUOTE_ATTEMPTS
            }
        ));
        // A PCR outside the selection moving does not matter.
        let q = tpm
            .quote_with(&ak, &sel, b"n", |t, _| {
                t.extend(23, "elsewhere", &log).map(|_| ())
            })
            .unwrap();
        assert_eq!(q.attempts, 1);
    }

    #[test]
    fn persistent_handles_are_checked() {
        assert!(persistent(DEFAULT_AK_HANDLE).is_ok());
        assert!(matches!(
            persistent(0x0100_0000),
            Err(TpmError::BadHandle { .. })
        ));
    }
}
