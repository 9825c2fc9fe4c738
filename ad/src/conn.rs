//! One authenticated LDAP session with a DC: TCP (to the URL's host or an explicit
//! address), TLS verified against the system roots plus `--ca-file` (LDAPS, or StartTLS
//! before any credential is sent), then a simple bind. Never a plain-text bind.

use std::sync::Arc;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope as LdapScope, SearchEntry,
    StdStream,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use secrecy::ExposeSecret as _;

use super::codec::{bind_failure_reason, computer_by_sam};
use super::{AdConfig, AdError};

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `true` for `ldaps://`.
    pub(crate) ldaps: bool,
    /// Host as written (name or address).
    pub(crate) host: String,
    /// Port (636 / 389 by default).
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, AdError> {
        let bad = |why: &str| {
            AdError::InvalidConfig {
            message: format!(
                "'{url}' is not an LDAP URL ({why}); write ldaps://dc01.example.com or ldap://dc01.example.com"
            ),
        }
        };
        let lower = url.to_ascii_lowercase();
        let (ldaps, rest) = if lower.starts_with("ldaps://") {
            (true, url.get(8..).unwrap_or(""))
        } else if lower.starts_with("ldap://") {
            (false, url.get(7..).unwrap_or(""))
        } else {
            return Err(bad("the scheme must be ldaps:// or ldap://"));
        };
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(bad("credentials do not belong in the URL"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (h.to_string(), tail.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
            None if ldaps => 636,
            None => 389,
        };
        Ok(Target { ldaps, host, port })
    }
}

/// An open, bound session; `dc` labels errors.
pub(crate) struct Session {
    pub(crate) ldap: Ldap,
    pub(crate) dc: String,
    pub(crate) user: String,
    pub(crate) op_timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dc", &self.dc)
            .field("user", &self.user)
            .finish()
    }
}

fn tls_config(cfg: &AdConfig) -> Result<Arc<rustls::ClientConfig>, AdError> {
    let invalid = |message: String| AdError::InvalidConfig { message };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS setup: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| invalid(format!("cannot read CA file {}: {e}", path.display())))?;
        let mut added = 0usize;
        for item in CertificateDer::pem_slice_iter(&pem) {
            let cert = item.map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            )));
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// Connects to the DC of `cfg` ([`connect`]), runs `op` on the session within its
/// operation timeout (`what` names the operation when that runs out), then says goodbye
/// whatever `op` answered.
pub(crate) async fn on_dc<T>(
    cfg: &AdConfig,
    what: &'static str,
    op: impl AsyncFnOnce(&mut Session) -> Result<T, AdError>,
) -> Result<T, AdError> {
    let mut s = connect(cfg).await?;
    let out = super::timed(s.dc.clone(), s.op_timeout, what, op(&mut s)).await;
    s.close().await;
    out
}

/// Opens a TLS session to the DC of `cfg.url` and binds as `cfg.bind_user`.
pub(crate) async fn connect(cfg: &AdConfig) -> Result<Session, AdError> {
    let target = Target::parse(&cfg.url)?;
    if !target.ldaps && !cfg.starttls {
        return Err(AdError::PlainLdapRefused {
            url: cfg.url.clone(),
        });
    }
    if cfg.bind_user.trim().is_empty() {
        return Err(AdError::InvalidConfig {
            message: "no LDAP bind user given (--ldap-user)".into(),
        });
    }
    if cfg.bind_password.expose_secret().is_empty() {
        // A simple bind with a name and an empty password is an *unauthenticated* bind
        // (RFC 4513 5.1.2): it "succeeds" anonymously. Never send one.
        return Err(AdError::InvalidConfig {
            message: format!(
                "empty LDAP password for {}: AD would treat it as an anonymous bind",
                cfg.bind_user
            ),
        });
    }
    let dc = cfg.url.clone();
    let tls = tls_config(cfg)?;
    let timed_out = |what| AdError::Timeout {
        dc: dc.clone(),
        what,
        after: cfg.connect_timeout,
    };

    let tcp = tokio::time::timeout(cfg.connect_timeout, async {
        match cfg.connect_to {
            Some(ip) => tokio::net::TcpStream::connect((ip, target.port)).await,
            None => tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await,
        }
    })
    .await
    .map_err(|_| timed_out("TCP connect"))?
    .map_err(|source| AdError::Connect {
        dc: dc.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let std_stream = tcp.into_std().map_err(|source| AdError::Connect {
        dc: dc.clone(),
        source,
    })?;

    let settings = LdapConnSettings::new()
        .set_config(tls)
        .set_starttls(!target.ldaps)
        .set_std_stream(StdStream::Tcp(std_stream));
    // The TLS server name is the URL's host: with `connect_to`, the certificate must
    // still be valid for the name in the URL.
    let (conn, mut ldap) = tokio::time::timeout(
        cfg.connect_timeout,
        LdapConnAsync::with_settings(settings, &cfg.url),
    )
    .await
    .map_err(|_| {
        timed_out(if target.ldaps {
            "TLS handshake"
        } else {
            "StartTLS"
        })
    })?
    .map_err(|e| connect_error(&dc, &target, e))?;
    let dc_for_driver = dc.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(dc = %dc_for_driver, "LDAP connection ended: {e}");
        }
    });

    let bind = tokio::time::timeout(
        cfg.connect_timeout,
        ldap.simple_bind(&cfg.bind_user, cfg.bind_password.expose_secret()),
    )
    .await
    .map_err(|_| timed_out("bind"))?
    .map_err(|e| connect_error(&dc, &target, e))?;
    if bind.rc != 0 {
        let reason = match bind.rc {
            49 => bind_failure_reason(&bind.text)
                .map(|r| format!("{r} (invalid credentials: {})", bind.text.trim()))
                .unwrap_or_else(|| format!("bad user name or password ({})", bind.text.trim())),
            _ => result_message(&bind),
        };
        return Err(AdError::BindFailed {
            dc,
            user: cfg.bind_user.clone(),
            reason,
        });
    }
    Ok(Session {
        ldap,
        dc,
        user: cfg.bind_user.clone(),
        op_timeout: cfg.op_timeout,
    })
}

/// `rc name: text` for an LDAP result.
pub(crate) fn result_message(res: &LdapResult) -> String {
    let name = match res.rc {
        1 => "operationsError",
        2 => "protocolError",
        8 => "strongerAuthRequired",
        10 => "referral",
        16 => "noSuchAttribute",
        19 => "constraintViolation",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "error",
    };
    let text = res.text.trim();
    if text.is_empty() {
        format!("{} {name}", res.rc)
    } else {
        format!("{} {name}: {text}", res.rc)
    }
}

/// Maps a failure while connecting (TLS, StartTLS, I/O) to what the user should do.
fn connect_error(dc: &str, target: &Target, e: LdapError) -> AdError {
    let dc = dc.to_string();
    match e {
        LdapError::Io { source } => {
            if let Some(tls) = source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return tls_error(dc, target, tls);
            }
            AdError::Connect { dc, source }
        }
        LdapError::Rustls { source } => tls_error(dc, target, &source),
        LdapError::DNSName { source } => AdError::InvalidConfig {
            message: format!(
                "'{}' cannot be used as a TLS server name: {source}",
                target.host
            ),
        },
        LdapError::LdapResult { result } if !target.ldaps => AdError::StartTlsRefused {
            dc,
            message: result_message(&result),
        },
        other => AdError::Ldap {
            dc,
            operation: "connect",
            message: other.to_string(),
        },
    }
}

fn tls_error(dc: String, target: &Target, e: &rustls::Error) -> AdError {
    use rustls::CertificateError as C;
    let message = e.to_string();
    match e {
        rustls::Error::InvalidCertificate(
            C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension,
        ) => AdError::TlsUntrusted { dc, message },
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => AdError::TlsNameMismatch {
            dc,
            name: target.host.clone(),
            message,
        },
        _ => AdError::Tls { dc, message },
    }
}

impl Session {
    /// Maps an LDAP error of an operation.
    pub(crate) fn op_error(&self, operation: &'static str, e: LdapError) -> AdError {
        match e {
            LdapError::Timeout { .. } => AdError::Timeout {
                dc: self.dc.clone(),
                what: operation,
                after: self.op_timeout,
            },
            LdapError::LdapResult { result } => AdError::Ldap {
                dc: self.dc.clone(),
                operation,
                message: result_message(&result),
            },
            other => AdError::Ldap {
                dc: self.dc.clone(),
                operation,
                message: other.to_string(),
            },
        }
    }

    /// One unpaged search expected to return few entries (base or small subtree).
    /// `Ok(None)` when the base object does not exist.
    pub(crate) async fn search_small(
        &mut self,
        base: &str,
        scope: LdapScope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Option<Vec<SearchEntry>>, AdError> {
        let res = self
            .ldap
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| self.op_error("search", e))?;
        let ldap3::SearchResult(entries, result) = res;
        match result.rc {
            0 => {}
            32 => return Ok(None),
            _ => {
                return Err(AdError::Ldap {
                    dc: self.dc.clone(),
                    operation: "search",
                    message: result_message(&result),
                })
            }
        }
        Ok(Some(
            entries
                .into_iter()
                .filter(|e| !e.is_ref() && !e.is_intermediate())
                .map(SearchEntry::construct)
                .collect(),
        ))
    }

    /// One subtree search sent with `control` (SD flags, Show Deleted), expected to return
    /// few entries; none when `base` does not exist. `operation` names it when the DC
    /// answers with an error.
    pub(crate) async fn search_with(
        &mut self,
        control: RawControl,
        operation: &'static str,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, AdError> {
        let res = self
            .ldap
            .with_controls(control)
            .search(base, LdapScope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|e| self.op_error("search", e))?;
        let ldap3::SearchResult(entries, result) = res;
        if result.rc != 0 && result.rc != 32 {
            return Err(AdError::Ldap {
                dc: self.dc.clone(),
                operation,
                message: format!("rc {}", result.rc),
            });
        }
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect())
    }

    /// The computer objects whose `sAMAccountName` is `sam` (`WS0001$`) under `base`
    /// (subtree), with `attrs`; none when `base` does not exist.
    pub(crate) async fn computers_named(
        &mut self,
        base: &str,
        sam: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, AdError> {
        Ok(self
            .search_small(base, LdapScope::Subtree, &computer_by_sam(sam), attrs)
            .await?
            .unwrap_or_default())
    }

    /// Where accounts are searched: `cfg.base_dn`, else the DC's whole domain
    /// (`defaultNamingContext`).
    pub(crate) async fn search_base(&mut self, cfg: &AdConfig) -> Result<String, AdError> {
        if cfg.base_dn.trim().is_empty() {
            self.root_dse("defaultNamingContext").await
        } else {
            Ok(cfg.base_dn.clone())
        }
    }

    /// A value of the rootDSE (`defaultNamingContext`, `schemaNamingContext`, …).
    pub(crate) async fn root_dse(&mut self, attr: &str) -> Result<String, AdError> {
        let entries = self
            .search_small("", LdapScope::Base, "(objectClass=*)", &[attr])
            .await?
            .unwrap_or_default();
        entries
            .iter()
            .find_map(|e| first(e, attr))
            .ok_or_else(|| AdError::Ldap {
                dc: self.dc.clone(),
                operation: "rootDSE read",
                message: format!("the rootDSE has no {attr}: is this an Active Directory DC?"),
            })
    }

    /// Says goodbye; errors are irrelevant by then.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ldap.unbind()).await;
    }
}

/// First string value of an attribute (attribute names compared case-insensitively).
pub(crate) fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

/// Removes and returns the first string value of an attribute (so that a secret is not
/// left behind in the entry).
pub(crate) fn take_first(entry: &mut SearchEntry, attr: &str) -> Option<String> {
    let key = entry
        .attrs
        .keys()
        .find(|k| k.eq_ignore_ascii_case(attr))?
        .clone();
    entry.attrs.remove(&key).and_then(|v| v.into_iter().next())
}

/// First value of an attribute as bytes, wherever ldap3 put it (values that happen to be
/// valid UTF-8 land in `attrs`, the others in `bin_attrs`).
pub(crate) fn first_bytes(entry: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    if let Some((_, v)) = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
    {
        return v.first().cloned();
    }
    first(entry, attr).map(String::into_bytes)
}

/// First value of an attribute as an unsigned number.
pub(crate) fn first_u64(entry: &SearchEntry, attr: &str) -> Option<u64> {
    first(entry, attr)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|v| u64::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("ldaps://dc1.lab.test").ok();
        assert_eq!(
            t,
            Some(Target {
                ldaps: true,
                host: "dc1.lab.test".into(),
                port: 636
            })
        );
        let t = Target::parse("LDAP://10.0.0.1:3268/DC=x").ok();
        assert_eq!(
            t,
            Some(Target {
                ldaps: false,
                host: "10.0.0.1".into(),
                port: 3268
            })
        );
        let t = Target::parse("ldaps://[::1]:1636").ok();
        assert_eq!(
            t,
            Some(Target {
                ldaps: true,
                host: "::1".into(),
                port: 1636
            })
        );
        assert!(Target::parse("http://dc1").is_err());
        assert!(Target::parse("ldaps://").is_err());
        assert!(Target::parse("ldaps://dc1:x").is_err());
    }
}
