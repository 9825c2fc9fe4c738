//! How `powershell.exe` decodes piped stdin: with `[Console]::InputEncoding`, which starts as
//! the console's input code page — the OEM code page, 437 on en-US Windows — and which a
//! script may set (Ansible's bootstrap sets UTF-8 without BOM before reading `$input`).
//! .NET's `Console.InputEncoding` setter drops the current `Console.In` reader, so the
//! encoding in force when the script first reads stdin is the one used (DOMAIN.md "WinRM
//! details": "Set `[Console]::InputEncoding` to UTF-8 ... first for non-ASCII data").
//!
//! The lab ignores `WINRS_CODEPAGE` here: it sets the shell's output code page, and whether
//! it also changes the input code page PowerShell starts with is not documented, so the
//! lab takes the pessimistic side (OEM 437, which turns UTF-8 bytes of non-ASCII
//! characters into mojibake).

/// The console input encoding a PowerShell process decodes stdin with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum InputEncoding {
    /// The OEM code page 437 (the default on en-US Windows).
    #[default]
    Oem437,
    /// UTF-8 (`New-Object System.Text.UTF8Encoding $false`, `[Text.Encoding]::UTF8`).
    Utf8,
}

/// Code page 437's characters for bytes 0x80..=0xFF (Unicode's cp437 mapping table).
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// Decodes stdin bytes as `encoding` (a UTF-8 BOM is dropped, as .NET's reader does).
pub(crate) fn decode(bytes: &[u8], encoding: InputEncoding) -> String {
    match encoding {
        InputEncoding::Utf8 => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            String::from_utf8_lossy(bytes).into_owned()
        }
        InputEncoding::Oem437 => bytes
            .iter()
            .map(|&b| {
                if b < 0x80 {
                    char::from(b)
                } else {
                    CP437_HIGH
                        .get(usize::from(b - 0x80))
                        .copied()
                        .unwrap_or('?')
                }
            })
            .collect(),
    }
}

/// Text line by line as PowerShell reads it: the lines `$input` enumerates from decoded
/// stdin, and a native program's output (CRLF or LF; no trailing empty line).
pub(crate) fn lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bytes_read_as_oem_437_are_mojibake() {
        let utf8 = "Pässwörd€".as_bytes();
        assert_eq!(decode(utf8, InputEncoding::Utf8), "Pässwörd€");
        assert_eq!(decode(utf8, InputEncoding::Oem437), "P├ñssw├╢rdΓé¼");
        assert_eq!(decode(b"plain\r\n", InputEncoding::Oem437), "plain\r\n");
    }
}
