//! `bench-seal`: how fast Warrant seals a secret to a PCR policy and unseals it, side by side
//! with the same work done by tpm2-tools, on one swtpm. Run it with `scripts/bench-seal.sh` (it
//! builds the release binary first), or `cargo bench -p tests --bench bench-seal -- [OPTIONS]`.
//!
//! One swtpm (sha256 bank only, no EK certificates) serves every row; swtpm runs over TCP with
//! no resource manager in between. The secret is 32 bytes, the policy PolicyPCR(sha256:7).
//! Every method first does one seal + unseal that is not timed and must give back the secret;
//! every timed unseal is checked too. Rows, seal and unseal timed separately, N times each:
//! - Warrant, in process: `Tpm::seal` / `Tpm::unseal` on one `Tpm` opened once. Seal:
//!   PCR_Read, trial session + PolicyPCR, CreatePrimary (SRK), SRK-salted HMAC session, Create
//!   with parameter encryption. Unseal: CreatePrimary (SRK Name check), PCR_Read, CreatePrimary,
//!   Load, SRK-salted policy session, PolicyPCR, Unseal with response encryption.
//! - Warrant CLI, spawned: `warrant tpm seal --tcti T --pcrs 7 IN SEALED` and
//!   `warrant tpm unseal --tcti T SEALED OUT`: the same, plus process start, TCTI open, files.
//! - tpm2-tools, spawned, primary created per operation (what Warrant does):
//!   seal = `tpm2_createprimary -C o -G ecc256:aes128cfb`, `tpm2_createpolicy --policy-pcr -l
//!   sha256:7`, `tpm2_create -C prim.ctx -L policy.dat -i secret`, `tpm2_flushcontext -t`,
//!   `tpm2_flushcontext -l` (5 processes); unseal = `tpm2_createprimary`, `tpm2_load`,
//!   `tpm2_flushcontext -t`, `tpm2_startauthsession --policy-session`, `tpm2_policypcr -l
//!   sha256:7`, `tpm2_unseal -p session:s.ctx`, `tpm2_flushcontext s.ctx`,
//!   `tpm2_flushcontext -t` (8 processes). Sessions are unsalted and without parameter
//!   encryption (the tools' default), so the TPM does less than for Warrant.
//! - tpm2-tools, spawned, primary created once before the series (prim.ctx reused): the same
//!   without `tpm2_createprimary` (4 and 7 processes).
//!
//! The `tpm2_flushcontext` runs are needed because nothing flushes what each tool leaves
//! loaded when there is no resource manager (swtpm holds 3 objects); their share of the
//! tpm2-tools rows is reported in the note. No test asserts on these numbers.
//!
//! Options: `--iterations N` (default 50), `--warrant PATH` (default
//! `<target dir>/release/warrant`; `none` skips the CLI rows).

use measure::alg::HashAlg;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::swtpm::{Swtpm, SwtpmOptions};
use tpm::{SealPolicy, SealedBlob, Tpm};

type Res<T> = Result<T, Box<dyn Error>>;

const SECRET: [u8; 32] = *b"warrant-bench-seal-32-byte-key!!";

/// One row: the time of N operations of one kind.
struct Row {
    name: String,
    op: Op,
    elapsed: Duration,
    note: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Seal,
    Unseal,
}

/// Seal and unseal times of one method, and their flush shares.
#[derive(Default)]
struct Pair {
    seal: Duration,
    unseal: Duration,
    seal_flush: Duration,
    unseal_flush: Duration,
}

fn policy() -> SealPolicy {
    SealPolicy {
        bank: HashAlg::Sha256,
        pcrs: vec![7],
        signed_by: None,
        values: Vec::new(),
    }
}

fn check(got: &[u8], who: &str) -> Res<()> {
    if got == SECRET {
        Ok(())
    } else {
        Err(format!("{who}: the unsealed bytes differ from the secret").into())
    }
}

fn library(tcti: &str, n: u32) -> Res<Pair> {
    let mut tpm = Tpm::open(tcti)?;
    let policy = policy();
    let blob = tpm.seal(&SECRET, &policy, None)?;
    check(&tpm.unseal(&blob, None, &[])?, "Warrant library")?;
    let mut pair = Pair::default();
    for _ in 0..n {
        let start = Instant::now();
        let blob = tpm.seal(&SECRET, &policy, None)?;
        pair.seal += start.elapsed();
        let start = Instant::now();
        let secret = tpm.unseal(&blob, None, &[])?;
        pair.unseal += start.elapsed();
        check(&secret, "Warrant library")?;
    }
    Ok(pair)
}

/// Runs one command to completion (stdout to /dev/null); its wall-clock time.
fn run(program: &Path, args: &[&str], tcti: &str) -> Res<Duration> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .env("TPM2TOOLS_TCTI", tcti)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}: {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(elapsed)
}

fn path_str(p: &Path) -> Res<&str> {
    p.to_str().ok_or_else(|| "path is not UTF-8".into())
}

fn cli(warrant: &Path, tcti: &str, dir: &Path, n: u32) -> Res<Pair> {
    let input = dir.join("cli-secret");
    let sealed = dir.join("cli-sealed.json");
    let out = dir.join("cli-out");
    std::fs::write(&input, SECRET)?;
    let (input_s, sealed_s, out_s) = (path_str(&input)?, path_str(&sealed)?, path_str(&out)?);
    let seal = [
        "tpm", "seal", "--tcti", tcti, "--pcrs", "7", input_s, sealed_s,
    ];
    let unseal = ["tpm", "unseal", "--tcti", tcti, sealed_s, out_s];
    let mut pair = Pair::default();
    for i in 0..=n {
        let t_seal = run(warrant, &seal, tcti)?;
        SealedBlob::from_json(&std::fs::read(&sealed)?)?;
        let _ = std::fs::remove_file(&out);
        let t_unseal = run(warrant, &unseal, tcti)?;
        check(&std::fs::read(&out)?, "warrant tpm unseal")?;
        if i > 0 {
            // Run 0 is the untimed check.
            pair.seal += t_seal;
            pair.unseal += t_unseal;
        }
    }
    Ok(pair)
}

/// Paths of the tpm2-tools files, as strings.
struct Files {
    prim: String,
    policy: String,
    secret: String,
    public: String,
    private: String,
    object: String,
    session: String,
    out: String,
}

impl Files {
    fn new(dir: &Path) -> Res<Files> {
        let f = |name: &str| path_str(&dir.join(name)).map(str::to_string);
        Ok(Files {
            prim: f("prim.ctx")?,
            policy: f("policy.dat")?,
            secret: f("secret")?,
            public: f("seal.pub")?,
            private: f("seal.priv")?,
            object: f("seal.ctx")?,
            session: f("s.ctx")?,
            out: f("out")?,
        })
    }
}

/// The tpm2-tools, found on PATH once.
struct Tools(Vec<(&'static str, PathBuf)>);

impl Tools {
    fn find() -> Res<Tools> {
        let names = [
            "tpm2_createprimary",
            "tpm2_createpolicy",
            "tpm2_create",
            "tpm2_flushcontext",
            "tpm2_load",
            "tpm2_startauthsession",
            "tpm2_policypcr",
            "tpm2_unseal",
        ];
        let mut found = Vec::new();
        for name in names {
            let path = tests::which(name)
                .ok_or_else(|| format!("{name} not on PATH (scripts/install-deps.sh)"))?;
            found.push((name, path));
        }
        Ok(Tools(found))
    }

    /// Runs one tool; adds its time to `total`, and to `flush` if it is tpm2_flushcontext.
    fn run(
        &self,
        name: &str,
        args: &[&str],
        tcti: &str,
        total: &mut Duration,
        flush: &mut Duration,
    ) -> Res<()> {
        let (_, path) = self
            .0
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| format!("{name}: not looked up"))?;
        let t = run(path, args, tcti)?;
        *total += t;
        if name == "tpm2_flushcontext" {
            *flush += t;
        }
        Ok(())
    }
}

/// Clears what a failed earlier run may have left loaded (no resource manager here).
fn flush_all(tools: &Tools, tcti: &str) -> Res<()> {
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    for class in ["-t", "-l", "-s"] {
        tools.run("tpm2_flushcontext", &[class], tcti, &mut a, &mut b)?;
    }
    Ok(())
}

fn tpm2_tools(tools: &Tools, tcti: &str, dir: &Path, n: u32, primary_per_op: bool) -> Res<Pair> {
    let f = Files::new(dir)?;
    std::fs::write(&f.secret, SECRET)?;
    flush_all(tools, tcti)?;
    let create_primary = ["-Q", "-C", "o", "-G", "ecc256:aes128cfb", "-c", &f.prim];
    if !primary_per_op {
        let mut z = (Duration::ZERO, Duration::ZERO);
        tools.run(
            "tpm2_createprimary",
            &create_primary,
            tcti,
            &mut z.0,
            &mut z.1,
        )?;
        tools.run("tpm2_flushcontext", &["-t"], tcti, &mut z.0, &mut z.1)?;
    }
    let mut pair = Pair::default();
    for i in 0..=n {
        let (mut seal, mut seal_flush) = (Duration::ZERO, Duration::ZERO);
        let mut step =
            |name: &str, args: &[&str]| tools.run(name, args, tcti, &mut seal, &mut seal_flush);
        if primary_per_op {
            step("tpm2_createprimary", &create_primary)?;
        }
        step(
            "tpm2_createpolicy",
            &["-Q", "--policy-pcr", "-l", "sha256:7", "-L", &f.policy],
        )?;
        step(
            "tpm2_create",
            &[
                "-Q", "-C", &f.prim, "-L", &f.policy, "-i", &f.secret, "-u", &f.public, "-r",
                &f.private,
            ],
        )?;
        step("tpm2_flushcontext", &["-t"])?;
        step("tpm2_flushcontext", &["-l"])?;

        let _ = std::fs::remove_file(&f.out);
        let (mut unseal, mut unseal_flush) = (Duration::ZERO, Duration::ZERO);
        let mut step =
            |name: &str, args: &[&str]| tools.run(name, args, tcti, &mut unseal, &mut unseal_flush);
        if primary_per_op {
            step("tpm2_createprimary", &create_primary)?;
        }
        step(
            "tpm2_load",
            &[
                "-Q", "-C", &f.prim, "-u", &f.public, "-r", &f.private, "-c", &f.object,
            ],
        )?;
        step("tpm2_flushcontext", &["-t"])?;
        step(
            "tpm2_startauthsession",
            &["-Q", "--policy-session", "-S", &f.session],
        )?;
        step(
            "tpm2_policypcr",
            &["-Q", "-S", &f.session, "-l", "sha256:7"],
        )?;
        let session_auth = format!("session:{}", f.session);
        step(
            "tpm2_unseal",
            &["-c", &f.object, "-p", &session_auth, "-o", &f.out],
        )?;
        step("tpm2_flushcontext", &[&f.session])?;
        step("tpm2_flushcontext", &["-t"])?;
        check(&std::fs::read(&f.out)?, "tpm2_unseal")?;
        if i > 0 {
            // Run 0 is the untimed check.
            pair.seal += seal;
            pair.unseal += unseal;
            pair.seal_flush += seal_flush;
            pair.unseal_flush += unseal_flush;
        }
    }
    Ok(pair)
}

/// The seal and unseal rows of one method, with their notes.
fn rows_of(pair: &Pair, name: &str, notes: [&str; 2], rows: &mut Vec<Row>) {
    let [seal_note, unseal_note] = notes;
    for (op, elapsed, flush, note) in [
        (Op::Seal, pair.seal, pair.seal_flush, seal_note),
        (Op::Unseal, pair.unseal, pair.unseal_flush, unseal_note),
    ] {
        let what = if op == Op::Seal { "seal" } else { "unseal" };
        let mut note = note.to_string();
        if !flush.is_zero() {
            note = format!(
                "{note}; of which tpm2_flushcontext {:.0} %",
                100.0 * flush.as_secs_f64() / elapsed.as_secs_f64()
            );
        }
        rows.push(Row {
            name: format!("{name} {what}"),
            op,
            elapsed,
            note,
        });
    }
}

/// `tpm2-tools 5.4`, `swtpm 0.7.1`: the version each tool prints, shortened.
fn version(program: &str) -> String {
    let text = tests::which(program)
        .and_then(|p| Command::new(p).arg("--version").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // tpm2-tools: `tool="tpm2_create" version="5.4" ...`; swtpm: `TPM emulator version 0.7.1, ...`.
    let found = text
        .split_once("version=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .or_else(|| {
            text.split_once("version ")
                .and_then(|(_, rest)| rest.split([',', ' ', '\n']).next())
        });
    found.unwrap_or("unknown").to_string()
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut iterations: u32 = 50;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| tests::workspace_root().join("target"), PathBuf::from);
    let mut warrant = target.join("release/warrant");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iterations" => iterations = it.next().ok_or("--iterations N")?.parse()?,
            "--warrant" => warrant = it.next().ok_or("--warrant PATH")?.into(),
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if iterations == 0 {
        return Err("--iterations must be at least 1".into());
    }
    let tools = Tools::find()?;
    let swtpm = Swtpm::start_with(&SwtpmOptions {
        certificates: false,
        pcr_banks: "sha256".into(),
        own_ca: None,
    })?;
    let tcti = swtpm.tcti();
    println!(
        "bench-seal: 32-byte secret, PolicyPCR(sha256:7), {iterations} seals and unseals per method"
    );
    println!(
        "machine: {} logical CPUs, {}; tpm2-tools {}; swtpm {} over TCP ({tcti})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tests::cpu_model(),
        version("tpm2_create"),
        version("swtpm"),
    );

    let mut rows = Vec::new();
    let lib = library(&tcti, iterations)?;
    rows_of(
        &lib,
        "Warrant library",
        ["in process, Tpm opened once", "in process, Tpm opened once"],
        &mut rows,
    );
    if warrant == Path::new("none") || !warrant.is_file() {
        println!(
            "skipped the CLI rows: {} not built (scripts/bench-seal.sh builds it)",
            warrant.display()
        );
    } else {
        let pair = cli(&warrant, &tcti, swtpm.dir(), iterations)?;
        rows_of(
            &pair,
            "Warrant CLI",
            ["1 process per op", "1 process per op"],
            &mut rows,
        );
    }
    let per_op = tpm2_tools(&tools, &tcti, swtpm.dir(), iterations, true)?;
    rows_of(
        &per_op,
        "tpm2-tools, primary per op,",
        ["5 processes per op", "8 processes per op"],
        &mut rows,
    );
    let once = tpm2_tools(&tools, &tcti, swtpm.dir(), iterations, false)?;
    rows_of(
        &once,
        "tpm2-tools, primary once,",
        ["4 processes per op", "7 processes per op"],
        &mut rows,
    );

    println!();
    println!(
        "| {:<36} | {:>8} | {:>8} | {:>7} | {:>16} | note",
        "", "total s", "ms/op", "ops/s", "vs tpm2-tools"
    );
    println!(
        "|{:-<38}|{:->10}|{:->10}|{:->9}|{:->18}|-----",
        "", "", "", "", ""
    );
    for r in &rows {
        let secs = r.elapsed.as_secs_f64();
        let reference = match r.op {
            Op::Seal => per_op.seal,
            Op::Unseal => per_op.unseal,
        };
        println!(
            "| {:<36} | {:>8.3} | {:>8.2} | {:>7.1} | {:>15.2}x | {}",
            r.name,
            secs,
            1000.0 * secs / f64::from(iterations),
            f64::from(iterations) / secs,
            reference.as_secs_f64() / secs,
            r.note
        );
    }
    println!();
    println!(
        "ratio = tpm2-tools' (primary per op) total for the same operation / the row's total \
         (above 1: faster than tpm2-tools)"
    );
    drop(swtpm);
    Ok(())
}
