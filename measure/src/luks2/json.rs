//! The JSON area of a LUKS2 header (LUKS2 On-Disk Format Specification §3; cryptsetup
//! `lib/luks2/luks2_json_metadata.c`, `LUKS2_hdr_validate`).
//!
//! Every object Warrant knows is a typed struct; every field it does not know is kept in that
//! struct's `extra` map and written back, so a rewrite by Warrant drops nothing cryptsetup or
//! systemd put there. Tokens of a type other than `systemd-tpm2` are kept as raw JSON objects.
//! 64-bit numbers are JSON strings of decimal digits in LUKS2 (`"offset": "16777216"`); object
//! ids are decimal strings too. Both are parsed strictly: digits only, no leading zeros, so what
//! is written back is the text that was read.

use super::tpm2_token::{SystemdTpm2Token, TokenError, SYSTEMD_TPM2};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use thiserror::Error;

/// `LUKS2_KEYSLOTS_MAX`, `LUKS2_TOKENS_MAX`, `LUKS2_SEGMENT_MAX` (cryptsetup `luks2.h`).
pub const MAX_OBJECTS: u32 = 32;

/// Parses a canonical unsigned decimal: ASCII digits only, no sign, no leading zero.
fn canonical_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical {
        text.parse().ok()
    } else {
        None
    }
}

/// A 64-bit number stored as a decimal string (`json_object_get_uint64` on a string in
/// cryptsetup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonU64(pub u64);

impl Serialize for JsonU64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JsonU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        canonical_decimal(&text).map(JsonU64).ok_or_else(|| {
            de::Error::invalid_value(de::Unexpected::Str(&text), &"a decimal string")
        })
    }
}

/// The id of a keyslot, token, segment or digest: a decimal string used as object key and in
/// reference arrays (`"keyslots": ["0"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub u32);

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ObjectId {
    /// Parses a canonical decimal id.
    pub fn parse(text: &str) -> Option<Self> {
        canonical_decimal(text)
            .and_then(|v| u32::try_from(v).ok())
            .map(ObjectId)
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ObjectId::parse(&text).ok_or_else(|| {
            de::Error::invalid_value(de::Unexpected::Str(&text), &"a decimal object id")
        })
    }
}

/// A keyslot (`keyslots` section, spec §3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyslot {
    /// `luks2`, or `reencrypt` during an online reencryption.
    #[serde(rename = "type")]
    pub kind: String,
    pub key_size: u32,
    pub area: KeyslotArea,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<Kdf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub af: Option<Af>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where a keyslot's encrypted key material lives (`area`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyslotArea {
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: JsonU64,
    pub size: JsonU64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The key derivation of a keyslot (`kdf`: pbkdf2, argon2i, argon2id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kdf {
    #[serde(rename = "type")]
    pub kind: String,
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The anti-forensic splitter of a keyslot (`af`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Af {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A segment's size: a number of bytes, or `dynamic` (up to the end of the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentSize {
    Dynamic,
    Bytes(u64),
}

impl Serialize for SegmentSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SegmentSize::Dynamic => s.serialize_str("dynamic"),
            SegmentSize::Bytes(n) => s.collect_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for SegmentSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "dynamic" {
            return Ok(SegmentSize::Dynamic);
        }
        canonical_decimal(&text)
            .map(SegmentSize::Bytes)
            .ok_or_else(|| {
                de::Error::invalid_value(
                    de::Unexpected::Str(&text),
                    &"\"dynamic\" or a decimal string",
                )
            })
    }
}

/// A data segment (`segments` section, spec §3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// `crypt` (or `linear` during reencryption).
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: JsonU64,
    pub size: SegmentSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iv_tweak: Option<JsonU64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume-key digest (`digests` section, spec §3.5): binds keyslots to segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// `pbkdf2`, the only digest type cryptsetup knows.
    #[serde(rename = "type")]
    pub kind: String,
    pub keyslots: Vec<ObjectId>,
    pub segments: Vec<ObjectId>,
    pub hash: String,
    pub iterations: u32,
    /// Base64.
    pub salt: String,
    /// Base64.
    pub digest: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Persistent settings (`config` section, spec §3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Size of the JSON area: `hdr_size - 4096`.
    pub json_size: JsonU64,
    /// Size of the binary keyslots area that follows both header copies.
    pub keyslots_size: JsonU64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A token whose type Warrant does not model, kept exactly as read. Like cryptsetup
/// (`LUKS2_token_validate`), it must still have a string `type` and a `keyslots` array of
/// keyslot ids.
#[derive(Debug, Clone, PartialEq)]
pub struct RawToken {
    kind: String,
    keyslots: Vec<ObjectId>,
    object: Map<String, Value>,
}

impl RawToken {
    /// Checks the generic token fields of `object` and keeps it whole.
    pub fn new(object: Map<String, Value>) -> Result<Self, TokenError> {
        let kind = match object.get("type") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(TokenError::WrongType {
                    field: "type",
                    expected: "a non-empty string",
                })
            }
            None => return Err(TokenError::Missing { field: "type" }),
        };
        let keyslots = super::tpm2_token::keyslot_ids(object.get("keyslots"))?;
        Ok(RawToken {
            kind,
            keyslots,
            object,
        })
    }
    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn keyslots(&self) -> &[ObjectId] {
        &self.keyslots
    }
    pub fn object(&self) -> &Map<String, Value> {
        &self.object
    }
}

/// A token (`tokens` section, spec §3.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    SystemdTpm2(SystemdTpm2Token),
    Other(RawToken),
}

impl Token {
    /// Parses one token object: `systemd-tpm2` strictly, anything else as a [`RawToken`].
    pub fn from_object(object: Map<String, Value>) -> Result<Self, TokenError> {
        match object.get("type") {
            Some(Value::String(t)) if t == SYSTEMD_TPM2 => {
                SystemdTpm2Token::from_object(&object).map(Token::SystemdTpm2)
            }
            _ => RawToken::new(object).map(Token::Other),
        }
    }

    /// The token as a JSON object.
    pub fn to_object(&self) -> Map<String, Value> {
        match self {
            Token::SystemdTpm2(t) => t.to_object(),
            Token::Other(raw) => raw.object.clone(),
        }
    }

    pub fn keyslots(&self) -> &[ObjectId] {
        match self {
            Token::SystemdTpm2(t) => &t.keyslots,
            Token::Other(raw) => &raw.keyslots,
        }
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_object().serialize(s)
    }
}

/// The whole JSON area, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub keyslots: BTreeMap<ObjectId, Keyslot>,
    pub tokens: BTreeMap<ObjectId, Token>,
    pub segments: BTreeMap<ObjectId, Segment>,
    pub digests: BTreeMap<ObjectId, Digest>,
    pub config: Config,
    /// Top-level members other than the five above.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawMetadata {
    keyslots: BTreeMap<ObjectId, Keyslot>,
    tokens: BTreeMap<ObjectId, Map<String, Value>>,
    segments: BTreeMap<ObjectId, Segment>,
    digests: BTreeMap<ObjectId, Digest>,
    config: Config,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Why a JSON area, or a JSON text handed to the writer, was refused.
#[derive(Debug, Error)]
pub enum JsonError {
    /// No NUL byte in the JSON area: the text fills it entirely (cryptsetup requires a
    /// terminating NUL, `validate_json_area`).
    #[error("JSON area of {area_len} bytes has no terminating NUL")]
    NotTerminated { area_len: usize },
    /// The area does not start with `{`.
    #[error("JSON area does not start with '{{'")]
    NotObject,
    /// A non-zero byte after the terminating NUL, at `offset` within the area.
    #[error("non-zero byte at offset {offset} of the JSON area, after the JSON text")]
    TrailingBytes { offset: usize },
    /// Not JSON, a duplicate key, or a member of the wrong type (line and column in the text).
    #[error("JSON: {source}")]
    Syntax {
        #[source]
        source: serde_json::Error,
    },
    #[error("token {id}: {source}")]
    Token {
        id: ObjectId,
        #[source]
        source: TokenError,
    },
    #[error("{section} id {id} is not below {MAX_OBJECTS}")]
    IdOutOfRange { section: &'static str, id: ObjectId },
    #[error("{section} {id} refers to {target} {target_id}, which does not exist")]
    DanglingReference {
        section: &'static str,
        id: ObjectId,
        target: &'static str,
        target_id: ObjectId,
    },
    #[error("config.json_size is {recorded}, the JSON area is {expected} bytes")]
    JsonSize { recorded: u64, expected: u64 },
    /// The serialised JSON does not fit the area with its terminating NUL (writer).
    #[error("JSON text of {len} bytes does not fit a JSON area of {area_len} bytes")]
    TooLarge { len: usize, area_len: usize },
}

/// Accepts any JSON value and fails on a duplicate key in any object. serde_json (and json-c)
/// would silently keep the last of two equal keys; a header with two different values for one
/// field could then mean different things to different readers, so Warrant refuses it.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

impl Metadata {
    /// Parses a JSON text (without the NUL padding) and validates it against a JSON area of
    /// `area_len` bytes.
    pub fn from_json(text: &[u8], area_len: u64) -> Result<Self, JsonError> {
        serde_json::from_slice::<NoDuplicateKeys>(text)
            .map_err(|source| JsonError::Syntax { source })?;
        let raw: RawMetadata =
            serde_json::from_slice(text).map_err(|source| JsonError::Syntax { source })?;
        let mut tokens = BTreeMap::new();
        for (id, object) in raw.tokens {
            let token =
                Token::from_object(object).map_err(|source| JsonError::Token { id, source })?;
            tokens.insert(id, token);
        }
        let metadata = Metadata {
            keyslots: raw.keyslots,
            tokens,
            segments: raw.segments,
            digests: raw.digests,
            config: raw.config,
            extra: raw.extra,
        };
        metadata.validate(area_len)?;
        Ok(metadata)
    }

    /// Parses a whole JSON area: the text, a NUL, and zeros to the end (cryptsetup
    /// `validate_json_area`, with the text ending exactly where the NUL is).
    pub fn from_area(area: &[u8]) -> Result<Self, JsonError> {
        let end = area
            .iter()
            .position(|b| *b == 0)
            .ok_or(JsonError::NotTerminated {
                area_len: area.len(),
            })?;
        let (text, tail) = area.split_at(end);
        if let Some(i) = tail.iter().position(|b| *b != 0) {
            return Err(JsonError::TrailingBytes { offset: end + i });
        }
        if text.first() != Some(&b'{') {
            return Err(JsonError::NotObject);
        }
        Self::from_json(text, area.len() as u64)
    }

    /// The cross-object checks Warrant makes (a subset of cryptsetup's `LUKS2_hdr_validate`):
    /// id ranges, references between sections, and `config.json_size`.
    pub fn validate(&self, area_len: u64) -> Result<(), JsonError> {
        if self.config.json_size.0 != area_len {
            return Err(JsonError::JsonSize {
                recorded: self.config.json_size.0,
                expected: area_len,
            });
        }
        let ranges: [(&'static str, Vec<ObjectId>); 3] = [
            ("keyslot", self.keyslots.keys().copied().collect()),
            ("token", self.tokens.keys().copied().collect()),
            ("segment", self.segments.keys().copied().collect()),
        ];
        for (section, ids) in ranges {
            if let Some(id) = ids.into_iter().find(|id| id.0 >= MAX_OBJECTS) {
                return Err(JsonError::IdOutOfRange { section, id });
            }
        }
        let dangling =
            |section, id, target, ids: &[ObjectId], exists: &dyn Fn(&ObjectId) -> bool| match ids
                .iter()
                .find(|t| !exists(t))
            {
                Some(target_id) => Err(JsonError::DanglingReference {
                    section,
                    id,
                    target,
                    target_id: *target_id,
                }),
                None => Ok(()),
            };
        for (id, token) in &self.tokens {
            dangling("token", *id, "keyslot", token.keyslots(), &|k| {
                self.keyslots.contains_key(k)
            })?;
        }
        for (id, digest) in &self.digests {
            dangling("digest", *id, "keyslot", &digest.keyslots, &|k| {
                self.keyslots.contains_key(k)
            })?;
            dangling("digest", *id, "segment", &digest.segments, &|s| {
                self.segments.contains_key(s)
            })?;
        }
        Ok(())
    }

    /// The compact JSON text Warrant writes (no whitespace, `/` not escaped, as cryptsetup's
    /// `JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE`). Keys are in sorted order.
    pub fn to_json(&self) -> Result<Vec<u8>, JsonError> {
        serde_json::to_vec(self).map_err(|source| JsonError::Syntax { source })
    }

    /// The lowest free token id, as `cryptsetup token import` picks when given no id.
    pub fn free_token_id(&self) -> Option<ObjectId> {
        (0..MAX_OBJECTS)
            .map(ObjectId)
            .find(|id| !self.tokens.contains_key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(canonical_decimal("0"), Some(0));
        assert_eq!(canonical_decimal("16777216"), Some(16_777_216));
        for bad in ["", "01", "+1", "-1", "1 ", "0x10", "18446744073709551616"] {
            assert_eq!(canonical_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(ObjectId::parse("4294967296"), None);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [r#"{"a":1,"a":2}"#, r#"{"x":[{"b":1,"b":1}]}"#] {
            assert!(
                serde_json::from_str::<NoDuplicateKeys>(text).is_err(),
                "{text}"
            );
        }
        assert!(serde_json::from_str::<NoDuplicateKeys>(r#"{"a":{"a":[1,{"a":2}]}}"#).is_ok());
    }
}
