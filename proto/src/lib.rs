//! # proto: Warrant's gRPC API
//!
//! Generated from `proto/warrant.proto` by tonic and prost; see docs/protocol.md for the
//! protocol, its messages and what each check means. Transport security (TLS, mutual TLS
//! once a node is admitted) is rustls, through tonic's `tls-ring` feature.
#![forbid(unsafe_code)]

/// Version 1 of the protocol.
#[allow(clippy::all, clippy::pedantic, missing_docs)] // generated code
pub mod v1 {
    tonic::include_proto!("warrant.v1");
}

pub use tonic;

/// Largest message either side accepts (a real firmware log is under 100 KiB; an IMA list of
/// a busy node a few MiB). Anything larger is refused before it is decoded.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The qualifying data of a clock quote (see `ChallengeRequest`): SHA-256 is applied by the
/// caller to these bytes.
pub fn clock_quote_context(node_id: &str) -> Vec<u8> {
    let mut v = b"warrant-clock".to_vec();
    v.extend_from_slice(node_id.as_bytes());
    v
}
