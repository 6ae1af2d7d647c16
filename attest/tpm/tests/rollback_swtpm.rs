//! Anti-rollback (`tpm::rollback`) against swtpm, one per test: the SVN counter only goes up,
//! the offline policy digest is the TPM's own (a tpm2-tools trial session), an image older
//! than the counter is refused by the TPM (PolicyNV), and a deleted or redefined counter fails
//! closed.
//!
//! Needs `openssl` and tpm2-tools (`scripts/install-deps.sh`); a missing tool fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::alg::HashAlg;
use measure::luks2::PcrBank;
use measure::uki::policy::{BlindingRng, PolicySigningKey};
use measure::uki::svn::{sign_svn_policy, SvnBinding, SvnPcrSignature};
use std::path::Path;
use std::process::{Command, Output};
use tests::openssl::rsa_key;
use tests::swtpm::Swtpm;
use tpm::rollback::{
    self, svn_index_name, svn_policy_digest, AntiRollbackToken, RollbackError, DEFAULT_SVN_INDEX,
    MAX_SVN_STEP,
};
use tpm::systemd::{SignedPolicyKey, SystemdError};
use tpm::Tpm;

fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/install-deps.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn start() -> (Swtpm, Tpm) {
    let sw = Swtpm::start().unwrap();
    let tpm = Tpm::open(&sw.tcti()).unwrap();
    (sw, tpm)
}

fn tpm2(sw: &Swtpm, tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("TPM2TOOLS_TCTI", sw.tcti());
    c
}

/// Defines the 8-byte NV index `handle` by hand (owner authorisation), with `attributes`.
fn nvdefine(sw: &Swtpm, handle: &str, attributes: &str) {
    ok(tpm2(sw, "tpm2_nvdefine").args([handle, "-C", "o", "-s", "8", "-a", attributes]));
}

fn pcr11(tpm: &mut Tpm) -> Vec<u8> {
    tpm.read_pcrs(&[HashAlg::Sha256])
        .unwrap()
        .get(HashAlg::Sha256, 11)
        .unwrap()
        .to_vec()
}

/// A binding to the default counter at `svn`.
fn at_svn(svn: u64) -> SvnBinding {
    SvnBinding {
        svn,
        index: DEFAULT_SVN_INDEX,
        index_name: svn_index_name(DEFAULT_SVN_INDEX),
    }
}

/// A `.pcrsig` with one SVN-bound entry per SVN, for PCR 11 = `value`.
fn svn_pcrsig(key_pem: &[u8], value: &[u8], svns: &[u64]) -> Vec<u8> {
    let key = PolicySigningKey::from_pem(key_pem).unwrap();
    let pkfp = key.public_key().fingerprint().unwrap();
    let mut rng = BlindingRng::from_seed([3; 32]);
    let entries = svns
        .iter()
        .map(|svn| sign_svn_policy(&key, &pkfp, value, &at_svn(*svn), &mut rng).unwrap())
        .collect();
    let sig = SvnPcrSignature([("sha256".to_string(), entries)].into_iter().collect());
    serde_json::to_vec(&sig).unwrap()
}

/// A `.pcrsig` with one entry for PCR 11 = `value`, signed over its `pol` alone (no policyRef),
/// as systemd signs: a plain PolicyPCR entry, or with `svn` an SVN-bound one (PolicyPCR then
/// PolicyNV) with its `warrant-svn*` fields.
fn signed_without_ref(key_pem: &[u8], value: &[u8], svn: Option<&SvnBinding>) -> Vec<u8> {
    let key = PolicySigningKey::from_pem(key_pem).unwrap();
    let pol = match svn {
        None => measure::uki::policy::policy_pcr_digest(HashAlg::Sha256, 11, value),
        Some(b) => svn_policy_digest(value, b.svn, &b.index_name),
    }
    .unwrap();
    let sig = key
        .sign(&mut BlindingRng::from_seed([1; 32]), HashAlg::Sha256, &pol)
        .unwrap();
    let mut entry = serde_json::json!({
        "pcrs": [11],
        "pkfp": hex::encode(key.public_key().fingerprint().unwrap()),
        "pol": hex::encode(&pol),
        "sig": measure::uki::policy::base64(&sig),
    });
    if let Some(b) = svn {
        entry["warrant-svn"] = b.svn.into();
        entry["warrant-svn-index"] = format!("{:#010x}", b.index).into();
        entry["warrant-svn-index-name"] = hex::encode(&b.index_name).into();
    }
    serde_json::to_vec(&serde_json::json!({ "sha256": [entry] })).unwrap()
}

/// Seals an anti-rollback token to "any PCR 11 the key signs, bound to the SVN counter".
fn enroll(tpm: &mut Tpm, pub_pem: &Path) -> (AntiRollbackToken, Vec<u8>) {
    let pem = std::fs::read(pub_pem).unwrap();
    let signed = SignedPolicyKey {
        public_key_pem: &pem,
        pcrs: &[11],
    };
    let (token, pass) =
        rollback::seal(tpm, &[], PcrBank::Sha256, None, &signed, DEFAULT_SVN_INDEX).unwrap();
    (token, pass.to_vec())
}

fn rolled_back(e: &SystemdError) -> Option<(u64, Option<u64>)> {
    match e {
        SystemdError::Rollback(RollbackError::RolledBack { svn, tpm_svn, .. }) => {
            Some((*svn, *tpm_svn))
        }
        _ => None,
    }
}

#[test]
fn counter_is_idempotent_and_never_goes_down() {
    let (_sw, mut tpm) = start();
    let idx = DEFAULT_SVN_INDEX;
    assert!(matches!(
        tpm.svn_read(idx),
        Err(RollbackError::IndexMissing { index }) if index == idx
    ));
    let first = tpm.svn_init(idx).unwrap();
    // A TPM that never had a counter starts at 1 (the first increment).
    assert_eq!(first.value, 1);
    assert_eq!(first.name, svn_index_name(idx));
    assert_eq!(tpm.svn_init(idx).unwrap(), first);
    let (before, after) = tpm.svn_advance(idx, 3).unwrap();
    assert_eq!((before.value, after.value), (1, 3));
    // Lower or equal: nothing changes.
    let (before, after) = tpm.svn_advance(idx, 1).unwrap();
    assert_eq!((before.value, after.value), (3, 3));
    assert_eq!(tpm.svn_advance(idx, 3).unwrap().1.value, 3);
    assert_eq!(tpm.svn_init(idx).unwrap().value, 3);
    assert!(matches!(
        tpm.svn_advance(idx, 4 + MAX_SVN_STEP),
        Err(RollbackError::StepTooLarge { from: 3, .. })
    ));
    assert_eq!(tpm.svn_read(idx).unwrap().value, 3);
    assert!(matches!(
        tpm.svn_init(0x8100_0001),
        Err(RollbackError::BadIndex { .. })
    ));
}

/// The offline digest (PolicyPCR then PolicyNV with the Name computed from the fixed public
/// area) equals a trial session's on the TPM, run by tpm2-tools.
#[test]
fn offline_policy_digest_matches_a_trial_session() {
    let (sw, mut tpm) = start();
    let idx = DEFAULT_SVN_INDEX;
    tpm.svn_init(idx).unwrap();
    let value = pcr11(&mut tpm);
    let dir = sw.dir();
    let session = dir.join("trial.ctx");
    let operand = dir.join("operand.bin");
    let digest = dir.join("policy.bin");
    std::fs::write(&operand, 2u64.to_be_bytes()).unwrap();
    ok(tpm2(&sw, "tpm2_startauthsession").arg("-S").arg(&session));
    ok(tpm2(&sw, "tpm2_policypcr")
        .arg("-S")
        .arg(&session)
        .args(["-l", "sha256:11"]));
    ok(tpm2(&sw, "tpm2_policynv")
        .arg("-S")
        .arg(&session)
        .args(["-C", &format!("{idx:#010x}")])
        .arg("-i")
        .arg(&operand)
        .arg("-L")
        .arg(&digest)
        .args([&format!("{idx:#010x}"), "ule"]));
    ok(tpm2(&sw, "tpm2_flushcontext").arg(&session));
    let trial = std::fs::read(&digest).unwrap();
    let offline = svn_policy_digest(&value, 2, &svn_index_name(idx)).unwrap();
    assert_eq!(hex::encode(&trial), hex::encode(&offline));
    // Another SVN, another digest.
    assert_ne!(
        svn_policy_digest(&value, 3, &svn_index_name(idx)).unwrap(),
        offline
    );
}

#[test]
fn an_image_older_than_the_counter_is_refused_by_the_tpm() {
    let (sw, mut tpm) = start();
    let idx = DEFAULT_SVN_INDEX;
    let (key_pem, pub_pem) = rsa_key(sw.dir(), "policy").unwrap();
    // Enrolling needs the counter.
    let pem = std::fs::read(&pub_pem).unwrap();
    let signed = SignedPolicyKey {
        public_key_pem: &pem,
        pcrs: &[11],
    };
    let err = rollback::seal(&mut tpm, &[], PcrBank::Sha256, None, &signed, idx).unwrap_err();
    assert!(
        matches!(
            err,
            SystemdError::Rollback(RollbackError::IndexMissing { .. })
        ),
        "{err:?}"
    );
    tpm.svn_init(idx).unwrap();
    tpm.svn_advance(idx, 2).unwrap();
    let (token, pass) = enroll(&mut tpm, &pub_pem);
    // The token survives its JSON form.
    let again = AntiRollbackToken::from_object(&token.to_object()).unwrap();
    assert_eq!(again, token);

    let value = pcr11(&mut tpm);
    let svn2 = svn_pcrsig(&key_pem, &value, &[2]);
    let svn3 = svn_pcrsig(&key_pem, &value, &[3]);
    assert_eq!(
        rollback::unseal(&mut tpm, &token, None, Some(&svn2))
            .unwrap()
            .as_slice(),
        pass.as_slice()
    );
    // A newer image booted: the counter moves to 3.
    tpm.svn_advance(idx, 3).unwrap();
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn2)).unwrap_err();
    assert_eq!(rolled_back(&err), Some((2, Some(3))), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("rolled back: this image's SVN 2 is older than the TPM's"),
        "{err}"
    );
    assert_eq!(
        rollback::unseal(&mut tpm, &token, None, Some(&svn3))
            .unwrap()
            .as_slice(),
        pass.as_slice()
    );
    // Both signatures in one file: the newest is used.
    let both = svn_pcrsig(&key_pem, &value, &[2, 3]);
    assert!(rollback::unseal(&mut tpm, &token, None, Some(&both)).is_ok());
    // Advancing to 1 changes nothing: the SVN 2 signature stays refused.
    tpm.svn_advance(idx, 1).unwrap();
    assert_eq!(tpm.svn_read(idx).unwrap().value, 3);
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn2)).unwrap_err();
    assert_eq!(rolled_back(&err), Some((2, Some(3))), "{err:?}");

    // A plain (PolicyPCR-only) signature by the same key never authorises the token: it is
    // not even a candidate, and the policyRef would make the TPM refuse it anyway.
    let plain = signed_without_ref(&key_pem, &value, None);
    let err = rollback::unseal(&mut tpm, &token, None, Some(&plain)).unwrap_err();
    assert!(
        matches!(err, SystemdError::NoSvnSignatureForThisBoot { .. }),
        "{err:?}"
    );
    // One `.pcrsig` holding both kinds serves both kinds of token: a plain systemd-tpm2 token
    // by the same key uses the plain entry, the anti-rollback token the SVN one.
    let mixed = {
        let mut a: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&svn3).unwrap();
        let extra = b["sha256"].as_array().unwrap().clone();
        a["sha256"].as_array_mut().unwrap().extend(extra);
        serde_json::to_vec(&a).unwrap()
    };
    assert_eq!(
        rollback::unseal(&mut tpm, &token, None, Some(&mixed))
            .unwrap()
            .as_slice(),
        pass.as_slice()
    );
    let (plain_token, plain_pass) = tpm::systemd::seal(
        &mut tpm,
        &[],
        PcrBank::Sha256,
        None,
        Some(&SignedPolicyKey {
            public_key_pem: &pem,
            pcrs: &[11],
        }),
    )
    .unwrap();
    assert_eq!(
        tpm::systemd::unseal(&mut tpm, &plain_token, None, Some(&mixed))
            .unwrap()
            .as_slice(),
        plain_pass.as_slice()
    );
    // An SVN-only file does not open the plain token: its entries are never candidates.
    let err = tpm::systemd::unseal(&mut tpm, &plain_token, None, Some(&svn3)).unwrap_err();
    assert!(
        matches!(err, SystemdError::NoSignatureForThisBoot { .. }),
        "{err:?}"
    );
    // An SVN entry signed without the policyRef (over H(pol), as a plain policy would be):
    // it passes Warrant's own selection, and the TPM refuses the signature (VerifySignature
    // checks H(pol || "warrant-svn-v1")).
    let no_ref = signed_without_ref(&key_pem, &value, Some(&at_svn(3)));
    let err = rollback::unseal(&mut tpm, &token, None, Some(&no_ref)).unwrap_err();
    assert!(matches!(err, SystemdError::WrongSigner), "{err:?}");
    // Nor does an SVN signature by another key.
    let (other_pem, _) = rsa_key(sw.dir(), "other").unwrap();
    let err = rollback::unseal(
        &mut tpm,
        &token,
        None,
        Some(&svn_pcrsig(&other_pem, &value, &[3])),
    )
    .unwrap_err();
    assert!(matches!(err, SystemdError::WrongSigner), "{err:?}");
    // A kernel update without a new signature: no entry for this boot.
    tpm.extend(11, "new kernel", &sw.dir().join("log.json"))
        .unwrap();
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn3)).unwrap_err();
    assert!(
        matches!(err, SystemdError::NoSvnSignatureForThisBoot { .. }),
        "{err:?}"
    );
}

/// The owner can delete the counter and define it again (same attributes, same Name): the
/// TPM restarts a counter above the highest value it ever held, so the old image stays
/// refused. A missing or foreign index is named and nothing unseals.
#[test]
fn a_deleted_or_redefined_counter_fails_closed() {
    let (sw, mut tpm) = start();
    let idx = DEFAULT_SVN_INDEX;
    let handle = format!("{idx:#010x}");
    let (key_pem, pub_pem) = rsa_key(sw.dir(), "policy").unwrap();
    tpm.svn_init(idx).unwrap();
    tpm.svn_advance(idx, 2).unwrap();
    let (token, _) = enroll(&mut tpm, &pub_pem);
    let value = pcr11(&mut tpm);
    let svn2 = svn_pcrsig(&key_pem, &value, &[2]);
    assert!(rollback::unseal(&mut tpm, &token, None, Some(&svn2)).is_ok());

    ok(tpm2(&sw, "tpm2_nvundefine").args(["-C", "o", &handle]));
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn2)).unwrap_err();
    assert!(
        matches!(
            err,
            SystemdError::Rollback(RollbackError::IndexMissing { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");

    // Defined again by someone else, as a bit field (TPM_NT_BITS), and set to 0: refused
    // as foreign, whatever its value.
    nvdefine(&sw, &handle, "nt=bits|ownerwrite|authread|ownerread|no_da");
    ok(tpm2(&sw, "tpm2_nvsetbits").args(["-C", "o", "-i", "0", &handle]));
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn2)).unwrap_err();
    assert!(
        matches!(
            err,
            SystemdError::Rollback(RollbackError::NotSvnIndex { .. })
        ),
        "{err:?}"
    );
    assert!(matches!(
        tpm.svn_init(idx),
        Err(RollbackError::NotSvnIndex { .. })
    ));
    ok(tpm2(&sw, "tpm2_nvundefine").args(["-C", "o", &handle]));

    // Defined again exactly as Warrant does (same Name): the counter comes back above the
    // highest value it held, so the SVN 2 image is still refused.
    let fresh = tpm.svn_init(idx).unwrap();
    assert!(fresh.value > 2, "counter restarted at {}", fresh.value);
    let err = rollback::unseal(&mut tpm, &token, None, Some(&svn2)).unwrap_err();
    assert_eq!(rolled_back(&err).map(|r| r.0), Some(2), "{err:?}");
    // An image signed at or above the new counter unseals again.
    let newer = svn_pcrsig(&key_pem, &value, &[fresh.value]);
    assert!(rollback::unseal(&mut tpm, &token, None, Some(&newer)).is_ok());

    // Defined but never incremented (`WRITTEN` clear): named, not unsealed.
    ok(tpm2(&sw, "tpm2_nvundefine").args(["-C", "o", &handle]));
    nvdefine(
        &sw,
        &handle,
        "nt=counter|ownerwrite|authread|ownerread|no_da",
    );
    let err = rollback::unseal(&mut tpm, &token, None, Some(&newer)).unwrap_err();
    assert!(
        matches!(
            err,
            SystemdError::Rollback(RollbackError::Uninitialized { .. })
        ),
        "{err:?}"
    );
}
