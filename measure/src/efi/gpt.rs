//! `UEFI_GPT_DATA` (TCG PC Client PFP 1.06 sec. 10.2.5), the data of `EV_EFI_GPT_EVENT` and
//! `EV_EFI_GPT_EVENT2`: the GPT header and the partition entries in use (UEFI 2.10 sec. 5.3).
//!
//! ```text
//! UEFI_GPT_DATA { UEFI_PARTITION_TABLE_HEADER UEFIPartitionHeader; /* 92 bytes, packed */
//!                 u64 NumberOfPartitions;
//!                 UEFI_PARTITION_ENTRY Partitions[NumberOfPartitions] /* each
//!                                       UEFIPartitionHeader.SizeOfPartitionEntry bytes */ }
//! ```
//!
//! `NumberOfPartitions` comes from the input: it is checked against the remaining bytes (times
//! the entry size) before anything is allocated. For `EV_EFI_GPT_EVENT2` PFP 1.06 zeroes the
//! disk and partition GUIDs; the layout is the same.

use super::guids;
use super::text::utf16_fixed;
use super::{EfiError, Guid};
use crate::codec::Reader;
use serde::Serialize;

/// `EFI PART`, little-endian.
pub const GPT_SIGNATURE: u64 = 0x5452_4150_2049_4645;
/// Size of `UEFI_PARTITION_TABLE_HEADER` as logged (the 92 bytes UEFI defines).
pub const HEADER_SIZE: usize = 92;
/// Smallest partition entry (UEFI 2.10 sec. 5.3.3).
pub const MIN_ENTRY_SIZE: u32 = 128;

/// `UEFI_PARTITION_TABLE_HEADER` (UEFI 2.10 table 5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptHeader {
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub partition_entry_lba: u64,
    pub number_of_partition_entries: u32,
    pub size_of_partition_entry: u32,
    pub partition_entry_array_crc32: u32,
}

/// `UEFI_PARTITION_ENTRY` (UEFI 2.10 table 5.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptPartition {
    pub partition_type: Guid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_type_name: Option<&'static str>,
    pub unique_partition_guid: Guid,
    pub starting_lba: u64,
    pub ending_lba: u64,
    pub attributes: u64,
    /// `PartitionName` up to its first NUL.
    pub name: String,
}

/// A decoded `UEFI_GPT_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GptData {
    pub header: GptHeader,
    pub number_of_partitions: u64,
    pub partitions: Vec<GptPartition>,
}

impl GptData {
    /// Parses `data` (which it must fill exactly), whose first byte is at absolute offset
    /// `base`.
    pub fn parse(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let mut h = r.sub(HEADER_SIZE, "UEFI_PARTITION_TABLE_HEADER")?;
        let offset = h.offset();
        let signature = h.u64_le("Signature")?;
        if signature != GPT_SIGNATURE {
            return Err(EfiError::BadGptSignature { offset, signature });
        }
        let revision = h.u32_le("Revision")?;
        let header_size = h.u32_le("HeaderSize")?;
        let header_crc32 = h.u32_le("HeaderCRC32")?;
        h.u32_le("Reserved")?;
        let header = GptHeader {
            revision,
            header_size,
            header_crc32,
            my_lba: h.u64_le("MyLBA")?,
            alternate_lba: h.u64_le("AlternateLBA")?,
            first_usable_lba: h.u64_le("FirstUsableLBA")?,
            last_usable_lba: h.u64_le("LastUsableLBA")?,
            disk_guid: h.guid("DiskGUID")?,
            partition_entry_lba: h.u64_le("PartitionEntryLBA")?,
            number_of_partition_entries: h.u32_le("NumberOfPartitionEntries")?,
            size_of_partition_entry: h.u32_le("SizeOfPartitionEntry")?,
            partition_entry_array_crc32: h.u32_le("PartitionEntryArrayCRC32")?,
        };
        h.finish("UEFI_PARTITION_TABLE_HEADER")?;
        let entry_size = header.size_of_partition_entry;
        if entry_size < MIN_ENTRY_SIZE {
            return Err(EfiError::BadPartitionEntrySize {
                offset: offset + 84,
                size: entry_size,
            });
        }
        let count_offset = r.offset();
        let number_of_partitions = r.u64_le("NumberOfPartitions")?;
        let entry = usize::try_from(entry_size).unwrap_or(usize::MAX);
        let fits = usize::try_from(number_of_partitions)
            .ok()
            .and_then(|n| n.checked_mul(entry))
            .is_some_and(|total| total <= r.remaining());
        if !fits {
            return Err(EfiError::CountTooLarge {
                offset: count_offset,
                what: "NumberOfPartitions",
                count: number_of_partitions,
                remaining: r.remaining(),
            });
        }
        let mut partitions = Vec::with_capacity(r.remaining() / entry);
        for _ in 0..number_of_partitions {
            let mut e = r.sub(entry, "UEFI_PARTITION_ENTRY")?;
            let partition_type = e.guid("PartitionTypeGUID")?;
            let unique_partition_guid = e.guid("UniquePartitionGUID")?;
            let starting_lba = e.u64_le("StartingLBA")?;
            let ending_lba = e.u64_le("EndingLBA")?;
            let attributes = e.u64_le("Attributes")?;
            let name_offset = e.offset();
            let name = utf16_fixed(e.take(72, "PartitionName")?, name_offset, "PartitionName")?;
            partitions.push(GptPartition {
                partition_type,
                partition_type_name: guids::name(&partition_type),
                unique_partition_guid,
                starting_lba,
                ending_lba,
                attributes,
                name,
            });
        }
        r.finish("UEFI_GPT_DATA")?;
        Ok(GptData {
            header,
            number_of_partitions,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecError;

    fn header(entry_size: u32) -> Vec<u8> {
        let mut h = GPT_SIGNATURE.to_le_bytes().to_vec();
        h.extend(0x0001_0000u32.to_le_bytes());
        h.extend(92u32.to_le_bytes());
        h.extend([0; 8]); // crc, reserved
        h.extend(1u64.to_le_bytes());
        h.extend(0x3fffffu64.to_le_bytes());
        h.extend(34u64.to_le_bytes());
        h.extend(0x3fffdeu64.to_le_bytes());
        h.extend([0xaa; 16]);
        h.extend(2u64.to_le_bytes());
        h.extend(128u32.to_le_bytes());
        h.extend(entry_size.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        assert_eq!(h.len(), HEADER_SIZE);
        h
    }

    fn entry(name: &str, size: usize) -> Vec<u8> {
        let mut e = guids::EFI_SYSTEM_PARTITION.0.to_vec();
        e.extend([0x11; 16]);
        e.extend(2048u64.to_le_bytes());
        e.extend(1_050_623u64.to_le_bytes());
        e.extend(0u64.to_le_bytes());
        let mut n: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        n.resize(72, 0);
        e.extend(n);
        e.resize(size, 0);
        e
    }

    #[test]
    fn parses_header_and_entries() {
        let mut d = header(128);
        d.extend(2u64.to_le_bytes());
        d.extend(entry("EFI System Partition", 128));
        d.extend(entry("root", 128));
        let g = GptData::parse(&d, 0).unwrap();
        assert_eq!(g.header.last_usable_lba, 0x3fffde);
        assert_eq!(g.partitions.len(), 2);
        assert_eq!(g.partitions[0].name, "EFI System Partition");
        assert_eq!(
            g.partitions[0].partition_type_name,
            Some("EFI_SYSTEM_PARTITION")
        );
        assert_eq!(g.partitions[1].starting_lba, 2048);
        // Larger entries are allowed; the extra bytes are skipped.
        let mut d = header(256);
        d.extend(1u64.to_le_bytes());
        d.extend(entry("x", 256));
        assert_eq!(GptData::parse(&d, 0).unwrap().partitions[0].name, "x");
    }

    #[test]
    fn malformed() {
        // Huge NumberOfPartitions: refused before allocation.
        let mut d = header(128);
        d.extend(u64::MAX.to_le_bytes());
        d.extend(entry("a", 128));
        assert!(matches!(
            GptData::parse(&d, 10),
            Err(EfiError::CountTooLarge {
                offset: 102,
                count: u64::MAX,
                remaining: 128,
                ..
            })
        ));
        let mut d = header(128);
        d.extend(2u64.to_le_bytes());
        d.extend(entry("a", 128));
        assert!(matches!(
            GptData::parse(&d, 0),
            Err(EfiError::CountTooLarge { count: 2, .. })
        ));
        // Entry size 0 and below 128.
        let mut d = header(0);
        d.extend(0u64.to_le_bytes());
        assert!(matches!(
            GptData::parse(&d, 0),
            Err(EfiError::BadPartitionEntrySize { size: 0, .. })
        ));
        // Wrong signature.
        let mut d = header(128);
        d[0] = b'X';
        d.extend(0u64.to_le_bytes());
        assert!(matches!(
            GptData::parse(&d, 0),
            Err(EfiError::BadGptSignature { offset: 0, .. })
        ));
        // Truncated header; trailing bytes.
        assert!(matches!(
            GptData::parse(&header(128)[..50], 0),
            Err(EfiError::Codec(_))
        ));
        let mut d = header(128);
        d.extend(0u64.to_le_bytes());
        d.push(0);
        assert!(matches!(
            GptData::parse(&d, 0),
            Err(EfiError::Codec(CodecError::Trailing { .. }))
        ));
        // Unpaired surrogate in a name.
        let mut d = header(128);
        d.extend(1u64.to_le_bytes());
        let mut e = entry("a", 128);
        e[56..58].copy_from_slice(&0xdc00u16.to_le_bytes());
        d.extend(e);
        assert!(matches!(
            GptData::parse(&d, 0),
            Err(EfiError::BadUtf16 { offset: 156, .. })
        ));
    }
}
