//! The character-level half of the parser: a cursor over the script's characters that
//! skips blanks, comments and backtick continuations, and scans the tokens whose shape
//! does not depend on the grammar around them (variable names, single-quoted strings,
//! numbers, redirections, bare command words and arguments).
//!
//! PowerShell's tokenizer is mode-dependent (a word is an argument in command mode and an
//! operator in expression mode), so the lab does not make a token stream first: the
//! [`super::parser`] asks this cursor for what it expects next. Offsets are in chars.

use super::ast::Part;
use super::parser::ParseError;

/// A cursor over a script's characters.
#[derive(Debug)]
pub(super) struct Lexer {
    s: Vec<char>,
    /// The current offset (chars).
    pub(super) i: usize,
}

/// May `c` appear in a `$name` variable name?
pub(super) fn is_var_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '?' || c == ':'
}

/// Does `c` end a command argument or statement?
pub(super) fn is_terminator(c: char) -> bool {
    matches!(c, '\n' | ';' | '|' | ')' | '}' | '\r')
}

impl Lexer {
    pub(super) fn new(src: &str) -> Self {
        Lexer {
            s: src.chars().collect(),
            i: 0,
        }
    }

    /// Has the cursor consumed the whole script?
    pub(super) fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    pub(super) fn peek_at(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    /// The char just before offset `at`.
    pub(super) fn char_before(&self, at: usize) -> Option<char> {
        at.checked_sub(1).and_then(|j| self.s.get(j)).copied()
    }

    /// A parse error at the cursor.
    pub(super) fn err<T>(&self, message: &str, id: &str) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.to_string(),
            id: id.to_string(),
            at: self.i,
        })
    }

    /// Skips spaces, tabs, comments and backtick line continuations (not newlines).
    pub(super) fn skip_ws(&mut self) {
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

    /// [`Self::skip_ws`], newlines too.
    pub(super) fn skip_ws_nl(&mut self) {
        loop {
            self.skip_ws();
            if matches!(self.peek(), Some('\n') | Some('\r')) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// Is `prefix` (any ASCII case) at the cursor? Compares in place, allocating nothing.
    fn starts_with_ci(&self, prefix: &str) -> bool {
        prefix.chars().enumerate().all(|(k, p)| {
            self.s
                .get(self.i + k)
                .is_some_and(|c| c.eq_ignore_ascii_case(&p))
        })
    }

    /// Is `word` (any case) at the cursor, not followed by a name character?
    pub(super) fn starts_with_word(&self, word: &str) -> bool {
        let mut n = 0;
        for w in word.chars() {
            match self.s.get(self.i + n) {
                Some(c) if c.eq_ignore_ascii_case(&w) => n += 1,
                _ => return false,
            }
        }
        !self
            .s
            .get(self.i + n)
            .is_some_and(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
    }

    /// Consumes chars while `keep` holds; returns them.
    pub(super) fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| keep(*c)) {
            out.push(c);
            self.i += 1;
        }
        out
    }

    /// Skips to just past the next `]` (or the end): a type literal such as `[string]`,
    /// whose type the subset ignores.
    pub(super) fn skip_past_bracket(&mut self) {
        while self.peek().is_some_and(|c| c != ']') {
            self.i += 1;
        }
        self.i += 1;
    }

    /// The name after a `$`: `${any text}`, `$env:NAME`, `$?`, `$$`, or a plain name.
    pub(super) fn read_var_name(&mut self) -> String {
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

    /// Skips redirections: (`2>&1` seen, stderr discarded). `>$null` is accepted too.
    pub(super) fn skip_redirections(&mut self) -> (bool, bool) {
        let mut merge = false;
        let mut discard = false;
        loop {
            self.skip_ws();
            if self.starts_with_ci("2>&1") {
                self.i += 4;
                merge = true;
            } else if self.starts_with_ci("2>$null") {
                self.i += 7;
                discard = true;
            } else if self.starts_with_ci(">$null") {
                self.i += 6;
            } else if self.starts_with_ci("*>$null") {
                self.i += 7;
                discard = true;
            } else {
                break;
            }
        }
        (merge, discard)
    }

    /// A single-quoted string after its opening `'`, through the closing one (`''` is a
    /// quote).
    pub(super) fn single_quoted(&mut self) -> Result<String, ParseError> {
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
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// A backtick escape in a double-quoted string, after the backtick.
    pub(super) fn escaped_char(&mut self) -> char {
        let c = self.peek().unwrap_or('`');
        self.i += 1;
        match c {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            other => other,
        }
    }

    /// Decimal digits at the cursor (saturating at `i64::MAX`).
    pub(super) fn number(&mut self) -> i64 {
        self.take_while(|c| c.is_ascii_digit())
            .parse()
            .unwrap_or(i64::MAX)
    }

    /// A command name: everything up to blank, terminator, `(` or `,`.
    pub(super) fn command_word(&mut self) -> String {
        self.take_while(|c| !(c.is_whitespace() || is_terminator(c) || c == '(' || c == ','))
    }

    /// A bare command argument: up to blank, terminator, `,`, `(` or `$(`.
    pub(super) fn bare_argument(&mut self) -> String {
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
        text
    }
}

/// The parts of a bare argument with `$var` in it (`C:\Users\$name`).
pub(super) fn expand_bareword(text: &str) -> Vec<Part> {
    let mut p = Lexer::new(text);
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
