//! Where each variable of a host came from: the file, the line and the precedence level
//! that won, for `trustsweep inventory --explain` (Ansible's `ansible-inventory --host`
//! with origins).
//!
//! The levels are Ansible's "Understanding variable precedence" list as it applies to an
//! inventory (entries 3 to 9), which is also the order `VariableManager.get_vars` merges
//! them with the default `VARIABLE_PRECEDENCE` (`all_inventory`, `groups_inventory`,
//! `all_plugins_inventory`, …, then the host's own): later levels win; within a group
//! level, groups apply by depth below `all`, then `ansible_group_priority`, then name.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A variable's precedence level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// `all`'s variables in an inventory file (`[all:vars]`, `all: vars:`), or in the
    /// JSON of `ansible-inventory --list --export`.
    InventoryAll,
    /// Another group's variables in an inventory file.
    InventoryGroup,
    /// `group_vars/all` beside the inventory.
    GroupVarsAll,
    /// `group_vars/<group>` beside the inventory.
    GroupVars,
    /// The host's own variables in an inventory file (or `_meta.hostvars` of the JSON
    /// `ansible-inventory --list` prints, which Ansible has already merged).
    InventoryHost,
    /// `host_vars/<host>` beside the inventory.
    HostVars,
    /// A `--credentials` file: fills only what the inventory leaves unset.
    Credentials,
}

impl Level {
    /// The level's name as `--explain` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::InventoryAll => "inventory all vars",
            Level::InventoryGroup => "inventory group vars",
            Level::GroupVarsAll => "group_vars/all",
            Level::GroupVars => "group_vars",
            Level::InventoryHost => "inventory host vars",
            Level::HostVars => "host_vars",
            Level::Credentials => "credentials file",
        }
    }

    /// Its place in Ansible's precedence list ("Understanding variable precedence",
    /// lowest first); the credentials file, which is trustsweep's, comes last.
    pub fn rank(self) -> u8 {
        match self {
            Level::InventoryAll => 3,
            Level::InventoryGroup => 3,
            Level::GroupVarsAll => 4,
            Level::GroupVars => 6,
            Level::InventoryHost => 8,
            Level::HostVars => 9,
            Level::Credentials => 100,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a variable's value was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The precedence level.
    pub level: Level,
    /// The group (group levels) or host (host levels) it was set on.
    pub scope: String,
    /// The file, when there is one.
    pub file: Option<Arc<Path>>,
    /// 1-based line, 0 when unknown.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(p) if self.line > 0 => write!(f, "{}:{}", p.display(), self.line)?,
            Some(p) => write!(f, "{}", p.display())?,
            None => f.write_str("<no file>")?,
        }
        write!(f, " ({} of {})", self.level, self.scope)
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Origin", 4)?;
        st.serialize_field("level", &self.level)?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("file", &self.file.as_ref().map(|p| p.display().to_string()))?;
        st.serialize_field("line", &self.line)?;
        st.end()
    }
}
