//! How many hosts a sweep works on at once when `--concurrency` does not say, and how fast
//! it opens connections.
//!
//! Each host in flight holds file descriptors: the probe's connection and the domain-logon
//! test's (they run at the same time), and for a moment the probe's connection again while
//! its Signal and Delete finish in the background after the host's result is in, next to
//! the host that took over its slot. So the default is what the open-file limit allows:
//! the soft `RLIMIT_NOFILE`, raised to the hard limit at start ([`raise_open_file_limit`]),
//! minus a reserve for everything else (stdio, the runtime, report files, the journal, LDAP
//! connections to the DCs), divided by the descriptors per host, capped at
//! [`DEFAULT_CAP`]. A lab served by the same process (`--lab`) costs a listener per host
//! and the server side of every connection besides. `--concurrency` caps the default; a
//! value above what the descriptors allow is lowered to it, and the run says so.
//!
//! Connections are opened at a bounded rate for the first second of a phase
//! ([`Ramp`]): hosts start in batches of [`Ramp::per_ms`] per millisecond, so that a
//! thousand-host start is not one burst of SYNs that overflows accept queues and
//! middleboxes' connection tables.

use std::fmt;
use std::time::Duration;

/// Descriptors one host slot may hold at once: the probe's connection and the logon
/// test's. A host's background Signal/Delete keeps its slot until it is done
/// (`engine::current_slot`), so it does not add to that; the third is headroom for the
/// shell deletions of hosts cut off by their deadline, which run on their own.
pub const DESCRIPTORS_PER_HOST: u64 = 3;

/// Descriptors the server side of a lab in the same process holds per host slot (one per
/// client connection).
pub const LAB_DESCRIPTORS_PER_HOST: u64 = 3;

/// Descriptors kept for everything but host connections.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The most hosts at once by default: enough to keep two cores busy through a WAN's round
/// trips and PowerShell start-ups (1,024 hosts of ~0.6 s each is ~1,700 hosts/s, above
/// what the CPU handles), without the memory of more.
pub const DEFAULT_CAP: usize = 1024;

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with (`None`: unlimited or unknown).
    pub before: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a process may, without privileges;
/// many systems start programs at 1,024 with a hard limit far above). Best effort: a
/// refusal leaves the limit as it was, and the default concurrency follows what it is.
#[cfg(unix)]
pub fn raise_open_file_limit() -> OpenFileLimit {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let start = getrlimit(Resource::Nofile);
    let mut soft = start.current;
    if start.current.is_some() && start.current != start.maximum {
        let wanted = Rlimit {
            current: start.maximum,
            maximum: start.maximum,
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => soft = start.maximum,
            // macOS refuses more than OPEN_MAX with an unlimited hard limit.
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    OpenFileLimit {
        before: start.current,
        soft,
        hard: start.maximum,
    }
}

/// Without `RLIMIT_NOFILE`: nothing to raise, nothing known.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> OpenFileLimit {
    OpenFileLimit {
        before: None,
        soft: None,
        hard: None,
    }
}

/// The soft open-file limit now (`None`: unlimited or unknown).
#[cfg(unix)]
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The soft open-file limit now (`None`: unknown).
#[cfg(not(unix))]
pub fn open_file_limit() -> Option<u64> {
    None
}

/// How many hosts `soft` descriptors carry at `per_host` each after `reserve`: at least
/// one (a sweep always makes progress), at most `cap`.
pub fn hosts_for_descriptors(soft: u64, reserve: u64, per_host: u64, cap: usize) -> usize {
    let room = soft.saturating_sub(reserve) / per_host.max(1);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(1, cap.max(1))
}

/// Who set the number of hosts worked on at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// `--concurrency`, within what the descriptors allow.
    Flag,
    /// The default: what the open-file limit allows (`soft` descriptors).
    Descriptors {
        /// The soft limit.
        soft: u64,
    },
    /// `--concurrency` asked for more than the open-file limit allows: lowered to it.
    FlagLowered {
        /// What the flag asked for.
        asked: usize,
        /// The soft limit.
        soft: u64,
    },
    /// The default cap ([`DEFAULT_CAP`]): the descriptors would allow more (or their limit
    /// is unknown).
    Cap,
}

/// The number of hosts at once, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// Hosts at once.
    pub hosts: usize,
    /// Who chose it.
    pub chosen_by: ChosenBy,
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.hosts;
        match self.chosen_by {
            ChosenBy::Flag => write!(f, "{n} hosts at once (--concurrency)"),
            ChosenBy::Descriptors { soft } => write!(
                f,
                "{n} hosts at once (what the open-file limit of {soft} allows; --concurrency sets fewer)"
            ),
            ChosenBy::FlagLowered { asked, soft } => write!(
                f,
                "{n} hosts at once: --concurrency {asked} needs more than the open-file limit of {soft} allows (raise it with ulimit -n)"
            ),
            ChosenBy::Cap => write!(
                f,
                "{n} hosts at once (the default; --concurrency sets another number)"
            ),
        }
    }
}

/// The number of hosts at once: `flag` (`--concurrency`) within what the open-file limit
/// `soft` allows, else the default; `lab_hosts` is the size of a lab served by this
/// process (0 for none), whose listeners and server-side connections share the limit.
pub fn choose(flag: Option<usize>, soft: Option<u64>, lab_hosts: usize) -> Concurrency {
    let lab = u64::try_from(lab_hosts).unwrap_or(u64::MAX);
    let (reserve, per_host) = if lab_hosts > 0 {
        (
            RESERVED_DESCRIPTORS.saturating_add(lab),
            DESCRIPTORS_PER_HOST + LAB_DESCRIPTORS_PER_HOST,
        )
    } else {
        (RESERVED_DESCRIPTORS, DESCRIPTORS_PER_HOST)
    };
    let allowed = soft.map(|s| (s, hosts_for_descriptors(s, reserve, per_host, usize::MAX)));
    match (flag, allowed) {
        (Some(asked), Some((soft, room))) if asked > room => Concurrency {
            hosts: room,
            chosen_by: ChosenBy::FlagLowered { asked, soft },
        },
        (Some(asked), _) => Concurrency {
            hosts: asked.max(1),
            chosen_by: ChosenBy::Flag,
        },
        (None, Some((soft, room))) if room < DEFAULT_CAP => Concurrency {
            hosts: room,
            chosen_by: ChosenBy::Descriptors { soft },
        },
        (None, _) => Concurrency {
            hosts: DEFAULT_CAP,
            chosen_by: ChosenBy::Cap,
        },
    }
}

/// The pace at which a phase starts hosts during its first moments: at most
/// [`Ramp::per_ms`] per millisecond for [`Ramp::during`], then as fast as slots free up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ramp {
    /// Hosts started per millisecond while ramping (each opens two connections).
    pub per_ms: u32,
    /// How long the ramp lasts from the phase's start.
    pub during: Duration,
}

impl Default for Ramp {
    /// 8 hosts (16 connections) per millisecond for the first second: 1,024 hosts start
    /// over 128 ms.
    fn default() -> Self {
        Ramp {
            per_ms: 8,
            during: Duration::from_secs(1),
        }
    }
}

impl Ramp {
    /// No pacing (tests, a handful of hosts).
    pub const NONE: Ramp = Ramp {
        per_ms: 0,
        during: Duration::ZERO,
    };

    /// How long after the phase's start the `index`th host (0-based) may start: `None`
    /// when it need not wait (no ramp, or its turn falls after the ramp).
    pub fn start_after(&self, index: usize) -> Option<Duration> {
        if self.per_ms == 0 {
            return None;
        }
        let ms = u64::try_from(index / self.per_ms as usize).unwrap_or(u64::MAX);
        let at = Duration::from_millis(ms);
        (at > Duration::ZERO && at < self.during).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_per_host_after_the_reserve() {
        // The common 1,024 soft limit: (1024 - 256) / 3 = 256 hosts.
        assert_eq!(hosts_for_descriptors(1024, 256, 3, DEFAULT_CAP), 256);
        // Raised to a typical hard limit: far more than the cap.
        assert_eq!(hosts_for_descriptors(1_048_576, 256, 3, DEFAULT_CAP), 1024);
        assert_eq!(hosts_for_descriptors(524_288, 256, 3, usize::MAX), 174_677);
        // A limit below the reserve still makes progress, one host at a time.
        assert_eq!(hosts_for_descriptors(100, 256, 3, DEFAULT_CAP), 1);
        assert_eq!(hosts_for_descriptors(0, 0, 0, 0), 1);
        // Exactly on the boundary.
        assert_eq!(hosts_for_descriptors(256 + 3 * 10, 256, 3, 100), 10);
        assert_eq!(hosts_for_descriptors(256 + 3 * 10 - 1, 256, 3, 100), 9);
    }

    #[test]
    fn the_default_follows_the_limit_and_the_flag_caps_it() {
        assert_eq!(
            choose(None, Some(1024), 0),
            Concurrency {
                hosts: 256,
                chosen_by: ChosenBy::Descriptors { soft: 1024 }
            }
        );
        assert_eq!(
            choose(None, Some(1_048_576), 0),
            Concurrency {
                hosts: DEFAULT_CAP,
                chosen_by: ChosenBy::Cap
            }
        );
        assert_eq!(choose(None, None, 0).hosts, DEFAULT_CAP);
        assert_eq!(
            choose(Some(64), Some(1_048_576), 0),
            Concurrency {
                hosts: 64,
                chosen_by: ChosenBy::Flag
            }
        );
        // More than the descriptors carry: lowered, and said so.
        assert_eq!(
            choose(Some(5000), Some(4096), 0),
            Concurrency {
                hosts: (4096 - 256) / 3,
                chosen_by: ChosenBy::FlagLowered {
                    asked: 5000,
                    soft: 4096
                }
            }
        );
        // A lab in the same process: its listeners and server-side sockets count too.
        assert_eq!(
            choose(None, Some(4096), 1000),
            Concurrency {
                hosts: (4096 - 256 - 1000) / 6,
                chosen_by: ChosenBy::Descriptors { soft: 4096 }
            }
        );
        let shown = choose(Some(5000), Some(4096), 0).to_string();
        assert!(shown.contains("1280 hosts at once"), "{shown}");
        assert!(shown.contains("ulimit -n"), "{shown}");
    }

    #[test]
    fn the_ramp_spreads_the_first_second() {
        let ramp = Ramp::default();
        assert_eq!(ramp.start_after(0), None);
        assert_eq!(ramp.start_after(7), None);
        assert_eq!(ramp.start_after(8), Some(Duration::from_millis(1)));
        assert_eq!(ramp.start_after(1023), Some(Duration::from_millis(127)));
        // After the first second, hosts start as slots free up.
        assert_eq!(ramp.start_after(8 * 1000), None);
        assert_eq!(ramp.start_after(8 * 999), Some(Duration::from_millis(999)));
        assert_eq!(Ramp::NONE.start_after(5000), None);
    }

    #[test]
    fn raising_the_limit_never_lowers_it() {
        let l = raise_open_file_limit();
        if let (Some(before), Some(soft)) = (l.before, l.soft) {
            assert!(soft >= before);
        }
        assert_eq!(open_file_limit(), l.soft);
    }
}
