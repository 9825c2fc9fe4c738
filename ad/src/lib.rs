//! trustsweep's Active Directory client over LDAPS, read and write: computer objects of
//! an OU (`inventory` turns them into hosts), LAPS passwords, per-DC `pwdLastSet`
//! (replication lag), DC discovery and the PDC, the rejoin preflight of the account-reuse
//! rules, the DC-side "Reset Account", re-enables and Recycle Bin restores, and the
//! directory administration the lab needs to play the DCs' and devices' parts.
//!
//! Every connection is encrypted before the password leaves: `ldaps://` (port 636) or
//! `ldap://` with StartTLS; a plain `ldap://` simple bind is refused
//! ([`AdError::PlainLdapRefused`]), and so is an empty password (AD would take it as an
//! anonymous bind). The DC's certificate is verified against the system roots plus
//! [`AdConfig::ca_file`], for the host name of the URL; [`AdConfig::connect_to`] connects
//! to another address (a DC reached by IP, a name not in DNS) while still verifying that
//! name.
//!
//! Each call opens its own session (TCP, TLS, simple bind), does its work and unbinds.
//!
//! ```no_run
//! # async fn f() -> Result<(), ad::AdError> {
//! use ad::{enumerate_computers, AdConfig};
//! let mut cfg = AdConfig::new(
//!     "ldaps://dc01.lab.test",
//!     "svc-sweep@lab.test",
//!     secrecy::SecretString::from(std::env::var("TRUSTSWEEP_LDAP_PASSWORD").unwrap_or_default()),
//!     "OU=Workstations,DC=lab,DC=test",
//! );
//! cfg.ca_file = Some("/etc/trustsweep/lab-ca.pem".into());
//! let computers = enumerate_computers(&cfg).await?;
//! println!("{} computers", computers.len());
//! # Ok(()) }
//! ```

mod admin;
mod codec;
mod conn;
mod dcs;
mod error;
mod laps;
mod restore;
mod reuse;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Mod, Scope as LdapScope, SearchEntry};
use secrecy::{ExposeSecret as _, SecretString};

pub use admin::*;
pub use codec::{decode_sid, filetime_display, filetime_to_system_time, UAC_ACCOUNTDISABLE};
pub use dcs::{
    computers_on_dcs, discover_dcs, find_computer, pdc_role_owner, reset_computer_account_randomly,
    ComputerOnDc, DcAccounts,
};
pub use error::AdError;
pub use laps::{read_laps, read_laps_by_name, write_laps, LapsSecret, LapsSource};
pub use restore::{
    recycle_bin_enabled, restore_deleted, restore_facts, DeletedComputer, RestoreFacts,
    RestoreVerdict,
};
pub use reuse::{owner_sid, reuse_facts, set_owner, ReuseFacts, ReuseVerdict};

use codec::{computer_filter, encode_unicode_pwd};

/// The pure parsers of values read from the directory, for the fuzz targets (`fuzz/`,
/// RELIABILITY.md "Fuzzing"); not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::codec::{bind_failure_reason, rdn_parts, split_dn};
    pub use crate::laps::parse_windows_laps;
}
pub use codec::{group_name, ou_path, parent_dn};
use conn::{connect, first, first_bytes, first_u64, on_dc, result_message, Session};

/// AD's default `MaxPageSize`: a page larger than this is cut to it by the DC.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How deep below the base DN a search goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// The base and everything below it.
    #[default]
    Subtree,
    /// Direct children of the base only.
    OneLevel,
}

/// How to reach a DC and what to read.
#[derive(Debug, Clone)]
pub struct AdConfig {
    /// `ldaps://dc01.lab.test[:636]`, or `ldap://dc01.lab.test[:389]` with `starttls`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding (required for
    /// `ldap://`; ignored for `ldaps://`).
    pub starttls: bool,
    /// Extra CA certificates (PEM) to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Connect to this address (port from the URL) instead of resolving the URL's host;
    /// the certificate is still verified for the URL's host name.
    pub connect_to: Option<IpAddr>,
    /// The account to bind as: `user@domain` (UPN), `DOMAIN\user` or a DN.
    pub bind_user: String,
    /// Its password.
    pub bind_password: SecretString,
    /// Where to search: the OU (or the domain) whose computers make the inventory.
    pub base_dn: String,
    /// An extra LDAP filter AND'ed with `(objectCategory=computer)`, e.g.
    /// `(operatingSystem=Windows 11*)`.
    pub filter: Option<String>,
    /// Subtree (default) or one level.
    pub scope: Scope,
    /// Also list disabled computer accounts (`userAccountControl` bit 0x2).
    pub include_disabled: bool,
    /// Entries per page of the paged search (1..=1000; AD caps pages at 1000).
    pub page_size: u32,
    /// Limit for TCP connect, TLS handshake and bind, each.
    pub connect_timeout: Duration,
    /// Limit for one whole operation (a complete paged search, a LAPS read, a reset).
    pub op_timeout: Duration,
}

impl AdConfig {
    /// A configuration with the defaults: certificate checked against the system roots,
    /// subtree scope, enabled accounts only, pages of 1000, 10 s to connect, 5 min per
    /// operation.
    pub fn new(
        url: impl Into<String>,
        bind_user: impl Into<String>,
        bind_password: SecretString,
        base_dn: impl Into<String>,
    ) -> AdConfig {
        AdConfig {
            url: url.into(),
            starttls: false,
            ca_file: None,
            connect_to: None,
            bind_user: bind_user.into(),
            bind_password,
            base_dn: base_dn.into(),
            filter: None,
            scope: Scope::Subtree,
            include_disabled: false,
            page_size: MAX_PAGE_SIZE,
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(300),
        }
    }

    /// The same settings for another DC (its own URL, resolved by name).
    pub fn for_dc(&self, url: impl Into<String>) -> AdConfig {
        let url = url.into();
        let connect_to = if url == self.url {
            self.connect_to
        } else {
            None
        };
        AdConfig {
            url,
            connect_to,
            ..self.clone()
        }
    }
}

/// A computer object as read from AD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdComputer {
    /// `cn`.
    pub name: String,
    /// `sAMAccountName` (with the trailing `$`).
    pub sam_account_name: String,
    /// `dNSHostName`, if set.
    pub dns_host_name: Option<String>,
    /// `objectSid` as `S-1-5-21-…`.
    pub object_sid: Option<String>,
    /// `pwdLastSet` (FILETIME; 0 = never set): see [`filetime_display`].
    pub pwd_last_set: Option<u64>,
    /// `lastLogonTimestamp` (FILETIME; replicated, up to ~14 days behind).
    pub last_logon_timestamp: Option<u64>,
    /// `operatingSystem`.
    pub operating_system: Option<String>,
    /// `operatingSystemVersion`.
    pub operating_system_version: Option<String>,
    /// The object's DN.
    pub distinguished_name: String,
    /// The parent container (OU) DN.
    pub ou: String,
    /// `userAccountControl`.
    pub user_account_control: u32,
    /// ACCOUNTDISABLE is set.
    pub disabled: bool,
}

impl AdComputer {
    /// `pwdLastSet` for people (`2025-11-23T20:37:04Z`, `never`).
    pub fn pwd_last_set_display(&self) -> String {
        self.pwd_last_set
            .map(filetime_display)
            .unwrap_or_else(|| "unknown".into())
    }

    /// `pwdLastSet` as a time.
    pub fn pwd_last_set_time(&self) -> Option<SystemTime> {
        self.pwd_last_set.and_then(filetime_to_system_time)
    }

    /// `lastLogonTimestamp` for people.
    pub fn last_logon_display(&self) -> String {
        self.last_logon_timestamp
            .map(filetime_display)
            .unwrap_or_else(|| "never".into())
    }

    /// The name to reach it by: `dNSHostName`, else `cn`.
    pub fn host_name(&self) -> &str {
        self.dns_host_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.name)
    }

    fn from_entry(entry: &SearchEntry) -> AdComputer {
        let dn = entry.dn.clone();
        let uac = first_u64(entry, "userAccountControl")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        let name = first(entry, "cn")
            .or_else(|| {
                codec::split_dn(&dn)
                    .first()
                    .and_then(|r| codec::rdn_parts(r))
                    .map(|(_, v)| v)
            })
            .unwrap_or_default();
        AdComputer {
            sam_account_name: first(entry, "sAMAccountName").unwrap_or_else(|| format!("{name}$")),
            name,
            dns_host_name: first(entry, "dNSHostName"),
            object_sid: first_bytes(entry, "objectSid").and_then(|b| decode_sid(&b)),
            pwd_last_set: first_u64(entry, "pwdLastSet"),
            last_logon_timestamp: first_u64(entry, "lastLogonTimestamp"),
            operating_system: first(entry, "operatingSystem"),
            operating_system_version: first(entry, "operatingSystemVersion"),
            ou: parent_dn(&dn).unwrap_or_default(),
            distinguished_name: dn,
            user_account_control: uac,
            disabled: uac & UAC_ACCOUNTDISABLE != 0,
        }
    }
}

const COMPUTER_ATTRS: &[&str] = &[
    "cn",
    "sAMAccountName",
    "dNSHostName",
    "objectSid",
    "pwdLastSet",
    "lastLogonTimestamp",
    "operatingSystem",
    "operatingSystemVersion",
    "userAccountControl",
];

/// The result of a paged enumeration.
#[derive(Debug, Clone)]
pub struct Enumeration {
    /// The computers, in the DC's order.
    pub computers: Vec<AdComputer>,
    /// How many pages the DC sent.
    pub pages: usize,
}

/// The computer objects under `cfg.base_dn`: a paged search (pages of
/// `cfg.page_size` ≤ 1000) for `(objectCategory=computer)` AND `cfg.filter`, without
/// disabled accounts unless `cfg.include_disabled`.
pub async fn enumerate_computers(cfg: &AdConfig) -> Result<Vec<AdComputer>, AdError> {
    Ok(enumerate(cfg).await?.computers)
}

/// [`enumerate_computers`], also saying how many pages it took.
pub async fn enumerate(cfg: &AdConfig) -> Result<Enumeration, AdError> {
    let filter = computer_filter(cfg.filter.as_deref(), cfg.include_disabled);
    if ldap3::parse_filter(&filter).is_err() {
        return Err(AdError::InvalidConfig {
            message: format!(
                "the LDAP filter {:?} is not valid (RFC 4515), e.g. (operatingSystem=Windows 11*)",
                cfg.filter.as_deref().unwrap_or("")
            ),
        });
    }
    if cfg.base_dn.trim().is_empty() {
        return Err(AdError::InvalidConfig {
            message: "no base DN / OU given (--ou)".into(),
        });
    }
    let page_size = i32::try_from(cfg.page_size.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1000);
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(
        dc,
        after,
        "paged search",
        paged_search(&mut s, cfg, &filter, page_size),
    )
    .await;
    s.close().await;
    out
}

async fn paged_search(
    s: &mut Session,
    cfg: &AdConfig,
    filter: &str,
    page_size: i32,
) -> Result<Enumeration, AdError> {
    let scope = match cfg.scope {
        Scope::Subtree => LdapScope::Subtree,
        Scope::OneLevel => LdapScope::OneLevel,
    };
    let mut computers = Vec::new();
    let mut cookie: Vec<u8> = Vec::new();
    let mut pages = 0usize;
    loop {
        let control = PagedResults {
            size: page_size,
            cookie: std::mem::take(&mut cookie),
        };
        let res = s
            .ldap
            .with_controls(control)
            .search(&cfg.base_dn, scope, filter, COMPUTER_ATTRS.to_vec())
            .await
            .map_err(|e| s.op_error("search", e))?;
        pages += 1;
        let ldap3::SearchResult(entries, result) = res;
        match result.rc {
            0 => {}
            32 => {
                return Err(AdError::NotFound {
                    dc: s.dc.clone(),
                    what: format!("base DN {}", cfg.base_dn),
                })
            }
            _ => {
                return Err(AdError::Ldap {
                    dc: s.dc.clone(),
                    operation: "search",
                    message: result_message(&result),
                })
            }
        }
        computers.extend(
            entries
                .into_iter()
                .filter(|e| !e.is_ref() && !e.is_intermediate())
                .map(|e| AdComputer::from_entry(&SearchEntry::construct(e))),
        );
        cookie = result
            .ctrls
            .iter()
            .find_map(|Control(kind, raw)| match kind {
                Some(ControlType::PagedResults) if raw.val.is_some() => {
                    Some(raw.parse::<PagedResults>().cookie)
                }
                _ => None,
            })
            .unwrap_or_default();
        if cookie.is_empty() {
            break;
        }
    }
    tracing::debug!(dc = %s.dc, base = %cfg.base_dn, pages, computers = computers.len(), "AD computers enumerated");
    Ok(Enumeration { computers, pages })
}

pub(crate) async fn timed<T>(
    dc: String,
    after: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, AdError>>,
) -> Result<T, AdError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| AdError::Timeout { dc, what, after })?
}

/// One DC's view of a computer's `pwdLastSet`.
#[derive(Debug)]
pub struct DcPwdLastSet {
    /// The DC (its URL).
    pub dc: String,
    /// `Ok(Some(filetime))`; `Ok(None)` when the computer is not (yet) on that DC;
    /// `Err` when the DC could not be asked.
    pub pwd_last_set: Result<Option<u64>, AdError>,
}

/// Reads `pwdLastSet` of the computer `computer_sam` (`WS0001` or `WS0001$`) from every
/// DC in `dcs` (URLs) at once, with the credentials and TLS settings of `cfg`. The DCs
/// disagreeing is replication lag: see [`pwd_last_set_differs`]. The computer is looked
/// up in each DC's whole domain (`defaultNamingContext`), not only under `cfg.base_dn`.
pub async fn pwd_last_set_per_dc(
    cfg: &AdConfig,
    dcs: &[String],
    computer_sam: &str,
) -> Vec<DcPwdLastSet> {
    let mut sam = computer_sam.trim().to_string();
    if !sam.ends_with('$') {
        sam.push('$');
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, dc) in dcs.iter().enumerate() {
        let dc_cfg = cfg.for_dc(dc.clone());
        let sam = sam.clone();
        tasks.spawn(async move { (i, pwd_last_set_on(&dc_cfg, &sam).await) });
    }
    let mut out: Vec<Option<Result<Option<u64>, AdError>>> = dcs.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, r)) = joined {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(r);
            }
        }
    }
    dcs.iter()
        .zip(out)
        .map(|(dc, r)| DcPwdLastSet {
            dc: dc.clone(),
            pwd_last_set: r.unwrap_or_else(|| {
                Err(AdError::Ldap {
                    dc: dc.clone(),
                    operation: "pwdLastSet read",
                    message: "task failed".into(),
                })
            }),
        })
        .collect()
}

/// `true` when at least two DCs that answered hold different `pwdLastSet` values (or one
/// has the computer and another does not): replication has not caught up.
pub fn pwd_last_set_differs(readings: &[DcPwdLastSet]) -> bool {
    let seen: BTreeSet<Option<u64>> = readings
        .iter()
        .filter_map(|r| r.pwd_last_set.as_ref().ok().copied())
        .collect();
    seen.len() > 1
}

async fn pwd_last_set_on(cfg: &AdConfig, sam: &str) -> Result<Option<u64>, AdError> {
    on_dc(cfg, "pwdLastSet read", async |s| {
        let domain = s.root_dse("defaultNamingContext").await?;
        let found = s.computers_named(&domain, sam, &["pwdLastSet"]).await?;
        // A computer without pwdLastSet has never had a password: 0, as AD shows it.
        Ok(found
            .first()
            .map(|e| first_u64(e, "pwdLastSet").unwrap_or(0)))
    })
    .await
}

/// The DC-side "Reset Account" (ADUC, `dsmod computer -reset`): replaces the computer
/// object's password (`unicodePwd`, the quoted password in UTF-16LE) over the encrypted
/// session, as `cfg.bind_user`, who needs the Reset Password right on the object. The
/// member's own copy no longer matches afterwards: its secure channel stays broken until
/// it is given the same password (or rejoins).
pub async fn reset_computer_account(
    cfg: &AdConfig,
    computer_dn: &str,
    new_password: &SecretString,
) -> Result<(), AdError> {
    if new_password.expose_secret().is_empty() {
        return Err(AdError::InvalidConfig {
            message: "refusing to reset a computer account to an empty password".into(),
        });
    }
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "password reset", async {
        let encoded = encode_unicode_pwd(new_password.expose_secret());
        let attr: &[u8] = b"unicodePwd";
        let values = std::collections::HashSet::from([encoded.as_slice()]);
        let res = s
            .ldap
            .modify(computer_dn, vec![Mod::Replace(attr, values)])
            .await
            .map_err(|e| s.op_error("modify", e))?;
        match res.rc {
            0 => Ok(()),
            32 => Err(AdError::NotFound {
                dc: s.dc.clone(),
                what: format!("computer object {computer_dn}"),
            }),
            50 => Err(AdError::AccessDenied {
                dc: s.dc.clone(),
                user: s.user.clone(),
                action: "reset the password of",
                dn: computer_dn.to_string(),
                hint: "needs the Reset Password right on the computer object",
            }),
            19 | 53 => Err(AdError::PasswordRejected {
                dc: s.dc.clone(),
                dn: computer_dn.to_string(),
                message: result_message(&res),
            }),
            _ => Err(AdError::Ldap {
                dc: s.dc.clone(),
                operation: "password reset",
                message: result_message(&res),
            }),
        }
    })
    .await;
    s.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_ldap_is_refused_before_connecting() {
        // Refused before any connection is attempted (and loopback only, should that change).
        let cfg = AdConfig::new(
            "ldap://127.0.0.1:9",
            "u@lab.test",
            SecretString::from("pw"),
            "DC=lab,DC=test",
        );
        let err = enumerate_computers(&cfg)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("refusing a plain-text LDAP bind to ldap://127.0.0.1:9"),
            "{err}"
        );
        let mut empty = AdConfig::new(
            "ldaps://127.0.0.1:9",
            "u@lab.test",
            SecretString::from(""),
            "DC=lab,DC=test",
        );
        empty.connect_timeout = Duration::from_millis(1);
        let err = enumerate_computers(&empty)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("anonymous bind"), "{err}");
        let mut bad_filter = AdConfig::new(
            "ldaps://127.0.0.1:9",
            "u",
            SecretString::from("pw"),
            "DC=lab,DC=test",
        );
        bad_filter.filter = Some("(cn=x".into());
        let err = enumerate_computers(&bad_filter)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is not valid"), "{err}");
    }
}
