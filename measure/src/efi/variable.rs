//! `UEFI_VARIABLE_DATA` (TCG PC Client PFP 1.06 sec. 10.2.6), the data of
//! `EV_EFI_VARIABLE_DRIVER_CONFIG`, `EV_EFI_VARIABLE_BOOT`, `EV_EFI_VARIABLE_BOOT2` and
//! `EV_EFI_VARIABLE_AUTHORITY` events, and the typed contents of the variables firmware and
//! shim measure.
//!
//! ```text
//! UEFI_VARIABLE_DATA { GUID VariableName; u64 UnicodeNameLength /* CHAR16s */;
//!                      u64 VariableDataLength /* bytes */; CHAR16 UnicodeName[];
//!                      u8 VariableData[] }
//! ```
//!
//! Contents by variable (UEFI 2.10 sec. 3.3 and 32.6, shim's `MokVars.txt`):
//! - `SecureBoot`, `SetupMode`, `AuditMode`, `DeployedMode`, `VendorKeys`: one byte, a boolean.
//! - `PK`, `KEK`, `db`, `dbx`, `dbt`, `dbr`, their `*Default` forms, shim's `MokList` and
//!   `MokListX`: signature databases ([`super::siglist`]).
//! - `BootOrder`, `DriverOrder`, `SysPrepOrder`: lists of `u16`; `BootNext`, `BootCurrent`,
//!   `Timeout`: one `u16`.
//! - `Boot####`, `Driver####`, `SysPrep####`, `PlatformRecovery####`: `EFI_LOAD_OPTION`.
//! - shim's `SbatLevel`: text; `MokListTrusted`: one byte, a boolean (1 when shim trusts the
//!   MOK list for the kernel's keyrings; raw bytes if it is not one byte).
//! - Authority events ([`VariableContext::Authority`]): the `EFI_SIGNATURE_DATA` of the db
//!   entry (or MOK, or shim's built-in vendor certificate) that authorised an image.
//!
//! A variable with zero data bytes is [`VariableValue::Empty`] whatever its name: firmware logs
//! `SecureBoot` with no data when the variable does not exist (arch-linux-workstation.bin).
//!
//! **Known deviation, kept visible:** older shim versions log `EV_EFI_VARIABLE_AUTHORITY`
//! events six bytes longer than `VariableDataLength` says (the structure's C padding is counted
//! in the event size), and log a bare DER certificate instead of an `EFI_SIGNATURE_DATA`. Both
//! are decoded; the extra bytes are reported in [`VariableData::trailing`], not dropped.

use super::guids::{EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE_GUID, SHIM_LOCK_GUID};
use super::load_option::LoadOption;
use super::siglist::{self, Certificate, SignatureData, SignatureList};
use super::text::{le_units, read_utf16_units, Text};
use super::{EfiError, Guid};
use crate::codec::{CodecError, Reader};
use serde::Serialize;

/// Which event carried the variable; it changes how the data is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableContext {
    /// `EV_EFI_VARIABLE_DRIVER_CONFIG`, `EV_EFI_VARIABLE_BOOT`, `EV_EFI_VARIABLE_BOOT2`: the
    /// variable's contents.
    Contents,
    /// `EV_EFI_VARIABLE_AUTHORITY`: the signature-database entry that authorised an image.
    Authority,
}

/// A decoded `UEFI_VARIABLE_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableData {
    /// `VariableName`: the vendor GUID of the variable.
    pub vendor: Guid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_name: Option<&'static str>,
    /// `UnicodeName`.
    pub name: String,
    pub unicode_name_length: u64,
    pub variable_data_length: u64,
    pub value: VariableValue,
    /// Bytes after `VariableData` that `VariableDataLength` does not cover (see the module
    /// documentation); empty in conforming events.
    #[serde(
        serialize_with = "crate::serde_hex",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trailing: Vec<u8>,
}

/// The typed contents of a variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VariableValue {
    /// No data bytes.
    Empty,
    /// A one-byte boolean variable (`SecureBoot`, ...); `value` is `raw != 0`.
    Boolean { value: bool, raw: u8 },
    /// A signature database.
    SignatureLists { lists: Vec<SignatureList> },
    /// One signature-database entry (authority events).
    SignatureData(SignatureData),
    /// A bare DER certificate (authority events from older shim).
    Certificate(Certificate),
    /// `BootOrder` and friends.
    U16List { values: Vec<u16> },
    /// `BootNext`, `BootCurrent`, `Timeout`.
    U16 { value: u16 },
    /// `Boot####` and friends.
    LoadOption(LoadOption),
    /// A text variable (`SbatLevel`).
    Text(Text),
    /// Any other variable: the bytes.
    Raw {
        #[serde(serialize_with = "crate::serde_hex")]
        bytes: Vec<u8>,
    },
}

impl VariableData {
    /// Parses a `UEFI_VARIABLE_DATA` filling `data`, whose first byte is at absolute offset
    /// `base`.
    pub fn parse(data: &[u8], base: usize, context: VariableContext) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let vendor = r.guid("VariableName")?;
        let unicode_name_length = r.u64_le("UnicodeNameLength")?;
        let variable_data_length = r.u64_le("VariableDataLength")?;
        let name = read_utf16_units(&mut r, unicode_name_length, "UnicodeName")?;
        let len = usize::try_from(variable_data_length).map_err(|_| CodecError::Truncated {
            offset: r.offset(),
            what: "VariableData",
            needed: usize::MAX,
            remaining: r.remaining(),
        })?;
        let mut value_reader = r.sub(len, "VariableData")?;
        let value = decode_value(&vendor, &name, context, &mut value_reader)?;
        Ok(VariableData {
            vendor,
            vendor_name: vendor.name(),
            name,
            unicode_name_length,
            variable_data_length,
            value,
            trailing: r.rest().to_vec(),
        })
    }
}

/// True for `Prefix####` with four uppercase hex digits (UEFI 2.10 sec. 3.1.3).
fn is_numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|n| {
        n.len() == 4
            && n.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    })
}

fn decode_value(
    vendor: &Guid,
    name: &str,
    context: VariableContext,
    r: &mut Reader<'_>,
) -> Result<VariableValue, EfiError> {
    let offset = r.offset();
    if r.is_empty() {
        return Ok(VariableValue::Empty);
    }
    let raw = |r: &mut Reader<'_>| VariableValue::Raw {
        bytes: r.rest().to_vec(),
    };
    let bad_size = |expected: &'static str, actual: usize| EfiError::BadVariableSize {
        offset,
        name: name.to_owned(),
        expected,
        actual,
    };
    if context == VariableContext::Authority {
        return Ok(match (*vendor, name) {
            (SHIM_LOCK_GUID, "SbatLevel") => VariableValue::Text(Text::detect_utf8(r.rest())),
            (SHIM_LOCK_GUID, "MokListTrusted") => boolean_or_raw(r),
            _ if siglist::looks_like_der_certificate(r.peek_rest()) => {
                VariableValue::Certificate(Certificate::parse(r.rest(), offset)?)
            }
            _ if r.remaining() > 16 => {
                VariableValue::SignatureData(siglist::parse_authority_data(r)?)
            }
            _ => raw(r),
        });
    }
    let value = match (*vendor, name) {
        (EFI_GLOBAL_VARIABLE, "SecureBoot" | "SetupMode" | "AuditMode" | "DeployedMode")
        | (EFI_GLOBAL_VARIABLE, "VendorKeys") => {
            let bytes = r.rest();
            let [b] = bytes else {
                return Err(bad_size("1", bytes.len()));
            };
            VariableValue::Boolean {
                value: *b != 0,
                raw: *b,
            }
        }
        (EFI_GLOBAL_VARIABLE, "PK" | "KEK" | "PKDefault" | "KEKDefault")
        | (EFI_GLOBAL_VARIABLE, "dbDefault" | "dbxDefault" | "dbtDefault" | "dbrDefault")
        | (EFI_IMAGE_SECURITY_DATABASE_GUID, "db" | "dbx" | "dbt" | "dbr")
        | (SHIM_LOCK_GUID, "MokList" | "MokListX") => VariableValue::SignatureLists {
            lists: siglist::parse_lists(r)?,
        },
        (EFI_GLOBAL_VARIABLE, "BootOrder" | "DriverOrder" | "SysPrepOrder") => {
            let bytes = r.rest();
            if bytes.len() % 2 == 1 {
                return Err(bad_size("an even number of", bytes.len()));
            }
            VariableValue::U16List {
                values: le_units(bytes).collect(),
            }
        }
        (EFI_GLOBAL_VARIABLE, "BootNext" | "BootCurrent" | "Timeout") => {
            if r.remaining() != 2 {
                return Err(bad_size("2", r.remaining()));
            }
            VariableValue::U16 {
                value: r.u16_le("u16 variable")?,
            }
        }
        (EFI_GLOBAL_VARIABLE, n)
            if is_numbered(n, "Boot")
                || is_numbered(n, "Driver")
                || is_numbered(n, "SysPrep")
                || is_numbered(n, "PlatformRecovery") =>
        {
            VariableValue::LoadOption(LoadOption::parse(r)?)
        }
        (SHIM_LOCK_GUID, "SbatLevel") => VariableValue::Text(Text::detect_utf8(r.rest())),
        (SHIM_LOCK_GUID, "MokListTrusted") => boolean_or_raw(r),
        _ => raw(r),
    };
    Ok(value)
}

/// A one-byte value as a boolean, anything else as raw bytes (shim's `MokListTrusted`).
fn boolean_or_raw(r: &mut Reader<'_>) -> VariableValue {
    match r.rest() {
        [b] => VariableValue::Boolean {
            value: *b != 0,
            raw: *b,
        },
        bytes => VariableValue::Raw {
            bytes: bytes.to_vec(),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::efi::guids;

    pub(crate) fn var(vendor: Guid, name: &str, data: &[u8]) -> Vec<u8> {
        let units: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut v = vendor.0.to_vec();
        v.extend(u64::try_from(units.len() / 2).unwrap().to_le_bytes());
        v.extend(u64::try_from(data.len()).unwrap().to_le_bytes());
        v.extend(units);
        v.extend(data);
        v
    }

    fn parse(bytes: &[u8]) -> Result<VariableData, EfiError> {
        VariableData::parse(bytes, 0, VariableContext::Contents)
    }

    #[test]
    fn simple_variables() {
        let v = parse(&var(EFI_GLOBAL_VARIABLE, "SecureBoot", &[1])).unwrap();
        assert_eq!(v.name, "SecureBoot");
        assert_eq!(v.vendor_name, Some("EFI_GLOBAL_VARIABLE"));
        assert_eq!(
            v.value,
            VariableValue::Boolean {
                value: true,
                raw: 1
            }
        );
        // Zero-length SecureBoot (arch-linux-workstation.bin) decodes.
        let v = parse(&var(EFI_GLOBAL_VARIABLE, "SecureBoot", &[])).unwrap();
        assert_eq!(v.value, VariableValue::Empty);
        let v = parse(&var(EFI_GLOBAL_VARIABLE, "BootOrder", &[0, 0, 3, 0, 2, 0])).unwrap();
        assert_eq!(
            v.value,
            VariableValue::U16List {
                values: vec![0, 3, 2]
            }
        );
        let v = parse(&var(EFI_GLOBAL_VARIABLE, "Timeout", &[5, 0])).unwrap();
        assert_eq!(v.value, VariableValue::U16 { value: 5 });
        let v = parse(&var(SHIM_LOCK_GUID, "SbatLevel", b"sbat,1,2021030218\n")).unwrap();
        assert!(matches!(v.value, VariableValue::Text(ref t) if t.text == "sbat,1,2021030218\n"));
        let v = parse(&var(Guid([9; 16]), "Vendor", &[1, 2])).unwrap();
        assert_eq!(v.value, VariableValue::Raw { bytes: vec![1, 2] });
        assert!(is_numbered("Boot00A1", "Boot"));
        assert!(!is_numbered("Boot00a1", "Boot"));
        assert!(!is_numbered("BootOrder", "Boot"));
    }

    #[test]
    fn databases_and_authority() {
        let der = hex::decode(crate::efi::siglist::tests::TEST_CERT).unwrap();
        let owner = guids::MICROSOFT_SIGNATURE_OWNER;
        let mut entry = owner.0.to_vec();
        entry.extend(&der);
        let size = u32::try_from(entry.len()).unwrap();
        let db = crate::efi::siglist::tests::list(
            guids::EFI_CERT_X509_GUID,
            &[],
            size,
            &[entry.clone()],
        );
        let v = parse(&var(EFI_IMAGE_SECURITY_DATABASE_GUID, "db", &db)).unwrap();
        let VariableValue::SignatureLists { lists } = v.value else {
            panic!()
        };
        assert_eq!(lists.len(), 1);

        let auth = |name: &str, data: &[u8]| {
            VariableData::parse(
                &var(EFI_IMAGE_SECURITY_DATABASE_GUID, name, data),
                0,
                VariableContext::Authority,
            )
        };
        assert!(matches!(
            auth("db", &entry).unwrap().value,
            VariableValue::SignatureData(_)
        ));
        assert!(matches!(
            auth("db", &der).unwrap().value,
            VariableValue::Certificate(_)
        ));
        // Old shim: six bytes past VariableDataLength.
        let mut padded = var(SHIM_LOCK_GUID, "Shim", &der);
        padded.extend([0; 6]);
        let v = VariableData::parse(&padded, 0, VariableContext::Authority).unwrap();
        assert!(matches!(v.value, VariableValue::Certificate(_)));
        assert_eq!(v.trailing, [0; 6]);
        let v = VariableData::parse(
            &var(SHIM_LOCK_GUID, "MokListTrusted", &[1]),
            0,
            VariableContext::Authority,
        )
        .unwrap();
        assert_eq!(
            v.value,
            VariableValue::Boolean {
                value: true,
                raw: 1
            }
        );
    }

    #[test]
    fn malformed() {
        // Boolean of the wrong size.
        assert!(matches!(
            parse(&var(EFI_GLOBAL_VARIABLE, "SecureBoot", &[1, 0])),
            Err(EfiError::BadVariableSize { actual: 2, .. })
        ));
        // Odd BootOrder.
        assert!(matches!(
            parse(&var(EFI_GLOBAL_VARIABLE, "BootOrder", &[1, 0, 2])),
            Err(EfiError::BadVariableSize { actual: 3, .. })
        ));
        // Name length larger than the input, and absurdly large.
        let mut b = var(EFI_GLOBAL_VARIABLE, "PK", &[]);
        b[16..24].copy_from_slice(&1000u64.to_le_bytes());
        assert!(matches!(
            parse(&b),
            Err(EfiError::Codec(CodecError::Truncated { offset: 32, .. }))
        ));
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&b), Err(EfiError::CountTooLarge { .. })));
        // Data length larger than the input.
        let mut b = var(EFI_GLOBAL_VARIABLE, "PK", &[1]);
        b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(parse(&b), Err(EfiError::Codec(_))));
        // Unpaired surrogate in the name.
        let mut b = var(EFI_GLOBAL_VARIABLE, "PK", &[]);
        b[32..34].copy_from_slice(&0xd800u16.to_le_bytes());
        assert!(matches!(
            parse(&b),
            Err(EfiError::BadUtf16 { offset: 32, .. })
        ));
        // Truncated header.
        assert!(matches!(parse(&[0; 20]), Err(EfiError::Codec(_))));
        // A db that is not a signature list.
        assert!(parse(&var(EFI_IMAGE_SECURITY_DATABASE_GUID, "db", &[1, 2, 3])).is_err());
    }
}
