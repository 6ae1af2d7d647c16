//! `warrant seccomp compile` as a user runs it: a Docker-like profile compiles, the BPF has the
//! layout seccompiler emits (arch check first) and, run through a small classic-BPF interpreter
//! here, gives each syscall the action the profile says; every bad profile is refused with a
//! message naming the file and the entry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, warrant};
use serde_json::Value;
use std::path::{Path, PathBuf};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_TRAP: u32 = 0x0003_0000;

/// A subset of Docker's default profile (moby `profiles/seccomp/default.json`), x86_64 only,
/// without its capability-conditional entries.
const DOCKER_LIKE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [
    {"names": ["accept", "accept4", "brk", "close", "exit", "exit_group", "futex", "getpid",
               "mmap", "munmap", "openat", "read", "rt_sigaction", "rt_sigreturn", "write"],
     "action": "SCMP_ACT_ALLOW", "comment": ""},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["kexec_load"], "action": "SCMP_ACT_TRAP"}
  ]
}"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

fn decode(bytes: &[u8]) -> Vec<Insn> {
    assert!(!bytes.is_empty());
    assert_eq!(bytes.len() % 8, 0, "not whole sock_filter structs");
    bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// Runs a seccomp classic-BPF program (the subset seccompiler emits) on a `seccomp_data`.
fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::new();
    data.extend_from_slice(&nr.to_le_bytes());
    data.extend_from_slice(&arch.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        data.extend_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let jump = |cond: bool| {
            if cond {
                usize::from(i.jt)
            } else {
                usize::from(i.jf)
            }
        };
        match i.code {
            0x20 => {
                let k = i.k as usize;
                a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            0x05 => pc += i.k as usize,
            0x15 => pc += jump(a == i.k),
            0x25 => pc += jump(a > i.k),
            0x35 => pc += jump(a >= i.k),
            0x45 => pc += jump(a & i.k != 0),
            0x54 => a &= i.k,
            0x06 => return i.k,
            other => panic!("unexpected BPF opcode {other:#x} at {}", pc - 1),
        }
    }
}

fn compile_ok(profile: &Path, out: &Path) -> (Value, Vec<Insn>) {
    let o = warrant(&[
        "seccomp",
        "compile",
        path(profile),
        "--out",
        path(out),
        "--json",
    ]);
    no_panic(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    (summary, decode(&std::fs::read(out).unwrap()))
}

#[test]
fn docker_like_profile_compiles_and_behaves() {
    let dir = tempdir();
    let profile = write(&dir, "docker.json", DOCKER_LIKE);
    let out = dir.join("docker.bpf");
    let (summary, prog) = compile_ok(&profile, &out);
    assert_eq!(
        summary["instructions"].as_u64().unwrap() as usize,
        prog.len()
    );
    assert_eq!(summary["bytes"].as_u64().unwrap() as usize, prog.len() * 8);
    assert_eq!(summary["syscalls_allowed"], 17);
    assert_eq!(summary["syscalls_denied"], 3);
    assert_eq!(summary["default_action"], "SCMP_ACT_ERRNO(1)");

    // seccompiler's layout: load seccomp_data.arch (offset 4), compare with AUDIT_ARCH_X86_64,
    // kill the process otherwise; then load the syscall number (offset 0).
    assert_eq!((prog[0].code, prog[0].k), (0x20, 4));
    assert_eq!(
        (prog[1].code, prog[1].k, prog[1].jt, prog[1].jf),
        (0x15, AUDIT_ARCH_X86_64, 1, 0)
    );
    assert_eq!((prog[2].code, prog[2].k), (0x06, RET_KILL_PROCESS));
    assert_eq!((prog[3].code, prog[3].k), (0x20, 0));
    assert_eq!(prog.last().unwrap().code, 0x06);

    let x = AUDIT_ARCH_X86_64;
    let none = [0u64; 6];
    assert_eq!(run(&prog, x, 0, none), RET_ALLOW, "read");
    assert_eq!(run(&prog, x, 231, none), RET_ALLOW, "exit_group");
    assert_eq!(run(&prog, x, 435, none), RET_ERRNO | 38, "clone3");
    assert_eq!(run(&prog, x, 101, none), RET_KILL_PROCESS, "ptrace");
    assert_eq!(run(&prog, x, 246, none), RET_TRAP, "kexec_load");
    assert_eq!(run(&prog, x, 165, none), RET_ERRNO | 1, "mount: default");
    assert_eq!(run(&prog, x, 59, none), RET_ERRNO | 1, "execve: default");
    assert_eq!(
        run(&prog, x, 135, [0, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "personality(0)"
    );
    assert_eq!(
        run(&prog, x, 135, [8, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "personality(8)"
    );
    assert_eq!(
        run(&prog, x, 135, [4, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1,
        "personality(4)"
    );
    // clone: allowed unless a namespace flag (mask 0x7E020000) is set.
    assert_eq!(
        run(&prog, x, 56, [0x0001_1200, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "clone"
    );
    assert_eq!(
        run(&prog, x, 56, [0x1000_0000, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1,
        "CLONE_NEWUSER"
    );
    // A high bit above 32 matters too: the comparison is 64-bit.
    assert_eq!(
        run(&prog, x, 135, [1 << 32, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1,
        "personality(2^32)"
    );
    // Another architecture (i386) is killed by the arch check.
    assert_eq!(run(&prog, 0x4000_0003, 0, none), RET_KILL_PROCESS);

    // The text summary.
    let o = warrant(&["seccomp", "compile", path(&profile)]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("BPF instructions"), "{text}");
    assert!(text.contains("syscalls allowed: 17"), "{text}");
    assert!(text.contains("syscalls denied: 3"), "{text}");
}

#[test]
fn allow_by_default_and_default_only() {
    let dir = tempdir();
    let profile = write(
        &dir,
        "deny.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mount", "umount2"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    let (summary, prog) = compile_ok(&profile, &dir.join("deny.bpf"));
    assert_eq!(summary["redundant_entries"], 1);
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(run(&prog, x, 165, [0; 6]), RET_ERRNO | 1);
    assert_eq!(run(&prog, x, 166, [0; 6]), RET_ERRNO | 1);
    assert_eq!(run(&prog, x, 0, [0; 6]), RET_ALLOW);

    let only = write(&dir, "only.json", r#"{"defaultAction": "SCMP_ACT_KILL"}"#);
    let (summary, prog) = compile_ok(&only, &dir.join("only.bpf"));
    assert_eq!(summary["instructions"], 4);
    assert_eq!(run(&prog, x, 0, [0; 6]), 0, "KILL is KILL_THREAD (0)");
}

fn refused(name: &str, text: &str, expect: &[&str]) {
    let dir = tempdir();
    let profile = write(&dir, name, text);
    let out = dir.join("x.bpf");
    let o = warrant(&["seccomp", "compile", path(&profile), "--out", path(&out)]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{name}");
    assert!(!out.exists(), "{name}: wrote output for a bad profile");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(path(&profile)), "{name}: {err}");
    for e in expect {
        assert!(err.contains(e), "{name}: {err:?} lacks {e:?}");
    }
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    refused(
        "unknown-syscall.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]}"#,
        &["syscalls[1]", "unknown syscall \"frobnicate\""],
    );
    refused(
        "unknown-action.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_MAYBE"}]}"#,
        &["syscalls[0]", "unknown action \"SCMP_ACT_MAYBE\""],
    );
    refused(
        "unknown-default.json",
        r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
        &["defaultAction", "SCMP_ACT_NOTIFY"],
    );
    refused(
        "unknown-op.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
        &["syscalls[0].args[0]", "unknown operator \"SCMP_CMP_ABOUT\""],
    );
    refused(
        "arg-index.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        &["syscalls[0].args[1]", "argument index 6"],
    );
    refused(
        "arch.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]}"#,
        &["unsupported architecture \"SCMP_ARCH_AARCH64\""],
    );
    refused(
        "malformed.json",
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"],, }]}",
        &["not a seccomp profile", "line 3"],
    );
    refused(
        "conflict.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        &[
            "syscalls[2]",
            "\"write\"",
            "syscalls[0]",
            "different action",
        ],
    );
    refused(
        "conditional.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}}]}"#,
        &["syscalls[0]", "includes"],
    );
    refused(
        "unknown-field.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscals": []}"#,
        &["unknown field `syscals`"],
    );
}

#[test]
fn missing_file_is_bad_input() {
    let o = warrant(&["seccomp", "compile", "/nonexistent/profile.json"]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
}

/// Loads a raw BPF file into a child Python process (ctypes `prctl(PR_SET_SECCOMP)` after
/// `PR_SET_NO_NEW_PRIVS`; our own code stays free of unsafe) and prints `errno` per syscall.
const LOADER: &str = r#"
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
prog = open(sys.argv[1], "rb").read()
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]
buf = ctypes.create_string_buffer(prog, len(prog))
fp = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_char_p))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0:
    print("load failed", ctypes.get_errno()); sys.exit(3)
def errno(nr, *a):
    ctypes.set_errno(0)
    r = libc.syscall(nr, *[ctypes.c_long(x) for x in a])
    return ctypes.get_errno() if r == -1 else 0
print(errno(110), errno(121, 0), errno(121, 4242), errno(124, 0), errno(39))
"#;

/// The kernel accepts the chained program and applies each group's action: getppid -> ENOSYS,
/// getpgid(4242) -> EACCES but getpgid(0) runs, getsid -> the default EPERM, getpid runs.
/// Needs python3 (fails, not skips, without it).
#[test]
fn kernel_loads_and_enforces_the_program() {
    let dir = tempdir();
    let profile = write(
        &dir,
        "kernel.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 4242, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getsid"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let out = dir.join("kernel.bpf");
    compile_ok(&profile, &out);
    let o = std::process::Command::new("python3")
        .args(["-c", LOADER, path(&out)])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout.trim(), "38 0 13 1 0");
}
