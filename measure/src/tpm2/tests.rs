//! Unit tests against the golden quotes in `measure/testdata/quote/` (made by tpm2-tools on
//! swtpm, see its README), embedded at compile time so no file is opened.

use super::*;
use crate::pcr::PcrBanks;

struct Set {
    attest: &'static [u8],
    sig: &'static [u8],
    akpub: &'static [u8],
    akname: &'static [u8],
}

macro_rules! set {
    ($name:literal) => {
        Set {
            attest: include_bytes!(concat!("../../testdata/quote/", $name, ".attest")),
            sig: include_bytes!(concat!("../../testdata/quote/", $name, ".sig")),
            akpub: include_bytes!(concat!("../../testdata/quote/", $name, ".akpub")),
            akname: include_bytes!(concat!("../../testdata/quote/", $name, ".akname")),
        }
    };
}

fn sets() -> [(&'static str, Set); 3] {
    [
        ("ecc-p256", set!("ecc-p256")),
        ("rsa-rsassa", set!("rsa-rsassa")),
        ("rsa-rsapss", set!("rsa-rsapss")),
    ]
}

fn nonce() -> Vec<u8> {
    hex::decode(include_str!("../../testdata/quote/nonce.hex").trim()).unwrap()
}

fn pcrs() -> PcrBanks {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/quote/pcrs.json")).unwrap();
    PcrBanks::from_json(&v).unwrap()
}

#[test]
fn golden_quotes_verify() {
    for (name, s) in sets() {
        let v = Quote::verify(s.attest, s.sig, s.akpub, &nonce(), &pcrs())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.pcrs(), &pcrs(), "{name}");
        assert_eq!(v.ak_name(), s.akname, "{name}: Name as tpm2_createak -n");
        assert_eq!(v.signature_hash(), HashAlg::Sha256);
        assert_eq!(v.qualified_signer().len(), 34);
        assert_eq!(
            v.selection(),
            &[
                PcrSelection {
                    bank: HashAlg::Sha256,
                    pcrs: vec![0, 1, 7]
                },
                PcrSelection {
                    bank: HashAlg::Sha1,
                    pcrs: vec![0]
                }
            ]
        );
        // TPMT_PUBLIC without the TPM2B size works too.
        Quote::verify(s.attest, s.sig, &s.akpub[2..], &nonce(), &pcrs()).unwrap();
    }
}

#[test]
fn golden_structures_parse() {
    let s = set!("ecc-p256");
    let a = Attest::parse(s.attest).unwrap();
    assert_eq!(a.extra_data, nonce());
    assert!(matches!(a.attested, Attested::Quote(ref q) if q.pcr_digest.len() == 32));
    assert!(matches!(
        Signature::parse(s.sig).unwrap(),
        Signature::Ecdsa { hash: HashAlg::Sha256, ref r, ref s } if r.len() == 32 && s.len() == 32
    ));
    let p = Public::parse(s.akpub).unwrap();
    assert!(p.attributes.restricted() && p.attributes.sign() && p.attributes.fixed_tpm());
    assert!(matches!(
        p.params,
        PublicParams::Ecc {
            curve: EccCurve::NIST_P256,
            ..
        }
    ));
    let r = Public::parse(set!("rsa-rsassa").akpub).unwrap();
    assert!(
        matches!(r.params, PublicParams::Rsa { key_bits: 2048, ref modulus, .. } if modulus.len() == 256)
    );
    assert_eq!(r.scheme().map(|s| s.alg), Some(TPM_ALG_RSASSA));
}

#[test]
fn wrong_nonce_is_rejected() {
    for (_, s) in sets() {
        let mut n = nonce();
        n[0] ^= 1;
        assert_eq!(
            Quote::verify(s.attest, s.sig, s.akpub, &n, &pcrs()),
            Err(QuoteError::NonceMismatch)
        );
        assert_eq!(
            Quote::verify(s.attest, s.sig, s.akpub, &n[..15], &pcrs()),
            Err(QuoteError::NonceMismatch)
        );
    }
}

#[test]
fn changed_pcr_value_is_rejected() {
    for (_, s) in sets() {
        let mut p = pcrs();
        p.set(HashAlg::Sha256, 7, vec![0; 32]);
        assert_eq!(
            Quote::verify(s.attest, s.sig, s.akpub, &nonce(), &p),
            Err(QuoteError::PcrDigestMismatch {
                alg: HashAlg::Sha256
            })
        );
        let mut p = pcrs();
        p.set(HashAlg::Sha1, 0, vec![0; 20]);
        assert!(matches!(
            Quote::verify(s.attest, s.sig, s.akpub, &nonce(), &p),
            Err(QuoteError::PcrDigestMismatch { .. })
        ));
    }
}

#[test]
fn selection_must_match_exactly() {
    let s = set!("ecc-p256");
    let mut extra = pcrs();
    extra.set(HashAlg::Sha256, 2, vec![0; 32]);
    assert_eq!(
        Quote::verify(s.attest, s.sig, s.akpub, &nonce(), &extra),
        Err(QuoteError::PcrSelectionMismatch {
            bank: HashAlg::Sha256,
            pcr: 2,
            in_quote: false
        })
    );
    let mut missing = PcrBanks::new();
    for (bank, values) in pcrs().banks() {
        for (pcr, v) in values {
            if (bank, *pcr) != (HashAlg::Sha1, 0) {
                missing.set(bank, *pcr, v.clone());
            }
        }
    }
    assert_eq!(
        Quote::verify(s.attest, s.sig, s.akpub, &nonce(), &missing),
        Err(QuoteError::PcrSelectionMismatch {
            bank: HashAlg::Sha1,
            pcr: 0,
            in_quote: true
        })
    );
}

#[test]
fn tampered_attest_fails_the_signature() {
    for (name, s) in sets() {
        // Any byte of the nonce, clock, firmware or PCR digest.
        for i in [14, 50, 70, s.attest.len() - 1] {
            let mut a = s.attest.to_vec();
            a[i] ^= 0x01;
            assert_eq!(
                Quote::verify(&a, s.sig, s.akpub, &nonce(), &pcrs()),
                Err(QuoteError::BadSignature),
                "{name} byte {i}"
            );
        }
        let mut sig = s.sig.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 0x80;
        assert_eq!(
            Quote::verify(s.attest, &sig, s.akpub, &nonce(), &pcrs()),
            Err(QuoteError::BadSignature),
            "{name}"
        );
    }
}

#[test]
fn signature_must_fit_the_key() {
    let ecc = set!("ecc-p256");
    let ssa = set!("rsa-rsassa");
    let pss = set!("rsa-rsapss");
    // ECDSA signature, RSA key; RSASSA signature, key fixed to RSAPSS.
    for (attest, sig, key) in [
        (ecc.attest, ecc.sig, ssa.akpub),
        (ssa.attest, ssa.sig, pss.akpub),
        (ssa.attest, ssa.sig, ecc.akpub),
    ] {
        assert!(matches!(
            Quote::verify(attest, sig, key, &nonce(), &pcrs()),
            Err(QuoteError::SchemeMismatch { .. })
        ));
    }
}

#[test]
fn non_restricted_or_decrypt_keys_are_rejected() {
    let s = set!("ecc-p256");
    // objectAttributes are bytes 6..10 of the TPM2B_PUBLIC.
    for (clear, set) in [
        (ObjectAttributes::RESTRICTED, 0),
        (ObjectAttributes::SIGN, 0),
        (0, ObjectAttributes::DECRYPT),
    ] {
        let mut key = s.akpub.to_vec();
        let attrs = u32::from_be_bytes(key[6..10].try_into().unwrap());
        let attrs = (attrs & !clear) | set;
        key[6..10].copy_from_slice(&attrs.to_be_bytes());
        assert_eq!(
            Quote::verify(s.attest, s.sig, &key, &nonce(), &pcrs()),
            Err(QuoteError::NotRestrictedSigningKey { attributes: attrs })
        );
    }
}

#[test]
fn truncated_inputs_are_typed_errors() {
    for (_, s) in sets() {
        for n in 0..s.attest.len() {
            assert!(matches!(
                Quote::verify(&s.attest[..n], s.sig, s.akpub, &nonce(), &pcrs()),
                Err(QuoteError::Attest(_))
            ));
        }
        for n in 0..s.sig.len() {
            assert!(matches!(
                Quote::verify(s.attest, &s.sig[..n], s.akpub, &nonce(), &pcrs()),
                Err(QuoteError::Signature(_))
            ));
        }
        for n in 0..s.akpub.len() {
            assert!(Quote::verify(s.attest, s.sig, &s.akpub[..n], &nonce(), &pcrs()).is_err());
        }
        let mut long = s.attest.to_vec();
        long.push(0);
        assert!(matches!(
            Quote::verify(&long, s.sig, s.akpub, &nonce(), &pcrs()),
            Err(QuoteError::Attest(ParseError::Codec(
                crate::codec::CodecError::Trailing { count: 1, .. }
            )))
        ));
    }
}

/// A minimal quote TPMS_ATTEST with the given PCR selection bytes.
fn attest_with(select: &[u8]) -> Vec<u8> {
    let mut a = vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0, 0, 0, 0];
    a.extend([0u8; 17]); // clockInfo
    a.extend([0u8; 8]); // firmwareVersion
    a.extend(select);
    a.extend([0, 0]); // empty pcrDigest
    a
}

#[test]
fn malformed_attest_errors() {
    let ok = attest_with(&[0, 0, 0, 1, 0, 0x0b, 3, 0x83, 0, 0]);
    assert!(Attest::parse(&ok).is_ok());
    let cases: [(Vec<u8>, ParseError); 5] = [
        (
            attest_with(&[0, 0, 0, 17]),
            ParseError::TooLarge {
                offset: 35,
                what: "TPML_PCR_SELECTION.count",
                size: 17,
                max: 16,
            },
        ),
        (
            attest_with(&[0, 0, 0, 1, 0, 0x0b, 5, 0, 0, 0, 0, 0]),
            ParseError::TooLarge {
                offset: 41,
                what: "TPMS_PCR_SELECTION.sizeofSelect",
                size: 5,
                max: 4,
            },
        ),
        (
            attest_with(&[0, 0, 0, 1, 0, 0x0b, 4, 0, 0, 0, 1]),
            ParseError::PcrOutOfRange {
                offset: 42,
                pcr: 24,
            },
        ),
        (
            attest_with(&[0, 0, 0, 2, 0, 0x0b, 0, 0, 0x0b, 0]),
            ParseError::DuplicateBank {
                offset: 42,
                bank: HashAlg::Sha256,
            },
        ),
        (
            attest_with(&[0, 0, 0, 1, 0, 0x99, 0]),
            ParseError::UnsupportedAlgorithm {
                offset: 39,
                what: "TPMS_PCR_SELECTION.hash",
                alg: 0x99,
            },
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(Attest::parse(&bytes), Err(err));
    }
    let mut bad_magic = ok.clone();
    bad_magic[0] = 0;
    assert!(matches!(
        Attest::parse(&bad_magic),
        Err(ParseError::BadMagic { offset: 0, .. })
    ));
    let mut bad_safe = ok.clone();
    bad_safe[26] = 2;
    assert!(matches!(
        Attest::parse(&bad_safe),
        Err(ParseError::BadBool { offset: 26, .. })
    ));
    let mut other_type = ok.clone();
    other_type[5] = 0x14; // TPM_ST_ATTEST_SESSION_AUDIT
    assert!(matches!(
        Attest::parse(&other_type),
        Err(ParseError::UnsupportedAttestType { tag: 0x8014, .. })
    ));
    let mut big_name = ok;
    big_name[6..8].copy_from_slice(&67u16.to_be_bytes());
    assert!(matches!(
        Attest::parse(&big_name),
        Err(ParseError::TooLarge { size: 67, .. })
    ));
}

#[test]
fn certify_parses_but_is_not_a_quote() {
    let s = set!("ecc-p256");
    let mut a = vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x17, 0, 0, 0, 0];
    a.extend([0u8; 25]);
    a.extend([0, 2, 0, 0x0b, 0, 0]);
    let parsed = Attest::parse(&a).unwrap();
    assert_eq!(
        parsed.attested,
        Attested::Certify(CertifyInfo {
            name: vec![0, 0x0b],
            qualified_name: vec![]
        })
    );
    assert_eq!(parsed.attested.tag(), TPM_ST_ATTEST_CERTIFY);
    // Unsigned by this key, so the signature check fails first.
    assert_eq!(
        Quote::verify(&a, s.sig, s.akpub, &nonce(), &pcrs()),
        Err(QuoteError::BadSignature)
    );
}

#[test]
fn malformed_signature_and_public_errors() {
    assert!(matches!(
        Signature::parse(&[0, 0x05, 0, 0x0b]),
        Err(ParseError::UnsupportedAlgorithm { alg: 5, .. })
    ));
    assert_eq!(Signature::parse(&[0, 0x10]), Ok(Signature::Null));
    assert!(matches!(
        Signature::parse(&[0, 0x14, 0, 0x0b, 0x02, 0x01]),
        Err(ParseError::TooLarge { size: 513, .. })
    ));
    let s = set!("ecc-p256");
    let mut key = s.akpub.to_vec();
    key[9] |= 1; // reserved bit 0
    assert!(matches!(
        Public::parse(&key),
        Err(ParseError::ReservedAttributes { offset: 6, .. })
    ));
    let mut key = s.akpub.to_vec();
    key[3] = 0x25; // TPM_ALG_SYMCIPHER
    assert!(matches!(
        Public::parse(&key),
        Err(ParseError::UnsupportedAlgorithm { alg: 0x25, .. })
    ));
    // A point not on the curve.
    let mut key = s.akpub.to_vec();
    let last = key.len() - 1;
    key[last] ^= 1;
    assert_eq!(
        Quote::verify(s.attest, s.sig, &key, &nonce(), &pcrs()),
        Err(QuoteError::BadKey { what: "P-256" })
    );
}
