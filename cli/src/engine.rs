//! The fleet engine: bounded fan-out over hosts, a deadline per host, a result for every
//! host, and events out. It never prints; reporters present the events.
//!
//! Shape borrowed from omicron's `ParallelTaskSet` (a `JoinSet` under a `Semaphore`) and
//! nextest's runner → events → reporters split. One host's failure, panic or timeout
//! becomes that host's result and never stops the sweep.
//!
//! A host's deadline counts from the moment its job starts: time spent waiting for a slot
//! or for its turn in the opening ramp ([`Ramp`]) is not charged to it, and neither is
//! the clean-up its session finishes in the background after its result is in (Signal and
//! Delete, awaited at the end of the phase, bounded by [`CLEANUP_BUDGET`]). Its reported
//! elapsed time is measured the same way.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

pub use crate::limits::{ChosenBy, Ramp};

/// Something the engine tells the reporters.
#[derive(Debug, Clone)]
pub enum Event<R> {
    /// A phase started over `total` hosts.
    PhaseStarted {
        /// Phase name (`probe`, `repair`, `verify`).
        phase: &'static str,
        /// Number of hosts in the phase.
        total: usize,
    },
    /// How many hosts the phase works on at once, and who chose that number; sent right
    /// after [`Event::PhaseStarted`].
    Concurrency {
        /// Phase name.
        phase: &'static str,
        /// Hosts at once.
        hosts: usize,
        /// Who chose it.
        chosen_by: ChosenBy,
    },
    /// A host finished (successfully or not) in the current phase.
    HostFinished {
        /// How long it took.
        elapsed: Duration,
        /// Its result.
        result: R,
    },
    /// A phase is over.
    PhaseFinished {
        /// Phase name.
        phase: &'static str,
        /// Wall time of the phase.
        elapsed: Duration,
    },
}

/// Limits of one fan-out.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// At most this many hosts at once.
    pub concurrency: usize,
    /// Who chose `concurrency` (reported with [`Event::Concurrency`]).
    pub chosen_by: ChosenBy,
    /// Each host's whole job must finish within this, from when it starts.
    pub host_deadline: Duration,
    /// How fast hosts start in the phase's first moments.
    pub ramp: Ramp,
}

impl Limits {
    /// `concurrency` hosts at once (as `--concurrency` said) within `host_deadline`, with
    /// the default ramp.
    pub fn new(concurrency: usize, host_deadline: Duration) -> Self {
        Limits {
            concurrency,
            chosen_by: ChosenBy::Flag,
            host_deadline,
            ramp: Ramp::default(),
        }
    }

    /// With `concurrency` as chosen ([`crate::limits::choose`]).
    pub fn with_concurrency(mut self, concurrency: crate::limits::Concurrency) -> Self {
        self.concurrency = concurrency.hosts;
        self.chosen_by = concurrency.chosen_by;
        self
    }
}

/// How long a phase waits, after its last host, for the shell deletions of hosts its
/// deadline cut off (each is bounded by [`winrm::session::CLEANUP_TIMEOUT`]).
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(15);

/// What became of a job that did not return normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abnormal {
    /// It ran past the host deadline.
    DeadlineExceeded(Duration),
    /// It panicked (a bug: reported for the host, the sweep goes on).
    Panicked(String),
    /// It never started: the sweep was interrupted first.
    NotStarted,
}

/// Runs `job` for every item with bounded concurrency and a per-item deadline; sends
/// events to `events` and returns one result per item, in input order.
///
/// `events` may carry more than the engine's events (a phase's reporter can also take the
/// playbooks' events from the jobs on the same channel, in the order they happened): any
/// `E` an [`Event`] converts into.
///
/// `on_abnormal` turns a timeout or panic into the item's result, so every host gets one.
/// Also returns the peak number of jobs that ran at once.
pub async fn fan_out<T, R, E, F, Fut>(
    phase: &'static str,
    items: &[T],
    limits: Limits,
    events: &mpsc::UnboundedSender<E>,
    job: F,
    on_abnormal: impl Fn(&T, Abnormal) -> R,
    cancel: Option<&tokio_util_cancel::Token>,
) -> (Vec<R>, usize)
where
    T: Clone + Send + 'static,
    R: Clone + Send + 'static,
    E: From<Event<R>>,
    F: Fn(usize, T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let started = Instant::now();
    let total = items.len();
    let _ = events.send(Event::PhaseStarted { phase, total }.into());
    let _ = events.send(
        Event::Concurrency {
            phase,
            hosts: limits.concurrency.max(1),
            chosen_by: limits.chosen_by,
        }
        .into(),
    );
    let sem = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let ramp_start = tokio::time::Instant::now();
    let gauge = Gauge::default();
    let mut set: JoinSet<(usize, Duration, Result<R, Abnormal>)> = JoinSet::new();
    let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
    // Each job gets its own copy of its item, made when it starts: only the jobs in
    // flight hold one.
    for (index, item) in items.iter().enumerate() {
        // Its turn in the opening ramp, then a slot: neither wait counts against its
        // deadline, which starts with the job.
        if let Some(after) = limits.ramp.start_after(index) {
            tokio::time::sleep_until(ramp_start + after).await;
        }
        let Some(permit) = next_slot(&sem, cancel).await else {
            break;
        };
        // Collect what already finished so events flow while we wait for permits.
        while let Some(done) = set.try_join_next() {
            record(done, items, &mut results, events, &on_abnormal);
        }
        // Boxed: a host's job is a large state machine (a whole WinRM conversation), and
        // spawning moves its future by value several times; a box moves a pointer.
        let fut = Box::pin(job(index, item.clone()));
        set.spawn(supervise(
            index,
            fut,
            limits.host_deadline,
            permit,
            gauge.clone(),
        ));
    }
    while let Some(done) = set.join_next().await {
        record(done, items, &mut results, events, &on_abnormal);
    }
    finish_cleanup(phase).await;
    let _ = events.send(
        Event::PhaseFinished {
            phase,
            elapsed: started.elapsed(),
        }
        .into(),
    );
    let out = results
        .into_iter()
        .zip(items.iter())
        .map(|(r, item)| r.unwrap_or_else(|| on_abnormal(item, Abnormal::NotStarted)))
        .collect();
    (out, gauge.peak())
}

/// A slot for the next host, or `None` when the sweep was interrupted (before or while
/// waiting for one).
async fn next_slot(
    sem: &Arc<Semaphore>,
    cancel: Option<&tokio_util_cancel::Token>,
) -> Option<OwnedSemaphorePermit> {
    let cancelled = || cancel.is_some_and(|c| c.is_cancelled());
    if cancelled() {
        return None;
    }
    let permit = sem.clone().acquire_owned().await.ok()?;
    // Waiting for a slot can take long: do not start a host after an interrupt.
    if cancelled() {
        return None;
    }
    Some(permit)
}

tokio::task_local! {
    /// The slot of the host whose job runs on this task (set by [`fan_out`]).
    static SLOT: Slot;
}

/// A host's share of its phase's concurrency: the slot is free again once every clone is
/// dropped. A job hands one to work it leaves running on its own after its result (its
/// session's Signal and Delete), so that work counts against the limit too: a phase never
/// holds more hosts' connections than its concurrency (at 1,024 wide and no latency,
/// about a third of the slots' worth of closes were otherwise running next to the full
/// width of new hosts, each with its connection's buffers; BENCHMARKS.md, issue 15 round
/// 3).
#[derive(Clone, Debug)]
pub struct Slot {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// The slot of the host whose job is running on the current task, if any (none outside
/// [`fan_out`]).
pub fn current_slot() -> Option<Slot> {
    SLOT.try_with(Slot::clone).ok()
}

/// How many jobs run now, and the most that ever ran at once.
#[derive(Clone, Debug, Default)]
struct Gauge {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Gauge {
    fn start(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn end(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Runs one item's job, holding its slot (`permit`), under the host `deadline`: its result,
/// or how it ended otherwise, with its index and wall time.
async fn supervise<R, Fut>(
    index: usize,
    fut: Fut,
    deadline: Duration,
    permit: OwnedSemaphorePermit,
    gauge: Gauge,
) -> (usize, Duration, Result<R, Abnormal>)
where
    R: Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    // Held here until the job is over, and by whatever the job leaves running after it
    // ([`current_slot`]).
    let slot = Slot {
        _permit: Arc::new(permit),
    };
    gauge.start();
    let t0 = Instant::now();
    // The job runs in its own task so that a panic is caught as a JoinError.
    let mut handle = tokio::spawn(SLOT.scope(slot.clone(), fut));
    let res = match tokio::time::timeout(deadline, &mut handle).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(Abnormal::Panicked(panic_message(e))),
        Err(_) => {
            handle.abort();
            // Wait until the job's future is dropped: its drop guards (a WinRM
            // session deleting its shell) have then started their clean-up.
            let _ = handle.await;
            Err(Abnormal::DeadlineExceeded(deadline))
        }
    };
    gauge.end();
    drop(slot);
    (index, t0.elapsed(), res)
}

/// Hosts cut off by their deadline left their shell deletions running on their own: the
/// phase ends when those are done (bounded), so no shell outlives the sweep.
async fn finish_cleanup(phase: &'static str) {
    let left = winrm::session::finish_cleanup(CLEANUP_BUDGET).await;
    if left > 0 {
        tracing::warn!(
            phase,
            left,
            "shell deletions for hosts cut off by their deadline did not finish"
        );
    }
}

fn record<T, R: Clone, E: From<Event<R>>>(
    done: Result<(usize, Duration, Result<R, Abnormal>), tokio::task::JoinError>,
    items: &[T],
    results: &mut [Option<R>],
    events: &mpsc::UnboundedSender<E>,
    on_abnormal: &impl Fn(&T, Abnormal) -> R,
) {
    // The wrapper task itself cannot panic (it only awaits a JoinHandle); if it was
    // cancelled its host keeps no result and is filled in at the end.
    let Ok((index, elapsed, res)) = done else {
        return;
    };
    let Some(item) = items.get(index) else { return };
    let result = match res {
        Ok(r) => r,
        Err(a) => on_abnormal(item, a),
    };
    if let Some(slot) = results.get_mut(index) {
        *slot = Some(result.clone());
    }
    let _ = events.send(Event::HostFinished { elapsed, result }.into());
}

fn panic_message(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".to_string();
    }
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string()),
        Err(_) => "task failed".to_string(),
    }
}

/// A tiny cancellation token (Ctrl-C stops starting new hosts).
pub mod tokio_util_cancel {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Set once; checked before each host starts.
    #[derive(Clone, Debug, Default)]
    pub struct Token(Arc<AtomicBool>);

    impl Token {
        /// A fresh token.
        pub fn new() -> Self {
            Token::default()
        }
        /// Requests cancellation.
        pub fn cancel(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        /// Whether cancellation was requested.
        pub fn is_cancelled(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_left_running_keeps_the_slot() {
        // One slot: the second job may start only once the first job's leftover work (a
        // session closing in the background) has let go of the slot it was handed.
        let (tx, _rx) = mpsc::unbounded_channel::<Event<bool>>();
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let limits = Limits {
            ramp: Ramp::NONE,
            ..Limits::new(1, Duration::from_secs(60))
        };
        let (results, _) = fan_out(
            "probe",
            &[0u32, 1],
            limits,
            &tx,
            |_, n| {
                let released = released.clone();
                async move {
                    if n == 0 {
                        let slot = current_slot();
                        assert!(slot.is_some(), "a job runs with its slot");
                        tokio::spawn(async move {
                            // Long after job 0 returned: on this single-threaded
                            // runtime job 1 would have run by now, had the slot been
                            // free.
                            for _ in 0..100 {
                                tokio::task::yield_now().await;
                            }
                            released.store(true, Ordering::SeqCst);
                            drop(slot);
                        });
                        true
                    } else {
                        released.load(Ordering::SeqCst)
                    }
                }
            },
            |_, _| false,
            None,
        )
        .await;
        assert_eq!(
            results,
            vec![true, true],
            "job 1 started before job 0's slot was free"
        );
        assert!(current_slot().is_none(), "no slot outside a job");
    }

    #[tokio::test]
    async fn bounded_every_item_gets_a_result() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let items: Vec<u32> = (0..50).collect();
        let limits = Limits {
            ramp: Ramp::NONE,
            ..Limits::new(7, Duration::from_millis(500))
        };
        let (results, peak) = fan_out(
            "probe",
            &items,
            limits,
            &tx,
            |_, n| async move {
                // Yield a few times so that jobs overlap.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                if n == 13 {
                    panic!("boom");
                }
                if n == 21 {
                    // Never finishes: must be cut by the deadline.
                    std::future::pending::<()>().await;
                }
                format!("ok {n}")
            },
            |n, a| format!("abnormal {n}: {a:?}"),
            None,
        )
        .await;
        assert_eq!(results.len(), 50);
        assert_eq!(results[0], "ok 0");
        assert!(
            results[13].starts_with("abnormal 13: Panicked"),
            "{}",
            results[13]
        );
        assert!(
            results[21].starts_with("abnormal 21: DeadlineExceeded"),
            "{}",
            results[21]
        );
        assert_eq!(peak, 7, "the limit is reached and never exceeded");
        drop(tx);
        let mut finished = 0;
        while let Some(ev) = rx.recv().await {
            if matches!(ev, Event::HostFinished { .. }) {
                finished += 1;
            }
        }
        assert_eq!(finished, 50);
    }
}
