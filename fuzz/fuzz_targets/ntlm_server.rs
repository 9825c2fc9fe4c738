//! The server side of NTLM (the lab and `winrm::server`): what a client sends.
//! NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1), AUTHENTICATE_MESSAGE (2.2.1.3), the NTLMv2 response
//! and its AV pairs (2.2.2.8, 2.2.2.1), and the acceptor's checks (3.2.5.1.2).
//!
//! The first byte picks what the rest is: 0..=2 a raw message for the parsers and the
//! acceptor; otherwise the rest replaces the fields of a genuine AUTHENTICATE that the
//! NTProofStr does not cover (flags, workstation, session key, MIC, Version), so the key
//! exchange, MIC and channel-binding checks behind the proof see hostile values too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::ntlm::messages::{AuthenticateMessage, NegotiateMessage, NtlmV2Response};
use winrm::ntlm::{
    Acceptor, AwaitingAuthenticate, CbtHardening, ChannelBindings, Credentials, Initiator,
    NegotiateFlags, ServerIdentity,
};
use winrm::secret::secret;

const PASSWORD: &str = "Fuzz-Passw0rd!";

fn identity() -> ServerIdentity {
    ServerIdentity {
        nb_domain: "LAB".into(),
        nb_computer: "WS0001".into(),
        dns_domain: "lab.test".into(),
        dns_computer: "ws0001.lab.test".into(),
    }
}

/// A server that has answered a genuine NEGOTIATE, and the genuine AUTHENTICATE.
fn handshake() -> Option<(AwaitingAuthenticate, Vec<u8>)> {
    let creds = Credentials::new("LAB", "svc-fuzz", secret(PASSWORD));
    let init = Initiator::with_fixed_inputs(creds, "CLIENT", [3; 8], [4; 16], None)
        .with_target_spn("HTTP/ws0001.lab.test");
    let (negotiate, client) = init.negotiate();
    let acceptor = Acceptor::with_fixed_challenge(identity(), [5; 8], 133_000_000_000_000_000);
    let (challenge, server) = acceptor.challenge(&negotiate).ok()?;
    let (authenticate, _) = client.authenticate(&challenge).ok()?;
    Some((server, authenticate))
}

fn with_bindings(server: AwaitingAuthenticate, selector: u8) -> AwaitingAuthenticate {
    match selector % 3 {
        0 => server,
        1 => server.check_channel_bindings(CbtHardening::Relaxed, ChannelBindings::ZERO),
        _ => server.check_channel_bindings(CbtHardening::Strict, ChannelBindings::ZERO),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let _ = NegotiateMessage::parse(rest);
            let acceptor = Acceptor::with_fixed_challenge(identity(), [5; 8], 0);
            if let Ok((challenge, _)) = acceptor.challenge(rest) {
                winrm::ntlm::messages::ChallengeMessage::parse(&challenge)
                    .expect("our own CHALLENGE parses");
            }
        }
        1 => {
            let _ = NtlmV2Response::parse(rest);
            if let Ok(auth) = AuthenticateMessage::parse(rest) {
                if let Ok(bytes) = auth.to_bytes() {
                    AuthenticateMessage::parse(&bytes).expect("our own AUTHENTICATE parses");
                }
            }
        }
        2 => {
            let Some((server, _)) = handshake() else {
                return;
            };
            let server = with_bindings(server, rest.first().copied().unwrap_or(0));
            let _ = server.claimed_identity(rest);
            let _ = server.accept(rest, &secret(PASSWORD));
        }
        _ => {
            let Some((server, genuine)) = handshake() else {
                return;
            };
            let Ok(mut auth) = AuthenticateMessage::parse(&genuine) else {
                return;
            };
            let Ok(hostile) = AuthenticateMessage::parse(rest) else {
                return;
            };
            auth.flags = NegotiateFlags(hostile.flags.0);
            auth.workstation = hostile.workstation;
            auth.encrypted_random_session_key = hostile.encrypted_random_session_key;
            auth.mic = hostile.mic;
            auth.version = hostile.version;
            let Ok(bytes) = auth.to_bytes() else {
                return;
            };
            let server = with_bindings(server, mode);
            if let Ok(mut session) = server.accept(&bytes, &secret(PASSWORD)) {
                let _ = session.wrap(b"<s:Envelope/>");
                let _ = session.unwrap(&[0; 16], b"sealed");
            }
        }
    }
});
