//! Endorsement-key (EK) certificate chains: from a TPM's EK certificate to a trusted TPM
//! manufacturer CA.
//!
//! What is checked (TCG EK Credential Profile for TPM Family 2.0, version 2.x, section 3
//! "X.509 EK Certificate", and the subset of RFC 5280 section 6 "Certification Path Validation"
//! that applies to a fixed set of manufacturer roots):
//!
//! - every certificate is DER with no trailing bytes (RFC 5280 section 4.1);
//! - the path EK → intermediates (any order) → trusted root is built by matching the issuer
//!   name to the subject name (byte-exact DER, as webpki does) and, when both are present, the
//!   Authority Key Identifier to the Subject Key Identifier (RFC 5280 sections 4.2.1.1 and
//!   4.2.1.2); a path has at most [`MAX_PATH_LEN`] certificates and the search is bounded;
//! - every signature along the path is verified with the issuer's key: RSA PKCS#1 v1.5 and
//!   RSASSA-PSS (RFC 4055) with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384/512
//!   (RFC 5758). SHA-1 and everything else is [`EkError::UnsupportedAlgorithm`]; the outer
//!   signature algorithm must equal the one inside the TBS (RFC 5280 section 4.1.1.2);
//! - every certificate on the path, the trusted root included, is valid at `now`
//!   (RFC 5280 section 4.1.2.5; `99991231235959Z`, common in EK certificates, is simply far away);
//! - every issuer is a CA: basicConstraints cA=TRUE, keyCertSign when keyUsage is present, and
//!   its pathLenConstraint holds (RFC 5280 sections 4.2.1.3, 4.2.1.9);
//! - an unknown critical extension anywhere is an error (RFC 5280 section 4.2);
//! - the EK certificate is not a CA, and if it has an extendedKeyUsage it contains
//!   `tcg-kp-EKCertificate` 2.23.133.8.1 (EK Credential Profile section 3.2.16).
//!
//! Tolerated TCG quirks: the EK certificate's subject may be empty, and its subjectAltName
//! (a directoryName holding TPM manufacturer, model and version, EK Credential Profile
//! section 3.2.9) is then marked critical; the SAN is a known extension and is accepted, and its
//! TPM attributes are returned in [`VerifiedEk`].
//!
//! Not checked: revocation (CRL/OCSP), certificate policies (a critical certificatePolicies
//! extension is rejected), name constraints (a critical one is rejected), and the trusted roots'
//! own signatures (they are trust anchors, RFC 5280 section 6.1.1 (d)).
//!
//! This module is pure: it takes bytes and `now` (Unix seconds) and never reads a file or the
//! clock.

use std::fmt;

use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::{AlgorithmIdentifier, X509Name};

/// Longest accepted path, EK and trusted root included.
pub const MAX_PATH_LEN: usize = 8;

/// Most signature verifications one path search may do (bounds the search when many
/// intermediates share names).
const MAX_SIGNATURE_CHECKS: usize = 64;

/// Most certificates accepted in `intermediates` and in `trusted_roots`, each.
pub const MAX_CERTIFICATES: usize = 256;

/// `tcg-kp-EKCertificate` (TCG EK Credential Profile 2.x, section 3.2.16).
pub const TCG_KP_EK_CERTIFICATE: &str = "2.23.133.8.1";
/// `tcg-at-tpmManufacturer` (TCG EK Credential Profile 2.x, section 3.1.2).
const TCG_AT_TPM_MANUFACTURER: &str = "2.23.133.2.1";
/// `tcg-at-tpmModel`.
const TCG_AT_TPM_MODEL: &str = "2.23.133.2.2";
/// `tcg-at-tpmVersion`.
const TCG_AT_TPM_VERSION: &str = "2.23.133.2.3";

/// An EK certificate whose chain ended at a trusted manufacturer CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEk {
    /// The EK certificate, DER.
    pub certificate: Vec<u8>,
    /// The EK's public key, DER `SubjectPublicKeyInfo`.
    pub public_key_spki: Vec<u8>,
    /// Subject of the trusted root the chain ended at.
    pub root_subject: String,
    /// Subjects along the verified path, EK first, trusted root last.
    pub path_subjects: Vec<String>,
    /// `tcg-at-tpmManufacturer` (e.g. `id:00001014`), from the subjectAltName directoryName
    /// (or the subject, for older profiles), if present.
    pub tpm_manufacturer: Option<String>,
    /// `tcg-at-tpmModel`, if present.
    pub tpm_model: Option<String>,
    /// `tcg-at-tpmVersion` (e.g. `id:20191023`), if present.
    pub tpm_version: Option<String>,
}

/// Which input a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// The EK certificate.
    Ek,
    /// `intermediates[i]`.
    Intermediate(usize),
    /// `trusted_roots[i]`.
    TrustedRoot(usize),
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRole::Ek => write!(f, "EK certificate"),
            CertRole::Intermediate(i) => write!(f, "intermediate #{i}"),
            CertRole::TrustedRoot(i) => write!(f, "trusted root #{i}"),
        }
    }
}

/// Why an EK certificate is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EkError {
    /// A certificate is not well-formed DER X.509 (or has trailing bytes).
    #[error("{which}: cannot parse certificate: {reason}")]
    Parse { which: CertRole, reason: String },
    /// PEM input without a certificate, or with a block that is not a certificate.
    #[error("PEM block #{index}: {reason}")]
    Pem { index: usize, reason: String },
    /// More certificates than [`MAX_CERTIFICATES`] were given.
    #[error("{count} certificates given, at most {max} accepted")]
    TooManyCertificates { count: usize, max: usize },
    /// No trusted root nor intermediate names (and key-identifies) the issuer of `subject`.
    #[error("no path to a trusted root: no issuer {issuer:?} found for {subject:?}")]
    NoPathToTrustedRoot { subject: String, issuer: String },
    /// The signature on `subject` does not verify with the key of `issuer`.
    #[error("bad signature on {subject:?} (issuer {issuer:?})")]
    BadSignature { subject: String, issuer: String },
    /// `subject` expired before `now`.
    #[error("{subject:?} expired: valid {not_before}..{not_after}, now {now}")]
    Expired {
        subject: String,
        not_before: i64,
        not_after: i64,
        now: i64,
    },
    /// `subject` is not valid yet at `now`.
    #[error("{subject:?} not yet valid: valid {not_before}..{not_after}, now {now}")]
    NotYetValid {
        subject: String,
        not_before: i64,
        not_after: i64,
        now: i64,
    },
    /// An issuer lacks basicConstraints cA=TRUE (or keyCertSign in its keyUsage).
    #[error("{subject:?} is used as an issuer but is not a CA: {reason}")]
    NotACa {
        subject: String,
        reason: &'static str,
    },
    /// The EK certificate claims to be a CA.
    #[error("EK certificate {subject:?} has basicConstraints cA=TRUE")]
    EkIsCa { subject: String },
    /// A CA's pathLenConstraint is smaller than the number of intermediates below it.
    #[error("{subject:?} allows {path_len} intermediates below it, path has {below}")]
    PathLenExceeded {
        subject: String,
        path_len: u32,
        below: usize,
    },
    /// The path would need more than [`MAX_PATH_LEN`] certificates, or the search budget ran out.
    #[error("certificate path longer than {max} or search too large")]
    PathTooLong { max: usize },
    /// Signature or key algorithm not supported (the dotted OID, or curve OID).
    #[error("unsupported algorithm {oid} on {subject:?}")]
    UnsupportedAlgorithm { subject: String, oid: String },
    /// The outer signatureAlgorithm differs from the TBS signature field (RFC 5280 4.1.1.2).
    #[error("{subject:?}: signatureAlgorithm differs from tbsCertificate.signature")]
    SignatureAlgorithmMismatch { subject: String },
    /// The issuer's public key could not be decoded.
    #[error("bad public key in {subject:?}")]
    BadPublicKey { subject: String },
    /// A critical extension this verifier does not process.
    #[error("{subject:?} has unsupported critical extension {oid}")]
    UnsupportedCriticalExtension { subject: String, oid: String },
    /// An extension appears twice (RFC 5280 4.2).
    #[error("{subject:?} has extension {oid} more than once")]
    DuplicateExtension { subject: String, oid: String },
    /// A critical extension could not be parsed.
    #[error("{subject:?}: cannot parse critical extension {oid}")]
    BadExtension { subject: String, oid: String },
    /// The EK certificate has an extendedKeyUsage without `tcg-kp-EKCertificate`.
    #[error("EK certificate {subject:?} has an extendedKeyUsage without tcg-kp-EKCertificate (2.23.133.8.1)")]
    MissingEkEku { subject: String },
}

/// One parsed input certificate.
struct Cert<'a> {
    der: &'a [u8],
    x509: X509Certificate<'a>,
    name: String,
}

fn parse(der: &[u8], which: CertRole) -> Result<Cert<'_>, EkError> {
    let (rest, x509) = X509Certificate::from_der(der).map_err(|e| EkError::Parse {
        which,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(EkError::Parse {
            which,
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    let name = describe(&x509);
    Ok(Cert { der, x509, name })
}

/// A certificate's subject for messages; an empty subject (common on EK certificates) is shown
/// with its serial number.
fn describe(c: &X509Certificate<'_>) -> String {
    let s = c.subject().to_string();
    if s.is_empty() {
        format!("<empty subject, serial {}>", c.raw_serial_as_string())
    } else {
        s
    }
}

fn name_string(n: &X509Name<'_>) -> String {
    n.to_string()
}

/// Splits PEM text into the DER of each `CERTIFICATE` block (RFC 7468 section 5). Any other
/// block, or input without a certificate, is an error.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<Vec<u8>>, EkError> {
    let mut out = Vec::new();
    for (index, block) in x509_parser::pem::Pem::iter_from_buffer(pem).enumerate() {
        let block = block.map_err(|e| EkError::Pem {
            index,
            reason: e.to_string(),
        })?;
        if block.label != "CERTIFICATE" {
            return Err(EkError::Pem {
                index,
                reason: format!("label {:?} is not CERTIFICATE", block.label),
            });
        }
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err(EkError::Pem {
            index: 0,
            reason: "no CERTIFICATE block".to_string(),
        });
    }
    Ok(out)
}

/// Checks validity of `c` at `now` (RFC 5280 section 4.1.2.5).
fn check_time(c: &Cert<'_>, now: i64) -> Result<(), EkError> {
    let not_before = c.x509.validity().not_before.timestamp();
    let not_after = c.x509.validity().not_after.timestamp();
    if now < not_before {
        return Err(EkError::NotYetValid {
            subject: c.name.clone(),
            not_before,
            not_after,
            now,
        });
    }
    if now > not_after {
        return Err(EkError::Expired {
            subject: c.name.clone(),
            not_before,
            not_after,
            now,
        });
    }
    Ok(())
}

/// Extension facts this verifier uses, gathered once per certificate.
#[derive(Default)]
struct Exts {
    /// `Some((cA, pathLen))` when basicConstraints is present.
    basic: Option<(bool, Option<u32>)>,
    /// `Some(keyCertSign)` when keyUsage is present.
    key_cert_sign: Option<bool>,
    /// `Some(has tcg-kp-EKCertificate)` when extendedKeyUsage is present.
    ek_eku: Option<bool>,
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
}

/// Walks the extensions: rejects duplicates, unparsable critical ones and critical ones this
/// verifier does not process (RFC 5280 section 4.2).
fn extensions(c: &Cert<'_>) -> Result<Exts, EkError> {
    let mut seen: Vec<&Oid<'_>> = Vec::new();
    let mut e = Exts::default();
    for ext in c.x509.extensions() {
        if seen.contains(&&ext.oid) {
            return Err(EkError::DuplicateExtension {
                subject: c.name.clone(),
                oid: ext.oid.to_id_string(),
            });
        }
        seen.push(&ext.oid);
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(b) => e.basic = Some((b.ca, b.path_len_constraint)),
            ParsedExtension::KeyUsage(k) => e.key_cert_sign = Some(k.key_cert_sign()),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let has = eku
                    .other
                    .iter()
                    .any(|o| o.to_id_string() == TCG_KP_EK_CERTIFICATE);
                e.ek_eku = Some(has);
            }
            ParsedExtension::SubjectKeyIdentifier(k) => e.ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                e.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            // Processed (TPM attributes) or harmless; a critical SAN is the TCG norm for an EK
            // certificate with an empty subject (EK Credential Profile section 3.2.9).
            ParsedExtension::SubjectAlternativeName(_) => {}
            ParsedExtension::ParseError { .. } if ext.critical => {
                return Err(EkError::BadExtension {
                    subject: c.name.clone(),
                    oid: ext.oid.to_id_string(),
                })
            }
            _ if ext.critical => {
                return Err(EkError::UnsupportedCriticalExtension {
                    subject: c.name.clone(),
                    oid: ext.oid.to_id_string(),
                })
            }
            _ => {}
        }
    }
    Ok(e)
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &Oid<'_>) -> Option<Hash> {
        match oid.to_id_string().as_str() {
            "2.16.840.1.101.3.4.2.1" => Some(Hash::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(Hash::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

enum Scheme {
    Pkcs1(Hash),
    Pss { hash: Hash, salt: usize },
    Ecdsa(Hash),
}

fn unsupported(c: &Cert<'_>, oid: &Oid<'_>) -> EkError {
    EkError::UnsupportedAlgorithm {
        subject: c.name.clone(),
        oid: oid.to_id_string(),
    }
}

fn same_alg(a: &AlgorithmIdentifier<'_>, b: &AlgorithmIdentifier<'_>) -> bool {
    a.algorithm == b.algorithm
        && a.parameters.as_ref().map(|p| (p.tag(), p.data))
            == b.parameters.as_ref().map(|p| (p.tag(), p.data))
}

/// One DER TLV from the front of `input`: (tag, the whole TLV, the rest). Definite lengths of
/// at most 4 bytes (X.690 section 8.1.3); `None` when truncated.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    let after = input.get(end..)?;
    Some((tag, whole, after))
}

/// The contents of a constructed TLV (its tag and length skipped).
fn inner(whole: &[u8]) -> Option<&[u8]> {
    let (_, rest) = whole.split_first()?;
    let (&first, _) = rest.split_first()?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    whole.get(header..)
}

/// Byte-exact RFC 5280 section 4.1.1.2 check: the outer `signatureAlgorithm` TLV equals the
/// `signature` TLV inside the TBS (x509-parser compares decoded values; this compares bytes,
/// so a certificate has exactly one accepted encoding of its unsigned part).
fn same_raw_alg(der: &[u8]) -> bool {
    let check = || -> Option<bool> {
        let (_, cert, _) = tlv(der)?;
        let (_, tbs, rest) = tlv(inner(cert)?)?;
        let (_, outer_alg, _) = tlv(rest)?;
        let fields = inner(tbs)?;
        let (tag, _, after_version) = tlv(fields)?;
        // Skip `[0] EXPLICIT version` when present.
        let fields = if tag == 0xa0 { after_version } else { fields };
        let (_, _, after_serial) = tlv(fields)?;
        let (_, tbs_alg, _) = tlv(after_serial)?;
        Some(tbs_alg == outer_alg)
    };
    check().unwrap_or(false)
}

/// The signature scheme of `c` (RFC 4055 for RSA, RFC 5758 for ECDSA).
fn scheme(c: &Cert<'_>) -> Result<Scheme, EkError> {
    let alg = &c.x509.signature_algorithm;
    if !same_alg(alg, &c.x509.tbs_certificate.signature) || !same_raw_alg(c.der) {
        return Err(EkError::SignatureAlgorithmMismatch {
            subject: c.name.clone(),
        });
    }
    let oid = alg.algorithm.to_id_string();
    let s = match oid.as_str() {
        "1.2.840.113549.1.1.11" => Scheme::Pkcs1(Hash::Sha256),
        "1.2.840.113549.1.1.12" => Scheme::Pkcs1(Hash::Sha384),
        "1.2.840.113549.1.1.13" => Scheme::Pkcs1(Hash::Sha512),
        "1.2.840.10045.4.3.2" => Scheme::Ecdsa(Hash::Sha256),
        "1.2.840.10045.4.3.3" => Scheme::Ecdsa(Hash::Sha384),
        "1.2.840.10045.4.3.4" => Scheme::Ecdsa(Hash::Sha512),
        "1.2.840.113549.1.1.10" => {
            let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(alg)
            else {
                return Err(unsupported(c, &alg.algorithm));
            };
            let hash_oid = params.hash_algorithm_oid();
            let hash = Hash::from_oid(hash_oid).ok_or_else(|| unsupported(c, hash_oid))?;
            // MGF1 with the same hash, trailer field 1 (RFC 4055 section 3.1).
            let mgf = params
                .mask_gen_algorithm()
                .map_err(|_| unsupported(c, &alg.algorithm))?;
            if mgf.mgf.to_id_string() != "1.2.840.113549.1.1.8"
                || mgf.hash != *hash_oid
                || params.trailer_field() != 1
            {
                return Err(unsupported(c, &alg.algorithm));
            }
            let salt = usize::try_from(params.salt_length())
                .map_err(|_| unsupported(c, &alg.algorithm))?;
            Scheme::Pss { hash, salt }
        }
        _ => return Err(unsupported(c, &alg.algorithm)),
    };
    Ok(s)
}

/// Verifies the signature on `child` with the public key of `issuer`.
fn verify_signature(child: &Cert<'_>, issuer: &Cert<'_>) -> Result<(), EkError> {
    let bad = || EkError::BadSignature {
        subject: child.name.clone(),
        issuer: issuer.name.clone(),
    };
    let scheme = scheme(child)?;
    if child.x509.signature_value.unused_bits != 0 {
        return Err(bad());
    }
    let sig: &[u8] = &child.x509.signature_value.data;
    let tbs = child.x509.tbs_certificate.as_ref();
    let spki = issuer.x509.public_key();
    let key_alg = spki.algorithm.algorithm.to_id_string();
    let bad_key = || EkError::BadPublicKey {
        subject: issuer.name.clone(),
    };
    match scheme {
        Scheme::Pkcs1(hash) | Scheme::Pss { hash, .. } => {
            // rsaEncryption; RSASSA-PSS-keyed SPKIs (id-RSASSA-PSS) are not supported.
            if key_alg != "1.2.840.113549.1.1.1" {
                return Err(unsupported(issuer, &spki.algorithm.algorithm));
            }
            let key = rsa::RsaPublicKey::from_public_key_der(spki.raw).map_err(|_| bad_key())?;
            let digest = hash.digest(tbs);
            let r = match (scheme, hash) {
                (Scheme::Pkcs1(_), Hash::Sha256) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, sig)
                }
                (Scheme::Pkcs1(_), Hash::Sha384) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), &digest, sig)
                }
                (Scheme::Pkcs1(_), Hash::Sha512) => {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), &digest, sig)
                }
                (Scheme::Pss { salt, .. }, Hash::Sha256) => {
                    key.verify(rsa::Pss::new_with_salt::<Sha256>(salt), &digest, sig)
                }
                (Scheme::Pss { salt, .. }, Hash::Sha384) => {
                    key.verify(rsa::Pss::new_with_salt::<Sha384>(salt), &digest, sig)
                }
                (Scheme::Pss { salt, .. }, Hash::Sha512) => {
                    key.verify(rsa::Pss::new_with_salt::<Sha512>(salt), &digest, sig)
                }
                (Scheme::Ecdsa(_), _) => return Err(bad()),
            };
            r.map_err(|_| bad())
        }
        Scheme::Ecdsa(hash) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            if key_alg != "1.2.840.10045.2.1" {
                return Err(unsupported(issuer, &spki.algorithm.algorithm));
            }
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.clone().oid().ok())
                .ok_or_else(bad_key)?;
            let point: &[u8] = &spki.subject_public_key.data;
            let digest = hash.digest(tbs);
            match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" => {
                    let vk =
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_key())?;
                    let s = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
                    vk.verify_prehash(&digest, &s).map_err(|_| bad())
                }
                "1.3.132.0.34" => {
                    let vk =
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_key())?;
                    let s = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad())?;
                    vk.verify_prehash(&digest, &s).map_err(|_| bad())
                }
                _ => Err(unsupported(issuer, &curve)),
            }
        }
    }
}

/// RFC 5280 section 7.1 name matching, simplified: byte-equal, or the same RDN structure with
/// the same attribute types and string values equal after ASCII case folding and whitespace
/// collapsing (so a PrintableString issuer matches a UTF8String subject). Only decides which
/// issuer to try; the signature is what establishes trust.
fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    if a.as_raw() == b.as_raw() {
        return true;
    }
    let fold = |s: &str| {
        s.split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (ra, rb): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
    ra.len() == rb.len()
        && ra.iter().zip(rb.iter()).all(|(x, y)| {
            let (xa, ya): (Vec<_>, Vec<_>) = (x.iter().collect(), y.iter().collect());
            xa.len() == ya.len()
                && xa.iter().zip(ya.iter()).all(|(p, q)| {
                    p.attr_type() == q.attr_type()
                        && match (p.as_str(), q.as_str()) {
                            (Ok(u), Ok(v)) => fold(u) == fold(v),
                            _ => p.attr_value().data == q.attr_value().data,
                        }
                })
        })
}

/// Whether `issuer` names (and, when both carry key identifiers, key-identifies) the issuer of
/// `child` (RFC 5280 sections 4.2.1.1, 4.2.1.2, 6.1.3 (a)(4)).
fn names_issuer(child: &Cert<'_>, child_ext: &Exts, issuer: &Cert<'_>, issuer_ext: &Exts) -> bool {
    if !same_name(child.x509.issuer(), issuer.x509.subject()) {
        return false;
    }
    match (&child_ext.aki, &issuer_ext.ski) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    }
}

/// Checks that `issuer` may issue `child` at `now`: signature, validity, CA-ness.
fn check_issuer(
    child: &Cert<'_>,
    issuer: &Cert<'_>,
    issuer_ext: &Exts,
    now: i64,
) -> Result<(), EkError> {
    verify_signature(child, issuer)?;
    check_time(issuer, now)?;
    match issuer_ext.basic {
        Some((true, _)) => {}
        Some((false, _)) => {
            return Err(EkError::NotACa {
                subject: issuer.name.clone(),
                reason: "basicConstraints cA is FALSE",
            })
        }
        None => {
            return Err(EkError::NotACa {
                subject: issuer.name.clone(),
                reason: "no basicConstraints",
            })
        }
    }
    if issuer_ext.key_cert_sign == Some(false) {
        return Err(EkError::NotACa {
            subject: issuer.name.clone(),
            reason: "keyUsage without keyCertSign",
        });
    }
    Ok(())
}

struct Search<'a> {
    intermediates: Vec<(Cert<'a>, Exts)>,
    roots: Vec<(Cert<'a>, Exts)>,
    now: i64,
}

impl Search<'_> {
    /// Extends `path` (EK first, then intermediate indices) to a trusted root; returns the
    /// root's index. Depth-first, roots before intermediates, the last error kept.
    fn extend(
        &self,
        budget: &mut usize,
        ek: &(Cert<'_>, Exts),
        path: &mut Vec<usize>,
    ) -> Result<usize, EkError> {
        let (cur, cur_ext) = match path.last() {
            Some(&i) => match self.intermediates.get(i) {
                Some((c, e)) => (c, e),
                None => return Err(EkError::PathTooLong { max: MAX_PATH_LEN }),
            },
            None => (&ek.0, &ek.1),
        };
        let mut last_err: Option<EkError> = None;
        for (ri, (root, root_ext)) in self.roots.iter().enumerate() {
            if !names_issuer(cur, cur_ext, root, root_ext) {
                continue;
            }
            if *budget == 0 {
                return Err(EkError::PathTooLong { max: MAX_PATH_LEN });
            }
            *budget -= 1;
            match check_issuer(cur, root, root_ext, self.now)
                .and_then(|()| self.check_path_len(path, root, root_ext))
            {
                Ok(()) => return Ok(ri),
                Err(e) => last_err = Some(e),
            }
        }
        let candidates: Vec<usize> = self
            .intermediates
            .iter()
            .enumerate()
            .filter(|(i, (c, e))| !path.contains(i) && names_issuer(cur, cur_ext, c, e))
            .map(|(i, _)| i)
            .collect();
        for i in candidates {
            // EK + path + this intermediate + a root.
            if path.len() + 3 > MAX_PATH_LEN {
                last_err = Some(EkError::PathTooLong { max: MAX_PATH_LEN });
                continue;
            }
            if *budget == 0 {
                return Err(EkError::PathTooLong { max: MAX_PATH_LEN });
            }
            *budget -= 1;
            let Some((c, e)) = self.intermediates.get(i) else {
                continue;
            };
            let checked = check_issuer(cur, c, e, self.now);
            match checked {
                Ok(()) => {
                    path.push(i);
                    match self.extend(budget, ek, path) {
                        Ok(r) => return Ok(r),
                        Err(err) => {
                            path.pop();
                            last_err = Some(err);
                        }
                    }
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| EkError::NoPathToTrustedRoot {
            subject: cur.name.clone(),
            issuer: name_string(cur.x509.issuer()),
        }))
    }

    /// pathLenConstraint of every CA on the finished path (RFC 5280 section 4.2.1.9): a CA at
    /// position k above the EK has k - 1 intermediates below it.
    fn check_path_len(
        &self,
        path: &[usize],
        root: &Cert<'_>,
        root_ext: &Exts,
    ) -> Result<(), EkError> {
        let mut cas: Vec<(&Cert<'_>, &Exts)> = Vec::new();
        for &i in path {
            if let Some((c, e)) = self.intermediates.get(i) {
                cas.push((c, e));
            }
        }
        cas.push((root, root_ext));
        for (below, (c, e)) in cas.iter().enumerate() {
            if let Some((true, Some(n))) = e.basic {
                if usize::try_from(n).is_ok_and(|n| below > n) {
                    return Err(EkError::PathLenExceeded {
                        subject: c.name.clone(),
                        path_len: n,
                        below,
                    });
                }
            }
        }
        Ok(())
    }
}

/// TPM manufacturer, model and version from the EK's subjectAltName directoryName(s), falling
/// back to the subject (EK Credential Profile 2.x, sections 3.1.2 and 3.2.9).
fn tpm_attributes(c: &Cert<'_>) -> (Option<String>, Option<String>, Option<String>) {
    let mut names: Vec<&X509Name<'_>> = Vec::new();
    for ext in c.x509.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for gn in &san.general_names {
                if let GeneralName::DirectoryName(n) = gn {
                    names.push(n);
                }
            }
        }
    }
    names.push(c.x509.subject());
    let find = |oid: &str| {
        names.iter().find_map(|n| {
            n.iter_attributes()
                .find(|a| a.attr_type().to_id_string() == oid)
                .and_then(|a| a.as_str().ok())
                .map(str::to_string)
        })
    };
    (
        find(TCG_AT_TPM_MANUFACTURER),
        find(TCG_AT_TPM_MODEL),
        find(TCG_AT_TPM_VERSION),
    )
}

/// Verifies `ek_cert` (DER) through `intermediates` (DER) to one of `trusted_roots` (DER), at
/// time `now` (Unix seconds). See the module documentation for what is checked.
pub fn verify_ek_chain(
    ek_cert: &[u8],
    intermediates: &[Vec<u8>],
    trusted_roots: &[Vec<u8>],
    now: i64,
) -> Result<VerifiedEk, EkError> {
    for list in [intermediates, trusted_roots] {
        if list.len() > MAX_CERTIFICATES {
            return Err(EkError::TooManyCertificates {
                count: list.len(),
                max: MAX_CERTIFICATES,
            });
        }
    }
    let ek = parse(ek_cert, CertRole::Ek)?;
    let inter: Vec<Cert<'_>> = intermediates
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, CertRole::Intermediate(i)))
        .collect::<Result<_, _>>()?;
    let roots: Vec<Cert<'_>> = trusted_roots
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, CertRole::TrustedRoot(i)))
        .collect::<Result<_, _>>()?;

    // The EK certificate itself (EK Credential Profile 2.x section 3.2).
    let ek_ext = extensions(&ek)?;
    check_time(&ek, now)?;
    if matches!(ek_ext.basic, Some((true, _))) {
        return Err(EkError::EkIsCa {
            subject: ek.name.clone(),
        });
    }
    if ek_ext.ek_eku == Some(false) {
        return Err(EkError::MissingEkEku {
            subject: ek.name.clone(),
        });
    }
    let (tpm_manufacturer, tpm_model, tpm_version) = tpm_attributes(&ek);

    // Extensions of every other certificate up front: an unknown critical extension is an
    // error wherever it is, not only on the path taken.
    let mut search = Search {
        intermediates: Vec::with_capacity(inter.len()),
        roots: Vec::with_capacity(roots.len()),
        now,
    };
    for c in inter {
        let e = extensions(&c)?;
        search.intermediates.push((c, e));
    }
    for c in roots {
        let e = extensions(&c)?;
        search.roots.push((c, e));
    }
    let ek_pair = (ek, ek_ext);

    let mut path = Vec::new();
    let mut budget = MAX_SIGNATURE_CHECKS;
    let root = search.extend(&mut budget, &ek_pair, &mut path)?;
    let root_cert = search
        .roots
        .get(root)
        .map(|(c, _)| c)
        .ok_or(EkError::PathTooLong { max: MAX_PATH_LEN })?;
    let mut path_subjects = vec![ek_pair.0.name.clone()];
    for &i in &path {
        if let Some((c, _)) = search.intermediates.get(i) {
            path_subjects.push(c.name.clone());
        }
    }
    path_subjects.push(root_cert.name.clone());
    Ok(VerifiedEk {
        certificate: ek_pair.0.der.to_vec(),
        public_key_spki: ek_pair.0.x509.public_key().raw.to_vec(),
        root_subject: name_string(root_cert.x509.subject()),
        path_subjects,
        tpm_manufacturer,
        tpm_model,
        tpm_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWTPM_EK_RSA: &[u8] = include_bytes!("../testdata/ek/swtpm/ek-rsa.der");
    const SWTPM_EK_ECC: &[u8] = include_bytes!("../testdata/ek/swtpm/ek-ecc.der");
    const SWTPM_ROOT: &[u8] = include_bytes!("../testdata/ek/swtpm/localca-root.der");
    const SWTPM_INT: &[u8] = include_bytes!("../testdata/ek/swtpm/localca-intermediate.der");

    macro_rules! synthetic {
        ($name:literal) => {
            include_bytes!(concat!("../testdata/ek/synthetic/", $name, ".der")).as_slice()
        };
    }

    fn not_before(der: &[u8]) -> i64 {
        X509Certificate::from_der(der)
            .unwrap()
            .1
            .validity()
            .not_before
            .timestamp()
    }

    fn not_after(der: &[u8]) -> i64 {
        X509Certificate::from_der(der)
            .unwrap()
            .1
            .validity()
            .not_after
            .timestamp()
    }

    /// A moment when every golden certificate is valid.
    fn swtpm_now() -> i64 {
        not_before(SWTPM_EK_RSA).max(not_before(SWTPM_INT)) + 60
    }

    fn synth_now() -> i64 {
        not_before(synthetic!("ek")) + 60
    }

    #[test]
    fn swtpm_rsa_ek_verifies_to_localca_root() {
        let v = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_INT.to_vec()],
            &[SWTPM_ROOT.to_vec()],
            swtpm_now(),
        )
        .unwrap();
        assert_eq!(v.root_subject, "CN=swtpm-localca-rootca");
        assert_eq!(v.path_subjects.len(), 3);
        assert_eq!(v.certificate, SWTPM_EK_RSA);
        assert_eq!(v.tpm_manufacturer.as_deref(), Some("id:00001014"));
        assert_eq!(v.tpm_model.as_deref(), Some("swtpm"));
        assert_eq!(v.tpm_version.as_deref(), Some("id:20191023"));
        let spki = X509Certificate::from_der(SWTPM_EK_RSA)
            .unwrap()
            .1
            .public_key()
            .raw
            .to_vec();
        assert_eq!(v.public_key_spki, spki);
    }

    #[test]
    fn swtpm_ecc_ek_verifies_and_order_does_not_matter() {
        // Root also offered as an intermediate, intermediate twice: still one path.
        let v = verify_ek_chain(
            SWTPM_EK_ECC,
            &[SWTPM_ROOT.to_vec(), SWTPM_INT.to_vec(), SWTPM_INT.to_vec()],
            &[synthetic!("unrelated-root").to_vec(), SWTPM_ROOT.to_vec()],
            swtpm_now(),
        )
        .unwrap();
        assert_eq!(v.root_subject, "CN=swtpm-localca-rootca");
        assert_eq!(v.path_subjects.len(), 3);
    }

    #[test]
    fn missing_intermediate_is_no_path() {
        let e =
            verify_ek_chain(SWTPM_EK_RSA, &[], &[SWTPM_ROOT.to_vec()], swtpm_now()).unwrap_err();
        assert_eq!(
            e,
            EkError::NoPathToTrustedRoot {
                subject: "CN=unknown".to_string(),
                issuer: "CN=swtpm-localca".to_string()
            }
        );
    }

    #[test]
    fn unrelated_root_is_no_path() {
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_INT.to_vec()],
            &[synthetic!("unrelated-root").to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, EkError::NoPathToTrustedRoot { subject, .. } if subject == "CN=swtpm-localca"),
            "{e:?}"
        );
    }

    #[test]
    fn same_name_other_key_root_is_bad_signature() {
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_INT.to_vec()],
            &[synthetic!("fake-localca-root").to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            EkError::BadSignature {
                subject: "CN=swtpm-localca".to_string(),
                issuer: "CN=swtpm-localca-rootca".to_string()
            }
        );
    }

    #[test]
    fn flipped_signature_byte_fails() {
        let mut ek = SWTPM_EK_RSA.to_vec();
        let last = ek.len() - 1;
        ek[last] ^= 1;
        let e = verify_ek_chain(
            &ek,
            &[SWTPM_INT.to_vec()],
            &[SWTPM_ROOT.to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert!(matches!(e, EkError::BadSignature { .. }), "{e:?}");
    }

    #[test]
    fn flipped_tbs_byte_fails() {
        // A byte inside the EK's public key modulus.
        let mut ek = SWTPM_EK_RSA.to_vec();
        ek[200] ^= 0x80;
        let e = verify_ek_chain(
            &ek,
            &[SWTPM_INT.to_vec()],
            &[SWTPM_ROOT.to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert!(matches!(e, EkError::BadSignature { .. }), "{e:?}");
    }

    #[test]
    fn before_not_before_is_not_yet_valid() {
        let now = not_before(SWTPM_EK_RSA) - 1;
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_INT.to_vec()],
            &[SWTPM_ROOT.to_vec()],
            now,
        )
        .unwrap_err();
        assert!(matches!(e, EkError::NotYetValid { .. }), "{e:?}");
    }

    #[test]
    fn after_9999_is_expired() {
        let now = not_after(SWTPM_EK_RSA) + 1;
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_INT.to_vec()],
            &[SWTPM_ROOT.to_vec()],
            now,
        )
        .unwrap_err();
        assert!(matches!(e, EkError::Expired { .. }), "{e:?}");
    }

    #[test]
    fn garbage_and_truncations_are_parse_errors() {
        let e = verify_ek_chain(b"garbage", &[], &[SWTPM_ROOT.to_vec()], 0).unwrap_err();
        assert!(
            matches!(
                e,
                EkError::Parse {
                    which: CertRole::Ek,
                    ..
                }
            ),
            "{e:?}"
        );
        for len in 0..SWTPM_EK_RSA.len() {
            let e = verify_ek_chain(
                &SWTPM_EK_RSA[..len],
                &[SWTPM_INT.to_vec()],
                &[SWTPM_ROOT.to_vec()],
                swtpm_now(),
            )
            .unwrap_err();
            assert!(matches!(e, EkError::Parse { .. }), "len {len}: {e:?}");
        }
        let mut trailing = SWTPM_EK_RSA.to_vec();
        trailing.push(0);
        let e = verify_ek_chain(&trailing, &[], &[], 0).unwrap_err();
        assert!(matches!(e, EkError::Parse { .. }), "{e:?}");
        let e = verify_ek_chain(SWTPM_EK_RSA, &[vec![0x30, 0x03, 1]], &[], 0).unwrap_err();
        assert!(
            matches!(
                e,
                EkError::Parse {
                    which: CertRole::Intermediate(0),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = verify_ek_chain(SWTPM_EK_RSA, &[], &[vec![]], 0).unwrap_err();
        assert!(
            matches!(
                e,
                EkError::Parse {
                    which: CertRole::TrustedRoot(0),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn every_single_byte_flip_fails_or_is_harmless_never_panics() {
        // Flipping any byte must never panic; it must fail unless it lands in a part of the
        // certificate that no check covers (there is none in the TBS or the signature).
        for i in 0..SWTPM_EK_RSA.len() {
            let mut ek = SWTPM_EK_RSA.to_vec();
            ek[i] ^= 0x01;
            let r = verify_ek_chain(
                &ek,
                &[SWTPM_INT.to_vec()],
                &[SWTPM_ROOT.to_vec()],
                swtpm_now(),
            );
            assert!(r.is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn ecdsa_chain_with_empty_subject_and_critical_san() {
        let v = verify_ek_chain(
            synthetic!("ek"),
            &[synthetic!("int").to_vec()],
            &[synthetic!("root").to_vec()],
            synth_now(),
        )
        .unwrap();
        assert_eq!(v.root_subject, "O=Warrant test, CN=Test EK Root P-384");
        assert!(v.path_subjects[0].starts_with("<empty subject"));
        assert_eq!(v.tpm_manufacturer.as_deref(), Some("id:54455354"));
        assert_eq!(v.tpm_model.as_deref(), Some("test-tpm"));
        assert_eq!(v.tpm_version.as_deref(), Some("id:00010002"));
    }

    #[test]
    fn rsa_pss_signature_verifies() {
        let v = verify_ek_chain(
            synthetic!("ek-pss"),
            &[],
            &[synthetic!("pss-root").to_vec()],
            synth_now(),
        )
        .unwrap();
        assert_eq!(v.root_subject, "O=Warrant test, CN=Test EK Root RSA");
    }

    #[test]
    fn wrong_eku_is_missing_ek_eku() {
        let e = verify_ek_chain(
            synthetic!("ek-wrongeku"),
            &[synthetic!("int").to_vec()],
            &[synthetic!("root").to_vec()],
            synth_now(),
        )
        .unwrap_err();
        assert!(matches!(e, EkError::MissingEkEku { .. }), "{e:?}");
    }

    #[test]
    fn unknown_critical_extension_is_rejected() {
        let e = verify_ek_chain(
            synthetic!("ek-critical"),
            &[synthetic!("int").to_vec()],
            &[synthetic!("root").to_vec()],
            synth_now(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            EkError::UnsupportedCriticalExtension {
                subject: describe(
                    &X509Certificate::from_der(synthetic!("ek-critical"))
                        .unwrap()
                        .1
                ),
                oid: "1.3.6.1.4.1.99999.1".to_string()
            }
        );
    }

    #[test]
    fn expired_intermediate_fails_and_a_valid_twin_is_chosen() {
        let short = synthetic!("int-short");
        let after = not_after(short) + 1;
        let e = verify_ek_chain(
            synthetic!("ek"),
            &[short.to_vec()],
            &[synthetic!("root").to_vec()],
            after,
        )
        .unwrap_err();
        assert!(
            matches!(&e, EkError::Expired { subject, .. } if subject.contains("Intermediate")),
            "{e:?}"
        );
        // Before its notAfter it is fine; after, the long-lived twin is used.
        verify_ek_chain(
            synthetic!("ek"),
            &[short.to_vec()],
            &[synthetic!("root").to_vec()],
            not_after(short) - 1,
        )
        .unwrap();
        verify_ek_chain(
            synthetic!("ek"),
            &[short.to_vec(), synthetic!("int").to_vec()],
            &[synthetic!("root").to_vec()],
            after,
        )
        .unwrap();
    }

    #[test]
    fn issuer_that_is_not_a_ca_fails() {
        let e = verify_ek_chain(
            synthetic!("ek"),
            &[synthetic!("int-notca").to_vec()],
            &[synthetic!("root").to_vec()],
            synth_now(),
        )
        .unwrap_err();
        assert!(matches!(e, EkError::NotACa { .. }), "{e:?}");
    }

    #[test]
    fn path_len_constraint_is_enforced() {
        let e = verify_ek_chain(
            synthetic!("ek-under-sub"),
            &[synthetic!("sub").to_vec(), synthetic!("int").to_vec()],
            &[synthetic!("root").to_vec()],
            synth_now(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            EkError::PathLenExceeded {
                subject: "O=Warrant test, CN=Test EK Intermediate P-256".to_string(),
                path_len: 0,
                below: 1
            }
        );
    }

    #[test]
    fn ek_used_as_its_own_issuer_is_no_path() {
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &[SWTPM_EK_RSA.to_vec()],
            &[SWTPM_EK_RSA.to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert!(matches!(e, EkError::NoPathToTrustedRoot { .. }), "{e:?}");
    }

    #[test]
    fn many_same_name_intermediates_are_bounded() {
        // Thirty copies of the (valid) intermediate that cannot reach the root offered.
        let many = vec![SWTPM_INT.to_vec(); 30];
        let e = verify_ek_chain(
            SWTPM_EK_RSA,
            &many,
            &[synthetic!("unrelated-root").to_vec()],
            swtpm_now(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                EkError::NoPathToTrustedRoot { .. } | EkError::PathTooLong { .. }
            ),
            "{e:?}"
        );
        let too_many = vec![SWTPM_INT.to_vec(); MAX_CERTIFICATES + 1];
        let e = verify_ek_chain(SWTPM_EK_RSA, &too_many, &[], 0).unwrap_err();
        assert!(matches!(e, EkError::TooManyCertificates { .. }), "{e:?}");
    }

    #[test]
    fn pem_round_trip() {
        let pem = std::fs::read("testdata/ek/synthetic/chain.pem").unwrap();
        let ders = pem_to_der(&pem).unwrap();
        assert_eq!(
            ders,
            vec![synthetic!("int").to_vec(), synthetic!("root").to_vec()]
        );
        assert!(matches!(
            pem_to_der(b"no pem here"),
            Err(EkError::Pem { .. })
        ));
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(pem_to_der(key), Err(EkError::Pem { .. })));
    }
}
