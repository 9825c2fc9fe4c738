//! A self-contained HTML report: one file, no external assets, no network (a Content
//! Security Policy forbids any fetch), readable offline and attachable to a change ticket.
//! It shows the summary (found and, after a repair, left), a picture of the fleet as
//! inline SVG bar charts drawn here (hosts per diagnosis, per DC the channel was bound to,
//! per inventory group; each bar split by state), the hosts that need a person, and the
//! host table, sortable by clicking a header (inline script) and filterable. Every piece
//! of text is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use playbooks::HostState;

use super::files::RenderOptions;
use super::view::{
    bound_dc, final_diagnosis, final_state, key_evidence, needs_person, planned_actions, seconds,
    sorted_hosts,
};
use super::{Document, HostReport};

/// At most this many bars per chart; the rest are summed into one "others" bar.
pub const MAX_BARS: usize = 30;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --healthy: #2e7d32; --broken: #c62828; --unreachable: #ef6c00; --access_problem: #f9a825; --unknown: #6a1b9a; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --alt: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; padding: 1.5rem; max-width: 1400px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 1.8rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.meta { color: var(--muted); margin: 0; }
table { border-collapse: collapse; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td, table.summary th { min-width: 6rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .7rem; color: #fff; font-size: .85em; white-space: nowrap; }
.b-healthy { background: var(--healthy); } .b-broken { background: var(--broken); } .b-unreachable { background: var(--unreachable); } .b-access_problem { background: var(--access_problem); color: #1f2328; } .b-unknown { background: var(--unknown); }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg.chart .s-healthy { fill: var(--healthy); } svg.chart .s-broken { fill: var(--broken); } svg.chart .s-unreachable { fill: var(--unreachable); } svg.chart .s-access_problem { fill: var(--access_problem); } svg.chart .s-unknown { fill: var(--unknown); }
.legend span { margin-right: 1rem; white-space: nowrap; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; border-radius: 2px; }
.l-healthy { background: var(--healthy); } .l-broken { background: var(--broken); } .l-unreachable { background: var(--unreachable); } .l-access_problem { background: var(--access_problem); } .l-unknown { background: var(--unknown); }
.table-wrap { overflow-x: auto; }
#hosts { width: 100%; }
#hosts td:last-child { min-width: 22rem; }
#hosts thead th { position: sticky; top: 0; background: var(--alt); cursor: pointer; user-select: none; white-space: nowrap; }
#hosts thead th::after { content: " \2195"; color: var(--muted); font-size: .8em; }
#hosts thead th[aria-sort="ascending"]::after { content: " \25B2"; color: var(--fg); }
#hosts thead th[aria-sort="descending"]::after { content: " \25BC"; color: var(--fg); }
#hosts tbody tr:nth-child(even) { background: var(--alt); }
#hosts details ul { margin: .3rem 0; padding-left: 1.1rem; }
#hosts code, .people code { font-size: .9em; }
.controls { margin-bottom: .6rem; }
#filter { padding: .3rem .5rem; min-width: 18rem; border: 1px solid var(--line); border-radius: 4px; }
.people li { margin-bottom: .3rem; }
.muted { color: var(--muted); }
"#;

const SCRIPT: &str = r#"
(function () {
  'use strict';
  var table = document.getElementById('hosts');
  if (!table) { return; }
  var tbody = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function value(row, i, numeric) {
    var c = row.cells[i];
    var v = c.hasAttribute('data-sort') ? c.getAttribute('data-sort') : c.textContent;
    return numeric ? Number(v) : v.trim().toLowerCase();
  }
  function compare(x, y, numeric) {
    if (numeric) { return x - y; }
    return x.localeCompare(y, undefined, { numeric: true });
  }
  function sortBy(i) {
    var th = heads[i];
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    for (var k = 0; k < heads.length; k++) { heads[k].removeAttribute('aria-sort'); }
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var numeric = th.getAttribute('data-type') === 'number';
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var c = compare(value(a, i, numeric), value(b, i, numeric), numeric);
      if (!asc) { c = -c; }
      return c !== 0 ? c : compare(value(a, 0, false), value(b, 0, false), false);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    tbody.appendChild(frag);
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.tabIndex = 0;
    th.title = 'sort by ' + th.textContent.trim();
    th.addEventListener('click', function () { sortBy(i); });
    th.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(i); }
    });
  });
  var filter = document.getElementById('filter');
  var shown = document.getElementById('shown');
  if (filter) {
    filter.addEventListener('input', function () {
      var q = filter.value.trim().toLowerCase();
      var n = 0;
      Array.prototype.forEach.call(tbody.rows, function (r) {
        var hit = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) { n++; }
      });
      if (shown) { shown.textContent = String(n); }
    });
  }
})();
"#;

/// One bar: a label and its hosts per state (in [`HostState::ALL`] order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bar {
    /// What the bar counts.
    pub label: String,
    /// Hosts per state.
    pub counts: [usize; 5],
}

impl Bar {
    fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

fn state_index(s: HostState) -> usize {
    HostState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// Sorting rank of a state in the table: problems first.
fn state_rank(s: HostState) -> usize {
    match s {
        HostState::Broken => 0,
        HostState::Unreachable => 1,
        HostState::AccessProblem => 2,
        HostState::Unknown => 3,
        HostState::Healthy => 4,
    }
}

fn bars(map: BTreeMap<String, [usize; 5]>, by_count: bool) -> Vec<Bar> {
    let mut bars: Vec<Bar> = map
        .into_iter()
        .map(|(label, counts)| Bar { label, counts })
        .collect();
    if by_count {
        bars.sort_by(|a, b| {
            b.total()
                .cmp(&a.total())
                .then_with(|| a.label.cmp(&b.label))
        });
    }
    if bars.len() > MAX_BARS {
        let rest = bars.split_off(MAX_BARS - 1);
        let mut other = Bar {
            label: format!("({} others)", rest.len()),
            counts: [0; 5],
        };
        for b in rest {
            for (o, c) in other.counts.iter_mut().zip(b.counts) {
                *o += c;
            }
        }
        bars.push(other);
    }
    bars
}

/// A horizontal stacked bar chart as inline SVG (no external assets, no script).
pub fn bar_chart(id: &str, label: &str, bars: &[Bar]) -> String {
    const LABEL_W: usize = 190;
    const BAR_W: f64 = 360.0;
    const ROW_H: usize = 24;
    const WIDTH: usize = 610;
    let max = bars.iter().map(Bar::total).max().unwrap_or(0).max(1);
    let height = ROW_H * bars.len().max(1) + 8;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{}" class="chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}">"#,
        escape(id),
        escape(label)
    );
    let _ = write!(s, "<title>{}</title>", escape(label));
    if bars.is_empty() {
        let _ = write!(s, r#"<text x="4" y="18">no hosts</text>"#);
    }
    for (row, bar) in bars.iter().enumerate() {
        let y = row * ROW_H + 4;
        let total = bar.total();
        let parts: Vec<String> = HostState::ALL
            .iter()
            .zip(bar.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(st, n)| format!("{n} {st}"))
            .collect();
        let _ = write!(
            s,
            r#"<g class="bar"><title>{}: {total} host{} ({})</title>"#,
            escape(&bar.label),
            if total == 1 { "" } else { "s" },
            escape(&parts.join(", "))
        );
        let shown: String = if bar.label.chars().count() > 28 {
            let mut t: String = bar.label.chars().take(27).collect();
            t.push('…');
            t
        } else {
            bar.label.clone()
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 8,
            y + 13,
            escape(&shown)
        );
        let mut x = LABEL_W as f64;
        for (st, n) in HostState::ALL.iter().zip(bar.counts) {
            if n == 0 {
                continue;
            }
            let w = BAR_W * n as f64 / max as f64;
            let _ = write!(
                s,
                r#"<rect class="s-{}" x="{x:.1}" y="{y}" width="{w:.1}" height="16"><title>{}: {n} {st}</title></rect>"#,
                st.name(),
                escape(&bar.label)
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}">{total}</text></g>"#,
            x + 6.0,
            y + 13
        );
    }
    s.push_str("</svg>");
    s
}

/// Renders the page.
pub fn render(doc: &Document, opts: &RenderOptions) -> String {
    let hosts = sorted_hosts(doc);
    let page = Page {
        doc,
        opts,
        repaired: doc.remaining.is_some() || hosts.iter().any(|r| r.repair.is_some()),
        planned: hosts.iter().any(|r| r.plan.is_some()),
        command: escape(&doc.command),
        hosts,
    };
    let mut h = String::new();
    page.head(&mut h);
    page.header(&mut h);
    page.summary(&mut h);
    page.fleet(&mut h);
    page.people(&mut h);
    page.host_table(&mut h);
    let _ = writeln!(h, "<script>{SCRIPT}</script>\n</body>\n</html>");
    h
}

/// What every section of the page reads.
struct Page<'a> {
    doc: &'a Document,
    opts: &'a RenderOptions,
    /// The hosts, sorted by name.
    hosts: Vec<&'a HostReport>,
    /// A repair ran: "after" columns and colours.
    repaired: bool,
    /// Plans exist: the planned-actions column, "needs a person".
    planned: bool,
    /// The command, escaped.
    command: String,
}

impl Page<'_> {
    /// The document's head: the content security policy (nothing external), title, style.
    fn head(&self, h: &mut String) {
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        let _ = writeln!(
            h,
            "<title>trustsweep {} report: {} hosts</title>",
            self.command,
            self.hosts.len()
        );
        let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>");
    }

    /// The page header: command, size, timings, schema (and the time, when given).
    fn header(&self, h: &mut String) {
        let doc = self.doc;
        let _ = writeln!(h, "<header>\n<h1>trustsweep {}</h1>", self.command);
        let mut meta = format!(
            "{} hosts · elapsed {} · peak concurrency {} · schema {}",
            self.hosts.len(),
            seconds(doc.elapsed_ms),
            doc.peak_concurrency,
            escape(&doc.schema)
        );
        if let Some(at) = &self.opts.generated_at {
            let _ = write!(meta, " · generated {}", escape(at));
        }
        let _ = writeln!(h, "<p class=\"meta\">{meta}</p>\n</header>");
    }

    /// The counts per state, before and after.
    fn summary(&self, h: &mut String) {
        let (doc, command) = (self.doc, &self.command);
        let _ = writeln!(h, "<section id=\"summary\">\n<h2>Summary</h2>");
        let _ = writeln!(h, "<table class=\"summary\">");
        match &doc.remaining {
            Some(_) => {
                let _ = writeln!(h, "<thead><tr><th>state</th><th class=\"num\">before {command}</th><th class=\"num\">after {command} (verified)</th></tr></thead>");
            }
            None => {
                let _ = writeln!(
                    h,
                    "<thead><tr><th>state</th><th class=\"num\">hosts</th></tr></thead>"
                );
            }
        }
        h.push_str("<tbody>\n");
        for st in HostState::ALL {
            let _ = write!(
                h,
                "<tr><td><span class=\"badge b-{}\">{st}</span></td><td class=\"num\">{}</td>",
                st.name(),
                doc.summary.count(st)
            );
            if let Some(left) = &doc.remaining {
                let _ = write!(h, "<td class=\"num\">{}</td>", left.count(st));
            }
            h.push_str("</tr>\n");
        }
        let _ = write!(
            h,
            "<tr><th>total</th><td class=\"num\">{}</td>",
            doc.summary.total()
        );
        if let Some(left) = &doc.remaining {
            let _ = write!(h, "<td class=\"num\">{}</td>", left.total());
        }
        h.push_str("</tr>\n</tbody>\n</table>\n");
        if self.repaired {
            let changed = self
                .hosts
                .iter()
                .filter(|r| r.state != HostState::Healthy && final_state(r) == HostState::Healthy)
                .count();
            let _ = writeln!(
                h,
                "<p>{changed} host{} went from not healthy to verified healthy.</p>",
                if changed == 1 { "" } else { "s" }
            );
        }
        h.push_str("</section>\n");
    }

    /// The charts: hosts per diagnosis, per DC, per inventory group.
    fn fleet(&self, h: &mut String) {
        let mut by_diag: BTreeMap<String, [usize; 5]> = BTreeMap::new();
        let mut by_dc: BTreeMap<String, [usize; 5]> = BTreeMap::new();
        let mut by_group: BTreeMap<String, [usize; 5]> = BTreeMap::new();
        for r in &self.hosts {
            let i = state_index(final_state(r));
            let add = |map: &mut BTreeMap<String, [usize; 5]>, key: String| {
                if let Some(c) = map.entry(key).or_insert([0; 5]).get_mut(i) {
                    *c += 1;
                }
            };
            add(&mut by_diag, r.diagnosis.name().to_string());
            add(
                &mut by_dc,
                bound_dc(r).unwrap_or_else(|| "(no DC)".to_string()),
            );
            for g in self.opts.groups.of(&r.host) {
                add(&mut by_group, g.to_string());
            }
        }
        let colour = if self.repaired {
            "colour: state after the repair"
        } else {
            "colour: state"
        };
        let _ = writeln!(h, "<section id=\"fleet\">\n<h2>The fleet</h2>");
        h.push_str("<p class=\"legend\">");
        for st in HostState::ALL {
            let _ = write!(h, "<span><i class=\"l-{}\"></i>{st}</span>", st.name());
        }
        h.push_str("</p>\n<div class=\"charts\">\n");
        let charts = [
            (
                "chart-diagnosis",
                format!("Hosts per diagnosis (as found; {colour})"),
                bars(by_diag, true),
            ),
            (
                "chart-dc",
                format!("Hosts per domain controller (the channel's DC when probed; {colour})"),
                bars(by_dc, false),
            ),
            (
                "chart-group",
                format!(
                    "Hosts per inventory group (a host counts in each of its groups; {colour})"
                ),
                bars(by_group, false),
            ),
        ];
        for (id, caption, bars) in &charts {
            let _ = writeln!(
                h,
                "<figure>\n<figcaption>{}</figcaption>\n{}\n</figure>",
                escape(caption),
                bar_chart(id, caption, bars)
            );
        }
        h.push_str("</div>\n</section>\n");
    }

    /// The hosts a person must act on (or, with no plans, the unhealthy ones), and why.
    fn people(&self, h: &mut String) {
        let people: Vec<(&HostReport, String)> = self
            .hosts
            .iter()
            .filter_map(|r| needs_person(r).map(|w| (*r, w)))
            .collect();
        let title = if self.planned {
            "Needs a person"
        } else {
            "Not healthy"
        };
        let _ = writeln!(
            h,
            "<section id=\"people\">\n<h2>{title} ({})</h2>",
            people.len()
        );
        if people.is_empty() {
            h.push_str("<p class=\"muted\">Nobody needs to act.</p>\n");
        } else {
            h.push_str("<ul class=\"people\">\n");
            for (r, why) in &people {
                let _ = writeln!(
                    h,
                    "<li><strong>{}</strong> <span class=\"badge b-{}\">{}</span> {}: {}</li>",
                    escape(&r.host),
                    final_state(r).name(),
                    final_state(r),
                    escape(&final_diagnosis(r).to_string()),
                    escape(why)
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</section>\n");
    }

    /// The sortable, filterable host table.
    fn host_table(&self, h: &mut String) {
        let n = self.hosts.len();
        let _ = writeln!(h, "<section id=\"table\">\n<h2>Hosts</h2>");
        let _ = writeln!(
            h,
            "<div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"filter hosts\" aria-label=\"filter hosts\"> <span class=\"muted\"><span id=\"shown\">{n}</span> of {n} shown; click a column header to sort</span></div>"
        );
        h.push_str(
            "<div class=\"table-wrap\">\n<table id=\"hosts\" class=\"sortable\">\n<thead><tr>",
        );
        h.push_str("<th data-type=\"text\" aria-sort=\"ascending\">host</th><th data-type=\"text\">address</th><th data-type=\"text\">group</th><th data-type=\"number\">state</th><th data-type=\"text\">diagnosis</th><th data-type=\"text\">DC</th>");
        if self.planned {
            h.push_str("<th data-type=\"text\">planned actions</th>");
        }
        if self.repaired {
            h.push_str("<th data-type=\"text\">repair</th><th data-type=\"number\">after</th>");
        }
        h.push_str("<th data-type=\"number\" class=\"num\">probe ms</th><th data-type=\"text\">evidence</th></tr></thead>\n<tbody>\n");
        for r in &self.hosts {
            self.host_row(h, r);
        }
        h.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }

    /// One host's row.
    fn host_row(&self, h: &mut String, r: &HostReport) {
        let _ = write!(
            h,
            "<tr class=\"host\"><td>{}</td><td>{}</td><td>{}</td>",
            escape(&r.host),
            escape(&r.address),
            escape(&self.opts.groups.of(&r.host).join(", "))
        );
        let _ = write!(
            h,
            "<td data-sort=\"{}\"><span class=\"badge b-{}\">{}</span></td>",
            state_rank(r.state),
            r.state.name(),
            r.state
        );
        let _ = write!(
            h,
            "<td title=\"{}\">{}</td><td>{}</td>",
            escape(&r.diagnosis.to_string()),
            escape(r.diagnosis.name()),
            escape(&bound_dc(r).unwrap_or_default())
        );
        if self.planned {
            let _ = write!(h, "<td>{}</td>", escape(&planned_actions(r).join(" → ")));
        }
        if self.repaired {
            let status = r
                .repair
                .as_ref()
                .map(|o| o.status.to_string())
                .unwrap_or_default();
            let end = final_state(r);
            let _ = write!(
                h,
                "<td>{}</td><td data-sort=\"{}\"><span class=\"badge b-{}\">{}</span></td>",
                escape(&status),
                state_rank(end),
                end.name(),
                end
            );
        }
        let _ = write!(
            h,
            "<td class=\"num\" data-sort=\"{}\">{}</td>",
            r.probe_ms, r.probe_ms
        );
        evidence_cell(h, r);
        h.push_str("</tr>\n");
    }
}

/// The evidence cell: the deciding line, unfolding to the diagnosis, every line of
/// evidence, the plan's why and needs, and the repair's outcome.
fn evidence_cell(h: &mut String, r: &HostReport) {
    let _ = write!(
        h,
        "<td data-sort=\"{}\"><details><summary>{}</summary><ul>",
        escape(key_evidence(r)),
        escape(key_evidence(r))
    );
    let _ = write!(
        h,
        "<li>diagnosis: {}</li>",
        escape(&r.diagnosis.to_string())
    );
    for e in &r.evidence {
        let _ = write!(h, "<li>{}</li>", escape(e));
    }
    if let Some(p) = &r.plan {
        if !p.why.is_empty() {
            let _ = write!(h, "<li>plan: {}</li>", escape(&p.why));
        }
        for n in &p.needs {
            let _ = write!(h, "<li>needs: {}</li>", escape(n));
        }
    }
    if let Some(o) = &r.repair {
        let _ = write!(
            h,
            "<li>repair: {}: {}</li>",
            escape(&o.status.to_string()),
            escape(&o.detail)
        );
    }
    h.push_str("</ul></details></td>");
}
