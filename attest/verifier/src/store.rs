//! The verifier's state: everything a restart must not lose.
//!
//! One interface, [`Store`], so that a PostgreSQL back end can follow; one implementation today,
//! [`SqliteStore`]: a single file `DIR/verifier.sqlite3` in WAL mode with `synchronous=FULL`
//! (a decision the verifier answered is on disk before the answer leaves), its schema versioned
//! with `PRAGMA user_version` and migrated forward by [`MIGRATIONS`] on open.
//!
//! What is kept:
//! - **nodes**, keyed by the node id (lowercase hex SHA-256 of the EK's DER
//!   SubjectPublicKeyInfo), with the name the node asked for (unique), its EK and AK, its state
//!   ([`NodeState`]), a pending credential-activation challenge (only the SHA-256 of the secret,
//!   never the secret) and the last TPM clock it showed;
//! - **challenges**: single-use quote nonces, consumed atomically by
//!   [`Store::take_challenge`];
//! - **decisions**: the append-only audit trail (the table refuses `UPDATE` and `DELETE`);
//! - **credentials**: client certificates issued to admitted nodes, with the bootstrap token id
//!   (and only the SHA-256 of its secret) and their revocation.
//!
//! The store never reads the clock: every time is an `i64` of Unix seconds passed in by the
//! caller. Trust: the database file is the verifier's own and is trusted as far as its
//! integrity (SQLite's `quick_check` runs on open); nothing in it is secret, so a reader of the
//! file learns no activation secret or bootstrap token.

use measure::tpm2::ClockInfo;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The file name of the database inside the state directory.
pub const DB_FILE: &str = "verifier.sqlite3";

/// Schema migrations, in order: `MIGRATIONS[i]` takes `user_version` from `i` to `i + 1`.
/// Append only; never edit a released step.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE nodes (
    node_id                   TEXT PRIMARY KEY NOT NULL
                              CHECK (length(node_id) = 64 AND node_id NOT GLOB '*[^0-9a-f]*'),
    name                      TEXT NOT NULL UNIQUE,
    ek_spki                   BLOB NOT NULL,
    ek_certificate            BLOB,
    ak_public                 BLOB NOT NULL,
    ak_name                   BLOB NOT NULL,
    state                     TEXT NOT NULL
                              CHECK (state IN ('registered', 'activated', 'admitted', 'denied', 'revoked')),
    activated_at              INTEGER,
    activation_secret_sha256  BLOB CHECK (activation_secret_sha256 IS NULL OR length(activation_secret_sha256) = 32),
    activation_expires_at     INTEGER,
    clock                     INTEGER,
    reset_count               INTEGER,
    restart_count             INTEGER,
    safe                      INTEGER,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE challenges (
    nonce          TEXT PRIMARY KEY NOT NULL,
    node_id        TEXT NOT NULL REFERENCES nodes(node_id),
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    clock          INTEGER NOT NULL,
    reset_count    INTEGER NOT NULL,
    restart_count  INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) STRICT;
CREATE INDEX challenges_by_node ON challenges(node_id);
CREATE INDEX challenges_by_expiry ON challenges(expires_at);

CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id        TEXT NOT NULL,
    time           INTEGER NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('registration', 'activation', 'attestation', 'revocation')),
    verdict        TEXT NOT NULL CHECK (verdict IN ('admitted', 'denied', 'revoked', 'ok')),
    reasons        TEXT NOT NULL CHECK (json_valid(reasons) AND json_type(reasons) = 'array'),
    clock          INTEGER,
    reset_count    INTEGER,
    restart_count  INTEGER,
    safe           INTEGER
) STRICT;
CREATE INDEX decisions_by_node_time ON decisions(node_id, time);
CREATE INDEX decisions_by_time ON decisions(time);
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

CREATE TABLE credentials (
    serial                  TEXT PRIMARY KEY NOT NULL,
    node_id                 TEXT NOT NULL REFERENCES nodes(node_id),
    issued_at               INTEGER NOT NULL,
    not_after               INTEGER NOT NULL,
    bootstrap_token_id      TEXT NOT NULL,
    bootstrap_token_sha256  BLOB NOT NULL CHECK (length(bootstrap_token_sha256) = 32),
    revoked_at              INTEGER,
    revoke_reason           TEXT
) STRICT;
CREATE INDEX credentials_by_node ON credentials(node_id);
"#,
    // 2: `removal` decisions (`warrant-verifier remove`). SQLite cannot change a CHECK, so the
    // table is rebuilt with its rows, ids and append-only triggers.
    r#"
CREATE TABLE decisions_v2 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id        TEXT NOT NULL,
    time           INTEGER NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('registration', 'activation', 'attestation', 'revocation', 'removal')),
    verdict        TEXT NOT NULL CHECK (verdict IN ('admitted', 'denied', 'revoked', 'ok')),
    reasons        TEXT NOT NULL CHECK (json_valid(reasons) AND json_type(reasons) = 'array'),
    clock          INTEGER,
    reset_count    INTEGER,
    restart_count  INTEGER,
    safe           INTEGER
) STRICT;
INSERT INTO decisions_v2 (id, node_id, time, kind, verdict, reasons, clock, reset_count,
                          restart_count, safe)
    SELECT id, node_id, time, kind, verdict, reasons, clock, reset_count, restart_count, safe
    FROM decisions ORDER BY id;
DROP TABLE decisions;
ALTER TABLE decisions_v2 RENAME TO decisions;
CREATE INDEX decisions_by_node_time ON decisions(node_id, time);
CREATE INDEX decisions_by_time ON decisions(time);
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
"#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What went wrong in the store. Peers should only ever see a coarse message; the audit log
/// gets these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable Warrant state database (corrupt, or not SQLite): {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path} has schema version {found}, newer than the {supported} this verifier knows: \
         run a newer verifier"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store's lock was poisoned by a panic")]
    Poisoned,
    #[error("node {node_id} is already registered")]
    NodeExists { node_id: String },
    #[error("the name {name:?} is already held by another node")]
    NameTaken { name: String },
    #[error("no node {node_id}")]
    UnknownNode { node_id: String },
    #[error("node {node_id} cannot go from {from} to {to}")]
    InvalidTransition {
        node_id: String,
        from: NodeState,
        to: NodeState,
    },
    #[error("node {node_id} has no pending activation challenge")]
    NoActivation { node_id: String },
    #[error("the nonce already exists")]
    NonceExists,
    #[error("unknown nonce")]
    UnknownNonce,
    #[error("the nonce was issued to another node, not {node_id}")]
    NonceOfOtherNode { node_id: String },
    #[error("the nonce was already used")]
    NonceUsed,
    #[error("the nonce expired at {expires_at} (now {now})")]
    NonceExpired { expires_at: i64, now: i64 },
    #[error("credential {serial} already exists")]
    CredentialExists { serial: String },
    #[error("unknown credential {serial}")]
    UnknownCredential { serial: String },
    #[error("{field} = {value} does not fit the database")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("bad stored value in {table}.{column}: {value:?}")]
    BadValue {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    #[error("reasons are not serialisable JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where a node is in admission (the order of the attestation protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// EK and AK known; the credential-activation challenge is pending.
    Registered,
    /// The node proved its AK lives in the TPM holding the EK.
    Activated,
    /// A quote was appraised and passed: the node holds (or may get) a credential.
    Admitted,
    /// The last activation or appraisal failed.
    Denied,
    /// An operator or a policy revoked the node. Terminal.
    Revoked,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Registered => "registered",
            NodeState::Activated => "activated",
            NodeState::Admitted => "admitted",
            NodeState::Denied => "denied",
            NodeState::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Option<NodeState> {
        Some(match s {
            "registered" => NodeState::Registered,
            "activated" => NodeState::Activated,
            "admitted" => NodeState::Admitted,
            "denied" => NodeState::Denied,
            "revoked" => NodeState::Revoked,
            _ => return None,
        })
    }

    /// The transitions [`Store::set_node_state`] allows. `Admitted` further needs a node
    /// whose AK was activated at some point (checked by the store); nothing leaves `Revoked`.
    pub fn can_become(self, to: NodeState) -> bool {
        use NodeState::*;
        match (self, to) {
            (Revoked, _) => false,
            (_, Registered) => false,
            (Registered | Denied, Activated) => true,
            (_, Activated) => false,
            (Activated | Admitted | Denied, Admitted) => true,
            (Registered, Admitted) => false,
            (_, Denied | Revoked) => true,
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node as first registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNode {
    /// Lowercase hex SHA-256 of `ek_spki`.
    pub node_id: String,
    pub name: String,
    /// DER SubjectPublicKeyInfo of the EK.
    pub ek_spki: Vec<u8>,
    /// DER EK certificate, when the TPM has one.
    pub ek_certificate: Option<Vec<u8>>,
    /// The AK's marshalled `TPM2B_PUBLIC`.
    pub ak_public: Vec<u8>,
    /// The AK's TPM name (`nameAlg || H(TPMT_PUBLIC)`).
    pub ak_name: Vec<u8>,
    /// SHA-256 of the credential-activation secret (never the secret).
    pub activation_secret_sha256: [u8; 32],
    pub activation_expires_at: i64,
    pub now: i64,
}

/// A pending credential-activation challenge: the hash of the secret and its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingActivation {
    pub secret_sha256: [u8; 32],
    pub expires_at: i64,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub node_id: String,
    pub name: String,
    #[serde(with = "hex_bytes")]
    pub ek_spki: Vec<u8>,
    #[serde(with = "hex_opt")]
    pub ek_certificate: Option<Vec<u8>>,
    #[serde(with = "hex_bytes")]
    pub ak_public: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub ak_name: Vec<u8>,
    pub state: NodeState,
    /// When the AK was last activated (`None`: never).
    pub activated_at: Option<i64>,
    #[serde(skip)]
    pub activation: Option<PendingActivation>,
    /// The TPM clock of the last quote accepted from this node.
    pub last_clock: Option<ClockInfo>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A quote nonce handed to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Challenge {
    /// 32 random bytes, lowercase hex.
    pub nonce: String,
    pub node_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The TPM clock the node showed when it asked (the quote must not be older).
    pub reset_count: u32,
    pub restart_count: u32,
    pub clock: u64,
}

/// Which step of the protocol a decision was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    Registration,
    Activation,
    Attestation,
    Revocation,
    /// An operator removed the node (`warrant-verifier remove`): its TPM may register anew.
    Removal,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Registration => "registration",
            DecisionKind::Activation => "activation",
            DecisionKind::Attestation => "attestation",
            DecisionKind::Revocation => "revocation",
            DecisionKind::Removal => "removal",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "registration" => DecisionKind::Registration,
            "activation" => DecisionKind::Activation,
            "attestation" => DecisionKind::Attestation,
            "revocation" => DecisionKind::Revocation,
            "removal" => DecisionKind::Removal,
            _ => return None,
        })
    }
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Admitted,
    Denied,
    Revoked,
    Ok,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Admitted => "admitted",
            Verdict::Denied => "denied",
            Verdict::Revoked => "revoked",
            Verdict::Ok => "ok",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "admitted" => Verdict::Admitted,
            "denied" => Verdict::Denied,
            "revoked" => Verdict::Revoked,
            "ok" => Verdict::Ok,
            _ => return None,
        })
    }
}

/// A decision to append to the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision<'a> {
    pub node_id: &'a str,
    pub time: i64,
    pub kind: DecisionKind,
    pub verdict: Verdict,
    /// The findings behind the verdict (stored as a JSON array).
    pub reasons: &'a [serde_json::Value],
    /// The clock of the quote the decision was about, if any.
    pub clock: Option<ClockInfo>,
}

/// One row of the audit trail, as exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: i64,
    pub node_id: String,
    pub time: i64,
    pub kind: DecisionKind,
    pub verdict: Verdict,
    pub reasons: Vec<serde_json::Value>,
    pub clock: Option<ClockInfo>,
}

/// A client certificate issued to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Certificate serial, lowercase hex.
    pub serial: String,
    pub node_id: String,
    pub issued_at: i64,
    pub not_after: i64,
    /// The kubeadm bootstrap token id handed out with the certificate.
    pub bootstrap_token_id: String,
    /// SHA-256 of the bootstrap token's secret part (never the secret).
    #[serde(skip)]
    pub bootstrap_token_sha256: [u8; 32],
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
}

/// The verifier's state. Every method is one transaction; times are Unix seconds from the
/// caller.
pub trait Store: Send + Sync {
    /// Registers a new node in state `registered` with its pending activation challenge.
    /// [`StoreError::NodeExists`] if the node id is known, [`StoreError::NameTaken`] if another
    /// node holds the name.
    fn insert_node(&self, node: &NewNode) -> Result<(), StoreError>;
    fn node(&self, node_id: &str) -> Result<Option<Node>, StoreError>;
    fn node_by_name(&self, name: &str) -> Result<Option<Node>, StoreError>;
    fn nodes(&self) -> Result<Vec<Node>, StoreError>;
    /// Registers a known node again with a new AK (a reinstalled node with the same TPM):
    /// back to `registered`, `activated_at` cleared, a new pending activation. Refused for a
    /// revoked node.
    fn reregister_node(&self, node: &NewNode) -> Result<(), StoreError>;
    /// Moves a node along [`NodeState::can_become`]; becoming `activated` also records
    /// `activated_at` and clears the pending activation.
    fn set_node_state(&self, node_id: &str, to: NodeState, now: i64) -> Result<(), StoreError>;
    /// Replaces the pending activation challenge (hash and expiry).
    fn set_activation(
        &self,
        node_id: &str,
        activation: PendingActivation,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Drops the pending activation challenge (one try per registration: a wrong answer burns
    /// it; the node must register again).
    fn clear_activation(&self, node_id: &str, now: i64) -> Result<(), StoreError>;
    /// Records the TPM clock of the last accepted quote.
    fn set_last_clock(&self, node_id: &str, clock: ClockInfo, now: i64) -> Result<(), StoreError>;

    fn insert_challenge(&self, challenge: &Challenge) -> Result<(), StoreError>;
    /// Consumes a nonce atomically: exactly one caller ever gets the row. Errors, in the order
    /// checked: [`StoreError::UnknownNonce`], [`StoreError::NonceOfOtherNode`] (the nonce is
    /// left usable by its node), [`StoreError::NonceUsed`], [`StoreError::NonceExpired`] (the
    /// nonce is burnt).
    fn take_challenge(&self, nonce: &str, node_id: &str, now: i64)
        -> Result<Challenge, StoreError>;
    /// Deletes challenges that expired before `now` or were used; returns how many.
    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError>;

    /// Appends to the audit trail; returns the decision's id.
    fn record_decision(&self, decision: &NewDecision<'_>) -> Result<i64, StoreError>;
    /// The audit trail in order, optionally for one node and from `since` (inclusive).
    fn decisions(
        &self,
        node_id: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<Decision>, StoreError>;

    fn insert_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    fn credential(&self, serial: &str) -> Result<Option<Credential>, StoreError>;
    /// The unrevoked, unexpired credential of the node issued last, if any.
    fn active_credential(&self, node_id: &str, now: i64) -> Result<Option<Credential>, StoreError>;
    /// Whether the credential was revoked; [`StoreError::UnknownCredential`] for a serial this
    /// verifier never issued (callers must treat that as not valid).
    fn is_revoked(&self, serial: &str) -> Result<bool, StoreError>;
    /// In one transaction: the node becomes `revoked`, its pending activation is dropped, its
    /// unused challenges are burnt, every unrevoked credential gets `revoked_at = now` and the
    /// reason, and a `revocation`/`revoked` decision carrying the reason is appended. Returns
    /// how many credentials were revoked.
    fn revoke_node(&self, node_id: &str, reason: &str, now: i64) -> Result<usize, StoreError>;
    /// In one transaction: the node, its challenges and its credentials (whose serials then
    /// are unknown, so still refused) are deleted, and a `removal`/`ok` decision carrying the
    /// reason is appended; the audit trail keeps every earlier decision. Its TPM may then
    /// register again as a new node.
    fn remove_node(&self, node_id: &str, reason: &str, now: i64) -> Result<(), StoreError>;
}

/// [`Store`] on one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn corrupt(path: &Path, e: &rusqlite::Error) -> Option<StoreError> {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Some(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        _ => None,
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/verifier.sqlite3`, checks it and migrates it to
    /// [`SCHEMA_VERSION`]. `dir` is created with mode 0700, the file with mode 0600.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |source| StoreError::Open {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let path = dir.join(DB_FILE);
        // Create the file ourselves so that it (and SQLite's -wal/-shm beside it, which copy
        // its mode) is 0600 from the start. An empty file is an empty database to SQLite.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let conn = Connection::open(&path)?;
        Self::setup(conn, &path, true)
    }

    /// A store in memory (for tests of the store's users); no WAL, lost on drop.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::setup(conn, Path::new(":memory:"), false)
    }

    fn setup(mut conn: Connection, path: &Path, wal: bool) -> Result<SqliteStore, StoreError> {
        let check = |e: rusqlite::Error| corrupt(path, &e).unwrap_or(StoreError::Sqlite(e));
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(check)?;
        // The first statement that reads the file: a non-database fails here.
        let integrity: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(check)?;
        if integrity != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: integrity,
            });
        }
        if wal {
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(check)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::BadValue {
                    table: "pragma",
                    column: "journal_mode",
                    value: mode,
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(check)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(check)?;
        migrate(&mut conn, path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()?
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

/// Brings the database from its `user_version` to [`SCHEMA_VERSION`], one transaction per
/// step. A database from a newer verifier is refused, never touched.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if !(0..=SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(found).unwrap_or(usize::MAX);
    for (version, step) in (1..).zip(MIGRATIONS.iter()).skip(done) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

fn bad(table: &'static str, column: &'static str, value: impl fmt::Debug) -> StoreError {
    StoreError::BadValue {
        table,
        column,
        value: format!("{value:?}"),
    }
}

/// Reads `(clock, reset_count, restart_count, safe)` from four columns, all NULL or none.
fn clock_from(
    table: &'static str,
    clock: Option<i64>,
    reset: Option<i64>,
    restart: Option<i64>,
    safe: Option<i64>,
) -> Result<Option<ClockInfo>, StoreError> {
    match (clock, reset, restart, safe) {
        (None, None, None, None) => Ok(None),
        (Some(c), Some(r), Some(s), Some(f)) => Ok(Some(ClockInfo {
            clock: u64::try_from(c).map_err(|_| bad(table, "clock", c))?,
            reset_count: u32::try_from(r).map_err(|_| bad(table, "reset_count", r))?,
            restart_count: u32::try_from(s).map_err(|_| bad(table, "restart_count", s))?,
            safe: f != 0,
        })),
        other => Err(bad(table, "clock", other)),
    }
}

fn hash32(table: &'static str, column: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| bad(table, column, hex::encode(&v)))
}

const NODE_COLUMNS: &str = "node_id, name, ek_spki, ek_certificate, ak_public, ak_name, state, \
     activated_at, activation_secret_sha256, activation_expires_at, clock, reset_count, \
     restart_count, safe, created_at, updated_at";

/// The raw row, read inside rusqlite's closure; checked into a [`Node`] outside it.
type NodeRow = (
    (String, String, Vec<u8>, Option<Vec<u8>>, Vec<u8>, Vec<u8>),
    (String, Option<i64>, Option<Vec<u8>>, Option<i64>),
    (Option<i64>, Option<i64>, Option<i64>, Option<i64>, i64, i64),
);

fn node_row(r: &Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ),
        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
        (
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
        ),
    ))
}

fn node_from(row: NodeRow) -> Result<Node, StoreError> {
    let (
        (node_id, name, ek_spki, ek_certificate, ak_public, ak_name),
        (state, activated_at, secret, expires),
        (clock, reset, restart, safe, created_at, updated_at),
    ) = row;
    let state = NodeState::parse(&state).ok_or_else(|| bad("nodes", "state", &state))?;
    let activation = match (secret, expires) {
        (None, None) => None,
        (Some(s), Some(expires_at)) => Some(PendingActivation {
            secret_sha256: hash32("nodes", "activation_secret_sha256", s)?,
            expires_at,
        }),
        (s, e) => return Err(bad("nodes", "activation_expires_at", (s.is_some(), e))),
    };
    Ok(Node {
        node_id,
        name,
        ek_spki,
        ek_certificate,
        ak_public,
        ak_name,
        state,
        activated_at,
        activation,
        last_clock: clock_from("nodes", clock, reset, restart, safe)?,
        created_at,
        updated_at,
    })
}

fn query_node(conn: &Connection, column: &str, value: &str) -> Result<Option<Node>, StoreError> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE {column} = ?1");
    conn.query_row(&sql, [value], node_row)
        .optional()?
        .map(node_from)
        .transpose()
}

fn node_state(conn: &Connection, node_id: &str) -> Result<(NodeState, bool), StoreError> {
    let (state, activated): (String, Option<i64>) = conn
        .query_row(
            "SELECT state, activated_at FROM nodes WHERE node_id = ?1",
            [node_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownNode {
            node_id: node_id.to_owned(),
        })?;
    let state = NodeState::parse(&state).ok_or_else(|| bad("nodes", "state", &state))?;
    Ok((state, activated.is_some()))
}

type CredentialRow = (
    String,
    String,
    i64,
    i64,
    String,
    Vec<u8>,
    Option<i64>,
    Option<String>,
);

const CREDENTIAL_COLUMNS: &str = "serial, node_id, issued_at, not_after, bootstrap_token_id, \
     bootstrap_token_sha256, revoked_at, revoke_reason";

fn credential_row(r: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn credential_from(row: CredentialRow) -> Result<Credential, StoreError> {
    let (serial, node_id, issued_at, not_after, token_id, token_hash, revoked_at, reason) = row;
    Ok(Credential {
        serial,
        node_id,
        issued_at,
        not_after,
        bootstrap_token_id: token_id,
        bootstrap_token_sha256: hash32("credentials", "bootstrap_token_sha256", token_hash)?,
        revoked_at,
        revoke_reason: reason,
    })
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

fn write_node(conn: &Connection, node: &NewNode, sql: &str) -> Result<usize, StoreError> {
    conn.execute(
        sql,
        params![
            node.node_id,
            node.name,
            node.ek_spki,
            node.ek_certificate,
            node.ak_public,
            node.ak_name,
            node.activation_secret_sha256.as_slice(),
            node.activation_expires_at,
            node.now,
        ],
    )
    .map_err(StoreError::from)
}

impl Store for SqliteStore {
    fn insert_node(&self, node: &NewNode) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if query_node(&tx, "node_id", &node.node_id)?.is_some() {
            return Err(StoreError::NodeExists {
                node_id: node.node_id.clone(),
            });
        }
        if query_node(&tx, "name", &node.name)?.is_some() {
            return Err(StoreError::NameTaken {
                name: node.name.clone(),
            });
        }
        write_node(
            &tx,
            node,
            "INSERT INTO nodes (node_id, name, ek_spki, ek_certificate, ak_public, ak_name, \
             state, activation_secret_sha256, activation_expires_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'registered', ?7, ?8, ?9, ?9)",
        )?;
        tx.commit()?;
        Ok(())
    }

    fn node(&self, node_id: &str) -> Result<Option<Node>, StoreError> {
        query_node(&*self.lock()?, "node_id", node_id)
    }

    fn node_by_name(&self, name: &str) -> Result<Option<Node>, StoreError> {
        query_node(&*self.lock()?, "name", name)
    }

    fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes ORDER BY created_at, node_id"
        ))?;
        let rows = stmt.query_map([], node_row)?;
        rows.map(|row| node_from(row?)).collect()
    }

    fn reregister_node(&self, node: &NewNode) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (state, _) = node_state(&tx, &node.node_id)?;
        if state == NodeState::Revoked {
            return Err(StoreError::InvalidTransition {
                node_id: node.node_id.clone(),
                from: state,
                to: NodeState::Registered,
            });
        }
        if let Some(holder) = query_node(&tx, "name", &node.name)? {
            if holder.node_id != node.node_id {
                return Err(StoreError::NameTaken {
                    name: node.name.clone(),
                });
            }
        }
        write_node(
            &tx,
            node,
            "UPDATE nodes SET name = ?2, ek_spki = ?3, ek_certificate = ?4, ak_public = ?5, \
             ak_name = ?6, state = 'registered', activated_at = NULL, \
             activation_secret_sha256 = ?7, activation_expires_at = ?8, updated_at = ?9 \
             WHERE node_id = ?1",
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_node_state(&self, node_id: &str, to: NodeState, now: i64) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (from, was_activated) = node_state(&tx, node_id)?;
        let allowed = from.can_become(to) && (to != NodeState::Admitted || was_activated);
        if !allowed {
            return Err(StoreError::InvalidTransition {
                node_id: node_id.to_owned(),
                from,
                to,
            });
        }
        if to == NodeState::Activated {
            tx.execute(
                "UPDATE nodes SET state = ?2, activated_at = ?3, \
                 activation_secret_sha256 = NULL, activation_expires_at = NULL, \
                 updated_at = ?3 WHERE node_id = ?1",
                params![node_id, to.as_str(), now],
            )?;
        } else {
            tx.execute(
                "UPDATE nodes SET state = ?2, updated_at = ?3 WHERE node_id = ?1",
                params![node_id, to.as_str(), now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_activation(
        &self,
        node_id: &str,
        activation: PendingActivation,
        now: i64,
    ) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "UPDATE nodes SET activation_secret_sha256 = ?2, activation_expires_at = ?3, \
             updated_at = ?4 WHERE node_id = ?1",
            params![
                node_id,
                activation.secret_sha256.as_slice(),
                activation.expires_at,
                now
            ],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownNode {
                node_id: node_id.to_owned(),
            });
        }
        Ok(())
    }

    fn clear_activation(&self, node_id: &str, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "UPDATE nodes SET activation_secret_sha256 = NULL, activation_expires_at = NULL, \
             updated_at = ?2 WHERE node_id = ?1",
            params![node_id, now],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownNode {
                node_id: node_id.to_owned(),
            });
        }
        Ok(())
    }

    fn set_last_clock(&self, node_id: &str, clock: ClockInfo, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "UPDATE nodes SET clock = ?2, reset_count = ?3, restart_count = ?4, safe = ?5, \
             updated_at = ?6 WHERE node_id = ?1",
            params![
                node_id,
                to_i64("clock", clock.clock)?,
                clock.reset_count,
                clock.restart_count,
                clock.safe,
                now
            ],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownNode {
                node_id: node_id.to_owned(),
            });
        }
        Ok(())
    }

    fn insert_challenge(&self, c: &Challenge) -> Result<(), StoreError> {
        let conn = self.lock()?;
        let clock = to_i64("clock", c.clock)?;
        conn.execute(
            "INSERT INTO challenges (nonce, node_id, issued_at, expires_at, clock, \
             reset_count, restart_count, used) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
            params![
                c.nonce,
                c.node_id,
                c.issued_at,
                c.expires_at,
                clock,
                c.reset_count,
                c.restart_count
            ],
        )
        .map_err(|e| {
            if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
                // Primary key (a repeated nonce) or foreign key (an unknown node).
                match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                    {
                        StoreError::UnknownNode {
                            node_id: c.node_id.clone(),
                        }
                    }
                    _ => StoreError::NonceExists,
                }
            } else {
                StoreError::from(e)
            }
        })?;
        Ok(())
    }

    fn take_challenge(
        &self,
        nonce: &str,
        node_id: &str,
        now: i64,
    ) -> Result<Challenge, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        type Row7 = (String, i64, i64, i64, i64, i64, bool);
        let row: Option<Row7> = tx
            .query_row(
                "SELECT node_id, issued_at, expires_at, clock, reset_count, restart_count, used \
                 FROM challenges WHERE nonce = ?1",
                [nonce],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()?;
        let (owner, issued_at, expires_at, clock, reset, restart, used) =
            row.ok_or(StoreError::UnknownNonce)?;
        if owner != node_id {
            return Err(StoreError::NonceOfOtherNode {
                node_id: node_id.to_owned(),
            });
        }
        if used {
            return Err(StoreError::NonceUsed);
        }
        // Burn it whatever happens next: an expired nonce is not retried either.
        let n = tx.execute(
            "UPDATE challenges SET used = 1 WHERE nonce = ?1 AND used = 0",
            [nonce],
        )?;
        if n != 1 {
            return Err(StoreError::NonceUsed);
        }
        if now >= expires_at {
            tx.commit()?;
            return Err(StoreError::NonceExpired { expires_at, now });
        }
        let challenge = Challenge {
            nonce: nonce.to_owned(),
            node_id: owner,
            issued_at,
            expires_at,
            clock: u64::try_from(clock).map_err(|_| bad("challenges", "clock", clock))?,
            reset_count: u32::try_from(reset)
                .map_err(|_| bad("challenges", "reset_count", reset))?,
            restart_count: u32::try_from(restart)
                .map_err(|_| bad("challenges", "restart_count", restart))?,
        };
        tx.commit()?;
        Ok(challenge)
    }

    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.lock()?;
        Ok(conn.execute(
            "DELETE FROM challenges WHERE used = 1 OR expires_at <= ?1",
            [now],
        )?)
    }

    fn record_decision(&self, d: &NewDecision<'_>) -> Result<i64, StoreError> {
        let reasons = serde_json::to_string(d.reasons)?;
        let conn = self.lock()?;
        insert_decision(
            &conn, d.node_id, d.time, d.kind, d.verdict, &reasons, d.clock,
        )
    }

    fn decisions(
        &self,
        node_id: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<Decision>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT id, node_id, time, kind, verdict, reasons, clock, reset_count, \
             restart_count, safe FROM decisions \
             WHERE (?1 IS NULL OR node_id = ?1) AND (?2 IS NULL OR time >= ?2) ORDER BY id",
        )?;
        type DecisionRow = (
            i64,
            String,
            i64,
            String,
            String,
            String,
            (Option<i64>, Option<i64>, Option<i64>, Option<i64>),
        );
        let rows = stmt.query_map(
            params![node_id, since],
            |r| -> rusqlite::Result<DecisionRow> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
                ))
            },
        )?;
        rows.map(|row| {
            let (id, node_id, time, kind, verdict, reasons, (c, r, s, f)) = row?;
            Ok(Decision {
                id,
                node_id,
                time,
                kind: DecisionKind::parse(&kind).ok_or_else(|| bad("decisions", "kind", &kind))?,
                verdict: Verdict::parse(&verdict)
                    .ok_or_else(|| bad("decisions", "verdict", &verdict))?,
                reasons: serde_json::from_str(&reasons)
                    .map_err(|_| bad("decisions", "reasons", &reasons))?,
                clock: clock_from("decisions", c, r, s, f)?,
            })
        })
        .collect()
    }

    fn insert_credential(&self, c: &Credential) -> Result<(), StoreError> {
        let conn = self.lock()?;
        if conn
            .query_row(
                "SELECT 1 FROM credentials WHERE serial = ?1",
                [&c.serial],
                |_| Ok(()),
            )
            .optional()?
            .is_some()
        {
            return Err(StoreError::CredentialExists {
                serial: c.serial.clone(),
            });
        }
        conn.execute(
            &format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                c.serial,
                c.node_id,
                c.issued_at,
                c.not_after,
                c.bootstrap_token_id,
                c.bootstrap_token_sha256.as_slice(),
                c.revoked_at,
                c.revoke_reason
            ],
        )
        .map_err(|e| {
            if is_constraint(&e) {
                StoreError::UnknownNode {
                    node_id: c.node_id.clone(),
                }
            } else {
                StoreError::from(e)
            }
        })?;
        Ok(())
    }

    fn credential(&self, serial: &str) -> Result<Option<Credential>, StoreError> {
        let conn = self.lock()?;
        conn.query_row(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE serial = ?1"),
            [serial],
            credential_row,
        )
        .optional()?
        .map(credential_from)
        .transpose()
    }

    fn active_credential(&self, node_id: &str, now: i64) -> Result<Option<Credential>, StoreError> {
        let conn = self.lock()?;
        conn.query_row(
            &format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials \
                 WHERE node_id = ?1 AND revoked_at IS NULL AND not_after > ?2 \
                 ORDER BY issued_at DESC, rowid DESC LIMIT 1"
            ),
            params![node_id, now],
            credential_row,
        )
        .optional()?
        .map(credential_from)
        .transpose()
    }

    fn is_revoked(&self, serial: &str) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let revoked_at: Option<i64> = conn
            .query_row(
                "SELECT revoked_at FROM credentials WHERE serial = ?1",
                [serial],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownCredential {
                serial: serial.to_owned(),
            })?;
        Ok(revoked_at.is_some())
    }

    fn remove_node(&self, node_id: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        let reasons = serde_json::to_string(&[reason])?;
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        node_state(&tx, node_id)?; // known node?
        tx.execute("DELETE FROM challenges WHERE node_id = ?1", [node_id])?;
        tx.execute("DELETE FROM credentials WHERE node_id = ?1", [node_id])?;
        tx.execute("DELETE FROM nodes WHERE node_id = ?1", [node_id])?;
        insert_decision(
            &tx,
            node_id,
            now,
            DecisionKind::Removal,
            Verdict::Ok,
            &reasons,
            None,
        )?;
        tx.commit()?;
        Ok(())
    }

    fn revoke_node(&self, node_id: &str, reason: &str, now: i64) -> Result<usize, StoreError> {
        let reasons = serde_json::to_string(&[reason])?;
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Known node? (Revoking twice is allowed: it revokes credentials issued since.)
        node_state(&tx, node_id)?;
        tx.execute(
            "UPDATE nodes SET state = 'revoked', activation_secret_sha256 = NULL, \
             activation_expires_at = NULL, updated_at = ?2 WHERE node_id = ?1",
            params![node_id, now],
        )?;
        tx.execute(
            "UPDATE challenges SET used = 1 WHERE node_id = ?1 AND used = 0",
            [node_id],
        )?;
        let revoked = tx.execute(
            "UPDATE credentials SET revoked_at = ?2, revoke_reason = ?3 \
             WHERE node_id = ?1 AND revoked_at IS NULL",
            params![node_id, now, reason],
        )?;
        insert_decision(
            &tx,
            node_id,
            now,
            DecisionKind::Revocation,
            Verdict::Revoked,
            &reasons,
            None,
        )?;
        tx.commit()?;
        Ok(revoked)
    }
}

fn insert_decision(
    conn: &Connection,
    node_id: &str,
    time: i64,
    kind: DecisionKind,
    verdict: Verdict,
    reasons_json: &str,
    clock: Option<ClockInfo>,
) -> Result<i64, StoreError> {
    let (c, r, s, f) = match clock {
        Some(c) => (
            Some(to_i64("clock", c.clock)?),
            Some(c.reset_count),
            Some(c.restart_count),
            Some(c.safe),
        ),
        None => (None, None, None, None),
    };
    conn.execute(
        "INSERT INTO decisions (node_id, time, kind, verdict, reasons, clock, reset_count, \
         restart_count, safe) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            node_id,
            time,
            kind.as_str(),
            verdict.as_str(),
            reasons_json,
            c,
            r,
            s,
            f
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Hex for byte fields in exports.
mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

mod hex_opt {
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn node_id(n: u8) -> String {
        hex::encode([n; 32])
    }

    fn new_node(n: u8, name: &str, now: i64) -> NewNode {
        NewNode {
            node_id: node_id(n),
            name: name.to_owned(),
            ek_spki: vec![0x30, n],
            ek_certificate: Some(vec![0x30, 0x82, n]),
            ak_public: vec![0, 4, 1, n],
            ak_name: vec![0, 0x0b, n],
            activation_secret_sha256: [n; 32],
            activation_expires_at: now + 300,
            now,
        }
    }

    fn clock(c: u64) -> ClockInfo {
        ClockInfo {
            clock: c,
            reset_count: 7,
            restart_count: 2,
            safe: true,
        }
    }

    fn challenge(nonce: &str, n: u8, now: i64) -> Challenge {
        Challenge {
            nonce: nonce.to_owned(),
            node_id: node_id(n),
            issued_at: now,
            expires_at: now + 60,
            reset_count: 7,
            restart_count: 2,
            clock: 123_456,
        }
    }

    fn credential(serial: &str, n: u8, issued_at: i64, not_after: i64) -> Credential {
        Credential {
            serial: serial.to_owned(),
            node_id: node_id(n),
            issued_at,
            not_after,
            bootstrap_token_id: "abcdef".to_owned(),
            bootstrap_token_sha256: [9; 32],
            revoked_at: None,
            revoke_reason: None,
        }
    }

    #[test]
    fn nodes_round_trip_and_names_are_unique() {
        let s = SqliteStore::open_in_memory().unwrap();
        let a = new_node(1, "worker-1", 1000);
        s.insert_node(&a).unwrap();
        let got = s.node(&a.node_id).unwrap().unwrap();
        assert_eq!(got.name, "worker-1");
        assert_eq!(got.ek_spki, a.ek_spki);
        assert_eq!(got.ek_certificate, a.ek_certificate);
        assert_eq!(got.ak_public, a.ak_public);
        assert_eq!(got.ak_name, a.ak_name);
        assert_eq!(got.state, NodeState::Registered);
        assert_eq!(
            got.activation,
            Some(PendingActivation {
                secret_sha256: [1; 32],
                expires_at: 1300
            })
        );
        assert_eq!(got.last_clock, None);
        assert_eq!((got.created_at, got.updated_at), (1000, 1000));
        assert_eq!(s.node_by_name("worker-1").unwrap().unwrap(), got);
        assert!(s.node_by_name("worker-2").unwrap().is_none());
        assert!(s.node(&node_id(9)).unwrap().is_none());

        assert!(matches!(
            s.insert_node(&a),
            Err(StoreError::NodeExists { .. })
        ));
        // A second EK claiming the same name.
        assert!(matches!(
            s.insert_node(&new_node(2, "worker-1", 1001)),
            Err(StoreError::NameTaken { .. })
        ));
        s.insert_node(&new_node(2, "worker-2", 1001)).unwrap();
        assert_eq!(s.nodes().unwrap().len(), 2);

        // A node id that is not lowercase hex SHA-256 is refused by the schema.
        let mut bad = new_node(3, "worker-3", 1002);
        bad.node_id = "ABC".to_owned();
        assert!(s.insert_node(&bad).is_err());
    }

    #[test]
    fn state_machine_and_clock() {
        let s = SqliteStore::open_in_memory().unwrap();
        let id = node_id(1);
        s.insert_node(&new_node(1, "n1", 10)).unwrap();
        // Never admitted before activation.
        assert!(matches!(
            s.set_node_state(&id, NodeState::Admitted, 11),
            Err(StoreError::InvalidTransition { .. })
        ));
        s.set_node_state(&id, NodeState::Denied, 11).unwrap();
        assert!(matches!(
            s.set_node_state(&id, NodeState::Admitted, 11),
            Err(StoreError::InvalidTransition { .. })
        ));
        s.set_node_state(&id, NodeState::Activated, 12).unwrap();
        let n = s.node(&id).unwrap().unwrap();
        assert_eq!(n.activated_at, Some(12));
        assert_eq!(n.activation, None, "activation clears the pending secret");
        s.set_node_state(&id, NodeState::Admitted, 13).unwrap();
        s.set_node_state(&id, NodeState::Denied, 14).unwrap();
        s.set_node_state(&id, NodeState::Admitted, 15).unwrap();
        s.set_last_clock(&id, clock(99), 15).unwrap();
        let n = s.node(&id).unwrap().unwrap();
        assert_eq!(n.last_clock, Some(clock(99)));
        assert_eq!(n.updated_at, 15);

        s.set_activation(
            &id,
            PendingActivation {
                secret_sha256: [5; 32],
                expires_at: 100,
            },
            16,
        )
        .unwrap();
        assert_eq!(
            s.node(&id)
                .unwrap()
                .unwrap()
                .activation
                .unwrap()
                .secret_sha256,
            [5; 32]
        );
        s.clear_activation(&id, 17).unwrap();
        assert_eq!(s.node(&id).unwrap().unwrap().activation, None);
        assert!(matches!(
            s.clear_activation(&node_id(8), 17),
            Err(StoreError::UnknownNode { .. })
        ));

        // Re-registration with a new AK goes back to registered and forgets the activation.
        let mut again = new_node(1, "n1", 20);
        again.ak_public = vec![1, 2, 3];
        s.reregister_node(&again).unwrap();
        let n = s.node(&id).unwrap().unwrap();
        assert_eq!(n.state, NodeState::Registered);
        assert_eq!(n.activated_at, None);
        assert_eq!(n.ak_public, vec![1, 2, 3]);
        assert_eq!(n.created_at, 10);

        s.revoke_node(&id, "operator", 30).unwrap();
        for to in [
            NodeState::Activated,
            NodeState::Admitted,
            NodeState::Denied,
            NodeState::Registered,
        ] {
            assert!(s.set_node_state(&id, to, 31).is_err(), "{to}");
        }
        assert!(s.reregister_node(&new_node(1, "n1", 32)).is_err());
        assert!(matches!(
            s.set_node_state(&node_id(8), NodeState::Denied, 1),
            Err(StoreError::UnknownNode { .. })
        ));
        assert!(matches!(
            s.set_last_clock(&node_id(8), clock(1), 1),
            Err(StoreError::UnknownNode { .. })
        ));
        assert!(matches!(
            s.set_last_clock(&id, clock(u64::MAX), 1),
            Err(StoreError::OutOfRange { .. })
        ));
    }

    #[test]
    fn challenges_are_single_use_with_distinct_errors() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.insert_node(&new_node(1, "n1", 0)).unwrap();
        s.insert_node(&new_node(2, "n2", 0)).unwrap();
        let c = challenge("aa", 1, 100);
        s.insert_challenge(&c).unwrap();
        assert!(matches!(
            s.insert_challenge(&c),
            Err(StoreError::NonceExists)
        ));
        assert!(matches!(
            s.insert_challenge(&challenge("bb", 9, 100)),
            Err(StoreError::UnknownNode { .. })
        ));

        assert!(matches!(
            s.take_challenge("zz", &node_id(1), 101),
            Err(StoreError::UnknownNonce)
        ));
        assert!(matches!(
            s.take_challenge("aa", &node_id(2), 101),
            Err(StoreError::NonceOfOtherNode { .. })
        ));
        // Another node's attempt did not burn it.
        assert_eq!(s.take_challenge("aa", &node_id(1), 101).unwrap(), c);
        assert!(matches!(
            s.take_challenge("aa", &node_id(1), 102),
            Err(StoreError::NonceUsed)
        ));

        s.insert_challenge(&challenge("cc", 1, 100)).unwrap();
        assert!(matches!(
            s.take_challenge("cc", &node_id(1), 160),
            Err(StoreError::NonceExpired {
                expires_at: 160,
                now: 160
            })
        ));
        assert!(matches!(
            s.take_challenge("cc", &node_id(1), 110),
            Err(StoreError::NonceUsed)
        ));

        s.insert_challenge(&challenge("dd", 1, 100)).unwrap();
        s.insert_challenge(&challenge("ee", 1, 1000)).unwrap();
        // aa, cc used; dd expired at 160; ee still live.
        assert_eq!(s.prune_challenges(500).unwrap(), 3);
        assert_eq!(
            s.take_challenge("ee", &node_id(1), 1001).unwrap().nonce,
            "ee"
        );
    }

    #[test]
    fn racing_threads_take_a_nonce_exactly_once() {
        let dir = TempDir::new("race");
        let s = Arc::new(SqliteStore::open(dir.path()).unwrap());
        s.insert_node(&new_node(1, "n1", 0)).unwrap();
        for round in 0..20 {
            let nonce = format!("{round:064x}");
            s.insert_challenge(&challenge(&nonce, 1, 0)).unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (s, barrier, nonce) = (Arc::clone(&s), Arc::clone(&barrier), nonce.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        s.take_challenge(&nonce, &node_id(1), 1)
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
            assert!(results
                .iter()
                .any(|r| matches!(r, Err(StoreError::NonceUsed))));
        }
        // Two connections (two verifier processes on one file) race the same way.
        let other = SqliteStore::open(dir.path()).unwrap();
        s.insert_challenge(&challenge("ff", 1, 0)).unwrap();
        let first = s.take_challenge("ff", &node_id(1), 1);
        let second = other.take_challenge("ff", &node_id(1), 1);
        assert!(first.is_ok());
        assert!(matches!(second, Err(StoreError::NonceUsed)));
    }

    #[test]
    fn decisions_are_append_only_and_filterable() {
        let s = SqliteStore::open_in_memory().unwrap();
        let reasons = vec![
            serde_json::json!({"pcr": 7, "finding": "secure boot off"}),
            serde_json::json!("ek chain ok"),
        ];
        let n1 = node_id(1);
        let n2 = node_id(2);
        let id1 = s
            .record_decision(&NewDecision {
                node_id: &n1,
                time: 10,
                kind: DecisionKind::Registration,
                verdict: Verdict::Ok,
                reasons: &[],
                clock: None,
            })
            .unwrap();
        let id2 = s
            .record_decision(&NewDecision {
                node_id: &n1,
                time: 20,
                kind: DecisionKind::Attestation,
                verdict: Verdict::Denied,
                reasons: &reasons,
                clock: Some(clock(5)),
            })
            .unwrap();
        s.record_decision(&NewDecision {
            node_id: &n2,
            time: 30,
            kind: DecisionKind::Attestation,
            verdict: Verdict::Admitted,
            reasons: &[],
            clock: Some(clock(6)),
        })
        .unwrap();
        assert!(id2 > id1);
        let all = s.decisions(None, None).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].reasons, reasons);
        assert_eq!(all[1].clock, Some(clock(5)));
        assert_eq!(all[1].kind, DecisionKind::Attestation);
        assert_eq!(all[1].verdict, Verdict::Denied);
        assert_eq!(s.decisions(Some(&n1), None).unwrap().len(), 2);
        assert_eq!(s.decisions(None, Some(20)).unwrap().len(), 2);
        assert_eq!(s.decisions(Some(&n1), Some(20)).unwrap()[0].id, id2);
        let json = serde_json::to_value(&all[1]).unwrap();
        assert_eq!(json["kind"], "attestation");
        assert_eq!(json["verdict"], "denied");
        assert_eq!(json["clock"]["reset_count"], 7);

        let conn = s.lock().unwrap();
        assert!(conn.execute("DELETE FROM decisions", []).is_err());
        assert!(conn
            .execute("UPDATE decisions SET verdict = 'admitted'", [])
            .is_err());
    }

    #[test]
    fn credentials_and_revocation() {
        let s = SqliteStore::open_in_memory().unwrap();
        let id = node_id(1);
        s.insert_node(&new_node(1, "n1", 0)).unwrap();
        s.insert_node(&new_node(2, "n2", 0)).unwrap();
        s.insert_credential(&credential("01", 1, 100, 200)).unwrap();
        s.insert_credential(&credential("02", 1, 150, 400)).unwrap();
        s.insert_credential(&credential("03", 2, 150, 400)).unwrap();
        assert!(matches!(
            s.insert_credential(&credential("01", 1, 100, 200)),
            Err(StoreError::CredentialExists { .. })
        ));
        assert!(matches!(
            s.insert_credential(&credential("04", 9, 100, 200)),
            Err(StoreError::UnknownNode { .. })
        ));
        assert_eq!(
            s.credential("01").unwrap().unwrap(),
            credential("01", 1, 100, 200)
        );
        assert_eq!(s.active_credential(&id, 160).unwrap().unwrap().serial, "02");
        assert!(s.active_credential(&id, 400).unwrap().is_none());
        assert!(!s.is_revoked("01").unwrap());
        assert!(matches!(
            s.is_revoked("ff"),
            Err(StoreError::UnknownCredential { .. })
        ));

        s.insert_challenge(&challenge("aa", 1, 150)).unwrap();
        assert_eq!(s.revoke_node(&id, "ek compromised", 170).unwrap(), 2);
        assert!(s.is_revoked("01").unwrap());
        assert!(s.is_revoked("02").unwrap());
        assert!(!s.is_revoked("03").unwrap());
        let c = s.credential("02").unwrap().unwrap();
        assert_eq!(c.revoked_at, Some(170));
        assert_eq!(c.revoke_reason.as_deref(), Some("ek compromised"));
        assert!(s.active_credential(&id, 171).unwrap().is_none());
        assert_eq!(s.node(&id).unwrap().unwrap().state, NodeState::Revoked);
        assert!(matches!(
            s.take_challenge("aa", &id, 171),
            Err(StoreError::NonceUsed)
        ));
        let audit = s.decisions(Some(&id), None).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].kind, DecisionKind::Revocation);
        assert_eq!(audit[0].verdict, Verdict::Revoked);
        assert_eq!(audit[0].reasons, vec![serde_json::json!("ek compromised")]);
        assert!(matches!(
            s.revoke_node(&node_id(9), "x", 1),
            Err(StoreError::UnknownNode { .. })
        ));
    }

    #[test]
    fn removal_forgets_the_node_but_not_its_history() {
        let s = SqliteStore::open_in_memory().unwrap();
        let id = node_id(1);
        s.insert_node(&new_node(1, "n1", 0)).unwrap();
        s.insert_node(&new_node(2, "n2", 0)).unwrap();
        s.insert_credential(&credential("01", 1, 100, 200)).unwrap();
        s.insert_credential(&credential("03", 2, 100, 200)).unwrap();
        s.insert_challenge(&challenge("aa", 1, 150)).unwrap();
        s.revoke_node(&id, "tampered", 160).unwrap();
        s.remove_node(&id, "machine rebuilt", 170).unwrap();
        assert!(s.node(&id).unwrap().is_none());
        assert!(s.node_by_name("n1").unwrap().is_none());
        // Its serial is unknown now: still refused by every caller of is_revoked.
        assert!(matches!(
            s.is_revoked("01"),
            Err(StoreError::UnknownCredential { .. })
        ));
        assert!(matches!(
            s.take_challenge("aa", &id, 171),
            Err(StoreError::UnknownNonce)
        ));
        // The other node is untouched; the history is kept, the removal appended.
        assert!(!s.is_revoked("03").unwrap());
        let audit = s.decisions(Some(&id), None).unwrap();
        let kinds: Vec<DecisionKind> = audit.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, vec![DecisionKind::Revocation, DecisionKind::Removal]);
        assert_eq!(audit[1].verdict, Verdict::Ok);
        assert_eq!(audit[1].reasons, vec![serde_json::json!("machine rebuilt")]);
        // The same TPM registers again, as a new node, under its old name.
        s.insert_node(&new_node(1, "n1", 180)).unwrap();
        assert_eq!(s.node(&id).unwrap().unwrap().state, NodeState::Registered);
        assert!(matches!(
            s.remove_node(&node_id(9), "x", 1),
            Err(StoreError::UnknownNode { .. })
        ));
    }

    #[test]
    fn schema_1_migrates_to_2_keeping_decisions_and_their_guard() {
        let dir = TempDir::new("migrate-v2");
        let path = dir.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for (time, kind) in [(5, "registration"), (6, "revocation")] {
                conn.execute(
                    "INSERT INTO decisions (node_id, time, kind, verdict, reasons) \
                     VALUES ('n', ?1, ?2, 'ok', '[\"r\"]')",
                    params![time, kind],
                )
                .unwrap();
            }
            // Version 1 has no removal.
            assert!(conn
                .execute(
                    "INSERT INTO decisions (node_id, time, kind, verdict, reasons) \
                     VALUES ('n', 7, 'removal', 'ok', '[]')",
                    [],
                )
                .is_err());
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), 2);
        let all = s.decisions(None, None).unwrap();
        assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(all[1].kind, DecisionKind::Revocation);
        // Still append-only, and ids go on from where they were.
        let conn = s.lock().unwrap();
        assert!(conn.execute("DELETE FROM decisions", []).is_err());
        assert!(conn
            .execute("UPDATE decisions SET verdict = 'denied'", [])
            .is_err());
        let id = insert_decision(
            &conn,
            "n",
            8,
            DecisionKind::Removal,
            Verdict::Ok,
            "[]",
            None,
        )
        .unwrap();
        assert_eq!(id, 3);
    }

    #[test]
    fn restart_loses_nothing() {
        let dir = TempDir::new("restart");
        let id = node_id(1);
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.insert_node(&new_node(1, "n1", 0)).unwrap();
            s.set_node_state(&id, NodeState::Activated, 1).unwrap();
            s.set_node_state(&id, NodeState::Admitted, 2).unwrap();
            s.set_last_clock(&id, clock(42), 2).unwrap();
            s.insert_challenge(&challenge("aa", 1, 2)).unwrap();
            s.insert_challenge(&challenge("bb", 1, 2)).unwrap();
            s.take_challenge("aa", &id, 3).unwrap();
            s.record_decision(&NewDecision {
                node_id: &id,
                time: 3,
                kind: DecisionKind::Attestation,
                verdict: Verdict::Admitted,
                reasons: &[serde_json::json!("ok")],
                clock: Some(clock(42)),
            })
            .unwrap();
            s.insert_credential(&credential("0a", 1, 3, 1000)).unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let n = s.node(&id).unwrap().unwrap();
        assert_eq!(n.state, NodeState::Admitted);
        assert_eq!(n.last_clock, Some(clock(42)));
        assert!(matches!(
            s.take_challenge("aa", &id, 4),
            Err(StoreError::NonceUsed)
        ));
        assert!(s.take_challenge("bb", &id, 4).is_ok());
        assert_eq!(s.decisions(None, None).unwrap().len(), 1);
        assert_eq!(s.active_credential(&id, 4).unwrap().unwrap().serial, "0a");
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);

        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let journal: String = s
            .lock()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let sync: i64 = s
            .lock()
            .unwrap()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn migrates_an_empty_database() {
        let dir = TempDir::new("migrate");
        let path = dir.path().join(DB_FILE);
        {
            // An existing, empty SQLite database at version 0.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE unrelated (x INTEGER); DROP TABLE unrelated;")
                .unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, 0);
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        s.insert_node(&new_node(1, "n1", 0)).unwrap();
        drop(s);
        // Reopening at the current version runs no migration again.
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.nodes().unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = TempDir::new("newer");
        drop(SqliteStore::open(dir.path()).unwrap());
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = SqliteStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, supported, .. }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{err}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn refuses_a_garbage_file() {
        let dir = TempDir::new("garbage");
        std::fs::write(
            dir.path().join(DB_FILE),
            b"this is not a database, just some bytes that are long enough to matter ........"
                .repeat(100),
        )
        .unwrap();
        let err = SqliteStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err
            .to_string()
            .contains("not a usable Warrant state database"));
    }

    /// A temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "warrant-store-{tag}-{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 8]>())
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
