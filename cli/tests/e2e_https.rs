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

mod common;

use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn check_sweeps_an_https_lab_with_strict_cbt_through_the_inventory_ca() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("served.yml");
    let (mut child, line) =
        common::serve_lab(&["--scheme", "https", "--cbt", "strict"], &inv).await;
    assert!(line.contains("https") && line.contains("strict"), "{line}");
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
    let out = common::run_trustsweep(
        ["check", "-i", inv.to_str().unwrap(), "--format", "json"],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(doc["summary"]["broken"], 1, "{doc}");
    assert_eq!(doc["summary"]["healthy"], 3, "{doc}");
    common::ctrl_c(&child);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
