//! The lab's PowerShell 5.1 subset: a script through `powershell.exe -EncodedCommand`
//! (decoding, the lexer and parser, the `$input` walk of the parsed script), and raw text
//! as a WinRS command line (CommandLineToArgvW splitting, `powershell.exe` parameters).
#![no_main]

use lab::exec::{encode_command, reads_stdin, split_args, starts_powershell};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line = format!(
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
        encode_command(text)
    );
    let _ = reads_stdin(&line);
    let _ = reads_stdin(text);
    let _ = starts_powershell(text);
    let _ = lab::exec::ps::parse_cli(&split_args(text));
});
