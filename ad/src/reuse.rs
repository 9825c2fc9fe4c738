//! The rejoin preflight: before a member is taken out of the domain, will `Add-Computer`
//! be allowed to take its computer object over again? Since the October 2022 hardening
//! (KB5020276, CVE-2022-38042) a join that finds an existing object fails with 0xaac
//! NERR_AccountReuseBlockedByPolicy unless the joining account created the object
//! (`mS-DS-CreatorSID`), or the object's owner is Domain Admins, Enterprise Admins or the
//! built-in Administrators (or a member of them; EA and BA since March 2023), or the owner
//! is trusted by the "Allow computer account re-use during domain join" policy. A Domain
//! Admin *joining* someone else's object is not listed as an exemption, so it is treated as
//! blocked (DOMAIN.md "Repairing it", revised). Everything here only reads.

use ldap3::controls::RawControl;
use ldap3::{Scope as LdapScope, SearchEntry};

use super::codec::{computer_by_sam, computer_sam, decode_sid};
use super::conn::{connect, first_bytes, on_dc};
use super::{timed, AdConfig, AdError};

/// LDAP_SERVER_SD_FLAGS_OID ([MS-ADTS] 3.1.1.3.4.1.11): which parts of
/// `nTSecurityDescriptor` to return; OWNER_SECURITY_INFORMATION only, which a reader
/// without READ_CONTROL on the whole descriptor may still get.
const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";

/// The SD flags control at OWNER_SECURITY_INFORMATION: reads and writes of
/// `nTSecurityDescriptor` touch its owner only.
fn owner_only() -> RawControl {
    RawControl {
        ctype: SD_FLAGS_OID.to_string(),
        crit: true,
        // SEQUENCE { INTEGER 1 (OWNER_SECURITY_INFORMATION) }
        val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    }
}

/// What the preflight read of one computer object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseFacts {
    /// The object's DN.
    pub dn: String,
    /// Its OU (the parent DN), kept with `Add-Computer -OUPath`.
    pub ou: String,
    /// The owner SID from `nTSecurityDescriptor`, when readable.
    pub owner: Option<String>,
    /// The owner is Domain Admins, Enterprise Admins, built-in Administrators, or a member.
    pub owner_privileged: bool,
    /// `mS-DS-CreatorSID`: set when a non-privileged user created the object through the
    /// machine-account quota.
    pub creator: Option<String>,
}

/// The verdict for one joining account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseVerdict {
    /// `Add-Computer` may reuse the object (or no object exists and it creates one).
    pub allowed: bool,
    /// Why, in words.
    pub reason: String,
    /// The OU to keep (`None` when no object exists).
    pub ou: Option<String>,
}

impl ReuseFacts {
    /// May `joiner` (a SID) reuse this object?
    pub fn verdict(&self, joiner: Option<&str>) -> ReuseVerdict {
        let ou = Some(self.ou.clone());
        if let (Some(c), Some(j)) = (&self.creator, joiner) {
            if c == j {
                return ReuseVerdict {
                    allowed: true,
                    reason: format!("the joining account {j} created {}", self.dn),
                    ou,
                };
            }
        }
        if let Some(c) = &self.creator {
            // Made through the machine-account quota by someone else: only its creator may
            // reuse it, whatever owner the DC wrote (the pessimistic reading).
            return ReuseVerdict {
                allowed: false,
                reason: format!(
                    "{} was created by {c} through the machine-account quota, not by the repair account: Add-Computer would fail with 0xaac (NERR_AccountReuseBlockedByPolicy, KB5020276) after Remove-Computer had disabled it",
                    self.dn
                ),
                ou,
            };
        }
        if self.owner_privileged {
            let owner = self.owner.as_deref().unwrap_or("?");
            return ReuseVerdict {
                allowed: true,
                reason: format!("the owner of {} ({owner}) is Domain Admins, Enterprise Admins, Administrators or a member", self.dn),
                ou,
            };
        }
        let who = match (&self.creator, &self.owner) {
            (Some(c), _) => format!("created by {c}"),
            (None, Some(o)) => format!("owned by {o}"),
            (None, None) => "with an unreadable owner".to_string(),
        };
        ReuseVerdict {
            allowed: false,
            reason: format!(
                "{} is {who}, not by the repair account and not by an admin group: Add-Computer would fail with 0xaac (NERR_AccountReuseBlockedByPolicy, KB5020276) after Remove-Computer had disabled it",
                self.dn
            ),
            ou,
        }
    }
}

/// Reads what the reuse rules need of computer `name` (with or without `$`), as
/// `cfg.bind_user`. `Ok(None)` when the DC holds no such object.
pub async fn reuse_facts(cfg: &AdConfig, name: &str) -> Result<Option<ReuseFacts>, AdError> {
    let sam = computer_sam(name);
    on_dc(cfg, "rejoin preflight read", async |s| {
        let base = s.search_base(cfg).await?;
        let found = s
            .search_with(
                owner_only(),
                "search",
                &base,
                &computer_by_sam(&sam),
                &[
                    "distinguishedName",
                    "mS-DS-CreatorSID",
                    "nTSecurityDescriptor",
                ],
            )
            .await?;
        let Some(e) = found.first() else {
            return Ok(None);
        };
        let dn = e.dn.clone();
        let ou = dn
            .split_once(',')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        let owner = first_bytes(e, "nTSecurityDescriptor")
            .as_deref()
            .and_then(owner_sid);
        let creator = first_bytes(e, "mS-DS-CreatorSID")
            .as_deref()
            .and_then(decode_sid);
        let owner_privileged = match &owner {
            None => false,
            Some(o) if is_admin_group(o) => true,
            Some(o) => {
                // The owner's transitive groups (tokenGroups, a constructed attribute read
                // with a base search on the owner's own object).
                let by_sid = format!("(objectSid={})", sid_filter_value(o).unwrap_or_default());
                let owners = s
                    .search_small(&base, LdapScope::Subtree, &by_sid, &["distinguishedName"])
                    .await?
                    .unwrap_or_default();
                match owners.first().map(|o| o.dn.clone()) {
                    Some(owner_dn) => {
                        let tg = s
                            .search_small(
                                &owner_dn,
                                LdapScope::Base,
                                "(objectClass=*)",
                                &["tokenGroups"],
                            )
                            .await?
                            .unwrap_or_default();
                        tg.iter()
                            .flat_map(all_bytes("tokenGroups"))
                            .filter_map(|b| decode_sid(&b))
                            .any(|g| is_admin_group(&g))
                    }
                    None => false,
                }
            }
        };
        Ok(Some(ReuseFacts {
            dn,
            ou,
            owner,
            owner_privileged,
            creator,
        }))
    })
    .await
}

/// Every value of a binary attribute, wherever ldap3 filed it (values that happen to be
/// valid UTF-8 land among the text attributes).
fn all_bytes(attr: &'static str) -> impl Fn(&SearchEntry) -> Vec<Vec<u8>> {
    move |e| {
        let bin = e
            .bin_attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
            .flat_map(|(_, v)| v.iter().cloned());
        let text = e
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
            .flat_map(|(_, v)| v.iter().map(|t| t.clone().into_bytes()));
        bin.chain(text).collect()
    }
}

/// Domain Admins (…-512), Enterprise Admins (…-519) or built-in Administrators.
fn is_admin_group(sid: &str) -> bool {
    sid == "S-1-5-32-544"
        || (sid.starts_with("S-1-5-21-") && (sid.ends_with("-512") || sid.ends_with("-519")))
}

/// The owner SID of a self-relative SECURITY_DESCRIPTOR ([MS-DTYP] 2.4.6: Revision, Sbz1,
/// Control, then the 32-bit little-endian offset of the owner SID).
pub fn owner_sid(sd: &[u8]) -> Option<String> {
    let offset = usize::try_from(u32::from_le_bytes(sd.get(4..8)?.try_into().ok()?)).ok()?;
    if offset == 0 {
        return None;
    }
    let count = usize::from(*sd.get(offset.checked_add(1)?)?);
    let len = 8usize.checked_add(count.checked_mul(4)?)?;
    decode_sid(sd.get(offset..offset.checked_add(len)?)?)
}

/// A SID as an LDAP filter value: its binary form, every byte escaped (RFC 4515 3).
fn sid_filter_value(sid: &str) -> Option<String> {
    let bytes = encode_sid(sid)?;
    Some(bytes.iter().map(|b| format!("\\{b:02x}")).collect())
}

/// `S-1-5-21-…` → the binary SID ([MS-DTYP] 2.4.2.2): revision, sub-authority count,
/// 48-bit big-endian identifier authority, little-endian sub-authorities.
pub(crate) fn encode_sid(sid: &str) -> Option<Vec<u8>> {
    let mut parts = sid.strip_prefix("S-")?.split('-');
    let revision: u8 = parts.next()?.parse().ok()?;
    let authority: u64 = parts.next()?.parse().ok()?;
    let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let mut bytes = vec![revision, u8::try_from(subs.len()).ok()?];
    bytes.extend_from_slice(authority.to_be_bytes().get(2..)?);
    for s in subs {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    Some(bytes)
}

/// A self-relative security descriptor holding only `owner` ([MS-DTYP] 2.4.6: revision 1,
/// control SE_SELF_RELATIVE, owner at offset 20, no group, SACL or DACL): what a write of
/// `nTSecurityDescriptor` with the SD flags control at OWNER_SECURITY_INFORMATION sends.
pub(crate) fn owner_only_sd(owner: &str) -> Option<Vec<u8>> {
    let sid = encode_sid(owner)?;
    let mut sd = vec![1, 0, 0x00, 0x80];
    sd.extend_from_slice(&20u32.to_le_bytes());
    sd.extend_from_slice(&[0; 12]);
    sd.extend_from_slice(&sid);
    Some(sd)
}

/// Makes `owner` (a SID string) the owner of object `dn`, as `cfg.bind_user` (who needs
/// WRITE_OWNER on it): one modify of `nTSecurityDescriptor` sent with the SD flags control
/// at OWNER_SECURITY_INFORMATION, so the DACL and SACL stay as they are.
pub async fn set_owner(cfg: &AdConfig, dn: &str, owner: &str) -> Result<(), AdError> {
    let Some(sd) = owner_only_sd(owner) else {
        return Err(AdError::Ldap {
            dc: cfg.url.clone(),
            operation: "owner change",
            message: format!("{owner} is not a SID (S-1-5-21-…)"),
        });
    };
    let mods = vec![ldap3::Mod::Replace(
        "nTSecurityDescriptor".as_bytes().to_vec(),
        std::collections::HashSet::from([sd]),
    )];
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "owner change",
        super::admin::ldap(s.ldap.with_controls(owner_only()).modify(dn, mods)),
    )
    .await;
    super::admin::finish(s, res, &[0], "set the owner of", dn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_only_descriptor_reads_back_as_its_owner() {
        let sid = "S-1-5-21-1004336348-1177238915-682003330-1105";
        let sd = owner_only_sd(sid).unwrap();
        assert_eq!(owner_sid(&sd).as_deref(), Some(sid));
        assert_eq!(owner_only_sd("not a sid"), None);
    }

    fn sd_with_owner(owner: &[u8]) -> Vec<u8> {
        let mut sd = vec![1, 0, 0x04, 0x80];
        sd.extend_from_slice(&20u32.to_le_bytes()); // owner at 20
        sd.extend_from_slice(&0u32.to_le_bytes());
        sd.extend_from_slice(&0u32.to_le_bytes());
        sd.extend_from_slice(&0u32.to_le_bytes());
        sd.extend_from_slice(owner);
        sd
    }

    #[test]
    fn owner_of_a_self_relative_descriptor() {
        // S-1-5-21-1-2-3-512 (Domain Admins)
        let mut sid = vec![1, 5, 0, 0, 0, 0, 0, 5];
        for s in [21u32, 1, 2, 3, 512] {
            sid.extend_from_slice(&s.to_le_bytes());
        }
        assert_eq!(
            owner_sid(&sd_with_owner(&sid)).as_deref(),
            Some("S-1-5-21-1-2-3-512")
        );
        assert_eq!(
            sid_filter_value("S-1-5-21-1-2-3-512").unwrap().len(),
            sid.len() * 3
        );
        // Truncated or absent owners are None, never a panic.
        assert_eq!(owner_sid(&sd_with_owner(&sid[..10])), None);
        assert_eq!(owner_sid(&[1, 0]), None);
        assert_eq!(owner_sid(&[0; 20]), None);
        assert!(
            is_admin_group("S-1-5-21-1-2-3-512")
                && is_admin_group("S-1-5-32-544")
                && !is_admin_group("S-1-5-21-1-2-3-1105")
        );
    }

    #[test]
    fn verdicts() {
        let facts = |owner: &str, privileged: bool, creator: Option<&str>| ReuseFacts {
            dn: "CN=WS1,OU=W,DC=lab,DC=test".into(),
            ou: "OU=W,DC=lab,DC=test".into(),
            owner: Some(owner.into()),
            owner_privileged: privileged,
            creator: creator.map(str::to_string),
        };
        assert!(
            facts("S-1-5-21-1-2-3-512", true, None)
                .verdict(Some("S-1-5-21-1-2-3-1105"))
                .allowed
        );
        let mine = facts("S-1-5-21-1-2-3-1105", false, Some("S-1-5-21-1-2-3-1105"));
        assert!(mine.verdict(Some("S-1-5-21-1-2-3-1105")).allowed);
        let theirs = mine.verdict(Some("S-1-5-21-1-2-3-1106"));
        assert!(
            !theirs.allowed && theirs.reason.contains("0xaac"),
            "{}",
            theirs.reason
        );
        assert_eq!(theirs.ou.as_deref(), Some("OU=W,DC=lab,DC=test"));
    }
}
