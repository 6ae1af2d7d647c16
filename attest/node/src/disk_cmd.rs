//! `warrant disk`: LUKS2 volumes whose key the TPM releases only on a proven boot, in
//! systemd's `systemd-tpm2` token format (so systemd-cryptsetup opens them, and Warrant opens
//! volumes systemd-cryptenroll enrolled). See docs/disk-encryption.md.
//!
//! The header is read by Warrant (`measure::luks2`); keyslots and tokens are changed through
//! the `cryptsetup` tool, which takes the device's lock and writes both header copies. Keys
//! never touch a file system: passphrases go to cryptsetup on its standard input, and a new
//! key through an anonymous in-memory file (memfd) it reads as `/proc/self/fd/N`.

use crate::tpm_cmd::{open, tpm_failure};
use crate::{emit, print_json, read_file, Failure};
use clap::{Args, Subcommand};
use measure::alg::HashAlg;
use measure::luks2::{Header, ObjectId, OneOrMany, PcrBank, SystemdTpm2Token, Token};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tpm::rollback::AntiRollbackToken;
use tpm::systemd::{SignedPolicyKey, SystemdError};
use tpm::Zeroizing;

/// The token type systemd-cryptenroll writes and Warrant reads and writes.
pub const TOKEN_TYPE: &str = "systemd-tpm2";
/// Warrant's anti-rollback token type (systemd's fields plus the SVN counter's index), which
/// systemd-cryptsetup never tries: it cannot run the PolicyNV step.
pub const ANTI_ROLLBACK_TOKEN_TYPE: &str = tpm::rollback::TOKEN_TYPE;

#[derive(Args)]
pub struct TctiArg {
    /// How to reach the TPM: device:/dev/tpmrm0, swtpm:host=H,port=P, ...
    #[arg(long, env = "WARRANT_TCTI", default_value = crate::tpm_cmd::DEFAULT_TCTI)]
    tcti: String,
}

#[derive(Args)]
pub struct UnlockKeyArg {
    /// A key that opens the volume now (passphrase or recovery key), read from this file
    /// exactly as `cryptsetup --key-file` reads it; without it, one line from standard input.
    #[arg(long, value_name = "FILE")]
    unlock_key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum DiskCommand {
    /// Add a keyslot whose key the TPM seals to PCR values (or to a signed PCR policy), with a
    /// systemd-tpm2 token.
    Enroll {
        /// A LUKS2 device or image file.
        device: PathBuf,
        /// PCRs the key is sealed to (their current values), e.g. 7 or 7,11; `none` (or an
        /// empty value) with --policy-key for only the signed policy.
        #[arg(long, value_parser = parse_pcr_list, default_value = "7")]
        pcrs: PcrList,
        /// Seal to any PCR values this RSA key signs (systemd .pcrsig), instead of fixed ones.
        #[arg(long, value_name = "PUB.pem")]
        policy_key: Option<PathBuf>,
        /// PCRs the signed policy covers.
        #[arg(long, value_delimiter = ',', default_value = "11")]
        policy_key_pcrs: Vec<u32>,
        /// Also require a PIN (read from standard input after the unlock key, one line).
        #[arg(long)]
        pin: bool,
        /// Anti-rollback: only images signed with `warrant uki sign-policy --svn V` where V is
        /// at least the TPM's SVN counter unseal (needs --policy-key and `warrant tpm svn
        /// init`). Writes a `warrant-tpm2` token, which systemd-cryptsetup ignores.
        #[arg(long, requires = "policy_key")]
        anti_rollback: bool,
        /// The SVN counter's NV index.
        #[arg(long, value_name = "HANDLE", requires = "anti_rollback", value_parser = crate::svn_cmd::parse_nv_index)]
        svn_index: Option<u32>,
        #[command(flatten)]
        tcti: TctiArg,
        #[command(flatten)]
        unlock: UnlockKeyArg,
    },
    /// Unseal a TPM token's key and open the volume (or, with --test, only check it opens).
    Unlock {
        device: PathBuf,
        /// The device-mapper name to open it as.
        #[arg(long)]
        name: Option<String>,
        /// Only check that the unsealed key opens its keyslot (cryptsetup --test-passphrase).
        #[arg(long)]
        test: bool,
        /// The signed PCR policy (systemd .pcrsig JSON) for tokens enrolled with a policy key.
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        /// The PIN, for tokens enrolled with one: read from standard input (one line).
        #[arg(long)]
        pin: bool,
        #[command(flatten)]
        tcti: TctiArg,
    },
    /// Add a high-entropy recovery key in its own keyslot; it is printed once, never stored.
    RecoveryKey {
        device: PathBuf,
        #[command(flatten)]
        unlock: UnlockKeyArg,
        /// Open with the TPM token instead of an unlock key.
        #[arg(long)]
        with_tpm: bool,
        #[command(flatten)]
        tcti: TctiArg,
    },
    /// Keyslots, tokens and their policies, and whether the TPM would release each key now.
    Status {
        device: PathBuf,
        #[command(flatten)]
        tcti: TctiArg,
        /// Do not ask the TPM (only what the header says).
        #[arg(long)]
        offline: bool,
        /// Also check against the PCR 11 this UKI will give ("will it boot after this
        /// update?"): systemd-stub's measurement of it, then the boot phases of --phase.
        #[arg(long, value_name = "UKI")]
        uki: Option<PathBuf>,
        /// The boot phases extended into PCR 11 when the volume is unlocked (systemd-pcrphase:
        /// `enter-initrd` in the initrd; empty for none).
        #[arg(long, default_value = "enter-initrd")]
        phase: String,
        #[arg(long)]
        json: bool,
    },
    /// After a change of PCRs: enroll a new TPM keyslot from a key that still opens the volume
    /// (recovery key or passphrase), then remove the stale TPM keyslots.
    Reseal {
        device: PathBuf,
        /// PCRs for the new token (default: those of the stale one).
        #[arg(long, value_delimiter = ',')]
        pcrs: Option<Vec<u32>>,
        #[command(flatten)]
        tcti: TctiArg,
        #[command(flatten)]
        unlock: UnlockKeyArg,
    },
    /// Remove keyslots and their tokens.
    WipeSlot {
        device: PathBuf,
        /// Every TPM (systemd-tpm2) keyslot.
        #[arg(long)]
        tpm: bool,
    },
}

pub fn run(cmd: DiskCommand) -> Result<(), Failure> {
    match cmd {
        DiskCommand::Enroll {
            device,
            pcrs,
            policy_key,
            policy_key_pcrs,
            pin,
            anti_rollback,
            svn_index,
            tcti,
            unlock,
        } => {
            let pcrs = pcrs.0;
            if pcrs.is_empty() && policy_key.is_none() {
                return Err(Failure::input(
                    "--pcrs none without --policy-key would seal the key to nothing: any boot \
                     of this machine, whatever it runs, would open the volume",
                ));
            }
            let svn_index =
                anti_rollback.then(|| svn_index.unwrap_or(tpm::rollback::DEFAULT_SVN_INDEX));
            let header = read_header(&device)?;
            let key = unlock_key(&unlock)?;
            let pin = if pin { Some(read_line("PIN")?) } else { None };
            let policy = policy_key.as_deref().map(read_file).transpose()?;
            let signed = policy.as_deref().map(|pem| SignedPolicyKey {
                public_key_pem: pem,
                pcrs: &policy_key_pcrs,
            });
            let slot = enroll(
                &device,
                &header,
                &tcti.tcti,
                &key,
                &EnrollPolicy {
                    pcrs: &pcrs,
                    pin: pin.as_deref().map(|p| p.as_str()),
                    signed: signed.as_ref(),
                    svn_index,
                },
            )?;
            let mut sealed_to = Vec::new();
            if !pcrs.is_empty() {
                sealed_to.push(format!("sha256 PCRs {}", join(&pcrs)));
            }
            if signed.is_some() {
                sealed_to.push(format!(
                    "a policy signed for PCRs {}",
                    join(&policy_key_pcrs)
                ));
            }
            emit(&format!(
                "enrolled keyslot {slot}: sealed to {}{}{}\n",
                sealed_to.join(" and "),
                if pin.is_some() { ", with a PIN" } else { "" },
                svn_index
                    .map(|i| format!(
                        ", anti-rollback with SVN counter {i:#010x} ({ANTI_ROLLBACK_TOKEN_TYPE} token)"
                    ))
                    .unwrap_or_default()
            ))
        }
        DiskCommand::Unlock {
            device,
            name,
            test,
            signature,
            pin,
            tcti,
        } => {
            if !test && name.is_none() {
                return Err(Failure::input("give --name NAME to open, or --test"));
            }
            let header = read_header(&device)?;
            let signature = signature.as_deref().map(read_file).transpose()?;
            let pin = if pin { Some(read_line("PIN")?) } else { None };
            let (slot, passphrase) = unseal_any(
                &header,
                &tcti.tcti,
                pin.as_deref().map(|p| p.as_str()),
                signature.as_deref(),
            )?;
            let mut args: Vec<String> = vec!["open".into()];
            if test {
                args.push("--test-passphrase".into());
            }
            args.extend([
                "--key-slot".to_string(),
                slot.to_string(),
                "--key-file".into(),
                "-".into(),
                device.display().to_string(),
            ]);
            if let Some(n) = &name {
                if !test {
                    args.push(n.clone());
                }
            }
            cryptsetup(&args, Some(&passphrase), None).map_err(|e| {
                Failure::verdict(format!(
                    "the TPM released keyslot {slot}'s key, but cryptsetup refused it: {e}"
                ))
            })?;
            emit(&if test {
                format!("keyslot {slot}: the TPM's key opens it\n")
            } else {
                format!("opened as /dev/mapper/{}\n", name.unwrap_or_default())
            })
        }
        DiskCommand::RecoveryKey {
            device,
            unlock,
            with_tpm,
            tcti,
        } => {
            let header = read_header(&device)?;
            let key = if with_tpm {
                unseal_any(&header, &tcti.tcti, None, None)?.1
            } else {
                unlock_key(&unlock)?
            };
            let recovery = new_recovery_key()?;
            let slot = free_keyslot(&header)?;
            add_keyslot(&device, &key, recovery.as_bytes(), slot)?;
            emit(&format!(
                "recovery key for keyslot {slot} (shown once; store it offline):\n{}\n",
                recovery.as_str()
            ))
        }
        DiskCommand::Status {
            device,
            tcti,
            offline,
            uki,
            phase,
            json,
        } => {
            let uki = uki
                .as_deref()
                .map(|p| -> Result<_, Failure> {
                    let bytes = read_file(p)?;
                    let parsed = measure::uki::Uki::parse(&bytes)
                        .map_err(|e| Failure::input(format!("{}: {e}", p.display())))?;
                    let base = parsed
                        .pcr11_after_stub(HashAlg::Sha256)
                        .map_err(|e| Failure::input(format!("{}: {e}", p.display())))?;
                    Ok(measure::uki::extend_phase(HashAlg::Sha256, &base, &phase))
                })
                .transpose()?;
            status(
                &device,
                (!offline).then_some(tcti.tcti.as_str()),
                uki.as_deref(),
                json,
            )
        }
        DiskCommand::Reseal {
            device,
            pcrs,
            tcti,
            unlock,
        } => {
            let header = read_header(&device)?;
            let key = unlock_key(&unlock)?;
            let stale = tpm_tokens(&header);
            let pcrs = match pcrs {
                Some(p) => p,
                None => stale
                    .first()
                    .map(|(_, t)| t.pcrs.iter().map(|p| u32::from(*p)).collect())
                    .unwrap_or_else(|| vec![7]),
            };
            // A key that does not open the volume is refused by enroll before anything is
            // written, and the stale slots are removed only after the new one works.
            let policy = EnrollPolicy {
                pcrs: &pcrs,
                pin: None,
                signed: None,
                svn_index: None,
            };
            let slot = enroll(&device, &header, &tcti.tcti, &key, &policy)?;
            let removed = remove_tpm_slots(&device, &stale)?;
            emit(&format!(
                "resealed: new keyslot {slot} for PCRs {}; removed stale TPM keyslots {}\n",
                join(&pcrs),
                if removed.is_empty() {
                    "(none)".to_string()
                } else {
                    removed
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        }
        DiskCommand::WipeSlot { device, tpm } => {
            if !tpm {
                return Err(Failure::input("say which keyslots: --tpm"));
            }
            let header = read_header(&device)?;
            let tokens = all_tpm_tokens(&header)?;
            if tokens.is_empty() {
                return Err(Failure::input("no TPM (systemd-tpm2) token on this volume"));
            }
            let tpm_slots: Vec<ObjectId> = tokens
                .iter()
                .flat_map(|(_, t)| t.keyslots().to_vec())
                .collect();
            let others = header
                .metadata()
                .keyslots
                .keys()
                .filter(|k| !tpm_slots.contains(k))
                .count();
            if others == 0 {
                return Err(Failure::verdict(
                    "refused: the TPM keyslots are the only ones; removing them would strand \
                     the data (add a recovery key first: warrant disk recovery-key)",
                ));
            }
            let removed = remove_slots(
                &device,
                tokens.iter().map(|(id, t)| (*id, t.keyslots().to_vec())),
            )?;
            emit(&format!(
                "removed TPM keyslots {}\n",
                removed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

/// `--pcrs`: a comma-separated PCR list, or `none` / an empty value for no fixed PCR.
#[derive(Clone, Debug)]
pub struct PcrList(Vec<u32>);

fn parse_pcr_list(s: &str) -> Result<PcrList, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(PcrList(Vec::new()));
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 23)
                .ok_or_else(|| format!("{p:?} is not a PCR index (0 to 23)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(PcrList)
}

fn join(pcrs: &[u32]) -> String {
    pcrs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads and parses the LUKS2 header at the start of `device`.
pub fn read_header(device: &Path) -> Result<Header, Failure> {
    use std::io::Read as _;
    let bad = |e: String| Failure::input(format!("{}: {e}", device.display()));
    let mut f = std::fs::File::open(device).map_err(|e| bad(e.to_string()))?;
    let mut prefix = vec![0u8; 4096];
    f.read_exact(&mut prefix).map_err(|e| {
        bad(format!(
            "not a LUKS2 volume (cannot read its first 4 KiB: {e})"
        ))
    })?;
    let need = measure::luks2::required_len(&prefix).map_err(|e| bad(e.to_string()))?;
    let need = usize::try_from(need).map_err(|_| bad("header too large".into()))?;
    let mut all = prefix;
    all.resize(need, 0);
    f.read_exact(all.get_mut(4096..).unwrap_or_default())
        .map_err(|e| bad(format!("the LUKS2 header is truncated: {e}")))?;
    let header = Header::parse(&all).map_err(|e| bad(e.to_string()))?;
    for w in header.warnings() {
        eprintln!("warrant: {}: {w}", device.display());
    }
    Ok(header)
}

/// The systemd-tpm2 tokens of a header, by token id.
fn tpm_tokens(header: &Header) -> Vec<(ObjectId, SystemdTpm2Token)> {
    header
        .metadata()
        .tokens
        .iter()
        .filter_map(|(id, t)| match t {
            Token::SystemdTpm2(t) => Some((*id, t.clone())),
            Token::Other(_) => None,
        })
        .collect()
}

/// A TPM token Warrant opens: systemd's, or Warrant's anti-rollback one.
enum TpmToken {
    Systemd(SystemdTpm2Token),
    AntiRollback(AntiRollbackToken),
}

impl TpmToken {
    fn keyslots(&self) -> &[ObjectId] {
        match self {
            TpmToken::Systemd(t) => &t.keyslots,
            TpmToken::AntiRollback(t) => &t.token.keyslots,
        }
    }
    fn pin(&self) -> bool {
        match self {
            TpmToken::Systemd(t) => t.pin == Some(true),
            TpmToken::AntiRollback(t) => t.token.pin == Some(true),
        }
    }
}

/// The systemd-tpm2 and warrant-tpm2 tokens of a header, by token id. A malformed
/// warrant-tpm2 token is an error (exit 2), as a malformed systemd-tpm2 token is when the
/// header is parsed.
fn all_tpm_tokens(header: &Header) -> Result<Vec<(ObjectId, TpmToken)>, Failure> {
    let mut out = Vec::new();
    for (id, t) in &header.metadata().tokens {
        match t {
            Token::SystemdTpm2(t) => out.push((*id, TpmToken::Systemd(t.clone()))),
            Token::Other(raw) if raw.kind() == ANTI_ROLLBACK_TOKEN_TYPE => {
                let token = AntiRollbackToken::from_object(raw.object())
                    .map_err(|e| Failure::input(format!("token {id}: {e}")))?;
                out.push((*id, TpmToken::AntiRollback(token)));
            }
            Token::Other(_) => {}
        }
    }
    Ok(out)
}

fn free_keyslot(header: &Header) -> Result<u32, Failure> {
    let used = &header.metadata().keyslots;
    (0..32)
        .find(|n| !used.contains_key(&ObjectId(*n)))
        .ok_or_else(|| Failure::input("no free keyslot (all 32 are used)"))
}

/// Asked for on the terminal without echo, or one line from standard input when it is not a
/// terminal; without its newline.
fn read_line(what: &str) -> Result<Zeroizing<String>, Failure> {
    use std::io::IsTerminal as _;
    let mut line = Zeroizing::new(String::new());
    if std::io::stdin().is_terminal() {
        *line = rpassword::prompt_password(format!("{what}: "))
            .map_err(|e| Failure::input(format!("reading the {what} from the terminal: {e}")))?;
    } else {
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::input(format!("reading the {what} from standard input: {e}")))?;
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    if line.is_empty() {
        return Err(Failure::input(format!("empty {what} on standard input")));
    }
    Ok(line)
}

fn unlock_key(arg: &UnlockKeyArg) -> Result<Zeroizing<Vec<u8>>, Failure> {
    match &arg.unlock_key_file {
        Some(p) => Ok(Zeroizing::new(read_file(p)?)),
        None => Ok(Zeroizing::new(read_line("unlock key")?.as_bytes().to_vec())),
    }
}

/// A failed cryptsetup run: its exit code and message.
struct CryptsetupError {
    code: Option<i32>,
    message: String,
}

impl std::fmt::Display for CryptsetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// cryptsetup's exit code for "no key available with this passphrase" (EPERM).
const CRYPTSETUP_WRONG_KEY: i32 = 2;

/// Runs cryptsetup with `stdin` on its standard input. `keep` is a memfd a path in `args`
/// points at: it stays open until cryptsetup is done.
fn cryptsetup(
    args: &[String],
    stdin: Option<&[u8]>,
    keep: Option<&std::fs::File>,
) -> Result<(), CryptsetupError> {
    let _ = keep;
    let fail = |message: String| CryptsetupError {
        code: None,
        message,
    };
    let mut child = Command::new("cryptsetup")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run cryptsetup: {e} (scripts/install-deps.sh installs it)"
            ))
        })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .map_err(|e| fail(format!("writing to cryptsetup: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(CryptsetupError {
        code: out.status.code(),
        message: if err.is_empty() {
            format!(
                "cryptsetup {} failed ({})",
                args.first().map_or("", String::as_str),
                out.status
            )
        } else {
            err
        },
    })
}

/// An anonymous in-memory file holding `bytes`, inherited by children (no close-on-exec),
/// and the path they open it by.
fn memfd(bytes: &[u8]) -> Result<(std::fs::File, String), Failure> {
    let fd = rustix::fs::memfd_create("warrant-key", rustix::fs::MemfdFlags::empty())
        .map_err(|e| Failure::input(format!("memfd_create: {e}")))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .map_err(|e| Failure::input(format!("memfd: {e}")))?;
    use std::os::fd::AsRawFd as _;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok((file, path))
}

/// Adds `new_key` in keyslot `slot`, opening with `key`. High-entropy keys get PBKDF2 with
/// 1000 iterations, as systemd-cryptenroll gives them: stretching adds nothing to 256 bits.
///
/// Both keys go through memfds: with `--key-file -` (stdin) cryptsetup 2.6 derives the unlock
/// key twice (once to check it, once to use it), which triples the cost of a real Argon2
/// passphrase slot; from a file it derives it once. A wrong unlock key fails here, before
/// anything is written.
fn add_keyslot(device: &Path, key: &[u8], new_key: &[u8], slot: u32) -> Result<(), Failure> {
    let (file, path) = memfd(new_key)?;
    let (key_file, key_path) = memfd(key)?;
    let result = cryptsetup(
        &[
            "luksAddKey".into(),
            "--batch-mode".into(),
            "--key-file".into(),
            key_path,
            "--new-keyfile".into(),
            path,
            "--new-key-slot".into(),
            slot.to_string(),
            "--pbkdf".into(),
            "pbkdf2".into(),
            "--pbkdf-force-iterations".into(),
            "1000".into(),
            "--hash".into(),
            "sha512".into(),
            device.display().to_string(),
        ],
        None,
        Some(&file),
    );
    drop(key_file);
    result.map_err(|e| {
        if e.code == Some(CRYPTSETUP_WRONG_KEY) {
            Failure::verdict(format!(
                "the unlock key does not open the volume{}",
                if e.message.contains("failed (") {
                    String::new()
                } else {
                    format!(": {e}")
                }
            ))
        } else {
            Failure::verdict(format!("cannot add a keyslot: {e}"))
        }
    })
}

/// What a new TPM keyslot is sealed to.
struct EnrollPolicy<'a> {
    /// PCRs bound by their current values.
    pcrs: &'a [u32],
    pin: Option<&'a str>,
    /// A signed PCR policy (policy key and the PCRs it signs).
    signed: Option<&'a SignedPolicyKey<'a>>,
    /// Anti-rollback: the SVN counter's NV index (a `warrant-tpm2` token).
    svn_index: Option<u32>,
}

/// Seals a new key, adds its keyslot and its token. Returns the keyslot.
fn enroll(
    device: &Path,
    header: &Header,
    tcti: &str,
    key: &[u8],
    policy: &EnrollPolicy<'_>,
) -> Result<u32, Failure> {
    let &EnrollPolicy {
        pcrs,
        pin,
        signed,
        svn_index,
    } = policy;
    // A wrong unlock key is refused by luksAddKey before anything is written; the transient
    // sealed object is then simply dropped.
    let slot = free_keyslot(header)?;
    let mut tpm = open(tcti)?;
    let (token, passphrase) = match (svn_index, signed) {
        (Some(index), Some(signed)) => {
            let (token, passphrase) =
                tpm::rollback::seal(&mut tpm, pcrs, PcrBank::Sha256, pin, signed, index)
                    .map_err(systemd_failure)?;
            (TpmToken::AntiRollback(token), passphrase)
        }
        (Some(_), None) => {
            return Err(Failure::input(
                "--anti-rollback needs a signed policy: --policy-key",
            ))
        }
        (None, _) => {
            let (token, passphrase) =
                tpm::systemd::seal(&mut tpm, pcrs, PcrBank::Sha256, pin, signed)
                    .map_err(systemd_failure)?;
            (TpmToken::Systemd(token), passphrase)
        }
    };
    drop(tpm);
    add_keyslot(device, key, &passphrase, slot)?;
    let object = match token {
        TpmToken::Systemd(mut token) => {
            token.keyslots = vec![ObjectId(slot)];
            Token::SystemdTpm2(token).to_object()
        }
        TpmToken::AntiRollback(mut token) => {
            token.token.keyslots = vec![ObjectId(slot)];
            token.to_object()
        }
    };
    let json = serde_json::Value::Object(object).to_string();
    if let Err(e) = cryptsetup(
        &[
            "token".into(),
            "import".into(),
            "--json-file".into(),
            "-".into(),
            device.display().to_string(),
        ],
        Some(json.as_bytes()),
        None,
    ) {
        // Do not leave a keyslot no token can open.
        let _ = cryptsetup(
            &[
                "luksKillSlot".into(),
                "--batch-mode".into(),
                device.display().to_string(),
                slot.to_string(),
            ],
            None,
            None,
        );
        return Err(Failure::input(format!("cannot write the token: {e}")));
    }
    Ok(slot)
}

/// Removes the keyslots and the tokens of `tokens`; returns the keyslots removed.
fn remove_tpm_slots(
    device: &Path,
    tokens: &[(ObjectId, SystemdTpm2Token)],
) -> Result<Vec<ObjectId>, Failure> {
    remove_slots(
        device,
        tokens.iter().map(|(id, t)| (*id, t.keyslots.clone())),
    )
}

/// Removes each token and its keyslots; returns the keyslots removed.
fn remove_slots(
    device: &Path,
    tokens: impl Iterator<Item = (ObjectId, Vec<ObjectId>)>,
) -> Result<Vec<ObjectId>, Failure> {
    let mut removed = Vec::new();
    for (id, keyslots) in tokens {
        cryptsetup(
            &[
                "token".into(),
                "remove".into(),
                "--token-id".into(),
                id.to_string(),
                device.display().to_string(),
            ],
            None,
            None,
        )
        .map_err(|e| Failure::input(format!("cannot remove token {id}: {e}")))?;
        for slot in &keyslots {
            cryptsetup(
                &[
                    "luksKillSlot".into(),
                    "--batch-mode".into(),
                    device.display().to_string(),
                    slot.to_string(),
                ],
                None,
                None,
            )
            .map_err(|e| Failure::input(format!("cannot remove keyslot {slot}: {e}")))?;
            removed.push(*slot);
        }
    }
    Ok(removed)
}

fn systemd_failure(e: SystemdError) -> Failure {
    match e {
        SystemdError::PcrsChanged { .. }
        | SystemdError::WrongPin
        | SystemdError::Lockout { .. }
        | SystemdError::DifferentTpm
        | SystemdError::NoSignatureForThisBoot { .. }
        | SystemdError::NoSvnSignatureForThisBoot { .. }
        | SystemdError::WrongSigner => Failure::verdict(e.to_string()),
        SystemdError::Rollback(e) => crate::svn_cmd::rollback_failure(e),
        other => Failure::input(other.to_string()),
    }
}

/// Unseals the first TPM token that releases its key; the error names each token's reason.
fn unseal_any(
    header: &Header,
    tcti: &str,
    pin: Option<&str>,
    signature: Option<&[u8]>,
) -> Result<(ObjectId, Zeroizing<Vec<u8>>), Failure> {
    let tokens = all_tpm_tokens(header)?;
    if tokens.is_empty() {
        return Err(Failure::input("no TPM (systemd-tpm2) token on this volume"));
    }
    let mut tpm = open(tcti)?;
    let mut reasons = Vec::new();
    let mut all_verdicts = true;
    for (id, token) in &tokens {
        let Some(slot) = token.keyslots().first().copied() else {
            reasons.push(format!("token {id}: names no keyslot"));
            continue;
        };
        let pin = if token.pin() { pin } else { None };
        let result = match token {
            TpmToken::Systemd(t) => tpm::systemd::unseal(&mut tpm, t, pin, signature),
            TpmToken::AntiRollback(t) => tpm::rollback::unseal(&mut tpm, t, pin, signature),
        };
        match result {
            Ok(p) => return Ok((slot, p)),
            Err(e) => {
                let f = systemd_failure(e);
                all_verdicts &= f.code == crate::EXIT_VERDICT_FAILED;
                reasons.push(format!("token {id} (keyslot {slot}): {}", f.message));
            }
        }
    }
    let message = format!(
        "the TPM released no key: {}; open with the recovery key, then `warrant disk reseal`",
        reasons.join("; ")
    );
    Err(if all_verdicts {
        Failure::verdict(message)
    } else {
        Failure::input(message)
    })
}

/// A recovery key as systemd makes them: 32 random bytes in "modhex" (the keyboard-layout
/// independent alphabet `cbdefghijklnrtuv`), 8 groups of 8 characters joined by dashes.
fn new_recovery_key() -> Result<Zeroizing<String>, Failure> {
    use std::io::Read as _;
    const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";
    let mut raw = Zeroizing::new([0u8; 32]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(raw.as_mut()))
        .map_err(|e| Failure::input(format!("reading random bytes: {e}")))?;
    let mut out = Zeroizing::new(String::with_capacity(71));
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        for nibble in [b >> 4, b & 0x0f] {
            // A nibble is below 16: always present.
            out.extend(MODHEX.get(usize::from(nibble)).map(|c| char::from(*c)));
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct StatusReport {
    device: String,
    uuid: String,
    keyslots: Vec<u32>,
    tokens: Vec<TokenReport>,
}

#[derive(Serialize)]
struct TokenReport {
    id: u32,
    #[serde(rename = "type")]
    kind: String,
    keyslots: Vec<u32>,
    pcrs: Vec<u8>,
    pcr_bank: Option<String>,
    pin: bool,
    signed_policy_pcrs: Option<Vec<u8>>,
    policy_hash: Option<String>,
    /// `None`: not checked (offline, or a signed policy).
    would_unseal: Option<bool>,
    /// With `--uki`: whether the key would still unseal once that UKI boots (PCR 11 replaced
    /// by its prediction, the other PCRs as they are now).
    would_unseal_with_uki: Option<bool>,
    /// Anti-rollback tokens: the SVN counter's NV index (`0x...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    svn_index: Option<String>,
    /// Anti-rollback tokens, when the TPM was asked: its SVN counter (images signed with an
    /// SVN at least this unseal); `None` when it could not be read (see `reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_svn: Option<u64>,
    reason: Option<String>,
}

/// Fills a status line for a warrant-tpm2 token: its policy, and with a TPM its SVN counter.
fn anti_rollback_status(
    report: &mut TokenReport,
    object: &serde_json::Map<String, serde_json::Value>,
    tpm: Option<&mut tpm::Tpm>,
) {
    let token = match AntiRollbackToken::from_object(object) {
        Ok(t) => t,
        Err(e) => {
            report.reason = Some(e.to_string());
            return;
        }
    };
    let st = &token.token;
    report.pcrs = st.pcrs.clone();
    report.pcr_bank = st.pcr_bank.map(|b| b.name().to_string());
    report.pin = st.pin == Some(true);
    report.signed_policy_pcrs = st.pubkey_pcrs.clone();
    report.policy_hash = st.policy_hash.as_slice().first().map(hex::encode);
    report.svn_index = Some(format!("{:#010x}", token.svn_index));
    let Some(tpm) = tpm else {
        return;
    };
    report.reason = Some(match tpm.svn_read(token.svn_index) {
        Ok(state) => {
            report.tpm_svn = Some(state.value);
            format!(
                "anti-rollback signed policy: images signed with SVN {} or later unseal (checked at unlock with the .pcrsig)",
                state.value
            )
        }
        Err(e) => {
            report.would_unseal = Some(false);
            e.to_string()
        }
    });
}

fn status(
    device: &Path,
    tcti: Option<&str>,
    uki_pcr11: Option<&[u8]>,
    json: bool,
) -> Result<(), Failure> {
    let header = read_header(device)?;
    let mut tpm = tcti.map(open).transpose()?;
    let mut tokens = Vec::new();
    for (id, t) in &header.metadata().tokens {
        let mut report = TokenReport {
            id: id.0,
            kind: match t {
                Token::SystemdTpm2(_) => TOKEN_TYPE.to_string(),
                Token::Other(raw) => raw.kind().to_string(),
            },
            keyslots: t.keyslots().iter().map(|k| k.0).collect(),
            pcrs: Vec::new(),
            pcr_bank: None,
            pin: false,
            signed_policy_pcrs: None,
            policy_hash: None,
            would_unseal: None,
            would_unseal_with_uki: None,
            svn_index: None,
            tpm_svn: None,
            reason: None,
        };
        if let Token::Other(raw) = t {
            if raw.kind() == ANTI_ROLLBACK_TOKEN_TYPE {
                anti_rollback_status(&mut report, raw.object(), tpm.as_mut());
            }
        }
        if let Token::SystemdTpm2(st) = t {
            report.pcrs = st.pcrs.clone();
            report.pcr_bank = st.pcr_bank.map(|b| format!("{b:?}").to_ascii_lowercase());
            report.pin = st.pin == Some(true);
            report.signed_policy_pcrs = st.pubkey_pcrs.clone();
            let hash = match &st.policy_hash {
                OneOrMany::One(h) => Some(h.clone()),
                OneOrMany::Many(v) => v.first().cloned(),
            };
            report.policy_hash = hash.as_ref().map(hex::encode);
            if let (Some(tpm), Some(hash)) = (tpm.as_mut(), hash) {
                if st.pubkey.is_some() {
                    report.reason =
                        Some("signed policy: checked at unlock with the .pcrsig".into());
                } else {
                    let bank = match st.pcr_bank {
                        Some(PcrBank::Sha1) => HashAlg::Sha1,
                        Some(PcrBank::Sha384) => HashAlg::Sha384,
                        Some(PcrBank::Sha512) => HashAlg::Sha512,
                        _ => HashAlg::Sha256,
                    };
                    let pcrs: Vec<u32> = st.pcrs.iter().map(|p| u32::from(*p)).collect();
                    let values = tpm
                        .read_selection(&[(bank, pcrs.clone())])
                        .map_err(tpm_failure)?;
                    let list: Vec<Vec<u8>> = pcrs
                        .iter()
                        .filter_map(|p| values.get(bank, *p).map(<[u8]>::to_vec))
                        .collect();
                    let policy = |values: &[Vec<u8>]| {
                        tpm::systemd::enrollment_policy(None, bank, &pcrs, values, report.pin)
                    };
                    let ok = policy(&list) == hash;
                    if let (Some(pcr11), HashAlg::Sha256) = (uki_pcr11, bank) {
                        let after: Vec<Vec<u8>> = pcrs
                            .iter()
                            .zip(&list)
                            .map(|(p, v)| if *p == 11 { pcr11.to_vec() } else { v.clone() })
                            .collect();
                        report.would_unseal_with_uki = Some(policy(&after) == hash);
                    }
                    report.would_unseal = Some(ok);
                    report.reason = Some(if ok {
                        "the current PCR values satisfy the policy".into()
                    } else {
                        format!(
                            "PCRs {} changed since enrollment: reseal (warrant disk reseal) or use the recovery key",
                            join(&pcrs)
                        )
                    });
                }
            }
        }
        tokens.push(report);
    }
    let report = StatusReport {
        device: device.display().to_string(),
        uuid: header.uuid().to_string(),
        keyslots: header.metadata().keyslots.keys().map(|k| k.0).collect(),
        tokens,
    };
    if json {
        return print_json(&report);
    }
    let mut text = format!(
        "{} (LUKS2 {}): keyslots {}\n",
        report.device,
        report.uuid,
        report
            .keyslots
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for t in &report.tokens {
        text.push_str(&format!(
            "  token {} ({}) for keyslots {:?}: PCRs {:?}{}{}{}{}\n",
            t.id,
            t.kind,
            t.keyslots,
            t.pcrs,
            if t.pin { ", PIN" } else { "" },
            match (&t.svn_index, t.tpm_svn) {
                (Some(i), Some(v)) => format!(", SVN counter {i} = {v}"),
                (Some(i), None) => format!(", SVN counter {i}"),
                _ => String::new(),
            },
            match t.would_unseal_with_uki {
                Some(true) => "; with the new UKI: still unseals",
                Some(false) => "; with the new UKI: would NOT unseal (reseal after the update, or use a signed policy)",
                None => "",
            },
            t.reason
                .as_ref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        ));
    }
    emit(&text)
}
