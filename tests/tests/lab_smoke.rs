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

/// A lab of 20 hosts (seed 7) on loopback, one healthy host and a session on it as its
/// local admin.
async fn healthy_host() -> (lab::wire::RunningLab, lab::wire::Endpoint, Session) {
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
    let session = Session::new(cfg).unwrap();
    (running, ep, session)
}

#[tokio::test]
async fn hostname_and_probe_on_a_lab_host() {
    let (_running, ep, mut s) = healthy_host().await;
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

/// The probe trustsweep sends (`playbooks/scripts/probe.ps1`, the file the lab's own tests
/// run too) answered by a lab host over WinRM: every line the parser reads is there.
#[tokio::test]
async fn the_lab_answers_the_probe_trustsweep_sends() {
    let (_running, ep, mut s) = healthy_host().await;
    let out = s
        .run_powershell(playbooks::scripts::PROBE, None)
        .await
        .unwrap();
    let text = out.stdout_text();
    assert_eq!(out.exit_code, 0, "{text}\n{}", out.stderr_text());
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&format!("ts.name={}", ep.info.computer_name).as_str()),
        "{text}"
    );
    for line in [
        "ts.part_of_domain=True",
        "ts.tcsc=True",
        "--- sc_verify",
        "--- dsgetdc_pdc",
    ] {
        assert!(lines.contains(&line), "{line} missing from:\n{text}");
    }
}
