//! The domain's DCs and what each of them holds of a set of computer accounts: the
//! DC-side evidence of a sweep. Replication lag shows as DCs disagreeing on a computer's
//! `pwdLastSet` (DOMAIN.md, "What a fleet view adds"); reading it is read-only, unlike a
//! per-DC `Test-ComputerSecureChannel -Server` run on the member, which asks Netlogon to
//! use that DC.

use std::collections::BTreeMap;

use ldap3::Scope as LdapScope;

use super::codec::{computer_sam, decode_sid};
use super::conn::{connect, first, first_bytes, first_u64, Session, Target};
use super::{timed, AdConfig, AdError, UAC_ACCOUNTDISABLE};

/// `userAccountControl` bit SERVER_TRUST_ACCOUNT: a domain controller's computer account.
const UAC_SERVER_TRUST_ACCOUNT: u32 = 0x2000;

/// Names per search: an OR filter of this many `sAMAccountName` terms stays far below
/// AD's `MaxQueryDuration` and filter-size limits.
const NAMES_PER_SEARCH: usize = 100;

/// A computer account as one DC holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputerOnDc {
    /// distinguishedName.
    pub dn: String,
    /// `pwdLastSet` (FILETIME; 0 when never set).
    pub pwd_last_set: u64,
    /// ACCOUNTDISABLE is set.
    pub disabled: bool,
    /// `userAccountControl`.
    pub user_account_control: u32,
    /// objectSid (`S-1-5-21-…`).
    pub object_sid: Option<String>,
}

/// What one DC holds of the computers asked about.
#[derive(Debug)]
pub struct DcAccounts {
    /// The DC as it was reached (its URL).
    pub url: String,
    /// The DC's own DNS name from its rootDSE (`dnsHostName`), when it answered: the name
    /// members print as `Trusted DC Name`.
    pub dns_host_name: Option<String>,
    /// By computer name in upper case without `$` (`WS0001`); a computer the DC does not
    /// hold is absent. `Err` when the DC could not be read.
    pub accounts: Result<BTreeMap<String, ComputerOnDc>, AdError>,
}

/// The URLs of the domain's DCs, found in AD: computer objects with SERVER_TRUST_ACCOUNT
/// under `defaultNamingContext`, each as `scheme://dNSHostName:port` with the scheme and
/// port of `cfg.url` (so the certificate is checked against the DC's own name). The DC
/// of `cfg.url` is asked.
pub async fn discover_dcs(cfg: &AdConfig) -> Result<Vec<String>, AdError> {
    let target = Target::parse(&cfg.url)?;
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "DC discovery", async {
        let domain = s.root_dse("defaultNamingContext").await?;
        let filter = format!(
            "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:={UAC_SERVER_TRUST_ACCOUNT}))"
        );
        let found = s.search_small(&domain, LdapScope::Subtree, &filter, &["dNSHostName"]).await?.unwrap_or_default();
        let scheme = if target.ldaps { "ldaps" } else { "ldap" };
        let mut urls: Vec<String> = found
            .iter()
            .filter_map(|e| first(e, "dNSHostName"))
            .map(|h| format!("{scheme}://{}:{}", h.to_ascii_lowercase(), target.port))
            .collect();
        urls.sort();
        urls.dedup();
        Ok(urls)
    })
    .await;
    s.close().await;
    out
}

/// The PDC emulator of the domain of `cfg.url`: the `fSMORoleOwner` of the domain object
/// (MS-ADTS 3.1.1.1.11: the DN of the role owner's `nTDSDSA` object, `CN=NTDS
/// Settings,CN=<DC>,CN=Servers,…`), whose parent server object holds the DC's `dNSHostName`.
/// Lower case; `None` when the domain object names no owner. Read-only.
pub async fn pdc_role_owner(cfg: &AdConfig) -> Result<Option<String>, AdError> {
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "PDC role owner read", async {
        let domain = s.root_dse("defaultNamingContext").await?;
        let head = s
            .search_small(
                &domain,
                LdapScope::Base,
                "(objectClass=*)",
                &["fSMORoleOwner"],
            )
            .await?
            .unwrap_or_default();
        let Some(owner) = head.iter().find_map(|e| first(e, "fSMORoleOwner")) else {
            return Ok(None);
        };
        // The server object is the nTDSDSA object's parent.
        let Some((_, server)) = owner.split_once(',') else {
            return Ok(None);
        };
        let found = s
            .search_small(server, LdapScope::Base, "(objectClass=*)", &["dNSHostName"])
            .await?
            .unwrap_or_default();
        Ok(found
            .iter()
            .find_map(|e| first(e, "dNSHostName"))
            .map(|h| h.to_ascii_lowercase()))
    })
    .await;
    s.close().await;
    out
}

/// Reads the accounts of `names` (computer names, with or without `$`, any case) from
/// every DC in `dc_urls` at once, one connection per DC, with the credentials and TLS
/// settings of `cfg`. Every DC gets an entry, in the order given.
pub async fn computers_on_dcs(
    cfg: &AdConfig,
    dc_urls: &[String],
    names: &[String],
) -> Vec<DcAccounts> {
    let mut wanted: Vec<String> = names
        .iter()
        .map(|n| n.trim().trim_end_matches('$').to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, url) in dc_urls.iter().enumerate() {
        let dc_cfg = cfg.for_dc(url.clone());
        let wanted = wanted.clone();
        tasks.spawn(async move { (i, read_dc(&dc_cfg, &wanted).await) });
    }
    let mut out: Vec<Option<DcAccounts>> = dc_urls.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, r)) = joined {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(r);
            }
        }
    }
    dc_urls
        .iter()
        .zip(out)
        .map(|(url, r)| {
            r.unwrap_or_else(|| DcAccounts {
                url: url.clone(),
                dns_host_name: None,
                accounts: Err(AdError::Ldap {
                    dc: url.clone(),
                    operation: "computer read",
                    message: "task failed".into(),
                }),
            })
        })
        .collect()
}

/// One computer account as the DC of `cfg.url` holds it (`None` when it holds none).
pub async fn find_computer(cfg: &AdConfig, name: &str) -> Result<Option<ComputerOnDc>, AdError> {
    let key = name.trim().trim_end_matches('$').to_ascii_uppercase();
    let read = read_dc(cfg, std::slice::from_ref(&key)).await;
    Ok(read.accounts?.remove(&key))
}

async fn read_dc(cfg: &AdConfig, wanted: &[String]) -> DcAccounts {
    let url = cfg.url.clone();
    let mut s = match connect(cfg).await {
        Ok(s) => s,
        Err(e) => {
            return DcAccounts {
                url,
                dns_host_name: None,
                accounts: Err(e),
            }
        }
    };
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let read = timed(dc, after, "computer read", async {
        let name = s.root_dse("dnsHostName").await.ok();
        let domain = s.root_dse("defaultNamingContext").await?;
        let mut found = BTreeMap::new();
        for chunk in wanted.chunks(NAMES_PER_SEARCH) {
            read_chunk(&mut s, &domain, chunk, &mut found).await?;
        }
        Ok((name, found))
    })
    .await;
    s.close().await;
    match read {
        Ok((name, found)) => DcAccounts {
            url,
            dns_host_name: name,
            accounts: Ok(found),
        },
        Err(e) => DcAccounts {
            url,
            dns_host_name: None,
            accounts: Err(e),
        },
    }
}

async fn read_chunk(
    s: &mut Session,
    domain: &str,
    names: &[String],
    found: &mut BTreeMap<String, ComputerOnDc>,
) -> Result<(), AdError> {
    if names.is_empty() {
        return Ok(());
    }
    let terms: String = names
        .iter()
        .map(|n| format!("(sAMAccountName={}$)", ldap3::ldap_escape(n.as_str())))
        .collect();
    let filter = format!("(&(objectCategory=computer)(|{terms}))");
    let entries = s
        .search_small(
            domain,
            LdapScope::Subtree,
            &filter,
            &[
                "sAMAccountName",
                "pwdLastSet",
                "userAccountControl",
                "objectSid",
            ],
        )
        .await?
        .unwrap_or_default();
    for e in entries {
        let Some(sam) = first(&e, "sAMAccountName") else {
            continue;
        };
        let uac = u32::try_from(first_u64(&e, "userAccountControl").unwrap_or(0)).unwrap_or(0);
        found.insert(
            sam.trim_end_matches('$').to_ascii_uppercase(),
            ComputerOnDc {
                dn: e.dn.clone(),
                // A computer without pwdLastSet has never had a password: 0, as AD shows it.
                pwd_last_set: first_u64(&e, "pwdLastSet").unwrap_or(0),
                disabled: uac & UAC_ACCOUNTDISABLE != 0,
                user_account_control: uac,
                object_sid: first_bytes(&e, "objectSid").as_deref().and_then(decode_sid),
            },
        );
    }
    Ok(())
}

/// Length of the random password [`reset_computer_account_randomly`] sets: Windows
/// members use 120 characters for their machine passwords.
const RESET_PASSWORD_LEN: usize = 120;

/// The DC-side "Reset Account" of computer `name` (`WS0001`, with or without `$`) on the
/// DC of `cfg.url`, bound as `cfg.bind_user`: finds the object, then replaces its password
/// with a random one that nobody learns (see [`super::reset_computer_account`]). Returns
/// the object's DN. The member stays broken until it is rejoined.
pub async fn reset_computer_account_randomly(
    cfg: &AdConfig,
    name: &str,
) -> Result<String, AdError> {
    let Some(found) = find_computer(cfg, name).await? else {
        return Err(AdError::NotFound {
            dc: cfg.url.clone(),
            what: format!("computer account {}", computer_sam(name)),
        });
    };
    let password = random_password(RESET_PASSWORD_LEN);
    super::reset_computer_account(cfg, &found.dn, &password).await?;
    Ok(found.dn)
}

/// A random password from the OS generator: letters, digits and punctuation, so that any
/// domain password policy's complexity rule is met.
fn random_password(len: usize) -> secrecy::SecretString {
    use rand::RngExt as _;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+-=.,:;?@_~";
    let mut rng = rand::rand_core::UnwrapErr(rand::rngs::SysRng);
    let mut s: String = (0..len.saturating_sub(4))
        .map(|_| {
            CHARS
                .get(rng.random_range(0..CHARS.len()))
                .map_or('x', |c| char::from(*c))
        })
        .collect();
    // One of each class, whatever the draw.
    s.push_str("Aa1!");
    secrecy::SecretString::from(s)
}
