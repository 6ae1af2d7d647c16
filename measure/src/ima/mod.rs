//! Linux IMA runtime measurement lists: parsing, template-hash checks, PCR replay and the
//! `boot_aggregate`.
//!
//! IMA (the kernel's Integrity Measurement Architecture, `security/integrity/ima/`) appends one
//! entry per measured file or buffer to a list and extends the entry's *template hash* into a PCR
//! (10 unless the policy says `pcr=`). The list is exported twice in securityfs, and Warrant
//! parses both:
//!
//! - **Binary** (`binary_runtime_measurements`, `ima_measurements_show` in `ima_fs.c`): per entry
//!   a `u32` PCR, the template hash, a `u32` template-name length and the name, then — except for
//!   the `ima` template — a `u32` template-data length and the template data, which is a sequence
//!   of `u32`-length-prefixed fields (`ima_show_template_data_binary` in `ima_template_lib.c`).
//!   The `ima` template has no data length: its `d` field is a bare 20-byte digest and its `n`
//!   field a `u32` length and the name without terminator (`IMA_SHOW_BINARY_NO_FIELD_LEN`,
//!   `IMA_SHOW_BINARY_OLD_STRING_FMT`). Integers are host-endian, or little-endian when the kernel
//!   booted with `ima_canonical_fmt`; Warrant detects the byte order from the first entry (see
//!   [`ByteOrder`]) so lists from big-endian hosts (s390x, ppc64) parse too.
//! - **ASCII** (`ascii_runtime_measurements`, `ima_ascii_measurements_show`): one line per entry,
//!   `"%2d "` PCR, the template hash in hex, the template name, then each field preceded by one
//!   space and printed as hex, `algo:hex` or a string — an empty field prints nothing, so an
//!   `ima-sig` entry without a signature ends in a space. The kernel replaces spaces in names by
//!   `_` (`ima_write_template_field_data`), so fields never contain the separator; Warrant still
//!   splits a line from both ends so that a name with a space (a pre-3.13 `ima` list) survives.
//!
//! Linux 6.x (commit "ima: add crypto agility support for template-hash algorithm") added one
//! list per PCR bank (`ascii_runtime_measurements_sha256`, ...), whose template hash is that
//! bank's digest; the unsuffixed files became links to the `_sha1` ones. The ASCII parser detects the bank from the length of the
//! first template hash (32 bytes is read as SHA-256; use [`AsciiOptions`] for SM3); the binary
//! parser takes it from [`BinaryOptions`] (SHA-1 by default).
//!
//! Templates (Documentation/security/IMA-templates.rst): `ima` (`d|n`), `ima-ng` (`d-ng|n-ng`),
//! `ima-ngv2` (`d-ngv2|n-ng`), `ima-sig` (`d-ng|n-ng|sig`), `ima-sigv2` (`d-ngv2|n-ng|sig`),
//! `ima-buf` (`d-ng|n-ng|buf`) and `ima-modsig` (`d-ng|n-ng|sig|d-modsig|modsig`) are decoded into
//! typed [`Template`]s. Any other template (a custom `ima_template_fmt=`, `evm-sig`) is kept as
//! [`Template::Other`] with its raw fields and reported by [`ImaList::unknown_templates`]: it is
//! never dropped.
//!
//! ## Template hashes and violations
//! The template hash is `H(template data as the kernel holds it)` (`ima_calc_field_array_hash` in
//! `ima_crypto.c`): for every template but `ima`, the hash of each field's `u32` length (host or
//! canonical byte order) followed by its bytes — exactly the binary template data; for `ima`,
//! `H(d[20] || n padded with zeros to IMA_EVENT_NAME_LEN_MAX + 1 = 256 bytes)`. From an ASCII line
//! Warrant re-encodes the fields the way the kernel holds them (`d-ng` = `"algo:" NUL digest`,
//! `n-ng` = name and NUL) to recompute it. [`ImaList::check_template_hashes`] reports every entry
//! whose recorded hash differs from the recomputed one.
//!
//! An entry whose template hash is all zeros is a **violation** (ToMToU or open-writer,
//! `ima_add_violation`; also the `boot_aggregate` of old kernels booted without a TPM): the kernel
//! stores zeros in the list but extends `0xff..ff` into the PCR (`ima_add_template_entry`). Its
//! data is not bound to anything and is never checked against the zero hash.
//!
//! ## Trust
//! A parsed [`ImaList`] is **unverified**. [`replay::verify`] replays it against PCR values a TPM
//! quoted and, only if they match and every template hash is right, returns a
//! [`replay::VerifiedImaList`] — the only type policy should look at.
//!
//! ## Bounds
//! Template names are at most [`MAX_TEMPLATE_NAME_LEN`] bytes (a nameless template is named by
//! its format string, at most 15 field ids of 16 bytes), template data at most
//! [`MAX_TEMPLATE_DATA_LEN`] (1 MiB: real entries are under a few KiB, the largest being
//! `ima-buf` key certificates and `ima-modsig` PKCS#7 signatures), at most
//! [`MAX_TEMPLATE_FIELDS`] fields (`IMA_TEMPLATE_NUM_FIELDS_MAX`) and ASCII lines at most
//! [`MAX_LINE_LEN`]. Every length is compared with the cap and with the remaining
//! input before anything is allocated.
//!
//! ## Not handled
//! - The `ima` template with MD5 file digests (`ima_hash=md5`): its binary `d` field carries no
//!   length and Warrant assumes the 20 bytes of SHA-1.
//! - File names containing a newline break the ASCII format itself; use the binary list.

pub mod algo;
mod ascii;
mod binary;
pub mod boot_aggregate;
pub mod replay;
pub mod template;

use crate::alg::HashAlg;
use crate::codec::CodecError;
use serde::Serialize;
use std::fmt;
use thiserror::Error;

pub use boot_aggregate::{
    boot_aggregate, check_boot_aggregate, BootAggregateCheck, BootAggregateError,
    BootAggregateVariant, BootAggregateVerdict,
};
pub use replay::{
    replay, verify, verify_any_mode, ImaReplay, PcrMismatch, ReplayError, ReplayMode,
    VerifiedImaList,
};
pub use template::{DigestType, EventName, FileDigest, OtherFields, Template};

/// Longest template name accepted (a template without a name is named by its format string,
/// like `d-ng|n-ng|sig`: at most 15 field ids of at most 16 bytes and their separators).
pub const MAX_TEMPLATE_NAME_LEN: usize = 255;
/// Largest template data accepted: 1 MiB.
pub const MAX_TEMPLATE_DATA_LEN: usize = 1 << 20;
/// Most fields a template may have (`IMA_TEMPLATE_NUM_FIELDS_MAX` in `ima.h`).
pub const MAX_TEMPLATE_FIELDS: usize = 15;
/// Longest name of the `ima` template's `n` field (`IMA_EVENT_NAME_LEN_MAX` in `ima.h`).
pub const IMA_EVENT_NAME_LEN_MAX: usize = 255;
/// Longest ASCII line accepted: the hex of the largest template data plus room for the rest.
pub const MAX_LINE_LEN: usize = 2 * MAX_TEMPLATE_DATA_LEN + 4096;
/// Name of the original template (`IMA_TEMPLATE_IMA_NAME`), whose encoding is special.
pub const IMA_TEMPLATE_NAME: &str = "ima";
/// Length of the `ima` template's digest field and of the SHA-1 template hash (`TPM_DIGEST_SIZE`).
pub const IMA_DIGEST_SIZE: usize = 20;

/// Which securityfs file a list was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    Ascii,
    Binary,
}

/// Byte order of the integers in a binary list, and of the field lengths the kernel hashed into
/// template hashes. Little-endian on x86, arm64 and every host booted with `ima_canonical_fmt`;
/// big-endian on big-endian hosts without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// `v` as 4 bytes in this order.
    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
}

/// Where an entry or an error is: a 1-based line of an ASCII list or a byte offset of a binary
/// list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Line(usize),
    Offset(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Offset(n) => write!(f, "offset {n}"),
        }
    }
}

/// Options for [`ImaList::parse_binary_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryOptions {
    /// Byte order; `None` detects it from the first entry's template-name length.
    pub byte_order: Option<ByteOrder>,
    /// Bank of the recorded template hashes: SHA-1 for `binary_runtime_measurements`, the bank's
    /// algorithm for `binary_runtime_measurements_<algo>` (Linux 6.10+).
    pub template_hash_algorithm: HashAlg,
}

impl Default for BinaryOptions {
    fn default() -> Self {
        BinaryOptions {
            byte_order: None,
            template_hash_algorithm: HashAlg::Sha1,
        }
    }
}

/// Options for [`ImaList::parse_ascii_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsciiOptions {
    /// Bank of the recorded template hashes; `None` detects it from the first hash's length
    /// (20: SHA-1, 32: SHA-256, 48: SHA-384, 64: SHA-512). Give `Sm3_256` for an SM3 list.
    pub template_hash_algorithm: Option<HashAlg>,
    /// Byte order of the host that produced the list, needed to re-encode field lengths when
    /// recomputing template hashes (the ASCII text does not say).
    pub byte_order: ByteOrder,
}

impl Default for AsciiOptions {
    fn default() -> Self {
        AsciiOptions {
            template_hash_algorithm: None,
            byte_order: ByteOrder::Little,
        }
    }
}

/// An IMA measurement list as parsed: **unverified** until [`replay::verify`] accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImaList {
    pub format: ListFormat,
    /// For binary lists the byte order found; for ASCII lists the one assumed for hashing.
    pub byte_order: ByteOrder,
    /// Bank of the recorded template hashes.
    pub template_hash_algorithm: HashAlg,
    pub entries: Vec<ImaEntry>,
}

/// One measurement, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImaEntry {
    /// Position in the list, from 0.
    pub number: usize,
    /// Line (ASCII) or byte offset (binary) of the entry.
    pub location: Location,
    pub pcr: u32,
    /// The template hash the list recorded (in [`ImaList::template_hash_algorithm`]).
    #[serde(serialize_with = "crate::serde_hex")]
    pub template_hash: Vec<u8>,
    pub template_name: String,
    pub template: Template,
    /// True when the template hash is all zeros: the kernel extended `0xff..ff` instead.
    pub violation: bool,
    /// Byte order of the field lengths the kernel hashed (the list's).
    #[serde(skip)]
    pub(crate) byte_order: ByteOrder,
}

/// Outcome of recomputing one entry's template hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum TemplateHashCheck {
    Match,
    Mismatch {
        #[serde(serialize_with = "crate::serde_hex")]
        recorded: Vec<u8>,
        #[serde(serialize_with = "crate::serde_hex")]
        computed: Vec<u8>,
    },
    /// A violation: the zero hash is not the hash of anything.
    Violation,
    /// An ASCII entry of a template Warrant cannot re-encode.
    NotRecomputable,
}

impl ImaEntry {
    /// The template hash the kernel computes for this entry with `alg` (per-bank template hash,
    /// Linux 5.8+), or `None` when the entry's hashed bytes are unknown (ASCII, unknown
    /// template). For a violation this is the hash of the fields, not the zeros the list holds.
    ///
    /// It is computed from the decoded [`ImaEntry::template`], re-encoded as the kernel holds
    /// it, so a match binds exactly the fields policy reads.
    pub fn template_digest(&self, alg: HashAlg) -> Option<Vec<u8>> {
        self.hashed_template_data().map(|data| alg.hash(&data))
    }

    /// The bytes the kernel hashed into the template hash, rebuilt from the decoded template:
    /// for binary lists exactly the template data read (checked at parse time).
    pub fn hashed_template_data(&self) -> Option<Vec<u8>> {
        self.template.hash_input(self.byte_order)
    }

    /// Recomputes the template hash with `alg` (the list's template-hash bank) and compares it.
    pub fn check_template_hash(&self, alg: HashAlg) -> TemplateHashCheck {
        if self.violation {
            return TemplateHashCheck::Violation;
        }
        match self.template_digest(alg) {
            None => TemplateHashCheck::NotRecomputable,
            Some(computed) if computed == self.template_hash => TemplateHashCheck::Match,
            Some(computed) => TemplateHashCheck::Mismatch {
                recorded: self.template_hash.clone(),
                computed,
            },
        }
    }
}

/// One entry whose recorded template hash is not the hash of its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateHashMismatch {
    pub number: usize,
    pub location: Location,
    #[serde(serialize_with = "crate::serde_hex")]
    pub recorded: Vec<u8>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub computed: Vec<u8>,
}

/// Result of [`ImaList::check_template_hashes`]: every entry lands in exactly one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateHashReport {
    /// Entries whose hash was recomputed and matched.
    pub matched: usize,
    /// Entry numbers of violations (zero hash, not checkable by design).
    pub violations: Vec<usize>,
    /// Entry numbers Warrant could not recompute (ASCII entries of unknown templates).
    pub not_recomputable: Vec<usize>,
    pub mismatches: Vec<TemplateHashMismatch>,
}

impl TemplateHashReport {
    /// True when no recorded hash disagrees with its data and every entry was checkable.
    pub fn all_match(&self) -> bool {
        self.mismatches.is_empty() && self.not_recomputable.is_empty()
    }
}

impl ImaList {
    /// Parses `binary_runtime_measurements` (SHA-1 template hashes, byte order detected).
    pub fn parse_binary(bytes: &[u8]) -> Result<Self, ImaError> {
        Self::parse_binary_with(bytes, BinaryOptions::default())
    }

    /// Parses a binary list with explicit options.
    pub fn parse_binary_with(bytes: &[u8], options: BinaryOptions) -> Result<Self, ImaError> {
        binary::parse(bytes, options)
    }

    /// Parses `ascii_runtime_measurements` (or a per-bank `_<algo>` list): bank detected,
    /// little-endian hashing assumed.
    pub fn parse_ascii(text: &[u8]) -> Result<Self, ImaError> {
        Self::parse_ascii_with(text, AsciiOptions::default())
    }

    /// Parses an ASCII list with explicit options.
    pub fn parse_ascii_with(text: &[u8], options: AsciiOptions) -> Result<Self, ImaError> {
        ascii::parse(text, options)
    }

    /// Recomputes every entry's template hash in the list's bank. A mismatch means the entry's
    /// data is not what was extended into the PCR.
    pub fn check_template_hashes(&self) -> TemplateHashReport {
        let mut report = TemplateHashReport::default();
        for e in &self.entries {
            match e.check_template_hash(self.template_hash_algorithm) {
                TemplateHashCheck::Match => report.matched += 1,
                TemplateHashCheck::Violation => report.violations.push(e.number),
                TemplateHashCheck::NotRecomputable => report.not_recomputable.push(e.number),
                TemplateHashCheck::Mismatch { recorded, computed } => {
                    report.mismatches.push(TemplateHashMismatch {
                        number: e.number,
                        location: e.location,
                        recorded,
                        computed,
                    })
                }
            }
        }
        report
    }

    /// Entry numbers whose template Warrant does not decode ([`Template::Other`]).
    pub fn unknown_templates(&self) -> Vec<usize> {
        self.entries
            .iter()
            .filter(|e| matches!(e.template, Template::Other { .. }))
            .map(|e| e.number)
            .collect()
    }
}

/// Why bytes are not an IMA measurement list. Binary errors carry the absolute byte offset of the
/// offending field, ASCII errors its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImaError {
    #[error("entry {number}: {source}")]
    Codec {
        number: usize,
        #[source]
        source: CodecError,
    },
    #[error("{at}: template name length {len} is not in 1..={max}")]
    TemplateNameLength { at: Location, len: u64, max: usize },
    #[error("{at}: template name is not printable ASCII without spaces")]
    TemplateName { at: Location },
    #[error("{at}: {len} bytes of template data exceed the {max}-byte limit")]
    TemplateDataTooLarge { at: Location, len: u64, max: usize },
    /// The decoded fields do not re-encode to the template data read. Kernel output never does
    /// this; the check guarantees that template hashes cover exactly the decoded fields.
    #[error("{at}: template data is not in the kernel's canonical encoding")]
    NonCanonical { at: Location },
    #[error("{at}: template data has more than {max} fields")]
    TooManyFields { at: Location, max: usize },
    #[error("{at}: template {template} has {found} fields, expected {expected}")]
    FieldCount {
        at: Location,
        template: String,
        expected: usize,
        found: usize,
    },
    #[error("{at}: field {field} is missing")]
    MissingField { at: Location, field: &'static str },
    #[error("{at}: field {field} is not of the form <algo>:<digest>")]
    DigestField { at: Location, field: &'static str },
    #[error("{at}: field {field} names digest algorithm {algorithm:?}, unknown to the kernel")]
    UnknownDigestAlgorithm {
        at: Location,
        field: &'static str,
        algorithm: String,
    },
    #[error("{at}: field {field} names digest type {digest_type:?} (expected ima or verity)")]
    UnknownDigestType {
        at: Location,
        field: &'static str,
        digest_type: String,
    },
    #[error("{at}: field {field}: a {algorithm} digest of {len} bytes (expected {expected})")]
    DigestLength {
        at: Location,
        field: &'static str,
        algorithm: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{at}: field {field} does not end with the NUL the kernel stores")]
    NameNotTerminated { at: Location, field: &'static str },
    #[error("{at}: field {field} contains a NUL byte")]
    NameHasNul { at: Location, field: &'static str },
    #[error("{at}: field {field} is {len} bytes long, more than {max}")]
    NameTooLong {
        at: Location,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{at}: PCR index is not a decimal number")]
    Pcr { at: Location },
    #[error("{at}: field {field} is not hex")]
    Hex { at: Location, field: &'static str },
    #[error("{at}: template hash of {len} bytes (expected {expected})")]
    TemplateHashLength {
        at: Location,
        len: usize,
        expected: usize,
    },
    #[error("{at}: a template hash of {len} bytes belongs to no known PCR bank")]
    UnknownTemplateHashLength { at: Location, len: usize },
    #[error("{at}: line of {len} bytes exceeds the {max}-byte limit")]
    LineTooLong {
        at: Location,
        len: usize,
        max: usize,
    },
    #[error("{at}: empty line")]
    EmptyLine { at: Location },
}

#[cfg(test)]
mod tests;
