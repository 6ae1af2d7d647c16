//! The verifier's certificate authority.
//!
//! One ECDSA P-256 key and a self-signed CA certificate ("Warrant verifier CA", `pathlen:0`,
//! key usage `keyCertSign`/`cRLSign`), kept in the state directory as `ca.pem` and
//! `ca-key.pem` and loaded again on every start, so that certificates issued before a restart
//! stay valid. The CA signs two kinds of leaves:
//!
//! - the verifier's own TLS **server** certificate (`serverAuth`, DNS and IP SANs), cached as
//!   `server.pem`/`server-key.pem` and reissued when the names change, when it is not from this
//!   CA or when it expires within a day;
//! - one **client** certificate per admitted node, from a PKCS#10 request whose key the node
//!   made itself. Only the request's key is taken (after checking its self-signature and that
//!   it is P-256 or RSA of at least 2048 bits): its subject and SANs are ignored. The
//!   certificate names the node by one URI SAN `urn:warrant:node:<node id>`, which is what the
//!   verifier reads back, with [`node_id_from_client_cert`], from a mutual-TLS peer.
//!
//! It also makes kubeadm bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`) from the OS CSPRNG.
//!
//! Trust: whoever reads `ca-key.pem` can mint node identities, so it (and every key written
//! here) is mode 0600 in a 0700 directory and written atomically (temp file, fsync, rename,
//! fsync of the directory). Nothing here reads the clock: `now` is Unix seconds from the caller.

use rand::distributions::{Distribution, Uniform};
use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;
use zeroize::Zeroizing;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";
pub const CA_COMMON_NAME: &str = "Warrant verifier CA";
/// The URI SAN prefix naming a node in its client certificate.
pub const NODE_URI_PREFIX: &str = "urn:warrant:node:";
/// The URI SAN prefix of an operator's client certificate (watch stream readers).
pub const OPERATOR_URI_PREFIX: &str = "urn:warrant:operator:";
/// The longest client certificate lifetime [`Authority::issue_client`] accepts.
pub const MAX_CLIENT_TTL_SECS: u64 = 366 * 86_400;
/// The smallest RSA modulus accepted in a node's request.
pub const MIN_RSA_BITS: usize = 2048;

const CA_VALIDITY_SECS: i64 = 10 * 365 * 86_400;
const SERVER_VALIDITY_SECS: i64 = 365 * 86_400;
/// A cached server certificate expiring sooner than this is reissued.
const SERVER_RENEW_BEFORE_SECS: i64 = 86_400;
/// notBefore is set this far in the past, for peers whose clocks lag a little.
const BACKDATE_SECS: i64 = 60;

/// What went wrong in the CA. Peers get a coarse message; logs get these.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path} is not a usable certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: &'static str },
    #[error("{path} is not a usable private key (PKCS#8 PEM expected)")]
    BadKey { path: PathBuf },
    #[error("{key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{cert} exists but its key {key} is missing: restore the key, or remove both to start a new CA (every node must then be admitted again)")]
    MissingKey { cert: PathBuf, key: PathBuf },
    #[error("the CA certificate expired at {not_after} (now {now})")]
    Expired { not_after: i64, now: i64 },
    #[error("the certificate request is not a PKCS#10 request this CA can read")]
    BadCsr,
    #[error("the certificate request's signature does not verify")]
    CsrSignature,
    #[error("the certificate request's key ({algorithm}) is neither P-256 nor RSA")]
    UnsupportedKey { algorithm: String },
    #[error("the certificate request's RSA key has {bits} bits, fewer than {MIN_RSA_BITS}")]
    WeakRsaKey { bits: usize },
    #[error("{node_id:?} is not a node id (64 lowercase hex digits)")]
    InvalidNodeId { node_id: String },
    #[error("{name:?} is not a node name (a lowercase RFC 1123 DNS subdomain)")]
    InvalidNodeName { name: String },
    #[error("a certificate lifetime of {ttl_secs} s is not in 1..={MAX_CLIENT_TTL_SECS}")]
    InvalidTtl { ttl_secs: u64 },
    #[error("the server certificate needs at least one name")]
    NoServerNames,
    #[error("{name:?} is neither a DNS name nor an IP address")]
    InvalidServerName { name: String },
    #[error("the time {unix} is out of range")]
    TimeOutOfRange { unix: i64 },
}

/// A certificate issued to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// The serial number, lowercase hex (16 bytes).
    pub serial: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

/// The verifier's certificate authority.
pub struct Authority {
    dir: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    not_after: i64,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("dir", &self.dir)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn at(unix: i64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| CaError::TimeOutOfRange { unix })
}

fn plus(now: i64, secs: i64) -> Result<i64, CaError> {
    now.checked_add(secs)
        .ok_or(CaError::TimeOutOfRange { unix: now })
}

/// 16 random bytes, high bit clear and next bit set, so that the DER INTEGER is positive,
/// exactly 16 bytes long and its hex is the serial's hex everywhere.
fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

fn read_optional(path: &Path) -> Result<Option<Zeroizing<String>>, CaError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(Zeroizing::new(s))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `contents` to `path` atomically with `mode`: a temp file beside it, fsync, rename,
/// fsync of the directory.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(contents).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
fn pem_to_der(pem: &str, path: &Path) -> Result<Vec<u8>, CaError> {
    let (_, p) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| CaError::BadCertificate {
            path: path.to_path_buf(),
            reason: "not PEM",
        })?;
    if p.label != "CERTIFICATE" {
        return Err(CaError::BadCertificate {
            path: path.to_path_buf(),
            reason: "the PEM block is not a CERTIFICATE",
        });
    }
    Ok(p.contents)
}

fn parse_cert<'a>(der: &'a [u8], path: &Path) -> Result<X509Certificate<'a>, CaError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(CaError::BadCertificate {
            path: path.to_path_buf(),
            reason: "not a DER X.509 certificate",
        }),
    }
}

fn load_key(pem: &str, path: &Path) -> Result<KeyPair, CaError> {
    KeyPair::from_pem(pem).map_err(|_| CaError::BadKey {
        path: path.to_path_buf(),
    })
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A lowercase RFC 1123 DNS subdomain (what Kubernetes accepts as a node name).
fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        })
}

fn is_node_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// A server name as it appears in a certificate: IPs in canonical text, DNS names lowercase.
fn server_san(name: &str) -> Result<(SanType, String), CaError> {
    let invalid = || CaError::InvalidServerName {
        name: name.to_owned(),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok((SanType::IpAddress(ip), ip.to_string()));
    }
    let lower = name.to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'*')
        });
    if !valid {
        return Err(invalid());
    }
    let ia5 = Ia5String::try_from(lower.clone()).map_err(|_| invalid())?;
    Ok((SanType::DnsName(ia5), lower))
}

/// The DNS and IP SANs of a certificate, as [`server_san`] writes them.
fn cert_server_names(cert: &X509Certificate<'_>) -> Option<BTreeSet<String>> {
    let san = cert.subject_alternative_name().ok()??;
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The bit length of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> usize {
    let digits = be.iter().skip_while(|b| **b == 0).collect::<Vec<_>>();
    match digits.first() {
        None => 0,
        Some(first) => (digits.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// Accepts a request key that is P-256 or RSA of at least [`MIN_RSA_BITS`].
fn check_request_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), CaError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(()),
            other => Err(CaError::UnsupportedKey {
                algorithm: format!(
                    "EC on {}",
                    other.map_or("no named curve".to_owned(), |o| o.to_id_string())
                ),
            }),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = bit_len(rsa.modulus);
                if bits < MIN_RSA_BITS {
                    Err(CaError::WeakRsaKey { bits })
                } else {
                    Ok(())
                }
            }
            _ => Err(CaError::BadCsr),
        };
    }
    Err(CaError::UnsupportedKey {
        algorithm: alg.to_id_string(),
    })
}

impl Authority {
    /// Loads the CA from `state_dir`, or creates it (and the directory, mode 0700) on first
    /// start. Refuses a key that does not match the certificate, a certificate without its key
    /// and an expired CA; a key without its certificate (a first start interrupted between the
    /// two writes) gets its certificate.
    pub fn load_or_create(state_dir: &Path, now: i64) -> Result<Authority, CaError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io_err(state_dir))?;
        let cert_path = state_dir.join(CA_CERT_FILE);
        let key_path = state_dir.join(CA_KEY_FILE);
        let cert_pem = read_optional(&cert_path)?;
        let key_pem = read_optional(&key_path)?;
        match (cert_pem, key_pem) {
            (Some(cert), Some(key)) => Self::load(state_dir, &cert, &key, now),
            (None, None) => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
                write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
                Self::create(state_dir, key, now)
            }
            (None, Some(key)) => Self::create(state_dir, load_key(&key, &key_path)?, now),
            (Some(_), None) => Err(CaError::MissingKey {
                cert: cert_path,
                key: key_path,
            }),
        }
    }

    fn load(dir: &Path, cert_pem: &str, key_pem: &str, now: i64) -> Result<Authority, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let key = load_key(key_pem, &key_path)?;
        let der = pem_to_der(cert_pem, &cert_path)?;
        let cert = parse_cert(&der, &cert_path)?;
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return Err(CaError::BadCertificate {
                path: cert_path,
                reason: "not a CA certificate",
            });
        }
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(CaError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let not_after = cert.validity().not_after.timestamp();
        if not_after <= now {
            return Err(CaError::Expired { not_after, now });
        }
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)?;
        Ok(Authority {
            dir: dir.to_path_buf(),
            cert_pem: cert_pem.to_owned(),
            cert_der: der,
            not_after,
            issuer,
        })
    }

    fn create(dir: &Path, key: KeyPair, now: i64) -> Result<Authority, CaError> {
        let not_after = plus(now, CA_VALIDITY_SECS)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(CA_COMMON_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = at(plus(now, -BACKDATE_SECS)?)?;
        params.not_after = at(not_after)?;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        write_atomic(&dir.join(CA_CERT_FILE), cert_pem.as_bytes(), 0o644)?;
        Ok(Authority {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_der: cert.der().to_vec(),
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM), what nodes and the verifier's TLS trust.
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate's notAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The verifier's TLS server certificate for `names` (DNS names or IP addresses, e.g.
    /// `localhost`, `127.0.0.1`; the first is also the CN), reusing `server.pem` and
    /// `server-key.pem` while they are this CA's, for the same set of names, and valid for
    /// more than a day after `now`; otherwise a new key and certificate (one year, never past
    /// the CA) replace them. Returns `(certificate PEM, key PEM)`.
    pub fn server_identity(
        &self,
        names: &[String],
        now: i64,
    ) -> Result<(String, Zeroizing<String>), CaError> {
        let first = names.first().ok_or(CaError::NoServerNames)?;
        let sans = names
            .iter()
            .map(|n| server_san(n))
            .collect::<Result<Vec<_>, _>>()?;
        let wanted: BTreeSet<String> = sans.iter().map(|(_, s)| s.clone()).collect();
        let cert_path = self.dir.join(SERVER_CERT_FILE);
        let key_path = self.dir.join(SERVER_KEY_FILE);
        if let (Some(cert_pem), Some(key_pem)) =
            (read_optional(&cert_path)?, read_optional(&key_path)?)
        {
            if self.server_cert_usable(&cert_pem, &key_pem, &wanted, now) {
                return Ok((cert_pem.to_string(), key_pem));
            }
        }

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(first);
        params.subject_alt_names = sans.into_iter().map(|(san, _)| san).collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        params.not_before = at(plus(now, -BACKDATE_SECS)?)?;
        params.not_after = at(plus(now, SERVER_VALIDITY_SECS)?.min(self.not_after))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        Ok((cert.pem(), key_pem))
    }

    fn server_cert_usable(
        &self,
        cert_pem: &str,
        key_pem: &str,
        wanted: &BTreeSet<String>,
        now: i64,
    ) -> bool {
        let path = self.dir.join(SERVER_CERT_FILE);
        let (Ok(der), Ok(ca_der)) = (
            pem_to_der(cert_pem, &path),
            parse_cert(&self.cert_der, &path),
        ) else {
            return false;
        };
        let Ok(cert) = parse_cert(&der, &path) else {
            return false;
        };
        let Ok(key) = KeyPair::from_pem(key_pem) else {
            return false;
        };
        let validity = cert.validity();
        cert.verify_signature(Some(ca_der.public_key())).is_ok()
            && cert.public_key().raw == key.subject_public_key_info().as_slice()
            && validity.not_before.timestamp() <= now
            && validity.not_after.timestamp().saturating_sub(now) > SERVER_RENEW_BEFORE_SECS
            && cert_server_names(&cert).as_ref() == Some(wanted)
    }

    /// Issues a node's mutual-TLS client certificate from its PKCS#10 request (DER).
    ///
    /// The request's self-signature must verify and its key must be P-256 or RSA of at least
    /// 2048 bits; its subject and extensions are ignored. The certificate gets CN =
    /// `node_name`, a single URI SAN `urn:warrant:node:<node_id>`, EKU `clientAuth` only, a
    /// random 16-byte serial, notBefore = `now - 60` and notAfter = `now + ttl_secs` (never
    /// past the CA's own notAfter). The request may carry no extensions but subjectAltName,
    /// keyUsage, extKeyUsage and basicConstraints (rcgen's parser refuses others): their
    /// values are dropped all the same.
    pub fn issue_client(
        &self,
        csr_der: &[u8],
        node_id: &str,
        node_name: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Result<IssuedCert, CaError> {
        if !is_node_id(node_id) {
            return Err(CaError::InvalidNodeId {
                node_id: node_id.to_owned(),
            });
        }
        if !is_node_name(node_name) {
            return Err(CaError::InvalidNodeName {
                name: node_name.to_owned(),
            });
        }
        let uri = format!("{NODE_URI_PREFIX}{node_id}");
        self.issue(csr_der, uri, node_name, ttl_secs, now)
    }

    /// A client certificate for an operator or controller that reads the watch stream: the
    /// same checks and shape as [`Authority::issue_client`], with the URI SAN
    /// `urn:warrant:operator:<name>`. Operators are not nodes: their certificates are not in
    /// the revocation list, so keep their lifetime short.
    pub fn issue_operator(
        &self,
        csr_der: &[u8],
        name: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Result<IssuedCert, CaError> {
        if !is_node_name(name) {
            return Err(CaError::InvalidNodeName {
                name: name.to_owned(),
            });
        }
        let uri = format!("{OPERATOR_URI_PREFIX}{name}");
        self.issue(csr_der, uri, name, ttl_secs, now)
    }

    fn issue(
        &self,
        csr_der: &[u8],
        uri: String,
        common: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Result<IssuedCert, CaError> {
        let ttl = i64::try_from(ttl_secs)
            .ok()
            .filter(|t| (1..=MAX_CLIENT_TTL_SECS as i64).contains(t))
            .ok_or(CaError::InvalidTtl { ttl_secs })?;

        // Parse and check the request's signature (rcgen, through x509-parser's verify).
        let csr =
            CertificateSigningRequestParams::from_der(&csr_der.into()).map_err(|e| match e {
                rcgen::Error::InvalidCertificationRequestSignature => CaError::CsrSignature,
                _ => CaError::BadCsr,
            })?;
        // Check the key ourselves, and that rcgen will put exactly the request's key in the
        // certificate (it rebuilds the SubjectPublicKeyInfo from the signature algorithm).
        let raw = match X509CertificationRequest::from_der(csr_der) {
            Ok(([], req)) => req,
            _ => return Err(CaError::BadCsr),
        };
        let spki = &raw.certification_request_info.subject_pki;
        check_request_key(spki)?;
        if csr.public_key.subject_public_key_info() != spki.raw {
            return Err(CaError::UnsupportedKey {
                algorithm: format!(
                    "{} signed with {}",
                    spki.algorithm.algorithm.to_id_string(),
                    raw.signature_algorithm.algorithm.to_id_string()
                ),
            });
        }

        let not_after = plus(now, ttl)?.min(self.not_after);
        let serial = random_serial();
        let uri = Ia5String::try_from(uri.clone())
            .map_err(|_| CaError::InvalidNodeName { name: uri.clone() })?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(common);
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = at(plus(now, -BACKDATE_SECS)?)?;
        params.not_after = at(not_after)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            serial: hex::encode(serial),
            not_after,
        })
    }
}

/// The node id a client certificate names: its one `urn:warrant:node:<64 hex>` URI SAN.
/// `None` for anything else (no such SAN, two of them, a malformed id, not a certificate).
/// The caller must have verified the certificate chain to this CA (the TLS layer does).
pub fn node_id_from_client_cert(der: &[u8]) -> Option<String> {
    one_uri_san(der, NODE_URI_PREFIX, is_node_id)
}

/// The operator a client certificate names: its one `urn:warrant:operator:<name>` URI SAN.
/// The caller must have verified the certificate chain to this CA (the TLS layer does).
pub fn operator_from_client_cert(der: &[u8]) -> Option<String> {
    one_uri_san(der, OPERATOR_URI_PREFIX, is_node_name)
}

/// The rest of the certificate's one URI SAN that starts with `prefix`, if `valid`.
fn one_uri_san(der: &[u8], prefix: &str, valid: fn(&str) -> bool) -> Option<String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let san = cert.subject_alternative_name().ok()??;
    let mut found = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => u.strip_prefix(prefix),
        _ => None,
    });
    let value = found.next()?;
    if found.next().is_some() || !valid(value) {
        return None;
    }
    Some(value.to_owned())
}

/// The serial number of a certificate (DER), lowercase hex as [`IssuedCert::serial`] and the
/// store have it; `None` if it is not a certificate.
pub fn serial_of(der: &[u8]) -> Option<String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Some(hex::encode(cert.raw_serial())),
        _ => None,
    }
}

/// A kubeadm bootstrap token `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub struct BootstrapToken {
    /// The public part (`[a-z0-9]{6}`), stored and shown.
    pub id: String,
    /// The secret part (`[a-z0-9]{16}`): handed to the node once, never stored.
    pub secret: Zeroizing<String>,
}

impl BootstrapToken {
    /// `id.secret`, as kubeadm and the kubelet take it.
    pub fn full(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}.{}", self.id, self.secret.as_str()))
    }

    /// SHA-256 of the secret part: what the store keeps.
    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"[elided]")
            .finish()
    }
}

const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn token_chars(n: usize) -> Zeroizing<String> {
    let pick = Uniform::from(0..TOKEN_ALPHABET.len());
    let mut rng = OsRng;
    Zeroizing::new(
        (0..n)
            .filter_map(|_| {
                TOKEN_ALPHABET
                    .get(pick.sample(&mut rng))
                    .map(|&c| char::from(c))
            })
            .collect(),
    )
}

/// A new bootstrap token from the OS CSPRNG (uniform over `[a-z0-9]`).
pub fn new_bootstrap_token() -> BootstrapToken {
    BootstrapToken {
        id: token_chars(6).to_string(),
        secret: token_chars(16),
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
    use rcgen::PKCS_ECDSA_P384_SHA384;
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::extensions::ParsedExtension;

    const NOW: i64 = 1_764_000_000;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "warrant-ca-{tag}-{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 8]>())
            ));
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn node_id() -> String {
        hex::encode(Sha256::digest(b"an EK SubjectPublicKeyInfo"))
    }

    /// A CSR whose subject and SANs try to claim something else.
    fn csr(key: &KeyPair) -> Vec<u8> {
        let mut params =
            CertificateParams::new(vec!["admin.example".to_owned(), "10.0.0.1".to_owned()])
                .unwrap();
        params.distinguished_name = common_name("system:masters");
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn verify_against_ca(ca: &Authority, der: &[u8]) {
        let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.ca_der()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
    }

    #[test]
    fn load_or_create_keeps_the_same_ca() {
        let dir = TempDir::new("same");
        let a = Authority::load_or_create(&dir.0, NOW).unwrap();
        let b = Authority::load_or_create(&dir.0, NOW + 3600).unwrap();
        assert_eq!(a.ca_pem(), b.ca_pem());
        assert_eq!(a.ca_der(), b.ca_der());
        assert_eq!(mode(&dir.0.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.0), 0o700);

        let (_, cert) = x509_parser::parse_x509_certificate(a.ca_der()).unwrap();
        cert.verify_signature(None).unwrap();
        assert_eq!(
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            CA_COMMON_NAME
        );
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature());
        assert_eq!(cert.validity().not_before.timestamp(), NOW - 60);
        assert_eq!(cert.validity().not_after.timestamp(), a.not_after());

        // A certificate issued before the restart still verifies against the loaded CA and
        // one issued after verifies against the first.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let issued = b
            .issue_client(&csr(&key), &node_id(), "worker-1", 3600, NOW)
            .unwrap();
        verify_against_ca(&a, &issued.cert_der);
    }

    #[test]
    fn refuses_broken_ca_state() {
        let dir = TempDir::new("broken");
        drop(Authority::load_or_create(&dir.0, NOW).unwrap());
        // Expired.
        assert!(matches!(
            Authority::load_or_create(&dir.0, NOW + CA_VALIDITY_SECS + 1),
            Err(CaError::Expired { .. })
        ));
        // Another key.
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let key_path = dir.0.join(CA_KEY_FILE);
        let original = std::fs::read(&key_path).unwrap();
        std::fs::write(&key_path, other.serialize_pem()).unwrap();
        assert!(matches!(
            Authority::load_or_create(&dir.0, NOW),
            Err(CaError::KeyMismatch { .. })
        ));
        // Garbage key.
        std::fs::write(&key_path, b"nonsense").unwrap();
        assert!(matches!(
            Authority::load_or_create(&dir.0, NOW),
            Err(CaError::BadKey { .. })
        ));
        // No key at all: never a silent new CA.
        std::fs::remove_file(&key_path).unwrap();
        let err = Authority::load_or_create(&dir.0, NOW).unwrap_err();
        assert!(matches!(err, CaError::MissingKey { .. }), "{err}");
        // Garbage certificate.
        std::fs::write(&key_path, &original).unwrap();
        std::fs::write(
            dir.0.join(CA_CERT_FILE),
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            Authority::load_or_create(&dir.0, NOW),
            Err(CaError::BadCertificate { .. })
        ));
        // The key without its certificate (first start interrupted): the certificate is made
        // for that key.
        std::fs::remove_file(dir.0.join(CA_CERT_FILE)).unwrap();
        let ca = Authority::load_or_create(&dir.0, NOW).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(ca.ca_der()).unwrap();
        let key = KeyPair::from_pem(std::str::from_utf8(&original).unwrap()).unwrap();
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
    }

    #[test]
    fn client_certificates_carry_our_names_only() {
        let dir = TempDir::new("client");
        let ca = Authority::load_or_create(&dir.0, NOW).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let id = node_id();
        let issued = ca
            .issue_client(&csr(&key), &id, "worker-1", 86_400, NOW)
            .unwrap();
        verify_against_ca(&ca, &issued.cert_der);
        assert_eq!(issued.not_after, NOW + 86_400);
        assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));

        let (_, cert) = x509_parser::parse_x509_certificate(&issued.cert_der).unwrap();
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
        assert_eq!(hex::encode(cert.raw_serial()), issued.serial);
        assert_eq!(serial_of(&issued.cert_der), Some(issued.serial.clone()));
        assert_eq!(serial_of(b"garbage"), None);
        assert_eq!(cert.raw_serial().len(), 16);
        assert_eq!(cert.validity().not_before.timestamp(), NOW - 60);
        assert_eq!(cert.validity().not_after.timestamp(), NOW + 86_400);
        assert_eq!(
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "worker-1"
        );
        assert_eq!(cert.subject().iter().count(), 1, "only the CN");
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(
            san.general_names,
            vec![GeneralName::URI(&format!("urn:warrant:node:{id}"))]
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert!(!eku.server_auth && !eku.any && eku.other.is_empty());
        assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
        assert!(cert.extensions().iter().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )));

        assert_eq!(node_id_from_client_cert(&issued.cert_der), Some(id.clone()));
        assert_eq!(node_id_from_client_cert(ca.ca_der()), None);
        assert_eq!(node_id_from_client_cert(b"garbage"), None);

        // Serials differ.
        let again = ca
            .issue_client(&csr(&key), &id, "worker-1", 60, NOW)
            .unwrap();
        assert_ne!(again.serial, issued.serial);

        // Never past the CA.
        let long = ca
            .issue_client(
                &csr(&key),
                &id,
                "worker-1",
                MAX_CLIENT_TTL_SECS,
                ca.not_after() - 10,
            )
            .unwrap();
        assert_eq!(long.not_after, ca.not_after());
    }

    #[test]
    fn bad_requests_are_refused() {
        let dir = TempDir::new("bad");
        let ca = Authority::load_or_create(&dir.0, NOW).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let id = node_id();

        let mut broken = csr(&key);
        let last = broken.len() - 1;
        broken[last] ^= 0x01;
        assert!(matches!(
            ca.issue_client(&broken, &id, "worker-1", 60, NOW),
            Err(CaError::CsrSignature)
        ));
        assert!(matches!(
            ca.issue_client(b"\x30\x03\x02\x01\x00", &id, "worker-1", 60, NOW),
            Err(CaError::BadCsr)
        ));
        let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let err = ca
            .issue_client(&csr(&p384), &id, "worker-1", 60, NOW)
            .unwrap_err();
        assert!(matches!(err, CaError::UnsupportedKey { .. }), "{err}");
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            ca.issue_client(&csr(&ed), &id, "worker-1", 60, NOW),
            Err(CaError::UnsupportedKey { .. })
        ));

        let good = csr(&key);
        for bad_id in ["", "ABCD", &id.to_uppercase(), &id[..63]] {
            assert!(matches!(
                ca.issue_client(&good, bad_id, "worker-1", 60, NOW),
                Err(CaError::InvalidNodeId { .. })
            ));
        }
        for bad_name in ["", "Worker", "-a", "a..b", "a b", &"x".repeat(64)] {
            assert!(matches!(
                ca.issue_client(&good, &id, bad_name, 60, NOW),
                Err(CaError::InvalidNodeName { .. })
            ));
        }
        for ttl in [0, MAX_CLIENT_TTL_SECS + 1, u64::MAX] {
            assert!(matches!(
                ca.issue_client(&good, &id, "worker-1", ttl, NOW),
                Err(CaError::InvalidTtl { .. })
            ));
        }
        assert!(ca
            .issue_client(&good, &id, "node-1.cluster.local", 60, NOW)
            .is_ok());
    }

    #[test]
    fn rsa_size_is_counted_in_bits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0, 1]), 1);
        assert_eq!(bit_len(&[0x00, 0x80, 0]), 16);
        let mut modulus = vec![0u8; 257];
        modulus[1] = 0x80;
        assert_eq!(bit_len(&modulus), 2048);
        modulus[1] = 0x7f;
        assert_eq!(bit_len(&modulus), 2047);
    }

    #[test]
    fn server_identity_is_cached_and_reissued() {
        let dir = TempDir::new("server");
        let ca = Authority::load_or_create(&dir.0, NOW).unwrap();
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let a = ca.server_identity(&names, NOW).unwrap();
        assert_eq!(mode(&dir.0.join(SERVER_KEY_FILE)), 0o600);
        let der = pem_to_der(&a.0, Path::new("x")).unwrap();
        verify_against_ca(&ca, &der);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let got = cert_server_names(&cert).unwrap();
        let want: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
        let key = KeyPair::from_pem(&a.1).unwrap();
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );

        // Same names (any order), later, after a restart: the same certificate.
        let ca = Authority::load_or_create(&dir.0, NOW + 10).unwrap();
        let reordered = vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ];
        let b = ca.server_identity(&reordered, NOW + 86_400).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(*a.1, *b.1);
        // Other names: a new one.
        let c = ca
            .server_identity(&["verifier.example".to_owned()], NOW + 20)
            .unwrap();
        assert_ne!(c.0, b.0);
        assert_ne!(*c.1, *b.1);
        // Within a day of expiry: a new one.
        let near = NOW + 20 + SERVER_VALIDITY_SECS - 3600;
        let d = ca
            .server_identity(&["verifier.example".to_owned()], near)
            .unwrap();
        assert_ne!(d.0, c.0);
        // Not from this CA (a new CA in another dir with our files copied in): a new one.
        let other_dir = TempDir::new("server-other");
        let other = Authority::load_or_create(&other_dir.0, NOW).unwrap();
        std::fs::copy(
            dir.0.join(SERVER_CERT_FILE),
            other_dir.0.join(SERVER_CERT_FILE),
        )
        .unwrap();
        std::fs::copy(
            dir.0.join(SERVER_KEY_FILE),
            other_dir.0.join(SERVER_KEY_FILE),
        )
        .unwrap();
        let e = other
            .server_identity(&["verifier.example".to_owned()], near)
            .unwrap();
        assert_ne!(e.0, d.0);

        assert!(matches!(
            ca.server_identity(&[], NOW),
            Err(CaError::NoServerNames)
        ));
        assert!(matches!(
            ca.server_identity(&["bad name".to_owned()], NOW),
            Err(CaError::InvalidServerName { .. })
        ));
    }

    #[test]
    fn bootstrap_tokens_have_the_kubeadm_format() {
        let mut seen = BTreeSet::new();
        for _ in 0..100 {
            let t = new_bootstrap_token();
            let full = t.full();
            let (id, secret) = full.split_once('.').unwrap();
            assert_eq!(id.len(), 6);
            assert_eq!(secret.len(), 16);
            assert!(full
                .bytes()
                .all(|c| c == b'.' || c.is_ascii_lowercase() || c.is_ascii_digit()));
            assert_eq!(id, t.id);
            assert_eq!(secret, t.secret.as_str());
            assert_eq!(
                t.secret_sha256(),
                <[u8; 32]>::from(Sha256::digest(secret.as_bytes()))
            );
            assert!(!format!("{t:?}").contains(secret));
            seen.insert(full.to_string());
        }
        assert_eq!(seen.len(), 100);
    }
}
