//! The evaluator's state: variables (with the automatic ones computed from the lab),
//! piped stdin for `$input` and how it is decoded, what has been written so far, `$?`,
//! `$Error`, and how deep in `try` the current statement is. Evaluation itself is in
//! [`super::eval`] (statements and expressions) and [`super::command`] (pipelines and
//! commands); what reaches the console is in [`super::output`].

use std::collections::HashMap;

use super::super::codepage::{self, InputEncoding};
use super::super::Env;
use super::ast::Span;
use super::error::{ErrorRecord, Position};
use super::flow::Flow;
use super::value::Value;
use super::StreamLine;

/// One script's run.
pub(crate) struct Engine<'e, 'a> {
    pub(crate) env: &'e mut Env<'a>,
    pub(super) vars: HashMap<String, Value>,
    /// Piped stdin, not yet decoded: `$input` decodes it with `input_encoding`.
    input: Option<Vec<u8>>,
    /// `[Console]::InputEncoding` (OEM 437 until the script sets it).
    input_encoding: InputEncoding,
    script_lines: Vec<String>,
    /// Where each line of the script starts (char offsets, ascending; the first is 0), so
    /// an error's position is a binary search, not a scan from the script's start.
    line_starts: Vec<usize>,
    /// The script's length in chars.
    script_len: usize,
    /// What the script has written to stdout (LF line endings).
    pub(crate) stdout: String,
    /// The error, warning and verbose streams, in order.
    pub(super) streams: Vec<StreamLine>,
    /// `$?`.
    pub(super) last_ok: bool,
    /// How many `try` bodies enclose the running statement.
    pub(super) try_depth: usize,
    /// `$Error`, oldest first.
    pub(super) errors: Vec<Value>,
}

impl std::fmt::Debug for Engine<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("last_ok", &self.last_ok)
            .field("try_depth", &self.try_depth)
            .finish_non_exhaustive()
    }
}

impl<'e, 'a> Engine<'e, 'a> {
    pub(super) fn new(env: &'e mut Env<'a>, script: &str, input: Vec<u8>) -> Self {
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
        let mut line_starts = vec![0];
        let mut script_len = 0;
        for (k, c) in script.chars().enumerate() {
            if c == '\n' {
                line_starts.push(k + 1);
            }
            script_len = k + 1;
        }
        Engine {
            env,
            vars,
            input: Some(input),
            input_encoding: InputEncoding::default(),
            script_lines: script
                .split('\n')
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect(),
            line_starts,
            script_len,
            stdout: String::new(),
            streams: Vec::new(),
            last_ok: true,
            try_depth: 0,
            errors: Vec::new(),
        }
    }

    pub(super) fn position(&self, span: Span) -> Option<Position> {
        let (line, col) = line_col(&self.line_starts, self.script_len, span.start);
        let line_text = self
            .script_lines
            .get(line.saturating_sub(1))
            .cloned()
            .unwrap_or_default();
        let (eline, _) = line_col(
            &self.line_starts,
            self.script_len,
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

    /// `$name`: the automatic variables (`$true`, `$?`, `$input`, `$Error`, `$env:...`,
    /// `$pwd`), else the script's own.
    pub(super) fn var(&mut self, name: &str) -> Value {
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

    /// `$input`: piped stdin decoded with `[Console]::InputEncoding`, once (a second read
    /// finds it empty).
    fn take_input(&mut self) -> Vec<String> {
        let bytes = self.input.take().unwrap_or_default();
        codepage::lines(&codepage::decode(&bytes, self.input_encoding))
    }

    /// `[Type]::Member = value`. Only `[Console]::InputEncoding` is modelled: it decides how
    /// `$input` decodes piped stdin (.NET drops `Console.In` when it is set, so it applies
    /// to stdin not yet read).
    pub(super) fn set_static(
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

    /// A statement-terminating error: caught by an enclosing `try`, else written by the
    /// statement runner ([`Self::statement_failed`]).
    pub(super) fn statement_terminating(&self, e: ErrorRecord) -> Flow {
        if self.try_depth > 0 {
            Flow::Throw(Box::new(e))
        } else {
            Flow::StatementTerminated(Box::new(e))
        }
    }

    /// A statement-terminating error outside `try` reached its statement: written,
    /// recorded in `$Error`, `$?` false; the script goes on.
    pub(super) fn statement_failed(&mut self, e: ErrorRecord) {
        self.write_error(&e);
        self.errors.push(Value::Error(Box::new(e)));
        self.last_ok = false;
    }
}

/// The 1-based line and column (in chars) of char offset `at`, clamped to the script's
/// length, given where each line starts (`line_starts[0]` is 0).
fn line_col(line_starts: &[usize], script_len: usize, at: usize) -> (usize, usize) {
    let at = at.min(script_len);
    let line = line_starts.partition_point(|&s| s <= at).max(1);
    let start = line_starts.get(line - 1).copied().unwrap_or(0);
    (line, at.saturating_sub(start) + 1)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_agrees_with_counting_from_the_start() {
        let script = "a\n\nbc\r\n  é\n";
        let chars: Vec<char> = script.chars().collect();
        let mut starts = vec![0];
        starts.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(k, _)| k + 1),
        );
        for at in 0..chars.len() + 3 {
            let (mut line, mut col) = (1, 1);
            for c in chars.iter().take(at) {
                if *c == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
            }
            assert_eq!(line_col(&starts, chars.len(), at), (line, col), "at {at}");
        }
    }
}
