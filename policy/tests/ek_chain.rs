#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
//! EK certificate chains read from a real swtpm (one per test), verified against swtpm's local CA
//! (`/var/lib/swtpm-localca`): TCG EK Credential Profile 2.x certificates as a TPM stores them
//! in NV (RSA EK certificate at 0x01c00002, ECC at 0x01c00016 with swtpm 0.7).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use policy::ek::{pem_to_der, verify_ek_chain, CertRole, EkError};
use tests::swtpm::Swtpm;
use x509_parser::prelude::{FromDer, X509Certificate};

const RSA_EK_CERT_NV: &str = "0x1c00002";
const ECC_EK_CERT_NV: &str = "0x1c00016";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn nvread(tpm: &Swtpm, index: &str) -> Vec<u8> {
    let out = tpm.dir().join(format!("ek-{index}.der"));
    let r = Command::new("tpm2_nvread")
        .arg("-T")
        .arg(tpm.tcti())
        .arg(index)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("tpm2_nvread (run scripts/install-deps.sh)");
    assert!(
        r.status.success(),
        "tpm2_nvread {index}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    std::fs::read(out).unwrap()
}

fn localca(file: &str) -> Vec<Vec<u8>> {
    pem_to_der(&std::fs::read(Swtpm::ca_dir().join(file)).unwrap()).unwrap()
}

fn root() -> Vec<Vec<u8>> {
    localca("swtpm-localca-rootca-cert.pem")
}

fn intermediate() -> Vec<Vec<u8>> {
    localca("issuercert.pem")
}

fn not_after(der: &[u8]) -> i64 {
    X509Certificate::from_der(der)
        .unwrap()
        .1
        .validity()
        .not_after
        .timestamp()
}

fn openssl(dir: &Path, args: &[&str]) {
    let r = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        r.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// A fresh self-signed CA made in `dir` with openssl; returns its DER.
fn unrelated_ca(dir: &Path, subject: &str) -> Vec<u8> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-subj",
            subject,
            "-days",
            "30",
            "-config",
            "/dev/null",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-outform",
            "der",
            "-out",
            "other.der",
        ],
    );
    std::fs::read(dir.join("other.der")).unwrap()
}

#[test]
fn rsa_ek_verifies_to_local_ca() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, RSA_EK_CERT_NV);
    let v = verify_ek_chain(&ek, &intermediate(), &root(), now()).unwrap();
    assert_eq!(v.root_subject, "CN=swtpm-localca-rootca");
    assert_eq!(v.certificate, ek);
    assert_eq!(v.path_subjects.len(), 3);
    assert_eq!(v.tpm_model.as_deref(), Some("swtpm"));
    assert!(v.tpm_manufacturer.is_some());
    assert!(v.tpm_version.is_some());
    // The SPKI is an RSA key (rsaEncryption OID inside).
    let rsa_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    assert!(v
        .public_key_spki
        .windows(rsa_oid.len())
        .any(|w| w == rsa_oid));
}

#[test]
fn ecc_ek_verifies_to_local_ca() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, ECC_EK_CERT_NV);
    let v = verify_ek_chain(&ek, &intermediate(), &root(), now()).unwrap();
    assert_eq!(v.root_subject, "CN=swtpm-localca-rootca");
    let ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    assert!(v.public_key_spki.windows(ec_oid.len()).any(|w| w == ec_oid));
}

#[test]
fn unrelated_ca_is_rejected() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, RSA_EK_CERT_NV);
    let other = unrelated_ca(tpm.dir(), "/CN=Unrelated EK CA");
    let e = verify_ek_chain(&ek, &intermediate(), &[other], now()).unwrap_err();
    assert_eq!(
        e,
        EkError::NoPathToTrustedRoot {
            subject: "CN=swtpm-localca".to_string(),
            issuer: "CN=swtpm-localca-rootca".to_string()
        }
    );
    // The same name as the real root but another key: the signature decides.
    let impostor = unrelated_ca(tpm.dir(), "/CN=swtpm-localca-rootca");
    let e = verify_ek_chain(&ek, &intermediate(), &[impostor], now()).unwrap_err();
    // The real intermediate's AKI names the real root's SKI; openssl gave the impostor its own
    // SKI, so it is not even tried.
    assert!(
        matches!(
            e,
            EkError::NoPathToTrustedRoot { .. } | EkError::BadSignature { .. }
        ),
        "{e:?}"
    );
    // Trusting the intermediate alone is fine (it is then the trust anchor).
    verify_ek_chain(&ek, &[], &intermediate(), now()).unwrap();
}

#[test]
fn missing_intermediate_is_rejected() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, RSA_EK_CERT_NV);
    let e = verify_ek_chain(&ek, &[], &root(), now()).unwrap_err();
    assert!(
        matches!(&e, EkError::NoPathToTrustedRoot { issuer, .. } if issuer == "CN=swtpm-localca"),
        "{e:?}"
    );
}

#[test]
fn past_not_after_fails() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, RSA_EK_CERT_NV);
    let inter = intermediate();
    let after = not_after(&inter[0]) + 1;
    let e = verify_ek_chain(&ek, &inter, &root(), after).unwrap_err();
    assert!(matches!(e, EkError::Expired { .. }), "{e:?}");
}

/// Re-issues the local CA's intermediate (same name and key) for one day, signed by the local CA
/// root; the swtpm EK then chains through it and expires with it. Needs read access to the
/// local CA's private keys (root, in the test environment); skipped without it.
#[test]
fn past_not_after_of_short_lived_intermediate_fails() {
    let ca = Swtpm::ca_dir();
    let root_key = ca.join("swtpm-localca-rootca-privkey.pem");
    let sign_key = ca.join("signkey.pem");
    if std::fs::read(&root_key).is_err() || std::fs::read(&sign_key).is_err() {
        eprintln!("skipped: local CA private keys not readable");
        return;
    }
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, RSA_EK_CERT_NV);
    let dir: PathBuf = tpm.dir().to_path_buf();
    // Keep the original intermediate's key identifier (swtpm computes it its own way), so that
    // the EK's authorityKeyIdentifier still names this intermediate.
    let original = intermediate();
    let ski = X509Certificate::from_der(&original[0])
        .unwrap()
        .1
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(
                k.0.iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap();
    std::fs::write(
        dir.join("ca.ext"),
        format!(
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n\
             subjectKeyIdentifier={ski}\nauthorityKeyIdentifier=keyid\n"
        ),
    )
    .unwrap();
    let (root_key, sign_key) = (root_key.to_str().unwrap(), sign_key.to_str().unwrap());
    let root_pem = ca.join("swtpm-localca-rootca-cert.pem");
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            sign_key,
            "-subj",
            "/CN=swtpm-localca",
            "-out",
            "int.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            root_pem.to_str().unwrap(),
            "-CAkey",
            root_key,
            "-set_serial",
            "4242",
            "-days",
            "1",
            "-sha256",
            "-extfile",
            "ca.ext",
            "-outform",
            "der",
            "-out",
            "int.der",
        ],
    );
    let short = std::fs::read(dir.join("int.der")).unwrap();
    let end = not_after(&short);
    verify_ek_chain(&ek, std::slice::from_ref(&short), &root(), now()).unwrap();
    let e = verify_ek_chain(&ek, std::slice::from_ref(&short), &root(), end + 1).unwrap_err();
    assert_eq!(
        e,
        EkError::Expired {
            subject: "CN=swtpm-localca".to_string(),
            not_before: X509Certificate::from_der(&short)
                .unwrap()
                .1
                .validity()
                .not_before
                .timestamp(),
            not_after: end,
            now: end + 1
        }
    );
    // With the long-lived original also offered, the path goes through it.
    let mut both = vec![short];
    both.extend(intermediate());
    verify_ek_chain(&ek, &both, &root(), end + 1).unwrap();
}

#[test]
fn flipped_signature_byte_fails() {
    let tpm = Swtpm::start().unwrap();
    let mut ek = nvread(&tpm, RSA_EK_CERT_NV);
    let n = ek.len();
    ek[n - 10] ^= 0x40;
    let e = verify_ek_chain(&ek, &intermediate(), &root(), now()).unwrap_err();
    assert!(
        matches!(&e, EkError::BadSignature { issuer, .. } if issuer == "CN=swtpm-localca"),
        "{e:?}"
    );
}

#[test]
fn garbage_and_truncated_der_are_parse_errors() {
    let tpm = Swtpm::start().unwrap();
    let ek = nvread(&tpm, ECC_EK_CERT_NV);
    for bad in [
        &b""[..],
        &b"\x30"[..],
        &b"\x30\x84\xff\xff\xff\xff"[..],
        &ek[..ek.len() / 2],
        &ek[..ek.len() - 1],
        &ek[1..],
    ] {
        let e = verify_ek_chain(bad, &intermediate(), &root(), now()).unwrap_err();
        assert!(
            matches!(
                e,
                EkError::Parse {
                    which: CertRole::Ek,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let e = verify_ek_chain(&ek, &[ek[..100].to_vec()], &root(), now()).unwrap_err();
    assert!(
        matches!(
            e,
            EkError::Parse {
                which: CertRole::Intermediate(0),
                ..
            }
        ),
        "{e:?}"
    );
}
