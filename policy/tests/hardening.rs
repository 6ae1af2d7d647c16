#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
//! The hardening audit against real kernel configs (Debian's 6.1 kernel package, the kernel of
//! the machine the fixture was taken on, and this machine's `/boot/config-*` when present),
//! crafted inputs that pass and fail every row of each kind, parser errors, the report's JSON
//! schema, and `docs/hardening.md` being the generated text. Fixtures: `testdata/hardening`,
//! see its README.

use policy::hardening::{
    audit, markdown, parse_lockdown, parse_lsm_list, parse_mountinfo, parse_sig_enforce,
    parse_sysctl_lines, parse_veritysetup_status, profile, profiles, Cmdline, Expect,
    ExpectedRootHash, KconfigValue, KernelConfig, Kind, LockdownMode, NodeState, ParseError,
    Profile, ProfileChange, Report, RootBacking, Source, Verdict, REPORT_SCHEMA,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(crate_dir().join("testdata/hardening").join(name)).unwrap()
}

fn kspp() -> Profile {
    profile("kspp").unwrap()
}

/// A state with every input from the `kspp-pass.*` (or `kspp-fail.*`) fixtures.
fn crafted(which: &str) -> NodeState {
    NodeState {
        kconfig: Some(KernelConfig::parse(&fixture(&format!("kspp-{which}.config"))).unwrap()),
        cmdline: Some(Cmdline::parse(&fixture(&format!("kspp-{which}.cmdline"))).unwrap()),
        sysctls: Some(parse_sysctl_lines(&fixture(&format!("kspp-{which}.sysctl"))).unwrap()),
        mounts: Some(parse_mountinfo(&fixture(&format!("kspp-{which}.mountinfo"))).unwrap()),
        lockdown: Some(
            parse_lockdown(&fixture(if which == "pass" {
                "lockdown-integrity.txt"
            } else {
                "lockdown-none.txt"
            }))
            .unwrap(),
        ),
        module_sig_enforce: Some(
            parse_sig_enforce(if which == "pass" { "Y\n" } else { "N\n" }).unwrap(),
        ),
        lsms: Some(parse_lsm_list(&fixture(&format!("lsm-{which}.txt"))).unwrap()),
        root: Some(if which == "pass" {
            RootBacking::Verity(
                parse_veritysetup_status(&fixture("verity-status-verified.txt")).unwrap(),
            )
        } else {
            RootBacking::Other {
                source: "/dev/sda1".into(),
                fs_type: "ext4".into(),
            }
        }),
        expected_root_hash: ExpectedRootHash::from_cmdline(
            &Cmdline::parse(&fixture(&format!("kspp-{which}.cmdline"))).unwrap(),
        )
        .transpose()
        .unwrap(),
    }
}

fn result<'a>(r: &'a Report, id: &str) -> &'a policy::hardening::CheckResult {
    r.results
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no result {id}"))
}

// ---------------------------------------------------------------------------------------------
// The tables

#[test]
fn ids_are_unique_and_well_formed_in_every_profile() {
    for p in profiles() {
        let mut seen = BTreeSet::new();
        for c in &p.checks {
            assert!(seen.insert(c.id), "{}: duplicate id {}", p.name, c.id);
            assert_eq!(c.id, format!("{}.{}", c.kind.as_str(), c.key), "{}", c.id);
            assert!(c.reason.ends_with('.'), "{}: reason is one sentence", c.id);
            assert!(!c.reference.is_empty(), "{}: no reference", c.id);
        }
    }
    assert_eq!(
        profiles().iter().map(|p| p.name).collect::<Vec<_>>(),
        ["kspp", "kubernetes-node", "talos"]
    );
    assert!(profile("nope").is_none());
}

#[test]
fn row_counts_per_kind() {
    let count = |p: &Profile, k: Kind| p.checks.iter().filter(|c| c.kind == k).count();
    let k = kspp();
    assert!(
        count(&k, Kind::Kconfig) >= 40,
        "{}",
        count(&k, Kind::Kconfig)
    );
    assert!(count(&k, Kind::Cmdline) >= 15);
    assert!(count(&k, Kind::Sysctl) >= 25);
    assert!(count(&k, Kind::Mount) >= 4);
    assert!(count(&k, Kind::Lsm) >= 2);
    for p in profiles() {
        let counts: Vec<String> = Kind::ALL
            .iter()
            .map(|kind| format!("{}={}", kind.as_str(), count(&p, *kind)))
            .collect();
        println!(
            "{}: {} checks ({})",
            p.name,
            p.checks.len(),
            counts.join(" ")
        );
    }
}

#[test]
fn kubernetes_node_is_kspp_with_the_documented_changes() {
    let k = kspp();
    let n = profile("kubernetes-node").unwrap();
    let kspp_ids: BTreeSet<&str> = k.checks.iter().map(|c| c.id).collect();
    let node_ids: BTreeSet<&str> = n.checks.iter().map(|c| c.id).collect();
    let mut dropped = BTreeSet::new();
    let mut relaxed = BTreeSet::new();
    let mut added = BTreeSet::new();
    for ch in &n.changes {
        match ch {
            ProfileChange::Dropped { id, .. } => {
                assert!(kspp_ids.contains(id), "dropped {id} is not a kspp row");
                dropped.insert(*id);
            }
            ProfileChange::Relaxed { id, expect, .. } => {
                assert!(kspp_ids.contains(id), "relaxed {id} is not a kspp row");
                let c = n.checks.iter().find(|c| c.id == *id).unwrap();
                assert_eq!(c.expect, *expect);
                relaxed.insert(*id);
            }
            ProfileChange::Added { id, .. } => {
                added.insert(*id);
            }
        }
    }
    // Every difference of id sets is documented, and nothing else differs.
    let expect_ids: BTreeSet<&str> = kspp_ids
        .difference(&dropped)
        .copied()
        .chain(added.iter().copied())
        .collect();
    assert_eq!(node_ids, expect_ids);
    for c in &n.checks {
        if let Some(orig) = k.checks.iter().find(|o| o.id == c.id) {
            if !relaxed.contains(c.id) {
                assert_eq!(c, orig, "{} changed without a ProfileChange", c.id);
            }
        }
    }
    // The kubelet protectKernelDefaults list, exactly (setupKernelTunables' desiredState).
    let kubelet: BTreeMap<&str, Expect> = n
        .checks
        .iter()
        .filter(|c| c.source == Source::Kubelet)
        .map(|c| (c.key, c.expect))
        .collect();
    let want: BTreeMap<&str, Expect> = [
        ("vm.overcommit_memory", Expect::Equals("1")),
        ("vm.panic_on_oom", Expect::Equals("0")),
        ("kernel.panic", Expect::Equals("10")),
        ("kernel.panic_on_oops", Expect::Equals("1")),
        ("kernel.keys.root_maxkeys", Expect::Equals("1000000")),
        ("kernel.keys.root_maxbytes", Expect::Equals("25000000")),
    ]
    .into_iter()
    .collect();
    assert_eq!(kubelet, want);
    assert!(!node_ids.contains("sysctl.user.max_user_namespaces"));
    assert!(!node_ids.contains("sysctl.kernel.modules_disabled"));
}

#[test]
fn talos_profile_is_what_talos_enforces() {
    let t = profile("talos").unwrap();
    assert!(t.checks.iter().all(|c| c.source == Source::Talos));
    let cl: Vec<&str> = t
        .checks
        .iter()
        .filter(|c| c.kind == Kind::Cmdline)
        .map(|c| c.key)
        .collect();
    assert_eq!(cl, ["slab_nomerge", "pti"]);
    assert_eq!(
        t.checks.iter().filter(|c| c.kind == Kind::Sysctl).count(),
        15
    );
}

// ---------------------------------------------------------------------------------------------
// Crafted inputs: every row of every kind passes, then fails

#[test]
fn crafted_pass_inputs_pass_every_kspp_row() {
    let r = audit(&kspp(), &crafted("pass"));
    let bad: Vec<_> = r.not_passed().map(|c| (&c.id, &c.actual)).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(r.passed());
    assert_eq!(r.summary.pass, r.summary.total);
}

#[test]
fn crafted_fail_inputs_fail_every_kspp_row() {
    let r = audit(&kspp(), &crafted("fail"));
    let not_failed: Vec<_> = r
        .results
        .iter()
        .filter(|c| c.result != Verdict::Fail)
        .map(|c| (&c.id, &c.actual))
        .collect();
    assert!(not_failed.is_empty(), "{not_failed:#?}");
    assert!(!r.passed());
    assert_eq!(r.summary.fail, r.summary.total);
}

#[test]
fn actual_values_are_reported() {
    let r = audit(&kspp(), &crafted("fail"));
    assert_eq!(
        result(&r, "kconfig.CONFIG_KEXEC").actual.as_deref(),
        Some("y")
    );
    assert_eq!(
        result(&r, "kconfig.CONFIG_DEFAULT_MMAP_MIN_ADDR")
            .actual
            .as_deref(),
        Some("4096")
    );
    assert_eq!(
        result(&r, "cmdline.pti").actual.as_deref(),
        Some("pti=auto")
    );
    assert_eq!(
        result(&r, "cmdline.slab_nomerge").actual.as_deref(),
        Some("absent")
    );
    // `init-on-free` is the same parameter as `init_on_free`.
    assert_eq!(
        result(&r, "cmdline.init_on_free").actual.as_deref(),
        Some("init_on_free=off")
    );
    assert_eq!(
        result(&r, "sysctl.kernel.oops_limit").actual.as_deref(),
        Some("0x2710")
    );
    // The later /tmp mount (on top) is the one that counts.
    assert_eq!(
        result(&r, "mount./tmp").actual.as_deref(),
        Some("rw,relatime")
    );
    assert_eq!(result(&r, "lsm.lockdown").actual.as_deref(), Some("none"));
    assert_eq!(
        result(&r, "lsm.module.sig_enforce").actual.as_deref(),
        Some("0")
    );
    let p = audit(&kspp(), &crafted("pass"));
    assert_eq!(result(&p, "mount./").actual.as_deref(), Some("ro,relatime"));
    // After `--` the parameters are init's: the `nokaslr` there does not count.
    assert_eq!(
        result(&p, "cmdline.nokaslr").actual.as_deref(),
        Some("absent")
    );
}

#[test]
fn missing_input_is_unknown_never_pass() {
    let r = audit(&kspp(), &NodeState::default());
    assert_eq!(r.summary.unknown, r.summary.total);
    assert!(r.results.iter().all(|c| c.actual.is_none()));
    assert!(!r.passed());

    // All passes but one sysctl that could not be read: the profile does not hold.
    let mut s = crafted("pass");
    s.sysctls.as_mut().unwrap().remove("kernel.kptr_restrict");
    let r = audit(&kspp(), &s);
    assert_eq!(r.summary.unknown, 1);
    assert_eq!(
        result(&r, "sysctl.kernel.kptr_restrict").result,
        Verdict::Unknown
    );
    assert!(!r.passed());
    assert!(!serde_json::to_value(&r).unwrap()["passed"]
        .as_bool()
        .unwrap());
}

#[test]
fn mount_point_that_is_not_a_separate_mount_fails() {
    let mut s = crafted("pass");
    s.mounts
        .as_mut()
        .unwrap()
        .retain(|m| m.mount_point != "/dev/shm");
    let r = audit(&kspp(), &s);
    let c = result(&r, "mount./dev/shm");
    assert_eq!(c.result, Verdict::Fail);
    assert_eq!(c.actual.as_deref(), Some("not a separate mount"));
}

#[test]
fn kubernetes_node_accepts_what_a_node_needs() {
    let mut s = crafted("pass");
    let sys = s.sysctls.as_mut().unwrap();
    for (k, v) in [
        ("vm.overcommit_memory", "1"),
        ("vm.panic_on_oom", "0"),
        ("kernel.panic", "10"),
        ("kernel.panic_on_oops", "1"),
        ("kernel.keys.root_maxkeys", "1000000"),
        ("kernel.keys.root_maxbytes", "25000000"),
        ("net.ipv4.ip_forward", "1"),
        ("user.max_user_namespaces", "63229"),
        ("kernel.modules_disabled", "0"),
        ("kernel.yama.ptrace_scope", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
    ] {
        sys.insert(k.into(), v.into());
    }
    s.cmdline = Some(
        Cmdline::parse("root=/dev/mapper/root slab_nomerge pti=on page_alloc.shuffle=1").unwrap(),
    );
    let r = audit(&profile("kubernetes-node").unwrap(), &s);
    let bad: Vec<_> = r.not_passed().map(|c| (&c.id, &c.actual)).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // ... which kspp refuses.
    let k = audit(&kspp(), &s);
    for id in [
        "sysctl.net.ipv4.ip_forward",
        "sysctl.user.max_user_namespaces",
        "sysctl.kernel.modules_disabled",
        "sysctl.kernel.yama.ptrace_scope",
        "cmdline.mitigations",
    ] {
        assert_eq!(result(&k, id).result, Verdict::Fail, "{id}");
    }
    // mitigations=off still fails the node profile.
    s.cmdline =
        Some(Cmdline::parse("slab_nomerge pti=on page_alloc.shuffle=1 mitigations=off").unwrap());
    let r = audit(&profile("kubernetes-node").unwrap(), &s);
    assert_eq!(result(&r, "cmdline.mitigations").result, Verdict::Fail);
    // A kubelet value off by one fails.
    s.sysctls
        .as_mut()
        .unwrap()
        .insert("kernel.panic".into(), "0".into());
    let r = audit(&profile("kubernetes-node").unwrap(), &s);
    assert_eq!(result(&r, "sysctl.kernel.panic").result, Verdict::Fail);
}

// ---------------------------------------------------------------------------------------------
// Real kernel configs

#[test]
fn debian_6_1_kernel_config() {
    let cfg = KernelConfig::parse(&fixture("debian-6.1.0-56-amd64.config")).unwrap();
    assert!(cfg.len() > 8000, "{}", cfg.len());
    assert_eq!(
        cfg.get("CONFIG_STRICT_KERNEL_RWX"),
        Some(&KconfigValue::Yes)
    );
    assert_eq!(
        cfg.get("CONFIG_MODULE_SIG_FORCE"),
        Some(&KconfigValue::NotSet)
    );
    assert_eq!(
        cfg.get("CONFIG_DEFAULT_MMAP_MIN_ADDR"),
        Some(&KconfigValue::Number("65536".into()))
    );
    assert!(
        matches!(cfg.get("CONFIG_CC_VERSION_TEXT"), Some(KconfigValue::Str(s)) if s.starts_with("gcc-12"))
    );
    let state = NodeState {
        kconfig: Some(cfg),
        ..NodeState::default()
    };
    let r = audit(&kspp(), &state);
    let kc: Vec<_> = r
        .results
        .iter()
        .filter(|c| c.kind == Kind::Kconfig)
        .collect();
    assert!(kc.iter().all(|c| c.result != Verdict::Unknown));
    let verdict = |id: &str| result(&r, id).result;
    // What Debian's kernel has and lacks (its config, checked by hand).
    for id in [
        "kconfig.CONFIG_STRICT_KERNEL_RWX",
        "kconfig.CONFIG_RANDOMIZE_BASE",
        "kconfig.CONFIG_INIT_STACK_ALL_ZERO",
        "kconfig.CONFIG_SECURITY_LANDLOCK",
        "kconfig.CONFIG_SECURITY_LOCKDOWN_LSM",
        "kconfig.CONFIG_DEFAULT_MMAP_MIN_ADDR",
        "kconfig.CONFIG_SECCOMP_FILTER",
    ] {
        assert_eq!(verdict(id), Verdict::Pass, "{id}");
    }
    for id in [
        "kconfig.CONFIG_MODULE_SIG_FORCE",
        "kconfig.CONFIG_KFENCE",
        "kconfig.CONFIG_X86_KERNEL_IBT",
        "kconfig.CONFIG_LDISC_AUTOLOAD",
        "kconfig.CONFIG_X86_X32_ABI",
        "kconfig.CONFIG_STATIC_USERMODEHELPER",
    ] {
        assert_eq!(verdict(id), Verdict::Fail, "{id}");
    }
    // LIST_HARDENED is 6.6+: absent on 6.1, reported as such.
    assert_eq!(
        result(&r, "kconfig.CONFIG_LIST_HARDENED").actual.as_deref(),
        Some("absent")
    );
    // The other kinds were not given: unknown, and the profile does not hold.
    assert!(r
        .results
        .iter()
        .filter(|c| c.kind != Kind::Kconfig)
        .all(|c| c.result == Verdict::Unknown));
    assert!(!r.passed());
    let pass = kc.iter().filter(|c| c.result == Verdict::Pass).count();
    println!("debian 6.1: {pass}/{} kconfig rows pass", kc.len());
}

#[test]
fn firecracker_6_18_kernel_config() {
    let cfg = KernelConfig::parse(&fixture("firecracker-6.18.44.config")).unwrap();
    assert!(cfg.len() > 2000);
    let r = audit(
        &kspp(),
        &NodeState {
            kconfig: Some(cfg),
            ..NodeState::default()
        },
    );
    let kc: Vec<_> = r
        .results
        .iter()
        .filter(|c| c.kind == Kind::Kconfig)
        .collect();
    assert!(kc.iter().all(|c| c.result != Verdict::Unknown));
    println!(
        "firecracker 6.18: {}/{} kconfig rows pass",
        kc.iter().filter(|c| c.result == Verdict::Pass).count(),
        kc.len()
    );
}

#[test]
fn this_machines_boot_config_if_present() {
    let Ok(dir) = std::fs::read_dir("/boot") else {
        eprintln!("no /boot: skipped");
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("config-") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let cfg = KernelConfig::parse(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        let r = audit(
            &kspp(),
            &NodeState {
                kconfig: Some(cfg),
                ..NodeState::default()
            },
        );
        assert!(r
            .results
            .iter()
            .filter(|c| c.kind == Kind::Kconfig)
            .all(|c| c.result != Verdict::Unknown));
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers

#[test]
fn kconfig_parser_values_and_errors() {
    let cfg = KernelConfig::parse(
        "# comment\n\nCONFIG_A=y\nCONFIG_B=m\nCONFIG_C=\"a \\\"q\\\" b\"\nCONFIG_D=0x1f\nCONFIG_E=-1\n# CONFIG_F is not set\nCONFIG_G=n\r\n",
    )
    .unwrap();
    assert_eq!(cfg.get("CONFIG_A"), Some(&KconfigValue::Yes));
    assert_eq!(cfg.get("CONFIG_B"), Some(&KconfigValue::Module));
    assert_eq!(
        cfg.get("CONFIG_C"),
        Some(&KconfigValue::Str("a \"q\" b".into()))
    );
    assert_eq!(
        cfg.get("CONFIG_D"),
        Some(&KconfigValue::Number("0x1f".into()))
    );
    assert_eq!(
        cfg.get("CONFIG_E"),
        Some(&KconfigValue::Number("-1".into()))
    );
    assert_eq!(cfg.get("CONFIG_F"), Some(&KconfigValue::NotSet));
    assert_eq!(cfg.get("CONFIG_G"), Some(&KconfigValue::NotSet));
    assert_eq!(cfg.get("CONFIG_H"), None);

    let err = |t: &str| KernelConfig::parse(t).unwrap_err();
    assert_eq!(
        err("CONFIG_A=y\nFOO=y\n"),
        ParseError::KconfigSyntax { line: 2 }
    );
    assert_eq!(err("CONFIG_A\n"), ParseError::KconfigSyntax { line: 1 });
    assert_eq!(err("CONFIG_A=yes\n"), ParseError::KconfigValue { line: 1 });
    assert_eq!(
        err("CONFIG_A=\"open\n"),
        ParseError::KconfigValue { line: 1 }
    );
    assert_eq!(err("CONFIG_A=12ab\n"), ParseError::KconfigValue { line: 1 });
    assert_eq!(err("CONFIG_A-B=y\n"), ParseError::KconfigName { line: 1 });
    assert_eq!(err("CONFIG_=y\n"), ParseError::KconfigName { line: 1 });
    assert_eq!(
        err("CONFIG_A=y\n\n# CONFIG_A is not set\n"),
        ParseError::KconfigDuplicate { line: 3, first: 1 }
    );
}

#[test]
fn cmdline_parser() {
    let c = Cmdline::parse(
        "BOOT_IMAGE=/vmlinuz  quiet foo=\"a b\" init-on-alloc=0 pti=off pti=on -- nokaslr\n",
    )
    .unwrap();
    assert!(c.has("quiet"));
    assert_eq!(c.get("quiet"), Some(None));
    assert_eq!(c.get("foo"), Some(Some("a b")));
    assert_eq!(c.get("init_on_alloc"), Some(Some("0")));
    assert_eq!(c.get("pti"), Some(Some("on")), "the last occurrence wins");
    assert!(!c.has("nokaslr"), "after -- is init's");
    assert_eq!(
        Cmdline::parse("a b=\"oops").unwrap_err(),
        ParseError::CmdlineQuote { offset: 4 }
    );
    assert_eq!(Cmdline::parse("").unwrap(), Cmdline::default());
}

#[test]
fn mountinfo_parser() {
    let m = parse_mountinfo(&fixture("kspp-pass.mountinfo")).unwrap();
    assert_eq!(m.len(), 8);
    assert_eq!(m[0].mount_point, "/");
    assert_eq!(m[0].fs_type, "ext4");
    assert_eq!(m[0].source, "/dev/mapper/root");
    assert_eq!(m[7].mount_point, "/var/lib/with space");
    assert!(m[5].has_option("nodev"));
    // A mount read-only only at the superblock counts as ro.
    let ro = parse_mountinfo("1 0 8:1 / / rw - squashfs /dev/loop0 ro\n").unwrap();
    assert!(ro[0].has_option("ro"));

    assert_eq!(
        parse_mountinfo("1 0 8:1 / / rw squashfs /dev/loop0 ro\n").unwrap_err(),
        ParseError::MountinfoSeparator { line: 1 }
    );
    assert_eq!(
        parse_mountinfo("1 0 8:1 / - squashfs /dev/loop0 ro\n").unwrap_err(),
        ParseError::MountinfoFields {
            line: 1,
            expected: 6,
            found: 4
        }
    );
    assert!(matches!(
        parse_mountinfo("1 0 8:1 / / rw - squashfs\n").unwrap_err(),
        ParseError::MountinfoFields { line: 1, .. }
    ));
    assert_eq!(
        parse_mountinfo("1 0 8:1 / /a\\09 rw - tmpfs tmpfs rw\n").unwrap_err(),
        ParseError::MountinfoEscape { line: 1 }
    );
    assert_eq!(
        parse_mountinfo("1 0 8:1 / /a\\4 rw - tmpfs tmpfs rw\n").unwrap_err(),
        ParseError::MountinfoEscape { line: 1 }
    );
}

#[test]
fn this_machines_mountinfo_parses() {
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        let m = parse_mountinfo(&text).unwrap();
        assert!(m.iter().any(|m| m.mount_point == "/"));
    }
}

#[test]
fn lockdown_sig_enforce_lsm_sysctl_parsers() {
    assert_eq!(
        parse_lockdown("none [integrity] confidentiality\n").unwrap(),
        LockdownMode::Integrity
    );
    assert_eq!(
        parse_lockdown("[none] integrity confidentiality").unwrap(),
        LockdownMode::None
    );
    assert_eq!(
        parse_lockdown("none integrity [confidentiality]").unwrap(),
        LockdownMode::Confidentiality
    );
    for bad in [
        "",
        "none integrity confidentiality",
        "[none] [integrity]",
        "[bogus]",
        "none [x]",
    ] {
        assert_eq!(
            parse_lockdown(bad).unwrap_err(),
            ParseError::Lockdown,
            "{bad:?}"
        );
    }
    assert!(parse_sig_enforce("Y\n").unwrap());
    assert!(!parse_sig_enforce("N").unwrap());
    assert_eq!(
        parse_sig_enforce("yes").unwrap_err(),
        ParseError::SigEnforce
    );
    assert_eq!(
        parse_lsm_list("lockdown,capability,yama\n").unwrap(),
        ["lockdown", "capability", "yama"]
    );
    assert!(parse_lsm_list("").unwrap().is_empty());
    assert_eq!(parse_lsm_list("a,,b").unwrap_err(), ParseError::LsmList);
    assert_eq!(parse_lsm_list("a,B").unwrap_err(), ParseError::LsmList);
    let s =
        parse_sysctl_lines("# c\n; c\nkernel.printk = 4\t4 1 7\nnet/ipv4/ip_forward=1\n").unwrap();
    assert_eq!(s["kernel.printk"], "4\t4 1 7");
    assert_eq!(s["net.ipv4.ip_forward"], "1");
    assert_eq!(
        parse_sysctl_lines("a = 1\nb\n").unwrap_err(),
        ParseError::SysctlSyntax { line: 2 }
    );
    assert_eq!(
        parse_sysctl_lines(" = 1\n").unwrap_err(),
        ParseError::SysctlSyntax { line: 1 }
    );
    // Whitespace inside a sysctl value is collapsed for comparison and display.
    let r = audit(
        &kspp(),
        &NodeState {
            sysctls: Some(s),
            ..NodeState::default()
        },
    );
    assert_eq!(
        result(&r, "sysctl.net.ipv4.ip_forward").result,
        Verdict::Fail
    );
}

// ---------------------------------------------------------------------------------------------
// JSON schema

/// Validates `v` against the subset of JSON Schema the report schema uses: `type` (one or a
/// list), `const`, `enum`, `required`, `properties`, `additionalProperties: false`, `items`,
/// `minimum`, and `pattern` of the form `^(a|b|...)\..+$`.
fn validate(schema: &Value, v: &Value, path: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_u64() || v.is_i64(),
        "null" => v.is_null(),
        other => panic!("schema type {other} not supported by the test validator"),
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t) => errs.push(format!("{path}: not {t}")),
        Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap())) => {
            errs.push(format!("{path}: not one of {ts:?}"))
        }
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errs.push(format!("{path}: not {c}"));
        }
    }
    if let Some(Value::Array(e)) = schema.get("enum") {
        if !e.contains(v) {
            errs.push(format!("{path}: {v} not in enum"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum"), v.as_i64()) {
        if n < min.as_i64().unwrap() {
            errs.push(format!("{path}: below minimum"));
        }
    }
    if let (Some(Value::String(p)), Some(s)) = (schema.get("pattern"), v.as_str()) {
        let alts = p
            .strip_prefix("^(")
            .and_then(|r| r.strip_suffix(")\\..+$"))
            .expect("pattern form supported by the test validator");
        let ok = alts.split('|').any(|a| {
            s.strip_prefix(a)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty())
        });
        if !ok {
            errs.push(format!("{path}: {s} does not match {p}"));
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(Value::Array(req)) = schema.get("required") {
            for r in req {
                if !obj.contains_key(r.as_str().unwrap()) {
                    errs.push(format!("{path}: missing {r}"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => errs.extend(validate(s, val, &format!("{path}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{path}: unexpected {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, el) in arr.iter().enumerate() {
            errs.extend(validate(items, el, &format!("{path}[{i}]")));
        }
    }
    errs
}

fn schema() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(crate_dir().join("schema/audit-report.schema.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn reports_validate_against_the_schema_and_round_trip() {
    let schema = schema();
    let states = [crafted("pass"), crafted("fail"), NodeState::default()];
    for p in profiles() {
        for s in &states {
            let r = audit(&p, s);
            let v = serde_json::to_value(&r).unwrap();
            let errs = validate(&schema, &v, "$");
            assert!(errs.is_empty(), "{}: {errs:#?}", p.name);
            assert_eq!(v["schema"], REPORT_SCHEMA);
            let back: Report = serde_json::from_value(v).unwrap();
            assert_eq!(back, r);
        }
    }
    // The validator does catch violations.
    let mut v = serde_json::to_value(audit(&kspp(), &crafted("pass"))).unwrap();
    v["results"][0]["result"] = "maybe".into();
    v["results"][1]["extra"] = 1.into();
    v["results"][2]["id"] = "bogus.x".into();
    v["summary"].as_object_mut().unwrap().remove("unknown");
    assert_eq!(validate(&schema, &v, "$").len(), 4);
}

#[test]
fn report_json_shape_is_stable() {
    let r = audit(&kspp(), &crafted("fail"));
    let v = serde_json::to_value(&r).unwrap();
    let first = &v["results"][0];
    assert_eq!(first["id"], "kconfig.CONFIG_BUG");
    assert_eq!(first["kind"], "kconfig");
    assert_eq!(first["key"], "CONFIG_BUG");
    assert_eq!(first["source"], "KSPP");
    assert_eq!(first["expected"], "= y");
    assert_eq!(first["result"], "fail");
    let unknown = serde_json::to_value(audit(&kspp(), &NodeState::default())).unwrap();
    assert_eq!(unknown["results"][0]["actual"], Value::Null);
    assert_eq!(unknown["results"][0]["result"], "unknown");
}

// ---------------------------------------------------------------------------------------------
// docs/hardening.md

#[test]
fn docs_hardening_md_is_generated_from_the_tables() {
    let path = crate_dir().join("../docs/hardening.md");
    let want = markdown();
    if std::env::var_os("WARRANT_REGENERATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/hardening.md is not the text generated from policy/src/hardening/rules.rs; \
         refresh it with: WARRANT_REGENERATE_DOCS=1 cargo test -p policy --test hardening"
    );
    // Every check of every profile is listed, with its source and reason.
    for p in profiles() {
        for c in &p.checks {
            assert!(want.contains(&format!("| `{}` |", c.id)), "{}", c.id);
            assert!(want.contains(c.reason), "{}", c.id);
        }
    }
}

#[test]
fn harden_targets_fix_failing_sysctls_and_only_sysctls() {
    // Writing each failing sysctl check's target into the state makes it pass.
    for p in profiles() {
        let mut s = crafted("fail");
        let r = audit(&p, &s);
        for (c, res) in p.checks.iter().zip(&r.results) {
            assert_eq!(c.id, res.id);
            match c.kind {
                Kind::Sysctl => {
                    let t = c.target().unwrap_or_else(|| panic!("{}: no target", c.id));
                    s.sysctls.as_mut().unwrap().insert(c.key.to_string(), t);
                }
                _ => assert_eq!(c.target(), None, "{}", c.id),
            }
        }
        let r = audit(&p, &s);
        let bad: Vec<_> = r
            .results
            .iter()
            .filter(|c| c.kind == Kind::Sysctl && c.result != Verdict::Pass)
            .map(|c| &c.id)
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", p.name);
    }
    // A stricter value than Talos' passes: ptrace_scope 3 against Talos' 2.
    let t = profile("talos").unwrap();
    let mut sys = BTreeMap::new();
    sys.insert("kernel.yama.ptrace_scope".to_string(), "3".to_string());
    let r = audit(
        &t,
        &NodeState {
            sysctls: Some(sys),
            ..NodeState::default()
        },
    );
    assert_eq!(
        result(&r, "sysctl.kernel.yama.ptrace_scope").result,
        Verdict::Pass
    );
}

// ---------------------------------------------------------------------------------------------
// The root: dm-verity with the expected root hash

fn verity_result(state: &NodeState) -> (Verdict, String) {
    let r = audit(&kspp(), state);
    let c = result(&r, "verity./");
    (c.result, c.actual.clone().unwrap_or_default())
}

fn verified() -> RootBacking {
    RootBacking::Verity(parse_veritysetup_status(&fixture("verity-status-verified.txt")).unwrap())
}

fn expect_hash(hex: &str) -> Option<ExpectedRootHash> {
    Some(ExpectedRootHash {
        hex: hex.into(),
        from: "--root-hash".into(),
    })
}

#[test]
fn veritysetup_status_is_parsed_and_other_mappings_are_refused() {
    let v = parse_veritysetup_status(&fixture("verity-status-verified.txt")).unwrap();
    assert_eq!(v.status, "verified");
    assert_eq!(v.data_device, "/dev/vda2");
    assert_eq!(
        v.root_hash,
        "5359dae98e689ab029ad4176ddb043ff541c8acfefc4dcf17bd36d7dc70a29fb"
    );
    assert_eq!(
        parse_veritysetup_status(&fixture("crypt-status-luks.txt")),
        Err(ParseError::VerityStatus {
            missing: "type: VERITY"
        })
    );
    let no_hash: String = fixture("verity-status-verified.txt")
        .lines()
        .filter(|l| !l.contains("root hash"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse_veritysetup_status(&no_hash),
        Err(ParseError::VerityStatus {
            missing: "root hash"
        })
    );
    let bad_hash =
        fixture("verity-status-verified.txt").replace("root hash:   5359", "root hash:   x359");
    assert_eq!(
        parse_veritysetup_status(&bad_hash),
        Err(ParseError::RootHash)
    );
    assert_eq!(
        parse_veritysetup_status(""),
        Err(ParseError::VerityStatus {
            missing: "type: VERITY"
        })
    );
}

#[test]
fn the_root_passes_only_as_verified_dm_verity_with_the_expected_root_hash() {
    let good = "5359dae98e689ab029ad4176ddb043ff541c8acfefc4dcf17bd36d7dc70a29fb";
    // The expectation from the command line (crafted pass state) or from --root-hash.
    let (v, actual) = verity_result(&crafted("pass"));
    assert_eq!(v, Verdict::Pass, "{actual}");
    assert!(
        actual.contains("roothash= on the kernel command line"),
        "{actual}"
    );
    let state = NodeState {
        root: Some(verified()),
        expected_root_hash: expect_hash(good),
        ..NodeState::default()
    };
    assert_eq!(verity_result(&state).0, Verdict::Pass);

    // Another root hash: both named.
    let other = "00".repeat(32);
    let (v, actual) = verity_result(&NodeState {
        expected_root_hash: expect_hash(&other),
        ..state.clone()
    });
    assert_eq!(v, Verdict::Fail);
    assert!(actual.contains(good) && actual.contains(&other), "{actual}");

    // The kernel met a corrupted block: fails whatever the hash.
    let corrupted = RootBacking::Verity(
        parse_veritysetup_status(&fixture("verity-status-corrupted.txt")).unwrap(),
    );
    let (v, actual) = verity_result(&NodeState {
        root: Some(corrupted),
        ..state.clone()
    });
    assert_eq!(v, Verdict::Fail);
    assert!(actual.contains("corrupted"), "{actual}");

    // No expectation: any hash would do, which proves nothing.
    let (v, actual) = verity_result(&NodeState {
        expected_root_hash: None,
        ..state.clone()
    });
    assert_eq!(v, Verdict::Unknown);
    assert!(actual.contains("no expected root hash"), "{actual}");

    // Not dm-verity at all; and nothing known.
    let (v, actual) = verity_result(&crafted("fail"));
    assert_eq!(v, Verdict::Fail);
    assert_eq!(actual, "not dm-verity: / is /dev/sda1 (ext4)");
    assert_eq!(verity_result(&NodeState::default()).0, Verdict::Unknown);
}

#[test]
fn the_expected_root_hash_comes_from_the_last_roothash_parameter() {
    let cl = Cmdline::parse("roothash=AA roothash=bbcc quiet").unwrap();
    let e = ExpectedRootHash::from_cmdline(&cl).unwrap().unwrap();
    assert_eq!(e.hex, "bbcc");
    let cl = Cmdline::parse("systemd.verity_root_hash=0011").unwrap();
    assert_eq!(
        ExpectedRootHash::from_cmdline(&cl).unwrap().unwrap().hex,
        "0011"
    );
    assert!(ExpectedRootHash::from_cmdline(&Cmdline::parse("quiet").unwrap()).is_none());
    assert_eq!(
        ExpectedRootHash::from_cmdline(&Cmdline::parse("roothash=xyz").unwrap()),
        Some(Err(ParseError::RootHash))
    );
}
