//! `inventory`: where the hosts of a sweep come from, and the credentials to reach them.
//!
//! Today: Ansible's YAML inventory shape (`all:` / `hosts:` / `children:` / `vars:`) with
//! the connection variables Ansible's WinRM plugin uses (`ansible_host`, `ansible_port`,
//! `ansible_user`, `ansible_password`, `ansible_winrm_scheme`, `ansible_winrm_transport`)
//! plus trustsweep's own (`trustsweep_repair_user`, `trustsweep_repair_password`).
//! Variables are inherited the Ansible way: `all` < parent groups < child groups < host.

pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use yaml::parse_yaml;

/// Variables whose values are secrets: kept out of `vars`, never printed.
pub const SECRET_VARS: &[&str] = &[
    "ansible_password",
    "ansible_become_password",
    "ansible_winrm_password",
    "trustsweep_repair_password",
];

/// One host of the inventory, with its variables resolved.
#[derive(Clone)]
pub struct Host {
    /// Inventory name (what the user calls it; used in reports and `--limit`).
    pub name: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub address: String,
    /// `ansible_port`, if set.
    pub port: Option<u16>,
    /// Groups the host belongs to (directly or through children), sorted.
    pub groups: Vec<String>,
    /// Non-secret variables after inheritance.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Secret variables after inheritance.
    pub secrets: BTreeMap<String, SecretString>,
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
            .finish()
    }
}

impl Host {
    /// A string variable.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.vars.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    /// A secret variable.
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        self.secrets.get(name)
    }
    /// `ansible_user`.
    pub fn user(&self) -> Option<String> {
        self.var("ansible_user")
    }
    /// `ansible_password`.
    pub fn password(&self) -> Option<&SecretString> {
        self.secret("ansible_password")
    }
}

/// A loaded inventory: hosts in file order.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Where it came from (for messages).
    pub source: Option<PathBuf>,
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
}

/// Loads an inventory file (YAML in Ansible's shape).
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read { path: path.to_path_buf(), source })?;
    let mut inv = parse_yaml(&text, path)?;
    inv.source = Some(path.to_path_buf());
    Ok(inv)
}
