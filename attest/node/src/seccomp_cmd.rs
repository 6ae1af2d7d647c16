//! `warrant seccomp compile PROFILE.json [--out FILE] [--json]`: an OCI/Docker-format workload
//! seccomp profile, checked by the pure `policy::seccomp` and compiled to x86_64 classic BPF
//! with `seccompiler` (which builds the program without installing it). See docs/seccomp.md.
//!
//! seccompiler builds one filter per on-match action. A profile has several (ALLOW for most,
//! ERRNO or KILL for some), so one filter is built per action group and they are chained: each
//! filter's final "return default action" instruction, which every miss of that filter jumps
//! to, is replaced by the next filter's body (its syscall-number load onwards). BPF jumps are
//! relative and forward, so the earlier filter's jumps keep their targets; the arch check is
//! kept once, at the start.

use crate::{emit, print_json, read_file, Failure};
use clap::Subcommand;
use policy::seccomp::{self, Action, Op, Profile};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Instructions at the start of every seccompiler program: load `seccomp_data.arch`, compare
/// with `AUDIT_ARCH_X86_64`, kill the process on a mismatch.
const ARCH_CHECK_LEN: usize = 3;
/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
const BPF_MAXINSNS: usize = 4096;

#[derive(Subcommand)]
pub enum SeccompCommand {
    /// Check an OCI/Docker seccomp profile and compile it to x86_64 BPF (raw `sock_filter`
    /// array). Exits 2 naming the problem when the profile is not usable.
    Compile {
        /// The profile (the `linux.seccomp` object of an OCI config, or a Docker profile).
        profile: PathBuf,
        /// Where to write the BPF program (8 bytes per instruction, little-endian).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Summary {
    profile: String,
    arch: &'static str,
    instructions: usize,
    bytes: usize,
    default_action: String,
    syscalls_allowed: usize,
    syscalls_denied: usize,
    redundant_entries: usize,
    out: Option<String>,
}

pub fn run(cmd: SeccompCommand) -> Result<(), Failure> {
    match cmd {
        SeccompCommand::Compile { profile, out, json } => {
            let bytes = read_file(&profile)?;
            let parsed = seccomp::parse(&bytes)
                .map_err(|e| Failure::input(format!("{}: {e}", profile.display())))?;
            let program = compile(&parsed)
                .map_err(|e| Failure::input(format!("{}: {e}", profile.display())))?;
            let raw = to_bytes(&program);
            if let Some(out) = &out {
                std::fs::write(out, &raw)
                    .map_err(|e| Failure::input(format!("{}: {e}", out.display())))?;
            }
            let summary = Summary {
                profile: profile.display().to_string(),
                arch: "x86_64",
                instructions: program.len(),
                bytes: raw.len(),
                default_action: parsed.default_action.to_string(),
                syscalls_allowed: parsed.allowed(),
                syscalls_denied: parsed.denied(),
                redundant_entries: parsed.redundant,
                out: out.as_ref().map(|p| p.display().to_string()),
            };
            if json {
                print_json(&summary)
            } else {
                let mut text = format!(
                    "{}: {} BPF instructions ({} bytes) for x86_64\n  default action: {}\n  \
                     syscalls allowed: {}\n  syscalls denied: {}\n",
                    summary.profile,
                    summary.instructions,
                    summary.bytes,
                    summary.default_action,
                    summary.syscalls_allowed,
                    summary.syscalls_denied
                );
                if summary.redundant_entries > 0 {
                    text.push_str(&format!(
                        "  entries with the default action (no effect): {}\n",
                        summary.redundant_entries
                    ));
                }
                if let Some(out) = &summary.out {
                    text.push_str(&format!("  written to {out}\n"));
                }
                emit(&text)
            }
        }
    }
}

fn to_action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Log => SeccompAction::Log,
        Action::Errno(e) => SeccompAction::Errno(e),
        Action::Trap => SeccompAction::Trap,
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
    }
}

fn to_op(op: Op) -> SeccompCmpOp {
    match op {
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Gt => SeccompCmpOp::Gt,
        Op::Ge => SeccompCmpOp::Ge,
        Op::MaskedEq { mask } => SeccompCmpOp::MaskedEq(mask),
    }
}

/// Compiles a validated profile to one BPF program (see the module comment for the layout).
fn compile(profile: &Profile) -> Result<BpfProgram, String> {
    let default = to_action(profile.default_action);
    let mut programs = Vec::new();
    for (action, syscalls) in &profile.groups {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for (nr, r) in syscalls {
            let mut chain = Vec::new();
            if !r.unconditional {
                for conds in &r.rules {
                    let conds = conds
                        .iter()
                        .map(|c| {
                            SeccompCondition::new(
                                c.index,
                                SeccompCmpArgLen::Qword,
                                to_op(c.op),
                                c.value,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())?;
                    chain.push(SeccompRule::new(conds).map_err(|e| e.to_string())?);
                }
            }
            rules.insert(i64::from(*nr), chain);
        }
        let filter = SeccompFilter::new(
            rules,
            default.clone(),
            to_action(*action),
            TargetArch::x86_64,
        )
        .map_err(|e| e.to_string())?;
        programs.push(BpfProgram::try_from(filter).map_err(|e| e.to_string())?);
    }
    if programs.is_empty() {
        // Only a default action: seccompiler wants a distinct on-match action, which no rule
        // uses; the program is the arch check and one return.
        let other = if profile.default_action == Action::Allow {
            SeccompAction::KillProcess
        } else {
            SeccompAction::Allow
        };
        let filter = SeccompFilter::new(BTreeMap::new(), default, other, TargetArch::x86_64)
            .map_err(|e| e.to_string())?;
        return BpfProgram::try_from(filter).map_err(|e| e.to_string());
    }
    chain(programs)
}

/// Joins seccompiler programs that share the arch check and the default action.
fn chain(programs: Vec<BpfProgram>) -> Result<BpfProgram, String> {
    let mut out: BpfProgram = Vec::new();
    let mut arch_check: Option<Vec<sock_filter>> = None;
    let count = programs.len();
    for (i, mut program) in programs.into_iter().enumerate() {
        if program.len() <= ARCH_CHECK_LEN + 1 {
            return Err("seccompiler produced an unexpectedly short program".to_string());
        }
        let body = program.split_off(ARCH_CHECK_LEN);
        match &arch_check {
            None => {
                out.extend(program.iter().cloned());
                arch_check = Some(program);
            }
            Some(first) if *first == program => {}
            Some(_) => return Err("seccompiler programs differ in their arch check".to_string()),
        }
        let mut body = body;
        if i + 1 < count {
            // The final "return default" becomes the next filter's first instruction.
            body.pop();
        }
        out.extend(body);
    }
    if out.len() > BPF_MAXINSNS {
        return Err(format!(
            "the BPF program has {} instructions; the kernel takes at most {BPF_MAXINSNS}",
            out.len()
        ));
    }
    Ok(out)
}

/// The program as the kernel's `struct sock_filter[]`: code (u16), jt, jf (u8), k (u32),
/// little-endian on x86_64.
fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for insn in program {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    out
}
