//! The report files and the terminal recap, rendered from a real report (the JSON of a
//! `repair` over the built-in lab, `cli/testdata/repair-lab60-seed4.json`): `insta`
//! snapshots of every format, the JUnit XML read back by an independent parser (quick-xml)
//! and checked against the structure of the JUnit schema CI tools accept, the CSV read back
//! by the `csv` reader, the HTML checked for its table, script and charts and for any
//! external reference, and, when Debian's `chromium` is installed, the HTML opened and
//! sorted in headless Chromium.
//!
//! Snapshots live in `cli/tests/snapshots/report_formats__<name>.snap` (insta's header,
//! then the rendered text). After a deliberate change to a renderer:
//! - `INSTA_UPDATE=always cargo test -p trustsweep --test report_formats` rewrites them in
//!   place; read the change with `git diff cli/tests/snapshots/` before committing.
//! - Or run the tests as usual: a mismatch fails and leaves a `.snap.new` beside the
//!   snapshot; `cargo insta review` (from `cargo install cargo-insta`, not installed on
//!   the project's machines) accepts or rejects each, or delete the `.snap.new` files.
//!
//! With `CI` set (`.ci/run`), insta writes nothing: a mismatch or a missing snapshot only
//! fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use playbooks::{HostState, RepairStatus};
use report::view::Groups;
use report::{render, render_with, Document, FileFormat, HostReport, RenderOptions};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> Document {
    let path = manifest().join("testdata/repair-lab60-seed4.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The lab's hosts filed in inventory groups, as an inventory would.
fn groups(doc: &Document) -> Groups {
    doc.hosts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let site = ["site_a", "site_b", "site_c"][i * 3 / doc.hosts.len().max(1)];
            let mut g = vec!["all".to_string(), site.to_string()];
            if i % 2 == 0 {
                g.push("workstations".to_string());
            }
            (r.host.clone(), g)
        })
        .collect()
}

fn options(doc: &Document) -> RenderOptions {
    RenderOptions {
        groups: groups(doc),
        ..RenderOptions::default()
    }
}

/// Compares `actual` with the insta snapshot `name`. insta compares text with trailing
/// whitespace trimmed and CRLF read as LF, so the line ends (`eol`) are checked here: the
/// output stays pinned byte for byte.
fn snapshot(name: &str, actual: &str, eol: &str) {
    insta::assert_snapshot!(name, actual);
    let lines = actual.matches('\n').count();
    let crlf = actual.matches("\r\n").count();
    assert_eq!(
        crlf,
        if eol == "\r\n" { lines } else { 0 },
        "{name}: line ends"
    );
    assert_eq!(
        &actual[actual.trim_end().len()..],
        eol,
        "{name}: end of file"
    );
}

/// The state a host was left in, worked out here from the JSON's meaning (not with the
/// reporters' code): a verification decides; an unverified repair leaves it unknown.
fn left_state(r: &HostReport) -> HostState {
    match &r.repair {
        Some(o) => match &o.verification {
            Some(v) => v.diagnosis.state(),
            None if o.status == RepairStatus::Unverified => HostState::Unknown,
            None => r.state,
        },
        None => r.state,
    }
}

fn shuffled(doc: &Document) -> Document {
    let mut d = doc.clone();
    d.hosts.reverse();
    let n = d.hosts.len();
    d.hosts.swap(0, n / 2);
    d
}

#[test]
fn fixture_is_a_repair_of_the_lab_with_every_kind_of_host() {
    let doc = fixture();
    assert_eq!(doc.schema, report::SCHEMA);
    assert_eq!(doc.command, "repair");
    assert_eq!(doc.hosts.len(), 60);
    let text =
        std::fs::read_to_string(manifest().join("testdata/repair-lab60-seed4.json")).unwrap();
    // Lab data only: nothing that looks like a credential travelled into the report.
    for needle in [
        "ansible_password",
        "trustsweep_repair_password",
        "\"password\"",
    ] {
        assert!(!text.contains(needle), "fixture contains {needle}");
    }
    let states: Vec<HostState> = doc.hosts.iter().map(|r| r.state).collect();
    for st in [
        HostState::Healthy,
        HostState::Broken,
        HostState::Unreachable,
        HostState::AccessProblem,
    ] {
        assert!(states.contains(&st), "no {st} host in the fixture");
    }
    assert!(doc.hosts.iter().any(|r| r
        .repair
        .as_ref()
        .is_some_and(|o| o.status == RepairStatus::Repaired)));
}

#[test]
fn every_format_matches_its_snapshot_and_ignores_host_order() {
    let doc = fixture();
    let opts = options(&doc);
    for (format, name, eol) in [
        (FileFormat::Junit, "report-junit.xml", "\n"),
        // RFC 4180 line ends.
        (FileFormat::Csv, "report.csv", "\r\n"),
        (FileFormat::Html, "report.html", "\n"),
        (FileFormat::Markdown, "report.md", "\n"),
    ] {
        let out = render_with(format, &doc, &opts);
        snapshot(name, &out, eol);
        assert_eq!(
            out,
            render_with(format, &shuffled(&doc), &opts),
            "{format} depends on host order"
        );
        assert_eq!(
            out,
            render_with(format, &doc, &opts),
            "{format} is not stable"
        );
    }
    // JSON is the document as the binary printed it (`--format json`), byte for byte.
    let printed =
        std::fs::read_to_string(manifest().join("testdata/repair-lab60-seed4.json")).unwrap();
    assert_eq!(
        render_with(FileFormat::Json, &shuffled(&doc), &opts),
        printed
    );
    // Without groups every host is in "hosts".
    snapshot(
        "report-nogroups-junit.xml",
        &render(FileFormat::Junit, &doc),
        "\n",
    );
}

#[test]
fn recap_matches_its_snapshots_in_plain_and_colour() {
    let doc = fixture();
    let plain = report::recap(&doc, false);
    snapshot("recap.txt", &plain, "\n");
    assert!(!plain.contains('\x1b'), "colour without asking");
    let colour = report::recap(&doc, true);
    snapshot("recap-color.txt", &colour, "\n");
    assert!(colour.contains("\x1b[31m"), "no red in the coloured recap");
    // The colour codes are the only difference.
    let stripped = regex_lite_strip(&colour);
    assert_eq!(stripped, plain);
    for needle in [
        "stale_password",
        "reset_machine_password",
        "needs a person (10)",
        "slowest hosts",
        "ws0008.lab.test",
    ] {
        assert!(plain.contains(needle), "recap lacks {needle}:\n{plain}");
    }
    // The slowest host comes first in its section.
    let slowest = doc.hosts.iter().max_by_key(|r| r.probe_ms).unwrap();
    let section = plain.split("slowest hosts:").nth(1).unwrap();
    assert!(section.lines().nth(1).unwrap().contains(&slowest.host));
}

fn regex_lite_strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn recap_counts_and_lists_hosts_made_worse() {
    // Never worse (issue 11): a repair that left a host worse is its own, loud section.
    let mut doc = fixture();
    let text = report::recap(&doc, false);
    assert!(text.contains("\n  made worse: none\n"), "{text}");
    let r = doc
        .hosts
        .iter_mut()
        .find(|r| r.repair.is_some())
        .expect("a repaired host");
    let o = r.repair.as_mut().unwrap();
    o.status = RepairStatus::MadeWorse;
    o.detail = "MADE WORSE by rejoin; the ladder was stopped: before: reachable, domain member, live channel status 5; after: reachable, workgroup, no live channel status; it left the domain and did not come back (workgroup)".into();
    let host = r.host.clone();
    let text = report::recap(&doc, false);
    assert!(
        text.contains("MADE WORSE (1): ladder stopped; look at these first"),
        "{text}"
    );
    assert!(
        text.contains(&format!("    {host}  MADE WORSE by rejoin")),
        "{text}"
    );
    let json = serde_json::to_string(&doc).unwrap();
    assert!(json.contains("\"status\":\"made_worse\""), "{json}");
    // A check has no repair: no such line.
    doc.remaining = None;
    assert!(!report::recap(&doc, false).contains("made worse"));
}

#[test]
fn recap_of_check_and_plan_documents() {
    let mut check = fixture();
    check.command = "check".into();
    check.remaining = None;
    for r in &mut check.hosts {
        r.plan = None;
        r.repair = None;
    }
    let text = report::recap(&check, false);
    assert!(text.contains("not healthy"), "{text}");
    assert!(!text.contains("after check"), "{text}");
    snapshot("recap-check.txt", &text, "\n");
}

#[test]
fn json_is_the_document_with_hosts_sorted() {
    let doc = fixture();
    let out = render(FileFormat::Json, &shuffled(&doc));
    let back: Document = serde_json::from_str(&out).unwrap();
    let mut sorted = doc.clone();
    sorted.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&sorted).unwrap()
    );
    // The borrowed writer and the document's own serialisation agree field for field.
    let direct: serde_json::Value = serde_json::to_value(&sorted).unwrap();
    let rendered: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(direct, rendered);
}

#[test]
fn write_file_writes_what_render_returns_and_leaves_no_temporary() {
    let doc = fixture();
    let dir = std::env::temp_dir().join(format!("trustsweep-report-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for format in FileFormat::ALL {
        let path = dir.join(format.default_file_name());
        report::write_file(format, &path, &doc).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            render(format, &doc),
            "{format}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), FileFormat::ALL.len(), "{names:?}");
    // A directory that does not exist: an error, nothing panics.
    assert!(report::write_file(FileFormat::Csv, &dir.join("nope/x.csv"), &doc).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn format_names_parse() {
    for f in FileFormat::ALL {
        assert_eq!(f.name().parse::<FileFormat>().unwrap(), f);
        assert_eq!(
            f.to_string().to_uppercase().parse::<FileFormat>().unwrap(),
            f
        );
    }
    assert!("xml".parse::<FileFormat>().is_err());
    let (f, p) = report::parse_output("junit=out/junit.xml").unwrap();
    assert_eq!((f, p), (FileFormat::Junit, PathBuf::from("out/junit.xml")));
    assert!(report::parse_output("junit").is_err());
    assert!(report::parse_output("junit=").is_err());
    assert!(report::parse_output("pdf=x.pdf").is_err());
}

// --- JUnit, read back with quick-xml and checked against the JUnit schema's structure ---

#[derive(Debug)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

fn parse_xml(xml: &str) -> Element {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element {
        name: "#document".into(),
        attrs: BTreeMap::new(),
        children: Vec::new(),
        text: String::new(),
    }];
    let open = |e: &quick_xml::events::BytesStart<'_>| Element {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect(),
        children: Vec::new(),
        text: String::new(),
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => {
                let el = open(&e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(e) => {
                let el = stack.pop().unwrap();
                assert_eq!(el.name.as_bytes(), e.name().as_ref(), "mismatched end tag");
                stack.last_mut().unwrap().children.push(el);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.unescape().unwrap()),
            Event::CData(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(std::str::from_utf8(&t).unwrap()),
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().unwrap()
}

/// The JUnit schema CI tools accept (Jenkins' junit-10.xsd, which GitLab, GitHub actions
/// and Azure readers follow): per element, its required and allowed attributes and its
/// allowed children.
fn junit_rules(
    name: &str,
) -> Option<(
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
)> {
    Some(match name {
        "testsuites" => (
            &[],
            &["name", "time", "tests", "failures", "disabled", "errors"],
            &["testsuite"],
        ),
        "testsuite" => (
            &["tests"],
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "time",
                "disabled",
                "skipped",
                "skips",
                "timestamp",
                "hostname",
                "id",
                "package",
                "assertions",
                "file",
                "skip",
                "log",
                "url",
            ],
            &[
                "testsuite",
                "properties",
                "testcase",
                "system-out",
                "system-err",
            ],
        ),
        "properties" => (&[], &[], &["property"]),
        "property" => (&["name", "value"], &["name", "value"], &[]),
        "testcase" => (
            &["name"],
            &[
                "name",
                "assertions",
                "time",
                "timestamp",
                "classname",
                "status",
                "class",
                "file",
                "line",
                "log",
                "group",
                "url",
            ],
            &["skipped", "error", "failure", "system-out", "system-err"],
        ),
        "failure" | "error" | "skipped" => (&[], &["type", "message"], &[]),
        "system-out" | "system-err" => (&[], &[], &[]),
        _ => return None,
    })
}

fn validate_junit(el: &Element, path: &str) {
    let path = format!("{path}/{}", el.name);
    let (required, allowed, children) =
        junit_rules(&el.name).unwrap_or_else(|| panic!("{path}: element not in the schema"));
    for a in required {
        assert!(el.attrs.contains_key(*a), "{path}: missing required @{a}");
    }
    for a in el.attrs.keys() {
        assert!(
            allowed.contains(&a.as_str()),
            "{path}: @{a} not in the schema"
        );
    }
    for a in ["tests", "failures", "errors", "disabled", "skipped"] {
        if let Some(v) = el.attrs.get(a) {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("{path}: @{a}={v} is not a count"));
        }
    }
    if let Some(t) = el.attrs.get("time") {
        let t: f64 = t.parse().unwrap_or_else(|_| panic!("{path}: @time={t}"));
        assert!(t >= 0.0);
    }
    for c in &el.children {
        assert!(
            children.contains(&c.name.as_str()),
            "{path}: <{}> not allowed here",
            c.name
        );
        validate_junit(c, &path);
    }
}

#[test]
fn junit_read_back_matches_the_document_and_the_schema() {
    let doc = fixture();
    let opts = options(&doc);
    let xml = render_with(FileFormat::Junit, &doc, &opts);
    let root = parse_xml(&xml);
    assert_eq!(root.name, "testsuites");
    validate_junit(&root, "");

    let suites: Vec<&Element> = root.children.iter().collect();
    assert_eq!(suites.len(), 1, "one test suite per command");
    let suite = suites[0];
    assert_eq!(suite.attrs["name"], doc.command);
    let cases: Vec<&Element> = suite
        .children
        .iter()
        .filter(|c| c.name == "testcase")
        .collect();
    assert_eq!(cases.len(), doc.hosts.len());
    assert_eq!(suite.attrs["tests"], doc.hosts.len().to_string());
    assert_eq!(root.attrs["tests"], doc.hosts.len().to_string());

    // Expected verdicts, worked out from the document here.
    let mut want_fail = Vec::new();
    let mut want_error = Vec::new();
    for r in &doc.hosts {
        let left = left_state(r);
        if left == HostState::Healthy {
            continue;
        }
        if r.state == HostState::Broken || left == HostState::Broken {
            want_fail.push(r.host.clone());
        } else {
            want_error.push(r.host.clone());
        }
    }
    want_fail.sort();
    want_error.sort();
    let with = |tag: &str| -> Vec<String> {
        cases
            .iter()
            .filter(|c| c.children.iter().any(|x| x.name == tag))
            .map(|c| c.attrs["name"].clone())
            .collect()
    };
    assert_eq!(with("failure"), want_fail);
    assert_eq!(with("error"), want_error);
    assert!(with("skipped").is_empty());
    assert_eq!(suite.attrs["failures"], want_fail.len().to_string());
    assert_eq!(suite.attrs["errors"], want_error.len().to_string());
    assert_eq!(root.attrs["failures"], want_fail.len().to_string());
    assert_eq!(root.attrs["errors"], want_error.len().to_string());
    assert_eq!(
        (want_fail.len(), want_error.len()),
        (6, 2),
        "the fixture's mix"
    );

    // Test cases in host order, class names from the groups, times from the probe.
    let names: Vec<&str> = cases.iter().map(|c| c.attrs["name"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for r in &doc.hosts {
        let case = cases.iter().find(|c| c.attrs["name"] == r.host).unwrap();
        assert_eq!(case.attrs["classname"], opts.groups.first(&r.host));
        assert!(case.attrs["classname"] != "all");
        let t: f64 = case.attrs["time"].parse().unwrap();
        assert!(
            (t - r.probe_ms as f64 / 1000.0).abs() < 0.0011,
            "{}: {t}",
            r.host
        );
        if let Some(f) = case.children.iter().find(|x| x.name == "failure") {
            assert_eq!(f.attrs["message"], r.diagnosis.to_string());
            assert_eq!(f.attrs["type"], r.diagnosis.name());
            for e in &r.evidence {
                assert!(f.text.contains(e.as_str()), "{}: body lacks {e}", r.host);
            }
            if let Some(p) = &r.plan {
                assert!(f.text.contains(&p.why), "{}: body lacks the plan", r.host);
            }
        }
    }
    // A repaired host passes, and says so.
    let repaired = doc
        .hosts
        .iter()
        .find(|r| {
            r.repair
                .as_ref()
                .is_some_and(|o| o.status == RepairStatus::Repaired)
        })
        .unwrap();
    let case = cases
        .iter()
        .find(|c| c.attrs["name"] == repaired.host)
        .unwrap();
    assert!(case.children.iter().all(|x| x.name == "system-out"));
    assert!(case.children[0].text.contains("repaired"));
}

#[test]
fn junit_without_groups_files_hosts_under_hosts() {
    let doc = fixture();
    let root = parse_xml(&render(FileFormat::Junit, &doc));
    validate_junit(&root, "");
    for case in &root.children[0].children {
        if case.name == "testcase" {
            assert_eq!(case.attrs["classname"], "hosts");
        }
    }
}

// --- CSV ---

#[test]
fn csv_round_trips_through_the_csv_reader() {
    let doc = fixture();
    let text = render(FileFormat::Csv, &doc);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(headers, report::csv_file::COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), doc.hosts.len());
    let mut hosts: Vec<&HostReport> = doc.hosts.iter().collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (row, r) in rows.iter().zip(hosts) {
        let cells: Vec<String> = row.iter().map(String::from).collect();
        assert_eq!(cells, report::csv_file::row(r).to_vec());
        assert_eq!(row[col("host")], r.host);
        assert_eq!(row[col("address")], r.address);
        assert_eq!(&row[col("diagnosis")], r.diagnosis.name());
        assert_eq!(row[col("probe_ms")].parse::<u64>().unwrap(), r.probe_ms);
        assert_eq!(
            &row[col("state")],
            serde_json::to_value(r.state).unwrap().as_str().unwrap()
        );
        assert_eq!(
            &row[col("state_after")],
            serde_json::to_value(left_state(r))
                .unwrap()
                .as_str()
                .unwrap()
        );
        let sid = r
            .observation
            .probe
            .as_ref()
            .and_then(|p| p.machine_sid.clone())
            .unwrap_or_default();
        assert_eq!(row[col("machine_sid")], sid);
        let status = r
            .repair
            .as_ref()
            .map(|o| {
                serde_json::to_value(o.status)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .unwrap_or_default();
        assert_eq!(row[col("repair_status")], status);
    }
}

fn hostile(doc: &Document) -> Document {
    let mut d = doc.clone();
    let r = d
        .hosts
        .iter_mut()
        .find(|r| r.state == HostState::Broken && r.repair.is_none())
        .unwrap();
    r.evidence.push(
        "=HYPERLINK(\"x\"),\"quoted\", comma\nnewline <script>alert(1)</script> | pipe & more"
            .to_string(),
    );
    d
}

#[test]
fn hostile_host_output_is_quoted_and_escaped_everywhere() {
    let doc = hostile(&fixture());
    let line = doc
        .hosts
        .iter()
        .find(|r| r.evidence.iter().any(|e| e.starts_with("=HYPER")))
        .unwrap();

    // CSV: the cell survives the round trip, defused for spreadsheets.
    let text = render(FileFormat::Csv, &doc);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), doc.hosts.len());
    let row = rows.iter().find(|r| &r[0] == line.host.as_str()).unwrap();
    assert_eq!(&row[5], format!("'{}", line.evidence.last().unwrap()));

    // HTML: no live markup.
    let html = render(FileFormat::Html, &doc);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // JUnit: still well-formed, the text intact.
    let root = parse_xml(&render(FileFormat::Junit, &doc));
    validate_junit(&root, "");
    let case = root.children[0]
        .children
        .iter()
        .find(|c| c.name == "testcase" && c.attrs["name"] == line.host)
        .unwrap();
    assert!(case.children[0]
        .text
        .contains("<script>alert(1)</script> | pipe & more"));

    // Markdown: one row per line; the pipe escaped.
    let mut md_doc = doc.clone();
    md_doc
        .hosts
        .iter_mut()
        .find(|r| r.host == line.host)
        .unwrap()
        .host = "ws|evil`<b>".into();
    let md = render(FileFormat::Markdown, &md_doc);
    assert!(md.contains("ws\\|evil\\`&lt;b&gt;"), "{md}");
}

// --- HTML ---

#[test]
fn html_has_the_table_the_sort_script_and_the_charts_and_nothing_external() {
    let doc = fixture();
    let opts = options(&doc);
    let html = render_with(FileFormat::Html, &doc, &opts);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<table id=\"hosts\" class=\"sortable\">"));
    assert_eq!(
        html.matches("<tr class=\"host\">").count(),
        doc.hosts.len(),
        "one row per host"
    );
    for r in &doc.hosts {
        assert!(
            html.contains(&format!("<tr class=\"host\"><td>{}</td>", r.host)),
            "{} missing",
            r.host
        );
    }
    assert!(html.contains("<script>") && html.contains("function sortBy"));
    assert!(html.contains("addEventListener('click'"));
    for chart in ["chart-diagnosis", "chart-dc", "chart-group"] {
        assert!(
            html.contains(&format!("<svg id=\"{chart}\"")),
            "{chart} missing"
        );
    }
    assert!(html.matches("<rect ").count() >= 10);
    for label in [
        "stale_password",
        "name_twin",
        "dc1.lab.test",
        "dc2.lab.test",
        "site_a",
        "workstations",
    ] {
        assert!(
            html.contains(&format!("text-anchor=\"end\">{label}</text>")),
            "no bar for {label}"
        );
    }
    // Before and after the repair.
    assert!(html.contains("before repair") && html.contains("after repair"));
    // Self-contained: no URL at all, no external reference of any kind.
    for needle in [
        "http://", "https://", "src=", "href=", "@import", "url(", "//cdn",
    ] {
        assert!(!html.contains(needle), "HTML contains {needle}");
    }
    assert!(html.contains("Content-Security-Policy"));
}

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn dump_dom(browser: &Path, page: &Path, profile: &Path) -> String {
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Opens the page in headless Chromium, clicks the "probe ms" header twice (descending)
/// with the page's own script, and reads back the table order and the charts. Skipped
/// (with a note) when `chromium` is not installed, unless TRUSTSWEEP_REQUIRE_CHROMIUM is
/// set (CI installs Debian's `chromium`).
#[test]
fn html_sorts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("TRUSTSWEEP_REQUIRE_CHROMIUM").is_none(),
            "TRUSTSWEEP_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!(
            "note: chromium not installed (apt-get install chromium); HTML not opened in a browser"
        );
        return;
    };
    let doc = fixture();
    let html = render_with(FileFormat::Html, &doc, &options(&doc));
    // The harness: uses the page's own header click handlers, then writes what it sees.
    let harness = r#"<script>
(function () {
  var heads = document.querySelectorAll('#hosts thead th');
  var probe = Array.prototype.filter.call(heads, function (th) { return th.textContent.trim() === 'probe ms'; })[0];
  probe.click(); probe.click();
  var hosts = Array.prototype.map.call(document.querySelectorAll('#hosts tbody tr'), function (tr) { return tr.cells[0].textContent; });
  var out = document.createElement('pre');
  out.id = 'harness';
  out.textContent = JSON.stringify({ sort: probe.getAttribute('aria-sort'), hosts: hosts, bars: document.querySelectorAll('svg.chart rect').length, charts: document.querySelectorAll('svg.chart').length });
  document.body.appendChild(out);
})();
</script>
</body>"#;
    let page_html = html.replacen("</body>", harness, 1);
    let dir = std::env::temp_dir().join(format!("trustsweep-chromium-{}", std::process::id()));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, page_html).unwrap();
    let dom = dump_dom(&browser, &page, &profile);
    let start = dom
        .find("<pre id=\"harness\">")
        .expect("the harness did not run")
        + "<pre id=\"harness\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let seen: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(seen["sort"], "descending");
    assert_eq!(seen["charts"], 3);
    assert!(seen["bars"].as_u64().unwrap() >= 10);
    let mut want: Vec<&HostReport> = doc.hosts.iter().collect();
    want.sort_by(|a, b| {
        b.probe_ms
            .cmp(&a.probe_ms)
            .then_with(|| a.host.cmp(&b.host))
    });
    let want: Vec<&str> = want.iter().map(|r| r.host.as_str()).collect();
    let got: Vec<&str> = seen["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Markdown ---

#[test]
fn markdown_caps_the_host_table() {
    let doc = fixture();
    let md = render_with(
        FileFormat::Markdown,
        &doc,
        &RenderOptions {
            max_rows: 3,
            ..RenderOptions::default()
        },
    );
    let rows = md.lines().filter(|l| l.starts_with("| ws")).count();
    assert_eq!(rows, 3, "{md}");
    let unhealthy = doc
        .hosts
        .iter()
        .filter(|r| r.state != HostState::Healthy || left_state(r) != HostState::Healthy)
        .count();
    assert!(
        md.contains(&format!("_and {} more_", unhealthy - 3)),
        "{md}"
    );
    assert!(md.contains(&format!("### Hosts not healthy when found ({unhealthy})")));
    assert!(md.contains("| healthy | 49 | 52 |"), "{md}");
}

#[test]
fn generated_at_is_shown_only_when_given() {
    let doc = fixture();
    let at = "2026-11-23T21:00:00Z";
    let opts = RenderOptions {
        generated_at: Some(at.into()),
        ..RenderOptions::default()
    };
    for f in [FileFormat::Html, FileFormat::Markdown, FileFormat::Junit] {
        assert!(render_with(f, &doc, &opts).contains(at), "{f}");
        assert!(
            !render(f, &doc).contains("2026-"),
            "{f} prints a date unasked"
        );
    }
}
