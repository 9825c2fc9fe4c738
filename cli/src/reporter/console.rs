//! What the commands other than the sweep say, and what every command says when it fails:
//! `trustsweep CMD: error` lines, warnings, the interrupt notices, the repair confirmation,
//! `run`'s streamed output, `inventory`'s table, `history`'s view and `lab serve`'s
//! listing. The words are chosen here; the commands hand over typed results.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;

use lab::wire::RunningLab;
use winrm::ntlm::CbtHardening;
use winrm::session::Stream;
use winrm::transport::Scheme;

use super::{json, out, OutputFailed};
use crate::run_plan::Format;

/// `trustsweep CMD: error` (or `trustsweep: error`) on stderr.
pub fn failed(command: Option<&str>, error: &dyn fmt::Display) {
    match command {
        Some(c) => eprintln!("trustsweep {c}: {error}"),
        None => eprintln!("trustsweep: {error}"),
    }
}

/// `warning: what` on stderr.
pub fn warning(what: &dyn fmt::Display) {
    eprintln!("warning: {what}");
}

/// The first Ctrl-C: no new hosts start.
pub fn interrupted() {
    eprintln!("trustsweep: interrupted: no new hosts are started; finishing the running ones (Ctrl-C again to stop now)");
}

/// The second Ctrl-C: stopping now.
pub fn stopped() {
    eprintln!("trustsweep: stopped; resume with --resume JOURNAL");
}

/// Asks on the terminal whether to repair `hosts` hosts; `false` (and says nothing was
/// changed) unless the answer is yes.
pub fn confirm_repair(hosts: usize) -> bool {
    eprint!("Repair {hosts} host(s)? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let yes = std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes");
    if !yes {
        eprintln!("nothing was changed");
    }
    yes
}

/// Whether stdin is a terminal (a person could answer [`confirm_repair`]).
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}

/// `trustsweep history`'s view.
pub fn history(view: &report::HistoryView, format: Format) -> Result<(), OutputFailed> {
    match format {
        Format::Text => {
            out(&report::render_history(view));
            Ok(())
        }
        Format::Json => json(Some("history"), view),
    }
}

/// `trustsweep inventory`'s hosts: a table, or JSON rows.
pub fn inventory(inv: &inventory::Inventory, table: bool) -> Result<(), OutputFailed> {
    if table {
        out(&inv.to_table());
        Ok(())
    } else {
        json(Some("inventory"), &inv.to_display_rows())
    }
}

/// `trustsweep inventory --explain`: each host's variables with the file, line and
/// precedence level each came from.
pub fn inventory_explain(inv: &inventory::Inventory, table: bool) -> Result<(), OutputFailed> {
    if table {
        out(&inv.to_explain_text());
        Ok(())
    } else {
        json(Some("inventory"), &inv.to_explain_rows())
    }
}

/// `trustsweep run`'s output as it arrives: stdout to stdout, stderr to stderr (a
/// PowerShell stderr is CLIXML: shown decoded by [`run_powershell_errors`] instead).
pub fn run_output(stream: Stream, data: &[u8], powershell: bool) {
    match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(data);
            let _ = out.flush();
        }
        Stream::Stderr if !powershell => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(data);
            let _ = err.flush();
        }
        Stream::Stderr => {}
    }
}

/// `trustsweep run --powershell`'s decoded error stream, once complete.
pub fn run_powershell_errors(text: &str) {
    if !text.is_empty() {
        eprintln!("{}", text.trim_end());
    }
}

/// What `lab serve` says as it starts and stops.
#[derive(Debug, Clone, Copy)]
pub enum LabEvent<'a> {
    /// The inventory (with the lab's credentials) was written.
    InventoryWritten {
        /// Where.
        path: &'a Path,
    },
    /// Where the HTTPS lab's CA is while it runs (no inventory written).
    CaFile {
        /// Where.
        path: &'a Path,
    },
    /// Listening: a banner on stderr, a line per host on stdout.
    Serving {
        /// The lab.
        running: &'a RunningLab,
        /// Its listeners' `CbtHardeningLevel`.
        cbt: CbtHardening,
    },
    /// Interrupted: the lab is gone.
    Stopped,
}

/// Presents a [`LabEvent`].
pub fn lab(ev: LabEvent<'_>) {
    match ev {
        LabEvent::InventoryWritten { path } => {
            eprintln!("inventory written to {}", path.display())
        }
        LabEvent::CaFile { path } => eprintln!("lab CA (while the lab runs): {}", path.display()),
        LabEvent::Serving { running, cbt } => lab_serving(running, cbt),
        LabEvent::Stopped => eprintln!("lab stopped"),
    }
}

fn lab_serving(running: &RunningLab, cbt: CbtHardening) {
    let eps = running.endpoints();
    if let (Some(first), Some(last)) = (eps.first(), eps.last()) {
        eprintln!(
            "lab {}: {} hosts listening for WinRM over {} (CbtHardeningLevel {}) from {} to {}; press Ctrl-C to stop",
            running.lab().domain_name(),
            eps.len(),
            match running.scheme() {
                Scheme::Http => "http",
                Scheme::Https => "https",
            },
            cbt,
            first.addr,
            last.addr
        );
    }
    for ep in eps {
        let fault = ep.info.fault.map(|f| f.name()).unwrap_or("healthy");
        println!("{}\t{}\t{}", ep.info.address, ep.addr, fault);
    }
}
