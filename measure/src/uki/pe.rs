//! Just enough PE/COFF to find the sections of a Unified Kernel Image.
//!
//! Layout per the Microsoft "PE Format" specification
//! (<https://learn.microsoft.com/en-us/windows/win32/debug/pe-format>):
//! - MS-DOS stub: `MZ` at offset 0, the offset of the PE signature (`e_lfanew`) at 0x3c;
//! - `PE\0\0`, then the 20-byte COFF file header (Machine, NumberOfSections, TimeDateStamp,
//!   PointerToSymbolTable, NumberOfSymbols, SizeOfOptionalHeader, Characteristics);
//! - the optional header (magic 0x10b for PE32, 0x20b for PE32+; `SizeOfImage` at offset 56 in
//!   both);
//! - the section table, 40 bytes per section: Name[8], VirtualSize, VirtualAddress,
//!   SizeOfRawData, PointerToRawData, then relocation/line-number fields and Characteristics.
//!
//! A loader maps `min(VirtualSize, SizeOfRawData)` bytes from the file and zero-fills the rest of
//! `VirtualSize`; systemd-stub measures `VirtualSize` bytes of the section *in memory*
//! (systemd `src/boot/efi/pe.c`, `pe_memory_locate_sections`), so [`Section::measured_content`]
//! reproduces exactly that: the raw bytes, then zeros.
//!
//! Every field read from the file goes through [`crate::codec::Reader`]; every section is checked
//! to lie inside the file and inside `SizeOfImage`, and sections may not overlap in memory.

use crate::codec::{CodecError, Reader};
use serde::Serialize;
use thiserror::Error;

/// `IMAGE_DOS_SIGNATURE`.
const DOS_MAGIC: [u8; 2] = *b"MZ";
/// `IMAGE_NT_SIGNATURE`.
const PE_MAGIC: [u8; 4] = *b"PE\0\0";
/// Optional header magic of PE32 images.
pub const PE32_MAGIC: u16 = 0x10b;
/// Optional header magic of PE32+ images (every 64-bit UEFI image).
pub const PE32_PLUS_MAGIC: u16 = 0x20b;
/// Offset of `SizeOfImage` inside the optional header (same for PE32 and PE32+).
const SIZE_OF_IMAGE_OFFSET: usize = 56;
/// Bytes per section header.
const SECTION_HEADER_LEN: usize = 40;

/// A PE/COFF image that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The file does not start with `MZ`.
    #[error("not a PE image: DOS magic is {found:02x?}, expected \"MZ\"")]
    BadDosMagic { found: [u8; 2] },
    /// `e_lfanew` does not point at `PE\0\0`.
    #[error("not a PE image: signature at offset {offset} is {found:02x?}, expected \"PE\\0\\0\"")]
    BadPeSignature { offset: usize, found: [u8; 4] },
    /// The optional header is neither PE32 nor PE32+.
    #[error("unknown optional header magic {found:#06x} at offset {offset}")]
    BadOptionalMagic { offset: usize, found: u16 },
    /// The optional header is too short to hold `SizeOfImage`.
    #[error("optional header of {size} bytes is too short (needs at least {needed})")]
    OptionalHeaderTooShort { size: u16, needed: usize },
    /// A section's raw data lies (partly) outside the file.
    #[error(
        "section {name:?}: raw data at {pointer}+{size} lies outside the {file_len}-byte file"
    )]
    SectionOutOfFile {
        name: String,
        pointer: u32,
        size: u32,
        file_len: usize,
    },
    /// A section lies (partly) outside `SizeOfImage` in memory.
    #[error(
        "section {name:?}: {address:#x}+{size:#x} lies outside the image ({size_of_image:#x} bytes)"
    )]
    SectionOutsideImage {
        name: String,
        address: u32,
        size: u32,
        size_of_image: u32,
    },
    /// Two sections overlap in memory.
    #[error("sections {first:?} and {second:?} overlap in memory")]
    OverlappingSections { first: String, second: String },
}

/// One entry of the section table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The name as stored (up to 8 bytes, NUL padding removed), lossily decoded.
    pub name: String,
    /// The 8 name bytes exactly as stored.
    #[serde(skip)]
    pub raw_name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    /// Absolute file offset of this section header.
    pub header_offset: usize,
}

impl Section {
    /// True if this section's name is exactly `name` (which must be at most 8 bytes; the rest of
    /// the field must be NUL), as systemd-stub compares names.
    pub fn is_named(&self, name: &str) -> bool {
        let n = name.as_bytes();
        n.len() <= 8
            && self.raw_name.get(..n.len()) == Some(n)
            && self
                .raw_name
                .get(n.len()..)
                .is_some_and(|rest| rest.iter().all(|b| *b == 0))
    }

    /// What a loader puts in memory for this section, as measured by systemd-stub: the first
    /// `min(VirtualSize, SizeOfRawData)` bytes from the file, then zeros up to `VirtualSize`.
    pub fn measured_content<'a>(&self, file: &'a [u8]) -> MeasuredContent<'a> {
        let from_file = self.virtual_size.min(self.size_of_raw_data) as usize;
        let start = self.pointer_to_raw_data as usize;
        // Bounds were checked by `PeImage::parse`; an empty slice is only reachable if a caller
        // pairs a section with a different file.
        let bytes = start
            .checked_add(from_file)
            .and_then(|end| file.get(start..end))
            .unwrap_or_default();
        MeasuredContent {
            bytes,
            zeros: (self.virtual_size as usize).saturating_sub(bytes.len()),
        }
    }
}

/// The bytes of a section as it is in memory: file bytes followed by `zeros` zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredContent<'a> {
    pub bytes: &'a [u8],
    pub zeros: usize,
}

impl MeasuredContent<'_> {
    /// Total length (`VirtualSize`).
    pub fn len(&self) -> usize {
        self.bytes.len().saturating_add(self.zeros)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `H(content)`, without materialising the zero tail.
    pub fn digest(&self, alg: crate::HashAlg) -> Vec<u8> {
        static ZEROS: [u8; 65536] = [0; 65536];
        let mut parts: Vec<&[u8]> = vec![self.bytes];
        let mut left = self.zeros;
        while left > 0 {
            let n = left.min(ZEROS.len());
            parts.push(ZEROS.get(..n).unwrap_or_default());
            left -= n;
        }
        alg.hash_parts(&parts)
    }
}

/// A parsed PE/COFF image: its headers and section table. Section contents stay in the caller's
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeImage {
    /// COFF `Machine` (0x8664 x86-64, 0xaa64 arm64, ...).
    pub machine: u16,
    /// Optional header magic: [`PE32_MAGIC`] or [`PE32_PLUS_MAGIC`].
    pub optional_magic: u16,
    /// `SizeOfImage`: how much memory the loader reserves.
    pub size_of_image: u32,
    pub sections: Vec<Section>,
}

impl PeImage {
    /// Parses the headers and section table of `file`, checking every section against the file
    /// and the image size.
    pub fn parse(file: &[u8]) -> Result<Self, PeError> {
        let mut r = Reader::new(file);
        let magic = r.take(2, "DOS magic")?;
        if magic != DOS_MAGIC {
            let mut found = [0u8; 2];
            found.copy_from_slice(magic);
            return Err(PeError::BadDosMagic { found });
        }
        r.take(0x3c - 2, "DOS header")?;
        let e_lfanew = r.u32_le("e_lfanew")? as usize;

        let mut r = Reader::new(file);
        r.take(e_lfanew, "DOS stub (e_lfanew)")?;
        let sig_offset = r.offset();
        let sig = r.take(4, "PE signature")?;
        if sig != PE_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(sig);
            return Err(PeError::BadPeSignature {
                offset: sig_offset,
                found,
            });
        }
        let machine = r.u16_le("Machine")?;
        let number_of_sections = r.u16_le("NumberOfSections")?;
        r.take(12, "COFF header")?; // TimeDateStamp, PointerToSymbolTable, NumberOfSymbols
        let size_of_optional_header = r.u16_le("SizeOfOptionalHeader")?;
        r.u16_le("Characteristics")?;

        let mut opt = r.sub(usize::from(size_of_optional_header), "optional header")?;
        let optional_offset = opt.offset();
        if usize::from(size_of_optional_header) < SIZE_OF_IMAGE_OFFSET + 4 {
            return Err(PeError::OptionalHeaderTooShort {
                size: size_of_optional_header,
                needed: SIZE_OF_IMAGE_OFFSET + 4,
            });
        }
        let optional_magic = opt.u16_le("optional header magic")?;
        if optional_magic != PE32_MAGIC && optional_magic != PE32_PLUS_MAGIC {
            return Err(PeError::BadOptionalMagic {
                offset: optional_offset,
                found: optional_magic,
            });
        }
        opt.take(SIZE_OF_IMAGE_OFFSET - 2, "optional header")?;
        let size_of_image = opt.u32_le("SizeOfImage")?;

        // The whole table must be present before anything is allocated for it.
        let table_len = usize::from(number_of_sections) * SECTION_HEADER_LEN;
        let mut table = r.sub(table_len, "section table")?;
        let mut sections = Vec::with_capacity(usize::from(number_of_sections));
        for _ in 0..number_of_sections {
            let header_offset = table.offset();
            let mut raw_name = [0u8; 8];
            raw_name.copy_from_slice(table.take(8, "section Name")?);
            let virtual_size = table.u32_le("VirtualSize")?;
            let virtual_address = table.u32_le("VirtualAddress")?;
            let size_of_raw_data = table.u32_le("SizeOfRawData")?;
            let pointer_to_raw_data = table.u32_le("PointerToRawData")?;
            table.take(16, "section header")?; // relocations, line numbers, Characteristics
            let end = raw_name.iter().position(|b| *b == 0).unwrap_or(8);
            let name = String::from_utf8_lossy(raw_name.get(..end).unwrap_or_default()).into();
            let section = Section {
                name,
                raw_name,
                virtual_size,
                virtual_address,
                size_of_raw_data,
                pointer_to_raw_data,
                header_offset,
            };
            check_section(&section, file.len(), size_of_image)?;
            sections.push(section);
        }
        table.finish("section table")?;
        check_overlaps(&sections)?;
        Ok(PeImage {
            machine,
            optional_magic,
            size_of_image,
            sections,
        })
    }

    /// The sections named exactly `name`.
    pub fn sections_named(&self, name: &str) -> Vec<&Section> {
        self.sections.iter().filter(|s| s.is_named(name)).collect()
    }
}

fn check_section(s: &Section, file_len: usize, size_of_image: u32) -> Result<(), PeError> {
    // Only the part a loader copies must be in the file; the rest is zero-filled.
    let from_file = s.virtual_size.min(s.size_of_raw_data);
    let in_file = (s.pointer_to_raw_data as usize)
        .checked_add(from_file as usize)
        .is_some_and(|end| end <= file_len);
    if !in_file {
        return Err(PeError::SectionOutOfFile {
            name: s.name.clone(),
            pointer: s.pointer_to_raw_data,
            size: from_file,
            file_len,
        });
    }
    let in_image = s
        .virtual_address
        .checked_add(s.virtual_size)
        .is_some_and(|end| end <= size_of_image);
    if !in_image {
        return Err(PeError::SectionOutsideImage {
            name: s.name.clone(),
            address: s.virtual_address,
            size: s.virtual_size,
            size_of_image,
        });
    }
    Ok(())
}

fn check_overlaps(sections: &[Section]) -> Result<(), PeError> {
    let mut by_address: Vec<&Section> = sections.iter().filter(|s| s.virtual_size > 0).collect();
    by_address.sort_by_key(|s| s.virtual_address);
    for pair in by_address.windows(2) {
        if let [a, b] = pair {
            // `a.virtual_address + a.virtual_size` cannot overflow: checked against SizeOfImage.
            if u64::from(a.virtual_address) + u64::from(a.virtual_size)
                > u64::from(b.virtual_address)
            {
                return Err(PeError::OverlappingSections {
                    first: a.name.clone(),
                    second: b.name.clone(),
                });
            }
        }
    }
    Ok(())
}
