//! `warrant ima replay`.

use crate::Failure;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ImaCommand {
    /// Replay an IMA measurement list (ASCII or binary) into PCR 10 of every bank.
    Replay {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ImaCommand) -> Result<(), Failure> {
    match cmd {
        ImaCommand::Replay { file, .. } => Err(Failure::input(format!(
            "{}: IMA replay is not wired yet",
            file.display()
        ))),
    }
}
