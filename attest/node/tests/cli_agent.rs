//! `warrant tpm simulate-boot` and `warrant agent`: what a node does before and while it
//! attests. The whole protocol against a verifier is in tests/tests/attestation.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, testdata, warrant};
use serde_json::Value;
use tests::swtpm::{Swtpm, SwtpmOptions};

#[test]
fn simulate_boot_reproduces_the_pcrs_the_real_machine_recorded() {
    let tpm = Swtpm::start_with(&SwtpmOptions {
        pcr_banks: "sha1,sha256".to_string(),
        ..SwtpmOptions::default()
    })
    .unwrap();
    let log = testdata("eventlogs/rhel8-uefi.bin");
    let out = warrant(&[
        "tpm",
        "simulate-boot",
        "--tcti",
        &tpm.tcti(),
        "--event-log",
        path(&log),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = warrant(&["tpm", "pcrs", "--tcti", &tpm.tcti(), "--json"]);
    assert!(out.status.success());
    let pcrs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(testdata("eventlogs/expected.json")).unwrap())
            .unwrap();
    let expected = &manifest["rhel8-uefi.bin"]["pcrs"];
    let mut compared = 0;
    for bank in ["sha1", "sha256"] {
        for (pcr, value) in expected[bank].as_object().unwrap() {
            let got = pcrs[bank][pcr.as_str()]
                .as_str()
                .or_else(|| pcrs["banks"][bank][pcr.as_str()].as_str())
                .unwrap_or_else(|| panic!("no {bank} PCR {pcr} in {pcrs}"));
            assert_eq!(got, value.as_str().unwrap(), "{bank} PCR {pcr}");
            compared += 1;
        }
    }
    assert_eq!(compared, 22);
}

#[test]
fn simulate_boot_refuses_a_real_tpm_and_a_log_it_cannot_reproduce() {
    let log = testdata("eventlogs/rhel8-uefi.bin");
    let out = warrant(&[
        "tpm",
        "simulate-boot",
        "--tcti",
        "device:/dev/does-not-exist",
        "--event-log",
        path(&log),
    ]);
    assert_eq!(out.status.code(), Some(2));
    no_panic(&out);
    let dir = tempdir();
    let bad = dir.join("garbage.bin");
    std::fs::write(&bad, b"not an event log at all").unwrap();
    let out = warrant(&[
        "tpm",
        "simulate-boot",
        "--tcti",
        "swtpm:host=127.0.0.1,port=1",
        "--event-log",
        path(&bad),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.bin"));
}

#[test]
fn agent_measures_once_per_boot() {
    let tpm = Swtpm::start().unwrap();
    let log = tpm.dir().join("cel.json");
    let root = "ab".repeat(32);
    let run = || {
        warrant(&[
            "agent",
            "measure",
            "--tcti",
            &tpm.tcti(),
            "--root-hash",
            &root,
            "--event-log",
            path(&log),
        ])
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        text.contains("measured into PCR 15: phase:agent-start"),
        "{text}"
    );
    assert!(text.contains(&format!("verity-root-hash:{root}")), "{text}");
    let second = run();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("already measured"));
    let records: Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 2);
    // The log replays to the TPM's PCR 15.
    let out = warrant(&[
        "tpm",
        "pcrs",
        "--tcti",
        &tpm.tcti(),
        "--bank",
        "sha256",
        "--json",
    ]);
    let pcrs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cel = measure::cel::parse(&std::fs::read(&log).unwrap()).unwrap();
    let replayed = measure::cel::replay(&cel).unwrap();
    let want = hex::encode(replayed.get(measure::alg::HashAlg::Sha256, 15).unwrap());
    assert!(pcrs.to_string().contains(&want), "{pcrs}");

    let out = warrant(&[
        "agent",
        "measure",
        "--tcti",
        &tpm.tcti(),
        "--root-hash",
        "xyz",
        "--event-log",
        path(&log),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not hex"));

    // --root-device asks the kernel; a device that is not an active dm-verity mapping (none
    // exists on this machine: the VM test, scripts/vm-e2e, has a real one) or a name that is
    // not a device-mapper name is refused before the TPM is touched: PCR 15 is unchanged.
    let before = std::fs::read(&log).unwrap();
    for (device, says) in [
        ("warrant-no-such-root", "not an active dm-verity device"),
        ("../root", "a device-mapper name"),
    ] {
        let out = warrant(&[
            "agent",
            "measure",
            "--tcti",
            &tpm.tcti(),
            "--root-device",
            device,
            "--event-log",
            path(&log),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

/// `warrant agent attest --once` against nobody (port 1), with the CA file `ca`.
fn attest_against_nobody(tpm: &Swtpm, dir: &std::path::Path, ca: &str) -> std::process::Output {
    let out = warrant(&[
        "agent",
        "attest",
        "--once",
        "--verifier",
        "https://127.0.0.1:1",
        "--ca",
        path(&dir.join(ca)),
        "--tcti",
        &tpm.tcti(),
        "--state",
        path(&dir.join("state")),
        "--event-log",
        path(&dir.join("cel.json")),
        "--firmware-log",
        path(&dir.join("none.bin")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    no_panic(&out);
    out
}

#[test]
fn agent_reports_an_unreachable_verifier_and_a_missing_ca_clearly() {
    let tpm = Swtpm::start().unwrap();
    let dir = tempdir();
    let out = attest_against_nobody(&tpm, &dir, "missing-ca.pem");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-ca.pem"));

    std::fs::write(dir.join("ca.pem"), b"-----BEGIN CERTIFICATE-----\n").unwrap();
    let out = attest_against_nobody(&tpm, &dir, "ca.pem");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.pem"), "{err}");

    // A real certificate, but nobody listening.
    std::fs::copy(
        std::path::Path::new(tests::swtpm::LOCALCA_DIR).join("swtpm-localca-rootca-cert.pem"),
        dir.join("ca.pem"),
    )
    .unwrap();
    let out = attest_against_nobody(&tpm, &dir, "ca.pem");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the verifier at https://127.0.0.1:1"),
        "{err}"
    );
}
