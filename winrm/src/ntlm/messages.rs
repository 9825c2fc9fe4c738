//! The three NTLM handshake messages (MS-NLMP 2.2.1.1 NEGOTIATE, 2.2.1.2 CHALLENGE,
//! 2.2.1.3 AUTHENTICATE), their negotiate flags (2.2.2.5), VERSION (2.2.2.10), AV pairs
//! (2.2.2.1) and the NTLMv2 response (2.2.2.8, 2.2.2.7).
//!
//! Parsing goes through a bounded [`Reader`]: every length and offset read from the wire
//! is checked against the message before use, so malformed or hostile input yields an
//! [`NtlmError::Malformed`] naming the field, never a panic or an out-of-range read.

use std::fmt;

use super::NtlmError;

/// `NTLMSSP\0`, the signature that starts every message (MS-NLMP 2.2.1).
pub const SIGNATURE: [u8; 8] = *b"NTLMSSP\0";

/// Offset of the MIC in an AUTHENTICATE message that carries a Version field
/// (MS-NLMP 2.2.1.3: 64 bytes of fixed fields, 8 bytes of Version, then the MIC).
pub const MIC_OFFSET: usize = 72;

/// NEGOTIATE_* flags (MS-NLMP 2.2.2.5). A plain `u32` newtype with named constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NegotiateFlags(pub u32);

impl NegotiateFlags {
    /// NTLMSSP_NEGOTIATE_UNICODE (A): strings are UTF-16LE.
    pub const UNICODE: Self = Self(0x0000_0001);
    /// NTLM_NEGOTIATE_OEM (B): strings are in the OEM code page.
    pub const OEM: Self = Self(0x0000_0002);
    /// NTLMSSP_REQUEST_TARGET (C): the server must send TargetName.
    pub const REQUEST_TARGET: Self = Self(0x0000_0004);
    /// NTLMSSP_NEGOTIATE_SIGN (D): message integrity.
    pub const SIGN: Self = Self(0x0000_0010);
    /// NTLMSSP_NEGOTIATE_SEAL (E): message confidentiality.
    pub const SEAL: Self = Self(0x0000_0020);
    /// NTLMSSP_NEGOTIATE_DATAGRAM (F): connectionless mode.
    pub const DATAGRAM: Self = Self(0x0000_0040);
    /// NTLMSSP_NEGOTIATE_LM_KEY (G).
    pub const LM_KEY: Self = Self(0x0000_0080);
    /// NTLMSSP_NEGOTIATE_NTLM (H).
    pub const NTLM: Self = Self(0x0000_0200);
    /// Anonymous (J).
    pub const ANONYMOUS: Self = Self(0x0000_0800);
    /// NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED (K).
    pub const OEM_DOMAIN_SUPPLIED: Self = Self(0x0000_1000);
    /// NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED (L).
    pub const OEM_WORKSTATION_SUPPLIED: Self = Self(0x0000_2000);
    /// NTLMSSP_NEGOTIATE_ALWAYS_SIGN (M).
    pub const ALWAYS_SIGN: Self = Self(0x0000_8000);
    /// NTLMSSP_TARGET_TYPE_DOMAIN (N).
    pub const TARGET_TYPE_DOMAIN: Self = Self(0x0001_0000);
    /// NTLMSSP_TARGET_TYPE_SERVER (O).
    pub const TARGET_TYPE_SERVER: Self = Self(0x0002_0000);
    /// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY (P).
    pub const EXTENDED_SESSIONSECURITY: Self = Self(0x0008_0000);
    /// NTLMSSP_NEGOTIATE_IDENTIFY (Q).
    pub const IDENTIFY: Self = Self(0x0010_0000);
    /// NTLMSSP_REQUEST_NON_NT_SESSION_KEY (R).
    pub const REQUEST_NON_NT_SESSION_KEY: Self = Self(0x0040_0000);
    /// NTLMSSP_NEGOTIATE_TARGET_INFO (S).
    pub const TARGET_INFO: Self = Self(0x0080_0000);
    /// NTLMSSP_NEGOTIATE_VERSION (T).
    pub const VERSION: Self = Self(0x0200_0000);
    /// NTLMSSP_NEGOTIATE_128 (U).
    pub const NEGOTIATE_128: Self = Self(0x2000_0000);
    /// NTLMSSP_NEGOTIATE_KEY_EXCH (V).
    pub const KEY_EXCH: Self = Self(0x4000_0000);
    /// NTLMSSP_NEGOTIATE_56 (W).
    pub const NEGOTIATE_56: Self = Self(0x8000_0000);

    const NAMES: [(Self, &'static str); 22] = [
        (Self::UNICODE, "UNICODE"),
        (Self::OEM, "OEM"),
        (Self::REQUEST_TARGET, "REQUEST_TARGET"),
        (Self::SIGN, "SIGN"),
        (Self::SEAL, "SEAL"),
        (Self::DATAGRAM, "DATAGRAM"),
        (Self::LM_KEY, "LM_KEY"),
        (Self::NTLM, "NTLM"),
        (Self::ANONYMOUS, "ANONYMOUS"),
        (Self::OEM_DOMAIN_SUPPLIED, "OEM_DOMAIN_SUPPLIED"),
        (Self::OEM_WORKSTATION_SUPPLIED, "OEM_WORKSTATION_SUPPLIED"),
        (Self::ALWAYS_SIGN, "ALWAYS_SIGN"),
        (Self::TARGET_TYPE_DOMAIN, "TARGET_TYPE_DOMAIN"),
        (Self::TARGET_TYPE_SERVER, "TARGET_TYPE_SERVER"),
        (Self::EXTENDED_SESSIONSECURITY, "EXTENDED_SESSIONSECURITY"),
        (Self::IDENTIFY, "IDENTIFY"),
        (
            Self::REQUEST_NON_NT_SESSION_KEY,
            "REQUEST_NON_NT_SESSION_KEY",
        ),
        (Self::TARGET_INFO, "TARGET_INFO"),
        (Self::VERSION, "VERSION"),
        (Self::NEGOTIATE_128, "128"),
        (Self::KEY_EXCH, "KEY_EXCH"),
        (Self::NEGOTIATE_56, "56"),
    ];

    /// The flags an [`Initiator`](super::Initiator) sends in its NEGOTIATE: UNICODE |
    /// REQUEST_TARGET | SIGN | SEAL | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY |
    /// VERSION | 128 | KEY_EXCH | 56 (`0xe2088235`), as the real tokens in testdata do.
    pub const INITIATOR_DEFAULT: Self = Self(0xe208_8235);

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag in `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The flags of `other` that are not set here.
    pub const fn missing(self, other: Self) -> Self {
        Self(other.0 & !self.0)
    }

    /// The names of the flags that are set (unknown bits as hex).
    pub fn names(self) -> Vec<String> {
        let mut rest = self.0;
        let mut out = Vec::new();
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                out.push(name.to_owned());
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            out.push(format!("{rest:#x}"));
        }
        out
    }
}

impl std::ops::BitOr for NegotiateFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for NegotiateFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl std::ops::BitAnd for NegotiateFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl std::ops::Not for NegotiateFlags {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::Debug for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NegotiateFlags({:#010x}: {})",
            self.0,
            self.names().join("|")
        )
    }
}

impl fmt::Display for NegotiateFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join("|"))
    }
}

/// The VERSION structure (MS-NLMP 2.2.2.10): informational OS version and NTLM revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// ProductMajorVersion.
    pub major: u8,
    /// ProductMinorVersion.
    pub minor: u8,
    /// ProductBuild.
    pub build: u16,
    /// NTLMRevisionCurrent (15 = NTLMSSP_REVISION_W2K3).
    pub ntlm_revision: u8,
}

impl Version {
    /// Windows Server 2022 (10.0.20348), NTLM revision 15: what our messages carry.
    pub const WINDOWS_SERVER_2022: Self = Self {
        major: 10,
        minor: 0,
        build: 20348,
        ntlm_revision: 15,
    };

    /// The 8 wire bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        let [b0, b1] = self.build.to_le_bytes();
        [self.major, self.minor, b0, b1, 0, 0, 0, self.ntlm_revision]
    }

    fn from_bytes(b: [u8; 8]) -> Self {
        let [major, minor, b0, b1, _, _, _, ntlm_revision] = b;
        Self {
            major,
            minor,
            build: u16::from_le_bytes([b0, b1]),
            ntlm_revision,
        }
    }
}

/// AV_PAIR identifiers (MS-NLMP 2.2.2.1).
pub mod av_id {
    /// MsvAvEOL: end of the list.
    pub const EOL: u16 = 0;
    /// MsvAvNbComputerName.
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// MsvAvNbDomainName.
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// MsvAvDnsComputerName.
    pub const DNS_COMPUTER_NAME: u16 = 3;
    /// MsvAvDnsDomainName.
    pub const DNS_DOMAIN_NAME: u16 = 4;
    /// MsvAvDnsTreeName.
    pub const DNS_TREE_NAME: u16 = 5;
    /// MsvAvFlags (u32).
    pub const FLAGS: u16 = 6;
    /// MsvAvTimestamp (FILETIME, u64).
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvSingleHost.
    pub const SINGLE_HOST: u16 = 8;
    /// MsvAvTargetName (the SPN the client meant).
    pub const TARGET_NAME: u16 = 9;
    /// MsvAvChannelBindings (MD5 of gss_channel_bindings_struct, 16 bytes).
    pub const CHANNEL_BINDINGS: u16 = 10;
}

/// MsvAvFlags bit 0x2: the AUTHENTICATE message carries a MIC (MS-NLMP 2.2.2.1).
pub const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

/// One AV_PAIR (MS-NLMP 2.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvPair {
    /// AvId.
    pub id: u16,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// An AV pair list (TargetInfo in CHALLENGE, or the list inside an NTLMv2 response),
/// without its terminating MsvAvEOL (added back by [`AvPairs::to_bytes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AvPairs {
    /// The pairs in wire order.
    pub pairs: Vec<AvPair>,
}

impl AvPairs {
    /// Parses pairs up to and including MsvAvEOL; bytes after it are ignored (the NTLMv2
    /// response has 4 reserved bytes there). An empty input is an empty list.
    pub fn parse(bytes: &[u8], message: &'static str) -> Result<Self, NtlmError> {
        let r = Reader::new(bytes, message);
        let mut pairs = Vec::new();
        let mut off = 0usize;
        if bytes.is_empty() {
            return Ok(Self { pairs });
        }
        loop {
            let id = r.u16_at(off, "AvId")?;
            let len = usize::from(r.u16_at(off + 2, "AvLen")?);
            let value = r.bytes_at(off + 4, len, "AV pair value")?;
            if id == av_id::EOL {
                return Ok(Self { pairs });
            }
            let fixed = match id {
                av_id::FLAGS => Some(4),
                av_id::TIMESTAMP => Some(8),
                av_id::CHANNEL_BINDINGS => Some(16),
                _ => None,
            };
            if let Some(want) = fixed {
                if len != want {
                    return Err(NtlmError::malformed(
                        message,
                        format!("AV pair {id} at offset {off} has length {len}, expected {want}"),
                    ));
                }
            }
            pairs.push(AvPair {
                id,
                value: value.to_vec(),
            });
            off += 4 + len;
            if off >= bytes.len() {
                return Err(NtlmError::malformed(
                    message,
                    "AV pair list ends without MsvAvEOL",
                ));
            }
        }
    }

    /// Wire bytes, terminated by MsvAvEOL.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NtlmError> {
        let mut out = Vec::new();
        for p in &self.pairs {
            let len = u16::try_from(p.value.len()).map_err(|_| NtlmError::FieldTooLong {
                field: "AV pair",
                len: p.value.len(),
            })?;
            out.extend_from_slice(&p.id.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&p.value);
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        Ok(out)
    }

    /// The value of the first pair with this id.
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.as_slice())
    }

    /// A UTF-16LE string value (lossy), e.g. [`av_id::NB_DOMAIN_NAME`].
    pub fn get_string(&self, id: u16) -> Option<String> {
        self.get(id).map(|v| {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| {
                    u16::from_le_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16_lossy(&units)
        })
    }

    /// MsvAvTimestamp as a FILETIME.
    pub fn timestamp(&self) -> Option<u64> {
        self.get(av_id::TIMESTAMP)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_le_bytes)
    }

    /// MsvAvFlags.
    pub fn flags(&self) -> Option<u32> {
        self.get(av_id::FLAGS)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_le_bytes)
    }

    /// Sets a pair: replaces the first one with this id, or appends.
    pub fn set(&mut self, id: u16, value: Vec<u8>) {
        match self.pairs.iter_mut().find(|p| p.id == id) {
            Some(p) => p.value = value,
            None => self.pairs.push(AvPair { id, value }),
        }
    }

    /// Appends a UTF-16LE string pair.
    pub fn push_string(&mut self, id: u16, value: &str) {
        self.pairs.push(AvPair {
            id,
            value: utf16le(value),
        });
    }
}

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateMessage {
    /// NegotiateFlags.
    pub flags: NegotiateFlags,
    /// DomainName (OEM; usually empty).
    pub domain: String,
    /// Workstation (OEM; usually empty).
    pub workstation: String,
    /// Version, when NEGOTIATE_VERSION is set and the field is present.
    pub version: Option<Version>,
}

impl NegotiateMessage {
    const WHAT: &'static str = "NEGOTIATE";

    /// Parses a NEGOTIATE message.
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        let r = Reader::new(bytes, Self::WHAT);
        r.header(1)?;
        let flags = NegotiateFlags(r.u32_at(12, "NegotiateFlags")?);
        let domain = oem_string(r.field(16, "DomainNameFields")?);
        let workstation = oem_string(r.field(24, "WorkstationFields")?);
        let payload_start = r.payload_start(&[16, 24])?;
        let version = if flags.contains(NegotiateFlags::VERSION) && payload_start >= 40 {
            Some(Version::from_bytes(r.array_at(32, "Version")?))
        } else {
            None
        };
        Ok(Self {
            flags,
            domain,
            workstation,
            version,
        })
    }

    /// Wire bytes: 40 bytes of fixed fields (Version included) and empty domain and
    /// workstation, whose offsets point at the end of the header like pyspnego's.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&SIGNATURE);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        // DomainNameFields and WorkstationFields: empty, offset = end of header.
        for _ in 0..2 {
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&40u32.to_le_bytes());
        }
        out.extend_from_slice(&self.version.map(Version::to_bytes).unwrap_or_default());
        out
    }
}

/// CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeMessage {
    /// NegotiateFlags the server agreed to.
    pub flags: NegotiateFlags,
    /// TargetName (the server's domain or computer name).
    pub target_name: String,
    /// ServerChallenge.
    pub server_challenge: [u8; 8],
    /// TargetInfo.
    pub target_info: AvPairs,
    /// Version, when present.
    pub version: Option<Version>,
}

impl ChallengeMessage {
    const WHAT: &'static str = "CHALLENGE";

    /// Parses a CHALLENGE message.
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        let r = Reader::new(bytes, Self::WHAT);
        r.header(2)?;
        let flags = NegotiateFlags(r.u32_at(20, "NegotiateFlags")?);
        let target_name = r.string(r.field(12, "TargetNameFields")?, flags, "TargetName")?;
        let server_challenge = r.array_at(24, "ServerChallenge")?;
        let target_info = AvPairs::parse(r.field(40, "TargetInfoFields")?, "CHALLENGE TargetInfo")?;
        let payload_start = r.payload_start(&[12, 40])?;
        let version = if flags.contains(NegotiateFlags::VERSION) && payload_start >= 56 {
            Some(Version::from_bytes(r.array_at(48, "Version")?))
        } else {
            None
        };
        Ok(Self {
            flags,
            target_name,
            server_challenge,
            target_info,
            version,
        })
    }

    /// Wire bytes: 56 bytes of fixed fields (Version always present), then TargetName
    /// and TargetInfo.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NtlmError> {
        let name = encode_string(&self.target_name, self.flags);
        let info = self.target_info.to_bytes()?;
        let mut payload = Payload::new(56);
        let name_f = payload.add(&name, "TargetName")?;
        let info_f = payload.add(&info, "TargetInfo")?;
        let mut out = Vec::with_capacity(56 + payload.bytes.len());
        out.extend_from_slice(&SIGNATURE);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&name_f);
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        out.extend_from_slice(&self.server_challenge);
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&info_f);
        out.extend_from_slice(&self.version.map(Version::to_bytes).unwrap_or_default());
        out.extend_from_slice(&payload.bytes);
        Ok(out)
    }
}

/// AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateMessage {
    /// NegotiateFlags.
    pub flags: NegotiateFlags,
    /// LmChallengeResponse (LMv2 response, or Z(24) when a MIC is sent).
    pub lm_challenge_response: Vec<u8>,
    /// NtChallengeResponse (NTProofStr ‖ client blob for NTLMv2).
    pub nt_challenge_response: Vec<u8>,
    /// DomainName.
    pub domain: String,
    /// UserName.
    pub user: String,
    /// Workstation.
    pub workstation: String,
    /// EncryptedRandomSessionKey (16 bytes with KEY_EXCH, else empty).
    pub encrypted_random_session_key: Vec<u8>,
    /// Version, when the fixed part is long enough to hold it.
    pub version: Option<Version>,
    /// MIC, when the fixed part is long enough to hold it (payload starts at 88 or later).
    pub mic: Option<[u8; 16]>,
}

impl AuthenticateMessage {
    const WHAT: &'static str = "AUTHENTICATE";

    /// Parses an AUTHENTICATE message. Version and MIC are recognised by where the
    /// payload starts: at 72 or later there is a Version, at 88 or later a MIC
    /// (MS-NLMP 2.2.1.3 — messages without a MIC, like the 4.2.4.3 example, start the
    /// payload at 72 or 64).
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        let r = Reader::new(bytes, Self::WHAT);
        r.header(3)?;
        let flags = NegotiateFlags(r.u32_at(60, "NegotiateFlags")?);
        let lm = r.field(12, "LmChallengeResponseFields")?.to_vec();
        let nt = r.field(20, "NtChallengeResponseFields")?.to_vec();
        let domain = r.string(r.field(28, "DomainNameFields")?, flags, "DomainName")?;
        let user = r.string(r.field(36, "UserNameFields")?, flags, "UserName")?;
        let workstation = r.string(r.field(44, "WorkstationFields")?, flags, "Workstation")?;
        let key = r.field(52, "EncryptedRandomSessionKeyFields")?.to_vec();
        let payload_start = r.payload_start(&[12, 20, 28, 36, 44, 52])?;
        let version = if payload_start >= 72 && flags.contains(NegotiateFlags::VERSION) {
            Some(Version::from_bytes(r.array_at(64, "Version")?))
        } else {
            None
        };
        let mic = if payload_start >= MIC_OFFSET + 16 {
            Some(r.array_at(MIC_OFFSET, "MIC")?)
        } else {
            None
        };
        Ok(Self {
            flags,
            lm_challenge_response: lm,
            nt_challenge_response: nt,
            domain,
            user,
            workstation,
            encrypted_random_session_key: key,
            version,
            mic,
        })
    }

    /// Wire bytes: 88 bytes of fixed fields (Version and MIC always present; the MIC is
    /// zero when `mic` is `None`), then the payload in Windows' order: DomainName,
    /// UserName, Workstation, LmChallengeResponse, NtChallengeResponse,
    /// EncryptedRandomSessionKey.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NtlmError> {
        let domain = encode_string(&self.domain, self.flags);
        let user = encode_string(&self.user, self.flags);
        let ws = encode_string(&self.workstation, self.flags);
        let mut payload = Payload::new(MIC_OFFSET + 16);
        let domain_f = payload.add(&domain, "DomainName")?;
        let user_f = payload.add(&user, "UserName")?;
        let ws_f = payload.add(&ws, "Workstation")?;
        let lm_f = payload.add(&self.lm_challenge_response, "LmChallengeResponse")?;
        let nt_f = payload.add(&self.nt_challenge_response, "NtChallengeResponse")?;
        let key_f = payload.add(
            &self.encrypted_random_session_key,
            "EncryptedRandomSessionKey",
        )?;
        let mut out = Vec::with_capacity(MIC_OFFSET + 16 + payload.bytes.len());
        out.extend_from_slice(&SIGNATURE);
        out.extend_from_slice(&3u32.to_le_bytes());
        for f in [lm_f, nt_f, domain_f, user_f, ws_f, key_f] {
            out.extend_from_slice(&f);
        }
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        out.extend_from_slice(&self.version.map(Version::to_bytes).unwrap_or_default());
        out.extend_from_slice(&self.mic.unwrap_or_default());
        out.extend_from_slice(&payload.bytes);
        Ok(out)
    }
}

/// The NTLMv2 client challenge ("temp", NTLMv2_CLIENT_CHALLENGE, MS-NLMP 2.2.2.7) that
/// follows the NTProofStr in an NTLMv2 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtlmV2ClientChallenge {
    /// RespType (1).
    pub resp_type: u8,
    /// HiRespType (1).
    pub hi_resp_type: u8,
    /// TimeStamp (FILETIME).
    pub timestamp: u64,
    /// ChallengeFromClient.
    pub client_challenge: [u8; 8],
    /// AvPairs the client authenticated (the server's TargetInfo plus the client's
    /// MsvAvFlags, MsvAvChannelBindings, MsvAvTargetName).
    pub av_pairs: AvPairs,
}

/// NTLMv2_RESPONSE (MS-NLMP 2.2.2.8): NTProofStr ‖ client challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtlmV2Response {
    /// NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ‖ temp).
    pub nt_proof_str: [u8; 16],
    /// The client challenge structure.
    pub client: NtlmV2ClientChallenge,
}

impl NtlmV2Response {
    const WHAT: &'static str = "NTLMv2 response";

    /// Parses an NtChallengeResponse as NTLMv2 (it must be longer than the 24 bytes of
    /// an NTLMv1 response).
    pub fn parse(bytes: &[u8]) -> Result<Self, NtlmError> {
        let r = Reader::new(bytes, Self::WHAT);
        if bytes.len() <= 24 {
            return Err(NtlmError::Unsupported(format!(
                "the NtChallengeResponse is {} bytes, an NTLMv1 or empty response; only NTLMv2 is accepted",
                bytes.len()
            )));
        }
        let nt_proof_str = r.array_at(0, "NTProofStr")?;
        let [resp_type, hi_resp_type] = r.array_at(16, "RespType")?;
        let timestamp = u64::from_le_bytes(r.array_at(24, "TimeStamp")?);
        let client_challenge = r.array_at(32, "ChallengeFromClient")?;
        let rest = bytes.get(44..).unwrap_or_default();
        let av_pairs = AvPairs::parse(rest, "NTLMv2 response AvPairs")?;
        Ok(Self {
            nt_proof_str,
            client: NtlmV2ClientChallenge {
                resp_type,
                hi_resp_type,
                timestamp,
                client_challenge,
                av_pairs,
            },
        })
    }
}

/// UTF-16LE bytes of a string.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn encode_string(s: &str, flags: NegotiateFlags) -> Vec<u8> {
    if flags.contains(NegotiateFlags::UNICODE) {
        utf16le(s)
    } else {
        // OEM: we only ever produce ASCII here; anything else becomes '?'.
        s.chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect()
    }
}

/// OEM strings decoded as Latin-1 (lossless for bytes; exact for ASCII).
fn oem_string(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// Builds the payload area of a message and the 8-byte field descriptors pointing into it.
struct Payload {
    base: usize,
    bytes: Vec<u8>,
}

impl Payload {
    fn new(base: usize) -> Self {
        Self {
            base,
            bytes: Vec::new(),
        }
    }

    fn add(&mut self, data: &[u8], field: &'static str) -> Result<[u8; 8], NtlmError> {
        let too_long = || NtlmError::FieldTooLong {
            field,
            len: data.len(),
        };
        let len = u16::try_from(data.len()).map_err(|_| too_long())?;
        let off = u32::try_from(self.base + self.bytes.len()).map_err(|_| too_long())?;
        self.bytes.extend_from_slice(data);
        let [l0, l1] = len.to_le_bytes();
        let [o0, o1, o2, o3] = off.to_le_bytes();
        Ok([l0, l1, l0, l1, o0, o1, o2, o3])
    }
}

/// A bounded reader over one message: every access is range-checked and failures name
/// the message and field.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, reporting errors as being in message `what`.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn err(&self, detail: String) -> NtlmError {
        NtlmError::malformed(self.what, detail)
    }

    /// `len` bytes at `off`, or an error naming `field`.
    pub fn bytes_at(&self, off: usize, len: usize, field: &str) -> Result<&'a [u8], NtlmError> {
        off.checked_add(len)
            .and_then(|end| self.buf.get(off..end))
            .ok_or_else(|| {
                self.err(format!(
                    "{field} (offset {off}, length {len}) extends beyond the {}-byte message",
                    self.buf.len()
                ))
            })
    }

    /// A fixed-size array at `off`.
    pub fn array_at<const N: usize>(&self, off: usize, field: &str) -> Result<[u8; N], NtlmError> {
        let b = self.bytes_at(off, N, field)?;
        <[u8; N]>::try_from(b).map_err(|_| self.err(format!("{field}: short read")))
    }

    /// A little-endian u16 at `off`.
    pub fn u16_at(&self, off: usize, field: &str) -> Result<u16, NtlmError> {
        Ok(u16::from_le_bytes(self.array_at(off, field)?))
    }

    /// A little-endian u32 at `off`.
    pub fn u32_at(&self, off: usize, field: &str) -> Result<u32, NtlmError> {
        Ok(u32::from_le_bytes(self.array_at(off, field)?))
    }

    /// Checks the signature and message type.
    fn header(&self, msg_type: u32) -> Result<(), NtlmError> {
        let sig: [u8; 8] = self.array_at(0, "Signature")?;
        if sig != SIGNATURE {
            return Err(self.err("does not start with NTLMSSP\\0".to_owned()));
        }
        let t = self.u32_at(8, "MessageType")?;
        if t != msg_type {
            return Err(self.err(format!("MessageType is {t}, expected {msg_type}")));
        }
        Ok(())
    }

    /// The payload a security-buffer descriptor (Len u16, MaxLen u16, Offset u32) at
    /// `desc_off` points at, bounds-checked.
    fn field(&self, desc_off: usize, field: &str) -> Result<&'a [u8], NtlmError> {
        let len = usize::from(self.u16_at(desc_off, field)?);
        let off = self.u32_at(desc_off + 4, field)?;
        if len == 0 {
            return Ok(&[]);
        }
        let off =
            usize::try_from(off).map_err(|_| self.err(format!("{field}: offset too large")))?;
        self.bytes_at(off, len, field)
    }

    /// Where the payload begins: the smallest offset of the non-empty fields whose
    /// descriptors are at `descs`, or the message length when all are empty.
    fn payload_start(&self, descs: &[usize]) -> Result<usize, NtlmError> {
        let mut start = self.buf.len();
        for &d in descs {
            let len = self.u16_at(d, "field length")?;
            let off = self.u32_at(d + 4, "field offset")?;
            if len != 0 {
                start = start.min(usize::try_from(off).unwrap_or(usize::MAX));
            }
        }
        Ok(start)
    }

    /// Decodes a string field per the UNICODE flag.
    fn string(&self, b: &[u8], flags: NegotiateFlags, field: &str) -> Result<String, NtlmError> {
        if flags.contains(NegotiateFlags::UNICODE) {
            if !b.len().is_multiple_of(2) {
                return Err(self.err(format!("{field} has odd length {} for UTF-16", b.len())));
            }
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| match c {
                    [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                    _ => 0,
                })
                .collect();
            String::from_utf16(&units).map_err(|_| self.err(format!("{field} is not valid UTF-16")))
        } else {
            Ok(oem_string(b))
        }
    }
}
