//! History of scheduled runs (`--history PATH`, `trustsweep history`): every run's host
//! states in an SQLite file (rusqlite with its bundled SQLite: nothing to install), and
//! what changed per host between the last run and the ones before:
//!
//! * **newly broken**: found broken by the last run, not broken at the end of the run
//!   before it (hosts seen for the first time are not "newly" anything);
//! * **repaired**: broken at the end of the previous run, or found broken by the last run,
//!   and healthy at the end of the last run (a `repair` run's verified result);
//! * **chronic**: broken at the end of at least [`CHRONIC_MIN_RUNS`] runs in a row, up to
//!   the last one;
//! * **flapping**: the state changed at least [`FLAP_MIN_CHANGES`] times over the last
//!   [`FLAP_RUNS`] runs, counting a repair run's found → left as a change too (a host a
//!   nightly repair heals and that breaks again by the next night is flapping, even though
//!   every run ends with it healthy).
//!
//! The database schema is versioned with SQLite's `user_version`; [`History::open`]
//! applies the missing migrations in one transaction, so opening twice, or two processes
//! opening at once, is harmless, and a file from a newer trustsweep is refused.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use playbooks::HostState;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::view::{final_diagnosis, final_state, parse_state};
use super::Document;

/// Broken at the end of this many runs in a row (or more) is chronic.
pub const CHRONIC_MIN_RUNS: usize = 2;
/// Flapping: at least this many state changes…
pub const FLAP_MIN_CHANGES: usize = 3;
/// …over this many of the host's last runs.
pub const FLAP_RUNS: usize = 5;
/// [`History::changes`] looks this many runs back (chronic streaks longer than this are
/// reported as "at least").
pub const DEFAULT_WINDOW: usize = 50;

/// The migrations, in order; the database's `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[
    // 1: runs and per-host results.
    "CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_at INTEGER NOT NULL,
        command TEXT NOT NULL,
        schema TEXT NOT NULL,
        hosts INTEGER NOT NULL,
        healthy INTEGER NOT NULL,
        broken INTEGER NOT NULL,
        unreachable INTEGER NOT NULL,
        access_problem INTEGER NOT NULL,
        unknown INTEGER NOT NULL,
        elapsed_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS host_runs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        state TEXT NOT NULL,
        final_state TEXT NOT NULL,
        diagnosis TEXT NOT NULL,
        final_diagnosis TEXT NOT NULL,
        repair_status TEXT,
        detail TEXT NOT NULL,
        PRIMARY KEY (run_id, host)
    );
    CREATE INDEX IF NOT EXISTS host_runs_by_host ON host_runs(host, run_id);
    CREATE INDEX IF NOT EXISTS runs_by_time ON runs(run_at, id);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What went wrong with the history file.
#[derive(Debug)]
#[non_exhaustive]
pub enum HistoryError {
    /// SQLite refused (cannot open, locked for too long, corrupt, disk full).
    Sqlite(rusqlite::Error),
    /// The file was written by a newer trustsweep.
    NewerSchema {
        /// Its version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A stored value this build cannot read.
    Corrupt(String),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Sqlite(e) => write!(f, "history database: {e}"),
            HistoryError::NewerSchema { found, supported } => write!(
                f,
                "history database has schema version {found}; this trustsweep reads up to {supported}"
            ),
            HistoryError::Corrupt(what) => write!(f, "history database: {what}"),
        }
    }
}

impl std::error::Error for HistoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HistoryError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for HistoryError {
    fn from(e: rusqlite::Error) -> Self {
        HistoryError::Sqlite(e)
    }
}

/// An open history database.
#[derive(Debug)]
pub struct History {
    conn: Connection,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    /// Its id ([`History::record`]'s result).
    pub id: i64,
    /// When it ran (Unix seconds, as passed to [`History::record`]).
    pub run_at: i64,
    /// `check`, `plan` or `repair`.
    pub command: String,
    /// How many hosts it reported.
    pub hosts: usize,
}

impl RunInfo {
    /// A row of `SELECT id, run_at, command, hosts FROM runs`.
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
        Ok(RunInfo {
            id: r.get(0)?,
            run_at: r.get(1)?,
            command: r.get(2)?,
            hosts: usize::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        })
    }
}

/// A host whose state changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostChange {
    /// The host.
    pub host: String,
    /// The state before (end of the previous run, or as found by the last run).
    pub was: HostState,
    /// The state at the end of the last run.
    pub now: HostState,
    /// The diagnosis while broken.
    pub diagnosis: String,
}

/// A host broken for several runs in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chronic {
    /// The host.
    pub host: String,
    /// How many runs in a row it ended broken.
    pub runs: usize,
    /// The streak may be longer: it reaches back past the runs looked at.
    pub at_least: bool,
    /// When the first run of the streak ran (Unix seconds).
    pub since_run_at: i64,
    /// The last diagnosis.
    pub diagnosis: String,
}

/// A host whose state keeps changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flapping {
    /// The host.
    pub host: String,
    /// State changes over its last [`FLAP_RUNS`] runs.
    pub changes: usize,
    /// The states in order, oldest first (found and left for repair runs).
    pub states: Vec<HostState>,
}

/// What [`History::changes`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryView {
    /// Runs recorded in all.
    pub total_runs: usize,
    /// The last run.
    pub last: Option<RunInfo>,
    /// The run before it.
    pub previous: Option<RunInfo>,
    /// Broken now, not at the end of the previous run.
    pub newly_broken: Vec<HostChange>,
    /// Broken before, healthy now.
    pub repaired: Vec<HostChange>,
    /// Broken for [`CHRONIC_MIN_RUNS`]+ runs in a row, longest first.
    pub chronic: Vec<Chronic>,
    /// [`FLAP_MIN_CHANGES`]+ changes in the last [`FLAP_RUNS`] runs, most first.
    pub flapping: Vec<Flapping>,
}

/// One host in one run, as stored.
struct Entry {
    run_id: i64,
    run_at: i64,
    state: HostState,
    final_state: HostState,
    diagnosis: String,
    final_diagnosis: String,
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl History {
    /// Opens (creating if need be) the history at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        Self::init(Connection::open(path)?)
    }

    /// A history in memory (tests, dry runs).
    pub fn open_in_memory() -> Result<History, HistoryError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<History, HistoryError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for m in MIGRATIONS
            .iter()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(History { conn })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, HistoryError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Records a run; returns its id.
    pub fn record(&mut self, doc: &Document, run_at_unix: i64) -> Result<i64, HistoryError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let s = doc.remaining.as_ref().unwrap_or(&doc.summary);
        tx.execute(
            "INSERT INTO runs (run_at, command, schema, hosts, healthy, broken, unreachable, access_problem, unknown, elapsed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                run_at_unix,
                doc.command,
                doc.schema,
                to_i64(doc.hosts.len()),
                to_i64(s.healthy),
                to_i64(s.broken),
                to_i64(s.unreachable),
                to_i64(s.access_problem),
                to_i64(s.unknown),
                to_i64(doc.elapsed_ms),
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO host_runs (run_id, host, state, final_state, diagnosis, final_diagnosis, repair_status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in &doc.hosts {
                insert.execute(params![
                    run_id,
                    r.host,
                    r.state.name(),
                    final_state(r).name(),
                    r.diagnosis.name(),
                    final_diagnosis(r).name(),
                    r.repair.as_ref().map(|o| o.status.name()),
                    r.diagnosis.to_string(),
                ])?;
            }
        }
        tx.commit()?;
        Ok(run_id)
    }

    /// The runs recorded, oldest first.
    pub fn runs(&self) -> Result<Vec<RunInfo>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, run_at, command, hosts FROM runs ORDER BY run_at, id")?;
        let rows = stmt.query_map([], RunInfo::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// What changed, looking [`DEFAULT_WINDOW`] runs back.
    pub fn changes(&self) -> Result<HistoryView, HistoryError> {
        self.changes_within(DEFAULT_WINDOW)
    }

    /// What changed per host of the last run, looking `window` runs back (at least 2).
    pub fn changes_within(&self, window: usize) -> Result<HistoryView, HistoryError> {
        let window = window.max(2);
        let total_runs: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
        let mut view = HistoryView {
            total_runs: usize::try_from(total_runs).unwrap_or(0),
            ..HistoryView::default()
        };
        let recent = self.recent_runs(window)?;
        let Some(last) = recent.first().cloned() else {
            return Ok(view);
        };
        view.previous = recent.get(1).cloned();
        let window_full = view.total_runs > recent.len();
        let oldest = recent.last().map(|r| (r.run_at, r.id)).unwrap_or((0, 0));
        for (host, entries) in self.entries_since(last.id, oldest)? {
            let Some(now) = entries.last().filter(|e| e.run_id == last.id) else {
                continue;
            };
            let before = entries.len().checked_sub(2).and_then(|i| entries.get(i));
            view.newly_broken.extend(newly_broken(&host, before, now));
            view.repaired.extend(repaired(&host, before, now));
            view.chronic
                .extend(chronic(&host, &entries, now, window_full));
            view.flapping.extend(flapping(host, &entries));
        }
        view.chronic
            .sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.host.cmp(&b.host)));
        view.flapping
            .sort_by(|a, b| b.changes.cmp(&a.changes).then_with(|| a.host.cmp(&b.host)));
        view.last = Some(last);
        Ok(view)
    }

    /// The last `window` runs, newest first.
    fn recent_runs(&self, window: usize) -> Result<Vec<RunInfo>, HistoryError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, run_at, command, hosts FROM runs ORDER BY run_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(window)], RunInfo::from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every host of run `last`, with its entries since the run `oldest` (run_at, id),
    /// oldest first.
    fn entries_since(
        &self,
        last: i64,
        oldest: (i64, i64),
    ) -> Result<BTreeMap<String, Vec<Entry>>, HistoryError> {
        let mut stmt = self.conn.prepare(
            "SELECT h.host, h.run_id, r.run_at, h.state, h.final_state, h.diagnosis, h.final_diagnosis
             FROM host_runs h JOIN runs r ON r.id = h.run_id
             WHERE h.host IN (SELECT host FROM host_runs WHERE run_id = ?1)
               AND (r.run_at > ?2 OR (r.run_at = ?2 AND r.id >= ?3))
             ORDER BY h.host, r.run_at, r.id",
        )?;
        let mut rows = stmt.query(params![last, oldest.0, oldest.1])?;
        let mut by_host: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let host: String = row.get(0)?;
            let state = |i: usize| -> Result<HostState, HistoryError> {
                let text: String = row.get(i)?;
                parse_state(&text)
                    .ok_or_else(|| HistoryError::Corrupt(format!("unknown state '{text}'")))
            };
            let entry = Entry {
                run_id: row.get(1)?,
                run_at: row.get(2)?,
                state: state(3)?,
                final_state: state(4)?,
                diagnosis: row.get(5)?,
                final_diagnosis: row.get(6)?,
            };
            by_host.entry(host).or_default().push(entry);
        }
        Ok(by_host)
    }

    /// The stored diagnosis text of `host` in run `run_id`, if recorded.
    pub fn detail(&self, run_id: i64, host: &str) -> Result<Option<String>, HistoryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT detail FROM host_runs WHERE run_id = ?1 AND host = ?2",
                params![run_id, host],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// Broken now, not broken at the end of the run before.
fn newly_broken(host: &str, before: Option<&Entry>, now: &Entry) -> Option<HostChange> {
    let prev = before?;
    (prev.final_state != HostState::Broken && now.state == HostState::Broken).then(|| HostChange {
        host: host.to_string(),
        was: prev.final_state,
        now: now.final_state,
        diagnosis: now.diagnosis.clone(),
    })
}

/// Healthy at the end of this run, broken when this run found it or at the end of the run
/// before.
fn repaired(host: &str, before: Option<&Entry>, now: &Entry) -> Option<HostChange> {
    if now.final_state != HostState::Healthy {
        return None;
    }
    let (was, diagnosis) = if now.state == HostState::Broken {
        (now.state, &now.diagnosis)
    } else {
        before
            .filter(|p| p.final_state == HostState::Broken)
            .map(|p| (p.final_state, &p.final_diagnosis))?
    };
    Some(HostChange {
        host: host.to_string(),
        was,
        now: now.final_state,
        diagnosis: diagnosis.clone(),
    })
}

/// Broken at the end of the last [`CHRONIC_MIN_RUNS`] runs or more.
fn chronic(host: &str, entries: &[Entry], now: &Entry, window_full: bool) -> Option<Chronic> {
    let streak = entries
        .iter()
        .rev()
        .take_while(|e| e.final_state == HostState::Broken)
        .count();
    if streak < CHRONIC_MIN_RUNS {
        return None;
    }
    let first = entries
        .len()
        .checked_sub(streak)
        .and_then(|i| entries.get(i));
    Some(Chronic {
        host: host.to_string(),
        runs: streak,
        at_least: streak == entries.len() && window_full,
        since_run_at: first.map(|e| e.run_at).unwrap_or(now.run_at),
        diagnosis: now.final_diagnosis.clone(),
    })
}

/// At least [`FLAP_MIN_CHANGES`] state changes over the last [`FLAP_RUNS`] runs (a run that
/// changed a host counts its found and its final state).
fn flapping(host: String, entries: &[Entry]) -> Option<Flapping> {
    let tail = entries
        .get(entries.len().saturating_sub(FLAP_RUNS)..)
        .unwrap_or(&[]);
    let mut states: Vec<HostState> = Vec::new();
    for e in tail {
        states.push(e.state);
        if e.final_state != e.state {
            states.push(e.final_state);
        }
    }
    let changes = states.windows(2).filter(|w| w.first() != w.last()).count();
    (changes >= FLAP_MIN_CHANGES).then_some(Flapping {
        host,
        changes,
        states,
    })
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian), as the probe's
/// NETLOGON event times are printed: [`playbooks::probe::unix_utc`].
pub fn utc(unix: i64) -> String {
    playbooks::probe::unix_utc(unix)
}

fn run_line(r: &RunInfo) -> String {
    format!(
        "run {} ({}, {}, {} hosts)",
        r.id,
        r.command,
        utc(r.run_at),
        r.hosts
    )
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            let w = c.chars().count();
            match widths.get_mut(i) {
                Some(cur) => *cur = (*cur).max(w),
                None => widths.push(w),
            }
        }
    }
    for row in rows {
        let mut line = String::from("  ");
        for (i, c) in row.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let _ = write!(line, "  {c:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// One section of the history: its title with the number of rows, then the rows under
/// their header when there are any.
fn section(
    out: &mut String,
    title: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .collect();
    let _ = writeln!(out, "\n{title} ({}):", rows.len().saturating_sub(1));
    if rows.len() > 1 {
        table(out, &rows);
    }
}

/// The history for people.
pub fn render_history(view: &HistoryView) -> String {
    let mut out = String::new();
    let Some(last) = &view.last else {
        out.push_str("history: no runs recorded\n");
        return out;
    };
    let _ = writeln!(
        out,
        "history: {} run{} recorded; last: {}",
        view.total_runs,
        if view.total_runs == 1 { "" } else { "s" },
        run_line(last)
    );
    match &view.previous {
        Some(p) => {
            let _ = writeln!(out, "compared with: {}", run_line(p));
        }
        None => {
            let _ = writeln!(out, "nothing to compare with yet");
        }
    }

    section(
        &mut out,
        "newly broken since the last run",
        &["host", "was", "now", "diagnosis"],
        view.newly_broken.iter().map(|c| {
            vec![
                c.host.clone(),
                c.was.to_string(),
                c.now.to_string(),
                c.diagnosis.clone(),
            ]
        }),
    );
    section(
        &mut out,
        "repaired, broken then healthy",
        &["host", "was", "diagnosis"],
        view.repaired
            .iter()
            .map(|c| vec![c.host.clone(), c.was.to_string(), c.diagnosis.clone()]),
    );
    section(
        &mut out,
        &format!("chronic, broken {CHRONIC_MIN_RUNS}+ runs in a row"),
        &["host", "runs", "since", "diagnosis"],
        view.chronic.iter().map(|c| {
            vec![
                c.host.clone(),
                format!("{}{}", if c.at_least { ">=" } else { "" }, c.runs),
                utc(c.since_run_at),
                c.diagnosis.clone(),
            ]
        }),
    );
    section(
        &mut out,
        &format!("flapping, {FLAP_MIN_CHANGES}+ state changes in the last {FLAP_RUNS} runs"),
        &["host", "changes", "states, oldest first"],
        view.flapping.iter().map(|f| {
            vec![
                f.host.clone(),
                f.changes.to_string(),
                f.states
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(" > "),
            ]
        }),
    );
    out
}
