//! The JSON `ansible-inventory --list` prints (the format of Ansible's inventory scripts,
//! read as Ansible's `script` inventory plugin reads it), so every inventory plugin Ansible
//! runs (cloud, VMware, `microsoft.ad.ldap`) can feed trustsweep:
//! `ansible-inventory -i aws_ec2.yml --list | trustsweep check -i -`.
//!
//! Top-level keys are groups, each `{"hosts": [...], "children": [...], "vars": {...}}`, a
//! bare list of hosts, or (Ansible's "simplified syntax") a mapping of variables for a
//! host named like the group; `_meta.hostvars` maps each host to its variables, which
//! `ansible-inventory --list` has already merged from every level (group_vars included),
//! so they are read as the host's own. A vault-encrypted value is printed as
//! `{"__ansible_vault": "$ANSIBLE_VAULT;..."}` and decrypted like a `!vault` value.

use serde_json::{Map, Value};

use crate::model::Builder;
use crate::vault::VaultSecrets;
use crate::InventoryError;

/// A JSON object's members in the order written (the groups' order is the order Ansible
/// makes them in, which subscripts see), without a map type that keeps order.
#[derive(Debug)]
pub(crate) struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of groups")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Whether `doc` is what `ansible-inventory --list` (or an inventory script) prints rather
/// than a YAML-style inventory written as JSON: a `_meta` key, or a group whose hosts are
/// a list.
pub(crate) fn is_list_output(doc: &Ordered) -> bool {
    doc.get("_meta").is_some()
        || doc.0.iter().map(|(_, g)| g).any(|g| match g {
            Value::Array(_) => true,
            Value::Object(o) => {
                matches!(o.get("hosts"), Some(Value::Array(_)))
                    || matches!(o.get("children"), Some(Value::Array(_)))
            }
            _ => false,
        })
}

/// Reads `ansible-inventory --list` JSON into `b`. Lines are unknown (0): the JSON is
/// usually one machine-written line or a pipe.
pub(crate) fn read_into(
    b: &mut Builder<'_>,
    doc: &Ordered,
    vault: &VaultSecrets,
) -> Result<(), InventoryError> {
    for (name, data) in &doc.0 {
        if name == "_meta" {
            continue;
        }
        let g = b.group(name, 0);
        let simplified;
        let data: &Map<String, Value> = match data {
            Value::Object(o)
                if o.contains_key("hosts")
                    || o.contains_key("vars")
                    || o.contains_key("children") =>
            {
                o
            }
            Value::Object(o) => {
                // Ansible's simplified syntax: a host named like the group, with these vars.
                let mut m = Map::new();
                m.insert("hosts".into(), Value::Array(vec![Value::String(name.clone())]));
                m.insert("vars".into(), Value::Object(o.clone()));
                simplified = m;
                &simplified
            }
            Value::Array(hosts) => {
                let mut m = Map::new();
                m.insert("hosts".into(), Value::Array(hosts.clone()));
                simplified = m;
                &simplified
            }
            Value::Null => continue,
            _ => {
                return Err(b.err(
                    0,
                    format!("group '{name}' must be an object with hosts, children and vars, or a list of hosts"),
                ))
            }
        };
        match data.get("hosts") {
            None | Some(Value::Null) => {}
            Some(Value::Array(hosts)) => {
                for h in hosts {
                    let Some(h) = scalar(h) else {
                        return Err(b.err(0, format!("group '{name}': host names must be strings")));
                    };
                    b.add_host(&h, g);
                }
            }
            Some(_) => {
                return Err(b.err(
                    0,
                    format!("group '{name}': hosts must be a list of host names"),
                ))
            }
        }
        match data.get("vars") {
            None | Some(Value::Null) => {}
            Some(Value::Object(vars)) => {
                for (k, v) in vars {
                    let v = value(b, v, vault, &format!("group '{name}': variable '{k}'"))?;
                    b.set_group_var(g, k, v, 0)?;
                }
            }
            Some(_) => {
                return Err(b.err(
                    0,
                    format!("group '{name}': vars must be an object of name: value"),
                ))
            }
        }
        match data.get("children") {
            None | Some(Value::Null) => {}
            Some(Value::Array(children)) => {
                for c in children {
                    let Some(c) = scalar(c) else {
                        return Err(b.err(
                            0,
                            format!("group '{name}': child group names must be strings"),
                        ));
                    };
                    let ci = b.group(&c, 0);
                    b.add_child(g, ci, 0)?;
                }
            }
            Some(_) => {
                return Err(b.err(
                    0,
                    format!("group '{name}': children must be a list of group names"),
                ))
            }
        }
    }
    let hostvars = doc
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .unwrap_or(&Value::Null);
    let hostvars = match hostvars {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => {
            return Err(b.err(
                0,
                "_meta.hostvars must be an object of host name: variables",
            ))
        }
    };
    for (host, vars) in hostvars {
        // As the script plugin: variables only for hosts some group lists.
        let Some(h) = b.host_index(host) else {
            continue;
        };
        let Value::Object(vars) = vars else {
            return Err(b.err(
                0,
                format!("_meta.hostvars of host '{host}' must be an object of name: value"),
            ));
        };
        for (k, v) in vars {
            let v = value(b, v, vault, &format!("host '{host}': variable '{k}'"))?;
            b.set_host_var(h, k, v, 0)?;
        }
    }
    Ok(())
}

/// A value as `ansible-inventory` printed it: `{"__ansible_vault": text}` is decrypted
/// into a secret, `{"__ansible_unsafe": text}` is its text.
fn value(
    b: &mut Builder<'_>,
    v: &Value,
    vault: &VaultSecrets,
    what: &str,
) -> Result<Value, InventoryError> {
    if let Value::Object(o) = v {
        if o.len() == 1 {
            if let Some(Value::String(text)) = o.get("__ansible_vault") {
                let secret = vault
                    .decrypt_string(text)
                    .map_err(|source| b.vault_err(0, what.to_string(), source))?;
                return Ok(b.vaulted(secret));
            }
            if let Some(Value::String(text)) = o.get("__ansible_unsafe") {
                return Ok(Value::String(text.clone()));
            }
        }
    }
    Ok(v.clone())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_list_output() {
        let list: Ordered = serde_json::from_str(
            r#"{"_meta": {"hostvars": {}}, "web": {"hosts": ["b", "a"]}, "all": {"children": ["ungrouped"]}}"#,
        )
        .unwrap();
        assert!(is_list_output(&list));
        assert_eq!(list.0[1].0, "web", "members keep their order");
        let yaml_style: Ordered =
            serde_json::from_str(r#"{"all": {"hosts": {"ws1": {"ansible_port": 5985}}}}"#).unwrap();
        assert!(!is_list_output(&yaml_style));
    }
}
