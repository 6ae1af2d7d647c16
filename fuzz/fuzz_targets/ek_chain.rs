#![no_main]
//! EK certificates from an untrusted TPM: the input is the EK certificate (DER), checked against
//! the committed swtpm local CA. Also feeds the PEM splitter. Must never panic.
use libfuzzer_sys::fuzz_target;

const ROOT: &[u8] = include_bytes!("../../policy/testdata/ek/swtpm/localca-root.der");
const INTERMEDIATE: &[u8] = include_bytes!("../../policy/testdata/ek/swtpm/localca-intermediate.der");

fuzz_target!(|data: &[u8]| {
    let _ = policy::ek::verify_ek_chain(data, &[INTERMEDIATE.to_vec()], &[ROOT.to_vec()], 1_800_000_000);
    let _ = policy::ek::pem_to_der(data);
});
