//! Phase 1 of every sweep: observe each host (one WinRM session and one PowerShell start
//! for `playbooks::probe_host`; a separate NTLM logon with the least-privileged logon-test
//! account, never the repair account), then the pure fleet analysis of the playbooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use playbooks::{probe_host, Access, DomainLogon, HostObservation, ProbeRunError};
use serde::Serialize;
use tokio::sync::mpsc;
use winrm::session::{Session, SessionConfig};

use crate::dc::DcEvidence;
use crate::engine::{self, Abnormal, Event, Limits};
use crate::remote::WinrmRemote;
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
    cfg.read_timeout = target.operation_timeout + Duration::from_secs(10);
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

/// Observes one host. Never fails: every problem becomes part of the observation. With
/// DC-side `evidence` (`--ldap`), the host's account as each DC holds it is attached.
pub async fn observe(target: Target, evidence: Option<Arc<DcEvidence>>) -> Observed {
    let t0 = Instant::now();
    let address = target.endpoint.addr();
    let mut obs = HostObservation::new(
        target.name.clone(),
        address.clone(),
        Access::Unreachable {
            message: String::new(),
        },
    );
    if let Some(ev) = &evidence {
        obs.dc_accounts = ev.for_computer(&guessed_computer_name(&target));
    }
    let Some(cred) = target.connect.clone() else {
        obs.access = Access::Unauthorized {
            user: String::new(),
        };
        obs.error = Some(target.connect_error.clone().unwrap_or_else(|| {
            format!(
                "no connecting credential for {}: set ansible_user/ansible_password in the inventory, pass --user, or use --laps",
                target.name
            )
        }));
        return Observed {
            address,
            observation: obs,
            elapsed_ms: ms(t0),
        };
    };
    let mut reachable = false;
    match WinrmRemote::new(session_config(&target, &cred)) {
        Err(e) => {
            let text = crate::remote::error_text(&e);
            obs.error = Some(text.clone());
            obs.access = Access::Unreachable { message: text };
        }
        Ok(mut remote) => {
            match probe_host(&mut remote).await {
                Ok(probe) => {
                    reachable = true;
                    obs.access = Access::Connected {
                        user: cred.user.clone(),
                        local: playbooks::looks_local(&cred.user, &target.name),
                    };
                    if let Some(ev) = &evidence {
                        if !probe.computer_name.is_empty() {
                            obs.dc_accounts = ev.for_computer(&probe.computer_name);
                        }
                    }
                    obs.probe = Some(probe);
                }
                Err(ProbeRunError::Remote(e)) => {
                    reachable = matches!(
                        e.kind,
                        playbooks::RemoteErrorKind::Unauthorized
                            | playbooks::RemoteErrorKind::AccessDenied
                    );
                    obs.access = Access::from_remote_error(&e, &cred.user);
                    obs.error = Some(e.to_string());
                }
                Err(e) => {
                    // The probe ran but its output could not be read.
                    reachable = true;
                    obs.access = Access::Connected {
                        user: cred.user.clone(),
                        local: playbooks::looks_local(&cred.user, &target.name),
                    };
                    obs.error = Some(format!("probe output not understood: {e}"));
                }
            }
            remote.close().await;
        }
    }
    obs.domain_logon = logon_test(&target, reachable).await;
    Observed {
        address,
        observation: obs,
        elapsed_ms: ms(t0),
    }
}

/// The domain-logon test: an NTLM logon with the least-privileged logon-test account
/// (`--logon-test-user`), never the repair account, whose NTLM response reaching every
/// host could be relayed by a compromised one (DOMAIN.md "Reaching a broken machine").
/// Never over Basic (it would hand the password to the host; WinRM Basic takes local
/// accounts only anyway) or with certificate checks off. A refusal is evidence, not a
/// verdict: deny-logon policies refuse healthy hosts too.
async fn logon_test(target: &Target, reachable: bool) -> DomainLogon {
    let Some(test) = &target.logon_test else {
        return DomainLogon::Skipped;
    };
    let safe =
        target.auth == winrm::transport::AuthMethod::Ntlm && !target.tls.dangerous_skip_verify;
    if !reachable || !safe {
        return DomainLogon::NotTried;
    }
    let Ok(mut s) = Session::new(session_config(target, test)) else {
        return DomainLogon::NotTried;
    };
    match s.connect().await {
        Ok(()) => DomainLogon::Accepted,
        Err(e) if e.is_unauthorized() => DomainLogon::Refused,
        Err(_) => DomainLogon::NotTried,
    }
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
        targets.to_vec(),
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
