//! Issue 16 end to end: faults in the middle of a repair, and `kill -9` of trustsweep in
//! the middle of a 200-host repair followed by `--resume`.
//!
//! The lab is served by this test process, so its state (and its count of destructive
//! steps per host, [`Lab::destructive_steps`]) outlives every killed client: no host may
//! have a step repeated, every host must be in the final report, the journal must read
//! back, and the history must hold one run per completed invocation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use serde_json::Value;

async fn start(spec: LabSpec) -> RunningLab {
    RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap()
}

fn temp(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn write_inventory(running: &RunningLab, name: &str) -> PathBuf {
    let path = temp(&format!("{name}.yml"));
    std::fs::write(&path, running.inventory_yaml()).unwrap();
    path
}

fn host_entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    trustsweep_tests::report_host(doc, name)
}

/// The journal's entries; a torn line (a run killed mid-write) is skipped, and counted.
fn journal_entries(path: &Path) -> (Vec<Value>, usize) {
    let text = std::fs::read(path).unwrap();
    let mut torn = 0;
    let mut entries = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => entries.push(v),
            Err(_) => torn += 1,
        }
    }
    (entries, torn)
}

fn count(entries: &[Value], event: &str) -> usize {
    entries.iter().filter(|e| e["event"] == event).count()
}

/// Starts `trustsweep repair` on `inv` appending to `journal` (resuming it when `resume`),
/// and SIGKILLs it once the journal holds `at` entries of `event`. Polls the file's
/// contents (bounded in count and time), never waits a fixed time.
async fn kill_at(inv: &Path, journal: &Path, history: &Path, resume: bool, event: &str, at: usize) {
    let journal_flag = if resume { "--resume" } else { "--journal" };
    let before = if resume {
        count(&journal_entries(journal).0, event)
    } else {
        0
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "repair",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--format",
            "json",
            "--concurrency",
            "4",
            journal_flag,
            journal.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ])
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut reached = false;
    for _ in 0..1_000_000 {
        tick.tick().await;
        if journal.exists() && count(&journal_entries(journal).0, event) >= before + at {
            reached = true;
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break;
        }
    }
    assert!(reached, "the run never journaled {at} more {event} entries");
    // SIGKILL: no destructor, no flush, no clean-up runs.
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed, not finished: {status:?}"
    );
}

fn runs_in_history(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_repair_then_resume_repairs_no_host_twice_and_forgets_none() {
    let mut spec = LabSpec::healthy(200, 16).with_fault(FaultKind::Snapshot, 24);
    // Each request costs a little, so the repair phase lasts long enough to be cut.
    spec.latency = Duration::from_millis(8);
    let running = start(spec).await;
    let lab = running.lab().clone();
    let inv = write_inventory(&running, "inv");
    let journal = temp("journal.jsonl");
    let history = temp("history.sqlite");

    // 1. Killed as soon as the first intent is durable (the step may or may not be out).
    kill_at(&inv, &journal, &history, false, "repair_started", 1).await;
    // (A SIGKILL inside a write could tear the last line; the journal tolerates one.)
    let (first, torn) = journal_entries(&journal);
    assert!(torn <= 1);
    assert_eq!(
        count(&first, "observed"),
        200,
        "the probes were all journaled"
    );
    // 2. Resumed, killed again after three more outcomes.
    kill_at(&inv, &journal, &history, true, "repaired", 3).await;
    // 3. Resumed, killed after five more intents; then a write torn by a kill is simulated
    //    (half an entry, no newline), which the next run must skip with a warning.
    kill_at(&inv, &journal, &history, true, "repair_started", 5).await;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(b"{\"event\":\"repaired\",\"host\":\"ws00")
            .unwrap();
    }
    assert_eq!(
        runs_in_history(&history),
        0,
        "a killed run records no history"
    );

    // 4. The last resume runs to the end.
    let out = common::run_trustsweep(
        [
            "repair",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--format",
            "json",
            "--concurrency",
            "4",
            "--resume",
            journal.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    let doc = trustsweep_tests::json_stdout(&out);

    // Every host once in the final report.
    let mut names: Vec<String> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "no host reported twice");
    assert_eq!(names.len(), 200, "no host forgotten");

    // No destructive step repeated on any host, across four runs and three kills.
    let mut interrupted = 0;
    for ep in running.endpoints() {
        let steps = lab.destructive_steps(ep.info.id);
        let h = host_entry(&doc, &ep.info.address);
        if ep.info.fault == Some(FaultKind::Snapshot) {
            assert!(steps <= 1, "{}: {steps} resets: {h:#}", ep.info.address);
            let detail = h["repair"]["detail"].as_str().unwrap_or("");
            let status = h["repair"]["status"].as_str().unwrap();
            if detail.starts_with("interrupted during") {
                interrupted += 1;
                // Verified; healthy only if the reset had gone out (it may still be
                // broken then: killed before the pin, bound to a DC the new password has
                // not replicated to yet; the resumed run only probes).
                let healthy = h["repair"]["verification"]["healthy"] == true;
                assert!(!healthy || steps == 1, "{h:#}");
                assert_eq!(
                    status,
                    if healthy {
                        "repaired"
                    } else {
                        "unknown_then_verified"
                    },
                    "{h:#}"
                );
            } else {
                assert_eq!(status, "repaired", "{h:#}");
                assert_eq!(steps, 1, "{h:#}");
            }
        } else {
            assert_eq!(steps, 0, "{}: a healthy host was changed", ep.info.address);
            assert!(h["repair"].is_null() || h["repair"]["status"] == "nothing_to_do");
        }
    }
    assert!(
        interrupted >= 1,
        "the kills after an intent left hosts interrupted mid-step, found none"
    );

    // The journal reads back: one torn line (skipped), every other line an entry; each
    // host probed once and given one final outcome.
    let (all, torn) = journal_entries(&journal);
    assert!(
        torn >= 1,
        "the simulated torn write is still there, skipped"
    );
    assert_eq!(count(&all, "run_started"), 4);
    let mut observed: Vec<&str> = all
        .iter()
        .filter(|e| e["event"] == "observed")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    observed.sort_unstable();
    observed.dedup();
    assert_eq!(observed.len(), 200);
    assert_eq!(count(&all, "observed"), 200, "no host probed twice");
    let mut repaired: Vec<&str> = all
        .iter()
        .filter(|e| e["event"] == "repaired")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    repaired.sort_unstable();
    let n = repaired.len();
    repaired.dedup();
    assert_eq!(n, repaired.len(), "one outcome per host across all runs");
    assert_eq!(repaired.len(), 24, "every snapshot host has its outcome");
    // The resumed run said it skipped the torn line.
    assert!(stderr.contains("torn"), "{stderr}");

    // History: the three killed runs recorded nothing, the completed one once.
    assert_eq!(runs_in_history(&history), 1);
}

/// The mid-repair faults of the lab, each on its own host of one sweep: every host ends
/// with a result that says what is known, no destructive step is repeated, and the sweep
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_mid_repair_end_with_what_is_known_and_no_repeated_step() {
    let mut spec = LabSpec::healthy(8, 5)
        .with_fault(FaultKind::DropAfterReset, 1)
        .with_fault(FaultKind::WinrmRestart, 1)
        .with_fault(FaultKind::DcAwayMidRepair, 1)
        .with_fault(FaultKind::Snapshot, 1);
    // Longer than the client's OperationTimeout (1 s below): its Receive gives up while the
    // host is away, as a real client's would.
    spec.mid_repair_outage = Duration::from_secs(4);
    let running = start(spec).await;
    let lab = running.lab().clone();
    let inv = write_inventory(&running, "mid");
    let journal = temp("mid.jsonl");
    let out = common::run_trustsweep(
        [
            "repair",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--format",
            "json",
            "--operation-timeout",
            "1",
            "--reboot-timeout",
            "30",
            "--journal",
            journal.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc = trustsweep_tests::json_stdout(&out);
    assert_eq!(
        doc["hosts"].as_array().unwrap().len(),
        8,
        "every host has a result: {stderr}"
    );
    // The winrm-restart host stays broken: exit 2 (broken hosts remain).
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let by_fault = |k: FaultKind| {
        let ep = running
            .endpoints()
            .iter()
            .find(|e| e.info.fault == Some(k))
            .unwrap()
            .clone();
        (ep.info.id, host_entry(&doc, &ep.info.address).clone())
    };
    let no_step_twice = |h: &Value| {
        let mut steps: Vec<String> = h["repair"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s["action"], s["step"]))
            .collect();
        let n = steps.len();
        steps.sort();
        steps.dedup();
        assert_eq!(n, steps.len(), "a step ran twice: {h:#}");
    };

    // The reset took effect, its answer was lost: verified healthy, not sent again.
    let (id, h) = by_fault(FaultKind::DropAfterReset);
    assert_eq!(h["repair"]["status"], "unknown_then_verified", "{h:#}");
    assert_eq!(h["repair"]["verification"]["healthy"], true, "{h:#}");
    let detail = h["repair"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("connection lost after Reset-ComputerMachinePassword was sent")
            && detail.ends_with("verified state: healthy"),
        "{detail}"
    );
    assert_eq!(lab.destructive_steps(id), 1);
    no_step_twice(&h);

    // The service restarted before the reset ran: verified broken, not retried.
    let (id, h) = by_fault(FaultKind::WinrmRestart);
    assert_eq!(h["repair"]["status"], "unknown_then_verified", "{h:#}");
    assert_eq!(h["repair"]["verification"]["healthy"], false, "{h:#}");
    let detail = h["repair"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("verified state: broken (") && detail.contains("not retried"),
        "{detail}"
    );
    assert_eq!(
        lab.destructive_steps(id),
        0,
        "nothing was reset, nothing resent"
    );
    no_step_twice(&h);

    // The DC written went away: the member reaches no DC; the ladder stops there with
    // the verified state, and no second password is sent.
    let (id, h) = by_fault(FaultKind::DcAwayMidRepair);
    assert_eq!(h["repair"]["status"], "still_broken", "{h:#}");
    assert_eq!(
        h["repair"]["verification"]["diagnosis"]["kind"], "dc_unreachable",
        "{h:#}"
    );
    assert!(
        h["repair"]["detail"]
            .as_str()
            .unwrap()
            .contains("a new password was written, then the member reached no DC"),
        "{h:#}"
    );
    assert_eq!(lab.destructive_steps(id), 1);
    assert!(
        h["repair"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] != "repair_secure_channel"),
        "{h:#}"
    );
    no_step_twice(&h);

    // The plain snapshot host next to them is repaired as usual.
    let (id, h) = by_fault(FaultKind::Snapshot);
    assert_eq!(h["repair"]["status"], "repaired", "{h:#}");
    assert_eq!(lab.destructive_steps(id), 1);

    // Every destructive step's intent was journaled before it went out.
    let (entries, torn) = journal_entries(&journal);
    assert_eq!(torn, 0);
    for k in [
        FaultKind::DropAfterReset,
        FaultKind::WinrmRestart,
        FaultKind::Snapshot,
    ] {
        let (_, h) = by_fault(k);
        let host = h["host"].as_str().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == "repair_started" && e["host"] == host),
            "{host}: no intent journaled"
        );
    }
}
