//! PowerShell's CLIXML stderr (`#< CLIXML`, MS-PSRP 2.2.5 serialization) and the
//! `-EncodedCommand` command lines a WinRS client sends: `decode_clixml`,
//! `decode_encoded_command`, `script_from_command_line`; and the encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::powershell::{
    decode_clixml, decode_encoded_command, encode_clixml_errors, script_from_command_line,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = decode_clixml(&text);
    let _ = decode_encoded_command(&text);
    let _ = script_from_command_line(&text, &[]);
    let _ = script_from_command_line("powershell.exe", &[text.to_string()]);
    // One error line survives encoding and decoding (decode turns CRLF into LF and trims
    // the end, so compare on such a line). Lines are separate records, so keep to one.
    let line = text.replace('\r', "").replace('\n', " ");
    let line = line.trim_end();
    if !line.is_empty() {
        let decoded = decode_clixml(&encode_clixml_errors(&[line]));
        assert_eq!(decoded, line, "CLIXML round trip");
    }
});
