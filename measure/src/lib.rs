//! # measure: Warrant's measured-boot core (pure)
//!
//! This crate turns the bytes a machine produces while booting into typed, checkable values:
//! TCG firmware event logs ([`eventlog`]), IMA measurement lists ([`ima`]), PCR arithmetic
//! ([`alg`], [`pcr`]), dm-verity hash trees of the read-only root ([`verity`]), and Unified
//! Kernel Images with the PCR 11 value their stub will produce and the signed PCR policies that
//! keep sealed disks unlocking across updates ([`uki`]). It never opens a file, reads the clock or the environment, or talks to a
//! TPM: callers hand it bytes and it returns values or typed errors. The verifier is built on it
//! and is therefore tested with no TPM at all.
//!
//! ## Trust assumptions
//! - Every input is hostile until proven otherwise. Parsers go through one bounded reader
//!   ([`codec::Reader`]): lengths are checked against what remains before any allocation, and
//!   errors carry the offset where they happened. No parser panics on any input (fuzzed).
//! - A parsed log is **unverified**. Only a replay that reproduces PCR values quoted by a TPM
//!   ([`eventlog::replay`]) says anything about the machine; an event's *data* is only as
//!   trustworthy as the check that its digest is the hash of that data.
//! - Firmware quirks are never applied silently: they are a named list, tried only when a
//!   plain replay disagrees with the expected values, and reported when used.
#![forbid(unsafe_code)]

pub mod alg;
pub mod cel;
pub mod codec;
pub mod efi;
pub mod eventlog;
pub mod ima;
pub mod luks2;
pub mod pcr;
pub mod tpm2;
pub mod uki;
pub mod verity;

pub use alg::HashAlg;

/// Serializes bytes as lowercase hex (serde helper for the JSON reports).
pub fn serde_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}
