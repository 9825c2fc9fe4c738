//! Stdin into PowerShell as on Windows (DOMAIN.md "WinRM details that decide whether a
//! command works"): piped stdin (`WINRS_CONSOLEMODE_STDIN=FALSE`) fills `$input`, a console
//! (TRUE, or the option absent) leaves it empty; bytes are decoded with
//! `[Console]::InputEncoding`, the OEM code page 437 unless the script sets UTF-8.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use lab::model::{Lab, LabSpec, StdinMode};

const ECHO_INPUT: &str =
    "$lines = @($input)\nWrite-Output \"first=$($lines[0])|second=$($lines[1])\"\n";
const UTF8_FIRST: &str = "[Console]::InputEncoding = New-Object System.Text.UTF8Encoding $false\n";

fn lab_and_host() -> (Lab, lab::host::HostId) {
    let lab = Lab::build(LabSpec::healthy(2, 11)).unwrap();
    let id = first_healthy(&lab);
    (lab, id)
}

#[test]
fn piped_stdin_reaches_input_and_a_console_leaves_it_empty() {
    let (lab, id) = lab_and_host();
    let who = local_admin(&lab, id);
    let line = ps_line(ECHO_INPUT);
    let piped = lab.execute_with(id, &who, &line, b"alice\r\nsecret\r\n", StdinMode::Pipe);
    assert_eq!(piped.stdout_text(), "first=alice|second=secret\r\n");
    let console = lab.execute_with(id, &who, &line, b"alice\r\nsecret\r\n", StdinMode::Console);
    assert_eq!(
        console.stdout_text(),
        "first=|second=\r\n",
        "a console is not a redirect: $input is empty"
    );
}

#[test]
fn non_ascii_stdin_needs_utf8_input_encoding() {
    let (lab, id) = lab_and_host();
    let who = local_admin(&lab, id);
    let stdin = "Pässwörd€\r\nx\r\n".as_bytes();
    // Default: the OEM code page (437) turns UTF-8 bytes of non-ASCII characters to mojibake.
    let oem = lab.execute_with(id, &who, &ps_line(ECHO_INPUT), stdin, StdinMode::Pipe);
    assert_eq!(oem.stdout_text(), "first=P├ñssw├╢rdΓé¼|second=x\r\n");
    // Set before $input is read, as Ansible's bootstrap does: decoded as UTF-8.
    let utf8 = lab.execute_with(
        id,
        &who,
        &ps_line(&format!("{UTF8_FIRST}{ECHO_INPUT}")),
        stdin,
        StdinMode::Pipe,
    );
    assert_eq!(utf8.stdout_text(), "first=Pässwörd€|second=x\r\n");
    // Only stdin not yet read is affected.
    let late = lab.execute_with(
        id,
        &who,
        &ps_line(&format!(
            "$lines = @($input)\n{UTF8_FIRST}Write-Output \"first=$($lines[0])\"\n"
        )),
        stdin,
        StdinMode::Pipe,
    );
    assert_eq!(late.stdout_text(), "first=P├ñssw├╢rdΓé¼\r\n");
}

#[test]
fn input_encoding_takes_an_encoding_only() {
    let (lab, id) = lab_and_host();
    let who = local_admin(&lab, id);
    let out = lab.execute(
        id,
        &who,
        &ps_line("[Console]::InputEncoding = 'utf-8'\nWrite-Output 'after'\n"),
        b"",
    );
    assert!(
        clixml_text(&out.stderr).contains("Exception setting \"InputEncoding\""),
        "{}",
        clixml_text(&out.stderr)
    );
    assert_eq!(out.stdout_text(), "after\r\n", "statement-terminating only");
    let out = lab.execute(id, &who, &ps_line("[Frob]::InputEncoding = $null\n"), b"");
    assert!(
        clixml_text(&out.stderr).contains("Unable to find type [Frob]."),
        "{}",
        clixml_text(&out.stderr)
    );
}

#[tokio::test]
async fn over_the_wire_the_command_options_decide() {
    // Our client sends WINRS_CONSOLEMODE_STDIN=FALSE with stdin (MS-WSMV 3.1.4.11), so a
    // credential script reads its stdin on the lab exactly as on Windows.
    use secrecy::ExposeSecret;
    let lab = Lab::build(LabSpec::healthy(1, 11)).unwrap();
    let running = lab::wire::RunningLab::start(lab, lab::wire::WireOptions::default())
        .await
        .unwrap();
    let ep = running.endpoints()[0].clone();
    let cfg = winrm::session::SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            winrm::transport::Scheme::Http,
        ),
        winrm::transport::AuthMethod::Ntlm,
        ep.info.local_admin.user.clone(),
        winrm::secret::secret(ep.info.local_admin.password.expose_secret()),
    );
    let mut s = winrm::session::Session::new(cfg).unwrap();
    let out = s
        .run_powershell(
            &format!("{UTF8_FIRST}{ECHO_INPUT}"),
            Some("Jörg\r\nPässwörd€\r\n".as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "first=Jörg|second=Pässwörd€\r\n");
    s.close().await.unwrap();
}
