//! `bench-eventlog`: how fast Warrant reads a firmware event log, side by side with the reference
//! tool, `tpm2_eventlog` (tpm2-tools). Run it with `scripts/bench.sh` (it builds the release
//! binaries first), or `cargo bench -p tests --bench bench-eventlog -- [OPTIONS]`.
//!
//! Workload, per run: parse the log, decode every event's data, replay every bank. Rows:
//! - Warrant, in process: the `measure` library, N runs in a loop (after one warm-up run).
//! - Warrant CLI, spawned per run: `warrant eventlog replay FILE --json` (replay report), and
//!   `warrant eventlog show FILE --json` (every event decoded, the closer match to what
//!   tpm2_eventlog prints), one process per run.
//! - tpm2_eventlog, spawned per run: `tpm2_eventlog FILE` (which also parses, decodes and
//!   computes the PCR values), one process per run.
//! - /bin/true, spawned per run: the cost of a process spawn alone on this machine. Nothing is
//!   subtracted from any row; this row is there to read the others with.
//!
//! Spawned rows write stdout to /dev/null. Each spawned series runs in a fresh child process of
//! this binary, so its peak RSS (`getrusage(RUSAGE_CHILDREN)`, the largest process of the
//! series) belongs to that series alone. Linux keeps a process's `ru_maxrss` across `execve`, so
//! a spawned row's RSS is at least that of the small process that spawned it (about 2 MiB; the
//! /bin/true row shows this floor). No test asserts on these numbers.
//!
//! Options: `--iterations N` (default 500), `--file LOG` (default: the fixture of
//! `measure/testdata/eventlogs/` with the most events), `--warrant PATH` (default:
//! `<target dir>/release/warrant`; `none` skips that row).

use measure::eventlog::{replay, EventLog};
use nix::sys::resource::{getrusage, UsageWho};
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

/// One row of the table.
struct Row {
    name: String,
    elapsed: Duration,
    /// Peak resident set size in KiB.
    peak_rss_kib: i64,
    note: Option<String>,
}

/// One parse + decode + replay; returns the number of events (the header included).
fn workload(bytes: &[u8]) -> Res<usize> {
    let log = EventLog::parse(bytes)?;
    for event in &log.events {
        let _ = black_box(event.decode());
    }
    black_box(replay::replay(&log));
    Ok(log.events.len() + usize::from(log.spec_id.is_some()))
}

fn in_process(bytes: &[u8], n: u32) -> Res<Row> {
    workload(bytes)?; // warm-up
    let start = Instant::now();
    for _ in 0..n {
        workload(black_box(bytes))?;
    }
    let elapsed = start.elapsed();
    let peak_rss_kib = vm_hwm_kib()?;
    Ok(Row {
        name: "Warrant, in process (library)".into(),
        elapsed,
        peak_rss_kib,
        note: None,
    })
}

/// This process's peak RSS, `VmHWM` of /proc/self/status. Not `getrusage(RUSAGE_SELF)`: Linux
/// carries `ru_maxrss` across `execve`, so it would report cargo's RSS when run by `cargo bench`.
fn vm_hwm_kib() -> Res<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// Hidden mode `--series N PROGRAM ARGS...`: spawn the program N times (stdout to /dev/null),
/// then print `<nanoseconds> <peak child RSS KiB>`. Exits non-zero if any run failed.
fn series(n: u32, program: &str, args: &[String]) -> Res<()> {
    let start = Instant::now();
    for i in 0..n {
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("run {i} of {program}: {status}").into());
        }
    }
    let nanos = start.elapsed().as_nanos();
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss();
    println!("{nanos} {rss}");
    Ok(())
}

/// Runs one spawned series in a fresh child of this binary (see the module doc).
fn spawned(name: &str, n: u32, program: &str, args: &[&str]) -> Res<Row> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--series")
        .arg(n.to_string())
        .arg(program)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("{name}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut fields = text.split_whitespace();
    let nanos: u64 = fields.next().ok_or("series: no time")?.parse()?;
    let rss: i64 = fields.next().ok_or("series: no RSS")?.parse()?;
    Ok(Row {
        name: name.into(),
        elapsed: Duration::from_nanos(nanos),
        peak_rss_kib: rss,
        note: None,
    })
}

/// The fixture log with the most events.
fn largest_fixture() -> Res<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for path in tests::files_with_suffix(&tests::eventlog_fixtures(), ".bin")? {
        let Ok(log) = EventLog::parse(&std::fs::read(&path)?) else {
            continue;
        };
        let events = log.events.len();
        if !matches!(&best, Some((b, _)) if *b >= events) {
            best = Some((events, path));
        }
    }
    Ok(best
        .ok_or("no parsable *.bin in measure/testdata/eventlogs")?
        .1)
}

fn default_warrant() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| tests::workspace_root().join("target"), PathBuf::from);
    target.join("release/warrant")
}

/// Why `warrant <command> FILE --json` cannot be measured, if it cannot.
fn cli_unusable(warrant: &Path, command: &str, file: &Path) -> Option<String> {
    if warrant == Path::new("none") {
        return Some("the warrant binary did not build (--warrant none)".into());
    }
    if !warrant.is_file() {
        return Some(format!(
            "{} not built (scripts/bench.sh builds it)",
            warrant.display()
        ));
    }
    match Command::new(warrant)
        .args(["eventlog", command])
        .arg(file)
        .arg("--json")
        .output()
    {
        Err(e) => Some(format!("cannot run {}: {e}", warrant.display())),
        Ok(o) if !o.status.success() => Some(format!(
            "`warrant eventlog {command} --json` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(o) if serde_json::from_slice::<serde_json::Value>(&o.stdout).is_err() => Some(format!(
            "`warrant eventlog {command} --json` did not print JSON"
        )),
        Ok(_) => None,
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n, program, rest @ ..] = args.as_slice() {
        if flag == "--series" {
            return series(n.parse()?, program, rest);
        }
    }
    let mut iterations: u32 = 500;
    let mut file: Option<PathBuf> = None;
    let mut warrant = default_warrant();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iterations" => iterations = it.next().ok_or("--iterations N")?.parse()?,
            "--file" => file = Some(it.next().ok_or("--file LOG")?.into()),
            "--warrant" => warrant = it.next().ok_or("--warrant PATH")?.into(),
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    let file = match file {
        Some(f) => f,
        None => largest_fixture()?,
    };
    let bytes = std::fs::read(&file)?;
    let events = workload(&bytes)?;
    let file_str = file.to_str().ok_or("file name is not UTF-8")?;

    println!(
        "bench-eventlog: {} ({} bytes, {events} events incl. header), {iterations} runs per row",
        file.display(),
        bytes.len()
    );
    println!(
        "machine: {} logical CPUs, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tests::cpu_model()
    );

    let mut rows = vec![in_process(&bytes, iterations)?];
    for command in ["replay", "show"] {
        let name = format!("Warrant CLI `{command}`, spawned");
        match cli_unusable(&warrant, command, &file) {
            None => {
                let w = warrant.to_str().ok_or("warrant path is not UTF-8")?;
                let args = ["eventlog", command, file_str, "--json"];
                rows.push(spawned(&name, iterations, w, &args)?);
            }
            Some(why) => rows.push(Row {
                name,
                elapsed: Duration::ZERO,
                peak_rss_kib: 0,
                note: Some(format!("skipped: {why}")),
            }),
        }
    }
    let reference = match tests::which("tpm2_eventlog") {
        Some(t) => {
            let t = t
                .to_str()
                .ok_or("tpm2_eventlog path is not UTF-8")?
                .to_string();
            rows.push(spawned(
                "tpm2_eventlog, spawned per run",
                iterations,
                &t,
                &[file_str],
            )?);
            Some(rows.len() - 1)
        }
        None => {
            rows.push(Row {
                name: "tpm2_eventlog, spawned per run".into(),
                elapsed: Duration::ZERO,
                peak_rss_kib: 0,
                note: Some("skipped: tpm2_eventlog not on PATH (scripts/install-deps.sh)".into()),
            });
            None
        }
    };
    if let Some(t) = tests::which("true") {
        let t = t.to_str().ok_or("true path is not UTF-8")?.to_string();
        let mut row = spawned("/bin/true, spawned per run", iterations, &t, &[])?;
        row.note = Some("spawn cost alone; not subtracted".into());
        rows.push(row);
    }

    let ref_secs = reference
        .and_then(|i| rows.get(i))
        .map(|r| r.elapsed.as_secs_f64());
    println!();
    println!(
        "| {:<32} | {:>9} | {:>10} | {:>12} | {:>13} | {:>16} | note",
        "", "total s", "logs/s", "events/s", "peak RSS MiB", "vs tpm2_eventlog"
    );
    println!(
        "|{:-<34}|{:->11}|{:->12}|{:->14}|{:->15}|{:->18}|-----",
        "", "", "", "", "", ""
    );
    for r in &rows {
        if r.elapsed.is_zero() {
            println!(
                "| {:<32} | {:>9} | {:>10} | {:>12} | {:>13} | {:>16} | {}",
                r.name,
                "-",
                "-",
                "-",
                "-",
                "-",
                r.note.as_deref().unwrap_or("")
            );
            continue;
        }
        let secs = r.elapsed.as_secs_f64();
        let logs = f64::from(iterations) / secs;
        let ratio = ref_secs.map_or_else(|| "-".to_string(), |t| format!("{:.1}x", t / secs));
        println!(
            "| {:<32} | {:>9.3} | {:>10.0} | {:>12.0} | {:>13.1} | {:>16} | {}",
            r.name,
            secs,
            logs,
            logs * events as f64,
            r.peak_rss_kib as f64 / 1024.0,
            ratio,
            r.note.as_deref().unwrap_or("")
        );
    }
    println!();
    println!("ratio = tpm2_eventlog's total time / the row's total time (above 1: faster than tpm2_eventlog)");
    Ok(())
}
