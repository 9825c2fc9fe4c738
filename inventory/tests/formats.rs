#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The four formats, their detection, ranges and variable precedence.

mod common;

use std::path::Path;

use common::{host, in_group, load_text, names};
use inventory::{Format, Host};
use secrecy::ExposeSecret;
use serde_json::json;

#[test]
fn detection() {
    let d = |name: &str, text: &str| Format::detect(Path::new(name), text);
    assert_eq!(d("x.yml", "ws1\n"), Format::Yaml);
    assert_eq!(d("x.YAML", ""), Format::Yaml);
    assert_eq!(d("x.csv", "ws1\n"), Format::Csv);
    assert_eq!(d("x.ini", "all:\n  hosts:\n"), Format::Ini);
    assert_eq!(d("hosts", "# c\nall:\n  hosts:\n"), Format::Yaml);
    assert_eq!(d("hosts", "---\nall:\n"), Format::Yaml);
    assert_eq!(d("hosts", "all:\n"), Format::Yaml);
    assert_eq!(
        d("hosts", "webservers:   # comment\n  hosts:\n"),
        Format::Yaml
    );
    assert_eq!(d("hosts", "ws1:\nws2\n"), Format::List);
    assert_eq!(d("hosts", "; c\n[web]\nws1\n"), Format::Ini);
    assert_eq!(d("hosts", "ws1 ansible_host=10.0.0.1\n"), Format::Ini);
    assert_eq!(d("hosts", "ws1 tags=\"a,b\"\n"), Format::Ini);
    assert_eq!(d("hosts.txt", "name,address\nws1,10.0.0.1\n"), Format::Csv);
    assert_eq!(d("hosts.txt", "ws1\nws2:5986\n# c\n"), Format::List);
    assert_eq!(d("hosts", ""), Format::List);
}

#[test]
fn plain_list() {
    let inv = load_text(
        "hosts.txt",
        "\u{feff}# workstations\r\nws0001.lab.test\r\nws0002.lab.test:5986   # https\r\n\r\n  10.0.0.7\r\n[fe80::1]:5985\r\nfe80::2\r\nws[08:10].lab.test\r\nws0001.lab.test\r\n",
    )
    .unwrap();
    assert_eq!(
        names(&inv),
        [
            "ws0001.lab.test",
            "ws0002.lab.test",
            "10.0.0.7",
            "fe80::1",
            "fe80::2",
            "ws08.lab.test",
            "ws09.lab.test",
            "ws10.lab.test"
        ]
    );
    assert_eq!(host(&inv, "ws0002.lab.test").port, Some(5986));
    assert_eq!(host(&inv, "fe80::1").port, Some(5985));
    assert_eq!(host(&inv, "fe80::2").port, None);
    assert!(inv.hosts.iter().all(|h| h.groups == ["all", "ungrouped"]));
    assert_eq!(
        inv.source
            .as_deref()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str()),
        Some("hosts.txt")
    );
}

#[test]
fn csv() {
    let inv = load_text(
        "fleet.csv",
        "Name, Address ,port,groups,OS,ansible_user,password\n# a comment\nws1,10.0.0.1,5985,workstations;floor2,Windows 11,Administrator,s3cret\nws2,,5986,workstations,\"Windows 10, LTSC\",,\nsrv1,10.0.1.1,,,Windows Server 2022,,\n\nws1,,,pilot,,,\n",
    )
    .unwrap();
    assert_eq!(names(&inv), ["ws1", "ws2", "srv1"]);
    let ws1 = host(&inv, "ws1");
    assert_eq!((ws1.address.as_str(), ws1.port), ("10.0.0.1", Some(5985)));
    assert_eq!(ws1.groups, ["all", "floor2", "pilot", "workstations"]);
    assert_eq!(ws1.var("OS").as_deref(), Some("Windows 11"));
    assert_eq!(ws1.user().as_deref(), Some("Administrator"));
    // A `password` column is a secret: not among vars.
    assert_eq!(ws1.secret("password").unwrap().expose_secret(), "s3cret");
    assert!(!ws1.vars.contains_key("password"));
    let ws2 = host(&inv, "ws2");
    assert_eq!((ws2.address.as_str(), ws2.port), ("ws2", Some(5986)));
    assert_eq!(ws2.var("OS").as_deref(), Some("Windows 10, LTSC"));
    assert_eq!(ws2.user(), None);
    assert_eq!(host(&inv, "srv1").groups, ["all", "ungrouped"]);
    // ansible_host / ansible_port spellings work too.
    let inv = load_text("b.csv", "ansible_host,name,ansible_port\n10.1.1.1,a,5986\n").unwrap();
    assert_eq!(
        (inv.hosts[0].address.as_str(), inv.hosts[0].port),
        ("10.1.1.1", Some(5986))
    );
}

#[test]
fn ranges() {
    let inv = load_text("r.ini", "[ws]\nws[001:120].lab.test\n").unwrap();
    assert_eq!(inv.hosts.len(), 120);
    assert_eq!(inv.hosts[0].name, "ws001.lab.test");
    assert_eq!(inv.hosts[119].name, "ws120.lab.test");
    let inv = load_text("r2.ini", "[ws]\nws[8:11]\n").unwrap();
    assert_eq!(names(&inv), ["ws8", "ws9", "ws10", "ws11"]);
    let inv = load_text("r3.ini", "[ws]\nrack[a:c]-[1:2]\n").unwrap();
    assert_eq!(
        names(&inv),
        ["racka-1", "racka-2", "rackb-1", "rackb-2", "rackc-1", "rackc-2"]
    );
    let inv = load_text("r4.ini", "[ws]\nx[a:g:3]\nw[:2]\n").unwrap();
    assert_eq!(names(&inv), ["xa", "xd", "xg", "w0", "w1", "w2"]);
    // Uppercase comes after lowercase, so [Y:b] runs backwards.
    assert!(load_text("r5.ini", "[ws]\nz[Y:b]\n").is_err());
    // Letters run a..z then A..Z, as Python's string.ascii_letters.
    let inv = load_text("r6.ini", "[ws]\nz[y:B]\n").unwrap();
    assert_eq!(names(&inv), ["zy", "zz", "zA", "zB"]);
    // With a port and variables: every expanded host gets them.
    let inv = load_text("r7.ini", "[ws]\nws[1:3]:5986 ansible_winrm_scheme=https\n").unwrap();
    assert!(inv
        .hosts
        .iter()
        .all(|h| h.port == Some(5986) && h.scheme().as_deref() == Some("https")));
    // YAML keys take ranges and ports too.
    let inv = load_text(
        "r.yml",
        "all:\n  hosts:\n    'db-[a:b]:5986':\n      role: db\n",
    )
    .unwrap();
    assert_eq!(names(&inv), ["db-a", "db-b"]);
    assert!(inv
        .hosts
        .iter()
        .all(|h| h.port == Some(5986) && h.var("role").as_deref() == Some("db")));
}

#[test]
fn precedence_all_parent_child_host() {
    let ini = "[all:vars]\nlevel=all\nfrom_all=1\n\n[europe:children]\nparis\n\n[europe:vars]\nlevel=parent\nfrom_parent=1\n\n[paris]\nws1\nws2 level=host\n\n[paris:vars]\nlevel=child\n";
    let inv = load_text("p.ini", ini).unwrap();
    let (ws1, ws2) = (host(&inv, "ws1"), host(&inv, "ws2"));
    assert_eq!(ws1.var("level").as_deref(), Some("child"));
    assert_eq!(ws2.var("level").as_deref(), Some("host"));
    assert_eq!(ws1.var("from_all").as_deref(), Some("1"));
    assert_eq!(ws1.var("from_parent").as_deref(), Some("1"));
    assert_eq!(ws1.groups, ["all", "europe", "paris"]);

    // Order in the file does not matter: a child defined before its parent still wins,
    // and depth counts the longest path from all.
    let yaml = "paris:\n  vars:\n    level: child\n  hosts:\n    ws1:\nzone:\n  vars:\n    level: zone\n  children:\n    paris:\nearth:\n  vars:\n    level: top\n  children:\n    zone:\n";
    let inv = load_text("o.yml", yaml).unwrap();
    assert_eq!(host(&inv, "ws1").var("level").as_deref(), Some("child"));
    assert_eq!(host(&inv, "ws1").groups, ["all", "earth", "zone", "paris"]);
}

#[test]
fn a_host_in_several_groups_merges() {
    let yaml = "all:
  vars:
    ansible_user: Administrator
  children:
    workstations:
      vars:
        ansible_port: 5985
        site: unknown
      hosts:
        ws1:
          ansible_host: 10.0.0.1
    floor2:
      vars:
        site: floor2
        printer: p2
      hosts:
        ws1:
          asset: A-17
    pilot:
      hosts:
        ws1:
          asset: A-18
";
    let inv = load_text("m.yml", yaml).unwrap();
    assert_eq!(inv.hosts.len(), 1);
    let h = &inv.hosts[0];
    assert_eq!((h.address.as_str(), h.port), ("10.0.0.1", Some(5985)));
    // Same depth: by name, later names win (workstations > floor2).
    assert_eq!(h.var("site").as_deref(), Some("unknown"));
    assert_eq!(h.var("printer").as_deref(), Some("p2"));
    // Host variables: the later definition wins.
    assert_eq!(h.var("asset").as_deref(), Some("A-18"));
    assert_eq!(h.groups, ["all", "floor2", "pilot", "workstations"]);
    assert_eq!(in_group(&inv, "ungrouped"), Vec::<&str>::new());
}

#[test]
fn connection_variables() {
    let ini = "[dc:vars]\nansible_user=LAB\\\\admin\nansible_password='p@ss w0rd'\nansible_winrm_transport=ntlm\nansible_winrm_scheme=HTTPS\nansible_winrm_server_cert_validation=ignore\ntrustsweep_repair_user=LAB\\\\svc-repair\ntrustsweep_repair_password=\"R3pair#1\"\n\n[dc]\ndc01.lab.test ansible_host=10.0.0.10 ansible_port=5986\n";
    let inv = load_text("c.ini", ini).unwrap();
    let h = host(&inv, "dc01.lab.test");
    assert_eq!(h.user().as_deref(), Some("LAB\\\\admin"));
    assert_eq!(h.password().unwrap().expose_secret(), "p@ss w0rd");
    assert_eq!(h.transport().as_deref(), Some("ntlm"));
    assert_eq!(h.scheme().as_deref(), Some("https"));
    assert_eq!(h.cert_validation(), Some(false));
    assert_eq!(h.repair_user().as_deref(), Some("LAB\\\\svc-repair"));
    assert_eq!(h.repair_password().unwrap().expose_secret(), "R3pair#1");
    assert_eq!((h.address.as_str(), h.port), ("10.0.0.10", Some(5986)));
    assert!(
        !h.vars.contains_key("ansible_password")
            && !h.vars.contains_key("trustsweep_repair_password")
    );
    // On a host line a backslash escapes, as in a shell: quote Windows account names.
    let inv = load_text(
        "d.ini",
        "[w]\nws1 ansible_user='LAB\\admin' ansible_password=\"a b\"\n",
    )
    .unwrap();
    assert_eq!(inv.hosts[0].user().as_deref(), Some("LAB\\admin"));
    assert_eq!(inv.hosts[0].password().unwrap().expose_secret(), "a b");
}

#[test]
fn host_new() {
    let h = Host::new("ws1");
    assert_eq!(
        (h.name.as_str(), h.address.as_str(), h.port),
        ("ws1", "ws1", None)
    );
    assert_eq!(h.groups, ["all", "ungrouped"]);
    assert_eq!(h.vars.get("x"), None::<&serde_json::Value>);
    let _ = json!(null);
}
