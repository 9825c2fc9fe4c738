//! `inventory`: where the hosts of a sweep come from, and the credentials to reach them.
//!
//! Files, auto-detected by [`load`] (see [`Format::detect`]):
//! - Ansible's YAML inventory (`all:` / `hosts:` / `children:` / `vars:`, top-level groups
//!   other than `all` allowed, as in Ansible's own examples);
//! - Ansible's INI inventory (`[group]`, `[group:vars]`, `[group:children]`, host lines
//!   with `key=value` variables, `#` and `;` comments);
//! - a plain list, one host a line (`name` or `name:port`, `#` comments);
//! - CSV with a header row: `name` (required), `address`/`ansible_host`, `port`/`ansible_port`,
//!   `groups` (`;`-separated); any other column is a host variable.
//!
//! YAML and INI (and plain lists) take Ansible's host ranges: `ws[001:120].lab.test`,
//! `db-[a:f].example.com`, `www[01:50:2].example.com`. Also read: the JSON
//! `ansible-inventory --list` prints (so any inventory plugin Ansible runs can feed
//! trustsweep through a pipe: [`Source::Text`]), inventory directories and
//! several sources merged ([`load_sources`]), `group_vars/` and `host_vars/` beside them,
//! and `ansible.cfg`'s default inventory ([`ansible_cfg`]).
//!
//! Hosts carry the connection variables Ansible's winrm connection plugin uses, with its
//! precedence ([`Host::user`], [`Host::password`], [`Host::winrm_port`], …:
//! `ansible_winrm_host` over `ansible_host`, `ansible_winrm_port` over `ansible_port`,
//! `ansible_winrm_user` over `ansible_user`, `ansible_winrm_password`/`_pass` over
//! `ansible_password`, `ansible_winrm_scheme`, `ansible_winrm_transport`,
//! `ansible_winrm_server_cert_validation`, `ansible_winrm_ca_trust_path` and the
//! timeouts) plus trustsweep's own (`trustsweep_repair_user`,
//! `trustsweep_repair_password`). Variables are inherited the Ansible way: `all` < parent
//! groups < child groups < host, inventory files below `group_vars`/`host_vars` as Ansible
//! orders them; groups at the same depth are applied by `ansible_group_priority`, then by
//! name; each value remembers where it was set ([`Host::origins`]). A value that is
//! exactly `{{ name }}` is that variable; any other template is never used as a value
//! ([`Host::unresolved`], [`TemplateError`]). Secrets ([`is_secret_var`]) are kept in
//! [`Host::secrets`] and never printed.
//!
//! Also: [`pattern`] (Ansible's `--limit` syntax), [`credentials`] (a per-group credentials
//! file that must be private to its owner), [`vault`] (Ansible Vault: `!vault` values and
//! files encrypted whole, see [`load_with_vault`]), and masked views for display
//! ([`Inventory::to_display_rows`], `serde::Serialize`).

pub mod ad;
pub mod ansible_cfg;
pub mod connection;
pub mod credentials;
mod csv_file;
mod display;
pub mod hostpattern;
mod ini;
mod json_inventory;
mod list;
mod model;
pub mod origin;
pub mod pattern;
pub mod sources;
pub mod template;
mod varsdir;
pub mod vault;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use connection::WinrmScheme;
pub use credentials::{Credentials, CredentialsError, GroupCredentials};
pub use csv_file::parse_csv;
pub use display::{DisplayRow, MASK};
pub use hostpattern::{HostPatternError, RangeProblem};
pub use ini::parse_ini;
pub use list::parse_list;
pub use origin::{Level, Origin};
pub use pattern::{Pattern, PatternError};
pub use sources::{load_sources, Source};
pub use template::TemplateError;
pub use vault::{VaultError, VaultIdSpec, VaultSecret, VaultSecretError, VaultSecrets};
pub use yaml::parse_yaml;

/// Variables whose values are secrets: kept out of `vars`, never printed. Besides these,
/// any variable whose name ends in `password`, `passwd` or `_pass` is treated as a secret
/// (see [`is_secret_var`]).
pub const SECRET_VARS: &[&str] = &[
    "ansible_password",
    "ansible_become_password",
    "ansible_winrm_password",
    "trustsweep_repair_password",
    "trustsweep_logon_test_password",
    "ansible_ssh_pass",
    "ansible_ssh_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
    "ansible_su_pass",
    "ansible_su_password",
    "trustsweep_ldap_password",
];

/// Whether a variable holds a secret: listed in [`SECRET_VARS`], or named like a password
/// (`…password`, `…passwd`, `…_pass`, any case), so a CSV column `password` is never shown.
pub fn is_secret_var(name: &str) -> bool {
    let ends_with = |suffix: &str| {
        name.len()
            .checked_sub(suffix.len())
            .and_then(|i| name.as_bytes().get(i..))
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix.as_bytes()))
    };
    SECRET_VARS.iter().any(|s| s.eq_ignore_ascii_case(name))
        || ends_with("password")
        || ends_with("passwd")
        || ends_with("_pass")
}

/// One host of the inventory, with its variables resolved.
#[derive(Clone)]
pub struct Host {
    /// Inventory name (what the user calls it; used in reports and `--limit`).
    pub name: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub address: String,
    /// `ansible_port`, if set.
    pub port: Option<u16>,
    /// Groups the host belongs to (directly or through children), `all` included, in the
    /// order their variables apply: `all` first, the most specific group last.
    pub groups: Vec<String>,
    /// Non-secret variables after inheritance.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Secret variables after inheritance.
    pub secrets: BTreeMap<String, SecretString>,
    /// Where each variable (of `vars`, `secrets` and `unresolved`) was set.
    pub origins: BTreeMap<String, Origin>,
    /// Variables whose value is a template trustsweep does not evaluate: left out of
    /// `vars` and `secrets` (never taken as a literal value), with why. See
    /// [`Host::unresolved_for`].
    pub unresolved: BTreeMap<String, TemplateError>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("groups", &self.groups)
            .field("vars", &self.vars)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("unresolved", &self.unresolved.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Host {
    /// A host called `name`, connecting to `name`, in no group but `all` and `ungrouped`.
    pub fn new(name: impl Into<String>) -> Host {
        let name = name.into();
        Host {
            address: name.clone(),
            name,
            port: None,
            groups: vec!["all".into(), "ungrouped".into()],
            vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            origins: BTreeMap::new(),
            unresolved: BTreeMap::new(),
        }
    }
    /// A string variable (a vault-encrypted one, kept in [`Host::secrets`], included).
    pub fn var(&self, name: &str) -> Option<String> {
        let Some(value) = self.vars.get(name) else {
            return self
                .secrets
                .get(name)
                .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string());
        };
        var_text(value)
    }
    /// A secret variable.
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(name)
    }
    /// The connecting user: `ansible_winrm_user`, else `ansible_user` (the winrm
    /// connection's `remote_user`).
    pub fn user(&self) -> Option<String> {
        self.first_var(connection::USER_VARS)
    }
    /// The connecting password: `ansible_winrm_password`, else `ansible_winrm_pass`, else
    /// `ansible_password` (the winrm connection's `remote_password`).
    pub fn password(&self) -> Option<&SecretString> {
        connection::PASSWORD_VARS
            .iter()
            .find_map(|n| self.secret(n))
    }
    /// `trustsweep_repair_user`: the domain account that may reset machine passwords.
    pub fn repair_user(&self) -> Option<String> {
        self.var("trustsweep_repair_user")
    }
    /// `trustsweep_repair_password`.
    pub fn repair_password(&self) -> Option<&SecretString> {
        self.secret("trustsweep_repair_password")
    }
    /// `ansible_winrm_scheme`, lower-cased (`http` or `https`; checked when loaded).
    pub fn scheme(&self) -> Option<String> {
        self.var("ansible_winrm_scheme")
            .map(|s| s.trim().to_ascii_lowercase())
    }
    /// `ansible_winrm_transport`, as written (`ntlm`, `kerberos`, …).
    pub fn transport(&self) -> Option<String> {
        self.var("ansible_winrm_transport")
    }
    /// `ansible_winrm_server_cert_validation`: `Some(false)` for `ignore`, `Some(true)` for
    /// `validate`, `None` when unset.
    pub fn cert_validation(&self) -> Option<bool> {
        self.var("ansible_winrm_server_cert_validation")
            .map(|s| !s.trim().eq_ignore_ascii_case("ignore"))
    }
    /// Whether the host is in `group` (directly or through a child group).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// A variable's value as [`Host::var`] gives it: strings, numbers and booleans as text.
fn var_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A loaded inventory: hosts in file order.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Where it came from (for messages), when it is one source.
    pub source: Option<PathBuf>,
    /// Every source it was loaded from, in order.
    pub sources: Vec<PathBuf>,
    /// Each group (in the order groups were made) with its hosts' names in Ansible's
    /// order (`Group.get_hosts`), for subscripts; empty when the inventory was built
    /// without groups' order (then hosts' order is used).
    pub(crate) group_hosts: Vec<(String, Vec<String>)>,
}

impl Inventory {
    /// The hosts `pattern` selects, in inventory order (Ansible's `--limit`, subscripts
    /// such as `webservers[0:2]` included).
    pub fn limit(&self, pattern: &Pattern) -> Inventory {
        let keep = pattern.select(self).unwrap_or_else(|_| {
            let groups = self.group_names();
            self.hosts
                .iter()
                .map(|h| pattern.matches_in(h, &groups))
                .collect()
        });
        self.keep(&keep)
    }

    /// [`Inventory::limit`], saying when a subscript cannot be applied.
    pub fn try_limit(&self, pattern: &Pattern) -> Result<Inventory, PatternError> {
        Ok(self.keep(&pattern.select(self)?))
    }

    fn keep(&self, keep: &[bool]) -> Inventory {
        Inventory {
            hosts: self
                .hosts
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(h, _)| h.clone())
                .collect(),
            source: self.source.clone(),
            sources: self.sources.clone(),
            group_hosts: self.group_hosts.clone(),
        }
    }

    /// Every group some host is in, and every group the inventory defines.
    pub fn group_names(&self) -> BTreeSet<String> {
        self.hosts
            .iter()
            .flat_map(|h| h.groups.iter().cloned())
            .chain(self.group_hosts.iter().map(|(g, _)| g.clone()))
            .collect()
    }

    /// Each group with the indices (into `hosts`) of its hosts, in Ansible's order.
    pub(crate) fn group_members(&self) -> Vec<(String, Vec<usize>)> {
        let index: std::collections::HashMap<&str, usize> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        if !self.group_hosts.is_empty() {
            return self
                .group_hosts
                .iter()
                .map(|(g, names)| {
                    let ix = names
                        .iter()
                        .filter_map(|n| index.get(n.as_str()).copied())
                        .collect();
                    (g.clone(), ix)
                })
                .collect();
        }
        // No recorded order: groups by name, hosts in inventory order.
        let mut by_group: std::collections::BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            for g in &h.groups {
                by_group.entry(g.as_str()).or_default().push(i);
            }
        }
        by_group
            .into_iter()
            .map(|(g, ix)| (g.to_string(), ix))
            .collect()
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Fills in credentials from a credentials file where the inventory sets none (see
    /// [`Credentials::apply`]).
    pub fn apply_credentials(&mut self, credentials: &Credentials) {
        credentials.apply(self);
    }
}

/// Why an inventory could not be loaded. Every variant names the file and, where known,
/// the line, and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The file could not be read.
    #[error("cannot read inventory {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid for its format.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
    /// A vault-encrypted value or file could not be decrypted (the wrong vault password,
    /// none given, or a damaged vault text).
    #[error("{path}{at}: {what}: cannot decrypt: {source}", at = if *line > 0 { format!(":{line}") } else { String::new() })]
    Vault {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value (0 for a whole encrypted file).
        line: usize,
        /// Which value: the host or group and the variable, or the file itself.
        what: String,
        /// Why.
        #[source]
        source: vault::VaultError,
    },
    /// A vault password could not be had.
    #[error(transparent)]
    VaultSecret(#[from] vault::VaultSecretError),
}

/// The inventory file formats [`load`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Ansible's YAML inventory.
    Yaml,
    /// Ansible's INI inventory.
    Ini,
    /// One host a line.
    List,
    /// CSV with a header row naming a `name` column.
    Csv,
}

impl Format {
    /// Picks the format by extension (`.yml`/`.yaml`/`.json`, `.csv`, `.ini`), else by
    /// content: YAML when the first line that is not blank or a comment is `---`, `{`, or
    /// `all:`, or a bare `key:` with an indented line under it; CSV when that line has a comma (and no `=`); INI when any line is a
    /// `[section]` or holds a `key=value`; a plain list otherwise.
    pub fn detect(path: &Path, text: &str) -> Format {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("yml" | "yaml" | "json") => return Format::Yaml,
            Some("csv") => return Format::Csv,
            Some("ini") => return Format::Ini,
            _ => {}
        }
        let meaningful = || {
            text.lines()
                .map(|l| l.trim().trim_start_matches('\u{feff}'))
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        };
        let Some(first) = meaningful().next() else {
            return Format::List;
        };
        let first_code = first.split(" #").next().unwrap_or(first).trim_end();
        let bare_key = first_code.strip_suffix(':').is_some_and(|k| {
            !k.is_empty()
                && !k.contains(char::is_whitespace)
                && !k.contains('=')
                && !k.starts_with('[')
        });
        // A bare `key:` is YAML when it is `all:` or the next line is indented under it
        // (a plain list's `ws1:` is a host with a missing port, not an empty group).
        let bare_key = bare_key
            && (first_code == "all:"
                || text
                    .lines()
                    .skip_while(|l| l.trim().trim_start_matches('\u{feff}') != first)
                    .skip(1)
                    .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .is_some_and(|l| l.starts_with([' ', '\t'])));
        if first == "---"
            || first.starts_with("--- ")
            || first.starts_with("%YAML")
            || first.starts_with('{')
            || bare_key
        {
            return Format::Yaml;
        }
        if first.contains(',') && !first.contains('=') && !first.starts_with('[') {
            return Format::Csv;
        }
        if meaningful().any(|l| ini::is_section_line(l) || l.contains('=')) {
            return Format::Ini;
        }
        Format::List
    }
}

/// Loads an inventory file of any supported [`Format`] (detected with [`Format::detect`]).
/// An empty file is an empty inventory. Vault-encrypted values or files are an error
/// saying how to give a vault password: see [`load_with_vault`].
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    load_with_vault(path, &VaultSecrets::none())
}

/// [`load`], decrypting with `vault`: a file encrypted whole by `ansible-vault encrypt`,
/// and YAML's `!vault` values (kept in [`Host::secrets`] whatever their name).
///
/// `path` may be an inventory directory; `group_vars/` and `host_vars/` beside the file
/// (or in the directory) are read too: see [`load_sources`].
pub fn load_with_vault(path: &Path, vault: &VaultSecrets) -> Result<Inventory, InventoryError> {
    load_sources(&[Source::Path(path.to_path_buf())], vault)
}

/// A file's text, decrypted first if `ansible-vault encrypt` encrypted it whole (as
/// Ansible's loader does for every file it reads). The decrypted copy is wiped on drop.
pub(crate) fn read_text(
    path: &Path,
    vault: &VaultSecrets,
) -> Result<zeroize::Zeroizing<String>, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = zeroize::Zeroizing::new(text);
    if !vault::is_vault_encrypted(&text) {
        return Ok(text);
    }
    let vault_err = |source| InventoryError::Vault {
        path: path.to_path_buf(),
        line: 0,
        what: "the file (encrypted whole by ansible-vault)".into(),
        source,
    };
    let plain = vault.decrypt(&text).map_err(vault_err)?;
    vault::zeroizing_utf8(plain)
        .map(zeroize::Zeroizing::new)
        .map_err(vault_err)
}

/// Parses inventory text of a known format; `path` is used in messages.
pub fn parse(text: &str, path: &Path, format: Format) -> Result<Inventory, InventoryError> {
    match format {
        Format::Yaml => parse_yaml(text, path),
        Format::Ini => parse_ini(text, path),
        Format::List => parse_list(text, path),
        Format::Csv => parse_csv(text, path),
    }
}
