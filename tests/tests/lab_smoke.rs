//! Quick end-to-end: our client runs commands on lab hosts over real WinRM on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use secrecy::ExposeSecret;
use std::time::Duration;
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

#[tokio::test]
async fn hostname_and_probe_on_a_lab_host() {
    let lab = lab::model::Lab::build(lab::model::LabSpec::new(20, 7)).unwrap();
    let running = lab::wire::RunningLab::start(lab, lab::wire::WireOptions::default())
        .await
        .unwrap();
    let ep = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault.is_none())
        .unwrap()
        .clone();
    let mut cfg = SessionConfig::new(
        Endpoint::new(ep.addr.ip().to_string(), Some(ep.addr.port()), Scheme::Http),
        AuthMethod::Ntlm,
        ep.info.local_admin.user.clone(),
        winrm::secret::secret(ep.info.local_admin.password.expose_secret()),
    );
    cfg.operation_timeout = Duration::from_secs(5);
    cfg.read_timeout = Duration::from_secs(15);
    let mut s = Session::new(cfg).unwrap();
    let out = s.run("hostname", &[], None).await.unwrap();
    assert_eq!(out.stdout_text().trim(), ep.info.computer_name);
    let out = s
        .run("nltest", &["/sc_verify:lab.test".into()], None)
        .await
        .unwrap();
    println!("{}", out.stdout_text());
    assert!(out.stdout_text().contains("NERR_Success"));
    let out = s
        .run_powershell("Write-Output \"x=$(hostname)\"", None)
        .await
        .unwrap();
    println!("{:?} / {}", out.stdout_text(), out.stderr_text());
    assert_eq!(
        out.stdout_text().trim(),
        format!("x={}", ep.info.computer_name)
    );
    let out = s.run("frobnicate", &[], None).await.unwrap();
    assert_ne!(out.exit_code, 0);
    println!("{}", String::from_utf8_lossy(&out.stderr));
}

/// The lab's own tests run a copy of the probe (the lab may not depend on playbooks):
/// it must be the script trustsweep sends.
#[test]
fn the_lab_tests_probe_the_way_trustsweep_does() {
    let common = include_str!("../../lab/tests/common/mod.rs");
    let marker = "pub const PROBE: &str = r#\"";
    let start = common.find(marker).expect("PROBE in lab/tests/common") + marker.len();
    let len = common[start..].find("\"#;").expect("end of PROBE");
    assert_eq!(&common[start..start + len], playbooks::scripts::PROBE);
}
