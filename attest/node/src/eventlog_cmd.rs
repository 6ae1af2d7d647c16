//! `warrant eventlog show|replay`.

use crate::{emit, load_expected, print_json, read_file, write_banks, Failure};
use clap::Subcommand;
use measure::eventlog::replay::{self, Replay, ReplayError};
use measure::eventlog::{Event, EventData, EventLog};
use measure::pcr::PcrBanks;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum EventlogCommand {
    /// Print every event of a log, decoded.
    Show {
        /// The log: a copy of /sys/kernel/security/tpm0/binary_bios_measurements.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replay a log into PCR values, optionally checking them against expected values.
    Replay {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Expected PCR values, `{"sha256": {"0": "<hex>", ...}, ...}` (or a replay report with
        /// a "banks" member). Exits 1, naming the first PCR that disagrees, when replay differs.
        #[arg(long, value_name = "PCRS.json")]
        expect: Option<PathBuf>,
    },
}

pub fn run(cmd: EventlogCommand) -> Result<(), Failure> {
    match cmd {
        EventlogCommand::Show { file, json } => show(&file, json),
        EventlogCommand::Replay { file, json, expect } => {
            replay_cmd(&file, json, expect.as_deref())
        }
    }
}

fn load(file: &Path) -> Result<EventLog, Failure> {
    let bytes = read_file(file)?;
    EventLog::parse(&bytes)
        .map_err(|e| Failure::input(format!("{}: not a valid event log: {e}", file.display())))
}

#[derive(Serialize)]
struct ShownEvent<'a> {
    #[serde(flatten)]
    event: &'a Event,
    decoded: Option<EventData>,
    decode_error: Option<String>,
}

#[derive(Serialize)]
struct ShowReport<'a> {
    format: &'static str,
    spec_id: &'a Option<measure::eventlog::SpecIdEvent>,
    events: Vec<ShownEvent<'a>>,
    log_warnings: &'a [measure::eventlog::LogWarning],
}

fn show(file: &Path, json: bool) -> Result<(), Failure> {
    let log = load(file)?;
    let events: Vec<ShownEvent<'_>> = log
        .events
        .iter()
        .map(|event| match event.decode() {
            Ok(d) => ShownEvent {
                event,
                decoded: Some(d),
                decode_error: None,
            },
            Err(e) => ShownEvent {
                event,
                decoded: None,
                decode_error: Some(e.to_string()),
            },
        })
        .collect();
    if json {
        return print_json(&ShowReport {
            format: log.format.name(),
            spec_id: &log.spec_id,
            events,
            log_warnings: &log.warnings,
        });
    }
    let mut out = String::new();
    let _ = writeln!(out, "format: {}", log.format.name());
    if let Some(spec) = &log.spec_id {
        let algs: Vec<String> = spec
            .algorithms
            .iter()
            .map(|a| {
                a.algorithm.map_or_else(
                    || format!("{:#06x}", a.algorithm_id),
                    |x| x.name().to_string(),
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "spec id: {} (platform class {}, version {}.{} errata {}), banks: {}",
            spec.signature,
            spec.platform_class,
            spec.spec_version_major,
            spec.spec_version_minor,
            spec.spec_errata,
            algs.join(", ")
        );
    }
    for w in &log.warnings {
        let _ = writeln!(
            out,
            "warning: {}",
            serde_json::to_string(w).unwrap_or_default()
        );
    }
    for e in &events {
        let ev = e.event;
        let _ = writeln!(
            out,
            "#{} PCR {} {} ({} bytes at offset {})",
            ev.number,
            ev.pcr,
            ev.event_type,
            ev.data.len(),
            ev.offset
        );
        for d in &ev.digests {
            let name = d.algorithm.map_or_else(
                || format!("{:#06x}", d.algorithm_id),
                |a| a.name().to_string(),
            );
            let _ = writeln!(out, "    {name}: {}", hex::encode(&d.digest));
        }
        match (&e.decoded, &e.decode_error) {
            (Some(EventData::Unknown), _) => {
                let _ = writeln!(out, "    data: {}", hex_preview(&ev.data));
            }
            (Some(d), _) => {
                let _ = writeln!(out, "    {}", serde_json::to_string(d).unwrap_or_default());
            }
            (None, Some(err)) => {
                let _ = writeln!(out, "    undecodable: {err}");
                let _ = writeln!(out, "    data: {}", hex_preview(&ev.data));
            }
            (None, None) => {}
        }
    }
    emit(&out)
}

fn hex_preview(data: &[u8]) -> String {
    const MAX: usize = 64;
    if data.len() <= MAX {
        hex::encode(data)
    } else {
        format!(
            "{}... ({} bytes)",
            hex::encode(data.get(..MAX).unwrap_or_default()),
            data.len()
        )
    }
}

/// The report of `warrant eventlog replay --json`.
#[derive(Serialize)]
struct ReplayReport<'a> {
    format: &'static str,
    /// Every record of the log, the crypto-agile header included (so the last event number + 1).
    events: usize,
    banks: &'a PcrBanks,
    quirks: Vec<&'static str>,
    warnings: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatches: Option<&'a [replay::PcrMismatch]>,
}

fn report<'a>(
    log: &EventLog,
    r: &'a Replay,
    verified: Option<bool>,
    mismatches: Option<&'a [replay::PcrMismatch]>,
) -> ReplayReport<'a> {
    let mut warnings: Vec<serde_json::Value> = log
        .warnings
        .iter()
        .filter_map(|w| serde_json::to_value(w).ok())
        .collect();
    warnings.extend(
        r.warnings
            .iter()
            .filter_map(|w| serde_json::to_value(w).ok()),
    );
    ReplayReport {
        format: log.format.name(),
        events: log.events.len() + usize::from(log.spec_id.is_some()),
        banks: &r.banks,
        quirks: r.quirks.iter().map(|q| q.name.name()).collect(),
        warnings,
        verified,
        mismatches,
    }
}

fn replay_cmd(file: &Path, json: bool, expect: Option<&Path>) -> Result<(), Failure> {
    let log = load(file)?;
    let Some(expect) = expect else {
        let r = replay::replay(&log);
        return if json {
            print_json(&report(&log, &r, None, None))
        } else {
            print_text(&report(&log, &r, None, None), "")
        };
    };
    let expected = load_expected(expect)?;
    match replay::verify(&log, &expected) {
        Ok(v) => {
            let rep = report(&log, v.replay(), Some(true), None);
            if json {
                print_json(&rep)
            } else {
                print_text(&rep, "verified: every expected value reproduced\n")
            }
        }
        Err(err) => {
            let plain = replay::replay(&log);
            let mismatches = match &err {
                ReplayError::Mismatch { mismatches, .. } => Some(mismatches.as_slice()),
                ReplayError::NothingToCompare => None,
            };
            let rep = report(&log, &plain, Some(false), mismatches);
            if json {
                print_json(&rep)?;
            } else {
                print_text(&rep, "")?;
            }
            let code = match err {
                ReplayError::NothingToCompare => Failure::input,
                ReplayError::Mismatch { .. } => Failure::verdict,
            };
            Err(code(format!("{}: {err}", file.display())))
        }
    }
}

fn print_text(rep: &ReplayReport<'_>, footer: &str) -> Result<(), Failure> {
    let mut out = String::new();
    let _ = writeln!(out, "format: {}, {} events", rep.format, rep.events);
    write_banks(&mut out, rep.banks);
    for q in &rep.quirks {
        let _ = writeln!(out, "quirk applied: {q}");
    }
    for w in &rep.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push_str(footer);
    emit(&out)
}
