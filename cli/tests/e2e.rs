//! End to end: the `trustsweep` binary sweeps a lab served from this test process, through
//! the inventory file the lab writes — exactly what an admin would run against a fleet.
//! The lab is the ground truth: every host's reported state is checked against the fault
//! placed on it, `plan` must leave the lab's state untouched, and `repair` must leave
//! every repairable host verified healthy without a password ever crossing a command line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use serde_json::Value;

fn every_fault_spec(seed: u64) -> LabSpec {
    // Every kind once (two pair kinds: 16 hosts) and two healthy hosts.
    let mut spec = LabSpec::healthy(18, seed);
    // `hung` would cost the sweep its read timeout; it has its own test.
    for kind in FaultKind::DEFAULT_MIX {
        spec = spec.with_fault(kind, 1);
    }
    spec.slow_latency = Duration::from_millis(150);
    spec
}

async fn start(spec: LabSpec) -> RunningLab {
    RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap()
}

fn write_inventory(running: &RunningLab, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("e2e-{name}-{}.yml", std::process::id()));
    std::fs::write(&path, running.inventory_yaml()).unwrap();
    path
}

async fn trustsweep(args: &[&str]) -> Output {
    common::run_trustsweep(args, &[("RUST_LOG", "debug")]).await
}

fn json(out: &Output) -> Value {
    trustsweep_tests::json_stdout(out)
}

/// What the tool should conclude for a host, from the fault the lab placed on it, when
/// the sweep has no DC access (`--ldap`): the table of issue 10.
fn expected_diagnosis(fault: Option<FaultKind>) -> &'static str {
    match fault {
        None | Some(FaultKind::Slow) => "healthy",
        // Domain logons refused by policy while the channel works: still healthy.
        Some(FaultKind::DenyNetworkLogon) => "healthy",
        // Without the DCs' view a lagging DC looks like a stale password (the ladder
        // covers both).
        Some(FaultKind::Snapshot | FaultKind::DcReset | FaultKind::StaleDc) => "stale_password",
        // Opt-in mid-repair faults: broken like a snapshot until a repair strikes them.
        Some(
            FaultKind::DropAfterReset
            | FaultKind::RebootMidRejoin
            | FaultKind::DcAwayMidRepair
            | FaultKind::WinrmRestart,
        ) => "stale_password",
        Some(FaultKind::Clone) => "name_twin",
        Some(FaultKind::SidDuplicate) => "sid_duplicate",
        Some(FaultKind::DisabledAccount | FaultKind::DeletedAccount) => {
            "account_disabled_or_missing"
        }
        Some(FaultKind::Dns) => "no_dc_locator",
        Some(FaultKind::NoDc) => "dc_unreachable",
        Some(FaultKind::DomainController) => "domain_controller",
        Some(FaultKind::Offline | FaultKind::Hung) => "unreachable",
        Some(FaultKind::FilteredAdmin) => "local_account_refused",
    }
}

/// Every command line the lab's hosts received, PowerShell scripts decoded from
/// `-EncodedCommand`.
fn decoded_commands(running: &RunningLab) -> Vec<String> {
    let mut out = Vec::new();
    for line in running.command_log() {
        let mut words = line.split(' ');
        let cmd = words.next().unwrap_or("");
        let args: Vec<String> = words.map(str::to_string).collect();
        match winrm::powershell::script_from_command_line(cmd, &args) {
            Some(Ok(script)) => out.push(script),
            _ => out.push(line.clone()),
        }
    }
    out
}

fn host_entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    trustsweep_tests::report_host(doc, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_fault_kind_and_exits_2() {
    let running = start(every_fault_spec(3)).await;
    let inv = write_inventory(&running, "check");
    let out = trustsweep(&[
        "check",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--host-deadline",
        "60",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(
        doc["hosts"].as_array().unwrap().len(),
        running.endpoints().len(),
        "every host gets a result"
    );
    for ep in running.endpoints() {
        let h = host_entry(&doc, &ep.info.address);
        assert_eq!(
            h["diagnosis"]["kind"],
            expected_diagnosis(ep.info.fault),
            "{} with fault {:?}: {h:#}",
            ep.info.address,
            ep.info.fault
        );
    }
    let summary = &doc["summary"];
    assert_eq!(summary["unreachable"], 1);
    assert_eq!(summary["access_problem"], 1);
    // name twins (2) + snapshot + dc-reset + stale-dc + disabled + deleted + dns + no-dc
    assert_eq!(summary["broken"], 9);
    // The domain-logon test ran as the least-privileged account and its refusal on the
    // deny-network-logon host did not make that host broken.
    let deny = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::DenyNetworkLogon))
        .unwrap();
    assert_eq!(
        host_entry(&doc, &deny.info.address)["observation"]["domain_logon"],
        "refused"
    );
    // The member's own NETLOGON events back the verdicts: 3210 names the DC that refused
    // a stale password, 5719 the domain whose DCs the member could not find.
    for (fault, needle) in [
        (FaultKind::Snapshot, "NETLOGON 3210"),
        (FaultKind::Dns, "NETLOGON 5719"),
    ] {
        let ep = running
            .endpoints()
            .iter()
            .find(|e| e.info.fault == Some(fault))
            .unwrap();
        let evidence = host_entry(&doc, &ep.info.address)["evidence"].to_string();
        assert!(evidence.contains(needle), "{fault}: {evidence}");
    }
    // Nothing claims a per-DC result the probe did not measure: no per-DC test exists.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("dc_tests") && !text.contains("-Server"),
        "{text}"
    );
    for script in decoded_commands(&running) {
        assert!(
            !script.contains("-Server"),
            "no per-DC test is sent: {script}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_changes_nothing() {
    let running = start(every_fault_spec(5)).await;
    let inv = write_inventory(&running, "plan");
    let before = running.lab().state_digest();
    let out = trustsweep(&[
        "plan",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--allow-rejoin",
        "--allow-dc-reset",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        running.lab().state_digest(),
        before,
        "plan must not change any host or DC"
    );
    let doc = json(&out);
    let snapshot = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Snapshot))
        .unwrap();
    let actions = host_entry(&doc, &snapshot.info.address)["plan"]["actions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(actions[0]["action"], "reset_machine_password");
    for clone in running
        .endpoints()
        .iter()
        .filter(|e| e.info.fault == Some(FaultKind::Clone))
    {
        let actions = &host_entry(&doc, &clone.info.address)["plan"]["actions"];
        assert_eq!(actions.as_array().unwrap().len(), 1, "{actions}");
        assert_eq!(
            actions[0]["action"], "rebuild_required",
            "a clone is never reset"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_heals_what_it_can_verifies_and_leaks_no_password() {
    let running = start(every_fault_spec(9)).await;
    let inv = write_inventory(&running, "repair");
    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
    ])
    .await;
    // Clones and the host without a DC stay broken: exit 2 says so.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    for ep in running.endpoints() {
        let h = host_entry(&doc, &ep.info.address);
        match ep.info.fault {
            Some(FaultKind::Snapshot | FaultKind::DcReset | FaultKind::StaleDc) => {
                assert_eq!(h["repair"]["status"], "repaired", "{h:#}");
                assert_eq!(h["repair"]["verification"]["healthy"], true, "{h:#}");
                assert!(
                    running.lab().channel_status(ep.info.id).unwrap().is_ok(),
                    "the lab agrees {} is healthy",
                    ep.info.address
                );
            }
            Some(FaultKind::Clone) => {
                assert!(h["repair"].is_null(), "a clone is never touched: {h:#}");
                assert_eq!(h["plan"]["actions"][0]["action"], "rebuild_required");
            }
            _ => assert!(
                h["repair"].is_null() || h["repair"]["status"] == "nothing_to_do",
                "{h:#}"
            ),
        }
    }
    assert_eq!(
        doc["remaining"]["broken"], 6,
        "two name twins, the disabled and the deleted account (no --allow-rejoin) and the hosts without a DC remain"
    );

    // No password anywhere: not in the output, not in the logs (RUST_LOG=debug), not in any
    // command line the hosts received (including inside -EncodedCommand scripts).
    let mut secrets = vec![running
        .lab()
        .repair_credentials()
        .password
        .expose_secret()
        .to_string()];
    for ep in running.endpoints() {
        secrets.push(ep.info.local_admin.password.expose_secret().to_string());
        secrets.push(ep.info.builtin_admin.password.expose_secret().to_string());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = running.command_log();
    assert!(!log.is_empty());
    let mut decoded = Vec::new();
    for line in &log {
        let mut words = line.split(' ');
        let cmd = words.next().unwrap_or("");
        let args: Vec<String> = words.map(str::to_string).collect();
        if let Some(Ok(script)) = winrm::powershell::script_from_command_line(cmd, &args) {
            decoded.push(script);
        }
    }
    assert!(
        decoded
            .iter()
            .any(|s| s.contains("Reset-ComputerMachinePassword")),
        "the repair scripts were sent"
    );
    for secret in &secrets {
        assert!(
            !stdout.contains(secret.as_str()),
            "a password appears in the report"
        );
        assert!(
            !stderr.contains(secret.as_str()),
            "a password appears in the logs"
        );
        for line in log.iter().chain(decoded.iter()) {
            assert!(
                !line.contains(secret.as_str()),
                "a password appears in a remote command line: {line}"
            );
        }
    }

    // A second repair finds nothing more to do and changes nothing.
    let before = running.lab().state_digest();
    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert!(
        doc["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["repair"].is_null() || h["repair"]["status"] == "nothing_to_do"),
        "nothing left to repair: {doc:#}"
    );
    assert_eq!(
        running.lab().state_digest(),
        before,
        "a second repair changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fleet_exits_0_and_a_slow_host_past_its_deadline_is_reported() {
    let running = start(LabSpec::healthy(5, 2)).await;
    let inv = write_inventory(&running, "healthy");
    let out = trustsweep(&["check", "-i", inv.to_str().unwrap()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("5 hosts: 5 healthy"), "{text}");

    let mut spec = LabSpec::healthy(5, 4).with_fault(FaultKind::Slow, 1);
    spec.slow_latency = Duration::from_secs(3);
    let running = start(spec).await;
    let inv = write_inventory(&running, "slow");
    let out = trustsweep(&[
        "check",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--host-deadline",
        "1",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let slow = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Slow))
        .unwrap();
    let h = host_entry(&doc, &slow.info.address);
    assert_eq!(h["observation"]["access"]["state"], "timeout", "{h:#}");
    assert_eq!(
        doc["summary"]["healthy"], 4,
        "the other hosts are unaffected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inventory_is_a_usage_error_naming_the_file() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("e2e-bad-{}.yml", std::process::id()));
    std::fs::write(&path, "all:\n  hosts:\n    - ws1\n").unwrap();
    let out = trustsweep(&["check", "-i", path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path.to_str().unwrap()) && err.contains("must be a mapping"),
        "{err}"
    );
    let out = trustsweep(&["repair", "--lab", "3"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "a healthy 3-host lab: nothing to repair; {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_output_and_passes_the_exit_code_through() {
    let running = start(LabSpec::healthy(2, 8)).await;
    let ep = running.endpoints()[0].clone();
    let host = format!("{}:{}", ep.addr.ip(), ep.addr.port());
    let pw = ep.info.local_admin.password.expose_secret().to_string();
    let run = |args: Vec<String>| {
        let pw = pw.clone();
        async move { common::run_trustsweep(&args, &[("TRUSTSWEEP_PASSWORD", &pw)]).await }
    };
    let base = |rest: &[&str]| {
        let mut v: Vec<String> = [
            "run",
            "--host",
            host.as_str(),
            "-u",
            ep.info.local_admin.user.as_str(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let out = run(base(&["--", "nltest", "/sc_verify:lab.test"])).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Trust Verification Status = 0 0x0 NERR_Success"));
    let out = run(base(&["--", "frobnicate"])).await;
    assert_eq!(out.status.code(), Some(1), "cmd's exit code comes through");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'frobnicate' is not recognized"));
    let out = run(base(&["--powershell", "--", "Get-Frobnicator"])).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not recognized as the name of a cmdlet") && !err.contains("#< CLIXML"),
        "CLIXML is decoded: {err}"
    );
    // No password: a usage error, not a hang on a prompt.
    let out = common::run_trustsweep(base(&["--", "hostname"]), &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRUSTSWEEP_PASSWORD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_serve_writes_an_inventory_that_check_can_sweep() {
    let inv = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("served-{}.yml", std::process::id()));
    // Returns once every listener is bound.
    let (mut child, _) = common::serve_lab(&[], &inv).await;
    let mode = std::fs::metadata(&inv).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o077,
            0,
            "the inventory holds lab passwords: owner-only"
        );
    }
    let out = trustsweep(&["check", "-i", inv.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["summary"]["broken"], 1);
    assert_eq!(doc["summary"]["healthy"], 3);
    common::ctrl_c(&child);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "lab serve stops cleanly on Ctrl-C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_computer_account_is_healed_only_by_a_rejoin_when_allowed() {
    let mut spec = LabSpec::healthy(3, 21);
    spec.reboot_duration = Duration::from_millis(400);
    spec.replication_delay = Duration::ZERO;
    let running = start(spec).await;
    let victim = running.endpoints()[1].clone();
    // Someone deleted the computer object on the DC (it replicates at once here).
    assert!(running.lab().delete_account(&victim.info.computer_name, 0));
    let inv = write_inventory(&running, "rejoin");

    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "without --allow-rejoin the host stays broken: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let h = host_entry(&doc, &victim.info.address);
    assert_eq!(
        h["diagnosis"]["kind"], "account_disabled_or_missing",
        "{h:#}"
    );
    assert_ne!(h["repair"]["status"], "repaired", "{h:#}");

    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
        "--allow-rejoin",
        "--reboot-timeout",
        "30",
    ])
    .await;
    // Without DC access nothing can check that Add-Computer may reuse the object
    // (KB5020276) before Remove-Computer disables it: no rejoin, the host is left as it was
    // (still a domain member) and the plan says what would allow one (issue 11).
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let h = host_entry(&doc, &victim.info.address);
    assert!(
        h["repair"].is_null() || h["repair"]["status"] == "nothing_to_do",
        "{h:#}"
    );
    let needs = h["plan"]["needs"].to_string();
    assert!(needs.contains("--ldap"), "{h:#}");
    assert_ne!(
        running.lab().channel_status(victim.info.id),
        Some(lab::model::ChannelStatus::NotJoined),
        "still a domain member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_sweep_resumes_from_its_journal_with_every_host_once() {
    use tokio::io::AsyncBufReadExt;
    let mut spec = LabSpec::healthy(12, 31).with_fault(FaultKind::Snapshot, 2);
    // Slow enough that Ctrl-C lands mid-sweep with one host at a time.
    spec.latency = Duration::from_millis(40);
    let running = start(spec).await;
    let inv = write_inventory(&running, "resume");
    let journal = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "repair",
            "-i",
            inv.to_str().unwrap(),
            "--yes",
            "--concurrency",
            "1",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Interrupt after the third host line (bounded: the sweep prints at most 12).
    let mut seen = 0;
    for _ in 0..12 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if line.starts_with('[') {
            seen += 1;
        }
        if seen == 3 {
            break;
        }
    }
    common::ctrl_c(&child);
    while let Ok(Some(_)) = lines.next_line().await {}
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted sweep exits 130");
    let first: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let probed_first = first.iter().filter(|e| e["event"] == "observed").count();
    assert!(
        (3..12).contains(&probed_first),
        "stopped mid-way: {probed_first} hosts probed"
    );

    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--yes",
        "--format",
        "json",
        "--resume",
        journal.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let mut names: Vec<String> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = running
        .endpoints()
        .iter()
        .map(|e| e.info.address.clone())
        .collect();
    expected.sort();
    assert_eq!(names, expected, "every host reported exactly once");
    assert_eq!(
        doc["remaining"]["healthy"], 12,
        "both snapshot hosts repaired across the two runs"
    );
    let all: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut observed: Vec<&str> = all
        .iter()
        .filter(|e| e["event"] == "observed")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    observed.sort();
    let before = observed.len();
    observed.dedup();
    assert_eq!(before, observed.len(), "no host was probed twice");
    assert_eq!(
        observed.len(),
        12,
        "every host probed once across both runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_chooses_which_drift_fails_a_dry_run() {
    let running = start(LabSpec::healthy(4, 41).with_fault(FaultKind::Snapshot, 1)).await;
    let inv = write_inventory(&running, "failon");
    let inv = inv.to_str().unwrap();
    assert_eq!(
        trustsweep(&["plan", "-i", inv]).await.status.code(),
        Some(2)
    );
    assert_eq!(
        trustsweep(&["plan", "-i", inv, "--fail-on", "broken"])
            .await
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        trustsweep(&["plan", "-i", inv, "--fail-on", "unreachable"])
            .await
            .status
            .code(),
        Some(0),
        "only broken here"
    );
    assert_eq!(
        trustsweep(&["plan", "-i", inv, "--fail-on", "any"])
            .await
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_history_and_sharded_runs_merge_back() {
    let running = start(every_fault_spec(13)).await;
    let inv = write_inventory(&running, "reports");
    let inv = inv.to_str().unwrap();
    let tmp =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = tmp.join("all");
    let hist = tmp.join("history.sqlite");
    let out = trustsweep(&[
        "plan",
        "-i",
        inv,
        "--report",
        dir.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "trustsweep.json",
        "trustsweep.jsonl",
        "trustsweep-junit.xml",
        "trustsweep.csv",
        "trustsweep.html",
        "trustsweep.md",
    ] {
        let p = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        assert!(p.iter().any(|n| n == f), "{f} missing in {p:?}");
    }
    let out = trustsweep(&["history", hist.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let whole = json(&trustsweep(&["check", "-i", inv, "--format", "json"]).await);
    let (a, b) = (tmp.join("a.json"), tmp.join("b.json"));
    for (k, path) in [("1/2", &a), ("2/2", &b)] {
        let out = trustsweep(&[
            "check",
            "-i",
            inv,
            "--shard",
            k,
            "--output",
            &format!("json={}", path.display()),
        ])
        .await;
        assert!(
            matches!(out.status.code(), Some(0 | 2 | 3)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = trustsweep(&["merge", a.to_str().unwrap(), b.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let merged = json(&out);
    assert_eq!(
        merged["summary"], whole["summary"],
        "two shards merge back into the whole sweep"
    );
    assert_eq!(
        merged["hosts"].as_array().unwrap().len(),
        whole["hosts"].as_array().unwrap().len()
    );
    // Each shard's report says which it is; a merge that leaves one out is refused.
    let shard_b = json_file(&b);
    assert_eq!(shard_b["shard"], serde_json::json!({"k": 2, "n": 2}));
    let out = trustsweep(&["merge", a.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shard 2/2 of the sweep has no report"),
        "{stderr}"
    );
    // `--shard auto` under GitLab's `parallel: 2` (1-based) sweeps what `--shard 2/2` did.
    let c = tmp.join("c.json");
    let out = common::run_trustsweep(
        [
            "check",
            "-i",
            inv,
            "--shard",
            "auto",
            "--output",
            &format!("json={}", c.display()),
        ],
        &[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "2")],
    )
    .await;
    assert!(
        matches!(out.status.code(), Some(0 | 2 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = |doc: &Value| -> Vec<String> {
        doc["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["host"].as_str().unwrap().to_string())
            .collect()
    };
    let shard_c = json_file(&c);
    assert_eq!(hosts(&shard_c), hosts(&shard_b));
    assert_eq!(shard_c["shard"], shard_b["shard"]);
}

fn json_file(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_three_runs_over_a_changing_lab() {
    let running = start(LabSpec::healthy(6, 51).with_fault(FaultKind::Clone, 1)).await;
    let inv = write_inventory(&running, "history");
    let inv = inv.to_str().unwrap();
    let hist = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("history-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&hist);
    let hist = hist.to_str().unwrap();
    let healthy = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault.is_none())
        .unwrap()
        .clone();

    // Run 1: only the clone pair is broken.
    assert_eq!(
        trustsweep(&["check", "-i", inv, "--history", hist])
            .await
            .status
            .code(),
        Some(2)
    );
    // Someone resets a healthy host's account on the DC: run 2 sees it newly broken.
    assert!(running
        .lab()
        .dc_reset_account(&healthy.info.computer_name, 0));
    assert_eq!(
        trustsweep(&["check", "-i", inv, "--history", hist])
            .await
            .status
            .code(),
        Some(2)
    );
    let view: Value = json(&trustsweep(&["history", hist, "--format", "json"]).await);
    let text = view.to_string();
    assert!(
        text.contains(&healthy.info.address),
        "the newly broken host is named: {view:#}"
    );
    // Run 3 repairs it: repaired since the last run; the clones stay chronic.
    assert_eq!(
        trustsweep(&["repair", "-i", inv, "--yes", "--history", hist])
            .await
            .status
            .code(),
        Some(2)
    );
    let out = trustsweep(&["history", hist]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}");
    let view: Value = json(&trustsweep(&["history", hist, "--format", "json"]).await);
    let names = |key: &str| -> Vec<String> {
        view[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["host"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        names("repaired").contains(&healthy.info.address),
        "{view:#}"
    );
    let clones: Vec<String> = running
        .endpoints()
        .iter()
        .filter(|e| e.info.fault == Some(FaultKind::Clone))
        .map(|e| e.info.address.clone())
        .collect();
    for c in &clones {
        assert!(
            names("chronic").contains(c),
            "{c} broken three runs in a row: {view:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_under_two_inventory_names_is_not_a_name_twin() {
    let running = start(LabSpec::healthy(3, 61)).await;
    let ep = running.endpoints()[0].clone();
    // The same machine listed again under its short name (an alias), same address.
    let alias = format!(
        "        {}:\n          ansible_host: '{}'\n          ansible_port: {}\n          ansible_user: '{}'\n          ansible_password: '{}'\n",
        ep.info.computer_name.to_lowercase(),
        ep.addr.ip(),
        ep.addr.port(),
        ep.info.local_admin.user,
        ep.info.local_admin.password.expose_secret()
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-alias-{}.yml", std::process::id()));
    std::fs::write(&path, running.inventory_yaml() + &alias).unwrap();
    let out = trustsweep(&["check", "-i", path.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let doc = json(&out);
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 4);
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["diagnosis"]["kind"], "healthy", "{h:#}");
    }
}

/// DOMAIN.md "WinRM details": the repair credential is piped to PowerShell
/// (`WINRS_CONSOLEMODE_STDIN=FALSE`) and decoded as UTF-8 because the credential script sets
/// `[Console]::InputEncoding` first; a console, or the OEM code page, would lose or garble a
/// non-ASCII password and every reset would fail with a bad credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_account_with_a_non_ascii_password_repairs_a_snapshot_host() {
    let running = start(LabSpec::healthy(4, 23).with_fault(FaultKind::Snapshot, 2)).await;
    assert!(running
        .lab()
        .set_domain_password("tsrepair", "Pässwörd-Ünïcødé€-9".to_string().into()));
    let inv = write_inventory(&running, "non-ascii");
    let out = trustsweep(&[
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
    ])
    .await;
    let doc = json(&out);
    let mut repaired = 0;
    for ep in running.endpoints() {
        let h = host_entry(&doc, &ep.info.address);
        if ep.info.fault == Some(FaultKind::Snapshot) {
            assert_eq!(h["repair"]["status"], "repaired", "{h:#}");
            assert_eq!(h["repair"]["verification"]["healthy"], true, "{h:#}");
            assert!(running.lab().channel_status(ep.info.id).unwrap().is_ok());
            repaired += 1;
        }
    }
    assert_eq!(repaired, 2);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
