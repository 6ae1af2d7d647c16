//! Warrant's verifier: the pure attestation core, its state and its certificate authority.
//! Never links the TPM stack.
#![forbid(unsafe_code)]

pub mod appraisal;
pub mod ca;
pub mod capture;
pub mod core;
pub mod service;
pub mod store;
pub mod webhook;
