//! The simulated Active Directory domain: domain controllers, their (replicated) copies of
//! every computer account, domain user accounts with their rights, and the lab clock.
//!
//! # Time
//! All lab times are [`LabTime`]: the [`Duration`] elapsed since the lab was built, read
//! from an injectable [`Clock`] (real by default, [`ManualClock`] in tests). `pwdLastSet`
//! is reported as a Windows FILETIME (100 ns ticks since 1601-01-01 UTC): the lab starts
//! at [`LAB_EPOCH_FILETIME`] (2025-11-01 00:00:00 UTC) and advances with the clock.
//!
//! # Replication
//! Each computer account keeps the log of writes made to it. A write is made on one DC
//! (its origin) and becomes visible on every other DC once `replication_delay` has passed,
//! unless the account's replication is stuck (a [`Stuck`] window holds back writes made
//! after `since` until `until`). What a DC "holds" is the newest write visible to it, a
//! pure function of the log and the time: reading never changes state.
//!
//! # Previous password
//! Two values on the member, a switch on the DC (DOMAIN.md, "The secure channel",
//! revised). The member keeps its current and previous machine password and retries with
//! the previous one when a DC refuses the current (Netlogon's "new password is bad, try old
//! one", Microsoft's broken-trust article); that retry lives in `State::channel`. A DC
//! keeps the account's current and previous password, and whether it accepts the previous
//! one is [`Domain::accept_previous`]: off by default, as a Samba DC behaves
//! (`dcerpc_netlogon.c` falls back to the previous hash for domain trusts only) and as the
//! undocumented Windows side is modelled (the pessimistic choice). A member-initiated
//! change (rotation, `nltest /sc_change_pwd`) keeps the old password as the previous one;
//! an administrative reset (`SetPassword` over LDAP: ADUC "Reset Account",
//! `Reset-ComputerMachinePassword`, `Test-ComputerSecureChannel -Repair`, a rejoin)
//! records none.
//!
//! # Account lockout
//! Domain users have `badPwdCount` and `lockoutTime` under the domain's lockout policy
//! ([`Domain::lockout`], module [`crate::lockout`], which cites its sources): a wrong
//! password checked by a DC (an NTLM logon passed through from a member, a cmdlet's
//! `-Credential`) counts, a locked account is refused even with the right password until
//! the lockout duration passes, and a logon refused before the DC checks the password (a
//! broken secure channel, a deny-logon right) costs nothing.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// Time since the lab was built.
pub type LabTime = Duration;

/// 2025-11-01T00:00:00Z as a Windows FILETIME: the `pwdLastSet` of lab time zero.
pub const LAB_EPOCH_FILETIME: u64 = 134_064_288_000_000_000;

/// FILETIME ticks (100 ns) in one day.
pub const FILETIME_DAY: u64 = 864_000_000_000;

/// Converts a lab time to a FILETIME.
pub fn filetime_at(t: LabTime) -> u64 {
    let ticks = u64::try_from(t.as_nanos() / 100).unwrap_or(u64::MAX);
    LAB_EPOCH_FILETIME.saturating_add(ticks)
}

/// Source of the current instant. Implement it to drive the lab's time from a test.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to; share it (it is cheap to clone) between the test
/// and the lab.
#[derive(Debug, Clone)]
pub struct ManualClock {
    base: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl ManualClock {
    /// A clock standing still at "now".
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut guard = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *guard = guard.saturating_add(by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        self.base + offset
    }
}

/// Index of a domain controller in [`Domain::dcs`].
pub type DcIndex = usize;

/// A domain controller.
#[derive(Debug, Clone)]
pub struct DomainController {
    /// Host label, e.g. `dc1`.
    pub name: String,
    /// FQDN, e.g. `dc1.lab.test`.
    pub fqdn: String,
    /// Holds the PDC emulator role.
    pub pdc: bool,
    /// AD site.
    pub site: String,
}

/// The state of a computer object as one write left it.
#[derive(Clone)]
pub struct AccountState {
    /// The object exists (false after a deletion).
    pub exists: bool,
    /// `userAccountControl` does not have ACCOUNTDISABLE.
    pub enabled: bool,
    /// Current password.
    pub current: SecretString,
    /// Previous password, when DCs still accept one.
    pub previous: Option<SecretString>,
    /// `pwdLastSet` as a FILETIME.
    pub pwd_last_set: u64,
}

impl fmt::Debug for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountState")
            .field("exists", &self.exists)
            .field("enabled", &self.enabled)
            .field("current", &"[REDACTED]")
            .field("previous", &self.previous.as_ref().map(|_| "[REDACTED]"))
            .field("pwd_last_set", &self.pwd_last_set)
            .finish()
    }
}

/// One write to a computer object.
#[derive(Debug, Clone)]
pub struct AccountWrite {
    /// DC the write was made on; `None` for history that predates the lab and is already
    /// everywhere.
    pub origin: Option<DcIndex>,
    /// When it was made.
    pub at: LabTime,
    /// The object's state after the write.
    pub state: AccountState,
}

/// Why a `replicateSingleObject` ([`Domain::replicate_single_object`]) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplicateRefused {
    /// The account lacks DS-Replication-Synchronize on the domain NC (LDAP
    /// insufficientAccessRights).
    #[error("insufficient access rights: replicateSingleObject needs the Replication Synchronization right on the domain naming context")]
    AccessDenied,
    /// The bind failed.
    #[error("the user name or password is incorrect")]
    BadCredentials,
    /// The source DC holds no such object.
    #[error("no such object on the source DC")]
    NoSuchObject,
    /// The accounts live in Samba, whose rootDSE does not implement the operation.
    #[error("the DC is unwilling to perform replicateSingleObject (Samba's rootDSE does not implement it)")]
    Unsupported,
}

/// A window during which an account's replication is stuck: writes made at or after
/// `since` do not reach other DCs before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck {
    /// Writes from this time on are held back.
    pub since: LabTime,
    /// ... until this time.
    pub until: LabTime,
}

/// A computer account (`NAME$`) with its write log.
#[derive(Debug, Clone)]
pub struct ComputerAccount {
    /// Computer name in upper case, without `$`.
    pub name: String,
    /// objectSid: domain SID + RID.
    pub sid: String,
    /// RID.
    pub rid: u32,
    /// Writes, oldest first; the index is the version.
    pub writes: Vec<AccountWrite>,
    /// Replication hold-back for this account.
    pub stuck: Option<Stuck>,
    /// Who made the object and where it lives (the inputs of KB5020276's reuse check).
    /// Kept per object, not per write: an object's owner and creator do not change by
    /// password writes, and a join that recreates a deleted object replaces them.
    pub ownership: Ownership,
}

/// Where a computer object lives and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// `distinguishedName`: `CN=WS0001,OU=Workstations,DC=lab,DC=test`.
    pub dn: String,
    /// The owner SID of the object's `nTSecurityDescriptor`.
    pub owner_sid: String,
    /// `mS-DS-CreatorSID`: set only when a non-privileged user created the object through
    /// the machine-account quota (DOMAIN.md "Repairing it", revised).
    pub creator_sid: Option<String>,
}

/// Why a domain join may reuse an existing computer object (KB5020276, CVE-2022-38042),
/// or that it may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseVerdict {
    /// The joining account is the object's `mS-DS-CreatorSID`.
    Creator,
    /// The owner is Domain Admins, Enterprise Admins or built-in Administrators, or a
    /// member of one (EA and BA since the March 2023 update).
    PrivilegedOwner,
    /// The owner is on the "Domain controller: Allow computer account re-use during domain
    /// join" list.
    AllowListedOwner,
    /// None of those: the join fails with 0xaac NERR_AccountReuseBlockedByPolicy (2732).
    Blocked,
}

impl ReuseVerdict {
    /// Does the join go ahead?
    pub fn allowed(self) -> bool {
        self != ReuseVerdict::Blocked
    }
}

/// BUILTIN\Administrators.
pub const BUILTIN_ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// NERR_AccountReuseBlockedByPolicy (2732, 0xaac): the Win32 message, as Microsoft's
/// article "Failure when you use an existing computer account to join a domain" quotes it
/// in the join dialog (fixture `join_domain_dialog_account_reuse_blocked_0xaac.txt`).
pub const ACCOUNT_REUSE_BLOCKED_MESSAGE: &str =
    "An account with the same name exists in Active Directory. Re-using the account was blocked by security policy.";

/// ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED (8557, 0x216d): the Win32 message as
/// Microsoft's "System Error Codes (8200-8999)" page and its domain-join troubleshooting
/// article quote it.
pub const MACHINE_ACCOUNT_QUOTA_EXCEEDED_MESSAGE: &str = "Your computer could not be joined to the domain. You have exceeded the maximum number of computer accounts you are allowed to create in this domain. Contact your system administrator to have this limit reset or increased.";

/// What one DC holds for a computer account, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// `NAME$`.
    pub sam_account_name: String,
    /// objectSid.
    pub object_sid: String,
    /// Enabled.
    pub enabled: bool,
    /// `pwdLastSet` (FILETIME).
    pub pwd_last_set: u64,
    /// Version (index of the write this DC holds).
    pub version: usize,
    /// `distinguishedName`.
    pub dn: Option<String>,
    /// Owner SID from `nTSecurityDescriptor`; `None` where the lab does not know it (the
    /// Samba backend does not read it).
    pub owner_sid: Option<String>,
    /// `mS-DS-CreatorSID`; `None` when not set (or not read: the Samba backend).
    pub creator_sid: Option<String>,
}

impl ComputerAccount {
    /// The write a DC holds at `now` (newest visible one), with its version.
    pub fn on_dc(
        &self,
        dc: DcIndex,
        now: LabTime,
        delay: Duration,
    ) -> Option<(usize, &AccountWrite)> {
        self.writes
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| self.visible(w, dc, now, delay))
    }

    fn visible(&self, w: &AccountWrite, dc: DcIndex, now: LabTime, delay: Duration) -> bool {
        let Some(origin) = w.origin else { return true };
        if origin == dc {
            return true;
        }
        if now < w.at.saturating_add(delay) {
            return false;
        }
        !matches!(self.stuck, Some(s) if w.at >= s.since && now < s.until)
    }

    /// Does `secret` open a secure channel against what `dc` holds? The account's current
    /// password does; its previous one only when `accept_previous` (DOMAIN.md: undocumented
    /// for Windows DCs, refused by Samba, off by default).
    pub fn accepts(
        &self,
        dc: DcIndex,
        now: LabTime,
        delay: Duration,
        secret: &SecretString,
        accept_previous: bool,
    ) -> ChannelCheck {
        match self.on_dc(dc, now, delay) {
            None => ChannelCheck::NoAccount,
            Some((_, w)) if !w.state.exists || !w.state.enabled => ChannelCheck::NoAccount,
            Some((_, w)) => {
                let s = secret.expose_secret();
                let cur = w.state.current.expose_secret() == s;
                let prev = accept_previous
                    && w.state
                        .previous
                        .as_ref()
                        .is_some_and(|p| p.expose_secret() == s);
                if cur || prev {
                    ChannelCheck::Ok
                } else {
                    ChannelCheck::WrongPassword
                }
            }
        }
    }
}

/// Result of checking a member's secret against one DC's copy of its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelCheck {
    /// Current or previous password matches.
    Ok,
    /// Neither matches (NTSTATUS ACCESS_DENIED → Win32 5).
    WrongPassword,
    /// No such (enabled) account on that DC (1787 ERROR_NO_TRUST_SAM_ACCOUNT).
    NoAccount,
    /// The DC could not be asked (a real DC behind [`crate::samba`] did not answer):
    /// 1311 ERROR_NO_LOGON_SERVERS.
    DcUnreachable,
}

/// A domain user.
#[derive(Clone)]
pub struct DomainUser {
    /// sAMAccountName with its canonical case, e.g. `tsrepair`.
    pub sam: String,
    /// Password.
    pub password: SecretString,
    /// RID.
    pub rid: u32,
    /// Member of Domain Admins.
    pub domain_admin: bool,
    /// Delegated Reset Password (and the rest of what a rejoin of an existing account
    /// needs) on computer objects.
    pub reset_computer_password: bool,
    /// Member of every member host's local Administrators (by GPO).
    pub member_local_admin: bool,
}

impl fmt::Debug for DomainUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainUser")
            .field("sam", &self.sam)
            .field("password", &"[REDACTED]")
            .field("rid", &self.rid)
            .field("domain_admin", &self.domain_admin)
            .field("reset_computer_password", &self.reset_computer_password)
            .field("member_local_admin", &self.member_local_admin)
            .finish()
    }
}

impl DomainUser {
    /// May reset computer passwords (Domain Admins or delegated).
    pub fn can_reset_computers(&self) -> bool {
        self.domain_admin || self.reset_computer_password
    }
}

/// Why a domain credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// Unknown user, wrong password, or a name outside the domain.
    BadCredentials,
    /// The account is locked out (see [`crate::lockout`]): refused whatever the password.
    LockedOut,
}

impl CredentialError {
    /// What Windows says, without the final period: Win32 1326 ERROR_LOGON_FAILURE and
    /// 1909 ERROR_ACCOUNT_LOCKED_OUT (Microsoft, "System Error Codes").
    pub fn windows_text(self) -> &'static str {
        match self {
            CredentialError::BadCredentials => "The user name or password is incorrect",
            CredentialError::LockedOut => {
                "The referenced account is currently locked out and may not be logged on to"
            }
        }
    }
}

/// The domain.
#[derive(Debug, Clone)]
pub struct Domain {
    /// DNS name, `lab.test`.
    pub dns_name: String,
    /// NetBIOS name, `LAB`.
    pub netbios: String,
    /// Domain SID, `S-1-5-21-a-b-c`.
    pub sid: String,
    /// Domain controllers; index 0 is the PDC emulator.
    pub dcs: Vec<DomainController>,
    /// Computer accounts, by upper-case name.
    pub computers: std::collections::BTreeMap<String, ComputerAccount>,
    /// Users.
    pub users: Vec<DomainUser>,
    /// Replication delay between DCs.
    pub replication_delay: Duration,
    /// Next RID to hand out.
    pub next_rid: u32,
    /// When set, the computer accounts live in these real DCs instead of `computers`
    /// (which stays empty): every read and write below goes to them.
    pub directory: Option<std::sync::Arc<crate::samba::SambaDirectory>>,
    /// In-memory DCs accept an account's previous password too (see
    /// [`crate::model::LabSpec::dc_accepts_previous`]); real DCs decide for themselves.
    pub accept_previous: bool,
    /// Owner SIDs trusted by "Domain controller: Allow computer account re-use during
    /// domain join" (see [`crate::model::LabSpec::reuse_allowlist`]).
    pub reuse_allowlist: Vec<String>,
    /// `ms-DS-MachineAccountQuota`.
    pub machine_account_quota: u32,
    /// The users' `badPwdCount` and `lockoutTime` under the domain's lockout policy
    /// ([`crate::lockout`]): what a wrong password costs an account.
    pub lockout: crate::lockout::Lockout,
}

impl Domain {
    /// Is `name` this domain (DNS or NetBIOS name, any case)?
    pub fn is_named(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.dns_name) || name.eq_ignore_ascii_case(&self.netbios)
    }

    /// Finds a DC by label or FQDN (any case, optional leading `\\`).
    pub fn dc_by_name(&self, name: &str) -> Option<DcIndex> {
        let n = name.trim_start_matches('\\');
        self.dcs
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(n) || d.fqdn.eq_ignore_ascii_case(n))
    }

    /// Finds a user by sAMAccountName (any case).
    pub fn user(&self, sam: &str) -> Option<&DomainUser> {
        self.users.iter().find(|u| u.sam.eq_ignore_ascii_case(sam))
    }

    /// Resolves a user name as written in a credential (`LAB\u`, `lab.test\u`, `u@lab.test`,
    /// or a bare `u`) to a domain user, if it names this domain.
    pub fn resolve_user_spec(&self, spec: &str) -> Option<&DomainUser> {
        if let Some((dom, user)) = spec.split_once('\\') {
            return if self.is_named(dom) {
                self.user(user)
            } else {
                None
            };
        }
        if let Some((user, suffix)) = spec.rsplit_once('@') {
            return if self.is_named(suffix) {
                self.user(user)
            } else {
                None
            };
        }
        self.user(spec)
    }

    /// Checks a credential (user spec + password) against the domain, as a DC checks a
    /// bind: a wrong password of a known user counts against its lockout, and a locked
    /// account is refused whatever the password ([`crate::lockout`]).
    pub fn check_credential(
        &self,
        spec: &str,
        password: &SecretString,
    ) -> Result<&DomainUser, CredentialError> {
        let Some(u) = self.resolve_user_spec(spec) else {
            return Err(CredentialError::BadCredentials);
        };
        let ok = u.password.expose_secret() == password.expose_secret();
        match self.lockout.record(&u.sam, ok) {
            crate::lockout::Verdict::Accepted => Ok(u),
            crate::lockout::Verdict::WrongPassword => Err(CredentialError::BadCredentials),
            crate::lockout::Verdict::LockedOut => Err(CredentialError::LockedOut),
        }
    }

    /// The account of `computer` as `dc` holds it now.
    pub fn view(&self, computer: &str, dc: DcIndex, now: LabTime) -> Option<AccountView> {
        if let Some(d) = &self.directory {
            return d.view(computer, dc);
        }
        let acct = self.computers.get(&computer.to_ascii_uppercase())?;
        let (version, w) = acct.on_dc(dc, now, self.replication_delay)?;
        if !w.state.exists {
            return None;
        }
        Some(AccountView {
            sam_account_name: format!("{}$", acct.name),
            object_sid: acct.sid.clone(),
            enabled: w.state.enabled,
            pwd_last_set: w.state.pwd_last_set,
            version,
            dn: Some(acct.ownership.dn.clone()),
            owner_sid: Some(acct.ownership.owner_sid.clone()),
            creator_sid: acct.ownership.creator_sid.clone(),
        })
    }

    /// Checks a member's secret for `computer` against `dc`.
    pub fn check_secret(
        &self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        secret: &SecretString,
    ) -> ChannelCheck {
        if let Some(d) = &self.directory {
            return d.check_secret(computer, dc, secret);
        }
        match self.computers.get(&computer.to_ascii_uppercase()) {
            None => ChannelCheck::NoAccount,
            Some(a) => a.accepts(
                dc,
                now,
                self.replication_delay,
                secret,
                self.accept_previous,
            ),
        }
    }

    /// Creates a computer account that already exists everywhere (pre-lab history), made
    /// by whoever `ownership` says.
    pub fn create_computer(
        &mut self,
        name: &str,
        passwords: &[SecretString],
        ownership: Ownership,
    ) -> String {
        let rid = self.next_rid;
        self.next_rid = self.next_rid.saturating_add(1);
        let sid = format!("{}-{}", self.sid, rid);
        let mut writes = Vec::new();
        let n = passwords.len();
        for (i, pw) in passwords.iter().enumerate() {
            let age_days = u64::try_from(n.saturating_sub(i))
                .unwrap_or(0)
                .saturating_mul(30);
            writes.push(AccountWrite {
                origin: None,
                at: Duration::ZERO,
                state: AccountState {
                    exists: true,
                    enabled: true,
                    current: pw.clone(),
                    previous: i.checked_sub(1).and_then(|p| passwords.get(p)).cloned(),
                    pwd_last_set: LAB_EPOCH_FILETIME
                        .saturating_sub(age_days.saturating_mul(FILETIME_DAY)),
                },
            });
        }
        let name = name.to_ascii_uppercase();
        self.computers.insert(
            name.clone(),
            ComputerAccount {
                name: name.clone(),
                sid: sid.clone(),
                rid,
                writes,
                stuck: None,
                ownership,
            },
        );
        sid
    }

    /// Writes a new password for `computer` on `dc`. `admin_reset` leaves no usable
    /// previous password (see the module docs); a member-initiated change keeps the old
    /// one. Creates the account when it does not exist. Returns false only when `dc` is
    /// out of range.
    pub fn write_password(
        &mut self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        new: SecretString,
        admin_reset: bool,
    ) -> bool {
        if dc >= self.dcs.len() {
            return false;
        }
        if let Some(d) = &self.directory {
            // A real DC keeps what it keeps of the old password (see crate::samba); the
            // member's own change is `change_password_self`.
            let _ = admin_reset;
            return logged(
                dc,
                computer,
                "password write",
                d.write_password(computer, dc, &new),
            )
            .is_some();
        }
        let key = computer.to_ascii_uppercase();
        if !self.computers.contains_key(&key) {
            let rid = self.next_rid;
            self.next_rid = self.next_rid.saturating_add(1);
            let sid = format!("{}-{}", self.sid, rid);
            self.computers.insert(
                key.clone(),
                ComputerAccount {
                    name: key.clone(),
                    sid,
                    rid,
                    writes: Vec::new(),
                    stuck: None,
                    ownership: Ownership {
                        dn: format!("CN={key},{}", self.computers_container()),
                        owner_sid: self.domain_admins_sid(),
                        creator_sid: None,
                    },
                },
            );
        }
        let delay = self.replication_delay;
        let Some(acct) = self.computers.get_mut(&key) else {
            return false;
        };
        let prior = acct
            .on_dc(dc, now, delay)
            .map(|(_, w)| w.state.clone())
            .filter(|s| s.exists);
        let previous = if admin_reset {
            None
        } else {
            prior.as_ref().map(|s| s.current.clone())
        };
        let enabled = prior.as_ref().is_none_or(|s| s.enabled);
        acct.writes.push(AccountWrite {
            origin: Some(dc),
            at: now,
            state: AccountState {
                exists: true,
                enabled,
                current: new,
                previous,
                pwd_last_set: filetime_at(now),
            },
        });
        true
    }

    /// An administrative reset of `computer`'s password on `dc` done with the credential
    /// `user` (as written: `LAB\tsrepair`, `tsrepair@lab.test`, `tsrepair`) and `password`.
    /// In memory the caller has checked the credential and its rights against the user
    /// table; with real DCs the write binds as that credential, so the DC checks both.
    pub fn reset_password_as(
        &mut self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        new: SecretString,
        user: &str,
        password: &SecretString,
    ) -> Result<(), WriteRefused> {
        if let Some(d) = &self.directory {
            let bind = self.bind_name(user).ok_or(WriteRefused::BadCredentials)?;
            return d.reset_as(computer, dc, &new, &bind, password);
        }
        if self.write_password(computer, dc, now, new, true) {
            Ok(())
        } else {
            Err(WriteRefused::Unavailable)
        }
    }

    /// The rootDSE `replicateSingleObject` operation (MS-ADTS 3.1.1.3.3.18), sent to
    /// `dest` as `user`: `dest` pulls `computer`'s object from `source` at once, instead of
    /// waiting for replication (DOMAIN.md "Repairing it", revised: a member bound to a DC
    /// that lacks the new password stays broken until replication, `nltest /sc_reset`, or
    /// this). It needs the Replication Synchronization control access right
    /// (DS-Replication-Synchronize) on the domain NC, which AD grants by default to the
    /// built-in Administrators (so Domain Admins) and the DCs: a delegated repair account
    /// such as tsrepair usually lacks it. Samba's rootDSE refuses the operation, so a lab
    /// whose accounts live in Samba says it is not offered.
    pub fn replicate_single_object(
        &mut self,
        computer: &str,
        source: DcIndex,
        dest: DcIndex,
        now: LabTime,
        user: &str,
        password: &SecretString,
    ) -> Result<(), ReplicateRefused> {
        if self.directory.is_some() {
            return Err(ReplicateRefused::Unsupported);
        }
        let u = self
            .check_credential(user, password)
            .map_err(|_| ReplicateRefused::BadCredentials)?;
        if !u.domain_admin {
            return Err(ReplicateRefused::AccessDenied);
        }
        if source >= self.dcs.len() || dest >= self.dcs.len() {
            return Err(ReplicateRefused::NoSuchObject);
        }
        let delay = self.replication_delay;
        let acct = self
            .computers
            .get_mut(&computer.to_ascii_uppercase())
            .ok_or(ReplicateRefused::NoSuchObject)?;
        let (_, w) = acct
            .on_dc(source, now, delay)
            .ok_or(ReplicateRefused::NoSuchObject)?;
        let state = w.state.clone();
        acct.writes.push(AccountWrite {
            origin: Some(dest),
            at: now,
            state,
        });
        Ok(())
    }

    /// Sets the enabled flag of `computer` on `dc` (a write that replicates). Returns false
    /// when the account is unknown to that DC.
    pub fn set_enabled(
        &mut self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        enabled: bool,
    ) -> bool {
        if let Some(d) = &self.directory {
            return logged(
                dc,
                computer,
                "userAccountControl write",
                d.set_enabled(computer, dc, enabled),
            )
            .unwrap_or(false);
        }
        let delay = self.replication_delay;
        let Some(acct) = self.computers.get_mut(&computer.to_ascii_uppercase()) else {
            return false;
        };
        let Some((_, w)) = acct.on_dc(dc, now, delay) else {
            return false;
        };
        let mut state = w.state.clone();
        if !state.exists {
            return false;
        }
        state.enabled = enabled;
        acct.writes.push(AccountWrite {
            origin: Some(dc),
            at: now,
            state,
        });
        true
    }

    /// The member's own change of its password on `dc` (Netlogon's rotation, `nltest
    /// /sc_change_pwd`): the old one stays the previous password. With real DCs the change
    /// binds as the computer account with `old`. Returns false when `dc` is out of range or
    /// the DC refused or could not be reached.
    pub fn change_password_self(
        &mut self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        old: &SecretString,
        new: SecretString,
    ) -> bool {
        if let Some(d) = &self.directory {
            return logged(
                dc,
                computer,
                "password change",
                d.change_own_password(computer, dc, old, &new),
            )
            .is_some();
        }
        self.write_password(computer, dc, now, new, false)
    }

    /// Deletes the computer object of `computer` on `dc` (the deletion replicates).
    /// Returns false when the account or DC is unknown.
    pub fn delete_account(&mut self, computer: &str, dc: DcIndex, now: LabTime) -> bool {
        if let Some(d) = &self.directory {
            return logged(dc, computer, "deletion", d.delete(computer, dc)).unwrap_or(false);
        }
        let delay = self.replication_delay;
        let Some(acct) = self.computers.get_mut(&computer.to_ascii_uppercase()) else {
            return false;
        };
        let Some((_, w)) = acct.on_dc(dc, now, delay) else {
            return false;
        };
        let mut state = w.state.clone();
        state.exists = false;
        acct.writes.push(AccountWrite {
            origin: Some(dc),
            at: now,
            state,
        });
        true
    }

    /// The domain's DN: `DC=lab,DC=test`.
    pub fn base_dn(&self) -> String {
        self.dns_name
            .split('.')
            .map(|l| format!("DC={l}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The default container of new computer objects (`CN=Computers`, the well-known
    /// computers container unless `redircmp` moved it; the lab never moves it).
    pub fn computers_container(&self) -> String {
        format!("CN=Computers,{}", self.base_dn())
    }

    /// Domain Admins: domain SID + 512.
    pub fn domain_admins_sid(&self) -> String {
        format!("{}-512", self.sid)
    }

    /// Enterprise Admins: the forest root domain's SID + 519 (the lab's domain is its own
    /// forest root).
    pub fn enterprise_admins_sid(&self) -> String {
        format!("{}-519", self.sid)
    }

    /// A domain user's objectSid.
    pub fn user_sid(&self, user: &DomainUser) -> String {
        format!("{}-{}", self.sid, user.rid)
    }

    /// Is `sid` Domain Admins, Enterprise Admins or BUILTIN\Administrators, or a user that
    /// is a member of one (in the lab every such user is a Domain Admin; Domain Admins is
    /// itself a member of BUILTIN\Administrators)?
    pub fn is_privileged_sid(&self, sid: &str) -> bool {
        sid == self.domain_admins_sid()
            || sid == self.enterprise_admins_sid()
            || sid == BUILTIN_ADMINISTRATORS_SID
            || self
                .users
                .iter()
                .any(|u| u.domain_admin && self.user_sid(u) == sid)
    }

    /// KB5020276's check of a join by `joiner` that finds `ownership`'s object (DOMAIN.md
    /// "Repairing it", revised; Microsoft's "Failure when you use an existing computer
    /// account to join a domain", whose NetSetup.log shows the join reading the object's
    /// owner attributes, then the allow-list, then refusing with 0xaac):
    /// - the joining account is the object's `mS-DS-CreatorSID`;
    /// - the owner is Domain Admins / Enterprise Admins / BUILTIN\Administrators or a
    ///   member (EA and BA added by the March 2023 update);
    /// - the owner is on the allow-list.
    ///
    /// The joining account being a Domain Admin is *not* an exemption (KB5020276 does not
    /// name it; DOMAIN.md says to model it as blocked). Nor is the joining account being
    /// the owner without being the `mS-DS-CreatorSID` (KB5020276 names the creator; the
    /// pessimistic side).
    pub fn reuse_verdict(&self, ownership: &Ownership, joiner: &DomainUser) -> ReuseVerdict {
        let joiner_sid = self.user_sid(joiner);
        if ownership.creator_sid.as_deref() == Some(joiner_sid.as_str()) {
            return ReuseVerdict::Creator;
        }
        if self.is_privileged_sid(&ownership.owner_sid) {
            return ReuseVerdict::PrivilegedOwner;
        }
        if self
            .reuse_allowlist
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&ownership.owner_sid))
        {
            return ReuseVerdict::AllowListedOwner;
        }
        ReuseVerdict::Blocked
    }

    /// How many computer objects carry `sid` as their `mS-DS-CreatorSID`: what
    /// `ms-DS-MachineAccountQuota` is counted against. Deleted objects count too (the
    /// pessimistic side: a tombstone keeps its `mS-DS-CreatorSID`; whether the DC counts
    /// tombstones is unverified here).
    pub fn created_by(&self, sid: &str) -> usize {
        self.computers
            .values()
            .filter(|a| a.ownership.creator_sid.as_deref() == Some(sid))
            .count()
    }

    /// The object of `computer` as the lab knows it (in-memory DCs only).
    pub fn ownership(&self, computer: &str) -> Option<&Ownership> {
        self.computers
            .get(&computer.to_ascii_uppercase())
            .map(|a| &a.ownership)
    }

    /// A join that finds no object creates one on `dc` with `password` (an administrative
    /// set: no previous password), a new objectSid, and `ownership`. A deleted object of
    /// the same name is replaced (its tombstone is not what the DC finds by name). With
    /// real DCs the object is created in the lab OU as the administrator (the lab never
    /// writes outside its OU), so `ownership.dn` is not honoured there. False when `dc` is
    /// out of range or the DC refused.
    pub fn create_joined_computer(
        &mut self,
        computer: &str,
        dc: DcIndex,
        now: LabTime,
        password: SecretString,
        ownership: Ownership,
    ) -> bool {
        if dc >= self.dcs.len() {
            return false;
        }
        if self.directory.is_some() {
            return self.write_password(computer, dc, now, password, true);
        }
        let key = computer.to_ascii_uppercase();
        let rid = self.next_rid;
        self.next_rid = self.next_rid.saturating_add(1);
        let sid = format!("{}-{}", self.sid, rid);
        let acct = self
            .computers
            .entry(key.clone())
            .or_insert_with(|| ComputerAccount {
                name: key.clone(),
                sid: sid.clone(),
                rid,
                writes: Vec::new(),
                stuck: None,
                ownership: ownership.clone(),
            });
        acct.sid = sid;
        acct.rid = rid;
        acct.ownership = ownership;
        acct.writes.push(AccountWrite {
            origin: Some(dc),
            at: now,
            state: AccountState {
                exists: true,
                enabled: true,
                current: password,
                previous: None,
                pwd_last_set: filetime_at(now),
            },
        });
        true
    }

    /// The name a credential `spec` binds to a real DC with: `LAB\user` for `LAB\user`,
    /// `lab.test\user`, `user@lab.test` and a bare `user` (Samba refuses a simple bind as
    /// `lab.test\user`); `None` when the spec names another domain.
    pub fn bind_name(&self, spec: &str) -> Option<String> {
        let user = if let Some((dom, user)) = spec.split_once('\\') {
            self.is_named(dom).then_some(user)?
        } else if let Some((user, suffix)) = spec.rsplit_once('@') {
            self.is_named(suffix).then_some(user)?
        } else {
            spec
        };
        (!user.is_empty()).then(|| format!("{}\\{user}", self.netbios))
    }
}

/// `Ok` as `Some`; an error of the real DCs logged (never with a secret) as `None`.
fn logged<T>(
    dc: DcIndex,
    computer: &str,
    what: &str,
    r: Result<T, crate::samba::SambaError>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(dc, computer, "Samba {what} failed: {e}");
            None
        }
    }
}

/// Why a DC refused a password write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefused {
    /// The account lacks the Reset Password right.
    AccessDenied,
    /// The DC refused the credential itself (unknown user, wrong password, another
    /// domain).
    BadCredentials,
    /// The DC holds no such account.
    NoAccount,
    /// The DC did not answer.
    Unavailable,
}

/// Compares a user-supplied name with a canonical one the way Windows does (ASCII
/// case-insensitive).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}
