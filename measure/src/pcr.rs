//! PCR values: banks of digests indexed by PCR number, and their JSON form.
//!
//! The JSON form is the one Warrant's reports and `--expect` files use:
//! `{"sha256": {"0": "<lowercase hex>", "7": "..."}, "sha1": {...}}`, PCR indices as decimal
//! strings. Parsing it is strict: an unknown bank, a non-decimal index, bad hex or a digest of
//! the wrong length is an error, never a skipped entry.

use crate::alg::HashAlg;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;
use thiserror::Error;

/// Highest PCR index a TPM 2.0 PC Client platform has (PTP section 4.5: 24 PCRs).
pub const MAX_PCR: u32 = 23;

/// PCR values per bank: `banks[alg][pcr] = value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrBanks {
    banks: BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
}

/// Why a PCR-values document is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PcrError {
    #[error("PCR values must be a JSON object of banks")]
    NotAnObject,
    #[error("unknown PCR bank {0:?} (known: sha1, sha256, sha384, sha512, sm3_256)")]
    UnknownBank(String),
    #[error("bank {bank}: PCR index {index:?} is not a decimal number from 0 to {MAX_PCR}")]
    BadIndex { bank: HashAlg, index: String },
    #[error("bank {bank}, PCR {pcr}: value is not a hex string")]
    BadHex { bank: HashAlg, pcr: u32 },
    #[error("bank {bank}, PCR {pcr}: {len} bytes, but {bank} digests are {expected} bytes")]
    BadLength {
        bank: HashAlg,
        pcr: u32,
        len: usize,
        expected: usize,
    },
}

impl PcrBanks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `banks[alg][pcr]`. The caller guarantees `value.len() == alg.digest_len()`.
    pub fn set(&mut self, alg: HashAlg, pcr: u32, value: Vec<u8>) {
        self.banks.entry(alg).or_default().insert(pcr, value);
    }

    pub fn get(&self, alg: HashAlg, pcr: u32) -> Option<&[u8]> {
        self.banks.get(&alg)?.get(&pcr).map(Vec::as_slice)
    }

    /// The PCRs of one bank.
    pub fn bank(&self, alg: HashAlg) -> Option<&BTreeMap<u32, Vec<u8>>> {
        self.banks.get(&alg)
    }

    /// Every bank, in `TPM_ALG_ID` order.
    pub fn banks(&self) -> impl Iterator<Item = (HashAlg, &BTreeMap<u32, Vec<u8>>)> {
        self.banks.iter().map(|(a, b)| (*a, b))
    }

    pub fn is_empty(&self) -> bool {
        self.banks.values().all(BTreeMap::is_empty)
    }

    /// Parses the JSON form (see the module documentation).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, PcrError> {
        let obj = value.as_object().ok_or(PcrError::NotAnObject)?;
        let mut out = PcrBanks::new();
        for (bank_name, pcrs) in obj {
            let bank = HashAlg::from_name(bank_name)
                .ok_or_else(|| PcrError::UnknownBank(bank_name.clone()))?;
            let pcrs = pcrs.as_object().ok_or(PcrError::NotAnObject)?;
            let entry = out.banks.entry(bank).or_default();
            for (index, value) in pcrs {
                let pcr = parse_index(index).ok_or_else(|| PcrError::BadIndex {
                    bank,
                    index: index.clone(),
                })?;
                let text = value.as_str().ok_or(PcrError::BadHex { bank, pcr })?;
                let text = text.strip_prefix("0x").unwrap_or(text);
                let bytes = hex::decode(text).map_err(|_| PcrError::BadHex { bank, pcr })?;
                if bytes.len() != bank.digest_len() {
                    return Err(PcrError::BadLength {
                        bank,
                        pcr,
                        len: bytes.len(),
                        expected: bank.digest_len(),
                    });
                }
                entry.insert(pcr, bytes);
            }
        }
        Ok(out)
    }
}

/// A decimal PCR index without sign, spaces or leading zeros, at most [`MAX_PCR`].
fn parse_index(text: &str) -> Option<u32> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse::<u32>().ok().filter(|i| *i <= MAX_PCR)
}

impl Serialize for PcrBanks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.banks.len()))?;
        for (alg, pcrs) in &self.banks {
            let hexed: BTreeMap<u32, String> =
                pcrs.iter().map(|(i, v)| (*i, hex::encode(v))).collect();
            // serde_json writes integer map keys as decimal strings, in numeric order here.
            map.serialize_entry(alg.name(), &hexed)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip() {
        let v = json!({"sha1": {"0": "00".repeat(20), "10": "ab".repeat(20)}});
        let banks = PcrBanks::from_json(&v).unwrap();
        assert_eq!(banks.get(HashAlg::Sha1, 10), Some(&[0xab; 20][..]));
        assert_eq!(serde_json::to_value(&banks).unwrap(), v);
    }

    #[test]
    fn strict_parsing() {
        let bad = [
            json!([]),
            json!({"md5": {}}),
            json!({"sha1": {"x": "00"}}),
            json!({"sha1": {"01": "00".repeat(20)}}),
            json!({"sha1": {"24": "00".repeat(20)}}),
            json!({"sha1": {"-1": "00".repeat(20)}}),
            json!({"sha1": {"0": "zz"}}),
            json!({"sha1": {"0": "00".repeat(32)}}),
            json!({"sha1": {"0": 5}}),
        ];
        for b in bad {
            assert!(PcrBanks::from_json(&b).is_err(), "{b} should be rejected");
        }
    }
}
