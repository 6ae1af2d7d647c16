#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
//! `warrant uki`: against the committed fixture, and against systemd 252's own `systemd-measure`
//! on a UKI built here from Debian's systemd-stub with objcopy (skipped, loudly, when the tools
//! are not installed).

mod common;

use common::{no_panic, path, tempdir, testdata, warrant};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const SYSTEMD_MEASURE: &str = "/usr/lib/systemd/systemd-measure";

fn fixture(name: &str) -> PathBuf {
    testdata("uki").join(name)
}

fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    no_panic(out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn file_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn predict_on_fixture_matches_systemd_measure_output() {
    let uki = fixture("uki.efi");
    let out = warrant(&[
        "uki",
        "predict-pcr11",
        path(&uki),
        "--bank",
        "sha512,sha1,sha256,SHA384",
        "--json",
    ]);
    assert_eq!(stdout_json(&out), file_json(&fixture("calculate.json")));

    let out = warrant(&[
        "uki",
        "predict-pcr11",
        path(&uki),
        "--bank",
        "sha256",
        "--phase",
        "sysinit",
        "--phase",
        "enter-initrd::,:",
        "--phases",
        "enter-initrd:leave-initrd",
        "--json",
    ]);
    assert_eq!(
        stdout_json(&out),
        file_json(&fixture("calculate-phases.json"))
    );

    // Text form: systemd-measure's `11:<bank>=<hex>` lines.
    let out = warrant(&["uki", "predict-pcr11", path(&uki), "--bank", "sha256"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let calc = file_json(&fixture("calculate.json"));
    let last = calc["sha256"][3]["hash"].as_str().unwrap();
    assert!(text.contains(&format!("11:sha256={last}")), "{text}");
}

#[test]
fn sign_policy_on_fixture_matches_systemd_measure_sign() {
    let uki = fixture("uki.efi");
    let key = fixture("test-key.pem");
    let out = warrant(&[
        "uki",
        "sign-policy",
        path(&uki),
        "--key",
        path(&key),
        "--bank",
        "sha1,sha256,sha384,sha512",
    ]);
    assert_eq!(stdout_json(&out), file_json(&fixture("sign.json")));

    // With the matching public key too, and pretty-printed: same content.
    let out = warrant(&[
        "uki",
        "sign-policy",
        path(&uki),
        "--private-key",
        path(&key),
        "--public-key",
        path(&fixture("pcrpkey")),
        "--bank",
        "sha1,sha256,sha384,sha512",
        "--json",
    ]);
    assert_eq!(stdout_json(&out), file_json(&fixture("sign.json")));
}

#[test]
fn inspect_names_stub_and_measured_sections() {
    let uki = fixture("uki.efi");
    let v = stdout_json(&warrant(&["uki", "inspect", path(&uki), "--json"]));
    assert_eq!(v["stub"]["version"], "252.39-1~deb12u2");
    assert_eq!(v["measurement_table"], 252);
    let measured: Vec<&str> = v["measured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        measured,
        [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".pcrpkey"]
    );
    let out = warrant(&["uki", "inspect", path(&uki)]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("systemd-stub 252.39-1~deb12u2"), "{text}");
    assert!(text.contains(".sbat"), "{text}");
}

#[test]
fn bad_input_exits_2_without_panicking() {
    let dir = tempdir();
    let garbage = dir.join("garbage.efi");
    std::fs::write(&garbage, b"MZ this is not a PE file").unwrap();
    let uki_bytes = std::fs::read(fixture("uki.efi")).unwrap();
    let truncated = dir.join("truncated.efi");
    std::fs::write(&truncated, &uki_bytes[..uki_bytes.len() / 2]).unwrap();
    let not_a_key = dir.join("key.pem");
    std::fs::write(&not_a_key, b"-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
    let uki = fixture("uki.efi");
    let cases: Vec<Vec<&str>> = vec![
        vec!["uki", "inspect", path(&garbage)],
        vec!["uki", "inspect", "/nonexistent/uki.efi"],
        vec!["uki", "predict-pcr11", path(&truncated), "--json"],
        vec!["uki", "predict-pcr11", path(&uki), "--bank", "md5"],
        vec!["uki", "predict-pcr11", path(&uki), "--bank", "sm3_256"],
        vec!["uki", "sign-policy", path(&uki), "--key", path(&not_a_key)],
        vec!["uki", "sign-policy", path(&uki), "--key", path(&uki)],
    ];
    for args in cases {
        let out = warrant(&args);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A public key that is not the private key's.
    let other = fixture("other-pub.pem");
    let out = warrant(&[
        "uki",
        "sign-policy",
        path(&uki),
        "--key",
        path(&fixture("test-key.pem")),
        "--public-key",
        path(&other),
    ]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

/// A software TPM on its own socket in `dir`, killed on drop.
struct Swtpm {
    child: Child,
    sock: PathBuf,
}

impl Swtpm {
    fn start(dir: &Path) -> Option<Swtpm> {
        let state = dir.join("tpm");
        std::fs::create_dir_all(&state).unwrap();
        let sock = state.join("sock");
        let child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--flags")
            .arg("startup-clear")
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", sock.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}.ctrl", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let tpm = Swtpm { child, sock };
        for _ in 0..100 {
            if tpm.sock.exists() {
                return Some(tpm);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference tools must be there: `scripts/install-deps.sh` installs them, and a comparison
/// that silently did not run would be a test that cannot fail.
fn require_tools() {
    assert!(
        Path::new(STUB).exists(),
        "{STUB} missing: run scripts/install-deps.sh"
    );
    assert!(
        Path::new(SYSTEMD_MEASURE).exists(),
        "{SYSTEMD_MEASURE} missing"
    );
    assert!(
        Command::new("objcopy").arg("--version").output().is_ok(),
        "objcopy missing"
    );
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl missing"
    );
}

/// Bytes that differ from run to run (xorshift seeded by std's random hasher keys).
fn random_bytes(n: usize) -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    let mut x = h.finish() | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn fresh_uki_matches_systemd_measure_calculate_and_sign() {
    require_tools();
    let dir = tempdir();
    let f = |n: &str| dir.join(n);
    std::fs::write(f("linux"), random_bytes(9000)).unwrap();
    std::fs::write(f("initrd"), random_bytes(5000)).unwrap();
    std::fs::write(f("osrel"), b"ID=fresh\nVERSION_ID=2\n").unwrap();
    std::fs::write(f("cmdline"), b"root=/dev/vda3 ro").unwrap();
    std::fs::write(f("dtb"), random_bytes(300)).unwrap();
    // The signing key: key.pem, its public half key.pub.pem.
    tests::openssl::rsa_key(&dir, "key").unwrap();

    let sections = [
        (".osrel", "osrel", "0x20000"),
        (".cmdline", "cmdline", "0x30000"),
        (".dtb", "dtb", "0x40000"),
        (".pcrpkey", "key.pub.pem", "0x50000"),
        (".linux", "linux", "0x2000000"),
        (".initrd", "initrd", "0x3000000"),
    ];
    let mut objcopy = Command::new("objcopy");
    for (name, file, vma) in sections {
        objcopy
            .arg("--add-section")
            .arg(format!("{name}={}", f(file).display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={vma}"));
    }
    run(objcopy.arg(STUB).arg(f("uki.efi")));

    let mut measure_args: Vec<String> = vec![
        format!("--linux={}", f("linux").display()),
        format!("--initrd={}", f("initrd").display()),
        format!("--osrel={}", f("osrel").display()),
        format!("--cmdline={}", f("cmdline").display()),
        format!("--dtb={}", f("dtb").display()),
        format!("--pcrpkey={}", f("key.pub.pem").display()),
    ];
    for bank in ["sha256", "sha384", "sha512"] {
        measure_args.push(format!("--bank={bank}"));
    }
    measure_args.push("--phase=enter-initrd:leave-initrd:sysinit:ready".into());
    measure_args.push("--phase=enter-initrd".into());
    measure_args.push("--phase=".into());

    let theirs: serde_json::Value = serde_json::from_slice(&run(Command::new(SYSTEMD_MEASURE)
        .arg("calculate")
        .args(&measure_args)
        .arg("--json=short")))
    .unwrap();
    let uki = f("uki.efi");
    let phases = "enter-initrd:leave-initrd:sysinit:ready,enter-initrd,";
    let mine = stdout_json(&warrant(&[
        "uki",
        "predict-pcr11",
        path(&uki),
        "--phase",
        phases,
        "--json",
    ]));
    assert_eq!(mine, theirs);

    // systemd 252's `sign` computes the policy digest in a TPM trial session.
    let tpm = Swtpm::start(&dir).expect("swtpm did not start: run scripts/install-deps.sh");
    let theirs: serde_json::Value = serde_json::from_slice(&run(Command::new(SYSTEMD_MEASURE)
        .arg("sign")
        .args(&measure_args)
        .arg(format!("--private-key={}", f("key.pem").display()))
        .arg(format!("--public-key={}", f("key.pub.pem").display()))
        .arg(format!("--tpm2-device=swtpm:path={}", tpm.sock.display()))
        .arg("--json=short")))
    .unwrap();
    drop(tpm);
    let mine = stdout_json(&warrant(&[
        "uki",
        "sign-policy",
        path(&uki),
        "--key",
        path(&f("key.pem")),
        "--phase",
        phases,
    ]));
    assert_eq!(mine, theirs);
}
