//! The lab's decisions, as the WinRM wire layer calls them: who may log on (and with which
//! password the NTLM response must verify), who may use WinRM, whether a host answers, and
//! what a command line prints.
//!
//! [`Lab`] is cheap to clone and thread-safe (one mutex around the state; every call holds
//! it for microseconds).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
pub use winrm::server::StdinMode;

use crate::domain::{
    AccountState, AccountView, AccountWrite, ChannelCheck, Clock, DcIndex, Domain,
    DomainController, DomainUser, LabTime, Stuck, SystemClock,
};
use crate::faults::{self, FaultKind};
use crate::host::{
    Host, HostId, HostOs, LocalAccount, Membership, NetlogonEvent, PowerState, StoredChannel,
};

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Number of member hosts.
    pub hosts: usize,
    /// Faults to place: kind and count (for `clone`, the number of pairs).
    pub faults: Vec<(FaultKind, usize)>,
    /// Seed: same seed and spec give the same lab.
    pub seed: u64,
    /// Number of DCs (`dc1` is the PDC emulator).
    pub dcs: usize,
    /// Latency (round-trip time) of ordinary hosts: charged once per TCP connect and once
    /// per request by the wire layer.
    pub latency: Duration,
    /// Latency of `slow` hosts.
    pub slow_latency: Duration,
    /// What the wire layer charges besides the RTT (server time per request, shell
    /// creation, PowerShell start-up, Netlogon work): a [`crate::latency::Profile`]'s
    /// costs, or nothing (the default). Its `rtt` is informational: [`LabSpec::latency`]
    /// is what hosts get.
    pub costs: crate::latency::Costs,
    /// Replication delay between DCs.
    pub replication_delay: Duration,
    /// How long replication to a `stale-dc` host's DC stays broken after the lab starts.
    pub lag_stuck_for: Duration,
    /// How many of its own password rotations a `snapshot` host went through between the
    /// snapshot and the restore: 0 is a harmless restore; 1 or more break it under the
    /// default DC rule (see [`LabSpec::dc_accepts_previous`]).
    pub snapshot_rotations: usize,
    /// Whether DCs also accept an account's previous password for the secure channel.
    /// Windows' behaviour is undocumented (DOMAIN.md, "The secure channel", revised); a
    /// Samba DC does not, and neither does the lab by default (the pessimistic side). The
    /// Samba backend always behaves as Samba does, whatever this says.
    pub dc_accepts_previous: bool,
    /// How long `Restart-Computer` keeps a host down.
    pub reboot_duration: Duration,
    /// How long a mid-repair fault (`drop-after-reset`, `winrm-restart`) keeps the host's
    /// WinRM from answering, and the struck command's output held back (default 30 s,
    /// longer than a client's usual OperationTimeout of 20 s: a client gives up on its
    /// Receive within it, see [`crate::midrepair`]; tests shorten both).
    pub mid_repair_outage: Duration,
    /// Clock; the real one when `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// Where the computer accounts live.
    pub directory: Directory,
    /// Windows LAPS manages every member's built-in Administrator: with
    /// [`Directory::Samba`] its password is also on the computer object as the device
    /// writes it (`msLAPS-Password` JSON and `msLAPS-PasswordExpirationTime`), where a
    /// reader with the right (`--laps --ldap-user`) finds it. After a join the device
    /// rotates it at its next restart and writes the new one to the object it is joined
    /// with (DOMAIN.md "Repairing it": "a LAPS password rotated around them must be
    /// re-read"). Whether Windows LAPS rotates after a rejoin that *reuses* an object
    /// whose password has not expired is not documented: the lab always rotates (the
    /// pessimistic side: the tool must re-read). Default off.
    pub laps: bool,
    /// Computer names are this prefix and four digits (`WS0001`); at most 11 characters
    /// (NetBIOS names have 15). With [`Directory::Samba`] use another one, such as `TSL`
    /// (`TSL0001`, `tsl0001.lab.test`): the Samba lab's `OU=Workstations` holds `WS0001`…,
    /// and the build refuses a name taken outside the lab OU.
    pub name_prefix: String,
    /// Owner SIDs on the "Domain controller: Allow computer account re-use during domain
    /// join" allow-list (KB5020276): a join that finds an object owned by one of them may
    /// reuse it. An entry may also be a lab user's name (`deployer`), which the build
    /// resolves to its SID (a convenience: the lab's domain SID comes from the seed; the
    /// real policy holds SIDs). Default empty, as on a patched DC out of the box.
    pub reuse_allowlist: Vec<String>,
    /// `ms-DS-MachineAccountQuota`: how many computer objects a non-admin may create by
    /// joining (default 10, AD's default; hardened domains set 0).
    pub machine_account_quota: u32,
    /// One in how many pre-existing computer objects was created by the delegated
    /// non-admin `deployer` through the machine-account quota (owner and
    /// `mS-DS-CreatorSID` = deployer), chosen from the seed; the others by a Domain Admin.
    /// 0 makes every object admin-created.
    pub deployer_created_one_in: u32,
}

/// Where the lab keeps its computer accounts.
#[derive(Debug, Clone, Default)]
pub enum Directory {
    /// The in-memory DC model of [`crate::domain`] (replication after a delay).
    #[default]
    InMemory,
    /// A real Samba AD DC pair (see [`crate::samba`]); the lab's accounts go in its lab OU.
    Samba(Box<crate::samba::SambaConfig>),
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            hosts: 20,
            faults: faults::default_mix(20),
            seed: 1,
            dcs: 2,
            latency: Duration::from_millis(2),
            slow_latency: Duration::from_secs(3),
            costs: crate::latency::Costs::default(),
            replication_delay: Duration::from_secs(15),
            lag_stuck_for: Duration::from_secs(3600),
            snapshot_rotations: 1,
            dc_accepts_previous: false,
            reboot_duration: Duration::from_secs(30),
            mid_repair_outage: Duration::from_secs(30),
            clock: None,
            directory: Directory::InMemory,
            name_prefix: "WS".to_string(),
            reuse_allowlist: Vec::new(),
            machine_account_quota: 10,
            deployer_created_one_in: 4,
            laps: false,
        }
    }
}

impl LabSpec {
    /// `hosts` hosts with the default fault mix.
    pub fn new(hosts: usize, seed: u64) -> Self {
        LabSpec {
            hosts,
            faults: faults::default_mix(hosts),
            seed,
            ..LabSpec::default()
        }
    }

    /// `hosts` healthy hosts.
    pub fn healthy(hosts: usize, seed: u64) -> Self {
        LabSpec {
            hosts,
            faults: Vec::new(),
            seed,
            ..LabSpec::default()
        }
    }

    /// Adds a fault.
    pub fn with_fault(mut self, kind: FaultKind, count: usize) -> Self {
        self.faults.push((kind, count));
        self
    }

    /// Uses this clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// Why a spec cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// More fault slots than hosts.
    #[error("the faults need {needed} hosts but the lab has {hosts}")]
    TooManyFaults {
        /// Slots needed.
        needed: usize,
        /// Hosts available.
        hosts: usize,
    },
    /// No DC.
    #[error("a lab needs at least one DC")]
    NoDcs,
    /// `stale-dc` needs two DCs.
    #[error("stale-dc needs at least two DCs")]
    ReplicationNeedsTwoDcs,
    /// Too many hosts for the naming scheme.
    #[error("at most 99999 hosts")]
    TooManyHosts,
    /// The name prefix is not 1..=11 letters and digits.
    #[error("the computer name prefix must be 1 to 11 letters or digits, starting with a letter")]
    BadNamePrefix,
    /// The real DCs could not be set up.
    #[error("the Samba DCs: {0}")]
    Directory(String),
}

/// Who a logon is, once the password verifies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A local SAM account of `host`.
    Local {
        /// The host whose SAM holds it.
        host: HostId,
        /// The host's computer name (its "domain" for the account).
        computer: String,
        /// Account name, canonical case.
        name: String,
        /// RID.
        rid: u32,
    },
    /// A domain account.
    Domain {
        /// Domain NetBIOS name.
        netbios: String,
        /// sAMAccountName, canonical case.
        sam: String,
        /// RID.
        rid: u32,
    },
}

impl Identity {
    /// `whoami` output: `lab\tsrepair`, `ws0001\administrator`.
    pub fn whoami(&self) -> String {
        match self {
            Identity::Local { computer, name, .. } => format!("{computer}\\{name}").to_lowercase(),
            Identity::Domain { netbios, sam, .. } => format!("{netbios}\\{sam}").to_lowercase(),
        }
    }

    /// `DOMAIN\user` in canonical case.
    pub fn qualified(&self) -> String {
        match self {
            Identity::Local { computer, name, .. } => format!("{computer}\\{name}"),
            Identity::Domain { netbios, sam, .. } => format!("{netbios}\\{sam}"),
        }
    }

    /// User name part.
    pub fn user(&self) -> &str {
        match self {
            Identity::Local { name, .. } => name,
            Identity::Domain { sam, .. } => sam,
        }
    }

    /// Is it a domain account?
    pub fn is_domain(&self) -> bool {
        matches!(self, Identity::Domain { .. })
    }
}

/// Why a logon is refused with HTTP 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No such account (local or domain), or an unknown domain name.
    UnknownUser,
    /// The account is disabled.
    AccountDisabled,
    /// A domain account on a host whose secure channel is broken (NTLM pass-through needs
    /// Netlogon).
    BrokenTrust,
    /// A domain account on a host that reaches no DC.
    NoLogonServers,
    /// A domain account on a host that is not joined.
    NotJoined,
    /// A local administrator other than RID 500 on a host without
    /// `LocalAccountTokenFilterPolicy=1`: UAC remote restrictions (KB951016) filter its
    /// token, and real hosts answer WinRM with 401, not an Access Denied fault (pywinrm
    /// #188; DOMAIN.md "Reaching a broken machine", revised).
    FilteredToken,
    /// "Deny access to this computer from the network" names the account (domain users
    /// on a `deny-network-logon` host): the logon is refused, 401.
    DeniedByPolicy,
}

/// The answer to a logon attempt.
#[derive(Clone)]
pub enum Logon {
    /// Verify the NTLM response against `password`; on success the session is `identity`.
    Verify {
        /// The account's password (the NT hash comes from it).
        password: SecretString,
        /// Who the session will be.
        identity: Identity,
    },
    /// Answer HTTP 401 whatever the response.
    Reject(RejectReason),
}

impl fmt::Debug for Logon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Logon::Verify { identity, .. } => f
                .debug_struct("Verify")
                .field("password", &"[REDACTED]")
                .field("identity", identity)
                .finish(),
            Logon::Reject(r) => f.debug_tuple("Reject").field(r).finish(),
        }
    }
}

/// WinRM refuses the authenticated user (the listener answers Access Denied, WSManFault 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A local administrator other than RID 500 with `LocalAccountTokenFilterPolicy` not 1
    /// gets a filtered token (UAC remote restrictions, KB951016).
    #[error("Access is denied. (filtered token: UAC remote restrictions)")]
    FilteredToken,
    /// Not a member of the local Administrators group.
    #[error("Access is denied. (not a local administrator)")]
    NotAdmin,
    /// Unknown host.
    #[error("Access is denied. (unknown host)")]
    UnknownHost,
}

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    /// Standard output bytes (CRLF line endings).
    pub stdout: Vec<u8>,
    /// Standard error bytes.
    pub stderr: Vec<u8>,
    /// Process exit code.
    pub exit_code: i64,
    /// What it did that costs time on Windows (Netlogon work, DC round trips).
    pub work: crate::latency::Work,
}

impl ExecResult {
    /// Stdout as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as (lossy) text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A user name and password.
#[derive(Clone)]
pub struct Credential {
    /// `LAB\tsrepair`, `Administrator`, ...
    pub user: String,
    /// Password.
    pub password: SecretString,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// What the wire layer and tests need to know about a host.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// Id.
    pub id: HostId,
    /// Unique name to reach it: `ws0001.lab.test`.
    pub address: String,
    /// Computer name (a clone reports its twin's).
    pub computer_name: String,
    /// `<computer>.lab.test`, lower case.
    pub dns_name: String,
    /// Machine SID.
    pub machine_sid: String,
    /// Fault placed at build time.
    pub fault: Option<FaultKind>,
    /// Clone twin.
    pub twin: Option<HostId>,
    /// OS caption.
    pub os_caption: &'static str,
    /// The local administrator an inventory/LAPS would hand out: the built-in
    /// `Administrator`, or `opsadmin` on a `filtered-admin` host. User is the bare name.
    pub local_admin: Credential,
    /// The built-in Administrator (RID 500), even when disabled.
    pub builtin_admin: Credential,
    /// `opsadmin` (RID 1001).
    pub opsadmin: Credential,
    /// FQDN of the DC the host's channel is bound to.
    pub bound_dc: String,
    /// Its computer object's `distinguishedName`, owner SID (`nTSecurityDescriptor`) and
    /// `mS-DS-CreatorSID`, as the lab's DCs hold them; `None` when no object exists or the
    /// accounts live in real DCs (use [`Lab::account_on_dc`] there).
    pub account: Option<crate::domain::Ownership>,
}

/// Whether a host's secure channel works right now, as the lab knows it (ground truth for
/// tests, not something Windows prints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Works against `dc`.
    Ok {
        /// The DC Netlogon uses.
        dc: DcIndex,
    },
    /// Secret matches neither password on `dc`.
    WrongPassword {
        /// The DC Netlogon uses.
        dc: DcIndex,
    },
    /// `dc` holds no (enabled) account.
    NoAccount {
        /// The DC Netlogon uses.
        dc: DcIndex,
    },
    /// No DC reachable.
    NoLogonServers,
    /// In a workgroup.
    NotJoined,
}

impl ChannelStatus {
    /// Works?
    pub fn is_ok(self) -> bool {
        matches!(self, ChannelStatus::Ok { .. })
    }

    /// The DC of the attempt, when one was reached.
    pub fn dc(self) -> Option<DcIndex> {
        match self {
            ChannelStatus::Ok { dc }
            | ChannelStatus::WrongPassword { dc }
            | ChannelStatus::NoAccount { dc } => Some(dc),
            ChannelStatus::NoLogonServers | ChannelStatus::NotJoined => None,
        }
    }

    /// The Win32 status Netlogon reports.
    pub fn win32(self) -> u32 {
        match self {
            ChannelStatus::Ok { .. } => 0,
            ChannelStatus::WrongPassword { .. } => 5,
            ChannelStatus::NoAccount { .. } => 1787,
            ChannelStatus::NoLogonServers => 1311,
            ChannelStatus::NotJoined => 1355,
        }
    }
}

/// The mutable lab state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) domain: Domain,
    pub(crate) hosts: Vec<Host>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) reboot_duration: Duration,
    /// [`LabSpec::mid_repair_outage`].
    pub(crate) mid_repair_outage: Duration,
    /// Mid-repair faults fired, output held back, destructive steps counted.
    pub(crate) mid_repair: crate::midrepair::MidRepair,
}

impl State {
    pub(crate) fn host(&self, id: HostId) -> Option<&Host> {
        self.hosts.get(id.0)
    }

    pub(crate) fn host_mut(&mut self, id: HostId) -> Option<&mut Host> {
        self.hosts.get_mut(id.0)
    }

    /// A new random machine password.
    pub(crate) fn new_password(&mut self, len: usize) -> SecretString {
        SecretString::from(random_password(&mut self.rng, len))
    }

    /// Channel status of `host` against `dc` (or its effective DC when `None`).
    pub(crate) fn channel(&self, host: &Host, dc: Option<DcIndex>, now: LabTime) -> ChannelStatus {
        if !host.joined() {
            return ChannelStatus::NotJoined;
        }
        let dc = match dc {
            Some(d) if host.reaches(d) => d,
            Some(_) => return ChannelStatus::NoLogonServers,
            None => match host.effective_dc() {
                Some(d) => d,
                None => return ChannelStatus::NoLogonServers,
            },
        };
        if host.domain_controller {
            // A DC authenticates domain logons itself; it has no member channel to test.
            return ChannelStatus::Ok { dc };
        }
        let Some(secret) = host.secret.as_ref() else {
            return ChannelStatus::WrongPassword { dc };
        };
        let mut check = self
            .domain
            .check_secret(&host.computer_name, dc, now, secret);
        if check == ChannelCheck::WrongPassword {
            // Netlogon: "new password is bad, try old one" (DOMAIN.md, revised).
            if let Some(old) = host.old_secret.as_ref() {
                check = self.domain.check_secret(&host.computer_name, dc, now, old);
            }
        }
        match check {
            ChannelCheck::Ok => ChannelStatus::Ok { dc },
            ChannelCheck::WrongPassword => ChannelStatus::WrongPassword { dc },
            ChannelCheck::NoAccount => ChannelStatus::NoAccount { dc },
            ChannelCheck::DcUnreachable => ChannelStatus::NoLogonServers,
        }
    }

    /// What Netlogon has stored of `host`'s channel (TC_QUERY): the record of its last use,
    /// or, when the host booted since, of the setup at that boot. Reading changes nothing.
    pub(crate) fn stored_channel(&self, host: &Host, now: LabTime) -> StoredChannel {
        if host.stored.at < host.last_boot {
            let s = self.channel(host, None, now);
            return StoredChannel::used(s.win32(), s.dc(), host.last_boot);
        }
        host.stored
    }

    /// Uses `id`'s channel: a session setup with `dc` (or the DC Netlogon uses now), whose
    /// result becomes the stored record and whose DC the binding.
    pub(crate) fn use_channel(
        &mut self,
        id: HostId,
        dc: Option<DcIndex>,
        now: LabTime,
    ) -> ChannelStatus {
        let Some(h) = self.host(id) else {
            return ChannelStatus::NotJoined;
        };
        let s = self.channel(h, dc, now);
        // A failed setup is logged in the System log (DOMAIN.md: members log 3210/5719).
        let netbios = self.domain.netbios.clone();
        let event = match s {
            ChannelStatus::WrongPassword { dc } | ChannelStatus::NoAccount { dc } => {
                let fqdn = self
                    .domain
                    .dcs
                    .get(dc)
                    .map(|d| d.fqdn.clone())
                    .unwrap_or_default();
                Some(NetlogonEvent {
                    id: 3210,
                    at: now,
                    data: vec![format!("\\\\{fqdn}"), netbios],
                })
            }
            ChannelStatus::NoLogonServers => Some(NetlogonEvent {
                id: 5719,
                at: now,
                data: vec![netbios, "%%1311".into()],
            }),
            ChannelStatus::Ok { .. } | ChannelStatus::NotJoined => None,
        };
        if let Some(h) = self.host_mut(id) {
            h.stored = StoredChannel::used(s.win32(), s.dc(), now);
            if let Some(d) = s.dc() {
                h.bound_dc = d;
            }
            if let Some(e) = event {
                if h.events.len() >= crate::host::MAX_EVENTS {
                    h.events.remove(0);
                }
                h.events.push(e);
            }
        }
        s
    }

    /// `NETLOGON_CONTROL_TC_VERIFY` (`nltest /sc_verify`): uses the channel; when that fails,
    /// Netlogon rediscovers a DC (the locator's choice, not the DC that holds the password)
    /// and sets the channel up with it, so a verify may rebind (DOMAIN.md, "Testing the
    /// channel"). The answer is the last attempt's.
    pub(crate) fn verify_channel(&mut self, id: HostId, now: LabTime) -> ChannelStatus {
        let first = self.use_channel(id, None, now);
        if first.is_ok() || first == ChannelStatus::NotJoined {
            return first;
        }
        match self.host(id).and_then(Host::locate) {
            Some(dc) => self.use_channel(id, Some(dc), now),
            None => first,
        }
    }

    /// Is `identity` a member of `host`'s local Administrators (full token aside)?
    pub(crate) fn is_local_admin(&self, host: &Host, identity: &Identity) -> bool {
        match identity {
            Identity::Local { host: h, rid, .. } => {
                *h == host.id && host.local_account_by_rid(*rid).is_some_and(|a| a.admin)
            }
            Identity::Domain { sam, .. } => {
                self.domain
                    .user(sam)
                    .is_some_and(|u| u.domain_admin || u.member_local_admin)
                    && host.joined()
            }
        }
    }

    /// WinRM authorisation (and so: does the session run elevated).
    pub(crate) fn authorize(&self, host: &Host, identity: &Identity) -> Result<(), Denied> {
        match identity {
            Identity::Local { host: h, rid, .. } => {
                if *h != host.id {
                    return Err(Denied::NotAdmin);
                }
                let Some(acct) = host.local_account_by_rid(*rid) else {
                    return Err(Denied::NotAdmin);
                };
                if !acct.admin {
                    return Err(Denied::NotAdmin);
                }
                if *rid == 500 || host.latfp == Some(1) {
                    Ok(())
                } else {
                    Err(Denied::FilteredToken)
                }
            }
            Identity::Domain { .. } => {
                if self.is_local_admin(host, identity) {
                    Ok(())
                } else {
                    Err(Denied::NotAdmin)
                }
            }
        }
    }
}

pub(crate) fn random_password(rng: &mut ChaCha8Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+-=";
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..CHARS.len());
            CHARS.get(i).map(|c| char::from(*c)).unwrap_or('x')
        })
        .collect()
}

fn random_sid(rng: &mut ChaCha8Rng) -> String {
    let a: u32 = rng.random_range(100_000_000..=4_000_000_000);
    let b: u32 = rng.random_range(100_000_000..=4_000_000_000);
    let c: u32 = rng.random_range(100_000_000..=4_000_000_000);
    format!("S-1-5-21-{a}-{b}-{c}")
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    spec: LabSpec,
}

/// The simulated domain and its member hosts.
#[derive(Debug, Clone)]
pub struct Lab {
    inner: Arc<Inner>,
}

/// FNV-1a fingerprint of a secret (for snapshots; not a security measure).
fn fingerprint(s: &SecretString) -> u64 {
    fnv(s.expose_secret().as_bytes())
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A comparable picture of the whole lab state; secrets appear only as fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSnapshot {
    /// One line per host.
    pub hosts: Vec<String>,
    /// One line per computer-account write, plus stuck windows.
    pub accounts: Vec<String>,
    /// One line per domain user.
    pub users: Vec<String>,
}

/// What a build's steps share: the spec, the computer-name prefix and the two random
/// streams. The steps draw in a fixed order (users, domain SID, fault placement, hosts,
/// pairs, faults), so the same seed and spec give the same lab.
struct LabBuilder {
    spec: LabSpec,
    /// [`LabSpec::name_prefix`] in upper case.
    prefix: String,
    /// Passwords, SIDs and fault placement.
    rng: ChaCha8Rng,
    /// What the reuse hardening needs (owners, creators, the `deployer` user) draws from
    /// its own stream, so that adding it changed no password, SID or fault placement.
    owner_rng: ChaCha8Rng,
}

/// Where the faults go.
struct Placement {
    /// The fault of each host slot.
    faults: Vec<Option<FaultKind>>,
    /// Two-host faults: kind, lower slot (the original), higher slot (the copy).
    pairs: Vec<(FaultKind, usize, usize)>,
}

impl Placement {
    /// Is slot `i` the copy of a name twin (so shares its original's account)?
    fn is_twin_copy(&self, i: usize) -> bool {
        self.pairs
            .iter()
            .any(|(k, _, b)| *k == FaultKind::Clone && *b == i)
    }
}

/// Refuses a spec that cannot be built; returns the computer-name prefix in upper case.
fn validate(spec: &LabSpec) -> Result<String, BuildError> {
    if spec.dcs == 0 {
        return Err(BuildError::NoDcs);
    }
    // Four digits (`WS0001`) up to 9999 hosts, five beyond (`WS10000`): issue 15 asks
    // for labs of 60,000.
    if spec.hosts > 99_999 {
        return Err(BuildError::TooManyHosts);
    }
    let prefix = spec.name_prefix.to_ascii_uppercase();
    if prefix.is_empty()
        || prefix.len() > 11
        // NetBIOS names have 15 characters: five digits leave 10 for the prefix.
        || (spec.hosts > 9999 && prefix.len() > 10)
        || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
        || !prefix.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        return Err(BuildError::BadNamePrefix);
    }
    if let Directory::Samba(cfg) = &spec.directory {
        if cfg.dcs.len() != spec.dcs {
            return Err(BuildError::Directory(format!(
                "the lab has {} DCs but the Samba lab {}",
                spec.dcs,
                cfg.dcs.len()
            )));
        }
    }
    let needed = faults::slots_needed(&spec.faults);
    if needed > spec.hosts {
        return Err(BuildError::TooManyFaults {
            needed,
            hosts: spec.hosts,
        });
    }
    if spec.dcs < 2
        && spec
            .faults
            .iter()
            .any(|(k, n)| *k == FaultKind::StaleDc && *n > 0)
    {
        return Err(BuildError::ReplicationNeedsTwoDcs);
    }
    Ok(prefix)
}

impl LabBuilder {
    fn new(spec: LabSpec) -> Result<Self, BuildError> {
        let prefix = validate(&spec)?;
        Ok(LabBuilder {
            prefix,
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            owner_rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x6f77_6e65_7273_6964),
            spec,
        })
    }

    /// The domain with its DCs, users and policies, and no computer yet.
    fn domain(&mut self) -> Domain {
        let dcs = (1..=self.spec.dcs)
            .map(|i| DomainController {
                name: format!("dc{i}"),
                fqdn: format!("dc{i}.lab.test"),
                pdc: i == 1,
                site: "Default-First-Site-Name".to_string(),
            })
            .collect();
        let users = self.users();
        let mut domain = Domain {
            dns_name: "lab.test".into(),
            netbios: "LAB".into(),
            sid: random_sid(&mut self.rng),
            dcs,
            computers: BTreeMap::new(),
            users,
            replication_delay: self.spec.replication_delay,
            next_rid: 1108,
            directory: None,
            accept_previous: self.spec.dc_accepts_previous,
            reuse_allowlist: Vec::new(),
            machine_account_quota: self.spec.machine_account_quota,
            lockout: crate::lockout::Lockout::new(self.spec.clock.clone()),
        };
        domain.reuse_allowlist = self
            .spec
            .reuse_allowlist
            .iter()
            .map(|e| match domain.user(e) {
                Some(u) if !e.starts_with("S-") => domain.user_sid(u),
                _ => e.clone(),
            })
            .collect();
        domain
    }

    /// The domain's users: the administrator, the repair account, a helpdesk user and
    /// (from the owner stream) `deployer`.
    fn users(&mut self) -> Vec<DomainUser> {
        let mut users = vec![
            DomainUser {
                sam: "Administrator".into(),
                password: SecretString::from(random_password(&mut self.rng, 20)),
                rid: 500,
                domain_admin: true,
                reset_computer_password: true,
                member_local_admin: true,
            },
            DomainUser {
                sam: "tsrepair".into(),
                password: SecretString::from(random_password(&mut self.rng, 20)),
                rid: 1105,
                domain_admin: false,
                reset_computer_password: true,
                member_local_admin: true,
            },
            DomainUser {
                sam: "helpdesk".into(),
                password: SecretString::from(random_password(&mut self.rng, 20)),
                rid: 1106,
                domain_admin: false,
                reset_computer_password: false,
                member_local_admin: false,
            },
        ];
        users.push(DomainUser {
            // A delegated non-admin that pre-staged some objects through the quota.
            sam: "deployer".into(),
            password: SecretString::from(random_password(&mut self.owner_rng, 20)),
            rid: 1107,
            domain_admin: false,
            reset_computer_password: false,
            member_local_admin: false,
        });
        users
    }

    /// Places the faults on shuffled slots.
    fn place_faults(&mut self) -> Placement {
        let mut order: Vec<usize> = (0..self.spec.hosts).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut faults: Vec<Option<FaultKind>> = vec![None; self.spec.hosts];
        let mut pairs: Vec<(FaultKind, usize, usize)> = Vec::new();
        let mut next = order.into_iter();
        for (kind, count) in &self.spec.faults {
            for _ in 0..*count {
                let (Some(a), b) = (next.next(), if kind.is_pair() { next.next() } else { None })
                else {
                    break;
                };
                if let Some(slot) = faults.get_mut(a) {
                    *slot = Some(*kind);
                }
                if let Some(b) = b {
                    if let Some(slot) = faults.get_mut(b) {
                        *slot = Some(*kind);
                    }
                    pairs.push((*kind, a.min(b), a.max(b)));
                }
            }
        }
        Placement { faults, pairs }
    }

    /// Hosts, healthy first. Each account has a history of passwords (oldest first);
    /// the member holds the last two as its (current, previous) LSA secret.
    fn hosts(&mut self, placement: &Placement, domain: &mut Domain) -> Vec<Host> {
        let history_len = self.spec.snapshot_rotations.saturating_add(2).max(3);
        let mut hosts = Vec::with_capacity(self.spec.hosts);
        for i in 0..self.spec.hosts {
            hosts.push(self.host(i, placement, history_len, domain));
        }
        hosts
    }

    /// Slot `i`'s member with its account in `domain` (a name twin's copy has none of its
    /// own: it shares its original's, see [`LabBuilder::name_twins`]).
    fn host(
        &mut self,
        i: usize,
        placement: &Placement,
        history_len: usize,
        domain: &mut Domain,
    ) -> Host {
        let n = i + 1;
        let name = format!("{}{n:04}", self.prefix);
        let history: Vec<SecretString> = (0..history_len)
            .map(|_| SecretString::from(random_password(&mut self.rng, 32)))
            .collect();
        let os = if n.is_multiple_of(3) {
            HostOs::Server2022
        } else {
            HostOs::Windows11
        };
        if !placement.is_twin_copy(i) {
            let ownership = prestaged_ownership(domain, &name, os, &self.spec, &mut self.owner_rng);
            domain.create_computer(&name, &history, ownership);
        }
        let secret = history.last().cloned();
        let old_secret = history
            .len()
            .checked_sub(2)
            .and_then(|j| history.get(j))
            .cloned();
        let dcs = self.spec.dcs;
        Host {
            id: HostId(i),
            address: format!("{}{n:04}.lab.test", self.prefix.to_ascii_lowercase()),
            computer_name: name,
            machine_sid: random_sid(&mut self.rng),
            membership: Membership::Domain,
            secret,
            old_secret,
            bound_dc: i % dcs,
            site_dc: i % dcs,
            stored: StoredChannel::used(0, Some(i % dcs), Duration::ZERO),
            dns_ok: true,
            domain_controller: false,
            deny_network_logon: false,
            events: Vec::new(),
            reachable_dcs: vec![true; dcs],
            local_accounts: self.local_accounts(),
            latfp: None,
            power: PowerState::Online,
            latency: self.spec.latency,
            os,
            last_boot: Duration::ZERO,
            fault: placement.faults.get(i).copied().flatten(),
            twin: None,
            laps: self.spec.laps,
            laps_rotate_at_boot: false,
        }
    }

    /// A member's local SAM: the built-in Administrator and a second administrator.
    fn local_accounts(&mut self) -> Vec<LocalAccount> {
        vec![
            LocalAccount {
                name: "Administrator".into(),
                rid: 500,
                password: SecretString::from(random_password(&mut self.rng, 16)),
                enabled: true,
                admin: true,
            },
            LocalAccount {
                name: "opsadmin".into(),
                rid: 1001,
                password: SecretString::from(random_password(&mut self.rng, 16)),
                enabled: true,
                admin: true,
            },
        ]
    }

    /// Pairs: name twins share the first host's account; SID duplicates only its machine
    /// SID (each keeps its own name and account, DOMAIN.md revised).
    fn make_pairs(
        &mut self,
        hosts: &mut [Host],
        pairs: &[(FaultKind, usize, usize)],
        domain: &Domain,
    ) {
        for &(kind, a, b) in pairs {
            let Some(orig) = hosts.get(a).cloned() else {
                continue;
            };
            if kind == FaultKind::SidDuplicate {
                share_machine_sid(hosts, &orig, a, b);
            } else {
                self.name_twins(hosts, &orig, a, b, domain);
            }
        }
    }

    /// Makes slot `b` a copy of `orig` (slot `a`) under its name, sharing its account.
    fn name_twins(&mut self, hosts: &mut [Host], orig: &Host, a: usize, b: usize, domain: &Domain) {
        let acct_passwords = domain
            .computers
            .get(&orig.computer_name)
            .and_then(|acc| acc.writes.last())
            .map(|w| w.state.clone());
        let stale = SecretString::from(random_password(&mut self.rng, 32));
        let stale_old = SecretString::from(random_password(&mut self.rng, 32));
        let original_wins = self.rng.random_bool(0.5);
        // The twin that rotated last holds the account's (current, previous); the other
        // holds a pair the DCs no longer know.
        let winner = (
            acct_passwords.as_ref().map(|s| s.current.clone()),
            acct_passwords.as_ref().and_then(|s| s.previous.clone()),
        );
        let loser = (Some(stale), Some(stale_old));
        if let Some(copy) = hosts.get_mut(b) {
            copy.computer_name = orig.computer_name.clone();
            copy.machine_sid = orig.machine_sid.clone();
            copy.local_accounts = orig.local_accounts.clone();
            copy.bound_dc = orig.bound_dc;
            copy.site_dc = orig.site_dc;
            copy.os = orig.os;
            copy.twin = Some(HostId(a));
            (copy.secret, copy.old_secret) = if original_wins {
                loser.clone()
            } else {
                winner.clone()
            };
        }
        if let Some(o) = hosts.get_mut(a) {
            o.twin = Some(HostId(b));
            (o.secret, o.old_secret) = if original_wins { winner } else { loser };
        }
    }

    /// Makes `host` what its build-time fault says (pairs are made by
    /// [`LabBuilder::make_pairs`]).
    fn apply_fault(&mut self, host: &mut Host, domain: &mut Domain) {
        match host.fault {
            // The mid-repair kinds are broken like a snapshot until a repair strikes them.
            Some(
                FaultKind::Snapshot
                | FaultKind::DropAfterReset
                | FaultKind::RebootMidRejoin
                | FaultKind::DcAwayMidRepair
                | FaultKind::WinrmRestart,
            ) => {
                restore_snapshot(host, domain, self.spec.snapshot_rotations);
            }
            Some(FaultKind::StaleDc) => self.miss_replication(host, domain),
            Some(FaultKind::DcReset) => self.reset_on_dc(host, domain),
            Some(kind @ (FaultKind::DisabledAccount | FaultKind::DeletedAccount)) => {
                disable_or_delete_account(host, domain, kind);
            }
            Some(FaultKind::Dns) => host.dns_ok = false,
            Some(FaultKind::NoDc) => host.reachable_dcs.iter_mut().for_each(|r| *r = false),
            Some(FaultKind::DenyNetworkLogon) => host.deny_network_logon = true,
            Some(FaultKind::DomainController) => host.domain_controller = true,
            Some(FaultKind::Offline) => host.power = PowerState::Offline,
            Some(FaultKind::Slow) => host.latency = self.spec.slow_latency,
            Some(FaultKind::FilteredAdmin) => filter_admin(host),
            // `hung` is the wire layer's business (it accepts and never answers).
            Some(FaultKind::Clone | FaultKind::SidDuplicate | FaultKind::Hung) | None => {}
        }
    }

    /// `stale-dc`: two rotations made on dc1 that never reached the host's DC (dc2): the
    /// member holds (newest, newer) and dc2 still has the one before both.
    fn miss_replication(&mut self, host: &mut Host, domain: &mut Domain) {
        let newer = SecretString::from(random_password(&mut self.rng, 32));
        let newest = SecretString::from(random_password(&mut self.rng, 32));
        let name = &host.computer_name;
        domain.write_password(name, 0, Duration::ZERO, newer.clone(), false);
        domain.write_password(name, 0, Duration::ZERO, newest.clone(), false);
        if let Some(acct) = domain.computers.get_mut(&host.computer_name) {
            acct.stuck = Some(Stuck {
                since: Duration::ZERO,
                until: self.spec.lag_stuck_for,
            });
        }
        host.secret = Some(newest);
        host.old_secret = Some(newer);
        host.bound_dc = 1;
        host.site_dc = 1;
    }

    /// `dc-reset`: the account gets a new password (and no previous one) that the member
    /// never learns, written a day before the lab started.
    fn reset_on_dc(&mut self, host: &Host, domain: &mut Domain) {
        let new = SecretString::from(random_password(&mut self.rng, 32));
        if let Some(acct) = domain.computers.get_mut(&host.computer_name) {
            let pwd_last_set =
                crate::domain::LAB_EPOCH_FILETIME.saturating_sub(crate::domain::FILETIME_DAY);
            acct.writes.push(AccountWrite {
                origin: None,
                at: Duration::ZERO,
                state: AccountState {
                    exists: true,
                    enabled: true,
                    current: new,
                    previous: None,
                    pwd_last_set,
                },
            });
        }
    }

    /// With [`Directory::Samba`], moves the accounts into the real DCs (see
    /// [`export_to_samba`]).
    fn export(&self, domain: &mut Domain, hosts: &[Host]) -> Result<(), BuildError> {
        if let Directory::Samba(cfg) = &self.spec.directory {
            // The lab's domain users with the DCs' passwords (those the facts name), so
            // that what a command does as them the DCs accept or refuse for real.
            for u in domain.users.iter_mut() {
                if let Some(pw) = cfg.password_of(&u.sam) {
                    u.password = pw;
                }
            }
            // What LAPS last wrote for each managed member: its built-in Administrator.
            let laps: Vec<(String, SecretString)> = hosts
                .iter()
                .filter(|h| h.laps)
                .filter_map(|h| {
                    let admin = h.local_account_by_rid(500)?;
                    Some((h.computer_name.clone(), admin.password.clone()))
                })
                .collect();
            export_to_samba(domain, (**cfg).clone(), &self.prefix, &laps)
                .map_err(|e| BuildError::Directory(e.to_string()))?;
        }
        Ok(())
    }

    /// The lab around the built domain and hosts; the main stream goes on in its state.
    fn finish(self, domain: Domain, hosts: Vec<Host>) -> Lab {
        let LabBuilder { spec, rng, .. } = self;
        let clock: Arc<dyn Clock> = spec.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let epoch = clock.now();
        let mut state = State {
            domain,
            hosts,
            rng,
            reboot_duration: spec.reboot_duration,
            mid_repair_outage: spec.mid_repair_outage,
            mid_repair: crate::midrepair::MidRepair::default(),
        };
        // Every member set its channel up when it last booted, before the lab started.
        for i in 0..state.hosts.len() {
            state.use_channel(HostId(i), None, Duration::ZERO);
        }
        Lab {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                clock,
                epoch,
                spec,
            }),
        }
    }
}

/// `sid-duplicate`: slot `b` gets `orig`'s (slot `a`'s) machine SID and local accounts,
/// and keeps its own name and account.
fn share_machine_sid(hosts: &mut [Host], orig: &Host, a: usize, b: usize) {
    if let Some(copy) = hosts.get_mut(b) {
        copy.machine_sid = orig.machine_sid.clone();
        copy.local_accounts = orig.local_accounts.clone();
        copy.twin = Some(HostId(a));
    }
    if let Some(o) = hosts.get_mut(a) {
        o.twin = Some(HostId(b));
    }
}

/// `snapshot`: the (current, previous) pair it held `rotations` rotations ago.
fn restore_snapshot(host: &mut Host, domain: &Domain, rotations: usize) {
    if let Some(acct) = domain.computers.get(&host.computer_name) {
        let held = acct.writes.len().checked_sub(1 + rotations);
        host.secret = held
            .and_then(|j| acct.writes.get(j))
            .map(|w| w.state.current.clone());
        host.old_secret = held
            .and_then(|j| acct.writes.get(j))
            .and_then(|w| w.state.previous.clone());
    }
}

/// `disabled-account` and `deleted-account`: the account's last state, disabled or gone.
fn disable_or_delete_account(host: &Host, domain: &mut Domain, kind: FaultKind) {
    if let Some(acct) = domain.computers.get_mut(&host.computer_name) {
        if let Some(last) = acct.writes.last().cloned() {
            let mut state = last.state;
            if kind == FaultKind::DisabledAccount {
                state.enabled = false;
            } else {
                state.exists = false;
            }
            acct.writes.push(AccountWrite {
                origin: None,
                at: Duration::ZERO,
                state,
            });
        }
    }
}

/// `filtered-admin`: the built-in Administrator disabled and
/// `LocalAccountTokenFilterPolicy=0`, so only `opsadmin`'s filtered token is left.
fn filter_admin(host: &mut Host) {
    host.latfp = Some(0);
    if let Some(a) = host.local_accounts.iter_mut().find(|a| a.rid == 500) {
        a.enabled = false;
    }
}

impl Lab {
    /// Builds a lab from a spec, deterministically from its seed.
    pub fn build(spec: LabSpec) -> Result<Lab, BuildError> {
        let mut b = LabBuilder::new(spec)?;
        let mut domain = b.domain();
        let placement = b.place_faults();
        let mut hosts = b.hosts(&placement, &mut domain);
        b.make_pairs(&mut hosts, &placement.pairs, &domain);
        for host in hosts.iter_mut() {
            b.apply_fault(host, &mut domain);
        }
        b.export(&mut domain, &hosts)?;
        Ok(b.finish(domain, hosts))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lab time now.
    pub fn now(&self) -> LabTime {
        self.inner
            .clock
            .now()
            .saturating_duration_since(self.inner.epoch)
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &LabSpec {
        &self.inner.spec
    }

    /// Domain DNS name.
    pub fn domain_name(&self) -> String {
        self.lock().domain.dns_name.clone()
    }

    /// DC FQDNs, PDC first.
    pub fn dcs(&self) -> Vec<String> {
        self.lock()
            .domain
            .dcs
            .iter()
            .map(|d| d.fqdn.clone())
            .collect()
    }

    /// Every host.
    pub fn hosts(&self) -> Vec<HostInfo> {
        let st = self.lock();
        st.hosts.iter().map(|h| host_info(&st, h)).collect()
    }

    /// One host.
    pub fn host(&self, id: HostId) -> Option<HostInfo> {
        let st = self.lock();
        st.host(id).map(|h| host_info(&st, h))
    }

    /// Finds a host by address (`ws0001.lab.test`, `ws0001`), any case. Clones share a
    /// computer name, so the computer name is not used.
    pub fn host_by_address(&self, name: &str) -> Option<HostId> {
        let st = self.lock();
        st.hosts
            .iter()
            .find(|h| {
                h.address.eq_ignore_ascii_case(name)
                    || h.address
                        .split('.')
                        .next()
                        .is_some_and(|label| label.eq_ignore_ascii_case(name))
            })
            .map(|h| h.id)
    }

    /// The domain users' lockout state and the policy knob ([`crate::lockout`]; shared:
    /// what the returned handle changes, the lab sees).
    pub fn lockout(&self) -> crate::lockout::Lockout {
        self.lock().domain.lockout.clone()
    }

    /// The repair account: `LAB\tsrepair` and its password.
    pub fn repair_credentials(&self) -> Credential {
        self.domain_credential("tsrepair")
    }

    /// `LAB\Administrator` (Domain Admin).
    pub fn domain_admin_credentials(&self) -> Credential {
        self.domain_credential("Administrator")
    }

    /// `LAB\helpdesk` (no rights).
    pub fn helpdesk_credentials(&self) -> Credential {
        self.domain_credential("helpdesk")
    }

    /// `LAB\deployer`: a non-admin that created some of the lab's computer objects through
    /// the machine-account quota (their `mS-DS-CreatorSID`).
    pub fn deployer_credentials(&self) -> Credential {
        self.domain_credential("deployer")
    }

    /// Test hook: gives domain user `sam` a new password (for example one with non-ASCII
    /// characters, to check that stdin reaches PowerShell as UTF-8). In-memory DCs only:
    /// with [`Directory::Samba`] the DCs keep theirs. `false` when there is no such user.
    pub fn set_domain_password(&self, sam: &str, password: SecretString) -> bool {
        let mut st = self.lock();
        match st
            .domain
            .users
            .iter_mut()
            .find(|u| u.sam.eq_ignore_ascii_case(sam))
        {
            Some(u) => {
                u.password = password;
                true
            }
            None => false,
        }
    }

    fn domain_credential(&self, sam: &str) -> Credential {
        let st = self.lock();
        let password = st
            .domain
            .user(sam)
            .map(|u| u.password.clone())
            .unwrap_or_else(|| SecretString::from(String::new()));
        Credential {
            user: format!("{}\\{}", st.domain.netbios, sam),
            password,
        }
    }

    /// Decides a logon: the password to verify the NTLM response against and the identity,
    /// or a 401. `domain` may be empty, `.`, the host's computer name, `LAB`, `lab.test`;
    /// `user` may be a UPN `user@lab.test` (with an empty domain). Case-insensitive.
    pub fn logon(&self, host: HostId, domain: &str, user: &str) -> Logon {
        let st = self.lock();
        let now = self.now();
        let Some(h) = st.host(host) else {
            return Logon::Reject(RejectReason::UnknownUser);
        };
        let (domain, user) = match (domain.trim(), user.split_once('@')) {
            ("", Some((u, suffix))) => (suffix, u),
            (d, _) => (d, user),
        };
        let local = |name: &str| -> Option<Logon> {
            let acct = h.local_account(name)?;
            if !acct.enabled {
                return Some(Logon::Reject(RejectReason::AccountDisabled));
            }
            if acct.admin && acct.rid != 500 && h.latfp != Some(1) {
                return Some(Logon::Reject(RejectReason::FilteredToken));
            }
            Some(Logon::Verify {
                password: acct.password.clone(),
                identity: Identity::Local {
                    host: h.id,
                    computer: h.computer_name.clone(),
                    name: acct.name.clone(),
                    rid: acct.rid,
                },
            })
        };
        let domain_logon = |name: &str| -> Logon {
            let Some(u) = st.domain.user(name) else {
                return Logon::Reject(RejectReason::UnknownUser);
            };
            if h.deny_network_logon {
                return Logon::Reject(RejectReason::DeniedByPolicy);
            }
            match st.channel(h, None, now) {
                ChannelStatus::Ok { .. } => Logon::Verify {
                    password: u.password.clone(),
                    identity: Identity::Domain {
                        netbios: st.domain.netbios.clone(),
                        sam: u.sam.clone(),
                        rid: u.rid,
                    },
                },
                ChannelStatus::NotJoined => Logon::Reject(RejectReason::NotJoined),
                ChannelStatus::NoLogonServers => Logon::Reject(RejectReason::NoLogonServers),
                ChannelStatus::WrongPassword { .. } | ChannelStatus::NoAccount { .. } => {
                    Logon::Reject(RejectReason::BrokenTrust)
                }
            }
        };
        let is_local_domain = domain == "." || domain.eq_ignore_ascii_case(&h.computer_name);
        if is_local_domain {
            return local(user).unwrap_or(Logon::Reject(RejectReason::UnknownUser));
        }
        if domain.is_empty() {
            if let Some(l) = local(user) {
                return l;
            }
            return domain_logon(user);
        }
        if st.domain.is_named(domain) {
            return domain_logon(user);
        }
        Logon::Reject(RejectReason::UnknownUser)
    }

    /// WinRM authorisation of an authenticated identity.
    pub fn authorize_winrm(&self, host: HostId, identity: &Identity) -> Result<(), Denied> {
        let st = self.lock();
        let Some(h) = st.host(host) else {
            return Err(Denied::UnknownHost);
        };
        st.authorize(h, identity)
    }

    /// Does the host answer (not offline, not in the middle of a reboot)?
    pub fn is_online(&self, host: HostId) -> bool {
        let now = self.now();
        self.lock().host(host).is_some_and(|h| h.online_at(now))
    }

    /// The host's network latency.
    pub fn latency(&self, host: HostId) -> Duration {
        self.lock()
            .host(host)
            .map(|h| h.latency)
            .unwrap_or_default()
    }

    /// Runs a WinRS command line (what `cmd.exe /c` would run) as `identity`, with `stdin`
    /// piped (`WINRS_CONSOLEMODE_STDIN=FALSE`). Does not check power state or
    /// authorisation: the wire layer does that first.
    pub fn execute(
        &self,
        host: HostId,
        identity: &Identity,
        command_line: &str,
        stdin: &[u8],
    ) -> ExecResult {
        self.execute_with(host, identity, command_line, stdin, StdinMode::Pipe)
    }

    /// [`Lab::execute`] with stdin attached as the WinRS Command asked
    /// (`WINRS_CONSOLEMODE_STDIN`, MS-WSMV 3.1.4.11): with a console PowerShell's `$input`
    /// is empty (DOMAIN.md "WinRM details", modelled on the pessimistic side).
    pub fn execute_with(
        &self,
        host: HostId,
        identity: &Identity,
        command_line: &str,
        stdin: &[u8],
        mode: StdinMode,
    ) -> ExecResult {
        let now = self.now();
        let (result, hold) = {
            let mut st = self.lock();
            let result =
                crate::exec::execute(&mut st, now, host, identity, command_line, stdin, mode);
            (result, st.mid_repair.take_hold(host))
        };
        // A mid-repair fault struck (see [`crate::midrepair`]): the connection went away
        // before the output could come back, so it is held back (outside the lock) until
        // the host answers again; by then the client has given up on it.
        if let Some(hold) = hold {
            std::thread::sleep(hold);
        }
        result
    }

    /// How many destructive steps (password resets, leaves, joins) took effect on `host`
    /// since the lab was built: a repair must never repeat one (issue 16).
    pub fn destructive_steps(&self, host: HostId) -> u32 {
        self.lock().mid_repair.destructive(host)
    }

    /// Does this command line read stdin to its end before it finishes (so the wire layer
    /// must wait for the stdin `End` before running it)?
    pub fn reads_stdin(command_line: &str) -> bool {
        crate::exec::reads_stdin(command_line)
    }

    /// Ground truth: the host's secure channel now.
    pub fn channel_status(&self, host: HostId) -> Option<ChannelStatus> {
        let now = self.now();
        let st = self.lock();
        st.host(host).map(|h| st.channel(h, None, now))
    }

    /// Ground truth: what Netlogon has stored of the host's channel (what TC_QUERY, so
    /// `Test-ComputerSecureChannel` and `nltest /sc_query`, read).
    pub fn stored_channel(&self, host: HostId) -> Option<crate::host::StoredChannel> {
        let now = self.now();
        let st = self.lock();
        st.host(host).map(|h| st.stored_channel(h, now))
    }

    /// What `dc` (0 = dc1) holds for `computer` now.
    pub fn account_on_dc(&self, computer: &str, dc: DcIndex) -> Option<AccountView> {
        let now = self.now();
        self.lock().domain.view(computer, dc, now)
    }

    /// `computer`'s object as the lab's DCs hold it: `distinguishedName`, owner SID and
    /// `mS-DS-CreatorSID` (what an LDAP preflight of a rejoin reads). `None` when no such
    /// object exists (deleted included) or the accounts live in real DCs.
    pub fn account_ownership(&self, computer: &str) -> Option<crate::domain::Ownership> {
        let st = self.lock();
        st.domain
            .computers
            .get(&computer.to_ascii_uppercase())
            .filter(|a| a.writes.last().is_some_and(|w| w.state.exists))
            .map(|a| a.ownership.clone())
    }

    /// The owner SID (`nTSecurityDescriptor`) of `computer`'s object (see
    /// [`Lab::account_ownership`]).
    pub fn account_owner(&self, computer: &str) -> Option<String> {
        self.account_ownership(computer).map(|o| o.owner_sid)
    }

    /// `mS-DS-CreatorSID` of `computer`'s object; `None` when unset or no object.
    pub fn account_creator(&self, computer: &str) -> Option<String> {
        self.account_ownership(computer).and_then(|o| o.creator_sid)
    }

    /// `distinguishedName` of `computer`'s object (its OU is the rest after the first RDN).
    pub fn account_dn(&self, computer: &str) -> Option<String> {
        self.account_ownership(computer).map(|o| o.dn)
    }

    /// Ground truth for a rejoin preflight: would `Add-Computer` as domain user `sam` be
    /// allowed to reuse `computer`'s existing object (KB5020276)? `None` when there is no
    /// object (a join creates one), no such user, or the accounts live in real DCs (where
    /// the lab refuses every reuse, see `Add-Computer`).
    pub fn reuse_verdict(&self, computer: &str, sam: &str) -> Option<crate::domain::ReuseVerdict> {
        let own = self.account_ownership(computer)?;
        let st = self.lock();
        let user = st.domain.user(sam)?;
        Some(st.domain.reuse_verdict(&own, user))
    }

    /// The owner SIDs on the "Allow computer account re-use during domain join" list, as
    /// built from [`LabSpec::reuse_allowlist`].
    pub fn reuse_allowlist(&self) -> Vec<String> {
        self.lock().domain.reuse_allowlist.clone()
    }

    /// `ms-DS-MachineAccountQuota`.
    pub fn machine_account_quota(&self) -> u32 {
        self.lock().domain.machine_account_quota
    }

    /// The domain SID.
    pub fn domain_sid(&self) -> String {
        self.lock().domain.sid.clone()
    }

    /// The domain's DN, `DC=lab,DC=test`.
    pub fn base_dn(&self) -> String {
        self.lock().domain.base_dn()
    }

    /// Domain Admins' SID (domain SID + 512).
    pub fn domain_admins_sid(&self) -> String {
        self.lock().domain.domain_admins_sid()
    }

    /// objectSid of domain user `sam` (`tsrepair`, `deployer`, `Administrator`).
    pub fn user_sid(&self, sam: &str) -> Option<String> {
        let st = self.lock();
        st.domain.user(sam).map(|u| st.domain.user_sid(u))
    }

    /// How many computer objects carry domain user `sam`'s SID as `mS-DS-CreatorSID`
    /// (what the machine-account quota counts).
    pub fn created_by(&self, sam: &str) -> usize {
        let st = self.lock();
        st.domain
            .user(sam)
            .map(|u| st.domain.created_by(&st.domain.user_sid(u)))
            .unwrap_or(0)
    }

    /// DC-side "Reset Account" (ADUC / `dsmod computer -reset`) of `computer`, written on
    /// `dc`. Returns false when the account or DC is unknown.
    pub fn dc_reset_account(&self, computer: &str, dc: DcIndex) -> bool {
        let now = self.now();
        let mut st = self.lock();
        if st.domain.view(computer, dc, now).is_none() {
            return false;
        }
        let pw = st.new_password(32);
        st.domain.write_password(computer, dc, now, pw, true)
    }

    /// rootDSE `replicateSingleObject` of `computer` from `source` to `dest`, bound as
    /// domain user `user` (see [`crate::domain::Domain::replicate_single_object`]).
    pub fn replicate_single_object(
        &self,
        computer: &str,
        source: DcIndex,
        dest: DcIndex,
        user: &str,
        password: &SecretString,
    ) -> Result<(), crate::domain::ReplicateRefused> {
        let now = self.now();
        self.lock()
            .domain
            .replicate_single_object(computer, source, dest, now, user, password)
    }

    /// Deletes the computer object of `computer` on `dc` (the deletion replicates).
    /// Returns false when the account or DC is unknown.
    pub fn delete_account(&self, computer: &str, dc: DcIndex) -> bool {
        let now = self.now();
        self.lock().domain.delete_account(computer, dc, now)
    }

    /// Forces replication from DC `src` to DC `dest` (0 = dc1). The in-memory model
    /// replicates by itself after its delay, so this does nothing there; with real DCs it
    /// runs `samba-dc.sh replicate` (the whole domain partition, see [`crate::samba`]),
    /// without holding the lab's lock.
    pub fn replicate(&self, dest: DcIndex, src: DcIndex) -> Result<(), crate::samba::SambaError> {
        let dir = self.lock().domain.directory.clone();
        match dir {
            Some(d) => d.replicate(dest, src),
            None => Ok(()),
        }
    }

    /// Are the computer accounts in real DCs?
    pub fn uses_real_dcs(&self) -> bool {
        self.lock().domain.directory.is_some()
    }

    /// Powers a host on (clears `offline`).
    pub fn power_on(&self, host: HostId) {
        if let Some(h) = self.lock().host_mut(host) {
            h.power = PowerState::Online;
        }
    }

    /// Sets which DCs a host can reach (all when `true`).
    pub fn set_dc_reachability(&self, host: HostId, reachable: bool) {
        if let Some(h) = self.lock().host_mut(host) {
            h.reachable_dcs.iter_mut().for_each(|r| *r = reachable);
        }
    }

    /// Makes one DC (0 = dc1) reachable or not from `host` (for Netlogon's RPC).
    pub fn set_dc_reachable(&self, host: HostId, dc: DcIndex, reachable: bool) {
        if let Some(r) = self
            .lock()
            .host_mut(host)
            .and_then(|h| h.reachable_dcs.get_mut(dc))
        {
            *r = reachable;
        }
    }

    /// A comparable picture of the whole state (secrets fingerprinted).
    pub fn snapshot(&self) -> LabSnapshot {
        let st = self.lock();
        let hosts = st
            .hosts
            .iter()
            .map(|h| {
                let accounts: Vec<String> = h
                    .local_accounts
                    .iter()
                    .map(|a| format!("{}:{}:{}:{:016x}", a.name, a.rid, a.enabled, fingerprint(&a.password)))
                    .collect();
                format!(
                    "{} {} {} {:?} secret={:?} bound={} reach={:?} latfp={:?} power={:?} boot={:?} accts={:?}",
                    h.id.0,
                    h.computer_name,
                    h.machine_sid,
                    h.membership,
                    h.secret.as_ref().map(fingerprint),
                    h.bound_dc,
                    h.reachable_dcs,
                    h.latfp,
                    h.power,
                    h.last_boot,
                    accounts
                )
            })
            .collect();
        let mut accounts = Vec::new();
        if let Some(dir) = &st.domain.directory {
            // What each real DC holds of each lab computer: existence, userAccountControl,
            // pwdLastSet and objectSid. Not lastLogon, lastLogonTimestamp, logonCount,
            // badPwdCount or uSNChanged, which binds (channel checks) change.
            let mut names: Vec<&str> = st.hosts.iter().map(|h| h.computer_name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                for dc in 0..st.domain.dcs.len() {
                    let line = match dir.account(name, dc) {
                        Ok(Some(a)) => format!(
                            "exists uac={:#x} pls={} sid={}",
                            a.user_account_control,
                            a.pwd_last_set,
                            a.object_sid.as_deref().unwrap_or("?")
                        ),
                        Ok(None) => "absent".to_string(),
                        Err(e) => format!("unreadable ({e})"),
                    };
                    accounts.push(format!("{name} dc{dc} {line}"));
                }
            }
        }
        for (name, acct) in &st.domain.computers {
            accounts.push(format!("{name} {} stuck={:?}", acct.sid, acct.stuck));
            for (v, w) in acct.writes.iter().enumerate() {
                accounts.push(format!(
                    "{name} v{v} origin={:?} at={:?} exists={} enabled={} cur={:016x} prev={:?} pls={}",
                    w.origin,
                    w.at,
                    w.state.exists,
                    w.state.enabled,
                    fingerprint(&w.state.current),
                    w.state.previous.as_ref().map(fingerprint),
                    w.state.pwd_last_set
                ));
            }
        }
        let users = st
            .domain
            .users
            .iter()
            .map(|u| format!("{} {:016x}", u.sam, fingerprint(&u.password)))
            .collect();
        LabSnapshot {
            hosts,
            accounts,
            users,
        }
    }

    /// A 64-bit digest of [`Lab::snapshot`].
    pub fn state_digest(&self) -> u64 {
        let s = self.snapshot();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for line in s.hosts.iter().chain(&s.accounts).chain(&s.users) {
            h ^= fnv(line.as_bytes());
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// Moves the freshly built accounts into the real DCs by replaying each account's write
/// log there, so that every fault is made the way it happens:
///
/// 1. The lab OU's `PREFIXnnnn` accounts that this lab does not have are deleted (an
///    earlier, larger lab's), on dc1.
/// 2. The history that predates the lab (writes without an origin DC) on dc1: each account
///    is created afresh with its first password (an existing object is deleted first, so
///    that writes an earlier run left on one DC only cannot win replication over this run's
///    by their version numbers), then every later password is written as the log says: the
///    member's own change (bound as the computer) when the old one stayed the previous
///    password, an administrative reset (as the administrator) when not; so `dc-reset` is
///    a real reset on dc1.
/// 3. The objects a non-admin created (in the model) get a non-admin owner on dc1, so the
///    account-reuse rules (KB5020276) refuse their reuse there too; then dc1 is
///    replicated to every other DC: both DCs hold everything.
/// 4. The build's writes made on one DC (`stale-dc`: the member's two changes on dc1) on
///    that DC only, never replicated.
///
/// From then on `domain.computers` stays empty and the DCs are the truth. The domain SID
/// and the RIDs of the lab's domain users are read from dc1.
fn export_to_samba(
    domain: &mut Domain,
    cfg: crate::samba::SambaConfig,
    prefix: &str,
    laps: &[(String, SecretString)],
) -> Result<(), crate::samba::SambaError> {
    let dir = crate::samba::SambaDirectory::connect(cfg)?;
    let names: Vec<String> = domain.computers.keys().cloned().collect();
    dir.remove_stale(0, prefix, &names)?;
    for (name, acct) in &domain.computers {
        let mut prior: Option<&AccountState> = None;
        for w in acct.writes.iter().filter(|w| w.origin.is_none()) {
            replay(&dir, name, 0, prior, &w.state, true)?;
            prior = Some(&w.state);
        }
    }
    // KB5020276 needs the owners too: an object the model says a non-admin created
    // through the machine-account quota gets a non-admin owner on the DCs. The Samba lab
    // has no `deployer`; its ordinary user `helpdesk` stands in (the reuse rules ask only
    // whether the owner is privileged, the creator or allow-listed). `mS-DS-CreatorSID` is
    // system-only over LDAP, so such objects have an owner but no creator SID: the
    // preflight and the lab's `Add-Computer` both refuse their reuse, as Windows would for
    // an object a non-admin owns and did not create through the quota.
    // LAPS: each managed member's password on its object, as the device wrote it at the
    // lab's epoch (expiring 30 days later, Windows LAPS' default PasswordAgeDays).
    for (name, password) in laps {
        let at = crate::domain::LAB_EPOCH_FILETIME;
        let expires = at.saturating_add(30 * crate::domain::FILETIME_DAY);
        dir.write_laps(name, 0, "Administrator", password, at, expires)?;
    }
    if let Some(rid) = dir.user_rid("helpdesk")? {
        let non_admin = format!("{}-{rid}", dir.domain_sid()?);
        for (name, acct) in &domain.computers {
            let exists = acct.writes.last().is_some_and(|w| w.state.exists);
            if exists && acct.ownership.creator_sid.is_some() {
                dir.set_owner(name, 0, &non_admin)?;
            }
        }
    }
    for dest in 1..domain.dcs.len() {
        dir.replicate(dest, 0)?;
    }
    for (name, acct) in &domain.computers {
        let mut prior: Option<&AccountState> = None;
        for w in &acct.writes {
            if let Some(dc) = w.origin {
                replay(&dir, name, dc, prior, &w.state, false)?;
            }
            prior = Some(&w.state);
        }
    }
    domain.sid = dir.domain_sid()?;
    for u in domain.users.iter_mut() {
        if let Some(rid) = dir.user_rid(&u.sam)? {
            u.rid = rid;
        }
    }
    domain.computers.clear();
    domain.directory = Some(Arc::new(dir));
    Ok(())
}

/// Makes `dc` hold `state` for `name`, given that it held `prior` (see [`export_to_samba`]).
fn replay(
    dir: &crate::samba::SambaDirectory,
    name: &str,
    dc: DcIndex,
    prior: Option<&AccountState>,
    state: &AccountState,
    fresh: bool,
) -> Result<(), crate::samba::SambaError> {
    if !state.exists {
        dir.delete(name, dc)?;
        return Ok(());
    }
    match prior.filter(|p| p.exists) {
        None if fresh => dir.recreate(name, dc, &state.current)?,
        None => dir.write_password(name, dc, &state.current)?,
        Some(p) if p.current.expose_secret() == state.current.expose_secret() => {}
        Some(p) => {
            let own_change = state
                .previous
                .as_ref()
                .is_some_and(|prev| prev.expose_secret() == p.current.expose_secret());
            if own_change {
                dir.change_own_password(name, dc, &p.current, &state.current)?;
            } else {
                dir.write_password(name, dc, &state.current)?;
            }
        }
    }
    let was_enabled = prior.filter(|p| p.exists).is_none_or(|p| p.enabled);
    if was_enabled != state.enabled {
        dir.set_enabled(name, dc, state.enabled)?;
    }
    Ok(())
}

fn host_info(st: &State, h: &Host) -> HostInfo {
    let cred = |rid: u32| -> Credential {
        h.local_account_by_rid(rid)
            .map(|a| Credential {
                user: a.name.clone(),
                password: a.password.clone(),
            })
            .unwrap_or_else(|| Credential {
                user: String::new(),
                password: SecretString::from(String::new()),
            })
    };
    let builtin = cred(500);
    let ops = cred(1001);
    let local_admin = if h.fault == Some(FaultKind::FilteredAdmin) {
        ops.clone()
    } else {
        builtin.clone()
    };
    HostInfo {
        id: h.id,
        address: h.address.clone(),
        computer_name: h.computer_name.clone(),
        dns_name: format!("{}.{}", h.dns_label(), st.domain.dns_name),
        machine_sid: h.machine_sid.clone(),
        fault: h.fault,
        twin: h.twin,
        os_caption: h.os.caption(),
        local_admin,
        builtin_admin: builtin,
        opsadmin: ops,
        bound_dc: st
            .domain
            .dcs
            .get(h.bound_dc)
            .map(|d| d.fqdn.clone())
            .unwrap_or_default(),
        account: st
            .domain
            .computers
            .get(&h.computer_name.to_ascii_uppercase())
            .filter(|a| a.writes.last().is_some_and(|w| w.state.exists))
            .map(|a| a.ownership.clone()),
    }
}

/// Who made a pre-existing lab computer object, and where it lives. Workstations sit in
/// `OU=Workstations`, servers in `OU=Servers`. Most were made by a Domain Admin, whose
/// objects AD gives Domain Admins as owner (a few name the domain Administrator itself, as
/// objects made before the owner default was Domain Admins do) and no `mS-DS-CreatorSID`;
/// one in `deployer_created_one_in` by `deployer`, a non-admin, through the
/// machine-account quota: `mS-DS-CreatorSID` = deployer and, on the pessimistic side,
/// owner = deployer too (DOMAIN.md "Repairing it", revised: the creator SID is set only on
/// the quota path; which owner AD then writes is not verified here, and a privileged owner
/// would exempt the object from the reuse block).
fn prestaged_ownership(
    domain: &Domain,
    name: &str,
    os: HostOs,
    spec: &LabSpec,
    rng: &mut ChaCha8Rng,
) -> crate::domain::Ownership {
    let ou = match os {
        HostOs::Server2022 => "OU=Servers",
        _ => "OU=Workstations",
    };
    let dn = format!("CN={name},{ou},{}", domain.base_dn());
    let by_deployer =
        spec.deployer_created_one_in > 0 && rng.random_ratio(1, spec.deployer_created_one_in);
    let admin_owner = rng.random_ratio(1, 5);
    if by_deployer {
        let sid = domain
            .user("deployer")
            .map(|u| domain.user_sid(u))
            .unwrap_or_default();
        return crate::domain::Ownership {
            dn,
            owner_sid: sid.clone(),
            creator_sid: Some(sid),
        };
    }
    let owner_sid = if admin_owner {
        format!("{}-500", domain.sid)
    } else {
        domain.domain_admins_sid()
    };
    crate::domain::Ownership {
        dn,
        owner_sid,
        creator_sid: None,
    }
}
