//! Planning: from a [`Finding`] to the ordered [`Action`]s `repair` would take on that
//! host, with why, what needs a reboot and what extra permission or person is needed. Pure;
//! `trustsweep plan` stops here. The actions form a ladder, lightest first (DOMAIN.md,
//! issue 4): each one is tried only if the host still does not verify after the previous.
//!
//! 1. replication lag: `nltest /sc_reset:<domain>\<good DC>`;
//! 2. stale password / account reset: `Reset-ComputerMachinePassword -Server <PDC>` with
//!    the domain credential over stdin (then pinning the channel to that DC if it does not
//!    verify yet), falling back to `Test-ComputerSecureChannel -Repair`;
//! 3. still broken and `allow_rejoin`: leave, reboot, join, reboot;
//! 4. trust broken with no way in and `allow_dc_reset`: reset the account on the DC, and
//!    say plainly that the member stays broken until it is rejoined;
//! 5. clones: [`Action::RebuildRequired`], never a reset;
//! 6. Credential Manager caching is never an action, only mentioned in `why`.
//!
//! Every action carries the exact command it sends (DC names filled in); none carries a
//! password: credential scripts read it from stdin.

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
    /// A domain account that may reset machine passwords was given (`--repair-user`).
    pub repair_credential_available: bool,
    /// The PDC emulator to pin resets to (see [`crate::fleet_pdc`]); else the probe's.
    pub pdc: Option<String>,
    /// The sweep can reach the DCs over LDAPS (`--ldap`): needed for DC-side actions.
    pub dc_access: bool,
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
        /// Run when the reset succeeded but the channel does not verify yet (the member is
        /// bound to a DC the new password has not replicated to): `nltest /sc_reset` to
        /// `server`.
        pin_command: Option<String>,
    },
    /// `Test-ComputerSecureChannel -Repair -Credential` (credential on stdin).
    RepairSecureChannel {
        /// The PowerShell script.
        script: String,
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
    /// A clone: rebuild the machine. Never reset (it breaks the twin).
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
            Action::RebuildRequired { .. } => "rebuild_required",
        }
    }

    /// Where it runs.
    pub fn target(&self) -> Target {
        match self {
            Action::DcResetAccount { dc, .. } => Target::DomainController { dc: dc.clone() },
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
            Action::RepairSecureChannel { .. } => {
                "Test-ComputerSecureChannel -Repair -Credential <repair account>".to_string()
            }
            Action::Rejoin { domain, .. } => {
                format!("rejoin {domain}: Remove-Computer, restart, Add-Computer, restart")
            }
            Action::DcResetAccount { dc, computer } => format!(
                "on {dc}, over LDAPS as the repair account: reset the password of computer account {computer}$ (ADUC's Reset Account)"
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

/// The DC resets are pinned to: the fleet's PDC when it is a DC of this host's domain,
/// else the probe's PDC, else the DC the host is bound to.
fn reset_server(probe: Option<&Probe>, options: &PlanOptions) -> Option<String> {
    options
        .pdc
        .clone()
        .filter(|pdc| probe.is_none_or(|p| in_domain_of(pdc, p)))
        .or_else(|| probe.and_then(|p| p.pdc().map(str::to_string)))
        .or_else(|| probe.and_then(|p| p.sc_verify.trusted_dc.clone()))
        .filter(|s| scripts::is_valid_name(s))
}

/// Is `dc` one of `p`'s domain's DCs (listed by its `/dclist`, or named in its DNS
/// domain)? A fleet can span domains; one domain's PDC cannot reset another's accounts.
fn in_domain_of(dc: &str, p: &Probe) -> bool {
    let suffix = format!(".{}", p.domain.to_ascii_lowercase());
    let unknown = p.dclist.dcs.is_empty() && !dc.contains('.');
    unknown
        || p.dclist.dcs.iter().any(|d| crate::diagnose::same_dc(&d.name, dc))
        || dc.to_ascii_lowercase().ends_with(&suffix)
}

/// The domain of a joined host.
fn member_domain(probe: Option<&Probe>) -> Option<String> {
    probe
        .filter(|p| p.part_of_domain != Some(false))
        .map(|p| p.domain.clone())
        .filter(|d| scripts::is_valid_name(d))
}

/// The computer name: the probe's, else the inventory name's first label (not for IPs).
fn computer_name(host: &str, probe: Option<&Probe>) -> Option<String> {
    if let Some(p) = probe.filter(|p| !p.computer_name.is_empty()) {
        return Some(p.computer_name.clone());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    host.split('.')
        .next()
        .filter(|s| scripts::is_valid_name(s))
        .map(str::to_ascii_uppercase)
}

struct Builder {
    actions: Vec<Action>,
    why: Vec<String>,
    needs: Vec<String>,
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
        match scripts::reset_machine_password(server.as_deref()) {
            Ok(script) => {
                let pin_command = match (domain, server.as_deref()) {
                    (Some(d), Some(s)) => scripts::sc_reset(d, s).ok(),
                    _ => None,
                };
                self.actions.push(Action::ResetMachinePassword {
                    server: server.clone(),
                    script,
                    pin_command,
                });
            }
            Err(e) => self
                .why
                .push(format!("Reset-ComputerMachinePassword not planned: {e}.")),
        }
        self.actions.push(Action::RepairSecureChannel {
            script: scripts::repair_secure_channel(),
        });
        self.rejoin(server, domain, options);
    }

    fn rejoin(&mut self, server: Option<String>, domain: Option<&str>, options: &PlanOptions) {
        if !options.allow_rejoin {
            self.need("--allow-rejoin, to fall back to a rejoin (two reboots) if the lighter fixes do not verify");
            return;
        }
        let Some(domain) = domain else {
            self.need("the host's domain name, for a rejoin");
            return;
        };
        match scripts::rejoin_join(domain, server.as_deref()) {
            Ok(join_script) => {
                self.actions.push(Action::Rejoin {
                    domain: domain.to_string(),
                    server,
                    leave_script: scripts::rejoin_leave(),
                    join_script,
                });
                self.why.push(
                    "Last resort: leave to a workgroup, reboot, join, reboot, waiting for WinRM each time; connects as the local Administrator."
                        .to_string(),
                );
            }
            Err(e) => self.why.push(format!("Rejoin not planned: {e}.")),
        }
    }
}

/// Plans the repair of one host. `probe` is the host's probe, when there is one.
pub fn plan_host(finding: &Finding, probe: Option<&Probe>, options: &PlanOptions) -> HostPlan {
    let mut b = Builder {
        actions: Vec::new(),
        why: Vec::new(),
        needs: Vec::new(),
    };
    let domain = member_domain(probe);
    match &finding.diagnosis {
        Diagnosis::Healthy => b
            .why
            .push("The secure channel verifies; nothing to do.".to_string()),
        Diagnosis::Clone { twins } => {
            b.actions.push(Action::RebuildRequired {
                twins: twins.clone(),
            });
            b.why.push(format!(
                "Shares its machine SID or computer name with {}. Resetting one clone's password breaks its twin, and current Windows blocks authentication between machines sharing a SID: rebuild it (unjoin + sysprep is not enough). No reset is applied.",
                twins.join(", ")
            ));
            b.need("someone to rebuild the machine and join it under its own name");
        }
        Diagnosis::ReplicationLag { good_dc, bad_dc } => {
            b.why.push(format!(
                "The machine password is accepted by {good_dc} but not by {bad_dc}: pin the channel to {good_dc} with nltest /sc_reset (no reboot, no credential)."
            ));
            match domain.as_deref().map(|d| scripts::sc_reset(d, good_dc)) {
                Some(Ok(command)) => b.actions.push(Action::ScReset {
                    domain: domain.clone().unwrap_or_default(),
                    dc: good_dc.clone(),
                    command,
                }),
                Some(Err(e)) => b.why.push(format!("nltest /sc_reset not planned: {e}.")),
                None => b.need("the host's domain name, for nltest /sc_reset"),
            }
            if options.repair_credential_available {
                if let Ok(script) = scripts::reset_machine_password(Some(good_dc)) {
                    let pin_command = domain
                        .as_deref()
                        .and_then(|d| scripts::sc_reset(d, good_dc).ok());
                    b.actions.push(Action::ResetMachinePassword {
                        server: Some(good_dc.clone()),
                        script,
                        pin_command,
                    });
                }
                b.rejoin(Some(good_dc.clone()), domain.as_deref(), options);
            }
            b.need(format!("AD replication from {good_dc} to {bad_dc} to catch up (repadmin /showrepl, /syncall)"));
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::StalePassword | Diagnosis::TrustBroken { .. } | Diagnosis::AccountMissing => {
            let server = reset_server(probe, options);
            b.why.push(match &finding.diagnosis {
                Diagnosis::StalePassword => "Every DC rejects the machine password (snapshot restore, rollback or account reset on the DC): set a new one with Reset-ComputerMachinePassword, pinned to the PDC so the fleet replicates from one place; no reboot.".to_string(),
                Diagnosis::AccountMissing => "The DC has no (enabled) computer account for this host: a reset works only if the account still exists on the PDC; a deleted account is re-created only by a rejoin.".to_string(),
                _ => "The trust is broken for a reason not pinned down: try the password reset first, as for a stale password.".to_string(),
            });
            b.reset_ladder(server, domain.as_deref(), options);
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::NoDcReachable => {
            b.why.push("The host reaches no domain controller; every repair needs one. Fix the network path first.".to_string());
            b.need("a network path from the host to a DC (DNS SRV records, Kerberos 88, LDAP 389, SMB 445, RPC 135 and dynamic ports)");
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::BrokenNoAccess { user } => {
            b.why.push(format!("The domain account is refused here (broken trust) and {user} cannot get in either."));
            if options.allow_dc_reset {
                let dc = options
                    .pdc
                    .clone()
                    .or_else(|| probe.and_then(|p| p.pdc().map(str::to_string)));
                match (
                    dc,
                    computer_name(&finding.host, probe),
                    options.repair_credential_available,
                    options.dc_access,
                ) {
                    (Some(dc), Some(computer), true, true) => {
                        b.actions.push(Action::DcResetAccount { dc: dc.clone(), computer });
                        b.why.push(format!(
                            "Resetting the computer account on {dc} does not repair the member: it stays broken until it is rejoined, and a reboot does not restore it."
                        ));
                        b.need("console access or a working local administrator to rejoin the host after the DC-side reset");
                    }
                    (dc, computer, cred, dc_access) => {
                        if dc.is_none() {
                            b.need("the PDC's name (a probe of another host in the sweep names it), for the DC-side reset");
                        }
                        if computer.is_none() {
                            b.need("the host's computer name, for the DC-side reset");
                        }
                        if !cred {
                            b.need(CREDENTIAL_NEED);
                        }
                        if !dc_access {
                            b.need("LDAPS access to the DCs (--ldap ldaps://dc), for the DC-side reset");
                        }
                    }
                }
            } else {
                b.need("the built-in Administrator (RID 500) password, e.g. from LAPS, to repair it from the host");
                b.need("or --allow-dc-reset, to reset the account on the DC (the host then still needs a rejoin)");
            }
            b.why.push(CREDMAN_NOTE.to_string());
        }
        Diagnosis::FilteredAdmin { user } => {
            b.why.push(format!(
                "{user} is a local administrator whose remote token is filtered (UAC remote restrictions): WinRM says Access Denied. This is not a broken trust."
            ));
            b.need("the built-in Administrator (RID 500), e.g. its LAPS password, or LocalAccountTokenFilterPolicy=1 on the host");
        }
        Diagnosis::AccessDenied { user } => {
            b.why.push(format!(
                "{user} cannot run the checks on this host; nothing is known about its trust."
            ));
            b.need("a credential that is a local administrator of the host");
        }
        Diagnosis::Unreachable => {
            b.why.push(
                "No answer over WinRM; nothing can be checked or repaired remotely.".to_string(),
            );
            if options.allow_dc_reset {
                b.why.push(
                    "No DC-side reset either: nothing shows this host's trust is broken, and resetting the account of a host that is merely offline would break it."
                        .to_string(),
                );
            }
            b.need("network reachability and WinRM (5985/5986) on the host");
        }
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
