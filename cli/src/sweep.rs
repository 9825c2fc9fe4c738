//! Phase 1 of every sweep: observe each host (one WinRM session, one PowerShell start for
//! the probe; without DC access, per-DC tests for broken hosts with several DCs; a
//! separate NTLM logon with the domain account), then the pure fleet analysis of the
//! playbooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use playbooks::{
    dc_test_targets, parse_dc_test, parse_probe, scripts, Access, DomainLogon, HostObservation,
    Remote, RemoteErrorKind,
};
use serde::Serialize;
use tokio::sync::mpsc;
use winrm::session::{Session, SessionConfig};

use crate::dc::DcEvidence;
use crate::engine::{self, Abnormal, Event, Limits};
use crate::remote::WinrmRemote;
use crate::targets::{Credential, Target};

/// Per-DC channel tests per broken host, at most.
pub const MAX_DC_TESTS: usize = 4;

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
    target.name.split('.').next().unwrap_or(&target.name).to_ascii_uppercase()
}

/// Observes one host. Never fails: every problem becomes part of the observation. With
/// DC-side `evidence` (`--ldap`), the host's account as each DC holds it replaces the
/// per-DC `Test-ComputerSecureChannel -Server` runs on the member.
pub async fn observe(target: Target, evidence: Option<Arc<DcEvidence>>) -> Observed {
    let t0 = Instant::now();
    let mut obs = HostObservation {
        host: target.name.clone(),
        access: Access::Unreachable {
            message: String::new(),
        },
        domain_logon: DomainLogon::NotTried,
        probe: None,
        dc_tests: Vec::new(),
        dc_accounts: Vec::new(),
        error: None,
    };
    if let Some(ev) = &evidence {
        obs.dc_accounts = ev.for_computer(&guessed_computer_name(&target));
    }
    let address = target.endpoint.addr();
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
            obs.error = Some(e.to_string());
            obs.access = Access::Unreachable {
                message: e.to_string(),
            };
        }
        Ok(mut remote) => {
            match remote.run_powershell(scripts::PROBE, None).await {
                Ok(out) => {
                    reachable = true;
                    obs.access = Access::Connected {
                        user: cred.user.clone(),
                        local: playbooks::looks_local(&cred.user, &target.name),
                    };
                    match parse_probe(&out) {
                        Ok(probe) if evidence.is_some() => {
                            if let Some(ev) = &evidence {
                                if !probe.computer_name.is_empty() {
                                    obs.dc_accounts = ev.for_computer(&probe.computer_name);
                                }
                            }
                            obs.probe = Some(probe);
                        }
                        Ok(probe) => {
                            // At most a few DCs (the PDC is listed last): a large multi-site domain must not
                            // push the host past its deadline.
                            for dc in dc_test_targets(&probe).into_iter().rev().take(MAX_DC_TESTS).collect::<Vec<_>>().into_iter().rev() {
                                let test = match scripts::test_dc(&dc) {
                                    Ok(script) => {
                                        match remote.run_powershell(&script, None).await {
                                            Ok(o) => parse_dc_test(&dc, &o),
                                            Err(e) => playbooks::DcTest {
                                                dc: dc.clone(),
                                                ok: None,
                                                error: Some(e.to_string()),
                                            },
                                        }
                                    }
                                    Err(e) => playbooks::DcTest {
                                        dc: dc.clone(),
                                        ok: None,
                                        error: Some(e.to_string()),
                                    },
                                };
                                obs.dc_tests.push(test);
                            }
                            obs.probe = Some(probe);
                        }
                        Err(e) => obs.error = Some(format!("probe output not understood: {e}")),
                    }
                }
                Err(e) => {
                    reachable = matches!(
                        e.kind,
                        RemoteErrorKind::Unauthorized | RemoteErrorKind::AccessDenied
                    );
                    obs.access = match e.kind {
                        RemoteErrorKind::Unauthorized => Access::Unauthorized {
                            user: cred.user.clone(),
                        },
                        RemoteErrorKind::AccessDenied => Access::AccessDenied {
                            user: cred.user.clone(),
                        },
                        RemoteErrorKind::Timeout => Access::Timeout,
                        RemoteErrorKind::Unreachable | RemoteErrorKind::Protocol => {
                            Access::Unreachable {
                                message: e.message.clone(),
                            }
                        }
                    };
                    obs.error = Some(e.to_string());
                }
            }
            remote.close().await;
        }
    }
    // The domain account tells what the local probe cannot: a member with a broken
    // trust refuses domain logons (401) while its local Administrator still gets in.
    // Never with Basic (it would hand the domain password to every host; WinRM Basic takes
    // local accounts only anyway) or with certificate checks off.
    let safe_to_try = target.auth == winrm::transport::AuthMethod::Ntlm && !target.tls.dangerous_skip_verify;
    if reachable && safe_to_try {
        if let Some(repair) = &target.repair {
            if let Ok(mut s) = Session::new(session_config(&target, repair)) {
                obs.domain_logon = match s.connect().await {
                    Ok(()) => DomainLogon::Accepted,
                    Err(e) if e.is_unauthorized() => DomainLogon::Refused,
                    Err(_) => DomainLogon::NotTried,
                };
            }
        }
    }
    Observed {
        address,
        observation: obs,
        elapsed_ms: ms(t0),
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
                dc_tests: Vec::new(),
                dc_accounts: Vec::new(),
                error: Some(match abnormal {
                    Abnormal::DeadlineExceeded(d) => {
                        format!("no result within the host deadline of {}s", d.as_secs())
                    }
                    Abnormal::Panicked(m) => format!("internal error while probing: {m}"),
                    Abnormal::NotStarted => "not checked: the sweep was interrupted (resume with --resume JOURNAL)".into(),
                }),
            },
            elapsed_ms: 0,
        },
        cancel,
    )
    .await
}
