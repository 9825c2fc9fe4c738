//! `check`, `plan` and `repair`: the sweep's phases wired to the engine and reporters.
//!
//! check: probe every host, analyse the fleet, report.
//! plan: the same, then the ordered actions `repair` would take per host (changes nothing).
//! repair: the same, then the guarded repairs (domain credential over stdin only), each
//! verified by probing again; the exit code says what remains.
//!
//! Each command validates its outputs into a [`OutputPlan`] first, then runs the phases
//! (`swept`: probe and diagnose; planning here; `repair_phase`: repair and verify) and
//! hands what it found to its [`Reporter`] as events; `finish` writes the files and
//! picks the exit code. Nothing here prints.

mod finish;
mod repair_phase;
mod swept;

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use playbooks::{fleet_pdcs, plan_fleet, summarize, HostPlan, PlanOptions, Summary};
use report::{Document, HostReport};

use self::finish::{document, exit_code, finish};
use self::repair_phase::{Refusal, RepairSettings};
use self::swept::{reports, sweep, Swept};
use crate::engine;
use crate::exit;
use crate::heading;
use crate::reporter::{self, console, Reporter, SweepEvent};
pub use crate::run_plan::Format;
use crate::run_plan::OutputPlan;
use crate::targets::{FailOn, SourceArgs, Target};

pub use self::finish::WriteReportsError;
pub use self::repair_phase::Refusal as RepairRefusal;
pub use self::swept::SweepError;

/// `trustsweep check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
    format: Format,
}

/// Options shared by `plan` and `repair`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = heading::REPAIR)]
pub struct PlanFlags {
    /// Allow the heaviest member-side fix: leave the domain, reboot, rejoin, reboot.
    #[arg(long)]
    allow_rejoin: bool,
    /// Allow resetting a computer account on the DC (over LDAPS, with --ldap) for the hosts
    /// named with --dc-reset-host. The member then stays broken until it rejoins; a reboot
    /// does not heal it.
    #[arg(long)]
    allow_dc_reset: bool,
    /// A host (inventory name) whose computer account may be reset on the DC: for hosts
    /// nobody can get into, on your word; never inferred from a 401. Repeatable; needs
    /// --allow-dc-reset.
    #[arg(long, value_name = "NAME", requires = "allow_dc_reset")]
    dc_reset_host: Vec<String>,
    /// Allow re-enabling a disabled computer account (over LDAPS, with --ldap, as the
    /// repair account, which needs the right to write userAccountControl); the member is
    /// then pinned to that DC and verified.
    #[arg(long)]
    allow_enable: bool,
    /// Allow restoring a deleted computer account from the AD Recycle Bin (over LDAPS, with
    /// --ldap, as the repair account, which needs the Reanimate-Tombstones right and write
    /// access to the object): only when a preflight finds it there with its password; the
    /// member is then pinned to that DC and verified.
    #[arg(long)]
    allow_restore: bool,
}

/// `trustsweep plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    flags: PlanFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
    format: Format,
}

/// `trustsweep repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    flags: PlanFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
    format: Format,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y', help_heading = heading::REPAIR)]
    yes: bool,
    /// Refuse to run if more than N hosts would be changed.
    #[arg(long, value_name = "N", help_heading = heading::REPAIR)]
    max_changes: Option<usize>,
    /// Seconds to wait for a host to come back from each reboot of a rejoin.
    #[arg(long, value_name = "SECONDS", default_value_t = 900, help_heading = heading::REPAIR)]
    reboot_timeout: u64,
}

fn interrupt_token() -> engine::tokio_util_cancel::Token {
    let token = engine::tokio_util_cancel::Token::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            console::interrupted();
            t.cancel();
        }
        // A second Ctrl-C stops at once: the journal already holds every finished host.
        if tokio::signal::ctrl_c().await.is_ok() {
            console::stopped();
            // Shells left open would count against MaxShellsPerUser for hours: delete
            // them (bounded) before leaving.
            winrm::session::delete_open_shells(std::time::Duration::from_secs(5)).await;
            std::process::exit(exit::INTERRUPTED);
        }
    });
    token
}

/// One run of `check`, `plan` or `repair`: its validated outputs, the reporter that
/// presents it, and the token a Ctrl-C cancels.
struct Run {
    outputs: OutputPlan,
    reporter: Reporter,
    cancel: engine::tokio_util_cancel::Token,
}

impl Run {
    /// Validates the outputs of `command` and starts listening for Ctrl-C; `Err` is the
    /// exit code after saying why the outputs are not valid.
    fn start(command: &str, source: &SourceArgs, format: Format) -> Result<Run, i32> {
        let outputs = output_plan(command, source, format)?;
        let reporter = Reporter::new(outputs.format);
        Ok(Run {
            outputs,
            reporter,
            cancel: interrupt_token(),
        })
    }

    /// Phase 1 ([`sweep`]); `Err` is the exit code after saying why it could not start.
    async fn sweep(&self, command: &str, source: &SourceArgs) -> Result<Swept, i32> {
        sweep(command, source, &self.outputs, &self.cancel)
            .await
            .map_err(|e| {
                reporter::failed(Some(command), &e);
                exit::USAGE
            })
    }

    /// Writes the outputs of `doc` and picks the exit code ([`finish`]).
    fn finish(&self, doc: &Document, fail_on: &[FailOn], targets: &[Target]) -> i32 {
        finish(
            &self.reporter,
            doc,
            &self.cancel,
            &self.outputs,
            fail_on,
            targets,
        )
    }
}

/// The validated outputs of `command`, or the exit code after saying why not.
fn output_plan(command: &str, source: &SourceArgs, format: Format) -> Result<OutputPlan, i32> {
    OutputPlan::new(source, format).map_err(|e| {
        reporter::failed(Some(command), &e);
        exit::USAGE
    })
}

/// `trustsweep check`.
pub async fn check(args: CheckArgs) -> i32 {
    let t0 = Instant::now();
    let run = match Run::start("check", &args.source, args.format) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut swept = match run.sweep("check", &args.source).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let summary = summarize(&swept.findings);
    // Moved, not copied: check needs the observations only in its report.
    let reports = swept::into_reports(
        std::mem::take(&mut swept.observed),
        std::mem::take(&mut swept.findings),
    );
    let reporter = &run.reporter;
    let _ = reporter.report(SweepEvent::Diagnosed { reports: &reports });
    let _ = reporter.report(SweepEvent::Counted {
        command: "check",
        summary: &summary,
        elapsed: t0.elapsed(),
    });
    let doc = document("check", summary, None, t0, &swept, reports);
    run.finish(&doc, &args.source.fail_on, &swept.targets)
}

/// `trustsweep history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history database written by --history.
    #[arg(value_name = "FILE")]
    path: std::path::PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
    format: Format,
}

/// Shows, per host, what changed across the recorded runs.
pub fn history(args: HistoryArgs) -> i32 {
    let view = match report::History::open(&args.path).and_then(|h| h.changes()) {
        Ok(v) => v,
        Err(e) => {
            reporter::failed(
                Some("history"),
                &format_args!("{}: {e}", args.path.display()),
            );
            return exit::USAGE;
        }
    };
    match console::history(&view, args.format) {
        Ok(()) => exit::OK,
        Err(_) => exit::USAGE,
    }
}

/// `trustsweep merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON reports of the shards (from --output json=PATH or --format json).
    #[arg(value_name = "REPORT", required = true)]
    reports: Vec<std::path::PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Json, help_heading = heading::OUTPUT)]
    format: Format,
    /// Also write FORMAT=PATH files (json, junit, csv, html, markdown); repeatable.
    #[arg(long = "output", short = 'o', value_name = "FORMAT=PATH", help_heading = heading::OUTPUT)]
    outputs: Vec<String>,
}

/// Combines shard reports into one; the exit code is the merged run's.
pub fn merge(args: MergeArgs) -> i32 {
    let outputs = match OutputPlan::files_only(&args.outputs, args.format) {
        Ok(o) => o,
        Err(e) => {
            reporter::failed(Some("merge"), &e);
            return exit::USAGE;
        }
    };
    let mut docs = Vec::new();
    for path in &args.reports {
        match read_report(path) {
            Ok(d) => docs.push(d),
            Err(e) => {
                reporter::failed(
                    Some("merge"),
                    &format_args!("{}: not a trustsweep JSON report: {e}", path.display()),
                );
                return exit::USAGE;
            }
        }
    }
    let doc = match report::merge(docs) {
        Ok(d) => d,
        Err(e) => {
            reporter::failed(Some("merge"), &e);
            return exit::USAGE;
        }
    };
    for (format, path) in &outputs.files {
        if let Err(e) = report::write_file(*format, path, &doc) {
            reporter::failed(
                Some("merge"),
                &format_args!("cannot write {}: {e}", path.display()),
            );
            return exit::USAGE;
        }
    }
    if Reporter::new(outputs.format)
        .report(SweepEvent::Merged { doc: &doc })
        .is_err()
    {
        return exit::USAGE;
    }
    exit_code(doc.remaining.as_ref().unwrap_or(&doc.summary), &[])
}

/// A JSON report from a file.
fn read_report(path: &std::path::Path) -> Result<Document, ReadReportError> {
    let text = std::fs::read_to_string(path)?;
    Ok(serde_json::from_str(&text)?)
}

/// A shard's report could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadReportError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The sweep's DC access (and what it read of the DCs) when it has one and `allowed`, the
/// flag a preflight needs, is set.
fn dc_allowed(
    swept: &Swept,
    allowed: bool,
) -> Option<&(crate::dc::DcAccess, std::sync::Arc<crate::dc::DcEvidence>)> {
    swept.dc.as_ref().filter(|_| allowed)
}

/// With `--allow-rejoin` and DC access, the rejoin preflight of every host whose plan could
/// end in a rejoin; none without DC access (so no rejoin is planned).
async fn rejoin_preflights(
    swept: &Swept,
    flags: &PlanFlags,
) -> BTreeMap<String, playbooks::RejoinPreflight> {
    let Some((access, _)) = dc_allowed(swept, flags.allow_rejoin) else {
        return BTreeMap::new();
    };
    let mut hosts = Vec::new();
    for ((f, o), t) in swept
        .findings
        .iter()
        .zip(&swept.observed)
        .zip(&swept.targets)
    {
        let could_rejoin = matches!(
            f.diagnosis,
            playbooks::Diagnosis::StalePassword
                | playbooks::Diagnosis::TrustBroken { .. }
                | playbooks::Diagnosis::StaleDc { .. }
                | playbooks::Diagnosis::AccountDeleted
                | playbooks::Diagnosis::AccountDisabledOrMissing
        );
        let (Some(probe), Some(repair)) = (&o.observation.probe, &t.repair) else {
            continue;
        };
        if could_rejoin && !probe.computer_name.is_empty() {
            hosts.push((
                t.name.clone(),
                probe.computer_name.clone(),
                repair.user.clone(),
            ));
        }
    }
    crate::dc::rejoin_preflights(access, &hosts).await
}

/// With `--allow-restore` and DC access, the Recycle Bin preflight of every host whose
/// computer account the DCs no longer hold; none otherwise (so no restore is planned).
async fn restore_preflights(
    swept: &Swept,
    flags: &PlanFlags,
) -> BTreeMap<String, playbooks::RestorePreflight> {
    let Some((access, evidence)) = dc_allowed(swept, flags.allow_restore) else {
        return BTreeMap::new();
    };
    let hosts: Vec<(String, String)> = swept
        .findings
        .iter()
        .zip(&swept.observed)
        .filter(|(f, _)| f.diagnosis == playbooks::Diagnosis::AccountDeleted)
        .filter_map(|(f, o)| {
            let probe = o.observation.probe.as_ref()?;
            (!probe.computer_name.is_empty()).then(|| (f.host.clone(), probe.computer_name.clone()))
        })
        .collect();
    crate::dc::restore_preflights(access, evidence, &hosts).await
}

fn make_plans(
    swept: &Swept,
    flags: &PlanFlags,
    rejoin_preflight: BTreeMap<String, playbooks::RejoinPreflight>,
    restore_preflight: BTreeMap<String, playbooks::RestorePreflight>,
) -> Vec<HostPlan> {
    let observations: Vec<_> = swept
        .observed
        .iter()
        .map(|o| o.observation.clone())
        .collect();
    let options = PlanOptions {
        allow_rejoin: flags.allow_rejoin,
        allow_dc_reset: flags.allow_dc_reset,
        allow_enable: flags.allow_enable,
        repair_credential_available: swept.targets.iter().any(|t| t.repair.is_some()),
        pdcs: fleet_pdcs_with_dcs(&observations, swept.dc.as_ref().map(|(_, ev)| ev.as_ref())),
        dc_access: swept.dc.is_some(),
        dc_reset_hosts: flags.dc_reset_host.clone(),
        rejoin_preflight,
        allow_restore: flags.allow_restore,
        restore_preflight,
    };
    plan_fleet(&swept.findings, &observations, &options)
}

/// The PDC emulator of each domain: with `--ldap`, the domain object's `fSMORoleOwner`
/// (authoritative); else the members' DC locator (`nltest /dsgetdc: /pdc`, voted per
/// domain), its names spelled as the DCs read over LDAP spell them.
fn fleet_pdcs_with_dcs(
    observations: &[playbooks::HostObservation],
    dcs: Option<&crate::dc::DcEvidence>,
) -> std::collections::BTreeMap<String, String> {
    let mut pdcs = fleet_pdcs(observations);
    if let Some(ev) = dcs {
        for pdc in pdcs.values_mut() {
            if let Some(dns) = ev.dns_name_of(pdc) {
                *pdc = dns;
            }
        }
        if let Some(pdc) = &ev.pdc {
            if let Some((_, domain)) = pdc.split_once('.') {
                pdcs.insert(domain.to_ascii_lowercase(), pdc.clone());
            }
        }
    }
    pdcs
}

/// What `plan` and `repair` share up to their plans.
struct Planned {
    run: Run,
    swept: Swept,
    plans: Vec<HostPlan>,
    summary: Summary,
    reports: Vec<HostReport>,
}

/// Phases 1 to 3, shared by `plan` and `repair`: validate the outputs, sweep, diagnose,
/// plan, and (as text) show the findings and the plans. `Err` is the exit code of a run
/// that could not start.
async fn sweep_and_plan(
    command: &str,
    source: &SourceArgs,
    flags: &PlanFlags,
    format: Format,
) -> Result<Planned, i32> {
    let run = Run::start(command, source, format)?;
    let swept = run.sweep(command, source).await?;
    if let Some(unknown) = flags
        .dc_reset_host
        .iter()
        .find(|n| !swept.targets.iter().any(|t| t.name.eq_ignore_ascii_case(n)))
    {
        reporter::failed(
            Some(command),
            &PlanRefusal::UnknownDcResetHost(unknown.clone()),
        );
        return Err(exit::USAGE);
    }
    let preflight = rejoin_preflights(&swept, flags).await;
    let restore = restore_preflights(&swept, flags).await;
    let plans = make_plans(&swept, flags, preflight, restore);
    let summary = summarize(&swept.findings);
    let mut reports = reports(&swept);
    for (r, p) in reports.iter_mut().zip(&plans) {
        r.plan = Some(p.clone());
    }
    let _ = run
        .reporter
        .report(SweepEvent::Diagnosed { reports: &reports });
    let _ = run.reporter.report(SweepEvent::Planned { plans: &plans });
    Ok(Planned {
        run,
        swept,
        plans,
        summary,
        reports,
    })
}

/// Why `plan` or `repair` stopped before planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanRefusal {
    /// `--dc-reset-host` names no host of the sweep.
    #[error("--dc-reset-host {0} is not a host of this sweep (check the inventory and --limit); nothing was changed")]
    UnknownDcResetHost(String),
}

/// `trustsweep plan`: a dry run; changes nothing anywhere.
pub async fn plan(args: PlanArgs) -> i32 {
    let t0 = Instant::now();
    let Planned {
        run,
        swept,
        plans,
        summary,
        reports,
    } = match sweep_and_plan("plan", &args.source, &args.flags, args.format).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let reporter = &run.reporter;
    let _ = reporter.report(SweepEvent::Counted {
        command: "plan",
        summary: &summary,
        elapsed: t0.elapsed(),
    });
    let _ = reporter.report(SweepEvent::DryRunDone {
        would_change: plans.iter().filter(|p| p.changes_anything()).count(),
    });
    let doc = document("plan", summary, None, t0, &swept, reports);
    run.finish(&doc, &args.source.fail_on, &swept.targets)
}

/// `trustsweep repair`.
pub async fn repair(args: RepairArgs) -> i32 {
    let t0 = Instant::now();
    let Planned {
        run,
        swept,
        plans,
        summary,
        mut reports,
    } = match sweep_and_plan("repair", &args.source, &args.flags, args.format).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let reporter = &run.reporter;
    let to_change = repair_phase::to_change(&plans);
    // The confirmation guards real hosts; a built-in lab is simulated and needs none.
    let ask = !args.yes && args.source.lab.is_none();
    match repair_phase::guard(to_change.len(), args.max_changes, ask) {
        Ok(()) => {}
        // The person who said no was told nothing changed.
        Err(Refusal::Declined) => return exit::USAGE,
        Err(e) => {
            reporter::failed(Some("repair"), &e);
            return exit::USAGE;
        }
    }
    let settings = RepairSettings {
        concurrency: swept.concurrency,
        host_deadline: args.source.host_deadline,
        reboot_timeout: args.reboot_timeout,
        format: run.outputs.format,
    };
    // Hosts a resumed journal says were repaired keep that outcome.
    let pending = to_change
        .iter()
        .filter(|&&i| {
            swept
                .targets
                .get(i)
                .is_some_and(|t| !swept.repaired.contains_key(&t.name))
        })
        .count();
    let _ = reporter.report(SweepEvent::RepairStarting { hosts: pending });
    let by_host = repair_phase::run(&swept, &plans, &to_change, &settings, &run.cancel).await;
    let remaining = repair_phase::record_outcomes(&mut reports, &plans, &by_host);
    let _ = reporter.report(SweepEvent::Repaired {
        before: &summary,
        after: &remaining,
        elapsed: t0.elapsed(),
        reports: &reports,
    });
    let doc = document("repair", summary, Some(remaining), t0, &swept, reports);
    run.finish(&doc, &args.source.fail_on, &swept.targets)
}
