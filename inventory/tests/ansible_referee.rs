#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The referee: inventories laid out the way Ansible projects are (an INI file with
//! `group_vars/` and `host_vars/` files and directories beside it, an inventory directory
//! mixing YAML and INI, several `-i` sources, the JSON `ansible-inventory --list` prints),
//! each read by the pinned ansible-core (`ansible-inventory --list`, `ansible
//! --list-hosts PATTERN`, and the winrm connection plugin resolving its options from each
//! host's templated variables: `ansible_referee.py`) and by trustsweep. Hosts, groups,
//! variables, addresses, ports, schemes, users, passwords and pattern results must agree.
//!
//! One difference is deliberate and checked as such: a host with `ansible_winrm_scheme:
//! http` and no port is on 5985 for trustsweep, 5986 for Ansible's plugin.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use inventory::{load_sources, Inventory, Pattern, Source, VaultSecrets};
use secrecy::ExposeSecret;
use serde_json::Value;

const REFEREE: &str = include_str!("ansible_referee.py");

/// A fresh directory for one project under Cargo's temporary directory for tests.
fn project(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ansible-referee")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// What Ansible makes of `sources` (relative to `dir`, run from `dir`).
fn ansible(dir: &Path, sources: &[&str], patterns: &[&str]) -> Value {
    let py = trustsweep_tests::python();
    let mut cmd = Command::new(py);
    cmd.arg("-c")
        .arg(REFEREE)
        .args(sources)
        .arg("--")
        .args(patterns);
    for (k, _) in std::env::vars() {
        if k.starts_with("ANSIBLE_") {
            cmd.env_remove(k);
        }
    }
    let home = dir.join(".ansible-home");
    let out = cmd
        .current_dir(dir)
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "referee failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trustsweep_tests::json_stdout(&out)
}

fn trustsweep(dir: &Path, sources: &[&str]) -> Inventory {
    let sources: Vec<Source> = sources.iter().map(|s| Source::Path(dir.join(s))).collect();
    load_sources(&sources, &VaultSecrets::none()).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether a value is a template other than a lone `{{ name }}` (trustsweep leaves those
/// unresolved on purpose).
fn complex_template(v: &Value) -> bool {
    let Value::String(s) = v else { return false };
    let t = s.trim();
    let lone = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim)
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    (s.contains("{{") || s.contains("{%")) && !lone
}

/// Compares everything; `what` names the project in messages.
fn agree(what: &str, referee: &Value, inv: &Inventory, patterns: &[&str]) {
    let ansible_hosts = referee["hosts"].as_object().unwrap();
    let ours: BTreeSet<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    let theirs: BTreeSet<&str> = ansible_hosts.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "{what}: the hosts");
    for (name, a) in ansible_hosts {
        let h = inv.host(name).unwrap();
        let ctx = format!("{what}: host {name}");
        // Groups.
        let mut groups: Vec<String> = h.groups.clone();
        groups.sort();
        let their_groups: Vec<String> = a["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        assert_eq!(groups, their_groups, "{ctx}: groups");
        // The connection, as the winrm plugin resolves it.
        assert_eq!(h.address, a["address"].as_str().unwrap(), "{ctx}: address");
        let scheme = match h.winrm_scheme().unwrap() {
            inventory::WinrmScheme::Http => "http",
            inventory::WinrmScheme::Https => "https",
        };
        assert_eq!(scheme, a["scheme"].as_str().unwrap(), "{ctx}: scheme");
        let their_port = a["port"].as_u64().unwrap() as u16;
        if h.port.is_none() && scheme == "http" {
            // The deliberate difference: http without a port is 5985 here.
            assert_eq!((h.winrm_port(), their_port), (5985, 5986), "{ctx}: port");
        } else {
            assert_eq!(h.winrm_port(), their_port, "{ctx}: port");
        }
        assert_eq!(
            h.user().as_deref(),
            a["user"].as_str(),
            "{ctx}: connecting user"
        );
        assert_eq!(
            h.password()
                .map(|p| p.expose_secret().to_string())
                .as_deref(),
            a["password"].as_str(),
            "{ctx}: connecting password"
        );
        if let Some(t) = a["operation_timeout"].as_u64() {
            assert_eq!(
                h.operation_timeout(),
                Some(std::time::Duration::from_secs(t)),
                "{ctx}: connection timeout"
            );
        }
        // Every variable `ansible-inventory --list` shows, templated as Ansible would.
        let listed = referee["list"]["_meta"]["hostvars"][name.as_str()]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let ours: BTreeSet<&str> = h
            .vars
            .keys()
            .chain(h.secrets.keys())
            .chain(h.unresolved.keys())
            .map(String::as_str)
            .collect();
        let theirs: BTreeSet<&str> = listed.keys().map(String::as_str).collect();
        assert_eq!(ours, theirs, "{ctx}: variable names");
        for (k, raw) in &listed {
            let rendered = &a["rendered"][k.as_str()];
            if complex_template(raw) {
                assert!(h.unresolved.contains_key(k), "{ctx}: {k} is not evaluated");
                continue;
            }
            let ours = match (h.vars.get(k), h.secrets.get(k)) {
                (Some(v), _) => v.clone(),
                (None, Some(s)) => Value::String(s.expose_secret().to_string()),
                (None, None) => panic!("{ctx}: {k} missing ({:?})", h.unresolved.get(k)),
            };
            let theirs = match (rendered, &ours) {
                // A secret is text here.
                (Value::Number(n), Value::String(_)) => Value::String(n.to_string()),
                (v, _) => v.clone(),
            };
            assert_eq!(ours, theirs, "{ctx}: {k}");
        }
    }
    for p in patterns {
        let theirs: BTreeSet<&str> = referee["patterns"][*p]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: {p}: {}", referee["patterns"][*p]))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let limited = inv.try_limit(&Pattern::parse(p).unwrap()).unwrap();
        let ours: BTreeSet<&str> = limited.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(ours, theirs, "{what}: --limit '{p}'");
    }
}

const PATTERNS: &[&str] = &[
    "all",
    "windows",
    "workstations",
    "workstations[0]",
    "workstations[-1]",
    "workstations[0:1]",
    "workstations[1:]",
    "windows[2:4]",
    "windows[5]",
    "kiosks[0:0]",
    "workstations:&finance",
    "windows:!servers",
    "ws0*",
    "~srv0[12]",
    "*.corp.test[1]",
    "ungrouped",
];

/// An INI inventory with group_vars/ and host_vars/ beside it, as files of each extension
/// and as directories; winrm aliases; `{{ name }}` values; `ansible_group_priority`.
fn ini_project() -> PathBuf {
    let d = project("ini-with-vars-dirs");
    write(
        &d,
        "hosts.ini",
        "# A Windows fleet, kept the way Ansible projects keep it.
[workstations]
ws01.corp.test
ws02.corp.test ansible_host=10.1.0.2
ws03.corp.test ansible_port=5985

[servers]
srv01.corp.test ansible_winrm_host=10.2.0.1 ansible_host=10.9.9.9
srv02.corp.test

[kiosks]
kiosk[1:2].corp.test

[finance]
ws02.corp.test

[windows:children]
workstations
servers
kiosks
finance

[windows:vars]
ansible_connection=winrm
ansible_winrm_transport=ntlm
site=inventory_windows

[kiosks:vars]
site=inventory_kiosks

[finance:vars]
ansible_group_priority=20
",
    );
    write(
        &d,
        "group_vars/all/00-main.yml",
        "---\nansible_user: Administrator\nsite: group_vars_all\ndomain: corp.test\n",
    );
    write(
        &d,
        "group_vars/all/vault.yml",
        "vault_admin_password: Adm1n-all\n",
    );
    write(&d, "group_vars/all/01-more", "ntp: ntp.corp.test\n");
    write(&d, "group_vars/all/notes.txt", "site: never-read\n");
    write(&d, "group_vars/all/.hidden.yml", "site: never-read\n");
    write(
        &d,
        "group_vars/windows.yml",
        "ansible_password: \"{{ vault_admin_password }}\"\nansible_winrm_server_cert_validation: ignore\nsite: group_vars_windows\nmotd: \"{{ domain | upper }} fleet\"\n",
    );
    write(
        &d,
        "group_vars/workstations",
        "site: group_vars_workstations\nansible_winrm_scheme: https\n",
    );
    // Never read: the bare name was found first.
    write(&d, "group_vars/workstations.yml", "site: shadowed\n");
    write(&d, "group_vars/finance.yml", "site: group_vars_finance\n");
    write(
        &d,
        "group_vars/servers.json",
        "{\"ansible_winrm_user\": \"CORP\\\\svc-winrm\", \"ansible_winrm_connection_timeout\": 30}\n",
    );
    write(
        &d,
        "group_vars/kiosks.yaml",
        "site: group_vars_kiosks\nansible_winrm_port: 15986\n",
    );
    write(
        &d,
        "host_vars/ws01.corp.test.yml",
        "ansible_winrm_password: ws01-local\nsite: host_vars_ws01\n",
    );
    write(
        &d,
        "host_vars/srv02.corp.test/a.yml",
        "ansible_winrm_host: 10.2.0.2\n",
    );
    write(
        &d,
        "host_vars/srv02.corp.test/b.yml",
        "ansible_winrm_host: 10.2.0.22\nansible_winrm_pass: srv02-pass\n",
    );
    write(
        &d,
        "host_vars/ws03.corp.test.yml",
        "ansible_winrm_scheme: http\n",
    );
    write(
        &d,
        "host_vars/kiosk2.corp.test",
        "ansible_winrm_scheme: http\nansible_port: \"{{ kiosk_port }}\"\nkiosk_port: 5985\n",
    );
    write(&d, "host_vars/not-in-inventory.yml", "x: [unclosed\n");
    d
}

#[test]
fn ini_with_group_vars_and_host_vars() {
    let d = ini_project();
    let referee = ansible(&d, &["hosts.ini"], PATTERNS);
    let inv = trustsweep(&d, &["hosts.ini"]);
    agree("ini project", &referee, &inv, PATTERNS);
    // Spot checks, so a referee that agrees with everything is noticed.
    let ws02 = inv.host("ws02.corp.test").unwrap();
    assert_eq!(ws02.var("site").as_deref(), Some("group_vars_finance"));
    let srv02 = inv.host("srv02.corp.test").unwrap();
    assert_eq!(srv02.address, "10.2.0.22");
    assert_eq!(
        srv02.password().unwrap().expose_secret(),
        "srv02-pass",
        "ansible_winrm_pass over the templated ansible_password"
    );
    assert!(
        inv.host("ws01.corp.test")
            .unwrap()
            .unresolved
            .contains_key("motd"),
        "a filter is not evaluated"
    );
}

#[test]
fn the_json_ansible_inventory_prints_reads_the_same() {
    let d = ini_project();
    let referee = ansible(&d, &["hosts.ini"], &[]);
    let json = serde_json::to_string(&referee["list"]).unwrap();
    // `-i -`: the text of the pipe.
    let piped = load_sources(
        &[Source::Text {
            name: "<stdin>".into(),
            text: json.clone(),
        }],
        &VaultSecrets::none(),
    )
    .unwrap();
    agree("ansible-inventory --list piped", &referee, &piped, &[]);
    // `-i FILE.json`.
    write(&d, "listed/inventory.json", &json);
    let from_file = trustsweep(&d, &["listed/inventory.json"]);
    agree("ansible-inventory --list saved", &referee, &from_file, &[]);
}

/// An inventory directory: YAML and INI files merged in lexical order, a subdirectory,
/// files Ansible ignores, and group_vars/host_vars inside it.
#[test]
fn inventory_directory_mixing_yaml_and_ini() {
    let d = project("inventory-directory");
    write(
        &d,
        "inventory/01-base.yml",
        "all:
  children:
    web:
      hosts:
        web1.corp.test:
        web2.corp.test:
          ansible_host: 10.3.0.2
    db:
      hosts:
        db1.corp.test:
          ansible_winrm_port: 5985
",
    );
    write(
        &d,
        "inventory/02-extra.ini",
        "[web]
web3.corp.test

[web:vars]
role=frontend
tier=1

[prod:children]
web
db
",
    );
    write(
        &d,
        "inventory/sub/03-more.yml",
        "dc:\n  hosts:\n    dc1.corp.test:\n      ansible_port: 5985\n",
    );
    write(
        &d,
        "inventory/README.md",
        "# Not an inventory\nwho reads this\n",
    );
    write(&d, "inventory/hosts.bak", "[web]\nstale.corp.test\n");
    write(&d, "inventory/notes.txt", "some notes\n");
    write(&d, "inventory/ansible.cfg", "[defaults]\n");
    write(&d, "inventory/.hidden.ini", "[web]\nhidden.corp.test\n");
    write(&d, "inventory/group_vars/all.yml", "ansible_user: ops\n");
    write(
        &d,
        "inventory/group_vars/prod/10-env.yml",
        "env: prod\nrole: base\n",
    );
    write(&d, "inventory/group_vars/web.yaml", "role: web\n");
    write(
        &d,
        "inventory/host_vars/web1.corp.test.json",
        "{\"ansible_winrm_user\": \"CORP\\\\web1admin\", \"ansible_winrm_scheme\": \"http\"}\n",
    );
    // Only the directory given holds vars directories, not its subdirectories.
    write(&d, "inventory/sub/group_vars/dc.yml", "role: never-read\n");
    let patterns = [
        "all",
        "web",
        "prod",
        "web[0]",
        "web[-1]",
        "prod[1:3]",
        "dc",
        "web:&prod",
        "db:web",
    ];
    let referee = ansible(&d, &["inventory"], &patterns);
    let inv = trustsweep(&d, &["inventory"]);
    agree("inventory directory", &referee, &inv, &patterns);
    assert_eq!(
        inv.host("web3.corp.test").unwrap().var("role").as_deref(),
        Some("web"),
        "group_vars above the inventory's [web:vars]"
    );
}

/// `-i site-a/hosts.yml -i site-b/hosts.ini`: the hosts merge, each source's group_vars
/// apply, the later one winning.
#[test]
fn several_sources_merge_as_ansible_merges_them() {
    let d = project("several-sources");
    write(
        &d,
        "site-a/hosts.yml",
        "all:
  hosts:
    app1:
      ansible_host: 10.4.0.1
  children:
    appservers:
      hosts:
        app1:
        shared:
          ansible_host: 10.4.0.9
          tag: a
",
    );
    write(
        &d,
        "site-a/group_vars/appservers.yml",
        "ansible_user: a-admin\nfrom_a: yes\n",
    );
    write(
        &d,
        "site-b/hosts.ini",
        "[appservers]\nshared tag=b\n\n[dbservers]\ndb9 ansible_winrm_port=25986\n",
    );
    write(
        &d,
        "site-b/group_vars/appservers.yml",
        "ansible_user: b-admin\n",
    );
    write(
        &d,
        "site-b/host_vars/shared.yml",
        "ansible_winrm_scheme: http\n",
    );
    let patterns = [
        "all",
        "appservers",
        "appservers[0]",
        "appservers[-1]",
        "dbservers",
    ];
    let sources = ["site-a/hosts.yml", "site-b/hosts.ini"];
    let referee = ansible(&d, &sources, &patterns);
    let inv = trustsweep(&d, &sources);
    agree("two sources", &referee, &inv, &patterns);
    let shared = inv.host("shared").unwrap();
    assert_eq!(shared.user().as_deref(), Some("b-admin"));
    assert_eq!(shared.var("tag").as_deref(), Some("b"));
}

/// A YAML inventory whose groups at one depth are ordered by `ansible_group_priority`,
/// with every winrm alias of the connection.
#[test]
fn yaml_priorities_and_winrm_aliases() {
    let d = project("yaml-aliases");
    write(
        &d,
        "inventory.yml",
        "all:
  vars:
    ansible_user: fallback
    ansible_password: fallback-pw
  children:
    zeta:
      vars:
        ansible_group_priority: 1
        ansible_winrm_user: zeta-user
      hosts:
        h1:
        h2:
          ansible_winrm_port: 5985
    alpha:
      vars:
        ansible_group_priority: 5
        ansible_winrm_user: alpha-user
        ansible_winrm_password: alpha-pw
      hosts:
        h1:
          ansible_winrm_host: 192.0.2.1
          ansible_host: 192.0.2.99
        h3:
          ansible_port: 5985
          ansible_winrm_scheme: https
          ansible_winrm_connection_timeout: 45
",
    );
    let patterns = ["all", "zeta", "alpha[0]", "alpha[1]", "zeta:!alpha"];
    let referee = ansible(&d, &["inventory.yml"], &patterns);
    let inv = trustsweep(&d, &["inventory.yml"]);
    agree("yaml aliases", &referee, &inv, &patterns);
    assert_eq!(
        inv.host("h1").unwrap().user().as_deref(),
        Some("alpha-user"),
        "priority 5 applies after 1"
    );
    let h3 = inv.host("h3").unwrap();
    assert_eq!(h3.winrm_port(), 5985);
    assert_eq!(h3.winrm_scheme(), Some(inventory::WinrmScheme::Https));
    assert_eq!(
        h3.read_timeout(),
        Some(std::time::Duration::from_secs(55)),
        "the read timeout is the connection timeout + 10 s, as the plugin sets it"
    );
}
