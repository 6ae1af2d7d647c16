//! Sealing against a real software TPM, one swtpm per test: round trip, PCR change, another
//! TPM, PIN and dictionary-attack lockout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::alg::HashAlg;
use measure::uki::policy::{policy_pcr_digest, BlindingRng, PolicySigningKey};
use std::path::Path;
use tests::swtpm::Swtpm;
use tpm::{SealError, SealPolicy, SealedBlob, SignedPcrPolicy, Tpm};

fn start() -> (Swtpm, Tpm) {
    let sw = Swtpm::start().unwrap();
    let tpm = Tpm::open(&sw.tcti()).unwrap();
    (sw, tpm)
}

fn policy(pcrs: &[u32]) -> SealPolicy {
    SealPolicy {
        bank: HashAlg::Sha256,
        pcrs: pcrs.to_vec(),
        signed_by: None,
        values: Vec::new(),
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef disk key";

#[test]
fn round_trip_through_json() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    // A PCR outside the policy may move.
    let blob = tpm.seal(SECRET, &policy(&[7, 11]), None).unwrap();
    tpm.extend(12, "elsewhere", &log).unwrap();
    let parsed = SealedBlob::from_json(&blob.to_json()).unwrap();
    assert_eq!(parsed, blob);
    assert_eq!(parsed.srk_name.len(), 34);
    let out = tpm.unseal(&parsed, None, &[]).unwrap();
    assert_eq!(out.as_slice(), SECRET);
    // The largest secret, and one too large.
    let big = [0x5a; 128];
    let blob = tpm.seal(&big, &policy(&[0]), None).unwrap();
    assert_eq!(tpm.unseal(&blob, None, &[]).unwrap().as_slice(), big);
    assert!(matches!(
        tpm.seal(&[0; 129], &policy(&[0]), None),
        Err(SealError::SecretTooLong { len: 129 })
    ));
    assert!(matches!(
        tpm.seal(SECRET, &policy(&[]), None),
        Err(SealError::NoPcrs)
    ));
    assert!(matches!(
        tpm.seal(SECRET, &policy(&[24]), None),
        Err(SealError::PcrOutOfRange { pcr: 24 })
    ));
}

#[test]
fn pcr_change_fails_naming_the_policy() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    let blob = tpm.seal(SECRET, &policy(&[7, 11]), None).unwrap();
    tpm.extend(11, "another kernel", &log).unwrap();
    let err = tpm.unseal(&blob, None, &[]).unwrap_err();
    assert!(matches!(err, SealError::PcrMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the PCR policy (sha256: 7,11) does not match this boot (changed: 11)"
    );
    // The TPM itself refuses too: the same blob with the recorded values forged to today's.
    let now = tpm.read_pcrs(&[HashAlg::Sha256]).unwrap();
    let mut forged = blob.clone();
    forged.pcr_values = vec![
        now.get(HashAlg::Sha256, 7).unwrap().to_vec(),
        now.get(HashAlg::Sha256, 11).unwrap().to_vec(),
    ];
    let err = tpm.unseal(&forged, None, &[]).unwrap_err();
    assert!(matches!(err, SealError::PcrMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("sha256: 7,11"), "{err}");
}

#[test]
fn another_tpm_refuses_as_a_different_tpm() {
    let (_a, mut tpm_a) = start();
    let (_b, mut tpm_b) = start();
    let blob = tpm_a.seal(SECRET, &policy(&[7]), None).unwrap();
    let err = tpm_b.unseal(&blob, None, &[]).unwrap_err();
    assert!(matches!(err, SealError::DifferentTpm), "{err:?}");
    assert!(err.to_string().contains("sealed for a different TPM"));
}

#[test]
fn pin_wrong_pin_and_lockout() {
    let (_sw, mut tpm) = start();
    let blob = tpm.seal(SECRET, &policy(&[7]), Some(b"1234")).unwrap();
    assert!(blob.pin);
    assert!(matches!(
        tpm.unseal(&blob, None, &[]),
        Err(SealError::PinRequired)
    ));
    assert_eq!(
        tpm.unseal(&blob, Some(b"1234"), &[]).unwrap().as_slice(),
        SECRET
    );
    let err = tpm.unseal(&blob, Some(b"4321"), &[]).unwrap_err();
    assert!(matches!(err, SealError::WrongPin), "{err:?}");
    assert_eq!(err.to_string(), "wrong PIN");
    // Keep guessing: the dictionary-attack logic locks the TPM out, and says so.
    let mut locked = None;
    for _ in 0..64 {
        match tpm.unseal(&blob, Some(b"0000"), &[]) {
            Err(SealError::WrongPin) => continue,
            Err(e @ SealError::Lockout { .. }) => {
                locked = Some(e);
                break;
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    let err = locked.expect("no lockout after 64 wrong PINs");
    // The wait comes from TPM_PT_LOCKOUT_INTERVAL.
    assert!(
        matches!(err, SealError::Lockout { retry_after_secs: Some(s) } if s > 0),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("TPM is in dictionary-attack lockout; retry after"),
        "{err}"
    );
    // Even the right PIN waits now.
    assert!(matches!(
        tpm.unseal(&blob, Some(b"1234"), &[]),
        Err(SealError::Lockout { .. })
    ));
    // A secret without a PIN is not subject to lockout (noDA).
    let plain = tpm.seal(SECRET, &policy(&[7]), None).unwrap();
    assert!(matches!(
        tpm.unseal(&plain, Some(b"1234"), &[]),
        Err(SealError::PinNotExpected)
    ));
    assert_eq!(tpm.unseal(&plain, None, &[]).unwrap().as_slice(), SECRET);
}

/// An RSA 2048 key made by openssl: (private PEM, public SubjectPublicKeyInfo DER).
fn rsa_key(dir: &Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let (key_pem, public) = tests::openssl::rsa_key(dir, name).unwrap();
    (key_pem, tests::openssl::public_der(&public).unwrap())
}

/// What `systemd-measure sign` writes for PCR 11 holding `value`, signed by `key_pem`.
fn sign_pcr11(key_pem: &[u8], value: &[u8]) -> SignedPcrPolicy {
    let key = PolicySigningKey::from_pem(key_pem).unwrap();
    let pol = policy_pcr_digest(HashAlg::Sha256, 11, value).unwrap();
    let sig = key
        .sign(&mut BlindingRng::from_seed([7; 32]), HashAlg::Sha256, &pol)
        .unwrap();
    let pkfp = key.public_key().fingerprint().unwrap();
    SignedPcrPolicy {
        pcrs: vec![11],
        pkfp,
        pol,
        sig,
    }
}

fn pcr11(tpm: &mut Tpm) -> Vec<u8> {
    tpm.read_pcrs(&[HashAlg::Sha256])
        .unwrap()
        .get(HashAlg::Sha256, 11)
        .unwrap()
        .to_vec()
}

#[test]
fn signed_policy_survives_an_update_and_checks_the_signer() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    let (key_pem, key_der) = rsa_key(sw.dir(), "policy");
    let (other_pem, _) = rsa_key(sw.dir(), "other");
    let signed = SealPolicy {
        bank: HashAlg::Sha256,
        pcrs: vec![11],
        signed_by: Some(key_der.clone()),
        values: Vec::new(),
    };
    let blob = tpm.seal(SECRET, &signed, None).unwrap();
    let blob = SealedBlob::from_json(&blob.to_json()).unwrap();
    assert!(blob.pcr_values.is_empty());
    assert!(matches!(
        tpm.unseal(&blob, None, &[]),
        Err(SealError::SignatureRequired)
    ));
    // Today's PCR 11, signed: unseals.
    let before = pcr11(&mut tpm);
    let sig_before = sign_pcr11(&key_pem, &before);
    assert_eq!(
        tpm.unseal(&blob, None, std::slice::from_ref(&sig_before))
            .unwrap()
            .as_slice(),
        SECRET
    );
    // An update: PCR 11 moves; the old signature no longer matches this boot...
    tpm.extend(11, "new kernel", &log).unwrap();
    let err = tpm
        .unseal(&blob, None, std::slice::from_ref(&sig_before))
        .unwrap_err();
    assert!(
        matches!(err, SealError::NoSignatureForThisBoot { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sha256: 11"), "{err}");
    // ...the vendor signs the new value: unseals without resealing (old and new in one file).
    let after = pcr11(&mut tpm);
    let sig_after = sign_pcr11(&key_pem, &after);
    assert_eq!(
        tpm.unseal(&blob, None, &[sig_before.clone(), sig_after.clone()])
            .unwrap()
            .as_slice(),
        SECRET
    );
    // Another key's signature of the right value: refused.
    let wrong = sign_pcr11(&other_pem, &after);
    let err = tpm
        .unseal(&blob, None, std::slice::from_ref(&wrong))
        .unwrap_err();
    assert!(matches!(err, SealError::WrongSigner), "{err:?}");
    // ...even claiming the right fingerprint: the TPM checks the signature.
    let forged = SignedPcrPolicy {
        pkfp: sig_after.pkfp.clone(),
        ..wrong
    };
    let err = tpm.unseal(&blob, None, &[forged]).unwrap_err();
    assert!(matches!(err, SealError::WrongSigner), "{err:?}");
    // A signature over a policy claiming today's digest but signed for another value: the
    // signature does not verify.
    let mut lying = sign_pcr11(&key_pem, &before);
    lying.pol = sig_after.pol.clone();
    let err = tpm.unseal(&blob, None, &[lying]).unwrap_err();
    assert!(matches!(err, SealError::WrongSigner), "{err:?}");
}

#[test]
fn signed_policy_with_pin() {
    let (sw, mut tpm) = start();
    let (key_pem, key_der) = rsa_key(sw.dir(), "policy");
    let signed = SealPolicy {
        bank: HashAlg::Sha256,
        pcrs: vec![11],
        signed_by: Some(key_der),
        values: Vec::new(),
    };
    let blob = tpm.seal(SECRET, &signed, Some(b"2468")).unwrap();
    let sig = sign_pcr11(&key_pem, &pcr11(&mut tpm));
    let err = tpm
        .unseal(&blob, Some(b"1111"), std::slice::from_ref(&sig))
        .unwrap_err();
    assert!(matches!(err, SealError::WrongPin), "{err:?}");
    assert_eq!(
        tpm.unseal(&blob, Some(b"2468"), &[sig]).unwrap().as_slice(),
        SECRET
    );
    // A signed policy on another bank is refused up front.
    let sha1 = SealPolicy {
        bank: HashAlg::Sha1,
        ..signed
    };
    assert!(matches!(
        tpm.seal(SECRET, &sha1, None),
        Err(SealError::SignedBankUnsupported { .. })
    ));
}

#[test]
fn sealed_to_a_predicted_value() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    // PCR 11 after the next measurement: old || H("next kernel").
    let mut next = pcr11(&mut tpm);
    HashAlg::Sha256.extend(&mut next, &HashAlg::Sha256.hash(b"next kernel"));
    let mut p = policy(&[7, 11]);
    p.values = vec![(11, next)];
    let blob = tpm.seal(SECRET, &p, None).unwrap();
    let err = tpm.unseal(&blob, None, &[]).unwrap_err();
    assert!(err.to_string().contains("(changed: 11)"), "{err}");
    tpm.extend(11, "next kernel", &log).unwrap();
    assert_eq!(tpm.unseal(&blob, None, &[]).unwrap().as_slice(), SECRET);
    // Values for a PCR outside the policy, or of the wrong size, are refused.
    p.values = vec![(12, vec![0; 32])];
    assert!(matches!(
        tpm.seal(SECRET, &p, None),
        Err(SealError::BadSuppliedValue { pcr: 12 })
    ));
    p.values = vec![(11, vec![0; 20])];
    assert!(matches!(
        tpm.seal(SECRET, &p, None),
        Err(SealError::BadSuppliedValue { pcr: 11 })
    ));
}
