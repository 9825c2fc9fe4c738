//! Pipelines and the commands in them: native programs (run as cmd would, their stderr
//! wrapped as `NativeCommandError` records), and cmdlets (looked up in the cmdlet table,
//! bound, invoked, then their errors handled as `-ErrorAction`, `$ErrorActionPreference`
//! and `-ErrorVariable` say).

use super::super::cmdlets::{self, CmdOutcome};
use super::super::{native, program_name};
use super::ast::{Arg, Command, Element, Pipeline};
use super::binding::{bind, Bound, RawArg};
use super::engine::Engine;
use super::error::{ErrorRecord, NativeKind, Position};
use super::flow::Flow;
use super::value::Value;
use super::StreamLine;
use crate::exec::codepage::lines as split_lines;

impl Engine<'_, '_> {
    /// Runs a pipeline: each element's output is the next one's input; `$null`s are
    /// dropped from the result.
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
        let prog = program_name(&c.name);
        if native::exists(&prog) && !c.name.contains('-') {
            let args: Vec<String> = self
                .eval_args(c)?
                .into_iter()
                .flat_map(|(n, v)| native_arg(n, v))
                .collect();
            return Ok(self.run_native(c, &prog, &args));
        }
        let Some(spec) = cmdlets::lookup(&c.name) else {
            let e = ErrorRecord::not_recognized(&c.name).at(self.position(c.name_span));
            self.last_ok = false;
            return Err(self.statement_terminating(e));
        };
        let args = self.eval_args(c)?;
        let pos = self.position(c.span);
        let bound = match bind(&c.name, spec, args) {
            Ok(b) => b,
            Err(e) => {
                self.last_ok = false;
                return Err(self.statement_terminating(e.at(pos)));
            }
        };
        let mut outcome = (spec.handler)(self, &bound, input.unwrap_or_default());
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

    /// After a cmdlet ran: its warning and (with `-Verbose`) verbose messages, its errors as
    /// the error action says, `-ErrorVariable`, `$?`; then its output, or the flow its
    /// errors cause.
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
        for w in &outcome.warnings {
            self.streams.push(StreamLine::Warning(w.clone()));
        }
        if bound.switch("Verbose") {
            for v in &outcome.verbose {
                self.streams.push(StreamLine::Verbose(v.clone()));
            }
        }
        let ok = outcome.terminating.is_none() && outcome.errors.is_empty();
        let mut recorded: Vec<Value> = Vec::new();
        let mut flow = self.non_terminating_errors(outcome.errors, &action, &pos, &mut recorded);
        if let Some(t) = outcome.terminating {
            let t = t.at(pos.clone());
            recorded.push(Value::Error(Box::new(t.clone())));
            if flow.is_none() {
                flow = Some(if action == "stop" {
                    Flow::Throw(Box::new(t))
                } else {
                    self.statement_terminating(t)
                });
            }
        }
        if let Some(name) = bound.str("ErrorVariable") {
            self.set_error_variable(&name, recorded);
        }
        self.last_ok = ok;
        if let Some(f) = flow {
            return Err(f);
        }
        Ok(outcome.output)
    }

    /// Non-terminating errors by error action: `SilentlyContinue` records them in `$Error`
    /// only, `Ignore` nowhere, `Stop` turns the first into a terminating error (returned),
    /// anything else (`Continue`) writes and records them. All go to `recorded` (for
    /// `-ErrorVariable`).
    fn non_terminating_errors(
        &mut self,
        errors: Vec<ErrorRecord>,
        action: &str,
        pos: &Option<Position>,
        recorded: &mut Vec<Value>,
    ) -> Option<Flow> {
        let mut flow = None;
        for e in errors {
            let e = e.at(pos.clone());
            recorded.push(Value::Error(Box::new(e.clone())));
            match action {
                "silentlycontinue" => self.errors.push(Value::Error(Box::new(e))),
                "ignore" => {}
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
        flow
    }

    /// `-ErrorVariable name` (replace) or `-ErrorVariable +name` (append).
    fn set_error_variable(&mut self, name: &str, recorded: Vec<Value>) {
        let (append, name) = match name.strip_prefix('+') {
            Some(n) => (true, n),
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

    /// A native program inside PowerShell: stdout lines become strings, `$LASTEXITCODE`
    /// is set, stderr lines become error records (the first a `NativeCommandError` with
    /// the position, the rest printed bare) unless `2>&1` merges or `2>$null` drops them.
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
}

/// How PowerShell passes an evaluated argument to a native program: `-Name:value`,
/// `-Name`, or the value (an array as separate arguments).
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
