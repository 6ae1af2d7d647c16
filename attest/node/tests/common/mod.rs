//! Shared by the CLI tests: run the built `warrant`, find test data, make scratch folders.
#![allow(dead_code, clippy::unwrap_used)] // test code; not every test file uses every helper

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `measure/testdata`.
pub fn testdata_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../measure/testdata")
}

/// A folder of `measure/testdata`.
pub fn testdata(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../measure/testdata")
        .join(sub)
}

/// Runs the built `warrant` with `args`.
pub fn warrant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warrant"))
        .args(args)
        .output()
        .unwrap()
}

/// A new, empty scratch folder for one test.
pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "warrant-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The run printed no panic.
pub fn no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
