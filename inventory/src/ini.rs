//! Ansible's INI inventory format, read the way Ansible's `ini` plugin reads it:
//!
//! - lines before any section are hosts of `ungrouped`;
//! - `[group]` (or `[group:hosts]`) lists hosts, one a line: a name, range or `name:port`,
//!   then `key=value` variables split like a POSIX shell (quotes group words; `#` starts
//!   a comment), each value read as a Python literal where it is one (`22` a number,
//!   `True` a boolean, `'x'` a string) and as text otherwise;
//! - `[group:vars]` has one `key=value` a line, everything after the `=` the value (read
//!   the same way, so `myvar=23 # note` is 23 and `pw=a#b` stays `a#b`);
//! - `[group:children]` lists child groups, one a line; a child never defined by a
//!   section of its own is accepted as an empty group (Ansible refuses it; its own
//!   documentation's `[usa:children]` example needs it), with a warning through `tracing`;
//! - `[group:vars]` for a group defined nowhere is an error (as in Ansible: usually a typo);
//! - full-line comments start with `#` or `;`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::hostpattern::expand_host_pattern;
use crate::model::Builder;
use crate::{Inventory, InventoryError};

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// Parses INI inventory text; `path` is used in error messages only.
pub fn parse_ini(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let mut b = Builder::new(path);
    read_into(&mut b, text)?;
    b.finish_inventory()
}

/// Reads INI inventory text into `b` (one file of several, maybe: a `[group:vars]` may
/// name a group an earlier file defined, as in Ansible).
pub(crate) fn read_into(b: &mut Builder<'_>, text: &str) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let earlier: HashSet<String> = b.group_names().into_iter().collect();
    let mut group = b.group("ungrouped", 0);
    let mut section: Option<String> = None;
    let mut state = State::Hosts;
    let mut declared: HashSet<String> =
        ["all", "ungrouped"].iter().map(|s| s.to_string()).collect();
    let mut vars_sections: Vec<(String, usize)> = Vec::new();
    let mut child_refs: HashMap<String, (String, usize)> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((name, tag)) = section_header(line) {
            let st = match tag {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(b.err(
                        line_no,
                        format!("section [{name}:{other}] has unknown type '{other}': write [{name}], [{name}:vars] or [{name}:children]"),
                    ))
                }
            };
            group = b.group(name, line_no);
            state = st;
            section = Some(match tag {
                Some(t) => format!("{name}:{t}"),
                None => name.to_string(),
            });
            if st == State::Vars {
                vars_sections.push((name.to_string(), line_no));
            } else {
                declared.insert(name.to_string());
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(b.err(
                line_no,
                format!(
                    "invalid section header '{line}': write [group], [group:vars] or [group:children]; \
                     group names cannot contain spaces, ':' or ']'"
                ),
            ));
        }
        match state {
            State::Hosts => host_line(b, group, section.as_deref(), line, line_no)?,
            State::Vars => {
                let sect = section.clone().unwrap_or_default();
                let Some((k, v)) = line.split_once('=') else {
                    return Err(b.err(
                        line_no,
                        format!("expected key=value in [{sect}], got '{line}'"),
                    ));
                };
                let k = k.trim();
                if k.is_empty() {
                    return Err(b.err(
                        line_no,
                        format!("missing variable name before '=' in [{sect}]"),
                    ));
                }
                b.set_group_var(group, k, parse_value(v.trim(), true), line_no)?;
            }
            State::Children => {
                let sect = section.clone().unwrap_or_default();
                let name = strip_comment(line);
                if name.is_empty()
                    || name.contains(|c: char| c.is_whitespace() || c == ':' || c == ']')
                {
                    return Err(b.err(
                        line_no,
                        format!("expected one group name per line in [{sect}], got '{line}'"),
                    ));
                }
                let child = b.group(name, line_no);
                b.add_child(group, child, line_no)?;
                let parent = sect.strip_suffix(":children").unwrap_or(&sect).to_string();
                child_refs
                    .entry(name.to_string())
                    .or_insert((parent, line_no));
            }
        }
    }
    for (name, line) in &vars_sections {
        if !declared.contains(name) && !child_refs.contains_key(name) && !earlier.contains(name) {
            return Err(b.err(
                *line,
                format!(
                    "[{name}:vars] sets variables of group '{name}', which is not defined: \
                     add a [{name}] section or list it under a [parent:children] section, or fix the name"
                ),
            ));
        }
    }
    let mut undeclared: Vec<(&String, &(String, usize))> = child_refs
        .iter()
        .filter(|(c, _)| !declared.contains(*c))
        .collect();
    undeclared.sort_by_key(|(_, (_, l))| *l);
    for (child, (parent, line)) in undeclared {
        if earlier.contains(child.as_str()) {
            continue;
        }
        tracing::warn!(
            "{}:{line}: [{parent}:children] names group '{child}', which has no [{child}] section: it is an empty group",
            b.current_path().display()
        );
    }
    Ok(())
}

/// `[name]` or `[name:tag]`, maybe followed by a `#` comment: `(name, tag)`.
fn section_header(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = rest.get(..close)?;
    let after = rest.get(close + 1..)?.trim_start();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return None;
    }
    let (name, tag) = match inner.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (inner, None),
    };
    let name_ok =
        !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == ':' || c == ']');
    let tag_ok =
        tag.is_none_or(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && tag_ok).then_some((name, tag))
}

/// Whether `line` (trimmed) is a section header, valid or not (for format detection).
pub(crate) fn is_section_line(line: &str) -> bool {
    section_header(line).is_some() || (line.starts_with('[') && line.ends_with(']'))
}

fn strip_comment(line: &str) -> &str {
    let end = line.find(['#', ';']).unwrap_or(line.len());
    line.get(..end).unwrap_or(line).trim()
}

fn host_line(
    b: &mut Builder<'_>,
    group: usize,
    section: Option<&str>,
    line: &str,
    line_no: usize,
) -> Result<(), InventoryError> {
    let tokens = shlex_split(line).map_err(|m| b.err(line_no, m))?;
    let Some((first, rest)) = tokens.split_first() else {
        return Ok(());
    };
    if let Some((key, _)) = first.split_once('=') {
        // Never echo a secret's value.
        let shown = if crate::is_secret_var(key) {
            format!("{key}={}", crate::MASK)
        } else {
            first.clone()
        };
        let first = &shown;
        let msg = match section {
            Some(s) => format!(
                "'{first}' is a variable, but [{s}] lists hosts: put group variables under [{s}:vars], \
                 or write them after a host name on its line (host1 {first})"
            ),
            None => format!(
                "'{first}' is a variable outside any section: put variables for every host under [all:vars], \
                 or write them after a host name on its line (host1 {first})"
            ),
        };
        return Err(b.err(line_no, msg));
    }
    let (names, port) = expand_host_pattern(first).map_err(|m| b.err(line_no, m))?;
    let mut vars = Vec::new();
    for t in rest {
        let Some((k, v)) = t.split_once('=') else {
            return Err(b.err(
                line_no,
                format!("expected key=value after the host name, got '{t}': quote values that contain spaces (key=\"a b\")"),
            ));
        };
        if k.is_empty() {
            return Err(b.err(
                line_no,
                "missing variable name before '=' after the host name",
            ));
        }
        vars.push((k.to_string(), parse_value(v, false)));
    }
    b.check_room(&names, line_no)?;
    for n in names {
        let h = b.add_host(&n, group);
        if let Some(p) = port {
            b.set_host_var(h, "ansible_port", Value::from(p), line_no)?;
        }
        for (k, v) in &vars {
            b.set_host_var(h, k, v.clone(), line_no)?;
        }
    }
    Ok(())
}

/// Splits a host line like Python's `shlex.split(line, comments=True)` (POSIX mode).
/// Errors never echo the line: it may hold a password.
pub(crate) fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            '#' => break,
            '\\' => {
                in_token = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => {
                            return Err("unclosed single quote on this line: close it with '".into())
                        }
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n @ ('"' | '\\')) => {
                                cur.push(n);
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some(n) => cur.push(n),
                        None => {
                            return Err(
                                "unclosed double quote on this line: close it with \"".into()
                            )
                        }
                    }
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

/// A value as Ansible's `ast.literal_eval` would read it, for the literals that matter in
/// inventories (numbers, `True`/`False`/`None`, quoted strings); anything else is text. In
/// a `:vars` section (`vars_line`) a trailing `# comment` after a literal is dropped.
pub(crate) fn parse_value(v: &str, vars_line: bool) -> Value {
    if let Some(x) = literal(v.trim()) {
        return x;
    }
    if vars_line {
        if let Some(i) = v.find('#') {
            if let Some(x) = v.get(..i).and_then(|head| literal(head.trim())) {
                return x;
            }
        }
    }
    Value::String(v.to_string())
}

fn literal(s: &str) -> Option<Value> {
    match s {
        "True" => return Some(Value::Bool(true)),
        "False" => return Some(Value::Bool(false)),
        "None" => return Some(Value::Null),
        _ => {}
    }
    if let Some(q) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        return quoted(s, q).map(Value::String);
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return None;
    }
    let digits_ok = |d: &str| {
        !d.is_empty()
            && d.chars().all(|c| c.is_ascii_digit() || c == '_')
            && !d.starts_with('_')
            && !d.ends_with('_')
            && !d.contains("__")
    };
    if digits_ok(body) {
        let clean: String = s.chars().filter(|c| *c != '_').collect();
        let b: String = body.chars().filter(|c| *c != '_').collect();
        // Python refuses leading zeros ("0123"), so such values stay text.
        if b.len() > 1 && b.starts_with('0') && b.chars().any(|c| c != '0') {
            return None;
        }
        return clean.parse::<i64>().ok().map(Value::from);
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    if frac.is_none() && exp.is_none() {
        return None;
    }
    let int_ok = int.is_empty() || digits_ok(int);
    let frac_ok = frac.is_none_or(|f| f.is_empty() || digits_ok(f));
    let exp_ok = exp.is_none_or(|e| digits_ok(e.strip_prefix(['-', '+']).unwrap_or(e)));
    if !(int_ok && frac_ok && exp_ok) || (int.is_empty() && frac.is_none_or(str::is_empty)) {
        return None;
    }
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    clean
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

fn quoted(s: &str, q: char) -> Option<String> {
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == q {
            return None; // 'a' 'b' and the like: not handled, kept as text
        }
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_like_python() {
        assert_eq!(
            shlex_split(r#"h a="b c"d e='f g' # x"#).unwrap(),
            vec!["h", "a=b cd", "e=f g"]
        );
        assert_eq!(shlex_split(r#"h pw=ab#c"#).unwrap(), vec!["h", "pw=ab"]);
        assert_eq!(
            shlex_split(r#"h s="'03#pa33w0rd'""#).unwrap(),
            vec!["h", "s='03#pa33w0rd'"]
        );
        assert_eq!(
            shlex_split(r#"h a=x\ y b="q\"r\n""#).unwrap(),
            vec!["h", "a=x y", "b=q\"r\\n"]
        );
        assert!(shlex_split("h a=\"b").is_err());
    }

    #[test]
    fn literals_like_python() {
        assert_eq!(parse_value("22", false), Value::from(22));
        assert_eq!(parse_value("-3", false), Value::from(-3));
        assert_eq!(parse_value("1_000", false), Value::from(1000));
        assert_eq!(parse_value("0123", false), Value::from("0123"));
        assert_eq!(parse_value("1.5", false), Value::from(1.5));
        assert_eq!(parse_value("1e3", false), Value::from(1000.0));
        assert_eq!(parse_value("True", false), Value::Bool(true));
        assert_eq!(parse_value("true", false), Value::from("true"));
        assert_eq!(parse_value("None", false), Value::Null);
        assert_eq!(
            parse_value("'03#pa33w0rd'", false),
            Value::from("03#pa33w0rd")
        );
        assert_eq!(parse_value("\"a\\tb\"", false), Value::from("a\tb"));
        assert_eq!(parse_value("'a' 'b'", false), Value::from("'a' 'b'"));
        assert_eq!(parse_value("23 # note", true), Value::from(23));
        assert_eq!(parse_value("a#b", true), Value::from("a#b"));
        assert_eq!(parse_value(".", false), Value::from("."));
        assert_eq!(parse_value("1.2.3", false), Value::from("1.2.3"));
        assert_eq!(
            parse_value("ntp.atlanta.example.com", true),
            Value::from("ntp.atlanta.example.com")
        );
    }
}
