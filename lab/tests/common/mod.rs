#![allow(dead_code)]

use lab::exec::encode_command;
use lab::host::HostId;
use lab::model::{Credential, ExecResult, Identity, Lab, Logon};
use secrecy::ExposeSecret;

/// The probe trustsweep sends (`playbooks::scripts::PROBE`): the same file, included here
/// because the lab may not depend on playbooks, not even in its tests.
pub const PROBE: &str = include_str!("../../../playbooks/scripts/probe.ps1");

/// `Test-ComputerSecureChannel -Server <dc>` alone, as the old per-DC test sent it.
pub fn test_dc(dc: &str) -> String {
    format!(
        "$r = Test-ComputerSecureChannel -Server '{dc}' -ErrorAction SilentlyContinue -ErrorVariable e\nWrite-Output \"ts.tcsc=$r\"\nWrite-Output \"ts.tcsc_error=$e\"\n"
    )
}

/// A short credential preamble (user and password from stdin, no stdin encoding line) for
/// the hand-written variants these tests run; some assert line numbers that count on its
/// three lines. What trustsweep sends is [`credential_script`]'s.
pub const CRED_PREAMBLE: &str = "$ProgressPreference = 'SilentlyContinue'\n$lines = @($input)\n$cred = New-Object System.Management.Automation.PSCredential($lines[0], (ConvertTo-SecureString $lines[1] -AsPlainText -Force))\n";

/// A credential script as trustsweep sends it: its preamble
/// (`playbooks/scripts/credential_preamble.ps1`), then `template` (a file of
/// `playbooks/scripts/`) with its `{{name}}` placeholders filled.
fn credential_script(template: &str, params: &[(&str, &str)]) -> String {
    let mut body = template.to_string();
    for (name, value) in params {
        body = body.replace(&format!("{{{{{name}}}}}"), value);
    }
    let preamble = include_str!("../../../playbooks/scripts/credential_preamble.ps1");
    format!("{preamble}{body}")
}

/// `playbooks::scripts::reset_machine_password(Some(dc))`.
pub fn repair_reset(dc: &str) -> String {
    credential_script(
        include_str!("../../../playbooks/scripts/reset_machine_password.ps1"),
        &[("server", &format!("-Server '{dc}' "))],
    )
}

pub fn repair_tcsc() -> String {
    format!(
        "{CRED_PREAMBLE}try {{ $ok = Test-ComputerSecureChannel -Repair -Credential $cred -ErrorAction Stop; Write-Output \"ts.repair=$ok\" }} catch {{ Write-Output \"ts.repair_error=$($_.Exception.Message)\" }}\n"
    )
}

/// `playbooks::scripts::rejoin_leave()`.
pub fn unjoin() -> String {
    credential_script(
        include_str!("../../../playbooks/scripts/rejoin_leave.ps1"),
        &[],
    )
}

/// `playbooks::scripts::rejoin_join("lab.test", Some(dc), None)`.
pub fn rejoin(dc: &str) -> String {
    credential_script(
        include_str!("../../../playbooks/scripts/rejoin_join.ps1"),
        &[
            ("domain", "'lab.test'"),
            ("server", &format!("-Server '{dc}' ")),
            ("ou", ""),
        ],
    )
}

pub fn ps_line(script: &str) -> String {
    format!(
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
        encode_command(script)
    )
}

pub fn stdin_for(c: &Credential) -> Vec<u8> {
    format!("{}\r\n{}\r\n", c.user, c.password.expose_secret()).into_bytes()
}

/// Logs on as the host's local admin (built-in Administrator unless filtered-admin).
pub fn local_admin(lab: &Lab, id: HostId) -> Identity {
    let info = lab.host(id).expect("host");
    let user = info.builtin_admin.user.clone();
    match lab.logon(id, "", &user) {
        Logon::Verify { identity, .. } => identity,
        other => panic!("local admin logon refused: {other:?}"),
    }
}

pub fn domain_identity(lab: &Lab, id: HostId, user: &str) -> Option<Identity> {
    match lab.logon(id, "LAB", user) {
        Logon::Verify { identity, .. } => Some(identity),
        Logon::Reject(_) => None,
    }
}

pub fn run(lab: &Lab, id: HostId, who: &Identity, script: &str, stdin: &[u8]) -> ExecResult {
    lab.execute(id, who, &ps_line(script), stdin)
}

/// Value of `ts.key=` in stdout.
pub fn field(out: &ExecResult, key: &str) -> Option<String> {
    let text = out.stdout_text();
    let prefix = format!("ts.{key}=");
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// Lines between `--- name` and `--- end`.
pub fn section(out: &ExecResult, name: &str) -> Vec<String> {
    let text = out.stdout_text();
    let mut lines = text.split("\r\n");
    let start = format!("--- {name}");
    let mut found = Vec::new();
    for l in lines.by_ref() {
        if l == start {
            break;
        }
    }
    for l in lines {
        if l == "--- end" {
            break;
        }
        found.push(l.to_string());
    }
    found
}

pub fn first_with(lab: &Lab, fault: lab::faults::FaultKind) -> HostId {
    lab.hosts()
        .into_iter()
        .find(|h| h.fault == Some(fault))
        .expect("host with fault")
        .id
}

pub fn first_healthy(lab: &Lab) -> HostId {
    lab.hosts()
        .into_iter()
        .find(|h| h.fault.is_none())
        .expect("healthy host")
        .id
}

/// Decodes a `#< CLIXML` stderr into the text lines PowerShell would have printed
/// (what pywinrm's `_clean_error_msg` does). Plain stderr is returned as-is.
pub fn clixml_text(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr).into_owned();
    let Some(body) = s.strip_prefix("#< CLIXML\r\n") else {
        return s;
    };
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("<S S=\"") {
        rest = &rest[i..];
        let close = rest.find('>').unwrap();
        let end = rest.find("</S>").unwrap();
        let text = &rest[close + 1..end];
        out.push_str(
            &text
                .replace("_x000D_", "\r")
                .replace("_x000A_", "\n")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
        rest = &rest[end + 4..];
    }
    out
}

/// CLIXML text with wrapped lines joined back (for substring assertions).
pub fn error_text(stderr: &[u8]) -> String {
    clixml_text(stderr)
        .replace(" \r\n", " ")
        .replace("\r\n", "\n")
}
