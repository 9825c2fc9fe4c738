//! Phases 4 and 5 of `repair`: the guards (`--max-changes`, the confirmation), the
//! guarded repairs with bounded fan-out (DC-side actions over LDAPS first, then the member's
//! ladder over WinRM, each verified by probing again), their events to the repair reporter,
//! and what the repairs left.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use playbooks::{
    HostPlan, HostState, RepairEvent, RepairOptions, RepairOutcome, RepairStatus, Summary,
};
use report::HostReport;
use tokio::sync::mpsc;

use super::swept::Swept;
use crate::dc::{DcAccess, DcEvidence, LdapDirectory};
use crate::engine::{self, Abnormal, Limits};
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

/// Repairs the hosts at `to_change` (those a resumed journal says were repaired keep that
/// outcome), reporting as they go; every outcome by host, the resumed ones included.
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
    let jobs: Vec<(Target, HostPlan)> = to_change
        .iter()
        .filter_map(|&i| Some((swept.targets.get(i)?.clone(), plans.get(i)?.clone())))
        .filter(|(t, _)| !swept.repaired.contains_key(&t.name))
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
    let mut reporter = RepairReporter::new(settings.format, swept.journal.clone());
    let (tx, reporting) = phases::spawn(move |ev| reporter.handle(ev));
    let events = tx.clone();
    let (outcomes, _) = engine::fan_out(
        "repair",
        jobs.clone(),
        limits,
        &tx,
        move |_, (target, plan)| {
            let options = options.clone();
            let directory = directory.clone();
            let events = events.clone();
            let laps = laps.get(&target.name).cloned();
            async move { repair_one(target, plan, options, directory, laps, events).await }
        },
        abnormal_outcome,
        Some(cancel),
    )
    .await;
    drop(tx);
    let _ = reporting.await;
    let mut by_host: HashMap<String, RepairOutcome> = swept.repaired.clone();
    for ((target, _), outcome) in jobs.iter().zip(outcomes) {
        by_host.insert(target.name.clone(), outcome);
    }
    by_host
}

/// The outcome of a repair that did not return: timed out, panicked, or never started.
fn abnormal_outcome((target, _): &(Target, HostPlan), abnormal: Abnormal) -> RepairOutcome {
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

/// One host's repair: the DC-side actions first (bound as its repair account), then the
/// member's ladder over WinRM. Never fails: what could not be tried is the outcome.
async fn repair_one(
    target: Target,
    plan: HostPlan,
    options: RepairOptions,
    directory: Option<(DcAccess, Arc<DcEvidence>)>,
    laps: Option<LapsRefresh>,
    events: mpsc::UnboundedSender<RepairPhaseEvent>,
) -> RepairOutcome {
    let not_attempted = |detail: String| RepairOutcome {
        host: target.name.clone(),
        status: RepairStatus::NotAttempted,
        detail,
        steps: Vec::new(),
        verification: None,
        changed: false,
    };
    let mut on_event = move |ev: RepairEvent| {
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
    let mut outcome =
        playbooks::repair_host_with(&mut remote, &plan, &repair, &options, &mut on_event).await;
    remote.close().await;
    // The DC-side steps came first: they are part of what was done.
    if let Some(dc) = dc_outcome {
        let mut steps = dc.steps;
        steps.append(&mut outcome.steps);
        outcome.steps = steps;
        outcome.changed |= dc.changed;
    }
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

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
