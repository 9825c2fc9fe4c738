//! Parsers against every real Windows output in testdata/windows-output, with LF,
//! CRLF and nltest's trailing spaces; the probe's own format; `/dsgetdc` (DC locator and
//! PDC), `/dclist` in both forms; `probe_host` through the scripted fake; and randomized
//! inputs that the parsers must survive without panicking.

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
            "nltest_sc_query_no_logon_servers_1311_FRAGMENT.txt",
            nl(None, Some(1311), None, None, false),
        ),
        (
            "nltest_sc_query_ok.txt",
            nl(Some("jzfzdc5.jzfz.local"), Some(0), None, None, true),
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
    // The cmdlet's errors print no boolean.
    let tcsc_errors = [
        "test_computersecurechannel_not_in_domain.txt",
        "test_computersecurechannel_verbose_on_dc_1355.txt",
    ];
    // (file, DC, address, is PDC, failure)
    type Locator = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        bool,
        Option<u32>,
    );
    let dsgetdc: &[Locator] = &[
        (
            "nltest_dsgetdc_ok.txt",
            Some("DC1"),
            Some("192.168.0.1"),
            true,
            None,
        ),
        (
            "nltest_dsgetdc_ok_ds10_keylist.txt",
            Some("DC"),
            Some("198.18.0.7"),
            true,
            None,
        ),
        (
            "nltest_dsgetdc_failed_no_such_domain_1355.txt",
            None,
            None,
            false,
            Some(1355),
        ),
    ];
    // (file, DCs listed, PDC)
    let dclists: &[(&str, usize, Option<&str>)] = &[
        (
            "nltest_dclist_dsbind_denied_netserverenum_failed_6118_zh-CN.txt",
            0,
            None,
        ),
        (
            "nltest_dclist_dsbind_denied_netserverenum_ok.txt",
            1,
            Some("TARVALON"),
        ),
        (
            "nltest_dclist_ok_DOCS_EXAMPLE.txt",
            9,
            Some("fourthcoffee-dc-63.forthcoffee.com"),
        ),
        ("nltest_dclist_ok_multi.txt", 3, Some("DC2008R2.offsec.nl")),
        (
            "nltest_dclist_ok_single.txt",
            1,
            Some("winterfell.north.sevenkingdoms.local"),
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
        .chain(tcsc_errors.iter().map(|n| n.to_string()))
        .chain(dsgetdc.iter().map(|(n, ..)| n.to_string()))
        .chain(dclists.iter().map(|(n, ..)| n.to_string()))
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
    for name in tcsc_errors {
        assert_eq!(parse_tcsc_output(&fixture(name)), None, "{name}");
    }
    for (name, dc, address, pdc, failure) in dsgetdc {
        for text in variants(&fixture(name)) {
            let l = parse_dsgetdc(&text);
            assert_eq!(l.dc.as_deref(), *dc, "{name}");
            assert_eq!(l.address.as_deref(), *address, "{name}");
            assert_eq!(l.is_pdc, *pdc, "{name}");
            assert_eq!(l.failure.as_ref().map(|f| f.code), *failure, "{name}");
            assert_eq!(l.found(), failure.is_none(), "{name}");
        }
    }
    for (name, n, pdc) in dclists {
        for text in variants(&fixture(name)) {
            let d = parse_dclist(&text);
            assert_eq!(d.dcs.len(), *n, "{name}: {d:?}");
            assert_eq!(d.pdc().map(|e| e.name.as_str()), *pdc, "{name}");
        }
    }
}

#[test]
fn dsgetdc_flags_are_read_by_shape_not_label() {
    let l = parse_dsgetdc(&fixture("nltest_dsgetdc_ok.txt"));
    assert_eq!(l.flags.first().map(String::as_str), Some("PDC"));
    assert!(l.flags.contains(&"WRITABLE".to_string()));
    assert!(!l.flags.iter().any(|f| f.starts_with("0x")));
    let l = parse_dsgetdc(&fixture("nltest_dsgetdc_ok_ds10_keylist.txt"));
    assert!(l.flags.contains(&"KEYLIST".to_string()), "{l:?}");
    // Translated labels (German), an FQDN, no PDC flag; `Dom Name: CONTOSO` is no flags line.
    let de = "           DC: \\\\dc2.lab.test\n      Adresse: \\\\10.0.0.2\n    Dom.-Name: CONTOSO\n   Kennzeichen: GC DS LDAP KDC WRITABLE 0x1F\nDer Befehl wurde erfolgreich ausgeführt.\n";
    let l = parse_dsgetdc(de);
    assert_eq!(l.dc.as_deref(), Some("dc2.lab.test"));
    assert_eq!(l.address.as_deref(), Some("10.0.0.2"));
    assert!(!l.is_pdc);
    assert_eq!(l.flags, vec!["GC", "DS", "LDAP", "KDC", "WRITABLE"]);
    // nltest's failure wrapped by PowerShell's 2>&1.
    let l = parse_dsgetdc("nltest.exe : Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\n    + CategoryInfo          : NotSpecified: (Getting DC name...NO_SUCH_DOMAIN:String) [], RemoteException\n");
    assert_eq!(l.failure.map(|f| f.code), Some(status::NO_SUCH_DOMAIN));
    assert_eq!(l.dc, None);
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
        let p = ProbeOut::healthy("WS01", 11).crlf(crlf).probe();
        assert_eq!(p.computer_name, "WS01");
        assert_eq!(p.domain, DOMAIN);
        assert_eq!(p.part_of_domain, Some(true));
        assert_eq!(p.domain_role, Some(1));
        assert!(p.is_member());
        assert_eq!(p.user, "WS01\\administrator");
        assert!(p.user_is_local());
        assert_eq!(
            p.machine_sid.as_deref(),
            Some("S-1-5-21-1004336348-1177238915-11")
        );
        assert_eq!(p.tcsc, Some(true));
        assert_eq!(p.tcsc_error, None);
        assert_eq!(p.sc_query_exit, Some(0));
        assert_eq!(p.sc_verify_exit, Some(0));
        assert_eq!(p.stored_status().map(|s| s.code), Some(0));
        assert_eq!(p.sc_query.verification_status, None);
        assert_eq!(p.live_status().map(|s| s.code), Some(0));
        assert_eq!(p.trusted_dc(), Some(DC1));
        assert_eq!(p.channel_ok(), Some(true));
        assert_eq!(p.dsgetdc.dc.as_deref(), Some(DC1));
        assert_eq!(p.dsgetdc.address.as_deref(), Some("192.168.0.1"));
        assert_eq!(p.pdc(), Some(DC1));
        let ev = p.evidence();
        assert!(
            ev.iter()
                .any(|e| e == "stored status (last use): Test-ComputerSecureChannel True"),
            "{ev:?}"
        );
        assert!(
            ev.iter().any(|e| e
                .starts_with("stored status (last use): nltest /sc_query: connection Status = 0")),
            "{ev:?}"
        );
        assert!(
            ev.iter()
                .any(|e| e.starts_with("live test: nltest /sc_verify: verification Status = 0")),
            "{ev:?}"
        );
    }
}

#[test]
fn probe_of_broken_unelevated_dc_and_workgroup_hosts() {
    let p = ProbeOut::broken("WS02", 12, "nltest_sc_verify_broken_1787.txt")
        .crlf(true)
        .probe();
    assert_eq!(p.channel_ok(), Some(false));
    assert_eq!(p.live_status().unwrap().code, status::NO_TRUST_SAM_ACCOUNT);

    // The stored status says fine, the live test says broken: the live one counts.
    let mut o = ProbeOut::broken("WS05", 15, "nltest_sc_verify_broken_1787.txt");
    o.sc_query = fixture("nltest_sc_query_ok.txt");
    o.tcsc = "True".into();
    let p = o.probe();
    assert_eq!(p.stored_ok(), Some(true));
    assert_eq!(p.channel_ok(), Some(false));

    // nltest refused (not elevated): no live status, and it is not a refused password.
    let mut o = ProbeOut::healthy("WS03", 13);
    o.sc_verify = fixture("nltest_sc_verify_not_elevated_access_denied_5_UNVERIFIED.txt");
    o.sc_verify_exit = 1;
    let p = o.probe();
    assert_eq!(p.channel_ok(), None);
    assert!(
        p.evidence().iter().any(|e| e.contains("not elevated")),
        "{:?}",
        p.evidence()
    );

    // A DC: the script skips the channel section.
    let p = ProbeOut::healthy("DC01", 14).role(5).probe();
    assert!(p.is_domain_controller());
    assert!(!p.is_member());
    assert_eq!(p.tcsc, None);
    assert_eq!(p.channel_ok(), None);
    assert!(p.evidence().is_empty());

    let p = ProbeOut::healthy("WS90", 90).workgroup().probe();
    assert_eq!(p.part_of_domain, Some(false));
    assert!(!p.is_member());
    assert_eq!(p.pdc(), None);
}

#[test]
fn probe_host_runs_the_one_script_and_reports_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut fake = FakeRemote::new(vec![Step::Ps(
        "nltest.exe \"/dsgetdc:$domain\" /pdc",
        Ok(ProbeOut::healthy("WS01", 1).output()),
    )]);
    let p = rt.block_on(probe_host(&mut fake)).unwrap();
    assert_eq!(p.pdc(), Some(DC1));
    fake.assert_done();
    assert_eq!(fake.calls.len(), 1, "one PowerShell start, no per-DC tests");
    assert_eq!(fake.calls[0].text, scripts::PROBE);
    assert!(!scripts::PROBE.contains("-Server"));
    assert!(!scripts::PROBE.contains("/dclist"));
    // Stored status before the live test.
    let q = scripts::PROBE.find("/sc_query").unwrap();
    let v = scripts::PROBE.find("/sc_verify").unwrap();
    assert!(scripts::PROBE.find("Test-ComputerSecureChannel").unwrap() < v && q < v);

    let mut fake = FakeRemote::new(vec![Step::Ps(
        "ts.name",
        Err(RemoteError::new(RemoteErrorKind::Unauthorized, "401")),
    )]);
    let e = rt.block_on(probe_host(&mut fake)).unwrap_err();
    let ProbeRunError::Remote(re) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        Access::from_remote_error(re, "contoso\\alice"),
        Access::Unauthorized {
            user: "contoso\\alice".into()
        }
    );
    let mut fake = FakeRemote::new(vec![Step::Ps("ts.name", Ok(CommandOutput::ok("")))]);
    let e = rt.block_on(probe_host(&mut fake)).unwrap_err();
    assert!(
        matches!(e, ProbeRunError::Output(ProbeError::NoOutput { .. })),
        "{e:?}"
    );
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

/// A tiny deterministic generator (xorshift) so the fuzz-style test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random texts made of the pieces the parsers key on (statuses, `\\`, `=`, `0x`, flag
/// words, section markers, multi-byte characters) never make a parser panic.
#[test]
fn parsers_never_panic_on_any_input() {
    const PIECES: &[&str] = &[
        "Status = ",
        "5",
        "1311",
        "0x",
        "0x54b",
        "ffffffff",
        "99999999999",
        " ",
        "\n",
        "\r\n",
        "\\\\",
        "\\",
        "=",
        ":",
        "Flags:",
        "PDC",
        "GC",
        "DC: ",
        "Trusted DC Name ",
        "Connection",
        "Verification",
        "failed",
        "I_NetLogonControl",
        "ts.",
        "name=",
        "tcsc=",
        "tcsc_error=",
        "domain_role=",
        "--- sc_query",
        "--- sc_verify",
        "--- dsgetdc",
        "--- dsgetdc_pdc",
        "--- end",
        "ä",
        "获得",
        "\u{0}",
        "[PDC]",
        "(PDC)",
        "-500",
        "S-1-5-21-",
        "True",
        "False",
        "    ",
        ".",
        "-",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..4000 {
        let n = (rng.next() % 40) as usize;
        let text: String = (0..n)
            .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
            .collect();
        let _ = parse_nltest(&text);
        let _ = parse_dsgetdc(&text);
        let _ = parse_dclist(&text);
        let _ = parse_tcsc_output(&text);
        let _ = probe::machine_sid(&text);
        if let Ok(p) = parse_probe(&CommandOutput::ok(text.clone())) {
            let _ = (p.evidence(), p.channel_ok(), p.stored_ok(), p.pdc());
            let o = HostObservation::connected("h", "h\\x", true, p);
            let _ = diagnose_fleet(&[o.clone(), o]);
        }
    }
}

#[test]
fn netlogon_events_are_read_from_their_insertion_strings() {
    use playbooks::NetlogonEvent;
    // 3210's DC may come first or second (the order is not verified): the UNC one is the DC.
    for line in [
        "3210|134064288000000000|\\\\dc2.lab.test|LAB",
        "3210|134064288000000000|LAB|\\\\dc2.lab.test",
    ] {
        let e = NetlogonEvent::parse(line).unwrap();
        assert_eq!(
            (e.id, e.dc.as_deref(), e.domain.as_deref()),
            (3210, Some("dc2.lab.test"), Some("LAB")),
            "{line}"
        );
        assert_eq!(e.evidence(), "NETLOGON 3210 at 2025-11-01 00:00:00 UTC: could not authenticate with dc2.lab.test (domain LAB)");
    }
    // 5719 as the rendered capture carries it: the domain, then %%1311.
    let e = NetlogonEvent::parse("5719|134064288000000000|WINDOMAIN|%%1311").unwrap();
    assert_eq!(
        (e.domain.as_deref(), e.status),
        (Some("WINDOMAIN"), Some(1311))
    );
    assert!(e.evidence().contains("status 1311"));
    for junk in [
        "",
        "3210",
        "x|y|z",
        "4624|1|a|b",
        "3210|notanumber|a|b",
        "5719|1|\u{0}|%%x",
    ] {
        let parsed = NetlogonEvent::parse(junk);
        assert!(
            parsed.is_none() || parsed.is_some_and(|e| e.domain.is_none()),
            "{junk:?}"
        );
    }
    let probe = playbooks::parse_probe(&playbooks::CommandOutput::ok(
        "ts.name=WS1\nts.domain=lab.test\nts.part_of_domain=True\nts.domain_role=1\nts.event=3210|134064288000000000|\\\\dc2.lab.test|LAB\nts.event=5719|134064288000000000|LAB|%%1311\n",
    ))
    .unwrap();
    assert_eq!(probe.events.len(), 2);
    assert!(
        probe
            .evidence()
            .iter()
            .any(|l| l.starts_with("NETLOGON 3210 at ")),
        "{:?}",
        probe.evidence()
    );
}
