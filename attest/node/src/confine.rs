//! The agent's own confinement: once `warrant agent attest` has done its privileged set-up (TPM
//! opened, this boot measured), it narrows the file system with Landlock (where the kernel has
//! it) and installs its seccomp allowlist (seccomp/agent.json, compiled to BPF at build time by
//! build.rs). From then on the agent can read its logs and its CA, keep its state folder, talk
//! to the TPM and the verifier, and nothing else: no execve, ptrace, mount, namespaces, module
//! or kexec loading, netlink; no file outside those paths.
//!
//! `warrant agent confine-check` installs the same confinement in its own process and tries
//! what it must refuse and what it must still allow: a diagnostic for a new platform, and the
//! behaviour tests' subject (attest/node/tests/cli_confine.rs).

use crate::{emit, print_json, Failure};
use clap::{Args, ValueEnum};
use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, ABI,
};
use seccompiler::{sock_filter, BpfProgram};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The allowlist compiled: anything else fails with EPERM.
static ENFORCE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/agent-enforce.bpf"));
/// The allowlist compiled with "log" for anything else (allowed, and logged by the kernel).
static LOG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/agent-log.bpf"));
/// clone3 fails with ENOSYS: glibc falls back to clone, whose flags the allowlist checks.
static CLONE3: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/clone3.bpf"));
/// The newest Landlock ABI the agent asks for; older kernels enforce what they know.
const LANDLOCK_ABI: ABI = ABI::V5;

/// How `warrant agent attest` confines itself after its set-up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Mode {
    /// Seccomp allowlist (anything else fails with EPERM) and Landlock.
    Enforce,
    /// Seccomp logs what is outside the allowlist instead of refusing it (kernel audit log); no
    /// Landlock. For finding what a new platform needs.
    Log,
    /// No confinement.
    Off,
}

/// What the agent may still reach on the file system once confined.
pub struct Paths {
    /// Files and folders it may read.
    pub read: Vec<PathBuf>,
    /// Folders in which it may also create, replace and remove files.
    pub write: Vec<PathBuf>,
}

impl Paths {
    /// What every agent reads besides its own arguments: name resolution, OpenSSL's
    /// configuration (tpm2-tss loads it) and the hostname. /usr is the read-only OS.
    pub fn system() -> Vec<PathBuf> {
        [
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/gai.conf",
            "/etc/ssl",
            "/usr",
            "/proc/sys/kernel/hostname",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect()
    }
}

/// What was installed.
#[derive(Serialize, Clone, Debug)]
pub struct Applied {
    /// "enforce", "log" or "off".
    pub seccomp: &'static str,
    /// Landlock's state, in words.
    pub landlock: String,
    /// Whether Landlock actually restricts the file system now.
    pub landlock_enforced: bool,
}

/// Confines this process. Call it before any thread is started: Landlock binds the calling
/// thread and the threads it starts afterwards.
pub fn apply(mode: Mode, paths: &Paths) -> Result<Applied, Failure> {
    if mode == Mode::Off {
        return Ok(Applied {
            seccomp: "off",
            landlock: "off".into(),
            landlock_enforced: false,
        });
    }
    if ENFORCE.is_empty() {
        return Err(Failure::input(
            "the agent's seccomp filter exists for x86_64 only: run it with --confine off on \
             this architecture",
        ));
    }
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim().to_string())
        });
    if threads.as_deref().is_some_and(|n| n != "1") {
        return Err(Failure::input(
            "internal error: confinement must be installed before any thread starts",
        ));
    }
    let (landlock, landlock_enforced) = match mode {
        Mode::Enforce => narrow(paths)?,
        _ => ("not applied (--confine log)".to_string(), false),
    };
    let main = if mode == Mode::Enforce { ENFORCE } else { LOG };
    // The clone3 filter first: once the allowlist is in, no further filter can be installed.
    for (what, bytes) in [("clone3 filter", CLONE3), ("allowlist", main)] {
        seccompiler::apply_filter_all_threads(&program(bytes)).map_err(|e| {
            Failure::input(format!("cannot install the agent's seccomp {what}: {e}"))
        })?;
    }
    Ok(Applied {
        seccomp: if mode == Mode::Enforce {
            "enforce"
        } else {
            "log"
        },
        landlock,
        landlock_enforced,
    })
}

/// The build script's bytes back to instructions.
fn program(bytes: &[u8]) -> BpfProgram {
    bytes
        .chunks_exact(8)
        .filter_map(|i| match *i {
            [c0, c1, jt, jf, k0, k1, k2, k3] => Some(sock_filter {
                code: u16::from_ne_bytes([c0, c1]),
                jt,
                jf,
                k: u32::from_ne_bytes([k0, k1, k2, k3]),
            }),
            _ => None,
        })
        .collect()
}

/// Landlock: read-only below `paths.read`, read-write below `paths.write`, nothing elsewhere.
/// Paths that do not exist are skipped (a missing IMA list, say): nothing is reachable there.
fn narrow(paths: &Paths) -> Result<(String, bool), Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure::input(format!("Landlock: {e}"));
    let read: BitFlags<AccessFs> = AccessFs::from_read(LANDLOCK_ABI);
    let write =
        read | AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile | AccessFs::Truncate;
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.create())
        .map_err(|e| fail(&e))?;
    for (list, access) in [(&paths.read, read), (&paths.write, write)] {
        for path in list.iter().filter(|p| p.exists()) {
            let fd = PathFd::new(path).map_err(|e| fail(&format!("{}: {e}", path.display())))?;
            // A file takes only the rights that apply to files.
            let access = if path.is_dir() {
                access
            } else {
                access & AccessFs::from_file(LANDLOCK_ABI)
            };
            ruleset = ruleset
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| fail(&format!("{}: {e}", path.display())))?;
        }
    }
    let status = ruleset.restrict_self().map_err(|e| fail(&e))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => ("enforced".into(), true),
        RulesetStatus::PartiallyEnforced => (
            "partially enforced (this kernel's Landlock ABI is older than the agent's)".into(),
            true,
        ),
        RulesetStatus::NotEnforced => ("not available in this kernel".into(), false),
    })
}

#[derive(Args)]
pub struct CheckArgs {
    /// A folder the probe may use as the agent's state folder (files are created and removed).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// A folder outside the agent's paths: the probe tries to create a file there, which
    /// Landlock must refuse (removed again if the attempt succeeds).
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    outside: PathBuf,
    /// A file outside the agent's paths that it tries to read (Landlock must refuse).
    #[arg(long, value_name = "FILE", default_value = "/etc/passwd")]
    outside_file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The confinement to try (`off` shows what the probes find in an unconfined process).
    #[arg(long, value_enum, default_value = "enforce")]
    confine: Mode,
}

#[derive(Serialize)]
struct Probe {
    probe: &'static str,
    expected: &'static str,
    outcome: String,
    ok: bool,
}

impl Probe {
    /// A probe's result, judged against whether it should have got through.
    fn new(probe: &'static str, should_pass: bool, result: std::io::Result<String>) -> Probe {
        let (outcome, passed) = match result {
            Ok(done) => (format!("allowed: {done}"), true),
            Err(e) => (format!("refused: {e}"), false),
        };
        Probe {
            probe,
            expected: if should_pass { "allowed" } else { "refused" },
            outcome,
            ok: passed == should_pass,
        }
    }
}

#[derive(Serialize)]
struct CheckReport {
    confinement: Applied,
    probes: Vec<Probe>,
    passed: bool,
}

/// `warrant agent confine-check`: confine this process as the agent does, then try what the
/// agent must not be able to do and what it must still do. Exit 0 when every probe came out
/// as expected, 1 otherwise.
pub fn check(args: &CheckArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure::input(format!("{}: {e}", args.state.display())))?;
    let paths = Paths {
        read: Paths::system(),
        write: vec![args.state.clone()],
    };
    let applied = apply(args.confine, &paths)?;
    let mut probes = Vec::new();
    let mut refused = |probe, result| probes.push(Probe::new(probe, false, result));
    refused(
        "execve /bin/true",
        std::process::Command::new("/bin/true")
            .status()
            .map(|s| s.to_string()),
    );
    refused(
        "ptrace(PTRACE_TRACEME)",
        nix::sys::ptrace::traceme()
            .map(|()| "traced".into())
            .map_err(std::io::Error::from),
    );
    refused(
        "mount tmpfs on the state folder",
        nix::mount::mount(
            None::<&str>,
            &args.state,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map(|()| {
            let _ = nix::mount::umount(&args.state);
            "mounted".into()
        })
        .map_err(std::io::Error::from),
    );
    refused(
        "unshare(CLONE_NEWNS | CLONE_NEWUSER)",
        nix::sched::unshare(
            nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_NEWUSER,
        )
        .map(|()| "unshared".into())
        .map_err(std::io::Error::from),
    );
    refused(
        "a netlink socket (routes, firewall)",
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Netlink,
            nix::sys::socket::SockType::Raw,
            nix::sys::socket::SockFlag::empty(),
            nix::sys::socket::SockProtocol::NetlinkRoute,
        )
        .map(|_| "opened".into())
        .map_err(std::io::Error::from),
    );
    let landlock_probe = |result: Result<String, std::io::Error>| {
        if applied.landlock_enforced {
            result
        } else {
            // Without Landlock the attempt is not a failure of the agent: say so instead.
            Err(std::io::Error::other(format!(
                "not confined: Landlock {}",
                applied.landlock
            )))
        }
    };
    let outside = args.outside.join(".warrant-confine-probe");
    refused(
        "create a file outside the state folder",
        landlock_probe(std::fs::write(&outside, b"probe").map(|()| {
            let _ = std::fs::remove_file(&outside);
            outside.display().to_string()
        })),
    );
    refused(
        "read a file outside the agent's paths",
        landlock_probe(
            std::fs::read(&args.outside_file)
                .map(|b| format!("{} bytes of {}", b.len(), args.outside_file.display())),
        ),
    );

    let mut allowed = |probe, result| probes.push(Probe::new(probe, true, result));
    allowed(
        "write, replace and remove a state file",
        state_file(&args.state),
    );
    allowed(
        "read /etc/hosts (name resolution)",
        std::fs::read("/etc/hosts").map(|b| format!("{} bytes", b.len())),
    );
    allowed(
        "a TCP connection attempt",
        match std::net::TcpStream::connect(("127.0.0.1", 1)) {
            Ok(_) => Ok("connected".into()),
            // Refused by the peer, not by the filter: the syscall went through.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Ok("the port answered: connection refused".into())
            }
            Err(e) => Err(e),
        },
    );
    allowed(
        "start a thread (clone3 falls back to clone)",
        std::thread::Builder::new()
            .name("probe".into())
            .spawn(|| 6 * 7)
            .and_then(|h| {
                h.join()
                    .map_err(|_| std::io::Error::other("the thread panicked"))
            })
            .map(|v| format!("the thread returned {v}")),
    );
    allowed("random bytes", {
        let mut buf = [0u8; 16];
        getrandom(&mut buf).map(|n| format!("{n} bytes"))
    });

    let passed = probes.iter().all(|p| p.ok);
    let report = CheckReport {
        confinement: applied,
        probes,
        passed,
    };
    if args.json {
        print_json(&report)?;
    } else {
        let mut text = format!(
            "seccomp: {}; Landlock: {}\n",
            report.confinement.seccomp, report.confinement.landlock
        );
        for p in &report.probes {
            let mark = if p.ok { "ok  " } else { "FAIL" };
            text.push_str(&format!(
                "{mark} {} (expected {}): {}\n",
                p.probe, p.expected, p.outcome
            ));
        }
        emit(&text)?;
    }
    if passed {
        Ok(())
    } else {
        Err(Failure::verdict("the agent's confinement does not hold"))
    }
}

fn state_file(dir: &Path) -> Result<String, std::io::Error> {
    let tmp = dir.join(".probe.tmp");
    let dest = dir.join("probe");
    std::fs::write(&tmp, b"state")?;
    std::fs::rename(&tmp, &dest)?;
    let back = std::fs::read(&dest)?;
    std::fs::remove_file(&dest)?;
    Ok(format!("{} bytes round-tripped", back.len()))
}

/// getrandom(2), as ring (TLS, the credential's key pair) calls it.
fn getrandom(buf: &mut [u8]) -> Result<usize, std::io::Error> {
    rustix::rand::getrandom(buf, rustix::rand::GetRandomFlags::empty()).map_err(Into::into)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// One row of the allowlist, for docs/agent-confinement.md.
    pub struct Rule {
        pub syscall: String,
        pub condition: String,
        pub reason: String,
    }

    /// The allowlist's rules in file order.
    pub fn rules() -> Vec<Rule> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../seccomp/agent.json")).unwrap();
        let mut out = Vec::new();
        for rule in doc["agent"]["filter"].as_array().into_iter().flatten() {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let condition = rule["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| text(&a["comment"]))
                .collect::<Vec<_>>()
                .join(", ");
            out.push(Rule {
                syscall: text(&rule["syscall"]),
                condition,
                reason: text(&rule["comment"]),
            });
        }
        out
    }

    const BEGIN: &str = "<!-- BEGIN generated from attest/node/seccomp/agent.json -->\n";
    const END: &str = "<!-- END generated -->";

    fn table() -> String {
        let mut out =
            String::from("| syscall | only when | why the agent needs it |\n|---|---|---|\n");
        for r in rules() {
            let when = if r.condition.is_empty() {
                "—"
            } else {
                &r.condition
            };
            out.push_str(&format!("| `{}` | {} | {} |\n", r.syscall, when, r.reason));
        }
        out
    }

    #[test]
    fn docs_list_every_rule_of_the_allowlist() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/agent-confinement.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
        let end = doc.find(END).expect("end marker");
        let want = table();
        if std::env::var_os("WARRANT_REGENERATE_DOCS").is_some() {
            std::fs::write(&path, format!("{}{want}{}", &doc[..start], &doc[end..])).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..end],
            want,
            "docs/agent-confinement.md is not generated from seccomp/agent.json; refresh it with \
             WARRANT_REGENERATE_DOCS=1 cargo test -p node --bin warrant confine"
        );
    }

    #[test]
    fn every_rule_has_a_reason_and_the_programs_were_built() {
        let rules = rules();
        assert!(rules.len() > 40, "{}", rules.len());
        assert!(rules.iter().all(|r| !r.reason.trim().is_empty()));
        for forbidden in [
            "execve", "execveat", "ptrace", "mount", "unshare", "setns", "bpf",
        ] {
            assert!(rules.iter().all(|r| r.syscall != forbidden), "{forbidden}");
        }
        assert_eq!(ENFORCE.len() % 8, 0);
        assert_eq!(ENFORCE.len(), LOG.len());
        assert!(!CLONE3.is_empty());
        // The only difference between the two programs is the answer to a miss.
        let (e, l) = (program(ENFORCE), program(LOG));
        let differ: Vec<_> = e.iter().zip(&l).filter(|(a, b)| a.k != b.k).collect();
        assert!(!differ.is_empty());
        assert!(differ
            .iter()
            .all(|(a, b)| a.k == 0x0005_0001 && b.k == 0x7ffc_0000));
    }
}
