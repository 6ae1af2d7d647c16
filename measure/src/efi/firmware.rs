//! Firmware blobs and handoff tables (TCG PC Client PFP 1.06 sec. 10.2.4 and 10.2.7):
//!
//! ```text
//! UEFI_PLATFORM_FIRMWARE_BLOB  { EFI_PHYSICAL_ADDRESS BlobBase; u64 BlobLength }
//! UEFI_PLATFORM_FIRMWARE_BLOB2 { u8 BlobDescriptionSize; u8 BlobDescription[];
//!                                EFI_PHYSICAL_ADDRESS BlobBase; u64 BlobLength }
//! UEFI_HANDOFF_TABLE_POINTERS  { UINTN NumberOfTables; EFI_CONFIGURATION_TABLE TableEntry[] }
//! UEFI_HANDOFF_TABLE_POINTERS2 { u8 TableDescriptionSize; u8 TableDescription[];
//!                                UINTN NumberOfTables; EFI_CONFIGURATION_TABLE TableEntry[] }
//! EFI_CONFIGURATION_TABLE      { EFI_GUID VendorGuid; VOID *VendorTable }
//! ```
//!
//! The digests of these events cover memory (a firmware volume, an ACPI or SMBIOS table), not
//! the event data. `UINTN` and pointers are read as 64 bits.

use super::text::Text;
use super::{EfiError, Guid};
use crate::codec::Reader;
use serde::Serialize;

/// A `UEFI_PLATFORM_FIRMWARE_BLOB` (or `BLOB2`, with a description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirmwareBlob {
    /// `BlobDescription` of a `BLOB2` (usually ASCII, e.g. `fv_image`), `None` for a `BLOB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    pub base: u64,
    pub length: u64,
}

impl FirmwareBlob {
    /// Parses a `UEFI_PLATFORM_FIRMWARE_BLOB` filling `data`.
    pub fn parse(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let blob = FirmwareBlob {
            description: None,
            base: r.u64_le("BlobBase")?,
            length: r.u64_le("BlobLength")?,
        };
        r.finish("UEFI_PLATFORM_FIRMWARE_BLOB")?;
        Ok(blob)
    }

    /// Parses a `UEFI_PLATFORM_FIRMWARE_BLOB2` filling `data`.
    pub fn parse2(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let size = r.u8("BlobDescriptionSize")?;
        let description = Text::detect_utf8(r.take(usize::from(size), "BlobDescription")?);
        let blob = FirmwareBlob {
            description: Some(description),
            base: r.u64_le("BlobBase")?,
            length: r.u64_le("BlobLength")?,
        };
        r.finish("UEFI_PLATFORM_FIRMWARE_BLOB2")?;
        Ok(blob)
    }
}

/// One `EFI_CONFIGURATION_TABLE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigurationTable {
    pub vendor_guid: Guid,
    /// `SMBIOS3_TABLE_GUID`, `EFI_ACPI_20_TABLE_GUID`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    pub vendor_table: u64,
}

/// A `UEFI_HANDOFF_TABLE_POINTERS` (or `POINTERS2`, with a description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffTables {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    pub number_of_tables: u64,
    pub tables: Vec<ConfigurationTable>,
}

/// Size of one `EFI_CONFIGURATION_TABLE` with 64-bit pointers.
const TABLE_SIZE: usize = 24;

impl HandoffTables {
    /// Parses a `UEFI_HANDOFF_TABLE_POINTERS` filling `data`.
    pub fn parse(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        Self::tables(&mut r, None)
    }

    /// Parses a `UEFI_HANDOFF_TABLE_POINTERS2` filling `data`.
    pub fn parse2(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let size = r.u8("TableDescriptionSize")?;
        let description = Text::detect_utf8(r.take(usize::from(size), "TableDescription")?);
        Self::tables(&mut r, Some(description))
    }

    fn tables(r: &mut Reader<'_>, description: Option<Text>) -> Result<Self, EfiError> {
        let offset = r.offset();
        let number_of_tables = r.u64_le("NumberOfTables")?;
        let fits = usize::try_from(number_of_tables)
            .ok()
            .and_then(|n| n.checked_mul(TABLE_SIZE))
            .is_some_and(|total| total <= r.remaining());
        if !fits {
            return Err(EfiError::CountTooLarge {
                offset,
                what: "NumberOfTables",
                count: number_of_tables,
                remaining: r.remaining(),
            });
        }
        let mut tables = Vec::with_capacity(r.remaining() / TABLE_SIZE);
        for _ in 0..number_of_tables {
            let vendor_guid = r.guid("VendorGuid")?;
            let vendor_table = r.u64_le("VendorTable")?;
            tables.push(ConfigurationTable {
                vendor_guid,
                name: vendor_guid.name(),
                vendor_table,
            });
        }
        r.finish("UEFI_HANDOFF_TABLE_POINTERS")?;
        Ok(HandoffTables {
            description,
            number_of_tables,
            tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecError;

    #[test]
    fn blobs() {
        let b = FirmwareBlob::parse(&hex::decode("0000f0ff00000000d059000000000000").unwrap(), 0)
            .unwrap();
        assert_eq!((b.base, b.length), (0xfff0_0000, 0x59d0));
        let mut d = vec![8];
        d.extend(b"fv_image");
        d.extend(0x1000u64.to_le_bytes());
        d.extend(0x2000u64.to_le_bytes());
        let b = FirmwareBlob::parse2(&d, 0).unwrap();
        assert_eq!(b.description.unwrap().text, "fv_image");
        assert!(matches!(
            FirmwareBlob::parse(&[0; 15], 0),
            Err(EfiError::Codec(_))
        ));
        assert!(matches!(
            FirmwareBlob::parse(&[0; 17], 0),
            Err(EfiError::Codec(CodecError::Trailing { .. }))
        ));
        assert!(matches!(
            FirmwareBlob::parse2(&[200, 1, 2], 0),
            Err(EfiError::Codec(_))
        ));
    }

    #[test]
    fn handoff_tables() {
        // kl_bbm.bin event 49: one SMBIOS3 table.
        let d = hex::decode("01000000000000004415fdf294972c4a992ee5bbcf20e3940000cb8f00000000")
            .unwrap();
        let t = HandoffTables::parse(&d, 0).unwrap();
        assert_eq!(t.tables.len(), 1);
        assert_eq!(t.tables[0].name, Some("SMBIOS3_TABLE_GUID"));
        assert_eq!(t.tables[0].vendor_table, 0x8fcb_0000);
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend([0; 24]);
        assert!(matches!(
            HandoffTables::parse(&huge, 0),
            Err(EfiError::CountTooLarge { .. })
        ));
        let mut d2 = vec![3];
        d2.extend(b"abc");
        d2.extend(&d);
        assert_eq!(
            HandoffTables::parse2(&d2, 0)
                .unwrap()
                .description
                .unwrap()
                .text,
            "abc"
        );
    }
}
