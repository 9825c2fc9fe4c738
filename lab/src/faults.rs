//! The faults that break (or hide) a member's secure channel, placed on hosts at build time.

use std::fmt;
use std::str::FromStr;

/// A fault placed on a host. Names (`Display`/`FromStr`) are the ones the CLI and the
/// lab's spec use. Each models one cause in DOMAIN.md ("Real causes to diagnose", and the
/// sections marked **(revised)**).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Restored from a snapshot taken [`crate::model::LabSpec::snapshot_rotations`] rotations ago
    /// (default 1): the member holds the (current, previous) pair it had then. With no
    /// rotation since it is healthy; with one or more it is broken under the default DC
    /// rule (DCs accept only the current password, DOMAIN.md "The secure channel").
    Snapshot,
    /// Name twin: a copy of another member (no sysprep, same computer name, so one account
    /// and one machine SID for two machines). The one that rotated last works; each password
    /// change by one breaks the other. Both hosts of the pair carry this fault; a count of
    /// `n` makes `n` pairs (2n hosts).
    Clone,
    /// The DC the member is bound to (dc2) missed the member's last two password changes
    /// (replication to it is broken): the member holds (new, newer-old) and the DC neither
    /// (DOMAIN.md: one missed replication does not break a member, two do).
    StaleDc,
    /// The computer object was reset on the DC side (ADUC "Reset Account").
    DcReset,
    /// The computer object is disabled (a stale-computer cleanup): 1787, as Samba answers.
    DisabledAccount,
    /// The computer object is gone: 1787 as well; only LDAP tells it from a disabled one.
    DeletedAccount,
    /// Two machines sharing a machine SID under their own names and accounts (a
    /// sysprep-less clone renamed and joined): both channels healthy (DOMAIN.md, revised).
    /// Both hosts carry this fault; a count of `n` makes `n` pairs.
    SidDuplicate,
    /// The member's DNS finds no DC: the DC locator fails (1355) and the channel has no
    /// logon server (1311), while the DCs are up and other members are fine.
    Dns,
    /// No DC is reachable for Netlogon from the host (RPC filtered) though the locator
    /// finds one.
    NoDc,
    /// "Deny access to this computer from the network" for domain accounts: they get 401
    /// while the trust is healthy and the local Administrator gets in.
    DenyNetworkLogon,
    /// A domain controller listed in the inventory: `DomainRole` 4, not a member.
    DomainController,
    /// Powered off. On the wire ([`crate::wire::OfflineMode`]) either refused at once or,
    /// under a latency profile, black-holed: connects hang until the client gives up.
    Offline,
    /// Large network latency.
    Slow,
    /// Built-in Administrator disabled; only `opsadmin` (a second local admin) and
    /// `LocalAccountTokenFilterPolicy=0`: its WinRM logons get 401 (pywinrm #188).
    FilteredAdmin,
    /// Accepts TCP connections and never answers a request (a wedged WinRM service or
    /// HTTP.sys queue, a host frozen with its network stack up): only the client's read
    /// timeout or per-host deadline ends it. Opt-in: not in [`default_mix`].
    Hung,
    /// Mid-repair (issue 16; opt-in, like every kind below). Broken like `snapshot`; the
    /// first password reset (`Reset-ComputerMachinePassword`, `-Repair`) takes effect on
    /// the host and the DC, then the connection goes away before its output comes back:
    /// WinRM does not answer for [`crate::model::LabSpec::mid_repair_outage`] and the
    /// command's output is never delivered (see [`crate::midrepair`]).
    DropAfterReset,
    /// Broken like `snapshot`; the first membership change of a rejoin (`Remove-Computer`
    /// or `Add-Computer -Restart`) takes effect and the restart wins the race with the
    /// output: the client never sees it.
    RebootMidRejoin,
    /// Broken like `snapshot`; once the first password reset landed on a DC, that DC is
    /// unreachable from the host (a DC going away mid-repair), for good.
    DcAwayMidRepair,
    /// Broken like `snapshot`; the WinRM service restarts as the first password reset
    /// arrives, before the cmdlet runs: it never happens, connections are refused for
    /// [`crate::model::LabSpec::mid_repair_outage`], and the shell and its output are gone.
    WinrmRestart,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 19] = [
        FaultKind::Snapshot,
        FaultKind::Clone,
        FaultKind::StaleDc,
        FaultKind::DcReset,
        FaultKind::DisabledAccount,
        FaultKind::DeletedAccount,
        FaultKind::SidDuplicate,
        FaultKind::Dns,
        FaultKind::NoDc,
        FaultKind::DenyNetworkLogon,
        FaultKind::DomainController,
        FaultKind::Offline,
        FaultKind::Slow,
        FaultKind::FilteredAdmin,
        FaultKind::Hung,
        FaultKind::DropAfterReset,
        FaultKind::RebootMidRejoin,
        FaultKind::DcAwayMidRepair,
        FaultKind::WinrmRestart,
    ];

    /// The kinds [`default_mix`] places: all but `hung`, which costs a client its whole
    /// read timeout per host and is asked for by name (adding it would also change every
    /// seeded lab), and the mid-repair kinds ([`FaultKind::is_mid_repair`]).
    pub const DEFAULT_MIX: [FaultKind; 14] = [
        FaultKind::Snapshot,
        FaultKind::Clone,
        FaultKind::StaleDc,
        FaultKind::DcReset,
        FaultKind::DisabledAccount,
        FaultKind::DeletedAccount,
        FaultKind::SidDuplicate,
        FaultKind::Dns,
        FaultKind::NoDc,
        FaultKind::DenyNetworkLogon,
        FaultKind::DomainController,
        FaultKind::Offline,
        FaultKind::Slow,
        FaultKind::FilteredAdmin,
    ];

    /// The spec name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Snapshot => "snapshot",
            FaultKind::Clone => "clone",
            FaultKind::StaleDc => "stale-dc",
            FaultKind::DcReset => "dc-reset",
            FaultKind::DisabledAccount => "disabled-account",
            FaultKind::DeletedAccount => "deleted-account",
            FaultKind::SidDuplicate => "sid-duplicate",
            FaultKind::Dns => "dns",
            FaultKind::NoDc => "no-dc",
            FaultKind::DenyNetworkLogon => "deny-network-logon",
            FaultKind::DomainController => "domain-controller",
            FaultKind::Offline => "offline",
            FaultKind::Slow => "slow",
            FaultKind::FilteredAdmin => "filtered-admin",
            FaultKind::Hung => "hung",
            FaultKind::DropAfterReset => "drop-after-reset",
            FaultKind::RebootMidRejoin => "reboot-mid-rejoin",
            FaultKind::DcAwayMidRepair => "dc-away-mid-repair",
            FaultKind::WinrmRestart => "winrm-restart",
        }
    }

    /// Host slots one unit of this fault uses (a pair uses two).
    pub fn slots(self) -> usize {
        if self.is_pair() {
            2
        } else {
            1
        }
    }

    /// Strikes in the middle of a repair (issue 16): the host is broken like `snapshot`
    /// until then.
    pub fn is_mid_repair(self) -> bool {
        matches!(
            self,
            FaultKind::DropAfterReset
                | FaultKind::RebootMidRejoin
                | FaultKind::DcAwayMidRepair
                | FaultKind::WinrmRestart
        )
    }

    /// Placed on two hosts at once (a name twin pair, a SID-duplicate pair).
    pub fn is_pair(self) -> bool {
        matches!(self, FaultKind::Clone | FaultKind::SidDuplicate)
    }

    /// Does this fault break the secure channel (for at least one host of it), with the
    /// lab's default settings?
    pub fn breaks_channel(self) -> bool {
        matches!(
            self,
            FaultKind::Snapshot
                | FaultKind::Clone
                | FaultKind::StaleDc
                | FaultKind::DcReset
                | FaultKind::DisabledAccount
                | FaultKind::DeletedAccount
                | FaultKind::Dns
                | FaultKind::NoDc
        ) || self.is_mid_repair()
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind '{0}' (expected one of: {names})", names = FaultKind::ALL.map(FaultKind::name).join(", "))]
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
/// every kind of [`FaultKind::DEFAULT_MIX`] (all but `hung`) at least once (about one of each per 50 hosts: 16 of every 50 hosts carry a
/// fault, pairs counting twice).
pub fn default_mix(hosts: usize) -> Vec<(FaultKind, usize)> {
    if hosts < 20 {
        return Vec::new();
    }
    let each = (hosts / 50).max(1);
    FaultKind::DEFAULT_MIX
        .into_iter()
        .map(|k| (k, each))
        .collect()
}

/// Host slots a fault list needs.
pub fn slots_needed(faults: &[(FaultKind, usize)]) -> usize {
    faults
        .iter()
        .map(|(k, n)| k.slots().saturating_mul(*n))
        .sum()
}
