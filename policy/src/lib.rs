//! # policy: reference values and appraisal (pure)
//!
//! This crate will hold Warrant's reference values, the appraisal of *verified* measurements
//! against them, and the hardening rules (KSPP kernel parameters, sysctls, kernel config,
//! seccomp profiles) as data. Like `measure`, it never touches files, clocks, sockets or the TPM:
//! it takes typed values and returns verdicts.
//!
//! Trust assumption: every input that reaches an appraisal function has already been verified
//! (for example a replayed event log that matched quoted PCRs). The types enforce that.
#![forbid(unsafe_code)]
pub mod appraise;
pub mod ek;
pub mod hardening;
pub mod refvalues;
pub mod seccomp;
