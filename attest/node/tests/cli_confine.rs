//! `warrant agent confine-check`: the agent's own confinement (seccomp allowlist + Landlock)
//! installed in a real process, which then tries what it must refuse and what it must still do.
//! That the agent does its whole job confined is tested end to end in
//! tests/tests/attestation.rs (every agent there runs confined; the looping one is checked in
//! /proc to carry both filters and no_new_privs).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{no_panic, path, tempdir, warrant};
use serde_json::Value;

/// Whether this kernel has Landlock (asked without restricting anything).
fn kernel_has_landlock() -> bool {
    use landlock::{Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, ABI};
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

fn check(extra: &[&str]) -> (Option<i32>, Value, std::path::PathBuf) {
    let dir = tempdir();
    let state = dir.join("state");
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "not for the agent").unwrap();
    let mut args = vec![
        "agent",
        "confine-check",
        "--json",
        "--state",
        path(&state),
        "--outside",
        path(&outside),
        "--outside-file",
        path(&secret),
    ];
    args.extend_from_slice(extra);
    let out = warrant(&args);
    no_panic(&out);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report, outside)
}

fn outcome<'a>(report: &'a Value, probe: &str) -> &'a str {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"].as_str().unwrap().starts_with(probe))
        .unwrap_or_else(|| panic!("no probe {probe} in {report}"))["outcome"]
        .as_str()
        .unwrap()
}

#[test]
fn confined_the_agent_cannot_exec_trace_mount_or_leave_its_paths_but_still_works() {
    let (code, report, outside) = check(&[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["confinement"]["seccomp"], "enforce");
    // Refused by the seccomp allowlist: EPERM, not a missing file or privilege.
    for probe in ["execve", "ptrace", "mount", "unshare", "a netlink socket"] {
        assert_eq!(
            outcome(&report, probe),
            "refused: Operation not permitted (os error 1)",
            "{probe}"
        );
    }
    // Refused by Landlock (EACCES), where the kernel has it; this machine's kernel is asked
    // directly, so a kernel with Landlock cannot pass without it.
    let landlock = kernel_has_landlock();
    assert_eq!(
        report["confinement"]["landlock_enforced"], landlock,
        "{report:#}"
    );
    for probe in ["create a file outside", "read a file outside"] {
        let got = outcome(&report, probe);
        if landlock {
            assert_eq!(got, "refused: Permission denied (os error 13)", "{probe}");
        } else {
            assert!(got.contains("not confined: Landlock"), "{probe}: {got}");
        }
    }
    assert!(!outside.join(".warrant-confine-probe").exists());
    // What the agent needs still works, threads included (clone3 -> ENOSYS -> clone).
    for probe in [
        "write, replace",
        "read /etc/hosts",
        "a TCP",
        "start a thread",
        "random",
    ] {
        assert!(outcome(&report, probe).starts_with("allowed"), "{probe}");
    }
}

#[test]
fn unconfined_the_same_probes_get_through_so_the_check_can_fail() {
    let (code, report, outside) = check(&["--confine", "off"]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["confinement"]["seccomp"], "off");
    for probe in ["execve", "a netlink socket"] {
        assert!(
            outcome(&report, probe).starts_with("allowed"),
            "{probe}: {}",
            outcome(&report, probe)
        );
    }
    assert!(!outside.join(".warrant-confine-probe").exists());
}
