//! `measure::tpm2::credential::make_credential` (pure Rust, no TPM) against a real software TPM
//! (one swtpm per test): a credential made for an EK and an AK name is recovered by
//! `TPM2_ActivateCredential` for both TCG EK templates (L-1 RSA 2048, L-2 ECC P-256), and is
//! refused for another AK, another TPM's EK, or after tampering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::tpm2::credential::rand_core::{self, CryptoRng, RngCore};
use measure::tpm2::credential::{make_credential, MadeCredential};
use measure::tpm2::Public;
use std::io::Read;
use tests::swtpm::Swtpm;
use tpm::{AkAlg, AkRef, CredentialSecret, EkAlg, Tpm, TpmError};

fn start() -> (Swtpm, Tpm) {
    let sw = Swtpm::start().unwrap();
    let tpm = Tpm::open(&sw.tcti()).unwrap();
    (sw, tpm)
}

/// The kernel's generator, read from `/dev/urandom` (the verifier passes its own).
struct Urandom(std::fs::File);

impl Urandom {
    fn new() -> Urandom {
        Urandom(std::fs::File::open("/dev/urandom").unwrap())
    }
}

impl RngCore for Urandom {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.read_exact(dest).unwrap();
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Urandom {}

/// Asserts that the TPM itself refused `TPM2_ActivateCredential` (not the marshalling before
/// it), without panicking on the way.
fn assert_refused(result: Result<CredentialSecret, TpmError>, what: &str) {
    match result {
        Ok(_) => panic!("{what}: the credential was activated"),
        Err(TpmError::Command { op, .. }) => assert_eq!(op, "ActivateCredential", "{what}"),
        Err(e) => panic!("{what}: not a TPM refusal: {e}"),
    }
}

fn ak_alg(ek: EkAlg) -> AkAlg {
    match ek {
        EkAlg::Rsa2048 => AkAlg::Rsa2048,
        EkAlg::EccP256 => AkAlg::EccP256,
    }
}

/// A new AK under the EK `alg`, as blobs, and its Name as the TPM reports it.
fn new_ak(tpm: &mut Tpm, alg: EkAlg) -> (AkRef, Vec<u8>) {
    let blobs = tpm.create_ak(alg, ak_alg(alg)).unwrap();
    let ak = AkRef::Blobs { blobs, parent: alg };
    let public = tpm.ak_public(&ak).unwrap();
    // The Name the verifier computes from the AK public area is the TPM's.
    assert_eq!(
        Public::parse(&public.tpm2b_public).unwrap().name(),
        public.name
    );
    (ak, public.name)
}

fn random_secret(rng: &mut Urandom) -> [u8; 32] {
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    secret
}

/// The TPM recovers exactly the secret, for a full-size (32-byte) and a 1-byte credential.
fn activates(alg: EkAlg) {
    let (_sw, mut tpm) = start();
    let mut rng = Urandom::new();
    let ek = tpm.ek_public_tpm2b(alg).unwrap();
    let (ak, name) = new_ak(&mut tpm, alg);
    let secret = random_secret(&mut rng);
    for credential in [&secret[..], &secret[..1]] {
        let made = make_credential(&ek, &name, credential, &mut rng).unwrap();
        let got = tpm
            .activate_credential(&ak, alg, &made.credential_blob, &made.secret)
            .unwrap();
        assert_eq!(got.expose(), credential, "{}", alg.name());
    }
}

#[test]
fn rsa2048_ek_activates_a_rust_made_credential() {
    activates(EkAlg::Rsa2048);
}

#[test]
fn eccp256_ek_activates_a_rust_made_credential() {
    activates(EkAlg::EccP256);
}

/// A credential made for another AK's Name does not activate with this AK.
fn refuses_other_ak(alg: EkAlg) {
    let (_sw, mut tpm) = start();
    let mut rng = Urandom::new();
    let ek = tpm.ek_public_tpm2b(alg).unwrap();
    let (ak, _) = new_ak(&mut tpm, alg);
    let (other, other_name) = new_ak(&mut tpm, alg);
    let secret = random_secret(&mut rng);
    let made = make_credential(&ek, &other_name, &secret, &mut rng).unwrap();
    assert_refused(
        tpm.activate_credential(&ak, alg, &made.credential_blob, &made.secret),
        alg.name(),
    );
    // The AK it was made for does activate it: the refusal above is about the Name.
    let got = tpm
        .activate_credential(&other, alg, &made.credential_blob, &made.secret)
        .unwrap();
    assert_eq!(got.expose(), secret);
}

#[test]
fn rsa2048_credential_for_another_ak_is_refused() {
    refuses_other_ak(EkAlg::Rsa2048);
}

#[test]
fn eccp256_credential_for_another_ak_is_refused() {
    refuses_other_ak(EkAlg::EccP256);
}

/// A credential made for another TPM's EK (same AK Name) does not activate on this TPM.
fn refuses_other_ek(alg: EkAlg) {
    let (_sw, mut tpm) = start();
    let (_other_sw, mut other_tpm) = start();
    let mut rng = Urandom::new();
    let other_ek = other_tpm.ek_public_tpm2b(alg).unwrap();
    assert_ne!(other_ek, tpm.ek_public_tpm2b(alg).unwrap());
    let (ak, name) = new_ak(&mut tpm, alg);
    let made = make_credential(&other_ek, &name, &random_secret(&mut rng), &mut rng).unwrap();
    assert_refused(
        tpm.activate_credential(&ak, alg, &made.credential_blob, &made.secret),
        alg.name(),
    );
}

#[test]
fn rsa2048_credential_for_another_tpm_is_refused() {
    refuses_other_ek(EkAlg::Rsa2048);
}

#[test]
fn eccp256_credential_for_another_tpm_is_refused() {
    refuses_other_ek(EkAlg::EccP256);
}

/// Flipping one bit anywhere (outer HMAC, encrypted credential, encrypted seed) makes the TPM
/// refuse the credential; the untouched credential still activates afterwards.
fn refuses_tampering(alg: EkAlg) {
    let (_sw, mut tpm) = start();
    let mut rng = Urandom::new();
    let ek = tpm.ek_public_tpm2b(alg).unwrap();
    let (ak, name) = new_ak(&mut tpm, alg);
    let secret = random_secret(&mut rng);
    let made = make_credential(&ek, &name, &secret, &mut rng).unwrap();
    let blob_len = made.credential_blob.len();
    // 2-byte size || 32-byte HMAC || 2 + 32 encrypted bytes.
    assert_eq!(blob_len, 2 + 32 + 2 + 32);
    let mut tampered: Vec<MadeCredential> = [2, 20, 34, 35, 50, blob_len - 1]
        .into_iter()
        .map(|i| {
            let mut t = made.clone();
            t.credential_blob[i] ^= 0x01;
            t
        })
        .collect();
    for i in [3, made.secret.len() / 2, made.secret.len() - 1] {
        let mut t = made.clone();
        t.secret[i] ^= 0x01;
        tampered.push(t);
    }
    for t in &tampered {
        assert_refused(
            tpm.activate_credential(&ak, alg, &t.credential_blob, &t.secret),
            alg.name(),
        );
    }
    let got = tpm
        .activate_credential(&ak, alg, &made.credential_blob, &made.secret)
        .unwrap();
    assert_eq!(got.expose(), secret);
}

#[test]
fn rsa2048_tampered_credential_is_refused() {
    refuses_tampering(EkAlg::Rsa2048);
}

#[test]
fn eccp256_tampered_credential_is_refused() {
    refuses_tampering(EkAlg::EccP256);
}
