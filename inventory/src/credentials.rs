//! A credentials file: per group (or `all`), the account that connects (`user`,
//! `password`) and the domain account that may reset machine passwords (`repair_user`,
//! `repair_password`), kept out of the inventory so the inventory can be shared.
//!
//! Two forms, told apart by the first line that is not blank or a comment:
//!
//! ```yaml
//! all:
//!   user: Administrator
//!   password: "…"
//! workstations:
//!   repair_user: LAB\svc-repair
//!   repair_password: "…"
//! ```
//!
//! ```text
//! # GROUP.KEY=VALUE; a KEY without a group is for all
//! user=Administrator
//! all.password=…
//! workstations.repair_user=LAB\svc-repair
//! ```
//!
//! (`ansible_user`, `ansible_password`, `trustsweep_repair_user` and
//! `trustsweep_repair_password` are accepted as the keys too.) In the `KEY=VALUE` form the
//! value is everything after the `=`, trimmed, without surrounding quotes if it has them.
//!
//! On Unix the file is refused unless only its owner can read it (`mode & 0o077 == 0`).
//! Errors never show a value.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::{Host, Inventory};

/// The credentials the file gives one group.
#[derive(Clone, Default)]
pub struct GroupCredentials {
    /// Connecting account (`ansible_user`).
    pub user: Option<String>,
    /// Its password (`ansible_password`).
    pub password: Option<SecretString>,
    /// Domain account with the Reset Password right (`trustsweep_repair_user`).
    pub repair_user: Option<String>,
    /// Its password (`trustsweep_repair_password`).
    pub repair_password: Option<SecretString>,
}

impl fmt::Debug for GroupCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: &Option<SecretString>| s.as_ref().map(|_| crate::MASK);
        f.debug_struct("GroupCredentials")
            .field("user", &self.user)
            .field("password", &mask(&self.password))
            .field("repair_user", &self.repair_user)
            .field("repair_password", &mask(&self.repair_password))
            .finish()
    }
}

/// A loaded credentials file: group name to credentials.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    groups: BTreeMap<String, GroupCredentials>,
    /// Where it came from.
    pub source: Option<PathBuf>,
}

/// Why a credentials file was refused. Messages name the file and what to do, and never
/// contain a value from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("cannot read credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Others than its owner may read or change the file.
    #[error(
        "credentials file {path} is open to other users (mode {mode:04o}): run `chmod 600 {path}` so only you can read it",
        path = path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not valid.
    #[error("{path}:{line}: {message}", path = path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

#[derive(Clone, Copy)]
enum Field {
    User,
    Password,
    RepairUser,
    RepairPassword,
}

fn field(key: &str) -> Option<Field> {
    match key.trim().to_ascii_lowercase().as_str() {
        "user" | "ansible_user" => Some(Field::User),
        "password" | "ansible_password" => Some(Field::Password),
        "repair_user" | "trustsweep_repair_user" => Some(Field::RepairUser),
        "repair_password" | "trustsweep_repair_password" => Some(Field::RepairPassword),
        _ => None,
    }
}

const KEYS: &str = "user, password, repair_user or repair_password";

impl GroupCredentials {
    fn set(&mut self, f: Field, value: String) -> bool {
        let slot_was_set = match f {
            Field::User => self.user.replace(value).is_some(),
            Field::Password => self.password.replace(SecretString::from(value)).is_some(),
            Field::RepairUser => self.repair_user.replace(value).is_some(),
            Field::RepairPassword => self
                .repair_password
                .replace(SecretString::from(value))
                .is_some(),
        };
        !slot_was_set
    }
}

impl Credentials {
    /// Reads a credentials file, refusing it (on Unix) unless only its owner may read it.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let read_err = |source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(CredentialsError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_err)?;
        let mut creds = Credentials::parse(&text, path)?;
        creds.source = Some(path.to_path_buf());
        Ok(creds)
    }

    /// Parses credentials text (no permission check); `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let key_value = first.is_some_and(|l| match (l.find('='), l.find(':')) {
            (Some(e), Some(c)) => e < c,
            (Some(_), None) => true,
            _ => false,
        });
        let mut creds = if key_value {
            parse_key_value(text, path)?
        } else {
            parse_yaml(text, path)?
        };
        creds.source = Some(path.to_path_buf());
        Ok(creds)
    }

    /// The credentials given for `group`.
    pub fn get(&self, group: &str) -> Option<&GroupCredentials> {
        self.groups.get(group)
    }

    /// The groups the file names.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Whether the file gives nothing.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// What the file gives `host`, field by field: from the most specific of the host's
    /// groups that sets the field (the last in [`Host::groups`]), else from `all`.
    pub fn for_host(&self, host: &Host) -> GroupCredentials {
        let order: Vec<&str> = host
            .groups
            .iter()
            .rev()
            .map(String::as_str)
            .chain(std::iter::once("all"))
            .collect();
        GroupCredentials {
            user: self.pick(&order, |c| c.user.as_ref()),
            password: self.pick(&order, |c| c.password.as_ref()),
            repair_user: self.pick(&order, |c| c.repair_user.as_ref()),
            repair_password: self.pick(&order, |c| c.repair_password.as_ref()),
        }
    }

    fn pick<T: Clone>(
        &self,
        order: &[&str],
        get: impl Fn(&GroupCredentials) -> Option<&T>,
    ) -> Option<T> {
        order
            .iter()
            .filter_map(|g| self.groups.get(*g))
            .find_map(|c| get(c).cloned())
    }

    /// Gives each host of `inventory` the credentials of its groups, each only where the
    /// inventory sets none (the inventory wins: a host or group variable there is kept).
    pub fn apply(&self, inventory: &mut Inventory) {
        let file: Option<std::sync::Arc<Path>> = self.source.as_deref().map(std::sync::Arc::from);
        for host in &mut inventory.hosts {
            let c = self.for_host(host);
            let origin = crate::Origin {
                level: crate::Level::Credentials,
                scope: host.name.clone(),
                file: file.clone(),
                line: 0,
            };
            let fill_var = |host: &mut Host, name: &str, value: Option<String>| {
                let Some(v) = value else { return };
                if host.vars.contains_key(name) || host.secrets.contains_key(name) {
                    return;
                }
                host.vars
                    .insert(name.to_string(), serde_json::Value::String(v));
                host.origins.insert(name.to_string(), origin.clone());
                // The file gives what the inventory's template could not.
                host.unresolved.remove(name);
            };
            fill_var(host, "ansible_user", c.user);
            fill_var(host, "trustsweep_repair_user", c.repair_user);
            let fill_secret = |host: &mut Host, name: &str, value: Option<SecretString>| {
                let Some(v) = value else { return };
                if host.secrets.contains_key(name) {
                    return;
                }
                host.secrets.insert(name.to_string(), v);
                host.origins.insert(name.to_string(), origin.clone());
                host.unresolved.remove(name);
            };
            fill_secret(host, "ansible_password", c.password);
            fill_secret(host, "trustsweep_repair_password", c.repair_password);
        }
    }
}

fn syntax(path: &Path, line: usize, message: impl Into<String>) -> CredentialsError {
    CredentialsError::Syntax {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn parse_key_value(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
    let mut creds = Credentials::default();
    let mut first_line: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(
                path,
                line_no,
                "expected GROUP.KEY=VALUE (like all.user=Administrator) on this line",
            ));
        };
        let key = key.trim();
        let (group, name) = match key.rsplit_once('.') {
            Some((g, k)) => (g.trim(), k.trim()),
            None => ("all", key),
        };
        if group.is_empty() {
            return Err(syntax(path, line_no, format!("'{key}' has an empty group name: write GROUP.{name}=VALUE or {name}=VALUE for all")));
        }
        let Some(f) = field(name) else {
            return Err(syntax(
                path,
                line_no,
                format!("unknown key '{name}': use {KEYS}"),
            ));
        };
        let value = unquote(value.trim());
        let slot = (group.to_string(), name.to_ascii_lowercase());
        if let Some(prev) = first_line.get(&slot) {
            return Err(syntax(
                path,
                line_no,
                format!("'{key}' is set twice (first on line {prev}): keep one"),
            ));
        }
        first_line.insert(slot, line_no);
        creds
            .groups
            .entry(group.to_string())
            .or_default()
            .set(f, value.to_string());
    }
    Ok(creds)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

fn parse_yaml(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
    use serde_norway::Value;
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        // serde_norway's messages describe structure, not values.
        syntax(path, line, format!("not valid YAML: {e}"))
    })?;
    let line_of = |key: &str, after: usize| -> usize {
        text.lines()
            .enumerate()
            .skip(after)
            .find(|(_, l)| {
                let t = l.trim_start();
                let t = t.strip_prefix(['"', '\'']).unwrap_or(t);
                t.strip_prefix(key).is_some_and(|r| {
                    r.trim_start_matches(['"', '\''])
                        .trim_start()
                        .starts_with(':')
                })
            })
            .map(|(i, _)| i + 1)
            .unwrap_or(0)
    };
    let mut creds = Credentials::default();
    let top = match doc {
        Value::Null => return Ok(creds),
        Value::Mapping(m) => m,
        _ => return Err(syntax(path, 1, "a credentials file maps group names (or all) to user, password, repair_user, repair_password")),
    };
    for (g, body) in top {
        let Some(group) = g.as_str().map(str::to_string) else {
            return Err(syntax(path, 0, "group names must be strings"));
        };
        let gline = line_of(&group, 0);
        let body = match body {
            Value::Null => continue,
            Value::Mapping(m) => m,
            _ => {
                return Err(syntax(
                    path,
                    gline,
                    format!("group '{group}' must map keys ({KEYS}) to values"),
                ))
            }
        };
        let entry = creds.groups.entry(group.clone()).or_default();
        for (k, v) in body {
            let Some(k) = k.as_str() else {
                return Err(syntax(
                    path,
                    gline,
                    format!("group '{group}': keys must be strings ({KEYS})"),
                ));
            };
            let kline = line_of(k, gline.saturating_sub(1));
            let Some(f) = field(k) else {
                return Err(syntax(
                    path,
                    kline,
                    format!("group '{group}' has an unknown key '{k}': use {KEYS}"),
                ));
            };
            let value = match v {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(syntax(
                        path,
                        kline,
                        format!(
                            "group '{group}': '{k}' must be a single value, in quotes if need be"
                        ),
                    ))
                }
            };
            entry.set(f, value);
        }
    }
    Ok(creds)
}
