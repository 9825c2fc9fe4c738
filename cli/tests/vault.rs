//! Ansible Vault end to end: inventories whose passwords the pinned `ansible-vault`
//! (ansible-core in the test venv) encrypted — `encrypt_string` values in format 1.1 and
//! 1.2 with a vault ID, and a file encrypted whole — drive the `trustsweep` binary exactly
//! as the plain inventory does, and a wrong or missing vault password is a clear error that
//! never shows a secret.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use serde_json::Value;

/// Throwaway vault passwords of this test.
const VAULT_PASSWORD: &str = "trustsweep vault test: throwaway";
const PROD_PASSWORD: &str = "prod vault id: throwaway";

fn dir() -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vault-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn ansible_vault() -> PathBuf {
    trustsweep_tests::python().with_file_name("ansible-vault")
}

/// `ansible-vault encrypt_string` of each `(name, value)`, in one run: name → the vault
/// text (header and hex lines, unindented).
fn encrypt_strings(vault_id: &[&str], values: &[(String, String)]) -> BTreeMap<String, String> {
    let mut cmd = std::process::Command::new(ansible_vault());
    cmd.arg("encrypt_string").args(vault_id);
    for (name, _) in values {
        cmd.args(["--name", name]);
    }
    cmd.arg("--");
    for (_, value) in values {
        cmd.arg(value);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "ansible-vault: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut blocks = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(name) = line.strip_suffix(": !vault |") {
            if let Some((n, l)) = current.take() {
                blocks.insert(n, l.join("\n"));
            }
            current = Some((name.to_string(), Vec::new()));
        } else if let Some((_, l)) = current.as_mut() {
            if !line.trim().is_empty() {
                l.push(line.trim().to_string());
            }
        }
    }
    if let Some((n, l)) = current {
        blocks.insert(n, l.join("\n"));
    }
    assert_eq!(blocks.len(), values.len(), "{blocks:?}");
    blocks
}

/// The lab's inventory with every `ansible_password` (format 1.1, vault ID `default`)
/// and the repair password (format 1.2, vault ID `prod`) replaced by `!vault` values.
fn vault_inventory(plain: &str, password_file: &Path, prod_file: &Path) -> String {
    let unquote = |v: &str| {
        v.strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap()
            .replace("''", "'")
    };
    let field = |line: &str, key: &str| {
        line.trim_start()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(": "))
            .map(unquote)
    };
    let mut admins = Vec::new();
    let mut repair = Vec::new();
    for line in plain.lines() {
        if let Some(v) = field(line, "ansible_password") {
            admins.push((format!("p{}", admins.len()), v));
        } else if let Some(v) = field(line, "trustsweep_repair_password") {
            repair.push(("repair".to_string(), v));
        }
    }
    assert!(!admins.is_empty() && repair.len() == 1, "{plain}");
    let pw = format!("--vault-password-file={}", password_file.display());
    let prod = format!("--vault-id=prod@{}", prod_file.display());
    let admin_vault = encrypt_strings(&[&pw], &admins);
    let repair_vault = encrypt_strings(&[&prod], &repair);
    assert!(repair_vault["repair"].starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    assert!(admin_vault["p0"].starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    let tagged = |indent: &str, key: &str, vault: &str| {
        let body = vault
            .lines()
            .map(|l| format!("{indent}  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        format!("{indent}{key}: !vault |\n{body}")
    };
    let mut n = 0;
    plain
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if field(line, "ansible_password").is_some() {
                let name = format!("p{n}");
                n += 1;
                tagged(indent, "ansible_password", &admin_vault[&name])
            } else if field(line, "trustsweep_repair_password").is_some() {
                tagged(
                    indent,
                    "trustsweep_repair_password",
                    &repair_vault["repair"],
                )
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

async fn trustsweep(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args(args)
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

/// Host name → (diagnosis kind, whether the host answered the probe).
fn verdicts(out: &Output) -> BTreeMap<String, (Value, Value)> {
    let doc = trustsweep_tests::json_stdout(out);
    doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                (
                    h["diagnosis"]["kind"].clone(),
                    h["observation"].is_object().into(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_sweep_from_a_vaulted_inventory_matches_the_plain_one() {
    let spec = LabSpec::healthy(4, 14)
        .with_fault(FaultKind::Offline, 1)
        .with_fault(FaultKind::Snapshot, 1);
    let running = RunningLab::start(Lab::build(spec).unwrap(), WireOptions::default())
        .await
        .unwrap();
    let d = dir();
    let password_file = d.join("vault-pass");
    let prod_file = d.join("vault-pass-prod");
    write_private(&password_file, &format!("{VAULT_PASSWORD}\n"));
    write_private(&prod_file, &format!("{PROD_PASSWORD}\n"));
    let plain_text = running.inventory_yaml();
    let plain = d.join("plain.yml");
    write_private(&plain, &plain_text);
    let vaulted = d.join("vaulted.yml");
    let vaulted_text = vault_inventory(&plain_text, &password_file, &prod_file);
    write_private(&vaulted, &vaulted_text);
    let admin_passwords: Vec<String> = running
        .endpoints()
        .iter()
        .map(|e| e.info.local_admin.password.expose_secret().to_string())
        .collect();
    for pw in &admin_passwords {
        assert!(
            !vaulted_text.contains(&format!("'{pw}'")),
            "still in the clear"
        );
    }

    let check = |inv: &Path, extra: &[&str]| {
        let mut a = vec!["check", "-i", inv.to_str().unwrap(), "--format", "json"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        trustsweep(&refs).await
    };
    let pw_arg = password_file.to_str().unwrap().to_string();
    let prod_arg = format!("prod@{}", prod_file.display());

    let plain_out = run(check(&plain, &[])).await;
    let vault_out = run(check(
        &vaulted,
        &["--vault-password-file", &pw_arg, "--vault-id", &prod_arg],
    ))
    .await;
    let (p, v) = (verdicts(&plain_out), verdicts(&vault_out));
    assert_eq!(p.len(), running.endpoints().len());
    assert_eq!(
        p,
        v,
        "vaulted run stderr:\n{}",
        String::from_utf8_lossy(&vault_out.stderr)
    );
    assert_eq!(plain_out.status.code(), vault_out.status.code());
    // Every reachable host was probed with its decrypted password (the offline one only
    // is unreachable; a wrong password would be an access problem on all of them).
    for ep in running.endpoints() {
        let (kind, probed) = &v[&ep.info.address];
        if ep.info.fault == Some(FaultKind::Offline) {
            assert_eq!(kind, "unreachable");
        } else {
            assert_eq!(probed, &Value::Bool(true), "{}: {kind}", ep.info.address);
            assert_ne!(kind, "access_problem");
        }
    }
    let doc = trustsweep_tests::json_stdout(&vault_out);
    assert_eq!(doc["summary"]["access_problem"], 0, "{doc:#}");

    // The same through ANSIBLE_VAULT_PASSWORD_FILE and an executable password script.
    let script = d.join("vault-pass.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho '{PROD_PASSWORD}'\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "inventory",
            "-i",
            vaulted.to_str().unwrap(),
            "--format",
            "json",
        ])
        .args(["--vault-id", &format!("prod@{}", script.display())])
        .env("ANSIBLE_VAULT_PASSWORD_FILE", &password_file)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&running.endpoints()[0].info.address),
        "{shown}"
    );
    for pw in &admin_passwords {
        assert!(
            !shown.contains(pw.as_str()),
            "a decrypted password is shown"
        );
    }

    // A wrong password: the file, the line, the variable, what to do; no secret.
    let wrong = d.join("wrong-pass");
    write_private(&wrong, "not the vault password\n");
    let out = run(check(
        &vaulted,
        &[
            "--vault-password-file",
            wrong.to_str().unwrap(),
            "--vault-id",
            &prod_arg,
        ],
    ))
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains(vaulted.to_str().unwrap()), "{err}");
    assert!(err.contains("variable 'ansible_password'"), "{err}");
    assert!(err.contains("vault password is wrong"), "{err}");
    assert!(err.contains("--vault-password-file"), "{err}");
    for pw in admin_passwords
        .iter()
        .map(String::as_str)
        .chain([VAULT_PASSWORD, PROD_PASSWORD])
    {
        assert!(!err.contains(pw), "a secret in the error: {err}");
    }

    // No vault password at all: say which flags give one.
    let out = run(check(&vaulted, &[])).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("no vault password was given")
            && err.contains("--vault-password-file")
            && err.contains("--vault-id")
            && err.contains("--ask-vault-pass"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_encrypted_whole_by_ansible_vault_loads() {
    let d = dir().join("whole");
    std::fs::create_dir_all(&d).unwrap();
    let password_file = d.join("vault-pass");
    write_private(&password_file, &format!("{VAULT_PASSWORD}\n"));
    let plain = d.join("hosts.ini");
    std::fs::write(
        &plain,
        "[workstations]\nws1 ansible_host=127.0.0.9 ansible_user=Administrator ansible_password=FileSecret1\n",
    )
    .unwrap();
    let encrypted = d.join("hosts.vault.ini");
    let status = std::process::Command::new(ansible_vault())
        .args(["encrypt", "--vault-password-file"])
        .arg(&password_file)
        .arg("--output")
        .arg(&encrypted)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read_to_string(&encrypted)
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.1;AES256"));
    let out = trustsweep(&[
        "inventory",
        "-i",
        encrypted.to_str().unwrap(),
        "--vault-password-file",
        password_file.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("127.0.0.9") && shown.contains("workstations"),
        "{shown}"
    );
    assert!(!shown.contains("FileSecret1"), "{shown}");
    // And through the library, the password itself.
    let mut secrets = inventory::VaultSecrets::none();
    secrets.push(inventory::VaultSecret::from_file("", &password_file).unwrap());
    let inv = inventory::load_with_vault(&encrypted, &secrets).unwrap();
    assert_eq!(
        inv.host("ws1").unwrap().password().unwrap().expose_secret(),
        "FileSecret1"
    );

    // Vars files beside it: a `!vault` value (1.2, vault ID `prod`) in group_vars, and a
    // host_vars file encrypted whole.
    let prod_file = d.join("vault-pass-prod");
    write_private(&prod_file, &format!("{PROD_PASSWORD}\n"));
    let prod = format!("--vault-id=prod@{}", prod_file.display());
    let repair = encrypt_strings(
        &[&prod],
        &[("repair".to_string(), "Repair$ecret".to_string())],
    );
    std::fs::create_dir_all(d.join("group_vars")).unwrap();
    std::fs::create_dir_all(d.join("host_vars")).unwrap();
    let body = repair["repair"].replace('\n', "\n  ");
    std::fs::write(
        d.join("group_vars/workstations.yml"),
        format!("trustsweep_repair_user: 'LAB\\svc-repair'\ntrustsweep_repair_password: !vault |\n  {body}\n"),
    )
    .unwrap();
    let host_vars = d.join("host_vars/ws1.yml");
    std::fs::write(&host_vars, "ansible_port: 5999\n").unwrap();
    let status = std::process::Command::new(ansible_vault())
        .args(["encrypt", "--vault-password-file"])
        .arg(&password_file)
        .arg(&host_vars)
        .status()
        .unwrap();
    assert!(status.success());
    secrets.push(inventory::VaultSecret::from_file("prod", &prod_file).unwrap());
    let inv = inventory::load_with_vault(&encrypted, &secrets).unwrap();
    let ws1 = inv.host("ws1").unwrap();
    assert_eq!(ws1.port, Some(5999));
    assert_eq!(
        ws1.repair_password().unwrap().expose_secret(),
        "Repair$ecret"
    );
    assert_eq!(ws1.password().unwrap().expose_secret(), "FileSecret1");

    let out = trustsweep(&["inventory", "-i", encrypted.to_str().unwrap()]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("encrypted whole by ansible-vault") && err.contains("--vault-password-file"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}
