//! NTLMv2 authentication and session security ([MS-NLMP]) as a sans-IO core: the
//! initiator (client) and acceptor (server) handshakes are typed states that consume
//! themselves, every function takes bytes and returns bytes, and nothing here touches a
//! socket or a clock except through explicit inputs (see [`Initiator::with_fixed_inputs`]
//! and [`Acceptor::with_fixed_challenge`]).
//!
//! Only what WinRM over plain HTTP needs is implemented: NTLMv2 responses (MS-NLMP 3.3.2),
//! extended session security (ESS), key exchange (KEY_EXCH), the MIC (MS-NLMP 3.1.5.1.2)
//! and connection-oriented sealing (MS-NLMP 3.4). NTLMv1, LM, datagram mode and
//! anonymous authentication are refused with [`NtlmError::Unsupported`].
//!
//! * [`messages`] — NEGOTIATE / CHALLENGE / AUTHENTICATE encoding and bounded parsing
//!   (MS-NLMP 2.2.1), AV pairs (2.2.2.1), the NTLMv2 response (2.2.2.8).
//! * [`crypto`] — NTOWFv2, NTProofStr, key exchange, SIGNKEY/SEALKEY, MIC (MS-NLMP 3.3.2,
//!   3.4.5).
//! * [`Initiator`] → [`AwaitingChallenge`] → [`SessionSecurity`] — the client side.
//! * [`Acceptor`] → [`AwaitingAuthenticate`] → [`SessionSecurity`] — the server side,
//!   used by the lab.
//! * [`channel_bindings`] — `MsvAvChannelBindings` from the server's TLS certificate
//!   (RFC 5929 `tls-server-end-point`) and the listener's [`CbtHardening`] check.
//! * [`SessionSecurity`] — GSS_WrapEx / GSS_UnwrapEx with sealing (MS-NLMP 3.4.3, 3.4.4).
//!
//! [MS-NLMP]: https://learn.microsoft.com/openspecs/windows_protocols/ms-nlmp/

mod acceptor;
pub mod channel_bindings;
pub mod crypto;
mod initiator;
pub mod messages;
mod rc4;
mod security;

pub use acceptor::{Acceptor, AwaitingAuthenticate, ClaimedIdentity, ServerIdentity};
pub use channel_bindings::{BindingProblem, CbtHardening, ChannelBindings};
pub use initiator::{AwaitingChallenge, Initiator};
pub use messages::{NegotiateFlags, Version};
pub use security::{Role, SessionSecurity};

use crate::secret::Secret;

/// Everything that can go wrong in an NTLM exchange or on an NTLM-protected message.
///
/// The variants are grouped by who is at fault: the peer sent bytes we cannot parse
/// ([`Malformed`](Self::Malformed)), the credentials are wrong
/// ([`AuthenticationFailed`](Self::AuthenticationFailed)), a handshake or message was
/// altered ([`MicMismatch`](Self::MicMismatch), [`SignatureMismatch`](Self::SignatureMismatch),
/// [`SequenceMismatch`](Self::SequenceMismatch), [`ContextBroken`](Self::ContextBroken)),
/// or the peer wants something we do not do ([`Unsupported`](Self::Unsupported)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    /// The peer's message could not be parsed: `message` names the message
    /// (e.g. "CHALLENGE"), `detail` says which field and why.
    #[error("malformed NTLM {message} message: {detail}")]
    Malformed {
        /// Which message or structure (NEGOTIATE, CHALLENGE, AUTHENTICATE, AV pairs, ...).
        message: &'static str,
        /// Which field was wrong and how.
        detail: String,
    },
    /// The NTLMv2 response does not match the password (MS-NLMP 3.2.5.1.2: the
    /// NTProofStr recomputed with the password differs from the one sent).
    #[error("NTLM authentication failed for {user:?}: {reason}")]
    AuthenticationFailed {
        /// The account as the client named it (`DOMAIN\user` or `user`).
        user: String,
        /// Why (wrong password, or the server refused).
        reason: String,
    },
    /// The AUTHENTICATE message's MIC does not match the handshake: one of the three
    /// messages was altered in transit (MS-NLMP 3.2.5.1.2).
    #[error("NTLM MIC mismatch: the NEGOTIATE/CHALLENGE/AUTHENTICATE exchange was altered")]
    MicMismatch,
    /// The AUTHENTICATE message's channel binding does not fit the TLS channel it came
    /// over, under the listener's [`CbtHardening`] (Extended Protection; MS-NLMP 3.2.5.1.2).
    #[error("NTLM channel binding refused: {0}")]
    ChannelBindingRefused(BindingProblem),
    /// The checksum in a message signature does not match the message (MS-NLMP 3.4.4.2).
    #[error("NTLM message signature mismatch (sequence number {seq_num}): the message was altered or keys differ")]
    SignatureMismatch {
        /// The sequence number the message was expected to carry.
        seq_num: u32,
    },
    /// The message signature carries an unexpected sequence number: a message was lost,
    /// replayed or reordered (MS-NLMP 3.4.4).
    #[error("NTLM sequence number mismatch: expected {expected}, received {received}")]
    SequenceMismatch {
        /// The next sequence number this side expected.
        expected: u32,
        /// The sequence number in the signature.
        received: u32,
    },
    /// An earlier message failed verification on this context; its RC4 state is out of
    /// step with the peer's, so the context cannot be used any more. Re-authenticate.
    #[error(
        "NTLM security context is unusable after an earlier verification failure; re-authenticate"
    )]
    ContextBroken,
    /// The peer asked for, or only offers, something this implementation refuses
    /// (NTLMv1, no sealing, no extended session security, OEM strings, anonymous).
    #[error("unsupported NTLM: {0}")]
    Unsupported(String),
    /// One of our own inputs does not fit in an NTLM message (a name longer than a
    /// 16-bit length field).
    #[error("NTLM {field} is too long to encode ({len} bytes)")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its encoded length.
        len: usize,
    },
}

impl NtlmError {
    pub(crate) fn malformed(message: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            message,
            detail: detail.into(),
        }
    }
}

/// The account an initiator authenticates as.
///
/// `domain` and `user` go into the AUTHENTICATE message and into NTOWFv2 exactly as given
/// (MS-NLMP 3.3.2: the user name is upper-cased for the hash, the domain is not).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// NetBIOS or DNS domain name; empty for a local account or a UPN.
    pub domain: String,
    /// The account name (or a whole UPN `user@dns.domain` with an empty domain).
    pub user: String,
    /// The password.
    pub password: Secret,
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(domain: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        Self {
            domain: domain.into(),
            user: user.into(),
            password,
        }
    }

    /// Parses a user as people type it:
    ///
    /// * `DOMAIN\user` — domain `DOMAIN`, user `user`;
    /// * `user@dns.domain` — a UPN: user is the whole UPN and the domain is empty, which
    ///   is what Windows clients send (the DC resolves the UPN);
    /// * `user` — a local account, domain empty.
    pub fn from_user_spec(spec: &str, password: Secret) -> Self {
        match spec.split_once('\\') {
            Some((domain, user)) => Self::new(domain, user, password),
            None => Self::new("", spec, password),
        }
    }

    /// The account as `DOMAIN\user`, or `user` when the domain is empty.
    pub fn display_name(&self) -> String {
        qualified_name(&self.domain, &self.user)
    }
}

pub(crate) fn qualified_name(domain: &str, user: &str) -> String {
    if domain.is_empty() {
        user.to_owned()
    } else {
        format!("{domain}\\{user}")
    }
}
