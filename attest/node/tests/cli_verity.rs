//! `warrant verity` as a user runs it, side by side with `veritysetup` (cryptsetup-bin, from
//! `scripts/install-deps.sh`; these tests fail, not skip, without it): same root hash, same
//! hash-file bytes, and every flipped byte caught by `verify`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

mod common;

use common::{no_panic, path, tempdir, warrant};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// Deterministic bytes (xorshift64*).
fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn veritysetup(args: &[&str]) -> Output {
    Command::new("veritysetup")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run veritysetup ({e}); install it with scripts/install-deps.sh")
        })
}

/// `veritysetup format ARGS`; returns the root hash.
fn reference_format(args: &[&str]) -> String {
    let mut all = vec!["format"];
    all.extend_from_slice(args);
    let out = veritysetup(&all);
    assert!(
        out.status.success(),
        "veritysetup {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string()
}

/// `warrant verity format ARGS --json`; returns the report.
fn warrant_format(args: &[&str]) -> Value {
    let mut all = vec!["verity", "format"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = warrant(&all);
    no_panic(&out);
    assert!(
        out.status.success(),
        "warrant {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn format_matches_veritysetup_byte_for_byte() {
    let dir = tempdir();
    // (image bytes, extra options for both tools)
    let cases: &[(usize, &[&str])] = &[
        (1 << 20, &["--salt", "00112233"]),
        (4096, &["--salt", "-"]),
        // Not a multiple of the block size: both hash the whole blocks only.
        (300_001, &["--salt", "-"]),
        (
            700_000,
            &[
                "--salt",
                "ab",
                "--hash",
                "sha512",
                "--data-block-size",
                "1024",
                "--hash-block-size",
                "512",
            ],
        ),
        (
            200_000,
            &[
                "--salt",
                "cd",
                "--hash",
                "sha1",
                "--data-block-size",
                "512",
                "--no-superblock",
            ],
        ),
        (123_456, &["--salt", "01", "--data-blocks", "20"]),
    ];
    for (n, (len, opts)) in cases.iter().enumerate() {
        let data = write(&dir, &format!("d{n}"), &image(*len, n as u64));
        let ours = dir.join(format!("ours{n}"));
        let theirs = dir.join(format!("theirs{n}"));
        let uuid: &[&str] = if opts.contains(&"--no-superblock") {
            &[]
        } else {
            &["--uuid", UUID]
        };
        let mut args = vec![path(&data), path(&theirs)];
        args.extend_from_slice(opts);
        args.extend_from_slice(uuid);
        let root = reference_format(&args);
        args[1] = path(&ours);
        let report = warrant_format(&args);
        assert_eq!(report["root_hash"], root.as_str(), "case {n}");
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap(),
            "case {n}: hash files differ"
        );
        assert_eq!(
            report["hash_device_size"].as_u64().unwrap(),
            std::fs::metadata(&ours).unwrap().len(),
            "case {n}"
        );
        // veritysetup verifies what we wrote, and we verify what it wrote.
        let mut vargs = vec!["verify", path(&data), path(&ours), root.as_str()];
        let mut wargs = vec![
            "verity",
            "verify",
            path(&data),
            path(&theirs),
            root.as_str(),
        ];
        if uuid.is_empty() {
            vargs.extend_from_slice(opts);
            wargs.extend_from_slice(opts);
        }
        let v = veritysetup(&vargs);
        assert!(
            v.status.success(),
            "case {n}: veritysetup verify: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        let w = warrant(&wargs);
        assert!(
            w.status.success(),
            "case {n}: warrant verify: {}",
            String::from_utf8_lossy(&w.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_report_names_every_parameter() {
    let dir = tempdir();
    let data = write(&dir, "d", &image(100_000, 3));
    let hash = dir.join("h");
    let out = warrant(&[
        "verity",
        "format",
        path(&data),
        path(&hash),
        "--salt",
        "beef",
        "--uuid",
        UUID,
        "--json",
    ]);
    assert!(out.status.success());
    // 100000 is not a multiple of 4096: the tail is reported and warned about.
    assert!(String::from_utf8_lossy(&out.stderr).contains("not covered"));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["salt"], "beef");
    assert_eq!(r["hash_algorithm"], "sha256");
    assert_eq!(r["data_block_size"], 4096);
    assert_eq!(r["hash_block_size"], 4096);
    assert_eq!(r["data_blocks"], 24);
    assert_eq!(r["hash_offset"], 0);
    assert_eq!(r["uuid"], UUID);
    assert_eq!(r["uncovered_bytes"], 100_000 - 24 * 4096);
    assert_eq!(r["root_hash"].as_str().unwrap().len(), 64);
    // A random salt (32 bytes) and UUID when none is given, as veritysetup does.
    let r = warrant_format(&[path(&data), path(&hash)]);
    assert_eq!(r["salt"].as_str().unwrap().len(), 64);
    assert_eq!(r["uuid"].as_str().unwrap().len(), 36);
    // dump reads the superblock back.
    let out = warrant(&["verity", "dump", path(&hash), "--json"]);
    assert!(out.status.success());
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["salt"], r["salt"]);
    assert_eq!(d["uuid"], r["uuid"]);
    assert_eq!(d["data_blocks"], 24);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn appended_tree_with_hash_offset_matches_veritysetup() {
    let dir = tempdir();
    let len = 64 * 4096;
    let data = image(len, 9);
    let ours = write(&dir, "ours", &data);
    let theirs = write(&dir, "theirs", &data);
    let off = len.to_string();
    let opts = [
        "--hash-offset",
        off.as_str(),
        "--salt",
        "42",
        "--uuid",
        UUID,
    ];
    let mut args = vec![path(&theirs), path(&theirs)];
    args.extend_from_slice(&opts);
    let root = reference_format(&args);
    let mut args = vec![path(&ours), path(&ours)];
    args.extend_from_slice(&opts);
    let r = warrant_format(&args);
    assert_eq!(r["root_hash"], root.as_str());
    assert_eq!(r["data_blocks"], 64);
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    let out = warrant(&[
        "verity",
        "verify",
        path(&ours),
        path(&ours),
        &root,
        "--hash-offset",
        &off,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_flipped_byte_is_caught() {
    let dir = tempdir();
    // Small blocks so the tree has three levels and many blocks in a small file.
    let data_bytes = image(40 * 512, 5);
    let data = write(&dir, "d", &data_bytes);
    let hash = dir.join("h");
    let root = reference_format(&[
        path(&data),
        path(&hash),
        "--data-block-size",
        "512",
        "--hash-block-size",
        "512",
        "--salt",
        "0102",
        "--uuid",
        UUID,
    ]);
    let hash_bytes = std::fs::read(&hash).unwrap();
    let verify = |d: &Path, h: &Path| {
        let out = warrant(&["verity", "verify", path(d), path(h), &root, "--uuid", UUID]);
        no_panic(&out);
        out
    };
    assert!(verify(&data, &hash).status.success());

    // Data: one flip per block, each named.
    let bad_data = dir.join("bad-d");
    for block in 0..40 {
        let mut d = data_bytes.clone();
        d[block * 512 + (block * 37) % 512] ^= 0x10;
        std::fs::write(&bad_data, &d).unwrap();
        let out = verify(&bad_data, &hash);
        assert_eq!(out.status.code(), Some(1), "data block {block}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("data block {block} ")),
            "block {block}: {err}"
        );
    }
    // Hash file: every byte, superblock included (the UUID is pinned with --uuid).
    let bad_hash = dir.join("bad-h");
    for i in 0..hash_bytes.len() {
        let mut h = hash_bytes.clone();
        h[i] ^= 0x01;
        std::fs::write(&bad_hash, &h).unwrap();
        let out = verify(&data, &bad_hash);
        let code = out.status.code();
        assert!(
            code == Some(1) || code == Some(2),
            "hash byte {i}: {code:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Past the superblock, a flip is a mismatch naming a block.
        if i >= 512 {
            assert_eq!(code, Some(1), "hash byte {i}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("block"), "hash byte {i}: {err}");
        }
    }
    // A truncated hash file is bad input.
    std::fs::write(&bad_hash, &hash_bytes[..hash_bytes.len() - 1]).unwrap();
    assert_eq!(verify(&data, &bad_hash).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_two() {
    let dir = tempdir();
    let data = write(&dir, "d", &image(8192, 1));
    let hash = dir.join("h");
    let r = warrant_format(&[path(&data), path(&hash), "--salt", "-"]);
    let root = r["root_hash"].as_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["verity", "verify", path(&data), path(&hash), "not-hex"],
        vec!["verity", "verify", path(&data), path(&hash), "abcd"],
        vec!["verity", "verify", path(&data), path(&data), root],
        vec!["verity", "verify", "/nonexistent", path(&hash), root],
        vec![
            "verity",
            "format",
            path(&data),
            path(&hash),
            "--hash-block-size",
            "1000",
        ],
        vec![
            "verity",
            "format",
            path(&data),
            path(&hash),
            "--hash",
            "md5",
        ],
        vec![
            "verity",
            "format",
            path(&data),
            path(&hash),
            "--salt",
            "xyz",
        ],
        vec![
            "verity",
            "format",
            path(&data),
            path(&hash),
            "--data-blocks",
            "3",
        ],
    ];
    for args in cases {
        let out = warrant(&args);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A wrong root hash is a mismatch (1), not bad input.
    let wrong = "00".repeat(32);
    let out = warrant(&["verity", "verify", path(&data), path(&hash), &wrong]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root hash mismatch"));
    std::fs::remove_dir_all(&dir).unwrap();
}
