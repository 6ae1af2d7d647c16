//! # Hardening rules as data, and the audit of a node against them (pure)
//!
//! Every check Warrant makes of a node's kernel is a row of a table in [`rules`]: a stable id
//! (`kconfig.CONFIG_STRICT_KERNEL_RWX`, `sysctl.kernel.kptr_restrict`, `mount./tmp`...), the
//! [`Kind`] of state it looks at, the key, the [`Expect`]ed value, the [`Source`] that recommends
//! it (with a precise reference) and a one-sentence reason. A [`Profile`] is a list of such rows;
//! `docs/hardening.md` is generated from them ([`markdown`]).
//!
//! The audit is a pure function of typed input: the caller reads `/proc`, `/sys` and the kernel
//! config, parses the text with the parsers in [`state`] into a [`NodeState`], and calls
//! [`audit`]. Nothing here opens a file.
//!
//! ```no_run
//! use policy::hardening::{audit, profile, Cmdline, KernelConfig, NodeState};
//! # fn read(_: &str) -> String { String::new() }
//! let state = NodeState {
//!     kconfig: KernelConfig::parse(&read("/boot/config-6.1.0-56-amd64")).ok(),
//!     cmdline: Cmdline::parse(&read("/proc/cmdline")).ok(),
//!     ..NodeState::default()
//! };
//! let p = profile("kubernetes-node").expect("built-in profile");
//! let report = audit(&p, &state);
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! std::process::exit(if report.passed() { 0 } else { 1 });
//! ```
//!
//! For `warrant harden apply`: [`Check::target`] gives the value to write for a failing sysctl
//! check, and [`Profile::checks`] with [`Report::results`] (same order, same ids) say which
//! checks failed.
//!
//! ## Verdicts
//! Each check is `pass`, `fail` or `unknown`. `unknown` means the input was not available (no
//! kernel config readable, a sysctl missing): it is reported, and it is **not** a pass — a
//! profile holds ([`Report::passed`]) only when every check passed.
//!
//! Trust assumption: the state is what the node reports about itself. On a node whose kernel is
//! already compromised it can lie; the audit is a hardening aid, and attestation (measured boot,
//! dm-verity root hash) is what binds the kernel and command line to evidence.

pub mod rules;
pub mod state;

pub use rules::{profile, profiles, Profile, ProfileChange};
pub use state::{
    parse_lockdown, parse_lsm_list, parse_mountinfo, parse_sig_enforce, parse_sysctl_lines,
    parse_veritysetup_status, Cmdline, ExpectedRootHash, KconfigValue, KernelConfig, LockdownMode,
    Mount, NodeState, ParseError, RootBacking, VerityStatus,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `schema` value of the audit report JSON (`policy/schema/audit-report.schema.json`).
pub const REPORT_SCHEMA: &str = "warrant-audit-report/1";

/// Which part of the node's state a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A kernel build option (`CONFIG_*`), from the kernel config.
    Kconfig,
    /// A kernel command-line parameter, from `/proc/cmdline`.
    Cmdline,
    /// A sysctl, from `/proc/sys`.
    Sysctl,
    /// Options of a mount, from `/proc/self/mountinfo`.
    Mount,
    /// LSM state: lockdown mode, module signature enforcement, active LSMs.
    Lsm,
    /// What backs a file system: `/` on an active dm-verity device with the expected root hash.
    Verity,
}

impl Kind {
    /// All kinds, in report order.
    pub const ALL: [Kind; 6] = [
        Kind::Kconfig,
        Kind::Cmdline,
        Kind::Sysctl,
        Kind::Mount,
        Kind::Lsm,
        Kind::Verity,
    ];

    /// The kind's name as serialized (`kconfig`, `cmdline`...), also the id prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kconfig => "kconfig",
            Kind::Cmdline => "cmdline",
            Kind::Sysctl => "sysctl",
            Kind::Mount => "mount",
            Kind::Lsm => "lsm",
            Kind::Verity => "verity",
        }
    }
}

/// Who recommends a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    /// The Kernel Self Protection Project's "Recommended Settings" (kernsec.org wiki), as also
    /// encoded by kernel-hardening-checker with decision `kspp`.
    #[serde(rename = "KSPP")]
    Kspp,
    /// A CIS Benchmark (Distribution Independent Linux / Kubernetes).
    #[serde(rename = "CIS")]
    Cis,
    /// What kubelet requires with `protectKernelDefaults: true`.
    #[serde(rename = "kubelet")]
    Kubelet,
    /// What Talos Linux enforces.
    #[serde(rename = "Talos")]
    Talos,
    /// kernel-hardening-checker's own recommendations (decisions other than `kspp`).
    #[serde(rename = "kernel-hardening-checker")]
    KernelHardeningChecker,
    /// Warrant's own requirement for its nodes (the measured, read-only root).
    #[serde(rename = "Warrant")]
    Warrant,
}

impl Source {
    /// The source's name as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kspp => "KSPP",
            Source::Cis => "CIS",
            Source::Kubelet => "kubelet",
            Source::Talos => "Talos",
            Source::KernelHardeningChecker => "kernel-hardening-checker",
            Source::Warrant => "Warrant",
        }
    }
}

/// The values falsy for the kernel's `kstrtobool` (command-line booleans).
pub const FALSY: &[&str] = &["0", "off", "n", "no", "f", "false"];

/// What a check expects of the value it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this value (kconfig: `y`, `m`, a number or the unquoted string; sysctl: the
    /// value with runs of whitespace collapsed; cmdline: the last occurrence's value).
    Equals(&'static str),
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// Present with any value other than these, or absent (cmdline: a default the kernel
    /// config already sets may only be overridden towards safety).
    NoneOf(&'static [&'static str]),
    /// kconfig: `# CONFIG_X is not set`, `=n`, or not mentioned at all.
    NotSet,
    /// A number at least this large.
    AtLeast(i64),
    /// A number at most this large.
    AtMost(i64),
    /// A number in this inclusive range.
    InRange(i64, i64),
    /// cmdline: the parameter appears (as a flag or with any value).
    Present,
    /// cmdline: the parameter does not appear.
    Absent,
    /// mount options or active LSMs: all of these are present.
    Includes(&'static [&'static str]),
    /// verity: an active dm-verity device that reports `verified`, whose root hash is the
    /// expected one (`--root-hash`, or `roothash=` on the kernel command line).
    VerityRootHash,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Equals(v) => write!(f, "= {v}"),
            Expect::OneOf(vs) => write!(f, "one of {}", vs.join(", ")),
            Expect::NoneOf(vs) => write!(f, "absent or not {}", vs.join("/")),
            Expect::NotSet => f.write_str("is not set"),
            Expect::AtLeast(n) => write!(f, ">= {n}"),
            Expect::AtMost(n) => write!(f, "<= {n}"),
            Expect::InRange(lo, hi) => write!(f, "in {lo}..={hi}"),
            Expect::Present => f.write_str("present"),
            Expect::Absent => f.write_str("absent"),
            Expect::Includes(vs) => write!(f, "includes {}", vs.join(",")),
            Expect::VerityRootHash => f.write_str("dm-verity, verified, the expected root hash"),
        }
    }
}

/// One row of a table: a check and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Stable id: `<kind>.<key>` (`kconfig.CONFIG_STRICT_KERNEL_RWX`, `mount./tmp`). Stable
    /// across releases and across profiles (a profile may expect a different value under the
    /// same id).
    pub id: &'static str,
    /// What state the check looks at.
    pub kind: Kind,
    /// The kconfig symbol, cmdline parameter, dotted sysctl name, mount point, or LSM key
    /// (`lockdown`, `module.sig_enforce`, `lsm`).
    pub key: &'static str,
    /// The expected value.
    pub expect: Expect,
    /// Who recommends it.
    pub source: Source,
    /// Where exactly (document and section, or repository file).
    pub reference: &'static str,
    /// Why, in one sentence.
    pub reason: &'static str,
}

impl Check {
    /// The value `warrant harden apply` writes to fix this check when it fails, for checks it
    /// can fix at run time (sysctls): `Equals(v)` gives `v`, `OneOf` its first value,
    /// `AtLeast(n)` gives `n`, `InRange(_, hi)` gives `hi`. `None` for every other kind and
    /// expectation (kernel config and command line need a new kernel or a reboot; mounts,
    /// lockdown and module signatures are the CLI's own steps).
    ///
    /// Apply it only to checks whose [`Verdict`] is [`Verdict::Fail`]: an `AtLeast` check fails
    /// only below `n`, so writing `n` never lowers a stricter value, and a passing check is
    /// never touched.
    pub fn target(&self) -> Option<String> {
        if self.kind != Kind::Sysctl {
            return None;
        }
        match self.expect {
            Expect::Equals(v) => Some(v.to_string()),
            Expect::OneOf(vs) => vs.first().map(|v| (*v).to_string()),
            Expect::AtLeast(n) => Some(n.to_string()),
            Expect::InRange(_, hi) => Some(hi.to_string()),
            _ => None,
        }
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The node has the expected value.
    Pass,
    /// The node has another value.
    Fail,
    /// The input was not available; never counted as a pass.
    Unknown,
}

/// One check's outcome, as serialized in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// The check's stable id.
    pub id: String,
    /// What state it looked at.
    pub kind: Kind,
    /// The kconfig symbol, parameter, sysctl, mount point or LSM key.
    pub key: String,
    /// Who recommends it.
    pub source: Source,
    /// The expected value, as text (`= y`, `>= 2`, `is not set`, `includes nosuid,nodev`).
    pub expected: String,
    /// What the node has, as text (`absent` when it lacks the key); `null` when unknown.
    pub actual: Option<String>,
    /// The verdict.
    pub result: Verdict,
    /// Why the check matters.
    pub reason: String,
}

/// Counts of verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Number of checks.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Not decidable from the input.
    pub unknown: usize,
}

/// The outcome of [`audit`]: serialize it with serde for the stable JSON schema
/// (`policy/schema/audit-report.schema.json`, `"schema": "warrant-audit-report/1"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The profile's name.
    pub profile: String,
    /// Whether the profile holds (every check passed), as [`Report::passed`].
    pub passed: bool,
    /// Counts.
    pub summary: Summary,
    /// One result per check of the profile, in the profile's order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether the profile holds: every check passed. `unknown` is not a pass.
    pub fn passed(&self) -> bool {
        self.summary.total == self.summary.pass
    }

    /// The results that did not pass (failed or unknown), for a short human report.
    pub fn not_passed(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.result != Verdict::Pass)
    }
}

/// Audits `state` against every check of `profile`: one [`CheckResult`] per check, in order.
pub fn audit(profile: &Profile, state: &NodeState) -> Report {
    let results: Vec<CheckResult> = profile
        .checks
        .iter()
        .map(|c| {
            let (result, actual) = evaluate(c, state);
            CheckResult {
                id: c.id.to_string(),
                kind: c.kind,
                key: c.key.to_string(),
                source: c.source,
                expected: c.expect.to_string(),
                actual,
                result,
                reason: c.reason.to_string(),
            }
        })
        .collect();
    let mut summary = Summary {
        total: results.len(),
        ..Summary::default()
    };
    for r in &results {
        match r.result {
            Verdict::Pass => summary.pass += 1,
            Verdict::Fail => summary.fail += 1,
            Verdict::Unknown => summary.unknown += 1,
        }
    }
    Report {
        schema: REPORT_SCHEMA.to_string(),
        profile: profile.name.to_string(),
        passed: summary.total == summary.pass,
        summary,
        results,
    }
}

const ABSENT: &str = "absent";

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

fn parse_num(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Compares a present value (cmdline, sysctl, kconfig number or string) with `expect`.
fn compare_value(expect: Expect, value: &str) -> bool {
    match expect {
        Expect::Equals(v) => value == v,
        Expect::OneOf(vs) => vs.contains(&value),
        Expect::NoneOf(vs) => !vs.contains(&value),
        Expect::AtLeast(n) => parse_num(value).is_some_and(|x| x >= n),
        Expect::AtMost(n) => parse_num(value).is_some_and(|x| x <= n),
        Expect::InRange(lo, hi) => parse_num(value).is_some_and(|x| (lo..=hi).contains(&x)),
        Expect::Present => true,
        // Never compared as text: `verity` evaluates it (fail closed if it ever were).
        Expect::NotSet | Expect::Absent | Expect::VerityRootHash => false,
        Expect::Includes(vs) => {
            let have: Vec<&str> = value.split(',').collect();
            vs.iter().all(|v| have.contains(v))
        }
    }
}

/// Whether `expect` is met by the key being absent.
fn absent_ok(expect: Expect) -> bool {
    matches!(expect, Expect::NotSet | Expect::Absent | Expect::NoneOf(_))
}

/// `/` on an active, uncorrupted dm-verity device with the expected root hash. Without an
/// expectation the result is `unknown`: any root hash would do, which proves nothing.
fn verity(s: &NodeState) -> (Verdict, Option<String>) {
    let Some(root) = &s.root else {
        return (Verdict::Unknown, None);
    };
    let v = match root {
        RootBacking::Other { source, fs_type } => {
            return (
                Verdict::Fail,
                Some(format!("not dm-verity: / is {source} ({fs_type})")),
            )
        }
        RootBacking::Verity(v) => v,
    };
    let seen = format!("dm-verity {}, root hash {}", v.status, v.root_hash);
    if !v.status.starts_with("verified") {
        return (Verdict::Fail, Some(seen));
    }
    match &s.expected_root_hash {
        None => (
            Verdict::Unknown,
            Some(format!(
                "{seen}; no expected root hash (give --root-hash, or boot with roothash=)"
            )),
        ),
        Some(e) if e.hex == v.root_hash => (Verdict::Pass, Some(format!("{seen} ({})", e.from))),
        Some(e) => (
            Verdict::Fail,
            Some(format!("{seen}; expected {} ({})", e.hex, e.from)),
        ),
    }
}

fn evaluate(c: &Check, s: &NodeState) -> (Verdict, Option<String>) {
    match c.kind {
        Kind::Kconfig => {
            let Some(cfg) = &s.kconfig else {
                return (Verdict::Unknown, None);
            };
            match cfg.get(c.key) {
                None => (verdict(absent_ok(c.expect)), Some(ABSENT.into())),
                Some(KconfigValue::NotSet) => (
                    verdict(absent_ok(c.expect)),
                    Some(KconfigValue::NotSet.to_string()),
                ),
                Some(v) => {
                    let text = match v {
                        KconfigValue::Str(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (verdict(compare_value(c.expect, &text)), Some(v.to_string()))
                }
            }
        }
        Kind::Cmdline => {
            let Some(cl) = &s.cmdline else {
                return (Verdict::Unknown, None);
            };
            match cl.get(c.key) {
                None => (verdict(absent_ok(c.expect)), Some(ABSENT.into())),
                Some(v) => {
                    let shown = match v {
                        Some(v) => format!("{}={v}", c.key),
                        None => c.key.to_string(),
                    };
                    let ok = match c.expect {
                        Expect::Present => true,
                        Expect::Absent | Expect::NotSet => false,
                        e => v.is_some_and(|v| compare_value(e, v)),
                    };
                    (verdict(ok), Some(shown))
                }
            }
        }
        Kind::Sysctl => {
            let Some(map) = &s.sysctls else {
                return (Verdict::Unknown, None);
            };
            match map.get(c.key) {
                None => (Verdict::Unknown, None),
                Some(v) => {
                    let norm = v.split_whitespace().collect::<Vec<_>>().join(" ");
                    (verdict(compare_value(c.expect, &norm)), Some(norm))
                }
            }
        }
        Kind::Mount => {
            let Some(mounts) = &s.mounts else {
                return (Verdict::Unknown, None);
            };
            // The last entry for a mount point is the one on top (mountinfo lists in mount order).
            match mounts.iter().rev().find(|m| m.mount_point == c.key) {
                None => (Verdict::Fail, Some("not a separate mount".into())),
                Some(m) => {
                    let ok = match c.expect {
                        Expect::Includes(opts) => opts.iter().all(|o| m.has_option(o)),
                        _ => false,
                    };
                    (verdict(ok), Some(m.options.join(",")))
                }
            }
        }
        Kind::Lsm => match c.key {
            "lockdown" => match s.lockdown {
                None => (Verdict::Unknown, None),
                Some(m) => (
                    verdict(compare_value(c.expect, m.as_str())),
                    Some(m.as_str().into()),
                ),
            },
            "module.sig_enforce" => match s.module_sig_enforce {
                None => (Verdict::Unknown, None),
                Some(b) => {
                    let v = if b { "1" } else { "0" };
                    (verdict(compare_value(c.expect, v)), Some(v.into()))
                }
            },
            "lsm" => match &s.lsms {
                None => (Verdict::Unknown, None),
                Some(l) => {
                    let v = l.join(",");
                    (verdict(compare_value(c.expect, &v)), Some(v))
                }
            },
            _ => (Verdict::Unknown, None),
        },
        Kind::Verity => verity(s),
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The text of `docs/hardening.md`, generated from the tables: every check of every profile
/// with its source, reference and reason, and how the profiles differ. A test fails when the
/// file in the repository differs (`WARRANT_REGENERATE_DOCS=1 cargo test -p policy --test
/// hardening` rewrites it).
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(rules::DOC_INTRO);
    for p in profiles() {
        out.push_str(&format!(
            "\n## Profile `{}`\n\n{}\n\n",
            p.name, p.description
        ));
        let mut counts = Vec::new();
        for k in Kind::ALL {
            let n = p.checks.iter().filter(|c| c.kind == k).count();
            counts.push(format!("{} {}", n, k.as_str()));
        }
        out.push_str(&format!(
            "{} checks: {}.\n",
            p.checks.len(),
            counts.join(", ")
        ));
        if !p.changes.is_empty() {
            out.push_str("\nHow it differs from `kspp`:\n\n| id | change | why |\n|---|---|---|\n");
            for ch in &p.changes {
                let (id, what, why) = match ch {
                    ProfileChange::Dropped { id, why } => (*id, "dropped".to_string(), *why),
                    ProfileChange::Relaxed { id, expect, why } => {
                        (*id, format!("expects `{expect}`"), *why)
                    }
                    ProfileChange::Added { id, why } => (*id, "added".to_string(), *why),
                };
                out.push_str(&format!(
                    "| `{id}` | {} | {} |\n",
                    md_escape(&what),
                    md_escape(why)
                ));
            }
        }
        for k in Kind::ALL {
            let rows: Vec<&Check> = p.checks.iter().filter(|c| c.kind == k).collect();
            if rows.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "\n### `{}`: {}\n\n| id | expected | source | reason |\n|---|---|---|---|\n",
                p.name,
                k.as_str()
            ));
            for c in rows {
                out.push_str(&format!(
                    "| `{}` | `{}` | {} ({}) | {} |\n",
                    c.id,
                    md_escape(&c.expect.to_string()),
                    c.source.as_str(),
                    md_escape(c.reference),
                    md_escape(c.reason)
                ));
            }
        }
    }
    out
}
