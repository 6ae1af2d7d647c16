//! The `tpm` crate against a real software TPM (one swtpm per test), cross-checked with
//! tpm2-tools: PCR reads against `tpm2_pcrread`, credentials made by `tpm2_makecredential`,
//! quotes checked by `tpm2_checkquote`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::alg::HashAlg;
use measure::pcr::PcrBanks;
use std::path::Path;
use std::process::Command;
use tests::swtpm::Swtpm;
use tpm::{AkAlg, AkRef, EkAlg, Tpm, TpmError, DEFAULT_AK_HANDLE};
use x509_parser::prelude::FromDer;

fn start() -> (Swtpm, Tpm) {
    let sw = Swtpm::start().unwrap();
    let tpm = Tpm::open(&sw.tcti()).unwrap();
    (sw, tpm)
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Parses `tpm2_pcrread` output: `  sha256:` then `    7 : 0x<HEX>` lines.
fn parse_pcrread(text: &str) -> PcrBanks {
    let mut banks = PcrBanks::new();
    let mut bank = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_suffix(':') {
            bank = Some(HashAlg::from_name(name).unwrap());
        } else if let Some((pcr, value)) = t.split_once(": 0x") {
            let pcr: u32 = pcr.trim().parse().unwrap();
            banks.set(bank.unwrap(), pcr, hex::decode(value.trim()).unwrap());
        }
    }
    banks
}

fn pem_public(der: &[u8], dir: &Path, name: &str) -> std::path::PathBuf {
    let der_path = dir.join(format!("{name}.der"));
    let pem_path = dir.join(format!("{name}.pem"));
    std::fs::write(&der_path, der).unwrap();
    run(Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&pem_path));
    pem_path
}

#[test]
fn bad_tcti_and_missing_tpm_are_typed_errors() {
    assert!(matches!(Tpm::open("tpm0"), Err(TpmError::Tcti(_))));
    let err = Tpm::open("device:/nonexistent/tpmrm0").unwrap_err();
    assert!(matches!(err, TpmError::NoDevice { .. }), "{err}");
    assert!(err.to_string().contains("No such file"), "{err}");
    // Nothing listening: the TSS library's error.
    let err = Tpm::open("swtpm:host=127.0.0.1,port=1").unwrap_err();
    assert!(matches!(err, TpmError::Open { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("no TPM at swtpm:host=127.0.0.1,port=1"));
}

#[test]
fn read_pcrs_matches_tpm2_pcrread_and_cel_replay_reproduces_extends() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("measurements.cel.json");
    tpm.extend(16, "first", &log).unwrap();
    tpm.extend(23, "app", &log).unwrap();
    tpm.extend(16, "second", &log).unwrap();

    let banks = tpm.read_pcrs(&[]).unwrap();
    assert_eq!(
        banks.banks().map(|(a, _)| a).collect::<Vec<_>>(),
        [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384]
    );
    for (_, pcrs) in banks.banks() {
        assert_eq!(pcrs.len(), 24);
    }
    let out = run(Command::new("tpm2_pcrread")
        .arg("-T")
        .arg(sw.tcti())
        .arg("sha1:all+sha256:all+sha384:all"));
    let theirs = parse_pcrread(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(banks, theirs);

    // Replaying the CEL log gives the extended PCRs' values in every bank.
    let records = tpm::read_log(&log).unwrap();
    assert_eq!(records.len(), 3);
    let replayed = tpm::cel::replay(&records).unwrap();
    for alg in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384] {
        for pcr in [16, 23] {
            assert_eq!(replayed.get(alg, pcr), banks.get(alg, pcr), "{alg} {pcr}");
            assert_ne!(banks.get(alg, pcr).unwrap(), &alg.zero()[..]);
        }
    }
    // Selective read of one bank.
    let one = tpm.read_pcrs(&[HashAlg::Sha256]).unwrap();
    assert_eq!(one.bank(HashAlg::Sha256), banks.bank(HashAlg::Sha256));
    assert!(one.bank(HashAlg::Sha1).is_none());
    assert!(matches!(
        tpm.read_pcrs(&[HashAlg::Sha512]),
        Err(TpmError::BankNotAllocated { .. })
    ));
    assert!(matches!(
        tpm.extend(24, "x", &log),
        Err(TpmError::PcrOutOfRange { pcr: 24 })
    ));
}

#[test]
fn ek_certificates_match_the_ek_and_chain_to_the_local_ca() {
    let (sw, mut tpm) = start();
    let certs = tpm.ek_certificates().unwrap();
    let indices: Vec<u32> = certs.iter().map(|c| c.index).collect();
    // swtpm 0.7: RSA 2048 at 0x01c00002 and its ECC certificate (P-384) at 0x01c00016.
    assert!(indices.contains(&0x01c0_0002), "{indices:x?}");
    assert!(tpm.ek_chain().unwrap().is_empty());
    let rsa = &certs.iter().find(|c| c.index == 0x01c0_0002).unwrap().der;
    let (_, cert) = x509_parser::parse_x509_certificate(rsa).unwrap();
    let spki = tpm.ek_public(EkAlg::Rsa2048).unwrap();
    assert_eq!(cert.public_key().raw, &spki[..]);
    // The certificate verifies with openssl through swtpm's local CA.
    let pem = sw.dir().join("ek.der");
    std::fs::write(&pem, rsa).unwrap();
    let ca = Swtpm::ca_dir();
    run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(sw.dir().join("ek.pem")));
    run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca.join("swtpm-localca-rootca-cert.pem"))
        .arg("-untrusted")
        .arg(ca.join("issuercert.pem"))
        .arg(sw.dir().join("ek.pem")));
    // The ECC P-256 EK (template L-2) exists too, as a P-256 SubjectPublicKeyInfo.
    let ecc = tpm.ek_public(EkAlg::EccP256).unwrap();
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&ecc).unwrap();
    assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
}

/// Parses tpm2-tools' credential file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
/// TPM2B_ENCRYPTED_SECRET.
fn parse_credential_file(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&bytes[..4], &[0xBA, 0xDC, 0xC0, 0xDE]);
    let mut rest = &bytes[8..];
    let mut take = || {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let v = rest[2..2 + n].to_vec();
        rest = &rest[2 + n..];
        v
    };
    let id = take();
    let secret = take();
    (id, secret)
}

fn make_credential(
    sw: &Swtpm,
    tpm: &mut Tpm,
    ak: &AkRef,
    ek: EkAlg,
    secret: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let dir = sw.dir();
    let ek_pub = dir.join("ek.pub");
    std::fs::write(&ek_pub, tpm.ek_public_tpm2b(ek).unwrap()).unwrap();
    std::fs::write(dir.join("secret.bin"), secret).unwrap();
    let name = hex::encode(tpm.ak_public(ak).unwrap().name);
    run(Command::new("tpm2_makecredential")
        .args(["-T", "none", "-u"])
        .arg(&ek_pub)
        .arg("-s")
        .arg(dir.join("secret.bin"))
        .arg("-n")
        .arg(name)
        .arg("-o")
        .arg(dir.join("cred.out")));
    parse_credential_file(&std::fs::read(dir.join("cred.out")).unwrap())
}

#[test]
fn ak_persisted_activates_a_credential_from_tpm2_makecredential() {
    let (sw, mut tpm) = start();
    let blobs = tpm.create_ak(EkAlg::Rsa2048, AkAlg::EccP256).unwrap();
    tpm.persist_ak(EkAlg::Rsa2048, &blobs, DEFAULT_AK_HANDLE, false)
        .unwrap();
    assert!(matches!(
        tpm.persist_ak(EkAlg::Rsa2048, &blobs, DEFAULT_AK_HANDLE, false),
        Err(TpmError::HandleInUse { .. })
    ));
    let ak = AkRef::Persistent(DEFAULT_AK_HANDLE);
    let public = tpm.ak_public(&ak).unwrap();
    // The same key whether loaded from blobs or persistent.
    let from_blobs = AkRef::Blobs {
        blobs: blobs.clone(),
        parent: EkAlg::Rsa2048,
    };
    assert_eq!(tpm.ak_public(&from_blobs).unwrap(), public);
    assert_eq!(public.tpm2b_public, blobs.public);

    let secret = b"0123456789abcdef0123456789abcdef";
    let (id, enc) = make_credential(&sw, &mut tpm, &ak, EkAlg::Rsa2048, secret);
    let got = tpm
        .activate_credential(&ak, EkAlg::Rsa2048, &id, &enc)
        .unwrap();
    assert_eq!(got.expose(), secret);
    // A tampered credential is refused by the TPM.
    let mut bad = id.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(tpm
        .activate_credential(&ak, EkAlg::Rsa2048, &bad, &enc)
        .is_err());
    // Replacing the persisted key works and the handle still has one key.
    let rsa = tpm.create_ak(EkAlg::Rsa2048, AkAlg::Rsa2048).unwrap();
    tpm.persist_ak(EkAlg::Rsa2048, &rsa, DEFAULT_AK_HANDLE, true)
        .unwrap();
    assert_eq!(tpm.ak_public(&ak).unwrap().tpm2b_public, rsa.public);
}

#[test]
fn ecc_ek_activates_a_credential_too() {
    let (sw, mut tpm) = start();
    let blobs = tpm.create_ak(EkAlg::EccP256, AkAlg::EccP256).unwrap();
    let ak = AkRef::Blobs {
        blobs,
        parent: EkAlg::EccP256,
    };
    let secret = b"a secret of 16 b";
    let (id, enc) = make_credential(&sw, &mut tpm, &ak, EkAlg::EccP256, secret);
    let got = tpm
        .activate_credential(&ak, EkAlg::EccP256, &id, &enc)
        .unwrap();
    assert_eq!(got.expose(), secret);
}

fn check_quote(sw: &Swtpm, tpm: &mut Tpm, ak: &AkRef, alg: &str) {
    let dir = sw.dir();
    let log = dir.join(format!("{alg}.cel.json"));
    tpm.extend(16, "before the quote", &log).unwrap();
    let nonce = b"fresh-nonce-0123";
    let selection = vec![
        (HashAlg::Sha256, vec![0, 1, 7, 16]),
        (HashAlg::Sha1, vec![16]),
    ];
    let quote = tpm.quote(ak, &selection, nonce).unwrap();
    assert_eq!(quote.attempts, 1);
    assert_eq!(
        quote.pcrs.get(HashAlg::Sha256, 16),
        tpm.read_pcrs(&[HashAlg::Sha256])
            .unwrap()
            .get(HashAlg::Sha256, 16)
    );
    assert_eq!(quote.pcrs.bank(HashAlg::Sha256).unwrap().len(), 4);
    assert_eq!(quote.pcrs.bank(HashAlg::Sha1).unwrap().len(), 1);

    let pem = pem_public(
        &tpm.ak_public(ak).unwrap().spki_der,
        dir,
        &format!("ak-{alg}"),
    );
    let attest = dir.join(format!("attest-{alg}.bin"));
    let sig = dir.join(format!("sig-{alg}.bin"));
    std::fs::write(&attest, &quote.attest).unwrap();
    std::fs::write(&sig, &quote.signature).unwrap();
    let checkquote = |nonce_hex: &str| {
        Command::new("tpm2_checkquote")
            .arg("-u")
            .arg(&pem)
            .arg("-m")
            .arg(&attest)
            .arg("-s")
            .arg(&sig)
            .arg("-q")
            .arg(nonce_hex)
            .output()
            .unwrap()
    };
    let ok = checkquote(&hex::encode(nonce));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = checkquote(&hex::encode(b"stale-nonce-0123"));
    assert!(!bad.status.success());

    // A quote of one bank: the pcrDigest (the last 32 bytes of TPMS_QUOTE_INFO) is
    // H(PCR values in ascending order).
    let q = tpm
        .quote(ak, &[(HashAlg::Sha256, vec![0, 7, 16])], nonce)
        .unwrap();
    let values: Vec<&[u8]> = [0, 7, 16]
        .iter()
        .map(|p| q.pcrs.get(HashAlg::Sha256, *p).unwrap())
        .collect();
    let digest = HashAlg::Sha256.hash_parts(&values);
    assert_eq!(&q.attest[q.attest.len() - 32..], &digest[..]);
    assert_eq!(
        &q.attest[q.attest.len() - 34..q.attest.len() - 32],
        &[0, 32]
    );
}

#[test]
fn quotes_verify_with_tpm2_checkquote() {
    let (sw, mut tpm) = start();
    let ecc = tpm.create_ak(EkAlg::Rsa2048, AkAlg::EccP256).unwrap();
    tpm.persist_ak(EkAlg::Rsa2048, &ecc, DEFAULT_AK_HANDLE, false)
        .unwrap();
    check_quote(&sw, &mut tpm, &AkRef::Persistent(DEFAULT_AK_HANDLE), "ecc");
    let rsa = tpm.create_ak(EkAlg::Rsa2048, AkAlg::Rsa2048).unwrap();
    let rsa = AkRef::Blobs {
        blobs: rsa,
        parent: EkAlg::Rsa2048,
    };
    check_quote(&sw, &mut tpm, &rsa, "rsa");
    assert!(matches!(
        tpm.quote(&rsa, &[(HashAlg::Sha256, vec![0])], &[0; 65]),
        Err(TpmError::NonceTooLong { len: 65 })
    ));
    assert!(matches!(
        tpm.quote(
            &AkRef::Persistent(0x8101_0099),
            &[(HashAlg::Sha256, vec![0])],
            b"n"
        ),
        Err(TpmError::NoKeyAt { .. })
    ));
}
