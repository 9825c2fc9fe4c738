//! Markdown for a CI job summary (GitHub's `$GITHUB_STEP_SUMMARY`, GitLab/Azure
//! descriptions): the counts per state (found and, after a repair, left) and per diagnosis,
//! then the hosts that were or are not healthy (host, diagnosis, action, outcome), capped
//! at [`RenderOptions::max_rows`] with "and K more". Every cell is escaped, so host
//! output cannot break the table or inject markup.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use playbooks::HostState;

use super::files::RenderOptions;
use super::view::{final_state, needs_person, seconds, sorted_hosts};
use super::{Document, HostReport};

/// Renders the summary.
pub fn render(doc: &Document, opts: &RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## trustsweep {}: {} hosts\n",
        escape(&doc.command),
        doc.hosts.len()
    );
    let mut meta = format!(
        "elapsed {}, peak concurrency {}, schema `{}`",
        seconds(doc.elapsed_ms),
        doc.peak_concurrency,
        doc.schema.replace('`', "'")
    );
    if let Some(at) = &opts.generated_at {
        let _ = write!(meta, ", generated {}", escape(at));
    }
    let _ = writeln!(out, "{meta}\n");

    match &doc.remaining {
        Some(left) => {
            let _ = writeln!(out, "| state | found | after {} |", escape(&doc.command));
            let _ = writeln!(out, "|:--|--:|--:|");
            for st in HostState::ALL {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    st,
                    doc.summary.count(st),
                    left.count(st)
                );
            }
            let _ = writeln!(
                out,
                "| **total** | **{}** | **{}** |\n",
                doc.summary.total(),
                left.total()
            );
        }
        None => {
            let _ = writeln!(out, "| state | hosts |");
            let _ = writeln!(out, "|:--|--:|");
            for st in HostState::ALL {
                let _ = writeln!(out, "| {} | {} |", st, doc.summary.count(st));
            }
            let _ = writeln!(out, "| **total** | **{}** |\n", doc.summary.total());
        }
    }

    let mut by_diag: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &doc.hosts {
        *by_diag.entry(r.diagnosis.name()).or_default() += 1;
    }
    let _ = writeln!(out, "| diagnosis | hosts |");
    let _ = writeln!(out, "|:--|--:|");
    for (name, n) in &by_diag {
        let _ = writeln!(out, "| {} | {n} |", escape(name));
    }
    let _ = writeln!(out);

    let unhealthy: Vec<&HostReport> = sorted_hosts(doc)
        .into_iter()
        .filter(|r| r.state != HostState::Healthy || final_state(r) != HostState::Healthy)
        .collect();
    if unhealthy.is_empty() {
        let _ = writeln!(out, "Every host is healthy.");
        return out;
    }
    let title = if doc.remaining.is_some() {
        "Hosts not healthy when found"
    } else {
        "Hosts not healthy"
    };
    let _ = writeln!(out, "### {title} ({})\n", unhealthy.len());
    let _ = writeln!(out, "| host | diagnosis | action | outcome |");
    let _ = writeln!(out, "|:--|:--|:--|:--|");
    for r in unhealthy.iter().take(opts.max_rows) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            escape(&r.host),
            escape(r.diagnosis.name()),
            escape(&action(r)),
            escape(&outcome(r))
        );
    }
    let more = unhealthy.len().saturating_sub(opts.max_rows);
    if more > 0 {
        let _ = writeln!(out, "\n_and {more} more_");
    }
    out
}

/// What was done (the repair's actions) or would be (the planned ladder).
fn action(r: &HostReport) -> String {
    if let Some(o) = r.repair.as_ref().filter(|o| !o.steps.is_empty()) {
        let mut names: Vec<&str> = Vec::new();
        for s in &o.steps {
            if names.last() != Some(&s.action.as_str()) {
                names.push(&s.action);
            }
        }
        return names.join(" → ");
    }
    match &r.plan {
        Some(p) if !p.actions.is_empty() => p
            .actions
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(" → "),
        Some(_) => "none".to_string(),
        None => "—".to_string(),
    }
}

fn outcome(r: &HostReport) -> String {
    if let Some(o) = &r.repair {
        return o.status.to_string();
    }
    match &r.plan {
        Some(p) if p.changes_anything() => "planned".to_string(),
        Some(_) if needs_person(r).is_some() => "needs a person".to_string(),
        _ => final_state(r).to_string(),
    }
}

/// Escapes text for a Markdown table cell.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}
