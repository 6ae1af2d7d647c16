//! `warrant audit`: the node (or the files given) against a hardening profile (see
//! docs/hardening.md). Reading files is here; the rules and their evaluation are the pure
//! `policy::hardening`.

use crate::{emit, print_json, Failure};
use clap::Args;
use policy::hardening::{
    audit, parse_lockdown, parse_lsm_list, parse_mountinfo, parse_sig_enforce,
    parse_veritysetup_status, profile, Cmdline, ExpectedRootHash, KernelConfig, Kind, Mount,
    NodeState, Report, RootBacking, Verdict, VerityStatus,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct AuditArgs {
    /// The profile: kspp, kubernetes-node or talos.
    #[arg(long, default_value = "kubernetes-node")]
    profile: String,
    /// A kernel config (.config text, or gzip as /proc/config.gz); default: /proc/config.gz,
    /// else /boot/config-$(uname -r).
    #[arg(long, value_name = "FILE")]
    kconfig: Option<PathBuf>,
    /// A kernel command line; default: /proc/cmdline.
    #[arg(long, value_name = "FILE")]
    cmdline: Option<PathBuf>,
    /// Where sysctls are read (`DIR/kernel/kptr_restrict`...); default: /proc/sys.
    #[arg(long, value_name = "DIR", conflicts_with = "sysctl")]
    sysctl_root: Option<PathBuf>,
    /// Sysctls as `sysctl -a` prints them (`key = value` lines), instead of a folder.
    #[arg(long, value_name = "FILE")]
    sysctl: Option<PathBuf>,
    /// A mount table in /proc/self/mountinfo format; default: /proc/self/mountinfo.
    #[arg(long, value_name = "FILE")]
    mountinfo: Option<PathBuf>,
    /// Where securityfs is (lockdown, lsm); default: /sys/kernel/security.
    #[arg(long, value_name = "DIR")]
    securityfs: Option<PathBuf>,
    /// The module signature setting file; default: /sys/module/module/parameters/sig_enforce.
    #[arg(long, value_name = "FILE")]
    sig_enforce: Option<PathBuf>,
    /// The root hash `/` must have (hex); default: `roothash=` (or
    /// `systemd.verity_root_hash=`) on the kernel command line.
    #[arg(long, value_name = "HEX")]
    root_hash: Option<String>,
    /// What `veritysetup status NAME` printed for the root's device, for an audit from files;
    /// default: found from `/`'s device and asked of veritysetup.
    #[arg(long, value_name = "FILE")]
    verity_status: Option<PathBuf>,
    /// Where the read-only root is mounted, for the `verity./` check (an initrd audits the
    /// root at /sysroot before it switches to it).
    #[arg(long, value_name = "PATH", default_value = "/")]
    root: String,
    /// JSON (schema policy/schema/audit-report.schema.json).
    #[arg(long, conflicts_with = "sarif")]
    json: bool,
    /// SARIF 2.1.0, for CI pipelines.
    #[arg(long)]
    sarif: bool,
}

/// A file's text; `Ok(None)` when it does not exist or cannot be read (the checks needing it
/// are then `unknown`), an error when the user named it and it cannot be read.
fn read_text(path: &Path, named: bool) -> Result<Option<String>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if named => Err(Failure::input(format!("{}: {e}", path.display()))),
        Err(_) => Ok(None),
    }
}

fn kernel_config(arg: Option<&Path>) -> Result<Option<KernelConfig>, Failure> {
    let candidates: Vec<(PathBuf, bool)> = match arg {
        Some(p) => vec![(p.to_path_buf(), true)],
        None => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            vec![
                (PathBuf::from("/proc/config.gz"), false),
                (PathBuf::from(format!("/boot/config-{release}")), false),
            ]
        }
    };
    for (path, named) in candidates {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if named => return Err(Failure::input(format!("{}: {e}", path.display()))),
            Err(_) => continue,
        };
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read as _;
            let mut out = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut out)
                .map_err(|e| Failure::input(format!("{}: bad gzip: {e}", path.display())))?;
            out
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        return KernelConfig::parse(&text)
            .map(Some)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())));
    }
    Ok(None)
}

/// The node's state as the profile needs it.
fn node_state(args: &AuditArgs, sysctl_keys: &[&str]) -> Result<NodeState, Failure> {
    let parse_err = |p: &Path, e: policy::hardening::ParseError| {
        Failure::input(format!("{}: {e}", p.display()))
    };
    let cmdline_path = args
        .cmdline
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/cmdline"));
    let cmdline = read_text(&cmdline_path, args.cmdline.is_some())?
        .map(|t| Cmdline::parse(&t).map_err(|e| parse_err(&cmdline_path, e)))
        .transpose()?;
    let root = args
        .sysctl_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/sys"));
    let sysctls = if let Some(file) = &args.sysctl {
        let text = read_text(file, true)?.unwrap_or_default();
        Some(policy::hardening::parse_sysctl_lines(&text).map_err(|e| parse_err(file, e))?)
    } else if root.is_dir() {
        let mut map = BTreeMap::new();
        for key in sysctl_keys {
            let path = root.join(key.replace('.', "/"));
            if let Ok(v) = std::fs::read_to_string(&path) {
                map.insert((*key).to_string(), v.trim().to_string());
            }
        }
        Some(map)
    } else if args.sysctl_root.is_some() {
        return Err(Failure::input(format!("{}: not a folder", root.display())));
    } else {
        None
    };
    let mountinfo = args
        .mountinfo
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/mountinfo"));
    let mounts = read_text(&mountinfo, args.mountinfo.is_some())?
        .map(|t| parse_mountinfo(&t).map_err(|e| parse_err(&mountinfo, e)))
        .transpose()?;
    let secfs = args
        .securityfs
        .clone()
        .unwrap_or_else(|| PathBuf::from("/sys/kernel/security"));
    let lockdown_path = secfs.join("lockdown");
    let lockdown = read_text(&lockdown_path, false)?
        .map(|t| parse_lockdown(&t).map_err(|e| parse_err(&lockdown_path, e)))
        .transpose()?;
    let lsm_path = secfs.join("lsm");
    let lsms = read_text(&lsm_path, false)?
        .map(|t| parse_lsm_list(&t).map_err(|e| parse_err(&lsm_path, e)))
        .transpose()?;
    let sig_path = args
        .sig_enforce
        .clone()
        .unwrap_or_else(|| PathBuf::from("/sys/module/module/parameters/sig_enforce"));
    let module_sig_enforce = read_text(&sig_path, args.sig_enforce.is_some())?
        .map(|t| parse_sig_enforce(&t).map_err(|e| parse_err(&sig_path, e)))
        .transpose()?;
    let expected_root_hash = match &args.root_hash {
        Some(h) => Some(ExpectedRootHash {
            hex: policy::hardening::state::normalize_root_hash(h)
                .map_err(|e| Failure::input(format!("--root-hash: {e}")))?,
            from: "--root-hash".into(),
        }),
        None => cmdline
            .as_ref()
            .and_then(ExpectedRootHash::from_cmdline)
            .transpose()
            .map_err(|e| parse_err(&cmdline_path, e))?,
    };
    let root = root_backing(args, mounts.as_deref())?;
    Ok(NodeState {
        kconfig: kernel_config(args.kconfig.as_deref())?,
        root,
        expected_root_hash,
        cmdline,
        sysctls,
        mounts,
        lockdown,
        module_sig_enforce,
        lsms,
    })
}

/// What backs `/`: from `--verity-status`, or (auditing this node) from `/`'s device number:
/// a device-mapper device whose DM UUID says veritysetup made it is asked of
/// `veritysetup status`. `None` (unknown) when that cannot be found out.
fn root_backing(
    args: &AuditArgs,
    mounts: Option<&[Mount]>,
) -> Result<Option<RootBacking>, Failure> {
    if let Some(file) = &args.verity_status {
        let text = read_text(file, true)?.unwrap_or_default();
        return parse_veritysetup_status(&text)
            .map(|v| Some(RootBacking::Verity(v)))
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())));
    }
    let Some(root) = mounts.and_then(|m| m.iter().rev().find(|m| m.mount_point == args.root))
    else {
        return Ok(None);
    };
    let other = || {
        Some(RootBacking::Other {
            source: root.source.clone(),
            fs_type: root.fs_type.clone(),
        })
    };
    let dm = Path::new("/sys/dev/block").join(&root.device).join("dm");
    if args.mountinfo.is_some() {
        // Another machine's mount table: its device numbers mean nothing here.
        let mapped = root.source.starts_with("/dev/mapper/") || root.source.starts_with("/dev/dm-");
        return Ok(if mapped { None } else { other() });
    }
    let Ok(uuid) = std::fs::read_to_string(dm.join("uuid")) else {
        return Ok(other());
    };
    if !uuid.starts_with("CRYPT-VERITY-") {
        return Ok(other());
    }
    let Ok(name) = std::fs::read_to_string(dm.join("name")) else {
        return Ok(None);
    };
    match veritysetup_status(name.trim()) {
        Ok(v) => Ok(Some(RootBacking::Verity(v))),
        // No veritysetup, or no such mapping after all: unknown, never passed.
        Err(VerityQuery::Unavailable(_)) => Ok(None),
        Err(VerityQuery::Unreadable(e)) => Err(Failure::input(e)),
    }
}

/// Why `veritysetup status NAME` told nothing usable.
pub enum VerityQuery {
    /// veritysetup could not run, or answered that NAME is no active mapping.
    Unavailable(String),
    /// It answered, but not as for an active dm-verity device.
    Unreadable(String),
}

/// What the kernel says of the active dm-verity mapping `name` (`veritysetup status NAME`).
pub fn veritysetup_status(name: &str) -> Result<VerityStatus, VerityQuery> {
    let out = std::process::Command::new("veritysetup")
        .args(["status", name])
        .output()
        .map_err(|e| VerityQuery::Unavailable(format!("cannot run veritysetup: {e}")))?;
    let said = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    if !out.status.success() {
        let why = Some(said(&out.stderr))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| said(&out.stdout));
        return Err(VerityQuery::Unavailable(format!(
            "not an active dm-verity device (veritysetup status {name}: {why})"
        )));
    }
    parse_veritysetup_status(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| VerityQuery::Unreadable(format!("veritysetup status {name}: {e}")))
}

pub fn run(args: AuditArgs) -> Result<(), Failure> {
    let p = profile(&args.profile).ok_or_else(|| {
        Failure::input(format!(
            "unknown profile {:?} (known: {})",
            args.profile,
            policy::hardening::rules::PROFILE_NAMES.join(", ")
        ))
    })?;
    let keys: Vec<&str> = p
        .checks
        .iter()
        .filter(|c| c.kind == Kind::Sysctl)
        .map(|c| c.key)
        .collect();
    let state = node_state(&args, &keys)?;
    let report = audit(&p, &state);
    if args.json {
        print_json(&report)?;
    } else if args.sarif {
        print_json(&sarif(&report, &p))?;
    } else {
        emit(&human(&report))?;
    }
    if report.passed() {
        Ok(())
    } else {
        Err(Failure::verdict(format!(
            "profile {} does not hold: {} failed, {} unknown of {}",
            report.profile, report.summary.fail, report.summary.unknown, report.summary.total
        )))
    }
}

fn human(report: &Report) -> String {
    let mut out = format!(
        "profile {}: {} passed, {} failed, {} unknown of {}\n",
        report.profile,
        report.summary.pass,
        report.summary.fail,
        report.summary.unknown,
        report.summary.total
    );
    for r in report.not_passed() {
        out.push_str(&format!(
            "  {:7} {} ({}): expected {}, {}\n          {}\n",
            match r.result {
                Verdict::Fail => "FAIL",
                _ => "UNKNOWN",
            },
            r.id,
            r.source.as_str(),
            r.expected,
            r.actual
                .as_deref()
                .map_or("could not be read".to_string(), |a| format!("found {a}")),
            r.reason
        ));
    }
    out
}

/// The report as SARIF 2.1.0: one rule per check of the profile, one result per check that
/// did not pass (`error` for a failure, `warning` for unknown).
fn sarif(report: &Report, p: &policy::hardening::Profile) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = p
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "name": c.id,
                "shortDescription": {"text": format!("{} {}", c.key, c.expect)},
                "fullDescription": {"text": c.reason},
                "properties": {"source": c.source.as_str(), "reference": c.reference, "kind": c.kind.as_str()},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .not_passed()
        .map(|r| {
            serde_json::json!({
                "ruleId": r.id,
                "level": if r.result == Verdict::Fail { "error" } else { "warning" },
                "message": {"text": format!(
                    "{}: expected {}, {}. {}",
                    r.key,
                    r.expected,
                    r.actual.as_deref().map_or("could not be read".to_string(), |a| format!("found {a}")),
                    r.reason
                )},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact(r.kind)}}}],
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "warrant",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "properties": {"profile": report.profile, "summary": report.summary},
        }],
    })
}

fn artifact(kind: Kind) -> &'static str {
    match kind {
        Kind::Kconfig => "/proc/config.gz",
        Kind::Cmdline => "/proc/cmdline",
        Kind::Sysctl => "/proc/sys",
        Kind::Mount => "/proc/self/mountinfo",
        Kind::Lsm => "/sys/kernel/security",
        Kind::Verity => "/sys/dev/block",
    }
}

/// `warrant harden apply`.
#[derive(clap::Subcommand)]
pub enum HardenCommand {
    /// Write the profile's sysctls and raise kernel lockdown where the node is weaker; print
    /// every change. Never lowers a setting that is already stricter.
    Apply {
        /// The profile: kspp, kubernetes-node or talos.
        #[arg(long, default_value = "kubernetes-node")]
        profile: String,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where sysctls are written; default: /proc/sys.
        #[arg(long, value_name = "DIR")]
        sysctl_root: Option<PathBuf>,
        /// Where securityfs is (lockdown); default: /sys/kernel/security.
        #[arg(long, value_name = "DIR")]
        securityfs: Option<PathBuf>,
    },
}

pub fn harden(cmd: HardenCommand) -> Result<(), Failure> {
    let HardenCommand::Apply {
        profile: name,
        dry_run,
        sysctl_root,
        securityfs,
    } = cmd;
    let p = profile(&name).ok_or_else(|| Failure::input(format!("unknown profile {name:?}")))?;
    let root = sysctl_root.unwrap_or_else(|| PathBuf::from("/proc/sys"));
    let secfs = securityfs.unwrap_or_else(|| PathBuf::from("/sys/kernel/security"));
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for check in p.checks.iter().filter(|c| c.kind == Kind::Sysctl) {
        let path = root.join(check.key.replace('.', "/"));
        let Ok(current) = std::fs::read_to_string(&path) else {
            lines.push(format!("skip   {}: not on this kernel", check.key));
            continue;
        };
        let current = current.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut sysctls = BTreeMap::new();
        sysctls.insert(check.key.to_string(), current.clone());
        let single = policy::hardening::Profile {
            name: p.name,
            description: p.description,
            checks: vec![*check],
            changes: Vec::new(),
        };
        let state = NodeState {
            sysctls: Some(sysctls),
            ..NodeState::default()
        };
        if audit(&single, &state).passed() {
            lines.push(format!("ok     {} = {current}", check.key));
            continue;
        }
        let Some(value) = check.target() else {
            lines.push(format!(
                "manual {}: {current}, expected {} (no single value to write)",
                check.key, check.expect
            ));
            continue;
        };
        if dry_run {
            lines.push(format!("would  {}: {current} -> {value}", check.key));
            continue;
        }
        match std::fs::write(&path, format!("{value}\n")) {
            Ok(()) => lines.push(format!("set    {}: {current} -> {value}", check.key)),
            Err(e) => failures.push(format!("{}: {e}", check.key)),
        }
    }
    // Kernel lockdown: raised to what the profile expects, never lowered (the kernel refuses
    // lowering anyway).
    if let Some(check) = p
        .checks
        .iter()
        .find(|c| c.kind == Kind::Lsm && c.key == "lockdown")
    {
        let path = secfs.join("lockdown");
        match read_text(&path, false)? {
            None => lines.push("skip   lockdown: no securityfs lockdown file".to_string()),
            Some(text) => {
                let mode = parse_lockdown(&text)
                    .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
                let state = NodeState {
                    lockdown: Some(mode),
                    ..NodeState::default()
                };
                let single = policy::hardening::Profile {
                    name: p.name,
                    description: p.description,
                    checks: vec![*check],
                    changes: Vec::new(),
                };
                if audit(&single, &state).passed() {
                    lines.push(format!("ok     lockdown = {}", mode.as_str()));
                } else if dry_run {
                    lines.push(format!("would  lockdown: {} -> integrity", mode.as_str()));
                } else {
                    match std::fs::write(&path, "integrity\n") {
                        Ok(()) => {
                            lines.push(format!("set    lockdown: {} -> integrity", mode.as_str()))
                        }
                        Err(e) => failures.push(format!("lockdown: {e}")),
                    }
                }
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    emit(&text)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::verdict(format!(
            "could not apply: {}",
            failures.join("; ")
        )))
    }
}
