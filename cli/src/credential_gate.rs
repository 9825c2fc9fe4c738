//! Account-lockout safety (issue 16): a domain credential is checked on one host before
//! it is used on many, and a wrong password stops its use everywhere at once.
//!
//! Domains commonly lock an account after 5 to 10 wrong passwords (the "Account lockout
//! threshold" policy); a sweep that sent a mistyped or stale password to two thousand
//! hosts at once would lock the account on the first wave. So every distinct domain
//! credential (user and password: the connecting account, the logon-test account, the
//! repair account on a credential script's stdin) passes a [`Gate`]:
//!
//! - **Checked with a DC first** when the sweep has DC access (`--ldap`, the Samba lab):
//!   one LDAPS simple bind as the credential before any host is contacted
//!   (`crate::dc::verify_credentials`). A bind refused with LDAP result 49
//!   (invalidCredentials: AD's `data 52e` bad password, `775` locked out, …; Microsoft's
//!   "LDAP error codes" and MS-ADTS) closes the gate at once; accepted, it opens it. A DC
//!   that cannot be reached decides nothing, and the hosts check it as below.
//! - **Unverified**: one host at a time uses it (the others wait). Accepted there: the
//!   gate opens and every host goes on at once. Refused (HTTP 401, or the script's "user
//!   name or password is incorrect"): one more, *different* host tries; refused again,
//!   the gate closes. An answer that says nothing of the password (a timeout, a host that
//!   does not answer, a logon-test refusal from a host whose own secure channel is broken,
//!   where the DC never saw the password) passes the turn on without counting.
//! - **Closed**: nothing more is sent; every remaining host's result says
//!   "credential USER not used: refused by hosts A and B; check the password ...". No
//!   password is ever in the text.
//! - **Open**: used freely. A 401 from one host after that is that host's own problem (a
//!   deny-logon right, UAC filtering): it is not retried and does not close the gate.
//!
//! So at most **2 wrong attempts** reach the domain per credential and run, well under
//! any lockout threshold in use (the lab locks at 5; Microsoft's baseline is 10). A 401 is
//! not proof of a wrong password (a `deny-network-logon` host refuses the right one), which
//! is why one refusal never closes the gate and why the second try is on another host.
//! Nothing is retried on one host either: a host that refused a credential is never sent
//! it again in the same step ([`Gate::enter`] refuses it, and `WinrmRemote` keeps a refused
//! credential from being sent again, across reconnects).
//!
//! Local accounts (`.\user`, or a bare name: Windows looks a bare name up in the host's
//! own SAM first) are not gated: each host has its own, and the built-in Administrator is
//! exempt from lockout by default.
//!
//! One process runs one sweep, so the gates are process-wide ([`Gates::global`]): a
//! credential verified by the probe phase stays verified for the repair phase.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

/// Refusals (on different hosts) that close a gate while the credential is unverified:
/// also the most wrong attempts the sweep can make with one credential.
pub const MAX_UNVERIFIED_REFUSALS: usize = 2;

/// How long one host's turn holds the others back. A host that hangs (accepts and never
/// answers) or black-holes its SYN would otherwise hold every other host's first use of
/// the credential until its own deadline, and with it the whole first wave of the sweep
/// (found by cli/tests/load.rs). Past the lease the next host takes a turn while the
/// first one's attempt is still out; whichever verdict comes first decides, and refusals
/// still close the gate at [`MAX_UNVERIFIED_REFUSALS`]. An attempt that never answers
/// may or may not have reached a DC: such attempts are the only ones beyond that bound,
/// one per lease at most.
pub const TURN_LEASE: Duration = Duration::from_secs(5);

/// Is `user` a domain account (gated) rather than a host's local one? `DOMAIN\user` and
/// `user@domain` are; `.\user` and a bare `user` are not.
pub fn is_domain_account(user: &str) -> bool {
    match user.split_once('\\') {
        Some((domain, _)) => !domain.is_empty() && domain != ".",
        None => user.contains('@'),
    }
}

/// Every credential's gate, one per distinct (user, password).
#[derive(Default)]
pub struct Gates {
    gates: Mutex<Vec<(String, SecretString, Arc<Gate>)>>,
}

impl fmt::Debug for Gates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gates").finish_non_exhaustive()
    }
}

impl Gates {
    /// The process's gates.
    pub fn global() -> &'static Gates {
        static GATES: OnceLock<Gates> = OnceLock::new();
        GATES.get_or_init(Gates::default)
    }

    /// The gate of `user` with `password`; `None` for a local account (not gated).
    pub fn gate(&self, user: &str, password: &SecretString) -> Option<Arc<Gate>> {
        if !is_domain_account(user) {
            return None;
        }
        let key = user.to_ascii_lowercase();
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, g)) = gates
            .iter()
            .find(|(u, p, _)| *u == key && p.expose_secret() == password.expose_secret())
        {
            return Some(g.clone());
        }
        let gate = Arc::new(Gate::new(user));
        gates.push((key, password.clone(), gate.clone()));
        Some(gate)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Not known to be right: one host at a time (`turn`: the turn in progress, its number
    /// and when it began), `refused_by` so far.
    Unverified {
        turn: Option<(u64, Instant)>,
        refused_by: Vec<String>,
    },
    /// Accepted somewhere.
    Open,
    /// Refused by these hosts: not used any more.
    Closed { refused_by: Vec<String> },
    /// A DC refused a bind as it (`reason`, e.g. AD's "bad user name or password"): not
    /// used any more.
    DcRefused { dc: String, reason: String },
}

/// One credential's gate (see the module docs).
pub struct Gate {
    user: String,
    phase: Mutex<Phase>,
    changed: tokio::sync::Notify,
    /// The hosts it was sent to while unverified, in order (for tests and the log).
    tried: Mutex<VecDeque<String>>,
    /// Turns given so far (their numbers).
    turns: std::sync::atomic::AtomicU64,
    /// [`TURN_LEASE`] (shorter in unit tests).
    lease: Duration,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("user", &self.user)
            .field("phase", &*self.lock())
            .finish()
    }
}

/// Why a credential is not sent to a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotUsed {
    /// The gate closed: two hosts refused it.
    #[error("credential {user} not used: refused by hosts {}; check the password (vault/credentials file) to avoid locking the account", .refused_by.join(" and "))]
    Refused {
        /// The account.
        user: String,
        /// The hosts that refused it.
        refused_by: Vec<String>,
    },
    /// A domain controller refused an LDAPS bind as it: definitive.
    #[error("credential {user} not used: domain controller {dc} refused it ({reason}); check the password (vault/credentials file) to avoid locking the account")]
    RefusedByDc {
        /// The account.
        user: String,
        /// The DC (its URL).
        dc: String,
        /// AD's reason.
        reason: String,
    },
    /// This host refused it already, and it is not known to be right: not sent again.
    #[error("credential {user} not sent to {host} again: it refused it (a credential is never retried on a host)")]
    AlreadyRefused {
        /// The account.
        user: String,
        /// The host.
        host: String,
    },
}

impl NotUsed {
    /// The text a host's result carries.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// What [`Gate::enter`] lets a host do.
#[derive(Debug)]
pub enum Pass {
    /// The credential is known to be right: use it.
    Open,
    /// This host is the one trying it now: say how it went ([`Turn`]).
    Turn(Turn),
}

/// A host's turn with an unverified credential. Dropped without a verdict (the host's
/// attempt was cut short), it counts as a refusal: the pessimistic side, since the
/// password may have reached the DC.
#[derive(Debug)]
pub struct Turn {
    gate: Arc<Gate>,
    host: String,
    /// The turn's number: a late verdict of a turn whose lease ran out does not end the
    /// turn of the host after it.
    number: u64,
    settled: bool,
}

impl Turn {
    /// The host accepted the credential: the gate opens for everyone.
    pub fn accepted(mut self) {
        self.settled = true;
        self.gate.settle(&self.host, self.number, Verdict::Accepted);
    }

    /// The host refused it (a wrong password, as far as anyone can tell).
    pub fn refused(mut self) {
        self.settled = true;
        self.gate.settle(&self.host, self.number, Verdict::Refused);
    }

    /// The attempt said nothing about the password: the next host takes the turn.
    pub fn inconclusive(mut self) {
        self.settled = true;
        self.gate
            .settle(&self.host, self.number, Verdict::Inconclusive);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.settled {
            self.gate.settle(&self.host, self.number, Verdict::Refused);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
    Inconclusive,
}

impl Gate {
    fn new(user: &str) -> Self {
        Gate {
            user: user.to_string(),
            phase: Mutex::new(Phase::Unverified {
                turn: None,
                refused_by: Vec::new(),
            }),
            turns: std::sync::atomic::AtomicU64::new(0),
            lease: TURN_LEASE,
            changed: tokio::sync::Notify::new(),
            tried: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account this gate is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Is the credential known to be right?
    pub fn is_open(&self) -> bool {
        *self.lock() == Phase::Open
    }

    /// The hosts that refused it so far.
    pub fn refused_by(&self) -> Vec<String> {
        match &*self.lock() {
            Phase::Unverified { refused_by, .. } | Phase::Closed { refused_by } => {
                refused_by.clone()
            }
            Phase::Open | Phase::DcRefused { .. } => Vec::new(),
        }
    }

    /// Why it is not used, when it is not (closed by hosts or by a DC).
    pub fn not_used(&self) -> Option<NotUsed> {
        match &*self.lock() {
            Phase::Closed { refused_by } => Some(NotUsed::Refused {
                user: self.user.clone(),
                refused_by: refused_by.clone(),
            }),
            Phase::DcRefused { dc, reason } => Some(NotUsed::RefusedByDc {
                user: self.user.clone(),
                dc: dc.clone(),
                reason: reason.clone(),
            }),
            Phase::Unverified { .. } | Phase::Open => None,
        }
    }

    /// Is the credential still unverified (neither opened nor closed)?
    pub fn is_unverified(&self) -> bool {
        matches!(&*self.lock(), Phase::Unverified { .. })
    }

    /// A DC answered a bind as this credential (definitive, where hosts' 401s are not):
    /// `Ok` opens the gate, `Err(reason)` closes it. A gate already decided stays so.
    pub fn dc_verdict(&self, dc: &str, verdict: Result<(), String>) {
        {
            let mut phase = self.lock();
            if !matches!(&*phase, Phase::Unverified { .. }) {
                return;
            }
            *phase = match verdict {
                Ok(()) => Phase::Open,
                Err(reason) => {
                    tracing::warn!(user = %self.user, dc, "credential refused by the DC ({reason}): not used");
                    Phase::DcRefused {
                        dc: dc.to_string(),
                        reason,
                    }
                }
            };
        }
        self.changed.notify_waiters();
    }

    /// The hosts it was sent to while unverified, in order.
    pub fn tried(&self) -> Vec<String> {
        self.tried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Waits until `host` may use the credential: at once when it is known to be right,
    /// after the host before it when it is not (one host at a time), never when it was
    /// refused twice or by this very host. The wait ends with each verdict (there are at
    /// most as many as hosts) or when the turn in progress outlives its [`TURN_LEASE`].
    pub async fn enter(self: &Arc<Self>, host: &str) -> Result<Pass, NotUsed> {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let lease_ends: Instant;
            {
                let mut phase = self.lock();
                match &mut *phase {
                    Phase::Open => return Ok(Pass::Open),
                    Phase::Closed { refused_by } => {
                        return Err(NotUsed::Refused {
                            user: self.user.clone(),
                            refused_by: refused_by.clone(),
                        })
                    }
                    Phase::DcRefused { dc, reason } => {
                        return Err(NotUsed::RefusedByDc {
                            user: self.user.clone(),
                            dc: dc.clone(),
                            reason: reason.clone(),
                        })
                    }
                    Phase::Unverified { refused_by, .. }
                        if refused_by.iter().any(|h| h == host) =>
                    {
                        return Err(NotUsed::AlreadyRefused {
                            user: self.user.clone(),
                            host: host.to_string(),
                        })
                    }
                    Phase::Unverified { turn, .. }
                        if turn.is_none_or(|(_, began)| began.elapsed() >= self.lease) =>
                    {
                        if let Some((n, _)) = turn {
                            tracing::debug!(user = %self.user, host, turn = *n, "the host trying the credential has not answered within its lease: another host tries it");
                        }
                        let number = self
                            .turns
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        *turn = Some((number, Instant::now()));
                        self.tried
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push_back(host.to_string());
                        tracing::debug!(user = %self.user, host, "verifying the credential on this host first");
                        return Ok(Pass::Turn(Turn {
                            gate: self.clone(),
                            host: host.to_string(),
                            number,
                            settled: false,
                        }));
                    }
                    Phase::Unverified { turn, .. } => {
                        lease_ends =
                            turn.map_or_else(Instant::now, |(_, began)| began + self.lease);
                    }
                }
            }
            // A verdict, or the lease of the turn in progress running out.
            let _ = tokio::time::timeout_at(lease_ends.into(), changed).await;
        }
    }

    /// The turn in progress after `number`'s verdict: ended when it was `number`'s, kept
    /// when a later host holds it (`number`'s lease ran out).
    fn after_turn(turn: Option<(u64, Instant)>, number: u64) -> Option<(u64, Instant)> {
        turn.filter(|(n, _)| *n != number)
    }

    fn settle(&self, host: &str, number: u64, verdict: Verdict) {
        {
            let mut phase = self.lock();
            let next = match (&*phase, verdict) {
                (Phase::Unverified { .. }, Verdict::Accepted) => Some(Phase::Open),
                (Phase::Unverified { refused_by, turn }, Verdict::Refused) => {
                    let mut refused_by = refused_by.clone();
                    if !refused_by.iter().any(|h| h == host) {
                        refused_by.push(host.to_string());
                    }
                    Some(if refused_by.len() >= MAX_UNVERIFIED_REFUSALS {
                        tracing::warn!(
                            user = %self.user,
                            hosts = %refused_by.join(", "),
                            "credential refused by {MAX_UNVERIFIED_REFUSALS} hosts: not used any more"
                        );
                        Phase::Closed { refused_by }
                    } else {
                        Phase::Unverified {
                            turn: Self::after_turn(*turn, number),
                            refused_by,
                        }
                    })
                }
                (Phase::Unverified { refused_by, turn }, Verdict::Inconclusive) => {
                    Some(Phase::Unverified {
                        turn: Self::after_turn(*turn, number),
                        refused_by: refused_by.clone(),
                    })
                }
                // Open and closed gates stay so.
                _ => None,
            };
            if let Some(next) = next {
                *phase = next;
            }
        }
        self.changed.notify_waiters();
    }
}

/// The domain-logon test's verdict on its credential, held until the host's probe says
/// whether a refusal means anything: a member whose own secure channel is broken (or that
/// is not joined) refuses every domain logon without asking a DC, so its 401 says nothing
/// of the password. Made by the sweep per host; dropped unsettled (the host's observation
/// was cut short), a held refusal counts.
#[derive(Debug, Clone, Default)]
pub struct LogonSettle {
    held: Arc<Mutex<Option<Turn>>>,
    not_used: Arc<Mutex<Option<String>>>,
}

impl LogonSettle {
    /// Holds a refused turn until [`LogonSettle::settle`].
    pub(crate) fn hold(&self, turn: Turn) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(turn);
    }

    /// The logon test was not made: its credential is not used ([`NotUsed`]'s text).
    pub(crate) fn not_used(&self, message: String) {
        *self.not_used.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }

    /// Settles a held refusal with the host's observation: explained by the probe (the
    /// host's channel is broken or it is not joined), it passes the turn on; otherwise it
    /// counts. A logon test not made because its credential is not used says so in the
    /// observation's error.
    pub fn settle(&self, obs: &mut playbooks::HostObservation) {
        let turn = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(turn) = turn {
            match &obs.probe {
                Some(p) if refusal_explained(p) => turn.inconclusive(),
                _ => turn.refused(),
            }
        }
        let not_used = self
            .not_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(msg) = not_used {
            let msg = format!("domain logon test: {msg}");
            obs.error = Some(match obs.error.take() {
                Some(e) => format!("{e}; {msg}"),
                None => msg,
            });
        }
    }
}

/// Does the probe show a member that could not have passed a domain logon to a DC (so a
/// 401 says nothing of the password)? Not joined, or its live channel test failed; a DC
/// checks passwords itself, so never for a DC. A probe that did not run the live test
/// explains nothing.
fn refusal_explained(p: &playbooks::Probe) -> bool {
    if matches!(p.domain_role, Some(4 | 5)) {
        return false;
    }
    // nltest exits 0 whenever its Netlogon call itself succeeded, whatever channel status
    // it prints (see lab/src/exec/native.rs): the parsed live status decides.
    p.part_of_domain == Some(false)
        || p.channel_ok() == Some(false)
        || p.sc_verify_exit.is_some_and(|c| c != 0)
}

/// What a credential script's output says of the credential it carried: the DC refused
/// it (`Some(false)`), accepted it (`Some(true)`: the script succeeded, or the account
/// lacked a right, which the DC says only after checking the password), or nothing.
pub fn script_verdict(stdout: &str, stderr: &str) -> Option<bool> {
    let text = format!("{stdout}\n{stderr}").to_ascii_lowercase();
    // Win32 1326 ERROR_LOGON_FAILURE ("The user name or password is incorrect.", older
    // "Logon failure: unknown user name or bad password.") and 1909
    // ERROR_ACCOUNT_LOCKED_OUT ("The referenced account is currently locked out").
    let refused = [
        "user name or password is incorrect",
        "unknown user name or bad password",
        "currently locked out",
    ];
    if refused.iter().any(|r| text.contains(r)) {
        return Some(false);
    }
    if text.lines().any(|l| l.trim() == "ts.reset=ok") || text.contains("access is denied") {
        return Some(true);
    }
    None
}

/// Splits a credential script's stdin (`user\r\npassword\r\n`, `playbooks::StdinPayload`)
/// into the user and the password (a copy that is wiped when dropped).
pub fn stdin_credential(stdin: &[u8]) -> Option<(String, SecretString)> {
    let text = std::str::from_utf8(stdin).ok()?;
    let (user, rest) = text.split_once("\r\n")?;
    let password = rest.strip_suffix("\r\n").unwrap_or(rest);
    if user.is_empty() || password.contains('\n') {
        return None;
    }
    Some((user.to_string(), SecretString::from(password.to_string())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn only_domain_accounts_are_gated_and_each_password_has_its_gate() {
        let gates = Gates::default();
        assert!(gates.gate("Administrator", &pw("a")).is_none());
        assert!(gates.gate(".\\Administrator", &pw("a")).is_none());
        let a = gates.gate("LAB\\helpdesk", &pw("a")).unwrap();
        let b = gates.gate("lab\\HELPDESK", &pw("a")).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the same account and password: one gate"
        );
        let c = gates.gate("LAB\\helpdesk", &pw("b")).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "another password: another gate");
        assert!(gates.gate("helpdesk@lab.test", &pw("a")).is_some());
    }

    #[tokio::test]
    async fn a_turn_that_outlives_its_lease_lets_another_host_try() {
        let mut gate = Gate::new("LAB\\svc");
        gate.lease = Duration::from_millis(500);
        let gate = Arc::new(gate);
        // ws1 hangs with its turn.
        let Ok(Pass::Turn(hung)) = gate.enter("ws1").await else {
            panic!("the first host gets the turn")
        };
        // ws2 waits no longer than the lease (bounded here by a generous guard).
        let Ok(Ok(Pass::Turn(t2))) =
            tokio::time::timeout(Duration::from_secs(30), gate.enter("ws2")).await
        else {
            panic!("the next host gets a turn once the lease ran out")
        };
        // ws1's late inconclusive verdict does not end ws2's turn: ws3 still waits.
        hung.inconclusive();
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter("ws3").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "ws2's turn is still on");
        t2.accepted();
        assert!(matches!(waiting.await.unwrap(), Ok(Pass::Open)));
    }

    #[tokio::test]
    async fn two_refusals_on_two_hosts_close_the_gate_for_everyone() {
        let gate = Arc::new(Gate::new("LAB\\svc"));
        let Ok(Pass::Turn(t)) = gate.enter("ws1").await else {
            panic!("the first host gets the turn")
        };
        // While ws1 tries, ws2 waits.
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter("ws2").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        t.refused();
        let Ok(Pass::Turn(t2)) = waiting.await.unwrap() else {
            panic!("the next host gets the turn")
        };
        // The host that refused it is not sent it again.
        let again = gate.enter("ws1").await.unwrap_err();
        assert!(
            again.message().contains("not sent to ws1 again"),
            "{again:?}"
        );
        t2.refused();
        let closed = gate.enter("ws3").await.unwrap_err();
        assert_eq!(
            closed.message(),
            "credential LAB\\svc not used: refused by hosts ws1 and ws2; check the password (vault/credentials file) to avoid locking the account"
        );
        assert_eq!(gate.tried(), ["ws1", "ws2"]);
    }

    #[tokio::test]
    async fn one_acceptance_opens_it_and_inconclusive_answers_pass_the_turn() {
        let gate = Arc::new(Gate::new("LAB\\svc"));
        let Ok(Pass::Turn(t)) = gate.enter("ws1").await else {
            panic!()
        };
        t.inconclusive();
        let Ok(Pass::Turn(t)) = gate.enter("ws2").await else {
            panic!()
        };
        t.refused();
        let Ok(Pass::Turn(t)) = gate.enter("ws3").await else {
            panic!()
        };
        t.accepted();
        assert!(gate.is_open());
        assert!(matches!(gate.enter("ws2").await, Ok(Pass::Open)));
        assert!(matches!(gate.enter("ws4").await, Ok(Pass::Open)));
    }

    #[tokio::test]
    async fn a_turn_cut_short_counts_as_a_refusal() {
        let gate = Arc::new(Gate::new("LAB\\svc"));
        let Ok(Pass::Turn(t)) = gate.enter("ws1").await else {
            panic!()
        };
        drop(t);
        assert_eq!(gate.refused_by(), ["ws1"]);
    }

    #[tokio::test]
    async fn a_logon_refusal_counts_unless_the_probe_shows_the_host_could_not_ask_a_dc() {
        let gate = Arc::new(Gate::new("LAB\\helpdesk"));
        let connected = playbooks::Access::Connected {
            user: "Administrator".into(),
            local: true,
        };
        // A member whose live channel test failed: its 401 says nothing.
        let settle = LogonSettle::default();
        let Ok(Pass::Turn(t)) = gate.enter("broken").await else {
            panic!()
        };
        settle.hold(t);
        let mut obs = playbooks::HostObservation::new("broken", "broken:5985", connected.clone());
        obs.probe = Some(playbooks::Probe {
            part_of_domain: Some(true),
            domain_role: Some(1),
            sc_verify_exit: Some(5),
            ..playbooks::Probe::default()
        });
        settle.settle(&mut obs);
        assert!(gate.refused_by().is_empty());
        // A member with a working channel: it counts.
        let settle = LogonSettle::default();
        let Ok(Pass::Turn(t)) = gate.enter("healthy").await else {
            panic!()
        };
        settle.hold(t);
        let mut obs = playbooks::HostObservation::new("healthy", "healthy:5985", connected);
        obs.probe = Some(playbooks::Probe {
            part_of_domain: Some(true),
            domain_role: Some(1),
            sc_verify_exit: Some(0),
            ..playbooks::Probe::default()
        });
        settle.settle(&mut obs);
        assert_eq!(gate.refused_by(), ["healthy"]);
        // A DC's bind refusal closes it at once; the hosts' results say why.
        gate.dc_verdict("ldaps://dc1", Err("bad user name or password".into()));
        let settle = LogonSettle::default();
        let e = gate.enter("other").await.unwrap_err();
        settle.not_used(e.message());
        let mut obs =
            playbooks::HostObservation::new("other", "other:5985", playbooks::Access::Timeout);
        settle.settle(&mut obs);
        assert_eq!(
            obs.error.as_deref(),
            Some("domain logon test: credential LAB\\helpdesk not used: domain controller ldaps://dc1 refused it (bad user name or password); check the password (vault/credentials file) to avoid locking the account")
        );
    }

    #[test]
    fn script_verdicts_and_stdin() {
        assert_eq!(
            script_verdict("ts.reset_error=The user name or password is incorrect.", ""),
            Some(false)
        );
        assert_eq!(script_verdict("ts.reset=ok\r\n", ""), Some(true));
        assert_eq!(
            script_verdict("ts.reset_error=Access is denied", ""),
            Some(true)
        );
        assert_eq!(
            script_verdict("ts.reset_error=The RPC server is unavailable", ""),
            None
        );
        let (u, p) = stdin_credential(b"LAB\\tsrepair\r\nS3cret\r\n").unwrap();
        assert_eq!(u, "LAB\\tsrepair");
        assert_eq!(p.expose_secret(), "S3cret");
        assert!(stdin_credential(b"no line break").is_none());
    }
}
