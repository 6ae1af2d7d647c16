//! Helpers shared by Warrant's end-to-end tests: where the project's test data lives and how to
//! run the built binaries.
//!
//! Every path is derived from this crate's manifest directory (fixed at compile time), never from
//! the current directory, so tests and the benchmark binary work from anywhere in a clone.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

pub mod swtpm;

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // `tests/` is a direct child of the workspace root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `measure/testdata/eventlogs/`: the firmware event-log fixtures (see its README.md).
pub fn eventlog_fixtures() -> PathBuf {
    workspace_root().join("measure/testdata/eventlogs")
}

/// The files of `dir` whose name ends with `suffix`, sorted by name (so test output is stable).
pub fn files_with_suffix(dir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let matches = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix));
        if matches && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The `cargo` that is running this build (`$CARGO`, set by cargo for build scripts, tests and
/// `cargo run`), falling back to `cargo` on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// The first `program` on `PATH`, as a shell would find it.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The CPU's model name from `/proc/cpuinfo`, for benchmark reports.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
