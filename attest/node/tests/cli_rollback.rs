//! Anti-rollback end to end, each test with its own swtpm: `warrant tpm svn`, `warrant uki
//! sign-policy --svn` on the committed UKI fixture "booted" into the swtpm's PCR 11, and
//! `warrant disk enroll --anti-rollback` / `unlock` / `status` on a LUKS2 image.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, testdata};
use measure::alg::HashAlg;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::swtpm::Swtpm;

const INDEX: &str = "0x01805752";

fn warrant(args: &[&str], tcti: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_warrant"))
        .args(args)
        .env("WARRANT_TCTI", tcti)
        .output()
        .unwrap();
    no_panic(&out);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fixture(name: &str) -> PathBuf {
    testdata("uki").join(name)
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

fn refused(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(text(out).contains(needle), "{}", text(out));
}

fn tpm2(tcti: &str, tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .env("TPM2TOOLS_TCTI", tcti)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (tpm2-tools)"));
    assert!(out.status.success(), "{tool}: {}", text(&out));
}

/// Extends PCR 11 (sha256) as systemd-stub does when it boots the fixture UKI, then
/// `enter-initrd` as systemd-pcrphase does.
fn boot_fixture(tcti: &str) {
    let bytes = std::fs::read(fixture("uki.efi")).unwrap();
    let uki = measure::uki::Uki::parse(&bytes).unwrap();
    let sha = HashAlg::Sha256;
    let mut digests = Vec::new();
    for (name, content) in uki.measured() {
        digests.push(sha.hash_parts(&[name.as_bytes(), &[0]]));
        digests.push(content.digest(sha));
    }
    digests.push(sha.hash(b"enter-initrd"));
    for d in digests {
        tpm2(
            tcti,
            "tpm2_pcrextend",
            &[&format!("11:sha256={}", hex::encode(d))],
        );
    }
}

/// `warrant uki sign-policy` of the fixture for the enter-initrd phase, `--svn` if given,
/// written to `dir/NAME.json`.
fn sign(dir: &Path, name: &str, svn: Option<u64>, tcti: &str) -> PathBuf {
    let uki = fixture("uki.efi");
    let key = fixture("test-key.pem");
    let mut args = vec![
        "uki",
        "sign-policy",
        path(&uki),
        "--key",
        path(&key),
        "--phase",
        "enter-initrd",
        "--bank",
        "sha256",
    ];
    let svn_text = svn.map(|v| v.to_string());
    if let Some(v) = &svn_text {
        args.extend(["--svn", v]);
    }
    let out = warrant(&args, tcti);
    ok(&out);
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, &out.stdout).unwrap();
    file
}

fn unlock(img: &Path, sig: &Path, tcti: &str) -> Output {
    warrant(
        &[
            "disk",
            "unlock",
            path(img),
            "--test",
            "--signature",
            path(sig),
        ],
        tcti,
    )
}

fn status(img: &Path, tcti: &str) -> Value {
    let out = warrant(&["disk", "status", path(img), "--json"], tcti);
    ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn svn_show(tcti: &str) -> u64 {
    let out = warrant(&["tpm", "svn", "show", "--json"], tcti);
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["index"], INDEX);
    v["svn"].as_u64().unwrap()
}

#[test]
fn svn_commands_only_go_up() {
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    refused(&warrant(&["tpm", "svn", "show"], &t), "does not exist");
    let out = warrant(&["tpm", "svn", "init"], &t);
    ok(&out);
    assert!(
        text(&out).contains("SVN counter 0x01805752: 1"),
        "{}",
        text(&out)
    );
    ok(&warrant(&["tpm", "svn", "init"], &t));
    assert_eq!(svn_show(&t), 1);
    let out = warrant(&["tpm", "svn", "advance", "3", "--json"], &t);
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["before"].as_u64(), v["after"].as_u64()),
        (Some(1), Some(3))
    );
    let out = warrant(&["tpm", "svn", "advance", "1"], &t);
    ok(&out);
    assert!(text(&out).contains("unchanged"), "{}", text(&out));
    assert_eq!(svn_show(&t), 3);
    // Not an owner NV index: bad input.
    let out = warrant(&["tpm", "svn", "show", "--index", "0x81000001"], &t);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = warrant(&["tpm", "svn", "advance", "5000"], &t);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(svn_show(&t), 3);
}

/// `sign-policy --svn` signs PolicyPCR then PolicyNV over the index Name Warrant computes,
/// records the SVN and the index, and signs the sha256 bank only.
#[test]
fn sign_policy_with_svn_records_and_binds_the_svn() {
    let dir = tempdir();
    let file = sign(&dir, "svn5", Some(5), "unused");
    let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let entries = v["sha256"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["warrant-svn"], 5);
    assert_eq!(e["warrant-svn-index"], INDEX);
    let name = measure::uki::svn::svn_index_name(0x0180_5752);
    assert_eq!(e["warrant-svn-index-name"], hex::encode(&name));
    let calc: Value =
        serde_json::from_slice(&std::fs::read(fixture("calculate.json")).unwrap()).unwrap();
    let predicted = hex::decode(calc["sha256"][0]["hash"].as_str().unwrap()).unwrap();
    assert_eq!(calc["sha256"][0]["phase"], "enter-initrd");
    let pol = measure::uki::svn::svn_policy_digest(&predicted, 5, &name).unwrap();
    assert_eq!(e["pol"], hex::encode(pol));
    // Not a plain PolicyPCR digest.
    let plain = measure::uki::policy::policy_pcr_digest(HashAlg::Sha256, 11, &predicted).unwrap();
    assert_ne!(e["pol"], hex::encode(plain));

    let uki = fixture("uki.efi");
    let key = fixture("test-key.pem");
    let base = ["uki", "sign-policy", path(&uki), "--key", path(&key)];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        warrant(&a, "unused")
    };
    let out = with(&["--svn", "5", "--bank", "sha384"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = with(&["--svn-index", INDEX]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = with(&["--svn", "5", "--svn-index-name", "00"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Another index: another Name in the policy.
    let out = with(&[
        "--svn",
        "5",
        "--svn-index",
        "0x01800001",
        "--phase",
        "enter-initrd",
    ]);
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sha256"][0]["warrant-svn-index"], "0x01800001");
    assert_ne!(v["sha256"][0]["pol"], e["pol"]);
}

/// A swtpm (keep it alive), its TCTI, a scratch folder, a LUKS2 image there and its passphrase
/// file, and the policy key.
fn disk() -> (Swtpm, String, PathBuf, PathBuf, PathBuf, PathBuf) {
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    let dir = tempdir();
    let (img, key) =
        tests::luks2_image(&dir, "disk", b"correct horse battery staple", &[]).unwrap();
    (sw, t, dir, img, key, fixture("pcrpkey"))
}

#[test]
fn anti_rollback_disk_unlock() {
    let (_sw, t, dir, img, key, pcrpkey) = disk();
    let enroll = || {
        warrant(
            &[
                "disk",
                "enroll",
                path(&img),
                "--pcrs",
                "7",
                "--policy-key",
                path(&pcrpkey),
                "--policy-key-pcrs",
                "11",
                "--anti-rollback",
                "--unlock-key-file",
                path(&key),
            ],
            &t,
        )
    };
    // No counter yet: refused before anything is written.
    refused(&enroll(), "does not exist");
    assert_eq!(status(&img, &t)["tokens"].as_array().unwrap().len(), 0);
    // --anti-rollback needs a policy key.
    let out = warrant(
        &[
            "disk",
            "enroll",
            path(&img),
            "--anti-rollback",
            "--unlock-key-file",
            path(&key),
        ],
        &t,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    ok(&warrant(&["tpm", "svn", "init"], &t));
    ok(&warrant(&["tpm", "svn", "advance", "2"], &t));
    let out = enroll();
    ok(&out);
    assert!(text(&out).contains("anti-rollback"), "{}", text(&out));
    let s = status(&img, &t);
    let token = &s["tokens"][0];
    assert_eq!(token["type"], "warrant-tpm2");
    assert_eq!(token["svn_index"], INDEX);
    assert_eq!(token["tpm_svn"], 2);
    assert_eq!(token["signed_policy_pcrs"], serde_json::json!([11]));

    boot_fixture(&t);
    let svn2 = sign(&dir, "svn2", Some(2), &t);
    let svn3 = sign(&dir, "svn3", Some(3), &t);
    let plain = sign(&dir, "plain", None, &t);
    let out = unlock(&img, &svn2, &t);
    ok(&out);
    assert!(
        text(&out).contains("the TPM's key opens it"),
        "{}",
        text(&out)
    );
    // A plain signature of the same image by the same key is not enough.
    refused(&unlock(&img, &plain, &t), "sign-policy --svn");

    // A newer image (SVN 3) booted and advanced the counter: SVN 2 is refused by the TPM.
    ok(&warrant(&["tpm", "svn", "advance", "3"], &t));
    refused(
        &unlock(&img, &svn2, &t),
        "rolled back: this image's SVN 2 is older than the TPM's",
    );
    ok(&unlock(&img, &svn3, &t));
    // Advancing to 1 lowers nothing.
    ok(&warrant(&["tpm", "svn", "advance", "1"], &t));
    assert_eq!(svn_show(&t), 3);
    refused(&unlock(&img, &svn2, &t), "rolled back");
    assert_eq!(status(&img, &t)["tokens"][0]["tpm_svn"], 3);

    // The owner deletes the counter: named, nothing unsealed.
    tpm2(&t, "tpm2_nvundefine", &["-C", "o", INDEX]);
    refused(&unlock(&img, &svn3, &t), "does not exist");
    let token = &status(&img, &t)["tokens"][0];
    assert!(token.get("tpm_svn").is_none(), "{token}");
    assert!(
        token["reason"].as_str().unwrap().contains("does not exist"),
        "{token}"
    );
    // ... and defines it again: the TPM restarts it above 3, so SVN 3 is now refused too.
    ok(&warrant(&["tpm", "svn", "init"], &t));
    let now = svn_show(&t);
    assert!(now > 3, "counter restarted at {now}");
    refused(&unlock(&img, &svn3, &t), "rolled back: this image's SVN 3");
    let newer = sign(&dir, "newer", Some(now), &t);
    ok(&unlock(&img, &newer, &t));
    // The systemd token tooling leaves the anti-rollback token alone; wipe-slot removes it.
    let out = warrant(&["disk", "wipe-slot", path(&img), "--tpm"], &t);
    ok(&out);
    assert_eq!(status(&img, &t)["tokens"].as_array().unwrap().len(), 0);
}

#[test]
fn a_signed_policy_alone_with_pcrs_none() {
    let (_sw, t, dir, img, key, pcrpkey) = disk();
    // Nothing to seal to, or no PCR: refused, nothing written.
    for (pcrs, says) in [
        ("none", "seal the key to nothing"),
        ("7,99", "not a PCR index"),
    ] {
        let enroll = [
            "disk",
            "enroll",
            path(&img),
            "--pcrs",
            pcrs,
            "--unlock-key-file",
        ];
        let mut args = enroll.to_vec();
        args.push(path(&key));
        let out = warrant(&args, &t);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(says), "{}", text(&out));
    }
    assert_eq!(status(&img, &t)["tokens"].as_array().unwrap().len(), 0);
    // Only the signed PCR 11 policy (systemd-cryptenroll --tpm2-pcrs= --tpm2-public-key=).
    let out = warrant(
        &[
            "disk",
            "enroll",
            path(&img),
            "--pcrs",
            "none",
            "--policy-key",
            path(&pcrpkey),
            "--unlock-key-file",
            path(&key),
        ],
        &t,
    );
    ok(&out);
    assert!(
        text(&out).contains("sealed to a policy signed for PCRs 11"),
        "{}",
        text(&out)
    );
    let token = &status(&img, &t)["tokens"][0];
    assert_eq!(token["type"], "systemd-tpm2");
    boot_fixture(&t);
    ok(&unlock(&img, &sign(&dir, "plain", None, &t), &t));
}
