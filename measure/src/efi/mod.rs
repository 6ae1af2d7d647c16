//! UEFI structures that appear in measured-boot event data (UEFI 2.10 and TCG PC Client PFP 1.06
//! section 10.2 / 10.4): GUIDs, variable data, signature lists, device paths, load options, GPT.

//!
//! Every parser here reads through [`crate::codec::Reader`]: lengths from the input are checked
//! against what remains before anything is allocated, structures that must fill their buffer
//! reject trailing bytes, and failures are an [`EfiError`] carrying the absolute offset.
//!
//! - [`guids`]: well-known GUIDs (variable vendors, signature types, configuration tables).
//! - [`text`]: bounded UTF-16LE (UCS-2) string decoding.
//! - [`devpath`]: `EFI_DEVICE_PATH_PROTOCOL` node lists and their text form (UEFI 2.10 sec. 10).
//! - [`siglist`]: `EFI_SIGNATURE_LIST` / `EFI_SIGNATURE_DATA` and X.509 summaries (UEFI 2.10
//!   sec. 32.4.1).
//! - [`load_option`]: `EFI_LOAD_OPTION` (Boot####, UEFI 2.10 sec. 3.1.3).
//! - [`variable`]: `UEFI_VARIABLE_DATA` (PFP 1.06 sec. 10.2.6) and typed variable contents.
//! - [`image`]: `UEFI_IMAGE_LOAD_EVENT` (PFP 1.06 sec. 10.2.3).
//! - [`gpt`]: `UEFI_GPT_DATA` (PFP 1.06 sec. 10.2.5, UEFI 2.10 sec. 5.3).
//! - [`firmware`]: `UEFI_PLATFORM_FIRMWARE_BLOB(2)` and `UEFI_HANDOFF_TABLE_POINTERS(2)` (PFP 1.06
//!   sec. 10.2.4, 10.2.7).

pub mod devpath;
pub mod firmware;
pub mod gpt;
pub mod guids;
pub mod image;
pub mod load_option;
pub mod siglist;
pub mod text;
pub mod variable;

use crate::codec::CodecError;
use serde::{Serialize, Serializer};
use std::fmt;
use thiserror::Error;

/// Why bytes are not the UEFI structure they must be. Every variant carries the absolute offset
/// of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EfiError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A UTF-16LE string with an unpaired surrogate (or an odd byte count).
    #[error("invalid UTF-16 in {what} at offset {offset}")]
    BadUtf16 { offset: usize, what: &'static str },
    /// A NUL-terminated string whose terminator is missing.
    #[error("{what} at offset {offset} has no NUL terminator")]
    Unterminated { offset: usize, what: &'static str },
    /// An ASCII/UTF-8 field that is not valid UTF-8.
    #[error("invalid UTF-8 in {what} at offset {offset}")]
    BadUtf8 { offset: usize, what: &'static str },
    /// A DER certificate x509-parser rejected.
    #[error("bad X.509 certificate at offset {offset}: {reason}")]
    BadCertificate { offset: usize, reason: String },
    /// A device path node whose length is below 4 or runs past the path.
    #[error("device path node at offset {offset}: length {length} (must be >= 4 and fit in {remaining} bytes)")]
    BadDevicePathNode {
        offset: usize,
        length: u16,
        remaining: usize,
    },
    /// A device path that ends without an End Entire Device Path node.
    #[error("device path ending at offset {offset} has no end node")]
    UnterminatedDevicePath { offset: usize },
    /// An `EFI_SIGNATURE_LIST` whose size fields are inconsistent.
    #[error("EFI_SIGNATURE_LIST at offset {offset}: list size {list_size}, header size {header_size}, signature size {signature_size} are inconsistent")]
    BadSignatureList {
        offset: usize,
        list_size: u32,
        header_size: u32,
        signature_size: u32,
    },
    /// A signature whose size does not match what its `SignatureType` requires.
    #[error("signature at offset {offset}: type {signature_type} needs {expected} data bytes, found {actual}")]
    BadSignatureSize {
        offset: usize,
        signature_type: Guid,
        expected: usize,
        actual: usize,
    },
    /// A count field (partitions, tables) larger than the remaining bytes can hold.
    #[error(
        "{what} at offset {offset}: count {count} needs more than the {remaining} remaining bytes"
    )]
    CountTooLarge {
        offset: usize,
        what: &'static str,
        count: u64,
        remaining: usize,
    },
    /// A GPT header without the `EFI PART` signature.
    #[error("GPT header at offset {offset}: signature {signature:#018x} is not \"EFI PART\"")]
    BadGptSignature { offset: usize, signature: u64 },
    /// A GPT partition entry size below 128 bytes.
    #[error("GPT header at offset {offset}: partition entry size {size} is below 128")]
    BadPartitionEntrySize { offset: usize, size: u32 },
    /// A variable whose data has a size its name does not allow (e.g. a 3-byte `SecureBoot`).
    #[error(
        "variable {name} at offset {offset}: {actual} data bytes where {expected} are required"
    )]
    BadVariableSize {
        offset: usize,
        name: String,
        expected: &'static str,
        actual: usize,
    },
}

/// An `EFI_GUID`, stored as the 16 bytes found on disk (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// A GUID from its registry-format fields, e.g. `Guid::from_fields(0x8be4df61, 0x93ca,
    /// 0x11d2, [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c])` for EFI_GLOBAL_VARIABLE.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The name of a well-known GUID (see [`guids`]), if this is one.
    pub fn name(&self) -> Option<&'static str> {
        guids::name(self)
    }
}

impl fmt::Display for Guid {
    /// Registry format, `8be4df61-93ca-11d2-aa0d-00e098032b8c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_form() {
        // EFI_GLOBAL_VARIABLE as stored on disk.
        let g = Guid([
            0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03,
            0x2b, 0x8c,
        ]);
        assert_eq!(g.to_string(), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
        assert_eq!(
            Guid::from_fields(
                0x8be4df61,
                0x93ca,
                0x11d2,
                [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]
            ),
            g
        );
        assert_eq!(g.name(), Some("EFI_GLOBAL_VARIABLE"));
    }
}
