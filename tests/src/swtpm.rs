//! One software TPM per test: a manufactured swtpm (EK certificates from swtpm's local CA) in
//! its own temporary folder, on its own TCP ports, killed and removed on drop.
//!
//! swtpm 0.7 with libtss2 3.2 speaks TCP only (`swtpm:host=..,port=..`), so each instance takes
//! a free port pair (server, server + 1 for control), found by binding port 0.

use std::net::{TcpListener, TcpStream};
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
}

impl Default for SwtpmOptions {
    fn default() -> Self {
        SwtpmOptions {
            certificates: true,
            pcr_banks: "sha1,sha256,sha384".to_string(),
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
        let out = setup
            .output()
            .map_err(|e| format!("swtpm_setup: {e} (run scripts/install-deps.sh)"))?;
        if !out.status.success() {
            return Err(format!(
                "swtpm_setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // A port can be taken between the probe and swtpm's bind: retry a few times.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port_pair()?;
            let child = Command::new("swtpm")
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
            let mut tpm = Swtpm {
                child,
                dir: dir.clone(),
                port,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = tpm.child.try_wait() {
                    last = format!("swtpm exited: {status}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && TcpStream::connect(("127.0.0.1", port + 1)).is_ok()
                {
                    return Ok(tpm);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Not up: stop it without deleting the state, and try another port pair.
            let _ = tpm.child.kill();
            let _ = tpm.child.wait();
            tpm.dir = PathBuf::new();
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("swtpm did not start: {last}"))
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
