//! Keys made by the `openssl` command line, as an operator makes a PCR-policy signing key
//! (`systemd-measure sign --private-key=...`). A missing openssl fails the test with an install
//! hint: tests must not skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run_tool;

/// An RSA 2048 key pair made by `openssl genpkey` in `dir`: the private key in `NAME.pem`
/// (PKCS#8 PEM) and its public half in `NAME.pub.pem` (SubjectPublicKeyInfo PEM). Returns the
/// private key's PEM and the public key's path.
pub fn rsa_key(dir: &Path, name: &str) -> Result<(Vec<u8>, PathBuf), String> {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    run_tool(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA"])
            .args(["-pkeyopt", "rsa_keygen_bits:2048", "-out"])
            .arg(&key),
    )?;
    run_tool(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public),
    )?;
    let pem = std::fs::read(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok((pem, public))
}

/// The public key in the PEM file `public` (as [`rsa_key`] writes it), as SubjectPublicKeyInfo
/// DER.
pub fn public_der(public: &Path) -> Result<Vec<u8>, String> {
    run_tool(
        Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(public),
    )
}
