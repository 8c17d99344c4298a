//! Certificates for TLS tests beyond the stack's own CA (`MANIFOLD_STACK_CA`).

use std::path::Path;
use std::process::{Command, Stdio};

/// Writes a self-signed CA that signed nothing the stack's servers present into `dir` and
/// returns its certificate's path: trusting only it must fail every TLS handshake.
pub fn unrelated_ca(dir: &Path) -> String {
    let path = dir.join("unrelated-ca.crt");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=unrelated test CA"])
        .arg("-keyout")
        .arg(dir.join("unrelated-ca.key"))
        .arg("-out")
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a CA");
    path.display().to_string()
}
