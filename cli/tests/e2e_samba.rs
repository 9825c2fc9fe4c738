//! End to end against real Active Directory objects: the lab's member hosts keep their
//! computer accounts in the Samba AD DC pair (`trustsweep_tests::samba`), and the binary
//! reaches the DCs over LDAPS with `--ldap`: DC-side evidence instead of per-DC tests on
//! the members, and `repair --allow-dc-reset` resetting an account as the repair account.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use lab::faults::FaultKind;
use lab::model::{ChannelStatus, Directory, Lab, LabSpec};
use lab::samba::SambaConfig;
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use serde_json::Value;

async fn trustsweep(args: &[String]) -> Output {
    common::run_trustsweep(args, &[]).await
}

fn json(out: &Output) -> Value {
    trustsweep_tests::json_stdout(out)
}

fn host<'a>(doc: &'a Value, name: &str) -> &'a Value {
    trustsweep_tests::report_host(doc, name)
}

/// Every PowerShell script and command line the hosts received.
fn commands_sent(running: &RunningLab) -> Vec<String> {
    running
        .command_log()
        .iter()
        .map(|line| {
            let mut words = line.split(' ');
            let cmd = words.next().unwrap_or("");
            let args: Vec<String> = words.map(str::to_string).collect();
            match winrm::powershell::script_from_command_line(cmd, &args) {
                Some(Ok(script)) => script,
                _ => line.clone(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_read_the_dcs_and_reset_accounts_over_ldaps() {
    let samba = trustsweep_tests::samba::samba_lab();
    let facts = samba.facts_file();
    let mut spec = LabSpec::healthy(9, 21)
        .with_fault(FaultKind::Snapshot, 2)
        .with_fault(FaultKind::DcReset, 1)
        .with_fault(FaultKind::StaleDc, 1)
        .with_fault(FaultKind::DisabledAccount, 1)
        .with_fault(FaultKind::DeletedAccount, 1)
        .with_fault(FaultKind::Clone, 1);
    spec.directory = Directory::Samba(Box::new(SambaConfig::from_facts_file(&facts).unwrap()));
    spec.name_prefix = "TSLE".into();
    // Half the objects owned by a non-admin: the rejoin preflight must tell them apart.
    spec.deployer_created_one_in = 2;
    let lab = tokio::task::spawn_blocking(move || Lab::build(spec).unwrap())
        .await
        .unwrap();
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let eps = running.endpoints().to_vec();
    let with = |k: FaultKind| {
        eps.iter()
            .filter(|e| e.info.fault == Some(k))
            .collect::<Vec<_>>()
    };
    let lag = with(FaultKind::StaleDc)[0].clone();
    let snapshot = with(FaultKind::Snapshot)[0].clone();
    // Nobody can get into this one: its local Administrator password is unknown, and the
    // domain account is refused (broken trust).
    let locked = with(FaultKind::Snapshot)[1].clone();
    let yaml = running.inventory_yaml().replace(
        locked.info.local_admin.password.expose_secret(),
        "not-the-password",
    );
    let inv = common::write_inventory("e2e-samba", &yaml);

    let dc_args = |cmd: &str| -> Vec<String> {
        let mut v: Vec<String> = vec![
            cmd.into(),
            "-i".into(),
            inv.display().to_string(),
            "--format".into(),
            "json".into(),
        ];
        v.extend(
            [
                "--ldap",
                "ldaps://127.0.0.10",
                "--ldap-dc",
                "ldaps://127.0.0.10",
                "--ldap-dc",
                "ldaps://127.0.0.11",
            ]
            .map(String::from),
        );
        v.extend([
            "--ca-file".to_string(),
            samba.fact("LAB_CA_FILE").to_string(),
        ]);
        v
    };

    // check: the DCs' copies of each account, read as the repair account, tell a stale DC
    // from a stale password; no member is asked to test each DC.
    let out = trustsweep(&dc_args("check")).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let lag_entry = host(&doc, &lag.info.address);
    assert_eq!(lag_entry["diagnosis"]["kind"], "stale_dc", "{lag_entry:#}");
    assert_eq!(
        lag_entry["diagnosis"]["newest"][0], "dc1.lab.test",
        "{lag_entry:#}"
    );
    let evidence = lag_entry["evidence"].to_string();
    assert!(
        evidence.contains("computer account on dc1.lab.test: pwdLastSet"),
        "{evidence}"
    );
    assert!(
        evidence.contains("computer account on dc2.lab.test: pwdLastSet"),
        "{evidence}"
    );
    for e in with(FaultKind::DcReset).into_iter().chain([&snapshot]) {
        assert_eq!(
            host(&doc, &e.info.address)["diagnosis"]["kind"],
            "stale_password",
            "{}",
            e.info.address
        );
    }
    // Nobody can log on there: 401s are evidence of nothing, and the DCs agree on its
    // account, so it is an access problem, not a broken trust.
    assert_eq!(
        host(&doc, &locked.info.address)["diagnosis"]["kind"],
        "unauthorized"
    );
    for e in with(FaultKind::Clone) {
        assert_eq!(
            host(&doc, &e.info.address)["diagnosis"]["kind"],
            "name_twin"
        );
    }
    // Only the DCs tell a disabled account from a deleted one (both answer 1787).
    let disabled = with(FaultKind::DisabledAccount)[0].clone();
    assert_eq!(
        host(&doc, &disabled.info.address)["diagnosis"]["kind"],
        "account_disabled"
    );
    let deleted = with(FaultKind::DeletedAccount)[0].clone();
    assert_eq!(
        host(&doc, &deleted.info.address)["diagnosis"]["kind"],
        "account_deleted"
    );
    assert!(
        !commands_sent(&running)
            .iter()
            .any(|c| c.contains("Test-ComputerSecureChannel -Server")),
        "with DC access the members are not asked to test each DC"
    );

    // plan: changes nothing, in AD either.
    let before = running.lab().state_digest();
    let mut args = dc_args("plan");
    args.push("--allow-dc-reset".into());
    let out = trustsweep(&args).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan_doc = json(&out);
    assert!(
        host(&plan_doc, &locked.info.address)["plan"]["actions"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no DC-side reset inferred from 401s"
    );
    args.extend(["--dc-reset-host".to_string(), locked.info.address.clone()]);
    let out = trustsweep(&args).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        running.lab().state_digest(),
        before,
        "plan must not change any host or DC"
    );
    let plan_doc = json(&out);
    let plan = &host(&plan_doc, &locked.info.address)["plan"];
    assert_eq!(plan["actions"][0]["action"], "dc_reset_account", "{plan:#}");
    assert_eq!(plan["actions"][0]["dc"], "dc1.lab.test");

    // --allow-restore: the Recycle Bin preflight reads the deleted object over LDAPS. The
    // lab's forest has no Recycle Bin, so the object is at best a tombstone without its
    // password, and tsrepair cannot even list Deleted Objects: no restore is planned, and
    // the plan says why.
    let mut args = dc_args("plan");
    args.push("--allow-restore".into());
    let out = trustsweep(&args).await;
    assert_eq!(
        running.lab().state_digest(),
        before,
        "plan must not change any host or DC"
    );
    let plan_doc = json(&out);
    let plan = &host(&plan_doc, &deleted.info.address)["plan"];
    assert!(plan["actions"].as_array().unwrap().is_empty(), "{plan:#}");
    assert!(
        plan["why"]
            .as_str()
            .unwrap()
            .contains("Restore not planned: no deleted object"),
        "{plan:#}"
    );

    // --allow-rejoin: the preflight reads each object's owner over LDAPS (as tsrepair)
    // and plans the rejoin behind the reset ladder only where Add-Computer may reuse the
    // object (KB5020276): an admin-owned one. A non-admin owns the others (the lab's
    // stand-in for a quota-created object), so there the plan says why not.
    let mut args = dc_args("plan");
    args.push("--allow-rejoin".into());
    let out = trustsweep(&args).await;
    let plan_doc = json(&out);
    let mut admin = ad::AdConfig::new(
        samba.fact("LAB_DC1_URL"),
        samba.fact("LAB_ADMIN_USER"),
        secrecy::SecretString::from(samba.fact("LAB_ADMIN_PASSWORD").to_string()),
        samba.fact("LAB_LAB_OU"),
    );
    admin.ca_file = Some(PathBuf::from(samba.fact("LAB_CA_FILE")));
    admin.connect_to = samba.fact("LAB_DC1_ADDR").parse().ok();
    let mut kinds = std::collections::BTreeSet::new();
    for e in with(FaultKind::DcReset).into_iter().chain([&snapshot]) {
        let facts = ad::reuse_facts(&admin, &e.info.computer_name)
            .await
            .unwrap()
            .expect("the object exists");
        let plan = &host(&plan_doc, &e.info.address)["plan"];
        let rejoin = plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "rejoin");
        if facts.owner_privileged {
            assert!(rejoin, "admin-owned {facts:?}: {plan:#}");
            kinds.insert("rejoin planned");
        } else {
            assert!(!rejoin, "non-admin-owned {facts:?}: {plan:#}");
            assert!(
                plan["why"].as_str().unwrap().contains("Rejoin not planned"),
                "{plan:#}"
            );
            kinds.insert("rejoin refused");
        }
    }
    assert_eq!(
        running.lab().state_digest(),
        before,
        "plan must not change any host or DC"
    );
    assert_eq!(kinds.len(), 2, "both owners met: {kinds:?}");

    // repair: the ladder on the members, and the DC-side reset over LDAPS as tsrepair.
    let locked_before = running
        .lab()
        .account_on_dc(&locked.info.computer_name, 0)
        .unwrap();
    args = dc_args("repair");
    args.extend(
        [
            "--allow-dc-reset",
            "--dc-reset-host",
            &locked.info.address,
            "--allow-enable",
            "--yes",
        ]
        .map(String::from),
    );
    let out = trustsweep(&args).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "clones and the reset host remain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let r = &host(&doc, &locked.info.address)["repair"];
    assert_eq!(r["status"], "account_reset_on_dc", "{r:#}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("stays broken until it is rejoined"),
        "{r:#}"
    );
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("as LAB\\tsrepair"),
        "{r:#}"
    );
    let locked_after = running
        .lab()
        .account_on_dc(&locked.info.computer_name, 0)
        .unwrap();
    assert!(
        locked_after.pwd_last_set > locked_before.pwd_last_set,
        "the DC holds a new password"
    );
    assert!(matches!(
        running.lab().channel_status(locked.info.id).unwrap(),
        ChannelStatus::WrongPassword { .. }
    ));
    // Re-enabled over LDAPS by tsrepair (delegated userAccountControl), pinned, verified.
    let r = &host(&doc, &disabled.info.address)["repair"];
    assert_eq!(r["status"], "repaired", "{r:#}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("enabled on"),
        "{r:#}"
    );
    assert!(running
        .lab()
        .channel_status(disabled.info.id)
        .unwrap()
        .is_ok());
    for e in [&lag, &snapshot] {
        assert_eq!(
            host(&doc, &e.info.address)["repair"]["status"],
            "repaired",
            "{}",
            e.info.address
        );
        assert!(running.lab().channel_status(e.info.id).unwrap().is_ok());
    }
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for secret in [
        samba.fact("LAB_USER_PASSWORD"),
        samba.fact("LAB_ADMIN_PASSWORD"),
    ] {
        assert!(
            !text.contains(secret),
            "a DC password leaked into the output"
        );
    }
}
