#![no_main]
//! `TPM2_MakeCredential` done by the verifier (`measure::tpm2::credential::make_credential`) on
//! the EK public area and AK name a node sent. Input: `n` (one byte), then the EK public area
//! (`TPM2B_PUBLIC` or `TPMT_PUBLIC`), then the AK name as the last `n` bytes. The generator is
//! deterministic so that a crash reproduces. Must never panic.
use libfuzzer_sys::fuzz_target;
use measure::tpm2::credential::{make_credential, rand_core};

/// A counter, not a random generator: reproducible runs, never real credentials.
struct CounterRng(u64);

impl rand_core::RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for CounterRng {}

fuzz_target!(|data: &[u8]| {
    let [n, rest @ ..] = data else { return };
    let name_len = usize::from(*n).min(rest.len());
    let (ek, name) = rest.split_at(rest.len() - name_len);
    let mut rng = CounterRng(0);
    let _ = make_credential(ek, name, &[1u8; 32], &mut rng);
});
