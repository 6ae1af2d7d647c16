#![no_main]
//! The text formats `warrant audit` reads from a node (kernel config, command line, mountinfo,
//! lockdown, LSM list, sysctl lines, sig_enforce, veritysetup status), each parser on the same input, then the
//! audit of every profile on what parsed. Must never panic.
use libfuzzer_sys::fuzz_target;
use policy::hardening::{
    audit, parse_lockdown, parse_lsm_list, parse_mountinfo, parse_sig_enforce,
    parse_sysctl_lines, parse_veritysetup_status, profiles, Cmdline, ExpectedRootHash,
    KernelConfig, NodeState, RootBacking,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cmdline = Cmdline::parse(text).ok();
    let state = NodeState {
        kconfig: KernelConfig::parse(text).ok(),
        root: parse_veritysetup_status(text).ok().map(RootBacking::Verity),
        expected_root_hash: cmdline
            .as_ref()
            .and_then(ExpectedRootHash::from_cmdline)
            .and_then(Result::ok),
        cmdline,
        sysctls: parse_sysctl_lines(text).ok(),
        mounts: parse_mountinfo(text).ok(),
        lockdown: parse_lockdown(text).ok(),
        module_sig_enforce: parse_sig_enforce(text).ok(),
        lsms: parse_lsm_list(text).ok(),
    };
    for p in profiles() {
        let report = audit(&p, &state);
        assert_eq!(report.results.len(), p.checks.len());
    }
});
