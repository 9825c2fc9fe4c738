//! `xs:duration` values as WS-Management uses them: `w:OperationTimeout` (`PT20S`, MS-WSMV
//! 3.1.4.1.6), shell `IdleTimeOut` and `Lifetime` (`PT60S`, echoed by Windows as
//! `PT60.000S`) and `ShellRunTime` (`P0DT0H0M0S`). Negative or malformed values (pypsrp's
//! test sends `PT-1S`) are `None`; Windows answers them with an InvalidMessageInformationHeader
//! fault (capture `fault_invalid_header_bad_timeout.xml`).

use std::time::Duration;

/// Parses an `xs:duration` into a non-negative [`Duration`]. Years count as 365 days and
/// months as 30 days (WS-Management never sends either). Returns `None` for negative,
/// malformed or absurdly large values.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    total = total.checked_add(components(
        date,
        &[('Y', 365 * 86_400), ('M', 30 * 86_400), ('D', 86_400)],
    )?)?;
    if let Some(t) = time {
        total = total.checked_add(components(t, &[('H', 3600), ('M', 60), ('S', 1)])?)?;
    }
    Some(total)
}

/// Sums `<number><designator>` components that must appear in the order of `units`; only
/// the last one (seconds) may have a fraction.
fn components(mut s: &str, units: &[(char, u64)]) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut next_unit = 0usize;
    while !s.is_empty() {
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = s.split_at(end);
        let mut chars = tail.chars();
        let designator = chars.next()?;
        s = chars.as_str();
        let idx = units
            .iter()
            .skip(next_unit)
            .position(|(d, _)| *d == designator)?
            + next_unit;
        next_unit = idx + 1;
        let (_, secs_per_unit) = units.get(idx)?;
        let is_seconds = designator == 'S' && *secs_per_unit == 1;
        total = total.checked_add(number(num, *secs_per_unit, is_seconds)?)?;
    }
    Some(total)
}

fn number(num: &str, unit: u64, fraction_allowed: bool) -> Option<Duration> {
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) if fraction_allowed => (i, f),
        Some(_) => return None,
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let secs = whole.checked_mul(unit)?;
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    for b in frac.bytes().take(9) {
        nanos += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(Duration::new(secs, nanos))
}

/// `PT20S`, `PT1.5S`: the compact form clients send (pywinrm, pypsrp).
pub fn format_duration(d: Duration) -> String {
    let ms = d.subsec_millis();
    if d.subsec_nanos() == 0 {
        format!("PT{}S", d.as_secs())
    } else if d.subsec_nanos() == ms * 1_000_000 {
        format!("PT{}.{:03}S", d.as_secs(), ms)
    } else {
        format!("PT{}.{:09}S", d.as_secs(), d.subsec_nanos())
    }
}

/// `PT7200.000S`: the form Windows echoes in `rsp:IdleTimeOut` (millisecond precision).
pub fn format_duration_windows(d: Duration) -> String {
    format!("PT{}.{:03}S", d.as_secs(), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_windows_forms() {
        assert_eq!(parse_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_duration(" PT7200.000S "),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            parse_duration("PT2147483.647S"),
            Some(Duration::from_millis(2_147_483_647))
        );
        assert_eq!(parse_duration("P0DT0H0M0S"), Some(Duration::ZERO));
        assert_eq!(
            parse_duration("P1DT2H3M4.5S"),
            Some(Duration::from_millis(93_784_500))
        );
        assert_eq!(parse_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_duration("P1M"),
            Some(Duration::from_secs(30 * 86_400))
        );
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "PT-1S",
            "-PT1S",
            "P",
            "PT",
            "20",
            "PTS",
            "PT1.5M",
            "PT1S1M",
            "PT1H1H",
            "P1S",
            "PT99999999999999999999S",
            "PT.S",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_secs(20)), "PT20S");
        assert_eq!(format_duration(Duration::from_millis(1500)), "PT1.500S");
        assert_eq!(
            format_duration_windows(Duration::from_secs(7200)),
            "PT7200.000S"
        );
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::new(5, 123_456_789),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }
}
