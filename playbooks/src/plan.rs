//! Planning: from a [`Finding`] to the ordered [`Action`]s `repair` would take on that
//! host, with why, what needs a reboot and what extra permission or person is needed. Pure;
//! `trustsweep plan` stops here. The actions form a ladder, lightest first (DOMAIN.md,
//! issue 4): each one is tried only if the host still does not verify after the previous.
//!
//! 1. stale DC (DC-side evidence): `nltest /sc_reset:<domain>\<DC with the newest password>`;
//! 2. stale password: `Reset-ComputerMachinePassword -Server <PDC>` (the PDC from the DC
//!    locator, voted per domain by [`crate::fleet_pdcs`]) with the domain credential over
//!    stdin (then pinning the channel to that DC if it does not verify yet), falling back
//!    to `Test-ComputerSecureChannel -Repair`;
//! 3. still broken and `allow_rejoin`: leave, reboot, join, reboot (also for a deleted
//!    account, or 1787 "disabled or missing");
//! 4. name twins and SID duplicates: [`Action::RebuildRequired`], never a reset;
//! 5. everything no member change can fix (a disabled account, DNS, firewall, a domain
//!    controller, a refused credential): no action, and `needs` says who must do what;
//! 6. Credential Manager caching is never an action, only mentioned in `why`.
//!
//! [`Action::DcResetAccount`] is never planned from inference (a 401 is not evidence of a
//! broken trust): only for hosts an admin names (`--dc-reset-host`, in
//! [`PlanOptions::dc_reset_hosts`]) with `--allow-dc-reset` and DC access, never for a
//! healthy host, a DC or a name twin.
//!
//! Every action carries the exact command it sends (DC names filled in); none carries a
//! password: credential scripts read it from stdin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnose::{Diagnosis, Finding, HostObservation};
use crate::probe::Probe;
use crate::scripts;

/// What the operator allows and has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// `--allow-rejoin`: leave and rejoin the domain (two reboots) as a last resort.
    pub allow_rejoin: bool,
    /// `--allow-dc-reset`: reset computer accounts on a DC for hosts nobody can get into.
    pub allow_dc_reset: bool,
    /// `--allow-enable`: re-enable disabled computer accounts over LDAPS.
    #[serde(default)]
    pub allow_enable: bool,
    /// A domain account that may reset machine passwords was given (`--repair-user`).
    pub repair_credential_available: bool,
    /// The PDC emulator of each domain (lower-case DNS domain → DC), to pin resets to:
    /// [`crate::fleet_pdcs`], plus what LDAP's `fSMORoleOwner` says. Else the probe's own
    /// locator answer.
    #[serde(default)]
    pub pdcs: BTreeMap<String, String>,
    /// The sweep can reach the DCs over LDAPS (`--ldap`): needed for DC-side actions.
    pub dc_access: bool,
    /// Hosts (inventory names, any case) an admin named for a DC-side reset
    /// (`--dc-reset-host`).
    #[serde(default)]
    pub dc_reset_hosts: Vec<String>,
    /// What the rejoin preflight found over LDAP, by inventory name (lower case). A host
    /// without an entry gets no rejoin: without it `Add-Computer` may meet the account
    /// reuse block after `Remove-Computer` has already disabled the object.
    #[serde(default)]
    pub rejoin_preflight: BTreeMap<String, RejoinPreflight>,
    /// `--allow-restore`: restore deleted computer objects from the AD Recycle Bin over
    /// LDAPS as the repair account.
    #[serde(default)]
    pub allow_restore: bool,
    /// What the restore preflight found over LDAP, by inventory name (lower case): is the
    /// deleted object in the Recycle Bin with its password? A host without an entry gets
    /// no restore.
    #[serde(default)]
    pub restore_preflight: BTreeMap<String, RestorePreflight>,
}

/// Whether restoring a deleted computer object brings the member's channel back: only an
/// object in the AD Recycle Bin (feature enabled, not yet recycled) keeps its password; a
/// tombstone does not (DOMAIN.md "Why a trust breaks"; MS-ADTS 3.1.1.5.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePreflight {
    /// A restore heals the member.
    pub restorable: bool,
    /// Why, in words, for the plan.
    pub reason: String,
    /// The DC that was read (the restore is done there, then the member is pinned to it).
    pub dc: Option<String>,
}

/// Whether `Add-Computer` will be allowed to take over a host's computer object
/// (KB5020276: the joining account created it, or its owner is Domain Admins, Enterprise
/// Admins, built-in Administrators or a member, or the owner is on the re-use allow-list),
/// read over LDAP before anything is changed (DOMAIN.md "Repairing it", revised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejoinPreflight {
    /// The join will be allowed (or no object exists and the join creates one).
    pub join_allowed: bool,
    /// Why, in words, for the plan.
    pub reason: String,
    /// The object's OU (its parent DN), kept with `Add-Computer -OUPath`; `None` when no
    /// object exists (a new one lands in the default computers container).
    pub ou: Option<String>,
}

/// Where an action runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Target {
    /// On the member itself ([`crate::repair_host`]).
    Member,
    /// On this domain controller, over LDAPS as the repair account ([`crate::repair_on_dc`]).
    DomainController {
        /// The DC.
        dc: String,
    },
    /// By a person; the tool runs nothing.
    Manual,
}

/// One repair step, with the exact command it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `nltest /sc_reset:<domain>\<dc>` (`run_cmd`): rebind the channel to a DC that has
    /// the current password.
    ScReset {
        /// The domain.
        domain: String,
        /// The DC to pin to.
        dc: String,
        /// The command line.
        command: String,
    },
    /// `Reset-ComputerMachinePassword -Server <server> -Credential` (credential on stdin).
    ResetMachinePassword {
        /// The DC that takes the new password.
        server: Option<String>,
        /// The PowerShell script.
        script: String,
        /// Run after every successful reset, before the verify: `nltest
        /// /sc_reset:<domain>\<server>`. The cmdlet does not rebind Netlogon, so a member
        /// bound to a DC the new password has not replicated to stays broken until bound to
        /// the DC written (DOMAIN.md "Repairing it", revised). `None` only when the DC or
        /// the domain is unknown.
        pin_command: Option<String>,
    },
    /// `Test-ComputerSecureChannel -Repair -Server <server> -Credential` (credential on
    /// stdin). Its `True` only says Netlogon rediscovered *some* DC, so it is followed by the
    /// same bind and a live verify.
    RepairSecureChannel {
        /// The DC that takes the new password.
        server: Option<String>,
        /// The PowerShell script.
        script: String,
        /// `nltest /sc_reset:<domain>\<server>`, run after the script succeeded.
        pin_command: Option<String>,
    },
    /// Leave to a workgroup, reboot, join, reboot (credential on stdin for both scripts).
    Rejoin {
        /// The domain to rejoin.
        domain: String,
        /// The DC that performs the join.
        server: Option<String>,
        /// `Remove-Computer … ; Restart-Computer -Force`.
        leave_script: String,
        /// `Add-Computer … ; Restart-Computer -Force`.
        join_script: String,
    },
    /// DC-side "Reset Account" of the computer object (ADUC, `dsmod computer -reset`),
    /// done over LDAPS by the repair account ([`crate::Directory`]): a new random password
    /// replaces `unicodePwd`. The member stays broken until it is rejoined; a reboot does
    /// not restore it.
    DcResetAccount {
        /// The DC to write on.
        dc: String,
        /// The computer (sAMAccountName without `$`).
        computer: String,
    },
    /// Re-enable a disabled computer object on a DC over LDAPS as the repair account
    /// (clear ACCOUNTDISABLE in `userAccountControl`): the member needs no change, its
    /// password is still the DC's (DOMAIN.md "The secure channel"). Followed by a pin
    /// ([`Action::ScReset`]) to that DC and a live verify.
    EnableAccount {
        /// The DC to write on.
        dc: String,
        /// The computer (sAMAccountName without `$`).
        computer: String,
    },
    /// Restore a deleted computer object from the AD Recycle Bin on a DC over LDAPS as the
    /// repair account (MS-ADTS 3.1.1.5.3.7.3: remove `isDeleted`, restore its DN): its SID,
    /// groups and password come back, so the member needs no change. Followed by a pin
    /// ([`Action::ScReset`]) to that DC and a live verify.
    RestoreAccount {
        /// The DC to write on.
        dc: String,
        /// The computer (sAMAccountName without `$`).
        computer: String,
    },
    /// A name twin or SID duplicate: a person rebuilds (or renames) one machine. Never a
    /// reset (for a name twin it breaks the other machine).
    RebuildRequired {
        /// The other inventory hosts sharing its SID or name.
        twins: Vec<String>,
    },
}

impl Action {
    /// The snake_case name used in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Action::ScReset { .. } => "sc_reset",
            Action::ResetMachinePassword { .. } => "reset_machine_password",
            Action::RepairSecureChannel { .. } => "repair_secure_channel",
            Action::Rejoin { .. } => "rejoin",
            Action::DcResetAccount { .. } => "dc_reset_account",
            Action::EnableAccount { .. } => "enable_account",
            Action::RestoreAccount { .. } => "restore_account",
            Action::RebuildRequired { .. } => "rebuild_required",
        }
    }

    /// Where it runs.
    pub fn target(&self) -> Target {
        match self {
            Action::DcResetAccount { dc, .. }
            | Action::EnableAccount { dc, .. }
            | Action::RestoreAccount { dc, .. } => Target::DomainController { dc: dc.clone() },
            Action::RebuildRequired { .. } => Target::Manual,
            _ => Target::Member,
        }
    }

    /// Does it reboot the host?
    pub fn reboots(&self) -> bool {
        matches!(self, Action::Rejoin { .. })
    }

    /// Does it send the repair credential (over stdin)?
    pub fn uses_credential(&self) -> bool {
        matches!(
            self,
            Action::ResetMachinePassword { .. }
                | Action::RepairSecureChannel { .. }
                | Action::Rejoin { .. }
        )
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        match self {
            Action::ScReset { command, .. } => command.clone(),
            Action::ResetMachinePassword { server, .. } => match server {
                Some(s) => format!(
                    "Reset-ComputerMachinePassword -Server {s} -Credential <repair account>"
                ),
                None => "Reset-ComputerMachinePassword -Credential <repair account>".to_string(),
            },
            Action::RepairSecureChannel { server, .. } => match server {
                Some(s) => format!(
                    "Test-ComputerSecureChannel -Repair -Server {s} -Credential <repair account>"
                ),
                None => {
                    "Test-ComputerSecureChannel -Repair -Credential <repair account>".to_string()
                }
            },
            Action::Rejoin { domain, .. } => {
                format!("rejoin {domain}: Remove-Computer, restart, Add-Computer, restart")
            }
            Action::DcResetAccount { dc, computer } => format!(
                "on {dc}, over LDAPS as the repair account: reset the password of computer account {computer}$ (ADUC's Reset Account)"
            ),
            Action::EnableAccount { dc, computer } => format!(
                "on {dc}, over LDAPS as the repair account: re-enable computer account {computer}$"
            ),
            Action::RestoreAccount { dc, computer } => format!(
                "on {dc}, over LDAPS as the repair account: restore computer account {computer}$ from the AD Recycle Bin"
            ),
            Action::RebuildRequired { twins } => {
                format!("rebuild required (twins: {})", twins.join(", "))
            }
        }
    }
}

/// What `repair` would do on one host, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlan {
    /// The inventory name.
    pub host: String,
    /// The diagnosis planned for.
    pub diagnosis: Diagnosis,
    /// The ladder, in order.
    pub actions: Vec<Action>,
    /// Why these actions (or none).
    pub why: String,
    /// Some planned action (possibly a fallback) reboots the host.
    pub needs_reboot: bool,
    /// Extra permissions, people or conditions needed.
    pub needs: Vec<String>,
}

impl HostPlan {
    /// Would `repair` change anything on this host or its account?
    pub fn changes_anything(&self) -> bool {
        self.actions.iter().any(|a| a.target() != Target::Manual)
    }

    /// Actions that run on the member.
    pub fn member_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.target() == Target::Member)
    }
}

const CREDENTIAL_NEED: &str =
    "a domain account with the Reset Password right on the computer object (--repair-user, TRUSTSWEEP_REPAIR_PASSWORD)";
const CREDMAN_NOTE: &str = "Manual bridge only, never applied: a domain credential cached in Credential Manager lets a user log on meanwhile; it fixes nothing.";

/// The DC resets are pinned to: this host's domain's PDC from the fleet vote (or LDAP),
/// else the PDC its own DC locator named, else the DC it is bound to.
fn reset_server(probe: Option<&Probe>, options: &PlanOptions) -> Option<String> {
    probe
        .and_then(|p| options.pdcs.get(&p.domain_key()).cloned())
        .or_else(|| probe.and_then(|p| p.pdc().map(str::to_string)))
        .or_else(|| probe.and_then(|p| p.trusted_dc().map(str::to_string)))
        .filter(|s| scripts::is_valid_name(s))
}

/// The domain of a joined host.
fn member_domain(probe: Option<&Probe>) -> Option<String> {
    probe
        .filter(|p| p.part_of_domain != Some(false))
        .map(|p| p.domain.clone())
        .filter(|d| scripts::is_valid_name(d))
}

struct Builder {
    actions: Vec<Action>,
    why: Vec<String>,
    needs: Vec<String>,
    /// The inventory name.
    host: String,
    /// The probe ran over WinRM as a local account of the host: the kind of logon that
    /// still works once the host is in a workgroup.
    local_logon: bool,
}

impl Builder {
    fn need(&mut self, n: impl Into<String>) {
        let n = n.into();
        if !self.needs.contains(&n) {
            self.needs.push(n);
        }
    }

    /// Reset (pinned), fallback `-Repair`, then rejoin when allowed.
    fn reset_ladder(
        &mut self,
        server: Option<String>,
        domain: Option<&str>,
        options: &PlanOptions,
    ) {
        if !options.repair_credential_available {
            self.need(CREDENTIAL_NEED);
            self.why.push(
                "Nothing runs without the repair account: the reset and the rejoin both need it."
                    .to_string(),
            );
            return;
        }
        let pin_command = match (domain, server.as_deref()) {
            (Some(d), Some(s)) => scripts::sc_reset(d, s).ok(),
            _ => None,
        };
        match scripts::reset_machine_password(server.as_deref()) {
            Ok(script) => {
                self.actions.push(Action::ResetMachinePassword {
                    server: server.clone(),
                    script,
                    pin_command: pin_command.clone(),
                });
            }
            Err(e) => self
                .why
                .push(format!("Reset-ComputerMachinePassword not planned: {e}.")),
        }
        match scripts::repair_secure_channel(server.as_deref()) {
            Ok(script) => self.actions.push(Action::RepairSecureChannel {
                server: server.clone(),
                script,
                pin_command,
            }),
            Err(e) => self.why.push(format!(
                "Test-ComputerSecureChannel -Repair not planned: {e}."
            )),
        }
        self.rejoin(server, domain, options);
    }

    /// The Recycle Bin restore (`--allow-restore`, DC access, the repair account, and a
    /// preflight that found the object restorable with its password), then a pin to the DC
    /// written. Returns whether it was planned; says what is missing when not.
    fn restore(
        &mut self,
        probe: Option<&Probe>,
        domain: Option<&str>,
        options: &PlanOptions,
    ) -> bool {
        if !options.allow_restore {
            self.need("--allow-restore (with --ldap), to restore the computer object from the AD Recycle Bin as the repair account");
            return false;
        }
        if !options.dc_access {
            self.need("--ldap, to restore the computer object over LDAPS");
            return false;
        }
        if !options.repair_credential_available {
            self.need(CREDENTIAL_NEED);
            return false;
        }
        let Some(pre) = options
            .restore_preflight
            .get(&self.host.to_ascii_lowercase())
        else {
            self.why.push("Restore not planned: the DCs could not tell whether the object is in the AD Recycle Bin.".to_string());
            return false;
        };
        if !pre.restorable {
            self.why
                .push(format!("Restore not planned: {}.", pre.reason));
            return false;
        }
        let computer = probe
            .map(|p| p.computer_name.clone())
            .filter(|n| scripts::is_valid_name(n));
        let (Some(dc), Some(computer)) = (pre.dc.clone(), computer) else {
            self.why
                .push("Restore not planned: the DC or the computer name is not known.".to_string());
            return false;
        };
        self.actions.push(Action::RestoreAccount {
            dc: dc.clone(),
            computer,
        });
        if let Some(command) = domain.and_then(|d| scripts::sc_reset(d, &dc).ok()) {
            self.actions.push(Action::ScReset {
                domain: domain.unwrap_or_default().to_string(),
                dc,
                command,
            });
        }
        self.why.push(format!("Preflight: {}.", pre.reason));
        true
    }

    /// The rejoin, planned only when it cannot strand the host: `--allow-rejoin`; the
    /// connection is a local account that has just logged on over WinRM (not inferred from
    /// its name: CIS policies, FilterAdministratorToken or LAPS can refuse it), so the host
    /// stays reachable in a workgroup; and an LDAP preflight says `Add-Computer` will be
    /// allowed, with the OU kept (DOMAIN.md "Repairing it", revised: `Remove-Computer`
    /// always disables the object first).
    fn rejoin(&mut self, server: Option<String>, domain: Option<&str>, options: &PlanOptions) {
        if !options.allow_rejoin {
            self.need("--allow-rejoin, to fall back to a rejoin (two reboots) if the lighter fixes do not verify");
            return;
        }
        let Some(domain) = domain else {
            self.need("the host's domain name, for a rejoin");
            return;
        };
        if !self.local_logon {
            self.why.push("Rejoin not planned: the sweep did not log on with a local account of the host, and only a local account reaches it once it has left the domain.".to_string());
            self.need("a local administrator credential (the built-in Administrator or LAPS) for a rejoin");
            return;
        }
        let Some(pre) = options
            .rejoin_preflight
            .get(&self.host.to_ascii_lowercase())
        else {
            self.why.push("Rejoin not planned: without DC access (--ldap) nothing checks that Add-Computer will be allowed to reuse the computer object (KB5020276), and Remove-Computer disables the object before that.".to_string());
            self.need(
                "--ldap, so the rejoin preflight can read the computer object's owner and creator",
            );
            return;
        };
        if !pre.join_allowed {
            self.why
                .push(format!("Rejoin not planned: {}.", pre.reason));
            self.need("a person to rejoin with an account allowed to reuse the object (its creator, or as allowed by the 'Allow computer account re-use during domain join' policy)");
            return;
        }
        match scripts::rejoin_join(domain, server.as_deref(), pre.ou.as_deref()) {
            Ok(join_script) => {
                self.actions.push(Action::Rejoin {
                    domain: domain.to_string(),
                    server,
                    leave_script: scripts::rejoin_leave(),
                    join_script,
                });
                self.why.push(format!(
                    "Last resort: leave to a workgroup, reboot, join, reboot, waiting for WinRM each time; connects as the local account. Preflight: {}.",
                    pre.reason
                ));
            }
            Err(e) => self.why.push(format!("Rejoin not planned: {e}.")),
        }
    }
}

/// The per-diagnosis parts of [`plan_host`].
impl Builder {
    /// A name twin or a SID duplicate: a person rebuilds one machine; nothing is reset.
    fn rebuild(&mut self, twins: &[String], sid_duplicate: bool) {
        self.actions.push(Action::RebuildRequired {
            twins: twins.to_vec(),
        });
        if sid_duplicate {
            self.why.push(format!(
                "Advisory: shares its machine SID with {} (a clone made without sysprep). The channel works; nothing is reset. Windows 11 24H2/Server 2025 refuse NTLM/Kerberos between them (event 6167, KB5068222).",
                twins.join(", ")
            ));
            self.need("a person to rebuild one of the machines with sysprep");
        } else {
            self.why.push(format!(
                "Answers with the same computer name as {} in the same domain: one computer account, two machines. Each password change by one breaks the other, so no reset is applied to either.",
                twins.join(", ")
            ));
            self.need(
                "a person to rebuild or rename one of the twins (and join it under its own name)",
            );
        }
    }

    /// The sweep could not get in (or not far enough): nothing is known of the trust.
    fn no_way_in(&mut self, diagnosis: &Diagnosis) {
        match diagnosis {
            Diagnosis::LocalAccountRefused { user } => {
                self.why.push(format!(
                    "{user} is a local account other than the built-in Administrator and was refused: a wrong password, UAC remote restrictions (LocalAccountTokenFilterPolicy), or not an administrator. This is not a broken trust."
                ));
                self.need("the built-in Administrator (RID 500), e.g. its LAPS password");
            }
            Diagnosis::Unauthorized { user } => {
                self.why.push(format!(
                    "{user} was refused with HTTP 401; a 401 alone is not evidence of a broken trust, so nothing is planned (no DC-side reset either)."
                ));
                self.need("a credential that logs on: the built-in Administrator (RID 500) or its LAPS password");
            }
            Diagnosis::AccessDenied { user } => {
                self.why.push(format!(
                    "{user} cannot run the checks on this host; nothing is known about its trust."
                ));
                self.need("a credential that is a local administrator of the host (elevated)");
            }
            _ => {}
        }
    }

    fn stale_dc(
        &mut self,
        newest: &[String],
        bound: &str,
        domain: Option<String>,
        options: &PlanOptions,
    ) {
        let good_dc = newest.first().cloned().unwrap_or_default();
        self.why.push(format!(
            "The member is bound to {bound}, which holds an older password than {}: pin the channel to {good_dc} with nltest /sc_reset (no reboot, no credential).",
            newest.join(", ")
        ));
        match domain.as_deref().map(|d| scripts::sc_reset(d, &good_dc)) {
            Some(Ok(command)) => self.actions.push(Action::ScReset {
                domain: domain.clone().unwrap_or_default(),
                dc: good_dc.clone(),
                command,
            }),
            Some(Err(e)) => self.why.push(format!("nltest /sc_reset not planned: {e}.")),
            None => self.need("the host's domain name, for nltest /sc_reset"),
        }
        if options.repair_credential_available {
            if let Ok(script) = scripts::reset_machine_password(Some(&good_dc)) {
                let pin_command = domain
                    .as_deref()
                    .and_then(|d| scripts::sc_reset(d, &good_dc).ok());
                self.actions.push(Action::ResetMachinePassword {
                    server: Some(good_dc.clone()),
                    script,
                    pin_command,
                });
            }
            self.rejoin(Some(good_dc.clone()), domain.as_deref(), options);
        }
        self.need(format!(
            "AD replication from {good_dc} to {bound} to catch up (repadmin /showrepl, /syncall)"
        ));
        self.why.push(CREDMAN_NOTE.to_string());
    }

    fn account_disabled(
        &mut self,
        probe: Option<&Probe>,
        domain: Option<String>,
        options: &PlanOptions,
    ) {
        self.why.push("The computer account is disabled in AD (a stale-computer cleanup, say): re-enabling it heals the member, whose password the DC still holds; nothing changes on the member but its binding.".to_string());
        let dc = reset_server(probe, options);
        let computer = probe
            .map(|p| p.computer_name.clone())
            .filter(|n| scripts::is_valid_name(n));
        match (options.allow_enable, options.dc_access, options.repair_credential_available, dc, computer) {
            (false, ..) => self.need("--allow-enable (with --ldap), to re-enable the computer object as the repair account; or a person to re-enable it"),
            (true, false, ..) => self.need("--ldap, to re-enable the computer object over LDAPS"),
            (true, true, false, ..) => self.need(CREDENTIAL_NEED),
            (true, true, true, Some(dc), Some(computer)) => {
                self.actions.push(Action::EnableAccount { dc: dc.clone(), computer });
                if let Some(command) = domain.as_deref().and_then(|d| scripts::sc_reset(d, &dc).ok()) {
                    self.actions.push(Action::ScReset { domain: domain.clone().unwrap_or_default(), dc, command });
                }
            }
            _ => self.need("a person to re-enable the computer object in AD (its DC or name is not known)"),
        }
    }

    fn account_gone(
        &mut self,
        finding: &Finding,
        probe: Option<&Probe>,
        domain: Option<String>,
        options: &PlanOptions,
    ) {
        let mut restored = false;
        if finding.diagnosis == Diagnosis::AccountDeleted {
            self.why.push("The computer account is gone from AD. Restoring it from the AD Recycle Bin brings back its SID, groups and password and heals the member; otherwise the member must rejoin (a new object: group memberships, BitLocker and LAPS attributes of the old one are lost).".to_string());
            restored = self.restore(probe, domain.as_deref(), options);
            if restored {
                // No rejoin behind a restore: its preflight read a domain without the
                // object, and the restored object's reuse rules were never checked.
                self.need("a person, if the restored account does not verify (a rejoin would meet the restored object's reuse rules)");
            } else {
                self.need("a person to restore the computer object from the AD Recycle Bin, or --allow-rejoin");
            }
        } else {
            self.why.push("The DC answers 1787: the computer account is disabled or missing; only LDAP (--ldap) tells which. Re-enable it or restore it from the AD Recycle Bin; a rejoin is the last resort.".to_string());
            self.need("a person to re-enable the computer object or restore it from the AD Recycle Bin (--ldap tells which)");
        }
        if restored {
            // The restore's pin and verify are the ladder.
        } else if options.allow_rejoin {
            if options.repair_credential_available {
                self.rejoin(reset_server(probe, options), domain.as_deref(), options);
            } else {
                self.need(CREDENTIAL_NEED);
            }
        } else {
            self.need("or --allow-rejoin with --ldap, to rejoin the host (two reboots) once a preflight shows the join is allowed");
        }
    }

    fn unreachable(&mut self, options: &PlanOptions) {
        self.why
            .push("No answer over WinRM; nothing can be checked or repaired remotely.".to_string());
        if options.allow_dc_reset {
            self.why.push(
                "No DC-side reset either: nothing shows this host's trust is broken, and resetting the account of a host that is merely offline would break it."
                    .to_string(),
            );
        }
        self.need("network reachability and WinRM (5985/5986) on the host");
    }
}

/// Plans the repair of one host. `probe` is the host's probe, when there is one.
pub fn plan_host(finding: &Finding, probe: Option<&Probe>, options: &PlanOptions) -> HostPlan {
    let mut b = Builder {
        actions: Vec::new(),
        why: Vec::new(),
        needs: Vec::new(),
        host: finding.host.clone(),
        local_logon: probe.is_some_and(Probe::user_is_local),
    };
    let domain = member_domain(probe);
    match &finding.diagnosis {
        Diagnosis::Healthy => b
            .why
            .push("The secure channel verifies (live test); nothing to do.".to_string()),
        Diagnosis::DomainController { role } => {
            b.why.push(format!(
                "A domain controller (DomainRole {role}), not a member: skipped, never repaired."
            ));
        }
        Diagnosis::NameTwin { twins } => b.rebuild(twins, false),
        Diagnosis::SidDuplicate { twins } => b.rebuild(twins, true),
        Diagnosis::StaleDc { newest, bound } => b.stale_dc(newest, bound, domain, options),
        Diagnosis::StalePassword | Diagnosis::TrustBroken { .. } => {
            let server = reset_server(probe, options);
            b.why.push(match &finding.diagnosis {
                Diagnosis::StalePassword => "The DC refuses the machine password (snapshot restore, DC-side reset, or a DC that missed replication): set a new one with Reset-ComputerMachinePassword, pinned to the PDC so the fleet replicates from one place, then pin the channel to it; no reboot.".to_string(),
                _ => "The trust is broken for a reason not pinned down: try the password reset first, as for a stale password.".to_string(),
            });
            b.reset_ladder(server, domain.as_deref(), options);
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::AccountDisabled => b.account_disabled(probe, domain, options),
        Diagnosis::AccountDeleted | Diagnosis::AccountDisabledOrMissing => {
            b.account_gone(finding, probe, domain, options)
        }
        Diagnosis::NoDcLocator => {
            b.why.push("The DC locator on the host finds no domain controller; usually its DNS points at a server that is not a DC. No member change is made.".to_string());
            b.need("a person to fix DNS on the member (point it at the domain's DNS servers)");
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::DcUnreachable { dc } => {
            b.why.push(format!(
                "The DC locator finds {} but the channel reaches no DC: a network path is blocked. No member change is made.",
                dc.as_deref().unwrap_or("a DC")
            ));
            b.need("a person to open the path from the member to the DCs (Kerberos 88, LDAP 389, SMB 445, RPC 135 and dynamic ports)");
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::LocalAccountRefused { .. }
        | Diagnosis::Unauthorized { .. }
        | Diagnosis::AccessDenied { .. } => b.no_way_in(&finding.diagnosis),
        Diagnosis::Unreachable => b.unreachable(options),
        Diagnosis::NotDomainJoined => {
            b.why.push("The host is in a workgroup: there is no trust to repair. Join it (Add-Computer) if it belongs in the domain.".to_string());
            b.need("a decision whether the host belongs in the domain");
        }
        Diagnosis::Unknown { detail } => {
            b.why
                .push(format!("Not enough evidence to act safely ({detail})."));
            b.need("manual investigation");
        }
    }
    dc_reset_if_named(&mut b, finding, probe, options);
    let needs_reboot = b.actions.iter().any(Action::reboots);
    HostPlan {
        host: finding.host.clone(),
        diagnosis: finding.diagnosis.clone(),
        actions: b.actions,
        why: b.why.join(" "),
        needs_reboot,
        needs: b.needs,
    }
}

/// The DC-side "Reset Account" for a host an admin named with `--dc-reset-host`: it leaves
/// the member broken until it rejoins or runs `Reset-ComputerMachinePassword` (a reboot
/// does not heal it, DOMAIN.md "Repairing it"), so it is for hosts nobody can get into,
/// on the admin's word, never on a 401.
fn dc_reset_if_named(
    b: &mut Builder,
    finding: &Finding,
    probe: Option<&Probe>,
    options: &PlanOptions,
) {
    if !options
        .dc_reset_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&finding.host))
    {
        return;
    }
    let refused = |why: &str| format!("Named for a DC-side reset, but {why}: not planned.");
    let reason = match &finding.diagnosis {
        Diagnosis::Healthy | Diagnosis::SidDuplicate { .. } => Some(refused("its channel works")),
        Diagnosis::DomainController { .. } => Some(refused("it is a domain controller")),
        Diagnosis::NameTwin { .. } => Some(refused("it shares its computer account with a twin")),
        _ if !options.allow_dc_reset => Some(refused("--allow-dc-reset was not given")),
        _ if !options.dc_access => Some(refused("the sweep has no DC access (--ldap)")),
        _ => None,
    };
    if let Some(r) = reason {
        b.why.push(r);
        return;
    }
    let computer = probe
        .map(|p| p.computer_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            finding
                .host
                .split('.')
                .next()
                .unwrap_or(&finding.host)
                .to_ascii_uppercase()
        });
    let domain = probe
        .map(Probe::domain_key)
        .filter(|d| !d.is_empty())
        .or_else(|| {
            finding
                .host
                .split_once('.')
                .map(|(_, d)| d.to_ascii_lowercase())
        });
    let dc = domain
        .and_then(|d| options.pdcs.get(&d).cloned())
        .or_else(|| {
            (options.pdcs.len() == 1)
                .then(|| options.pdcs.values().next().cloned())
                .flatten()
        });
    match dc {
        Some(dc) if scripts::is_valid_name(&dc) && scripts::is_valid_name(&computer) => {
            b.actions.push(Action::DcResetAccount { dc, computer });
            b.why.push("Named for a DC-side reset (--dc-reset-host): the account gets a new password on the DC; the member stays broken until it is rejoined or runs Reset-ComputerMachinePassword.".to_string());
            b.need("a rejoin of the member after the DC-side reset");
        }
        _ => b.why.push(refused("no DC of its domain is known")),
    }
}

/// Plans every host; `findings` and `observations` are in the same order (as
/// [`crate::diagnose_fleet`] returns them).
pub fn plan_fleet(
    findings: &[Finding],
    observations: &[HostObservation],
    options: &PlanOptions,
) -> Vec<HostPlan> {
    findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let probe = observations
                .get(i)
                .filter(|o| o.host == f.host)
                .and_then(|o| o.probe.as_ref());
            plan_host(f, probe, options)
        })
        .collect()
}
