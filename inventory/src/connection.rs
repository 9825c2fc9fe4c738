//! The connection settings of a host, read the way Ansible's `winrm` connection plugin
//! reads them (`ansible/plugins/connection/winrm.py`): an option listing several
//! variables takes the last one listed that the host has, so the winrm-specific names win
//! over the generic ones whatever level each was set at.
//!
//! | setting | variables, winning first | default |
//! |---|---|---|
//! | address | `ansible_winrm_host`, `ansible_host` | the inventory name |
//! | port | `ansible_winrm_port`, `ansible_port` | 5986; 5985 when the scheme is `http` (Ansible: 5986 whatever the scheme) |
//! | scheme | `ansible_winrm_scheme` | `http` when the port is 5985, else `https` |
//! | user | `ansible_winrm_user`, `ansible_user` | |
//! | password | `ansible_winrm_password`, `ansible_winrm_pass`, `ansible_password` | |
//! | operation timeout | `ansible_winrm_connection_timeout`, `ansible_winrm_operation_timeout_sec` | |
//! | read timeout | `ansible_winrm_connection_timeout` + 10 s, `ansible_winrm_read_timeout_sec` | |
//! | CA file | `ansible_winrm_ca_trust_path` | |

use std::path::PathBuf;
use std::time::Duration;

use crate::model::seconds_of;
use crate::{Host, TemplateError};

/// The address's variables, winning first.
pub const ADDRESS_VARS: &[&str] = &["ansible_winrm_host", "ansible_host"];
/// The port's variables, winning first.
pub const PORT_VARS: &[&str] = &["ansible_winrm_port", "ansible_port"];
/// The connecting user's variables, winning first.
pub const USER_VARS: &[&str] = &["ansible_winrm_user", "ansible_user"];
/// The connecting password's variables, winning first.
pub const PASSWORD_VARS: &[&str] = &[
    "ansible_winrm_password",
    "ansible_winrm_pass",
    "ansible_password",
];
/// Every other variable of the connection trustsweep acts on.
pub const OTHER_CONNECTION_VARS: &[&str] = &[
    "ansible_winrm_scheme",
    "ansible_winrm_transport",
    "ansible_winrm_server_cert_validation",
    "ansible_winrm_ca_trust_path",
    "ansible_winrm_connection_timeout",
    "ansible_winrm_operation_timeout_sec",
    "ansible_winrm_read_timeout_sec",
];

/// HTTP or HTTPS, as the winrm connection picks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinrmScheme {
    /// `http` (5985; NTLM message encryption protects the payload).
    Http,
    /// `https` (5986).
    Https,
}

impl Host {
    /// The first of `names` the host has a usable value for, as text (secrets included).
    pub(crate) fn first_var(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| match self.vars.get(*n) {
            Some(serde_json::Value::Null) => None,
            Some(v) => crate::var_text(v),
            None => self
                .secrets
                .get(*n)
                .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string()),
        })
    }

    /// Whether the host has `name` (a value, a secret, or an unresolved template).
    fn has(&self, name: &str) -> bool {
        self.vars.get(name).is_some_and(|v| !v.is_null())
            || self.secrets.contains_key(name)
            || self.unresolved.contains_key(name)
    }

    /// When the variable among `names` (winning first) that would give a setting is a
    /// template trustsweep does not evaluate, why; `None` when the setting is a plain
    /// value or unset.
    pub fn unresolved_for(&self, names: &[&str]) -> Option<&TemplateError> {
        if self.unresolved.is_empty() {
            return None;
        }
        let winner = names.iter().find(|n| self.has(n))?;
        self.unresolved.get(*winner)
    }

    /// The first unresolved template among the connection's settings other than the
    /// credentials (address, port, scheme, transport, TLS, timeouts).
    pub fn connection_unresolved(&self) -> Option<&TemplateError> {
        if self.unresolved.is_empty() {
            return None;
        }
        [ADDRESS_VARS, PORT_VARS]
            .into_iter()
            .find_map(|names| self.unresolved_for(names))
            .or_else(|| {
                OTHER_CONNECTION_VARS
                    .iter()
                    .find_map(|n| self.unresolved.get(*n))
            })
    }

    /// The scheme: `ansible_winrm_scheme`, else `http` when the port is 5985, else
    /// `https` (the winrm connection's rule). `None` when the scheme is neither (checked
    /// when loaded, so only for hosts built by hand).
    pub fn winrm_scheme(&self) -> Option<WinrmScheme> {
        match self.scheme().as_deref() {
            Some("http") => Some(WinrmScheme::Http),
            Some("https") => Some(WinrmScheme::Https),
            Some(_) => None,
            None if self.port == Some(5985) => Some(WinrmScheme::Http),
            None => Some(WinrmScheme::Https),
        }
    }

    /// The port: `ansible_winrm_port`, else `ansible_port` ([`Host::port`]), else 5985 for
    /// `http` and 5986 for `https`. Ansible's plugin would use 5986 for `http` too, which
    /// no default listener answers; trustsweep uses the scheme's own port.
    pub fn winrm_port(&self) -> u16 {
        match (self.port, self.winrm_scheme()) {
            (Some(p), _) => p,
            (None, Some(WinrmScheme::Http)) => 5985,
            (None, _) => 5986,
        }
    }

    /// `ansible_winrm_ca_trust_path`: the CA bundle to verify this host's certificate with.
    pub fn ca_trust_path(&self) -> Option<PathBuf> {
        self.first_var(&["ansible_winrm_ca_trust_path"])
            .map(PathBuf::from)
    }

    /// The WS-Management OperationTimeout: `ansible_winrm_connection_timeout`, else
    /// `ansible_winrm_operation_timeout_sec` (values checked when loaded).
    pub fn operation_timeout(&self) -> Option<Duration> {
        self.seconds("ansible_winrm_connection_timeout")
            .or_else(|| self.seconds("ansible_winrm_operation_timeout_sec"))
    }

    /// The HTTP read timeout: `ansible_winrm_connection_timeout` + 10 s, else
    /// `ansible_winrm_read_timeout_sec`.
    pub fn read_timeout(&self) -> Option<Duration> {
        match self.seconds("ansible_winrm_connection_timeout") {
            Some(c) => Some(c + Duration::from_secs(10)),
            None => self.seconds("ansible_winrm_read_timeout_sec"),
        }
    }

    /// `trustsweep_logon_test_user`: the least-privileged account of the domain-logon test.
    pub fn logon_test_user(&self) -> Option<String> {
        self.first_var(&["trustsweep_logon_test_user"])
    }

    /// `trustsweep_logon_test_password`.
    pub fn logon_test_password(&self) -> Option<&secrecy::SecretString> {
        self.secret("trustsweep_logon_test_password")
    }

    fn seconds(&self, name: &str) -> Option<Duration> {
        let v = self.vars.get(name)?;
        seconds_of(v).and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}
