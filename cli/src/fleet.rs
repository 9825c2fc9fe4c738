//! `check`, `plan` and `repair`: the sweep's phases wired to the engine and reporters.
//!
//! check: probe every host, analyse the fleet, report.
//! plan: the same, then the ordered actions `repair` would take per host (changes nothing).
//! repair: the same, then the guarded repairs (domain credential over stdin only), each
//! verified by probing again; the exit code says what remains.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use playbooks::{
    diagnose_fleet, diagnose_host, fleet_pdcs, plan_fleet, summarize, DomainCredential, Finding,
    HostPlan, HostState, PlanOptions, RepairEvent, RepairOptions, RepairOutcome, RepairStatus,
    Summary,
};
use tokio::sync::mpsc;

use crate::engine::{self, Abnormal, Event, Limits};
use crate::exit;
use crate::journal::{self, Entry, Journal};
use crate::remote::WinrmRemote;
use crate::report::{Document, HostReport};
use crate::sweep::{self, Observed};
use crate::targets::{self, FailOn, SourceArgs, Target};

/// Output format on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A line per host as it finishes, then a summary.
    Text,
    /// One JSON document at the end.
    Json,
}

/// `trustsweep check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Options shared by `plan` and `repair`.
#[derive(Debug, Clone, Args)]
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
}

/// `trustsweep plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    flags: PlanFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
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
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Refuse to run if more than N hosts would be changed.
    #[arg(long, value_name = "N")]
    max_changes: Option<usize>,
    /// Seconds to wait for a host to come back from each reboot of a rejoin.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    reboot_timeout: u64,
}

/// Phase 1 + 2 for any fleet command: resolve, probe every host, analyse the fleet.
struct Swept {
    targets: Vec<Target>,
    observed: Vec<Observed>,
    findings: Vec<Finding>,
    peak: usize,
    /// The journal this run appends to (`--journal`, or the `--resume` file).
    journal: Option<Arc<Journal>>,
    /// Repairs a resumed journal says are done.
    repaired: HashMap<String, RepairOutcome>,
    /// DC access (`--ldap`) and what the DCs held when the sweep started.
    dc: Option<(crate::dc::DcAccess, Arc<crate::dc::DcEvidence>)>,
    _lab: Option<lab::wire::RunningLab>,
}

async fn sweep(
    command: &str,
    source: &SourceArgs,
    format: Format,
    cancel: &engine::tokio_util_cancel::Token,
) -> Result<Swept, String> {
    // Report destinations are checked before any host is contacted.
    for spec in source.outputs.iter().filter(|o| !o.starts_with("jsonl=")) {
        crate::report::parse_output(spec)?;
    }
    let resolved = targets::resolve(source).await?;
    let targets = resolved.targets;
    let mut done = match &source.resume {
        Some(path) => journal::load(path)?,
        None => journal::Done::default(),
    };
    let jsonl_output = source
        .outputs
        .iter()
        .find_map(|o| o.strip_prefix("jsonl=").map(std::path::PathBuf::from))
        .or_else(|| source.report.as_ref().map(|d| d.join("trustsweep.jsonl")));
    if let Some(dir) = &source.report {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create report directory {}: {e}", dir.display()))?;
    }
    let journal = match source
        .resume
        .as_ref()
        .or(source.journal.as_ref())
        .or(jsonl_output.as_ref())
    {
        Some(path) => Some(Arc::new(Journal::open(path)?)),
        None => None,
    };
    if let Some(j) = &journal {
        j.append(&Entry::RunStarted {
            command: command.to_string(),
            schema: crate::report::SCHEMA.to_string(),
            hosts: targets.len(),
        });
    }
    // Hosts a resumed journal already probed are not probed again.
    let todo: Vec<Target> = targets
        .iter()
        .filter(|t| !done.observed.contains_key(&t.name))
        .cloned()
        .collect();
    if !done.observed.is_empty() {
        tracing::info!(
            done = targets.len() - todo.len(),
            todo = todo.len(),
            "resuming from the journal"
        );
    }
    let limits = Limits {
        concurrency: source.concurrency,
        host_deadline: Duration::from_secs(source.host_deadline),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Event<Observed>>();
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).min(40);
    let journal_w = journal.clone();
    let reporter = tokio::spawn(async move {
        let mut progress = crate::progress::Progress::new("probe", 0);
        let (mut done, mut total) = (0usize, 0usize);
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::PhaseStarted { phase, total: n } => {
                    total = n;
                    progress = crate::progress::Progress::new(phase, n);
                    tracing::info!(phase, hosts = n, "phase started");
                }
                Event::HostFinished { result, .. } => {
                    done += 1;
                    progress.inc();
                    if let Some(j) = &journal_w {
                        j.append(&Entry::Observed {
                            host: result.observation.host.clone(),
                            observed: Box::new(result.clone()),
                        });
                    }
                    if format == Format::Text {
                        let f = diagnose_host(&result.observation);
                        let line =
                            host_line(&result.observation.host, width, &f, result.elapsed_ms);
                        progress.line(&format!(
                            "[{done:>w$}/{total}] {line}",
                            w = total.to_string().len()
                        ));
                    }
                }
                Event::PhaseFinished { phase, elapsed } => {
                    progress.finish();
                    tracing::info!(
                        phase,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "phase finished"
                    );
                }
            }
        }
    });
    // The DC-side evidence is read once, before the probes, for every host of the sweep.
    let dc = match resolved.dc_access {
        Some(access) => {
            let names: Vec<String> = targets.iter().map(sweep::guessed_computer_name).collect();
            let evidence = crate::dc::read_evidence(&access, &names).await;
            for p in &evidence.problems {
                tracing::warn!("DC-side evidence: {p}");
            }
            tracing::info!(
                dcs = evidence.dcs.len(),
                "computer accounts read from the DCs"
            );
            Some((access, Arc::new(evidence)))
        }
        None => None,
    };
    let (fresh, peak) = sweep::observe_all(
        &todo,
        limits,
        &tx,
        Some(cancel),
        dc.as_ref().map(|(_, e)| e.clone()),
    )
    .await;
    drop(tx);
    let _ = reporter.await;
    let mut fresh = todo
        .iter()
        .map(|t| t.name.clone())
        .zip(fresh)
        .collect::<HashMap<_, _>>();
    let observed: Vec<Observed> = targets
        .iter()
        .filter_map(|t| {
            done.observed
                .remove(&t.name)
                .or_else(|| fresh.remove(&t.name))
        })
        .collect();
    let observations: Vec<_> = observed.iter().map(|o| o.observation.clone()).collect();
    let findings = diagnose_fleet(&observations);
    Ok(Swept {
        targets,
        observed,
        findings,
        peak,
        journal,
        repaired: done.repaired,
        dc,
        _lab: resolved.lab,
    })
}

fn host_line(host: &str, width: usize, f: &Finding, ms: u64) -> String {
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

fn exit_code(s: &Summary, fail_on: &[FailOn]) -> i32 {
    let any = fail_on.is_empty() || fail_on.contains(&FailOn::Any);
    let broken = any || fail_on.contains(&FailOn::Broken);
    let unreachable = any || fail_on.contains(&FailOn::Unreachable);
    if broken && s.broken > 0 {
        exit::BROKEN
    } else if unreachable && s.unreachable + s.access_problem + s.unknown > 0 {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

fn print_summary(title: &str, s: &Summary, elapsed: Duration) {
    println!(
        "{title}: {} hosts: {} healthy, {} broken, {} unreachable, {} access problem, {} unknown ({:.1}s)",
        s.total(),
        s.healthy,
        s.broken,
        s.unreachable,
        s.access_problem,
        s.unknown,
        elapsed.as_secs_f64()
    );
}

fn print_breakdown(reports: &[HostReport]) {
    let mut by: BTreeMap<&'static str, Vec<&HostReport>> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.state != HostState::Healthy) {
        by.entry(r.diagnosis.name()).or_default().push(r);
    }
    for (name, hosts) in by {
        println!("\n{name} ({}):", hosts.len());
        for r in hosts {
            println!("  {}: {}", r.host, r.diagnosis);
            if let Some(e) = r.evidence.last() {
                println!("      evidence: {e}");
            }
        }
    }
}

fn reports(swept: &Swept) -> Vec<HostReport> {
    swept
        .observed
        .iter()
        .zip(&swept.findings)
        .map(|(o, f)| HostReport {
            host: f.host.clone(),
            address: o.address.clone(),
            state: f.diagnosis.state(),
            diagnosis: f.diagnosis.clone(),
            evidence: f.evidence.clone(),
            observation: o.observation.clone(),
            plan: None,
            repair: None,
            probe_ms: o.elapsed_ms,
        })
        .collect()
}

fn print_json(doc: &Document) -> i32 {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => {
            println!("{s}");
            exit::OK
        }
        Err(e) => {
            eprintln!("trustsweep: cannot write JSON: {e}");
            exit::USAGE
        }
    }
}

fn interrupt_token() -> engine::tokio_util_cancel::Token {
    let token = engine::tokio_util_cancel::Token::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("trustsweep: interrupted: no new hosts are started; finishing the running ones (Ctrl-C again to stop now)");
            t.cancel();
        }
        // A second Ctrl-C stops at once: the journal already holds every finished host.
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("trustsweep: stopped; resume with --resume JOURNAL");
            // Shells left open would count against MaxShellsPerUser for hours: delete
            // them (bounded) before leaving.
            winrm::session::delete_open_shells(std::time::Duration::from_secs(5)).await;
            std::process::exit(exit::INTERRUPTED);
        }
    });
    token
}

/// `trustsweep check`.
pub async fn check(args: CheckArgs) -> i32 {
    let t0 = Instant::now();
    let cancel = interrupt_token();
    let swept = match sweep("check", &args.source, args.format, &cancel).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trustsweep check: {e}");
            return exit::USAGE;
        }
    };
    let summary = summarize(&swept.findings);
    let reports = reports(&swept);
    if args.format == Format::Text {
        print_breakdown(&reports);
        println!();
        print_summary("check", &summary, t0.elapsed());
    }
    let doc = document("check", summary, None, t0, swept.peak, reports);
    finish(args.format, &doc, &cancel, &args.source, &swept.targets)
}

fn document(
    command: &str,
    summary: Summary,
    remaining: Option<Summary>,
    t0: Instant,
    peak: usize,
    hosts: Vec<HostReport>,
) -> Document {
    Document {
        schema: crate::report::SCHEMA.to_string(),
        command: command.to_string(),
        summary,
        remaining,
        elapsed_ms: ms(t0),
        peak_concurrency: peak,
        hosts,
    }
}

/// Prints the JSON document when asked, and turns what remains into the exit code.
fn finish(
    format: Format,
    doc: &Document,
    cancel: &engine::tokio_util_cancel::Token,
    source: &SourceArgs,
    targets: &[Target],
) -> i32 {
    if format == Format::Text {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        println!();
        print!("{}", crate::report::recap(doc, color));
    }
    if format == Format::Json && print_json(doc) != exit::OK {
        return exit::USAGE;
    }
    if let Err(e) = write_reports(doc, source, targets, cancel.is_cancelled()) {
        eprintln!("trustsweep: {e}");
        return exit::USAGE;
    }
    let fail_on = &source.fail_on;
    if cancel.is_cancelled() {
        return exit::INTERRUPTED;
    }
    exit_code(doc.remaining.as_ref().unwrap_or(&doc.summary), fail_on)
}

/// `--output FORMAT=PATH`, `--report DIR` and `--history FILE`.
fn write_reports(
    doc: &Document,
    source: &SourceArgs,
    targets: &[Target],
    interrupted: bool,
) -> Result<(), String> {
    use crate::report::{self, FileFormat, RenderOptions};
    let mut files: Vec<(FileFormat, std::path::PathBuf)> = Vec::new();
    for spec in &source.outputs {
        if spec.starts_with("jsonl=") {
            continue; // the journal, written as hosts finish
        }
        files.push(report::parse_output(spec)?);
    }
    if let Some(dir) = &source.report {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create report directory {}: {e}", dir.display()))?;
        for f in FileFormat::ALL {
            files.push((f, dir.join(f.default_file_name())));
        }
    }
    if !files.is_empty() {
        let groups = targets
            .iter()
            .map(|t| (t.name.clone(), t.groups.clone()))
            .collect();
        let opts = RenderOptions {
            groups,
            ..RenderOptions::default()
        };
        for (format, path) in files {
            report::write_file_with(format, &path, doc, &opts)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    // An interrupted run would record hosts it never checked: keep it out of the history.
    if let Some(path) = source.history.as_ref().filter(|_| !interrupted) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut history =
            report::History::open(path).map_err(|e| format!("history {}: {e}", path.display()))?;
        history
            .record(doc, now)
            .map_err(|e| format!("history {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `trustsweep history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history database written by --history.
    #[arg(value_name = "FILE")]
    path: std::path::PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Shows, per host, what changed across the recorded runs.
pub fn history(args: HistoryArgs) -> i32 {
    let view = match crate::report::History::open(&args.path).and_then(|h| h.changes()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("trustsweep history: {}: {e}", args.path.display());
            return exit::USAGE;
        }
    };
    match args.format {
        Format::Text => print!("{}", crate::report::render_history(&view)),
        Format::Json => match serde_json::to_string_pretty(&view) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("trustsweep history: {e}");
                return exit::USAGE;
            }
        },
    }
    exit::OK
}

/// `trustsweep merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON reports of the shards (from --output json=PATH or --format json).
    #[arg(value_name = "REPORT", required = true)]
    reports: Vec<std::path::PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Also write FORMAT=PATH files (json, junit, csv, html, markdown); repeatable.
    #[arg(long = "output", short = 'o', value_name = "FORMAT=PATH")]
    outputs: Vec<String>,
}

/// Combines shard reports into one; the exit code is the merged run's.
pub fn merge(args: MergeArgs) -> i32 {
    let mut docs = Vec::new();
    for path in &args.reports {
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Document>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(d) => docs.push(d),
            Err(e) => {
                eprintln!(
                    "trustsweep merge: {}: not a trustsweep JSON report: {e}",
                    path.display()
                );
                return exit::USAGE;
            }
        }
    }
    let doc = match crate::report::merge(docs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("trustsweep merge: {e}");
            return exit::USAGE;
        }
    };
    for spec in &args.outputs {
        let written = crate::report::parse_output(spec).and_then(|(f, p)| {
            crate::report::write_file(f, &p, &doc)
                .map_err(|e| format!("cannot write {}: {e}", p.display()))
        });
        if let Err(e) = written {
            eprintln!("trustsweep merge: {e}");
            return exit::USAGE;
        }
    }
    match args.format {
        Format::Json => {
            if print_json(&doc) != exit::OK {
                return exit::USAGE;
            }
        }
        Format::Text => print!("{}", crate::report::recap(&doc, false)),
    }
    exit_code(doc.remaining.as_ref().unwrap_or(&doc.summary), &[])
}

fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// With `--allow-rejoin` and DC access, the rejoin preflight of every host whose plan could
/// end in a rejoin; none without DC access (so no rejoin is planned).
async fn rejoin_preflights(
    swept: &Swept,
    flags: &PlanFlags,
) -> BTreeMap<String, playbooks::RejoinPreflight> {
    let Some((access, _)) = &swept.dc else {
        return BTreeMap::new();
    };
    if !flags.allow_rejoin {
        return BTreeMap::new();
    }
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

fn make_plans(
    swept: &Swept,
    flags: &PlanFlags,
    rejoin_preflight: BTreeMap<String, playbooks::RejoinPreflight>,
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

fn print_plans(plans: &[HostPlan]) {
    let changing: Vec<&HostPlan> = plans.iter().filter(|p| !p.actions.is_empty()).collect();
    if changing.is_empty() {
        println!("\nplan: nothing to do");
        return;
    }
    println!("\nplan:");
    for p in changing {
        println!("  {} ({}):", p.host, p.diagnosis.name());
        for (i, a) in p.actions.iter().enumerate() {
            println!("    {}. {}", i + 1, a.summary());
        }
        println!("    why: {}", p.why);
        if p.needs_reboot {
            println!("    needs a reboot");
        }
        for n in &p.needs {
            println!("    needs: {n}");
        }
    }
}

/// Phases 1 to 3, shared by `plan` and `repair`: sweep, diagnose, plan, and (as text)
/// show the findings and the plans. `Err` is the exit code of a run that could not start.
async fn sweep_and_plan(
    command: &str,
    source: &SourceArgs,
    flags: &PlanFlags,
    format: Format,
    cancel: &engine::tokio_util_cancel::Token,
) -> Result<(Swept, Vec<HostPlan>, Summary, Vec<HostReport>), i32> {
    let swept = sweep(command, source, format, cancel).await.map_err(|e| {
        eprintln!("trustsweep {command}: {e}");
        exit::USAGE
    })?;
    if let Some(unknown) = flags
        .dc_reset_host
        .iter()
        .find(|n| !swept.targets.iter().any(|t| t.name.eq_ignore_ascii_case(n)))
    {
        eprintln!(
            "trustsweep {command}: --dc-reset-host {unknown} is not a host of this sweep (check the inventory and --limit); nothing was changed"
        );
        return Err(exit::USAGE);
    }
    let preflight = rejoin_preflights(&swept, flags).await;
    let plans = make_plans(&swept, flags, preflight);
    let summary = summarize(&swept.findings);
    let mut reports = reports(&swept);
    for (r, p) in reports.iter_mut().zip(&plans) {
        r.plan = Some(p.clone());
    }
    if format == Format::Text {
        print_breakdown(&reports);
        print_plans(&plans);
    }
    Ok((swept, plans, summary, reports))
}

/// `trustsweep plan`: a dry run; changes nothing anywhere.
pub async fn plan(args: PlanArgs) -> i32 {
    let t0 = Instant::now();
    let cancel = interrupt_token();
    let (swept, plans, summary, reports) =
        match sweep_and_plan("plan", &args.source, &args.flags, args.format, &cancel).await {
            Ok(r) => r,
            Err(code) => return code,
        };
    if args.format == Format::Text {
        println!();
        print_summary("plan", &summary, t0.elapsed());
        let n = plans.iter().filter(|p| p.changes_anything()).count();
        println!("repair would change {n} host(s); nothing was changed");
    }
    let doc = document("plan", summary, None, t0, swept.peak, reports);
    finish(args.format, &doc, &cancel, &args.source, &swept.targets)
}

/// `trustsweep repair`.
pub async fn repair(args: RepairArgs) -> i32 {
    let t0 = Instant::now();
    let cancel = interrupt_token();
    let (swept, plans, summary, mut reports) =
        match sweep_and_plan("repair", &args.source, &args.flags, args.format, &cancel).await {
            Ok(r) => r,
            Err(code) => return code,
        };
    let to_change: Vec<usize> = plans
        .iter()
        .enumerate()
        // Plans with something to run: on the member, or on a DC (planned only with DC
        // access); manual-only plans are reported, never counted or confirmed.
        .filter(|(_, p)| p.changes_anything())
        .map(|(i, _)| i)
        .collect();
    if let Some(max) = args.max_changes {
        if to_change.len() > max {
            eprintln!(
                "trustsweep repair: {} hosts would be changed, more than --max-changes {max}; nothing was changed (narrow with --limit or raise the limit)",
                to_change.len()
            );
            return exit::USAGE;
        }
    }
    // The confirmation guards real hosts; a built-in lab is simulated and needs none.
    if !to_change.is_empty() && !args.yes && args.source.lab.is_none() {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "trustsweep repair: {} hosts would be changed; refusing without --yes when stdin is not a terminal",
                to_change.len()
            );
            return exit::USAGE;
        }
        eprint!("Repair {} host(s)? [y/N] ", to_change.len());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err()
            || !matches!(answer.trim(), "y" | "Y" | "yes")
        {
            eprintln!("nothing was changed");
            return exit::USAGE;
        }
    }
    let limits = Limits {
        concurrency: args.source.concurrency,
        // Two reboots, each waited for up to max_reconnects times: a repair must reach a
        // safe point rather than be cut between leaving and rejoining the domain.
        host_deadline: Duration::from_secs(
            args.source.host_deadline
                + 2 * u64::from(RepairOptions::default().max_reconnects) * args.reboot_timeout
                + 60,
        ),
    };
    let options = RepairOptions {
        reboot_timeout: Duration::from_secs(args.reboot_timeout),
        ..RepairOptions::default()
    };
    // Hosts a resumed journal says were repaired keep that outcome.
    let jobs: Vec<(Target, HostPlan)> = to_change
        .iter()
        .filter_map(|&i| Some((swept.targets.get(i)?.clone(), plans.get(i)?.clone())))
        .filter(|(t, _)| !swept.repaired.contains_key(&t.name))
        .collect();
    let journal_w = swept.journal.clone();
    let directory = swept.dc.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event<RepairOutcome>>();
    let format = args.format;
    let reporter = tokio::spawn(async move {
        let mut progress = crate::progress::Progress::new("repair", 0);
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::PhaseStarted { phase, total } => {
                    progress = crate::progress::Progress::new(phase, total)
                }
                Event::HostFinished { result, elapsed } => {
                    progress.inc();
                    if let Some(j) = &journal_w {
                        j.append(&Entry::Repaired {
                            host: result.host.clone(),
                            outcome: Box::new(result.clone()),
                        });
                    }
                    if format == Format::Text {
                        progress.line(&format!(
                            "{}: {} ({:.1}s): {}",
                            result.host,
                            status_name(result.status),
                            elapsed.as_secs_f64(),
                            result.detail
                        ));
                    }
                }
                Event::PhaseFinished { .. } => progress.finish(),
            }
        }
    });
    if format == Format::Text && !jobs.is_empty() {
        println!("\nrepair:");
    }
    let (outcomes, _) = engine::fan_out(
        "repair",
        jobs.clone(),
        limits,
        &tx,
        move |_, (target, plan)| {
            let options = options.clone();
            let directory = directory.clone();
            async move { repair_one(target, plan, options, directory).await }
        },
        |(target, _), abnormal| RepairOutcome {
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
        },
        Some(&cancel),
    )
    .await;
    drop(tx);
    let _ = reporter.await;
    // What remains: verified states for repaired hosts (now or in the resumed run), the
    // diagnosis for the others.
    let mut by_host: HashMap<String, RepairOutcome> = swept.repaired.clone();
    for ((target, _), outcome) in jobs.iter().zip(outcomes) {
        by_host.insert(target.name.clone(), outcome);
    }
    let mut remaining = Summary::default();
    for (r, p) in reports.iter_mut().zip(&plans) {
        r.plan = Some(p.clone());
        let state = match by_host.get(&r.host).filter(|_| p.changes_anything()) {
            Some(o) => {
                r.repair = Some(o.clone());
                o.remaining_state(p)
            }
            None => r.state,
        };
        match state {
            HostState::Healthy => remaining.healthy += 1,
            HostState::Broken => remaining.broken += 1,
            HostState::Unreachable => remaining.unreachable += 1,
            HostState::AccessProblem => remaining.access_problem += 1,
            HostState::Unknown => remaining.unknown += 1,
        }
    }
    if args.format == Format::Text {
        println!();
        print_summary("before repair", &summary, t0.elapsed());
        print_summary("after repair (verified)", &remaining, t0.elapsed());
        // Never worse (issue 11): counted on every repair, listed first and loudly.
        let worse: Vec<&HostReport> = reports
            .iter()
            .filter(|r| {
                r.repair
                    .as_ref()
                    .is_some_and(|o| o.status == RepairStatus::MadeWorse)
            })
            .collect();
        println!("made worse: {}", worse.len());
        for r in worse {
            println!(
                "  MADE WORSE {}: {}",
                r.host,
                r.repair.as_ref().map_or("", |o| o.detail.as_str())
            );
        }
        let needs_person: Vec<&HostReport> = reports
            .iter()
            .filter(|r| {
                r.repair
                    .as_ref()
                    .is_some_and(|o| o.status == RepairStatus::ManualActionRequired)
                    || (r
                        .plan
                        .as_ref()
                        .is_some_and(|p| !p.changes_anything() && r.state == HostState::Broken))
            })
            .collect();
        if !needs_person.is_empty() {
            println!("needs a person:");
            for r in needs_person {
                println!(
                    "  {}: {}",
                    r.host,
                    r.plan.as_ref().map(|p| p.why.as_str()).unwrap_or("")
                );
            }
        }
    }
    let doc = document("repair", summary, Some(remaining), t0, swept.peak, reports);
    finish(args.format, &doc, &cancel, &args.source, &swept.targets)
}

fn status_name(s: RepairStatus) -> &'static str {
    match s {
        RepairStatus::NothingToDo => "nothing to do",
        RepairStatus::Repaired => "repaired (verified)",
        RepairStatus::StillBroken => "still broken",
        RepairStatus::Unverified => "unverified",
        RepairStatus::ManualActionRequired => "needs a person",
        RepairStatus::NotAttempted => "not attempted",
        RepairStatus::AccountResetOnDc => "account reset on the DC",
        RepairStatus::MadeWorse => "MADE WORSE (ladder stopped)",
    }
}

async fn repair_one(
    target: Target,
    plan: HostPlan,
    options: RepairOptions,
    directory: Option<(crate::dc::DcAccess, Arc<crate::dc::DcEvidence>)>,
) -> RepairOutcome {
    let not_attempted = |detail: String| RepairOutcome {
        host: target.name.clone(),
        status: RepairStatus::NotAttempted,
        detail,
        steps: Vec::new(),
        verification: None,
        changed: false,
    };
    let Some(repair) = target.repair.clone() else {
        return not_attempted(format!(
            "no repair account for {}: set trustsweep_repair_user/trustsweep_repair_password or pass --repair-user",
            target.name
        ));
    };
    let cred = DomainCredential {
        user: repair.user.clone(),
        password: repair.password.clone(),
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
        let access = crate::dc::DcAccess {
            reset_as: Some(repair),
            ..access
        };
        let mut dir = crate::dc::LdapDirectory { access, evidence };
        let mut on_event = |_ev: RepairEvent| {};
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
    let mut on_event = |_ev: RepairEvent| {};
    let mut outcome =
        playbooks::repair_host_with(&mut remote, &plan, &cred, &options, &mut on_event).await;
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
