//! `warrant agent`: measures this boot, registers with a verifier, answers its challenges and
//! keeps the join credential it is given (see docs/protocol.md).
//!
//! What the agent measures, into [`AGENT_PCR`] (PCR 15), each recorded in Warrant's CEL log:
//! - `phase:agent-start`, once per boot;
//! - `verity-root-hash:<hex>`: the dm-verity root hash of the read-only root (from
//!   `--root-hash`, or `roothash=` on the kernel command line), once per boot.
//!
//! PCR 15 and not PCR 11: PCR 11 holds the UKI as systemd-stub measured it, exactly what
//! `warrant uki predict-pcr11` predicts and what disk keys are sealed to; extending the agent's
//! own events there would change every sealed policy. PCR 15 is systemd's "system identity"
//! PCR (root file system, machine ID), where the identity of the read-only root belongs, and no
//! firmware or boot loader touches it.

use crate::tpm_cmd::{ca_roots, load_certificates, open, tpm_failure};
use crate::{emit, print_json, Failure};
use clap::{Args, Subcommand};
use measure::alg::HashAlg;
use proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use proto::v1::verifier_client::VerifierClient;
use proto::v1::{
    ActivateRequest, AttestRequest, AttestResponse, ChallengeRequest, PcrValue, Quote,
    RegisterRequest, Verdict,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tpm::{AkAlg, AkBlobs, AkRef, EkAlg, Tpm, TpmError};

/// The PCR Warrant's agent extends (see the module documentation for why).
pub const AGENT_PCR: u32 = 15;
/// Where the kernel exposes the firmware's TCG event log.
pub const FIRMWARE_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// Where the kernel exposes the IMA measurement list.
pub const IMA_LOG: &str = "/sys/kernel/security/ima/ascii_runtime_measurements";
/// Largest log the agent will read and send (the verifier refuses larger messages anyway).
const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Measure this boot (once per boot), register, and attest; stay and re-attest unless --once.
    Attest(AttestArgs),
    /// Only measure this boot's agent phase and root hash into PCR 15 (once per boot).
    Measure(MeasureArgs),
    /// Confine this process as `agent attest` confines itself (seccomp allowlist, Landlock),
    /// then try what it must refuse (execve, ptrace, mount, namespaces, netlink, files outside
    /// its paths) and what it must still do; exit 0 when every probe came out as expected.
    #[command(name = "confine-check")]
    ConfineCheck(crate::confine::CheckArgs),
}

#[derive(Args)]
pub struct MeasureArgs {
    /// How to reach the TPM.
    #[arg(long, env = "WARRANT_TCTI", default_value = crate::tpm_cmd::DEFAULT_TCTI)]
    tcti: String,
    /// The dm-verity root hash of the read-only root (hex); default: `roothash=` from
    /// /proc/cmdline, if present.
    #[arg(long, value_name = "HEX", conflicts_with = "root_device")]
    root_hash: Option<String>,
    /// The read-only root's active dm-verity device (device-mapper name, e.g. `root`): its root
    /// hash is read from the kernel (`veritysetup status`) instead, and if dm-verity has met a
    /// corrupted block, `verity-corrupted:<name>` is measured too (never admitted).
    #[arg(long, value_name = "NAME")]
    root_device: Option<String>,
    /// Warrant's measurement log (CEL JSON). Keep it on a tmpfs (/run): one log per boot.
    #[arg(long, value_name = "PATH", default_value = crate::tpm_cmd::DEFAULT_EVENT_LOG)]
    event_log: PathBuf,
}

#[derive(Args)]
pub struct AttestArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    /// The verifier, e.g. https://verifier.example:7443
    #[arg(long, value_name = "URL")]
    verifier: String,
    /// The verifier's CA certificate (PEM), given out of band: it signs the verifier's server
    /// certificate and the node's credential.
    #[arg(long, value_name = "CERT")]
    ca: PathBuf,
    /// The name to join as (default: the hostname).
    #[arg(long)]
    name: Option<String>,
    /// Where the agent keeps its AK and its credential (client certificate and key, mode 0600).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/warrant")]
    state: PathBuf,
    /// The firmware event log to send.
    #[arg(long, value_name = "PATH", default_value = FIRMWARE_LOG)]
    firmware_log: PathBuf,
    /// The IMA measurement list to send when the verifier asks for it.
    #[arg(long, value_name = "PATH", default_value = IMA_LOG)]
    ima_log: PathBuf,
    /// Intermediate CA certificates of the EK certificate, beyond those in the TPM's NV
    /// (swtpm keeps none there); repeatable.
    #[arg(long, value_name = "FILE")]
    ek_intermediate: Vec<PathBuf>,
    /// The TLS name of the verifier, when it differs from the URL's host.
    #[arg(long)]
    tls_name: Option<String>,
    /// Attest once and exit: 0 when admitted, 1 when denied (with the verifier's reasons).
    #[arg(long)]
    once: bool,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
    /// Once the TPM is open and this boot measured, confine the agent: a seccomp allowlist
    /// (attest/node/seccomp/agent.json) and Landlock (its logs, CA and state folder only).
    #[arg(long, value_enum, default_value = "enforce", env = "WARRANT_CONFINE")]
    confine: crate::confine::Mode,
}

pub fn run(cmd: AgentCommand) -> Result<(), Failure> {
    match cmd {
        AgentCommand::Measure(args) => {
            let wanted = boot_measurements(&args)?; // bad input before the TPM is touched
            let mut tpm = open(&args.tcti)?;
            let done = measure_boot(&mut tpm, &args, wanted)?;
            emit(&done.join(""))
        }
        AgentCommand::Attest(args) => attest(&args),
        AgentCommand::ConfineCheck(args) => crate::confine::check(&args),
    }
}

/// Extends the agent's phase and the root hash into [`AGENT_PCR`] unless this boot's log
/// already holds them. Returns one line per action, for the user.
fn measure_boot(
    tpm: &mut Tpm,
    args: &MeasureArgs,
    wanted: Vec<String>,
) -> Result<Vec<String>, Failure> {
    let log = tpm::read_log(&args.event_log).map_err(tpm_failure)?;
    let mut lines = Vec::new();
    for data in wanted {
        let present = log.iter().any(|r| {
            r.pcr == AGENT_PCR
                && r.content.get("string").and_then(|s| s.as_str()) == Some(data.as_str())
        });
        if present {
            lines.push(format!("already measured this boot: {data}\n"));
            continue;
        }
        tpm.extend(AGENT_PCR, &data, &args.event_log)
            .map_err(tpm_failure)?;
        lines.push(format!("measured into PCR {AGENT_PCR}: {data}\n"));
    }
    Ok(lines)
}

/// What this boot's agent measures into [`AGENT_PCR`], in order.
fn boot_measurements(args: &MeasureArgs) -> Result<Vec<String>, Failure> {
    let mut wanted = vec!["phase:agent-start".to_string()];
    let mut corrupted = None;
    let root_hash = match (&args.root_hash, &args.root_device) {
        (Some(h), _) => Some(h.clone()),
        (None, Some(device)) => {
            let status = verity_status(device)?;
            if !status.status.starts_with("verified") {
                corrupted = Some(format!("verity-corrupted:{device}"));
            }
            Some(status.root_hash)
        }
        (None, None) => std::fs::read_to_string("/proc/cmdline")
            .ok()
            .and_then(|c| root_hash_from_cmdline(&c)),
    };
    if let Some(h) = root_hash {
        let bytes = hex::decode(h.trim())
            .map_err(|e| Failure::input(format!("root hash is not hex: {e}")))?;
        if !matches!(bytes.len(), 20 | 32 | 48 | 64) {
            return Err(Failure::input(format!(
                "root hash has {} bytes: not a SHA-1/256/384/512 digest",
                bytes.len()
            )));
        }
        wanted.push(format!("verity-root-hash:{}", hex::encode(bytes)));
    }
    wanted.extend(corrupted);
    Ok(wanted)
}

/// What the kernel says of an active dm-verity device. Fails closed: no veritysetup, no such
/// device, or a device that is not dm-verity is an error.
fn verity_status(device: &str) -> Result<policy::hardening::VerityStatus, Failure> {
    if !policy::appraise::is_dm_name(device) {
        return Err(Failure::input(format!(
            "--root-device {device:?}: a device-mapper name (letters, digits, - _ .)"
        )));
    }
    crate::audit_cmd::veritysetup_status(device).map_err(|e| {
        let (crate::audit_cmd::VerityQuery::Unavailable(why)
        | crate::audit_cmd::VerityQuery::Unreadable(why)) = e;
        Failure::input(format!("--root-device {device}: {why}"))
    })
}

/// `roothash=<hex>` (systemd-veritysetup-generator's parameter) from a kernel command line.
pub fn root_hash_from_cmdline(cmdline: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("roothash="))
        .map(str::to_string)
}

/// The AK the agent keeps in its state folder (blobs wrapped by the EK: useless off this TPM).
#[derive(Serialize, Deserialize)]
struct StoredAk {
    ek: String,
    public: String,
    private: String,
}

/// Files of the agent's state folder.
struct State {
    dir: PathBuf,
}

impl State {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::input(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes `name` atomically (temporary file, then rename), mode 0600.
    fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |p: &Path, e: std::io::Error| Failure::input(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let tmp = self.path(&format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        let dest = self.path(name);
        std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))
    }

    fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
    }
}

/// The EK the agent uses: RSA 2048 when the TPM has its certificate, else ECC P-256.
fn pick_ek(tpm: &mut Tpm) -> Result<(EkAlg, Vec<u8>), Failure> {
    let certs = tpm.ek_certificates().map_err(tpm_failure)?;
    for (alg, index) in [(EkAlg::Rsa2048, 0x01c0_0002), (EkAlg::EccP256, 0x01c0_000a)] {
        if let Some(c) = certs.iter().find(|c| c.index == index) {
            return Ok((alg, c.der.clone()));
        }
    }
    Err(Failure::input(
        "the TPM holds no RSA 2048 or ECC P-256 EK certificate (NV 0x01c00002 / 0x01c0000a): \
         the verifier cannot tell it is a genuine TPM",
    ))
}

fn load_or_create_ak(tpm: &mut Tpm, state: &State, ek: EkAlg) -> Result<AkRef, Failure> {
    if let Some(bytes) = state.read("ak.json")? {
        let stored: StoredAk = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::input(format!("{}: {e}", state.path("ak.json").display())))?;
        if stored.ek == ek.name() {
            let bad = |_| Failure::input(format!("{}: bad hex", state.path("ak.json").display()));
            let blobs = AkBlobs {
                public: hex::decode(&stored.public).map_err(bad)?,
                private: hex::decode(&stored.private).map_err(bad)?,
            };
            let ak = AkRef::Blobs { blobs, parent: ek };
            // A TPM that was cleared cannot load the old blobs: make a new AK then.
            match tpm.ak_public(&ak) {
                Ok(_) => return Ok(ak),
                Err(TpmError::Command { .. }) => {}
                Err(e) => return Err(tpm_failure(e)),
            }
        }
    }
    let blobs = tpm.create_ak(ek, AkAlg::EccP256).map_err(tpm_failure)?;
    let stored = StoredAk {
        ek: ek.name().to_string(),
        public: hex::encode(&blobs.public),
        private: hex::encode(&blobs.private),
    };
    let json = serde_json::to_vec_pretty(&stored)
        .map_err(|e| Failure::input(format!("cannot render the AK: {e}")))?;
    state.write_private("ak.json", &json)?;
    Ok(AkRef::Blobs { blobs, parent: ek })
}

fn read_capped(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    match std::fs::File::open(path) {
        Ok(f) => {
            let mut out = Vec::new();
            f.take(MAX_LOG_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
            if out.len() as u64 > MAX_LOG_BYTES {
                return Err(Failure::input(format!(
                    "{}: the {what} is larger than {MAX_LOG_BYTES} bytes",
                    path.display()
                )));
            }
            Ok(out)
        }
        // No log: send none; the verifier decides whether that is acceptable.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Failure::input(format!("{}: {e}", path.display()))),
    }
}

fn pcr_values(banks: &measure::pcr::PcrBanks) -> Vec<PcrValue> {
    let mut out = Vec::new();
    for (alg, pcrs) in banks.banks() {
        for (pcr, value) in pcrs {
            out.push(PcrValue {
                bank: alg.name().to_string(),
                pcr: *pcr,
                value: value.clone(),
            });
        }
    }
    out
}

fn rpc_failure(what: &str, status: &proto::tonic::Status) -> Failure {
    Failure::input(format!(
        "verifier refused {what}: {} ({:?})",
        status.message(),
        status.code()
    ))
}

/// A TLS channel to the verifier; with the node's credential when it has one.
async fn connect(args: &AttestArgs, identity: Option<Identity>) -> Result<Channel, Failure> {
    let ca = crate::read_file(&args.ca)?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(name) = &args.tls_name {
        tls = tls.domain_name(name.clone());
    }
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    let endpoint = Endpoint::from_shared(args.verifier.clone())
        .map_err(|e| Failure::input(format!("--verifier {}: {e}", args.verifier)))?
        .tls_config(tls)
        .map_err(|e| {
            Failure::input(format!(
                "TLS set-up with {}: {e}{}",
                args.ca.display(),
                std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ))
        })?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    endpoint.connect().await.map_err(|e| {
        Failure::input(format!(
            "cannot reach the verifier at {}: {e}{}",
            args.verifier,
            std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ))
    })
}

/// What one attestation round ended in.
#[derive(Serialize)]
struct Outcome {
    node_id: String,
    verdict: &'static str,
    findings: Vec<FindingReport>,
    credential: Option<CredentialReport>,
}

#[derive(Serialize)]
struct FindingReport {
    check: String,
    passed: bool,
    reason: String,
}

#[derive(Serialize)]
struct CredentialReport {
    certificate: PathBuf,
    key: PathBuf,
    bootstrap_token: PathBuf,
    serial: String,
    not_after: i64,
}

fn attest(args: &AttestArgs) -> Result<(), Failure> {
    // Read what can be wrong before touching the TPM or the network.
    if load_certificates(&args.ca)?.is_empty() {
        return Err(Failure::input(format!(
            "{}: no certificate (the verifier's CA certificate, PEM)",
            args.ca.display()
        )));
    }
    let mut intermediates = Vec::new();
    for p in &args.ek_intermediate {
        intermediates.extend(load_certificates(p)?);
    }
    let _ = ca_roots; // (the verifier, not the agent, decides which EK CAs to trust)

    // The privileged set-up: the TPM, this boot's measurements, the state folder. Then the
    // agent confines itself, before its runtime starts any thread (src/confine.rs).
    let wanted = boot_measurements(&args.measure)?; // bad input before the TPM is touched
    let mut tpm = open(&args.measure.tcti)?;
    for line in measure_boot(&mut tpm, &args.measure, wanted)? {
        if !args.json {
            emit(&line)?;
        }
    }
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure::input(format!("{}: {e}", args.state.display())))?;
    let mut read = crate::confine::Paths::system();
    read.extend([
        args.ca.clone(),
        args.firmware_log.clone(),
        args.ima_log.clone(),
        args.measure.event_log.clone(),
    ]);
    let paths = crate::confine::Paths {
        read,
        write: vec![args.state.clone()],
    };
    let confined = crate::confine::apply(args.confine, &paths)?;
    if !args.json {
        emit(&format!(
            "confined: seccomp {}, Landlock {}\n",
            confined.seccomp, confined.landlock
        ))?;
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::input(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        loop {
            let (outcome, interval) = attest_round(args, &mut tpm, &intermediates).await?;
            let admitted = outcome.verdict == "admitted";
            report(args, &outcome)?;
            if args.once || !admitted {
                return if admitted {
                    Ok(())
                } else {
                    Err(Failure::verdict(format!(
                        "node {} was not admitted",
                        outcome.node_id
                    )))
                };
            }
            tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
        }
    })
}

fn report(args: &AttestArgs, outcome: &Outcome) -> Result<(), Failure> {
    if args.json {
        return print_json(outcome);
    }
    let mut text = format!("node {}: {}\n", outcome.node_id, outcome.verdict);
    for f in outcome.findings.iter().filter(|f| !f.passed) {
        text.push_str(&format!("  refused: [{}] {}\n", f.check, f.reason));
    }
    if let Some(c) = &outcome.credential {
        text.push_str(&format!(
            "  credential: {} (serial {}, until {}), key {}, bootstrap token {}\n",
            c.certificate.display(),
            c.serial,
            c.not_after,
            c.key.display(),
            c.bootstrap_token.display()
        ));
    }
    emit(&text)
}

/// One round: register and activate if the node holds no credential, then challenge, quote
/// and attest. Returns the outcome and the re-attestation interval.
async fn attest_round(
    args: &AttestArgs,
    tpm: &mut Tpm,
    intermediates: &[Vec<u8>],
) -> Result<(Outcome, u64), Failure> {
    let state = State {
        dir: args.state.clone(),
    };
    let (ek_alg, ek_cert) = pick_ek(tpm)?;
    let ak = load_or_create_ak(tpm, &state, ek_alg)?;
    let ak_public = tpm.ak_public(&ak).map_err(tpm_failure)?;
    let identity = match (state.read("client.pem")?, state.read("client-key.pem")?) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(cert, key)),
        _ => None,
    };
    let has_credential = identity.is_some();
    let channel = connect(args, identity).await?;
    let mut client = VerifierClient::new(channel)
        .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(proto::MAX_MESSAGE_BYTES);

    let node_id = match state.read("node-id")? {
        Some(id) if has_credential => String::from_utf8_lossy(&id).trim().to_string(),
        _ => {
            let mut chain = intermediates.to_vec();
            chain.extend(
                tpm.ek_chain()
                    .map_err(tpm_failure)?
                    .into_iter()
                    .map(|c| c.der),
            );
            let name = match &args.name {
                Some(n) => n.clone(),
                None => hostname(),
            };
            let reg = client
                .register(RegisterRequest {
                    node_name: name,
                    ek_public: tpm.ek_public_tpm2b(ek_alg).map_err(tpm_failure)?,
                    ek_certificate: ek_cert,
                    ek_intermediates: chain,
                    ak_public: ak_public.tpm2b_public.clone(),
                })
                .await
                .map_err(|s| rpc_failure("the registration", &s))?
                .into_inner();
            let secret = tpm
                .activate_credential(&ak, ek_alg, &reg.credential_blob, &reg.encrypted_secret)
                .map_err(tpm_failure)?;
            client
                .activate(ActivateRequest {
                    node_id: reg.node_id.clone(),
                    secret: secret.expose().to_vec(),
                })
                .await
                .map_err(|s| rpc_failure("the activation", &s))?;
            state.write_private("node-id", reg.node_id.as_bytes())?;
            reg.node_id
        }
    };

    // Show the TPM's clock (reset and restart counts) when asking for the nonce.
    let clock_nonce = HashAlg::Sha256.hash(&proto::clock_quote_context(&node_id));
    let clock = tpm
        .quote(&ak, &[(HashAlg::Sha256, vec![0])], &clock_nonce)
        .map_err(tpm_failure)?;
    let challenge = client
        .challenge(ChallengeRequest {
            node_id: node_id.clone(),
            clock_quote: Some(Quote {
                attest: clock.attest,
                signature: clock.signature,
            }),
            clock_quote_pcrs: pcr_values(&clock.pcrs),
        })
        .await
        .map_err(|s| {
            // A credential the verifier no longer honours (revoked, unknown, or a node it no
            // longer considers activated) is dropped, so that the next attempt registers again
            // (and learns whether an operator must remove the node first).
            use proto::tonic::Code;
            let stale = matches!(
                s.code(),
                Code::PermissionDenied | Code::FailedPrecondition | Code::Unauthenticated
            );
            if has_credential && stale {
                for f in ["client.pem", "client-key.pem", "bootstrap-token"] {
                    state.remove(f);
                }
                let mut f = rpc_failure("the challenge", &s);
                f.message.push_str(
                    "; the local credential was dropped: the next attempt registers again",
                );
                return f;
            }
            rpc_failure("the challenge", &s)
        })?
        .into_inner();
    let mut selection = Vec::new();
    for s in &challenge.selection {
        let bank = HashAlg::from_name(&s.bank).ok_or_else(|| {
            Failure::input(format!("the verifier asked for an unknown bank {}", s.bank))
        })?;
        selection.push((bank, s.pcrs.clone()));
    }
    let quote = tpm
        .quote(&ak, &selection, &challenge.nonce)
        .map_err(tpm_failure)?;
    let firmware_log = read_capped(&args.firmware_log, "firmware event log")?;
    let warrant_log = read_capped(&args.measure.event_log, "measurement log")?;
    let ima_log = if challenge.want_ima {
        read_capped(&args.ima_log, "IMA measurement list")?
    } else {
        Vec::new()
    };
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| Failure::input(format!("cannot make a key: {e}")))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| Failure::input(format!("cannot make a certificate request: {e}")))?;
    let response: AttestResponse = client
        .attest(AttestRequest {
            node_id: node_id.clone(),
            nonce: challenge.nonce,
            quote: Some(Quote {
                attest: quote.attest,
                signature: quote.signature,
            }),
            pcrs: pcr_values(&quote.pcrs),
            firmware_event_log: firmware_log,
            warrant_event_log: warrant_log,
            ima_log,
            csr: csr.der().to_vec(),
        })
        .await
        .map_err(|s| rpc_failure("the attestation", &s))?
        .into_inner();

    let verdict = match Verdict::try_from(response.verdict) {
        Ok(Verdict::Admitted) => "admitted",
        Ok(Verdict::Revoked) => "revoked",
        _ => "denied",
    };
    let findings = response
        .findings
        .iter()
        .map(|f| FindingReport {
            check: f.check.clone(),
            passed: f.passed,
            reason: f.reason.clone(),
        })
        .collect();
    let mut credential = None;
    if verdict == "admitted" {
        let c = response.credential.ok_or_else(|| {
            Failure::input("the verifier admitted the node but sent no credential")
        })?;
        state.write_private("client-key.pem", key.serialize_pem().as_bytes())?;
        state.write_private("client.pem", c.client_certificate_pem.as_bytes())?;
        state.write_private("verifier-ca.pem", c.ca_certificate_pem.as_bytes())?;
        state.write_private("bootstrap-token", c.bootstrap_token.as_bytes())?;
        credential = Some(CredentialReport {
            certificate: state.path("client.pem"),
            key: state.path("client-key.pem"),
            bootstrap_token: state.path("bootstrap-token"),
            serial: c.serial,
            not_after: c.not_after,
        });
    } else {
        // A denied or revoked node keeps no credential.
        for f in ["client.pem", "client-key.pem", "bootstrap-token"] {
            state.remove(f);
        }
    }
    Ok((
        Outcome {
            node_id,
            verdict,
            findings,
            credential,
        },
        response.reattest_interval_secs,
    ))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::root_hash_from_cmdline;

    #[test]
    fn root_hash_comes_from_the_roothash_parameter() {
        assert_eq!(
            root_hash_from_cmdline("quiet roothash=abcd01 ro").as_deref(),
            Some("abcd01")
        );
        assert_eq!(root_hash_from_cmdline("quiet ro"), None);
    }
}
