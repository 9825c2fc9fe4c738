//! PowerShell's wildcard match, as `-like` and the lab's WQL `LIKE` (after `%`→`*`,
//! `_`→`?`) use it: `*` is any run of characters, `?` exactly one, everything else one
//! character compared ASCII-case-insensitively (about_Wildcards; the `[a-z]` ranges are not
//! modelled, the lab's scripts do not use them).
//!
//! Why this is not `inventory`'s `glob_to_regex`: that one implements Ansible's inventory
//! patterns (Python `fnmatch`: case-sensitive, `[...]` classes, whole-name anchoring via a
//! regex), a different language with different answers, and the lab must not depend on
//! `inventory` for its Windows semantics (ARCHITECTURE.md: `lab` answers as Windows would).
//! This is the lab's one wildcard matcher.

/// Does `text` match `pattern` (`*`, `?`, case-insensitive)? Iterative, with one
/// backtracking point per `*`: linear in practice, never exponential.
pub(crate) fn matches(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('?'), _) => {
                ti += 1;
                pi += 1;
            }
            (Some('*'), _) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            (Some(pc), Some(tc)) if pc.eq_ignore_ascii_case(tc) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn matches_sid_pattern() {
        assert!(matches("S-1-5-21-1-2-3-500", "S-1-5-21-*-500"));
        assert!(!matches("S-1-5-21-1-2-3-1001", "S-1-5-21-*-500"));
    }

    #[test]
    fn star_question_and_case() {
        for (t, p, want) in [
            ("", "", true),
            ("", "*", true),
            ("", "?", false),
            ("a", "", false),
            ("abc", "a*", true),
            ("abc", "*C", true),
            ("abc", "a?c", true),
            ("abc", "a?", false),
            ("abc", "*b*", true),
            ("abc", "*d*", false),
            ("aXbXc", "a*b*c", true),
            ("ab", "a*b*", true),
            ("WIN-01", "win-*", true),
        ] {
            assert_eq!(matches(t, p), want, "{t:?} -like {p:?}");
        }
    }

    #[test]
    fn no_exponential_backtracking() {
        let text = "a".repeat(2_000);
        assert!(!matches(&text, &("*a".repeat(50) + "b")));
    }
}
