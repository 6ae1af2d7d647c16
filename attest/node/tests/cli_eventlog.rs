//! The `warrant eventlog` command as a user runs it: the built binary on real logs. Expected
//! values come from `measure/testdata/eventlogs/expected.json` only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, warrant};
use serde_json::Value;
use std::path::PathBuf;

fn data() -> PathBuf {
    common::testdata("eventlogs")
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(data().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn replay_json_reports_the_manifest_values() {
    for (name, entry) in manifest() {
        let file = data().join(&name);
        let out = warrant(&["eventlog", "replay", path(&file), "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["format"], entry["format"], "{name}");
        assert!(report["events"].as_u64().unwrap() > 0, "{name}");
        assert!(report["quirks"].as_array().unwrap().is_empty(), "{name}");
        assert!(report["warnings"].is_array(), "{name}");
        if entry["expect"] == "replay-matches" {
            for (bank, pcrs) in entry["pcrs"].as_object().unwrap() {
                assert_eq!(&report["banks"][bank], pcrs, "{name}: bank {bank}");
            }
        }
    }
}

#[test]
fn replay_expect_exits_zero_on_match_and_one_naming_the_pcr_on_mismatch() {
    let dir = tempdir();
    for (name, entry) in manifest() {
        if entry["expect"] == "parse-only" {
            continue;
        }
        let expect = dir.join(format!("{name}.json"));
        std::fs::write(&expect, entry["pcrs"].to_string()).unwrap();
        let out = warrant(&[
            "eventlog",
            "replay",
            path(&data().join(&name)),
            "--expect",
            path(&expect),
        ]);
        no_panic(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match entry["expect"].as_str().unwrap() {
            "replay-matches" => assert_eq!(out.status.code(), Some(0), "{name}: {stderr}"),
            "replay-mismatch" => {
                assert_eq!(out.status.code(), Some(1), "{name}");
                assert!(stderr.contains("PCR 4 ("), "{name}: {stderr}");
                assert!(
                    stderr.contains("event 23 (EV_EFI_BOOT_SERVICES_APPLICATION)"),
                    "{stderr}"
                );
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn the_same_json_shape_round_trips_as_expectation() {
    // A replay report is itself a valid --expect file ("same JSON shape").
    let dir = tempdir();
    let log = data().join("rhel8-uefi.bin");
    let out = warrant(&["eventlog", "replay", path(&log), "--json"]);
    let report = dir.join("report.json");
    std::fs::write(&report, &out.stdout).unwrap();
    let again = warrant(&[
        "eventlog",
        "replay",
        path(&log),
        "--json",
        "--expect",
        path(&report),
    ]);
    assert_eq!(again.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["verified"], true);
}

#[test]
fn show_decodes_every_log() {
    for name in manifest().keys() {
        let out = warrant(&["eventlog", "show", path(&data().join(name)), "--json"]);
        assert!(out.status.success(), "{name}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["events"].is_array());
        let text = warrant(&["eventlog", "show", path(&data().join(name))]);
        assert!(text.status.success(), "{name}");
    }
}

#[test]
fn bad_input_is_a_clear_error_with_status_two() {
    let dir = tempdir();
    let real = std::fs::read(data().join("rhel8-uefi.bin")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", real[..real.len() / 2 + 3].to_vec()),
        (
            "garbage",
            b"this is not an event log at all, just text\n".to_vec(),
        ),
        ("oversized", {
            // The first event after the header claims 4 GiB of data.
            let mut b = real.clone();
            let first = measure::eventlog::EventLog::parse(&real).unwrap().events[0].data_offset;
            b[first - 4..first].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
    ];
    for (what, bytes) in cases {
        let f = dir.join(what);
        std::fs::write(&f, bytes).unwrap();
        for cmd in ["show", "replay"] {
            let out = warrant(&["eventlog", cmd, path(&f)]);
            no_panic(&out);
            assert_eq!(out.status.code(), Some(2), "{what} {cmd}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("not a valid event log"), "{what}: {stderr}");
            assert!(out.stdout.is_empty(), "{what}: nothing printed on error");
        }
    }
    let missing = warrant(&["eventlog", "replay", "/nonexistent/log.bin"]);
    assert_eq!(missing.status.code(), Some(2));
    // A malformed expectation is bad input too, never a pass.
    let expect = dir.join("bad.json");
    std::fs::write(&expect, r#"{"sha256": {"0": "not hex"}}"#).unwrap();
    let out = warrant(&[
        "eventlog",
        "replay",
        path(&data().join("rhel8-uefi.bin")),
        "--expect",
        path(&expect),
    ]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(&expect, "{}").unwrap();
    let out = warrant(&[
        "eventlog",
        "replay",
        path(&data().join("rhel8-uefi.bin")),
        "--expect",
        path(&expect),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an empty expectation proves nothing"
    );
}
