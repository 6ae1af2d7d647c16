//! `warrant tpm seal` / `warrant tpm unseal` as a user runs them, one swtpm per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path};
use measure::alg::HashAlg;
use measure::uki::policy::{
    policy_pcr_digest, BlindingRng, PcrSignature, PolicySigningKey, SignedPolicy,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tests::swtpm::Swtpm;

const SECRET: &[u8] = b"a LUKS key slot secret, 32+ bytes long";

/// Runs `warrant` with `args`, `WARRANT_PIN` set to `pin` if given, and `stdin` piped in.
fn run(args: &[&str], pin: Option<&str>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warrant"));
    cmd.args(args)
        .env_remove("WARRANT_PIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pin) = pin {
        cmd.env("WARRANT_PIN", pin);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    out
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(out: &Output, code: i32, message: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(message), "{err}");
}

struct Files {
    input: PathBuf,
    sealed: PathBuf,
    out: PathBuf,
}

fn files(sw: &Swtpm) -> Files {
    let input = sw.dir().join("secret");
    std::fs::write(&input, SECRET).unwrap();
    Files {
        input,
        sealed: sw.dir().join("sealed.json"),
        out: sw.dir().join("unsealed"),
    }
}

#[test]
fn round_trip_and_pcr_change() {
    use std::os::unix::fs::PermissionsExt as _;
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    let f = files(&sw);
    ok(&run(
        &[
            "tpm",
            "seal",
            "--tcti",
            &t,
            "--pcrs",
            "7,11",
            path(&f.input),
            path(&f.sealed),
        ],
        None,
        b"",
    ));
    let blob: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&f.sealed).unwrap()).unwrap();
    assert_eq!(blob["version"], 1);
    assert_eq!(blob["policy"]["kind"], "pcr");
    assert_eq!(blob["policy"]["pcrs"], serde_json::json!([7, 11]));
    ok(&run(
        &["tpm", "unseal", "--tcti", &t, path(&f.sealed), path(&f.out)],
        None,
        b"",
    ));
    assert_eq!(std::fs::read(&f.out).unwrap(), SECRET);
    let mode = std::fs::metadata(&f.out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_file(&f.out).unwrap();

    let log = sw.dir().join("log.json");
    ok(&run(
        &[
            "tpm",
            "extend",
            "11",
            "--data",
            "new kernel",
            "--event-log",
            path(&log),
            "--tcti",
            &t,
        ],
        None,
        b"",
    ));
    fails(
        &run(
            &["tpm", "unseal", "--tcti", &t, path(&f.sealed), path(&f.out)],
            None,
            b"",
        ),
        1,
        "the PCR policy (sha256: 7,11) does not match this boot (changed: 11)",
    );
    assert!(!f.out.exists(), "OUT written on failure");
}

#[test]
fn another_tpm_and_bad_input() {
    let a = Swtpm::start().unwrap();
    let b = Swtpm::start().unwrap();
    let f = files(&a);
    ok(&run(
        &[
            "tpm",
            "seal",
            "--tcti",
            &a.tcti(),
            "--pcrs",
            "7",
            path(&f.input),
            path(&f.sealed),
        ],
        None,
        b"",
    ));
    fails(
        &run(
            &[
                "tpm",
                "unseal",
                "--tcti",
                &b.tcti(),
                path(&f.sealed),
                path(&f.out),
            ],
            None,
            b"",
        ),
        1,
        "sealed for a different TPM",
    );
    assert!(!f.out.exists());

    // Bad input is exit 2: a missing blob, a blob that is not one, a secret too long.
    let t = a.tcti();
    let missing = a.dir().join("missing.json");
    fails(
        &run(
            &["tpm", "unseal", "--tcti", &t, path(&missing), path(&f.out)],
            None,
            b"",
        ),
        2,
        "missing.json",
    );
    fails(
        &run(
            &["tpm", "unseal", "--tcti", &t, path(&f.input), path(&f.out)],
            None,
            b"",
        ),
        2,
        "sealed blob",
    );
    let big = a.dir().join("big");
    std::fs::write(&big, [1u8; 129]).unwrap();
    fails(
        &run(
            &[
                "tpm",
                "seal",
                "--tcti",
                &t,
                "--pcrs",
                "7",
                path(&big),
                path(&f.sealed),
            ],
            None,
            b"",
        ),
        2,
        "at most 128",
    );
    assert!(!f.out.exists());
}

#[test]
fn pin_from_env_and_stdin() {
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    let f = files(&sw);
    ok(&run(
        &[
            "tpm",
            "seal",
            "--tcti",
            &t,
            "--pcrs",
            "7",
            "--pin",
            path(&f.input),
            path(&f.sealed),
        ],
        Some("1234"),
        b"",
    ));
    let unseal = [
        "tpm",
        "unseal",
        "--tcti",
        &t,
        "--pin",
        path(&f.sealed),
        path(&f.out),
    ];
    fails(&run(&unseal, Some("9999"), b""), 1, "wrong PIN");
    assert!(!f.out.exists());
    // No --pin for a blob that needs one: bad input.
    fails(
        &run(
            &["tpm", "unseal", "--tcti", &t, path(&f.sealed), path(&f.out)],
            None,
            b"",
        ),
        2,
        "sealed with a PIN",
    );
    // From stdin, with its newline.
    ok(&run(&unseal, None, b"1234\n"));
    assert_eq!(std::fs::read(&f.out).unwrap(), SECRET);
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl").args(args).status().unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A `.pcrsig` for PCR 11 holding `value`, signed with the key at `key`.
fn pcrsig(key: &Path, value: &[u8], out: &Path) {
    let key = PolicySigningKey::from_pem(&std::fs::read(key).unwrap()).unwrap();
    let pol = policy_pcr_digest(HashAlg::Sha256, 11, value).unwrap();
    let sig = key
        .sign(&mut BlindingRng::from_seed([1; 32]), HashAlg::Sha256, &pol)
        .unwrap();
    let sig = PcrSignature(
        [(
            "sha256".to_string(),
            vec![SignedPolicy {
                pcrs: vec![11],
                pkfp: key.public_key().fingerprint().unwrap(),
                pol,
                sig,
            }],
        )]
        .into_iter()
        .collect(),
    );
    std::fs::write(out, serde_json::to_vec(&sig).unwrap()).unwrap();
}

fn pcr11(tcti: &str) -> Vec<u8> {
    let mut tpm = tpm::Tpm::open(tcti).unwrap();
    tpm.read_pcrs(&[HashAlg::Sha256])
        .unwrap()
        .get(HashAlg::Sha256, 11)
        .unwrap()
        .to_vec()
}

#[test]
fn signed_policy_unseals_after_an_update() {
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    let f = files(&sw);
    let d = sw.dir();
    let (key, public, other) = (d.join("k.pem"), d.join("k.pub.pem"), d.join("o.pem"));
    for k in [&key, &other] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path(k),
        ]);
    }
    openssl(&["pkey", "-in", path(&key), "-pubout", "-out", path(&public)]);
    ok(&run(
        &[
            "tpm",
            "seal",
            "--tcti",
            &t,
            "--pcrs",
            "11",
            "--policy-key",
            path(&public),
            path(&f.input),
            path(&f.sealed),
        ],
        None,
        b"",
    ));
    let unseal = |sig: &Path| {
        run(
            &[
                "tpm",
                "unseal",
                "--tcti",
                &t,
                "--signature",
                path(sig),
                path(&f.sealed),
                path(&f.out),
            ],
            None,
            b"",
        )
    };
    // The update: PCR 11 moves; the vendor signs the new value; no reseal.
    let log = d.join("log.json");
    ok(&run(
        &[
            "tpm",
            "extend",
            "11",
            "--data",
            "new UKI",
            "--event-log",
            path(&log),
            "--tcti",
            &t,
        ],
        None,
        b"",
    ));
    let sig = d.join("good.pcrsig");
    pcrsig(&key, &pcr11(&t), &sig);
    ok(&unseal(&sig));
    assert_eq!(std::fs::read(&f.out).unwrap(), SECRET);
    std::fs::remove_file(&f.out).unwrap();

    // Signed by another key: exit 1, nothing written.
    let wrong = d.join("wrong.pcrsig");
    pcrsig(&other, &pcr11(&t), &wrong);
    fails(&unseal(&wrong), 1, "not by the policy key");
    // Signed for another PCR value: exit 1.
    let stale = d.join("stale.pcrsig");
    pcrsig(&key, &[0u8; 32], &stale);
    fails(&unseal(&stale), 1, "no signed PCR policy matches this boot");
    assert!(!f.out.exists());
}

#[test]
fn sealed_to_a_predicted_value() {
    let sw = Swtpm::start().unwrap();
    let t = sw.tcti();
    let f = files(&sw);
    let mut next = pcr11(&t);
    HashAlg::Sha256.extend(&mut next, &HashAlg::Sha256.hash(b"next"));
    let value = format!("11={}", hex::encode(&next));
    ok(&run(
        &[
            "tpm",
            "seal",
            "--tcti",
            &t,
            "--pcrs",
            "11",
            "--value",
            &value,
            path(&f.input),
            path(&f.sealed),
        ],
        None,
        b"",
    ));
    let unseal = ["tpm", "unseal", "--tcti", &t, path(&f.sealed), path(&f.out)];
    fails(&run(&unseal, None, b""), 1, "(changed: 11)");
    let log = sw.dir().join("log.json");
    ok(&run(
        &[
            "tpm",
            "extend",
            "11",
            "--data",
            "next",
            "--event-log",
            path(&log),
            "--tcti",
            &t,
        ],
        None,
        b"",
    ));
    ok(&run(&unseal, None, b""));
    assert_eq!(std::fs::read(&f.out).unwrap(), SECRET);
    fails(
        &run(
            &[
                "tpm",
                "seal",
                "--tcti",
                &t,
                "--pcrs",
                "11",
                "--value",
                "11=zz",
                path(&f.input),
                path(&f.sealed),
            ],
            None,
            b"",
        ),
        2,
        "11=zz",
    );
}
