//! Each fault gives the Windows-faithful answers: logon/authorisation decisions, the probe
//! script's output (Test-ComputerSecureChannel, nltest statuses), and power/latency.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use lab::domain::ManualClock;
use lab::faults::FaultKind;
use lab::model::{Denied, Lab, LabSpec, Logon, RejectReason};
use std::sync::Arc;
use std::time::Duration;

fn lab_with(kind: FaultKind) -> Lab {
    Lab::build(LabSpec::healthy(6, 42).with_fault(kind, 1)).unwrap()
}

fn status_lines(out: &lab::model::ExecResult, sec: &str) -> Vec<String> {
    section(out, sec)
        .into_iter()
        .filter(|l| l.contains("Status ="))
        .collect()
}

const OK_VERIFY: [&str; 2] = [
    "Trusted DC Connection Status Status = 0 0x0 NERR_Success",
    "Trust Verification Status = 0 0x0 NERR_Success",
];

fn verify_lines(code: &str) -> Vec<String> {
    vec![
        format!("Trusted DC Connection Status Status = {code}"),
        format!("Trust Verification Status = {code}"),
    ]
}

const DENIED: &str = "5 0x5 ERROR_ACCESS_DENIED";

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
    assert_eq!(
        field(&out, "domain_role").unwrap(),
        if info.os_caption.contains("Server") {
            "3"
        } else {
            "1"
        }
    );
    assert_eq!(field(&out, "user").unwrap(), "lab\\tsrepair");
    assert_eq!(
        field(&out, "admin_sid").unwrap(),
        format!("{}-500", info.machine_sid)
    );
    assert_eq!(field(&out, "tcsc").unwrap(), "True");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(field(&out, "sc_query_exit").unwrap(), "0");
    assert_eq!(field(&out, "sc_verify_exit").unwrap(), "0");
    let q = section(&out, "sc_query");
    assert_eq!(
        q.first().unwrap().trim_end(),
        "Flags: 30 HAS_IP  HAS_TIMESERV"
    );
    assert_eq!(
        q.get(1).unwrap().trim_end(),
        format!("Trusted DC Name \\\\{}", info.bound_dc)
    );
    assert_eq!(
        status_lines(&out, "sc_query"),
        vec!["Trusted DC Connection Status Status = 0 0x0 NERR_Success"]
    );
    let nl = section(&out, "sc_verify");
    assert_eq!(
        nl.first().unwrap().trim_end(),
        "Flags: b0 HAS_IP  HAS_TIMESERV"
    );
    assert_eq!(
        nl.get(1).unwrap().trim_end(),
        format!("Trusted DC Name \\\\{}", info.bound_dc)
    );
    assert_eq!(status_lines(&out, "sc_verify"), OK_VERIFY);
    // The locator (DOMAIN.md "Testing the channel", revised): /dsgetdc /pdc names the PDC
    // emulator with the PDC flag, in the layout of the real capture nltest_dsgetdc_ok.txt.
    let pdc = section(&out, "dsgetdc_pdc");
    assert_eq!(pdc.first().unwrap(), "           DC: \\\\dc1.lab.test");
    assert_eq!(pdc.get(1).unwrap(), "      Address: \\\\127.0.0.10");
    assert!(
        pdc.iter()
            .any(|l| l.trim_start().starts_with("Flags: PDC GC DS LDAP")),
        "{pdc:?}"
    );
    let located = section(&out, "dsgetdc");
    assert!(
        located
            .first()
            .unwrap()
            .starts_with("           DC: \\\\dc"),
        "{located:?}"
    );
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
    assert_eq!(
        field(&out, "user").unwrap(),
        format!("{name}\\administrator")
    );
    assert_eq!(field(&out, "tcsc").unwrap(), "True");
}

fn assert_broken_wrong_password(lab: &Lab, id: lab::host::HostId) {
    // Domain accounts get 401: NTLM pass-through needs the secure channel.
    assert!(matches!(
        lab.logon(id, "LAB", "tsrepair"),
        Logon::Reject(RejectReason::BrokenTrust)
    ));
    assert!(matches!(
        lab.logon(id, "", "tsrepair@lab.test"),
        Logon::Reject(RejectReason::BrokenTrust)
    ));
    // The local Administrator still works.
    let who = local_admin(lab, id);
    assert!(lab.authorize_winrm(id, &who).is_ok());
    let out = run(lab, id, &who, PROBE, b"");
    assert_eq!(out.exit_code, 0, "stderr: {}", out.stderr_text());
    assert_eq!(field(&out, "tcsc").unwrap(), "False");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(
        field(&out, "sc_verify_exit").unwrap(),
        "0",
        "nltest still 'completes successfully'"
    );
    let nl = section(&out, "sc_verify");
    assert_eq!(nl.first().unwrap(), "Flags: 80");
    assert_eq!(nl.get(1).unwrap().trim_end(), "Trusted DC Name");
    // DOMAIN.md: the common broken status is the DC refusing the password (5), not the
    // `I_NetLogonControl failed: Status = 5` of a caller without elevation.
    assert_eq!(status_lines(&out, "sc_verify"), verify_lines(DENIED));
    assert!(!out.stdout_text().contains("I_NetLogonControl failed"));
    assert_eq!(nl.last().unwrap(), "The command completed successfully");
}

#[test]
fn snapshot_after_a_rotation_is_broken_with_access_denied() {
    // DOMAIN.md "The secure channel" (revised): the member holds (P1, P0), the DC P2 and,
    // under the default DC rule, accepts only its current password.
    let lab = lab_with(FaultKind::Snapshot);
    assert_eq!(lab.spec().snapshot_rotations, 1);
    assert_broken_wrong_password(&lab, first_with(&lab, FaultKind::Snapshot));
}

#[test]
fn snapshot_age_and_the_dc_switch_decide_together() {
    // DOMAIN.md "The secure channel" (revised): no rotation since the snapshot is harmless;
    // one is enough to break under "current only"; a DC that accepted the previous
    // password would tolerate one rotation but not two.
    let cases = [
        (0, false, true),
        (1, false, false),
        (2, false, false),
        (1, true, true),
        (2, true, false),
    ];
    for (rotations, accept_previous, healthy) in cases {
        let mut spec = LabSpec::healthy(4, 7).with_fault(FaultKind::Snapshot, 1);
        spec.snapshot_rotations = rotations;
        spec.dc_accepts_previous = accept_previous;
        let lab = Lab::build(spec).unwrap();
        let id = first_with(&lab, FaultKind::Snapshot);
        assert_eq!(
            lab.channel_status(id).unwrap().is_ok(),
            healthy,
            "rotations {rotations}, accept previous {accept_previous}"
        );
        let other = first_healthy(&lab);
        assert!(
            lab.channel_status(other).unwrap().is_ok(),
            "healthy members stay healthy either way"
        );
    }
}

#[test]
fn the_member_retries_with_its_previous_password() {
    // DOMAIN.md (revised): "new password is bad, try old one". A member whose last change
    // never reached its DC (one missed replication) holds (new, old), and the lagging DC
    // still has old as current: healthy. Made here with the member's own rotation on dc1
    // while its DC is dc2 and the replication delay has not passed.
    let clock = ManualClock::new();
    let mut spec = LabSpec::healthy(4, 11).with_clock(Arc::new(clock.clone()));
    spec.replication_delay = Duration::from_secs(600);
    let lab = Lab::build(spec).unwrap();
    let id = lab
        .hosts()
        .into_iter()
        .find(|h| h.bound_dc == "dc2.lab.test")
        .unwrap()
        .id;
    let who = local_admin(&lab, id);
    // Pin to dc1, rotate there, then pin back to dc2 which has not seen the change.
    assert_eq!(
        lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1", b"")
            .exit_code,
        0
    );
    let changed = lab.execute(id, &who, "nltest /sc_change_pwd:lab.test", b"");
    assert_eq!(changed.exit_code, 0, "{}", changed.stderr_text());
    let back = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc2", b"");
    assert!(
        back.stdout_text().contains("Status = 0 0x0"),
        "{}",
        back.stdout_text()
    );
    // A second rotation on dc1: now dc2 has neither of the member's two values.
    assert_eq!(
        lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1", b"")
            .exit_code,
        0
    );
    assert_eq!(
        lab.execute(id, &who, "nltest /sc_change_pwd:lab.test", b"")
            .exit_code,
        0
    );
    let stale = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc2", b"");
    assert!(
        stale.stdout_text().contains(&format!("Status = {DENIED}")),
        "{}",
        stale.stdout_text()
    );
    // Replication heals it.
    clock.advance(Duration::from_secs(601));
    let healed = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc2", b"");
    assert!(
        healed.stdout_text().contains("Status = 0 0x0"),
        "{}",
        healed.stdout_text()
    );
}

#[test]
fn test_computer_secure_channel_reads_the_stored_status_and_ignores_server() {
    // DOMAIN.md "Testing the channel" (revised; Computer.cs): without -Repair the cmdlet
    // returns TC_QUERY's stored status; -Server is only resolved in DNS. A DC-side reset
    // after the channel's last use leaves the stored status good until the channel is used
    // again: /sc_query (stored) still says 0, /sc_verify (live) says 5, and from then on the
    // stored status is 5 too.
    let lab = Lab::build(LabSpec::healthy(3, 5)).unwrap();
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    let who = local_admin(&lab, id);
    assert!(lab.dc_reset_account(&name, 0));
    assert!(lab.dc_reset_account(&name, 1));
    for script in [
        "Test-ComputerSecureChannel",
        &test_dc("dc1.lab.test"),
        &test_dc("dc2"),
        &test_dc("ws0002.lab.test"),
    ] {
        let out = run(&lab, id, &who, script, b"");
        assert!(
            out.stdout_text().starts_with("True") || field(&out, "tcsc").as_deref() == Some("True"),
            "{script}: {}",
            out.stdout_text()
        );
    }
    let q = lab.execute(id, &who, "nltest /sc_query:lab.test", b"");
    assert!(
        q.stdout_text()
            .contains("Trusted DC Connection Status Status = 0 0x0 NERR_Success"),
        "{}",
        q.stdout_text()
    );
    let v = lab.execute(id, &who, "nltest /sc_verify:lab.test", b"");
    assert!(
        v.stdout_text()
            .contains(&format!("Trust Verification Status = {DENIED}")),
        "{}",
        v.stdout_text()
    );
    for dc in ["dc1.lab.test", "dc2.lab.test"] {
        let out = run(&lab, id, &who, &test_dc(dc), b"");
        assert_eq!(
            field(&out, "tcsc").unwrap(),
            "False",
            "every -Server value gives the same answer"
        );
    }
    let q = lab.execute(id, &who, "nltest /sc_query:lab.test", b"");
    assert!(
        q.stdout_text()
            .contains(&format!("Trusted DC Connection Status Status = {DENIED}")),
        "{}",
        q.stdout_text()
    );
    // An unresolvable -Server is the cmdlet's own terminating error.
    let bad = run(&lab, id, &who, &test_dc("nosuchhost.lab.test"), b"");
    assert_eq!(field(&bad, "tcsc").unwrap(), "");
    assert!(
        field(&bad, "tcsc_error")
            .unwrap()
            .contains("cannot be resolved"),
        "{:?}",
        field(&bad, "tcsc_error")
    );
}

#[test]
fn sc_verify_rediscovers_and_may_rebind() {
    // DOMAIN.md "Testing the channel": TC_VERIFY rediscovers a DC when the channel fails,
    // so a verify can move the binding; the answer reflects the new binding.
    let lab = Lab::build(LabSpec::healthy(3, 5)).unwrap();
    let id = lab
        .hosts()
        .into_iter()
        .find(|h| h.bound_dc == "dc1.lab.test")
        .unwrap()
        .id;
    let who = local_admin(&lab, id);
    // Pinned to dc2, then dc2 goes away for this host: the verify lands on the locator's DC.
    assert_eq!(
        lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc2", b"")
            .exit_code,
        0
    );
    assert_eq!(lab.host(id).unwrap().bound_dc, "dc2.lab.test");
    lab.set_dc_reachable(id, 1, false);
    let v = lab.execute(id, &who, "nltest /sc_verify:lab.test", b"");
    assert!(
        v.stdout_text().contains("Trusted DC Name \\\\dc1.lab.test"),
        "{}",
        v.stdout_text()
    );
    assert!(
        v.stdout_text()
            .contains("Trust Verification Status = 0 0x0"),
        "{}",
        v.stdout_text()
    );
    assert_eq!(lab.host(id).unwrap().bound_dc, "dc1.lab.test");
}

#[test]
fn dclist_as_a_local_account_lists_no_dc_but_dsgetdc_names_the_pdc() {
    // DOMAIN.md (revised): /dclist binds as the caller; a local account over WinRM gets
    // "no DsBind access" and the browser fallback fails; /dsgetdc /pdc needs no credentials.
    let lab = Lab::build(LabSpec::healthy(3, 5)).unwrap();
    let id = first_healthy(&lab);
    let who = local_admin(&lab, id);
    let out = lab.execute(id, &who, "nltest /dclist:lab.test", b"");
    assert_eq!(out.exit_code, 1);
    assert!(
        out.stdout_text()
            .contains("You don't have access to DsBind to lab.test"),
        "{}",
        out.stdout_text()
    );
    assert!(!out.stdout_text().contains("[PDC]"));
    assert_eq!(
        out.stderr_text(),
        "I_NetGetDCList failed: Status = 6118 0x17e6 ERROR_NO_BROWSER_SERVERS_FOUND\r\n"
    );
    let pdc = lab.execute(id, &who, "nltest /dsgetdc:lab.test /pdc", b"");
    assert_eq!(pdc.exit_code, 0);
    assert!(
        pdc.stdout_text()
            .starts_with("           DC: \\\\dc1.lab.test\r\n"),
        "{}",
        pdc.stdout_text()
    );
    // A domain account with a working channel does get the list.
    let ts = domain_identity(&lab, id, "tsrepair").unwrap();
    let listed = lab.execute(id, &ts, "nltest /dclist:lab.test", b"");
    assert!(
        listed.stdout_text().contains("dc1.lab.test [PDC]"),
        "{}",
        listed.stdout_text()
    );
}

#[test]
fn stale_dc_is_broken_until_its_dc_gets_the_password() {
    // DOMAIN.md: a DC that missed two or more changes strands a member bound to it; its
    // rediscovery lands on the same (site) DC, so /sc_verify does not hide it.
    let lab = lab_with(FaultKind::StaleDc);
    let id = first_with(&lab, FaultKind::StaleDc);
    assert_broken_wrong_password(&lab, id);
    let info = lab.host(id).unwrap();
    assert_eq!(info.bound_dc, "dc2.lab.test");
    // The fleet can see it from the DCs: pwdLastSet differs between them.
    let a1 = lab.account_on_dc(&info.computer_name, 0).unwrap();
    let a2 = lab.account_on_dc(&info.computer_name, 1).unwrap();
    assert!(a1.pwd_last_set > a2.pwd_last_set);
    assert_eq!(a1.version, a2.version + 2);
    assert_eq!(a1.object_sid, a2.object_sid);
    // Pinning to the DC that has the password heals it (DOMAIN.md "Repairing it").
    let who = local_admin(&lab, id);
    let out = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert!(
        out.stdout_text().contains("Status = 0 0x0"),
        "{}",
        out.stdout_text()
    );
}

#[test]
fn dc_reset_is_broken_with_access_denied() {
    let lab = lab_with(FaultKind::DcReset);
    assert_broken_wrong_password(&lab, first_with(&lab, FaultKind::DcReset));
}

#[test]
fn disabled_and_deleted_accounts_both_answer_1787() {
    // DOMAIN.md: Samba answers 1787 ERROR_NO_TRUST_SAM_ACCOUNT for both; only LDAP tells
    // them apart.
    for kind in [FaultKind::DisabledAccount, FaultKind::DeletedAccount] {
        let lab = lab_with(kind);
        let id = first_with(&lab, kind);
        let name = lab.host(id).unwrap().computer_name;
        let who = local_admin(&lab, id);
        let out = run(&lab, id, &who, PROBE, b"");
        assert_eq!(
            status_lines(&out, "sc_verify"),
            verify_lines("1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT"),
            "{kind}"
        );
        assert_eq!(field(&out, "tcsc").unwrap(), "False");
        let on_dc = lab.account_on_dc(&name, 0);
        match kind {
            FaultKind::DisabledAccount => assert!(!on_dc.unwrap().enabled),
            _ => assert!(on_dc.is_none()),
        }
        assert!(matches!(
            lab.logon(id, "LAB", "tsrepair"),
            Logon::Reject(RejectReason::BrokenTrust)
        ));
    }
}

#[test]
fn name_twins_share_one_account_and_one_is_broken() {
    let lab = lab_with(FaultKind::Clone);
    let pair: Vec<_> = lab
        .hosts()
        .into_iter()
        .filter(|h| h.fault == Some(FaultKind::Clone))
        .collect();
    assert_eq!(pair.len(), 2);
    let (a, b) = (&pair[0], &pair[1]);
    assert_eq!(a.twin, Some(b.id));
    assert_eq!(b.twin, Some(a.id));
    assert_eq!(a.computer_name, b.computer_name);
    assert_eq!(a.machine_sid, b.machine_sid);
    assert_ne!(a.address, b.address);
    let ok: Vec<bool> = pair
        .iter()
        .map(|h| lab.channel_status(h.id).unwrap().is_ok())
        .collect();
    assert_eq!(
        ok.iter().filter(|x| **x).count(),
        1,
        "exactly one twin works: {ok:?}"
    );
    // Each password change by one breaks the other.
    let good = pair
        .iter()
        .find(|h| lab.channel_status(h.id).unwrap().is_ok())
        .unwrap();
    let bad = pair.iter().find(|h| h.id != good.id).unwrap();
    let who = local_admin(&lab, good.id);
    assert_eq!(
        lab.execute(good.id, &who, "nltest /sc_change_pwd:lab.test", b"")
            .exit_code,
        0
    );
    assert!(lab.channel_status(good.id).unwrap().is_ok());
    assert!(!lab.channel_status(bad.id).unwrap().is_ok());
}

#[test]
fn sid_duplicates_have_their_own_accounts_and_healthy_channels() {
    // DOMAIN.md (revised): a shared machine SID does not break either channel.
    let lab = lab_with(FaultKind::SidDuplicate);
    let pair: Vec<_> = lab
        .hosts()
        .into_iter()
        .filter(|h| h.fault == Some(FaultKind::SidDuplicate))
        .collect();
    assert_eq!(pair.len(), 2);
    assert_eq!(pair[0].machine_sid, pair[1].machine_sid);
    assert_ne!(pair[0].computer_name, pair[1].computer_name);
    for h in &pair {
        assert!(lab.channel_status(h.id).unwrap().is_ok(), "{}", h.address);
        let out = run(&lab, h.id, &local_admin(&lab, h.id), PROBE, b"");
        assert_eq!(
            field(&out, "admin_sid").unwrap(),
            format!("{}-500", pair[0].machine_sid)
        );
        assert_eq!(status_lines(&out, "sc_verify"), OK_VERIFY);
    }
}

#[test]
fn dns_finds_no_dc_while_the_dcs_are_up() {
    // DOMAIN.md: no DC reachable is often DNS pointing at a non-DC: the locator finds
    // nothing (1355) and the channel has no logon server (1311); other members are fine.
    let lab = lab_with(FaultKind::Dns);
    let id = first_with(&lab, FaultKind::Dns);
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(
        status_lines(&out, "sc_verify"),
        verify_lines("1311 0x51f ERROR_NO_LOGON_SERVERS")
    );
    // nltest writes the failure to stderr, which `2>&1` turns into a NativeCommandError
    // record in the variable (printed as PowerShell 5.1 prints it).
    for sec in ["dsgetdc", "dsgetdc_pdc"] {
        let lines = section(&out, sec);
        assert_eq!(
            lines.first().unwrap(),
            "nltest.exe : Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN",
            "{lines:?}"
        );
    }
    assert!(matches!(
        lab.logon(id, "LAB", "tsrepair"),
        Logon::Reject(RejectReason::NoLogonServers)
    ));
    assert!(lab.channel_status(first_healthy(&lab)).unwrap().is_ok());
}

#[test]
fn no_dc_gives_1311_while_the_locator_finds_one() {
    let lab = lab_with(FaultKind::NoDc);
    let id = first_with(&lab, FaultKind::NoDc);
    assert!(matches!(
        lab.logon(id, "lab.test", "Administrator"),
        Logon::Reject(RejectReason::NoLogonServers)
    ));
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(field(&out, "tcsc").unwrap(), "False");
    assert_eq!(field(&out, "tcsc_error").unwrap(), "");
    assert_eq!(
        status_lines(&out, "sc_verify"),
        verify_lines("1311 0x51f ERROR_NO_LOGON_SERVERS")
    );
    assert!(section(&out, "dsgetdc")
        .first()
        .unwrap()
        .starts_with("           DC: \\\\dc"));
    let q = lab.execute(id, &who, "nltest /query", b"");
    assert_eq!(q.stdout_text(), "Flags: 0\r\nConnection Status = 1311 0x51f ERROR_NO_LOGON_SERVERS\r\nThe command completed successfully\r\n");
}

#[test]
fn deny_network_logon_refuses_domain_accounts_on_a_healthy_host() {
    // DOMAIN.md "Reaching a broken machine" (revised): 401 has other causes than a broken
    // trust.
    let lab = lab_with(FaultKind::DenyNetworkLogon);
    let id = first_with(&lab, FaultKind::DenyNetworkLogon);
    assert!(matches!(
        lab.logon(id, "LAB", "tsrepair"),
        Logon::Reject(RejectReason::DeniedByPolicy)
    ));
    assert!(lab.channel_status(id).unwrap().is_ok());
    let out = run(&lab, id, &local_admin(&lab, id), PROBE, b"");
    assert_eq!(status_lines(&out, "sc_verify"), OK_VERIFY);
}

#[test]
fn a_domain_controller_answers_as_one() {
    // DOMAIN.md: DCs are not members; DomainRole 4 (5 for the PDC emulator), and
    // Test-ComputerSecureChannel fails there (capture test_computersecurechannel_verbose_on_dc_1355.txt).
    let lab = lab_with(FaultKind::DomainController);
    let id = first_with(&lab, FaultKind::DomainController);
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, PROBE, b"");
    assert_eq!(field(&out, "domain_role").unwrap(), "4");
    assert_eq!(
        field(&out, "tcsc"),
        None,
        "the probe skips the member checks on a DC"
    );
    let t = run(&lab, id, &who, "Test-ComputerSecureChannel", b"");
    assert!(error_text(&t.stderr)
        .contains("The specified domain either does not exist or could not be contacted"));
}

#[test]
fn offline_and_slow() {
    let spec = LabSpec::healthy(6, 3)
        .with_fault(FaultKind::Offline, 1)
        .with_fault(FaultKind::Slow, 1);
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
fn filtered_admin_gets_401() {
    let lab = lab_with(FaultKind::FilteredAdmin);
    let id = first_with(&lab, FaultKind::FilteredAdmin);
    let info = lab.host(id).unwrap();
    assert_eq!(info.local_admin.user, "opsadmin");
    // Built-in Administrator is disabled: 401.
    assert!(matches!(
        lab.logon(id, "", "Administrator"),
        Logon::Reject(RejectReason::AccountDisabled)
    ));
    // opsadmin is a local admin other than RID 500 without LocalAccountTokenFilterPolicy=1:
    // real hosts answer 401 (pywinrm #188; DOMAIN.md "Reaching a broken machine", revised).
    assert!(matches!(
        lab.logon(id, ".", "OPSADMIN"),
        Logon::Reject(RejectReason::FilteredToken)
    ));
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
    for (dom, user) in [
        ("", "administrator"),
        (".", "ADMINISTRATOR"),
        (name.as_str(), "Administrator"),
        (&name.to_lowercase(), "administrator"),
    ] {
        match lab.logon(id, dom, user) {
            Logon::Verify { identity, .. } => assert!(!identity.is_domain(), "{dom}\\{user}"),
            other => panic!("{dom}\\{user}: {other:?}"),
        }
    }
    for (dom, user) in [
        ("LAB", "TSREPAIR"),
        ("lab", "tsrepair"),
        ("LAB.TEST", "tsrepair"),
        ("", "tsrepair@LAB.TEST"),
        ("", "tsrepair"),
    ] {
        match lab.logon(id, dom, user) {
            Logon::Verify { identity, .. } => {
                assert!(identity.is_domain(), "{dom}\\{user}");
                assert_eq!(identity.whoami(), "lab\\tsrepair");
            }
            other => panic!("{dom}\\{user}: {other:?}"),
        }
    }
    assert!(matches!(
        lab.logon(id, "LAB", "nobody"),
        Logon::Reject(RejectReason::UnknownUser)
    ));
    assert!(matches!(
        lab.logon(id, "OTHER", "tsrepair"),
        Logon::Reject(RejectReason::UnknownUser)
    ));
    assert!(matches!(
        lab.logon(id, ".", "tsrepair"),
        Logon::Reject(RejectReason::UnknownUser)
    ));
    // Domain Administrator (LAB\Administrator) is a different account from the local one.
    let Logon::Verify { identity, password } = lab.logon(id, "LAB", "administrator") else {
        panic!()
    };
    assert!(identity.is_domain());
    assert!(lab.authorize_winrm(id, &identity).is_ok());
    use secrecy::ExposeSecret;
    assert_eq!(
        password.expose_secret(),
        lab.domain_admin_credentials().password.expose_secret()
    );
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
    assert!(matches!(
        lab.logon(id, "", "opsadmin"),
        Logon::Reject(RejectReason::FilteredToken)
    ));
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
    for k in FaultKind::DEFAULT_MIX {
        assert!(hosts.iter().any(|h| h.fault == Some(k)), "{k} missing");
    }
    // `hung` is opt-in: a client pays its whole read timeout for one.
    assert!(!FaultKind::DEFAULT_MIX.contains(&FaultKind::Hung));
    assert!(hosts.iter().all(|h| h.fault != Some(FaultKind::Hung)));
    let healthy = hosts.iter().filter(|h| h.fault.is_none()).count();
    assert!(healthy > 130, "{healthy}");
    for h in hosts.iter().filter(|h| h.fault.is_none()) {
        assert!(
            lab.channel_status(h.id).unwrap().is_ok(),
            "{} should be healthy",
            h.address
        );
    }
    for h in hosts.iter().filter(|h| {
        matches!(
            h.fault,
            Some(
                FaultKind::Snapshot
                    | FaultKind::DcReset
                    | FaultKind::StaleDc
                    | FaultKind::NoDc
                    | FaultKind::Dns
                    | FaultKind::DisabledAccount
                    | FaultKind::DeletedAccount
            )
        )
    }) {
        assert!(
            !lab.channel_status(h.id).unwrap().is_ok(),
            "{} should be broken",
            h.address
        );
    }
    assert!(hosts
        .iter()
        .all(|h| h.address.ends_with(".lab.test") && h.dns_name.ends_with(".lab.test")));
    assert_eq!(hosts[0].address, "ws0001.lab.test");
    assert_eq!(lab.host_by_address("WS0002.lab.test"), Some(hosts[1].id));
    assert_eq!(lab.host_by_address("ws0003"), Some(hosts[2].id));
}

#[test]
fn fault_names_round_trip() {
    for k in FaultKind::ALL {
        assert_eq!(k.to_string().parse::<FaultKind>().unwrap(), k);
    }
    assert_eq!("stale-dc".parse::<FaultKind>().unwrap(), FaultKind::StaleDc);
    assert!(
        "replication-lag".parse::<FaultKind>().is_err(),
        "replaced by stale-dc"
    );
    assert_eq!(
        "Filtered-Admin".parse::<FaultKind>().unwrap(),
        FaultKind::FilteredAdmin
    );
    assert!("bogus".parse::<FaultKind>().is_err());
    assert_eq!(
        FaultKind::ALL
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        [
            "snapshot",
            "clone",
            "stale-dc",
            "dc-reset",
            "disabled-account",
            "deleted-account",
            "sid-duplicate",
            "dns",
            "no-dc",
            "deny-network-logon",
            "domain-controller",
            "offline",
            "slow",
            "filtered-admin",
            "hung",
            "drop-after-reset",
            "reboot-mid-rejoin",
            "dc-away-mid-repair",
            "winrm-restart"
        ]
    );
}

#[test]
fn build_errors() {
    assert!(Lab::build(LabSpec::healthy(1, 1).with_fault(FaultKind::Clone, 1)).is_err());
    let mut one_dc = LabSpec::healthy(3, 1).with_fault(FaultKind::StaleDc, 1);
    one_dc.dcs = 1;
    assert!(Lab::build(one_dc).is_err());
}

#[test]
fn failed_channel_setups_are_logged_as_netlogon_events() {
    // DOMAIN.md / Microsoft's broken-trust article: a member that cannot authenticate with
    // a DC logs NETLOGON 3210 naming that DC; one that finds no DC logs 5719 with the
    // reason (%%1311 in the rendered capture). The probe reads them by provider and Id,
    // so the query does not depend on the display language.
    let spec = LabSpec::healthy(6, 8)
        .with_fault(FaultKind::Snapshot, 1)
        .with_fault(FaultKind::Dns, 1);
    let lab = Lab::build(spec).unwrap();
    let snap = first_with(&lab, FaultKind::Snapshot);
    let out = run(&lab, snap, &local_admin(&lab, snap), PROBE, b"");
    let dc = lab.host(snap).unwrap().bound_dc;
    let events: Vec<String> = out
        .stdout_text()
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("ts.event=").map(str::to_string))
        .collect();
    assert!(!events.is_empty(), "{}", out.stdout_text());
    let fields: Vec<&str> = events[0].split('|').collect();
    assert_eq!(fields[0], "3210");
    assert!(fields[1].parse::<u64>().unwrap() >= lab::domain::LAB_EPOCH_FILETIME);
    assert_eq!(fields[2], format!("\\\\{dc}"));
    assert_eq!(fields[3], "LAB");
    let dns = first_with(&lab, FaultKind::Dns);
    let out = run(&lab, dns, &local_admin(&lab, dns), PROBE, b"");
    assert!(
        out.stdout_text().contains("ts.event=5719|"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stdout_text().contains("|LAB|%%1311\r\n"),
        "{}",
        out.stdout_text()
    );
    // A healthy member has none: Get-WinEvent's NoMatchingEventsFound is silenced.
    let ok = first_healthy(&lab);
    let out = run(&lab, ok, &local_admin(&lab, ok), PROBE, b"");
    assert!(!out.stdout_text().contains("ts.event="));
    assert!(out.stderr.is_empty(), "{}", out.stderr_text());
    let loud = run(&lab, ok, &local_admin(&lab, ok), "Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'NETLOGON'; Id = 3210 }", b"");
    assert!(error_text(&loud.stderr)
        .contains("No events were found that match the specified selection criteria."));
}

// Mid-repair faults (issue 16): each strikes once, at the first destructive step.

/// A lab whose only fault is `kind`, on a manual clock, with short outages (the struck
/// command's output is held back that long in wall time).
fn mid_repair_lab(kind: FaultKind) -> (Lab, ManualClock, lab::host::HostId) {
    let clock = ManualClock::new();
    let mut spec = LabSpec::healthy(4, 7)
        .with_fault(kind, 1)
        .with_clock(Arc::new(clock.clone()));
    spec.mid_repair_outage = Duration::from_millis(30);
    spec.reboot_duration = Duration::from_millis(30);
    let lab = Lab::build(spec).unwrap();
    let id = first_with(&lab, kind);
    (lab, clock, id)
}

fn reset_on_dc1(lab: &Lab, id: lab::host::HostId) -> lab::model::ExecResult {
    let who = local_admin(lab, id);
    run(
        lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    )
}

#[test]
fn mid_repair_kinds_are_opt_in_and_broken_until_they_strike() {
    for kind in [
        FaultKind::DropAfterReset,
        FaultKind::RebootMidRejoin,
        FaultKind::DcAwayMidRepair,
        FaultKind::WinrmRestart,
    ] {
        assert!(kind.is_mid_repair() && kind.breaks_channel());
        assert!(!FaultKind::DEFAULT_MIX.contains(&kind), "{kind}");
        let (lab, _, id) = mid_repair_lab(kind);
        assert!(
            !lab.channel_status(id).unwrap().is_ok(),
            "{kind}: broken like a snapshot"
        );
        assert!(lab.is_online(id));
        assert_eq!(lab.destructive_steps(id), 0);
    }
}

#[test]
fn drop_after_reset_resets_on_host_and_dc_then_drops_the_connection_once() {
    let (lab, clock, id) = mid_repair_lab(FaultKind::DropAfterReset);
    let name = lab.host(id).unwrap().computer_name;
    let before = lab.account_on_dc(&name, 0).unwrap();
    let out = reset_on_dc1(&lab, id);
    // The reset happened (the output a client never sees says so too).
    assert_eq!(
        out.stdout_text(),
        "ts.reset=ok\r\n",
        "{}",
        clixml_text(&out.stderr)
    );
    assert!(lab.account_on_dc(&name, 0).unwrap().version > before.version);
    assert_eq!(lab.destructive_steps(id), 1);
    // Then the host does not answer until the outage is over.
    assert!(!lab.is_online(id));
    clock.advance(Duration::from_millis(31));
    assert!(lab.is_online(id));
    // Once: a second reset is an ordinary one (and counted: a repair must never send it).
    let again = reset_on_dc1(&lab, id);
    assert_eq!(again.stdout_text(), "ts.reset=ok\r\n");
    assert!(lab.is_online(id));
    assert_eq!(lab.destructive_steps(id), 2);
}

#[test]
fn winrm_restart_loses_the_reset_before_it_runs() {
    let (lab, clock, id) = mid_repair_lab(FaultKind::WinrmRestart);
    let name = lab.host(id).unwrap().computer_name;
    let before = lab.account_on_dc(&name, 0).unwrap();
    let _lost = reset_on_dc1(&lab, id);
    assert_eq!(
        lab.account_on_dc(&name, 0).unwrap(),
        before,
        "nothing reset"
    );
    assert_eq!(lab.destructive_steps(id), 0);
    assert!(!lab.channel_status(id).unwrap().is_ok());
    assert!(
        !lab.is_online(id),
        "connections refused while the service restarts"
    );
    clock.advance(Duration::from_millis(31));
    assert!(lab.is_online(id));
}

#[test]
fn dc_away_mid_repair_takes_the_written_dc_away_for_good() {
    let (lab, _, id) = mid_repair_lab(FaultKind::DcAwayMidRepair);
    let out = reset_on_dc1(&lab, id);
    assert_eq!(
        out.stdout_text(),
        "ts.reset=ok\r\n",
        "{}",
        clixml_text(&out.stderr)
    );
    assert_eq!(lab.destructive_steps(id), 1);
    assert!(lab.is_online(id), "the host still answers");
    // Pinning the member to the DC written now fails: dc1 does not answer it.
    let who = local_admin(&lab, id);
    let pin = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert!(
        pin.stdout_text()
            .contains("Status = 1311 0x51f ERROR_NO_LOGON_SERVERS"),
        "{}",
        pin.stdout_text()
    );
    let line = lab
        .snapshot()
        .hosts
        .into_iter()
        .find(|l| l.starts_with(&format!("{} ", id.0)))
        .unwrap();
    assert!(line.contains("reach=[false, true]"), "{line}");
}

#[test]
fn reboot_mid_rejoin_leaves_the_domain_and_restarts_before_the_output() {
    let (lab, clock, id) = mid_repair_lab(FaultKind::RebootMidRejoin);
    let who = local_admin(&lab, id);
    let _lost = run(
        &lab,
        id,
        &who,
        &unjoin(),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(lab.destructive_steps(id), 1);
    assert!(!lab.is_online(id), "restarting");
    clock.advance(Duration::from_millis(31));
    assert!(lab.is_online(id));
    let probe = run(&lab, id, &local_admin(&lab, id), PROBE, b"");
    assert_eq!(
        field(&probe, "part_of_domain").unwrap(),
        "False",
        "the leave took effect"
    );
}

/// On the wire: the client's Receive never gets the reset's output (its long poll times
/// out and the next request finds the host gone), while the reset took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_after_reset_on_the_wire_loses_the_output_not_the_reset() {
    let mut spec = LabSpec::healthy(3, 7).with_fault(FaultKind::DropAfterReset, 1);
    spec.mid_repair_outage = Duration::from_secs(4);
    let running =
        lab::wire::RunningLab::start(Lab::build(spec).unwrap(), lab::wire::WireOptions::default())
            .await
            .unwrap();
    let lab = running.lab().clone();
    let ep = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::DropAfterReset))
        .unwrap()
        .clone();
    let name = ep.info.computer_name.clone();
    let before = lab.account_on_dc(&name, 0).unwrap();
    let admin = &ep.info.local_admin;
    let mut cfg = winrm::session::SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            winrm::transport::Scheme::Http,
        ),
        winrm::transport::AuthMethod::Ntlm,
        admin.user.clone(),
        winrm::secret::secret(secrecy::ExposeSecret::expose_secret(&admin.password)),
    );
    // Shorter than the outage: the long poll gives up while the host is away.
    cfg.operation_timeout = Duration::from_secs(1);
    cfg.read_timeout = Duration::from_secs(3);
    let mut session = winrm::session::Session::new(cfg).unwrap();
    let res = session
        .run_powershell(
            &repair_reset("dc1.lab.test"),
            Some(&stdin_for(&lab.repair_credentials())),
        )
        .await;
    assert!(res.is_err(), "the output must not come back: {res:?}");
    assert!(lab.account_on_dc(&name, 0).unwrap().version > before.version);
    assert_eq!(lab.destructive_steps(ep.info.id), 1);
}
