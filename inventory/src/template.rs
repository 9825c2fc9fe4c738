//! Jinja in variable values, as far as an inventory reader can honestly go: a value that is
//! exactly `{{ name }}` is the host's variable `name` (resolved the way Ansible resolves it
//! when the value is used: against the host's merged variables, repeatedly, so
//! `ansible_password: "{{ vault_win_password }}"` is the vaulted value the group_vars
//! file holds), plus the magic `inventory_hostname` and `inventory_hostname_short`. Any
//! other template (filters, lookups, concatenation, an undefined name) is never taken as a
//! literal value: the variable is left out of the host and recorded as a
//! [`TemplateError`], which the caller raises for the variables it needs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::origin::Origin;

/// How many `{{ a }}` → `{{ b }}` steps are followed before giving up (a loop).
const MAX_CHAIN: usize = 32;

/// A variable whose value is a template trustsweep does not evaluate (bad input, said
/// with where it was set and how to give the value instead). Never holds the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A Jinja expression other than a single variable name.
    #[error("host {host}: {var} is a Jinja expression (set in {origin}) that trustsweep does not evaluate; {advice}", advice = advice(var))]
    Expression {
        /// Inventory name of the host.
        host: String,
        /// The variable.
        var: String,
        /// Where its value was set.
        origin: String,
    },
    /// `{{ name }}` where the host has no variable `name`.
    #[error("host {host}: {var} is '{{{{ {name} }}}}' (set in {origin}), but {name} is not defined for this host; define {name} (in group_vars or host_vars, as a plain or !vault value), or {advice}", advice = advice(var))]
    Undefined {
        /// Inventory name of the host.
        host: String,
        /// The variable.
        var: String,
        /// The variable it names.
        name: String,
        /// Where the value naming it was set.
        origin: String,
    },
    /// `{{ a }}` → `{{ b }}` → … → `{{ a }}`.
    #[error("host {host}: {var} (set in {origin}) names itself through {chain}: give one of them a value")]
    Loop {
        /// Inventory name of the host.
        host: String,
        /// The variable.
        var: String,
        /// The names followed, ` -> `-separated.
        chain: String,
        /// Where its value was set.
        origin: String,
    },
}

impl TemplateError {
    /// The variable whose value could not be had.
    pub fn var(&self) -> &str {
        match self {
            TemplateError::Expression { var, .. }
            | TemplateError::Undefined { var, .. }
            | TemplateError::Loop { var, .. } => var,
        }
    }
}

/// How to give a value trustsweep cannot template, by variable.
fn advice(var: &str) -> String {
    let lower = var.to_ascii_lowercase();
    if lower.starts_with("trustsweep_repair_") {
        "give the repair account with --repair-user (password from TRUSTSWEEP_REPAIR_PASSWORD or the prompt), a --credentials file, or a plain or !vault value".into()
    } else if lower.starts_with("trustsweep_logon_test_") {
        "give the account with --logon-test-user (password from TRUSTSWEEP_LOGON_TEST_PASSWORD or the prompt), or a plain or !vault value".into()
    } else if lower.starts_with("trustsweep_ldap_") {
        "give the account with --ldap-user (password from TRUSTSWEEP_LDAP_PASSWORD or the prompt)"
            .into()
    } else if crate::is_secret_var(&lower) || lower.ends_with("_user") {
        "give the connecting account with --user (password from TRUSTSWEEP_PASSWORD or the prompt), a --credentials file, or a plain or !vault value (ansible-vault encrypt_string)".into()
    } else {
        "write the value itself, or run the inventory through Ansible first (ansible-inventory -i INVENTORY --list | trustsweep ... -i -) only if Ansible templates it there".into()
    }
}

/// What a string value is, template-wise.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// No Jinja in it.
    Plain,
    /// Exactly `{{ name }}`.
    Var(&'a str),
    /// Any other Jinja.
    Other,
}

/// Whether `s` holds Jinja (`{{`, `{%` or `{#`), and if so whether it is a lone variable.
pub(crate) fn kind(s: &str) -> Kind<'_> {
    let b = s.as_bytes();
    let jinja = b
        .iter()
        .enumerate()
        .any(|(i, &c)| c == b'{' && matches!(b.get(i + 1), Some(b'{' | b'%' | b'#')));
    if !jinja {
        return Kind::Plain;
    }
    let inner = s
        .trim()
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim);
    match inner {
        Some(name) if is_identifier(name) => Kind::Var(name),
        _ => Kind::Other,
    }
}

/// Whether a JSON value is a string holding Jinja.
pub(crate) fn is_template(v: &Value) -> bool {
    matches!(v, Value::String(s) if kind(s) != Kind::Plain)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What [`resolve`] found for one host.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Variables left out, and why.
    pub(crate) unresolved: BTreeMap<String, TemplateError>,
    /// Variables a secret variable's value came from: secrets too.
    pub(crate) secret_sources: BTreeSet<String>,
}

/// Resolves `{{ name }}` values of `host`'s merged variables in place; removes the
/// variables that cannot be resolved and says why. A resolved variable keeps its own
/// origin (where the template is written).
pub(crate) fn resolve(
    host: &str,
    merged: &mut BTreeMap<String, (Value, Origin)>,
    is_secret: impl Fn(&str) -> bool,
) -> Resolved {
    let mut out = Resolved::default();
    let templated: Vec<String> = merged
        .iter()
        .filter(|(_, (v, _))| is_template(v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut replace: Vec<(String, Value, Origin)> = Vec::new();
    for var in templated {
        let Some(origin) = merged.get(&var).map(|(_, o)| o.clone()) else {
            continue;
        };
        let origin_text = origin.to_string();
        let mut chain = vec![var.clone()];
        let mut current = var.clone();
        let result = loop {
            let Some((value, _)) = merged.get(&current) else {
                break Err(TemplateError::Undefined {
                    host: host.to_string(),
                    var: var.clone(),
                    name: current.clone(),
                    origin: origin_text.clone(),
                });
            };
            let Value::String(s) = value else {
                break Ok(value.clone());
            };
            match kind(s) {
                Kind::Plain => break Ok(value.clone()),
                Kind::Other => {
                    break Err(TemplateError::Expression {
                        host: host.to_string(),
                        var: var.clone(),
                        origin: origin_text.clone(),
                    })
                }
                Kind::Var(name) => {
                    if let Some(v) = magic(host, name) {
                        break Ok(v);
                    }
                    if chain.iter().any(|c| c == name) || chain.len() > MAX_CHAIN {
                        chain.push(name.to_string());
                        break Err(TemplateError::Loop {
                            host: host.to_string(),
                            var: var.clone(),
                            chain: chain.join(" -> "),
                            origin: origin_text.clone(),
                        });
                    }
                    chain.push(name.to_string());
                    if !merged.contains_key(name) {
                        break Err(TemplateError::Undefined {
                            host: host.to_string(),
                            var: var.clone(),
                            name: name.to_string(),
                            origin: origin_text.clone(),
                        });
                    }
                    current = name.to_string();
                }
            }
        };
        match result {
            Ok(v) => {
                if is_secret(&var) {
                    out.secret_sources.extend(chain.iter().skip(1).cloned());
                }
                replace.push((var, v, origin));
            }
            Err(e) => {
                out.unresolved.insert(var, e);
            }
        }
    }
    for (k, v, at) in replace {
        merged.insert(k, (v, at));
    }
    for k in out.unresolved.keys() {
        merged.remove(k);
    }
    out
}

/// Ansible's magic variables an inventory value may name.
fn magic(host: &str, name: &str) -> Option<Value> {
    match name {
        "inventory_hostname" => Some(Value::String(host.to_string())),
        "inventory_hostname_short" => Some(Value::String(
            host.split('.').next().unwrap_or(host).to_string(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind("plain"), Kind::Plain);
        assert_eq!(kind("{{ a_b1 }}"), Kind::Var("a_b1"));
        assert_eq!(kind("{{x}}"), Kind::Var("x"));
        assert_eq!(kind("  {{  x  }} "), Kind::Var("x"));
        assert_eq!(kind("{{ x }}.corp"), Kind::Other);
        assert_eq!(kind("{{ x | default('y') }}"), Kind::Other);
        assert_eq!(kind("{{ lookup('env', 'X') }}"), Kind::Other);
        assert_eq!(kind("{% if a %}b{% endif %}"), Kind::Other);
        assert_eq!(kind("{{ x }}{{ y }}"), Kind::Other);
        assert_eq!(kind("{{ 1x }}"), Kind::Other);
    }
}
