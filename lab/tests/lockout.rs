//! Account lockout as the lab's DCs apply it (`lab::lockout`, which cites MS-SAMR
//! 3.1.5.14.6 and Microsoft's lockout policy pages): a wrong password counts, the threshold
//! locks, a locked account refuses even its right password until the duration passes, the
//! observation window starts the count again, and a logon refused before the DC sees the
//! password (a broken channel, a deny-logon right) costs nothing. Over real WinRM (NTLM
//! pass-through) and through a cmdlet's `-Credential`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lab::domain::ManualClock;
use lab::faults::FaultKind;
use lab::lockout::{Lockout, LockoutPolicy, Verdict};
use lab::model::{Lab, LabSpec};
use lab::wire::{Endpoint, RunningLab, WireOptions};
use secrecy::ExposeSecret;
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Scheme};

fn clocked(clock: &ManualClock) -> Lockout {
    Lockout::new(Some(Arc::new(clock.clone())))
}

#[test]
fn the_threshold_locks_and_the_duration_unlocks() {
    let clock = ManualClock::new();
    let l = clocked(&clock);
    assert_eq!(l.policy().threshold, 5, "the lab's default: 5 attempts");
    for n in 1..=4 {
        assert_eq!(l.record("helpdesk", false), Verdict::WrongPassword);
        assert_eq!(l.bad_pwd_count("HelpDesk"), n, "any case names the account");
        assert!(!l.is_locked("helpdesk"));
    }
    // A right password in between does not reset the count (the pessimistic side).
    assert_eq!(l.record("helpdesk", true), Verdict::Accepted);
    assert_eq!(l.bad_pwd_count("helpdesk"), 4);
    assert_eq!(l.record("helpdesk", false), Verdict::WrongPassword);
    assert!(l.is_locked("helpdesk"), "the fifth wrong password locks");
    // Locked: the right password is refused too, and nothing more is counted.
    assert_eq!(l.record("helpdesk", true), Verdict::LockedOut);
    assert_eq!(l.record("helpdesk", false), Verdict::LockedOut);
    assert_eq!(l.wrong_passwords("helpdesk"), 5);
    assert_eq!(l.bad_pwd_count("helpdesk"), 5);
    // Other accounts are not touched.
    assert_eq!(l.record("tsrepair", true), Verdict::Accepted);
    // Until the lockout duration (15 minutes) has passed.
    clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(l.record("helpdesk", true), Verdict::LockedOut);
    clock.advance(Duration::from_secs(61));
    assert!(!l.is_locked("helpdesk"));
    assert_eq!(
        l.bad_pwd_count("helpdesk"),
        0,
        "an unlock clears badPwdCount"
    );
    assert_eq!(l.record("helpdesk", true), Verdict::Accepted);
}

#[test]
fn the_observation_window_starts_the_count_again_and_zero_never_locks() {
    let clock = ManualClock::new();
    let l = clocked(&clock);
    for _ in 0..4 {
        l.record("helpdesk", false);
    }
    clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(l.bad_pwd_count("helpdesk"), 0);
    l.record("helpdesk", false);
    assert_eq!(l.bad_pwd_count("helpdesk"), 1, "set to 1, not 5");
    assert!(!l.is_locked("helpdesk"));

    // The knob: a threshold of 2, and 0 (never).
    l.set_policy(LockoutPolicy {
        threshold: 2,
        ..LockoutPolicy::default()
    });
    l.record("helpdesk", false);
    assert!(l.is_locked("helpdesk"));
    l.unlock("helpdesk");
    assert_eq!(l.bad_pwd_count("helpdesk"), 0);
    l.set_policy(LockoutPolicy {
        threshold: 0,
        ..LockoutPolicy::default()
    });
    for _ in 0..50 {
        assert_eq!(l.record("helpdesk", false), Verdict::WrongPassword);
    }
    assert!(!l.is_locked("helpdesk"));
    assert_eq!(l.wrong_passwords("helpdesk"), 56);
}

fn session(ep: &Endpoint, user: &str, password: &str) -> Session {
    let mut cfg = SessionConfig::new(
        winrm::transport::Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            Scheme::Http,
        ),
        AuthMethod::Ntlm,
        user.to_string(),
        winrm::secret::secret(password),
    );
    cfg.operation_timeout = Duration::from_secs(10);
    cfg.read_timeout = Duration::from_secs(30);
    Session::new(cfg).unwrap()
}

/// Logs on to `ep` as `user` with `password`: `Ok` or the error (401 for a refusal).
async fn logon(ep: &Endpoint, user: &str, password: &str) -> Result<(), winrm::Error> {
    session(ep, user, password).connect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_logons_on_members_count_against_the_domain_account() {
    let lab = Lab::build(
        LabSpec::healthy(6, 11)
            .with_fault(FaultKind::DenyNetworkLogon, 1)
            .with_fault(FaultKind::Snapshot, 1),
    )
    .unwrap();
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let lab = running.lab().clone();
    let lockout = lab.lockout();
    let right = lab.helpdesk_credentials();
    let right_pw = right.password.expose_secret().to_string();
    let by_fault = |f: Option<FaultKind>| {
        running
            .endpoints()
            .iter()
            .find(|e| e.info.fault == f)
            .unwrap()
            .clone()
    };
    let healthy = by_fault(None);
    let deny = by_fault(Some(FaultKind::DenyNetworkLogon));
    let broken = by_fault(Some(FaultKind::Snapshot));

    logon(&healthy, &right.user, &right_pw).await.unwrap();
    assert_eq!(lockout.bad_pwd_count("helpdesk"), 0);

    // Refused before any DC saw the password: nothing is counted.
    let e = logon(&deny, &right.user, "wrong").await.unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    let e = logon(&broken, &right.user, "wrong").await.unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    assert_eq!(lockout.wrong_passwords("helpdesk"), 0);

    // A wrong password on a healthy member reaches the DC: counted, once per attempt.
    for n in 1..=4 {
        let e = logon(&healthy, &right.user, "wrong").await.unwrap_err();
        assert!(e.is_unauthorized(), "{e}");
        assert_eq!(lockout.bad_pwd_count("helpdesk"), n);
    }
    // A UPN names the same account; the fifth wrong password locks it.
    let e = logon(&healthy, "helpdesk@lab.test", "wrong")
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    assert!(lockout.is_locked("helpdesk"));
    // Now even the right password is refused, on every member, and not counted.
    for ep in [&healthy, &deny] {
        let e = logon(ep, &right.user, &right_pw).await.unwrap_err();
        assert!(e.is_unauthorized(), "{e}");
    }
    assert_eq!(lockout.wrong_passwords("helpdesk"), 5);
    // Other domain accounts and local accounts still log on.
    let admin = lab.domain_admin_credentials();
    logon(&healthy, &admin.user, admin.password.expose_secret())
        .await
        .unwrap();
    let local = &healthy.info.local_admin;
    logon(&healthy, &local.user, local.password.expose_secret())
        .await
        .unwrap();
    // An administrator unlocks it.
    lockout.unlock("helpdesk");
    logon(&healthy, &right.user, &right_pw).await.unwrap();
}

#[test]
fn a_cmdlet_credential_counts_as_a_bind_to_the_dc() {
    let lab = Lab::build(LabSpec::healthy(3, 5).with_fault(FaultKind::Snapshot, 1)).unwrap();
    let lockout = lab.lockout();
    lockout.set_policy(LockoutPolicy {
        threshold: 3,
        ..LockoutPolicy::default()
    });
    let id = first_with(&lab, FaultKind::Snapshot);
    let who = local_admin(&lab, id);
    let mut wrong = lab.repair_credentials();
    wrong.password = secrecy::SecretString::from("wrong".to_string());
    for n in 1..=3 {
        let out = run(
            &lab,
            id,
            &who,
            &repair_reset("dc1.lab.test"),
            &stdin_for(&wrong),
        );
        assert!(
            out.stdout_text().contains("password is incorrect")
                || error_text(&out.stderr).contains("password is incorrect"),
            "{out:?}"
        );
        assert_eq!(lockout.wrong_passwords("tsrepair"), n);
    }
    assert!(lockout.is_locked("tsrepair"));
    // Locked: the right credential is refused too, as Windows words it (Win32 1909), and
    // the member stays broken.
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_ne!(field(&out, "reset").as_deref(), Some("ok"), "{out:?}");
    assert!(
        out.stdout_text().contains("currently locked out")
            || error_text(&out.stderr).contains("currently locked out"),
        "{out:?}"
    );
    assert_eq!(lockout.wrong_passwords("tsrepair"), 3);
    lockout.unlock("tsrepair");
    let out = run(
        &lab,
        id,
        &who,
        &repair_reset("dc1.lab.test"),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(field(&out, "reset").as_deref(), Some("ok"), "{out:?}");
}
