#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
//! Appraisal against real firmware event logs (`measure/testdata/eventlogs`, see its README and
//! `expected.json`): capture from a node's evidence, then appraise that evidence and variations
//! of it. The "quote" is the fixture's expected PCR values (what its TPM quoted) plus PCR 11 and
//! the PCR 15 that Warrant's CEL log replays to.

use measure::alg::HashAlg;
use measure::cel::CelRecord;
use measure::eventlog::{replay, EventLog};
use measure::pcr::PcrBanks;
use policy::appraise::{
    appraise, capture, Appraisal, CheckId, Evidence, VerifiedWarrantLog, WarrantLog,
    WarrantLogError, WarrantMeasurement,
};
use policy::refvalues::{RefValuesError, ReferenceValues};
use serde_json::{json, Value};

const ROOT_A: &str = "48d436350a7e83bde985cd3f7e79fa443557743b42243803ce31104ca4719c5d";
const ROOT_B: &str = "795872ee03859c10dfcc4d67b4b96c85094b340c2d8784783abc2fa12a6ed671";

fn expected_json() -> Value {
    let path = tests::eventlog_fixtures().join("expected.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Warrant's CEL log: two phases and, optionally, a root hash, in PCR 15 (sha1 and sha256).
fn warrant_records(root: Option<&str>) -> Vec<CelRecord> {
    let banks = [HashAlg::Sha1, HashAlg::Sha256];
    let mut texts = vec!["phase:agent-start".to_string()];
    if let Some(r) = root {
        texts.push(format!("verity-root-hash:{r}"));
    }
    texts.push("phase:ready".into());
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| CelRecord::warrant(i as u64, 15, t, &banks))
        .collect()
}

/// A node: its firmware log, the PCRs its TPM quoted, and its verified CEL log.
struct Node {
    log: EventLog,
    /// The fixture's PCR values: what the firmware log is verified against.
    firmware_pcrs: PcrBanks,
    quoted: PcrBanks,
    warrant: VerifiedWarrantLog,
}

fn pcr11(byte: u8) -> Vec<u8> {
    vec![byte; 32]
}

impl Node {
    fn new(fixture: &str, root: Option<&str>, uki: u8) -> Node {
        Node::with_records(fixture, warrant_records(root), uki)
    }

    /// A node whose CEL log holds `records`.
    fn with_records(fixture: &str, records: Vec<CelRecord>, uki: u8) -> Node {
        let dir = tests::eventlog_fixtures();
        let log = EventLog::parse(&std::fs::read(dir.join(fixture)).unwrap()).unwrap();
        let firmware_pcrs = PcrBanks::from_json(&expected_json()[fixture]["pcrs"]).unwrap();
        let cel = measure::cel::replay(&records).unwrap();
        let mut quoted = firmware_pcrs.clone();
        let banks: Vec<HashAlg> = firmware_pcrs.banks().map(|(b, _)| b).collect();
        for bank in banks {
            let v = cel
                .get(bank, 15)
                .map_or_else(|| bank.zero(), <[u8]>::to_vec);
            quoted.set(bank, 15, v);
        }
        if quoted.bank(HashAlg::Sha256).is_some() {
            quoted.set(HashAlg::Sha256, 11, pcr11(uki));
            // IMA's PCR, quoted as every real quote of a policy that appraises IMA is (the
            // verifier proves the list against it before appraisal; here it is the value of
            // a node with no IMA list).
            quoted.set(HashAlg::Sha256, 10, HashAlg::Sha256.zero());
        }
        let warrant = WarrantLog::verify(&records, &quoted).unwrap();
        Node {
            log,
            firmware_pcrs,
            quoted,
            warrant,
        }
    }

    fn run<R>(&self, f: impl FnOnce(&Evidence<'_>) -> R) -> R {
        let verified = replay::verify(&self.log, &self.firmware_pcrs).unwrap();
        let evidence = Evidence {
            quoted: &self.quoted,
            firmware_log: Some(&verified),
            warrant_log: &self.warrant,
            ima: None,
        };
        f(&evidence)
    }

    fn capture(&self) -> ReferenceValues {
        self.run(capture)
    }

    fn appraise(&self, refs: &ReferenceValues) -> Appraisal {
        self.run(|e| appraise(refs, e))
    }
}

fn failures(a: &Appraisal) -> Vec<(CheckId, String)> {
    a.failures().map(|f| (f.check, f.reason.clone())).collect()
}

/// `refs` with its JSON edited by `f`, parsed again (so edits go through the strict parser).
fn edit(refs: &ReferenceValues, f: impl FnOnce(&mut Value)) -> ReferenceValues {
    let mut v: Value = serde_json::from_str(&refs.to_json_pretty()).unwrap();
    f(&mut v);
    ReferenceValues::from_json(v.to_string().as_bytes()).unwrap()
}

#[test]
fn capture_then_appraise_passes_on_every_verifiable_fixture() {
    let exp = expected_json();
    let mut checked = 0;
    for (name, v) in exp.as_object().unwrap() {
        if v["expect"] != "replay-matches" {
            continue;
        }
        let node = Node::new(name, Some(ROOT_A), 0xa1);
        let refs = node.capture();
        let appraisal = node.appraise(&refs);
        assert!(
            appraisal.passed(),
            "{name}: {:#?}\n{}",
            failures(&appraisal),
            refs.to_json_pretty()
        );
        // The document round-trips through the strict parser.
        let again = ReferenceValues::from_json(refs.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(again, refs, "{name}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures checked");
}

#[test]
fn rhel8_capture_describes_the_boot() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    assert_eq!(refs.bank(), HashAlg::Sha256);
    assert_eq!(
        refs.firmware_log_pcrs(),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
    );
    assert!(refs.secure_boot());
    // shim, grub, the kernel.
    assert_eq!(refs.boot_loader_digests().unwrap().len(), 3);
    // EV_S_CRTM_VERSION and GCE's EV_NONHOST_INFO.
    assert_eq!(refs.firmware_digests().unwrap().len(), 2);
    assert!(refs.pk().is_some() && refs.kek().is_some() && refs.db().is_some());
    assert!(
        refs.dbx().is_none(),
        "capture pins dbx entries, not the dbx digest"
    );
    assert!(!refs.dbx_contains().unwrap().is_empty());
    let cmdline = refs.kernel_cmdline().unwrap();
    assert!(cmdline.contains(&"ro".to_string()));
    assert!(cmdline.contains(&"console=ttyS0,38400n8".to_string()));
    assert!(
        !cmdline.iter().any(|p| p.contains("vmlinuz")),
        "the kernel path is not a parameter"
    );
    assert_eq!(refs.root_hashes().unwrap(), &[hex::decode(ROOT_A).unwrap()]);
    assert_eq!(refs.pcr_values()[&11], vec![pcr11(0xa1)]);
    assert_eq!(
        refs.quote_selection(),
        vec![(
            HashAlg::Sha256,
            vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14, 15]
        )]
    );
    let findings = node.appraise(&refs).findings;
    for check in [
        CheckId::PcrSelection,
        CheckId::FirmwareLog,
        CheckId::WarrantLog,
        CheckId::PcrValue,
        CheckId::FirmwareDigest,
        CheckId::BootLoaderDigest,
        CheckId::SecureBoot,
        CheckId::Pk,
        CheckId::Kek,
        CheckId::Db,
        CheckId::Dbx,
        CheckId::RootHash,
        CheckId::KernelCmdline,
    ] {
        assert!(
            findings.iter().any(|f| f.check == check && f.passed),
            "no passing {check} finding"
        );
    }
    // Findings serialize with kebab-case check ids.
    let v = serde_json::to_value(&findings).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "boot-loader-digest"));
}

#[test]
fn other_pcr11_fails() {
    let golden = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = golden.capture();
    let other = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xb2);
    let a = other.appraise(&refs);
    assert!(!a.passed());
    assert_eq!(
        failures(&a),
        vec![(
            CheckId::PcrValue,
            format!(
                "PCR 11 is {}, the policy allows {}",
                "b2".repeat(32),
                "a1".repeat(32)
            )
        )]
    );
    // Two allowed values (an update in progress): both pass.
    let both = edit(&refs, |v| {
        v["pcr_values"]["11"] = json!(["a1".repeat(32), "b2".repeat(32)]);
    });
    assert!(other.appraise(&both).passed());
    assert!(golden.appraise(&both).passed());
}

#[test]
fn secure_boot_off_fails() {
    let node = Node::new("ubuntu-2104-no-secure-boot.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    assert!(!refs.secure_boot());
    assert!(node.appraise(&refs).passed());
    let strict = edit(&refs, |v| v["secure_boot"] = json!(true));
    assert_eq!(
        failures(&node.appraise(&strict)),
        vec![(
            CheckId::SecureBoot,
            "Secure Boot is off (SecureBoot variable is 0)".to_string()
        )]
    );
    // A log where the variable does not exist at all.
    let arch = Node::new("arch-linux-workstation.bin", Some(ROOT_A), 0xa1);
    let refs = edit(&arch.capture(), |v| v["secure_boot"] = json!(true));
    assert_eq!(
        failures(&arch.appraise(&refs)),
        vec![(
            CheckId::SecureBoot,
            "Secure Boot is off (the SecureBoot variable is empty: it does not exist)".to_string()
        )]
    );
    // A Secure Boot log against reference values captured from another machine fails on
    // many checks, and Secure Boot passes.
    let rhel = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let a = rhel.appraise(&strict);
    assert!(!a.passed());
    assert!(a
        .findings
        .iter()
        .any(|f| f.check == CheckId::SecureBoot && f.passed));
}

#[test]
fn unknown_boot_loader_fails() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    let digests = refs.boot_loader_digests().unwrap().to_vec();
    // Only shim and grub are allowed: the kernel is unknown.
    let refs = edit(&refs, |v| {
        v["boot_loader_digests"] = json!([hex::encode(&digests[0]), hex::encode(&digests[1])]);
    });
    let f = failures(&node.appraise(&refs));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, CheckId::BootLoaderDigest);
    assert!(
        f[0].1.ends_with(&format!(
            "digest {} is not in the policy",
            hex::encode(&digests[2])
        )),
        "{}",
        f[0].1
    );
    assert!(f[0].1.contains("EV_EFI_BOOT_SERVICES_APPLICATION, PCR 4"));
}

#[test]
fn firmware_and_key_databases_fail_when_changed() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    let other = "00".repeat(32);
    for (field, check, name) in [
        ("firmware_digests", CheckId::FirmwareDigest, ""),
        ("pk", CheckId::Pk, "PK"),
        ("kek", CheckId::Kek, "KEK"),
        ("db", CheckId::Db, "db"),
        ("dbx", CheckId::Dbx, "dbx"),
    ] {
        let edited = edit(&refs, |v| v[field] = json!([other]));
        let f = failures(&node.appraise(&edited));
        assert!(!f.is_empty(), "{field}");
        for (c, reason) in f {
            assert_eq!(c, check);
            assert!(reason.contains("is not in the policy"), "{reason}");
            assert!(reason.contains(name), "{reason}");
        }
    }
    // A dbx missing a required revocation.
    let edited = edit(&refs, |v| {
        v["dbx_contains"]
            .as_array_mut()
            .unwrap()
            .push(json!("ab".repeat(32)));
    });
    let f = failures(&node.appraise(&edited));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, CheckId::Dbx);
    assert!(f[0].1.contains("lacks 1 of the"), "{}", f[0].1);
    assert!(f[0].1.ends_with(&"ab".repeat(32)), "{}", f[0].1);
}

#[test]
fn root_hash_other_or_missing_fails() {
    let golden = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = golden.capture();
    let other = Node::new("rhel8-uefi.bin", Some(ROOT_B), 0xa1);
    assert_eq!(
        failures(&other.appraise(&refs)),
        vec![(
            CheckId::RootHash,
            format!("dm-verity root hash {ROOT_B} is not in the policy")
        )]
    );
    let none = Node::new("rhel8-uefi.bin", None, 0xa1);
    assert_eq!(
        failures(&none.appraise(&refs)),
        vec![(
            CheckId::RootHash,
            "no dm-verity root hash was measured".to_string()
        )]
    );
    // Without root hashes in the evidence, capture does not require one.
    assert!(none.appraise(&none.capture()).passed());
}

#[test]
fn a_node_whose_dm_verity_found_corruption_is_never_admitted() {
    let golden = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = golden.capture();
    // The same node, but its agent measured what veritysetup status said: corrupted.
    let mut records = warrant_records(Some(ROOT_A));
    let banks = [HashAlg::Sha1, HashAlg::Sha256];
    records.push(CelRecord::warrant(3, 15, "verity-corrupted:root", &banks));
    let corrupted = Node::with_records("rhel8-uefi.bin", records, 0xa1);
    assert_eq!(
        corrupted.warrant.corrupted_devices().collect::<Vec<_>>(),
        vec!["root"]
    );
    let expected = vec![(
        CheckId::RootHash,
        "dm-verity found a corrupted block on root: the read-only image was changed".to_string(),
    )];
    assert_eq!(failures(&corrupted.appraise(&refs)), expected);
    // Even a policy without root hashes (or captured from this very node) does not admit it.
    assert_eq!(
        failures(&corrupted.appraise(&corrupted.capture())),
        expected
    );
}

#[test]
fn kernel_cmdline_parameters() {
    let node = Node::new("ubuntu-2104-no-secure-boot.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    let edited = edit(&refs, |v| {
        v["kernel_cmdline"] = json!(["ro", "lockdown=integrity", "panic=0"]);
    });
    let f = failures(&node.appraise(&edited));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, CheckId::KernelCmdline);
    assert!(
        f[0].1.starts_with("kernel command line (event "),
        "{}",
        f[0].1
    );
    assert!(
        f[0].1.ends_with(
            ", PCR 8): `lockdown=integrity` is missing; `panic=0` is required, but the command line's last `panic` is `panic=-1`"
        ),
        "{}",
        f[0].1
    );
    // Quoted parameters (COS's dm= table) are one parameter.
    let cos = Node::new("cos-101-amd-sev.bin", Some(ROOT_A), 0xa1);
    let refs = cos.capture();
    let cmdline = refs.kernel_cmdline().unwrap();
    assert!(cmdline
        .iter()
        .any(|p| p.starts_with("\"dm=1 vroot none ro")));
    assert!(cmdline.contains(&"module.sig_enforce=1".to_string()));
    // "console=tty1 console=ttyS0": only the last console is the effective value.
    assert!(cmdline.contains(&"console=ttyS0".to_string()));
    assert!(!cmdline.contains(&"console=tty1".to_string()));
    assert!(cos.appraise(&refs).passed());
}

#[test]
fn systemd_stub_command_line_in_pcr12() {
    let node = Node::new("event-sd-boot-fedora37.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    assert!(refs.firmware_log_pcrs().contains(&12));
    assert_eq!(
        refs.kernel_cmdline().unwrap(),
        // "console=ttyS0 console=tty0 efi=debug": the last console wins.
        &["console=tty0".to_string(), "efi=debug".to_string()]
    );
    let a = node.appraise(&refs);
    assert!(a.passed(), "{:#?}", failures(&a));
    assert_eq!(
        a.findings
            .iter()
            .filter(|f| f.check == CheckId::KernelCmdline)
            .count(),
        2,
        "both PCR 12 command lines are checked"
    );
}

#[test]
fn firmware_log_must_be_present_and_match_the_quote() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    let a = appraise(
        &refs,
        &Evidence {
            quoted: &node.quoted,
            firmware_log: None,
            warrant_log: &node.warrant,
            ima: None,
        },
    );
    assert_eq!(
        failures(&a),
        vec![(
            CheckId::FirmwareLog,
            "no firmware event log was provided; the reference values verify PCRs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14] with one"
                .to_string()
        )]
    );
    // A log verified against other values than the quote's.
    let mut quoted = node.quoted.clone();
    quoted.set(HashAlg::Sha256, 0, vec![7; 32]);
    let a = node.run(|e| {
        appraise(
            &refs,
            &Evidence {
                quoted: &quoted,
                ..*e
            },
        )
    });
    let f = failures(&a);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, CheckId::FirmwareLog);
    assert!(f[0]
        .1
        .contains(&format!("PCR 0 is quoted as {}", "07".repeat(32))));
    // A quote without PCR 11.
    let mut quoted = PcrBanks::new();
    for (bank, pcrs) in node.quoted.banks() {
        for (p, v) in pcrs {
            if !(bank == HashAlg::Sha256 && *p == 11) {
                quoted.set(bank, *p, v.clone());
            }
        }
    }
    let a = node.run(|e| {
        appraise(
            &refs,
            &Evidence {
                quoted: &quoted,
                ..*e
            },
        )
    });
    assert_eq!(
        failures(&a),
        vec![
            (
                CheckId::PcrSelection,
                "PCR 11 was not quoted in the sha256 bank".to_string()
            ),
            (
                CheckId::PcrValue,
                "PCR 11 was not quoted in the sha256 bank".to_string()
            ),
        ]
    );
}

#[test]
fn warrant_log_must_match_pcr15() {
    let records = warrant_records(Some(ROOT_A));
    let cel = measure::cel::replay(&records).unwrap();
    let mut quoted = PcrBanks::new();
    quoted.set(
        HashAlg::Sha256,
        15,
        cel.get(HashAlg::Sha256, 15).unwrap().to_vec(),
    );
    let verified = WarrantLog::verify(&records, &quoted).unwrap();
    assert_eq!(
        verified.root_hashes().collect::<Vec<_>>(),
        vec![hex::decode(ROOT_A).unwrap().as_slice()]
    );
    assert_eq!(
        verified.phases().collect::<Vec<_>>(),
        vec!["agent-start", "ready"]
    );
    assert!(matches!(
        verified.events()[1].measurement,
        WarrantMeasurement::VerityRootHash { .. }
    ));

    // One record fewer than the TPM saw.
    let err = WarrantLog::verify(&records[..2], &quoted).unwrap_err();
    match &err {
        WarrantLogError::Mismatch {
            pcr: 15,
            bank: HashAlg::Sha256,
            quoted: q,
            replayed,
        } => {
            assert_eq!(q, &cel.get(HashAlg::Sha256, 15).unwrap().to_vec());
            assert_ne!(q, replayed);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("PCR 15 (sha256) is quoted as "));

    // An empty log means PCR 15 was never extended.
    let mut zero = PcrBanks::new();
    zero.set(HashAlg::Sha256, 15, vec![0; 32]);
    assert!(WarrantLog::verify(&[], &zero).unwrap().events().is_empty());
    assert!(matches!(
        WarrantLog::verify(&[], &quoted),
        Err(WarrantLogError::Mismatch { pcr: 15, .. })
    ));
    // PCR 15 must be quoted.
    let mut no15 = PcrBanks::new();
    no15.set(HashAlg::Sha256, 0, vec![0; 32]);
    assert_eq!(
        WarrantLog::verify(&records, &no15),
        Err(WarrantLogError::Pcr15NotQuoted)
    );
    // Only Warrant's two kinds of measurement.
    let odd = [CelRecord::warrant(0, 15, "hello", &[HashAlg::Sha256])];
    let mut q = PcrBanks::new();
    q.set(
        HashAlg::Sha256,
        15,
        measure::cel::replay(&odd)
            .unwrap()
            .get(HashAlg::Sha256, 15)
            .unwrap()
            .to_vec(),
    );
    assert!(matches!(
        WarrantLog::verify(&odd, &q),
        Err(WarrantLogError::UnknownMeasurement { recnum: 0, .. })
    ));
    // A record whose content was changed after it was measured.
    let mut forged = records.clone();
    forged[1].content = json!({"string": format!("verity-root-hash:{ROOT_B}")});
    assert!(matches!(
        WarrantLog::verify(&forged, &quoted),
        Err(WarrantLogError::Cel(_))
    ));
}

#[test]
fn warrant_log_verified_against_another_quote_fails() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    let other = Node::new("rhel8-uefi.bin", Some(ROOT_B), 0xa1);
    let a = node.run(|e| {
        appraise(
            &refs,
            &Evidence {
                warrant_log: &other.warrant,
                ..*e
            },
        )
    });
    let f = failures(&a);
    assert!(f
        .iter()
        .any(|(c, r)| *c == CheckId::WarrantLog && r.contains("but the quote has")));
}

fn parse_err(v: Value) -> RefValuesError {
    ReferenceValues::from_json(v.to_string().as_bytes()).unwrap_err()
}

#[test]
fn strict_parsing() {
    let base = || json!({"schema": "warrant-reference-values/1", "secure_boot": true});
    let ok = ReferenceValues::from_json(base().to_string().as_bytes()).unwrap();
    assert_eq!(ok.bank(), HashAlg::Sha256);
    assert_eq!(
        ok.firmware_log_pcrs(),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
    );
    assert_eq!(
        ok.quote_selection(),
        vec![(HashAlg::Sha256, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 15])]
    );
    let with = |k: &str, val: Value| {
        let mut v = base();
        v[k] = val;
        v
    };
    let d32 = "ab".repeat(32);

    assert!(matches!(
        parse_err(with("schema", json!("warrant-reference-values/2"))),
        RefValuesError::Schema { .. }
    ));
    let e = parse_err(with("boot_loader", json!([d32])));
    assert!(
        matches!(&e, RefValuesError::Json { reason } if reason.contains("unknown field `boot_loader`")),
        "{e}"
    );
    let mut missing = base();
    missing.as_object_mut().unwrap().remove("secure_boot");
    assert!(
        matches!(parse_err(missing), RefValuesError::Json { reason } if reason.contains("secure_boot"))
    );
    assert!(matches!(
        parse_err(with("bank", json!("md5"))),
        RefValuesError::UnknownBank { .. }
    ));
    assert_eq!(
        parse_err(with("boot_loader_digests", json!(["zz"]))),
        RefValuesError::BadHex {
            field: "boot_loader_digests".into(),
            index: 0
        }
    );
    let e = parse_err(with("db", json!([d32, "ab".repeat(20)])));
    assert_eq!(
        e,
        RefValuesError::BadLength {
            field: "db".into(),
            index: 1,
            len: 20,
            expected: "but sha256 digests are 32 bytes".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "reference values: db[1] is 20 bytes, but sha256 digests are 32 bytes"
    );
    // In a sha1 policy, sha256-sized digests are wrong.
    let mut sha1 = with("bank", json!("sha1"));
    sha1["pk"] = json!([d32]);
    assert!(matches!(
        parse_err(sha1),
        RefValuesError::BadLength { len: 32, .. }
    ));
    for pcr in ["24", "01", "x", "-1", ""] {
        assert!(
            matches!(
                parse_err(with("pcr_values", json!({pcr: [d32]}))),
                RefValuesError::BadPcr { .. }
            ),
            "{pcr}"
        );
    }
    assert!(matches!(
        parse_err(with("firmware_log_pcrs", json!([0, 24]))),
        RefValuesError::BadPcr { .. }
    ));
    assert!(matches!(
        parse_err(with("firmware_log_pcrs", json!([0, 0]))),
        RefValuesError::DuplicatePcr { pcr: 0, .. }
    ));
    assert!(matches!(
        parse_err(with("pcr_values", json!({"15": [d32]}))),
        RefValuesError::WarrantPcr { pcr: 15, .. }
    ));
    for field in [
        "firmware_digests",
        "boot_loader_digests",
        "pk",
        "kek",
        "db",
        "dbx",
        "dbx_contains",
        "root_hashes",
        "kernel_cmdline",
    ] {
        assert_eq!(
            parse_err(with(field, json!([]))),
            RefValuesError::EmptyList {
                field: field.into()
            }
        );
    }
    assert_eq!(
        parse_err(with("pcr_values", json!({"11": []}))),
        RefValuesError::EmptyList {
            field: "pcr_values.11".into()
        }
    );
    assert_eq!(
        parse_err(with("ima", json!({"file_digests": []}))),
        RefValuesError::EmptyList {
            field: "ima.file_digests".into()
        }
    );
    // Checks on events of PCRs whose log is not verified.
    let e = parse_err(with("firmware_log_pcrs", json!([0, 4])));
    assert_eq!(
        e,
        RefValuesError::PcrNotInLog {
            field: "secure_boot".into(),
            pcr: "7".into()
        }
    );
    let mut v = with("firmware_log_pcrs", json!([0, 7]));
    v["kernel_cmdline"] = json!(["ro"]);
    assert!(matches!(parse_err(v), RefValuesError::PcrNotInLog { .. }));
    // Kernel parameters and IMA digests.
    assert!(matches!(
        parse_err(with("kernel_cmdline", json!(["ro quiet"]))),
        RefValuesError::BadCmdlineParameter { index: 0, .. }
    ));
    assert!(matches!(
        parse_err(with("kernel_cmdline", json!([""]))),
        RefValuesError::BadCmdlineParameter { .. }
    ));
    for bad in [
        "sha256",
        "md6:00",
        &format!("sha256:{}", "ab".repeat(20)),
        "sha1:zz",
    ] {
        assert!(
            matches!(
                parse_err(with("ima", json!({"file_digests": [bad]}))),
                RefValuesError::BadImaDigest { .. }
            ),
            "{bad}"
        );
    }
    let good = with(
        "ima",
        json!({"file_digests": [format!("sha256:{d32}")], "extra": 1}),
    );
    assert!(matches!(parse_err(good), RefValuesError::Json { .. }));
    assert!(matches!(
        ReferenceValues::from_json(b"not json"),
        Err(RefValuesError::Json { .. })
    ));
}

#[test]
fn example_document_parses() {
    // The example of docs/reference-values.md.
    let d = |b: u8| hex::encode([b; 32]);
    let doc = json!({
        "schema": "warrant-reference-values/1",
        "bank": "sha256",
        "firmware_log_pcrs": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14],
        "pcr_values": {"11": [d(1), d(2)]},
        "firmware_digests": [d(3)],
        "boot_loader_digests": [d(4), d(5)],
        "secure_boot": true,
        "pk": [d(6)], "kek": [d(7)], "db": [d(8)],
        "dbx_contains": [d(9)],
        "root_hashes": [d(10)],
        "kernel_cmdline": ["module.sig_enforce=1", "lockdown=integrity", "ro"],
        "ima": {"file_digests": [format!("sha256:{}", d(11))]}
    });
    let refs = ReferenceValues::from_json(doc.to_string().as_bytes()).unwrap();
    assert!(refs.wants_ima());
    assert_eq!(
        refs.quote_selection(),
        vec![(
            HashAlg::Sha256,
            vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15]
        )]
    );
    let back: Value = serde_json::from_str(&refs.to_json_pretty()).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn ima_required_but_missing_fails() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    let refs = edit(&node.capture(), |v| v["ima"] = json!({}));
    assert!(refs.wants_ima());
    assert_eq!(
        failures(&node.appraise(&refs)),
        vec![(
            CheckId::Ima,
            "no IMA measurement list was provided".to_string()
        )]
    );
}

#[test]
fn sha1_only_log_is_appraised_in_sha1() {
    let node = Node::new("debian-10.bin", Some(ROOT_A), 0xa1);
    let refs = node.capture();
    assert_eq!(refs.bank(), HashAlg::Sha1);
    assert!(refs.secure_boot());
    assert!(node.appraise(&refs).passed());
}

fn ima_list(name: &str) -> measure::ima::VerifiedImaList {
    use measure::ima::{ImaList, ReplayMode};
    let path = tests::workspace_root()
        .join("measure/testdata/ima")
        .join(name);
    let list = ImaList::parse_binary(&std::fs::read(path).unwrap()).unwrap();
    let mode = ReplayMode::PerBankTemplateHash;
    let r = measure::ima::replay(&list, &[HashAlg::Sha256], mode).unwrap();
    measure::ima::verify(&list, &r.pcrs, mode).unwrap()
}

#[test]
fn ima_file_digests() {
    let node = Node::new("rhel8-uefi.bin", Some(ROOT_A), 0xa1);
    // Two violations (entries 10 and 11): their file digests are bound to nothing.
    let ima = ima_list("synthetic-main-le.bin");
    assert_eq!(ima.violations(), &[10, 11]);
    let with_ima = |refs: &ReferenceValues| {
        node.run(|e| {
            appraise(
                refs,
                &Evidence {
                    ima: Some(&ima),
                    ..*e
                },
            )
        })
    };
    // Capture can only require the list to be there.
    let refs = node.run(|e| {
        capture(&Evidence {
            ima: Some(&ima),
            ..*e
        })
    });
    assert!(refs.ima().unwrap().file_digests().is_none());
    assert!(with_ima(&refs).passed());

    // Allow every bound digest but one.
    let mut digests: Vec<String> = ima
        .entries()
        .iter()
        .filter(|e| !ima.violations().contains(&e.number))
        .filter(|e| e.template.name().map(|n| n.as_bytes()) != Some(&b"boot_aggregate"[..]))
        .filter_map(|e| e.template.file_digest())
        .map(|d| format!("{}:{}", d.algorithm, hex::encode(d.digest)))
        .collect();
    let dropped = digests.pop().unwrap();
    let refs = edit(&refs, |v| v["ima"] = json!({ "file_digests": digests }));
    let f = failures(&with_ima(&refs));
    assert_eq!(f.len(), 3, "{f:#?}");
    assert!(f.iter().all(|(c, _)| *c == CheckId::Ima));
    assert!(f[0].1.starts_with("IMA entry 10 "), "{}", f[0].1);
    assert!(f[0]
        .1
        .ends_with("is a violation: its file digest is bound to nothing"));
    assert!(
        f[2].1
            .ends_with(&format!("file digest {dropped} is not in the policy")),
        "{}",
        f[2].1
    );
}
