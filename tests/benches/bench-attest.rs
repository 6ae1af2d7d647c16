//! `bench-attest`: how fast the verifier decides, side by side with the usual shell-out way.
//! Run it with `scripts/bench-attest.sh`, or `cargo bench -p tests --bench bench-attest --
//! [OPTIONS]` after building the release binaries.
//!
//! Evidence is real: a swtpm booted through a real machine's firmware log (rhel8-uefi.bin,
//! 115 KiB, 2 banks), PCR 11 and Warrant's PCR 15 extended, an ECC P-256 AK, one quote over
//! the selection the captured reference values need. Rows:
//! 1. **core, in process**: `verifier::core::attest` (quote signature, nonce, PCR digest,
//!    clock, firmware-log replay, CEL replay, appraisal) on one core, N times;
//! 2. **shell-out**: part of the same proof the way Keylime's verifier does it, one process
//!    per tool: `tpm2_checkquote` (signature and nonce; without the PCR file it does not
//!    check the PCR digest) and `tpm2_eventlog` (parse and replay), N/10 times; no appraisal,
//!    so it does less than row 1;
//! 3. **end to end over gRPC**: K nodes (one swtpm each) attest concurrently to a
//!    `warrant-verifier` process on loopback, rounds of register-free challenge + quote +
//!    attest; the TPM's quote time is part of it;
//! 4. **memory per registered node**: the verifier's resident memory before and after K nodes
//!    registered, activated and admitted, divided by K.
//!
//! Options: `--iterations N` (default 2000), `--nodes K` (default 8), `--rounds R` (default 5).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // bench code

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;
use std::process::Command;
use std::time::{Duration, Instant};
use support::attestation::{swtpm_root_ca_dir, Boot, Client, Node, Verifier};
use tpm::{AkAlg, AkRef, EkAlg};

type Res<T> = Result<T, Box<dyn Error>>;

struct Options {
    iterations: usize,
    nodes: usize,
    rounds: usize,
}

fn options() -> Res<Options> {
    let mut o = Options {
        iterations: 2000,
        nodes: 8,
        rounds: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value =
            || -> Res<usize> { Ok(args.get(i + 1).ok_or("missing value")?.parse::<usize>()?) };
        match args[i].as_str() {
            "--iterations" => o.iterations = value()?,
            "--nodes" => o.nodes = value()?,
            "--rounds" => o.rounds = value()?,
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

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> Res<()> {
    let o = options()?;
    println!(
        "bench-attest on {} ({} cores)",
        tests::cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
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
    let clock = measure::tpm2::Attest::parse(&quote.attest)?.clock_info;
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

    // Row 2: tpm2_checkquote + tpm2_eventlog, one process each, per attestation.
    let dir = golden.dir.join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("quote.attest"), &quote.attest)?;
    std::fs::write(dir.join("quote.sig"), &quote.signature)?;
    std::fs::write(dir.join("ak.pem"), spki_pem(&ak_public.spki_der))?;
    let shell_n = (o.iterations / 10).max(20);
    let shell = |n: usize| -> Res<Duration> {
        let start = Instant::now();
        for _ in 0..n {
            run(Command::new("tpm2_checkquote")
                .current_dir(&dir)
                .args(["-u", "ak.pem", "-m", "quote.attest", "-s", "quote.sig"])
                .args(["-q", &hex::encode(nonce), "-g", "sha256"]))?;
            run(Command::new("tpm2_eventlog").arg(golden.firmware_log_path()))?;
        }
        Ok(start.elapsed())
    };
    let shell_time = shell(shell_n)?;

    // Rows 3 and 4: K nodes against the verifier process.
    verifier.restart(Some(&policy_path));
    let pid = verifier.pid();
    let idle = rss_kib(pid)?;
    let nodes: Vec<Node> = (0..o.nodes)
        .map(|i| Node::boot(&format!("bench-{i}"), &Boot::good()))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut admitted = Vec::new();
    for node in &nodes {
        admitted.push(runtime.block_on(async {
            let mut c = verifier.client(None).await;
            let me = Client::register(node, &mut c, true).await?;
            let (r, key) = me.attest(node, &mut c, |_| {}).await?;
            let cert = r.credential.ok_or("not admitted")?.client_certificate_pem;
            Ok::<_, Box<dyn Error>>((me, cert, key))
        })?);
    }
    // Every node attests R rounds on its own thread, all at once.
    let start = Instant::now();
    let counts: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = admitted
            .iter()
            .zip(&nodes)
            .map(|((me, cert, key), node)| {
                let verifier = &verifier;
                let rounds = o.rounds;
                scope.spawn(move || -> Result<usize, String> {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        let mut client = verifier.client(Some((cert, key))).await;
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
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("thread panicked".to_string()))
            })
            .collect()
    });
    let e2e = start.elapsed();
    let mut total = 0;
    for c in counts {
        total += c?;
    }
    let loaded = rss_kib(pid)?;

    println!();
    println!("| row | attestations | time | per second | note |");
    println!("|---|---|---|---|---|");
    println!(
        "| core, in process (1 core) | {} | {:.2} s | {:.0} | quote + {} KiB firmware log + CEL + appraisal, {} findings |",
        o.iterations,
        core.as_secs_f64(),
        per_sec(o.iterations, core),
        firmware.len() / 1024,
        report.findings.len()
    );
    println!(
        "| tpm2_checkquote + tpm2_eventlog, spawned | {shell_n} | {:.2} s | {:.0} | the shell-out way: signature and nonce (no PCR digest), log parsed and replayed; no appraisal |",
        shell_time.as_secs_f64(),
        per_sec(shell_n, shell_time)
    );
    println!(
        "| end to end over gRPC, {} nodes x {} rounds | {total} | {:.2} s | {:.0} | challenge, clock quote, quote (swtpm), attest over mutual TLS |",
        o.nodes,
        o.rounds,
        e2e.as_secs_f64(),
        per_sec(total, e2e)
    );
    println!(
        "\nverifier RSS: {idle} KiB idle, {loaded} KiB with {} nodes admitted: {:.1} KiB per node (includes the TLS connections the bench keeps open)",
        o.nodes,
        (loaded.saturating_sub(idle)) as f64 / o.nodes as f64
    );
    println!(
        "core vs shell-out: {:.1}x",
        per_sec(o.iterations, core) / per_sec(shell_n, shell_time)
    );
    Ok(())
}

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
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
