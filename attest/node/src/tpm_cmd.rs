//! `warrant tpm pcrs|extend|ek|ak|quote|seal|unseal|svn`: the TPM through the `tpm` crate (see
//! docs/tpm.md and docs/sealing.md).

use crate::{emit, print_json, read_file, write_banks, Failure};
use clap::{Args, Subcommand, ValueEnum};
use measure::alg::HashAlg;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tpm::{
    AkAlg, AkRef, EkAlg, SealError, SealPolicy, SealedBlob, SignedPcrPolicy, Tpm, TpmError,
    Zeroizing,
};

/// The default TCTI: the kernel's TPM resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// Where `warrant tpm extend` records its measurements by default.
pub const DEFAULT_EVENT_LOG: &str = "/run/warrant/measurements.cel.json";

#[derive(Args)]
pub struct TctiArg {
    /// How to reach the TPM: device:/dev/tpmrm0, swtpm:host=H,port=P, mssim:..., tabrmd:...
    #[arg(long, env = "WARRANT_TCTI", default_value = DEFAULT_TCTI)]
    pub(crate) tcti: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AkAlgArg {
    /// ECDSA P-256 with SHA-256.
    Ecc,
    /// RSASSA-PKCS1-v1_5 2048 with SHA-256.
    Rsa,
}

#[derive(Subcommand)]
pub enum TpmCommand {
    /// Read all 24 PCRs of every allocated bank (or of --bank).
    Pcrs {
        #[command(flatten)]
        tcti: TctiArg,
        /// Only these banks (sha1, sha256, sha384, ...); repeatable.
        #[arg(long = "bank")]
        banks: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extend H(data) into PCR in every allocated bank and record it in the CEL event log.
    Extend {
        /// PCR index, 0 to 23 (16 is the debug PCR, 23 the application PCR).
        pcr: u32,
        /// The data to measure (its hash in each bank is extended).
        #[arg(long)]
        data: String,
        /// Warrant's measurement log (TCG Canonical Event Log, JSON).
        #[arg(long, value_name = "PATH", default_value = DEFAULT_EVENT_LOG)]
        event_log: PathBuf,
        #[command(flatten)]
        tcti: TctiArg,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the endorsement keys and the EK certificates stored in NV; check them with --ca.
    Ek {
        #[command(flatten)]
        tcti: TctiArg,
        /// Trusted manufacturer CAs: every *.pem, *.crt and *.der certificate in DIR.
        #[arg(long, value_name = "DIR")]
        ca: Option<PathBuf>,
        /// Extra intermediate CA certificates (PEM or DER), beyond those in the TPM's NV chain
        /// area (swtpm keeps none there: pass its issuercert.pem); repeatable.
        #[arg(long, value_name = "FILE")]
        intermediate: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make sure an attestation key is persisted at --handle: create one under the RSA EK if
    /// there is none (or with --replace), and show its public key.
    Ak {
        #[command(flatten)]
        tcti: TctiArg,
        /// Key type of a new AK.
        #[arg(long, value_enum, default_value = "ecc")]
        alg: AkAlgArg,
        /// Persistent handle of the AK.
        #[arg(long, value_name = "HANDLE", default_value = "0x81010002", value_parser = parse_handle)]
        handle: u32,
        /// Replace a key already at --handle.
        #[arg(long)]
        replace: bool,
        /// Write ak.pub (TPM2B_PUBLIC), ak.pem, ak.name (and ak.priv for a new key) here.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Quote PCRs with the persisted AK.
    Quote {
        #[command(flatten)]
        tcti: TctiArg,
        /// PCRs to quote, tpm2-tools style: sha256:0,1,7 or sha1:0+sha256:0,7.
        #[arg(long)]
        pcrs: String,
        /// The verifier's nonce, hex (at most 64 bytes).
        #[arg(long)]
        nonce: String,
        /// Persistent handle of the AK (see `warrant tpm ak`).
        #[arg(long, value_name = "HANDLE", default_value = "0x81010002", value_parser = parse_handle)]
        ak_handle: u32,
        /// Write quote.attest (TPMS_ATTEST), quote.sig (TPMT_SIGNATURE), pcrs.json, ak.pub,
        /// ak.pem here.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Seal a secret (at most 128 bytes) to PCR values (or to a policy key) under the SRK.
    Seal {
        #[command(flatten)]
        tcti: TctiArg,
        /// PCRs of the policy, e.g. 7,11.
        #[arg(long, value_delimiter = ',', required = true)]
        pcrs: Vec<u32>,
        /// PCR bank of the policy.
        #[arg(long, default_value = "sha256")]
        bank: String,
        /// Seal to PolicyAuthorize by this RSA public key (PEM "PUBLIC KEY") instead of the
        /// current PCR values: any PCR policy it signs (systemd .pcrsig) unseals.
        #[arg(long, value_name = "PUB.pem")]
        policy_key: Option<PathBuf>,
        /// Seal PCR to this value (hex) instead of its current one, e.g. the predicted value
        /// for the next boot: PCR=HEX; repeatable.
        #[arg(long = "value", value_name = "PCR=HEX", value_parser = parse_value)]
        values: Vec<(u32, Vec<u8>)>,
        /// Also require a PIN: read from $WARRANT_PIN, else from standard input.
        #[arg(long)]
        pin: bool,
        /// The secret to seal.
        input: PathBuf,
        /// Where to write the sealed blob (JSON).
        sealed: PathBuf,
    },
    /// Replay a real machine's firmware event log into a *software* TPM, extending each
    /// event's digests as its firmware did: the TPM then quotes the PCRs that log explains.
    /// For tests and demos; refused on a hardware TPM (device: or tabrmd: TCTI).
    SimulateBoot {
        #[command(flatten)]
        tcti: TctiArg,
        /// The firmware event log (binary_bios_measurements).
        #[arg(long, value_name = "PATH")]
        event_log: PathBuf,
    },
    /// The anti-rollback SVN counter in NV: init, show, advance (docs/sealing.md).
    #[command(subcommand)]
    Svn(crate::svn_cmd::SvnCommand),
    /// Unseal a blob written by `warrant tpm seal`; OUT is written only on success (mode 0600).
    Unseal {
        #[command(flatten)]
        tcti: TctiArg,
        /// The sealed blob.
        sealed: PathBuf,
        /// For a signed policy: the signed PCR policies (systemd .pcrsig JSON).
        #[arg(long, value_name = "PCRSIG.json")]
        signature: Option<PathBuf>,
        /// The blob needs a PIN: read from $WARRANT_PIN, else from standard input.
        #[arg(long)]
        pin: bool,
        /// Where to write the secret.
        out: PathBuf,
    },
}

fn parse_handle(text: &str) -> Result<u32, String> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("{text:?}: expected a hex handle such as 0x81010002"))?;
    u32::from_str_radix(hex, 16).map_err(|e| format!("{text:?}: {e}"))
}

pub fn run(cmd: TpmCommand) -> Result<(), Failure> {
    match cmd {
        TpmCommand::Pcrs { tcti, banks, json } => pcrs(&tcti.tcti, &banks, json),
        TpmCommand::Extend {
            pcr,
            data,
            event_log,
            tcti,
            json,
        } => extend(&tcti.tcti, pcr, &data, &event_log, json),
        TpmCommand::Ek {
            tcti,
            ca,
            intermediate,
            json,
        } => ek(&tcti.tcti, ca.as_deref(), &intermediate, json),
        TpmCommand::Ak {
            tcti,
            alg,
            handle,
            replace,
            out_dir,
            json,
        } => ak(&tcti.tcti, alg, handle, replace, out_dir.as_deref(), json),
        TpmCommand::Quote {
            tcti,
            pcrs,
            nonce,
            ak_handle,
            out_dir,
            json,
        } => quote(
            &tcti.tcti,
            &pcrs,
            &nonce,
            ak_handle,
            out_dir.as_deref(),
            json,
        ),
        TpmCommand::Seal {
            tcti,
            pcrs,
            bank,
            policy_key,
            values,
            pin,
            input,
            sealed,
        } => seal(
            &tcti.tcti,
            SealPolicy {
                bank: HashAlg::Sha256,
                pcrs,
                signed_by: None,
                values,
            },
            &bank,
            policy_key.as_deref(),
            pin,
            &input,
            &sealed,
        ),
        TpmCommand::SimulateBoot { tcti, event_log } => simulate_boot(&tcti.tcti, &event_log),
        TpmCommand::Svn(cmd) => crate::svn_cmd::run(cmd),
        TpmCommand::Unseal {
            tcti,
            sealed,
            signature,
            pin,
            out,
        } => unseal(&tcti.tcti, &sealed, signature.as_deref(), pin, &out),
    }
}

/// A sealing error: a refusal the user acts on (policy, PIN, TPM) is exit 1, the rest 2.
fn seal_failure(e: SealError) -> Failure {
    match e {
        SealError::PcrMismatch { .. }
        | SealError::DifferentTpm
        | SealError::WrongPin
        | SealError::Lockout { .. }
        | SealError::NoSignatureForThisBoot { .. }
        | SealError::WrongSigner => Failure::verdict(e.to_string()),
        _ => Failure::input(e.to_string()),
    }
}

/// The PIN, from $WARRANT_PIN or else standard input (one trailing newline removed).
fn read_pin() -> Result<Zeroizing<Vec<u8>>, Failure> {
    use std::io::Read as _;
    let mut pin = match std::env::var_os("WARRANT_PIN") {
        Some(v) => Zeroizing::new(v.into_encoded_bytes()),
        None => {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::input(format!("reading the PIN from stdin: {e}")))?;
            buf
        }
    };
    if pin.ends_with(b"\n") {
        pin.pop();
        if pin.ends_with(b"\r") {
            pin.pop();
        }
    }
    if pin.is_empty() {
        return Err(Failure::input(
            "--pin: the PIN is empty (set WARRANT_PIN or write it to stdin)",
        ));
    }
    Ok(pin)
}

/// The DER body of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
fn public_key_der(path: &Path) -> Result<Vec<u8>, Failure> {
    use base64::Engine as _;
    let text = read_file(path)?;
    let text = String::from_utf8(text)
        .map_err(|_| Failure::input(format!("{}: not PEM", path.display())))?;
    let bad = || {
        Failure::input(format!(
            "{}: not a PEM \"PUBLIC KEY\" (convert with `openssl pkey -pubout`)",
            path.display()
        ))
    };
    let body = text
        .split_once("-----BEGIN PUBLIC KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END PUBLIC KEY-----"))
        .map(|(body, _)| body)
        .ok_or_else(bad)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())
}

#[derive(serde::Deserialize)]
struct PcrSigEntry {
    pcrs: Vec<u32>,
    pkfp: String,
    pol: String,
    sig: String,
}

/// The entries of `bank` in a systemd `.pcrsig` JSON file.
fn read_pcrsig(path: &Path, bank: HashAlg) -> Result<Vec<SignedPcrPolicy>, Failure> {
    use base64::Engine as _;
    let bad = |what: &str| Failure::input(format!("{}: {what}", path.display()));
    let bytes = read_file(path)?;
    let mut all: std::collections::BTreeMap<String, Vec<PcrSigEntry>> =
        serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not a .pcrsig JSON: {e}")))?;
    let entries = all.remove(bank.name()).unwrap_or_default();
    entries
        .into_iter()
        .map(|e| {
            Ok(SignedPcrPolicy {
                pcrs: e.pcrs,
                pkfp: hex::decode(&e.pkfp).map_err(|_| bad("pkfp is not hex"))?,
                pol: hex::decode(&e.pol).map_err(|_| bad("pol is not hex"))?,
                sig: base64::engine::general_purpose::STANDARD
                    .decode(&e.sig)
                    .map_err(|_| bad("sig is not base64"))?,
            })
        })
        .collect()
}

/// Writes a secret with mode 0600.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |e: std::io::Error| Failure::input(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

fn parse_value(text: &str) -> Result<(u32, Vec<u8>), String> {
    let (pcr, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected PCR=HEX"))?;
    let pcr = pcr.parse().map_err(|e| format!("{pcr:?}: {e}"))?;
    let value = hex::decode(value).map_err(|e| format!("{value:?}: {e}"))?;
    Ok((pcr, value))
}

/// `policy.bank` and `policy.signed_by` are set here from `bank` and `policy_key`.
fn seal(
    tcti: &str,
    mut policy: SealPolicy,
    bank: &str,
    policy_key: Option<&Path>,
    pin: bool,
    input: &Path,
    sealed: &Path,
) -> Result<(), Failure> {
    let bank = HashAlg::from_name(bank).ok_or_else(|| {
        Failure::input(format!(
            "unknown bank {bank:?} (known: sha1, sha256, sha384, sha512, sm3_256)"
        ))
    })?;
    let signed_by = policy_key.map(public_key_der).transpose()?;
    let secret = Zeroizing::new(read_file(input)?);
    let pin = if pin { Some(read_pin()?) } else { None };
    let mut tpm = open(tcti)?;
    policy.bank = bank;
    policy.signed_by = signed_by;
    let blob = tpm
        .seal(&secret, &policy, pin.as_deref().map(Vec::as_slice))
        .map_err(seal_failure)?;
    std::fs::write(sealed, blob.to_json())
        .map_err(|e| Failure::input(format!("{}: {e}", sealed.display())))
}

fn unseal(
    tcti: &str,
    sealed: &Path,
    signature: Option<&Path>,
    pin: bool,
    out: &Path,
) -> Result<(), Failure> {
    let blob = SealedBlob::from_json(&read_file(sealed)?)
        .map_err(|e| Failure::input(format!("{}: {e}", sealed.display())))?;
    let signatures = signature
        .map(|p| read_pcrsig(p, blob.bank))
        .transpose()?
        .unwrap_or_default();
    let pin = if pin { Some(read_pin()?) } else { None };
    let mut tpm = open(tcti)?;
    let secret = tpm
        .unseal(&blob, pin.as_deref().map(Vec::as_slice), &signatures)
        .map_err(seal_failure)?;
    write_secret(out, &secret)
}

/// A TPM error as a failure: bad input (exit 2) for everything here, since none of these
/// commands has a negative verdict of its own.
pub(crate) fn tpm_failure(e: TpmError) -> Failure {
    Failure::input(e.to_string())
}

pub(crate) fn open(tcti: &str) -> Result<Tpm, Failure> {
    Tpm::open(tcti).map_err(tpm_failure)
}

fn write_out(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

fn pcrs(tcti: &str, banks: &[String], json: bool) -> Result<(), Failure> {
    let algs = banks
        .iter()
        .map(|b| {
            HashAlg::from_name(b).ok_or_else(|| {
                Failure::input(format!(
                    "unknown bank {b:?} (known: sha1, sha256, sha384, sha512, sm3_256)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut tpm = open(tcti)?;
    let values = tpm.read_pcrs(&algs).map_err(tpm_failure)?;
    if json {
        return print_json(&values);
    }
    let mut out = String::new();
    write_banks(&mut out, &values);
    emit(&out)
}

fn extend(tcti: &str, pcr: u32, data: &str, log: &Path, json: bool) -> Result<(), Failure> {
    let mut tpm = open(tcti)?;
    let record = tpm.extend(pcr, data, log).map_err(tpm_failure)?;
    if json {
        return print_json(&record);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "extended PCR {pcr}; record {} in {}",
        record.recnum,
        log.display()
    );
    for d in &record.digests {
        let _ = writeln!(out, "{:>7}: {}", d.hash_alg, d.digest);
    }
    emit(&out)
}

#[derive(Serialize)]
struct CertReport {
    index: String,
    what: &'static str,
    der: String,
}

#[derive(Serialize)]
struct Verification {
    index: String,
    verified: bool,
    root_subject: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct EkReport {
    tcti: String,
    ek_public: std::collections::BTreeMap<&'static str, String>,
    certificates: Vec<CertReport>,
    nv_chain: Vec<CertReport>,
    verification: Option<Vec<Verification>>,
}

/// Certificates from a PEM or DER file: every CERTIFICATE block of a PEM file (other blocks,
/// such as keys, are not certificates and are passed over), or the whole DER file.
pub(crate) fn load_certificates(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = read_file(path)?;
    if bytes.starts_with(b"-----BEGIN") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let mut out = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
            let pem =
                pem.map_err(|e| Failure::input(format!("{}: bad PEM: {e}", path.display())))?;
            if pem.label == "CERTIFICATE" {
                out.push(pem.contents);
            }
        }
        Ok(out)
    } else {
        Ok(vec![bytes])
    }
}

pub(crate) fn ca_roots(dir: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "pem" | "crt" | "der") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut roots = Vec::new();
    for p in paths {
        roots.extend(load_certificates(&p)?);
    }
    if roots.is_empty() {
        return Err(Failure::input(format!(
            "{}: no certificates (*.pem, *.crt, *.der)",
            dir.display()
        )));
    }
    Ok(roots)
}

fn ek(tcti: &str, ca: Option<&Path>, intermediates: &[PathBuf], json: bool) -> Result<(), Failure> {
    // Read the CA files before touching the TPM: bad input fails fast.
    let roots = ca.map(ca_roots).transpose()?;
    let mut extra = Vec::new();
    for p in intermediates {
        extra.extend(load_certificates(p)?);
    }
    let mut tpm = open(tcti)?;
    let mut ek_public = std::collections::BTreeMap::new();
    for alg in [EkAlg::Rsa2048, EkAlg::EccP256] {
        let spki = tpm.ek_public(alg).map_err(tpm_failure)?;
        ek_public.insert(alg.name(), hex::encode(spki));
    }
    let certs = tpm.ek_certificates().map_err(tpm_failure)?;
    let chain = tpm.ek_chain().map_err(tpm_failure)?;
    let report_cert = |c: &tpm::NvCertificate| CertReport {
        index: format!("{:#010x}", c.index),
        what: c.what,
        der: hex::encode(&c.der),
    };
    let mut verification = None;
    let mut failed = Vec::new();
    if let Some(roots) = &roots {
        if certs.is_empty() {
            return Err(Failure::verdict(
                "the TPM holds no EK certificate to verify",
            ));
        }
        let mut inter: Vec<Vec<u8>> = chain.iter().map(|c| c.der.clone()).collect();
        inter.extend(extra);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut results = Vec::new();
        for c in &certs {
            let index = format!("{:#010x}", c.index);
            match policy::ek::verify_ek_chain(&c.der, &inter, roots, now) {
                Ok(v) => results.push(Verification {
                    index,
                    verified: true,
                    root_subject: Some(v.root_subject),
                    error: None,
                }),
                Err(e) => {
                    failed.push(format!("{index} ({}): {e}", c.what));
                    results.push(Verification {
                        index,
                        verified: false,
                        root_subject: None,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        verification = Some(results);
    }
    let report = EkReport {
        tcti: tcti.to_string(),
        ek_public,
        certificates: certs.iter().map(report_cert).collect(),
        nv_chain: chain.iter().map(report_cert).collect(),
        verification,
    };
    if json {
        print_json(&report)?;
    } else {
        let mut out = String::new();
        for (alg, spki) in &report.ek_public {
            let _ = writeln!(out, "EK {alg}: SubjectPublicKeyInfo {spki}");
        }
        for c in &report.certificates {
            let _ = writeln!(
                out,
                "NV {}: {} ({} bytes)",
                c.index,
                c.what,
                c.der.len() / 2
            );
        }
        if report.certificates.is_empty() {
            let _ = writeln!(out, "no EK certificate in NV");
        }
        let _ = writeln!(
            out,
            "NV chain area: {} certificate(s)",
            report.nv_chain.len()
        );
        for v in report.verification.iter().flatten() {
            match (&v.root_subject, &v.error) {
                (Some(root), _) => {
                    let _ = writeln!(out, "NV {}: chain verified to {root}", v.index);
                }
                (_, Some(e)) => {
                    let _ = writeln!(out, "NV {}: NOT verified: {e}", v.index);
                }
                _ => {}
            }
        }
        emit(&out)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::verdict(format!(
            "EK certificate chain: {}",
            failed.join("; ")
        )))
    }
}

#[derive(Serialize)]
struct AkReport {
    handle: String,
    created: bool,
    tpm2b_public: String,
    spki: String,
    name: String,
}

fn ak(
    tcti: &str,
    alg: AkAlgArg,
    handle: u32,
    replace: bool,
    out_dir: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let mut tpm = open(tcti)?;
    let ak_ref = AkRef::Persistent(handle);
    let existing = match tpm.ak_public(&ak_ref) {
        Ok(p) if !replace => Some(p),
        Ok(_) | Err(TpmError::NoKeyAt { .. }) => None,
        Err(e) => return Err(tpm_failure(e)),
    };
    let (public, blobs) = match existing {
        Some(p) => (p, None),
        None => {
            let alg = match alg {
                AkAlgArg::Ecc => AkAlg::EccP256,
                AkAlgArg::Rsa => AkAlg::Rsa2048,
            };
            let blobs = tpm.create_ak(EkAlg::Rsa2048, alg).map_err(tpm_failure)?;
            tpm.persist_ak(EkAlg::Rsa2048, &blobs, handle, replace)
                .map_err(tpm_failure)?;
            (tpm.ak_public(&ak_ref).map_err(tpm_failure)?, Some(blobs))
        }
    };
    if let Some(dir) = out_dir {
        write_out(dir, "ak.pub", &public.tpm2b_public)?;
        write_out(
            dir,
            "ak.pem",
            pem("PUBLIC KEY", &public.spki_der).as_bytes(),
        )?;
        write_out(dir, "ak.name", &public.name)?;
        if let Some(b) = &blobs {
            write_out(dir, "ak.priv", &b.private)?;
        }
    }
    let report = AkReport {
        handle: format!("{handle:#010x}"),
        created: blobs.is_some(),
        tpm2b_public: hex::encode(&public.tpm2b_public),
        spki: hex::encode(&public.spki_der),
        name: hex::encode(&public.name),
    };
    if json {
        return print_json(&report);
    }
    let verb = if report.created { "created" } else { "found" };
    emit(&format!(
        "AK {verb} at {}\nname: {}\n{}",
        report.handle,
        report.name,
        pem("PUBLIC KEY", &public.spki_der)
    ))
}

/// Parses `sha256:0,1,7+sha1:16`.
fn parse_selection(text: &str) -> Result<Vec<(HashAlg, Vec<u32>)>, Failure> {
    let bad = |why: String| Failure::input(format!("--pcrs {text:?}: {why}"));
    let mut out: Vec<(HashAlg, Vec<u32>)> = Vec::new();
    for part in text.split('+') {
        let (bank, list) = part
            .split_once(':')
            .ok_or_else(|| bad(format!("{part:?} is not BANK:PCR,PCR,...")))?;
        let alg = HashAlg::from_name(bank).ok_or_else(|| bad(format!("unknown bank {bank:?}")))?;
        if out.iter().any(|(a, _)| *a == alg) {
            return Err(bad(format!("bank {bank} given twice")));
        }
        let mut pcrs = Vec::new();
        for p in list.split(',') {
            let n: u32 = p
                .parse()
                .ok()
                .filter(|n| *n <= measure::pcr::MAX_PCR)
                .ok_or_else(|| bad(format!("{p:?} is not a PCR index 0..=23")))?;
            pcrs.push(n);
        }
        out.push((alg, pcrs));
    }
    Ok(out)
}

#[derive(Serialize)]
struct QuoteReport<'a> {
    ak_handle: String,
    nonce: String,
    attest: String,
    signature: String,
    attempts: usize,
    pcrs: &'a measure::pcr::PcrBanks,
}

fn quote(
    tcti: &str,
    pcrs: &str,
    nonce: &str,
    ak_handle: u32,
    out_dir: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let selection = parse_selection(pcrs)?;
    let nonce_bytes =
        hex::decode(nonce).map_err(|e| Failure::input(format!("--nonce is not hex: {e}")))?;
    let mut tpm = open(tcti)?;
    let ak_ref = AkRef::Persistent(ak_handle);
    let q = tpm
        .quote(&ak_ref, &selection, &nonce_bytes)
        .map_err(|e| match e {
            TpmError::NoKeyAt { handle } => Failure::input(format!(
                "no AK at {handle:#010x}: create one with `warrant tpm ak --handle {handle:#010x}`"
            )),
            e => tpm_failure(e),
        })?;
    if let Some(dir) = out_dir {
        let public = tpm.ak_public(&ak_ref).map_err(tpm_failure)?;
        write_out(dir, "quote.attest", &q.attest)?;
        write_out(dir, "quote.sig", &q.signature)?;
        let mut banks = serde_json::to_string_pretty(&q.pcrs)
            .map_err(|e| Failure::input(format!("cannot render JSON: {e}")))?;
        banks.push('\n');
        write_out(dir, "pcrs.json", banks.as_bytes())?;
        write_out(dir, "ak.pub", &public.tpm2b_public)?;
        write_out(
            dir,
            "ak.pem",
            pem("PUBLIC KEY", &public.spki_der).as_bytes(),
        )?;
    }
    let report = QuoteReport {
        ak_handle: format!("{ak_handle:#010x}"),
        nonce: hex::encode(&nonce_bytes),
        attest: hex::encode(&q.attest),
        signature: hex::encode(&q.signature),
        attempts: q.attempts,
        pcrs: &q.pcrs,
    };
    if json {
        return print_json(&report);
    }
    let mut out = String::new();
    let _ = writeln!(out, "attest: {}", report.attest);
    let _ = writeln!(out, "signature: {}", report.signature);
    write_banks(&mut out, &q.pcrs);
    emit(&out)
}

/// See [`TpmCommand::SimulateBoot`].
fn simulate_boot(tcti: &str, path: &Path) -> Result<(), Failure> {
    let bytes = read_file(path)?;
    let log = measure::eventlog::EventLog::parse(&bytes)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let replay = measure::eventlog::replay::replay(&log);
    if replay.startup_locality != 0 {
        return Err(Failure::input(format!(
            "{}: PCR 0 starts at locality {}: a software TPM started at locality 0 cannot \
             reproduce it",
            path.display(),
            replay.startup_locality
        )));
    }
    let mut tpm = open(tcti)?;
    if matches!(
        tpm.tcti().transport(),
        tpm::tcti::Transport::Device | tpm::tcti::Transport::Tabrmd
    ) {
        return Err(Failure::input(
            "simulate-boot writes a firmware log into the PCRs: only for a software TPM \
             (swtpm: or mssim:), never a real one",
        ));
    }
    let banks = tpm.allocated_banks().map_err(tpm_failure)?;
    let mut extended = 0usize;
    for event in &log.events {
        if event.event_type == measure::eventlog::EventType::EV_NO_ACTION {
            continue;
        }
        let digests: Vec<(HashAlg, Vec<u8>)> = banks
            .iter()
            .filter_map(|b| event.digest(*b).map(|d| (*b, d.to_vec())))
            .collect();
        if digests.is_empty() {
            return Err(Failure::input(format!(
                "{}: event {} has no digest for any bank this TPM has",
                path.display(),
                event.number
            )));
        }
        tpm.extend_digests(event.pcr, &digests)
            .map_err(tpm_failure)?;
        extended += 1;
    }
    emit(&format!(
        "extended {extended} events of {} into the TPM\n",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpm::DEFAULT_AK_HANDLE;

    #[test]
    fn selections_parse_strictly() {
        let s = parse_selection("sha256:0,1,7+sha1:16").unwrap_or_default();
        assert_eq!(
            s,
            vec![(HashAlg::Sha256, vec![0, 1, 7]), (HashAlg::Sha1, vec![16])]
        );
        for bad in [
            "sha256",
            "md5:0",
            "sha256:24",
            "sha256:0+sha256:1",
            "sha256:",
        ] {
            assert!(parse_selection(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_handle("0x81010002"), Ok(DEFAULT_AK_HANDLE));
        assert!(parse_handle("81010002").is_err());
    }
}
