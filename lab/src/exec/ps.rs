//! A deliberately small Windows PowerShell 5.1 subset: enough to run trustsweep's scripts
//! faithfully, and to fail the way PowerShell fails on anything else.
//!
//! Supported: statements separated by newlines or `;`; `$var = <pipeline>`; `try {} catch
//! {}`; `if (...) {} elseif (...) {} else {}`; `exit [n]`; pipelines with `|` (to
//! `Out-Null`, `Out-String`, `Select-Object -ExpandProperty`); expressions: quoted strings
//! (double-quoted with `$var`, `${var}`, `$(...)` expansion — like PowerShell, `"$a.B"`
//! does *not* expand `.B`), numbers, `$var`, `.Prop`, `[i]`, `(...)`, `$(...)`, `@(...)`,
//! `,` arrays, `+`, `-eq`/`-ne`/`-like`, `-lt`/`-le`/`-gt`/`-ge`, `-not`/`!`, `-and`/`-or`; commands with
//! parameters, `2>&1`, `2>$null`; common parameters `-ErrorAction`, `-ErrorVariable`,
//! `-Verbose`. Errors print as 5.1 prints them (see the `clixml` module).

// Error records are returned by value on cold paths; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use super::clixml::{self, ErrorRecord, NativeKind, Position, StreamLine};
use super::codepage::{self, InputEncoding};
use super::{cmdlets, native, program_name, Env};
use crate::model::StdinMode;

// ---------------------------------------------------------------------------------------
// powershell.exe command line
// ---------------------------------------------------------------------------------------

/// Where the script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliScript {
    /// `-Command` text or a decoded `-EncodedCommand`.
    Text(String),
    /// Read from stdin (`-Command -`, or no command at all).
    Stdin,
}

/// Parsed `powershell.exe` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The script.
    pub script: CliScript,
    /// Came from `-EncodedCommand` (errors then go to stderr as CLIXML).
    pub encoded: bool,
    /// `-OutputFormat` was given.
    pub output_format_given: bool,
    /// `-NonInteractive` was given.
    pub non_interactive: bool,
}

/// A `powershell.exe` command-line error (printed on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

fn is_prefix_of(key: &str, name: &str, min: usize) -> bool {
    key.len() >= min && name.starts_with(key)
}

/// Parses `powershell.exe` arguments (after the program name). Parameter names are
/// matched like powershell.exe does: any case, unambiguous prefixes (`-enc`, `-e`, `-ec`).
pub fn parse_cli(args: &[String]) -> Result<Cli, CliError> {
    let mut encoded = false;
    let mut output_format_given = false;
    let mut non_interactive = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let Some(key) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('/')) else {
            let text = args.get(i..).map(|r| r.join(" ")).unwrap_or_default();
            return Ok(Cli {
                script: CliScript::Text(text),
                encoded,
                output_format_given,
                non_interactive,
            });
        };
        let key = key.to_ascii_lowercase();
        if key.is_empty() {
            return Ok(Cli {
                script: CliScript::Stdin,
                encoded,
                output_format_given,
                non_interactive,
            });
        }
        if is_prefix_of(&key, "executionpolicy", 2) || key == "ep" {
            i += 2;
            continue;
        }
        if is_prefix_of(&key, "encodedcommand", 1) || key == "ec" {
            let Some(b64) = args.get(i + 1) else {
                return Err(CliError(
                    "Cannot process the command because -EncodedCommand requires an argument."
                        .into(),
                ));
            };
            encoded = true;
            return match clixml::decode_encoded_command(b64) {
                Some(s) => Ok(Cli { script: CliScript::Text(s), encoded, output_format_given, non_interactive }),
                None => Err(CliError(
                    "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded."
                        .into(),
                )),
            };
        }
        if is_prefix_of(&key, "command", 1) {
            let rest = args.get(i + 1..).unwrap_or(&[]);
            if rest.first().map(String::as_str) == Some("-") {
                return Ok(Cli {
                    script: CliScript::Stdin,
                    encoded,
                    output_format_given,
                    non_interactive,
                });
            }
            return Ok(Cli {
                script: CliScript::Text(rest.join(" ")),
                encoded,
                output_format_given,
                non_interactive,
            });
        }
        if is_prefix_of(&key, "outputformat", 1) || key == "of" {
            output_format_given = true;
            i += 2;
            continue;
        }
        if is_prefix_of(&key, "inputformat", 1)
            || key == "if"
            || is_prefix_of(&key, "windowstyle", 1)
            || is_prefix_of(&key, "version", 1)
        {
            i += 2;
            continue;
        }
        if is_prefix_of(&key, "file", 1) {
            return Err(CliError(
                "The -File parameter is not supported by this host.".into(),
            ));
        }
        let switches = [
            "noprofile",
            "noninteractive",
            "nologo",
            "noexit",
            "sta",
            "mta",
        ];
        if is_prefix_of(&key, "noninteractive", 3) {
            non_interactive = true;
        }
        if switches.iter().any(|s| is_prefix_of(&key, s, 3)) || key == "nop" {
            i += 1;
            continue;
        }
        // Anything else starts the command text.
        let text = args.get(i..).map(|r| r.join(" ")).unwrap_or_default();
        return Ok(Cli {
            script: CliScript::Text(text),
            encoded,
            output_format_given,
            non_interactive,
        });
    }
    Ok(Cli {
        script: CliScript::Stdin,
        encoded,
        output_format_given,
        non_interactive,
    })
}

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

fn split_lines(text: &str) -> Vec<String> {
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

/// Runs a script; returns (stdout, stderr, exit).
pub(crate) fn run_script(
    env: &mut Env<'_>,
    script: &str,
    input: Vec<u8>,
    clixml_errors: bool,
) -> (String, String, i64) {
    let mut engine = Engine::new(env, script, input);
    let mut p = Parser::new(script);
    let exit = match p.parse_script() {
        Err(e) => {
            engine.streams.extend(
                parse_error_lines(&e, script)
                    .into_iter()
                    .map(StreamLine::Error),
            );
            1
        }
        Ok(stmts) => {
            let mut out = Vec::new();
            match engine.exec_block(&stmts, &mut out, true) {
                Ok(()) => {
                    engine.emit(&out);
                    if engine.last_ok {
                        0
                    } else {
                        1
                    }
                }
                Err(Flow::Exit(code)) => {
                    engine.emit(&out);
                    code
                }
                Err(Flow::Throw(err)) => {
                    engine.emit(&out);
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

fn parse_error_lines(e: &ParseError, script: &str) -> Vec<String> {
    let (line, col) = line_col(script, e.at);
    let text = script
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .to_string();
    vec![
        format!("At line:{line} char:{col}"),
        format!("+ {}", text.trim_end()),
        format!("+ {}~", " ".repeat(col.saturating_sub(1))),
        e.message.clone(),
        "    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException"
            .to_string(),
        format!("    + FullyQualifiedErrorId : {}", e.id),
        " ".to_string(),
    ]
}

fn line_col(script: &str, at: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in script.chars().enumerate() {
        if i >= at {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

// ---------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------

/// Char offsets in the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    Pipeline(Pipeline),
    Assign {
        var: String,
        value: Pipeline,
    },
    /// `[Type]::Property = <pipeline>` (only `[Console]::InputEncoding` is known).
    SetStatic {
        type_name: String,
        member: String,
        value: Pipeline,
        span: Span,
    },
    Try {
        body: Vec<Stmt>,
        catch: Vec<Stmt>,
    },
    If {
        arms: Vec<(Pipeline, Vec<Stmt>)>,
        otherwise: Option<Vec<Stmt>>,
    },
    Foreach {
        var: String,
        source: Pipeline,
        body: Vec<Stmt>,
    },
    Exit(Option<Expr>),
    Throw(Option<Expr>, Span),
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub(crate) elements: Vec<Element>,
}

#[derive(Debug, Clone)]
pub(crate) enum Element {
    Expr(Expr),
    Command(Command),
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) name: String,
    pub(crate) name_span: Span,
    pub(crate) args: Vec<Arg>,
    pub(crate) merge_stderr: bool,
    pub(crate) discard_stderr: bool,
    pub(crate) span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Param { name: String, value: Option<Expr> },
    Value(Expr),
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Str(String),
    Expandable(Vec<Part>),
    Int(i64),
    Var(String),
    Paren(Box<Pipeline>),
    Sub(Vec<Stmt>),
    AtArray(Vec<Stmt>),
    Hash(Vec<(String, Expr)>),
    Member(Box<Expr>, String),
    Method(Box<Expr>, String, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Array(Vec<Expr>),
    Binary(Box<Expr>, BinOp, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Eq,
    Ne,
    Like,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Lit(String),
    Var(String),
    Sub(Vec<Stmt>),
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) struct ParseError {
    message: String,
    id: String,
    at: usize,
}

struct Parser {
    s: Vec<char>,
    i: usize,
    /// Current nesting of blocks, unary operators and parentheses (bounded, so that a
    /// hostile script cannot overflow the lab's stack).
    depth: usize,
}

/// How deep blocks, unary operators and parentheses may nest in one script.
const MAX_NESTING: usize = 256;

fn is_var_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '?' || c == ':'
}

fn is_terminator(c: char) -> bool {
    matches!(c, '\n' | ';' | '|' | ')' | '}' | '\r')
}

impl Parser {
    fn new(src: &str) -> Self {
        Parser {
            s: src.chars().collect(),
            i: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn err<T>(&self, message: &str, id: &str) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.to_string(),
            id: id.to_string(),
            at: self.i,
        })
    }

    /// Skips spaces, tabs, comments and backtick line continuations (not newlines).
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' || c == '\u{a0}' {
                self.i += 1;
            } else if c == '`' && matches!(self.peek_at(1), Some('\n') | Some('\r')) {
                self.i += 1;
                while matches!(self.peek(), Some('\r') | Some('\n')) {
                    self.i += 1;
                }
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn skip_ws_nl(&mut self) {
        loop {
            self.skip_ws();
            if matches!(self.peek(), Some('\n') | Some('\r')) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn starts_with_word(&self, word: &str) -> bool {
        let n = word.chars().count();
        let got: String = self.s.iter().skip(self.i).take(n).collect();
        if !got.eq_ignore_ascii_case(word) {
            return false;
        }
        !self
            .s
            .get(self.i + n)
            .is_some_and(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_NESTING {
            return self.err(
                "The script is nested too deeply to be parsed.",
                "ScriptNestedTooDeeply",
            );
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn parse_block(&mut self, until: Option<char>) -> Result<Vec<Stmt>, ParseError> {
        self.nested(|p| p.parse_block_inner(until))
    }

    fn parse_unary(&mut self) -> Result<Expr, ParseError> {
        self.nested(|p| p.parse_unary_inner())
    }

    fn parse_primary(&mut self) -> Result<Expr, ParseError> {
        self.nested(|p| p.parse_primary_inner())
    }

    fn parse_script(&mut self) -> Result<Vec<Stmt>, ParseError> {
        let stmts = self.parse_block(None)?;
        if self.i < self.s.len() {
            return self.err(
                "Unexpected token in expression or statement.",
                "UnexpectedToken",
            );
        }
        Ok(stmts)
    }

    fn parse_block_inner(&mut self, until: Option<char>) -> Result<Vec<Stmt>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    if let Some(u) = until {
                        let msg = if u == '}' {
                            "Missing closing '}' in statement block or type definition."
                        } else {
                            "Missing closing ')' in expression."
                        };
                        return self.err(
                            msg,
                            if u == '}' {
                                "MissingEndCurlyBrace"
                            } else {
                                "MissingEndParenthesisInExpression"
                            },
                        );
                    }
                    return Ok(out);
                }
                Some(c) if Some(c) == until => return Ok(out),
                Some('\n') | Some('\r') | Some(';') => {
                    self.i += 1;
                }
                Some('}') | Some(')') => {
                    return self.err(
                        "Unexpected token in expression or statement.",
                        "UnexpectedToken",
                    )
                }
                Some(_) => out.push(self.parse_statement()?),
            }
        }
    }

    fn parse_braced_block(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.skip_ws_nl();
        if self.peek() != Some('{') {
            return self.err("Missing statement block.", "MissingStatementBlock");
        }
        self.i += 1;
        let b = self.parse_block(Some('}'))?;
        self.i += 1;
        Ok(b)
    }

    fn parse_statement(&mut self) -> Result<Stmt, ParseError> {
        if self.starts_with_word("try") {
            self.i += 3;
            let body = self.parse_braced_block()?;
            self.skip_ws_nl();
            if !self.starts_with_word("catch") {
                return self.err(
                    "The Try statement is missing its Catch or Finally block.",
                    "MissingCatchOrFinally",
                );
            }
            self.i += 5;
            self.skip_ws();
            if self.peek() == Some('[') {
                while self.peek().is_some_and(|c| c != ']') {
                    self.i += 1;
                }
                self.i += 1;
            }
            let catch = self.parse_braced_block()?;
            return Ok(Stmt::Try { body, catch });
        }
        if self.starts_with_word("if") {
            self.i += 2;
            let mut arms = Vec::new();
            let mut otherwise = None;
            loop {
                self.skip_ws();
                if self.peek() != Some('(') {
                    return self.err(
                        "Missing '(' after 'if' in if statement.",
                        "MissingOpenParenthesisInIfStatement",
                    );
                }
                self.i += 1;
                self.skip_ws_nl();
                let cond = self.parse_pipeline()?;
                self.skip_ws_nl();
                if self.peek() != Some(')') {
                    return self.err(
                        "Missing closing ')' after expression in 'if' statement.",
                        "MissingEndParenthesisAfterStatement",
                    );
                }
                self.i += 1;
                let body = self.parse_braced_block()?;
                arms.push((cond, body));
                let save = self.i;
                self.skip_ws_nl();
                if self.starts_with_word("elseif") {
                    self.i += 6;
                    continue;
                }
                if self.starts_with_word("else") {
                    self.i += 4;
                    otherwise = Some(self.parse_braced_block()?);
                } else {
                    self.i = save;
                }
                break;
            }
            return Ok(Stmt::If { arms, otherwise });
        }
        if self.starts_with_word("foreach") {
            // `foreach ($x in <pipeline>) { ... }`: one pass per item of a finite value, so
            // every loop is bounded by the data it walks.
            self.i += 7;
            self.skip_ws();
            if self.peek() != Some('(') {
                return self.err(
                    "Missing opening '(' after keyword 'foreach'.",
                    "MissingOpenParenthesisAfterKeyword",
                );
            }
            self.i += 1;
            self.skip_ws();
            if self.peek() != Some('$') {
                return self.err(
                    "Missing variable name after foreach.",
                    "MissingVariableNameAfterForeach",
                );
            }
            self.i += 1;
            let var = self.read_var_name();
            self.skip_ws();
            if var.is_empty() || !self.starts_with_word("in") {
                return self.err(
                    "Missing 'in' after variable in foreach loop.",
                    "MissingInInForeach",
                );
            }
            self.i += 2;
            self.skip_ws_nl();
            let source = self.parse_pipeline()?;
            self.skip_ws_nl();
            if self.peek() != Some(')') {
                return self.err(
                    "Missing closing ')' after expression in 'foreach' statement.",
                    "MissingEndParenthesisAfterForeach",
                );
            }
            self.i += 1;
            let body = self.parse_braced_block()?;
            return Ok(Stmt::Foreach { var, source, body });
        }
        if self.starts_with_word("exit") {
            self.i += 4;
            self.skip_ws();
            if self.peek().is_none_or(is_terminator) {
                return Ok(Stmt::Exit(None));
            }
            return Ok(Stmt::Exit(Some(self.parse_expression()?)));
        }
        if self.starts_with_word("throw") {
            let start = self.i;
            self.i += 5;
            self.skip_ws();
            let span = Span { start, end: self.i };
            if self.peek().is_none_or(is_terminator) {
                return Ok(Stmt::Throw(None, span));
            }
            return Ok(Stmt::Throw(Some(self.parse_expression()?), span));
        }
        if self.peek() == Some('[') {
            if let Some(stmt) = self.static_assignment()? {
                return Ok(stmt);
            }
        }
        if self.peek() == Some('$') {
            let save = self.i;
            self.i += 1;
            let name = self.read_var_name();
            self.skip_ws();
            if !name.is_empty() && self.peek() == Some('=') && self.peek_at(1) != Some('=') {
                self.i += 1;
                self.skip_ws_nl();
                let value = self.parse_pipeline()?;
                return Ok(Stmt::Assign { var: name, value });
            }
            self.i = save;
        }
        Ok(Stmt::Pipeline(self.parse_pipeline()?))
    }

    /// `[Type]::Member = <pipeline>` at the cursor; `None` (cursor unchanged) when the
    /// statement is something else, such as a cast.
    fn static_assignment(&mut self) -> Result<Option<Stmt>, ParseError> {
        let start = self.i;
        let mut type_name = String::new();
        self.i += 1;
        while let Some(c) = self.peek().filter(|c| *c != ']' && *c != '\n') {
            type_name.push(c);
            self.i += 1;
        }
        let mut member = String::new();
        if self.peek() == Some(']') && self.peek_at(1) == Some(':') && self.peek_at(2) == Some(':')
        {
            self.i += 3;
            while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                member.push(c);
                self.i += 1;
            }
        }
        let end = self.i;
        self.skip_ws();
        if member.is_empty() || self.peek() != Some('=') || self.peek_at(1) == Some('=') {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        self.skip_ws_nl();
        let value = self.parse_pipeline()?;
        Ok(Some(Stmt::SetStatic {
            type_name: type_name.trim().to_string(),
            member,
            value,
            span: Span { start, end },
        }))
    }

    fn read_var_name(&mut self) -> String {
        if self.peek() == Some('{') {
            self.i += 1;
            let mut n = String::new();
            while let Some(c) = self.peek() {
                self.i += 1;
                if c == '}' {
                    break;
                }
                n.push(c);
            }
            return n;
        }
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c == ':'
                && !self
                    .peek_at(1)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                break;
            }
            if is_var_char(c) && (c != '?' || n.is_empty()) {
                n.push(c);
                self.i += 1;
                if c == '?' || n == "$" {
                    break;
                }
            } else if c == '$' && n.is_empty() {
                n.push(c);
                self.i += 1;
                break;
            } else {
                break;
            }
        }
        n
    }

    fn parse_pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut elements = Vec::new();
        loop {
            self.skip_ws();
            elements.push(self.parse_element()?);
            self.skip_ws();
            if self.peek() == Some('|') && self.peek_at(1) != Some('|') {
                self.i += 1;
                self.skip_ws_nl();
                continue;
            }
            break;
        }
        Ok(Pipeline { elements })
    }

    fn starts_expression(&self) -> bool {
        match self.peek() {
            Some('$') | Some('\'') | Some('"') | Some('(') | Some('@') | Some('!') | Some('[') => {
                true
            }
            Some(c) if c.is_ascii_digit() => true,
            Some('-') => {
                self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) || self.starts_with_word("-not")
            }
            _ => false,
        }
    }

    fn parse_element(&mut self) -> Result<Element, ParseError> {
        if self.starts_expression() {
            let e = self.parse_expression()?;
            self.skip_ws();
            // Redirections after an expression are accepted and ignored.
            self.skip_redirections();
            return Ok(Element::Expr(e));
        }
        Ok(Element::Command(self.parse_command()?))
    }

    fn skip_redirections(&mut self) -> (bool, bool) {
        let mut merge = false;
        let mut discard = false;
        loop {
            self.skip_ws();
            let rest: String = self.s.iter().skip(self.i).take(8).collect();
            let lower = rest.to_ascii_lowercase();
            if lower.starts_with("2>&1") {
                self.i += 4;
                merge = true;
            } else if lower.starts_with("2>$null") {
                self.i += 7;
                discard = true;
            } else if lower.starts_with(">$null") {
                self.i += 6;
            } else if lower.starts_with("*>$null") {
                self.i += 7;
                discard = true;
            } else {
                break;
            }
        }
        (merge, discard)
    }

    fn parse_command(&mut self) -> Result<Command, ParseError> {
        let start = self.i;
        if self.peek() == Some('&') {
            return self.err(
                "The ampersand (&) character is not allowed.",
                "AmpersandNotAllowed",
            );
        }
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || is_terminator(c) || c == '(' || c == ',' {
                break;
            }
            name.push(c);
            self.i += 1;
        }
        if name.is_empty() {
            return self.err(
                "Unexpected token in expression or statement.",
                "UnexpectedToken",
            );
        }
        let name_span = Span { start, end: self.i };
        let mut args = Vec::new();
        let mut merge_stderr = false;
        let mut discard_stderr = false;
        loop {
            let (m, d) = self.skip_redirections();
            merge_stderr |= m;
            discard_stderr |= d;
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            if is_terminator(c) {
                break;
            }
            if c == '-' && self.peek_at(1).is_some_and(|c| c.is_alphabetic()) {
                self.i += 1;
                let mut pname = String::new();
                while let Some(c) = self.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        pname.push(c);
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                if self.peek() == Some(':') {
                    self.i += 1;
                    let v = self.parse_arg_value()?;
                    args.push(Arg::Param {
                        name: pname,
                        value: Some(v),
                    });
                } else {
                    args.push(Arg::Param {
                        name: pname,
                        value: None,
                    });
                }
                continue;
            }
            args.push(Arg::Value(self.parse_arg_value()?));
        }
        let mut end = self.i;
        while end > start && self.s.get(end - 1).is_some_and(|c| c.is_whitespace()) {
            end -= 1;
        }
        Ok(Command {
            name,
            name_span,
            args,
            merge_stderr,
            discard_stderr,
            span: Span { start, end },
        })
    }

    fn parse_arg_value(&mut self) -> Result<Expr, ParseError> {
        self.comma_list(Self::parse_arg_primary)
    }

    /// `a, b, c` (PowerShell's array operator): one item stays itself, several make an
    /// array.
    fn comma_list(
        &mut self,
        item: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let mut items = vec![item(self)?];
        loop {
            self.skip_ws();
            if self.peek() == Some(',') {
                self.i += 1;
                self.skip_ws_nl();
                items.push(item(self)?);
            } else {
                break;
            }
        }
        if items.len() == 1 {
            Ok(items.remove(0))
        } else {
            Ok(Expr::Array(items))
        }
    }

    /// The entries of `@{ Key = value; 'Other Key' = a, b }` after the `@{`, through `}`.
    fn parse_hash_body(&mut self) -> Result<Expr, ParseError> {
        let mut entries = Vec::new();
        loop {
            while self.peek().is_some_and(|c| c.is_whitespace() || c == ';') {
                self.i += 1;
            }
            match self.peek() {
                None => {
                    return self.err("The hash literal was incomplete.", "IncompleteHashLiteral")
                }
                Some('}') => {
                    self.i += 1;
                    return Ok(Expr::Hash(entries));
                }
                _ => {}
            }
            let key = if matches!(self.peek(), Some('\'') | Some('"')) {
                match self.parse_primary_inner()? {
                    Expr::Str(k) => k,
                    Expr::Expandable(parts) => parts
                        .iter()
                        .map(|p| if let Part::Lit(t) = p { t.as_str() } else { "" })
                        .collect(),
                    _ => String::new(),
                }
            } else {
                let mut k = String::new();
                while let Some(c) = self
                    .peek()
                    .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                {
                    k.push(c);
                    self.i += 1;
                }
                k
            };
            if key.is_empty() {
                return self.err(
                    "Missing key before '=' in hash literal.",
                    "MissingEqualsInHashLiteral",
                );
            }
            self.skip_ws();
            if self.peek() != Some('=') {
                return self.err(
                    "Missing '=' operator after key in hash literal.",
                    "MissingEqualsInHashLiteral",
                );
            }
            self.i += 1;
            self.skip_ws_nl();
            let value = self.comma_list(Self::parse_expression)?;
            entries.push((key, value));
        }
    }

    fn parse_arg_primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some('\'') | Some('"') | Some('$') | Some('(') | Some('@') => self.parse_postfix(),
            _ => {
                let mut text = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || is_terminator(c) || c == ',' || c == '(' {
                        break;
                    }
                    if c == '$' && self.peek_at(1) == Some('(') {
                        break;
                    }
                    text.push(c);
                    self.i += 1;
                }
                if text.is_empty() {
                    return self.err(
                        "Unexpected token in expression or statement.",
                        "UnexpectedToken",
                    );
                }
                if text.contains('$') {
                    let parts = expand_bareword(&text);
                    return Ok(Expr::Expandable(parts));
                }
                Ok(Expr::Str(text))
            }
        }
    }

    fn parse_expression(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_comparison()?;
        loop {
            self.skip_ws();
            let op = if self.starts_with_word("-and") {
                BinOp::And
            } else if self.starts_with_word("-or") {
                BinOp::Or
            } else {
                break;
            };
            self.i += if op == BinOp::And { 4 } else { 3 };
            self.skip_ws_nl();
            let right = self.parse_comparison()?;
            left = Expr::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.parse_additive()?;
        self.skip_ws();
        let ops = [
            ("-eq", BinOp::Eq),
            ("-ieq", BinOp::Eq),
            ("-ne", BinOp::Ne),
            ("-ine", BinOp::Ne),
            ("-like", BinOp::Like),
            ("-ilike", BinOp::Like),
            ("-lt", BinOp::Lt),
            ("-le", BinOp::Le),
            ("-gt", BinOp::Gt),
            ("-ge", BinOp::Ge),
        ];
        for (word, op) in ops {
            if self.starts_with_word(word) {
                self.i += word.len();
                self.skip_ws_nl();
                let right = self.parse_additive()?;
                return Ok(Expr::Binary(Box::new(left), op, Box::new(right)));
            }
        }
        Ok(left)
    }

    fn parse_additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_unary()?;
        loop {
            self.skip_ws();
            if self.peek() == Some('+') {
                self.i += 1;
                self.skip_ws_nl();
                let right = self.parse_unary()?;
                left = Expr::Binary(Box::new(left), BinOp::Add, Box::new(right));
            } else {
                break;
            }
        }
        Ok(left)
    }

    fn parse_unary_inner(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.peek() == Some('!') {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.parse_unary()?)));
        }
        if self.starts_with_word("-not") {
            self.i += 4;
            self.skip_ws();
            return Ok(Expr::Not(Box::new(self.parse_unary()?)));
        }
        self.comma_list(Self::parse_postfix)
    }

    fn parse_postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.parse_primary()?;
        loop {
            match self.peek() {
                Some('.')
                    if self
                        .peek_at(1)
                        .is_some_and(|c| c.is_alphabetic() || c == '_') =>
                {
                    self.i += 1;
                    let mut name = String::new();
                    while let Some(c) = self.peek() {
                        if c.is_alphanumeric() || c == '_' {
                            name.push(c);
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    if self.peek() == Some('(') {
                        self.i += 1;
                        self.skip_ws_nl();
                        let mut margs = Vec::new();
                        if self.peek() != Some(')') {
                            loop {
                                margs.push(self.parse_additive()?);
                                self.skip_ws_nl();
                                if self.peek() == Some(',') {
                                    self.i += 1;
                                    self.skip_ws_nl();
                                } else {
                                    break;
                                }
                            }
                        }
                        if self.peek() != Some(')') {
                            return self.err(
                                "Missing closing ')' in expression.",
                                "MissingEndParenthesisInMethodCall",
                            );
                        }
                        self.i += 1;
                        e = Expr::Method(Box::new(e), name, margs);
                    } else {
                        e = Expr::Member(Box::new(e), name);
                    }
                }
                Some('[') => {
                    self.i += 1;
                    self.skip_ws();
                    let idx = self.parse_expression()?;
                    self.skip_ws();
                    if self.peek() != Some(']') {
                        return self.err(
                            "Array index expression is missing or not valid.",
                            "MissingArrayIndexExpression",
                        );
                    }
                    self.i += 1;
                    e = Expr::Index(Box::new(e), Box::new(idx));
                }
                _ => break,
            }
        }
        Ok(e)
    }

    fn parse_primary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some('\'') => {
                self.i += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return self.err(
                                "The string is missing the terminator: '.",
                                "TerminatorExpectedAtEndOfString",
                            )
                        }
                        Some('\'') if self.peek_at(1) == Some('\'') => {
                            s.push('\'');
                            self.i += 2;
                        }
                        Some('\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Expr::Str(s))
            }
            Some('"') => {
                self.i += 1;
                let parts = self.parse_dq_parts()?;
                Ok(Expr::Expandable(parts))
            }
            Some('$') if self.peek_at(1) == Some('(') => {
                self.i += 2;
                let b = self.parse_block(Some(')'))?;
                self.i += 1;
                Ok(Expr::Sub(b))
            }
            Some('@') if self.peek_at(1) == Some('(') => {
                self.i += 2;
                let b = self.parse_block(Some(')'))?;
                self.i += 1;
                Ok(Expr::AtArray(b))
            }
            Some('@') if self.peek_at(1) == Some('{') => {
                self.i += 2;
                self.nested(Self::parse_hash_body)
            }
            Some('$') => {
                self.i += 1;
                let name = self.read_var_name();
                if name.is_empty() {
                    return Ok(Expr::Str("$".into()));
                }
                Ok(Expr::Var(name))
            }
            Some('(') => {
                self.i += 1;
                self.skip_ws_nl();
                let p = self.parse_pipeline()?;
                self.skip_ws_nl();
                if self.peek() != Some(')') {
                    return self.err(
                        "Missing closing ')' in expression.",
                        "MissingEndParenthesisInExpression",
                    );
                }
                self.i += 1;
                Ok(Expr::Paren(Box::new(p)))
            }
            Some('[') => {
                // A type cast/literal: [string]$x etc. — the type is ignored.
                while self.peek().is_some_and(|c| c != ']') {
                    self.i += 1;
                }
                self.i += 1;
                self.parse_postfix()
            }
            Some('-') if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.i += 1;
                match self.parse_primary()? {
                    Expr::Int(n) => Ok(Expr::Int(-n)),
                    other => Ok(other),
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_digit() {
                        n.push(c);
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Ok(Expr::Int(n.parse().unwrap_or(i64::MAX)))
            }
            _ => self.err(
                "You must provide a value expression following the '=' operator.",
                "ExpectedValueExpression",
            ),
        }
    }

    fn parse_dq_parts(&mut self) -> Result<Vec<Part>, ParseError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            match self.peek() {
                None => {
                    return self.err(
                        "The string is missing the terminator: \".",
                        "TerminatorExpectedAtEndOfString",
                    )
                }
                Some('"') if self.peek_at(1) == Some('"') => {
                    lit.push('"');
                    self.i += 2;
                }
                Some('"') => {
                    self.i += 1;
                    break;
                }
                Some('`') => {
                    self.i += 1;
                    let c = self.peek().unwrap_or('`');
                    self.i += 1;
                    lit.push(match c {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        '0' => '\0',
                        other => other,
                    });
                }
                Some('$') if self.peek_at(1) == Some('(') => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    self.i += 2;
                    let b = self.parse_block(Some(')'))?;
                    self.i += 1;
                    parts.push(Part::Sub(b));
                }
                Some('$') if self.peek_at(1).is_some_and(|c| is_var_char(c) || c == '{') => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    self.i += 1;
                    let name = self.read_var_name();
                    parts.push(Part::Var(name));
                }
                Some(c) => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(parts)
    }
}

fn expand_bareword(text: &str) -> Vec<Part> {
    let mut p = Parser::new(text);
    let mut parts = Vec::new();
    let mut lit = String::new();
    while let Some(c) = p.peek() {
        if c == '$' && p.peek_at(1).is_some_and(|c| is_var_char(c) || c == '{') {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            p.i += 1;
            parts.push(Part::Var(p.read_var_name()));
        } else {
            lit.push(c);
            p.i += 1;
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// A PowerShell object as far as the subset needs.
#[derive(Debug, Clone)]
pub(crate) struct PsObject {
    /// .NET/CIM type name.
    #[allow(dead_code)]
    pub(crate) type_name: String,
    /// Properties in order.
    pub(crate) props: Vec<(String, Value)>,
    /// What `ToString()` gives.
    pub(crate) text: String,
}

impl PsObject {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A PSCredential.
#[derive(Clone)]
pub(crate) struct PsCred {
    pub(crate) user: String,
    pub(crate) password: SecretString,
}

impl std::fmt::Debug for PsCred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PsCred")
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// An evaluated command argument: parameter name (for `-Name`) and value.
type RawArg = (Option<String>, Option<Value>);

/// A value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Value>),
    Obj(Box<PsObject>),
    Secure(SecretString),
    Cred(Box<PsCred>),
    Error(Box<ErrorRecord>),
}

impl Value {
    /// `"$x"` conversion.
    pub(crate) fn to_ps_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(Value::to_ps_string)
                .collect::<Vec<_>>()
                .join(" "),
            Value::Obj(o) => o.text.clone(),
            Value::Secure(_) => "System.Security.SecureString".into(),
            Value::Cred(_) => "System.Management.Automation.PSCredential".into(),
            Value::Error(e) => e.message.clone(),
        }
    }

    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(a) => match a.as_slice() {
                [] => false,
                [one] => one.truthy(),
                _ => true,
            },
            _ => true,
        }
    }

    /// Pipeline enumeration.
    fn enumerate(self) -> Vec<Value> {
        match self {
            Value::Array(items) => items,
            Value::Null => vec![Value::Null],
            other => vec![other],
        }
    }

    fn member(&self, name: &str) -> Value {
        match self {
            Value::Obj(o) => o.get(name).cloned().unwrap_or(Value::Null),
            Value::Array(items) => {
                if name.eq_ignore_ascii_case("count") || name.eq_ignore_ascii_case("length") {
                    return Value::Int(i64::try_from(items.len()).unwrap_or(i64::MAX));
                }
                let vals: Vec<Value> = items
                    .iter()
                    .map(|v| v.member(name))
                    .filter(|v| !matches!(v, Value::Null))
                    .collect();
                collapse(vals)
            }
            Value::Str(s) if name.eq_ignore_ascii_case("length") => {
                Value::Int(i64::try_from(s.chars().count()).unwrap_or(i64::MAX))
            }
            Value::Error(e) => {
                if name.eq_ignore_ascii_case("exception") {
                    Value::Obj(Box::new(PsObject {
                        type_name: e.exception_type.clone(),
                        props: vec![("Message".into(), Value::Str(e.message.clone()))],
                        text: e.message.clone(),
                    }))
                } else if name.eq_ignore_ascii_case("fullyqualifiederrorid") {
                    Value::Str(e.fqid.clone())
                } else if name.eq_ignore_ascii_case("targetobject") {
                    Value::Str(e.target.clone())
                } else {
                    Value::Null
                }
            }
            Value::Cred(c) if name.eq_ignore_ascii_case("username") => Value::Str(c.user.clone()),
            Value::Cred(c) if name.eq_ignore_ascii_case("password") => {
                Value::Secure(c.password.clone())
            }
            _ => Value::Null,
        }
    }
}

/// 0 items → `$null`, 1 → the item, more → an array (assignment semantics).
pub(crate) fn collapse(mut items: Vec<Value>) -> Value {
    match items.len() {
        0 => Value::Null,
        1 => items.pop().unwrap_or(Value::Null),
        _ => Value::Array(items),
    }
}

fn like(text: &str, pattern: &str) -> bool {
    fn rec(t: &[char], p: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some('*'), _) => {
                rec(t, p.get(1..).unwrap_or(&[]))
                    || (!t.is_empty() && rec(t.get(1..).unwrap_or(&[]), p))
            }
            (Some('?'), Some(_)) => rec(t.get(1..).unwrap_or(&[]), p.get(1..).unwrap_or(&[])),
            (Some(pc), Some(tc)) => {
                pc.eq_ignore_ascii_case(tc)
                    && rec(t.get(1..).unwrap_or(&[]), p.get(1..).unwrap_or(&[]))
            }
            (Some(_), None) => false,
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    rec(&t, &p)
}

// ---------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------

/// Control flow out of a statement.
#[derive(Debug)]
pub(crate) enum Flow {
    /// A terminating error travelling to the nearest `catch` (or ending the script).
    Throw(Box<ErrorRecord>),
    /// `exit n`.
    Exit(i64),
}

/// What a cmdlet did.
#[derive(Debug, Default)]
pub(crate) struct CmdOutcome {
    pub(crate) output: Vec<Value>,
    /// Non-terminating errors.
    pub(crate) errors: Vec<ErrorRecord>,
    /// A statement-terminating error (ThrowTerminatingError).
    pub(crate) terminating: Option<ErrorRecord>,
    pub(crate) warnings: Vec<String>,
    pub(crate) verbose: Vec<String>,
}

impl CmdOutcome {
    pub(crate) fn out(v: Value) -> Self {
        CmdOutcome {
            output: vec![v],
            ..CmdOutcome::default()
        }
    }

    pub(crate) fn none() -> Self {
        CmdOutcome::default()
    }

    pub(crate) fn terminate(e: ErrorRecord) -> Self {
        CmdOutcome {
            terminating: Some(e),
            ..CmdOutcome::default()
        }
    }

    pub(crate) fn error(e: ErrorRecord) -> Self {
        CmdOutcome {
            errors: vec![e],
            ..CmdOutcome::default()
        }
    }
}

/// Bound cmdlet arguments.
#[derive(Debug, Default)]
pub(crate) struct Bound {
    pub(crate) named: HashMap<String, Value>,
    pub(crate) switches: Vec<String>,
}

impl Bound {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.named.get(&name.to_ascii_lowercase())
    }

    pub(crate) fn str(&self, name: &str) -> Option<String> {
        self.get(name).map(Value::to_ps_string)
    }

    pub(crate) fn switch(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        self.switches.contains(&n)
            || self.named.get(&n).is_some_and(|v| match v {
                Value::Bool(b) => *b,
                _ => true,
            })
    }
}

/// A cmdlet's parameters: (name, is_switch, aliases), and positional order.
pub(crate) struct ParamSpec {
    pub(crate) params: &'static [(&'static str, bool, &'static [&'static str])],
    pub(crate) positional: &'static [&'static str],
}

const COMMON: &[(&str, bool, &[&str])] = &[
    ("ErrorAction", false, &["ea"]),
    ("ErrorVariable", false, &["ev"]),
    ("WarningAction", false, &["wa"]),
    ("WarningVariable", false, &["wv"]),
    ("InformationAction", false, &["infa"]),
    ("InformationVariable", false, &["iv"]),
    ("OutVariable", false, &["ov"]),
    ("OutBuffer", false, &["ob"]),
    ("PipelineVariable", false, &["pv"]),
    ("Verbose", true, &["vb"]),
    ("Debug", true, &["db"]),
    ("WhatIf", true, &["wi"]),
    ("Confirm", true, &["cf"]),
];

pub(crate) struct Engine<'e, 'a> {
    pub(crate) env: &'e mut Env<'a>,
    pub(crate) vars: HashMap<String, Value>,
    /// Piped stdin, not yet decoded: `$input` decodes it with `input_encoding`.
    input: Option<Vec<u8>>,
    /// `[Console]::InputEncoding` (OEM 437 until the script sets it).
    input_encoding: InputEncoding,
    script_lines: Vec<String>,
    script_chars: Vec<char>,
    pub(crate) stdout: String,
    pub(crate) streams: Vec<StreamLine>,
    pub(crate) last_ok: bool,
    try_depth: usize,
    errors: Vec<Value>,
}

impl<'e, 'a> Engine<'e, 'a> {
    fn new(env: &'e mut Env<'a>, script: &str, input: Vec<u8>) -> Self {
        let mut vars = HashMap::new();
        vars.insert(
            "erroractionpreference".to_string(),
            Value::Str("Continue".into()),
        );
        vars.insert(
            "progresspreference".to_string(),
            Value::Str("Continue".into()),
        );
        vars.insert(
            "verbosepreference".to_string(),
            Value::Str("SilentlyContinue".into()),
        );
        vars.insert(
            "warningpreference".to_string(),
            Value::Str("Continue".into()),
        );
        Engine {
            env,
            vars,
            input: Some(input),
            input_encoding: InputEncoding::default(),
            script_lines: script
                .split('\n')
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect(),
            script_chars: script.chars().collect(),
            stdout: String::new(),
            streams: Vec::new(),
            last_ok: true,
            try_depth: 0,
            errors: Vec::new(),
        }
    }

    fn position(&self, span: Span) -> Option<Position> {
        let (line, col) = line_col_chars(&self.script_chars, span.start);
        let line_text = self
            .script_lines
            .get(line.saturating_sub(1))
            .cloned()
            .unwrap_or_default();
        let (eline, _) = line_col_chars(
            &self.script_chars,
            span.end.saturating_sub(1).max(span.start),
        );
        let len = if eline == line {
            span.end.saturating_sub(span.start).max(1)
        } else {
            line_text
                .chars()
                .count()
                .saturating_sub(col.saturating_sub(1))
                .max(1)
        };
        Some(Position {
            line,
            col,
            line_text,
            len,
        })
    }

    /// Writes values to stdout as Out-Default would.
    pub(crate) fn emit(&mut self, values: &[Value]) {
        for v in values {
            self.emit_one(v);
        }
    }

    fn emit_one(&mut self, v: &Value) {
        match v {
            Value::Null => {}
            Value::Array(items) => {
                for i in items {
                    self.emit_one(i);
                }
            }
            Value::Error(e) => {
                for l in e.lines() {
                    self.stdout.push_str(&l);
                    self.stdout.push('\n');
                }
            }
            Value::Obj(o) => {
                let width = o
                    .props
                    .iter()
                    .map(|(k, _)| k.chars().count())
                    .max()
                    .unwrap_or(0);
                self.stdout.push('\n');
                for (k, val) in &o.props {
                    self.stdout
                        .push_str(&format!("{k:<width$} : {}\n", val.to_ps_string()));
                }
                self.stdout.push('\n');
            }
            Value::Cred(c) => {
                let w = c.user.chars().count().max(8);
                self.stdout.push_str(&format!(
                    "\n{:<w$} Password\n{:<w$} --------\n{:<w$} System.Security.SecureString\n\n",
                    "UserName", "--------", c.user
                ));
            }
            other => {
                self.stdout.push_str(&other.to_ps_string());
                self.stdout.push('\n');
            }
        }
    }

    pub(crate) fn write_error(&mut self, e: &ErrorRecord) {
        let mut e = e.clone();
        e.fqid = e.fqid.trim_start_matches('\u{0}').to_string();
        for l in e.lines() {
            self.streams.push(StreamLine::Error(l));
        }
    }

    fn var(&mut self, name: &str) -> Value {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            "?" => Value::Bool(self.last_ok),
            "input" => Value::Array(self.take_input().into_iter().map(Value::Str).collect()),
            "error" => Value::Array(self.errors.iter().rev().cloned().collect()),
            "env:computername" => Value::Str(
                self.env
                    .st
                    .host(self.env.host)
                    .map(|h| h.computer_name.clone())
                    .unwrap_or_default(),
            ),
            "env:username" => Value::Str(self.env.identity.user().to_string()),
            "env:userdomain" => Value::Str(
                self.env
                    .identity
                    .qualified()
                    .split('\\')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            "pwd" => Value::Str(format!("C:\\Users\\{}", self.env.identity.user())),
            _ => self.vars.get(&lower).cloned().unwrap_or(Value::Null),
        }
    }

    pub(crate) fn exec_block(
        &mut self,
        stmts: &[Stmt],
        out: &mut Vec<Value>,
        top: bool,
    ) -> Result<(), Flow> {
        for s in stmts {
            self.exec_stmt(s, out)?;
            if top {
                let pending = std::mem::take(out);
                self.emit(&pending);
            }
        }
        Ok(())
    }

    fn exec_stmt(&mut self, s: &Stmt, out: &mut Vec<Value>) -> Result<(), Flow> {
        match s {
            Stmt::Pipeline(p) => {
                let vals = self.run_statement_pipeline(p)?;
                out.extend(vals);
                Ok(())
            }
            Stmt::Assign { var, value } => {
                let vals = self.run_statement_pipeline_assign(value)?;
                if let Some(vals) = vals {
                    self.vars.insert(var.to_ascii_lowercase(), collapse(vals));
                }
                Ok(())
            }
            Stmt::SetStatic {
                type_name,
                member,
                value,
                span,
            } => match self.run_statement_pipeline_assign(value)? {
                Some(vals) => match self.set_static(type_name, member, collapse(vals), *span) {
                    // Statement-terminating outside try: written, and the script goes on.
                    Err(Flow::Throw(e)) if e.fqid.starts_with('\u{0}') => {
                        let mut e = *e;
                        e.fqid = e.fqid.trim_start_matches('\u{0}').to_string();
                        self.write_error(&e);
                        self.errors.push(Value::Error(Box::new(e)));
                        self.last_ok = false;
                        Ok(())
                    }
                    other => other,
                },
                None => Ok(()),
            },
            Stmt::Try { body, catch } => {
                self.try_depth += 1;
                let mut inner = Vec::new();
                let r = self.exec_block(body, &mut inner, false);
                self.try_depth -= 1;
                out.extend(inner);
                match r {
                    Ok(()) => Ok(()),
                    Err(Flow::Exit(c)) => Err(Flow::Exit(c)),
                    Err(Flow::Throw(mut err)) => {
                        err.fqid = err.fqid.trim_start_matches('\u{0}').to_string();
                        let saved = self.vars.insert("_".into(), Value::Error(err.clone()));
                        self.errors.push(Value::Error(err));
                        let r = self.exec_block(catch, out, false);
                        match saved {
                            Some(v) => self.vars.insert("_".into(), v),
                            None => self.vars.remove("_"),
                        };
                        r
                    }
                }
            }
            Stmt::If { arms, otherwise } => {
                for (cond, body) in arms {
                    let v = collapse(self.run_pipeline(cond)?);
                    if v.truthy() {
                        return self.exec_block(body, out, false);
                    }
                }
                if let Some(body) = otherwise {
                    return self.exec_block(body, out, false);
                }
                Ok(())
            }
            Stmt::Foreach { var, source, body } => {
                let items = match collapse(self.run_pipeline(source)?) {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items,
                    one => vec![one],
                };
                for item in items {
                    self.vars.insert(var.to_ascii_lowercase(), item);
                    self.exec_block(body, out, false)?;
                }
                Ok(())
            }
            Stmt::Exit(e) => {
                let code = match e {
                    None => 0,
                    Some(e) => match self.eval(e)? {
                        Value::Int(n) => n,
                        v => v.to_ps_string().trim().parse().unwrap_or(0),
                    },
                };
                Err(Flow::Exit(code))
            }
            Stmt::Throw(e, span) => {
                let msg = match e {
                    Some(e) => self.eval(e)?.to_ps_string(),
                    None => "ScriptHalted".to_string(),
                };
                let err =
                    ErrorRecord::runtime(msg.clone(), &msg, "OperationStopped", "RuntimeException")
                        .at(self.position(*span));
                Err(Flow::Throw(Box::new(err)))
            }
        }
    }

    /// Runs a statement-level pipeline: statement-terminating errors are written (outside
    /// `try`) and the statement yields nothing more.
    fn run_statement_pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>, Flow> {
        Ok(self.run_statement_pipeline_assign(p)?.unwrap_or_default())
    }

    /// Like [`Self::run_statement_pipeline`], `None` when a statement-terminating error
    /// stopped it (an assignment then does not happen).
    fn run_statement_pipeline_assign(&mut self, p: &Pipeline) -> Result<Option<Vec<Value>>, Flow> {
        match self.run_pipeline(p) {
            Ok(v) => Ok(Some(v)),
            Err(Flow::Throw(e)) if e.fqid.starts_with('\u{0}') => {
                // Statement-terminating error outside try (marker in fqid).
                let mut e = *e;
                e.fqid = e.fqid.trim_start_matches('\u{0}').to_string();
                self.write_error(&e);
                self.errors.push(Value::Error(Box::new(e)));
                self.last_ok = false;
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// A statement-terminating error: caught by an enclosing `try`, else written by the
    /// statement runner.
    fn statement_terminating(&self, e: ErrorRecord) -> Flow {
        if self.try_depth > 0 {
            Flow::Throw(Box::new(e))
        } else {
            let mut e = e;
            e.fqid = format!("\u{0}{}", e.fqid);
            Flow::Throw(Box::new(e))
        }
    }

    pub(crate) fn run_pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>, Flow> {
        let mut input: Option<Vec<Value>> = None;
        for el in &p.elements {
            let vals = match el {
                Element::Expr(e) => {
                    let v = self.eval(e)?;
                    self.last_ok = true;
                    v.enumerate()
                }
                Element::Command(c) => self.run_command(c, input.take())?,
            };
            input = Some(vals);
        }
        Ok(input
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !matches!(v, Value::Null))
            .collect())
    }

    fn eval_args(&mut self, c: &Command) -> Result<Vec<RawArg>, Flow> {
        let mut out = Vec::new();
        for a in &c.args {
            match a {
                Arg::Param { name, value } => {
                    let v = match value {
                        Some(e) => Some(self.eval(e)?),
                        None => None,
                    };
                    out.push((Some(name.clone()), v));
                }
                Arg::Value(e) => out.push((None, Some(self.eval(e)?))),
            }
        }
        Ok(out)
    }

    fn run_command(&mut self, c: &Command, input: Option<Vec<Value>>) -> Result<Vec<Value>, Flow> {
        let lname = c.name.to_ascii_lowercase();
        let prog = program_name(&c.name);
        // Native programs.
        if ["hostname", "whoami", "nltest"].contains(&prog.as_str()) && !lname.contains('-') {
            let args: Vec<String> = self
                .eval_args(c)?
                .into_iter()
                .flat_map(|(n, v)| native_arg(n, v))
                .collect();
            return Ok(self.run_native(c, &prog, &args));
        }
        let Some(spec) = cmdlets::spec(&lname) else {
            let e = ErrorRecord::not_recognized(&c.name).at(self.position(c.name_span));
            self.last_ok = false;
            return Err(self.statement_terminating(e));
        };
        let args = self.eval_args(c)?;
        let pos = self.position(c.span);
        let bound = match bind(&c.name, &spec, args) {
            Ok(b) => b,
            Err(e) => {
                self.last_ok = false;
                return Err(self.statement_terminating(e.at(pos)));
            }
        };
        let mut outcome = cmdlets::invoke(self, &lname, &bound, input.unwrap_or_default());
        // Errors name the command as it was typed (the category shows the real cmdlet).
        for e in outcome
            .errors
            .iter_mut()
            .chain(outcome.terminating.iter_mut())
        {
            if !e.command.is_empty() {
                e.command = c.name.clone();
            }
        }
        self.finish_cmdlet(outcome, &bound, pos)
    }

    fn finish_cmdlet(
        &mut self,
        outcome: CmdOutcome,
        bound: &Bound,
        pos: Option<Position>,
    ) -> Result<Vec<Value>, Flow> {
        let action = bound
            .str("ErrorAction")
            .unwrap_or_else(|| self.var("ErrorActionPreference").to_ps_string())
            .to_ascii_lowercase();
        let mut recorded: Vec<Value> = Vec::new();
        for w in &outcome.warnings {
            self.streams.push(StreamLine::Warning(w.clone()));
        }
        if bound.switch("Verbose") {
            for v in &outcome.verbose {
                self.streams.push(StreamLine::Verbose(v.clone()));
            }
        }
        let mut ok = outcome.terminating.is_none() && outcome.errors.is_empty();
        let mut flow = None;
        for e in outcome.errors {
            let e = e.at(pos.clone());
            recorded.push(Value::Error(Box::new(e.clone())));
            match action.as_str() {
                "silentlycontinue" | "ignore" => {
                    if action != "ignore" {
                        self.errors.push(Value::Error(Box::new(e)));
                    }
                }
                "stop" => {
                    if flow.is_none() {
                        flow = Some(Flow::Throw(Box::new(e)));
                    }
                }
                _ => {
                    self.write_error(&e);
                    self.errors.push(Value::Error(Box::new(e)));
                }
            }
        }
        if let Some(t) = outcome.terminating {
            let t = t.at(pos.clone());
            recorded.push(Value::Error(Box::new(t.clone())));
            ok = false;
            if flow.is_none() {
                flow = Some(if action == "stop" {
                    Flow::Throw(Box::new(t))
                } else {
                    self.statement_terminating(t)
                });
            }
        }
        if let Some(name) = bound.str("ErrorVariable") {
            let (append, name) = match name.strip_prefix('+') {
                Some(n) => (true, n.to_string()),
                None => (false, name),
            };
            let key = name.to_ascii_lowercase();
            let mut list = if append {
                match self.vars.remove(&key) {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => Vec::new(),
                    Some(v) => vec![v],
                }
            } else {
                Vec::new()
            };
            list.extend(recorded);
            self.vars.insert(key, Value::Array(list));
        }
        self.last_ok = ok;
        if let Some(f) = flow {
            return Err(f);
        }
        Ok(outcome.output)
    }

    fn run_native(&mut self, c: &Command, prog: &str, args: &[String]) -> Vec<Value> {
        let out = native::run(self.env, prog, args).unwrap_or_default();
        self.vars
            .insert("lastexitcode".into(), Value::Int(out.exit));
        self.last_ok = out.exit == 0;
        let mut vals: Vec<Value> = split_lines(&out.stdout)
            .into_iter()
            .map(Value::Str)
            .collect();
        let pos = self.position(c.span);
        let shown = c.name.clone();
        for (i, line) in split_lines(&out.stderr).into_iter().enumerate() {
            let e = ErrorRecord::native_stderr(&shown, &line, i == 0);
            let e = if i == 0 { e.at(pos.clone()) } else { e };
            if c.merge_stderr {
                vals.push(Value::Error(Box::new(e)));
            } else if !c.discard_stderr {
                if e.native == NativeKind::Following {
                    self.streams.push(StreamLine::Error(line.clone()));
                } else {
                    self.write_error(&e);
                }
            }
        }
        vals
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Value, Flow> {
        Ok(match e {
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Int(n) => Value::Int(*n),
            Expr::Expandable(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => s.push_str(l),
                        Part::Var(v) => s.push_str(&self.var(v).to_ps_string()),
                        Part::Sub(stmts) => {
                            let mut out = Vec::new();
                            self.exec_block(stmts, &mut out, false)?;
                            s.push_str(&collapse(out).to_ps_string());
                        }
                    }
                }
                Value::Str(s)
            }
            Expr::Var(v) => self.var(v),
            Expr::Paren(p) => collapse(self.run_pipeline(p)?),
            Expr::Sub(stmts) => {
                let mut out = Vec::new();
                self.exec_block(stmts, &mut out, false)?;
                collapse(out)
            }
            Expr::Hash(entries) => {
                let mut props = Vec::with_capacity(entries.len());
                for (k, e) in entries {
                    props.push((k.clone(), self.eval(e)?));
                }
                Value::Obj(Box::new(PsObject {
                    type_name: "System.Collections.Hashtable".into(),
                    props,
                    text: "System.Collections.Hashtable".into(),
                }))
            }
            Expr::AtArray(stmts) => {
                let mut out = Vec::new();
                self.exec_block(stmts, &mut out, false)?;
                Value::Array(
                    out.into_iter()
                        .flat_map(|v| match v {
                            Value::Array(a) => a,
                            Value::Null => Vec::new(),
                            other => vec![other],
                        })
                        .collect(),
                )
            }
            Expr::Member(base, name) => self.eval(base)?.member(name),
            Expr::Method(base, name, args) => {
                let b = self.eval(base)?;
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval(a)?);
                }
                method(&b, name, &vals)
            }
            Expr::Index(base, idx) => {
                let b = self.eval(base)?;
                let i = match self.eval(idx)? {
                    Value::Int(n) => n,
                    v => v.to_ps_string().trim().parse().unwrap_or(0),
                };
                index(b, i)
            }
            Expr::Array(items) => {
                let mut vals = Vec::new();
                for i in items {
                    vals.push(self.eval(i)?);
                }
                Value::Array(vals)
            }
            Expr::Not(inner) => Value::Bool(!self.eval(inner)?.truthy()),
            Expr::Binary(l, op, r) => {
                let lv = self.eval(l)?;
                if *op == BinOp::And && !lv.truthy() {
                    return Ok(Value::Bool(false));
                }
                if *op == BinOp::Or && lv.truthy() {
                    return Ok(Value::Bool(true));
                }
                let rv = self.eval(r)?;
                binary(lv, *op, rv)
            }
        })
    }

    /// Consumes `$input`-style stdin lines (for cmdlets that read pipeline input).
    #[allow(dead_code)]
    /// `[Type]::Member = value`. Only `[Console]::InputEncoding` is modelled: it decides how
    /// `$input` decodes piped stdin (.NET drops `Console.In` when it is set, so it applies
    /// to stdin not yet read).
    fn set_static(
        &mut self,
        type_name: &str,
        member: &str,
        value: Value,
        span: Span,
    ) -> Result<(), Flow> {
        let lower = type_name.to_ascii_lowercase();
        if lower.trim_start_matches("system.") != "console" {
            let e = ErrorRecord::runtime(
                format!("Unable to find type [{type_name}]."),
                "TypeNotFound",
                "InvalidOperation",
                "RuntimeException",
            );
            return Err(self.statement_terminating(e.at(self.position(span))));
        }
        if !member.eq_ignore_ascii_case("InputEncoding") {
            let e = ErrorRecord::runtime(
                format!("The property '{member}' cannot be found on this object. Verify that the property exists and can be set."),
                "PropertyNotFound",
                "InvalidOperation",
                "RuntimeException",
            );
            return Err(self.statement_terminating(e.at(self.position(span))));
        }
        let encoding = match &value {
            Value::Obj(o) if o.type_name.ends_with("UTF8Encoding") => Some(InputEncoding::Utf8),
            Value::Obj(o) if o.type_name.ends_with("Encoding") => Some(InputEncoding::Oem437),
            _ => None,
        };
        match encoding {
            Some(enc) => {
                self.input_encoding = enc;
                Ok(())
            }
            None => {
                let why = match value {
                    Value::Null => "Value cannot be null.\r\nParameter name: value".to_string(),
                    v => format!(
                        "Cannot convert value \"{}\" to type \"System.Text.Encoding\".",
                        v.to_ps_string()
                    ),
                };
                let e = ErrorRecord::runtime(
                    format!("Exception setting \"InputEncoding\": \"{why}\""),
                    "ExceptionWhenSetting",
                    "NotSpecified",
                    "SetValueInvocationException",
                );
                Err(self.statement_terminating(e.at(self.position(span))))
            }
        }
    }

    pub(crate) fn take_input(&mut self) -> Vec<String> {
        let bytes = self.input.take().unwrap_or_default();
        codepage::lines(&codepage::decode(&bytes, self.input_encoding))
    }
}

fn line_col_chars(chars: &[char], at: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for c in chars.iter().take(at) {
        if *c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn native_arg(name: Option<String>, v: Option<Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = name {
        match &v {
            Some(val) => out.push(format!("-{n}:{}", val.to_ps_string())),
            None => out.push(format!("-{n}")),
        }
        return out;
    }
    match v {
        Some(Value::Array(items)) => items.iter().map(Value::to_ps_string).collect(),
        Some(val) => vec![val.to_ps_string()],
        None => out,
    }
}

fn method(b: &Value, name: &str, args: &[Value]) -> Value {
    let lname = name.to_ascii_lowercase();
    match (lname.as_str(), b) {
        ("tostring", v) => Value::Str(v.to_ps_string()),
        // System.DateTime.ToFileTimeUtc(): the lab's DateTime objects carry it.
        ("tofiletimeutc", Value::Obj(o)) => o
            .props
            .iter()
            .find(|(k, _)| k == "FileTimeUtc")
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null),
        ("trim", Value::Str(s)) => Value::Str(s.trim().to_string()),
        ("tolower", Value::Str(s)) => Value::Str(s.to_lowercase()),
        ("toupper", Value::Str(s)) => Value::Str(s.to_uppercase()),
        ("contains", Value::Str(s)) => {
            Value::Bool(args.first().is_some_and(|a| s.contains(&a.to_ps_string())))
        }
        ("getnetworkcredential", Value::Cred(c)) => Value::Obj(Box::new(PsObject {
            type_name: "System.Net.NetworkCredential".into(),
            props: vec![
                ("UserName".into(), Value::Str(c.user.clone())),
                (
                    "Password".into(),
                    Value::Str(c.password.expose_secret().to_string()),
                ),
            ],
            text: "System.Net.NetworkCredential".into(),
        })),
        _ => Value::Null,
    }
}

fn index(b: Value, i: i64) -> Value {
    match b {
        Value::Array(items) => {
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let idx = if i < 0 { len + i } else { i };
            usize::try_from(idx)
                .ok()
                .and_then(|u| items.get(u).cloned())
                .unwrap_or(Value::Null)
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
            let idx = if i < 0 { len + i } else { i };
            usize::try_from(idx)
                .ok()
                .and_then(|u| chars.get(u))
                .map(|c| Value::Str(c.to_string()))
                .unwrap_or(Value::Null)
        }
        Value::Null => Value::Null,
        other => {
            if i == 0 || i == -1 {
                other
            } else {
                Value::Null
            }
        }
    }
}

fn binary(l: Value, op: BinOp, r: Value) -> Value {
    match op {
        BinOp::Add => match (l, r) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(b)),
            (Value::Array(mut a), Value::Array(b)) => {
                a.extend(b);
                Value::Array(a)
            }
            (Value::Array(mut a), other) => {
                a.push(other);
                Value::Array(a)
            }
            (Value::Int(a), other) => match other.to_ps_string().trim().parse::<i64>() {
                Ok(b) => Value::Int(a.saturating_add(b)),
                Err(_) => Value::Null,
            },
            (Value::Null, other) => other,
            (a, b) => Value::Str(format!("{}{}", a.to_ps_string(), b.to_ps_string())),
        },
        BinOp::Eq | BinOp::Ne | BinOp::Like => {
            let test = |v: &Value| -> bool {
                let (a, b) = (v.to_ps_string(), r.to_ps_string());
                match op {
                    BinOp::Like => like(&a, &b),
                    _ => match (v, &r) {
                        (Value::Null, Value::Null) => true,
                        (Value::Null, _) | (_, Value::Null) => false,
                        _ => a.eq_ignore_ascii_case(&b),
                    },
                }
            };
            match l {
                Value::Array(items) => {
                    let keep: Vec<Value> = items
                        .into_iter()
                        .filter(|v| test(v) != (op == BinOp::Ne))
                        .collect();
                    Value::Array(keep)
                }
                v => Value::Bool(test(&v) != (op == BinOp::Ne)),
            }
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            // Numbers compare as numbers (the left operand's type decides in PowerShell;
            // the lab's scripts compare integers such as DomainRole), anything else as
            // case-insensitive text. A scalar $null is less than anything.
            let (a, b) = (l.to_ps_string(), r.to_ps_string());
            let ord = match (&l, a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                (Value::Null, _, _) => std::cmp::Ordering::Less,
                (_, Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
            };
            Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        BinOp::And => Value::Bool(l.truthy() && r.truthy()),
        BinOp::Or => Value::Bool(l.truthy() || r.truthy()),
    }
}

fn bind(cmd: &str, spec: &ParamSpec, args: Vec<RawArg>) -> Result<Bound, ErrorRecord> {
    let all: Vec<&(&str, bool, &[&str])> = spec.params.iter().chain(COMMON.iter()).collect();
    let resolve = |key: &str| -> Result<(&'static str, bool), ErrorRecord> {
        let k = key.to_ascii_lowercase();
        let exact: Vec<_> = all
            .iter()
            .filter(|(n, _, aliases)| {
                n.eq_ignore_ascii_case(&k) || aliases.iter().any(|a| a.eq_ignore_ascii_case(&k))
            })
            .collect();
        if let Some((n, sw, _)) = exact.first() {
            return Ok((n, *sw));
        }
        let prefix: Vec<_> = all
            .iter()
            .filter(|(n, _, _)| n.to_ascii_lowercase().starts_with(&k))
            .collect();
        match prefix.as_slice() {
            [(n, sw, _)] => Ok((n, *sw)),
            [] => Err(ErrorRecord::cmdlet(
                cmd,
                &cmdlets::class_of(cmd),
                format!("A parameter cannot be found that matches parameter name '{key}'."),
                "NamedParameterNotFound",
                "InvalidArgument",
                "",
                "ParameterBindingException",
            )),
            many => Err(ErrorRecord::cmdlet(
                cmd,
                &cmdlets::class_of(cmd),
                format!(
                    "Parameter cannot be processed because the parameter name '{key}' is ambiguous. Possible matches include: {}.",
                    many.iter().map(|(n, _, _)| format!("-{n}")).collect::<Vec<_>>().join(" ")
                ),
                "AmbiguousParameter",
                "InvalidArgument",
                "",
                "ParameterBindingException",
            )),
        }
    };
    let mut bound = Bound::default();
    let mut positional: Vec<Value> = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some((name, value)) = it.next() {
        match name {
            Some(n) => {
                let (canon, is_switch) = resolve(&n)?;
                let key = canon.to_ascii_lowercase();
                if is_switch {
                    match value {
                        Some(v) => {
                            bound.named.insert(key, v);
                        }
                        None => bound.switches.push(key),
                    }
                    continue;
                }
                let v = match value {
                    Some(v) => v,
                    None => match it.peek() {
                        Some((None, Some(_))) => it.next().and_then(|(_, v)| v).unwrap_or(Value::Null),
                        _ => {
                            return Err(ErrorRecord::cmdlet(
                                cmd,
                                &cmdlets::class_of(cmd),
                                format!("Missing an argument for parameter '{canon}'. Specify a parameter of type 'System.String' and try again."),
                                "MissingArgument",
                                "InvalidArgument",
                                "",
                                "ParameterBindingException",
                            ))
                        }
                    },
                };
                bound.named.insert(key, v);
            }
            None => {
                if let Some(v) = value {
                    positional.push(v);
                }
            }
        }
    }
    let free_names: Vec<&str> = spec
        .positional
        .iter()
        .copied()
        .filter(|p| !bound.named.contains_key(&p.to_ascii_lowercase()))
        .collect();
    let mut free = free_names.into_iter();
    for v in positional {
        match free.next() {
            Some(p) => {
                bound.named.insert(p.to_ascii_lowercase(), v);
            }
            None => {
                return Err(ErrorRecord::cmdlet(
                    cmd,
                    &cmdlets::class_of(cmd),
                    format!(
                        "A positional parameter cannot be found that accepts argument '{}'.",
                        v.to_ps_string()
                    ),
                    "PositionalParameterNotFound",
                    "InvalidArgument",
                    "",
                    "ParameterBindingException",
                ))
            }
        }
    }
    Ok(bound)
}

#[cfg(test)]
mod nesting_tests {
    use super::Parser;

    #[test]
    fn deeply_nested_scripts_are_a_parse_error_not_a_stack_overflow() {
        // Whatever `{{{…` parses as, it must return rather than overflow.
        let _ = Parser::new(&"{".repeat(50_000)).parse_script();
        for script in [
            "!".repeat(100_000) + "$true",
            "(".repeat(50_000),
            "$(".repeat(50_000),
        ] {
            let r = Parser::new(&script).parse_script();
            assert!(r.is_err(), "{}", &script[..10]);
        }
        // Ordinary nesting still parses.
        assert!(Parser::new("Write-Output (((1)))").parse_script().is_ok());
    }
}
