//! JUnit XML (with `quick-junit`, nextest's writer), so any CI system shows the sweep as
//! tests: one `<testsuite>` named after the command, one `<testcase>` per host
//! (`classname` = the host's first inventory group, else `hosts`; `name` = the host;
//! `time` = the probe's duration — the report keeps no per-host repair duration).
//!
//! * healthy at the end of the run (also after a verified repair): passes;
//! * trust broken, or broken and not verified repaired: `<failure>`, `message` = the
//!   diagnosis, `type` = its name, body = the evidence, the plan and the repair outcome;
//! * unreachable, access problem, unknown: `<error>` (not `<skipped>`: most CI systems
//!   show skipped tests as green, and a host nobody could check is not fine; it is what
//!   exit code 3, INCOMPLETE, means). `type` = the state.
//!
//! The output fits the structure CI tools accept (Jenkins' `junit-10.xsd`): `<testsuites>`
//! of `<testsuite name tests failures errors>` holding `<properties>`, `<testcase name
//! classname time>` with at most one `<failure>`/`<error>` and a `<system-out>`.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::files::RenderOptions;
use super::view::{final_diagnosis, final_state, sorted_hosts, verdict, Verdict};
use super::{Document, HostReport};

/// Renders the JUnit XML.
pub fn render(doc: &Document, opts: &RenderOptions) -> String {
    let mut report = Report::new("trustsweep");
    let mut suite = TestSuite::new(doc.command.as_str());
    suite.set_time(Duration::from_millis(doc.elapsed_ms));
    let mut props = vec![
        Property::new("schema", doc.schema.as_str()),
        Property::new("command", doc.command.as_str()),
        Property::new("hosts", doc.hosts.len().to_string()),
        Property::new("elapsed_ms", doc.elapsed_ms.to_string()),
        Property::new("peak_concurrency", doc.peak_concurrency.to_string()),
    ];
    if let Some(at) = &opts.generated_at {
        props.push(Property::new("generated_at", at.as_str()));
    }
    for (name, s) in [
        ("found", Some(&doc.summary)),
        ("left", doc.remaining.as_ref()),
    ] {
        let Some(s) = s else { continue };
        props.push(Property::new(
            format!("{name}.healthy"),
            s.healthy.to_string(),
        ));
        props.push(Property::new(
            format!("{name}.broken"),
            s.broken.to_string(),
        ));
        props.push(Property::new(
            format!("{name}.unreachable"),
            s.unreachable.to_string(),
        ));
        props.push(Property::new(
            format!("{name}.access_problem"),
            s.access_problem.to_string(),
        ));
        props.push(Property::new(
            format!("{name}.unknown"),
            s.unknown.to_string(),
        ));
    }
    suite.add_properties(props);
    for r in sorted_hosts(doc) {
        suite.add_test_case(test_case(r, opts));
    }
    report.add_test_suite(suite);
    match report.to_string() {
        Ok(s) => s,
        // Serialising into memory cannot fail on I/O; keep the file well-formed anyway.
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"trustsweep\" tests=\"0\" failures=\"0\" errors=\"1\"><!-- {} --></testsuites>\n",
            e.to_string().replace("--", "- -")
        ),
    }
}

fn test_case(r: &HostReport, opts: &RenderOptions) -> TestCase {
    let status = match verdict(r) {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.diagnosis.to_string())
                .set_type(r.diagnosis.name())
                .set_description(body(r));
            s
        }
        Verdict::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(final_diagnosis(r).to_string())
                .set_type(final_state(r).name())
                .set_description(body(r));
            s
        }
    };
    let mut case = TestCase::new(r.host.as_str(), status);
    case.set_classname(opts.groups.first(&r.host))
        .set_time(Duration::from_millis(r.probe_ms));
    if verdict(r) == Verdict::Pass {
        if let Some(o) = &r.repair {
            case.set_system_out(format!("{}: {}\n", o.status, o.detail));
        }
    }
    case
}

/// The failure/error body: evidence, plan, repair outcome.
fn body(r: &HostReport) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "address: {}", r.address);
    let _ = writeln!(b, "evidence:");
    for e in &r.evidence {
        let _ = writeln!(b, "  {e}");
    }
    if let Some(p) = &r.plan {
        if p.actions.is_empty() {
            let _ = writeln!(b, "plan: nothing automatic");
        } else {
            let _ = writeln!(b, "plan:");
            for (i, a) in p.actions.iter().enumerate() {
                let _ = writeln!(b, "  {}. {}", i + 1, a.summary());
            }
        }
        let _ = writeln!(b, "why: {}", p.why);
        for n in &p.needs {
            let _ = writeln!(b, "needs: {n}");
        }
    }
    if let Some(o) = &r.repair {
        let _ = writeln!(b, "repair: {}: {}", o.status, o.detail);
        for s in &o.steps {
            let _ = writeln!(
                b,
                "  {} {}: {} {}",
                s.action,
                s.step,
                if s.ok { "ok" } else { "failed" },
                s.detail
            );
        }
        if let Some(v) = &o.verification {
            let _ = writeln!(b, "verified: {}", v.diagnosis);
        }
    }
    b
}
