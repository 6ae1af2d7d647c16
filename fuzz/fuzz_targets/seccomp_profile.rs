#![no_main]
//! An OCI/Docker seccomp profile as `warrant seccomp compile` reads it: `policy::seccomp::parse`
//! (JSON, names, actions, operators, conflicts). Must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = policy::seccomp::parse(data) {
        let _ = (profile.allowed(), profile.denied());
    }
});
