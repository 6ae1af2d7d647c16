//! `measure::verity` against the reference: `veritysetup format` (cryptsetup-bin, installed by
//! `scripts/install-deps.sh`) on generated images of several sizes, salts, hashes and block
//! sizes. The root hash and every byte of the hash device must be identical. The tests fail
//! (they do not skip) when veritysetup is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use measure::verity::{self, Params, VerityError, VerityHash};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "warrant-verity-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic bytes (xorshift64*), different for every seed.
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

/// One `veritysetup format` run; returns its root hash (hex).
fn veritysetup(args: &[&str]) -> String {
    let out = Command::new("veritysetup")
        .arg("format")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run veritysetup ({e}); install it with scripts/install-deps.sh")
        });
    assert!(
        out.status.success(),
        "veritysetup format {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in {text}"))
        .trim()
        .to_string()
}

struct Case {
    len: usize,
    hash: VerityHash,
    data_block_size: u32,
    hash_block_size: u32,
    salt: Vec<u8>,
    superblock: bool,
}

fn salt_arg(salt: &[u8]) -> String {
    if salt.is_empty() {
        "-".into()
    } else {
        hex::encode(salt)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Formats with veritysetup into a separate hash file and with measure into memory; compares.
fn compare(dir: &Path, n: usize, c: &Case) {
    let data = image(c.len, n as u64);
    let data_path = dir.join(format!("data{n}"));
    let hash_path = dir.join(format!("hash{n}"));
    std::fs::write(&data_path, &data).unwrap();
    let salt = salt_arg(&c.salt);
    let dbs = c.data_block_size.to_string();
    let hbs = c.hash_block_size.to_string();
    let mut args = vec![
        s(&data_path),
        s(&hash_path),
        "--hash",
        c.hash.name(),
        "--salt",
        &salt,
        "--data-block-size",
        &dbs,
        "--hash-block-size",
        &hbs,
    ];
    if c.superblock {
        args.extend(["--uuid", UUID]);
    } else {
        args.push("--no-superblock");
    }
    let root = veritysetup(&args);
    let what = format!(
        "case {n}: {} bytes, {}, data {dbs}, hash {hbs}, salt {salt}, superblock {}",
        c.len,
        c.hash.name(),
        c.superblock
    );

    let params = Params {
        hash: c.hash,
        data_block_size: c.data_block_size,
        hash_block_size: c.hash_block_size,
        // veritysetup uses the whole blocks of the data file; trailing bytes are not hashed.
        data_blocks: (c.len / c.data_block_size as usize) as u64,
        salt: c.salt.clone(),
    };
    let uuid = c.superblock.then(|| verity::parse_uuid(UUID).unwrap());
    let mut dev = Cursor::new(Vec::new());
    let mut last = 0;
    let f = verity::format(&params, &mut &data[..], &mut dev, 0, uuid, &mut |d| {
        last = d
    })
    .unwrap();
    assert_eq!(last, params.data_blocks, "{what}: progress");
    assert_eq!(hex::encode(&f.root_hash), root, "{what}: root hash");
    let theirs = std::fs::read(&hash_path).unwrap();
    let ours = dev.into_inner();
    assert_eq!(ours.len(), theirs.len(), "{what}: hash device size");
    if let Some(i) = ours.iter().zip(&theirs).position(|(a, b)| a != b) {
        panic!("{what}: hash devices differ first at byte {i}");
    }

    // Our verify accepts veritysetup's output.
    let mut dev = Cursor::new(theirs);
    let params = if c.superblock {
        let sb = verity::read_superblock(&mut dev, 0).unwrap();
        assert_eq!(verity::format_uuid(&sb.uuid), UUID, "{what}");
        assert_eq!(sb.params, params, "{what}");
        sb.params
    } else {
        params
    };
    verity::verify(
        &params,
        &mut &data[..],
        &mut dev,
        0,
        c.superblock,
        &f.root_hash,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{what}: verify: {e}"));
}

#[test]
fn matches_veritysetup_on_sizes_salts_hashes_and_block_sizes() {
    let dir = tempdir();
    let salt32 = image(32, 99);
    let mut cases = Vec::new();
    // Sizes around block and hash-block boundaries, and not multiples of the block size.
    for len in [
        4096,
        8192,
        100_000,
        4096 * 128,
        4096 * 129,
        (1 << 20) + 1234,
    ] {
        cases.push(Case {
            len,
            hash: VerityHash::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            salt: salt32.clone(),
            superblock: true,
        });
    }
    // Salts: empty (`-`), one byte, 256 bytes (the maximum).
    for salt in [Vec::new(), vec![0xab], image(256, 7)] {
        cases.push(Case {
            len: 300_000,
            hash: VerityHash::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            salt,
            superblock: true,
        });
    }
    // Every hash, with small hash blocks so the trees have three or more levels.
    for hash in VerityHash::ALL {
        cases.push(Case {
            len: 700_000,
            hash,
            data_block_size: 1024,
            hash_block_size: 512,
            salt: salt32.clone(),
            superblock: true,
        });
    }
    // Block sizes, and no superblock.
    for (dbs, hbs, superblock) in [
        (512, 512, true),
        (512, 4096, false),
        (2048, 1024, true),
        (4096, 8192, true),
        (8192, 4096, false),
    ] {
        cases.push(Case {
            len: 333_333,
            hash: VerityHash::Sha1,
            data_block_size: dbs,
            hash_block_size: hbs,
            salt: vec![1, 2, 3],
            superblock,
        });
    }
    for (n, c) in cases.iter().enumerate() {
        compare(&dir, n, c);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn matches_veritysetup_with_the_tree_appended_to_the_data() {
    let dir = tempdir();
    let len = 600 * 1024;
    // 512-aligned but not 4096-aligned: the hash area starts at the next hash block.
    for (n, offset) in [len as u64, len as u64 + 512].into_iter().enumerate() {
        let data = image(len, 40 + n as u64);
        let path = dir.join(format!("appended{n}"));
        let mut file = data.clone();
        file.resize(offset as usize, 0);
        std::fs::write(&path, &file).unwrap();
        let off = offset.to_string();
        let blocks = (len / 4096).to_string();
        let root = veritysetup(&[
            s(&path),
            s(&path),
            "--hash-offset",
            &off,
            "--data-blocks",
            &blocks,
            "--salt",
            "0011",
            "--uuid",
            UUID,
        ]);
        let params = Params {
            hash: VerityHash::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: (len / 4096) as u64,
            salt: vec![0, 0x11],
        };
        let mut dev = Cursor::new(file.clone());
        let f = verity::format(
            &params,
            &mut &data[..],
            &mut dev,
            offset,
            verity::parse_uuid(UUID),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(hex::encode(&f.root_hash), root, "offset {offset}");
        assert!(
            dev.into_inner() == std::fs::read(&path).unwrap(),
            "offset {offset}: files differ"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn what_veritysetup_refuses_is_refused() {
    let dir = tempdir();
    // Less than one block of data: veritysetup fails, and so do we.
    let small = dir.join("small");
    std::fs::write(&small, image(1000, 1)).unwrap();
    let out = Command::new("veritysetup")
        .args(["format", s(&small), s(&dir.join("h"))])
        .output()
        .expect("veritysetup (scripts/install-deps.sh)");
    assert!(!out.status.success());
    let p = |data_block_size, hash_block_size, data_blocks, salt_len| Params {
        hash: VerityHash::Sha256,
        data_block_size,
        hash_block_size,
        data_blocks,
        salt: vec![0; salt_len],
    };
    assert!(matches!(
        p(4096, 4096, 0, 32).validate(),
        Err(VerityError::NoDataBlocks { .. })
    ));
    for bad in [256, 3000, 1 << 20] {
        assert!(matches!(
            p(bad, 4096, 1, 32).validate(),
            Err(VerityError::BlockSize { .. })
        ));
        assert!(matches!(
            p(4096, bad, 1, 32).validate(),
            Err(VerityError::BlockSize { .. })
        ));
    }
    assert!(matches!(
        p(4096, 4096, 1, 257).validate(),
        Err(VerityError::SaltTooLong { len: 257 })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
