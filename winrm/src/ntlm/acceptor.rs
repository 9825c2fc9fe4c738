//! The NTLMv2 acceptor (server side of MS-NLMP 3.2) for the lab: [`Acceptor`] answers a
//! NEGOTIATE with a CHALLENGE shaped like a Windows Server 2022 one, and
//! [`AwaitingAuthenticate`] verifies the client's NTLMv2 AUTHENTICATE against a known
//! password (or NT hash), checks the MIC and derives the [`SessionSecurity`].
//!
//! The acceptor looks up no accounts itself: [`AwaitingAuthenticate::claimed_identity`]
//! says who the client claims to be, the caller picks that account's password and hands
//! it to [`AwaitingAuthenticate::accept`].
//!
//! Over TLS the listener checks the client's channel binding against its own certificate
//! ([`AwaitingAuthenticate::check_channel_bindings`], Windows' `CbtHardeningLevel`).

use std::fmt;

use rand::Rng;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::channel_bindings::{CbtHardening, ChannelBindings};
use super::crypto;
use super::messages::{
    av_id, AuthenticateMessage, AvPairs, ChallengeMessage, NegotiateFlags, NegotiateMessage,
    NtlmV2Response, Version, AV_FLAG_MIC_PRESENT, MIC_OFFSET,
};
use super::security::{Role, SessionSecurity};
use super::{qualified_name, NtlmError};
use crate::secret::Secret;

/// Flags the acceptor echoes back when the client asks for them (MS-NLMP 3.2.5.1.1).
const ECHOED: NegotiateFlags = NegotiateFlags(
    NegotiateFlags::UNICODE.0
        | NegotiateFlags::REQUEST_TARGET.0
        | NegotiateFlags::SIGN.0
        | NegotiateFlags::SEAL.0
        | NegotiateFlags::ALWAYS_SIGN.0
        | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
        | NegotiateFlags::IDENTIFY.0
        | NegotiateFlags::VERSION.0
        | NegotiateFlags::NEGOTIATE_128.0
        | NegotiateFlags::KEY_EXCH.0
        | NegotiateFlags::NEGOTIATE_56.0,
);

/// The names a server announces in its CHALLENGE TargetInfo (MS-NLMP 2.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerIdentity {
    /// NetBIOS domain name (MsvAvNbDomainName), e.g. `CONTOSO`; for a workgroup host,
    /// its computer name.
    pub nb_domain: String,
    /// NetBIOS computer name (MsvAvNbComputerName), e.g. `SRV01`.
    pub nb_computer: String,
    /// DNS domain name (MsvAvDnsDomainName and MsvAvDnsTreeName), e.g. `contoso.com`.
    pub dns_domain: String,
    /// DNS computer name (MsvAvDnsComputerName), e.g. `srv01.contoso.com`.
    pub dns_computer: String,
}

/// Who the client says it is in its AUTHENTICATE message (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedIdentity {
    /// DomainName (empty for a UPN or a local account).
    pub domain: String,
    /// UserName (a plain name or a whole UPN).
    pub user: String,
    /// Workstation.
    pub workstation: String,
}

/// The server side before the client's NEGOTIATE.
#[derive(Debug)]
pub struct Acceptor {
    identity: ServerIdentity,
    server_challenge: [u8; 8],
    time: Option<u64>,
}

impl Acceptor {
    /// An acceptor with a random server challenge; the timestamp is taken from the clock
    /// when the CHALLENGE is built.
    pub fn new(identity: ServerIdentity) -> Self {
        let mut server_challenge = [0u8; 8];
        rand::rng().fill_bytes(&mut server_challenge);
        Self {
            identity,
            server_challenge,
            time: None,
        }
    }

    /// An acceptor with a fixed server challenge and MsvAvTimestamp (FILETIME), for tests.
    pub fn with_fixed_challenge(
        identity: ServerIdentity,
        server_challenge: [u8; 8],
        time: u64,
    ) -> Self {
        Self {
            identity,
            server_challenge,
            time: Some(time),
        }
    }

    /// Answers a NEGOTIATE with a CHALLENGE (MS-NLMP 3.2.5.1.1) like Windows Server 2022's:
    /// TargetInfo with NbDomainName, NbComputerName, DnsDomainName, DnsComputerName,
    /// DnsTreeName, MsvAvTimestamp, EOL; Version 10.0.20348 revision 15.
    ///
    /// Refuses clients that cannot use UNICODE strings or extended session security.
    pub fn challenge(self, negotiate: &[u8]) -> Result<(Vec<u8>, AwaitingAuthenticate), NtlmError> {
        let neg = NegotiateMessage::parse(negotiate)?;
        if !neg.flags.contains(NegotiateFlags::UNICODE) {
            return Err(NtlmError::Unsupported(
                "the client did not offer UNICODE (OEM-only clients are not supported)".to_owned(),
            ));
        }
        if !neg.flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "the client did not offer EXTENDED_SESSIONSECURITY (NTLMv1-era session security)"
                    .to_owned(),
            ));
        }
        let id = &self.identity;
        let workgroup =
            id.nb_domain.is_empty() || id.nb_domain.eq_ignore_ascii_case(&id.nb_computer);
        let target_type = if workgroup {
            NegotiateFlags::TARGET_TYPE_SERVER
        } else {
            NegotiateFlags::TARGET_TYPE_DOMAIN
        };
        let flags = (neg.flags & ECHOED)
            | NegotiateFlags::NTLM
            | NegotiateFlags::TARGET_INFO
            | NegotiateFlags::VERSION
            | target_type;
        let target_name = if workgroup {
            &id.nb_computer
        } else {
            &id.nb_domain
        };
        let nb_domain = if id.nb_domain.is_empty() {
            &id.nb_computer
        } else {
            &id.nb_domain
        };
        let mut info = AvPairs::default();
        info.push_string(av_id::NB_DOMAIN_NAME, nb_domain);
        info.push_string(av_id::NB_COMPUTER_NAME, &id.nb_computer);
        info.push_string(av_id::DNS_DOMAIN_NAME, &id.dns_domain);
        info.push_string(av_id::DNS_COMPUTER_NAME, &id.dns_computer);
        info.push_string(av_id::DNS_TREE_NAME, &id.dns_domain);
        let time = self.time.unwrap_or_else(crypto::filetime_now);
        info.set(av_id::TIMESTAMP, time.to_le_bytes().to_vec());
        let challenge = ChallengeMessage {
            flags,
            target_name: if flags.contains(NegotiateFlags::REQUEST_TARGET) {
                target_name.clone()
            } else {
                String::new()
            },
            server_challenge: self.server_challenge,
            target_info: info,
            version: Some(Version::WINDOWS_SERVER_2022),
        }
        .to_bytes()?;
        Ok((
            challenge.clone(),
            AwaitingAuthenticate {
                negotiate: negotiate.to_vec(),
                challenge,
                server_challenge: self.server_challenge,
                flags,
                bindings: None,
            },
        ))
    }
}

/// The server after sending CHALLENGE, waiting for the client's AUTHENTICATE.
pub struct AwaitingAuthenticate {
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    server_challenge: [u8; 8],
    flags: NegotiateFlags,
    /// The TLS channel's binding and how strictly to check the client's.
    bindings: Option<(CbtHardening, ChannelBindings)>,
}

impl fmt::Debug for AwaitingAuthenticate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingAuthenticate")
            .field("flags", &self.flags)
            .field("bindings", &self.bindings)
            .finish_non_exhaustive()
    }
}

impl AwaitingAuthenticate {
    /// Resumes from a recorded NEGOTIATE and CHALLENGE (for replaying captured exchanges
    /// in tests). `negotiate` may be empty when the AUTHENTICATE carries no MIC.
    #[doc(hidden)]
    pub fn from_recorded(negotiate: &[u8], challenge: &[u8]) -> Result<Self, NtlmError> {
        let chal = ChallengeMessage::parse(challenge)?;
        Ok(Self {
            negotiate: negotiate.to_vec(),
            challenge: challenge.to_vec(),
            server_challenge: chal.server_challenge,
            flags: chal.flags,
            bindings: None,
        })
    }

    /// Checks the client's MsvAvChannelBindings against `expected`, the binding of the TLS
    /// channel the handshake runs on (e.g. [`ChannelBindings::tls_server_end_point`] of
    /// the listener's certificate), as `level` says. Without this call (plain HTTP)
    /// bindings are not looked at.
    pub fn check_channel_bindings(
        mut self,
        level: CbtHardening,
        expected: ChannelBindings,
    ) -> Self {
        self.bindings = Some((level, expected));
        self
    }

    /// Who the client claims to be, read from the AUTHENTICATE message before any
    /// verification, so the caller can pick the account's password.
    pub fn claimed_identity(&self, authenticate: &[u8]) -> Result<ClaimedIdentity, NtlmError> {
        let auth = AuthenticateMessage::parse(authenticate)?;
        Ok(ClaimedIdentity {
            domain: auth.domain,
            user: auth.user,
            workstation: auth.workstation,
        })
    }

    /// Verifies the AUTHENTICATE against `password` (MS-NLMP 3.2.5.1.2) and returns the
    /// established context.
    pub fn accept(
        self,
        authenticate: &[u8],
        password: &Secret,
    ) -> Result<SessionSecurity, NtlmError> {
        let hash = Zeroizing::new(crypto::ntowfv1(password.expose_secret()));
        self.accept_nt_hash(authenticate, &hash)
    }

    /// As [`accept`](Self::accept), with the account's NT hash (NTOWFv1) instead of its
    /// password.
    ///
    /// Checks, in order: an NTLMv2 response is present; NTProofStr equals
    /// HMAC_MD5(NTOWFv2(user, domain from the message), ServerChallenge ‖ blob); the
    /// ExportedSessionKey is recovered (RC4 of EncryptedRandomSessionKey under KEY_EXCH);
    /// the MIC matches when MsvAvFlags announces one; the channel binding fits, when
    /// [`check_channel_bindings`](Self::check_channel_bindings) asked for it.
    pub fn accept_nt_hash(
        self,
        authenticate: &[u8],
        nt_hash: &[u8; 16],
    ) -> Result<SessionSecurity, NtlmError> {
        let auth = AuthenticateMessage::parse(authenticate)?;
        let who = qualified_name(&auth.domain, &auth.user);
        if auth.user.is_empty() && auth.nt_challenge_response.is_empty() {
            return Err(NtlmError::Unsupported(
                "anonymous authentication".to_owned(),
            ));
        }
        let response = NtlmV2Response::parse(&auth.nt_challenge_response)?;
        let blob = auth.nt_challenge_response.get(16..).unwrap_or_default();
        let ntowf = Zeroizing::new(crypto::ntowfv2_from_hash(nt_hash, &auth.user, &auth.domain));
        let expected = crypto::nt_proof_str(&ntowf, &self.server_challenge, blob);
        if !crypto::ct_eq(&expected, &response.nt_proof_str) {
            return Err(NtlmError::AuthenticationFailed {
                user: who,
                reason: "the NTLMv2 response does not match the password (NTProofStr mismatch)"
                    .to_owned(),
            });
        }
        // The AV pairs are covered by NTProofStr, so the binding read here is the client's.
        if let Some((level, expected)) = &self.bindings {
            let sent = response
                .client
                .av_pairs
                .get(av_id::CHANNEL_BINDINGS)
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
                .map(ChannelBindings);
            level
                .check(expected, sent.as_ref())
                .map_err(NtlmError::ChannelBindingRefused)?;
        }
        let key_exchange_key =
            Zeroizing::new(crypto::session_base_key(&ntowf, &response.nt_proof_str));

        // Connection-oriented: the flags in force are those the client confirmed in
        // AUTHENTICATE, limited to what we offered in CHALLENGE.
        let flags = auth.flags & self.flags;
        if !flags.contains(NegotiateFlags::EXTENDED_SESSIONSECURITY) {
            return Err(NtlmError::Unsupported(
                "the AUTHENTICATE message dropped EXTENDED_SESSIONSECURITY".to_owned(),
            ));
        }
        let exported = if crypto::uses_key_exchange(flags) {
            let enc: [u8; 16] = auth
                .encrypted_random_session_key
                .as_slice()
                .try_into()
                .map_err(|_| {
                    NtlmError::malformed(
                        "AUTHENTICATE",
                        format!(
                            "EncryptedRandomSessionKey is {} bytes, KEY_EXCH needs 16",
                            auth.encrypted_random_session_key.len()
                        ),
                    )
                })?;
            let plain = Zeroizing::new(crypto::rc4k(&key_exchange_key, &enc));
            let mut key = Zeroizing::new([0u8; 16]);
            for (d, s) in key.iter_mut().zip(plain.iter()) {
                *d = *s;
            }
            key
        } else {
            key_exchange_key
        };

        let mic_flag = response.client.av_pairs.flags().unwrap_or(0) & AV_FLAG_MIC_PRESENT != 0;
        if mic_flag {
            let sent = auth.mic.ok_or_else(|| {
                NtlmError::malformed(
                    "AUTHENTICATE",
                    "MsvAvFlags announces a MIC but the message has no MIC field",
                )
            })?;
            let mut zeroed = authenticate.to_vec();
            if let Some(field) = zeroed.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
                field.fill(0);
            }
            let expected = crypto::mic(&exported, &self.negotiate, &self.challenge, &zeroed);
            if !crypto::ct_eq(&expected, &sent) {
                return Err(NtlmError::MicMismatch);
            }
        }
        Ok(SessionSecurity::new(Role::Acceptor, *exported, flags))
    }
}
