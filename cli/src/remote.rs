//! The bridge between the playbooks' `Remote` trait and a WinRM session: the playbooks
//! never see HTTP, and this is the one place that maps WinRM errors onto their terms.

use std::time::{Duration, Instant};

use playbooks::{CloseRemote, CommandOutput, LogonAttempt, Remote, RemoteError, RemoteErrorKind};
use winrm::session::{Session, SessionConfig};

/// A [`Remote`] over a WinRM session (one connection, one shell, reused).
#[derive(Debug)]
pub struct WinrmRemote {
    session: Session,
    config: SessionConfig,
    laps: Option<LapsRefresh>,
}

/// Where to re-read the connecting account's LAPS password when the host comes back from
/// a restart refusing the one we have: Windows LAPS may rotate it around a rejoin (DOMAIN.md
/// "Repairing it": "a LAPS password rotated around them must be re-read").
#[derive(Debug, Clone)]
pub struct LapsRefresh {
    /// The DC and the account that may read LAPS (`--ldap`, `--ldap-user`).
    pub ad: ad::AdConfig,
    /// The computer (its object is found by `sAMAccountName`: after a rejoin it may be a
    /// new object in another container).
    pub computer: String,
}

impl WinrmRemote {
    /// A remote over a new session with `config` (nothing is sent yet).
    pub fn new(config: SessionConfig) -> Result<Self, winrm::Error> {
        Ok(WinrmRemote {
            session: Session::new(config.clone())?,
            config,
            laps: None,
        })
    }

    /// Re-read the LAPS password from `refresh` when the host refuses the connecting
    /// credential after a restart.
    pub fn with_laps_refresh(mut self, refresh: LapsRefresh) -> Self {
        self.laps = Some(refresh);
        self
    }

    /// After a restart refused the connecting credential: reads the LAPS password again
    /// and takes it when it differs from the one in use. `true` when there is a new one to
    /// try (once: a credential is never retried in a loop).
    async fn reread_laps(&mut self) -> bool {
        use secrecy::ExposeSecret as _;
        let Some(l) = &self.laps else {
            return false;
        };
        match ad::read_laps_by_name(&l.ad, &l.computer).await {
            Ok(Some(s)) if s.password.expose_secret() != self.config.password.expose_secret() => {
                tracing::info!(
                    host = %self.config.endpoint.addr(),
                    computer = %l.computer,
                    "the LAPS password changed around the restart; connecting with the new one"
                );
                self.config.user = s.account;
                self.config.password = s.password;
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(
                    host = %self.config.endpoint.addr(),
                    "LAPS re-read after the restart failed: {e}"
                );
                false
            }
        }
    }

    /// Closes the shell and the connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

impl CloseRemote for WinrmRemote {
    /// Signal and Delete run on their own task (bounded, awaited at the end of the phase
    /// by `winrm::session::finish_cleanup`): the host's result does not wait for them.
    fn close(self) -> impl std::future::Future<Output = ()> + Send {
        self.session.close_in_background();
        std::future::ready(())
    }
}

/// The domain-logon test's logon over WinRM: a new session with the logon-test account
/// that authenticates its connection and runs nothing.
#[derive(Debug)]
pub struct WinrmLogon {
    config: SessionConfig,
}

impl WinrmLogon {
    /// A logon with `config` (nothing is sent until [`LogonAttempt::log_on`]).
    pub fn new(config: SessionConfig) -> Self {
        WinrmLogon { config }
    }
}

impl LogonAttempt for WinrmLogon {
    async fn log_on(self) -> Result<(), RemoteError> {
        // A session that cannot even be set up is a test not made, never a refusal.
        let mut session = Session::new(self.config)
            .map_err(|e| RemoteError::new(RemoteErrorKind::Protocol, error_text(&e)))?;
        session.connect().await.map_err(|e| remote_error(&e))
    }
}

/// The library's message plus what to change on *our* command line: `winrm` says what
/// to check on the host and never names the CLI's flags.
pub fn error_text(e: &winrm::Error) -> String {
    let hint = match e {
        winrm::Error::Tls { .. } => Some(
            "to trust a private CA pass --ca-file or set ansible_winrm_ca_trust_path for the host",
        ),
        winrm::Error::InvalidConfig(m) if m.contains("Basic authentication over plain HTTP") => {
            Some("set ansible_winrm_scheme: https, or ansible_winrm_transport: ntlm")
        }
        winrm::Error::NotWinrm { .. } => {
            Some("check the host's ansible_port and ansible_winrm_scheme in the inventory")
        }
        _ => None,
    };
    match hint {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

/// Maps a WinRM error onto the playbooks' error kinds: a 401 during the logon is
/// `Unauthorized`; an Access Denied fault `AccessDenied`; timeouts `Timeout`; no answer
/// `Unreachable`; everything else — a 401 after logon (the session was lost), TLS
/// failures, a service that is not WinRM, faults — `Protocol`.
pub fn remote_error(e: &winrm::Error) -> RemoteError {
    let kind = if e.is_unauthorized() {
        RemoteErrorKind::Unauthorized
    } else if e.is_access_denied() {
        RemoteErrorKind::AccessDenied
    } else if matches!(
        e,
        winrm::Error::ReadTimeout { .. } | winrm::Error::ConnectTimeout { .. }
    ) {
        RemoteErrorKind::Timeout
    } else if e.is_unreachable() {
        RemoteErrorKind::Unreachable
    } else {
        RemoteErrorKind::Protocol
    };
    RemoteError::new(kind, error_text(e))
}

fn output(out: winrm::Output) -> CommandOutput {
    CommandOutput {
        stdout: out.stdout_text(),
        stderr: out.stderr_text(),
        exit_code: out.exit_code,
    }
}

impl Remote for WinrmRemote {
    async fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, RemoteError> {
        self.session
            .run_powershell(script, stdin)
            .await
            .map(output)
            .map_err(|e| remote_error(&e))
    }

    async fn run_cmd(&mut self, command_line: &str) -> Result<CommandOutput, RemoteError> {
        // WinRS joins command and arguments with spaces and runs them through cmd.exe.
        let (cmd, rest) = match command_line.split_once(' ') {
            Some((c, r)) => (c, vec![r.to_string()]),
            None => (command_line, Vec::new()),
        };
        self.session
            .run(cmd, &rest, None)
            .await
            .map(output)
            .map_err(|e| remote_error(&e))
    }

    fn supports_reconnect(&self) -> bool {
        true
    }

    /// Waits (bounded) until the host has gone down and WinRM answers again, then starts a
    /// fresh session with the same connecting credential.
    async fn reconnect_after_reboot(&mut self, timeout: Duration) -> Result<(), RemoteError> {
        let deadline = Instant::now() + timeout;
        let poll = Duration::from_millis(200).min(timeout);
        let mut seen_down = false;
        // A restart so quick that no poll saw the host down: after this long, accept a
        // host that answers (the repair re-probes and retries if it was too early).
        let assume_down_after = Instant::now() + timeout / 4;
        let mut laps_reread = false;
        loop {
            if Instant::now() >= deadline {
                return Err(RemoteError::new(
                    RemoteErrorKind::Timeout,
                    format!(
                        "{} did not come back within {timeout:?} after the restart",
                        self.config.endpoint.addr()
                    ),
                ));
            }
            let mut probe = Session::new(self.config.clone()).map_err(|e| remote_error(&e))?;
            match probe.connect().await {
                Ok(()) if seen_down || Instant::now() >= assume_down_after => {
                    self.session = probe;
                    return Ok(());
                }
                Ok(()) => {}
                Err(e) if e.is_unauthorized() || e.is_access_denied() => {
                    let back = seen_down || Instant::now() >= assume_down_after;
                    // Refused after the restart: LAPS may have rotated the password (once).
                    if back && e.is_unauthorized() && !laps_reread {
                        laps_reread = true;
                        if self.reread_laps().await {
                            continue;
                        }
                    }
                    // Up and answering, but refusing us: report it, do not spin.
                    if seen_down {
                        return Err(remote_error(&e));
                    }
                }
                Err(_) => seen_down = true,
            }
            tokio::time::sleep(poll).await;
        }
    }
}
