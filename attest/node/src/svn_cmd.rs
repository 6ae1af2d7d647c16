//! `warrant tpm svn init|show|advance`: the anti-rollback counter in TPM NV (the `tpm` crate's
//! `rollback` module; docs/sealing.md, "Anti-rollback").

use crate::tpm_cmd::{open, TctiArg};
use crate::{emit, print_json, Failure};
use clap::{Args, Subcommand};
use serde::Serialize;
use tpm::rollback::{RollbackError, SvnState, DEFAULT_SVN_INDEX};

/// The options every `svn` subcommand takes: which TPM, which counter, and the output form.
#[derive(Args)]
pub struct CounterArgs {
    #[command(flatten)]
    tcti: TctiArg,
    /// The NV index of the SVN counter (owner range 0x01800000..=0x01bfffff).
    #[arg(long, value_name = "HANDLE", default_value = "0x01805752", value_parser = parse_nv_index)]
    index: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum SvnCommand {
    /// Define the SVN counter (owner authorisation, empty by default) and initialise it;
    /// an existing counter is left as it is.
    Init(CounterArgs),
    /// The counter: images whose SVN is at least this value unseal.
    Show(CounterArgs),
    /// Raise the counter to SVN (never lowers it): images below SVN stop unsealing.
    Advance {
        /// The SVN of the image now booted (or the lowest SVN still allowed).
        svn: u64,
        #[command(flatten)]
        counter: CounterArgs,
    },
}

/// `0x` and hex digits, in the owner NV range.
pub fn parse_nv_index(text: &str) -> Result<u32, String> {
    let index = tpm::rollback::parse_index(text).ok_or_else(|| {
        format!("{text:?}: expected a hex NV index such as {DEFAULT_SVN_INDEX:#010x}")
    })?;
    if !tpm::rollback::is_owner_nv_index(index) {
        return Err(format!(
            "{text:?}: not an owner NV index (0x01800000..=0x01bfffff)"
        ));
    }
    Ok(index)
}

/// Exit 1 for what the TPM's state refuses (rolled back; counter missing, foreign or
/// uninitialised; owner authorisation refused), 2 for bad input or a TPM failure.
pub fn rollback_failure(e: RollbackError) -> Failure {
    match e {
        RollbackError::RolledBack { .. }
        | RollbackError::IndexMissing { .. }
        | RollbackError::NotSvnIndex { .. }
        | RollbackError::Uninitialized { .. }
        | RollbackError::NameMismatch { .. }
        | RollbackError::OwnerAuth { .. } => Failure::verdict(e.to_string()),
        RollbackError::BadIndex { .. }
        | RollbackError::StepTooLarge { .. }
        | RollbackError::BadToken { .. }
        | RollbackError::Tpm(_) => Failure::input(e.to_string()),
    }
}

#[derive(Serialize)]
struct StateReport {
    index: String,
    svn: u64,
    name: String,
}

impl From<&SvnState> for StateReport {
    fn from(s: &SvnState) -> Self {
        StateReport {
            index: format!("{:#010x}", s.index),
            svn: s.value,
            name: hex::encode(&s.name),
        }
    }
}

#[derive(Serialize)]
struct AdvanceReport {
    index: String,
    before: u64,
    after: u64,
    name: String,
}

pub fn run(cmd: SvnCommand) -> Result<(), Failure> {
    match cmd {
        SvnCommand::Init(counter) => {
            let mut tpm = open(&counter.tcti.tcti)?;
            let state = tpm.svn_init(counter.index).map_err(rollback_failure)?;
            show_state(&state, counter.json)
        }
        SvnCommand::Show(counter) => {
            let mut tpm = open(&counter.tcti.tcti)?;
            let state = tpm.svn_read(counter.index).map_err(rollback_failure)?;
            show_state(&state, counter.json)
        }
        SvnCommand::Advance { svn, counter } => {
            let mut tpm = open(&counter.tcti.tcti)?;
            let (before, after) = tpm
                .svn_advance(counter.index, svn)
                .map_err(rollback_failure)?;
            if counter.json {
                return print_json(&AdvanceReport {
                    index: format!("{:#010x}", after.index),
                    before: before.value,
                    after: after.value,
                    name: hex::encode(&after.name),
                });
            }
            emit(&if after.value == before.value {
                format!(
                    "SVN counter {:#010x}: {} (unchanged: it never goes down)\n",
                    after.index, after.value
                )
            } else {
                format!(
                    "SVN counter {:#010x}: {} -> {}; images with SVN below {} no longer unseal\n",
                    after.index, before.value, after.value, after.value
                )
            })
        }
    }
}

fn show_state(state: &SvnState, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(&StateReport::from(state));
    }
    emit(&format!(
        "SVN counter {:#010x}: {} (images signed with SVN {} or later unseal)\nname: {}\n",
        state.index,
        state.value,
        state.value,
        hex::encode(&state.name)
    ))
}
