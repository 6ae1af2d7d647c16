//! Hash algorithms of TPM 2.0 PCR banks (TPM 2.0 Part 2, `TPM_ALG_ID`, section 6.3) and the PCR
//! extend operation (TPM 2.0 Part 1, section 17.2: `PCR_new = H(PCR_old || digest)`).

use serde::{Serialize, Serializer};
use std::fmt;

/// A hash algorithm a PCR bank can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sm3_256,
}

impl HashAlg {
    /// Every algorithm Warrant can compute, in `TPM_ALG_ID` order.
    pub const ALL: [HashAlg; 5] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sm3_256,
    ];

    /// From a `TPM_ALG_ID`; `None` for algorithms that are not PCR hash algorithms here.
    pub fn from_tpm_alg_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(HashAlg::Sha1),
            0x000B => Some(HashAlg::Sha256),
            0x000C => Some(HashAlg::Sha384),
            0x000D => Some(HashAlg::Sha512),
            0x0012 => Some(HashAlg::Sm3_256),
            _ => None,
        }
    }

    /// The `TPM_ALG_ID` of this algorithm.
    pub fn tpm_alg_id(self) -> u16 {
        match self {
            HashAlg::Sha1 => 0x0004,
            HashAlg::Sha256 => 0x000B,
            HashAlg::Sha384 => 0x000C,
            HashAlg::Sha512 => 0x000D,
            HashAlg::Sm3_256 => 0x0012,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 | HashAlg::Sm3_256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The lowercase name used in Warrant's JSON and by tpm2-tools (`sha1`, `sha256`, ..., `sm3_256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Sm3_256 => "sm3_256",
        }
    }

    /// Parses [`HashAlg::name`] (and `sm3` as an alias of `sm3_256`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sm3" => Some(HashAlg::Sm3_256),
            _ => HashAlg::ALL.into_iter().find(|a| a.name() == name),
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        self.hash_parts(&[data])
    }

    /// `H(part0 || part1 || ...)` without concatenating.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha1::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts),
            HashAlg::Sm3_256 => run::<sm3::Sm3>(parts),
        }
    }

    /// A PCR of this bank after reset: all zeros.
    pub fn zero(self) -> Vec<u8> {
        vec![0; self.digest_len()]
    }

    /// `pcr := H(pcr || digest)`.
    pub fn extend(self, pcr: &mut Vec<u8>, digest: &[u8]) {
        *pcr = self.hash_parts(&[pcr, digest]);
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for HashAlg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_lengths_match_hashes() {
        for alg in HashAlg::ALL {
            assert_eq!(HashAlg::from_tpm_alg_id(alg.tpm_alg_id()), Some(alg));
            assert_eq!(HashAlg::from_name(alg.name()), Some(alg));
            assert_eq!(alg.hash(b"abc").len(), alg.digest_len());
        }
        assert_eq!(HashAlg::from_tpm_alg_id(0x0001), None); // TPM_ALG_RSA is not a hash
    }

    #[test]
    fn known_answers() {
        // FIPS 180-2 "abc" and GB/T 32905 "abc".
        assert_eq!(
            hex::encode(HashAlg::Sha1.hash(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(HashAlg::Sha256.hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(HashAlg::Sm3_256.hash(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn extend_is_hash_of_concatenation() {
        let mut pcr = HashAlg::Sha256.zero();
        let d = HashAlg::Sha256.hash(b"event");
        HashAlg::Sha256.extend(&mut pcr, &d);
        let mut cat = vec![0u8; 32];
        cat.extend_from_slice(&d);
        assert_eq!(pcr, HashAlg::Sha256.hash(&cat));
    }
}
