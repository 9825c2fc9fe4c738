//! The exact commands trustsweep sends to a host: Windows PowerShell 5.1 scripts and `cmd`
//! lines. The lab interprets exactly these statements, so they change only together with
//! it. Only DC, domain and computer names are parameters; they are validated as host names
//! (so nothing can be injected into a `cmd` line) and single-quoted in PowerShell. Secrets
//! never appear here: credential scripts read `user` and `password` from stdin
//! ([`crate::StdinPayload`]).
//!
//! The PowerShell text lives in `playbooks/scripts/*.ps1`, one file a script, loaded with
//! `include_str!` (the lab's tests run the same files). A template's parameters are
//! placeholders in the text, filled here after validation: `{{server}}` is `-Server '<dc>' `
//! or nothing, `{{domain}}` a quoted domain name, `{{ou}}` `-OUPath '<dn>' ` or nothing.

/// A name given to a script builder is not a plain DNS/NetBIOS host or domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {value:?}: expected a host or domain name (letters, digits, '-', '.', '_')"
)]
pub struct ScriptError {
    /// Which parameter (`"DC name"`, `"domain"`, `"computer name"`).
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
}

/// One PowerShell start per host: name, domain, `DomainRole`, who we are, the machine SID
/// (via the RID-500 account); on a member (not a DC) the stored channel status first
/// (`Test-ComputerSecureChannel` and `nltest /sc_query`, Netlogon's TC_QUERY: the result
/// of the channel's last use), then the live test (`nltest /sc_verify`, which may
/// rediscover and rebind a DC), then the DC locator (`/dsgetdc /force`) and its PDC
/// (`/dsgetdc /pdc`). Parsed by [`crate::probe::parse_probe`].
pub const PROBE: &str = include_str!("../scripts/probe.ps1");

/// The first lines of every credential script: the credential comes from stdin (line 1
/// user, line 2 password), so it is never on the command line. Stdin is decoded as UTF-8
/// without BOM, set before `$input` is read as Ansible's bootstrap does; PowerShell would
/// otherwise decode it with the OEM code page and garble a non-ASCII password (DOMAIN.md
/// "WinRM details"). The client sends such scripts with `WINRS_CONSOLEMODE_STDIN=FALSE`.
const CREDENTIAL_PREAMBLE: &str = include_str!("../scripts/credential_preamble.ps1");

/// Is `s` a plain host/domain name: letters, digits, `-`, `.`, `_`, not starting with `-`
/// or `.`, at most 255 characters?
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn checked<'a>(what: &'static str, value: &'a str) -> Result<&'a str, ScriptError> {
    if is_valid_name(value) {
        Ok(value)
    } else {
        Err(ScriptError {
            what,
            value: value.to_string(),
        })
    }
}

/// A PowerShell single-quoted string literal: `'` (and the typographic single quotes
/// PowerShell also accepts as quote characters) are escaped by doubling.
pub fn ps_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The credential preamble, then `template` with each `{{name}}` placeholder replaced by
/// its (already validated and quoted) value. Every credential script wraps its statement
/// in `try { .. } catch { Write-Output "ts.reset_error=.." }`.
fn credential_script(template: &str, params: &[(&str, &str)]) -> String {
    format!("{CREDENTIAL_PREAMBLE}{}", fill(template, params))
}

/// `template` with each `{{name}}` replaced by its value, in one pass (a value is never
/// scanned for placeholders). A `{{` that names no parameter is kept as it is.
fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let value = from.get(2..).and_then(|after| {
            let end = after.find("}}")?;
            let name = after.get(..end)?;
            let (_, value) = params.iter().find(|(n, _)| *n == name)?;
            Some((*value, end + 4))
        });
        match value {
            Some((value, len)) => {
                out.push_str(value);
                rest = from.get(len..).unwrap_or_default();
            }
            None => {
                out.push_str("{{");
                rest = from.get(2..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// `-Server '<dc>' ` for a validated DC name, nothing without one.
fn server_param(server: Option<&str>) -> Result<String, ScriptError> {
    Ok(match server {
        Some(dc) => format!("-Server {} ", ps_quote(checked("DC name", dc)?)),
        None => String::new(),
    })
}

/// `Reset-ComputerMachinePassword [-Server <dc>] -Credential $cred` (credential on stdin).
/// Prints `ts.reset=ok` or `ts.reset_error=<message>`.
pub fn reset_machine_password(server: Option<&str>) -> Result<String, ScriptError> {
    Ok(credential_script(
        include_str!("../scripts/reset_machine_password.ps1"),
        &[("server", &server_param(server)?)],
    ))
}

/// `Test-ComputerSecureChannel -Repair [-Server <dc>] -Credential $cred` (credential on
/// stdin): the fallback when `Reset-ComputerMachinePassword` fails. It resets through
/// `-Server`, then lets Netlogon rediscover *any* DC; its `True` only says a DC was found
/// (DOMAIN.md "Repairing it", revised), so the caller binds and verifies live. On success
/// it also prints the cmdlet's own `True`/`False` before `ts.reset=ok`.
pub fn repair_secure_channel(server: Option<&str>) -> Result<String, ScriptError> {
    Ok(credential_script(
        include_str!("../scripts/repair_secure_channel.ps1"),
        &[("server", &server_param(server)?)],
    ))
}

/// Rejoin, first half: leave to the workgroup `WORKGROUP`, then restart. `ts.reset=ok` is
/// printed before the restart so it reaches us before the connection drops.
pub fn rejoin_leave() -> String {
    credential_script(include_str!("../scripts/rejoin_leave.ps1"), &[])
}

/// Rejoin, second half: join `domain` through `server`, into `ou` when given (the
/// object's OU, kept with `-OUPath`), then restart.
pub fn rejoin_join(
    domain: &str,
    server: Option<&str>,
    ou: Option<&str>,
) -> Result<String, ScriptError> {
    let domain = ps_quote(checked("domain", domain)?);
    let server = server_param(server)?;
    let ou = match ou {
        Some(dn) if is_valid_dn(dn) => format!("-OUPath {} ", ps_quote(dn)),
        Some(dn) => {
            return Err(ScriptError {
                what: "OU",
                value: dn.to_string(),
            })
        }
        None => String::new(),
    };
    Ok(credential_script(
        include_str!("../scripts/rejoin_join.ps1"),
        &[("domain", &domain), ("server", &server), ("ou", &ou)],
    ))
}

/// A distinguished name fit for a single-quoted argument: `OU=…,DC=…` components, no
/// control characters, at most 1024 characters.
pub fn is_valid_dn(dn: &str) -> bool {
    !dn.is_empty()
        && dn.len() <= 1024
        && !dn.chars().any(char::is_control)
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        })
}

/// `nltest /sc_reset:<domain>\<dc>`: re-establish the channel with the existing secret,
/// pinned to `dc` (the stale-DC fix: bind to a DC that has the current password). Parsed by [`crate::probe::parse_nltest`].
pub fn sc_reset(domain: &str, dc: &str) -> Result<String, ScriptError> {
    Ok(format!(
        "nltest /sc_reset:{}\\{}",
        checked("domain", domain)?,
        checked("DC name", dc)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_single_quotes() {
        assert_eq!(ps_quote("o'brien"), "'o''brien'");
        assert_eq!(ps_quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_name("dc1.lab.test"));
        assert!(is_valid_name("DC1"));
        assert!(!is_valid_name("dc1 & calc"));
        assert!(!is_valid_name("-x"));
        assert!(sc_reset("lab.test", "dc1|x").is_err());
    }

    #[test]
    fn placeholders_fill_in_one_pass() {
        let params = [("a", "{{b}}"), ("b", "x")];
        assert_eq!(fill("{{a}}-{{b}}-{{c}}-{{", &params), "{{b}}-x-{{c}}-{{");
        assert_eq!(fill("", &params), "");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let scripts = [
            reset_machine_password(None).unwrap(),
            reset_machine_password(Some("dc1")).unwrap(),
            repair_secure_channel(Some("dc1")).unwrap(),
            rejoin_leave(),
            rejoin_join("lab.test", Some("dc1"), Some("OU=W,DC=lab,DC=test")).unwrap(),
            rejoin_join("lab.test", None, None).unwrap(),
        ];
        for s in scripts {
            assert!(!s.contains("{{"), "{s}");
            assert!(s.starts_with(CREDENTIAL_PREAMBLE), "{s}");
            assert!(s.ends_with("}\n"), "{s}");
        }
    }
}
