//! MS-WSMV 2.2.9.1 `multipart/encrypted` framing: the DERIVED 274-byte body from the
//! MS-NLMP 4.2.4 session key reproduced exactly, the tolerated variants (no final
//! boundary, `-- Encrypted Boundary`, other boundaries), every failure path as an error
//! rather than a panic, and property tests that arbitrary or mutated input never panics
//! the body parser or the NTLM message parsers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use secrecy::SecretString;
use winrm::encryption::{
    is_encrypted, seal_body, unseal_body, EncryptionError, CONTENT_TYPE, PROTOCOL,
};
use winrm::ntlm::messages::{
    AuthenticateMessage, AvPairs, ChallengeMessage, NegotiateMessage, NtlmV2Response,
};
use winrm::ntlm::{AwaitingAuthenticate, NegotiateFlags, NtlmError, Role, SessionSecurity};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
}

/// testdata/winrm/encrypted_body_ntlm_ms_nlmp_key_seq0.DERIVED.hex (ENCRYPTION.md §6).
const DERIVED_BODY: &str =
    include_str!("../testdata/winrm/encrypted_body_ntlm_ms_nlmp_key_seq0.DERIVED.hex");
/// MS-NLMP §4.2.1 RandomSessionKey (= ExportedSessionKey under KEY_EXCH).
const SPEC_KEY: [u8; 16] = [0x55; 16];
/// MS-NLMP §4.2.4 AUTHENTICATE flags.
const SPEC_FLAGS: NegotiateFlags = NegotiateFlags(0xe288_8235);
/// "Plaintext" in UTF-16LE (MS-NLMP §4.2.1).
const PLAINTEXT: &str = "50006c00610069006e007400650078007400";
/// ms-nlmp-vectors.md §4: client SeqNum 1 signature and sealed bytes (derived).
const SIGNATURE_SEQ1: &str = "01000000255405955d31d8c401000000";
const SEALED_SEQ1: &str = "64c308e09ea236e7f4232553c94a01e700fa";

fn client() -> SessionSecurity {
    SessionSecurity::new(Role::Initiator, SPEC_KEY, SPEC_FLAGS)
}

fn server() -> SessionSecurity {
    SessionSecurity::new(Role::Acceptor, SPEC_KEY, SPEC_FLAGS)
}

fn derived() -> Vec<u8> {
    h(DERIVED_BODY)
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn derived_body_reproduced_exactly() {
    let body = seal_body(&mut client(), &h(PLAINTEXT));
    assert_eq!(body.len(), 274);
    assert_eq!(hex::encode(&body), hex::encode(derived()));
    assert_eq!(
        unseal_body(&mut server(), CONTENT_TYPE, &body).expect("unseal"),
        h(PLAINTEXT)
    );
}

#[test]
fn content_type_constants() {
    assert_eq!(PROTOCOL, "application/HTTP-SPNEGO-session-encrypted");
    assert_eq!(
        CONTENT_TYPE,
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\""
    );
    assert!(is_encrypted(CONTENT_TYPE));
    assert!(is_encrypted(
        "Multipart/Encrypted; protocol=\"application/http-spnego-session-encrypted\"; boundary=\"Encrypted Boundary\""
    ));
    assert!(is_encrypted(
        "multipart/encrypted;protocol=application/HTTP-SPNEGO-session-encrypted"
    ));
    assert!(is_encrypted(
        "multipart/x-multi-encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\""
    ));
    assert!(!is_encrypted("application/soap+xml;charset=UTF-8"));
    assert!(!is_encrypted(
        "multipart/encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\""
    ));
    assert!(!is_encrypted(""));
}

#[test]
fn second_message_continues_the_rc4_stream() {
    let mut c = client();
    let mut s = server();
    let b0 = seal_body(&mut c, &h(PLAINTEXT));
    let b1 = seal_body(&mut c, &h(PLAINTEXT));
    let mut tail = h(SIGNATURE_SEQ1);
    tail.extend_from_slice(&h(SEALED_SEQ1));
    tail.extend_from_slice(b"--Encrypted Boundary--\r\n");
    assert!(b1.ends_with(&tail));
    assert_eq!(
        unseal_body(&mut s, CONTENT_TYPE, &b0).expect("0"),
        h(PLAINTEXT)
    );
    assert_eq!(
        unseal_body(&mut s, CONTENT_TYPE, &b1).expect("1"),
        h(PLAINTEXT)
    );
}

#[test]
fn tolerated_variants() {
    let plain = h(PLAINTEXT);
    // No final boundary.
    let body = derived();
    let cut = &body[..body.len() - "--Encrypted Boundary--\r\n".len()];
    assert_eq!(
        unseal_body(&mut server(), CONTENT_TYPE, cut).expect("no closing"),
        plain
    );
    // Closing boundary without CRLF.
    let cut = &body[..body.len() - 2];
    assert_eq!(
        unseal_body(&mut server(), CONTENT_TYPE, cut).expect("no CRLF"),
        plain
    );
    // Exchange/IIS "-- Encrypted Boundary".
    let spaced = replace(&body, b"--Encrypted Boundary", b"-- Encrypted Boundary");
    assert_eq!(
        unseal_body(&mut server(), CONTENT_TYPE, &spaced).expect("spaced"),
        plain
    );
    // Another boundary, taken from the header (quoted or not).
    let other = replace(&body, b"Encrypted Boundary", b"frontier-42");
    for ct in [
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"frontier-42\"",
        "multipart/encrypted; boundary=frontier-42; protocol=\"application/HTTP-SPNEGO-session-encrypted\"",
    ] {
        assert_eq!(unseal_body(&mut server(), ct, &other).expect(ct), plain);
    }
    // With the wrong boundary in the header it is malformed.
    assert!(matches!(
        unseal_body(&mut server(), CONTENT_TYPE, &other),
        Err(EncryptionError::Malformed(_))
    ));
}

#[test]
fn not_encrypted() {
    match unseal_body(
        &mut server(),
        "application/soap+xml;charset=UTF-8",
        &derived(),
    ) {
        Err(EncryptionError::NotEncrypted { content_type }) => {
            assert!(content_type.starts_with("application/soap"))
        }
        other => panic!("{other:?}"),
    }
}

/// Offset of the signature in the DERIVED body (ENCRYPTION.md §6 table: 0x0d8).
const SIG_AT: usize = 0xd8;
const SEALED_AT: usize = 0xe8;

#[test]
fn tampered_signature_or_ciphertext() {
    for at in [SIG_AT + 4, SIG_AT + 11, SEALED_AT, SEALED_AT + 17] {
        let mut body = derived();
        body[at] ^= 0x01;
        match unseal_body(&mut server(), CONTENT_TYPE, &body) {
            Err(EncryptionError::Signature(NtlmError::SignatureMismatch { seq_num: 0 })) => {}
            other => panic!("flip at {at:#x}: {other:?}"),
        }
    }
    // The sequence number in the signature.
    let mut body = derived();
    body[SIG_AT + 12] = 5;
    assert!(matches!(
        unseal_body(&mut server(), CONTENT_TYPE, &body),
        Err(EncryptionError::Signature(NtlmError::SequenceMismatch {
            expected: 0,
            received: 5
        }))
    ));
    // The signature version.
    let mut body = derived();
    body[SIG_AT] = 2;
    assert!(matches!(
        unseal_body(&mut server(), CONTENT_TYPE, &body),
        Err(EncryptionError::Signature(NtlmError::Malformed { .. }))
    ));
    // A failed message kills the context for the next (valid) one.
    let mut s = server();
    let mut body = derived();
    body[SEALED_AT] ^= 0x01;
    assert!(unseal_body(&mut s, CONTENT_TYPE, &body).is_err());
    assert!(matches!(
        unseal_body(&mut s, CONTENT_TYPE, &derived()),
        Err(EncryptionError::Signature(NtlmError::ContextBroken))
    ));
}

#[test]
fn truncated_body() {
    let body = derived();
    // Truncated inside the ciphertext (no closing boundary left).
    match unseal_body(&mut server(), CONTENT_TYPE, &body[..SEALED_AT + 10]) {
        Err(EncryptionError::LengthMismatch {
            expected: 18,
            actual: 10,
        }) => {}
        other => panic!("{other:?}"),
    }
    // Ciphertext bytes removed but closing boundary kept.
    let mut cut = body[..SEALED_AT + 5].to_vec();
    cut.extend_from_slice(b"--Encrypted Boundary--\r\n");
    assert!(matches!(
        unseal_body(&mut server(), CONTENT_TYPE, &cut),
        Err(EncryptionError::LengthMismatch {
            expected: 18,
            actual: 5
        })
    ));
    // Truncated in the signature, the length field, the headers.
    for end in [SIG_AT + 7, SIG_AT - 2, 0xab + 10, 0x60, 0x10, 1, 0] {
        let r = unseal_body(&mut server(), CONTENT_TYPE, &body[..end]);
        assert!(
            matches!(r, Err(EncryptionError::Malformed(_))),
            "end {end:#x}: {r:?}"
        );
    }
}

#[test]
fn wrong_length_header() {
    for (len, actual) in [("17", 18), ("19", 18), ("0", 18), ("180", 18)] {
        let body = replace(&derived(), b"Length=18", format!("Length={len}").as_bytes());
        match unseal_body(&mut server(), CONTENT_TYPE, &body) {
            Err(EncryptionError::LengthMismatch {
                expected,
                actual: a,
            }) => {
                assert_eq!(expected, len.parse::<usize>().unwrap());
                assert_eq!(a, actual);
            }
            other => panic!("Length={len}: {other:?}"),
        }
    }
    for bad in [
        "Length=",
        "Length=-1",
        "Length=eighteen",
        "Length=99999999999999999999999",
    ] {
        let body = replace(&derived(), b"Length=18", bad.as_bytes());
        assert!(
            matches!(
                unseal_body(&mut server(), CONTENT_TYPE, &body),
                Err(EncryptionError::Malformed(_))
            ),
            "{bad}"
        );
    }
    let body = replace(&derived(), b";Length=18", b"");
    assert!(matches!(
        unseal_body(&mut server(), CONTENT_TYPE, &body),
        Err(EncryptionError::Malformed(_))
    ));
}

#[test]
fn garbage_and_wrong_parts() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"<s:Envelope/>".to_vec(),
        b"--Encrypted Boundary\r\n".to_vec(),
        b"--Encrypted Boundary\r\n--Encrypted Boundary\r\n".to_vec(),
        replace(&derived(), b"application/octet-stream", b"text/plain"),
        replace(
            &derived(),
            b"application/HTTP-SPNEGO-session-encrypted",
            b"application/HTTP-CredSSP-session-encrypted",
        ),
        replace(
            &derived(),
            b"\x10\x00\x00\x00\x01\x00",
            b"\x04\x00\x00\x00\x01\x00",
        ),
        replace(&derived(), b"\tOriginalContent", b"\tXOriginal"),
        vec![0xff; 300],
    ];
    for body in cases {
        let r = unseal_body(&mut server(), CONTENT_TYPE, &body);
        assert!(
            matches!(r, Err(EncryptionError::Malformed(_))),
            "{:?}: {r:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn errors_have_useful_messages() {
    let body = replace(&derived(), b"Length=18", b"Length=20");
    let e = unseal_body(&mut server(), CONTENT_TYPE, &body)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("20") && e.contains("18") && e.contains("tampered"),
        "{e}"
    );
    let e = unseal_body(&mut server(), CONTENT_TYPE, b"junk")
        .unwrap_err()
        .to_string();
    assert!(e.contains("boundary"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Property tests: nothing panics, and nothing altered is accepted as something else.
// ---------------------------------------------------------------------------------------

const PYSPNEGO_ROUNDTRIP: &str = include_str!("../testdata/ntlm/pyspnego-roundtrip-vectors.json");

fn recorded() -> (Vec<u8>, Vec<u8>, Vec<u8>, String) {
    let v: serde_json::Value = serde_json::from_str(PYSPNEGO_ROUNDTRIP).unwrap();
    (
        h(v["negotiate"].as_str().unwrap()),
        h(v["challenge"].as_str().unwrap()),
        h(v["authenticate"].as_str().unwrap()),
        v["password"].as_str().unwrap().to_owned(),
    )
}

fn parse_everything(bytes: &[u8]) {
    let _ = NegotiateMessage::parse(bytes);
    let _ = ChallengeMessage::parse(bytes);
    let _ = AuthenticateMessage::parse(bytes);
    let _ = NtlmV2Response::parse(bytes);
    let _ = AvPairs::parse(bytes, "fuzz");
    if let Ok(p) = AwaitingAuthenticate::from_recorded(&[], bytes) {
        let _ = p.claimed_identity(bytes);
        let _ = p.accept(bytes, &SecretString::from("x".to_owned()));
    }
}

fn ntlm_seed() -> impl Strategy<Value = Vec<u8>> {
    let (neg, chal, auth, _) = recorded();
    prop_oneof![
        Just(neg),
        Just(chal),
        Just(auth),
        Just(h(include_str!(
            "../testdata/ntlm/ms-nlmp-4.2.4.3-authenticate.hex"
        ))),
        Just(h(include_str!(
            "../testdata/ntlm/pyspnego_ntlm_challenge.hex"
        ))),
        Just(h(include_str!(
            "../testdata/ntlm/pyspnego_ntlm_authenticate_no_sign_seal.hex"
        ))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn unseal_body_never_panics_on_random_bytes(body in proptest::collection::vec(any::<u8>(), 0..400),
                                               ct in prop_oneof![Just(CONTENT_TYPE.to_owned()), ".*"]) {
        let _ = unseal_body(&mut server(), &ct, &body);
    }

    #[test]
    fn mutated_bodies_fail_or_yield_the_original(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(), truncate in any::<bool>(),
    ) {
        let mut body = derived();
        for (i, b) in &edits {
            let at = i.index(body.len());
            body[at] = *b;
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        if let Ok(plain) = unseal_body(&mut server(), CONTENT_TYPE, &body) {
            prop_assert_eq!(plain, h(PLAINTEXT));
        }
    }

    #[test]
    fn ntlm_parsers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        parse_everything(&bytes);
        // Also with a valid header so the field checks are reached.
        for t in 1u8..=3 {
            let mut m = b"NTLMSSP\0".to_vec();
            m.extend_from_slice(&[t, 0, 0, 0]);
            m.extend_from_slice(&bytes);
            parse_everything(&m);
        }
    }

    #[test]
    fn ntlm_parsers_never_panic_on_mutated_tokens(
        seed in ntlm_seed(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut m = seed;
        for (i, b) in &edits {
            let at = i.index(m.len());
            m[at] = *b;
        }
        parse_everything(&m);
        m.truncate(cut.index(m.len() + 1));
        parse_everything(&m);
    }

    /// Every byte of the recorded AUTHENTICATE is covered by NTProofStr or the MIC: any
    /// change is rejected (and never panics).
    #[test]
    fn any_change_to_a_mic_protected_authenticate_is_rejected(
        i in any::<prop::sample::Index>(), x in 1u8..=255, truncate in any::<bool>(),
    ) {
        let (neg, chal, mut auth, password) = recorded();
        let at = i.index(auth.len());
        if truncate {
            auth.truncate(at);
        } else {
            auth[at] ^= x;
        }
        let pending = AwaitingAuthenticate::from_recorded(&neg, &chal).unwrap();
        let r = pending.accept(&auth, &SecretString::from(password));
        prop_assert!(r.is_err(), "change at {} accepted", at);
    }
}
