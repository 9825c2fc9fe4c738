//! Account-lockout safety end to end (issue 16): a wrong domain password — the connecting
//! account's, the logon-test account's, the repair account's — reaches the domain at most
//! twice in a 200-host sweep, so the account is not locked (the lab's DCs lock after 5:
//! `lab::lockout`), every host's result says why the credential was not used, and the exit
//! code says the run failed. A host that refuses a *right* password (deny-network-logon)
//! does not stop the sweep, and a refused credential is never sent to a host again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{Endpoint, RunningLab, WireOptions};
use playbooks::{Remote, RemoteErrorKind};
use secrecy::ExposeSecret;
use serde_json::Value;
use trustsweep_cli::remote::WinrmRemote;

const WRONG_CONNECT: &str = "Wr0ng-connect-pw";
const WRONG_LOGON: &str = "Wr0ng-logon-test-pw";
const WRONG_REPAIR: &str = "Wr0ng-repair-pw";

async fn start(spec: LabSpec) -> RunningLab {
    RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap()
}

/// An inventory of `endpoints` (in this order) whose hosts all connect as `user` with
/// `password` and test domain logons as `logon_user` with `logon_password`.
fn inventory(
    name: &str,
    endpoints: &[&Endpoint],
    (user, password): (&str, &str),
    (logon_user, logon_password): (&str, &str),
) -> PathBuf {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut y = String::new();
    let _ = writeln!(y, "all:\n  vars:\n    ansible_connection: winrm");
    let _ = writeln!(y, "    ansible_winrm_transport: ntlm");
    let _ = writeln!(y, "    ansible_winrm_scheme: http");
    let _ = writeln!(y, "    ansible_user: {}", q(user));
    let _ = writeln!(y, "    ansible_password: {}", q(password));
    let _ = writeln!(y, "    trustsweep_logon_test_user: {}", q(logon_user));
    let _ = writeln!(
        y,
        "    trustsweep_logon_test_password: {}",
        q(logon_password)
    );
    let _ = writeln!(y, "  hosts:");
    for ep in endpoints {
        let _ = writeln!(y, "    {}:", ep.info.address);
        let _ = writeln!(y, "      ansible_host: {}", ep.addr.ip());
        let _ = writeln!(y, "      ansible_port: {}", ep.addr.port());
    }
    common::write_inventory(&format!("lockout-{name}"), &y)
}

fn hosts(doc: &Value) -> &Vec<Value> {
    doc["hosts"].as_array().unwrap()
}

/// Each account's wrong password reached the domain once or twice, and none is locked out.
fn reached_once_or_twice_and_not_locked(lockout: &lab::lockout::Lockout, sams: &[&str]) {
    for &sam in sams {
        let wrong = lockout.wrong_passwords(sam);
        assert!((1..=2).contains(&wrong), "{sam}: {wrong} wrong passwords");
        assert!(!lockout.is_locked(sam), "{sam} locked out");
    }
}

fn no_secret_in(out: &Output, secrets: &[&str]) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in secrets {
        assert!(!text.contains(s), "a password is in the output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_connecting_password_reaches_the_domain_twice_and_no_more() {
    let running = start(LabSpec::healthy(200, 31)).await;
    let lab = running.lab().clone();
    let lockout = lab.lockout();
    let eps: Vec<&Endpoint> = running.endpoints().iter().collect();
    let inv = inventory(
        "connect",
        &eps,
        ("LAB\\Administrator", WRONG_CONNECT),
        ("LAB\\helpdesk", WRONG_LOGON),
    );
    let out = common::run_trustsweep(
        [
            "check",
            "-i",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--host-deadline",
            "60",
        ],
        &[],
    )
    .await;
    // Nobody could be checked: incomplete, not OK.
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_secret_in(&out, &[WRONG_CONNECT, WRONG_LOGON]);
    reached_once_or_twice_and_not_locked(&lockout, &["Administrator", "helpdesk"]);
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(hosts(&doc).len(), 200, "every host has a result");
    let mut refused_by_host = 0;
    for h in hosts(&doc) {
        let obs = &h["observation"];
        assert_eq!(obs["access"]["state"], "unauthorized", "{h:#}");
        let error = obs["error"].as_str().unwrap_or_default();
        if error.contains("credential LAB\\Administrator not used") {
            assert!(
                error.contains("credential LAB\\Administrator not used: refused by hosts ")
                    && error.contains(" and ")
                    && error.contains(
                        "check the password (vault/credentials file) to avoid locking the account"
                    ),
                "{error}"
            );
        } else {
            assert!(error.contains("HTTP 401"), "{error}");
            refused_by_host += 1;
        }
        // The logon-test account: refused, or not used with the reason.
        assert!(
            obs["domain_logon"] == "refused"
                || error.contains(
                    "domain logon test: credential LAB\\helpdesk not used: refused by hosts"
                ),
            "{h:#}"
        );
    }
    assert!(refused_by_host <= 2, "{refused_by_host} hosts were sent it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_repair_and_logon_test_passwords_reach_the_domain_twice_and_no_more() {
    // Snapshot hosts need Reset-ComputerMachinePassword with the repair credential.
    let running = start(LabSpec::healthy(200, 32).with_fault(FaultKind::Snapshot, 40)).await;
    let lab = running.lab().clone();
    let lockout = lab.lockout();
    let inv = common::write_inventory("lockout-repair", &running.inventory_yaml());
    let out = common::run_trustsweep(
        [
            "repair",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--format",
            "json",
            "--host-deadline",
            "60",
            "--repair-user",
            "LAB\\tsrepair",
            "--logon-test-user",
            "LAB\\helpdesk",
        ],
        &[
            ("TRUSTSWEEP_REPAIR_PASSWORD", WRONG_REPAIR),
            ("TRUSTSWEEP_LOGON_TEST_PASSWORD", WRONG_LOGON),
        ],
    )
    .await;
    // The snapshot hosts are still broken.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_secret_in(&out, &[WRONG_REPAIR, WRONG_LOGON]);
    reached_once_or_twice_and_not_locked(&lockout, &["tsrepair", "helpdesk"]);
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(hosts(&doc).len(), 200, "every host has a result");
    let mut repairs = 0;
    let mut refused_repairs = 0;
    for h in hosts(&doc) {
        // The logon test: refused (the hosts it was tried on) or not used, with the reason.
        let obs = &h["observation"];
        let error = obs["error"].as_str().unwrap_or_default();
        assert!(
            obs["domain_logon"] == "refused"
                || error.contains(
                    "domain logon test: credential LAB\\helpdesk not used: refused by hosts"
                ),
            "{h:#}"
        );
        if h["repair"].is_null() || h["repair"]["status"] == "nothing_to_do" {
            continue;
        }
        repairs += 1;
        assert_ne!(h["repair"]["status"], "repaired", "{h:#}");
        let steps = h["repair"]["steps"].to_string();
        if steps.contains("password is incorrect") {
            refused_repairs += 1;
        } else {
            assert!(
                steps.contains("credential LAB\\\\tsrepair not")
                    && steps.contains("check the password")
                    || steps.contains("not sent to"),
                "{h:#}"
            );
        }
    }
    assert_eq!(repairs, 40, "every snapshot host's repair was tried");
    assert!(
        (1..=2).contains(&refused_repairs),
        "{refused_repairs} hosts were sent the repair credential"
    );
    // No snapshot host was changed.
    for ep in running.endpoints() {
        if ep.info.fault == Some(FaultKind::Snapshot) {
            assert!(!lab.channel_status(ep.info.id).unwrap().is_ok());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_host_that_refuses_a_right_password_does_not_stop_the_sweep() {
    let running = start(LabSpec::healthy(20, 33).with_fault(FaultKind::DenyNetworkLogon, 1)).await;
    let lab = running.lab().clone();
    let lockout = lab.lockout();
    let deny = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::DenyNetworkLogon))
        .unwrap();
    // The deny-network-logon host first, and one host at a time: it is the one the
    // credentials are tried on first.
    let mut eps: Vec<&Endpoint> = vec![deny];
    eps.extend(
        running
            .endpoints()
            .iter()
            .filter(|e| e.info.fault.is_none()),
    );
    let admin = lab.domain_admin_credentials();
    let helpdesk = lab.helpdesk_credentials();
    let inv = inventory(
        "deny-first",
        &eps,
        (&admin.user, admin.password.expose_secret()),
        (&helpdesk.user, helpdesk.password.expose_secret()),
    );
    let out = common::run_trustsweep(
        [
            "check",
            "-i",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--concurrency",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the deny host could not be checked; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(hosts(&doc).len(), 20);
    for h in hosts(&doc) {
        let obs = &h["observation"];
        if h["host"] == deny.info.address.as_str() {
            assert_eq!(obs["access"]["state"], "unauthorized", "{h:#}");
            assert_eq!(obs["domain_logon"], "refused", "{h:#}");
        } else {
            assert_eq!(obs["access"]["state"], "connected", "{h:#}");
            assert_eq!(obs["domain_logon"], "accepted", "{h:#}");
            assert_eq!(h["state"], "healthy", "{h:#}");
        }
    }
    assert_eq!(lockout.wrong_passwords("Administrator"), 0);
    assert_eq!(lockout.wrong_passwords("helpdesk"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_is_not_sent_to_the_host_again() {
    let running = start(LabSpec::healthy(2, 34)).await;
    let lab = running.lab().clone();
    let ep = &running.endpoints()[0];
    let mut cfg = winrm::session::SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            winrm::transport::Scheme::Http,
        ),
        winrm::transport::AuthMethod::Ntlm,
        "LAB\\deployer".to_string(),
        winrm::secret::secret("not-the-password"),
    );
    cfg.read_timeout = Duration::from_secs(30);
    let mut remote = WinrmRemote::new(cfg).unwrap();
    let e = remote.run_powershell("hostname", None).await.unwrap_err();
    assert_eq!(e.kind, RemoteErrorKind::Unauthorized, "{e}");
    assert_eq!(lab.lockout().wrong_passwords("deployer"), 1);
    // Again on the same remote, and a reconnect after a "reboot": refused at once, nothing
    // sent (the reconnect used to poll the host with it until its timeout).
    let e = remote.run_cmd("hostname").await.unwrap_err();
    assert!(e.message.contains("not sent to"), "{e}");
    let e = remote
        .reconnect_after_reboot(Duration::from_secs(20))
        .await
        .unwrap_err();
    assert_eq!(e.kind, RemoteErrorKind::Unauthorized, "{e}");
    assert_eq!(lab.lockout().wrong_passwords("deployer"), 1);
    // A new remote on the same host: the gate knows the host refused it.
    let mut again = WinrmRemote::new(remote_config(ep)).unwrap();
    let e = again.run_powershell("hostname", None).await.unwrap_err();
    assert!(e.message.contains("not sent to"), "{e}");
    assert_eq!(lab.lockout().wrong_passwords("deployer"), 1);
}

fn remote_config(ep: &Endpoint) -> winrm::session::SessionConfig {
    winrm::session::SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            winrm::transport::Scheme::Http,
        ),
        winrm::transport::AuthMethod::Ntlm,
        "LAB\\deployer".to_string(),
        winrm::secret::secret("not-the-password"),
    )
}
