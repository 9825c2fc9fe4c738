//! The grammar: a recursive-descent parser from script text to the [`super::ast`], over
//! the [`Lexer`]'s cursor. It accepts the subset described in [`super`] and reports
//! anything else with Windows PowerShell 5.1's parse error texts and ids.

use super::ast::{Arg, BinOp, Command, Element, Expr, Part, Pipeline, Span, Stmt};
use super::lexer::{expand_bareword, is_terminator, is_var_char, Lexer};

/// A script that does not parse: message and error id as PowerShell reports them, and
/// where (char offset).
#[derive(Debug, Clone)]
pub(crate) struct ParseError {
    pub(super) message: String,
    pub(super) id: String,
    pub(super) at: usize,
}

impl ParseError {
    /// The lines PowerShell prints for a parse error of `script`.
    pub(super) fn lines(&self, script: &str) -> Vec<String> {
        let (line, col) = line_col(script, self.at);
        let text = script
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .to_string();
        vec![
            format!("At line:{line} char:{col}"),
            format!("+ {}", text.trim_end()),
            format!("+ {}~", " ".repeat(col.saturating_sub(1))),
            self.message.clone(),
            "    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException"
                .to_string(),
            format!("    + FullyQualifiedErrorId : {}", self.id),
            " ".to_string(),
        ]
    }
}

/// 1-based (line, column) of char offset `at`.
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

/// Parses a whole script.
pub(crate) fn parse_script(script: &str) -> Result<Vec<Stmt>, ParseError> {
    Parser::new(script).parse_script()
}

struct Parser {
    lx: Lexer,
    /// Current nesting of blocks, unary operators and parentheses (bounded, so that a
    /// hostile script cannot overflow the lab's stack).
    depth: usize,
}

/// How deep blocks, unary operators and parentheses may nest in one script.
const MAX_NESTING: usize = 256;

impl Parser {
    fn new(src: &str) -> Self {
        Parser {
            lx: Lexer::new(src),
            depth: 0,
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_NESTING {
            return self.lx.err(
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
        if !self.lx.at_end() {
            return self.lx.err(
                "Unexpected token in expression or statement.",
                "UnexpectedToken",
            );
        }
        Ok(stmts)
    }

    fn parse_block_inner(&mut self, until: Option<char>) -> Result<Vec<Stmt>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.lx.skip_ws();
            match self.lx.peek() {
                None => {
                    if let Some(u) = until {
                        let msg = if u == '}' {
                            "Missing closing '}' in statement block or type definition."
                        } else {
                            "Missing closing ')' in expression."
                        };
                        return self.lx.err(
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
                    self.lx.i += 1;
                }
                Some('}') | Some(')') => {
                    return self.lx.err(
                        "Unexpected token in expression or statement.",
                        "UnexpectedToken",
                    )
                }
                Some(_) => out.push(self.parse_statement()?),
            }
        }
    }

    fn parse_braced_block(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.lx.skip_ws_nl();
        if self.lx.peek() != Some('{') {
            return self
                .lx
                .err("Missing statement block.", "MissingStatementBlock");
        }
        self.lx.i += 1;
        let b = self.parse_block(Some('}'))?;
        self.lx.i += 1;
        Ok(b)
    }

    fn parse_statement(&mut self) -> Result<Stmt, ParseError> {
        if self.lx.starts_with_word("try") {
            return self.parse_try();
        }
        if self.lx.starts_with_word("if") {
            return self.parse_if();
        }
        if self.lx.starts_with_word("foreach") {
            return self.parse_foreach();
        }
        if self.lx.starts_with_word("exit") {
            self.lx.i += 4;
            self.lx.skip_ws();
            if self.lx.peek().is_none_or(is_terminator) {
                return Ok(Stmt::Exit(None));
            }
            return Ok(Stmt::Exit(Some(self.parse_expression()?)));
        }
        if self.lx.starts_with_word("throw") {
            let start = self.lx.i;
            self.lx.i += 5;
            self.lx.skip_ws();
            let span = Span {
                start,
                end: self.lx.i,
            };
            if self.lx.peek().is_none_or(is_terminator) {
                return Ok(Stmt::Throw(None, span));
            }
            return Ok(Stmt::Throw(Some(self.parse_expression()?), span));
        }
        if self.lx.peek() == Some('[') {
            if let Some(stmt) = self.static_assignment()? {
                return Ok(stmt);
            }
        }
        if self.lx.peek() == Some('$') {
            if let Some(stmt) = self.assignment()? {
                return Ok(stmt);
            }
        }
        Ok(Stmt::Pipeline(self.parse_pipeline()?))
    }

    /// `try { } catch [Type] { }` at the `try` (the catch's type filter is ignored).
    fn parse_try(&mut self) -> Result<Stmt, ParseError> {
        self.lx.i += 3;
        let body = self.parse_braced_block()?;
        self.lx.skip_ws_nl();
        if !self.lx.starts_with_word("catch") {
            return self.lx.err(
                "The Try statement is missing its Catch or Finally block.",
                "MissingCatchOrFinally",
            );
        }
        self.lx.i += 5;
        self.lx.skip_ws();
        if self.lx.peek() == Some('[') {
            self.lx.skip_past_bracket();
        }
        let catch = self.parse_braced_block()?;
        Ok(Stmt::Try { body, catch })
    }

    /// `if (...) { } elseif (...) { } else { }` at the `if`.
    fn parse_if(&mut self) -> Result<Stmt, ParseError> {
        self.lx.i += 2;
        let mut arms = Vec::new();
        let mut otherwise = None;
        loop {
            self.lx.skip_ws();
            if self.lx.peek() != Some('(') {
                return self.lx.err(
                    "Missing '(' after 'if' in if statement.",
                    "MissingOpenParenthesisInIfStatement",
                );
            }
            self.lx.i += 1;
            self.lx.skip_ws_nl();
            let cond = self.parse_pipeline()?;
            self.lx.skip_ws_nl();
            if self.lx.peek() != Some(')') {
                return self.lx.err(
                    "Missing closing ')' after expression in 'if' statement.",
                    "MissingEndParenthesisAfterStatement",
                );
            }
            self.lx.i += 1;
            let body = self.parse_braced_block()?;
            arms.push((cond, body));
            let save = self.lx.i;
            self.lx.skip_ws_nl();
            if self.lx.starts_with_word("elseif") {
                self.lx.i += 6;
                continue;
            }
            if self.lx.starts_with_word("else") {
                self.lx.i += 4;
                otherwise = Some(self.parse_braced_block()?);
            } else {
                self.lx.i = save;
            }
            break;
        }
        Ok(Stmt::If { arms, otherwise })
    }

    /// `foreach ($x in <pipeline>) { ... }` at the `foreach`: one pass per item of a finite
    /// value, so every loop is bounded by the data it walks.
    fn parse_foreach(&mut self) -> Result<Stmt, ParseError> {
        self.lx.i += 7;
        self.lx.skip_ws();
        if self.lx.peek() != Some('(') {
            return self.lx.err(
                "Missing opening '(' after keyword 'foreach'.",
                "MissingOpenParenthesisAfterKeyword",
            );
        }
        self.lx.i += 1;
        self.lx.skip_ws();
        if self.lx.peek() != Some('$') {
            return self.lx.err(
                "Missing variable name after foreach.",
                "MissingVariableNameAfterForeach",
            );
        }
        self.lx.i += 1;
        let var = self.lx.read_var_name();
        self.lx.skip_ws();
        if var.is_empty() || !self.lx.starts_with_word("in") {
            return self.lx.err(
                "Missing 'in' after variable in foreach loop.",
                "MissingInInForeach",
            );
        }
        self.lx.i += 2;
        self.lx.skip_ws_nl();
        let source = self.parse_pipeline()?;
        self.lx.skip_ws_nl();
        if self.lx.peek() != Some(')') {
            return self.lx.err(
                "Missing closing ')' after expression in 'foreach' statement.",
                "MissingEndParenthesisAfterForeach",
            );
        }
        self.lx.i += 1;
        let body = self.parse_braced_block()?;
        Ok(Stmt::Foreach { var, source, body })
    }

    /// `$var = <pipeline>` at the `$`; `None` (cursor unchanged) when the statement is
    /// something else, such as `$a -eq 1`.
    fn assignment(&mut self) -> Result<Option<Stmt>, ParseError> {
        let save = self.lx.i;
        self.lx.i += 1;
        let name = self.lx.read_var_name();
        self.lx.skip_ws();
        if !name.is_empty() && self.lx.peek() == Some('=') && self.lx.peek_at(1) != Some('=') {
            self.lx.i += 1;
            self.lx.skip_ws_nl();
            let value = self.parse_pipeline()?;
            return Ok(Some(Stmt::Assign { var: name, value }));
        }
        self.lx.i = save;
        Ok(None)
    }

    /// `[Type]::Member = <pipeline>` at the cursor; `None` (cursor unchanged) when the
    /// statement is something else, such as a cast.
    fn static_assignment(&mut self) -> Result<Option<Stmt>, ParseError> {
        let start = self.lx.i;
        self.lx.i += 1;
        let type_name = self.lx.take_while(|c| c != ']' && c != '\n');
        let mut member = String::new();
        if self.lx.peek() == Some(']')
            && self.lx.peek_at(1) == Some(':')
            && self.lx.peek_at(2) == Some(':')
        {
            self.lx.i += 3;
            member = self.lx.take_while(|c| c.is_alphanumeric() || c == '_');
        }
        let end = self.lx.i;
        self.lx.skip_ws();
        if member.is_empty() || self.lx.peek() != Some('=') || self.lx.peek_at(1) == Some('=') {
            self.lx.i = start;
            return Ok(None);
        }
        self.lx.i += 1;
        self.lx.skip_ws_nl();
        let value = self.parse_pipeline()?;
        Ok(Some(Stmt::SetStatic {
            type_name: type_name.trim().to_string(),
            member,
            value,
            span: Span { start, end },
        }))
    }

    fn parse_pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut elements = Vec::new();
        loop {
            self.lx.skip_ws();
            elements.push(self.parse_element()?);
            self.lx.skip_ws();
            if self.lx.peek() == Some('|') && self.lx.peek_at(1) != Some('|') {
                self.lx.i += 1;
                self.lx.skip_ws_nl();
                continue;
            }
            break;
        }
        Ok(Pipeline { elements })
    }

    fn starts_expression(&self) -> bool {
        match self.lx.peek() {
            Some('$') | Some('\'') | Some('"') | Some('(') | Some('@') | Some('!') | Some('[') => {
                true
            }
            Some(c) if c.is_ascii_digit() => true,
            Some('-') => {
                self.lx.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                    || self.lx.starts_with_word("-not")
            }
            _ => false,
        }
    }

    fn parse_element(&mut self) -> Result<Element, ParseError> {
        if self.starts_expression() {
            let e = self.parse_expression()?;
            self.lx.skip_ws();
            // Redirections after an expression are accepted and ignored.
            self.lx.skip_redirections();
            return Ok(Element::Expr(e));
        }
        Ok(Element::Command(self.parse_command()?))
    }

    fn parse_command(&mut self) -> Result<Command, ParseError> {
        let start = self.lx.i;
        if self.lx.peek() == Some('&') {
            return self.lx.err(
                "The ampersand (&) character is not allowed.",
                "AmpersandNotAllowed",
            );
        }
        let name = self.lx.command_word();
        if name.is_empty() {
            return self.lx.err(
                "Unexpected token in expression or statement.",
                "UnexpectedToken",
            );
        }
        let name_span = Span {
            start,
            end: self.lx.i,
        };
        let mut args = Vec::new();
        let mut merge_stderr = false;
        let mut discard_stderr = false;
        loop {
            let (m, d) = self.lx.skip_redirections();
            merge_stderr |= m;
            discard_stderr |= d;
            self.lx.skip_ws();
            let Some(c) = self.lx.peek() else { break };
            if is_terminator(c) {
                break;
            }
            if c == '-' && self.lx.peek_at(1).is_some_and(|c| c.is_alphabetic()) {
                args.push(self.parse_parameter()?);
                continue;
            }
            args.push(Arg::Value(self.parse_arg_value()?));
        }
        let mut end = self.lx.i;
        while end > start && self.lx.char_before(end).is_some_and(|c| c.is_whitespace()) {
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

    /// `-Name` or `-Name:value` at the `-`.
    fn parse_parameter(&mut self) -> Result<Arg, ParseError> {
        self.lx.i += 1;
        let name = self
            .lx
            .take_while(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if self.lx.peek() == Some(':') {
            self.lx.i += 1;
            let v = self.parse_arg_value()?;
            return Ok(Arg::Param {
                name,
                value: Some(v),
            });
        }
        Ok(Arg::Param { name, value: None })
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
            self.lx.skip_ws();
            if self.lx.peek() == Some(',') {
                self.lx.i += 1;
                self.lx.skip_ws_nl();
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
            while self
                .lx
                .peek()
                .is_some_and(|c| c.is_whitespace() || c == ';')
            {
                self.lx.i += 1;
            }
            match self.lx.peek() {
                None => {
                    return self
                        .lx
                        .err("The hash literal was incomplete.", "IncompleteHashLiteral")
                }
                Some('}') => {
                    self.lx.i += 1;
                    return Ok(Expr::Hash(entries));
                }
                _ => {}
            }
            let key = if matches!(self.lx.peek(), Some('\'') | Some('"')) {
                match self.parse_primary_inner()? {
                    Expr::Str(k) => k,
                    Expr::Expandable(parts) => parts
                        .iter()
                        .map(|p| if let Part::Lit(t) = p { t.as_str() } else { "" })
                        .collect(),
                    _ => String::new(),
                }
            } else {
                self.lx
                    .take_while(|c| c.is_alphanumeric() || c == '_' || c == '-')
            };
            if key.is_empty() {
                return self.lx.err(
                    "Missing key before '=' in hash literal.",
                    "MissingEqualsInHashLiteral",
                );
            }
            self.lx.skip_ws();
            if self.lx.peek() != Some('=') {
                return self.lx.err(
                    "Missing '=' operator after key in hash literal.",
                    "MissingEqualsInHashLiteral",
                );
            }
            self.lx.i += 1;
            self.lx.skip_ws_nl();
            let value = self.comma_list(Self::parse_expression)?;
            entries.push((key, value));
        }
    }

    fn parse_arg_primary(&mut self) -> Result<Expr, ParseError> {
        match self.lx.peek() {
            Some('\'') | Some('"') | Some('$') | Some('(') | Some('@') => self.parse_postfix(),
            _ => {
                let text = self.lx.bare_argument();
                if text.is_empty() {
                    return self.lx.err(
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
            self.lx.skip_ws();
            let op = if self.lx.starts_with_word("-and") {
                BinOp::And
            } else if self.lx.starts_with_word("-or") {
                BinOp::Or
            } else {
                break;
            };
            self.lx.i += if op == BinOp::And { 4 } else { 3 };
            self.lx.skip_ws_nl();
            let right = self.parse_comparison()?;
            left = Expr::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.parse_additive()?;
        self.lx.skip_ws();
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
            if self.lx.starts_with_word(word) {
                self.lx.i += word.len();
                self.lx.skip_ws_nl();
                let right = self.parse_additive()?;
                return Ok(Expr::Binary(Box::new(left), op, Box::new(right)));
            }
        }
        Ok(left)
    }

    fn parse_additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_unary()?;
        loop {
            self.lx.skip_ws();
            if self.lx.peek() == Some('+') {
                self.lx.i += 1;
                self.lx.skip_ws_nl();
                let right = self.parse_unary()?;
                left = Expr::Binary(Box::new(left), BinOp::Add, Box::new(right));
            } else {
                break;
            }
        }
        Ok(left)
    }

    fn parse_unary_inner(&mut self) -> Result<Expr, ParseError> {
        self.lx.skip_ws();
        if self.lx.peek() == Some('!') {
            self.lx.i += 1;
            return Ok(Expr::Not(Box::new(self.parse_unary()?)));
        }
        if self.lx.starts_with_word("-not") {
            self.lx.i += 4;
            self.lx.skip_ws();
            return Ok(Expr::Not(Box::new(self.parse_unary()?)));
        }
        self.comma_list(Self::parse_postfix)
    }

    fn parse_postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.parse_primary()?;
        loop {
            match self.lx.peek() {
                Some('.')
                    if self
                        .lx
                        .peek_at(1)
                        .is_some_and(|c| c.is_alphabetic() || c == '_') =>
                {
                    self.lx.i += 1;
                    let name = self.lx.take_while(|c| c.is_alphanumeric() || c == '_');
                    if self.lx.peek() == Some('(') {
                        let margs = self.parse_method_args()?;
                        e = Expr::Method(Box::new(e), name, margs);
                    } else {
                        e = Expr::Member(Box::new(e), name);
                    }
                }
                Some('[') => {
                    self.lx.i += 1;
                    self.lx.skip_ws();
                    let idx = self.parse_expression()?;
                    self.lx.skip_ws();
                    if self.lx.peek() != Some(']') {
                        return self.lx.err(
                            "Array index expression is missing or not valid.",
                            "MissingArrayIndexExpression",
                        );
                    }
                    self.lx.i += 1;
                    e = Expr::Index(Box::new(e), Box::new(idx));
                }
                _ => break,
            }
        }
        Ok(e)
    }

    /// `(a, b)` after a method name, at the `(`.
    fn parse_method_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.lx.i += 1;
        self.lx.skip_ws_nl();
        let mut margs = Vec::new();
        if self.lx.peek() != Some(')') {
            loop {
                margs.push(self.parse_additive()?);
                self.lx.skip_ws_nl();
                if self.lx.peek() == Some(',') {
                    self.lx.i += 1;
                    self.lx.skip_ws_nl();
                } else {
                    break;
                }
            }
        }
        if self.lx.peek() != Some(')') {
            return self.lx.err(
                "Missing closing ')' in expression.",
                "MissingEndParenthesisInMethodCall",
            );
        }
        self.lx.i += 1;
        Ok(margs)
    }

    fn parse_primary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.lx.peek() {
            Some('\'') => {
                self.lx.i += 1;
                Ok(Expr::Str(self.lx.single_quoted()?))
            }
            Some('"') => {
                self.lx.i += 1;
                let parts = self.parse_dq_parts()?;
                Ok(Expr::Expandable(parts))
            }
            Some('$') if self.lx.peek_at(1) == Some('(') => {
                self.lx.i += 2;
                let b = self.parse_block(Some(')'))?;
                self.lx.i += 1;
                Ok(Expr::Sub(b))
            }
            Some('@') if self.lx.peek_at(1) == Some('(') => {
                self.lx.i += 2;
                let b = self.parse_block(Some(')'))?;
                self.lx.i += 1;
                Ok(Expr::AtArray(b))
            }
            Some('@') if self.lx.peek_at(1) == Some('{') => {
                self.lx.i += 2;
                self.nested(Self::parse_hash_body)
            }
            Some('$') => {
                self.lx.i += 1;
                let name = self.lx.read_var_name();
                if name.is_empty() {
                    return Ok(Expr::Str("$".into()));
                }
                Ok(Expr::Var(name))
            }
            Some('(') => self.parse_paren(),
            Some('[') => {
                // A type cast/literal: [string]$x etc. — the type is ignored.
                self.lx.skip_past_bracket();
                self.parse_postfix()
            }
            Some('-') if self.lx.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.lx.i += 1;
                match self.parse_primary()? {
                    Expr::Int(n) => Ok(Expr::Int(-n)),
                    other => Ok(other),
                }
            }
            Some(c) if c.is_ascii_digit() => Ok(Expr::Int(self.lx.number())),
            _ => self.lx.err(
                "You must provide a value expression following the '=' operator.",
                "ExpectedValueExpression",
            ),
        }
    }

    /// `(<pipeline>)` at the `(`.
    fn parse_paren(&mut self) -> Result<Expr, ParseError> {
        self.lx.i += 1;
        self.lx.skip_ws_nl();
        let p = self.parse_pipeline()?;
        self.lx.skip_ws_nl();
        if self.lx.peek() != Some(')') {
            return self.lx.err(
                "Missing closing ')' in expression.",
                "MissingEndParenthesisInExpression",
            );
        }
        self.lx.i += 1;
        Ok(Expr::Paren(Box::new(p)))
    }

    fn parse_dq_parts(&mut self) -> Result<Vec<Part>, ParseError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            match self.lx.peek() {
                None => {
                    return self.lx.err(
                        "The string is missing the terminator: \".",
                        "TerminatorExpectedAtEndOfString",
                    )
                }
                Some('"') if self.lx.peek_at(1) == Some('"') => {
                    lit.push('"');
                    self.lx.i += 2;
                }
                Some('"') => {
                    self.lx.i += 1;
                    break;
                }
                Some('`') => {
                    self.lx.i += 1;
                    lit.push(self.lx.escaped_char());
                }
                Some('$') if self.lx.peek_at(1) == Some('(') => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    self.lx.i += 2;
                    let b = self.parse_block(Some(')'))?;
                    self.lx.i += 1;
                    parts.push(Part::Sub(b));
                }
                Some('$')
                    if self
                        .lx
                        .peek_at(1)
                        .is_some_and(|c| is_var_char(c) || c == '{') =>
                {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    self.lx.i += 1;
                    let name = self.lx.read_var_name();
                    parts.push(Part::Var(name));
                }
                Some(c) => {
                    lit.push(c);
                    self.lx.i += 1;
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(parts)
    }
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
