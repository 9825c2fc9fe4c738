//! Faults that strike in the middle of a repair (issue 16), placed like any fault
//! ([`FaultKind::is_mid_repair`]) and fired once per host by the cmdlets that change a
//! host: a password reset (`Reset-ComputerMachinePassword`, `Test-ComputerSecureChannel
//! -Repair`) or a membership change (`Remove-Computer`, `Add-Computer`).
//!
//! * `drop-after-reset`: the reset takes effect on the host and the DC; then the host's
//!   WinRM does not answer for [`crate::model::LabSpec::mid_repair_outage`] and the
//!   command's output is held back as long ([`crate::model::Lab::execute_with`]), so a
//!   client never gets it: its Receive long-poll times out (MS-WSMV 3.1.4.14, an
//!   OperationTimeout fault) and its next request finds the host gone (the wire refuses
//!   connections to a host that does not answer; one already open gets 503 and is
//!   closed). No source says how long such a drop lasts: modelled on the pessimistic side,
//!   an outage, not a bare reset that reconnects at once.
//! * `winrm-restart`: the WinRM service restarts as the reset arrives, before the cmdlet
//!   runs (so it does not happen), with the same outage; the shell and its output are
//!   gone (shells live in the service process; no source says what a restart keeps, so
//!   modelled on the pessimistic side: nothing). A client cannot tell this from
//!   `drop-after-reset`: whether the reset happened is unknown to it.
//! * `reboot-mid-rejoin`: the membership change takes effect and the restart
//!   (`-Restart`) wins the race with the output: held back for
//!   [`crate::model::LabSpec::reboot_duration`], while the host is down.
//! * `dc-away-mid-repair`: once the first reset landed on a DC, that DC is unreachable
//!   from the host for good (Netlogon's RPC fails to it; the locator moves on).
//!
//! Every destructive step that took effect is counted per host
//! ([`crate::model::Lab::destructive_steps`]), so a test can check none was repeated.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::domain::{DcIndex, LabTime};
use crate::faults::FaultKind;
use crate::host::{HostId, PowerState};
use crate::model::State;

/// Mid-repair fault state: which hosts' faults fired, output held back, steps counted.
#[derive(Debug, Default)]
pub(crate) struct MidRepair {
    /// Hosts whose fault fired (each fires once).
    fired: HashSet<HostId>,
    /// The output of the command running now on the host is held back this long.
    hold: HashMap<HostId, Duration>,
    /// Destructive steps that took effect, by host.
    destructive: HashMap<HostId, u32>,
}

/// A destructive step that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destructive {
    /// A machine password written on this DC (and in the host's LSA secret).
    PasswordReset {
        /// The DC written.
        dc: DcIndex,
    },
    /// The host left or joined the domain; `restarting` when it restarts now.
    MembershipChange {
        /// `-Restart` was given.
        restarting: bool,
    },
}

impl MidRepair {
    /// Takes the hold set for `host` by the command that just ran.
    pub(crate) fn take_hold(&mut self, host: HostId) -> Option<Duration> {
        self.hold.remove(&host)
    }

    /// Destructive steps that took effect on `host`.
    pub(crate) fn destructive(&self, host: HostId) -> u32 {
        self.destructive.get(&host).copied().unwrap_or(0)
    }
}

impl State {
    /// The host's mid-repair fault, if it has one that has not fired yet; marks it fired.
    fn fire(&mut self, host: HostId, kind: FaultKind) -> bool {
        let armed = self.host(host).is_some_and(|h| h.fault == Some(kind))
            && !self.mid_repair.fired.contains(&host);
        if armed {
            self.mid_repair.fired.insert(host);
        }
        armed
    }

    /// The host stops answering WinRM until `now + outage` and the running command's
    /// output is held back as long.
    fn drop_connection(&mut self, host: HostId, now: LabTime, outage: Duration) {
        let until = now.saturating_add(outage);
        if let Some(h) = self.host_mut(host) {
            if h.power == PowerState::Online {
                h.power = PowerState::Rebooting { until };
            }
        }
        self.mid_repair.hold.insert(host, outage);
    }

    /// Before a password reset runs: `false` when `winrm-restart` strikes, and the reset
    /// does not happen.
    pub(crate) fn before_reset(&mut self, host: HostId, now: LabTime) -> bool {
        if self.fire(host, FaultKind::WinrmRestart) {
            let outage = self.mid_repair_outage;
            self.drop_connection(host, now, outage);
            return false;
        }
        true
    }

    /// After a destructive step took effect: counts it, and fires `drop-after-reset`,
    /// `dc-away-mid-repair` or `reboot-mid-rejoin`.
    pub(crate) fn after_destructive(&mut self, host: HostId, now: LabTime, step: Destructive) {
        *self.mid_repair.destructive.entry(host).or_default() += 1;
        match step {
            Destructive::PasswordReset { dc } => {
                if self.fire(host, FaultKind::DropAfterReset) {
                    let outage = self.mid_repair_outage;
                    self.drop_connection(host, now, outage);
                } else if self.fire(host, FaultKind::DcAwayMidRepair) {
                    if let Some(r) = self
                        .host_mut(host)
                        .and_then(|h| h.reachable_dcs.get_mut(dc))
                    {
                        *r = false;
                    }
                }
            }
            Destructive::MembershipChange { restarting } => {
                if restarting && self.fire(host, FaultKind::RebootMidRejoin) {
                    // The restart (already under way) keeps the host down; the output
                    // dies with the process.
                    let hold = self.reboot_duration;
                    self.mid_repair.hold.insert(host, hold);
                }
            }
        }
    }
}
