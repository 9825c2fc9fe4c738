#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The lab with its computer accounts in the real Samba AD DC pair
//! (`trustsweep_tests::samba`), driven through the real wire: our WinRM client logs on to
//! the lab's hosts over loopback. The faults are real AD states, channel checks are real
//! binds, resets are real writes bound as the credential the command was given, and
//! replication happens only when the test forces it.
//!
//! One test function: the DC pair is shared, and replication is domain-wide, so the steps
//! that depend on a difference between dc1 and dc2 must not interleave with another lab's.
//! The runtime is current-thread on purpose: the lab answers logons (and so binds to the
//! DCs) on the runtime's only thread, which its Samba worker must never need.

use std::time::{Duration, Instant};

use lab::faults::FaultKind;
use lab::model::{ChannelStatus, Credential, Directory, Lab, LabSpec};
use lab::samba::SambaConfig;
use lab::wire::{Endpoint, RunningLab, WireOptions};
use secrecy::ExposeSecret;
use winrm::session::{Output, Session, SessionConfig};
use winrm::transport::{AuthMethod, Scheme};

fn session(ep: &Endpoint, user: &str, password: &str) -> Session {
    let mut cfg = SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            Scheme::Http,
        ),
        AuthMethod::Ntlm,
        user.to_string(),
        winrm::secret::secret(password),
    );
    cfg.operation_timeout = Duration::from_secs(10);
    cfg.read_timeout = Duration::from_secs(30);
    Session::new(cfg).unwrap()
}

fn local_admin(ep: &Endpoint) -> Session {
    session(
        ep,
        &ep.info.local_admin.user,
        ep.info.local_admin.password.expose_secret(),
    )
}

fn domain(ep: &Endpoint, cred: &Credential) -> Session {
    session(ep, &cred.user, cred.password.expose_secret())
}

async fn nltest(s: &mut Session, arg: &str) -> Output {
    s.run("nltest", &[arg.to_string()], None).await.unwrap()
}

/// Does the host accept this domain credential (`Ok`) or answer 401 (`Err`)?
async fn domain_logon(ep: &Endpoint, cred: &Credential) -> Result<String, winrm::Error> {
    let mut s = domain(ep, cred);
    s.run("whoami", &[], None)
        .await
        .map(|o| o.stdout_text().trim().to_string())
}

/// `Reset-ComputerMachinePassword -Server dc1.lab.test -Credential $cred` as the playbooks
/// send it: the script from `playbooks::scripts`, the credential on stdin.
async fn reset_machine_password(s: &mut Session, cred: &Credential) -> Output {
    let cred = playbooks::DomainCredential {
        user: cred.user.clone(),
        password: cred.password.clone(),
    };
    let stdin = playbooks::StdinPayload::for_credential(&cred).unwrap();
    let script = playbooks::scripts::reset_machine_password(Some("dc1.lab.test")).unwrap();
    s.run_powershell(&script, Some(stdin.as_bytes()))
        .await
        .unwrap()
}

fn pwd_last_set(lab: &Lab, computer: &str, dc: usize) -> u64 {
    lab.account_on_dc(computer, dc)
        .unwrap_or_else(|| panic!("dc{} holds no {computer}$", dc + 1))
        .pwd_last_set
}

#[tokio::test]
async fn samba_backed_lab_over_the_wire() {
    let samba = trustsweep_tests::samba::samba_lab();
    let cfg = SambaConfig::from_facts_file(&samba.facts_file()).unwrap();
    // 7 hosts: two healthy, one each of snapshot, dc-reset and stale-dc, and a clone
    // pair sharing one account.
    let mut spec = LabSpec::healthy(7, 11)
        .with_fault(FaultKind::Snapshot, 1)
        .with_fault(FaultKind::DcReset, 1)
        .with_fault(FaultKind::StaleDc, 1)
        .with_fault(FaultKind::Clone, 1);
    spec.directory = Directory::Samba(Box::new(cfg.clone()));
    spec.name_prefix = "TSLT".into();
    let t = Instant::now();
    let lab = tokio::task::spawn_blocking(move || Lab::build(spec))
        .await
        .unwrap()
        .unwrap();
    eprintln!("Samba-backed lab of 7 hosts built in {:?}", t.elapsed());
    assert!(lab.uses_real_dcs());
    // The default prefix would take the names of the script's OU=Workstations accounts:
    // refused, and those accounts are left alone.
    let mut ws = LabSpec::healthy(1, 1);
    ws.directory = Directory::Samba(Box::new(cfg));
    let err = tokio::task::spawn_blocking(move || Lab::build(ws))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("WS0001 is taken by CN=WS0001,OU=Workstations,DC=lab,DC=test"),
        "{err}"
    );
    let running = RunningLab::start(lab.clone(), WireOptions::default())
        .await
        .unwrap();
    let eps = running.endpoints().to_vec();
    assert!(eps
        .iter()
        .all(|e| e.info.computer_name.starts_with("TSLT") && e.info.address.starts_with("tslt")));
    let with = |k: FaultKind| {
        eps.iter()
            .filter(|e| e.info.fault == Some(k))
            .cloned()
            .collect::<Vec<_>>()
    };
    let healthy = eps
        .iter()
        .filter(|e| e.info.fault.is_none())
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(healthy.len(), 2);
    let (snapshot, dc_reset, lag) = (
        with(FaultKind::Snapshot)[0].clone(),
        with(FaultKind::DcReset)[0].clone(),
        with(FaultKind::StaleDc)[0].clone(),
    );
    let repair = lab.repair_credentials();
    let helpdesk = lab.helpdesk_credentials();
    // tsrepair's password is the DC's, from the facts.
    assert_eq!(
        repair.password.expose_secret(),
        samba.fact("LAB_USER_PASSWORD")
    );

    // The DCs are the truth: objectSids in Samba's domain, both DCs agree on what was
    // replicated, the stale-dc writes is on dc1 only.
    let sid = lab
        .account_on_dc(&healthy[0].info.computer_name, 0)
        .unwrap()
        .object_sid;
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    for e in &eps {
        let name = &e.info.computer_name;
        assert_eq!(
            lab.account_on_dc(name, 0).unwrap().object_sid,
            lab.account_on_dc(name, 1).unwrap().object_sid
        );
        if e.info.fault != Some(FaultKind::StaleDc) {
            assert_eq!(
                pwd_last_set(&lab, name, 0),
                pwd_last_set(&lab, name, 1),
                "{name}"
            );
        }
    }
    assert!(
        pwd_last_set(&lab, &lag.info.computer_name, 0)
            > pwd_last_set(&lab, &lag.info.computer_name, 1)
    );
    let clones = with(FaultKind::Clone);
    assert_eq!(
        clones[0].info.computer_name, clones[1].info.computer_name,
        "two hosts, one account"
    );
    assert_eq!(
        clones
            .iter()
            .filter(|e| lab.channel_status(e.info.id).unwrap().is_ok())
            .count(),
        1
    );
    assert_eq!(lab.channel_status(dc_reset.info.id).unwrap().win32(), 5);

    // A healthy member verifies domain logons and its channel.
    assert_eq!(
        domain_logon(&healthy[0], &repair).await.unwrap(),
        "lab\\tsrepair"
    );
    let mut s = domain(&healthy[0], &repair);
    let out = nltest(&mut s, "/sc_verify:lab.test").await;
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert!(
        out.stdout_text()
            .contains("Trust Verification Status = 0 0x0 NERR_Success"),
        "{}",
        out.stdout_text()
    );

    // Broken members answer 401 to the domain account: the DC refuses their secret.
    for broken in [&snapshot, &dc_reset, &lag] {
        let err = domain_logon(broken, &repair)
            .await
            .expect_err("a broken trust refuses domain logons");
        assert!(
            err.is_unauthorized(),
            "{}: {err}",
            broken.info.computer_name
        );
    }

    // Read-only commands leave every host and both DCs as they were.
    let before = lab.state_digest();
    let mut lag_admin = local_admin(&lag);
    let out = nltest(&mut lag_admin, "/sc_verify:lab.test").await;
    assert!(
        out.stdout_text()
            .contains("Trust Verification Status = 5 0x5"),
        "{}",
        out.stdout_text()
    );
    let mut snap_admin = local_admin(&snapshot);
    let out = snap_admin
        .run_powershell("Test-ComputerSecureChannel", None)
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), "False", "{}", out.stderr_text());
    let out = nltest(&mut s, "/sc_query:lab.test").await;
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        lab.state_digest(),
        before,
        "reads and channel checks change nothing the digest covers"
    );

    // Replication lag: broken against dc2, which lacks the new password; pinning the
    // channel to dc1 heals it without any write.
    assert_eq!(
        lab.channel_status(lag.info.id).unwrap(),
        ChannelStatus::WrongPassword { dc: 1 }
    );
    let out = nltest(&mut lag_admin, "/sc_reset:LAB\\dc1.lab.test").await;
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert!(
        out.stdout_text()
            .contains("Trusted DC Name \\\\dc1.lab.test"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stdout_text()
            .contains("Trusted DC Connection Status Status = 0 0x0"),
        "{}",
        out.stdout_text()
    );
    assert_eq!(
        lab.channel_status(lag.info.id).unwrap(),
        ChannelStatus::Ok { dc: 0 }
    );
    assert_eq!(domain_logon(&lag, &repair).await.unwrap(), "lab\\tsrepair");
    let after_sc_reset = lab.state_digest();
    assert_ne!(
        after_sc_reset, before,
        "the host is bound to another DC now"
    );

    // helpdesk has no Reset Password right: Samba itself refuses the write, and the cmdlet
    // says what Windows says.
    let snap = snapshot.info.computer_name.clone();
    let (snap_dc1, snap_dc2) = (pwd_last_set(&lab, &snap, 0), pwd_last_set(&lab, &snap, 1));
    let out = reset_machine_password(&mut snap_admin, &helpdesk).await;
    let text = out.stdout_text();
    assert!(!text.contains("ts.reset=ok"), "{text}");
    assert!(
        text.contains(
            "ts.reset_error=Cannot reset the secure channel password for the computer account in the domain. \
                       Operation failed with the following exception: Access is denied. \
                       (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
        ),
        "{text} / {}",
        out.stderr_text()
    );
    assert_eq!(pwd_last_set(&lab, &snap, 0), snap_dc1);
    assert_eq!(
        lab.state_digest(),
        after_sc_reset,
        "a refused reset changes nothing"
    );
    // A wrong password is the DC's "user name or password is incorrect".
    let wrong = Credential {
        user: repair.user.clone(),
        password: "not-the-password".to_string().into(),
    };
    let out = reset_machine_password(&mut snap_admin, &wrong).await;
    assert!(
        out.stdout_text()
            .contains("The user name or password is incorrect."),
        "{}",
        out.stdout_text()
    );

    // tsrepair resets the snapshot host's account on dc1 (bound as LAB\tsrepair); dc2 keeps
    // the old pwdLastSet until replication is forced.
    let out = reset_machine_password(&mut snap_admin, &repair).await;
    assert!(
        out.stdout_text().contains("ts.reset=ok"),
        "{} / {}",
        out.stdout_text(),
        out.stderr_text()
    );
    // The cmdlet does not rebind Netlogon (DOMAIN.md "Repairing it", revised): a member
    // bound to dc2 stays broken there until it is pinned to the DC written, which is what
    // the playbooks do next.
    if snapshot.info.bound_dc != "dc1.lab.test" {
        assert_eq!(
            lab.channel_status(snapshot.info.id).unwrap(),
            ChannelStatus::WrongPassword { dc: 1 }
        );
    }
    let out = nltest(&mut snap_admin, "/sc_reset:LAB\\dc1.lab.test").await;
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert_eq!(
        lab.channel_status(snapshot.info.id).unwrap(),
        ChannelStatus::Ok { dc: 0 }
    );
    assert_eq!(
        domain_logon(&snapshot, &repair).await.unwrap(),
        "lab\\tsrepair"
    );
    assert!(pwd_last_set(&lab, &snap, 0) > snap_dc1);
    assert_eq!(
        pwd_last_set(&lab, &snap, 1),
        snap_dc2,
        "not on dc2 before replication"
    );
    assert_ne!(lab.state_digest(), after_sc_reset, "a reset is a change");
    lab.replicate(1, 0).unwrap();
    assert_eq!(pwd_last_set(&lab, &snap, 1), pwd_last_set(&lab, &snap, 0));
    let lag_name = &lag.info.computer_name;
    assert_eq!(
        pwd_last_set(&lab, lag_name, 1),
        pwd_last_set(&lab, lag_name, 0),
        "replication is domain-wide"
    );

    // The member's own rotation binds as the computer account and writes its DC.
    let hname = healthy[0].info.computer_name.clone();
    let hdc = usize::from(healthy[0].info.bound_dc != "dc1.lab.test");
    let rotated_before = pwd_last_set(&lab, &hname, hdc);
    let out = nltest(&mut s, "/sc_change_pwd:lab.test").await;
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert!(pwd_last_set(&lab, &hname, hdc) > rotated_before);
    assert!(lab.channel_status(healthy[0].info.id).unwrap().is_ok());
    let out = nltest(&mut s, "/sc_verify:lab.test").await;
    assert!(
        out.stdout_text()
            .contains("Trust Verification Status = 0 0x0"),
        "{}",
        out.stdout_text()
    );

    // A DC-side "Reset Account" breaks the other healthy host at once; deleting the object
    // is 1787 from the DC.
    let other = &healthy[1];
    let odc = usize::from(other.info.bound_dc != "dc1.lab.test");
    assert!(lab.dc_reset_account(&other.info.computer_name, odc));
    assert!(domain_logon(other, &repair)
        .await
        .unwrap_err()
        .is_unauthorized());
    let mut other_admin = local_admin(other);
    let out = nltest(&mut other_admin, "/sc_verify:lab.test").await;
    assert!(
        out.stdout_text()
            .contains("Trust Verification Status = 5 0x5"),
        "{}",
        out.stdout_text()
    );
    assert!(lab.delete_account(&other.info.computer_name, odc));
    let out = nltest(&mut other_admin, "/sc_verify:lab.test").await;
    assert!(
        out.stdout_text().contains("Status = 1787 0x6fb"),
        "{}",
        out.stdout_text()
    );
    assert!(lab.account_on_dc(&other.info.computer_name, odc).is_none());
}
