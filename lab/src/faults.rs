//! The faults that break (or hide) a member's secure channel, placed on hosts at build time.

use std::fmt;
use std::str::FromStr;

/// A fault placed on a host. Names (`Display`/`FromStr`) are the ones the CLI and the
/// lab's spec use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Restored from a snapshot taken two rotations ago: the local secret is neither the
    /// current nor the previous password.
    Snapshot,
    /// A clone (no sysprep) of another member: same computer name, account and machine SID.
    /// The one that rotated last works; the other is broken. Both hosts of the pair carry
    /// this fault. A count of `n` makes `n` pairs (2n hosts).
    Clone,
    /// The member changed its password on the PDC (dc1); its account's copy on the DC it is
    /// bound to (dc2) is stuck behind.
    ReplicationLag,
    /// The computer object was reset on the DC side (ADUC "Reset Account").
    DcReset,
    /// No DC is reachable from the host.
    NoDc,
    /// Powered off.
    Offline,
    /// Large network latency.
    Slow,
    /// Built-in Administrator disabled; only `opsadmin` (a second local admin) and
    /// `LocalAccountTokenFilterPolicy=0`.
    FilteredAdmin,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Snapshot,
        FaultKind::Clone,
        FaultKind::ReplicationLag,
        FaultKind::DcReset,
        FaultKind::NoDc,
        FaultKind::Offline,
        FaultKind::Slow,
        FaultKind::FilteredAdmin,
    ];

    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Snapshot => "snapshot",
            FaultKind::Clone => "clone",
            FaultKind::ReplicationLag => "replication-lag",
            FaultKind::DcReset => "dc-reset",
            FaultKind::NoDc => "no-dc",
            FaultKind::Offline => "offline",
            FaultKind::Slow => "slow",
            FaultKind::FilteredAdmin => "filtered-admin",
        }
    }

    /// Host slots one unit of this fault uses (a clone pair uses two).
    pub fn slots(self) -> usize {
        if self == FaultKind::Clone {
            2
        } else {
            1
        }
    }

    /// Does this fault break the secure channel (for at least one host of it)?
    pub fn breaks_channel(self) -> bool {
        matches!(
            self,
            FaultKind::Snapshot | FaultKind::Clone | FaultKind::ReplicationLag | FaultKind::DcReset | FaultKind::NoDc
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind '{0}' (expected one of: snapshot, clone, replication-lag, dc-reset, no-dc, offline, slow, filtered-admin)")]
pub struct UnknownFault(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// A realistic mix for `hosts` hosts: most healthy; below 20 hosts none; from 20 hosts on,
/// every kind at least once (about one of each per 50 hosts, roughly 18% faulted).
pub fn default_mix(hosts: usize) -> Vec<(FaultKind, usize)> {
    if hosts < 20 {
        return Vec::new();
    }
    let each = (hosts / 50).max(1);
    FaultKind::ALL.into_iter().map(|k| (k, each)).collect()
}

/// Host slots a fault list needs.
pub fn slots_needed(faults: &[(FaultKind, usize)]) -> usize {
    faults.iter().map(|(k, n)| k.slots().saturating_mul(*n)).sum()
}
