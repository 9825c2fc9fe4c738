//! Parsers against every real Windows output in testdata/windows-output, with LF, CRLF and
//! nltest's trailing spaces; the probe's own format; `/dclist` in both forms.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use playbooks::probe::status;
use playbooks::*;

/// Every variant of a text the parsers must read the same: as stored (LF), CRLF, and with
/// the trailing spaces real nltest prints.
fn variants(text: &str) -> Vec<String> {
    let spaced: String = text.lines().map(|l| format!("{l} \n")).collect();
    vec![text.to_string(), crlf(text), crlf(&spaced)]
}

fn code(s: &Option<NltestStatus>) -> Option<u32> {
    s.as_ref().map(|s| s.code)
}

#[derive(Debug)]
struct Expect {
    trusted_dc: Option<&'static str>,
    connection: Option<u32>,
    verification: Option<u32>,
    failure: Option<u32>,
    success: bool,
}

const fn nl(
    trusted_dc: Option<&'static str>,
    connection: Option<u32>,
    verification: Option<u32>,
    failure: Option<u32>,
    success: bool,
) -> Expect {
    Expect {
        trusted_dc,
        connection,
        verification,
        failure,
        success,
    }
}

#[test]
fn every_real_output_is_understood() {
    let nltest: &[(&str, Expect)] = &[
        (
            "nltest_parentdomain_failed_1722.txt",
            nl(None, None, None, Some(1722), false),
        ),
        (
            "nltest_query_no_logon_servers_1311.txt",
            nl(None, Some(1311), None, None, false),
        ),
        (
            "nltest_query_no_trust_lsa_secret_1786.txt",
            nl(None, Some(1786), None, None, false),
        ),
        (
            "nltest_query_no_trust_sam_account_1787.txt",
            nl(None, Some(1787), None, None, false),
        ),
        ("nltest_query_ok.txt", nl(None, Some(0), None, None, true)),
        (
            "nltest_query_rpc_unavailable_1722.txt",
            nl(None, None, None, Some(1722), false),
        ),
        (
            "nltest_sc_query_broken_password_access_denied_5.txt",
            nl(None, Some(5), None, None, false),
        ),
        (
            "nltest_sc_query_netlogon_stopped_1722.txt",
            nl(None, None, None, Some(1722), false),
        ),
        (
            "nltest_sc_reset_ok.txt",
            nl(Some("dc10.domain.example"), Some(0), None, None, true),
        ),
        (
            "nltest_sc_verify_broken_1787.txt",
            nl(None, Some(1787), Some(1787), None, false),
        ),
        (
            "nltest_sc_verify_no_logon_servers_1311_UNVERIFIED.txt",
            nl(None, Some(1311), Some(1311), None, false),
        ),
        (
            "nltest_sc_verify_not_elevated_access_denied_5_UNVERIFIED.txt",
            nl(None, None, None, Some(5), false),
        ),
        (
            "nltest_sc_verify_ok.txt",
            nl(Some("dc01.contoso.com"), Some(0), Some(0), None, true),
        ),
    ];
    let tcsc: &[(&str, bool)] = &[
        ("test_computersecurechannel_verbose_broken.txt", false),
        ("test_computersecurechannel_verbose_ok.txt", true),
        (
            "test_computersecurechannel_verbose_ok_DOCS_EXAMPLE.txt",
            true,
        ),
    ];

    // Every stored file is covered here, so a new capture cannot go untested.
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut covered: Vec<String> = nltest
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(tcsc.iter().map(|(n, _)| n.to_string()))
        .collect();
    covered.sort();
    assert_eq!(on_disk, covered);

    for (name, want) in nltest {
        for text in variants(&fixture(name)) {
            let got = parse_nltest(&text);
            assert_eq!(got.trusted_dc.as_deref(), want.trusted_dc, "{name}");
            assert_eq!(code(&got.connection_status), want.connection, "{name}");
            assert_eq!(code(&got.verification_status), want.verification, "{name}");
            assert_eq!(
                got.failure.as_ref().map(|f| f.status.code),
                want.failure,
                "{name}"
            );
            assert_eq!(got.is_success(), want.success, "{name}");
        }
    }
    for (name, want) in tcsc {
        for text in variants(&fixture(name)) {
            assert_eq!(parse_tcsc_output(&text), Some(*want), "{name}");
        }
    }
}

#[test]
fn status_names_are_kept_but_not_relied_on() {
    let v = parse_nltest(&fixture("nltest_sc_verify_broken_1787.txt"));
    let s = v.verification_status.unwrap();
    assert_eq!(s.name, "ERROR_NO_TRUST_SAM_ACCOUNT");
    assert_eq!(s.to_string(), "1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT");
    // A translated nltest: labels differ, statuses are told apart by order.
    let de = "Flags: 0\nVertrauenswürdiger DC-Name \\\\dc1.lab.test\nVerbindungsstatus des vertrauenswürdigen DC Status = 5 0x5 ERROR_ACCESS_DENIED\nStatus der Vertrauensüberprüfung Status = 5 0x5 ERROR_ACCESS_DENIED\nDer Befehl wurde erfolgreich ausgeführt.\n";
    let v = parse_nltest(de);
    assert_eq!(code(&v.connection_status), Some(5));
    assert_eq!(code(&v.verification_status), Some(5));
    assert_eq!(v.trusted_dc.as_deref(), Some("dc1.lab.test"));
    // "completed successfully" with a broken channel is still broken.
    assert!(!parse_nltest(&fixture("nltest_sc_verify_broken_1787.txt")).is_success());
}

#[test]
fn nltest_failure_wrapped_by_powershell_2_to_1() {
    // `$nl = nltest.exe ... 2>&1` turns stderr into ErrorRecords, printed in error view.
    let text = "nltest.exe : I_NetLogonControl failed: Status = 5 0x5 ERROR_ACCESS_DENIED\n\
                At line:13 char:7\n\
                + $nl = nltest.exe \"/sc_verify:$domain\" 2>&1\n\
                +       ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n    \
                + CategoryInfo          : NotSpecified: (I_NetLogonContr...ACCESS_DENIED :String) [], RemoteException\n    \
                + FullyQualifiedErrorId : NativeCommandError\n";
    let v = parse_nltest(text);
    assert_eq!(
        v.failure.as_ref().unwrap().status.code,
        status::ACCESS_DENIED
    );
    assert!(v.channel_status().is_none());
    let d = parse_dclist(text);
    assert!(d.dcs.is_empty(), "{d:?}");
}

#[test]
fn dclist_both_forms() {
    for text in variants(&dclist(&[DC1, DC2])) {
        let d = parse_dclist(&text);
        assert_eq!(d.source_dc.as_deref(), Some(DC1));
        assert_eq!(d.dcs.len(), 2);
        assert_eq!(d.dcs[0].name, DC1);
        assert!(d.dcs[0].pdc);
        assert!(!d.dcs[1].pdc);
        assert_eq!(d.dcs[1].site.as_deref(), Some("Default-First-Site-Name"));
        assert_eq!(d.pdc().unwrap().name, DC1);
        assert!(d.failure.is_none());
    }
    let fallback = "You don't have access to DsBind to lab.test (\\\\dc1.lab.test) (Trying NetServerEnum).\nList of DCs in Domain lab.test\n    \\\\DC1 (PDC)\n    \\\\DC2\nThe command completed successfully\n";
    let d = parse_dclist(&crlf(fallback));
    assert_eq!(d.source_dc.as_deref(), Some("dc1.lab.test"));
    assert_eq!(
        d.dcs
            .iter()
            .map(|e| (e.name.as_str(), e.pdc))
            .collect::<Vec<_>>(),
        vec![("DC1", true), ("DC2", false)]
    );
    let failed = parse_dclist("Cannot find DC to get DC list from.Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\nThe command completed successfully\n");
    assert_eq!(failed.failure.unwrap().code, status::NO_SUCH_DOMAIN);
    assert!(failed.dcs.is_empty());
}

#[test]
fn probe_parses_in_lf_and_crlf() {
    for crlf in [false, true] {
        let p = ProbeOut::healthy("WS01", 11)
            .dcs(&[DC1, DC2])
            .crlf(crlf)
            .probe();
        assert_eq!(p.computer_name, "WS01");
        assert_eq!(p.domain, DOMAIN);
        assert_eq!(p.part_of_domain, Some(true));
        assert_eq!(p.user, "WS01\\administrator");
        assert!(p.user_is_local());
        assert_eq!(
            p.admin_sid.as_deref(),
            Some("S-1-5-21-1004336348-1177238915-11-500")
        );
        assert_eq!(
            p.machine_sid.as_deref(),
            Some("S-1-5-21-1004336348-1177238915-11")
        );
        assert_eq!(p.tcsc, Some(true));
        assert_eq!(p.tcsc_error, None);
        assert_eq!(p.nltest_exit, Some(0));
        assert_eq!(p.sc_verify.trusted_dc.as_deref(), Some(DC1));
        assert_eq!(p.channel_ok(), Some(true));
        assert_eq!(p.dc_names(), vec![DC1.to_string(), DC2.to_string()]);
        assert_eq!(p.pdc(), Some(DC1));
    }
}

#[test]
fn probe_of_broken_and_unelevated_hosts() {
    let p = ProbeOut::broken("WS02", 12, "nltest_sc_verify_broken_1787.txt")
        .crlf(true)
        .probe();
    assert_eq!(p.channel_ok(), Some(false));
    assert_eq!(
        p.sc_verify.channel_status().unwrap().code,
        status::NO_TRUST_SAM_ACCOUNT
    );

    // nltest refused (not elevated): Test-ComputerSecureChannel decides.
    let mut o = ProbeOut::healthy("WS03", 13);
    o.nltest = fixture("nltest_sc_verify_not_elevated_access_denied_5_UNVERIFIED.txt");
    o.nltest_exit = 1;
    let p = o.probe();
    assert_eq!(p.channel_ok(), Some(true));
    o.tcsc = String::new();
    o.tcsc_error = "Access is denied".into();
    let p = o.probe();
    assert_eq!(p.channel_ok(), None);
    assert_eq!(p.tcsc_error.as_deref(), Some("Access is denied"));
}

#[test]
fn probe_domain_user_and_multiline_error() {
    let mut o = ProbeOut::healthy("WS04", 14);
    o.user = "contoso\\alice".into();
    o.tcsc = String::new();
    o.tcsc_error = "Cannot verify the secure channel\nsecond line".into();
    let p = o.crlf(true).probe();
    assert!(!p.user_is_local());
    assert_eq!(p.tcsc, None);
    assert_eq!(
        p.tcsc_error.as_deref(),
        Some("Cannot verify the secure channel second line")
    );
}

#[test]
fn probe_errors() {
    let e = parse_probe(&CommandOutput {
        stdout: String::new(),
        stderr: "powershell.exe is not recognized".into(),
        exit_code: 1,
    })
    .unwrap_err();
    assert!(
        matches!(e, ProbeError::NoOutput { exit_code: 1, .. }),
        "{e:?}"
    );
    let e = parse_probe(&CommandOutput::ok("ts.domain=x\r\n")).unwrap_err();
    assert_eq!(e, ProbeError::Missing("name".into()));
}

#[test]
fn machine_sid_needs_a_rid_500_domain_style_sid() {
    assert_eq!(
        probe::machine_sid("S-1-5-21-1-2-3-500").as_deref(),
        Some("S-1-5-21-1-2-3")
    );
    assert_eq!(probe::machine_sid("S-1-5-21-1-2-3-501"), None);
    assert_eq!(probe::machine_sid("S-1-5-32-500"), None);
    assert_eq!(probe::machine_sid(""), None);
}

#[test]
fn per_dc_test_output() {
    let t = parse_dc_test(
        DC1,
        &CommandOutput::ok("ts.tcsc=True\r\nts.tcsc_error=\r\n"),
    );
    assert_eq!(
        t,
        DcTest {
            dc: DC1.into(),
            ok: Some(true),
            error: None
        }
    );
    let t = parse_dc_test(DC2, &CommandOutput::ok("ts.tcsc=False\nts.tcsc_error=\n"));
    assert_eq!(t.ok, Some(false));
    let t = parse_dc_test(DC2, &CommandOutput::ok("ts.tcsc=\nts.tcsc_error=Cannot verify the secure channel password for the local computer with the domain.\n"));
    assert_eq!(t.ok, None);
    assert!(t.error.unwrap().starts_with("Cannot verify"));
    let t = parse_dc_test(
        DC2,
        &CommandOutput {
            stdout: String::new(),
            stderr: "boom".into(),
            exit_code: 1,
        },
    );
    assert_eq!(t.ok, None);
    assert_eq!(t.error.as_deref(), Some("boom"));
    // Bare cmdlet output (no markers) still counts.
    let t = parse_dc_test(
        DC1,
        &CommandOutput::ok(fixture("test_computersecurechannel_verbose_broken.txt")),
    );
    assert_eq!(t.ok, Some(false));
}
