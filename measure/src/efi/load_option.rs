//! `EFI_LOAD_OPTION` (UEFI 2.10 sec. 3.1.3 "Load Options"): the contents of `Boot####`,
//! `Driver####`, `SysPrep####` and `PlatformRecovery####`.
//!
//! ```text
//! EFI_LOAD_OPTION { u32 Attributes; u16 FilePathListLength; CHAR16 Description[] /* NUL */;
//!                   EFI_DEVICE_PATH_PROTOCOL FilePathList[] /* FilePathListLength bytes */;
//!                   u8 OptionalData[] /* the rest */ }
//! ```

use super::devpath;
use super::text::read_utf16_cstr;
use super::EfiError;
use crate::codec::Reader;
use serde::Serialize;

/// `LOAD_OPTION_ACTIVE`.
pub const LOAD_OPTION_ACTIVE: u32 = 0x0000_0001;
/// `LOAD_OPTION_HIDDEN`.
pub const LOAD_OPTION_HIDDEN: u32 = 0x0000_0008;

/// A decoded `EFI_LOAD_OPTION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadOption {
    pub attributes: u32,
    /// `attributes & LOAD_OPTION_ACTIVE` (tpm2-tools prints it as `Enabled`).
    pub active: bool,
    pub file_path_list_length: u16,
    pub description: String,
    /// Each device path of `FilePathList`, as text (the first one locates the image).
    pub file_paths: Vec<String>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    /// Parses a load option filling the reader.
    pub fn parse(r: &mut Reader<'_>) -> Result<LoadOption, EfiError> {
        let attributes = r.u32_le("Attributes")?;
        let file_path_list_length = r.u16_le("FilePathListLength")?;
        let description = read_utf16_cstr(r, "load option Description")?;
        let mut paths = r.sub(usize::from(file_path_list_length), "FilePathList")?;
        let mut file_paths = Vec::new();
        while !paths.is_empty() {
            file_paths.push(devpath::read_text(&mut paths)?);
        }
        let optional_data = r.rest().to_vec();
        Ok(LoadOption {
            attributes,
            active: attributes & LOAD_OPTION_ACTIVE != 0,
            file_path_list_length,
            description,
            file_paths,
            optional_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_boot_option() {
        // Boot0002 of event-gce-ubuntu-2104-log.bin.
        let mut b = vec![1, 0, 0, 0, 33, 0];
        b.extend(
            "VirtScsi(0,3,0) Disk"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        b.extend([0, 0]);
        b.extend(
            hex::decode("05011d0002000000566972745363736928302c332c3029204469736b007fff04001100")
                .unwrap(),
        );
        let o = LoadOption::parse(&mut Reader::new(&b)).unwrap();
        assert!(o.active);
        assert_eq!(o.description, "VirtScsi(0,3,0) Disk");
        assert_eq!(o.file_paths, ["BBS(HD,VirtScsi(0,3,0) Disk,0x0)"]);
        assert_eq!(o.optional_data, [0x11, 0x00]);
    }

    #[test]
    fn malformed() {
        // FilePathListLength past the end.
        let mut b = vec![1, 0, 0, 0, 0xff, 0, 0x41, 0, 0, 0];
        b.extend(hex::decode("7fff0400").unwrap());
        assert!(matches!(
            LoadOption::parse(&mut Reader::new(&b)),
            Err(EfiError::Codec(_))
        ));
        // Description without terminator.
        let b = [1, 0, 0, 0, 4, 0, 0x41, 0];
        assert!(matches!(
            LoadOption::parse(&mut Reader::new(&b)),
            Err(EfiError::Unterminated { offset: 6, .. })
        ));
        // FilePathList whose last path lacks its end node.
        let mut b = vec![1, 0, 0, 0, 6, 0, 0, 0];
        b.extend([1, 1, 6, 0, 0, 1]);
        assert!(matches!(
            LoadOption::parse(&mut Reader::new(&b)),
            Err(EfiError::UnterminatedDevicePath { .. })
        ));
        // Truncated attributes.
        assert!(matches!(
            LoadOption::parse(&mut Reader::new(&[1, 0])),
            Err(EfiError::Codec(_))
        ));
    }
}
