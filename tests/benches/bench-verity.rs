//! `bench-verity`: how fast `warrant verity` builds and checks a dm-verity hash tree, side by
//! side with the reference, `veritysetup` (cryptsetup). Run it with `scripts/bench-verity.sh`
//! (it builds the release binary first), or
//! `cargo bench -p tests --bench bench-verity -- [OPTIONS]`.
//!
//! Workload: one image of `--size` MiB (default 1024) of xorshift64* pseudo-random bytes,
//! written to a fresh folder under the temp dir (`--dir` to choose another) and deleted at the
//! end. Both tools get the same salt and UUID; the benchmark checks that they print the same
//! root hash and write identical hash files before it reports anything. Rows, each a spawned
//! process, `--runs` times (default 5), the tools alternating so that both see the same page
//! cache and machine load (the image stays in the page cache: this measures hashing, not the
//! disk):
//! - `warrant verity format DATA HASH`, `veritysetup format DATA HASH`
//! - `warrant verity verify DATA HASH ROOT`, `veritysetup verify DATA HASH ROOT`
//!
//! Reported: the median and the best wall-clock time of the runs, throughput, and the largest
//! peak RSS (`getrusage(RUSAGE_CHILDREN)` in a fresh child of this binary per run, which on
//! Linux includes the ~2 MiB of that small spawning process). No test asserts on these
//! numbers.
//!
//! Options: `--size MIB`, `--runs N`, `--dir DIR`, `--warrant PATH` (default
//! `<target dir>/release/warrant`).

use nix::sys::resource::{getrusage, UsageWho};
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

const SALT: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// Removes the scratch folder however the benchmark ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `mib` MiB of xorshift64* output (fast, incompressible enough) to `path`.
fn make_image(path: &Path, mib: u64) -> Res<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            word.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        file.write_all(&chunk)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Hidden mode `--once PROGRAM ARGS...`: run the program once (stdout to /dev/null), then
/// print `<nanoseconds> <peak child RSS KiB>`. Exits non-zero if the run failed.
fn once(program: &str, args: &[String]) -> Res<()> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let nanos = start.elapsed().as_nanos();
    if !out.status.success() {
        return Err(format!(
            "{program}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss();
    println!("{nanos} {rss}");
    Ok(())
}

/// One timed run in a fresh child of this binary: (wall time, peak RSS KiB).
fn timed(program: &Path, args: &[&str]) -> Res<(Duration, i64)> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--once")
        .arg(program)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .to_string()
            .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut f = text.split_whitespace();
    let nanos: u64 = f.next().ok_or("no time")?.parse()?;
    let rss: i64 = f.next().ok_or("no RSS")?.parse()?;
    Ok((Duration::from_nanos(nanos), rss))
}

/// Runs a command and returns its stdout, failing on a non-zero exit.
fn run(program: &Path, args: &[&str]) -> Res<String> {
    let out = Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn root_from(text: &str) -> Res<String> {
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .ok_or("no \"Root hash:\" line")?
        .trim()
        .to_string())
}

fn sha_ni() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "sha_ni"))
    })
}

struct Row {
    name: &'static str,
    times: Vec<Duration>,
    rss_kib: i64,
}

impl Row {
    fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }
    fn best(&self) -> Duration {
        self.times.iter().min().copied().unwrap_or_default()
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, program, rest @ ..] = args.as_slice() {
        if flag == "--once" {
            return once(program, rest);
        }
    }
    let mut size_mib: u64 = 1024;
    let mut runs: usize = 5;
    let mut dir = std::env::temp_dir();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| tests::workspace_root().join("target"), PathBuf::from);
    let mut warrant = target.join("release/warrant");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size" => size_mib = it.next().ok_or("--size MIB")?.parse()?,
            "--runs" => runs = it.next().ok_or("--runs N")?.parse()?,
            "--dir" => dir = it.next().ok_or("--dir DIR")?.into(),
            "--warrant" => warrant = it.next().ok_or("--warrant PATH")?.into(),
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if runs == 0 || size_mib == 0 {
        return Err("--runs and --size must be at least 1".into());
    }
    if !warrant.is_file() {
        return Err(format!(
            "{} not built (scripts/bench-verity.sh builds it)",
            warrant.display()
        )
        .into());
    }
    let veritysetup = tests::which("veritysetup")
        .ok_or("veritysetup not on PATH (scripts/install-deps.sh installs cryptsetup-bin)")?;

    let scratch = Scratch(dir.join(format!("warrant-bench-verity-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let data = scratch.0.join("data.img");
    let ours = scratch.0.join("warrant.hash");
    let theirs = scratch.0.join("veritysetup.hash");
    let s = |p: &Path| p.to_str().map(str::to_string).ok_or("path is not UTF-8");
    let (data_s, ours_s, theirs_s) = (s(&data)?, s(&ours)?, s(&theirs)?);
    let started = Instant::now();
    make_image(&data, size_mib)?;
    println!(
        "bench-verity: {size_mib} MiB image written in {:.1} s to {}",
        started.elapsed().as_secs_f64(),
        scratch.0.display()
    );
    println!(
        "machine: {} logical CPUs, {}, SHA extensions (sha_ni): {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tests::cpu_model(),
        if sha_ni() { "yes" } else { "no" }
    );
    let version = run(&veritysetup, &["--version"])?;
    println!(
        "reference: {}; sha256, 4096-byte blocks, {runs} runs per row",
        version.trim()
    );

    // Same output first: root hashes and hash files.
    let fmt = |hash: &str| -> Vec<String> {
        vec![
            data_s.clone(),
            hash.to_string(),
            "--salt".into(),
            SALT.into(),
            "--uuid".into(),
            UUID.into(),
        ]
    };
    let ours_args = fmt(&ours_s);
    let theirs_args = fmt(&theirs_s);
    let ours_ref: Vec<&str> = ours_args.iter().map(String::as_str).collect();
    let theirs_ref: Vec<&str> = theirs_args.iter().map(String::as_str).collect();
    let mut w_fmt = vec!["verity", "format"];
    w_fmt.extend_from_slice(&ours_ref);
    let mut v_fmt = vec!["format"];
    v_fmt.extend_from_slice(&theirs_ref);
    let root = root_from(&run(&warrant, &w_fmt)?)?;
    let root_ref = root_from(&run(&veritysetup, &v_fmt)?)?;
    if root != root_ref {
        return Err(format!("root hashes differ: warrant {root}, veritysetup {root_ref}").into());
    }
    if std::fs::read(&ours)? != std::fs::read(&theirs)? {
        return Err("hash files differ".into());
    }
    println!("same root hash ({root}) and identical hash files");

    let w_ver = ["verity", "verify", &data_s, &ours_s, &root];
    let v_ver = ["verify", &data_s, &theirs_s, &root];
    let jobs: [(&'static str, &Path, &[&str]); 4] = [
        ("warrant verity format", &warrant, &w_fmt),
        ("veritysetup format", &veritysetup, &v_fmt),
        ("warrant verity verify", &warrant, &w_ver),
        ("veritysetup verify", &veritysetup, &v_ver),
    ];
    let mut rows: Vec<Row> = jobs
        .iter()
        .map(|(name, _, _)| Row {
            name,
            times: Vec::new(),
            rss_kib: 0,
        })
        .collect();
    for _ in 0..runs {
        for (row, (_, program, args)) in rows.iter_mut().zip(&jobs) {
            let (t, rss) = timed(program, args)?;
            row.times.push(t);
            row.rss_kib = row.rss_kib.max(rss);
        }
    }

    println!();
    println!(
        "| {:<22} | {:>10} | {:>8} | {:>10} | {:>12} | {:>15} |",
        "", "median s", "best s", "MiB/s", "peak RSS MiB", "vs veritysetup"
    );
    println!(
        "|{:-<24}|{:->12}|{:->10}|{:->12}|{:->14}|{:->17}|",
        "", "", "", "", "", ""
    );
    for (i, r) in rows.iter().enumerate() {
        // Rows come in pairs: warrant, then veritysetup doing the same thing.
        let reference = rows.get(i | 1).map_or(Duration::ZERO, Row::median);
        let secs = r.median().as_secs_f64();
        println!(
            "| {:<22} | {:>10.3} | {:>8.3} | {:>10.0} | {:>12.1} | {:>14.2}x |",
            r.name,
            secs,
            r.best().as_secs_f64(),
            size_mib as f64 / secs,
            r.rss_kib as f64 / 1024.0,
            reference.as_secs_f64() / secs
        );
    }
    println!();
    println!("ratio = veritysetup's median / the row's median (above 1: faster than veritysetup)");
    drop(scratch);
    Ok(())
}
