//! PowerShell over WinRS: `-EncodedCommand` (base64 of the script in UTF-16LE, the way
//! Ansible and pywinrm's `run_ps` run scripts, so that no quoting survives cmd.exe) and the
//! `#< CLIXML` documents that `powershell.exe` writes to stderr when its output is
//! redirected (as it always is under WinRS): error records become readable text again, and
//! the lab writes its errors in the same shape (capture
//! `pywinrm_receive_response_ps_clixml_stderr_exit_1.xml`). Nothing here panics on input.

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::Reader;

/// First line of a CLIXML stderr document.
pub const CLIXML_HEADER: &str = "#< CLIXML";

/// Why an `-EncodedCommand` argument could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PowerShellError {
    /// Not base64.
    #[error("-EncodedCommand value is not base64")]
    Base64,
    /// Decoded to an odd number of bytes (UTF-16 needs pairs).
    #[error("-EncodedCommand value decodes to an odd number of bytes ({0}); expected UTF-16LE")]
    OddLength(usize),
    /// Not valid UTF-16 (unpaired surrogate).
    #[error("-EncodedCommand value is not valid UTF-16LE")]
    Utf16,
}

/// `powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 of UTF-16LE script>`.
pub fn command_line(script: &str) -> (String, Vec<String>) {
    (
        "powershell.exe".to_string(),
        vec![
            "-NoProfile".to_string(),
            "-NonInteractive".to_string(),
            "-EncodedCommand".to_string(),
            encode_command(script),
        ],
    )
}

/// Base64 of the script in UTF-16LE (what `-EncodedCommand` takes).
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = if script.is_ascii() {
        // An ASCII character is one UTF-16 unit: the byte, then a zero.
        let mut bytes = vec![0u8; script.len() * 2];
        for (pair, b) in bytes.chunks_exact_mut(2).zip(script.bytes()) {
            if let [lo, _] = pair {
                *lo = b;
            }
        }
        bytes
    } else {
        let mut bytes = Vec::with_capacity(script.len() * 2);
        for unit in script.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes
    };
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes an `-EncodedCommand` value back to the script (lab side). Whitespace is ignored.
pub fn decode_encoded_command(b64: &str) -> Result<String, PowerShellError> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| PowerShellError::Base64)?;
    if bytes.len() % 2 != 0 {
        return Err(PowerShellError::OddLength(bytes.len()));
    }
    let units = bytes.chunks_exact(2).map(|c| match c {
        [a, b] => u16::from_le_bytes([*a, *b]),
        _ => 0,
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| PowerShellError::Utf16)
}

/// Finds the script of a PowerShell command line run through WinRS, however the client
/// split it: ours and pypsrp put `-EncodedCommand` and the value in separate arguments;
/// pywinrm's `run_ps` sends the whole `powershell -encodedcommand <b64>` as the command.
/// The parameter name may be abbreviated (`-e`, `-ec`, `-enc`, …, case-insensitive, `-` or
/// `/`), as `powershell.exe` accepts. `None` when there is no encoded command.
pub fn script_from_command_line(
    command: &str,
    arguments: &[String],
) -> Option<Result<String, PowerShellError>> {
    let words: Vec<&str> = command
        .split_whitespace()
        .chain(arguments.iter().flat_map(|a| a.split_whitespace()))
        .collect();
    let is_powershell = words.first().is_some_and(|w| {
        let exe = w
            .trim_matches('"')
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        matches!(
            exe.as_str(),
            "powershell" | "powershell.exe" | "pwsh" | "pwsh.exe"
        )
    });
    if !is_powershell {
        return None;
    }
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        let Some(name) = w.strip_prefix('-').or_else(|| w.strip_prefix('/')) else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let is_encoded =
            name == "ec" || (!name.is_empty() && "encodedcommand".starts_with(name.as_str()));
        if is_encoded {
            return it.next().map(|v| decode_encoded_command(v));
        }
    }
    None
}

/// Turns a `#< CLIXML` stderr document into readable text: the `S="Error"` string records
/// joined, `_xHHHH_` escapes decoded (so `_x000D__x000A_` is a line break), CRLF turned
/// into LF, trailing whitespace removed; progress records (`<Obj S="progress">`) and other
/// streams are dropped, so a progress-only document decodes to "". Input that does not
/// start with `#< CLIXML`, or in which no error record can be read, comes back unchanged.
pub fn decode_clixml(stderr: &str) -> String {
    let Some(rest) = stderr.strip_prefix(CLIXML_HEADER) else {
        return stderr.to_string();
    };
    match error_records(rest) {
        Some(records) => {
            let joined = records.concat();
            let text = unescape_clixml(&joined).replace("\r\n", "\n");
            text.trim_end().to_string()
        }
        None => stderr.to_string(),
    }
}

/// The text of every top-level `<S S="Error">` in the `<Objs>` document(s) of `xml`, or
/// `None` if the XML breaks before any complete document was read.
fn error_records(xml: &str) -> Option<Vec<String>> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut records = Vec::new();
    let mut depth = 0usize;
    let mut in_error: Option<String> = None;
    let mut complete_docs = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            // Truncated or broken: keep what complete documents gave us.
            Err(_) => return (complete_docs > 0 || !records.is_empty()).then_some(records),
        };
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.local_name().as_ref() == b"S" {
                    let is_error = e.attributes().flatten().any(|a| {
                        a.key.local_name().as_ref() == b"S"
                            && a.value.as_ref().eq_ignore_ascii_case(b"Error")
                    });
                    if is_error {
                        in_error = Some(String::new());
                    }
                }
            }
            Event::Empty(_) => {}
            Event::End(_) => {
                if depth == 2 {
                    if let Some(r) = in_error.take() {
                        records.push(r);
                    }
                }
                if depth == 1 {
                    complete_docs += 1;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                if let Some(r) = in_error.as_mut() {
                    match t.unescape() {
                        Ok(s) => r.push_str(&s),
                        Err(_) => r.push_str(&String::from_utf8_lossy(&t)),
                    }
                }
            }
            Event::CData(c) => {
                if let Some(r) = in_error.as_mut() {
                    r.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if complete_docs == 0 && records.is_empty() {
        return None;
    }
    Some(records)
}

/// Decodes CLIXML string escapes: `_xHHHH_` is the UTF-16 code unit HHHH (pairs of them
/// form surrogate pairs); anything that does not decode is kept literally.
fn unescape_clixml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(pending.drain(..)).map(|r| r.unwrap_or('\u{FFFD}')));
    };
    while !rest.is_empty() {
        if let Some(unit) = escape_at(rest) {
            pending.push(unit);
            rest = rest.get(7..).unwrap_or("");
            continue;
        }
        flush(&mut pending, &mut out);
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    flush(&mut pending, &mut out);
    out
}

/// `_xHHHH_` at the start of `s`, as its code unit.
fn escape_at(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    match b {
        [b'_', b'x' | b'X', h @ ..] if h.len() >= 5 => {
            let hex = s.get(2..6)?;
            if b.get(6) != Some(&b'_') || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            u16::from_str_radix(hex, 16).ok()
        }
        _ => None,
    }
}

/// Writes error lines as `powershell.exe` does on a redirected stderr: the `#< CLIXML`
/// header line, then one `<Objs>` document with an `<S S="Error">` record per line, each
/// ending in `_x000D__x000A_`. Characters XML cannot carry, and `_x` sequences that would be
/// misread as escapes, are escaped the CLIXML way.
pub fn encode_clixml_errors(lines: &[&str]) -> String {
    let records: Vec<(ClixmlStream, &str)> =
        lines.iter().map(|l| (ClixmlStream::Error, *l)).collect();
    encode_clixml_streams(&records)
}

/// The stream a string record of a CLIXML stderr document belongs to: the `S` attribute
/// of its `<S>` element. `powershell.exe` writes `Error` capitalised and the others in
/// lower case. Only `Error` records are read back by [`decode_clixml`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClixmlStream {
    /// `<S S="Error">`: a line of an error record.
    Error,
    /// `<S S="warning">`: a `Write-Warning` message.
    Warning,
    /// `<S S="verbose">`: a `Write-Verbose` message.
    Verbose,
}

impl ClixmlStream {
    fn attribute(self) -> &'static str {
        match self {
            ClixmlStream::Error => "Error",
            ClixmlStream::Warning => "warning",
            ClixmlStream::Verbose => "verbose",
        }
    }
}

/// [`encode_clixml_errors`] for records of several streams, in order: one `<S>` record
/// per line, escaped the same way, each ending in `_x000D__x000A_` (the lab writes its
/// warning and verbose lines with it).
pub fn encode_clixml_streams(records: &[(ClixmlStream, &str)]) -> String {
    let mut out = String::from(CLIXML_HEADER);
    out.push_str(
        "\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">",
    );
    for (stream, line) in records {
        out.push_str("<S S=\"");
        out.push_str(stream.attribute());
        out.push_str("\">");
        out.push_str(&escape_clixml(line));
        out.push_str("_x000D__x000A_</S>");
    }
    out.push_str("</Objs>");
    out
}

fn escape_clixml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Also `_xHHHH` without its closing `_`: the next character may be escaped and
            // supply one (`_x000D` then U+0001 would read back as `_x000D_`; fuzz/clixml).
            '_' if matches!(rest.as_bytes().get(1..6), Some([b'x' | b'X', h @ ..])
                if h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                out.push_str("_x005F_")
            }
            c if (c as u32) < 0x20 || c == '\u{7F}' || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("_x{:04X}_", c as u32));
            }
            c => out.push(c),
        }
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for s in [
            "plain",
            "a_x000D_b",
            "tab\there",
            "\u{1F600} smile",
            "<&>",
            "_x",
        ] {
            assert_eq!(decode_clixml(&encode_clixml_errors(&[s])), s);
        }
    }

    #[test]
    fn streams_keep_their_attribute_and_only_errors_decode() {
        let doc = encode_clixml_streams(&[
            (ClixmlStream::Warning, "careful"),
            (ClixmlStream::Error, "a_x0041_b"),
            (ClixmlStream::Verbose, "said"),
        ]);
        assert!(doc.contains("<S S=\"warning\">careful_x000D__x000A_</S>"));
        assert!(doc.contains("<S S=\"Error\">a_x005F_x0041_b_x000D__x000A_</S>"));
        assert!(doc.contains("<S S=\"verbose\">said_x000D__x000A_</S>"));
        assert_eq!(decode_clixml(&doc), "a_x0041_b");
    }

    #[test]
    fn surrogate_pairs() {
        assert_eq!(unescape_clixml("_xD83D__xDE00_"), "\u{1F600}");
        assert_eq!(unescape_clixml("_xD83D_x"), "\u{FFFD}x");
    }
}
