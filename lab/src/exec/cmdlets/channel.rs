//! The secure channel cmdlets: `Test-ComputerSecureChannel [-Repair]` and
//! `Reset-ComputerMachinePassword`, and the account reset both run.

use super::{
    credential_arg, err, host_name, Bound, CmdOutcome, Engine, ErrorRecord, PsCred, Value,
};
use crate::domain::{DcIndex, DomainUser, WriteRefused};
use crate::host::Host;

/// Resolves `-Server` (BeginProcessing: `Dns.GetHostEntry`).
fn resolve_server(
    eng: &Engine<'_, '_>,
    cmdlet: &str,
    server: &str,
) -> Result<DcIndex, ErrorRecord> {
    let s = if server == "." { "localhost" } else { server };
    resolve_dc(eng, s).ok_or_else(|| resolve_error(cmdlet, s))
}

/// Does the lab's DNS know `name` (a DC, a member, `localhost`)? What
/// `Test-ComputerSecureChannel -Server` checks with `Dns.GetHostEntry` before it ignores
/// the value (Computer.cs).
fn resolves(eng: &Engine<'_, '_>, name: &str) -> bool {
    let n = name.trim_start_matches('\\');
    let label = n.split('.').next().unwrap_or(n);
    n.eq_ignore_ascii_case("localhost")
        || eng.env.st.domain.dc_by_name(n).is_some()
        || eng.env.st.hosts.iter().any(|h| {
            h.address.eq_ignore_ascii_case(n)
                || h.computer_name.eq_ignore_ascii_case(label) && !n.contains('.')
        })
}

fn resolve_dc(eng: &Engine<'_, '_>, name: &str) -> Option<DcIndex> {
    eng.env.st.domain.dc_by_name(name)
}

fn resolve_error(cmdlet: &str, s: &str) -> ErrorRecord {
    ErrorRecord {
        exception_type: "System.InvalidOperationException".into(),
        ..err(
            cmdlet,
            format!(
                "Computer name {s} cannot be resolved with the exception: No such host is known."
            ),
            "AddressResolutionException",
            "InvalidArgument",
            s,
            "InvalidOperationException",
        )
    }
}

/// Why the reset failed on the domain side: the exception text of
/// `FailToResetPasswordOnDomain` (COM/DirectoryServices texts keep their CRLF).
const NOT_OPERATIONAL: &str = "The server is not operational.\r\n";
const NO_SUCH_DOMAIN: &str =
    "The specified domain either does not exist or could not be contacted.\r\n";
const OPERATIONS_ERROR: &str = "An operations error occurred.\r\n";
const BAD_CREDENTIAL: &str = "The user name or password is incorrect.\r\n";
/// Win32 1909 ERROR_ACCOUNT_LOCKED_OUT, as a cmdlet prints it.
const LOCKED_OUT: &str =
    "The referenced account is currently locked out and may not be logged on to.\r\n";
const ACCESS_DENIED: &str =
    "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))";

/// `ResetMachineAccountPassword`: LDAP bind with the credential on `-Server` (or a DC of
/// the domain), `SetPassword` on the computer object, then the LSA secret.
fn reset_machine_account(
    eng: &mut Engine<'_, '_>,
    cmdlet: &str,
    server: Option<DcIndex>,
    cred: Option<&PsCred>,
) -> Result<DcIndex, ErrorRecord> {
    // An LDAP bind, the password set, and Netlogon authenticating with the new password.
    eng.env.work.dc_round_trips = eng.env.work.dc_round_trips.saturating_add(3);
    let me = host_name(eng);
    let on_domain = |msg: &str| -> ErrorRecord {
        err(
            cmdlet,
            format!("Cannot reset the secure channel password for the computer account in the domain. Operation failed with the following exception: {msg}."),
            "FailToResetPasswordOnDomain",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        )
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return Err(on_domain(NOT_OPERATIONAL));
    };
    // A `winrm-restart` fault strikes before the cmdlet runs ([`crate::midrepair`]): the
    // process dies with the service and nothing is reset (nobody sees this error).
    if !eng.env.st.before_reset(eng.env.host, eng.env.now) {
        return Err(on_domain(NOT_OPERATIONAL));
    }
    let dc = reset_dc(&h, server).map_err(on_domain)?;
    // Without -Credential the LDAP bind uses the session's identity, which a WinRM
    // network logon cannot delegate (double hop).
    let Some(cred) = cred else {
        return Err(on_domain(OPERATIONS_ERROR));
    };
    let lab_user = bind_as(eng, dc, cred).map_err(on_domain)?;
    if eng
        .env
        .st
        .domain
        .view(&h.computer_name, dc, eng.env.now)
        .is_none()
    {
        return Err(err(
            cmdlet,
            account_not_found(eng, dc, server.is_some()),
            "CannotFindMachineAccount",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    if lab_user.is_some_and(|u| !u.can_reset_computers()) {
        return Err(on_domain(ACCESS_DENIED));
    }
    let new = eng.env.st.new_password(120);
    let now = eng.env.now;
    match eng.env.st.domain.reset_password_as(
        &h.computer_name,
        dc,
        now,
        new.clone(),
        &cred.user,
        &cred.password,
    ) {
        Ok(()) => {}
        Err(WriteRefused::AccessDenied) => return Err(on_domain(ACCESS_DENIED)),
        Err(WriteRefused::BadCredentials) => return Err(on_domain(BAD_CREDENTIAL)),
        Err(_) => return Err(on_domain(NOT_OPERATIONAL)),
    }
    if !eng.env.elevated {
        return Err(err(
            cmdlet,
            "Administrator rights are required to reset the secure channel password on the local computer. Access is denied.".into(),
            "UnauthorizedAccessException",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        // The LSA secret keeps the value it replaces as the previous one. Netlogon's
        // binding and stored status stay as they were: the cmdlet does not rebind
        // (DOMAIN.md "Repairing it", revised; Computer.cs), so a member bound to a DC that
        // lacks the new password stays broken until replication or `nltest /sc_reset`.
        hm.old_secret = hm.secret.replace(new);
    }
    // Counted; `drop-after-reset` or `dc-away-mid-repair` may strike now.
    let (host, now) = (eng.env.host, eng.env.now);
    eng.env.st.after_destructive(
        host,
        now,
        crate::midrepair::Destructive::PasswordReset { dc },
    );
    Ok(dc)
}

/// The DC the reset writes to: `-Server` when the host reaches it, else the host's own.
fn reset_dc(h: &Host, server: Option<DcIndex>) -> Result<DcIndex, &'static str> {
    match server {
        Some(dc) if h.reaches(dc) => Ok(dc),
        Some(_) => Err(NOT_OPERATIONAL),
        None => h.effective_dc().ok_or(NO_SUCH_DOMAIN),
    }
}

/// The LDAP bind as the credential. In memory the lab checks the credential and its rights
/// against its user table (the user comes back for the rights check); real DCs check both
/// themselves (a bind as the credential, then the write's access check).
fn bind_as(
    eng: &Engine<'_, '_>,
    dc: DcIndex,
    cred: &PsCred,
) -> Result<Option<DomainUser>, &'static str> {
    match eng.env.st.domain.directory.clone() {
        None => match eng
            .env
            .st
            .domain
            .check_credential(&cred.user, &cred.password)
        {
            Ok(u) => Ok(Some(u.clone())),
            Err(crate::domain::CredentialError::LockedOut) => Err(LOCKED_OUT),
            Err(crate::domain::CredentialError::BadCredentials) => Err(BAD_CREDENTIAL),
        },
        Some(d) => {
            let Some(bind) = eng.env.st.domain.bind_name(&cred.user) else {
                return Err(BAD_CREDENTIAL);
            };
            match d.credential_valid(dc, &bind, &cred.password) {
                Ok(true) => Ok(None),
                Ok(false) => Err(BAD_CREDENTIAL),
                Err(e) => {
                    tracing::warn!(dc, "Samba credential check failed: {e}");
                    Err(NOT_OPERATIONAL)
                }
            }
        }
    }
}

/// `CannotFindMachineAccount`'s text: from the named DC, or in the domain.
fn account_not_found(eng: &Engine<'_, '_>, dc: DcIndex, server_named: bool) -> String {
    if server_named {
        let dc_fqdn = eng
            .env
            .st
            .domain
            .dcs
            .get(dc)
            .map(|d| d.fqdn.clone())
            .unwrap_or_default();
        format!("Cannot find the computer account for the local computer from the domain controller {dc_fqdn}.")
    } else {
        format!(
            "Cannot find the computer account for the local computer in the domain {}.",
            eng.env.st.domain.dns_name
        )
    }
}

pub(super) fn test_secure_channel(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Test-ComputerSecureChannel";
    // A challenge and an authenticate on the channel's DC (priced by the latency profile).
    let work = &mut eng.env.work;
    work.secure_channel_tests = work.secure_channel_tests.saturating_add(1);
    work.dc_round_trips = work.dc_round_trips.saturating_add(2);
    let me = host_name(eng);
    let server = match b.str("Server") {
        Some(s) if !resolves(eng, if s == "." { "localhost" } else { &s }) => {
            return CmdOutcome::terminate(resolve_error(C, if s == "." { "localhost" } else { &s }))
        }
        // A name that resolves but is no DC: -Repair cannot reset there (the LDAP bind
        // fails); without -Repair the value is not used at all.
        Some(s) => resolve_dc(eng, &s),
        None => None,
    };
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    let domain = eng.env.st.domain.dns_name.clone();
    let mut verbose = vec![format!(
        "Performing the operation \"Test-ComputerSecureChannel\" on target \"{me}\"."
    )];
    if !h.joined() {
        return CmdOutcome::terminate(err(
            C,
            "Cannot verify the secure channel password for the local computer. The local computer is not currently part of a domain.".into(),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    if b.switch("Repair") {
        return repair_channel(eng, server, cred.as_ref(), &domain, verbose);
    }
    if h.domain_controller {
        // On a DC the cmdlet's TC_QUERY for its own domain fails (real capture
        // `test_computersecurechannel_verbose_on_dc_1355.txt`).
        return CmdOutcome::terminate(err(
            C,
            "Cannot verify the secure channel for the local computer. Operation failed with the following exception: The specified domain either does not exist or could not be contacted.".into(),
            "FailToTestSecureChannel",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    // Without -Repair: Netlogon's stored status (TC_QUERY, `pdc_connection_status`), the
    // result of the channel's last use; `-Server` was only resolved above (DOMAIN.md
    // "Testing the channel", revised; Computer.cs TestComputerSecureChannelCommand).
    let _ = server;
    let ok = eng.env.st.stored_channel(&h, eng.env.now).pdc_status == 0;
    verbose.push(if ok {
        format!("The secure channel between the local computer and the domain {domain} is in good condition.")
    } else {
        format!("The Secure channel between the local computer and the domain {domain} is broken.")
    });
    CmdOutcome {
        output: vec![Value::Bool(ok)],
        verbose,
        ..CmdOutcome::default()
    }
}

pub(super) fn reset_machine_password(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Reset-ComputerMachinePassword";
    let me = host_name(eng);
    let server = match b.str("Server") {
        Some(s) => match resolve_server(eng, C, &s) {
            Ok(dc) => Some(dc),
            Err(e) => return CmdOutcome::terminate(e),
        },
        None => None,
    };
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    if !eng.env.st.host(eng.env.host).is_some_and(|h| h.joined()) {
        return CmdOutcome::terminate(err(
            C,
            "Cannot reset the secure channel password for the account of the local computer. The local computer is not currently part of a domain."
                .into(),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    match reset_machine_account(eng, C, server, cred.as_ref()) {
        Ok(_) => CmdOutcome::none(),
        Err(e) => CmdOutcome::terminate(e),
    }
}

/// `Test-ComputerSecureChannel -Repair`: the account reset, then a rediscovery.
fn repair_channel(
    eng: &mut Engine<'_, '_>,
    server: Option<DcIndex>,
    cred: Option<&PsCred>,
    domain: &str,
    mut verbose: Vec<String>,
) -> CmdOutcome {
    match reset_machine_account(eng, "Test-ComputerSecureChannel", server, cred) {
        Ok(_) => {
            // Then NETLOGON_CONTROL_REDISCOVER for the domain with no DC named: the
            // locator's DC, not necessarily the one just written; True when a DC name
            // comes back, whatever the connection status (DOMAIN.md "Repairing it",
            // revised; Computer.cs). A member that cannot be rediscovered stays as is.
            let now = eng.env.now;
            let id = eng.env.host;
            let found = match eng.env.st.host(id).and_then(|h| h.locate()) {
                Some(dc) => eng.env.st.use_channel(id, Some(dc), now).dc().is_some(),
                None => false,
            };
            if found {
                verbose.push(format!("The secure channel between the local computer and the domain {domain} was successfully repaired."));
            } else {
                verbose.push(format!("The secure channel between the local computer and the domain {domain} was not repaired."));
            }
            CmdOutcome {
                output: vec![Value::Bool(found)],
                verbose,
                ..CmdOutcome::default()
            }
        }
        Err(mut e) => {
            e.fqid = e.fqid.replace(
                "ResetComputerMachinePasswordCommand",
                "TestComputerSecureChannelCommand",
            );
            CmdOutcome::terminate(e)
        }
    }
}
