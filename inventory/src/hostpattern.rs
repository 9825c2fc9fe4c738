//! Host names as inventories write them: `name`, `name:port`, `[v6::addr]:port`, and
//! Ansible's ranges `ws[001:120].lab.test` (zero padding kept), `db-[a:f]` (letters) and
//! `www[01:50:2]` (a stride). Several ranges in one name multiply out.

use std::net::Ipv6Addr;

/// A host name an inventory or `--limit` wrote that cannot be expanded: bad input, said
/// with what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostPatternError {
    /// `:5986` with no name before it.
    #[error("'{token}' has no host name")]
    NoName {
        /// The name as written.
        token: String,
    },
    /// A `[` without its `]`.
    #[error("unclosed '[' in '{name}': host ranges look like ws[01:20]")]
    UnclosedRange {
        /// The name as written.
        name: String,
    },
    /// A range that cannot be read.
    #[error("bad host range '[{range}]' in '{name}': {problem}")]
    BadRange {
        /// What is between the brackets.
        range: String,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        problem: RangeProblem,
    },
    /// The ranges of one name make more than [`MAX_RANGE_HOSTS`] hosts.
    #[error("'{name}' makes {count} hosts, more than {MAX_RANGE_HOSTS}: split the range")]
    TooManyHosts {
        /// The name as written.
        name: String,
        /// How many hosts it would make.
        count: u64,
    },
    /// Text after `[v6]` that is not `:port`.
    #[error("unexpected '{after}' after the IPv6 address in '{token}': write [address]:port")]
    AfterIpv6Address {
        /// The text after `]`.
        after: String,
        /// The name as written.
        token: String,
    },
    /// `a:b:c` that is no IPv6 address.
    #[error("'{token}' has more than one ':': write host:port, and IPv6 addresses in brackets ([fe80::1]:5986)")]
    ManyColons {
        /// The name as written.
        token: String,
    },
    /// `ws1:` with no port after the `:`.
    #[error("'{token}' ends with ':': write the port after it ({name}:5986) or remove the ':'")]
    EmptyPort {
        /// The name as written.
        token: String,
        /// The name without its `:`.
        name: String,
    },
    /// A port that is not a number from 1 to 65535.
    #[error("bad port '{port}' in '{token}': a port is a number from 1 to 65535")]
    BadPort {
        /// The port as written.
        port: String,
        /// The name as written.
        token: String,
    },
}

/// What is wrong with a host range (`[01:20]`, `[a:f]`, `[1:9:2]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeProblem {
    /// Not two or three `:`-separated parts.
    #[error("write [start:end] or [start:end:step]")]
    Shape,
    /// `[1:]`.
    #[error("the end is missing (write [start:end])")]
    NoEnd,
    /// A step that is not a whole number of at least 1.
    #[error("the step must be a whole number of at least 1")]
    BadStep,
    /// Neither two numbers nor two single letters.
    #[error("use numbers ([01:20]) or single letters ([a:f])")]
    NotNumbersOrLetters,
    /// The start is after the end; the fix swaps them.
    #[error("the start is after the end (write [{end}:{start}])")]
    Reversed {
        /// The start as written.
        start: String,
        /// The end as written.
        end: String,
    },
    /// Zero-padded bounds of different widths; the fix pads both to the wider.
    #[error(
        "start and end must have the same number of digits when zero-padded (write [{}:{}])",
        zero_pad(.start, .start.len().max(.end.len())),
        zero_pad(.end, .start.len().max(.end.len()))
    )]
    PaddingWidth {
        /// The start as written.
        start: String,
        /// The end as written.
        end: String,
    },
    /// Bounds that do not fit in 64 bits.
    #[error("the numbers are too large")]
    TooLarge,
}

fn zero_pad(s: &str, width: usize) -> String {
    format!("{s:0>width$}")
}

/// The most hosts one name may expand to (a typo like `[0:9999999]` should not eat memory).
pub const MAX_RANGE_HOSTS: usize = 100_000;

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Splits an optional `:port` off `token` and expands its ranges. The error says what is
/// wrong and how to write it.
pub fn expand_host_pattern(token: &str) -> Result<(Vec<String>, Option<u16>), HostPatternError> {
    let (name, port) = split_port(token)?;
    if name.is_empty() {
        return Err(HostPatternError::NoName {
            token: token.to_string(),
        });
    }
    Ok((expand_ranges(name)?, port))
}

/// Expands Ansible host ranges in `name`; a name without `[` is returned as is.
pub fn expand_ranges(name: &str) -> Result<Vec<String>, HostPatternError> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_string()]);
    };
    let head = name.get(..open).unwrap_or_default();
    let after = name.get(open + 1..).unwrap_or_default();
    let Some(close_rel) = after.find(']') else {
        return Err(HostPatternError::UnclosedRange {
            name: name.to_string(),
        });
    };
    let inner = after.get(..close_rel).unwrap_or_default();
    let tail = after.get(close_rel + 1..).unwrap_or_default();
    let values = range_values(inner, name)?;
    let tails = expand_ranges(tail)?;
    let total = values.len().saturating_mul(tails.len());
    if total > MAX_RANGE_HOSTS {
        return Err(HostPatternError::TooManyHosts {
            name: name.to_string(),
            count: total as u64,
        });
    }
    let mut out = Vec::with_capacity(total);
    for v in &values {
        for t in &tails {
            out.push(format!("{head}{v}{t}"));
        }
    }
    Ok(out)
}

fn range_values(inner: &str, name: &str) -> Result<Vec<String>, HostPatternError> {
    let bad = |problem: RangeProblem| HostPatternError::BadRange {
        range: inner.to_string(),
        name: name.to_string(),
        problem,
    };
    let parts: Vec<&str> = inner.split(':').map(str::trim).collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, None),
        [b, e, s] => (*b, *e, Some(*s)),
        _ => return Err(bad(RangeProblem::Shape)),
    };
    let beg = if beg.is_empty() { "0" } else { beg };
    if end.is_empty() {
        return Err(bad(RangeProblem::NoEnd));
    }
    let step: usize = match step {
        None => 1,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(bad(RangeProblem::BadStep)),
        },
    };
    let is_letter = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic());
    let is_number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if is_letter(beg) && is_letter(end) {
        let (Some(b), Some(e)) = (LETTERS.find(beg), LETTERS.find(end)) else {
            return Err(bad(RangeProblem::NotNumbersOrLetters));
        };
        if b > e {
            return Err(bad(RangeProblem::Reversed {
                start: beg.to_string(),
                end: end.to_string(),
            }));
        }
        let slice = LETTERS.get(b..=e).unwrap_or_default();
        return Ok(slice.chars().step_by(step).map(String::from).collect());
    }
    if !(is_number(beg) && is_number(end)) {
        return Err(bad(RangeProblem::NotNumbersOrLetters));
    }
    let padded = |s: &str| s.len() > 1 && s.starts_with('0');
    let width = if padded(beg) || padded(end) {
        if beg.len() != end.len() {
            return Err(bad(RangeProblem::PaddingWidth {
                start: beg.to_string(),
                end: end.to_string(),
            }));
        }
        beg.len()
    } else {
        0
    };
    let (Ok(b), Ok(e)) = (beg.parse::<u64>(), end.parse::<u64>()) else {
        return Err(bad(RangeProblem::TooLarge));
    };
    if b > e {
        return Err(bad(RangeProblem::Reversed {
            start: beg.to_string(),
            end: end.to_string(),
        }));
    }
    let count = (e - b) / step as u64 + 1;
    if count > MAX_RANGE_HOSTS as u64 {
        return Err(HostPatternError::TooManyHosts {
            name: name.to_string(),
            count,
        });
    }
    Ok((b..=e)
        .step_by(step)
        .map(|n| format!("{n:0>width$}"))
        .collect())
}

/// Splits `host:port`. Colons inside `[...]` belong to ranges; a bare IPv6 address has
/// no port; `[v6]:port` is the way to give one.
fn split_port(token: &str) -> Result<(&str, Option<u16>), HostPatternError> {
    if token.parse::<Ipv6Addr>().is_ok() {
        return Ok((token, None));
    }
    if let Some(rest) = token.strip_prefix('[') {
        if let Some(close) = rest.find(']') {
            let inner = rest.get(..close).unwrap_or_default();
            if inner.parse::<Ipv6Addr>().is_ok() {
                let after = rest.get(close + 1..).unwrap_or_default();
                if after.is_empty() {
                    return Ok((inner, None));
                }
                return match after.strip_prefix(':') {
                    Some(p) => Ok((inner, Some(parse_port(p, token)?))),
                    None => Err(HostPatternError::AfterIpv6Address {
                        after: after.to_string(),
                        token: token.to_string(),
                    }),
                };
            }
        }
    }
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in token.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [] => Ok((token, None)),
        [i] => {
            let name = token.get(..*i).unwrap_or_default();
            let port = token.get(*i + 1..).unwrap_or_default();
            Ok((name, Some(parse_port(port, token)?)))
        }
        _ => Err(HostPatternError::ManyColons {
            token: token.to_string(),
        }),
    }
}

fn parse_port(port: &str, token: &str) -> Result<u16, HostPatternError> {
    if port.is_empty() {
        return Err(HostPatternError::EmptyPort {
            token: token.to_string(),
            name: token.strip_suffix(':').unwrap_or(token).to_string(),
        });
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 && port.chars().all(|c| c.is_ascii_digit()) => Ok(p),
        _ => Err(HostPatternError::BadPort {
            port: port.to_string(),
            token: token.to_string(),
        }),
    }
}
