//! `measure::tpm2::Quote::verify` against real quotes: tpm2-tools (not Warrant's own TPM code)
//! creates attestation keys and quotes on a fresh swtpm per test (`tests::swtpm`). The tests
//! fail (they do not skip) when swtpm or tpm2-tools are missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::pcr::PcrBanks;
use measure::tpm2::{ParseError, Quote, QuoteError};
use measure::HashAlg;
use std::process::Command;
use tests::swtpm::Swtpm;

const NONCE: &str = "5eed0f5eed0f5eed0f5eed0f5eed0f5eed0f5eed";
const SELECTION: &str = "sha256:0,1,7+sha1:0";

/// Runs a tpm2-tools command in the TPM's folder, then flushes transient objects and sessions
/// (swtpm without a resource manager has only three object slots).
fn tpm2(tpm: &Swtpm, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg("-T")
        .arg(tpm.tcti())
        .args(args)
        .current_dir(tpm.dir())
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (run scripts/install-deps.sh)"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in ["-t", "-s"] {
        let flushed = Command::new("tpm2_flushcontext")
            .arg("-T")
            .arg(tpm.tcti())
            .arg(kind)
            .output()
            .unwrap();
        assert!(flushed.status.success());
    }
    String::from_utf8(out.stdout).unwrap()
}

fn read(tpm: &Swtpm, file: &str) -> Vec<u8> {
    std::fs::read(tpm.dir().join(file)).unwrap()
}

/// Parses `tpm2_pcrread`'s output: `  sha256:` headers and `    7 : 0xHEX` lines.
fn pcrread(tpm: &Swtpm, selection: &str) -> PcrBanks {
    let text = tpm2(tpm, "tpm2_pcrread", &[selection]);
    let mut banks = PcrBanks::new();
    let mut bank = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_suffix(':') {
            bank = Some(HashAlg::from_name(name).unwrap());
        } else if let Some((index, value)) = line.split_once(':') {
            let value = value.trim().trim_start_matches("0x");
            banks.set(
                bank.unwrap(),
                index.trim().parse().unwrap(),
                hex::decode(value).unwrap(),
            );
        }
    }
    banks
}

/// A fresh TPM with an EK and a measured PCR 7 / PCR 0.
fn tpm_with_ek() -> Swtpm {
    let tpm = Swtpm::start().unwrap();
    tpm2(
        &tpm,
        "tpm2_createek",
        &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
    );
    let sha256 = hex::encode(HashAlg::Sha256.hash(b"warrant"));
    tpm2(&tpm, "tpm2_pcrextend", &[&format!("7:sha256={sha256}")]);
    let sha1 = hex::encode(HashAlg::Sha1.hash(b"warrant"));
    tpm2(&tpm, "tpm2_pcrextend", &[&format!("0:sha1={sha1}")]);
    tpm
}

/// `tpm2_createak` under the EK: key type (`ecc`/`rsa`) and scheme; files `<name>.{ctx,pub}`.
fn create_ak(tpm: &Swtpm, name: &str, alg: &str, scheme: &str) {
    let ctx = format!("{name}.ctx");
    let public = format!("{name}.pub");
    let akname = format!("{name}.name");
    tpm2(
        tpm,
        "tpm2_createak",
        &[
            "-C", "ek.ctx", "-c", &ctx, "-G", alg, "-g", "sha256", "-s", scheme, "-u", &public,
            "-n", &akname, "-f", "tss",
        ],
    );
}

struct QuoteFiles {
    attest: Vec<u8>,
    sig: Vec<u8>,
}

fn quote(tpm: &Swtpm, ak: &str, scheme: &str, hash: &str) -> QuoteFiles {
    let ctx = format!("{ak}.ctx");
    tpm2(
        tpm,
        "tpm2_quote",
        &[
            "-c",
            &ctx,
            "-l",
            SELECTION,
            "-q",
            NONCE,
            "-m",
            "attest.bin",
            "-s",
            "sig.bin",
            "-g",
            hash,
            "--scheme",
            scheme,
        ],
    );
    QuoteFiles {
        attest: read(tpm, "attest.bin"),
        sig: read(tpm, "sig.bin"),
    }
}

fn nonce() -> Vec<u8> {
    hex::decode(NONCE).unwrap()
}

/// Verifies, then checks each tampering is caught with the right error.
fn check_quote_and_tampering(alg: &str, scheme: &str) {
    let tpm = tpm_with_ek();
    create_ak(&tpm, "ak", alg, scheme);
    let q = quote(&tpm, "ak", scheme, "sha256");
    let akpub = read(&tpm, "ak.pub");
    let pcrs = pcrread(&tpm, SELECTION);

    let v = Quote::verify(&q.attest, &q.sig, &akpub, &nonce(), &pcrs).unwrap();
    assert_eq!(v.pcrs(), &pcrs);
    assert_eq!(v.ak_name(), read(&tpm, "ak.name"));
    assert_eq!(
        v.pcrs().get(HashAlg::Sha256, 7).unwrap(),
        HashAlg::Sha256.hash_parts(&[&[0; 32], &HashAlg::Sha256.hash(b"warrant")])
    );
    assert!(v.clock_info().clock > 0);

    let mut wrong = nonce();
    wrong[3] ^= 0x40;
    assert_eq!(
        Quote::verify(&q.attest, &q.sig, &akpub, &wrong, &pcrs),
        Err(QuoteError::NonceMismatch)
    );

    let mut changed = pcrs.clone();
    changed.set(HashAlg::Sha256, 1, HashAlg::Sha256.hash(b"evil"));
    assert_eq!(
        Quote::verify(&q.attest, &q.sig, &akpub, &nonce(), &changed),
        Err(QuoteError::PcrDigestMismatch {
            alg: HashAlg::Sha256
        })
    );

    // Re-read after another extend: the quote no longer matches the machine.
    tpm2(
        &tpm,
        "tpm2_pcrextend",
        &[&format!("1:sha256={}", "11".repeat(32))],
    );
    let later = pcrread(&tpm, SELECTION);
    assert!(matches!(
        Quote::verify(&q.attest, &q.sig, &akpub, &nonce(), &later),
        Err(QuoteError::PcrDigestMismatch { .. })
    ));

    let last = q.attest.len() - 1;
    for i in [20, 60, last] {
        let mut attest = q.attest.clone();
        attest[i] ^= 0x04;
        assert_eq!(
            Quote::verify(&attest, &q.sig, &akpub, &nonce(), &pcrs),
            Err(QuoteError::BadSignature),
            "flipped byte {i}"
        );
    }

    for n in 0..q.attest.len() {
        assert!(Quote::verify(&q.attest[..n], &q.sig, &akpub, &nonce(), &pcrs).is_err());
    }
    for n in 0..q.sig.len() {
        assert!(Quote::verify(&q.attest, &q.sig[..n], &akpub, &nonce(), &pcrs).is_err());
    }
    for n in 0..akpub.len() {
        assert!(Quote::verify(&q.attest, &q.sig, &akpub[..n], &nonce(), &pcrs).is_err());
    }
}

#[test]
fn ecdsa_p256_quote() {
    check_quote_and_tampering("ecc", "ecdsa");
}

#[test]
fn rsassa_quote() {
    check_quote_and_tampering("rsa", "rsassa");
}

#[test]
fn rsapss_quote() {
    check_quote_and_tampering("rsa", "rsapss");
}

#[test]
fn ecdsa_p384_sha384_quote() {
    let tpm = tpm_with_ek();
    tpm2(
        &tpm,
        "tpm2_createak",
        &[
            "-C", "ek.ctx", "-c", "ak.ctx", "-G", "ecc384", "-g", "sha384", "-s", "ecdsa", "-u",
            "ak.pub", "-n", "ak.name", "-f", "tss",
        ],
    );
    let q = quote(&tpm, "ak", "ecdsa", "sha384");
    let pcrs = pcrread(&tpm, SELECTION);
    let akpub = read(&tpm, "ak.pub");
    let v = Quote::verify(&q.attest, &q.sig, &akpub, &nonce(), &pcrs).unwrap();
    assert_eq!(v.signature_hash(), HashAlg::Sha384);
    assert_eq!(v.ak_name(), read(&tpm, "ak.name"));
    let mut attest = q.attest.clone();
    attest[30] ^= 1;
    assert_eq!(
        Quote::verify(&attest, &q.sig, &akpub, &nonce(), &pcrs),
        Err(QuoteError::BadSignature)
    );
}

#[test]
fn signature_must_fit_the_key_type() {
    let tpm = tpm_with_ek();
    create_ak(&tpm, "ak", "ecc", "ecdsa");
    create_ak(&tpm, "rsa", "rsa", "rsassa");
    let q = quote(&tpm, "ak", "ecdsa", "sha256");
    let pcrs = pcrread(&tpm, SELECTION);
    assert!(matches!(
        Quote::verify(&q.attest, &q.sig, &read(&tpm, "rsa.pub"), &nonce(), &pcrs),
        Err(QuoteError::SchemeMismatch { .. })
    ));
}

#[test]
fn signature_by_another_ak_is_bad() {
    let tpm = tpm_with_ek();
    create_ak(&tpm, "ak1", "ecc", "ecdsa");
    create_ak(&tpm, "ak2", "ecc", "ecdsa");
    let pcrs = pcrread(&tpm, SELECTION);
    let q = quote(&tpm, "ak1", "ecdsa", "sha256");
    assert!(Quote::verify(&q.attest, &q.sig, &read(&tpm, "ak1.pub"), &nonce(), &pcrs).is_ok());
    assert_eq!(
        Quote::verify(&q.attest, &q.sig, &read(&tpm, "ak2.pub"), &nonce(), &pcrs),
        Err(QuoteError::BadSignature)
    );

    // Same for RSA: a second AK's signature over the first AK's attestation.
    create_ak(&tpm, "rsa1", "rsa", "rsassa");
    create_ak(&tpm, "rsa2", "rsa", "rsassa");
    let q1 = quote(&tpm, "rsa1", "rsassa", "sha256");
    let q2 = quote(&tpm, "rsa2", "rsassa", "sha256");
    assert_eq!(
        Quote::verify(
            &q1.attest,
            &q2.sig,
            &read(&tpm, "rsa1.pub"),
            &nonce(),
            &pcrs
        ),
        Err(QuoteError::BadSignature)
    );
}

#[test]
fn non_restricted_signing_key_is_rejected() {
    let tpm = tpm_with_ek();
    tpm2(
        &tpm,
        "tpm2_createprimary",
        &["-C", "o", "-G", "ecc", "-c", "primary.ctx"],
    );
    tpm2(
        &tpm,
        "tpm2_create",
        &[
            "-C",
            "primary.ctx",
            "-G",
            "ecc256:ecdsa-sha256",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
            "-u",
            "key.pub",
            "-r",
            "key.priv",
        ],
    );
    tpm2(
        &tpm,
        "tpm2_load",
        &[
            "-C",
            "primary.ctx",
            "-u",
            "key.pub",
            "-r",
            "key.priv",
            "-c",
            "key.ctx",
        ],
    );
    // TPM2_Quote accepts any signing key; only a restricted one proves the TPM built the data.
    let q = quote(&tpm, "key", "ecdsa", "sha256");
    let pcrs = pcrread(&tpm, SELECTION);
    let key = read(&tpm, "key.pub");
    assert!(matches!(
        Quote::verify(&q.attest, &q.sig, &key, &nonce(), &pcrs),
        Err(QuoteError::NotRestrictedSigningKey { attributes }) if attributes & (1 << 16) == 0
    ));
}

#[test]
fn garbage_inputs_are_typed_errors() {
    let tpm = tpm_with_ek();
    create_ak(&tpm, "ak", "ecc", "ecdsa");
    let q = quote(&tpm, "ak", "ecdsa", "sha256");
    let akpub = read(&tpm, "ak.pub");
    let pcrs = pcrread(&tpm, SELECTION);
    // A deterministic byte soup, and each input swapped into the others' place.
    let soup: Vec<u8> = (0u32..400)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (a, s, k) in [
        (&soup[..], &q.sig[..], &akpub[..]),
        (&q.attest[..], &soup[..], &akpub[..]),
        (&q.attest[..], &q.sig[..], &soup[..]),
        (&q.sig[..], &q.attest[..], &akpub[..]),
        (&q.attest[..], &akpub[..], &q.sig[..]),
        (&akpub[..], &q.sig[..], &q.attest[..]),
    ] {
        assert!(Quote::verify(a, s, k, &nonce(), &pcrs).is_err());
    }
    assert!(matches!(
        Quote::verify(&soup, &q.sig, &akpub, &nonce(), &pcrs),
        Err(QuoteError::Attest(ParseError::BadMagic { offset: 0, .. }))
    ));
}
