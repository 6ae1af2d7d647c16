//! Typed decoding of every event of every real event log in `testdata/eventlogs`, checked three
//! ways:
//!
//! 1. **No decode errors** ([`every_event_decodes`]), except an explicit allow-list (empty).
//! 2. **Digest rules** ([`measured_bytes_against_real_digests`]): for every event where
//!    [`measured_bytes`] gives the bytes the digest must cover, the digest of every computable
//!    bank is compared with the hash of those bytes. Every mismatch must be explained by a named
//!    [`DigestQuirk`], and the set of (log, event type, quirk) uses must equal the documented
//!    table [`EXPECTED_QUIRKS`]. The outcome table is printed (`--nocapture`).
//! 3. **Against tpm2-tools** ([`agrees_with_tpm2_tools_yaml`]): every decoded field that
//!    `tpm2_eventlog` also prints in the `.expected.yaml` files (variable names and GUIDs,
//!    signature lists, load options, image-load events and their raw device paths, GPT
//!    headers and partitions, firmware blobs, strings) must agree. The YAML is read by a small
//!    line-based reader (no YAML crate), and each kind of check must run at least once.
//!
//! Plus specific facts ([`known_facts`]): device path text, certificate subjects, GRUB's kernel
//! command line, shim's authority events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use measure::efi::image::ImageLoadEvent;
use measure::efi::siglist::SignatureValue;
use measure::efi::text::TextEncoding;
use measure::efi::variable::{VariableData, VariableValue};
use measure::eventlog::decode::{
    measured_bytes, measured_bytes_quirks, DigestQuirk, EventData, IplKind,
};
use measure::eventlog::{Event, EventLog, EventType};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/eventlogs")
}

/// Every `.bin` fixture, by file name. Every one must parse.
fn logs() -> Vec<(String, EventLog)> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir().join(&name)).unwrap();
        let log = EventLog::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, log));
    }
    assert!(out.len() >= 25, "only {} fixture logs", out.len());
    out
}

fn event(log: &EventLog, number: usize) -> &Event {
    log.events.iter().find(|e| e.number == number).unwrap()
}

fn log<'a>(logs: &'a [(String, EventLog)], name: &str) -> &'a EventLog {
    &logs.iter().find(|(n, _)| n == name).unwrap().1
}

/// (log, event number) pairs allowed to fail decoding, each with its reason. Empty: every event
/// of every fixture decodes.
const ALLOWED_DECODE_ERRORS: &[(&str, usize, &str)] = &[];

#[test]
fn every_event_decodes() {
    let mut errors = Vec::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (name, log) in logs() {
        for ev in &log.events {
            match ev.decode() {
                Ok(d) => {
                    let json = serde_json::to_value(&d).unwrap();
                    *kinds
                        .entry(json["kind"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                    // Unknown is reserved for event types PFP 1.06 does not define and for
                    // unrecognised EV_NO_ACTION payloads; none occur in the fixtures.
                    assert_ne!(
                        d,
                        EventData::Unknown,
                        "{name} event {} ({})",
                        ev.number,
                        ev.event_type
                    );
                }
                Err(e) => {
                    if !ALLOWED_DECODE_ERRORS
                        .iter()
                        .any(|(n, num, _)| *n == name && *num == ev.number)
                    {
                        errors.push(format!(
                            "{name} event {} ({}): {e}",
                            ev.number, ev.event_type
                        ));
                    }
                }
            }
        }
    }
    println!("decoded kinds: {kinds:?}");
    assert!(errors.is_empty(), "decode errors:\n{}", errors.join("\n"));
    for k in [
        "variable",
        "image_load",
        "gpt",
        "ipl",
        "separator",
        "text",
        "firmware_blob",
        "handoff_tables",
        "tagged_event",
        "raw",
        "startup_locality",
    ] {
        assert!(kinds.contains_key(k), "no {k} event decoded");
    }
}

/// Every use of a [`DigestQuirk`] in the fixtures: (log, event type, quirk, number of events).
/// A change here is a change in behaviour, not noise.
const EXPECTED_QUIRKS: &[(&str, EventType, DigestQuirk, usize)] = &[
    (
        "arch-linux-workstation.bin",
        EventType::EV_EFI_VARIABLE_BOOT,
        DigestQuirk::VariableBootWholeStructure,
        4,
    ),
    (
        "cos-85-amd-sev.bin",
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        DigestQuirk::ShimAuthorityLastByteUnhashed,
        2,
    ),
    (
        "cos-93-amd-sev.bin",
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        DigestQuirk::ShimAuthorityLastByteUnhashed,
        2,
    ),
    (
        "debian-10.bin",
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        DigestQuirk::ShimAuthorityLastByteUnhashed,
        1,
    ),
    (
        "event-arch-linux.bin",
        EventType::EV_EFI_VARIABLE_BOOT,
        DigestQuirk::VariableBootWholeStructure,
        4,
    ),
    (
        "event-postcode.bin",
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        DigestQuirk::ShimAuthorityLastByteUnhashed,
        2,
    ),
    (
        "event-postcode.bin",
        EventType::EV_EFI_VARIABLE_BOOT,
        DigestQuirk::VariableBootWholeStructure,
        17,
    ),
    (
        "glinux-alex.bin",
        EventType::EV_EFI_VARIABLE_BOOT,
        DigestQuirk::VariableBootWholeStructure,
        6,
    ),
];

#[test]
fn measured_bytes_against_real_digests() {
    // (event type, outcome) -> (events, logs)
    let mut table: BTreeMap<(String, String), (usize, BTreeSet<String>)> = BTreeMap::new();
    let mut quirks: BTreeMap<(String, String, DigestQuirk), usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (name, log) in logs() {
        for ev in &log.events {
            let Some(bytes) = measured_bytes(ev.event_type, ev.pcr, &ev.data) else {
                continue;
            };
            let matches = |b: &[u8]| {
                let mut any = false;
                let all = ev
                    .digests
                    .iter()
                    .filter_map(|d| d.algorithm.map(|a| (a, &d.digest)))
                    .all(|(a, d)| {
                        any = true;
                        a.hash(b) == *d
                    });
                any && all
            };
            let outcome = if matches(&bytes) {
                "match".to_owned()
            } else if let Some((q, _)) = measured_bytes_quirks(ev.event_type, ev.pcr, &ev.data)
                .into_iter()
                .find(|(_, b)| matches(b))
            {
                *quirks
                    .entry((name.clone(), ev.event_type.to_string(), q))
                    .or_default() += 1;
                format!("quirk:{}", q.name())
            } else {
                unexplained.push(format!(
                    "{name} event {} ({}, PCR {})",
                    ev.number, ev.event_type, ev.pcr
                ));
                "MISMATCH".to_owned()
            };
            let entry = table
                .entry((ev.event_type.to_string(), outcome))
                .or_default();
            entry.0 += 1;
            entry.1.insert(name.clone());
        }
    }
    println!(
        "{:<32} {:<42} {:>6}  logs",
        "event type", "outcome", "events"
    );
    for ((t, outcome), (n, logs)) in &table {
        println!("{t:<32} {outcome:<42} {n:>6}  {}", logs.len());
    }
    assert!(
        unexplained.is_empty(),
        "digest mismatches no rule or quirk explains:\n{}",
        unexplained.join("\n")
    );
    let expected: BTreeMap<(String, String, DigestQuirk), usize> = EXPECTED_QUIRKS
        .iter()
        .map(|(n, t, q, c)| ((n.to_string(), t.to_string(), *q), *c))
        .collect();
    assert_eq!(quirks, expected);
    // The rules are exercised: these types match in many logs.
    for t in [
        "EV_SEPARATOR",
        "EV_EFI_ACTION",
        "EV_S_CRTM_VERSION",
        "EV_EFI_GPT_EVENT",
        "EV_EFI_VARIABLE_DRIVER_CONFIG",
        "EV_EFI_VARIABLE_BOOT",
        "EV_EFI_VARIABLE_AUTHORITY",
        "EV_IPL",
    ] {
        let (n, logs) = &table[&(t.to_owned(), "match".to_owned())];
        assert!(
            *n >= 5 && logs.len() >= 5,
            "{t}: only {n} matches in {} logs",
            logs.len()
        );
    }
}

// ------------------------------------------------------------------------------------------
// tpm2-tools YAML

/// One event of a tpm2-tools YAML file: its number and the `(key, value)` lines of its
/// `Event:` body, in order, with list markers and indentation removed.
#[derive(Debug)]
struct YamlEvent {
    number: usize,
    event_type: String,
    /// The value on the `Event:` line itself (`"00000000"`, `|-`, or empty).
    inline: String,
    body: Vec<(String, String)>,
    /// Unkeyed lines of the body (`- Boot0003`, the text of a `|-` block).
    items: Vec<String>,
}

impl YamlEvent {
    fn get(&self, key: &str) -> Option<&str> {
        self.body
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// The value of `key`, which must be present.
    fn req(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("event {} has no {key}: {self:?}", self.number))
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.body
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Reads a tpm2-tools event-log YAML. Version 2 (crypto-agile) files number events with
/// `- EventNum:`; version 1 (SHA-1) files list events as repeated keys, each starting at
/// `  PCRIndex:`, numbered from 0.
fn read_yaml(path: &Path) -> Vec<YamlEvent> {
    let text = std::fs::read_to_string(path).unwrap();
    let v1 = text.lines().nth(1) == Some("version: 1");
    let mut events: Vec<YamlEvent> = Vec::new();
    let mut in_body = false;
    for line in text.lines() {
        if line.starts_with("pcrs:") {
            break;
        }
        let start = if v1 {
            line.starts_with("  PCRIndex:")
        } else {
            line.starts_with("- EventNum:")
        };
        if start {
            let number = if v1 {
                events.len()
            } else {
                line["- EventNum:".len()..].trim().parse().unwrap()
            };
            events.push(YamlEvent {
                number,
                event_type: String::new(),
                inline: String::new(),
                body: vec![],
                items: vec![],
            });
            in_body = false;
        }
        let Some(ev) = events.last_mut() else {
            continue;
        };
        if let Some(t) = line.strip_prefix("  EventType: ") {
            ev.event_type = t.to_owned();
        }
        if let Some(v) = line.strip_prefix("  Event:") {
            ev.inline = v.trim().to_owned();
            in_body = true;
            continue;
        }
        if in_body {
            if !line.starts_with("    ") {
                in_body = false;
                continue;
            }
            // Continuation of a multi-line double-quoted string: a line ending in `\` is an
            // escaped line break; the next line's indentation is not part of the string.
            if let Some((_, v)) = ev.body.last_mut().filter(|(_, v)| open_quote(v)) {
                v.pop();
                v.push_str(line.trim_start());
                continue;
            }
            let l = line.trim_start().trim_start_matches("- ");
            match l.split_once(": ") {
                Some((k, v)) if !k.contains(' ') => ev.body.push((k.to_owned(), v.to_owned())),
                // A key that opens a nested block (`VariableData:`).
                None if l.ends_with(':') && !l.contains(' ') => ev
                    .body
                    .push((l.trim_end_matches(':').to_owned(), String::new())),
                _ => ev.items.push(l.to_owned()),
            }
        }
    }
    events
}

/// A double-quoted YAML scalar that continues on the next line (ends with `\`, not `"`).
fn open_quote(v: &str) -> bool {
    v.starts_with('"') && v.ends_with('\\') && !v.ends_with("\\\\")
}

/// A tpm2-tools quoted string (`"grub_cmd: ls\0"`) as bytes.
fn unquote(v: &str) -> Vec<u8> {
    let s = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'0' => out.push(0),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

fn num(v: &str) -> u64 {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => v.parse().unwrap(),
    }
}

fn unhex(v: &str) -> String {
    v.trim_matches(|c| c == '\'' || c == '"').to_owned()
}

#[test]
fn agrees_with_tpm2_tools_yaml() {
    let logs = logs();
    let mut checks: BTreeMap<&str, usize> = BTreeMap::new();
    let mut yamls: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".expected.yaml"))
        .collect();
    yamls.sort();
    for yaml in yamls {
        let bin = yaml.replace(".expected.yaml", ".bin");
        let Some((_, log)) = logs.iter().find(|(n, _)| *n == bin) else {
            continue;
        };
        for y in read_yaml(&dir().join(&yaml)) {
            let Some(ev) = log.events.iter().find(|e| e.number == y.number) else {
                continue;
            };
            assert_eq!(
                ev.event_type.to_string(),
                y.event_type,
                "{bin} event {}",
                y.number
            );
            let at = format!("{bin} event {} ({})", y.number, y.event_type);
            let decoded = ev.decode().unwrap();
            // Events tpm2-tools prints as plain hex (separators, S-CRTM versions, and in older
            // fixtures GPT events): the bytes must be the event data.
            if y.inline.starts_with('"') {
                assert_eq!(unhex(&y.inline), hex::encode(&ev.data), "{at}");
                *checks.entry("inline_hex").or_default() += 1;
                if let EventData::Separator { value, .. } = decoded {
                    assert_eq!(unhex(&y.inline), hex::encode(value.to_le_bytes()), "{at}");
                    *checks.entry("separator").or_default() += 1;
                }
                continue;
            }
            match decoded {
                EventData::Variable(v) => check_variable(&at, &y, ev, &v, &mut checks),
                EventData::ImageLoad(img) => check_image(&at, &y, ev, &img, &mut checks),
                EventData::Gpt(g) => {
                    let h = &g.header;
                    assert_eq!(y.get("Signature"), Some("\"EFI PART\""), "{at}");
                    let header = [
                        ("Revision", u64::from(h.revision)),
                        ("HeaderSize", u64::from(h.header_size)),
                        ("HeaderCRC32", u64::from(h.header_crc32)),
                        ("MyLBA", h.my_lba),
                        ("AlternateLBA", h.alternate_lba),
                        ("FirstUsableLBA", h.first_usable_lba),
                        ("LastUsableLBA", h.last_usable_lba),
                        ("PartitionEntryLBA", h.partition_entry_lba),
                        (
                            "NumberOfPartitionEntry",
                            u64::from(h.number_of_partition_entries),
                        ),
                        ("SizeOfPartitionEntry", u64::from(h.size_of_partition_entry)),
                        (
                            "PartitionEntryArrayCRC32",
                            u64::from(h.partition_entry_array_crc32),
                        ),
                        ("NumberOfPartitions", g.number_of_partitions),
                    ];
                    for (k, want) in header {
                        assert_eq!(num(y.req(k)), want, "{at} {k}");
                    }
                    assert_eq!(y.req("DiskGUID"), h.disk_guid.to_string(), "{at}");
                    let p = &g.partitions;
                    let strs = |f: &dyn Fn(&measure::efi::gpt::GptPartition) -> String| {
                        p.iter().map(f).collect::<Vec<_>>()
                    };
                    assert_eq!(
                        y.all("PartitionTypeGUID"),
                        strs(&|p| p.partition_type.to_string()),
                        "{at}"
                    );
                    assert_eq!(
                        y.all("UniquePartitionGUID"),
                        strs(&|p| p.unique_partition_guid.to_string()),
                        "{at}"
                    );
                    assert_eq!(
                        y.all("StartingLBA")
                            .into_iter()
                            .map(num)
                            .collect::<Vec<_>>(),
                        p.iter().map(|p| p.starting_lba).collect::<Vec<_>>(),
                        "{at}"
                    );
                    assert_eq!(
                        y.all("EndingLBA").into_iter().map(num).collect::<Vec<_>>(),
                        p.iter().map(|p| p.ending_lba).collect::<Vec<_>>(),
                        "{at}"
                    );
                    assert_eq!(
                        y.all("Attributes").into_iter().map(num).collect::<Vec<_>>(),
                        p.iter().map(|p| p.attributes).collect::<Vec<_>>(),
                        "{at}"
                    );
                    let names: Vec<String> = y
                        .all("PartitionName")
                        .into_iter()
                        .map(|n| String::from_utf8(unquote(n)).unwrap())
                        .collect();
                    assert_eq!(names, strs(&|p| p.name.clone()), "{at}");
                    *checks.entry("gpt").or_default() += 1;
                }
                EventData::FirmwareBlob(b) => {
                    assert_eq!(num(y.req("BlobBase")), b.base, "{at}");
                    assert_eq!(num(y.req("BlobLength")), b.length, "{at}");
                    *checks.entry("blob").or_default() += 1;
                }
                EventData::Ipl(i) => {
                    let s = unquote(y.req("String"));
                    assert_eq!(s, ev.data, "{at}: yaml reader");
                    if i.encoding == TextEncoding::Utf8 {
                        assert_eq!(
                            i.text.as_bytes(),
                            s.strip_suffix(&[0]).unwrap_or(&s),
                            "{at}"
                        );
                        *checks.entry("ipl").or_default() += 1;
                    }
                }
                EventData::Text(t) if ev.event_type == EventType::EV_EFI_ACTION => {
                    assert_eq!(y.inline, "|-", "{at}");
                    assert_eq!(y.items, std::slice::from_ref(&t.text), "{at}");
                    *checks.entry("action").or_default() += 1;
                }
                _ => {}
            }
        }
    }
    println!("checks against tpm2-tools: {checks:?}");
    for k in [
        "variable",
        "signature_list",
        "load_option",
        "boot_order",
        "boolean",
        "image_load",
        "device_path",
        "gpt",
        "blob",
        "ipl",
        "action",
        "separator",
        "sbat",
    ] {
        assert!(checks.get(k).copied().unwrap_or(0) > 0, "no {k} check ran");
    }
}

fn check_variable(
    at: &str,
    y: &YamlEvent,
    ev: &Event,
    v: &VariableData,
    checks: &mut BTreeMap<&'static str, usize>,
) {
    assert_eq!(y.req("VariableName"), v.vendor.to_string(), "{at}");
    assert_eq!(
        num(y.req("UnicodeNameLength")),
        v.unicode_name_length,
        "{at}"
    );
    assert_eq!(
        num(y.req("VariableDataLength")),
        v.variable_data_length,
        "{at}"
    );
    assert_eq!(y.req("UnicodeName"), v.name, "{at}");
    *checks.entry("variable").or_default() += 1;
    // Older tpm2-tools fixtures print some variables' data as plain hex.
    if let Some(hex_data) = y.get("VariableData").filter(|d| !d.is_empty()) {
        let start = 32 + 2 * usize::try_from(v.unicode_name_length).unwrap();
        let len = usize::try_from(v.variable_data_length).unwrap();
        assert_eq!(
            unhex(hex_data),
            hex::encode(&ev.data[start..start + len]),
            "{at}"
        );
        *checks.entry("variable_hex").or_default() += 1;
        return;
    }
    match &v.value {
        VariableValue::SignatureLists { lists } => {
            let types: Vec<String> = lists.iter().map(|l| l.signature_type.to_string()).collect();
            assert_eq!(y.all("SignatureType"), types, "{at}");
            let sizes: Vec<u64> = lists.iter().map(|l| u64::from(l.list_size)).collect();
            assert_eq!(
                y.all("SignatureListSize")
                    .into_iter()
                    .map(num)
                    .collect::<Vec<_>>(),
                sizes,
                "{at}"
            );
            let owners: Vec<String> = lists
                .iter()
                .flat_map(|l| &l.signatures)
                .map(|s| s.owner.to_string())
                .collect();
            assert_eq!(y.all("SignatureOwner"), owners, "{at}");
            let data: Vec<String> = lists
                .iter()
                .flat_map(|l| &l.signatures)
                .map(|s| match &s.value {
                    SignatureValue::X509(c) => hex::encode(&c.der),
                    SignatureValue::Hash { digest, .. } => hex::encode(digest),
                    other => panic!("{at}: unexpected {other:?}"),
                })
                .collect();
            assert_eq!(y.all("SignatureData"), data, "{at}");
            *checks.entry("signature_list").or_default() += 1;
        }
        VariableValue::LoadOption(o) => {
            assert_eq!(
                y.req("Enabled"),
                if o.active { "'Yes'" } else { "'No'" },
                "{at}"
            );
            assert_eq!(
                num(y.req("FilePathListLength")),
                u64::from(o.file_path_list_length),
                "{at}"
            );
            assert_eq!(
                unquote(y.req("Description")),
                o.description.as_bytes(),
                "{at}"
            );
            // tpm2-tools prints FilePathList and OptionalData together as hex.
            let tail = unhex(y.req("DevicePath"));
            assert!(hex::encode(&ev.data).ends_with(&tail), "{at}");
            assert_eq!(
                tail.len() / 2,
                usize::from(o.file_path_list_length) + o.optional_data.len(),
                "{at}"
            );
            assert!(
                !o.file_paths.is_empty() && o.file_paths.iter().all(|p| !p.is_empty()),
                "{at}"
            );
            *checks.entry("load_option").or_default() += 1;
        }
        VariableValue::U16List { values } => {
            let want: Vec<String> = values.iter().map(|n| format!("Boot{n:04X}")).collect();
            assert_eq!(y.items, want, "{at}");
            *checks.entry("boot_order").or_default() += 1;
        }
        VariableValue::Boolean { value, .. } => {
            assert_eq!(
                y.req("Enabled"),
                if *value { "'Yes'" } else { "'No'" },
                "{at}"
            );
            *checks.entry("boolean").or_default() += 1;
        }
        VariableValue::Text(t) => {
            assert_eq!(unquote(y.req("String")), t.text.as_bytes(), "{at}");
            *checks.entry("sbat").or_default() += 1;
        }
        VariableValue::SignatureData(sd) => {
            assert_eq!(y.req("SignatureOwner"), sd.owner.to_string(), "{at}");
            *checks.entry("authority").or_default() += 1;
        }
        // tpm2-tools shows a bare certificate as if it were an EFI_SIGNATURE_DATA (its first
        // 16 bytes as the owner); nothing to compare.
        VariableValue::Certificate(_)
        | VariableValue::Empty
        | VariableValue::U16 { .. }
        | VariableValue::Raw { .. } => {}
    }
}

fn check_image(
    at: &str,
    y: &YamlEvent,
    ev: &Event,
    img: &ImageLoadEvent,
    checks: &mut BTreeMap<&'static str, usize>,
) {
    assert_eq!(
        num(y.req("ImageLocationInMemory")),
        img.image_location_in_memory,
        "{at}"
    );
    assert_eq!(
        num(y.req("ImageLengthInMemory")),
        img.image_length_in_memory,
        "{at}"
    );
    assert_eq!(
        num(y.req("ImageLinkTimeAddress")),
        img.image_link_time_address,
        "{at}"
    );
    assert_eq!(
        num(y.req("LengthOfDevicePath")),
        img.length_of_device_path,
        "{at}"
    );
    // tpm2-tools prints everything after the fixed header as the device path.
    assert_eq!(
        unhex(y.req("DevicePath")),
        hex::encode(&ev.data[32..]),
        "{at}"
    );
    *checks.entry("image_load").or_default() += 1;
    if img.length_of_device_path > 0 {
        let text = img.device_path.as_deref().unwrap();
        assert!(!text.is_empty() && !text.contains("Path("), "{at}: {text}");
        *checks.entry("device_path").or_default() += 1;
    }
}

// ------------------------------------------------------------------------------------------
// Specific facts

fn variable(log: &EventLog, number: usize) -> VariableData {
    match event(log, number).decode().unwrap() {
        EventData::Variable(v) => v,
        other => panic!("event {number}: {other:?}"),
    }
}

fn subjects(v: &VariableData) -> Vec<String> {
    match &v.value {
        VariableValue::SignatureLists { lists } => lists
            .iter()
            .flat_map(|l| &l.signatures)
            .filter_map(|s| match &s.value {
                SignatureValue::X509(c) => Some(c.subject.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn known_facts() {
    let logs = logs();

    // arch-linux-workstation.bin: SecureBoot logged with no data; self-made PK.
    let arch = log(&logs, "arch-linux-workstation.bin");
    let sb = variable(arch, 3);
    assert_eq!(
        (sb.name.as_str(), &sb.value),
        ("SecureBoot", &VariableValue::Empty)
    );
    assert_eq!(subjects(&variable(arch, 4)), ["CN=Joe Richey (PK)"]);
    // systemd-boot's UTF-16 command line with its stray odd byte (PCR 8, event 24).
    let EventData::Ipl(ipl) = event(arch, 24).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        (ipl.kind, ipl.encoding),
        (IplKind::KernelCmdline, TextEncoding::Utf16le)
    );
    assert!(ipl
        .text
        .starts_with("initrd=\\intel-ucode.img initrd=\\initramfs-linux-lts.img cryptdevice="));
    assert!(ipl.text.ends_with("l1tf=off"));
    let EventData::ImageLoad(img) = event(arch, 22).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        img.device_path.as_deref(),
        Some("PciRoot(0x0)/Pci(0x17,0x0)/Sata(0x1,0xffff,0x0)/HD(1,GPT,1a504613-19b5-4b44-a83d-d926d40daa1c,0x800,0x80000)/\\EFI\\SYSTEMD\\SYSTEMD-BOOTX64.EFI")
    );

    // rhel8-uefi.bin (Secure Boot on): Microsoft's CAs in db, Red Hat's shim certificate.
    let rhel = log(&logs, "rhel8-uefi.bin");
    let db = rhel
        .events
        .iter()
        .filter(|e| e.event_type == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG)
        .map(|e| variable(rhel, e.number))
        .find(|v| v.name == "db")
        .unwrap();
    let db_subjects = subjects(&db);
    assert!(db_subjects.contains(&"C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Windows Production PCA 2011".to_owned()));
    assert!(db_subjects.contains(&"C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Corporation UEFI CA 2011".to_owned()));
    let shim = variable(rhel, 27);
    let VariableValue::Certificate(cert) = &shim.value else {
        panic!("{shim:?}")
    };
    assert_eq!(shim.name, "Shim");
    assert_eq!(
        cert.subject,
        "O=Red Hat, Inc., CN=Red Hat Secure Boot CA 5, Email=secalert@redhat.com"
    );
    assert_eq!(cert.sha256.len(), 64);
    // The db entry that authorised shim: Microsoft's third-party UEFI CA.
    let auth = variable(rhel, 21);
    let VariableValue::SignatureData(sd) = &auth.value else {
        panic!("{auth:?}")
    };
    let SignatureValue::X509(ca) = &sd.value else {
        panic!()
    };
    assert_eq!(ca.subject, "C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Corporation UEFI CA 2011");
    assert_eq!(ca.not_after, "2026-06-27T21:32:45Z");

    // event-gce-ubuntu-2104-log.bin: shim's device path, the BBS boot option, GRUB's kernel
    // command line and its digest rule.
    let gce = log(&logs, "event-gce-ubuntu-2104-log.bin");
    let EventData::ImageLoad(img) = event(gce, 23).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        img.device_path.as_deref(),
        Some("PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x1,0x0)/HD(15,GPT,6ea6f740-25ef-4269-838d-1a6f21ebf27f,0x2800,0x35000)/\\EFI\\ubuntu\\shimx64.efi")
    );
    let boot2 = variable(gce, 13);
    let VariableValue::LoadOption(o) = &boot2.value else {
        panic!("{boot2:?}")
    };
    assert_eq!(
        (boot2.name.as_str(), o.description.as_str()),
        ("Boot0002", "VirtScsi(0,3,0) Disk")
    );
    assert_eq!(o.file_paths, ["BBS(HD,VirtScsi(0,3,0) Disk,0x0)"]);
    let cmdline = event(gce, 102);
    let EventData::Ipl(ipl) = cmdline.decode().unwrap() else {
        panic!()
    };
    assert_eq!(ipl.kind, IplKind::KernelCmdline);
    assert_eq!(
        ipl.value.as_deref(),
        Some("/boot/vmlinuz-5.11.0-1008-gcp root=PARTUUID=bf817bdf-6a3a-4221-8edb-2c1ca7c5537f ro scsi_mod.use_blk_mq=Y ima_hash=sha256 console=ttyS0 panic=-1")
    );
    let hashed = measured_bytes(cmdline.event_type, cmdline.pcr, &cmdline.data).unwrap();
    assert_eq!(hashed.as_ref(), ipl.value.as_deref().unwrap().as_bytes());
    let sbat = variable(gce, 26);
    assert!(matches!(&sbat.value, VariableValue::Text(t) if t.text == "sbat,1,2021030218\n"));

    // event-moklisttrusted.bin: shim's MokListTrusted authority event and PCR 14 mirror.
    let mok = log(&logs, "event-moklisttrusted.bin");
    assert_eq!(
        variable(mok, 29).value,
        VariableValue::Boolean {
            value: true,
            raw: 1
        }
    );
    let EventData::Ipl(ipl) = event(mok, 30).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        (ipl.kind, ipl.text.as_str()),
        (IplKind::ShimVariable, "MokListTrusted")
    );

    // kl_bbm.bin (Lenovo): firmware-volume drivers, SMBIOS handoff table, HTTP boot option.
    let bbm = log(&logs, "kl_bbm.bin");
    let EventData::ImageLoad(img) = event(bbm, 18).decode().unwrap() else {
        panic!()
    };
    assert!(img
        .device_path
        .unwrap()
        .starts_with("Fv(8fc151ae-c96f-4bc9-8c33-107992c7735b)/FvFile("));
    let EventData::HandoffTables(t) = event(bbm, 49).decode().unwrap() else {
        panic!()
    };
    assert_eq!(t.tables[0].name, Some("SMBIOS3_TABLE_GUID"));
    let uri = bbm
        .events
        .iter()
        .filter_map(|e| match e.decode() {
            Ok(EventData::Variable(VariableData {
                value: VariableValue::LoadOption(o),
                ..
            })) => Some(o),
            _ => None,
        })
        .flat_map(|o| o.file_paths)
        .find(|p| p.contains("Uri(http"))
        .unwrap();
    assert!(
        uri.ends_with("/Uri(https://download.lenovo.com/pccbbs/cdeploy/efi/boot.efi)"),
        "{uri}"
    );

    // event-sd-boot-fedora37.bin: systemd-stub's PCR 12 command line, the kernel's tagged
    // initrd event.
    let sd = log(&logs, "event-sd-boot-fedora37.bin");
    let EventData::Ipl(ipl) = event(sd, 23).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        (ipl.kind, ipl.text.as_str()),
        (
            IplKind::KernelCmdline,
            " console=ttyS0 console=tty0 efi=debug "
        )
    );
    let EventData::TaggedEvent(t) = event(sd, 25).decode().unwrap() else {
        panic!()
    };
    assert_eq!(
        (t.known_id, t.data.text.as_str()),
        (Some("linux_initrd"), "Linux initrd")
    );

    // debian-10.bin (SHA-1 log, old shim): a bare certificate with six unhashed bytes after it.
    let deb = log(&logs, "debian-10.bin");
    let shim = variable(deb, 23);
    assert!(
        matches!(&shim.value, VariableValue::Certificate(c) if c.subject == "CN=Debian Secure Boot CA")
    );
    assert_eq!(shim.trailing.len(), 6);

    // No fixture logs an error separator.
    for (name, log) in &logs {
        for ev in &log.events {
            if let Ok(EventData::Separator { error, .. }) = ev.decode() {
                assert!(!error, "{name} event {}", ev.number);
            }
        }
    }
}
