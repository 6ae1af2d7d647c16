//! The tables of checks and the profiles built from them.
//!
//! Rows are x86_64. Where the KSPP wiki and kernel-hardening-checker disagree on a value we take
//! the stricter one and say so in the reason. Kernel config names are the ones of current
//! kernels (6.x); a kernel old enough to use another name fails the row with `absent`, which is
//! the honest answer ("this kernel does not have the protection under this name").
//!
//! References, read for this table and not copied:
//! - KSPP: kernsec.org wiki, "Kernel Self Protection Project/Recommended Settings" (x86_64
//!   kconfig, command line and sysctl sections), and a13xp0p0v/kernel-hardening-checker
//!   `kernel_hardening_checker/checks.py` (rows with decision `kspp`).
//! - kubelet: kubernetes/kubernetes `pkg/kubelet/cm/container_manager_linux.go`
//!   (`setupKernelTunables`, the `desiredState` map checked when `protectKernelDefaults` is
//!   true) and `component-helpers/node/util/sysctl` (the values).
//! - Talos: siderolabs/talos `pkg/kernel/kspp/kspp.go` (`RequiredKSPPKernelParameters`,
//!   `GetKernelParams`), at commit 0b129f9efdf57dd9692f7cece6b97719a7ccf80e.
//! - CIS: CIS Distribution Independent Linux Benchmark, sections 1.1 (filesystem
//!   configuration) and 3.x (network parameters).

use super::{Check, Expect, Kind, Source, FALSY};

const KSPP: &str = "kernsec.org wiki, Recommended Settings, x86_64";
const KHC: &str = "kernel-hardening-checker checks.py";
const CIS_FS: &str = "CIS Linux 1.1 filesystem configuration";
const CIS_NET: &str = "CIS Linux 3.x network parameters";
const KUBELET: &str = "kubelet container_manager_linux.go setupKernelTunables";
const TALOS: &str = "talos pkg/kernel/kspp/kspp.go";

macro_rules! row {
    ($kind:ident, $prefix:literal, $key:literal, $expect:expr, $src:ident, $ref:expr, $why:literal) => {
        Check {
            id: concat!($prefix, ".", $key),
            kind: Kind::$kind,
            key: $key,
            expect: $expect,
            source: Source::$src,
            reference: $ref,
            reason: $why,
        }
    };
}
macro_rules! kc {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Kconfig, "kconfig", $key, $e, $src, $ref, $why)
    };
}
macro_rules! cl {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Cmdline, "cmdline", $key, $e, $src, $ref, $why)
    };
}
macro_rules! sc {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Sysctl, "sysctl", $key, $e, $src, $ref, $why)
    };
}
macro_rules! mt {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Mount, "mount", $key, $e, $src, $ref, $why)
    };
}
macro_rules! vr {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Verity, "verity", $key, $e, $src, $ref, $why)
    };
}
macro_rules! ls {
    ($key:literal, $e:expr, $src:ident, $ref:expr, $why:literal) => {
        row!(Lsm, "lsm", $key, $e, $src, $ref, $why)
    };
}

use Expect::*;

const Y: Expect = Equals("y");

/// Kernel build options (x86_64).
#[rustfmt::skip]
pub static KCONFIG: &[Check] = &[
    kc!("CONFIG_BUG", Y, Kspp, KSPP, "Report BUG() conditions and kill the offending process instead of continuing in a corrupted state."),
    kc!("CONFIG_STRICT_KERNEL_RWX", Y, Kspp, KSPP, "Kernel text is read-only and data non-executable, so code cannot be patched or injected in place."),
    kc!("CONFIG_STRICT_MODULE_RWX", Y, Kspp, KSPP, "The same W^X protection for loadable modules."),
    kc!("CONFIG_DEBUG_WX", Y, Kspp, KSPP, "Warn at boot about any memory mapping that is both writable and executable."),
    kc!("CONFIG_STACKPROTECTOR_STRONG", Y, Kspp, KSPP, "Stack canaries in every function with local arrays or address-taken locals catch stack overflows."),
    kc!("CONFIG_RANDOMIZE_BASE", Y, Kspp, KSPP, "KASLR: the kernel image is loaded at a random address, so exploits cannot hard-code it."),
    kc!("CONFIG_RANDOMIZE_MEMORY", Y, Kspp, KSPP, "Randomise the direct map, vmalloc and vmemmap regions as well."),
    kc!("CONFIG_VMAP_STACK", Y, Kspp, KSPP, "Kernel stacks in vmalloc space with guard pages turn stack overflows into clean faults."),
    kc!("CONFIG_SLAB_FREELIST_HARDENED", Y, Kspp, KSPP, "Obfuscate and check slab freelist pointers against freelist corruption."),
    kc!("CONFIG_SLAB_FREELIST_RANDOM", Y, Kspp, KSPP, "Randomise the order of slab allocations so heap layouts are harder to groom."),
    kc!("CONFIG_SHUFFLE_PAGE_ALLOCATOR", Y, Kspp, KSPP, "Randomise the page allocator's free lists."),
    kc!("CONFIG_SLAB_MERGE_DEFAULT", NotSet, Kspp, KSPP, "Do not merge slab caches of similar size, so an overflow in one cache cannot reach objects of another."),
    kc!("CONFIG_HARDENED_USERCOPY", Y, Kspp, KSPP, "Bounds-check copies between kernel and user memory against the object's size."),
    kc!("CONFIG_FORTIFY_SOURCE", Y, Kspp, KSPP, "Compile-time and run-time bounds checks on string and memory functions."),
    kc!("CONFIG_INIT_ON_ALLOC_DEFAULT_ON", Y, Kspp, KSPP, "Zero heap and page allocations, so stale data cannot leak or be used uninitialised."),
    kc!("CONFIG_INIT_ON_FREE_DEFAULT_ON", Y, Kspp, KSPP, "Wipe memory when it is freed, limiting use-after-free and information leaks."),
    kc!("CONFIG_INIT_STACK_ALL_ZERO", Y, Kspp, KSPP, "Zero-initialise every stack variable, removing uninitialised-stack leaks and bugs."),
    kc!("CONFIG_BUG_ON_DATA_CORRUPTION", Y, Kspp, KSPP, "Turn detected corruption of kernel data structures into a BUG rather than a warning."),
    kc!("CONFIG_LIST_HARDENED", Y, Kspp, KSPP, "Check linked-list pointers on every manipulation (kernel 6.6+; DEBUG_LIST on older kernels)."),
    kc!("CONFIG_DEBUG_SG", Y, Kspp, KSPP, "Check scatter-gather lists for corruption."),
    kc!("CONFIG_SCHED_STACK_END_CHECK", Y, Kspp, KSPP, "Check for a smashed stack end marker at every schedule()."),
    kc!("CONFIG_RANDOMIZE_KSTACK_OFFSET_DEFAULT", Y, Kspp, KSPP, "Randomise the kernel stack offset on each system call."),
    kc!("CONFIG_DEFAULT_MMAP_MIN_ADDR", AtLeast(65536), Kspp, KSPP, "Forbid mapping the lowest 64 KiB so kernel NULL-pointer dereferences cannot be exploited."),
    kc!("CONFIG_SECURITY", Y, Kspp, KSPP, "LSM support, needed by Yama, Landlock, lockdown and MAC."),
    kc!("CONFIG_SECURITY_YAMA", Y, Kspp, KSPP, "Yama restricts ptrace to descendants or to the administrator."),
    kc!("CONFIG_SECURITY_LANDLOCK", Y, Kspp, KSPP, "Landlock lets unprivileged processes (including Warrant's agent) confine their own file access."),
    kc!("CONFIG_SECURITY_LOCKDOWN_LSM", Y, Kspp, KSPP, "The lockdown LSM stops root from modifying or reading the running kernel."),
    kc!("CONFIG_SECURITY_LOCKDOWN_LSM_EARLY", Y, Kspp, KSPP, "Start lockdown before other LSMs so it covers early boot."),
    kc!("CONFIG_SECURITY_DMESG_RESTRICT", Y, Kspp, KSPP, "Only privileged users read the kernel log, which leaks addresses."),
    kc!("CONFIG_SECCOMP", Y, Kspp, KSPP, "Seccomp lets processes (and container runtimes) restrict their system calls."),
    kc!("CONFIG_SECCOMP_FILTER", Y, Kspp, KSPP, "BPF seccomp filters, used by container runtimes' default profiles."),
    kc!("CONFIG_MODULE_SIG", Y, Kspp, KSPP, "Modules carry signatures the kernel can verify."),
    kc!("CONFIG_MODULE_SIG_ALL", Y, Kspp, KSPP, "Sign every module at build time."),
    kc!("CONFIG_MODULE_SIG_SHA512", Y, Kspp, KSPP, "Sign modules with SHA-512."),
    kc!("CONFIG_MODULE_SIG_FORCE", Y, Kspp, KSPP, "Refuse unsigned modules regardless of boot parameters or lockdown."),
    kc!("CONFIG_BPF_UNPRIV_DEFAULT_OFF", Y, Kspp, KSPP, "Unprivileged BPF is off from boot (kernel.unprivileged_bpf_disabled=2)."),
    kc!("CONFIG_STRICT_DEVMEM", Y, Kspp, KSPP, "/dev/mem cannot read or write kernel RAM."),
    kc!("CONFIG_IO_STRICT_DEVMEM", Y, Kspp, KSPP, "/dev/mem cannot touch I/O regions claimed by drivers either."),
    kc!("CONFIG_ACPI_CUSTOM_METHOD", NotSet, Kspp, KSPP, "No interface to inject ACPI methods, which can write kernel memory."),
    kc!("CONFIG_COMPAT_BRK", NotSet, Kspp, KSPP, "Keep brk randomisation (compat with ancient libc only)."),
    kc!("CONFIG_DEVKMEM", NotSet, Kspp, KSPP, "No /dev/kmem, a direct window into kernel memory."),
    kc!("CONFIG_PROC_KCORE", NotSet, Kspp, KSPP, "No /proc/kcore, a readable image of kernel memory."),
    kc!("CONFIG_LEGACY_PTYS", NotSet, Kspp, KSPP, "No legacy BSD PTYs, an unneeded attack surface."),
    kc!("CONFIG_HIBERNATION", NotSet, Kspp, KSPP, "No hibernation, whose image can be tampered with to replace the kernel."),
    kc!("CONFIG_KEXEC", NotSet, Kspp, KSPP, "No kexec_load, which replaces the running kernel with arbitrary code."),
    kc!("CONFIG_BINFMT_MISC", NotSet, Kspp, KSPP, "No binfmt_misc, which lets an interpreter be injected for arbitrary file formats."),
    kc!("CONFIG_X86_X32_ABI", NotSet, Kspp, KSPP, "No x32 ABI, a rarely used and rarely tested system-call surface."),
    kc!("CONFIG_MODIFY_LDT_SYSCALL", NotSet, Kspp, KSPP, "No modify_ldt, a historical source of kernel exploits."),
    kc!("CONFIG_LEGACY_VSYSCALL_NONE", Y, Kspp, KSPP, "No vsyscall page, a fixed-address target for ROP."),
    kc!("CONFIG_LDISC_AUTOLOAD", NotSet, Kspp, KSPP, "Unprivileged users cannot autoload TTY line disciplines, a common exploit vector."),
    kc!("CONFIG_LEGACY_TIOCSTI", NotSet, Kspp, KSPP, "No TIOCSTI, which lets a process inject input into another's terminal."),
    kc!("CONFIG_STATIC_USERMODEHELPER", Y, Kspp, KSPP, "Route every kernel-spawned helper through one fixed binary, so a corrupted path cannot run an attacker's program."),
    kc!("CONFIG_EFI_DISABLE_PCI_DMA", Y, Kspp, KSPP, "Disable PCI bus mastering during EFI boot, closing a DMA window before the IOMMU is set up."),
    kc!("CONFIG_RESET_ATTACK_MITIGATION", Y, Kspp, KSPP, "Ask the firmware to wipe RAM after an unclean reboot, against cold-boot secret theft."),
    kc!("CONFIG_UBSAN_BOUNDS", Y, Kspp, KSPP, "Trap out-of-bounds array accesses at run time."),
    kc!("CONFIG_KFENCE", Y, Kspp, KSPP, "Sampling detector for heap out-of-bounds and use-after-free in production."),
    kc!("CONFIG_X86_KERNEL_IBT", Y, Kspp, KSPP, "Indirect Branch Tracking makes the CPU reject indirect jumps to non-entry points."),
    kc!("CONFIG_INTEL_IOMMU_DEFAULT_ON", Y, Kspp, KSPP, "Enable the Intel IOMMU by default so devices cannot DMA into arbitrary memory."),
    kc!("CONFIG_IOMMU_DEFAULT_DMA_STRICT", Y, Kspp, KSPP, "Invalidate IOMMU mappings synchronously, leaving no window for a device to use stale mappings."),
    kc!("CONFIG_KEXEC_FILE", NotSet, KernelHardeningChecker, KHC, "No kexec_file_load either: even signed kexec replaces the attested kernel without a reboot measurement."),
    kc!("CONFIG_DEBUG_FS", NotSet, KernelHardeningChecker, KHC, "No debugfs, a large interface that exposes kernel internals."),
];

/// Kernel command-line parameters (x86_64).
#[rustfmt::skip]
pub static CMDLINE: &[Check] = &[
    cl!("slab_nomerge", Present, Kspp, KSPP, "Do not merge slab caches, even if the kernel config allows it (also required by Talos)."),
    cl!("pti", Equals("on"), Kspp, KSPP, "Always isolate kernel page tables (Meltdown), even on CPUs that claim not to need it (also required by Talos)."),
    cl!("init_on_alloc", NoneOf(FALSY), Kspp, KSPP, "Do not turn off zeroing of allocations."),
    cl!("init_on_free", NoneOf(FALSY), Kspp, KSPP, "Do not turn off wiping of freed memory."),
    cl!("randomize_kstack_offset", NoneOf(FALSY), Kspp, KSPP, "Do not turn off per-syscall stack offset randomisation."),
    cl!("hardened_usercopy", NoneOf(FALSY), Kspp, KSPP, "Do not turn off user-copy bounds checks."),
    cl!("page_alloc.shuffle", OneOf(&["1", "on", "y", "yes", "true"]), Kspp, KSPP, "Turn on page allocator randomisation, which is off by default even when built in."),
    cl!("iommu.passthrough", NoneOf(&["1", "on", "y", "yes", "true"]), Kspp, KSPP, "Keep DMA translated by the IOMMU instead of passed through."),
    cl!("iommu.strict", NoneOf(FALSY), Kspp, KSPP, "Keep synchronous IOMMU invalidation."),
    cl!("mitigations", Equals("auto,nosmt"), Kspp, KSPP, "Enable all CPU vulnerability mitigations and disable SMT where it leaks between threads."),
    cl!("vsyscall", NoneOf(&["emulate", "xonly"]), Kspp, KSPP, "No vsyscall page at a fixed address."),
    cl!("nokaslr", Absent, KernelHardeningChecker, KHC, "Do not disable kernel address randomisation."),
    cl!("nopti", Absent, KernelHardeningChecker, KHC, "Do not disable page table isolation."),
    cl!("nosmep", Absent, KernelHardeningChecker, KHC, "Do not let the kernel execute user memory."),
    cl!("nosmap", Absent, KernelHardeningChecker, KHC, "Do not let the kernel access user memory freely."),
    cl!("nospectre_v1", Absent, KernelHardeningChecker, KHC, "Do not disable Spectre v1 mitigations."),
    cl!("nospectre_v2", Absent, KernelHardeningChecker, KHC, "Do not disable Spectre v2 mitigations."),
    cl!("norandmaps", Absent, KernelHardeningChecker, KHC, "Do not disable user-space address randomisation."),
    cl!("tsx", NoneOf(&["on", "auto"]), KernelHardeningChecker, KHC, "Keep Intel TSX off, the channel for TAA and other speculative attacks."),
    cl!("sysrq_always_enabled", Absent, KernelHardeningChecker, KHC, "Do not force every magic SysRq function on."),
];

/// Sysctls.
#[rustfmt::skip]
pub static SYSCTL: &[Check] = &[
    sc!("kernel.kptr_restrict", AtLeast(2), Kspp, KSPP, "Hide kernel addresses in /proc and logs from everyone, root included."),
    sc!("kernel.dmesg_restrict", Equals("1"), Kspp, KSPP, "Only privileged users read the kernel log."),
    sc!("kernel.perf_event_paranoid", AtLeast(3), Kspp, KSPP, "Deny perf events to unprivileged users (3 where the kernel supports it; perf is a rich attack surface)."),
    sc!("kernel.kexec_load_disabled", Equals("1"), Kspp, KSPP, "Disable kexec until reboot, so the attested kernel cannot be swapped at run time."),
    sc!("kernel.unprivileged_bpf_disabled", Equals("1"), Kspp, KSPP, "Only privileged processes may load BPF programs, and this cannot be undone until reboot (2 can be)."),
    sc!("net.core.bpf_jit_harden", Equals("2"), Kspp, KSPP, "Blind constants in JIT-compiled BPF for every user, against JIT spraying."),
    sc!("dev.tty.ldisc_autoload", Equals("0"), Kspp, KSPP, "Unprivileged users cannot autoload TTY line disciplines."),
    sc!("dev.tty.legacy_tiocsti", Equals("0"), Kspp, KSPP, "No TIOCSTI terminal input injection."),
    sc!("vm.unprivileged_userfaultfd", Equals("0"), Kspp, KSPP, "Unprivileged userfaultfd lets exploits stall the kernel at a chosen page fault."),
    sc!("user.max_user_namespaces", Equals("0"), Kspp, KSPP, "No user namespaces: they expose root-only kernel code to unprivileged users."),
    sc!("kernel.yama.ptrace_scope", Equals("3"), Kspp, KSPP, "No process may ptrace another."),
    sc!("kernel.modules_disabled", Equals("1"), Kspp, KSPP, "No module loading after boot."),
    sc!("fs.protected_symlinks", Equals("1"), Kspp, KSPP, "Symlinks in sticky world-writable directories are followed only by their owner."),
    sc!("fs.protected_hardlinks", Equals("1"), Kspp, KSPP, "Users cannot hard-link files they do not own."),
    sc!("fs.protected_fifos", Equals("2"), Kspp, KSPP, "No opening of others' FIFOs in sticky directories, against /tmp spoofing."),
    sc!("fs.protected_regular", Equals("2"), Kspp, KSPP, "No opening of others' regular files in sticky directories with O_CREAT."),
    sc!("fs.suid_dumpable", Equals("0"), Kspp, KSPP, "Setuid programs do not dump core, which could leak secrets."),
    sc!("kernel.randomize_va_space", Equals("2"), Kspp, KSPP, "Full user-space address randomisation, including brk."),
    sc!("vm.mmap_min_addr", AtLeast(65536), Kspp, "KSPP CONFIG_DEFAULT_MMAP_MIN_ADDR, checked at run time", "Forbid mapping the lowest 64 KiB (NULL-pointer dereference exploits)."),
    sc!("kernel.sysrq", Equals("0"), KernelHardeningChecker, KHC, "No magic SysRq functions from the keyboard or /proc/sysrq-trigger."),
    sc!("kernel.oops_limit", InRange(1, 100), KernelHardeningChecker, KHC, "Panic after a bounded number of oopses (0 means never), so an exploit cannot retry forever."),
    sc!("kernel.warn_limit", InRange(1, 100), KernelHardeningChecker, KHC, "Panic after a bounded number of warnings (0 means never), for the same reason."),
    sc!("net.ipv4.ip_forward", Equals("0"), Cis, CIS_NET, "A host that is not a router does not forward packets."),
    sc!("net.ipv4.conf.all.send_redirects", Equals("0"), Cis, CIS_NET, "A host that is not a router sends no ICMP redirects."),
    sc!("net.ipv4.conf.all.accept_redirects", Equals("0"), Cis, CIS_NET, "Ignore ICMP redirects, which can reroute traffic through an attacker."),
    sc!("net.ipv4.conf.default.accept_redirects", Equals("0"), Cis, CIS_NET, "The same for interfaces created later."),
    sc!("net.ipv6.conf.all.accept_redirects", Equals("0"), Cis, CIS_NET, "Ignore IPv6 redirects as well."),
    sc!("net.ipv4.conf.all.accept_source_route", Equals("0"), Cis, CIS_NET, "Refuse source-routed packets, which bypass routing policy."),
    sc!("net.ipv4.conf.all.rp_filter", Equals("1"), Cis, CIS_NET, "Strict reverse-path filtering drops spoofed source addresses."),
    sc!("net.ipv4.tcp_syncookies", Equals("1"), Cis, CIS_NET, "SYN cookies keep the host reachable under a SYN flood."),
    sc!("net.ipv4.icmp_echo_ignore_broadcasts", Equals("1"), Cis, CIS_NET, "Do not answer broadcast pings (smurf amplification)."),
];

const NOSUID_NODEV_NOEXEC: &[&str] = &["nosuid", "nodev", "noexec"];

/// Mount options.
#[rustfmt::skip]
pub static MOUNT: &[Check] = &[
    mt!("/", Includes(&["ro"]), Talos, "Talos immutable root; Warrant dm-verity root", "The root filesystem is read-only (on Warrant nodes a dm-verity device whose root hash is attested), so the OS cannot be modified at run time."),
    mt!("/tmp", Includes(NOSUID_NODEV_NOEXEC), Cis, CIS_FS, "World-writable scratch space must not host setuid programs, device nodes or executables."),
    mt!("/dev/shm", Includes(NOSUID_NODEV_NOEXEC), Cis, CIS_FS, "Shared memory is world-writable: no setuid programs, device nodes or executables there."),
    mt!("/run", Includes(&["nosuid", "nodev"]), Cis, CIS_FS, "Runtime state holds no setuid programs or device nodes (exec is left on: some services run helpers from /run)."),
    mt!("/proc", Includes(NOSUID_NODEV_NOEXEC), Cis, CIS_FS, "procfs holds no setuid programs, devices or executables."),
    mt!("/sys", Includes(NOSUID_NODEV_NOEXEC), Cis, CIS_FS, "sysfs holds no setuid programs, devices or executables."),
    mt!("/dev", Includes(&["nosuid"]), Cis, CIS_FS, "No setuid programs on /dev."),
];

/// What backs the root file system.
#[rustfmt::skip]
pub static VERITY: &[Check] = &[
    vr!("/", VerityRootHash, Warrant, "docs/verity.md; systemd-veritysetup-generator roothash=", "The root is an active dm-verity device that has met no corrupted block and whose root hash is the expected one: every block read is checked against the hash the measured boot names, so an offline change to the OS image cannot be read back."),
];

/// LSM state: lockdown, module signatures, active LSMs.
#[rustfmt::skip]
pub static LSM: &[Check] = &[
    ls!("lockdown", OneOf(&["integrity", "confidentiality"]), Kspp, KSPP, "Kernel lockdown stops root from modifying the running kernel (integrity) or also reading its memory (confidentiality)."),
    ls!("module.sig_enforce", Equals("1"), Kspp, KSPP, "The kernel refuses modules that are not signed by a trusted key."),
    ls!("lsm", Includes(&["lockdown", "yama", "landlock"]), Kspp, KSPP, "The lockdown, Yama and Landlock LSMs are active, not merely built."),
];

/// What kubelet checks with `protectKernelDefaults: true` (it refuses to start otherwise).
#[rustfmt::skip]
pub static KUBELET_ROWS: &[Check] = &[
    sc!("vm.overcommit_memory", Equals("1"), Kubelet, KUBELET, "Kubelet expects memory overcommit always on, so allocation failures surface as OOM kills it accounts for."),
    sc!("vm.panic_on_oom", Equals("0"), Kubelet, KUBELET, "On OOM the kernel kills a process (chosen by the pod's QoS) rather than panicking the node."),
    sc!("kernel.panic", Equals("10"), Kubelet, KUBELET, "Reboot 10 seconds after a panic so the node comes back."),
    sc!("kernel.panic_on_oops", Equals("1"), Kubelet, KUBELET, "Panic on an oops instead of running on with a damaged kernel."),
    sc!("kernel.keys.root_maxkeys", Equals("1000000"), Kubelet, KUBELET, "Room for one session keyring per container."),
    sc!("kernel.keys.root_maxbytes", Equals("25000000"), Kubelet, KUBELET, "Room for the bytes of those keyrings (25 per key)."),
];

/// What Talos enforces (command line at boot, sysctls it sets).
#[rustfmt::skip]
pub static TALOS_ROWS: &[Check] = &[
    cl!("slab_nomerge", Present, Talos, TALOS, "Talos refuses to boot without it: no slab cache merging."),
    cl!("pti", Equals("on"), Talos, TALOS, "Talos refuses to boot without it: page table isolation always on."),
    sc!("dev.tty.ldisc_autoload", Equals("0"), Talos, TALOS, "No autoloading of TTY line disciplines."),
    sc!("dev.tty.legacy_tiocsti", Equals("0"), Talos, TALOS, "No TIOCSTI terminal input injection."),
    sc!("fs.protected_symlinks", Equals("1"), Talos, TALOS, "Protected symlinks in sticky directories."),
    sc!("fs.protected_hardlinks", Equals("1"), Talos, TALOS, "Protected hard links."),
    sc!("fs.protected_fifos", Equals("2"), Talos, TALOS, "Protected FIFOs in sticky directories."),
    sc!("fs.protected_regular", Equals("2"), Talos, TALOS, "Protected regular files in sticky directories."),
    sc!("fs.suid_dumpable", Equals("0"), Talos, TALOS, "No core dumps of setuid programs."),
    sc!("kernel.kptr_restrict", Equals("2"), Talos, TALOS, "Kernel pointers hidden from everyone."),
    sc!("kernel.dmesg_restrict", Equals("1"), Talos, TALOS, "Kernel log for privileged users only."),
    sc!("kernel.perf_event_paranoid", Equals("3"), Talos, TALOS, "No perf events for unprivileged users."),
    sc!("kernel.randomize_va_space", Equals("2"), Talos, TALOS, "Full address-space randomisation."),
    sc!("kernel.yama.ptrace_scope", AtLeast(2), Talos, TALOS, "ptrace for CAP_SYS_PTRACE only (Talos sets 2 because 3 breaks pods with user namespaces; 3 is stricter and passes)."),
    sc!("user.max_user_namespaces", Equals("0"), Talos, TALOS, "No user namespaces (at the Talos commit read; later releases may allow them)."),
    sc!("kernel.unprivileged_bpf_disabled", Equals("1"), Talos, TALOS, "BPF for privileged processes only."),
    sc!("net.core.bpf_jit_harden", Equals("2"), Talos, TALOS, "BPF JIT constant blinding for everyone (Talos runs Cilium with it)."),
    mt!("/", Includes(&["ro"]), Talos, "Talos immutable squashfs root", "Talos runs from a read-only squashfs root."),
];

/// How a profile differs from `kspp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChange {
    /// The `kspp` row is not checked.
    Dropped {
        /// The row's id.
        id: &'static str,
        /// Why it breaks a working node.
        why: &'static str,
    },
    /// The `kspp` row is checked with a weaker expectation, and this reason.
    Relaxed {
        /// The row's id.
        id: &'static str,
        /// What is expected instead.
        expect: Expect,
        /// Why.
        why: &'static str,
    },
    /// A row `kspp` does not have.
    Added {
        /// The row's id.
        id: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// The `kubernetes-node` profile's departures from `kspp` (the kubelet rows are listed as
/// [`ProfileChange::Added`] when the profile is built).
#[rustfmt::skip]
pub static KUBERNETES_CHANGES: &[ProfileChange] = &[
    ProfileChange::Dropped { id: "sysctl.user.max_user_namespaces", why: "Pods with `hostUsers: false` (user namespaces, KEP-127), rootless BuildKit and some sandboxed runtimes need user namespaces; seccomp and AppArmor confine their use instead." },
    ProfileChange::Dropped { id: "sysctl.kernel.modules_disabled", why: "kube-proxy, CNI plugins and CSI drivers load modules after boot (`br_netfilter`, `ip_vs`, `nf_conntrack`, `xt_*`, `overlay`, `iscsi_tcp`); module signature enforcement and lockdown limit which modules can load." },
    ProfileChange::Dropped { id: "kconfig.CONFIG_STATIC_USERMODEHELPER", why: "Needs a userspace dispatcher no distribution ships; without it request_module() (the kernel loading netfilter modules for kube-proxy) and core-dump pipes stop working." },
    ProfileChange::Dropped { id: "sysctl.net.ipv4.conf.all.rp_filter", why: "Strict reverse-path filtering drops the asymmetric traffic of Cilium, Calico and kube-proxy IPVS; CNIs set their own per-interface value." },
    ProfileChange::Relaxed { id: "sysctl.net.ipv4.ip_forward", expect: Expect::Equals("1"), why: "A Kubernetes node routes pod traffic: kubelet's network plugins require IP forwarding on." },
    ProfileChange::Dropped { id: "sysctl.net.ipv4.conf.all.send_redirects", why: "A node is a router for its pods; bridge CNIs (flannel, kubenet) leave redirects on and the kernel default is 1." },
    ProfileChange::Relaxed { id: "sysctl.kernel.yama.ptrace_scope", expect: Expect::AtLeast(1), why: "3 breaks pods with user namespaces (as Talos notes); 1 or 2 still stops cross-process ptrace by unrelated processes." },
    ProfileChange::Relaxed { id: "cmdline.mitigations", expect: Expect::NoneOf(&["off"]), why: "`nosmt` halves a node's schedulable CPUs; the mitigations themselves stay on (`auto` is the default), only turning them off fails." },
    ProfileChange::Dropped { id: "kconfig.CONFIG_BINFMT_MISC", why: "Multi-architecture image builds (QEMU user emulation) on build nodes register interpreters through binfmt_misc, and distribution kernels build it." },
];

/// A named list of checks. `checks` is the evaluation order; `changes` says how the profile
/// departs from `kspp` (empty for `kspp` itself and for `talos`, which is its own list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `kspp`, `kubernetes-node` or `talos`.
    pub name: &'static str,
    /// One paragraph for humans.
    pub description: &'static str,
    /// The checks, in report order. Ids are unique within a profile.
    pub checks: Vec<Check>,
    /// How it departs from `kspp`.
    pub changes: Vec<ProfileChange>,
}

/// The names of the built-in profiles, in documentation order.
pub const PROFILE_NAMES: [&str; 3] = ["kspp", "kubernetes-node", "talos"];

fn base() -> impl Iterator<Item = &'static Check> {
    KCONFIG
        .iter()
        .chain(CMDLINE)
        .chain(SYSCTL)
        .chain(MOUNT)
        .chain(LSM)
        .chain(VERITY)
}

/// A built-in profile by name (`kspp`, `kubernetes-node`, `talos`); `None` for another name.
pub fn profile(name: &str) -> Option<Profile> {
    match name {
        "kspp" => Some(Profile {
            name: "kspp",
            description:
                "Warrant's recommendations: every KSPP row for x86_64, plus CIS mount and \
                network rows and a few kernel-hardening-checker rows. Strict: a general-purpose \
                Kubernetes node will not pass it (see `kubernetes-node`).",
            checks: base().copied().collect(),
            changes: Vec::new(),
        }),
        "kubernetes-node" => {
            let mut checks = Vec::new();
            for c in base() {
                let change = KUBERNETES_CHANGES.iter().find(|ch| match ch {
                    ProfileChange::Dropped { id, .. } | ProfileChange::Relaxed { id, .. } => {
                        *id == c.id
                    }
                    ProfileChange::Added { .. } => false,
                });
                match change {
                    Some(ProfileChange::Dropped { .. }) => {}
                    Some(ProfileChange::Relaxed { expect, why, .. }) => checks.push(Check {
                        expect: *expect,
                        reason: why,
                        ..*c
                    }),
                    _ => checks.push(*c),
                }
            }
            let mut changes: Vec<ProfileChange> = KUBERNETES_CHANGES.to_vec();
            for k in KUBELET_ROWS {
                checks.push(*k);
                changes.push(ProfileChange::Added {
                    id: k.id,
                    why: "kubelet `protectKernelDefaults: true` refuses to start unless it holds.",
                });
            }
            Some(Profile {
                name: "kubernetes-node",
                description:
                    "`kspp` minus what breaks a working Kubernetes node, plus the sysctls \
                    kubelet's `protectKernelDefaults` requires. This is the profile Warrant \
                    recommends for nodes. Kept on purpose: `net.core.bpf_jit_harden=2` (Cilium \
                    and Calico eBPF run with it, as on Talos, at some cost in JIT-compiled \
                    program speed), `kernel.unprivileged_bpf_disabled=1` (CNIs load BPF as \
                    root), module signature enforcement and lockdown (CNI modules are \
                    distribution-signed). User namespaces are judged by the upstream \
                    `user.max_user_namespaces`, not Debian's `kernel.unprivileged_userns_clone`.",
                checks,
                changes,
            })
        }
        "talos" => Some(Profile {
            name: "talos",
            description: "What Talos Linux enforces: the two KSPP command-line parameters it \
                refuses to boot without, the sysctls it sets, and its read-only root. Useful to \
                compare a node with Talos' baseline.",
            checks: TALOS_ROWS.to_vec(),
            changes: Vec::new(),
        }),
        _ => None,
    }
}

/// All built-in profiles, in documentation order.
pub fn profiles() -> Vec<Profile> {
    PROFILE_NAMES.iter().filter_map(|n| profile(n)).collect()
}

/// The fixed prose at the top of `docs/hardening.md`.
pub const DOC_INTRO: &str = "<!-- GENERATED by policy::hardening::markdown() from \
policy/src/hardening/rules.rs. Do not edit: run \
`WARRANT_REGENERATE_DOCS=1 cargo test -p policy --test hardening` -->
# Hardening profile

Warrant audits a node's kernel against a **profile**: a list of checks over the kernel build
configuration (`kconfig`), the kernel command line (`cmdline`), sysctls (`sysctl`), mount options
(`mount`) and LSM state (`lsm`: lockdown mode, module signature enforcement, active LSMs). Each
check is a row of a table in `policy/src/hardening/rules.rs` with a stable id, the expected
value, its source and the reason; this page is generated from those tables.

Sources: **KSPP** — the Kernel Self Protection Project's *Recommended Settings* (kernsec.org wiki)
for x86_64, cross-checked with kernel-hardening-checker's `kspp` decisions; **CIS** — the CIS
Distribution Independent Linux benchmark (filesystem and network sections);
**kubelet** — the sysctls kubelet verifies with `protectKernelDefaults: true`
(`setupKernelTunables` in `pkg/kubelet/cm/container_manager_linux.go`); **Talos** — what Talos
Linux enforces (`pkg/kernel/kspp/kspp.go`); **kernel-hardening-checker** — that tool's own
recommendations beyond KSPP.

## Verdicts

Each check is `pass`, `fail` or `unknown`. `unknown` means the input was not available (the
kernel config is not readable, a sysctl does not exist or cannot be read, securityfs is not
mounted). **Unknown is not a pass: a profile holds only when every check passes.** There are no
advisory checks; a check that does not apply to a node belongs in another profile.

Expected values: `= v` exactly `v`; `one of a, b`; `absent or not a/b` (the parameter may be
missing, and if present must not have one of those values); `is not set` (kconfig `# ... is not
set`, `=n`, or not mentioned); `>= n`, `<= n`, `in a..=b` numerically; `present`/`absent` for command-line
flags; `includes a,b` for mount options and active LSMs. A mount check fails when the path is
not a separate mount. Command-line parameters are matched as the kernel does: `-` equals `_`,
the last occurrence wins, and parsing stops at `--`.

The audit report is JSON with the schema `policy/schema/audit-report.schema.json`
(`\"schema\": \"warrant-audit-report/1\"`): each result has `id`, `kind`, `key`, `source`,
`expected`, `actual` (`null` when unknown), `result` and `reason`.

## Running it

`warrant audit [--profile kspp|kubernetes-node|talos] [--json | --sarif]` reads the live node
(`/proc/config.gz` or `/boot/config-$(uname -r)`, `/proc/cmdline`, `/proc/sys`,
`/proc/self/mountinfo`, securityfs, `/sys/module/module/parameters/sig_enforce`), or the files
given (`--kconfig`, `--cmdline`, `--sysctl` in `sysctl -a` form or `--sysctl-root DIR`,
`--mountinfo`, `--securityfs DIR`, `--sig-enforce FILE`). It prints a summary and every check
that did not pass, or the JSON report, or SARIF 2.1.0 for CI (one rule per check; failures are
`error`, unknowns `warning`). Exit status: 0 when the profile holds, 1 when it does not, 2 for
unusable input.

The `verity./` check finds `/`'s device in the mount table; when it is a device-mapper device
that veritysetup made (its DM UUID starts `CRYPT-VERITY-`), it asks `veritysetup status` for its
state and root hash. It passes only for a `verified` device whose root hash is the expected one:
`--root-hash HEX`, else `roothash=` (or `systemd.verity_root_hash=`) on the kernel command
line, which the UKI carries into PCR 11. Without an expectation it is `unknown`. Auditing from
files, pass what `veritysetup status NAME` printed with `--verity-status FILE`.

`warrant harden apply [--profile P] [--dry-run] [--sysctl-root DIR] [--securityfs DIR]` writes
each failing sysctl's value (the weakest value that holds: an `>= n` check gets `n`, so a
stricter value is never lowered, and passing checks are never touched) and raises kernel
lockdown to `integrity`; it prints every change. Kernel config and command-line rows need a new
kernel or a reboot: `warrant audit` reports them, `harden` leaves them alone. `kernel.kexec_load_disabled` and
`kernel.modules_disabled` cannot be undone until reboot, which is why only the profiles that
ask for them set them.
";
