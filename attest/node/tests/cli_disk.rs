//! `warrant disk` on LUKS2 image files (pbkdf2, 1000 iterations, for speed), each test with its
//! own swtpm: enroll, unlock, recovery, reseal, wipe, systemd-cryptenroll in both directions,
//! and corrupted input that must change nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir};
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tests::swtpm::Swtpm;

/// Runs `warrant ARGS` with `stdin`.
fn warrant_in(args: &[&str], tcti: &str, stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warrant"))
        .args(args)
        .env("WARRANT_TCTI", tcti)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    out
}

fn warrant(args: &[&str], tcti: &str) -> Output {
    warrant_in(args, tcti, b"")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A 20 MiB LUKS2 image with passphrase `key` in keyslot 0, and the key file (0600).
fn volume(dir: &Path) -> (PathBuf, PathBuf) {
    tests::luks2_image(dir, "disk", b"correct horse battery staple", &[]).unwrap()
}

/// `warrant disk enroll IMG --pcrs PCRS --unlock-key-file KEY`.
fn enroll(img: &Path, pcrs: &str, key: &Path, tcti: &str) -> Output {
    warrant(
        &[
            "disk",
            "enroll",
            path(img),
            "--pcrs",
            pcrs,
            "--unlock-key-file",
            path(key),
        ],
        tcti,
    )
}

/// `cryptsetup open --test-passphrase` with `key` on stdin.
fn opens_with(img: &Path, key: &[u8]) -> bool {
    let mut child = Command::new("cryptsetup")
        .args(["open", "--test-passphrase", "--key-file", "-"])
        .arg(img)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(key).unwrap();
    child.wait().unwrap().success()
}

fn status(img: &Path, tcti: &str) -> Value {
    let out = warrant(&["disk", "status", path(img), "--json"], tcti);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn extend_pcr7(tcti: &str) {
    let out = Command::new("tpm2_pcrextend")
        .args([
            "-T",
            tcti,
            "7:sha256=0000000000000000000000000000000000000000000000000000000000000001",
        ])
        .output()
        .expect("tpm2_pcrextend (tpm2-tools)");
    assert!(out.status.success());
}

#[test]
fn enroll_unlock_recover_and_reseal() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);

    let out = enroll(&img, "7", &key, &t);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("enrolled keyslot 1"), "{}", text(&out));
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert!(out.status.success(), "{}", text(&out));
    let s = status(&img, &t);
    assert_eq!(s["keyslots"], serde_json::json!([0, 1]));
    assert_eq!(s["tokens"][0]["type"], "systemd-tpm2");
    assert_eq!(s["tokens"][0]["would_unseal"], true);
    // systemd's own token plugin parses the token (luksDump lists its fields).
    let dump = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(&img)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("systemd-tpm2"), "{dump}");

    let out = warrant(
        &[
            "disk",
            "recovery-key",
            path(&img),
            "--unlock-key-file",
            path(&key),
        ],
        &t,
    );
    assert!(out.status.success(), "{}", text(&out));
    let recovery = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(recovery.len(), 71, "{recovery}");
    assert!(opens_with(&img, recovery.as_bytes()));
    assert!(!text(&out).contains("correct horse"), "no key in output");

    // The boot changes: the TPM keeps the key, with a clear reason; the recovery key opens.
    extend_pcr7(&t);
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("PCRs changed since enrollment"),
        "{}",
        text(&out)
    );
    assert_eq!(status(&img, &t)["tokens"][0]["would_unseal"], false);
    assert!(opens_with(&img, recovery.as_bytes()));

    // Reseal from the recovery key: TPM unlock is back, the stale slot is gone.
    let rk = dir.join("rk");
    std::fs::write(&rk, recovery.as_bytes()).unwrap();
    let out = warrant(
        &["disk", "reseal", path(&img), "--unlock-key-file", path(&rk)],
        &t,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("removed stale TPM keyslots 1"),
        "{}",
        text(&out)
    );
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert!(out.status.success(), "{}", text(&out));
    let s = status(&img, &t);
    assert_eq!(s["keyslots"], serde_json::json!([0, 2, 3]));
    assert_eq!(s["tokens"].as_array().unwrap().len(), 1);
}

#[test]
fn a_pin_is_required_and_checked() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);
    let out = warrant_in(
        &[
            "disk",
            "enroll",
            path(&img),
            "--pin",
            "--unlock-key-file",
            path(&key),
        ],
        &t,
        b"1234\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = warrant_in(
        &["disk", "unlock", path(&img), "--test", "--pin"],
        &t,
        b"1234\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = warrant_in(
        &["disk", "unlock", path(&img), "--test", "--pin"],
        &t,
        b"9999\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("wrong PIN"), "{}", text(&out));
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("PIN"), "{}", text(&out));
}

#[test]
fn systemd_cryptenroll_and_warrant_open_each_others_volumes() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);
    // Enrolled by systemd, unlocked by Warrant.
    let out = Command::new("systemd-cryptenroll")
        .arg(format!("--tpm2-device={t}"))
        .arg(format!("--unlock-key-file={}", key.display()))
        .arg("--tpm2-pcrs=7")
        .arg(&img)
        .output()
        .expect("systemd-cryptenroll (Debian's systemd)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert!(out.status.success(), "{}", text(&out));

    // Enrolled by Warrant: systemd-cryptenroll sees the same policy already enrolled.
    let (img2, key2) = {
        let d = dir.join("second");
        std::fs::create_dir_all(&d).unwrap();
        volume(&d)
    };
    let out = enroll(&img2, "7", &key2, &t);
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new("systemd-cryptenroll")
        .arg(format!("--tpm2-device={t}"))
        .arg(format!("--unlock-key-file={}", key2.display()))
        .arg("--tpm2-pcrs=7")
        .arg(&img2)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already enrolled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);
    let before = std::fs::read(&img).unwrap();

    // A wrong unlock key: refused before the TPM is asked, nothing written.
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, b"not the passphrase").unwrap();
    let out = enroll(&img, "7", &wrong, &t);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("does not open the volume"),
        "{}",
        text(&out)
    );
    assert!(std::fs::read(&img).unwrap() == before, "the image changed");

    // No TPM token yet: unlock and wipe say so.
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no TPM"), "{}", text(&out));

    // Both header copies damaged: a clear error, and the file is left as it was.
    let mut broken = before.clone();
    broken[200] ^= 0xff; // in the primary's checksummed area
    broken[16384 + 200] ^= 0xff; // and the secondary's
    let bad = dir.join("broken.img");
    std::fs::write(&bad, &broken).unwrap();
    for args in [
        vec!["disk", "status", path(&bad)],
        vec!["disk", "unlock", path(&bad), "--test"],
        vec![
            "disk",
            "enroll",
            path(&bad),
            "--unlock-key-file",
            path(&key),
        ],
    ] {
        let out = warrant(&args, &t);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("broken.img"), "{}", text(&out));
    }
    assert!(
        std::fs::read(&bad).unwrap() == broken,
        "the broken image changed"
    );

    // Not a LUKS volume at all.
    let plain = dir.join("plain.img");
    std::fs::write(&plain, vec![0u8; 65536]).unwrap();
    let out = warrant(&["disk", "status", path(&plain)], &t);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Wiping the only keyslots would strand the data: refused.
    let out = enroll(&img, "7", &key, &t);
    assert!(out.status.success(), "{}", text(&out));
    let kill = Command::new("cryptsetup")
        .args(["luksKillSlot", "--batch-mode"])
        .arg(&img)
        .arg("0")
        .output()
        .unwrap();
    assert!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let out = warrant(&["disk", "wipe-slot", path(&img), "--tpm"], &t);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("strand"), "{}", text(&out));
    let out = warrant(&["disk", "unlock", path(&img), "--test"], &t);
    assert!(out.status.success(), "still opens: {}", text(&out));
}

/// Extends PCR 11 as systemd-stub does for `uki`, then as systemd-pcrphase does for
/// `enter-initrd`: the PCR 11 of a node booted from that UKI, at the time its disk unlocks.
fn boot_uki(tcti: &str, uki: &[u8]) {
    use measure::alg::HashAlg::Sha256;
    let parsed = measure::uki::Uki::parse(uki).unwrap();
    let mut tpm = tpm::Tpm::open(tcti).unwrap();
    for (name, content) in parsed.measured() {
        let name_digest = Sha256.hash_parts(&[name.as_bytes(), &[0]]);
        tpm.extend_digests(11, &[(Sha256, name_digest)]).unwrap();
        tpm.extend_digests(11, &[(Sha256, content.digest(Sha256))])
            .unwrap();
    }
    tpm.extend_digests(11, &[(Sha256, Sha256.hash(b"enter-initrd"))])
        .unwrap();
}

#[test]
fn status_tells_whether_a_new_uki_will_still_unlock() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);
    let uki_path = common::testdata("uki/uki.efi");
    let uki = std::fs::read(&uki_path).unwrap();
    boot_uki(&t, &uki);
    let out = enroll(&img, "7,11", &key, &t);
    assert!(out.status.success(), "{}", text(&out));

    // The same UKI: still unseals. Another command line in it: would not.
    let out = warrant(
        &[
            "disk",
            "status",
            path(&img),
            "--json",
            "--uki",
            path(&uki_path),
        ],
        &t,
    );
    assert!(out.status.success(), "{}", text(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["tokens"][0]["would_unseal"], true);
    assert_eq!(s["tokens"][0]["would_unseal_with_uki"], true);

    let parsed = measure::uki::Uki::parse(&uki).unwrap();
    let cmdline = parsed.section(".cmdline").unwrap();
    let mut other = uki.clone();
    let at = cmdline.pointer_to_raw_data as usize;
    other[at] ^= 0x01;
    let other_path = dir.join("other.efi");
    std::fs::write(&other_path, &other).unwrap();
    let out = warrant(
        &["disk", "status", path(&img), "--uki", path(&other_path)],
        &t,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("would NOT unseal"), "{}", text(&out));
}

#[test]
fn a_corrupted_token_is_a_clear_error_and_changes_nothing() {
    let tpm = Swtpm::start().unwrap();
    let t = tpm.tcti();
    let dir = tempdir();
    let (img, key) = volume(&dir);
    let out = enroll(&img, "7", &key, &t);
    assert!(out.status.success(), "{}", text(&out));
    // The token's tpm2-blob is no longer base64, in both header copies, each with its
    // checksum recomputed (SHA-256 over hdr_size bytes, csum field at 0x1c0 zeroed): a header
    // cryptsetup accepts, with a token that is wrong.
    let mut image = std::fs::read(&img).unwrap();
    let hdr_size = u64::from_be_bytes(image[8..16].try_into().unwrap()) as usize;
    for copy in [0, hdr_size] {
        let area = &mut image[copy..copy + hdr_size];
        let json = String::from_utf8_lossy(&area[4096..]).to_string();
        let at = json.find("\"tpm2-blob\":\"").unwrap() + "\"tpm2-blob\":\"".len();
        area[4096 + at..4096 + at + 4].copy_from_slice(b"!!!!");
        area[0x1c0..0x1c0 + 64].fill(0);
        let digest = measure::alg::HashAlg::Sha256.hash(area);
        area[0x1c0..0x1c0 + 32].copy_from_slice(&digest);
    }
    std::fs::write(&img, &image).unwrap();
    let dump = Command::new("cryptsetup")
        .arg("luksDump")
        .arg(&img)
        .output()
        .unwrap();
    assert!(dump.status.success(), "cryptsetup reads the header");

    for args in [
        vec!["disk", "unlock", path(&img), "--test"],
        vec!["disk", "status", path(&img)],
        vec![
            "disk",
            "reseal",
            path(&img),
            "--unlock-key-file",
            path(&key),
        ],
    ] {
        let out = warrant(&args, &t);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("tpm2-blob"), "{args:?}: {}", text(&out));
    }
    assert!(std::fs::read(&img).unwrap() == image, "the image changed");
    // The passphrase still opens it: nothing was stranded.
    assert!(opens_with(&img, b"correct horse battery staple"));
}
