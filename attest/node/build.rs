//! Compiles the agent's own seccomp filter (seccomp/agent.json) to classic BPF at build time,
//! with seccompiler, for `warrant agent attest` to install once its privileged set-up is done
//! (src/confine.rs). Refuses to build when a filter or a rule has no comment: every syscall the
//! agent may make carries its reason.
//!
//! Writes to OUT_DIR: `agent-enforce.bpf` (anything else fails with EPERM), `agent-log.bpf`
//! (anything else is logged and allowed: `--confine log`, for finding what a platform needs)
//! and `clone3.bpf` (clone3 fails with ENOSYS, so glibc falls back to clone, whose flags the
//! allowlist checks). Each is the raw `struct sock_filter` array, 8 bytes an instruction, native
//! endian. Empty files on an architecture without a table (only x86_64 has one).

// A build script reports a failure by panicking: cargo shows the message and stops the build.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::path::Path;

const SOURCE: &str = "seccomp/agent.json";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    check_reasons(&doc);
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        for name in ["agent-enforce.bpf", "agent-log.bpf", "clone3.bpf"] {
            write(&out.join(name), &[]);
        }
        return;
    }
    for (variant, mismatch) in [("enforce", None), ("log", Some("log"))] {
        let mut doc = doc.clone();
        let filters = doc.as_object_mut().expect("checked: an object");
        for filter in filters.values_mut() {
            // seccompiler refuses unknown fields; the filter-level comment is ours.
            filter.as_object_mut().expect("checked").remove("comment");
        }
        if let Some(action) = mismatch {
            filters["agent"]["mismatch_action"] = Value::String(action.to_string());
        }
        let json = serde_json::to_vec(&doc).expect("serialises");
        let map = seccompiler::compile_from_json(json.as_slice(), seccompiler::TargetArch::x86_64)
            .unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
        write(&out.join(format!("agent-{variant}.bpf")), &map["agent"]);
        if variant == "enforce" {
            write(&out.join("clone3.bpf"), &map["clone3"]);
        }
    }
}

/// Every filter and every rule needs a non-empty `comment`: the reason the agent needs it.
fn check_reasons(doc: &Value) {
    let filters = doc
        .as_object()
        .unwrap_or_else(|| panic!("{SOURCE}: not an object of filters"));
    for name in ["agent", "clone3"] {
        assert!(filters.contains_key(name), "{SOURCE}: no `{name}` filter");
    }
    for (name, filter) in filters {
        assert!(
            has_reason(filter),
            "{SOURCE}: filter `{name}` has no comment"
        );
        let rules = filter["filter"]
            .as_array()
            .unwrap_or_else(|| panic!("{SOURCE}: filter `{name}` has no rule list"));
        for rule in rules {
            assert!(
                has_reason(rule),
                "{SOURCE}: filter `{name}`: the rule for {} has no comment (its reason)",
                rule["syscall"]
            );
        }
    }
}

fn has_reason(v: &Value) -> bool {
    v.get("comment")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.trim().is_empty())
}

fn write(path: &Path, program: &[seccompiler::sock_filter]) {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
