//! The client side of NTLM: what a server (or anything posing as one) sends us.
//! CHALLENGE_MESSAGE and its TargetInfo AV pairs (MS-NLMP 2.2.1.2, 2.2.2.1), and the
//! initiator's answer to it (MS-NLMP 3.1.5.1.2), including the session it establishes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::ntlm::messages::{AuthenticateMessage, AvPairs, ChallengeMessage};
use winrm::ntlm::{Credentials, Initiator};

fuzz_target!(|data: &[u8]| {
    let _ = AvPairs::parse(data, "fuzz AvPairs");
    if let Ok(challenge) = ChallengeMessage::parse(data) {
        // What we parse we can write again, and what we wrote parses to a fixed point.
        if let Ok(bytes) = challenge.to_bytes() {
            let again = ChallengeMessage::parse(&bytes).expect("our own CHALLENGE parses");
            assert_eq!(again.to_bytes().ok(), Some(bytes), "CHALLENGE round trip");
        }
    }
    let creds = Credentials::new("LAB", "svc-fuzz", winrm::secret::secret("Fuzz-Passw0rd!"));
    let initiator = Initiator::with_fixed_inputs(creds, "WS0001", [1; 8], [2; 16], None)
        .with_target_spn("HTTP/ws0001.lab.test");
    let (_negotiate, awaiting) = initiator.negotiate();
    if let Ok((authenticate, mut session)) = awaiting.authenticate(data) {
        AuthenticateMessage::parse(&authenticate).expect("our own AUTHENTICATE parses");
        let _ = session.wrap(b"<s:Envelope/>");
        let _ = session.unwrap(&[0; 16], b"sealed");
    }
});
