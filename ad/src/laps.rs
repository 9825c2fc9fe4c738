//! LAPS: the managed local Administrator password of a computer, read from AD.
//!
//! Windows LAPS keeps it in `msLAPS-Password` as JSON `{"n":account,"t":hex FILETIME,
//! "p":password}` (or DPAPI-NG encrypted in `msLAPS-EncryptedPassword`, not supported);
//! legacy LAPS in `ms-Mcs-AdmPwd` (the password alone; the account is the built-in
//! Administrator unless a GPO names another). Both are *confidential* attributes: AD
//! leaves them out of search results for a reader without the delegated right, exactly
//! as if they were not set. Their expiration times (`msLAPS-PasswordExpirationTime`,
//! `ms-Mcs-AdmPwdExpirationTime`) are written together with them but are not
//! confidential, so any reader of the computer object sees them. That is how we tell
//! the cases apart:
//!
//! | password returned | expiration time returned | result |
//! |---|---|---|
//! | yes | – | `Ok(Some(secret))` |
//! | no (only `msLAPS-EncryptedPassword`) | – | `Err(LapsEncrypted)` |
//! | no | yes | `Err(LapsAccessDenied)`: set, but hidden from this reader |
//! | no | no | `Ok(None)` if the schema has LAPS (computer not managed), else `Err(LapsNotInSchema)` |
//!
//! A reader that may not even read the expiration time (a heavily restricted account)
//! would see `Ok(None)`: the DC gives it nothing to tell the difference with.

use ldap3::Scope as LdapScope;
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::codec::computer_sam;
use super::conn::{connect, first, first_u64, on_dc, take_first, Session};
use super::{AdConfig, AdError};

const LEGACY_PASSWORD: &str = "ms-Mcs-AdmPwd";
const LEGACY_EXPIRES: &str = "ms-Mcs-AdmPwdExpirationTime";
const WINDOWS_PASSWORD: &str = "msLAPS-Password";
const WINDOWS_EXPIRES: &str = "msLAPS-PasswordExpirationTime";
const WINDOWS_ENCRYPTED: &str = "msLAPS-EncryptedPassword";

/// Which LAPS wrote the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LapsSource {
    /// Legacy Microsoft LAPS (`ms-Mcs-AdmPwd`).
    Legacy,
    /// Windows LAPS, clear-text form (`msLAPS-Password`).
    Windows,
}

/// A computer's LAPS-managed local account and its password.
#[derive(Debug, Clone)]
pub struct LapsSecret {
    /// The local account (`n` of Windows LAPS; `Administrator` for legacy LAPS, which does
    /// not record the name).
    pub account: String,
    /// The password.
    pub password: SecretString,
    /// Which attribute it came from.
    pub source: LapsSource,
    /// When the computer set it (FILETIME), if recorded (Windows LAPS' `t`).
    pub updated: Option<u64>,
    /// When it expires (FILETIME), if readable.
    pub expires: Option<u64>,
}

#[derive(Deserialize)]
struct WindowsLapsJson {
    n: String,
    #[serde(default)]
    t: Option<String>,
    p: String,
}

/// Parses Windows LAPS' clear-text JSON.
pub fn parse_windows_laps(
    computer: &str,
    json: &str,
    expires: Option<u64>,
) -> Result<LapsSecret, AdError> {
    let parsed: WindowsLapsJson =
        serde_json::from_str(json).map_err(|e| AdError::LapsMalformed {
            computer: computer.to_string(),
            // serde_json's message names a position, never the value.
            message: format!("msLAPS-Password is not Windows LAPS JSON {{\"n\",\"t\",\"p\"}}: {e}"),
        })?;
    let updated = parsed
        .t
        .as_deref()
        .and_then(|t| u64::from_str_radix(t.trim(), 16).ok());
    Ok(LapsSecret {
        account: parsed.n,
        password: SecretString::from(parsed.p),
        source: LapsSource::Windows,
        updated,
        expires,
    })
}

/// Reads the LAPS password of the computer object `computer_dn` with the configured
/// account. See the module documentation for how "not set" and "not allowed" differ.
pub async fn read_laps(cfg: &AdConfig, computer_dn: &str) -> Result<Option<LapsSecret>, AdError> {
    on_dc(cfg, "LAPS read", async |s| read_with(s, computer_dn).await).await
}

/// [`read_laps`] of computer `name` (`WS01`, `ws01$`): its object is found by
/// `sAMAccountName` under the configured base (the domain when it is empty), which after a
/// rejoin may be a new object in another container. `Err(NotFound)` when there is none.
pub async fn read_laps_by_name(cfg: &AdConfig, name: &str) -> Result<Option<LapsSecret>, AdError> {
    let sam = computer_sam(name);
    on_dc(cfg, "LAPS read", async |s| {
        let base = s.search_base(cfg).await?;
        let found = s
            .computers_named(&base, &sam, &["distinguishedName"])
            .await?;
        let Some(dn) = found.first().map(|e| e.dn.clone()) else {
            return Err(AdError::NotFound {
                dc: s.dc.clone(),
                what: format!("computer {sam} under {base}"),
            });
        };
        read_with(s, &dn).await
    })
    .await
}

/// Writes a Windows LAPS clear-text password on the computer object `dn` as
/// `cfg.bind_user`: `msLAPS-Password` = `{"n":account,"t":hex FILETIME,"p":password}` and
/// `msLAPS-PasswordExpirationTime`, what the device itself writes after a rotation
/// (Microsoft's Windows LAPS schema). The lab uses it to play the device's part.
pub async fn write_laps(
    cfg: &AdConfig,
    dn: &str,
    account: &str,
    password: &SecretString,
    updated: u64,
    expires: u64,
) -> Result<(), AdError> {
    use secrecy::ExposeSecret as _;
    let json = Zeroizing::new(
        serde_json::json!({
            "n": account,
            "t": format!("{updated:x}"),
            "p": password.expose_secret(),
        })
        .to_string(),
    );
    let expires = expires.to_string();
    let mods = vec![
        ldap3::Mod::Replace(
            WINDOWS_PASSWORD,
            std::collections::HashSet::from([json.as_str()]),
        ),
        ldap3::Mod::Replace(
            WINDOWS_EXPIRES,
            std::collections::HashSet::from([expires.as_str()]),
        ),
    ];
    let mut s = connect(cfg).await?;
    let res = super::timed(
        s.dc.clone(),
        s.op_timeout,
        "LAPS write",
        super::admin::ldap(s.ldap.modify(dn, mods)),
    )
    .await;
    super::admin::finish(s, res, &[0], "write the LAPS password of", dn).await
}

async fn read_with(s: &mut Session, dn: &str) -> Result<Option<LapsSecret>, AdError> {
    let attrs = [
        WINDOWS_PASSWORD,
        WINDOWS_EXPIRES,
        WINDOWS_ENCRYPTED,
        LEGACY_PASSWORD,
        LEGACY_EXPIRES,
    ];
    let found = s
        .search_small(dn, LdapScope::Base, "(objectClass=computer)", &attrs)
        .await?;
    let Some(mut entry) = found.and_then(|v| v.into_iter().next()) else {
        return Err(AdError::NotFound {
            dc: s.dc.clone(),
            what: format!("computer object {dn}"),
        });
    };
    let windows_expires = first_u64(&entry, WINDOWS_EXPIRES);
    let legacy_expires = first_u64(&entry, LEGACY_EXPIRES);
    if let Some(json) = take_first(&mut entry, WINDOWS_PASSWORD).map(Zeroizing::new) {
        return parse_windows_laps(dn, &json, windows_expires).map(Some);
    }
    if let Some(password) = take_first(&mut entry, LEGACY_PASSWORD) {
        return Ok(Some(LapsSecret {
            account: "Administrator".to_string(),
            password: SecretString::from(password),
            source: LapsSource::Legacy,
            updated: None,
            expires: legacy_expires,
        }));
    }
    let encrypted = entry
        .bin_attrs
        .keys()
        .chain(entry.attrs.keys())
        .any(|k| k.eq_ignore_ascii_case(WINDOWS_ENCRYPTED));
    if encrypted {
        return Err(AdError::LapsEncrypted {
            computer: dn.to_string(),
        });
    }
    if windows_expires.is_some() || legacy_expires.is_some() {
        return Err(AdError::LapsAccessDenied {
            computer: dn.to_string(),
            reader: s.user.clone(),
            dc: s.dc.clone(),
        });
    }
    // Nothing at all: either this computer is not managed, or LAPS is not deployed.
    let schema = s.root_dse("schemaNamingContext").await?;
    let filter =
        format!("(|(lDAPDisplayName={LEGACY_PASSWORD})(lDAPDisplayName={WINDOWS_PASSWORD}))");
    let defined = s
        .search_small(&schema, LdapScope::OneLevel, &filter, &["lDAPDisplayName"])
        .await?
        .unwrap_or_default();
    if defined
        .iter()
        .any(|e| first(e, "lDAPDisplayName").is_some())
    {
        Ok(None)
    } else {
        Err(AdError::LapsNotInSchema { dc: s.dc.clone() })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn windows_json() {
        let s = parse_windows_laps(
            "CN=X",
            r#"{"n":"LapsAdmin","t":"1d8161b41c41cde","p":"pa\"ss"}"#,
            Some(5),
        )
        .expect("valid Windows LAPS JSON");
        assert_eq!(s.account, "LapsAdmin");
        assert_eq!(s.password.expose_secret(), "pa\"ss");
        assert_eq!(s.source, LapsSource::Windows);
        assert_eq!(s.updated, Some(0x1d8161b41c41cde));
        assert_eq!(s.expires, Some(5));
        let bad = parse_windows_laps("CN=X", r#"{"p":"secret-value"}"#, None);
        let msg = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("CN=X") && !msg.contains("secret-value"),
            "{msg}"
        );
    }
}
