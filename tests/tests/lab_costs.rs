//! The lab's latency profiles and silent hosts on the wire (issue 15, "A lab that costs
//! what Windows costs"): offline hosts as black holes, hung hosts that accept and never
//! answer, one shared listener for large labs, and the time a WAN host's command costs at
//! the least (sleeps never end early, so lower bounds are deterministic).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use lab::faults::FaultKind;
use lab::latency::{Profile, Work};
use lab::model::{Lab, LabSpec, StdinMode};
use lab::wire::{Endpoint as LabEndpoint, OfflineMode, RunningLab, WireOptions};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

/// Long enough for any loopback connect or answer the lab gives at all.
const SILENCE: Duration = Duration::from_millis(300);

async fn start(spec: LabSpec, opts: WireOptions) -> RunningLab {
    RunningLab::start(Lab::build(spec).unwrap(), opts)
        .await
        .unwrap()
}

fn with(running: &RunningLab, fault: Option<FaultKind>) -> LabEndpoint {
    running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == fault)
        .unwrap()
        .clone()
}

fn session(ep: &LabEndpoint) -> Session {
    let mut cfg = SessionConfig::new(
        Endpoint::new(ep.addr.ip().to_string(), Some(ep.addr.port()), Scheme::Http),
        AuthMethod::Ntlm,
        ep.info.local_admin.user.clone(),
        winrm::secret::secret(ep.info.local_admin.password.expose_secret()),
    );
    cfg.operation_timeout = Duration::from_secs(5);
    cfg.read_timeout = Duration::from_secs(15);
    Session::new(cfg).unwrap()
}

#[tokio::test]
async fn offline_hosts_are_black_holes_when_asked() {
    let spec = LabSpec::healthy(3, 5).with_fault(FaultKind::Offline, 1);
    let opts = WireOptions {
        offline: OfflineMode::BlackHole,
        ..WireOptions::default()
    };
    let running = start(spec, opts).await;
    let off = with(&running, Some(FaultKind::Offline));
    // The SYN is dropped: connect neither succeeds nor is refused.
    for _ in 0..2 {
        let attempt = tokio::time::timeout(SILENCE, TcpStream::connect(off.addr)).await;
        assert!(
            attempt.is_err(),
            "connect to a black hole ended: {attempt:?}"
        );
    }
    // The other hosts answer as ever.
    let mut s = session(&with(&running, None));
    assert_eq!(s.run("hostname", &[], None).await.unwrap().exit_code, 0);
}

#[tokio::test]
async fn hung_hosts_accept_and_never_answer() {
    let spec = LabSpec::healthy(3, 5).with_fault(FaultKind::Hung, 1);
    let running = start(spec, WireOptions::default()).await;
    let hung = with(&running, Some(FaultKind::Hung));
    let mut tcp = TcpStream::connect(hung.addr).await.unwrap();
    tcp.write_all(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let answer = tokio::time::timeout(SILENCE, tcp.read(&mut buf)).await;
    assert!(answer.is_err(), "a hung host answered: {answer:?}");
    // A client's read timeout is what ends it.
    let mut cfg = SessionConfig::new(
        Endpoint::new(
            hung.addr.ip().to_string(),
            Some(hung.addr.port()),
            Scheme::Http,
        ),
        AuthMethod::Ntlm,
        hung.info.local_admin.user.clone(),
        winrm::secret::secret(hung.info.local_admin.password.expose_secret()),
    );
    cfg.operation_timeout = Duration::from_millis(100);
    cfg.read_timeout = Duration::from_millis(200);
    let mut s = Session::new(cfg).unwrap();
    assert!(s.run("hostname", &[], None).await.is_err());
}

#[tokio::test]
async fn one_shared_listener_serves_every_host_by_its_address() {
    let opts = WireOptions {
        shared_listener: Some(true),
        ..WireOptions::default()
    };
    let running = start(LabSpec::healthy(3, 5), opts).await;
    let eps = running.endpoints();
    assert!(eps.iter().all(|e| e.addr.port() == eps[0].addr.port()));
    for ep in eps {
        let out = session(ep).run("hostname", &[], None).await.unwrap();
        assert_eq!(out.stdout_text().trim(), ep.info.computer_name);
    }
}

#[test]
fn commands_count_their_netlogon_work() {
    let lab = Lab::build(LabSpec::healthy(2, 3)).unwrap();
    let id = lab.hosts()[0].id;
    let user = lab.host(id).unwrap().builtin_admin.user.clone();
    let lab::model::Logon::Verify { identity: who, .. } = lab.logon(id, "", &user) else {
        panic!("local admin refused");
    };
    let run = |line: &str| lab.execute_with(id, &who, line, b"", StdinMode::Pipe).work;
    assert_eq!(
        run("nltest /sc_verify:lab.test"),
        Work {
            nltests: 1,
            dc_round_trips: 2,
            ..Work::default()
        }
    );
    assert_eq!(run("nltest /sc_query:lab.test").dc_round_trips, 0);
    let line = format!(
        "powershell.exe -NoProfile -EncodedCommand {}",
        lab::exec::encode_command("Test-ComputerSecureChannel")
    );
    assert_eq!(
        run(&line),
        Work {
            secure_channel_tests: 1,
            dc_round_trips: 2,
            ..Work::default()
        }
    );
    assert_eq!(run("hostname"), Work::default());
}

#[tokio::test]
async fn a_wan_host_costs_at_least_its_round_trips_and_powershell_start() {
    let mut spec = LabSpec::healthy(1, 9);
    spec.costs = Profile::Wan.costs();
    spec.latency = Profile::Wan.rtt();
    let running = start(spec.clone(), WireOptions::default()).await;
    let ep = &running.endpoints()[0];
    let costs = spec.costs;
    let started = Instant::now();
    let out = session(ep)
        .run_powershell("Test-ComputerSecureChannel", None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.stdout_text().trim(), "True", "{}", out.stderr_text());
    // One TCP connect, at least three requests (NEGOTIATE, AUTHENTICATE with Create,
    // Command with Receive), shell creation, the first PowerShell start of host 0 for
    // seed 9, and the cmdlet with its two DC round trips.
    let per_request = costs.rtt + costs.server_time;
    let floor = costs.rtt
        + per_request * 3
        + costs.create_shell
        + costs.powershell.unwrap().sample(9, 0, 0)
        + costs.secure_channel_test
        + costs.dc_rtt * 2;
    assert!(took >= floor, "took {took:?}, floor {floor:?}");
}
