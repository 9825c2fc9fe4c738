//! Leaving and rejoining the domain as a patched Windows fleet does (DOMAIN.md "Repairing
//! it", the (revised) rejoin bullets): `Remove-Computer` disables the object and needs
//! `-Force` under `-NonInteractive`; `Add-Computer` meets the KB5020276 reuse block unless
//! the object's creator, a privileged owner or the allow-list exempts it; a new object lands
//! in `CN=Computers` (or `-OUPath`) within the machine-account quota.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use lab::domain::{ManualClock, ReuseVerdict};
use lab::host::HostId;
use lab::model::{Credential, Lab, LabSpec};
use secrecy::ExposeSecret as _;
use std::sync::Arc;

fn lab_with(spec: LabSpec) -> Lab {
    let clock = ManualClock::new();
    Lab::build(spec.with_clock(Arc::new(clock))).unwrap()
}

fn healthy(hosts: usize) -> Lab {
    lab_with(LabSpec::healthy(hosts, 23))
}

fn leave(cred: &str) -> String {
    format!("{CRED_PREAMBLE}Remove-Computer {cred}-WorkgroupName WORKGROUP -Force\n")
}

fn join(extra: &str) -> String {
    format!("{CRED_PREAMBLE}Add-Computer -DomainName 'lab.test' -Credential $cred -Server 'dc1.lab.test' {extra}-Force\n")
}

/// A host whose object `deployer` made through the quota, and one a Domain Admin made.
fn deployer_and_admin_hosts(lab: &Lab) -> (HostId, HostId) {
    let deployer = lab.user_sid("deployer").unwrap();
    let hosts = lab.hosts();
    let by_deployer = hosts
        .iter()
        .find(|h| {
            h.account
                .as_ref()
                .is_some_and(|a| a.creator_sid.as_deref() == Some(deployer.as_str()))
        })
        .expect("the seed gives deployer some objects")
        .id;
    let by_admin = hosts
        .iter()
        .find(|h| h.account.as_ref().is_some_and(|a| a.creator_sid.is_none()))
        .expect("and Domain Admins the others")
        .id;
    (by_deployer, by_admin)
}

/// Leaves the domain with the repair account (which may disable objects); the host is
/// then in WORKGROUP.
fn unjoin_with_repair_account(lab: &Lab, id: HostId) {
    let who = local_admin(lab, id);
    let out = run(
        lab,
        id,
        &who,
        &leave("-UnjoinDomainCredential $cred "),
        &stdin_for(&lab.repair_credentials()),
    );
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    assert!(!lab.channel_status(id).unwrap().is_ok());
}

fn rejoin_as(lab: &Lab, id: HostId, cred: &Credential, extra: &str) -> lab::model::ExecResult {
    let who = local_admin(lab, id);
    run(lab, id, &who, &join(extra), &stdin_for(cred))
}

#[test]
fn every_object_has_an_owner_an_ou_and_sometimes_a_creator_from_the_seed() {
    // DOMAIN.md: "`mS-DS-CreatorSID` is set only when a non-privileged user created the
    // object through the machine-account quota; otherwise ... the owner from
    // `nTSecurityDescriptor`".
    let lab = healthy(20);
    let again = healthy(20);
    let da = lab.domain_admins_sid();
    let admin = lab.user_sid("Administrator").unwrap();
    let deployer = lab.user_sid("deployer").unwrap();
    for h in lab.hosts() {
        let a = h.account.clone().expect("every host has an object");
        assert_eq!(
            Some(&a),
            again.host(h.id).unwrap().account.as_ref(),
            "same seed, same owners"
        );
        assert_eq!(lab.account_dn(&h.computer_name), Some(a.dn.clone()));
        assert_eq!(
            lab.account_owner(&h.computer_name),
            Some(a.owner_sid.clone())
        );
        assert_eq!(lab.account_creator(&h.computer_name), a.creator_sid.clone());
        let view = lab.account_on_dc(&h.computer_name, 1).unwrap();
        assert_eq!(view.owner_sid.as_ref(), Some(&a.owner_sid));
        assert_eq!(view.creator_sid, a.creator_sid);
        assert_eq!(view.dn.as_ref(), Some(&a.dn));
        assert!(
            a.dn.ends_with(",OU=Workstations,DC=lab,DC=test")
                || a.dn.ends_with(",OU=Servers,DC=lab,DC=test"),
            "{}",
            a.dn
        );
        match a.creator_sid {
            Some(c) => {
                assert_eq!(c, deployer);
                assert_eq!(a.owner_sid, deployer);
            }
            None => assert!(a.owner_sid == da || a.owner_sid == admin, "{}", a.owner_sid),
        }
    }
    deployer_and_admin_hosts(&lab);
    assert!(
        lab.reuse_allowlist().is_empty(),
        "the allow-list is empty by default"
    );
    assert_eq!(lab.machine_account_quota(), 10);
}

#[test]
fn remove_computer_without_force_fails_on_the_prompt_under_noninteractive() {
    // DOMAIN.md: "`-Force` is required under `-NonInteractive` (otherwise it prompts and
    // fails)".
    let lab = healthy(3);
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    let who = local_admin(&lab, id);
    let script = format!(
        "{CRED_PREAMBLE}Remove-Computer -UnjoinDomainCredential $cred -WorkgroupName WORKGROUP\n"
    );
    let out = run(
        &lab,
        id,
        &who,
        &script,
        &stdin_for(&lab.repair_credentials()),
    );
    let err = error_text(&out.stderr);
    assert_eq!(out.exit_code, 1, "{err}");
    assert!(
        err.contains("Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."),
        "{err}"
    );
    assert!(err.contains("PSInvalidOperationException"), "{err}");
    assert!(lab.channel_status(id).unwrap().is_ok(), "still joined");
    assert!(lab.account_on_dc(&name, 0).unwrap().enabled);
}

#[test]
fn remove_computer_without_a_credential_cannot_disable_and_stays_joined() {
    // DOMAIN.md: NetUnjoinDomain with NETSETUP_ACCT_DELETE; "the credential only decides
    // whose rights are used" — a WinRM session's own have no effect on the DC.
    let lab = healthy(3);
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    let who = local_admin(&lab, id);
    let before = lab.state_digest();
    let out = run(&lab, id, &who, &leave(""), b"");
    let err = error_text(&out.stderr);
    assert!(
        err.contains(&format!(
            "Failed to unjoin computer '{name}' from domain 'lab.test' with the following error message: Access is denied."
        )),
        "{err}"
    );
    assert_eq!(lab.state_digest(), before, "nothing changed");
    assert!(lab.channel_status(id).unwrap().is_ok());
}

#[test]
fn remove_computer_disables_the_object_and_leaves_only_local_logons() {
    // DOMAIN.md: "`Remove-Computer` always calls NetUnjoinDomain with NETSETUP_ACCT_DELETE,
    // which **disables** the computer account in AD ... Afterwards the host is in a
    // workgroup: only a local account reaches it."
    let lab = healthy(3);
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    // helpdesk has no rights on computer objects: refused, nothing changes.
    let who = local_admin(&lab, id);
    let out = run(
        &lab,
        id,
        &who,
        &leave("-UnjoinDomainCredential $cred "),
        &stdin_for(&lab.helpdesk_credentials()),
    );
    assert!(error_text(&out.stderr).contains("Access is denied."));
    assert!(lab.channel_status(id).unwrap().is_ok());

    unjoin_with_repair_account(&lab, id);
    assert!(!lab.account_on_dc(&name, 0).unwrap().enabled, "disabled");
    assert!(domain_identity(&lab, id, "tsrepair").is_none());
    assert!(domain_identity(&lab, id, "Administrator").is_none());
    let local = local_admin(&lab, id);
    let probe = run(&lab, id, &local, PROBE, b"");
    assert_eq!(field(&probe, "domain").unwrap(), "WORKGROUP");
}

#[test]
fn remove_computer_without_a_dc_unjoins_locally_and_leaves_the_object_alone() {
    // DOMAIN.md: "with the DC unreachable (1355/53) and `-Force` it retries locally only".
    let lab = healthy(3);
    let id = first_healthy(&lab);
    let name = lab.host(id).unwrap().computer_name;
    lab.set_dc_reachability(id, false);
    let before = lab.account_on_dc(&name, 0).unwrap();
    unjoin_with_repair_account(&lab, id);
    assert_eq!(
        lab.account_on_dc(&name, 0).unwrap(),
        before,
        "object untouched"
    );
    assert!(before.enabled);
    assert!(domain_identity(&lab, id, "tsrepair").is_none());
}

#[test]
fn a_rejoin_that_meets_anothers_object_is_blocked_with_0xaac_and_changes_nothing() {
    // DOMAIN.md: "`Add-Computer` that finds an existing computer object: since the October
    // 2022 hardening (KB5020276, CVE-2022-38042) the join fails with 0xaac
    // NERR_AccountReuseBlockedByPolicy (2732) unless ...". "Whether a Domain Admin
    // *joining* an object someone else created is exempt is unclear ...: model it as
    // blocked."
    let lab = healthy(20);
    let (id, _) = deployer_and_admin_hosts(&lab);
    let name = lab.host(id).unwrap().computer_name;
    assert_eq!(
        lab.reuse_verdict(&name, "tsrepair"),
        Some(ReuseVerdict::Blocked)
    );
    assert_eq!(
        lab.reuse_verdict(&name, "Administrator"),
        Some(ReuseVerdict::Blocked)
    );
    unjoin_with_repair_account(&lab, id);
    let before = lab.state_digest();
    for cred in [lab.repair_credentials(), lab.domain_admin_credentials()] {
        let out = rejoin_as(&lab, id, &cred, "");
        let err = error_text(&out.stderr);
        assert!(
            err.contains(&format!(
                "Computer '{name}' failed to join domain 'lab.test' from its current workgroup 'WORKGROUP' with following error message: An account with the same name exists in Active Directory. Re-using the account was blocked by security policy."
            )),
            "{err}"
        );
        assert!(err.contains("FailToJoinDomainFromWorkgroup"), "{err}");
        assert_eq!(
            lab.state_digest(),
            before,
            "neither the host nor the DC changed"
        );
    }
    assert!(
        !lab.account_on_dc(&name, 0).unwrap().enabled,
        "still disabled"
    );
    let probe = run(&lab, id, &local_admin(&lab, id), PROBE, b"");
    assert_eq!(field(&probe, "domain").unwrap(), "WORKGROUP");
}

#[test]
fn the_creator_a_privileged_owner_or_the_allow_list_lets_a_rejoin_reuse_the_object() {
    // DOMAIN.md: "unless the joining account is the object's creator, or the object was
    // created by a member of Domain Admins (since March 2023 also Enterprise Admins and
    // built-in Administrators), or the object's owner is trusted by the 'Domain
    // controller: Allow computer account re-use during domain join' policy".
    let lab = healthy(20);
    let (by_deployer, by_admin) = deployer_and_admin_hosts(&lab);

    // The creator (deployer, no delegated rights) reuses its own object.
    let name = lab.host(by_deployer).unwrap().computer_name;
    let sid = lab.account_on_dc(&name, 0).unwrap().object_sid;
    assert_eq!(
        lab.reuse_verdict(&name, "deployer"),
        Some(ReuseVerdict::Creator)
    );
    unjoin_with_repair_account(&lab, by_deployer);
    let out = rejoin_as(&lab, by_deployer, &lab.deployer_credentials(), "");
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    let view = lab.account_on_dc(&name, 0).unwrap();
    assert!(view.enabled, "re-enabled");
    assert_eq!(view.object_sid, sid, "the same object");
    assert!(lab.channel_status(by_deployer).unwrap().is_ok());
    assert!(domain_identity(&lab, by_deployer, "tsrepair").is_some());

    // A Domain Admins-owned object: the repair account (not its creator) may reuse it.
    let name = lab.host(by_admin).unwrap().computer_name;
    let dn = lab.account_dn(&name).unwrap();
    assert_eq!(
        lab.reuse_verdict(&name, "tsrepair"),
        Some(ReuseVerdict::PrivilegedOwner)
    );
    unjoin_with_repair_account(&lab, by_admin);
    let out = rejoin_as(&lab, by_admin, &lab.repair_credentials(), "");
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    assert!(lab.channel_status(by_admin).unwrap().is_ok());
    assert_eq!(
        lab.account_dn(&name).unwrap(),
        dn,
        "a reused object stays in its OU"
    );

    // deployer's owner SID on the allow-list: the repair account may reuse its objects.
    let mut spec = LabSpec::healthy(20, 23);
    spec.reuse_allowlist = vec!["deployer".into()];
    let listed = lab_with(spec);
    assert_eq!(
        listed.reuse_allowlist(),
        vec![listed.user_sid("deployer").unwrap()]
    );
    let (id, _) = deployer_and_admin_hosts(&listed);
    let name = listed.host(id).unwrap().computer_name;
    assert_eq!(
        listed.reuse_verdict(&name, "tsrepair"),
        Some(ReuseVerdict::AllowListedOwner)
    );
    unjoin_with_repair_account(&listed, id);
    let out = rejoin_as(&listed, id, &listed.repair_credentials(), "");
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    assert!(listed.channel_status(id).unwrap().is_ok());
}

#[test]
fn a_join_without_an_object_creates_one_in_computers_within_the_quota() {
    // DOMAIN.md: "A new object lands in the default container unless `-OUPath` is given
    // ... Non-admins are limited by `ms-DS-MachineAccountQuota` (10, often 0)."
    let mut spec = LabSpec::healthy(4, 23);
    spec.machine_account_quota = 1;
    let lab = lab_with(spec);
    let hosts: Vec<_> = lab
        .hosts()
        .into_iter()
        .map(|h| (h.id, h.computer_name))
        .collect();
    let ((a, name_a), (b, name_b), (c, name_c)) =
        (hosts[0].clone(), hosts[1].clone(), hosts[2].clone());
    let tsrepair = lab.user_sid("tsrepair").unwrap();
    for (id, name) in [(a, &name_a), (b, &name_b), (c, &name_c)] {
        unjoin_with_repair_account(&lab, id);
        assert!(lab.delete_account(name, 0));
    }

    // tsrepair (not an admin) creates one object, in CN=Computers, as owner and creator.
    let out = rejoin_as(&lab, a, &lab.repair_credentials(), "");
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    let own = lab.account_ownership(&name_a).unwrap();
    assert_eq!(own.dn, format!("CN={name_a},CN=Computers,DC=lab,DC=test"));
    assert_eq!(own.owner_sid, tsrepair);
    assert_eq!(own.creator_sid.as_deref(), Some(tsrepair.as_str()));
    assert!(lab.channel_status(a).unwrap().is_ok());
    assert_eq!(lab.created_by("tsrepair"), 1);

    // Its second exceeds the quota of 1: Windows' 8557 message; nothing created.
    let before = lab.state_digest();
    let out = rejoin_as(&lab, b, &lab.repair_credentials(), "");
    let err = error_text(&out.stderr);
    assert!(
        err.contains("with following error message: Your computer could not be joined to the domain. You have exceeded the maximum number of computer accounts you are allowed to create in this domain. Contact your system administrator to have this limit reset or increased."),
        "{err}"
    );
    assert_eq!(lab.state_digest(), before);
    assert!(lab.account_on_dc(&name_b, 0).is_none());

    // A Domain Admin is not limited; -OUPath places the object; no creator SID is set.
    let out = rejoin_as(
        &lab,
        b,
        &lab.domain_admin_credentials(),
        "-OUPath 'OU=Workstations,DC=lab,DC=test' ",
    );
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    let own = lab.account_ownership(&name_b).unwrap();
    assert_eq!(
        own.dn,
        format!("CN={name_b},OU=Workstations,DC=lab,DC=test")
    );
    assert_eq!(own.creator_sid, None);
    assert!(lab.channel_status(b).unwrap().is_ok());

    // The object tsrepair created is its own to reuse later (it is the creator).
    assert_eq!(
        lab.reuse_verdict(&name_a, "tsrepair"),
        Some(ReuseVerdict::Creator)
    );
    let _ = name_c;
}

#[test]
fn laps_rotates_the_builtin_administrator_at_the_restart_after_a_join() {
    // DOMAIN.md "Repairing it": "a LAPS password rotated around them must be re-read".
    // Windows LAPS writes a new password after a join; the lab rotates at the restart
    // that completes the join (LabSpec::laps), never at one without a join.
    let mut spec = LabSpec::healthy(6, 23);
    spec.laps = true;
    let lab = lab_with(spec);
    let (_, id) = deployer_and_admin_hosts(&lab);
    let password = |lab: &Lab| {
        lab.host(id)
            .unwrap()
            .builtin_admin
            .password
            .expose_secret()
            .to_string()
    };
    let first = password(&lab);
    let restart = |lab: &Lab| {
        let who = local_admin(lab, id);
        let out = run(lab, id, &who, "Restart-Computer -Force\n", b"");
        assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    };

    unjoin_with_repair_account(&lab, id);
    restart(&lab);
    assert_eq!(password(&lab), first, "no join, no rotation");

    let out = rejoin_as(&lab, id, &lab.domain_admin_credentials(), "");
    assert_eq!(out.exit_code, 0, "{}", error_text(&out.stderr));
    assert_eq!(password(&lab), first, "not before the restart");
    restart(&lab);
    let rotated = password(&lab);
    assert_ne!(rotated, first, "rotated at the restart after the join");
    // The host is healthy in the domain.
    assert!(lab.channel_status(id).unwrap().is_ok());
    restart(&lab);
    assert_eq!(password(&lab), rotated, "once per join");
}
