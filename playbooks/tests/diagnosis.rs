//! Every diagnosis from recorded probe outputs (real nltest captures inside realistic probe
//! stdout; CRLF for half of them), and the fleet-wide ones: clones, replication lag, domain
//! logon refused where it works elsewhere.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use playbooks::*;

fn obs(host: &str, probe: &ProbeOut) -> HostObservation {
    HostObservation::connected(
        host,
        format!("{}\\administrator", probe.name),
        true,
        probe.probe(),
    )
}

fn one(o: HostObservation) -> Finding {
    diagnose_fleet(&[o]).pop().unwrap()
}

fn dc_test(dc: &str, ok: Option<bool>) -> DcTest {
    DcTest {
        dc: dc.into(),
        ok,
        error: ok
            .is_none()
            .then(|| "Cannot verify the secure channel".to_string()),
    }
}

#[test]
fn healthy() {
    let f = one(obs(
        "ws01.contoso.com",
        &ProbeOut::healthy("WS01", 1).crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::Healthy);
    assert_eq!(f.diagnosis.state(), HostState::Healthy);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("verification Status = 0 0x0 NERR_Success")),
        "{:?}",
        f.evidence
    );
}

#[test]
fn stale_password_single_dc() {
    // The real /sc_query capture of a machine whose password no longer matches: status 5.
    let p = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    );
    let f = one(obs("ws02", &p));
    assert_eq!(f.diagnosis, Diagnosis::StalePassword);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("5 0x5 ERROR_ACCESS_DENIED")),
        "{:?}",
        f.evidence
    );
    assert!(f
        .evidence
        .iter()
        .any(|e| e == "Test-ComputerSecureChannel: False"));
}

#[test]
fn stale_password_rejected_by_every_dc() {
    let p = ProbeOut::broken(
        "WS02",
        2,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2])
    .crlf(true);
    let probe = p.probe();
    assert!(needs_dc_tests(&probe));
    assert_eq!(
        dc_test_targets(&probe),
        vec![DC2.to_string(), DC1.to_string()],
        "the PDC last"
    );
    let mut o = obs("ws02", &p);
    o.dc_tests = vec![dc_test(DC1, Some(false)), dc_test(DC2, Some(false))];
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::StalePassword);
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("rejected by every DC tested (2)")),
        "{:?}",
        f.evidence
    );
}

#[test]
fn replication_lag_from_per_dc_tests() {
    let p = ProbeOut::broken(
        "WS03",
        3,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2]);
    let mut o = obs("ws03", &p);
    o.dc_tests = vec![dc_test(DC1, Some(true)), dc_test(DC2, Some(false))];
    let f = one(o);
    assert_eq!(
        f.diagnosis,
        Diagnosis::ReplicationLag {
            good_dc: DC1.into(),
            bad_dc: DC2.into()
        }
    );
    assert!(f
        .evidence
        .iter()
        .any(|e| e == &format!("Test-ComputerSecureChannel -Server {DC1}: True")));
    assert!(f
        .evidence
        .iter()
        .any(|e| e == &format!("Test-ComputerSecureChannel -Server {DC2}: False")));
}

#[test]
fn replication_lag_of_a_new_account() {
    // The account exists on one DC only: 1787 from the bound DC, True from the other.
    let p = ProbeOut::broken("WS03", 3, "nltest_sc_verify_broken_1787.txt")
        .dcs(&[DC1, DC2])
        .crlf(true);
    let mut o = obs("ws03", &p);
    o.dc_tests = vec![dc_test(DC1, Some(false)), dc_test(DC2, Some(true))];
    assert_eq!(
        one(o).diagnosis,
        Diagnosis::ReplicationLag {
            good_dc: DC2.into(),
            bad_dc: DC1.into()
        }
    );
}

#[test]
fn account_missing_1787_and_1786() {
    let f = one(obs(
        "ws04",
        &ProbeOut::broken("WS04", 4, "nltest_sc_verify_broken_1787.txt").crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::AccountMissing);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.contains("1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT")));
    let f = one(obs(
        "ws05",
        &ProbeOut::broken("WS05", 5, "nltest_query_no_trust_lsa_secret_1786.txt"),
    ));
    assert_eq!(f.diagnosis, Diagnosis::AccountMissing);
}

#[test]
fn no_dc_reachable_1311() {
    let p = ProbeOut::broken(
        "WS06",
        6,
        "nltest_sc_verify_no_logon_servers_1311_UNVERIFIED.txt",
    )
    .crlf(true);
    let f = one(obs("ws06", &p));
    assert_eq!(f.diagnosis, Diagnosis::NoDcReachable);
    assert_eq!(f.diagnosis.state(), HostState::Broken);
    let f = one(obs(
        "ws06",
        &ProbeOut::broken("WS06", 6, "nltest_query_no_logon_servers_1311.txt"),
    ));
    assert_eq!(f.diagnosis, Diagnosis::NoDcReachable);
}

#[test]
fn clones_share_a_sid_or_a_name() {
    let a = ProbeOut::healthy("WS10", 10);
    let b = ProbeOut::broken(
        "WS11",
        10,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .crlf(true); // same SID
    let c = ProbeOut::healthy("WS12", 12);
    let d = ProbeOut::broken(
        "WS12",
        13,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    ); // same name
    let e = ProbeOut::healthy("WS14", 14).crlf(true);
    let fleet = vec![
        obs("ws10", &a),
        obs("ws11", &b),
        obs("ws12a", &c),
        obs("ws12b", &d),
        obs("ws14", &e),
    ];
    let f = diagnose_fleet(&fleet);
    assert_eq!(
        f.iter().map(|f| f.host.as_str()).collect::<Vec<_>>(),
        vec!["ws10", "ws11", "ws12a", "ws12b", "ws14"]
    );
    assert_eq!(
        f[0].diagnosis,
        Diagnosis::Clone {
            twins: vec!["ws11".into()]
        }
    );
    assert_eq!(
        f[1].diagnosis,
        Diagnosis::Clone {
            twins: vec!["ws10".into()]
        }
    );
    assert_eq!(
        f[2].diagnosis,
        Diagnosis::Clone {
            twins: vec!["ws12b".into()]
        }
    );
    assert_eq!(
        f[3].diagnosis,
        Diagnosis::Clone {
            twins: vec!["ws12a".into()]
        }
    );
    assert_eq!(f[4].diagnosis, Diagnosis::Healthy);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("machine SID S-1-5-21-1004336348-1177238915-10 shared with ws11")),
        "{:?}",
        f[0].evidence
    );
    assert!(f[2]
        .evidence
        .iter()
        .any(|e| e.contains("computer name WS12 shared with ws12b")));
    // A healthy clone is still a clone: its twin will break it at the next rotation.
    assert_eq!(f[0].diagnosis.state(), HostState::Broken);
    // Alone, a clone looks like what its channel says.
    assert_eq!(diagnose_host(&fleet[1]).diagnosis, Diagnosis::StalePassword);
}

#[test]
fn three_clones_name_all_twins_once() {
    let a = ProbeOut::healthy("WS20", 20);
    let b = ProbeOut {
        name: "WS20".into(),
        ..ProbeOut::healthy("WS20", 20)
    }; // same SID and name
    let c = ProbeOut::healthy("WS22", 20);
    let f = diagnose_fleet(&[obs("a", &a), obs("b", &b), obs("c", &c)]);
    assert_eq!(
        f[0].diagnosis,
        Diagnosis::Clone {
            twins: vec!["b".into(), "c".into()]
        }
    );
    assert_eq!(
        f[2].diagnosis,
        Diagnosis::Clone {
            twins: vec!["a".into(), "b".into()]
        }
    );
}

#[test]
fn the_same_inventory_name_twice_is_not_a_clone() {
    let a = ProbeOut::healthy("WS30", 30);
    let f = diagnose_fleet(&[obs("ws30", &a), obs("WS30", &a)]);
    assert!(f.iter().all(|f| f.diagnosis == Diagnosis::Healthy), "{f:?}");
}

#[test]
fn fleet_wide_lag_and_stale_side_by_side() {
    let lag = ProbeOut::broken(
        "WS40",
        40,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2]);
    let stale = ProbeOut::broken(
        "WS41",
        41,
        "nltest_sc_query_broken_password_access_denied_5.txt",
    )
    .dcs(&[DC1, DC2])
    .crlf(true);
    let ok = ProbeOut::healthy("WS42", 42).dcs(&[DC1, DC2]);
    let mut o1 = obs("ws40", &lag);
    o1.dc_tests = vec![dc_test(DC1, Some(false)), dc_test(DC2, Some(true))];
    let mut o2 = obs("ws41", &stale);
    o2.dc_tests = vec![dc_test(DC1, Some(false)), dc_test(DC2, None)];
    let f = diagnose_fleet(&[o1, o2, obs("ws42", &ok)]);
    assert_eq!(
        f[0].diagnosis,
        Diagnosis::ReplicationLag {
            good_dc: DC2.into(),
            bad_dc: DC1.into()
        }
    );
    assert_eq!(f[1].diagnosis, Diagnosis::StalePassword);
    assert_eq!(f[2].diagnosis, Diagnosis::Healthy);
    assert!(!needs_dc_tests(&ok.probe()));
    assert!(
        !needs_dc_tests(&ProbeOut::broken("X", 1, "nltest_sc_verify_broken_1787.txt").probe()),
        "one DC: nothing to compare"
    );
    assert_eq!(
        summarize(&f),
        Summary {
            healthy: 1,
            broken: 2,
            unreachable: 0,
            access_problem: 0,
            unknown: 0
        }
    );
}

#[test]
fn filtered_admin_is_not_a_broken_trust() {
    let o = HostObservation {
        host: "ws50.contoso.com".into(),
        access: Access::AccessDenied {
            user: "ws50\\helpdesk".into(),
        },
        domain_logon: DomainLogon::NotTried,
        probe: None,
        dc_tests: vec![],
        dc_accounts: vec![],
        error: Some("Access is denied.".into()),
    };
    let f = one(o.clone());
    assert_eq!(
        f.diagnosis,
        Diagnosis::FilteredAdmin {
            user: "ws50\\helpdesk".into()
        }
    );
    assert_eq!(f.diagnosis.state(), HostState::AccessProblem);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.contains("UAC remote restrictions")));
    // A domain account refused with Access Denied is just access denied.
    let f = one(HostObservation {
        access: Access::AccessDenied {
            user: "contoso\\bob".into(),
        },
        ..o
    });
    assert_eq!(
        f.diagnosis,
        Diagnosis::AccessDenied {
            user: "contoso\\bob".into()
        }
    );
}

#[test]
fn domain_logon_refused_with_local_admin_accepted_is_broken_before_the_probe() {
    let o = HostObservation {
        host: "ws60".into(),
        access: Access::Connected {
            user: "ws60\\administrator".into(),
            local: true,
        },
        domain_logon: DomainLogon::Refused,
        probe: None,
        dc_tests: vec![],
        dc_accounts: vec![],
        error: Some("timeout while running the probe".into()),
    };
    let f = one(o.clone());
    assert!(
        matches!(f.diagnosis, Diagnosis::TrustBroken { .. }),
        "{:?}",
        f.diagnosis
    );
    assert_eq!(f.diagnosis.state(), HostState::Broken);
    assert!(f
        .evidence
        .iter()
        .any(|e| e == "domain logon: refused (HTTP 401)"));
    // Without the refusal, a missing probe is unknown.
    let f = one(HostObservation {
        domain_logon: DomainLogon::NotTried,
        ..o
    });
    assert!(matches!(f.diagnosis, Diagnosis::Unknown { .. }));
    assert_eq!(f.diagnosis.state(), HostState::Unknown);
}

#[test]
fn no_way_in_but_the_domain_account_works_elsewhere() {
    let locked = HostObservation {
        host: "ws70".into(),
        access: Access::Unauthorized {
            user: "Administrator".into(),
        },
        domain_logon: DomainLogon::Refused,
        probe: None,
        dc_tests: vec![],
        dc_accounts: vec![],
        error: None,
    };
    let mut good = obs("ws71", &ProbeOut::healthy("WS71", 71));
    good.domain_logon = DomainLogon::Accepted;
    let f = diagnose_fleet(&[locked.clone(), good]);
    assert_eq!(
        f[0].diagnosis,
        Diagnosis::BrokenNoAccess {
            user: "Administrator".into()
        }
    );
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.contains("logs on to 1 other host(s)")));
    // Refused everywhere: perhaps the domain password is wrong; do not call it broken.
    let f = one(locked);
    assert_eq!(
        f.diagnosis,
        Diagnosis::AccessDenied {
            user: "Administrator".into()
        }
    );
}

#[test]
fn unreachable_and_timeout() {
    let o = HostObservation {
        host: "ws80".into(),
        access: Access::Unreachable {
            message: "connection refused".into(),
        },
        domain_logon: DomainLogon::NotTried,
        probe: None,
        dc_tests: vec![],
        dc_accounts: vec![],
        error: None,
    };
    let f = one(o.clone());
    assert_eq!(f.diagnosis, Diagnosis::Unreachable);
    assert!(f.evidence[0].contains("connection refused"));
    assert_eq!(
        one(HostObservation {
            access: Access::Timeout,
            ..o
        })
        .diagnosis,
        Diagnosis::Unreachable
    );
}

#[test]
fn not_domain_joined() {
    let f = one(obs(
        "ws90",
        &ProbeOut::healthy("WS90", 90).workgroup().crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::NotDomainJoined);
}

#[test]
fn unelevated_session_and_stopped_netlogon() {
    let mut p = ProbeOut::healthy("WS91", 91);
    p.user = "contoso\\operator".into();
    p.nltest = fixture("nltest_sc_verify_not_elevated_access_denied_5_UNVERIFIED.txt");
    p.tcsc = String::new();
    p.tcsc_error = "Access is denied".into();
    let mut o = obs("ws91", &p);
    o.access = Access::Connected {
        user: "contoso\\operator".into(),
        local: false,
    };
    o.domain_logon = DomainLogon::Accepted;
    assert_eq!(
        one(o).diagnosis,
        Diagnosis::AccessDenied {
            user: "contoso\\operator".into()
        }
    );

    let mut p = ProbeOut::healthy("WS92", 92).crlf(true);
    p.nltest = fixture("nltest_sc_query_netlogon_stopped_1722.txt");
    p.tcsc = String::new();
    let f = one(obs("ws92", &p));
    assert!(
        matches!(&f.diagnosis, Diagnosis::Unknown { detail } if detail.contains("1722")),
        "{:?}",
        f.diagnosis
    );
}

#[test]
fn trust_broken_for_an_unlisted_status() {
    let mut p = ProbeOut::healthy("WS93", 93);
    p.tcsc = "False".into();
    p.nltest = "Flags: 0\nTrusted DC Name\nTrusted DC Connection Status Status = 1326 0x52e ERROR_LOGON_FAILURE\nTrust Verification Status = 1326 0x52e ERROR_LOGON_FAILURE\nThe command completed successfully\n".into();
    let f = one(obs("ws93", &p));
    assert!(
        matches!(&f.diagnosis, Diagnosis::TrustBroken { detail } if detail.contains("1326")),
        "{:?}",
        f.diagnosis
    );
}

#[test]
fn names_display_and_json() {
    let d = Diagnosis::ReplicationLag {
        good_dc: DC1.into(),
        bad_dc: DC2.into(),
    };
    assert_eq!(d.name(), "replication_lag");
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        serde_json::json!({"kind": "replication_lag", "good_dc": DC1, "bad_dc": DC2})
    );
    assert_eq!(
        d.to_string(),
        format!("replication lag (works against {DC1}, fails against {DC2})")
    );
    assert_eq!(
        serde_json::to_value(Diagnosis::StalePassword).unwrap(),
        serde_json::json!({"kind": "stale_password"})
    );
    let all = [
        Diagnosis::Healthy,
        Diagnosis::StalePassword,
        Diagnosis::Clone {
            twins: vec!["a".into()],
        },
        d,
        Diagnosis::AccountMissing,
        Diagnosis::NoDcReachable,
        Diagnosis::TrustBroken { detail: "x".into() },
        Diagnosis::BrokenNoAccess { user: "u".into() },
        Diagnosis::FilteredAdmin { user: "u".into() },
        Diagnosis::AccessDenied { user: "u".into() },
        Diagnosis::Unreachable,
        Diagnosis::NotDomainJoined,
        Diagnosis::Unknown { detail: "x".into() },
    ];
    for d in all {
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["kind"], d.name());
        let back: Diagnosis = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        assert!(!d.to_string().is_empty());
    }
    assert_eq!(
        serde_json::to_value(HostState::AccessProblem).unwrap(),
        "access_problem"
    );
}

#[test]
fn fleet_pdc_is_the_majority_vote() {
    let a = obs("a", &ProbeOut::healthy("A", 1).dcs(&[DC1, DC2]));
    let b = obs("b", &ProbeOut::healthy("B", 2).dcs(&[DC1, DC2]));
    let c = obs("c", &ProbeOut::healthy("C", 3).dcs(&[DC2, DC1]));
    assert_eq!(fleet_pdc(&[a, b, c]).as_deref(), Some(DC1));
    assert_eq!(fleet_pdc(&[]), None);
    // A local account's NetBIOS listing counts for the same DC.
    let mut d = ProbeOut::healthy("D", 4);
    d.dclist = "List of DCs in Domain contoso.com\n    \\\\DC02 (PDC)\n    \\\\DC01\n".into();
    let e = obs("e", &ProbeOut::healthy("E", 5).dcs(&[DC2, DC1]));
    let f = obs("f", &ProbeOut::healthy("F", 6).dcs(&[DC1, DC2]));
    assert_eq!(fleet_pdc(&[obs("d", &d), e, f]).as_deref(), Some(DC2));
}

#[test]
fn local_account_names() {
    assert!(looks_local(".\\admin", "ws01.contoso.com"));
    assert!(looks_local("WS01\\admin", "ws01.contoso.com"));
    assert!(looks_local("admin", "10.0.0.5"));
    assert!(!looks_local("contoso\\admin", "ws01.contoso.com"));
    assert!(!looks_local("admin@contoso.com", "ws01"));
}

fn on_dc(dc: &str, pwd_last_set: Option<u64>) -> DcAccount {
    DcAccount {
        dc: dc.into(),
        state: match pwd_last_set {
            Some(t) => DcAccountState::Present {
                pwd_last_set: t,
                pwd_last_set_utc: if t == 134_064_288_000_000_000 { "2025-11-01T00:00:00Z".into() } else { t.to_string() },
                disabled: false,
            },
            None => DcAccountState::Missing,
        },
    }
}

#[test]
fn replication_lag_from_pwd_last_set_per_dc() {
    // A broken member prints no Trusted DC Name; the DCs' copies of its account tell lag
    // (newer on DC1) from a stale password (the same everywhere), without asking the
    // member to talk to each DC.
    let p = ProbeOut::broken("WS03", 3, "nltest_sc_query_broken_password_access_denied_5.txt").dcs(&[DC1, DC2]);
    let mut o = obs("ws03", &p);
    o.dc_accounts = vec![on_dc(DC1, Some(134_064_288_000_000_100)), on_dc(DC2, Some(134_064_288_000_000_000))];
    let f = one(o.clone());
    assert_eq!(f.diagnosis, Diagnosis::ReplicationLag { good_dc: DC1.into(), bad_dc: DC2.into() });
    assert!(f.evidence.iter().any(|e| e == &format!("computer account on {DC2}: pwdLastSet 2025-11-01T00:00:00Z (134064288000000000)")), "{:?}", f.evidence);
    assert!(f.evidence.iter().any(|e| e.contains("replication has not caught up")), "{:?}", f.evidence);

    // Every DC agrees: the member's secret is simply old.
    o.dc_accounts = vec![on_dc(DC1, Some(7)), on_dc(DC2, Some(7))];
    assert_eq!(one(o.clone()).diagnosis, Diagnosis::StalePassword);

    // A DC that could not be read takes no part.
    o.dc_accounts = vec![on_dc(DC1, Some(7)), DcAccount { dc: DC2.into(), state: DcAccountState::Unknown }];
    assert_eq!(one(o.clone()).diagnosis, Diagnosis::StalePassword);

    // An account that exists on one DC only (created there, not replicated yet).
    let p = ProbeOut::broken("WS03", 3, "nltest_sc_verify_broken_1787.txt").dcs(&[DC1, DC2]);
    let mut o = obs("ws03", &p);
    o.dc_accounts = vec![on_dc(DC1, None), on_dc(DC2, Some(7))];
    assert_eq!(one(o.clone()).diagnosis, Diagnosis::ReplicationLag { good_dc: DC2.into(), bad_dc: DC1.into() });
    // Missing everywhere: the account is gone.
    o.dc_accounts = vec![on_dc(DC1, None), on_dc(DC2, None)];
    assert_eq!(one(o).diagnosis, Diagnosis::AccountMissing);

    // A healthy member whose DCs disagree stays healthy (a change on its way).
    let ok = ProbeOut::healthy("WS04", 4).dcs(&[DC1, DC2]);
    let mut o = obs("ws04", &ok);
    o.dc_accounts = vec![on_dc(DC1, Some(8)), on_dc(DC2, Some(7))];
    assert_eq!(one(o).diagnosis, Diagnosis::Healthy);
}
