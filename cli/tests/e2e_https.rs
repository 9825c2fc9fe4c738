//! End to end over HTTPS: `trustsweep lab serve --scheme https --cbt strict` writes an
//! inventory naming its CA (`ansible_winrm_ca_trust_path`, owner-only beside it), and
//! `trustsweep check -i` sweeps it, verifying each host's certificate through that CA and
//! passing Strict channel-binding hardening.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn check_sweeps_an_https_lab_with_strict_cbt_through_the_inventory_ca() {
    use tokio::io::AsyncBufReadExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("served.yml");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "lab",
            "serve",
            "--hosts",
            "4",
            "--faults",
            "snapshot=1",
            "--port",
            "0",
            "--seed",
            "3",
            "--scheme",
            "https",
            "--cbt",
            "strict",
            "--write-inventory",
        ])
        .arg(&inv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut ready = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(line))) if line.contains("listening for WinRM") => {
                assert!(line.contains("https") && line.contains("strict"), "{line}");
                ready = true;
                break;
            }
            Ok(Ok(Some(_))) => continue,
            other => panic!("lab serve did not start: {other:?}"),
        }
    }
    assert!(ready);
    let yaml = std::fs::read_to_string(&inv).unwrap();
    assert!(yaml.contains("ansible_winrm_scheme: https"), "{yaml}");
    let ca = std::fs::canonicalize(&dir).unwrap().join("served-ca.pem");
    assert!(
        yaml.contains(&format!("ansible_winrm_ca_trust_path: '{}'", ca.display())),
        "{yaml}"
    );
    assert!(std::fs::read_to_string(&ca)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ca).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA file is owner-only");
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args(["check", "-i", inv.to_str().unwrap(), "--format", "json"])
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(doc["summary"]["broken"], 1, "{doc}");
    assert_eq!(doc["summary"]["healthy"], 3, "{doc}");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
