//! The swtpm harness itself: two TPMs at once, each answering tpm2-tools on its own ports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code
use tests::swtpm::Swtpm;

#[test]
fn two_software_tpms_run_side_by_side() {
    let a = Swtpm::start().unwrap();
    let b = Swtpm::start().unwrap();
    assert_ne!(a.tcti(), b.tcti());
    for tpm in [&a, &b] {
        let out = std::process::Command::new("tpm2_pcrread")
            .args(["-T", &tpm.tcti(), "sha256:0"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains("0x0000000000000000000000000000000000000000000000000000000000000000"));
    }
    let dir = a.dir().to_path_buf();
    drop(a);
    assert!(!dir.exists(), "state removed on drop");
}
