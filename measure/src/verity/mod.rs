//! dm-verity hash trees, byte for byte as `veritysetup format` (cryptsetup) writes them.
//!
//! Sources: the kernel's `Documentation/admin-guide/device-mapper/verity.rst` (tree and
//! superblock), and cryptsetup's `lib/verity/verity.c` (superblock `struct verity_sb`,
//! `VERITY_hash_offset_block`) and `lib/verity/verity_hash.c` (`hash_levels`,
//! `create_or_verify`, `verify_hash_block`). Only hash type 1 ("normal", the salt hashed
//! *before* each block) is supported; type 0 (Chrome OS, salt after the block) is rejected.
//!
//! ## Layout of the hash device
//! ```text
//! hash_offset:  superblock (512 bytes), zero up to the next hash block boundary
//!               (absent with --no-superblock)
//! hash area:    level n-1 (the top: one hash block), level n-2, ..., level 0
//! ```
//! Level 0 holds the digests of the data blocks; level i+1 the digests of the hash blocks of
//! level i. Each hash block holds `hash_per_block = 2^floor(log2(hash_block_size / digest))`
//! slots of `2^ceil(log2(digest))` bytes (digest, then zero padding); unused slots and the rest
//! of the block are zero. Every block (data or hash) is hashed as `H(salt || block)`. The root
//! hash is the digest of the single block of the top level, or of the single data block when
//! there is only one (no tree at all).
//!
//! ## Purity and memory
//! This module never opens a file: the caller passes the data as [`std::io::Read`] and the hash
//! device as `Write + Seek` (format) or `Read + Seek` (verify). Data is hashed in batches of
//! about [`BATCH_BYTES`], in parallel across cores (rayon); levels above 0 are built as their
//! children complete, holding one hash block per level. Memory is therefore about
//! `2 * BATCH_BYTES + levels * hash_block_size`, whatever the image size.
//!
//! ## Trust
//! A [`Superblock`] read from a hash device is untrusted: it is parsed through
//! [`crate::codec::Reader`], every field is range-checked as cryptsetup does, and, stricter than
//! cryptsetup, every padding byte (including the rest of the superblock's hash block) must be
//! zero so that no byte of the hash device goes unchecked. The superblock's UUID is *not*
//! covered by the root hash (as in dm-verity itself); callers pin it separately if it matters.

use crate::codec::{CodecError, Reader};
use rayon::prelude::*;
use serde::Serialize;
use sha2::Digest;
use std::io::{Read, Seek, SeekFrom, Write};
use thiserror::Error;

/// `VERITY_SIGNATURE` (cryptsetup `lib/verity/verity.c`).
pub const SIGNATURE: [u8; 8] = *b"verity\0\0";
/// `sizeof(struct verity_sb)`.
pub const SUPERBLOCK_SIZE: usize = 512;
/// Size of the salt field of the superblock; the longest salt cryptsetup accepts.
pub const MAX_SALT: usize = 256;
/// `VERITY_MAX_LEVELS` (cryptsetup `lib/verity/verity_hash.c`).
pub const MAX_LEVELS: usize = 63;
/// Data bytes hashed per parallel batch.
pub const BATCH_BYTES: usize = 4 << 20;

/// The hash algorithms Warrant computes, by their veritysetup (kernel crypto API) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerityHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3,
}

impl VerityHash {
    pub const ALL: [VerityHash; 5] = [
        VerityHash::Sha1,
        VerityHash::Sha256,
        VerityHash::Sha384,
        VerityHash::Sha512,
        VerityHash::Sm3,
    ];

    /// The name written in the superblock's `algorithm` field and given to `veritysetup --hash`.
    pub fn name(self) -> &'static str {
        match self {
            VerityHash::Sha1 => "sha1",
            VerityHash::Sha256 => "sha256",
            VerityHash::Sha384 => "sha384",
            VerityHash::Sha512 => "sha512",
            VerityHash::Sm3 => "sm3",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            VerityHash::Sha1 => 20,
            VerityHash::Sha256 | VerityHash::Sm3 => 32,
            VerityHash::Sha384 => 48,
            VerityHash::Sha512 => 64,
        }
    }

    /// `H(salt || block)`: the version-1 block hash (`verify_hash_block`).
    pub fn salted(self, salt: &[u8], block: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.digest_len()];
        Hasher::new(self, salt).hash_into(block, &mut out);
        out
    }
}

/// A hash state with the salt already absorbed, cloned for every block.
#[derive(Clone)]
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sm3(sm3::Sm3),
}

impl Hasher {
    fn new(alg: VerityHash, salt: &[u8]) -> Self {
        match alg {
            VerityHash::Sha1 => Hasher::Sha1(sha1::Sha1::new_with_prefix(salt)),
            VerityHash::Sha256 => Hasher::Sha256(sha2::Sha256::new_with_prefix(salt)),
            VerityHash::Sha384 => Hasher::Sha384(sha2::Sha384::new_with_prefix(salt)),
            VerityHash::Sha512 => Hasher::Sha512(sha2::Sha512::new_with_prefix(salt)),
            VerityHash::Sm3 => Hasher::Sm3(sm3::Sm3::new_with_prefix(salt)),
        }
    }

    /// Writes `H(salt || block)` into the first digest-length bytes of `out`.
    fn hash_into(&self, block: &[u8], out: &mut [u8]) {
        fn run<D: Digest + Clone>(prefix: &D, block: &[u8], out: &mut [u8]) {
            let digest = prefix.clone().chain_update(block).finalize();
            for (o, d) in out.iter_mut().zip(digest.iter()) {
                *o = *d;
            }
        }
        match self {
            Hasher::Sha1(h) => run(h, block, out),
            Hasher::Sha256(h) => run(h, block, out),
            Hasher::Sha384(h) => run(h, block, out),
            Hasher::Sha512(h) => run(h, block, out),
            Hasher::Sm3(h) => run(h, block, out),
        }
    }
}

/// Everything wrong with parameters, a superblock, the inputs, or a verification.
#[derive(Debug, Error)]
pub enum VerityError {
    /// `VERITY_BLOCK_SIZE_OK`: a power of two, a multiple of 512, at most 512 KiB.
    #[error("{which} block size {size} is not a power of two in 512..=524288")]
    BlockSize { which: &'static str, size: u64 },
    #[error("salt of {len} bytes is longer than {MAX_SALT}")]
    SaltTooLong { len: usize },
    #[error("the data has no complete block of {data_block_size} bytes")]
    NoDataBlocks { data_block_size: u32 },
    #[error("hash area overflow: {data_blocks} data blocks need more than {MAX_LEVELS} levels or 2^63 bytes")]
    HashAreaOverflow { data_blocks: u64 },
    #[error("hash offset {offset} is not a multiple of {multiple}")]
    HashOffset { offset: u64, multiple: u64 },
    #[error("superblock: {0}")]
    Codec(#[from] CodecError),
    #[error("superblock: no \"verity\" signature at the hash offset")]
    BadSignature,
    #[error("superblock: unsupported version {version} (only 1)")]
    UnsupportedVersion { version: u32 },
    #[error("superblock: unsupported hash type {hash_type} (only 1, normal)")]
    UnsupportedHashType { hash_type: u32 },
    #[error("unsupported hash algorithm {name:?}")]
    UnknownAlgorithm { name: String },
    #[error("superblock: non-zero byte at offset {offset} in padding")]
    NonZeroPadding { offset: u64 },
    #[error("{what} at byte {offset}: {source}")]
    Io {
        what: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// Data block `block` does not hash to the digest stored for it (at `hash_offset` of the
    /// hash device): the block or its stored digest was changed.
    #[error("data block {block} (byte {data_offset}) does not match its digest at hash-device byte {hash_offset}")]
    DataBlockMismatch {
        block: u64,
        data_offset: u64,
        hash_offset: u64,
    },
    /// A stored hash block differs from the one recomputed from the verified level below it.
    #[error("hash block {block} of level {level} (hash-device byte {offset}) is corrupt")]
    HashBlockMismatch {
        level: usize,
        block: u64,
        offset: u64,
    },
    #[error("root hash mismatch: expected {expected}, computed {computed}")]
    RootMismatch { expected: String, computed: String },
    #[error("root hash has {got} bytes, {hash} needs {expected}")]
    RootLength {
        hash: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("internal: level {level} has {written} blocks, expected {expected}")]
    Internal {
        level: usize,
        written: u64,
        expected: u64,
    },
}

impl VerityError {
    /// True when the inputs were readable and well-formed but do not match (exit status 1),
    /// false for unusable inputs (exit status 2).
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            VerityError::DataBlockMismatch { .. }
                | VerityError::HashBlockMismatch { .. }
                | VerityError::RootMismatch { .. }
        )
    }
}

/// What the tree is made from: `struct crypt_params_verity` minus devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Params {
    #[serde(rename = "hash_algorithm")]
    pub hash: VerityHash,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    #[serde(serialize_with = "crate::serde_hex")]
    pub salt: Vec<u8>,
}

fn check_block_size(which: &'static str, size: u32) -> Result<(), VerityError> {
    // VERITY_BLOCK_SIZE_OK (cryptsetup lib/verity/verity.h).
    if !(512..=512 * 1024).contains(&size) || !size.is_power_of_two() {
        return Err(VerityError::BlockSize {
            which,
            size: u64::from(size),
        });
    }
    Ok(())
}

impl Params {
    /// Checks what `veritysetup format` checks: block sizes, salt length, at least one block.
    pub fn validate(&self) -> Result<(), VerityError> {
        check_block_size("data", self.data_block_size)?;
        check_block_size("hash", self.hash_block_size)?;
        if self.salt.len() > MAX_SALT {
            return Err(VerityError::SaltTooLong {
                len: self.salt.len(),
            });
        }
        if self.data_blocks == 0 {
            return Err(VerityError::NoDataBlocks {
                data_block_size: self.data_block_size,
            });
        }
        Ok(())
    }
}

/// The on-disk superblock (`struct verity_sb`, 512 bytes, little-endian):
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 8 | signature `"verity\0\0"` |
/// | 8 | 4 | version (1) |
/// | 12 | 4 | hash_type (1 = normal) |
/// | 16 | 16 | uuid (binary) |
/// | 32 | 32 | algorithm name, NUL-padded |
/// | 64 | 4 | data_block_size |
/// | 68 | 4 | hash_block_size |
/// | 72 | 8 | data_blocks |
/// | 80 | 2 | salt_size |
/// | 82 | 6 | padding |
/// | 88 | 256 | salt, zero-padded |
/// | 344 | 168 | padding |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub uuid: [u8; 16],
    pub params: Params,
}

fn check_zero(bytes: &[u8], base: usize) -> Result<(), VerityError> {
    match bytes.iter().position(|b| *b != 0) {
        None => Ok(()),
        Some(i) => Err(VerityError::NonZeroPadding {
            offset: (base + i) as u64,
        }),
    }
}

impl Superblock {
    /// Parses a superblock area: the 512-byte superblock followed by any bytes up to the start
    /// of the hash area, which must all be zero. Offsets in errors are relative to the area.
    pub fn parse(area: &[u8]) -> Result<Self, VerityError> {
        let mut r = Reader::new(area);
        if r.take(8, "signature")? != SIGNATURE {
            return Err(VerityError::BadSignature);
        }
        let version = r.u32_le("version")?;
        if version != 1 {
            return Err(VerityError::UnsupportedVersion { version });
        }
        let hash_type = r.u32_le("hash_type")?;
        if hash_type != 1 {
            return Err(VerityError::UnsupportedHashType { hash_type });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(r.take(16, "uuid")?);
        let alg_at = r.offset();
        let alg = r.take(32, "algorithm")?;
        let name_len = alg.iter().position(|b| *b == 0).unwrap_or(alg.len());
        let (name, tail) = alg.split_at(name_len);
        check_zero(tail, alg_at + name_len)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let hash = VerityHash::from_name(&name).ok_or(VerityError::UnknownAlgorithm { name })?;
        let data_block_size = r.u32_le("data_block_size")?;
        let hash_block_size = r.u32_le("hash_block_size")?;
        let data_blocks = r.u64_le("data_blocks")?;
        let salt_size = usize::from(r.u16_le("salt_size")?);
        let at = r.offset();
        check_zero(r.take(6, "pad1")?, at)?;
        let at = r.offset();
        let salt_field = r.take(MAX_SALT, "salt")?;
        if salt_size > MAX_SALT {
            return Err(VerityError::SaltTooLong { len: salt_size });
        }
        let (salt, salt_pad) = salt_field.split_at(salt_size);
        check_zero(salt_pad, at + salt_size)?;
        let at = r.offset();
        check_zero(r.take(168, "pad2")?, at)?;
        let at = r.offset();
        check_zero(r.rest(), at)?;
        let params = Params {
            hash,
            data_block_size,
            hash_block_size,
            data_blocks,
            salt: salt.to_vec(),
        };
        params.validate()?;
        Ok(Superblock { uuid, params })
    }

    /// The 512 bytes `VERITY_write_sb` writes.
    pub fn to_bytes(&self) -> Result<[u8; SUPERBLOCK_SIZE], VerityError> {
        let p = &self.params;
        p.validate()?;
        let mut out = Vec::with_capacity(SUPERBLOCK_SIZE);
        out.extend_from_slice(&SIGNATURE);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&self.uuid);
        let mut alg = [0u8; 32];
        for (o, b) in alg.iter_mut().zip(p.hash.name().bytes()) {
            *o = b;
        }
        out.extend_from_slice(&alg);
        out.extend_from_slice(&p.data_block_size.to_le_bytes());
        out.extend_from_slice(&p.hash_block_size.to_le_bytes());
        out.extend_from_slice(&p.data_blocks.to_le_bytes());
        // validate() bounds the salt to 256 bytes.
        out.extend_from_slice(&(p.salt.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0u8; 6]);
        out.extend_from_slice(&p.salt);
        out.resize(SUPERBLOCK_SIZE, 0);
        let mut sb = [0u8; SUPERBLOCK_SIZE];
        sb.copy_from_slice(&out);
        Ok(sb)
    }
}

/// Parses a UUID in its text form (`01234567-89ab-cdef-0123-456789abcdef`) into the 16 bytes
/// `uuid_parse` stores.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let bytes = hex::decode(groups.concat()).ok()?;
    bytes.try_into().ok()
}

/// The text form of a UUID (`uuid_unparse`, lowercase).
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let h = hex::encode(uuid);
    let (a, rest) = h.split_at(8);
    let (b, rest) = rest.split_at(4);
    let (c, rest) = rest.split_at(4);
    let (d, e) = rest.split_at(4);
    format!("{a}-{b}-{c}-{d}-{e}")
}

/// One level of the tree: `blocks` hash blocks from hash-device block `first_block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Level {
    pub first_block: u64,
    pub blocks: u64,
}

/// Where everything lives on the hash device (`hash_levels`, `VERITY_hash_offset_block`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Byte offset of the superblock (or of the hash area with no superblock).
    pub hash_offset: u64,
    pub superblock: bool,
    /// Digests per hash block.
    pub hash_per_block: u64,
    /// Bytes per digest slot: the digest length rounded up to a power of two.
    pub slot_len: usize,
    /// First hash block (in units of hash_block_size from the start of the hash device) of
    /// the hash area.
    pub hash_area_block: u64,
    /// Levels, index 0 = the digests of the data blocks; the last is the top (one block).
    pub levels: Vec<Level>,
    /// One past the last hash block: the hash device is `end_block * hash_block_size` bytes.
    pub end_block: u64,
}

impl Layout {
    /// Computes the layout for `params` with the superblock (or, without it, the hash area)
    /// at byte `hash_offset`, which must be a multiple of 512 (of the hash block size without
    /// a superblock).
    pub fn new(params: &Params, hash_offset: u64, superblock: bool) -> Result<Self, VerityError> {
        params.validate()?;
        let hbs = u64::from(params.hash_block_size);
        let multiple = if superblock { 512 } else { hbs };
        if !hash_offset.is_multiple_of(multiple) {
            return Err(VerityError::HashOffset {
                offset: hash_offset,
                multiple,
            });
        }
        let overflow = VerityError::HashAreaOverflow {
            data_blocks: params.data_blocks,
        };
        let digest = params.hash.digest_len() as u64;
        // get_bits_down(hash_block_size / digest_size)
        let per = hbs / digest;
        let bits = u64::from(63 - per.max(1).leading_zeros());
        if bits == 0 {
            return Err(VerityError::BlockSize {
                which: "hash",
                size: hbs,
            });
        }
        let slot_len = params.hash.digest_len().next_power_of_two();
        let hash_area_block = if superblock {
            hash_offset
                .checked_add(SUPERBLOCK_SIZE as u64 + hbs - 1)
                .ok_or(VerityError::HashAreaOverflow {
                    data_blocks: params.data_blocks,
                })?
                / hbs
        } else {
            hash_offset / hbs
        };
        let mut levels = 0u64;
        while bits * levels < 64 && (params.data_blocks - 1) >> (bits * levels) != 0 {
            levels += 1;
        }
        if levels as usize > MAX_LEVELS {
            return Err(overflow);
        }
        let mut out = vec![
            Level {
                first_block: 0,
                blocks: 0
            };
            levels as usize
        ];
        let mut position = hash_area_block;
        for (i, level) in out.iter_mut().enumerate().rev() {
            let shift = (i as u64 + 1) * bits;
            let blocks = if shift >= 64 {
                1
            } else {
                params.data_blocks.div_ceil(1u64 << shift)
            };
            *level = Level {
                first_block: position,
                blocks,
            };
            position = position
                .checked_add(blocks)
                .ok_or(VerityError::HashAreaOverflow {
                    data_blocks: params.data_blocks,
                })?;
        }
        if position
            .checked_mul(hbs)
            .is_none_or(|b| b > i64::MAX as u64)
        {
            return Err(overflow);
        }
        Ok(Layout {
            hash_offset,
            superblock,
            hash_per_block: 1 << bits,
            slot_len,
            hash_area_block,
            levels: out,
            end_block: position,
        })
    }

    /// Number of hash blocks of the tree (veritysetup's "Hash blocks").
    pub fn hash_blocks(&self) -> u64 {
        self.levels.iter().map(|l| l.blocks).sum()
    }
}

/// Where computed hash blocks go: written (format) or compared (verify).
trait BlockSink {
    /// `bytes` are whole hash blocks of `level`, the first being block `index` of that level,
    /// at hash-device byte `offset`.
    fn put(
        &mut self,
        level: usize,
        index: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), VerityError>;
}

struct Writer<'a, W>(&'a mut W);

impl<W: Write + Seek> BlockSink for Writer<'_, W> {
    fn put(&mut self, _: usize, _: u64, offset: u64, bytes: &[u8]) -> Result<(), VerityError> {
        let io = |source| VerityError::Io {
            what: "writing the hash device",
            offset,
            source,
        };
        self.0.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.0.write_all(bytes).map_err(io)
    }
}

struct Checker<'a, R> {
    hash_dev: &'a mut R,
    buf: Vec<u8>,
    hash_block_size: usize,
    slot_len: usize,
    digest_len: usize,
    hash_per_block: u64,
    data_block_size: u64,
    data_blocks: u64,
}

impl<R: Read + Seek> BlockSink for Checker<'_, R> {
    fn put(
        &mut self,
        level: usize,
        index: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), VerityError> {
        let io = |source| VerityError::Io {
            what: "reading the hash device",
            offset,
            source,
        };
        self.buf.resize(bytes.len(), 0);
        self.hash_dev.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.hash_dev.read_exact(&mut self.buf).map_err(io)?;
        let Some(pos) = self.buf.iter().zip(bytes).position(|(a, b)| a != b) else {
            return Ok(());
        };
        let hbs = self.hash_block_size;
        let block = index + (pos / hbs) as u64;
        let slot = ((pos % hbs) / self.slot_len) as u64;
        let in_digest = (pos % hbs) % self.slot_len < self.digest_len;
        if level == 0 && slot < self.hash_per_block && in_digest {
            let data_block = block * self.hash_per_block + slot;
            if data_block < self.data_blocks {
                return Err(VerityError::DataBlockMismatch {
                    block: data_block,
                    data_offset: data_block * self.data_block_size,
                    hash_offset: offset + (pos - pos % self.slot_len) as u64,
                });
            }
        }
        Err(VerityError::HashBlockMismatch {
            level,
            block,
            offset: offset + (pos - pos % hbs) as u64,
        })
    }
}

/// A level above 0 being filled: one hash block.
struct Pending {
    buf: Vec<u8>,
    slots: u64,
    written: u64,
}

struct Tree<'a, S> {
    params: &'a Params,
    layout: &'a Layout,
    hasher: Hasher,
    sink: S,
    pending: Vec<Pending>,
    root: Option<Vec<u8>>,
}

impl<S: BlockSink> Tree<'_, S> {
    fn level_offset(&self, level: usize, index: u64) -> u64 {
        let first = self.layout.levels.get(level).map_or(0, |l| l.first_block);
        (first + index) * u64::from(self.params.hash_block_size)
    }

    /// Adds the digest of a completed block of level `level - 1` to level `level`.
    fn push(&mut self, mut level: usize, mut digest: Vec<u8>) -> Result<(), VerityError> {
        let levels = self.layout.levels.len();
        let slot_len = self.layout.slot_len;
        let per = self.layout.hash_per_block;
        loop {
            if level >= levels {
                self.root = Some(digest);
                return Ok(());
            }
            let Some(p) = self.pending.get_mut(level) else {
                return Ok(());
            };
            let at = p.slots as usize * slot_len;
            if let Some(slot) = p.buf.get_mut(at..at + digest.len()) {
                slot.copy_from_slice(&digest);
            }
            p.slots += 1;
            if p.slots < per {
                return Ok(());
            }
            digest = self.flush(level)?;
            level += 1;
        }
    }

    /// Emits the pending block of `level` and returns its digest.
    fn flush(&mut self, level: usize) -> Result<Vec<u8>, VerityError> {
        let index = self.pending.get(level).map_or(0, |p| p.written);
        let offset = self.level_offset(level, index);
        let Some(p) = self.pending.get_mut(level) else {
            return Ok(Vec::new());
        };
        self.sink.put(level, index, offset, &p.buf)?;
        let mut digest = vec![0u8; self.params.hash.digest_len()];
        self.hasher.hash_into(&p.buf, &mut digest);
        p.buf.fill(0);
        p.slots = 0;
        p.written += 1;
        Ok(digest)
    }

    /// Hashes the whole data stream and returns the root hash.
    ///
    /// Batches are double-buffered: while the rayon pool hashes batch k, batch k+1 is read
    /// (`rayon::join`), so reading and hashing overlap. Level 0 is written per batch; the upper
    /// levels are fed on this thread as level-0 blocks complete.
    fn run(
        mut self,
        data: &mut (dyn Read + Send),
        progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>, VerityError> {
        let dbs = self.params.data_block_size as usize;
        let per = self.layout.hash_per_block as usize;
        let batch_blocks = ((BATCH_BYTES / dbs) / per).max(1) * per;
        let total = self.params.data_blocks;
        let mut current = vec![0u8; batch_blocks * dbs];
        let mut next = vec![0u8; batch_blocks * dbs];
        let batch_len =
            |start: u64| (total.saturating_sub(start)).min(batch_blocks as u64) as usize;
        let mut done: u64 = 0;
        read_batch(data, &mut current, batch_len(0) * dbs, 0)?;
        while done < total {
            let n = batch_len(done);
            let next_start = done + n as u64;
            let next_n = batch_len(next_start);
            let hasher = &self.hasher;
            let layout = self.layout;
            let digest_len = self.params.hash.digest_len();
            let hbs = self.params.hash_block_size as usize;
            let cur = current.get(..n * dbs).unwrap_or_default();
            let (read, hashed) = rayon::join(
                || read_batch(data, &mut next, next_n * dbs, next_start * dbs as u64),
                || hash_batch(hasher, layout, cur, dbs, hbs, digest_len),
            );
            read?;
            let (level0, block_digests) = hashed;
            if layout.levels.is_empty() {
                // One data block: its digest is the root; there is no tree.
                self.root = Some(level0);
            } else {
                let index = done / per as u64;
                let offset = self.level_offset(0, index);
                self.sink.put(0, index, offset, &level0)?;
                for d in block_digests {
                    self.push(1, d)?;
                }
            }
            done = next_start;
            progress(done);
            std::mem::swap(&mut current, &mut next);
        }
        // Partial blocks of the upper levels, bottom up (zero-padded).
        for level in 1..self.layout.levels.len() {
            if self.pending.get(level).is_some_and(|p| p.slots > 0) {
                let d = self.flush(level)?;
                self.push(level + 1, d)?;
            }
        }
        for (level, (l, p)) in self
            .layout
            .levels
            .iter()
            .zip(&self.pending)
            .enumerate()
            .skip(1)
        {
            if p.written != l.blocks {
                return Err(VerityError::Internal {
                    level,
                    written: p.written,
                    expected: l.blocks,
                });
            }
        }
        self.root.ok_or(VerityError::Internal {
            level: self.layout.levels.len(),
            written: 0,
            expected: 1,
        })
    }
}

/// Reads exactly `len` bytes of data into the front of `buf`.
fn read_batch(
    data: &mut (dyn Read + Send),
    buf: &mut [u8],
    len: usize,
    offset: u64,
) -> Result<(), VerityError> {
    let dest = buf.get_mut(..len).unwrap_or_default();
    data.read_exact(dest).map_err(|source| VerityError::Io {
        what: "reading the data",
        offset,
        source,
    })
}

/// Hashes one batch of data blocks in parallel. Returns the level-0 hash blocks of the batch
/// (whole, zero-padded blocks: batches start on a hash-block boundary) and the digest of each
/// of those blocks. With no tree (one data block), returns that block's digest and nothing.
fn hash_batch(
    hasher: &Hasher,
    layout: &Layout,
    data: &[u8],
    dbs: usize,
    hbs: usize,
    digest_len: usize,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let per = layout.hash_per_block as usize;
    let slot_len = layout.slot_len;
    let n = data.len() / dbs.max(1);
    let mut digests = vec![0u8; n * digest_len];
    digests
        .par_chunks_mut(digest_len)
        .zip(data.par_chunks(dbs))
        .with_min_len(64)
        .for_each(|(o, block)| hasher.hash_into(block, o));
    if layout.levels.is_empty() {
        return (digests, Vec::new());
    }
    let mut level0 = vec![0u8; n.div_ceil(per) * hbs];
    for (i, d) in digests.chunks(digest_len).enumerate() {
        let at = (i / per) * hbs + (i % per) * slot_len;
        if let Some(slot) = level0.get_mut(at..at + digest_len) {
            slot.copy_from_slice(d);
        }
    }
    let block_digests = level0
        .par_chunks(hbs)
        .map(|b| {
            let mut d = vec![0u8; digest_len];
            hasher.hash_into(b, &mut d);
            d
        })
        .collect();
    (level0, block_digests)
}

fn tree<'a, S: BlockSink>(params: &'a Params, layout: &'a Layout, sink: S) -> Tree<'a, S> {
    let hbs = params.hash_block_size as usize;
    Tree {
        params,
        layout,
        hasher: Hasher::new(params.hash, &params.salt),
        sink,
        pending: (0..layout.levels.len())
            .map(|_| Pending {
                buf: vec![0u8; hbs],
                slots: 0,
                written: 0,
            })
            .collect(),
        root: None,
    }
}

/// The result of [`format`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Formatted {
    #[serde(serialize_with = "crate::serde_hex")]
    pub root_hash: Vec<u8>,
    pub layout: Layout,
}

/// Builds the hash device as `veritysetup format` does: reads `params.data_blocks` blocks
/// from `data`, writes the superblock (when `uuid` is given) at `hash_offset` and the tree
/// after it into `hash_dev`, and returns the root hash. `progress` is called with the number
/// of data blocks hashed so far. Bytes of `hash_dev` outside the superblock area and the tree
/// are left alone.
pub fn format<W: Write + Seek>(
    params: &Params,
    data: &mut (dyn Read + Send),
    hash_dev: &mut W,
    hash_offset: u64,
    uuid: Option<[u8; 16]>,
    progress: &mut dyn FnMut(u64),
) -> Result<Formatted, VerityError> {
    let layout = Layout::new(params, hash_offset, uuid.is_some())?;
    if let Some(uuid) = uuid {
        let sb = Superblock {
            uuid,
            params: params.clone(),
        }
        .to_bytes()?;
        let area = layout.hash_area_block * u64::from(params.hash_block_size) - hash_offset;
        let mut bytes = sb.to_vec();
        bytes.resize(area as usize, 0);
        Writer(hash_dev).put(0, 0, hash_offset, &bytes)?;
    }
    let root_hash = tree(params, &layout, Writer(hash_dev)).run(data, progress)?;
    Ok(Formatted { root_hash, layout })
}

/// Reads the superblock area at `hash_offset` of a hash device (the superblock and the zero
/// bytes up to the hash area) and parses it with [`Superblock::parse`].
pub fn read_superblock<R: Read + Seek>(
    hash_dev: &mut R,
    hash_offset: u64,
) -> Result<Superblock, VerityError> {
    let io = |source| VerityError::Io {
        what: "reading the superblock",
        offset: hash_offset,
        source,
    };
    if !hash_offset.is_multiple_of(512) {
        return Err(VerityError::HashOffset {
            offset: hash_offset,
            multiple: 512,
        });
    }
    hash_dev.seek(SeekFrom::Start(hash_offset)).map_err(io)?;
    let mut sb = vec![0u8; SUPERBLOCK_SIZE];
    hash_dev.read_exact(&mut sb).map_err(io)?;
    let first = Superblock::parse(&sb)?;
    // The rest of the area up to the hash area must be zero too.
    let layout = Layout::new(&first.params, hash_offset, true)?;
    let area = layout.hash_area_block * u64::from(first.params.hash_block_size) - hash_offset;
    let mut rest = vec![0u8; area as usize - SUPERBLOCK_SIZE];
    hash_dev.read_exact(&mut rest).map_err(io)?;
    check_zero(&rest, SUPERBLOCK_SIZE)?;
    Ok(first)
}

/// Verifies `data` against the tree in `hash_dev` and `root_hash`: recomputes every block of
/// the tree and compares it with the stored one, level 0 first within each batch, then the
/// root. The first difference is returned as [`VerityError::DataBlockMismatch`] (a data block
/// or its stored digest), [`VerityError::HashBlockMismatch`] (a stored hash block, including
/// its zero padding) or [`VerityError::RootMismatch`]. The superblock is not read here: see
/// [`read_superblock`].
pub fn verify<R: Read + Seek>(
    params: &Params,
    data: &mut (dyn Read + Send),
    hash_dev: &mut R,
    hash_offset: u64,
    superblock: bool,
    root_hash: &[u8],
    progress: &mut dyn FnMut(u64),
) -> Result<Layout, VerityError> {
    let expected_len = params.hash.digest_len();
    if root_hash.len() != expected_len {
        return Err(VerityError::RootLength {
            hash: params.hash.name(),
            expected: expected_len,
            got: root_hash.len(),
        });
    }
    let layout = Layout::new(params, hash_offset, superblock)?;
    let checker = Checker {
        hash_dev,
        buf: Vec::new(),
        hash_block_size: params.hash_block_size as usize,
        slot_len: layout.slot_len,
        digest_len: params.hash.digest_len(),
        hash_per_block: layout.hash_per_block,
        data_block_size: u64::from(params.data_block_size),
        data_blocks: params.data_blocks,
    };
    let computed = tree(params, &layout, checker).run(data, progress)?;
    if computed != root_hash {
        return Err(VerityError::RootMismatch {
            expected: hex::encode(root_hash),
            computed: hex::encode(computed),
        });
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn params(data_blocks: u64) -> Params {
        Params {
            hash: VerityHash::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks,
            salt: vec![0xab; 32],
        }
    }

    #[test]
    fn layout_matches_veritysetup_counts() {
        // veritysetup format on 1 MiB (256 blocks): "Hash blocks: 3", device 16384 bytes.
        let l = Layout::new(&params(256), 0, true).unwrap();
        assert_eq!(l.hash_blocks(), 3);
        assert_eq!(l.end_block * 4096, 16384);
        // Top level first: level 1 (1 block) at block 1, level 0 (2 blocks) at block 2.
        assert_eq!(
            l.levels[1],
            Level {
                first_block: 1,
                blocks: 1
            }
        );
        assert_eq!(
            l.levels[0],
            Level {
                first_block: 2,
                blocks: 2
            }
        );
        // One block: no tree. sha1, 512/1024, 2080 blocks: 69 hash blocks.
        assert!(Layout::new(&params(1), 0, true).unwrap().levels.is_empty());
        let p = Params {
            hash: VerityHash::Sha1,
            data_block_size: 512,
            hash_block_size: 1024,
            data_blocks: 2080,
            salt: vec![],
        };
        assert_eq!(Layout::new(&p, 0, false).unwrap().hash_blocks(), 69);
        // Superblock at 1049088 (512-aligned): hash area from block 257.
        assert_eq!(
            Layout::new(&params(256), 1_049_088, true)
                .unwrap()
                .hash_area_block,
            257
        );
    }

    #[test]
    fn superblock_round_trips_and_rejects_bad_fields() {
        let sb = Superblock {
            uuid: [7; 16],
            params: params(10),
        };
        let bytes = sb.to_bytes().unwrap();
        assert_eq!(Superblock::parse(&bytes).unwrap(), sb);
        let mut area = bytes.to_vec();
        area.resize(4096, 0);
        assert_eq!(Superblock::parse(&area).unwrap(), sb);
        // Every byte outside the uuid is checked.
        for i in (0..4096).filter(|i| !(16..32).contains(i)) {
            let mut bad = area.clone();
            bad[i] ^= 0x01;
            if let Ok(parsed) = Superblock::parse(&bad) {
                assert_ne!(parsed, sb, "byte {i}");
            }
        }
        let mut bad = area.clone();
        bad[80] = 1;
        bad[81] = 1; // salt_size 257
        assert!(matches!(
            Superblock::parse(&bad),
            Err(VerityError::SaltTooLong { len: 257 })
        ));
        assert!(matches!(
            Superblock::parse(&area[..100]),
            Err(VerityError::Codec(_))
        ));
    }

    #[test]
    fn uuid_text_round_trips() {
        let text = "01234567-89ab-cdef-0123-456789abcdef";
        let u = parse_uuid(text).unwrap();
        assert_eq!(format_uuid(&u), text);
        assert!(parse_uuid("0123456789abcdef0123456789abcdef").is_none());
        assert!(parse_uuid("01234567-89ab-cdef-0123-456789abcdeg").is_none());
    }

    #[test]
    fn format_then_verify_catches_every_flip() {
        let p = Params {
            hash: VerityHash::Sha256,
            data_block_size: 512,
            hash_block_size: 512,
            data_blocks: 40,
            salt: b"salt".to_vec(),
        };
        let data: Vec<u8> = (0..40 * 512u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut dev = Cursor::new(Vec::new());
        let f = format(&p, &mut &data[..], &mut dev, 0, Some([1; 16]), &mut |_| {}).unwrap();
        let dev = dev.into_inner();
        assert_eq!(dev.len() as u64, f.layout.end_block * 512);
        let check = |data: &[u8], dev: &[u8]| {
            let mut c = Cursor::new(dev.to_vec());
            let sb = read_superblock(&mut c, 0)?;
            verify(
                &sb.params,
                &mut &data[..],
                &mut c,
                0,
                true,
                &f.root_hash,
                &mut |_| {},
            )
        };
        check(&data, &dev).unwrap();
        let mut d = data.clone();
        d[20 * 512 + 5] ^= 1;
        assert!(matches!(
            check(&d, &dev),
            Err(VerityError::DataBlockMismatch { block: 20, .. })
        ));
        for i in (0..dev.len()).filter(|i| !(16..32).contains(i)) {
            let mut h = dev.clone();
            h[i] ^= 0x80;
            assert!(check(&data, &h).is_err(), "hash-device byte {i}");
        }
    }
}
