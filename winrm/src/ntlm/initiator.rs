//! The NTLMv2 initiator (client side of MS-NLMP 3.1): [`Initiator`] produces the
//! NEGOTIATE message, [`AwaitingChallenge`] answers the server's CHALLENGE with an
//! AUTHENTICATE message carrying an NTLMv2 response, an encrypted random session key and
//! (when the server sent a timestamp) a MIC, and yields the [`SessionSecurity`].
//!
//! WinRM over plain HTTP needs sealing, so a CHALLENGE that does not agree to UNICODE,
//! SIGN, SEAL, EXTENDED_SESSIONSECURITY, KEY_EXCH and 128-bit keys is refused.
//!
//! What the response authenticates besides the server's TargetInfo (MS-NLMP 3.1.5.1.2):
//! `MsvAvTargetName` (the SPN we meant, `HTTP/<host>` for WinRM) and, over TLS only,
//! `MsvAvChannelBindings` from the server's certificate ([`ChannelBindings`]); over plain
//! HTTP there is no channel and no binding entry. [`Initiator::for_winrm`] sets both the
//! way pyspnego and Windows clients do.

use std::fmt;

use rand::Rng;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::channel_bindings::ChannelBindings;
use super::crypto;
use super::messages::{
    av_id, AuthenticateMessage, ChallengeMessage, NegotiateFlags, NegotiateMessage, Version,
    AV_FLAG_MIC_PRESENT, MIC_OFFSET,
};
use super::security::{Role, SessionSecurity};
use super::{Credentials, NtlmError};

/// What the server's CHALLENGE must agree to for us to go on.
const REQUIRED_FROM_SERVER: NegotiateFlags = NegotiateFlags(
    NegotiateFlags::UNICODE.0
        | NegotiateFlags::SIGN.0
        | NegotiateFlags::SEAL.0
        | NegotiateFlags::EXTENDED_SESSIONSECURITY.0
        | NegotiateFlags::KEY_EXCH.0
        | NegotiateFlags::NEGOTIATE_128.0,
);

/// The client side before anything was sent.
pub struct Initiator {
    creds: Credentials,
    workstation: String,
    client_challenge: [u8; 8],
    random_session_key: Zeroizing<[u8; 16]>,
    time: Option<u64>,
    target_spn: Option<String>,
    channel_bindings: Option<ChannelBindings>,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("creds", &self.creds)
            .field("workstation", &self.workstation)
            .field("target_spn", &self.target_spn)
            .field("channel_bindings", &self.channel_bindings)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// A client authenticating as `creds` from `workstation` (the NetBIOS name sent in
    /// AUTHENTICATE; may be empty). The client challenge and session key are random.
    pub fn new(creds: Credentials, workstation: &str) -> Self {
        let mut rng = rand::rng();
        let mut client_challenge = [0u8; 8];
        rng.fill_bytes(&mut client_challenge);
        let mut key = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(key.as_mut());
        Self {
            creds,
            workstation: workstation.to_owned(),
            client_challenge,
            random_session_key: key,
            time: None,
            target_spn: None,
            channel_bindings: None,
        }
    }

    /// Deterministic inputs for test vectors: the client challenge, the random session key
    /// (which becomes the ExportedSessionKey under KEY_EXCH), and a FILETIME used instead of
    /// the clock. A server MsvAvTimestamp always wins over `time` (MS-NLMP 3.1.5.1.2).
    pub fn with_fixed_inputs(
        creds: Credentials,
        workstation: &str,
        client_challenge: [u8; 8],
        random_session_key: [u8; 16],
        time: Option<u64>,
    ) -> Self {
        Self {
            client_challenge,
            random_session_key: Zeroizing::new(random_session_key),
            time,
            ..Self::new(creds, workstation)
        }
    }

    /// Adds MsvAvTargetName with this SPN (e.g. `HTTP/host.example.com`) to the NTLMv2
    /// response (MS-NLMP 3.1.5.1.2), so the server can check whom we meant.
    pub fn with_target_spn(mut self, spn: &str) -> Self {
        self.target_spn = Some(spn.to_owned());
        self
    }

    /// The initiator WinRM uses towards `host` (as connected: name or address):
    /// MsvAvTargetName `HTTP/<host>`, and over TLS the `tls-server-end-point` channel
    /// binding of the server's leaf certificate `tls_server_certificate` (DER). Without a
    /// certificate (plain HTTP) no binding entry is sent. A certificate whose signature
    /// algorithm has no RFC 5929 hash (Ed25519) gets no binding either, as requests_ntlm
    /// does; a listener with `CbtHardeningLevel` Strict then refuses the logon.
    pub fn for_winrm(
        creds: Credentials,
        workstation: &str,
        host: &str,
        tls_server_certificate: Option<&[u8]>,
    ) -> Self {
        let init = Self::new(creds, workstation).with_target_spn(&format!("HTTP/{host}"));
        match tls_server_certificate.map(ChannelBindings::tls_server_end_point) {
            Some(Ok(cb)) => init.with_channel_bindings(cb),
            Some(Err(e)) => {
                tracing::warn!(host, error = %e, "no channel binding for this TLS certificate");
                init
            }
            None => init,
        }
    }

    /// Sends this MsvAvChannelBindings value (MS-NLMP 2.2.2.1), e.g.
    /// [`ChannelBindings::tls_server_end_point`] of the server's certificate. Tests send
    /// [`ChannelBindings::ZERO`] to play a client without Extended Protection support.
    pub fn with_channel_bindings(mut self, bindings: ChannelBindings) -> Self {
        self.channel_bindings = Some(bindings);
        self
    }

    /// Sends no MsvAvChannelBindings pair (the default; plain HTTP has no channel). Kept
    /// for reproducing MS-NLMP 4.2.4, whose response authenticates the server's TargetInfo
    /// unchanged.
    pub fn without_channel_bindings(mut self) -> Self {
        self.channel_bindings = None;
        self
    }

    /// The NEGOTIATE message (MS-NLMP 2.2.1.1) with [`NegotiateFlags::INITIATOR_DEFAULT`].
    pub fn negotiate(self) -> (Vec<u8>, AwaitingChallenge) {
        let msg = NegotiateMessage {
            flags: NegotiateFlags::INITIATOR_DEFAULT,
            domain: String::new(),
            workstation: String::new(),
            version: Some(Version::WINDOWS_SERVER_2022),
        }
        .to_bytes();
        (
            msg.clone(),
            AwaitingChallenge {
                initiator: self,
                negotiate: msg,
            },
        )
    }
}

/// The client after sending NEGOTIATE, waiting for the server's CHALLENGE.
pub struct AwaitingChallenge {
    initiator: Initiator,
    negotiate: Vec<u8>,
}

impl fmt::Debug for AwaitingChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingChallenge")
            .field("initiator", &self.initiator)
            .finish_non_exhaustive()
    }
}

impl AwaitingChallenge {
    /// Answers the CHALLENGE with an AUTHENTICATE message (MS-NLMP 3.1.5.1.2) and returns
    /// it with the established [`SessionSecurity`].
    ///
    /// NTLMv2 only. When TargetInfo carries MsvAvTimestamp, its value is the blob time,
    /// LmChallengeResponse is Z(24), MsvAvFlags gets 0x2 and a MIC is computed over
    /// NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE (with the MIC zeroed).
    pub fn authenticate(self, challenge: &[u8]) -> Result<(Vec<u8>, SessionSecurity), NtlmError> {
        let init = self.initiator;
        let chal = ChallengeMessage::parse(challenge)?;
        let missing = chal.flags.missing(REQUIRED_FROM_SERVER);
        if missing.0 != 0 {
            return Err(NtlmError::Unsupported(format!(
                "the server's CHALLENGE does not agree to {missing} (flags {:#010x}); WinRM over HTTP needs NTLMv2 with sealing",
                chal.flags.0
            )));
        }
        // The flags both sides will use: what we asked for and the server agreed to.
        let flags = chal.flags
            & (NegotiateFlags::INITIATOR_DEFAULT
                | NegotiateFlags::TARGET_INFO
                | NegotiateFlags::TARGET_TYPE_DOMAIN
                | NegotiateFlags::TARGET_TYPE_SERVER);

        // AvPairs for the response: the server's TargetInfo plus ours (MS-NLMP 3.1.5.1.2).
        let mut pairs = chal.target_info.clone();
        let server_time = pairs.timestamp();
        let use_mic = server_time.is_some();
        if use_mic {
            let f = pairs.flags().unwrap_or(0) | AV_FLAG_MIC_PRESENT;
            pairs.set(av_id::FLAGS, f.to_le_bytes().to_vec());
        }
        if let Some(cb) = &init.channel_bindings {
            pairs.set(av_id::CHANNEL_BINDINGS, cb.0.to_vec());
        }
        if let Some(spn) = &init.target_spn {
            pairs.pairs.retain(|p| p.id != av_id::TARGET_NAME);
            pairs.push_string(av_id::TARGET_NAME, spn);
        }
        let pairs_bytes = pairs.to_bytes()?;

        let time = server_time
            .or(init.time)
            .unwrap_or_else(crypto::filetime_now);
        let ntowf = Zeroizing::new(crypto::ntowfv2(
            init.creds.password.expose_secret(),
            &init.creds.user,
            &init.creds.domain,
        ));
        let temp = crypto::ntlmv2_temp(time, &init.client_challenge, &pairs_bytes);
        let proof = crypto::nt_proof_str(&ntowf, &chal.server_challenge, &temp);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&temp);
        let lm_response = if use_mic {
            vec![0u8; 24]
        } else {
            crypto::lmv2_response(&ntowf, &chal.server_challenge, &init.client_challenge)
        };
        let key_exchange_key = Zeroizing::new(crypto::session_base_key(&ntowf, &proof));
        let (exported, encrypted_key) = if crypto::uses_key_exchange(flags) {
            (
                init.random_session_key.clone(),
                crypto::rc4k(&key_exchange_key, init.random_session_key.as_ref()),
            )
        } else {
            (key_exchange_key.clone(), Vec::new())
        };

        let msg = AuthenticateMessage {
            flags,
            lm_challenge_response: lm_response,
            nt_challenge_response: nt_response,
            domain: init.creds.domain.clone(),
            user: init.creds.user.clone(),
            workstation: init.workstation.clone(),
            encrypted_random_session_key: encrypted_key,
            version: Some(Version::WINDOWS_SERVER_2022),
            mic: None,
        };
        let mut auth = msg.to_bytes()?;
        if use_mic {
            let mic = crypto::mic(&exported, &self.negotiate, challenge, &auth);
            if let Some(field) = auth.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
                field.copy_from_slice(&mic);
            }
        }
        Ok((
            auth,
            SessionSecurity::new(Role::Initiator, *exported, flags),
        ))
    }
}
