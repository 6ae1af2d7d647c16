//! `warrant uki inspect|predict-pcr11|sign-policy`: Unified Kernel Images. This file reads the
//! files; `measure::uki` does the work on bytes.

use crate::{emit, print_json, read_file, Failure};
use clap::Subcommand;
use measure::uki::policy::{self, PolicyPublicKey, PolicySigningKey};
use measure::uki::svn::{self, SvnBinding};
use measure::uki::{normalize_phases, MeasuredSection, Uki, DEFAULT_BANKS};
use measure::HashAlg;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum UkiCommand {
    /// List a UKI's sections, its systemd-stub version and what that stub measures into PCR 11.
    Inspect {
        /// The UKI (a PE/COFF image built on systemd-stub).
        uki: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Use this systemd release's measurement table instead of the stub's own version.
        #[arg(long, value_name = "RELEASE")]
        assume_stub_version: Option<u32>,
    },
    /// Predict PCR 11 as systemd-stub and systemd-pcrphase will extend it. `--json` prints
    /// the same JSON as `systemd-measure calculate --json=pretty` for the UKI's sections.
    #[command(name = "predict-pcr11")]
    PredictPcr11 {
        uki: PathBuf,
        #[command(flatten)]
        opts: PredictOpts,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Predict PCR 11 and sign the TPM2 PolicyPCR digests with an RSA key, printing systemd's
    /// `.pcrsig` JSON (as `systemd-measure sign`).
    #[command(name = "sign-policy")]
    SignPolicy {
        uki: PathBuf,
        /// The RSA private key, PEM (PKCS#8 or PKCS#1, unencrypted).
        #[arg(long, alias = "private-key", value_name = "KEY.pem")]
        key: PathBuf,
        /// The public key (PEM); must match the private key. Derived from it when omitted.
        #[arg(long, value_name = "PUB.pem")]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        opts: PredictOpts,
        #[command(flatten)]
        svn: SvnOpts,
        /// Pretty-print the JSON (default: one line, as stored in a `.pcrsig` section).
        #[arg(long)]
        json: bool,
    },
}

/// Anti-rollback: bind the signed policies to the image's security version number.
#[derive(clap::Args)]
pub struct SvnOpts {
    /// The image's security version number: each entry signs PolicyPCR(11) then
    /// PolicyNV(SVN counter <= SVN), so the image stops unsealing once the TPM's counter is
    /// advanced past it (sha256 bank only; docs/sealing.md, "Anti-rollback").
    #[arg(long, value_name = "SVN")]
    svn: Option<u64>,
    /// The SVN counter's NV index (default 0x01805752); its Name is computed from Warrant's
    /// fixed index attributes, unless --svn-index-name gives it.
    #[arg(long, value_name = "HANDLE", requires = "svn", value_parser = crate::svn_cmd::parse_nv_index)]
    svn_index: Option<u32>,
    /// The counter's Name as the TPM reports it (hex, `warrant tpm svn show`), for a counter
    /// not made by `warrant tpm svn init`.
    #[arg(long, value_name = "HEX", requires = "svn")]
    svn_index_name: Option<String>,
}

impl SvnOpts {
    fn binding(&self) -> Result<Option<SvnBinding>, Failure> {
        let Some(svn) = self.svn else {
            return Ok(None);
        };
        let index = self.svn_index.unwrap_or(svn::DEFAULT_SVN_INDEX);
        let index_name = match &self.svn_index_name {
            None => svn::svn_index_name(index),
            Some(text) => {
                let name = hex::decode(text)
                    .ok()
                    .filter(|n| n.len() == 34 && n.starts_with(&[0x00, 0x0b]))
                    .ok_or_else(|| {
                        Failure::input(format!(
                            "--svn-index-name {text:?}: expected 000b and 32 bytes of SHA-256, in hex"
                        ))
                    })?;
                name
            }
        };
        Ok(Some(SvnBinding {
            svn,
            index,
            index_name,
        }))
    }
}

#[derive(clap::Args)]
pub struct PredictOpts {
    /// Boot phases (colon-separated words; repeat or separate with commas). Default:
    /// enter-initrd, enter-initrd:leave-initrd, enter-initrd:leave-initrd:sysinit,
    /// enter-initrd:leave-initrd:sysinit:ready. As systemd-measure, given phases are sorted.
    #[arg(
        long = "phase",
        alias = "phases",
        value_delimiter = ',',
        value_name = "PHASE"
    )]
    phases: Vec<String>,
    /// PCR banks (sha1, sha256, sha384, sha512; repeat or separate with commas).
    /// Default: sha256,sha384,sha512.
    #[arg(
        long = "bank",
        alias = "banks",
        value_delimiter = ',',
        value_name = "BANK"
    )]
    banks: Vec<String>,
    /// Use this systemd release's measurement table instead of the stub's own version.
    #[arg(long, value_name = "RELEASE")]
    assume_stub_version: Option<u32>,
}

impl PredictOpts {
    /// Banks sorted and deduplicated (systemd-measure sorts them too).
    fn banks(&self) -> Result<Vec<HashAlg>, Failure> {
        if self.banks.is_empty() {
            return Ok(DEFAULT_BANKS.to_vec());
        }
        let mut out = Vec::new();
        for b in &self.banks {
            let alg = HashAlg::from_name(&b.to_ascii_lowercase())
                .filter(|a| *a != HashAlg::Sm3_256)
                .ok_or_else(|| {
                    Failure::input(format!("unknown bank {b:?} (sha1, sha256, sha384, sha512)"))
                })?;
            out.push(alg);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

pub fn run(cmd: UkiCommand) -> Result<(), Failure> {
    match cmd {
        UkiCommand::Inspect {
            uki,
            json,
            assume_stub_version,
        } => inspect(&uki, json, assume_stub_version),
        UkiCommand::PredictPcr11 { uki, opts, json } => predict(&uki, &opts, json),
        UkiCommand::SignPolicy {
            uki,
            key,
            public_key,
            opts,
            svn,
            json,
        } => sign(&uki, &key, public_key.as_deref(), &opts, &svn, json),
    }
}

fn parse<'a>(path: &Path, bytes: &'a [u8], assume: Option<u32>) -> Result<Uki<'a>, Failure> {
    Uki::parse_assuming(bytes, assume)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

#[derive(Serialize)]
struct InspectReport<'a> {
    stub: &'a Option<measure::uki::stub::StubVersion>,
    /// The systemd release whose measurement table applies.
    measurement_table: u32,
    machine: u16,
    size_of_image: u32,
    sections: &'a [measure::uki::pe::Section],
    measured: Vec<MeasuredSection>,
}

fn inspect(path: &Path, json: bool, assume: Option<u32>) -> Result<(), Failure> {
    let bytes = read_file(path)?;
    let uki = parse(path, &bytes, assume)?;
    let report = InspectReport {
        stub: &uki.stub,
        measurement_table: uki.profile.major,
        machine: uki.pe.machine,
        size_of_image: uki.pe.size_of_image,
        sections: &uki.pe.sections,
        measured: uki.measured_sections(),
    };
    if json {
        return print_json(&report);
    }
    let mut out = String::new();
    match &uki.stub {
        Some(v) => {
            let _ = writeln!(out, "systemd-stub {} (release {})", v.version, v.major);
        }
        None => {
            let _ = writeln!(out, "systemd-stub: no .sdmagic");
        }
    }
    let _ = writeln!(
        out,
        "measurement table: systemd {}",
        report.measurement_table
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>10} {:>10}  PCR 11",
        "section", "vaddr", "vsize", "file-off", "file-size"
    );
    let order = uki.profile.measured;
    for s in &uki.pe.sections {
        let measured = report
            .measured
            .iter()
            .position(|m| s.is_named(m.name))
            .map(|i| format!("measured #{}", i + 1))
            .unwrap_or_else(|| {
                if order.iter().any(|n| s.is_named(n)) {
                    "empty, skipped".into()
                } else {
                    "-".into()
                }
            });
        let _ = writeln!(
            out,
            "{:<10} {:>#10x} {:>#10x} {:>#10x} {:>#10x}  {measured}",
            s.name, s.virtual_address, s.virtual_size, s.pointer_to_raw_data, s.size_of_raw_data
        );
    }
    emit(&out)
}

fn predict(path: &Path, opts: &PredictOpts, json: bool) -> Result<(), Failure> {
    let bytes = read_file(path)?;
    let uki = parse(path, &bytes, opts.assume_stub_version)?;
    let banks = opts.banks()?;
    let phases = normalize_phases(&opts.phases);
    let prediction = uki
        .predict(&banks, &phases)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    if json {
        return print_json(&prediction);
    }
    // systemd-measure's text form: `11:<bank>=<hex>`, grouped by phase.
    let mut out = String::new();
    for (i, phase) in phases.iter().enumerate() {
        let shown = if phase.is_empty() { ":" } else { phase };
        let _ = writeln!(out, "# PCR[11] Phase <{shown}>");
        for (bank, values) in &prediction.0 {
            if let Some(v) = values.get(i) {
                let _ = writeln!(out, "11:{bank}={}", hex::encode(&v.hash));
            }
        }
    }
    emit(&out)
}

fn sign(
    path: &Path,
    key_path: &Path,
    public_path: Option<&Path>,
    opts: &PredictOpts,
    svn_opts: &SvnOpts,
    pretty: bool,
) -> Result<(), Failure> {
    let binding = svn_opts.binding()?;
    if binding.is_some() && opts.banks()? != [HashAlg::Sha256] && !opts.banks.is_empty() {
        return Err(Failure::input(
            "--svn signs the sha256 bank only (PolicyAuthorize checks a SHA-256 digest): drop --bank or give --bank sha256",
        ));
    }
    let bytes = read_file(path)?;
    let uki = parse(path, &bytes, opts.assume_stub_version)?;
    let mut pem = read_file(key_path)?;
    let key = PolicySigningKey::from_pem(&pem);
    // Do not leave the private key's PEM lying in freed memory longer than needed.
    pem.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&pem);
    let key = key.map_err(|e| Failure::input(format!("{}: {e}", key_path.display())))?;
    let public = match public_path {
        Some(p) => Some(
            PolicyPublicKey::from_pem(&read_file(p)?)
                .map_err(|e| Failure::input(format!("{}: {e}", p.display())))?,
        ),
        None => None,
    };
    let phases = normalize_phases(&opts.phases);
    if let Some(binding) = &binding {
        let signed = svn::sign_svn_policies(
            &uki,
            &key,
            public.as_ref(),
            &phases,
            binding,
            blinding_seed()?,
        )
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
        return print_signature(&signed, pretty);
    }
    let banks = opts.banks()?;
    let signed = policy::sign_policies(
        &uki,
        &key,
        public.as_ref(),
        &banks,
        &phases,
        blinding_seed()?,
    )
    .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    print_signature(&signed, pretty)
}

/// The `.pcrsig` JSON: one line (as stored in the section), or pretty.
fn print_signature(signed: &impl Serialize, pretty: bool) -> Result<(), Failure> {
    if pretty {
        return print_json(signed);
    }
    let mut text = serde_json::to_string(signed)
        .map_err(|e| Failure::input(format!("cannot render JSON: {e}")))?;
    text.push('\n');
    emit(&text)
}

/// 32 bytes from the kernel's CSPRNG, to blind the RSA private-key operation.
fn blinding_seed() -> Result<[u8; 32], Failure> {
    use std::io::Read as _;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Failure::input(format!("/dev/urandom: {e}")))?;
    Ok(seed)
}
