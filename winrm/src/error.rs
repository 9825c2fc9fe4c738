//! The crate's error type: one enum for everything a host session can run into, grouped by
//! who is at fault — our caller's configuration, the network, the peer refusing or
//! faulting, or the peer sending bytes we cannot accept. A broken trust is not an error
//! here: it is a finding the playbooks make from command output.

use std::time::Duration;

use crate::encryption::EncryptionError;
use crate::ntlm::NtlmError;
use crate::soap::{FaultKind, SoapError, WsmanFault};

/// Everything that can go wrong talking WinRM to one host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- our caller's fault
    /// The session configuration is unusable (names the setting and what to do).
    #[error("invalid WinRM configuration: {0}")]
    InvalidConfig(String),

    // --- network and transport
    /// TCP connect failed (refused, unreachable, DNS).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port we tried.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TCP connect did not finish in time.
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout {
        /// host:port we tried.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// TLS handshake failed (certificate not trusted, name mismatch, protocol error).
    #[error("TLS handshake with {addr} failed: {source} (use --ca-file to trust a private CA)")]
    Tls {
        /// host:port.
        addr: String,
        /// The TLS error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP-level failure on an established connection.
    #[error("HTTP error talking to {addr}: {source}")]
    Http {
        /// host:port.
        addr: String,
        /// The hyper error.
        #[source]
        source: hyper::Error,
    },
    /// The server closed the connection before answering the authentication handshake
    /// (the service is stopping or starting, e.g. during a reboot).
    #[error("{addr} closed the connection before answering")]
    ConnectionClosed {
        /// host:port.
        addr: String,
    },
    /// No HTTP response arrived within the read timeout.
    #[error("no response from {addr} within {after:?}")]
    ReadTimeout {
        /// host:port.
        addr: String,
        /// The read timeout.
        after: Duration,
    },

    // --- the peer refused
    /// HTTP 401: the server rejected the credentials (or, for a domain account on a host
    /// with a broken trust, could not verify them).
    #[error("{addr} rejected the credentials of {user} (HTTP 401)")]
    Unauthorized {
        /// host:port.
        addr: String,
        /// The user name that was tried (never the password).
        user: String,
    },
    /// The server offers none of the authentication schemes we can speak.
    #[error("{addr} offers no authentication scheme we support (offered: {offered}); enable Negotiate/NTLM, or Basic over HTTPS")]
    AuthSchemeUnsupported {
        /// host:port.
        addr: String,
        /// The WWW-Authenticate schemes it offered.
        offered: String,
    },
    /// HTTP 413: the request envelope exceeded the server's MaxEnvelopeSizekb.
    #[error("{addr} refused a {size}-byte request as too large (HTTP 413); the server's MaxEnvelopeSizekb is lower than our envelope size")]
    EnvelopeTooLarge {
        /// host:port.
        addr: String,
        /// Size of the body we sent.
        size: usize,
    },
    /// An HTTP status that WinRM does not use for this exchange.
    #[error("{addr} answered HTTP {status} unexpectedly: {snippet}")]
    UnexpectedStatus {
        /// host:port.
        addr: String,
        /// The status code.
        status: u16,
        /// The first bytes of the body, for diagnosis.
        snippet: String,
    },
    /// The server answered with a WS-Management fault.
    #[error("{0}")]
    Fault(Box<WsmanFault>),

    // --- the peer sent bytes we cannot accept
    /// NTLM handshake or session-security failure.
    #[error("NTLM with {addr}: {source}")]
    Ntlm {
        /// host:port.
        addr: String,
        /// What went wrong.
        #[source]
        source: NtlmError,
    },
    /// A sealed body could not be unsealed (tampered, truncated, wrong framing).
    #[error("encrypted message from {addr}: {source}")]
    Encryption {
        /// host:port.
        addr: String,
        /// What went wrong.
        #[source]
        source: EncryptionError,
    },
    /// A Receive said the command is done (`CommandState/Done`) but carried no `ExitCode`
    /// (MS-WSMV 2.2.4.7 `CommandStateType`, 3.1.4.14): nothing says it succeeded, so it is
    /// not taken as success (pywinrm's `get_command_output_raw` fails the same way).
    #[error("{addr} reported command {command_id} done without an exit code")]
    NoExitCode {
        /// host:port.
        addr: String,
        /// The WinRS command.
        command_id: String,
    },
    /// A SOAP message could not be understood.
    #[error("SOAP message from {addr}: {source}")]
    Soap {
        /// host:port.
        addr: String,
        /// What went wrong.
        #[source]
        source: SoapError,
    },
}

impl Error {
    /// The WS-Management fault kind, when this error is a fault.
    pub fn fault_kind(&self) -> Option<FaultKind> {
        match self {
            Error::Fault(f) => Some(f.kind),
            _ => None,
        }
    }

    /// True for errors that mean "could not reach the host at all" (as opposed to it
    /// refusing us): connect failures and timeouts.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectTimeout { .. }
                | Error::ReadTimeout { .. }
                | Error::ConnectionClosed { .. }
                // HTTP.sys answers 503 while no WinRM service is registered (stopping,
                // starting, rebooting).
                | Error::UnexpectedStatus { status: 503, .. }
        )
    }

    /// True when the server rejected our credentials (401).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// True when the server authenticated us but denied access (WSManFault code 5 or
    /// 0x80070005), e.g. a UAC-filtered local administrator.
    pub fn is_access_denied(&self) -> bool {
        self.fault_kind() == Some(FaultKind::AccessDenied)
    }
}
