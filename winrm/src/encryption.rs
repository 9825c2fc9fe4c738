//! The `multipart/encrypted` framing that carries NTLM-sealed SOAP bodies over plain HTTP
//! (MS-WSMV 2.2.9.1, "Encrypted Message Types"), byte for byte as Windows, pywinrm, pypsrp
//! and masterzen/winrm produce it (see `testdata/winrm/ENCRYPTION.md` §4–§5):
//!
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<N>\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE 16><16-byte signature><N sealed bytes>--Encrypted Boundary--\r\n
//! ```
//!
//! Parsing is structural rather than a split on the boundary text: the header part is
//! text up to the second delimiter, the binary part is read by length, and the sealed
//! bytes are whatever lies between the signature and the closing delimiter (which may be
//! missing), so ciphertext that happens to contain the boundary string does no harm.

use std::borrow::Cow;

use crate::ntlm::{NtlmError, SessionSecurity};

/// The `protocol` parameter for NTLM or Kerberos through SPNEGO (MS-WSMV 2.2.9.1).
pub const PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";

/// The `Content-Type` header of an encrypted request or response.
pub const CONTENT_TYPE: &str =
    "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// The boundary we send, and assume when a `Content-Type` names none.
pub const BOUNDARY: &str = "Encrypted Boundary";

/// The type of the sealed content, as it would have been sent in clear (spelled out in
/// `seal_body`'s constant head; the test checks that they agree).
#[cfg(test)]
const ORIGINAL_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// Length of an NTLM message signature, the "encryption header" of MS-WSMV 2.2.9.1.1.2.2.
const NTLM_SIGNATURE_LEN: u32 = 16;

/// Why an encrypted body could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// The `Content-Type` is not SPNEGO `multipart/encrypted`: the body is plain.
    #[error("the body is not SPNEGO-encrypted (Content-Type {content_type:?})")]
    NotEncrypted {
        /// The Content-Type that was seen.
        content_type: String,
    },
    /// The multipart framing is wrong; the message says where.
    #[error("malformed encrypted body: {0}")]
    Malformed(String),
    /// The sealed data is not as long as `OriginalContent: ...;Length=` says: the body was
    /// truncated or tampered with.
    #[error("encrypted body length mismatch: Length={expected} but {actual} sealed bytes; the message was truncated or tampered with")]
    LengthMismatch {
        /// The `Length=` value.
        expected: usize,
        /// The sealed bytes present.
        actual: usize,
    },
    /// The NTLM signature did not verify (or the context is already dead).
    #[error("encrypted body signature invalid: {0}")]
    Signature(#[from] NtlmError),
}

fn malformed(s: impl Into<String>) -> EncryptionError {
    EncryptionError::Malformed(s.into())
}

/// The `;`-separated pieces of a header value, split only outside quoted strings
/// (RFC 9110 §5.6.6), still raw: quotes and quoted-pair backslashes are in them.
///
/// Scanning bytes is enough: `"`, `\\` and `;` are ASCII and never part of a multi-byte
/// UTF-8 sequence, so the split points are character boundaries. A piece ends only at a
/// `;` outside quotes, so each piece starts outside quotes.
fn raw_pieces(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let v = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in v.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b';' && !quoted {
                rest = v.get(i + 1..);
                return v.get(..i);
            }
        }
        rest = None;
        Some(v)
    })
}

/// One raw piece with its quotes and the backslashes of quoted pairs removed (borrowed
/// when it has no quotes, which is the common case).
fn unquote(piece: &str) -> Cow<'_, str> {
    if !piece.contains('"') {
        return Cow::Borrowed(piece);
    }
    // Runs of literal text are copied whole; `piece` starts outside quotes.
    let mut out = String::with_capacity(piece.len());
    let mut run = 0;
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in piece.char_indices() {
        if escaped {
            // The escaped character stays in the run, whatever it is.
            escaped = false;
            continue;
        }
        let special = (quoted && c == '\\') || c == '"';
        if !special {
            continue;
        }
        out.push_str(piece.get(run..i).unwrap_or_default());
        run = i + 1;
        if c == '\\' {
            escaped = true;
        } else {
            quoted = !quoted;
        }
    }
    out.push_str(piece.get(run..).unwrap_or_default());
    Cow::Owned(out)
}

/// Whether a header value's media type (trimmed, unquoted) is one of `types` (lower-case
/// ASCII), compared case-insensitively.
fn media_is(value: &str, types: &[&str]) -> bool {
    let media = unquote(raw_pieces(value).next().unwrap_or_default());
    let media = media.trim();
    types.iter().any(|t| media.eq_ignore_ascii_case(t))
}

/// The first parameter `name` (lower-case ASCII; names compare case-insensitively) of a
/// header value, unquoted and trimmed: the value after the first `=` of the piece.
fn param<'a>(value: &'a str, name: &str) -> Option<Cow<'a, str>> {
    raw_pieces(value).skip(1).find_map(|raw| {
        // A name without quotes ends at the first `=` before and after unquoting, so only
        // the value of the wanted parameter needs unquoting.
        if let Some((k, v)) = raw.split_once('=') {
            if !k.contains('"') {
                return k
                    .trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| unquote_value(v));
            }
        }
        let p = unquote(raw);
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| Cow::Owned(v.trim().to_owned()))
    })
}

/// A parameter value (the rest of its piece after `=`), unquoted and trimmed; borrowed
/// when it is plain or one quoted string without quoted pairs (`"Encrypted Boundary"`).
fn unquote_value(v: &str) -> Cow<'_, str> {
    let t = v.trim();
    if !t.contains('"') {
        return Cow::Borrowed(t);
    }
    if let Some(inner) = t.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if !inner.contains(['"', '\\']) {
            return Cow::Borrowed(inner.trim());
        }
    }
    Cow::Owned(unquote(v).trim().to_owned())
}

/// Whether a response `Content-Type` announces an SPNEGO-encrypted body
/// (`multipart/encrypted` or `multipart/x-multi-encrypted` with
/// `protocol="application/HTTP-SPNEGO-session-encrypted"`, compared case-insensitively).
pub fn is_encrypted(content_type: &str) -> bool {
    // Windows, pywinrm and the lab send exactly our header: no need to parse it.
    if content_type == CONTENT_TYPE {
        return true;
    }
    media_is(
        content_type,
        &["multipart/encrypted", "multipart/x-multi-encrypted"],
    ) && param(content_type, "protocol").is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOL))
}

/// Seals `plaintext` (a SOAP envelope) and frames it as the body of an encrypted
/// request or response; send it with [`CONTENT_TYPE`].
pub fn seal_body(sec: &mut SessionSecurity, plaintext: &[u8]) -> Vec<u8> {
    const HEAD_1: &str = concat!(
        "--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n",
        "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
    );
    const HEAD_2: &str = "\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n";
    const TAIL: &str = "--Encrypted Boundary--\r\n";
    let length = plaintext.len().to_string();
    let mut body = Vec::with_capacity(
        HEAD_1.len() + length.len() + HEAD_2.len() + 4 + 16 + plaintext.len() + TAIL.len(),
    );
    body.extend_from_slice(HEAD_1.as_bytes());
    body.extend_from_slice(length.as_bytes());
    body.extend_from_slice(HEAD_2.as_bytes());
    body.extend_from_slice(&NTLM_SIGNATURE_LEN.to_le_bytes());
    let sig_at = body.len();
    body.extend_from_slice(&[0; 16]);
    let msg_at = body.len();
    body.extend_from_slice(plaintext);
    // Sealed where it lies: no second copy of the message.
    let signature = sec.wrap_in_place(body.get_mut(msg_at..).unwrap_or_default());
    if let Some(slot) = body.get_mut(sig_at..msg_at) {
        slot.copy_from_slice(&signature);
    }
    body.extend_from_slice(TAIL.as_bytes());
    body
}

/// Opens an encrypted body: takes the boundary from `content_type`, parses the two parts,
/// unseals and verifies the message and checks its length against `Length=`.
///
/// Tolerates a missing final boundary and the `-- Encrypted Boundary` spelling
/// (whitespace after the dashes) some IIS-hosted endpoints use. On any error the
/// [`SessionSecurity`] must be considered dead (see its documentation).
pub fn unseal_body(
    sec: &mut SessionSecurity,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<u8>, EncryptionError> {
    if !is_encrypted(content_type) {
        return Err(EncryptionError::NotEncrypted {
            content_type: content_type.to_owned(),
        });
    }
    let boundary = if content_type == CONTENT_TYPE {
        Cow::Borrowed(BOUNDARY)
    } else {
        param(content_type, "boundary").unwrap_or(Cow::Borrowed(BOUNDARY))
    };
    let boundary = boundary.as_bytes();
    if boundary.is_empty() {
        return Err(malformed("empty boundary in Content-Type"));
    }

    // Opening delimiter (leading blank lines tolerated).
    let start = skip_ws(body, 0);
    let after_open = delimiter_at(body, start, boundary)
        .ok_or_else(|| malformed("the body does not start with the boundary delimiter"))?;

    // Header part: text up to the next delimiter.
    let (hdr_end, after_second) = find_delimiter(body, after_open, boundary)
        .ok_or_else(|| malformed("no second boundary delimiter after the header part"))?;
    let header = body.get(after_open..hdr_end).unwrap_or_default();
    let expected = parse_header_part(header)?;

    // Data part: "Content-Type: application/octet-stream\r\n", then binary.
    let mut pos = skip_blanks(body, after_second);
    let line_end = find(body, b"\r\n", pos)
        .ok_or_else(|| malformed("the data part has no Content-Type line"))?;
    let line = String::from_utf8_lossy(body.get(pos..line_end).unwrap_or_default());
    match line.split_once(':') {
        Some((name, value))
            if name.trim().eq_ignore_ascii_case("content-type")
                && value
                    .trim()
                    .eq_ignore_ascii_case("application/octet-stream") => {}
        _ => {
            return Err(malformed(format!(
            "the data part starts with {line:?}, expected Content-Type: application/octet-stream"
        )))
        }
    }
    pos = line_end + 2;

    let len_bytes: [u8; 4] = body
        .get(pos..pos + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("the data part ends before the signature length"))?;
    let sig_len = u32::from_le_bytes(len_bytes);
    if sig_len != NTLM_SIGNATURE_LEN {
        return Err(malformed(format!(
            "signature length field is {sig_len}, NTLM signatures are {NTLM_SIGNATURE_LEN} bytes"
        )));
    }
    pos += 4;
    let signature = body
        .get(pos..pos + 16)
        .ok_or_else(|| malformed("the data part ends inside the 16-byte signature"))?;
    pos += 16;
    let rest = body.get(pos..).unwrap_or_default();
    let sealed = strip_closing(rest, boundary);
    if sealed.len() != expected {
        return Err(EncryptionError::LengthMismatch {
            expected,
            actual: sealed.len(),
        });
    }
    let plaintext = sec.unwrap(signature, sealed)?;
    if plaintext.len() != expected {
        return Err(EncryptionError::LengthMismatch {
            expected,
            actual: plaintext.len(),
        });
    }
    Ok(plaintext)
}

/// Reads the header part's lines; checks the protocol and returns `Length=`.
fn parse_header_part(header: &[u8]) -> Result<usize, EncryptionError> {
    let text = std::str::from_utf8(header).map_err(|_| malformed("the header part is not text"))?;
    let mut protocol_ok = false;
    let mut length = None;
    for line in text.split("\r\n").map(str::trim).filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed(format!(
                "header part line {line:?} is not a header"
            )));
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-type") {
            if !value.trim().eq_ignore_ascii_case(PROTOCOL) {
                return Err(malformed(format!(
                    "the encrypted part's Content-Type is {:?}, expected {PROTOCOL}",
                    value.trim()
                )));
            }
            protocol_ok = true;
        } else if name.eq_ignore_ascii_case("originalcontent") {
            let v = param(value, "length")
                .ok_or_else(|| malformed("OriginalContent has no Length="))?;
            length =
                Some(v.parse::<usize>().map_err(|_| {
                    malformed(format!("OriginalContent Length={v:?} is not a number"))
                })?);
        }
    }
    if !protocol_ok {
        return Err(malformed("the header part has no Content-Type"));
    }
    length.ok_or_else(|| malformed("the header part has no OriginalContent"))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
    {
        i += 1;
    }
    i
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let h = hay.get(from..)?;
    if needle.is_empty() || h.len() < needle.len() {
        return None;
    }
    h.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// If a delimiter line `--[ \t]*<boundary>\r\n` starts at `i`, the index after it.
fn delimiter_at(b: &[u8], i: usize, boundary: &[u8]) -> Option<usize> {
    if b.get(i..i + 2)? != b"--" {
        return None;
    }
    let j = skip_blanks(b, i + 2);
    let k = j + boundary.len();
    if b.get(j..k)? != boundary {
        return None;
    }
    let k = skip_blanks(b, k);
    (b.get(k..k + 2)? == b"\r\n").then_some(k + 2)
}

/// The next delimiter line at a line start at or after `from`: (its start, index after it).
fn find_delimiter(b: &[u8], from: usize, boundary: &[u8]) -> Option<(usize, usize)> {
    let mut i = from;
    loop {
        let at = find(b, b"--", i)?;
        let at_line_start = at == from || (at >= 2 && b.get(at - 2..at) == Some(b"\r\n"));
        if at_line_start {
            if let Some(end) = delimiter_at(b, at, boundary) {
                return Some((at, end));
            }
        }
        i = at + 1;
    }
}

/// The sealed bytes: `rest` without a trailing `--[ \t]*<boundary>--` and line end, if
/// present (a missing closing delimiter is tolerated and leaves `rest` untouched).
fn strip_closing<'a>(rest: &'a [u8], boundary: &[u8]) -> &'a [u8] {
    let mut end = rest.len();
    while end > 0
        && rest
            .get(end - 1)
            .is_some_and(|&c| matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
    {
        end -= 1;
    }
    let Some(before) = end.checked_sub(2) else {
        return rest;
    };
    if rest.get(before..end) != Some(b"--") {
        return rest;
    }
    let Some(b_start) = before.checked_sub(boundary.len()) else {
        return rest;
    };
    if rest.get(b_start..before) != Some(boundary) {
        return rest;
    }
    let mut d = b_start;
    while d > 0 && rest.get(d - 1).copied().is_some_and(is_ws) {
        d -= 1;
    }
    let Some(dash) = d.checked_sub(2) else {
        return rest;
    };
    if rest.get(dash..d) != Some(b"--") {
        return rest;
    }
    rest.get(..dash).unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The media type (lower-cased) and all parameters, as the scanner sees them.
    fn header_params(value: &str) -> (String, Vec<(String, String)>) {
        let mut it = raw_pieces(value).map(unquote);
        let media = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        (media, it.filter_map(|p| param_pair(&p)).collect())
    }

    /// `name=value` as (lower-case name, value), both trimmed.
    fn param_pair(p: &str) -> Option<(String, String)> {
        let (k, v) = p.split_once('=')?;
        Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
    }

    /// The character-by-character definition `header_params` must agree with.
    fn reference(value: &str) -> (String, Vec<(String, String)>) {
        let mut pieces = Vec::new();
        let mut cur = String::new();
        let (mut quoted, mut escaped) = (false, false);
        for c in value.chars() {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == ';' && !quoted {
                pieces.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        pieces.push(cur);
        let mut it = pieces.into_iter();
        let media = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        (media, it.filter_map(|p| param_pair(&p)).collect())
    }

    /// The constant head and tail of `seal_body` spell the framing with the module's
    /// constants.
    #[test]
    fn sealed_body_framing_is_the_documented_one() {
        use crate::ntlm::{NegotiateFlags, Role};
        let flags = NegotiateFlags::INITIATOR_DEFAULT;
        let mut sec = SessionSecurity::new(Role::Initiator, [7; 16], flags);
        let mut same = SessionSecurity::new(Role::Initiator, [7; 16], flags);
        let msg = b"<s:Envelope/>";
        let body = seal_body(&mut sec, msg);
        let (signature, sealed) = same.wrap(msg);
        let mut expected = format!(
            "--{BOUNDARY}\r\n\tContent-Type: {PROTOCOL}\r\n\tOriginalContent: type={ORIGINAL_TYPE};Length={}\r\n--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
            msg.len()
        )
        .into_bytes();
        expected.extend_from_slice(&NTLM_SIGNATURE_LEN.to_le_bytes());
        expected.extend_from_slice(&signature);
        expected.extend_from_slice(&sealed);
        expected.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        assert_eq!(body, expected);
    }

    proptest::proptest! {
        /// Random header values over the characters that matter (quotes, quoted pairs,
        /// separators, spaces, case): the scanner's media type and first parameters are
        /// the reference's.
        #[test]
        fn params_agree_with_the_reference_on_any_value(
            value in "[\"\\\\;= aAbB]{0,24}(boundary|protocol|BOUNDARY)?[\"\\\\;= xX]{0,24}"
        ) {
            let (media, params) = reference(&value);
            proptest::prop_assert!(media_is(&value, &[media.as_str()]));
            for name in ["boundary", "protocol", "a", ""] {
                let first = params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
                let ours = param(&value, name);
                proptest::prop_assert_eq!(ours.as_deref(), first);
            }
        }
    }

    #[test]
    fn header_params_agree_with_the_reference() {
        let cases = [
            CONTENT_TYPE,
            "Multipart/Encrypted; Protocol=\"application/HTTP-SPNEGO-session-encrypted\"; boundary=\"Encrypted Boundary\"",
            "multipart/encrypted;boundary=plain;protocol=x",
            "a;b=\"x;y\";c=\"q\\\"r\\\\s\";d=\"ü;\\ä\"",
            "a;b=\"unterminated;c=d",
            "a;b=\"ends with backslash\\",
            "\"quoted media\";x=1",
            "",
            ";;=;\"\"",
            "m; boundary = \" spaced \" ;protocol=\"a\"\"b\"",
            "m;\"bo\"undary=x;boundary=\"q\\\"x\"",
            "m;boundary=\"\";x=\"",
            "m;boundary=\"a\" b",
        ];
        for c in cases {
            let (media, params) = reference(c);
            assert_eq!(header_params(c), (media.clone(), params.clone()), "{c:?}");
            assert!(media_is(c, &[media.as_str()]), "{c:?}");
            for (name, _) in &params {
                let first = params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str());
                assert_eq!(param(c, name).as_deref(), first, "{c:?} {name}");
            }
            assert_eq!(param(c, "absent"), None);
        }
        // The shortcut for our own header gives what parsing it gives.
        assert!(media_is(CONTENT_TYPE, &["multipart/encrypted"]));
        assert_eq!(param(CONTENT_TYPE, "protocol").as_deref(), Some(PROTOCOL));
        assert_eq!(param(CONTENT_TYPE, "boundary").as_deref(), Some(BOUNDARY));
    }
}
