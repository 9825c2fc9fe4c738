//! Repairs behave as on Windows: Reset-ComputerMachinePassword heals and replicates, a DC
//! reset is not healed by a reboot, rejoin heals, resetting a clone breaks its twin, and
//! the failures print the real error texts.

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
use lab::model::{Credential, Lab, LabSpec, Logon};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

fn manual_lab(kind: Option<FaultKind>, hosts: usize) -> (Lab, ManualClock) {
    let clock = ManualClock::new();
    let mut spec = LabSpec::healthy(hosts, 11).with_clock(Arc::new(clock.clone()));
    if let Some(k) = kind {
        spec = spec.with_fault(k, 1);
    }
    (Lab::build(spec).unwrap(), clock)
}

#[test]
fn reset_heals_snapshot_and_replicates() {
    let (lab, clock) = manual_lab(Some(FaultKind::Snapshot), 4);
    let id = first_with(&lab, FaultKind::Snapshot);
    let who = local_admin(&lab, id);
    let name = lab.host(id).unwrap().computer_name;
    let before_dc2 = lab.account_on_dc(&name, 1).unwrap();
    let bound_before = lab.host(id).unwrap().bound_dc;
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        out.stdout_text(),
        "ts.reset=ok\r\n",
        "stderr: {}",
        clixml_text(&out.stderr)
    );
    assert_eq!(out.exit_code, 0);
    // DOMAIN.md "Repairing it" (revised): the reset does not rebind Netlogon; the channel
    // works at once only where the member was already bound to the DC written.
    assert_eq!(lab.host(id).unwrap().bound_dc, bound_before);
    assert_eq!(
        lab.channel_status(id).unwrap().is_ok(),
        bound_before == "dc1.lab.test"
    );
    // Written on dc1; dc2 still has the old copy until replication.
    let dc1 = lab.account_on_dc(&name, 0).unwrap();
    assert_eq!(lab.account_on_dc(&name, 1).unwrap(), before_dc2);
    assert!(dc1.version > before_dc2.version);
    clock.advance(lab.spec().replication_delay + Duration::from_secs(1));
    assert_eq!(lab.account_on_dc(&name, 1).unwrap(), dc1);
    assert!(lab.channel_status(id).unwrap().is_ok());
    // Domain logons work again. The reset did not use the channel, so the stored status
    // (what Test-ComputerSecureChannel reads) is still that of its last, failed use; the
    // probe's live /sc_verify uses it, and from then on the stored status is good too
    // (DOMAIN.md "Testing the channel" and "Repairing it", revised).
    let ts = domain_identity(&lab, id, "tsrepair").expect("domain logon after repair");
    let probe = run(&lab, id, &ts, PROBE, b"");
    assert_eq!(field(&probe, "tcsc").unwrap(), "False");
    assert!(section(&probe, "sc_verify")
        .iter()
        .any(|l| l == "Trust Verification Status = 0 0x0 NERR_Success"));
    let again = run(&lab, id, &ts, PROBE, b"");
    assert_eq!(field(&again, "tcsc").unwrap(), "True");
}

#[test]
fn tcsc_repair_heals() {
    let (lab, _clock) = manual_lab(Some(FaultKind::Snapshot), 3);
    let id = first_with(&lab, FaultKind::Snapshot);
    let who = local_admin(&lab, id);
    let out = run(
        &lab,
        id,
        &who,
        &repair_tcsc(),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        field(&out, "repair").unwrap(),
        "True",
        "{}",
        out.stdout_text()
    );
    assert!(lab.channel_status(id).unwrap().is_ok());
}

#[test]
fn reset_failures_print_windows_errors() {
    let (lab, _clock) = manual_lab(Some(FaultKind::Snapshot), 3);
    let id = first_with(&lab, FaultKind::Snapshot);
    let who = local_admin(&lab, id);
    let digest = lab.state_digest();
    // helpdesk has no Reset Password right.
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.helpdesk_credentials()),
    );
    assert_eq!(
        field(&out, "reset_error").unwrap(),
        "Cannot reset the secure channel password for the computer account in the domain. Operation failed with the following exception: Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))."
    );
    // Wrong password: the DirectoryServices message keeps its CRLF, so a lone '.' follows.
    let bad = Credential {
        user: "LAB\\tsrepair".into(),
        password: SecretString::from("wrong"),
    };
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&bad),
    );
    assert_eq!(
        out.stdout_text(),
        "ts.reset_error=Cannot reset the secure channel password for the computer account in the domain. Operation failed with the following exception: The user name or password is incorrect.\r\n.\r\n"
    );
    // Unknown DC name.
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc9.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        field(&out, "reset_error").unwrap(),
        "Computer name dc9.lab.test cannot be resolved with the exception: No such host is known."
    );
    assert_eq!(lab.state_digest(), digest, "failed resets change nothing");
    assert!(!lab.channel_status(id).unwrap().is_ok());
    // Uncaught, the error goes to stderr as CLIXML with exit code 1.
    let out = run(
        &lab,
        id,
        &who,
        &format!("{CRED_PREAMBLE}Reset-ComputerMachinePassword -Credential $cred"),
        &stdin_for(&bad),
    );
    assert_eq!(out.exit_code, 1);
    let err = clixml_text(&out.stderr);
    assert!(out
        .stderr
        .starts_with(b"#< CLIXML\r\n<Objs Version=\"1.1.0.1\""));
    assert!(
        err.starts_with("Reset-ComputerMachinePassword : Cannot reset the secure channel password"),
        "{err}"
    );
    assert!(err.contains("At line:4 char:1\r\n+ Reset-ComputerMachinePassword -Credential $cred\r\n+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\r\n"), "{err}");
    // Long `+` lines wrap at the host width with a three-space continuation.
    let unwrapped = err.replace(" \r\n   ", "");
    assert!(
        unwrapped.contains("    + CategoryInfo          : OperationStopped: (WS"),
        "{err}"
    );
    assert!(unwrapped.contains("    + FullyQualifiedErrorId : FailToResetPasswordOnDomain,Microsoft.PowerShell.Commands.ResetComputerMachinePasswordCommand\r\n"), "{err}");
}

#[test]
fn reset_with_no_dc_fails() {
    let (lab, _clock) = manual_lab(Some(FaultKind::NoDc), 3);
    let id = first_with(&lab, FaultKind::NoDc);
    let who = local_admin(&lab, id);
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        out.stdout_text(),
        "ts.reset_error=Cannot reset the secure channel password for the computer account in the domain. Operation failed with the following exception: The server is not operational.\r\n.\r\n"
    );
}

#[test]
fn dc_reset_is_not_healed_by_restart_but_by_rejoin() {
    let (lab, clock) = manual_lab(Some(FaultKind::DcReset), 3);
    let id = first_with(&lab, FaultKind::DcReset);
    let who = local_admin(&lab, id);
    let out = run(&lab, id, &who, "Restart-Computer -Force", b"");
    assert_eq!(out.exit_code, 0);
    assert!(!lab.is_online(id));
    clock.advance(lab.spec().reboot_duration);
    assert!(lab.is_online(id));
    assert!(
        !lab.channel_status(id).unwrap().is_ok(),
        "a reboot does not heal a DC-side reset"
    );

    // Rejoin: unjoin + reboot, then join + reboot.
    let cred = lab.repair_credentials();
    let out = run(&lab, id, &who, &unjoin(), &stdin_for(&cred));
    assert_eq!(out.exit_code, 0, "{}", clixml_text(&out.stderr));
    assert!(clixml_text(&out.stderr)
        .contains("The changes will take effect after you restart the computer"));
    assert!(!lab.is_online(id));
    clock.advance(lab.spec().reboot_duration);
    let probe = run(&lab, id, &who, PROBE, b"");
    assert_eq!(field(&probe, "part_of_domain").unwrap(), "False");
    assert_eq!(field(&probe, "domain").unwrap(), "WORKGROUP");
    assert_eq!(
        field(&probe, "tcsc"),
        None,
        "the probe skips the channel checks off the domain"
    );
    let t = run(&lab, id, &who, "Test-ComputerSecureChannel", b"");
    assert!(
        clixml_text(&t.stderr).contains("ComputerNotInDomain"),
        "{}",
        clixml_text(&t.stderr)
    );
    assert!(matches!(lab.logon(id, "LAB", "tsrepair"), Logon::Reject(_)));
    let name = lab.host(id).unwrap().computer_name;
    assert!(
        !lab.account_on_dc(&name, 0).unwrap().enabled,
        "Remove-Computer with a credential disables the account"
    );

    // The object was made by a Domain Admin (owner Domain Admins or Administrator), so the
    // KB5020276 reuse block lets the repair account reuse it (DOMAIN.md "Repairing it",
    // revised; objects a non-admin made are covered in `rejoin.rs`).
    assert_owner_is_privileged(&lab, &name);
    let out = run(&lab, id, &who, &rejoin("dc1.lab.test"), &stdin_for(&cred));
    assert_eq!(out.exit_code, 0, "{}", clixml_text(&out.stderr));
    clock.advance(lab.spec().reboot_duration);
    assert!(lab.is_online(id));
    assert!(lab.channel_status(id).unwrap().is_ok());
    assert!(lab.account_on_dc(&name, 0).unwrap().enabled);
    assert!(domain_identity(&lab, id, "tsrepair").is_some());
}

fn assert_owner_is_privileged(lab: &Lab, name: &str) {
    let verdict = lab.reuse_verdict(name, "tsrepair");
    assert_eq!(
        verdict,
        Some(lab::domain::ReuseVerdict::PrivilegedOwner),
        "seed 11's DC-reset host must have an admin-made object for this test"
    );
}

#[test]
fn resetting_one_clone_breaks_its_twin() {
    let (lab, _clock) = manual_lab(Some(FaultKind::Clone), 4);
    let pair: Vec<_> = lab
        .hosts()
        .into_iter()
        .filter(|h| h.fault == Some(FaultKind::Clone))
        .collect();
    let broken = pair
        .iter()
        .find(|h| !lab.channel_status(h.id).unwrap().is_ok())
        .unwrap()
        .id;
    let working = pair
        .iter()
        .find(|h| lab.channel_status(h.id).unwrap().is_ok())
        .unwrap()
        .id;
    let who = local_admin(&lab, broken);
    let out = run(
        &lab,
        broken,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(field(&out, "reset").unwrap(), "ok");
    // The reset does not rebind (DOMAIN.md "Repairing it", revised): bind to dc1 to use it.
    let bw = lab.execute(broken, &who, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert!(
        bw.stdout_text().contains("Status = 0 0x0 NERR_Success"),
        "{}",
        bw.stdout_text()
    );
    assert!(lab.channel_status(broken).unwrap().is_ok());
    // Same account: the twin's secret no longer matches. Pin it to dc1 to see it at once
    // (on its own DC it breaks as soon as the reset replicates).
    let tw = local_admin(&lab, working);
    let r = lab.execute(working, &tw, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert!(
        r.stdout_text()
            .contains("Trusted DC Connection Status Status = 5 0x5 ERROR_ACCESS_DENIED"),
        "{}",
        r.stdout_text()
    );
    assert!(!lab.channel_status(working).unwrap().is_ok());
}

#[test]
fn stale_dc_heals_by_pinning_or_waiting() {
    let (lab, clock) = manual_lab(Some(FaultKind::StaleDc), 3);
    let id = first_with(&lab, FaultKind::StaleDc);
    let who = local_admin(&lab, id);
    assert!(!lab.channel_status(id).unwrap().is_ok());
    // Waiting less than the stuck window does nothing, even after the replication delay.
    clock.advance(lab.spec().replication_delay * 2);
    assert!(!lab.channel_status(id).unwrap().is_ok());
    // nltest /sc_reset pinned to dc1 re-establishes the channel with the existing secret.
    let out = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert_eq!(
        out.stdout_text(),
        "Flags: 30 HAS_IP  HAS_TIMESERV \r\nTrusted DC Name \\\\dc1.lab.test \r\nTrusted DC Connection Status Status = 0 0x0 NERR_Success\r\nThe command completed successfully\r\n"
    );
    assert!(lab.channel_status(id).unwrap().is_ok());
    // A second lab: wait out the stuck window instead.
    let (lab2, clock2) = manual_lab(Some(FaultKind::StaleDc), 3);
    let id2 = first_with(&lab2, FaultKind::StaleDc);
    clock2.advance(lab2.spec().lag_stuck_for + Duration::from_secs(1));
    assert!(lab2.channel_status(id2).unwrap().is_ok());
    let name = lab2.host(id2).unwrap().computer_name;
    assert_eq!(lab2.account_on_dc(&name, 0), lab2.account_on_dc(&name, 1));
}

#[test]
fn sc_change_pwd_rotates_and_keeps_previous() {
    let (lab, clock) = manual_lab(None, 2);
    let id = first_healthy(&lab);
    let who = local_admin(&lab, id);
    let name = lab.host(id).unwrap().computer_name;
    let bound = lab
        .dcs()
        .iter()
        .position(|d| *d == lab.host(id).unwrap().bound_dc)
        .unwrap();
    let before = lab.account_on_dc(&name, bound).unwrap();
    let out = lab.execute(id, &who, "nltest /sc_change_pwd:lab.test", b"");
    assert_eq!(out.stdout_text(), "Flags: 0\r\nConnection Status = 0 0x0 NERR_Success\r\nThe command completed successfully\r\n");
    let after = lab.account_on_dc(&name, bound).unwrap();
    assert!(after.pwd_last_set > before.pwd_last_set || after.version > before.version);
    clock.advance(Duration::from_secs(1));
    assert!(lab.channel_status(id).unwrap().is_ok());
}

#[test]
fn dc_side_reset_api_breaks_channel() {
    let (lab, _clock) = manual_lab(None, 2);
    let id = first_healthy(&lab);
    let info = lab.host(id).unwrap();
    let dc = lab.dcs().iter().position(|d| *d == info.bound_dc).unwrap();
    assert!(lab.dc_reset_account(&info.computer_name, dc));
    assert!(!lab.channel_status(id).unwrap().is_ok());
    // Deleting the account gives 1787 (the real capture's shape).
    let (lab, _clock) = manual_lab(None, 2);
    let id = first_healthy(&lab);
    let info = lab.host(id).unwrap();
    let dc = lab.dcs().iter().position(|d| *d == info.bound_dc).unwrap();
    assert!(lab.delete_account(&info.computer_name, dc));
    let who = local_admin(&lab, id);
    let out = lab.execute(id, &who, "nltest /sc_verify:lab.test", b"");
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/windows-output/nltest_sc_verify_broken_1787.txt"
    ))
    .unwrap();
    let got: Vec<String> = out
        .stdout_text()
        .split("\r\n")
        .map(|l| l.trim_end().to_string())
        .collect();
    let want: Vec<String> = expected
        .lines()
        .map(|l| l.trim_end().to_string())
        .chain([String::new()])
        .collect();
    assert_eq!(got, want);
}

/// A snapshot-restored host bound to dc2 (whose DC locator also picks dc2), in a lab with
/// the in-memory DCs' default replication delay.
fn snapshot_on_dc2() -> (Lab, ManualClock, lab::host::HostId) {
    let clock = ManualClock::new();
    let spec = LabSpec::healthy(4, 11)
        .with_clock(Arc::new(clock.clone()))
        .with_fault(FaultKind::Snapshot, 4);
    let lab = Lab::build(spec).unwrap();
    let id = lab
        .hosts()
        .into_iter()
        .find(|h| h.fault == Some(FaultKind::Snapshot) && h.bound_dc == "dc2.lab.test")
        .expect("a snapshot host on dc2")
        .id;
    (lab, clock, id)
}

#[test]
fn reset_does_not_rebind_a_member_on_a_dc_without_the_new_password() {
    // DOMAIN.md "Repairing it" (revised; Computer.cs): Reset-ComputerMachinePassword
    // writes the DC named and the local secret, and leaves Netlogon's binding and stored
    // status alone; the member stays broken until replication or nltest /sc_reset.
    let (lab, clock, id) = snapshot_on_dc2();
    let who = local_admin(&lab, id);
    let stored_before = run(&lab, id, &who, "Test-ComputerSecureChannel", b"").stdout_text();
    assert_eq!(stored_before, "False\r\n");
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        field(&out, "reset").unwrap(),
        "ok",
        "{}",
        clixml_text(&out.stderr)
    );
    assert_eq!(lab.host(id).unwrap().bound_dc, "dc2.lab.test");
    assert!(
        !lab.channel_status(id).unwrap().is_ok(),
        "dc2 has neither the new nor the old password"
    );
    assert_eq!(
        run(&lab, id, &who, "Test-ComputerSecureChannel", b"").stdout_text(),
        "False\r\n"
    );
    // Binding to the DC written heals it at once.
    let pin = lab.execute(id, &who, "nltest /sc_reset:lab.test\\dc1.lab.test", b"");
    assert!(
        pin.stdout_text()
            .contains("Trusted DC Connection Status Status = 0 0x0 NERR_Success"),
        "{}",
        pin.stdout_text()
    );
    assert!(lab.channel_status(id).unwrap().is_ok());
    // Or, without the pin, replication does (the default delay of the in-memory DCs).
    let (lab2, clock2, id2) = snapshot_on_dc2();
    let who2 = local_admin(&lab2, id2);
    let out = run(
        &lab2,
        id2,
        &who2,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab2.repair_credentials()),
    );
    assert_eq!(field(&out, "reset").unwrap(), "ok");
    assert!(!lab2.channel_status(id2).unwrap().is_ok());
    clock2.advance(lab2.spec().replication_delay + Duration::from_secs(1));
    assert!(lab2.channel_status(id2).unwrap().is_ok());
    drop(clock);
}

#[test]
fn tcsc_repair_rediscovers_any_dc_and_its_true_proves_nothing() {
    // DOMAIN.md "Repairing it" (revised; Computer.cs): -Repair -Server dc1 resets through
    // dc1, then NETLOGON_CONTROL_REDISCOVER with no DC named: the locator's DC (dc2 here),
    // and True as soon as a DC name comes back, whatever the connection status.
    let (lab, clock, id) = snapshot_on_dc2();
    let who = local_admin(&lab, id);
    let script = format!(
        "{CRED_PREAMBLE}try {{ $ok = Test-ComputerSecureChannel -Repair -Server 'dc1.lab.test' -Credential $cred -ErrorAction Stop; Write-Output \"ts.repair=$ok\" }} catch {{ Write-Output \"ts.repair_error=$($_.Exception.Message)\" }}\n"
    );
    let out = run(
        &lab,
        id,
        &who,
        &script,
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(
        field(&out, "repair").unwrap(),
        "True",
        "{}",
        out.stdout_text()
    );
    assert_eq!(lab.host(id).unwrap().bound_dc, "dc2.lab.test");
    assert!(
        !lab.channel_status(id).unwrap().is_ok(),
        "True although dc2 refuses the new password"
    );
    // The rediscovery used the channel: its stored status is the refusal.
    let q = lab.execute(id, &who, "nltest /sc_query:lab.test", b"");
    assert!(
        q.stdout_text()
            .contains("Status = 5 0x5 ERROR_ACCESS_DENIED"),
        "{}",
        q.stdout_text()
    );
    clock.advance(lab.spec().replication_delay + Duration::from_secs(1));
    assert!(lab.channel_status(id).unwrap().is_ok());
}

#[test]
fn replicate_single_object_needs_the_replication_right() {
    // DOMAIN.md "Repairing it" (revised): a member bound to a DC without the new password
    // stays broken until replication, nltest /sc_reset, or rootDSE replicateSingleObject,
    // which needs DS-Replication-Synchronize on the domain NC: Domain Admins have it (via
    // the built-in Administrators); the delegated tsrepair does not.
    let (lab, _clock, id) = snapshot_on_dc2();
    let who = local_admin(&lab, id);
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(field(&out, "reset").unwrap(), "ok");
    assert!(!lab.channel_status(id).unwrap().is_ok());
    let name = lab.host(id).unwrap().computer_name;
    let repair = lab.repair_credentials();
    assert_eq!(
        lab.replicate_single_object(&name, 0, 1, &repair.user, &repair.password),
        Err(lab::domain::ReplicateRefused::AccessDenied)
    );
    assert!(
        !lab.channel_status(id).unwrap().is_ok(),
        "refused: nothing moved"
    );
    let admin = lab.domain_admin_credentials();
    assert_eq!(
        lab.replicate_single_object(&name, 0, 1, &admin.user, &"wrong".to_string().into()),
        Err(lab::domain::ReplicateRefused::BadCredentials)
    );
    lab.replicate_single_object(&name, 0, 1, &admin.user, &admin.password)
        .unwrap();
    assert!(
        lab.channel_status(id).unwrap().is_ok(),
        "dc2 holds the new password at once"
    );
    assert_eq!(lab.host(id).unwrap().bound_dc, "dc2.lab.test");
}
