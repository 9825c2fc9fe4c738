//! Repair against a scripted fake `Remote`: success, fallback, pinning, failure, a
//! verification that still shows the host broken, rejoin with reboots, DC-side reset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use playbooks::*;

const USER: &str = "CONTOSO\\svc-reset";
const PASSWORD: &str = "Correct-Horse-9";

fn cred() -> DomainCredential {
    DomainCredential::new(USER, PASSWORD)
}

fn stale_probe() -> ProbeOut {
    ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
}

fn healthy_probe() -> ProbeOut {
    ProbeOut::healthy("WS02", 2).crlf(true)
}

fn plan_for(d: Diagnosis, allow_rejoin: bool) -> HostPlan {
    let finding = Finding {
        host: "ws02".into(),
        diagnosis: d,
        evidence: vec![],
    };
    let opts = PlanOptions {
        allow_rejoin,
        allow_dc_reset: false,
        allow_enable: false,
        repair_credential_available: true,
        pdcs: Default::default(),
        dc_access: true,
        dc_reset_hosts: Vec::new(),
        // The LDAP preflight found the object reusable (its owner is Domain Admins).
        rejoin_preflight: [(
            "ws02".to_string(),
            playbooks::RejoinPreflight {
                join_allowed: true,
                reason: "the object's owner is Domain Admins".into(),
                ou: Some("OU=Workstations,DC=contoso,DC=com".into()),
            },
        )]
        .into(),
        allow_restore: false,
        restore_preflight: std::collections::BTreeMap::new(),
    };
    plan_host(&finding, Some(&stale_probe().probe()), &opts)
}

fn run(fake: &mut FakeRemote, plan: &HostPlan) -> (RepairOutcome, Vec<RepairEvent>) {
    let mut events = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let opts = RepairOptions {
        reboot_timeout: Duration::from_secs(5),
        max_reconnects: 2,
    };
    let out = rt.block_on(repair_host_with(fake, plan, &cred(), &opts, &mut |e| {
        events.push(e)
    }));
    (out, events)
}

fn probe_reply(p: &ProbeOut) -> Step {
    Step::Ps("ts.name=", Ok(p.output()))
}

/// The probe before any change (never worse): the host is broken (live status 5), joined
/// and reachable, as planned.
fn baseline() -> Step {
    probe_reply(&stale_probe())
}

#[test]
fn reset_succeeds_and_is_verified() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword -Server 'dc01.contoso.com'",
            ok("ts.reset=ok\n"),
        ),
        // Always bound to the DC written (the cmdlet does not rebind; DOMAIN.md
        // "Repairing it", revised), then verified live.
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc01.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&healthy_probe()),
    ]);
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired, "{out:#?}");
    assert!(out.changed);
    assert!(out.verification.as_ref().unwrap().healthy);
    assert_eq!(
        out.steps
            .iter()
            .map(|s| (s.step.as_str(), s.ok))
            .collect::<Vec<_>>(),
        vec![("run", true), ("pin", true)]
    );
    // The credential went over stdin, and only there.
    assert!(
        fake.calls[0].stdin.is_none(),
        "the baseline probe gets no stdin"
    );
    assert_eq!(
        fake.calls[1].stdin.as_deref(),
        Some(format!("{USER}\r\n{PASSWORD}\r\n").as_bytes())
    );
    assert!(!fake.calls[1].text.contains(PASSWORD));
    // Decoded as UTF-8 on the host, set before `$input` is read (DOMAIN.md "WinRM details").
    let script = &fake.calls[1].text;
    let enc = script
        .find("[Console]::InputEncoding = New-Object System.Text.UTF8Encoding $false")
        .expect("InputEncoding set");
    assert!(enc < script.find("$input").unwrap());
    assert!(fake.calls[2].stdin.is_none(), "the pin gets no stdin");
    assert!(fake.calls[3].stdin.is_none(), "the probe gets no stdin");
    assert!(
        matches!(events.first(), Some(RepairEvent::ActionStarted { action, .. }) if action == "reset_machine_password")
    );
    assert!(matches!(
        events.last(),
        Some(RepairEvent::Verified { healthy: true, .. })
    ));
}

#[test]
fn reset_fails_then_repair_fallback_works() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword",
            ok("ts.reset_error=Access is denied.\n"),
        ),
        // -Repair is given -Server; its True only says a DC was rediscovered, so the
        // member is bound to the DC written and verified live.
        Step::Ps(
            "Test-ComputerSecureChannel -Repair -Server 'dc01.contoso.com' -Credential $cred",
            ok("True\nts.reset=ok\n"),
        ),
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc01.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&healthy_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired);
    assert_eq!(
        out.steps
            .iter()
            .map(|s| (s.action.as_str(), s.step.as_str(), s.ok))
            .collect::<Vec<_>>(),
        vec![
            ("reset_machine_password", "run", false),
            ("repair_secure_channel", "run", true),
            ("repair_secure_channel", "pin", true)
        ]
    );
    assert_eq!(out.steps[0].detail, "Access is denied.");
    assert!(fake.calls[2].stdin.is_some());
}

#[test]
fn reset_works_but_the_bound_dc_lags_so_the_channel_is_pinned() {
    // No verify between the reset and the pin: a verify first would read a member still
    // bound to the lagging DC (or let /sc_verify rediscover any DC).
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset=ok\n")),
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc01.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&healthy_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired);
    assert_eq!(
        out.steps
            .iter()
            .map(|s| s.step.as_str())
            .collect::<Vec<_>>(),
        vec!["run", "pin"]
    );
    assert!(out.steps[1].ok);
}

#[test]
fn every_step_fails_and_the_verified_state_is_reported() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword",
            ok("ts.reset_error=The server is not operational.\n"),
        ),
        // -Repair returning False is a failure even with the marker.
        Step::Ps(
            "Test-ComputerSecureChannel -Repair",
            ok("False\nts.reset=ok\n"),
        ),
        probe_reply(&stale_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken, "{out:#?}");
    assert!(!out.changed);
    let v = out.verification.unwrap();
    assert!(!v.healthy);
    assert_eq!(v.diagnosis, Diagnosis::StalePassword);
    assert_eq!(
        out.steps[1].detail,
        "Test-ComputerSecureChannel -Repair returned False"
    );
}

#[test]
fn reported_success_that_does_not_verify_is_still_broken() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset=ok\n")),
        Step::Cmd(
            "nltest /sc_reset:",
            ok(&fixture(
                "nltest_sc_query_broken_password_access_denied_5.txt",
            )),
        ),
        probe_reply(&stale_probe()),
        // -Repair's True is not proof: the bind and the live verify decide.
        Step::Ps(
            "Test-ComputerSecureChannel -Repair -Server",
            ok("True\nts.reset=ok\n"),
        ),
        Step::Cmd(
            "nltest /sc_reset:",
            ok(&fixture(
                "nltest_sc_query_broken_password_access_denied_5.txt",
            )),
        ),
        probe_reply(&stale_probe().crlf(true)),
    ]);
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert!(out.changed);
    assert!(!out.verification.as_ref().unwrap().healthy);
    assert!(!out.steps[1].ok, "the pin reported status 5");
    assert!(!out.steps[3].ok, "the second pin reported status 5");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, RepairEvent::Verified { healthy: false, .. }))
            .count(),
        2
    );
    assert_eq!(out.remaining_state(&plan), HostState::Broken);
}

#[test]
fn stale_dc_is_fixed_by_pinning() {
    let plan = plan_for(
        Diagnosis::StaleDc {
            newest: vec![DC2.into()],
            bound: DC1.into(),
        },
        false,
    );
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc02.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&healthy_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired);
    assert!(fake.calls[1].stdin.is_none());
}

#[test]
fn connection_lost_for_good_is_made_worse() {
    // Reachable before the reset, not answering after it: worse (never worse, issue 11).
    let plan = plan_for(Diagnosis::StalePassword, false);
    let lost = || {
        Err(RemoteError::new(
            RemoteErrorKind::Unreachable,
            "connection reset",
        ))
    };
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", lost()),
        Step::Ps("ts.name=", lost()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(out.verification.is_none());
    assert!(
        out.detail
            .contains("before: reachable, domain member, live channel status 5")
            && out.detail.contains("after: not answering"),
        "{}",
        out.detail
    );
    assert_eq!(out.remaining_state(&plan), HostState::Unreachable);
}

#[test]
fn rejoin_waits_for_both_reboots() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=Access is denied.\n")),
        Step::Ps("Test-ComputerSecureChannel -Repair", ok("ts.reset_error=Access is denied.\n")),
        // Leave: the restart may cut the connection before the answer arrives.
        Step::Ps("Remove-Computer -UnjoinDomainCredential $cred", Err(RemoteError::new(RemoteErrorKind::Protocol, "connection closed"))),
        // First reconnect comes too early: still joined; the second sees the workgroup.
        Step::Reconnect(Ok(())),
        probe_reply(&stale_probe()),
        Step::Reconnect(Ok(())),
        probe_reply(&ProbeOut::healthy("WS02", 2).workgroup()),
        Step::Ps("Add-Computer -DomainName 'contoso.com' -Credential $cred -Server 'dc01.contoso.com' -OUPath 'OU=Workstations,DC=contoso,DC=com' -Force", ok("ts.reset=ok\n")),
        Step::Reconnect(Ok(())),
        probe_reply(&healthy_probe()),
    ])
    .with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired, "{out:#?}");
    assert!(out.verification.unwrap().healthy);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, RepairEvent::WaitingForReboot { .. }))
            .count(),
        3
    );
    let leave = fake
        .calls
        .iter()
        .find(|c| c.text.contains("Remove-Computer"))
        .unwrap();
    assert_eq!(
        leave.stdin.as_deref(),
        Some(format!("{USER}\r\n{PASSWORD}\r\n").as_bytes())
    );
    assert!(fake
        .calls
        .iter()
        .filter(|c| c.kind == "reconnect")
        .all(|c| c.text == "5s"));
}

#[test]
fn rejoin_is_not_started_without_a_way_back() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps(
            "Test-ComputerSecureChannel -Repair",
            ok("ts.reset_error=y\n"),
        ),
        probe_reply(&stale_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert!(out
        .steps
        .last()
        .unwrap()
        .detail
        .contains("cannot wait for the host to reboot"));
    assert!(!fake
        .calls
        .iter()
        .any(|c| c.text.contains("Remove-Computer")));
}

#[test]
fn rejoin_host_that_does_not_come_back_is_made_worse() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps(
            "Test-ComputerSecureChannel -Repair",
            ok("ts.reset_error=y\n"),
        ),
        Step::Ps("Remove-Computer", ok("ts.reset=ok\n")),
        Step::Reconnect(Err(RemoteError::new(
            RemoteErrorKind::Timeout,
            "WinRM did not answer within 5s",
        ))),
        Step::Ps(
            "ts.name=",
            Err(RemoteError::new(RemoteErrorKind::Unreachable, "down")),
        ),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(out.changed);
    assert!(out.detail.contains("did not come back"), "{}", out.detail);
    assert!(out.detail.contains("no longer answers"), "{}", out.detail);
}

#[test]
fn failed_join_that_strands_the_host_in_a_workgroup_is_made_worse() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let wg = ProbeOut::healthy("WS02", 2).workgroup();
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps("Test-ComputerSecureChannel -Repair", ok("ts.reset_error=y\n")),
        Step::Ps("Remove-Computer", ok("ts.reset=ok\n")),
        Step::Reconnect(Ok(())),
        probe_reply(&wg),
        Step::Ps("Add-Computer", ok("ts.reset_error=The specified domain either does not exist or could not be contacted.\n")),
        probe_reply(&wg),
    ])
    .with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(
        out.detail
            .contains("left the domain and did not come back (workgroup)"),
        "{}",
        out.detail
    );
    assert!(
        out.detail.contains("after: reachable, workgroup"),
        "{}",
        out.detail
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, RepairEvent::MadeWorse { .. })));
    assert_eq!(
        out.verification.as_ref().unwrap().diagnosis,
        Diagnosis::NotDomainJoined
    );
    assert_eq!(
        serde_json::to_value(out.status).unwrap(),
        serde_json::json!("made_worse")
    );
}

#[test]
fn nothing_runs_for_healthy_hosts_and_clones() {
    let mut fake = FakeRemote::new(vec![]);
    let (out, events) = run(&mut fake, &plan_for(Diagnosis::Healthy, true));
    assert_eq!(out.status, RepairStatus::NothingToDo);
    assert!(events.is_empty());
    let (out, _) = run(
        &mut fake,
        &plan_for(
            Diagnosis::NameTwin {
                twins: vec!["ws11".into()],
            },
            true,
        ),
    );
    assert_eq!(out.status, RepairStatus::ManualActionRequired);
    assert!(out.detail.contains("ws11"));
    let (out, _) = run(&mut fake, &plan_for(Diagnosis::NoDcLocator, true));
    assert_eq!(out.status, RepairStatus::NotAttempted);
    assert!(fake.calls.is_empty());
}

#[test]
fn dc_side_reset_is_reported_honestly() {
    // Never planned from an access problem any more (a 401 is not evidence); the DC-side
    // action still runs when a plan carries it.
    let plan = HostPlan {
        host: "ws70.contoso.com".into(),
        diagnosis: Diagnosis::AccountDisabledOrMissing,
        actions: vec![Action::DcResetAccount {
            dc: DC1.into(),
            computer: "WS70".into(),
        }],
        why: "test".into(),
        needs_reboot: false,
        needs: vec![],
    };
    // The member itself is not touched.
    let mut member = FakeRemote::new(vec![]);
    let (out, _) = run(&mut member, &plan);
    assert_eq!(out.status, RepairStatus::NotAttempted);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut dc = FakeDirectory {
        calls: Vec::new(),
        refuse: false,
    };
    let out = rt.block_on(repair_on_dc(&mut dc, &plan, &mut |_| {}));
    assert_eq!(dc.calls, vec![(DC1.to_string(), "WS70".to_string())]);
    assert_eq!(out.status, RepairStatus::AccountResetOnDc);
    assert!(out.changed);
    assert!(out.detail.contains("stays broken until it is rejoined"));
    assert_eq!(out.remaining_state(&plan), HostState::Broken);
    // A refusal (no Reset Password right) changes nothing and says why.
    let mut refusing = FakeDirectory {
        calls: Vec::new(),
        refuse: true,
    };
    let out = rt.block_on(repair_on_dc(&mut refusing, &plan, &mut |_| {}));
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert!(!out.changed);
    assert!(out.detail.contains("insufficient access"), "{}", out.detail);
}

/// Records DC-side resets; refuses them all when `refuse`.
struct FakeDirectory {
    calls: Vec<(String, String)>,
    refuse: bool,
}

impl Directory for FakeDirectory {
    fn reset_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl std::future::Future<Output = Result<String, playbooks::DirectoryError>> + Send {
        self.calls.push((dc.to_string(), computer.to_string()));
        let r = if self.refuse {
            Err(playbooks::DirectoryError::Refused(format!(
                "{dc}: insufficient access to reset {computer}$"
            )))
        } else {
            Ok(format!("CN={computer},CN=Computers,DC=contoso,DC=com"))
        };
        async move { r }
    }

    fn enable_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl std::future::Future<Output = Result<String, playbooks::DirectoryError>> + Send {
        self.calls
            .push((dc.to_string(), format!("enable {computer}")));
        let r = if self.refuse {
            Err(playbooks::DirectoryError::Refused(format!(
                "{dc}: insufficient access to write userAccountControl of {computer}$"
            )))
        } else {
            Ok(format!(
                "CN={computer},OU=Workstations,DC=contoso,DC=com enabled"
            ))
        };
        async move { r }
    }

    fn restore_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl std::future::Future<Output = Result<String, playbooks::DirectoryError>> + Send {
        self.calls
            .push((dc.to_string(), format!("restore {computer}")));
        let r = if self.refuse {
            Err(playbooks::DirectoryError::Refused(format!(
                "{dc}: attribute 'isRecycled': no such attribute for delete on CN={computer}\\0ADEL:..."
            )))
        } else {
            Ok(format!(
                "CN={computer},OU=Workstations,DC=contoso,DC=com restored"
            ))
        };
        async move { r }
    }
}

#[test]
fn a_deleted_account_in_the_recycle_bin_is_restored_then_pinned_and_never_rejoined() {
    // Issue 11: --allow-restore with a preflight that found the object in the AD Recycle
    // Bin: restore on the DC that was read, pin the member to it; no rejoin behind it.
    let finding = Finding {
        host: "ws02".into(),
        diagnosis: Diagnosis::AccountDeleted,
        evidence: vec![],
    };
    let restorable = playbooks::RestorePreflight {
        restorable: true,
        reason: "WS02$ is in the AD Recycle Bin".into(),
        dc: Some("dc02.contoso.com".into()),
    };
    let opts = PlanOptions {
        allow_restore: true,
        allow_rejoin: true,
        dc_access: true,
        repair_credential_available: true,
        restore_preflight: [("ws02".to_string(), restorable.clone())].into(),
        ..PlanOptions::default()
    };
    let plan = plan_host(&finding, Some(&stale_probe().probe()), &opts);
    assert!(
        matches!(&plan.actions[..], [Action::RestoreAccount { dc, computer }, Action::ScReset { command, .. }]
            if dc == "dc02.contoso.com" && computer == "WS02" && command == "nltest /sc_reset:contoso.com\\dc02.contoso.com"),
        "{:?}",
        plan.actions
    );
    assert!(!plan.needs_reboot, "{plan:?}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut sink = |_e: RepairEvent| {};
    let mut dir = FakeDirectory {
        calls: vec![],
        refuse: false,
    };
    let out = rt.block_on(repair_on_dc(&mut dir, &plan, &mut sink));
    assert_eq!(
        dir.calls,
        vec![("dc02.contoso.com".to_string(), "restore WS02".to_string())]
    );
    assert_eq!(out.status, RepairStatus::Unverified, "{out:?}");
    assert!(
        out.changed && out.steps[0].step == "ldap_restore",
        "{out:?}"
    );
    // A DC that refuses (Samba 4.17 does, see inventory::ad::restore): the host is
    // unchanged and the answer is in the outcome.
    let mut refused = FakeDirectory {
        calls: vec![],
        refuse: true,
    };
    let out = rt.block_on(repair_on_dc(&mut refused, &plan, &mut sink));
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert!(!out.changed);
    assert!(out.detail.contains("isRecycled"), "{}", out.detail);

    // Not restorable (a tombstone): no restore; the guarded rejoin decides as before.
    let tombstone = playbooks::RestorePreflight {
        restorable: false,
        reason: "the AD Recycle Bin is not enabled, so WS02$ is a tombstone without its password"
            .into(),
        dc: Some("dc02.contoso.com".into()),
    };
    let plan = plan_host(
        &finding,
        Some(&stale_probe().probe()),
        &PlanOptions {
            restore_preflight: [("ws02".to_string(), tombstone)].into(),
            ..opts.clone()
        },
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::RestoreAccount { .. })),
        "{plan:?}"
    );
    assert!(plan.why.contains("tombstone"), "{}", plan.why);
    // Without --allow-restore: nothing on the DC, and the plan says what would allow it.
    let plan = plan_host(
        &finding,
        Some(&stale_probe().probe()),
        &PlanOptions {
            allow_restore: false,
            ..opts
        },
    );
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(
        plan.needs.iter().any(|n| n.contains("--allow-restore")),
        "{:?}",
        plan.needs
    );
}

#[test]
fn a_disabled_account_is_re_enabled_on_the_dc_then_pinned_and_verified() {
    // Issue 11: --allow-enable re-enables over LDAP, then the member is pinned to that DC
    // (the probe-and-pin half runs through repair_host, see cli's repair_one).
    let finding = Finding {
        host: "ws02".into(),
        diagnosis: Diagnosis::AccountDisabled,
        evidence: vec![],
    };
    let opts = PlanOptions {
        allow_enable: true,
        dc_access: true,
        repair_credential_available: true,
        pdcs: [("contoso.com".to_string(), "dc01.contoso.com".to_string())].into(),
        ..PlanOptions::default()
    };
    let plan = plan_host(&finding, Some(&stale_probe().probe()), &opts);
    assert!(
        matches!(&plan.actions[..], [Action::EnableAccount { dc, computer }, Action::ScReset { command, .. }]
            if dc == "dc01.contoso.com" && computer == "WS02" && command == "nltest /sc_reset:contoso.com\\dc01.contoso.com"),
        "{:?}",
        plan.actions
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut dir = FakeDirectory {
        calls: vec![],
        refuse: false,
    };
    let mut sink = |_e: RepairEvent| {};
    let out = rt.block_on(repair_on_dc(&mut dir, &plan, &mut sink));
    assert_eq!(
        dir.calls,
        vec![("dc01.contoso.com".to_string(), "enable WS02".to_string())]
    );
    assert_eq!(
        out.status,
        RepairStatus::Unverified,
        "verified on the member afterwards: {out:?}"
    );
    assert!(out.changed);
    let mut refused = FakeDirectory {
        calls: vec![],
        refuse: true,
    };
    let out = rt.block_on(repair_on_dc(&mut refused, &plan, &mut sink));
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert!(out.detail.contains("userAccountControl"), "{}", out.detail);
    // Without --allow-enable: nothing, and the plan says what would allow it.
    let plan = plan_host(
        &finding,
        Some(&stale_probe().probe()),
        &PlanOptions {
            allow_enable: false,
            ..opts
        },
    );
    assert!(plan.actions.is_empty());
    assert!(
        plan.needs.iter().any(|n| n.contains("--allow-enable")),
        "{:?}",
        plan.needs
    );
}

#[test]
fn repair_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![]);
    let c = cred();
    let mut sink = |_e: RepairEvent| {};
    let fut = repair_host(&mut fake, &plan, &c, &mut sink);
    assert_send(&fut);
    drop(fut);
    let mut sink = |_e: RepairEvent| {};
    let fut = verify(&mut fake, "x");
    assert_send(&fut);
    drop(fut);
    let mut dir = FakeDirectory {
        calls: Vec::new(),
        refuse: false,
    };
    let fut = repair_on_dc(&mut dir, &plan, &mut sink);
    assert_send(&fut);
}

#[test]
fn reset_output_markers() {
    assert_eq!(
        parse_reset_output(&CommandOutput::ok("ts.reset=ok\r\n")),
        Ok(())
    );
    assert_eq!(
        parse_reset_output(&CommandOutput::ok("ts.reset_error=\r\n")),
        Err(playbooks::ResetFailed::NoMessage)
    );
    let e = parse_reset_output(&CommandOutput {
        stdout: String::new(),
        stderr: "ParserError".into(),
        exit_code: 1,
    })
    .unwrap_err();
    assert!(e
        .to_string()
        .contains("no result marker (exit code 1): ParserError"));
}

// Never worse (issue 11): what is true before any change is recorded from a fresh probe,
// each verification after a step that could change the host is compared with it, and a
// worse state stops the ladder as `made_worse`.

#[test]
fn a_host_healthy_before_any_change_is_not_touched() {
    // Planned from an older sweep; the probe before any change finds it healthy.
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![probe_reply(&healthy_probe())]).with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::NothingToDo, "{out:#?}");
    assert!(!out.changed);
    assert!(out.steps.is_empty());
    assert!(events.is_empty());
    assert_eq!(fake.calls.len(), 1, "only the probe ran");
}

#[test]
fn a_probe_that_fails_before_any_change_changes_nothing() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![Step::Ps(
        "ts.name=",
        Err(RemoteError::new(RemoteErrorKind::Unreachable, "down")),
    )]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::NotAttempted);
    assert!(!out.changed);
    assert!(out.detail.contains("nothing was changed"), "{}", out.detail);
}

#[test]
fn a_reset_after_which_the_account_is_disabled_or_missing_stops_the_ladder() {
    // Before: the DC refused the password (5), so the account was there. After the reset
    // and the pin: 1787, the account disabled or missing. The -Repair fallback and the
    // rejoin must not run.
    let plan = plan_for(Diagnosis::StalePassword, true);
    let gone = ProbeOut::broken("WS02", 2, "nltest_sc_verify_broken_1787.txt");
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset=ok\n")),
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc01.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&gone),
    ])
    .with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(out.changed);
    assert!(
        out.detail.contains("MADE WORSE by reset_machine_password")
            && out.detail.contains("live status 5, now 1787"),
        "{}",
        out.detail
    );
    assert!(!fake
        .calls
        .iter()
        .any(|c| c.text.contains("Test-ComputerSecureChannel -Repair")
            || c.text.contains("Remove-Computer")));
    assert!(matches!(
        events.last(),
        Some(RepairEvent::MadeWorse { host, .. }) if host == "ws02"
    ));
    assert_eq!(out.remaining_state(&plan), HostState::Broken);
}

#[test]
fn a_leave_that_fails_but_disables_the_account_is_made_worse() {
    // Remove-Computer disables the object before anything else (NETSETUP_ACCT_DELETE); an
    // unjoin that then fails leaves a joined host whose account is gone.
    let plan = plan_for(Diagnosis::StalePassword, true);
    let gone = ProbeOut::broken("WS02", 2, "nltest_sc_verify_broken_1787.txt");
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps(
            "Test-ComputerSecureChannel -Repair",
            ok("ts.reset_error=y\n"),
        ),
        Step::Ps(
            "Remove-Computer",
            ok("ts.reset_error=The system cannot find the file specified.\n"),
        ),
        probe_reply(&gone),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(
        out.detail.contains("MADE WORSE by rejoin"),
        "{}",
        out.detail
    );
}

#[test]
fn a_rejoin_that_comes_back_joined_and_healthy_is_not_worse() {
    // Leaving the domain mid-rejoin is expected; only the end state counts.
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps(
            "Test-ComputerSecureChannel -Repair",
            ok("ts.reset_error=y\n"),
        ),
        Step::Ps("Remove-Computer", ok("ts.reset=ok\n")),
        Step::Reconnect(Ok(())),
        probe_reply(&ProbeOut::healthy("WS02", 2).workgroup()),
        Step::Ps("Add-Computer", ok("ts.reset=ok\n")),
        Step::Reconnect(Ok(())),
        probe_reply(&healthy_probe()),
    ])
    .with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired, "{out:#?}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, RepairEvent::MadeWorse { .. })));
}

#[test]
fn worse_compares_each_fact_with_the_baseline() {
    let of = |p: &ProbeOut| HostBaseline::of(Some(&p.probe()));
    let healthy = of(&healthy_probe());
    let stale = of(&stale_probe());
    let gone = of(&ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_verify_broken_1787.txt",
    ));
    let workgroup = of(&ProbeOut::healthy("WS02", 2).workgroup());
    let down = HostBaseline::of(None);
    assert_eq!(healthy.live_status, Some(0));
    assert_eq!(stale.live_status, Some(5));
    assert_eq!(gone.live_status, Some(1787));
    // Healthy (live status 0) to broken: worse.
    let why = healthy.worse(&stale).unwrap();
    assert!(
        why.contains("working channel broke (live status 0, now 5)"),
        "{why}"
    );
    // Domain member to workgroup: worse.
    assert!(stale.worse(&workgroup).unwrap().contains("left the domain"));
    // Reachable to not answering: worse.
    assert!(stale.worse(&down).unwrap().contains("no longer answers"));
    // Account present (5) to disabled or missing (1787): worse.
    assert!(stale.worse(&gone).unwrap().contains("disabled or missing"));
    // Not worse: healed, the same, or a host that was down and answers.
    assert_eq!(stale.worse(&healthy), None);
    assert_eq!(stale.worse(&stale), None);
    assert_eq!(down.worse(&stale), None);
    assert_eq!(workgroup.worse(&healthy), None);
    assert_eq!(
        healthy.to_string(),
        "reachable, domain member, live channel status 0"
    );
    assert_eq!(down.to_string(), "not answering");
}

#[test]
fn name_twins_sid_duplicates_and_dcs_are_never_touched() {
    // Every permission given: still nothing runs on them, on the member or on a DC.
    let all = |host: &str| PlanOptions {
        allow_rejoin: true,
        allow_dc_reset: true,
        repair_credential_available: true,
        dc_access: true,
        dc_reset_hosts: vec![host.to_string()],
        rejoin_preflight: [(
            host.to_string(),
            playbooks::RejoinPreflight {
                join_allowed: true,
                reason: "the object's owner is Domain Admins".into(),
                ou: None,
            },
        )]
        .into(),
        ..PlanOptions::default()
    };
    for d in [
        Diagnosis::NameTwin {
            twins: vec!["ws11".into()],
        },
        Diagnosis::SidDuplicate {
            twins: vec!["ws12".into()],
        },
        Diagnosis::DomainController { role: 5 },
        Diagnosis::DomainController { role: 4 },
    ] {
        let finding = Finding {
            host: "ws02".into(),
            diagnosis: d.clone(),
            evidence: vec![],
        };
        let probe = match d {
            Diagnosis::DomainController { role } => healthy_probe().role(role).probe(),
            Diagnosis::NameTwin { .. } => stale_probe().probe(),
            _ => healthy_probe().probe(),
        };
        let plan = plan_host(&finding, Some(&probe), &all("ws02"));
        assert!(!plan.changes_anything(), "{d:?}: {:?}", plan.actions);
        assert_eq!(plan.member_actions().count(), 0, "{d:?}");
        // And the repair sends nothing to the host.
        let mut fake = FakeRemote::new(vec![]).with_reconnect();
        let (out, _) = run(&mut fake, &plan);
        assert!(fake.calls.is_empty(), "{d:?}: {:?}", fake.calls);
        assert!(!out.changed, "{d:?}");
    }
}

#[test]
fn a_host_that_turns_out_to_be_a_dc_is_not_touched() {
    // The plan says member; the probe before any change says DomainRole 5.
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![probe_reply(&stale_probe().role(5))]).with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::NotAttempted, "{out:#?}");
    assert!(out.detail.contains("domain controller"), "{}", out.detail);
    assert!(!out.changed);
}

/// Issue 16: the connection drops after `Reset-ComputerMachinePassword` was sent and
/// before its output came back. The reset is never sent again (nor `-Repair`, the next
/// rung): the host is reconnected to and probed, and the outcome says what is known.
#[test]
fn a_reset_whose_answer_was_lost_is_never_resent_and_ends_verified_healthy() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let dropped = || {
        Err(RemoteError::new(
            RemoteErrorKind::Protocol,
            "connection reset by peer",
        ))
    };
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", dropped()),
        // The first probe finds the host still away; the reconnect waits for it.
        Step::Ps("ts.name=", dropped()),
        Step::Reconnect(Ok(())),
        probe_reply(&healthy_probe()),
    ])
    .with_reconnect();
    let (out, events) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::UnknownThenVerified, "{out:#?}");
    assert!(out.changed, "a password may have been written");
    assert!(out.verification.as_ref().unwrap().healthy);
    assert_eq!(out.remaining_state(&plan), HostState::Healthy);
    assert!(
        out.detail.starts_with(
            "connection lost after Reset-ComputerMachinePassword was sent (protocol error: connection reset by peer); it may have happened"
        ) && out.detail.ends_with("verified state: healthy"),
        "{}",
        out.detail
    );
    let resets = fake
        .calls
        .iter()
        .filter(|c| c.text.contains("Reset-ComputerMachinePassword") || c.text.contains("-Repair"))
        .count();
    assert_eq!(resets, 1, "{:#?}", fake.calls);
    // The intent was announced before the step went out.
    let starting = events
        .iter()
        .position(|e| matches!(e, RepairEvent::StepStarting { action, step, .. } if action == "reset_machine_password" && step == "run"))
        .expect("an intent event");
    let finished = events
        .iter()
        .position(|e| matches!(e, RepairEvent::StepFinished { step, .. } if step.action == "reset_machine_password"))
        .unwrap();
    assert!(starting < finished);
}

#[test]
fn a_reset_whose_answer_was_lost_and_that_did_not_heal_is_reported_broken_not_retried() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::RepairSecureChannel { .. })),
        "the ladder has a next rung that must not run: {plan:#?}"
    );
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword",
            Err(RemoteError::new(RemoteErrorKind::Timeout, "no answer")),
        ),
        probe_reply(&stale_probe()),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::UnknownThenVerified, "{out:#?}");
    assert!(!out.verification.as_ref().unwrap().healthy);
    assert_eq!(out.remaining_state(&plan), HostState::Broken);
    assert!(
        out.detail.contains("verified state: broken (") && out.detail.contains("not retried"),
        "{}",
        out.detail
    );
    assert_eq!(
        out.steps
            .iter()
            .map(|s| (s.action.as_str(), s.step.as_str(), s.ok))
            .collect::<Vec<_>>(),
        vec![("reset_machine_password", "run", false)]
    );
}

#[test]
fn a_repair_switch_whose_answer_was_lost_is_never_resent() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword",
            ok("ts.reset_error=Access is denied.\n"),
        ),
        Step::Ps(
            "-Repair",
            Err(RemoteError::new(
                RemoteErrorKind::Unreachable,
                "connection refused",
            )),
        ),
        // Not answering at once, nor after the bounded reconnects: never worse decides.
        Step::Ps(
            "ts.name=",
            Err(RemoteError::new(RemoteErrorKind::Unreachable, "refused")),
        ),
        Step::Reconnect(Err(RemoteError::new(
            RemoteErrorKind::Timeout,
            "did not come back",
        ))),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::MadeWorse, "{out:#?}");
    assert!(
        out.detail
            .contains("Test-ComputerSecureChannel -Repair was sent")
            || out.steps.iter().any(|s| s
                .detail
                .contains("Test-ComputerSecureChannel -Repair was sent")),
        "{out:#?}"
    );
    assert_eq!(
        fake.calls
            .iter()
            .filter(|c| c.text.contains("-Repair"))
            .count(),
        1
    );
}

/// A run killed after the intent of a step was journaled: the resumed run only probes.
#[test]
fn an_interrupted_step_is_only_verified() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut fake = FakeRemote::new(vec![probe_reply(&healthy_probe())]);
    let out = rt.block_on(verify_interrupted(
        &mut fake,
        "ws02",
        "reset_machine_password",
        "run",
    ));
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired, "{out:#?}");
    assert_eq!(
        out.detail,
        "interrupted during reset_machine_password run; it may have happened; verified state: healthy"
    );

    let mut fake = FakeRemote::new(vec![probe_reply(&stale_probe())]);
    let out = rt.block_on(verify_interrupted(&mut fake, "ws02", "rejoin", "leave"));
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::UnknownThenVerified);
    assert!(out.detail.ends_with("not retried"), "{}", out.detail);
    assert_eq!(
        out.remaining_state(&plan_for(Diagnosis::StalePassword, false)),
        HostState::Broken
    );

    let mut fake = FakeRemote::new(vec![Step::Ps(
        "ts.name=",
        Err(RemoteError::new(RemoteErrorKind::Unreachable, "refused")),
    )]);
    let out = rt.block_on(verify_interrupted(&mut fake, "ws02", "rejoin", "join"));
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Unverified);
    assert_eq!(
        out.remaining_state(&plan_for(Diagnosis::StalePassword, false)),
        HostState::Unknown
    );
    assert!(
        fake.calls.iter().all(|c| c.stdin.is_none()),
        "no credential sent"
    );
}

/// Issue 16: the DC the reset wrote goes away mid-repair. The member then reaches no DC;
/// the ladder stops there (no second password write) with the verified state.
#[test]
fn a_reset_after_which_the_dc_written_goes_away_stops_the_ladder() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let away = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_verify_no_logon_servers_1311_UNVERIFIED.txt",
    );
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset=ok\n")),
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc01.contoso.com",
            ok(&fixture("nltest_query_no_logon_servers_1311.txt")),
        ),
        probe_reply(&away),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken, "{out:#?}");
    assert!(
        matches!(
            out.verification.as_ref().unwrap().diagnosis,
            Diagnosis::DcUnreachable { .. }
        ),
        "{out:#?}"
    );
    assert!(
        out.detail
            .contains("a new password was written, then the member reached no DC")
            && out.detail.contains("not retried"),
        "{}",
        out.detail
    );
    assert!(fake.calls.iter().all(|c| !c.text.contains("-Repair")));
}

/// A reset refused on the wire (Access Denied: the command never started) is not a step
/// that may have happened: the ladder stops as before, without "unknown".
#[test]
fn a_reset_refused_on_the_wire_is_not_unknown() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
        baseline(),
        Step::Ps(
            "Reset-ComputerMachinePassword",
            Err(RemoteError::new(
                RemoteErrorKind::AccessDenied,
                "WSManFault 5",
            )),
        ),
        probe_reply(&stale_probe()),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken, "{out:#?}");
    assert!(!out.detail.contains("may have happened"), "{}", out.detail);
}
