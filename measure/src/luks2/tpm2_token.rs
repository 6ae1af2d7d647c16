//! The `systemd-tpm2` LUKS2 token, field for field as systemd writes and reads it.
//!
//! Sources (systemd): `src/shared/tpm2-util.c` — `tpm2_make_luks2_json()` (what is written) and
//! `tpm2_parse_luks2_json()` (what is accepted), `tpm2_make_pcr_json_array()` /
//! `tpm2_parse_pcr_json_array()` (PCR lists), `tpm2_hash_alg_to_string()` /
//! `tpm2_asym_alg_to_string()` (bank and primary algorithm names);
//! `src/cryptsetup/cryptsetup-tokens/cryptsetup-token-systemd-tpm2.c` (`cryptsetup_token_validate`,
//! run by libcryptsetup on `token import`); `src/cryptenroll/cryptenroll-tpm2.c`
//! (`search_policy_hash`: `tpm2-policy-hash` as one hex string or an array of them).
//!
//! | field              | JSON                    | since | meaning                                   |
//! |--------------------|-------------------------|-------|-------------------------------------------|
//! | `type`             | `"systemd-tpm2"`        | 248   |                                           |
//! | `keyslots`         | `["N"]`                 | 248   | the keyslot the unsealed secret opens     |
//! | `tpm2-blob`        | base64, or array of them| 248   | marshalled `TPM2B_PRIVATE`+`TPM2B_PUBLIC` (array: one per sealing key, newer) |
//! | `tpm2-pcrs`        | array of ints 0..=23    | 248   | PCRs bound by value (may be empty)        |
//! | `tpm2-pcr-bank`    | `"sha1"`/`"sha256"`/`"sha384"`/`"sha512"` | 250 | optional; absent = chosen at unlock |
//! | `tpm2-primary-alg` | `"ecc"`/`"rsa"`         | 250   | optional; absent = ECC                    |
//! | `tpm2-policy-hash` | lowercase hex, or array | 248   | the sealed object's policy digest         |
//! | `tpm2-pin`         | bool                    | 251   | optional on read; PolicyAuthValue         |
//! | `tpm2_pcrlock`     | bool                    | 255   | policy through a pcrlock NV index         |
//! | `tpm2_pubkey_pcrs` | array of ints           | 252   | PCRs bound by a signed policy             |
//! | `tpm2_pubkey`      | base64 (of the PEM file)| 252   | key that signs those PCR policies          |
//! | `tpm2_salt`        | base64                  | newer | salt of the PIN (PBKDF2 before use)        |
//! | `tpm2_srk`         | base64                  | newer | serialized `ESYS_TR` of the SRK            |
//! | `tpm2_pcrlock_nv`  | base64                  | newer | `TPM2B_NV_PUBLIC` of the pcrlock NV index  |
//!
//! ("newer": added after systemd 252; nothing here depends on the exact release.) systemd
//! writes the optional fields only when they are set, and `tpm2-pin` (later also
//! `tpm2_pcrlock`) always. Warrant keeps the distinction between an absent field and one set to
//! `false`, so a token it reads is written back unchanged. Fields it does not know (a newer
//! systemd) are kept in [`SystemdTpm2Token::extra`].

use super::json::ObjectId;
use base64::Engine;
use serde_json::{Map, Value};
use thiserror::Error;

/// The token type string.
pub const SYSTEMD_TPM2: &str = "systemd-tpm2";
/// `TPM2_PCRS_MAX` (systemd `tpm2-util.h`).
pub const PCRS_MAX: u8 = 24;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a token object was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("missing field {field:?}")]
    Missing { field: &'static str },
    #[error("field {field:?} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field {field:?} is not canonical base64")]
    Base64 { field: &'static str },
    #[error("field {field:?} is not lowercase hex")]
    Hex { field: &'static str },
    #[error("field {field:?} is an empty array")]
    EmptyArray { field: &'static str },
    #[error("field {field:?}: PCR {pcr} is not below {PCRS_MAX}")]
    PcrOutOfRange { field: &'static str, pcr: u64 },
    #[error("field {field:?}: PCR {pcr} is listed twice")]
    DuplicatePcr { field: &'static str, pcr: u8 },
    #[error("keyslot reference {value:?} is not a decimal keyslot id")]
    BadKeyslot { value: String },
    #[error("tpm2-pcr-bank {name:?} is not sha1, sha256, sha384 or sha512")]
    UnknownBank { name: String },
    #[error("tpm2-primary-alg {name:?} is not ecc or rsa")]
    UnknownPrimaryAlg { name: String },
    #[error("token type is {found:?}, not {SYSTEMD_TPM2:?}")]
    NotSystemdTpm2 { found: String },
    /// `tpm2_parse_luks2_json`: "Public key PCR mask set, but not public key included".
    #[error("tpm2_pubkey_pcrs is set but tpm2_pubkey is missing")]
    PubkeyPcrsWithoutPubkey,
}

/// The PCR bank (`tpm2-pcr-bank`), by systemd's lowercase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcrBank {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl PcrBank {
    const ALL: [PcrBank; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];
    pub fn name(self) -> &'static str {
        match self {
            PcrBank::Sha1 => "sha1",
            PcrBank::Sha256 => "sha256",
            PcrBank::Sha384 => "sha384",
            PcrBank::Sha512 => "sha512",
        }
    }
}

/// The algorithm of the primary (storage root) key (`tpm2-primary-alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryAlg {
    Ecc,
    Rsa,
}

impl PrimaryAlg {
    pub fn name(self) -> &'static str {
        match self {
            PrimaryAlg::Ecc => "ecc",
            PrimaryAlg::Rsa => "rsa",
        }
    }
}

/// One value, or an array of them. Newer systemd writes `tpm2-blob` and `tpm2-policy-hash` as a
/// plain string when there is one sealed object and as an array when there are several; the
/// form read is the form written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// All values, in order.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A `systemd-tpm2` token. Binary fields hold the decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdTpm2Token {
    /// `keyslots`: systemd writes exactly one.
    pub keyslots: Vec<ObjectId>,
    /// `tpm2-blob`.
    pub blob: OneOrMany<Vec<u8>>,
    /// `tpm2-pcrs`, in the order stored.
    pub pcrs: Vec<u8>,
    /// `tpm2-pcr-bank`.
    pub pcr_bank: Option<PcrBank>,
    /// `tpm2-primary-alg`.
    pub primary_alg: Option<PrimaryAlg>,
    /// `tpm2-policy-hash`.
    pub policy_hash: OneOrMany<Vec<u8>>,
    /// `tpm2-pin`.
    pub pin: Option<bool>,
    /// `tpm2_pcrlock`.
    pub pcrlock: Option<bool>,
    /// `tpm2_pubkey_pcrs`.
    pub pubkey_pcrs: Option<Vec<u8>>,
    /// `tpm2_pubkey`: the bytes of the public key file (PEM, as systemd-cryptenroll reads it).
    pub pubkey: Option<Vec<u8>>,
    /// `tpm2_salt`.
    pub salt: Option<Vec<u8>>,
    /// `tpm2_srk`.
    pub srk: Option<Vec<u8>>,
    /// `tpm2_pcrlock_nv`.
    pub pcrlock_nv: Option<Vec<u8>>,
    /// Fields this version of Warrant does not know, kept as read.
    pub extra: Map<String, Value>,
}

/// The fields modelled above; everything else goes to `extra`.
const KNOWN: [&str; 14] = [
    "type",
    "keyslots",
    "tpm2-blob",
    "tpm2-pcrs",
    "tpm2-pcr-bank",
    "tpm2-primary-alg",
    "tpm2-policy-hash",
    "tpm2-pin",
    "tpm2_pcrlock",
    "tpm2_pubkey_pcrs",
    "tpm2_pubkey",
    "tpm2_salt",
    "tpm2_srk",
    "tpm2_pcrlock_nv",
];

/// A token's `keyslots`: an array of decimal strings (`cryptsetup_get_keyslot_from_token`).
pub(crate) fn keyslot_ids(value: Option<&Value>) -> Result<Vec<ObjectId>, TokenError> {
    let wrong = TokenError::WrongType {
        field: "keyslots",
        expected: "an array of strings",
    };
    let items = match value {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong),
        None => return Err(TokenError::Missing { field: "keyslots" }),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => {
                ObjectId::parse(s).ok_or_else(|| TokenError::BadKeyslot { value: s.clone() })
            }
            _ => Err(wrong.clone()),
        })
        .collect()
}

fn string<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, TokenError> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn boolean(object: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, TokenError> {
    match object.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TokenError::WrongType {
            field,
            expected: "a boolean",
        }),
    }
}

fn base64(text: &str, field: &'static str) -> Result<Vec<u8>, TokenError> {
    // STANDARD: padded, and trailing bits must be zero, so only the canonical text decodes and
    // re-encoding gives the same string.
    B64.decode(text).map_err(|_| TokenError::Base64 { field })
}

fn hex_lower(text: &str, field: &'static str) -> Result<Vec<u8>, TokenError> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(TokenError::Hex { field });
    }
    hex::decode(text).map_err(|_| TokenError::Hex { field })
}

fn optional_base64(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<u8>>, TokenError> {
    string(object, field)?.map(|s| base64(s, field)).transpose()
}

/// A string, or a non-empty array of strings, each decoded by `decode`.
fn one_or_many(
    object: &Map<String, Value>,
    field: &'static str,
    decode: fn(&str, &'static str) -> Result<Vec<u8>, TokenError>,
) -> Result<OneOrMany<Vec<u8>>, TokenError> {
    let wrong = TokenError::WrongType {
        field,
        expected: "a string or an array of strings",
    };
    match object.get(field) {
        None => Err(TokenError::Missing { field }),
        Some(Value::String(s)) => Ok(OneOrMany::One(decode(s, field)?)),
        Some(Value::Array(items)) if items.is_empty() => Err(TokenError::EmptyArray { field }),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => decode(s, field),
                _ => Err(wrong.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(OneOrMany::Many),
        Some(_) => Err(wrong),
    }
}

/// `tpm2_parse_pcr_json_array`: unsigned integers below 24. Warrant also refuses a PCR listed
/// twice, which systemd never writes (it builds the array from a bit mask).
fn pcr_array(value: &Value, field: &'static str) -> Result<Vec<u8>, TokenError> {
    let wrong = TokenError::WrongType {
        field,
        expected: "an array of PCR numbers",
    };
    let Value::Array(items) = value else {
        return Err(wrong);
    };
    let mut out: Vec<u8> = Vec::with_capacity(items.len().min(usize::from(PCRS_MAX)));
    for item in items {
        let n = item.as_u64().ok_or_else(|| wrong.clone())?;
        let pcr = u8::try_from(n)
            .ok()
            .filter(|p| *p < PCRS_MAX)
            .ok_or(TokenError::PcrOutOfRange { field, pcr: n })?;
        if out.contains(&pcr) {
            return Err(TokenError::DuplicatePcr { field, pcr });
        }
        out.push(pcr);
    }
    Ok(out)
}

fn encode_one_or_many(v: &OneOrMany<Vec<u8>>, encode: fn(&[u8]) -> String) -> Value {
    match v {
        OneOrMany::One(b) => Value::String(encode(b)),
        OneOrMany::Many(items) => {
            Value::Array(items.iter().map(|b| Value::String(encode(b))).collect())
        }
    }
}

fn pcr_value(pcrs: &[u8]) -> Value {
    Value::Array(pcrs.iter().map(|p| Value::from(*p)).collect())
}

impl SystemdTpm2Token {
    /// Parses a token object strictly: every known field must have systemd's type and encoding.
    pub fn from_object(object: &Map<String, Value>) -> Result<Self, TokenError> {
        match string(object, "type")? {
            Some(SYSTEMD_TPM2) => {}
            Some(other) => {
                return Err(TokenError::NotSystemdTpm2 {
                    found: other.to_string(),
                })
            }
            None => return Err(TokenError::Missing { field: "type" }),
        }
        let keyslots = keyslot_ids(object.get("keyslots"))?;
        let blob = one_or_many(object, "tpm2-blob", base64)?;
        let pcrs = pcr_array(
            object
                .get("tpm2-pcrs")
                .ok_or(TokenError::Missing { field: "tpm2-pcrs" })?,
            "tpm2-pcrs",
        )?;
        let pcr_bank = string(object, "tpm2-pcr-bank")?
            .map(|name| {
                PcrBank::ALL
                    .into_iter()
                    .find(|b| b.name() == name)
                    .ok_or_else(|| TokenError::UnknownBank {
                        name: name.to_string(),
                    })
            })
            .transpose()?;
        let primary_alg = string(object, "tpm2-primary-alg")?
            .map(|name| match name {
                "ecc" => Ok(PrimaryAlg::Ecc),
                "rsa" => Ok(PrimaryAlg::Rsa),
                _ => Err(TokenError::UnknownPrimaryAlg {
                    name: name.to_string(),
                }),
            })
            .transpose()?;
        let policy_hash = one_or_many(object, "tpm2-policy-hash", hex_lower)?;
        let pin = boolean(object, "tpm2-pin")?;
        let pcrlock = boolean(object, "tpm2_pcrlock")?;
        let pubkey_pcrs = object
            .get("tpm2_pubkey_pcrs")
            .map(|v| pcr_array(v, "tpm2_pubkey_pcrs"))
            .transpose()?;
        let pubkey = optional_base64(object, "tpm2_pubkey")?;
        if pubkey.is_none() && pubkey_pcrs.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(TokenError::PubkeyPcrsWithoutPubkey);
        }
        let extra = object
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(SystemdTpm2Token {
            keyslots,
            blob,
            pcrs,
            pcr_bank,
            primary_alg,
            policy_hash,
            pin,
            pcrlock,
            pubkey_pcrs,
            pubkey,
            salt: optional_base64(object, "tpm2_salt")?,
            srk: optional_base64(object, "tpm2_srk")?,
            pcrlock_nv: optional_base64(object, "tpm2_pcrlock_nv")?,
            extra,
        })
    }

    /// Parses a JSON text holding one token object (as `cryptsetup token export` prints it).
    pub fn from_json(text: &[u8]) -> Result<Self, TokenError> {
        match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(object)) => Self::from_object(&object),
            _ => Err(TokenError::WrongType {
                field: "token",
                expected: "a JSON object",
            }),
        }
    }

    /// The token as systemd would write it (absent optional fields stay absent).
    pub fn to_object(&self) -> Map<String, Value> {
        let b64 = |b: &[u8]| B64.encode(b);
        let hex = |b: &[u8]| hex::encode(b);
        let mut m = self.extra.clone();
        m.insert("type".into(), Value::from(SYSTEMD_TPM2));
        m.insert(
            "keyslots".into(),
            Value::Array(
                self.keyslots
                    .iter()
                    .map(|k| Value::String(k.to_string()))
                    .collect(),
            ),
        );
        m.insert("tpm2-blob".into(), encode_one_or_many(&self.blob, b64));
        m.insert("tpm2-pcrs".into(), pcr_value(&self.pcrs));
        if let Some(bank) = self.pcr_bank {
            m.insert("tpm2-pcr-bank".into(), Value::from(bank.name()));
        }
        if let Some(alg) = self.primary_alg {
            m.insert("tpm2-primary-alg".into(), Value::from(alg.name()));
        }
        m.insert(
            "tpm2-policy-hash".into(),
            encode_one_or_many(&self.policy_hash, hex),
        );
        let flags = [("tpm2-pin", self.pin), ("tpm2_pcrlock", self.pcrlock)];
        for (key, value) in flags {
            if let Some(b) = value {
                m.insert(key.into(), Value::Bool(b));
            }
        }
        if let Some(p) = &self.pubkey_pcrs {
            m.insert("tpm2_pubkey_pcrs".into(), pcr_value(p));
        }
        let blobs = [
            ("tpm2_pubkey", &self.pubkey),
            ("tpm2_salt", &self.salt),
            ("tpm2_srk", &self.srk),
            ("tpm2_pcrlock_nv", &self.pcrlock_nv),
        ];
        for (key, value) in blobs {
            if let Some(b) = value {
                m.insert(key.into(), Value::String(B64.encode(b)));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test JSON is an object"),
        }
    }

    /// The shape newer systemd writes for a PCR 7 + signed PCR 11 enrollment with a PIN.
    fn full() -> Value {
        json!({
            "type": "systemd-tpm2",
            "keyslots": ["1"],
            "tpm2-blob": B64.encode([0xaa; 158]),
            "tpm2-pcrs": [7],
            "tpm2-pcr-bank": "sha256",
            "tpm2-primary-alg": "ecc",
            "tpm2-policy-hash": "ab".repeat(32),
            "tpm2-pin": true,
            "tpm2_pcrlock": false,
            "tpm2_pubkey_pcrs": [11],
            "tpm2_pubkey": B64.encode(b"-----BEGIN PUBLIC KEY-----\n...\n"),
            "tpm2_salt": B64.encode([1; 16]),
            "tpm2_srk": B64.encode([2; 120]),
            "tpm2_pcrlock_nv": B64.encode([3; 40]),
            "x-future": {"kept": [1, 2]}
        })
    }

    #[test]
    fn round_trips_every_field() {
        let v = full();
        let t = SystemdTpm2Token::from_object(&object(v.clone())).unwrap();
        assert_eq!(t.keyslots, vec![ObjectId(1)]);
        assert_eq!(t.pcrs, vec![7]);
        assert_eq!(t.pubkey_pcrs, Some(vec![11]));
        assert_eq!(t.policy_hash, OneOrMany::One(vec![0xab; 32]));
        assert_eq!(t.pcr_bank, Some(PcrBank::Sha256));
        assert_eq!(t.primary_alg, Some(PrimaryAlg::Ecc));
        assert_eq!(t.extra.len(), 1);
        assert_eq!(Value::Object(t.to_object()), v);
    }

    #[test]
    fn minimal_systemd_248_token_round_trips() {
        let v = json!({
            "type": "systemd-tpm2", "keyslots": ["0"], "tpm2-blob": "AAEC",
            "tpm2-pcrs": [], "tpm2-policy-hash": "00ff"
        });
        let t = SystemdTpm2Token::from_object(&object(v.clone())).unwrap();
        assert_eq!((t.pin, t.pcr_bank, t.pcrlock), (None, None, None));
        assert_eq!(Value::Object(t.to_object()), v);
    }

    #[test]
    fn multi_blob_arrays_round_trip() {
        let v = json!({
            "type": "systemd-tpm2", "keyslots": ["2"], "tpm2-blob": ["AAEC", "AwQF"],
            "tpm2-pcrs": [0, 7], "tpm2-policy-hash": ["00ff", "ff00"], "tpm2-pin": false
        });
        let t = SystemdTpm2Token::from_object(&object(v.clone())).unwrap();
        assert_eq!(t.blob.as_slice().len(), 2);
        assert_eq!(Value::Object(t.to_object()), v);
    }

    #[test]
    fn wrong_types_and_encodings_are_named() {
        let cases: Vec<(&str, Value, TokenError)> = vec![
            (
                "tpm2-pcrs",
                json!("7"),
                TokenError::WrongType {
                    field: "tpm2-pcrs",
                    expected: "an array of PCR numbers",
                },
            ),
            (
                "tpm2-pcrs",
                json!([24]),
                TokenError::PcrOutOfRange {
                    field: "tpm2-pcrs",
                    pcr: 24,
                },
            ),
            (
                "tpm2-pcrs",
                json!([-1]),
                TokenError::WrongType {
                    field: "tpm2-pcrs",
                    expected: "an array of PCR numbers",
                },
            ),
            (
                "tpm2-pcrs",
                json!([7, 7]),
                TokenError::DuplicatePcr {
                    field: "tpm2-pcrs",
                    pcr: 7,
                },
            ),
            (
                "tpm2-blob",
                json!("not base64!"),
                TokenError::Base64 { field: "tpm2-blob" },
            ),
            (
                "tpm2-blob",
                json!("AAF="),
                TokenError::Base64 { field: "tpm2-blob" },
            ),
            (
                "tpm2-blob",
                json!([]),
                TokenError::EmptyArray { field: "tpm2-blob" },
            ),
            (
                "tpm2-blob",
                json!(5),
                TokenError::WrongType {
                    field: "tpm2-blob",
                    expected: "a string or an array of strings",
                },
            ),
            (
                "tpm2-policy-hash",
                json!("AB"),
                TokenError::Hex {
                    field: "tpm2-policy-hash",
                },
            ),
            (
                "tpm2-policy-hash",
                json!("abc"),
                TokenError::Hex {
                    field: "tpm2-policy-hash",
                },
            ),
            (
                "tpm2-pin",
                json!("yes"),
                TokenError::WrongType {
                    field: "tpm2-pin",
                    expected: "a boolean",
                },
            ),
            (
                "tpm2-pcr-bank",
                json!("SHA256"),
                TokenError::UnknownBank {
                    name: "SHA256".into(),
                },
            ),
            (
                "tpm2-primary-alg",
                json!("dsa"),
                TokenError::UnknownPrimaryAlg { name: "dsa".into() },
            ),
            (
                "keyslots",
                json!([1]),
                TokenError::WrongType {
                    field: "keyslots",
                    expected: "an array of strings",
                },
            ),
            (
                "keyslots",
                json!(["01"]),
                TokenError::BadKeyslot { value: "01".into() },
            ),
            (
                "tpm2_srk",
                json!(true),
                TokenError::WrongType {
                    field: "tpm2_srk",
                    expected: "a string",
                },
            ),
        ];
        for (field, value, want) in cases {
            let mut m = object(full());
            m.insert(field.into(), value.clone());
            assert_eq!(
                SystemdTpm2Token::from_object(&m),
                Err(want),
                "{field} = {value}"
            );
        }
        for field in [
            "tpm2-blob",
            "tpm2-pcrs",
            "tpm2-policy-hash",
            "keyslots",
            "type",
        ] {
            let mut m = object(full());
            m.remove(field);
            assert_eq!(
                SystemdTpm2Token::from_object(&m),
                Err(TokenError::Missing {
                    field: KNOWN.iter().find(|k| **k == field).copied().unwrap()
                }),
            );
        }
        let mut m = object(full());
        m.remove("tpm2_pubkey");
        assert_eq!(
            SystemdTpm2Token::from_object(&m),
            Err(TokenError::PubkeyPcrsWithoutPubkey)
        );
    }
}
