//! The lab with its computer accounts in the real Samba AD DC pair (`--lab-samba`): the
//! faults are real AD states, channel checks are real binds, and replication is Samba's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use lab::faults::FaultKind;
use lab::host::HostId;
use lab::model::{ChannelStatus, Directory, Identity, Lab, LabSpec};
use lab::samba::SambaConfig;

fn admin(lab: &Lab, id: HostId) -> Identity {
    let info = lab.host(id).unwrap();
    Identity::Local { host: id, computer: info.computer_name.clone(), name: "Administrator".into(), rid: 500 }
}

#[test]
fn faults_are_real_ad_states_and_repairs_reach_the_dcs() {
    let samba = trustsweep_tests::samba::samba_lab();
    let cfg = SambaConfig::from_facts_file(&samba.facts_file()).unwrap();
    let mut spec = LabSpec::healthy(7, 11)
        .with_fault(FaultKind::Snapshot, 1)
        .with_fault(FaultKind::DcReset, 1)
        .with_fault(FaultKind::ReplicationLag, 1)
        .with_fault(FaultKind::Clone, 1);
    spec.directory = Directory::Samba(Box::new(cfg));
    spec.name_prefix = "TSLT".into();
    let t = std::time::Instant::now();
    let lab = Lab::build(spec).unwrap();
    eprintln!("Samba-backed lab of 7 hosts built in {:?}", t.elapsed());
    assert!(lab.uses_real_dcs());
    let hosts = lab.hosts();
    assert!(hosts.iter().all(|h| h.computer_name.starts_with("TSLT")));
    let by_fault = |k: FaultKind| hosts.iter().filter(|h| h.fault == Some(k)).collect::<Vec<_>>();

    for h in &hosts {
        let st = lab.channel_status(h.id).unwrap();
        match h.fault {
            None => assert!(st.is_ok(), "{} {st:?}", h.computer_name),
            Some(FaultKind::Snapshot | FaultKind::DcReset) => {
                assert!(matches!(st, ChannelStatus::WrongPassword { .. }), "{} {st:?}", h.computer_name)
            }
            Some(FaultKind::ReplicationLag) => {
                assert_eq!(st, ChannelStatus::WrongPassword { dc: 1 }, "{}", h.computer_name)
            }
            _ => {}
        }
    }
    // One clone of the pair holds the account's password, the other does not.
    let clones = by_fault(FaultKind::Clone);
    assert_eq!(clones.len(), 2);
    assert_eq!(clones.iter().filter(|h| lab.channel_status(h.id).unwrap().is_ok()).count(), 1);

    // Replication lag is visible in AD: the new password is on dc1 only.
    let lag = by_fault(FaultKind::ReplicationLag)[0];
    let on1 = lab.account_on_dc(&lag.computer_name, 0).unwrap();
    let on2 = lab.account_on_dc(&lag.computer_name, 1).unwrap();
    assert!(on1.pwd_last_set > on2.pwd_last_set, "{on1:?} {on2:?}");
    assert_eq!(on1.object_sid, on2.object_sid);
    assert!(on1.object_sid.starts_with("S-1-5-21-"));

    // Read-only commands leave AD as it was.
    let before = lab.state_digest();
    let out = lab.execute(lag.id, &admin(&lab, lag.id), "nltest /sc_verify:lab.test", b"");
    assert!(out.stdout_text().contains("Status = 5 0x5"), "{}", out.stdout_text());
    assert_eq!(lab.state_digest(), before);

    // nltest /sc_reset to the DC that has the password heals the lag host.
    let out = lab.execute(lag.id, &admin(&lab, lag.id), "nltest /sc_reset:LAB\\dc1.lab.test", b"");
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert_eq!(lab.channel_status(lag.id).unwrap(), ChannelStatus::Ok { dc: 0 });

    // Reset-ComputerMachinePassword -Server dc1 with the repair account (its password on
    // stdin, as the playbooks send it): the write binds to Samba as LAB\tsrepair, whose
    // Reset Password right is delegated on the lab OU.
    let snap = by_fault(FaultKind::Snapshot)[0];
    let before_reset = lab.account_on_dc(&snap.computer_name, 0).unwrap().pwd_last_set;
    let repair = lab.repair_credentials();
    let cred = playbooks::DomainCredential { user: repair.user.clone(), password: repair.password.clone() };
    let stdin = playbooks::StdinPayload::for_credential(&cred).unwrap();
    let script = playbooks::scripts::reset_machine_password(Some("dc1.lab.test")).unwrap();
    let (program, args) = winrm::powershell::command_line(&script);
    let line = format!("{program} {}", args.join(" "));
    let out = lab.execute(snap.id, &admin(&lab, snap.id), &line, stdin.as_bytes());
    assert!(out.stdout_text().contains("ts.reset=ok"), "{} / {}", out.stdout_text(), out.stderr_text());
    assert_eq!(lab.channel_status(snap.id).unwrap(), ChannelStatus::Ok { dc: 0 });
    assert!(lab.account_on_dc(&snap.computer_name, 0).unwrap().pwd_last_set > before_reset);
    // Not yet on dc2: Samba replicates when told.
    assert_eq!(lab.account_on_dc(&snap.computer_name, 1).unwrap().pwd_last_set, before_reset);

    // The right is tsrepair's alone: helpdesk is refused by the DC itself.
    let facts = |k: &str| samba.fact(k).to_string();
    let mut helpdesk = inventory::ad::AdConfig::new(
        format!("ldaps://{}", facts("LAB_DC1_ADDR")),
        "LAB\\helpdesk",
        secrecy::SecretString::from(facts("LAB_USER_PASSWORD")),
        String::new(),
    );
    helpdesk.ca_file = Some(facts("LAB_CA_FILE").into());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt
        .block_on(inventory::ad::reset_computer_account_randomly(&helpdesk, &snap.computer_name))
        .expect_err("helpdesk has no Reset Password right");
    assert!(err.to_string().contains("Reset Password right"), "{err}");
    let mut tsrepair = helpdesk.clone();
    tsrepair.bind_user = "LAB\\tsrepair".into();
    let dn = rt.block_on(inventory::ad::reset_computer_account_randomly(&tsrepair, &snap.computer_name)).unwrap();
    assert!(dn.contains("OU=TrustsweepLab"), "{dn}");
    assert!(matches!(lab.channel_status(snap.id).unwrap(), ChannelStatus::WrongPassword { .. }));

    // A DC-side reset breaks a healthy host for real; replication carries it to dc2.
    let healthy = hosts.iter().find(|h| h.fault.is_none() && h.bound_dc == "dc1.lab.test").unwrap();
    assert!(lab.dc_reset_account(&healthy.computer_name, 0));
    assert!(matches!(lab.channel_status(healthy.id).unwrap(), ChannelStatus::WrongPassword { .. }));
    assert_ne!(lab.state_digest(), before);
    lab.replicate(1, 0).unwrap();
    assert_eq!(
        lab.account_on_dc(&healthy.computer_name, 0).unwrap().pwd_last_set,
        lab.account_on_dc(&healthy.computer_name, 1).unwrap().pwd_last_set
    );

    // A deleted account: 1787 from the DC.
    assert!(lab.delete_account(&healthy.computer_name, 0));
    assert_eq!(lab.channel_status(healthy.id).unwrap(), ChannelStatus::NoAccount { dc: 0 });
}
