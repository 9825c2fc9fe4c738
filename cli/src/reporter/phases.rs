//! The reporters of the engine's phases, each on its own task, fed by the engine's events
//! (and, in the repair phase, the playbooks' [`RepairEvent`]s on the same channel, in the
//! order they happened): the progress bar, the journal line of every finished host, and as
//! text a line per host (and per repair step).

use std::sync::Arc;

use playbooks::{diagnose_host, RepairEvent, RepairOutcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::progress::Progress;
use super::text;
use crate::engine::Event;
use crate::journal::{Entry, Journal};
use crate::run_plan::Format;
use crate::sweep::Observed;

/// Runs `handle` on every event sent to the returned sender, on its own task, until every
/// sender is dropped; await the handle to know the last event was handled.
pub fn spawn<E: Send + 'static>(
    mut handle: impl FnMut(E) + Send + 'static,
) -> (mpsc::UnboundedSender<E>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<E>();
    let task = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            handle(ev);
        }
    });
    (tx, task)
}

/// The probe phase: a numbered line per host as it finishes (text), its journal line.
#[derive(Debug)]
pub struct ProbeReporter {
    format: Format,
    width: usize,
    journal: Option<Arc<Journal>>,
    progress: Progress,
    done: usize,
    total: usize,
}

impl ProbeReporter {
    /// A reporter for hosts named `names` (their longest name, up to 40, sets the width).
    pub fn new(format: Format, names: &[String], journal: Option<Arc<Journal>>) -> Self {
        ProbeReporter {
            format,
            width: names.iter().map(|n| n.len()).max().unwrap_or(4).min(40),
            journal,
            progress: Progress::new("probe", 0),
            done: 0,
            total: 0,
        }
    }

    /// Handles one engine event.
    pub fn handle(&mut self, ev: Event<Observed>) {
        match ev {
            Event::PhaseStarted { phase, total } => {
                self.total = total;
                self.progress = Progress::new(phase, total);
                tracing::info!(phase, hosts = total, "phase started");
            }
            Event::Concurrency {
                phase,
                hosts,
                chosen_by,
            } => {
                let chosen = crate::limits::Concurrency { hosts, chosen_by };
                tracing::info!(phase, hosts, ?chosen_by, "concurrency");
                if self.format == Format::Text && self.total > 1 {
                    self.progress.note(&format!("{phase}: {chosen}"));
                }
            }
            Event::HostFinished { result, .. } => {
                self.done += 1;
                self.progress.inc();
                if let Some(j) = &self.journal {
                    j.append(&Entry::Observed {
                        host: result.observation.host.clone(),
                        observed: Box::new(result.clone()),
                    });
                }
                if self.format == Format::Text {
                    let f = diagnose_host(&result.observation);
                    let line = text::host_line(
                        &result.observation.host,
                        self.width,
                        &f,
                        result.elapsed_ms,
                    );
                    self.progress
                        .line(&text::numbered(self.done, self.total, &line));
                }
            }
            Event::PhaseFinished { phase, elapsed } => {
                self.progress.finish();
                tracing::info!(
                    phase,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "phase finished"
                );
            }
        }
    }
}

/// What the repair phase's reporter hears: the engine's events and the playbooks'.
#[derive(Debug, Clone)]
pub enum RepairPhaseEvent {
    /// From the engine: the phase, and each host's outcome.
    Engine(Box<Event<RepairOutcome>>),
    /// From `playbooks::repair_host_with` / `repair_on_dc`: actions, steps, reboots,
    /// verifications.
    Playbook(RepairEvent),
}

impl From<Event<RepairOutcome>> for RepairPhaseEvent {
    fn from(e: Event<RepairOutcome>) -> Self {
        RepairPhaseEvent::Engine(Box::new(e))
    }
}

impl From<RepairEvent> for RepairPhaseEvent {
    fn from(e: RepairEvent) -> Self {
        RepairPhaseEvent::Playbook(e)
    }
}

/// The repair phase: each step as it happens and each host's outcome (text), the
/// outcome's journal line.
#[derive(Debug)]
pub struct RepairReporter {
    format: Format,
    journal: Option<Arc<Journal>>,
    progress: Progress,
}

impl RepairReporter {
    /// A reporter appending outcomes to `journal`.
    pub fn new(format: Format, journal: Option<Arc<Journal>>) -> Self {
        RepairReporter {
            format,
            journal,
            progress: Progress::new("repair", 0),
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, ev: RepairPhaseEvent) {
        match ev {
            RepairPhaseEvent::Engine(e) => self.engine(*e),
            RepairPhaseEvent::Playbook(e) => self.playbook(&e),
        }
    }

    fn engine(&mut self, ev: Event<RepairOutcome>) {
        match ev {
            Event::PhaseStarted { phase, total } => {
                self.progress = Progress::new(phase, total);
            }
            Event::Concurrency {
                phase,
                hosts,
                chosen_by,
            } => tracing::info!(phase, hosts, ?chosen_by, "concurrency"),
            Event::HostFinished { result, elapsed } => {
                self.progress.inc();
                if let Some(j) = &self.journal {
                    j.append(&Entry::Repaired {
                        host: result.host.clone(),
                        outcome: Box::new(result.clone()),
                    });
                }
                if self.format == Format::Text {
                    self.progress.line(&text::outcome_line(&result, elapsed));
                }
            }
            Event::PhaseFinished { .. } => self.progress.finish(),
        }
    }

    fn playbook(&mut self, ev: &RepairEvent) {
        if self.format == Format::Text {
            self.progress.line(&text::repair_event_line(ev));
        }
    }
}
