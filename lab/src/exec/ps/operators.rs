//! The binary operators: `+`, `-eq`/`-ne`/`-like` (as filters on an array left operand),
//! `-lt`/`-le`/`-gt`/`-ge`, `-and`/`-or`.

use super::super::wildcard;
use super::ast::BinOp;
use super::value::Value;

/// `l <op> r` on evaluated operands (`-and`/`-or` short-circuit in the evaluator first).
pub(super) fn binary(l: Value, op: BinOp, r: Value) -> Value {
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
                    BinOp::Like => wildcard::matches(&a, &b),
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
