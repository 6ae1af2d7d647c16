//! `UEFI_IMAGE_LOAD_EVENT` (TCG PC Client PFP 1.06 sec. 10.2.3), the data of
//! `EV_EFI_BOOT_SERVICES_APPLICATION`, `EV_EFI_BOOT_SERVICES_DRIVER` and
//! `EV_EFI_RUNTIME_SERVICES_DRIVER` events.
//!
//! ```text
//! UEFI_IMAGE_LOAD_EVENT { EFI_PHYSICAL_ADDRESS ImageLocationInMemory; UINTN ImageLengthInMemory;
//!                         UINTN ImageLinkTimeAddress; UINTN LengthOfDevicePath;
//!                         EFI_DEVICE_PATH_PROTOCOL DevicePath[LengthOfDevicePath] }
//! ```
//!
//! `UINTN` is read as 64 bits: every log Warrant handles comes from 64-bit firmware (the Spec ID
//! header's `uintnSize` is 2 in all fixtures).
//!
//! **Known deviation, kept visible:** when an image is loaded from a memory buffer (shim loading
//! GRUB, GRUB loading the kernel through firmware `LoadImage`), several firmware builds log the
//! event with `LengthOfDevicePath` 0 and 8 or 9 bytes after the header: the C structure's
//! padding (`sizeof (UEFI_IMAGE_LOAD_EVENT)` is 40) or the first bytes of an unrelated buffer.
//! The bytes are reported in [`ImageLoadEvent::trailing`]; a non-empty device path must still
//! fill exactly `LengthOfDevicePath` bytes and end with its end node.

use super::devpath;
use super::EfiError;
use crate::codec::{CodecError, Reader};
use serde::Serialize;

/// A decoded `UEFI_IMAGE_LOAD_EVENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageLoadEvent {
    pub image_location_in_memory: u64,
    pub image_length_in_memory: u64,
    pub image_link_time_address: u64,
    pub length_of_device_path: u64,
    /// The device path as text ([`devpath`]); `None` when `LengthOfDevicePath` is 0.
    pub device_path: Option<String>,
    /// Bytes after the device path (see the module documentation); empty in conforming events.
    #[serde(
        serialize_with = "crate::serde_hex",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trailing: Vec<u8>,
}

impl ImageLoadEvent {
    /// Parses `data`, whose first byte is at absolute offset `base`.
    pub fn parse(data: &[u8], base: usize) -> Result<Self, EfiError> {
        let mut r = Reader::at(data, base);
        let image_location_in_memory = r.u64_le("ImageLocationInMemory")?;
        let image_length_in_memory = r.u64_le("ImageLengthInMemory")?;
        let image_link_time_address = r.u64_le("ImageLinkTimeAddress")?;
        let length_of_device_path = r.u64_le("LengthOfDevicePath")?;
        let len = usize::try_from(length_of_device_path).map_err(|_| CodecError::Truncated {
            offset: r.offset(),
            what: "DevicePath",
            needed: usize::MAX,
            remaining: r.remaining(),
        })?;
        let path_offset = r.offset();
        let path = r.take(len, "DevicePath")?;
        let device_path = if path.is_empty() {
            None
        } else {
            Some(devpath::to_text(path, path_offset)?)
        };
        Ok(ImageLoadEvent {
            image_location_in_memory,
            image_length_in_memory,
            image_link_time_address,
            length_of_device_path,
            device_path,
            trailing: r.rest().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_events() {
        // The device path of event-uefiservices.bin event 1 (EV_EFI_BOOT_SERVICES_DRIVER, PCR 2).
        let path = hex::decode("02010c00d041030a0000000001010600000201010600000004081800000000000026010000000000ffc30300000000007fff0400").unwrap();
        let mut ev = Vec::new();
        ev.extend(0x7dcf_6018u64.to_le_bytes());
        ev.extend(0x29dc8u64.to_le_bytes());
        ev.extend(0u64.to_le_bytes());
        ev.extend(u64::try_from(path.len()).unwrap().to_le_bytes());
        ev.extend(&path);
        let e = ImageLoadEvent::parse(&ev, 0).unwrap();
        assert_eq!(e.length_of_device_path, 52);
        assert_eq!(
            e.device_path.as_deref(),
            Some("PciRoot(0x0)/Pci(0x2,0x0)/Pci(0x0,0x0)/Offset(0x12600,0x3c3ff)")
        );
        assert!(e.trailing.is_empty());
        // A shim/GRUB buffer load: no device path, 9 bytes of junk (cos-85-amd-sev.bin).
        let junk = hex::decode(
            "000000000000000000000000000000000000000000000000000000000000000000d2080000d60800af",
        )
        .unwrap();
        let e = ImageLoadEvent::parse(&junk, 0).unwrap();
        assert_eq!(e.device_path, None);
        assert_eq!(e.trailing.len(), 9);
    }

    #[test]
    fn malformed() {
        let mut ev = vec![0u8; 24];
        ev.extend(u64::MAX.to_le_bytes());
        assert!(matches!(
            ImageLoadEvent::parse(&ev, 0),
            Err(EfiError::Codec(_))
        ));
        let mut ev = vec![0u8; 24];
        ev.extend(6u64.to_le_bytes());
        ev.extend([1, 1, 6, 0, 0, 0]);
        assert_eq!(
            ImageLoadEvent::parse(&ev, 0),
            Err(EfiError::UnterminatedDevicePath { offset: 38 })
        );
        assert!(matches!(
            ImageLoadEvent::parse(&[0; 31], 0),
            Err(EfiError::Codec(_))
        ));
    }
}
