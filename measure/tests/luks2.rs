//! `measure::luks2` against the reference: headers made by `cryptsetup luksFormat` (cryptsetup-bin,
//! installed by `scripts/install-deps.sh`) in a temp dir, read by Warrant and compared with what
//! `cryptsetup luksDump --dump-json-metadata` prints; headers written by Warrant read back by
//! cryptsetup (`luksDump`, `token export`, `open --test-passphrase`); and every corruption
//! built from a real header with bytes changed. The tests fail (they do not skip) when
//! cryptsetup is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::luks2::{
    required_len, Copy, CopyDefect, Header, JsonError, Luks2Error, Luks2Warning, ObjectId,
    OneOrMany, PcrBank, PrimaryAlg, SystemdTpm2Token, Token, TokenError,
};
use serde_json::Value;
use sha2::Digest;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Command, Output};

const KEY: &[u8] = b"warrant-luks2-test-passphrase";

struct Image {
    dir: PathBuf,
    path: PathBuf,
    key: PathBuf,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cryptsetup(args: &[&str]) -> Output {
    Command::new("cryptsetup")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run cryptsetup ({e}); install cryptsetup-bin with scripts/install-deps.sh"
            )
        })
}

fn cryptsetup_ok(args: &[&str]) -> Vec<u8> {
    let out = cryptsetup(args);
    assert!(
        out.status.success(),
        "cryptsetup {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A 20 MiB file formatted by cryptsetup (PBKDF2 with 1000 iterations, so it is fast), with
/// `extra` arguments to luksFormat.
fn luks_image(extra: &[&str]) -> Image {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warrant-luks2-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (path, key) = tests::luks2_image(&dir, "disk", KEY, extra).unwrap();
    Image { dir, path, key }
}

impl Image {
    fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }
    /// The bytes Header::parse needs, read the way a caller would: 4 KiB, then required_len.
    fn header_bytes(&self) -> Vec<u8> {
        let all = std::fs::read(&self.path).unwrap();
        let n = required_len(&all[..4096]).unwrap() as usize;
        all[..n].to_vec()
    }
    fn write_at_start(&self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }
    fn dump_json(&self) -> Value {
        serde_json::from_slice(&cryptsetup_ok(&[
            "luksDump",
            "--dump-json-metadata",
            self.p(),
        ]))
        .unwrap()
    }
    fn test_passphrase(&self) -> Output {
        cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            self.key.to_str().unwrap(),
            self.p(),
        ])
    }
}

fn hdr_size(bytes: &[u8]) -> usize {
    u64::from_be_bytes(bytes[8..16].try_into().unwrap()) as usize
}

/// Rewrites the copy at `at`: optionally a new JSON text (NUL-padded) and seqid, then a valid
/// SHA-256 checksum, so that only the intended defect remains.
fn reseal(bytes: &mut [u8], at: usize, json: Option<&[u8]>, seqid: Option<u64>) {
    let size = hdr_size(&bytes[at..]);
    if let Some(text) = json {
        let area = &mut bytes[at + 4096..at + size];
        area.fill(0);
        area[..text.len()].copy_from_slice(text);
    }
    if let Some(seqid) = seqid {
        bytes[at + 16..at + 24].copy_from_slice(&seqid.to_be_bytes());
    }
    bytes[at + 448..at + 512].fill(0);
    let digest = sha2::Sha256::digest(&bytes[at..at + size]);
    bytes[at + 448..at + 480].copy_from_slice(&digest);
}

fn json_text(bytes: &[u8], at: usize) -> Vec<u8> {
    let area = &bytes[at + 4096..at + hdr_size(bytes)];
    area[..area.iter().position(|b| *b == 0).unwrap()].to_vec()
}

fn both_copies_with_json(bytes: &mut [u8], text: &[u8]) {
    let size = hdr_size(bytes);
    reseal(bytes, 0, Some(text), None);
    reseal(bytes, size, Some(text), None);
}

fn no_valid_copy(bytes: &[u8]) -> (CopyDefect, CopyDefect) {
    match Header::parse(bytes) {
        Err(Luks2Error::NoValidCopy { primary, secondary }) => (*primary, *secondary),
        other => panic!("expected NoValidCopy, got {other:?}"),
    }
}

/// A predicate on the defect a test expects.
type DefectCheck = fn(&CopyDefect) -> bool;

fn sample_token(keyslot: u32) -> SystemdTpm2Token {
    SystemdTpm2Token {
        keyslots: vec![ObjectId(keyslot)],
        blob: OneOrMany::One((0..=157u8).collect()),
        pcrs: vec![7],
        pcr_bank: Some(PcrBank::Sha256),
        primary_alg: Some(PrimaryAlg::Ecc),
        policy_hash: OneOrMany::One(vec![0x5a; 32]),
        pin: Some(false),
        pcrlock: None,
        pubkey_pcrs: None,
        pubkey: None,
        salt: None,
        srk: None,
        pcrlock_nv: None,
        extra: Default::default(),
    }
}

#[test]
fn reads_cryptsetup_headers_as_luksdump_does() {
    for (extra, size) in [
        (
            &["--label", "warrant-root", "--subsystem", "warrant"][..],
            0x4000u64,
        ),
        (&["--luks2-metadata-size", "64k"][..], 0x10000),
        (
            &[
                "--pbkdf",
                "argon2id",
                "--pbkdf-force-iterations",
                "4",
                "--pbkdf-memory",
                "32",
                "--sector-size",
                "4096",
            ][..],
            0x4000,
        ),
    ] {
        let img = luks_image(extra);
        let bytes = img.header_bytes();
        assert_eq!(bytes.len() as u64, 2 * size);
        let h = Header::parse(&bytes).unwrap();
        assert!(h.warnings().is_empty(), "{:?}", h.warnings());
        assert_eq!(h.used(), Copy::Primary);
        assert_eq!(h.hdr_size(), size);
        assert_eq!(h.checksum_alg().name(), "sha256");
        let uuid = String::from_utf8(cryptsetup_ok(&["luksUUID", img.p()])).unwrap();
        assert_eq!(h.uuid(), uuid.trim());
        if extra.contains(&"--label") {
            assert_eq!((h.label(), h.subsystem()), ("warrant-root", "warrant"));
        } else {
            assert_eq!((h.label(), h.subsystem()), ("", ""));
        }
        assert_ne!(h.salts()[0], h.salts()[1], "each copy has its own salt");
        // The typed metadata, serialised, is exactly what cryptsetup dumps.
        assert_eq!(serde_json::to_value(h.metadata()).unwrap(), img.dump_json());
        let ks = &h.metadata().keyslots[&ObjectId(0)];
        let kdf = ks.kdf.as_ref().unwrap();
        if extra.contains(&"argon2id") {
            assert_eq!(
                (kdf.kind.as_str(), kdf.time, kdf.memory),
                ("argon2id", Some(4), Some(32))
            );
            assert_eq!(h.metadata().segments[&ObjectId(0)].sector_size, Some(4096));
        } else {
            assert_eq!((kdf.kind.as_str(), kdf.iterations), ("pbkdf2", Some(1000)));
        }
        assert_eq!(h.metadata().config.json_size.0, size - 4096);
        // Writing the parsed header back reproduces cryptsetup's bytes exactly.
        assert_eq!(h.to_bytes(), bytes);
    }
}

#[test]
fn token_written_by_warrant_is_read_by_cryptsetup_and_systemd() {
    let img = luks_image(&[]);
    let before = img.header_bytes();
    let h = Header::parse(&before).unwrap();
    let token = sample_token(0);
    let mut metadata = h.metadata().clone();
    let id = metadata.free_token_id().unwrap();
    assert_eq!(id, ObjectId(0));
    metadata
        .tokens
        .insert(id, Token::SystemdTpm2(token.clone()));
    let new = h.with_metadata(metadata.clone()).unwrap();
    assert_eq!(new.seqid(), h.seqid() + 1);
    let written = new.to_bytes();
    assert_eq!(written.len(), before.len());
    img.write_at_start(&written);

    // cryptsetup reads both copies as valid (it would otherwise repair one and the bytes would
    // change), shows the token, and still opens the keyslot.
    assert_eq!(
        img.dump_json()["tokens"]["0"],
        Value::Object(token.to_object())
    );
    let exported = cryptsetup_ok(&["token", "export", "--token-id", "0", img.p()]);
    assert_eq!(SystemdTpm2Token::from_json(&exported).unwrap(), token);
    // Plain luksDump runs systemd's token plugin (libcryptsetup-token-systemd-tpm2), which
    // parses our token with systemd's own code.
    let dump = String::from_utf8(cryptsetup_ok(&["luksDump", img.p()])).unwrap();
    for line in [
        "systemd-tpm2",
        "tpm2-hash-pcrs:   7",
        "tpm2-primary-alg: ecc",
        "tpm2-pin:         false",
    ] {
        assert!(dump.contains(line), "{line:?} not in {dump}");
    }
    let out = img.test_passphrase();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = img.header_bytes();
    assert_eq!(
        after, written,
        "cryptsetup rewrote the header Warrant wrote"
    );
    let reread = Header::parse(&after).unwrap();
    assert!(reread.warnings().is_empty());
    assert_eq!(reread.metadata(), &metadata);
    assert_eq!(reread.seqid(), h.seqid() + 1);

    // The same token imported by cryptsetup (through systemd's validator) gives the same
    // metadata and seqid as Warrant's writer.
    let other = luks_image(&[]);
    let json_file = other.dir.join("token.json");
    std::fs::write(&json_file, serde_json::to_vec(&token.to_object()).unwrap()).unwrap();
    cryptsetup_ok(&[
        "token",
        "import",
        "--token-id",
        "0",
        "--json-file",
        json_file.to_str().unwrap(),
        other.p(),
    ]);
    let theirs = Header::parse(&other.header_bytes()).unwrap();
    assert_eq!(theirs.seqid(), reread.seqid());
    assert_eq!(theirs.metadata().tokens, reread.metadata().tokens);
}

#[test]
fn token_from_cryptsetup_survives_a_warrant_rewrite() {
    let img = luks_image(&[]);
    // Unknown fields (a newer systemd) and an unknown token type must both come back unchanged.
    let mut tpm2 = sample_token(0).to_object();
    tpm2.insert("x-newer-systemd".into(), serde_json::json!({"a": [1, "b"]}));
    tpm2.insert("tpm2_srk".into(), Value::from("AAECAw=="));
    let other = serde_json::json!({"type": "warrant-test", "keyslots": [], "blob": {"z": null}});
    for (id, json) in [("3", Value::Object(tpm2.clone())), ("5", other.clone())] {
        let file = img.dir.join(format!("t{id}.json"));
        std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
        cryptsetup_ok(&[
            "token",
            "import",
            "--token-id",
            id,
            "--json-file",
            file.to_str().unwrap(),
            img.p(),
        ]);
    }
    let h = Header::parse(&img.header_bytes()).unwrap();
    match &h.metadata().tokens[&ObjectId(3)] {
        Token::SystemdTpm2(t) => {
            assert_eq!(t.srk.as_deref(), Some(&[0u8, 1, 2, 3][..]));
            assert!(t.extra.contains_key("x-newer-systemd"));
        }
        other => panic!("token 3 parsed as {other:?}"),
    }
    match &h.metadata().tokens[&ObjectId(5)] {
        Token::Other(raw) => assert_eq!(raw.kind(), "warrant-test"),
        other => panic!("token 5 parsed as {other:?}"),
    }
    let new = h.with_metadata(h.metadata().clone()).unwrap();
    img.write_at_start(&new.to_bytes());
    let dump = img.dump_json();
    assert_eq!(dump["tokens"]["3"], Value::Object(tpm2));
    assert_eq!(dump["tokens"]["5"], other);
    assert!(img.test_passphrase().status.success());

    // with_json writes a text exactly as given.
    let text = serde_json::to_vec(&dump).unwrap();
    let h2 = Header::parse(&img.header_bytes()).unwrap();
    let new2 = h2.with_json(&text).unwrap();
    assert_eq!(new2.json_text(), &text[..]);
    img.write_at_start(&new2.to_bytes());
    assert_eq!(img.dump_json(), dump);
    assert_eq!(json_text(&img.header_bytes(), 0), text);
}

#[test]
fn truncated_input_is_an_error() {
    let img = luks_image(&[]);
    let bytes = img.header_bytes();
    for (len, needed) in [
        (0, 4096),
        (100, 4096),
        (4095, 4096),
        (4096, 0x8000),
        (20000, 0x8000),
    ] {
        match Header::parse(&bytes[..len]) {
            Err(Luks2Error::Truncated { needed: n, got }) => {
                assert_eq!((n, got), (needed, len as u64));
            }
            other => panic!("len {len}: {other:?}"),
        }
    }
    assert!(matches!(
        required_len(&bytes[..10]),
        Err(Luks2Error::Truncated { .. })
    ));
}

#[test]
fn damaged_primary_falls_back_to_secondary_with_a_warning() {
    let img = luks_image(&["--luks2-metadata-size", "32k"]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    // Bad magic, bad checksum (a byte of the JSON padding), bad version, wrong hdr_offset.
    let cases: Vec<(usize, DefectCheck)> = vec![
        (0, |d| matches!(d, CopyDefect::BadMagic { offset: 0 })),
        (size - 1, |d| {
            matches!(
                d,
                CopyDefect::ChecksumMismatch {
                    offset: 0,
                    alg: "sha256"
                }
            )
        }),
        (7, |d| {
            matches!(d, CopyDefect::UnsupportedVersion { offset: 0, .. })
        }),
        (263, |d| {
            matches!(d, CopyDefect::HdrOffset { offset: 0, .. })
        }),
        // A byte of csum after the 32-byte digest: not covered by the checksum, so only
        // Warrant's rule that it must be zero catches it.
        (500, |d| {
            matches!(d, CopyDefect::NonZeroChecksumPadding { offset: 500 })
        }),
    ];
    for (byte, want) in cases {
        let mut bytes = good.clone();
        bytes[byte] ^= 0x01;
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h.used(), Copy::Secondary, "byte {byte}");
        match h.warnings() {
            [Luks2Warning::Damaged {
                copy: Copy::Primary,
                defect,
            }] => {
                assert!(want(defect), "byte {byte}: {defect:?}")
            }
            w => panic!("byte {byte}: {w:?}"),
        }
        assert_eq!(serde_json::to_value(h.metadata()).unwrap(), img.dump_json());
        assert!(matches!(
            h.require_consistent(),
            Err(Luks2Error::Inconsistent(w)) if matches!(*w, Luks2Warning::Damaged { copy: Copy::Primary, .. })
        ));
    }
}

#[test]
fn damaged_secondary_is_reported_and_primary_used() {
    let img = luks_image(&[]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    for byte in [size, size + 300, 2 * size - 1] {
        let mut bytes = good.clone();
        bytes[byte] ^= 0x80;
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h.used(), Copy::Primary);
        assert!(
            matches!(
                h.warnings(),
                [Luks2Warning::Damaged { copy: Copy::Secondary, defect }]
                    if matches!(defect, CopyDefect::BadMagic { .. } | CopyDefect::ChecksumMismatch { .. })
            ),
            "byte {byte}: {:?}",
            h.warnings()
        );
        // A rewrite heals the secondary, as cryptsetup's recovery would.
        let healed = h.to_bytes();
        assert_eq!(healed, good);
    }
}

#[test]
fn both_copies_bad_is_an_error() {
    let img = luks_image(&[]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    let mut bytes = good.clone();
    bytes[size - 1] ^= 1;
    bytes[2 * size - 1] ^= 1;
    let (p, s) = no_valid_copy(&bytes);
    assert!(
        matches!(p, CopyDefect::ChecksumMismatch { offset: 0, .. }),
        "{p:?}"
    );
    assert!(
        matches!(s, CopyDefect::ChecksumMismatch { offset, .. } if offset == size as u64),
        "{s:?}"
    );
    let (p, s) = no_valid_copy(&vec![0u8; 2 * size]);
    assert!(matches!(p, CopyDefect::BadMagic { offset: 0 }), "{p:?}");
    assert!(matches!(s, CopyDefect::NotFound), "{s:?}");
    let msg = Header::parse(&bytes).unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
}

#[test]
fn invalid_json_areas_are_typed_errors() {
    let img = luks_image(&[]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    let text = String::from_utf8(json_text(&good, 0)).unwrap();
    let json_err = |bytes: &[u8]| -> JsonError {
        match no_valid_copy(bytes) {
            (
                CopyDefect::Json {
                    offset: 4096,
                    source,
                },
                CopyDefect::Json { .. },
            ) => source,
            other => panic!("expected JSON defects, got {other:?}"),
        }
    };

    // Not JSON.
    let mut bytes = good.clone();
    both_copies_with_json(&mut bytes, &text.as_bytes()[..text.len() / 2]);
    assert!(matches!(json_err(&bytes), JsonError::Syntax { .. }));
    // Not an object.
    both_copies_with_json(&mut bytes, b"[1,2]");
    assert!(matches!(json_err(&bytes), JsonError::NotObject));
    // Wrong type: a number where LUKS2 has a decimal string, and the reverse.
    for (from, to) in [
        ("\"key_size\":64", "\"key_size\":\"64\""),
        ("\"offset\":\"32768\"", "\"offset\":32768"),
    ] {
        assert!(text.contains(from), "{from}");
        both_copies_with_json(&mut bytes, text.replacen(from, to, 1).as_bytes());
        match json_err(&bytes) {
            JsonError::Syntax { source } => {
                assert!(source.to_string().contains("invalid type"), "{source}")
            }
            e => panic!("{e:?}"),
        }
    }
    // Non-canonical decimal and object id.
    both_copies_with_json(
        &mut bytes,
        text.replacen("\"offset\":\"32768\"", "\"offset\":\"032768\"", 1)
            .as_bytes(),
    );
    assert!(matches!(json_err(&bytes), JsonError::Syntax { .. }));
    both_copies_with_json(
        &mut bytes,
        text.replacen("\"keyslots\":{\"0\"", "\"keyslots\":{\"00\"", 1)
            .as_bytes(),
    );
    assert!(matches!(json_err(&bytes), JsonError::Syntax { .. }));
    // Duplicate key.
    both_copies_with_json(
        &mut bytes,
        text.replacen("\"key_size\":64", "\"key_size\":64,\"key_size\":32", 1)
            .as_bytes(),
    );
    match json_err(&bytes) {
        JsonError::Syntax { source } => {
            assert!(source.to_string().contains("duplicate"), "{source}")
        }
        e => panic!("{e:?}"),
    }
    // A missing section.
    both_copies_with_json(
        &mut bytes,
        text.replacen("\"tokens\":{},", "", 1).as_bytes(),
    );
    assert!(matches!(json_err(&bytes), JsonError::Syntax { .. }));
    // json_size that does not match the area.
    let wrong_size = text.replacen("\"json_size\":\"12288\"", "\"json_size\":\"12289\"", 1);
    assert_ne!(wrong_size, text);
    both_copies_with_json(&mut bytes, wrong_size.as_bytes());
    assert!(matches!(
        json_err(&bytes),
        JsonError::JsonSize {
            recorded: 12289,
            expected: 12288
        }
    ));
    // A digest referring to a keyslot that does not exist.
    both_copies_with_json(
        &mut bytes,
        text.replacen("\"keyslots\":[\"0\"]", "\"keyslots\":[\"7\"]", 1)
            .as_bytes(),
    );
    assert!(matches!(
        json_err(&bytes),
        JsonError::DanglingReference {
            section: "digest",
            target: "keyslot",
            target_id: ObjectId(7),
            ..
        }
    ));
    // A systemd-tpm2 token with a wrong type in it.
    let mut token = sample_token(0).to_object();
    token.insert("tpm2-pcrs".into(), Value::from("7"));
    let with_token = text.replacen(
        "\"tokens\":{}",
        &format!(
            "\"tokens\":{{\"0\":{}}}",
            serde_json::to_string(&token).unwrap()
        ),
        1,
    );
    both_copies_with_json(&mut bytes, with_token.as_bytes());
    assert!(matches!(
        json_err(&bytes),
        JsonError::Token {
            id: ObjectId(0),
            source: TokenError::WrongType {
                field: "tpm2-pcrs",
                ..
            }
        }
    ));
    // Oversized: text filling the whole area, no terminating NUL.
    let mut bytes = good.clone();
    for at in [0, size] {
        bytes[at + 4096 + text.len()..at + size].fill(b' ');
        reseal(&mut bytes, at, None, None);
    }
    assert!(matches!(
        json_err(&bytes),
        JsonError::NotTerminated { area_len: 12288 }
    ));
    // A non-zero byte after the NUL.
    let mut bytes = good.clone();
    for at in [0, size] {
        bytes[at + size - 10] = b'x';
        reseal(&mut bytes, at, None, None);
    }
    assert!(matches!(
        json_err(&bytes),
        JsonError::TrailingBytes { offset: 12278 }
    ));
}

#[test]
fn seqid_mismatch_uses_the_newer_copy() {
    let img = luks_image(&[]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    let seqid = Header::parse(&good).unwrap().seqid();
    for (newer_at, used) in [(size, Copy::Secondary), (0, Copy::Primary)] {
        let mut bytes = good.clone();
        reseal(&mut bytes, newer_at, None, Some(seqid + 1));
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h.used(), used);
        assert_eq!(h.seqid(), seqid + 1);
        match h.warnings() {
            [Luks2Warning::SeqidMismatch {
                primary,
                secondary,
                used: u,
            }] => {
                assert_eq!(*u, used);
                assert_eq!(primary.max(secondary), &(seqid + 1));
            }
            w => panic!("{w:?}"),
        }
        assert!(matches!(
            h.require_consistent(),
            Err(Luks2Error::Inconsistent(_))
        ));
    }
    // Same seqid, different JSON: the primary is used and the mismatch reported.
    let mut bytes = good.clone();
    let text = String::from_utf8(json_text(&good, size)).unwrap();
    reseal(
        &mut bytes,
        size,
        Some(
            text.replacen("\"tokens\":{}", "\"tokens\":{},\"x\":1", 1)
                .as_bytes(),
        ),
        None,
    );
    let h = Header::parse(&bytes).unwrap();
    assert_eq!(h.used(), Copy::Primary);
    assert!(matches!(
        h.warnings(),
        [Luks2Warning::ContentMismatch { .. }]
    ));
}

#[test]
fn writer_refuses_what_a_reader_would_refuse() {
    let img = luks_image(&[]);
    let h = Header::parse(&img.header_bytes()).unwrap();
    // A token for a keyslot that does not exist.
    let mut m = h.metadata().clone();
    m.tokens
        .insert(ObjectId(0), Token::SystemdTpm2(sample_token(9)));
    assert!(matches!(
        h.with_metadata(m),
        Err(Luks2Error::Json(JsonError::DanglingReference {
            section: "token",
            ..
        }))
    ));
    // JSON that does not fit the area with its NUL.
    let mut m = h.metadata().clone();
    let mut big = sample_token(0);
    big.blob = OneOrMany::One(vec![0; 9300]);
    m.tokens.insert(ObjectId(0), Token::SystemdTpm2(big));
    assert!(matches!(
        h.with_metadata(m),
        Err(Luks2Error::Json(JsonError::TooLarge {
            area_len: 12288,
            ..
        }))
    ));
    assert!(matches!(
        h.with_json(b" {}"),
        Err(Luks2Error::Json(JsonError::NotObject))
    ));
    assert!(matches!(
        h.with_json(b"{\"keyslots\":{}}"),
        Err(Luks2Error::Json(JsonError::Syntax { .. }))
    ));
}

#[test]
fn tokens_systemd_refuses_are_refused_by_warrant() {
    // cryptsetup runs systemd's validator (libcryptsetup-token-systemd-tpm2) on `token import`.
    let img = luks_image(&[]);
    let bad: Vec<(&str, Value)> = vec![
        ("tpm2-pcrs", Value::from("7")),
        ("tpm2-pcrs", serde_json::json!([24])),
        ("tpm2-blob", Value::from(3)),
        ("tpm2-pcr-bank", Value::from("md5")),
        ("tpm2-primary-alg", Value::from("dsa")),
        ("tpm2-pin", Value::from("no")),
    ];
    for (i, (field, value)) in bad.into_iter().enumerate() {
        let mut token = sample_token(0).to_object();
        token.insert(field.into(), value.clone());
        let file = img.dir.join(format!("bad{i}.json"));
        std::fs::write(&file, serde_json::to_vec(&token).unwrap()).unwrap();
        let out = cryptsetup(&[
            "token",
            "import",
            "--token-id",
            "0",
            "--json-file",
            file.to_str().unwrap(),
            img.p(),
        ]);
        assert!(!out.status.success(), "systemd accepted {field} = {value}");
        assert!(
            SystemdTpm2Token::from_object(&token).is_err(),
            "Warrant accepted {field} = {value}"
        );
    }
}

/// Deterministic mutation run (no fuzz target for luks2 exists yet under `fuzz/`): random bytes
/// of a real header changed, half of the time with the checksums recomputed so the JSON parser
/// sees the damage. Every result must be a value or a typed error, never a panic.
#[test]
fn mutated_headers_never_panic() {
    let img = luks_image(&[]);
    let good = img.header_bytes();
    let size = hdr_size(&good);
    let text_len = json_text(&good, 0).len();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut ok, mut err) = (0, 0);
    for round in 0..2000 {
        let mut bytes = good.clone();
        let reseal_after = round % 2 == 1;
        for _ in 0..1 + next() % 4 {
            let r = next();
            // Aim at the binary header or the JSON text of either copy most of the time.
            let copy = if r & 1 == 0 { 0 } else { size };
            let pos = match (r >> 1) % 3 {
                0 => copy + (r >> 8) as usize % 512,
                1 => copy + 4096 + (r >> 8) as usize % (text_len + 1),
                _ => (r >> 8) as usize % bytes.len(),
            };
            bytes[pos] = (r >> 40) as u8;
        }
        if reseal_after && hdr_size(&bytes) == size {
            reseal(&mut bytes, 0, None, None);
            if hdr_size(&bytes[size..]) == size {
                reseal(&mut bytes, size, None, None);
            }
        }
        match Header::parse(&bytes) {
            Ok(h) => {
                ok += 1;
                // Whatever parses can be written and parsed again to the same metadata.
                let again = Header::parse(&h.to_bytes()).unwrap();
                assert_eq!(again.metadata(), h.metadata());
            }
            Err(e) => {
                err += 1;
                let _ = e.to_string();
            }
        }
        let cut = next() as usize % (bytes.len() + 1);
        let _ = Header::parse(&bytes[..cut]);
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}
