//! The kernel's names for file-digest algorithms, as IMA writes them in `d-ng` fields.
//!
//! IMA prefixes a file digest with `hash_algo_name[algo]` from `crypto/hash_info.c`, so these are
//! the kernel's crypto names (`sha256`, `sm3`, `sha3-256`), not TPM or Warrant names. The table is
//! data: one row per name with the digest size from `hash_digest_size[]`. A name that is not in it
//! is an error, never a guess, and a digest whose length disagrees with its row is an error too.

use crate::alg::HashAlg;

/// One row of `crypto/hash_info.c`: the name IMA prints and the digest size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashAlgo {
    pub name: &'static str,
    pub digest_len: usize,
    /// The TPM bank algorithm with the same function, when Warrant can compute it.
    pub hash_alg: Option<HashAlg>,
}

/// `hash_algo_name[]` / `hash_digest_size[]` (crypto/hash_info.c, Linux 6.x), plus `sm3-256`, the
/// name older kernels gave SM3 before it was renamed `sm3`.
pub const KERNEL_HASH_ALGOS: &[KernelHashAlgo] = &[
    row("md4", 16, None),
    row("md5", 16, None),
    row("sha1", 20, Some(HashAlg::Sha1)),
    row("rmd160", 20, None),
    row("sha256", 32, Some(HashAlg::Sha256)),
    row("sha384", 48, Some(HashAlg::Sha384)),
    row("sha512", 64, Some(HashAlg::Sha512)),
    row("sha224", 28, None),
    row("rmd128", 16, None),
    row("rmd256", 32, None),
    row("rmd320", 40, None),
    row("wp256", 32, None),
    row("wp384", 48, None),
    row("wp512", 64, None),
    row("tgr128", 16, None),
    row("tgr160", 20, None),
    row("tgr192", 24, None),
    row("sm3", 32, Some(HashAlg::Sm3_256)),
    row("sm3-256", 32, Some(HashAlg::Sm3_256)),
    row("streebog256", 32, None),
    row("streebog512", 64, None),
    row("sha3-256", 32, None),
    row("sha3-384", 48, None),
    row("sha3-512", 64, None),
    row("ascon-hash256", 32, None),
];

const fn row(name: &'static str, digest_len: usize, hash_alg: Option<HashAlg>) -> KernelHashAlgo {
    KernelHashAlgo {
        name,
        digest_len,
        hash_alg,
    }
}

/// Looks a kernel algorithm name up in [`KERNEL_HASH_ALGOS`] (exact, case-sensitive match: the
/// kernel never prints another spelling).
pub fn kernel_hash_algo(name: &[u8]) -> Option<&'static KernelHashAlgo> {
    KERNEL_HASH_ALGOS.iter().find(|a| a.name.as_bytes() == name)
}

/// The kernel name IMA uses for a TPM bank algorithm (`ima_calc_boot_aggregate` records the
/// boot aggregate under this name).
pub fn kernel_name(alg: HashAlg) -> &'static str {
    match alg {
        HashAlg::Sha1 => "sha1",
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
        HashAlg::Sm3_256 => "sm3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_agrees_with_hash_alg() {
        for a in KERNEL_HASH_ALGOS {
            if let Some(h) = a.hash_alg {
                assert_eq!(h.digest_len(), a.digest_len, "{}", a.name);
            }
        }
        for h in HashAlg::ALL {
            let row = kernel_hash_algo(kernel_name(h).as_bytes());
            assert_eq!(row.and_then(|r| r.hash_alg), Some(h));
        }
        assert!(kernel_hash_algo(b"SHA256").is_none());
        assert!(kernel_hash_algo(b"sm3_256").is_none());
        assert!(kernel_hash_algo(b"").is_none());
    }
}
