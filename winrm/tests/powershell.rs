//! `winrm::powershell`: `-EncodedCommand` encoding both ways and `#< CLIXML` stderr, against
//! the pywinrm capture of a real PowerShell error (`testdata/winrm`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use proptest::prelude::*;
use winrm::powershell::{
    command_line, decode_clixml, decode_encoded_command, encode_clixml_errors, encode_command,
    script_from_command_line, PowerShellError,
};
use winrm::soap::{parse_response, Response};

fn capture_stderr() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/winrm/pywinrm_receive_response_ps_clixml_stderr_exit_1.xml");
    let Response::Received(out) = parse_response(&std::fs::read(path).unwrap()).unwrap() else {
        panic!("not a ReceiveResponse")
    };
    let bytes: Vec<u8> = out
        .chunks
        .iter()
        .filter(|c| c.stream == "stderr")
        .flat_map(|c| c.data.clone())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn encodes_like_powershell() {
    // UTF-16LE "dir".
    assert_eq!(encode_command("dir"), "ZABpAHIA");
    let (exe, args) = command_line("Write-Output 1");
    assert_eq!(exe, "powershell.exe");
    assert_eq!(
        args[..3],
        ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    );
    assert_eq!(decode_encoded_command(&args[3]).unwrap(), "Write-Output 1");
}

#[test]
fn round_trips_non_ascii() {
    for script in [
        "",
        "Get-ChildItem 'C:\\Program Files' | Where-Object { $_.Name -like '*ü*' }",
        "Write-Output '\u{3053}\u{3093}\u{306b}\u{3061}\u{306f}' # \u{1F600}\r\n$x = \"a`tb\"",
    ] {
        assert_eq!(
            decode_encoded_command(&encode_command(script)).unwrap(),
            script
        );
    }
    // Line breaks in the base64 are tolerated.
    let wrapped: String = encode_command("abc")
        .chars()
        .flat_map(|c| [c, '\n'])
        .collect();
    assert_eq!(decode_encoded_command(&wrapped).unwrap(), "abc");
}

#[test]
fn decode_errors() {
    assert_eq!(decode_encoded_command("!!!"), Err(PowerShellError::Base64));
    assert_eq!(
        decode_encoded_command("YQ=="),
        Err(PowerShellError::OddLength(1))
    );
    // A lone high surrogate (0xD800).
    assert_eq!(decode_encoded_command("ANg="), Err(PowerShellError::Utf16));
}

#[test]
fn finds_the_script_in_any_client_s_command_line() {
    let b64 = encode_command("hostname");
    // Ours / pypsrp: separate arguments.
    let (exe, args) = command_line("hostname");
    assert_eq!(
        script_from_command_line(&exe, &args),
        Some(Ok("hostname".to_string()))
    );
    // pywinrm's run_ps: everything in rsp:Command.
    assert_eq!(
        script_from_command_line(&format!("powershell -encodedcommand {b64}"), &[]),
        Some(Ok("hostname".into()))
    );
    // Abbreviations and a full path.
    for flag in ["-e", "-ec", "-enc", "-EncodedCommand", "/enc"] {
        let args = vec!["-NoProfile".to_string(), flag.to_string(), b64.clone()];
        assert_eq!(
            script_from_command_line(
                "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                &args
            ),
            Some(Ok("hostname".into())),
            "{flag}"
        );
    }
    assert_eq!(
        script_from_command_line("cmd.exe", &["/c".into(), "-enc".into(), b64.clone()]),
        None
    );
    assert_eq!(
        script_from_command_line("powershell.exe", &["-Command".into(), "dir".into()]),
        None
    );
    assert_eq!(
        script_from_command_line("powershell.exe", &["-enc".into(), "!!".into()]),
        Some(Err(PowerShellError::Base64))
    );
}

#[test]
fn pywinrm_clixml_capture_decodes_to_readable_text() {
    let stderr = capture_stderr();
    assert!(stderr.starts_with("#< CLIXML\r\n"));
    assert_eq!(
        decode_clixml(&stderr),
        "Write-Error \"Error\" : Error\n    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorExcep \n   tion\n    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorExceptio \n   n"
    );
}

const PROGRESS: &str = concat!(
    r#"<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>"#,
    r#"<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"#
);

#[test]
fn progress_only_clixml_decodes_to_empty() {
    let stderr = format!(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">{PROGRESS}</Objs>"
    );
    assert_eq!(decode_clixml(&stderr), "");
}

#[test]
fn errors_after_progress_and_other_streams() {
    let stderr = format!(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">{PROGRESS}<S S=\"Warning\">careful_x000D__x000A_</S><S S=\"Error\">boom &amp; bust_x000D__x000A_</S><S S=\"Error\">tab_x0009_here_x000D__x000A_</S></Objs>"
    );
    assert_eq!(decode_clixml(&stderr), "boom & bust\ntab\there");
}

#[test]
fn non_clixml_and_broken_clixml_come_back_unchanged() {
    for s in [
        "",
        "plain error\r\n",
        "'foo' is not recognized as an internal or external command",
        "#< CLIXML\r\n<Objs",
        "#< CLIXML\r\n<Objs><S S=\"Error\">x</Objs>",
    ] {
        assert_eq!(decode_clixml(s), s);
    }
}

#[test]
fn lab_errors_look_like_powershell_s() {
    let encoded = encode_clixml_errors(&[
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.",
        "At line:1 char:1",
    ]);
    assert!(encoded.starts_with(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">Get-Item : Cannot find path"
    ));
    assert!(encoded.ends_with("_x000D__x000A_</S></Objs>"));
    assert_eq!(
        decode_clixml(&encoded),
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.\nAt line:1 char:1"
    );
    // Markup, escapes-lookalikes and control characters survive.
    let tricky = "<a> & _x000D_ \u{1} \u{3053}";
    assert_eq!(decode_clixml(&encode_clixml_errors(&[tricky])), tricky);
    assert_eq!(decode_clixml(&encode_clixml_errors(&[])), "");
}

proptest! {
    #[test]
    fn encoded_command_round_trip(script in any::<String>()) {
        prop_assert_eq!(decode_encoded_command(&encode_command(&script)).unwrap(), script);
    }

    #[test]
    fn clixml_round_trip(lines in proptest::collection::vec("[^\r\n]{0,30}", 0..5)) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let expected = lines.join("\n");
        prop_assert_eq!(decode_clixml(&encode_clixml_errors(&refs)), expected.trim_end());
    }

    #[test]
    fn decoders_never_panic(s in any::<String>(), b64 in "[A-Za-z0-9+/=\\s]{0,40}") {
        let _ = decode_clixml(&s);
        let _ = decode_clixml(&format!("#< CLIXML\r\n{s}"));
        let _ = decode_clixml(&format!("#< CLIXML\r\n<Objs><S S=\"Error\">{s}</S></Objs>"));
        let _ = decode_encoded_command(&s);
        let _ = decode_encoded_command(&b64);
        let _ = script_from_command_line(&s, &[s.clone(), b64]);
    }
}
