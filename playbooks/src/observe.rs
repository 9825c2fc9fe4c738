//! Phase 1 of a sweep for one host, over the [`Remote`] trait: run the probe
//! ([`probe_host`]) and, at the same time on a connection of its own, the domain-logon
//! test with the least-privileged logon-test account; read a failed run as access (a 401,
//! WinRM Access Denied, no answer, a deadline), read the logon test in the light of it (a
//! refusal means something only from a host that answered), and record it all as one
//! [`HostObservation`] for [`crate::diagnose_fleet`]. Running both at once keeps the
//! logon test off the host's critical path: it costs a connect and a handshake, fewer
//! round trips than the probe.
//!
//! The CLI builds the connections (WinRM sessions, with the connecting account and with
//! the logon-test account) and hands them in; what it adds itself is the DC-side copies of
//! the computer account (`--ldap`) and its own wording for a host it has no account for.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::diagnose::{looks_local, Access, DomainLogon, HostObservation};
use crate::probe::{probe_host, Probe, ProbeRunError};
use crate::remote::{Remote, RemoteError, RemoteErrorKind};

/// A [`Remote`] that is ended once the probe has run: its shell deleted and its connection
/// dropped.
pub trait CloseRemote: Remote {
    /// Ends the remote (errors are of no interest: the probe's answer is already in). An
    /// implementation may finish the clean-up on its own after returning, so that the
    /// host's result does not wait for it.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The one step of the domain-logon test: a new connection that authenticates with the
/// logon-test account and runs nothing.
pub trait LogonAttempt {
    /// Logs on. `Err` of kind [`RemoteErrorKind::Unauthorized`] is the host's refusal
    /// (HTTP 401); any other `Err` means the test could not be made.
    fn log_on(self) -> impl Future<Output = Result<(), RemoteError>> + Send;
}

/// The domain-logon test as the caller could set it up for one host.
///
/// The test logs on with the least-privileged logon-test account, never the repair
/// account, whose NTLM response reaching every host could be relayed by a compromised one
/// (DOMAIN.md "Reaching a broken machine"). A refusal is evidence, not a verdict:
/// deny-logon policies refuse healthy hosts too.
#[derive(Debug)]
pub enum LogonTest<L> {
    /// No logon-test account was given: [`DomainLogon::Skipped`].
    Skipped,
    /// An account was given, but a logon over this host's connection would not be safe:
    /// Basic authentication (it would hand the password to the host; WinRM Basic takes
    /// local accounts only anyway) or certificate checks off: [`DomainLogon::NotTried`].
    Unsafe,
    /// The logon to try, once the host has answered the probe.
    Ready(L),
}

impl<L: LogonAttempt> LogonTest<L> {
    /// Runs the test on a host that `answered` the probe (it ran, or the host refused the
    /// connecting account: either way something is listening); a host that did not answer
    /// is not tried.
    pub async fn run(self, answered: bool) -> DomainLogon {
        match self {
            LogonTest::Ready(_) if !answered => DomainLogon::NotTried,
            test => test.attempt().await.read(answered),
        }
    }

    /// Makes the logon (when one is ready) before anyone knows whether the host answers
    /// the probe: [`LogonOutcome::read`] says what it means once that is known.
    pub async fn attempt(self) -> LogonOutcome {
        match self {
            LogonTest::Skipped => LogonOutcome::Skipped,
            LogonTest::Unsafe => LogonOutcome::Unsafe,
            LogonTest::Ready(logon) => LogonOutcome::Tried(logon.log_on().await),
        }
    }
}

/// A domain-logon test made alongside the probe, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogonOutcome {
    /// No logon-test account was given.
    Skipped,
    /// Not safe over this host's connection: not made.
    Unsafe,
    /// Made: the host's answer.
    Tried(Result<(), RemoteError>),
}

impl LogonOutcome {
    /// What the test says of a host that `answered` the probe or did not: only a host
    /// that answered gives a meaningful answer (a host that did not is
    /// [`DomainLogon::NotTried`], whatever the logon met); a 401 is a refusal, any other
    /// failure a test not made.
    pub fn read(self, answered: bool) -> DomainLogon {
        match self {
            LogonOutcome::Skipped => DomainLogon::Skipped,
            LogonOutcome::Unsafe => DomainLogon::NotTried,
            LogonOutcome::Tried(_) if !answered => DomainLogon::NotTried,
            LogonOutcome::Tried(Ok(())) => DomainLogon::Accepted,
            LogonOutcome::Tried(Err(e)) if e.kind == RemoteErrorKind::Unauthorized => {
                DomainLogon::Refused
            }
            LogonOutcome::Tried(Err(_)) => DomainLogon::NotTried,
        }
    }
}

/// Runs `a` and `b` at once on the caller's task and returns both outputs (the playbooks
/// depend on no runtime).
///
/// Both come boxed, and each box is freed as soon as its future is done: a host's WinRM
/// conversations are state machines of kilobytes each, and taken by value they would sit
/// in the caller's future twice (the argument and its pinned copy) for the whole probe, on
/// every host in flight (BENCHMARKS.md, issue 15 round 3).
async fn both<A: Future, B: Future>(a: Pin<Box<A>>, b: Pin<Box<B>>) -> (A::Output, B::Output) {
    let mut a = Some(a);
    let mut b = Some(b);
    let mut out_a = None;
    let mut out_b = None;
    std::future::poll_fn(|cx| {
        if let Some(f) = a.as_mut() {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                out_a = Some(v);
                a = None;
            }
        }
        if let Some(f) = b.as_mut() {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                out_b = Some(v);
                b = None;
            }
        }
        match (out_a.take(), out_b.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                out_a = x;
                out_b = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// The caller could not set up a remote for the host, before anything was sent (an
/// unreadable CA file, Basic over plain HTTP). The host is recorded as unreachable with
/// the caller's message as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteSetupError {
    /// What is wrong, in the caller's words (with its hints).
    pub message: String,
}

impl RemoteSetupError {
    /// Builds the error.
    pub fn new(message: impl Into<String>) -> Self {
        RemoteSetupError {
            message: message.into(),
        }
    }
}

/// Observes one host: probes it through `remote` (connecting as `user`) and closes the
/// remote, while the `logon` test runs at the same time; the logon's answer is read once
/// the probe's is in ([`LogonOutcome::read`]). A remote that could not be set up gets no
/// logon test either. Never fails: every problem becomes part of the observation
/// of `host` (inventory name) at `address` (`host:port`). The DC-side copies of the account
/// (`dc_accounts`) are the caller's to add.
pub async fn observe_host<R, L>(
    host: &str,
    address: &str,
    user: &str,
    remote: Result<R, RemoteSetupError>,
    logon: LogonTest<L>,
) -> HostObservation
where
    R: CloseRemote,
    L: LogonAttempt,
{
    let mut obs = HostObservation::new(
        host,
        address,
        Access::Unreachable {
            message: String::new(),
        },
    );
    obs.domain_logon = match remote {
        Err(e) => {
            obs.error = Some(e.message.clone());
            obs.access = Access::Unreachable { message: e.message };
            // Boxed, like the futures below: a rare path should not size every host's
            // future.
            Box::pin(logon.run(false)).await
        }
        Ok(mut remote) => {
            let probe = async move {
                let result = probe_host(&mut remote).await;
                remote.close().await;
                result
            };
            let (result, outcome) = both(Box::pin(probe), Box::pin(logon.attempt())).await;
            let answered = record_probe(&mut obs, user, result);
            outcome.read(answered)
        }
    };
    obs
}

/// Records the probe run `result` of the account `user` on `obs` (access, probe, error);
/// returns whether the host answered. A run that failed on the connection is read by its
/// kind ([`Access::from_remote_error`]): a 401 or Access Denied still shows a host that
/// answers. A probe that ran but could not be read leaves the host connected, without a
/// probe.
pub fn record_probe(
    obs: &mut HostObservation,
    user: &str,
    result: Result<Probe, ProbeRunError>,
) -> bool {
    let connected = |host: &str| Access::Connected {
        user: user.to_string(),
        local: looks_local(user, host),
    };
    match result {
        Ok(probe) => {
            obs.access = connected(&obs.host);
            obs.probe = Some(probe);
            true
        }
        Err(ProbeRunError::Remote(e)) => {
            obs.access = Access::from_remote_error(&e, user);
            obs.error = Some(e.to_string());
            matches!(
                e.kind,
                RemoteErrorKind::Unauthorized | RemoteErrorKind::AccessDenied
            )
        }
        Err(e @ ProbeRunError::Output(_)) => {
            obs.access = connected(&obs.host);
            // "probe output not understood: <why>": the error's own text.
            obs.error = Some(e.to_string());
            true
        }
    }
}
