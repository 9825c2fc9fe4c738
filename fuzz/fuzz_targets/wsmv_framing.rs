//! MS-WSMV 2.2.9.1 encrypted framing (`multipart/encrypted` bodies sealed with NTLM,
//! MS-NLMP 3.4.3): what a server answers us, and what a client sends the lab.
//!
//! The first byte picks the mode: 0 a raw `Content-Type` line and body; 1 a round trip of
//! an arbitrary plaintext (seal then unseal must give it back); otherwise a genuinely
//! sealed message inside hostile framing (the header part, its `Length=`, and what
//! follows the data are the fuzzer's), so the parser's checks after the signature run too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::encryption::{seal_body, unseal_body, CONTENT_TYPE};
use winrm::ntlm::{NegotiateFlags, Role, SessionSecurity};

/// MS-NLMP 4.2.4: the flags and exported session key of the spec's NTLMv2 example.
const FLAGS: NegotiateFlags = NegotiateFlags(0xe288_8235);
const KEY: [u8; 16] = [0x55; 16];

fn pair() -> (SessionSecurity, SessionSecurity) {
    (
        SessionSecurity::new(Role::Initiator, KEY, FLAGS),
        SessionSecurity::new(Role::Acceptor, KEY, FLAGS),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            // Content-Type up to the first NUL, body after it.
            let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let content_type = String::from_utf8_lossy(&rest[..cut]);
            let body = rest.get(cut + 1..).unwrap_or_default();
            let (_, mut server) = pair();
            let _ = unseal_body(&mut server, &content_type, body);
            let _ = unseal_body(&mut server, CONTENT_TYPE, body);
            let _ = winrm::encryption::is_encrypted(&content_type);
        }
        1 => {
            let (mut client, mut server) = pair();
            let body = seal_body(&mut client, rest);
            let opened = unseal_body(&mut server, CONTENT_TYPE, &body).expect("our own body opens");
            assert_eq!(opened, rest, "seal/unseal round trip");
        }
        _ => {
            // rest = header text NUL trailer; the sealed message is a fixed envelope.
            let plaintext = b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"/>";
            let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let header = &rest[..cut];
            let trailer = rest.get(cut + 1..).unwrap_or_default();
            let (mut client, mut server) = pair();
            let (signature, sealed) = client.wrap(plaintext);
            let mut body = Vec::new();
            body.extend_from_slice(b"--Encrypted Boundary\r\n");
            body.extend_from_slice(header);
            body.extend_from_slice(
                b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n",
            );
            body.extend_from_slice(&16u32.to_le_bytes());
            body.extend_from_slice(&signature);
            body.extend_from_slice(&sealed);
            body.extend_from_slice(trailer);
            if let Ok(opened) = unseal_body(&mut server, CONTENT_TYPE, &body) {
                assert_eq!(opened, plaintext, "a verified body is the sealed plaintext");
            }
        }
    }
});
