//! Ansible's host patterns (`--limit`): which hosts of an inventory to act on.
//!
//! A pattern is terms separated by `:` or `,`. A term is `all` or `*` (every host), a host
//! or group name, a glob (`ws00*`, `ws0?`, `ws0[1-3]`, `[!a]*`), or `~` and a regular
//! expression matched from the start of the name (`~ws0[0-9]+\.lab`). A term prefixed
//! `&` intersects, one prefixed `!` excludes. As in Ansible the order of the terms does
//! not matter: the union of the plain terms is taken first (every host if there is
//! none), then each `&` term intersects it, then each `!` term removes from it.
//!
//! A term selects a host when it matches the host's name or one of its groups (children's
//! hosts are in their parents). Names and globs ignore case (Windows host names do);
//! a regular expression is as written (add `(?i)` to ignore case). Ansible's subscripts
//! (`webservers[0:2]`) are not supported. A regular expression cannot contain `:` or
//! `,`, which separate terms.

use std::collections::BTreeSet;
use std::fmt;

use regex::Regex;

use crate::Host;

/// A parsed host pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    include: Vec<Term>,
    intersect: Vec<Term>,
    exclude: Vec<Term>,
}

#[derive(Clone, Debug)]
struct Term {
    matcher: Matcher,
    /// Holds a glob or regex character: may match host names even when it matches groups.
    special: bool,
}

#[derive(Clone, Debug)]
enum Matcher {
    All,
    Name(String),
    Regex(Regex),
}

/// A pattern that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad host pattern '{pattern}': {message}")]
pub struct PatternError {
    /// The whole pattern as given.
    pub pattern: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// What is wrong with one pattern (bad input); [`PatternError::message`] is its text.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("'{op}' must be followed by a host or group name (as in {example})")]
    NoName { op: char, example: &'static str },
    #[error(
        "'{0}' has two operators: use ':&name' to intersect or ':!name' to exclude, one per term"
    )]
    TwoOperators(String),
    #[error("'{0}' contains a space: separate names with ',' or ':'")]
    Space(String),
    #[error("it names no hosts: give host names, group names or globs (like 'ws00*' or 'webservers:!atlanta')")]
    NoTerms,
    #[error("'~' must be followed by a regular expression (as in ~ws0[0-9]+)")]
    NoRegex,
    #[error("'{term}' is not a valid regular expression: {detail}")]
    BadRegex { term: String, detail: String },
    #[error("'{0}' is not a valid glob: check its [...] class")]
    BadGlob(String),
    #[error("unclosed '[' in '{0}': a glob class looks like ws0[1-3]")]
    UnclosedClass(String),
    #[error("empty '[]' in '{0}': a glob class looks like ws0[1-3]")]
    EmptyClass(String),
}

impl Pattern {
    /// Parses a pattern such as `webservers:&atlanta:!ws0001*`.
    pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let err = |problem: Problem| PatternError {
            pattern: pattern.to_string(),
            message: problem.to_string(),
        };
        let mut p = Pattern {
            source: pattern.to_string(),
            include: Vec::new(),
            intersect: Vec::new(),
            exclude: Vec::new(),
        };
        for raw in split_terms(pattern).map_err(err)? {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (kind, body) = match raw.chars().next() {
                Some('&') => (
                    Kind::Intersect,
                    raw.get(1..).unwrap_or_default().trim_start(),
                ),
                Some('!') => (Kind::Exclude, raw.get(1..).unwrap_or_default().trim_start()),
                _ => (Kind::Include, raw),
            };
            if body.is_empty() {
                let op = raw.chars().next().unwrap_or('&');
                let example = if op == '&' {
                    "webservers:&atlanta"
                } else {
                    "webservers:!atlanta"
                };
                return Err(err(Problem::NoName { op, example }));
            }
            if body.starts_with(['&', '!']) {
                return Err(err(Problem::TwoOperators(raw.to_string())));
            }
            if body.contains(char::is_whitespace) {
                return Err(err(Problem::Space(body.to_string())));
            }
            let term = Term::parse(body).map_err(err)?;
            match kind {
                Kind::Include => p.include.push(term),
                Kind::Intersect => p.intersect.push(term),
                Kind::Exclude => p.exclude.push(term),
            }
        }
        if p.include.is_empty() && p.intersect.is_empty() && p.exclude.is_empty() {
            return Err(err(Problem::NoTerms));
        }
        Ok(p)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern selects `host`, judging by the host alone: a term matches its
    /// name or any of its groups. [`crate::Inventory::limit`] is exact where this is not:
    /// as in Ansible, a plain name that names a group there does not also select a host of
    /// that name.
    pub fn matches(&self, host: &Host) -> bool {
        self.eval(|t| t.matches(host, None))
    }

    /// Like [`Pattern::matches`], knowing every group of the inventory.
    pub(crate) fn matches_in(&self, host: &Host, groups: &BTreeSet<String>) -> bool {
        self.eval(|t| t.matches(host, Some(groups)))
    }

    fn eval(&self, hit: impl Fn(&Term) -> bool) -> bool {
        (self.include.is_empty() || self.include.iter().any(&hit))
            && self.intersect.iter().all(&hit)
            && !self.exclude.iter().any(&hit)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(s)
    }
}

enum Kind {
    Include,
    Intersect,
    Exclude,
}

impl Term {
    fn parse(body: &str) -> Result<Term, Problem> {
        if body == "all" || body == "*" {
            return Ok(Term {
                matcher: Matcher::All,
                special: true,
            });
        }
        if let Some(re) = body.strip_prefix('~') {
            if re.is_empty() {
                return Err(Problem::NoRegex);
            }
            let compiled = Regex::new(&format!("^(?:{re})")).map_err(|e| {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                Problem::BadRegex {
                    term: body.to_string(),
                    detail: last.trim_start_matches("error: ").to_string(),
                }
            })?;
            return Ok(Term {
                matcher: Matcher::Regex(compiled),
                special: true,
            });
        }
        if body.contains(['*', '?', '[']) {
            let re = glob_to_regex(body)?;
            let compiled = Regex::new(&re).map_err(|_| Problem::BadGlob(body.to_string()))?;
            return Ok(Term {
                matcher: Matcher::Regex(compiled),
                special: true,
            });
        }
        Ok(Term {
            matcher: Matcher::Name(body.to_lowercase()),
            special: body.contains('.'),
        })
    }

    fn hit(&self, s: &str) -> bool {
        match &self.matcher {
            Matcher::All => true,
            Matcher::Name(n) => s.to_lowercase() == *n,
            Matcher::Regex(r) => r.is_match(s),
        }
    }

    fn matches(&self, host: &Host, groups: Option<&BTreeSet<String>>) -> bool {
        if matches!(self.matcher, Matcher::All) {
            return true;
        }
        if host.groups.iter().any(|g| self.hit(g)) {
            return true;
        }
        // Ansible tries host names when no group matched, or when the term is a glob,
        // a regex or holds a '.'.
        let names_a_group =
            !self.special && groups.is_some_and(|gs| gs.iter().any(|g| self.hit(g)));
        !names_a_group && self.hit(&host.name)
    }
}

/// Splits at `:` and `,` outside `[...]`; an IPv6 address alone is one term.
fn split_terms(pattern: &str) -> Result<Vec<&str>, Problem> {
    let t = pattern.trim();
    if t.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(vec![t]);
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut open: Option<usize> = None;
    for (i, c) in pattern.char_indices() {
        match c {
            '[' if open.is_none() => open = Some(i),
            ']' => open = None,
            ':' | ',' if open.is_none() => {
                out.push(pattern.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(i) = open {
        let from = pattern.get(i..).unwrap_or_default();
        return Err(Problem::UnclosedClass(from.to_string()));
    }
    out.push(pattern.get(start..).unwrap_or_default());
    Ok(out)
}

/// Translates a shell glob (Python's `fnmatch`: `*`, `?`, `[seq]`, `[!seq]`) into an
/// anchored, case-insensitive regular expression.
fn glob_to_regex(glob: &str) -> Result<String, Problem> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("(?i)^");
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '*' => {
                out.push_str(".*");
                while chars.get(i + 1) == Some(&'*') {
                    i += 1;
                }
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i + 1;
                let negate = chars.get(j) == Some(&'!');
                if negate {
                    j += 1;
                }
                let body_start = j;
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while chars.get(j).is_some_and(|c| *c != ']') {
                    j += 1;
                }
                if chars.get(j).is_none() {
                    return Err(Problem::UnclosedClass(glob.to_string()));
                }
                let body: Vec<char> = chars.get(body_start..j).unwrap_or_default().to_vec();
                if body.is_empty() {
                    return Err(Problem::EmptyClass(glob.to_string()));
                }
                out.push('[');
                if negate {
                    out.push('^');
                }
                let last = body.len() - 1;
                for (k, ch) in body.iter().enumerate() {
                    let range_dash = *ch == '-' && k != 0 && k != last;
                    if range_dash {
                        out.push('-');
                    } else if matches!(ch, '\\' | '[' | ']' | '^' | '&' | '~' | '-') {
                        out.push('\\');
                        out.push(*ch);
                    } else {
                        out.push(*ch);
                    }
                }
                out.push(']');
                i = j;
            }
            other => out.push_str(&regex::escape(other.encode_utf8(&mut [0u8; 4]))),
        }
        i += 1;
    }
    out.push('$');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_translate() {
        assert_eq!(glob_to_regex("ws0*.lab").unwrap(), r"(?i)^ws0.*\.lab$");
        assert_eq!(glob_to_regex("ws[!a-c]?").unwrap(), r"(?i)^ws[^a-c].$");
        assert_eq!(glob_to_regex("a[]x]").unwrap(), r"(?i)^a[\]x]$");
        assert!(glob_to_regex("a[bc").is_err());
    }
}
