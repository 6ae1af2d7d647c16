//! `bench-attest`: how fast the verifier decides, side by side with the usual shell-out way.
//! Run it with `scripts/bench-attest.sh`, or `cargo bench -p tests --bench bench-attest --
//! [OPTIONS]` after `cargo build --release -p node -p verifier` (the bench runs the release
//! `warrant` and `warrant-verifier` beside it in `target/release`).
//!
//! Evidence is real: a swtpm booted through a real machine's firmware log (`rhel8-uefi.bin`,
//! 33 KiB, SHA-1/SHA-256/SHA-384 digests per event), a UKI measured into PCR 11 and Warrant's
//! own CEL log into PCR 15; reference values captured from that golden node; an ECC P-256 AK;
//! one quote over the sha256 selection the reference values need. Rows:
//! 1. **core, in process**: `verifier::core::attest` (log sizes, quote parse and signature,
//!    nonce, PCR digest against the reported values, PCR selection, clock, firmware-log
//!    replay, CEL replay, appraisal against the reference values) on one thread, N times;
//!    then the same on every core at once (N split over the threads);
//! 2. **shell-out**: the quote and firmware-log part of the same proof the way Keylime's
//!    verifier does it, one process per tool per attestation: `tpm2_checkquote` with the PCR
//!    file (`-f`, tpm2-tools' serialized format: signature, nonce and the PCR digest over the
//!    reported values), `tpm2_eventlog` (parse, replay), then, in this process, the replayed
//!    PCRs compared with the quoted ones. No CEL replay, no clock check, no appraisal: it does
//!    less than row 1. N/10 times (at least 20);
//! 3. **end to end over gRPC**: K nodes (one swtpm each, registered, activated and admitted
//!    first) attest R rounds each, all at once, to a `warrant-verifier` process on loopback over
//!    mutual TLS: challenge (with a clock quote), quote, attest. The swtpm quotes, CSR keys and
//!    SQLite commits (`synchronous=FULL`) are inside the time; the verifier's own CPU time
//!    (`/proc/PID/stat` utime + stime) is reported beside it;
//! 4. **memory per registered node**: M more nodes, one at a time (own swtpm, own EK), each
//!    registered, activated and admitted over a fresh connection that is then closed, and its
//!    swtpm stopped. The verifier's RSS (`VmRSS`) is read before, after M/2 and after M; the
//!    slope is KiB per node. The SQLite database and its WAL are measured too.
//!
//! Options: `--iterations N` (default 2000), `--nodes K` (default 8), `--rounds R`
//! (default 5), `--registered M` (default 50; 0 skips row 4).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // bench code

#[path = "../tests/support/mod.rs"]
mod support;

use measure::alg::HashAlg;
use measure::pcr::PcrBanks;
use measure::tpm2::{Attest, Attested, PcrSelection};
use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use support::attestation::{swtpm_root_ca_dir, Boot, Client, Node, Verifier};
use tpm::{AkAlg, AkRef, EkAlg};

type Res<T> = Result<T, Box<dyn Error>>;

struct Options {
    iterations: usize,
    nodes: usize,
    rounds: usize,
    registered: usize,
}

fn options() -> Res<Options> {
    let mut o = Options {
        iterations: 2000,
        nodes: 8,
        rounds: 5,
        registered: 50,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value =
            || -> Res<usize> { Ok(args.get(i + 1).ok_or("missing value")?.parse::<usize>()?) };
        match args[i].as_str() {
            "--iterations" => o.iterations = value()?.max(10),
            "--nodes" => o.nodes = value()?.max(1),
            "--rounds" => o.rounds = value()?.max(1),
            "--registered" => o.registered = value()?,
            "--bench" => {
                i += 1;
                continue;
            }
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(o)
}

fn rss_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// The CPU time (user + system, all threads, in clock ticks) a process used so far.
fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (in parentheses, which may hold spaces).
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_sec() -> Res<u64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// The verifier's SQLite database, its write-ahead log and the `evidence/` folder (each node's
/// last evidence, kept for `policy capture`), in KiB (0 for what is missing).
fn state_kib(state: &Path) -> (u64, u64, u64) {
    let kib = |name: &str| std::fs::metadata(state.join(name)).map_or(0, |m| m.len() / 1024);
    let evidence = std::fs::read_dir(state.join("evidence")).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            / 1024
    });
    (
        kib("verifier.sqlite3"),
        kib("verifier.sqlite3-wal"),
        evidence,
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> Res<()> {
    let o = options()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench-attest on {} ({cores} cores), load average {}",
        tests::cpu_model(),
        loadavg()
    );

    // Reference values captured from a golden node, as a user would.
    let ca = swtpm_root_ca_dir();
    let mut verifier = Verifier::start(&ca, None, &[]);
    let golden = Node::boot("golden", &Boot::good());
    let out = golden.agent(&verifier, &[]);
    if out.status.code() != Some(1) {
        return Err(format!("golden node: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let policy_path = verifier.capture("golden");
    let refs = policy::refvalues::ReferenceValues::from_json(&std::fs::read(&policy_path)?)?;

    // Row 1: the pure core on one real piece of evidence.
    let mut tpm = golden.tpm();
    let blobs = tpm.create_ak(EkAlg::Rsa2048, AkAlg::EccP256)?;
    let ak = AkRef::Blobs {
        blobs,
        parent: EkAlg::Rsa2048,
    };
    let ak_public = tpm.ak_public(&ak)?;
    let nonce = [0x5a; 32];
    let selection = refs.quote_selection();
    let quote = tpm.quote(&ak, &selection, &nonce)?;
    let attest = Attest::parse(&quote.attest)?;
    let clock = attest.clock_info;
    let Attested::Quote(quote_info) = &attest.attested else {
        return Err("not a quote".into());
    };
    drop(tpm);
    let firmware = std::fs::read(golden.firmware_log_path())?;
    let cel = std::fs::read(golden.cel_path())?;
    let expect = verifier::core::Expectation {
        ak_public: &ak_public.tpm2b_public,
        nonce: &nonce,
        challenge_clock: clock,
        last_clock: None,
        refs: &refs,
    };
    let evidence = verifier::core::Evidence {
        attest: &quote.attest,
        signature: &quote.signature,
        pcrs: &quote.pcrs,
        firmware_log: &firmware,
        warrant_log: &cel,
        ima_log: &[],
    };
    let report = verifier::core::attest(&expect, &evidence);
    if !report.admitted {
        return Err(format!("golden evidence not admitted: {:?}", report.findings).into());
    }
    let start = Instant::now();
    for _ in 0..o.iterations {
        let r = verifier::core::attest(&expect, &evidence);
        assert!(r.admitted);
    }
    let core = start.elapsed();
    // The same on every core at once.
    let per_thread = o.iterations.div_ceil(cores);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    assert!(verifier::core::attest(&expect, &evidence).admitted);
                }
            });
        }
    });
    let core_all = start.elapsed();

    // Row 2: tpm2_checkquote (with the PCR file) + tpm2_eventlog, one process each, per
    // attestation, then the replayed PCRs compared with the quoted ones.
    let dir = golden.dir.join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("quote.attest"), &quote.attest)?;
    std::fs::write(dir.join("quote.sig"), &quote.signature)?;
    std::fs::write(dir.join("ak.pem"), spki_pem(&ak_public.spki_der))?;
    let pcr_file = tpm2_tools_pcr_file(&quote_info.pcr_select, &quote.pcrs)?;
    std::fs::write(dir.join("quote.pcrs"), &pcr_file)?;
    let checkquote = |pcrs: &str| {
        let mut cmd = Command::new("tpm2_checkquote");
        cmd.current_dir(&dir)
            .args(["-u", "ak.pem", "-m", "quote.attest", "-s", "quote.sig"])
            .args(["-f", pcrs, "-q", &hex::encode(nonce), "-g", "sha256"]);
        cmd
    };
    // tpm2_checkquote really checks the PCR digest against the file: one changed bit fails.
    let mut tampered = pcr_file.clone();
    // The first value's first byte: after the selection, the list count, the first
    // TPML_DIGEST's count and the first TPM2B_DIGEST's size.
    tampered[132 + 4 + 4 + 2] ^= 1;
    std::fs::write(dir.join("tampered.pcrs"), &tampered)?;
    if checkquote("tampered.pcrs").output()?.status.success() {
        return Err(
            "tpm2_checkquote accepted a changed PCR value: the PCR file is not read".into(),
        );
    }
    let firmware_pcrs = refs.firmware_log_pcrs();
    let shell_once = || -> Res<usize> {
        run(&mut checkquote("quote.pcrs"))?;
        let out = run(Command::new("tpm2_eventlog").arg(golden.firmware_log_path()))?;
        compare_replayed(&out, refs.bank(), &firmware_pcrs, &quote.pcrs)
    };
    let compared = shell_once()?;
    let shell_n = (o.iterations / 10).max(20);
    let start = Instant::now();
    for _ in 0..shell_n {
        shell_once()?;
    }
    let shell_time = start.elapsed();

    // Row 3: K admitted nodes attesting at once to the verifier process.
    verifier.restart(Some(&policy_path));
    let pid = verifier.pid();
    let ticks = clock_ticks_per_sec()?;
    let nodes: Vec<Node> = (0..o.nodes)
        .map(|i| Node::boot(&format!("bench-{i}"), &Boot::good()))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut admitted = Vec::new();
    for node in &nodes {
        admitted.push(runtime.block_on(admit(&verifier, node))?);
    }
    // Each node on its own thread with its own runtime, connected first (here, so that a
    // failure cannot leave the others waiting); the clock starts when all are ready.
    let mut connected = Vec::new();
    for (_, cert, key) in &admitted {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt.block_on(verifier.client(Some((cert, key))));
        connected.push((rt, client));
    }
    let barrier = Barrier::new(o.nodes + 1);
    let (counts, e2e, e2e_cpu) = std::thread::scope(|scope| -> Res<_> {
        let handles: Vec<_> = connected
            .into_iter()
            .zip(&admitted)
            .zip(&nodes)
            .map(|(((rt, mut client), (me, _, _)), node)| {
                let barrier = &barrier;
                let rounds = o.rounds;
                scope.spawn(move || -> Result<usize, String> {
                    barrier.wait();
                    rt.block_on(async {
                        for _ in 0..rounds {
                            let (r, _) = me
                                .attest(node, &mut client, |_| {})
                                .await
                                .map_err(|e| e.to_string())?;
                            if r.verdict != proto::v1::Verdict::Admitted as i32 {
                                return Err("a bench node was denied".to_string());
                            }
                        }
                        Ok(rounds)
                    })
                })
            })
            .collect();
        let cpu0 = cpu_ticks(pid)?;
        let start = Instant::now();
        barrier.wait();
        let counts: Vec<Result<usize, String>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("thread panicked".to_string()))
            })
            .collect();
        let elapsed = start.elapsed();
        Ok((counts, elapsed, cpu_ticks(pid)? - cpu0))
    })?;
    let mut total = 0;
    for c in counts {
        total += c?;
    }
    drop(nodes);
    let e2e_cpu_s = e2e_cpu as f64 / ticks as f64;

    // Row 4: memory per registered node, nodes registered one at a time and let go.
    let mut memory = None;
    if o.registered > 0 {
        let half = o.registered / 2;
        let rss0 = rss_kib(pid)?;
        let disk0 = state_kib(&verifier.state);
        let mut rss_half = rss0;
        let start = Instant::now();
        for i in 0..o.registered {
            if i == half {
                rss_half = rss_kib(pid)?;
            }
            let node = Node::boot(&format!("mem-{i}"), &Boot::good());
            runtime.block_on(admit(&verifier, &node))?;
        }
        let took = start.elapsed();
        let rss1 = rss_kib(pid)?;
        let disk1 = state_kib(&verifier.state);
        memory = Some((rss0, rss_half, rss1, disk0, disk1, took));
    }

    println!();
    println!("| row | attestations | time | per second | note |");
    println!("|---|---|---|---|---|");
    println!(
        "| core, in process, 1 thread | {} | {:.3} s | {:.0} | quote + {} KiB firmware log + {} B CEL + appraisal, {} findings |",
        o.iterations,
        core.as_secs_f64(),
        per_sec(o.iterations, core),
        firmware.len() / 1024,
        cel.len(),
        report.findings.len()
    );
    println!(
        "| core, in process, {cores} threads | {} | {:.3} s | {:.0} | the same on every core at once |",
        per_thread * cores,
        core_all.as_secs_f64(),
        per_sec(per_thread * cores, core_all),
    );
    println!(
        "| tpm2_checkquote -f + tpm2_eventlog, spawned | {shell_n} | {:.3} s | {:.0} | signature, nonce, PCR digest; log parsed and replayed, {compared} replayed PCRs compared with the quote; no CEL, clock or appraisal |",
        shell_time.as_secs_f64(),
        per_sec(shell_n, shell_time)
    );
    println!(
        "| end to end over gRPC, {} nodes x {} rounds | {total} | {:.3} s | {:.0} | challenge + clock quote, quote (swtpm), attest; mutual TLS; verifier CPU {:.2} s = {:.1} ms per attestation |",
        o.nodes,
        o.rounds,
        e2e.as_secs_f64(),
        per_sec(total, e2e),
        e2e_cpu_s,
        e2e_cpu_s * 1000.0 / total as f64
    );
    println!(
        "\ncore vs shell-out, one attestation each: {:.1}x",
        per_sec(o.iterations, core) / per_sec(shell_n, shell_time)
    );
    println!("load average after the timed rows: {}", loadavg());
    if let Some((rss0, rss_half, rss1, disk0, disk1, took)) = memory {
        let m = o.registered;
        let half = m / 2;
        println!(
            "\nmemory: {m} more nodes registered, activated and admitted one at a time in {:.1} s \
             (connection closed, swtpm stopped after each); the verifier already held {} nodes",
            took.as_secs_f64(),
            o.nodes + 1
        );
        println!(
            "verifier VmRSS: {rss0} KiB before, {rss_half} KiB after {half}, {rss1} KiB after {m}"
        );
        println!(
            "  slope: {:.1} KiB per node over all {m}, {:.1} KiB per node over the last {}",
            rss1.saturating_sub(rss0) as f64 / m as f64,
            rss1.saturating_sub(rss_half) as f64 / (m - half) as f64,
            m - half
        );
        let per_node = |before: u64, after: u64| after.saturating_sub(before) as f64 / m as f64;
        println!(
            "on disk: SQLite database {} -> {} KiB ({:.1} KiB per node), WAL {} -> {} KiB, \
             evidence/ {} -> {} KiB ({:.1} KiB per node)",
            disk0.0,
            disk1.0,
            per_node(disk0.0, disk1.0),
            disk0.1,
            disk1.1,
            disk0.2,
            disk1.2,
            per_node(disk0.2, disk1.2)
        );
    }
    Ok(())
}

/// Registers, activates and admits `node` over a fresh connection (closed on return); returns
/// its protocol client, client certificate and key.
async fn admit(verifier: &Verifier, node: &Node) -> Res<(Client, String, String)> {
    let mut c = verifier.client(None).await;
    let me = Client::register(node, &mut c, true).await?;
    let (r, key) = me.attest(node, &mut c, |_| {}).await?;
    let cert = r.credential.ok_or("not admitted")?.client_certificate_pem;
    Ok((me, cert, key))
}

/// `tpm2_checkquote -f` input in tpm2-tools' "serialized" PCR file format (what `tpm2_quote -o`
/// writes by default): the C structures as laid out in memory, little-endian. First
/// `TPML_PCR_SELECTION` (count u32, then 16 `TPMS_PCR_SELECTION` of hash u16, sizeofSelect u8,
/// pcrSelect\[4\] and one byte of padding), then a u32 count of `TPML_DIGEST`s, then each
/// `TPML_DIGEST` (count u32, then 8 `TPM2B_DIGEST` of size u16 and buffer\[64\]) holding at
/// most 8 values, in the selection's order: banks as quoted, PCRs ascending.
fn tpm2_tools_pcr_file(selection: &[PcrSelection], pcrs: &PcrBanks) -> Res<Vec<u8>> {
    const BANKS: usize = 16;
    const PER_LIST: usize = 8;
    const HA: usize = 64;
    if selection.len() > BANKS {
        return Err("too many banks".into());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(selection.len() as u32).to_le_bytes());
    let mut values: Vec<&[u8]> = Vec::new();
    for s in selection {
        let mut bitmap = [0u8; 4];
        for &pcr in &s.pcrs {
            *bitmap.get_mut(pcr as usize / 8).ok_or("PCR above 31")? |= 1 << (pcr % 8);
            values.push(pcrs.get(s.bank, pcr).ok_or("a quoted PCR without value")?);
        }
        out.extend_from_slice(&s.bank.tpm_alg_id().to_le_bytes());
        out.push(3);
        out.extend_from_slice(&bitmap);
        out.push(0);
    }
    out.resize(4 + BANKS * 8, 0);
    let lists: Vec<&[&[u8]]> = values.chunks(PER_LIST).collect();
    out.extend_from_slice(&(lists.len() as u32).to_le_bytes());
    for list in lists {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for i in 0..PER_LIST {
            let mut buffer = [0u8; HA];
            let value = list.get(i).copied().unwrap_or_default();
            buffer
                .get_mut(..value.len())
                .ok_or("digest too long")?
                .copy_from_slice(value);
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(&buffer);
        }
    }
    Ok(out)
}

/// What Keylime does with `tpm2_eventlog`'s output: the replayed values of `pcrs` in `bank`
/// (its final `pcrs:` section) must equal the quoted ones. Returns how many were compared.
fn compare_replayed(
    eventlog_stdout: &[u8],
    bank: HashAlg,
    pcrs: &[u32],
    quoted: &PcrBanks,
) -> Res<usize> {
    let text = std::str::from_utf8(eventlog_stdout)?;
    let (_, section) = text.rsplit_once("\npcrs:\n").ok_or("no pcrs section")?;
    let mut replayed: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut in_bank = false;
    for line in section.lines() {
        if let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
            in_bank = name.trim_end_matches(':') == bank.name();
        } else if in_bank {
            let (pcr, value) = line.split_once(':').ok_or("bad pcr line")?;
            let value = value.trim().trim_start_matches("0x");
            replayed.insert(pcr.trim().parse()?, hex::decode(value)?);
        }
    }
    for &pcr in pcrs {
        let r = replayed.get(&pcr).ok_or("PCR not in the log")?;
        if Some(r.as_slice()) != quoted.get(bank, pcr) {
            return Err(format!("PCR {pcr}: log does not replay to the quoted value").into());
        }
    }
    Ok(pcrs.len())
}

fn run(cmd: &mut Command) -> Res<Vec<u8>> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(out.stdout)
}

fn spki_pem(der: &[u8]) -> String {
    use std::fmt::Write as _;
    let b64 = base64_encode(der);
    let mut s = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        let _ = writeln!(s, "{}", String::from_utf8_lossy(chunk));
    }
    s.push_str("-----END PUBLIC KEY-----\n");
    s
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
