//! systemd 252 compatibility against the real tools, one swtpm per test: tokens enrolled by
//! `systemd-cryptenroll` unseal with `tpm::systemd::unseal` and the passphrase opens the LUKS2
//! keyslot (`cryptsetup open --test-passphrase`); tokens made by `tpm::systemd::seal` are
//! accepted by libcryptsetup with systemd's token plugin and recognised by
//! `systemd-cryptenroll` as the very policy it would enroll itself.
//!
//! Needs `cryptsetup` (2.6), `systemd-cryptenroll` (systemd 252) and `libtss2-tcti-swtpm`
//! (`scripts/install-deps.sh`); a missing tool fails the test, it is never skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::alg::HashAlg;
use measure::luks2::json::Token;
use measure::luks2::{required_len, Header, PcrBank, PrimaryAlg, SystemdTpm2Token};
use measure::uki::policy::{base64, policy_pcr_digest, BlindingRng, PolicySigningKey};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tests::openssl::rsa_key;
use tests::swtpm::Swtpm;
use tpm::systemd::{self, SignedPolicyKey, SystemdError};
use tpm::Tpm;

/// Runs a command; panics loudly if the tool is missing.
fn run(cmd: &mut Command) -> Output {
    let name = format!("{:?}", cmd.get_program());
    cmd.output().unwrap_or_else(|e| {
        panic!("{name} could not be run ({e}): install it with scripts/install-deps.sh")
    })
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A 20 MiB LUKS2 image with a key file, in the TPM's scratch folder.
fn luks_image(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    tests::luks2_image(dir, name, &[0x42u8; 32], &[]).unwrap()
}

/// `systemd-cryptenroll --tpm2-device=<swtpm> ARGS --unlock-key-file=KEY IMG`, with `NEWPIN`
/// set when `pin` is given (systemd 252 reads the new PIN from `$NEWPIN`, else asks).
fn cryptenroll(sw: &Swtpm, img: &Path, key: &Path, args: &[&str], pin: Option<&str>) -> Output {
    let mut cmd = Command::new("systemd-cryptenroll");
    cmd.arg(format!("--tpm2-device={}", sw.tcti()))
        .args(args)
        .arg(format!("--unlock-key-file={}", key.display()))
        .arg(img)
        .env_remove("NEWPIN")
        .env_remove("PIN")
        .stdin(Stdio::null());
    if let Some(pin) = pin {
        cmd.env("NEWPIN", pin);
    }
    ok(&mut cmd)
}

/// The header, parsed by `measure::luks2` from the image's first bytes.
fn header(img: &Path) -> Header {
    let mut f = std::fs::File::open(img).unwrap();
    let mut prefix = vec![0u8; 4096];
    f.read_exact(&mut prefix).unwrap();
    let len = usize::try_from(required_len(&prefix).unwrap()).unwrap();
    let mut all = vec![0u8; len];
    std::fs::File::open(img)
        .unwrap()
        .read_exact(&mut all)
        .unwrap();
    Header::parse(&all).unwrap()
}

/// The `systemd-tpm2` tokens of the image, by token id.
fn tokens(img: &Path) -> Vec<(u32, SystemdTpm2Token)> {
    header(img)
        .metadata()
        .tokens
        .iter()
        .filter_map(|(id, t)| match t {
            Token::SystemdTpm2(t) => Some((id.0, t.clone())),
            Token::Other(_) => None,
        })
        .collect()
}

fn only_token(img: &Path) -> SystemdTpm2Token {
    let mut all = tokens(img);
    assert_eq!(all.len(), 1, "expected one systemd-tpm2 token");
    all.remove(0).1
}

/// Whether `passphrase` opens a keyslot (`cryptsetup open --test-passphrase`, key on stdin).
fn opens(img: &Path, passphrase: &[u8]) -> bool {
    let mut child = Command::new("cryptsetup")
        .args(["open", "--test-passphrase", "--key-file", "-"])
        .arg(img)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cryptsetup could not be run: install it with scripts/install-deps.sh");
    child.stdin.take().unwrap().write_all(passphrase).unwrap();
    child.wait().unwrap().success()
}

fn start() -> (Swtpm, Tpm) {
    let sw = Swtpm::start().unwrap();
    let tpm = Tpm::open(&sw.tcti()).unwrap();
    (sw, tpm)
}

#[test]
fn systemd_enrolled_token_opens_and_a_pcr_change_is_named() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    let (img, key) = luks_image(sw.dir(), "pcr7");
    cryptenroll(&sw, &img, &key, &["--tpm2-pcrs=7"], None);
    let token = only_token(&img);
    assert_eq!(token.pcrs, vec![7]);
    assert_eq!(token.primary_alg, Some(PrimaryAlg::Ecc));
    assert_eq!(token.pin, Some(false));

    let pass = systemd::unseal(&mut tpm, &token, None, None).unwrap();
    assert_eq!(pass.len(), 44, "base64 of 32 bytes");
    assert!(
        opens(&img, &pass),
        "the unsealed passphrase must open the keyslot"
    );
    assert!(!opens(&img, b"not the passphrase"));
    // A PIN for a token without one is refused up front.
    assert!(matches!(
        systemd::unseal(&mut tpm, &token, Some("1234"), None),
        Err(SystemdError::PinNotExpected)
    ));
    // The same blob under systemd's RSA primary: it does not load.
    let mut rsa = token.clone();
    rsa.primary_alg = Some(PrimaryAlg::Rsa);
    let err = systemd::unseal(&mut tpm, &rsa, None, None).unwrap_err();
    assert!(matches!(err, SystemdError::DifferentTpm), "{err:?}");
    // A PCR outside the policy may move; PCR 7 may not.
    tpm.extend(12, "elsewhere", &log).unwrap();
    assert!(opens(
        &img,
        &systemd::unseal(&mut tpm, &token, None, None).unwrap()
    ));
    tpm.extend(7, "a new Secure Boot db", &log).unwrap();
    let err = systemd::unseal(&mut tpm, &token, None, None).unwrap_err();
    assert!(matches!(err, SystemdError::PcrsChanged { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the PCR policy (sha256: 7) does not match this boot: PCRs changed since enrollment"
    );
}

#[test]
fn systemd_enrolled_token_from_another_tpm_is_named() {
    let (sw, _tpm) = start();
    let (_other_sw, mut other) = start();
    let (img, key) = luks_image(sw.dir(), "other");
    cryptenroll(&sw, &img, &key, &["--tpm2-pcrs=7"], None);
    let err = systemd::unseal(&mut other, &only_token(&img), None, None).unwrap_err();
    assert!(matches!(err, SystemdError::DifferentTpm), "{err:?}");
    assert!(err.to_string().contains("different TPM"), "{err}");
}

#[test]
fn systemd_enrolled_pin_token() {
    let (sw, mut tpm) = start();
    let (img, key) = luks_image(sw.dir(), "pin");
    cryptenroll(
        &sw,
        &img,
        &key,
        &["--tpm2-pcrs=7", "--tpm2-with-pin=yes"],
        Some("2468"),
    );
    let token = only_token(&img);
    assert_eq!(token.pin, Some(true));
    assert!(matches!(
        systemd::unseal(&mut tpm, &token, None, None),
        Err(SystemdError::PinRequired)
    ));
    let err = systemd::unseal(&mut tpm, &token, Some("1357"), None).unwrap_err();
    assert!(matches!(err, SystemdError::WrongPin), "{err:?}");
    assert_eq!(err.to_string(), "wrong PIN");
    let pass = systemd::unseal(&mut tpm, &token, Some("2468"), None).unwrap();
    assert!(opens(&img, &pass));
    // systemd's sealed object is protected by the dictionary-attack logic: keep guessing and
    // the TPM locks out, which is named as such (even for the right PIN).
    let mut locked = false;
    for _ in 0..64 {
        match systemd::unseal(&mut tpm, &token, Some("0000"), None) {
            Err(SystemdError::WrongPin) => continue,
            Err(SystemdError::Lockout { retry_after_secs }) => {
                assert!(retry_after_secs.is_some_and(|s| s > 0));
                locked = true;
                break;
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    assert!(locked, "no lockout after 64 wrong PINs");
    let err = systemd::unseal(&mut tpm, &token, Some("2468"), None).unwrap_err();
    assert!(matches!(err, SystemdError::Lockout { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("TPM is in dictionary-attack lockout"));
    // Unsupported variants from later systemd releases are refused by name.
    let mut salted = token.clone();
    salted.salt = Some(vec![1; 16]);
    let err = systemd::unseal(&mut tpm, &salted, Some("2468"), None).unwrap_err();
    assert!(
        matches!(&err, SystemdError::Unsupported { feature } if feature.contains("tpm2_salt")),
        "{err:?}"
    );
    let mut pcrlock = token;
    pcrlock.pcrlock = Some(true);
    assert!(matches!(
        systemd::unseal(&mut tpm, &pcrlock, Some("2468"), None),
        Err(SystemdError::Unsupported { .. })
    ));
}

/// A `.pcrsig` JSON signing PCR 11 = `value` (sha256 bank), as `systemd-measure sign` writes.
fn pcrsig(key_pem: &[u8], value: &[u8]) -> Vec<u8> {
    let key = PolicySigningKey::from_pem(key_pem).unwrap();
    let pol = policy_pcr_digest(HashAlg::Sha256, 11, value).unwrap();
    let sig = key
        .sign(&mut BlindingRng::from_seed([9; 32]), HashAlg::Sha256, &pol)
        .unwrap();
    let pkfp = key.public_key().fingerprint().unwrap();
    serde_json::to_vec(&serde_json::json!({
        "sha256": [{"pcrs": [11], "pkfp": hex::encode(pkfp), "pol": hex::encode(pol), "sig": base64(&sig)}]
    }))
    .unwrap()
}

fn pcr(tpm: &mut Tpm, n: u32) -> Vec<u8> {
    tpm.read_pcrs(&[HashAlg::Sha256])
        .unwrap()
        .get(HashAlg::Sha256, n)
        .unwrap()
        .to_vec()
}

#[test]
fn systemd_enrolled_signed_policy_token() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    let (key_pem, pub_pem) = rsa_key(sw.dir(), "policy").unwrap();
    let (other_pem, _) = rsa_key(sw.dir(), "other").unwrap();
    let (img, key) = luks_image(sw.dir(), "signed");
    cryptenroll(
        &sw,
        &img,
        &key,
        &[
            "--tpm2-pcrs=7",
            &format!("--tpm2-public-key={}", pub_pem.display()),
            "--tpm2-public-key-pcrs=11",
        ],
        None,
    );
    let token = only_token(&img);
    assert_eq!(token.pubkey_pcrs, Some(vec![11]));
    assert!(matches!(
        systemd::unseal(&mut tpm, &token, None, None),
        Err(SystemdError::SignatureRequired)
    ));
    let before = pcrsig(&key_pem, &pcr(&mut tpm, 11));
    let pass = systemd::unseal(&mut tpm, &token, None, Some(&before)).unwrap();
    assert!(opens(&img, &pass));
    // A kernel update: the old signature no longer matches, the new one does.
    tpm.extend(11, "new kernel", &log).unwrap();
    let err = systemd::unseal(&mut tpm, &token, None, Some(&before)).unwrap_err();
    assert!(
        matches!(err, SystemdError::NoSignatureForThisBoot { .. }),
        "{err:?}"
    );
    let after = pcrsig(&key_pem, &pcr(&mut tpm, 11));
    assert!(opens(
        &img,
        &systemd::unseal(&mut tpm, &token, None, Some(&after)).unwrap()
    ));
    // Another key's signature of the right value.
    let wrong = pcrsig(&other_pem, &pcr(&mut tpm, 11));
    let err = systemd::unseal(&mut tpm, &token, None, Some(&wrong)).unwrap_err();
    assert!(matches!(err, SystemdError::WrongSigner), "{err:?}");
    // PCR 7 is bound by value on top of the signed PCR 11.
    tpm.extend(7, "db update", &log).unwrap();
    let err = systemd::unseal(&mut tpm, &token, None, Some(&after)).unwrap_err();
    assert!(matches!(err, SystemdError::PcrsChanged { .. }), "{err:?}");
}

/// Adds `passphrase` as a keyslot and `token` (with that keyslot) as a LUKS2 token, with
/// cryptsetup; libcryptsetup validates the token with systemd's plugin on import.
fn add_to_image(img: &Path, key: &Path, dir: &Path, token: &SystemdTpm2Token, passphrase: &[u8]) {
    let new_key = dir.join("new.key");
    std::fs::write(&new_key, passphrase).unwrap();
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(Command::new("cryptsetup")
        .args([
            "luksAddKey",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-slot",
            "3",
            "--key-file",
        ])
        .arg(key)
        .arg(img)
        .arg(&new_key));
    std::fs::remove_file(&new_key).unwrap();
    let mut token = token.clone();
    token.keyslots = vec![measure::luks2::json::ObjectId(3)];
    let json = dir.join("token.json");
    std::fs::write(
        &json,
        serde_json::to_vec(&serde_json::Value::Object(token.to_object())).unwrap(),
    )
    .unwrap();
    ok(Command::new("cryptsetup")
        .args(["token", "import", "--token-id", "5", "--json-file"])
        .arg(&json)
        .arg(img));
}

/// Our token, as libcryptsetup and systemd see it.
fn check_ours_in_image(sw: &Swtpm, img: &Path, key: &Path, pin: Option<&str>, args: &[&str]) {
    // systemd's plugin parsed it for the dump (it prints the fields it understood).
    let dump = ok(Command::new("cryptsetup").arg("luksDump").arg(img));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("systemd-tpm2"), "{dump}");
    assert!(dump.contains("tpm2-hash-pcrs:   7"), "{dump}");
    assert!(dump.contains("tpm2-primary-alg: ecc"), "{dump}");
    // systemd-cryptenroll computes its own policy for the same PCRs (and PIN), finds ours has
    // exactly that tpm2-policy-hash, and enrolls nothing.
    let out = cryptenroll(sw, img, key, args, pin);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("already enrolled"), "{said}");
    assert_eq!(
        tokens(img).len(),
        1,
        "systemd must not enroll a second token"
    );
}

#[test]
fn warrant_sealed_token_is_systemds_own() {
    let (sw, mut tpm) = start();
    let log = sw.dir().join("log.json");
    tpm.extend(7, "a Secure Boot state", &log).unwrap();
    let (img, key) = luks_image(sw.dir(), "ours");
    let (token, pass) = systemd::seal(&mut tpm, &[7], PcrBank::Sha256, None, None).unwrap();
    assert_eq!(pass.len(), 44);
    assert!(token.keyslots.is_empty());
    add_to_image(&img, &key, sw.dir(), &token, &pass);
    let (id, read) = tokens(&img).remove(0);
    assert_eq!(id, 5);
    check_ours_in_image(&sw, &img, &key, None, &["--tpm2-pcrs=7"]);
    // Read back from the header, it unseals and opens its keyslot.
    let again = systemd::unseal(&mut tpm, &read, None, None).unwrap();
    assert_eq!(again.as_slice(), pass.as_slice());
    assert!(opens(&img, &again));
    tpm.extend(7, "changed", &log).unwrap();
    assert!(matches!(
        systemd::unseal(&mut tpm, &read, None, None),
        Err(SystemdError::PcrsChanged { .. })
    ));
}

#[test]
fn warrant_sealed_pin_token_matches_systemds_and_its_object() {
    let (sw, mut tpm) = start();
    let (img, key) = luks_image(sw.dir(), "ourpin");
    let (token, pass) = systemd::seal(&mut tpm, &[7], PcrBank::Sha256, Some("2468"), None).unwrap();
    assert_eq!(token.pin, Some(true));
    add_to_image(&img, &key, sw.dir(), &token, &pass);
    check_ours_in_image(
        &sw,
        &img,
        &key,
        Some("2468"),
        &["--tpm2-pcrs=7", "--tpm2-with-pin=yes"],
    );
    let err = systemd::unseal(&mut tpm, &token, Some("1111"), None).unwrap_err();
    assert!(matches!(err, SystemdError::WrongPin), "{err:?}");
    assert!(opens(
        &img,
        &systemd::unseal(&mut tpm, &token, Some("2468"), None).unwrap()
    ));
    // The sealed object's public area is systemd's, byte for byte, but for the unique field
    // (a hash of the random secret): systemd enrolls the same PCRs and PIN in a second image.
    let (img2, key2) = luks_image(sw.dir(), "theirpin");
    cryptenroll(
        &sw,
        &img2,
        &key2,
        &["--tpm2-pcrs=7", "--tpm2-with-pin=yes"],
        Some("2468"),
    );
    let theirs = only_token(&img2);
    assert_eq!(theirs.policy_hash, token.policy_hash);
    let public = |t: &SystemdTpm2Token| {
        let blob = t.blob.as_slice()[0].clone();
        let private_len = 2 + usize::from(u16::from_be_bytes([blob[0], blob[1]]));
        blob[private_len..].to_vec()
    };
    let (ours, theirs) = (public(&token), public(&theirs));
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours[..ours.len() - 32], theirs[..theirs.len() - 32]);
}

#[test]
fn warrant_sealed_signed_token_is_systemds_own() {
    let (sw, mut tpm) = start();
    let (key_pem, pub_pem) = rsa_key(sw.dir(), "policy").unwrap();
    let pub_bytes = std::fs::read(&pub_pem).unwrap();
    let (img, key) = luks_image(sw.dir(), "oursigned");
    let signed = SignedPolicyKey {
        public_key_pem: &pub_bytes,
        pcrs: &[11],
    };
    let (token, pass) =
        systemd::seal(&mut tpm, &[7], PcrBank::Sha256, None, Some(&signed)).unwrap();
    assert_eq!(token.pubkey.as_deref(), Some(pub_bytes.as_slice()));
    add_to_image(&img, &key, sw.dir(), &token, &pass);
    check_ours_in_image(
        &sw,
        &img,
        &key,
        None,
        &[
            "--tpm2-pcrs=7",
            &format!("--tpm2-public-key={}", pub_pem.display()),
            "--tpm2-public-key-pcrs=11",
        ],
    );
    let sig = pcrsig(&key_pem, &pcr(&mut tpm, 11));
    assert!(opens(
        &img,
        &systemd::unseal(&mut tpm, &token, None, Some(&sig)).unwrap()
    ));
}

#[test]
fn seal_refuses_bad_input() {
    let (_sw, mut tpm) = start();
    assert!(matches!(
        systemd::seal(&mut tpm, &[], PcrBank::Sha256, None, None),
        Err(SystemdError::NoPcrs)
    ));
    assert!(matches!(
        systemd::seal(&mut tpm, &[24], PcrBank::Sha256, None, None),
        Err(SystemdError::PcrOutOfRange { pcr: 24 })
    ));
    assert!(matches!(
        systemd::seal(&mut tpm, &[7], PcrBank::Sha256, Some(""), None),
        Err(SystemdError::EmptyPin)
    ));
    let not_a_key = SignedPolicyKey {
        public_key_pem: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        pcrs: &[11],
    };
    assert!(matches!(
        systemd::seal(&mut tpm, &[7], PcrBank::Sha256, None, Some(&not_a_key)),
        Err(SystemdError::BadPolicyKey)
    ));
}
