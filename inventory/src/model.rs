//! The group graph every file format is read into, and its resolution into hosts the
//! Ansible way: every host is in `all`; a host with no other group is in `ungrouped`;
//! membership flows up from child groups to parents; variables are applied from the
//! groups ordered by (depth below `all`, `ansible_group_priority`, name), then the host's
//! own, later definitions winning within each.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use secrecy::SecretString;
use serde_json::Value;

use crate::{is_secret_var, Host, InventoryError};

const ALL: usize = 0;
const UNGROUPED: usize = 1;

/// A variable and the 1-based line that set it.
type Vars = BTreeMap<String, (Value, usize)>;

struct GroupDef {
    name: String,
    line: usize,
    vars: Vars,
    parents: BTreeSet<usize>,
    priority: i64,
}

struct HostDef {
    name: String,
    groups: BTreeSet<usize>,
    vars: Vars,
}

/// Collects groups and hosts as a parser meets them.
pub(crate) struct Builder<'p> {
    path: &'p Path,
    groups: Vec<GroupDef>,
    group_ix: HashMap<String, usize>,
    hosts: Vec<HostDef>,
    host_ix: HashMap<String, usize>,
}

impl<'p> Builder<'p> {
    pub(crate) fn new(path: &'p Path) -> Self {
        let mut b = Builder {
            path,
            groups: Vec::new(),
            group_ix: HashMap::new(),
            hosts: Vec::new(),
            host_ix: HashMap::new(),
        };
        b.group("all", 0);
        b.group("ungrouped", 0);
        b
    }

    pub(crate) fn err(&self, line: usize, message: impl std::fmt::Display) -> InventoryError {
        InventoryError::Syntax {
            path: self.path.to_path_buf(),
            line,
            message: message.to_string(),
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
        if let Some(g) = self.groups.get_mut(child) {
            g.parents.insert(parent);
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
        let gname = self.group_name(g).to_string();
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
        if let Some(gd) = self.groups.get_mut(g) {
            gd.vars.insert(key.to_string(), (value, line));
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
        if let Some(hd) = self.hosts.get_mut(h) {
            hd.groups.insert(g);
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
        let hname = hd.name.clone();
        check_var(key, &value).map_err(|m| self.err(line, format!("host '{hname}': {m}")))?;
        if key == "ansible_port" {
            if let Some((old, old_line)) = hd.vars.get("ansible_port") {
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
        if let Some(hd) = self.hosts.get_mut(h) {
            hd.vars.insert(key.to_string(), (value, line));
        }
        Ok(())
    }

    /// Resolves groups and variables into hosts, in the order they first appeared.
    pub(crate) fn finish(mut self) -> Result<Vec<Host>, InventoryError> {
        // Groups without a parent hang under `all`.
        for g in 1..self.groups.len() {
            if let Some(gd) = self.groups.get_mut(g) {
                if gd.parents.is_empty() {
                    gd.parents.insert(ALL);
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
        let mut out = Vec::with_capacity(self.hosts.len());
        for hd in &self.hosts {
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
            }
            let mut ordered: Vec<usize> = member.into_iter().collect();
            ordered.sort_by_cached_key(|&g| sort_key(g));
            let mut merged: BTreeMap<String, Value> = BTreeMap::new();
            for &g in &ordered {
                for (k, (v, _)) in self.groups.get(g).map(|gd| &gd.vars).into_iter().flatten() {
                    merged.insert(k.clone(), v.clone());
                }
            }
            for (k, (v, _)) in &hd.vars {
                merged.insert(k.clone(), v.clone());
            }
            let mut vars = BTreeMap::new();
            let mut secrets = BTreeMap::new();
            for (k, v) in merged {
                if is_secret_var(&k) {
                    secrets.insert(k, SecretString::from(value_text(&v)));
                } else {
                    vars.insert(k, v);
                }
            }
            let address = match vars.get("ansible_host") {
                Some(Value::Null) | None => hd.name.clone(),
                Some(v) => value_text(v),
            };
            let port = vars.get("ansible_port").and_then(port_of);
            let groups = ordered
                .iter()
                .map(|&g| self.group_name(g).to_string())
                .collect();
            out.push(Host {
                name: hd.name.clone(),
                address,
                port,
                groups,
                vars,
                secrets,
            });
        }
        self.hosts.clear();
        Ok(out)
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
    #[error("ansible_port must be a number from 1 to 65535, got {0}")]
    Port(Value),
    #[error("ansible_winrm_scheme must be http or https, got {0}")]
    Scheme(Value),
    #[error("ansible_winrm_server_cert_validation must be validate or ignore, got {0}")]
    CertValidation(Value),
    #[error("ansible_host must be a host name or address, got {0}")]
    Host(Value),
}

/// Checks the variables trustsweep acts on, so a typo fails at its line, not mid-sweep.
fn check_var(key: &str, value: &Value) -> Result<(), VarError> {
    let text = || value_text(value).trim().to_ascii_lowercase();
    match key {
        "ansible_port" if port_of(value).is_none() => Err(VarError::Port(value.clone())),
        "ansible_winrm_scheme" if !matches!(text().as_str(), "http" | "https") => {
            Err(VarError::Scheme(value.clone()))
        }
        "ansible_winrm_server_cert_validation"
            if !matches!(text().as_str(), "validate" | "ignore") =>
        {
            Err(VarError::CertValidation(value.clone()))
        }
        "ansible_host"
            if matches!(value, Value::Array(_) | Value::Object(_) | Value::Bool(_))
                || text().is_empty() =>
        {
            Err(VarError::Host(value.clone()))
        }
        _ => Ok(()),
    }
}
