//! Directory administration the lab needs to keep its member hosts' computer accounts in
//! a real DC (`lab --lab-samba`): check a password by binding as the account, create,
//! enable/disable and delete computer objects, create an OU. Every call binds as
//! `cfg.bind_user` over the encrypted session and names the DC in its errors.
//!
//! Checked against Samba 4 (see `scripts/samba-dc.sh`): a computer account may simple-bind
//! as `DOMAIN\NAME$` (also its DN or `NAME$@dns.domain`); a wrong password, a disabled
//! account and a missing one are all rc 49 (AD's `data 52e`/`533`), so
//! [`password_accepted`] only says yes or no and the caller reads the object to tell why.

use std::collections::HashSet;

use ldap3::Mod;
use secrecy::{ExposeSecret as _, SecretString};

use super::codec::encode_unicode_pwd;
use super::conn::{connect, result_message, Session};
use super::{timed, AdConfig, AdError};


/// `userAccountControl` of a member workstation's account: WORKSTATION_TRUST_ACCOUNT.
pub const UAC_WORKSTATION_TRUST_ACCOUNT: u32 = 0x1000;

/// Does the DC of `cfg.url` accept `cfg.bind_user` with `cfg.bind_password`? `Ok(false)`
/// when the bind is refused (wrong password, disabled or unknown account); `Err` when the
/// DC could not be asked.
pub async fn password_accepted(cfg: &AdConfig) -> Result<bool, AdError> {
    match connect(cfg).await {
        Ok(s) => {
            s.close().await;
            Ok(true)
        }
        Err(AdError::BindFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the OU `dn` unless it exists.
pub async fn ensure_ou(cfg: &AdConfig, dn: &str) -> Result<(), AdError> {
    let name = dn.split(',').next().and_then(|rdn| rdn.split_once('=')).map(|(_, v)| v.to_string()).unwrap_or_default();
    let attrs = vec![("objectClass", HashSet::from(["organizationalUnit"])), ("ou", HashSet::from([name.as_str()]))];
    let mut s = connect(cfg).await?;
    let res = timed(s.dc.clone(), s.op_timeout, "OU creation", ldap(s.ldap.add(dn, attrs))).await;
    finish(s, res, &[0, 68], "create the OU", dn).await
}

/// Creates computer account `name` (`WS0001`, without `$`) under `ou_dn` with its
/// `dNSHostName` in `dns_domain`, enabled, with `password`. Returns its DN.
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
        (b"objectClass".as_slice(), HashSet::from([b"computer".as_slice()])),
        (b"cn".as_slice(), HashSet::from([name.as_bytes()])),
        (b"sAMAccountName".as_slice(), HashSet::from([sam.as_bytes()])),
        (b"dNSHostName".as_slice(), HashSet::from([dns.as_bytes()])),
        (b"userAccountControl".as_slice(), HashSet::from([uac.as_bytes()])),
        (b"unicodePwd".as_slice(), HashSet::from([pwd.as_slice()])),
    ];
    let mut s = connect(cfg).await?;
    let res = timed(s.dc.clone(), s.op_timeout, "computer creation", ldap(s.ldap.add(&dn, attrs))).await;
    finish(s, res, &[0], "create", &dn).await?;
    Ok(dn)
}

/// Sets `userAccountControl` of `dn`.
pub async fn set_user_account_control(cfg: &AdConfig, dn: &str, uac: u32) -> Result<(), AdError> {
    let value = uac.to_string();
    let mods = vec![Mod::Replace("userAccountControl", HashSet::from([value.as_str()]))];
    let mut s = connect(cfg).await?;
    let res = timed(s.dc.clone(), s.op_timeout, "userAccountControl change", ldap(s.ldap.modify(dn, mods))).await;
    finish(s, res, &[0], "change userAccountControl of", dn).await
}

/// Deletes the (leaf) object `dn`; a missing one is not an error.
pub async fn delete_object(cfg: &AdConfig, dn: &str) -> Result<(), AdError> {
    let mut s = connect(cfg).await?;
    let res = timed(s.dc.clone(), s.op_timeout, "deletion", ldap(s.ldap.delete(dn))).await;
    finish(s, res, &[0, 32], "delete", dn).await
}

/// An LDAP call's error as an [`AdError`] (the DC is named by [`finish`]).
async fn ldap<T>(call: impl std::future::Future<Output = ldap3::result::Result<T>>) -> Result<T, AdError> {
    call.await.map_err(|e| AdError::Ldap { dc: String::new(), operation: "request", message: e.to_string() })
}

/// Closes the session and turns the result code into `Ok` (one of `ok_codes`) or an error
/// naming the DC, the account and the object.
async fn finish(
    s: Session,
    res: Result<ldap3::LdapResult, AdError>,
    ok_codes: &[u32],
    action: &'static str,
    dn: &str,
) -> Result<(), AdError> {
    let out = match res {
        Ok(r) if ok_codes.contains(&r.rc) => Ok(()),
        Ok(r) => Err(refused(&s, r.rc, action, dn, &r)),
        Err(AdError::Ldap { dc, operation, message }) if dc.is_empty() => {
            Err(AdError::Ldap { dc: s.dc.clone(), operation, message })
        }
        Err(e) => Err(e),
    };
    s.close().await;
    out
}

fn refused(s: &Session, rc: u32, action: &'static str, dn: &str, res: &ldap3::LdapResult) -> AdError {
    match rc {
        50 => AdError::AccessDenied {
            dc: s.dc.clone(),
            user: s.user.clone(),
            action,
            dn: dn.to_string(),
            hint: "needs the right on the object (or its OU)",
        },
        32 => AdError::NotFound { dc: s.dc.clone(), what: dn.to_string() },
        _ => AdError::Ldap { dc: s.dc.clone(), operation: action, message: result_message(res) },
    }
}
