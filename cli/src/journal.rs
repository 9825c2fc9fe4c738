//! The run journal: JSON Lines appended as each host finishes (flushed per line), so an
//! interrupted or crashed sweep loses nothing, and `--resume JOURNAL` continues it without
//! redoing finished hosts. The same file is the "JSON Lines events as they happen" output.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use playbooks::RepairOutcome;
use serde::{Deserialize, Serialize};

use crate::sweep::Observed;

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A run (or a resumed run) started.
    RunStarted {
        /// `check`, `plan` or `repair`.
        command: String,
        /// Report schema.
        schema: String,
        /// Hosts in the sweep.
        hosts: usize,
    },
    /// A host's probe finished.
    Observed {
        /// Inventory name.
        host: String,
        /// What the probe found.
        observed: Box<Observed>,
    },
    /// A host's repair finished (verified or not).
    Repaired {
        /// Inventory name.
        host: String,
        /// The outcome.
        outcome: Box<RepairOutcome>,
    },
}

/// Why a journal could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// It could not be opened for appending.
    #[error("cannot open journal {}: {source}", path.display())]
    Open {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It could not be read.
    #[error("cannot read journal {}: {source}", path.display())]
    Read {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line (not the last: a torn last line is ignored) is not a journal entry.
    #[error("{}:{line}: not a trustsweep journal line: {source}", path.display())]
    BadLine {
        /// The journal.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// An open journal, appended to by the reporters.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens `path` for appending (created owner-only if missing).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(|source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one entry and flushes it, so a kill right after loses nothing.
    pub fn append(&self, entry: &Entry) {
        let Ok(mut line) = serde_json::to_string(entry) else {
            return;
        };
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            tracing::error!(journal = %self.path.display(), error = %e, "cannot append to the journal");
        }
    }
}

/// What a journal says is already done.
#[derive(Debug, Default)]
pub struct Done {
    /// Probe results by host.
    pub observed: HashMap<String, Observed>,
    /// Repair outcomes by host.
    pub repaired: HashMap<String, RepairOutcome>,
}

/// Reads a journal. A torn last line (the process died mid-write) is ignored; any other
/// bad line is an error naming the file and line.
pub fn load(path: &Path) -> Result<Done, JournalError> {
    let read = |source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read)?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(read)?;
    let mut done = Done::default();
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(Entry::Observed { host, observed }) => {
                done.observed.insert(host, *observed);
            }
            Ok(Entry::Repaired { host, outcome }) => {
                done.repaired.insert(host, *outcome);
            }
            Ok(Entry::RunStarted { .. }) => {}
            Err(_) if i + 1 == last => {
                tracing::warn!(journal = %path.display(), line = i + 1, "ignoring a torn last line");
            }
            Err(source) => {
                return Err(JournalError::BadLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok(done)
}
