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

impl Column {
    /// The column a header cell names; `None` for a cell with no name.
    fn from_header(header: &str) -> Option<Column> {
        let header = header.trim();
        let col = match header.to_ascii_lowercase().as_str() {
            "" => return None,
            "name" => Column::Name,
            "address" | "ansible_host" => Column::Address,
            "port" | "ansible_port" => Column::Port,
            "groups" | "group" => Column::Groups,
            _ => Column::Var(header.to_string()),
        };
        Some(col)
    }

    /// What the column sets: two columns with the same role say the same thing.
    fn role(&self) -> String {
        match self {
            Column::Name => "name".to_string(),
            Column::Address => "address".to_string(),
            Column::Port => "port".to_string(),
            Column::Groups => "groups".to_string(),
            Column::Var(v) => format!("var:{}", v.to_ascii_lowercase()),
        }
    }
}

/// One row's host, as the row says it.
struct Row {
    name: String,
    groups: Vec<String>,
    /// Host variables, `ansible_host` and `ansible_port` among them, in column order.
    vars: Vec<(String, Value)>,
    /// Where the row is, for error messages.
    line: usize,
}

/// Parses CSV inventory text; `path` is used in error messages only.
pub fn parse_csv(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let mut b = Builder::new(path);
    read_into(&mut b, text)?;
    b.finish_inventory()
}

/// Reads CSV inventory text into `b`.
pub(crate) fn read_into(b: &mut Builder<'_>, text: &str) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(header_line) = header_line(text) else {
        return Ok(());
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| csv_error(b, e))?.clone();
    let columns = columns(b, &headers, header_line)?;
    let ungrouped = b.group("ungrouped", 0);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(b, e))?;
        if let Some(row) = Row::parse(b, &columns, &rec)? {
            row.add_to(b, ungrouped)?;
        }
    }
    Ok(())
}

/// The line number of the header row: the first line neither blank nor a comment; `None`
/// when there is none (an empty inventory).
fn header_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|i| i + 1)
}

/// The csv crate's error as an inventory error at its line, in words that say what to do.
fn csv_error(b: &Builder<'_>, e: csv::Error) -> InventoryError {
    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
            "this row has {len} fields but the header has {expected_len}: quote values that contain commas (\"a,b\")"
        ),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
        _ => format!("not valid CSV: {e}"),
    };
    b.err(line, msg)
}

/// The header row's columns. Every column needs a name, no two may say the same thing, and
/// one must be `name`.
fn columns(
    b: &Builder<'_>,
    headers: &csv::StringRecord,
    line: usize,
) -> Result<Vec<Column>, InventoryError> {
    let mut columns = Vec::with_capacity(headers.len());
    let mut seen: Vec<(String, String)> = Vec::new();
    for h in headers.iter() {
        let Some(col) = Column::from_header(h) else {
            return Err(b.err(
                line,
                "a column of the header row has no name: name every column",
            ));
        };
        let role = col.role();
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == role) {
            return Err(b.err(
                line,
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
            line,
            format!(
                "the header row has no 'name' column (it has: {}): the first row must name the columns, with 'name' for the host names",
                headers.iter().map(str::trim).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(columns)
}

impl Row {
    /// What `rec` says of its host; `None` for a row of empty cells. Empty cells set
    /// nothing.
    fn parse(
        b: &Builder<'_>,
        columns: &[Column],
        rec: &csv::StringRecord,
    ) -> Result<Option<Row>, InventoryError> {
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        if rec.iter().all(str::is_empty) {
            return Ok(None);
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
                Column::Port => {
                    let port = parse_port(cell).ok_or_else(|| {
                        b.err(
                            line,
                            format!("bad port '{cell}': a port is a number from 1 to 65535"),
                        )
                    })?;
                    vars.push(("ansible_port".into(), Value::from(port)));
                }
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
        if let Some(g) = groups
            .iter()
            .find(|g| g.contains(char::is_whitespace) || g.contains(':'))
        {
            return Err(b.err(
                line,
                format!("group name '{g}' cannot contain spaces or ':' (separate groups with ';')"),
            ));
        }
        Ok(Some(Row {
            name,
            groups,
            vars,
            line,
        }))
    }

    /// Adds the host to its groups (`ungrouped` when it names none) and sets its
    /// variables; a host on several rows merges.
    fn add_to(self, b: &mut Builder<'_>, ungrouped: usize) -> Result<(), InventoryError> {
        let mut h = None;
        for g in &self.groups {
            let gi = b.group(g, self.line);
            h = Some(b.add_host(&self.name, gi));
        }
        let h = match h {
            Some(h) => h,
            None => b.add_host(&self.name, ungrouped),
        };
        for (k, v) in self.vars {
            b.set_host_var(h, &k, v, self.line)?;
        }
        Ok(())
    }
}

/// A port cell: digits only, 1 to 65535.
fn parse_port(cell: &str) -> Option<u16> {
    cell.parse::<u16>()
        .ok()
        .filter(|p| *p >= 1 && cell.chars().all(|c| c.is_ascii_digit()))
}
