//! The one way the playbooks reach a host: a [`Remote`] runs a PowerShell script (with
//! optional stdin) or a `cmd` line and returns what Windows printed. The CLI implements it
//! over a WinRM session; tests implement it as a scripted fake. Also the credential types:
//! secrets are [`secrecy`] types whose `Debug` prints nothing of the value.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};

/// A secret string (zeroized on drop, redacted in `Debug`).
pub type Secret = SecretString;

/// What one remote command printed. `stderr` is already decoded from PowerShell's CLIXML.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// Standard output, as text (CRLF or LF line endings).
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
    /// The process exit code.
    pub exit_code: i64,
}

impl CommandOutput {
    /// Output with the given stdout, empty stderr and exit code 0 (handy in tests).
    pub fn ok(stdout: impl Into<String>) -> Self {
        CommandOutput {
            stdout: stdout.into(),
            stderr: String::new(),
            exit_code: 0,
        }
    }
}

/// Why a remote command could not be run at all (as opposed to running and failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteErrorKind {
    /// No answer: connection refused, DNS failure, host down.
    Unreachable,
    /// The host refused the credential (HTTP 401).
    Unauthorized,
    /// Authenticated but not allowed (WinRM Access Denied; often a UAC filtered token).
    AccessDenied,
    /// A step or the host deadline ran out.
    Timeout,
    /// Anything else on the wire (faults, bad messages, a dropped connection).
    Protocol,
}

impl RemoteErrorKind {
    /// Could this error mean the host is rebooting (the connection went away)?
    pub fn is_connection_loss(self) -> bool {
        matches!(
            self,
            RemoteErrorKind::Unreachable | RemoteErrorKind::Timeout | RemoteErrorKind::Protocol
        )
    }
}

impl fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteErrorKind::Unreachable => "unreachable",
            RemoteErrorKind::Unauthorized => "unauthorized",
            RemoteErrorKind::AccessDenied => "access denied",
            RemoteErrorKind::Timeout => "timeout",
            RemoteErrorKind::Protocol => "protocol error",
        })
    }
}

/// A remote command could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    /// What kind of failure (retry logic matches this, never the message).
    pub kind: RemoteErrorKind,
    /// Human detail.
    pub message: String,
}

impl RemoteError {
    /// Builds an error.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// A connection to one host that can run commands.
///
/// Implementations must return futures that are `Send` (the CLI runs hosts on a
/// multi-threaded runtime). Timeouts per command are the implementation's business and
/// surface as [`RemoteErrorKind::Timeout`].
pub trait Remote {
    /// Runs a Windows PowerShell 5.1 script (`powershell.exe -EncodedCommand`), feeding
    /// `stdin` (then end-of-input) when given.
    fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send;

    /// Runs a command line through `cmd.exe` (WinRS), e.g. `nltest /sc_reset:lab.test`.
    fn run_cmd(
        &mut self,
        command_line: &str,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send;

    /// Called by [`crate::repair`] right after it sent a command that restarts the host
    /// (`Restart-Computer -Force`). Must wait, for at most `timeout`, until the host has gone
    /// down **and** WinRM answers again, then reconnect this remote (new connection, new
    /// shell) with the same connecting credential (the local Administrator for a host being
    /// rejoined). Return `Err` when it does not come back in time.
    ///
    /// The repair re-probes after every reconnect and calls this again (a bounded number of
    /// times, [`crate::repair::RepairOptions::max_reconnects`]) if the host is not yet in the
    /// expected state, so an implementation that reconnects too early (before the restart
    /// took the host down) costs a retry, not a wrong action.
    ///
    /// The default refuses: a remote that cannot reconnect cannot run a rejoin.
    /// Implement it together with [`Remote::supports_reconnect`].
    fn reconnect_after_reboot(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send {
        let _ = timeout;
        async {
            Err(RemoteError::new(
                RemoteErrorKind::Protocol,
                "this remote cannot reconnect after a reboot",
            ))
        }
    }

    /// Can [`Remote::reconnect_after_reboot`] work? A rejoin is not started on a remote
    /// that cannot (it would leave the host in a workgroup). Default `false`.
    fn supports_reconnect(&self) -> bool {
        false
    }
}

/// The domain controllers, for the DC-side actions ([`crate::Action::DcResetAccount`]).
/// The CLI implements it over LDAPS, bound as the repair account; tests with a fake.
pub trait Directory {
    /// Replaces the password of computer account `computer` (`NAME`, without `$`) on `dc`
    /// with a new random one that nobody learns (ADUC's "Reset Account"). `Ok` says what
    /// was reset (the object's DN); `Err` why not, naming the DC.
    fn reset_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send;

    /// Clears ACCOUNTDISABLE on computer account `computer` on `dc`. `Ok` says what was
    /// enabled; `Err` why not (e.g. the repair account lacks the right to write
    /// `userAccountControl`), naming the DC.
    fn enable_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send;

    /// Restores the deleted computer object `computer` on `dc` from the AD Recycle Bin
    /// (MS-ADTS 3.1.1.5.3.7.3). `Ok` says what was restored and where to; `Err` why not
    /// (the DC's refusal, a missing right such as Reanimate-Tombstones), naming the DC.
    fn restore_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send;
}

/// A DC-side action ([`Directory`]) that did not happen, by who is at fault. The message
/// names the DC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The DC answered and refused: missing rights (the repair account lacks Reset
    /// Password, write access to `userAccountControl`, Reanimate-Tombstones), or the
    /// object is not in a state that allows it.
    #[error("{0}")]
    Refused(String),
    /// The DC could not be reached, bound or read in time.
    #[error("{0}")]
    Unavailable(String),
    /// Our side lacks what the action needs (no repair account to bind as, say).
    #[error("{0}")]
    NotConfigured(String),
}

/// The domain account that may reset machine passwords (the Reset Password right on the
/// computer objects), kept apart from the credential that connects to the host.
#[derive(Debug, Clone)]
pub struct DomainCredential {
    /// `DOMAIN\user` or `user@domain`.
    pub user: String,
    /// The password (never on a command line; sent over stdin only).
    pub password: SecretString,
}

impl DomainCredential {
    /// Builds a credential.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        DomainCredential {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }
}

/// A credential cannot be sent as the two-line stdin payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The user name is empty.
    #[error("the repair user name is empty")]
    EmptyUser,
    /// The password is empty.
    #[error("the repair password is empty")]
    EmptyPassword,
    /// A line break in the user name or password would split it across stdin lines.
    #[error("the repair {0} contains a line break")]
    LineBreak(&'static str),
}

/// The stdin bytes for the credential scripts: `user\r\npassword\r\n` in UTF-8 (the WinRM
/// shell runs with code page 65001). Zeroized on drop; `Debug` prints nothing of it.
pub struct StdinPayload(SecretSlice<u8>);

impl StdinPayload {
    /// Builds the payload. The buffer is allocated once at its final size so no partial
    /// copy of the password is left behind by a reallocation.
    pub fn for_credential(cred: &DomainCredential) -> Result<Self, CredentialError> {
        let password = cred.password.expose_secret();
        if cred.user.is_empty() {
            return Err(CredentialError::EmptyUser);
        }
        if password.is_empty() {
            return Err(CredentialError::EmptyPassword);
        }
        if cred.user.contains(['\r', '\n']) {
            return Err(CredentialError::LineBreak("user name"));
        }
        if password.contains(['\r', '\n']) {
            return Err(CredentialError::LineBreak("password"));
        }
        let mut buf = Vec::with_capacity(cred.user.len() + password.len() + 4);
        buf.extend_from_slice(cred.user.as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(password.as_bytes());
        buf.extend_from_slice(b"\r\n");
        Ok(StdinPayload(SecretSlice::from(buf)))
    }

    /// The bytes to send.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for StdinPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StdinPayload([REDACTED])")
    }
}

/// Replaces every occurrence of the credential's password in `text` (defence in depth for
/// output that comes back from a host after a credential script ran).
pub(crate) fn redact(text: &str, cred: &DomainCredential) -> String {
    let pw = cred.password.expose_secret();
    if pw.is_empty() || !text.contains(pw) {
        return text.to_string();
    }
    text.replace(pw, "********")
}
