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
    verifier_with_golden_policy_and(&[])
}

/// [`verifier_with_golden_policy`] with extra `serve` arguments.
fn verifier_with_golden_policy_and(extra: &[&str]) -> Verifier {
    let ca = swtpm_root_ca_dir();
    let mut verifier = Verifier::start(&ca, None, extra);
    let golden = Node::boot("golden", &Boot::good());
    let out = golden.agent(&verifier, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "denied without a policy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        let challenge = me.challenge(&node, &mut client).await.unwrap();
        let (mut req, _) = me.evidence(&other, &stranger.ak, &challenge);
        req.node_id = me.node_id.clone();
        let r = client.attest(req).await.unwrap().into_inner();
        let f = failures(&r);
        assert!(f.iter().any(|l| l.starts_with("quote-signature")), "{f:?}");

        // A replayed nonce: an answer sent twice (the first is denied, so the node has no
        // credential and may still speak without one).
        let challenge = me.challenge(&node, &mut client).await.unwrap();
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
        let status = me.challenge(&lazy, &mut client).await.unwrap_err();
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
        let challenge = me.challenge(&node, &mut client).await.unwrap();
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
        let status = me.challenge(&node, &mut mtls).await.unwrap_err();
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

/// Reads a child's stdout lines on a thread.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to `secs`) for `check` to hold.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("not within {secs} s: {what}");
}

fn node_state(verifier: &Verifier, name: &str) -> String {
    let nodes: serde_json::Value =
        serde_json::from_slice(&verifier.cli(&["nodes"]).stdout).unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A webhook receiver on loopback: answers 204 to every POST and hands over the bodies.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/warrant", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            let body = loop {
                let Ok(n) = conn.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        assert!(text.starts_with("POST /hooks/warrant HTTP/1.1"), "{text}");
                        break Some(text[i + 4..i + 4 + len].to_string());
                    }
                }
            };
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            if let Some(b) = body {
                if tx.send(b).is_err() {
                    break;
                }
            }
        }
    });
    (url, rx)
}

#[test]
fn nodes_reattest_and_a_failure_or_silence_revokes_them_on_the_watch_stream() {
    let (hook, posted) = webhook_receiver();
    let verifier =
        verifier_with_golden_policy_and(&["--reattest-interval", "1", "--webhook", &hook]);
    // An operator watches decisions.
    let identity = verifier.state.join("operator");
    let out = verifier.cli(&[
        "operator-cert",
        "--name",
        "watcher",
        "--out",
        identity.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut watch = std::process::Command::new(support::attestation::bin("warrant-verifier"))
        .args(["watch", "--verifier", &verifier.url(), "--identity"])
        .arg(&identity)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = lines_of(&mut watch);
    std::thread::sleep(std::time::Duration::from_millis(500));

    // A node that stays: the agent without --once re-attests every second over mutual TLS.
    let looper = Node::boot("looper", &Boot::good());
    let mut agent = std::process::Command::new(support::attestation::bin("warrant"))
        .args(["agent", "attest", "--verifier", &verifier.url(), "--ca"])
        .arg(verifier.ca_pem())
        .args(["--tcti", &looper.tcti(), "--name", "looper", "--state"])
        .arg(looper.state_dir())
        .arg("--firmware-log")
        .arg(looper.firmware_log_path())
        .arg("--event-log")
        .arg(looper.cel_path())
        .args(["--root-hash", &Boot::good().root_hash, "--ek-intermediate"])
        .arg(support::attestation::swtpm_intermediate())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(30, "three admissions of looper", || {
        let audit = String::from_utf8(verifier.cli(&["audit"]).stdout).unwrap();
        audit
            .lines()
            .filter(|l| l.contains("\"attestation\"") && l.contains("\"admitted\""))
            .count()
            >= 3
    });
    // It did all that confined (src/confine.rs): its seccomp filters (the clone3 one and the
    // allowlist) are installed, and it can never gain privileges again.
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).unwrap();
    for want in ["Seccomp:\t2", "Seccomp_filters:\t2", "NoNewPrivs:\t1"] {
        assert!(status.lines().any(|l| l == want), "{want} in\n{status}");
    }
    // Silence: the agent stops; three missed intervals revoke the node.
    let _ = agent.kill();
    let _ = agent.wait();
    eventually(30, "looper revoked", || {
        node_state(&verifier, "looper") == "revoked"
    });
    // Its certificate no longer opens the door.
    let out = looper.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The agent dropped the dead credential; registering again is refused until an operator
    // removes the node; then its TPM registers anew and, passing a full attestation, is
    // admitted again.
    assert!(!looper.state_dir().join("client.pem").exists());
    let out = looper.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warrant-verifier remove"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed = verifier.cli(&["remove", "looper", "--reason", "machine re-imaged"]);
    assert!(removed.status.success(), "{removed:?}");
    let out = looper.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_json(&out));
    assert_eq!(node_state(&verifier, "looper"), "admitted");
    let audit = String::from_utf8(verifier.cli(&["audit"]).stdout).unwrap();
    assert!(audit.contains("\"removal\""), "{audit}");
    assert!(audit.contains("machine re-imaged"), "{audit}");

    // A node whose re-attestation fails: PCR 15 extended behind Warrant's log.
    let drifter = Node::boot("drifter", &Boot::good());
    let out = drifter.agent(&verifier, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout_json(&out));
    {
        let mut tpm = drifter.tpm();
        let d = measure::alg::HashAlg::Sha256.hash(b"unlogged");
        tpm.extend_digests(15, &[(measure::alg::HashAlg::Sha256, d)])
            .unwrap();
    }
    let out = drifter.agent(&verifier, &[]);
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["verdict"], "revoked", "{report}");
    assert_eq!(node_state(&verifier, "drifter"), "revoked");

    // The watch stream saw it all, with reasons.
    let mut seen = Vec::new();
    eventually(10, "the revocations on the watch stream", || {
        while let Ok(line) = events.try_recv() {
            seen.push(line);
        }
        seen.iter().filter(|l| l.contains("\"revocation\"")).count() >= 2
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let text = seen.join("\n");
    assert!(text.contains("no successful re-attestation"), "{text}");
    assert!(text.contains("re-attestation failed"), "{text}");
    assert!(
        seen.iter()
            .any(|l| l.contains("\"looper\"") && l.contains("\"admitted\"")),
        "{text}"
    );
    // And the webhook received the same decisions, as JSON.
    let mut bodies = Vec::new();
    eventually(10, "the revocations at the webhook", || {
        while let Ok(b) = posted.try_recv() {
            bodies.push(serde_json::from_str::<serde_json::Value>(&b).unwrap());
        }
        bodies.iter().filter(|b| b["kind"] == "revocation").count() >= 2
    });
    assert!(bodies
        .iter()
        .any(|b| b["node_name"] == "drifter" && b["verdict"] == "revoked"));
}

#[test]
fn the_watch_stream_needs_a_certificate() {
    let verifier = verifier_with_golden_policy();
    rt().block_on(async {
        let mut anon = verifier.client(None).await;
        let status = anon.watch(v1::WatchRequest {}).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    });
}

#[test]
fn malformed_registrations_get_clear_errors() {
    let verifier = verifier_with_golden_policy();
    let node = Node::boot("malformed", &Boot::good());
    rt().block_on(async {
        let mut client = verifier.client(None).await;
        let (good, _) = Client::registration(&node);
        type Mutation = Box<dyn Fn(&mut v1::RegisterRequest)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("EK public area", Box::new(|r| r.ek_public.truncate(10))),
            (
                "EK certificate",
                Box::new(|r| r.ek_certificate = vec![0x30, 0x03, 1, 2, 3]),
            ),
            (
                "not the key the EK certificate certifies",
                Box::new(|r| {
                    let n = r.ek_public.len();
                    r.ek_public[n - 5] ^= 1;
                }),
            ),
            ("AK public area", Box::new(|r| r.ak_public = vec![0; 4])),
            (
                "not a DNS name",
                Box::new(|r| r.node_name = "bad name!".into()),
            ),
        ];
        for (want, mutate) in cases {
            let mut req = good.clone();
            mutate(&mut req);
            let status = client.register(req).await.unwrap_err();
            assert!(
                status.message().contains(want),
                "{want}: {:?} {}",
                status.code(),
                status.message()
            );
        }
        // A name taken by another TPM.
        let other = Node::boot("malformed-2", &Boot::good());
        client.register(good).await.unwrap();
        let (mut req, _) = Client::registration(&other);
        req.node_name = "malformed".into();
        let status = client.register(req).await.unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    });
}
