//! The bridge between the playbooks' `Remote` trait and a WinRM session: the playbooks
//! never see HTTP, and this is the one place that maps WinRM errors onto their terms.

use playbooks::{CommandOutput, Remote, RemoteError, RemoteErrorKind};
use winrm::session::Session;

/// A [`Remote`] over a WinRM session (one connection, one shell, reused).
#[derive(Debug)]
pub struct WinrmRemote {
    session: Session,
}

impl WinrmRemote {
    /// Wraps a session.
    pub fn new(session: Session) -> Self {
        WinrmRemote { session }
    }

    /// Closes the shell and the connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// Maps a WinRM error onto the playbooks' error kinds.
pub fn remote_error(e: &winrm::Error) -> RemoteError {
    let kind = if e.is_unauthorized() {
        RemoteErrorKind::Unauthorized
    } else if e.is_access_denied() {
        RemoteErrorKind::AccessDenied
    } else if matches!(e, winrm::Error::ReadTimeout { .. } | winrm::Error::ConnectTimeout { .. }) {
        RemoteErrorKind::Timeout
    } else if e.is_unreachable() {
        RemoteErrorKind::Unreachable
    } else {
        RemoteErrorKind::Protocol
    };
    RemoteError { kind, message: e.to_string() }
}

fn output(out: winrm::Output) -> CommandOutput {
    CommandOutput { stdout: out.stdout_text(), stderr: out.stderr_text(), exit_code: out.exit_code }
}

impl Remote for WinrmRemote {
    async fn run_powershell(&mut self, script: &str, stdin: Option<&[u8]>) -> Result<CommandOutput, RemoteError> {
        self.session.run_powershell(script, stdin).await.map(output).map_err(|e| remote_error(&e))
    }

    async fn run_cmd(&mut self, command_line: &str) -> Result<CommandOutput, RemoteError> {
        // WinRS runs the command line through cmd.exe; split off the program name the way
        // pywinrm does (command + arguments joined by spaces on the server).
        let (cmd, rest) = match command_line.split_once(' ') {
            Some((c, r)) => (c, vec![r.to_string()]),
            None => (command_line, Vec::new()),
        };
        self.session.run(cmd, &rest, None).await.map(output).map_err(|e| remote_error(&e))
    }
}
