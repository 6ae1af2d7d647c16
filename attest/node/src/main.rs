//! `warrant`: Warrant's node-side command (event-log tools now; TPM, sealing and the agent as
//! they land). Only this file reads arguments, files and the environment; the work is done by
//! the pure `measure` crate.
#![forbid(unsafe_code)]

mod agent_cmd;
mod audit_cmd;
mod confine;
mod disk_cmd;
mod eventlog_cmd;
mod ima_cmd;
mod seccomp_cmd;
mod svn_cmd;
mod tpm_cmd;
mod uki_cmd;
mod verity_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit status when the command ran and its verdict is negative (a replay disagrees).
pub const EXIT_VERDICT_FAILED: u8 = 1;
/// Exit status for unusable input: unreadable or malformed files, bad arguments.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "warrant",
    version,
    about = "Warrant: measured boot, sealing and attestation for locked-down nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// TCG firmware event logs (binary_bios_measurements).
    #[command(subcommand)]
    Eventlog(eventlog_cmd::EventlogCommand),
    /// Linux IMA measurement lists.
    #[command(subcommand)]
    Ima(ima_cmd::ImaCommand),
    /// dm-verity hash trees of read-only images.
    #[command(subcommand)]
    Verity(verity_cmd::VerityCommand),
    /// Unified Kernel Images: sections, PCR 11 prediction, signed PCR policies.
    #[command(subcommand)]
    Uki(uki_cmd::UkiCommand),
    /// The TPM: PCRs, endorsement key, attestation key, quotes.
    #[command(subcommand)]
    Tpm(tpm_cmd::TpmCommand),
    /// The node agent: measures the boot, attests to a verifier, keeps the join credential.
    #[command(subcommand)]
    Agent(agent_cmd::AgentCommand),
    /// LUKS2 volumes unlocked by the TPM on a proven boot (systemd-tpm2 tokens).
    #[command(subcommand)]
    Disk(disk_cmd::DiskCommand),
    /// Audit this node (or given files) against a hardening profile: exit 0 when it holds.
    Audit(audit_cmd::AuditArgs),
    /// Enforce a hardening profile's sysctls and kernel lockdown.
    #[command(subcommand)]
    Harden(audit_cmd::HardenCommand),
    /// Workload seccomp profiles (OCI/Docker JSON): check and compile to BPF.
    #[command(subcommand)]
    Seccomp(seccomp_cmd::SeccompCommand),
}

/// A failure with the exit status it maps to.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }
    pub fn verdict(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_VERDICT_FAILED,
            message: message.into(),
        }
    }
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

/// Reads expected PCR values: `{"sha256": {"0": "<hex>"}}`, or a replay report whose "banks"
/// member has that shape.
pub fn load_expected(path: &std::path::Path) -> Result<measure::pcr::PcrBanks, Failure> {
    let bytes = read_file(path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::input(format!("{}: not JSON: {e}", path.display())))?;
    let banks = value.get("banks").unwrap_or(&value);
    measure::pcr::PcrBanks::from_json(banks)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

/// One line per PCR value: `' sha256 PCR  7: <hex>'`.
pub fn write_banks(out: &mut String, banks: &measure::pcr::PcrBanks) {
    use std::fmt::Write as _;
    for (alg, pcrs) in banks.banks() {
        for (pcr, value) in pcrs {
            let _ = writeln!(
                out,
                "{:>7} PCR {pcr:>2}: {}",
                alg.name(),
                hex::encode(value)
            );
        }
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::input(format!("cannot render JSON: {e}")))?;
    text.push('\n');
    emit(&text)
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error of ours.
pub fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::input(format!("cannot write output: {e}"))),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eventlog(cmd) => eventlog_cmd::run(cmd),
        Command::Ima(cmd) => ima_cmd::run(cmd),
        Command::Verity(cmd) => verity_cmd::run(cmd),
        Command::Uki(cmd) => uki_cmd::run(cmd),
        Command::Tpm(cmd) => tpm_cmd::run(cmd),
        Command::Agent(cmd) => agent_cmd::run(cmd),
        Command::Disk(cmd) => disk_cmd::run(cmd),
        Command::Audit(args) => audit_cmd::run(args),
        Command::Harden(cmd) => audit_cmd::harden(cmd),
        Command::Seccomp(cmd) => seccomp_cmd::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("warrant: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
