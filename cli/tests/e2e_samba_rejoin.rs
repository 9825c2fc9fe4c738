//! A rejoin end to end against the Samba AD DC pair (issue 11): a member whose computer
//! account was deleted, LAPS managing its built-in Administrator. `repair --allow-rejoin
//! --laps --ldap` reads the DCs (the account is gone: the rejoin preflight finds no object,
//! so the join may create one), leaves, restarts, joins, restarts; LAPS rotates the
//! password at the restart after the join (DOMAIN.md "Repairing it"), the old one gets
//! 401, and trustsweep reads LAPS again by the computer's name and finishes the verify.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use lab::faults::FaultKind;
use lab::model::{Directory, Lab, LabSpec};
use lab::samba::SambaConfig;
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_is_rejoined_and_the_rotated_laps_password_is_read_again() {
    let samba = trustsweep_tests::samba::samba_lab();
    let facts = samba.facts_file();
    let mut spec = LabSpec::healthy(3, 31).with_fault(FaultKind::DeletedAccount, 1);
    spec.directory = Directory::Samba(Box::new(SambaConfig::from_facts_file(&facts).unwrap()));
    spec.name_prefix = "TSLR".into();
    spec.laps = true;
    spec.deployer_created_one_in = 0;
    spec.reboot_duration = Duration::from_secs(2);
    let lab = tokio::task::spawn_blocking(move || Lab::build(spec).unwrap())
        .await
        .unwrap();
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let deleted = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::DeletedAccount))
        .unwrap()
        .clone();
    let first = deleted
        .info
        .builtin_admin
        .password
        .expose_secret()
        .to_string();
    let inv = common::write_inventory("e2e-samba-rejoin", &running.inventory_yaml());

    let args: Vec<String> = [
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
        "--allow-rejoin",
        "--laps",
        "--ldap",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.11",
        "--ldap-user",
        samba.fact("LAB_ADMIN_USER"),
        "--ca-file",
        samba.fact("LAB_CA_FILE"),
        "--reboot-timeout",
        "60",
    ]
    .map(String::from)
    .to_vec();
    let out = common::run_trustsweep(
        &args,
        &[("TRUSTSWEEP_LDAP_PASSWORD", samba.fact("LAB_ADMIN_PASSWORD"))],
    )
    .await;
    let doc = trustsweep_tests::json_stdout(&out);
    let entry = trustsweep_tests::report_host(&doc, &deleted.info.address);
    let ctx = format!(
        "{entry:#}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entry["diagnosis"]["kind"], "account_deleted", "{ctx}");
    let actions: Vec<&str> = entry["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rejoin"], "{ctx}");
    assert_eq!(entry["repair"]["status"], "repaired", "{ctx}");

    // LAPS rotated the password at the restart after the join; the directory holds the
    // new one (what trustsweep read again), the lab's host took it.
    let lab = running.lab();
    let now = lab.host(deleted.info.id).unwrap();
    let rotated = now.builtin_admin.password.expose_secret().to_string();
    assert_ne!(rotated, first, "{ctx}");
    let mut admin = ad::AdConfig::new(
        samba.fact("LAB_DC1_URL"),
        samba.fact("LAB_ADMIN_USER"),
        secrecy::SecretString::from(samba.fact("LAB_ADMIN_PASSWORD").to_string()),
        samba.fact("LAB_BASE_DN"),
    );
    admin.ca_file = Some(PathBuf::from(samba.fact("LAB_CA_FILE")));
    admin.connect_to = samba.fact("LAB_DC1_ADDR").parse().ok();
    let laps = ad::read_laps_by_name(&admin, &deleted.info.computer_name)
        .await
        .unwrap()
        .expect("LAPS wrote the rotated password");
    assert_eq!(laps.password.expose_secret(), rotated);
    // A member again, with a working channel.
    assert!(lab.channel_status(deleted.info.id).unwrap().is_ok());
    assert!(ad::read_computer(&admin, &deleted.info.computer_name)
        .await
        .unwrap()
        .is_some());
}
