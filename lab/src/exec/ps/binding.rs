//! Parameter binding: named arguments matched to a cmdlet's parameters (and the common
//! parameters) by name, alias or unambiguous prefix, any case; switches; the remaining
//! values bound in the cmdlet's positional order. Failures are the
//! `ParameterBindingException`s PowerShell reports.

use std::collections::HashMap;

use super::super::cmdlets::CmdletSpec;
use super::error::ErrorRecord;
use super::value::Value;

/// An evaluated command argument: parameter name (for `-Name`) and value.
pub(crate) type RawArg = (Option<String>, Option<Value>);

/// One parameter of a cmdlet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamSpec {
    /// The canonical name (`ErrorAction`).
    pub(crate) name: &'static str,
    /// A switch takes no value (`-Force`); `-Force:$false` still may give one.
    pub(crate) switch: bool,
    /// Aliases (`ea`).
    pub(crate) aliases: &'static [&'static str],
}

impl ParamSpec {
    /// A parameter that takes a value.
    pub(crate) const fn value(name: &'static str, aliases: &'static [&'static str]) -> Self {
        ParamSpec {
            name,
            switch: false,
            aliases,
        }
    }

    /// A switch parameter.
    pub(crate) const fn switch(name: &'static str, aliases: &'static [&'static str]) -> Self {
        ParamSpec {
            name,
            switch: true,
            aliases,
        }
    }
}

/// The common parameters every cmdlet takes (about_CommonParameters).
const COMMON: &[ParamSpec] = &[
    ParamSpec::value("ErrorAction", &["ea"]),
    ParamSpec::value("ErrorVariable", &["ev"]),
    ParamSpec::value("WarningAction", &["wa"]),
    ParamSpec::value("WarningVariable", &["wv"]),
    ParamSpec::value("InformationAction", &["infa"]),
    ParamSpec::value("InformationVariable", &["iv"]),
    ParamSpec::value("OutVariable", &["ov"]),
    ParamSpec::value("OutBuffer", &["ob"]),
    ParamSpec::value("PipelineVariable", &["pv"]),
    ParamSpec::switch("Verbose", &["vb"]),
    ParamSpec::switch("Debug", &["db"]),
    ParamSpec::switch("WhatIf", &["wi"]),
    ParamSpec::switch("Confirm", &["cf"]),
];

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

/// Binds `args` to the parameters of `spec`, invoked as `cmd` (the name as typed, which
/// the errors show).
pub(crate) fn bind(cmd: &str, spec: &CmdletSpec, args: Vec<RawArg>) -> Result<Bound, ErrorRecord> {
    let binding_error = |message: String, fqid: &str| {
        ErrorRecord::cmdlet(
            cmd,
            spec.class,
            message,
            fqid,
            "InvalidArgument",
            "",
            "ParameterBindingException",
        )
    };
    let mut bound = Bound::default();
    let mut positional: Vec<Value> = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some((name, value)) = it.next() {
        let Some(n) = name else {
            positional.extend(value);
            continue;
        };
        let param = resolve(spec, &n).map_err(|(m, id)| binding_error(m, id))?;
        let key = param.name.to_ascii_lowercase();
        if param.switch {
            match value {
                Some(v) => {
                    bound.named.insert(key, v);
                }
                None => bound.switches.push(key),
            }
            continue;
        }
        // `-Name value`: the next argument, when it is a value.
        let v = match value {
            Some(v) => v,
            None => match it.peek() {
                Some((None, Some(_))) => it.next().and_then(|(_, v)| v).unwrap_or(Value::Null),
                _ => {
                    return Err(binding_error(
                        format!("Missing an argument for parameter '{}'. Specify a parameter of type 'System.String' and try again.", param.name),
                        "MissingArgument",
                    ))
                }
            },
        };
        bound.named.insert(key, v);
    }
    bind_positional(spec, &mut bound, positional)
        .map_err(|m| binding_error(m, "PositionalParameterNotFound"))?;
    Ok(bound)
}

/// The parameter `-key` names: exact name or alias first, else the one parameter it is a
/// prefix of. Err: (message, error id).
fn resolve(spec: &CmdletSpec, key: &str) -> Result<&'static ParamSpec, (String, &'static str)> {
    let all = || spec.params.iter().chain(COMMON.iter());
    let k = key.to_ascii_lowercase();
    if let Some(p) = all().find(|p| {
        p.name.eq_ignore_ascii_case(&k) || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(&k))
    }) {
        return Ok(p);
    }
    let prefix: Vec<&'static ParamSpec> = all()
        .filter(|p| p.name.to_ascii_lowercase().starts_with(&k))
        .collect();
    match prefix.as_slice() {
        [p] => Ok(p),
        [] => Err((
            format!("A parameter cannot be found that matches parameter name '{key}'."),
            "NamedParameterNotFound",
        )),
        many => Err((
            format!(
                "Parameter cannot be processed because the parameter name '{key}' is ambiguous. Possible matches include: {}.",
                many.iter().map(|p| format!("-{}", p.name)).collect::<Vec<_>>().join(" ")
            ),
            "AmbiguousParameter",
        )),
    }
}

/// Binds values without a name to the positional parameters not already bound, in order.
/// Err: the message for the first value left over.
fn bind_positional(spec: &CmdletSpec, bound: &mut Bound, values: Vec<Value>) -> Result<(), String> {
    let free_names: Vec<&str> = spec
        .positional
        .iter()
        .copied()
        .filter(|p| !bound.named.contains_key(&p.to_ascii_lowercase()))
        .collect();
    let mut free = free_names.into_iter();
    for v in values {
        match free.next() {
            Some(p) => {
                bound.named.insert(p.to_ascii_lowercase(), v);
            }
            None => {
                return Err(format!(
                    "A positional parameter cannot be found that accepts argument '{}'.",
                    v.to_ps_string()
                ))
            }
        }
    }
    Ok(())
}
