//! `winrm::soap` against real captures (`testdata/winrm`, see `testdata/SOURCES.md`): every
//! message parses to the values it holds, pywinrm's and pypsrp's requests parse on the
//! server side, our builders round-trip, our faults and responses match Windows' bytes
//! (apart from the fresh MessageID), and no input — random, truncated, mutated — panics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use winrm::soap::{
    self, action, build_fault, build_request, build_response, build_response_for, parse_fault,
    parse_request, parse_response, signal, CommandState, FaultKind, ReceiveOutput, Request,
    RequestContext, Response, ShellInfo, ShellOptions, SoapError, StreamChunk, WsmanFault,
};

// ---------------------------------------------------------------- helpers

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/winrm")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn response(name: &str) -> Response {
    parse_response(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn received(name: &str) -> ReceiveOutput {
    match response(name) {
        Response::Received(r) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn stream(out: &ReceiveOutput, name: &str) -> Vec<u8> {
    out.chunks
        .iter()
        .filter(|c| c.stream == name)
        .flat_map(|c| c.data.clone())
        .collect()
}

fn fault_of(bytes: &[u8]) -> WsmanFault {
    match parse_response(bytes) {
        Err(SoapError::Fault(f)) => *f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

fn request(name: &str) -> soap::ParsedRequest {
    parse_request(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// All XML files directly in testdata/winrm.
fn capture_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

/// Every XML file of every pypsrp exchange.
fn exchange_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(dir().join("exchanges/pypsrp")).unwrap() {
        let d = d.unwrap().path();
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "xml") {
                v.push(f);
            }
        }
    }
    v.sort();
    v
}

/// Blanks `a:MessageID` and drops `p:ActivityId`, the parts of a Windows message that
/// differ per message.
fn normalise_ids(xml: &str) -> String {
    let mut s = xml.trim().to_string();
    for (open, close, keep) in [
        ("<a:MessageID>", "</a:MessageID>", true),
        ("<p:ActivityId>", "</p:ActivityId>", false),
    ] {
        if let Some(start) = s.find(open) {
            let end = s[start..].find(close).unwrap() + start + close.len();
            let replacement = if keep {
                format!("{open}X{close}")
            } else {
                String::new()
            };
            s.replace_range(start..end, &replacement);
        }
    }
    s
}

const SHELL_STD: &str = "4283CBDC-3706-415B-88BD-B385F3E51A53";
const CMD_STD: &str = "CF84C20A-0A35-43FA-AF78-0B4711DA5F30";

// ---------------------------------------------------------------- responses

#[test]
fn create_responses_give_the_shell_id() {
    for (file, id) in [
        ("create_shell_response.xml", SHELL_STD),
        (
            "create_shell_response_with_options.xml",
            "CBA3E536-A3A2-4B88-9ED3-4919930E15C2",
        ),
        (
            "pywinrm_create_shell_response.xml",
            "11111111-1111-1111-1111-111111111113",
        ),
        (
            "masterzen_create_shell_response.xml",
            "67A74734-DD32-4F10-89DE-49A060483810",
        ),
        // Old WinRM: the selector carries a uuid: prefix; echo it back as is.
        (
            "winrb_create_shell_response_v1.xml",
            "uuid:739990FF-1492-4CDD-80BB-6E07ADB06D85",
        ),
        (
            "winrb_create_shell_response_v2.xml",
            "62DE33F0-8674-43D9-B6A5-3298012CC4CD",
        ),
        // OMI: whitespace inside every text node.
        (
            "winrb_omi_create_shell_response.xml",
            "74142DC5-E14D-4FCC-86ED-63DA3EE8407E",
        ),
    ] {
        assert_eq!(
            response(file),
            Response::Created {
                shell_id: id.to_string()
            },
            "{file}"
        );
    }
}

#[test]
fn shell_id_falls_back_to_rsp_shell() {
    let xml = String::from_utf8(fixture("create_shell_response.xml")).unwrap();
    let start = xml.find("<w:SelectorSet>").unwrap();
    let end = xml.find("</w:SelectorSet>").unwrap() + "</w:SelectorSet>".len();
    let without_selector = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(
        parse_response(without_selector.as_bytes()).unwrap(),
        Response::Created {
            shell_id: SHELL_STD.into()
        }
    );
}

#[test]
fn command_responses_give_the_command_id() {
    for (file, id) in [
        ("command_response.xml", CMD_STD),
        (
            "masterzen_command_response.xml",
            "1A6DEE6B-EC68-4DD6-87E9-030C0048ECC4",
        ),
        (
            "pywinrm_command_response.xml",
            "11111111-1111-1111-1111-111111111111",
        ),
    ] {
        assert_eq!(
            response(file),
            Response::CommandStarted {
                command_id: id.to_string()
            },
            "{file}"
        );
    }
}

#[test]
fn receive_done_hi() {
    let r = received("receive_response_done.xml");
    assert_eq!(stream(&r, "stdout"), b"hi\r\n");
    assert_eq!(stream(&r, "stderr"), b"");
    assert_eq!(
        r.state,
        Some(CommandState {
            command_id: CMD_STD.into(),
            done: true,
            exit_code: Some(0)
        })
    );
    let ends: Vec<&str> = r
        .chunks
        .iter()
        .filter(|c| c.end)
        .map(|c| c.stream.as_str())
        .collect();
    assert_eq!(ends, ["stdout", "stderr"]);
    assert!(r
        .chunks
        .iter()
        .all(|c| c.command_id.as_deref() == Some(CMD_STD)));
}

#[test]
fn receive_stderr_and_exit_1() {
    let r = received("receive_response_done_stderr_exit_1.xml");
    assert_eq!(stream(&r, "stdout"), b"out \r\n");
    assert_eq!(stream(&r, "stderr"), b"err \r\n");
    assert_eq!(r.state.as_ref().unwrap().exit_code, Some(1));
    assert!(r.state.unwrap().done);
}

#[test]
fn receive_utf8_japanese() {
    let r = received("receive_response_done_utf8.xml");
    assert_eq!(
        String::from_utf8(stream(&r, "stdout")).unwrap(),
        "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\n"
    );
    assert_eq!(r.state.unwrap().exit_code, Some(0));
}

#[test]
fn receive_running_then_done() {
    let r = received("receive_response_running.xml");
    assert_eq!(stream(&r, "stdout"), b"hi\n");
    let s = r.state.unwrap();
    assert!(!s.done);
    assert_eq!(s.exit_code, None);
    assert_eq!(s.command_id, "D644AE56-61E5-4C1A-A135-E599B76B3035");

    let r = received("receive_response_done_after_timeouts.xml");
    assert_eq!(stream(&r, "stdout"), b"hi again\n");
    assert!(r.state.unwrap().done);
}

#[test]
fn receive_masterzen() {
    let r = received("masterzen_receive_response_done_exit_123.xml");
    assert!(r.chunks.is_empty());
    assert_eq!(
        r.state,
        Some(CommandState {
            command_id: "4531DAA3-60C2-4CAD-9FCA-F433101DAC8A".into(),
            done: true,
            exit_code: Some(123)
        })
    );
    let r = received("masterzen_receive_response_running_stdout_stderr.xml");
    assert_eq!(stream(&r, "stdout"), b"That's all folks!!!");
    assert_eq!(stream(&r, "stderr"), b"This is stderr, I'm pretty sure!");
    assert!(!r.state.unwrap().done);
}

#[test]
fn receive_pywinrm_captures() {
    let r = received("pywinrm_receive_response_ipconfig_done.xml");
    let out = String::from_utf8(stream(&r, "stdout")).unwrap();
    assert!(
        out.starts_with("\r\nWindows IP Configuration\r\n\r\n"),
        "{out:?}"
    );
    assert!(out.contains("Host Name . . . . . . . . . . . . : WINDOWS-HOST"));
    assert_eq!(r.state.unwrap().exit_code, Some(0));

    let r = received("pywinrm_receive_response_cmd_stdin_echo_done.xml");
    let out = String::from_utf8(stream(&r, "stdout")).unwrap();
    assert!(out.starts_with("Microsoft Windows [Version 10.0.17763.107]"));
    assert!(out.ends_with("hello world \r\n"));

    let r = received("pywinrm_receive_response_ps_clixml_stderr_exit_1.xml");
    let err = String::from_utf8(stream(&r, "stderr")).unwrap();
    assert!(err.starts_with("#< CLIXML\r\n<Objs Version=\"1.1.0.1\""));
    assert_eq!(r.state.unwrap().exit_code, Some(1));
}

#[test]
fn empty_responses() {
    for f in ["send_response.xml", "pywinrm_send_response.xml"] {
        assert_eq!(response(f), Response::Sent, "{f}");
    }
    for f in ["signal_response.xml", "pywinrm_signal_response.xml"] {
        assert_eq!(response(f), Response::Signalled, "{f}");
    }
    for f in [
        "delete_shell_response.xml",
        "pywinrm_delete_shell_response.xml",
    ] {
        assert_eq!(response(f), Response::Deleted, "{f}");
    }
}

#[test]
fn config_max_envelope_size() {
    assert_eq!(
        response("wsman_config_get_response_maxenvelope_150kb.xml"),
        Response::Config {
            max_envelope_size_kb: 150,
            max_timeout_ms: 60000
        }
    );
    assert_eq!(
        response("wsman_config_get_response_maxenvelope_500kb.xml"),
        Response::Config {
            max_envelope_size_kb: 500,
            max_timeout_ms: 60000
        }
    );
    assert_eq!(
        response("exchanges/pypsrp/test_wsman_update_envelope_size_4096/00_Get_response.xml"),
        Response::Config {
            max_envelope_size_kb: 4096,
            max_timeout_ms: 60000
        }
    );
}

// ---------------------------------------------------------------- faults

struct ExpectedFault {
    file: &'static str,
    kind: FaultKind,
    code: Option<u32>,
    subcode: Option<&'static str>,
    machine: Option<&'static str>,
    message: &'static str,
}

const TIMEOUT_MSG: &str = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.";

fn expected_faults() -> Vec<ExpectedFault> {
    use FaultKind::*;
    let f = |file, kind, code, subcode, machine, message| ExpectedFault {
        file,
        kind,
        code,
        subcode,
        machine,
        message,
    };
    vec![
        f("fault_operation_timeout.xml", OperationTimedOut, Some(2150858793), Some("w:TimedOut"), Some("192.168.56.11"), TIMEOUT_MSG),
        f("pywinrm_fault_operation_timeout_server2022.xml", OperationTimedOut, Some(2150858793), Some("w:TimedOut"), Some("server2022.domain.test"), TIMEOUT_MSG),
        f("masterzen_fault_operation_timeout.xml", OperationTimedOut, Some(2150858793), Some("w:TimedOut"), Some("127.0.0.1"), TIMEOUT_MSG),
        f("fault_invalid_selectors_unknown_command_id.xml", InvalidSelectors, Some(2150858843), Some("w:InvalidSelectors"), Some("192.168.56.15"),
          "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier."),
        f("fault_invalid_selectors_shell_provider.xml", InvalidSelectors, Some(2150858843), Some("w:InvalidSelectors"), Some("127.0.0.1"),
          "The WS-Management service cannot process the request because the request contained invalid selectors for the resource."),
        f("fault_internal_error_file_not_found.xml", FileNotFound, Some(2147942402), Some("w:InternalError"), Some("server2008r2.domain.local"),
          "The system cannot find the file specified."),
        f("fault_invalid_parameter_87.xml", InvalidParameter, Some(87), Some("w:InvalidParameter"), Some("127.0.0.1"), "The parameter is incorrect."),
        f("fault_invalid_header_bad_timeout.xml", InvalidHeader, Some(2150858767), Some("a:InvalidMessageInformationHeader"), Some("127.0.0.1"),
          "The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: PT-1S."),
        f("masterzen_fault_filename_too_long.xml", FilenameTooLong, Some(2147942606), Some("w:InternalError"), Some("52.12.219.136"),
          "The filename or extension is too long."),
        f("winrb_fault_cannot_process_filter_v1.xml", CannotProcessFilter, Some(2150858778), Some("n:CannotProcessFilter"), None,
          "The specified class does not exist in the given namespace."),
        f("winrb_fault_cannot_process_filter_v2.xml", CannotProcessFilter, Some(2150858778), Some("n:CannotProcessFilter"), Some("localhost"),
          "The specified class does not exist in the given namespace."),
        f("winrb_fault_quota_limit_max_shells.xml", QuotaLimit, Some(2150859173), Some("w:QuotaLimit"), None,
          "The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user."),
        // OMI: SOAP-ENV:/wsman: prefixes, no WSManFault; the subcode comes back with Windows' prefix.
        f("winrb_omi_fault_internal_error.xml", InternalError, None, Some("w:InternalError"), None, "get-instance: instance name parameter is missing"),
        // Fragments (only the f:WSManFault element was published).
        f("fault_access_denied_wsmanfault_fragment.xml", AccessDenied, Some(5), None, Some("10.10.159.254"), "Access is denied."),
        f("fault_shell_not_found_wsmanfault_fragment.xml", InvalidSelectors, Some(2150858843), None, Some("ec2-35-160-210-73.us-west-2.compute.amazonaws.com"),
          "The request for the Windows Remote Shell with ShellId 91564AC3-CEAF-4C7A-B58C-82BC2528BD54 failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation."),
    ]
}

#[test]
fn every_fault_maps_to_its_kind() {
    for e in expected_faults() {
        let bytes = fixture(e.file);
        let f = parse_fault(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(f.kind, e.kind, "{}", e.file);
        assert_eq!(f.code, e.code, "{}", e.file);
        assert_eq!(f.subcode.as_deref(), e.subcode, "{}", e.file);
        assert_eq!(f.machine.as_deref(), e.machine, "{}", e.file);
        let text = f.message.clone().unwrap_or_else(|| f.reason.clone());
        assert_eq!(text, e.message, "{}", e.file);
        assert!(!f.raw.is_empty(), "{}", e.file);
        if !e.file.contains("fragment") {
            // The client path: parse_response turns the envelope into Err(Fault).
            assert_eq!(fault_of(&bytes), f, "{}", e.file);
        }
    }
}

#[test]
fn fault_details() {
    let f = parse_fault(&fixture("fault_internal_error_file_not_found.xml")).unwrap();
    assert_eq!(f.soap_code.as_deref(), Some("s:Receiver"));
    assert_eq!(f.provider.as_deref(), Some("Shell cmd plugin"));
    assert_eq!(
        f.provider_path.as_deref(),
        Some("%systemroot%\\system32\\winrscmd.dll")
    );
    assert!(f.raw.starts_with("<s:Detail>") && f.raw.ends_with("</s:Detail>"));

    let f = parse_fault(&fixture("fault_invalid_selectors_unknown_command_id.xml")).unwrap();
    assert_eq!(f.soap_code.as_deref(), Some("s:Sender"));
    assert_eq!(
        f.fault_detail.as_deref(),
        Some(soap::fault::detail::UNEXPECTED_SELECTORS)
    );
    assert_eq!(f.reason, "The WS-Management service cannot process the request because the request contained invalid selectors for the resource.");

    let f = parse_fault(&fixture("winrb_fault_cannot_process_filter_v1.xml")).unwrap();
    // OMI-style multi-line reason, whitespace collapsed.
    assert_eq!(f.reason, "The data source could not process the filter. The filter might be missing or it might be invalid. Change the filter and try the request again.");
    assert_eq!(
        f.provider.as_deref(),
        Some("WMIv1 plugin for Windows Remote Management ")
    );

    let f = parse_fault(&fixture("winrb_fault_quota_limit_max_shells.xml")).unwrap();
    assert!(f.wmi_error);

    let f = parse_fault(&fixture("fault_operation_timeout.xml")).unwrap();
    assert_eq!(
        f.to_string(),
        "WS-Management fault 2150858793 (w:TimedOut) from 192.168.56.11: The WS-Management service cannot complete the operation within the time specified in OperationTimeout."
    );
    let f = parse_fault(&fixture("winrb_omi_fault_internal_error.xml")).unwrap();
    assert_eq!(
        f.to_string(),
        "WS-Management fault (w:InternalError): get-instance: instance name parameter is missing"
    );
}

#[test]
fn classification_is_code_first_then_subcode() {
    assert_eq!(
        FaultKind::classify(Some(2150858793), Some((soap::ns::WSMAN, "InternalError"))),
        FaultKind::OperationTimedOut
    );
    assert_eq!(
        FaultKind::classify(Some(12345), Some((soap::ns::WSMAN, "TimedOut"))),
        FaultKind::OperationTimedOut
    );
    assert_eq!(
        FaultKind::classify(Some(2147942405), None),
        FaultKind::AccessDenied
    );
    assert_eq!(
        FaultKind::classify(Some(2150859174), None),
        FaultKind::QuotaLimit
    );
    assert_eq!(
        FaultKind::classify(Some(2150858824), None),
        FaultKind::EnvelopeTooLarge
    );
    assert_eq!(
        FaultKind::classify(Some(2150858817), None),
        FaultKind::SchemaValidation
    );
    // Prefix text alone means nothing: a "w:" bound to another namespace is not WS-Management.
    assert_eq!(
        FaultKind::classify(None, Some(("urn:other", "TimedOut"))),
        FaultKind::Other
    );
    assert_eq!(FaultKind::classify(None, None), FaultKind::Other);
}

#[test]
fn subcode_is_resolved_by_namespace_not_prefix() {
    let xml = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:zz="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:w="urn:not-wsman"><e:Body><e:Fault><e:Code><e:Value>e:Receiver</e:Value><e:Subcode><e:Value>zz:TimedOut</e:Value></e:Subcode></e:Code><e:Reason><e:Text>x</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>"#;
    let f = fault_of(xml.as_bytes());
    assert_eq!(f.kind, FaultKind::OperationTimedOut);
    assert_eq!(f.subcode.as_deref(), Some("w:TimedOut"));
    assert_eq!(f.soap_code.as_deref(), Some("s:Receiver"));
    let decoy = xml.replace("zz:TimedOut", "w:TimedOut");
    assert_eq!(fault_of(decoy.as_bytes()).kind, FaultKind::Other);
}

// ---------------------------------------------------------------- requests (pypsrp style)

#[test]
fn pypsrp_create_requests() {
    let p = request("create_shell_request.xml");
    assert_eq!(p.message_id, "uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5");
    assert_eq!(p.to.as_deref(), Some("http://192.168.56.11:5985/wsman"));
    assert_eq!(p.action, action::CREATE);
    assert_eq!(p.resource_uri, soap::RESOURCE_CMD);
    assert_eq!(p.max_envelope_size, Some(153600));
    assert_eq!(p.operation_timeout, Some(Duration::from_secs(20)));
    assert_eq!(p.locale.as_deref(), Some("en-US"));
    assert_eq!(p.request, Request::Create(ShellOptions::default()));

    assert_eq!(
        request("create_shell_request_codepage_65001.xml").request,
        Request::Create(ShellOptions {
            codepage: Some(65001),
            ..ShellOptions::default()
        })
    );
    let p = request("create_shell_request_noprofile.xml");
    assert_eq!(
        p.request,
        Request::Create(ShellOptions {
            no_profile: true,
            ..ShellOptions::default()
        })
    );
    assert_eq!(p.option("winrs_noprofile"), Some("TRUE"));

    let weird = r#"_-(){}[]<>*+-/\?"!@#$^&|;:i,.`~0"#;
    assert_eq!(
        request("create_shell_request_environment.xml").request,
        Request::Create(ShellOptions {
            environment: vec![
                ("env1".into(), "var1".into()),
                ("1234".into(), "5678".into()),
                (weird.into(), weird.into())
            ],
            ..ShellOptions::default()
        })
    );
    assert_eq!(
        request("create_shell_request_with_options.xml").request,
        Request::Create(ShellOptions {
            working_directory: Some("C:\\Windows".into()),
            idle_timeout: Some(Duration::from_secs(60)),
            ..ShellOptions::default()
        })
    );
}

#[test]
fn pypsrp_shell_requests() {
    let p = request("command_request.xml");
    assert_eq!(p.selector("ShellID"), Some(SHELL_STD));
    assert_eq!(
        p.request,
        Request::Command {
            shell_id: SHELL_STD.into(),
            command: "cmd.exe".into(),
            arguments: vec!["/c".into(), "echo".into(), "hi".into()],
            skip_cmd_shell: false,
            // pypsrp sends no WINRS_CONSOLEMODE_STDIN: read as a console (MS-WSMV 3.1.4.11
            // names no default; the pessimistic side, DOMAIN.md "WinRM details").
            console_mode_stdin: true,
        }
    );
    let p = request("receive_request.xml");
    assert_eq!(p.option("WSMAN_CMDSHELL_OPTION_KEEPALIVE"), Some("True"));
    assert_eq!(
        p.request,
        Request::Receive {
            shell_id: SHELL_STD.into(),
            command_id: Some(CMD_STD.into()),
            streams: vec!["stdout".into(), "stderr".into()]
        }
    );
    for (file, data, end) in [
        (
            "send_request_stdin.xml",
            &b"Write-Host \"output 1\";"[..],
            false,
        ),
        (
            "send_request_stdin_end.xml",
            &b"Write-Host \"output 2\";"[..],
            true,
        ),
    ] {
        assert_eq!(
            request(file).request,
            Request::Send {
                shell_id: "0D6FCA9D-2D40-44C3-B691-E665BE7AA687".into(),
                command_id: "B0973E54-434E-4D99-B4BE-ADE584CE3BFB".into(),
                stream: "stdin".into(),
                data: data.to_vec(),
                end,
            },
            "{file}"
        );
    }
    assert_eq!(
        request("signal_request_ctrl_c.xml").request,
        Request::Signal {
            shell_id: SHELL_STD.into(),
            command_id: CMD_STD.into(),
            code: signal::CTRL_C.into()
        }
    );
    assert_eq!(
        request("delete_shell_request.xml").request,
        Request::Delete {
            shell_id: SHELL_STD.into()
        }
    );
    let p = request("wsman_config_get_request.xml");
    assert_eq!(p.request, Request::GetConfig);
    assert_eq!(p.to.as_deref(), Some("https://127.0.0.1:55986/wsman"));
}

#[test]
fn receive_without_command_id_and_its_fault() {
    let p = request("exchanges/pypsrp/test_winrs_fail_poll_process/01_Receive_request.xml");
    assert_eq!(
        p.request,
        Request::Receive {
            shell_id: "8ABEA8D2-0438-4D75-A594-55DCA786B4E1".into(),
            command_id: None,
            streams: vec!["stdout".into(), "stderr".into()]
        }
    );
    let built = build_fault(
        Some(&p.message_id),
        &WsmanFault::invalid_parameter_receive_without_command("127.0.0.1"),
    );
    let windows = String::from_utf8(fixture(
        "exchanges/pypsrp/test_winrs_fail_poll_process/01_Receive_fault.xml",
    ))
    .unwrap();
    assert_eq!(normalise_ids(&built), normalise_ids(&windows));
}

#[test]
fn bad_operation_timeout_becomes_windows_fault() {
    let bytes = fixture("exchanges/pypsrp/test_psrp_is_alive_other_wsman_error/03_Get_request.xml");
    let err = parse_request(&bytes).unwrap_err();
    assert!(
        matches!(&err, SoapError::InvalidTimeout { value } if value == "PT-1S"),
        "{err:?}"
    );
    let fault = WsmanFault::from_request_error(&err, "127.0.0.1");
    let relates = soap::peek_message_id(&bytes);
    assert_eq!(
        relates.as_deref(),
        Some("uuid:6292D774-84D1-4421-8A5E-0EE2EA3831DA")
    );
    let built = build_fault(relates.as_deref(), &fault);
    let windows = String::from_utf8(fixture("fault_invalid_header_bad_timeout.xml")).unwrap();
    assert_eq!(normalise_ids(&built), normalise_ids(&windows));
}

#[test]
fn unsupported_and_invalid_requests() {
    // pypsrp's shell Get (PSRP is_alive) is not a WinRS cmd operation we serve.
    let err = parse_request(&fixture(
        "exchanges/pypsrp/test_psrp_is_alive_invalid_selectors/03_Get_request.xml",
    ))
    .unwrap_err();
    assert!(matches!(err, SoapError::Unsupported { .. }), "{err:?}");
    assert_eq!(
        WsmanFault::from_request_error(&err, "h").code,
        Some(2150858771)
    );

    let xml = String::from_utf8(fixture("command_request.xml")).unwrap();
    let no_selector = xml.replace(
        r#"<wsman:Selector Name="ShellId">4283CBDC-3706-415B-88BD-B385F3E51A53</wsman:Selector>"#,
        "",
    );
    let err = parse_request(no_selector.as_bytes()).unwrap_err();
    assert!(matches!(err, SoapError::MissingSelector { .. }), "{err:?}");
    assert_eq!(
        WsmanFault::from_request_error(&err, "h").kind,
        FaultKind::InvalidSelectors
    );

    let no_id = xml.replace(
        "<wsa:MessageID>uuid:109656EA-8D8A-46E9-BE22-5AA2199C7A7A</wsa:MessageID>",
        "",
    );
    let err = parse_request(no_id.as_bytes()).unwrap_err();
    assert!(matches!(err, SoapError::MissingHeader { .. }), "{err:?}");
    assert_eq!(
        WsmanFault::from_request_error(&err, "h").kind,
        FaultKind::InvalidHeader
    );

    let bad_size = xml.replace(">153600<", ">lots<");
    assert!(matches!(
        parse_request(bad_size.as_bytes()),
        Err(SoapError::InvalidHeader { .. })
    ));

    let err = parse_request(b"<not xml").unwrap_err();
    assert_eq!(
        WsmanFault::from_request_error(&err, "h").kind,
        FaultKind::SchemaValidation
    );
}

// ---------------------------------------------------------------- requests (pywinrm style)

/// Requests produced by pywinrm 0.5.0's `Protocol` (xmltodict) with a stub transport:
/// `env:` prefix, unqualified `mustUnderstand`, an XML declaration, lower-case uuids, a
/// per-element `xmlns:rsp` on Send, and all arguments joined in one `rsp:Arguments`.
const PYWINRM_HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config"><env:Header><a:To>http://windows-host:5985/wsman</a:To><a:ReplyTo><a:Address mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:04e330e6-addc-4cb5-aeff-7f8880ad8233</a:MessageID><w:Locale mustUnderstand="false" xml:lang="en-US"></w:Locale><p:DataLocale mustUnderstand="false" xml:lang="en-US"></p:DataLocale><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"#;

fn pywinrm(action_uri: &str, rest: &str) -> String {
    format!(
        r#"{PYWINRM_HEAD}<a:Action mustUnderstand="true">{action_uri}</a:Action>{rest}</env:Envelope>"#
    )
}

const PYWINRM_SELECTOR: &str =
    r#"<w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet>"#;

#[test]
fn pywinrm_requests() {
    let create = pywinrm(
        action::CREATE,
        r#"<w:OptionSet><w:Option Name="WINRS_NOPROFILE">TRUE</w:Option><w:Option Name="WINRS_CODEPAGE">65001</w:Option></w:OptionSet></env:Header><env:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:WorkingDirectory>C:\x</rsp:WorkingDirectory><rsp:IdleTimeOut>PT60S</rsp:IdleTimeOut><rsp:Environment><rsp:Variable Name="A">1 &amp; &lt;2&gt;</rsp:Variable></rsp:Environment></rsp:Shell></env:Body>"#,
    );
    let p = parse_request(create.as_bytes()).unwrap();
    assert_eq!(p.message_id, "uuid:04e330e6-addc-4cb5-aeff-7f8880ad8233");
    assert_eq!(p.to.as_deref(), Some("http://windows-host:5985/wsman"));
    assert_eq!(
        p.request,
        Request::Create(ShellOptions {
            codepage: Some(65001),
            no_profile: true,
            environment: vec![("A".into(), "1 & <2>".into())],
            working_directory: Some("C:\\x".into()),
            idle_timeout: Some(Duration::from_secs(60)),
        })
    );

    let command = pywinrm(
        action::COMMAND,
        &format!(
            r#"{PYWINRM_SELECTOR}<w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option></w:OptionSet></env:Header><env:Body><rsp:CommandLine><rsp:Command>powershell -encodedcommand ABC</rsp:Command><rsp:Arguments>x y z</rsp:Arguments></rsp:CommandLine></env:Body>"#
        ),
    );
    assert_eq!(
        parse_request(command.as_bytes()).unwrap().request,
        Request::Command {
            shell_id: "SHELL-1".into(),
            command: "powershell -encodedcommand ABC".into(),
            arguments: vec!["x y z".into()],
            skip_cmd_shell: false,
            console_mode_stdin: true,
        }
    );

    let receive = pywinrm(
        action::RECEIVE,
        &format!(
            r#"{PYWINRM_SELECTOR}</env:Header><env:Body><rsp:Receive><rsp:DesiredStream CommandId="CMD-1">stdout stderr</rsp:DesiredStream></rsp:Receive></env:Body>"#
        ),
    );
    let p = parse_request(receive.as_bytes()).unwrap();
    assert!(p.options.is_empty());
    assert_eq!(
        p.request,
        Request::Receive {
            shell_id: "SHELL-1".into(),
            command_id: Some("CMD-1".into()),
            streams: vec!["stdout".into(), "stderr".into()]
        }
    );

    let send = pywinrm(
        action::SEND,
        &format!(
            r#"{PYWINRM_SELECTOR}</env:Header><env:Body><rsp:Send><rsp:Stream CommandId="CMD-1" Name="stdin" End="true" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">ZWNobyBoaQ0K</rsp:Stream></rsp:Send></env:Body>"#
        ),
    );
    assert_eq!(
        parse_request(send.as_bytes()).unwrap().request,
        Request::Send {
            shell_id: "SHELL-1".into(),
            command_id: "CMD-1".into(),
            stream: "stdin".into(),
            data: b"echo hi\r\n".to_vec(),
            end: true
        }
    );

    let sig = pywinrm(
        action::SIGNAL,
        &format!(
            r#"{PYWINRM_SELECTOR}</env:Header><env:Body><rsp:Signal CommandId="CMD-1"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code></rsp:Signal></env:Body>"#
        ),
    );
    assert_eq!(
        parse_request(sig.as_bytes()).unwrap().request,
        Request::Signal {
            shell_id: "SHELL-1".into(),
            command_id: "CMD-1".into(),
            code: signal::TERMINATE.into()
        }
    );

    let delete = pywinrm(
        action::DELETE,
        &format!("{PYWINRM_SELECTOR}</env:Header><env:Body></env:Body>"),
    );
    assert_eq!(
        parse_request(delete.as_bytes()).unwrap().request,
        Request::Delete {
            shell_id: "SHELL-1".into()
        }
    );
}

// ---------------------------------------------------------------- every capture, every exchange step

#[test]
fn every_capture_parses() {
    for path in capture_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        if name.contains("_request") {
            parse_request(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.contains("fragment") || name.contains("fault") {
            let f = parse_fault(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_ne!(f.kind, FaultKind::Other, "{name}");
        } else {
            parse_response(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

struct Step {
    step: u64,
    action: String,
    response_action: String,
}

fn steps(index: &Path) -> Vec<Step> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(index).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| Step {
            step: s["step"].as_u64().unwrap(),
            action: s["action"].as_str().unwrap().to_string(),
            response_action: s["response_action"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn every_exchange_step_parses_and_is_consistent() {
    let root = dir().join("exchanges/pypsrp");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 18);
    for d in dirs {
        let test = d.file_name().unwrap().to_string_lossy().to_string();
        let steps = steps(&d.join("INDEX.json"));
        let mut shell_id: Option<String> = None;
        let mut command_id: Option<String> = None;
        for s in steps {
            let req_file = d.join(format!("{:02}_{}_request.xml", s.step, s.action));
            let req_bytes = std::fs::read(&req_file).unwrap();
            let req = parse_request(&req_bytes);
            let expected_action = format!("/{}", s.action);
            match &req {
                Ok(p) => {
                    assert!(
                        p.action.ends_with(&expected_action),
                        "{test} step {}",
                        s.step
                    );
                    if let (Some(sel), Some(known)) = (p.selector("ShellId"), &shell_id) {
                        assert_eq!(sel, known, "{test} step {}: ShellId selector", s.step);
                    }
                    let cmd_in_req = match &p.request {
                        Request::Receive { command_id, .. } => command_id.clone(),
                        Request::Signal { command_id, .. } | Request::Send { command_id, .. } => {
                            Some(command_id.clone())
                        }
                        _ => None,
                    };
                    if let (Some(c), Some(known)) = (cmd_in_req, &command_id) {
                        assert_eq!(&c, known, "{test} step {}: CommandId", s.step);
                    }
                }
                // The two requests we refuse on purpose.
                Err(SoapError::InvalidTimeout { value }) => assert_eq!(value, "PT-1S"),
                Err(SoapError::Unsupported {
                    action: a,
                    resource_uri,
                }) => {
                    assert_eq!(a, action::GET);
                    assert_eq!(resource_uri, soap::RESOURCE_SHELL);
                }
                Err(e) => panic!("{test} step {}: {e}", s.step),
            }
            if s.response_action == "fault" {
                let f = fault_of(
                    &std::fs::read(d.join(format!("{:02}_{}_fault.xml", s.step, s.action)))
                        .unwrap(),
                );
                assert_ne!(f.kind, FaultKind::Other, "{test} step {}", s.step);
                continue;
            }
            let resp_bytes =
                std::fs::read(d.join(format!("{:02}_{}_response.xml", s.step, s.action))).unwrap();
            let resp = parse_response(&resp_bytes)
                .unwrap_or_else(|e| panic!("{test} step {}: {e}", s.step));
            match (&resp, s.response_action.as_str()) {
                (Response::Created { shell_id: id }, "CreateResponse") => {
                    shell_id = Some(id.clone())
                }
                (Response::CommandStarted { command_id: id }, "CommandResponse") => {
                    command_id = Some(id.clone())
                }
                (Response::Received(_), "ReceiveResponse")
                | (Response::Sent, "SendResponse")
                | (Response::Signalled, "SignalResponse")
                | (Response::Deleted, "DeleteResponse")
                | (Response::Config { .. } | Response::Shell(_), "GetResponse") => {}
                (r, a) => panic!("{test} step {}: {a} parsed as {r:?}", s.step),
            }
            if test == "test_winrs_bad_cmd_id" && s.step == 1 {
                // pypsrp's runner replaced the CommandId of the next Receive with a bogus one.
                command_id = None;
            }
        }
    }
}

fn exchange_output(test: &str, step: &str) -> ReceiveOutput {
    received(&format!(
        "exchanges/pypsrp/{test}/{step}_Receive_response.xml"
    ))
}

#[test]
fn exchange_values() {
    let r = exchange_output("test_winrs_standard", "02");
    assert_eq!(stream(&r, "stdout"), b"hi\r\n");
    assert_eq!(r.state.unwrap().exit_code, Some(0));
    let r = exchange_output("test_winrs_stderr_rc", "02");
    assert_eq!(stream(&r, "stderr"), b"err \r\n");
    assert_eq!(r.state.unwrap().exit_code, Some(1));
    let r = exchange_output("test_winrs_unicode", "02");
    assert_eq!(
        String::from_utf8(stream(&r, "stdout")).unwrap(),
        "\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\n"
    );
    let r = exchange_output("test_winrs_send", "04");
    assert_eq!(stream(&r, "stdout"), b"output 1\noutput 2\n");
    let r = exchange_output("test_client_execute_cmd", "07");
    assert_eq!(stream(&r, "stdout"), b"abc\r\n");
    let r = exchange_output("test_winrs_operation_timeout", "02");
    assert!(!r.state.unwrap().done);
    for step in ["03", "04"] {
        let f = fault_of(&fixture(&format!(
            "exchanges/pypsrp/test_winrs_operation_timeout/{step}_Receive_fault.xml"
        )));
        assert_eq!(f.kind, FaultKind::OperationTimedOut);
    }
    let r = exchange_output("test_winrs_operation_timeout", "05");
    assert_eq!(stream(&r, "stdout"), b"hi again\n");
    // PSRP receives: streams without CommandId, no CommandState.
    let r = exchange_output("test_psrp_is_alive_invalid_selectors", "01");
    assert_eq!(r.state, None);
    assert!(r
        .chunks
        .iter()
        .all(|c| c.command_id.is_none() && c.stream == "stdout"));
    assert_eq!(&stream(&r, "stdout")[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
    match response("exchanges/pypsrp/test_psrp_is_alive_invalid_selectors/03_Get_response.xml") {
        Response::Shell(info) => {
            assert_eq!(info.shell_id, "6F1903CA-E06A-4A8B-BDFC-B44203149D55");
            assert_eq!(info.owner, "vagrant");
            assert_eq!(info.idle_timeout, "PT60.000S");
        }
        other => panic!("{other:?}"),
    }
    let f = fault_of(&fixture(
        "exchanges/pypsrp/test_winrs_no_cmd_shell/01_Command_fault.xml",
    ));
    assert_eq!(f.kind, FaultKind::FileNotFound);
    let req = request("exchanges/pypsrp/test_winrs_no_cmd_shell/01_Command_request.xml");
    assert!(
        matches!(
            req.request,
            Request::Command {
                skip_cmd_shell: true,
                ..
            }
        ),
        "{:?}",
        req.request
    );
    let f = fault_of(&fixture(
        "exchanges/pypsrp/test_winrs_bad_cmd_id/02_Receive_fault.xml",
    ));
    assert_eq!(f.kind, FaultKind::InvalidSelectors);
}

// ---------------------------------------------------------------- our output = Windows' bytes

fn built_like(file: &str, built: &str) {
    let windows = String::from_utf8(fixture(file)).unwrap();
    assert_eq!(normalise_ids(built), normalise_ids(&windows), "{file}");
}

#[test]
fn built_responses_match_windows() {
    let create_req = request("create_shell_request.xml");
    let info = ShellInfo {
        shell_id: SHELL_STD.into(),
        owner: "vagrant".into(),
        client_ip: "192.168.56.1".into(),
        idle_timeout: soap::format_duration_windows(Duration::from_secs(7200)),
    };
    built_like(
        "create_shell_response.xml",
        &build_response_for(
            &create_req,
            &Response::Created {
                shell_id: SHELL_STD.into(),
            },
            Some(&info),
        ),
    );
    built_like(
        "command_response.xml",
        &build_response(
            "uuid:109656EA-8D8A-46E9-BE22-5AA2199C7A7A",
            &Response::CommandStarted {
                command_id: CMD_STD.into(),
            },
            None,
        ),
    );
    let chunk = |data: &[u8], stream: &str, end| StreamChunk {
        stream: stream.into(),
        command_id: Some(CMD_STD.into()),
        data: data.to_vec(),
        end,
    };
    let done = ReceiveOutput {
        chunks: vec![
            chunk(b"hi\r\n", "stdout", false),
            chunk(b"", "stdout", true),
            chunk(b"", "stderr", true),
        ],
        state: Some(CommandState {
            command_id: CMD_STD.into(),
            done: true,
            exit_code: Some(0),
        }),
    };
    built_like(
        "receive_response_done.xml",
        &build_response(
            "uuid:4CECD2A8-45E1-4835-B5D9-F4CEB4308A0F",
            &Response::Received(done),
            None,
        ),
    );
    let running_id = "D644AE56-61E5-4C1A-A135-E599B76B3035";
    let running = ReceiveOutput {
        chunks: ["hi", "\n"]
            .iter()
            .map(|d| StreamChunk {
                stream: "stdout".into(),
                command_id: Some(running_id.into()),
                data: d.as_bytes().to_vec(),
                end: false,
            })
            .collect(),
        state: Some(CommandState {
            command_id: running_id.into(),
            done: false,
            exit_code: None,
        }),
    };
    built_like(
        "receive_response_running.xml",
        &build_response(
            "uuid:AC9A2078-650B-4F5A-8023-6A37A2F06331",
            &Response::Received(running),
            None,
        ),
    );
    built_like(
        "send_response.xml",
        &build_response(
            "uuid:A74B4E0C-598A-46B6-8086-4FB4F7552996",
            &Response::Sent,
            None,
        ),
    );
    built_like(
        "signal_response.xml",
        &build_response(
            "uuid:39F0C1EF-D3FD-4905-A01D-5524640DDD61",
            &Response::Signalled,
            None,
        ),
    );
    built_like(
        "delete_shell_response.xml",
        &build_response(
            "uuid:CFC01FC6-2D1B-4B58-990E-8708C586CB73",
            &Response::Deleted,
            None,
        ),
    );
    built_like(
        "wsman_config_get_response_maxenvelope_150kb.xml",
        &build_response(
            "uuid:452E314E-4267-4F1D-AE4F-5E3483848E3B",
            &Response::Config {
                max_envelope_size_kb: 150,
                max_timeout_ms: 60000,
            },
            None,
        ),
    );
}

#[test]
fn built_faults_match_windows() {
    built_like(
        "fault_operation_timeout.xml",
        &build_fault(
            Some("uuid:9BE5F54A-6B47-487D-9ACD-65201E650446"),
            &WsmanFault::operation_timed_out("192.168.56.11"),
        ),
    );
    built_like(
        "fault_invalid_selectors_unknown_command_id.xml",
        &build_fault(
            Some("uuid:1E4F574C-3C19-46E9-A544-B71D78C95E7B"),
            &WsmanFault::unknown_command_id("192.168.56.15"),
        ),
    );
    built_like(
        "fault_invalid_parameter_87.xml",
        &build_fault(
            Some("uuid:78391CE9-CBCD-4353-AA5E-E73C62791A04"),
            &WsmanFault::invalid_parameter_receive_without_command("127.0.0.1"),
        ),
    );
    built_like(
        "fault_invalid_header_bad_timeout.xml",
        &build_fault(
            Some("uuid:6292D774-84D1-4421-8A5E-0EE2EA3831DA"),
            &WsmanFault::invalid_operation_timeout("PT-1S", "127.0.0.1"),
        ),
    );
    built_like(
        "fault_internal_error_file_not_found.xml",
        &build_fault(
            Some("uuid:203DCF7B-C198-42CE-B584-8453560B704F"),
            &WsmanFault::file_not_found("server2008r2.domain.local"),
        ),
    );
}

#[test]
fn built_faults_parse_back() {
    let machine = "dc01.corp.example";
    let cases = [
        WsmanFault::operation_timed_out(machine),
        WsmanFault::shell_not_found("0D6FCA9D-2D40-44C3-B691-E665BE7AA687", machine),
        WsmanFault::unknown_command_id(machine),
        WsmanFault::invalid_selectors(machine),
        WsmanFault::access_denied(machine),
        WsmanFault::invalid_parameter_receive_without_command(machine),
        WsmanFault::invalid_operation_timeout("PT-1S", machine),
        WsmanFault::invalid_header(machine),
        WsmanFault::missing_header(machine),
        WsmanFault::max_envelope_size_exceeded(600_000, 512_000, machine),
        WsmanFault::quota_max_shells(30, machine),
        WsmanFault::schema_validation(machine),
        WsmanFault::action_not_supported(machine),
        WsmanFault::file_not_found(machine),
        WsmanFault::filename_too_long(machine),
    ];
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for f in cases {
        let xml = build_fault(Some("uuid:00000000-0000-0000-0000-000000000001"), &f);
        let back = fault_of(xml.as_bytes());
        assert_eq!(back.kind, f.kind, "{f:?}");
        assert_eq!(back.code, f.code, "{f:?}");
        assert_eq!(back.subcode, f.subcode, "{f:?}");
        assert_eq!(back.soap_code, f.soap_code, "{f:?}");
        assert_eq!(back.machine, f.machine, "{f:?}");
        assert_eq!(
            back.message.as_deref().map(norm),
            f.message.as_deref().map(norm),
            "{f:?}"
        );
        assert_eq!(back.reason, norm(&f.reason), "{f:?}");
        assert_eq!(back.fault_detail, f.fault_detail, "{f:?}");
        assert_eq!(back.provider, f.provider, "{f:?}");
        assert_eq!(back.wmi_error, f.wmi_error, "{f:?}");
        assert_eq!(parse_fault(xml.as_bytes()).unwrap(), back);
        assert!(xml.contains(f.action()));
        if f.kind != FaultKind::QuotaLimit {
            assert!(
                back.to_string()
                    .starts_with(&format!("WS-Management fault {} (", f.code.unwrap())),
                "{back}"
            );
            assert!(
                back.to_string().contains(" from dc01.corp.example: "),
                "{back}"
            );
        }
    }
    let shell = WsmanFault::shell_not_found("ABC", "m");
    assert!(shell
        .message
        .unwrap()
        .contains("ShellId ABC failed because the shell was not found on the server."));
    // Without a RelatesTo (the request could not be parsed).
    let xml = build_fault(None, &WsmanFault::access_denied("m"));
    assert!(!xml.contains("RelatesTo"));
    assert_eq!(fault_of(xml.as_bytes()).kind, FaultKind::AccessDenied);
}

// ---------------------------------------------------------------- round trips

fn ctx() -> RequestContext {
    RequestContext::new("http://dc01.corp.example:5985/wsman")
}

#[test]
fn request_context_defaults() {
    let c = ctx();
    assert_eq!(c.max_envelope_size, 153_600);
    assert_eq!(c.operation_timeout, Duration::from_secs(20));
    assert_eq!(c.locale, "en-US");
}

#[test]
fn built_requests_carry_pywinrm_options() {
    let create = build_request(
        &ctx(),
        "uuid:1",
        &Request::Create(ShellOptions {
            codepage: Some(65001),
            no_profile: true,
            ..Default::default()
        }),
    );
    let p = parse_request(create.as_bytes()).unwrap();
    assert_eq!(p.option("WINRS_NOPROFILE"), Some("TRUE"));
    assert_eq!(p.option("WINRS_CODEPAGE"), Some("65001"));
    assert_eq!(p.max_envelope_size, Some(153_600));
    assert_eq!(p.operation_timeout, Some(Duration::from_secs(20)));
    assert!(create.contains("<w:OperationTimeout>PT20S</w:OperationTimeout>"));
    let cmd = Request::Command {
        shell_id: "S".into(),
        command: "cmd".into(),
        arguments: vec![],
        skip_cmd_shell: false,
        console_mode_stdin: true,
    };
    let p = parse_request(build_request(&ctx(), "uuid:2", &cmd).as_bytes()).unwrap();
    assert_eq!(p.option("WINRS_CONSOLEMODE_STDIN"), Some("TRUE"));
    assert_eq!(p.option("WINRS_SKIP_CMD_SHELL"), Some("FALSE"));
    let recv = Request::Receive {
        shell_id: "S".into(),
        command_id: Some("C".into()),
        streams: vec!["stdout".into()],
    };
    let p = parse_request(build_request(&ctx(), "uuid:3", &recv).as_bytes()).unwrap();
    assert_eq!(p.option("WSMAN_CMDSHELL_OPTION_KEEPALIVE"), Some("TRUE"));
    assert_eq!(p.resource_uri, soap::RESOURCE_CMD);
    let p = parse_request(build_request(&ctx(), "uuid:4", &Request::GetConfig).as_bytes()).unwrap();
    assert_eq!(p.resource_uri, soap::RESOURCE_CONFIG);
    assert_eq!(p.action, action::GET);
}

fn xml_text() -> impl Strategy<Value = String> {
    // Any characters XML 1.0 can carry, including CR, LF, tab, markup and non-ASCII.
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range(' ', '~'),
            1 => prop_oneof![Just('\r'), Just('\n'), Just('\t'), Just('&'), Just('<'), Just('"'), Just('\'')],
            1 => proptest::char::range('\u{a0}', '\u{d7ff}'),
            1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
        ],
        0..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:.-]{1,40}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z]{1,10}"
}

fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::collection::vec((xml_text(), xml_text()), 0..4),
            proptest::option::of(xml_text()),
            proptest::option::of(
                (0u64..10_000_000, 0u32..1000)
                    .prop_map(|(s, ms)| Duration::from_millis(s * 1000 + u64::from(ms)))
            ),
        )
            .prop_map(
                |(codepage, no_profile, environment, working_directory, idle_timeout)| {
                    Request::Create(ShellOptions {
                        codepage,
                        no_profile,
                        environment,
                        working_directory,
                        idle_timeout,
                    })
                }
            ),
        (
            id(),
            xml_text(),
            proptest::collection::vec(xml_text(), 0..5),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(shell_id, command, arguments, skip_cmd_shell, console_mode_stdin)| {
                    Request::Command {
                        shell_id,
                        command,
                        arguments,
                        skip_cmd_shell,
                        console_mode_stdin,
                    }
                }
            ),
        (
            id(),
            id(),
            name(),
            proptest::collection::vec(any::<u8>(), 0..200),
            any::<bool>()
        )
            .prop_map(|(shell_id, command_id, stream, data, end)| Request::Send {
                shell_id,
                command_id,
                stream,
                data,
                end
            }),
        (
            id(),
            proptest::option::of(id()),
            proptest::collection::vec(name(), 0..3)
        )
            .prop_map(|(shell_id, command_id, streams)| Request::Receive {
                shell_id,
                command_id,
                streams
            }),
        (
            id(),
            id(),
            prop_oneof![
                Just(signal::TERMINATE.to_string()),
                Just(signal::CTRL_C.to_string()),
                id()
            ]
        )
            .prop_map(|(shell_id, command_id, code)| Request::Signal {
                shell_id,
                command_id,
                code
            }),
        id().prop_map(|shell_id| Request::Delete { shell_id }),
        Just(Request::GetConfig),
    ]
}

fn any_response() -> impl Strategy<Value = (Response, Option<ShellInfo>)> {
    let info = || {
        (id(), id(), id(), id()).prop_map(|(shell_id, owner, client_ip, idle_timeout)| ShellInfo {
            shell_id,
            owner,
            client_ip,
            idle_timeout,
        })
    };
    let chunk = (
        name(),
        proptest::option::of(id()),
        proptest::collection::vec(any::<u8>(), 0..100),
        any::<bool>(),
    )
        .prop_map(|(stream, command_id, data, end)| StreamChunk {
            stream,
            command_id,
            data,
            end,
        });
    let state = (id(), any::<bool>(), proptest::option::of(any::<i64>())).prop_map(
        |(command_id, done, exit_code)| CommandState {
            command_id,
            done,
            exit_code,
        },
    );
    prop_oneof![
        (id(), proptest::option::of(info()))
            .prop_map(|(shell_id, info)| (Response::Created { shell_id }, info)),
        id().prop_map(|command_id| (Response::CommandStarted { command_id }, None)),
        (
            proptest::collection::vec(chunk, 0..6),
            proptest::option::of(state)
        )
            .prop_map(|(chunks, state)| (
                Response::Received(ReceiveOutput { chunks, state }),
                None
            )),
        Just((Response::Sent, None)),
        Just((Response::Signalled, None)),
        Just((Response::Deleted, None)),
        (any::<u32>(), any::<u64>()).prop_map(|(max_envelope_size_kb, max_timeout_ms)| (
            Response::Config {
                max_envelope_size_kb,
                max_timeout_ms
            },
            None
        )),
        info().prop_map(|i| (Response::Shell(i), None)),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(req in any_request(), message_id in id(), timeout_ms in 0u64..100_000_000, max in any::<u32>()) {
        let ctx = RequestContext {
            to: "https://h\u{e9}te:5986/wsman?a=1&b=<2>".into(),
            max_envelope_size: max,
            operation_timeout: Duration::from_millis(timeout_ms),
            locale: "de-DE".into(),
        };
        let xml = build_request(&ctx, &message_id, &req);
        let p = parse_request(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(&p.request, &req);
        prop_assert_eq!(&p.message_id, &message_id);
        prop_assert_eq!(p.to.as_deref(), Some(ctx.to.as_str()));
        prop_assert_eq!(p.max_envelope_size, Some(max));
        prop_assert_eq!(p.operation_timeout, Some(ctx.operation_timeout));
        prop_assert_eq!(p.locale.as_deref(), Some("de-DE"));
        prop_assert_eq!(p.action.as_str(), req.action());
        prop_assert_eq!(p.resource_uri.as_str(), req.resource_uri());
        prop_assert_eq!(soap::peek_message_id(xml.as_bytes()), Some(message_id));
    }

    #[test]
    fn response_round_trip((resp, info) in any_response(), relates in id()) {
        let xml = build_response(&relates, &resp, info.as_ref());
        let back = parse_response(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes);
        let _ = parse_response(&bytes);
        let _ = parse_fault(&bytes);
        let _ = soap::peek_message_id(&bytes);
    }

    #[test]
    fn never_panics_on_markup_soup(parts in proptest::collection::vec(prop_oneof![
        Just("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">".to_string()),
        Just("<s:Body>".to_string()), Just("</s:Body>".to_string()), Just("<s:Fault>".to_string()),
        Just("<rsp:Stream xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\" Name=\"stdout\">".to_string()),
        Just("</rsp:Stream>".to_string()), Just("&#x0;".to_string()), Just("&amp;".to_string()), Just("<![CDATA[x]]>".to_string()),
        Just("<!DOCTYPE a [<!ENTITY e \"x\">]>".to_string()), Just("&e;".to_string()), Just("</s:Envelope>".to_string()),
        "[ -~]{0,8}",
    ], 0..30)) {
        let doc = parts.concat();
        let _ = parse_request(doc.as_bytes());
        let _ = parse_response(doc.as_bytes());
        let _ = parse_fault(doc.as_bytes());
    }

    #[test]
    fn truncated_captures_are_errors(file_index in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let mut files = capture_files();
        files.extend(exchange_files());
        let bytes = std::fs::read(file_index.get(&files)).unwrap();
        let content = bytes.trim_ascii_end().len();
        let at = cut.index(content);
        let prefix = &bytes[..at];
        prop_assert!(parse_response(prefix).is_err());
        prop_assert!(parse_request(prefix).is_err());
        prop_assert!(parse_fault(prefix).is_err());
    }

    #[test]
    fn mutated_captures_never_panic(file_index in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut files = capture_files();
        files.extend(exchange_files());
        let mut bytes = std::fs::read(file_index.get(&files)).unwrap();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        let _ = parse_request(&bytes);
        let _ = parse_response(&bytes);
        let _ = parse_fault(&bytes);
    }
}

#[test]
fn every_truncation_of_some_captures_is_an_error() {
    for name in [
        "create_shell_response.xml",
        "receive_response_done.xml",
        "fault_invalid_selectors_shell_provider.xml",
        "command_request.xml",
    ] {
        let bytes = fixture(name);
        for at in 0..bytes.trim_ascii_end().len() {
            assert!(parse_response(&bytes[..at]).is_err(), "{name} cut at {at}");
            assert!(parse_request(&bytes[..at]).is_err(), "{name} cut at {at}");
        }
    }
}

#[test]
fn malformed_messages_are_errors() {
    for (bad, what) in [
        (&b""[..], "empty"),
        (b"<", "lone <"),
        (b"<a/>", "not an envelope"),
        (br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#, "SOAP 1.1"),
        (br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#, "no body"),
        (br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body></s:Body></s:Envelope>"#, "empty body, no action"),
        (b"\xff\xfe<", "odd UTF-16"),
        (b"<s:Envelope><s:Body/></s:Envelope>", "undeclared prefix"),
    ] {
        assert!(parse_response(bad).is_err(), "{what}");
        assert!(parse_request(bad).is_err(), "{what}");
        assert!(parse_fault(bad).is_err(), "{what}");
    }
    // Bad base64 in a stream and a non-numeric exit code.
    let xml = String::from_utf8(fixture("receive_response_done.xml")).unwrap();
    assert!(matches!(
        parse_response(xml.replace("aGkNCg==", "a*b").as_bytes()),
        Err(SoapError::Malformed { .. })
    ));
    assert!(matches!(
        parse_response(xml.replace(">0<", ">zero<").as_bytes()),
        Err(SoapError::Malformed { .. })
    ));
}
