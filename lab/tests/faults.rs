//! Each fault gives the Windows-faithful answers: logon/authorisation decisions, the probe
//! script's output (Test-ComputerSecureChannel, nltest statuses), and power/latency.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use lab::faults::FaultKind;
use lab::model::{Denied, Lab, LabSpec, Logon, RejectReason};
use std::time::Duration;

fn lab_with(kind: FaultKind) -> Lab {
    Lab::build(LabSpec::healthy(6, 42).with_fault(kind, 1)).unwrap()
}

fn nltest_status_lines(out: &lab::model::ExecResult) -> Vec<String> {
    section(out, "nltest").into_iter().filter(|l| l.contains("Status =")).collect()
}

#[test]
fn healthy_probe_as_repair_account() {
    let lab = Lab::build(LabSpec::healthy(3, 1)).unwrap();
    let id = first_healthy(&lab);
    let who = domain_identity(&lab, id, "tsrepair").expect("domain logon works on a healthy host");
    assert!(lab.authorize_winrm(id, &who).is_ok());
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(out.exit_code, 0, "stderr: {}", out.stderr_text());
    assert!(out.stderr.is_empty());
    let info = lab.host(id).unwrap();
    assert_eq!(field(&out, "name").unwrap(), info.computer_name);
    assert_eq!(field(&out, "domain").unwrap(), "lab.test");
    assert_eq!(field(&out, "part_of_domain").unwrap(), "True");
    assert_eq!(field(&out, "user").unwrap(), "lab\\tsrepair");
    assert_eq!(field(&out, "admin_sid").unwrap(), format!("{}-500", info.machine_sid));
    assert_eq!(field(&out, "tcsc").unwrap(), "True");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(field(&out, "nltest_exit").unwrap(), "0");
    let nl = section(&out, "nltest");
    assert_eq!(nl.first().unwrap().trim_end(), "Flags: b0 HAS_IP  HAS_TIMESERV");
    assert_eq!(nl.get(1).unwrap().trim_end(), format!("Trusted DC Name \\\\{}", info.bound_dc));
    assert_eq!(
        nltest_status_lines(&out),
        vec!["Trusted DC Connection Status Status = 0 0x0 NERR_Success", "Trust Verification Status = 0 0x0 NERR_Success"]
    );
    let dcs = section(&out, "dclist");
    assert_eq!(dcs.first().unwrap(), &format!("Get list of DCs in domain 'lab.test' from '\\\\{}'.", info.bound_dc));
    assert_eq!(dcs.get(1).unwrap(), "    dc1.lab.test [PDC]  [DS] Site: Default-First-Site-Name");
    assert_eq!(dcs.get(2).unwrap(), "    dc2.lab.test        [DS] Site: Default-First-Site-Name");
    // Every line ends with CRLF.
    let text = out.stdout_text();
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'));
}

#[test]
fn healthy_probe_as_local_admin() {
    let lab = Lab::build(LabSpec::healthy(3, 1)).unwrap();
    let id = first_healthy(&lab);
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, PROBE, b"");
    let name = lab.host(id).unwrap().computer_name.to_lowercase();
    assert_eq!(field(&out, "user").unwrap(), format!("{name}\\administrator"));
    assert_eq!(field(&out, "tcsc").unwrap(), "True");
}

fn assert_broken_wrong_password(kind: FaultKind) {
    let lab = lab_with(kind);
    let id = first_with(&lab, kind);
    // Domain accounts get 401: NTLM pass-through needs the secure channel.
    assert!(matches!(lab.logon(id, "LAB", "tsrepair"), Logon::Reject(RejectReason::BrokenTrust)));
    assert!(matches!(lab.logon(id, "", "tsrepair@lab.test"), Logon::Reject(RejectReason::BrokenTrust)));
    // The local Administrator still works.
    let who = local_admin(&lab, id);
    assert!(lab.authorize_winrm(id, &who).is_ok());
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(out.exit_code, 0, "stderr: {}", out.stderr_text());
    assert_eq!(field(&out, "tcsc").unwrap(), "False", "{kind}");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(field(&out, "nltest_exit").unwrap(), "0", "nltest still 'completes successfully'");
    let nl = section(&out, "nltest");
    assert_eq!(nl.first().unwrap(), "Flags: 80");
    assert_eq!(nl.get(1).unwrap().trim_end(), "Trusted DC Name");
    assert_eq!(
        nltest_status_lines(&out),
        vec![
            "Trusted DC Connection Status Status = 5 0x5 ERROR_ACCESS_DENIED",
            "Trust Verification Status = 5 0x5 ERROR_ACCESS_DENIED"
        ]
    );
    assert_eq!(nl.last().unwrap(), "The command completed successfully");
}

#[test]
fn snapshot_is_broken_with_access_denied() {
    assert_broken_wrong_password(FaultKind::Snapshot);
}

#[test]
fn dc_reset_is_broken_with_access_denied() {
    assert_broken_wrong_password(FaultKind::DcReset);
}

#[test]
fn replication_lag_is_broken_on_bound_dc_but_fine_on_pdc() {
    assert_broken_wrong_password(FaultKind::ReplicationLag);
    let lab = lab_with(FaultKind::ReplicationLag);
    let id = first_with(&lab, FaultKind::ReplicationLag);
    let info = lab.host(id).unwrap();
    assert_eq!(info.bound_dc, "dc2.lab.test");
    let who = local_admin(&lab, id);
    let on_dc1 = run(&lab, id, &who, &test_dc("dc1.lab.test"), b"");
    assert_eq!(field(&on_dc1, "tcsc").unwrap(), "True");
    let on_dc2 = run(&lab, id, &who, &test_dc("dc2.lab.test"), b"");
    assert_eq!(field(&on_dc2, "tcsc").unwrap(), "False");
    assert_eq!(field(&on_dc2, "tcsc_error").unwrap(), "");
    // The fleet can see it: pwdLastSet differs between DCs.
    let a1 = lab.account_on_dc(&info.computer_name, 0).unwrap();
    let a2 = lab.account_on_dc(&info.computer_name, 1).unwrap();
    assert!(a1.pwd_last_set > a2.pwd_last_set);
    assert!(a1.version > a2.version);
    assert_eq!(a1.object_sid, a2.object_sid);
}

#[test]
fn clone_pair_shares_identity_and_one_is_broken() {
    let lab = lab_with(FaultKind::Clone);
    let pair: Vec<_> = lab.hosts().into_iter().filter(|h| h.fault == Some(FaultKind::Clone)).collect();
    assert_eq!(pair.len(), 2);
    let (a, b) = (&pair[0], &pair[1]);
    assert_eq!(a.twin, Some(b.id));
    assert_eq!(b.twin, Some(a.id));
    assert_eq!(a.computer_name, b.computer_name);
    assert_eq!(a.machine_sid, b.machine_sid);
    assert_ne!(a.address, b.address);
    let ok: Vec<bool> = pair.iter().map(|h| lab.channel_status(h.id).unwrap().is_ok()).collect();
    assert_eq!(ok.iter().filter(|x| **x).count(), 1, "exactly one twin works: {ok:?}");
    for h in &pair {
        let who = local_admin(&lab, h.id);
        let out = run(&lab, h.id, &who, PROBE, b"");
        assert_eq!(field(&out, "name").unwrap(), a.computer_name);
        assert_eq!(field(&out, "admin_sid").unwrap(), format!("{}-500", a.machine_sid));
        let expected = if lab.channel_status(h.id).unwrap().is_ok() { "True" } else { "False" };
        assert_eq!(field(&out, "tcsc").unwrap(), expected);
    }
}

#[test]
fn no_dc_gives_1311_and_401_for_domain_accounts() {
    let lab = lab_with(FaultKind::NoDc);
    let id = first_with(&lab, FaultKind::NoDc);
    assert!(matches!(lab.logon(id, "lab.test", "Administrator"), Logon::Reject(RejectReason::NoLogonServers)));
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(field(&out, "tcsc").unwrap(), "False");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(
        nltest_status_lines(&out),
        vec![
            "Trusted DC Connection Status Status = 1311 0x51f ERROR_NO_LOGON_SERVERS",
            "Trust Verification Status = 1311 0x51f ERROR_NO_LOGON_SERVERS"
        ]
    );
    assert_eq!(
        section(&out, "dclist"),
        vec!["Cannot find DC to get DC list from.Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN", "The command completed successfully"]
    );
    let q = lab.execute(id, &who, "nltest /query", b"");
    assert_eq!(q.stdout_text(), "Flags: 0\r\nConnection Status = 1311 0x51f ERROR_NO_LOGON_SERVERS\r\nThe command completed successfully\r\n");
}

#[test]
fn offline_and_slow() {
    let spec = LabSpec::healthy(6, 3).with_fault(FaultKind::Offline, 1).with_fault(FaultKind::Slow, 1);
    let lab = Lab::build(spec.clone()).unwrap();
    let off = first_with(&lab, FaultKind::Offline);
    let slow = first_with(&lab, FaultKind::Slow);
    let healthy = first_healthy(&lab);
    assert!(!lab.is_online(off));
    assert!(lab.is_online(slow));
    assert!(lab.is_online(healthy));
    assert_eq!(lab.latency(slow), spec.slow_latency);
    assert_eq!(lab.latency(healthy), spec.latency);
    assert!(lab.latency(slow) >= Duration::from_secs(1));
    lab.power_on(off);
    assert!(lab.is_online(off));
}

#[test]
fn filtered_admin_only_opsadmin_which_is_denied() {
    let lab = lab_with(FaultKind::FilteredAdmin);
    let id = first_with(&lab, FaultKind::FilteredAdmin);
    let info = lab.host(id).unwrap();
    assert_eq!(info.local_admin.user, "opsadmin");
    // Built-in Administrator is disabled: 401.
    assert!(matches!(lab.logon(id, "", "Administrator"), Logon::Reject(RejectReason::AccountDisabled)));
    // opsadmin authenticates but WinRM says Access Denied (filtered token, KB951016).
    let Logon::Verify { identity, .. } = lab.logon(id, ".", "OPSADMIN") else { panic!("opsadmin logon") };
    assert_eq!(lab.authorize_winrm(id, &identity), Err(Denied::FilteredToken));
    // The channel is fine, so the repair account gets in.
    let ts = domain_identity(&lab, id, "tsrepair").unwrap();
    assert!(lab.authorize_winrm(id, &ts).is_ok());
    let out = run(
        &lab,
        id,
        &ts,
        "(Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' -Name LocalAccountTokenFilterPolicy).LocalAccountTokenFilterPolicy",
        b"",
    );
    assert_eq!(out.stdout_text(), "0\r\n");
    let probe = run(&lab, id, &ts, "$a = Get-CimInstance -ClassName Win32_UserAccount -Filter \"LocalAccount=True AND SID LIKE 'S-1-5-21-%-500'\"\n$a.Disabled", b"");
    assert_eq!(probe.stdout_text(), "True\r\n");
}

#[test]
fn logon_name_forms() {
    let lab = Lab::build(LabSpec::healthy(2, 9)).unwrap();
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    for (dom, user) in [("", "administrator"), (".", "ADMINISTRATOR"), (name.as_str(), "Administrator"), (&name.to_lowercase(), "administrator")] {
        match lab.logon(id, dom, user) {
            Logon::Verify { identity, .. } => assert!(!identity.is_domain(), "{dom}\\{user}"),
            other => panic!("{dom}\\{user}: {other:?}"),
        }
    }
    for (dom, user) in [("LAB", "TSREPAIR"), ("lab", "tsrepair"), ("LAB.TEST", "tsrepair"), ("", "tsrepair@LAB.TEST"), ("", "tsrepair")] {
        match lab.logon(id, dom, user) {
            Logon::Verify { identity, .. } => {
                assert!(identity.is_domain(), "{dom}\\{user}");
                assert_eq!(identity.whoami(), "lab\\tsrepair");
            }
            other => panic!("{dom}\\{user}: {other:?}"),
        }
    }
    assert!(matches!(lab.logon(id, "LAB", "nobody"), Logon::Reject(RejectReason::UnknownUser)));
    assert!(matches!(lab.logon(id, "OTHER", "tsrepair"), Logon::Reject(RejectReason::UnknownUser)));
    assert!(matches!(lab.logon(id, ".", "tsrepair"), Logon::Reject(RejectReason::UnknownUser)));
    // Domain Administrator (LAB\Administrator) is a different account from the local one.
    let Logon::Verify { identity, password } = lab.logon(id, "LAB", "administrator") else { panic!() };
    assert!(identity.is_domain());
    assert!(lab.authorize_winrm(id, &identity).is_ok());
    use secrecy::ExposeSecret;
    assert_eq!(password.expose_secret(), lab.domain_admin_credentials().password.expose_secret());
    // helpdesk logs on but is not a local admin.
    let hd = domain_identity(&lab, id, "helpdesk").unwrap();
    assert_eq!(lab.authorize_winrm(id, &hd), Err(Denied::NotAdmin));
    // Secrets never show in Debug.
    let dbg = format!("{:?} {:?}", lab.logon(id, "LAB", "tsrepair"), lab.hosts());
    assert!(!dbg.contains(lab.repair_credentials().password.expose_secret()));
    assert!(!dbg.contains(lab.host(id).unwrap().builtin_admin.password.expose_secret()));
}

#[test]
fn latfp_one_lets_opsadmin_in() {
    // Not a fault; the decision rule itself.
    let lab = Lab::build(LabSpec::healthy(1, 9)).unwrap();
    let id = first_healthy(&lab);
    let Logon::Verify { identity, .. } = lab.logon(id, "", "opsadmin") else { panic!() };
    assert_eq!(lab.authorize_winrm(id, &identity), Err(Denied::FilteredToken));
    let who = local_admin(&lab, id);
    // Absent by default: Get-ItemProperty fails with the real message.
    let out = run(&lab, id, &who, "Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' -Name LocalAccountTokenFilterPolicy", b"");
    assert_eq!(out.exit_code, 1);
    assert!(error_text(&out.stderr).contains("Property LocalAccountTokenFilterPolicy does not exist at path HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System."));
}

#[test]
fn default_mix_has_every_kind_and_mostly_healthy() {
    let lab = Lab::build(LabSpec::new(200, 5)).unwrap();
    let hosts = lab.hosts();
    assert_eq!(hosts.len(), 200);
    for k in FaultKind::ALL {
        assert!(hosts.iter().any(|h| h.fault == Some(k)), "{k} missing");
    }
    let healthy = hosts.iter().filter(|h| h.fault.is_none()).count();
    assert!(healthy > 150, "{healthy}");
    for h in hosts.iter().filter(|h| h.fault.is_none()) {
        assert!(lab.channel_status(h.id).unwrap().is_ok(), "{} should be healthy", h.address);
    }
    for h in hosts.iter().filter(|h| matches!(h.fault, Some(FaultKind::Snapshot | FaultKind::DcReset | FaultKind::ReplicationLag | FaultKind::NoDc))) {
        assert!(!lab.channel_status(h.id).unwrap().is_ok(), "{} should be broken", h.address);
    }
    assert!(hosts.iter().all(|h| h.address.ends_with(".lab.test") && h.dns_name.ends_with(".lab.test")));
    assert_eq!(hosts[0].address, "ws0001.lab.test");
    assert_eq!(lab.host_by_address("WS0002.lab.test"), Some(hosts[1].id));
    assert_eq!(lab.host_by_address("ws0003"), Some(hosts[2].id));
}

#[test]
fn fault_names_round_trip() {
    for k in FaultKind::ALL {
        assert_eq!(k.to_string().parse::<FaultKind>().unwrap(), k);
    }
    assert_eq!("replication-lag".parse::<FaultKind>().unwrap(), FaultKind::ReplicationLag);
    assert_eq!("Filtered-Admin".parse::<FaultKind>().unwrap(), FaultKind::FilteredAdmin);
    assert!("bogus".parse::<FaultKind>().is_err());
    assert_eq!(
        FaultKind::ALL.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["snapshot", "clone", "replication-lag", "dc-reset", "no-dc", "offline", "slow", "filtered-admin"]
    );
}

#[test]
fn build_errors() {
    assert!(Lab::build(LabSpec::healthy(1, 1).with_fault(FaultKind::Clone, 1)).is_err());
    let mut one_dc = LabSpec::healthy(3, 1).with_fault(FaultKind::ReplicationLag, 1);
    one_dc.dcs = 1;
    assert!(Lab::build(one_dc).is_err());
}
