//! Account lockout of the lab's domain users, as a DC applies it (so that a tool that
//! retries a wrong password can be caught locking an account).
//!
//! What is modelled, and from where:
//! - The policy is the domain's "Account lockout threshold", "Account lockout duration"
//!   and "Reset account lockout counter after" (Microsoft Learn, "Account lockout
//!   threshold" and its two sibling pages; the `lockoutThreshold`, `lockoutDuration` and
//!   `lockOutObservationWindow` attributes, MS-ADA1 2.370-2.372). AD's own default is no
//!   lockout (threshold 0); the lab defaults to 5 attempts, 15 minutes, 15 minutes: the
//!   strict end of what domains commonly set (CIS asks for 5 or fewer; Microsoft's security
//!   baseline for 10), the pessimistic side for a tool that must never lock anyone out.
//! - A wrong password increments `badPwdCount` (set to 1 when the last bad attempt,
//!   `badPwdTime`, is older than the observation window) and, once it reaches the
//!   threshold, sets `lockoutTime` (MS-SAMR 3.1.5.14.6 "Account Lockout State
//!   Maintenance"). Only a wrong password counts: a logon refused for another reason (the
//!   member cannot reach a DC over a broken secure channel, a "Deny access to this
//!   computer from the network" right) never reaches the password check on the DC.
//! - A locked account is refused whatever the password, the right one included, until the
//!   lockout duration has passed (Microsoft Learn, "Account lockout duration"); a duration
//!   of zero locks it until an administrator unlocks it. The attempts made while it is
//!   locked are not counted (MS-SAMR 3.1.5.14.6 applies only while `lockoutTime` is 0), and
//!   an unlock sets `badPwdCount` to 0 (MS-SAMR 3.1.1.8.3).
//! - Not modelled, the pessimistic side: a successful logon does not reset `badPwdCount`
//!   here (Windows DCs do reset it, but no source at hand says so for every path), and a
//!   wrong password equal to one of the account's two previous ones counts like any other
//!   (Windows 2003 and later skip those; the lab keeps no password history).
//! - `badPwdCount` is kept per DC on Windows and failures are chained to the PDC emulator,
//!   which holds the count that locks; the lab keeps one domain-wide count (what the PDC
//!   sees, the pessimistic reading).
//!
//! Where it applies: NTLM logons of domain accounts on member hosts (pass-through to the
//! DC: the wire layer reports each verified response through [`Lockout::record`]) and the
//! credentials that cmdlets bind to a DC with (`Reset-ComputerMachinePassword
//! -Credential`, `Test-ComputerSecureChannel -Repair -Credential`, joins; see
//! [`crate::domain::Domain::check_credential`]). Local accounts are not locked out (the
//! built-in Administrator, which the lab's inventory connects as, is exempt by default).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::domain::{Clock, SystemClock};

/// The domain's account lockout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Wrong passwords that lock the account (`lockoutThreshold`); 0 never locks.
    pub threshold: u32,
    /// How long an account stays locked (`lockoutDuration`); zero: until unlocked.
    pub duration: Duration,
    /// After how long without a wrong password the count starts again
    /// (`lockOutObservationWindow`).
    pub observation_window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            threshold: 5,
            duration: Duration::from_secs(15 * 60),
            observation_window: Duration::from_secs(15 * 60),
        }
    }
}

/// One account's lockout attributes.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    /// `badPwdCount`.
    bad_pwd_count: u32,
    /// `badPwdTime`.
    bad_pwd_time: Option<Instant>,
    /// `lockoutTime` (`None`: 0, not locked).
    lockout_time: Option<Instant>,
    /// Every wrong password ever checked for the account, for tests (not an AD attribute).
    wrong_total: u32,
}

#[derive(Debug, Default)]
struct Accounts {
    policy: LockoutPolicy,
    by_sam: HashMap<String, Counter>,
}

/// The lockout state of the domain's users. Cheap to clone: clones share the state (the
/// lab's domain keeps one, the wire layer and the tests read it through
/// [`crate::model::Lab::lockout`]).
#[derive(Clone)]
pub struct Lockout {
    accounts: Arc<Mutex<Accounts>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Lockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout")
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(None)
    }
}

/// What a DC says of a credential once lockout is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right and the account is not locked.
    Accepted,
    /// The password is wrong (counted).
    WrongPassword,
    /// The account is locked out: refused whatever the password (not counted).
    LockedOut,
}

impl Lockout {
    /// The default policy on `clock` (the real clock when `None`).
    pub fn new(clock: Option<Arc<dyn Clock>>) -> Self {
        Lockout {
            accounts: Arc::new(Mutex::new(Accounts::default())),
            clock: clock.unwrap_or_else(|| Arc::new(SystemClock)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Accounts> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy in force.
    pub fn policy(&self) -> LockoutPolicy {
        self.lock().policy
    }

    /// The lab's knob: sets the policy (a threshold of 0 turns lockout off).
    pub fn set_policy(&self, policy: LockoutPolicy) {
        self.lock().policy = policy;
    }

    /// Is the account `sam` (any case) locked out now?
    pub fn is_locked(&self, sam: &str) -> bool {
        let now = self.clock.now();
        let mut a = self.lock();
        let policy = a.policy;
        a.by_sam
            .get_mut(&sam.to_ascii_lowercase())
            .is_some_and(|c| locked(c, &policy, now))
    }

    /// `badPwdCount` of `sam` now (0 once the observation window has passed, as the DC
    /// would start again at the next wrong password).
    pub fn bad_pwd_count(&self, sam: &str) -> u32 {
        let now = self.clock.now();
        let mut a = self.lock();
        let policy = a.policy;
        match a.by_sam.get_mut(&sam.to_ascii_lowercase()) {
            None => 0,
            Some(c) => {
                if locked(c, &policy, now) {
                    return c.bad_pwd_count;
                }
                let stale = c
                    .bad_pwd_time
                    .is_none_or(|t| now.saturating_duration_since(t) > policy.observation_window);
                if stale {
                    0
                } else {
                    c.bad_pwd_count
                }
            }
        }
    }

    /// Every wrong password ever checked for `sam` (never reset: what a test counts).
    pub fn wrong_passwords(&self, sam: &str) -> u32 {
        self.lock()
            .by_sam
            .get(&sam.to_ascii_lowercase())
            .map_or(0, |c| c.wrong_total)
    }

    /// An administrator unlocks `sam` (`lockoutTime` := 0, so `badPwdCount` := 0).
    pub fn unlock(&self, sam: &str) {
        if let Some(c) = self.lock().by_sam.get_mut(&sam.to_ascii_lowercase()) {
            c.lockout_time = None;
            c.bad_pwd_count = 0;
        }
    }

    /// The DC checks a password of `sam`: `password_ok` is whether it matched. A locked
    /// account is refused (and nothing is counted); a wrong password is counted and may
    /// lock the account (MS-SAMR 3.1.5.14.6).
    pub fn record(&self, sam: &str, password_ok: bool) -> Verdict {
        let now = self.clock.now();
        let mut a = self.lock();
        let policy = a.policy;
        let c = a.by_sam.entry(sam.to_ascii_lowercase()).or_default();
        if locked(c, &policy, now) {
            return Verdict::LockedOut;
        }
        if password_ok {
            return Verdict::Accepted;
        }
        c.wrong_total = c.wrong_total.saturating_add(1);
        if policy.threshold == 0 {
            return Verdict::WrongPassword;
        }
        let stale = c
            .bad_pwd_time
            .is_none_or(|t| now.saturating_duration_since(t) > policy.observation_window);
        c.bad_pwd_count = if stale {
            1
        } else {
            c.bad_pwd_count.saturating_add(1)
        };
        c.bad_pwd_time = Some(now);
        if c.bad_pwd_count >= policy.threshold {
            c.lockout_time = Some(now);
            tracing::info!(user = %sam, count = c.bad_pwd_count, "lab: account locked out");
        }
        Verdict::WrongPassword
    }
}

/// Is `c` locked at `now`? An expired lockout is cleared as an unlock (MS-SAMR 3.1.1.8.3).
fn locked(c: &mut Counter, policy: &LockoutPolicy, now: Instant) -> bool {
    let Some(at) = c.lockout_time else {
        return false;
    };
    if policy.duration.is_zero() || now.saturating_duration_since(at) < policy.duration {
        return true;
    }
    c.lockout_time = None;
    c.bad_pwd_count = 0;
    false
}

thread_local! {
    /// The domain logon whose NTLM response the wire layer is verifying on this thread:
    /// set when the lab hands the server the password to check, settled by the next step
    /// the server reports on the same thread (see [`pending_logon`]).
    static PENDING: std::cell::RefCell<Option<(Lockout, String)>> = const { std::cell::RefCell::new(None) };
}

/// The wire layer is about to verify an NTLM response of domain user `sam`: the verdict
/// is recorded by [`settle_pending_logon`]. `winrm`'s server asks for the password,
/// verifies, and answers (401 on a wrong response) in one poll of the connection's task,
/// with no await between (`Server::authenticate` is synchronous); the server calls the
/// backend's `authorize` right after a verified response that carries a body, and reports
/// the answered request on that same thread. So the thread that asked is the thread that
/// settles, before any other connection's logon can start on it.
pub fn pending_logon(lockout: &Lockout, sam: &str) {
    PENDING.with(|p| *p.borrow_mut() = Some((lockout.clone(), sam.to_string())));
}

/// Settles the logon [`pending_logon`] noted on this thread, if any: `accepted` is whether
/// the server took the response. Returns the verdict recorded.
pub fn settle_pending_logon(accepted: bool) -> Option<Verdict> {
    let pending = PENDING.with(|p| p.borrow_mut().take());
    pending.map(|(lockout, sam)| lockout.record(&sam, accepted))
}
