//! The 4096-byte binary header of a LUKS2 copy (`struct luks2_hdr_disk`, LUKS2 On-Disk Format
//! Specification §2.1; cryptsetup `lib/luks2/luks2.h` and `lib/luks2/luks2_disk_metadata.c`).
//!
//! ```text
//! offset size  field
//!      0    6  magic          "LUKS\xba\xbe" (primary) / "SKUL\xba\xbe" (secondary)
//!      6    2  version        2 (big endian, as every integer here)
//!      8    8  hdr_size       binary header + JSON area, bytes
//!     16    8  seqid          incremented on every metadata update
//!     24   48  label          NUL-terminated
//!     72   32  checksum_alg   NUL-terminated, "sha256"
//!    104   64  salt           per copy
//!    168   40  uuid           NUL-terminated
//!    208   48  subsystem      NUL-terminated
//!    256    8  hdr_offset     offset of this copy on the device
//!    264  184  padding
//!    448   64  csum           digest of hdr_size bytes with this field zeroed
//!    512 3584  padding
//! ```

use super::{Copy, CopyDefect, BIN_LEN, HDR_SIZES};
use crate::codec::Reader;
use sha2::Digest;

pub(crate) const MAGIC_1ST: [u8; 6] = *b"LUKS\xba\xbe";
pub(crate) const MAGIC_2ND: [u8; 6] = *b"SKUL\xba\xbe";
pub(crate) const LABEL_LEN: usize = 48;
pub(crate) const CSUM_ALG_LEN: usize = 32;
pub(crate) const SALT_LEN: usize = 64;
pub(crate) const UUID_LEN: usize = 40;
pub(crate) const CSUM_OFFSET: usize = 448;
pub(crate) const CSUM_LEN: usize = 64;

/// The hash of the header checksum (`checksum_alg`). cryptsetup writes `sha256`; the others are
/// accepted on read because cryptsetup accepts any hash its crypto backend knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumAlg {
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlg::Sha1 => "sha1",
            ChecksumAlg::Sha256 => "sha256",
            ChecksumAlg::Sha384 => "sha384",
            ChecksumAlg::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// Digest of `bin` (with its csum field already zeroed) followed by `json_area`.
    pub(crate) fn digest(self, bin: &[u8], json_area: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(bin: &[u8], json: &[u8]) -> Vec<u8> {
            D::new()
                .chain_update(bin)
                .chain_update(json)
                .finalize()
                .to_vec()
        }
        match self {
            ChecksumAlg::Sha1 => run::<sha1::Sha1>(bin, json_area),
            ChecksumAlg::Sha256 => run::<sha2::Sha256>(bin, json_area),
            ChecksumAlg::Sha384 => run::<sha2::Sha384>(bin, json_area),
            ChecksumAlg::Sha512 => run::<sha2::Sha512>(bin, json_area),
        }
    }
}

/// One binary header as read from the device, before its checksum is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BinHeader {
    pub hdr_size: u64,
    pub seqid: u64,
    pub label: String,
    pub checksum_alg: ChecksumAlg,
    pub salt: [u8; SALT_LEN],
    pub uuid: String,
    pub subsystem: String,
}

/// A NUL-terminated string field. As cryptsetup (`hdr_from_disk`), the last byte is treated as
/// NUL whatever it holds; the text must be UTF-8.
fn c_string(field: &[u8], base: usize, name: &'static str) -> Result<String, CopyDefect> {
    let limit = field.len().saturating_sub(1);
    let head = field.get(..limit).unwrap_or_default();
    let end = head.iter().position(|b| *b == 0).unwrap_or(head.len());
    let text = head.get(..end).unwrap_or_default();
    String::from_utf8(text.to_vec()).map_err(|_| CopyDefect::NotUtf8 {
        offset: base as u64,
        field: name,
    })
}

/// Bytes `[at, at + len)` of `input`, or a truncation defect.
pub(crate) fn slice_at(input: &[u8], at: u64, len: u64) -> Result<&[u8], CopyDefect> {
    let truncated = || CopyDefect::Truncated {
        offset: at,
        needed: len,
        available: (input.len() as u64).saturating_sub(at),
    };
    let start = usize::try_from(at).map_err(|_| truncated())?;
    let n = usize::try_from(len).map_err(|_| truncated())?;
    let mut r = Reader::at(input.get(start..).unwrap_or_default(), start);
    r.take(n, "LUKS2 header").map_err(|_| truncated())
}

/// Reads the binary header of `copy` at absolute offset `at` and runs cryptsetup's checks that
/// come before the checksum (`hdr_disk_sanity_check_pre`): magic, version, `hdr_offset`, size.
/// The checksum algorithm is checked here too, since nothing can be verified without it.
pub(crate) fn parse_bin(input: &[u8], at: u64, copy: Copy) -> Result<BinHeader, CopyDefect> {
    let bin = slice_at(input, at, BIN_LEN as u64)?;
    let base = at as usize;
    let mut r = Reader::at(bin, base);
    let truncated = |_| CopyDefect::Truncated {
        offset: at,
        needed: BIN_LEN as u64,
        available: bin.len() as u64,
    };
    let magic = r.take(6, "magic").map_err(truncated)?;
    let want = match copy {
        Copy::Primary => MAGIC_1ST,
        Copy::Secondary => MAGIC_2ND,
    };
    if magic != want {
        return Err(CopyDefect::BadMagic { offset: at });
    }
    let version = r.u16_be("version").map_err(truncated)?;
    if version != 2 {
        return Err(CopyDefect::UnsupportedVersion {
            offset: at,
            version,
        });
    }
    let hdr_size = r.u64_be("hdr_size").map_err(truncated)?;
    let seqid = r.u64_be("seqid").map_err(truncated)?;
    let label_at = r.offset();
    let label = c_string(
        r.take(LABEL_LEN, "label").map_err(truncated)?,
        label_at,
        "label",
    )?;
    let alg_at = r.offset();
    let alg = c_string(
        r.take(CSUM_ALG_LEN, "checksum_alg").map_err(truncated)?,
        alg_at,
        "checksum_alg",
    )?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(r.take(SALT_LEN, "salt").map_err(truncated)?);
    let uuid_at = r.offset();
    let uuid = c_string(
        r.take(UUID_LEN, "uuid").map_err(truncated)?,
        uuid_at,
        "uuid",
    )?;
    let sub_at = r.offset();
    let subsystem = c_string(
        r.take(LABEL_LEN, "subsystem").map_err(truncated)?,
        sub_at,
        "subsystem",
    )?;
    let hdr_offset = r.u64_be("hdr_offset").map_err(truncated)?;
    if hdr_offset != at {
        return Err(CopyDefect::HdrOffset {
            offset: at,
            recorded: hdr_offset,
        });
    }
    if !HDR_SIZES.contains(&hdr_size) {
        return Err(CopyDefect::HdrSize {
            offset: at,
            size: hdr_size,
        });
    }
    if copy == Copy::Secondary && hdr_size != at {
        return Err(CopyDefect::SecondaryOffset {
            offset: at,
            hdr_size,
        });
    }
    let checksum_alg = ChecksumAlg::from_name(&alg).ok_or(CopyDefect::UnknownChecksumAlg {
        offset: at,
        name: alg,
    })?;
    Ok(BinHeader {
        hdr_size,
        seqid,
        label,
        checksum_alg,
        salt,
        uuid,
        subsystem,
    })
}

/// Verifies the checksum of the copy whose binary header `bin` sits at `at` and returns its JSON
/// area. The stored digest occupies the first digest-length bytes of `csum`; the rest of the
/// field, which the checksum cannot cover, must be zero.
pub(crate) fn verify_checksum<'a>(
    input: &'a [u8],
    at: u64,
    bin: &BinHeader,
) -> Result<&'a [u8], CopyDefect> {
    let whole = slice_at(input, at, bin.hdr_size)?;
    let (head, json_area) = whole.split_at(BIN_LEN.min(whole.len()));
    let mut zeroed = head.to_vec();
    let stored = head
        .get(CSUM_OFFSET..CSUM_OFFSET + CSUM_LEN)
        .unwrap_or_default()
        .to_vec();
    if let Some(field) = zeroed.get_mut(CSUM_OFFSET..CSUM_OFFSET + CSUM_LEN) {
        field.fill(0);
    }
    let computed = bin.checksum_alg.digest(&zeroed, json_area);
    let (digest, rest) = stored.split_at(computed.len().min(stored.len()));
    if digest != computed.as_slice() {
        return Err(CopyDefect::ChecksumMismatch {
            offset: at,
            alg: bin.checksum_alg.name(),
        });
    }
    if let Some(i) = rest.iter().position(|b| *b != 0) {
        return Err(CopyDefect::NonZeroChecksumPadding {
            offset: at + (CSUM_OFFSET + computed.len() + i) as u64,
        });
    }
    Ok(json_area)
}

fn put_str(out: &mut [u8], text: &str) {
    // cryptsetup (`hdr_to_disk`) copies at most len - 1 bytes and keeps the last byte NUL.
    let limit = out.len().saturating_sub(1);
    for (o, b) in out.iter_mut().take(limit).zip(text.bytes()) {
        *o = b;
    }
}

/// Serialises one copy (binary header with checksum, then the JSON area) exactly as
/// cryptsetup's `hdr_write_disk` does: every unused byte zero.
pub(crate) fn write_copy(bin: &BinHeader, copy: Copy, json_area: &[u8]) -> Vec<u8> {
    let mut head = vec![0u8; BIN_LEN];
    let at = match copy {
        Copy::Primary => 0,
        Copy::Secondary => bin.hdr_size,
    };
    let magic = match copy {
        Copy::Primary => MAGIC_1ST,
        Copy::Secondary => MAGIC_2ND,
    };
    let fields: [(usize, &[u8]); 5] = [
        (0, &magic),
        (6, &2u16.to_be_bytes()),
        (8, &bin.hdr_size.to_be_bytes()),
        (16, &bin.seqid.to_be_bytes()),
        (104, &bin.salt),
    ];
    for (off, bytes) in fields {
        if let Some(dst) = head.get_mut(off..off + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    if let Some(dst) = head.get_mut(256..264) {
        dst.copy_from_slice(&at.to_be_bytes());
    }
    let strings: [(usize, usize, &str); 4] = [
        (24, LABEL_LEN, &bin.label),
        (72, CSUM_ALG_LEN, bin.checksum_alg.name()),
        (168, UUID_LEN, &bin.uuid),
        (208, LABEL_LEN, &bin.subsystem),
    ];
    for (off, len, text) in strings {
        if let Some(dst) = head.get_mut(off..off + len) {
            put_str(dst, text);
        }
    }
    let digest = bin.checksum_alg.digest(&head, json_area);
    if let Some(dst) = head.get_mut(CSUM_OFFSET..CSUM_OFFSET + digest.len()) {
        dst.copy_from_slice(&digest);
    }
    head.extend_from_slice(json_area);
    head
}
