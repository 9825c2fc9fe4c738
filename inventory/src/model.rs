//! The group graph every file format is read into, and its resolution into hosts the
//! Ansible way: every host is in `all`; a host with no other group is in `ungrouped`;
//! membership flows up from child groups to parents; variables are applied from the
//! groups ordered by (depth below `all`, `ansible_group_priority`, name), then the host's
//! own, later definitions winning within each.
//!
//! The levels apply in Ansible's order (`VariableManager.get_vars` with the default
//! `VARIABLE_PRECEDENCE`): `all`'s inventory vars, the other groups' inventory vars,
//! `group_vars/all`, `group_vars/<group>` (each vars directory in source order, groups in
//! the order above), the host's inventory vars, `host_vars/<host>`. Each value keeps where
//! it was set ([`Origin`]). Several files (an inventory directory, repeated `-i`) read
//! into one builder merge as Ansible merges its sources: a later definition of a group's
//! or host's variable wins.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::origin::{Level, Origin};
use crate::template;
use crate::{is_secret_var, Host, Inventory, InventoryError};

const ALL: usize = 0;
const UNGROUPED: usize = 1;

/// Where a variable was set: a file of [`Builder::files`] and its 1-based line (0 unknown).
#[derive(Clone, Copy, Debug)]
struct At {
    file: usize,
    line: usize,
}

/// Variables and where each was set.
type Vars = BTreeMap<String, (Value, At)>;

struct GroupDef {
    name: String,
    line: usize,
    vars: Vars,
    parents: BTreeSet<usize>,
    /// Child groups in the order they were added (Ansible's `child_groups`).
    children: Vec<usize>,
    /// Hosts listed in this group itself, in the order they were added.
    hosts: Vec<usize>,
    priority: i64,
}

/// One vars directory's `group_vars/` and `host_vars/` (see [`crate::varsdir`]).
#[derive(Default)]
struct Layer {
    groups: HashMap<String, Vars>,
    hosts: HashMap<String, Vars>,
}

/// What a vars file sets variables of.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entity<'a> {
    /// `group_vars/<name>`.
    Group(&'a str),
    /// `host_vars/<name>`.
    Host(&'a str),
}

struct HostDef {
    name: String,
    groups: BTreeSet<usize>,
    vars: Vars,
}

/// Collects groups and hosts as a parser meets them.
pub(crate) struct Builder<'p> {
    path: &'p Path,
    /// Every file read so far; `file` is the one being read.
    files: Vec<Arc<Path>>,
    file: usize,
    /// `group_vars`/`host_vars` directories, in source order.
    layers: Vec<Layer>,
    groups: Vec<GroupDef>,
    group_ix: HashMap<String, usize>,
    hosts: Vec<HostDef>,
    host_ix: HashMap<String, usize>,
    /// Host-in-group pairs added so far (bounded by [`MAX_INVENTORY_MEMBERSHIPS`]).
    memberships: usize,
    /// Values decrypted from `!vault`: such a variable holds [`VAULT_MARK`] and its index
    /// here, so the plaintext never enters a JSON value (see [`Builder::vaulted`]).
    vaulted: Vec<SecretString>,
}

/// The most hosts one inventory may hold (as many as one range may make).
pub(crate) const MAX_INVENTORY_HOSTS: usize = crate::hostpattern::MAX_RANGE_HOSTS;

/// The most host-in-group entries one inventory may hold.
pub(crate) const MAX_INVENTORY_MEMBERSHIPS: usize = 1_000_000;

/// Starts the stand-in value of a vault-decrypted variable (a NUL no YAML scalar holds
/// unless escaped on purpose).
const VAULT_MARK: &str = "\u{0}trustsweep-vault:";

impl<'p> Builder<'p> {
    pub(crate) fn new(path: &'p Path) -> Self {
        let mut b = Builder {
            path,
            files: vec![Arc::from(path)],
            file: 0,
            layers: Vec::new(),
            groups: Vec::new(),
            group_ix: HashMap::new(),
            hosts: Vec::new(),
            host_ix: HashMap::new(),
            memberships: 0,
            vaulted: Vec::new(),
        };
        b.group("all", 0);
        b.group("ungrouped", 0);
        // As Ansible's InventoryData: `ungrouped` is `all`'s first child.
        if let Some(u) = b.groups.get_mut(UNGROUPED) {
            u.parents.insert(ALL);
        }
        if let Some(a) = b.groups.get_mut(ALL) {
            a.children.push(UNGROUPED);
        }
        b
    }

    /// Reads on from `path` (the next inventory file, or a vars file): messages and
    /// origins name it from now on.
    pub(crate) fn set_file(&mut self, path: &Path) {
        if let Some(i) = self.files.iter().position(|f| &**f == path) {
            self.file = i;
        } else {
            self.files.push(Arc::from(path));
            self.file = self.files.len() - 1;
        }
    }

    /// The file being read.
    pub(crate) fn current_path(&self) -> PathBuf {
        self.files
            .get(self.file)
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| self.path.to_path_buf())
    }

    fn at(&self, line: usize) -> At {
        At {
            file: self.file,
            line,
        }
    }

    fn origin(&self, level: Level, scope: &str, at: At) -> Origin {
        Origin {
            level,
            scope: scope.to_string(),
            file: self.files.get(at.file).cloned(),
            line: at.line,
        }
    }

    /// The host called `name`, if some file listed it.
    pub(crate) fn host_index(&self, name: &str) -> Option<usize> {
        self.host_ix.get(name).copied()
    }

    /// Every group's name, in the order they were made.
    pub(crate) fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// Every host's name, in the order they first appeared.
    pub(crate) fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Starts the variables of the next vars directory (`group_vars`/`host_vars` beside
    /// one source); returns its index for [`Builder::set_layer_var`].
    pub(crate) fn add_layer(&mut self) -> usize {
        self.layers.push(Layer::default());
        self.layers.len() - 1
    }

    /// A variable from a `group_vars`/`host_vars` file (the current file).
    pub(crate) fn set_layer_var(
        &mut self,
        layer: usize,
        entity: Entity<'_>,
        key: &str,
        value: Value,
        line: usize,
    ) -> Result<(), InventoryError> {
        let what = match entity {
            Entity::Group(n) => format!("group '{n}'"),
            Entity::Host(n) => format!("host '{n}'"),
        };
        check_var(key, &value).map_err(|m| self.err(line, format!("{what}: {m}")))?;
        let at = self.at(line);
        let Some(l) = self.layers.get_mut(layer) else {
            return Ok(());
        };
        let vars = match entity {
            Entity::Group(n) => l.groups.entry(n.to_string()).or_default(),
            Entity::Host(n) => l.hosts.entry(n.to_string()).or_default(),
        };
        vars.insert(key.to_string(), (value, at));
        Ok(())
    }

    pub(crate) fn err(&self, line: usize, message: impl std::fmt::Display) -> InventoryError {
        InventoryError::Syntax {
            path: self.current_path(),
            line,
            message: message.to_string(),
        }
    }

    /// A vault-decrypted value, kept as a secret: what the variable holds is a stand-in
    /// that [`Builder::finish`] turns back into the secret, whatever the variable's name.
    pub(crate) fn vaulted(&mut self, secret: SecretString) -> Value {
        self.vaulted.push(secret);
        Value::String(format!("{VAULT_MARK}{}", self.vaulted.len() - 1))
    }

    /// The secret a stand-in from [`Builder::vaulted`] names.
    fn vaulted_secret(&self, v: &Value) -> Option<&SecretString> {
        let Value::String(s) = v else { return None };
        let n: usize = s.strip_prefix(VAULT_MARK)?.parse().ok()?;
        self.vaulted.get(n)
    }

    pub(crate) fn vault_err(
        &self,
        line: usize,
        what: String,
        source: crate::vault::VaultError,
    ) -> InventoryError {
        InventoryError::Vault {
            path: self.current_path(),
            line,
            what,
            source,
        }
    }

    /// The group called `name`, created if new.
    pub(crate) fn group(&mut self, name: &str, line: usize) -> usize {
        if let Some(&g) = self.group_ix.get(name) {
            return g;
        }
        let g = self.groups.len();
        self.groups.push(GroupDef {
            name: name.to_string(),
            line,
            vars: Vars::new(),
            parents: BTreeSet::new(),
            children: Vec::new(),
            hosts: Vec::new(),
            priority: 1,
        });
        self.group_ix.insert(name.to_string(), g);
        g
    }

    pub(crate) fn add_child(
        &mut self,
        parent: usize,
        child: usize,
        line: usize,
    ) -> Result<(), InventoryError> {
        let pname = self.group_name(parent).to_string();
        if child == ALL {
            return Err(self.err(
                line,
                format!(
                    "'all' cannot be a child of '{pname}': every group is already inside 'all'"
                ),
            ));
        }
        if parent == child {
            return Err(self.err(line, format!("group '{pname}' cannot be a child of itself")));
        }
        let new_link = self
            .groups
            .get_mut(child)
            .is_some_and(|g| g.parents.insert(parent));
        if new_link {
            if let Some(p) = self.groups.get_mut(parent) {
                p.children.push(child);
            }
        }
        Ok(())
    }

    fn group_name(&self, g: usize) -> &str {
        self.groups.get(g).map(|g| g.name.as_str()).unwrap_or("?")
    }

    pub(crate) fn set_group_var(
        &mut self,
        g: usize,
        key: &str,
        value: Value,
        line: usize,
    ) -> Result<(), InventoryError> {
        let gname = self.group_name(g);
        if key == "ansible_group_priority" {
            let p = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            let Some(p) = p else {
                return Err(self.err(line, format!("group '{gname}': ansible_group_priority must be a whole number, got {value}")));
            };
            if let Some(gd) = self.groups.get_mut(g) {
                gd.priority = p;
            }
            return Ok(());
        }
        check_var(key, &value).map_err(|m| self.err(line, format!("group '{gname}': {m}")))?;
        let at = self.at(line);
        if let Some(gd) = self.groups.get_mut(g) {
            gd.vars.insert(key.to_string(), (value, at));
        }
        Ok(())
    }

    /// Refuses one line's hosts (`names`, ranges expanded) when they would take the
    /// inventory past [`MAX_INVENTORY_HOSTS`] hosts or [`MAX_INVENTORY_MEMBERSHIPS`]
    /// host-in-group pairs: a few lines of ranges must not eat the memory (fuzz/inventory_*).
    pub(crate) fn check_room(&self, names: &[String], line: usize) -> Result<(), InventoryError> {
        let new = names
            .iter()
            .filter(|n| !self.host_ix.contains_key(*n))
            .count();
        if self.hosts.len() + new > MAX_INVENTORY_HOSTS
            || self.memberships + names.len() > MAX_INVENTORY_MEMBERSHIPS
        {
            return Err(self.err(
                line,
                format!("more than {MAX_INVENTORY_HOSTS} hosts or {MAX_INVENTORY_MEMBERSHIPS} host-in-group entries in one inventory: narrow the ranges or split the inventory"),
            ));
        }
        Ok(())
    }

    /// Adds `name` to group `g` (created if new, in first-seen order).
    pub(crate) fn add_host(&mut self, name: &str, g: usize) -> usize {
        let h = match self.host_ix.get(name) {
            Some(&h) => h,
            None => {
                let h = self.hosts.len();
                self.hosts.push(HostDef {
                    name: name.to_string(),
                    groups: BTreeSet::new(),
                    vars: Vars::new(),
                });
                self.host_ix.insert(name.to_string(), h);
                h
            }
        };
        let new_in_group = self.hosts.get_mut(h).is_some_and(|hd| hd.groups.insert(g));
        if new_in_group {
            self.memberships += 1;
            if let Some(gd) = self.groups.get_mut(g) {
                gd.hosts.push(h);
            }
        }
        h
    }

    /// Sets a host variable. A host given two different ports (by `name:port` or
    /// `ansible_port`, in one place or two) is an error: one of them is a mistake.
    pub(crate) fn set_host_var(
        &mut self,
        h: usize,
        key: &str,
        value: Value,
        line: usize,
    ) -> Result<(), InventoryError> {
        let Some(hd) = self.hosts.get(h) else {
            return Ok(());
        };
        let hname = hd.name.as_str();
        check_var(key, &value).map_err(|m| self.err(line, format!("host '{hname}': {m}")))?;
        if key == "ansible_port" && !template::is_template(&value) {
            // Within one file only: a later source overriding an earlier one is how
            // Ansible merges sources.
            if let Some((old, old_at)) = hd
                .vars
                .get("ansible_port")
                .filter(|(_, at)| at.file == self.file)
            {
                let old_line = old_at.line;
                let (a, b) = (port_of(old), port_of(&value));
                if a != b {
                    let (a, b) = (a.unwrap_or(0), b.unwrap_or(0));
                    return Err(self.err(
                        line,
                        format!(
                            "host '{hname}' is given port {b} here but port {a} on line {old_line}: a host has one port; \
                             fix one of them, or give the other listener its own name with ansible_host"
                        ),
                    ));
                }
            }
        }
        let at = self.at(line);
        if let Some(hd) = self.hosts.get_mut(h) {
            hd.vars.insert(key.to_string(), (value, at));
        }
        Ok(())
    }

    /// Resolves groups and variables into an inventory: the hosts in the order they first
    /// appeared, and each group's hosts in Ansible's order (for subscripts).
    pub(crate) fn finish_inventory(mut self) -> Result<Inventory, InventoryError> {
        // Groups without a parent hang under `all`, in the order they were made
        // (Ansible's `reconcile_inventory`).
        for g in 1..self.groups.len() {
            let orphan = self.groups.get(g).is_some_and(|gd| gd.parents.is_empty());
            if orphan {
                if let Some(gd) = self.groups.get_mut(g) {
                    gd.parents.insert(ALL);
                }
                if let Some(all) = self.groups.get_mut(ALL) {
                    all.children.push(g);
                }
            }
        }
        let depth = self.depths()?;
        // Ancestors, computed parents-first (a parent is always shallower than its child).
        let mut by_depth: Vec<usize> = (0..self.groups.len()).collect();
        by_depth.sort_by_key(|g| depth.get(*g).copied().unwrap_or(0));
        let mut ancestors: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); self.groups.len()];
        for &g in &by_depth {
            let mut set = BTreeSet::new();
            for &p in self
                .groups
                .get(g)
                .map(|gd| &gd.parents)
                .into_iter()
                .flatten()
            {
                set.insert(p);
                set.extend(ancestors.get(p).into_iter().flatten().copied());
            }
            if let Some(slot) = ancestors.get_mut(g) {
                *slot = set;
            }
        }
        let sort_key = |g: usize| {
            let gd = self.groups.get(g);
            (
                depth.get(g).copied().unwrap_or(0),
                gd.map(|d| d.priority).unwrap_or(1),
                gd.map(|d| d.name.clone()).unwrap_or_default(),
            )
        };
        // Each group's place in that order, sorted once (names are unique, so the order is
        // total and sorting a host's groups by place sorts them by the key).
        let mut by_key: Vec<usize> = (0..self.groups.len()).collect();
        by_key.sort_by_cached_key(|&g| sort_key(g));
        let mut place = vec![0; self.groups.len()];
        for (i, &g) in by_key.iter().enumerate() {
            if let Some(p) = place.get_mut(g) {
                *p = i;
            }
        }
        let mut out = Vec::with_capacity(self.hosts.len());
        let mut ungrouped = vec![false; self.hosts.len()];
        for (hi, hd) in self.hosts.iter().enumerate() {
            let mut member: BTreeSet<usize> = BTreeSet::new();
            member.insert(ALL);
            for &g in &hd.groups {
                member.insert(g);
                member.extend(ancestors.get(g).into_iter().flatten().copied());
            }
            if member.iter().any(|&g| g != ALL && g != UNGROUPED) {
                member.remove(&UNGROUPED);
            } else {
                member.insert(UNGROUPED);
                if let Some(u) = ungrouped.get_mut(hi) {
                    *u = true;
                }
            }
            let mut ordered: Vec<usize> = member.into_iter().collect();
            ordered.sort_by_key(|&g| place.get(g).copied().unwrap_or(usize::MAX));
            let merged = self.merge(hd, &ordered);
            out.push(self.resolve_host(hd, &ordered, merged)?);
        }
        // `ungrouped` holds exactly the hosts in no other group (reconcile_inventory):
        // those listed in it first, then the others in host order.
        if let Some(u) = self.groups.get_mut(UNGROUPED) {
            u.hosts
                .retain(|&h| ungrouped.get(h).copied().unwrap_or(false));
            let listed: HashSet<usize> = u.hosts.iter().copied().collect();
            u.hosts.extend(
                ungrouped
                    .iter()
                    .enumerate()
                    .filter(|(h, is)| **is && !listed.contains(h))
                    .map(|(h, _)| h),
            );
        }
        let group_hosts = self.group_order();
        self.hosts.clear();
        Ok(Inventory {
            hosts: out,
            source: Some(self.path.to_path_buf()),
            group_hosts,
            ..Inventory::default()
        })
    }

    /// A host's variables from every level, lowest first (see the module docs), each with
    /// its origin, sorted by name. `ordered` is the host's groups in precedence order,
    /// `all` first.
    fn merge<'s>(&'s self, hd: &'s HostDef, ordered: &[usize]) -> Vec<(String, (Value, Origin))> {
        // Every definition, lowest level first; only the last of each name is copied out.
        let mut defs: Vec<(&'s str, &'s Value, Level, &'s str, At)> = Vec::new();
        let mut put = |vars: &'s Vars, level: Level, scope: &'s str| {
            defs.extend(
                vars.iter()
                    .map(|(k, (v, at))| (k.as_str(), v, level, scope, *at)),
            );
        };
        // all_inventory, groups_inventory.
        for &g in ordered {
            if let Some(gd) = self.groups.get(g) {
                let level = if g == ALL {
                    Level::InventoryAll
                } else {
                    Level::InventoryGroup
                };
                put(&gd.vars, level, &gd.name);
            }
        }
        // all_plugins_inventory, groups_plugins_inventory: each vars directory in source
        // order, and within one the host's groups in precedence order.
        for layer in &self.layers {
            if let Some(v) = layer.groups.get("all") {
                put(v, Level::GroupVarsAll, "all");
            }
        }
        for layer in &self.layers {
            for &g in ordered.iter().filter(|&&g| g != ALL) {
                let name = self.group_name(g);
                if let Some(v) = layer.groups.get(name) {
                    put(v, Level::GroupVars, name);
                }
            }
        }
        // The host's own: inventory, then host_vars.
        put(&hd.vars, Level::InventoryHost, &hd.name);
        for layer in &self.layers {
            if let Some(v) = layer.hosts.get(&hd.name) {
                put(v, Level::HostVars, &hd.name);
            }
        }
        // A stable sort keeps each name's definitions in level order: the last one wins.
        defs.sort_by(|a, b| a.0.cmp(b.0));
        let mut merged: Vec<(String, (Value, Origin))> = Vec::with_capacity(defs.len());
        let mut defs = defs.into_iter().peekable();
        while let Some((k, v, level, scope, at)) = defs.next() {
            if defs.peek().is_some_and(|next| next.0 == k) {
                continue;
            }
            merged.push((k.to_string(), (v.clone(), self.origin(level, scope, at))));
        }
        merged
    }

    /// One host from its merged variables: `{{ name }}` values resolved, the values
    /// trustsweep acts on checked, secrets set apart, the address and port picked by the
    /// winrm connection's precedence.
    fn resolve_host(
        &self,
        hd: &HostDef,
        ordered: &[usize],
        merged: Vec<(String, (Value, Origin))>,
    ) -> Result<Host, InventoryError> {
        let templated: BTreeMap<String, Origin> = merged
            .iter()
            .filter(|(_, (v, _))| template::is_template(v))
            .map(|(k, (_, o))| (k.clone(), o.clone()))
            .collect();
        // Most hosts have no template: nothing to resolve, and no map to look names up in.
        let (merged, resolved) = if templated.is_empty() {
            (merged, template::Resolved::default())
        } else {
            let mut merged: BTreeMap<String, (Value, Origin)> = merged.into_iter().collect();
            let resolved = template::resolve(&hd.name, &mut merged, is_secret_var);
            // A value that came through a template is checked now, at the template's line.
            for (k, origin) in &templated {
                if let Some((v, _)) = merged.get(k) {
                    check_var(k, v).map_err(|m| InventoryError::Syntax {
                        path: origin
                            .file
                            .as_ref()
                            .map(|p| p.to_path_buf())
                            .unwrap_or_else(|| self.current_path()),
                        line: origin.line,
                        message: format!(
                            "host '{}': {m} (through its {{{{ }}}} template)",
                            hd.name
                        ),
                    })?;
                }
            }
            (merged.into_iter().collect(), resolved)
        };
        // `merged` is sorted by name, so each map is collected in one pass.
        let mut vars = Vec::with_capacity(merged.len());
        let mut secrets = Vec::new();
        let mut origins = Vec::with_capacity(merged.len());
        for (k, (v, o)) in merged {
            origins.push((k.clone(), o));
            if let Some(secret) = self.vaulted_secret(&v) {
                secrets.push((k, secret.clone()));
            } else if is_secret_var(&k) || resolved.secret_sources.contains(&k) {
                secrets.push((k, SecretString::from(value_text(&v))));
            } else {
                vars.push((k, v));
            }
        }
        let vars: BTreeMap<String, Value> = vars.into_iter().collect();
        let secrets: BTreeMap<String, SecretString> = secrets.into_iter().collect();
        let mut origins: BTreeMap<String, Origin> = origins.into_iter().collect();
        for k in resolved.unresolved.keys() {
            if let Some(o) = templated.get(k) {
                origins.insert(k.clone(), o.clone());
            }
        }
        // The winrm connection's own names win (its options list them last).
        let text = |name: &str| -> Option<String> {
            match vars.get(name) {
                Some(Value::Null) => None,
                Some(v) => Some(value_text(v)),
                None => secrets
                    .get(name)
                    .map(|s| s.expose_secret().trim().to_string()),
            }
        };
        let address = ["ansible_winrm_host", "ansible_host"]
            .into_iter()
            .find_map(text)
            .unwrap_or_else(|| hd.name.clone());
        let port = match ["ansible_winrm_port", "ansible_port"]
            .into_iter()
            .find_map(|n| text(n).map(|t| (n, t)))
        {
            None => None,
            Some((name, t)) => Some(port_of(&Value::String(t)).ok_or_else(|| {
                let o = origins.get(name);
                InventoryError::Syntax {
                    path: o
                        .and_then(|o| o.file.as_ref())
                        .map(|p| p.to_path_buf())
                        .unwrap_or_else(|| self.current_path()),
                    line: o.map(|o| o.line).unwrap_or(0),
                    message: format!(
                        "host '{}': {name} is not a port number from 1 to 65535",
                        hd.name
                    ),
                }
            })?),
        };
        let groups = ordered
            .iter()
            .map(|&g| self.group_name(g).to_string())
            .collect();
        Ok(Host {
            name: hd.name.clone(),
            address,
            port,
            groups,
            vars,
            secrets,
            origins,
            unresolved: resolved.unresolved,
        })
    }

    /// Each group's hosts in Ansible's order (`Group.get_hosts`): the group's own, then
    /// its descendants' breadth first, children in the order they were added.
    fn group_order(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::with_capacity(self.groups.len());
        for (g, gd) in self.groups.iter().enumerate() {
            let mut order = vec![g];
            let mut seen_group: HashSet<usize> = HashSet::from([g]);
            let mut i = 0;
            while let Some(&cur) = order.get(i) {
                for &c in self
                    .groups
                    .get(cur)
                    .map(|d| &d.children)
                    .into_iter()
                    .flatten()
                {
                    if seen_group.insert(c) {
                        order.push(c);
                    }
                }
                i += 1;
            }
            let mut seen_host: HashSet<usize> = HashSet::new();
            let mut hosts = Vec::new();
            for k in order {
                for &h in self.groups.get(k).map(|d| &d.hosts).into_iter().flatten() {
                    if seen_host.insert(h) {
                        if let Some(hd) = self.hosts.get(h) {
                            hosts.push(hd.name.clone());
                        }
                    }
                }
            }
            out.push((gd.name.clone(), hosts));
        }
        out
    }

    /// Each group's depth below `all` (the longest path), refusing cycles.
    fn depths(&self) -> Result<Vec<usize>, InventoryError> {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            Busy,
            Done(usize),
        }
        let n = self.groups.len();
        let mut state = vec![State::New; n];
        if let Some(s) = state.get_mut(ALL) {
            *s = State::Done(0);
        }
        for start in 0..n {
            // Iterative depth-first walk up the parent links.
            let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
            if state.get(start) != Some(&State::New) {
                continue;
            }
            let parents = |g: usize| {
                self.groups
                    .get(g)
                    .map(|gd| gd.parents.iter().copied().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            stack.push((start, parents(start)));
            if let Some(s) = state.get_mut(start) {
                *s = State::Busy;
            }
            while let Some((g, pending)) = stack.last_mut() {
                let g = *g;
                if let Some(p) = pending.pop() {
                    match state.get(p).copied() {
                        Some(State::New) => {
                            if let Some(s) = state.get_mut(p) {
                                *s = State::Busy;
                            }
                            stack.push((p, parents(p)));
                        }
                        Some(State::Busy) => {
                            let mut chain: Vec<usize> = stack.iter().map(|(x, _)| *x).collect();
                            if let Some(pos) = chain.iter().position(|x| *x == p) {
                                chain.drain(..pos);
                            }
                            chain.push(p);
                            let links: Vec<String> = chain
                                .windows(2)
                                .filter_map(|w| match w {
                                    [c, par] => Some(format!(
                                        "{} is in {}",
                                        self.group_name(*c),
                                        self.group_name(*par)
                                    )),
                                    _ => None,
                                })
                                .collect();
                            let line = self.groups.get(p).map(|gd| gd.line).unwrap_or(0);
                            return Err(self.err(
                                line,
                                format!(
                                    "group '{}' is its own ancestor ({}): remove one of these children links",
                                    self.group_name(p),
                                    links.join(", ")
                                ),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    let d = self
                        .groups
                        .get(g)
                        .map(|gd| {
                            gd.parents
                                .iter()
                                .map(|p| match state.get(*p) {
                                    Some(State::Done(d)) => *d,
                                    _ => 0,
                                })
                                .max()
                                .map(|m| m + 1)
                                .unwrap_or(0)
                        })
                        .unwrap_or(0);
                    if let Some(s) = state.get_mut(g) {
                        *s = State::Done(d);
                    }
                    stack.pop();
                }
            }
        }
        Ok(state
            .into_iter()
            .map(|s| match s {
                State::Done(d) => d,
                _ => 0,
            })
            .collect())
    }
}

/// A variable's value as text (strings unquoted).
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A timeout in seconds as pywinrm takes it: a number (or numeric text) above 0.
pub(crate) fn seconds_of(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    (n.is_finite() && n > 0.0 && n < 1e9).then_some(n)
}

fn port_of(v: &Value) -> Option<u16> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }?;
    u16::try_from(n).ok().filter(|p| *p >= 1)
}

/// A variable trustsweep acts on has a value it cannot use (bad input); the value is shown
/// as JSON, as written.
#[derive(Debug, thiserror::Error)]
enum VarError {
    #[error("{0} must be a number from 1 to 65535, got {1}")]
    Port(&'static str, Value),
    #[error("{0} must be a number of seconds greater than 0, got {1}")]
    Seconds(&'static str, Value),
    #[error("ansible_winrm_scheme must be http or https, got {0}")]
    Scheme(Value),
    #[error("ansible_winrm_server_cert_validation must be validate or ignore, got {0}")]
    CertValidation(Value),
    #[error("{0} must be a host name or address, got {1}")]
    Host(&'static str, Value),
}

/// Checks the variables trustsweep acts on, so a typo fails at its line, not mid-sweep.
fn check_var(key: &str, value: &Value) -> Result<(), VarError> {
    // A vault-encrypted value is a stand-in until the hosts are resolved.
    if matches!(value, Value::String(s) if s.starts_with(VAULT_MARK)) {
        return Ok(());
    }
    // A template is checked once it is resolved (or reported as unresolved).
    if template::is_template(value) {
        return Ok(());
    }
    let text = || value_text(value).trim().to_ascii_lowercase();
    match key {
        "ansible_port" | "ansible_winrm_port" if port_of(value).is_none() => Err(VarError::Port(
            if key == "ansible_port" {
                "ansible_port"
            } else {
                "ansible_winrm_port"
            },
            value.clone(),
        )),
        "ansible_winrm_read_timeout_sec"
        | "ansible_winrm_operation_timeout_sec"
        | "ansible_winrm_connection_timeout"
            if seconds_of(value).is_none() =>
        {
            let name = match key {
                "ansible_winrm_read_timeout_sec" => "ansible_winrm_read_timeout_sec",
                "ansible_winrm_operation_timeout_sec" => "ansible_winrm_operation_timeout_sec",
                _ => "ansible_winrm_connection_timeout",
            };
            Err(VarError::Seconds(name, value.clone()))
        }
        "ansible_winrm_scheme" if !matches!(text().as_str(), "http" | "https") => {
            Err(VarError::Scheme(value.clone()))
        }
        "ansible_winrm_server_cert_validation"
            if !matches!(text().as_str(), "validate" | "ignore") =>
        {
            Err(VarError::CertValidation(value.clone()))
        }
        "ansible_host" | "ansible_winrm_host"
            if matches!(value, Value::Array(_) | Value::Object(_) | Value::Bool(_))
                || text().is_empty() =>
        {
            let name = if key == "ansible_host" {
                "ansible_host"
            } else {
                "ansible_winrm_host"
            };
            Err(VarError::Host(name, value.clone()))
        }
        _ => Ok(()),
    }
}
