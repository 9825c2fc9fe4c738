//! Phase 1 of a sweep for one host, over the [`Remote`] trait: run the probe
//! ([`probe_host`]), read a failed run as access (a 401, WinRM Access Denied, no answer, a
//! deadline), run the domain-logon test with the least-privileged logon-test account, and
//! record it all as one [`HostObservation`] for [`crate::diagnose_fleet`].
//!
//! The CLI builds the connections (WinRM sessions, with the connecting account and with
//! the logon-test account) and hands them in; what it adds itself is the DC-side copies of
//! the computer account (`--ldap`) and its own wording for a host it has no account for.

use std::future::Future;

use crate::diagnose::{looks_local, Access, DomainLogon, HostObservation};
use crate::probe::{probe_host, Probe, ProbeRunError};
use crate::remote::{Remote, RemoteError, RemoteErrorKind};

/// A [`Remote`] that is ended once the probe has run: its shell deleted and its connection
/// dropped before the logon test opens a connection of its own.
pub trait CloseRemote: Remote {
    /// Ends the remote (errors are of no interest: the probe's answer is already in).
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
            LogonTest::Skipped => DomainLogon::Skipped,
            LogonTest::Unsafe => DomainLogon::NotTried,
            LogonTest::Ready(_) if !answered => DomainLogon::NotTried,
            LogonTest::Ready(logon) => match logon.log_on().await {
                Ok(()) => DomainLogon::Accepted,
                Err(e) if e.kind == RemoteErrorKind::Unauthorized => DomainLogon::Refused,
                Err(_) => DomainLogon::NotTried,
            },
        }
    }
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

/// Observes one host: probes it through `remote` (connecting as `user`), closes the remote,
/// then runs the `logon` test. Never fails: every problem becomes part of the observation
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
    let answered = match remote {
        Err(e) => {
            obs.error = Some(e.message.clone());
            obs.access = Access::Unreachable { message: e.message };
            false
        }
        Ok(mut remote) => {
            let answered = record_probe(&mut obs, user, probe_host(&mut remote).await);
            remote.close().await;
            answered
        }
    };
    obs.domain_logon = logon.run(answered).await;
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
