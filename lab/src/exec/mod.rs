//! Running a WinRS command line the way a Windows host would: `cmd.exe /c <line>`, with
//! cmd built-ins, native tools (`hostname`, `whoami`, `nltest`) and `powershell.exe`
//! running a small Windows PowerShell 5.1 subset ([`ps`]).
//!
//! Output uses CRLF line endings. Unknown commands get cmd's own "is not recognized"
//! message on stderr with exit code 1 (`cmd /c` exits with 1; the 9009 seen in batch files
//! is `%ERRORLEVEL%` inside cmd, not the process exit code — not verified on a live host).

mod clixml;
mod cmdlets;
mod codepage;
mod native;
pub mod ps;
mod wildcard;

pub use clixml::encode_command;

use crate::domain::LabTime;
use crate::host::HostId;
use crate::model::{ExecResult, Identity, State, StdinMode};

/// What a command sees of the lab while it runs.
pub(crate) struct Env<'a> {
    pub(crate) st: &'a mut State,
    pub(crate) now: LabTime,
    pub(crate) host: HostId,
    pub(crate) identity: &'a Identity,
    /// The session has a full (elevated) administrator token.
    pub(crate) elevated: bool,
    /// How stdin is attached (`WINRS_CONSOLEMODE_STDIN`): a console leaves PowerShell's
    /// `$input` empty.
    pub(crate) stdin_mode: StdinMode,
    /// `powershell.exe -NonInteractive`: a prompt (`ShouldContinue`, `Read-Host`) fails
    /// instead of waiting.
    pub(crate) non_interactive: bool,
    /// The costly things run so far (priced by the wire layer's latency profile).
    pub(crate) work: crate::latency::Work,
}

/// Converts LF line endings to CRLF (leaves existing CRLF alone).
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Splits a Windows command line into arguments (CommandLineToArgvW rules).
///
/// Works on the line's bytes and copies runs of ordinary characters at once: the probe's
/// command line is a long `-EncodedCommand` argument, split up to three times per command
/// (`starts_powershell`, `reads_stdin`, the run itself). The rule's special characters
/// (`\`, `"`, ASCII whitespace) are single bytes; other whitespace (`char::is_whitespace`)
/// is decoded where a non-ASCII byte starts.
pub fn split_args(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    // The whitespace char starting at byte `i`, with its length.
    let space_at = |i: usize| -> Option<usize> {
        match bytes.get(i) {
            Some(&b) if b < 0x80 => (b as char).is_whitespace().then_some(1),
            Some(_) => line
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .filter(|c| c.is_whitespace())
                .map(char::len_utf8),
            None => None,
        }
    };
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while let Some(n) = space_at(i) {
            i += n;
        }
        if i >= bytes.len() {
            break;
        }
        let mut cur = String::new();
        let mut in_quotes = false;
        while let Some(&b) = bytes.get(i) {
            if b == b'\\' {
                let mut n = 0;
                while bytes.get(i) == Some(&b'\\') {
                    n += 1;
                    i += 1;
                }
                if bytes.get(i) == Some(&b'"') {
                    cur.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += 1;
                    }
                } else {
                    cur.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if b == b'"' {
                if in_quotes && bytes.get(i + 1) == Some(&b'"') {
                    cur.push('"');
                    i += 2;
                    continue;
                }
                in_quotes = !in_quotes;
                i += 1;
                continue;
            }
            // A run of ordinary characters (whitespace too, inside quotes).
            let run = i;
            while let Some(&b) = bytes.get(i) {
                if b == b'\\' || b == b'"' {
                    break;
                }
                if b < 0x80 {
                    if !in_quotes && (b as char).is_whitespace() {
                        break;
                    }
                    i += 1;
                } else {
                    match space_at(i) {
                        Some(_) if !in_quotes => break,
                        Some(n) => i += n,
                        None => {
                            i += line
                                .get(i..)
                                .and_then(|rest| rest.chars().next())
                                .map_or(1, char::len_utf8)
                        }
                    }
                }
            }
            if i == run {
                // Whitespace outside quotes ends the argument.
                break;
            }
            cur.push_str(line.get(run..i).unwrap_or(""));
        }
        args.push(cur);
    }
    args
}

/// The program name of an argument: file name without directory and `.exe`, lower case.
pub(crate) fn program_name(arg: &str) -> String {
    let base = arg
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(arg)
        .to_ascii_lowercase();
    base.strip_suffix(".exe")
        .map(str::to_string)
        .unwrap_or(base)
}

/// Does this command line start PowerShell (any spelling: `powershell`, `PowerShell.exe`,
/// `%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe`, quoted or not, also
/// behind `cmd /c`)? Each such start pays PowerShell's start-up time.
pub fn starts_powershell(command_line: &str) -> bool {
    let args = split_args(command_line);
    let Some(first) = args.first() else {
        return false;
    };
    let prog = program_name(first);
    if prog == "cmd" {
        let rest: &[String] = args.get(1..).unwrap_or(&[]);
        return rest
            .iter()
            .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
            .and_then(|pos| rest.get(pos + 1))
            .is_some_and(|f| program_name(f) == "powershell");
    }
    prog == "powershell"
}

/// Does this command line read stdin to its end before finishing? True for PowerShell
/// scripts that read `$input` (found in the parsed script, not its text: `'$input'` or a
/// comment does not count) and for `powershell` reading its script from stdin.
pub fn reads_stdin(command_line: &str) -> bool {
    let args = split_args(command_line);
    let Some(first) = args.first() else {
        return false;
    };
    let mut prog = program_name(first);
    let mut rest: &[String] = args.get(1..).unwrap_or(&[]);
    if prog == "cmd" {
        if let Some(pos) = rest
            .iter()
            .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
        {
            rest = rest.get(pos + 1..).unwrap_or(&[]);
            let Some(f) = rest.first() else { return false };
            prog = program_name(f);
            rest = rest.get(1..).unwrap_or(&[]);
        }
    }
    if prog != "powershell" {
        return false;
    }
    match ps::parse_cli(rest) {
        Ok(cli) => match cli.script {
            ps::CliScript::Text(s) => ps::script_reads_input(&s),
            ps::CliScript::Stdin => true,
        },
        Err(_) => false,
    }
}

/// Runs one command line.
pub(crate) fn execute(
    st: &mut State,
    now: LabTime,
    host: HostId,
    identity: &Identity,
    command_line: &str,
    stdin: &[u8],
    stdin_mode: StdinMode,
) -> ExecResult {
    let elevated = match st.host(host) {
        Some(h) => st.authorize(h, identity).is_ok(),
        None => false,
    };
    let mut env = Env {
        st,
        now,
        host,
        identity,
        elevated,
        stdin_mode,
        non_interactive: false,
        work: crate::latency::Work::default(),
    };
    let (stdout, stderr, exit_code) = run_cmd_line(&mut env, command_line, stdin);
    ExecResult {
        stdout: crlf(&stdout).into_bytes(),
        stderr: crlf(&stderr).into_bytes(),
        exit_code,
        work: env.work,
    }
}

/// `cmd.exe /c <line>`: returns (stdout, stderr, exit) with LF line endings.
fn run_cmd_line(env: &mut Env<'_>, line: &str, stdin: &[u8]) -> (String, String, i64) {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return (String::new(), String::new(), 0);
    }
    // cmd built-in echo takes the rest of the line verbatim.
    let lower = trimmed.to_ascii_lowercase();
    if lower == "echo" {
        return ("ECHO is on.\n".into(), String::new(), 0);
    }
    if lower.starts_with("echo.") {
        let rest = trimmed.get(5..).unwrap_or("");
        return (format!("{rest}\n"), String::new(), 0);
    }
    if lower.starts_with("echo ") {
        let rest = trimmed.get(5..).unwrap_or("");
        return (format!("{rest}\n"), String::new(), 0);
    }
    let args = split_args(trimmed);
    let Some(first) = args.first() else {
        return (String::new(), String::new(), 0);
    };
    let prog = program_name(first);
    let rest: Vec<String> = args.get(1..).map(|r| r.to_vec()).unwrap_or_default();
    if prog == "cmd" {
        if let Some(pos) = rest
            .iter()
            .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"))
        {
            // Re-run the remainder of the original line.
            let after = rest.get(pos + 1..).map(|r| r.join(" ")).unwrap_or_default();
            return run_cmd_line(env, &after, stdin);
        }
        return (String::new(), String::new(), 0);
    }
    if prog == "powershell" {
        return ps::run_powershell(env, &rest, stdin);
    }
    if prog == "pwsh" {
        // PowerShell 7 is not installed on these hosts.
    } else if let Some(out) = native::run(env, &prog, &rest) {
        return (out.stdout, out.stderr, out.exit);
    }
    let shown = if first.contains(' ') {
        format!("\"{first}\"")
    } else {
        first.clone()
    };
    (
        String::new(),
        format!("'{shown}' is not recognized as an internal or external command,\noperable program or batch file.\n"),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::split_args;

    /// CommandLineToArgvW's rules one char at a time: the definition [`split_args`] must
    /// agree with.
    fn split_args_by_char(line: &str) -> Vec<String> {
        let mut args = Vec::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        loop {
            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let mut cur = String::new();
            let mut in_quotes = false;
            while let Some(&c) = chars.get(i) {
                if c.is_whitespace() && !in_quotes {
                    break;
                }
                if c == '\\' {
                    let mut n = 0;
                    while chars.get(i) == Some(&'\\') {
                        n += 1;
                        i += 1;
                    }
                    if chars.get(i) == Some(&'"') {
                        cur.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            cur.push('"');
                            i += 1;
                        }
                    } else {
                        cur.extend(std::iter::repeat_n('\\', n));
                    }
                    continue;
                }
                if c == '"' {
                    if in_quotes && chars.get(i + 1) == Some(&'"') {
                        cur.push('"');
                        i += 2;
                        continue;
                    }
                    in_quotes = !in_quotes;
                    i += 1;
                    continue;
                }
                cur.push(c);
                i += 1;
            }
            args.push(cur);
        }
        args
    }

    #[test]
    fn split_args_agrees_with_the_char_by_char_rules_on_random_lines() {
        // Quotes, backslashes, ASCII and Unicode whitespace (NBSP, ideographic space),
        // other non-ASCII letters, plain letters.
        let alphabet = [
            'a', 'Z', '0', ' ', '\t', '\n', '"', '"', '\\', '\\', '\u{a0}', '\u{3000}', 'é', '✓',
            '\u{85}', '-',
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let line: String = (0..len)
                .map(|k| {
                    let r = x.rotate_left(k as u32 * 5);
                    alphabet[(r % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(split_args(&line), split_args_by_char(&line), "{line:?}");
        }
    }

    #[test]
    fn split_args_examples() {
        assert_eq!(
            split_args(r#"powershell.exe -c "a b" c\"d e\\"f g""#),
            vec!["powershell.exe", "-c", "a b", "c\"d", "e\\f g"]
        );
        assert_eq!(split_args(r#""a""b" c"#), vec!["a\"b", "c"]);
        assert!(split_args(" \t ").is_empty());
    }
}
