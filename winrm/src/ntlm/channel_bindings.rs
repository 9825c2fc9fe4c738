//! Channel binding for NTLM over TLS (Extended Protection for Authentication): the
//! `MsvAvChannelBindings` value of MS-NLMP 2.2.2.1, computed from the server's TLS
//! certificate as RFC 5929 `tls-server-end-point`, and the server-side policy that checks
//! it ([`CbtHardening`], Windows' `CbtHardeningLevel`).
//!
//! The value is MD5 of a `gss_channel_bindings_struct` (RFC 2744 3.11; MS-NLMP 3.1.5.1.2)
//! whose address types and addresses are zero and empty and whose application data is
//! `tls-server-end-point:` followed by the hash of the server's leaf certificate: SHA-256
//! when the certificate is signed with MD5 or SHA-1, else the hash of its own signature
//! algorithm (RFC 5929 4.1). Pure functions over bytes, like the rest of [`super`].

use std::fmt;

use md5::{Digest as _, Md5};

use super::NtlmError;

/// The prefix of the application data for `tls-server-end-point` bindings (RFC 5929 4).
pub const TLS_SERVER_END_POINT: &[u8] = b"tls-server-end-point:";

/// An `MsvAvChannelBindings` value: MD5 of a `gss_channel_bindings_struct`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelBindings(pub [u8; 16]);

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelBindings(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl ChannelBindings {
    /// Sixteen zero bytes: what clients without channel binding support used to send over
    /// TLS. MS-NLMP says it means "no binding", but servers enforcing Extended Protection
    /// refuse it over TLS (gss-ntlmssp #25, jborean93/omi #29); only tests send it.
    pub const ZERO: Self = Self([0; 16]);

    /// MD5 of the `gss_channel_bindings_struct` with zero initiator and acceptor address
    /// types, empty addresses, and `application_data` (RFC 2744 3.11, in the flat layout
    /// MS-NLMP 3.1.5.1.2 hashes: five little-endian u32 fields and the data).
    pub fn from_application_data(application_data: &[u8]) -> Self {
        let mut md5 = Md5::new();
        // initiator_addrtype, initiator_address.length, acceptor_addrtype,
        // acceptor_address.length: all zero.
        md5.update([0u8; 16]);
        let len = u32::try_from(application_data.len()).unwrap_or(u32::MAX);
        md5.update(len.to_le_bytes());
        md5.update(application_data);
        Self(md5.finalize().into())
    }

    /// The `tls-server-end-point` binding of a TLS server whose leaf certificate is
    /// `certificate_der` (RFC 5929 4.1).
    pub fn tls_server_end_point(certificate_der: &[u8]) -> Result<Self, NtlmError> {
        Ok(Self::from_application_data(&tls_server_end_point_data(
            certificate_der,
        )?))
    }

    /// Whether all 16 bytes are zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

/// `tls-server-end-point:` followed by [`certificate_hash`] of the certificate.
pub fn tls_server_end_point_data(certificate_der: &[u8]) -> Result<Vec<u8>, NtlmError> {
    let hash = certificate_hash(certificate_der)?;
    let mut data = TLS_SERVER_END_POINT.to_vec();
    data.extend_from_slice(&hash);
    Ok(data)
}

/// The hash of a DER certificate as RFC 5929 4.1 defines it for `tls-server-end-point`:
/// SHA-256 when its signature algorithm uses MD5 or SHA-1, else that algorithm's hash.
/// Signature algorithms without a hash of their own (Ed25519, Ed448) get SHA-256, as
/// requests_ntlm does; algorithms not known here are [`NtlmError::Unsupported`].
pub fn certificate_hash(certificate_der: &[u8]) -> Result<Vec<u8>, NtlmError> {
    let alg = match signature_hash(certificate_der)? {
        SigHash::Md5OrSha1 | SigHash::Sha256 => &ring::digest::SHA256,
        SigHash::Sha384 => &ring::digest::SHA384,
        SigHash::Sha512 => &ring::digest::SHA512,
    };
    Ok(ring::digest::digest(alg, certificate_der).as_ref().to_vec())
}

/// Windows' `CbtHardeningLevel` (`winrm/config/service/auth`): how a listener treats the
/// channel binding of NTLM over HTTPS. Plain HTTP has no channel and is never checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CbtHardening {
    /// Bindings are ignored.
    None,
    /// Windows' default: a binding that is present must match; a client that sends none
    /// is accepted. An all-zero binding counts as present and wrong, as servers enforcing
    /// Extended Protection treat it over TLS.
    #[default]
    Relaxed,
    /// A binding must be present and match.
    Strict,
}

impl CbtHardening {
    /// The name as `winrm set winrm/config/service/auth` spells it, lower-cased.
    pub fn as_str(self) -> &'static str {
        match self {
            CbtHardening::None => "none",
            CbtHardening::Relaxed => "relaxed",
            CbtHardening::Strict => "strict",
        }
    }

    /// Checks the binding a client sent (`None` when its AUTHENTICATE had no
    /// `MsvAvChannelBindings`) against the one of the TLS channel it arrived on.
    pub fn check(
        self,
        expected: &ChannelBindings,
        sent: Option<&ChannelBindings>,
    ) -> Result<(), BindingProblem> {
        match (self, sent) {
            (CbtHardening::None, _) => Ok(()),
            (CbtHardening::Relaxed, None) => Ok(()),
            (CbtHardening::Strict, None) => Err(BindingProblem::Missing),
            (_, Some(s)) if s.is_zero() => Err(BindingProblem::Zero),
            (_, Some(s)) if s != expected => Err(BindingProblem::Mismatch),
            (_, Some(_)) => Ok(()),
        }
    }
}

impl fmt::Display for CbtHardening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CbtHardening {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(CbtHardening::None),
            "relaxed" => Ok(CbtHardening::Relaxed),
            "strict" => Ok(CbtHardening::Strict),
            other => Err(format!(
                "unknown CbtHardeningLevel '{other}' (expected none, relaxed or strict)"
            )),
        }
    }
}

/// Why a channel binding was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingProblem {
    /// No `MsvAvChannelBindings` under [`CbtHardening::Strict`].
    Missing,
    /// Sixteen zero bytes over TLS (a client without channel binding support).
    Zero,
    /// A binding for another channel: another certificate (a TLS-terminating proxy, or a
    /// relayed authentication).
    Mismatch,
}

impl fmt::Display for BindingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingProblem::Missing => {
                "the client sent no channel binding and the listener requires one (CbtHardeningLevel Strict)"
            }
            BindingProblem::Zero => {
                "the client sent an all-zero channel binding over TLS (it does not support Extended Protection)"
            }
            BindingProblem::Mismatch => {
                "the channel binding is for another TLS certificate (a proxy in between, or a relayed logon)"
            }
        })
    }
}

/// The hash a certificate's signature algorithm uses, as far as RFC 5929 cares.
enum SigHash {
    Md5OrSha1,
    Sha256,
    Sha384,
    Sha512,
}

// Object identifiers (DER content bytes) of signature and hash algorithms.
const OID_MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const OID_SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const OID_DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_DSA_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
/// `[0] EXPLICIT` (RSASSA-PSS-params hashAlgorithm).
const TAG_CONTEXT_0: u8 = 0xa0;

const WHAT: &str = "certificate";

/// Reads `Certificate.signatureAlgorithm` (RFC 5280 4.1.1.2) from a DER certificate.
fn signature_hash(der: &[u8]) -> Result<SigHash, NtlmError> {
    let (cert, _) = der_expect(der, TAG_SEQUENCE, "Certificate")?;
    let (_tbs, rest) = der_next(cert, "tbsCertificate")?;
    let (alg, _) = der_expect(rest, TAG_SEQUENCE, "signatureAlgorithm")?;
    let (oid, params) = der_expect(alg, TAG_OID, "signatureAlgorithm OID")?;
    Ok(match oid {
        OID_MD5_RSA | OID_SHA1_RSA | OID_ECDSA_SHA1 | OID_DSA_SHA1 => SigHash::Md5OrSha1,
        OID_ED25519 | OID_ED448 => SigHash::Md5OrSha1,
        OID_SHA256_RSA | OID_ECDSA_SHA256 | OID_DSA_SHA256 => SigHash::Sha256,
        OID_SHA384_RSA | OID_ECDSA_SHA384 => SigHash::Sha384,
        OID_SHA512_RSA | OID_ECDSA_SHA512 => SigHash::Sha512,
        OID_RSA_PSS => pss_hash(params)?,
        _ => {
            return Err(NtlmError::Unsupported(format!(
                "the server certificate's signature algorithm (OID bytes {}) has no tls-server-end-point hash",
                oid.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )))
        }
    })
}

/// The hash of RSASSA-PSS-params (RFC 4055 3.1): `[0] hashAlgorithm`, SHA-1 by default.
fn pss_hash(params: &[u8]) -> Result<SigHash, NtlmError> {
    let (seq, _) = der_expect(params, TAG_SEQUENCE, "RSASSA-PSS-params")?;
    let Ok((explicit, _)) = der_expect(seq, TAG_CONTEXT_0, "hashAlgorithm") else {
        return Ok(SigHash::Md5OrSha1);
    };
    let (alg, _) = der_expect(explicit, TAG_SEQUENCE, "hashAlgorithm")?;
    let (oid, _) = der_expect(alg, TAG_OID, "hashAlgorithm OID")?;
    match oid {
        OID_SHA1 => Ok(SigHash::Md5OrSha1),
        OID_SHA256 => Ok(SigHash::Sha256),
        OID_SHA384 => Ok(SigHash::Sha384),
        OID_SHA512 => Ok(SigHash::Sha512),
        _ => Err(NtlmError::Unsupported(
            "the server certificate's RSASSA-PSS hash has no tls-server-end-point hash".into(),
        )),
    }
}

/// The next DER element, which must have `tag`: (its content, the bytes after it).
fn der_expect<'a>(
    b: &'a [u8],
    tag: u8,
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), NtlmError> {
    match b.first() {
        Some(t) if *t == tag => der_next(b, field),
        Some(t) => Err(NtlmError::malformed(
            WHAT,
            format!("{field}: DER tag {t:#04x}, expected {tag:#04x}"),
        )),
        None => Err(NtlmError::malformed(WHAT, format!("{field}: missing"))),
    }
}

/// The next DER element of any tag: (its content, the bytes after it). Lengths are
/// checked against the input (definite form, at most 4 length bytes).
fn der_next<'a>(b: &'a [u8], field: &'static str) -> Result<(&'a [u8], &'a [u8]), NtlmError> {
    let bad = |why: &str| NtlmError::malformed(WHAT, format!("{field}: {why}"));
    let first = *b.get(1).ok_or_else(|| bad("truncated length"))?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2usize)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad("unsupported DER length form"));
        }
        let bytes = b.get(2..2 + n).ok_or_else(|| bad("truncated length"))?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
        (len, 2 + n)
    };
    let end = header
        .checked_add(len)
        .ok_or_else(|| bad("length overflows"))?;
    let content = b
        .get(header..end)
        .ok_or_else(|| bad("content extends beyond the certificate"))?;
    let rest = b.get(end..).unwrap_or_default();
    Ok((content, rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn strict_relaxed_none() {
        let good = ChannelBindings([1; 16]);
        let other = ChannelBindings([2; 16]);
        let zero = ChannelBindings::ZERO;
        use BindingProblem::*;
        use CbtHardening as H;
        for (level, sent, want) in [
            (H::None, None, Ok(())),
            (H::None, Some(&zero), Ok(())),
            (H::None, Some(&other), Ok(())),
            (H::Relaxed, None, Ok(())),
            (H::Relaxed, Some(&good), Ok(())),
            (H::Relaxed, Some(&zero), Err(Zero)),
            (H::Relaxed, Some(&other), Err(Mismatch)),
            (H::Strict, None, Err(Missing)),
            (H::Strict, Some(&good), Ok(())),
            (H::Strict, Some(&zero), Err(Zero)),
            (H::Strict, Some(&other), Err(Mismatch)),
        ] {
            assert_eq!(level.check(&good, sent), want, "{level} {sent:?}");
        }
    }

    #[test]
    fn malformed_certificates_are_errors_not_panics() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x31, 0x00],
        ] {
            assert!(certificate_hash(der).is_err(), "{der:02x?}");
        }
    }
}
