//! Signature databases: `EFI_SIGNATURE_LIST` and `EFI_SIGNATURE_DATA` (UEFI 2.10 sec. 32.4.1
//! "Signature Database"), the contents of PK, KEK, db, dbx and of shim's MokList/MokListX.
//!
//! ```text
//! EFI_SIGNATURE_LIST { GUID SignatureType; u32 SignatureListSize; u32 SignatureHeaderSize;
//!                      u32 SignatureSize; u8 SignatureHeader[SignatureHeaderSize];
//!                      EFI_SIGNATURE_DATA Signatures[...] /* each SignatureSize bytes */ }
//! EFI_SIGNATURE_DATA { GUID SignatureOwner; u8 SignatureData[SignatureSize - 16] }
//! ```
//!
//! X.509 entries are parsed with `x509-parser` and summarised ([`Certificate`]); a certificate
//! that does not parse, or that leaves bytes after its DER encoding, is an error. Hash entries
//! must have exactly the size of their hash.

use super::guids;
use super::{EfiError, Guid};
use crate::codec::Reader;
use serde::Serialize;
use sha2::Digest;

/// Size of the fixed `EFI_SIGNATURE_LIST` header.
const LIST_HEADER: usize = 16 + 4 + 4 + 4;

/// One `EFI_SIGNATURE_LIST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureList {
    pub signature_type: Guid,
    /// The name of `signature_type` (`EFI_CERT_X509_GUID`, `EFI_CERT_SHA256_GUID`, ...).
    pub signature_type_name: Option<&'static str>,
    pub list_size: u32,
    pub header_size: u32,
    pub signature_size: u32,
    /// `SignatureHeader` (empty for every type UEFI 2.10 defines).
    #[serde(
        serialize_with = "crate::serde_hex",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub header: Vec<u8>,
    pub signatures: Vec<SignatureData>,
}

/// One `EFI_SIGNATURE_DATA`: an owner and a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureData {
    pub owner: Guid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<&'static str>,
    pub value: SignatureValue,
}

/// The value of a signature entry, by `SignatureType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum SignatureValue {
    /// `EFI_CERT_X509_GUID`: a DER certificate.
    X509(Certificate),
    /// `EFI_CERT_SHA{1,224,256,384,512}_GUID`: the hash of an image (PE Authenticode hash).
    Hash {
        algorithm: &'static str,
        #[serde(serialize_with = "crate::serde_hex")]
        digest: Vec<u8>,
    },
    /// `EFI_CERT_X509_SHA{256,384,512}_GUID`: the hash of a certificate's TBS and the
    /// `EFI_TIME` of revocation (16 bytes, kept raw).
    CertificateHash {
        algorithm: &'static str,
        #[serde(serialize_with = "crate::serde_hex")]
        digest: Vec<u8>,
        #[serde(serialize_with = "crate::serde_hex")]
        time_of_revocation: Vec<u8>,
    },
    /// Any other type (RSA2048 keys, PKCS7, vendor types): the bytes.
    Raw {
        #[serde(serialize_with = "crate::serde_hex")]
        bytes: Vec<u8>,
    },
}

/// The facts of an X.509 certificate that people and policy look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Subject distinguished name, RFC 4514 style (`C=US, O=Microsoft Corporation, CN=...`).
    pub subject: String,
    pub issuer: String,
    /// Serial number, big-endian hex as encoded.
    pub serial: String,
    /// Validity start, RFC 3339 (`2011-10-19T18:41:42Z`).
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the DER encoding, hex.
    pub sha256: String,
    /// The DER encoding.
    #[serde(skip)]
    pub der: Vec<u8>,
}

impl Certificate {
    /// Parses exactly one DER certificate filling `der`. `offset` is the absolute offset of
    /// `der[0]`, for errors.
    pub fn parse(der: &[u8], offset: usize) -> Result<Certificate, EfiError> {
        use x509_parser::nom::Parser;
        // The extensions' structure is parsed, not their contents: none of them is read here,
        // and x509-parser never fails on an extension's contents (it records the error in the
        // extension), so this accepts and refuses exactly what `parse_x509_certificate` does,
        // with the same errors, without building every extension.
        let (rest, cert) = x509_parser::certificate::X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(der)
            .map_err(|e| EfiError::BadCertificate {
                offset,
                reason: e.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(EfiError::BadCertificate {
                offset,
                reason: format!("{} bytes after the certificate", rest.len()),
            });
        }
        let validity = cert.validity();
        Ok(Certificate {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: hex::encode(cert.raw_serial()),
            not_before: rfc3339(&validity.not_before),
            not_after: rfc3339(&validity.not_after),
            sha256: hex::encode(sha2::Sha256::digest(der)),
            der: der.to_vec(),
        })
    }
}

fn rfc3339(t: &x509_parser::time::ASN1Time) -> String {
    let dt = t.to_datetime();
    let offset = dt.offset();
    let tz = if offset.is_utc() {
        "Z".to_owned()
    } else {
        let (h, m, _) = offset.as_hms();
        format!("{:+03}:{:02}", h, m.unsigned_abs())
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{tz}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// What a signature type requires of each entry's data.
enum Kind {
    X509,
    Hash(&'static str, usize),
    CertHash(&'static str, usize),
    Other,
}

fn kind(signature_type: &Guid) -> Kind {
    match *signature_type {
        guids::EFI_CERT_X509_GUID => Kind::X509,
        guids::EFI_CERT_SHA1_GUID => Kind::Hash("sha1", 20),
        guids::EFI_CERT_SHA224_GUID => Kind::Hash("sha224", 28),
        guids::EFI_CERT_SHA256_GUID => Kind::Hash("sha256", 32),
        guids::EFI_CERT_SHA384_GUID => Kind::Hash("sha384", 48),
        guids::EFI_CERT_SHA512_GUID => Kind::Hash("sha512", 64),
        guids::EFI_CERT_X509_SHA256_GUID => Kind::CertHash("sha256", 32),
        guids::EFI_CERT_X509_SHA384_GUID => Kind::CertHash("sha384", 48),
        guids::EFI_CERT_X509_SHA512_GUID => Kind::CertHash("sha512", 64),
        _ => Kind::Other,
    }
}

/// Parses a signature database: zero or more `EFI_SIGNATURE_LIST`s filling the reader.
pub fn parse_lists(r: &mut Reader<'_>) -> Result<Vec<SignatureList>, EfiError> {
    let mut lists = Vec::new();
    while !r.is_empty() {
        lists.push(parse_list(r)?);
    }
    Ok(lists)
}

/// Parses one `EFI_SIGNATURE_LIST`.
pub fn parse_list(r: &mut Reader<'_>) -> Result<SignatureList, EfiError> {
    let offset = r.offset();
    let signature_type = r.guid("SignatureType")?;
    let list_size = r.u32_le("SignatureListSize")?;
    let header_size = r.u32_le("SignatureHeaderSize")?;
    let signature_size = r.u32_le("SignatureSize")?;
    let bad = EfiError::BadSignatureList {
        offset,
        list_size,
        header_size,
        signature_size,
    };
    let (Ok(list), Ok(header), Ok(sig)) = (
        usize::try_from(list_size),
        usize::try_from(header_size),
        usize::try_from(signature_size),
    ) else {
        return Err(bad);
    };
    // The body after the fixed header: the signature header, then whole signatures, each at
    // least an owner GUID long.
    let body = list.checked_sub(LIST_HEADER).ok_or(bad.clone())?;
    let sigs_len = body.checked_sub(header).ok_or(bad.clone())?;
    if sig < 16 || sigs_len % sig != 0 {
        return Err(bad);
    }
    let mut body = r.sub(body, "EFI_SIGNATURE_LIST body")?;
    let header_bytes = body.take(header, "SignatureHeader")?.to_vec();
    let kind = kind(&signature_type);
    let mut signatures = Vec::with_capacity(sigs_len / sig);
    while !body.is_empty() {
        let mut entry = body.sub(sig, "EFI_SIGNATURE_DATA")?;
        let owner = entry.guid("SignatureOwner")?;
        let data_offset = entry.offset();
        let data = entry.rest();
        let value = match kind {
            Kind::X509 => SignatureValue::X509(Certificate::parse(data, data_offset)?),
            Kind::Hash(algorithm, n) => {
                expect_size(&signature_type, data_offset, n, data.len())?;
                SignatureValue::Hash {
                    algorithm,
                    digest: data.to_vec(),
                }
            }
            Kind::CertHash(algorithm, n) => {
                expect_size(&signature_type, data_offset, n + 16, data.len())?;
                let (digest, time) = data.split_at(n);
                SignatureValue::CertificateHash {
                    algorithm,
                    digest: digest.to_vec(),
                    time_of_revocation: time.to_vec(),
                }
            }
            Kind::Other => SignatureValue::Raw {
                bytes: data.to_vec(),
            },
        };
        signatures.push(SignatureData {
            owner,
            owner_name: owner.name(),
            value,
        });
    }
    Ok(SignatureList {
        signature_type,
        signature_type_name: signature_type.name(),
        list_size,
        header_size,
        signature_size,
        header: header_bytes,
        signatures,
    })
}

fn expect_size(ty: &Guid, offset: usize, expected: usize, actual: usize) -> Result<(), EfiError> {
    if expected == actual {
        Ok(())
    } else {
        Err(EfiError::BadSignatureSize {
            offset,
            signature_type: *ty,
            expected,
            actual,
        })
    }
}

/// Parses a lone `EFI_SIGNATURE_DATA` whose type is not given (the data of an
/// `EV_EFI_VARIABLE_AUTHORITY` event, PFP 1.06 sec. 3.3.4.8): the owner GUID, then a value that
/// is a certificate if it parses as exactly one, else raw bytes (the authority can be a hash
/// entry of db, whose type the event does not record).
pub fn parse_authority_data(r: &mut Reader<'_>) -> Result<SignatureData, EfiError> {
    let owner = r.guid("SignatureOwner")?;
    let offset = r.offset();
    let data = r.rest();
    let value = if looks_like_der_certificate(data) {
        SignatureValue::X509(Certificate::parse(data, offset)?)
    } else {
        SignatureValue::Raw {
            bytes: data.to_vec(),
        }
    };
    Ok(SignatureData {
        owner,
        owner_name: owner.name(),
        value,
    })
}

/// True if `data` is a DER SEQUENCE whose encoded length is exactly `data.len()` (the shape of
/// a certificate; the content is checked by the parser afterwards).
pub fn looks_like_der_certificate(data: &[u8]) -> bool {
    let len = match data {
        [0x30, 0x82, hi, lo, ..] => (usize::from(*hi) << 8 | usize::from(*lo)) + 4,
        [0x30, 0x81, n, ..] => usize::from(*n) + 3,
        [0x30, 0x83, a, b, c, ..] => {
            (usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c)) + 5
        }
        _ => return false,
    };
    len == data.len()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed test certificate (`openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:P-256 -subj "/CN=Warrant Test/O=Warrant" -days 36500 -set_serial 0x1234
    /// -outform DER`), 412 bytes. SHA-256 fingerprint below.
    pub(crate) const TEST_CERT: &str = concat!(
        "308201983082013da00302010202021234300a06082a8648ce3d04030230293115301306035504030c0c5761",
        "7272616e7420546573743110300e060355040a0c0757617272616e743020170d323631313235313135343531",
        "5a180f32313236313130313131353435315a30293115301306035504030c0c57617272616e74205465737431",
        "10300e060355040a0c0757617272616e743059301306072a8648ce3d020106082a8648ce3d03010703420004",
        "5e4a59243654f33afb41b74503e535bce87aa0e94529970a248ea56a5f7e9133ada3eb14a6ca2bdbc88e48f4",
        "26010cd78cbc8f7694b0549e6c5bc21056f5383fa3533051301d0603551d0e04160414b114eb7ab2dc05e744",
        "2c406c3b7a2ed81e6a4f42301f0603551d23041830168014b114eb7ab2dc05e7442c406c3b7a2ed81e6a4f42",
        "300f0603551d130101ff040530030101ff300a06082a8648ce3d04030203490030460221008c27254cd900a4",
        "9540757b8c0390f135025b1646606660e31e12040aaebcbdb6022100ffc2786fa3e345e145bd5cc7a0563f41",
        "5e7e2cfc9939ebb07c94a46205c2ec5d",
    );
    pub(crate) const TEST_CERT_SHA256: &str =
        "7a600f2053fe3b4b5650021d58e56b6c43d2c9bc65a63642d0c6d5c5efeeb4ed";

    pub(crate) fn list(ty: Guid, header: &[u8], sig_size: u32, entries: &[Vec<u8>]) -> Vec<u8> {
        let body: usize = header.len() + entries.iter().map(Vec::len).sum::<usize>();
        let mut v = ty.0.to_vec();
        v.extend(u32::try_from(LIST_HEADER + body).unwrap().to_le_bytes());
        v.extend(u32::try_from(header.len()).unwrap().to_le_bytes());
        v.extend(sig_size.to_le_bytes());
        v.extend(header);
        for e in entries {
            v.extend(e);
        }
        v
    }

    fn entry(owner: Guid, data: &[u8]) -> Vec<u8> {
        let mut v = owner.0.to_vec();
        v.extend(data);
        v
    }

    #[test]
    fn hash_lists() {
        let owner = guids::MICROSOFT_SIGNATURE_OWNER;
        let bytes = [
            list(
                guids::EFI_CERT_SHA256_GUID,
                &[],
                48,
                &[entry(owner, &[1; 32]), entry(owner, &[2; 32])],
            ),
            list(
                guids::EFI_CERT_SHA1_GUID,
                &[],
                36,
                &[entry(owner, &[3; 20])],
            ),
        ]
        .concat();
        let lists = parse_lists(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].signatures.len(), 2);
        assert_eq!(lists[0].signature_type_name, Some("EFI_CERT_SHA256_GUID"));
        assert_eq!(
            lists[0].signatures[1].owner_name,
            Some("MICROSOFT_SIGNATURE_OWNER")
        );
        assert_eq!(
            lists[1].signatures[0].value,
            SignatureValue::Hash {
                algorithm: "sha1",
                digest: vec![3; 20]
            }
        );
        // Empty database.
        assert!(parse_lists(&mut Reader::new(&[])).unwrap().is_empty());
    }

    #[test]
    fn inconsistent_sizes_are_errors() {
        let owner = Guid([0; 16]);
        // Signature size 0 (would divide by zero).
        let bad = list(
            guids::EFI_CERT_SHA256_GUID,
            &[],
            0,
            &[entry(owner, &[1; 32])],
        );
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadSignatureList { offset: 0, .. })
        ));
        // Body not a multiple of the signature size.
        let bad = list(
            guids::EFI_CERT_SHA256_GUID,
            &[],
            47,
            &[entry(owner, &[1; 32])],
        );
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadSignatureList { .. })
        ));
        // Hash of the wrong size.
        let bad = list(
            guids::EFI_CERT_SHA256_GUID,
            &[],
            36,
            &[entry(owner, &[1; 20])],
        );
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadSignatureSize {
                offset: 44,
                expected: 32,
                actual: 20,
                ..
            })
        ));
        // List size larger than the input.
        let mut bad = list(
            guids::EFI_CERT_SHA256_GUID,
            &[],
            48,
            &[entry(owner, &[1; 32])],
        );
        bad[16..20].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadSignatureList { .. }) | Err(EfiError::Codec(_))
        ));
        // List size below the header.
        let mut bad = list(
            guids::EFI_CERT_SHA256_GUID,
            &[],
            48,
            &[entry(owner, &[1; 32])],
        );
        bad[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadSignatureList { .. })
        ));
        // Truncated header.
        assert!(matches!(
            parse_lists(&mut Reader::new(&[0; 20])),
            Err(EfiError::Codec(_))
        ));
        // A "certificate" that is not one.
        let bad = list(
            guids::EFI_CERT_X509_GUID,
            &[],
            20,
            &[entry(owner, &[0x30, 0x02, 0x05, 0x00])],
        );
        assert!(matches!(
            parse_lists(&mut Reader::new(&bad)),
            Err(EfiError::BadCertificate { offset: 44, .. })
        ));
    }

    #[test]
    fn certificate_lists() {
        let der = hex::decode(TEST_CERT).unwrap();
        let owner = guids::MICROSOFT_SIGNATURE_OWNER;
        let size = u32::try_from(16 + der.len()).unwrap();
        let bytes = list(guids::EFI_CERT_X509_GUID, &[], size, &[entry(owner, &der)]);
        let lists = parse_lists(&mut Reader::at(&bytes, 1000)).unwrap();
        let SignatureValue::X509(cert) = &lists[0].signatures[0].value else {
            panic!()
        };
        assert_eq!(cert.subject, "CN=Warrant Test, O=Warrant");
        assert_eq!(cert.issuer, cert.subject);
        assert_eq!(cert.serial, "1234");
        assert_eq!(cert.not_before, "2026-11-25T11:54:51Z");
        assert_eq!(cert.not_after, "2126-11-01T11:54:51Z");
        assert_eq!(cert.sha256, TEST_CERT_SHA256);
        // Trailing bytes after the DER inside the entry are an error.
        let mut padded = der.clone();
        padded.push(0);
        let bytes = list(
            guids::EFI_CERT_X509_GUID,
            &[],
            size + 1,
            &[entry(owner, &padded)],
        );
        assert!(matches!(
            parse_lists(&mut Reader::new(&bytes)),
            Err(EfiError::BadCertificate { offset: 44, .. })
        ));
        // Authority data: owner + certificate, or owner + hash.
        let auth = entry(owner, &der);
        let sd = parse_authority_data(&mut Reader::new(&auth)).unwrap();
        assert!(matches!(sd.value, SignatureValue::X509(_)));
        let auth = entry(owner, &[7; 32]);
        let sd = parse_authority_data(&mut Reader::new(&auth)).unwrap();
        assert_eq!(sd.value, SignatureValue::Raw { bytes: vec![7; 32] });
        // Truncated certificate with a matching outer length: a typed error.
        let mut cut = der[..100].to_vec();
        cut[2] = 0;
        cut[3] = 96;
        assert!(matches!(
            Certificate::parse(&cut, 5),
            Err(EfiError::BadCertificate { offset: 5, .. })
        ));
    }

    #[test]
    fn der_shape() {
        assert!(looks_like_der_certificate(&[0x30, 0x82, 0x00, 0x01, 0xaa]));
        assert!(!looks_like_der_certificate(&[0x30, 0x82, 0x00, 0x02, 0xaa]));
        assert!(!looks_like_der_certificate(&[0x31]));
        assert!(!looks_like_der_certificate(&[]));
    }
}
