//! The recap a person reads at the end of a run on a terminal: counts per state (found and
//! left), per diagnosis and per action, the hosts a repair made worse, the hosts that need
//! a person, and the slowest hosts. Colour only when the caller says so (`NO_COLOR`, `--color` and whether stdout
//! is a terminal are the caller's business); without it, plain aligned text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use playbooks::{HostState, RepairStatus};

use super::view::{final_diagnosis, final_state, needs_person, seconds, sorted_hosts};
use super::{Document, HostReport};

/// How many of the slowest hosts the recap lists.
pub const SLOWEST: usize = 5;

#[derive(Clone, Copy)]
enum Style {
    Plain,
    Bold,
    Dim,
    Green,
    Red,
    Yellow,
    Magenta,
}

impl Style {
    fn code(self) -> Option<&'static str> {
        match self {
            Style::Plain => None,
            Style::Bold => Some("1"),
            Style::Dim => Some("2"),
            Style::Green => Some("32"),
            Style::Red => Some("31"),
            Style::Yellow => Some("33"),
            Style::Magenta => Some("35"),
        }
    }

    fn of_state(s: HostState) -> Style {
        match s {
            HostState::Healthy => Style::Green,
            HostState::Broken => Style::Red,
            HostState::Unreachable | HostState::AccessProblem => Style::Yellow,
            HostState::Unknown => Style::Magenta,
        }
    }
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        match (self.color, style.code()) {
            (true, Some(code)) if !text.is_empty() => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A table: cells padded to their column's width, then painted (so colour codes never
/// count towards the width). Trailing spaces are trimmed.
fn table(p: &Painter, indent: &str, align: &[Align], rows: &[Vec<(String, Style)>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, (text, _)) in row.iter().enumerate() {
            let w = text.chars().count();
            match widths.get_mut(i) {
                Some(cur) => *cur = (*cur).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, (text, style)) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(text.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            let right = align.get(i).copied().unwrap_or(Align::Left) == Align::Right;
            if right {
                line.push_str(&" ".repeat(pad));
            }
            line.push_str(&p.paint(*style, text));
            if !right {
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cell; control characters (host output can carry escape sequences) are dropped.
fn cell(text: impl Into<String>, style: Style) -> (String, Style) {
    let text: String = text.into();
    (text.chars().filter(|c| !c.is_control()).collect(), style)
}

/// The recap table of `doc`.
pub fn recap(doc: &Document, color: bool) -> String {
    let r = Recap {
        doc,
        hosts: sorted_hosts(doc),
        p: Painter { color },
        after: format!("after {}", doc.command),
    };
    let mut out = String::new();
    r.title(&mut out);
    r.states(&mut out);
    r.diagnoses(&mut out);
    let any_plan = r.hosts.iter().any(|h| h.plan.is_some());
    if any_plan {
        r.actions(&mut out);
    }
    // Hosts a repair left worse than it found them (never worse, issue 11): counted on
    // every repair, listed loudly.
    if doc.remaining.is_some() {
        r.made_worse(&mut out);
    }
    r.people(&mut out, any_plan);
    r.slowest(&mut out);
    out
}

/// What every part of the recap reads.
struct Recap<'a> {
    doc: &'a Document,
    /// The hosts, sorted by name.
    hosts: Vec<&'a HostReport>,
    p: Painter,
    /// The "after" column's title.
    after: String,
}

impl Recap<'_> {
    /// The header row of a found (and, after a repair, left) count table.
    fn count_header(&self, what: &str) -> Vec<(String, Style)> {
        match &self.doc.remaining {
            Some(_) => vec![
                cell(what, Style::Dim),
                cell("found", Style::Dim),
                cell(self.after.as_str(), Style::Dim),
            ],
            None => vec![cell(what, Style::Dim), cell("hosts", Style::Dim)],
        }
    }

    /// A found (and, after a repair, left) count table: the header, then one row per
    /// (label, the state it is coloured as, found, left).
    fn count_table(
        &self,
        out: &mut String,
        what: &str,
        rows: impl Iterator<Item = (String, HostState, usize, Option<usize>)>,
    ) {
        let mut table_rows = vec![self.count_header(what)];
        for (label, st, found, left) in rows {
            let mut row = vec![
                cell(label, Style::of_state(st)),
                cell(found.to_string(), Style::Plain),
            ];
            if let Some(left) = left {
                row.push(cell(left.to_string(), Style::Plain));
            }
            table_rows.push(row);
        }
        out.push('\n');
        out.push_str(&table(
            &self.p,
            "  ",
            &[Align::Left, Align::Right, Align::Right],
            &table_rows,
        ));
    }

    /// The command, size, time and peak concurrency.
    fn title(&self, out: &mut String) {
        let doc = self.doc;
        let _ = writeln!(
            out,
            "{}",
            self.p.paint(
                Style::Bold,
                &format!(
                    "recap: {} of {} hosts in {} (peak concurrency {})",
                    doc.command,
                    self.hosts.len(),
                    seconds(doc.elapsed_ms),
                    doc.peak_concurrency
                )
            )
        );
    }

    /// States, found and left.
    fn states(&self, out: &mut String) {
        let doc = self.doc;
        let rows = HostState::ALL.into_iter().filter_map(|st| {
            let found = doc.summary.count(st);
            let left = doc.remaining.as_ref().map(|s| s.count(st));
            (found != 0 || left.unwrap_or(0) != 0).then(|| (st.to_string(), st, found, left))
        });
        self.count_table(out, "state", rows);
    }

    /// Diagnoses, found and left.
    fn diagnoses(&self, out: &mut String) {
        let repaired = self.doc.remaining.is_some();
        let mut found: BTreeMap<&'static str, (usize, usize, HostState)> = BTreeMap::new();
        for r in &self.hosts {
            let e = found
                .entry(r.diagnosis.name())
                .or_insert((0, 0, r.diagnosis.state()));
            e.0 += 1;
            if repaired {
                let d = final_diagnosis(r);
                let e = found.entry(d.name()).or_insert((0, 0, d.state()));
                e.1 += 1;
            }
        }
        let rows = found
            .into_iter()
            .map(|(name, (n, left, st))| (name.to_string(), st, n, repaired.then_some(left)));
        self.count_table(out, "diagnosis", rows);
    }

    /// Actions: the first rung each plan starts with; what ran; what healed.
    fn actions(&self, out: &mut String) {
        let mut actions: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
        for r in &self.hosts {
            if let Some(first) = r.plan.as_ref().and_then(|p| p.actions.first()) {
                actions.entry(first.name()).or_default().0 += 1;
            }
            if let Some(o) = &r.repair {
                let ran: BTreeSet<&str> = o.steps.iter().map(|s| s.action.as_str()).collect();
                for a in ran {
                    actions.entry(a).or_default().1 += 1;
                }
                if o.status == RepairStatus::Repaired {
                    if let Some(last) = o.steps.iter().rev().find(|s| s.ok) {
                        actions.entry(last.action.as_str()).or_default().2 += 1;
                    }
                }
            }
        }
        out.push('\n');
        if actions.is_empty() {
            let _ = writeln!(
                out,
                "  {}",
                self.p.paint(Style::Dim, "action: none planned")
            );
            return;
        }
        let repaired = self.doc.remaining.is_some();
        let mut rows = vec![if repaired {
            vec![
                cell("action", Style::Dim),
                cell("planned first", Style::Dim),
                cell("ran", Style::Dim),
                cell("healed", Style::Dim),
            ]
        } else {
            vec![
                cell("action", Style::Dim),
                cell("planned first", Style::Dim),
            ]
        }];
        for (name, (planned, ran, healed)) in &actions {
            let mut row = vec![
                cell(*name, Style::Plain),
                cell(planned.to_string(), Style::Plain),
            ];
            if repaired {
                row.push(cell(ran.to_string(), Style::Plain));
                row.push(cell(healed.to_string(), Style::Plain));
            }
            rows.push(row);
        }
        out.push_str(&table(
            &self.p,
            "  ",
            &[Align::Left, Align::Right, Align::Right, Align::Right],
            &rows,
        ));
    }

    /// The hosts a repair made worse, or that there are none.
    fn made_worse(&self, out: &mut String) {
        let p = &self.p;
        let worse: Vec<&HostReport> = self
            .hosts
            .iter()
            .copied()
            .filter(|r| {
                r.repair
                    .as_ref()
                    .is_some_and(|o| o.status == RepairStatus::MadeWorse)
            })
            .collect();
        out.push('\n');
        if worse.is_empty() {
            let _ = writeln!(out, "  made worse: {}", p.paint(Style::Green, "none"));
            return;
        }
        let _ = writeln!(
            out,
            "  {}",
            p.paint(
                Style::Red,
                &format!(
                    "MADE WORSE ({}): ladder stopped; look at these first",
                    worse.len()
                )
            )
        );
        let rows: Vec<Vec<(String, Style)>> = worse
            .iter()
            .map(|r| {
                vec![
                    cell(r.host.as_str(), Style::Red),
                    cell(
                        one_line(r.repair.as_ref().map_or("", |o| o.detail.as_str())),
                        Style::Plain,
                    ),
                ]
            })
            .collect();
        out.push_str(&table(p, "    ", &[], &rows));
    }

    /// Hosts that need a person (with no plans: the unhealthy ones).
    fn people(&self, out: &mut String, any_plan: bool) {
        let p = &self.p;
        let people: Vec<(&HostReport, String)> = self
            .hosts
            .iter()
            .filter_map(|r| needs_person(r).map(|why| (*r, why)))
            .collect();
        out.push('\n');
        let title = if any_plan {
            "needs a person"
        } else {
            "not healthy"
        };
        if people.is_empty() {
            let _ = writeln!(out, "  {}: {}", title, p.paint(Style::Green, "nobody"));
            return;
        }
        let _ = writeln!(out, "  {} ({}):", p.paint(Style::Bold, title), people.len());
        if !any_plan {
            let _ = writeln!(
                out,
                "  {}",
                p.paint(Style::Dim, "(`trustsweep plan` shows what repair would do)")
            );
        }
        let rows: Vec<Vec<(String, Style)>> = people
            .iter()
            .map(|(r, why)| {
                let st = final_state(r);
                vec![
                    cell(r.host.as_str(), Style::of_state(st)),
                    cell(final_diagnosis(r).name(), Style::Plain),
                    cell(one_line(why), Style::Plain),
                ]
            })
            .collect();
        out.push_str(&table(p, "    ", &[], &rows));
    }

    /// The slowest hosts.
    fn slowest(&self, out: &mut String) {
        let mut slow: Vec<&HostReport> = self.hosts.clone();
        slow.sort_by(|a, b| {
            b.probe_ms
                .cmp(&a.probe_ms)
                .then_with(|| a.host.cmp(&b.host))
        });
        slow.truncate(SLOWEST);
        if slow.is_empty() {
            return;
        }
        out.push('\n');
        let _ = writeln!(out, "  {}:", self.p.paint(Style::Bold, "slowest hosts"));
        let rows: Vec<Vec<(String, Style)>> = slow
            .iter()
            .map(|r| {
                vec![
                    cell(r.host.as_str(), Style::Plain),
                    cell(format!("{} ms", r.probe_ms), Style::Plain),
                    cell(r.state.to_string(), Style::of_state(r.state)),
                ]
            })
            .collect();
        out.push_str(&table(
            &self.p,
            "    ",
            &[Align::Left, Align::Right, Align::Left],
            &rows,
        ));
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
