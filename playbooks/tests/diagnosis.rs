//! Every diagnosis from recorded probe outputs (real nltest captures inside realistic probe
//! stdout; CRLF for some), with the evidence that proves it, and the fleet-wide ones: name
//! twins, SID duplicates, the DC locator against the rest of the domain, PDC votes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use playbooks::*;

const STATUS_5: &str = "nltest_sc_query_broken_password_access_denied_5.txt";
const STATUS_1787: &str = "nltest_sc_verify_broken_1787.txt";
const STATUS_1311: &str = "nltest_sc_verify_no_logon_servers_1311_UNVERIFIED.txt";

fn obs(host: &str, probe: &ProbeOut) -> HostObservation {
    HostObservation::connected(
        host,
        format!("{}\\administrator", probe.name),
        true,
        probe.probe(),
    )
    .at(format!("{host}:5986"))
}

fn one(o: HostObservation) -> Finding {
    diagnose_fleet(&[o]).pop().unwrap()
}

fn has(f: &Finding, needle: &str) -> bool {
    f.evidence.iter().any(|e| e.contains(needle))
}

#[track_caller]
fn assert_ev(f: &Finding, needle: &str) {
    assert!(has(f, needle), "{needle:?} not in {:#?}", f.evidence);
}

fn account(dc: &str, pwd_last_set: u64, disabled: bool) -> DcAccount {
    DcAccount {
        dc: dc.into(),
        state: DcAccountState::Present {
            pwd_last_set,
            pwd_last_set_utc: format!("t{pwd_last_set}"),
            disabled,
        },
    }
}

fn missing(dc: &str) -> DcAccount {
    DcAccount {
        dc: dc.into(),
        state: DcAccountState::Missing,
    }
}

#[test]
fn healthy_rests_on_the_live_test() {
    let f = one(obs(
        "ws01.contoso.com",
        &ProbeOut::healthy("WS01", 1).crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::Healthy);
    assert_eq!(f.diagnosis.name(), "healthy");
    assert_eq!(f.diagnosis.state(), HostState::Healthy);
    assert_ev(
        &f,
        "live test: nltest /sc_verify: verification Status = 0 0x0 NERR_Success",
    );
    assert_ev(
        &f,
        "stored status (last use): Test-ComputerSecureChannel True",
    );

    // The stored status says broken (last use failed) but the live test works: healthy.
    let mut p = ProbeOut::healthy("WS01", 1);
    p.sc_query = fixture(STATUS_5);
    p.tcsc = "False".into();
    let f = one(obs("ws01", &p));
    assert_eq!(f.diagnosis, Diagnosis::Healthy);
    assert_ev(
        &f,
        "stored status (last use): nltest /sc_query: connection Status = 5",
    );
}

#[test]
fn healthy_channel_with_refused_logon_is_policy() {
    let mut o = obs("ws01", &ProbeOut::healthy("WS01", 1));
    o.domain_logon = DomainLogon::Refused;
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::Healthy);
    assert_ev(&f, "domain logons refused by policy (Deny access from the network, Protected Users…) while the channel works");
}

#[test]
fn skipped_logon_test_is_said() {
    let mut o = obs("ws01", &ProbeOut::healthy("WS01", 1));
    o.domain_logon = DomainLogon::Skipped;
    assert_ev(&one(o), "skipped (no --logon-test-user given)");
}

#[test]
fn domain_controller_is_skipped() {
    for role in [4, 5] {
        let f = one(obs("dc01", &ProbeOut::healthy("DC01", 7).role(role)));
        assert_eq!(f.diagnosis, Diagnosis::DomainController { role });
        assert_eq!(f.diagnosis.name(), "domain_controller");
        assert_ev(&f, "a domain controller, not a member");
        assert!(!has(&f, "live test"), "no channel evidence on a DC");
    }
}

#[test]
fn not_domain_joined() {
    let f = one(obs("ws90", &ProbeOut::healthy("WS90", 90).workgroup()));
    assert_eq!(f.diagnosis, Diagnosis::NotDomainJoined);
    assert_eq!(f.diagnosis.name(), "not_domain_joined");
    assert_ev(&f, "part of domain: no");
}

#[test]
fn stale_password_without_dc_side_evidence() {
    let f = one(obs(
        "ws02",
        &ProbeOut::broken("WS02", 2, STATUS_5).crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::StalePassword);
    assert_eq!(f.diagnosis.state(), HostState::Broken);
    assert_ev(
        &f,
        "live test: nltest /sc_verify: connection Status = 5 0x5 ERROR_ACCESS_DENIED",
    );
    assert_ev(
        &f,
        "stored status (last use): Test-ComputerSecureChannel False",
    );
    assert_ev(&f, "cannot tell a stale machine password (snapshot restore, DC-side reset) from a DC that missed replication; the repair ladder covers both");
}

#[test]
fn stale_password_with_dcs_in_agreement() {
    let mut o = obs("ws02", &ProbeOut::broken("WS02", 2, STATUS_5));
    o.dc_accounts = vec![account(DC1, 100, false), account(DC2, 100, false)];
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::StalePassword);
    assert_ev(&f, "the member's machine password is stale");
}

#[test]
fn stale_dc_from_dc_side_evidence() {
    // Bound to DC1 (the sc_query/sc_verify Trusted DC Name), which holds an older value.
    let mut p = ProbeOut::broken("WS03", 3, STATUS_5);
    p.sc_verify = "Flags: 0\nTrusted DC Name \\\\dc01.contoso.com\nTrusted DC Connection Status Status = 5 0x5 ERROR_ACCESS_DENIED\nTrust Verification Status = 5 0x5 ERROR_ACCESS_DENIED\nThe command completed successfully\n".into();
    let mut o = obs("ws03", &p);
    o.dc_accounts = vec![account(DC1, 100, false), account(DC2, 200, false)];
    let f = one(o);
    assert_eq!(
        f.diagnosis,
        Diagnosis::StaleDc {
            newest: vec![DC2.into()],
            bound: DC1.into()
        }
    );
    assert_eq!(f.diagnosis.name(), "stale_dc");
    assert_ev(&f, &format!("pin it to {DC2}"));

    // Bound to the DC with the newest value: not a stale DC.
    let mut o = obs("ws03", &p);
    o.dc_accounts = vec![account(DC1, 200, false), account(DC2, 100, false)];
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::StalePassword);
    assert_ev(&f, "holds the newest value: not a stale DC");
}

#[test]
fn account_disabled_or_missing_without_ldap() {
    let f = one(obs(
        "ws04",
        &ProbeOut::broken("WS04", 4, STATUS_1787).crlf(true),
    ));
    assert_eq!(f.diagnosis, Diagnosis::AccountDisabledOrMissing);
    assert_eq!(f.diagnosis.name(), "account_disabled_or_missing");
    assert_ev(&f, "1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT");
    assert_ev(
        &f,
        "computer account disabled or missing (1787); only LDAP (--ldap) tells which",
    );
}

#[test]
fn account_disabled_and_deleted_from_ldap() {
    let mut o = obs("ws04", &ProbeOut::broken("WS04", 4, STATUS_1787));
    o.dc_accounts = vec![account(DC1, 100, true), account(DC2, 100, true)];
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::AccountDisabled);
    assert_eq!(f.diagnosis.name(), "account_disabled");
    assert_ev(&f, "the computer account is disabled");

    let mut o = obs("ws04", &ProbeOut::broken("WS04", 4, STATUS_1787));
    o.dc_accounts = vec![missing(DC1), missing(DC2)];
    let f = one(o);
    assert_eq!(f.diagnosis, Diagnosis::AccountDeleted);
    assert_eq!(f.diagnosis.name(), "account_deleted");
    assert_ev(&f, "no DC read");
}

#[test]
fn no_dc_locator_and_dc_unreachable() {
    let lost = ProbeOut::broken("WS06", 6, STATUS_1311)
        .no_locator()
        .crlf(true);
    let fine = ProbeOut::healthy("WS07", 7);
    let fs = diagnose_fleet(&[obs("ws06", &lost), obs("ws07", &fine)]);
    assert_eq!(fs[0].diagnosis, Diagnosis::NoDcLocator);
    assert_eq!(fs[0].diagnosis.name(), "no_dc_locator");
    assert_ev(
        &fs[0],
        "DC locator: nltest /dsgetdc /force: no DC found, Status = 1355",
    );
    assert_ev(&fs[0], "usually the member's DNS points at a non-DC");
    assert_ev(
        &fs[0],
        "1 other member(s) of contoso.com verify their channel",
    );

    let blocked = ProbeOut::broken("WS08", 8, STATUS_1311);
    let f = one(obs("ws08", &blocked));
    assert_eq!(
        f.diagnosis,
        Diagnosis::DcUnreachable {
            dc: Some(DC1.into())
        }
    );
    assert_eq!(f.diagnosis.name(), "dc_unreachable");
    assert_ev(&f, "firewall or RPC");
}

#[test]
fn trust_broken_for_other_live_statuses() {
    let f = one(obs(
        "ws05",
        &ProbeOut::broken("WS05", 5, "nltest_query_no_trust_lsa_secret_1786.txt"),
    ));
    assert!(
        matches!(&f.diagnosis, Diagnosis::TrustBroken { detail } if detail.contains("1786")),
        "{f:?}"
    );
    assert_eq!(f.diagnosis.name(), "trust_broken");
}

#[test]
fn not_elevated_is_not_a_refused_password() {
    let mut p = ProbeOut::healthy("WS03", 13);
    p.sc_verify = fixture("nltest_sc_verify_not_elevated_access_denied_5_UNVERIFIED.txt");
    p.sc_query = p.sc_verify.clone();
    let f = one(obs("ws03", &p));
    assert!(
        matches!(f.diagnosis, Diagnosis::AccessDenied { .. }),
        "{f:?}"
    );
    assert_ev(&f, "not elevated");
}

#[test]
fn name_twins_are_never_reset_and_aliases_are_one_host() {
    let a = ProbeOut::healthy("WS10", 10);
    let b = ProbeOut::broken("WS10", 11, STATUS_5).crlf(true);
    let fs = diagnose_fleet(&[obs("ws10a", &a), obs("ws10b", &b)]);
    assert_eq!(
        fs[0].diagnosis,
        Diagnosis::NameTwin {
            twins: vec!["ws10b".into()]
        }
    );
    assert_eq!(
        fs[1].diagnosis,
        Diagnosis::NameTwin {
            twins: vec!["ws10a".into()]
        }
    );
    assert_eq!(fs[1].diagnosis.name(), "name_twin");
    assert_ev(&fs[1], "one computer account, two machines");
    assert_ev(&fs[1], "never reset either");

    // One machine under two inventory names (same address): not a twin.
    let alias = HostObservation::connected("ws10", "WS10\\administrator", true, a.probe())
        .at("10.0.0.10:5986");
    let fqdn =
        HostObservation::connected("ws10.contoso.com", "WS10\\administrator", true, a.probe())
            .at("10.0.0.10:5986");
    let fs = diagnose_fleet(&[alias, fqdn]);
    assert!(
        fs.iter().all(|f| f.diagnosis == Diagnosis::Healthy),
        "{fs:#?}"
    );

    // The same name in another domain: not a twin (keys include the domain).
    let other = ProbeOut::healthy("WS10", 12).domain("fabrikam.com");
    let fs = diagnose_fleet(&[obs("ws10a", &a), obs("ws10f", &other)]);
    assert!(
        fs.iter().all(|f| f.diagnosis == Diagnosis::Healthy),
        "{fs:#?}"
    );
}

#[test]
fn sid_duplicates_are_advisory_on_healthy_channels() {
    let a = ProbeOut::healthy("WS20", 20);
    let b = ProbeOut::healthy("WS21", 20);
    let fs = diagnose_fleet(&[obs("ws20", &a), obs("ws21", &b)]);
    assert_eq!(
        fs[0].diagnosis,
        Diagnosis::SidDuplicate {
            twins: vec!["ws21".into()]
        }
    );
    assert_eq!(fs[0].diagnosis.name(), "sid_duplicate");
    assert_eq!(fs[0].diagnosis.state(), HostState::Healthy);
    assert_ev(&fs[0], "rebuild with sysprep; Windows 11 24H2/Server 2025 refuse NTLM/Kerberos between them (event 6167, KB5068222)");
    assert_ev(&fs[0], "needs a person");

    // A broken one keeps its own diagnosis; the shared SID is evidence.
    let c = ProbeOut::broken("WS22", 20, STATUS_5);
    let fs = diagnose_fleet(&[obs("ws20", &a), obs("ws22", &c)]);
    assert_eq!(fs[1].diagnosis, Diagnosis::StalePassword);
    assert_ev(
        &fs[1],
        "machine SID S-1-5-21-1004336348-1177238915-20 shared with ws20",
    );
}

#[test]
fn a_401_alone_is_never_a_broken_trust() {
    let mut o = HostObservation::new(
        "ws70",
        "10.0.0.70:5986",
        Access::Unauthorized {
            user: "contoso\\alice".into(),
        },
    );
    o.domain_logon = DomainLogon::Refused;
    let ok = {
        let mut h = obs("ws01", &ProbeOut::healthy("WS01", 1));
        h.domain_logon = DomainLogon::Accepted;
        h
    };
    let fs = diagnose_fleet(&[o.clone(), ok]);
    assert_eq!(
        fs[0].diagnosis,
        Diagnosis::Unauthorized {
            user: "contoso\\alice".into()
        }
    );
    assert_eq!(fs[0].diagnosis.name(), "unauthorized");
    assert_eq!(fs[0].diagnosis.state(), HostState::AccessProblem);
    assert_ev(&fs[0], "WinRM: contoso\\alice refused (HTTP 401)");
    assert_ev(
        &fs[0],
        "a 401 is not, on its own, evidence of a broken trust",
    );
    assert_ev(&fs[0], "logs on to 1 other host(s)");

    // DC-side evidence says more: the account is gone on every DC.
    o.dc_accounts = vec![missing(DC1), missing(DC2)];
    assert_eq!(one(o).diagnosis, Diagnosis::AccountDeleted);
}

#[test]
fn local_account_refused() {
    for access in [
        Access::Unauthorized {
            user: "ws50\\helpdesk".into(),
        },
        Access::AccessDenied {
            user: ".\\helpdesk".into(),
        },
    ] {
        let f = one(HostObservation::new("ws50", "10.0.0.50:5985", access));
        assert!(
            matches!(&f.diagnosis, Diagnosis::LocalAccountRefused { .. }),
            "{f:?}"
        );
        assert_eq!(f.diagnosis.name(), "local_account_refused");
        assert_ev(&f, "LocalAccountTokenFilterPolicy=1");
        assert_ev(&f, "pywinrm #188");
        assert_ev(&f, "pywinrm #338");
        assert_ev(
            &f,
            "built-in Administrator (RID 500), e.g. its LAPS password",
        );
    }
    // The built-in Administrator refused is not "a local account other than RID 500".
    let f = one(HostObservation::new(
        "ws51",
        "",
        Access::Unauthorized {
            user: "ws51\\Administrator".into(),
        },
    ));
    assert!(
        matches!(f.diagnosis, Diagnosis::Unauthorized { .. }),
        "{f:?}"
    );
    assert_ev(&f, "FilterAdministratorToken=1");
}

#[test]
fn access_denied_and_unreachable() {
    let f = one(HostObservation::new(
        "ws52",
        "",
        Access::AccessDenied {
            user: "contoso\\bob".into(),
        },
    ));
    assert_eq!(
        f.diagnosis,
        Diagnosis::AccessDenied {
            user: "contoso\\bob".into()
        }
    );
    assert_eq!(f.diagnosis.name(), "access_denied");
    let f = one(HostObservation::new(
        "ws80",
        "",
        Access::Unreachable {
            message: "connection refused".into(),
        },
    ));
    assert_eq!(f.diagnosis, Diagnosis::Unreachable);
    assert_eq!(f.diagnosis.state(), HostState::Unreachable);
    let f = one(HostObservation::new("ws81", "", Access::Timeout));
    assert_eq!(f.diagnosis.name(), "unreachable");
}

#[test]
fn unknown_when_nothing_tells() {
    let mut o = HostObservation::new(
        "ws92",
        "",
        Access::Connected {
            user: "ws92\\administrator".into(),
            local: true,
        },
    );
    o.error = Some("probe output not understood".into());
    let f = one(o);
    assert_eq!(f.diagnosis.name(), "unknown");
    let mut p = ProbeOut::healthy("WS93", 93);
    p.sc_verify = fixture("nltest_sc_query_netlogon_stopped_1722.txt");
    let f = one(obs("ws93", &p));
    assert_eq!(f.diagnosis.name(), "unknown");
    assert_ev(&f, "Netlogon is not answering");
}

#[test]
fn pdcs_are_voted_per_domain() {
    let a = ProbeOut::healthy("WS01", 1);
    let mut b = ProbeOut::healthy("WS02", 2);
    b.dsgetdc_pdc = fixture("nltest_dsgetdc_ok.txt"); // NetBIOS DC1, same vote as dc1.…
    let mut c = ProbeOut::healthy("WS03", 3).domain("fabrikam.com");
    c.dsgetdc_pdc = dsgetdc("dc09.fabrikam.com", true);
    let mut d = ProbeOut::healthy("WS04", 4);
    d.dsgetdc_pdc = dsgetdc(DC2, false); // no PDC flag: no vote
    d.dsgetdc = dsgetdc(DC2, false);
    let pdcs = fleet_pdcs(&[
        obs("ws01", &a),
        obs("ws02", &b),
        obs("ws03", &c),
        obs("ws04", &d),
    ]);
    assert_eq!(pdcs.get(DOMAIN).map(String::as_str), Some(DC1));
    assert_eq!(
        pdcs.get("fabrikam.com").map(String::as_str),
        Some("dc09.fabrikam.com")
    );
    assert_eq!(pdcs.len(), 2);
}

#[test]
fn names_are_a_stable_contract() {
    let names: Vec<&str> = [
        Diagnosis::Healthy,
        Diagnosis::DomainController { role: 4 },
        Diagnosis::NotDomainJoined,
        Diagnosis::StalePassword,
        Diagnosis::StaleDc {
            newest: vec![],
            bound: String::new(),
        },
        Diagnosis::AccountDisabled,
        Diagnosis::AccountDeleted,
        Diagnosis::AccountDisabledOrMissing,
        Diagnosis::NoDcLocator,
        Diagnosis::DcUnreachable { dc: None },
        Diagnosis::NameTwin { twins: vec![] },
        Diagnosis::SidDuplicate { twins: vec![] },
        Diagnosis::LocalAccountRefused {
            user: String::new(),
        },
        Diagnosis::AccessDenied {
            user: String::new(),
        },
        Diagnosis::Unauthorized {
            user: String::new(),
        },
        Diagnosis::Unreachable,
        Diagnosis::TrustBroken {
            detail: String::new(),
        },
        Diagnosis::Unknown {
            detail: String::new(),
        },
    ]
    .iter()
    .map(|d| {
        let v = serde_json::to_value(d).unwrap();
        assert_eq!(v["kind"], d.name());
        d.name()
    })
    .collect();
    assert_eq!(names.len(), 18);
}

#[test]
fn summary_counts_states() {
    let fs = diagnose_fleet(&[
        obs("ws01", &ProbeOut::healthy("WS01", 1)),
        obs("ws02", &ProbeOut::broken("WS02", 2, STATUS_5)),
        HostObservation::new("ws80", "", Access::Timeout),
    ]);
    let s = summarize(&fs);
    assert_eq!(
        (s.healthy, s.broken, s.unreachable, s.total()),
        (1, 1, 1, 3)
    );
}
