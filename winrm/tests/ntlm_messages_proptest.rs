//! Property tests of the NTLM message codecs (MS-NLMP 2.2.1): every NEGOTIATE, CHALLENGE
//! and AUTHENTICATE we can build parses back to itself, and a message whose
//! security-buffer fields (length, allocated length, offset) or fixed fields lie never
//! panics the parsers. `encryption.rs` covers random and mutated bytes against captured
//! tokens; these start from generated messages, so every field combination is reached.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use winrm::ntlm::messages::{
    av_id, AuthenticateMessage, AvPair, AvPairs, ChallengeMessage, NegotiateMessage, NtlmV2Response,
};
use winrm::ntlm::{NegotiateFlags, Version};

fn version() -> impl Strategy<Value = Version> {
    (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>()).prop_map(
        |(major, minor, build, ntlm_revision)| Version {
            major,
            minor,
            build,
            ntlm_revision,
        },
    )
}

/// Flags with UNICODE set (the strings round-trip exactly only as UTF-16), and the
/// Version to carry: present exactly when NEGOTIATE_VERSION is set, as the parsers read it.
fn flags_and_version() -> impl Strategy<Value = (NegotiateFlags, Option<Version>)> {
    (any::<u32>(), version()).prop_map(|(bits, v)| {
        let flags = NegotiateFlags(bits | NegotiateFlags::UNICODE.0);
        let v = flags.contains(NegotiateFlags::VERSION).then_some(v);
        (flags, v)
    })
}

/// AV pairs other than MsvAvEOL, with the fixed lengths MS-NLMP 2.2.2.1 requires.
fn av_pairs() -> impl Strategy<Value = AvPairs> {
    proptest::collection::vec(
        (1u16..=12, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(id, mut value)| {
            let want = match id {
                av_id::FLAGS => Some(4),
                av_id::TIMESTAMP => Some(8),
                av_id::CHANNEL_BINDINGS => Some(16),
                _ => None,
            };
            if let Some(n) = want {
                value.resize(n, 0xA5);
            }
            AvPair { id, value }
        }),
        0..6,
    )
    .prop_map(|pairs| AvPairs { pairs })
}

fn negotiate() -> impl Strategy<Value = NegotiateMessage> {
    // Our NEGOTIATE carries no domain or workstation (as pyspnego's and Windows' do not).
    flags_and_version().prop_map(|(flags, version)| NegotiateMessage {
        flags,
        domain: String::new(),
        workstation: String::new(),
        version,
    })
}

fn challenge() -> impl Strategy<Value = ChallengeMessage> {
    (
        flags_and_version(),
        "\\PC{0,16}",
        any::<[u8; 8]>(),
        av_pairs(),
    )
        .prop_map(
            |((flags, version), target_name, server_challenge, target_info)| ChallengeMessage {
                flags,
                target_name,
                server_challenge,
                target_info,
                version,
            },
        )
}

fn authenticate() -> impl Strategy<Value = AuthenticateMessage> {
    (
        flags_and_version(),
        proptest::collection::vec(any::<u8>(), 0..30),
        proptest::collection::vec(any::<u8>(), 0..120),
        ("\\PC{0,12}", "\\PC{0,20}", "\\PC{0,15}"),
        proptest::collection::vec(any::<u8>(), 0..=16),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |((flags, version), lm, nt, (domain, user, workstation), key, mic)| {
                AuthenticateMessage {
                    flags,
                    lm_challenge_response: lm,
                    nt_challenge_response: nt,
                    domain,
                    user,
                    workstation,
                    encrypted_random_session_key: key,
                    version,
                    // The fixed part always has room for a MIC, so it always parses back.
                    mic: Some(mic),
                }
            },
        )
}

/// Parses `bytes` with every parser; the result does not matter, a panic does.
fn parse_all(bytes: &[u8]) {
    let _ = NegotiateMessage::parse(bytes);
    let _ = ChallengeMessage::parse(bytes);
    let _ = AuthenticateMessage::parse(bytes);
    let _ = AvPairs::parse(bytes, "proptest");
    let _ = NtlmV2Response::parse(bytes);
}

/// Overwrites the little-endian `value` at `at` (clipped to the message).
fn poke(m: &mut [u8], at: usize, value: &[u8]) {
    for (i, b) in value.iter().enumerate() {
        if let Some(slot) = m.get_mut(at + i) {
            *slot = *b;
        }
    }
}

/// Offsets of the security-buffer descriptors (Len u16, MaxLen u16, Offset u32) of each
/// message type (MS-NLMP 2.2.1.1–2.2.1.3).
fn descriptor_offsets(message_type: u8) -> &'static [usize] {
    match message_type {
        1 => &[16, 24],
        2 => &[12, 40],
        _ => &[12, 20, 28, 36, 44, 52],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn negotiate_round_trips(m in negotiate()) {
        prop_assert_eq!(NegotiateMessage::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn challenge_round_trips(m in challenge()) {
        prop_assert_eq!(ChallengeMessage::parse(&m.to_bytes().unwrap()).unwrap(), m);
    }

    #[test]
    fn authenticate_round_trips(m in authenticate()) {
        prop_assert_eq!(AuthenticateMessage::parse(&m.to_bytes().unwrap()).unwrap(), m);
    }

    #[test]
    fn av_pairs_round_trip(p in av_pairs()) {
        prop_assert_eq!(AvPairs::parse(&p.to_bytes().unwrap(), "proptest").unwrap(), p);
    }

    /// Security buffers that point anywhere (past the end, into the header, overlapping,
    /// lengths up to 0xffff, offsets up to 0xffffffff) are errors or values, never panics.
    #[test]
    fn lying_security_buffers_never_panic(
        which in 0u8..3,
        n in negotiate(), c in challenge(), a in authenticate(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<u16>(), any::<u16>(), any::<u32>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let (mut m, t) = match which {
            0 => (n.to_bytes(), 1u8),
            1 => (c.to_bytes().unwrap(), 2),
            _ => (a.to_bytes().unwrap(), 3),
        };
        let fields = descriptor_offsets(t);
        for (i, len, max, off) in &edits {
            let at = fields[i.index(fields.len())];
            poke(&mut m, at, &len.to_le_bytes());
            poke(&mut m, at + 2, &max.to_le_bytes());
            poke(&mut m, at + 4, &off.to_le_bytes());
        }
        parse_all(&m);
        m.truncate(cut.index(m.len() + 1));
        parse_all(&m);
    }

    /// Any byte of a generated message changed, and any prefix of it: never a panic.
    #[test]
    fn mutated_generated_messages_never_panic(
        which in 0u8..3,
        n in negotiate(), c in challenge(), a in authenticate(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut m = match which {
            0 => n.to_bytes(),
            1 => c.to_bytes().unwrap(),
            _ => a.to_bytes().unwrap(),
        };
        for (i, b) in &edits {
            let at = i.index(m.len());
            m[at] = *b;
        }
        parse_all(&m);
        m.truncate(cut.index(m.len() + 1));
        parse_all(&m);
    }

    /// AV pair lists with lying lengths and no terminator: errors, never panics.
    #[test]
    fn av_pair_lists_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = AvPairs::parse(&bytes, "proptest");
        let _ = NtlmV2Response::parse(&bytes);
    }
}
