//! A plain host list: one host a line (`name`, `name:port`, or a range like
//! `ws[001:120].lab.test`), blank lines and `#` comments (whole-line or after the host)
//! ignored. Every host is in `ungrouped`.

use std::path::Path;

use serde_json::Value;

use crate::hostpattern::expand_host_pattern;
use crate::model::Builder;
use crate::{Inventory, InventoryError};

/// Parses a plain host list; `path` is used in error messages only.
pub fn parse_list(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let mut b = Builder::new(path);
    read_into(&mut b, text)?;
    b.finish_inventory()
}

/// Reads a plain host list into `b`.
pub(crate) fn read_into(b: &mut Builder<'_>, text: &str) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let group = b.group("ungrouped", 0);
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = match raw.find('#') {
            Some(c) => raw.get(..c).unwrap_or_default(),
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(token), None) = (words.next(), words.next()) else {
            return Err(b.err(
                line_no,
                format!("expected one host per line (name or name:port), got '{line}': put each host on its own line"),
            ));
        };
        let (names, port) = expand_host_pattern(token).map_err(|m| b.err(line_no, m))?;
        b.check_room(&names, line_no)?;
        for n in names {
            let h = b.add_host(&n, group);
            if let Some(p) = port {
                b.set_host_var(h, "ansible_port", Value::from(p), line_no)?;
            }
        }
    }
    Ok(())
}
