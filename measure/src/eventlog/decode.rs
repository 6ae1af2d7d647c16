//! Typed decoding of event data by event type (TCG PC Client PFP 1.06 section 10.4), and the
//! rule saying which bytes of the data an event's digest must be the hash of
//! ([`measured_bytes`]).
//!
//! Decoding never changes what is replayed: the digests are what the TPM extended. It gives
//! people and policy a typed view of the data, and a payload that does not decode is reported
//! with a [`DecodeError`] while its bytes stay in the event. An event's data says nothing true
//! about the machine unless its digest is the hash of it: [`measured_bytes`] says which events
//! that can be checked for, and replay reports a mismatch.
//!
//! | Event type (PFP 1.06 sec. 10.4.1)                  | [`EventData`]                          |
//! |----------------------------------------------------|----------------------------------------|
//! | `EV_NO_ACTION` (Spec ID, StartupLocality, SP800-155) | `SpecId`, `StartupLocality`, `Sp800155` |
//! | `EV_S_CRTM_VERSION`, `EV_EFI_ACTION`, `EV_ACTION`, `EV_OMIT_BOOT_DEVICE_EVENTS`, `EV_EFI_HCRTM_EVENT`, `EV_COMPACT_HASH` | `Text` |
//! | `EV_POST_CODE(2)`, `EV_S_CRTM_CONTENTS`            | `FirmwareBlob` (16/`BLOB2` bytes) or `Text` |
//! | `EV_EFI_PLATFORM_FIRMWARE_BLOB(2)`                 | `FirmwareBlob`                         |
//! | `EV_EFI_HANDOFF_TABLES(2)`                         | `HandoffTables`                        |
//! | `EV_SEPARATOR`                                     | `Separator`                            |
//! | `EV_EFI_VARIABLE_*`                                | `Variable`                             |
//! | `EV_EFI_BOOT_SERVICES_*`, `EV_EFI_RUNTIME_SERVICES_DRIVER` | `ImageLoad`                    |
//! | `EV_EFI_GPT_EVENT(2)`                              | `Gpt`                                  |
//! | `EV_IPL`                                           | `Ipl`                                  |
//! | `EV_EVENT_TAG`                                     | `TaggedEvent`                          |
//! | vendor-defined or opaque types                     | `Raw`                                  |
//! | other `EV_NO_ACTION`, types PFP 1.06 does not define | `Unknown` (callers flag it)          |

use super::noaction::{Sp800155Event, SpecIdEvent, StartupLocality};
use super::types::EventType;
use crate::codec::CodecError;
use crate::efi::firmware::{FirmwareBlob, HandoffTables};
use crate::efi::gpt::GptData;
use crate::efi::image::ImageLoadEvent;
use crate::efi::text::{Text, TextEncoding};
use crate::efi::variable::{VariableContext, VariableData};
use crate::efi::EfiError;
use serde::Serialize;
use std::borrow::Cow;
use thiserror::Error;

/// The decoded data of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    SpecId(SpecIdEvent),
    StartupLocality(StartupLocality),
    Sp800155(Sp800155Event),
    /// A string (or, where the spec allows a string but the bytes are not one, their hex).
    Text(Text),
    /// `EV_SEPARATOR` (PFP 1.06 sec. 10.4.1): `0x00000000` separates pre-OS from OS-present
    /// measurements; any other value (PFP: `0x00000001`) records a firmware error, after which
    /// the PCR cannot be trusted to describe a normal boot.
    Separator {
        value: u32,
        error: bool,
    },
    /// `UEFI_PLATFORM_FIRMWARE_BLOB(2)`, also the blob forms of `EV_POST_CODE`,
    /// `EV_POST_CODE2` and `EV_S_CRTM_CONTENTS`.
    FirmwareBlob(FirmwareBlob),
    /// `UEFI_HANDOFF_TABLE_POINTERS(2)`.
    HandoffTables(HandoffTables),
    /// `UEFI_VARIABLE_DATA`.
    Variable(VariableData),
    /// `UEFI_IMAGE_LOAD_EVENT`.
    ImageLoad(ImageLoadEvent),
    /// `UEFI_GPT_DATA`.
    Gpt(GptData),
    /// `EV_IPL`: what the boot loader measured, as text.
    Ipl(IplEvent),
    /// `TCG_PCClientTaggedEvent` (`EV_EVENT_TAG`).
    TaggedEvent(TaggedEvent),
    /// A known type whose data has no structure to decode (vendor-defined, or a raw
    /// measurement); the bytes are in the event.
    Raw {
        reason: &'static str,
    },
    /// An event type this decoder does not interpret (flagged; raw bytes are in the event).
    Unknown,
}

/// What an `EV_IPL` event records. PFP 1.06 leaves `EV_IPL` to the boot loader; these are the
/// conventions of the loaders found in real logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IplKind {
    /// GRUB, PCR 8: `grub_cmd: <command>` (`grub_cmd <command>` in RHEL's GRUB), every command
    /// GRUB executes.
    GrubCmd,
    /// The kernel command line: GRUB's `kernel_cmdline: ...` (`grub_kernel_cmdline ...` in
    /// RHEL), or the UTF-16 string systemd-boot (PCR 8) and systemd-stub (PCR 12) measure.
    KernelCmdline,
    /// GRUB, PCR 8: `module_cmdline: ...`, the command line of a multiboot module.
    ModuleCmdline,
    /// systemd-stub, PCR 11: the name of a Unified Kernel Image PE section (`.linux`,
    /// `.cmdline`, ...), logged once for the name and once for the section's contents.
    UkiSection,
    /// systemd-stub, PCR 12/13: a generated initrd (`Credentials initrd`, `Global credentials
    /// initrd`, `System extension initrd`); the digest is of the cpio archive.
    SystemdInitrd,
    /// GRUB, PCR 9: the path of a file GRUB read (`(hd0,gpt1)/boot/grub/grub.cfg`,
    /// `/vmlinuz-...`) or a description of it (`grub_linuxefi Initrd`); the digest is of the
    /// file's contents.
    GrubFile,
    /// shim, PCR 14: the name of a MOK variable (`MokList`, `MokListX`, `MokListTrusted`)
    /// whose contents shim measured.
    ShimVariable,
    /// Any other string.
    Other,
    /// Not a string: `text` is hex.
    Binary,
}

/// A decoded `EV_IPL` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IplEvent {
    /// Serialized as `ipl_kind`: `kind` is [`EventData`]'s tag.
    #[serde(rename = "ipl_kind")]
    pub kind: IplKind,
    pub encoding: TextEncoding,
    /// The string without its NUL terminator (hex for [`IplKind::Binary`]).
    pub text: String,
    /// The text after a recognised prefix: the command of `grub_cmd: ...`, the command line
    /// of `kernel_cmdline: ...`, the path of a GRUB file, the MOK variable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A decoded `TCG_PCClientTaggedEvent` (PFP 1.06 sec. 10.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaggedEvent {
    pub tagged_event_id: u32,
    /// Who uses `tagged_event_id`, if known (e.g. `linux_initrd`, the Linux EFI stub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_id: Option<&'static str>,
    pub data: Text,
}

/// Tagged event IDs of the Linux EFI stub (`drivers/firmware/efi/libstub/efistub.h`): the
/// initrd and the load options it measures into PCR 9.
const TAGGED_EVENT_IDS: &[(u32, &str)] = &[
    (0x8F3B_22EC, "linux_initrd"),
    (0x8F3B_22ED, "linux_load_options"),
];

/// Why an event's data did not decode as its type requires.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    SpecId(#[from] super::noaction::SpecIdError),
    /// A UEFI structure (variable, device path, certificate, GPT, ...) is malformed.
    #[error(transparent)]
    Efi(#[from] EfiError),
    /// `EV_SEPARATOR` data that is not 4 bytes.
    #[error("EV_SEPARATOR at offset {offset}: {len} bytes of data, must be 4")]
    BadSeparator { offset: usize, len: usize },
    /// An event whose data the spec defines as an ASCII string is not one.
    #[error("{event_type} at offset {offset}: data is not an ASCII/UTF-8 string")]
    NotText {
        offset: usize,
        event_type: EventType,
    },
}

/// Decodes `data` of an event of `event_type` extended into `pcr`. `base` is the data's
/// absolute offset in the log, for error messages.
pub fn decode(
    event_type: EventType,
    pcr: u32,
    data: &[u8],
    base: usize,
) -> Result<EventData, DecodeError> {
    use super::noaction as na;
    use EventType as T;
    Ok(match event_type {
        T::EV_NO_ACTION if data.starts_with(na::SPEC_ID_EVENT03) => {
            EventData::SpecId(SpecIdEvent::parse(data, base)?)
        }
        T::EV_NO_ACTION if data.starts_with(na::STARTUP_LOCALITY) => {
            EventData::StartupLocality(StartupLocality::parse(data, base)?)
        }
        T::EV_NO_ACTION
            if data.starts_with(na::SP800_155_EVENT) || data.starts_with(na::SP800_155_EVENT3) =>
        {
            EventData::Sp800155(Sp800155Event::parse(data, base)?)
        }
        T::EV_NO_ACTION => EventData::Unknown,

        // PFP: "the event field contains the version string of the S-CRTM" — UCS-2 by PFP,
        // but some firmware logs a GUID or ASCII; hex when it is not a string.
        T::EV_S_CRTM_VERSION => EventData::Text(Text::detect(data, true)),
        // Strings by definition.
        T::EV_EFI_ACTION | T::EV_ACTION | T::EV_OMIT_BOOT_DEVICE_EVENTS | T::EV_EFI_HCRTM_EVENT => {
            let text = Text::detect_utf8(data);
            if !text.is_string() {
                return Err(DecodeError::NotText {
                    offset: base,
                    event_type,
                });
            }
            EventData::Text(text)
        }
        T::EV_SEPARATOR => {
            let bytes: [u8; 4] = data.try_into().map_err(|_| DecodeError::BadSeparator {
                offset: base,
                len: data.len(),
            })?;
            let value = u32::from_le_bytes(bytes);
            EventData::Separator {
                value,
                error: value != 0,
            }
        }
        // A blob (PFP 10.2.4) or a string such as "ACPI DATA", "POST CODE", "SMM CODE".
        T::EV_POST_CODE | T::EV_S_CRTM_CONTENTS => blob_or_text(data, base, false)?,
        T::EV_POST_CODE2 => blob_or_text(data, base, true)?,
        T::EV_EFI_PLATFORM_FIRMWARE_BLOB => {
            EventData::FirmwareBlob(FirmwareBlob::parse(data, base)?)
        }
        T::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => {
            EventData::FirmwareBlob(FirmwareBlob::parse2(data, base)?)
        }
        T::EV_EFI_HANDOFF_TABLES => EventData::HandoffTables(HandoffTables::parse(data, base)?),
        T::EV_EFI_HANDOFF_TABLES2 => EventData::HandoffTables(HandoffTables::parse2(data, base)?),
        T::EV_EFI_VARIABLE_DRIVER_CONFIG | T::EV_EFI_VARIABLE_BOOT | T::EV_EFI_VARIABLE_BOOT2 => {
            EventData::Variable(VariableData::parse(data, base, VariableContext::Contents)?)
        }
        T::EV_EFI_VARIABLE_AUTHORITY => {
            EventData::Variable(VariableData::parse(data, base, VariableContext::Authority)?)
        }
        T::EV_EFI_BOOT_SERVICES_APPLICATION
        | T::EV_EFI_BOOT_SERVICES_DRIVER
        | T::EV_EFI_RUNTIME_SERVICES_DRIVER => {
            EventData::ImageLoad(ImageLoadEvent::parse(data, base)?)
        }
        T::EV_EFI_GPT_EVENT | T::EV_EFI_GPT_EVENT2 => EventData::Gpt(GptData::parse(data, base)?),
        T::EV_IPL => EventData::Ipl(ipl(pcr, data)),
        T::EV_EVENT_TAG => EventData::TaggedEvent(tagged_event(data, base)?),
        // Usually a short vendor string or a 4-byte value.
        T::EV_COMPACT_HASH => EventData::Text(Text::detect_utf8(data)),
        T::EV_PLATFORM_CONFIG_FLAGS => EventData::Raw {
            reason: "platform-specific configuration",
        },
        T::EV_TABLE_OF_DEVICES => EventData::Raw {
            reason: "table of devices",
        },
        T::EV_NONHOST_CODE | T::EV_NONHOST_CONFIG | T::EV_NONHOST_INFO => EventData::Raw {
            reason: "vendor-defined non-host information",
        },
        T::EV_CPU_MICROCODE => EventData::Raw {
            reason: "microcode update",
        },
        T::EV_IPL_PARTITION_DATA => EventData::Raw {
            reason: "partition data",
        },
        T::EV_PREBOOT_CERT => EventData::Raw {
            reason: "pre-boot certificate",
        },
        T::EV_EFI_SPDM_FIRMWARE_BLOB
        | T::EV_EFI_SPDM_FIRMWARE_CONFIG
        | T::EV_EFI_SPDM_DEVICE_POLICY
        | T::EV_EFI_SPDM_DEVICE_AUTHORITY => EventData::Raw {
            reason: "SPDM device measurement",
        },
        T::EV_UNUSED | T::Unknown(_) => EventData::Unknown,
    })
}

/// `EV_POST_CODE`, `EV_POST_CODE2`, `EV_S_CRTM_CONTENTS`: a blob when the data has exactly the
/// blob's size, else a string, else hex.
fn blob_or_text(data: &[u8], base: usize, blob2: bool) -> Result<EventData, DecodeError> {
    let text = Text::detect_utf8(data);
    if text.is_string() {
        return Ok(EventData::Text(text));
    }
    if !blob2 && data.len() == 16 {
        return Ok(EventData::FirmwareBlob(FirmwareBlob::parse(data, base)?));
    }
    if blob2 {
        if let Ok(blob) = FirmwareBlob::parse2(data, base) {
            return Ok(EventData::FirmwareBlob(blob));
        }
    }
    Ok(EventData::Text(text))
}

fn tagged_event(data: &[u8], base: usize) -> Result<TaggedEvent, DecodeError> {
    let mut r = crate::codec::Reader::at(data, base);
    let tagged_event_id = r.u32_le("taggedEventID")?;
    let size = r.u32_le("taggedEventDataSize")?;
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let bytes = r.take(len, "taggedEventData")?;
    r.finish("TCG_PCClientTaggedEvent")?;
    Ok(TaggedEvent {
        tagged_event_id,
        known_id: TAGGED_EVENT_IDS
            .iter()
            .find(|(id, _)| *id == tagged_event_id)
            .map(|(_, n)| *n),
        data: Text::detect(bytes, false),
    })
}

/// The constant descriptions of systemd-stub's generated initrds (systemd
/// `docs/TPM2_PCR_MEASUREMENTS.md`).
const SYSTEMD_INITRDS: &[&str] = &[
    "Credentials initrd",
    "Global credentials initrd",
    "System extension initrd",
];

/// shim's MOK variables mirrored into PCR 14 (shim `mok.c`, `mok_state_variables[]`).
const SHIM_PCR14_VARIABLES: &[&str] = &["MokList", "MokListX", "MokListTrusted", "MokSBState"];

fn ipl(pcr: u32, data: &[u8]) -> IplEvent {
    let t = Text::detect(data, false);
    let (kind, value) = classify_ipl(pcr, &t);
    IplEvent {
        kind,
        encoding: t.encoding,
        value: value.map(str::to_owned),
        text: t.text,
    }
}

fn classify_ipl(pcr: u32, t: &Text) -> (IplKind, Option<&str>) {
    let s = t.text.as_str();
    match t.encoding {
        TextEncoding::Hex => (IplKind::Binary, None),
        TextEncoding::Utf16le if SYSTEMD_INITRDS.contains(&s) => (IplKind::SystemdInitrd, None),
        TextEncoding::Utf16le if pcr == 11 && s.starts_with('.') => (IplKind::UkiSection, Some(s)),
        TextEncoding::Utf16le if pcr == 8 || pcr == 12 => (IplKind::KernelCmdline, Some(s)),
        TextEncoding::Utf16le => (IplKind::Other, None),
        TextEncoding::Utf8 => {
            const PREFIXES: &[(&str, IplKind)] = &[
                ("grub_cmd: ", IplKind::GrubCmd),
                ("grub_cmd ", IplKind::GrubCmd),
                ("kernel_cmdline: ", IplKind::KernelCmdline),
                ("grub_kernel_cmdline ", IplKind::KernelCmdline),
                ("module_cmdline: ", IplKind::ModuleCmdline),
            ];
            if let Some((rest, kind)) = PREFIXES
                .iter()
                .find_map(|(p, k)| s.strip_prefix(p).map(|rest| (rest, *k)))
            {
                (kind, Some(rest))
            } else if pcr == 14 && SHIM_PCR14_VARIABLES.contains(&s) {
                (IplKind::ShimVariable, Some(s))
            } else if pcr == 9 && (s.starts_with('/') || s.starts_with('(')) {
                (IplKind::GrubFile, Some(s))
            } else if pcr == 9 && s.starts_with("grub_") {
                (IplKind::GrubFile, None)
            } else {
                (IplKind::Other, None)
            }
        }
    }
}

/// The bytes an event's digest must be the hash of, where the specification (TCG PC Client
/// PFP 1.06 sec. 10.4.1, and sec. 3.3.4 for the UEFI measurements) or the measuring
/// component's documented convention requires the digest to be computed over the event data,
/// or over a part of it that the log contains. `None` where the digest covers something not in
/// the log (a PE image, a firmware volume, handoff tables, a POST-code blob, a file GRUB read,
/// a variable shim mirrored into PCR 14) or where no reliable rule exists.
///
/// | Event type | Bytes hashed |
/// |---|---|
/// | `EV_SEPARATOR`, `EV_ACTION`, `EV_EFI_ACTION`, `EV_S_CRTM_VERSION`, `EV_COMPACT_HASH`, `EV_OMIT_BOOT_DEVICE_EVENTS` | the event data |
/// | `EV_EFI_GPT_EVENT`, `EV_EFI_GPT_EVENT2` | the event data (`UEFI_GPT_DATA`) |
/// | `EV_EFI_VARIABLE_DRIVER_CONFIG`, `EV_EFI_VARIABLE_BOOT2`, `EV_EFI_VARIABLE_AUTHORITY` | the event data (the whole `UEFI_VARIABLE_DATA`) |
/// | `EV_EFI_VARIABLE_BOOT` | `VariableData` only (PFP; what EDK2 does) |
/// | `EV_IPL`, PCR 8, GRUB's `grub_cmd: `, `kernel_cmdline: `, `module_cmdline: ` | the string after the prefix, without its NUL (GRUB `grub_tpm_verify_string`) |
/// | `EV_IPL`, PCR 8, RHEL GRUB's `grub_cmd ` / `grub_kernel_cmdline ` | the string after the prefix, with / without its NUL |
///
/// Known real-world deviations, checked against the fixtures by `tests/decode_fixtures.rs`;
/// [`measured_bytes_quirks`] gives the bytes each one hashes:
/// - [`DigestQuirk::VariableBootWholeStructure`]: some firmware hashes the whole
///   `UEFI_VARIABLE_DATA` for `EV_EFI_VARIABLE_BOOT`, as `EV_EFI_VARIABLE_BOOT2` does
///   (`arch-linux-workstation.bin`, `event-postcode.bin`, `glinux-alex.bin`).
/// - [`DigestQuirk::ShimAuthorityLastByteUnhashed`]: older shim releases log
///   `EV_EFI_VARIABLE_AUTHORITY` events with bytes past `VariableDataLength` and hash all of the
///   event data but its last byte (`debian-10.bin`, `cos-85-amd-sev.bin`, `cos-93-amd-sev.bin`,
///   `event-postcode.bin`).
///
/// No rule is given for the other `EV_IPL` events: systemd-boot and systemd-stub hash their
/// UTF-16 kernel command line with its NUL in some versions (`event-sd-boot-fedora37.bin`),
/// without it in current ones (systemd `docs/TPM2_PCR_MEASUREMENTS.md`), and neither in the
/// systemd-boot of `event-arch-linux.bin` (event 24, where tpm2-tools warns too); GRUB's PCR 9
/// events, shim's PCR 14 events and systemd's section and initrd events hash data that is not
/// in the log.
pub fn measured_bytes(event_type: EventType, pcr: u32, data: &[u8]) -> Option<Cow<'_, [u8]>> {
    use EventType as T;
    match event_type {
        T::EV_SEPARATOR
        | T::EV_ACTION
        | T::EV_EFI_ACTION
        | T::EV_S_CRTM_VERSION
        | T::EV_COMPACT_HASH
        | T::EV_OMIT_BOOT_DEVICE_EVENTS
        | T::EV_EFI_GPT_EVENT
        | T::EV_EFI_GPT_EVENT2
        | T::EV_EFI_VARIABLE_DRIVER_CONFIG
        | T::EV_EFI_VARIABLE_BOOT2
        | T::EV_EFI_VARIABLE_AUTHORITY => Some(Cow::Borrowed(data)),
        T::EV_EFI_VARIABLE_BOOT => variable_parts(data).map(|p| Cow::Borrowed(p.data)),
        T::EV_IPL if pcr == 8 => grub_string(data).map(Cow::Borrowed),
        _ => None,
    }
}

/// A known deviation of real firmware or boot loaders from the digest rules of
/// [`measured_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestQuirk {
    /// `EV_EFI_VARIABLE_BOOT` digest over the whole `UEFI_VARIABLE_DATA`, not only
    /// `VariableData`.
    VariableBootWholeStructure,
    /// `EV_EFI_VARIABLE_AUTHORITY` from older shim: the event data is longer than the structure
    /// `VariableDataLength` describes, and the digest covers all of it but the last byte.
    ShimAuthorityLastByteUnhashed,
}

impl DigestQuirk {
    pub fn name(self) -> &'static str {
        match self {
            DigestQuirk::VariableBootWholeStructure => "variable_boot_whole_structure",
            DigestQuirk::ShimAuthorityLastByteUnhashed => "shim_authority_last_byte_unhashed",
        }
    }
}

/// The bytes that known deviations ([`DigestQuirk`]) hash for this event, to try when the
/// digest is not the hash of [`measured_bytes`]. Empty when no quirk applies.
pub fn measured_bytes_quirks(
    event_type: EventType,
    _pcr: u32,
    data: &[u8],
) -> Vec<(DigestQuirk, Cow<'_, [u8]>)> {
    match event_type {
        EventType::EV_EFI_VARIABLE_BOOT if variable_parts(data).is_some() => {
            vec![(DigestQuirk::VariableBootWholeStructure, Cow::Borrowed(data))]
        }
        EventType::EV_EFI_VARIABLE_AUTHORITY => match variable_parts(data) {
            Some(p) if p.whole.len() < data.len() => vec![(
                DigestQuirk::ShimAuthorityLastByteUnhashed,
                Cow::Borrowed(data.get(..data.len() - 1).unwrap_or_default()),
            )],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The string GRUB hashed for an `EV_IPL` command or command line: the event text after its
/// prefix. Upstream GRUB (`grub_tpm_verify_string`) hashes it without the NUL terminator; the
/// older TPM patch of RHEL's GRUB (`grub_cmd ` without a colon) hashes commands *with* it and
/// the kernel command line without it (`rhel8-uefi.bin`).
fn grub_string(data: &[u8]) -> Option<&[u8]> {
    // (prefix, whether the NUL terminator is hashed)
    const PREFIXES: &[(&[u8], bool)] = &[
        (b"grub_cmd: ", false),
        (b"kernel_cmdline: ", false),
        (b"module_cmdline: ", false),
        (b"grub_cmd ", true),
        (b"grub_kernel_cmdline ", false),
    ];
    let (rest, keep_nul) = PREFIXES
        .iter()
        .find_map(|(p, k)| data.strip_prefix(*p).map(|r| (r, *k)))?;
    Some(if keep_nul {
        rest
    } else {
        rest.strip_suffix(&[0]).unwrap_or(rest)
    })
}

/// The slices of a `UEFI_VARIABLE_DATA`: the structure up to the end of `VariableData`, and
/// `VariableData` itself. `None` if the header or the lengths do not fit.
struct VariableParts<'a> {
    whole: &'a [u8],
    data: &'a [u8],
}

fn variable_parts(bytes: &[u8]) -> Option<VariableParts<'_>> {
    let mut r = crate::codec::Reader::new(bytes);
    r.guid("VariableName").ok()?;
    let name = usize::try_from(r.u64_le("UnicodeNameLength").ok()?).ok()?;
    let len = usize::try_from(r.u64_le("VariableDataLength").ok()?).ok()?;
    r.take(name.checked_mul(2)?, "UnicodeName").ok()?;
    let start = r.offset();
    let data = r.take(len, "VariableData").ok()?;
    Some(VariableParts {
        whole: bytes.get(..start + len)?,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::efi::guids;
    use crate::efi::variable::VariableValue;
    use EventType as T;

    use crate::efi::variable::tests::var;

    #[test]
    fn strings_and_separators() {
        let d = decode(
            T::EV_EFI_ACTION,
            4,
            b"Calling EFI Application from Boot Option",
            0,
        )
        .unwrap();
        assert!(
            matches!(d, EventData::Text(ref t) if t.text == "Calling EFI Application from Boot Option")
        );
        assert_eq!(
            decode(T::EV_EFI_ACTION, 4, &[0xff, 0xfe], 7),
            Err(DecodeError::NotText {
                offset: 7,
                event_type: T::EV_EFI_ACTION
            })
        );
        assert_eq!(
            decode(T::EV_SEPARATOR, 0, &[0; 4], 0).unwrap(),
            EventData::Separator {
                value: 0,
                error: false
            }
        );
        assert_eq!(
            decode(T::EV_SEPARATOR, 0, &[1, 0, 0, 0], 0).unwrap(),
            EventData::Separator {
                value: 1,
                error: true
            }
        );
        assert_eq!(
            decode(T::EV_SEPARATOR, 0, &[0; 3], 5),
            Err(DecodeError::BadSeparator { offset: 5, len: 3 })
        );
        // S-CRTM version: UCS-2, or a GUID in hex.
        let v: Vec<u8> = "GCE Virtual Firmware v1\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(
            matches!(decode(T::EV_S_CRTM_VERSION, 0, &v, 0).unwrap(), EventData::Text(ref t) if t.text == "GCE Virtual Firmware v1" && t.encoding == TextEncoding::Utf16le)
        );
        let g = hex::decode("1efb6b540c1d5540a4ad4ef4bf17b83a").unwrap();
        assert!(
            matches!(decode(T::EV_S_CRTM_VERSION, 0, &g, 0).unwrap(), EventData::Text(ref t) if t.encoding == TextEncoding::Hex)
        );
    }

    #[test]
    fn blobs_and_post_codes() {
        let blob = hex::decode("0000a9ff000000000000350000000000").unwrap();
        assert_eq!(
            decode(T::EV_POST_CODE, 0, &blob, 0).unwrap(),
            EventData::FirmwareBlob(FirmwareBlob {
                description: None,
                base: 0xffa9_0000,
                length: 0x35_0000
            })
        );
        assert!(
            matches!(decode(T::EV_POST_CODE, 0, b"ACPI DATA", 0).unwrap(), EventData::Text(ref t) if t.text == "ACPI DATA")
        );
        assert!(
            matches!(decode(T::EV_POST_CODE, 0, &[0xff; 5], 0).unwrap(), EventData::Text(ref t) if t.encoding == TextEncoding::Hex)
        );
        assert!(decode(T::EV_EFI_PLATFORM_FIRMWARE_BLOB, 0, &blob[..12], 0).is_err());
        assert!(matches!(
            decode(
                T::EV_S_CRTM_CONTENTS,
                0,
                b"FIT Type 0x02 Measured S-CRTM\0",
                0
            )
            .unwrap(),
            EventData::Text(_)
        ));
    }

    #[test]
    fn ipl_kinds() {
        let ipl = |pcr, data: &[u8]| match decode(T::EV_IPL, pcr, data, 0).unwrap() {
            EventData::Ipl(i) => i,
            other => panic!("{other:?}"),
        };
        let i = ipl(8, b"grub_cmd: linux /vmlinuz root=/dev/sda1\0");
        assert_eq!(
            (i.kind, i.value.as_deref()),
            (IplKind::GrubCmd, Some("linux /vmlinuz root=/dev/sda1"))
        );
        let i = ipl(8, b"kernel_cmdline: /vmlinuz ro quiet\0");
        assert_eq!(
            (i.kind, i.value.as_deref()),
            (IplKind::KernelCmdline, Some("/vmlinuz ro quiet"))
        );
        let i = ipl(8, b"grub_kernel_cmdline /vmlinuz ro\0");
        assert_eq!(i.kind, IplKind::KernelCmdline);
        assert_eq!(
            ipl(9, b"(hd0,gpt1)/boot/grub/grub.cfg\0").kind,
            IplKind::GrubFile
        );
        assert_eq!(ipl(14, b"MokList\0").kind, IplKind::ShimVariable);
        let u: Vec<u8> = "initrd=\\initrd.img quiet\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let i = ipl(12, &u);
        assert_eq!(
            (i.kind, i.encoding),
            (IplKind::KernelCmdline, TextEncoding::Utf16le)
        );
        assert_eq!(
            ipl(8, &[0xde, 0xad, 0xbe, 0xef, 0x01]).kind,
            IplKind::Binary
        );
    }

    #[test]
    fn variables_and_tagged_events() {
        let d = decode(
            T::EV_EFI_VARIABLE_DRIVER_CONFIG,
            7,
            &var(guids::EFI_GLOBAL_VARIABLE, "SecureBoot", &[]),
            0,
        )
        .unwrap();
        assert!(matches!(d, EventData::Variable(ref v) if v.value == VariableValue::Empty));
        let t = hex::decode("ec223b8f0d0000004c696e757820696e6974726400").unwrap();
        let EventData::TaggedEvent(t) = decode(T::EV_EVENT_TAG, 9, &t, 0).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.tagged_event_id, t.known_id, t.data.text.as_str()),
            (0x8f3b_22ec, Some("linux_initrd"), "Linux initrd")
        );
        assert!(decode(T::EV_EVENT_TAG, 9, &[1, 0, 0, 0, 0xff, 0, 0, 0], 0).is_err());
        assert_eq!(
            decode(T::Unknown(0x77), 0, &[1], 0).unwrap(),
            EventData::Unknown
        );
        assert_eq!(
            decode(T::EV_NO_ACTION, 0, b"NvIndexInstance\0", 0).unwrap(),
            EventData::Unknown
        );
    }

    #[test]
    fn measured_bytes_rules() {
        let v = var(guids::EFI_GLOBAL_VARIABLE, "BootOrder", &[1, 0, 2, 0]);
        assert_eq!(
            measured_bytes(T::EV_EFI_VARIABLE_BOOT, 1, &v).as_deref(),
            Some(&[1u8, 0, 2, 0][..])
        );
        assert_eq!(
            measured_bytes(T::EV_EFI_VARIABLE_BOOT2, 1, &v).as_deref(),
            Some(&v[..])
        );
        assert_eq!(
            measured_bytes(T::EV_EFI_VARIABLE_DRIVER_CONFIG, 7, &v).as_deref(),
            Some(&v[..])
        );
        let mut padded = v.clone();
        padded.extend([0; 6]);
        assert_eq!(
            measured_bytes(T::EV_EFI_VARIABLE_AUTHORITY, 7, &padded).as_deref(),
            Some(&padded[..])
        );
        let q = measured_bytes_quirks(T::EV_EFI_VARIABLE_AUTHORITY, 7, &padded);
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].0, q[0].1.len()),
            (DigestQuirk::ShimAuthorityLastByteUnhashed, padded.len() - 1)
        );
        assert!(measured_bytes_quirks(T::EV_EFI_VARIABLE_AUTHORITY, 7, &v).is_empty());
        let q = measured_bytes_quirks(T::EV_EFI_VARIABLE_BOOT, 1, &v);
        assert_eq!(
            q,
            vec![(
                DigestQuirk::VariableBootWholeStructure,
                Cow::Borrowed(&v[..])
            )]
        );
        // Malformed variable data: no rule rather than a panic.
        assert_eq!(measured_bytes(T::EV_EFI_VARIABLE_BOOT, 1, &v[..30]), None);
        assert_eq!(
            measured_bytes(T::EV_EFI_VARIABLE_BOOT, 1, &[0xff; 40]),
            None
        );
        assert_eq!(
            measured_bytes(T::EV_IPL, 8, b"grub_cmd: ls\0").as_deref(),
            Some(&b"ls"[..])
        );
        assert_eq!(
            measured_bytes(T::EV_IPL, 8, b"grub_cmd search --set\0").as_deref(),
            Some(&b"search --set\0"[..])
        );
        assert_eq!(
            measured_bytes(T::EV_IPL, 8, b"grub_kernel_cmdline ro\0").as_deref(),
            Some(&b"ro"[..])
        );
        assert_eq!(
            measured_bytes(T::EV_IPL, 8, b"kernel_cmdline: /vmlinuz ro").as_deref(),
            Some(&b"/vmlinuz ro"[..])
        );
        let u: Vec<u8> = "quiet\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(measured_bytes(T::EV_IPL, 12, &u), None);
        assert_eq!(measured_bytes(T::EV_IPL, 9, b"/boot/vmlinuz\0"), None);
        assert_eq!(
            measured_bytes(T::EV_EFI_BOOT_SERVICES_APPLICATION, 4, &[0; 40]),
            None
        );
        assert_eq!(
            measured_bytes(T::EV_SEPARATOR, 4, &[0; 4]).as_deref(),
            Some(&[0u8; 4][..])
        );
    }

    #[test]
    fn never_panics_on_short_or_garbage_input() {
        let types = (0u32..0x14)
            .chain(0x8000_0001..0x8000_000e)
            .chain([0x8000_0010])
            .chain(0x8000_00e0..0x8000_00e5);
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0xff; 3],
            vec![0; 31],
            vec![0xff; 64],
            (0..=255).collect(),
        ];
        for t in types {
            for d in &inputs {
                for pcr in [0, 8, 9, 12, 14] {
                    let _ = decode(EventType::from_u32(t), pcr, d, 3);
                    let _ = measured_bytes(EventType::from_u32(t), pcr, d);
                }
            }
        }
    }
}
