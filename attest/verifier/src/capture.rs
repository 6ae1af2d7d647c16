//! `warrant-verifier policy capture`: reference values from a golden node's last evidence.
//! The evidence is proven again first (its quote against the node's activated AK and the nonce
//! it answered, its logs against the quote): only what the TPM vouched for becomes policy.

use crate::core::{verify_quote, Evidence, Finding};
use crate::store::Node;
use measure::alg::HashAlg;
use measure::pcr::PcrBanks;
use policy::refvalues::ReferenceValues;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A node's last evidence as the service keeps it (`DIR/<node_id>.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptEvidence {
    /// The nonce the quote answered (hex).
    pub nonce: String,
    pub quote_attest: String,
    pub quote_signature: String,
    /// (bank, PCR, value hex).
    pub pcrs: Vec<(String, u32, String)>,
    pub firmware_event_log: String,
    pub warrant_event_log: String,
    pub ima_log: String,
}

/// Why capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("node {node}: no evidence kept (it must attest once to this verifier first): {path}")]
    NoEvidence { node: String, path: String },
    #[error("{path}: {reason}")]
    BadEvidence { path: String, reason: String },
    #[error("node {node}: its evidence does not prove itself: {reason}")]
    NotProven { node: String, reason: String },
}

fn unhex(path: &Path, what: &str, s: &str) -> Result<Vec<u8>, CaptureError> {
    hex::decode(s).map_err(|e| CaptureError::BadEvidence {
        path: path.display().to_string(),
        reason: format!("{what}: {e}"),
    })
}

/// The default firmware PCRs when no reference values exist yet.
pub const CAPTURE_FIRMWARE_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// Reference values from `node`'s last evidence in `dir`.
pub fn capture(dir: &Path, node: &Node) -> Result<ReferenceValues, CaptureError> {
    let path = dir.join(format!("{}.json", node.node_id));
    let bytes = std::fs::read(&path).map_err(|_| CaptureError::NoEvidence {
        node: node.name.clone(),
        path: path.display().to_string(),
    })?;
    let kept: KeptEvidence =
        serde_json::from_slice(&bytes).map_err(|e| CaptureError::BadEvidence {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let mut pcrs = PcrBanks::new();
    for (bank, pcr, value) in &kept.pcrs {
        let alg = HashAlg::from_name(bank).ok_or_else(|| CaptureError::BadEvidence {
            path: path.display().to_string(),
            reason: format!("unknown bank {bank}"),
        })?;
        pcrs.set(alg, *pcr, unhex(&path, "PCR value", value)?);
    }
    let attest = unhex(&path, "quote", &kept.quote_attest)?;
    let signature = unhex(&path, "signature", &kept.quote_signature)?;
    let nonce = unhex(&path, "nonce", &kept.nonce)?;
    let firmware = unhex(&path, "firmware log", &kept.firmware_event_log)?;
    let warrant = unhex(&path, "measurement log", &kept.warrant_event_log)?;
    let ima = unhex(&path, "IMA list", &kept.ima_log)?;
    let not_proven = |f: Finding| CaptureError::NotProven {
        node: node.name.clone(),
        reason: f.reason,
    };
    let quote =
        verify_quote(&attest, &signature, &node.ak_public, &nonce, &pcrs).map_err(not_proven)?;
    let evidence = Evidence {
        attest: &attest,
        signature: &signature,
        pcrs: &pcrs,
        firmware_log: &firmware,
        warrant_log: &warrant,
        ima_log: &ima,
    };
    let mut findings = Vec::new();
    crate::appraisal::with_proven(
        &CAPTURE_FIRMWARE_PCRS,
        quote.pcrs(),
        &evidence,
        &mut findings,
        policy::appraise::capture,
    )
    .map_err(not_proven)
}
