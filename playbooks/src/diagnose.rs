//! Diagnosis: from what the sweep observed of every host to one named [`Diagnosis`] per
//! host, with the evidence that led there. Pure; it sees the whole fleet at once, which is
//! how it finds what one machine cannot show: clones (hosts sharing a machine SID or a
//! computer name), and a domain account refused on one host while the same account works
//! on others (a broken trust even where no probe could run).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::probe::{excerpt, status, DcTest, Probe};

/// How the CLI got into a host (the connection the probe ran over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Access {
    /// A credential got in.
    Connected {
        /// The account that connected.
        user: String,
        /// It is a local account of the host (not a domain account).
        local: bool,
    },
    /// No answer from the host.
    Unreachable {
        /// Why (connection refused, DNS, …).
        message: String,
    },
    /// Every credential tried was refused (HTTP 401); `user` is the last one tried.
    Unauthorized {
        /// The account.
        user: String,
    },
    /// Authenticated but WinRM answered Access Denied.
    AccessDenied {
        /// The account.
        user: String,
    },
    /// The host did not answer in time.
    Timeout,
}

/// The CLI's separate attempt to log on with the domain account (NTLM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainLogon {
    /// The domain account logged on: the host's channel works with some DC.
    Accepted,
    /// Refused with 401: with the trust broken, domain accounts cannot log on.
    Refused,
    /// Not attempted.
    #[default]
    NotTried,
}

/// Everything the sweep observed of one host: the input of [`diagnose_fleet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostObservation {
    /// The inventory name.
    pub host: String,
    /// How we got in (or did not).
    pub access: Access,
    /// The domain-account logon attempt.
    pub domain_logon: DomainLogon,
    /// The probe, when it ran and parsed.
    pub probe: Option<Probe>,
    /// Per-DC tests (run when [`needs_dc_tests`] says so, and no DC-side evidence is read).
    pub dc_tests: Vec<DcTest>,
    /// The host's computer account as each DC holds it, read over LDAP (empty when the
    /// sweep has no DC access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dc_accounts: Vec<DcAccount>,
    /// What went wrong getting the probe, if anything.
    pub error: Option<String>,
}

impl HostObservation {
    /// An observation of a host that answered, with its probe.
    pub fn connected(
        host: impl Into<String>,
        user: impl Into<String>,
        local: bool,
        probe: Probe,
    ) -> Self {
        HostObservation {
            host: host.into(),
            access: Access::Connected {
                user: user.into(),
                local,
            },
            domain_logon: DomainLogon::NotTried,
            probe: Some(probe),
            dc_tests: Vec::new(),
            dc_accounts: Vec::new(),
            error: None,
        }
    }
}

/// One DC's copy of a host's computer account, read over LDAP: replication lag shows as
/// DCs disagreeing on `pwdLastSet` (DOMAIN.md). Reading it changes nothing anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcAccount {
    /// The DC's DNS name (its rootDSE `dnsHostName`), else the URL it was read from.
    pub dc: String,
    /// What the DC holds.
    pub state: DcAccountState,
}

impl fmt::Display for DcAccount {
    /// `computer account on dc1.lab.test: pwdLastSet 2025-11-01T00:00:00Z (134064288000000000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "computer account on {}: ", self.dc)?;
        match &self.state {
            DcAccountState::Present { pwd_last_set, pwd_last_set_utc, disabled } => {
                write!(f, "pwdLastSet {pwd_last_set_utc} ({pwd_last_set})")?;
                if *disabled {
                    write!(f, ", disabled")?;
                }
                Ok(())
            }
            DcAccountState::Missing => write!(f, "none"),
            DcAccountState::Unknown => write!(f, "could not be read"),
        }
    }
}

/// What one DC holds of a computer account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DcAccountState {
    /// The account, with its `pwdLastSet` (FILETIME) and whether it is disabled.
    Present {
        /// `pwdLastSet` (FILETIME), what the DCs are compared on.
        pwd_last_set: u64,
        /// The same for people (`2025-11-01T00:00:00Z`).
        pwd_last_set_utc: String,
        /// ACCOUNTDISABLE is set.
        disabled: bool,
    },
    /// The DC holds no such computer account (deleted, or not replicated yet).
    Missing,
    /// The DC could not be read.
    Unknown,
}

/// Why a host is in the state it is: one name per cause the tool knows how to treat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnosis {
    /// The channel verifies.
    Healthy,
    /// A DC answered, the account exists, the machine password is rejected (status 5) on
    /// every DC tested: snapshot/backup restore, rollback, or an account reset on the DC.
    StalePassword,
    /// Shares a machine SID or computer name with other inventory hosts. Rebuild; never
    /// reset (that breaks the twin).
    Clone {
        /// The other inventory hosts.
        twins: Vec<String>,
    },
    /// Works against one DC and fails against another.
    ReplicationLag {
        /// A DC that accepts the machine password.
        good_dc: String,
        /// A DC that rejects it.
        bad_dc: String,
    },
    /// 1787 `ERROR_NO_TRUST_SAM_ACCOUNT` / 1786 `ERROR_NO_TRUST_LSA_SECRET`: the computer
    /// account (or the local trust secret) is missing or disabled.
    AccountMissing,
    /// 1311 `ERROR_NO_LOGON_SERVERS` (or 1355): the host reaches no DC.
    NoDcReachable,
    /// Broken, but the cause is not pinned down.
    TrustBroken {
        /// What is known.
        detail: String,
    },
    /// The domain account is refused here but accepted on other hosts (a broken trust),
    /// and no credential we have gets in.
    BrokenNoAccess {
        /// The last account tried.
        user: String,
    },
    /// A local administrator refused with Access Denied: a UAC filtered token (remote
    /// restrictions), not a broken trust. Use the RID-500 Administrator (LAPS).
    FilteredAdmin {
        /// The account.
        user: String,
    },
    /// The credential was refused or is not allowed to use WinRM (or cannot query
    /// Netlogon without elevation).
    AccessDenied {
        /// The account.
        user: String,
    },
    /// No answer.
    Unreachable,
    /// In a workgroup.
    NotDomainJoined,
    /// Not enough to say.
    Unknown {
        /// The raw evidence in short.
        detail: String,
    },
}

impl Diagnosis {
    /// The snake_case name used in JSON (`stale_password`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Diagnosis::Healthy => "healthy",
            Diagnosis::StalePassword => "stale_password",
            Diagnosis::Clone { .. } => "clone",
            Diagnosis::ReplicationLag { .. } => "replication_lag",
            Diagnosis::AccountMissing => "account_missing",
            Diagnosis::NoDcReachable => "no_dc_reachable",
            Diagnosis::TrustBroken { .. } => "trust_broken",
            Diagnosis::BrokenNoAccess { .. } => "broken_no_access",
            Diagnosis::FilteredAdmin { .. } => "filtered_admin",
            Diagnosis::AccessDenied { .. } => "access_denied",
            Diagnosis::Unreachable => "unreachable",
            Diagnosis::NotDomainJoined => "not_domain_joined",
            Diagnosis::Unknown { .. } => "unknown",
        }
    }

    /// The `check` summary bucket.
    pub fn state(&self) -> HostState {
        match self {
            Diagnosis::Healthy => HostState::Healthy,
            Diagnosis::StalePassword
            | Diagnosis::Clone { .. }
            | Diagnosis::ReplicationLag { .. }
            | Diagnosis::AccountMissing
            | Diagnosis::NoDcReachable
            | Diagnosis::TrustBroken { .. }
            | Diagnosis::BrokenNoAccess { .. }
            | Diagnosis::NotDomainJoined => HostState::Broken,
            Diagnosis::Unreachable => HostState::Unreachable,
            Diagnosis::FilteredAdmin { .. } | Diagnosis::AccessDenied { .. } => {
                HostState::AccessProblem
            }
            Diagnosis::Unknown { .. } => HostState::Unknown,
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::Healthy => f.write_str("healthy"),
            Diagnosis::StalePassword => f.write_str(
                "stale machine password (snapshot restore, rollback or account reset on the DC)",
            ),
            Diagnosis::Clone { twins } => {
                write!(f, "clone of {} (rebuild required)", twins.join(", "))
            }
            Diagnosis::ReplicationLag { good_dc, bad_dc } => {
                write!(
                    f,
                    "replication lag (works against {good_dc}, fails against {bad_dc})"
                )
            }
            Diagnosis::AccountMissing => {
                f.write_str("computer account missing or disabled on the DC")
            }
            Diagnosis::NoDcReachable => f.write_str("no domain controller reachable from the host"),
            Diagnosis::TrustBroken { detail } => write!(f, "trust broken, cause unknown: {detail}"),
            Diagnosis::BrokenNoAccess { user } => {
                write!(f, "trust broken and no credential gets in (domain account refused; {user} refused)")
            }
            Diagnosis::FilteredAdmin { user } => {
                write!(
                    f,
                    "filtered admin token for {user} (UAC remote restrictions), not a broken trust"
                )
            }
            Diagnosis::AccessDenied { user } => write!(f, "access denied for {user}"),
            Diagnosis::Unreachable => f.write_str("unreachable"),
            Diagnosis::NotDomainJoined => f.write_str("not domain-joined"),
            Diagnosis::Unknown { detail } => write!(f, "unknown: {detail}"),
        }
    }
}

/// One host's diagnosis with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The inventory name.
    pub host: String,
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// The statuses and outputs that led there, most basic first.
    pub evidence: Vec<String>,
}

/// The buckets of `trustsweep check`'s summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Channel verified.
    Healthy,
    /// Trust broken (or the host cannot use the domain).
    Broken,
    /// No answer.
    Unreachable,
    /// We could not get in with the rights needed.
    AccessProblem,
    /// Could not tell.
    Unknown,
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostState::Healthy => "healthy",
            HostState::Broken => "broken",
            HostState::Unreachable => "unreachable",
            HostState::AccessProblem => "access problem",
            HostState::Unknown => "unknown",
        })
    }
}

/// Counts per [`HostState`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Healthy hosts.
    pub healthy: usize,
    /// Broken hosts.
    pub broken: usize,
    /// Unreachable hosts.
    pub unreachable: usize,
    /// Hosts with an access problem.
    pub access_problem: usize,
    /// Hosts in an unknown state.
    pub unknown: usize,
}

impl Summary {
    /// All hosts counted.
    pub fn total(&self) -> usize {
        self.healthy + self.broken + self.unreachable + self.access_problem + self.unknown
    }
}

/// Counts findings per state.
pub fn summarize(findings: &[Finding]) -> Summary {
    let mut s = Summary::default();
    for f in findings {
        match f.diagnosis.state() {
            HostState::Healthy => s.healthy += 1,
            HostState::Broken => s.broken += 1,
            HostState::Unreachable => s.unreachable += 1,
            HostState::AccessProblem => s.access_problem += 1,
            HostState::Unknown => s.unknown += 1,
        }
    }
    s
}

/// Should the CLI run [`crate::scripts::test_dc`] against every listed DC? Yes when the
/// channel is not verified good and `/dclist` named more than one DC: that is how
/// replication lag (good on one DC, bad on another) is told from a stale password.
pub fn needs_dc_tests(probe: &Probe) -> bool {
    probe.part_of_domain != Some(false)
        && probe.channel_ok() != Some(true)
        && probe.dclist.dcs.len() > 1
}

/// The DCs to test ([`needs_dc_tests`]), in the order to test them: as listed, the PDC
/// last. `Test-ComputerSecureChannel -Server` is believed to rediscover the channel to the
/// DC it tests (`NETLOGON_CONTROL_REDISCOVER`), so the member ends bound to the PDC, the
/// DC repairs are pinned to, rather than to whichever DC happened to be listed last.
pub fn dc_test_targets(probe: &Probe) -> Vec<String> {
    if !needs_dc_tests(probe) {
        return Vec::new();
    }
    let (pdc, others): (Vec<_>, Vec<_>) = probe.dclist.dcs.iter().partition(|d| d.pdc);
    others
        .into_iter()
        .chain(pdc)
        .map(|d| d.name.clone())
        .collect()
}

/// The PDC emulator most probes name in their `/dclist` (for [`crate::PlanOptions::pdc`]).
/// `dc1` and `dc1.lab.test` count as one DC (local accounts get NetBIOS names from
/// nltest's fallback listing); the longest spelling (the FQDN) is returned.
pub fn fleet_pdc(observations: &[HostObservation]) -> Option<String> {
    let mut votes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for p in observations.iter().filter_map(|o| o.probe.as_ref()) {
        if let Some(pdc) = p.pdc() {
            let short = pdc.split('.').next().unwrap_or(pdc).to_ascii_lowercase();
            let e = votes.entry(short).or_insert((0, pdc.to_string()));
            e.0 += 1;
            if pdc.len() > e.1.len() {
                e.1 = pdc.to_string();
            }
        }
    }
    let mut best: Option<(usize, String)> = None;
    for (_, (n, name)) in votes {
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, name));
        }
    }
    best.map(|(_, name)| name)
}

/// Diagnoses every host, in input order, using the whole fleet (clones, domain-logon
/// evidence from other hosts).
pub fn diagnose_fleet(observations: &[HostObservation]) -> Vec<Finding> {
    let twins = find_twins(observations);
    let accepted = observations
        .iter()
        .filter(|o| o.domain_logon == DomainLogon::Accepted)
        .count();
    observations
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let empty = Vec::new();
            let t = twins.get(&i).unwrap_or(&empty);
            let (diagnosis, evidence) = classify(o, t, accepted);
            Finding {
                host: o.host.clone(),
                diagnosis,
                evidence,
            }
        })
        .collect()
}

/// Diagnoses one host alone (no fleet context: no clone detection). Used to verify a
/// repair.
pub fn diagnose_host(observation: &HostObservation) -> Finding {
    let (diagnosis, evidence) = classify(observation, &[], 0);
    Finding {
        host: observation.host.clone(),
        diagnosis,
        evidence,
    }
}

/// A twin relation: the other host and what is shared.
#[derive(Debug, Clone)]
struct Twin {
    host: String,
    what: String,
}

/// Hosts sharing a machine SID or a computer name, per index.
fn find_twins(observations: &[HostObservation]) -> BTreeMap<usize, Vec<Twin>> {
    let mut by_sid: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, o) in observations.iter().enumerate() {
        let Some(p) = &o.probe else { continue };
        if let Some(sid) = &p.machine_sid {
            by_sid.entry(sid.clone()).or_default().push(i);
        }
        if !p.computer_name.is_empty() {
            by_name
                .entry(p.computer_name.to_ascii_uppercase())
                .or_default()
                .push(i);
        }
    }
    let mut out: BTreeMap<usize, Vec<Twin>> = BTreeMap::new();
    let groups = by_sid
        .iter()
        .map(|(k, v)| (format!("machine SID {k}"), v))
        .chain(
            by_name
                .iter()
                .map(|(k, v)| (format!("computer name {k}"), v)),
        );
    for (what, members) in groups {
        for &i in members {
            let me = observations.get(i).map(|o| o.host.as_str()).unwrap_or("");
            for &j in members {
                let Some(other) = observations.get(j) else {
                    continue;
                };
                // The same inventory name twice is the same host, not a clone.
                if j != i && !other.host.eq_ignore_ascii_case(me) {
                    out.entry(i).or_default().push(Twin {
                        host: other.host.clone(),
                        what: what.clone(),
                    });
                }
            }
        }
    }
    out
}

fn access_evidence(a: &Access) -> String {
    match a {
        Access::Connected { user, local } => {
            format!(
                "WinRM: connected as {user} ({} account)",
                if *local { "local" } else { "domain" }
            )
        }
        Access::Unreachable { message } => format!("WinRM: unreachable: {}", excerpt(message, 200)),
        Access::Unauthorized { user } => format!("WinRM: {user} refused (HTTP 401)"),
        Access::AccessDenied { user } => {
            format!("WinRM: {user} authenticated but answered Access Denied")
        }
        Access::Timeout => "WinRM: timed out".to_string(),
    }
}

/// Does `user` name a local account of `host` (`.\x`, `HOST\x`, or a bare name)?
pub fn looks_local(user: &str, host: &str) -> bool {
    if user.contains('@') {
        return false;
    }
    let short = host.split('.').next().unwrap_or(host);
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    match user.split_once('\\') {
        Some((d, _)) => {
            d == "."
                || d.eq_ignore_ascii_case("localhost")
                || (!is_ip && d.eq_ignore_ascii_case(short))
        }
        None => true,
    }
}

fn classify(
    o: &HostObservation,
    twins: &[Twin],
    domain_accepted: usize,
) -> (Diagnosis, Vec<String>) {
    let mut ev = vec![access_evidence(&o.access)];
    match o.domain_logon {
        DomainLogon::Accepted => ev.push("domain logon: accepted".to_string()),
        DomainLogon::Refused => ev.push("domain logon: refused (HTTP 401)".to_string()),
        DomainLogon::NotTried => {}
    }
    if let Some(e) = &o.error {
        ev.push(format!("error: {}", excerpt(e, 300)));
    }
    for a in &o.dc_accounts {
        ev.push(a.to_string());
    }
    let refused = o.domain_logon == DomainLogon::Refused;
    // The same domain account logs on elsewhere, so its refusal here is this host's trust.
    let refused_but_works_elsewhere = refused && domain_accepted > 0;
    let d = match &o.access {
        Access::Unreachable { .. } | Access::Timeout => Diagnosis::Unreachable,
        Access::Unauthorized { user } => {
            if refused_but_works_elsewhere {
                ev.push(format!(
                    "the domain account logs on to {domain_accepted} other host(s) but is refused here: broken trust"
                ));
                Diagnosis::BrokenNoAccess { user: user.clone() }
            } else {
                Diagnosis::AccessDenied { user: user.clone() }
            }
        }
        Access::AccessDenied { user } => {
            let local = looks_local(user, &o.host);
            if local {
                ev.push(
                    "a local administrator other than RID 500 gets a filtered token over the network (UAC remote restrictions, KB951016)"
                        .to_string(),
                );
            }
            if refused_but_works_elsewhere {
                ev.push(format!(
                    "the domain account logs on to {domain_accepted} other host(s) but is refused here: broken trust"
                ));
                Diagnosis::BrokenNoAccess { user: user.clone() }
            } else if local {
                Diagnosis::FilteredAdmin { user: user.clone() }
            } else {
                Diagnosis::AccessDenied { user: user.clone() }
            }
        }
        Access::Connected { user, local } => {
            match &o.probe {
                Some(p) => from_probe(p, &o.dc_tests, &o.dc_accounts, twins, refused && *local, &mut ev),
                None if refused && *local => {
                    ev.push("domain logon refused while the local administrator was accepted: broken trust".to_string());
                    Diagnosis::TrustBroken {
                    detail: "domain logon refused, local administrator accepted; the probe did not complete".to_string(),
                }
                }
                None => Diagnosis::Unknown {
                    detail: o
                        .error
                        .as_deref()
                        .map(|e| excerpt(e, 200))
                        .unwrap_or_else(|| format!("no probe result ({user})")),
                },
            }
        }
    };
    (d, ev)
}

fn from_probe(
    p: &Probe,
    dc_tests: &[DcTest],
    dc_accounts: &[DcAccount],
    twins: &[Twin],
    logon_says_broken: bool,
    ev: &mut Vec<String>,
) -> Diagnosis {
    let sid = p.machine_sid.as_deref().unwrap_or("unknown");
    ev.push(format!(
        "computer {} in {} (part of domain: {}), machine SID {sid}",
        p.computer_name,
        p.domain,
        p.part_of_domain
            .map_or("unknown", |b| if b { "yes" } else { "no" })
    ));
    ev.extend(p.evidence());
    for t in dc_tests {
        let r = match (t.ok, &t.error) {
            (Some(true), _) => "True".to_string(),
            (Some(false), _) => "False".to_string(),
            (None, Some(e)) => format!("error: {}", excerpt(e, 200)),
            (None, None) => "no result".to_string(),
        };
        ev.push(format!("Test-ComputerSecureChannel -Server {}: {r}", t.dc));
    }
    let lag = dc_lag(dc_accounts);
    if let Some((newest, older)) = &lag {
        ev.push(format!(
            "the DCs disagree on the account: {newest} holds a newer one than {} (replication has not caught up)",
            older.join(", ")
        ));
    }
    if !twins.is_empty() {
        let mut names: Vec<String> = Vec::new();
        for t in twins {
            ev.push(format!("{} shared with {}", t.what, t.host));
            if !names.contains(&t.host) {
                names.push(t.host.clone());
            }
        }
        return Diagnosis::Clone { twins: names };
    }
    if p.part_of_domain == Some(false) {
        return Diagnosis::NotDomainJoined;
    }
    if logon_says_broken {
        ev.push(
            "domain logon refused while the local administrator was accepted: broken trust"
                .to_string(),
        );
    }
    match p.channel_ok() {
        Some(true) => {
            if logon_says_broken {
                ev.push("the channel verifies although the domain logon was refused: check the domain credential".to_string());
            }
            Diagnosis::Healthy
        }
        None => {
            if let Some(f) = &p.sc_verify.failure {
                match f.status.code {
                    status::ACCESS_DENIED => {
                        ev.push(
                            "nltest could not query Netlogon: the session is not elevated"
                                .to_string(),
                        );
                        return Diagnosis::AccessDenied {
                            user: p.user.clone(),
                        };
                    }
                    status::RPC_S_SERVER_UNAVAILABLE => {
                        ev.push("Netlogon is not answering (service stopped?)".to_string());
                        return if logon_says_broken {
                            Diagnosis::TrustBroken {
                                detail: format!("Netlogon not answering ({})", f.status),
                            }
                        } else {
                            Diagnosis::Unknown {
                                detail: format!("Netlogon not answering ({})", f.status),
                            }
                        };
                    }
                    status::NO_SUCH_DOMAIN | status::NO_LOGON_SERVERS => {
                        return Diagnosis::NoDcReachable
                    }
                    _ => {}
                }
            }
            if logon_says_broken {
                Diagnosis::TrustBroken {
                    detail: "no channel status; domain logon refused".to_string(),
                }
            } else {
                Diagnosis::Unknown {
                    detail: format!(
                        "neither nltest nor Test-ComputerSecureChannel gave a result; nltest said: {}",
                        excerpt(&p.sc_verify_text, 200)
                    ),
                }
            }
        }
        Some(false) => broken(p, dc_tests, lag, ev),
    }
}

/// From the DCs' copies of an account: the DC holding the newest one and the DCs behind
/// it (an older `pwdLastSet`, or no account where another DC has one), when they disagree.
/// DCs that could not be read take no part.
fn dc_lag(accounts: &[DcAccount]) -> Option<(String, Vec<String>)> {
    let newest = accounts
        .iter()
        .filter_map(|a| match &a.state {
            DcAccountState::Present { pwd_last_set, .. } => Some((*pwd_last_set, a)),
            _ => None,
        })
        .max_by_key(|(t, _)| *t)?;
    let older: Vec<String> = accounts
        .iter()
        .filter(|a| match &a.state {
            DcAccountState::Present { pwd_last_set, .. } => *pwd_last_set < newest.0,
            DcAccountState::Missing => true,
            DcAccountState::Unknown => false,
        })
        .map(|a| a.dc.clone())
        .collect();
    if older.is_empty() {
        None
    } else {
        Some((newest.1.dc.clone(), older))
    }
}

fn broken(p: &Probe, dc_tests: &[DcTest], lag: Option<(String, Vec<String>)>, ev: &mut Vec<String>) -> Diagnosis {
    let code = p.sc_verify.channel_status().map(|st| st.code);
    // The DC-side evidence: a password the member wrote (or an account created) on one DC
    // that has not reached the others. A broken member prints no `Trusted DC Name`, so the
    // DC it uses is not known; pinning it to the DC with the newest copy is what fixes lag.
    if let Some((newest, older)) = lag {
        if matches!(code, Some(status::ACCESS_DENIED | status::NO_TRUST_SAM_ACCOUNT)) && dc_tests.is_empty() {
            let bound = p.sc_verify.trusted_dc.as_deref();
            let bad_dc = older
                .iter()
                .find(|d| bound.is_some_and(|b| same_dc(b, d)))
                .or_else(|| older.first())
                .cloned()
                .unwrap_or_default();
            return Diagnosis::ReplicationLag { good_dc: newest, bad_dc };
        }
    }
    let good = dc_tests.iter().find(|t| t.ok == Some(true));
    let failing: Vec<&DcTest> = dc_tests.iter().filter(|t| t.ok == Some(false)).collect();
    if let Some(good) = good {
        let bound = p.sc_verify.trusted_dc.as_deref();
        let bad = failing
            .iter()
            .find(|t| bound.is_some_and(|b| same_dc(b, &t.dc)))
            .or_else(|| failing.first())
            .map(|t| t.dc.clone());
        if let Some(bad_dc) = bad {
            ev.push(format!(
                "the channel works against {} and fails against {bad_dc}",
                good.dc
            ));
            return Diagnosis::ReplicationLag {
                good_dc: good.dc.clone(),
                bad_dc,
            };
        }
        ev.push(format!(
            "the channel works against {} but not through the DC Netlogon uses",
            good.dc
        ));
    }
    let Some(st) = p.sc_verify.channel_status() else {
        return Diagnosis::TrustBroken {
            detail: "Test-ComputerSecureChannel False; nltest printed no status".to_string(),
        };
    };
    match st.code {
        status::NO_TRUST_SAM_ACCOUNT | status::NO_TRUST_LSA_SECRET => Diagnosis::AccountMissing,
        status::NO_LOGON_SERVERS | status::NO_SUCH_DOMAIN => Diagnosis::NoDcReachable,
        status::ACCESS_DENIED => {
            if good.is_some() {
                return Diagnosis::TrustBroken {
                    detail: format!("nltest status {st}, but one DC accepts the password"),
                };
            }
            if !failing.is_empty() {
                ev.push(format!(
                    "the machine password is rejected by every DC tested ({})",
                    failing.len()
                ));
            }
            Diagnosis::StalePassword
        }
        _ => Diagnosis::TrustBroken {
            detail: format!("nltest status {st}"),
        },
    }
}

/// `dc1` and `dc1.lab.test` name the same DC; two FQDNs must be equal (`dc01.contoso.com`
/// is not `dc01.fabrikam.com`).
pub(crate) fn same_dc(a: &str, b: &str) -> bool {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    a.eq_ignore_ascii_case(b) || (!(a.contains('.') && b.contains('.')) && short(a) == short(b))
}
