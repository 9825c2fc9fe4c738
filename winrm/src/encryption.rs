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

use crate::ntlm::{NtlmError, SessionSecurity};

/// The `protocol` parameter for NTLM or Kerberos through SPNEGO (MS-WSMV 2.2.9.1).
pub const PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";

/// The `Content-Type` header of an encrypted request or response.
pub const CONTENT_TYPE: &str =
    "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// The boundary we send, and assume when a `Content-Type` names none.
pub const BOUNDARY: &str = "Encrypted Boundary";

/// The type of the sealed content, as it would have been sent in clear.
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

/// Splits a header value into its media type and `name=value` parameters, honouring
/// quoted strings (RFC 9110 §5.6.6). Names are lower-cased; quotes are removed.
fn header_params(value: &str) -> (String, Vec<(String, String)>) {
    // Without quotes the pieces are plain `;`-separated slices.
    if !value.contains('"') {
        let mut it = value.split(';');
        let media = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        return (media, it.filter_map(param_pair).collect());
    }
    // Runs of literal text are copied whole; quotes and the backslash of a quoted pair
    // are left out, and `;` splits only outside quotes.
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut run = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            // The escaped character stays in the run, whatever it is.
            escaped = false;
            continue;
        }
        let special = (quoted && c == '\\') || c == '"' || (c == ';' && !quoted);
        if !special {
            continue;
        }
        cur.push_str(value.get(run..i).unwrap_or_default());
        run = i + 1;
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            _ => pieces.push(std::mem::take(&mut cur)),
        }
    }
    cur.push_str(value.get(run..).unwrap_or_default());
    pieces.push(cur);
    let mut it = pieces.into_iter();
    let media = it.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = it.filter_map(|p| param_pair(&p)).collect();
    (media, params)
}

/// `name=value` as (lower-case name, value), both trimmed.
fn param_pair(p: &str) -> Option<(String, String)> {
    let (k, v) = p.split_once('=')?;
    Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a response `Content-Type` announces an SPNEGO-encrypted body
/// (`multipart/encrypted` or `multipart/x-multi-encrypted` with
/// `protocol="application/HTTP-SPNEGO-session-encrypted"`, compared case-insensitively).
pub fn is_encrypted(content_type: &str) -> bool {
    let (media, params) = header_params(content_type);
    (media == "multipart/encrypted" || media == "multipart/x-multi-encrypted")
        && param(&params, "protocol").is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOL))
}

/// Seals `plaintext` (a SOAP envelope) and frames it as the body of an encrypted
/// request or response; send it with [`CONTENT_TYPE`].
pub fn seal_body(sec: &mut SessionSecurity, plaintext: &[u8]) -> Vec<u8> {
    let (signature, sealed) = sec.wrap(plaintext);
    let head = format!(
        "--{BOUNDARY}\r\n\tContent-Type: {PROTOCOL}\r\n\tOriginalContent: type={ORIGINAL_TYPE};Length={}\r\n--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
        plaintext.len()
    );
    let tail = format!("--{BOUNDARY}--\r\n");
    let mut body = Vec::with_capacity(head.len() + 4 + 16 + sealed.len() + tail.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(&NTLM_SIGNATURE_LEN.to_le_bytes());
    body.extend_from_slice(&signature);
    body.extend_from_slice(&sealed);
    body.extend_from_slice(tail.as_bytes());
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
    let (_, params) = header_params(content_type);
    let boundary = param(&params, "boundary").unwrap_or(BOUNDARY).as_bytes();
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
    let line = String::from_utf8_lossy(body.get(pos..line_end).unwrap_or_default()).into_owned();
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
            let (_, params) = header_params(value);
            let v = param(&params, "length")
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
        ];
        for c in cases {
            assert_eq!(header_params(c), reference(c), "{c:?}");
        }
        let (media, params) = header_params(CONTENT_TYPE);
        assert_eq!(media, "multipart/encrypted");
        assert_eq!(param(&params, "boundary"), Some(BOUNDARY));
    }
}
