//! Views of an inventory for people and programs, secrets masked: rows for a table
//! ([`Inventory::to_display_rows`], [`Inventory::to_table`]) and `serde::Serialize` for
//! JSON. Secret variables appear among the variables with the value [`MASK`], variables
//! whose template trustsweep does not evaluate with [`UNRESOLVED`]. `--explain` adds where
//! each value came from ([`Host::explain`], [`Inventory::to_explain_text`]).

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::model::value_text;
use crate::{Host, Inventory, Origin};

/// What a secret value is shown as.
pub const MASK: &str = "********";

/// What a variable whose template is not evaluated is shown as.
pub const UNRESOLVED: &str = "<unresolved template>";

/// One variable of a host and where its value came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExplainedVar {
    /// The variable.
    pub name: String,
    /// Its value as text ([`MASK`] for secrets, [`UNRESOLVED`] for templates not
    /// evaluated).
    pub value: String,
    /// Where it was set; `None` when unknown (a host built by hand, an AD computer).
    pub origin: Option<Origin>,
    /// Why the value is not used, for an unresolved template.
    pub problem: Option<String>,
}

/// One host as `trustsweep inventory --explain` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExplainRow {
    /// Inventory name.
    pub name: String,
    /// Address to connect to.
    pub address: String,
    /// The port as the winrm connection picks it (explicit or the scheme's default).
    pub port: u16,
    /// Groups in the order their variables apply, `all` first.
    pub groups: Vec<String>,
    /// Every variable, sorted by name.
    pub vars: Vec<ExplainedVar>,
}

/// One host as `trustsweep inventory` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DisplayRow {
    /// Inventory name.
    pub name: String,
    /// Address to connect to.
    pub address: String,
    /// Port, if set.
    pub port: Option<u16>,
    /// Groups, `all` first, most specific last.
    pub groups: Vec<String>,
    /// Variables as text, secrets as [`MASK`], sorted by name.
    pub vars: BTreeMap<String, String>,
}

impl Host {
    /// Variables and secrets together, secrets masked, values as text.
    pub fn masked_vars(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        for k in self.secrets.keys() {
            out.insert(k.clone(), MASK.to_string());
        }
        for k in self.unresolved.keys() {
            out.insert(k.clone(), UNRESOLVED.to_string());
        }
        out
    }

    /// Every variable with its origin (`trustsweep inventory --explain`).
    pub fn explain(&self) -> ExplainRow {
        let vars = self
            .masked_vars()
            .into_iter()
            .map(|(name, value)| ExplainedVar {
                origin: self.origins.get(&name).cloned(),
                problem: self.unresolved.get(&name).map(|e| e.to_string()),
                name,
                value,
            })
            .collect();
        ExplainRow {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.winrm_port(),
            groups: self.groups.clone(),
            vars,
        }
    }

    /// This host as a display row.
    pub fn to_display_row(&self) -> DisplayRow {
        DisplayRow {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            groups: self.groups.clone(),
            vars: self.masked_vars(),
        }
    }
}

impl Inventory {
    /// One row per host, in inventory order, secrets masked.
    pub fn to_display_rows(&self) -> Vec<DisplayRow> {
        self.hosts.iter().map(Host::to_display_row).collect()
    }

    /// [`Host::explain`] of every host, in inventory order.
    pub fn to_explain_rows(&self) -> Vec<ExplainRow> {
        self.hosts.iter().map(Host::explain).collect()
    }

    /// Per host: a line with its address, port and groups, then one line per variable:
    /// name, value (secrets masked), level (see [`crate::Level`]), and the file and line
    /// that set it.
    pub fn to_explain_text(&self) -> String {
        let mut out = String::new();
        for row in self.to_explain_rows() {
            out.push_str(&format!(
                "{}: address {}, port {}, groups {}\n",
                row.name,
                row.address,
                row.port,
                row.groups.join(" < ")
            ));
            let cells: Vec<[String; 4]> = row
                .vars
                .iter()
                .map(|v| {
                    let (level, from) = match &v.origin {
                        Some(o) => (
                            format!("{} ({})", o.level, o.scope),
                            match (&o.file, o.line) {
                                (Some(f), 0) => f.display().to_string(),
                                (Some(f), l) => format!("{}:{l}", f.display()),
                                (None, _) => "-".into(),
                            },
                        ),
                        None => ("-".into(), "-".into()),
                    };
                    [v.name.clone(), quote_if_needed(&v.value), level, from]
                })
                .collect();
            let mut widths = [0usize; 4];
            for c in &cells {
                for (w, cell) in widths.iter_mut().zip(c.iter()) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let [w0, w1, w2, _] = widths;
            for c in &cells {
                let [name, value, level, from] = c;
                let line = format!("  {name:<w0$}  {value:<w1$}  {level:<w2$}  {from}");
                out.push_str(line.trim_end());
                out.push('\n');
            }
            for v in &row.vars {
                if let Some(p) = &v.problem {
                    out.push_str(&format!("  ! {p}\n"));
                }
            }
        }
        out
    }

    /// A plain-text table: NAME, ADDRESS, PORT, GROUPS (without `all`), VARS
    /// (`key=value`, secrets masked), one host a line.
    pub fn to_table(&self) -> String {
        let header = ["NAME", "ADDRESS", "PORT", "GROUPS", "VARS"].map(String::from);
        let rows: Vec<[String; 5]> = self
            .to_display_rows()
            .into_iter()
            .map(|r| {
                let groups: Vec<&str> = r
                    .groups
                    .iter()
                    .map(String::as_str)
                    .filter(|g| *g != "all")
                    .collect();
                let vars: Vec<String> = r
                    .vars
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote_if_needed(v)))
                    .collect();
                [
                    r.name,
                    r.address,
                    r.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    groups.join(","),
                    vars.join(" "),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(rows.iter()) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(widths.iter()).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains(['"', '\'']) {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

impl Serialize for Host {
    /// `{name, address, port, groups, vars}`, secrets among `vars` as [`MASK`]; variable
    /// values keep their types.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut vars: BTreeMap<&str, serde_json::Value> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        for k in self.secrets.keys() {
            vars.insert(k.as_str(), serde_json::Value::String(MASK.to_string()));
        }
        let mut s = serializer.serialize_struct("Host", 5)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("address", &self.address)?;
        s.serialize_field("port", &self.port)?;
        s.serialize_field("groups", &self.groups)?;
        s.serialize_field("vars", &vars)?;
        s.end()
    }
}

impl Serialize for Inventory {
    /// `{source, hosts}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Inventory", 2)?;
        s.serialize_field(
            "source",
            &self.source.as_ref().map(|p| p.display().to_string()),
        )?;
        s.serialize_field("hosts", &self.hosts)?;
        s.end()
    }
}
