//! A deliberately small Windows PowerShell 5.1 subset: enough to run trustsweep's scripts
//! faithfully, and to fail the way PowerShell fails on anything else.
//!
//! Supported: statements separated by newlines or `;`; `$var = <pipeline>`; `try {} catch
//! {}`; `if (...) {} elseif (...) {} else {}`; `foreach ($x in ...) {}`; `exit [n]`;
//! `throw`; `[Console]::InputEncoding = ...`; pipelines with `|` (to `Out-Null`,
//! `Out-String`, `Select-Object -ExpandProperty`); expressions: quoted strings
//! (double-quoted with `$var`, `${var}`, `$(...)` expansion — like PowerShell, `"$a.B"`
//! does *not* expand `.B`), numbers, `$var`, `.Prop`, `[i]`, `(...)`, `$(...)`, `@(...)`,
//! `@{...}`, `,` arrays, `+`, `-eq`/`-ne`/`-like`, `-lt`/`-le`/`-gt`/`-ge`, `-not`/`!`,
//! `-and`/`-or`; commands with parameters, `2>&1`, `2>$null`; common parameters
//! `-ErrorAction`, `-ErrorVariable`, `-Verbose`. Errors print as 5.1 prints them (see
//! `error` and the `clixml` module).
//!
//! In parts, in the order a script meets them: `cli` (the `powershell.exe` command
//! line), `lexer` and `parser` (text to `ast`), then the evaluator: `engine` (its
//! state), `eval` (statements, expressions), `command` (pipelines, native programs,
//! cmdlets), `binding` (parameters), `flow` (how control leaves a statement),
//! `value` and `operators` (what values are and do), `output` (what reaches the
//! console). The cmdlets themselves are in the sibling `cmdlets` module.

// Error records are returned by value on cold paths; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

pub(crate) mod ast;
pub(crate) mod binding;
mod cli;
mod command;
pub(crate) mod engine;
pub(crate) mod error;
mod eval;
pub(crate) mod flow;
mod lexer;
mod operators;
mod output;
mod parser;
pub(crate) mod value;

pub use cli::{parse_cli, Cli, CliError, CliScript};

use super::clixml;
pub(crate) use super::clixml::StreamLine;
use super::Env;
use crate::model::StdinMode;
use engine::Engine;
use flow::Flow;

/// Runs `powershell.exe <args>`: returns (stdout, stderr, exit) with LF line endings.
pub(crate) fn run_powershell(
    env: &mut Env<'_>,
    args: &[String],
    stdin: &[u8],
) -> (String, String, i64) {
    let cli = match parse_cli(args) {
        Ok(c) => c,
        Err(CliError(msg)) => return (String::new(), format!("{msg}\n"), 1),
    };
    // `$input` reads piped stdin only: with a WinRS console (WINRS_CONSOLEMODE_STDIN=TRUE
    // or absent) it stays empty (DOMAIN.md "WinRM details", the pessimistic side). The
    // bytes are decoded when the script reads them (see `codepage`).
    let piped = if env.stdin_mode == StdinMode::Pipe {
        stdin.to_vec()
    } else {
        Vec::new()
    };
    let (script, input) = match cli.script {
        CliScript::Text(s) => (s, piped),
        CliScript::Stdin => (String::from_utf8_lossy(stdin).into_owned(), Vec::new()),
    };
    env.non_interactive = cli.non_interactive;
    let clixml_errors = cli.encoded && !cli.output_format_given;
    run_script(env, &script, input, clixml_errors)
}

/// Does this script read `$input` (so its stdin must have ended before it runs)? Decided
/// from the parse ([`ast::reads_input`]); a script that does not parse reads nothing, as
/// it never runs.
pub(crate) fn script_reads_input(script: &str) -> bool {
    parser::parse_script(script).is_ok_and(|stmts| ast::reads_input(&stmts))
}

/// Runs a script; returns (stdout, stderr, exit).
pub(crate) fn run_script(
    env: &mut Env<'_>,
    script: &str,
    input: Vec<u8>,
    clixml_errors: bool,
) -> (String, String, i64) {
    let mut engine = Engine::new(env, script, input);
    let exit = match parser::parse_script(script) {
        Err(e) => {
            engine
                .streams
                .extend(e.lines(script).into_iter().map(StreamLine::Error));
            1
        }
        Ok(stmts) => {
            let mut out = Vec::new();
            let r = engine.exec_block(&stmts, &mut out, true);
            engine.emit(&out);
            match r {
                Ok(()) if engine.last_ok => 0,
                Ok(()) => 1,
                Err(Flow::Exit(code)) => code,
                // A terminating error nothing caught ends the script.
                Err(Flow::Throw(err) | Flow::StatementTerminated(err)) => {
                    engine.write_error(&err);
                    1
                }
            }
        }
    };
    let stderr = if clixml_errors {
        clixml::clixml(&engine.streams)
    } else {
        clixml::plain(&engine.streams)
    };
    (engine.stdout, stderr, exit)
}

#[cfg(test)]
mod tests {
    use super::script_reads_input;

    #[test]
    fn reads_input_is_found_in_the_parse_not_the_text() {
        for script in [
            "$lines = @($input)",
            "$INPUT | Out-String",
            "Write-Output ${input}",
            "Write-Output \"got $input\"",
            "Write-Output \"n=$(@($input).Count)\"",
            "Write-Output pre$input",
            "if ($false) { $x = $input }",
            "try { foreach ($l in $input) { $l } } catch { }",
            "[Console]::InputEncoding = New-Object System.Text.UTF8Encoding $false\n$a = $input",
        ] {
            assert!(script_reads_input(script), "{script}");
        }
        for script in [
            "Write-Output 1",
            "Write-Output '$input'",
            "# $input\nWrite-Output 1",
            "$inputs = 1",
            "$script:input = 1",
            "Write-Output ($input",
        ] {
            assert!(!script_reads_input(script), "{script}");
        }
    }
}
