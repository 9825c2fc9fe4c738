//! Same seed ⇒ same lab; a dry run (probe, tests) changes nothing; replication follows the
//! injectable clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use lab::domain::ManualClock;
use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn same_seed_same_lab() {
    let a = Lab::build(LabSpec::new(120, 77).with_clock(Arc::new(ManualClock::new()))).unwrap();
    let b = Lab::build(LabSpec::new(120, 77).with_clock(Arc::new(ManualClock::new()))).unwrap();
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.state_digest(), b.state_digest());
    let ha = a.hosts();
    let hb = b.hosts();
    for (x, y) in ha.iter().zip(&hb) {
        assert_eq!(x.fault, y.fault);
        assert_eq!(x.machine_sid, y.machine_sid);
        assert_eq!(
            x.local_admin.password.expose_secret(),
            y.local_admin.password.expose_secret()
        );
    }
    assert_eq!(
        a.repair_credentials().password.expose_secret(),
        b.repair_credentials().password.expose_secret()
    );
    let c = Lab::build(LabSpec::new(120, 78)).unwrap();
    assert_ne!(a.state_digest(), c.state_digest());
    // Same operations ⇒ same results (reset passwords come from the seeded RNG too).
    for lab in [&a, &b] {
        let id = first_with(lab, FaultKind::Snapshot);
        let who = local_admin(lab, id);
        run(
            lab,
            id,
            &who,
            &repair_reset("dc1.lab.test"),
            &stdin_for(&lab.repair_credentials()),
        );
    }
    assert_eq!(a.snapshot(), b.snapshot());
}

#[test]
fn dry_run_changes_nothing() {
    let lab = Lab::build(LabSpec::new(60, 3)).unwrap();
    let before = lab.snapshot();
    for h in lab.hosts() {
        let who = local_admin_or_ops(&lab, h.id);
        let Some(who) = who else { continue };
        run(&lab, h.id, &who, PROBE, b"");
        run(&lab, h.id, &who, &test_dc("dc1.lab.test"), b"");
        run(&lab, h.id, &who, &test_dc("dc2.lab.test"), b"");
        lab.execute(h.id, &who, "nltest /sc_query:lab.test", b"");
        lab.execute(h.id, &who, "nltest /dclist:lab.test", b"");
        let _ = lab.logon(h.id, "LAB", "tsrepair");
        let _ = lab.authorize_winrm(h.id, &who);
    }
    assert_eq!(lab.snapshot(), before);
}

fn local_admin_or_ops(lab: &Lab, id: lab::host::HostId) -> Option<lab::model::Identity> {
    let info = lab.host(id)?;
    match lab.logon(id, "", &info.local_admin.user) {
        lab::model::Logon::Verify { identity, .. } => Some(identity),
        _ => None,
    }
}

#[test]
fn replication_follows_the_clock() {
    let clock = ManualClock::new();
    let mut spec = LabSpec::healthy(2, 4).with_clock(Arc::new(clock.clone()));
    spec.replication_delay = Duration::from_secs(60);
    let lab = Lab::build(spec).unwrap();
    let info = lab.hosts().remove(0);
    assert!(lab.dc_reset_account(&info.computer_name, 0));
    let on_dc1 = lab.account_on_dc(&info.computer_name, 0).unwrap();
    assert_ne!(lab.account_on_dc(&info.computer_name, 1).unwrap(), on_dc1);
    clock.advance(Duration::from_secs(59));
    assert_ne!(lab.account_on_dc(&info.computer_name, 1).unwrap(), on_dc1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(lab.account_on_dc(&info.computer_name, 1).unwrap(), on_dc1);
    assert_eq!(on_dc1.sam_account_name, format!("{}$", info.computer_name));
    assert!(on_dc1.object_sid.starts_with("S-1-5-21-"));
}

#[test]
fn many_hosts_concurrently() {
    let lab = Lab::build(LabSpec::new(2000, 8)).unwrap();
    let hosts = lab.hosts();
    std::thread::scope(|s| {
        for chunk in hosts.chunks(250) {
            let lab = lab.clone();
            s.spawn(move || {
                for h in chunk {
                    let _ = lab.logon(h.id, "LAB", "tsrepair");
                    if let Some(who) = local_admin_or_ops(&lab, h.id) {
                        if lab.authorize_winrm(h.id, &who).is_ok() {
                            let out = lab.execute(h.id, &who, "nltest /sc_query:lab.test", b"");
                            assert_eq!(out.exit_code, 0);
                        }
                    }
                }
            });
        }
    });
}
