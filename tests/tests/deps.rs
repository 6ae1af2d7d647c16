//! Repository rule, kept as a test (STYLE.md, "One door to the TPM"): exactly one crate of
//! Warrant, `tpm`, may depend on `tss-esapi`, and the verifier and the pure crates (`measure`,
//! `policy`, `proto`) must never reach the TPM stack at all, not even transitively.
//!
//! The test reads `cargo metadata --format-version 1 --all-features` and walks the *resolved*
//! dependency graph (`resolve.nodes[].deps[]`).
//!
//! - **Which edges count.** Normal and build dependencies count: both are compiled and linked
//!   into (or run to build) the crate. Dev-dependencies do not count for reachability: they link
//!   only into that crate's own tests, examples and benches, never into its library or binaries.
//!   A *direct* dependency on `tss-esapi` of any kind, dev included, from a crate other than
//!   `tpm` is still a violation: tests of the verifier must go through `tpm` too.
//! - **Conservative on purpose.** `--all-features` turns on every optional dependency, every
//!   platform's target-specific dependencies are kept, and the resolve is unified over the whole
//!   workspace. The graph can only be larger than any real build's, so "not reachable here"
//!   implies "not linked in any build".
//!
//! `tss-esapi` is not a dependency of Warrant yet. So that this test cannot pass vacuously, the
//! same checking function is run on the real graph with positive controls (paths that do exist
//! must be found) and on small synthetic graphs that do contain `tss-esapi`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

/// The crates that must never reach the TPM stack.
const TPM_FREE: &[&str] = &["verifier", "measure", "policy", "proto"];
/// The TPM stack: the Rust wrapper and its FFI crate (which links libtss2-esys).
const TPM_STACK: &[&str] = &["tss-esapi", "tss-esapi-sys"];
/// The one crate allowed to depend on `tss-esapi`.
const TPM_DOOR: &str = "tpm";

/// Kind of a dependency edge, as `dep_kinds[].kind` gives it (`null` is a normal dependency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Normal,
    Build,
    Dev,
}

/// The resolved dependency graph, by package id.
#[derive(Debug, Default)]
struct Graph {
    /// Package id -> package name.
    names: BTreeMap<String, String>,
    /// Package ids of the workspace members.
    members: BTreeSet<String>,
    /// Package id -> (dependency id, kinds of that edge).
    edges: BTreeMap<String, Vec<(String, BTreeSet<Kind>)>>,
}

impl Graph {
    /// Builds the graph from `cargo metadata --format-version 1` output. Anything unexpected in
    /// the JSON is an error, never a silently dropped edge.
    fn from_metadata(meta: &Value) -> Result<Graph, String> {
        let mut g = Graph::default();
        for p in arr(meta, "packages")? {
            g.names.insert(string(p, "id")?, string(p, "name")?);
        }
        for m in arr(meta, "workspace_members")? {
            let id = m.as_str().ok_or("workspace_members: not a string")?;
            g.members.insert(id.to_string());
        }
        let resolve = meta
            .get("resolve")
            .filter(|r| !r.is_null())
            .ok_or("no `resolve` (was --no-deps given?)")?;
        for node in arr(resolve, "nodes")? {
            let id = string(node, "id")?;
            if !g.names.contains_key(&id) {
                return Err(format!("resolve node {id}: not in `packages`"));
            }
            let mut out = Vec::new();
            for dep in arr(node, "deps")? {
                let pkg = string(dep, "pkg")?;
                let mut kinds = BTreeSet::new();
                for k in arr(dep, "dep_kinds")? {
                    kinds.insert(match k.get("kind") {
                        None | Some(Value::Null) => Kind::Normal,
                        Some(Value::String(s)) if s == "build" => Kind::Build,
                        Some(Value::String(s)) if s == "dev" => Kind::Dev,
                        Some(other) => return Err(format!("{id}: unknown dep kind {other}")),
                    });
                }
                if kinds.is_empty() {
                    return Err(format!("{id} -> {pkg}: empty dep_kinds"));
                }
                if !g.names.contains_key(&pkg) {
                    return Err(format!("{id} -> {pkg}: not in `packages`"));
                }
                out.push((pkg, kinds));
            }
            g.edges.insert(id, out);
        }
        Ok(g)
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.names.get(id).map_or(id, String::as_str)
    }

    /// Ids of every package called `name` (several versions may coexist).
    fn ids(&self, name: &str) -> Vec<&str> {
        self.names
            .iter()
            .filter(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// The ids of the workspace member called `name`; an error if there is none, so a renamed
    /// crate cannot make the rule pass by no longer matching.
    fn member(&self, name: &str) -> Result<&str, String> {
        self.members
            .iter()
            .find(|id| self.name(id) == name)
            .map(String::as_str)
            .ok_or_else(|| format!("workspace member `{name}` not found"))
    }

    /// A shortest path of package names from package id `from` to any package named `to`,
    /// following only edges that link (normal and build). `None` if there is none.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut seen: BTreeSet<&str> = BTreeSet::from([from]);
        let mut queue: VecDeque<&str> = VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            if self.name(id) == to {
                let mut path = vec![self.name(id).to_string()];
                let mut cur = id;
                while let Some(p) = prev.get(cur) {
                    path.push(self.name(p).to_string());
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for (dep, kinds) in self.edges.get(id).into_iter().flatten() {
                let links = kinds.contains(&Kind::Normal) || kinds.contains(&Kind::Build);
                if links && seen.insert(dep.as_str()) {
                    prev.insert(dep.as_str(), id);
                    queue.push_back(dep.as_str());
                }
            }
        }
        None
    }

    /// Packages with a direct dependency (of any kind) on a package named `name`.
    fn direct_dependents(&self, name: &str) -> BTreeSet<String> {
        self.edges
            .iter()
            .filter(|(_, deps)| deps.iter().any(|(d, _)| self.name(d) == name))
            .map(|(id, _)| self.name(id).to_string())
            .collect()
    }
}

fn arr<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{key}` missing or not an array"))
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` missing or not a string"))
}

/// Every breach of the TPM rule in `g`, as human-readable lines (empty: the rule holds).
fn violations(g: &Graph) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for krate in TPM_FREE {
        let id = g.member(krate)?;
        for stack in TPM_STACK {
            if let Some(path) = g.path(id, stack) {
                out.push(format!(
                    "`{krate}` reaches `{stack}`: {}",
                    path.join(" -> ")
                ));
            }
        }
    }
    // Only `tpm` may depend on tss-esapi; only tss-esapi itself (and `tpm`) on the FFI crate.
    for (stack, allowed) in [
        ("tss-esapi", &[TPM_DOOR][..]),
        ("tss-esapi-sys", &[TPM_DOOR, "tss-esapi"][..]),
    ] {
        for dependent in g.direct_dependents(stack) {
            if !allowed.contains(&dependent.as_str()) {
                out.push(format!("`{dependent}` depends directly on `{stack}`"));
            }
        }
    }
    // Every path from any workspace member to the TPM stack goes through `tpm`: remove `tpm`'s
    // edges and nothing may reach the stack any more.
    let mut cut = Graph {
        names: g.names.clone(),
        members: g.members.clone(),
        edges: g.edges.clone(),
    };
    for id in g.ids(TPM_DOOR) {
        if g.members.contains(id) {
            cut.edges.insert(id.to_string(), Vec::new());
        }
    }
    for member in &g.members {
        if g.name(member) == TPM_DOOR {
            continue;
        }
        for stack in TPM_STACK {
            if let Some(path) = cut.path(member, stack) {
                out.push(format!(
                    "`{}` reaches `{stack}` without going through `{TPM_DOOR}`: {}",
                    g.name(member),
                    path.join(" -> ")
                ));
            }
        }
    }
    Ok(out)
}

fn real_graph() -> Graph {
    let root = tests::workspace_root();
    let out = Command::new(tests::cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    Graph::from_metadata(&meta).expect("cargo metadata shape")
}

#[test]
fn verifier_and_pure_crates_never_reach_tss_esapi() {
    let g = real_graph();
    let v = violations(&g).expect("graph has every crate the rule names");
    assert!(
        v.is_empty(),
        "TPM dependency rule broken:\n{}",
        v.join("\n")
    );
}

/// Positive controls on the real graph: the walker finds paths that do exist, transitive ones
/// included, so the empty result above is not an artefact of a walker that finds nothing.
#[test]
fn walker_finds_existing_paths_in_real_graph() {
    let g = real_graph();
    let node = g.member("node").unwrap();
    let tpm = g.member(TPM_DOOR).unwrap();
    let verifier = g.member("verifier").unwrap();
    // node reaches measure via tpm: node -> tpm, tpm -> measure.
    assert_eq!(g.path(node, "tpm").unwrap(), ["node", "tpm"]);
    assert_eq!(g.path(tpm, "measure").unwrap(), ["tpm", "measure"]);
    // A registry crate reached only transitively: verifier -> measure -> sm3.
    let p = g.path(verifier, "sm3").unwrap();
    assert_eq!(p.first().map(String::as_str), Some("verifier"));
    assert_eq!(p.last().map(String::as_str), Some("sm3"));
    assert!(
        p.len() >= 3,
        "sm3 is not a direct dependency of the verifier: {p:?}"
    );
    // And the checker really looks: every crate it names exists.
    for krate in TPM_FREE.iter().chain([&TPM_DOOR]) {
        g.member(krate).unwrap();
    }
    // A path that must not exist: the verifier never reaches the TPM crate.
    assert_eq!(g.path(verifier, TPM_DOOR), None);
}

/// A tiny graph in `cargo metadata` shape. `deps` entries are (from, to, kind) with kind one of
/// `null`, `"build"`, `"dev"`.
fn synthetic(members: &[&str], others: &[&str], deps: &[(&str, &str, Value)]) -> Value {
    let id = |n: &str| format!("path+file:///w/{n}#0.1.0");
    let all: Vec<&str> = members.iter().chain(others).copied().collect();
    let nodes: Vec<Value> = all
        .iter()
        .map(|n| {
            let d: Vec<Value> = deps
                .iter()
                .filter(|(from, _, _)| from == n)
                .map(|(_, to, kind)| {
                    json!({"name": to, "pkg": id(to), "dep_kinds": [{"kind": kind, "target": null}]})
                })
                .collect();
            json!({"id": id(n), "deps": d})
        })
        .collect();
    json!({
        "packages": all.iter().map(|n| json!({"id": id(n), "name": n})).collect::<Vec<_>>(),
        "workspace_members": members.iter().map(|n| id(n)).collect::<Vec<_>>(),
        "resolve": {"nodes": nodes},
    })
}

const MEMBERS: &[&str] = &["measure", "policy", "proto", "tpm", "node", "verifier"];

/// The intended shape, with tss-esapi present: no violation.
fn good_edges() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("policy", "measure", Value::Null),
        ("tpm", "measure", Value::Null),
        ("tpm", "tss-esapi", Value::Null),
        ("tss-esapi", "tss-esapi-sys", Value::Null),
        ("tss-esapi-sys", "pkg-config", json!("build")),
        ("node", "tpm", Value::Null),
        ("node", "policy", Value::Null),
        ("verifier", "policy", Value::Null),
        ("verifier", "proto", Value::Null),
    ]
}

#[test]
fn walker_on_synthetic_graph_that_obeys_the_rule() {
    let meta = synthetic(
        MEMBERS,
        &["tss-esapi", "tss-esapi-sys", "pkg-config"],
        &good_edges(),
    );
    let g = Graph::from_metadata(&meta).unwrap();
    assert_eq!(violations(&g).unwrap(), Vec::<String>::new());
    // The walker does see the stack where it is linked.
    let node = g.member("node").unwrap();
    assert_eq!(
        g.path(node, "tss-esapi-sys").unwrap(),
        ["node", "tpm", "tss-esapi", "tss-esapi-sys"]
    );
    assert_eq!(g.path(g.member("verifier").unwrap(), "tss-esapi"), None);
}

#[test]
fn walker_on_synthetic_graph_that_breaks_the_rule() {
    // The verifier reaches tss-esapi through a helper crate and policy through a build dep.
    let mut edges = good_edges();
    edges.push(("verifier", "helper", Value::Null));
    edges.push(("helper", "tss-esapi", Value::Null));
    edges.push(("policy", "codegen", json!("build")));
    edges.push(("codegen", "tss-esapi-sys", Value::Null));
    let others = [
        "tss-esapi",
        "tss-esapi-sys",
        "pkg-config",
        "helper",
        "codegen",
    ];
    let g = Graph::from_metadata(&synthetic(MEMBERS, &others, &edges)).unwrap();
    let v = violations(&g).unwrap();
    let has = |s: &str| v.iter().any(|line| line == s);
    assert!(
        has("`verifier` reaches `tss-esapi`: verifier -> helper -> tss-esapi"),
        "{v:#?}"
    );
    assert!(
        has("`policy` reaches `tss-esapi-sys`: policy -> codegen -> tss-esapi-sys"),
        "{v:#?}"
    );
    // The verifier depends on policy, so it reaches the FFI crate through policy's build dep.
    assert!(
        has("`verifier` reaches `tss-esapi-sys`: verifier -> policy -> codegen -> tss-esapi-sys"),
        "{v:#?}"
    );
    assert!(has("`helper` depends directly on `tss-esapi`"), "{v:#?}");
    assert!(
        has("`codegen` depends directly on `tss-esapi-sys`"),
        "{v:#?}"
    );
    // node reaches the stack through policy, bypassing tpm.
    assert!(
        v.iter()
            .any(|l| l.starts_with("`node` reaches `tss-esapi-sys` without going through `tpm`")),
        "{v:#?}"
    );
}

#[test]
fn dev_dependencies_do_not_link_but_direct_ones_are_still_flagged() {
    // measure has tss-esapi as a dev-dependency: it does not link into measure, so measure does
    // not *reach* it, but measure is not `tpm`, so the direct dependency is a violation.
    let mut edges = good_edges();
    edges.push(("measure", "tss-esapi", json!("dev")));
    let g = Graph::from_metadata(&synthetic(
        MEMBERS,
        &["tss-esapi", "tss-esapi-sys", "pkg-config"],
        &edges,
    ))
    .unwrap();
    assert_eq!(g.path(g.member("measure").unwrap(), "tss-esapi"), None);
    assert_eq!(
        violations(&g).unwrap(),
        ["`measure` depends directly on `tss-esapi`"]
    );
}

#[test]
fn a_missing_or_renamed_crate_is_an_error_not_a_pass() {
    let members: Vec<&str> = MEMBERS
        .iter()
        .copied()
        .filter(|m| *m != "verifier")
        .collect();
    let g = Graph::from_metadata(&synthetic(&members, &[], &[])).unwrap();
    assert_eq!(
        violations(&g).unwrap_err(),
        "workspace member `verifier` not found"
    );
}

#[test]
fn unexpected_metadata_is_an_error() {
    let mut meta = synthetic(MEMBERS, &["x"], &[("measure", "x", json!("weird"))]);
    assert!(Graph::from_metadata(&meta)
        .unwrap_err()
        .contains("unknown dep kind"));
    meta["resolve"] = Value::Null;
    assert!(Graph::from_metadata(&meta).unwrap_err().contains("resolve"));
}
