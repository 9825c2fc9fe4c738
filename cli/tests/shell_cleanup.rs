//! Shells never outlive a sweep (issue 12): hosts that hang are cut off by a tiny
//! `--host-deadline`, and still every WinRS shell the sweep created is deleted — leaked
//! shells count against `MaxShellsPerUser` for two hours on real hosts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::Duration;

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use serde_json::Value;

async fn sweep_with_deadline(running: &RunningLab, name: &str) -> Value {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let inv = dir.join(format!("shells-{name}-{}.yml", std::process::id()));
    std::fs::write(&inv, running.inventory_yaml()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "check",
            "-i",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--host-deadline",
            "1",
        ])
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "hung hosts are unreachable findings; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trustsweep_tests::json_stdout(&out)
}

/// PowerShell that never starts within the deadline: each host has its shell and a
/// command, the client sits in a Receive long poll, and the deadline drops the host's
/// future. The dropped session deletes its shell on a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_mid_receive_leaves_no_shell() {
    let opts = WireOptions {
        powershell_startup: Duration::from_secs(120),
        ..WireOptions::default()
    };
    let running = RunningLab::start(Lab::build(LabSpec::healthy(4, 12)).unwrap(), opts)
        .await
        .unwrap();
    let doc = sweep_with_deadline(&running, "receive").await;
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 4);
    for h in hosts {
        assert_eq!(h["observation"]["access"]["state"], "timeout", "{h:#}");
    }
    assert!(
        !running.command_log().is_empty(),
        "the hosts got as far as a command"
    );
    assert_eq!(running.open_shells(), 0, "every shell was deleted");
}

/// Every request slow (400 ms): the one-second deadline falls in the middle of the
/// handshake, the Create or the Command, depending on the host. A Create in flight is
/// finished by its own task, which deletes the shell it gets back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_mid_create_leaves_no_shell() {
    let mut spec = LabSpec::healthy(4, 13).with_fault(FaultKind::Slow, 4);
    spec.slow_latency = Duration::from_millis(400);
    let running = RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap();
    let doc = sweep_with_deadline(&running, "create").await;
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["observation"]["access"]["state"], "timeout", "{h:#}");
    }
    assert_eq!(running.open_shells(), 0, "every shell was deleted");
}
