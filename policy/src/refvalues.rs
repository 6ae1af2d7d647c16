//! Reference values: what a node must have booted to be admitted, as a versioned JSON document
//! (`"schema": "warrant-reference-values/1"`). The format, every field and what it protects
//! against are described in `docs/reference-values.md`.
//!
//! ```json
//! {
//!   "schema": "warrant-reference-values/1",
//!   "bank": "sha256",
//!   "firmware_log_pcrs": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14],
//!   "pcr_values": {"11": ["<hex>", "<hex>"]},
//!   "firmware_digests": ["<hex>"],
//!   "boot_loader_digests": ["<hex>", "<hex>"],
//!   "secure_boot": true,
//!   "pk": ["<hex>"], "kek": ["<hex>"], "db": ["<hex>"],
//!   "dbx_contains": ["<hex>"],
//!   "root_hashes": ["<hex>"],
//!   "kernel_cmdline": ["module.sig_enforce=1", "lockdown=integrity"],
//!   "ima": {"file_digests": ["sha256:<hex>"]}
//! }
//! ```
//!
//! Parsing is strict ([`ReferenceValues::from_json`]): unknown fields, another schema, bad hex,
//! a digest whose length is not the bank's, a PCR index out of range, an empty allow-list (which
//! would reject every node: omit the field to skip the check instead) and a check whose events
//! come from a PCR the firmware log is not verified against are errors. A parsed
//! [`ReferenceValues`] therefore always describes checks that can be carried out.

use measure::alg::HashAlg;
use measure::pcr::MAX_PCR;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The `schema` value of this version of the format.
pub const SCHEMA: &str = "warrant-reference-values/1";

/// The PCRs whose firmware event-log events are verified when `firmware_log_pcrs` is absent:
/// those TCG PC Client PFP 1.06 section 3.3.4 assigns to the firmware and boot loader (0-9), and
/// PCR 14, where shim mirrors its MOK lists.
pub const DEFAULT_FIRMWARE_LOG_PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

/// The PCR Warrant's agent extends its own measurements into (its CEL log, see
/// [`crate::appraise::WarrantLog`]). Always quoted.
pub const WARRANT_PCR: u32 = 15;
/// The PCR IMA extends its measurement list into.
pub const IMA_PCR: u32 = 10;

/// PCR 0: firmware code (PFP 1.06 section 3.3.4.1).
pub const FIRMWARE_PCR: u32 = 0;
/// PCR 4: boot manager code, the `EV_EFI_BOOT_SERVICES_APPLICATION` events (section 3.3.4.5).
pub const BOOT_LOADER_PCR: u32 = 4;
/// PCR 7: Secure Boot policy (section 3.3.4.8).
pub const SECURE_BOOT_PCR: u32 = 7;
/// PCRs holding kernel command lines: GRUB and systemd-boot log it into PCR 8, systemd-stub
/// into PCR 12.
pub const CMDLINE_PCRS: [u32; 2] = [8, 12];

/// Validated reference values. Made only by [`ReferenceValues::from_json`] (or
/// [`crate::appraise::capture`]), so every value has been checked: the accessors never return an
/// empty allow-list or a digest of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceValues {
    pub(crate) bank: HashAlg,
    pub(crate) firmware_log_pcrs: BTreeSet<u32>,
    pub(crate) pcr_values: BTreeMap<u32, Vec<Vec<u8>>>,
    pub(crate) firmware_digests: Option<Vec<Vec<u8>>>,
    pub(crate) boot_loader_digests: Option<Vec<Vec<u8>>>,
    pub(crate) secure_boot: bool,
    pub(crate) pk: Option<Vec<Vec<u8>>>,
    pub(crate) kek: Option<Vec<Vec<u8>>>,
    pub(crate) db: Option<Vec<Vec<u8>>>,
    pub(crate) dbx: Option<Vec<Vec<u8>>>,
    pub(crate) dbx_contains: Option<Vec<Vec<u8>>>,
    pub(crate) root_hashes: Option<Vec<Vec<u8>>>,
    pub(crate) kernel_cmdline: Option<Vec<String>>,
    pub(crate) ima: Option<ImaPolicy>,
}

/// What the IMA measurement list must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaPolicy {
    /// When set, every verified entry's file digest (except the `boot_aggregate` entry) must be
    /// one of these.
    pub(crate) file_digests: Option<BTreeSet<ImaFileDigest>>,
}

impl ImaPolicy {
    pub fn file_digests(&self) -> Option<&BTreeSet<ImaFileDigest>> {
        self.file_digests.as_ref()
    }
}

/// A file digest as IMA prints it: `<kernel algorithm name>:<hex>` (`sha256:ab12...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImaFileDigest {
    pub algorithm: String,
    pub digest: Vec<u8>,
}

impl std::fmt::Display for ImaFileDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm, hex::encode(&self.digest))
    }
}

/// Why a reference-values document is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RefValuesError {
    /// Not JSON, a field of the wrong type, a missing required field or an unknown field.
    #[error("reference values: {reason}")]
    Json { reason: String },
    #[error("reference values: schema is {found:?}, this verifier reads {SCHEMA:?}")]
    Schema { found: String },
    #[error(
        "reference values: unknown bank {name:?} (known: sha1, sha256, sha384, sha512, sm3_256)"
    )]
    UnknownBank { name: String },
    #[error("reference values: {field}: PCR {pcr:?} is not a decimal number from 0 to {MAX_PCR}")]
    BadPcr { field: String, pcr: String },
    #[error("reference values: {field}: PCR {pcr} appears twice")]
    DuplicatePcr { field: String, pcr: u32 },
    #[error("reference values: {field}: PCR {pcr} holds Warrant's own measurements, appraised through its log (use root_hashes)")]
    WarrantPcr { field: String, pcr: u32 },
    #[error("reference values: {field}[{index}] is not a hex string")]
    BadHex { field: String, index: usize },
    #[error("reference values: {field}[{index}] is {len} bytes, {expected}")]
    BadLength {
        field: String,
        index: usize,
        len: usize,
        expected: String,
    },
    #[error("reference values: {field} is an empty list, which would reject every node; omit the field to skip the check")]
    EmptyList { field: String },
    #[error("reference values: {field} is checked on events of PCR {pcr}, which is not in firmware_log_pcrs (its events would not be verified)")]
    PcrNotInLog { field: String, pcr: String },
    #[error("reference values: kernel_cmdline[{index}] {parameter:?} is not one kernel parameter (empty, or blank outside quotes)")]
    BadCmdlineParameter { index: usize, parameter: String },
    #[error("reference values: ima.file_digests[{index}] {value:?}: {reason}")]
    BadImaDigest {
        index: usize,
        value: String,
        reason: String,
    },
}

/// The JSON document, as written. Converted to and from [`ReferenceValues`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firmware_log_pcrs: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pcr_values: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firmware_digests: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boot_loader_digests: Option<Vec<String>>,
    /// Required: a policy must say whether Secure Boot is required.
    secure_boot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pk: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kek: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    db: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dbx: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dbx_contains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_hashes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kernel_cmdline: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ima: Option<ImaDocument>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImaDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_digests: Option<Vec<String>>,
}

/// Lengths a dm-verity root hash or a dbx entry may have: SHA-1, SHA-224, SHA-256, SHA-384,
/// SHA-512 (the `EFI_CERT_SHA*` types of UEFI 2.10 section 32.4.1 and veritysetup's hashes).
const HASH_LENGTHS: [usize; 5] = [20, 28, 32, 48, 64];

impl ReferenceValues {
    /// Parses and validates a reference-values document (see the module documentation).
    pub fn from_json(bytes: &[u8]) -> Result<Self, RefValuesError> {
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| RefValuesError::Json {
            reason: e.to_string(),
        })?;
        Self::from_document(doc)
    }

    fn from_document(doc: Document) -> Result<Self, RefValuesError> {
        if doc.schema != SCHEMA {
            return Err(RefValuesError::Schema { found: doc.schema });
        }
        let bank = match doc.bank {
            None => HashAlg::Sha256,
            Some(name) => HashAlg::from_name(&name).ok_or(RefValuesError::UnknownBank { name })?,
        };
        let bank_len = bank.digest_len();
        let firmware_log_pcrs = match doc.firmware_log_pcrs {
            None => DEFAULT_FIRMWARE_LOG_PCRS.into_iter().collect(),
            Some(list) => {
                let mut set = BTreeSet::new();
                for pcr in list {
                    let field = "firmware_log_pcrs".to_string();
                    if pcr > MAX_PCR {
                        return Err(RefValuesError::BadPcr {
                            field,
                            pcr: pcr.to_string(),
                        });
                    }
                    if pcr == WARRANT_PCR {
                        return Err(RefValuesError::WarrantPcr { field, pcr });
                    }
                    if !set.insert(pcr) {
                        return Err(RefValuesError::DuplicatePcr { field, pcr });
                    }
                }
                set
            }
        };
        let mut pcr_values = BTreeMap::new();
        for (index, values) in doc.pcr_values.unwrap_or_default() {
            let field = format!("pcr_values.{index}");
            let pcr = parse_pcr_index(&index).ok_or_else(|| RefValuesError::BadPcr {
                field: "pcr_values".into(),
                pcr: index.clone(),
            })?;
            if pcr == WARRANT_PCR {
                return Err(RefValuesError::WarrantPcr { field, pcr });
            }
            let digests = hex_list(&field, Some(values), &[bank_len], bank)?;
            pcr_values.insert(pcr, digests.unwrap_or_default());
        }
        let digests = |field: &str, v: Option<Vec<String>>| hex_list(field, v, &[bank_len], bank);
        let refs = ReferenceValues {
            bank,
            firmware_digests: digests("firmware_digests", doc.firmware_digests)?,
            boot_loader_digests: digests("boot_loader_digests", doc.boot_loader_digests)?,
            secure_boot: doc.secure_boot,
            pk: digests("pk", doc.pk)?,
            kek: digests("kek", doc.kek)?,
            db: digests("db", doc.db)?,
            dbx: digests("dbx", doc.dbx)?,
            dbx_contains: hex_list("dbx_contains", doc.dbx_contains, &HASH_LENGTHS, bank)?,
            root_hashes: hex_list("root_hashes", doc.root_hashes, &HASH_LENGTHS, bank)?,
            kernel_cmdline: cmdline_list(doc.kernel_cmdline)?,
            ima: doc.ima.map(ima_policy).transpose()?,
            firmware_log_pcrs,
            pcr_values,
        };
        refs.check_log_pcrs()?;
        Ok(refs)
    }

    /// Every check that reads firmware-log events needs its PCR among the verified ones.
    fn check_log_pcrs(&self) -> Result<(), RefValuesError> {
        let need = |field: &str, set: bool, pcr: u32| {
            if set && !self.firmware_log_pcrs.contains(&pcr) {
                Err(RefValuesError::PcrNotInLog {
                    field: field.into(),
                    pcr: pcr.to_string(),
                })
            } else {
                Ok(())
            }
        };
        need(
            "firmware_digests",
            self.firmware_digests.is_some(),
            FIRMWARE_PCR,
        )?;
        need(
            "boot_loader_digests",
            self.boot_loader_digests.is_some(),
            BOOT_LOADER_PCR,
        )?;
        need("secure_boot", self.secure_boot, SECURE_BOOT_PCR)?;
        need("pk", self.pk.is_some(), SECURE_BOOT_PCR)?;
        need("kek", self.kek.is_some(), SECURE_BOOT_PCR)?;
        need("db", self.db.is_some(), SECURE_BOOT_PCR)?;
        need("dbx", self.dbx.is_some(), SECURE_BOOT_PCR)?;
        need("dbx_contains", self.dbx_contains.is_some(), SECURE_BOOT_PCR)?;
        if self.kernel_cmdline.is_some()
            && !CMDLINE_PCRS
                .iter()
                .any(|p| self.firmware_log_pcrs.contains(p))
        {
            return Err(RefValuesError::PcrNotInLog {
                field: "kernel_cmdline".into(),
                pcr: "8 or 12".into(),
            });
        }
        Ok(())
    }

    /// The document, pretty-printed JSON with a trailing newline.
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_document())
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    fn to_document(&self) -> Document {
        let hexes = |v: &Option<Vec<Vec<u8>>>| {
            v.as_ref()
                .map(|l| l.iter().map(hex::encode).collect::<Vec<_>>())
        };
        Document {
            schema: SCHEMA.into(),
            bank: Some(self.bank.name().into()),
            firmware_log_pcrs: Some(self.firmware_log_pcrs.iter().copied().collect()),
            pcr_values: (!self.pcr_values.is_empty()).then(|| {
                self.pcr_values
                    .iter()
                    .map(|(p, v)| (p.to_string(), v.iter().map(hex::encode).collect()))
                    .collect()
            }),
            firmware_digests: hexes(&self.firmware_digests),
            boot_loader_digests: hexes(&self.boot_loader_digests),
            secure_boot: self.secure_boot,
            pk: hexes(&self.pk),
            kek: hexes(&self.kek),
            db: hexes(&self.db),
            dbx: hexes(&self.dbx),
            dbx_contains: hexes(&self.dbx_contains),
            root_hashes: hexes(&self.root_hashes),
            kernel_cmdline: self.kernel_cmdline.clone(),
            ima: self.ima.as_ref().map(|i| ImaDocument {
                file_digests: i
                    .file_digests
                    .as_ref()
                    .map(|s| s.iter().map(ToString::to_string).collect()),
            }),
        }
    }

    /// The PCRs the verifier must have the node quote, per bank: the firmware-log PCRs, the
    /// PCRs with allowed values, [`WARRANT_PCR`], and [`IMA_PCR`] when IMA is appraised, all
    /// in [`ReferenceValues::bank`].
    pub fn quote_selection(&self) -> Vec<(HashAlg, Vec<u32>)> {
        let mut pcrs: BTreeSet<u32> = self.firmware_log_pcrs.clone();
        pcrs.extend(self.pcr_values.keys().copied());
        pcrs.insert(WARRANT_PCR);
        if self.wants_ima() {
            pcrs.insert(IMA_PCR);
        }
        vec![(self.bank, pcrs.into_iter().collect())]
    }

    /// The bank every digest and PCR value is appraised in.
    pub fn bank(&self) -> HashAlg {
        self.bank
    }
    /// The PCRs the firmware event log must replay to (their quoted values), in order.
    pub fn firmware_log_pcrs(&self) -> Vec<u32> {
        self.firmware_log_pcrs.iter().copied().collect()
    }
    /// Allowed final values per PCR (each list non-empty).
    pub fn pcr_values(&self) -> &BTreeMap<u32, Vec<Vec<u8>>> {
        &self.pcr_values
    }
    pub fn firmware_digests(&self) -> Option<&[Vec<u8>]> {
        self.firmware_digests.as_deref()
    }
    pub fn boot_loader_digests(&self) -> Option<&[Vec<u8>]> {
        self.boot_loader_digests.as_deref()
    }
    pub fn secure_boot(&self) -> bool {
        self.secure_boot
    }
    pub fn pk(&self) -> Option<&[Vec<u8>]> {
        self.pk.as_deref()
    }
    pub fn kek(&self) -> Option<&[Vec<u8>]> {
        self.kek.as_deref()
    }
    pub fn db(&self) -> Option<&[Vec<u8>]> {
        self.db.as_deref()
    }
    pub fn dbx(&self) -> Option<&[Vec<u8>]> {
        self.dbx.as_deref()
    }
    pub fn dbx_contains(&self) -> Option<&[Vec<u8>]> {
        self.dbx_contains.as_deref()
    }
    pub fn root_hashes(&self) -> Option<&[Vec<u8>]> {
        self.root_hashes.as_deref()
    }
    pub fn kernel_cmdline(&self) -> Option<&[String]> {
        self.kernel_cmdline.as_deref()
    }
    pub fn ima(&self) -> Option<&ImaPolicy> {
        self.ima.as_ref()
    }
    /// True when the verifier must collect the node's IMA measurement list.
    pub fn wants_ima(&self) -> bool {
        self.ima.is_some()
    }
}

/// A decimal PCR index without sign, spaces or leading zeros, at most [`MAX_PCR`].
fn parse_pcr_index(text: &str) -> Option<u32> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse::<u32>().ok().filter(|i| *i <= MAX_PCR)
}

/// Decodes a list of hex digests, each of one of `lengths` bytes; `None` stays `None`, an empty
/// list is an error.
fn hex_list(
    field: &str,
    list: Option<Vec<String>>,
    lengths: &[usize],
    bank: HashAlg,
) -> Result<Option<Vec<Vec<u8>>>, RefValuesError> {
    let Some(list) = list else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(RefValuesError::EmptyList {
            field: field.into(),
        });
    }
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(list.len());
    for (index, text) in list.iter().enumerate() {
        let bytes = hex::decode(text).map_err(|_| RefValuesError::BadHex {
            field: field.into(),
            index,
        })?;
        if !lengths.contains(&bytes.len()) {
            let expected = match lengths {
                [one] => format!("but {bank} digests are {one} bytes"),
                _ => format!("but a hash is one of {lengths:?} bytes"),
            };
            return Err(RefValuesError::BadLength {
                field: field.into(),
                index,
                len: bytes.len(),
                expected,
            });
        }
        if !out.contains(&bytes) {
            out.push(bytes);
        }
    }
    Ok(Some(out))
}

fn cmdline_list(list: Option<Vec<String>>) -> Result<Option<Vec<String>>, RefValuesError> {
    let Some(list) = list else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(RefValuesError::EmptyList {
            field: "kernel_cmdline".into(),
        });
    }
    for (index, parameter) in list.iter().enumerate() {
        let tokens = crate::appraise::cmdline_tokens(parameter);
        if tokens.len() != 1 || tokens.first().map(String::as_str) != Some(parameter.as_str()) {
            return Err(RefValuesError::BadCmdlineParameter {
                index,
                parameter: parameter.clone(),
            });
        }
    }
    Ok(Some(list))
}

fn ima_policy(doc: ImaDocument) -> Result<ImaPolicy, RefValuesError> {
    let Some(list) = doc.file_digests else {
        return Ok(ImaPolicy { file_digests: None });
    };
    if list.is_empty() {
        return Err(RefValuesError::EmptyList {
            field: "ima.file_digests".into(),
        });
    }
    let mut set = BTreeSet::new();
    for (index, value) in list.iter().enumerate() {
        let bad = |reason: &str| RefValuesError::BadImaDigest {
            index,
            value: value.clone(),
            reason: reason.into(),
        };
        let (name, hex_text) = value
            .split_once(':')
            .ok_or_else(|| bad("not <algorithm>:<hex>"))?;
        let algo = measure::ima::algo::kernel_hash_algo(name.as_bytes())
            .ok_or_else(|| bad("unknown kernel hash algorithm"))?;
        let digest = hex::decode(hex_text).map_err(|_| bad("not hex"))?;
        if digest.len() != algo.digest_len {
            return Err(bad(&format!(
                "{} bytes, but {} digests are {} bytes",
                digest.len(),
                algo.name,
                algo.digest_len
            )));
        }
        set.insert(ImaFileDigest {
            algorithm: algo.name.to_string(),
            digest,
        });
    }
    Ok(ImaPolicy {
        file_digests: Some(set),
    })
}
