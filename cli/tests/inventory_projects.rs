//! Ansible projects as admins keep them, end to end: a lab swept through an INI file with
//! `group_vars/` and `host_vars/` beside it (winrm aliases, `{{ vault_... }}` passwords),
//! and through the pipe `ansible-inventory -i hosts.ini --list | trustsweep check -i -`
//! (the pinned ansible-core), must reach every host as the lab's own inventory does;
//! `trustsweep inventory --explain` names where each variable came from; `ansible.cfg`
//! names the inventory when `-i` is absent; a template trustsweep does not evaluate is a
//! usage error naming the host.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("inventory-projects")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The lab's hosts as an Ansible project: names in `hosts.ini` with their address and
/// port under the winrm connection's own names, the account in group_vars, each host's
/// password in its host_vars as `vault_local_password`, referenced from group_vars.
fn project_from(running: &RunningLab, d: &Path) {
    let lab_inv = inventory::parse_yaml(&running.inventory_yaml(), Path::new("lab.yml")).unwrap();
    let mut ini = String::from("# The lab, kept the way an Ansible project is.\n[workstations]\n");
    let mut all = String::from("ansible_password: \"{{ vault_local_password }}\"\n");
    for h in &lab_inv.hosts {
        writeln!(
            ini,
            "{} ansible_winrm_host={} ansible_winrm_port={}",
            h.name,
            h.address,
            h.port.unwrap()
        )
        .unwrap();
        write(
            d,
            &format!("host_vars/{}.yml", h.name),
            &format!(
                "ansible_winrm_user: '{}'\nvault_local_password: '{}'\n",
                h.user().unwrap(),
                h.password().unwrap().expose_secret()
            ),
        );
    }
    let first = &lab_inv.hosts[0];
    for (k, v) in &first.vars {
        if k.starts_with("trustsweep_") || k.starts_with("ansible_winrm_s") {
            writeln!(all, "{k}: {v}").unwrap();
        }
    }
    for k in [
        "trustsweep_repair_password",
        "trustsweep_logon_test_password",
    ] {
        writeln!(all, "{k}: '{}'", first.secret(k).unwrap().expose_secret()).unwrap();
    }
    write(d, "hosts.ini", &ini);
    write(d, "group_vars/all/main.yml", &all);
}

async fn run(args: &[&str], cwd: &Path, stdin: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"));
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .env_remove("TRUSTSWEEP_LDAP_PASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("ANSIBLE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    child.wait_with_output().await.unwrap()
}

fn diagnoses(out: &Output) -> BTreeMap<String, String> {
    let doc = trustsweep_tests::json_stdout(out);
    doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["diagnosis"]["kind"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_vars_project_and_the_ansible_inventory_pipe_sweep_like_the_lab_inventory() {
    let spec = LabSpec::healthy(3, 7).with_fault(FaultKind::Snapshot, 1);
    let running = RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap();
    let d = dir("lab-project");
    std::fs::write(d.join("lab.yml"), running.inventory_yaml()).unwrap();
    let check = ["check", "--format", "json", "--host-deadline", "60"];
    let baseline = run(&[&check[..], &["-i", "lab.yml"]].concat(), &d, None).await;
    let expected = diagnoses(&baseline);
    assert_eq!(expected.len(), 3);
    assert!(
        expected.values().any(|k| k != "healthy") && expected.values().any(|k| k == "healthy"),
        "{expected:?}"
    );

    let p = d.join("project");
    project_from(&running, &p);
    let out = run(&[&check[..], &["-i", "hosts.ini"]].concat(), &p, None).await;
    assert_eq!(
        diagnoses(&out),
        expected,
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The pipe from Ansible: its JSON, with the group_vars and host_vars merged in.
    let listed = std::process::Command::new(
        trustsweep_tests::python()
            .parent()
            .unwrap()
            .join("ansible-inventory"),
    )
    .args(["-i", "hosts.ini", "--list"])
    .current_dir(&p)
    .env("ANSIBLE_HOME", p.join(".ansible"))
    .output()
    .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let json = String::from_utf8(listed.stdout).unwrap();
    let out = run(&[&check[..], &["-i", "-"]].concat(), &d, Some(&json)).await;
    assert_eq!(
        diagnoses(&out),
        expected,
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A subscript of a group, as Ansible slices it.
    let out = run(
        &[
            &check[..],
            &["-i", "hosts.ini", "--limit", "workstations[1:2]"],
        ]
        .concat(),
        &p,
        None,
    )
    .await;
    let limited = diagnoses(&out);
    let names: Vec<&String> = expected.keys().collect();
    let lab_order: Vec<String> = inventory::parse_yaml(&running.inventory_yaml(), Path::new("l"))
        .unwrap()
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .collect();
    assert_eq!(names.len(), lab_order.len());
    assert_eq!(
        limited.keys().cloned().collect::<Vec<_>>(),
        {
            let mut v = lab_order[1..=2].to_vec();
            v.sort();
            v
        },
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_ansible_cfg_and_templates_not_evaluated() {
    let d = dir("explain");
    write(
        &d,
        "inventory/hosts.ini",
        "[web]\nws1.corp.test ansible_host=10.0.0.1\nws2.corp.test\n",
    );
    write(
        &d,
        "inventory/group_vars/web.yml",
        "ansible_user: CORP\\admin\nansible_password: \"{{ vault_web_password }}\"\nvault_web_password: S3cret-web\n",
    );
    write(
        &d,
        "inventory/host_vars/ws2.corp.test.yml",
        "ansible_winrm_port: 15985\nansible_winrm_scheme: http\n",
    );
    write(
        &d,
        "ansible.cfg",
        "[defaults]\ninventory = inventory/hosts.ini\n",
    );
    // No -i: ansible.cfg's inventory.
    let out = run(&["inventory", "--explain"], &d, None).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ws2.corp.test: address ws2.corp.test, port 15985"),
        "{text}"
    );
    assert!(text.contains("group_vars (web)"), "{text}");
    assert!(text.contains("inventory/group_vars/web.yml:2"), "{text}");
    assert!(text.contains("host_vars (ws2.corp.test)"), "{text}");
    assert!(!text.contains("S3cret"), "{text}");
    let out = run(&["inventory", "--explain", "--format", "json"], &d, None).await;
    let rows = trustsweep_tests::json_stdout(&out);
    let vars = rows[0]["vars"].as_array().unwrap();
    let user = vars.iter().find(|v| v["name"] == "ansible_user").unwrap();
    assert_eq!(user["origin"]["level"], "group_vars");
    assert_eq!(user["origin"]["line"], 1);

    // A filter is not evaluated: not a password, a usage error naming host and variable.
    write(
        &d,
        "inventory/group_vars/web.yml",
        "ansible_user: CORP\\admin\nansible_password: \"{{ vault_web_password | trim }}\"\n",
    );
    let out = run(&["check", "-i", "inventory/hosts.ini"], &d, None).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("host ws1.corp.test: ansible_password"),
        "{err}"
    );
    assert!(err.contains("TRUSTSWEEP_PASSWORD"), "{err}");
    let out = run(&["inventory"], &d, None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not evaluate"));
}
