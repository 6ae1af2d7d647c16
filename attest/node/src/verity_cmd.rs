//! `warrant verity format|verify|dump`: dm-verity hash trees, compatible with `veritysetup`.
//!
//! This file opens the files, draws random salts and UUIDs, and shows a progress bar; the tree
//! itself is built and checked by the pure `measure::verity` (see docs/verity.md).

use crate::{emit, print_json, Failure};
use clap::{Args, Subcommand};
use measure::verity::{self, Layout, Params, Superblock, VerityError, VerityHash};
use serde::Serialize;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

/// Images at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
/// veritysetup's default salt size (`DEFAULT_VERITY_SALT_SIZE`).
const DEFAULT_SALT_LEN: usize = 32;

#[derive(Subcommand)]
pub enum VerityCommand {
    /// Build the hash tree (and superblock) of DATA into HASHFILE exactly as `veritysetup
    /// format` does, and print the root hash.
    Format {
        /// The data image.
        data: PathBuf,
        /// Where the hash tree goes (created if missing; may be DATA itself with --hash-offset).
        hashfile: PathBuf,
        #[command(flatten)]
        tree: TreeArgs,
        /// Salt in hex, or `-` for none (default: 32 random bytes).
        #[arg(long, value_name = "HEX|-")]
        salt: Option<String>,
        /// UUID for the superblock (default: random).
        #[arg(long, conflicts_with = "no_superblock")]
        uuid: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check DATA against the tree in HASHFILE and ROOT_HASH. Exits 1 naming the first bad
    /// block on a mismatch, 2 on unusable input.
    Verify {
        /// The data image.
        data: PathBuf,
        /// The hash tree (may be DATA itself with --hash-offset).
        hashfile: PathBuf,
        /// The trusted root hash, in hex.
        root_hash: String,
        #[command(flatten)]
        tree: TreeArgs,
        /// Salt in hex or `-` (needed with --no-superblock; otherwise checked against it).
        #[arg(long, value_name = "HEX|-")]
        salt: Option<String>,
        /// The UUID the superblock must carry (the root hash does not cover it).
        #[arg(long, conflicts_with = "no_superblock")]
        uuid: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read and check the superblock of HASHFILE.
    Dump {
        /// The hash tree (or the data image holding it, with --hash-offset).
        hashfile: PathBuf,
        /// Byte offset of the superblock.
        #[arg(long, default_value_t = 0)]
        hash_offset: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by `format` and `verify`, named as veritysetup names them.
#[derive(Args)]
pub struct TreeArgs {
    /// Hash algorithm: sha256 (default), sha1, sha384, sha512, sm3.
    #[arg(long)]
    hash: Option<String>,
    /// Data block size in bytes (default 4096).
    #[arg(long)]
    data_block_size: Option<u32>,
    /// Hash block size in bytes (default 4096).
    #[arg(long)]
    hash_block_size: Option<u32>,
    /// Number of data blocks (default: the whole blocks of DATA, up to --hash-offset when
    /// HASHFILE is DATA).
    #[arg(long)]
    data_blocks: Option<u64>,
    /// Byte offset of the superblock (or of the tree with --no-superblock) in HASHFILE.
    #[arg(long, default_value_t = 0)]
    hash_offset: u64,
    /// Write (or expect) no superblock: the parameters are given on the command line only.
    #[arg(long)]
    no_superblock: bool,
}

pub fn run(cmd: VerityCommand) -> Result<(), Failure> {
    match cmd {
        VerityCommand::Format {
            data,
            hashfile,
            tree,
            salt,
            uuid,
            json,
        } => format(
            &data,
            &hashfile,
            &tree,
            salt.as_deref(),
            uuid.as_deref(),
            json,
        ),
        VerityCommand::Verify {
            data,
            hashfile,
            root_hash,
            tree,
            salt,
            uuid,
            json,
        } => verify(
            &data,
            &hashfile,
            &root_hash,
            &tree,
            salt.as_deref(),
            uuid.as_deref(),
            json,
        ),
        VerityCommand::Dump {
            hashfile,
            hash_offset,
            json,
        } => dump(&hashfile, hash_offset, json),
    }
}

fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    Failure::input(format!("{}: {e}", path.display()))
}

fn verity_fail(path: &Path, e: VerityError) -> Failure {
    let msg = format!("{}: {e}", path.display());
    if e.is_mismatch() {
        Failure::verdict(msg)
    } else {
        Failure::input(msg)
    }
}

fn parse_hash(name: Option<&str>) -> Result<VerityHash, Failure> {
    let name = name.unwrap_or("sha256");
    VerityHash::from_name(name).ok_or_else(|| {
        Failure::input(format!(
            "unsupported hash {name:?} (sha1, sha256, sha384, sha512, sm3)"
        ))
    })
}

fn parse_salt(text: &str) -> Result<Vec<u8>, Failure> {
    if text == "-" {
        return Ok(Vec::new());
    }
    hex::decode(text).map_err(|e| Failure::input(format!("--salt {text:?}: not hex: {e}")))
}

fn parse_uuid(text: &str) -> Result<[u8; 16], Failure> {
    verity::parse_uuid(text).ok_or_else(|| {
        Failure::input(format!(
            "--uuid {text:?}: not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))
    })
}

fn random<const N: usize>() -> Result<[u8; N], Failure> {
    let mut out = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| Failure::input(format!("/dev/urandom: {e}")))?;
    Ok(out)
}

/// A random (version 4) UUID, as `uuid_generate` makes.
fn random_uuid() -> Result<[u8; 16], Failure> {
    let mut u = random::<16>()?;
    if let Some(b) = u.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = u.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    Ok(u)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The data blocks to hash: `--data-blocks`, or the whole blocks of DATA (up to the hash
/// offset when the tree is in DATA), checked against the file's size. Also returns the number
/// of trailing bytes of DATA that no block covers.
fn data_blocks(
    data: &Path,
    hashfile: &Path,
    data_block_size: u32,
    given: Option<u64>,
    hash_offset: u64,
) -> Result<(u64, u64), Failure> {
    let len = std::fs::metadata(data).map_err(|e| io_fail(data, e))?.len();
    let dbs = u64::from(data_block_size.max(1));
    let shared = same_file(data, hashfile);
    let usable = if shared { len.min(hash_offset) } else { len };
    let blocks = given.unwrap_or(usable / dbs);
    let needed = blocks.saturating_mul(dbs);
    if needed > usable {
        return Err(Failure::input(format!(
            "{}: {blocks} blocks of {dbs} bytes need {needed} bytes, {usable} are available{}",
            data.display(),
            if shared { " before --hash-offset" } else { "" }
        )));
    }
    Ok((blocks, usable - needed))
}

/// A progress callback drawing a bar on stderr when it is a terminal and the image is large.
fn progress(total_blocks: u64, block_size: u32, verb: &str) -> Option<indicatif::ProgressBar> {
    let bytes = total_blocks.saturating_mul(u64::from(block_size));
    if bytes < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:25}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(verb.to_string());
    Some(bar)
}

#[derive(Serialize)]
struct Report<'a> {
    /// Absent for `dump` (the root hash is not stored in the hash device).
    #[serde(serialize_with = "opt_hex", skip_serializing_if = "Option::is_none")]
    root_hash: Option<&'a [u8]>,
    #[serde(flatten)]
    params: &'a Params,
    hash_offset: u64,
    hash_blocks: u64,
    hash_device_size: u64,
    superblock: bool,
    uuid: Option<String>,
    levels: &'a [verity::Level],
    /// Bytes at the end of DATA that no data block covers (not protected by the tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    uncovered_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
}

fn text_report(r: &Report<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let salt = if r.params.salt.is_empty() {
        "-".to_string()
    } else {
        hex::encode(&r.params.salt)
    };
    if let Some(uuid) = &r.uuid {
        let _ = writeln!(out, "UUID:             {uuid}");
    }
    let _ = writeln!(out, "Hash type:        1");
    let _ = writeln!(out, "Data blocks:      {}", r.params.data_blocks);
    let _ = writeln!(out, "Data block size:  {}", r.params.data_block_size);
    let _ = writeln!(out, "Hash blocks:      {}", r.hash_blocks);
    let _ = writeln!(out, "Hash block size:  {}", r.params.hash_block_size);
    let _ = writeln!(out, "Hash algorithm:   {}", r.params.hash.name());
    let _ = writeln!(out, "Salt:             {salt}");
    let _ = writeln!(out, "Hash offset:      {}", r.hash_offset);
    let _ = writeln!(out, "Hash device size: {} [bytes]", r.hash_device_size);
    if let Some(root) = r.root_hash {
        let _ = writeln!(out, "Root hash:        {}", hex::encode(root));
    }
    out
}

fn opt_hex<S: serde::Serializer>(bytes: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => measure::serde_hex(b, s),
        None => s.serialize_none(),
    }
}

fn report<'a>(
    root_hash: Option<&'a [u8]>,
    params: &'a Params,
    layout: &'a Layout,
    uuid: Option<[u8; 16]>,
) -> Report<'a> {
    Report {
        root_hash,
        params,
        hash_offset: layout.hash_offset,
        hash_blocks: layout.hash_blocks(),
        hash_device_size: layout
            .end_block
            .saturating_mul(u64::from(params.hash_block_size)),
        superblock: layout.superblock,
        uuid: uuid.map(|u| verity::format_uuid(&u)),
        levels: &layout.levels,
        uncovered_bytes: None,
        verified: None,
    }
}

fn format(
    data: &Path,
    hashfile: &Path,
    tree: &TreeArgs,
    salt: Option<&str>,
    uuid: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let hash = parse_hash(tree.hash.as_deref())?;
    let salt = match salt {
        Some(s) => parse_salt(s)?,
        None => random::<DEFAULT_SALT_LEN>()?.to_vec(),
    };
    let uuid = match (tree.no_superblock, uuid) {
        (true, _) => None,
        (false, Some(u)) => Some(parse_uuid(u)?),
        (false, None) => Some(random_uuid()?),
    };
    let data_block_size = tree.data_block_size.unwrap_or(4096);
    let (blocks, uncovered) = data_blocks(
        data,
        hashfile,
        data_block_size,
        tree.data_blocks,
        tree.hash_offset,
    )?;
    let params = Params {
        hash,
        data_block_size,
        hash_block_size: tree.hash_block_size.unwrap_or(4096),
        data_blocks: blocks,
        salt,
    };
    params.validate().map_err(|e| verity_fail(data, e))?;
    if tree.data_blocks.is_none() && uncovered > 0 && !same_file(data, hashfile) {
        eprintln!(
            "warrant: warning: the last {uncovered} bytes of {} are not a whole block and are \
             not covered by the hash tree (as with veritysetup)",
            data.display()
        );
    }
    let mut data_file = File::open(data).map_err(|e| io_fail(data, e))?;
    // A separate hash file written from its start is replaced; otherwise (a tree appended to
    // DATA, or at an offset) only the superblock area and the tree are written.
    let replace = tree.hash_offset == 0 && !same_file(data, hashfile);
    let mut hash_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(replace)
        .open(hashfile)
        .map_err(|e| io_fail(hashfile, e))?;
    let bar = progress(blocks, data_block_size, "hashing");
    let dbs = u64::from(data_block_size);
    let result = verity::format(
        &params,
        &mut data_file,
        &mut hash_file,
        tree.hash_offset,
        uuid,
        &mut |done| {
            if let Some(b) = &bar {
                b.set_position(done * dbs);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let formatted = result.map_err(|e| verity_fail(hashfile, e))?;
    hash_file.sync_all().map_err(|e| io_fail(hashfile, e))?;
    let mut r = report(Some(&formatted.root_hash), &params, &formatted.layout, uuid);
    r.uncovered_bytes = Some(uncovered);
    if json {
        print_json(&r)
    } else {
        emit(&text_report(&r))
    }
}

/// Fails when an option given on the command line disagrees with the superblock.
fn agree<T: PartialEq + std::fmt::Debug>(
    what: &str,
    given: Option<T>,
    stored: T,
) -> Result<(), Failure> {
    match given {
        Some(g) if g != stored => Err(Failure::verdict(format!(
            "{what}: the superblock says {stored:?}, the command line {g:?}"
        ))),
        _ => Ok(()),
    }
}

fn verify(
    data: &Path,
    hashfile: &Path,
    root_hash: &str,
    tree: &TreeArgs,
    salt: Option<&str>,
    uuid: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let root = hex::decode(root_hash)
        .map_err(|e| Failure::input(format!("root hash {root_hash:?}: not hex: {e}")))?;
    let salt = salt.map(parse_salt).transpose()?;
    let expected_uuid = uuid.map(parse_uuid).transpose()?;
    let mut hash_file = File::open(hashfile).map_err(|e| io_fail(hashfile, e))?;
    let (params, uuid) = if tree.no_superblock {
        let data_block_size = tree.data_block_size.unwrap_or(4096);
        let (blocks, _) = data_blocks(
            data,
            hashfile,
            data_block_size,
            tree.data_blocks,
            tree.hash_offset,
        )?;
        let salt = salt.ok_or_else(|| Failure::input("--no-superblock needs --salt"))?;
        let params = Params {
            hash: parse_hash(tree.hash.as_deref())?,
            data_block_size,
            hash_block_size: tree.hash_block_size.unwrap_or(4096),
            data_blocks: blocks,
            salt,
        };
        (params, None)
    } else {
        let sb: Superblock = verity::read_superblock(&mut hash_file, tree.hash_offset)
            .map_err(|e| Failure::input(format!("{}: {e}", hashfile.display())))?;
        let p = &sb.params;
        agree("hash", tree.hash.as_deref(), p.hash.name())?;
        agree("data block size", tree.data_block_size, p.data_block_size)?;
        agree("hash block size", tree.hash_block_size, p.hash_block_size)?;
        agree("data blocks", tree.data_blocks, p.data_blocks)?;
        agree("salt", salt.as_deref(), p.salt.as_slice())?;
        agree(
            "uuid",
            expected_uuid.map(|u| verity::format_uuid(&u)),
            verity::format_uuid(&sb.uuid),
        )?;
        (sb.params, Some(sb.uuid))
    };
    // The data file must hold every block the tree covers.
    data_blocks(
        data,
        hashfile,
        params.data_block_size,
        Some(params.data_blocks),
        tree.hash_offset,
    )?;
    let mut data_file = File::open(data).map_err(|e| io_fail(data, e))?;
    let bar = progress(params.data_blocks, params.data_block_size, "verifying");
    let dbs = u64::from(params.data_block_size);
    let result = verity::verify(
        &params,
        &mut data_file,
        &mut hash_file,
        tree.hash_offset,
        !tree.no_superblock,
        &root,
        &mut |done| {
            if let Some(b) = &bar {
                b.set_position(done * dbs);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let layout = result.map_err(|e| verity_fail(data, e))?;
    let mut r = report(Some(&root), &params, &layout, uuid);
    r.verified = Some(true);
    if json {
        print_json(&r)
    } else {
        emit(&format!(
            "{}verified: {} data blocks match root hash {}\n",
            text_report(&r),
            params.data_blocks,
            hex::encode(&root)
        ))
    }
}

fn dump(hashfile: &Path, hash_offset: u64, json: bool) -> Result<(), Failure> {
    let mut hash_file = File::open(hashfile).map_err(|e| io_fail(hashfile, e))?;
    let sb = verity::read_superblock(&mut hash_file, hash_offset)
        .map_err(|e| Failure::input(format!("{}: {e}", hashfile.display())))?;
    let layout = Layout::new(&sb.params, hash_offset, true)
        .map_err(|e| Failure::input(format!("{}: {e}", hashfile.display())))?;
    let r = report(None, &sb.params, &layout, Some(sb.uuid));
    if json {
        print_json(&r)
    } else {
        emit(&text_report(&r))
    }
}
