//! Restoring a deleted computer object from the AD Recycle Bin (issue 11, DOMAIN.md "Why a
//! trust breaks": a deleted account restored from the Recycle Bin gets back its SID, OU,
//! groups and password, so the member's channel works again with no change on the member;
//! otherwise the member must rejoin).
//!
//! What decides whether a restore heals the member ([MS-ADTS] 3.1.1.5.5 "Delete
//! Operation" and 3.1.1.5.3.7.3 "Undelete Processing"):
//! - With the Recycle Bin optional feature enabled (`msDS-EnabledFeature` of
//!   `CN=Partitions,<configuration NC>` names `CN=Recycle Bin Feature,…`), a deleted
//!   object keeps its attributes (password included) until its deleted-object lifetime
//!   ends; then it is *recycled* (`isRecycled`), stripped like a tombstone.
//! - Without it, a deleted object is a tombstone at once: SID and `sAMAccountName` stay,
//!   the password does not. Reanimating a tombstone brings back an object the member's
//!   password no longer matches, so it does not heal the member: a rejoin is still needed.
//!
//! The restore itself is one LDAP modify of the deleted object, sent with the
//! LDAP_SERVER_SHOW_DELETED_OID control: remove `isDeleted`, replace `distinguishedName`
//! with the DN to restore to (its `msDS-LastKnownRDN` under `lastKnownParent`). The binding
//! account needs the Reanimate-Tombstones control access right on the domain NC, plus write
//! access to the object and create-child in the target container (MS-ADTS 3.1.1.5.3.7.3).
//!
//! Samba 4.17 (the lab's DCs) refuses to restore a Recycle Bin "deleted" object: its
//! `tombstone_reanimate` module always removes `isRecycled`, which such an object does not
//! have, and answers "attribute 'isRecycled': no such attribute for delete" (checked by
//! hand on the lab's Samba; `source4/dsdb/samdb/ldb_modules/tombstone_reanimate.c`,
//! `tr_prepare_attributes`). The refusal is reported as the DC's answer, like any other.

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::{Mod, Scope as LdapScope};

use super::admin::{finish, ldap};
use super::codec::{computer_sam, decode_sid};
use super::conn::{connect, first, first_bytes, on_dc};
use super::{timed, AdConfig, AdError};

/// LDAP_SERVER_SHOW_DELETED_OID ([MS-ADTS] 3.1.1.3.4.1.14): return (and act on) deleted
/// objects.
const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// The Recycle Bin optional feature's object, as `msDS-EnabledFeature` names it
/// ([MS-ADTS] 3.1.1.9.1 "Optional Features").
const RECYCLE_BIN_RDN: &str = "CN=Recycle Bin Feature,";

/// A deleted computer object as the DC holds it in `CN=Deleted Objects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedComputer {
    /// Its DN now (`CN=NAME\0ADEL:<guid>,CN=Deleted Objects,…`).
    pub dn: String,
    /// Its RDN value before the deletion (`msDS-LastKnownRDN`).
    pub last_known_rdn: Option<String>,
    /// The container it was deleted from (`lastKnownParent`).
    pub last_known_parent: Option<String>,
    /// Past its deleted-object lifetime (`isRecycled`): stripped, no longer restorable
    /// with its password.
    pub recycled: bool,
    /// Its SID.
    pub object_sid: Option<String>,
    /// `whenChanged` (generalized time), for the plan's words.
    pub when_changed: Option<String>,
}

impl DeletedComputer {
    /// The DN it is restored to: `CN=<last known RDN>,<last known parent>`.
    ///
    /// Without `msDS-LastKnownRDN` (Samba's tombstones lack it) the old RDN is the deleted
    /// RDN's part before the `\0ADEL:<guid>` that the deletion appended (MS-ADTS
    /// 3.1.1.5.5.1.2: the old RDN value, 0x0A, `DEL:` and the GUID; in a DN string the 0x0A is
    /// written `\0A`).
    pub fn restore_dn(&self) -> Option<String> {
        let parent = self.last_known_parent.as_deref()?;
        let rdn = match self.last_known_rdn.as_deref() {
            Some(rdn) => escape_rdn_value(rdn),
            None => {
                let first = self
                    .dn
                    .strip_prefix("CN=")
                    .or_else(|| self.dn.strip_prefix("cn="))?;
                let (old, _) = first
                    .split_once("\\0ADEL:")
                    .or_else(|| first.split_once("\\0aDEL:"))?;
                old.to_string()
            }
        };
        (!rdn.is_empty()).then(|| format!("CN={rdn},{parent}"))
    }
}

/// What a restore preflight read on one DC for one computer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFacts {
    /// The forest has the Recycle Bin optional feature enabled.
    pub recycle_bin: bool,
    /// The most recently changed deleted object with the computer's `sAMAccountName`.
    pub deleted: Option<DeletedComputer>,
    /// A live object with that `sAMAccountName` exists (then nothing is restored).
    pub live: bool,
}

/// Whether restoring heals the member, and why, in words for the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreVerdict {
    /// A restore is worth planning: it brings the password back.
    pub restorable: bool,
    /// Why (or why not).
    pub reason: String,
}

impl RestoreFacts {
    /// The verdict for computer `name` (without `$`).
    pub fn verdict(&self, name: &str) -> RestoreVerdict {
        let no = |reason: String| RestoreVerdict {
            restorable: false,
            reason,
        };
        if self.live {
            return no(format!(
                "a live computer object {name}$ exists, so there is nothing to restore"
            ));
        }
        let Some(d) = &self.deleted else {
            return no(format!(
                "no deleted object {name}$ is visible in Deleted Objects (expunged, never there, or not readable by the reading account: by default only Domain Admins may list that container)"
            ));
        };
        if !self.recycle_bin {
            return no(format!(
                "the AD Recycle Bin is not enabled, so {name}$ is a tombstone without its password: reanimating it would not heal the member"
            ));
        }
        if d.recycled {
            return no(format!(
                "{name}$ is past its deleted-object lifetime (recycled): restoring it would not bring its password back"
            ));
        }
        match d.restore_dn() {
            Some(to) => RestoreVerdict {
                restorable: true,
                reason: format!(
                    "{name}$ is in the AD Recycle Bin (deleted {}) and can be restored to {to} with its SID, groups and password",
                    d.when_changed.as_deref().unwrap_or("at an unknown time")
                ),
            },
            None => no(format!(
                "the deleted object {name}$ does not say where it came from (no lastKnownParent or msDS-LastKnownRDN)"
            )),
        }
    }
}

/// Is the AD Recycle Bin enabled in the forest? Reads `msDS-EnabledFeature` of
/// `CN=Partitions,<configurationNamingContext>`.
pub async fn recycle_bin_enabled(cfg: &AdConfig) -> Result<bool, AdError> {
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "Recycle Bin check", async {
        let config = s.root_dse("configurationNamingContext").await?;
        let partitions = format!("CN=Partitions,{config}");
        let entries = s
            .search_small(
                &partitions,
                LdapScope::Base,
                "(objectClass=*)",
                &["msDS-EnabledFeature"],
            )
            .await?
            .unwrap_or_default();
        Ok(entries.iter().any(|e| {
            e.attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("msDS-EnabledFeature"))
                .flat_map(|(_, v)| v)
                .any(|v| {
                    v.to_ascii_uppercase()
                        .starts_with(&RECYCLE_BIN_RDN.to_ascii_uppercase())
                })
        }))
    })
    .await;
    s.close().await;
    out
}

/// Reads what a restore of computer `name` (with or without `$`) needs: the Recycle Bin
/// state, the deleted object (searched with the Show Deleted control from the domain NC),
/// and whether a live object of that name exists.
pub async fn restore_facts(cfg: &AdConfig, name: &str) -> Result<RestoreFacts, AdError> {
    let recycle_bin = recycle_bin_enabled(cfg).await?;
    let sam = computer_sam(name);
    on_dc(cfg, "Recycle Bin read", async |s| {
        // Deleted Objects is a container of the domain NC, whatever base the
        // configuration names for computers.
        let base = s.root_dse("defaultNamingContext").await?;
        let by_name = format!("(sAMAccountName={})", ldap3::ldap_escape(&sam));
        let live = !s
            .search_small(&base, LdapScope::Subtree, &by_name, &["distinguishedName"])
            .await?
            .unwrap_or_default()
            .is_empty();
        let filter = format!(
            "(&(isDeleted=TRUE)(objectClass=computer)(sAMAccountName={}))",
            ldap3::ldap_escape(&sam)
        );
        let show_deleted = RawControl {
            ctype: SHOW_DELETED_OID.to_string(),
            crit: true,
            val: None,
        };
        let entries = s
            .search_with(
                show_deleted,
                "search of Deleted Objects",
                &base,
                &filter,
                &[
                    "distinguishedName",
                    "isRecycled",
                    "lastKnownParent",
                    "msDS-LastKnownRDN",
                    "objectSid",
                    "whenChanged",
                ],
            )
            .await?;
        let deleted = entries
            .into_iter()
            .map(|e| DeletedComputer {
                dn: e.dn.clone(),
                last_known_rdn: first(&e, "msDS-LastKnownRDN"),
                last_known_parent: first(&e, "lastKnownParent"),
                recycled: first(&e, "isRecycled").is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                object_sid: first_bytes(&e, "objectSid").as_deref().and_then(decode_sid),
                when_changed: first(&e, "whenChanged"),
            })
            // Generalized times sort as text; the newest deletion is the member's.
            .max_by(|a, b| a.when_changed.cmp(&b.when_changed));
        Ok(RestoreFacts {
            recycle_bin,
            deleted,
            live,
        })
    })
    .await
}

/// Restores `deleted` to [`DeletedComputer::restore_dn`] as `cfg.bind_user` (MS-ADTS
/// 3.1.1.5.3.7.3: one modify with the Show Deleted control that removes `isDeleted` and
/// replaces `distinguishedName`). Returns the restored DN.
pub async fn restore_deleted(cfg: &AdConfig, deleted: &DeletedComputer) -> Result<String, AdError> {
    let Some(to) = deleted.restore_dn() else {
        return Err(AdError::Ldap {
            dc: cfg.url.clone(),
            operation: "restore",
            message: format!(
                "{} has no lastKnownParent or msDS-LastKnownRDN to restore it to",
                deleted.dn
            ),
        });
    };
    let mods = vec![
        Mod::Delete("isDeleted", HashSet::new()),
        Mod::Replace("distinguishedName", HashSet::from([to.as_str()])),
    ];
    let mut s = connect(cfg).await?;
    let control = RawControl {
        ctype: SHOW_DELETED_OID.to_string(),
        crit: true,
        val: None,
    };
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "restore from the Recycle Bin",
        ldap(s.ldap.with_controls(control).modify(&deleted.dn, mods)),
    )
    .await;
    finish(s, res, &[0], "restore", &deleted.dn).await?;
    Ok(to)
}

/// Escapes an RDN value for a DN string (RFC 4514 section 2.4).
fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted(recycled: bool) -> DeletedComputer {
        DeletedComputer {
            dn: "CN=WS1\\0ADEL:1234,CN=Deleted Objects,DC=lab,DC=test".into(),
            last_known_rdn: Some("WS1".into()),
            last_known_parent: Some("OU=Kiosks,DC=lab,DC=test".into()),
            recycled,
            object_sid: None,
            when_changed: Some("20261201120000.0Z".into()),
        }
    }

    #[test]
    fn only_a_recycle_bin_object_that_is_not_recycled_heals_the_member() {
        let facts = |recycle_bin, d: Option<DeletedComputer>, live| RestoreFacts {
            recycle_bin,
            deleted: d,
            live,
        };
        let v = facts(true, Some(deleted(false)), false).verdict("WS1");
        assert!(v.restorable, "{v:?}");
        assert!(
            v.reason.contains("CN=WS1,OU=Kiosks,DC=lab,DC=test"),
            "{v:?}"
        );
        for (f, why) in [
            (facts(false, Some(deleted(false)), false), "tombstone"),
            (facts(true, Some(deleted(true)), false), "recycled"),
            (facts(true, None, false), "no deleted object"),
            (facts(true, Some(deleted(false)), true), "live computer"),
        ] {
            let v = f.verdict("WS1");
            assert!(!v.restorable, "{v:?}");
            assert!(v.reason.contains(why), "{v:?}");
        }
    }

    #[test]
    fn the_old_rdn_comes_from_the_deleted_dn_when_last_known_rdn_is_missing() {
        let mut d = deleted(true);
        d.last_known_rdn = None;
        assert_eq!(
            d.restore_dn().as_deref(),
            Some("CN=WS1,OU=Kiosks,DC=lab,DC=test")
        );
        d.dn = "CN=Deleted Objects,DC=lab,DC=test".into();
        assert_eq!(d.restore_dn(), None);
    }

    #[test]
    fn rdn_values_are_escaped() {
        assert_eq!(escape_rdn_value("WS1"), "WS1");
        assert_eq!(escape_rdn_value("a,b"), "a\\,b");
        assert_eq!(escape_rdn_value("#x "), "\\#x\\ ");
    }
}
