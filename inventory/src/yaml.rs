//! Ansible's YAML inventory format: top-level groups (usually just `all:`), each with
//! `hosts:`, `vars:` and `children:`, nested to any depth. A host may appear in several
//! groups (its variables merge by Ansible's precedence); host keys may carry ranges
//! (`ws[001:120].lab.test:`) and a port (`ws1:5986:`).

use std::collections::HashMap;
use std::path::Path;

use serde_norway::Value;

use crate::hostpattern::expand_host_pattern;
use crate::model::Builder;
use crate::vault::{decrypt_yaml, VaultSecrets};
use crate::{Inventory, InventoryError};

const MAX_DEPTH: usize = 64;

/// Parses YAML inventory text; `path` is used in error messages only. A `!vault` value is
/// an error saying how to give a vault password: see [`parse_yaml_with_vault`].
pub fn parse_yaml(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    parse_yaml_with_vault(text, path, &VaultSecrets::none())
}

/// [`parse_yaml`], decrypting `!vault` values with `vault`; each one's plaintext lands in
/// the host's secrets, whatever the variable's name.
pub fn parse_yaml_with_vault(
    text: &str,
    path: &Path,
    vault: &VaultSecrets,
) -> Result<Inventory, InventoryError> {
    let mut b = Builder::new(path);
    read_into(&mut b, text, vault)?;
    b.finish_inventory()
}

/// Reads YAML inventory text into `b` (one file of several, maybe).
pub(crate) fn read_into(
    b: &mut Builder<'_>,
    text: &str,
    vault: &VaultSecrets,
) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = KeyLines::new(text);
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        b.err(line, format!("not valid YAML: {e}"))
    })?;
    let top = match &doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok(()),
        _ => {
            return Err(b.err(
                1,
                "an inventory must be a mapping of groups, starting with 'all:'",
            ))
        }
    };
    // An inventory plugin's configuration (`plugin: amazon.aws.aws_ec2`): Ansible's to run.
    if let Some(plugin) = top.get("plugin").and_then(Value::as_str) {
        return Err(b.err(
            lines.line(&["plugin".to_string()]),
            format!(
                "this configures Ansible's inventory plugin '{plugin}', which trustsweep cannot run: \
                 let Ansible run it and pipe its hosts in: ansible-inventory -i {} --list | trustsweep ... -i -",
                b.current_path().display()
            ),
        ));
    }
    let mut walker = Walker { b, lines, vault };
    for (name, body) in top {
        let Some(name) = name.as_str() else {
            return Err(walker.b.err(1, "group names must be strings"));
        };
        walker.group(name, body, None, &mut vec![name.to_string()], 0)?;
    }
    Ok(())
}

struct Walker<'a, 'p> {
    b: &'a mut Builder<'p>,
    lines: KeyLines,
    vault: &'a VaultSecrets,
}

impl Walker<'_, '_> {
    fn line(&self, path: &[String], more: &[&str]) -> usize {
        let mut p = path.to_vec();
        p.extend(more.iter().map(|s| s.to_string()));
        self.lines.line(&p)
    }

    fn group(
        &mut self,
        name: &str,
        body: &Value,
        parent: Option<usize>,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), InventoryError> {
        let line = self.line(path, &[]);
        if depth > MAX_DEPTH {
            return Err(self.b.err(
                line,
                format!("groups nested deeper than {MAX_DEPTH} levels at '{name}'"),
            ));
        }
        if name.is_empty() {
            return Err(self.b.err(line, "a group has an empty name"));
        }
        let g = self.b.group(name, line);
        if let Some(p) = parent {
            self.b.add_child(p, g, line)?;
        }
        let body = match body {
            Value::Null => return Ok(()),
            Value::Mapping(m) => m,
            _ => {
                return Err(self.b.err(
                    line,
                    format!("group '{name}' must be a mapping with hosts:, vars: or children:"),
                ));
            }
        };
        for (key, value) in body {
            match key.as_str() {
                Some("vars") => self.vars(name, g, value, path)?,
                Some("hosts") => self.hosts(name, g, value, path)?,
                Some("children") => {
                    match value {
                        Value::Null => {}
                        Value::Mapping(m) => {
                            for (c, cv) in m {
                                let Some(cname) = scalar_key(c) else {
                                    let l = self.line(path, &["children"]);
                                    return Err(self.b.err(l, format!("a child group of '{name}' has a name that is not a string")));
                                };
                                path.push("children".into());
                                path.push(cname.clone());
                                let r = self.group(&cname, cv, Some(g), path, depth + 1);
                                path.truncate(path.len().saturating_sub(2));
                                r?;
                            }
                        }
                        _ => {
                            let l = self.line(path, &["children"]);
                            return Err(self.b.err(
                                l,
                                format!(
                                    "children of group '{name}' must be a mapping of group names"
                                ),
                            ));
                        }
                    }
                }
                other => {
                    let k = other
                        .map(str::to_string)
                        .or_else(|| scalar_key(key))
                        .unwrap_or_else(|| "?".into());
                    let l = self.line(path, &[&k]);
                    return Err(self.b.err(
                        l,
                        format!("group '{name}' has an unknown key '{k}': only hosts:, vars: and children: are allowed"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn vars(
        &mut self,
        name: &str,
        g: usize,
        value: &Value,
        path: &[String],
    ) -> Result<(), InventoryError> {
        let line = self.line(path, &["vars"]);
        let vars = match value {
            Value::Null => return Ok(()),
            Value::Mapping(m) => m,
            _ => {
                return Err(self.b.err(
                    line,
                    format!("vars of group '{name}' must be a mapping of name: value"),
                ))
            }
        };
        for (k, v) in vars {
            let Some(k) = k.as_str() else {
                return Err(self.b.err(
                    line,
                    format!("vars of group '{name}': variable names must be strings"),
                ));
            };
            let l = self.line(path, &["vars", k]);
            let json = match decrypt_yaml(v, self.vault).map_err(|source| {
                self.b
                    .vault_err(l, format!("group '{name}': variable '{k}'"), source)
            })? {
                Some(secret) => self.b.vaulted(secret),
                None => to_json(v).map_err(|e| {
                    self.b.err(
                        l,
                        format!("vars of group '{name}': variable '{k}' cannot be used: {e}"),
                    )
                })?,
            };
            let json = self.lines.yaml11(l, json);
            self.b.set_group_var(g, k, json, l)?;
        }
        Ok(())
    }

    fn hosts(
        &mut self,
        name: &str,
        g: usize,
        value: &Value,
        path: &[String],
    ) -> Result<(), InventoryError> {
        let line = self.line(path, &["hosts"]);
        let hosts = match value {
            Value::Null => return Ok(()),
            Value::Mapping(m) => m,
            Value::Sequence(_) => {
                return Err(self.b.err(
                    line,
                    format!("hosts of group '{name}' must be a mapping (host name: variables), not a list: write 'ws1:' instead of '- ws1'"),
                ))
            }
            _ => return Err(self.b.err(line, format!("hosts of group '{name}' must be a mapping (host name: variables)"))),
        };
        for (hk, hv) in hosts {
            let Some(key) = scalar_key(hk) else {
                return Err(self.b.err(
                    line,
                    format!("a host name in group '{name}' is not a string"),
                ));
            };
            let hline = self.line(path, &["hosts", &key]);
            let (names, port) = expand_host_pattern(&key).map_err(|m| self.b.err(hline, m))?;
            self.b.check_room(&names, hline)?;
            let vars = match hv {
                Value::Null => None,
                Value::Mapping(m) => Some(m),
                _ => {
                    return Err(self.b.err(
                        hline,
                        format!("variables of host '{key}' must be a mapping of name: value (or nothing after the ':')"),
                    ))
                }
            };
            let mut host_vars = Vec::new();
            for (k, v) in vars.into_iter().flatten() {
                let Some(k) = k.as_str() else {
                    return Err(self.b.err(
                        hline,
                        format!("variables of host '{key}': variable names must be strings"),
                    ));
                };
                let l = self.line(path, &["hosts", &key, k]);
                let json = match decrypt_yaml(v, self.vault).map_err(|source| {
                    self.b
                        .vault_err(l, format!("host '{key}': variable '{k}'"), source)
                })? {
                    Some(secret) => self.b.vaulted(secret),
                    None => to_json(v).map_err(|e| {
                        self.b.err(
                            l,
                            format!("host '{key}': variable '{k}' cannot be used: {e}"),
                        )
                    })?,
                };
                host_vars.push((k.to_string(), self.lines.yaml11(l, json), l));
            }
            for n in names {
                let h = self.b.add_host(&n, g);
                if let Some(p) = port {
                    self.b
                        .set_host_var(h, "ansible_port", serde_json::Value::from(p), hline)?;
                }
                for (k, v, l) in &host_vars {
                    self.b.set_host_var(h, k, v.clone(), *l)?;
                }
            }
        }
        Ok(())
    }
}

fn scalar_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn to_json(v: &Value) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(v)
}

/// Where each key path (`all` / `children` / `web` / `hosts` / `ws1`) first appears, read
/// from the text by indentation (block-style YAML, which inventories are); used for the
/// line numbers of messages. Keys in flow style (`{a: 1}`) are not found (line 0, or the
/// nearest enclosing key found).
struct KeyLines {
    map: HashMap<String, usize>,
    raw: Vec<String>,
}

const SEP: &str = "\u{1f}";

impl KeyLines {
    fn new(text: &str) -> KeyLines {
        let mut map = HashMap::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let t = raw.trim_start_matches(' ');
            let indent = raw.len() - t.len();
            let t = t.trim_end();
            if t.is_empty()
                || t.starts_with('#')
                || t == "---"
                || t.starts_with("--- ")
                || t == "..."
            {
                continue;
            }
            let Some(key) = block_key(t) else { continue };
            while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
                stack.pop();
            }
            stack.push((indent, key));
            let joined = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(SEP);
            map.entry(joined).or_insert(i + 1);
        }
        KeyLines {
            map,
            raw: text.lines().map(str::to_string).collect(),
        }
    }

    /// `value` read at `line` as Ansible's YAML 1.1 loader reads it (see [`yaml11_value`]).
    fn yaml11(&self, line: usize, value: serde_json::Value) -> serde_json::Value {
        match line.checked_sub(1).and_then(|i| self.raw.get(i)) {
            Some(raw) => yaml11_value(raw, value),
            None => value,
        }
    }

    /// The line of `path`, else of its longest prefix found, else 0.
    fn line(&self, path: &[String]) -> usize {
        for n in (1..=path.len()).rev() {
            if let Some(l) = path.get(..n).and_then(|p| self.map.get(&p.join(SEP))) {
                return *l;
            }
        }
        0
    }
}

/// YAML 1.1's booleans, which Ansible's loader (PyYAML) reads and YAML 1.2 (serde_norway)
/// leaves as text: a plain, unquoted `yes`, `no`, `on` or `off` (any of the three
/// casings) on the key's line is a boolean there.
pub(crate) fn yaml11_value(raw_line: &str, value: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::String(s) = &value else {
        return value;
    };
    let b = match s.as_str() {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => true,
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => false,
        _ => return value,
    };
    let t = raw_line.trim();
    let code = match t.find(" #") {
        Some(i) => t.get(..i).unwrap_or(t).trim_end(),
        None => t,
    };
    let plain = code
        .rsplit_once(": ")
        .map(|(_, v)| v.trim())
        .is_some_and(|v| v == s);
    if plain {
        serde_json::Value::Bool(b)
    } else {
        value
    }
}

/// The line of each top-level key of block-style YAML (for vars files' messages).
pub(crate) fn top_key_lines(text: &str) -> HashMap<String, usize> {
    KeyLines::new(text)
        .map
        .into_iter()
        .filter(|(k, _)| !k.contains(SEP))
        .collect()
}

/// The key of a block mapping line (`key:` or `key: value`, the key maybe quoted).
fn block_key(t: &str) -> Option<String> {
    let first = t.chars().next()?;
    if first == '"' || first == '\'' {
        let rest = t.get(1..)?;
        let close = rest.find(first)?;
        let key = rest.get(..close)?;
        let after = rest.get(close + 1..)?.trim_start();
        let after = after.strip_prefix(':')?;
        return (after.is_empty() || after.starts_with(' ')).then(|| key.to_string());
    }
    if matches!(
        first,
        '-' | '?' | '{' | '[' | '|' | '>' | '&' | '*' | '!' | '%' | '@' | '`'
    ) {
        return None;
    }
    let code = match t.find(" #") {
        Some(i) => t.get(..i)?.trim_end(),
        None => t,
    };
    let end = match code.find(": ") {
        Some(i) => i,
        None => code.strip_suffix(':').map(str::len)?,
    };
    let key = code.get(..end)?.trim_end();
    (!key.is_empty()).then(|| key.to_string())
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
        assert_eq!(
            ws1.groups,
            vec!["all".to_string(), "workstations".to_string()]
        );
        assert_eq!(inv.hosts[1].user().as_deref(), Some("opsadmin"));
        assert!(!format!("{:?}", inv).contains("s3cret"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "all:\n  hosts:\n    - ws1\n";
        let e = parse_yaml(text, Path::new("bad.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.yml:2:"), "{e}");
        assert!(e.contains("must be a mapping"), "{e}");
        let e = parse_yaml(
            "all:\n  hosts:\n    ws1:\n      ansible_port: nope\n",
            Path::new("p.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.yml:4:"), "{e}");
        assert!(e.contains("ansible_port must be a number"), "{e}");
        let e = parse_yaml("all: [\n", Path::new("y.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid YAML"), "{e}");
    }

    #[test]
    fn yaml11_booleans() {
        use serde_json::Value as J;
        assert_eq!(yaml11_value("  a: yes", J::from("yes")), J::Bool(true));
        assert_eq!(yaml11_value("a: Off # x", J::from("Off")), J::Bool(false));
        assert_eq!(yaml11_value("a: \"yes\"", J::from("yes")), J::from("yes"));
        assert_eq!(yaml11_value("a: 'no'", J::from("no")), J::from("no"));
        assert_eq!(yaml11_value("a: y", J::from("y")), J::from("y"));
    }

    #[test]
    fn key_lines() {
        let text = "all:\n  children:\n    web:   # comment\n      hosts:\n        'ws[01:02]':\n        ws3:5986:\n          x: 1\n";
        let k = KeyLines::new(text);
        let p = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(k.line(&p("all/children/web")), 3);
        assert_eq!(k.line(&p("all/children/web/hosts/ws[01:02]")), 5);
        assert_eq!(k.line(&p("all/children/web/hosts/ws3:5986/x")), 7);
        assert_eq!(k.line(&p("all/children/web/hosts/nope")), 4);
    }
}
