#![no_main]
//! Reference-values documents (`policy::refvalues`, JSON) as an operator or a policy store hands
//! them to the verifier: `ReferenceValues::from_json`. A document that parses must print
//! (`to_json_pretty`) to one that parses again to an equal value, and print identically: the
//! verifier stores and serves the printed form, so a lossy round trip would change a policy
//! silently. Must never panic otherwise.
use libfuzzer_sys::fuzz_target;
use policy::refvalues::ReferenceValues;

fuzz_target!(|data: &[u8]| {
    let Ok(refs) = ReferenceValues::from_json(data) else {
        return;
    };
    let printed = refs.to_json_pretty();
    let again = match ReferenceValues::from_json(printed.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("printed reference values do not parse: {e}\n{printed}"),
    };
    assert_eq!(refs, again, "round trip changed the value:\n{printed}");
    assert_eq!(printed, again.to_json_pretty(), "printing is not stable");
});
