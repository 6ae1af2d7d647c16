//! Warrant's own measurement log in the TCG Canonical Event Log format, JSON encoding
//! (TCG "Canonical Event Log Format", version 1.0, section 5 (records) and section 6.2 (JSON)).
//!
//! Every extension Warrant makes to a PCR is one record:
//!
//! ```json
//! {"recnum": 0, "pcr": 16,
//!  "digests": [{"hashAlg": "sha1", "digest": "<hex>"}, {"hashAlg": "sha256", "digest": "<hex>"}],
//!  "content_type": "warrant", "content": {"string": "<the measured data>"}}
//! ```
//!
//! A log is a JSON array of records. `content_type` `warrant` is a vendor content type (the
//! CEL leaves the set open; systemd uses `systemd` the same way): its content is the measured
//! string, and every digest is `H(string)` in its bank.
//!
//! Pure (bytes in, typed values out): the node writes the log through the `tpm` crate, and the
//! verifier, which never links the TPM stack, replays it.
//! Parsing is strict: a record with an unknown bank, a wrong-length digest, a gap in `recnum`
//! or a `warrant` record whose digests are not the hash of its content is an error.

use crate::alg::HashAlg;
use crate::pcr::{PcrBanks, MAX_PCR};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The content type of Warrant's own records.
pub const CONTENT_TYPE_WARRANT: &str = "warrant";

/// One digest of a record (`TPMT_HA` in JSON: `hashAlg` by name, `digest` in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CelDigest {
    #[serde(rename = "hashAlg")]
    pub hash_alg: String,
    pub digest: String,
}

/// One CEL record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CelRecord {
    pub recnum: u64,
    pub pcr: u32,
    pub digests: Vec<CelDigest>,
    pub content_type: String,
    pub content: serde_json::Value,
}

/// Why a CEL log does not parse or replay.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CelError {
    #[error("not a CEL JSON log (a JSON array of records): {reason}")]
    NotJson { reason: String },
    #[error("record {index}: recnum is {recnum}, expected {index}")]
    RecordNumber { index: usize, recnum: u64 },
    #[error("record {recnum}: PCR {pcr} is out of range 0..={MAX_PCR}")]
    PcrOutOfRange { recnum: u64, pcr: u32 },
    #[error("record {recnum}: unknown hash algorithm {name:?}")]
    UnknownAlgorithm { recnum: u64, name: String },
    #[error("record {recnum}: {alg} digest is not {expected} bytes of hex")]
    BadDigest {
        recnum: u64,
        alg: HashAlg,
        expected: usize,
    },
    #[error("record {recnum}: {alg} appears twice")]
    DuplicateDigest { recnum: u64, alg: HashAlg },
    #[error("record {recnum}: no digests")]
    NoDigests { recnum: u64 },
    #[error("record {recnum}: warrant content must be {{\"string\": \"...\"}}")]
    BadContent { recnum: u64 },
    #[error("record {recnum}: {alg} digest is not the hash of the record's content")]
    ContentMismatch { recnum: u64, alg: HashAlg },
}

impl CelRecord {
    /// A `warrant` record of `data` extended into `pcr`, with one digest per bank.
    pub fn warrant(recnum: u64, pcr: u32, data: &str, banks: &[HashAlg]) -> CelRecord {
        CelRecord {
            recnum,
            pcr,
            digests: banks
                .iter()
                .map(|alg| CelDigest {
                    hash_alg: alg.name().to_string(),
                    digest: hex::encode(alg.hash(data.as_bytes())),
                })
                .collect(),
            content_type: CONTENT_TYPE_WARRANT.to_string(),
            content: serde_json::json!({ "string": data }),
        }
    }

    /// The record's digests, checked: known banks, right lengths, each bank once, and (for
    /// `warrant` records) each equal to the hash of the content.
    pub fn checked_digests(&self) -> Result<Vec<(HashAlg, Vec<u8>)>, CelError> {
        let recnum = self.recnum;
        if self.pcr > MAX_PCR {
            return Err(CelError::PcrOutOfRange {
                recnum,
                pcr: self.pcr,
            });
        }
        if self.digests.is_empty() {
            return Err(CelError::NoDigests { recnum });
        }
        let content = if self.content_type == CONTENT_TYPE_WARRANT {
            let text = self
                .content
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.get("string"))
                .and_then(serde_json::Value::as_str)
                .ok_or(CelError::BadContent { recnum })?;
            Some(text.as_bytes())
        } else {
            None
        };
        let mut out: Vec<(HashAlg, Vec<u8>)> = Vec::with_capacity(self.digests.len());
        for d in &self.digests {
            let alg =
                HashAlg::from_name(&d.hash_alg).ok_or_else(|| CelError::UnknownAlgorithm {
                    recnum,
                    name: d.hash_alg.clone(),
                })?;
            let bad = CelError::BadDigest {
                recnum,
                alg,
                expected: alg.digest_len(),
            };
            let digest = hex::decode(&d.digest).map_err(|_| bad.clone())?;
            if digest.len() != alg.digest_len() {
                return Err(bad);
            }
            if out.iter().any(|(a, _)| *a == alg) {
                return Err(CelError::DuplicateDigest { recnum, alg });
            }
            if let Some(content) = content {
                if alg.hash(content) != digest {
                    return Err(CelError::ContentMismatch { recnum, alg });
                }
            }
            out.push((alg, digest));
        }
        Ok(out)
    }
}

/// Parses a log: a JSON array of records numbered 0, 1, 2, ...
pub fn parse(bytes: &[u8]) -> Result<Vec<CelRecord>, CelError> {
    let records: Vec<CelRecord> = serde_json::from_slice(bytes).map_err(|e| CelError::NotJson {
        reason: e.to_string(),
    })?;
    for (index, r) in records.iter().enumerate() {
        if r.recnum != index as u64 {
            return Err(CelError::RecordNumber {
                index,
                recnum: r.recnum,
            });
        }
    }
    Ok(records)
}

/// Replays records from PCRs at zero (TPM 2.0 Part 1, section 17.2: `PCR := H(PCR || digest)`).
/// The result holds only the PCRs and banks the log touches.
pub fn replay(records: &[CelRecord]) -> Result<PcrBanks, CelError> {
    let mut banks = PcrBanks::new();
    for r in records {
        for (alg, digest) in r.checked_digests()? {
            let mut value = banks
                .get(alg, r.pcr)
                .map_or_else(|| alg.zero(), <[u8]>::to_vec);
            alg.extend(&mut value, &digest);
            banks.set(alg, r.pcr, value);
        }
    }
    Ok(banks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_is_hash_chain_from_zero() {
        let banks = [HashAlg::Sha1, HashAlg::Sha256];
        let log = vec![
            CelRecord::warrant(0, 16, "a", &banks),
            CelRecord::warrant(1, 16, "b", &banks),
        ];
        let text = serde_json::to_vec(&log).unwrap();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed, log);
        let out = replay(&parsed).unwrap();
        let mut expect = HashAlg::Sha256.zero();
        HashAlg::Sha256.extend(&mut expect, &HashAlg::Sha256.hash(b"a"));
        HashAlg::Sha256.extend(&mut expect, &HashAlg::Sha256.hash(b"b"));
        assert_eq!(out.get(HashAlg::Sha256, 16), Some(&expect[..]));
        assert!(out.get(HashAlg::Sha256, 15).is_none());
    }

    #[test]
    fn json_field_names_follow_the_cel_spec() {
        let r = CelRecord::warrant(0, 23, "x", &[HashAlg::Sha256]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["recnum"], 0);
        assert_eq!(v["pcr"], 23);
        assert_eq!(v["digests"][0]["hashAlg"], "sha256");
        assert_eq!(v["content_type"], "warrant");
        assert_eq!(v["content"]["string"], "x");
    }

    #[test]
    fn strict_parsing() {
        let good = CelRecord::warrant(0, 16, "a", &[HashAlg::Sha256]);
        let mut gap = good.clone();
        gap.recnum = 1;
        assert!(matches!(
            parse(&serde_json::to_vec(&[gap]).unwrap()),
            Err(CelError::RecordNumber { .. })
        ));
        let mut forged = good.clone();
        forged.content = serde_json::json!({"string": "b"});
        assert!(matches!(
            replay(&[forged]),
            Err(CelError::ContentMismatch { .. })
        ));
        let mut short = good.clone();
        short.digests[0].digest = "00".into();
        assert!(matches!(replay(&[short]), Err(CelError::BadDigest { .. })));
        let mut alg = good.clone();
        alg.digests[0].hash_alg = "md5".into();
        assert!(matches!(
            replay(&[alg]),
            Err(CelError::UnknownAlgorithm { .. })
        ));
        let mut twice = good.clone();
        twice.digests.push(twice.digests[0].clone());
        assert!(matches!(
            replay(&[twice]),
            Err(CelError::DuplicateDigest { .. })
        ));
        let mut pcr = good;
        pcr.pcr = 24;
        assert!(matches!(
            replay(&[pcr]),
            Err(CelError::PcrOutOfRange { .. })
        ));
        assert!(matches!(parse(b"{}"), Err(CelError::NotJson { .. })));
    }
}
