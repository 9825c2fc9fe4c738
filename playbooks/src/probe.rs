//! The probe: [`probe_host`] runs [`crate::scripts::PROBE`] through a [`Remote`] and
//! [`parse_probe`] reads its `ts.key=value` lines and sections; and the parsers of what
//! hosts print: `nltest /sc_query` (stored status), `/sc_verify` (live test), `/sc_reset`,
//! `/query`, `/dsgetdc` (the DC locator, also for the PDC) and `/dclist` (kept as a parser
//! only: over WinRM as a local account it lists nothing useful, DOMAIN.md).
//!
//! nltest still ends with "The command completed successfully" when the trust is broken,
//! and its labels are translated on non-English Windows, so these parsers read the numeric
//! statuses (`Status = 1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT`, `= N 0xHEX` is the part they
//! key on), the `\\dc` names and the line order, never the English words alone. Input may
//! use CRLF or LF line endings and may carry the trailing spaces nltest prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::remote::{CommandOutput, Remote, RemoteError};
use crate::scripts::is_valid_name;

/// Win32 status codes that matter for the secure channel.
pub mod status {
    /// `NERR_Success`.
    pub const SUCCESS: u32 = 0;
    /// `ERROR_ACCESS_DENIED`: in a channel status, the DC rejected the machine password;
    /// from `I_NetLogonControl failed`, the caller is not elevated.
    pub const ACCESS_DENIED: u32 = 5;
    /// `ERROR_NO_LOGON_SERVERS`.
    pub const NO_LOGON_SERVERS: u32 = 1311;
    /// `ERROR_NO_SUCH_DOMAIN`.
    pub const NO_SUCH_DOMAIN: u32 = 1355;
    /// `RPC_S_SERVER_UNAVAILABLE` (e.g. Netlogon not running).
    pub const RPC_S_SERVER_UNAVAILABLE: u32 = 1722;
    /// `ERROR_NO_TRUST_LSA_SECRET`.
    pub const NO_TRUST_LSA_SECRET: u32 = 1786;
    /// `ERROR_NO_TRUST_SAM_ACCOUNT`.
    pub const NO_TRUST_SAM_ACCOUNT: u32 = 1787;
}

/// One `Status = <dec> 0x<hex> <NAME>` as nltest prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NltestStatus {
    /// The Win32 code.
    pub code: u32,
    /// The symbolic name (may be empty for codes nltest cannot name).
    pub name: String,
}

impl fmt::Display for NltestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 0x{:x}", self.code, self.code)?;
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        }
        Ok(())
    }
}

/// The Netlogon call itself failed (`I_NetLogonControl failed: Status = 5 0x5 …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NltestFailure {
    /// The line as printed (trimmed).
    pub line: String,
    /// Its status.
    pub status: NltestStatus,
}

/// What `nltest /sc_verify`, `/sc_query`, `/sc_reset` or `/query` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NltestOutput {
    /// `Trusted DC Name \\dc01.contoso.com`, without the backslashes.
    pub trusted_dc: Option<String>,
    /// `Trusted DC Connection Status Status = …` (or `/query`'s `Connection Status = …`).
    pub connection_status: Option<NltestStatus>,
    /// `Trust Verification Status = …` (`/sc_verify` only).
    pub verification_status: Option<NltestStatus>,
    /// The call failed before reporting a channel status.
    pub failure: Option<NltestFailure>,
}

impl NltestOutput {
    /// The channel's status: the first non-zero of verification and connection status,
    /// else 0 if either was printed; `None` when the call failed or printed no status.
    pub fn channel_status(&self) -> Option<&NltestStatus> {
        if self.failure.is_some() {
            return None;
        }
        let both = [
            self.verification_status.as_ref(),
            self.connection_status.as_ref(),
        ];
        both.iter()
            .flatten()
            .find(|s| s.code != status::SUCCESS)
            .or_else(|| both.iter().flatten().next())
            .copied()
    }

    /// A channel status of 0 (and no failure).
    pub fn is_success(&self) -> bool {
        self.channel_status()
            .is_some_and(|s| s.code == status::SUCCESS)
    }

    /// Short lines for a finding's evidence.
    pub fn evidence(&self, command: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = &self.failure {
            // `I_NetLogonControl failed: Status = 5` is the caller's missing elevation,
            // not a DC refusing the machine password (DOMAIN.md).
            let why = if f.status.code == status::ACCESS_DENIED {
                ": the session is not elevated (not a refused machine password)"
            } else {
                ""
            };
            out.push(format!(
                "{command}: call failed, Status = {} ({}){why}",
                f.status,
                excerpt(&f.line, 200)
            ));
            return out;
        }
        if let Some(s) = &self.connection_status {
            out.push(format!("{command}: connection Status = {s}"));
        }
        if let Some(s) = &self.verification_status {
            out.push(format!("{command}: verification Status = {s}"));
        }
        if let Some(dc) = &self.trusted_dc {
            out.push(format!("{command}: trusted DC \\\\{dc}"));
        }
        if out.is_empty() {
            out.push(format!("{command}: no status printed"));
        }
        out
    }
}

/// Finds `= <dec> 0x<hex> [NAME]` in a line; returns the text before the `=` and the status.
fn find_status(line: &str) -> Option<(&str, NltestStatus)> {
    for (i, _) in line.match_indices('=') {
        let label = line.get(..i).unwrap_or("");
        let rest = line.get(i + 1..).unwrap_or("").trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            continue;
        }
        let (dec, after) = rest.split_at(digits);
        let Some(hex_part) = after.trim_start().strip_prefix("0x") else {
            continue;
        };
        let hex_len = hex_part
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex_part.len());
        let (hex, tail) = hex_part.split_at(hex_len);
        let code = match (dec.parse::<u32>(), u32::from_str_radix(hex, 16)) {
            (Ok(d), _) => d,
            (Err(_), Ok(h)) => h,
            (Err(_), Err(_)) => continue,
        };
        let name = tail.split_whitespace().next().unwrap_or("").to_string();
        return Some((label, NltestStatus { code, name }));
    }
    None
}

/// The first `\\name` in a line (without the backslashes and trailing punctuation).
fn find_unc_name(line: &str) -> Option<String> {
    let start = line.find("\\\\")?;
    let rest = line.get(start + 2..)?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    let name = name.trim_end_matches('.').to_string();
    is_valid_name(&name).then_some(name)
}

fn is_failure_label(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    l.contains("i_netlogoncontrol") || l.contains("failed")
}

/// Parses `nltest /sc_verify`, `/sc_query`, `/sc_reset` or `/query` output.
///
/// Status lines are told apart by label when it is English (`Connection`, `Verification`,
/// `failed`/`I_NetLogonControl`), otherwise by position (first = connection, second =
/// verification), which holds for translated output.
pub fn parse_nltest(text: &str) -> NltestOutput {
    let mut out = NltestOutput::default();
    let mut unlabelled = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((label, st)) = find_status(line) {
            let lower = label.to_ascii_lowercase();
            if is_failure_label(label) {
                if out.failure.is_none() {
                    out.failure = Some(NltestFailure {
                        line: line.to_string(),
                        status: st,
                    });
                }
            } else if lower.contains("verification") {
                out.verification_status = Some(st);
            } else if lower.contains("connection") {
                out.connection_status = Some(st);
            } else {
                unlabelled.push(st);
            }
        } else if out.trusted_dc.is_none() {
            out.trusted_dc = find_unc_name(line);
        }
    }
    for st in unlabelled {
        if out.connection_status.is_none() {
            out.connection_status = Some(st);
        } else if out.verification_status.is_none() {
            out.verification_status = Some(st);
        }
    }
    out
}

/// One DC from `nltest /dclist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcEntry {
    /// As listed: an FQDN (`dc1.lab.test`), or a NetBIOS name in the fallback listing.
    pub name: String,
    /// Marked `[PDC]` / `(PDC)`: the PDC emulator.
    pub pdc: bool,
    /// `Site: …`, when printed.
    pub site: Option<String>,
}

/// What `nltest /dclist:<domain>` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcList {
    /// The DC the list came from (`from '\\dc1.lab.test'`).
    pub source_dc: Option<String>,
    /// The DCs, in the order listed.
    pub dcs: Vec<DcEntry>,
    /// A non-zero status printed instead of (or besides) a list.
    pub failure: Option<NltestStatus>,
}

impl DcList {
    /// The PDC emulator, when marked.
    pub fn pdc(&self) -> Option<&DcEntry> {
        self.dcs.iter().find(|d| d.pdc)
    }
}

/// Parses `nltest /dclist:<domain>`: the DsBind form
/// (`    dc1.lab.test [PDC]  [DS] Site: Default-First-Site-Name`, after
/// `Get list of DCs in domain 'lab.test' from '\\dc1.lab.test'.`) and the NetServerEnum
/// fallback that non-domain callers get (`    \\DC1 (PDC)`).
pub fn parse_dclist(text: &str) -> DcList {
    let mut out = DcList::default();
    for raw in text.lines() {
        let line = raw.trim_end();
        if let Some((_, st)) = find_status(line) {
            if st.code != status::SUCCESS && out.failure.is_none() {
                out.failure = Some(st);
            }
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            if out.source_dc.is_none() {
                out.source_dc = find_unc_name(line);
            }
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = tokens.first() else {
            continue;
        };
        let name = first.trim_start_matches('\\');
        if !is_valid_name(name) {
            continue;
        }
        let pdc = tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case("[PDC]") || t.eq_ignore_ascii_case("(PDC)"));
        let site = tokens
            .iter()
            .position(|t| t.ends_with(':'))
            .map(|i| tokens.get(i + 1..).unwrap_or(&[]).join(" "))
            .filter(|s| !s.is_empty());
        out.dcs.push(DcEntry {
            name: name.to_string(),
            pdc,
            site,
        });
    }
    out
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn non_empty(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// At most `max` characters of `text`, on one line.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// The `True`/`False` that `Test-ComputerSecureChannel` prints on a line of its own (its
/// `-Verbose` lines are translated and differ between versions; only the boolean counts).
pub fn parse_tcsc_output(text: &str) -> Option<bool> {
    text.lines().find_map(parse_bool)
}

/// What the DC locator answered (`nltest /dsgetdc:<domain> [/pdc] [/force]`): run by
/// Netlogon as SYSTEM, so it needs no domain credential (DOMAIN.md, "Finding the PDC").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcLocator {
    /// The DC found, without `\\`: a NetBIOS name (`DC1`) or an FQDN (`dc1.lab.test`).
    pub dc: Option<String>,
    /// Its address, without `\\` (`192.168.0.1`).
    pub address: Option<String>,
    /// The flag words (`PDC`, `GC`, `DS`, `WRITABLE`, …), without the trailing hex value.
    pub flags: Vec<String>,
    /// The `PDC` flag is set: the DC found is the PDC emulator.
    pub is_pdc: bool,
    /// A non-zero status (`Getting DC name failed: Status = 1355 0x54b …`): no DC found.
    pub failure: Option<NltestStatus>,
}

impl DcLocator {
    /// Did the locator name a DC?
    pub fn found(&self) -> bool {
        self.failure.is_none() && self.dc.is_some()
    }

    /// One evidence line, labelled with the command.
    pub fn evidence(&self, command: &str) -> String {
        match (&self.failure, &self.dc) {
            (Some(st), _) => format!("{command}: no DC found, Status = {st}"),
            (None, Some(dc)) => {
                let mut s = format!("{command}: \\\\{dc}");
                if let Some(a) = &self.address {
                    s.push_str(&format!(" (\\\\{a})"));
                }
                if !self.flags.is_empty() {
                    s.push_str(&format!(", flags {}", self.flags.join(" ")));
                }
                s
            }
            (None, None) => format!("{command}: no DC named"),
        }
    }
}

/// Flag words the DC locator prints (`DS_FLAG_*` as nltest spells them); they are symbols,
/// never translated.
const KNOWN_DC_FLAGS: &[&str] = &[
    "PDC",
    "GC",
    "DS",
    "LDAP",
    "KDC",
    "TIMESERV",
    "GTIMESERV",
    "GOOD_TIMESERV",
    "WRITABLE",
    "DNS_DC",
    "DNS_DOMAIN",
    "DNS_FOREST",
    "CLOSE_SITE",
    "FULL_SECRET",
    "WS",
    "NDNC",
    "SELECT_SECRET_DOMAIN_6",
    "DS_8",
    "DS_9",
    "DS_10",
    "KEYLIST",
];

fn is_flag_word(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_hex_token(t: &str) -> bool {
    t.strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The flag words of a `Flags:` line, told by shape (the label is translated): after the
/// label, only upper-case flag words and a hex value, with the hex value or a known flag
/// word present (so `Dom Name: CONTOSO` is not taken for flags).
fn flag_words(line: &str) -> Option<Vec<String>> {
    let value = line.split_once(':').map_or(line, |(_, v)| v);
    let tokens: Vec<&str> = value.split_whitespace().collect();
    if tokens.is_empty() || !tokens.iter().all(|t| is_flag_word(t) || is_hex_token(t)) {
        return None;
    }
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| is_flag_word(t))
        .map(|t| (*t).to_string())
        .collect();
    let shaped = tokens.iter().any(|t| is_hex_token(t))
        || words.iter().any(|w| KNOWN_DC_FLAGS.contains(&w.as_str()));
    (shaped && !words.is_empty()).then_some(words)
}

/// The token after the first `\\` in a line, up to white space (an address may be IPv6).
fn unc_token(line: &str) -> Option<String> {
    let start = line.find("\\\\")?;
    let tok: String = line
        .get(start + 2..)?
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    (!tok.is_empty()).then_some(tok)
}

/// Parses `nltest /dsgetdc:<domain> [/pdc] [/force]`. Read by position and shape, never
/// by the (translated) labels: the first `\\` line is the DC, the second its address; the
/// flags line is the one made of upper-case flag words (and usually a trailing `0x…`); a
/// `Status = N 0x…` with N ≠ 0 is the failure.
pub fn parse_dsgetdc(text: &str) -> DcLocator {
    let mut out = DcLocator::default();
    let mut unc_lines = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if let Some((_, st)) = find_status(line) {
            if st.code != status::SUCCESS && out.failure.is_none() {
                out.failure = Some(st);
            }
            continue;
        }
        if let Some(tok) = unc_token(line) {
            match unc_lines {
                0 => out.dc = find_unc_name(line),
                1 => out.address = Some(tok),
                _ => {}
            }
            unc_lines += 1;
            continue;
        }
        if let Some(words) = flag_words(line) {
            out.flags = words;
        }
    }
    out.is_pdc = out.flags.iter().any(|f| f == "PDC");
    out
}

/// `Win32_ComputerSystem.DomainRole` of a backup domain controller.
pub const ROLE_BACKUP_DC: u32 = 4;
/// `Win32_ComputerSystem.DomainRole` of the PDC emulator.
pub const ROLE_PRIMARY_DC: u32 = 5;

/// Everything one probe learned about a host.
///
/// Two kinds of channel status (DOMAIN.md, "Testing the channel"): the *stored* status of
/// the channel's last use (`Test-ComputerSecureChannel` and `nltest /sc_query`, both
/// Netlogon's TC_QUERY, read first) and the *live* test (`nltest /sc_verify`, which may
/// rediscover and rebind a DC). Diagnosis and repair verification rest on the live one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Probe {
    /// `Win32_ComputerSystem.Name` (the NetBIOS computer name).
    pub computer_name: String,
    /// `Win32_ComputerSystem.Domain` (the workgroup name when not joined).
    pub domain: String,
    /// `Win32_ComputerSystem.PartOfDomain`.
    pub part_of_domain: Option<bool>,
    /// `Win32_ComputerSystem.DomainRole`: 0/2 standalone, 1/3 member, 4 backup DC, 5 PDC
    /// emulator.
    pub domain_role: Option<u32>,
    /// `whoami` of the connecting account (`lab\alice`, `ws01\administrator`).
    pub user: String,
    /// SID of the built-in local Administrator (RID 500).
    pub admin_sid: Option<String>,
    /// The machine SID: the RID-500 SID without `-500`.
    pub machine_sid: Option<String>,
    /// Stored status: `Test-ComputerSecureChannel` `True`/`False`, `None` when it errored
    /// or did not run (non-members, DCs).
    pub tcsc: Option<bool>,
    /// Its error message, if any.
    pub tcsc_error: Option<String>,
    /// `$LASTEXITCODE` of `nltest /sc_query`.
    pub sc_query_exit: Option<i64>,
    /// Stored status: `nltest /sc_query:<domain>`, parsed.
    pub sc_query: NltestOutput,
    /// The raw `/sc_query` section.
    pub sc_query_text: String,
    /// `$LASTEXITCODE` of `nltest /sc_verify`.
    pub sc_verify_exit: Option<i64>,
    /// Live test: `nltest /sc_verify:<domain>`, parsed.
    pub sc_verify: NltestOutput,
    /// The raw `/sc_verify` section.
    pub sc_verify_text: String,
    /// The DC locator: `nltest /dsgetdc:<domain> /force`.
    pub dsgetdc: DcLocator,
    /// The raw `/dsgetdc` section.
    pub dsgetdc_text: String,
    /// The PDC from the DC locator: `nltest /dsgetdc:<domain> /pdc`.
    pub dsgetdc_pdc: DcLocator,
    /// The raw `/dsgetdc /pdc` section.
    pub dsgetdc_pdc_text: String,
    /// The member's recent NETLOGON 3210/5719 events, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NetlogonEvent>,
}

/// A NETLOGON event from the member's System log, read by provider and Id with
/// `Get-WinEvent -FilterHashtable` (so the query does not depend on the display language)
/// and printed by the probe as `ts.event=<Id>|<FILETIME UTC>|<insertion 1>|<insertion 2>`.
/// 3210: "could not authenticate with `\\DC`, a domain controller for domain D"; 5719: "not
/// able to set up a secure session with a DC in domain D due to" a status (`%%1311`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetlogonEvent {
    /// 3210 or 5719.
    pub id: u32,
    /// `TimeCreated` as a FILETIME (UTC).
    pub filetime: u64,
    /// The DC a 3210 names (without `\\`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    /// The domain the event names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The Win32 status a 5719 gives as its reason (`%%1311` → 1311).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
}

impl NetlogonEvent {
    /// Parses one `ts.event=` value; `None` when it is not a 3210/5719 line.
    pub fn parse(value: &str) -> Option<NetlogonEvent> {
        let mut f = value.trim().split('|');
        let id: u32 = f.next()?.trim().parse().ok()?;
        let filetime: u64 = f.next()?.trim().parse().ok()?;
        let a = f.next().map(str::trim).unwrap_or("");
        let b = f.next().map(str::trim).unwrap_or("");
        // Which insertion string is the DC is not verified for 3210: take the one that is a
        // UNC name (`\\dc`), else a dotted name, and the other as the domain.
        let unc = |t: &str| t.starts_with("\\\\");
        let name = |t: &str| t.trim_start_matches('\\').to_string();
        match id {
            3210 => {
                let (dc, domain) = if unc(b) && !unc(a) { (b, a) } else { (a, b) };
                Some(NetlogonEvent {
                    id,
                    filetime,
                    dc: Some(name(dc)).filter(|d| is_valid_name(d)),
                    domain: Some(domain.to_string()).filter(|d| is_valid_name(d)),
                    status: None,
                })
            }
            5719 => Some(NetlogonEvent {
                id,
                filetime,
                dc: None,
                domain: Some(a.to_string()).filter(|d| is_valid_name(d)),
                status: b.trim_start_matches("%%").parse().ok(),
            }),
            _ => None,
        }
    }

    /// One evidence line.
    pub fn evidence(&self) -> String {
        let when = filetime_utc(self.filetime);
        match self.id {
            3210 => format!(
                "NETLOGON 3210 at {when}: could not authenticate with {} (domain {})",
                self.dc.as_deref().unwrap_or("?"),
                self.domain.as_deref().unwrap_or("?")
            ),
            _ => format!(
                "NETLOGON 5719 at {when}: no secure session with a DC of {}{}",
                self.domain.as_deref().unwrap_or("?"),
                self.status
                    .map(|s| format!(" (status {s})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01 (Unix's).
const FILETIME_UNIX_SECS: i64 = 11_644_473_600;

/// A FILETIME (100 ns since 1601-01-01 UTC) as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn filetime_utc(filetime: u64) -> String {
    let secs = i64::try_from(filetime / 10_000_000).unwrap_or(i64::MAX);
    unix_utc(secs.saturating_sub(FILETIME_UNIX_SECS))
}

/// Seconds since 1970-01-01 UTC (negative before) as `YYYY-MM-DD HH:MM:SS UTC` (proleptic
/// Gregorian); the bare number for a time beyond the calendar's ±999,999 years.
pub fn unix_utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => {
            let ((y, m, d), (hh, mm, ss)) = (t.to_calendar_date(), t.to_hms());
            let m = u8::from(m);
            format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
        }
        Err(_) => unix.to_string(),
    }
}

/// The probe's output could not be read as a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProbeError {
    /// No `ts.` lines at all (PowerShell failed to start, the script was refused, …).
    #[error("the probe printed no results (exit code {exit_code}): {stderr}")]
    NoOutput {
        /// Exit code of powershell.exe.
        exit_code: i64,
        /// An excerpt of stderr.
        stderr: String,
    },
    /// A required line is missing.
    #[error("the probe output lacks ts.{0}")]
    Missing(String),
}

impl Probe {
    /// `DomainRole` 4 or 5: a domain controller, not a member (its channel tests mean
    /// nothing; the probe skips them).
    pub fn is_domain_controller(&self) -> bool {
        matches!(self.domain_role, Some(ROLE_BACKUP_DC | ROLE_PRIMARY_DC))
    }

    /// A domain member whose channel the probe tested (joined, not a DC).
    pub fn is_member(&self) -> bool {
        self.part_of_domain == Some(true) && !self.is_domain_controller()
    }

    /// The DNS domain, lower-case: the key of fleet-wide groupings (twins, PDC votes).
    pub fn domain_key(&self) -> String {
        self.domain.trim().to_ascii_lowercase()
    }

    /// The live status (`/sc_verify`: first non-zero of verification and connection
    /// status); `None` when the call failed or printed none.
    pub fn live_status(&self) -> Option<&NltestStatus> {
        self.sc_verify.channel_status()
    }

    /// The stored status of the channel's last use (`/sc_query`'s connection status).
    pub fn stored_status(&self) -> Option<&NltestStatus> {
        self.sc_query.channel_status()
    }

    /// Does the channel work *now*? Only the live test decides (`/sc_verify`); `None`
    /// when it gave no status (not elevated, Netlogon stopped, not a member). The stored
    /// status is the result of the channel's last use and may be stale either way.
    pub fn channel_ok(&self) -> Option<bool> {
        self.live_status().map(|s| s.code == status::SUCCESS)
    }

    /// The stored status as a boolean: `/sc_query`, else `Test-ComputerSecureChannel`.
    pub fn stored_ok(&self) -> Option<bool> {
        self.stored_status()
            .map(|s| s.code == status::SUCCESS)
            .or(self.tcsc)
    }

    /// Did we connect with a local account (`whoami` starts with the computer name)?
    pub fn user_is_local(&self) -> bool {
        match self.user.split_once('\\') {
            Some((dom, _)) => dom.eq_ignore_ascii_case(&self.computer_name),
            None => false,
        }
    }

    /// The DC the member's channel is bound to: the live test's, else the stored one's.
    pub fn trusted_dc(&self) -> Option<&str> {
        self.sc_verify
            .trusted_dc
            .as_deref()
            .or(self.sc_query.trusted_dc.as_deref())
    }

    /// The PDC emulator the DC locator named (`/dsgetdc /pdc`, else a `/dsgetdc` answer
    /// carrying the `PDC` flag).
    pub fn pdc(&self) -> Option<&str> {
        [&self.dsgetdc_pdc, &self.dsgetdc]
            .into_iter()
            .find(|l| l.is_pdc && l.found())
            .and_then(|l| l.dc.as_deref())
    }

    /// Evidence lines describing the channel checks, each saying whether it is the stored
    /// status (last use) or the live test.
    pub fn evidence(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.is_member() {
            return out;
        }
        const STORED: &str = "stored status (last use)";
        match (self.tcsc, &self.tcsc_error) {
            (Some(b), _) => out.push(format!(
                "{STORED}: Test-ComputerSecureChannel {}",
                if b { "True" } else { "False" }
            )),
            (None, Some(e)) => out.push(format!(
                "{STORED}: Test-ComputerSecureChannel error: {}",
                excerpt(e, 200)
            )),
            (None, None) => out.push(format!("{STORED}: Test-ComputerSecureChannel: no result")),
        }
        out.extend(
            self.sc_query
                .evidence(&format!("{STORED}: nltest /sc_query")),
        );
        out.extend(self.sc_verify.evidence("live test: nltest /sc_verify"));
        out.push(self.dsgetdc.evidence("DC locator: nltest /dsgetdc /force"));
        out.push(
            self.dsgetdc_pdc
                .evidence("PDC locator: nltest /dsgetdc /pdc"),
        );
        out.extend(self.events.iter().take(3).map(NetlogonEvent::evidence));
        if self.events.len() > 3 {
            out.push(format!(
                "… and {} older NETLOGON events",
                self.events.len() - 3
            ));
        }
        out
    }
}

/// Parses the output of [`crate::scripts::PROBE`].
pub fn parse_probe(output: &CommandOutput) -> Result<Probe, ProbeError> {
    #[derive(Clone, Copy)]
    enum Section {
        None,
        ScQuery,
        ScVerify,
        DsGetDc,
        DsGetDcPdc,
    }
    let mut p = Probe::default();
    let mut section = Section::None;
    let mut sc_query = Vec::new();
    let mut sc_verify = Vec::new();
    let mut dsgetdc = Vec::new();
    let mut dsgetdc_pdc = Vec::new();
    let mut keys = 0usize;
    let mut have_name = false;
    let mut last_key_error = false;
    for line in output.stdout.lines() {
        let trimmed = line.trim_end();
        let next = match trimmed {
            "--- sc_query" => Some(Section::ScQuery),
            "--- sc_verify" => Some(Section::ScVerify),
            "--- dsgetdc" => Some(Section::DsGetDc),
            "--- dsgetdc_pdc" => Some(Section::DsGetDcPdc),
            "--- end" => Some(Section::None),
            _ => None,
        };
        if let Some(s) = next {
            section = s;
            last_key_error = false;
            continue;
        }
        match section {
            Section::ScQuery => sc_query.push(trimmed),
            Section::ScVerify => sc_verify.push(trimmed),
            Section::DsGetDc => dsgetdc.push(trimmed),
            Section::DsGetDcPdc => dsgetdc_pdc.push(trimmed),
            Section::None => {
                let Some((key, value)) = trimmed
                    .strip_prefix("ts.")
                    .and_then(|kv| kv.split_once('='))
                else {
                    // A multi-line error message continues the previous value.
                    if last_key_error && !trimmed.trim().is_empty() {
                        let e = p.tcsc_error.get_or_insert_with(String::new);
                        if !e.is_empty() {
                            e.push(' ');
                        }
                        e.push_str(trimmed.trim());
                    }
                    continue;
                };
                keys += 1;
                last_key_error = key == "tcsc_error";
                let v = value.trim();
                match key {
                    "name" => {
                        have_name = true;
                        p.computer_name = v.to_string();
                    }
                    "domain" => p.domain = v.to_string(),
                    "part_of_domain" => p.part_of_domain = parse_bool(v),
                    "domain_role" => p.domain_role = v.parse().ok(),
                    "user" => p.user = v.to_string(),
                    "admin_sid" => {
                        p.admin_sid = non_empty(v);
                        p.machine_sid = p.admin_sid.as_deref().and_then(machine_sid);
                    }
                    "tcsc" => p.tcsc = parse_bool(v),
                    "tcsc_error" => p.tcsc_error = non_empty(v),
                    "sc_query_exit" => p.sc_query_exit = v.parse().ok(),
                    "sc_verify_exit" => p.sc_verify_exit = v.parse().ok(),
                    "event" => {
                        if let Some(e) = NetlogonEvent::parse(v) {
                            if p.events.len() < 64 {
                                p.events.push(e);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if keys == 0 {
        return Err(ProbeError::NoOutput {
            exit_code: output.exit_code,
            stderr: excerpt(&output.stderr, 300),
        });
    }
    if !have_name || p.computer_name.is_empty() {
        return Err(ProbeError::Missing("name".to_string()));
    }
    p.sc_query_text = sc_query.join("\n");
    p.sc_verify_text = sc_verify.join("\n");
    p.dsgetdc_text = dsgetdc.join("\n");
    p.dsgetdc_pdc_text = dsgetdc_pdc.join("\n");
    p.sc_query = parse_nltest(&p.sc_query_text);
    p.sc_verify = parse_nltest(&p.sc_verify_text);
    p.dsgetdc = parse_dsgetdc(&p.dsgetdc_text);
    p.dsgetdc_pdc = parse_dsgetdc(&p.dsgetdc_pdc_text);
    Ok(p)
}

/// The probe could not be run or read; the CLI records it on the host's observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProbeRunError {
    /// The script could not be run: the connection's error (its
    /// [`crate::RemoteErrorKind`] says unreachable / 401 / Access Denied / timeout, see
    /// [`crate::Access::from_remote_error`]).
    #[error("the probe could not run: {0}")]
    Remote(#[from] RemoteError),
    /// It ran, but its output is not a probe.
    #[error("probe output not understood: {0}")]
    Output(#[from] ProbeError),
}

/// Probes one host: runs [`crate::scripts::PROBE`] (one PowerShell start; it reads the
/// stored status before the live test, and skips the channel on DCs and non-members) and
/// parses it. This is the whole probe: no further per-DC commands (`Test-ComputerSecureChannel
/// -Server` tests no DC, DOMAIN.md). Note that `/sc_verify` may rebind the channel, as
/// Windows does; it never changes a password.
pub async fn probe_host<R: Remote>(remote: &mut R) -> Result<Probe, ProbeRunError> {
    let out = remote.run_powershell(crate::scripts::PROBE, None).await?;
    Ok(parse_probe(&out)?)
}

/// The machine SID from the RID-500 account's SID: `S-1-5-21-a-b-c-500` → `S-1-5-21-a-b-c`.
pub fn machine_sid(admin_sid: &str) -> Option<String> {
    let base = admin_sid.trim().strip_suffix("-500")?;
    let ok = base.starts_with("S-1-5-21-")
        && base
            .split('-')
            .skip(1)
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    ok.then(|| base.to_string())
}
