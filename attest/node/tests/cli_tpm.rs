//! `warrant tpm` as a user runs it: the built binary against one swtpm per test, cross-checked
//! with tpm2-tools (`tpm2_pcrread`, `tpm2_checkquote`) and openssl.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, warrant};
use measure::alg::HashAlg;
use serde_json::Value;
use std::process::Command;
use tests::swtpm::Swtpm;

fn ok(args: &[&str]) -> Vec<u8> {
    let out = warrant(args);
    no_panic(&out);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json(args: &[&str]) -> Value {
    serde_json::from_slice(&ok(args)).unwrap()
}

#[test]
fn missing_tpm_and_bad_tcti_exit_2_with_a_clear_message() {
    let out = warrant(&["tpm", "pcrs", "--tcti", "device:/nonexistent/tpmrm0"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no TPM at device:/nonexistent/tpmrm0"),
        "{err}"
    );

    let out = warrant(&["tpm", "pcrs", "--tcti", "swtpm:port=0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port"), "{err}");

    // The environment variable is read when --tcti is absent.
    let out = Command::new(env!("CARGO_BIN_EXE_warrant"))
        .args(["tpm", "pcrs"])
        .env("WARRANT_TCTI", "device:/nonexistent/tpm9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TPM at device:/nonexistent/tpm9"));
}

#[test]
fn pcrs_match_tpm2_pcrread_and_extend_logs_replayable_cel() {
    let sw = Swtpm::start().unwrap();
    let tcti = sw.tcti();
    let log = sw.dir().join("run/warrant/measurements.cel.json");
    for data in ["kubelet config", "node policy v1"] {
        ok(&[
            "tpm",
            "extend",
            "16",
            "--data",
            data,
            "--event-log",
            path(&log),
            "--tcti",
            &tcti,
        ]);
    }
    let rec = json(&[
        "tpm",
        "extend",
        "23",
        "--data",
        "x",
        "--event-log",
        path(&log),
        "--tcti",
        &tcti,
        "--json",
    ]);
    assert_eq!(rec["recnum"], 2);
    assert_eq!(rec["content_type"], "warrant");

    let banks = json(&["tpm", "pcrs", "--tcti", &tcti, "--json"]);
    for bank in ["sha1", "sha256", "sha384"] {
        assert_eq!(banks[bank].as_object().unwrap().len(), 24, "{bank}");
    }
    // tpm2_pcrread agrees on every PCR of the sha256 bank.
    let out = Command::new("tpm2_pcrread")
        .args(["-T", &tcti, "sha256:all"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        if let Some((pcr, value)) = line.trim().split_once(": 0x") {
            let pcr = pcr.trim();
            assert_eq!(
                banks["sha256"][pcr].as_str().unwrap(),
                value.trim().to_lowercase(),
                "PCR {pcr}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 24);

    // Replaying the CEL log reproduces PCRs 16 and 23 in every bank.
    let records = tpm::cel::parse(&std::fs::read(&log).unwrap()).unwrap();
    let replayed = tpm::cel::replay(&records).unwrap();
    for alg in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384] {
        for pcr in [16, 23] {
            assert_eq!(
                hex::encode(replayed.get(alg, pcr).unwrap()),
                banks[alg.name()][pcr.to_string()].as_str().unwrap()
            );
        }
    }
    // Text output and one bank only.
    let text = String::from_utf8(ok(&["tpm", "pcrs", "--tcti", &tcti, "--bank", "sha1"])).unwrap();
    assert_eq!(text.lines().count(), 24);
    assert!(text.contains("sha1 PCR 16"));
}

#[test]
fn ek_lists_nv_certificates_and_ca_check_reports_its_state() {
    let sw = Swtpm::start().unwrap();
    let tcti = sw.tcti();
    let report = json(&["tpm", "ek", "--tcti", &tcti, "--json"]);
    let indices: Vec<&str> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_str().unwrap())
        .collect();
    assert!(indices.contains(&"0x01c00002"), "{indices:?}");
    assert!(report["nv_chain"].as_array().unwrap().is_empty());
    assert!(report["ek_public"]["rsa2048"].is_string());
    assert!(report["ek_public"]["eccp256"].is_string());

    // --ca hands the certificates to policy::ek::verify_ek_chain; its verdict decides.
    let ca = Swtpm::ca_dir();
    let inter = ca.join("issuercert.pem");
    let out = warrant(&[
        "tpm",
        "ek",
        "--tcti",
        &tcti,
        "--ca",
        path(&ca),
        "--intermediate",
        path(&inter),
        "--json",
    ]);
    no_panic(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["verification"].as_array().unwrap();
    assert_eq!(results.len(), indices.len());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(results.iter().all(|r| r["verified"] == true), "{report}");

    // Against an unrelated CA (a root with swtpm's CA name but another key): exit 1.
    let fake = sw.dir().join("fake-ca");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::copy(
        common::testdata_root().join("../../policy/testdata/ek/synthetic/fake-localca-root.der"),
        fake.join("root.der"),
    )
    .unwrap();
    let out = warrant(&[
        "tpm",
        "ek",
        "--tcti",
        &tcti,
        "--ca",
        path(&fake),
        "--intermediate",
        path(&inter),
    ]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EK certificate chain"));
    let out = warrant(&["tpm", "ek", "--tcti", &tcti, "--ca", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ak_and_quote_verify_with_tpm2_checkquote() {
    let sw = Swtpm::start().unwrap();
    let tcti = sw.tcti();
    let dir = sw.dir().join("out");

    // No AK yet: a clear error.
    let out = warrant(&[
        "tpm", "quote", "--tcti", &tcti, "--pcrs", "sha256:0", "--nonce", "00",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warrant tpm ak"));

    let first = json(&["tpm", "ak", "--tcti", &tcti, "--json"]);
    assert_eq!(first["created"], true);
    assert_eq!(first["handle"], "0x81010002");
    let again = json(&["tpm", "ak", "--tcti", &tcti, "--json"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["spki"], first["spki"]);

    let nonce = "0badc0ffee0123456789";
    let q = json(&[
        "tpm",
        "quote",
        "--tcti",
        &tcti,
        "--pcrs",
        "sha256:0,1,7+sha1:16",
        "--nonce",
        nonce,
        "--out-dir",
        path(&dir),
        "--json",
    ]);
    assert_eq!(q["pcrs"]["sha256"].as_object().unwrap().len(), 3);
    assert_eq!(q["pcrs"]["sha1"].as_object().unwrap().len(), 1);
    let check = |nonce: &str| {
        Command::new("tpm2_checkquote")
            .arg("-u")
            .arg(dir.join("ak.pem"))
            .arg("-m")
            .arg(dir.join("quote.attest"))
            .arg("-s")
            .arg(dir.join("quote.sig"))
            .arg("-q")
            .arg(nonce)
            .output()
            .unwrap()
    };
    let good = check(nonce);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(!check("0badc0ffee0123456788").status.success());

    // And with Warrant's own pure verifier (measure::tpm2), independent of the TPM code.
    let pcrs: Value =
        serde_json::from_slice(&std::fs::read(dir.join("pcrs.json")).unwrap()).unwrap();
    let pcrs = measure::pcr::PcrBanks::from_json(pcrs.get("banks").unwrap_or(&pcrs)).unwrap();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let nonce_bytes = hex::decode(nonce).unwrap();
    let verified = measure::tpm2::Quote::verify(
        &read("quote.attest"),
        &read("quote.sig"),
        &read("ak.pub"),
        &nonce_bytes,
        &pcrs,
    )
    .unwrap();
    assert_eq!(verified.pcrs(), &pcrs);
    assert!(measure::tpm2::Quote::verify(
        &read("quote.attest"),
        &read("quote.sig"),
        &read("ak.pub"),
        b"other nonce",
        &pcrs,
    )
    .is_err());
    assert_eq!(
        std::fs::read(dir.join("quote.attest")).unwrap(),
        hex::decode(q["attest"].as_str().unwrap()).unwrap()
    );

    let out = warrant(&[
        "tpm",
        "quote",
        "--tcti",
        &tcti,
        "--pcrs",
        "sha256:24",
        "--nonce",
        "00",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = warrant(&[
        "tpm", "quote", "--tcti", &tcti, "--pcrs", "sha256:0", "--nonce", "zz",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
