//! Parsing what hosts print: the probe script's `ts.key=value` lines and sections, and the
//! output of `nltest /sc_verify`, `/sc_query`, `/sc_reset`, `/query`, `/dclist`, and the
//! per-DC `Test-ComputerSecureChannel -Server` script.
//!
//! nltest still ends with "The command completed successfully" when the trust is broken,
//! and its labels are translated on non-English Windows, so these parsers read the numeric
//! statuses (`Status = 1787 0x6fb ERROR_NO_TRUST_SAM_ACCOUNT`, `= N 0xHEX` is the part they
//! key on), the `\\dc` names and the line order, never the English words alone. Input may
//! use CRLF or LF line endings and may carry the trailing spaces nltest prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::remote::CommandOutput;
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
            out.push(format!(
                "{command}: call failed, Status = {} ({})",
                f.status, f.line
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

/// The secure channel tested against one DC (`Test-ComputerSecureChannel -Server`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcTest {
    /// The DC tested.
    pub dc: String,
    /// `True`/`False`; `None` when the cmdlet gave no answer (an error instead).
    pub ok: Option<bool>,
    /// The cmdlet's error, or why the test could not run.
    pub error: Option<String>,
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

/// Parses the output of [`crate::scripts::test_dc`] for `dc`.
pub fn parse_dc_test(dc: &str, output: &CommandOutput) -> DcTest {
    let mut ok = None;
    let mut error = None;
    let mut seen = false;
    for line in output.stdout.lines() {
        if let Some(v) = line.strip_prefix("ts.tcsc=") {
            seen = true;
            ok = parse_bool(v);
        } else if let Some(v) = line.strip_prefix("ts.tcsc_error=") {
            seen = true;
            error = non_empty(v);
        }
    }
    if !seen {
        if let Some(b) = parse_tcsc_output(&output.stdout) {
            return DcTest {
                dc: dc.to_string(),
                ok: Some(b),
                error: None,
            };
        }
        let detail = if output.stderr.trim().is_empty() {
            format!("no output (exit code {})", output.exit_code)
        } else {
            excerpt(&output.stderr, 300)
        };
        error = Some(detail);
    }
    DcTest {
        dc: dc.to_string(),
        ok,
        error,
    }
}

/// Everything one probe learned about a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// `Win32_ComputerSystem.Name` (the NetBIOS computer name).
    pub computer_name: String,
    /// `Win32_ComputerSystem.Domain` (the workgroup name when not joined).
    pub domain: String,
    /// `Win32_ComputerSystem.PartOfDomain`.
    pub part_of_domain: Option<bool>,
    /// `whoami` of the connecting account (`lab\alice`, `ws01\administrator`).
    pub user: String,
    /// SID of the built-in local Administrator (RID 500).
    pub admin_sid: Option<String>,
    /// The machine SID: the RID-500 SID without `-500`.
    pub machine_sid: Option<String>,
    /// `Test-ComputerSecureChannel`: `True`/`False`, `None` when it errored.
    pub tcsc: Option<bool>,
    /// Its error message, if any.
    pub tcsc_error: Option<String>,
    /// `$LASTEXITCODE` of `nltest /sc_verify`.
    pub nltest_exit: Option<i64>,
    /// `nltest /sc_verify:<domain>`, parsed.
    pub sc_verify: NltestOutput,
    /// `nltest /dclist:<domain>`, parsed.
    pub dclist: DcList,
    /// The raw `/sc_verify` section (for evidence when nothing parses).
    pub sc_verify_text: String,
    /// The raw `/dclist` section.
    pub dclist_text: String,
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
    /// Is the channel good? nltest's numeric status decides; `Test-ComputerSecureChannel`
    /// is the fallback when nltest could not run (not elevated, Netlogon stopped) or
    /// printed no status. `None`: neither could tell.
    pub fn channel_ok(&self) -> Option<bool> {
        match self.sc_verify.channel_status() {
            Some(s) => Some(s.code == status::SUCCESS),
            None => self.tcsc,
        }
    }

    /// Did we connect with a local account (`whoami` starts with the computer name)?
    pub fn user_is_local(&self) -> bool {
        match self.user.split_once('\\') {
            Some((dom, _)) => dom.eq_ignore_ascii_case(&self.computer_name),
            None => false,
        }
    }

    /// The PDC emulator from `/dclist`.
    pub fn pdc(&self) -> Option<&str> {
        self.dclist.pdc().map(|d| d.name.as_str())
    }

    /// The DC names from `/dclist`.
    pub fn dc_names(&self) -> Vec<String> {
        self.dclist.dcs.iter().map(|d| d.name.clone()).collect()
    }

    /// Evidence lines describing the channel checks.
    pub fn evidence(&self) -> Vec<String> {
        let mut out = Vec::new();
        match (self.tcsc, &self.tcsc_error) {
            (Some(b), _) => out.push(format!(
                "Test-ComputerSecureChannel: {}",
                if b { "True" } else { "False" }
            )),
            (None, Some(e)) => out.push(format!(
                "Test-ComputerSecureChannel error: {}",
                excerpt(e, 200)
            )),
            (None, None) => out.push("Test-ComputerSecureChannel: no result".to_string()),
        }
        out.extend(self.sc_verify.evidence("nltest /sc_verify"));
        out
    }
}

/// Parses the output of [`crate::scripts::PROBE`].
pub fn parse_probe(output: &CommandOutput) -> Result<Probe, ProbeError> {
    enum Section {
        None,
        Nltest,
        DcList,
    }
    let mut p = Probe::default();
    let mut section = Section::None;
    let mut nl = Vec::new();
    let mut dcs = Vec::new();
    let mut keys = 0usize;
    let mut have_name = false;
    let mut last_key_error = false;
    for line in output.stdout.lines() {
        let trimmed = line.trim_end();
        match trimmed {
            "--- nltest" => {
                section = Section::Nltest;
                continue;
            }
            "--- dclist" => {
                section = Section::DcList;
                continue;
            }
            "--- end" => {
                section = Section::None;
                continue;
            }
            _ => {}
        }
        match section {
            Section::Nltest => nl.push(trimmed),
            Section::DcList => dcs.push(trimmed),
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
                    "user" => p.user = v.to_string(),
                    "admin_sid" => {
                        p.admin_sid = non_empty(v);
                        p.machine_sid = p.admin_sid.as_deref().and_then(machine_sid);
                    }
                    "tcsc" => p.tcsc = parse_bool(v),
                    "tcsc_error" => p.tcsc_error = non_empty(v),
                    "nltest_exit" => p.nltest_exit = v.parse().ok(),
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
    p.sc_verify_text = nl.join("\n");
    p.dclist_text = dcs.join("\n");
    p.sc_verify = parse_nltest(&p.sc_verify_text);
    p.dclist = parse_dclist(&p.dclist_text);
    Ok(p)
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
