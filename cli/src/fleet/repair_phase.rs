//! Phases 4 and 5 of `repair`: the guards (`--max-changes`, the confirmation), the
//! guarded repairs with bounded fan-out (DC-side actions over LDAPS first, then the member's
//! ladder over WinRM, each verified by probing again), their events to the repair reporter,
//! and what the repairs left.
//!
//! Crash safety (issue 16): the intent of every destructive step is journaled (fsynced)
//! from the playbook's [`RepairEvent::StepStarting`], on the repair's own task, before
//! the step is sent; the outcome follows through the reporter. A resumed run leaves hosts
//! with an outcome alone and only probes those interrupted mid-step
//! ([`playbooks::verify_interrupted`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use playbooks::{
    CommandOutput, HostPlan, HostState, Remote, RemoteError, RemoteErrorKind, RepairEvent,
    RepairOptions, RepairOutcome, RepairStatus, Summary,
};
use report::HostReport;
use tokio::sync::mpsc;

use super::swept::Swept;
use crate::dc::{DcAccess, DcEvidence, LdapDirectory};
use crate::engine::{self, Abnormal, Limits};
use crate::journal::{Entry, Journal};
use crate::remote::{LapsRefresh, WinrmRemote};
use crate::reporter::console;
use crate::reporter::phases::{self, RepairPhaseEvent, RepairReporter};
use crate::run_plan::Format;
use crate::sweep;
use crate::targets::Target;

/// Why `repair` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// More hosts would change than `--max-changes` allows.
    #[error("{hosts} hosts would be changed, more than --max-changes {max}; nothing was changed (narrow with --limit or raise the limit)")]
    TooManyChanges {
        /// Hosts that would change.
        hosts: usize,
        /// `--max-changes`.
        max: usize,
    },
    /// No `--yes` and nobody at a terminal to ask.
    #[error("{0} hosts would be changed; refusing without --yes when stdin is not a terminal")]
    NobodyToAsk(usize),
    /// The person at the terminal said no (the reporter has said nothing was changed).
    #[error("nothing was changed")]
    Declined,
}

/// The guards before anything changes: `--max-changes`, then (on real hosts, without
/// `--yes`) the person at the terminal.
pub(crate) fn guard(
    to_change: usize,
    max_changes: Option<usize>,
    ask: bool,
) -> Result<(), Refusal> {
    if let Some(max) = max_changes.filter(|max| to_change > *max) {
        return Err(Refusal::TooManyChanges {
            hosts: to_change,
            max,
        });
    }
    if to_change == 0 || !ask {
        return Ok(());
    }
    if !console::can_ask() {
        return Err(Refusal::NobodyToAsk(to_change));
    }
    if console::confirm_repair(to_change) {
        Ok(())
    } else {
        Err(Refusal::Declined)
    }
}

/// The indexes of the plans with something to run: on the member, or on a DC (planned only
/// with DC access). Manual-only plans are reported, never counted or confirmed.
pub(crate) fn to_change(plans: &[HostPlan]) -> Vec<usize> {
    plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.changes_anything())
        .map(|(i, _)| i)
        .collect()
}

/// How the repairs run: concurrency and deadlines from the flags.
#[derive(Debug, Clone)]
pub(crate) struct RepairSettings {
    /// Hosts at once: the probe phase's choice (`--concurrency` or the descriptors').
    pub(crate) concurrency: crate::limits::Concurrency,
    /// `--host-deadline`, in seconds (of a probe; a repair gets its reboots on top).
    pub(crate) host_deadline: u64,
    /// `--reboot-timeout`, in seconds.
    pub(crate) reboot_timeout: u64,
    /// The stdout format (text shows each step).
    pub(crate) format: Format,
}

/// One host's job: its target, its plan, and the step a resumed journal says it was
/// interrupted in (then it is only probed).
type Job = (Target, HostPlan, Option<(String, String)>);

/// Repairs the hosts at `to_change` (those a resumed journal says were repaired keep that
/// outcome; those it says were interrupted mid-step are only probed), reporting as they
/// go; every outcome by host, the resumed ones included.
pub(crate) async fn run(
    swept: &Swept,
    plans: &[HostPlan],
    to_change: &[usize],
    settings: &RepairSettings,
    cancel: &engine::tokio_util_cancel::Token,
) -> HashMap<String, RepairOutcome> {
    // Two reboots, each waited for up to max_reconnects times: a repair must reach a safe
    // point rather than be cut between leaving and rejoining the domain.
    let limits = Limits::new(
        settings.concurrency.hosts,
        Duration::from_secs(
            settings.host_deadline
                + 2 * u64::from(RepairOptions::default().max_reconnects) * settings.reboot_timeout
                + 60,
        ),
    )
    .with_concurrency(settings.concurrency);
    let options = RepairOptions {
        reboot_timeout: Duration::from_secs(settings.reboot_timeout),
        ..RepairOptions::default()
    };
    let jobs: Vec<Job> = to_change
        .iter()
        .filter_map(|&i| {
            let target = swept.targets.get(i)?.clone();
            let interrupted = swept.interrupted.get(&target.name).cloned();
            Some((target, plans.get(i)?.clone(), interrupted))
        })
        .filter(|(t, _, _)| !swept.repaired.contains_key(&t.name))
        .collect();
    // With --laps, a host that reboots gets its LAPS value read again if the restart
    // refuses the one in hand: by the computer name its probe gave.
    let laps: HashMap<String, LapsRefresh> = match &swept.dc {
        Some((access, _)) => swept
            .targets
            .iter()
            .zip(&swept.observed)
            .filter(|(t, _)| t.laps)
            .filter_map(|(t, o)| {
                let computer = o.observation.probe.as_ref()?.computer_name.clone();
                (!computer.is_empty()).then(|| {
                    let refresh = LapsRefresh {
                        ad: access.read.clone(),
                        computer,
                    };
                    (t.name.clone(), refresh)
                })
            })
            .collect(),
        None => HashMap::new(),
    };
    let laps = Arc::new(laps);
    let directory = swept.dc.clone();
    let journal = swept.journal.clone();
    let mut reporter = RepairReporter::new(settings.format, swept.journal.clone());
    let (tx, reporting) = phases::spawn(move |ev| reporter.handle(ev));
    let events = tx.clone();
    let (outcomes, _) = engine::fan_out(
        "repair",
        &jobs,
        limits,
        &tx,
        move |_, (target, plan, interrupted)| {
            let options = options.clone();
            let directory = directory.clone();
            let events = events.clone();
            let laps = laps.get(&target.name).cloned();
            let journal = journal.clone();
            async move {
                let sinks = Sinks { events, journal };
                match interrupted {
                    Some((action, step)) => reprobe_one(target, &action, &step, laps).await,
                    None => repair_one(target, plan, options, directory, laps, sinks).await,
                }
            }
        },
        abnormal_outcome,
        Some(cancel),
    )
    .await;
    drop(tx);
    let _ = reporting.await;
    let mut by_host: HashMap<String, RepairOutcome> = swept.repaired.clone();
    for ((target, _, _), outcome) in jobs.iter().zip(outcomes) {
        by_host.insert(target.name.clone(), outcome);
    }
    by_host
}

/// The outcome of a repair that did not return: timed out, panicked, or never started.
fn abnormal_outcome((target, _, _): &Job, abnormal: Abnormal) -> RepairOutcome {
    RepairOutcome {
        host: target.name.clone(),
        status: if abnormal == Abnormal::NotStarted {
            RepairStatus::NotAttempted
        } else {
            RepairStatus::Unverified
        },
        detail: match abnormal {
            Abnormal::DeadlineExceeded(d) => format!(
                "no result within {}s; the host's state is unknown",
                d.as_secs()
            ),
            Abnormal::Panicked(m) => format!("internal error: {m}"),
            Abnormal::NotStarted => "not attempted: the sweep was interrupted".into(),
        },
        steps: Vec::new(),
        verification: None,
        changed: false,
    }
}

/// What remains: each record gets its plan and, where a repair ran (now or in the resumed
/// run), its outcome; counted by the verified state for repaired hosts, the diagnosis for
/// the others.
pub(crate) fn record_outcomes(
    reports: &mut [HostReport],
    plans: &[HostPlan],
    by_host: &HashMap<String, RepairOutcome>,
) -> Summary {
    let mut remaining = Summary::default();
    for (r, p) in reports.iter_mut().zip(plans) {
        r.plan = Some(p.clone());
        let state: HostState = match by_host.get(&r.host).filter(|_| p.changes_anything()) {
            Some(o) => {
                r.repair = Some(o.clone());
                o.remaining_state(p)
            }
            None => r.state,
        };
        remaining.add(state);
    }
    remaining
}

/// Where a repair's events go: the reporter, and the journal (intents, written here).
struct Sinks {
    events: mpsc::UnboundedSender<RepairPhaseEvent>,
    journal: Option<Arc<Journal>>,
}

/// A host a resumed journal says was interrupted in `step` of `action`: connected to and
/// probed, nothing else ([`playbooks::verify_interrupted`]).
async fn reprobe_one(
    target: Target,
    action: &str,
    step: &str,
    laps: Option<LapsRefresh>,
) -> RepairOutcome {
    let Some(connect) = target.connect.clone() else {
        return RepairOutcome {
            host: target.name.clone(),
            status: RepairStatus::Unverified,
            detail: format!(
                "interrupted during {action} {step}; it may have happened; no connecting credential to verify it"
            ),
            steps: Vec::new(),
            verification: None,
            changed: true,
        };
    };
    let mut remote = match WinrmRemote::new(sweep::session_config(&target, &connect)) {
        Ok(r) => r,
        Err(e) => {
            return RepairOutcome {
                host: target.name.clone(),
                status: RepairStatus::Unverified,
                detail: format!(
                    "interrupted during {action} {step}; it may have happened; cannot connect to verify it: {e}"
                ),
                steps: Vec::new(),
                verification: None,
                changed: true,
            }
        }
    };
    if let Some(refresh) = laps {
        remote = remote.with_laps_refresh(refresh);
    }
    let outcome = playbooks::verify_interrupted(&mut remote, &target.name, action, step).await;
    remote.close().await;
    outcome
}

/// One host's repair: the DC-side actions first (bound as its repair account), then the
/// member's ladder over WinRM. Never fails: what could not be tried is the outcome. The
/// intent of each destructive step is journaled (and fsynced) before the step is sent.
async fn repair_one(
    target: Target,
    plan: HostPlan,
    options: RepairOptions,
    directory: Option<(DcAccess, Arc<DcEvidence>)>,
    laps: Option<LapsRefresh>,
    sinks: Sinks,
) -> RepairOutcome {
    let not_attempted = |detail: String| RepairOutcome {
        host: target.name.clone(),
        status: RepairStatus::NotAttempted,
        detail,
        steps: Vec::new(),
        verification: None,
        changed: false,
    };
    let Sinks { events, journal } = sinks;
    let intent_lost = Arc::new(AtomicBool::new(false));
    let lost = intent_lost.clone();
    let mut on_event = move |ev: RepairEvent| {
        if let (Some(j), RepairEvent::StepStarting { host, action, step }) = (&journal, &ev) {
            // On this task, before the playbook sends the step: durable first. If it
            // cannot be, the member's remote refuses the step ([`JournaledRemote`]).
            let intent = Entry::RepairStarted {
                host: host.clone(),
                action: action.clone(),
                step: step.clone(),
            };
            if let Err(e) = j.try_append(&intent) {
                tracing::error!(host = %host, error = %e, "cannot journal the intent of a repair step; it is not sent");
                lost.store(true, Ordering::SeqCst);
            }
        }
        let _ = events.send(ev.into());
    };
    let Some(repair) = target.repair.clone() else {
        return not_attempted(format!(
            "no repair account for {}: set trustsweep_repair_user/trustsweep_repair_password or pass --repair-user",
            target.name
        ));
    };
    let on_dc = plan
        .actions
        .iter()
        .any(|a| matches!(a.target(), playbooks::Target::DomainController { .. }));
    let mut dc_outcome = None;
    if on_dc {
        let Some((access, evidence)) = directory else {
            return not_attempted(
                "the plan's actions run on a domain controller: give LDAPS access with --ldap URL"
                    .into(),
            );
        };
        // DC-side actions bind as this host's repair account.
        let access = DcAccess {
            reset_as: Some(repair.clone()),
            ..access
        };
        let mut dir = LdapDirectory { access, evidence };
        let outcome = playbooks::repair_on_dc(&mut dir, &plan, &mut on_event).await;
        // Done when nothing runs on the member after it, or the DC refused.
        if plan.member_actions().next().is_none() || outcome.status == RepairStatus::StillBroken {
            return outcome;
        }
        dc_outcome = Some(outcome);
    }
    let Some(connect) = target.connect.clone() else {
        return not_attempted("no connecting credential".into());
    };
    let mut remote = match WinrmRemote::new(sweep::session_config(&target, &connect)) {
        Ok(r) => r,
        Err(e) => return not_attempted(e.to_string()),
    };
    if let Some(refresh) = laps {
        remote = remote.with_laps_refresh(refresh);
    }
    let mut remote = JournaledRemote {
        inner: remote,
        intent_lost,
    };
    let mut outcome =
        playbooks::repair_host_with(&mut remote, &plan, &repair, &options, &mut on_event).await;
    remote.inner.close().await;
    // The DC-side steps came first: they are part of what was done.
    if let Some(dc) = dc_outcome {
        let mut steps = dc.steps;
        steps.append(&mut outcome.steps);
        outcome.steps = steps;
        outcome.changed |= dc.changed;
    }
    outcome
}

/// The member's remote during a repair: refuses credential scripts (the destructive steps,
/// the only commands with stdin) once the intent of one could not be journaled, so a step
/// is never sent unless its intent is durable. The refusal is not a lost connection: the
/// playbook records the step as not run.
struct JournaledRemote<R> {
    inner: R,
    intent_lost: Arc<AtomicBool>,
}

impl<R: Remote + Send> Remote for JournaledRemote<R> {
    async fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, RemoteError> {
        if stdin.is_some() && self.intent_lost.load(Ordering::SeqCst) {
            return Err(RemoteError::new(
                RemoteErrorKind::AccessDenied,
                "not sent: its intent could not be written to the journal",
            ));
        }
        self.inner.run_powershell(script, stdin).await
    }

    async fn run_cmd(&mut self, command_line: &str) -> Result<CommandOutput, RemoteError> {
        self.inner.run_cmd(command_line).await
    }

    async fn reconnect_after_reboot(&mut self, timeout: Duration) -> Result<(), RemoteError> {
        self.inner.reconnect_after_reboot(timeout).await
    }

    fn supports_reconnect(&self) -> bool {
        self.inner.supports_reconnect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    /// Counts what reaches it; answers every command with `ok`.
    struct Counting(Vec<String>);

    impl Remote for Counting {
        async fn run_powershell(
            &mut self,
            script: &str,
            _stdin: Option<&[u8]>,
        ) -> Result<CommandOutput, RemoteError> {
            self.0.push(script.to_string());
            Ok(CommandOutput::ok("ok"))
        }

        async fn run_cmd(&mut self, command_line: &str) -> Result<CommandOutput, RemoteError> {
            self.0.push(command_line.to_string());
            Ok(CommandOutput::ok("ok"))
        }
    }

    #[test]
    fn a_step_whose_intent_was_not_journaled_is_not_sent() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let mut r = JournaledRemote {
            inner: Counting(Vec::new()),
            intent_lost: flag.clone(),
        };
        rt.block_on(async {
            assert!(r.run_powershell("reset", Some(b"u\r\np\r\n")).await.is_ok());
            flag.store(true, Ordering::SeqCst);
            let refused = r.run_powershell("reset", Some(b"u\r\np\r\n")).await;
            assert_eq!(refused.unwrap_err().kind, RemoteErrorKind::AccessDenied);
            // Probes (no stdin) and cmd lines still run: the host can be verified.
            assert!(r.run_powershell("probe", None).await.is_ok());
            assert!(r.run_cmd("nltest").await.is_ok());
        });
        assert_eq!(r.inner.0, ["reset", "probe", "nltest"]);
        assert!(!r.supports_reconnect());
    }

    #[test]
    fn max_changes_is_checked_before_anyone_is_asked() {
        assert_eq!(
            guard(5, Some(4), true),
            Err(Refusal::TooManyChanges { hosts: 5, max: 4 })
        );
        assert_eq!(guard(4, Some(4), false), Ok(()));
        assert_eq!(
            guard(0, None, true),
            Ok(()),
            "nothing to change: no question"
        );
        assert_eq!(
            Refusal::TooManyChanges { hosts: 5, max: 4 }.to_string(),
            "5 hosts would be changed, more than --max-changes 4; nothing was changed (narrow with --limit or raise the limit)"
        );
    }
}
