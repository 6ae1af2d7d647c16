//! UEFI device paths (UEFI 2.10 sec. 10.2 "EFI Device Path Protocol", sec. 10.3 "Device Path
//! Nodes") and their text form (sec. 10.6 "Text Device Path Representation").
//!
//! A device path is a packed list of nodes `{ u8 Type; u8 SubType; u16 Length; data }`, each at
//! least 4 bytes long, ended by an End Entire Device Path node (`0x7f`, `0xff`). End This
//! Instance nodes (`0x7f`, `0x01`) separate instances of a multi-instance path.
//!
//! The text follows EDK2's `DevicePathToText` (`MdePkg/Library/UefiDevicePathLib`) called with
//! `DisplayOnly = FALSE` (full forms such as `HD(1,GPT,<guid>,0x800,0x100000)`) and
//! `AllowShortcuts = TRUE` (`VenUtf8()` rather than `VenMsg(<guid>)`), for example
//! `PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)/HD(1,GPT,...)/\EFI\BOOT\BOOTX64.EFI`.
//! Differences from EDK2, all on malformed or rare input:
//! - A node too short for its structure, or whose string is not valid text, is printed in the
//!   generic form (`HardwarePath(..)`, `AcpiPath(..)`, `Msg(..)`, `MediaPath(..)`, `BbsPath(..)`
//!   or `Path(type,subtype,hex)`) instead of reading past it; nothing is dropped.
//! - After an End This Instance node the next node is not prefixed with `/`.
//! - SAS vendor nodes are shown as plain `VenMsg(..)`.
//!
//! Structurally the parse is strict: a node length below 4 or past the end of the path, or a
//! path that ends without its End Entire node, is an [`EfiError`].

use super::guids;
use super::text::{le_units, utf16le};
use super::{EfiError, Guid};
use crate::codec::{CodecError, Reader};

const END_TYPE: u8 = 0x7f;
const END_ENTIRE: u8 = 0xff;
const END_INSTANCE: u8 = 0x01;

/// `EFI_UART_DEVICE_PATH_GUID` (UEFI 2.10 sec. 10.3.4.18): UART flow control vendor node.
const UART_FLOW_CONTROL_GUID: Guid = Guid::from_fields(
    0x37499a9d,
    0x542f,
    0x4c89,
    [0xa0, 0x26, 0x35, 0xda, 0x14, 0x20, 0x94, 0xe4],
);

/// Renders `bytes`, which must hold exactly one device path (ending with its End Entire node),
/// as text. `base` is the absolute offset of `bytes[0]`.
pub fn to_text(bytes: &[u8], base: usize) -> Result<String, EfiError> {
    let mut r = Reader::at(bytes, base);
    let text = read_text(&mut r)?;
    r.finish("device path")?;
    Ok(text)
}

/// Reads one device path, up to and including its End Entire node, and renders it as text.
pub fn read_text(r: &mut Reader<'_>) -> Result<String, EfiError> {
    let mut out = String::new();
    let mut after_separator = true;
    loop {
        if r.is_empty() {
            return Err(EfiError::UnterminatedDevicePath { offset: r.offset() });
        }
        let offset = r.offset();
        let ty = r.u8("device path node type")?;
        let sub = r.u8("device path node subtype")?;
        let length = r.u16_le("device path node length")?;
        let data_len = usize::from(length)
            .checked_sub(4)
            .filter(|n| *n <= r.remaining())
            .ok_or(EfiError::BadDevicePathNode {
                offset,
                length,
                remaining: r.remaining() + 4,
            })?;
        let data = r.take(data_len, "device path node")?;
        match (ty, sub) {
            (END_TYPE, END_ENTIRE) => return Ok(out),
            (END_TYPE, END_INSTANCE) => {
                out.push(',');
                after_separator = true;
            }
            _ => {
                if !after_separator {
                    out.push('/');
                }
                out.push_str(&node_text(ty, sub, data, offset + 4));
                after_separator = false;
            }
        }
    }
}

/// The text of one node (not an end node); `offset` is the absolute offset of `data`.
pub fn node_text(ty: u8, sub: u8, data: &[u8], offset: usize) -> String {
    let mut r = Reader::at(data, offset);
    match known_node(ty, sub, data, &mut r) {
        Ok(Some(text)) => text,
        Ok(None) | Err(_) => generic(ty, sub, data),
    }
}

/// EDK2's `DevPathToTextNodeGeneric`.
fn generic(ty: u8, sub: u8, data: &[u8]) -> String {
    let head = match ty {
        1 => format!("HardwarePath({sub}"),
        2 => format!("AcpiPath({sub}"),
        3 => format!("Msg({sub}"),
        4 => format!("MediaPath({sub}"),
        5 => format!("BbsPath({sub}"),
        _ => format!("Path({ty},{sub}"),
    };
    if data.is_empty() {
        format!("{head})")
    } else {
        format!("{head},{})", hex::encode(data))
    }
}

fn known_node(
    ty: u8,
    sub: u8,
    data: &[u8],
    r: &mut Reader<'_>,
) -> Result<Option<String>, EfiError> {
    let text = match (ty, sub) {
        // --- Hardware (UEFI 2.10 sec. 10.3.2) ---
        (1, 1) => {
            let function = r.u8("Function")?;
            let device = r.u8("Device")?;
            format!("Pci(0x{device:x},0x{function:x})")
        }
        (1, 2) => format!("PcCard(0x{:x})", r.u8("FunctionNumber")?),
        (1, 3) => {
            let ty = r.u32_le("MemoryType")?;
            let start = r.u64_le("StartingAddress")?;
            let end = r.u64_le("EndingAddress")?;
            format!("MemoryMapped(0x{ty:x},0x{start:x},0x{end:x})")
        }
        (1, 4) => vendor("Hw", r)?,
        (1, 5) => format!("Ctrl(0x{:x})", r.u32_le("ControllerNumber")?),
        (1, 6) => {
            let ty = r.u8("InterfaceType")?;
            let base = r.u64_le("BaseAddress")?;
            format!("BMC(0x{ty:x},0x{base:x})")
        }
        // --- ACPI (sec. 10.3.3) ---
        (2, 1) => {
            let hid = r.u32_le("HID")?;
            let uid = r.u32_le("UID")?;
            acpi(hid, uid)
        }
        (2, 2) => acpi_ex(r)?,
        (2, 3) => {
            let mut out = format!("AcpiAdr(0x{:x}", r.u32_le("ADR")?);
            while r.remaining() >= 4 {
                out.push_str(&format!(",0x{:x}", r.u32_le("ADR")?));
            }
            out.push(')');
            out
        }
        // --- Messaging (sec. 10.3.4) ---
        (3, 1) => {
            let ps = r.u8("PrimarySecondary")?;
            let sm = r.u8("SlaveMaster")?;
            let lun = r.u16_le("Lun")?;
            let ps = if ps == 1 { "Secondary" } else { "Primary" };
            let sm = if sm == 1 { "Slave" } else { "Master" };
            format!("Ata({ps},{sm},0x{lun:x})")
        }
        (3, 2) => {
            let pun = r.u16_le("Pun")?;
            let lun = r.u16_le("Lun")?;
            format!("Scsi(0x{pun:x},0x{lun:x})")
        }
        (3, 3) => {
            r.u32_le("Reserved")?;
            let wwn = r.u64_le("WWN")?;
            let lun = r.u64_le("Lun")?;
            format!("Fibre(0x{wwn:x},0x{lun:x})")
        }
        (3, 4) => {
            r.u32_le("Reserved")?;
            format!("I1394({:016x})", r.u64_le("Guid")?)
        }
        (3, 5) => {
            let port = r.u8("ParentPortNumber")?;
            let iface = r.u8("InterfaceNumber")?;
            format!("USB(0x{port:x},0x{iface:x})")
        }
        (3, 6) => format!("I2O(0x{:x})", r.u32_le("Tid")?),
        (3, 9) => {
            let flags = r.u32_le("ResourceFlags")?;
            let gid = r.guid("PortGid")?;
            let service = r.u64_le("ServiceId")?;
            let target = r.u64_le("TargetPortId")?;
            let device = r.u64_le("DeviceId")?;
            format!("Infiniband(0x{flags:x},{gid},0x{service:x},0x{target:x},0x{device:x})")
        }
        (3, 10) => msg_vendor(r)?,
        (3, 11) => {
            let mac = r.take(32, "MacAddress")?;
            let if_type = r.u8("IfType")?;
            let n = if if_type <= 1 { 6 } else { 32 };
            format!(
                "MAC({},0x{if_type:x})",
                hex::encode(mac.get(..n).unwrap_or_default())
            )
        }
        (3, 12) => {
            let local = ipv4(r.take(4, "LocalIpAddress")?);
            let remote = ipv4(r.take(4, "RemoteIpAddress")?);
            r.u16_le("LocalPort")?;
            r.u16_le("RemotePort")?;
            let protocol = protocol(r.u16_le("Protocol")?);
            let origin = if r.u8("StaticIpAddress")? != 0 {
                "Static"
            } else {
                "DHCP"
            };
            let mut out = format!("IPv4({remote},{protocol},{origin},{local}");
            if data.len() == 23 {
                let gateway = ipv4(r.take(4, "GatewayIpAddress")?);
                let mask = ipv4(r.take(4, "SubnetMask")?);
                out.push_str(&format!(",{gateway},{mask}"));
            }
            out.push(')');
            out
        }
        (3, 13) => {
            let local = ipv6(r.take(16, "LocalIpAddress")?);
            let remote = ipv6(r.take(16, "RemoteIpAddress")?);
            r.u16_le("LocalPort")?;
            r.u16_le("RemotePort")?;
            let protocol = protocol(r.u16_le("Protocol")?);
            let origin = match r.u8("IpAddressOrigin")? {
                0 => "Static",
                1 => "StatelessAutoConfigure",
                _ => "StatefulAutoConfigure",
            };
            let mut out = format!("IPv6({remote},{protocol},{origin},{local}");
            if data.len() == 56 {
                let prefix = r.u8("PrefixLength")?;
                let gateway = ipv6(r.take(16, "GatewayIpAddress")?);
                out.push_str(&format!(",0x{prefix:x},{gateway}"));
            }
            out.push(')');
            out
        }
        (3, 14) => {
            r.u32_le("Reserved")?;
            let baud = r.u64_le("BaudRate")?;
            let bits = r.u8("DataBits")?;
            let parity = match r.u8("Parity")? {
                0 => 'D',
                1 => 'N',
                2 => 'E',
                3 => 'O',
                4 => 'M',
                5 => 'S',
                _ => 'x',
            };
            let stop = match r.u8("StopBits")? {
                0 => "D",
                1 => "1",
                2 => "1.5",
                3 => "2",
                _ => "x",
            };
            let baud = if baud == 0 {
                "DEFAULT".to_owned()
            } else {
                baud.to_string()
            };
            let bits = if bits == 0 {
                "DEFAULT".to_owned()
            } else {
                bits.to_string()
            };
            format!("Uart({baud},{bits},{parity},{stop})")
        }
        (3, 15) => usb_class(r)?,
        (3, 16) => {
            let iface = r.u16_le("InterfaceNumber")?;
            let vendor = r.u16_le("VendorId")?;
            let product = r.u16_le("ProductId")?;
            let serial = r.rest();
            let units: Vec<u16> = le_units(serial).take_while(|u| *u != 0).collect();
            let serial = String::from_utf16(&units).map_err(|_| EfiError::BadUtf16 {
                offset: r.offset(),
                what: "USB WWID serial number",
            })?;
            format!("UsbWwid(0x{vendor:x},0x{product:x},0x{iface:x},\"{serial}\")")
        }
        (3, 17) => format!("Unit(0x{:x})", r.u8("Lun")?),
        (3, 18) => {
            let hba = r.u16_le("HBAPortNumber")?;
            let pm = r.u16_le("PortMultiplierPortNumber")?;
            let lun = r.u16_le("Lun")?;
            format!("Sata(0x{hba:x},0x{pm:x},0x{lun:x})")
        }
        (3, 19) => {
            let proto = r.u16_le("NetworkProtocol")?;
            let options = r.u16_le("LoginOption")?;
            let lun = r.take(8, "Lun")?;
            let tag = r.u16_le("TargetPortalGroupTag")?;
            let name = ascii_z(r.rest()).ok_or(CodecError::Truncated {
                offset: r.offset(),
                what: "iSCSI TargetName",
                needed: 1,
                remaining: 0,
            })?;
            let digest = |bit: u16| {
                if (options >> bit) & 1 != 0 {
                    "CRC32C"
                } else {
                    "None"
                }
            };
            let auth = if (options >> 11) & 1 != 0 {
                "None"
            } else if (options >> 12) & 1 != 0 {
                "CHAP_UNI"
            } else {
                "CHAP_BI"
            };
            let proto = if proto == 0 { "TCP" } else { "reserved" };
            format!(
                "iSCSI({name},0x{tag:x},0x{},{},{},{auth},{proto})",
                hex::encode(lun),
                digest(1),
                digest(3)
            )
        }
        (3, 20) => format!("Vlan({})", r.u16_le("VlanId")?),
        (3, 21) => {
            r.u32_le("Reserved")?;
            let wwn = r.take(8, "WWN")?;
            let lun = r.take(8, "Lun")?;
            format!("FibreEx(0x{},0x{})", hex::encode(wwn), hex::encode(lun))
        }
        (3, 22) => {
            let address = r.take(8, "SasAddress")?;
            let lun = r.take(8, "Lun")?;
            let port = r.u16_le("RelativeTargetPort")?;
            let topology = r.u16_le("DeviceTopology")?;
            format!(
                "SasEx(0x{},0x{},0x{port:x},{})",
                hex::encode(address),
                hex::encode(lun),
                sas_topology(topology)
            )
        }
        (3, 23) => {
            let nsid = r.u32_le("NamespaceId")?;
            let eui = r.take(8, "NamespaceUuid")?;
            let parts: Vec<String> = eui.iter().rev().map(|b| format!("{b:02x}")).collect();
            format!("NVMe(0x{nsid:x},{})", parts.join("-"))
        }
        (3, 24) => {
            let uri = ascii_z(data).ok_or(CodecError::Truncated {
                offset: r.offset(),
                what: "URI",
                needed: 1,
                remaining: 0,
            })?;
            format!("Uri({uri})")
        }
        (3, 25) => {
            let pun = r.u8("Pun")?;
            let lun = r.u8("Lun")?;
            format!("UFS(0x{pun:x},0x{lun:x})")
        }
        (3, 26) => format!("SD(0x{:x})", r.u8("SlotNumber")?),
        (3, 27) => format!("Bluetooth({})", hex::encode(r.take(6, "BD_ADDR")?)),
        (3, 28) => {
            let ssid = r.take(32, "SSId")?;
            let ssid = ascii_z(ssid).ok_or(CodecError::Truncated {
                offset: r.offset(),
                what: "SSId",
                needed: 1,
                remaining: 0,
            })?;
            format!("Wi-Fi({ssid})")
        }
        (3, 29) => format!("eMMC(0x{:x})", r.u8("SlotNumber")?),
        (3, 30) => {
            let address = r.take(6, "Address")?;
            let ty = r.u8("Type")?;
            format!("BluetoothLE({},0x{ty:02x})", hex::encode(address))
        }
        (3, 31) => {
            let v6 = r.u8("IsIPv6")? != 0;
            let mut servers = Vec::new();
            while r.remaining() >= 16 {
                let ip = r.take(16, "DnsServerIp")?;
                servers.push(if v6 {
                    ipv6(ip)
                } else {
                    ipv4(ip.get(..4).unwrap_or_default())
                });
            }
            format!("Dns({})", servers.join(","))
        }
        // --- Media (sec. 10.3.5) ---
        (4, 1) => {
            let number = r.u32_le("PartitionNumber")?;
            let start = r.u64_le("PartitionStart")?;
            let size = r.u64_le("PartitionSize")?;
            let signature = r.take(16, "Signature")?;
            let _mbr_type = r.u8("MBRType")?;
            let sig_type = r.u8("SignatureType")?;
            let head = match sig_type {
                1 => {
                    let mbr = signature.get(..4).map_or(0, |b| {
                        b.iter()
                            .rev()
                            .fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
                    });
                    format!("HD({number},MBR,0x{mbr:08x},")
                }
                2 => {
                    let mut g = [0u8; 16];
                    g.copy_from_slice(signature);
                    format!("HD({number},GPT,{},", Guid(g))
                }
                other => format!("HD({number},{other},0,"),
            };
            format!("{head}0x{start:x},0x{size:x})")
        }
        (4, 2) => {
            let entry = r.u32_le("BootEntry")?;
            let start = r.u64_le("PartitionStart")?;
            let size = r.u64_le("PartitionSize")?;
            format!("CDROM(0x{entry:x},0x{start:x},0x{size:x})")
        }
        (4, 3) => vendor("Media", r)?,
        (4, 4) => {
            let units = data.len() / 2 * 2;
            let end = (0..units / 2)
                .find(|&i| data.get(2 * i..2 * i + 2) == Some(&[0, 0][..]))
                .map_or(units, |i| 2 * i);
            utf16le(data.get(..end).unwrap_or_default(), r.offset(), "file path")?
        }
        (4, 5) => format!("Media({})", r.guid("Protocol")?),
        (4, 6) => format!("FvFile({})", r.guid("FvFileName")?),
        (4, 7) => format!("Fv({})", r.guid("FvName")?),
        (4, 8) => {
            r.u32_le("Reserved")?;
            let start = r.u64_le("StartingOffset")?;
            let end = r.u64_le("EndingOffset")?;
            format!("Offset(0x{start:x},0x{end:x})")
        }
        (4, 9) => {
            let start = r.u64_le("StartingAddr")?;
            let end = r.u64_le("EndingAddr")?;
            let ty = r.guid("TypeGuid")?;
            let instance = r.u16_le("Instance")?;
            let name = match ty {
                guids::EFI_VIRTUAL_DISK_GUID => "VirtualDisk",
                guids::EFI_VIRTUAL_CD_GUID => "VirtualCD",
                guids::EFI_PERSISTENT_VIRTUAL_DISK_GUID => "PersistentVirtualDisk",
                guids::EFI_PERSISTENT_VIRTUAL_CD_GUID => "PersistentVirtualCD",
                _ => {
                    return Ok(Some(format!(
                        "RamDisk(0x{start:x},0x{end:x},{instance},{ty})"
                    )))
                }
            };
            format!("{name}(0x{start:x},0x{end:x},{instance})")
        }
        // --- BIOS Boot Specification (sec. 10.3.6) ---
        (5, 1) => {
            let device_type = r.u16_le("DeviceType")?;
            let status = r.u16_le("StatusFlag")?;
            let description = ascii_z(r.rest()).ok_or(CodecError::Truncated {
                offset: r.offset(),
                what: "BBS description",
                needed: 1,
                remaining: 0,
            })?;
            let ty = match device_type {
                1 => "Floppy".to_owned(),
                2 => "HD".to_owned(),
                3 => "CDROM".to_owned(),
                4 => "PCMCIA".to_owned(),
                5 => "USB".to_owned(),
                6 => "Network".to_owned(),
                other => format!("0x{other:x}"),
            };
            format!("BBS({ty},{description},0x{status:x})")
        }
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// An ASCII/UTF-8 string up to its first NUL (or the end); `None` if it is not UTF-8.
fn ascii_z(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(bytes.get(..end)?).ok()
}

fn ipv4(b: &[u8]) -> String {
    b.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
}

/// EDK2's `CatIPv6Address`: eight groups of four hex digits, no `::` compression.
fn ipv6(b: &[u8]) -> String {
    b.chunks(2).map(hex::encode).collect::<Vec<_>>().join(":")
}

fn protocol(p: u16) -> String {
    match p {
        6 => "TCP".to_owned(),
        17 => "UDP".to_owned(),
        other => format!("0x{other:x}"),
    }
}

/// `PciRoot(..)`, `PcieRoot(..)`, ... for PNP EISA IDs, else `Acpi(..)`.
fn acpi(hid: u32, uid: u32) -> String {
    if hid & 0xffff == 0x41d0 {
        match hid >> 16 {
            0x0a03 => format!("PciRoot(0x{uid:x})"),
            0x0a08 => format!("PcieRoot(0x{uid:x})"),
            0x0604 => format!("Floppy(0x{uid:x})"),
            0x0301 => format!("Keyboard(0x{uid:x})"),
            0x0501 => format!("Serial(0x{uid:x})"),
            0x0401 => format!("ParallelPort(0x{uid:x})"),
            n => format!("Acpi(PNP{n:04x},0x{uid:x})"),
        }
    } else {
        format!("Acpi(0x{hid:08x},0x{uid:x})")
    }
}

/// A compressed EISA ID as text (`PNP0A03`).
fn eisa_text(id: u32) -> String {
    // Each letter is 5 bits, 1 = 'A'; `& 0x1f` keeps the byte in 0x40..=0x5f, always ASCII.
    let letter = |shift: u32| char::from(((id >> shift) & 0x1f) as u8 + b'@');
    format!("{}{}{}{:04X}", letter(10), letter(5), letter(0), id >> 16)
}

fn acpi_ex(r: &mut Reader<'_>) -> Result<String, EfiError> {
    let hid = r.u32_le("HID")?;
    let uid = r.u32_le("UID")?;
    let cid = r.u32_le("CID")?;
    let mut strings = r.rest().split(|b| *b == 0);
    let mut next = |what: &'static str| -> Result<String, EfiError> {
        let bytes = strings.next().unwrap_or_default();
        super::text::utf8(bytes, 0, what)
    };
    let hid_str = next("HIDSTR")?;
    let uid_str = next("UIDSTR")?;
    let cid_str = next("CIDSTR")?;
    let (hid_text, cid_text) = (eisa_text(hid), eisa_text(cid));
    Ok(if hid_str.is_empty() && cid_str.is_empty() && uid == 0 {
        format!("AcpiExp({hid_text},{cid_text},{uid_str})")
    } else {
        let h = if hid == 0 { hid_str } else { hid_text };
        let c = if cid == 0 { cid_str } else { cid_text };
        let u = if uid == 0 {
            uid_str
        } else {
            format!("0x{uid:x}")
        };
        format!("AcpiEx({h},{c},{u})")
    })
}

fn vendor(kind: &str, r: &mut Reader<'_>) -> Result<String, EfiError> {
    let guid = r.guid("vendor GUID")?;
    let data = r.rest();
    Ok(if data.is_empty() {
        format!("Ven{kind}({guid})")
    } else {
        format!("Ven{kind}({guid},{})", hex::encode(data))
    })
}

fn msg_vendor(r: &mut Reader<'_>) -> Result<String, EfiError> {
    let mut peek = r.clone();
    let guid = peek.guid("vendor GUID")?;
    let short = match guid {
        guids::EFI_PC_ANSI_GUID => Some("VenPcAnsi()".to_owned()),
        guids::EFI_VT_100_GUID => Some("VenVt100()".to_owned()),
        guids::EFI_VT_100_PLUS_GUID => Some("VenVt100Plus()".to_owned()),
        guids::EFI_VT_UTF8_GUID => Some("VenUtf8()".to_owned()),
        guids::EFI_DEBUGPORT_PROTOCOL_GUID => Some("DebugPort()".to_owned()),
        UART_FLOW_CONTROL_GUID => match peek.u32_le("FlowControlMap")? & 3 {
            0 => Some("UartFlowCtrl(None)".to_owned()),
            1 => Some("UartFlowCtrl(Hardware)".to_owned()),
            2 => Some("UartFlowCtrl(XonXoff)".to_owned()),
            _ => None,
        },
        _ => None,
    };
    match short {
        Some(s) => Ok(s),
        None => vendor("Msg", r),
    }
}

fn usb_class(r: &mut Reader<'_>) -> Result<String, EfiError> {
    let vendor = r.u16_le("VendorId")?;
    let product = r.u16_le("ProductId")?;
    let class = r.u8("DeviceClass")?;
    let subclass = r.u8("DeviceSubClass")?;
    let proto = r.u8("DeviceProtocol")?;
    let name = match class {
        0x01 => Some("UsbAudio"),
        0x02 => Some("UsbCDCControl"),
        0x03 => Some("UsbHID"),
        0x06 => Some("UsbImage"),
        0x07 => Some("UsbPrinter"),
        0x08 => Some("UsbMassStorage"),
        0x09 => Some("UsbHub"),
        0x0a => Some("UsbCDCData"),
        0x0b => Some("UsbSmartCard"),
        0x0e => Some("UsbVideo"),
        0xdc => Some("UsbDiagnostic"),
        0xe0 => Some("UsbWireless"),
        _ => None,
    };
    if let Some(name) = name {
        return Ok(format!(
            "{name}(0x{vendor:x},0x{product:x},0x{subclass:x},0x{proto:x})"
        ));
    }
    if class == 0xfe {
        let special = match subclass {
            1 => Some("UsbDeviceFirmwareUpdate"),
            2 => Some("UsbIrdaBridge"),
            3 => Some("UsbTestAndMeasurement"),
            _ => None,
        };
        if let Some(name) = special {
            return Ok(format!("{name}(0x{vendor:x},0x{product:x},0x{proto:x})"));
        }
    }
    Ok(format!(
        "UsbClass(0x{vendor:x},0x{product:x},0x{class:x},0x{subclass:x},0x{proto:x})"
    ))
}

fn sas_topology(info: u16) -> String {
    const BIT4: u16 = 1 << 4;
    const BIT5: u16 = 1 << 5;
    const BIT6: u16 = 1 << 6;
    const BIT7: u16 = 1 << 7;
    if info & 0x0f == 0 && info & BIT7 == 0 {
        "NoTopology,0,0,0".to_owned()
    } else if info & 0x0f <= 2 && info & BIT7 == 0 {
        let drive = if info & 0x0f == 1 {
            "0".to_owned()
        } else {
            format!("0x{:x}", ((info >> 8) & 0xff) + 1)
        };
        format!(
            "{},{},{},{drive}",
            if info & BIT4 != 0 { "SATA" } else { "SAS" },
            if info & BIT5 != 0 {
                "External"
            } else {
                "Internal"
            },
            if info & BIT6 != 0 {
                "Expanded"
            } else {
                "Direct"
            },
        )
    } else {
        format!("0x{info:x},0,0,0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(hex_str: &str) -> Result<String, EfiError> {
        to_text(&hex::decode(hex_str).unwrap(), 0)
    }

    fn node(ty: u8, sub: u8, data: &[u8]) -> Vec<u8> {
        let len = u16::try_from(data.len() + 4).unwrap();
        let mut v = vec![ty, sub];
        v.extend(len.to_le_bytes());
        v.extend(data);
        v
    }

    const END: &str = "7fff0400";

    #[test]
    fn fixture_paths() {
        // From event-gce-ubuntu-2104-log.bin (image load, PCR 4).
        assert_eq!(
            text("02010c00d041030a00000000010106000003030208000100000004012a000f0000000028000000000000005003000000000040f7a66eef256942838d1a6f21ebf27f0202040434005c004500460049005c007500620075006e00740075005c007300680069006d007800360034002e0065006600690000007fff0400")
            .unwrap(),
            "PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x1,0x0)/HD(15,GPT,6ea6f740-25ef-4269-838d-1a6f21ebf27f,0x2800,0x35000)/\\EFI\\ubuntu\\shimx64.efi"
        );
        // Firmware-volume driver (kl_bbm.bin): FvVol + FvFile.
        assert_eq!(
            text("04071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400")
                .unwrap(),
            "Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)"
        );
        // Offset node and SATA (event-postcode.bin, arch).
        assert_eq!(
            text(&format!("02010c00d041030a0000000001010600000101010600000004081800000000000022010000000000ffa7020000000000{END}")).unwrap(),
            "PciRoot(0x0)/Pci(0x1,0x0)/Pci(0x0,0x0)/Offset(0x12200,0x2a7ff)"
        );
        assert_eq!(
            text(&format!(
                "02010c00d041030a0000000001010600001703120a000100ffff0000{END}"
            ))
            .unwrap(),
            "PciRoot(0x0)/Pci(0x17,0x0)/Sata(0x1,0xffff,0x0)"
        );
        // BBS (load option of event-gce-ubuntu-2104-log.bin).
        assert_eq!(
            text(&format!(
                "05011d0002000000566972745363736928302c332c3029204469736b00{END}"
            ))
            .unwrap(),
            "BBS(HD,VirtScsi(0,3,0) Disk,0x0)"
        );
    }

    #[test]
    fn network_and_misc_nodes() {
        let mut mac = vec![0x52, 0x54, 0, 0x12, 0x34, 0x56];
        mac.resize(32, 0);
        mac.push(1);
        let mut p = node(3, 11, &mac);
        let mut ip = vec![10, 0, 0, 2, 10, 0, 0, 1, 0, 0, 0, 0, 6, 0, 0];
        ip.extend([10, 0, 0, 254, 255, 255, 255, 0]);
        p.extend(node(3, 12, &ip));
        p.extend(node(3, 24, b"http://example.com/boot.efi"));
        p.extend(hex::decode(END).unwrap());
        assert_eq!(
            to_text(&p, 0).unwrap(),
            "MAC(525400123456,0x1)/IPv4(10.0.0.1,TCP,DHCP,10.0.0.2,10.0.0.254,255.255.255.0)/Uri(http://example.com/boot.efi)"
        );
        // NVMe, USB, vendor with data, ACPI non-PNP, multi-instance.
        let mut p = node(3, 23, &[1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        p.extend(node(3, 5, &[2, 0]));
        p.extend(hex::decode("7f010400").unwrap());
        p.extend(node(
            1,
            4,
            &[
                0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0, 0xe0, 0x98, 3, 0x2b,
                0x8c, 0xab,
            ],
        ));
        p.extend(node(2, 1, &[0x12, 0x34, 0x56, 0x78, 1, 0, 0, 0]));
        p.extend(hex::decode(END).unwrap());
        assert_eq!(
            to_text(&p, 0).unwrap(),
            "NVMe(0x1,08-07-06-05-04-03-02-01)/USB(0x2,0x0),VenHw(8be4df61-93ca-11d2-aa0d-00e098032b8c,ab)/Acpi(0x78563412,0x1)"
        );
    }

    #[test]
    fn unknown_and_short_nodes_are_generic() {
        let mut p = node(0x42, 7, &[0xde, 0xad]);
        p.extend(node(3, 0x7e, &[]));
        p.extend(node(1, 1, &[1])); // PCI node one byte short
        p.extend(hex::decode(END).unwrap());
        assert_eq!(
            to_text(&p, 0).unwrap(),
            "Path(66,7,dead)/Msg(126)/HardwarePath(1,01)"
        );
    }

    #[test]
    fn malformed_paths_are_errors() {
        // Node length 2 (< 4).
        assert_eq!(
            text("01010200"),
            Err(EfiError::BadDevicePathNode {
                offset: 0,
                length: 2,
                remaining: 4
            })
        );
        // Node length past the end.
        assert!(matches!(
            text("0101ff00aabb"),
            Err(EfiError::BadDevicePathNode { length: 255, .. })
        ));
        // No end node.
        assert_eq!(
            text("01010600aabb"),
            Err(EfiError::UnterminatedDevicePath { offset: 6 })
        );
        assert_eq!(
            text(""),
            Err(EfiError::UnterminatedDevicePath { offset: 0 })
        );
        // Truncated header.
        assert!(matches!(text("0101"), Err(EfiError::Codec(_))));
        // Bytes after the end node.
        assert!(matches!(
            text("7fff040000"),
            Err(EfiError::Codec(CodecError::Trailing { .. }))
        ));
        // Bad UTF-16 in a file path node falls back to the generic form.
        assert_eq!(
            text(&format!("0404080000d84100{END}")).unwrap(),
            "MediaPath(4,00d84100)"
        );
    }

    #[test]
    fn eisa_ids() {
        assert_eq!(eisa_text(0x0a0341d0), "PNP0A03");
    }
}
