//! cmd-level commands, nltest texts against the real captures, unknown commands, the
//! PowerShell subset's behaviours, and stdin handling.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use lab::model::{Lab, LabSpec};

fn lab() -> (Lab, lab::host::HostId, lab::model::Identity) {
    let lab = Lab::build(LabSpec::healthy(2, 21)).unwrap();
    let id = first_healthy(&lab);
    let who = local_admin(&lab, id);
    (lab, id, who)
}

/// Compares output with a capture from testdata (LF, trailing spaces trimmed there).
fn assert_matches_capture(stdout: &str, file: &str, replace: &[(&str, &str)]) {
    let mut expected = std::fs::read_to_string(format!(
        "{}/../testdata/windows-output/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (a, b) in replace {
        expected = expected.replace(a, b);
    }
    let got: Vec<&str> = stdout
        .strip_suffix("\r\n")
        .unwrap_or(stdout)
        .split("\r\n")
        .map(str::trim_end)
        .collect();
    let want: Vec<&str> = expected.lines().map(str::trim_end).collect();
    assert_eq!(got, want, "{file}");
}

#[test]
fn cmd_builtins() {
    let (lab, id, who) = lab();
    let name = lab.host(id).unwrap().computer_name;
    let out = lab.execute(id, &who, "hostname", b"");
    assert_eq!(out.stdout, format!("{name}\r\n").into_bytes());
    let out = lab.execute(id, &who, "whoami", b"");
    assert_eq!(
        out.stdout_text(),
        format!("{}\\administrator\r\n", name.to_lowercase())
    );
    let ts = domain_identity(&lab, id, "tsrepair").unwrap();
    assert_eq!(
        lab.execute(id, &ts, "whoami.exe", b"").stdout_text(),
        "lab\\tsrepair\r\n"
    );
    assert_eq!(
        lab.execute(id, &who, "echo hello  world", b"")
            .stdout_text(),
        "hello  world\r\n"
    );
    assert_eq!(
        lab.execute(id, &who, "cmd /c hostname", b"").stdout_text(),
        format!("{name}\r\n")
    );
}

#[test]
fn unknown_cmd_command() {
    let (lab, id, who) = lab();
    let out = lab.execute(id, &who, "foo --bar", b"");
    assert_eq!(out.stdout, b"");
    assert_eq!(out.stderr_text(), "'foo' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n");
    assert_eq!(out.exit_code, 1);
    // PowerShell 7 is not installed.
    assert_eq!(lab.execute(id, &who, "pwsh -c 1", b"").exit_code, 1);
}

#[test]
fn unknown_powershell_command_is_clixml_error() {
    let (lab, id, who) = lab();
    let out = run(&lab, id, &who, "Foo-Bar", b"");
    assert_eq!(out.exit_code, 1);
    assert_eq!(out.stdout, b"");
    let expected = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">Foo-Bar : The term 'Foo-Bar' is not recognized as the name of a cmdlet, function, script file, or operable program. _x000D__x000A_</S><S S=\"Error\">Check the spelling of the name, or if a path was included, verify that the path is correct and try again._x000D__x000A_</S><S S=\"Error\">At line:1 char:1_x000D__x000A_</S><S S=\"Error\">+ Foo-Bar_x000D__x000A_</S><S S=\"Error\">+ ~~~~~~~_x000D__x000A_</S><S S=\"Error\">    + CategoryInfo          : ObjectNotFound: (Foo-Bar:String) [], CommandNotFoundException_x000D__x000A_</S><S S=\"Error\">    + FullyQualifiedErrorId : CommandNotFoundException_x000D__x000A_</S><S S=\"Error\"> _x000D__x000A_</S></Objs>";
    assert_eq!(out.stderr_text(), expected);
    // pywinrm's captured shape: the same wrapping for 'fake'.
    let out = run(&lab, id, &who, "fake cmdlet", b"");
    let text = clixml_text(&out.stderr);
    assert!(text.starts_with("fake : The term 'fake' is not recognized as the name of a cmdlet, function, script file, or operable program. Check \r\nthe spelling"), "{text}");
    assert!(text.contains("+ fake cmdlet\r\n+ ~~~~\r\n"));
    // Not silent after other output; later statements still run; the exit code follows $?.
    let out = run(
        &lab,
        id,
        &who,
        "Write-Output 'a'\nNope-Thing\nWrite-Output 'b'",
        b"",
    );
    assert_eq!(out.stdout_text(), "a\r\nb\r\n");
    assert!(clixml_text(&out.stderr).contains("At line:2 char:1"));
    assert_eq!(out.exit_code, 0);
    // -Command gives plain text errors.
    let out = lab.execute(id, &who, "powershell -NoProfile -Command Foo-Bar", b"");
    assert!(
        out.stderr_text()
            .starts_with("Foo-Bar : The term 'Foo-Bar' is not recognized"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(out.exit_code, 1);
    // try/catch sees it.
    let out = run(
        &lab,
        id,
        &who,
        "try { Foo-Bar } catch { Write-Output \"caught: $($_.Exception.Message)\" }",
        b"",
    );
    assert!(out
        .stdout_text()
        .starts_with("caught: The term 'Foo-Bar' is not recognized"));
    assert!(out.stderr.is_empty());
}

#[test]
fn nltest_matches_captures() {
    let (lab, id, who) = lab();
    let bound = lab.host(id).unwrap().bound_dc;
    let out = lab.execute(id, &who, "nltest /sc_verify:lab.test", b"");
    assert_eq!(out.exit_code, 0);
    assert_matches_capture(
        &out.stdout_text(),
        "nltest_sc_verify_ok.txt",
        &[("dc01.contoso.com", &bound)],
    );
    // Trailing spaces as nltest's printf leaves them.
    assert!(out
        .stdout_text()
        .starts_with("Flags: b0 HAS_IP  HAS_TIMESERV \r\nTrusted DC Name \\\\"));
    let out = lab.execute(id, &who, "nltest.exe /SC_RESET:LAB", b"");
    assert_matches_capture(
        &out.stdout_text(),
        "nltest_sc_reset_ok.txt",
        &[("dc10.domain.example", &bound)],
    );
    let out = lab.execute(id, &who, "nltest /query", b"");
    assert_matches_capture(&out.stdout_text(), "nltest_query_ok.txt", &[]);

    let snap = Lab::build(LabSpec::healthy(2, 21).with_fault(lab::faults::FaultKind::Snapshot, 1))
        .unwrap();
    let sid = first_with(&snap, lab::faults::FaultKind::Snapshot);
    let swho = local_admin(&snap, sid);
    let out = snap.execute(sid, &swho, "nltest /sc_query:lab.test", b"");
    assert_matches_capture(
        &out.stdout_text(),
        "nltest_sc_query_broken_password_access_denied_5.txt",
        &[],
    );

    let nodc =
        Lab::build(LabSpec::healthy(2, 21).with_fault(lab::faults::FaultKind::NoDc, 1)).unwrap();
    let nid = first_with(&nodc, lab::faults::FaultKind::NoDc);
    let nwho = local_admin(&nodc, nid);
    let out = nodc.execute(nid, &nwho, "nltest /query", b"");
    assert_matches_capture(
        &out.stdout_text(),
        "nltest_query_no_logon_servers_1311.txt",
        &[],
    );
}

#[test]
fn nltest_not_elevated_and_errors() {
    let (lab, id, _who) = lab();
    // opsadmin's token is filtered (not elevated). Over WinRM it gets 401 before any
    // command runs (pywinrm #188); a filtered session is made directly here to see what
    // nltest itself does without elevation.
    assert!(matches!(
        lab.logon(id, "", "opsadmin"),
        lab::model::Logon::Reject(lab::model::RejectReason::FilteredToken)
    ));
    let computer = lab.host(id).unwrap().computer_name;
    let ops = lab::model::Identity::Local {
        host: id,
        computer,
        name: "opsadmin".into(),
        rid: 1001,
    };
    let out = lab.execute(id, &ops, "nltest /sc_verify:lab.test", b"");
    assert_eq!(out.stdout, b"");
    assert_eq!(
        out.stderr_text(),
        "I_NetLogonControl failed: Status = 5 0x5 ERROR_ACCESS_DENIED\r\n"
    );
    assert_eq!(out.exit_code, 1);
    let who = local_admin(&lab, id);
    let out = lab.execute(id, &who, "nltest /sc_verify:other.example", b"");
    assert_eq!(
        out.stderr_text(),
        "I_NetLogonControl failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\r\n"
    );
    // In a PowerShell variable with 2>&1 the stderr line becomes an ErrorRecord.
    let out = run(
        &lab,
        id,
        &ops,
        "$nl = nltest.exe \"/sc_verify:lab.test\" 2>&1\nWrite-Output \"exit=$LASTEXITCODE\"\n$nl",
        b"",
    );
    let text = out.stdout_text();
    assert!(text.starts_with("exit=1\r\nnltest.exe : I_NetLogonControl failed: Status = 5 0x5 ERROR_ACCESS_DENIED\r\nAt line:1 char:7\r\n"), "{text}");
    assert!(text.contains("NativeCommandError"));
}

#[test]
fn powershell_cli_abbreviations_and_stdin() {
    let (lab, id, who) = lab();
    let enc = lab::exec::encode_command("Write-Output 'hi'");
    for flag in [
        "-EncodedCommand",
        "-enc",
        "-e",
        "-ec",
        "-ENCODEDCOMMAND",
        "-en",
    ] {
        let out = lab.execute(
            id,
            &who,
            &format!("powershell.exe -NoProfile -NonInteractive {flag} {enc}"),
            b"",
        );
        assert_eq!(out.stdout_text(), "hi\r\n", "{flag}");
    }
    let out = lab.execute(
        id,
        &who,
        "PowerShell -NoP -NonI -Command \"Write-Output 'x y'\"",
        b"",
    );
    assert_eq!(out.stdout_text(), "x y\r\n");
    let script = "$lines = @($input)\nWrite-Output $lines.Count\nWrite-Output $lines[1]\nWrite-Output \"again=$(@($input).Count)\"";
    assert!(Lab::reads_stdin(&ps_line(script)));
    assert!(!Lab::reads_stdin(&ps_line("Write-Output 1")));
    assert!(!Lab::reads_stdin("hostname"));
    let out = run(&lab, id, &who, script, b"first\r\nsecond\r\n");
    assert_eq!(out.stdout_text(), "2\r\nsecond\r\nagain=0\r\n");
}

#[test]
fn powershell_subset_semantics() {
    let (lab, id, who) = lab();
    let name = lab.host(id).unwrap().computer_name;
    let script = r#"$cs = Get-CimInstance -ClassName Win32_ComputerSystem
Write-Output "$cs.Name"
Write-Output "$($cs.Name)"
$a = 'x'; $b = "y$a"; $a + $b
$true; $false; $null
$arr = @('p', 'q'); $arr
"n=" + $arr.Count
(Get-CimInstance -ClassName Win32_OperatingSystem).Caption
$os = Get-CimInstance Win32_OperatingSystem; $os.LastBootUpTime
if ($cs.PartOfDomain -eq $true) { 'joined' } else { 'workgroup' }
$ErrorActionPreference = 'Stop'
try { Get-ItemProperty -Path 'HKLM:\Nope' } catch { "err: $($_.Exception.Message)" }
"#;
    let out = run(&lab, id, &who, script, b"");
    let lines: Vec<String> = out.stdout_text().split("\r\n").map(String::from).collect();
    assert_eq!(
        lines[0],
        format!("Win32_ComputerSystem (Name = \"{name}\").Name")
    );
    assert_eq!(lines[1], name);
    assert_eq!(lines[2], "xyx");
    assert_eq!(&lines[3..5], ["True", "False"]);
    assert_eq!(&lines[5..7], ["p", "q"]);
    assert_eq!(lines[7], "n=2");
    assert!(lines[8].starts_with("Microsoft Windows"));
    assert_eq!(lines[9], "11/01/2025 00:00:00");
    assert_eq!(lines[10], "joined");
    assert_eq!(
        lines[11],
        "err: Cannot find path 'HKLM:\\Nope' because it does not exist."
    );
    assert!(out.stderr.is_empty(), "{}", clixml_text(&out.stderr));
    assert_eq!(out.exit_code, 0);
    // exit codes
    assert_eq!(run(&lab, id, &who, "exit 3", b"").exit_code, 3);
    assert_eq!(run(&lab, id, &who, "Write-Error 'boom'", b"").exit_code, 1);
    // Parse errors.
    let out = run(&lab, id, &who, "Write-Output 'unterminated", b"");
    assert_eq!(out.exit_code, 1);
    assert!(clixml_text(&out.stderr).contains("The string is missing the terminator"));
}

#[test]
fn credential_errors_from_empty_stdin() {
    let (lab, id, who) = lab();
    let out = run(&lab, id, &who, &repair_reset("dc1.lab.test"), b"");
    let err = error_text(&out.stderr);
    assert!(err.contains("ConvertTo-SecureString : Cannot bind argument to parameter 'String' because it is null."), "{err}");
    assert_eq!(
        out.stdout_text(),
        "ts.reset_error=Cannot validate argument on parameter 'Credential'. The argument is null or empty. Provide an argument that is not null or empty, and then try the command again.\r\n"
    );
}

#[test]
fn every_spelling_of_powershell_is_powershell() {
    // The start-up delay applies to any spelling a client uses (issue 10).
    for line in [
        "powershell -NoProfile -Command 1",
        "PowerShell.exe -NoProfile -Command 1",
        "POWERSHELL.EXE -EncodedCommand AA==",
        "%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -Command 1",
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.exe -NoProfile",
        "\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -NoProfile",
        "cmd /c powershell.exe -Command 1",
    ] {
        assert!(lab::exec::starts_powershell(line), "{line}");
    }
    for line in [
        "nltest /sc_query:lab.test",
        "cmd /c nltest /query",
        "pwsh -Command 1",
        "powershell_ise.exe",
        "",
    ] {
        assert!(!lab::exec::starts_powershell(line), "{line}");
    }
}
