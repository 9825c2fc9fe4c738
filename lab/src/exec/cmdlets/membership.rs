//! Domain membership: `Remove-Computer`, `Add-Computer` and `Restart-Computer`.

use super::{credential_arg, err, host_name, Bound, CmdOutcome, Engine, ErrorRecord, PsCred};
use secrecy::SecretString;

use crate::domain::{
    DcIndex, DomainUser, Ownership, ReuseVerdict, ACCOUNT_REUSE_BLOCKED_MESSAGE,
    MACHINE_ACCOUNT_QUOTA_EXCEEDED_MESSAGE,
};
use crate::host::{Host, Membership, PowerState};

/// The end of a membership change (which took effect: counted, and a `reboot-mid-rejoin`
/// fault may strike, see [`crate::midrepair`]): with `-Restart` the host restarts now;
/// without, the cmdlet warns that the change takes effect at the next restart.
fn restart_or_warn(eng: &mut Engine<'_, '_>, b: &Bound, me: &str) -> CmdOutcome {
    let restarting = b.switch("Restart");
    let (host, now) = (eng.env.host, eng.env.now);
    if restarting {
        reboot(eng);
    }
    eng.env.st.after_destructive(
        host,
        now,
        crate::midrepair::Destructive::MembershipChange { restarting },
    );
    if restarting {
        return CmdOutcome::none();
    }
    CmdOutcome {
        warnings: vec![format!(
            "The changes will take effect after you restart the computer {me}."
        )],
        ..CmdOutcome::default()
    }
}

fn reboot(eng: &mut Engine<'_, '_>) {
    let until = eng.env.now.saturating_add(eng.env.st.reboot_duration);
    if let Some(h) = eng.env.st.host_mut(eng.env.host) {
        h.power = PowerState::Rebooting { until };
        h.last_boot = until;
    }
    rotate_laps_after_join(eng, until);
}

/// Windows LAPS after a join: at the restart that completes it, the device rotates the
/// managed password (the built-in Administrator's) and writes the new one to the computer
/// object it is now joined with (the object of its name; `msLAPS-Password`, Microsoft's
/// Windows LAPS schema). Modelled as done within the restart: the old password stops
/// working and the directory holds the new one by the time the host answers again, so a
/// caller that kept the old one gets 401 and must read LAPS again (DOMAIN.md "Repairing
/// it"). The lab rotates after every join, also one that reused an object (pessimistic:
/// see [`crate::model::LabSpec::laps`]).
fn rotate_laps_after_join(eng: &mut Engine<'_, '_>, at: crate::domain::LabTime) {
    let due = eng
        .env
        .st
        .host(eng.env.host)
        .is_some_and(|h| h.laps && h.laps_rotate_at_boot && h.joined());
    if !due {
        return;
    }
    let new = eng.env.st.new_password(16);
    let Some(h) = eng.env.st.host_mut(eng.env.host) else {
        return;
    };
    h.laps_rotate_at_boot = false;
    let (computer, dc) = (h.computer_name.clone(), h.bound_dc);
    let Some(admin) = h.local_accounts.iter_mut().find(|a| a.rid == 500) else {
        return;
    };
    admin.password = new.clone();
    if let Some(dir) = eng.env.st.domain.directory.clone() {
        let updated = crate::domain::filetime_at(at);
        let expires = updated.saturating_add(30 * crate::domain::FILETIME_DAY);
        if let Err(e) = dir.write_laps(&computer, dc, "Administrator", &new, updated, expires) {
            tracing::warn!(computer, "LAPS write to the Samba DC failed: {e}");
        }
    }
}

/// `Remove-Computer [-UnjoinDomainCredential c] [-WorkgroupName w] [-Force] [-Restart]`,
/// as Computer.cs (RemoveComputerCommand) runs it on the local machine (DOMAIN.md
/// "Repairing it", revised):
/// - without `-Force` it asks `ShouldContinue` (the RemoveComputerConfirm prompt) first;
///   under `-NonInteractive` the host throws PowerShell's "NonInteractive mode" error (a
///   real 5.1 capture of another cmdlet's `ShouldContinue` under `-NonInteractive`:
///   `Remove-Item`, category InvalidOperation, PSInvalidOperationException). Without
///   `-NonInteractive` the lab takes the unanswerable prompt as declined: nothing changes
///   (unverified);
/// - then NetUnjoinDomain with NETSETUP_ACCT_DELETE, which *disables* the computer object
///   on a DC with the credential's rights; without a credential with the session's own,
///   and a WinRM network logon has none on the DC (a local account is unknown there, a
///   domain account cannot be delegated: the double hop), so the disable fails with
///   Access is denied, the unjoin with it, and the host stays joined (inferred from the
///   cmdlet retrying locally only for 1355/53; pessimistic: nothing is gained);
/// - with the domain unreachable (1355 ERROR_NO_SUCH_DOMAIN / 53 ERROR_BAD_NETPATH) and
///   `-Force` it retries without NETSETUP_ACCT_DELETE: a local unjoin only, the object is
///   left as it was;
/// - afterwards the host is in a workgroup: domain logons fail (no channel), only local
///   accounts reach it.
///
/// Error texts: PowerShell's FailToUnjoinDomain resource string (fixture
/// `remove_computer_unjoin_failed_UNVERIFIED.txt`; no capture exists).
pub(super) fn remove_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Remove-Computer";
    let me = host_name(eng);
    let cred = match credential_arg(C, b, "UnjoinDomainCredential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    if !b.switch("Force") {
        if eng.env.non_interactive {
            return CmdOutcome::terminate(ErrorRecord {
                exception_type: "System.Management.Automation.PSInvalidOperationException"
                    .into(),
                ..err(
                    C,
                    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.".into(),
                    "InvalidOperation",
                    "InvalidOperation",
                    "",
                    "PSInvalidOperationException",
                )
            });
        }
        return CmdOutcome::none();
    }
    let domain = eng.env.st.domain.dns_name.clone();
    if !h.joined() {
        return CmdOutcome::error(err(
            C,
            format!("Cannot remove computer '{me}' because it is not in a domain."),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    let fail = |msg: &str| {
        CmdOutcome::error(err(
            C,
            format!("Failed to unjoin computer '{me}' from domain '{domain}' with the following error message: {msg}."),
            "FailToUnjoinDomain",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ))
    };
    if !eng.env.elevated {
        return fail("Access is denied");
    }
    match h.effective_dc() {
        // 1355: no DC found. With -Force (always given here) the cmdlet unjoins locally
        // only; the computer object stays enabled (DOMAIN.md "Repairing it", revised).
        None => {}
        Some(dc) => {
            if let Err(msg) = disable_on_dc(eng, &h, dc, cred.as_ref()) {
                return fail(msg);
            }
        }
    }
    let workgroup = b.str("WorkgroupName").unwrap_or_else(|| "WORKGROUP".into());
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        hm.membership = Membership::Workgroup(workgroup.to_ascii_uppercase());
        hm.secret = None;
        hm.old_secret = None;
    }
    restart_or_warn(eng, b, &me)
}

/// `Add-Computer -DomainName d -Credential c [-Server dc] [-OUPath ou] [-Force] [-Restart]`
/// (NetJoinDomain with NETSETUP_JOIN_DOMAIN | NETSETUP_ACCT_CREATE):
/// - an existing object of the computer's name is reused only when KB5020276's check
///   allows it ([`crate::domain::Domain::reuse_verdict`]); otherwise the join fails with
///   0xaac NERR_AccountReuseBlockedByPolicy (2732) and nothing changes on the DC or the
///   host (Microsoft's NetSetup.log: `NetpModifyComputerObjectInDs: Account exists and
///   re-use is blocked by policy. Error: 0xaac`, then `NetpDoDomainJoin: status: 0xaac`;
///   fixtures `netsetup_log_account_reuse_blocked_0xaac.txt` and
///   `join_domain_dialog_account_reuse_blocked_0xaac.txt`; the cmdlet's wrapping of it is
///   inferred, `add_computer_account_reuse_blocked_0xaac_UNVERIFIED.txt`). A reused object
///   gets an administrative password set, is enabled again and stays where it is;
/// - no object: one is created in `CN=Computers` (or `-OUPath`), owned by the joining
///   account, with `mS-DS-CreatorSID` when that account is not a Domain Admin; a
///   non-admin may create only `ms-DS-MachineAccountQuota` of them (8557
///   ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED, Microsoft's message text);
/// - the join sets the channel up with the DC it wrote.
pub(super) fn add_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Add-Computer";
    let me = host_name(eng);
    let target = b.str("DomainName").unwrap_or_default();
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    if h.joined() && eng.env.st.domain.is_named(&target) {
        return CmdOutcome::error(err(
            C,
            format!("Cannot add computer '{me}' to domain '{target}' because it is already in that domain."),
            "AddComputerToSameDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    let workgroup = h.workgroup().unwrap_or("WORKGROUP").to_string();
    let fail = |msg: &str| {
        let text = if h.joined() {
            format!("Computer '{me}' was successfully unjoined from domain '{target}', but failed to join the new domain '{target}' with the following error message: {msg}.")
        } else {
            format!("Computer '{me}' failed to join domain '{target}' from its current workgroup '{workgroup}' with following error message: {msg}.")
        };
        CmdOutcome::error(err(
            C,
            text,
            "FailToJoinDomainFromWorkgroup",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ))
    };
    if !eng.env.elevated {
        return fail("Access is denied");
    }
    let dc = match join_dc(eng, &h, b.str("Server"), &target) {
        Ok(dc) => dc,
        Err(msg) => return fail(msg),
    };
    let user = match domain_user(eng, cred.as_ref()) {
        Ok(u) => u,
        Err(msg) => return fail(msg),
    };
    let now = eng.env.now;
    let exists = eng.env.st.domain.view(&h.computer_name, dc, now).is_some();
    let written = if exists {
        reuse_account(eng, &h, dc, &user)
    } else {
        create_account(eng, &h, dc, &user, b.str("OUPath"))
    };
    let new = match written {
        Ok(new) => new,
        Err(msg) => return fail(msg),
    };
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        hm.membership = Membership::Domain;
        hm.secret = Some(new);
        hm.old_secret = None;
        hm.bound_dc = dc;
        hm.laps_rotate_at_boot = hm.laps;
    }
    // The join sets the channel up with the DC it wrote.
    eng.env.st.use_channel(eng.env.host, Some(dc), now);
    restart_or_warn(eng, b, &me)
}

pub(super) fn restart_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Restart-Computer";
    let me = host_name(eng);
    if let Some(target) = b.str("ComputerName") {
        let label = target.split('.').next().unwrap_or(&target).to_string();
        if !label.eq_ignore_ascii_case(&me)
            && !label.eq_ignore_ascii_case("localhost")
            && target != "."
        {
            return CmdOutcome::error(err(
                C,
                format!("Failed to restart the computer {target} with the following error message: The RPC server is unavailable. "),
                "RestartcomputerFailed",
                "OperationStopped",
                &target,
                "InvalidOperationException",
            ));
        }
    }
    if !eng.env.elevated {
        return CmdOutcome::error(err(
            C,
            format!("Failed to restart the computer {me} with the following error message: Access is denied. "),
            "RestartcomputerFailed",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    reboot(eng);
    CmdOutcome::none()
}

const NO_SUCH_DOMAIN: &str = "The specified domain either does not exist or could not be contacted";

/// The DC the join writes to: `-Server` (a DC of the domain the host reaches), else the
/// host's own. Err: the join's error message.
fn join_dc(
    eng: &Engine<'_, '_>,
    h: &Host,
    server: Option<String>,
    target: &str,
) -> Result<DcIndex, &'static str> {
    let server = match server {
        Some(s) => Some(eng.env.st.domain.dc_by_name(&s).ok_or(NO_SUCH_DOMAIN)?),
        None => None,
    };
    if !eng.env.st.domain.is_named(target) {
        return Err(NO_SUCH_DOMAIN);
    }
    match server {
        Some(dc) if h.reaches(dc) => Ok(dc),
        Some(_) => Err(NO_SUCH_DOMAIN),
        None => h.effective_dc().ok_or(NO_SUCH_DOMAIN),
    }
}

/// Reuses the existing computer object, when KB5020276's check allows it: an
/// administrative password set, enabled again. Err: the join's error message.
fn reuse_account(
    eng: &mut Engine<'_, '_>,
    h: &Host,
    dc: DcIndex,
    user: &DomainUser,
) -> Result<SecretString, &'static str> {
    let now = eng.env.now;
    let user_sid = eng.env.st.domain.user_sid(user);
    // KB5020276: the DC decides from the object's owner and mS-DS-CreatorSID first
    // (NetSetup.log: NetpGetADObjectOwnerAttributes, then the policy check).
    let verdict = if let Some(d) = eng.env.st.domain.directory.clone() {
        // Samba 4.17 does not implement the block: the lab applies Windows' rule to
        // what the real DC holds (an unreadable object is refused, pessimistically).
        match d.reuse_allowed(&h.computer_name, dc, &user_sid) {
            Ok(true) => ReuseVerdict::PrivilegedOwner,
            _ => ReuseVerdict::Blocked,
        }
    } else {
        match eng.env.st.domain.ownership(&h.computer_name) {
            Some(own) => eng.env.st.domain.reuse_verdict(own, user),
            None => ReuseVerdict::Blocked,
        }
    };
    if !verdict.allowed() {
        return Err(ACCOUNT_REUSE_BLOCKED_MESSAGE.trim_end_matches('.'));
    }
    // The creator of a quota-made object may write it; others need the delegated
    // rights (Reset Password and the rest of what the join writes).
    if !user.can_reset_computers() && verdict != ReuseVerdict::Creator {
        return Err("Access is denied");
    }
    let new = eng.env.st.new_password(120);
    eng.env
        .st
        .domain
        .write_password(&h.computer_name, dc, now, new.clone(), true);
    eng.env
        .st
        .domain
        .set_enabled(&h.computer_name, dc, now, true);
    Ok(new)
}

/// Creates the computer object in `CN=Computers` (or `-OUPath`), owned by the joining
/// account (with `mS-DS-CreatorSID` for a non-admin, within the machine account quota).
/// Err: the join's error message.
fn create_account(
    eng: &mut Engine<'_, '_>,
    h: &Host,
    dc: DcIndex,
    user: &DomainUser,
    ou_path: Option<String>,
) -> Result<SecretString, &'static str> {
    let now = eng.env.now;
    let user_sid = eng.env.st.domain.user_sid(user);
    if !user.domain_admin {
        let quota = usize::try_from(eng.env.st.domain.machine_account_quota).unwrap_or(0);
        if eng.env.st.domain.created_by(&user_sid) >= quota {
            return Err(MACHINE_ACCOUNT_QUOTA_EXCEEDED_MESSAGE.trim_end_matches('.'));
        }
    }
    let container = ou_path.unwrap_or_else(|| eng.env.st.domain.computers_container());
    let ownership = Ownership {
        dn: format!("CN={},{container}", h.computer_name.to_ascii_uppercase()),
        owner_sid: user_sid.clone(),
        creator_sid: (!user.domain_admin).then_some(user_sid),
    };
    let new = eng.env.st.new_password(120);
    if !eng
        .env
        .st
        .domain
        .create_joined_computer(&h.computer_name, dc, now, new.clone(), ownership)
    {
        return Err(NO_SUCH_DOMAIN);
    }
    Ok(new)
}

/// The domain account a join or unjoin acts as: the credential's, checked by the DC.
/// Without one, the session's, which has none on the DC over WinRM (the double hop).
/// Err: the cmdlet's error message.
fn domain_user(eng: &Engine<'_, '_>, cred: Option<&PsCred>) -> Result<DomainUser, &'static str> {
    let Some(cred) = cred else {
        return Err("Access is denied");
    };
    eng.env
        .st
        .domain
        .check_credential(&cred.user, &cred.password)
        .cloned()
        .map_err(|e| e.windows_text())
}

/// NETSETUP_ACCT_DELETE: disables the computer object on the DC, with the credential's
/// rights or, without one, the session's (none on the DC over WinRM). Err: the unjoin's
/// error message.
fn disable_on_dc(
    eng: &mut Engine<'_, '_>,
    h: &Host,
    dc: DcIndex,
    cred: Option<&PsCred>,
) -> Result<(), &'static str> {
    let user = domain_user(eng, cred)?;
    let own = eng.env.st.domain.ownership(&h.computer_name).cloned();
    let creator = own.as_ref().and_then(|o| o.creator_sid.clone());
    let is_creator = creator.is_some_and(|c| c == eng.env.st.domain.user_sid(&user));
    if !user.can_reset_computers() && !is_creator {
        return Err("Access is denied");
    }
    // A missing object (deleted on the DCs) has nothing to disable; the lab lets
    // the unjoin go on (no capture says otherwise).
    let now = eng.env.now;
    eng.env
        .st
        .domain
        .set_enabled(&h.computer_name, dc, now, false);
    Ok(())
}
