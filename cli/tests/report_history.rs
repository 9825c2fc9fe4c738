//! History of runs in SQLite: three runs whose host states change between them give the
//! right newly broken / repaired / chronic / flapping rows; longer histories; migrations
//! are idempotent and a newer schema is refused. Host records are taken from the lab
//! fixture (`cli/testdata/repair-lab60-seed4.json`) and renamed, so every state is a real
//! report's.
//!
//! The rendered history is an `insta` snapshot,
//! `cli/tests/snapshots/report_history__history.txt.snap`. After a deliberate change:
//! - `INSTA_UPDATE=always cargo test -p trustsweep --test report_history` rewrites it in
//!   place; read the change with `git diff cli/tests/snapshots/` before committing.
//! - Or run the tests as usual: a mismatch fails and leaves a `.snap.new` beside the
//!   snapshot; `cargo insta review` (from `cargo install cargo-insta`, not installed on
//!   the project's machines) accepts or rejects it, or delete the `.snap.new` file.
//!
//! With `CI` set (`.ci/run`), insta writes nothing: a mismatch or a missing snapshot only
//! fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use playbooks::{HostState, RepairStatus};
use report::history::{History, HistoryError, HistoryView};
use report::{Document, HostReport};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> Document {
    let text =
        std::fs::read_to_string(manifest().join("testdata/repair-lab60-seed4.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Host records of each kind, from the fixture.
struct Kinds {
    healthy: HostReport,
    broken: HostReport,
    repaired: HostReport,
    unreachable: HostReport,
}

fn kinds() -> Kinds {
    let doc = fixture();
    let find =
        |pred: &dyn Fn(&HostReport) -> bool| doc.hosts.iter().find(|r| pred(r)).unwrap().clone();
    let mut broken = find(&|r| r.diagnosis.name() == "stale_password");
    broken.repair = None;
    Kinds {
        healthy: find(&|r| r.state == HostState::Healthy && r.repair.is_none()),
        broken,
        repaired: find(&|r| {
            r.repair
                .as_ref()
                .is_some_and(|o| o.status == RepairStatus::Repaired)
        }),
        unreachable: find(&|r| r.state == HostState::Unreachable),
    }
}

#[derive(Clone, Copy)]
enum K {
    H,
    B,
    R,
    U,
}

fn host(kinds: &Kinds, name: &str, k: K) -> HostReport {
    let mut r = match k {
        K::H => kinds.healthy.clone(),
        K::B => kinds.broken.clone(),
        K::R => kinds.repaired.clone(),
        K::U => kinds.unreachable.clone(),
    };
    r.host = name.to_string();
    r
}

fn doc(command: &str, hosts: Vec<HostReport>) -> Document {
    let (summary, remaining) = report::view::recount(&hosts, command == "repair");
    Document {
        schema: report::SCHEMA.to_string(),
        command: command.to_string(),
        summary,
        remaining,
        elapsed_ms: 1000,
        peak_concurrency: 4,
        concurrency: None,
        shard: None,
        hosts,
    }
}

fn run(kinds: &Kinds, command: &str, hosts: &[(&str, K)]) -> Document {
    doc(
        command,
        hosts.iter().map(|(n, k)| host(kinds, n, *k)).collect(),
    )
}

fn names<T>(rows: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|r| f(r).to_string()).collect()
}

#[test]
fn three_runs_give_newly_broken_repaired_chronic_and_flapping() {
    use K::*;
    let k = kinds();
    let mut h = History::open_in_memory().unwrap();
    let runs = [
        run(
            &k,
            "check",
            &[("a", H), ("b", B), ("c", H), ("d", B), ("e", B), ("f", U)],
        ),
        run(
            &k,
            "check",
            &[("a", H), ("b", B), ("c", B), ("d", B), ("e", H), ("f", H)],
        ),
        run(
            &k,
            "repair",
            &[
                ("a", B),
                ("b", B),
                ("c", H),
                ("d", R),
                ("e", R),
                ("f", U),
                ("g", B),
            ],
        ),
    ];
    let mut ids = Vec::new();
    for (i, d) in runs.iter().enumerate() {
        ids.push(h.record(d, 1_700_000_000 + 86_400 * i as i64).unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let view = h.changes().unwrap();
    assert_eq!(view.total_runs, 3);
    assert_eq!(view.last.as_ref().unwrap().id, ids[2]);
    assert_eq!(view.last.as_ref().unwrap().command, "repair");
    assert_eq!(view.previous.as_ref().unwrap().id, ids[1]);

    // a broke since run 2; e was found broken again (and repaired); g is new: not "newly".
    assert_eq!(names(&view.newly_broken, |c| &c.host), ["a", "e"]);
    let a = &view.newly_broken[0];
    assert_eq!((a.was, a.now), (HostState::Healthy, HostState::Broken));
    assert_eq!(a.diagnosis, "stale_password");
    let e = &view.newly_broken[1];
    assert_eq!((e.was, e.now), (HostState::Healthy, HostState::Healthy));

    // c healed between runs; d and e were repaired by the last run.
    assert_eq!(names(&view.repaired, |c| &c.host), ["c", "d", "e"]);
    assert!(view
        .repaired
        .iter()
        .all(|c| c.was == HostState::Broken && c.now == HostState::Healthy));

    // b ended every run broken.
    assert_eq!(names(&view.chronic, |c| &c.host), ["b"]);
    assert_eq!(view.chronic[0].runs, 3);
    assert!(!view.chronic[0].at_least);
    assert_eq!(view.chronic[0].since_run_at, 1_700_000_000);

    // e: broken, healthy, broken -> healthy: three changes in three runs.
    assert_eq!(names(&view.flapping, |f| &f.host), ["e"]);
    assert_eq!(view.flapping[0].changes, 3);
    assert_eq!(
        view.flapping[0].states,
        [
            HostState::Broken,
            HostState::Healthy,
            HostState::Broken,
            HostState::Healthy
        ]
    );

    let text = report::render_history(&view);
    insta::assert_snapshot!("history.txt", text);
    // insta compares with trailing whitespace trimmed and CRLF read as LF: pin those bytes.
    assert!(!text.contains('\r'), "LF line ends");
    assert_eq!(
        &text[text.trim_end().len()..],
        "\n",
        "one newline at the end"
    );
    for needle in [
        "newly broken since the last run (2)",
        "repaired, broken then healthy (3)",
        "chronic",
        "flapping",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
}

#[test]
fn flapping_looks_at_the_last_five_runs_and_chronic_streaks_at_the_window() {
    use K::*;
    let k = kinds();
    let mut h = History::open_in_memory().unwrap();
    let x = [H, B, H, B, H, B, H];
    let y = [B, B, B, B, B, H, H];
    let z = [H, H, B, B, B, B, B];
    for i in 0..7 {
        let d = run(&k, "check", &[("x", x[i]), ("y", y[i]), ("z", z[i])]);
        h.record(&d, 1000 + i as i64).unwrap();
    }
    let view = h.changes().unwrap();
    assert_eq!(names(&view.flapping, |f| &f.host), ["x"]);
    assert_eq!(view.flapping[0].changes, 4, "h b h b h over the last five");
    assert_eq!(names(&view.chronic, |c| &c.host), ["z"]);
    assert_eq!(view.chronic[0].runs, 5);
    assert_eq!(view.chronic[0].since_run_at, 1002);

    // A window of three runs sees z broken in all of them: at least three.
    let narrow = h.changes_within(3).unwrap();
    assert_eq!(narrow.chronic[0].runs, 3);
    assert!(narrow.chronic[0].at_least);
    assert!(report::render_history(&narrow).contains(">=3"));
}

#[test]
fn order_is_by_run_time_not_insertion() {
    use K::*;
    let k = kinds();
    let mut h = History::open_in_memory().unwrap();
    // Recorded out of order: the run at t=2000 is the last one.
    h.record(&run(&k, "check", &[("a", B)]), 2000).unwrap();
    h.record(&run(&k, "check", &[("a", H)]), 1000).unwrap();
    let view = h.changes().unwrap();
    assert_eq!(view.last.as_ref().unwrap().run_at, 2000);
    assert_eq!(names(&view.newly_broken, |c| &c.host), ["a"]);
}

#[test]
fn empty_and_single_run_histories() {
    let k = kinds();
    let mut h = History::open_in_memory().unwrap();
    let view = h.changes().unwrap();
    assert_eq!(view, HistoryView::default());
    assert_eq!(report::render_history(&view), "history: no runs recorded\n");
    h.record(&run(&k, "check", &[("a", K::B)]), 5).unwrap();
    let view = h.changes().unwrap();
    assert!(view.newly_broken.is_empty() && view.chronic.is_empty());
    assert!(report::render_history(&view).contains("nothing to compare with yet"));
}

#[test]
fn migrations_are_idempotent_and_a_newer_schema_is_refused() {
    let k = kinds();
    let dir = std::env::temp_dir().join(format!("trustsweep-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.sqlite");
    {
        let mut h = History::open(&path).unwrap();
        assert_eq!(h.schema_version().unwrap(), report::history::SCHEMA_VERSION);
        h.record(&run(&k, "check", &[("a", K::H)]), 1).unwrap();
    }
    for _ in 0..2 {
        let h = History::open(&path).unwrap();
        assert_eq!(h.schema_version().unwrap(), report::history::SCHEMA_VERSION);
        assert_eq!(h.runs().unwrap().len(), 1, "reopening keeps the runs");
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    match History::open(&path) {
        Err(HistoryError::NewerSchema {
            found: 99,
            supported,
        }) => {
            assert_eq!(supported, report::history::SCHEMA_VERSION)
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_lab_report_records_whole() {
    let doc = fixture();
    let mut h = History::open_in_memory().unwrap();
    let id = h.record(&doc, 42).unwrap();
    let runs = h.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].id, runs[0].hosts, runs[0].command.as_str()),
        (id, 60, "repair")
    );
    let clone = doc
        .hosts
        .iter()
        .find(|r| r.diagnosis.name() == "name_twin")
        .unwrap();
    assert_eq!(
        h.detail(id, &clone.host).unwrap().unwrap(),
        clone.diagnosis.to_string()
    );
}

#[test]
fn utc_formats_unix_seconds() {
    assert_eq!(report::history::utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(report::history::utc(951_782_400), "2000-02-29 00:00:00 UTC");
    assert_eq!(
        report::history::utc(1_700_000_000),
        "2023-11-14 22:13:20 UTC"
    );
    assert_eq!(report::history::utc(-1), "1969-12-31 23:59:59 UTC");
}
