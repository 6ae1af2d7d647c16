//! Parts for end-to-end attestation tests: a `warrant-verifier` process on a loopback port
//! with its own state folder, software-TPM nodes booted through a real machine's firmware log,
//! and a protocol client whose every message a test may tamper with.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code; each test binary uses a part

use measure::alg::HashAlg;
use proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use proto::v1::verifier_client::VerifierClient;
use proto::v1::{self, PcrValue};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use tests::swtpm::{Swtpm, SwtpmOptions, LOCALCA_DIR};
use tpm::{AkAlg, AkRef, EkAlg, Tpm};

/// A built binary of the workspace (`warrant`, `warrant-verifier`), beside the test binary's
/// `deps/` folder. cargo nextest and cargo test build every binary of the workspace first.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with `cargo nextest run --workspace` (scripts/test.sh)",
        path.display()
    );
    path
}

/// Runs `warrant ARGS`.
pub fn warrant(args: &[&str]) -> Output {
    Command::new(bin("warrant")).args(args).output().unwrap()
}

fn unique(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warrant-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A folder holding only swtpm's local root CA: what a verifier trusts for swtpm EKs.
pub fn swtpm_root_ca_dir() -> PathBuf {
    let dir = unique("ekca");
    std::fs::copy(
        Path::new(LOCALCA_DIR).join("swtpm-localca-rootca-cert.pem"),
        dir.join("root.pem"),
    )
    .expect("swtpm's local CA root (run scripts/install-deps.sh and swtpm_setup once)");
    dir
}

/// swtpm's intermediate CA, which signs EK certificates (nodes send it along).
pub fn swtpm_intermediate() -> PathBuf {
    Path::new(LOCALCA_DIR).join("issuercert.pem")
}

fn spawn_verifier(
    state: &Path,
    ca_dir: &Path,
    policy: Option<&Path>,
    extra: &[&str],
) -> (Child, u16) {
    let mut cmd = Command::new(bin("warrant-verifier"));
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--state")
        .arg(state)
        .arg("--ca-dir")
        .arg(ca_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let Some(addr) = line.trim().strip_prefix("warrant-verifier: listening on ") else {
        let _ = child.kill();
        panic!("verifier did not start: {line:?}");
    };
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

/// A running `warrant-verifier serve`; killed on drop (its state folder stays until then).
pub struct Verifier {
    child: Child,
    pub state: PathBuf,
    pub ca_dir: PathBuf,
    pub port: u16,
    pub policy: Option<PathBuf>,
    pub extra: Vec<String>,
}

impl Verifier {
    /// Starts a verifier with a new state folder.
    pub fn start(ca_dir: &Path, policy: Option<&Path>, extra: &[&str]) -> Verifier {
        let state = unique("verifier");
        Self::start_in(&state, ca_dir, policy, extra)
    }

    /// Starts a verifier on an existing state folder.
    pub fn start_in(
        state: &Path,
        ca_dir: &Path,
        policy: Option<&Path>,
        extra: &[&str],
    ) -> Verifier {
        let (child, port) = spawn_verifier(state, ca_dir, policy, extra);
        Verifier {
            child,
            state: state.to_path_buf(),
            ca_dir: ca_dir.to_path_buf(),
            port,
            policy: policy.map(Path::to_path_buf),
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    /// Stops the verifier and starts it again on the same state (and a new port), with
    /// `policy`.
    pub fn restart(&mut self, policy: Option<&Path>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let (child, port) = spawn_verifier(&self.state, &self.ca_dir, policy, &extra);
        self.child = child;
        self.port = port;
        self.policy = policy.map(Path::to_path_buf);
    }

    /// The verifier's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The verifier's CA certificate, which the node gets out of band.
    pub fn ca_pem(&self) -> PathBuf {
        self.state.join("ca.pem")
    }

    /// Runs `warrant-verifier ARGS --state STATE`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("warrant-verifier"))
            .args(args)
            .arg("--state")
            .arg(&self.state)
            .output()
            .unwrap()
    }

    /// `policy capture` for `node`, written to a file in the state folder.
    pub fn capture(&self, node: &str) -> PathBuf {
        let out = self.cli(&["policy", "capture", "--node", node]);
        assert!(
            out.status.success(),
            "capture: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.state.join(format!("policy-{node}.json"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// A TLS channel, with a client identity or none.
    pub async fn channel(&self, identity: Option<(&str, &str)>) -> Channel {
        let ca = std::fs::read(self.ca_pem()).unwrap();
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Endpoint::from_shared(self.url())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self, identity: Option<(&str, &str)>) -> VerifierClient<Channel> {
        VerifierClient::new(self.channel(identity).await)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// What a node boots: the firmware log replayed into its TPM, the UKI (PCR 11) and the
/// read-only root's dm-verity root hash.
#[derive(Clone, Debug)]
pub struct Boot {
    /// A fixture log (measure/testdata/eventlogs/NAME) whose PCR 0 starts at locality 0.
    pub firmware_log: String,
    /// Stands for the UKI systemd-stub measured into PCR 11.
    pub uki: String,
    /// The dm-verity root hash the agent measures.
    pub root_hash: String,
}

impl Boot {
    pub fn good() -> Boot {
        Boot {
            firmware_log: "rhel8-uefi.bin".to_string(),
            uki: "warrant-test-uki-v1".to_string(),
            root_hash: "4d5a3f0b1c2e9d8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
                .to_string(),
        }
    }
}

/// A node: a software TPM, booted, with its measurement log and agent state folder.
pub struct Node {
    pub swtpm: Swtpm,
    pub name: String,
    pub boot: Boot,
    pub dir: PathBuf,
}

impl Node {
    /// A node whose TPM has swtpm's usual EK certificate.
    pub fn boot(name: &str, boot: &Boot) -> Node {
        Self::boot_with(name, boot, &SwtpmOptions::default())
    }

    pub fn boot_with(name: &str, boot: &Boot, options: &SwtpmOptions) -> Node {
        let swtpm = Swtpm::start_with(options).unwrap();
        let dir = swtpm.dir().join("node");
        std::fs::create_dir_all(&dir).unwrap();
        let node = Node {
            swtpm,
            name: name.to_string(),
            boot: boot.clone(),
            dir,
        };
        node.power_on();
        node
    }

    /// What firmware, systemd-stub and the agent do at each boot.
    pub fn power_on(&self) {
        let log = self.firmware_log_path();
        let out = warrant(&[
            "tpm",
            "simulate-boot",
            "--tcti",
            &self.tcti(),
            "--event-log",
            log.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        {
            let mut tpm = self.tpm();
            let digests: Vec<(HashAlg, Vec<u8>)> = tpm
                .allocated_banks()
                .unwrap()
                .into_iter()
                .map(|b| (b, b.hash(self.boot.uki.as_bytes())))
                .collect();
            tpm.extend_digests(11, &digests).unwrap();
        }
        let _ = std::fs::remove_file(self.cel_path());
        let out = warrant(&[
            "agent",
            "measure",
            "--tcti",
            &self.tcti(),
            "--root-hash",
            &self.boot.root_hash,
            "--event-log",
            self.cel_path().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Reboots the node: a TPM reset, then the same boot again.
    pub fn reboot(&mut self) {
        self.swtpm.restart().unwrap();
        self.power_on();
    }

    pub fn tcti(&self) -> String {
        self.swtpm.tcti()
    }

    pub fn tpm(&self) -> Tpm {
        Tpm::open(&self.tcti()).unwrap()
    }

    pub fn firmware_log_path(&self) -> PathBuf {
        tests::eventlog_fixtures().join(&self.boot.firmware_log)
    }

    pub fn cel_path(&self) -> PathBuf {
        self.dir.join("measurements.cel.json")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("agent")
    }

    /// `warrant agent attest --once` against `verifier`, with `extra` arguments.
    pub fn agent(&self, verifier: &Verifier, extra: &[&str]) -> Output {
        Command::new(bin("warrant"))
            .args(["agent", "attest", "--once", "--json"])
            .args(["--verifier", &verifier.url()])
            .arg("--ca")
            .arg(verifier.ca_pem())
            .args(["--tcti", &self.tcti(), "--name", &self.name])
            .arg("--state")
            .arg(self.state_dir())
            .arg("--firmware-log")
            .arg(self.firmware_log_path())
            .arg("--event-log")
            .arg(self.cel_path())
            .args(["--root-hash", &self.boot.root_hash])
            .arg("--ek-intermediate")
            .arg(swtpm_intermediate())
            .args(extra)
            .output()
            .unwrap()
    }
}

/// A protocol client driven by a test, step by step, on one node's TPM.
pub struct Client {
    pub ek: EkAlg,
    pub ak: AkRef,
    pub node_id: String,
}

/// The PCR values of a quote, as the wire carries them.
pub fn pcr_values(banks: &measure::pcr::PcrBanks) -> Vec<PcrValue> {
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

impl Client {
    /// The registration request for `node` with a new AK (RSA EK, like the agent).
    pub fn registration(node: &Node) -> (v1::RegisterRequest, AkRef) {
        let mut tpm = node.tpm();
        let blobs = tpm.create_ak(EkAlg::Rsa2048, AkAlg::EccP256).unwrap();
        let ak = AkRef::Blobs {
            blobs,
            parent: EkAlg::Rsa2048,
        };
        let ak_public = tpm.ak_public(&ak).unwrap();
        let cert = tpm
            .ek_certificates()
            .unwrap()
            .into_iter()
            .find(|c| c.index == 0x01c0_0002)
            .expect("RSA EK certificate");
        let intermediate = std::fs::read(swtpm_intermediate()).unwrap();
        let inter = policy::ek::pem_to_der(&intermediate).unwrap();
        (
            v1::RegisterRequest {
                node_name: node.name.clone(),
                ek_public: tpm.ek_public_tpm2b(EkAlg::Rsa2048).unwrap(),
                ek_certificate: cert.der,
                ek_intermediates: inter,
                ak_public: ak_public.tpm2b_public,
            },
            ak,
        )
    }

    /// Registers `node`; `activate` also proves activation.
    pub async fn register(
        node: &Node,
        verifier: &mut VerifierClient<Channel>,
        activate: bool,
    ) -> Result<Client, proto::tonic::Status> {
        let (req, ak) = Self::registration(node);
        let reg = verifier.register(req).await?.into_inner();
        if activate {
            let secret = node
                .tpm()
                .activate_credential(
                    &ak,
                    EkAlg::Rsa2048,
                    &reg.credential_blob,
                    &reg.encrypted_secret,
                )
                .unwrap();
            verifier
                .activate(v1::ActivateRequest {
                    node_id: reg.node_id.clone(),
                    secret: secret.expose().to_vec(),
                })
                .await?;
        }
        Ok(Client {
            ek: EkAlg::Rsa2048,
            ak,
            node_id: reg.node_id,
        })
    }

    /// A challenge request with a fresh clock quote from `node`'s TPM.
    pub fn challenge_request(&self, node: &Node) -> v1::ChallengeRequest {
        let context = HashAlg::Sha256.hash(&proto::clock_quote_context(&self.node_id));
        let q = node
            .tpm()
            .quote(&self.ak, &[(HashAlg::Sha256, vec![0])], &context)
            .unwrap();
        v1::ChallengeRequest {
            node_id: self.node_id.clone(),
            clock_quote: Some(v1::Quote {
                attest: q.attest,
                signature: q.signature,
            }),
            clock_quote_pcrs: pcr_values(&q.pcrs),
        }
    }

    /// The evidence for `challenge` from `node` (quoted with `ak`, normally this client's),
    /// and the PEM private key of its certificate request.
    pub fn evidence(
        &self,
        node: &Node,
        ak: &AkRef,
        challenge: &v1::ChallengeResponse,
    ) -> (v1::AttestRequest, String) {
        let selection: Vec<(HashAlg, Vec<u32>)> = challenge
            .selection
            .iter()
            .map(|s| (HashAlg::from_name(&s.bank).unwrap(), s.pcrs.clone()))
            .collect();
        let q = node.tpm().quote(ak, &selection, &challenge.nonce).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let req = v1::AttestRequest {
            node_id: self.node_id.clone(),
            nonce: challenge.nonce.clone(),
            quote: Some(v1::Quote {
                attest: q.attest,
                signature: q.signature,
            }),
            pcrs: pcr_values(&q.pcrs),
            firmware_event_log: std::fs::read(node.firmware_log_path()).unwrap(),
            warrant_event_log: std::fs::read(node.cel_path()).unwrap_or_default(),
            ima_log: Vec::new(),
            csr: csr.der().to_vec(),
        };
        (req, key.serialize_pem())
    }

    /// Asks `verifier` for a challenge, showing `node`'s TPM clock.
    pub async fn challenge(
        &self,
        node: &Node,
        verifier: &mut VerifierClient<Channel>,
    ) -> Result<v1::ChallengeResponse, proto::tonic::Status> {
        Ok(verifier
            .challenge(self.challenge_request(node))
            .await?
            .into_inner())
    }

    /// One whole round: challenge, evidence (changed by `tamper`), attest. Returns the
    /// answer and the private key (PEM) that goes with the credential, if one was issued.
    pub async fn attest(
        &self,
        node: &Node,
        verifier: &mut VerifierClient<Channel>,
        tamper: impl FnOnce(&mut v1::AttestRequest),
    ) -> Result<(v1::AttestResponse, String), proto::tonic::Status> {
        let challenge = self.challenge(node, verifier).await?;
        let (mut req, key) = self.evidence(node, &self.ak, &challenge);
        tamper(&mut req);
        Ok((verifier.attest(req).await?.into_inner(), key))
    }
}

/// The failing findings of a response, as "check: reason" lines.
pub fn failures(resp: &v1::AttestResponse) -> Vec<String> {
    resp.findings
        .iter()
        .filter(|f| !f.passed)
        .map(|f| format!("{}: {}", f.check, f.reason))
        .collect()
}

/// A folder for a test's own CA (an untrusted TPM manufacturer).
pub fn untrusted_ca_dir() -> PathBuf {
    unique("untrusted-ca")
}
