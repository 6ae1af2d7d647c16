//! Unit tests of the IMA parsers, template hashes, replay and boot aggregate. The lists here
//! are built field by field following `ima_fs.c`; `testdata/ima/` holds real and generated ones.

use super::replay::BankPcrs;
use super::*;
use std::collections::BTreeMap;

const LE: ByteOrder = ByteOrder::Little;
const BE: ByteOrder = ByteOrder::Big;

fn u32b(order: ByteOrder, v: usize) -> [u8; 4] {
    order.u32_bytes(u32::try_from(v).unwrap())
}

/// Template data: every field with its u32 length.
fn tdata(order: ByteOrder, fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&u32b(order, f.len()));
        out.extend_from_slice(f);
    }
    out
}

fn dng(algo: &str, digest: &[u8]) -> Vec<u8> {
    let mut v = algo.as_bytes().to_vec();
    v.extend_from_slice(b":\0");
    v.extend_from_slice(digest);
    v
}

fn nng(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// A binary entry of a length-prefixed template; the template hash is SHA-1 of the data unless
/// `hash` is given.
fn entry(order: ByteOrder, pcr: u32, name: &str, data: &[u8], hash: Option<Vec<u8>>) -> Vec<u8> {
    let hash = hash.unwrap_or_else(|| HashAlg::Sha1.hash(data));
    let mut out = order.u32_bytes(pcr).to_vec();
    out.extend_from_slice(&hash);
    out.extend_from_slice(&u32b(order, name.len()));
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&u32b(order, data.len()));
    out.extend_from_slice(data);
    out
}

/// A binary entry of the `ima` template, with the name field written `n_field_len` long.
fn ima_entry(order: ByteOrder, digest: &[u8; 20], name: &str, padded: bool) -> Vec<u8> {
    let mut padded_name = name.as_bytes().to_vec();
    padded_name.resize(256, 0);
    let hash = HashAlg::Sha1.hash_parts(&[digest, &padded_name]);
    let mut out = order.u32_bytes(10).to_vec();
    out.extend_from_slice(&hash);
    out.extend_from_slice(&u32b(order, 3));
    out.extend_from_slice(b"ima");
    out.extend_from_slice(digest);
    let n: &[u8] = if padded {
        &padded_name
    } else {
        name.as_bytes()
    };
    out.extend_from_slice(&u32b(order, n.len()));
    out.extend_from_slice(n);
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    HashAlg::Sha256.hash(data)
}

fn ng_data(order: ByteOrder, path: &str) -> Vec<u8> {
    tdata(order, &[dng("sha256", &sha256(path.as_bytes())), nng(path)])
}

/// A small list covering every decoded template, a violation and an unknown template.
fn sample_fields(order: ByteOrder) -> Vec<(u32, &'static str, Vec<u8>, bool)> {
    let boot = tdata(order, &[dng("sha256", &[0x11; 32]), nng("boot_aggregate")]);
    let sig = tdata(
        order,
        &[
            dng("sha256", &[0x22; 32]),
            nng("/usr/bin/true"),
            vec![3, 2, 1, 0],
        ],
    );
    let nosig = tdata(
        order,
        &[dng("sha512", &[0x33; 64]), nng("/etc/passwd"), vec![]],
    );
    let buf = tdata(
        order,
        &[
            dng("sha256", &sha256(b"ro quiet")),
            nng("kexec-cmdline"),
            b"ro quiet".to_vec(),
        ],
    );
    let modsig = tdata(
        order,
        &[
            dng("sha256", &[0x44; 32]),
            nng("/lib/modules/x.ko"),
            vec![],
            dng("sha256", &[0x55; 32]),
            vec![0x30, 0x82],
        ],
    );
    let nomodsig = tdata(
        order,
        &[
            dng("sha1", &[0x66; 20]),
            nng("/lib/modules/y.ko"),
            vec![],
            vec![],
            vec![],
        ],
    );
    let v2 = {
        let mut d = b"verity:".to_vec();
        d.extend(dng("sha256", &[0x77; 32]));
        tdata(order, &[d, nng("/usr/bin/verity")])
    };
    let violation = tdata(
        order,
        &[dng("sha256", &[0; 20]), nng("/var/log/open-writer")],
    );
    let other = tdata(
        order,
        &[dng("sha256", &[0x88; 32]), nng("/custom"), vec![0, 0, 0, 0]],
    );
    vec![
        (10, "ima-ng", boot, false),
        (10, "ima-sig", sig, false),
        (10, "ima-sig", nosig, false),
        (10, "ima-buf", buf, false),
        (10, "ima-modsig", modsig, false),
        (10, "ima-modsig", nomodsig, false),
        (10, "ima-ngv2", v2, false),
        (10, "ima-ng", violation, true),
        (11, "d-ng|n-ng|iuid", other, false),
    ]
}

fn sample_binary(order: ByteOrder) -> Vec<u8> {
    let mut out = Vec::new();
    for (pcr, name, data, violation) in sample_fields(order) {
        let hash = violation.then(|| vec![0; 20]);
        out.extend(entry(order, pcr, name, &data, hash));
    }
    out
}

#[test]
fn binary_list_decodes_every_template() {
    let bytes = sample_binary(LE);
    let list = ImaList::parse_binary(&bytes).unwrap();
    assert_eq!(list.format, ListFormat::Binary);
    assert_eq!(list.byte_order, LE);
    assert_eq!(list.entries.len(), 9);
    assert_eq!(list.entries[0].location, Location::Offset(0));
    match &list.entries[0].template {
        Template::ImaNg { digest, name } => {
            assert_eq!(digest.algorithm, "sha256");
            assert_eq!(digest.hash_alg(), Some(HashAlg::Sha256));
            assert_eq!(name.as_bytes(), b"boot_aggregate");
        }
        t => panic!("{t:?}"),
    }
    assert!(
        matches!(&list.entries[1].template, Template::ImaSig { signature, .. } if signature == &[3, 2, 1, 0])
    );
    assert!(
        matches!(&list.entries[2].template, Template::ImaSig { signature, digest, .. }
        if signature.is_empty() && digest.algorithm == "sha512")
    );
    assert!(
        matches!(&list.entries[3].template, Template::ImaBuf { buffer, .. } if buffer == b"ro quiet")
    );
    assert!(
        matches!(&list.entries[4].template, Template::ImaModsig { modsig_digest: Some(d), modsig, .. }
        if d.digest == [0x55; 32] && modsig == &[0x30, 0x82])
    );
    assert!(matches!(
        &list.entries[5].template,
        Template::ImaModsig {
            modsig_digest: None,
            ..
        }
    ));
    assert!(
        matches!(&list.entries[6].template, Template::ImaNgV2 { digest, .. }
        if digest.digest_type == Some(DigestType::Verity))
    );
    assert!(list.entries[7].violation);
    assert_eq!(list.entries[8].pcr, 11);
    assert!(
        matches!(&list.entries[8].template, Template::Other { fields: OtherFields::Binary(f) } if f.len() == 3)
    );
    assert_eq!(list.unknown_templates(), vec![8]);

    let report = list.check_template_hashes();
    assert_eq!(report.matched, 8);
    assert_eq!(report.violations, vec![7]);
    assert!(report.all_match(), "{report:?}");
}

#[test]
fn big_endian_lists_are_detected_and_hash_with_big_endian_lengths() {
    let bytes = sample_binary(BE);
    let list = ImaList::parse_binary(&bytes).unwrap();
    assert_eq!(list.byte_order, BE);
    assert_eq!(list.entries.len(), 9);
    assert!(list.check_template_hashes().all_match());
    // Forcing the wrong order fails cleanly.
    let forced = BinaryOptions {
        byte_order: Some(LE),
        ..BinaryOptions::default()
    };
    assert!(ImaList::parse_binary_with(&bytes, forced).is_err());
}

#[test]
fn ima_template_binary_both_name_encodings() {
    let digest = [0xab; 20];
    for padded in [false, true] {
        let bytes = ima_entry(LE, &digest, "/sbin/init", padded);
        let list = ImaList::parse_binary(&bytes).unwrap();
        let e = &list.entries[0];
        assert!(
            matches!(&e.template, Template::Ima { digest: d, name } if d == &digest && name.as_bytes() == b"/sbin/init")
        );
        assert_eq!(
            e.check_template_hash(HashAlg::Sha1),
            TemplateHashCheck::Match
        );
        assert_eq!(e.hashed_template_data().unwrap().len(), 20 + 256);
    }
    // A 257-byte name field cannot come from the kernel.
    let mut bytes = ima_entry(LE, &digest, "x", false);
    let n_at = 4 + 20 + 4 + 3 + 20;
    bytes[n_at..n_at + 4].copy_from_slice(&257u32.to_le_bytes());
    bytes.extend(vec![b'x'; 256]);
    assert!(matches!(
        ImaList::parse_binary(&bytes),
        Err(ImaError::NameTooLong {
            at: Location::Offset(51),
            ..
        })
    ));
}

#[test]
fn every_truncation_fails_or_stops_at_an_entry_boundary() {
    let bytes = sample_binary(LE);
    let full = ImaList::parse_binary(&bytes).unwrap();
    let boundaries: Vec<usize> = full
        .entries
        .iter()
        .map(|e| match e.location {
            Location::Offset(o) => o,
            Location::Line(_) => unreachable!(),
        })
        .chain([bytes.len()])
        .collect();
    for cut in 0..bytes.len() {
        let result = ImaList::parse_binary_with(
            &bytes[..cut],
            BinaryOptions {
                byte_order: Some(LE),
                ..Default::default()
            },
        );
        if let Some(n) = boundaries.iter().position(|b| *b == cut) {
            assert_eq!(result.unwrap().entries.len(), n, "cut {cut}");
        } else {
            assert!(result.is_err(), "cut {cut} parsed");
        }
    }
}

#[test]
fn oversized_lengths_are_rejected_before_allocation() {
    // Template name length: 0, 256 and u32::MAX.
    for len in [0u32, 256, u32::MAX] {
        let mut bytes = 10u32.to_le_bytes().to_vec();
        bytes.extend([1; 20]);
        bytes.extend(len.to_le_bytes());
        bytes.extend(b"ima-ng");
        let err = ImaList::parse_binary_with(
            &bytes,
            BinaryOptions {
                byte_order: Some(LE),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            ImaError::TemplateNameLength {
                at: Location::Offset(24),
                len: len.into(),
                max: 255
            }
        );
    }
    // Template data length above the cap.
    let mut bytes = entry(LE, 10, "ima-ng", &ng_data(LE, "/a"), None);
    let at = 4 + 20 + 4 + 6;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ImaList::parse_binary(&bytes),
        Err(ImaError::TemplateDataTooLarge {
            at: Location::Offset(34),
            max: MAX_TEMPLATE_DATA_LEN,
            ..
        })
    ));
    // Template data length within the cap but beyond the input.
    bytes[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        ImaList::parse_binary(&bytes),
        Err(ImaError::Codec {
            number: 0,
            source: crate::codec::CodecError::Truncated {
                offset: 38,
                needed: 1000,
                ..
            }
        })
    ));
    // A field length beyond the template data.
    let mut data = ng_data(LE, "/a");
    data[..4].copy_from_slice(&500u32.to_le_bytes());
    assert!(matches!(
        ImaList::parse_binary(&entry(LE, 10, "ima-ng", &data, None)),
        Err(ImaError::Codec {
            source: crate::codec::CodecError::Truncated {
                offset: 42,
                needed: 500,
                ..
            },
            ..
        })
    ));
    // More fields than IMA_TEMPLATE_NUM_FIELDS_MAX.
    let data = tdata(LE, &vec![vec![]; 16]);
    assert!(matches!(
        ImaList::parse_binary(&entry(LE, 10, "custom", &data, None)),
        Err(ImaError::TooManyFields { max: 15, .. })
    ));
}

#[test]
fn malformed_fields_are_typed_errors_with_offsets() {
    let parse = |fields: &[Vec<u8>], template: &str| {
        ImaList::parse_binary(&entry(LE, 10, template, &tdata(LE, fields), None))
    };
    // d-ng field starts at 4+20+4+6+4 = 38, its bytes at 42.
    assert_eq!(
        parse(&[b"sha256".to_vec(), nng("/a")], "ima-ng"),
        Err(ImaError::DigestField {
            at: Location::Offset(42),
            field: "d-ng"
        })
    );
    assert_eq!(
        parse(&[dng("sha257", &[0; 32]), nng("/a")], "ima-ng"),
        Err(ImaError::UnknownDigestAlgorithm {
            at: Location::Offset(42),
            field: "d-ng",
            algorithm: "sha257".into()
        })
    );
    assert_eq!(
        parse(&[dng("sha256", &[1; 31]), nng("/a")], "ima-ng"),
        Err(ImaError::DigestLength {
            at: Location::Offset(42),
            field: "d-ng",
            algorithm: "sha256",
            len: 31,
            expected: 32
        })
    );
    let d = dng("sha1", &[1; 20]);
    let n_at = 42 + d.len() + 4;
    assert_eq!(
        parse(&[d.clone(), b"/a".to_vec()], "ima-ng"),
        Err(ImaError::NameNotTerminated {
            at: Location::Offset(n_at),
            field: "n-ng"
        })
    );
    assert_eq!(
        parse(&[d.clone(), b"/a\0b\0".to_vec()], "ima-ng"),
        Err(ImaError::NameHasNul {
            at: Location::Offset(n_at),
            field: "n-ng"
        })
    );
    assert!(matches!(
        parse(&[d.clone(), nng("/a")], "ima-sig"),
        Err(ImaError::FieldCount {
            expected: 3,
            found: 2,
            ..
        })
    ));
    assert!(matches!(
        parse(std::slice::from_ref(&d), "ima-ng"),
        Err(ImaError::FieldCount {
            expected: 2,
            found: 1,
            ..
        })
    ));
    let mut bad_type = b"fsverity:".to_vec();
    bad_type.extend(dng("sha256", &[0; 32]));
    assert!(matches!(
        parse(&[bad_type, nng("/a")], "ima-ngv2"),
        Err(ImaError::UnknownDigestType { .. })
    ));
    // Template names must be printable ASCII.
    assert!(matches!(
        parse(&[d, nng("/a")], "ima ng"),
        Err(ImaError::TemplateName {
            at: Location::Offset(24)
        })
    ));
}

/// The ASCII line the kernel prints for an entry (`ima_ascii_measurements_show`).
fn ascii_line(pcr: u32, hash: &[u8], name: &str, printed_fields: &[String]) -> String {
    let mut line = format!("{pcr:2} {} {name}", hex::encode(hash));
    for f in printed_fields {
        line.push(' ');
        line.push_str(f);
    }
    line.push('\n');
    line
}

fn sample_ascii() -> String {
    let list = ImaList::parse_binary(&sample_binary(LE)).unwrap();
    let mut text = String::new();
    for e in &list.entries {
        let printed: Vec<String> = match &e.template {
            Template::ImaNg { digest, name } | Template::ImaNgV2 { digest, name } => {
                vec![print_digest(digest), name.to_string()]
            }
            Template::ImaSig {
                digest,
                name,
                signature,
            }
            | Template::ImaSigV2 {
                digest,
                name,
                signature,
            } => vec![
                print_digest(digest),
                name.to_string(),
                hex::encode(signature),
            ],
            Template::ImaBuf {
                digest,
                name,
                buffer,
            } => vec![print_digest(digest), name.to_string(), hex::encode(buffer)],
            Template::ImaModsig {
                digest,
                name,
                signature,
                modsig_digest,
                modsig,
            } => vec![
                print_digest(digest),
                name.to_string(),
                hex::encode(signature),
                modsig_digest.as_ref().map(print_digest).unwrap_or_default(),
                hex::encode(modsig),
            ],
            Template::Other { .. } => vec!["sha256:88".into(), "/custom".into(), "0".into()],
            Template::Ima { .. } => unreachable!(),
        };
        text.push_str(&ascii_line(
            e.pcr,
            &e.template_hash,
            &e.template_name,
            &printed,
        ));
    }
    text
}

fn print_digest(d: &FileDigest) -> String {
    let t = match d.digest_type {
        Some(DigestType::Ima) => "ima:",
        Some(DigestType::Verity) => "verity:",
        None => "",
    };
    format!("{t}{}:{}", d.algorithm, hex::encode(&d.digest))
}

#[test]
fn ascii_list_matches_binary_list() {
    let binary = ImaList::parse_binary(&sample_binary(LE)).unwrap();
    let text = sample_ascii();
    // The kernel's empty fields leave trailing spaces.
    assert!(text.contains("/etc/passwd \n"));
    assert!(text.contains("/lib/modules/y.ko   \n"));
    let ascii = ImaList::parse_ascii(text.as_bytes()).unwrap();
    assert_eq!(ascii.format, ListFormat::Ascii);
    assert_eq!(ascii.template_hash_algorithm, HashAlg::Sha1);
    assert_eq!(ascii.entries.len(), binary.entries.len());
    for (a, b) in ascii.entries.iter().zip(&binary.entries).take(8) {
        assert_eq!(a.location, Location::Line(a.number + 1));
        assert_eq!(a.template, b.template, "entry {}", a.number);
        assert_eq!(
            a.hashed_template_data(),
            b.hashed_template_data(),
            "entry {}",
            a.number
        );
    }
    let report = ascii.check_template_hashes();
    assert_eq!(report.matched, 7);
    assert_eq!(report.violations, vec![7]);
    assert_eq!(report.not_recomputable, vec![8]);
    assert!(report.mismatches.is_empty());
}

#[test]
fn ascii_pcr_padding_and_tolerated_missing_trailing_fields() {
    let data = tdata(
        LE,
        &[dng("sha256", &[0x99; 32]), nng("boot_aggregate"), vec![]],
    );
    let hash = HashAlg::Sha1.hash(&data);
    let with_space = format!(
        " 9 {} ima-sig sha256:{} boot_aggregate \n",
        hex::encode(&hash),
        hex::encode([0x99; 32])
    );
    let without = with_space.replace("aggregate \n", "aggregate");
    for text in [with_space, without] {
        let list = ImaList::parse_ascii(text.as_bytes()).unwrap();
        assert_eq!(list.entries[0].pcr, 9);
        assert!(list.check_template_hashes().all_match());
    }
}

#[test]
fn ascii_bank_is_detected_from_the_template_hash_length() {
    let data = ng_data(LE, "/usr/bin/bash");
    for alg in [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        let line = format!(
            "10 {} ima-ng sha256:{} /usr/bin/bash\n",
            hex::encode(alg.hash(&data)),
            hex::encode(sha256(b"/usr/bin/bash"))
        );
        let list = ImaList::parse_ascii(line.as_bytes()).unwrap();
        assert_eq!(list.template_hash_algorithm, alg);
        assert!(list.check_template_hashes().all_match());
    }
    // SM3 has the length of SHA-256: the option says which.
    let line = format!(
        "10 {} ima-ng sha256:{} /usr/bin/bash\n",
        hex::encode(HashAlg::Sm3_256.hash(&data)),
        hex::encode(sha256(b"/usr/bin/bash"))
    );
    let as_sha256 = ImaList::parse_ascii(line.as_bytes()).unwrap();
    assert_eq!(as_sha256.check_template_hashes().mismatches.len(), 1);
    let opts = AsciiOptions {
        template_hash_algorithm: Some(HashAlg::Sm3_256),
        ..Default::default()
    };
    assert!(ImaList::parse_ascii_with(line.as_bytes(), opts)
        .unwrap()
        .check_template_hashes()
        .all_match());
}

#[test]
fn ascii_errors_name_their_line() {
    let good = format!(
        "10 {} ima-ng sha1:{} /a\n",
        hex::encode([1; 20]),
        hex::encode([2; 20])
    );
    let cases: Vec<(String, ImaError)> = vec![
        (
            format!("{good}\n{good}"),
            ImaError::EmptyLine {
                at: Location::Line(2),
            },
        ),
        (
            format!("{good}x0 {}", &good[3..]),
            ImaError::Pcr {
                at: Location::Line(2),
            },
        ),
        (
            format!("{good}10 zz ima-ng sha1:00 /a\n"),
            ImaError::Hex {
                at: Location::Line(2),
                field: "template hash",
            },
        ),
        (
            format!(
                "{good}10 {} ima-ng sha1:{} /a\n",
                hex::encode([1; 32]),
                hex::encode([2; 20])
            ),
            ImaError::TemplateHashLength {
                at: Location::Line(2),
                len: 32,
                expected: 20,
            },
        ),
        (
            format!(
                "10 {} ima-ng sha1:{} /a\n",
                hex::encode([1; 21]),
                hex::encode([2; 20])
            ),
            ImaError::UnknownTemplateHashLength {
                at: Location::Line(1),
                len: 21,
            },
        ),
        (
            format!("{good}10 {}\n", hex::encode([1; 20])),
            ImaError::MissingField {
                at: Location::Line(2),
                field: "template name",
            },
        ),
        (
            format!("{good}10 {} ima-ng\n", hex::encode([1; 20])),
            ImaError::MissingField {
                at: Location::Line(2),
                field: "template data",
            },
        ),
        (
            format!(
                "10 {} ima-ng sha1:{}\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::MissingField {
                at: Location::Line(1),
                field: "n-ng",
            },
        ),
        (
            format!(
                "10 {} ima-ng md6:{} /a\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::UnknownDigestAlgorithm {
                at: Location::Line(1),
                field: "d-ng",
                algorithm: "md6".into(),
            },
        ),
        (
            format!(
                "10 {} ima-ng sha1{} /a\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::DigestField {
                at: Location::Line(1),
                field: "d-ng",
            },
        ),
        (
            format!(
                "10 {} ima-ng sha1:{}x /a\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::Hex {
                at: Location::Line(1),
                field: "d-ng",
            },
        ),
        (
            format!(
                "10 {} ima-sig sha1:{} /a 0g\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::Hex {
                at: Location::Line(1),
                field: "sig",
            },
        ),
        (
            format!(
                "10 {} ima-modsig sha1:{} /a 00 01\n",
                hex::encode([1; 20]),
                hex::encode([2; 20])
            ),
            ImaError::MissingField {
                at: Location::Line(1),
                field: "sig",
            },
        ),
        (
            format!(
                "10 {} ima {} {}\n",
                hex::encode([1; 20]),
                hex::encode([2; 20]),
                "n".repeat(256)
            ),
            ImaError::NameTooLong {
                at: Location::Line(1),
                field: "n",
                len: 256,
                max: 255,
            },
        ),
        (
            format!("10 {} ima {}\n", hex::encode([1; 20]), hex::encode([2; 20])),
            ImaError::MissingField {
                at: Location::Line(1),
                field: "n",
            },
        ),
        (
            format!(
                "10 {} ima {} /a\n",
                hex::encode([1; 20]),
                hex::encode([2; 16])
            ),
            ImaError::DigestLength {
                at: Location::Line(1),
                field: "d",
                algorithm: "sha1",
                len: 16,
                expected: 20,
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            ImaList::parse_ascii(text.as_bytes()),
            Err(expected),
            "{text:?}"
        );
    }
    assert!(ImaList::parse_ascii(b"").unwrap().entries.is_empty());
}

#[test]
fn ascii_ima_template_and_violations() {
    let digest = [0x5a; 20];
    let mut padded = b"/sbin/init".to_vec();
    padded.resize(256, 0);
    let hash = HashAlg::Sha1.hash_parts(&[&digest, &padded]);
    let text = format!(
        "10 {} ima {} /sbin/init\n10 {} ima {} /tmp/written\n",
        hex::encode(&hash),
        hex::encode(digest),
        hex::encode([0; 20]),
        hex::encode([0; 20])
    );
    let list = ImaList::parse_ascii(text.as_bytes()).unwrap();
    let report = list.check_template_hashes();
    assert_eq!((report.matched, report.violations.clone()), (1, vec![1]));
    // Replay: the violation extends 0xff.. in every bank.
    let r = replay(
        &list,
        &[HashAlg::Sha1, HashAlg::Sha256],
        ReplayMode::PerBankTemplateHash,
    )
    .unwrap();
    let mut sha1 = HashAlg::Sha1.zero();
    HashAlg::Sha1.extend(&mut sha1, &hash);
    HashAlg::Sha1.extend(&mut sha1, &[0xff; 20]);
    assert_eq!(r.pcr(HashAlg::Sha1, 10), Some(sha1.as_slice()));
    let mut s256 = HashAlg::Sha256.zero();
    HashAlg::Sha256.extend(&mut s256, &HashAlg::Sha256.hash_parts(&[&digest, &padded]));
    HashAlg::Sha256.extend(&mut s256, &[0xff; 32]);
    assert_eq!(r.pcr(HashAlg::Sha256, 10), Some(s256.as_slice()));
    let p = replay(&list, &[HashAlg::Sha256], ReplayMode::PaddedSha1).unwrap();
    let mut s256 = HashAlg::Sha256.zero();
    let mut h = hash.clone();
    h.resize(32, 0);
    HashAlg::Sha256.extend(&mut s256, &h);
    let mut ff = vec![0xff; 20];
    ff.resize(32, 0);
    HashAlg::Sha256.extend(&mut s256, &ff);
    assert_eq!(p.pcr(HashAlg::Sha256, 10), Some(s256.as_slice()));
}

fn expected_from(replay: &ImaReplay, pcrs: &[u32]) -> BankPcrs {
    replay
        .pcrs
        .iter()
        .map(|(bank, values)| {
            (
                *bank,
                values
                    .iter()
                    .filter(|(p, _)| pcrs.contains(p))
                    .map(|(p, v)| (*p, v.clone()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn replay_modes_and_verification() {
    let list = ImaList::parse_binary(&sample_binary(LE)).unwrap();
    let banks = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];
    let per_bank = replay(&list, &banks, ReplayMode::PerBankTemplateHash).unwrap();
    let padded = replay(&list, &banks, ReplayMode::PaddedSha1).unwrap();
    assert_eq!(per_bank.pcrs[&HashAlg::Sha1], padded.pcrs[&HashAlg::Sha1]);
    assert_ne!(
        per_bank.pcrs[&HashAlg::Sha256],
        padded.pcrs[&HashAlg::Sha256]
    );
    // SHA-1 bank by hand.
    let mut pcr10 = HashAlg::Sha1.zero();
    for e in list.entries.iter().filter(|e| e.pcr == 10) {
        HashAlg::Sha1.extend(
            &mut pcr10,
            if e.violation {
                &[0xff; 20]
            } else {
                &e.template_hash
            },
        );
    }
    assert_eq!(per_bank.pcr(HashAlg::Sha1, 10), Some(pcr10.as_slice()));

    let expected = expected_from(&per_bank, &[10, 11]);
    let verified = verify(&list, &expected, ReplayMode::PerBankTemplateHash).unwrap();
    assert_eq!(verified.entries().len(), 9);
    assert_eq!(verified.unverified_tail(), 0);
    assert_eq!(verified.violations(), &[7]);
    assert!(verified.unbound().is_empty());
    // The pre-5.8 values are found by verify_any_mode, which says so.
    let old = verify_any_mode(&list, &expected_from(&padded, &[10, 11])).unwrap();
    assert_eq!(old.mode(), ReplayMode::PaddedSha1);
    assert_eq!(
        verify_any_mode(&list, &expected).unwrap().mode(),
        ReplayMode::PerBankTemplateHash
    );

    // Only PCR 10 quoted: entry 8 extends PCR 11 and lies past the covered prefix.
    let only10 = expected_from(&per_bank, &[10]);
    let v = verify(&list, &only10, ReplayMode::PerBankTemplateHash).unwrap();
    assert_eq!((v.entries().len(), v.unverified_tail()), (8, 1));

    // A quote taken after three entries covers three entries.
    let mut short = list.clone();
    short.entries.truncate(3);
    let early = expected_from(
        &replay(&short, &banks, ReplayMode::PerBankTemplateHash).unwrap(),
        &[10],
    );
    let v = verify(&list, &early, ReplayMode::PerBankTemplateHash).unwrap();
    assert_eq!((v.entries().len(), v.unverified_tail()), (3, 6));

    // A wrong value names the first mismatching PCR.
    let mut wrong = expected.clone();
    wrong
        .get_mut(&HashAlg::Sha256)
        .unwrap()
        .insert(10, vec![7; 32]);
    match verify(&list, &wrong, ReplayMode::PerBankTemplateHash) {
        Err(ReplayError::Mismatch { first, all, .. }) => {
            assert_eq!((first.bank, first.pcr), (HashAlg::Sha256, 10));
            assert_eq!(first.computed, per_bank.pcrs[&HashAlg::Sha256][&10]);
            assert_eq!(all.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        verify(&list, &BankPcrs::new(), ReplayMode::PaddedSha1).unwrap_err(),
        ReplayError::NothingExpected
    );
}

#[test]
fn verification_rejects_unquoted_pcrs_and_forged_data() {
    // PCR 11 comes before the last PCR 10 entry, but only PCR 10 is expected.
    let mut bytes = entry(LE, 10, "ima-ng", &ng_data(LE, "/a"), None);
    bytes.extend(entry(LE, 11, "ima-ng", &ng_data(LE, "/b"), None));
    bytes.extend(entry(LE, 10, "ima-ng", &ng_data(LE, "/c"), None));
    let list = ImaList::parse_binary(&bytes).unwrap();
    let full = replay(&list, &[HashAlg::Sha1], ReplayMode::PerBankTemplateHash).unwrap();
    assert!(matches!(
        verify(
            &list,
            &expected_from(&full, &[10]),
            ReplayMode::PerBankTemplateHash
        ),
        Err(ReplayError::PcrNotExpected {
            number: 1,
            pcr: 11,
            ..
        })
    ));
    assert!(verify(
        &list,
        &expected_from(&full, &[10, 11]),
        ReplayMode::PerBankTemplateHash
    )
    .is_ok());

    // Entry whose data was changed after the fact: the recorded hash still replays, the data
    // does not hash to it.
    let forged = entry(
        LE,
        10,
        "ima-ng",
        &ng_data(LE, "/evil"),
        Some(HashAlg::Sha1.hash(&ng_data(LE, "/good"))),
    );
    let list = ImaList::parse_binary(&forged).unwrap();
    assert_eq!(list.check_template_hashes().mismatches.len(), 1);
    let r = replay(&list, &[HashAlg::Sha1], ReplayMode::PerBankTemplateHash).unwrap();
    assert!(matches!(
        verify(
            &list,
            &expected_from(&r, &[10]),
            ReplayMode::PerBankTemplateHash
        ),
        Err(ReplayError::TemplateHash {
            number: 0,
            at: Location::Offset(0),
            ..
        })
    ));

    // ASCII entries of unknown templates replay in their own bank, not in others.
    let text = format!("10 {} custom a b\n", hex::encode([3; 20]));
    let list = ImaList::parse_ascii(text.as_bytes()).unwrap();
    let r = replay(&list, &[HashAlg::Sha1], ReplayMode::PerBankTemplateHash).unwrap();
    let v = verify(
        &list,
        &expected_from(&r, &[10]),
        ReplayMode::PerBankTemplateHash,
    )
    .unwrap();
    assert_eq!(v.unbound(), &[0]);
    assert!(matches!(
        replay(&list, &[HashAlg::Sha256], ReplayMode::PerBankTemplateHash),
        Err(ReplayError::NotRecomputable {
            number: 0,
            bank: HashAlg::Sha256,
            ..
        })
    ));
    assert!(replay(&list, &[HashAlg::Sha256], ReplayMode::PaddedSha1).is_ok());
}

#[test]
fn boot_aggregate_variants() {
    let mut sha256_pcrs = BTreeMap::new();
    for i in 0..24u32 {
        sha256_pcrs.insert(i, HashAlg::Sha256.hash(&i.to_le_bytes()));
    }
    let to9 = boot_aggregate(&sha256_pcrs, HashAlg::Sha256, BootAggregateVariant::Pcr0To9).unwrap();
    let to7 = boot_aggregate(&sha256_pcrs, HashAlg::Sha256, BootAggregateVariant::Pcr0To7).unwrap();
    let cat: Vec<u8> = (0..10u32).flat_map(|i| sha256_pcrs[&i].clone()).collect();
    assert_eq!(to9, sha256(&cat));
    assert_eq!(to7, sha256(&cat[..8 * 32]));

    let list_with = |digest: &[u8]| {
        let data = tdata(LE, &[dng("sha256", digest), nng("boot_aggregate")]);
        ImaList::parse_binary(&entry(LE, 10, "ima-ng", &data, None)).unwrap()
    };
    let firmware = BTreeMap::from([(HashAlg::Sha256, sha256_pcrs.clone())]);
    let check = check_boot_aggregate(&list_with(&to9), &firmware).unwrap();
    assert_eq!(
        check.verdict,
        BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To9)
    );
    let check = check_boot_aggregate(&list_with(&to7), &firmware).unwrap();
    assert_eq!(
        check.verdict,
        BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To7)
    );
    assert_eq!(check.computed.len(), 2);
    let check = check_boot_aggregate(&list_with(&[9; 32]), &firmware).unwrap();
    assert_eq!(check.verdict, BootAggregateVerdict::Mismatch);
    assert_eq!(
        check_boot_aggregate(&list_with(&[0; 32]), &BTreeMap::new())
            .unwrap()
            .verdict,
        BootAggregateVerdict::Zero
    );

    // PCRs 8 and 9 not given: only the 0..7 variant is computed, and said so.
    let only0to7: BTreeMap<u32, Vec<u8>> = sha256_pcrs
        .iter()
        .filter(|(p, _)| **p < 8)
        .map(|(p, v)| (*p, v.clone()))
        .collect();
    let check = check_boot_aggregate(
        &list_with(&to7),
        &BTreeMap::from([(HashAlg::Sha256, only0to7.clone())]),
    )
    .unwrap();
    assert_eq!(check.not_computed, vec![BootAggregateVariant::Pcr0To9]);
    assert_eq!(
        check.verdict,
        BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To7)
    );
    // A missing PCR 3 is an error, not a zero.
    let mut gap = only0to7;
    gap.remove(&3);
    assert_eq!(
        boot_aggregate(&gap, HashAlg::Sha256, BootAggregateVariant::Pcr0To7),
        Err(BootAggregateError::MissingPcr {
            bank: HashAlg::Sha256,
            pcr: 3
        })
    );
    assert!(matches!(
        check_boot_aggregate(&list_with(&to9), &BTreeMap::new()),
        Err(BootAggregateError::MissingBank {
            bank: HashAlg::Sha256
        })
    ));
    // IMA_INIT_LATE_SYNC kernels name the entry boot_aggregate_late.
    let late = tdata(LE, &[dng("sha256", &to9), nng("boot_aggregate_late")]);
    let late = ImaList::parse_binary(&entry(LE, 10, "ima-ng", &late, None)).unwrap();
    assert_eq!(
        check_boot_aggregate(&late, &firmware).unwrap().verdict,
        BootAggregateVerdict::Matched(BootAggregateVariant::Pcr0To9)
    );
    let not_first =
        ImaList::parse_binary(&entry(LE, 10, "ima-ng", &ng_data(LE, "/init"), None)).unwrap();
    assert!(matches!(
        check_boot_aggregate(&not_first, &firmware),
        Err(BootAggregateError::NotBootAggregate { .. })
    ));
}

#[test]
fn json_output_uses_lowercase_hex_and_keeps_non_utf8_names() {
    let data = tdata(LE, &[dng("sha256", &[0xAB; 32]), vec![b'/', 0xff, 0]]);
    let list = ImaList::parse_binary(&entry(LE, 10, "ima-ng", &data, None)).unwrap();
    let json = serde_json::to_value(&list).unwrap();
    let e = &json["entries"][0];
    assert_eq!(json["format"], "binary");
    assert_eq!(json["template_hash_algorithm"], "sha1");
    assert_eq!(e["location"]["offset"], 0);
    assert_eq!(e["template"]["kind"], "ima-ng");
    assert_eq!(e["template"]["digest"]["digest"], hex::encode([0xab; 32]));
    assert_eq!(e["template"]["name"]["hex"], "2fff");
    assert_eq!(e["template_hash"], hex::encode(HashAlg::Sha1.hash(&data)));
    let r = replay(&list, &[HashAlg::Sha256], ReplayMode::PerBankTemplateHash).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mode"], "per-bank-template-hash");
    assert!(json["pcrs"]["sha256"]["10"].as_str().unwrap().len() == 64);
}

/// Deterministic mutation of valid lists: no input may panic.
#[test]
fn mutated_inputs_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = [
        sample_binary(LE),
        sample_binary(BE),
        sample_ascii().into_bytes(),
    ];
    for round in 0..3000 {
        let mut input = seeds[round % seeds.len()].clone();
        for _ in 0..(1 + next() % 4) {
            let i = (next() as usize) % input.len();
            match next() % 4 {
                0 => input[i] = next() as u8,
                1 => input.truncate(i),
                2 => input.insert(i, next() as u8),
                _ => input[i] = 0xff,
            }
            if input.is_empty() {
                break;
            }
        }
        for list in [ImaList::parse_binary(&input), ImaList::parse_ascii(&input)]
            .into_iter()
            .flatten()
        {
            let _ = list.check_template_hashes();
            let _ = replay(&list, &HashAlg::ALL, ReplayMode::PerBankTemplateHash);
            let _ = replay(&list, &HashAlg::ALL, ReplayMode::PaddedSha1);
            let _ = check_boot_aggregate(&list, &BTreeMap::new());
            let _ = serde_json::to_string(&list);
        }
    }
}
