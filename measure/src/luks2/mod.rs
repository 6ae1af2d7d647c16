//! LUKS2 headers, read and written byte for byte as cryptsetup does, for `warrant disk`.
//!
//! Sources: the *LUKS2 On-Disk Format Specification* (Milan Brož; §2 binary
//! header, §3 JSON area) and cryptsetup `lib/luks2/luks2_disk_metadata.c`
//! (`hdr_read_disk`, `hdr_disk_sanity_check_pre`, `hdr_checksum_check`, `LUKS2_disk_hdr_read`,
//! `hdr_write_disk`, `LUKS2_disk_hdr_write`, `validate_json_area`). The page `docs/luks2.md`
//! describes the format as Warrant reads it.
//!
//! ## Layout
//! ```text
//! 0            primary copy:   binary header (4096) | JSON area (hdr_size - 4096)
//! hdr_size     secondary copy: binary header (4096) | JSON area (hdr_size - 4096)
//! 2 * hdr_size keyslots area (config.keyslots_size bytes), then the data segment
//! ```
//! Both copies carry the same JSON and `seqid`; each has its own salt and magic. A copy is
//! valid when its binary header passes the sanity checks, its checksum (over `hdr_size` bytes
//! with the `csum` field zeroed) matches, and its JSON area parses and validates. As cryptsetup,
//! [`Header::parse`] uses the valid copy with the higher `seqid` (the primary on a tie) and
//! reports the other as a [`Luks2Warning`]; only when neither copy is valid does it fail.
//!
//! ## Purity and trust
//! Nothing here opens a device: callers pass the first bytes of it ([`required_len`] says how
//! many) and write back what [`Header::to_bytes`] returns. A parsed [`Header`] is *untrusted*
//! metadata: the checksum only detects accidental damage (anyone who can write the disk can
//! recompute it). What protects a sealed disk is the TPM policy of its token, not this header.

pub mod binary;
pub mod json;
pub mod tpm2_token;

pub use binary::ChecksumAlg;
use binary::{BinHeader, SALT_LEN};
pub use json::{
    Af, Config, Digest, JsonError, JsonU64, Kdf, Keyslot, KeyslotArea, Metadata, ObjectId,
    RawToken, Segment, SegmentSize, Token,
};
use thiserror::Error;
pub use tpm2_token::{OneOrMany, PcrBank, PrimaryAlg, SystemdTpm2Token, TokenError};

/// `LUKS2_HDR_BIN_LEN`: size of the binary header of each copy.
pub const BIN_LEN: usize = 4096;
/// The header sizes the specification allows (16 KiB to 4 MiB, powers of two), which are also
/// the offsets where cryptsetup looks for a secondary copy when the primary is unusable
/// (`LUKS2_HDR2_OFFSETS`).
pub const HDR_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

/// Which of the two header copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Copy {
    Primary,
    Secondary,
}

/// Why one copy of the header is unusable. Offsets are absolute byte offsets in the input.
#[derive(Debug, Error)]
pub enum CopyDefect {
    #[error("truncated at byte {offset}: {needed} bytes needed, {available} available")]
    Truncated {
        offset: u64,
        needed: u64,
        available: u64,
    },
    /// No secondary copy at any offset in [`HDR_SIZES`] (only searched when the primary is
    /// unusable, as cryptsetup does).
    #[error("no secondary header at any known offset")]
    NotFound,
    #[error("bad magic at byte {offset}")]
    BadMagic { offset: u64 },
    #[error("unsupported version {version} at byte {offset}")]
    UnsupportedVersion { offset: u64, version: u16 },
    #[error("header at byte {offset} records hdr_offset {recorded}")]
    HdrOffset { offset: u64, recorded: u64 },
    #[error("header at byte {offset} has invalid hdr_size {size}")]
    HdrSize { offset: u64, size: u64 },
    #[error("secondary header at byte {offset} has hdr_size {hdr_size}")]
    SecondaryOffset { offset: u64, hdr_size: u64 },
    #[error("header at byte {offset}: field {field} is not UTF-8")]
    NotUtf8 { offset: u64, field: &'static str },
    #[error("header at byte {offset}: unsupported checksum algorithm {name:?}")]
    UnknownChecksumAlg { offset: u64, name: String },
    #[error("header at byte {offset}: {alg} checksum mismatch")]
    ChecksumMismatch { offset: u64, alg: &'static str },
    #[error("non-zero byte at {offset} after the checksum digest")]
    NonZeroChecksumPadding { offset: u64 },
    /// The JSON area (starting at `offset`) is refused.
    #[error("JSON area at byte {offset}: {source}")]
    Json {
        offset: u64,
        #[source]
        source: JsonError,
    },
}

/// A condition [`Header::parse`] tolerates, as cryptsetup does, but reports.
#[derive(Debug, Error)]
pub enum Luks2Warning {
    /// One copy is unusable; the other was used. cryptsetup would rewrite it on the next
    /// read-write open (auto-recovery).
    #[error("{copy:?} header copy is damaged ({defect}); the other copy was used")]
    Damaged { copy: Copy, defect: CopyDefect },
    /// Both copies are valid but carry different `seqid`s (an interrupted update): the newer
    /// one was used.
    #[error("header copies have seqid {primary} (primary) and {secondary} (secondary); the {used:?} copy was used")]
    SeqidMismatch {
        primary: u64,
        secondary: u64,
        used: Copy,
    },
    /// Both copies are valid with the same `seqid` but different contents: the primary was used.
    #[error(
        "header copies have the same seqid {seqid} but different contents; the primary was used"
    )]
    ContentMismatch { seqid: u64 },
}

/// Everything that can go wrong reading or writing a header.
#[derive(Debug, Error)]
pub enum Luks2Error {
    /// The input is shorter than the two copies it announces (or than one binary header).
    #[error("input of {got} bytes is too short: the LUKS2 header needs {needed}")]
    Truncated { needed: u64, got: u64 },
    /// Neither copy is usable.
    #[error("no valid LUKS2 header: primary: {primary}; secondary: {secondary}")]
    NoValidCopy {
        primary: Box<CopyDefect>,
        secondary: Box<CopyDefect>,
    },
    /// [`Header::require_consistent`] on a header that parsed with a warning.
    #[error("inconsistent LUKS2 header: {0}")]
    Inconsistent(Box<Luks2Warning>),
    /// New metadata or JSON text handed to the writer is refused.
    #[error("new metadata: {0}")]
    Json(#[from] JsonError),
    #[error("seqid would overflow")]
    SeqidOverflow,
}

/// How many bytes from the start of the device [`Header::parse`] needs: both copies, sized by
/// the primary's `hdr_size`. `prefix` must hold at least the primary binary header (4096
/// bytes). When the primary's binary header is unusable, the answer is the largest possible
/// header area (2 × 4 MiB) so that the secondary can be searched for.
pub fn required_len(prefix: &[u8]) -> Result<u64, Luks2Error> {
    if prefix.len() < BIN_LEN {
        return Err(Luks2Error::Truncated {
            needed: BIN_LEN as u64,
            got: prefix.len() as u64,
        });
    }
    let largest = HDR_SIZES.iter().max().copied().unwrap_or(0);
    Ok(match binary::parse_bin(prefix, 0, Copy::Primary) {
        Ok(bin) => 2 * bin.hdr_size,
        Err(_) => 2 * largest,
    })
}

/// A copy that passed every check.
struct ValidCopy {
    bin: BinHeader,
    json_text: Vec<u8>,
    metadata: Metadata,
}

fn read_copy(input: &[u8], at: u64, copy: Copy) -> Result<ValidCopy, CopyDefect> {
    let bin = binary::parse_bin(input, at, copy)?;
    let area = binary::verify_checksum(input, at, &bin)?;
    let json_offset = at + BIN_LEN as u64;
    let metadata = Metadata::from_area(area).map_err(|source| CopyDefect::Json {
        offset: json_offset,
        source,
    })?;
    let end = area.iter().position(|b| *b == 0).unwrap_or(area.len());
    Ok(ValidCopy {
        bin,
        json_text: area.get(..end).unwrap_or_default().to_vec(),
        metadata,
    })
}

/// Looks for a secondary copy at every offset of [`HDR_SIZES`] that fits the input, as
/// cryptsetup does when the primary cannot say where it is. Returns the first valid copy, or
/// else the most informative defect, with the offset it refers to.
fn find_secondary(input: &[u8]) -> (Result<ValidCopy, CopyDefect>, u64) {
    let mut found = (Err(CopyDefect::NotFound), 0);
    for at in HDR_SIZES {
        if at + BIN_LEN as u64 > input.len() as u64 {
            break;
        }
        let candidate = read_copy(input, at, Copy::Secondary);
        let keep = match &candidate {
            Ok(_) | Err(CopyDefect::Json { .. }) => true,
            // A sane binary header with a bad checksum is the best diagnosis so far, unless a
            // better one was already found; keep looking for a valid copy.
            Err(CopyDefect::ChecksumMismatch { .. }) => {
                matches!(found.0, Err(CopyDefect::NotFound))
            }
            Err(_) => false,
        };
        if keep {
            let valid = candidate.is_ok();
            found = (candidate, at);
            if valid {
                break;
            }
        }
    }
    found
}

/// The salt of the binary header at `at`, valid or not (cryptsetup keeps the salt of a failed
/// copy too: "Even if status is failed, the second header includes salt").
fn raw_salt(input: &[u8], at: u64) -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    if let Ok(bytes) = binary::slice_at(input, at + 104, SALT_LEN as u64) {
        salt.copy_from_slice(bytes);
    }
    salt
}

/// A LUKS2 header: the fields of the binary header, the typed JSON metadata, and what was
/// wrong with the copy not used.
#[derive(Debug)]
pub struct Header {
    bin: BinHeader,
    /// Salt of the secondary copy (the primary's is in `bin`).
    salt2: [u8; SALT_LEN],
    json_text: Vec<u8>,
    metadata: Metadata,
    used: Copy,
    warnings: Vec<Luks2Warning>,
}

impl Header {
    /// Parses the start of a LUKS2 device: at least `2 * hdr_size` bytes (see
    /// [`required_len`]); bytes after the two copies are ignored.
    ///
    /// Follows `LUKS2_disk_hdr_read`: the primary copy is read at offset 0; if its checksum is
    /// valid the secondary is read at its `hdr_size`, otherwise every offset of [`HDR_SIZES`] is
    /// tried. Of the valid copies the one with the higher `seqid` is used.
    pub fn parse(input: &[u8]) -> Result<Header, Luks2Error> {
        if input.len() < BIN_LEN {
            return Err(Luks2Error::Truncated {
                needed: BIN_LEN as u64,
                got: input.len() as u64,
            });
        }
        // The primary's binary header announces how much input the two copies take.
        let announced = binary::parse_bin(input, 0, Copy::Primary)
            .ok()
            .map(|b| b.hdr_size);
        if let Some(hdr_size) = announced {
            if (input.len() as u64) < 2 * hdr_size {
                return Err(Luks2Error::Truncated {
                    needed: 2 * hdr_size,
                    got: input.len() as u64,
                });
            }
        }
        let primary = read_copy(input, 0, Copy::Primary);
        // The primary's hdr_size locates the secondary only when its checksum vouches for it
        // (a primary whose JSON alone is bad still does, as in cryptsetup).
        let checksum_ok = matches!(&primary, Ok(_) | Err(CopyDefect::Json { .. }));
        let (secondary, secondary_at) = match announced {
            Some(at) if checksum_ok => (read_copy(input, at, Copy::Secondary), at),
            _ => find_secondary(input),
        };
        let salt1 = raw_salt(input, 0);
        let salt2 = raw_salt(input, secondary_at);
        let mut warnings = Vec::new();
        let (chosen, used) = match (primary, secondary) {
            (Ok(p), Ok(s)) => {
                if p.bin.seqid == s.bin.seqid {
                    let same = p.json_text == s.json_text
                        && BinHeader {
                            salt: s.bin.salt,
                            ..p.bin.clone()
                        } == s.bin;
                    if !same {
                        warnings.push(Luks2Warning::ContentMismatch { seqid: p.bin.seqid });
                    }
                    (p, Copy::Primary)
                } else {
                    let used = if p.bin.seqid > s.bin.seqid {
                        Copy::Primary
                    } else {
                        Copy::Secondary
                    };
                    warnings.push(Luks2Warning::SeqidMismatch {
                        primary: p.bin.seqid,
                        secondary: s.bin.seqid,
                        used,
                    });
                    match used {
                        Copy::Primary => (p, used),
                        Copy::Secondary => (s, used),
                    }
                }
            }
            (Ok(p), Err(defect)) => {
                warnings.push(Luks2Warning::Damaged {
                    copy: Copy::Secondary,
                    defect,
                });
                (p, Copy::Primary)
            }
            (Err(defect), Ok(s)) => {
                warnings.push(Luks2Warning::Damaged {
                    copy: Copy::Primary,
                    defect,
                });
                (s, Copy::Secondary)
            }
            (Err(p), Err(s)) => {
                return Err(Luks2Error::NoValidCopy {
                    primary: Box::new(p),
                    secondary: Box::new(s),
                })
            }
        };
        let ValidCopy {
            mut bin,
            json_text,
            metadata,
        } = chosen;
        bin.salt = salt1;
        Ok(Header {
            bin,
            salt2,
            json_text,
            metadata,
            used,
            warnings,
        })
    }

    /// Fails with the first warning, if any: for callers that must not act on a header
    /// cryptsetup would still have to repair.
    pub fn require_consistent(self) -> Result<Header, Luks2Error> {
        let mut this = self;
        if this.warnings.is_empty() {
            return Ok(this);
        }
        let first = this.warnings.swap_remove(0);
        Err(Luks2Error::Inconsistent(Box::new(first)))
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// The JSON text of the copy used, exactly as stored (without the NUL padding).
    pub fn json_text(&self) -> &[u8] {
        &self.json_text
    }
    pub fn seqid(&self) -> u64 {
        self.bin.seqid
    }
    pub fn hdr_size(&self) -> u64 {
        self.bin.hdr_size
    }
    /// Size of the JSON area of each copy: `hdr_size - 4096`.
    pub fn json_area_len(&self) -> u64 {
        self.bin.hdr_size - BIN_LEN as u64
    }
    pub fn uuid(&self) -> &str {
        &self.bin.uuid
    }
    pub fn label(&self) -> &str {
        &self.bin.label
    }
    pub fn subsystem(&self) -> &str {
        &self.bin.subsystem
    }
    pub fn checksum_alg(&self) -> ChecksumAlg {
        self.bin.checksum_alg
    }
    /// The salts of the primary and secondary binary headers.
    pub fn salts(&self) -> [[u8; SALT_LEN]; 2] {
        [self.bin.salt, self.salt2]
    }
    /// The copy whose contents were used.
    pub fn used(&self) -> Copy {
        self.used
    }
    pub fn warnings(&self) -> &[Luks2Warning] {
        &self.warnings
    }

    /// A new header carrying `metadata`, with `seqid` one higher (as `LUKS2_disk_hdr_write`),
    /// after the same validation a read applies. The binary fields and salts are kept.
    pub fn with_metadata(&self, metadata: Metadata) -> Result<Header, Luks2Error> {
        let area_len = self.json_area_len();
        metadata.validate(area_len)?;
        let json_text = metadata.to_json()?;
        self.with_text(json_text, metadata)
    }

    /// Like [`Header::with_metadata`], from a JSON text, which is written exactly as given
    /// after it parses and validates as a JSON area would.
    pub fn with_json(&self, text: &[u8]) -> Result<Header, Luks2Error> {
        if text.first() != Some(&b'{') {
            return Err(JsonError::NotObject.into());
        }
        let metadata = Metadata::from_json(text, self.json_area_len())?;
        self.with_text(text.to_vec(), metadata)
    }

    fn with_text(&self, json_text: Vec<u8>, metadata: Metadata) -> Result<Header, Luks2Error> {
        let area_len = usize::try_from(self.json_area_len()).unwrap_or(usize::MAX);
        // `strlen(json_text) > json_area_len - 1` is refused by cryptsetup: the NUL must fit.
        // A NUL inside the text would end it early for every reader.
        if json_text.len() >= area_len || json_text.contains(&0) {
            return Err(JsonError::TooLarge {
                len: json_text.len(),
                area_len,
            }
            .into());
        }
        let seqid = self
            .bin
            .seqid
            .checked_add(1)
            .ok_or(Luks2Error::SeqidOverflow)?;
        Ok(Header {
            bin: BinHeader {
                seqid,
                ..self.bin.clone()
            },
            salt2: self.salt2,
            json_text,
            metadata,
            used: Copy::Primary,
            warnings: Vec::new(),
        })
    }

    /// Both copies, `2 * hdr_size` bytes to write at offset 0 of the device: primary, then
    /// secondary, each with its magic, salt, `hdr_offset` and checksum, and the JSON text
    /// padded with zeros to the end of its area (`hdr_write_disk`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let area_len = usize::try_from(self.json_area_len()).unwrap_or(0);
        let mut area = self.json_text.clone();
        area.resize(area_len.max(area.len()), 0);
        let mut out = binary::write_copy(&self.bin, Copy::Primary, &area);
        let secondary = BinHeader {
            salt: self.salt2,
            ..self.bin.clone()
        };
        out.extend_from_slice(&binary::write_copy(&secondary, Copy::Secondary, &area));
        out
    }
}
