//! Repair and verify: runs a [`HostPlan`]'s ladder on a host through a [`Remote`], stops
//! at the first step after which the host verifies, and reports the state a fresh probe
//! shows, never the intended one.
//!
//! * The repair credential goes to credential scripts over stdin ([`StdinPayload`]); any
//!   echo of the password in what comes back is replaced before it is recorded.
//! * `ts.reset=ok` / `ts.reset_error=<message>` decide whether a credential script worked;
//!   after each working step the host is re-probed ([`verify`]).
//! * Rejoin (leave, reboot, join, reboot) waits for the host through the remote's own
//!   [`Remote::reconnect_after_reboot`] hook, bounded by [`RepairOptions`]: after each
//!   reconnect it re-probes and expects the host out of (then back in) the domain, and asks
//!   to reconnect again (at most `max_reconnects` times) if it is not there yet. A remote
//!   whose [`Remote::supports_reconnect`] is false never starts a rejoin.
//! * DC-side account resets run on a domain controller's remote ([`repair_on_dc`]); they
//!   leave the member broken until it is rejoined, and the outcome says so.
//! * Never worse (issue 11): before any change the host is probed and what is true is
//!   recorded ([`HostBaseline`]: reachable, domain member, live channel status); every
//!   verification after a step that could change the host is compared with it, and a
//!   worse state (left the domain for good, a working channel broken, the account gone
//!   disabled or missing, the host no longer answering) stops the ladder at once as
//!   [`RepairStatus::MadeWorse`]. A host that verifies healthy on that first probe, or is a
//!   domain controller, is not touched.
//! * A destructive step (a credential script) is announced before it is sent
//!   ([`RepairEvent::StepStarting`]: the CLI journals it, fsynced). When the connection is
//!   lost with one in flight it may or may not have happened: it is never sent again; the
//!   host is probed again (reconnecting, bounded) and the ladder stops as
//!   [`RepairStatus::UnknownThenVerified`] with the verified state (issue 16). A run that
//!   was killed there is finished by [`verify_interrupted`]: a probe, nothing else.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnose::{diagnose_host, same_dc, Diagnosis, HostObservation, HostState};
use crate::plan::{Action, HostPlan, Target};
use crate::probe::{excerpt, parse_nltest, probe_host, status, Probe};
use crate::remote::{
    redact, CommandOutput, Directory, DomainCredential, Remote, RemoteError, StdinPayload,
};

/// Bounds for waiting on reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairOptions {
    /// Passed to each [`Remote::reconnect_after_reboot`] call.
    pub reboot_timeout: Duration,
    /// Reconnects per reboot before giving up (each followed by a probe).
    pub max_reconnects: u32,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions {
            reboot_timeout: Duration::from_secs(15 * 60),
            max_reconnects: 3,
        }
    }
}

/// One thing done (or tried) on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The action's name ([`Action::name`]).
    pub action: String,
    /// The step within it (`run`, `pin`, `leave`, `join`, `reboot`).
    pub step: String,
    /// Did it report success?
    pub ok: bool,
    /// What the host said (passwords redacted).
    pub detail: String,
}

/// Progress, for reporters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RepairEvent {
    /// An action starts.
    ActionStarted {
        /// Inventory name.
        host: String,
        /// [`Action::name`].
        action: String,
        /// [`Action::summary`].
        summary: String,
    },
    /// A destructive step (a credential script: reset, `-Repair`, leave, join) is about
    /// to be sent. Emitted before anything goes on the wire, so a caller can make its
    /// intent durable first (the CLI's journal fsyncs it) and a resumed run knows the step
    /// may have happened.
    StepStarting {
        /// Inventory name.
        host: String,
        /// [`Action::name`].
        action: String,
        /// The step within it (`run`, `leave`, `join`).
        step: String,
    },
    /// A step finished.
    StepFinished {
        /// Inventory name.
        host: String,
        /// The record.
        step: StepRecord,
    },
    /// Waiting for the host to come back after a restart.
    WaitingForReboot {
        /// Inventory name.
        host: String,
        /// 1-based reconnect attempt.
        attempt: u32,
    },
    /// WinRM answered again.
    Reconnected {
        /// Inventory name.
        host: String,
    },
    /// A verification probe finished.
    Verified {
        /// Inventory name.
        host: String,
        /// Does the channel verify?
        healthy: bool,
        /// What the probe shows.
        diagnosis: Diagnosis,
    },
    /// A step left the host worse than before; its ladder stops here.
    MadeWorse {
        /// Inventory name.
        host: String,
        /// Before, after and why, in words.
        detail: String,
    },
}

/// The state a fresh probe showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The channel verifies.
    pub healthy: bool,
    /// The single-host diagnosis of the probe.
    pub diagnosis: Diagnosis,
    /// Its evidence.
    pub evidence: Vec<String>,
    /// The probe.
    pub probe: Probe,
}

/// How a host's repair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairStatus {
    /// Healthy; nothing planned, nothing done.
    NothingToDo,
    /// Changed and verified healthy.
    Repaired,
    /// Verified still broken after the whole ladder.
    StillBroken,
    /// Could not verify (connection lost, host did not come back).
    Unverified,
    /// A person must act (name twin or SID duplicate: rebuild).
    ManualActionRequired,
    /// Nothing could be tried (see the plan's `needs`).
    NotAttempted,
    /// The computer account was reset on a DC; the member stays broken until rejoined.
    AccountResetOnDc,
    /// A step left the host worse than before the repair (see [`HostBaseline::worse`]);
    /// its ladder was stopped there. A person must look at it now.
    MadeWorse,
    /// The connection was lost after a destructive step was sent (or the run was killed
    /// after its intent was recorded), so whether it happened is unknown; the host was
    /// then probed again and the verification holds what is true now. The step was never
    /// sent again and the ladder stopped there (issue 16).
    UnknownThenVerified,
}

impl RepairStatus {
    /// The snake_case name, as in JSON (`still_broken`).
    pub fn name(&self) -> &'static str {
        match self {
            RepairStatus::NothingToDo => "nothing_to_do",
            RepairStatus::Repaired => "repaired",
            RepairStatus::StillBroken => "still_broken",
            RepairStatus::Unverified => "unverified",
            RepairStatus::ManualActionRequired => "manual_action_required",
            RepairStatus::NotAttempted => "not_attempted",
            RepairStatus::AccountResetOnDc => "account_reset_on_dc",
            RepairStatus::MadeWorse => "made_worse",
            RepairStatus::UnknownThenVerified => "unknown_then_verified",
        }
    }
}

/// For people (`repaired (verified)`).
impl fmt::Display for RepairStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepairStatus::NothingToDo => "nothing to do",
            RepairStatus::Repaired => "repaired (verified)",
            RepairStatus::StillBroken => "still broken",
            RepairStatus::Unverified => "unverified",
            RepairStatus::ManualActionRequired => "needs a person",
            RepairStatus::NotAttempted => "not attempted",
            RepairStatus::AccountResetOnDc => "account reset on the DC",
            RepairStatus::MadeWorse => "MADE WORSE (ladder stopped)",
            RepairStatus::UnknownThenVerified => "outcome unknown, then verified",
        })
    }
}

/// What was true on a host just before the repair changed anything, or after a step: the
/// facts "never worse" compares (issue 11). From a probe ([`HostBaseline::of`]); no probe
/// means the host did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBaseline {
    /// The probe ran (WinRM answered and the script completed).
    pub reachable: bool,
    /// `Win32_ComputerSystem.PartOfDomain`, when known.
    pub part_of_domain: Option<bool>,
    /// The live channel status (`nltest /sc_verify`), when the probe printed one.
    pub live_status: Option<u32>,
}

impl HostBaseline {
    /// The facts of `probe`; `None` is a host that did not answer.
    pub fn of(probe: Option<&Probe>) -> Self {
        match probe {
            Some(p) => HostBaseline {
                reachable: true,
                part_of_domain: p.part_of_domain,
                live_status: p.live_status().map(|s| s.code),
            },
            None => HostBaseline {
                reachable: false,
                part_of_domain: None,
                live_status: None,
            },
        }
    }

    /// Why `after` is worse than `self` (the state before), or `None` when it is not:
    /// reachable before and not now; a domain member before and in a workgroup now; a
    /// live status 0 before and non-zero now; the DC refusing the password before (5, the
    /// account was there) and 1787 now (the account disabled or missing: `Remove-Computer`
    /// disables it, DOMAIN.md "Repairing it", revised).
    pub fn worse(&self, after: &HostBaseline) -> Option<String> {
        let mut why = Vec::new();
        if self.reachable && !after.reachable {
            why.push("it no longer answers".to_string());
        }
        if self.part_of_domain == Some(true) && after.part_of_domain == Some(false) {
            why.push("it left the domain and did not come back (workgroup)".to_string());
        }
        match (self.live_status, after.live_status) {
            (Some(status::SUCCESS), Some(now)) if now != status::SUCCESS => {
                why.push(format!(
                    "its working channel broke (live status 0, now {now})"
                ));
            }
            (Some(status::ACCESS_DENIED), Some(status::NO_TRUST_SAM_ACCOUNT)) => why.push(
                "its computer account is now disabled or missing (live status 5, now 1787)"
                    .to_string(),
            ),
            _ => {}
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

impl fmt::Display for HostBaseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.reachable {
            return f.write_str("not answering");
        }
        f.write_str("reachable, ")?;
        f.write_str(match self.part_of_domain {
            Some(true) => "domain member",
            Some(false) => "workgroup",
            None => "membership unknown",
        })?;
        match self.live_status {
            Some(s) => write!(f, ", live channel status {s}"),
            None => f.write_str(", no live channel status"),
        }
    }
}

/// The result of [`repair_host`] / [`repair_on_dc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairOutcome {
    /// Inventory name.
    pub host: String,
    /// How it ended.
    pub status: RepairStatus,
    /// In words.
    pub detail: String,
    /// What was done, in order.
    pub steps: Vec<StepRecord>,
    /// The last verification, if one ran.
    pub verification: Option<Verification>,
    /// Something may have changed on the host or its account.
    pub changed: bool,
}

impl RepairOutcome {
    fn new(host: &str, status: RepairStatus, detail: impl Into<String>) -> Self {
        RepairOutcome {
            host: host.to_string(),
            status,
            detail: detail.into(),
            steps: Vec::new(),
            verification: None,
            changed: false,
        }
    }

    /// What remains: the verified state if a verification ran, else the planned diagnosis'.
    pub fn remaining_state(&self, plan: &HostPlan) -> HostState {
        match (&self.verification, self.status) {
            (Some(v), _) => v.diagnosis.state(),
            (None, RepairStatus::Unverified | RepairStatus::UnknownThenVerified) => {
                HostState::Unknown
            }
            // Made worse without a verification: it stopped answering.
            (None, RepairStatus::MadeWorse) => HostState::Unreachable,
            (None, _) => plan.diagnosis.state(),
        }
    }
}

/// Runs the probe ([`probe_host`]) and diagnoses it alone. Healthy means the *live* test
/// (`nltest /sc_verify`) succeeded, never only the stored status. `Err` when the probe
/// could not run or parse.
pub async fn verify<R: Remote>(
    remote: &mut R,
    host: &str,
) -> Result<Verification, crate::probe::ProbeRunError> {
    let probe = probe_host(remote).await?;
    Ok(verification_of(host, probe))
}

fn verification_of(host: &str, probe: Probe) -> Verification {
    let obs = HostObservation::connected(
        host,
        probe.user.clone(),
        probe.user_is_local(),
        probe.clone(),
    );
    let f = diagnose_host(&obs);
    Verification {
        healthy: f.diagnosis == Diagnosis::Healthy && probe.channel_ok() == Some(true),
        diagnosis: f.diagnosis,
        evidence: f.evidence,
        probe,
    }
}

/// A credential script (reset, `-Repair`, leave, join) that ran but did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetFailed {
    /// The host said why (`ts.reset_error=…`: the cmdlet's own message).
    #[error("{0}")]
    Reported(String),
    /// It reported an error without a message.
    #[error("failed without a message")]
    NoMessage,
    /// `Test-ComputerSecureChannel -Repair` printed False.
    #[error("Test-ComputerSecureChannel -Repair returned False")]
    RepairReturnedFalse,
    /// Neither marker came back (the script did not run to its end).
    #[error("no result marker (exit code {exit_code}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    NoMarker {
        /// The command's exit code.
        exit_code: i64,
        /// The start of its stderr.
        stderr: String,
    },
}

/// Reads `ts.reset=ok` / `ts.reset_error=…` from a credential script's output.
pub fn parse_reset_output(out: &CommandOutput) -> Result<(), ResetFailed> {
    let mut ok = false;
    let mut saw_false = false;
    for line in out.stdout.lines() {
        let line = line.trim();
        if let Some(msg) = line.strip_prefix("ts.reset_error=") {
            let msg = msg.trim();
            return Err(if msg.is_empty() {
                ResetFailed::NoMessage
            } else {
                ResetFailed::Reported(msg.to_string())
            });
        }
        if line == "ts.reset=ok" {
            ok = true;
        } else if line.eq_ignore_ascii_case("False") {
            saw_false = true;
        }
    }
    match (ok, saw_false) {
        (true, false) => Ok(()),
        (true, true) => Err(ResetFailed::RepairReturnedFalse),
        (false, _) => Err(ResetFailed::NoMarker {
            exit_code: out.exit_code,
            stderr: excerpt(&out.stderr, 300),
        }),
    }
}

/// What to do after a step.
enum Flow {
    /// The host verifies: stop, repaired.
    Healthy,
    /// Try the next action.
    Next,
    /// The host cannot be verified any more: stop.
    Lost(String),
    /// The host is worse than before the repair (`Run::worse` says how): stop at once.
    Worse,
    /// The outcome is decided (`Run::out` holds it): stop.
    Stop,
    /// The host answered before and no longer does (the text says after what): stop.
    Gone(String),
}

/// Outcome of waiting for a reboot.
enum Wait {
    Reached(Probe),
    NotReached(Option<Probe>),
    Lost(String),
}

struct Run<'a, R> {
    remote: &'a mut R,
    host: &'a str,
    cred: &'a DomainCredential,
    opts: &'a RepairOptions,
    on_event: &'a mut (dyn FnMut(RepairEvent) + Send),
    out: RepairOutcome,
    /// Something ran since the last verification.
    dirty: bool,
    /// What was true before any change.
    before: HostBaseline,
    /// Set when a verification showed the host worse than `before`: the detail.
    worse: Option<String>,
}

impl<R: Remote> Run<'_, R> {
    fn emit(&mut self, e: RepairEvent) {
        (self.on_event)(e);
    }

    fn record(&mut self, action: &Action, step: &str, ok: bool, detail: &str) {
        let rec = StepRecord {
            action: action.name().to_string(),
            step: step.to_string(),
            ok,
            detail: redact(detail, self.cred),
        };
        self.emit(RepairEvent::StepFinished {
            host: self.host.to_string(),
            step: rec.clone(),
        });
        self.out.steps.push(rec);
    }

    /// Re-probes; `Healthy` / `Next` / `Lost`.
    async fn verify_now(&mut self) -> Flow {
        self.dirty = false;
        match verify(self.remote, self.host).await {
            Ok(v) => self.verified(v),
            Err(e) => Flow::Lost(format!(
                "verification failed: {}",
                redact(&e.to_string(), self.cred)
            )),
        }
    }

    fn verified(&mut self, v: Verification) -> Flow {
        self.dirty = false;
        self.emit(RepairEvent::Verified {
            host: self.host.to_string(),
            healthy: v.healthy,
            diagnosis: v.diagnosis.clone(),
        });
        let healthy = v.healthy;
        let after = HostBaseline::of(Some(&v.probe));
        self.out.verification = Some(v);
        if let Some(why) = self.before.worse(&after) {
            return self.made_worse(&after, &why);
        }
        if healthy {
            Flow::Healthy
        } else {
            Flow::Next
        }
    }

    /// Records that the host is worse than before (loudly: an event and the detail).
    fn made_worse(&mut self, after: &HostBaseline, why: &str) -> Flow {
        let detail = format!("before: {}; after: {after}; {why}", self.before);
        self.emit(RepairEvent::MadeWorse {
            host: self.host.to_string(),
            detail: detail.clone(),
        });
        self.worse = Some(detail);
        Flow::Worse
    }

    /// Runs a credential script; `Ok(true)` reported ok, `Ok(false)` reported failure (or
    /// could not be sent), `Err` the command failed on the wire: `(message, lost)`, where
    /// `lost` is a lost connection or a timeout (the step may have happened) rather than a
    /// refusal (401, Access Denied: it never ran).
    async fn credential_script(
        &mut self,
        action: &Action,
        step: &str,
        script: &str,
    ) -> Result<bool, (String, bool)> {
        self.send_credential_script(action, step, script, "ts.reset=ok")
            .await
            .map_err(|e| {
                (
                    redact(&e.to_string(), self.cred),
                    e.kind.is_connection_loss(),
                )
            })
    }

    /// A credential script failed on the wire: lost (it may have happened: never resent,
    /// [`Run::unknown_after`]) or refused (it never ran: the ladder stops as before).
    async fn script_failed(
        &mut self,
        action: &Action,
        cmdlet: &str,
        (e, lost): (String, bool),
    ) -> Flow {
        if lost {
            self.unknown_after(action, "run", cmdlet, e).await
        } else {
            self.lost(action, "run", e)
        }
    }

    /// Sends `script` with the repair credential on stdin and records what it reported
    /// (`ok_note` on success). `Ok(answered ok)`; `Err` when the connection failed (not
    /// recorded: the caller decides what a lost connection means).
    async fn send_credential_script(
        &mut self,
        action: &Action,
        step: &str,
        script: &str,
        ok_note: &str,
    ) -> Result<bool, RemoteError> {
        let payload = match StdinPayload::for_credential(self.cred) {
            Ok(p) => p,
            Err(e) => {
                self.record(action, step, false, &format!("not run: {e}"));
                return Ok(false);
            }
        };
        // The intent goes out before the step does (the CLI's journal makes it durable).
        self.emit(RepairEvent::StepStarting {
            host: self.host.to_string(),
            action: action.name().to_string(),
            step: step.to_string(),
        });
        let res = self
            .remote
            .run_powershell(script, Some(payload.as_bytes()))
            .await;
        drop(payload);
        let out = res?;
        match parse_reset_output(&out) {
            Ok(()) => {
                self.record(action, step, true, ok_note);
                Ok(true)
            }
            Err(msg) => {
                self.record(action, step, false, &msg.to_string());
                Ok(false)
            }
        }
    }

    async fn sc_reset(
        &mut self,
        action: &Action,
        step: &str,
        command: &str,
    ) -> Result<bool, String> {
        match self.remote.run_cmd(command).await {
            Ok(out) => {
                let parsed = parse_nltest(&format!("{}\n{}", out.stdout, out.stderr));
                let ok = parsed.is_success() && out.exit_code == 0;
                self.record(
                    action,
                    step,
                    ok,
                    &parsed.evidence("nltest /sc_reset").join("; "),
                );
                Ok(ok)
            }
            Err(e) => Err(redact(&e.to_string(), self.cred)),
        }
    }

    async fn action(&mut self, action: &Action) -> Flow {
        self.emit(RepairEvent::ActionStarted {
            host: self.host.to_string(),
            action: action.name().to_string(),
            summary: action.summary(),
        });
        match action {
            Action::ScReset { command, .. } => match self.sc_reset(action, "run", command).await {
                Ok(true) => {
                    self.out.changed = true;
                    self.verify_now().await
                }
                Ok(false) => {
                    self.dirty = true;
                    Flow::Next
                }
                Err(e) => self.lost(action, "run", e),
            },
            Action::ResetMachinePassword {
                script,
                pin_command,
                ..
            } => {
                match self.credential_script(action, "run", script).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.dirty = true;
                        return Flow::Next;
                    }
                    Err(e) => {
                        return self
                            .script_failed(action, "Reset-ComputerMachinePassword", e)
                            .await
                    }
                }
                self.out.changed = true;
                self.pin_then_verify(action, pin_command.as_deref()).await
            }
            Action::RepairSecureChannel {
                script,
                pin_command,
                ..
            } => match self.credential_script(action, "run", script).await {
                // Its True only says a DC was rediscovered: bind and verify live.
                Ok(true) => {
                    self.out.changed = true;
                    self.pin_then_verify(action, pin_command.as_deref()).await
                }
                Ok(false) => {
                    self.dirty = true;
                    Flow::Next
                }
                Err(e) => {
                    self.script_failed(action, "Test-ComputerSecureChannel -Repair", e)
                        .await
                }
            },
            Action::Rejoin {
                domain,
                leave_script,
                join_script,
                ..
            } => self.rejoin(action, domain, leave_script, join_script).await,
            // Not run on the member.
            Action::DcResetAccount { .. }
            | Action::EnableAccount { .. }
            | Action::RestoreAccount { .. }
            | Action::RebuildRequired { .. } => Flow::Next,
        }
    }

    /// After a password reset: bind the member to the DC written (`nltest
    /// /sc_reset:<domain>\<dc>`, its status read numerically), because neither
    /// `Reset-ComputerMachinePassword` nor `-Repair` binds it there (DOMAIN.md "Repairing
    /// it", revised); then the live verify (`/sc_verify` in the probe), whatever the bind
    /// answered, since only the verify proves the channel.
    async fn pin_then_verify(&mut self, action: &Action, pin: Option<&str>) -> Flow {
        if let Some(pin) = pin {
            if let Err(e) = self.sc_reset(action, "pin", pin).await {
                return self.lost(action, "pin", e);
            }
        }
        self.verify_now().await
    }

    /// The connection was lost with a destructive step in flight (`e`): it may have
    /// happened. It is never sent again: the host is probed again (reconnecting, bounded)
    /// and the ladder stops with what is known (issue 16): healthy, or broken and not
    /// retried, or not answering (never worse decides).
    async fn unknown_after(
        &mut self,
        action: &Action,
        step: &str,
        cmdlet: &str,
        e: String,
    ) -> Flow {
        let sent = format!("connection lost after {cmdlet} was sent ({e}); it may have happened");
        self.record(action, step, false, &sent);
        self.out.changed = true;
        self.dirty = true;
        match self.reprobe().await {
            Ok(v) => {
                let healthy = v.healthy;
                let diagnosis = v.diagnosis.clone();
                if let Flow::Worse = self.verified(v) {
                    return Flow::Worse;
                }
                self.out.status = RepairStatus::UnknownThenVerified;
                self.out.detail = if healthy {
                    format!("{sent}; verified state: healthy")
                } else {
                    format!(
                        "{sent}; verified state: broken ({diagnosis}); not retried: a second {cmdlet} could write yet another password while the first one's fate is unknown"
                    )
                };
                Flow::Stop
            }
            Err(why) => Flow::Gone(format!("{sent}; {why}")),
        }
    }

    /// Probes again after a lost connection: at once, then after each reconnect (at most
    /// `max_reconnects`, each bounded by `reboot_timeout`) when the remote can reconnect.
    async fn reprobe(&mut self) -> Result<Verification, String> {
        let mut last = match verify(self.remote, self.host).await {
            Ok(v) => return Ok(v),
            Err(e) => redact(&e.to_string(), self.cred),
        };
        if self.remote.supports_reconnect() {
            for attempt in 1..=self.opts.max_reconnects.max(1) {
                self.emit(RepairEvent::WaitingForReboot {
                    host: self.host.to_string(),
                    attempt,
                });
                if let Err(e) = self
                    .remote
                    .reconnect_after_reboot(self.opts.reboot_timeout)
                    .await
                {
                    last = redact(&e.to_string(), self.cred);
                    break;
                }
                self.emit(RepairEvent::Reconnected {
                    host: self.host.to_string(),
                });
                match verify(self.remote, self.host).await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = redact(&e.to_string(), self.cred),
                }
            }
        }
        Err(format!("the host did not answer again: {last}"))
    }

    fn lost(&mut self, action: &Action, step: &str, e: String) -> Flow {
        self.record(action, step, false, &e);
        self.dirty = true;
        Flow::Lost(e)
    }

    async fn rejoin(&mut self, action: &Action, domain: &str, leave: &str, join: &str) -> Flow {
        if !self.remote.supports_reconnect() {
            self.record(
                action,
                "leave",
                false,
                "not started: this connection cannot wait for the host to reboot",
            );
            return Flow::Next;
        }
        // Leave, restart.
        match self.restarting_script(action, "leave", leave).await {
            Some(true) => {}
            Some(false) => {
                self.dirty = true;
                return Flow::Next;
            }
            None => {}
        }
        self.out.changed = true;
        self.dirty = true;
        match self
            .wait_for(action, |p| p.part_of_domain == Some(false))
            .await
        {
            Wait::Reached(_) => {}
            Wait::NotReached(p) => {
                self.record(
                    action,
                    "reboot",
                    false,
                    "the host came back still joined to the domain; not rejoining",
                );
                return match p {
                    Some(p) => self.verified(verification_of(self.host, p)),
                    None => Flow::Next,
                };
            }
            Wait::Lost(e) => return Flow::Lost(format!("after leaving the domain: {e}")),
        }
        // Join, restart.
        match self.restarting_script(action, "join", join).await {
            Some(true) | None => {}
            Some(false) => return self.verify_now().await,
        }
        let want = domain.to_string();
        match self
            .wait_for(action, move |p| {
                p.part_of_domain == Some(true) && same_dc(&p.domain, &want)
            })
            .await
        {
            Wait::Reached(p) => self.verified(verification_of(self.host, p)),
            Wait::NotReached(p) => {
                self.record(
                    action,
                    "reboot",
                    false,
                    "the host came back but is not in the domain",
                );
                match p {
                    Some(p) => self.verified(verification_of(self.host, p)),
                    None => self.verify_now().await,
                }
            }
            Wait::Lost(e) => Flow::Lost(format!("after joining the domain: {e}")),
        }
    }

    /// A credential script that restarts the host. `Some(ok)` it answered; `None` the
    /// connection went away (expected when the restart wins the race).
    async fn restarting_script(
        &mut self,
        action: &Action,
        step: &str,
        script: &str,
    ) -> Option<bool> {
        let res = self
            .send_credential_script(action, step, script, "ts.reset=ok; restarting")
            .await;
        match res {
            Ok(ok) => Some(ok),
            Err(e) if e.kind.is_connection_loss() => {
                let msg = format!(
                    "connection lost ({}); assuming the restart began",
                    redact(&e.to_string(), self.cred)
                );
                self.record(action, step, true, &msg);
                None
            }
            Err(e) => {
                self.record(action, step, false, &e.to_string());
                Some(false)
            }
        }
    }

    /// Reconnects after a restart until a probe satisfies `want` (bounded).
    async fn wait_for(&mut self, action: &Action, want: impl Fn(&Probe) -> bool) -> Wait {
        let mut last = None;
        for attempt in 1..=self.opts.max_reconnects.max(1) {
            self.emit(RepairEvent::WaitingForReboot {
                host: self.host.to_string(),
                attempt,
            });
            if let Err(e) = self
                .remote
                .reconnect_after_reboot(self.opts.reboot_timeout)
                .await
            {
                let msg = format!(
                    "the host did not come back: {}",
                    redact(&e.to_string(), self.cred)
                );
                self.record(action, "reboot", false, &msg);
                return Wait::Lost(msg);
            }
            self.emit(RepairEvent::Reconnected {
                host: self.host.to_string(),
            });
            let probe = probe_host(self.remote).await.ok();
            if let Some(p) = probe {
                if want(&p) {
                    self.record(
                        action,
                        "reboot",
                        true,
                        &format!(
                            "back after restart (part of domain: {:?}, domain {})",
                            p.part_of_domain, p.domain
                        ),
                    );
                    return Wait::Reached(p);
                }
                last = Some(p);
            }
        }
        Wait::NotReached(last)
    }
}

/// Runs `plan`'s member actions on the host behind `remote`, lightest first, stopping as
/// soon as the host verifies healthy; then reports the verified state. `cred` is the
/// domain account that may reset machine passwords (sent over stdin only). Uses
/// [`RepairOptions::default`] for reboots.
pub async fn repair_host<R: Remote>(
    remote: &mut R,
    plan: &HostPlan,
    cred: &DomainCredential,
    on_event: &mut (dyn FnMut(RepairEvent) + Send),
) -> RepairOutcome {
    repair_host_with(remote, plan, cred, &RepairOptions::default(), on_event).await
}

/// [`repair_host`] with explicit reboot bounds.
pub async fn repair_host_with<R: Remote>(
    remote: &mut R,
    plan: &HostPlan,
    cred: &DomainCredential,
    opts: &RepairOptions,
    on_event: &mut (dyn FnMut(RepairEvent) + Send),
) -> RepairOutcome {
    let host = plan.host.as_str();
    if plan.actions.is_empty() {
        return if plan.diagnosis == Diagnosis::Healthy {
            RepairOutcome::new(host, RepairStatus::NothingToDo, "healthy; nothing to do")
        } else {
            RepairOutcome::new(host, RepairStatus::NotAttempted, plan.why.clone())
        };
    }
    if let Some(Action::RebuildRequired { twins }) =
        plan.actions.iter().find(|a| a.target() == Target::Manual)
    {
        return RepairOutcome::new(
            host,
            RepairStatus::ManualActionRequired,
            format!(
                "a person must rebuild or rename one machine (shares its name or machine SID with {}); nothing was reset",
                twins.join(", ")
            ),
        );
    }
    let actions: Vec<&Action> = plan.member_actions().collect();
    if actions.is_empty() {
        return RepairOutcome::new(
            host,
            RepairStatus::NotAttempted,
            "its actions run on a domain controller (repair_on_dc)",
        );
    }
    let mut run = Run {
        remote,
        host,
        cred,
        opts,
        on_event,
        out: RepairOutcome::new(host, RepairStatus::StillBroken, ""),
        dirty: false,
        before: HostBaseline::of(None),
        worse: None,
    };
    // Never worse: record what is true before any change, from a probe of now (the plan's
    // may be old). A host that heals itself or turns out to be a DC is left alone.
    let first = match verify(run.remote, host).await {
        Ok(v) => v,
        Err(e) => {
            run.out.status = RepairStatus::NotAttempted;
            run.out.detail = format!(
                "not attempted: the probe before any change failed ({}); nothing was changed",
                redact(&e.to_string(), cred)
            );
            return run.out;
        }
    };
    run.before = HostBaseline::of(Some(&first.probe));
    if first.probe.is_domain_controller() {
        run.out.status = RepairStatus::NotAttempted;
        run.out.detail = format!(
            "a domain controller (DomainRole {}): never repaired; nothing was changed",
            first.probe.domain_role.unwrap_or_default()
        );
        run.out.verification = Some(first);
        return run.out;
    }
    if first.healthy {
        // A plan with DC-side actions reaches here only after they ran ([`repair_on_dc`]
        // first, e.g. a re-enabled account): then it is they that healed the host.
        let after_dc = plan
            .actions
            .iter()
            .any(|a| matches!(a.target(), Target::DomainController { .. }));
        (run.out.status, run.out.detail) = if after_dc {
            (
                RepairStatus::Repaired,
                "verified healthy after the DC-side action; nothing was run on the member"
                    .to_string(),
            )
        } else {
            (
                RepairStatus::NothingToDo,
                "verified healthy before any change; nothing was run".to_string(),
            )
        };
        run.out.verification = Some(first);
        return run.out;
    }
    let mut last = "";
    for action in actions {
        last = action.name();
        let (flow, lost) = match run.action(action).await {
            // One more try to see where the host is.
            Flow::Lost(e) => (run.verify_now().await, Some(e)),
            flow => (flow, None),
        };
        match flow {
            Flow::Healthy => {
                run.out.status = if run.out.changed || lost.is_some() {
                    RepairStatus::Repaired
                } else {
                    RepairStatus::NothingToDo
                };
                run.out.detail = format!("verified healthy after {last}");
                return run.out;
            }
            Flow::Next => {
                if let Some(e) = lost {
                    run.out.status = RepairStatus::StillBroken;
                    run.out.detail = format!("stopped at {last}: {e}");
                    return run.out;
                }
                // A password was written and now the member reaches no DC (the DC written
                // went away mid-repair, issue 16): another reset could land nowhere useful
                // or on a DC that never saw the first; stop with what is known.
                let stranded = run
                    .out
                    .verification
                    .as_ref()
                    .and_then(|v| match &v.diagnosis {
                        Diagnosis::DcUnreachable { .. } | Diagnosis::NoDcLocator => {
                            Some(v.diagnosis.to_string())
                        }
                        _ => None,
                    });
                let wrote = matches!(last, "reset_machine_password" | "repair_secure_channel")
                    && run
                        .out
                        .steps
                        .iter()
                        .any(|s| s.action == last && s.step == "run" && s.ok);
                if let Some(why) = stranded.filter(|_| wrote) {
                    run.out.status = RepairStatus::StillBroken;
                    run.out.detail = format!(
                        "stopped after {last}: a new password was written, then the member reached no DC ({why}); not retried: a second reset cannot be checked until a DC answers"
                    );
                    return run.out;
                }
            }
            Flow::Worse => return run.finish_worse(last),
            Flow::Lost(v) => {
                let e = lost.map(|e| format!("{e}; ")).unwrap_or_default();
                return run.finish_gone(last, &format!("{e}{v}"));
            }
            Flow::Stop => return run.out,
            Flow::Gone(e) => return run.finish_gone(last, &e),
        }
    }
    if run.dirty || run.out.verification.is_none() {
        match run.verify_now().await {
            Flow::Lost(v) | Flow::Gone(v) => return run.finish_gone(last, &v),
            Flow::Worse => return run.finish_worse(last),
            Flow::Stop => return run.out,
            Flow::Healthy | Flow::Next => {}
        }
    }
    match &run.out.verification {
        Some(v) if v.healthy => {
            run.out.status = if run.out.changed {
                RepairStatus::Repaired
            } else {
                RepairStatus::NothingToDo
            };
            run.out.detail = "verified healthy".to_string();
        }
        Some(v) => {
            run.out.status = RepairStatus::StillBroken;
            run.out.detail = format!("still broken after every planned action: {}", v.diagnosis);
        }
        None => {
            run.out.status = RepairStatus::Unverified;
            run.out.detail = "could not verify".to_string();
        }
    }
    run.out
}

impl<R> Run<'_, R> {
    /// Ends the ladder on a verification worse than the baseline.
    fn finish_worse(mut self, action: &str) -> RepairOutcome {
        let worse = self.worse.take().unwrap_or_default();
        self.out.status = RepairStatus::MadeWorse;
        self.out.changed = true;
        self.out.detail = format!("MADE WORSE by {action}; the ladder was stopped: {worse}");
        self.out
    }
}

impl<R: Remote> Run<'_, R> {
    /// Ends the ladder on a host that answered before the repair and no longer does.
    fn finish_gone(mut self, action: &str, error: &str) -> RepairOutcome {
        let after = HostBaseline::of(None);
        self.out.verification = None;
        match self.before.worse(&after) {
            Some(why) => {
                let _ = self.made_worse(&after, &format!("{why} ({error})"));
                self.finish_worse(action)
            }
            None => {
                self.out.status = RepairStatus::Unverified;
                self.out.detail = format!("stopped at {action}: {error}");
                self.out
            }
        }
    }
}

/// Finishes a host whose repair was interrupted (the process was killed) after the intent
/// to run `step` of `action` was recorded and before its outcome was: the step may have
/// happened. Only probes, never a destructive step. Healthy ends it
/// [`RepairStatus::Repaired`]; broken is [`RepairStatus::UnknownThenVerified`] (not
/// retried: a person or a later run decides, knowing a password may have been written); no
/// answer is [`RepairStatus::Unverified`].
pub async fn verify_interrupted<R: Remote>(
    remote: &mut R,
    host: &str,
    action: &str,
    step: &str,
) -> RepairOutcome {
    let interrupted = format!("interrupted during {action} {step}; it may have happened");
    let mut out = RepairOutcome::new(host, RepairStatus::Unverified, "");
    out.changed = true;
    out.steps.push(StepRecord {
        action: action.to_string(),
        step: step.to_string(),
        ok: false,
        detail: format!("{interrupted} (the run was stopped before its result was recorded)"),
    });
    match verify(remote, host).await {
        Ok(v) => {
            (out.status, out.detail) = if v.healthy {
                (
                    RepairStatus::Repaired,
                    format!("{interrupted}; verified state: healthy"),
                )
            } else {
                (
                    RepairStatus::UnknownThenVerified,
                    format!(
                        "{interrupted}; verified state: broken ({}); not retried",
                        v.diagnosis
                    ),
                )
            };
            out.verification = Some(v);
        }
        Err(e) => {
            out.detail =
                format!("{interrupted}; the host could not be probed ({e}): state unknown");
        }
    }
    out
}

/// Runs `plan`'s DC-side actions ([`Action::DcResetAccount`], [`Action::EnableAccount`],
/// [`Action::RestoreAccount`])
/// through `dir`, the DCs reached over LDAPS as the repair account, stopping at the first
/// failure. The member is not touched: after a reset it stays broken until it is rejoined,
/// which the outcome says; after a re-enable the caller runs the plan's member actions
/// (the pin) and the verify.
pub async fn repair_on_dc<D: Directory>(
    dir: &mut D,
    plan: &HostPlan,
    on_event: &mut (dyn FnMut(RepairEvent) + Send),
) -> RepairOutcome {
    let host = plan.host.as_str();
    let mut out = RepairOutcome::new(
        host,
        RepairStatus::NotAttempted,
        "no DC-side action planned",
    );
    for action in &plan.actions {
        let (dc_name, computer, kind) = match action {
            Action::DcResetAccount { dc, computer } => (dc, computer, DcStep::Reset),
            Action::EnableAccount { dc, computer } => (dc, computer, DcStep::Enable),
            Action::RestoreAccount { dc, computer } => (dc, computer, DcStep::Restore),
            _ => continue,
        };
        on_event(RepairEvent::ActionStarted {
            host: host.to_string(),
            action: action.name().to_string(),
            summary: action.summary(),
        });
        on_event(RepairEvent::StepStarting {
            host: host.to_string(),
            action: action.name().to_string(),
            step: kind.step().to_string(),
        });
        let (ok, detail) = match match kind {
            DcStep::Enable => dir.enable_computer_account(dc_name, computer).await,
            DcStep::Restore => dir.restore_computer_account(dc_name, computer).await,
            DcStep::Reset => dir.reset_computer_account(dc_name, computer).await,
        } {
            Ok(what) => (true, what),
            Err(e) => (false, e.to_string()),
        };
        let rec = StepRecord {
            action: action.name().to_string(),
            step: kind.step().to_string(),
            ok,
            detail: excerpt(&detail, 300),
        };
        on_event(RepairEvent::StepFinished {
            host: host.to_string(),
            step: rec.clone(),
        });
        out.steps.push(rec);
        match (ok, kind) {
            (true, DcStep::Reset) => {
                out.changed = true;
                out.status = RepairStatus::AccountResetOnDc;
                out.detail = format!(
                    "computer account {computer}$ reset on {dc_name}; the host stays broken until it is rejoined (a reboot does not restore it)"
                );
            }
            (true, DcStep::Enable | DcStep::Restore) => {
                out.changed = true;
                // Not verified here: the member's pin and live test follow (the caller
                // runs the plan's member actions next).
                out.status = RepairStatus::Unverified;
                out.detail = format!(
                    "computer account {computer}$ {} on {dc_name}; not verified on the member yet",
                    kind.done()
                );
            }
            (false, _) => {
                out.status = RepairStatus::StillBroken;
                out.detail = format!(
                    "the {} on {dc_name} failed ({}); the host is unchanged",
                    kind.what(),
                    excerpt(&detail, 200)
                );
                return out;
            }
        }
    }
    out
}

/// The DC-side steps [`repair_on_dc`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DcStep {
    Reset,
    Enable,
    Restore,
}

impl DcStep {
    /// The step name in the outcome's records.
    fn step(self) -> &'static str {
        match self {
            DcStep::Reset => "ldap_reset",
            DcStep::Enable => "ldap_enable",
            DcStep::Restore => "ldap_restore",
        }
    }

    /// In a failure message: "the … on DC failed".
    fn what(self) -> &'static str {
        match self {
            DcStep::Reset => "account reset",
            DcStep::Enable => "re-enable",
            DcStep::Restore => "restore from the AD Recycle Bin",
        }
    }

    /// In a success message: "computer account X$ … on DC".
    fn done(self) -> &'static str {
        match self {
            DcStep::Reset => "reset",
            DcStep::Enable => "re-enabled",
            DcStep::Restore => "restored from the AD Recycle Bin",
        }
    }
}
