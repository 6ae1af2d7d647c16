//! `warrant ima replay`.

use crate::{emit, load_expected, print_json, read_file, write_banks, Failure};
use clap::{Subcommand, ValueEnum};
use measure::eventlog::EventLog;
use measure::ima::boot_aggregate::{
    check_boot_aggregate, BootAggregateCheck, BootAggregateVerdict,
};
use measure::ima::replay::{replay, verify, verify_any_mode, BankPcrs, ReplayMode};
use measure::ima::{AsciiOptions, BinaryOptions, ByteOrder, ImaList, TemplateHashReport};
use measure::pcr::PcrBanks;
use measure::HashAlg;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImaCommand {
    /// Replay an IMA measurement list (ASCII or binary) into PCR 10 of every bank.
    Replay {
        /// A copy of /sys/kernel/security/ima/{ascii,binary}_runtime_measurements.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The list's encoding; `auto` tells them apart by content.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
        /// The list was made on a big-endian host without `ima_canonical_fmt` (binary lists say
        /// so themselves; an ASCII list does not, and the kernel hashed its field lengths in the
        /// host's byte order).
        #[arg(long)]
        big_endian: bool,
        /// Bank of the recorded template hashes: `sha1` for `*_runtime_measurements`, the bank's
        /// algorithm for the per-bank files of Linux 6.10+ (`..._runtime_measurements_sha256`).
        /// Default: sha1 for binary lists; for ASCII lists, told by the hashes' length.
        #[arg(long, value_name = "ALG", value_parser = parse_alg)]
        template_hash: Option<HashAlg>,
        /// What the kernel extended into non-SHA-1 banks. Without --expect the default is the
        /// current kernels' rule; with --expect both are tried, per-bank first.
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Expected PCR values, `{"sha256": {"10": "<hex>"}}` (a replay report with a "banks"
        /// member works too). Exits 1, naming the PCR, when no prefix of the list reproduces them.
        #[arg(long, value_name = "PCRS.json")]
        expect: Option<PathBuf>,
        /// The firmware event log of the same boot: checks the list's boot_aggregate entry
        /// against the PCRs it replays to, and exits 1 if it does not match.
        #[arg(long, value_name = "BIOS_LOG", conflicts_with = "firmware_pcrs")]
        boot_log: Option<PathBuf>,
        /// Firmware PCR values of the same boot (PCRs 0-7, and 8-9 for current kernels), in the
        /// --expect JSON shape: checks the boot_aggregate entry against them, exit 1 if not.
        #[arg(long, value_name = "PCRS.json")]
        firmware_pcrs: Option<PathBuf>,
    },
}

/// Where the firmware PCRs for the boot_aggregate check come from.
enum Firmware {
    Log(PathBuf),
    Pcrs(PathBuf),
}

impl Firmware {
    fn path(&self) -> &Path {
        match self {
            Firmware::Log(p) | Firmware::Pcrs(p) => p,
        }
    }

    fn pcrs(&self) -> Result<PcrBanks, Failure> {
        match self {
            Firmware::Pcrs(p) => load_expected(p),
            Firmware::Log(p) => {
                let bytes = read_file(p)?;
                let log = EventLog::parse(&bytes).map_err(|e| {
                    Failure::input(format!("{}: not a valid event log: {e}", p.display()))
                })?;
                Ok(measure::eventlog::replay::replay(&log).banks)
            }
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Auto,
    Ascii,
    Binary,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Linux 5.8 and later: each bank's own template hash.
    PerBank,
    /// Before Linux 5.8: the SHA-1 template hash, zero-padded.
    PaddedSha1,
}

impl From<Mode> for ReplayMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::PerBank => ReplayMode::PerBankTemplateHash,
            Mode::PaddedSha1 => ReplayMode::PaddedSha1,
        }
    }
}

pub fn run(cmd: ImaCommand) -> Result<(), Failure> {
    match cmd {
        ImaCommand::Replay {
            file,
            json,
            format,
            big_endian,
            template_hash,
            mode,
            expect,
            boot_log,
            firmware_pcrs,
        } => {
            let firmware = match (boot_log, firmware_pcrs) {
                (Some(log), _) => Some(Firmware::Log(log)),
                (None, Some(pcrs)) => Some(Firmware::Pcrs(pcrs)),
                (None, None) => None,
            };
            replay_cmd(
                &file,
                json,
                (format, big_endian, template_hash),
                mode,
                expect.as_deref(),
                firmware,
            )
        }
    }
}

/// ASCII lists are lines of printable text that start with a PCR number; binary lists start
/// with a 4-byte PCR index, whose bytes are not all printable digits.
fn looks_ascii(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
}

fn parse_alg(name: &str) -> Result<HashAlg, String> {
    HashAlg::from_name(name).ok_or_else(|| {
        format!("unknown algorithm {name:?} (sha1, sha256, sha384, sha512, sm3_256)")
    })
}

/// How to read a list: encoding, host byte order (ASCII), bank of the template hashes.
type ListOptions = (Format, bool, Option<HashAlg>);

fn load(file: &Path, (format, big_endian, template_hash): ListOptions) -> Result<ImaList, Failure> {
    let bytes = read_file(file)?;
    let ascii = match format {
        Format::Ascii => true,
        Format::Binary => false,
        Format::Auto => looks_ascii(&bytes),
    };
    let parsed = if ascii {
        let byte_order = if big_endian {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        ImaList::parse_ascii_with(
            &bytes,
            AsciiOptions {
                byte_order,
                template_hash_algorithm: template_hash,
            },
        )
    } else {
        let template_hash_algorithm = template_hash.unwrap_or(HashAlg::Sha1);
        ImaList::parse_binary_with(
            &bytes,
            BinaryOptions {
                byte_order: None,
                template_hash_algorithm,
            },
        )
    };
    parsed.map_err(|e| {
        Failure::input(format!(
            "{}: not a valid IMA measurement list: {e}",
            file.display()
        ))
    })
}

#[derive(Serialize)]
struct Report<'a> {
    format: measure::ima::ListFormat,
    entries: usize,
    template_hash_algorithm: HashAlg,
    mode: ReplayMode,
    banks: PcrBanks,
    template_hashes: &'a TemplateHashReport,
    unknown_templates: Vec<usize>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    /// With --expect: entries after the verified prefix (appended after the quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    unverified_tail: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    boot_aggregate: Option<BootAggregateCheck>,
}

fn to_banks(pcrs: &BankPcrs) -> PcrBanks {
    let mut out = PcrBanks::new();
    for (alg, values) in pcrs {
        for (pcr, v) in values {
            out.set(*alg, *pcr, v.clone());
        }
    }
    out
}

fn from_banks(banks: &PcrBanks) -> BankPcrs {
    banks.banks().map(|(a, pcrs)| (a, pcrs.clone())).collect()
}

fn replay_cmd(
    file: &Path,
    json: bool,
    format: ListOptions,
    mode: Option<Mode>,
    expect: Option<&Path>,
    firmware: Option<Firmware>,
) -> Result<(), Failure> {
    let list = load(file, format)?;
    let hashes = list.check_template_hashes();
    let mut warnings = Vec::new();
    for m in &hashes.mismatches {
        warnings.push(format!(
            "entry {} at {}: template hash {} is not the hash of its data ({})",
            m.number,
            m.location,
            hex::encode(&m.recorded),
            hex::encode(&m.computed)
        ));
    }
    let unknown = list.unknown_templates();
    for n in &unknown {
        warnings.push(format!("entry {n}: unknown template, kept as raw fields"));
    }

    let mut failure = None;
    let (mode, pcrs, verified, tail) = match expect {
        None => {
            let mode = mode.map_or(ReplayMode::PerBankTemplateHash, ReplayMode::from);
            let mut pcrs = BankPcrs::new();
            for alg in HashAlg::ALL {
                match replay(&list, &[alg], mode) {
                    Ok(r) => pcrs.extend(r.pcrs),
                    Err(e) => warnings.push(format!("{alg} bank not replayed: {e}")),
                }
            }
            (mode, pcrs, None, None)
        }
        Some(path) => {
            let expected = from_banks(&load_expected(path)?);
            let result = match mode {
                Some(m) => verify(&list, &expected, m.into()),
                None => verify_any_mode(&list, &expected),
            };
            match result {
                Ok(v) => {
                    let banks: Vec<HashAlg> = expected.keys().copied().collect();
                    let pcrs = replay(&list, &banks, v.mode())
                        .map(|r| r.pcrs)
                        .unwrap_or_default();
                    (v.mode(), pcrs, Some(true), Some(v.unverified_tail()))
                }
                Err(e) => {
                    let mode = mode.map_or(ReplayMode::PerBankTemplateHash, ReplayMode::from);
                    let banks: Vec<HashAlg> = expected.keys().copied().collect();
                    let pcrs = replay(&list, &banks, mode)
                        .map(|r| r.pcrs)
                        .unwrap_or_default();
                    let code = if matches!(e, measure::ima::replay::ReplayError::NothingExpected) {
                        Failure::input
                    } else {
                        Failure::verdict
                    };
                    failure = Some(code(format!("{}: {e}", file.display())));
                    (mode, pcrs, Some(false), None)
                }
            }
        }
    };

    let boot_aggregate = match firmware {
        None => None,
        Some(fw) => {
            let check = check_boot_aggregate(&list, &from_banks(&fw.pcrs()?))
                .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
            if !matches!(check.verdict, BootAggregateVerdict::Matched(_)) && failure.is_none() {
                failure = Some(Failure::verdict(format!(
                    "{}: boot_aggregate {} does not bind the list to the boot of {} ({:?})",
                    file.display(),
                    hex::encode(&check.recorded),
                    fw.path().display(),
                    check.verdict
                )));
            }
            Some(check)
        }
    };

    let report = Report {
        format: list.format,
        entries: list.entries.len(),
        template_hash_algorithm: list.template_hash_algorithm,
        mode,
        banks: to_banks(&pcrs),
        template_hashes: &hashes,
        unknown_templates: unknown,
        warnings,
        verified,
        unverified_tail: tail,
        boot_aggregate,
    };
    if json {
        print_json(&report)?;
    } else {
        print_text(&report)?;
    }
    failure.map_or(Ok(()), Err)
}

fn print_text(r: &Report<'_>) -> Result<(), Failure> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "IMA list: {:?}, {} entries, template hashes in {}, replay: {}",
        r.format, r.entries, r.template_hash_algorithm, r.mode
    );
    let _ = writeln!(
        out,
        "template hashes: {} match, {} violations, {} not recomputable, {} mismatches",
        r.template_hashes.matched,
        r.template_hashes.violations.len(),
        r.template_hashes.not_recomputable.len(),
        r.template_hashes.mismatches.len()
    );
    write_banks(&mut out, &r.banks);
    if let Some(check) = &r.boot_aggregate {
        let _ = writeln!(
            out,
            "boot_aggregate ({}): {:?}",
            check.algorithm, check.verdict
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    match (r.verified, r.unverified_tail) {
        (Some(true), Some(0)) => out.push_str("verified: every expected value reproduced\n"),
        (Some(true), Some(n)) => {
            let _ = writeln!(
                out,
                "verified: expected values reproduced; {n} later entries are not covered"
            );
        }
        _ => {}
    }
    emit(&out)
}
