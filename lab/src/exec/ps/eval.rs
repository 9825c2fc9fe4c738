//! Statements and expressions: blocks, assignments, `try`/`catch`, `if`, `foreach`,
//! `exit`, `throw`, and the expression forms of [`super::ast::Expr`]. Control flow leaves
//! a statement as a [`Flow`] in `Err`.

use super::ast::{BinOp, Expr, Part, Pipeline, Span, Stmt};
use super::engine::Engine;
use super::error::ErrorRecord;
use super::flow::Flow;
use super::operators::binary;
use super::value::{collapse, index, method, PsObject, Value};

impl Engine<'_, '_> {
    /// Runs statements, collecting their output in `out`; at the top level each
    /// statement's output is written as soon as the statement ends.
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
                if let Some(vals) = self.run_statement_pipeline_assign(value)? {
                    self.vars.insert(var.to_ascii_lowercase(), collapse(vals));
                }
                Ok(())
            }
            Stmt::SetStatic {
                type_name,
                member,
                value,
                span,
            } => self.exec_set_static(type_name, member, value, *span),
            Stmt::Try { body, catch } => self.exec_try(body, catch, out),
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

    /// `[Type]::Member = <pipeline>`.
    fn exec_set_static(
        &mut self,
        type_name: &str,
        member: &str,
        value: &Pipeline,
        span: Span,
    ) -> Result<(), Flow> {
        let Some(vals) = self.run_statement_pipeline_assign(value)? else {
            return Ok(());
        };
        match self.set_static(type_name, member, collapse(vals), span) {
            // Statement-terminating outside try: written, and the script goes on.
            Err(Flow::StatementTerminated(e)) => {
                self.statement_failed(*e);
                Ok(())
            }
            other => other,
        }
    }

    /// `try { body } catch { catch }`: a terminating error in the body runs the catch block
    /// with `$_` set to the error (and recorded in `$Error`); `exit` passes through.
    fn exec_try(
        &mut self,
        body: &[Stmt],
        catch: &[Stmt],
        out: &mut Vec<Value>,
    ) -> Result<(), Flow> {
        self.try_depth += 1;
        let mut inner = Vec::new();
        let r = self.exec_block(body, &mut inner, false);
        self.try_depth -= 1;
        out.extend(inner);
        let err = match r {
            Ok(()) => return Ok(()),
            Err(Flow::Exit(c)) => return Err(Flow::Exit(c)),
            Err(Flow::Throw(err) | Flow::StatementTerminated(err)) => err,
        };
        let saved = self.vars.insert("_".into(), Value::Error(err.clone()));
        self.errors.push(Value::Error(err));
        let r = self.exec_block(catch, out, false);
        match saved {
            Some(v) => self.vars.insert("_".into(), v),
            None => self.vars.remove("_"),
        };
        r
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
            Err(Flow::StatementTerminated(e)) => {
                self.statement_failed(*e);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// Evaluates an expression.
    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Value, Flow> {
        Ok(match e {
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Int(n) => Value::Int(*n),
            Expr::Expandable(parts) => Value::Str(self.expand(parts)?),
            Expr::Var(v) => self.var(v),
            Expr::Paren(p) => collapse(self.run_pipeline(p)?),
            Expr::Sub(stmts) => collapse(self.sub_expression(stmts)?),
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
            // `@(...)`: always an array, nested arrays flattened one level.
            Expr::AtArray(stmts) => Value::Array(
                self.sub_expression(stmts)?
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::Array(a) => a,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    })
                    .collect(),
            ),
            Expr::Member(base, name) => self.eval(base)?.member(name),
            Expr::Method(base, name, args) => {
                let b = self.eval(base)?;
                let vals = self.eval_all(args)?;
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
            Expr::Array(items) => Value::Array(self.eval_all(items)?),
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

    fn eval_all(&mut self, exprs: &[Expr]) -> Result<Vec<Value>, Flow> {
        let mut vals = Vec::with_capacity(exprs.len());
        for e in exprs {
            vals.push(self.eval(e)?);
        }
        Ok(vals)
    }

    /// `$( ... )`: the output of the statements.
    fn sub_expression(&mut self, stmts: &[Stmt]) -> Result<Vec<Value>, Flow> {
        let mut out = Vec::new();
        self.exec_block(stmts, &mut out, false)?;
        Ok(out)
    }

    /// A double-quoted string (or bare argument) with its variables and subexpressions
    /// expanded.
    fn expand(&mut self, parts: &[Part]) -> Result<String, Flow> {
        let mut s = String::new();
        for p in parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => s.push_str(&self.var(v).to_ps_string()),
                Part::Sub(stmts) => {
                    s.push_str(&collapse(self.sub_expression(stmts)?).to_ps_string());
                }
            }
        }
        Ok(s)
    }
}
