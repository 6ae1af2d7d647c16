#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
//! The committed UKI (Debian's systemd-stub 252.39 + fake sections, built by
//! `scripts/make-test-uki.sh`) against the outputs of systemd 252's `systemd-measure` for the same
//! section files, stored next to it.

use measure::uki::pe::PeError;
use measure::uki::policy::{sign_policies, PolicyError, PolicyPublicKey, PolicySigningKey};
use measure::uki::{normalize_phases, Uki, UkiError};
use measure::HashAlg;
use std::path::PathBuf;

fn testdata(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/uki")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&testdata(name)).unwrap()
}

const ALL_BANKS: [HashAlg; 4] = [
    HashAlg::Sha1,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
];

#[test]
fn stub_version_and_measured_sections() {
    let file = testdata("uki.efi");
    let uki = Uki::parse(&file).unwrap();
    let stub = uki.stub.as_ref().unwrap();
    assert_eq!(stub.major, 252);
    assert_eq!(stub.version, "252.39-1~deb12u2");
    let names: Vec<_> = uki.measured().iter().map(|(n, _)| *n).collect();
    // unified_sections[] order of v252; the stub's own .sbat and .sdmagic are not measured.
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".pcrpkey"]
    );
    assert!(uki.section(".sbat").is_some());
    // Section contents are exactly the input files.
    for (name, file_name) in [
        (".linux", "linux"),
        (".osrel", "osrel"),
        (".cmdline", "cmdline"),
        (".initrd", "initrd"),
        (".splash", "splash"),
        (".pcrpkey", "pcrpkey"),
    ] {
        let c = uki.content(uki.section(name).unwrap());
        assert_eq!(c.bytes, testdata(file_name).as_slice(), "{name}");
        assert_eq!(c.zeros, 0);
    }
}

#[test]
fn prediction_matches_systemd_measure_calculate() {
    let file = testdata("uki.efi");
    let uki = Uki::parse(&file).unwrap();
    let got = uki.predict(&ALL_BANKS, &normalize_phases(&[])).unwrap();
    assert_eq!(serde_json::to_value(&got).unwrap(), json("calculate.json"));
}

#[test]
fn custom_phases_match_systemd_measure_calculate() {
    let file = testdata("uki.efi");
    let uki = Uki::parse(&file).unwrap();
    // The same --phase arguments make-test-uki.sh gave systemd-measure.
    let phases = normalize_phases(&[
        "sysinit".into(),
        "enter-initrd::".into(),
        ":".into(),
        "enter-initrd:leave-initrd".into(),
    ]);
    let got = uki.predict(&[HashAlg::Sha256], &phases).unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json("calculate-phases.json")
    );
}

#[test]
fn signature_matches_systemd_measure_sign() {
    let file = testdata("uki.efi");
    let uki = Uki::parse(&file).unwrap();
    let key = PolicySigningKey::from_pem(&testdata("test-key.pem")).unwrap();
    let public = PolicyPublicKey::from_pem(&testdata("pcrpkey")).unwrap();
    let got = sign_policies(
        &uki,
        &key,
        Some(&public),
        &ALL_BANKS,
        &normalize_phases(&[]),
        [7; 32],
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&got).unwrap(), json("sign.json"));
    // Blinding randomness does not change the (deterministic) signatures.
    let again = sign_policies(
        &uki,
        &key,
        None,
        &ALL_BANKS,
        &normalize_phases(&[]),
        [0xa5; 32],
    )
    .unwrap();
    assert_eq!(again, got);
}

#[test]
fn a_foreign_public_key_is_refused() {
    let file = testdata("uki.efi");
    let uki = Uki::parse(&file).unwrap();
    let key = PolicySigningKey::from_pem(&testdata("test-key.pem")).unwrap();
    // A private key is not a public key.
    assert_eq!(
        PolicyPublicKey::from_pem(&testdata("test-key.pem")),
        Err(PolicyError::BadPublicKey)
    );
    // Another RSA key's public half.
    let other = PolicyPublicKey::from_pem(&testdata("other-pub.pem")).unwrap();
    assert_eq!(
        sign_policies(&uki, &key, Some(&other), &[HashAlg::Sha256], &[], [0; 32]).unwrap_err(),
        PolicyError::KeyMismatch
    );
}

#[test]
fn damaged_fixture_is_a_typed_error() {
    let file = testdata("uki.efi");
    // Truncated inside the section table, and at the start of the last section's data.
    assert!(matches!(
        Uki::parse(&file[..0x200]),
        Err(UkiError::Pe(PeError::Codec(_)))
    ));
    let uki = Uki::parse(&file).unwrap();
    let last = uki.pe.sections.last().unwrap().pointer_to_raw_data as usize;
    assert!(matches!(
        Uki::parse(&file[..last + 1]),
        Err(UkiError::Pe(PeError::SectionOutOfFile { .. }))
    ));
    let mut bad = file.clone();
    bad[0] = 0;
    assert!(matches!(
        Uki::parse(&bad),
        Err(UkiError::Pe(PeError::BadDosMagic { .. }))
    ));
}
