//! # proto: the node/verifier API
//!
//! The gRPC service definitions (tonic + prost, TLS by rustls) arrive with the attestation
//! protocol. This crate exists now so the workspace layout, and the dependency rule that the
//! verifier never links the TPM stack, are in place from the start.
#![forbid(unsafe_code)]
