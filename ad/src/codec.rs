//! Pure helpers for Active Directory values: binary SIDs, FILETIMEs, DNs, `unicodePwd`,
//! filters and AD's diagnostic codes. No I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

/// `userAccountControl` bit ACCOUNTDISABLE.
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;

/// 100 ns intervals between 1601-01-01 (FILETIME's epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 116_444_736_000_000_000;

/// Decodes a binary `objectSid` (MS-DTYP 2.4.2) into its `S-1-5-21-…` string form.
/// `None` if the bytes are not a well-formed SID.
pub fn decode_sid(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, mut rest) = rest.split_at_checked(6)?;
    if rest.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = authority
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = if authority >= 1 << 32 {
        format!("S-{revision}-0x{authority:012X}")
    } else {
        format!("S-{revision}-{authority}")
    };
    while let Some((chunk, tail)) = rest.split_first_chunk::<4>() {
        out.push('-');
        out.push_str(&u32::from_le_bytes(*chunk).to_string());
        rest = tail;
    }
    Some(out)
}

/// A FILETIME (100 ns since 1601-01-01 UTC, as `pwdLastSet` and `lastLogonTimestamp`
/// hold it) as a point in time; `None` for 0 and "never" (`i64::MAX`) and for times before
/// 1970.
pub fn filetime_to_system_time(filetime: u64) -> Option<SystemTime> {
    if filetime == 0 || filetime >= i64::MAX as u64 {
        return None;
    }
    let since_unix = filetime.checked_sub(FILETIME_UNIX_OFFSET)?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(since_unix.saturating_mul(100)))
}

/// A FILETIME for people: `2025-11-23T20:37:04Z` (UTC, seconds), `never` for 0 and
/// `i64::MAX` (AD's "not set" and "never"), the raw number for anything before 1970.
pub fn filetime_display(filetime: u64) -> String {
    if filetime == 0 || filetime >= i64::MAX as u64 {
        return "never".to_string();
    }
    let Some(since_unix) = filetime.checked_sub(FILETIME_UNIX_OFFSET) else {
        return filetime.to_string();
    };
    let secs = i64::try_from(since_unix / 10_000_000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let ((y, m, d), (hh, mm, ss)) = (t.to_calendar_date(), t.to_hms());
            let m = u8::from(m);
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
        }
        Err(_) => filetime.to_string(),
    }
}

/// The `sAMAccountName` of computer `name` (`ws01`, `WS01$`): `WS01$`.
pub(crate) fn computer_sam(name: &str) -> String {
    format!(
        "{}$",
        name.trim().trim_end_matches('$').to_ascii_uppercase()
    )
}

/// The filter for the computer object whose `sAMAccountName` is `sam` (`WS01$`).
pub(crate) fn computer_by_sam(sam: &str) -> String {
    format!(
        "(&(objectCategory=computer)(sAMAccountName={}))",
        ldap3::ldap_escape(sam)
    )
}

/// Splits a DN into its RDNs (`CN=WS0001`, `OU=Workstations`, …), honouring backslash
/// escapes (`CN=Smith\, John`) and quoted values. Whitespace around RDNs is trimmed.
pub fn split_dn(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    let mut quoted = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            ',' | ';' if !quoted => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The parent of a DN (everything after the first RDN); `None` for a single RDN.
pub fn parent_dn(dn: &str) -> Option<String> {
    let rdns = split_dn(dn);
    let rest = rdns.get(1..)?;
    if rest.is_empty() {
        return None;
    }
    Some(rest.join(","))
}

/// The attribute type and unescaped value of an RDN (`OU=Kiosks\, east` → `("OU",
/// "Kiosks, east")`).
pub fn rdn_parts(rdn: &str) -> Option<(&str, String)> {
    let (attr, value) = rdn.split_once('=')?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    // Hex escapes are bytes of UTF-8 (`\C3\A9` is one `é`): collect bytes, decode at the end.
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(next) = chars.next() else { break };
        if let Some(&lo) = chars.peek() {
            if let (Some(h), Some(l)) = (next.to_digit(16), lo.to_digit(16)) {
                chars.next();
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                continue;
            }
        }
        out.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    Some((attr.trim(), out))
}

/// The OU names on a DN's path, outermost first: `CN=WS1,OU=Kiosks,OU=Workstations,DC=lab`
/// → `["Workstations", "Kiosks"]`.
pub fn ou_path(dn: &str) -> Vec<String> {
    let mut ous: Vec<String> = split_dn(dn)
        .iter()
        .filter_map(|rdn| rdn_parts(rdn))
        .filter(|(attr, _)| attr.eq_ignore_ascii_case("OU"))
        .map(|(_, v)| v)
        .collect();
    ous.reverse();
    ous
}

/// An inventory group name made from an OU name: letters, digits and `_` (Ansible's rule
/// for group names), anything else becomes `_`.
pub fn group_name(ou: &str) -> String {
    ou.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The value AD wants in `unicodePwd`: the password in double quotes, UTF-16LE. Zeroed
/// on drop.
pub fn encode_unicode_pwd(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity((password.len() + 2) * 2));
    for unit in "\""
        .encode_utf16()
        .chain(password.encode_utf16())
        .chain("\"".encode_utf16())
    {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// The search filter for computer objects: `(objectCategory=computer)`, AND'ed with the
/// user's filter (parentheses added if missing) and, unless disabled accounts are wanted,
/// with "ACCOUNTDISABLE not set" (a bitwise-AND matching rule, evaluated by the DC).
pub fn computer_filter(user: Option<&str>, include_disabled: bool) -> String {
    let mut f = String::from("(&(objectCategory=computer)");
    if let Some(user) = user.map(str::trim).filter(|u| !u.is_empty()) {
        if user.starts_with('(') {
            f.push_str(user);
        } else {
            f.push('(');
            f.push_str(user);
            f.push(')');
        }
    }
    if !include_disabled {
        f.push_str("(!(userAccountControl:1.2.840.113556.1.4.803:=2))");
    }
    f.push(')');
    f
}

/// AD's reason code in a bind failure's diagnostic text (`… AcceptSecurityContext error,
/// data 52e, v4563`), explained.
pub fn bind_failure_reason(diagnostic: &str) -> Option<&'static str> {
    let idx = diagnostic.find("data ")?;
    let code = diagnostic
        .get(idx + 5..)?
        .split([',', ' '])
        .next()?
        .to_ascii_lowercase();
    Some(match code.as_str() {
        "525" => "no such user",
        "52e" => "bad user name or password",
        "530" => "logon not permitted at this time",
        "531" => "logon not permitted from this workstation",
        "532" => "password expired",
        "533" => "account disabled",
        "701" => "account expired",
        "773" => "the user must change the password before first logon",
        "775" => "account locked out",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_round_trip() {
        // S-1-5-21-1004336348-1177238915-682003330-512
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1_004_336_348, 1_177_238_915, 682_003_330, 512] {
            b.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(
            decode_sid(&b).as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330-512")
        );
        assert_eq!(
            decode_sid(&[1, 0, 0, 0, 0, 0, 0, 1]).as_deref(),
            Some("S-1-1")
        );
        assert_eq!(decode_sid(&b[..b.len() - 1]), None);
        assert_eq!(decode_sid(&[]), None);
    }

    #[test]
    fn filetimes() {
        assert_eq!(filetime_display(0), "never");
        assert_eq!(filetime_display(i64::MAX as u64), "never");
        assert_eq!(
            filetime_display(FILETIME_UNIX_OFFSET),
            "1970-01-01T00:00:00Z"
        );
        // 2030-01-01T00:00:00Z
        assert_eq!(
            filetime_display(135_379_296_000_000_000),
            "2030-01-01T00:00:00Z"
        );
        // 2024-02-29T12:34:56Z = 1709210096 s
        assert_eq!(
            filetime_display(FILETIME_UNIX_OFFSET + 1_709_210_096 * 10_000_000),
            "2024-02-29T12:34:56Z"
        );
        assert_eq!(
            filetime_to_system_time(FILETIME_UNIX_OFFSET + 10_000_000),
            UNIX_EPOCH.checked_add(Duration::from_secs(1))
        );
        assert_eq!(filetime_to_system_time(0), None);
    }

    #[test]
    fn dns() {
        let dn = "CN=Smith\\, John,OU=Kiosks,OU=Work Stations,DC=lab,DC=test";
        assert_eq!(split_dn(dn).len(), 5);
        assert_eq!(
            parent_dn(dn).as_deref(),
            Some("OU=Kiosks,OU=Work Stations,DC=lab,DC=test")
        );
        assert_eq!(
            rdn_parts("CN=Smith\\, John"),
            Some(("CN", "Smith, John".to_string()))
        );
        assert_eq!(rdn_parts("OU=a\\2Cb"), Some(("OU", "a,b".to_string())));
        assert_eq!(
            rdn_parts("OU=caf\\C3\\A9"),
            Some(("OU", "café".to_string()))
        );
        assert_eq!(
            ou_path(dn),
            vec!["Work Stations".to_string(), "Kiosks".to_string()]
        );
        assert_eq!(group_name("Work Stations"), "Work_Stations");
        assert_eq!(parent_dn("DC=test"), None);
    }

    #[test]
    fn unicode_pwd() {
        assert_eq!(
            encode_unicode_pwd("ab").as_slice(),
            &[b'"', 0, b'a', 0, b'b', 0, b'"', 0]
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            computer_filter(None, false),
            "(&(objectCategory=computer)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
        );
        assert_eq!(
            computer_filter(Some("cn=WS*"), true),
            "(&(objectCategory=computer)(cn=WS*))"
        );
        assert_eq!(
            computer_filter(Some("(cn=WS*)"), true),
            "(&(objectCategory=computer)(cn=WS*))"
        );
    }

    #[test]
    fn bind_reasons() {
        let text = "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1";
        assert_eq!(bind_failure_reason(text), Some("bad user name or password"));
        assert_eq!(
            bind_failure_reason("data 775, v"),
            Some("account locked out")
        );
        assert_eq!(bind_failure_reason("nothing"), None);
    }
}
