//! CSV: one row per host, sorted by host name, columns in the fixed order of [`COLUMNS`]
//! (RFC 4180 quoting by the `csv` crate). Text cells that a spreadsheet would run as a
//! formula (starting with `=`, `+`, `-`, `@`, tab or CR: host output can say anything)
//! get a leading `'`, the usual defence against CSV injection.

use playbooks::HostState;

use super::view::{
    final_state, key_evidence, machine_sid, planned_actions, sorted_hosts, trusted_dc, verified,
};
use super::{Document, HostReport};

/// The header, in column order. New columns are only ever appended.
pub const COLUMNS: [&str; 13] = [
    "host",
    "address",
    "state",
    "diagnosis",
    "diagnosis_detail",
    "key_evidence",
    "trusted_dc",
    "machine_sid",
    "planned_actions",
    "repair_status",
    "verified",
    "state_after",
    "probe_ms",
];

/// The cells of one host's row, in [`COLUMNS`] order (before formula quoting).
pub fn row(r: &HostReport) -> [String; 13] {
    [
        r.host.clone(),
        r.address.clone(),
        r.state.name().to_string(),
        r.diagnosis.name().to_string(),
        if r.state == HostState::Healthy {
            String::new()
        } else {
            r.diagnosis.to_string()
        },
        key_evidence(r).to_string(),
        trusted_dc(r).unwrap_or_default(),
        machine_sid(r).unwrap_or("").to_string(),
        planned_actions(r).join(" > "),
        r.repair
            .as_ref()
            .map(|o| o.status.name())
            .unwrap_or("")
            .to_string(),
        match verified(r) {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        }
        .to_string(),
        final_state(r).name().to_string(),
        r.probe_ms.to_string(),
    ]
}

/// A text cell made safe to open in a spreadsheet.
pub fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// Renders the CSV.
pub fn render(doc: &Document) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut ok = w.write_record(COLUMNS).is_ok();
    for r in sorted_hosts(doc) {
        let cells = row(r);
        let last = cells.len().saturating_sub(1);
        let cells: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.clone()
                } else {
                    spreadsheet_safe(c)
                }
            })
            .collect();
        ok &= w.write_record(&cells).is_ok();
    }
    let bytes = match (ok, w.into_inner()) {
        (true, Ok(b)) => b,
        // Writing into a Vec cannot fail.
        _ => Vec::new(),
    };
    String::from_utf8(bytes).unwrap_or_default()
}
