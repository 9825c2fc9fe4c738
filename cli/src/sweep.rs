//! Phase 1 of every sweep: observe each host with `playbooks::observe_host` over the WinRM
//! sessions built here (one session and one PowerShell start for the probe; a separate NTLM
//! logon with the least-privileged logon-test account, never the repair account), then the
//! pure fleet analysis of the playbooks.

use std::sync::Arc;
use std::time::Instant;

use playbooks::{Access, DomainLogon, HostObservation, LogonTest, RemoteSetupError};
use serde::Serialize;
use tokio::sync::mpsc;
use winrm::session::SessionConfig;

use crate::dc::DcEvidence;
use crate::engine::{self, Abnormal, Event, Limits};
use crate::remote::{WinrmLogon, WinrmRemote};
use crate::targets::{Credential, Target};

/// What phase 1 learned of one host.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Observed {
    /// Address:port.
    pub address: String,
    /// The observation the playbooks diagnose.
    pub observation: HostObservation,
    /// Wall time of the observation, in milliseconds.
    pub elapsed_ms: u64,
}

/// The session settings for `target` with `cred`.
pub fn session_config(target: &Target, cred: &Credential) -> SessionConfig {
    let mut cfg = SessionConfig::new(
        target.endpoint.clone(),
        target.auth,
        cred.user.clone(),
        cred.password.clone(),
    );
    cfg.tls = target.tls.clone();
    cfg.connect_timeout = target.connect_timeout;
    cfg.operation_timeout = target.operation_timeout;
    cfg.read_timeout = target.read_timeout;
    cfg
}

/// The computer name a host's account most likely has before its probe says: the first
/// label of its inventory name, upper case.
pub fn guessed_computer_name(target: &Target) -> String {
    target
        .name
        .split('.')
        .next()
        .unwrap_or(&target.name)
        .to_ascii_uppercase()
}

/// Observes one host through `playbooks::observe_host` over WinRM sessions built here.
/// Never fails: every problem becomes part of the observation. With DC-side `evidence`
/// (`--ldap`), the host's account as each DC holds it is attached, looked up by the name
/// its probe gave (else the name guessed from the inventory).
pub async fn observe(target: Target, evidence: Option<Arc<DcEvidence>>) -> Observed {
    let t0 = Instant::now();
    let address = target.endpoint.addr();
    // Lockout safety: a refused logon-test credential counts once the probe says whether
    // the host could have asked a DC (crate::credential_gate).
    let settle = crate::credential_gate::LogonSettle::default();
    let mut obs = match &target.connect {
        None => without_credential(&target),
        Some(cred) => {
            let remote = WinrmRemote::new(session_config(&target, cred))
                .map_err(|e| RemoteSetupError::new(crate::remote::error_text(&e)));
            playbooks::observe_host(
                &target.name,
                &address,
                &cred.user,
                remote,
                logon_test(&target, &settle),
            )
            .await
        }
    };
    settle.settle(&mut obs);
    if let Some(ev) = &evidence {
        let probed = obs.probe.as_ref().map(|p| p.computer_name.as_str());
        obs.dc_accounts = match probed.filter(|n| !n.is_empty()) {
            Some(name) => ev.for_computer(name),
            None => ev.for_computer(&guessed_computer_name(&target)),
        };
    }
    Observed {
        address,
        observation: obs,
        elapsed_ms: ms(t0),
    }
}

/// The observation of a host we have no connecting account for (nothing is sent).
fn without_credential(target: &Target) -> HostObservation {
    let mut obs = HostObservation::new(
        target.name.clone(),
        target.endpoint.addr(),
        Access::Unauthorized {
            user: String::new(),
        },
    );
    obs.error = Some(target.connect_error.clone().unwrap_or_else(|| {
        format!(
            "no connecting credential for {}: set ansible_user/ansible_password in the inventory, pass --user, or use --laps",
            target.name
        )
    }));
    obs
}

/// The domain-logon test of `target`: an NTLM logon with the least-privileged logon-test
/// account (`--logon-test-user`), never the repair account (DOMAIN.md "Reaching a broken
/// machine"). Never over Basic (it would hand the password to the host) or with
/// certificate checks off.
fn logon_test(
    target: &Target,
    settle: &crate::credential_gate::LogonSettle,
) -> LogonTest<WinrmLogon> {
    let Some(test) = &target.logon_test else {
        return LogonTest::Skipped;
    };
    let safe =
        target.auth == winrm::transport::AuthMethod::Ntlm && !target.tls.dangerous_skip_verify;
    if !safe {
        return LogonTest::Unsafe;
    }
    LogonTest::Ready(WinrmLogon::new(session_config(target, test)).settled_by(settle.clone()))
}

fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Observes every target with bounded concurrency; every host gets an observation.
pub async fn observe_all(
    targets: &[Target],
    limits: Limits,
    events: &mpsc::UnboundedSender<Event<Observed>>,
    cancel: Option<&engine::tokio_util_cancel::Token>,
    evidence: Option<Arc<DcEvidence>>,
) -> (Vec<Observed>, usize) {
    engine::fan_out(
        "probe",
        targets,
        limits,
        events,
        move |_, t| observe(t, evidence.clone()),
        |t, abnormal| Observed {
            address: t.endpoint.addr(),
            observation: HostObservation {
                host: t.name.clone(),
                address: t.endpoint.addr(),
                access: match abnormal {
                    Abnormal::DeadlineExceeded(_) => Access::Timeout,
                    Abnormal::NotStarted => Access::Unreachable {
                        message: "not checked: the sweep was interrupted".into(),
                    },
                    Abnormal::Panicked(_) => Access::Unreachable {
                        message: "internal error".into(),
                    },
                },
                domain_logon: DomainLogon::NotTried,
                probe: None,
                dc_accounts: Vec::new(),
                error: Some(match abnormal {
                    Abnormal::DeadlineExceeded(d) => {
                        format!("no result within the host deadline of {}s", d.as_secs())
                    }
                    Abnormal::Panicked(m) => format!("internal error while probing: {m}"),
                    Abnormal::NotStarted => {
                        "not checked: the sweep was interrupted (resume with --resume JOURNAL)"
                            .into()
                    }
                }),
            },
            elapsed_ms: 0,
        },
        cancel,
    )
    .await
}
