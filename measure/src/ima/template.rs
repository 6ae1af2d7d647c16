//! Template fields (Documentation/security/IMA-templates.rst, `ima_template_lib.c`): typed
//! decoding from the kernel's field bytes (binary lists) and from their printed form (ASCII
//! lists), and re-encoding of the printed form into the bytes the kernel hashed.
//!
//! Field encodings, as the kernel holds them (`ima_eventdigest_init_common`,
//! `ima_eventname_init_common`, `ima_write_template_field_data`):
//! - `d`: the bare digest (SHA-1, 20 bytes). Printed as hex.
//! - `d-ng`: `<algo> ':' NUL <digest>`, `<algo>` from `hash_algo_name[]`. Printed `algo:hex`.
//! - `d-ngv2`: `<type> ':' <algo> ':' NUL <digest>`, `<type>` being `ima` or `verity`. Printed
//!   `type:algo:hex`.
//! - `d-modsig`: like `d-ng`, or empty when the file has no appended signature.
//! - `n-ng`: the name and a terminating NUL. Printed as the string.
//! - `n` (`ima` template): the name, at most 255 bytes; hashed padded with zeros to 256.
//! - `sig`, `buf`, `modsig`: raw bytes, possibly empty. Printed as hex (nothing when empty).
//!
//! A violation records the digest fields as zeros whose length varies with the kernel version
//! (`IMA_DIGEST_SIZE`, 20 bytes, in older kernels; `hash_digest_size[algo]` in newer ones), so
//! digest lengths are only enforced on entries that are not violations.

use super::algo::{kernel_hash_algo, KernelHashAlgo};
use super::{ByteOrder, ImaError, Location, IMA_DIGEST_SIZE, IMA_EVENT_NAME_LEN_MAX};
use super::{IMA_TEMPLATE_NAME, MAX_TEMPLATE_FIELDS};
use crate::alg::HashAlg;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;

/// The kind of digest in a `d-ngv2` field (`digest_type_name[]` in `ima_template_lib.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestType {
    /// A digest of the file data.
    Ima,
    /// An fs-verity file digest.
    Verity,
}

impl DigestType {
    fn name(self) -> &'static str {
        match self {
            DigestType::Ima => "ima",
            DigestType::Verity => "verity",
        }
    }
}

/// A file (or buffer) digest from a `d-ng`, `d-ngv2` or `d-modsig` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// Present for `d-ngv2` fields only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_type: Option<DigestType>,
    /// The kernel's name of the algorithm (`sha256`, `sm3`, `sha3-256`...).
    pub algorithm: &'static str,
    #[serde(serialize_with = "crate::serde_hex")]
    pub digest: Vec<u8>,
}

impl FileDigest {
    /// The algorithm as a TPM bank algorithm, when it is one Warrant computes.
    pub fn hash_alg(&self) -> Option<HashAlg> {
        kernel_hash_algo(self.algorithm.as_bytes()).and_then(|a| a.hash_alg)
    }

    /// The field bytes the kernel holds: `[type ':'] algo ':' NUL digest`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.algorithm.len() + 10 + self.digest.len());
        if let Some(t) = self.digest_type {
            out.extend_from_slice(t.name().as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(self.algorithm.as_bytes());
        out.extend_from_slice(b":\0");
        out.extend_from_slice(&self.digest);
        out
    }
}

/// A file path or event name, as bytes: Linux paths need not be UTF-8. Serialized as a string
/// when it is UTF-8 and as `{"hex": ...}` otherwise, so nothing is lost or made up.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(Vec<u8>);

impl EventName {
    pub fn new(bytes: Vec<u8>) -> Self {
        EventName(bytes)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The name when it is UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.escape_ascii().to_string())
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_str() {
            Some(text) => s.serialize_str(text),
            None => {
                let mut st = s.serialize_struct("EventName", 1)?;
                st.serialize_field("hex", &hex::encode(&self.0))?;
                st.end()
            }
        }
    }
}

/// The fields of a template Warrant does not decode, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherFields {
    /// From a binary list: each field's bytes as the kernel stored them.
    Binary(#[serde(serialize_with = "hex_list")] Vec<Vec<u8>>),
    /// From an ASCII list: the space-separated tokens after the template name.
    Ascii(Vec<EventName>),
}

fn hex_list<S: Serializer>(fields: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(fields.iter().map(hex::encode))
}

/// A decoded template. Field names follow IMA-templates.rst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum Template {
    /// `ima`: `d|n`, SHA-1 file digest and a name of at most 255 bytes.
    #[serde(rename = "ima")]
    Ima {
        #[serde(serialize_with = "crate::serde_hex")]
        digest: Vec<u8>,
        name: EventName,
    },
    /// `ima-ng`: `d-ng|n-ng`.
    #[serde(rename = "ima-ng")]
    ImaNg { digest: FileDigest, name: EventName },
    /// `ima-ngv2`: `d-ngv2|n-ng`.
    #[serde(rename = "ima-ngv2")]
    ImaNgV2 { digest: FileDigest, name: EventName },
    /// `ima-sig`: `d-ng|n-ng|sig`; `signature` is the `security.ima` xattr (or the EVM portable
    /// signature), empty when the file has none.
    #[serde(rename = "ima-sig")]
    ImaSig {
        digest: FileDigest,
        name: EventName,
        #[serde(serialize_with = "crate::serde_hex")]
        signature: Vec<u8>,
    },
    /// `ima-sigv2`: `d-ngv2|n-ng|sig`.
    #[serde(rename = "ima-sigv2")]
    ImaSigV2 {
        digest: FileDigest,
        name: EventName,
        #[serde(serialize_with = "crate::serde_hex")]
        signature: Vec<u8>,
    },
    /// `ima-buf`: `d-ng|n-ng|buf`, a measured buffer (`kexec-cmdline`, keys, critical data).
    #[serde(rename = "ima-buf")]
    ImaBuf {
        digest: FileDigest,
        name: EventName,
        #[serde(serialize_with = "crate::serde_hex")]
        buffer: Vec<u8>,
    },
    /// `ima-modsig`: `d-ng|n-ng|sig|d-modsig|modsig`; the last two are empty (`None`, empty)
    /// when the file has no appended signature.
    #[serde(rename = "ima-modsig")]
    ImaModsig {
        digest: FileDigest,
        name: EventName,
        #[serde(serialize_with = "crate::serde_hex")]
        signature: Vec<u8>,
        modsig_digest: Option<FileDigest>,
        #[serde(serialize_with = "crate::serde_hex")]
        modsig: Vec<u8>,
    },
    /// Any other template, kept verbatim.
    #[serde(rename = "other")]
    Other { fields: OtherFields },
}

impl Template {
    /// The file (or buffer) digest, for every decoded template.
    pub fn file_digest(&self) -> Option<FileDigestRef<'_>> {
        match self {
            Template::Ima { digest, .. } => Some(FileDigestRef {
                algorithm: "sha1",
                digest,
            }),
            Template::ImaNg { digest, .. }
            | Template::ImaNgV2 { digest, .. }
            | Template::ImaSig { digest, .. }
            | Template::ImaSigV2 { digest, .. }
            | Template::ImaBuf { digest, .. }
            | Template::ImaModsig { digest, .. } => Some(FileDigestRef {
                algorithm: digest.algorithm,
                digest: &digest.digest,
            }),
            Template::Other { .. } => None,
        }
    }

    /// The path or event name, for every decoded template.
    pub fn name(&self) -> Option<&EventName> {
        match self {
            Template::Ima { name, .. }
            | Template::ImaNg { name, .. }
            | Template::ImaNgV2 { name, .. }
            | Template::ImaSig { name, .. }
            | Template::ImaSigV2 { name, .. }
            | Template::ImaBuf { name, .. }
            | Template::ImaModsig { name, .. } => Some(name),
            Template::Other { .. } => None,
        }
    }

    /// The fields as the kernel holds them, for the `u32`-length-prefixed templates (`None` for
    /// `ima`, whose hash input is special, and for [`Template::Other`] from ASCII).
    pub fn kernel_fields(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Template::Ima { .. } => None,
            Template::ImaNg { digest, name } | Template::ImaNgV2 { digest, name } => {
                Some(vec![digest.encode(), nul_terminated(name)])
            }
            Template::ImaSig {
                digest,
                name,
                signature,
            }
            | Template::ImaSigV2 {
                digest,
                name,
                signature,
            } => Some(vec![
                digest.encode(),
                nul_terminated(name),
                signature.clone(),
            ]),
            Template::ImaBuf {
                digest,
                name,
                buffer,
            } => Some(vec![digest.encode(), nul_terminated(name), buffer.clone()]),
            Template::ImaModsig {
                digest,
                name,
                signature,
                modsig_digest,
                modsig,
            } => Some(vec![
                digest.encode(),
                nul_terminated(name),
                signature.clone(),
                modsig_digest
                    .as_ref()
                    .map(FileDigest::encode)
                    .unwrap_or_default(),
                modsig.clone(),
            ]),
            Template::Other {
                fields: OtherFields::Binary(fields),
            } => Some(fields.clone()),
            Template::Other {
                fields: OtherFields::Ascii(_),
            } => None,
        }
    }

    /// The bytes the kernel hashes into the template hash (`ima_calc_field_array_hash_tfm`),
    /// with field lengths in `order`; `None` when they cannot be rebuilt.
    pub fn hash_input(&self, order: ByteOrder) -> Option<Vec<u8>> {
        if let Template::Ima { digest, name } = self {
            return Some(ima_hash_input(digest, name.as_bytes()));
        }
        let fields = self.kernel_fields()?;
        let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
        for f in fields {
            // Fields are bounded by MAX_TEMPLATE_DATA_LEN (parsed) or by the input line.
            out.extend_from_slice(&order.u32_bytes(u32::try_from(f.len()).unwrap_or(u32::MAX)));
            out.extend_from_slice(&f);
        }
        Some(out)
    }
}

/// A borrowed view of a template's file digest and its kernel algorithm name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigestRef<'a> {
    pub algorithm: &'static str,
    pub digest: &'a [u8],
}

fn nul_terminated(name: &EventName) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// `d[20] || n` padded with zeros to `IMA_EVENT_NAME_LEN_MAX + 1` bytes: the hash input of the
/// `ima` template. Names are at most 255 bytes (checked by the parsers), so the padding is never
/// negative.
pub(crate) fn ima_hash_input(digest: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(digest.len() + IMA_EVENT_NAME_LEN_MAX + 1);
    out.extend_from_slice(digest);
    out.extend_from_slice(name);
    out.resize(digest.len() + name.len().max(IMA_EVENT_NAME_LEN_MAX + 1), 0);
    out
}

/// Number of fields of each decoded template, and whether its digest field is `d-ngv2`.
fn layout(template: &str) -> Option<(usize, bool)> {
    match template {
        "ima-ng" => Some((2, false)),
        "ima-ngv2" => Some((2, true)),
        "ima-sig" | "ima-buf" => Some((3, false)),
        "ima-sigv2" => Some((3, true)),
        "ima-modsig" => Some((5, false)),
        _ => None,
    }
}

fn digest_field_name(v2: bool) -> &'static str {
    if v2 {
        "d-ngv2"
    } else {
        "d-ng"
    }
}

/// Validates the `[type:]algo` prefix of a digest field and the digest length.
fn digest_from_parts(
    prefix: &[u8],
    digest: &[u8],
    v2: bool,
    field: &'static str,
    violation: bool,
    at: Location,
) -> Result<FileDigest, ImaError> {
    let (digest_type, algo) = if v2 {
        let Some(colon) = prefix.iter().position(|b| *b == b':') else {
            return Err(ImaError::DigestField { at, field });
        };
        let (t, rest) = prefix.split_at(colon);
        let digest_type = match t {
            b"ima" => DigestType::Ima,
            b"verity" => DigestType::Verity,
            _ => {
                return Err(ImaError::UnknownDigestType {
                    at,
                    field,
                    digest_type: String::from_utf8_lossy(t).into_owned(),
                })
            }
        };
        (Some(digest_type), rest.get(1..).unwrap_or_default())
    } else {
        (None, prefix)
    };
    let algo: &KernelHashAlgo =
        kernel_hash_algo(algo).ok_or_else(|| ImaError::UnknownDigestAlgorithm {
            at,
            field,
            algorithm: String::from_utf8_lossy(algo).into_owned(),
        })?;
    if !violation && digest.len() != algo.digest_len {
        return Err(ImaError::DigestLength {
            at,
            field,
            algorithm: algo.name,
            len: digest.len(),
            expected: algo.digest_len,
        });
    }
    Ok(FileDigest {
        digest_type,
        algorithm: algo.name,
        digest: digest.to_vec(),
    })
}

/// Decodes a `d-ng`/`d-ngv2`/`d-modsig` field from its kernel bytes `prefix ':' NUL digest`.
fn decode_digest_bytes(
    bytes: &[u8],
    v2: bool,
    field: &'static str,
    violation: bool,
    at: Location,
) -> Result<FileDigest, ImaError> {
    // The prefix never contains NUL; the first NUL ends it and must follow a ':'.
    let nul = bytes
        .iter()
        .position(|b| *b == 0)
        .ok_or(ImaError::DigestField { at, field })?;
    let (head, tail) = bytes.split_at(nul);
    let prefix = head
        .strip_suffix(b":")
        .ok_or(ImaError::DigestField { at, field })?;
    let digest = tail.get(1..).unwrap_or_default();
    digest_from_parts(prefix, digest, v2, field, violation, at)
}

/// Decodes an `n-ng` field: the name and exactly one terminating NUL.
fn decode_ng_name(bytes: &[u8], at: Location) -> Result<EventName, ImaError> {
    let field = "n-ng";
    let name = bytes
        .strip_suffix(b"\0")
        .ok_or(ImaError::NameNotTerminated { at, field })?;
    if name.contains(&0) {
        return Err(ImaError::NameHasNul { at, field });
    }
    Ok(EventName(name.to_vec()))
}

/// Decodes the `n` field of the `ima` template from a binary list: the name, possibly followed
/// by NUL padding (Linux 3.13 wrote the whole 256-byte buffer), at most 255 bytes.
pub(crate) fn decode_ima_name(bytes: &[u8], at: Location) -> Result<EventName, ImaError> {
    let field = "n";
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let name = bytes.get(..end).unwrap_or_default();
    if name.contains(&0) {
        return Err(ImaError::NameHasNul { at, field });
    }
    if name.len() > IMA_EVENT_NAME_LEN_MAX {
        return Err(ImaError::NameTooLong {
            at,
            field,
            len: name.len(),
            max: IMA_EVENT_NAME_LEN_MAX,
        });
    }
    Ok(EventName(name.to_vec()))
}

/// Decodes the fields of a binary entry (each with its absolute offset) into a typed template.
pub(crate) fn decode_binary(
    template: &str,
    fields: &[(usize, &[u8])],
    violation: bool,
    entry_at: Location,
) -> Result<Template, ImaError> {
    let Some((count, v2)) = layout(template) else {
        return Ok(Template::Other {
            fields: OtherFields::Binary(fields.iter().map(|(_, f)| f.to_vec()).collect()),
        });
    };
    let [(d_at, d), (n_at, n), rest @ ..] = fields else {
        return Err(field_count(template, count, fields.len(), entry_at));
    };
    if fields.len() != count {
        return Err(field_count(template, count, fields.len(), entry_at));
    }
    let digest = decode_digest_bytes(
        d,
        v2,
        digest_field_name(v2),
        violation,
        Location::Offset(*d_at),
    )?;
    let name = decode_ng_name(n, Location::Offset(*n_at))?;
    Ok(match (template, rest) {
        ("ima-ng", []) => Template::ImaNg { digest, name },
        ("ima-ngv2", []) => Template::ImaNgV2 { digest, name },
        ("ima-sig", [(_, sig)]) => Template::ImaSig {
            digest,
            name,
            signature: sig.to_vec(),
        },
        ("ima-sigv2", [(_, sig)]) => Template::ImaSigV2 {
            digest,
            name,
            signature: sig.to_vec(),
        },
        ("ima-buf", [(_, buf)]) => Template::ImaBuf {
            digest,
            name,
            buffer: buf.to_vec(),
        },
        ("ima-modsig", [(_, sig), (dm_at, dm), (_, modsig)]) => Template::ImaModsig {
            digest,
            name,
            signature: sig.to_vec(),
            modsig_digest: if dm.is_empty() {
                None
            } else {
                Some(decode_digest_bytes(
                    dm,
                    false,
                    "d-modsig",
                    violation,
                    Location::Offset(*dm_at),
                )?)
            },
            modsig: modsig.to_vec(),
        },
        _ => return Err(field_count(template, count, fields.len(), entry_at)),
    })
}

fn field_count(template: &str, expected: usize, found: usize, at: Location) -> ImaError {
    ImaError::FieldCount {
        at,
        template: template.to_owned(),
        expected,
        found,
    }
}

/// Splits `s` at the first space.
fn split_first(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|b| *b == b' ')?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Splits the tail of an ASCII line into the name and the `k` fields printed after it, taking
/// the fields from the right so that a name containing spaces stays whole. When the line has no
/// space at all, the trailing fields are taken as empty: some tools strip the spaces the kernel
/// prints for empty fields. The template hash check still covers every field.
fn split_trailing(
    tail: &[u8],
    k: usize,
    at: Location,
    names: &[&'static str],
) -> Result<(Vec<u8>, Vec<Vec<u8>>), ImaError> {
    let mut parts: Vec<&[u8]> = tail.rsplitn(k + 1, |b| *b == b' ').collect();
    if parts.len() == 1 {
        return Ok((tail.to_vec(), vec![Vec::new(); k]));
    }
    if parts.len() != k + 1 {
        // Fields are missing from the left of the ones present.
        let missing = names.first().copied().unwrap_or("field");
        return Err(ImaError::MissingField { at, field: missing });
    }
    parts.reverse();
    let name = parts.first().copied().unwrap_or_default().to_vec();
    Ok((name, parts.iter().skip(1).map(|p| p.to_vec()).collect()))
}

fn hex_field(s: &[u8], field: &'static str, at: Location) -> Result<Vec<u8>, ImaError> {
    hex::decode(s).map_err(|_| ImaError::Hex { at, field })
}

/// Decodes a printed digest field `[type:]algo:hex`.
fn decode_digest_text(
    s: &[u8],
    v2: bool,
    field: &'static str,
    violation: bool,
    at: Location,
) -> Result<FileDigest, ImaError> {
    let colon = s
        .iter()
        .rposition(|b| *b == b':')
        .ok_or(ImaError::DigestField { at, field })?;
    let (prefix, hex_part) = s.split_at(colon);
    let digest = hex_field(hex_part.get(1..).unwrap_or_default(), field, at)?;
    digest_from_parts(prefix, &digest, v2, field, violation, at)
}

/// A printed name: the kernel prints it with `%s`, so it cannot contain NUL.
fn text_name(
    s: &[u8],
    field: &'static str,
    max: Option<usize>,
    at: Location,
) -> Result<EventName, ImaError> {
    if s.contains(&0) {
        return Err(ImaError::NameHasNul { at, field });
    }
    if let Some(max) = max {
        if s.len() > max {
            return Err(ImaError::NameTooLong {
                at,
                field,
                len: s.len(),
                max,
            });
        }
    }
    Ok(EventName(s.to_vec()))
}

/// Decodes the printed fields of an ASCII line (everything after the template name and its
/// space) into a typed template.
pub(crate) fn decode_ascii(
    template: &str,
    rest: &[u8],
    violation: bool,
    at: Location,
) -> Result<Template, ImaError> {
    if template == IMA_TEMPLATE_NAME {
        let (d, n) = split_first(rest).ok_or(ImaError::MissingField { at, field: "n" })?;
        let digest = hex_field(d, "d", at)?;
        if digest.len() != IMA_DIGEST_SIZE {
            return Err(ImaError::DigestLength {
                at,
                field: "d",
                algorithm: "sha1",
                len: digest.len(),
                expected: IMA_DIGEST_SIZE,
            });
        }
        let name = text_name(n, "n", Some(IMA_EVENT_NAME_LEN_MAX), at)?;
        return Ok(Template::Ima { digest, name });
    }
    let Some((_, v2)) = layout(template) else {
        let tokens: Vec<EventName> = rest
            .split(|b| *b == b' ')
            .map(|t| EventName(t.to_vec()))
            .collect();
        if tokens.len() > MAX_TEMPLATE_FIELDS {
            return Err(ImaError::TooManyFields {
                at,
                max: MAX_TEMPLATE_FIELDS,
            });
        }
        return Ok(Template::Other {
            fields: OtherFields::Ascii(tokens),
        });
    };
    let d_field = digest_field_name(v2);
    let (d, tail) = split_first(rest).ok_or(ImaError::MissingField { at, field: "n-ng" })?;
    let digest = decode_digest_text(d, v2, d_field, violation, at)?;
    Ok(match template {
        "ima-ng" => Template::ImaNg {
            digest,
            name: text_name(tail, "n-ng", None, at)?,
        },
        "ima-ngv2" => Template::ImaNgV2 {
            digest,
            name: text_name(tail, "n-ng", None, at)?,
        },
        "ima-sig" | "ima-sigv2" | "ima-buf" => {
            let last = if template == "ima-buf" { "buf" } else { "sig" };
            let (name, fields) = split_trailing(tail, 1, at, &[last])?;
            let name = text_name(&name, "n-ng", None, at)?;
            let bytes = hex_field(
                fields.first().map(Vec::as_slice).unwrap_or_default(),
                last,
                at,
            )?;
            match template {
                "ima-sig" => Template::ImaSig {
                    digest,
                    name,
                    signature: bytes,
                },
                "ima-sigv2" => Template::ImaSigV2 {
                    digest,
                    name,
                    signature: bytes,
                },
                _ => Template::ImaBuf {
                    digest,
                    name,
                    buffer: bytes,
                },
            }
        }
        _ => {
            // ima-modsig: name, sig, d-modsig, modsig.
            let (name, fields) = split_trailing(tail, 3, at, &["sig", "d-modsig", "modsig"])?;
            let name = text_name(&name, "n-ng", None, at)?;
            let [sig, dm, modsig] = fields.as_slice() else {
                return Err(ImaError::MissingField {
                    at,
                    field: "modsig",
                });
            };
            Template::ImaModsig {
                digest,
                name,
                signature: hex_field(sig, "sig", at)?,
                modsig_digest: if dm.is_empty() {
                    None
                } else {
                    Some(decode_digest_text(dm, false, "d-modsig", violation, at)?)
                },
                modsig: hex_field(modsig, "modsig", at)?,
            }
        }
    })
}
