//! The gRPC service: the protocol's four steps (register, activate, challenge, attest), the
//! watch stream, and the rules that tie them to the store and the CA. The checks themselves
//! are in [`crate::core`] (evidence) and `policy::ek` (EK chains).

use crate::ca::Authority;
use crate::core::{self, Finding};
use crate::store::{
    Challenge, Credential, DecisionKind, NewDecision, NewNode, Node, NodeState, PendingActivation,
    Store, StoreError, Verdict,
};
use measure::alg::HashAlg;
use measure::pcr::PcrBanks;
use measure::tpm2::{ClockInfo, Public, PublicParams};
use policy::refvalues::ReferenceValues;
use proto::tonic::{Request, Response, Status};
use proto::v1;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

/// How long a node has to prove activation.
pub const ACTIVATION_TTL_SECS: i64 = 120;
/// How long a nonce may be answered.
pub const NONCE_TTL_SECS: i64 = 60;
/// Longest node name (a DNS name).
pub const MAX_NAME: usize = 253;

/// The verifier's settings.
pub struct Config {
    /// Reference values; `None` denies every node (its evidence is still kept for `policy
    /// capture`).
    pub refs: Option<ReferenceValues>,
    /// Trusted EK manufacturer CA certificates (DER).
    pub trusted_roots: Vec<Vec<u8>>,
    /// Lifetime of an issued client certificate.
    pub credential_ttl_secs: u64,
    /// Lifetime of a bootstrap token.
    pub token_ttl_secs: u64,
    /// How often an admitted node must attest again.
    pub reattest_interval_secs: u64,
    /// Where the last evidence of each node is kept (for `policy capture`).
    pub evidence_dir: PathBuf,
    /// Where every decision is also POSTed, if anywhere.
    pub webhook: Option<crate::webhook::Webhook>,
}

/// A decision as JSON: what the watch CLI prints and the webhook receives.
pub fn decision_json(d: &v1::Decision) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = d
        .findings
        .iter()
        .map(|f| serde_json::json!({"check": f.check, "passed": f.passed, "reason": f.reason}))
        .collect();
    let verdict = v1::Verdict::try_from(d.verdict)
        .map(|v| v.as_str_name().to_ascii_lowercase())
        .unwrap_or_default();
    serde_json::json!({
        "id": d.id, "time": d.time, "node_id": d.node_id, "node_name": d.node_name,
        "kind": d.kind, "verdict": verdict, "findings": findings,
    })
}

/// The service's state, shared by every connection.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    ca: Arc<Authority>,
    config: Arc<Config>,
    events: broadcast::Sender<v1::Decision>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("verifier state: {e}"))
}

fn finding_to_proto(f: &Finding) -> v1::Finding {
    v1::Finding {
        check: f.check.clone(),
        passed: f.passed,
        expected: f.expected.clone(),
        actual: f.actual.clone(),
        reason: f.reason.clone(),
    }
}

fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::to_value(f).unwrap_or(serde_json::Value::Null)
}

fn verdict_to_proto(v: Verdict) -> i32 {
    match v {
        Verdict::Admitted | Verdict::Ok => v1::Verdict::Admitted as i32,
        Verdict::Denied => v1::Verdict::Denied as i32,
        Verdict::Revoked => v1::Verdict::Revoked as i32,
    }
}

/// Lowercase hex SHA-256 of a DER SubjectPublicKeyInfo: a node's id.
pub fn node_id_of(spki: &[u8]) -> String {
    hex::encode(HashAlg::Sha256.hash(spki))
}

/// Whether the EK public area the node sent is the key its certificate certifies. Without
/// this, a genuine EK certificate could front a software key that activates anything.
pub fn ek_matches_certificate(ek: &Public, spki_der: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| format!("the EK certificate's public key does not parse: {e}"))?;
    let parsed = spki
        .parsed()
        .map_err(|e| format!("the EK certificate's public key does not parse: {e}"))?;
    let strip = |b: &[u8]| -> Vec<u8> {
        let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        b.get(first..).unwrap_or_default().to_vec()
    };
    let same = match (&ek.params, parsed) {
        (
            PublicParams::Rsa {
                modulus, exponent, ..
            },
            PublicKey::RSA(rsa),
        ) => {
            let e = if *exponent == 0 { 65537 } else { *exponent };
            strip(modulus) == strip(rsa.modulus) && strip(&e.to_be_bytes()) == strip(rsa.exponent)
        }
        (PublicParams::Ecc { x, y, .. }, PublicKey::EC(point)) => {
            let data = point.data();
            let mut want = vec![0x04];
            want.extend_from_slice(x);
            want.extend_from_slice(y);
            data == want.as_slice()
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err("the EK public area is not the key the EK certificate certifies".to_string())
    }
}

/// PCR values from the wire, strictly.
fn pcrs_from_proto(values: &[v1::PcrValue]) -> Result<PcrBanks, String> {
    let mut banks = PcrBanks::new();
    for v in values {
        let bank = HashAlg::from_name(&v.bank).ok_or_else(|| format!("unknown bank {}", v.bank))?;
        if v.pcr > measure::pcr::MAX_PCR || v.value.len() != bank.digest_len() {
            return Err(format!("bad value for PCR {} of bank {}", v.pcr, v.bank));
        }
        if banks.get(bank, v.pcr).is_some() {
            return Err(format!("PCR {} of bank {} appears twice", v.pcr, v.bank));
        }
        banks.set(bank, v.pcr, v.value.clone());
    }
    Ok(banks)
}

fn clock_of(c: &Challenge) -> ClockInfo {
    ClockInfo {
        clock: c.clock,
        reset_count: c.reset_count,
        restart_count: c.restart_count,
        safe: true,
    }
}

/// The identity a connection proved with its client certificate, if any.
struct Peer {
    node_id: String,
    serial: String,
}

fn peer_of<T>(request: &Request<T>) -> Option<Peer> {
    let certs = request.peer_certs()?;
    let der = certs.first()?;
    let node_id = crate::ca::node_id_from_client_cert(der.as_ref())?;
    let serial = crate::ca::serial_of(der.as_ref())?;
    Some(Peer { node_id, serial })
}

impl Service {
    pub fn new(store: Arc<dyn Store>, ca: Arc<Authority>, config: Config) -> Service {
        let (events, _) = broadcast::channel(1024);
        Service {
            store,
            ca,
            config: Arc::new(config),
            events,
            clock: Arc::new(unix_now),
        }
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Starts posting every decision to the configured webhook (call inside the runtime).
    pub fn start_webhook(&self) {
        let Some(hook) = self.config.webhook.clone() else {
            return;
        };
        let mut rx = self.events.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(d) => {
                        let body = decision_json(&d).to_string();
                        match hook.post(&body).await {
                            Ok(code) if (200..300).contains(&code) => {}
                            Ok(code) => eprintln!("warrant-verifier: webhook answered {code}"),
                            Err(e) => eprintln!("warrant-verifier: webhook: {e}"),
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("warrant-verifier: webhook fell behind; {n} decisions not sent");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Appends a decision to the audit trail and publishes it on the watch stream.
    fn decide(
        &self,
        node: &str,
        kind: DecisionKind,
        verdict: Verdict,
        findings: &[Finding],
        clock: Option<ClockInfo>,
    ) -> Result<i64, Status> {
        let reasons: Vec<serde_json::Value> = findings.iter().map(finding_json).collect();
        let now = self.now();
        let id = self
            .store
            .record_decision(&NewDecision {
                node_id: node,
                time: now,
                kind,
                verdict,
                reasons: &reasons,
                clock,
            })
            .map_err(internal)?;
        let name = self
            .store
            .node(node)
            .ok()
            .flatten()
            .map(|n| n.name)
            .unwrap_or_default();
        let _ = self.events.send(v1::Decision {
            id,
            node_id: node.to_string(),
            node_name: name,
            kind: kind.as_str().to_string(),
            verdict: verdict_to_proto(verdict),
            findings: findings.iter().map(finding_to_proto).collect(),
            time: now,
        });
        Ok(id)
    }

    /// A node that holds a live credential must speak with it (mutual TLS).
    fn check_peer(&self, node: &Node, peer: Option<&Peer>) -> Result<(), Status> {
        let now = self.now();
        let live = self
            .store
            .active_credential(&node.node_id, now)
            .map_err(internal)?;
        match (live, peer) {
            (None, None) => Ok(()),
            (_, Some(p)) if p.node_id != node.node_id => Err(Status::permission_denied(format!(
                "the client certificate is node {}'s, not node {}'s",
                p.node_id, node.node_id
            ))),
            (_, Some(p)) => match self.store.is_revoked(&p.serial) {
                Ok(false) => Ok(()),
                Ok(true) => Err(Status::permission_denied(
                    "the client certificate was revoked",
                )),
                Err(_) => Err(Status::permission_denied(
                    "the client certificate was not issued by this verifier",
                )),
            },
            (Some(_), None) => Err(Status::unauthenticated(format!(
                "node {} holds a live credential: connect with its client certificate \
                 (mutual TLS)",
                node.node_id
            ))),
        }
    }

    fn node(&self, node_id: &str) -> Result<Node, Status> {
        self.store
            .node(node_id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("node {node_id} is not registered")))
    }

    /// Revokes every credential of `node` (re-attestation failed or was missed).
    pub fn revoke(&self, node_id: &str, reason: &str) -> Result<usize, Status> {
        let n = self
            .store
            .revoke_node(node_id, reason, self.now())
            .map_err(internal)?;
        let _ = self.events.send(v1::Decision {
            id: 0,
            node_id: node_id.to_string(),
            node_name: self
                .store
                .node(node_id)
                .ok()
                .flatten()
                .map(|n| n.name)
                .unwrap_or_default(),
            kind: "revocation".to_string(),
            verdict: v1::Verdict::Revoked as i32,
            findings: vec![finding_to_proto(&Finding::fail("revocation", reason))],
            time: self.now(),
        });
        Ok(n)
    }

    /// Revokes admitted nodes that have not attested within three intervals.
    pub fn revoke_silent_nodes(&self) -> Result<Vec<String>, Status> {
        let now = self.now();
        let limit =
            i64::try_from(self.config.reattest_interval_secs.saturating_mul(3)).unwrap_or(i64::MAX);
        let mut revoked = Vec::new();
        for node in self.store.nodes().map_err(internal)? {
            if node.state == NodeState::Admitted && now.saturating_sub(node.updated_at) > limit {
                let reason = format!(
                    "no successful re-attestation for {} s (the interval is {} s)",
                    now - node.updated_at,
                    self.config.reattest_interval_secs
                );
                self.revoke(&node.node_id, &reason)?;
                revoked.push(node.node_id);
            }
        }
        Ok(revoked)
    }

    /// Keeps the node's last evidence that was not admitted (for `policy capture` and for a
    /// person looking into a denial), written atomically in the background. Evidence that was
    /// admitted is not kept: the audit trail records its findings.
    async fn keep_evidence(&self, node_id: &str, request: &v1::AttestRequest) {
        let quote = request.quote.clone().unwrap_or_default();
        let kept = crate::capture::KeptEvidence {
            nonce: hex::encode(&request.nonce),
            quote_attest: hex::encode(&quote.attest),
            quote_signature: hex::encode(&quote.signature),
            pcrs: request
                .pcrs
                .iter()
                .map(|p| (p.bank.clone(), p.pcr, hex::encode(&p.value)))
                .collect(),
            firmware_event_log: hex::encode(&request.firmware_event_log),
            warrant_event_log: hex::encode(&request.warrant_event_log),
            ima_log: hex::encode(&request.ima_log),
        };
        let dir = self.config.evidence_dir.clone();
        let node_id = node_id.to_string();
        // Off the async workers (a few hundred KiB of file I/O), and done before the answer
        // goes out, so `policy capture` right after a denial finds it.
        let written = tokio::task::spawn_blocking(move || {
            let write = || -> std::io::Result<()> {
                let json = serde_json::to_vec(&kept)?;
                std::fs::create_dir_all(&dir)?;
                let tmp = dir.join(format!(".{node_id}.json.tmp"));
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, dir.join(format!("{node_id}.json")))
            };
            if let Err(e) = write() {
                eprintln!(
                    "warrant-verifier: cannot keep the evidence of node {node_id} in {}: {e}",
                    dir.display()
                );
            }
        });
        let _ = written.await;
    }

    async fn do_register(
        &self,
        peer: Option<Peer>,
        r: v1::RegisterRequest,
    ) -> Result<v1::RegisterResponse, Status> {
        let name = r.node_name.trim().to_ascii_lowercase();
        if name.is_empty()
            || name.len() > MAX_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(Status::invalid_argument(format!(
                "node name {:?} is not a DNS name",
                r.node_name
            )));
        }
        let ek = Public::parse(&r.ek_public)
            .map_err(|e| Status::invalid_argument(format!("EK public area: {e}")))?;
        let verified = policy::ek::verify_ek_chain(
            &r.ek_certificate,
            &r.ek_intermediates,
            &self.config.trusted_roots,
            self.now(),
        );
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                return Err(Status::permission_denied(format!(
                    "EK certificate not trusted: {e}"
                )))
            }
        };
        ek_matches_certificate(&ek, &verified.public_key_spki)
            .map_err(Status::permission_denied)?;
        let node_id = node_id_of(&verified.public_key_spki);
        let ak = Public::parse(&r.ak_public)
            .map_err(|e| Status::invalid_argument(format!("AK public area: {e}")))?;
        let a = ak.attributes;
        if !a.restricted() || !a.sign() || a.decrypt() || !a.fixed_tpm() {
            return Err(Status::invalid_argument(format!(
                "the AK (attributes {:#010x}) is not a restricted, fixedTPM signing key",
                a.0
            )));
        }
        let ak_name = ak.name();
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        let made = measure::tpm2::credential::make_credential(
            &r.ek_public,
            &ak_name,
            secret.as_ref(),
            &mut rand::rngs::OsRng,
        )
        .map_err(|e| Status::invalid_argument(format!("cannot make a credential: {e}")))?;
        let now = self.now();
        let secret_sha256: [u8; 32] = {
            let h = HashAlg::Sha256.hash(secret.as_ref());
            let mut a = [0u8; 32];
            a.copy_from_slice(&h);
            a
        };
        let new = NewNode {
            node_id: node_id.clone(),
            name: name.clone(),
            ek_spki: verified.public_key_spki.clone(),
            ek_certificate: Some(r.ek_certificate.clone()),
            ak_public: r.ak_public.clone(),
            ak_name,
            activation_secret_sha256: secret_sha256,
            activation_expires_at: now + ACTIVATION_TTL_SECS,
            now,
        };
        if let Some(other) = self.store.node_by_name(&name).map_err(internal)? {
            if other.node_id != node_id {
                return Err(Status::already_exists(format!(
                    "the name {name} belongs to another TPM (node {})",
                    other.node_id
                )));
            }
        }
        match self.store.node(&node_id).map_err(internal)? {
            None => self.store.insert_node(&new).map_err(internal)?,
            Some(existing) => {
                if existing.state == NodeState::Revoked {
                    return Err(Status::permission_denied(format!(
                        "node {node_id} was revoked; an operator must remove it \
                         (`warrant-verifier remove`) before it registers again"
                    )));
                }
                self.check_peer(&existing, peer.as_ref())?;
                self.store.reregister_node(&new).map_err(|e| match e {
                    StoreError::NameTaken { .. } => Status::already_exists(e.to_string()),
                    other => internal(other),
                })?;
            }
        }
        self.decide(
            &node_id,
            DecisionKind::Registration,
            Verdict::Ok,
            &[Finding::pass(
                "ek-certificate",
                format!(
                    "EK certificate chains to {} ({})",
                    verified.root_subject,
                    verified
                        .tpm_manufacturer
                        .as_deref()
                        .unwrap_or("manufacturer unknown")
                ),
            )],
            None,
        )?;
        Ok(v1::RegisterResponse {
            node_id,
            credential_blob: made.credential_blob,
            encrypted_secret: made.secret,
        })
    }

    async fn do_activate(&self, r: v1::ActivateRequest) -> Result<v1::ActivateResponse, Status> {
        let node = self.node(&r.node_id)?;
        let now = self.now();
        let pending = match (node.state, node.activation) {
            (NodeState::Registered, Some(p)) => p,
            _ => {
                return Err(Status::failed_precondition(format!(
                    "node {} has no pending activation (state {})",
                    node.node_id, node.state
                )))
            }
        };
        let fail = |reason: String| -> Result<v1::ActivateResponse, Status> {
            self.decide(
                &node.node_id,
                DecisionKind::Activation,
                Verdict::Denied,
                &[Finding::fail("activation", reason.clone())],
                None,
            )?;
            Err(Status::permission_denied(reason))
        };
        if now > pending.expires_at {
            return fail("the activation challenge expired: register again".to_string());
        }
        let got = HashAlg::Sha256.hash(&r.secret);
        if !bool::from(got.as_slice().ct_eq(&pending.secret_sha256)) {
            // One try per registration: burn the challenge.
            let _ = self.store.set_activation(
                &node.node_id,
                PendingActivation {
                    secret_sha256: [0; 32],
                    expires_at: 0,
                },
                now,
            );
            return fail(
                "wrong activation secret: the AK is not in the TPM that holds this EK".to_string(),
            );
        }
        self.store
            .set_node_state(&node.node_id, NodeState::Activated, now)
            .map_err(internal)?;
        self.decide(
            &node.node_id,
            DecisionKind::Activation,
            Verdict::Ok,
            &[Finding::pass(
                "activation",
                "the AK lives in the TPM that holds the certified EK",
            )],
            None,
        )?;
        Ok(v1::ActivateResponse {})
    }

    async fn do_challenge(
        &self,
        peer: Option<Peer>,
        r: v1::ChallengeRequest,
    ) -> Result<v1::ChallengeResponse, Status> {
        let node = self.node(&r.node_id)?;
        if node.activated_at.is_none()
            || !matches!(
                node.state,
                NodeState::Activated | NodeState::Admitted | NodeState::Denied
            )
        {
            return Err(Status::failed_precondition(format!(
                "node {}'s AK was never activated (state {}): register and activate first",
                node.node_id, node.state
            )));
        }
        self.check_peer(&node, peer.as_ref())?;
        let quote = r
            .clock_quote
            .ok_or_else(|| Status::invalid_argument("no clock quote"))?;
        let pcrs = pcrs_from_proto(&r.clock_quote_pcrs).map_err(Status::invalid_argument)?;
        let context = HashAlg::Sha256.hash(&proto::clock_quote_context(&node.node_id));
        let verified = core::verify_quote(
            &quote.attest,
            &quote.signature,
            &node.ak_public,
            &context,
            &pcrs,
        )
        .map_err(|f| Status::permission_denied(format!("clock quote refused: {}", f.reason)))?;
        let clock = verified.clock_info();
        if let Err(f) = core::clock_not_back(clock, node.last_clock) {
            self.decide(
                &node.node_id,
                DecisionKind::Attestation,
                Verdict::Denied,
                std::slice::from_ref(&f),
                Some(clock),
            )?;
            if node.state == NodeState::Admitted {
                self.revoke(&node.node_id, &f.reason)?;
            }
            return Err(Status::permission_denied(f.reason));
        }
        let mut nonce = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let now = self.now();
        let challenge = Challenge {
            nonce: hex::encode(nonce),
            node_id: node.node_id.clone(),
            issued_at: now,
            expires_at: now + NONCE_TTL_SECS,
            reset_count: clock.reset_count,
            restart_count: clock.restart_count,
            clock: clock.clock,
        };
        self.store.insert_challenge(&challenge).map_err(internal)?;
        let selection = match &self.config.refs {
            Some(refs) => refs.quote_selection(),
            None => vec![(HashAlg::Sha256, (0..=15).collect())],
        };
        Ok(v1::ChallengeResponse {
            nonce: nonce.to_vec(),
            selection: selection
                .into_iter()
                .map(|(bank, pcrs)| v1::PcrSelection {
                    bank: bank.name().to_string(),
                    pcrs,
                })
                .collect(),
            expires_at: challenge.expires_at,
            want_ima: self.config.refs.as_ref().is_some_and(|r| r.wants_ima()),
        })
    }

    async fn do_attest(
        &self,
        peer: Option<Peer>,
        r: v1::AttestRequest,
    ) -> Result<v1::AttestResponse, Status> {
        let node = self.node(&r.node_id)?;
        self.check_peer(&node, peer.as_ref())?;
        let was_admitted = node.state == NodeState::Admitted;
        let now = self.now();
        let deny = |findings: Vec<Finding>, clock: Option<ClockInfo>| {
            let id = self.decide(
                &node.node_id,
                DecisionKind::Attestation,
                Verdict::Denied,
                &findings,
                clock,
            )?;
            if was_admitted {
                let reason = findings
                    .iter()
                    .find(|f| !f.passed)
                    .map_or("re-attestation failed".to_string(), |f| {
                        format!("re-attestation failed: {}", f.reason)
                    });
                self.revoke(&node.node_id, &reason)?;
            } else if node.state != NodeState::Denied {
                let _ = self
                    .store
                    .set_node_state(&node.node_id, NodeState::Denied, now);
            }
            Ok::<_, Status>(v1::AttestResponse {
                verdict: if was_admitted {
                    v1::Verdict::Revoked as i32
                } else {
                    v1::Verdict::Denied as i32
                },
                findings: findings.iter().map(finding_to_proto).collect(),
                credential: None,
                decision_id: id,
                reattest_interval_secs: 0,
            })
        };
        if node.activated_at.is_none() {
            return deny(
                vec![Finding::fail(
                    "activation",
                    "the node's AK was never activated: its quotes prove nothing",
                )],
                None,
            );
        }
        let nonce_hex = hex::encode(&r.nonce);
        let challenge = match self.store.take_challenge(&nonce_hex, &node.node_id, now) {
            Ok(c) => c,
            Err(e) => {
                let reason = match e {
                    StoreError::NonceUsed => {
                        "the nonce was already used (a replayed answer)".to_string()
                    }
                    StoreError::UnknownNonce => {
                        "the nonce was never issued by this verifier".to_string()
                    }
                    StoreError::NonceExpired { .. } => "the nonce expired".to_string(),
                    StoreError::NonceOfOtherNode { .. } => {
                        "the nonce was issued to another node".to_string()
                    }
                    other => return Err(internal(other)),
                };
                return deny(vec![Finding::fail("nonce", reason)], None);
            }
        };
        let Some(refs) = &self.config.refs else {
            self.keep_evidence(&node.node_id, &r).await;
            return deny(
                vec![Finding::fail(
                    "reference-values",
                    "the verifier has no reference values: every node is denied (its \
                     evidence is kept for `warrant-verifier policy capture`)",
                )],
                None,
            );
        };
        let pcrs = match pcrs_from_proto(&r.pcrs) {
            Ok(p) => p,
            Err(e) => return deny(vec![Finding::fail("pcr-values", e)], None),
        };
        let quote = r.quote.clone().unwrap_or_default();
        let report = core::attest(
            &core::Expectation {
                ak_public: &node.ak_public,
                nonce: &r.nonce,
                challenge_clock: clock_of(&challenge),
                last_clock: node.last_clock,
                refs,
            },
            &core::Evidence {
                attest: &quote.attest,
                signature: &quote.signature,
                pcrs: &pcrs,
                firmware_log: &r.firmware_event_log,
                warrant_log: &r.warrant_event_log,
                ima_log: &r.ima_log,
            },
        );
        if !report.admitted {
            self.keep_evidence(&node.node_id, &r).await;
            return deny(report.findings, report.clock);
        }
        // Admitted: issue the credential.
        let issued = match self.ca.issue_client(
            &r.csr,
            &node.node_id,
            &node.name,
            self.config.credential_ttl_secs,
            now,
        ) {
            Ok(i) => i,
            Err(e) => {
                let mut f = report.findings;
                f.push(Finding::fail(
                    "certificate-request",
                    format!("the certificate request is refused: {e}"),
                ));
                return deny(f, report.clock);
            }
        };
        let token = crate::ca::new_bootstrap_token();
        let token_expires = now + i64::try_from(self.config.token_ttl_secs).unwrap_or(i64::MAX / 2);
        if let Some(clock) = report.clock {
            self.store
                .set_last_clock(&node.node_id, clock, now)
                .map_err(internal)?;
        }
        self.store
            .insert_credential(&Credential {
                serial: issued.serial.clone(),
                node_id: node.node_id.clone(),
                issued_at: now,
                not_after: issued.not_after,
                bootstrap_token_id: token.id.clone(),
                bootstrap_token_sha256: token.secret_sha256(),
                revoked_at: None,
                revoke_reason: None,
            })
            .map_err(internal)?;
        self.store
            .set_node_state(&node.node_id, NodeState::Admitted, now)
            .map_err(internal)?;
        let id = self.decide(
            &node.node_id,
            DecisionKind::Attestation,
            Verdict::Admitted,
            &report.findings,
            report.clock,
        )?;
        Ok(v1::AttestResponse {
            verdict: v1::Verdict::Admitted as i32,
            findings: report.findings.iter().map(finding_to_proto).collect(),
            credential: Some(v1::Credential {
                client_certificate_pem: issued.cert_pem,
                ca_certificate_pem: self.ca.ca_pem().to_string(),
                serial: issued.serial,
                not_after: issued.not_after,
                bootstrap_token: token.full().to_string(),
                bootstrap_token_expires_at: token_expires,
            }),
            decision_id: id,
            reattest_interval_secs: self.config.reattest_interval_secs,
        })
    }
}

type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::Decision, Status>> + Send + 'static>>;

#[proto::tonic::async_trait]
impl v1::verifier_server::Verifier for Service {
    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let peer = peer_of(&request);
        self.do_register(peer, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn activate(
        &self,
        request: Request<v1::ActivateRequest>,
    ) -> Result<Response<v1::ActivateResponse>, Status> {
        self.do_activate(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn challenge(
        &self,
        request: Request<v1::ChallengeRequest>,
    ) -> Result<Response<v1::ChallengeResponse>, Status> {
        let peer = peer_of(&request);
        self.do_challenge(peer, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn attest(
        &self,
        request: Request<v1::AttestRequest>,
    ) -> Result<Response<v1::AttestResponse>, Status> {
        let peer = peer_of(&request);
        self.do_attest(peer, request.into_inner())
            .await
            .map(Response::new)
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // An operator's certificate (chain checked by TLS), or a node's live one.
        let operator = request.peer_certs().and_then(|c| {
            c.first()
                .and_then(|d| crate::ca::operator_from_client_cert(d))
        });
        if operator.is_none() {
            let Some(peer) = peer_of(&request) else {
                return Err(Status::unauthenticated(
                    "the watch stream needs a client certificate issued by this verifier \
                     (warrant-verifier operator-cert)",
                ));
            };
            if !matches!(self.store.is_revoked(&peer.serial), Ok(false)) {
                return Err(Status::permission_denied(
                    "the client certificate is revoked or unknown",
                ));
            }
        }
        let rx = self.events.subscribe();
        let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|item| {
            // A slow watcher that fell behind skips what it missed.
            item.ok().map(Ok)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

use tokio_stream::StreamExt as _;
