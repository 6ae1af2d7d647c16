//! # tpm: the one door to the TPM
//!
//! This is the only crate in the workspace allowed to depend on `tss-esapi`; its public API
//! speaks Warrant's own types (bytes, PCR values from `measure`), never `tss_esapi` types.
//! A repository test (`tests/tests/deps.rs`) fails if the verifier, `measure`, `policy` or `proto`
//! ever reaches `tss-esapi` through any dependency path.
//!
//! ## Design
//! - [`Tpm::open`] takes an explicit TCTI string ([`tcti`]); there is no global context, no
//!   lock and no environment lookup here (only `main` reads the environment).
//! - Every transient object and session is flushed, and every ESYS reference to a persistent
//!   object closed, by a guard when it goes out of scope.
//! - What leaves the crate is bytes and `measure` types: PCR values as
//!   [`measure::pcr::PcrBanks`], quotes as marshalled `TPMS_ATTEST` and `TPMT_SIGNATURE`,
//!   keys as DER `SubjectPublicKeyInfo` and marshalled `TPM2B_PUBLIC`, certificates as DER.
//! - Commands that carry secrets (ActivateCredential) run in an HMAC session salted with the
//!   EK, with AES-128-CFB parameter encryption.
//! - [`seal`] seals small secrets under the SRK (TCG default ECC P-256 storage key) to a
//!   PolicyPCR policy or a signed one (PolicyAuthorize, systemd `.pcrsig`), optionally with a
//!   PIN (PolicyAuthValue); Create and Unseal run in SRK-salted sessions with AES-128-CFB
//!   parameter encryption, and unsealed secrets come back in `Zeroizing` (docs/sealing.md).
//! - [`rollback`] keeps a security version number in a TPM NV counter and checks it inside
//!   signed PCR policies (`TPM2_PolicyNV`), so that an old, signed image cannot unseal once a
//!   newer one booted (docs/sealing.md, "Anti-rollback").
//! - PCR extensions are recorded in Warrant's own measurement log in the TCG Canonical Event
//!   Log JSON format ([`cel`]), whose replay reproduces the PCRs.
//!
//! ## Trust assumptions
//! Nothing read from the TPM here is trusted by this crate's callers on its own: a quote is
//! verified by the verifier (the `measure` crate) against an AK it has bound to an EK whose
//! certificate chain `policy::ek` checked. This crate only makes sure that what it returns is
//! what the TPM said, and that a quote's PCR values match its quoted digest.

pub use measure::cel;
mod device;
mod guard;
pub mod rollback;
pub mod seal;
pub mod systemd;
pub mod tcti;

pub use device::{
    read_log, split_der_certificates, AkAlg, AkBlobs, AkPublic, AkRef, CredentialSecret, EkAlg,
    NvCertificate, Quote, Tpm, TpmError, TssError, DEFAULT_AK_HANDLE, EK_CERT_INDICES,
    EK_CHAIN_FIRST, EK_CHAIN_LAST, QUOTE_ATTEMPTS,
};
pub use seal::{PcrList, SealError, SealPolicy, SealedBlob, SignedPcrPolicy};
/// Unsealed secrets and PINs are handed over in this wrapper, zeroed on drop.
pub use zeroize::Zeroizing;
