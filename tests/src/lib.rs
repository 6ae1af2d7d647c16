//! Helpers shared by Warrant's end-to-end tests: where the project's test data lives and how to
//! run the built binaries.
//!
//! Every path is derived from this crate's manifest directory (fixed at compile time), never from
//! the current directory, so tests and the benchmark binary work from anywhere in a clone.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

pub mod openssl;
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

/// A 20 MiB LUKS2 image `dir/NAME.img` formatted by `cryptsetup luksFormat` with PBKDF2 at
/// 1000 iterations (fast: test images only), `key` in keyslot 0 and written to `dir/NAME.key`
/// (mode 0600), and `extra` luksFormat arguments. Returns (image, key file). Fails with an
/// install hint when cryptsetup is missing (tests must not skip).
pub fn luks2_image(
    dir: &Path,
    name: &str,
    key: &[u8],
    extra: &[&str],
) -> Result<(PathBuf, PathBuf), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let img = dir.join(format!("{name}.img"));
    let key_file = dir.join(format!("{name}.key"));
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::write(&key_file, key).map_err(|e| io(&key_file, e))?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io(&key_file, e))?;
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(20 << 20))
        .map_err(|e| io(&img, e))?;
    run_tool(
        std::process::Command::new("cryptsetup")
            .args([
                "luksFormat",
                "--type",
                "luks2",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--batch-mode",
                "--key-file",
            ])
            .arg(&key_file)
            .args(extra)
            .arg(&img),
    )?;
    Ok((img, key_file))
}

/// Runs an external tool: its stdout, or why it failed, with an install hint when the tool is
/// missing (tests must not skip).
pub(crate) fn run_tool(cmd: &mut std::process::Command) -> Result<Vec<u8>, String> {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {tool} ({e}): scripts/install-deps.sh installs it"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}
