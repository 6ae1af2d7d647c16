//! The node's state as typed input to [`super::audit`], and pure parsers for the text formats the
//! kernel exposes it in. The caller (the `warrant audit` CLI) reads the files; this module only
//! parses text. Every parser is strict: a line it cannot parse is an error naming the line, never
//! skipped (a dropped line would be a hidden verdict).
//!
//! | field                | read by the CLI from                                   | parser                         |
//! |----------------------|--------------------------------------------------------|--------------------------------|
//! | `kconfig`            | `/proc/config.gz` (gunzipped) or `/boot/config-$(uname -r)` | [`KernelConfig::parse`]   |
//! | `cmdline`            | `/proc/cmdline`                                        | [`Cmdline::parse`]             |
//! | `sysctls`            | `/proc/sys/**` (key = path with `/` -> `.`)            | [`parse_sysctl_lines`] (for `sysctl -a` text) |
//! | `mounts`             | `/proc/self/mountinfo`                                 | [`parse_mountinfo`]            |
//! | `lockdown`           | `/sys/kernel/security/lockdown`                        | [`parse_lockdown`]             |
//! | `module_sig_enforce` | `/sys/module/module/parameters/sig_enforce`            | [`parse_sig_enforce`]          |
//! | `lsms`               | `/sys/kernel/security/lsm`                             | [`parse_lsm_list`]             |
//! | `root`               | `/`'s device in mountinfo; if device-mapper, `veritysetup status` | [`parse_veritysetup_status`] |
//! | `expected_root_hash` | `--root-hash`, or `roothash=` on the command line      | [`ExpectedRootHash::from_cmdline`] |
//!
//! A field left `None` means "could not be read": every check that needs it is reported as
//! `unknown`, never as passed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// Why a text could not be parsed. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A kernel config line that is neither blank, a comment, `CONFIG_X=value` nor
    /// `# CONFIG_X is not set`.
    #[error("kernel config line {line}: not `CONFIG_NAME=value` or `# CONFIG_NAME is not set`")]
    KconfigSyntax { line: usize },
    /// A kernel config symbol name with characters other than `A-Z a-z 0-9 _`.
    #[error("kernel config line {line}: invalid symbol name")]
    KconfigName { line: usize },
    /// A value that is not `y`, `m`, `n`, a decimal or hex number, or a double-quoted string.
    #[error("kernel config line {line}: invalid value")]
    KconfigValue { line: usize },
    /// The same symbol twice: the config is ambiguous.
    #[error("kernel config line {line}: symbol set twice (first on line {first})")]
    KconfigDuplicate { line: usize, first: usize },
    /// A kernel command line with an unterminated double quote.
    #[error("kernel command line: unterminated quote at byte {offset}")]
    CmdlineQuote { offset: usize },
    /// A mountinfo line without the ` - ` separator before the filesystem type.
    #[error("mountinfo line {line}: no ` - ` separator")]
    MountinfoSeparator { line: usize },
    /// A mountinfo line with fewer fields than the format requires.
    #[error("mountinfo line {line}: expected at least {expected} fields, found {found}")]
    MountinfoFields {
        line: usize,
        expected: usize,
        found: usize,
    },
    /// A bad `\ooo` octal escape in a mountinfo path.
    #[error("mountinfo line {line}: bad octal escape")]
    MountinfoEscape { line: usize },
    /// The lockdown file did not have exactly one bracketed, known mode.
    #[error("lockdown: expected exactly one of none, integrity, confidentiality in brackets")]
    Lockdown,
    /// `sig_enforce` was not `Y`, `N`, `1` or `0`.
    #[error("module sig_enforce: expected Y or N")]
    SigEnforce,
    /// A `sysctl -a` line without ` = `.
    #[error("sysctl line {line}: expected `key = value`")]
    SysctlSyntax { line: usize },
    /// An LSM list entry that is empty or not `a-z 0-9 _`.
    #[error("lsm list: invalid entry")]
    LsmList,
    /// `veritysetup status` output without a `type: VERITY` line, or without `status:` or
    /// `root hash:`.
    #[error("veritysetup status: not an active dm-verity device (missing {missing})")]
    VerityStatus { missing: &'static str },
    /// A root hash that is not an even number of hex digits.
    #[error("root hash: not hex")]
    RootHash,
}

/// One value of a kernel config symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KconfigValue {
    /// `=y`: built in.
    Yes,
    /// `=m`: built as a module.
    Module,
    /// `=n` (rare in a .config) or `# CONFIG_X is not set`.
    NotSet,
    /// A number, as written (decimal or `0x` hex).
    Number(String),
    /// A double-quoted string, unescaped.
    Str(String),
}

impl fmt::Display for KconfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yes => f.write_str("y"),
            Self::Module => f.write_str("m"),
            Self::NotSet => f.write_str("is not set"),
            Self::Number(n) => f.write_str(n),
            Self::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

/// A parsed kernel `.config` (the text of `/boot/config-*` or gunzipped `/proc/config.gz`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    symbols: BTreeMap<String, KconfigValue>,
}

impl KernelConfig {
    /// Parses `.config` text. Accepts blank lines, `#` comments, `CONFIG_X=y|m|n|123|0x1f|"str"`
    /// and `# CONFIG_X is not set`; anything else is a [`ParseError`] naming the line.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut symbols = BTreeMap::new();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r').trim();
            if l.is_empty() {
                continue;
            }
            let (name, value) = if let Some(comment) = l.strip_prefix('#') {
                let c = comment.trim();
                match c
                    .strip_prefix("CONFIG_")
                    .and_then(|r| r.strip_suffix(" is not set"))
                {
                    Some(name) => (name, KconfigValue::NotSet),
                    None => continue, // an ordinary comment
                }
            } else {
                let rest = l
                    .strip_prefix("CONFIG_")
                    .ok_or(ParseError::KconfigSyntax { line })?;
                let (name, v) = rest
                    .split_once('=')
                    .ok_or(ParseError::KconfigSyntax { line })?;
                (
                    name,
                    parse_kconfig_value(v).ok_or(ParseError::KconfigValue { line })?,
                )
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ParseError::KconfigName { line });
            }
            let key = format!("CONFIG_{name}");
            if let Some(&first) = first_line.get(&key) {
                return Err(ParseError::KconfigDuplicate { line, first });
            }
            first_line.insert(key.clone(), line);
            symbols.insert(key, value);
        }
        Ok(Self { symbols })
    }

    /// The value of a symbol, by its full name (`CONFIG_STRICT_KERNEL_RWX`); `None` when the
    /// config does not mention it.
    pub fn get(&self, name: &str) -> Option<&KconfigValue> {
        self.symbols.get(name)
    }

    /// How many symbols the config mentions (set or "is not set").
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether the config mentions no symbol at all.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

fn parse_kconfig_value(v: &str) -> Option<KconfigValue> {
    match v {
        "y" => return Some(KconfigValue::Yes),
        "m" => return Some(KconfigValue::Module),
        "n" => return Some(KconfigValue::NotSet),
        _ => {}
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return None,
                c => out.push(c),
            }
        }
        return Some(KconfigValue::Str(out));
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    let ok = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    } else {
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    ok.then(|| KconfigValue::Number(v.to_string()))
}

/// A parsed kernel command line: the parameters the kernel itself sees, in order. Parsing stops
/// at a bare `--` (what follows is for init). Names are normalised as the kernel does: `-` and
/// `_` are equivalent, so `-` becomes `_`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    params: Vec<(String, Option<String>)>,
}

impl Cmdline {
    /// Parses `/proc/cmdline` text: whitespace-separated `name` or `name=value`, where double
    /// quotes group spaces (`foo="a b"`) and are removed, as the kernel's `next_arg` does.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut params = Vec::new();
        let mut tokens = Vec::new();
        let mut cur = String::new();
        let mut in_quote = false;
        let mut quote_at = 0;
        let mut has_token = false;
        for (i, c) in text.char_indices() {
            match c {
                '"' => {
                    in_quote = !in_quote;
                    quote_at = i;
                    has_token = true;
                }
                c if c.is_whitespace() && !in_quote => {
                    if has_token {
                        tokens.push(std::mem::take(&mut cur));
                        has_token = false;
                    }
                }
                c => {
                    cur.push(c);
                    has_token = true;
                }
            }
        }
        if in_quote {
            return Err(ParseError::CmdlineQuote { offset: quote_at });
        }
        if has_token {
            tokens.push(cur);
        }
        for t in tokens {
            if t == "--" {
                break;
            }
            let (name, value) = match t.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (t.as_str(), None),
            };
            params.push((name.replace('-', "_"), value));
        }
        Ok(Self { params })
    }

    /// Whether the parameter appears at all (as `name` or `name=value`).
    pub fn has(&self, name: &str) -> bool {
        let n = name.replace('-', "_");
        self.params.iter().any(|(k, _)| *k == n)
    }

    /// The value of the last occurrence of `name` (the kernel applies them in order, so the last
    /// one wins). `Some(None)` for a bare flag, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        let n = name.replace('-', "_");
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_deref())
    }
}

/// One line of `/proc/self/mountinfo` (proc(5)), with paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: String,
    /// Filesystem type (`ext4`, `tmpfs`, `squashfs`...).
    pub fs_type: String,
    /// The mount source (`/dev/mapper/root`, `tmpfs`...).
    pub source: String,
    /// The device number `major:minor` (`253:0` for the first device-mapper device).
    pub device: String,
    /// Per-mount options (`ro`, `nosuid`, `nodev`, `noexec`, `relatime`...).
    pub options: Vec<String>,
    /// Per-superblock options (`ro`/`rw` of the filesystem itself, and filesystem options).
    pub super_options: Vec<String>,
}

impl Mount {
    /// Whether the mount has `opt`. `ro` also counts when the superblock is read-only.
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
            || (opt == "ro" && self.super_options.iter().any(|o| o == "ro"))
    }
}

/// Parses `/proc/self/mountinfo`: `id parent major:minor root mount-point options [optional...]
/// - fstype source super-options`. Paths have `\ooo` octal escapes (`\040` for a space).
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.split(' ').filter(|f| !f.is_empty()).collect();
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or(ParseError::MountinfoSeparator { line })?;
        if sep < 6 {
            return Err(ParseError::MountinfoFields {
                line,
                expected: 6,
                found: sep,
            });
        }
        let after = fields.get(sep + 1..).unwrap_or(&[]);
        let (Some(fs_type), Some(source), Some(super_opts)) =
            (after.first(), after.get(1), after.get(2))
        else {
            return Err(ParseError::MountinfoFields {
                line,
                expected: sep + 4,
                found: fields.len(),
            });
        };
        let (Some(device), Some(mount_point), Some(opts)) =
            (fields.get(2), fields.get(4), fields.get(5))
        else {
            return Err(ParseError::MountinfoFields {
                line,
                expected: 6,
                found: fields.len(),
            });
        };
        let split = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        mounts.push(Mount {
            mount_point: unescape_octal(mount_point).ok_or(ParseError::MountinfoEscape { line })?,
            fs_type: (*fs_type).to_string(),
            source: unescape_octal(source).ok_or(ParseError::MountinfoEscape { line })?,
            device: (*device).to_string(),
            options: split(opts),
            super_options: split(super_opts),
        });
    }
    Ok(mounts)
}

fn unescape_octal(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            let oct = bytes.get(i + 1..i + 4)?;
            if !oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                return None;
            }
            let v = oct
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).ok()?);
            i += 4;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Kernel lockdown mode (`security/lockdown/lockdown.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockdownMode {
    /// No lockdown.
    None,
    /// Userspace may not modify the running kernel.
    Integrity,
    /// Integrity, and userspace may not read kernel memory either.
    Confidentiality,
}

impl LockdownMode {
    /// The mode's name as the kernel writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Integrity => "integrity",
            Self::Confidentiality => "confidentiality",
        }
    }
}

/// Parses `/sys/kernel/security/lockdown` (`none [integrity] confidentiality`): the bracketed
/// word is the current mode. Exactly one known, bracketed mode is required.
pub fn parse_lockdown(text: &str) -> Result<LockdownMode, ParseError> {
    let mut selected = None;
    for w in text.split_whitespace() {
        let (name, bracketed) = match w.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) => (inner, true),
            None => (w, false),
        };
        let mode = match name {
            "none" => LockdownMode::None,
            "integrity" => LockdownMode::Integrity,
            "confidentiality" => LockdownMode::Confidentiality,
            _ => return Err(ParseError::Lockdown),
        };
        if bracketed {
            if selected.is_some() {
                return Err(ParseError::Lockdown);
            }
            selected = Some(mode);
        }
    }
    selected.ok_or(ParseError::Lockdown)
}

/// Parses `/sys/module/module/parameters/sig_enforce` (`Y` or `N`; `1`/`0` accepted).
pub fn parse_sig_enforce(text: &str) -> Result<bool, ParseError> {
    match text.trim() {
        "Y" | "y" | "1" => Ok(true),
        "N" | "n" | "0" => Ok(false),
        _ => Err(ParseError::SigEnforce),
    }
}

/// Parses `/sys/kernel/security/lsm` (`lockdown,capability,landlock,yama,apparmor`).
pub fn parse_lsm_list(text: &str) -> Result<Vec<String>, ParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|s| {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            ok.then(|| s.to_string()).ok_or(ParseError::LsmList)
        })
        .collect()
}

/// Parses `sysctl -a` output (`kernel.kptr_restrict = 1`), as a convenience for tests and for
/// state captured with `sysctl -a`; the CLI may equally walk `/proc/sys` itself. Blank lines and
/// lines starting with `#` or `;` are skipped (sysctl.conf comments).
pub fn parse_sysctl_lines(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .ok_or(ParseError::SysctlSyntax { line: i + 1 })?;
        let k = k.trim().replace('/', ".");
        if k.is_empty() {
            return Err(ParseError::SysctlSyntax { line: i + 1 });
        }
        out.insert(k, v.trim().to_string());
    }
    Ok(out)
}

/// What an active dm-verity device reports (`veritysetup status NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerityStatus {
    /// `verified`, or `corrupted` once the kernel has met a block whose hash is wrong.
    pub status: String,
    /// The root hash of the active table, lower-case hex.
    pub root_hash: String,
    /// The data device (`/dev/vda`).
    pub data_device: String,
}

/// Parses `veritysetup status NAME` (cryptsetup 2.x text). Only `type`, `status`, `root hash`
/// and `data device` are read; other lines are ignored (their set varies between versions).
pub fn parse_veritysetup_status(text: &str) -> Result<VerityStatus, ParseError> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    if fields.get("type").map(String::as_str) != Some("VERITY") {
        return Err(ParseError::VerityStatus {
            missing: "type: VERITY",
        });
    }
    let get = |k: &'static str| {
        fields
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(ParseError::VerityStatus { missing: k })
    };
    Ok(VerityStatus {
        status: get("status")?,
        root_hash: normalize_root_hash(&get("root hash")?)?,
        data_device: get("data device").unwrap_or_default(),
    })
}

/// A root hash as lower-case hex; an error if it is not hex.
pub fn normalize_root_hash(hex: &str) -> Result<String, ParseError> {
    let h = hex.trim().to_ascii_lowercase();
    if h.is_empty() || !h.len().is_multiple_of(2) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParseError::RootHash);
    }
    Ok(h)
}

/// What backs the root file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootBacking {
    /// An active dm-verity device.
    Verity(VerityStatus),
    /// Anything else: a plain block device, another device-mapper target, an overlay...
    Other {
        /// The mount source.
        source: String,
        /// The file system type.
        fs_type: String,
    },
}

/// The root hash the root must have, and where that expectation came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedRootHash {
    /// Lower-case hex.
    pub hex: String,
    /// `--root-hash`, or the kernel command line parameter it came from.
    pub from: String,
}

impl ExpectedRootHash {
    /// `roothash=` (systemd-veritysetup-generator) or `systemd.verity_root_hash=` from the
    /// kernel command line; the last occurrence wins, as in the kernel.
    pub fn from_cmdline(cmdline: &Cmdline) -> Option<Result<ExpectedRootHash, ParseError>> {
        ["roothash", "systemd.verity_root_hash"]
            .into_iter()
            .find_map(|key| {
                cmdline.get(key).flatten().map(|v| {
                    normalize_root_hash(v).map(|hex| ExpectedRootHash {
                        hex,
                        from: format!("{key}= on the kernel command line"),
                    })
                })
            })
    }
}

/// Everything the audit looks at. Build it with the parsers above; leave a field `None` (or a
/// sysctl out of the map) when it could not be read, and the checks needing it are `unknown`.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// The running kernel's build configuration.
    pub kconfig: Option<KernelConfig>,
    /// The running kernel's command line.
    pub cmdline: Option<Cmdline>,
    /// Sysctls by dotted name (`kernel.kptr_restrict`) with their text value, trimmed. `None`:
    /// none could be read; a key missing from the map: that sysctl could not be read or does
    /// not exist on this kernel (reported `unknown`).
    pub sysctls: Option<BTreeMap<String, String>>,
    /// The mount table (of the mount namespace the agent runs in: the host's).
    pub mounts: Option<Vec<Mount>>,
    /// The kernel lockdown mode; `None` when securityfs has no lockdown file.
    pub lockdown: Option<LockdownMode>,
    /// Whether the kernel refuses unsigned modules (`module.sig_enforce`).
    pub module_sig_enforce: Option<bool>,
    /// The active LSMs, in order.
    pub lsms: Option<Vec<String>>,
    /// What backs `/`; `None` when it could not be found out.
    pub root: Option<RootBacking>,
    /// The root hash `/` must have; `None` when nobody said.
    pub expected_root_hash: Option<ExpectedRootHash>,
}
