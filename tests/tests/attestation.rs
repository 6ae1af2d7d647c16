//! Attestation before join, end to end: a `warrant-verifier` process, nodes on their own
//! software TPMs booted through a real machine's firmware event log, the `warrant agent`
//! binary for the nodes that behave, and a step-by-step protocol client for the ones that
//! cheat. Each refusal is checked for its own precise reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod support;

use proto::tonic::Code;
use proto::v1;
use support::attestation::{
    failures, swtpm_root_ca_dir, untrusted_ca_dir, Boot, Client, Node, Verifier,
};
use tests::swtpm::SwtpmOptions;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A verifier whose reference values were captured from a golden node booted with
/// `Boot::good()`: the golden node is denied first (no policy yet), its evidence captured,
/// and the verifier restarted with the captured policy.
fn verifier_with_golden_policy() -> Verifier {
    let ca = swtpm_root_ca_dir();
    let mut verifier = Verifier::start(&ca, None, &[]);
    let golden = Node::boot("golden", &Boot::good());
    let out = golden.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(1), "denied without a policy");
    let report = stdout_json(&out);
    assert!(
        report.to_string().contains("no reference values"),
        "{report}"
    );
    let policy = verifier.capture("golden");
    verifier.restart(Some(&policy));
    verifier
}

#[test]
fn good_nodes_are_admitted_and_their_credentials_work() {
    let mut verifier = verifier_with_golden_policy();
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Node::boot(n, &Boot::good()))
        .collect();
    for node in &nodes {
        let out = node.agent(&verifier, &[]);
        let report = stdout_json(&out);
        assert_eq!(out.status.code(), Some(0), "{report}");
        assert_eq!(report["verdict"], "admitted");
        // The credential: a client certificate chained to the verifier's CA, its key 0600.
        let cert = node.state_dir().join("client.pem");
        let key = node.state_dir().join("client-key.pem");
        let check = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(verifier.ca_pem())
            .arg(&cert)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let token = std::fs::read_to_string(node.state_dir().join("bootstrap-token")).unwrap();
        let (id, secret) = token.split_once('.').unwrap();
        assert!(id.len() == 6 && secret.len() == 16, "{token}");
    }
    // Re-attestation goes over mutual TLS with the credential, and passes.
    let out = nodes[0].agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_json(&out));

    // A restart loses no node and no decision; admitted nodes keep attesting.
    let before_nodes = verifier.cli(&["nodes"]).stdout;
    let before_audit = verifier.cli(&["audit"]).stdout;
    let policy = verifier.policy.clone();
    verifier.restart(policy.as_deref());
    assert_eq!(verifier.cli(&["nodes"]).stdout, before_nodes);
    assert_eq!(verifier.cli(&["audit"]).stdout, before_audit);
    let audit = String::from_utf8(before_audit).unwrap();
    // The golden node (registered, activated, denied: no policy yet), three nodes (registered,
    // activated, admitted) and one re-attestation.
    assert_eq!(audit.lines().count(), 3 + 3 * 3 + 1, "{audit}");
    assert_eq!(
        audit.lines().filter(|l| l.contains("\"admitted\"")).count(),
        4,
        "{audit}"
    );
    for node in &nodes {
        let out = node.agent(&verifier, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout_json(&out));
    }
}

/// Boots `boot` on a new node, runs the agent, and returns the failing findings.
fn refused_boot(verifier: &Verifier, name: &str, boot: &Boot) -> Vec<String> {
    let node = Node::boot(name, boot);
    let out = node.agent(verifier, &[]);
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["verdict"], "denied", "{report}");
    assert!(
        !node.state_dir().join("client.pem").exists(),
        "a denied node holds no credential"
    );
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["passed"] == false)
        .map(|f| {
            format!(
                "{}: {}",
                f["check"].as_str().unwrap(),
                f["reason"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn another_uki_root_or_firmware_state_is_refused_with_its_reason() {
    let verifier = verifier_with_golden_policy();

    let mut boot = Boot::good();
    boot.uki = "warrant-test-uki-v2-unsigned".to_string();
    let f = refused_boot(&verifier, "other-uki", &boot);
    assert!(
        f.iter()
            .any(|l| l.starts_with("pcr-value") && l.contains("PCR 11")),
        "{f:?}"
    );

    let mut boot = Boot::good();
    boot.root_hash = "00".repeat(32);
    let f = refused_boot(&verifier, "other-root", &boot);
    assert!(f.iter().any(|l| l.starts_with("root-hash")), "{f:?}");

    let mut boot = Boot::good();
    boot.firmware_log = "ubuntu-2104-no-secure-boot.bin".to_string();
    let f = refused_boot(&verifier, "secure-boot-off", &boot);
    assert!(
        f.iter()
            .any(|l| l.starts_with("secure-boot") && l.to_lowercase().contains("off")),
        "{f:?}"
    );
}

#[test]
fn tampered_evidence_is_refused_with_its_reason() {
    let verifier = verifier_with_golden_policy();
    let node = Node::boot("tampered", &Boot::good());
    rt().block_on(async {
        let mut client = verifier.client(None).await;
        let me = Client::register(&node, &mut client, true).await.unwrap();

        // An edited digest in the firmware log: one bit of the last event's SHA-256 digest
        // (the bank the verifier quotes; a digest of an unquoted bank proves nothing either
        // way).
        let (r, _) = me
            .attest(&node, &mut client, |req| {
                let log = &mut req.firmware_event_log;
                let parsed = measure::eventlog::EventLog::parse(log).unwrap();
                let ev = parsed.events.last().unwrap();
                let digest = ev.digest(measure::alg::HashAlg::Sha256).unwrap().to_vec();
                let at = log[ev.offset..ev.data_offset]
                    .windows(digest.len())
                    .position(|w| w == digest.as_slice())
                    .unwrap()
                    + ev.offset;
                log[at] ^= 0x01;
            })
            .await
            .unwrap();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("firmware-log")), "{f:?}");

        // A truncated log: its last third is gone.
        let (r, _) = me
            .attest(&node, &mut client, |req| {
                let len = req.firmware_event_log.len();
                req.firmware_event_log.truncate(len * 2 / 3);
            })
            .await
            .unwrap();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("firmware-log")), "{f:?}");

        // Warrant's own log edited: the root hash it names is not what PCR 15 holds.
        let (r, _) = me
            .attest(&node, &mut client, |req| {
                let text = String::from_utf8(req.warrant_event_log.clone()).unwrap();
                let forged = text.replace(&Boot::good().root_hash, &"11".repeat(32));
                req.warrant_event_log = forged.into_bytes();
            })
            .await
            .unwrap();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("warrant-log")), "{f:?}");

        // Untouched, the same node is admitted.
        let (r, _) = me.attest(&node, &mut client, |_| {}).await.unwrap();
        assert_eq!(
            r.verdict,
            v1::Verdict::Admitted as i32,
            "{:?}",
            failures(&r)
        );
    });
}

#[test]
fn replayed_nonce_and_foreign_ak_are_refused() {
    let verifier = verifier_with_golden_policy();
    let node = Node::boot("replay", &Boot::good());
    let other = Node::boot("foreign", &Boot::good());
    rt().block_on(async {
        let mut client = verifier.client(None).await;
        let me = Client::register(&node, &mut client, true).await.unwrap();
        let stranger = Client::register(&other, &mut client, true).await.unwrap();

        // A quote by another TPM's AK over this node's nonce.
        let challenge = client
            .challenge(me.challenge_request(&node))
            .await
            .unwrap()
            .into_inner();
        let (mut req, _) = me.evidence(&other, &stranger.ak, &challenge);
        req.node_id = me.node_id.clone();
        let r = client.attest(req).await.unwrap().into_inner();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("quote-signature")), "{f:?}");

        // A replayed nonce: an answer sent twice (the first is denied, so the node has no
        // credential and may still speak without one).
        let challenge = client
            .challenge(me.challenge_request(&node))
            .await
            .unwrap()
            .into_inner();
        let (mut req, _) = me.evidence(&node, &me.ak, &challenge);
        req.warrant_event_log = b"[]".to_vec();
        let r = client.attest(req.clone()).await.unwrap().into_inner();
        assert_eq!(r.verdict, v1::Verdict::Denied as i32);
        let r = client.attest(req).await.unwrap().into_inner();
        let f = failures(&r);
        assert!(
            f.iter()
                .any(|l| l.starts_with("nonce") && l.contains("already used")),
            "{f:?}"
        );
    });
}

#[test]
fn untrusted_ek_and_unactivated_ak_are_refused() {
    let verifier = verifier_with_golden_policy();
    let options = SwtpmOptions {
        own_ca: Some(untrusted_ca_dir()),
        ..SwtpmOptions::default()
    };
    let rogue = Node::boot_with("rogue", &Boot::good(), &options);
    let out = rogue.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EK certificate not trusted"), "{err}");

    let lazy = Node::boot("lazy", &Boot::good());
    rt().block_on(async {
        let mut client = verifier.client(None).await;
        let me = Client::register(&lazy, &mut client, false).await.unwrap();
        let status = client
            .challenge(me.challenge_request(&lazy))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("never activated"), "{status:?}");
        // Nor can it skip the challenge: a made-up nonce is refused too.
        let req = v1::AttestRequest {
            node_id: me.node_id.clone(),
            nonce: vec![7; 32],
            ..v1::AttestRequest::default()
        };
        let r = client.attest(req).await.unwrap().into_inner();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("activation")), "{f:?}");
    });
}

#[test]
fn a_reboot_between_challenge_and_quote_and_a_clock_going_back_are_refused() {
    let verifier = verifier_with_golden_policy();
    let mut node = Node::boot("rebooter", &Boot::good());
    let snapshot = node.swtpm.snapshot("early").unwrap();
    node.power_on();
    rt().block_on(async {
        let mut client = verifier.client(None).await;
        let me = Client::register(&node, &mut client, true).await.unwrap();
        let challenge = client
            .challenge(me.challenge_request(&node))
            .await
            .unwrap()
            .into_inner();
        node.reboot();
        let (req, _) = me.evidence(&node, &me.ak, &challenge);
        let r = client.attest(req).await.unwrap().into_inner();
        let f = failures(&r);
        assert!(
            f.iter()
                .any(|l| l.starts_with("clock") && l.contains("rebooted")),
            "{f:?}"
        );

        // Admitted; then the TPM's state is rolled back to an earlier copy.
        let (r, key) = me.attest(&node, &mut client, |_| {}).await.unwrap();
        assert_eq!(
            r.verdict,
            v1::Verdict::Admitted as i32,
            "{:?}",
            failures(&r)
        );
        let cert = r.credential.unwrap().client_certificate_pem;
        std::thread::sleep(std::time::Duration::from_millis(300));
        node.swtpm.restore(&snapshot).unwrap();
        node.power_on();
        let mut mtls = verifier.client(Some((&cert, &key))).await;
        let status = mtls
            .challenge(me.challenge_request(&node))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains("went back"), "{status:?}");
    });
    // The admitted node was revoked for it, with the reason in the audit trail.
    let audit = String::from_utf8(verifier.cli(&["audit"]).stdout).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"revocation\"") && l.contains("went back")),
        "{audit}"
    );
}

#[test]
fn an_admitted_node_speaks_only_with_its_own_certificate_and_messages_are_bounded() {
    let verifier = verifier_with_golden_policy();
    let a = Node::boot("mtls-a", &Boot::good());
    let b = Node::boot("mtls-b", &Boot::good());
    rt().block_on(async {
        let mut anon = verifier.client(None).await;
        let ca = Client::register(&a, &mut anon, true).await.unwrap();
        let cb = Client::register(&b, &mut anon, true).await.unwrap();
        let (ra, key_a) = ca.attest(&a, &mut anon, |_| {}).await.unwrap();
        let (rb, key_b) = cb.attest(&b, &mut anon, |_| {}).await.unwrap();
        assert_eq!(
            ra.verdict,
            v1::Verdict::Admitted as i32,
            "{:?}",
            failures(&ra)
        );
        assert_eq!(
            rb.verdict,
            v1::Verdict::Admitted as i32,
            "{:?}",
            failures(&rb)
        );
        let cert_a = ra.credential.unwrap().client_certificate_pem;
        let cert_b = rb.credential.unwrap().client_certificate_pem;

        // Without a certificate.
        let status = ca.attest(&a, &mut anon, |_| {}).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        // With another node's certificate.
        let mut as_b = verifier.client(Some((&cert_b, &key_b))).await;
        let status = ca.attest(&a, &mut as_b, |_| {}).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        // With its own: admitted again.
        let mut as_a = verifier.client(Some((&cert_a, &key_a))).await;
        let (r, _) = ca.attest(&a, &mut as_a, |_| {}).await.unwrap();
        assert_eq!(
            r.verdict,
            v1::Verdict::Admitted as i32,
            "{:?}",
            failures(&r)
        );

        // An oversized message is refused before it is decoded.
        let status = ca
            .attest(&a, &mut as_a, |req| {
                req.ima_log = vec![b'x'; proto::MAX_MESSAGE_BYTES + 1];
            })
            .await
            .unwrap_err();
        assert!(
            matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
            "{status:?}"
        );
    });
}
