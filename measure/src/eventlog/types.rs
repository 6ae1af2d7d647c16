//! Event types of the TCG PC Client Platform Firmware Profile (PFP) specification, version 1.06,
//! section 10.4.1 "Event Types", plus the UEFI event types of section 10.4.1 (0x8000_0000 range).

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! event_types {
    ($($name:ident = $value:literal,)*) => {
        /// A `TCG_EVENTTYPE` value. Values this table does not know are kept in `Unknown`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum EventType {
            $($name,)*
            /// A value not in PFP 1.06; the event is kept as raw bytes and flagged.
            Unknown(u32),
        }

        impl EventType {
            pub fn from_u32(v: u32) -> Self {
                match v {
                    $($value => EventType::$name,)*
                    other => EventType::Unknown(other),
                }
            }
            pub fn as_u32(self) -> u32 {
                match self {
                    $(EventType::$name => $value,)*
                    EventType::Unknown(v) => v,
                }
            }
            /// The name used by the specification and by tpm2-tools (`EV_SEPARATOR`, ...).
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(EventType::$name => std::borrow::Cow::Borrowed(stringify!($name)),)*
                    EventType::Unknown(v) => std::borrow::Cow::Owned(format!("EV_UNKNOWN_{v:#010x}")),
                }
            }
        }
    };
}

event_types! {
    EV_PREBOOT_CERT = 0x0000_0000,
    EV_POST_CODE = 0x0000_0001,
    EV_UNUSED = 0x0000_0002,
    EV_NO_ACTION = 0x0000_0003,
    EV_SEPARATOR = 0x0000_0004,
    EV_ACTION = 0x0000_0005,
    EV_EVENT_TAG = 0x0000_0006,
    EV_S_CRTM_CONTENTS = 0x0000_0007,
    EV_S_CRTM_VERSION = 0x0000_0008,
    EV_CPU_MICROCODE = 0x0000_0009,
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000A,
    EV_TABLE_OF_DEVICES = 0x0000_000B,
    EV_COMPACT_HASH = 0x0000_000C,
    EV_IPL = 0x0000_000D,
    EV_IPL_PARTITION_DATA = 0x0000_000E,
    EV_NONHOST_CODE = 0x0000_000F,
    EV_NONHOST_CONFIG = 0x0000_0010,
    EV_NONHOST_INFO = 0x0000_0011,
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012,
    EV_POST_CODE2 = 0x0000_0013,
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001,
    EV_EFI_VARIABLE_BOOT = 0x8000_0002,
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003,
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004,
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005,
    EV_EFI_GPT_EVENT = 0x8000_0006,
    EV_EFI_ACTION = 0x8000_0007,
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008,
    EV_EFI_HANDOFF_TABLES = 0x8000_0009,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000A,
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000B,
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000C,
    EV_EFI_GPT_EVENT2 = 0x8000_000D,
    EV_EFI_HCRTM_EVENT = 0x8000_0010,
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00E0,
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00E1,
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00E2,
    EV_EFI_SPDM_DEVICE_POLICY = 0x8000_00E3,
    EV_EFI_SPDM_DEVICE_AUTHORITY = 0x8000_00E4,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [0u32, 3, 4, 0xD, 0x8000_0001, 0x8000_00E0, 0x1234] {
            assert_eq!(EventType::from_u32(v).as_u32(), v);
        }
        assert_eq!(EventType::from_u32(0x8000_0007), EventType::EV_EFI_ACTION);
        assert_eq!(EventType::from_u32(0x77).name(), "EV_UNKNOWN_0x00000077");
    }
}
