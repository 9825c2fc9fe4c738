//! The run journal: JSON Lines appended as each host finishes, so an interrupted or
//! crashed sweep loses nothing, and `--resume JOURNAL` continues it without redoing
//! finished hosts. The same file is the "JSON Lines events as they happen" output.
//!
//! # Crash safety (issue 16)
//!
//! Before each destructive step of a repair (a credential script: reset, `-Repair`, leave,
//! join; a DC-side write) its intent, [`Entry::RepairStarted`], is written and made
//! durable *before* the step goes out; the host's outcome, [`Entry::Repaired`], follows
//! when its repair ends. The discipline:
//!
//! * The file is opened with `O_APPEND` (owner-only when created; the directory entry of a
//!   new file is fsynced once), so every write lands at the end whoever else appends.
//! * Each entry is one line, serialised first and written with a single `write_all` of
//!   the whole line under the journal's lock: lines never interleave.
//! * Intents and outcomes are followed by `sync_data` (fdatasync) before `append` returns:
//!   a step is sent only once its intent is on disk, and an outcome on disk is final.
//!   Probe results and run markers are only flushed (losing one costs a probe, never a
//!   repeated change).
//! * A process killed mid-write leaves a torn line without its newline. A run that opens
//!   the journal again first ends it with a newline, so its own lines stay whole; reading
//!   skips a torn line (the last line, or one followed by a new run's
//!   [`Entry::RunStarted`]) with a warning, never an error. Any other bad line is an error.
//!
//! On `--resume` ([`load`]): a host with an outcome is not touched again; a host with an
//! intent and no outcome was interrupted mid-step, so it is only probed again
//! ([`playbooks::verify_interrupted`]: "interrupted during STEP; verified state ...",
//! no destructive step repeated); hosts never started are repaired normally. An outcome
//! of `not_attempted` (nothing was done, e.g. an interrupt came first) does not count as
//! done.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
    /// A destructive step of a host's repair is about to be sent (fsynced first).
    RepairStarted {
        /// Inventory name.
        host: String,
        /// The action ([`playbooks::Action::name`]).
        action: String,
        /// The step within it (`run`, `leave`, `join`, `ldap_reset`, ...).
        step: String,
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
    /// A regular file (fsync means something; a pipe or terminal cannot be synced).
    regular: bool,
}

impl Journal {
    /// Opens `path` for appending (created owner-only if missing; a new file's directory
    /// entry is fsynced). A torn last line left by a killed run is ended with a newline
    /// first, so this run's lines stay whole.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let existed = path.exists();
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(open_error)?;
        if !existed {
            sync_parent(path);
        }
        let meta = file.metadata().map_err(open_error)?;
        // Only a regular file can hold a torn line (`-o jsonl=/dev/stdout` cannot be read).
        if meta.is_file() && meta.len() > 0 {
            let mut last = [0u8; 1];
            File::open(path)
                .and_then(|mut r| {
                    r.seek(SeekFrom::Start(meta.len() - 1))?;
                    r.read_exact(&mut last)
                })
                .map_err(open_error)?;
            if last[0] != b'\n' {
                tracing::warn!(journal = %path.display(), "the journal ends in a torn line (a run was killed mid-write); ending it");
                file.write_all(b"\n")
                    .and_then(|()| file.sync_data())
                    .map_err(open_error)?;
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            regular: meta.is_file(),
        })
    }

    /// Appends one entry as one line in one write and flushes it; intents and outcomes are
    /// also `sync_data`'d before this returns (see the module docs). Failures are logged.
    pub fn append(&self, entry: &Entry) {
        if let Err(e) = self.try_append(entry) {
            tracing::error!(journal = %self.path.display(), error = %e, "cannot append to the journal");
        }
    }

    /// [`Journal::append`], saying whether the entry reached the file (and the disk, for
    /// intents and outcomes).
    pub fn try_append(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let durable =
            self.regular && matches!(entry, Entry::RepairStarted { .. } | Entry::Repaired { .. });
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes())?;
        f.flush()?;
        if durable {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// Makes a new file's directory entry durable (best effort: not every file system lets a
/// directory be opened for it).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot fsync the journal's directory");
        }
    }
}

/// What a journal says is already done.
#[derive(Debug, Default)]
pub struct Done {
    /// Probe results by host.
    pub observed: HashMap<String, Observed>,
    /// Repair outcomes by host (not `not_attempted` ones: nothing was done there).
    pub repaired: HashMap<String, RepairOutcome>,
    /// Hosts whose repair recorded the intent of a step (action, step) and no outcome:
    /// interrupted mid-step.
    pub interrupted: HashMap<String, (String, String)>,
    /// Torn lines skipped (a run killed mid-write).
    pub torn: usize,
}

/// Reads a journal. A torn line (the process died mid-write: the last line, or one a
/// later run's `run_started` follows) is skipped with a warning; any other bad line is an
/// error naming the file and line.
pub fn load(path: &Path) -> Result<Done, JournalError> {
    let read = |source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Bytes, not `lines()`: a line torn inside a multi-byte character is skipped like any
    // torn line rather than failing the whole read.
    let bytes = std::fs::read(path).map_err(read)?;
    let lines: Vec<std::borrow::Cow<'_, str>> = bytes
        .split(|b| *b == b'\n')
        .map(String::from_utf8_lossy)
        .collect();
    let mut done = Done::default();
    let next_is_run_start = |i: usize| {
        lines
            .iter()
            .skip(i + 1)
            .find(|l| !l.trim().is_empty())
            .is_none_or(|l| {
                matches!(
                    serde_json::from_str::<Entry>(l),
                    Ok(Entry::RunStarted { .. })
                )
            })
    };
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(Entry::Observed { host, observed }) => {
                done.observed.insert(host, *observed);
            }
            Ok(Entry::RepairStarted { host, action, step }) => {
                if !done.repaired.contains_key(&host) {
                    done.interrupted.insert(host, (action, step));
                }
            }
            Ok(Entry::Repaired { host, outcome }) => {
                if outcome.status == playbooks::RepairStatus::NotAttempted {
                    continue;
                }
                done.interrupted.remove(&host);
                done.repaired.insert(host, *outcome);
            }
            Ok(Entry::RunStarted { .. }) => {}
            Err(_) if next_is_run_start(i) => {
                done.torn += 1;
                tracing::warn!(journal = %path.display(), line = i + 1, "ignoring a torn line (a run was killed mid-write)");
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    fn outcome(host: &str, status: playbooks::RepairStatus) -> Entry {
        Entry::Repaired {
            host: host.into(),
            outcome: Box::new(RepairOutcome {
                host: host.into(),
                status,
                detail: String::new(),
                steps: Vec::new(),
                verification: None,
                changed: false,
            }),
        }
    }

    fn intent(host: &str) -> Entry {
        Entry::RepairStarted {
            host: host.into(),
            action: "reset_machine_password".into(),
            step: "run".into(),
        }
    }

    fn run_started() -> Entry {
        Entry::RunStarted {
            command: "repair".into(),
            schema: "s".into(),
            hosts: 3,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("trustsweep-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn intents_without_outcomes_are_interrupted_and_torn_lines_are_skipped() {
        let path = temp("torn");
        let j = Journal::open(&path).unwrap();
        j.append(&run_started());
        j.append(&intent("a"));
        j.append(&outcome("a", playbooks::RepairStatus::Repaired));
        j.append(&intent("b"));
        j.append(&outcome("c", playbooks::RepairStatus::NotAttempted));
        drop(j);
        // Killed mid-write: half a line, no newline, torn inside a multi-byte character.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&"{\"event\":\"repaired\",\"host\":\"d\u{e9}".as_bytes()[..30])
            .unwrap();
        drop(f);
        let done = load(&path).unwrap();
        assert_eq!(done.torn, 1);
        assert!(done.repaired.contains_key("a"));
        assert!(!done.interrupted.contains_key("a"));
        assert_eq!(
            done.interrupted.get("b"),
            Some(&("reset_machine_password".to_string(), "run".to_string()))
        );
        assert!(
            !done.repaired.contains_key("c"),
            "not attempted is not done"
        );

        // The resumed run ends the torn line first; its own lines stay whole, and the torn
        // line, now in the middle, is still skipped (a run_started follows it).
        let j = Journal::open(&path).unwrap();
        j.append(&run_started());
        j.append(&outcome("b", playbooks::RepairStatus::UnknownThenVerified));
        drop(j);
        let done = load(&path).unwrap();
        assert_eq!(done.torn, 1);
        assert!(done.interrupted.is_empty());
        assert!(done.repaired.contains_key("b"));

        // A bad line anywhere else is an error naming it.
        std::fs::write(&path, "{\"event\":\"nonsense\"}\n{\"event\":\"run_started\",\"command\":\"c\",\"schema\":\"s\",\"hosts\":1}\n{\"event\":\"bad\"}\n\n{\"event\":\"repair_started\",\"host\":\"a\",\"action\":\"x\",\"step\":\"run\"}\n").unwrap();
        assert!(matches!(
            load(&path),
            Err(JournalError::BadLine { line: 3, .. })
        ));
        let _ = std::fs::remove_file(&path);
    }
}
