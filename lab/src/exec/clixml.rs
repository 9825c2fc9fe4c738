//! What powershell.exe writes to stderr besides output: the error, warning and verbose
//! streams, either as plain text (`-Command`) or as the `#< CLIXML` document that
//! `powershell.exe -EncodedCommand` writes when its stderr is redirected; and the
//! `-EncodedCommand` codec (base64 of UTF-16LE).
//!
//! The CLIXML encoder and the base64/UTF-16LE codec are `winrm::powershell`'s (one
//! encoder, which escapes `_x005F_`); only the stream selection is the lab's.

use winrm::powershell::{encode_clixml_streams, ClixmlStream};

/// One entry of the CLIXML error stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamLine {
    /// Error stream line.
    Error(String),
    /// Warning.
    Warning(String),
    /// Verbose.
    Verbose(String),
}

/// Serialises the non-output streams the way powershell.exe writes them to a redirected
/// stderr after `-EncodedCommand` (nothing at all when there is nothing to write).
pub(crate) fn clixml(lines: &[StreamLine]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let records: Vec<(ClixmlStream, &str)> = lines
        .iter()
        .map(|l| match l {
            StreamLine::Error(t) => (ClixmlStream::Error, t.as_str()),
            StreamLine::Warning(t) => (ClixmlStream::Warning, t.as_str()),
            StreamLine::Verbose(t) => (ClixmlStream::Verbose, t.as_str()),
        })
        .collect();
    encode_clixml_streams(&records)
}

/// Plain-text form of the same streams (for `-Command`).
pub(crate) fn plain(lines: &[StreamLine]) -> String {
    let mut out = String::new();
    for l in lines {
        match l {
            StreamLine::Error(t) => out.push_str(t),
            StreamLine::Warning(t) => {
                out.push_str("WARNING: ");
                out.push_str(t);
            }
            StreamLine::Verbose(t) => {
                out.push_str("VERBOSE: ");
                out.push_str(t);
            }
        }
        out.push('\n');
    }
    out
}

/// Decodes an `-EncodedCommand` value: base64 of UTF-16LE (the same decoder the
/// `winrm` crate's PowerShell helpers use).
pub(crate) fn decode_encoded_command(b64: &str) -> Option<String> {
    winrm::powershell::decode_encoded_command(b64).ok()
}

/// Encodes a script for `-EncodedCommand` (tests and tools).
pub fn encode_command(script: &str) -> String {
    winrm::powershell::encode_command(script)
}
