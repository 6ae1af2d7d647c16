//! `bench-disk`: how fast `warrant disk enroll` and `warrant disk unlock --test` are, side by
//! side with `systemd-cryptenroll` and libcryptsetup on the same swtpm. Run it with
//! `scripts/bench-disk.sh` (it builds the release binary first), or
//! `cargo bench -p tests --bench bench-disk -- [OPTIONS]`.
//!
//! One swtpm (sha256 bank only, no EK certificates) serves every row, over TCP with no resource
//! manager. The volumes are 20 MiB LUKS2 image files formatted once by `cryptsetup luksFormat
//! --pbkdf pbkdf2 --pbkdf-force-iterations 1000` with a passphrase in keyslot 0 (the unlock key,
//! in a 0600 file); each enroll starts from a fresh copy of that image (the copy is not timed).
//! Both tools seal a random key to PolicyPCR(sha256:7), no PIN, and add it in keyslot 1 with
//! PBKDF2-SHA512, 1000 iterations (each tool's own choice for TPM keys; the bench reads it back
//! from the header). Rows, N times each, one iteration of every row after another (so load
//! from elsewhere falls on all rows alike), after one untimed round that must succeed:
//! - enroll, `warrant disk enroll IMG --pcrs 7 --unlock-key-file K --tcti T`;
//! - enroll, `systemd-cryptenroll --tpm2-device=T --tpm2-pcrs=7 --unlock-key-file=K IMG`;
//! - enroll floor, `cryptsetup luksAddKey --key-file K --new-keyfile NEW --new-key-slot 1
//!   --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 IMG`: the keyslot write both
//!   tools do, without the TPM and without the token;
//! - enroll floor, the three cryptsetup calls `warrant disk enroll` makes, keys on stdin as it
//!   passes them: `open --test-passphrase --key-file -`, the `luksAddKey` above with
//!   `--key-file -`, `token import --json-file -` (Warrant's token JSON), without the TPM;
//! - unlock, `warrant disk unlock IMG --test --tcti T` on a Warrant-enrolled image, and on a
//!   systemd-enrolled one;
//! - unlock, Warrant's library in process: `tpm::systemd::unseal` of the systemd-enrolled
//!   token (one `Tpm` for the series): the TPM's share;
//! - unlock floor, `cryptsetup open --test-passphrase --key-slot 1 --key-file - IMG` with the
//!   unsealed key on stdin: the KDF and keyslot check every way of unlocking shares.
//!
//! After every run of a TPM-using command, and not timed, `tpm2_flushcontext -l` and `-t` clear
//! what it left loaded (there is no resource manager; systemd-cryptenroll 252 leaves a session
//! per run, which the untimed round counts and the bench prints).
//!
//! Every timed command must exit 0; after each enroll the header must hold a systemd-tpm2 token
//! for keyslot 1, and every unsealed key must equal the first one. systemd's own way to unseal
//! without device-mapper, `cryptsetup open --test-passphrase --token-only IMG` (libcryptsetup
//! loading `libcryptsetup-token-systemd-tpm2.so`), is tried once: its plugin takes the TPM from
//! `/sys/class/tpmrm` when the caller passes no device (the `cryptsetup` tool passes none;
//! systemd 252's `tpm2_find_device_auto`; `SYSTEMD_TPM2_DEVICE` is set to the swtpm but is not
//! read on that path), so it cannot reach a swtpm and is timed only if it succeeds.
//! No test asserts on these numbers.
//!
//! Options: `--iterations N` (default 20), `--warrant PATH` (default
//! `<target dir>/release/warrant`), `--unlock-argon2-ms MS` (format keyslot 0 with argon2id
//! benchmarked to MS, as a real passphrase keyslot is, instead of PBKDF2 with 1000 iterations:
//! shows how often each tool runs the unlock key's KDF).

use measure::luks2::{Header, ObjectId, Token};
use std::error::Error;
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::swtpm::{Swtpm, SwtpmOptions};
use tpm::Tpm;

type Res<T> = Result<T, Box<dyn Error>>;

const UNLOCK_KEY: &[u8] = b"correct horse battery staple";

/// Runs `cmd` to completion with `stdin` on its standard input; its wall-clock time. An exit
/// other than 0 is an error carrying the command's standard error.
fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Res<Duration> {
    let what = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(elapsed)
}

/// The parsed LUKS2 header of an image file.
fn header(img: &Path) -> Res<Header> {
    let mut f = std::fs::File::open(img)?;
    let mut all = vec![0u8; 4096];
    f.read_exact(&mut all)?;
    let need = usize::try_from(measure::luks2::required_len(&all)?)?;
    all.resize(need, 0);
    f.read_exact(all.get_mut(4096..).ok_or("header shorter than 4 KiB")?)?;
    Ok(Header::parse(&all)?)
}

/// Checks that keyslot 1 exists and that a systemd-tpm2 token names it; returns the keyslot's
/// KDF as `pbkdf2-sha512, 1000 iterations`.
fn check_enrolled(img: &Path, who: &str) -> Res<String> {
    let h = header(img)?;
    let has_token = h
        .metadata()
        .tokens
        .values()
        .any(|t| matches!(t, Token::SystemdTpm2(st) if st.keyslots == [ObjectId(1)]));
    if !has_token {
        return Err(format!("{who}: no systemd-tpm2 token for keyslot 1").into());
    }
    let kdf = h
        .metadata()
        .keyslots
        .get(&ObjectId(1))
        .and_then(|k| k.kdf.as_ref())
        .ok_or_else(|| format!("{who}: no keyslot 1"))?;
    Ok(format!(
        "{}-{}, {} iterations",
        kdf.kind,
        kdf.hash.as_deref().unwrap_or("?"),
        kdf.iterations.map_or("?".to_string(), |i| i.to_string())
    ))
}

/// The first systemd-tpm2 token of an image.
fn tpm_token(img: &Path) -> Res<measure::luks2::SystemdTpm2Token> {
    header(img)?
        .metadata()
        .tokens
        .values()
        .find_map(|t| match t {
            Token::SystemdTpm2(st) => Some(st.clone()),
            Token::Other(_) => None,
        })
        .ok_or_else(|| format!("{}: no systemd-tpm2 token", img.display()).into())
}

/// The sessions loaded in the TPM now (`tpm2_getcap handles-loaded-session`).
fn loaded_sessions(tcti: &str) -> Res<usize> {
    let out = Command::new("tpm2_getcap")
        .args(["-T", tcti, "handles-loaded-session"])
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!("tpm2_getcap handles-loaded-session: {}", out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .count())
}

/// Flushes every loaded session and transient object (not timed). With no resource manager
/// what a process leaves loaded stays there: systemd-cryptenroll 252 leaves one session per
/// run, and swtpm holds only 3, so its fourth run would fail with "out of memory for session
/// contexts". Behind `/dev/tpmrm0` the kernel flushes them when the process closes the device.
fn flush(tcti: &str) -> Res<()> {
    for class in ["-l", "-t"] {
        run(
            Command::new("tpm2_flushcontext").args(["-T", tcti, class]),
            None,
        )?;
    }
    Ok(())
}

/// Runs a TPM-using command (timed), then counts (in the untimed round `count`) and flushes
/// what it left loaded.
fn run_tpm(cmd: &mut Command, tcti: &str, leaked: Option<&mut usize>) -> Res<Duration> {
    let t = run(cmd, None)?;
    if let Some(leaked) = leaked {
        *leaked = loaded_sessions(tcti)?;
    }
    flush(tcti)?;
    Ok(t)
}

/// One row: N operations of one kind and their total time.
struct Row {
    name: &'static str,
    command: String,
    elapsed: Duration,
}

/// `systemd 252 (252.39-1~deb12u2)`, `cryptsetup 2.6.1`, `TPM emulator version 0.7.1`: the
/// first line a program prints for `--version`.
fn version(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split(" flags").next().unwrap_or(l).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn arg_eq(name: &str, value: &Path) -> OsString {
    let mut a = OsString::from(name);
    a.push(value);
    a
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n: u32 = 20;
    let mut argon2_ms: Option<u32> = None;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| tests::workspace_root().join("target"), PathBuf::from);
    let mut warrant = target.join("release/warrant");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--iterations" => n = it.next().ok_or("--iterations N")?.parse()?,
            "--warrant" => warrant = it.next().ok_or("--warrant PATH")?.into(),
            "--unlock-argon2-ms" => {
                argon2_ms = Some(it.next().ok_or("--unlock-argon2-ms MS")?.parse()?);
            }
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if n == 0 {
        return Err("--iterations must be at least 1".into());
    }
    if !warrant.is_file() {
        return Err(format!(
            "{} not built (scripts/bench-disk.sh builds it)",
            warrant.display()
        )
        .into());
    }
    for tool in [
        "cryptsetup",
        "systemd-cryptenroll",
        "swtpm",
        "tpm2_getcap",
        "tpm2_flushcontext",
    ] {
        tests::which(tool)
            .ok_or_else(|| format!("{tool} not on PATH (scripts/install-deps.sh)"))?;
    }
    let swtpm = Swtpm::start_with(&SwtpmOptions {
        certificates: false,
        pcr_banks: "sha256".into(),
        own_ca: None,
    })?;
    let tcti = swtpm.tcti();
    let dir = swtpm.dir().to_path_buf();
    println!(
        "bench-disk: LUKS2 20 MiB image files, PolicyPCR(sha256:7), no PIN; {n} operations per row"
    );
    println!(
        "machine: {} logical CPUs, {}; {}; {}; swtpm {} over TCP ({tcti})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tests::cpu_model(),
        version("systemd-cryptenroll"),
        version("cryptsetup"),
        version("swtpm")
            .split_once("version ")
            .and_then(|(_, v)| v.split([',', ' ']).next())
            .unwrap_or("?"),
    );

    // The unlock key (0600, as systemd-cryptenroll wants) and the template image.
    let key = dir.join("unlock-key");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)?;
        f.write_all(UNLOCK_KEY)?;
    }
    let template = dir.join("template.img");
    std::fs::File::create(&template)?.set_len(20 << 20)?;
    let mut format = Command::new("cryptsetup");
    format.args(["luksFormat", "--type", "luks2", "--batch-mode"]);
    let unlock_kdf = match argon2_ms {
        None => {
            format.args(["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]);
            "pbkdf2-sha256, 1000 iterations".to_string()
        }
        Some(ms) => {
            format.args(["--pbkdf", "argon2id", "--iter-time", &ms.to_string()]);
            format!("argon2id, benchmarked by cryptsetup to {ms} ms")
        }
    };
    run(format.arg("--key-file").arg(&key).arg(&template), None)?;
    // The new key of the floor row: 44 characters, as both tools' base64 of 32 bytes.
    let new_key = dir.join("new-key");
    std::fs::write(&new_key, b"bm90LWEtcmVhbC1rZXktanVzdC0zMi1ieXRlcy1sb25n")?;

    let img_w = dir.join("enroll-warrant.img");
    let img_s = dir.join("enroll-systemd.img");
    let img_f = dir.join("enroll-floor.img");
    let img_c = dir.join("enroll-calls.img");
    let mut enroll = [
        Row {
            name: "enroll: warrant disk enroll",
            command: "warrant disk enroll IMG --pcrs 7 --unlock-key-file K --tcti T".into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "enroll: systemd-cryptenroll",
            command: "systemd-cryptenroll --tpm2-device=T --tpm2-pcrs=7 --unlock-key-file=K IMG"
                .into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "enroll floor: cryptsetup luksAddKey",
            command: "cryptsetup luksAddKey --key-file K --new-keyfile NEW --new-key-slot 1 \
                      --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 IMG (no TPM)"
                .into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "enroll floor: warrant's 3 cryptsetup calls",
            command: "cryptsetup open --test-passphrase --key-file - IMG; cryptsetup luksAddKey \
                      (as above, --key-file -); cryptsetup token import --json-file - IMG (no TPM)"
                .into(),
            elapsed: Duration::ZERO,
        },
    ];
    let mut kdfs = Vec::new();
    // The token JSON the last row imports: Warrant's, exported after its first enroll.
    let mut token_json = Vec::new();
    // Sessions each TPM-using command left loaded, in the untimed round: warrant enroll,
    // systemd-cryptenroll, warrant unlock (Warrant-enrolled), warrant unlock (systemd-enrolled).
    let mut leaks = [0usize; 4];
    flush(&tcti)?;
    for i in 0..=n {
        for img in [&img_w, &img_s, &img_f, &img_c] {
            std::fs::copy(&template, img)?;
        }
        let t_w = run_tpm(
            Command::new(&warrant)
                .args(["disk", "enroll"])
                .arg(&img_w)
                .args(["--pcrs", "7", "--tcti", &tcti, "--unlock-key-file"])
                .arg(&key),
            &tcti,
            (i == 0).then_some(&mut leaks[0]),
        )?;
        let kdf_w = check_enrolled(&img_w, "warrant disk enroll")?;
        if i == 0 {
            let out = Command::new("cryptsetup")
                .args(["token", "export", "--token-id", "0"])
                .arg(&img_w)
                .output()?;
            if !out.status.success() {
                return Err(format!("cryptsetup token export: {}", out.status).into());
            }
            token_json = out.stdout;
        }
        let t_s = run_tpm(
            Command::new("systemd-cryptenroll")
                .arg(format!("--tpm2-device={tcti}"))
                .arg("--tpm2-pcrs=7")
                .arg(arg_eq("--unlock-key-file=", &key))
                .arg(&img_s),
            &tcti,
            (i == 0).then_some(&mut leaks[1]),
        )?;
        let kdf_s = check_enrolled(&img_s, "systemd-cryptenroll")?;
        let t_f = run(
            Command::new("cryptsetup")
                .args(["luksAddKey", "--batch-mode", "--key-file"])
                .arg(&key)
                .arg("--new-keyfile")
                .arg(&new_key)
                .args(["--new-key-slot", "1", "--pbkdf", "pbkdf2"])
                .args(["--pbkdf-force-iterations", "1000", "--hash", "sha512"])
                .arg(&img_f),
            None,
        )?;
        let add_key = |cmd: &mut Command| {
            cmd.arg("--new-keyfile")
                .arg(&new_key)
                .args(["--new-key-slot", "1", "--pbkdf", "pbkdf2"])
                .args(["--pbkdf-force-iterations", "1000", "--hash", "sha512"]);
        };
        let mut t_c = run(
            Command::new("cryptsetup")
                .args(["open", "--test-passphrase", "--key-file", "-"])
                .arg(&img_c),
            Some(UNLOCK_KEY),
        )?;
        let mut cmd = Command::new("cryptsetup");
        cmd.args(["luksAddKey", "--batch-mode", "--key-file", "-"]);
        add_key(&mut cmd);
        t_c += run(cmd.arg(&img_c), Some(UNLOCK_KEY))?;
        t_c += run(
            Command::new("cryptsetup")
                .args(["token", "import", "--json-file", "-"])
                .arg(&img_c),
            Some(&token_json),
        )?;
        check_enrolled(&img_c, "warrant's cryptsetup calls")?;
        if i == 0 {
            kdfs = vec![kdf_w, kdf_s];
        } else {
            for (row, t) in enroll.iter_mut().zip([t_w, t_s, t_f, t_c]) {
                row.elapsed += t;
            }
        }
    }

    // Unlock: the images of the last enroll round stay enrolled.
    let token = tpm_token(&img_s)?;
    let mut tpm = Tpm::open(&tcti)?;
    let first = tpm::systemd::unseal(&mut tpm, &token, None, None)?;
    // systemd's own way, once: libcryptsetup with systemd's token plugin.
    let systemd_unlock = Command::new("cryptsetup")
        .args(["open", "--test-passphrase", "--token-only", "--debug"])
        .arg(&img_s)
        .env("SYSTEMD_TPM2_DEVICE", &tcti)
        .stdin(Stdio::null())
        .output()?;
    let systemd_ok = systemd_unlock.status.success();
    let mut unlock = vec![
        Row {
            name: "unlock: warrant disk unlock --test (Warrant-enrolled)",
            command: "warrant disk unlock IMG --test --tcti T".into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "unlock: warrant disk unlock --test (systemd-enrolled)",
            command: "warrant disk unlock IMG --test --tcti T".into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "unlock: tpm::systemd::unseal, in process",
            command: "one Tpm for the series; the TPM's share of an unlock".into(),
            elapsed: Duration::ZERO,
        },
        Row {
            name: "unlock floor: cryptsetup open --test-passphrase",
            command: "cryptsetup open --test-passphrase --key-slot 1 --key-file - IMG, unsealed \
                      key on stdin (no TPM)"
                .into(),
            elapsed: Duration::ZERO,
        },
    ];
    if systemd_ok {
        unlock.push(Row {
            name: "unlock: cryptsetup --token-only (systemd plugin)",
            command: "SYSTEMD_TPM2_DEVICE=T cryptsetup open --test-passphrase --token-only IMG"
                .into(),
            elapsed: Duration::ZERO,
        });
    }
    for i in 0..=n {
        let mut times = Vec::new();
        for (img, leak) in [&img_w, &img_s]
            .into_iter()
            .zip(leaks.get_mut(2..).unwrap_or_default())
        {
            times.push(run_tpm(
                Command::new(&warrant)
                    .args(["disk", "unlock"])
                    .arg(img)
                    .args(["--test", "--tcti", &tcti]),
                &tcti,
                (i == 0).then_some(leak),
            )?);
        }
        let start = Instant::now();
        let key = tpm::systemd::unseal(&mut tpm, &token, None, None)?;
        times.push(start.elapsed());
        if key != first {
            return Err("tpm::systemd::unseal: a different key than the first time".into());
        }
        times.push(run(
            Command::new("cryptsetup")
                .args([
                    "open",
                    "--test-passphrase",
                    "--key-slot",
                    "1",
                    "--key-file",
                    "-",
                ])
                .arg(&img_s),
            Some(&key),
        )?);
        if systemd_ok {
            times.push(run(
                Command::new("cryptsetup")
                    .args(["open", "--test-passphrase", "--token-only"])
                    .arg(&img_s)
                    .env("SYSTEMD_TPM2_DEVICE", &tcti),
                None,
            )?);
        }
        if i > 0 {
            for (row, t) in unlock.iter_mut().zip(times) {
                row.elapsed += t;
            }
        }
    }
    drop(tpm);

    println!();
    println!("unlock key's keyslot 0: {unlock_kdf}");
    println!(
        "TPM keyslot KDF: warrant {}; systemd-cryptenroll {}",
        kdfs.first().map_or("?", String::as_str),
        kdfs.get(1).map_or("?", String::as_str)
    );
    println!();
    println!(
        "| {:<53} | {:>4} | {:>8} | {:>8} | command",
        "row", "N", "total s", "ms/op"
    );
    println!("|{:-<55}|{:->6}|{:->10}|{:->10}|--------", "", "", "", "");
    for r in enroll.iter().chain(&unlock) {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {:<53} | {:>4} | {:>8.3} | {:>8.2} | {}",
            r.name,
            n,
            secs,
            1000.0 * secs / f64::from(n),
            r.command
        );
    }
    println!();
    let ms = |d: Duration| 1000.0 * d.as_secs_f64() / f64::from(n);
    {
        let [w, s, f, _] = &enroll;
        println!(
            "enroll: systemd-cryptenroll / warrant = {:.2}x (above 1: warrant faster); \
             above the luksAddKey floor: warrant {:.1} ms, systemd-cryptenroll {:.1} ms",
            s.elapsed.as_secs_f64() / w.elapsed.as_secs_f64(),
            ms(w.elapsed) - ms(f.elapsed),
            ms(s.elapsed) - ms(f.elapsed),
        );
    }
    if let [w, s, lib, floor, ..] = unlock.as_slice() {
        println!(
            "unlock: warrant --test is {:.1} ms (Warrant-enrolled) / {:.1} ms (systemd-enrolled) \
             above the floor; of that, the TPM unseal in process is {:.1} ms",
            ms(w.elapsed) - ms(floor.elapsed),
            ms(s.elapsed) - ms(floor.elapsed),
            ms(lib.elapsed),
        );
    }
    println!(
        "sessions left loaded in the TPM per run (counted in the untimed round, flushed after \
         every run, not timed): warrant enroll {}, systemd-cryptenroll {}, warrant unlock {} / {}",
        leaks[0], leaks[1], leaks[2], leaks[3]
    );
    if !systemd_ok {
        // The plugin's reason is a debug message (stdout with --debug).
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&systemd_unlock.stdout),
            String::from_utf8_lossy(&systemd_unlock.stderr)
        );
        let err = all
            .lines()
            .filter(|l| l.contains("TPM2") || l.contains("open failed"))
            .map(|l| l.trim_start_matches("# ").trim())
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "not timed: `SYSTEMD_TPM2_DEVICE=T cryptsetup open --test-passphrase --token-only IMG` \
             failed ({}: {}); systemd 252's token plugin finds its TPM only in /sys/class/tpmrm, \
             so it cannot use the swtpm, and systemd-cryptsetup attach needs device-mapper",
            systemd_unlock.status,
            err.trim()
        );
    }
    drop(swtpm);
    Ok(())
}
