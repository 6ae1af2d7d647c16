//! `warrant ima replay` as a user runs it, on the lists of `measure/testdata/ima`: real lists
//! with their published PCR 10 values (`expected-real.json`) and synthetic lists with values
//! from an independent Python implementation (`expected-synthetic.json`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{path as s, tempdir, warrant};
use serde_json::Value;
use std::path::PathBuf;

fn data() -> PathBuf {
    common::testdata("ima")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join(name)).unwrap()).unwrap()
}

fn write_tmp(name: &str, value: &Value) -> PathBuf {
    let p = tempdir().join(name);
    std::fs::write(&p, value.to_string()).unwrap();
    p
}

#[test]
fn real_lists_reproduce_their_published_pcr10_and_boot_aggregate() {
    let real = json("expected-real.json");
    let mut checked = 0;
    for (name, entry) in real["lists"].as_object().unwrap() {
        let file = data().join(name);
        let out = warrant(&["ima", "replay", s(&file), "--json"]);
        if entry.get("error").is_some() {
            assert_eq!(out.status.code(), Some(2), "{name}");
            continue;
        }
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["entries"], entry["entries"], "{name}");
        let Some(expected) = entry.get("expected_pcrs") else {
            continue;
        };
        let expect = write_tmp(&format!("{name}.json"), expected);
        let fw = entry["firmware"].as_str().unwrap();
        let fw = write_tmp(&format!("{name}.fw.json"), &real["firmware_pcrs"][fw]);
        let out = warrant(&[
            "ima",
            "replay",
            s(&file),
            "--json",
            "--expect",
            s(&expect),
            "--firmware-pcrs",
            s(&fw),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["verified"], true);
        assert_eq!(
            report["boot_aggregate"]["verdict"]["verdict"], "matched",
            "{name}: {report}"
        );
        // The same list against a value with one bit flipped: exit 1, naming PCR 10.
        let mut wrong = expected.clone();
        let v = wrong.as_object_mut().unwrap().values_mut().next().unwrap();
        let hexv = v["10"].as_str().unwrap();
        let flipped = format!(
            "{}{}",
            if hexv.starts_with('0') { "1" } else { "0" },
            &hexv[1..]
        );
        v["10"] = Value::String(flipped);
        let expect = write_tmp(&format!("{name}.wrong.json"), &wrong);
        let out = warrant(&["ima", "replay", s(&file), "--expect", s(&expect)]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("PCR 10"),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 3,
        "the three kunpengsecl lists with published PCR 10 values"
    );
}

#[test]
fn synthetic_lists_match_the_independent_implementation() {
    let synthetic = json("expected-synthetic.json");
    let mut checked = 0;
    for (name, entry) in synthetic["lists"].as_object().unwrap() {
        let file = data().join(name);
        for (mode, flag) in [
            ("per-bank-template-hash", "per-bank"),
            ("padded-sha1", "padded-sha1"),
        ] {
            let Some(pcrs) = entry["pcrs"].get(mode) else {
                continue;
            };
            let mut args = vec!["ima", "replay", s(&file), "--json", "--mode", flag];
            if entry["byte_order"] == "big" && entry["format"] == "ascii" {
                args.push("--big-endian");
            }
            let alg = entry["template_hash_algorithm"].as_str().unwrap();
            args.extend(["--template-hash", alg]);
            let out = warrant(&args);
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            for (bank, values) in pcrs.as_object().unwrap() {
                assert_eq!(&report["banks"][bank], values, "{name} {mode} {bank}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked}");
}

#[test]
fn malformed_lists_are_clear_errors() {
    let good = std::fs::read(data().join("synthetic-main-le.bin")).unwrap();
    let dir = tempdir();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.bin", good[..good.len() - 7].to_vec()),
        ("huge-name.bin", {
            let mut b = good.clone();
            b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("bad-hex.ascii", b"10 zz ima-ng sha1:00 /x\n".to_vec()),
        (
            "few-fields.ascii",
            b"10 0000000000000000000000000000000000000000\n".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = warrant(&["ima", "replay", s(&p)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains("not a valid IMA measurement list"),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}
