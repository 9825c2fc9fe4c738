//! NTLM session security after a successful handshake: sealing and signing of messages,
//! connection-oriented, with extended session security (MS-NLMP 3.4.3 and 3.4.4.2).
//!
//! Each direction has its own signing key, its own RC4 sealing handle created once for
//! the whole context (never reset), and its own sequence number starting at 0. The
//! initiator sends with the client-to-server keys and receives with the server-to-client
//! ones; the acceptor the other way round.
//!
//! RC4 keystream order for one message (MS-NLMP 3.4.3, 3.4.4.2): the message bytes are
//! encrypted first, then, with KEY_EXCH, the 8-byte checksum, both with the same handle.

use std::fmt;

use hmac::Hmac;
use md5::Md5;
use zeroize::Zeroizing;

use super::crypto::{self, Direction};
use super::messages::NegotiateFlags;
use super::rc4::Rc4;
use super::NtlmError;

/// Which side of the context this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client: sends client-to-server, receives server-to-client.
    Initiator,
    /// The server: sends server-to-client, receives client-to-server.
    Acceptor,
}

/// One direction's state. The signing key is kept as an HMAC already keyed with it
/// (cloned per message rather than re-keyed: the same MAC for less work); like every
/// HMAC-MD5 state of the `hmac` 0.12 line, it cannot be zeroized (see [`crypto`]).
struct Channel {
    sign: Hmac<Md5>,
    handle: Rc4,
    seq: u32,
}

impl Channel {
    fn new(exported_session_key: &[u8; 16], flags: NegotiateFlags, direction: Direction) -> Self {
        let seal_key = Zeroizing::new(crypto::seal_key(exported_session_key, flags, direction));
        let sign_key = Zeroizing::new(crypto::sign_key(exported_session_key, direction));
        Self {
            sign: crypto::hmac_md5_key(&sign_key),
            handle: crypto::rc4_handle(&seal_key),
            seq: 0,
        }
    }

    /// HMAC_MD5(SigningKey, SeqNum ‖ Message)[0..8] (MS-NLMP 3.4.4.2), before RC4.
    fn mac(&self, seq: u32, plaintext: &[u8]) -> [u8; 8] {
        let mac = crypto::hmac_md5_keyed(&self.sign, &[&seq.to_le_bytes(), plaintext]);
        let [c0, c1, c2, c3, c4, c5, c6, c7, ..] = mac;
        [c0, c1, c2, c3, c4, c5, c6, c7]
    }

    /// The checksum from the MAC (MS-NLMP 3.4.4.2): RC4 with this direction's sealing
    /// handle under KEY_EXCH. Must run after the message itself went through the handle.
    fn seal_checksum(&mut self, mut mac: [u8; 8], key_exch: bool) -> [u8; 8] {
        if key_exch {
            self.handle.apply_keystream(&mut mac);
        }
        mac
    }
}

/// NTLMSSP_MESSAGE_SIGNATURE (MS-NLMP 2.2.2.9.1): Version 1 ‖ Checksum ‖ SeqNum.
fn signature_bytes(checksum: [u8; 8], seq: u32) -> [u8; 16] {
    let [c0, c1, c2, c3, c4, c5, c6, c7] = checksum;
    let [s0, s1, s2, s3] = seq.to_le_bytes();
    [1, 0, 0, 0, c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3]
}

/// The established security context: seals outgoing and unseals incoming messages.
///
/// Messages must be processed in order on one context. After [`unwrap`](Self::unwrap)
/// fails once, the context is dead — its RC4 state is out of step with the peer's — and
/// every later `unwrap` returns [`NtlmError::ContextBroken`]; drop it and authenticate
/// again (as pypsrp does on any failure).
///
/// `Debug` prints the role, flags and sequence numbers, never key material.
pub struct SessionSecurity {
    role: Role,
    flags: NegotiateFlags,
    exported_session_key: Zeroizing<[u8; 16]>,
    outgoing: Channel,
    incoming: Channel,
    broken: bool,
}

impl fmt::Debug for SessionSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecurity")
            .field("role", &self.role)
            .field("flags", &self.flags)
            .field("seq_out", &self.outgoing.seq)
            .field("seq_in", &self.incoming.seq)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl SessionSecurity {
    /// A context from the ExportedSessionKey and the negotiated flags (those of the
    /// AUTHENTICATE message). Extended session security is assumed (the initiator and
    /// acceptor refuse to negotiate without it); NEGOTIATE_128/56 choose the sealing-key
    /// strength and KEY_EXCH whether the checksum is RC4-encrypted.
    pub fn new(role: Role, exported_session_key: [u8; 16], flags: NegotiateFlags) -> Self {
        let (out_dir, in_dir) = match role {
            Role::Initiator => (Direction::ClientToServer, Direction::ServerToClient),
            Role::Acceptor => (Direction::ServerToClient, Direction::ClientToServer),
        };
        let key = Zeroizing::new(exported_session_key);
        Self {
            role,
            flags,
            outgoing: Channel::new(&key, flags, out_dir),
            incoming: Channel::new(&key, flags, in_dir),
            exported_session_key: key,
            broken: false,
        }
    }

    /// Which side this context is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated flags.
    pub fn flags(&self) -> NegotiateFlags {
        self.flags
    }

    /// Whether sealing (confidentiality) was negotiated. Without it the peer will not
    /// accept sealed messages.
    pub fn sealing_negotiated(&self) -> bool {
        self.flags.contains(NegotiateFlags::SEAL)
    }

    /// The next outgoing and expected incoming sequence numbers.
    pub fn sequence_numbers(&self) -> (u32, u32) {
        (self.outgoing.seq, self.incoming.seq)
    }

    /// The ExportedSessionKey, for test vectors only.
    #[doc(hidden)]
    pub fn exported_session_key(&self) -> &[u8; 16] {
        &self.exported_session_key
    }

    fn key_exch(&self) -> bool {
        self.flags.contains(NegotiateFlags::KEY_EXCH)
    }

    /// Seals `plaintext` for the peer (GSS_WrapEx, MS-NLMP 3.4.3): returns the 16-byte
    /// signature and the RC4-sealed message, and advances the outgoing sequence number.
    pub fn wrap(&mut self, plaintext: &[u8]) -> ([u8; 16], Vec<u8>) {
        let mut sealed = plaintext.to_vec();
        let signature = self.wrap_in_place(&mut sealed);
        (signature, sealed)
    }

    /// [`wrap`](Self::wrap) without a copy: seals `message` where it lies and returns the
    /// 16-byte signature.
    pub fn wrap_in_place(&mut self, message: &mut [u8]) -> [u8; 16] {
        let key_exch = self.key_exch();
        let seq = self.outgoing.seq;
        // The MAC is over the plaintext; the keystream order is the message, then the
        // checksum (MS-NLMP 3.4.3).
        let mac = self.outgoing.mac(seq, message);
        self.outgoing.handle.apply_keystream(message);
        let checksum = self.outgoing.seal_checksum(mac, key_exch);
        self.outgoing.seq = seq.wrapping_add(1);
        signature_bytes(checksum, seq)
    }

    /// Unseals a message from the peer (GSS_UnwrapEx, MS-NLMP 3.4.3, 3.4.4.2): decrypts
    /// `sealed`, checks that `signature` has Version 1, the expected sequence number and
    /// the right checksum, and advances the incoming sequence number.
    ///
    /// On any error the context is dead (see the type's documentation).
    pub fn unwrap(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let mut plaintext = sealed.to_vec();
        self.unwrap_in_place(signature, &mut plaintext)?;
        Ok(plaintext)
    }

    /// [`unwrap`](Self::unwrap) without a copy: decrypts `message` where it lies. After an
    /// error the context is dead and `message` holds no plaintext: it is untouched when
    /// the signature is refused before decryption, and zeroed when the checksum fails.
    pub fn unwrap_in_place(
        &mut self,
        signature: &[u8],
        message: &mut [u8],
    ) -> Result<(), NtlmError> {
        if self.broken {
            return Err(NtlmError::ContextBroken);
        }
        // Poisoned until proven good: every early return leaves the context dead.
        self.broken = true;
        let sig: [u8; 16] = signature.try_into().map_err(|_| {
            NtlmError::malformed(
                "message signature",
                format!("signature is {} bytes, expected 16", signature.len()),
            )
        })?;
        let [v0, v1, v2, v3, c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3] = sig;
        let version = u32::from_le_bytes([v0, v1, v2, v3]);
        if version != 1 {
            return Err(NtlmError::malformed(
                "message signature",
                format!("Version is {version}, expected 1"),
            ));
        }
        let expected = self.incoming.seq;
        let received = u32::from_le_bytes([s0, s1, s2, s3]);
        if received != expected {
            return Err(NtlmError::SequenceMismatch { expected, received });
        }
        let key_exch = self.key_exch();
        self.incoming.handle.apply_keystream(message);
        let mac = self.incoming.mac(expected, message);
        let checksum = self.incoming.seal_checksum(mac, key_exch);
        if !crypto::ct_eq(&checksum, &[c0, c1, c2, c3, c4, c5, c6, c7]) {
            // Decrypted but not authentic: leave none of it for the caller to use.
            message.fill(0);
            return Err(NtlmError::SignatureMismatch { seq_num: expected });
        }
        self.incoming.seq = expected.wrapping_add(1);
        self.broken = false;
        Ok(())
    }
}
