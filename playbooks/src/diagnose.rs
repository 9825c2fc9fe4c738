//! Diagnosis: from what the sweep observed of every host to one named [`Diagnosis`] per
//! host, with the evidence that led there. Pure; it sees the whole fleet at once, which is
//! how it finds what one machine cannot show (DOMAIN.md, "What a fleet view adds"): name
//! twins (two machines behind one computer account), SID duplicates (sysprep-less clones
//! under their own names), members of a domain whose DC locator fails while others of the
//! same domain are fine, and the per-domain PDC vote ([`fleet_pdcs`]).
//!
//! The channel verdict rests on the live test (`nltest /sc_verify`); the stored status is
//! evidence only. A 401 is never, alone, evidence of a broken trust: only DC-side evidence
//! ([`DcAccount`], read over LDAP) can say more about a host nobody could log on to.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::probe::{excerpt, status, NltestStatus, Probe};
use crate::remote::{RemoteError, RemoteErrorKind};

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

impl Access {
    /// The access a failed connection or probe run shows, for the account `user` that
    /// tried: 401 → [`Access::Unauthorized`], WinRM Access Denied → [`Access::AccessDenied`],
    /// a deadline → [`Access::Timeout`], anything else → [`Access::Unreachable`].
    pub fn from_remote_error(e: &RemoteError, user: &str) -> Access {
        match e.kind {
            RemoteErrorKind::Unauthorized => Access::Unauthorized {
                user: user.to_string(),
            },
            RemoteErrorKind::AccessDenied => Access::AccessDenied {
                user: user.to_string(),
            },
            RemoteErrorKind::Timeout => Access::Timeout,
            RemoteErrorKind::Unreachable | RemoteErrorKind::Protocol => Access::Unreachable {
                message: e.message.clone(),
            },
        }
    }
}

/// The CLI's separate domain-logon test with the least-privileged *logon-test* account
/// (`--logon-test-user`), never the repair account: sending a privileged account's NTLM
/// logon to every host would let any compromised host relay it (DOMAIN.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainLogon {
    /// The logon-test account logged on.
    Accepted,
    /// Refused with 401: a broken trust, or policy (Deny access from the network,
    /// Protected Users), or a wrong password; on its own it proves nothing.
    Refused,
    /// Not attempted (host not reached, or not safe: Basic auth, TLS checks off).
    #[default]
    NotTried,
    /// Skipped: no `--logon-test-user` was given.
    Skipped,
}

/// Everything the sweep observed of one host: the input of [`diagnose_fleet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostObservation {
    /// The inventory name.
    pub host: String,
    /// The endpoint the CLI connected to (`host:port`). Two inventory names with the same
    /// non-empty address are one machine (alias and FQDN), never twins.
    #[serde(default)]
    pub address: String,
    /// How we got in (or did not).
    pub access: Access,
    /// The logon test with the logon-test account.
    #[serde(default)]
    pub domain_logon: DomainLogon,
    /// The probe, when it ran and parsed ([`crate::probe_host`]).
    pub probe: Option<Probe>,
    /// The host's computer account as each DC holds it, read over LDAP (empty when the
    /// sweep has no DC access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dc_accounts: Vec<DcAccount>,
    /// What went wrong getting the probe, if anything.
    pub error: Option<String>,
}

impl HostObservation {
    /// An observation of a host that was not (or not yet) reached: `access`, no probe.
    pub fn new(host: impl Into<String>, address: impl Into<String>, access: Access) -> Self {
        HostObservation {
            host: host.into(),
            address: address.into(),
            access,
            domain_logon: DomainLogon::NotTried,
            probe: None,
            dc_accounts: Vec::new(),
            error: None,
        }
    }

    /// An observation of a host that answered, with its probe.
    pub fn connected(
        host: impl Into<String>,
        user: impl Into<String>,
        local: bool,
        probe: Probe,
    ) -> Self {
        let mut o = HostObservation::new(
            host,
            "",
            Access::Connected {
                user: user.into(),
                local,
            },
        );
        o.probe = Some(probe);
        o
    }

    /// The same with the endpoint address set.
    pub fn at(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
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
            DcAccountState::Present {
                pwd_last_set,
                pwd_last_set_utc,
                disabled,
            } => {
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

/// Why a host is in the state it is: one name per cause the tool knows how to treat. The
/// snake_case names ([`Diagnosis::name`], serde's `kind`) are a contract with the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnosis {
    /// The live test (`/sc_verify`) succeeds.
    Healthy,
    /// `DomainRole` 4 or 5: a domain controller, not a member. Skipped, never repaired.
    DomainController {
        /// The `DomainRole` (4 backup DC, 5 PDC emulator).
        role: u32,
    },
    /// In a workgroup.
    NotDomainJoined,
    /// The DC refused the machine password (live status 5): snapshot/backup restore, or
    /// the account reset on the DC side; without DC-side evidence also possibly a DC that
    /// missed replication.
    StalePassword,
    /// DC-side evidence: the DCs disagree on the account's `pwdLastSet` and the member is
    /// bound to one holding an older value.
    StaleDc {
        /// The DC(s) holding the newest value: the DC to pin to.
        newest: Vec<String>,
        /// The DC the member is bound to, which holds an older value (or none).
        bound: String,
    },
    /// DC-side evidence: the computer account is disabled.
    AccountDisabled,
    /// DC-side evidence: no DC holds the computer account.
    AccountDeleted,
    /// Live status 1787 `ERROR_NO_TRUST_SAM_ACCOUNT` without DC-side evidence: disabled or
    /// missing, only LDAP tells which.
    AccountDisabledOrMissing,
    /// The DC locator finds no DC (`/dsgetdc` fails, channel 1311/1355): usually the
    /// member's DNS points at a non-DC.
    NoDcLocator,
    /// The locator found a DC but the channel reaches none (1311): firewall, RPC.
    DcUnreachable {
        /// The DC the locator named.
        dc: Option<String>,
    },
    /// Two or more machines answer with this computer name in the same domain: one
    /// account, two machines. Never reset either; rebuild or rename one.
    NameTwin {
        /// The other inventory hosts.
        twins: Vec<String>,
    },
    /// Shares its machine SID with hosts of other names (a sysprep-less clone joined under
    /// its own name). The channel works; advisory: rebuild with sysprep.
    SidDuplicate {
        /// The other inventory hosts.
        twins: Vec<String>,
    },
    /// A local account (not, as far as can be told, the built-in RID-500 Administrator)
    /// was refused with 401 or Access Denied.
    LocalAccountRefused {
        /// The account.
        user: String,
    },
    /// Authenticated but not allowed (WinRM Access Denied), or cannot query Netlogon
    /// (not elevated).
    AccessDenied {
        /// The account.
        user: String,
    },
    /// A domain (or unknown) account got 401. Not evidence of a broken trust.
    Unauthorized {
        /// The account.
        user: String,
    },
    /// No answer.
    Unreachable,
    /// A non-zero live channel status not covered above (e.g. 1786).
    TrustBroken {
        /// What is known.
        detail: String,
    },
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
            Diagnosis::DomainController { .. } => "domain_controller",
            Diagnosis::NotDomainJoined => "not_domain_joined",
            Diagnosis::StalePassword => "stale_password",
            Diagnosis::StaleDc { .. } => "stale_dc",
            Diagnosis::AccountDisabled => "account_disabled",
            Diagnosis::AccountDeleted => "account_deleted",
            Diagnosis::AccountDisabledOrMissing => "account_disabled_or_missing",
            Diagnosis::NoDcLocator => "no_dc_locator",
            Diagnosis::DcUnreachable { .. } => "dc_unreachable",
            Diagnosis::NameTwin { .. } => "name_twin",
            Diagnosis::SidDuplicate { .. } => "sid_duplicate",
            Diagnosis::LocalAccountRefused { .. } => "local_account_refused",
            Diagnosis::AccessDenied { .. } => "access_denied",
            Diagnosis::Unauthorized { .. } => "unauthorized",
            Diagnosis::Unreachable => "unreachable",
            Diagnosis::TrustBroken { .. } => "trust_broken",
            Diagnosis::Unknown { .. } => "unknown",
        }
    }

    /// The `check` summary bucket. A SID duplicate's channel works (Healthy; its finding
    /// carries the advisory). A domain controller is not a member and has nothing to
    /// repair: Healthy too (its name says it was skipped).
    pub fn state(&self) -> HostState {
        match self {
            Diagnosis::Healthy
            | Diagnosis::SidDuplicate { .. }
            | Diagnosis::DomainController { .. } => HostState::Healthy,
            Diagnosis::NotDomainJoined
            | Diagnosis::StalePassword
            | Diagnosis::StaleDc { .. }
            | Diagnosis::AccountDisabled
            | Diagnosis::AccountDeleted
            | Diagnosis::AccountDisabledOrMissing
            | Diagnosis::NoDcLocator
            | Diagnosis::DcUnreachable { .. }
            | Diagnosis::NameTwin { .. }
            | Diagnosis::TrustBroken { .. } => HostState::Broken,
            Diagnosis::Unreachable => HostState::Unreachable,
            Diagnosis::LocalAccountRefused { .. }
            | Diagnosis::AccessDenied { .. }
            | Diagnosis::Unauthorized { .. } => HostState::AccessProblem,
            Diagnosis::Unknown { .. } => HostState::Unknown,
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::Healthy => f.write_str("healthy"),
            Diagnosis::DomainController { role } => write!(
                f,
                "domain controller (DomainRole {role}), not a member: skipped"
            ),
            Diagnosis::NotDomainJoined => f.write_str("not domain-joined"),
            Diagnosis::StalePassword => f.write_str(
                "the DC refuses the machine password (snapshot restore, DC-side reset, or a DC that missed replication)",
            ),
            Diagnosis::StaleDc { newest, bound } => write!(
                f,
                "bound to {bound}, which holds an older password than {} (replication)",
                newest.join(", ")
            ),
            Diagnosis::AccountDisabled => f.write_str("computer account disabled in AD"),
            Diagnosis::AccountDeleted => f.write_str("computer account deleted from AD"),
            Diagnosis::AccountDisabledOrMissing => {
                f.write_str("computer account disabled or missing (1787)")
            }
            Diagnosis::NoDcLocator => {
                f.write_str("the DC locator finds no DC (DNS on the member?)")
            }
            Diagnosis::DcUnreachable { dc } => match dc {
                Some(dc) => write!(f, "DC {dc} found but unreachable (firewall/RPC)"),
                None => f.write_str("DCs found but unreachable (firewall/RPC)"),
            },
            Diagnosis::NameTwin { twins } => write!(
                f,
                "name twin of {} (one account, two machines: rebuild or rename one)",
                twins.join(", ")
            ),
            Diagnosis::SidDuplicate { twins } => write!(
                f,
                "shares its machine SID with {} (advisory: rebuild with sysprep)",
                twins.join(", ")
            ),
            Diagnosis::LocalAccountRefused { user } => {
                write!(f, "local account {user} refused")
            }
            Diagnosis::AccessDenied { user } => write!(f, "access denied for {user}"),
            Diagnosis::Unauthorized { user } => {
                write!(f, "{user} refused (HTTP 401); not evidence of a broken trust")
            }
            Diagnosis::Unreachable => f.write_str("unreachable"),
            Diagnosis::TrustBroken { detail } => write!(f, "trust broken: {detail}"),
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

impl HostState {
    /// Every state, in the order reports list them.
    pub const ALL: [HostState; 5] = [
        HostState::Healthy,
        HostState::Broken,
        HostState::Unreachable,
        HostState::AccessProblem,
        HostState::Unknown,
    ];

    /// The snake_case name, as in JSON (`access_problem`).
    pub fn name(&self) -> &'static str {
        match self {
            HostState::Healthy => "healthy",
            HostState::Broken => "broken",
            HostState::Unreachable => "unreachable",
            HostState::AccessProblem => "access_problem",
            HostState::Unknown => "unknown",
        }
    }
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

    /// The count of hosts in `state`.
    pub fn count(&self, state: HostState) -> usize {
        match state {
            HostState::Healthy => self.healthy,
            HostState::Broken => self.broken,
            HostState::Unreachable => self.unreachable,
            HostState::AccessProblem => self.access_problem,
            HostState::Unknown => self.unknown,
        }
    }

    /// Counts one more host in `state`.
    pub fn add(&mut self, state: HostState) {
        match state {
            HostState::Healthy => self.healthy += 1,
            HostState::Broken => self.broken += 1,
            HostState::Unreachable => self.unreachable += 1,
            HostState::AccessProblem => self.access_problem += 1,
            HostState::Unknown => self.unknown += 1,
        }
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

/// The PDC emulator of each domain, voted by the probes' DC locator (`/dsgetdc /pdc`, and
/// a swept PDC emulator naming itself), keyed by the lower-case DNS domain. `dc1` and
/// `dc1.lab.test` count as one DC; the longest spelling (the FQDN) is returned. One
/// domain's vote never names another domain's PDC.
pub fn fleet_pdcs(observations: &[HostObservation]) -> BTreeMap<String, String> {
    // (domain, short name) -> (votes, longest spelling)
    let mut votes: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for p in observations.iter().filter_map(|o| o.probe.as_ref()) {
        let domain = p.domain_key();
        if domain.is_empty() || p.part_of_domain == Some(false) {
            continue;
        }
        let name = if p.domain_role == Some(crate::probe::ROLE_PRIMARY_DC) {
            format!("{}.{domain}", p.computer_name.to_ascii_lowercase())
        } else if let Some(pdc) = p.pdc() {
            pdc.to_string()
        } else {
            continue;
        };
        let short = name.split('.').next().unwrap_or(&name).to_ascii_lowercase();
        let e = votes.entry((domain, short)).or_insert((0, name.clone()));
        e.0 += 1;
        if name.len() > e.1.len() {
            e.1 = name;
        }
    }
    let mut best: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for ((domain, _), (n, name)) in votes {
        let slot = best.entry(domain).or_insert((0, String::new()));
        if n > slot.0 {
            *slot = (n, name);
        }
    }
    best.into_iter().map(|(d, (_, name))| (d, name)).collect()
}

/// What the rest of the fleet says about one host.
#[derive(Debug, Clone, Default)]
struct FleetContext {
    /// Other machines answering with the same computer name in the same domain.
    name_twins: Vec<String>,
    /// Other machines (other names) sharing the machine SID in the same domain.
    sid_twins: Vec<String>,
    /// Other members of the same domain whose live test succeeds.
    domain_ok: usize,
    /// Hosts where the logon-test account was accepted.
    logon_accepted: usize,
}

/// Two observations of one machine: the same inventory name, or the same non-empty
/// endpoint address (an alias and an FQDN of one host).
fn same_machine(a: &HostObservation, b: &HostObservation) -> bool {
    a.host.eq_ignore_ascii_case(&b.host)
        || (!a.address.is_empty() && a.address.eq_ignore_ascii_case(&b.address))
}

/// The fleet context of every host. Linear in the fleet, not quadratic: each member is
/// compared only with the members that share its domain and its computer name, machine
/// SID, inventory name or address (the only ones the pairwise rules can single out); all
/// other members of its domain count towards `domain_ok` by their live test alone.
fn fleet_context(observations: &[HostObservation]) -> Vec<FleetContext> {
    use std::collections::HashMap;

    let logon_accepted = observations
        .iter()
        .filter(|o| o.domain_logon == DomainLogon::Accepted)
        .count();
    let members: Vec<(usize, &HostObservation, &Probe)> = observations
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.probe
                .as_ref()
                .filter(|p| p.is_member())
                .map(|p| (i, o, p))
        })
        .collect();
    let mut out = vec![
        FleetContext {
            logon_accepted,
            ..FleetContext::default()
        };
        observations.len()
    ];
    // Per member (by its position in `members`): its domain key, and the keys under which
    // it meets the members the pairwise rules below can tell apart from the rest.
    let domains: Vec<String> = members.iter().map(|(_, _, p)| p.domain_key()).collect();
    let ok = |m: usize| {
        members
            .get(m)
            .is_some_and(|(_, _, q)| q.channel_ok() == Some(true))
    };
    let mut ok_per_domain: HashMap<&str, usize> = HashMap::new();
    let mut groups: HashMap<(u8, &str, String), Vec<usize>> = HashMap::new();
    let keys = |m: usize| -> Vec<(u8, String)> {
        let Some((_, o, p)) = members.get(m) else {
            return Vec::new();
        };
        let mut k = vec![
            (0, o.host.to_ascii_lowercase()),
            (1, o.address.to_ascii_lowercase()),
        ];
        if !p.computer_name.is_empty() {
            k.push((2, p.computer_name.to_ascii_lowercase()));
        }
        if let Some(sid) = &p.machine_sid {
            // Compared exactly, as the pairwise rule does.
            k.push((3, sid.clone()));
        }
        k
    };
    for (m, dom) in domains.iter().enumerate() {
        if ok(m) {
            *ok_per_domain.entry(dom.as_str()).or_default() += 1;
        }
        for (kind, key) in keys(m) {
            // An empty address is no address: it makes no two hosts one machine.
            if kind == 1 && key.is_empty() {
                continue;
            }
            groups.entry((kind, dom.as_str(), key)).or_default().push(m);
        }
    }
    for (m, &(i, o, p)) in members.iter().enumerate() {
        let Some(ctx) = out.get_mut(i) else { continue };
        let dom = domains.get(m).map(String::as_str).unwrap_or_default();
        // The members sharing a key with this one, in fleet order, without itself.
        let mut near: Vec<usize> = keys(m)
            .into_iter()
            .filter_map(|(kind, key)| groups.get(&(kind, dom, key)))
            .flatten()
            .copied()
            .filter(|&n| n != m)
            .collect();
        near.sort_unstable();
        near.dedup();
        // Every other member of the domain whose live test succeeds counts, except those
        // the rules below judge one by one.
        let others_ok = ok_per_domain
            .get(dom)
            .copied()
            .unwrap_or(0)
            .saturating_sub(usize::from(ok(m)))
            .saturating_sub(near.iter().filter(|&&n| ok(n)).count());
        let mut domain_ok = others_ok;
        let mut names: Vec<String> = Vec::new();
        let mut sids: Vec<String> = Vec::new();
        for &n in &near {
            let Some(&(_, other, q)) = members.get(n) else {
                continue;
            };
            if same_machine(o, other) {
                continue;
            }
            let same_name = !p.computer_name.is_empty()
                && p.computer_name.eq_ignore_ascii_case(&q.computer_name);
            if same_name {
                if !names.contains(&other.host) {
                    names.push(other.host.clone());
                }
            } else if p.machine_sid.is_some()
                && p.machine_sid == q.machine_sid
                && !sids.contains(&other.host)
            {
                sids.push(other.host.clone());
            }
            if q.channel_ok() == Some(true) && !same_name {
                domain_ok += 1;
            }
        }
        ctx.domain_ok = domain_ok;
        ctx.name_twins = names;
        ctx.sid_twins = sids;
    }
    out
}

/// Diagnoses every host, in input order, using the whole fleet (name twins, SID
/// duplicates, other members of the same domain, logon tests elsewhere).
pub fn diagnose_fleet(observations: &[HostObservation]) -> Vec<Finding> {
    let ctx = fleet_context(observations);
    observations
        .iter()
        .zip(ctx)
        .map(|(o, c)| {
            let (diagnosis, evidence) = classify(o, &c);
            Finding {
                host: o.host.clone(),
                diagnosis,
                evidence,
            }
        })
        .collect()
}

/// Diagnoses one host alone (no fleet context: no twins). Used to verify a repair.
pub fn diagnose_host(observation: &HostObservation) -> Finding {
    let (diagnosis, evidence) = classify(observation, &FleetContext::default());
    Finding {
        host: observation.host.clone(),
        diagnosis,
        evidence,
    }
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

/// Is this local account, as far as its name tells, the built-in Administrator (RID 500)?
/// (It may have been renamed; a LAPS-managed account may be another one.)
fn looks_builtin_admin(user: &str) -> bool {
    let name = user.rsplit('\\').next().unwrap_or(user);
    name.eq_ignore_ascii_case("administrator")
}

const NOT_EVIDENCE_401: &str =
    "a 401 is not, on its own, evidence of a broken trust (wrong password, Deny access to this computer from the network, Protected Users, UAC remote restrictions all give 401)";

fn classify(o: &HostObservation, ctx: &FleetContext) -> (Diagnosis, Vec<String>) {
    let mut ev = vec![access_evidence(&o.access)];
    match o.domain_logon {
        DomainLogon::Accepted => {
            ev.push("domain logon test (logon-test account): accepted".to_string())
        }
        DomainLogon::Refused => {
            ev.push("domain logon test (logon-test account): refused (HTTP 401)".to_string())
        }
        DomainLogon::Skipped => {
            ev.push("domain logon test: skipped (no --logon-test-user given)".to_string())
        }
        DomainLogon::NotTried => {}
    }
    if let Some(e) = &o.error {
        ev.push(format!("error: {}", excerpt(e, 300)));
    }
    for a in &o.dc_accounts {
        ev.push(a.to_string());
    }
    let d = match &o.access {
        Access::Unreachable { .. } | Access::Timeout => Diagnosis::Unreachable,
        Access::Unauthorized { user } | Access::AccessDenied { user } => {
            let is_401 = matches!(o.access, Access::Unauthorized { .. });
            refused(o, user, is_401, ctx, &mut ev)
        }
        Access::Connected { user, .. } => match &o.probe {
            Some(p) => from_probe(p, o, ctx, &mut ev),
            None => Diagnosis::Unknown {
                detail: o
                    .error
                    .as_deref()
                    .map(|e| excerpt(e, 200))
                    .unwrap_or_else(|| format!("no probe result ({user})")),
            },
        },
    };
    (d, ev)
}

/// Nobody got in: the access problem, unless DC-side evidence says more.
fn refused(
    o: &HostObservation,
    user: &str,
    is_401: bool,
    ctx: &FleetContext,
    ev: &mut Vec<String>,
) -> Diagnosis {
    if let Some(d) = account_from_dcs(&o.dc_accounts, ev) {
        return d;
    }
    if is_401 {
        ev.push(NOT_EVIDENCE_401.to_string());
    }
    if o.domain_logon == DomainLogon::Refused && ctx.logon_accepted > 0 {
        ev.push(format!(
            "the logon-test account logs on to {} other host(s) but is refused here (a broken trust, or a policy on this host)",
            ctx.logon_accepted
        ));
    }
    let local = !user.is_empty() && looks_local(user, &o.host);
    if local && !looks_builtin_admin(user) {
        ev.push(format!(
            "{user} is a local account other than the built-in Administrator; possible causes: a wrong password; UAC remote restrictions (KB951016: a local administrator other than RID 500 without LocalAccountTokenFilterPolicy=1 is answered with 401 on real hosts, pywinrm #188); not in Administrators (a member of Remote Management Users only gets Access Denied, pywinrm #338)"
        ));
        ev.push("use the built-in Administrator (RID 500), e.g. its LAPS password".to_string());
        return Diagnosis::LocalAccountRefused {
            user: user.to_string(),
        };
    }
    if local {
        ev.push(format!(
            "{user} looks like the built-in Administrator; possible causes: a wrong or rotated (LAPS) password, \"Deny access to this computer from the network\" for local administrators (CIS L1), FilterAdministratorToken=1"
        ));
    }
    if is_401 {
        Diagnosis::Unauthorized {
            user: user.to_string(),
        }
    } else {
        Diagnosis::AccessDenied {
            user: user.to_string(),
        }
    }
}

/// Disabled on every DC that holds it, or held by no DC read: what only LDAP can tell.
fn account_from_dcs(accounts: &[DcAccount], ev: &mut Vec<String>) -> Option<Diagnosis> {
    let readable: Vec<&DcAccount> = accounts
        .iter()
        .filter(|a| a.state != DcAccountState::Unknown)
        .collect();
    if readable.is_empty() {
        return None;
    }
    if readable.iter().all(|a| a.state == DcAccountState::Missing) {
        ev.push(format!(
            "DC-side evidence: no DC read ({}) holds the computer account: deleted (restore it from the AD Recycle Bin, or rejoin)",
            dc_names(&readable)
        ));
        return Some(Diagnosis::AccountDeleted);
    }
    let present: Vec<&DcAccount> = readable
        .iter()
        .copied()
        .filter(|a| matches!(a.state, DcAccountState::Present { .. }))
        .collect();
    if present
        .iter()
        .all(|a| matches!(a.state, DcAccountState::Present { disabled: true, .. }))
    {
        ev.push(format!(
            "DC-side evidence: the computer account is disabled ({}): re-enabling it heals the member with no change on it",
            dc_names(&present)
        ));
        return Some(Diagnosis::AccountDisabled);
    }
    None
}

fn dc_names(accounts: &[&DcAccount]) -> String {
    accounts
        .iter()
        .map(|a| a.dc.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_probe(
    p: &Probe,
    o: &HostObservation,
    ctx: &FleetContext,
    ev: &mut Vec<String>,
) -> Diagnosis {
    let sid = p.machine_sid.as_deref().unwrap_or("unknown");
    ev.push(format!(
        "computer {} in {} (part of domain: {}, DomainRole {}), machine SID {sid}",
        p.computer_name,
        p.domain,
        p.part_of_domain
            .map_or("unknown", |b| if b { "yes" } else { "no" }),
        p.domain_role
            .map_or_else(|| "unknown".to_string(), |r| r.to_string())
    ));
    if let Some(role) = p.domain_role.filter(|_| p.is_domain_controller()) {
        ev.push(format!(
            "DomainRole {role}: a domain controller, not a member; its secure channel is not tested and it is never repaired"
        ));
        return Diagnosis::DomainController { role };
    }
    if p.part_of_domain == Some(false) {
        return Diagnosis::NotDomainJoined;
    }
    ev.extend(p.evidence());
    if !ctx.name_twins.is_empty() {
        ev.push(format!(
            "computer name {} in {} is also answered by {} (a different machine): one computer account, two machines; each password change by one breaks the other; never reset either",
            p.computer_name,
            p.domain_key(),
            ctx.name_twins.join(", ")
        ));
        return Diagnosis::NameTwin {
            twins: ctx.name_twins.clone(),
        };
    }
    let sid_line = (!ctx.sid_twins.is_empty()).then(|| {
        format!(
            "machine SID {sid} shared with {} (other computer names): a sysprep-less clone; rebuild with sysprep; Windows 11 24H2/Server 2025 refuse NTLM/Kerberos between them (event 6167, KB5068222)",
            ctx.sid_twins.join(", ")
        )
    });
    let refused = o.domain_logon == DomainLogon::Refused;
    match p.live_status() {
        Some(st) if st.code == status::SUCCESS => {
            if refused {
                ev.push("domain logons refused by policy (Deny access from the network, Protected Users…) while the channel works".to_string());
            }
            if let Some(line) = sid_line {
                ev.push(line);
                ev.push(
                    "needs a person (advisory): the channel works; nothing is repaired".to_string(),
                );
                return Diagnosis::SidDuplicate {
                    twins: ctx.sid_twins.clone(),
                };
            }
            Diagnosis::Healthy
        }
        Some(st) => {
            let st = st.clone();
            if let Some(line) = sid_line {
                ev.push(line);
            }
            if refused {
                ev.push(
                    "the logon-test account is refused too (consistent with the broken channel)"
                        .to_string(),
                );
            }
            broken(p, &st, &o.dc_accounts, ctx, ev)
        }
        None => {
            if let Some(line) = sid_line {
                ev.push(line);
            }
            no_live_status(p, &o.dc_accounts, ctx, ev)
        }
    }
}

fn no_live_status(
    p: &Probe,
    accounts: &[DcAccount],
    ctx: &FleetContext,
    ev: &mut Vec<String>,
) -> Diagnosis {
    let Some(f) = &p.sc_verify.failure else {
        return Diagnosis::Unknown {
            detail: format!(
                "the live test printed no status; nltest said: {}",
                excerpt(&p.sc_verify_text, 200)
            ),
        };
    };
    match f.status.code {
        status::ACCESS_DENIED => {
            ev.push("nltest could not query Netlogon: the session is not elevated (I_NetLogonControl failed: Status = 5), not a refused password".to_string());
            Diagnosis::AccessDenied {
                user: p.user.clone(),
            }
        }
        status::NO_LOGON_SERVERS | status::NO_SUCH_DOMAIN => {
            let st = f.status.clone();
            broken(p, &st, accounts, ctx, ev)
        }
        status::RPC_S_SERVER_UNAVAILABLE => {
            ev.push("Netlogon is not answering (service stopped?)".to_string());
            Diagnosis::Unknown {
                detail: format!("Netlogon not answering ({})", f.status),
            }
        }
        _ => Diagnosis::Unknown {
            detail: format!("the live test failed: {}", f.status),
        },
    }
}

fn broken(
    p: &Probe,
    st: &NltestStatus,
    accounts: &[DcAccount],
    ctx: &FleetContext,
    ev: &mut Vec<String>,
) -> Diagnosis {
    match st.code {
        status::ACCESS_DENIED => {
            ev.push("live test: the DC refused the machine password (Status = 5)".to_string());
            if let Some(d) = stale_dc(p, accounts, ev) {
                return d;
            }
            if accounts.iter().any(|a| a.state != DcAccountState::Unknown) {
                ev.push("DC-side evidence shows no DC behind the one the member uses: the member's machine password is stale (snapshot restore, or a DC-side reset)".to_string());
            } else {
                ev.push("without DC-side evidence (--ldap) the sweep cannot tell a stale machine password (snapshot restore, DC-side reset) from a DC that missed replication; the repair ladder covers both".to_string());
            }
            Diagnosis::StalePassword
        }
        status::NO_TRUST_SAM_ACCOUNT => {
            if let Some(d) = account_from_dcs(accounts, ev) {
                return d;
            }
            if let Some(d) = stale_dc(p, accounts, ev) {
                return d;
            }
            if accounts.iter().any(|a| a.state != DcAccountState::Unknown) {
                return Diagnosis::TrustBroken {
                    detail: format!(
                        "live status {st} although the DCs read hold an enabled account"
                    ),
                };
            }
            ev.push(
                "computer account disabled or missing (1787); only LDAP (--ldap) tells which"
                    .to_string(),
            );
            Diagnosis::AccountDisabledOrMissing
        }
        status::NO_LOGON_SERVERS | status::NO_SUCH_DOMAIN => {
            let domain = p.domain_key();
            let d = if p.dsgetdc.found() {
                let dc = p.dsgetdc.dc.clone();
                ev.push(format!(
                    "the DC locator finds {} but the channel reaches no DC (Status = {st}): firewall or RPC between the member and the DCs",
                    dc.as_deref().unwrap_or("a DC")
                ));
                Diagnosis::DcUnreachable { dc }
            } else {
                ev.push(format!(
                    "the DC locator finds no DC for {domain} (Status = {st}): usually the member's DNS points at a non-DC"
                ));
                Diagnosis::NoDcLocator
            };
            if ctx.domain_ok > 0 {
                ev.push(format!(
                    "{} other member(s) of {domain} verify their channel: the problem is this host's, not the domain's",
                    ctx.domain_ok
                ));
            }
            d
        }
        status::NO_TRUST_LSA_SECRET => Diagnosis::TrustBroken {
            detail: format!("live status {st}: the member's own trust secret is missing"),
        },
        _ => Diagnosis::TrustBroken {
            detail: format!("live status {st}"),
        },
    }
}

/// DC-side evidence of a stale DC: the DCs disagree on `pwdLastSet` (or one lacks the
/// account) and the member is bound to one holding an older value; or, when the broken
/// member names no DC (real nltest often prints an empty `Trusted DC Name`), the DCs
/// disagree at all.
fn stale_dc(p: &Probe, accounts: &[DcAccount], ev: &mut Vec<String>) -> Option<Diagnosis> {
    let (newest, older) = dc_lag(accounts)?;
    let bound = p.trusted_dc().map(str::to_string);
    ev.push(format!(
        "the DCs disagree on the account's pwdLastSet: {} hold(s) the newest, {} an older one (replication)",
        newest.join(", "),
        older.join(", ")
    ));
    match &bound {
        Some(b) if newest.iter().any(|d| same_dc(b, d)) => {
            ev.push(format!(
                "the member is bound to {b}, which holds the newest value: not a stale DC"
            ));
            None
        }
        Some(b) if older.iter().any(|d| same_dc(b, d)) => {
            ev.push(format!(
                "the member is bound to {b}, which holds an older value: pin it to {}",
                newest.join(" or ")
            ));
            Some(Diagnosis::StaleDc {
                newest,
                bound: b.clone(),
            })
        }
        _ => {
            let b = older.first().cloned().unwrap_or_default();
            ev.push(format!(
                "the member names no DC it is bound to; {b} holds an older value: pin it to {}",
                newest.join(" or ")
            ));
            Some(Diagnosis::StaleDc { newest, bound: b })
        }
    }
}

/// From the DCs' copies of an account: the DCs holding the newest one and the DCs behind
/// it (an older `pwdLastSet`, or no account where another DC has one), when they disagree.
/// DCs that could not be read take no part.
fn dc_lag(accounts: &[DcAccount]) -> Option<(Vec<String>, Vec<String>)> {
    let max = accounts
        .iter()
        .filter_map(|a| match &a.state {
            DcAccountState::Present { pwd_last_set, .. } => Some(*pwd_last_set),
            _ => None,
        })
        .max()?;
    let newest: Vec<String> = accounts
        .iter()
        .filter(|a| matches!(&a.state, DcAccountState::Present { pwd_last_set, .. } if *pwd_last_set == max))
        .map(|a| a.dc.clone())
        .collect();
    let older: Vec<String> = accounts
        .iter()
        .filter(|a| match &a.state {
            DcAccountState::Present { pwd_last_set, .. } => *pwd_last_set < max,
            DcAccountState::Missing => true,
            DcAccountState::Unknown => false,
        })
        .map(|a| a.dc.clone())
        .collect();
    (!older.is_empty()).then_some((newest, older))
}

/// `dc1` and `dc1.lab.test` name the same DC; two FQDNs must be equal (`dc01.contoso.com`
/// is not `dc01.fabrikam.com`).
pub(crate) fn same_dc(a: &str, b: &str) -> bool {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    a.eq_ignore_ascii_case(b) || (!(a.contains('.') && b.contains('.')) && short(a) == short(b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::probe::NltestOutput;

    /// The pairwise definition `fleet_context` must agree with (every member against every
    /// other), kept as the reference.
    fn pairwise(observations: &[HostObservation]) -> Vec<(Vec<String>, Vec<String>, usize)> {
        let members: Vec<(usize, &HostObservation, &Probe)> = observations
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.probe
                    .as_ref()
                    .filter(|p| p.is_member())
                    .map(|p| (i, o, p))
            })
            .collect();
        let mut out = vec![(Vec::new(), Vec::new(), 0); observations.len()];
        for &(i, o, p) in &members {
            for &(j, other, q) in &members {
                if j == i || same_machine(o, other) || q.domain_key() != p.domain_key() {
                    continue;
                }
                let same_name = !p.computer_name.is_empty()
                    && p.computer_name.eq_ignore_ascii_case(&q.computer_name);
                let (names, sids, ok) = &mut out[i];
                if same_name {
                    if !names.contains(&other.host) {
                        names.push(other.host.clone());
                    }
                } else if p.machine_sid.is_some()
                    && p.machine_sid == q.machine_sid
                    && !sids.contains(&other.host)
                {
                    sids.push(other.host.clone());
                }
                if q.channel_ok() == Some(true) && !same_name {
                    *ok += 1;
                }
            }
        }
        out
    }

    /// A fleet full of collisions: names, SIDs, inventory names and addresses shared in
    /// every combination, two domains (one spelt in two cases), non-members, broken
    /// channels, empty names and addresses, and hosts listed twice.
    fn fleet(seed: u64, n: usize) -> Vec<HostObservation> {
        let mut x = seed;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        (0..n)
            .map(|_| {
                let code = if next(3) == 0 { 1787 } else { 0 };
                let probe = Probe {
                    computer_name: ["", "WS1", "ws1", "WS2", "WS3", "WS4"][next(6) as usize].into(),
                    domain: ["corp.test", "CORP.test ", "other.test"][next(3) as usize].into(),
                    part_of_domain: Some(next(8) != 0),
                    domain_role: Some(if next(10) == 0 { 5 } else { 1 }),
                    machine_sid: [None, Some("S-1"), Some("S-2"), Some("S-3")][next(4) as usize]
                        .map(String::from),
                    sc_verify: NltestOutput {
                        connection_status: Some(NltestStatus {
                            code,
                            name: String::new(),
                        }),
                        ..NltestOutput::default()
                    },
                    ..Probe::default()
                };
                let host =
                    ["a.test", "A.TEST", "b.test", "c.test", "d.test", "e.test"][next(6) as usize];
                let address =
                    ["", "10.0.0.1:5986", "10.0.0.2:5986", "10.0.0.3:5986"][next(4) as usize];
                let mut o =
                    HostObservation::connected(host, "x\\administrator", true, probe).at(address);
                if next(12) == 0 {
                    o.probe = None;
                }
                o
            })
            .collect()
    }

    #[test]
    fn fleet_context_agrees_with_the_pairwise_definition() {
        let (mut names, mut sids, mut ok) = (0, 0, 0);
        for seed in 0..200 {
            let obs = fleet(seed, (seed % 40) as usize + 1);
            let got: Vec<_> = fleet_context(&obs)
                .into_iter()
                .map(|c| (c.name_twins, c.sid_twins, c.domain_ok))
                .collect();
            assert_eq!(got, pairwise(&obs), "seed {seed}");
            names += got.iter().filter(|c| !c.0.is_empty()).count();
            sids += got.iter().filter(|c| !c.1.is_empty()).count();
            ok += got.iter().filter(|c| c.2 > 0).count();
        }
        // The fleets do exercise every rule.
        assert!(names > 100 && sids > 100 && ok > 100, "{names} {sids} {ok}");
    }
}
