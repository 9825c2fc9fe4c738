#![allow(dead_code)]

use lab::exec::encode_command;
use lab::host::HostId;
use lab::model::{Credential, ExecResult, Identity, Lab, Logon};
use secrecy::ExposeSecret;

/// The probe trustsweep sends (`playbooks::scripts::PROBE`; the lab may not depend on
/// playbooks, so the text is repeated here and checked against it by `tests/`).
pub const PROBE: &str = r#"$ProgressPreference = 'SilentlyContinue'
$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$domain = $cs.Domain
Write-Output "ts.name=$($cs.Name)"
Write-Output "ts.domain=$domain"
Write-Output "ts.part_of_domain=$($cs.PartOfDomain)"
Write-Output "ts.domain_role=$($cs.DomainRole)"
Write-Output "ts.user=$(whoami.exe)"
$admin = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=True AND SID LIKE 'S-1-5-21-%-500'"
Write-Output "ts.admin_sid=$($admin.SID)"
if ($cs.PartOfDomain -and $cs.DomainRole -lt 4) {
    $tcsc = Test-ComputerSecureChannel -ErrorAction SilentlyContinue -ErrorVariable tcscErr
    Write-Output "ts.tcsc=$tcsc"
    Write-Output "ts.tcsc_error=$tcscErr"
    $out = nltest.exe "/sc_query:$domain" 2>&1
    Write-Output "ts.sc_query_exit=$LASTEXITCODE"
    Write-Output '--- sc_query'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/sc_verify:$domain" 2>&1
    Write-Output "ts.sc_verify_exit=$LASTEXITCODE"
    Write-Output '--- sc_verify'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/dsgetdc:$domain" /force 2>&1
    Write-Output '--- dsgetdc'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/dsgetdc:$domain" /pdc 2>&1
    Write-Output '--- dsgetdc_pdc'
    $out
    Write-Output '--- end'
    $ev = Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'NETLOGON'; Id = 3210, 5719 } -MaxEvents 10 -ErrorAction SilentlyContinue
    foreach ($e in $ev) {
        Write-Output "ts.event=$($e.Id)|$($e.TimeCreated.ToFileTimeUtc())|$($e.Properties[0].Value)|$($e.Properties[1].Value)"
    }
}
"#;

/// `Test-ComputerSecureChannel -Server <dc>` alone, as the old per-DC test sent it.
pub fn test_dc(dc: &str) -> String {
    format!(
        "$r = Test-ComputerSecureChannel -Server '{dc}' -ErrorAction SilentlyContinue -ErrorVariable e\nWrite-Output \"ts.tcsc=$r\"\nWrite-Output \"ts.tcsc_error=$e\"\n"
    )
}

pub const CRED_PREAMBLE: &str = "$ProgressPreference = 'SilentlyContinue'\n$lines = @($input)\n$cred = New-Object System.Management.Automation.PSCredential($lines[0], (ConvertTo-SecureString $lines[1] -AsPlainText -Force))\n";

pub fn repair_reset(dc: &str) -> String {
    format!(
        "{CRED_PREAMBLE}try {{ Reset-ComputerMachinePassword -Server '{dc}' -Credential $cred -ErrorAction Stop; Write-Output 'ts.reset=ok' }} catch {{ Write-Output \"ts.reset_error=$($_.Exception.Message)\" }}\n"
    )
}

pub fn repair_tcsc() -> String {
    format!(
        "{CRED_PREAMBLE}try {{ $ok = Test-ComputerSecureChannel -Repair -Credential $cred -ErrorAction Stop; Write-Output \"ts.repair=$ok\" }} catch {{ Write-Output \"ts.repair_error=$($_.Exception.Message)\" }}\n"
    )
}

pub fn unjoin() -> String {
    format!("{CRED_PREAMBLE}Remove-Computer -UnjoinDomainCredential $cred -WorkgroupName WORKGROUP -Force; Restart-Computer -Force\n")
}

pub fn rejoin(dc: &str) -> String {
    format!("{CRED_PREAMBLE}Add-Computer -DomainName 'lab.test' -Credential $cred -Server '{dc}' -Force; Restart-Computer -Force\n")
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
