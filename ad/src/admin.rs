//! Directory administration over LDAP: what the lab needs to keep its member hosts'
//! computer accounts in a real DC (`lab::samba`), written generically. Check a password by
//! binding as the account, read an account by `sAMAccountName`, read the domain SID,
//! create, enable/disable and delete computer objects, set a password as an administrator
//! and change one's own password. Every call opens its own encrypted session (LDAPS or
//! StartTLS, certificate verified, [`AdConfig`]'s timeouts), binds as `cfg.bind_user` and
//! names the DC in its errors.
//!
//! # What Samba does (observed, not assumed)
//! Checked against Samba 4.17.12 (Debian), DCs set up by `scripts/samba-dc.sh`: by hand
//! (`ldapsearch`/`ldapmodify`), and what holds under the script's settings also by
//! `inventory/tests/ad_samba.rs` (`directory_administration_as_samba_does_it`):
//! - A computer account may simple-bind as `DOMAIN\NAME$` (`LAB\WS0001$`), as its DN, or as
//!   `NAME$@dns.domain` (either case of the domain). `dns.domain\NAME$`, a bare `NAME$`,
//!   and the name without its `$` are refused (rc 49, `data 52e`).
//! - A refused bind is rc 49 whatever the cause; the diagnostic says `data 52e` for a wrong
//!   password *and* for an account the DC does not hold, `data 533` for a disabled account.
//!   So [`check_password`] says yes or no, and a caller who needs to know why reads the
//!   object ([`read_computer`]). Failed binds do not change `badPwdCount`, `uSNChanged` or
//!   `pwdLastSet` of a computer account there (lockout threshold 0, Samba's default); the
//!   first successful bind sets `lastLogonTimestamp`, which does change `uSNChanged`.
//! - The previous password: with Samba's default `old password allowed period` (60
//!   minutes), a simple bind with the *previous* password still succeeds after a self
//!   change ([`change_own_password`]) *and* after an administrative reset
//!   ([`set_password`]), for computer and user accounts alike; the password before it is
//!   refused (checked by hand on a DC provisioned by a copy of the script without that
//!   setting). With `old password allowed period = 0` (what `samba-dc.sh` sets) only the
//!   current password binds, after either kind of change. Whether Windows' Netlogon keeps
//!   the previous password usable in the same way is a separate question (DOMAIN.md).
//! - A computer account changes its own password (delete old + add new, bound as itself)
//!   without the domain's minimum age, history or complexity rules applying: two changes
//!   in a row, a password from its history and a two-character one were all accepted (by
//!   hand). A delete naming a wrong old value is rc 19 (`The old password specified
//!   doesn't match!`), seen by hand with `ldapmodify`.
//! - A computer account may not *replace* its own `unicodePwd` (rc 50): an administrative
//!   reset needs the Reset Password extended right (00299570-246d-11d0-a768-00aa006e0529).
//!   That right alone is enough for [`set_password`] (it does not allow writing
//!   `userAccountControl`: rc 50, "no write property access"); `pwdLastSet` is set by the
//!   DC itself.

use std::collections::HashSet;

use ldap3::{Mod, Scope as LdapScope, SearchEntry};
use secrecy::{ExposeSecret as _, SecretString};

use super::codec::{computer_sam, decode_sid, encode_unicode_pwd};
use super::conn::{connect, first, first_bytes, first_u64, result_message, Session};
use super::{timed, AdConfig, AdError, UAC_ACCOUNTDISABLE};

/// `userAccountControl` of a member workstation's account: WORKSTATION_TRUST_ACCOUNT.
pub const UAC_WORKSTATION_TRUST_ACCOUNT: u32 = 0x1000;

/// LDAP result code invalidCredentials (RFC 4511 4.1.9).
const RC_INVALID_CREDENTIALS: u32 = 49;

/// The attributes [`read_account`] reads.
const ACCOUNT_ATTRS: &[&str] = &[
    "sAMAccountName",
    "objectSid",
    "userAccountControl",
    "pwdLastSet",
    "uSNChanged",
];

/// A security principal (computer or user account) as one DC holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAccount {
    /// distinguishedName.
    pub dn: String,
    /// `sAMAccountName` as stored (`WS0001$` for a computer).
    pub sam_account_name: String,
    /// objectSid (`S-1-5-21-…`), when the DC sent a well-formed one.
    pub object_sid: Option<String>,
    /// `userAccountControl`.
    pub user_account_control: u32,
    /// `pwdLastSet` (FILETIME; 0 when never set).
    pub pwd_last_set: u64,
    /// `uSNChanged`: this DC's update sequence number of the last change to the object
    /// (local to the DC; a first logon's `lastLogonTimestamp` moves it too).
    pub usn_changed: u64,
}

impl DirectoryAccount {
    /// ACCOUNTDISABLE is set.
    pub fn disabled(&self) -> bool {
        self.user_account_control & UAC_ACCOUNTDISABLE != 0
    }

    /// The RID: the last sub-authority of the objectSid.
    pub fn rid(&self) -> Option<u32> {
        self.object_sid.as_deref()?.rsplit('-').next()?.parse().ok()
    }

    fn from_entry(e: &SearchEntry) -> DirectoryAccount {
        DirectoryAccount {
            dn: e.dn.clone(),
            sam_account_name: first(e, "sAMAccountName").unwrap_or_default(),
            object_sid: first_bytes(e, "objectSid").as_deref().and_then(decode_sid),
            user_account_control: first_u64(e, "userAccountControl")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            // An account without pwdLastSet has never had a password: 0, as AD shows it.
            pwd_last_set: first_u64(e, "pwdLastSet").unwrap_or(0),
            usn_changed: first_u64(e, "uSNChanged").unwrap_or(0),
        }
    }
}

/// Does the DC of `cfg.url` accept a simple bind as `account` with `password`?
/// `Ok(false)` when the bind is refused as invalid credentials (rc 49: wrong password,
/// unknown or disabled account, see the module docs); `Err` for anything else (the DC not
/// reached, TLS, a timeout, another result code).
///
/// The session is opened as `cfg.bind_user` (any account that can bind) and then re-bound
/// as `account` (RFC 4511 4.2.1: a bind may be sent on an established connection): that
/// way the DC's result code is seen, and the check's password crosses the same verified TLS
/// connection. An empty password is refused before anything is sent (it would be an
/// anonymous bind, RFC 4513 5.1.2).
pub async fn check_password(
    cfg: &AdConfig,
    account: &str,
    password: &SecretString,
) -> Result<bool, AdError> {
    if password.expose_secret().is_empty() {
        return Err(AdError::InvalidConfig {
            message: format!(
                "empty password for {account}: AD would treat it as an anonymous bind"
            ),
        });
    }
    let mut s = connect(cfg).await?;
    let dc = s.dc.clone();
    let bind = timed(dc.clone(), cfg.connect_timeout, "bind", async {
        s.ldap
            .simple_bind(account, password.expose_secret())
            .await
            .map_err(|e| s.op_error("bind", e))
    })
    .await;
    s.close().await;
    match bind {
        Ok(r) if r.rc == 0 => Ok(true),
        Ok(r) if r.rc == RC_INVALID_CREDENTIALS => Ok(false),
        Ok(r) => Err(AdError::BindFailed {
            dc,
            user: account.to_string(),
            reason: result_message(&r),
        }),
        Err(e) => Err(e),
    }
}

/// The account whose `sAMAccountName` is `sam` (`WS0001$`, `tsrepair`), searched under
/// `cfg.base_dn` (the DC's whole domain when that is empty). `Ok(None)` when the DC holds
/// no such account.
pub async fn read_account(cfg: &AdConfig, sam: &str) -> Result<Option<DirectoryAccount>, AdError> {
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "account read", async {
        let base = s.search_base(cfg).await?;
        let filter = format!("(sAMAccountName={})", ldap3::ldap_escape(sam));
        let Some(entries) = s
            .search_small(&base, LdapScope::Subtree, &filter, ACCOUNT_ATTRS)
            .await?
        else {
            return Err(AdError::NotFound {
                dc: s.dc.clone(),
                what: format!("base DN {base}"),
            });
        };
        match entries.as_slice() {
            [] => Ok(None),
            [e] => Ok(Some(DirectoryAccount::from_entry(e))),
            more => Err(AdError::Ldap {
                dc: s.dc.clone(),
                operation: "account read",
                message: format!("{} objects have the sAMAccountName {sam}", more.len()),
            }),
        }
    })
    .await;
    s.close().await;
    out
}

/// The computer account of `name` (`WS0001`, with or without `$`, any case): see
/// [`read_account`].
pub async fn read_computer(
    cfg: &AdConfig,
    name: &str,
) -> Result<Option<DirectoryAccount>, AdError> {
    read_account(cfg, &computer_sam(name)).await
}

/// The domain SID (`S-1-5-21-a-b-c`): the objectSid of `cfg.base_dn`, which must then be
/// the domain's own DN (`DC=lab,DC=test`), or of the DC's `defaultNamingContext` when
/// `cfg.base_dn` is empty.
pub async fn domain_sid(cfg: &AdConfig) -> Result<String, AdError> {
    let mut s = connect(cfg).await?;
    let (dc, after) = (s.dc.clone(), s.op_timeout);
    let out = timed(dc, after, "domain SID read", async {
        let base = s.search_base(cfg).await?;
        let entries = s
            .search_small(&base, LdapScope::Base, "(objectClass=*)", &["objectSid"])
            .await?;
        let Some(entries) = entries else {
            return Err(AdError::NotFound {
                dc: s.dc.clone(),
                what: format!("base DN {base}"),
            });
        };
        entries
            .iter()
            .find_map(|e| first_bytes(e, "objectSid"))
            .as_deref()
            .and_then(decode_sid)
            .ok_or_else(|| AdError::Ldap {
                dc: s.dc.clone(),
                operation: "domain SID read",
                message: format!("{base} has no objectSid: give the domain's DN (DC=…), not an OU"),
            })
    })
    .await;
    s.close().await;
    out
}

/// Creates the OU `dn` unless it exists.
pub async fn ensure_ou(cfg: &AdConfig, dn: &str) -> Result<(), AdError> {
    let name = dn
        .split(',')
        .next()
        .and_then(|rdn| rdn.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let attrs = vec![
        ("objectClass", HashSet::from(["organizationalUnit"])),
        ("ou", HashSet::from([name.as_str()])),
    ];
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "OU creation",
        ldap(s.ldap.add(dn, attrs)),
    )
    .await;
    // 68 entryAlreadyExists.
    finish(s, res, &[0, 68], "create the OU", dn).await
}

/// Creates computer account `name` (`WS0001`, without `$`) under `ou_dn`: `sAMAccountName`
/// `NAME$`, `userAccountControl` WORKSTATION_TRUST_ACCOUNT (enabled), `dNSHostName`
/// `name.dns_domain`, and `password`. Returns its DN.
pub async fn create_computer(
    cfg: &AdConfig,
    ou_dn: &str,
    name: &str,
    dns_domain: &str,
    password: &SecretString,
) -> Result<String, AdError> {
    let name = name.trim().trim_end_matches('$').to_ascii_uppercase();
    let dn = format!("CN={name},{ou_dn}");
    let sam = format!("{name}$");
    let dns = format!("{}.{dns_domain}", name.to_ascii_lowercase());
    let uac = UAC_WORKSTATION_TRUST_ACCOUNT.to_string();
    let pwd = encode_unicode_pwd(password.expose_secret());
    let attrs = vec![
        (
            b"objectClass".as_slice(),
            HashSet::from([b"computer".as_slice()]),
        ),
        (b"cn".as_slice(), HashSet::from([name.as_bytes()])),
        (
            b"sAMAccountName".as_slice(),
            HashSet::from([sam.as_bytes()]),
        ),
        (b"dNSHostName".as_slice(), HashSet::from([dns.as_bytes()])),
        (
            b"userAccountControl".as_slice(),
            HashSet::from([uac.as_bytes()]),
        ),
        (b"unicodePwd".as_slice(), HashSet::from([pwd.as_slice()])),
    ];
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "computer creation",
        ldap(s.ldap.add(&dn, attrs)),
    )
    .await;
    finish(s, res, &[0], "create", &dn).await?;
    Ok(dn)
}

/// Sets `userAccountControl` of `dn`.
pub async fn set_user_account_control(cfg: &AdConfig, dn: &str, uac: u32) -> Result<(), AdError> {
    let value = uac.to_string();
    let mods = vec![Mod::Replace(
        "userAccountControl",
        HashSet::from([value.as_str()]),
    )];
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "userAccountControl change",
        ldap(s.ldap.modify(dn, mods)),
    )
    .await;
    finish(s, res, &[0], "change userAccountControl of", dn).await
}

/// Deletes the (leaf) object `dn`; a missing one is not an error.
pub async fn delete_object(cfg: &AdConfig, dn: &str) -> Result<(), AdError> {
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "deletion",
        ldap(s.ldap.delete(dn)),
    )
    .await;
    // 32 noSuchObject.
    finish(s, res, &[0, 32], "delete", dn).await
}

/// An administrative password reset of the computer object `dn` (replace `unicodePwd`), as
/// `cfg.bind_user`, who needs the Reset Password right on it: the DC-side "Reset Account".
/// The same write as [`super::reset_computer_account`].
pub async fn set_password(
    cfg: &AdConfig,
    dn: &str,
    new_password: &SecretString,
) -> Result<(), AdError> {
    super::reset_computer_account(cfg, dn, new_password).await
}

/// An account's change of its own password: bound as the account itself (`cfg.bind_user`
/// with its current password `cfg.bind_password`), delete the old `unicodePwd` value and
/// add the new one in one modify (AD's "change" form of a `unicodePwd` write, as opposed
/// to the "reset" of [`set_password`]). A wrong old password or a new one the domain's policy refuses is
/// [`AdError::PasswordRejected`].
pub async fn change_own_password(
    cfg: &AdConfig,
    dn: &str,
    new_password: &SecretString,
) -> Result<(), AdError> {
    if new_password.expose_secret().is_empty() {
        return Err(AdError::InvalidConfig {
            message: format!("refusing to change the password of {dn} to an empty one"),
        });
    }
    let old = encode_unicode_pwd(cfg.bind_password.expose_secret());
    let new = encode_unicode_pwd(new_password.expose_secret());
    let attr: &[u8] = b"unicodePwd";
    let mods = vec![
        Mod::Delete(attr, HashSet::from([old.as_slice()])),
        Mod::Add(attr, HashSet::from([new.as_slice()])),
    ];
    let mut s = connect(cfg).await?;
    let res = timed(
        s.dc.clone(),
        s.op_timeout,
        "password change",
        ldap(s.ldap.modify(dn, mods)),
    )
    .await;
    match res {
        // 19 constraintViolation (wrong old password, policy), 53 unwillingToPerform.
        Ok(r) if r.rc == 19 || r.rc == 53 => {
            let e = AdError::PasswordRejected {
                dc: s.dc.clone(),
                dn: dn.to_string(),
                message: result_message(&r),
            };
            s.close().await;
            Err(e)
        }
        res => finish(s, res, &[0], "change the password of", dn).await,
    }
}

/// An LDAP call's error as an [`AdError`] (the DC is named by [`finish`]).
pub(super) async fn ldap<T>(
    call: impl std::future::Future<Output = ldap3::result::Result<T>>,
) -> Result<T, AdError> {
    call.await.map_err(|e| AdError::Ldap {
        dc: String::new(),
        operation: "request",
        message: e.to_string(),
    })
}

/// Closes the session and turns the result code into `Ok` (one of `ok_codes`) or an error
/// naming the DC, the account and the object.
pub(super) async fn finish(
    s: Session,
    res: Result<ldap3::LdapResult, AdError>,
    ok_codes: &[u32],
    action: &'static str,
    dn: &str,
) -> Result<(), AdError> {
    let out = match res {
        Ok(r) if ok_codes.contains(&r.rc) => Ok(()),
        Ok(r) => Err(refused(&s, r.rc, action, dn, &r)),
        Err(AdError::Ldap {
            dc,
            operation,
            message,
        }) if dc.is_empty() => Err(AdError::Ldap {
            dc: s.dc.clone(),
            operation,
            message,
        }),
        Err(e) => Err(e),
    };
    s.close().await;
    out
}

fn refused(
    s: &Session,
    rc: u32,
    action: &'static str,
    dn: &str,
    res: &ldap3::LdapResult,
) -> AdError {
    match rc {
        50 => AdError::AccessDenied {
            dc: s.dc.clone(),
            user: s.user.clone(),
            action,
            dn: dn.to_string(),
            hint: "needs the right on the object (or its OU)",
        },
        32 => AdError::NotFound {
            dc: s.dc.clone(),
            what: dn.to_string(),
        },
        _ => AdError::Ldap {
            dc: s.dc.clone(),
            operation: action,
            message: result_message(res),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rid_and_disabled() {
        let mut a = DirectoryAccount {
            dn: "CN=WS0001,OU=Lab,DC=lab,DC=test".into(),
            sam_account_name: "WS0001$".into(),
            object_sid: Some("S-1-5-21-1-2-3-1105".into()),
            user_account_control: UAC_WORKSTATION_TRUST_ACCOUNT,
            pwd_last_set: 1,
            usn_changed: 2,
        };
        assert_eq!(a.rid(), Some(1105));
        assert!(!a.disabled());
        a.user_account_control |= UAC_ACCOUNTDISABLE;
        assert!(a.disabled());
        a.object_sid = None;
        assert_eq!(a.rid(), None);
    }

    #[tokio::test]
    async fn empty_passwords_are_never_sent() {
        let cfg = AdConfig::new(
            "ldaps://127.0.0.1:9",
            "u@lab.test",
            SecretString::from("pw"),
            "DC=lab,DC=test",
        );
        let err = check_password(&cfg, "LAB\\WS0001$", &SecretString::from(""))
            .await
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("anonymous bind"));
        let err = change_own_password(&cfg, "CN=WS0001,DC=lab,DC=test", &SecretString::from(""))
            .await
            .err();
        assert!(err
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("empty one"));
    }
}
