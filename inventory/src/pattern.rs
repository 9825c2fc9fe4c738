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
//! a regular expression is as written (add `(?i)` to ignore case). A regular expression
//! cannot contain `:` or `,`, which separate terms.
//!
//! Ansible's subscripts select from what a term matches, in Ansible's order (a group's
//! own hosts, then its children's): `webservers[0]`, `webservers[-1]`, `webservers[1:3]`
//! (inclusive: the 2nd to the 4th), `webservers[2:]` (Ansible's `_split_subscript` and
//! `_apply_subscript`, quirks included: `[x:0]` is the single host `x`). A term whose base
//! (`ws0` of `ws0[1-3]`) matches no group and no host is the glob it reads as instead,
//! as before subscripts were understood (Ansible would select nothing); a single index
//! past the end selects nothing, as in Ansible 2.19. Subscripts need the whole inventory
//! ([`crate::Inventory::limit`]).

use std::collections::BTreeSet;
use std::fmt;

use regex::Regex;

use crate::{Host, Inventory};

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
    /// `[0]`, `[1:3]`, `[-1]`: take these of what the base matches.
    subscript: Option<Subscript>,
    /// For a subscripted term, the whole term read as a glob: used when the base matches
    /// nothing (`ws0[1-3]`).
    fallback: Option<Box<Term>>,
    /// The term as written (for messages).
    text: String,
}

/// Ansible's `(start, end)` subscript: a single index (maybe negative), or an inclusive
/// range whose end `-1` means the last host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subscript {
    One(i64),
    Range(usize, i64),
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
    /// that name, and a subscript (`web[0]`) selects by position in the inventory, which
    /// one host does not know: here a subscripted term matches as its base does.
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

    /// Which hosts of `inv` the pattern selects (one flag per host, in inventory order),
    /// subscripts included.
    pub(crate) fn select(&self, inv: &Inventory) -> Result<Vec<bool>, PatternError> {
        let groups = inv.group_names();
        let members = inv.group_members();
        let n = inv.hosts.len();
        let set = |t: &Term| -> Result<Vec<bool>, PatternError> {
            t.select(inv, &groups, &members)
                .map_err(|problem| PatternError {
                    pattern: self.source.clone(),
                    message: problem.to_string(),
                })
        };
        let mut out = if self.include.is_empty() {
            vec![true; n]
        } else {
            let mut acc = vec![false; n];
            for t in &self.include {
                for (a, b) in acc.iter_mut().zip(set(t)?) {
                    *a |= b;
                }
            }
            acc
        };
        for t in &self.intersect {
            for (a, b) in out.iter_mut().zip(set(t)?) {
                *a &= b;
            }
        }
        for t in &self.exclude {
            for (a, b) in out.iter_mut().zip(set(t)?) {
                *a &= !b;
            }
        }
        Ok(out)
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
        if let Some((base, subscript)) = split_subscript(body) {
            let base_term = Term::parse_plain(base)?;
            return Ok(Term {
                subscript: Some(subscript),
                fallback: Term::parse_plain(body).ok().map(Box::new),
                text: body.to_string(),
                ..base_term
            });
        }
        Term::parse_plain(body)
    }

    fn plain(matcher: Matcher, special: bool, body: &str) -> Term {
        Term {
            matcher,
            special,
            subscript: None,
            fallback: None,
            text: body.to_string(),
        }
    }

    fn parse_plain(body: &str) -> Result<Term, Problem> {
        if body == "all" || body == "*" {
            return Ok(Term::plain(Matcher::All, true, body));
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
            return Ok(Term::plain(Matcher::Regex(compiled), true, body));
        }
        if body.contains(['*', '?', '[']) {
            let re = glob_to_regex(body)?;
            let compiled = Regex::new(&re).map_err(|_| Problem::BadGlob(body.to_string()))?;
            return Ok(Term::plain(Matcher::Regex(compiled), true, body));
        }
        Ok(Term::plain(
            Matcher::Name(body.to_lowercase()),
            body.contains('.'),
            body,
        ))
    }

    /// The hosts this term selects, one flag per host of `inv`.
    fn select(
        &self,
        inv: &Inventory,
        groups: &BTreeSet<String>,
        members: &[(String, Vec<usize>)],
    ) -> Result<Vec<bool>, Problem> {
        let n = inv.hosts.len();
        let Some(subscript) = self.subscript else {
            return Ok(inv
                .hosts
                .iter()
                .map(|h| self.matches(h, Some(groups)))
                .collect());
        };
        let ordered = self.ordered_matches(inv, members);
        if ordered.is_empty() {
            return match &self.fallback {
                Some(f) => f.select(inv, groups, members),
                None => Ok(vec![false; n]),
            };
        }
        let len = ordered.len() as i64;
        let picked: &[usize] = match subscript {
            Subscript::One(i) => {
                let ix = if i < 0 { len + i } else { i };
                match usize::try_from(ix).ok().and_then(|ix| ordered.get(ix..=ix)) {
                    Some(one) => one,
                    None => {
                        // Ansible 2.19 selects nothing here (and says so).
                        tracing::warn!(
                            "no hosts matched the subscripted pattern '{}': it matches {} host(s), numbered from 0",
                            self.text,
                            ordered.len()
                        );
                        &[]
                    }
                }
            }
            Subscript::Range(start, end) => {
                let end = if end == -1 { len - 1 } else { end };
                // Python's hosts[start:end + 1]: clamped, empty when reversed.
                let stop = usize::try_from(end.saturating_add(1))
                    .unwrap_or(0)
                    .min(ordered.len());
                ordered.get(start.min(stop)..stop).unwrap_or_default()
            }
        };
        let mut out = vec![false; n];
        for &i in picked {
            if let Some(slot) = out.get_mut(i) {
                *slot = true;
            }
        }
        Ok(out)
    }

    /// What the (base of the) term matches, in Ansible's order (`_enumerate_matches`):
    /// the hosts of each matching group in group order, each group's own hosts before
    /// its children's; then, when no group matched or the term is a glob or regex, the
    /// hosts whose names match. Duplicates dropped.
    fn ordered_matches(&self, inv: &Inventory, members: &[(String, Vec<usize>)]) -> Vec<usize> {
        let mut seen = vec![false; inv.hosts.len()];
        let mut out = Vec::new();
        let mut push = |i: usize, out: &mut Vec<usize>| {
            if let Some(s) = seen.get_mut(i) {
                if !*s {
                    *s = true;
                    out.push(i);
                }
            }
        };
        let mut any_group = false;
        for (g, hosts) in members {
            let hit = match &self.matcher {
                Matcher::All => g == "all",
                _ => self.hit(g),
            };
            if hit {
                any_group = true;
                for &i in hosts {
                    push(i, &mut out);
                }
            }
        }
        if !any_group || self.special {
            for (i, h) in inv.hosts.iter().enumerate() {
                if matches!(self.matcher, Matcher::All) || self.hit(&h.name) {
                    push(i, &mut out);
                }
            }
        }
        out
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

/// Ansible's `PATTERN_WITH_SUBSCRIPT`: `base[N]`, `base[-N]`, `base[A:B]`, `base[A:]`
/// (and the old `base[A-B]`), never for a `~regex`.
fn split_subscript(body: &str) -> Option<(&str, Subscript)> {
    if body.starts_with('~') {
        return None;
    }
    let inner_end = body.strip_suffix(']')?;
    let open = inner_end.rfind('[')?;
    let base = inner_end.get(..open)?;
    let inner = inner_end.get(open + 1..)?;
    if base.is_empty() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let single = inner.strip_prefix('-').unwrap_or(inner);
    if digits(single) {
        return inner.parse().ok().map(|i| (base, Subscript::One(i)));
    }
    let sep = inner.find([':', '-'])?;
    let (start, end) = (inner.get(..sep)?, inner.get(sep + 1..)?);
    if !digits(start) || !(end.is_empty() || digits(end)) {
        return None;
    }
    let start: usize = start.parse().ok()?;
    let end: i64 = if end.is_empty() {
        -1
    } else {
        end.parse().ok()?
    };
    // Ansible: `if end:` — an end of 0 is no end, so `[x:0]` is the single host x.
    if end == 0 {
        return Some((base, Subscript::One(i64::try_from(start).ok()?)));
    }
    Some((base, Subscript::Range(start, end)))
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
    fn subscripts_split_as_ansible() {
        assert_eq!(split_subscript("web[0]"), Some(("web", Subscript::One(0))));
        assert_eq!(
            split_subscript("web[-1]"),
            Some(("web", Subscript::One(-1)))
        );
        assert_eq!(
            split_subscript("web[1:3]"),
            Some(("web", Subscript::Range(1, 3)))
        );
        assert_eq!(
            split_subscript("web[2:]"),
            Some(("web", Subscript::Range(2, -1)))
        );
        assert_eq!(
            split_subscript("ws0[1-3]"),
            Some(("ws0", Subscript::Range(1, 3)))
        );
        assert_eq!(
            split_subscript("web[3:0]"),
            Some(("web", Subscript::One(3)))
        );
        assert_eq!(split_subscript("web[:2]"), None);
        assert_eq!(split_subscript("ws[!a]"), None);
        assert_eq!(split_subscript("[0]"), None);
        assert_eq!(split_subscript("~web[0]"), None);
    }

    #[test]
    fn globs_translate() {
        assert_eq!(glob_to_regex("ws0*.lab").unwrap(), r"(?i)^ws0.*\.lab$");
        assert_eq!(glob_to_regex("ws[!a-c]?").unwrap(), r"(?i)^ws[^a-c].$");
        assert_eq!(glob_to_regex("a[]x]").unwrap(), r"(?i)^a[\]x]$");
        assert!(glob_to_regex("a[bc").is_err());
    }
}
