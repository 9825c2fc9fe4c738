//! Round trips per host, counted from the lab's request log (issue 15): what `check` costs
//! a healthy host and a broken one on the wire, not how long it took.
//!
//! A host's cost is the chain of steps the sweep waits for: on the probe's connection,
//! the TCP connect and every HTTP request up to the Receive that brings the probe's
//! output. A healthy host must cost at most 6 (connect, NEGOTIATE, AUTHENTICATE with the
//! sealed Create, Command, Receive); the Signal and Delete that follow are off the
//! critical path (the host's result does not wait for them), and the domain-logon test
//! runs on its own connection at the same time, never after the probe.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions, WireRecord};

/// One host's connections, each as its steps in arrival order.
fn connections(running: &RunningLab, listener: std::net::SocketAddr) -> Vec<Vec<WireRecord>> {
    let mut by_conn: BTreeMap<u64, Vec<WireRecord>> = BTreeMap::new();
    for r in running.request_log_of(listener) {
        by_conn.entry(r.connection()).or_default().push(r);
    }
    let mut conns: Vec<Vec<WireRecord>> = by_conn.into_values().collect();
    conns.sort_by_key(|c| c.first().map(WireRecord::at));
    conns
}

fn labels(conn: &[WireRecord]) -> Vec<String> {
    conn.iter().map(WireRecord::label).collect()
}

/// The probe's critical path on `conn`: its steps up to and including the last Receive.
fn critical_path(conn: &[WireRecord]) -> usize {
    conn.iter()
        .rposition(|r| r.label().ends_with("Receive"))
        .map_or(conn.len(), |i| i + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_and_broken_hosts_cost_the_fewest_round_trips() {
    // Two healthy hosts and one of each fault kind the default mix places.
    let mut spec = LabSpec::healthy(20, 7);
    for kind in FaultKind::DEFAULT_MIX {
        if kind != FaultKind::Slow {
            spec = spec.with_fault(kind, 1);
        }
    }
    let running = RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap();
    let inv = common::write_inventory("round-trips", &running.inventory_yaml());
    running.record_requests();
    let out = common::run_trustsweep(
        [
            "check",
            "-i",
            inv.to_str().unwrap(),
            "--format",
            "json",
            "--host-deadline",
            "60",
            // One host at a time: the first use of a domain credential is a check on one
            // host while the others wait (issue 16's lockout safety, cli
            // credential_gate), so in a sweep's first wave a host's logon test may start
            // only once that check is over. The path of each host is what is counted.
            "--concurrency",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe_path = [
        "connect",
        "negotiate",
        "authenticate+Create",
        "Command",
        "Receive",
    ];
    let logon_path = ["connect", "negotiate", "authenticate"];
    for ep in running.endpoints() {
        let conns = connections(&running, ep.addr);
        let shown: Vec<Vec<String>> = conns.iter().map(|c| labels(c)).collect();
        let what = format!("{} ({:?}): {shown:?}", ep.info.address, ep.info.fault);
        match ep.info.fault {
            // Nothing listens: the connects fail, nothing reaches the log.
            Some(FaultKind::Offline) => assert!(conns.is_empty(), "{what}"),
            // The local administrator is refused (UAC filtering) at AUTHENTICATE: its
            // connection and the logon test's, at the same time.
            Some(FaultKind::FilteredAdmin) => {
                assert_eq!(shown, [logon_path, logon_path], "{what}")
            }
            // Every other host, healthy or broken, costs the probe and the logon test
            // and nothing else: the diagnosis reads the one probe.
            _ => {
                assert_eq!(conns.len(), 2, "{what}");
                let probe = conns
                    .iter()
                    .find(|c| labels(c).iter().any(|l| l.ends_with("Create")))
                    .unwrap_or_else(|| panic!("no probe connection: {what}"));
                let logon = conns
                    .iter()
                    .find(|c| !labels(c).iter().any(|l| l.ends_with("Create")))
                    .unwrap_or_else(|| panic!("no logon connection: {what}"));
                // At most 6 round trips until the probe's output is in.
                assert!(critical_path(probe) <= 6, "{what}");
                assert_eq!(labels(&probe[..critical_path(probe)]), probe_path, "{what}");
                // Signal and Delete follow, off the critical path, and nothing else.
                assert_eq!(
                    labels(&probe[critical_path(probe)..]),
                    ["Signal", "Delete"],
                    "{what}"
                );
                assert_eq!(labels(logon), logon_path, "{what}");
                // The logon test runs alongside the probe, never after it: its connection
                // was accepted before the probe's output was asked for.
                let receive = probe
                    .iter()
                    .find(|r| r.label() == "Receive")
                    .map(WireRecord::at)
                    .unwrap();
                assert!(logon[0].at() < receive, "{what}");
            }
        }
    }
    assert_eq!(running.open_shells(), 0, "every shell was deleted");
}

/// A command's result does not wait for its Signal: the session owes it until its next
/// request or its close, and the close sends Signal then Delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_in_before_signal_and_delete() {
    let running = RunningLab::start(
        Lab::build(LabSpec::healthy(1, 1)).unwrap(),
        WireOptions::default(),
    )
    .await
    .unwrap();
    let ep = &running.endpoints()[0];
    let admin = &ep.info.local_admin;
    let cfg = winrm::SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            winrm::transport::Scheme::Http,
        ),
        winrm::transport::AuthMethod::Ntlm,
        admin.user.clone(),
        admin.password.clone(),
    );
    running.record_requests();
    let mut session = winrm::Session::new(cfg).unwrap();
    let out = session.run("hostname", &[], None).await.unwrap();
    assert_eq!(out.exit_code, 0);
    let steps = |running: &RunningLab| -> Vec<String> {
        running
            .request_log_of(ep.addr)
            .iter()
            .map(WireRecord::label)
            .collect()
    };
    assert_eq!(
        steps(&running),
        [
            "connect",
            "negotiate",
            "authenticate+Create",
            "Command",
            "Receive"
        ]
    );
    // A second command first pays the Signal owed to the first one.
    session.run("hostname", &[], None).await.unwrap();
    assert_eq!(steps(&running)[5..], ["Signal", "Command", "Receive"]);
    session.close().await.unwrap();
    assert_eq!(steps(&running)[8..], ["Signal", "Delete"]);
    assert_eq!(running.open_shells(), 0);
}
