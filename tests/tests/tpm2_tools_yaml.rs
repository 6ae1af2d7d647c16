//! Warrant's event-log parser against the reference tool: for every
//! `measure/testdata/eventlogs/<name>.expected.yaml` (what tpm2-tools' `tpm2_eventlog` prints for
//! `<name>.bin`, taken from tpm2-tools' own test fixtures), parse `<name>.bin` with
//! [`EventLog::parse`] and require agreement on every event's number, PCR index, event type
//! name, data size and every digest (algorithm and value), on the crypto-agile header's Spec ID
//! fields, and on the final PCR values of the `pcrs:` section (against Warrant's replay).
//!
//! The YAML is read by a small, strict, line-based reader for exactly the subset tpm2-tools
//! writes (no YAML crate): tpm2-tools' legacy SHA-1 output is not valid YAML anyway (events are
//! repeated keys of one mapping, not list items). Event bodies (`Event:`) are skipped; any line
//! the reader does not expect outside a body is an error, so a format change cannot make a field
//! silently go unchecked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use measure::eventlog::{Event, EventLog, SpecIdEvent};
use measure::HashAlg;
use std::collections::BTreeMap;
use std::path::Path;

/// One event as tpm2-tools printed it.
#[derive(Debug, Default)]
struct YamlEvent {
    /// 1-based line of the YAML where the event starts (for messages).
    line: usize,
    /// `EventNum`; absent in tpm2-tools' legacy SHA-1 output, where events are counted from 0.
    num: Option<usize>,
    pcr: Option<u32>,
    event_type: Option<String>,
    digest_count: Option<usize>,
    /// `Digests:` list: (`AlgorithmId`, `Digest` hex). The digest is `None` until its line is read.
    digests: Vec<(String, Option<String>)>,
    /// A single `Digest:` (the SHA-1 form of the crypto-agile header event).
    single_digest: Option<String>,
    event_size: Option<usize>,
    spec_id: Option<YamlSpecId>,
}

/// The `SpecID:` block of the header event.
#[derive(Debug, Default)]
struct YamlSpecId {
    /// Scalar fields (`Signature`, `platformClass`, `uintnSize`, `vendorInfo`, ...).
    fields: BTreeMap<String, String>,
    /// `Algorithms:` list: (`algorithmId`, `digestSize`).
    algorithms: Vec<(Option<String>, Option<String>)>,
}

#[derive(Debug, Default)]
struct YamlLog {
    events: Vec<YamlEvent>,
    /// `pcrs:` section: algorithm name -> PCR index -> lowercase hex (without `0x`).
    pcrs: BTreeMap<String, BTreeMap<u32, String>>,
}

/// Where the reader is inside an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Fields,
    Digests,
    SpecId,
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Section {
    Start,
    Events,
    Pcrs(Option<String>),
}

/// Splits `key: value` (value may be empty) and unquotes a `"..."` value.
fn key_value(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once(':')?;
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    Some((k.trim_end(), v))
}

fn set<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{what} given twice in one event"));
    }
    *slot = Some(value);
    Ok(())
}

fn num<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{what}: `{v}` is not a number"))
}

impl YamlLog {
    fn parse(text: &str) -> Result<YamlLog, String> {
        let mut log = YamlLog::default();
        let mut section = Section::Start;
        let mut sub = Sub::Fields;
        // `Some(true)`: events are `- EventNum:` list items; `Some(false)`: legacy repeated keys.
        let mut listed: Option<bool> = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let at = |e: String| format!("line {line_no}: {e}: `{raw}`");
            if raw.trim().is_empty() {
                continue;
            }
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let s = &raw[indent..];
            if s.starts_with('\t') {
                return Err(at("tab in indentation".into()));
            }
            // Top level.
            if indent == 0 {
                sub = Sub::Fields;
                match key_value(s) {
                    _ if s == "---" && line_no == 1 => {}
                    Some(("version", _)) if section == Section::Start => {}
                    Some(("events", "")) if section == Section::Start => section = Section::Events,
                    Some(("pcrs", "")) if section == Section::Events => {
                        section = Section::Pcrs(None)
                    }
                    Some(("- EventNum", n))
                        if section == Section::Events && listed != Some(false) =>
                    {
                        listed = Some(true);
                        log.events.push(YamlEvent {
                            line: line_no,
                            num: Some(num(n, "EventNum").map_err(at)?),
                            ..YamlEvent::default()
                        });
                    }
                    _ => return Err(at("unexpected top-level line".into())),
                }
                continue;
            }
            if let Section::Pcrs(bank) = &mut section {
                match (indent, key_value(s)) {
                    (2, Some((alg, ""))) => {
                        if log.pcrs.insert(alg.to_string(), BTreeMap::new()).is_some() {
                            return Err(at("bank given twice".into()));
                        }
                        *bank = Some(alg.to_string());
                    }
                    (4, Some((pcr, value))) => {
                        let bank = bank
                            .as_ref()
                            .ok_or_else(|| at("PCR outside a bank".into()))?;
                        let pcr: u32 = num(pcr, "PCR index").map_err(at)?;
                        let hex = value
                            .strip_prefix("0x")
                            .ok_or_else(|| at("PCR value without 0x".into()))?;
                        let values = log.pcrs.entry(bank.clone()).or_default();
                        if values.insert(pcr, hex.to_ascii_lowercase()).is_some() {
                            return Err(at("PCR given twice".into()));
                        }
                    }
                    _ => return Err(at("unexpected line in pcrs".into())),
                }
                continue;
            }
            if section != Section::Events {
                return Err(at("indented line outside events and pcrs".into()));
            }
            // A legacy-format event starts at its `PCRIndex` line.
            if indent == 2 && key_value(s).is_some_and(|(k, _)| k == "PCRIndex") {
                let needs_new = !matches!(log.events.last(), Some(e) if e.pcr.is_none());
                if needs_new {
                    if listed == Some(true) {
                        return Err(at("PCRIndex twice in one event".into()));
                    }
                    listed = Some(false);
                    log.events.push(YamlEvent {
                        line: line_no,
                        ..YamlEvent::default()
                    });
                }
            }
            let ev = log
                .events
                .last_mut()
                .ok_or_else(|| at("event field before any event".into()))?;
            match indent {
                2 => {
                    let (k, v) = key_value(s).ok_or_else(|| at("not a key".into()))?;
                    match k {
                        "- AlgorithmId" if sub == Sub::Digests => {
                            ev.digests.push((v.to_string(), None))
                        }
                        // `- Signature` is the first field of the SpecID block's only item.
                        "- Signature" if sub == Sub::SpecId => {
                            let spec = ev.spec_id.get_or_insert_with(YamlSpecId::default);
                            spec.fields.insert("Signature".into(), v.to_string());
                        }
                        _ => {
                            sub = Sub::Fields;
                            match k {
                                "PCRIndex" => set(&mut ev.pcr, num(v, k).map_err(at)?, k),
                                "EventType" => set(&mut ev.event_type, v.to_string(), k),
                                "DigestCount" => {
                                    set(&mut ev.digest_count, num(v, k).map_err(at)?, k)
                                }
                                "EventSize" => set(&mut ev.event_size, num(v, k).map_err(at)?, k),
                                "Digest" => set(&mut ev.single_digest, v.to_ascii_lowercase(), k),
                                "Digests" if v.is_empty() => {
                                    sub = Sub::Digests;
                                    Ok(())
                                }
                                "SpecID" if v.is_empty() => {
                                    sub = Sub::SpecId;
                                    set(&mut ev.spec_id, YamlSpecId::default(), k)
                                }
                                "Event" => {
                                    sub = Sub::Body;
                                    Ok(())
                                }
                                _ => Err("unknown event field".into()),
                            }
                            .map_err(at)?;
                        }
                    }
                }
                4 if sub == Sub::Digests => match key_value(s) {
                    Some(("Digest", v)) => {
                        let last = ev
                            .digests
                            .last_mut()
                            .ok_or_else(|| at("Digest before AlgorithmId".into()))?;
                        set(&mut last.1, v.to_ascii_lowercase(), "Digest").map_err(at)?;
                    }
                    _ => return Err(at("unexpected line in Digests".into())),
                },
                4 | 6 if sub == Sub::SpecId => {
                    let spec = ev.spec_id.get_or_insert_with(YamlSpecId::default);
                    match (indent, key_value(s)) {
                        (4, Some((k, ""))) if k.starts_with("- Algorithm[") && k.ends_with(']') => {
                            spec.algorithms.push((None, None));
                        }
                        (4, Some(("Algorithms", ""))) => {}
                        (4, Some((k, v))) if !k.starts_with('-') => {
                            if spec.fields.insert(k.to_string(), v.to_string()).is_some() {
                                return Err(at("SpecID field twice".into()));
                            }
                        }
                        (6, Some((k, v))) => {
                            let alg = spec
                                .algorithms
                                .last_mut()
                                .ok_or_else(|| at("algorithm field outside Algorithms".into()))?;
                            match k {
                                "algorithmId" => set(&mut alg.0, v.to_string(), k),
                                "digestSize" => set(&mut alg.1, v.to_string(), k),
                                _ => Err("unknown algorithm field".into()),
                            }
                            .map_err(at)?;
                        }
                        _ => return Err(at("unexpected line in SpecID".into())),
                    }
                }
                _ if sub == Sub::Body => {}
                _ => return Err(at("unexpected indentation".into())),
            }
        }
        if !matches!(section, Section::Pcrs(_)) {
            return Err("no `pcrs:` section (truncated file?)".into());
        }
        // Every event must be complete: a field the reader missed would otherwise go unchecked.
        for e in &log.events {
            let at = |m: &str| format!("event at line {}: {m}", e.line);
            if e.pcr.is_none() || e.event_type.is_none() || e.event_size.is_none() {
                return Err(at("PCRIndex, EventType or EventSize missing"));
            }
            match (e.single_digest.is_some(), e.digests.is_empty()) {
                (true, true) => {}
                (false, false) => {
                    if e.digest_count != Some(e.digests.len()) {
                        return Err(at("DigestCount disagrees with the Digests list"));
                    }
                    if e.digests.iter().any(|d| d.1.is_none()) {
                        return Err(at("AlgorithmId without Digest"));
                    }
                }
                _ => return Err(at("needs exactly one of Digest or Digests")),
            }
        }
        Ok(log)
    }
}

fn alg_name(algorithm: Option<HashAlg>, id: u16) -> String {
    algorithm.map_or_else(|| format!("{id:#06x}"), |a| a.name().to_string())
}

/// Differences between the header event as tpm2-tools printed it and Warrant's Spec ID.
fn compare_header(y: &YamlEvent, spec: &SpecIdEvent, bin: &[u8], out: &mut Vec<String>) {
    let mut diff = |what: &str, yaml: String, warrant: String| {
        if yaml != warrant {
            out.push(format!(
                "EventNum 0 (header) {what}: tpm2-tools {yaml:?}, Warrant {warrant:?}"
            ));
        }
    };
    diff("PCRIndex", format!("{:?}", y.pcr), "Some(0)".into());
    diff(
        "EventType",
        format!("{:?}", y.event_type),
        format!("{:?}", Some("EV_NO_ACTION")),
    );
    // The header's one SHA-1 digest is not kept by the parser; compare with the file's bytes.
    let raw = bin.get(8..28).map(hex::encode);
    diff(
        "Digest",
        format!("{:?}", y.single_digest),
        format!("{raw:?}"),
    );
    let Some(ys) = &y.spec_id else {
        out.push("EventNum 0 (header): no SpecID block in the YAML".into());
        return;
    };
    let f = |k: &str| {
        ys.fields
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("<no {k}>"))
    };
    diff("Signature", f("Signature"), spec.signature.clone());
    diff(
        "platformClass",
        f("platformClass"),
        spec.platform_class.to_string(),
    );
    diff(
        "specVersionMinor",
        f("specVersionMinor"),
        spec.spec_version_minor.to_string(),
    );
    diff(
        "specVersionMajor",
        f("specVersionMajor"),
        spec.spec_version_major.to_string(),
    );
    diff("specErrata", f("specErrata"), spec.spec_errata.to_string());
    diff("uintnSize", f("uintnSize"), spec.uintn_size.to_string());
    diff(
        "numberOfAlgorithms",
        f("numberOfAlgorithms"),
        spec.algorithms.len().to_string(),
    );
    let yalgs: Vec<_> = ys
        .algorithms
        .iter()
        .map(|(a, s)| (a.clone(), s.clone()))
        .collect();
    let walgs: Vec<_> = spec
        .algorithms
        .iter()
        .map(|a| {
            (
                Some(alg_name(a.algorithm, a.algorithm_id)),
                Some(a.digest_size.to_string()),
            )
        })
        .collect();
    diff("Algorithms", format!("{yalgs:?}"), format!("{walgs:?}"));
    diff(
        "vendorInfoSize",
        f("vendorInfoSize"),
        spec.vendor_info.len().to_string(),
    );
    if !spec.vendor_info.is_empty() || ys.fields.contains_key("vendorInfo") {
        diff(
            "vendorInfo",
            f("vendorInfo"),
            hex::encode(&spec.vendor_info),
        );
    }
}

/// Differences between one event as tpm2-tools printed it and as Warrant parsed it.
fn compare_event(y: &YamlEvent, e: &Event, out: &mut Vec<String>) {
    let n = e.number;
    let mut diff = |what: &str, yaml: String, warrant: String| {
        if yaml != warrant {
            out.push(format!(
                "EventNum {n} {what}: tpm2-tools {yaml}, Warrant {warrant}"
            ));
        }
    };
    diff(
        "PCRIndex",
        format!("{:?}", y.pcr),
        format!("{:?}", Some(e.pcr)),
    );
    diff(
        "EventType",
        format!("{:?}", y.event_type),
        format!("{:?}", Some(e.event_type.name())),
    );
    diff(
        "EventSize",
        format!("{:?}", y.event_size),
        format!("{:?}", Some(e.data.len())),
    );
    let ydigests: Vec<(String, String)> = match &y.single_digest {
        Some(d) => vec![("sha1".to_string(), d.clone())],
        None => y
            .digests
            .iter()
            .map(|(a, d)| (a.clone(), d.clone().unwrap_or_default()))
            .collect(),
    };
    let wdigests: Vec<(String, String)> = e
        .digests
        .iter()
        .map(|d| {
            (
                alg_name(d.algorithm, d.algorithm_id),
                hex::encode(&d.digest),
            )
        })
        .collect();
    diff("Digests", format!("{ydigests:?}"), format!("{wdigests:?}"));
}

/// Final PCR values of Warrant's replay of `log`, in the shape of the YAML's `pcrs:` section.
fn replayed_pcrs(log: &EventLog) -> BTreeMap<String, BTreeMap<u32, String>> {
    let replay = measure::eventlog::replay::replay(log);
    replay
        .banks
        .banks()
        .map(|(alg, pcrs)| {
            let pcrs = pcrs.iter().map(|(i, v)| (*i, hex::encode(v))).collect();
            (alg.name().to_string(), pcrs)
        })
        .collect()
}

fn compare_pcrs(
    yaml: &BTreeMap<String, BTreeMap<u32, String>>,
    warrant: &BTreeMap<String, BTreeMap<u32, String>>,
    out: &mut Vec<String>,
) {
    let banks = yaml
        .keys()
        .chain(warrant.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for bank in banks {
        let empty = BTreeMap::new();
        let y = yaml.get(bank).unwrap_or(&empty);
        let w = warrant.get(bank).unwrap_or(&empty);
        for pcr in y
            .keys()
            .chain(w.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if y.get(pcr) != w.get(pcr) {
                out.push(format!(
                    "pcrs {bank}[{pcr}]: tpm2-tools {:?}, Warrant replay {:?}",
                    y.get(pcr),
                    w.get(pcr)
                ));
            }
        }
    }
}

/// Every disagreement between `<name>.expected.yaml` and Warrant's parse of `<name>.bin`.
fn check_fixture(yaml_path: &Path) -> Vec<String> {
    let name = yaml_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name.trim_end_matches(".expected.yaml");
    let bin_path = yaml_path.with_file_name(format!("{stem}.bin"));
    let text = std::fs::read_to_string(yaml_path).expect("read YAML");
    let bin = std::fs::read(&bin_path).unwrap_or_else(|e| panic!("{}: {e}", bin_path.display()));
    check(&text, &bin)
}

/// Every disagreement between tpm2-tools' output `text` and Warrant's parse of `bin`.
fn check(text: &str, bin: &[u8]) -> Vec<String> {
    let yaml = match YamlLog::parse(text) {
        Ok(y) => y,
        Err(e) => return vec![format!("reading the YAML: {e}")],
    };
    let log = match EventLog::parse(bin) {
        Ok(l) => l,
        Err(e) => return vec![format!("Warrant does not parse the log: {e}")],
    };
    let mut out = Vec::new();
    let mut by_number: BTreeMap<usize, &Event> = log.events.iter().map(|e| (e.number, e)).collect();
    if by_number.len() != log.events.len() {
        out.push("Warrant gives two events the same number".into());
    }
    let header = usize::from(log.spec_id.is_some());
    if yaml.events.len() != log.events.len() + header {
        out.push(format!(
            "event count: tpm2-tools {}, Warrant {} (+{header} header)",
            yaml.events.len(),
            log.events.len()
        ));
    }
    for (index, y) in yaml.events.iter().enumerate() {
        // Legacy output has no EventNum: events are numbered from 0 in log order, as Warrant does.
        let n = y.num.unwrap_or(index);
        match (&log.spec_id, by_number.remove(&n)) {
            (Some(spec), None) if n == 0 => compare_header(y, spec, bin, &mut out),
            (_, Some(e)) => compare_event(y, e, &mut out),
            (_, None) => out.push(format!(
                "EventNum {n} (YAML line {}): not in Warrant's parse",
                y.line
            )),
        }
    }
    for n in by_number.keys() {
        out.push(format!(
            "EventNum {n}: in Warrant's parse, not in tpm2-tools' output"
        ));
    }
    compare_pcrs(&yaml.pcrs, &replayed_pcrs(&log), &mut out);
    out
}

#[test]
fn warrant_agrees_with_tpm2_eventlog_on_every_fixture() {
    let dir = tests::eventlog_fixtures();
    let fixtures = tests::files_with_suffix(&dir, ".expected.yaml").expect("list fixtures");
    // tpm2-tools ships 12 such fixtures; fewer means the directory moved or was emptied.
    assert!(
        fixtures.len() >= 12,
        "only {} *.expected.yaml in {}",
        fixtures.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for f in &fixtures {
        let diffs = check_fixture(f);
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        failures.extend(diffs.into_iter().map(|d| format!("{name}: {d}")));
    }
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with tpm2_eventlog:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// The reader itself, on inputs small enough to read.

const AGILE: &str = r#"---
version: 1
events:
- EventNum: 0
  PCRIndex: 0
  EventType: EV_NO_ACTION
  Digest: "0000000000000000000000000000000000000000"
  EventSize: 37
  SpecID:
  - Signature: Spec ID Event03
    platformClass: 0
    numberOfAlgorithms: 1
    Algorithms:
    - Algorithm[0]:
      algorithmId: sha256
      digestSize: 32
    vendorInfoSize: 0
- EventNum: 1
  PCRIndex: 7
  EventType: EV_EFI_ACTION
  DigestCount: 2
  Digests:
  - AlgorithmId: sha1
    Digest: "AB"
  - AlgorithmId: sha256
    Digest: "cd"
  EventSize: 3
  Event:
    String: "a
      PCRIndex: 9
      \tb"
pcrs:
  sha256:
    7  : 0xCD
"#;

#[test]
fn reader_reads_crypto_agile_output() {
    let y = YamlLog::parse(AGILE).unwrap();
    assert_eq!(y.events.len(), 2);
    let h = &y.events[0];
    assert_eq!((h.num, h.pcr, h.event_size), (Some(0), Some(0), Some(37)));
    assert_eq!(
        h.single_digest.as_deref(),
        Some("0000000000000000000000000000000000000000")
    );
    let spec = h.spec_id.as_ref().unwrap();
    assert_eq!(spec.fields["Signature"], "Spec ID Event03");
    assert_eq!(
        spec.algorithms,
        [(Some("sha256".into()), Some("32".into()))]
    );
    let e = &y.events[1];
    assert_eq!((e.num, e.pcr, e.digest_count), (Some(1), Some(7), Some(2)));
    assert_eq!(e.event_type.as_deref(), Some("EV_EFI_ACTION"));
    assert_eq!(
        e.digests,
        [
            ("sha1".into(), Some("ab".into())),
            ("sha256".into(), Some("cd".into()))
        ]
    );
    assert_eq!(y.pcrs["sha256"][&7], "cd");
}

#[test]
fn reader_reads_legacy_output_without_event_numbers() {
    let text = "---\nversion: 1\nevents:\n  PCRIndex: 0\n  EventType: EV_S_CRTM_VERSION\n  DigestCount: 1\n  Digests:\n  - AlgorithmId: sha1\n    Digest: \"aa\"\n  EventSize: 2\n  Event: \"0000\"\n  PCRIndex: 7\n  EventType: EV_SEPARATOR\n  DigestCount: 1\n  Digests:\n  - AlgorithmId: sha1\n    Digest: \"bb\"\n  EventSize: 4\n  Event: \"00000000\"\npcrs:\n  sha1:\n    0  : 0xaa\n";
    let y = YamlLog::parse(text).unwrap();
    assert_eq!(y.events.len(), 2);
    assert_eq!((y.events[1].num, y.events[1].pcr), (None, Some(7)));
    assert_eq!(y.events[1].digests, [("sha1".into(), Some("bb".into()))]);
}

#[test]
fn reader_rejects_what_it_does_not_understand() {
    for (from, to) in [
        ("  EventType: EV_EFI_ACTION", "  EventTypo: EV_EFI_ACTION"), // unknown field
        ("  DigestCount: 2", "  DigestCount: 3"),                     // count disagrees
        ("    Digest: \"cd\"\n", ""),                                 // digest missing
        ("  PCRIndex: 7", "  PCRIndex: 7\n  PCRIndex: 8"),            // repeated field
        ("pcrs:\n", "pcr:\n"),                                        // section misspelt
        ("    7  : 0xCD", "    7  : CD"),                             // PCR without 0x
        ("- EventNum: 1", "- EventNum: one"),                         // not a number
    ] {
        assert!(AGILE.contains(from), "{from}");
        let bad = AGILE.replacen(from, to, 1);
        assert!(YamlLog::parse(&bad).is_err(), "accepted {from:?} -> {to:?}");
    }
    // A truncated file has no pcrs section.
    let cut = &AGILE[..AGILE.find("pcrs:").unwrap()];
    assert!(YamlLog::parse(cut).is_err());
}

fn fixture(name: &str) -> (String, Vec<u8>) {
    let dir = tests::eventlog_fixtures();
    let text = std::fs::read_to_string(dir.join(format!("{name}.expected.yaml"))).unwrap();
    (
        text,
        std::fs::read(dir.join(format!("{name}.bin"))).unwrap(),
    )
}

/// Changes one field of a real fixture's YAML at a time and requires `check` to notice: the
/// comparison cannot pass by skipping a field.
#[test]
fn every_compared_field_is_really_compared() {
    let cases: &[(&str, &str, &str)] = &[
        // (fixture, text to replace, replacement)
        ("event", "- EventNum: 1", "- EventNum: 2"),
        (
            "event",
            "  PCRIndex: 0\n  EventType: EV_EFI_PLATFORM",
            "  PCRIndex: 1\n  EventType: EV_EFI_PLATFORM",
        ),
        (
            "event",
            "EV_EFI_PLATFORM_FIRMWARE_BLOB",
            "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        ),
        (
            "event",
            "d1ee7e857e2ae54671be58f83f3b0355c4c929f1",
            "d1ee7e857e2ae54671be58f83f3b0355c4c929f0",
        ),
        ("event", "- AlgorithmId: sha384", "- AlgorithmId: sha512"),
        ("event", "  EventSize: 16", "  EventSize: 17"),
        (
            "event",
            "0x543c314066a9cd7a6b6aa53f56b38e814a76efe7",
            "0x543c314066a9cd7a6b6aa53f56b38e814a76efe8",
        ),
        ("event", "    0  : 0x543c", "    1  : 0x543c"),
        ("event", "      digestSize: 48", "      digestSize: 47"),
        ("event", "    uintnSize: 2", "    uintnSize: 1"),
        ("event", "  Digest: \"00000000", "  Digest: \"10000000"),
        (
            "specid-vendordata",
            "vendorInfo: \"deadbeef\"",
            "vendorInfo: \"deadbeee\"",
        ),
        (
            "specid-vendordata",
            "vendorInfoSize: 4",
            "vendorInfoSize: 3",
        ),
        (
            "event-uefi-sha1-log",
            "c42fedad268200cb1d15f97841c344e79dae3320",
            "c42fedad268200cb1d15f97841c344e79dae3321",
        ),
        ("event-uefi-sha1-log", "  PCRIndex: 7", "  PCRIndex: 6"),
        (
            "event-uefi-sha1-log",
            "EV_S_CRTM_VERSION",
            "EV_S_CRTM_CONTENTS",
        ),
    ];
    for (name, from, to) in cases {
        let (text, bin) = fixture(name);
        assert_eq!(
            check(&text, &bin),
            Vec::<String>::new(),
            "{name} unmodified"
        );
        assert!(text.contains(from), "{name}: {from:?} not found");
        let changed = text.replacen(from, to, 1);
        let diffs = check(&changed, &bin);
        assert!(
            !diffs.is_empty(),
            "{name}: {from:?} -> {to:?} went unnoticed"
        );
    }
    // Dropping an event from the YAML, or a byte from the log, is noticed too.
    let (text, bin) = fixture("event");
    let cut = text.find("- EventNum: 1").unwrap();
    let pcrs = text.find("pcrs:").unwrap();
    let without = format!("{}{}", &text[..cut], &text[pcrs..]);
    assert!(!check(&without, &bin).is_empty());
    assert!(!check(&text, &bin[..bin.len() - 1]).is_empty());
}
