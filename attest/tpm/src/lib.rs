//! # tpm: the one door to the TPM
//!
//! This is the only crate in the workspace allowed to depend on `tss-esapi`; its public API
//! speaks Warrant's own types (bytes, PCR values from `measure`), never `tss_esapi` types.
//! A repository test (`tests/tests/deps.rs`) fails if the verifier, `measure`, `policy` or `proto`
//! ever reaches `tss-esapi` through any dependency path.
