//! DC access over LDAPS (`--ldap URL`, with or without `--ou`): the DC-side evidence of a
//! sweep (each host's computer account as every DC holds it, so replication lag shows
//! without asking members to talk to each DC) and the DC-side "Reset Account" of
//! `repair --allow-dc-reset`, done by the repair account.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use ad::{AdConfig, DcAccounts};
use playbooks::{DcAccount, DcAccountState, DirectoryError};

/// How the sweep reaches the DCs.
#[derive(Debug, Clone)]
pub struct DcAccess {
    /// The DC of `--ldap`, bound as the reading account (`--ldap-user`, else the repair
    /// account); its TLS settings serve every DC.
    pub read: AdConfig,
    /// The DCs to read (`--ldap-dc`); empty: discover them from AD.
    pub dcs: Vec<String>,
    /// The account DC-side resets bind as: the repair account.
    pub reset_as: Option<playbooks::DomainCredential>,
    /// The sweep's other domain credentials (connecting, logon-test, repair accounts), each
    /// checked with one bind before any host is sent it ([`verify_credentials`]).
    pub verify: Vec<playbooks::DomainCredential>,
}

/// Lockout safety (issue 16, [`crate::credential_gate`]): the sweep's domain credentials
/// checked once each with an LDAPS simple bind to the `--ldap` DC, before any host is sent
/// them: the reading account first (as itself), then each other one (re-bound on the
/// reader's connection, `ad::check_password`). A refused bind (LDAP result 49,
/// invalidCredentials: AD's `data 52e` bad password, `775` locked out, MS-ADTS and
/// Microsoft's "LDAP error codes") closes its gate at once: no host and no other DC read
/// is sent it again. An accepted one opens it. A DC that could not be used decides nothing
/// (the hosts check the credential one at a time instead). Returns what to log.
pub async fn verify_credentials(access: &DcAccess) -> Vec<String> {
    use crate::credential_gate::Gates;
    let mut problems = Vec::new();
    let dc = access.read.url.clone();
    let read_gate = Gates::global().gate(&access.read.bind_user, &access.read.bind_password);
    if let Some(gate) = read_gate.as_ref().filter(|g| g.is_unverified()) {
        match bind_verdict(ad::domain_sid(&access.read).await) {
            Some(v) => gate.dc_verdict(&dc, v),
            None => problems.push(format!(
                "could not check {} with a bind to {dc}",
                access.read.bind_user
            )),
        }
    }
    if let Some(n) = read_gate.as_ref().and_then(|g| g.not_used()) {
        problems.push(n.message());
        return problems;
    }
    for cred in &access.verify {
        let Some(gate) = Gates::global().gate(&cred.user, &cred.password) else {
            continue;
        };
        if !gate.is_unverified() {
            continue;
        }
        match ad::check_password(&access.read, &cred.user, &cred.password).await {
            Ok(true) => gate.dc_verdict(&dc, Ok(())),
            Ok(false) => {
                gate.dc_verdict(&dc, Err("invalid credentials, LDAP result 49".into()));
                if let Some(n) = gate.not_used() {
                    problems.push(n.message());
                }
            }
            Err(e) => problems.push(format!(
                "could not check {} with a bind to {dc}: {e}",
                cred.user
            )),
        }
    }
    problems
}

/// What a bind as the reading account says of its password: `Some(Ok)` it was accepted
/// (anything after the bind counts as accepted), `Some(Err(reason))` the DC refused the
/// bind, `None` the DC could not be asked.
fn bind_verdict<T>(res: Result<T, ad::AdError>) -> Option<Result<(), String>> {
    use ad::AdError as E;
    match res {
        Ok(_) => Some(Ok(())),
        Err(E::BindFailed { reason, .. }) => Some(Err(reason)),
        Err(
            E::InvalidConfig { .. }
            | E::PlainLdapRefused { .. }
            | E::Connect { .. }
            | E::Timeout { .. }
            | E::TlsUntrusted { .. }
            | E::TlsNameMismatch { .. }
            | E::Tls { .. }
            | E::StartTlsRefused { .. },
        ) => None,
        Err(_) => Some(Ok(())),
    }
}

/// The reading account's gate is closed: why (then nothing more is read as it).
fn read_refused(access: &DcAccess) -> Option<String> {
    crate::credential_gate::Gates::global()
        .gate(&access.read.bind_user, &access.read.bind_password)
        .and_then(|g| g.not_used())
        .map(|n| n.message())
}

/// One DC's reading: its name (rootDSE `dnsHostName`, else the URL), its URL, and the
/// accounts by upper-case computer name (`None` when the DC could not be read).
pub type DcReading = (String, String, Option<BTreeMap<String, ad::ComputerOnDc>>);

/// What every DC holds of the sweep's computers, read once before the hosts are probed.
#[derive(Debug, Default)]
pub struct DcEvidence {
    /// Per DC.
    pub dcs: Vec<DcReading>,
    /// Why some DCs could not be read or found, for the log.
    pub problems: Vec<String>,
    /// The PDC emulator (`fSMORoleOwner` of the domain object), by DNS name.
    pub pdc: Option<String>,
}

impl DcEvidence {
    /// The readings for computer `name` (any case, without `$`), one per DC.
    pub fn for_computer(&self, name: &str) -> Vec<DcAccount> {
        let key = name.trim().trim_end_matches('$').to_ascii_uppercase();
        self.dcs
            .iter()
            .map(|(dc, _, accounts)| DcAccount {
                dc: dc.clone(),
                state: match accounts {
                    None => DcAccountState::Unknown,
                    Some(map) => match map.get(&key) {
                        Some(c) => DcAccountState::Present {
                            pwd_last_set: c.pwd_last_set,
                            pwd_last_set_utc: ad::filetime_display(c.pwd_last_set),
                            disabled: c.disabled,
                        },
                        None => DcAccountState::Missing,
                    },
                },
            })
            .collect()
    }

    /// The URL of DC `name` (`dc1`, `DC1`, `dc1.lab.test`), when it was read.
    pub fn url_of(&self, name: &str) -> Option<String> {
        self.find(name).map(|(_, url, _)| url.clone())
    }

    /// The DNS name (as the DC itself gives it) of DC `name`, when it was read.
    pub fn dns_name_of(&self, name: &str) -> Option<String> {
        self.find(name)
            .map(|(dc, _, _)| dc.clone())
            .filter(|dc| !dc.contains("://"))
    }

    fn find(&self, name: &str) -> Option<&DcReading> {
        // `dc1` and `dc1.lab.test` name one DC; two FQDNs must be equal.
        let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
        let fqdns = |dc: &str| dc.contains('.') && name.contains('.');
        self.dcs.iter().find(|(dc, _, _)| {
            dc.eq_ignore_ascii_case(name) || (!fqdns(dc) && short(dc) == short(name))
        })
    }
}

/// Reads the accounts of `computers` from every DC. Never fails: a DC that cannot be read
/// (or found) is recorded as such and the sweep goes on without its evidence.
pub async fn read_evidence(access: &DcAccess, computers: &[String]) -> DcEvidence {
    let mut problems = verify_credentials(access).await;
    if read_refused(access).is_some() {
        return DcEvidence {
            problems,
            ..DcEvidence::default()
        };
    }
    let dcs = if access.dcs.is_empty() {
        match ad::discover_dcs(&access.read).await {
            Ok(found) if !found.is_empty() => found,
            Ok(_) => {
                problems.push(format!(
                    "no DC found in AD through {}; reading that DC only",
                    access.read.url
                ));
                vec![access.read.url.clone()]
            }
            Err(e) => {
                problems.push(format!(
                    "DC discovery failed ({e}); reading {} only",
                    access.read.url
                ));
                vec![access.read.url.clone()]
            }
        }
    } else {
        access.dcs.clone()
    };
    let read: Vec<DcAccounts> = ad::computers_on_dcs(&access.read, &dcs, computers).await;
    // The PDC emulator from the domain object's fSMORoleOwner (MS-ADTS 3.1.1.1.11).
    let pdc = match ad::pdc_role_owner(&access.read).await {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("PDC role owner not read ({e})"));
            None
        }
    };
    let dcs = read
        .into_iter()
        .map(|r| {
            let name = r.dns_host_name.clone().unwrap_or_else(|| r.url.clone());
            let accounts = match r.accounts {
                Ok(map) => Some(map),
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            };
            (name, r.url, accounts)
        })
        .collect();
    DcEvidence { dcs, problems, pdc }
}

/// [`playbooks::Directory`] over LDAPS as the repair account.
#[derive(Debug)]
pub struct LdapDirectory {
    /// Settings (TLS, timeouts) and the DC of `--ldap`.
    pub access: DcAccess,
    /// The DCs read at the start of the sweep (to find a DC's URL by its name).
    pub evidence: Arc<DcEvidence>,
}

impl LdapDirectory {
    /// The settings to write on `dc` (by name, else the `--ldap` DC) bound as the repair
    /// account.
    fn repair_account_on(&self, dc: &str) -> Result<AdConfig, DirectoryError> {
        let url = self
            .evidence
            .url_of(dc)
            .unwrap_or_else(|| self.access.read.url.clone());
        let cred = self.access.reset_as.as_ref().ok_or_else(|| {
            DirectoryError::NotConfigured(
                "no repair account to bind as (--repair-user or trustsweep_repair_user)".into(),
            )
        })?;
        // A repair account a DC or two hosts refused is not bound with again.
        if let Some(n) = crate::credential_gate::Gates::global()
            .gate(&cred.user, &cred.password)
            .and_then(|g| g.not_used())
        {
            return Err(DirectoryError::Refused(n.message()));
        }
        Ok(AdConfig {
            bind_user: cred.user.clone(),
            bind_password: cred.password.clone(),
            ..self.access.read.for_dc(url)
        })
    }

    /// A DC write as the repair account: `act` reads and writes `computer` on `dc` (see
    /// [`Self::repair_account_on`]) and says what it did; the answer adds on which DC and
    /// as whom (`… on ldaps://dc as repair`).
    fn as_repair_account<F, Fut>(
        &self,
        dc: &str,
        computer: &str,
        act: F,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send
    where
        F: FnOnce(AdConfig, String) -> Fut + Send,
        Fut: Future<Output = Result<String, DirectoryError>> + Send,
    {
        let cfg = self.repair_account_on(dc);
        let computer = computer.to_string();
        async move {
            let cfg = cfg?;
            let by = format!("on {} as {}", cfg.url, cfg.bind_user);
            let done = act(cfg, computer).await?;
            Ok(format!("{done} {by}"))
        }
    }
}

impl playbooks::Directory for LdapDirectory {
    fn restore_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send {
        self.as_repair_account(dc, computer, |cfg, computer| async move {
            let facts = ad::restore_facts(&cfg, &computer)
                .await
                .map_err(directory_error)?;
            // Read again as the repair account just before the write: the plan's preflight
            // may be minutes old.
            let verdict = facts.verdict(&computer);
            let Some(deleted) = facts.deleted.filter(|_| verdict.restorable) else {
                return Err(DirectoryError::Refused(format!(
                    "{}: {}",
                    cfg.url, verdict.reason
                )));
            };
            let to = ad::restore_deleted(&cfg, &deleted)
                .await
                .map_err(directory_error)?;
            Ok(format!("{} restored to {to}", deleted.dn))
        })
    }

    fn reset_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send {
        self.as_repair_account(dc, computer, |cfg, computer| async move {
            let dn = ad::reset_computer_account_randomly(&cfg, &computer)
                .await
                .map_err(directory_error)?;
            Ok(format!("{dn} reset"))
        })
    }

    fn enable_computer_account(
        &mut self,
        dc: &str,
        computer: &str,
    ) -> impl Future<Output = Result<String, DirectoryError>> + Send {
        self.as_repair_account(dc, computer, |cfg, computer| async move {
            let Some(account) = ad::read_computer(&cfg, &computer)
                .await
                .map_err(directory_error)?
            else {
                return Err(DirectoryError::Refused(format!(
                    "{} holds no computer account {computer}$",
                    cfg.url
                )));
            };
            let uac = account.user_account_control & !ad::UAC_ACCOUNTDISABLE;
            ad::set_user_account_control(&cfg, &account.dn, uac)
                .await
                .map_err(directory_error)?;
            Ok(format!("{} enabled", account.dn))
        })
    }
}

/// The rejoin preflight (issue 11, DOMAIN.md "Repairing it"): for each host that a plan
/// could rejoin, whether `Add-Computer` with its repair account will be allowed to reuse
/// the computer object (KB5020276), read over LDAPS before anything is changed. A host the
/// DCs could not tell about gets no entry, so no rejoin. `hosts` are (inventory name,
/// computer name, repair account as written).
pub async fn rejoin_preflights(
    access: &DcAccess,
    hosts: &[(String, String, String)],
) -> BTreeMap<String, playbooks::RejoinPreflight> {
    let mut joiners: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    if let Some(why) = read_refused(access) {
        tracing::warn!("rejoin preflights not read: {why}");
        return out;
    }
    for (host, computer, repair_user) in hosts {
        let sam = account_name(repair_user);
        if !joiners.contains_key(&sam) {
            let sid = match ad::read_account(&access.read, &sam).await {
                Ok(Some(a)) => a.object_sid,
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(host = %host, "rejoin preflight: cannot read {sam}: {e}");
                    None
                }
            };
            joiners.insert(sam.clone(), sid);
        }
        let joiner = joiners.get(&sam).cloned().flatten();
        let verdict = match ad::reuse_facts(&access.read, computer).await {
            Ok(Some(facts)) => facts.verdict(joiner.as_deref()),
            // No object anywhere: the join creates a new one (in the default container).
            Ok(None) => ad::ReuseVerdict {
                allowed: true,
                reason: format!("no computer object {computer} exists, so the join creates a new one in the default computers container (move it back to its OU and re-add its groups)"),
                ou: None,
            },
            Err(e) => {
                tracing::warn!(host = %host, "rejoin preflight failed: {e}");
                continue;
            }
        };
        out.insert(
            host.to_ascii_lowercase(),
            playbooks::RejoinPreflight {
                join_allowed: verdict.allowed,
                reason: verdict.reason,
                ou: verdict.ou,
            },
        );
    }
    out
}

/// The Recycle Bin preflight (issue 11, DOMAIN.md "Why a trust breaks"): for each host
/// whose computer account is gone, whether the DC of `--ldap` holds it in the AD Recycle Bin
/// with its password, read before anything is changed. A host the DC could not tell about
/// gets no entry, so no restore. `hosts` are (inventory name, computer name).
pub async fn restore_preflights(
    access: &DcAccess,
    evidence: &DcEvidence,
    hosts: &[(String, String)],
) -> BTreeMap<String, playbooks::RestorePreflight> {
    // The restore is done where it was read, and the member is pinned there: the DC's DNS
    // name as it gives it (the pin needs a name, not a URL).
    let dc = evidence
        .dcs
        .iter()
        .find(|(_, url, _)| url.eq_ignore_ascii_case(&access.read.url))
        .map(|(name, _, _)| name.clone())
        .filter(|name| !name.contains("://"));
    let mut out = BTreeMap::new();
    if let Some(why) = read_refused(access) {
        tracing::warn!("Recycle Bin preflights not read: {why}");
        return out;
    }
    for (host, computer) in hosts {
        match ad::restore_facts(&access.read, computer).await {
            Ok(facts) => {
                let verdict = facts.verdict(computer);
                out.insert(
                    host.to_ascii_lowercase(),
                    playbooks::RestorePreflight {
                        restorable: verdict.restorable,
                        reason: verdict.reason,
                        dc: dc.clone(),
                    },
                );
            }
            Err(e) => tracing::warn!(host = %host, "Recycle Bin preflight failed: {e}"),
        }
    }
    out
}

/// An AD client error as the playbooks' [`DirectoryError`]: the DC's refusals apart from
/// a DC that could not be used.
fn directory_error(e: ad::AdError) -> DirectoryError {
    match e {
        ad::AdError::AccessDenied { .. }
        | ad::AdError::NotFound { .. }
        | ad::AdError::PasswordRejected { .. }
        | ad::AdError::Ldap { .. } => DirectoryError::Refused(e.to_string()),
        _ => DirectoryError::Unavailable(e.to_string()),
    }
}

/// `LAB\user`, `user@lab.test` or `user` → `user`.
fn account_name(spec: &str) -> String {
    let s = spec.rsplit('\\').next().unwrap_or(spec);
    s.split('@').next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_refused_bind_is_definitive_and_an_unreachable_dc_decides_nothing() {
        let refused = ad::AdError::BindFailed {
            dc: "dc1".into(),
            user: "LAB\\svc".into(),
            reason: "bad user name or password (invalid credentials: 80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 52e, v4563)".into(),
        };
        assert!(matches!(bind_verdict::<()>(Err(refused)), Some(Err(r)) if r.contains("52e")));
        let unreachable = ad::AdError::Connect {
            dc: "dc1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(bind_verdict::<()>(Err(unreachable)), None);
        // Anything after the bind means the bind was accepted.
        let after_bind = ad::AdError::NotFound {
            dc: "dc1".into(),
            what: "base DN".into(),
        };
        assert_eq!(bind_verdict::<()>(Err(after_bind)), Some(Ok(())));
        assert_eq!(bind_verdict(Ok(1)), Some(Ok(())));
    }
}
