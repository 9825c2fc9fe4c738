//! The bridge between the playbooks' `Remote` trait and a WinRM session: the playbooks
//! never see HTTP, and this is the one place that maps WinRM errors onto their terms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use playbooks::{CloseRemote, CommandOutput, LogonAttempt, Remote, RemoteError, RemoteErrorKind};
use winrm::session::{Session, SessionConfig};

use crate::credential_gate::{self, Gate, Gates, LogonSettle, Pass, Turn};

/// A [`Remote`] over a WinRM session (one connection, one shell, reused).
///
/// Lockout safety (issue 16, [`credential_gate`]): a domain connecting credential passes
/// its gate before its first use on this host, and so does the repair credential of every
/// credential script (read from the script's stdin); a credential this host refused (401)
/// is never sent to it again by this remote, reconnects included.
#[derive(Debug)]
pub struct WinrmRemote {
    session: Session,
    config: SessionConfig,
    laps: Option<LapsRefresh>,
    /// The connecting credential's gate (`None`: a local account).
    gate: Option<Arc<Gate>>,
    /// The gate let this remote use the connecting credential for good.
    passed: bool,
    /// This host refused the connecting credential (401): it is not sent again.
    refused: bool,
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
            gate: Gates::global().gate(&config.user, &config.password),
            config,
            laps: None,
            passed: false,
            refused: false,
        })
    }

    /// The host as results name it.
    fn host(&self) -> String {
        self.config.endpoint.host.clone()
    }

    /// This host refused the connecting credential: it is not sent again.
    fn already_refused(&self) -> RemoteError {
        RemoteError::new(
            RemoteErrorKind::Unauthorized,
            credential_gate::NotUsed::AlreadyRefused {
                user: self.config.user.clone(),
                host: self.host(),
            }
            .message(),
        )
    }

    /// Before an operation: the connecting credential may be sent (`Ok`, with this host's
    /// turn when it is still unverified), or not (`Err`, the host's result).
    async fn enter(&mut self) -> Result<Option<Turn>, RemoteError> {
        if self.refused {
            return Err(self.already_refused());
        }
        let Some(gate) = self.gate.clone().filter(|_| !self.passed) else {
            return Ok(None);
        };
        match gate.enter(&self.host()).await {
            Ok(Pass::Open) => {
                self.passed = true;
                Ok(None)
            }
            Ok(Pass::Turn(t)) => Ok(Some(t)),
            Err(e) => Err(RemoteError::new(RemoteErrorKind::Unauthorized, e.message())),
        }
    }

    /// After an operation: what it says of the connecting credential, to its turn (if
    /// this host had it) and to this remote.
    fn after<T>(&mut self, turn: Option<Turn>, res: &Result<T, winrm::Error>) {
        let refused = matches!(res, Err(e) if e.is_unauthorized());
        if refused {
            self.refused = true;
        }
        let Some(turn) = turn else { return };
        match res {
            // Access Denied comes after the logon: the password was right.
            Ok(_) => {
                self.passed = true;
                turn.accepted();
            }
            Err(e) if e.is_access_denied() => {
                self.passed = true;
                turn.accepted();
            }
            Err(_) if refused => turn.refused(),
            Err(_) => turn.inconclusive(),
        }
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
                // A new credential: not refused yet, and gated on its own.
                self.refused = false;
                self.passed = false;
                self.gate = Gates::global().gate(&self.config.user, &self.config.password);
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
    /// by `winrm::session::finish_cleanup`): the host's result does not wait for them, but
    /// the host's slot in the engine does ([`crate::engine::current_slot`]), so that
    /// connections still closing count against the concurrency.
    fn close(self) -> impl std::future::Future<Output = ()> + Send {
        self.session
            .close_in_background_holding(crate::engine::current_slot());
        std::future::ready(())
    }
}

/// The domain-logon test's logon over WinRM: a new session with the logon-test account
/// that authenticates its connection and runs nothing. Its credential passes its gate
/// ([`credential_gate`]) first; a refusal while it is unverified is held for the host's
/// probe to explain ([`LogonSettle`]) when the sweep gives one.
#[derive(Debug)]
pub struct WinrmLogon {
    config: SessionConfig,
    gate: Option<Arc<Gate>>,
    settle: Option<LogonSettle>,
}

impl WinrmLogon {
    /// A logon with `config` (nothing is sent until [`LogonAttempt::log_on`]).
    pub fn new(config: SessionConfig) -> Self {
        WinrmLogon {
            gate: Gates::global().gate(&config.user, &config.password),
            config,
            settle: None,
        }
    }

    /// A refusal while the credential is unverified waits for `settle` (the host's probe)
    /// to say whether it counts.
    pub fn settled_by(mut self, settle: LogonSettle) -> Self {
        self.settle = Some(settle);
        self
    }
}

impl LogonAttempt for WinrmLogon {
    async fn log_on(self) -> Result<(), RemoteError> {
        let host = self.config.endpoint.host.clone();
        let turn = match &self.gate {
            None => None,
            Some(gate) => match gate.enter(&host).await {
                Ok(Pass::Open) => None,
                Ok(Pass::Turn(t)) => Some(t),
                // Not made: the observation says why (LogonSettle).
                Err(e) => {
                    if let Some(s) = &self.settle {
                        s.not_used(e.message());
                    }
                    return Err(RemoteError::new(RemoteErrorKind::Protocol, e.message()));
                }
            },
        };
        // A session that cannot even be set up is a test not made, never a refusal.
        let mut session = match Session::new(self.config) {
            Ok(s) => s,
            Err(e) => {
                if let Some(t) = turn {
                    t.inconclusive();
                }
                return Err(RemoteError::new(RemoteErrorKind::Protocol, error_text(&e)));
            }
        };
        let res = session.connect().await;
        if let Some(t) = turn {
            match (&res, &self.settle) {
                (Ok(()), _) => t.accepted(),
                (Err(e), _) if e.is_access_denied() => t.accepted(),
                (Err(e), Some(s)) if e.is_unauthorized() => s.hold(t),
                (Err(e), None) if e.is_unauthorized() => t.refused(),
                (Err(_), _) => t.inconclusive(),
            }
        }
        res.map_err(|e| remote_error(&e))
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
    } else if e.is_timeout() {
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
        let turn = self.enter().await?;
        // A credential script carries the repair credential on stdin: its gate too
        // (nothing is sent when it is closed: the script's own error line says why).
        let script_turn = match stdin.and_then(credential_gate::stdin_credential) {
            None => None,
            Some((user, password)) => match Gates::global().gate(&user, &password) {
                None => None,
                Some(gate) => match gate.enter(&self.host()).await {
                    Ok(Pass::Open) => None,
                    Ok(Pass::Turn(t)) => Some(t),
                    Err(e) => {
                        // Nothing was sent: the connecting credential's turn says nothing.
                        if let Some(t) = turn {
                            t.inconclusive();
                        }
                        return Ok(CommandOutput {
                            stdout: format!("ts.reset_error={}\r\n", e.message()),
                            stderr: String::new(),
                            exit_code: 1,
                        });
                    }
                },
            },
        };
        let res = self.session.run_powershell(script, stdin).await;
        self.after(turn, &res);
        let res = res.map(output).map_err(|e| remote_error(&e));
        if let Some(t) = script_turn {
            match &res {
                Ok(out) => match credential_gate::script_verdict(&out.stdout, &out.stderr) {
                    Some(true) => t.accepted(),
                    Some(false) => t.refused(),
                    None => t.inconclusive(),
                },
                Err(_) => t.inconclusive(),
            }
        }
        res
    }

    async fn run_cmd(&mut self, command_line: &str) -> Result<CommandOutput, RemoteError> {
        // WinRS joins command and arguments with spaces and runs them through cmd.exe.
        let (cmd, rest) = match command_line.split_once(' ') {
            Some((c, r)) => (c, vec![r.to_string()]),
            None => (command_line, Vec::new()),
        };
        let turn = self.enter().await?;
        let res = self.session.run(cmd, &rest, None).await;
        self.after(turn, &res);
        res.map(output).map_err(|e| remote_error(&e))
    }

    fn supports_reconnect(&self) -> bool {
        true
    }

    /// Waits (bounded) until the host has gone down and WinRM answers again, then starts a
    /// fresh session with the same connecting credential. A credential the host refuses
    /// (401) is not sent to it again (issue 16: no credential is retried in a loop): with
    /// LAPS the password is read again once and a new one tried once; otherwise the
    /// refusal is the answer.
    async fn reconnect_after_reboot(&mut self, timeout: Duration) -> Result<(), RemoteError> {
        if self.refused && !self.reread_laps().await {
            return Err(self.already_refused());
        }
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
                Err(e) if e.is_unauthorized() => {
                    // Refused: LAPS may have rotated the password around the restart (read
                    // once, the new one tried once); else the refusal is the answer. The
                    // refused credential is never sent again.
                    self.refused = true;
                    if !laps_reread {
                        laps_reread = true;
                        if self.reread_laps().await {
                            continue;
                        }
                    }
                    return Err(remote_error(&e));
                }
                // Up and answering, but refusing us: report it, do not spin.
                Err(e) if e.is_access_denied() && seen_down => return Err(remote_error(&e)),
                Err(e) if e.is_access_denied() => {}
                Err(_) => seen_down = true,
            }
            tokio::time::sleep(poll).await;
        }
    }
}
