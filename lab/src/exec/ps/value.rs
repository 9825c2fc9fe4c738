//! Values as far as the subset needs them: strings, integers, booleans, arrays, objects
//! with ordered properties, secure strings, credentials and error records; how they
//! convert to text and truth, and what `.Member`, `.Method()` and `[i]` give on them.

use secrecy::{ExposeSecret, SecretString};

use super::error::ErrorRecord;

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
    pub(super) fn enumerate(self) -> Vec<Value> {
        match self {
            Value::Array(items) => items,
            Value::Null => vec![Value::Null],
            other => vec![other],
        }
    }

    pub(super) fn member(&self, name: &str) -> Value {
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

/// `$b.Name(args)`: the few .NET methods the scripts call; anything else gives `$null`.
pub(super) fn method(b: &Value, name: &str, args: &[Value]) -> Value {
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

/// `$b[i]`: arrays and strings by position (negative from the end); a scalar is its own
/// `[0]` and `[-1]`.
pub(super) fn index(b: Value, i: i64) -> Value {
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
