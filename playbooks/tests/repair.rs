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

#[test]
fn reset_succeeds_and_is_verified() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
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
    assert_eq!(
        fake.calls[0].stdin.as_deref(),
        Some(format!("{USER}\r\n{PASSWORD}\r\n").as_bytes())
    );
    assert!(!fake.calls[0].text.contains(PASSWORD));
    // Decoded as UTF-8 on the host, set before `$input` is read (DOMAIN.md "WinRM details").
    let script = &fake.calls[0].text;
    let enc = script
        .find("[Console]::InputEncoding = New-Object System.Text.UTF8Encoding $false")
        .expect("InputEncoding set");
    assert!(enc < script.find("$input").unwrap());
    assert!(fake.calls[1].stdin.is_none(), "the pin gets no stdin");
    assert!(fake.calls[2].stdin.is_none(), "the probe gets no stdin");
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
    assert!(fake.calls[1].stdin.is_some());
}

#[test]
fn reset_works_but_the_bound_dc_lags_so_the_channel_is_pinned() {
    // No verify between the reset and the pin: a verify first would read a member still
    // bound to the lagging DC (or let /sc_verify rediscover any DC).
    let plan = plan_for(Diagnosis::StalePassword, false);
    let mut fake = FakeRemote::new(vec![
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
        Step::Cmd(
            "nltest /sc_reset:contoso.com\\dc02.contoso.com",
            ok(&fixture("nltest_sc_reset_ok.txt")),
        ),
        probe_reply(&healthy_probe()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Repaired);
    assert!(fake.calls[0].stdin.is_none());
}

#[test]
fn connection_lost_and_verification_impossible_is_unverified() {
    let plan = plan_for(Diagnosis::StalePassword, false);
    let lost = || {
        Err(RemoteError::new(
            RemoteErrorKind::Unreachable,
            "connection reset",
        ))
    };
    let mut fake = FakeRemote::new(vec![
        Step::Ps("Reset-ComputerMachinePassword", lost()),
        Step::Ps("ts.name=", lost()),
    ]);
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::Unverified);
    assert!(out.verification.is_none());
    assert_eq!(out.remaining_state(&plan), HostState::Unknown);
}

#[test]
fn rejoin_waits_for_both_reboots() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
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
fn rejoin_host_that_does_not_come_back_is_unverified() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let mut fake = FakeRemote::new(vec![
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
    assert_eq!(out.status, RepairStatus::Unverified, "{out:#?}");
    assert!(out.changed);
    assert!(out.detail.contains("did not come back"), "{}", out.detail);
}

#[test]
fn failed_join_leaves_a_verified_workgroup_host() {
    let plan = plan_for(Diagnosis::StalePassword, true);
    let wg = ProbeOut::healthy("WS02", 2).workgroup();
    let mut fake = FakeRemote::new(vec![
        Step::Ps("Reset-ComputerMachinePassword", ok("ts.reset_error=x\n")),
        Step::Ps("Test-ComputerSecureChannel -Repair", ok("ts.reset_error=y\n")),
        Step::Ps("Remove-Computer", ok("ts.reset=ok\n")),
        Step::Reconnect(Ok(())),
        probe_reply(&wg),
        Step::Ps("Add-Computer", ok("ts.reset_error=The specified domain either does not exist or could not be contacted.\n")),
        probe_reply(&wg),
    ])
    .with_reconnect();
    let (out, _) = run(&mut fake, &plan);
    fake.assert_done();
    assert_eq!(out.status, RepairStatus::StillBroken);
    assert_eq!(
        out.verification.unwrap().diagnosis,
        Diagnosis::NotDomainJoined
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
    ) -> impl std::future::Future<Output = Result<String, String>> + Send {
        self.calls.push((dc.to_string(), computer.to_string()));
        let r = if self.refuse {
            Err(format!("{dc}: insufficient access to reset {computer}$"))
        } else {
            Ok(format!("CN={computer},CN=Computers,DC=contoso,DC=com"))
        };
        async move { r }
    }
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
        Err("failed without a message".into())
    );
    let e = parse_reset_output(&CommandOutput {
        stdout: String::new(),
        stderr: "ParserError".into(),
        exit_code: 1,
    })
    .unwrap_err();
    assert!(e.contains("no result marker (exit code 1): ParserError"));
}
