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
    #[error("cannot connect to {addr}: {source}; check the name resolves, the host is up and the port is open")]
    Connect {
        /// host:port we tried.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TCP connect did not finish in time.
    #[error("connecting to {addr} timed out after {after:?}: the host is down or a firewall drops the port")]
    ConnectTimeout {
        /// host:port we tried.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    /// TLS handshake failed (certificate not trusted, name mismatch, protocol error).
    #[error("TLS handshake with {addr} failed: {source}; check that the host's certificate is issued by a CA trusted here for the name connected to, and that the port is an HTTPS listener")]
    Tls {
        /// host:port.
        addr: String,
        /// The TLS error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP-level failure on an established connection (the network or the peer broke
    /// the exchange).
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
    /// HTTP 401 before authentication completed: the logon was refused. A wrong password,
    /// a logon right denied by policy ("Deny access to this computer from the network",
    /// Protected Users), a UAC-filtered local administrator (KB951016) or, for a domain
    /// account, a host that cannot verify it (broken trust) all look the same here.
    #[error("{addr} refused the logon of {user} (HTTP 401 during authentication): check the password, that the account may log on over the network to this host (deny-logon policies, Protected Users), that a local administrator other than the built-in one is not filtered by UAC (LocalAccountTokenFilterPolicy), and, for a domain account, the host's trust")]
    Unauthorized {
        /// host:port.
        addr: String,
        /// The user name that was tried (never the password).
        user: String,
    },
    /// HTTP 401 on a connection that had authenticated, again after a fresh handshake:
    /// the server dropped our security context (service restart, idle timeout) and would
    /// not take a new one.
    #[error("{addr} stopped accepting the authenticated session of {user} (HTTP 401 after logon, twice): the WinRM service may be restarting; retry later")]
    SessionLost {
        /// host:port.
        addr: String,
        /// The user name that was authenticated.
        user: String,
    },
    /// Authenticated, but the server refused access (WS-Management Access Denied fault,
    /// code 5 / 0x80070005).
    #[error("{addr} authenticated the account but denied access to WinRM: check that it is in the host's Administrators or Remote Management Users group and allowed by the WinRM root SDDL ({fault})")]
    AccessDenied {
        /// host:port.
        addr: String,
        /// The fault as sent.
        fault: Box<WsmanFault>,
    },
    /// The peer answered, but not as a WinRM listener does (a 404 or other status WinRM
    /// never sends, a reply that is not SOAP, a service that is not HTTP, no
    /// authentication asked for): the wrong port or the wrong service.
    #[error("{addr} does not answer like a WinRM listener ({detail}): check the port, the scheme (HTTP 5985, HTTPS 5986) and that the WinRM service listens there")]
    NotWinrm {
        /// host:port.
        addr: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What was wrong.
        detail: String,
    },
    /// The server offers none of the authentication schemes we can speak.
    #[error("{addr} offers no authentication scheme we support (offered: {offered}); enable Negotiate/NTLM, or Basic over HTTPS")]
    AuthSchemeUnsupported {
        /// host:port.
        addr: String,
        /// The WWW-Authenticate schemes it offered.
        offered: String,
    },
    /// The server answered with a redirect (any 3xx). No source documents a WinRM
    /// listener redirecting: a 3xx comes from something else on the port (a web server, a
    /// proxy), and following it would hand the NTLM exchange and the commands to a host
    /// nobody named. So it is never followed: nothing is sent to the host it names.
    #[error("{addr} answered HTTP {status} redirecting to {location:?}; redirects are never followed (a WinRM listener does not redirect): check the host name, port and scheme, and any proxy in between")]
    Redirected {
        /// host:port.
        addr: String,
        /// The 3xx status.
        status: u16,
        /// The `Location` it named (control characters removed, at most 200 characters).
        location: String,
    },
    /// A reply (its head or its body) was larger than we accept: the head must fit in
    /// [`crate::transport::MAX_HEAD_BYTES`], the body in the `MaxEnvelopeSize` we announce
    /// plus framing (MS-WSMV 3.1.4.1.7: the client expects no larger response). Nothing
    /// beyond the limit was read.
    #[error("{addr} sent a reply {part} larger than the {limit} bytes accepted; refused without reading the rest")]
    ReplyTooLarge {
        /// host:port.
        addr: String,
        /// `head` (status line and headers) or `body`.
        part: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// An HTTP error status with a body that is not a WS-Management fault (an HTML error
    /// page from IIS, HTTP.sys, a proxy or a crashed service). Windows' WinRM service
    /// answers a failed operation with a SOAP fault as the body of its 500 (the SOAP 1.2
    /// HTTP binding), sealed over HTTP (MS-WSMV 2.2.9.1).
    #[error("{addr} answered HTTP {status} (not a WS-Man fault): {excerpt}")]
    ErrorPage {
        /// host:port.
        addr: String,
        /// The status code.
        status: u16,
        /// The page's text (tags removed), at most 200 characters.
        excerpt: String,
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
    /// A sealed reply failed its NTLM integrity check (MS-NLMP 3.4.4.2): the signature does
    /// not match the message, or its sequence number is not the next one expected (a
    /// replayed, reordered or dropped message). The connection and its security context
    /// are dropped; nothing from the reply is used.
    #[error("the reply from {addr} failed its integrity check ({source}): it was altered, replayed or reordered on the way; the connection was dropped")]
    Integrity {
        /// host:port.
        addr: String,
        /// The NTLM verification failure.
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
    /// A command did not finish (no `CommandState/Done`, MS-WSMV 3.1.4.14) within the
    /// session's command timeout; it was told to terminate.
    #[error("command {command_id} on {addr} did not finish within {after:?}")]
    CommandTimeout {
        /// host:port.
        addr: String,
        /// The WinRS command.
        command_id: String,
        /// The command timeout.
        after: Duration,
    },
    /// A command's output (stdout and stderr together) went past the session's cap; the
    /// command was told to terminate and its output is not returned.
    #[error("command {command_id} on {addr} produced more than {limit} bytes of output; stopped and discarded")]
    OutputTooLarge {
        /// host:port.
        addr: String,
        /// The WinRS command.
        command_id: String,
        /// The cap in bytes.
        limit: usize,
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
            Error::Fault(f) | Error::AccessDenied { fault: f, .. } => Some(f.kind),
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

    /// True when the server refused the logon (401 before authentication completed).
    /// A 401 after authentication ([`Error::SessionLost`]) is not a refused credential.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// True when the peer is not a WinRM listener (wrong port or service), including one
    /// that redirects elsewhere.
    pub fn is_not_winrm(&self) -> bool {
        matches!(self, Error::NotWinrm { .. } | Error::Redirected { .. })
    }

    /// True when a sealed reply failed its integrity check ([`Error::Integrity`]).
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Integrity { .. })
    }

    /// True for a deadline that ran out: connect, one reply, or a whole command.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::ConnectTimeout { .. } | Error::ReadTimeout { .. } | Error::CommandTimeout { .. }
        )
    }

    /// True when the server authenticated us but denied access (WSManFault code 5 or
    /// 0x80070005), e.g. a UAC-filtered local administrator.
    pub fn is_access_denied(&self) -> bool {
        self.fault_kind() == Some(FaultKind::AccessDenied)
    }
}
