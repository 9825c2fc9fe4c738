//! CSV host lists: a header row, then one host a row. Columns (names are matched without
//! regard to case or surrounding spaces):
//!
//! - `name` (required): the inventory name;
//! - `address` or `ansible_host`: where to connect (default: the name);
//! - `port` or `ansible_port`: the WinRM port;
//! - `groups` (or `group`): groups separated by `;`;
//! - any other column: a host variable of that name (secrets, like a `password` column,
//!   go to [`crate::Host::secrets`]).
//!
//! Empty cells set nothing. Lines starting with `#` are comments. A host on several rows
//! merges (its groups add up; a different port is an error).

use std::path::Path;

use serde_json::Value;

use crate::model::Builder;
use crate::{Inventory, InventoryError};

enum Column {
    Name,
    Address,
    Port,
    Groups,
    Var(String),
}

/// Parses CSV inventory text; `path` is used in error messages only.
pub fn parse_csv(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut b = Builder::new(path);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Inventory {
            hosts: Vec::new(),
            source: Some(path.to_path_buf()),
        });
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let csv_err = |b: &Builder<'_>, e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
        let msg = match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
                "this row has {len} fields but the header has {expected_len}: quote values that contain commas (\"a,b\")"
            ),
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
            _ => format!("not valid CSV: {e}"),
        };
        b.err(line, msg)
    };
    let headers = rdr.headers().map_err(|e| csv_err(&b, e))?.clone();
    let header_line = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|i| i + 1)
        .unwrap_or(1);
    let mut columns = Vec::with_capacity(headers.len());
    let mut seen: Vec<(String, String)> = Vec::new();
    for h in headers.iter() {
        let lower = h.trim().to_ascii_lowercase();
        let col = match lower.as_str() {
            "" => {
                return Err(b.err(
                    header_line,
                    "a column of the header row has no name: name every column",
                ))
            }
            "name" => Column::Name,
            "address" | "ansible_host" => Column::Address,
            "port" | "ansible_port" => Column::Port,
            "groups" | "group" => Column::Groups,
            _ => Column::Var(h.trim().to_string()),
        };
        let role = match &col {
            Column::Name => "name".to_string(),
            Column::Address => "address".to_string(),
            Column::Port => "port".to_string(),
            Column::Groups => "groups".to_string(),
            Column::Var(v) => format!("var:{}", v.to_ascii_lowercase()),
        };
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == role) {
            return Err(b.err(
                header_line,
                format!(
                    "columns '{first}' and '{}' say the same thing: keep one",
                    h.trim()
                ),
            ));
        }
        seen.push((role, h.trim().to_string()));
        columns.push(col);
    }
    if !columns.iter().any(|c| matches!(c, Column::Name)) {
        return Err(b.err(
            header_line,
            format!(
                "the header row has no 'name' column (it has: {}): the first row must name the columns, with 'name' for the host names",
                headers.iter().map(str::trim).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let ungrouped = b.group("ungrouped", 0);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_err(&b, e))?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let mut name = None;
        let mut groups = Vec::new();
        let mut vars: Vec<(String, Value)> = Vec::new();
        for (col, cell) in columns.iter().zip(rec.iter()) {
            if cell.is_empty() {
                continue;
            }
            match col {
                Column::Name => name = Some(cell.to_string()),
                Column::Address => vars.push(("ansible_host".into(), Value::from(cell))),
                Column::Port => match cell.parse::<u16>() {
                    Ok(p) if p >= 1 && cell.chars().all(|c| c.is_ascii_digit()) => {
                        vars.push(("ansible_port".into(), Value::from(p)))
                    }
                    _ => {
                        return Err(b.err(
                            line,
                            format!("bad port '{cell}': a port is a number from 1 to 65535"),
                        ))
                    }
                },
                Column::Groups => groups.extend(
                    cell.split(';')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from),
                ),
                Column::Var(k) => vars.push((k.clone(), Value::from(cell))),
            }
        }
        let Some(name) = name else {
            return Err(b.err(
                line,
                "this row has no name: every row needs a host name in the 'name' column",
            ));
        };
        if name.contains(char::is_whitespace) {
            return Err(b.err(line, format!("host name '{name}' contains a space")));
        }
        let mut h = None;
        for g in &groups {
            if g.contains(char::is_whitespace) || g.contains(':') {
                return Err(b.err(
                    line,
                    format!(
                        "group name '{g}' cannot contain spaces or ':' (separate groups with ';')"
                    ),
                ));
            }
            let gi = b.group(g, line);
            h = Some(b.add_host(&name, gi));
        }
        let h = match h {
            Some(h) => h,
            None => b.add_host(&name, ungrouped),
        };
        for (k, v) in vars {
            b.set_host_var(h, &k, v, line)?;
        }
    }
    Ok(Inventory {
        hosts: b.finish()?,
        source: Some(path.to_path_buf()),
    })
}
