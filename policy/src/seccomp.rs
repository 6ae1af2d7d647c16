//! OCI/Docker-format seccomp profiles: parsing and validation (pure).
//!
//! The accepted format is the `linux.seccomp` object of the OCI runtime specification
//! (`config-linux.md`, "Seccomp"), which is also what Docker's `--security-opt seccomp=FILE`
//! reads: `defaultAction`, `defaultErrnoRet`, `architectures` and `syscalls`, each entry with
//! `names`, `action`, `errnoRet` and `args` (`index`, `value`, `valueTwo`, `op`).
//!
//! [`parse`] turns the bytes into a [`Profile`] whose syscall names are resolved to x86_64
//! numbers (table: [`syscall_number`]) and whose rules are grouped by action; compiling that to
//! BPF is the caller's job (the `warrant seccomp compile` command uses `seccompiler`).
//!
//! Trust assumption: none. The profile is untrusted input; every name, action, operator, index
//! and architecture is checked, and anything not understood is an error rather than skipped.
//! Docker's conditional rules (`includes`/`excludes` by capability or kernel version) are not
//! evaluated here and are rejected, since silently dropping them would change the verdict.

use serde::Deserialize;
use std::collections::BTreeMap;

mod x86_64_table;

/// `EPERM`: the errno of `SCMP_ACT_ERRNO` when the profile gives none (OCI runtime spec:
/// `errnoRet` and `defaultErrnoRet` default to `EPERM`).
pub const DEFAULT_ERRNO: u32 = 1;

/// Highest syscall argument index (`seccomp_data.args[6]`).
pub const MAX_ARG_INDEX: u32 = 5;

/// Errors in a profile. `index` is the position in `syscalls`; `arg` the position in `args`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompError {
    #[error("not a seccomp profile: {message} (line {line}, column {column})")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("syscalls[{index}]: unknown syscall {name:?} on x86_64")]
    UnknownSyscall { index: usize, name: String },
    #[error("{location}: unknown action {action:?}")]
    UnknownAction { location: Location, action: String },
    #[error("syscalls[{index}].args[{arg}]: unknown operator {op:?}")]
    UnknownOp {
        index: usize,
        arg: usize,
        op: String,
    },
    #[error("syscalls[{index}].args[{arg}]: argument index {arg_index} is out of range (0..=5)")]
    BadArgIndex {
        index: usize,
        arg: usize,
        arg_index: u32,
    },
    #[error("unsupported architecture {arch:?}: only SCMP_ARCH_X86_64 is compiled")]
    UnsupportedArch { arch: String },
    #[error("syscalls[{index}]: no syscall names")]
    NoNames { index: usize },
    #[error(
        "syscalls[{index}]: {name:?} is also in syscalls[{first}] with a different action \
         ({first_action} there, {action} here)"
    )]
    ConflictingActions {
        name: String,
        index: usize,
        action: Action,
        first: usize,
        first_action: Action,
    },
    #[error("syscalls[{index}]: {field} (Docker conditional rules) is not supported")]
    Conditional { index: usize, field: &'static str },
    #[error("{location}: errno {errno} is out of range (0..=4095)")]
    BadErrno { location: Location, errno: u32 },
    #[error("{location}: an errno is given but the action is {action}, which returns none")]
    ErrnoWithoutErrnoAction { location: Location, action: String },
}

/// Where in a profile an action was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Default,
    Syscall(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Default => f.write_str("defaultAction"),
            Location::Syscall(i) => write!(f, "syscalls[{i}]"),
        }
    }
}

/// What the kernel does with a syscall (`SECCOMP_RET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    Log,
    Errno(u32),
    Trap,
    KillThread,
    KillProcess,
}

impl Action {
    /// Whether a syscall given this action runs (`ALLOW`, `LOG`).
    pub fn allows(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => f.write_str("SCMP_ACT_ALLOW"),
            Action::Log => f.write_str("SCMP_ACT_LOG"),
            Action::Errno(e) => write!(f, "SCMP_ACT_ERRNO({e})"),
            Action::Trap => f.write_str("SCMP_ACT_TRAP"),
            Action::KillThread => f.write_str("SCMP_ACT_KILL_THREAD"),
            Action::KillProcess => f.write_str("SCMP_ACT_KILL_PROCESS"),
        }
    }
}

/// A comparison of one syscall argument (libseccomp's `SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`: the profile's `value` is the mask, `valueTwo` the value.
    MaskedEq {
        mask: u64,
    },
}

/// One condition: `args[index] OP value`, compared as 64-bit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// The rules for one syscall. An empty `rules` matches every call; otherwise the call matches
/// when all conditions of any one rule hold (each profile entry with `args` is one rule).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyscallRules {
    pub rules: Vec<Vec<ArgCondition>>,
    /// Whether some entry named this syscall without conditions (which makes `rules` moot).
    pub unconditional: bool,
}

/// A validated profile for x86_64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    /// Syscall number -> rules, grouped by the action they lead to. Never contains the default
    /// action (those entries change nothing and are dropped) and a syscall is in one group only.
    pub groups: BTreeMap<Action, BTreeMap<u32, SyscallRules>>,
    /// Syscalls named with the default action (redundant entries), for the summary.
    pub redundant: usize,
}

impl Profile {
    /// Syscalls (by number) whose rules lead to an action that lets them run.
    pub fn allowed(&self) -> usize {
        self.groups
            .iter()
            .filter(|(a, _)| a.allows())
            .map(|(_, g)| g.len())
            .sum()
    }
    /// Syscalls (by number) whose rules lead to an action that stops them.
    pub fn denied(&self) -> usize {
        self.groups
            .iter()
            .filter(|(a, _)| !a.allows())
            .map(|(_, g)| g.len())
            .sum()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<RawSyscall>,
    #[serde(default, rename = "comment")]
    _comment: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSyscall {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    /// Older Docker profiles write `"args": null`.
    #[serde(default)]
    args: Option<Vec<RawArg>>,
    #[serde(default, rename = "comment")]
    _comment: Option<serde_json::Value>,
    #[serde(default)]
    includes: Option<serde_json::Value>,
    #[serde(default)]
    excludes: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// The x86_64 number of a syscall name, from the kernel's table.
pub fn syscall_number(name: &str) -> Option<u32> {
    let table = x86_64_table::SYSCALLS;
    table
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, nr)| *nr)
}

/// Highest errno the kernel passes back (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

fn action(name: &str, errno: Option<u32>, location: Location) -> Result<Action, SeccompError> {
    if errno.is_some() && name != "SCMP_ACT_ERRNO" {
        // OCI: "When the action doesn't support an errno, the runtime MUST print an error and
        // fail."
        return Err(SeccompError::ErrnoWithoutErrnoAction {
            location,
            action: name.to_string(),
        });
    }
    let errno = errno.unwrap_or(DEFAULT_ERRNO);
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_ERRNO" => {
            if errno > MAX_ERRNO {
                return Err(SeccompError::BadErrno { location, errno });
            }
            Action::Errno(errno)
        }
        "SCMP_ACT_TRAP" => Action::Trap,
        // libseccomp: SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        other => {
            return Err(SeccompError::UnknownAction {
                location,
                action: other.to_string(),
            })
        }
    })
}

fn condition(index: usize, arg: usize, raw: &RawArg) -> Result<ArgCondition, SeccompError> {
    let arg_index = u8::try_from(raw.index)
        .ok()
        .filter(|i| u32::from(*i) <= MAX_ARG_INDEX)
        .ok_or(SeccompError::BadArgIndex {
            index,
            arg,
            arg_index: raw.index,
        })?;
    let (op, value) = match raw.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, raw.value),
        "SCMP_CMP_NE" => (Op::Ne, raw.value),
        "SCMP_CMP_LT" => (Op::Lt, raw.value),
        "SCMP_CMP_LE" => (Op::Le, raw.value),
        "SCMP_CMP_GT" => (Op::Gt, raw.value),
        "SCMP_CMP_GE" => (Op::Ge, raw.value),
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq { mask: raw.value }, raw.value_two),
        other => {
            return Err(SeccompError::UnknownOp {
                index,
                arg,
                op: other.to_string(),
            })
        }
    };
    Ok(ArgCondition {
        index: arg_index,
        op,
        value,
    })
}

/// Parses and validates a profile for x86_64.
pub fn parse(bytes: &[u8]) -> Result<Profile, SeccompError> {
    let raw: RawProfile = serde_json::from_slice(bytes).map_err(|e| SeccompError::Json {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    for arch in &raw.architectures {
        if arch != "SCMP_ARCH_X86_64" {
            return Err(SeccompError::UnsupportedArch { arch: arch.clone() });
        }
    }
    let default_action = action(
        &raw.default_action,
        raw.default_errno_ret,
        Location::Default,
    )?;

    let mut groups: BTreeMap<Action, BTreeMap<u32, SyscallRules>> = BTreeMap::new();
    // Syscall number -> (first entry naming it, its action), for conflict reports.
    let mut seen: BTreeMap<u32, (usize, Action)> = BTreeMap::new();
    let mut redundant = 0;
    for (index, entry) in raw.syscalls.iter().enumerate() {
        if entry.includes.as_ref().is_some_and(|v| !is_empty(v)) {
            return Err(SeccompError::Conditional {
                index,
                field: "includes",
            });
        }
        if entry.excludes.as_ref().is_some_and(|v| !is_empty(v)) {
            return Err(SeccompError::Conditional {
                index,
                field: "excludes",
            });
        }
        if entry.names.is_empty() {
            return Err(SeccompError::NoNames { index });
        }
        let act = action(
            &entry.action,
            // `defaultErrnoRet` is for `defaultAction` only; an entry's default is EPERM.
            entry.errno_ret,
            Location::Syscall(index),
        )?;
        let conditions = entry
            .args
            .iter()
            .flatten()
            .enumerate()
            .map(|(arg, raw)| condition(index, arg, raw))
            .collect::<Result<Vec<_>, _>>()?;
        for name in &entry.names {
            let nr = syscall_number(name).ok_or_else(|| SeccompError::UnknownSyscall {
                index,
                name: name.clone(),
            })?;
            match seen.get(&nr) {
                Some(&(first, first_action)) if first_action != act => {
                    return Err(SeccompError::ConflictingActions {
                        name: name.clone(),
                        index,
                        action: act,
                        first,
                        first_action,
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(nr, (index, act));
                }
            }
            if act == default_action {
                redundant += 1;
                continue;
            }
            let rules = groups.entry(act).or_default().entry(nr).or_default();
            if conditions.is_empty() {
                rules.unconditional = true;
                rules.rules.clear();
            } else if !rules.unconditional {
                rules.rules.push(conditions.clone());
            }
        }
    }
    Ok(Profile {
        default_action,
        groups,
        redundant,
    })
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => m.values().all(is_empty),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_known() {
        let t = x86_64_table::SYSCALLS;
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("execve"), Some(59));
        assert_eq!(syscall_number("clone3"), Some(435));
        assert_eq!(syscall_number("nosuchcall"), None);
    }

    #[test]
    fn groups_and_errors() {
        let p = parse(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                 "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, Action::Errno(1));
        assert!(p.groups.contains_key(&Action::Errno(38)));
        assert_eq!(p.allowed(), 3);
        assert_eq!(p.denied(), 1);
        let bad = parse(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read"],"action":"SCMP_ACT_ALLOW"},
                {"names":["read"],"action":"SCMP_ACT_KILL"}]}"#,
        );
        assert!(matches!(
            bad,
            Err(SeccompError::ConflictingActions {
                index: 1,
                first: 0,
                ..
            })
        ));
        let bad = parse(br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#);
        assert!(matches!(
            bad,
            Err(SeccompError::BadArgIndex { arg_index: 6, .. })
        ));
    }

    #[test]
    fn errno_defaults_follow_the_oci_spec() {
        // An entry's ERRNO without errnoRet is EPERM, not defaultErrnoRet.
        let p = parse(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["mount"],"action":"SCMP_ACT_ERRNO","args":null}]}"#,
        )
        .unwrap();
        assert_eq!(p.default_action, Action::Errno(38));
        assert!(p.groups.contains_key(&Action::Errno(DEFAULT_ERRNO)));
        let bad = parse(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["mount"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
        );
        assert!(matches!(
            bad,
            Err(SeccompError::ErrnoWithoutErrnoAction {
                location: Location::Syscall(0),
                ..
            })
        ));
        let bad = parse(br#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#);
        assert!(matches!(
            bad,
            Err(SeccompError::ErrnoWithoutErrnoAction {
                location: Location::Default,
                ..
            })
        ));
    }
}
