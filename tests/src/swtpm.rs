//! One software TPM per test: a manufactured swtpm (EK certificates from swtpm's local CA) in
//! its own temporary folder, on its own TCP ports, killed and removed on drop.
//!
//! swtpm 0.7 with libtss2 3.2 speaks TCP only (`swtpm:host=..,port=..`), so each instance takes
//! a free port pair (server, server + 1 for control), found by binding port 0.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where swtpm_setup's local CA keeps its root and intermediate certificates.
pub const LOCALCA_DIR: &str = "/var/lib/swtpm-localca";

/// A running swtpm; stopped and deleted on drop.
pub struct Swtpm {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// Options for manufacturing the TPM.
#[derive(Clone, Debug)]
pub struct SwtpmOptions {
    /// Create the EK and platform certificates (signed by swtpm's local CA).
    pub certificates: bool,
    /// PCR banks to activate, e.g. `sha1,sha256`.
    pub pcr_banks: String,
    /// Sign the EK certificate with a local CA of its own in this folder (created on first
    /// use) instead of swtpm's shared one: a TPM from an untrusted manufacturer.
    pub own_ca: Option<PathBuf>,
}

impl Default for SwtpmOptions {
    fn default() -> Self {
        SwtpmOptions {
            certificates: true,
            pcr_banks: "sha1,sha256,sha384".to_string(),
            own_ca: None,
        }
    }
}

fn free_port_pair() -> Result<u16, String> {
    for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        if port == u16::MAX {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair".to_string())
}

fn unique_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "warrant-swtpm-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

impl Swtpm {
    /// A manufactured TPM with EK certificates and sha1, sha256 and sha384 banks.
    pub fn start() -> Result<Swtpm, String> {
        Self::start_with(&SwtpmOptions::default())
    }

    pub fn start_with(options: &SwtpmOptions) -> Result<Swtpm, String> {
        let dir = unique_dir();
        let state = dir.join("state");
        std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
        let mut setup = Command::new("swtpm_setup");
        setup
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(&state)
            .arg("--pcr-banks")
            .arg(&options.pcr_banks)
            .arg("--overwrite");
        if options.certificates {
            setup.arg("--create-ek-cert").arg("--create-platform-cert");
        }
        if let Some(ca) = &options.own_ca {
            setup.arg("--config").arg(own_ca_config(ca)?);
        }
        let out = setup
            .output()
            .map_err(|e| format!("swtpm_setup: {e} (run scripts/install-deps.sh)"))?;
        if !out.status.success() {
            return Err(format!(
                "swtpm_setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // A port can be taken between the probe and swtpm's bind, or be unusable while closed
        // connections to it linger in TIME-WAIT (the TCP TCTI opens one per command): retry.
        let mut last = String::new();
        for _ in 0..20 {
            let port = free_port_pair()?;
            match spawn(&state, port) {
                Ok(child) => {
                    return Ok(Swtpm {
                        child,
                        dir: dir.clone(),
                        port,
                    })
                }
                Err(e) => last = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("swtpm did not start: {last}"))
    }

    /// Power-cycles the TPM: stops swtpm and starts it again on the same state and port.
    /// `TPM2_Startup(CLEAR)` follows, as after a reboot: PCRs are reset and resetCount grows.
    pub fn restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = self.dir.join("state");
        let mut last = String::new();
        // The port may linger a moment after the kill.
        for _ in 0..50 {
            match spawn(&state, self.port) {
                Ok(child) => {
                    self.child = child;
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("swtpm did not restart: {last}"))
    }

    /// A copy of the TPM's persistent state (taken with swtpm stopped, then restarted: a
    /// reboot). [`Swtpm::restore`] brings the TPM back to it: a rolled-back TPM.
    pub fn snapshot(&mut self, name: &str) -> Result<PathBuf, String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let to = self.dir.join(format!("snapshot-{name}"));
        copy_dir(&self.dir.join("state"), &to)?;
        self.restart()?;
        Ok(to)
    }

    /// Replaces the TPM's state with a snapshot and starts it.
    pub fn restore(&mut self, snapshot: &Path) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = self.dir.join("state");
        let _ = std::fs::remove_dir_all(&state);
        copy_dir(snapshot, &state)?;
        self.restart()
    }

    /// The TCTI string for this TPM, for Warrant (`--tcti`) and tpm2-tools (`-T`).
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// This TPM's scratch folder (deleted on drop): put test files here.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The local CA's certificates that sign this TPM's EK certificate (root and intermediate).
    pub fn ca_dir() -> PathBuf {
        PathBuf::from(LOCALCA_DIR)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts swtpm on `state` at `port` (server) and `port + 1` (control) and waits until both
/// accept connections.
fn spawn(state: &Path, port: u16) -> Result<Child, String> {
    let mut child = Command::new("swtpm")
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("swtpm: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("swtpm exited: {status}"));
        }
        // The ports must be listened on by *this* swtpm: another test's swtpm may have taken
        // them between the probe and the bind, and answering a connect would then be that
        // one's (this swtpm's bind fails and it exits; the caller retries on other ports).
        if listens(child.id(), port) && listens(child.id(), port + 1) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("swtpm did not come up within 10 s".to_string())
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (from /proc/net/tcp
/// and the process's descriptors).
fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local address, state 0A (LISTEN), inode
            match (f.get(1), f.get(3), f.get(9)) {
                (Some(a), Some(&"0A"), Some(inode)) if *a == local => {
                    Some(format!("socket:[{inode}]"))
                }
                _ => None,
            }
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// swtpm_setup and swtpm_localca configuration for a local CA kept in `ca` (swtpm_localca
/// creates its root and intermediate there on first use). Returns the swtpm_setup.conf path.
fn own_ca_config(ca: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let localca = ca.join("swtpm-localca.conf");
    let options = ca.join("swtpm-localca.options");
    let setup = ca.join("swtpm_setup.conf");
    let write = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(
        &localca,
        format!(
            "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\n\
             certserial = {d}/certserial\n",
            d = ca.display()
        ),
    )?;
    write(
        &options,
        "--platform-manufacturer Warrant-test\n--platform-version 2.1\n--platform-model \
         untrusted\n"
            .to_string(),
    )?;
    write(
        &setup,
        format!(
            "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {}\n\
             create_certs_tool_options = {}\n",
            localca.display(),
            options.display()
        ),
    )?;
    Ok(setup)
}
