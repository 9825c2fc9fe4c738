//! Ansible's YAML inventory format: `all:` with `hosts:`, `vars:` and `children:`, nested
//! to any depth; a host may appear in several groups (its variables merge, the deeper
//! group winning, host variables last).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use secrecy::SecretString;
use serde_yaml::Value;

use crate::{Host, Inventory, InventoryError, SECRET_VARS};

/// Parses YAML inventory text; `path` is used in error messages only.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let err = |line: usize, message: String| InventoryError::Syntax { path: path.to_path_buf(), line, message };
    let doc: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        err(line, format!("not valid YAML: {e}"))
    })?;
    let top = match &doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok(Inventory::default()),
        _ => return Err(err(1, "an inventory must be a mapping of groups, starting with 'all:'".into())),
    };
    let mut walker = Walker { text, path, order: Vec::new(), hosts: BTreeMap::new() };
    for (name, body) in top {
        let Some(name) = name.as_str() else {
            return Err(err(0, "group names must be strings".into()));
        };
        walker.group(name, body, &[], &BTreeMap::new(), 0)?;
    }
    let mut out = Vec::new();
    for name in walker.order {
        let Some(acc) = walker.hosts.remove(&name) else { continue };
        let mut vars = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        // Apply in increasing precedence: (depth, position), host vars last.
        let mut layers = acc.layers;
        layers.sort_by_key(|(depth, seq, _)| (*depth, *seq));
        for (_, _, layer) in layers {
            for (k, v) in layer {
                if SECRET_VARS.contains(&k.as_str()) {
                    let s = match &v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    secrets.insert(k, SecretString::from(s));
                } else {
                    vars.insert(k, v);
                }
            }
        }
        let address = match vars.get("ansible_host") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => name.clone(),
        };
        let port = match vars.get("ansible_port") {
            None => None,
            Some(v) => {
                let p = match v {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                match p.and_then(|p| u16::try_from(p).ok()) {
                    Some(p) => Some(p),
                    None => {
                        return Err(err(
                            line_of(text, &name),
                            format!("host '{name}': ansible_port must be a number from 1 to 65535, got {v}"),
                        ))
                    }
                }
            }
        };
        out.push(Host { name, address, port, groups: acc.groups.into_iter().collect(), vars, secrets });
    }
    Ok(Inventory { hosts: out, source: Some(path.to_path_buf()) })
}

#[derive(Default)]
struct HostAcc {
    groups: BTreeSet<String>,
    layers: Vec<(usize, usize, BTreeMap<String, serde_json::Value>)>,
}

struct Walker<'a> {
    text: &'a str,
    path: &'a Path,
    order: Vec<String>,
    hosts: BTreeMap<String, HostAcc>,
}

const MAX_DEPTH: usize = 64;

impl Walker<'_> {
    fn err(&self, line: usize, message: String) -> InventoryError {
        InventoryError::Syntax { path: self.path.to_path_buf(), line, message }
    }

    fn group(
        &mut self,
        name: &str,
        body: &Value,
        parents: &[String],
        inherited: &BTreeMap<String, serde_json::Value>,
        depth: usize,
    ) -> Result<(), InventoryError> {
        if depth > MAX_DEPTH {
            return Err(self.err(line_of(self.text, name), format!("groups nested deeper than {MAX_DEPTH} levels at '{name}'")));
        }
        let body = match body {
            Value::Null => return Ok(()),
            Value::Mapping(m) => m,
            _ => {
                return Err(self.err(
                    line_of(self.text, name),
                    format!("group '{name}' must be a mapping with hosts:, vars: or children:"),
                ))
            }
        };
        let mut chain: Vec<String> = parents.to_vec();
        chain.push(name.to_string());
        let mut vars = inherited.clone();
        if let Some(v) = body.get("vars") {
            for (k, v) in self.mapping(v, &format!("vars of group '{name}'"), name)? {
                vars.insert(k, v);
            }
        }
        for key in body.keys() {
            match key.as_str() {
                Some("hosts" | "vars" | "children") => {}
                other => {
                    return Err(self.err(
                        line_of(self.text, other.unwrap_or(name)),
                        format!(
                            "group '{name}' has an unknown key '{}': only hosts:, vars: and children: are allowed",
                            other.unwrap_or("?")
                        ),
                    ))
                }
            }
        }
        if let Some(hosts) = body.get("hosts") {
            match hosts {
                Value::Null => {}
                Value::Mapping(m) => {
                    for (h, hv) in m {
                        let hname = match h {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => return Err(self.err(line_of(self.text, name), format!("a host name in group '{name}' is not a string"))),
                        };
                        let host_vars = match hv {
                            Value::Null => BTreeMap::new(),
                            other => self.mapping(other, &format!("variables of host '{hname}'"), &hname)?,
                        };
                        if !self.hosts.contains_key(&hname) {
                            self.order.push(hname.clone());
                        }
                        let seq = self.hosts.get(&hname).map(|a| a.layers.len()).unwrap_or(0);
                        let acc = self.hosts.entry(hname).or_default();
                        acc.groups.extend(chain.iter().cloned());
                        acc.layers.push((depth, seq, vars.clone()));
                        acc.layers.push((usize::MAX, seq, host_vars));
                    }
                }
                _ => {
                    return Err(self.err(
                        line_of(self.text, name),
                        format!("hosts of group '{name}' must be a mapping (host name: variables), not a list"),
                    ))
                }
            }
        }
        if let Some(children) = body.get("children") {
            match children {
                Value::Null => {}
                Value::Mapping(m) => {
                    for (c, cv) in m {
                        let Some(cname) = c.as_str() else {
                            return Err(self.err(line_of(self.text, name), format!("a child group of '{name}' has a non-string name")));
                        };
                        self.group(cname, cv, &chain, &vars, depth + 1)?;
                    }
                }
                _ => return Err(self.err(line_of(self.text, name), format!("children of group '{name}' must be a mapping"))),
            }
        }
        Ok(())
    }

    fn mapping(&self, v: &Value, what: &str, anchor: &str) -> Result<BTreeMap<String, serde_json::Value>, InventoryError> {
        let Value::Mapping(m) = v else {
            return Err(self.err(line_of(self.text, anchor), format!("{what} must be a mapping of name: value")));
        };
        let mut out = BTreeMap::new();
        for (k, v) in m {
            let Some(k) = k.as_str() else {
                return Err(self.err(line_of(self.text, anchor), format!("{what}: variable names must be strings")));
            };
            let json = serde_json::to_value(v)
                .map_err(|e| self.err(line_of(self.text, k), format!("{what}: variable '{k}' cannot be used: {e}")))?;
            out.insert(k.to_string(), json);
        }
        Ok(out)
    }
}

/// Best-effort 1-based line of the first line whose key is `key` (for messages).
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn ansible_shape_with_inheritance() {
        let text = "all:\n  vars:\n    ansible_user: Administrator\n    ansible_password: s3cret\n  children:\n    workstations:\n      vars:\n        ansible_port: 5985\n      hosts:\n        ws1:\n          ansible_host: 127.0.0.2\n        ws2:\n          ansible_user: opsadmin\n";
        let inv = parse_yaml(text, Path::new("inv.yml")).unwrap();
        assert_eq!(inv.hosts.len(), 2);
        let ws1 = &inv.hosts[0];
        assert_eq!(ws1.name, "ws1");
        assert_eq!(ws1.address, "127.0.0.2");
        assert_eq!(ws1.port, Some(5985));
        assert_eq!(ws1.user().as_deref(), Some("Administrator"));
        assert_eq!(ws1.password().unwrap().expose_secret(), "s3cret");
        assert_eq!(ws1.groups, vec!["all".to_string(), "workstations".to_string()]);
        assert_eq!(inv.hosts[1].user().as_deref(), Some("opsadmin"));
        assert!(!format!("{:?}", inv).contains("s3cret"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "all:\n  hosts:\n    - ws1\n";
        let e = parse_yaml(text, Path::new("bad.yml")).unwrap_err().to_string();
        assert!(e.starts_with("bad.yml:1:"), "{e}");
        assert!(e.contains("must be a mapping"), "{e}");
        let e = parse_yaml("all:\n  hosts:\n    ws1:\n      ansible_port: nope\n", Path::new("p.yml")).unwrap_err().to_string();
        assert!(e.contains("ansible_port must be a number"), "{e}");
        let e = parse_yaml("all: [\n", Path::new("y.yml")).unwrap_err().to_string();
        assert!(e.contains("not valid YAML"), "{e}");
    }
}
