//! Plans for every diagnosis under every combination of options.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use playbooks::*;

fn all_options() -> Vec<PlanOptions> {
    let mut v = Vec::new();
    for bits in 0..32u8 {
        v.push(PlanOptions {
            allow_rejoin: bits & 1 != 0,
            allow_dc_reset: bits & 2 != 0,
            repair_credential_available: bits & 4 != 0,
            pdc: (bits & 8 != 0).then(|| "pdc.contoso.com".to_string()),
            dc_access: bits & 16 != 0,
        });
    }
    v
}

/// One finding per diagnosis, with the probe it came from (if any).
fn cases() -> Vec<(Finding, Option<Probe>)> {
    let stale = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2])
    .probe();
    let missing = ProbeOut::broken("WS04", 4, "nltest_sc_verify_broken_1787.txt")
        .dcs(&[DC1, DC2])
        .probe();
    let healthy = ProbeOut::healthy("WS01", 1).probe();
    let f = |host: &str, d: Diagnosis| Finding {
        host: host.into(),
        diagnosis: d,
        evidence: vec![],
    };
    vec![
        (f("ws01", Diagnosis::Healthy), Some(healthy.clone())),
        (f("ws02", Diagnosis::StalePassword), Some(stale.clone())),
        (
            f(
                "ws10",
                Diagnosis::Clone {
                    twins: vec!["ws11".into()],
                },
            ),
            Some(stale.clone()),
        ),
        (
            f(
                "ws03",
                Diagnosis::ReplicationLag {
                    good_dc: DC2.into(),
                    bad_dc: DC1.into(),
                },
            ),
            Some(stale.clone()),
        ),
        (f("ws04", Diagnosis::AccountMissing), Some(missing)),
        (f("ws06", Diagnosis::NoDcReachable), Some(stale.clone())),
        (
            f("ws60", Diagnosis::TrustBroken { detail: "x".into() }),
            None,
        ),
        (
            f(
                "ws70.contoso.com",
                Diagnosis::BrokenNoAccess {
                    user: "Administrator".into(),
                },
            ),
            None,
        ),
        (
            f(
                "ws50",
                Diagnosis::FilteredAdmin {
                    user: "ws50\\helpdesk".into(),
                },
            ),
            None,
        ),
        (
            f(
                "ws51",
                Diagnosis::AccessDenied {
                    user: "contoso\\bob".into(),
                },
            ),
            None,
        ),
        (f("ws80", Diagnosis::Unreachable), None),
        (
            f("ws90", Diagnosis::NotDomainJoined),
            Some(ProbeOut::healthy("WS90", 90).workgroup().probe()),
        ),
        (
            f("ws92", Diagnosis::Unknown { detail: "x".into() }),
            Some(healthy),
        ),
    ]
}

#[test]
fn invariants_for_every_diagnosis_and_option() {
    for opts in all_options() {
        for (finding, probe) in cases() {
            let plan = plan_host(&finding, probe.as_ref(), &opts);
            let ctx = format!("{:?} with {opts:?}: {plan:#?}", finding.diagnosis);
            assert_eq!(plan.host, finding.host);
            assert_eq!(plan.diagnosis, finding.diagnosis);
            assert!(!plan.why.is_empty(), "{ctx}");
            assert_eq!(
                plan.needs_reboot,
                plan.actions.iter().any(Action::reboots),
                "{ctx}"
            );
            let json = serde_json::to_string(&plan).unwrap();
            // Credential Manager is never an action (only mentioned in why).
            assert!(!json.to_lowercase().contains("cmdkey"), "{ctx}");
            for a in &plan.actions {
                if a.uses_credential() || matches!(a, Action::DcResetAccount { .. }) {
                    assert!(opts.repair_credential_available, "{ctx}");
                }
                if matches!(a, Action::Rejoin { .. }) {
                    assert!(opts.allow_rejoin, "{ctx}");
                }
                if matches!(a, Action::DcResetAccount { .. }) {
                    assert!(opts.allow_dc_reset, "{ctx}");
                    assert!(
                        matches!(finding.diagnosis, Diagnosis::BrokenNoAccess { .. }),
                        "{ctx}"
                    );
                }
            }
            match &finding.diagnosis {
                Diagnosis::Healthy => {
                    assert!(plan.actions.is_empty(), "{ctx}");
                    assert!(!plan.changes_anything());
                }
                Diagnosis::Clone { twins } => {
                    assert_eq!(
                        plan.actions,
                        vec![Action::RebuildRequired {
                            twins: twins.clone()
                        }],
                        "{ctx}"
                    );
                    assert!(!plan.changes_anything());
                }
                Diagnosis::NoDcReachable
                | Diagnosis::FilteredAdmin { .. }
                | Diagnosis::AccessDenied { .. }
                | Diagnosis::Unreachable
                | Diagnosis::NotDomainJoined
                | Diagnosis::Unknown { .. } => {
                    assert!(plan.actions.is_empty(), "{ctx}");
                    assert!(!plan.needs.is_empty(), "{ctx}");
                }
                Diagnosis::StalePassword
                | Diagnosis::AccountMissing
                | Diagnosis::TrustBroken { .. } => {
                    assert!(plan.why.contains("Credential Manager"), "{ctx}");
                    if !opts.repair_credential_available {
                        assert!(plan.actions.is_empty(), "{ctx}");
                        assert!(
                            plan.needs
                                .iter()
                                .any(|n| n.contains("Reset Password right")),
                            "{ctx}"
                        );
                    } else {
                        assert!(
                            matches!(plan.actions[0], Action::ResetMachinePassword { .. }),
                            "{ctx}"
                        );
                        assert!(
                            matches!(plan.actions[1], Action::RepairSecureChannel { .. }),
                            "{ctx}"
                        );
                        let rejoin = plan
                            .actions
                            .iter()
                            .any(|a| matches!(a, Action::Rejoin { .. }));
                        // A rejoin needs the domain name, which only a probe gives.
                        assert_eq!(rejoin, opts.allow_rejoin && probe.is_some(), "{ctx}");
                    }
                }
                Diagnosis::ReplicationLag { good_dc, .. } => {
                    assert_eq!(
                        plan.actions[0],
                        Action::ScReset {
                            domain: DOMAIN.into(),
                            dc: good_dc.clone(),
                            command: format!("nltest /sc_reset:{DOMAIN}\\{good_dc}")
                        },
                        "{ctx}"
                    );
                }
                Diagnosis::BrokenNoAccess { .. } => {
                    let dc_reset = plan
                        .actions
                        .iter()
                        .any(|a| matches!(a, Action::DcResetAccount { .. }));
                    assert_eq!(
                        dc_reset,
                        opts.allow_dc_reset
                            && opts.repair_credential_available
                            && opts.pdc.is_some()
                            && opts.dc_access,
                        "{ctx}"
                    );
                    if dc_reset {
                        assert!(
                            plan.why.contains("stays broken until it is rejoined"),
                            "{ctx}"
                        );
                        assert!(plan.why.contains("a reboot does not restore it"), "{ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn stale_password_ladder_pinned_to_the_pdc() {
    let probe = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2])
    .probe();
    let finding = Finding {
        host: "ws02".into(),
        diagnosis: Diagnosis::StalePassword,
        evidence: vec![],
    };
    let opts = PlanOptions {
        allow_rejoin: true,
        allow_dc_reset: false,
        repair_credential_available: true,
        pdc: None,
        dc_access: true,
    };
    // Another domain's PDC (a fleet spanning two domains) is not this host's: its own is.
    let foreign = PlanOptions { pdc: Some("dc01.fabrikam.com".into()), ..opts.clone() };
    let plan = plan_host(&finding, Some(&probe), &foreign);
    assert!(
        matches!(&plan.actions[0], Action::ResetMachinePassword { server: Some(s), .. } if s == DC1),
        "{:?}",
        plan.actions[0]
    );
    let plan = plan_host(&finding, Some(&probe), &opts);
    assert_eq!(plan.actions.len(), 3);
    let Action::ResetMachinePassword {
        server,
        script,
        pin_command,
    } = &plan.actions[0]
    else {
        panic!()
    };
    // No --pdc: the probe's /dclist PDC.
    assert_eq!(server.as_deref(), Some(DC1));
    assert!(script.contains(&format!(
        "Reset-ComputerMachinePassword -Server '{DC1}' -Credential $cred -ErrorAction Stop"
    )));
    assert!(script.contains("$lines = @($input)"));
    assert_eq!(
        pin_command.as_deref(),
        Some(format!("nltest /sc_reset:{DOMAIN}\\{DC1}").as_str())
    );
    let Action::Rejoin {
        domain,
        server,
        leave_script,
        join_script,
    } = &plan.actions[2]
    else {
        panic!()
    };
    assert_eq!(domain, DOMAIN);
    assert_eq!(server.as_deref(), Some(DC1));
    assert!(leave_script.contains(
        "Remove-Computer -UnjoinDomainCredential $cred -WorkgroupName 'WORKGROUP' -Force"
    ));
    assert!(leave_script.contains("Restart-Computer -Force"));
    assert!(join_script.contains(&format!(
        "Add-Computer -DomainName '{DOMAIN}' -Credential $cred -Server '{DC1}' -Force"
    )));
    assert!(plan.needs_reboot);

    // --pdc wins over the probe.
    let plan = plan_host(
        &finding,
        Some(&probe),
        &PlanOptions {
            pdc: Some("pdc.contoso.com".into()),
            dc_access: true,
            ..opts.clone()
        },
    );
    assert!(
        matches!(&plan.actions[0], Action::ResetMachinePassword { server: Some(s), .. } if s == "pdc.contoso.com")
    );

    // Without --allow-rejoin: no reboot, and the plan says what would allow one.
    let plan = plan_host(
        &finding,
        Some(&probe),
        &PlanOptions {
            allow_rejoin: false,
            ..opts
        },
    );
    assert_eq!(plan.actions.len(), 2);
    assert!(!plan.needs_reboot);
    assert!(plan.needs.iter().any(|n| n.contains("--allow-rejoin")));
}

#[test]
fn replication_lag_needs_no_credential() {
    let probe = ProbeOut::broken(
        "WS03",
        3,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2])
    .probe();
    let finding = Finding {
        host: "ws03".into(),
        diagnosis: Diagnosis::ReplicationLag {
            good_dc: DC2.into(),
            bad_dc: DC1.into(),
        },
        evidence: vec![],
    };
    let plan = plan_host(&finding, Some(&probe), &PlanOptions::default());
    assert_eq!(plan.actions.len(), 1);
    assert!(plan.needs.iter().any(|n| n.contains("repadmin")));
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["actions"][0]["action"], "sc_reset");
    assert_eq!(
        v["actions"][0]["command"],
        format!("nltest /sc_reset:{DOMAIN}\\{DC2}")
    );
    assert_eq!(v["diagnosis"]["kind"], "replication_lag");
}

#[test]
fn unreachable_is_never_reset_on_the_dc() {
    let finding = Finding {
        host: "ws80".into(),
        diagnosis: Diagnosis::Unreachable,
        evidence: vec![],
    };
    let opts = PlanOptions {
        allow_rejoin: true,
        allow_dc_reset: true,
        repair_credential_available: true,
        pdc: Some(DC1.into()),
        dc_access: true,
    };
    let plan = plan_host(&finding, None, &opts);
    assert!(plan.actions.is_empty());
    assert!(plan.why.contains("merely offline"));
}

#[test]
fn dc_reset_for_a_broken_host_nobody_can_enter() {
    let finding = Finding {
        host: "ws70.contoso.com".into(),
        diagnosis: Diagnosis::BrokenNoAccess {
            user: "Administrator".into(),
        },
        evidence: vec![],
    };
    let opts = PlanOptions {
        allow_rejoin: false,
        allow_dc_reset: true,
        repair_credential_available: true,
        pdc: Some(DC1.into()),
        dc_access: true,
    };
    let plan = plan_host(&finding, None, &opts);
    assert_eq!(
        plan.actions,
        vec![Action::DcResetAccount {
            dc: DC1.into(),
            computer: "WS70".into(),
        }]
    );
    assert_eq!(
        plan.actions[0].target(),
        Target::DomainController { dc: DC1.into() }
    );
    assert!(
        !plan.needs_reboot,
        "a reboot does not help after a DC-side reset"
    );
    assert!(plan.needs.iter().any(|n| n.contains("rejoin")));
    // An IP address gives no computer name: nothing to reset.
    let plan = plan_host(
        &Finding {
            host: "10.0.0.7".into(),
            ..finding
        },
        None,
        &opts,
    );
    assert!(plan.actions.is_empty());
    assert!(plan.needs.iter().any(|n| n.contains("computer name")));
}

#[test]
fn fleet_plans_pair_findings_with_probes() {
    let a = ProbeOut::healthy("WS01", 1);
    let b = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    );
    let obs = vec![
        HostObservation::connected("ws01", "WS01\\administrator", true, a.probe()),
        HostObservation::connected("ws02", "WS02\\administrator", true, b.probe()),
    ];
    let findings = diagnose_fleet(&obs);
    let opts = PlanOptions {
        repair_credential_available: true,
        pdc: fleet_pdc(&obs),
        dc_access: true,
        ..PlanOptions::default()
    };
    let plans = plan_fleet(&findings, &obs, &opts);
    assert!(plans[0].actions.is_empty());
    assert!(
        matches!(&plans[1].actions[0], Action::ResetMachinePassword { server: Some(s), .. } if s == DC1)
    );
}
