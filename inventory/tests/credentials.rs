#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The credentials file: private or refused, per group, never overriding the inventory.

mod common;

use std::path::{Path, PathBuf};

use common::{host, load_text, tmpdir};
use inventory::{Credentials, CredentialsError};
use secrecy::ExposeSecret;

fn write(name: &str, text: &str, mode: u32) -> (PathBuf, PathBuf) {
    let d = tmpdir("creds");
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let _ = mode;
    (d, p)
}

const YAML: &str = "all:
  user: Administrator
  password: 'All-p4ss'
workstations:
  password: \"Ws-p4ss\"
  repair_user: LAB\\svc-repair
  repair_password: R3pair
paris:
  user: paris-admin
";

const KV: &str = "# the same, as KEY=VALUE
user=Administrator
all.password='All-p4ss'
workstations.password=\"Ws-p4ss\"
workstations.repair_user = LAB\\svc-repair
workstations.repair_password=R3pair
paris.user=paris-admin
";

#[cfg(unix)]
#[test]
fn refused_unless_private() {
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
        let (_d, p) = write("creds.yml", YAML, mode);
        let e = Credentials::load(&p).unwrap_err();
        assert!(
            matches!(e, CredentialsError::Permissions { .. }),
            "{mode:o}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "credentials file {} is open to other users (mode {mode:04o}): run `chmod 600 {}` so only you can read it",
                p.display(),
                p.display()
            )
        );
    }
    for mode in [0o600, 0o400] {
        let (_d, p) = write("creds.yml", YAML, mode);
        assert!(Credentials::load(&p).is_ok(), "{mode:o}");
    }
}

#[test]
fn yaml_and_key_value_forms_agree() {
    for (name, text) in [("c.yml", YAML), ("c.env", KV)] {
        let (_d, p) = write(name, text, 0o600);
        let c = Credentials::load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.groups().collect::<Vec<_>>(),
            ["all", "paris", "workstations"],
            "{name}"
        );
        let all = c.get("all").unwrap();
        assert_eq!(all.user.as_deref(), Some("Administrator"));
        assert_eq!(all.password.as_ref().unwrap().expose_secret(), "All-p4ss");
        let ws = c.get("workstations").unwrap();
        assert_eq!(ws.password.as_ref().unwrap().expose_secret(), "Ws-p4ss");
        assert_eq!(ws.repair_user.as_deref(), Some("LAB\\svc-repair"));
        assert_eq!(
            ws.repair_password.as_ref().unwrap().expose_secret(),
            "R3pair"
        );
        assert_eq!(c.source.as_deref(), Some(p.as_path()));
        let dbg = format!("{c:?}");
        for secret in ["All-p4ss", "Ws-p4ss", "R3pair"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
    }
}

#[test]
fn applied_per_group_without_overriding_the_inventory() {
    let mut inv = load_text(
        "inv.ini",
        "[workstations:children]\nparis\n\n[paris]\nws1\nws2 ansible_password=own-pass\n\n[workstations]\nws3\n\n[servers]\nsrv1 ansible_user=svc\n",
    )
    .unwrap();
    let c = Credentials::parse(YAML, Path::new("c.yml")).unwrap();
    inv.apply_credentials(&c);
    let ws1 = host(&inv, "ws1");
    // user from paris (the most specific group that sets it), password from workstations,
    // repair account from workstations.
    assert_eq!(ws1.user().as_deref(), Some("paris-admin"));
    assert_eq!(ws1.password().unwrap().expose_secret(), "Ws-p4ss");
    assert_eq!(ws1.repair_user().as_deref(), Some("LAB\\svc-repair"));
    assert_eq!(ws1.repair_password().unwrap().expose_secret(), "R3pair");
    // The inventory's own value is kept.
    assert_eq!(
        host(&inv, "ws2").password().unwrap().expose_secret(),
        "own-pass"
    );
    assert_eq!(host(&inv, "ws3").user().as_deref(), Some("Administrator"));
    let srv1 = host(&inv, "srv1");
    assert_eq!(srv1.user().as_deref(), Some("svc"));
    assert_eq!(srv1.password().unwrap().expose_secret(), "All-p4ss");
    assert_eq!(srv1.repair_user(), None);
    // A group variable in the inventory wins too.
    let mut inv = load_text(
        "g.ini",
        "[paris]\nws1\n[paris:vars]\nansible_user=from-inventory\n",
    )
    .unwrap();
    c.apply(&mut inv);
    assert_eq!(inv.hosts[0].user().as_deref(), Some("from-inventory"));
}

#[test]
fn malformed_files() {
    let e = |name: &str, text: &str| {
        Credentials::parse(text, Path::new(name))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e("c.yml", "all:\n  user: a\n  pasword: hunter2\n"),
        "c.yml:3: group 'all' has an unknown key 'pasword': use user, password, repair_user or repair_password"
    );
    assert_eq!(
        e("c.env", "all.user=a\nall.pasword=hunter2\n"),
        "c.env:2: unknown key 'pasword': use user, password, repair_user or repair_password"
    );
    assert_eq!(
        e("c.env", "user=a\nhunter2\n"),
        "c.env:2: expected GROUP.KEY=VALUE (like all.user=Administrator) on this line"
    );
    assert_eq!(
        e("c.env", "user=a\nall.user=b\n"),
        "c.env:2: 'all.user' is set twice (first on line 1): keep one"
    );
    assert_eq!(
        e("c.yml", "all: hunter2\n"),
        "c.yml:1: group 'all' must map keys (user, password, repair_user or repair_password) to values"
    );
    // No message shows a value.
    for text in [
        "all:\n  user: a\n  pasword: hunter2\n",
        "user=a\nhunter2\n",
        "all: hunter2\n",
    ] {
        assert!(!e("c", text).contains("hunter2"));
    }
    assert!(Credentials::parse("", Path::new("e")).unwrap().is_empty());
}

#[test]
fn missing_file() {
    let d = tmpdir("nocreds");
    let p = d.join("nope");
    let e = Credentials::load(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot read credentials file {}: ", p.display())),
        "{e}"
    );
}
