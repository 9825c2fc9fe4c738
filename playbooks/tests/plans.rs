//! Plans for every diagnosis under every combination of options.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use playbooks::*;

fn pdcs(pdc: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(DOMAIN.to_string(), pdc.to_string())])
}

fn all_options() -> Vec<PlanOptions> {
    let mut v = Vec::new();
    for bits in 0..32u8 {
        v.push(PlanOptions {
            allow_rejoin: bits & 1 != 0,
            allow_dc_reset: bits & 2 != 0,
            allow_enable: false,
            repair_credential_available: bits & 4 != 0,
            pdcs: if bits & 8 != 0 {
                pdcs("pdc.contoso.com")
            } else {
                BTreeMap::new()
            },
            dc_access: bits & 16 != 0,
            dc_reset_hosts: Vec::new(),
            rejoin_preflight: BTreeMap::new(),
            allow_restore: false,
            restore_preflight: BTreeMap::new(),
        });
    }
    v
}

/// A rejoin preflight for `host` that allows (or refuses) the join, keeping the object's OU.
fn preflight(host: &str, allowed: bool) -> BTreeMap<String, RejoinPreflight> {
    BTreeMap::from([(
        host.to_string(),
        RejoinPreflight {
            join_allowed: allowed,
            reason: if allowed {
                "the object's owner is Domain Admins".into()
            } else {
                "the object was created by LAB\\deployer and the repair account may not reuse it (KB5020276)".into()
            },
            ou: Some("OU=Workstations,DC=contoso,DC=com".into()),
        },
    )])
}

fn f(host: &str, d: Diagnosis) -> Finding {
    Finding {
        host: host.into(),
        diagnosis: d,
        evidence: vec![],
    }
}

fn stale() -> Probe {
    ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .probe()
}

/// One finding per diagnosis, with the probe it came from (if any).
fn cases() -> Vec<(Finding, Option<Probe>)> {
    let stale = stale();
    let missing = ProbeOut::broken("WS04", 4, "nltest_sc_verify_broken_1787.txt").probe();
    let healthy = ProbeOut::healthy("WS01", 1).probe();
    vec![
        (f("ws01", Diagnosis::Healthy), Some(healthy.clone())),
        (
            f("dc01", Diagnosis::DomainController { role: 5 }),
            Some(ProbeOut::healthy("DC01", 7).role(5).probe()),
        ),
        (f("ws02", Diagnosis::StalePassword), Some(stale.clone())),
        (
            f(
                "ws10",
                Diagnosis::NameTwin {
                    twins: vec!["ws11".into()],
                },
            ),
            Some(stale.clone()),
        ),
        (
            f(
                "ws12",
                Diagnosis::SidDuplicate {
                    twins: vec!["ws13".into()],
                },
            ),
            Some(healthy.clone()),
        ),
        (
            f(
                "ws03",
                Diagnosis::StaleDc {
                    newest: vec![DC2.into()],
                    bound: DC1.into(),
                },
            ),
            Some(stale.clone()),
        ),
        (
            f("ws04", Diagnosis::AccountDisabledOrMissing),
            Some(missing.clone()),
        ),
        (f("ws05", Diagnosis::AccountDisabled), Some(missing.clone())),
        (f("ws07", Diagnosis::AccountDeleted), Some(missing)),
        (f("ws06", Diagnosis::NoDcLocator), Some(stale.clone())),
        (
            f(
                "ws08",
                Diagnosis::DcUnreachable {
                    dc: Some(DC1.into()),
                },
            ),
            Some(stale.clone()),
        ),
        (
            f("ws60", Diagnosis::TrustBroken { detail: "x".into() }),
            None,
        ),
        (
            f(
                "ws50",
                Diagnosis::LocalAccountRefused {
                    user: "ws50\\helpdesk".into(),
                },
            ),
            None,
        ),
        (
            f(
                "ws70",
                Diagnosis::Unauthorized {
                    user: "contoso\\alice".into(),
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
                if a.uses_credential() {
                    assert!(opts.repair_credential_available, "{ctx}");
                }
                if matches!(a, Action::Rejoin { .. }) {
                    assert!(opts.allow_rejoin, "{ctx}");
                }
                // A 401 is never evidence: nothing plans a DC-side reset any more.
                assert!(!matches!(a, Action::DcResetAccount { .. }), "{ctx}");
            }
            match &finding.diagnosis {
                Diagnosis::Healthy | Diagnosis::DomainController { .. } => {
                    assert!(plan.actions.is_empty(), "{ctx}");
                    assert!(!plan.changes_anything());
                }
                Diagnosis::NameTwin { twins } | Diagnosis::SidDuplicate { twins } => {
                    assert_eq!(
                        plan.actions,
                        vec![Action::RebuildRequired {
                            twins: twins.clone()
                        }],
                        "{ctx}"
                    );
                    assert!(!plan.changes_anything());
                    assert!(plan.needs.iter().any(|n| n.contains("person")), "{ctx}");
                }
                Diagnosis::NoDcLocator
                | Diagnosis::DcUnreachable { .. }
                | Diagnosis::AccountDisabled
                | Diagnosis::LocalAccountRefused { .. }
                | Diagnosis::Unauthorized { .. }
                | Diagnosis::AccessDenied { .. }
                | Diagnosis::Unreachable
                | Diagnosis::NotDomainJoined
                | Diagnosis::Unknown { .. } => {
                    assert!(plan.actions.is_empty(), "{ctx}");
                    assert!(!plan.needs.is_empty(), "{ctx}");
                }
                Diagnosis::AccountDeleted | Diagnosis::AccountDisabledOrMissing => {
                    let rejoin_only = plan
                        .actions
                        .iter()
                        .all(|a| matches!(a, Action::Rejoin { .. }));
                    assert!(rejoin_only, "{ctx}");
                    // No preflight in these options: never a rejoin.
                    assert!(plan.actions.is_empty(), "{ctx}");
                    assert!(
                        plan.needs.iter().any(|n| n.contains("Recycle Bin")),
                        "{ctx}"
                    );
                }
                Diagnosis::StalePassword | Diagnosis::TrustBroken { .. } => {
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
                        // A rejoin needs an LDAP preflight (none in these options): never
                        // planned blind, and the plan says what would allow it.
                        assert!(!rejoin, "{ctx}");
                        if opts.allow_rejoin && probe.is_some() {
                            assert!(plan.needs.iter().any(|n| n.contains("--ldap")), "{ctx}");
                        }
                    }
                }
                Diagnosis::StaleDc { newest, .. } => {
                    assert_eq!(
                        plan.actions[0],
                        Action::ScReset {
                            domain: DOMAIN.into(),
                            dc: newest[0].clone(),
                            command: format!("nltest /sc_reset:{DOMAIN}\\{}", newest[0])
                        },
                        "{ctx}"
                    );
                }
            }
        }
    }
}

#[test]
fn stale_password_ladder_pinned_to_the_pdc() {
    let probe = stale();
    let finding = f("ws02", Diagnosis::StalePassword);
    let opts = PlanOptions {
        allow_rejoin: true,
        allow_dc_reset: false,
        allow_enable: false,
        repair_credential_available: true,
        pdcs: BTreeMap::new(),
        dc_access: true,
        dc_reset_hosts: Vec::new(),
        rejoin_preflight: BTreeMap::new(),
        allow_restore: false,
        restore_preflight: BTreeMap::new(),
    };
    // Another domain's PDC (a fleet spanning two domains) is not this host's: its own
    // locator's PDC is.
    let foreign = PlanOptions {
        pdcs: BTreeMap::from([("fabrikam.com".to_string(), "dc01.fabrikam.com".to_string())]),
        ..opts.clone()
    };
    let plan = plan_host(&finding, Some(&probe), &foreign);
    assert!(
        matches!(&plan.actions[0], Action::ResetMachinePassword { server: Some(s), .. } if s == DC1),
        "{:?}",
        plan.actions[0]
    );
    let plan = plan_host(&finding, Some(&probe), &opts);
    assert_eq!(
        plan.actions.len(),
        2,
        "no rejoin without a preflight: {:?}",
        plan.actions
    );
    let opts = PlanOptions {
        rejoin_preflight: preflight("ws02", true),
        ..opts
    };
    let plan = plan_host(&finding, Some(&probe), &opts);
    assert_eq!(plan.actions.len(), 3);
    assert!(
        matches!(&plan.actions[2], Action::Rejoin { join_script, .. } if join_script.contains("-OUPath 'OU=Workstations,DC=contoso,DC=com'")),
        "{:?}",
        plan.actions[2]
    );
    let Action::ResetMachinePassword {
        server,
        script,
        pin_command,
    } = &plan.actions[0]
    else {
        panic!()
    };
    // No fleet vote: the probe's own /dsgetdc /pdc.
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
    assert!(join_script.contains(&format!(
        "Add-Computer -DomainName '{DOMAIN}' -Credential $cred -Server '{DC1}' -OUPath 'OU=Workstations,DC=contoso,DC=com' -Force"
    )));
    assert!(plan.needs_reboot);

    // The fleet's vote for this domain wins over the probe.
    let plan = plan_host(
        &finding,
        Some(&probe),
        &PlanOptions {
            pdcs: pdcs("pdc.contoso.com"),
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
fn stale_dc_pins_to_the_newest_dc_without_a_credential() {
    let finding = f(
        "ws03",
        Diagnosis::StaleDc {
            newest: vec![DC2.into()],
            bound: DC1.into(),
        },
    );
    let plan = plan_host(&finding, Some(&stale()), &PlanOptions::default());
    assert_eq!(plan.actions.len(), 1);
    assert!(plan.needs.iter().any(|n| n.contains("repadmin")));
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["actions"][0]["action"], "sc_reset");
    assert_eq!(
        v["actions"][0]["command"],
        format!("nltest /sc_reset:{DOMAIN}\\{DC2}")
    );
    assert_eq!(v["diagnosis"]["kind"], "stale_dc");
}

#[test]
fn people_are_told_the_concrete_reason() {
    let none = PlanOptions::default();
    let cases: &[(Diagnosis, &str)] = &[
        (Diagnosis::AccountDisabled, "re-enable the computer object"),
        (Diagnosis::AccountDeleted, "Recycle Bin"),
        (Diagnosis::AccountDisabledOrMissing, "--ldap"),
        (Diagnosis::NoDcLocator, "fix DNS on the member"),
        (Diagnosis::DcUnreachable { dc: None }, "RPC 135"),
        (
            Diagnosis::NameTwin {
                twins: vec!["b".into()],
            },
            "rebuild or rename one",
        ),
        (
            Diagnosis::SidDuplicate {
                twins: vec!["b".into()],
            },
            "with sysprep",
        ),
        (
            Diagnosis::LocalAccountRefused {
                user: "x\\y".into(),
            },
            "LAPS",
        ),
        (
            Diagnosis::Unauthorized {
                user: "c\\a".into(),
            },
            "LAPS",
        ),
    ];
    for (d, want) in cases {
        let plan = plan_host(&f("h", d.clone()), Some(&stale()), &none);
        assert!(
            plan.needs.iter().any(|n| n.contains(want)),
            "{d:?}: {:?}",
            plan.needs
        );
        assert!(!plan.changes_anything(), "{d:?}");
    }
    let dc = plan_host(
        &f("dc01", Diagnosis::DomainController { role: 4 }),
        None,
        &none,
    );
    assert!(dc.why.contains("skipped"), "{}", dc.why);
}

#[test]
fn account_deleted_rejoins_only_when_allowed() {
    let probe = ProbeOut::broken("WS07", 7, "nltest_sc_verify_broken_1787.txt").probe();
    let opts = PlanOptions {
        allow_rejoin: true,
        repair_credential_available: true,
        rejoin_preflight: preflight("ws07", true),
        ..PlanOptions::default()
    };
    for d in [
        Diagnosis::AccountDeleted,
        Diagnosis::AccountDisabledOrMissing,
    ] {
        let plan = plan_host(&f("ws07", d.clone()), Some(&probe), &opts);
        assert!(
            matches!(&plan.actions[..], [Action::Rejoin { domain, .. }] if domain == DOMAIN),
            "{d:?}: {:?}",
            plan.actions
        );
        let plan = plan_host(&f("ws07", d.clone()), Some(&probe), &PlanOptions::default());
        assert!(plan.actions.is_empty());
        // Issue 11: never a rejoin that could strand the host.
        let refused = PlanOptions {
            rejoin_preflight: preflight("ws07", false),
            ..opts.clone()
        };
        let plan = plan_host(&f("ws07", d.clone()), Some(&probe), &refused);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.why.contains("KB5020276"), "{}", plan.why);
        let blind = PlanOptions {
            rejoin_preflight: BTreeMap::new(),
            ..opts.clone()
        };
        let plan = plan_host(&f("ws07", d.clone()), Some(&probe), &blind);
        assert!(plan.actions.is_empty());
        assert!(
            plan.needs.iter().any(|n| n.contains("--ldap")),
            "{:?}",
            plan.needs
        );
        // Connected as a domain account: a workgroup host would be out of reach.
        let mut domain_user = probe.clone();
        domain_user.user = "contoso\\helpdesk".into();
        let plan = plan_host(&f("ws07", d), Some(&domain_user), &opts);
        assert!(plan.actions.is_empty());
        assert!(plan.why.contains("local account"), "{}", plan.why);
    }
}

#[test]
fn unreachable_and_401_are_never_reset_on_the_dc() {
    let opts = PlanOptions {
        allow_rejoin: true,
        allow_dc_reset: true,
        allow_enable: false,
        repair_credential_available: true,
        pdcs: pdcs(DC1),
        dc_access: true,
        dc_reset_hosts: Vec::new(),
        rejoin_preflight: BTreeMap::new(),
        allow_restore: false,
        restore_preflight: BTreeMap::new(),
    };
    let plan = plan_host(&f("ws80", Diagnosis::Unreachable), None, &opts);
    assert!(plan.actions.is_empty());
    assert!(plan.why.contains("merely offline"));
    let plan = plan_host(
        &f(
            "ws70",
            Diagnosis::Unauthorized {
                user: "contoso\\alice".into(),
            },
        ),
        None,
        &opts,
    );
    assert!(plan.actions.is_empty());
    assert!(plan.why.contains("not evidence of a broken trust"));
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
        pdcs: fleet_pdcs(&obs),
        dc_access: true,
        dc_reset_hosts: Vec::new(),
        rejoin_preflight: BTreeMap::new(),
        ..PlanOptions::default()
    };
    assert_eq!(opts.pdcs.get(DOMAIN).map(String::as_str), Some(DC1));
    let plans = plan_fleet(&findings, &obs, &opts);
    assert!(plans[0].actions.is_empty());
    assert!(
        matches!(&plans[1].actions[0], Action::ResetMachinePassword { server: Some(s), .. } if s == DC1)
    );
}

#[test]
fn dc_reset_only_for_hosts_an_admin_named_with_permission_and_dc_access() {
    // Issue 11 / DOMAIN.md "Repairing it": a DC-side reset is never inferred from 401s.
    let finding = f(
        "ws02.contoso.com",
        Diagnosis::Unauthorized {
            user: "Administrator".into(),
        },
    );
    let base = PlanOptions {
        allow_dc_reset: true,
        allow_enable: false,
        dc_access: true,
        pdcs: pdcs("pdc.contoso.com"),
        ..PlanOptions::default()
    };
    assert!(plan_host(&finding, None, &base).actions.is_empty());
    let named = PlanOptions {
        dc_reset_hosts: vec!["WS02.contoso.com".into()],
        ..base.clone()
    };
    let plan = plan_host(&finding, None, &named);
    assert!(
        matches!(&plan.actions[..], [Action::DcResetAccount { dc, computer }] if dc == "pdc.contoso.com" && computer == "WS02"),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.needs.iter().any(|n| n.contains("rejoin")),
        "{:?}",
        plan.needs
    );
    for opts in [
        PlanOptions {
            allow_dc_reset: false,
            allow_enable: false,
            ..named.clone()
        },
        PlanOptions {
            dc_access: false,
            ..named.clone()
        },
    ] {
        let plan = plan_host(&finding, None, &opts);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.why.contains("not planned"), "{}", plan.why);
    }
    for d in [Diagnosis::Healthy, Diagnosis::DomainController { role: 4 }] {
        assert!(plan_host(&f("ws02.contoso.com", d), None, &named)
            .actions
            .is_empty());
    }
}
