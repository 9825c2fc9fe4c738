//! Member hosts: identity, machine secret, secure-channel binding, local accounts, power.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::{DcIndex, LabTime};
use crate::faults::FaultKind;

/// Index of a host in the lab (stable for the lab's life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub usize);

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host#{}", self.0)
    }
}

/// Operating system edition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    /// Windows Server 2022 Standard.
    Server2022,
    /// Windows 11 Enterprise.
    Windows11,
}

impl HostOs {
    /// `Win32_OperatingSystem.Caption`.
    pub fn caption(self) -> &'static str {
        match self {
            HostOs::Server2022 => "Microsoft Windows Server 2022 Standard",
            HostOs::Windows11 => "Microsoft Windows 11 Enterprise",
        }
    }

    /// `Win32_OperatingSystem.Version`.
    pub fn version(self) -> &'static str {
        match self {
            HostOs::Server2022 => "10.0.20348",
            HostOs::Windows11 => "10.0.26100",
        }
    }
}

/// Power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Up.
    Online,
    /// Down for good (until someone powers it on).
    Offline,
    /// Restarting; online again from `until`.
    Rebooting {
        /// When the host answers again.
        until: LabTime,
    },
}

/// A local SAM account.
#[derive(Clone)]
pub struct LocalAccount {
    /// Name with its canonical case.
    pub name: String,
    /// RID (500 for the built-in Administrator).
    pub rid: u32,
    /// Password.
    pub password: SecretString,
    /// Disabled accounts cannot log on.
    pub enabled: bool,
    /// Member of the local Administrators group.
    pub admin: bool,
}

impl fmt::Debug for LocalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAccount")
            .field("name", &self.name)
            .field("rid", &self.rid)
            .field("password", &"[REDACTED]")
            .field("enabled", &self.enabled)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Netlogon's record of the secure channel's last use: `NETLOGON_INFO_2` as
/// `I_NetLogonControl2(NETLOGON_CONTROL_TC_QUERY)` returns it (MS-NRPC 2.2.1.7.3). It
/// changes only when the channel is used (set up at boot, `/sc_verify`, `/sc_reset`, a
/// rediscovery, a password change), never by reading it (DOMAIN.md "Testing the channel",
/// revised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChannel {
    /// `netlog2_tc_connection_status`: what `nltest /sc_query` prints.
    pub tc_status: u32,
    /// `netlog2_pdc_connection_status`: what `Test-ComputerSecureChannel` reads.
    pub pdc_status: u32,
    /// `netlog2_trusted_dc_name`: the DC of that use, when there was one.
    pub dc: Option<DcIndex>,
    /// When it was recorded; a boot after this sets the channel up anew.
    pub at: LabTime,
}

impl StoredChannel {
    /// The record of a channel use with result `status` against `dc` at `at`.
    pub fn used(status: u32, dc: Option<DcIndex>, at: LabTime) -> Self {
        StoredChannel {
            tc_status: status,
            pdc_status: status,
            dc: if status == 0 { dc } else { None },
            at,
        }
    }
}

/// NETLOGON events a host keeps (older ones are dropped, as a full log overwrites them).
pub const MAX_EVENTS: usize = 64;

/// A NETLOGON event in a member's System log: 3210 (could not authenticate with a DC) or
/// 5719 (no secure session with a DC of the domain), the two a failed channel setup logs
/// (Microsoft's broken-trust article; texts in the fixtures `netlogon_3210_event_text.txt`,
/// `netlogon_5719_event_xml_rendered.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlogonEvent {
    /// Event ID.
    pub id: u32,
    /// When it was logged.
    pub at: LabTime,
    /// Its insertion strings (`Properties[i].Value`): for 5719 the domain and the reason as
    /// a message reference (`%%1311`, as the rendered XML capture shows); for 3210 the DC
    /// (`\\dc1.lab.test`) and the domain, in an order that is not verified on Windows.
    pub data: Vec<String>,
}

/// Domain membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Joined to the lab domain.
    Domain,
    /// In a workgroup.
    Workgroup(String),
}

/// A member host.
#[derive(Clone)]
pub struct Host {
    /// Id.
    pub id: HostId,
    /// The name inventories use to reach it (unique): `ws0001.lab.test`.
    pub address: String,
    /// Computer (NetBIOS) name, upper case: `WS0001`. A clone has its twin's.
    pub computer_name: String,
    /// Machine SID `S-1-5-21-a-b-c` (a clone has its twin's).
    pub machine_sid: String,
    /// Domain or workgroup.
    pub membership: Membership,
    /// The machine-account password the host believes (`$MACHINE.ACC`, current value);
    /// `None` when not joined.
    pub secret: Option<SecretString>,
    /// The previous value of that LSA secret: Netlogon retries with it when a DC refuses
    /// the current one (DOMAIN.md: "new password is bad, try old one").
    pub old_secret: Option<SecretString>,
    /// The DC its secure channel is bound to.
    pub bound_dc: DcIndex,
    /// The DC the locator prefers (the site's DC): where a rediscovery lands when it is
    /// reachable.
    pub site_dc: DcIndex,
    /// What Netlogon stored of the channel's last use (what TC_QUERY returns).
    pub stored: StoredChannel,
    /// The member's DNS finds the domain's DCs (false: the DC locator finds none).
    pub dns_ok: bool,
    /// A domain controller (`DomainRole` 4), not a member.
    pub domain_controller: bool,
    /// "Deny access to this computer from the network" names the domain's users.
    pub deny_network_logon: bool,
    /// NETLOGON events in its System log, oldest first (at most [`MAX_EVENTS`]).
    pub events: Vec<NetlogonEvent>,
    /// Which DCs it can reach, by index.
    pub reachable_dcs: Vec<bool>,
    /// Local accounts.
    pub local_accounts: Vec<LocalAccount>,
    /// `HKLM\...\Policies\System\LocalAccountTokenFilterPolicy`; `None` when absent
    /// (the Windows default, which means filtered).
    pub latfp: Option<u32>,
    /// Power.
    pub power: PowerState,
    /// Network latency of this host.
    pub latency: Duration,
    /// OS edition.
    pub os: HostOs,
    /// Lab time of the last boot.
    pub last_boot: LabTime,
    /// Fault placed on it at build time.
    pub fault: Option<FaultKind>,
    /// The other host of a clone pair.
    pub twin: Option<HostId>,
    /// Windows LAPS manages the built-in Administrator ([`crate::model::LabSpec::laps`]).
    pub laps: bool,
    /// The host joined a domain since its last restart: LAPS rotates the managed password
    /// when it next restarts (see `Restart-Computer` in the lab's cmdlets).
    pub laps_rotate_at_boot: bool,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("computer_name", &self.computer_name)
            .field("machine_sid", &self.machine_sid)
            .field("membership", &self.membership)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field(
                "old_secret",
                &self.old_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("bound_dc", &self.bound_dc)
            .field("site_dc", &self.site_dc)
            .field("stored", &self.stored)
            .field("dns_ok", &self.dns_ok)
            .field("domain_controller", &self.domain_controller)
            .field("deny_network_logon", &self.deny_network_logon)
            .field("events", &self.events.len())
            .field("reachable_dcs", &self.reachable_dcs)
            .field("local_accounts", &self.local_accounts)
            .field("latfp", &self.latfp)
            .field("power", &self.power)
            .field("latency", &self.latency)
            .field("os", &self.os)
            .field("fault", &self.fault)
            .field("twin", &self.twin)
            .finish()
    }
}

impl Host {
    /// DNS host label, lower case: `ws0001`.
    pub fn dns_label(&self) -> String {
        self.computer_name.to_ascii_lowercase()
    }

    /// Is it joined to the domain?
    pub fn joined(&self) -> bool {
        self.membership == Membership::Domain
    }

    /// Can it reach DC `dc`?
    pub fn reaches(&self, dc: DcIndex) -> bool {
        self.reachable_dcs.get(dc).copied().unwrap_or(false)
    }

    /// The DCs in the order the DC locator tries them: the site's DC first, then the others.
    pub fn locator_order(&self) -> impl Iterator<Item = DcIndex> + '_ {
        let n = self.reachable_dcs.len().max(1);
        (0..self.reachable_dcs.len()).map(move |i| (self.site_dc + i) % n)
    }

    /// The DC the locator (`DsGetDcName`) returns: none when the member's DNS finds no DC;
    /// else the first in [`Host::locator_order`]. The locator's LDAP ping (CLDAP, UDP 389)
    /// is modelled as answered even where Netlogon's RPC to the DC is filtered (`no-dc`).
    pub fn locate(&self) -> Option<DcIndex> {
        if !self.dns_ok {
            return None;
        }
        self.locator_order().next()
    }

    /// The DC Netlogon talks to: the bound one when reachable, else the first reachable
    /// one in locator order, else none (also none when DNS finds no DC at all).
    pub fn effective_dc(&self) -> Option<DcIndex> {
        if !self.dns_ok {
            return None;
        }
        if self.reaches(self.bound_dc) {
            return Some(self.bound_dc);
        }
        self.locator_order().find(|d| self.reaches(*d))
    }

    /// Is it answering at `now`?
    pub fn online_at(&self, now: LabTime) -> bool {
        match self.power {
            PowerState::Online => true,
            PowerState::Offline => false,
            PowerState::Rebooting { until } => now >= until,
        }
    }

    /// Local account by name (any case).
    pub fn local_account(&self, name: &str) -> Option<&LocalAccount> {
        self.local_accounts
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Local account by RID.
    pub fn local_account_by_rid(&self, rid: u32) -> Option<&LocalAccount> {
        self.local_accounts.iter().find(|a| a.rid == rid)
    }

    /// Workgroup name when not joined.
    pub fn workgroup(&self) -> Option<&str> {
        match &self.membership {
            Membership::Domain => None,
            Membership::Workgroup(w) => Some(w.as_str()),
        }
    }
}
