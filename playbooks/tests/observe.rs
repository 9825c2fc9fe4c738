//! `observe_host` over the scripted fake remote: how each answer to the probe becomes the
//! host's access, probe and error; that the domain-logon test runs alongside the probe
//! (never after it) and how its answer is read once the probe's is in; and that the
//! probe's remote is closed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use playbooks::*;

const HOST: &str = "ws01.contoso.com";
const ADDRESS: &str = "10.0.0.1:5985";
const LOCAL_ADMIN: &str = "WS01\\administrator";

/// What happened, in order, across the probe's remote and the logon.
type Log = Arc<Mutex<Vec<String>>>;

/// The scripted fake, closable, writing its calls and its closing to the shared log.
struct Closing {
    fake: FakeRemote,
    log: Log,
}

impl Remote for Closing {
    fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send {
        self.log.lock().unwrap().push("probe".into());
        self.fake.run_powershell(script, stdin)
    }

    fn run_cmd(
        &mut self,
        command_line: &str,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send {
        self.log.lock().unwrap().push(format!("cmd {command_line}"));
        self.fake.run_cmd(command_line)
    }

    fn reconnect_after_reboot(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send {
        self.fake.reconnect_after_reboot(timeout)
    }
}

impl CloseRemote for Closing {
    async fn close(self) {
        self.fake.assert_done();
        self.log.lock().unwrap().push("close".into());
    }
}

/// A logon that answers `reply` and writes itself to the log.
struct FakeLogon {
    reply: Result<(), RemoteError>,
    log: Log,
}

impl LogonAttempt for FakeLogon {
    async fn log_on(self) -> Result<(), RemoteError> {
        self.log.lock().unwrap().push("logon".into());
        self.reply
    }
}

/// The probe's remote answering `reply` to the probe script.
fn remote(log: &Log, reply: Result<CommandOutput, RemoteError>) -> Closing {
    Closing {
        fake: FakeRemote::new(vec![Step::Ps("ts.name=", reply)]),
        log: log.clone(),
    }
}

fn logon(log: &Log, reply: Result<(), RemoteError>) -> LogonTest<FakeLogon> {
    LogonTest::Ready(FakeLogon {
        reply,
        log: log.clone(),
    })
}

fn err(kind: RemoteErrorKind, message: &str) -> RemoteError {
    RemoteError::new(kind, message)
}

fn logged(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_probe_that_runs_is_a_connected_host_with_its_probe() {
    let log = Log::default();
    let probe = ProbeOut::healthy("WS01", 1001);
    let obs = observe_host(
        HOST,
        ADDRESS,
        LOCAL_ADMIN,
        Ok(remote(&log, Ok(probe.output()))),
        logon(&log, Ok(())),
    )
    .await;
    assert_eq!(obs.host, HOST);
    assert_eq!(obs.address, ADDRESS);
    assert_eq!(
        obs.access,
        Access::Connected {
            user: LOCAL_ADMIN.into(),
            local: true,
        }
    );
    assert_eq!(obs.probe, Some(probe.probe()));
    assert_eq!(obs.error, None);
    assert_eq!(obs.domain_logon, DomainLogon::Accepted);
    assert!(obs.dc_accounts.is_empty(), "the DC side is the caller's");
    assert_eq!(logged(&log), ["probe", "close", "logon"]);
}

/// A remote whose probe answers only once the logon test has started: observed one after
/// the other, the host would never finish.
struct WaitsForLogon {
    fake: FakeRemote,
    logon_started: Arc<tokio::sync::Notify>,
}

impl Remote for WaitsForLogon {
    async fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, RemoteError> {
        self.logon_started.notified().await;
        self.fake.run_powershell(script, stdin).await
    }

    fn run_cmd(
        &mut self,
        command_line: &str,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send {
        self.fake.run_cmd(command_line)
    }
}

impl CloseRemote for WaitsForLogon {
    async fn close(self) {}
}

struct NotifyingLogon(Arc<tokio::sync::Notify>);

impl LogonAttempt for NotifyingLogon {
    async fn log_on(self) -> Result<(), RemoteError> {
        self.0.notify_one();
        Ok(())
    }
}

#[tokio::test]
async fn the_logon_test_runs_alongside_the_probe() {
    let started = Arc::new(tokio::sync::Notify::new());
    let remote = WaitsForLogon {
        fake: FakeRemote::new(vec![Step::Ps(
            "ts.name=",
            Ok(ProbeOut::healthy("WS01", 1001).output()),
        )]),
        logon_started: started.clone(),
    };
    let obs = tokio::time::timeout(
        Duration::from_secs(10),
        observe_host(
            HOST,
            ADDRESS,
            LOCAL_ADMIN,
            Ok(remote),
            LogonTest::Ready(NotifyingLogon(started)),
        ),
    )
    .await
    .expect("the probe waited for a logon test that waited for the probe");
    assert!(obs.probe.is_some());
    assert_eq!(obs.domain_logon, DomainLogon::Accepted);
}

#[tokio::test]
async fn a_domain_account_is_not_local() {
    let log = Log::default();
    let obs = observe_host(
        HOST,
        ADDRESS,
        "CONTOSO\\sweeper",
        Ok(remote(&log, Ok(ProbeOut::healthy("WS01", 1001).output()))),
        LogonTest::<FakeLogon>::Skipped,
    )
    .await;
    assert_eq!(
        obs.access,
        Access::Connected {
            user: "CONTOSO\\sweeper".into(),
            local: false,
        }
    );
    assert_eq!(obs.domain_logon, DomainLogon::Skipped);
    assert_eq!(logged(&log), ["probe", "close"]);
}

#[tokio::test]
async fn a_refused_probe_still_shows_a_host_that_answers() {
    for (kind, access) in [
        (
            RemoteErrorKind::Unauthorized,
            Access::Unauthorized {
                user: LOCAL_ADMIN.into(),
            },
        ),
        (
            RemoteErrorKind::AccessDenied,
            Access::AccessDenied {
                user: LOCAL_ADMIN.into(),
            },
        ),
    ] {
        let log = Log::default();
        let e = err(kind, "refused");
        let obs = observe_host(
            HOST,
            ADDRESS,
            LOCAL_ADMIN,
            Ok(remote(&log, Err(e.clone()))),
            logon(&log, Err(err(RemoteErrorKind::Unauthorized, "401"))),
        )
        .await;
        assert_eq!(obs.access, access, "{kind}");
        assert_eq!(obs.probe, None);
        assert_eq!(obs.error, Some(e.to_string()));
        assert_eq!(
            obs.domain_logon,
            DomainLogon::Refused,
            "{kind}: the host answered, so the logon test ran and its 401 is a refusal"
        );
        assert_eq!(logged(&log), ["probe", "close", "logon"]);
    }
}

#[tokio::test]
async fn a_host_that_does_not_answer_gets_no_logon_verdict() {
    for (kind, access) in [
        (
            RemoteErrorKind::Unreachable,
            Access::Unreachable {
                message: "connection refused".into(),
            },
        ),
        (
            RemoteErrorKind::Protocol,
            Access::Unreachable {
                message: "connection refused".into(),
            },
        ),
        (RemoteErrorKind::Timeout, Access::Timeout),
    ] {
        let log = Log::default();
        let e = err(kind, "connection refused");
        let obs = observe_host(
            HOST,
            ADDRESS,
            LOCAL_ADMIN,
            Ok(remote(&log, Err(e.clone()))),
            logon(&log, Ok(())),
        )
        .await;
        assert_eq!(obs.access, access, "{kind}");
        assert_eq!(obs.error, Some(e.to_string()));
        assert_eq!(
            obs.domain_logon,
            DomainLogon::NotTried,
            "{kind}: the logon ran alongside, but means nothing from a host that did not answer"
        );
        assert_eq!(logged(&log), ["probe", "close", "logon"], "{kind}");
    }
}

#[tokio::test]
async fn a_probe_that_cannot_be_read_leaves_the_host_connected() {
    let log = Log::default();
    let obs = observe_host(
        HOST,
        ADDRESS,
        LOCAL_ADMIN,
        Ok(remote(&log, Ok(CommandOutput::ok("not a probe\n")))),
        logon(&log, Ok(())),
    )
    .await;
    assert!(matches!(obs.access, Access::Connected { .. }), "{obs:?}");
    assert_eq!(obs.probe, None);
    let error = obs.error.unwrap();
    assert!(
        error.starts_with("probe output not understood: "),
        "{error}"
    );
    assert_eq!(obs.domain_logon, DomainLogon::Accepted);
}

#[tokio::test]
async fn a_remote_that_could_not_be_set_up_is_unreachable_in_the_callers_words() {
    let log = Log::default();
    let message = "cannot read CA file ca.pem (to trust a private CA pass --ca-file)";
    let obs = observe_host::<Closing, _>(
        HOST,
        ADDRESS,
        LOCAL_ADMIN,
        Err(RemoteSetupError::new(message)),
        logon(&log, Ok(())),
    )
    .await;
    assert_eq!(
        obs.access,
        Access::Unreachable {
            message: message.into()
        }
    );
    assert_eq!(obs.error.as_deref(), Some(message));
    assert_eq!(obs.domain_logon, DomainLogon::NotTried);
    assert!(logged(&log).is_empty(), "nothing was sent");

    let skipped = observe_host::<Closing, FakeLogon>(
        HOST,
        ADDRESS,
        LOCAL_ADMIN,
        Err(RemoteSetupError::new(message)),
        LogonTest::Skipped,
    )
    .await;
    assert_eq!(skipped.domain_logon, DomainLogon::Skipped);
}

#[tokio::test]
async fn an_unsafe_logon_test_is_never_tried() {
    let log = Log::default();
    let obs = observe_host::<_, FakeLogon>(
        HOST,
        ADDRESS,
        LOCAL_ADMIN,
        Ok(remote(&log, Ok(ProbeOut::healthy("WS01", 1001).output()))),
        LogonTest::Unsafe,
    )
    .await;
    assert_eq!(obs.domain_logon, DomainLogon::NotTried);
    assert_eq!(logged(&log), ["probe", "close"]);
}

#[tokio::test]
async fn a_logon_that_fails_otherwise_than_401_is_not_a_refusal() {
    for kind in [
        RemoteErrorKind::Unreachable,
        RemoteErrorKind::AccessDenied,
        RemoteErrorKind::Timeout,
        RemoteErrorKind::Protocol,
    ] {
        let log = Log::default();
        let outcome = logon(&log, Err(err(kind, "x"))).run(true).await;
        assert_eq!(outcome, DomainLogon::NotTried, "{kind}");
    }
    let log = Log::default();
    assert_eq!(
        logon(&log, Ok(())).run(false).await,
        DomainLogon::NotTried,
        "a host that did not answer"
    );
    assert!(logged(&log).is_empty());
    // Made before the probe's answer is known, read after it.
    for (outcome, answered, read) in [
        (LogonOutcome::Tried(Ok(())), true, DomainLogon::Accepted),
        (LogonOutcome::Tried(Ok(())), false, DomainLogon::NotTried),
        (
            LogonOutcome::Tried(Err(err(RemoteErrorKind::Unauthorized, "401"))),
            true,
            DomainLogon::Refused,
        ),
        (
            LogonOutcome::Tried(Err(err(RemoteErrorKind::Unauthorized, "401"))),
            false,
            DomainLogon::NotTried,
        ),
        (LogonOutcome::Skipped, true, DomainLogon::Skipped),
        (LogonOutcome::Unsafe, true, DomainLogon::NotTried),
    ] {
        assert_eq!(
            outcome.clone().read(answered),
            read,
            "{outcome:?} {answered}"
        );
    }
}
