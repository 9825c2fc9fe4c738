//! The human reporter's lines, as strings: a host's probe line, the per-diagnosis breakdown,
//! the plans, the phase totals, a repair's step and outcome lines and what a repair left.
//! Pure (no I/O, no clock), so what a person reads is testable; [`super::Reporter`] and the
//! phase reporters print them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use playbooks::{Finding, HostPlan, HostState, RepairEvent, RepairOutcome, RepairStatus, Summary};
use report::HostReport;

/// One host's probe line: name, state, diagnosis unless healthy, time.
pub fn host_line(host: &str, width: usize, f: &Finding, ms: u64) -> String {
    let state = f.diagnosis.state();
    let detail = if state == HostState::Healthy {
        String::new()
    } else {
        format!("  {}", f.diagnosis)
    };
    format!(
        "{host:<width$}  {:<14}{detail}  ({:.2}s)",
        state.to_string(),
        ms as f64 / 1000.0
    )
}

/// A probe line numbered `[done/total]`.
pub fn numbered(done: usize, total: usize, line: &str) -> String {
    format!("[{done:>w$}/{total}] {line}", w = total.to_string().len())
}

/// The counts of a phase on one line, titled (`check`, `before repair`, ...).
pub fn summary_line(title: &str, s: &Summary, elapsed: Duration) -> String {
    format!(
        "{title}: {} hosts: {} healthy, {} broken, {} unreachable, {} access problem, {} unknown ({:.1}s)",
        s.total(),
        s.healthy,
        s.broken,
        s.unreachable,
        s.access_problem,
        s.unknown,
        elapsed.as_secs_f64()
    )
}

/// The hosts that are not healthy, by diagnosis, each with its deciding evidence.
pub fn breakdown(reports: &[HostReport]) -> String {
    let mut by: BTreeMap<&'static str, Vec<&HostReport>> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.state != HostState::Healthy) {
        by.entry(r.diagnosis.name()).or_default().push(r);
    }
    let mut out = String::new();
    for (name, hosts) in by {
        let _ = writeln!(out, "\n{name} ({}):", hosts.len());
        for r in hosts {
            let _ = writeln!(out, "  {}: {}", r.host, r.diagnosis);
            if let Some(e) = r.evidence.last() {
                let _ = writeln!(out, "      evidence: {e}");
            }
        }
    }
    out
}

/// The plans that change something: numbered actions, why, reboots and needs.
pub fn plans(plans: &[HostPlan]) -> String {
    let changing: Vec<&HostPlan> = plans.iter().filter(|p| !p.actions.is_empty()).collect();
    if changing.is_empty() {
        return "\nplan: nothing to do\n".to_string();
    }
    let mut out = String::from("\nplan:\n");
    for p in changing {
        let _ = writeln!(out, "  {} ({}):", p.host, p.diagnosis.name());
        for (i, a) in p.actions.iter().enumerate() {
            let _ = writeln!(out, "    {}. {}", i + 1, a.summary());
        }
        let _ = writeln!(out, "    why: {}", p.why);
        if p.needs_reboot {
            let _ = writeln!(out, "    needs a reboot");
        }
        for n in &p.needs {
            let _ = writeln!(out, "    needs: {n}");
        }
    }
    out
}

/// A host's repair outcome as the repair phase reports it.
pub fn outcome_line(o: &RepairOutcome, elapsed: Duration) -> String {
    format!(
        "{}: {} ({:.1}s): {}",
        o.host,
        o.status,
        elapsed.as_secs_f64(),
        o.detail
    )
}

/// A playbook's repair event as a line under its host: an action starting, a step's
/// result, a reboot waited for, a verification, a host made worse.
pub fn repair_event_line(ev: &RepairEvent) -> String {
    match ev {
        RepairEvent::ActionStarted {
            host,
            action,
            summary,
        } => format!("  {host}: {action}: {}", one_line(summary)),
        RepairEvent::StepFinished { host, step } => {
            let result = if step.ok { "ok" } else { "failed" };
            let detail = one_line(&step.detail);
            if detail.is_empty() {
                format!("  {host}: {} {}: {result}", step.action, step.step)
            } else {
                format!(
                    "  {host}: {} {}: {result}: {detail}",
                    step.action, step.step
                )
            }
        }
        RepairEvent::WaitingForReboot { host, attempt } => {
            format!("  {host}: waiting for the host to come back (attempt {attempt})")
        }
        RepairEvent::Reconnected { host } => format!("  {host}: WinRM answers again"),
        RepairEvent::StepStarting { host, action, step } => {
            format!("  {host}: {action} {step}: sending")
        }
        RepairEvent::Verified {
            host,
            healthy: true,
            ..
        } => format!("  {host}: verified: healthy"),
        RepairEvent::Verified {
            host, diagnosis, ..
        } => format!("  {host}: verified: {}", one_line(&diagnosis.to_string())),
        RepairEvent::MadeWorse { host, detail } => {
            format!("  {host}: MADE WORSE: {}", one_line(detail))
        }
    }
}

/// What the repairs left: counts before and after, the hosts made worse (always counted),
/// and the hosts that need a person.
pub fn repair_totals(
    before: &Summary,
    after: &Summary,
    elapsed: Duration,
    reports: &[HostReport],
) -> String {
    let mut out = String::from("\n");
    let _ = writeln!(out, "{}", summary_line("before repair", before, elapsed));
    let _ = writeln!(
        out,
        "{}",
        summary_line("after repair (verified)", after, elapsed)
    );
    // Never worse (issue 11): counted on every repair, listed first and loudly.
    let worse: Vec<&HostReport> = reports
        .iter()
        .filter(|r| {
            r.repair
                .as_ref()
                .is_some_and(|o| o.status == RepairStatus::MadeWorse)
        })
        .collect();
    let _ = writeln!(out, "made worse: {}", worse.len());
    for r in worse {
        let _ = writeln!(
            out,
            "  MADE WORSE {}: {}",
            r.host,
            r.repair.as_ref().map_or("", |o| o.detail.as_str())
        );
    }
    let needs_person: Vec<&HostReport> = reports.iter().filter(|r| needs_a_person(r)).collect();
    if !needs_person.is_empty() {
        let _ = writeln!(out, "needs a person:");
        for r in needs_person {
            let _ = writeln!(
                out,
                "  {}: {}",
                r.host,
                r.plan.as_ref().map(|p| p.why.as_str()).unwrap_or("")
            );
        }
    }
    out
}

/// A repair said so, or the host is broken and nothing automatic was planned.
fn needs_a_person(r: &HostReport) -> bool {
    r.repair
        .as_ref()
        .is_some_and(|o| o.status == RepairStatus::ManualActionRequired)
        || r.plan
            .as_ref()
            .is_some_and(|p| !p.changes_anything() && r.state == HostState::Broken)
}

/// Host output on one line: whitespace runs (newlines included) become one space, control
/// characters (escape sequences) are dropped.
fn one_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use playbooks::StepRecord;

    #[test]
    fn step_lines_name_the_host_the_action_and_the_result_on_one_line() {
        let ev = RepairEvent::StepFinished {
            host: "ws01".into(),
            step: StepRecord {
                action: "reset_machine_password".into(),
                step: "run".into(),
                ok: false,
                detail: "access\r\n denied\x1b[31m".into(),
            },
        };
        assert_eq!(
            repair_event_line(&ev),
            "  ws01: reset_machine_password run: failed: access denied[31m"
        );
        let ev = RepairEvent::ActionStarted {
            host: "ws01".into(),
            action: "sc_reset".into(),
            summary: "nltest /sc_reset:lab.test".into(),
        };
        assert_eq!(
            repair_event_line(&ev),
            "  ws01: sc_reset: nltest /sc_reset:lab.test"
        );
        let ev = RepairEvent::WaitingForReboot {
            host: "ws01".into(),
            attempt: 2,
        };
        assert_eq!(
            repair_event_line(&ev),
            "  ws01: waiting for the host to come back (attempt 2)"
        );
    }

    #[test]
    fn the_summary_line_keeps_its_words() {
        let s = Summary {
            healthy: 3,
            broken: 1,
            ..Summary::default()
        };
        assert_eq!(
            summary_line("check", &s, Duration::from_millis(1240)),
            "check: 4 hosts: 3 healthy, 1 broken, 0 unreachable, 0 access problem, 0 unknown (1.2s)"
        );
    }

    #[test]
    fn numbered_lines_align_on_the_total() {
        assert_eq!(numbered(3, 120, "x"), "[  3/120] x");
    }
}
