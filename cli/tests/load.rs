//! A sweep under load with hosts that fail the slow ways (issue 16, "Load"): 1% hung
//! (accept, never answer), 1% black-holed (the SYN is dropped: the lab's `offline` hosts
//! under a latency profile), 2% slow, the rest healthy, on the LAN profile's costs
//! (PowerShell start-up drawn from the seed: median 450 ms, p99 2.5 s). Every host must
//! end with a result of the right kind within its deadline, and the recap's counts must
//! add up to the hosts swept.
//!
//! The suite runs 2,000 hosts so it stays well inside CI's time on two cores;
//! `scripts/bench load` runs the same mix at 10,000 and records time and memory
//! (RELIABILITY.md, "Load"). Nothing here measures speed: the only clock is each host's
//! own `probe_ms`, checked against the deadline it was given.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lab::faults::FaultKind;
use lab::latency::Profile;
use lab::model::{Lab, LabSpec};
use lab::wire::{OfflineMode, RunningLab, WireOptions};

/// Hosts in the sweep.
const HOSTS: usize = 2_000;
/// Seconds a host may take in a phase (`--host-deadline`).
const DEADLINE_S: u64 = 20;
/// Seconds a TCP connect may take (`--connect-timeout`): what a black hole costs.
const CONNECT_S: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_of_a_large_sweep_with_hung_black_holed_and_slow_hosts_has_its_result() {
    let mut spec = LabSpec::healthy(HOSTS, 16);
    spec = spec
        .with_fault(FaultKind::Hung, HOSTS / 100)
        .with_fault(FaultKind::Offline, HOSTS / 100)
        .with_fault(FaultKind::Slow, HOSTS / 50);
    spec.costs = Profile::Lan.costs();
    spec.latency = Profile::Lan.rtt();
    // A slow host pays 800 ms per round trip: about five seconds for its probe.
    spec.slow_latency = Duration::from_millis(800);
    let running = RunningLab::start(
        Lab::build(spec).unwrap(),
        WireOptions {
            offline: OfflineMode::BlackHole,
            ..WireOptions::default()
        },
    )
    .await
    .unwrap();
    let kind_of: BTreeMap<String, Option<FaultKind>> = running
        .endpoints()
        .iter()
        .map(|e| (e.info.dns_name.to_ascii_lowercase(), e.info.fault))
        .collect();
    assert_eq!(kind_of.len(), HOSTS);

    let inv = common::write_inventory("load", &running.inventory_yaml());
    let deadline = DEADLINE_S.to_string();
    let connect = CONNECT_S.to_string();
    let out = common::run_trustsweep(
        [
            "check",
            "-i",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--host-deadline",
            &deadline,
            "--connect-timeout",
            &connect,
            "--operation-timeout",
            "5",
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unreachable hosts make the run fail (exit 3), never a crash or a usage error.
    assert_eq!(out.status.code(), Some(3), "stderr:\n{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();

    // Every host once, with a state its fault explains.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for h in hosts {
        let name = h["host"].as_str().unwrap().to_ascii_lowercase();
        let state = h["state"].as_str().unwrap().to_string();
        let fault = kind_of
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not a lab host"));
        let want = match fault {
            Some(FaultKind::Hung | FaultKind::Offline) => "unreachable",
            Some(FaultKind::Slow) | None => "healthy",
            Some(other) => panic!("{name}: fault {other:?} was not placed"),
        };
        assert_eq!(state, want, "{name} ({fault:?}): {h}");
        // Within its deadline (the report's clock for the host, plus scheduling slack).
        let ms = h["probe_ms"].as_u64().unwrap();
        assert!(
            ms <= DEADLINE_S * 1000 + 2_000,
            "{name} ({fault:?}) took {ms} ms against a {DEADLINE_S} s deadline"
        );
        *by_state.entry(state.clone()).or_default() += 1;
        assert!(seen.insert(name.clone(), state).is_none(), "{name} twice");
    }
    assert_eq!(seen.len(), HOSTS, "every host has a result");
    assert_eq!(by_state.get("unreachable"), Some(&(HOSTS / 50)));
    assert_eq!(by_state.get("healthy"), Some(&(HOSTS - HOSTS / 50)));

    // The summary's counts add up.
    let summary = &doc["summary"];
    let total: u64 = [
        "healthy",
        "broken",
        "unreachable",
        "access_problem",
        "unknown",
    ]
    .iter()
    .map(|k| summary[*k].as_u64().unwrap())
    .sum();
    assert_eq!(total, HOSTS as u64, "summary: {summary}");
    for (state, n) in &by_state {
        assert_eq!(summary[state.as_str()].as_u64(), Some(*n as u64), "{state}");
    }
}
