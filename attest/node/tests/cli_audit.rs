//! `warrant audit` on crafted node states that pass and fail the profile, on a real Debian
//! kernel config, on this machine, and on bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, warrant};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../policy/testdata/hardening")
        .join(name)
}

/// `warrant audit --profile kspp` on the `kspp-<which>.*` fixtures, with `extra` arguments.
fn audit(which: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempdir();
    let sec = dir.join("securityfs");
    std::fs::create_dir_all(&sec).unwrap();
    let (lockdown, lsm, sig) = if which == "pass" {
        ("lockdown-integrity.txt", "lsm-pass.txt", "Y\n")
    } else {
        ("lockdown-none.txt", "lsm-fail.txt", "N\n")
    };
    std::fs::copy(fixture(lockdown), sec.join("lockdown")).unwrap();
    std::fs::copy(fixture(lsm), sec.join("lsm")).unwrap();
    std::fs::write(dir.join("sig_enforce"), sig).unwrap();
    let kconfig = fixture(&format!("kspp-{which}.config"));
    let cmdline = fixture(&format!("kspp-{which}.cmdline"));
    let sysctl = fixture(&format!("kspp-{which}.sysctl"));
    let mountinfo = fixture(&format!("kspp-{which}.mountinfo"));
    let mut args = vec![
        "audit",
        "--profile",
        "kspp",
        "--kconfig",
        path(&kconfig),
        "--cmdline",
        path(&cmdline),
        "--sysctl",
        path(&sysctl),
        "--mountinfo",
        path(&mountinfo),
        "--securityfs",
        path(&sec),
    ];
    let sig_path = dir.join("sig_enforce");
    args.extend(["--sig-enforce", path(&sig_path)]);
    // The pass node's root is a verified dm-verity device (whose hash its roothash= names); the
    // fail node's mount table puts / on a plain /dev/sda1.
    let verity = fixture("verity-status-verified.txt");
    if which == "pass" && !extra.contains(&"--verity-status") {
        args.extend(["--verity-status", path(&verity)]);
    }
    args.extend(extra);
    let out = warrant(&args);
    no_panic(&out);
    out
}

#[test]
fn a_hardened_node_holds_the_profile() {
    let out = audit("pass", &["--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["summary"]["unknown"], 0);
    let kinds: std::collections::BTreeSet<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 6, "every kind of check ran: {kinds:?}");
}

#[test]
fn a_weak_node_fails_with_each_finding_and_sarif_names_the_rules() {
    let out = audit("fail", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "fail")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for prefix in [
        "kconfig.", "cmdline.", "sysctl.", "mount.", "lsm.", "verity.",
    ] {
        assert!(
            failed.iter().any(|id| id.starts_with(prefix)),
            "no failing {prefix} check: {failed:?}"
        );
    }

    let out = audit("fail", &["--sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        failed.len() + report["summary"]["unknown"].as_u64().unwrap() as usize
    );
    for r in results {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()));
        assert!(["error", "warning"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
    }

    // The human report names what failed and why.
    let out = audit("fail", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains(failed[0]), "{text}");
}

/// The `verity./` result of an audit.
fn verity_check(out: &std::process::Output) -> Value {
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "verity./")
        .unwrap()
        .clone()
}

#[test]
fn the_root_must_be_verified_dm_verity_with_the_expected_root_hash() {
    // --root-hash overrides the command line's roothash=: another hash fails, naming both.
    let other = "ab".repeat(32);
    let out = audit("pass", &["--json", "--root-hash", &other]);
    assert_eq!(out.status.code(), Some(1));
    let c = verity_check(&out);
    assert_eq!(c["result"], "fail");
    let actual = c["actual"].as_str().unwrap();
    assert!(
        actual.contains(&other) && actual.contains("5359dae9"),
        "{actual}"
    );
    // A device the kernel found corrupted fails even with the right hash.
    let corrupted = fixture("verity-status-corrupted.txt");
    let out = audit("pass", &["--json", "--verity-status", path(&corrupted)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(verity_check(&out)["actual"]
        .as_str()
        .unwrap()
        .contains("corrupted"));
    // A status that is not dm-verity's (a LUKS mapping) is a clear error.
    let luks = fixture("crypt-status-luks.txt");
    let out = audit("pass", &["--json", "--verity-status", path(&luks)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an active dm-verity device"), "{err}");
    let out = audit("pass", &["--root-hash", "nothex"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--root-hash"));
    // This machine: its / is not dm-verity (the VM test, scripts/vm-e2e, has one that is).
    let out = warrant(&["audit", "--json"]);
    no_panic(&out);
    let c = verity_check(&out);
    assert_eq!(c["result"], "fail", "{c}");
    assert!(
        c["actual"].as_str().unwrap().starts_with("not dm-verity"),
        "{c}"
    );
}

/// Validates `instance` against a schema of policy/schema/ with a full JSON Schema validator.
fn schema_errors(schema: &str, instance: &Value) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../policy/schema")
        .join(schema);
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn json_and_sarif_validate_against_their_schemas() {
    for which in ["pass", "fail"] {
        let out = audit(which, &["--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errs = schema_errors("audit-report.schema.json", &report);
        assert!(errs.is_empty(), "{which}: {errs:#?}");
        let out = audit(which, &["--sarif"]);
        let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errs = schema_errors("sarif-schema-2.1.0.json", &sarif);
        assert!(errs.is_empty(), "{which}: {errs:#?}");
    }
    // The validator is not a rubber stamp: a SARIF result without its message, and a report
    // with an unknown verdict, are caught.
    let out = audit("fail", &["--sarif"]);
    let mut sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    sarif["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert!(!schema_errors("sarif-schema-2.1.0.json", &sarif).is_empty());
    let out = audit("fail", &["--json"]);
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["results"][0]["result"] = "maybe".into();
    assert!(!schema_errors("audit-report.schema.json", &report).is_empty());
}

#[test]
fn real_kernel_configs_are_audited() {
    // Debian's kernel: a distribution config, not hardened to KSPP: it must not hold.
    let out = warrant(&[
        "audit",
        "--profile",
        "kubernetes-node",
        "--kconfig",
        path(&fixture("debian-6.1.0-56-amd64.config")),
        "--json",
    ]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let strict_rwx = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "kconfig.CONFIG_STRICT_KERNEL_RWX")
        .unwrap();
    assert_eq!(
        strict_rwx["result"], "pass",
        "Debian builds it: {strict_rwx}"
    );

    // This machine, live: a verdict, never bad input.
    let out = warrant(&["audit", "--json"]);
    no_panic(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], "warrant-audit-report/1");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempdir();
    let out = warrant(&["audit", "--profile", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kubernetes-node"));
    let out = warrant(&["audit", "--kconfig", path(&dir.join("missing.config"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.config"));
    let garbage = dir.join("mountinfo");
    std::fs::write(&garbage, "this is not a mount table\n").unwrap();
    let out = warrant(&["audit", "--mountinfo", path(&garbage)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mountinfo"));
    let gz = dir.join("config.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
    let out = warrant(&["audit", "--kconfig", path(&gz)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gzip"));
}

/// A private sysctl tree (`DIR/kernel/kptr_restrict`...) built from `sysctl -a`-style lines:
/// `harden apply` writes there, never to the host's /proc/sys.
fn sysctl_tree(lines: &str) -> PathBuf {
    let root = tempdir().join("sys");
    for line in lines.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap();
        let path = root.join(k.trim().replace('.', "/"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{}\n", v.trim())).unwrap();
    }
    root
}

#[test]
fn harden_apply_raises_weak_sysctls_and_never_lowers_stricter_ones() {
    let weak = std::fs::read_to_string(fixture("kspp-fail.sysctl")).unwrap();
    let root = sysctl_tree(&weak);
    let snapshot = |root: &PathBuf| {
        let out = std::process::Command::new("find")
            .arg(root)
            .args(["-type", "f", "-exec", "cat", "{}", "+"])
            .output()
            .unwrap();
        out.stdout
    };
    let before = snapshot(&root);

    // --dry-run changes nothing and says what it would do.
    let out = warrant(&[
        "harden",
        "apply",
        "--profile",
        "kspp",
        "--dry-run",
        "--sysctl-root",
        path(&root),
        "--securityfs",
        path(&tempdir()),
    ]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("would "));
    assert_eq!(snapshot(&root), before);

    // A value stricter than the profile asks for stays (kptr_restrict >= 2; yama >= 1 in
    // kubernetes-node): set yama to 3, stricter than kubernetes-node's 1.
    let yama = root.join("kernel/yama/ptrace_scope");
    std::fs::create_dir_all(yama.parent().unwrap()).unwrap();
    std::fs::write(&yama, "3\n").unwrap();
    let out = warrant(&[
        "harden",
        "apply",
        "--profile",
        "kubernetes-node",
        "--sysctl-root",
        path(&root),
        "--securityfs",
        path(&tempdir()),
    ]);
    no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("set    "), "{text}");
    assert_eq!(
        std::fs::read_to_string(&yama).unwrap().trim(),
        "3",
        "{text}"
    );

    // Afterwards every sysctl check the profile has on this tree passes.
    let out = warrant(&[
        "audit",
        "--profile",
        "kubernetes-node",
        "--sysctl-root",
        path(&root),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let weak_sysctls: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "sysctl" && r["result"] == "fail")
        .collect();
    assert!(weak_sysctls.is_empty(), "{weak_sysctls:?}");
}

#[test]
fn harden_apply_on_the_default_paths_inside_a_private_mount_namespace() {
    // `harden apply` with no path options writes /proc/sys and /sys/kernel/security. Run it in
    // a private mount namespace where both are bind mounts of scratch folders: the code path a
    // node runs, and the host's sysctls untouched (checked). The real kernel interfaces are
    // written in the VM test (scripts/vm-e2e).
    let Some(unshare) = tests::which("unshare") else {
        panic!("unshare (util-linux) is needed for this test");
    };
    let weak = std::fs::read_to_string(fixture("kspp-fail.sysctl")).unwrap();
    let tree = sysctl_tree(&weak);
    let sec = tempdir();
    std::fs::write(sec.join("lockdown"), "[none] integrity confidentiality\n").unwrap();
    let report = tempdir().join("report.json");
    let host_before = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap();
    let script = format!(
        "set -e
         mount --bind '{tree}' /proc/sys
         mount --bind '{sec}' /sys/kernel/security
         '{w}' harden apply --profile kspp
         '{w}' audit --profile kspp --securityfs /nonexistent --json > '{report}' || true",
        tree = tree.display(),
        sec = sec.display(),
        w = env!("CARGO_BIN_EXE_warrant"),
        report = report.display(),
    );
    let out = std::process::Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && stderr.contains("unshare failed")
        && std::env::var("CI").as_deref() != Ok("true")
    {
        eprintln!("skipped: cannot make a mount namespace here (needs root): {stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("set    "), "{text}");
    // The kernel's lockdown interface takes the mode's word.
    assert_eq!(
        std::fs::read_to_string(sec.join("lockdown"))
            .unwrap()
            .trim(),
        "integrity",
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("kernel/kptr_restrict"))
            .unwrap()
            .trim(),
        "2"
    );
    // The audit inside the namespace read the same default paths: no sysctl fails any more.
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let weak_sysctls: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "sysctl" && r["result"] != "pass")
        .collect();
    assert!(weak_sysctls.is_empty(), "{weak_sysctls:?}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap(),
        host_before,
        "the host's sysctl changed"
    );
}
