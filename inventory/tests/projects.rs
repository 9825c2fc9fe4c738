#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Ansible projects as admins keep them, without Ansible: where each variable comes from
//! (`--explain`), templates that are not evaluated, `ansible.cfg`'s default inventory,
//! what is refused (scripts, plugin configurations, broken vars files) and how.
//! `ansible_referee.rs` checks the same kinds of layouts against ansible-core itself.

mod common;

use std::path::Path;

use common::tmpdir;
use inventory::ansible_cfg::default_inventory_in;
use inventory::{load, load_sources, Level, Pattern, Source, TemplateError, VaultSecrets};
use secrecy::ExposeSecret;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn origins_name_the_file_line_and_level() {
    let d = tmpdir("origins");
    write(
        &d,
        "hosts.ini",
        "[web]\nws1 ansible_host=10.0.0.1\nws2\n\n[web:vars]\nsite=inv\nport_note=x\n",
    );
    write(&d, "group_vars/all.yml", "site: all\nansible_user: ops\n");
    write(&d, "group_vars/web/10.yml", "site: web10\n");
    write(&d, "group_vars/web/20.yml", "\n\nsite: web20\n");
    write(&d, "host_vars/ws2.yaml", "site: ws2\n");
    let inv = load(&d.join("hosts.ini")).unwrap();
    let ws1 = inv.host("ws1").unwrap();
    let o = &ws1.origins["site"];
    assert_eq!(o.level, Level::GroupVars);
    assert_eq!(o.scope, "web");
    assert_eq!(o.line, 3, "the later file of the directory wins");
    assert!(o.file.as_ref().unwrap().ends_with("group_vars/web/20.yml"));
    assert_eq!(ws1.origins["ansible_host"].level, Level::InventoryHost);
    assert_eq!(ws1.origins["ansible_host"].line, 2);
    assert_eq!(ws1.origins["port_note"].level, Level::InventoryGroup);
    assert_eq!(ws1.origins["ansible_user"].level, Level::GroupVarsAll);
    let ws2 = inv.host("ws2").unwrap();
    assert_eq!(ws2.var("site").as_deref(), Some("ws2"));
    assert_eq!(ws2.origins["site"].level, Level::HostVars);
    let text = inv.to_explain_text();
    assert!(text.contains("ws2: address ws2, port 5986"), "{text}");
    assert!(text.contains("host_vars (ws2)"), "{text}");
    assert!(text.contains("group_vars/web/20.yml:3"), "{text}");
}

#[test]
fn a_lone_variable_template_resolves_and_its_source_stays_secret() {
    let d = tmpdir("tmpl");
    write(
        &d,
        "inv.yml",
        "all:\n  hosts:\n    ws1:\n      ansible_host: \"{{ inventory_hostname }}\"\n      ansible_password: \"{{ win_admin }}\"\n      ansible_winrm_port: \"{{ p }}\"\n",
    );
    write(
        &d,
        "group_vars/all.yml",
        "win_admin: \"{{ vaulted }}\"\nvaulted: S3cret!\np: \"5985\"\n",
    );
    let inv = load(&d.join("inv.yml")).unwrap();
    let h = inv.host("ws1").unwrap();
    assert_eq!(h.password().unwrap().expose_secret(), "S3cret!");
    assert_eq!(h.address, "ws1");
    assert_eq!(h.winrm_port(), 5985);
    assert!(
        !h.vars.contains_key("win_admin") && !h.vars.contains_key("vaulted"),
        "what a password is made of is a secret too: {:?}",
        h.vars.keys()
    );
    assert!(!inv.to_table().contains("S3cret"));
    assert!(!inv.to_explain_text().contains("S3cret"));
}

#[test]
fn other_templates_are_never_a_password() {
    let d = tmpdir("tmpl-err");
    write(
        &d,
        "hosts.ini",
        "[win]\nws1\nws2 ansible_password=plain\n\n[win:vars]\nansible_password=\"{{ lookup('env', 'WIN_PW') }}\"\nansible_user=\"{{ undefined_user }}\"\n",
    );
    let inv = load(&d.join("hosts.ini")).unwrap();
    let ws1 = inv.host("ws1").unwrap();
    assert!(ws1.password().is_none(), "never the literal template");
    let e = ws1
        .unresolved_for(inventory::connection::PASSWORD_VARS)
        .unwrap();
    assert!(matches!(e, TemplateError::Expression { .. }));
    let msg = e.to_string();
    for want in [
        "host ws1",
        "ansible_password",
        "hosts.ini:6",
        "--user",
        "TRUSTSWEEP_PASSWORD",
        "--credentials",
        "!vault",
    ] {
        assert!(msg.contains(want), "{want}: {msg}");
    }
    assert!(
        !msg.contains("WIN_PW"),
        "the expression is not echoed: {msg}"
    );
    let user = ws1
        .unresolved_for(inventory::connection::USER_VARS)
        .unwrap();
    assert!(
        user.to_string().contains("undefined_user is not defined"),
        "{user}"
    );
    // The host's own plain value wins over the group's template.
    let ws2 = inv.host("ws2").unwrap();
    assert_eq!(ws2.password().unwrap().expose_secret(), "plain");
    assert!(ws2
        .unresolved_for(inventory::connection::PASSWORD_VARS)
        .is_none());
    // A credentials file supplies what the template could not.
    let creds = d.join("creds.yml");
    write(
        &d,
        "creds.yml",
        "win:\n  user: admin\n  password: fromfile\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut inv = inv;
    inv.apply_credentials(&inventory::Credentials::load(&creds).unwrap());
    let ws1 = inv.host("ws1").unwrap();
    assert_eq!(ws1.password().unwrap().expose_secret(), "fromfile");
    assert!(ws1
        .unresolved_for(inventory::connection::PASSWORD_VARS)
        .is_none());
    assert_eq!(ws1.origins["ansible_password"].level, Level::Credentials);
}

#[test]
fn a_template_that_resolves_to_a_bad_port_is_an_error_at_its_line() {
    let d = tmpdir("tmpl-port");
    write(
        &d,
        "inv.yml",
        "all:\n  vars:\n    p: seventy\n  hosts:\n    ws1:\n      ansible_port: \"{{ p }}\"\n",
    );
    let e = load(&d.join("inv.yml")).unwrap_err().to_string();
    assert!(e.contains("inv.yml:6:"), "{e}");
    assert!(e.contains("ansible_port must be a number"), "{e}");
}

#[test]
fn bad_vars_files_name_file_and_line() {
    let d = tmpdir("bad-vars");
    write(&d, "hosts", "[web]\nws1\n");
    write(
        &d,
        "group_vars/web.yml",
        "ansible_port: 5986\nansible_winrm_port: nope\n",
    );
    let e = load(&d.join("hosts")).unwrap_err().to_string();
    assert!(e.contains("group_vars/web.yml:2:"), "{e}");
    assert!(e.contains("ansible_winrm_port must be a number"), "{e}");
    write(&d, "group_vars/web.yml", "- a\n- b\n");
    let e = load(&d.join("hosts")).unwrap_err().to_string();
    assert!(e.contains("must be a mapping of variable names"), "{e}");
    write(&d, "group_vars/web.yml", "a: [\n");
    let e = load(&d.join("hosts")).unwrap_err().to_string();
    assert!(
        e.contains("group_vars/web.yml") && e.contains("not valid YAML"),
        "{e}"
    );
    // Files of groups and hosts the inventory does not have are not read, as in Ansible.
    write(&d, "group_vars/web.yml", "a: 1\n");
    write(&d, "group_vars/other.yml", "a: [\n");
    assert!(load(&d.join("hosts")).is_ok());
}

#[test]
fn directories_skip_what_ansible_skips_and_scripts_are_refused() {
    let d = tmpdir("dir");
    write(&d, "inv/a.ini", "[web]\nws1\n");
    write(&d, "inv/b.yml", "web:\n  hosts:\n    ws2:\n");
    write(&d, "inv/notes.md", "# not hosts\n");
    write(&d, "inv/x.retry", "ws9\n");
    write(&d, "inv/old.ini~", "[web]\nws8\n");
    write(&d, "inv/group_vars/web.yml", "tier: 1\n");
    let inv = load(&d.join("inv")).unwrap();
    assert_eq!(common::names(&inv), ["ws1", "ws2"]);
    assert_eq!(inv.host("ws2").unwrap().var("tier").as_deref(), Some("1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = d.join("inv/c.py");
        std::fs::write(&script, "#!/usr/bin/env python3\nprint('{}')\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = load(&d.join("inv")).unwrap_err().to_string();
        assert!(e.contains("inventory script"), "{e}");
        assert!(e.contains("ansible-inventory -i"), "{e}");
        std::fs::remove_file(&script).unwrap();
    }
    write(
        &d,
        "aws_ec2.yml",
        "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
    );
    let e = load(&d.join("aws_ec2.yml")).unwrap_err().to_string();
    assert!(e.contains("aws_ec2.yml:1:"), "{e}");
    assert!(
        e.contains("amazon.aws.aws_ec2") && e.contains("--list | trustsweep"),
        "{e}"
    );
}

#[test]
fn text_sources_and_several_files() {
    let d = tmpdir("text");
    write(&d, "one.ini", "[web]\nws1 ansible_port=5985\n");
    let inv = load_sources(
        &[
            Source::Path(d.join("one.ini")),
            Source::Text {
                name: "<stdin>".into(),
                text: "[web]\nws1 ansible_port=15985\nws2\n".into(),
            },
        ],
        &VaultSecrets::none(),
    )
    .unwrap();
    assert_eq!(common::names(&inv), ["ws1", "ws2"]);
    assert_eq!(
        inv.host("ws1").unwrap().port,
        Some(15985),
        "a later source wins, without the one-file port conflict"
    );
    assert_eq!(inv.sources.len(), 2);
    assert!(inv.source.is_none());
}

#[test]
fn subscripts_and_globs_that_look_like_them() {
    let inv = common::load_text(
        "s.ini",
        "[web]\nws01\nws02\nws03\n\n[db]\ndb1\n\n[prod:children]\nweb\ndb\n",
    )
    .unwrap();
    let lim = |p: &str| {
        common::names(&inv.try_limit(&Pattern::parse(p).unwrap()).unwrap())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(lim("web[0]"), ["ws01"]);
    assert_eq!(lim("web[-1]"), ["ws03"]);
    assert_eq!(lim("web[0:1]"), ["ws01", "ws02"]);
    assert_eq!(lim("web[1:]"), ["ws02", "ws03"]);
    assert_eq!(lim("prod[2:3]"), ["ws03", "db1"]);
    assert_eq!(lim("web[7]"), Vec::<String>::new());
    assert_eq!(lim("web[0]:db"), ["ws01", "db1"]);
    assert_eq!(lim("prod:!web[0]"), ["ws02", "ws03", "db1"]);
    // `ws0` is neither a group nor a host: the term is the glob it was before.
    assert_eq!(lim("ws0[1-2]"), ["ws01", "ws02"]);
}

#[test]
fn ansible_cfg_names_the_default_inventory() {
    let d = tmpdir("cfg");
    let none = |_: &str| None;
    let system = d.join("etc-ansible.cfg");
    assert_eq!(
        default_inventory_in(&none, Some(&d), None, &system).unwrap(),
        None
    );
    write(
        &d,
        "project/ansible.cfg",
        "[defaults]\ninventory = inventory/, extra.ini\n",
    );
    let cwd = d.join("project");
    let found = default_inventory_in(&none, Some(&cwd), None, &system)
        .unwrap()
        .unwrap();
    assert_eq!(
        found.sources,
        [cwd.join("inventory/"), cwd.join("extra.ini")]
    );
    // ANSIBLE_CONFIG wins over ./ansible.cfg; paths are relative to its directory.
    write(&d, "elsewhere/ansible.cfg", "[defaults]\ninventory=hosts\n");
    let env_dir = d.join("elsewhere").display().to_string();
    let env = |k: &str| (k == "ANSIBLE_CONFIG").then(|| env_dir.clone());
    let found = default_inventory_in(&env, Some(&cwd), None, &system)
        .unwrap()
        .unwrap();
    assert_eq!(found.sources, [d.join("elsewhere/hosts")]);
    // ANSIBLE_INVENTORY wins over any file.
    let env = |k: &str| (k == "ANSIBLE_INVENTORY").then(|| "a.yml,b.yml".to_string());
    let found = default_inventory_in(&env, Some(&cwd), None, &system)
        .unwrap()
        .unwrap();
    assert_eq!(found.sources, [cwd.join("a.yml"), cwd.join("b.yml")]);
    assert_eq!(found.from, "ANSIBLE_INVENTORY");
    // ~/.ansible.cfg, when the current directory has none.
    write(
        &d,
        "home/.ansible.cfg",
        "[defaults]\ninventory = ~/inv.ini\n",
    );
    let home = d.join("home");
    let found = default_inventory_in(&none, Some(&d), Some(&home), &system)
        .unwrap()
        .unwrap();
    assert_eq!(found.sources, [home.join("inv.ini")]);
    // A world-writable current directory's ansible.cfg is not read (as Ansible).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            default_inventory_in(&none, Some(&cwd), None, &system).unwrap(),
            None
        );
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
