//! The NTLMv2 cryptographic functions, each a pure function of its inputs so the MS-NLMP
//! 4.2.4 test vectors can check it alone: NTOWFv2 and the NTLMv2 response (MS-NLMP
//! 3.3.2), key exchange (3.1.5.1.2, 3.4.5.1), SIGNKEY and SEALKEY (3.4.5.2, 3.4.5.3) and
//! the MIC (3.1.5.1.2).
//!
//! NTOWFv1 is MD4 (the `md4` crate) over the UTF-16LE password in a buffer that is
//! zeroized on drop, so the password is never copied into memory left behind. NTOWFv2
//! upper-cases the user with Windows' simple one-to-one case mapping (`ß` stays `ß`), not
//! Unicode's full mapping (`ß` → `SS`), which would change the length.
//!
//! Key material is zeroized too: the HMAC key block here, the RC4 state (on drop; RC4 is
//! the crate's own loop, `ntlm/rc4.rs`) and, in the callers, every derived key
//! (`Zeroizing`). The `hmac` and `md-5` 0.10 crates cannot zeroize their inner digest
//! states, including the keyed HMAC each sealing direction keeps for its lifetime.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::messages::{utf16le, NegotiateFlags};
use super::rc4::Rc4;

/// Which way a message travels; selects the SIGNKEY/SEALKEY magic constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Initiator to acceptor ("client-to-server").
    ClientToServer,
    /// Acceptor to initiator ("server-to-client").
    ServerToClient,
}

// MS-NLMP 3.4.5.2 / 3.4.5.3: the constants are hashed including their NUL terminator.
const CLIENT_SIGN_MAGIC: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGN_MAGIC: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEAL_MAGIC: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEAL_MAGIC: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// HMAC_MD5(key, parts...) for a 16-byte key.
///
/// RFC 2104 §2 zero-pads keys shorter than the 64-byte block, so handing HMAC the padded
/// block directly is the same function and cannot fail.
pub fn hmac_md5(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    hmac_md5_keyed(&hmac_md5_key(key), parts)
}

/// HMAC-MD5 keyed with a 16-byte key, ready to be cloned for each message under the same
/// key: keying hashes the two padded key blocks (RFC 2104 §2), which a clone skips.
pub(crate) fn hmac_md5_key(key: &[u8; 16]) -> Hmac<Md5> {
    let mut block = Zeroizing::new([0u8; 64]);
    for (d, s) in block.iter_mut().zip(key.iter()) {
        *d = *s;
    }
    <Hmac<Md5> as KeyInit>::new((&*block).into())
}

/// HMAC_MD5(key, parts...) from an already keyed HMAC (see [`hmac_md5_key`]).
pub(crate) fn hmac_md5_keyed(keyed: &Hmac<Md5>, parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = keyed.clone();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// MD5(parts...).
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A fresh RC4 handle keyed with a 16-byte key.
pub(crate) fn rc4_handle(key: &[u8; 16]) -> Rc4 {
    Rc4::new(key)
}

/// RC4K(key, data): one-shot RC4 with a fresh handle (MS-NLMP 6 "RC4K").
pub fn rc4k(key: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    rc4_handle(key).apply_keystream(&mut out);
    out
}

/// NTOWFv1 = MD4(UNICODE(password)) (MS-NLMP 3.3.1; NTOWFv2 in 3.3.2 builds on it).
///
/// The UTF-16LE copy of the password lives in one buffer, sized up front so it never
/// reallocates (a UTF-16 code unit per UTF-8 byte at most), and zeroized on drop.
pub fn ntowfv1(password: &str) -> [u8; 16] {
    let mut unicode = Zeroizing::new(Vec::with_capacity(password.len().saturating_mul(2)));
    for unit in password.encode_utf16() {
        unicode.extend_from_slice(&unit.to_le_bytes());
    }
    Md4::digest(unicode.as_slice()).into()
}

/// Windows-style upper-casing: each character maps to its upper case only when that is a
/// single character (RtlUpcaseUnicodeString does simple case mapping).
fn upper_simple(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// NTOWFv2 from an NT hash = HMAC_MD5(NTOWFv1, UNICODE(Uppercase(user) ‖ domain))
/// (MS-NLMP 3.3.2). The domain is not upper-cased.
pub fn ntowfv2_from_hash(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let user = utf16le(&upper_simple(user));
    let domain = utf16le(domain);
    hmac_md5(nt_hash, &[&user, &domain])
}

/// NTOWFv2(password, user, domain) (MS-NLMP 3.3.2).
pub fn ntowfv2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    ntowfv2_from_hash(&ntowfv1(password), user, domain)
}

/// The NTLMv2 client challenge "temp" (MS-NLMP 3.3.2, layout 2.2.2.7):
/// `01 01 Z(6) Time ClientChallenge Z(4) AvPairs Z(4)`, where `av_pairs` already ends
/// with MsvAvEOL.
pub fn ntlmv2_temp(time: u64, client_challenge: &[u8; 8], av_pairs: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(32 + av_pairs.len());
    t.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    t.extend_from_slice(&time.to_le_bytes());
    t.extend_from_slice(client_challenge);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(av_pairs);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t
}

/// NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ‖ temp) (MS-NLMP 3.3.2).
pub fn nt_proof_str(ntowfv2: &[u8; 16], server_challenge: &[u8; 8], temp: &[u8]) -> [u8; 16] {
    hmac_md5(ntowfv2, &[server_challenge, temp])
}

/// LMv2 response = HMAC_MD5(NTOWFv2, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge
/// (MS-NLMP 3.3.2).
pub fn lmv2_response(
    ntowfv2: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> Vec<u8> {
    let mut r = hmac_md5(ntowfv2, &[server_challenge, client_challenge]).to_vec();
    r.extend_from_slice(client_challenge);
    r
}

/// SessionBaseKey = HMAC_MD5(NTOWFv2, NTProofStr) (MS-NLMP 3.3.2); for NTLMv2 it is also
/// the KeyExchangeKey (MS-NLMP 3.4.5.1).
pub fn session_base_key(ntowfv2: &[u8; 16], nt_proof_str: &[u8; 16]) -> [u8; 16] {
    hmac_md5(ntowfv2, &[nt_proof_str])
}

/// Whether the ExportedSessionKey is exchanged (encrypted with the KeyExchangeKey) rather
/// than equal to it: KEY_EXCH together with SIGN or SEAL (MS-NLMP 3.1.5.1.2, as pyspnego
/// and Windows apply it).
pub fn uses_key_exchange(flags: NegotiateFlags) -> bool {
    flags.contains(NegotiateFlags::KEY_EXCH)
        && flags.intersects(NegotiateFlags::SIGN | NegotiateFlags::SEAL)
}

/// SIGNKEY (MS-NLMP 3.4.5.2, with extended session security):
/// MD5(ExportedSessionKey ‖ direction's signing magic constant).
pub fn sign_key(exported_session_key: &[u8; 16], direction: Direction) -> [u8; 16] {
    let magic = match direction {
        Direction::ClientToServer => CLIENT_SIGN_MAGIC,
        Direction::ServerToClient => SERVER_SIGN_MAGIC,
    };
    md5(&[exported_session_key, magic])
}

/// SEALKEY (MS-NLMP 3.4.5.3, with extended session security): MD5 of the first 16 (128),
/// 7 (56) or 5 (neither) bytes of ExportedSessionKey ‖ the direction's sealing constant.
pub fn seal_key(
    exported_session_key: &[u8; 16],
    flags: NegotiateFlags,
    direction: Direction,
) -> [u8; 16] {
    let magic = match direction {
        Direction::ClientToServer => CLIENT_SEAL_MAGIC,
        Direction::ServerToClient => SERVER_SEAL_MAGIC,
    };
    let n = if flags.contains(NegotiateFlags::NEGOTIATE_128) {
        16
    } else if flags.contains(NegotiateFlags::NEGOTIATE_56) {
        7
    } else {
        5
    };
    let key = exported_session_key
        .get(..n)
        .unwrap_or(exported_session_key);
    md5(&[key, magic])
}

/// MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE), the
/// AUTHENTICATE with its MIC field zeroed (MS-NLMP 3.1.5.1.2).
pub fn mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
) -> [u8; 16] {
    hmac_md5(exported_session_key, &[negotiate, challenge, authenticate])
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The current time as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC).
pub fn filetime_now() -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = since.as_secs().saturating_mul(10_000_000) + u64::from(since.subsec_nanos() / 100);
    UNIX_EPOCH_AS_FILETIME.saturating_add(ticks)
}
