//! The syntax tree the [`super::parser`] builds and the evaluator walks, and the one
//! question asked of a script before it runs: does it read `$input`?

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

/// Does the script read `$input` (piped stdin) anywhere: as `$input`, `${input}`, or inside
/// a double-quoted string or bare argument? Walks every statement, also in branches that
/// may not run, since the wire layer must decide before the script starts whether to wait
/// for stdin's end. Scoped names (`$script:input`) are other variables.
pub(crate) fn reads_input(stmts: &[Stmt]) -> bool {
    stmts.iter().any(stmt_reads_input)
}

fn stmt_reads_input(s: &Stmt) -> bool {
    match s {
        Stmt::Pipeline(p) => pipeline_reads_input(p),
        Stmt::Assign { value, .. } | Stmt::SetStatic { value, .. } => pipeline_reads_input(value),
        Stmt::Try { body, catch } => reads_input(body) || reads_input(catch),
        Stmt::If { arms, otherwise } => {
            arms.iter()
                .any(|(cond, body)| pipeline_reads_input(cond) || reads_input(body))
                || otherwise.as_deref().is_some_and(reads_input)
        }
        Stmt::Foreach { source, body, .. } => pipeline_reads_input(source) || reads_input(body),
        Stmt::Exit(e) | Stmt::Throw(e, _) => e.as_ref().is_some_and(expr_reads_input),
    }
}

fn pipeline_reads_input(p: &Pipeline) -> bool {
    p.elements.iter().any(|el| match el {
        Element::Expr(e) => expr_reads_input(e),
        Element::Command(c) => c.args.iter().any(|a| match a {
            Arg::Param { value, .. } => value.as_ref().is_some_and(expr_reads_input),
            Arg::Value(e) => expr_reads_input(e),
        }),
    })
}

fn expr_reads_input(e: &Expr) -> bool {
    match e {
        Expr::Str(_) | Expr::Int(_) => false,
        Expr::Var(name) => is_input(name),
        Expr::Expandable(parts) => parts.iter().any(|p| match p {
            Part::Lit(_) => false,
            Part::Var(name) => is_input(name),
            Part::Sub(stmts) => reads_input(stmts),
        }),
        Expr::Paren(p) => pipeline_reads_input(p),
        Expr::Sub(stmts) | Expr::AtArray(stmts) => reads_input(stmts),
        Expr::Hash(entries) => entries.iter().any(|(_, v)| expr_reads_input(v)),
        Expr::Member(base, _) | Expr::Not(base) => expr_reads_input(base),
        Expr::Method(base, _, args) => expr_reads_input(base) || args.iter().any(expr_reads_input),
        Expr::Index(base, idx) => expr_reads_input(base) || expr_reads_input(idx),
        Expr::Array(items) => items.iter().any(expr_reads_input),
        Expr::Binary(l, _, r) => expr_reads_input(l) || expr_reads_input(r),
    }
}

/// The automatic variable the evaluator fills from stdin (`Engine::var`).
fn is_input(name: &str) -> bool {
    name.eq_ignore_ascii_case("input")
}
