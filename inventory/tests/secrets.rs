#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! No secret reaches Debug, display rows, the table or JSON, in any format.

mod common;

use common::{host, load_text};
use inventory::{Credentials, Pattern, MASK};
use secrecy::ExposeSecret;

const SECRETS: [&str; 5] = [
    "Adm1n-S3cret",
    "R3pair-S3cret",
    "Csv-S3cret",
    "Become-S3cret",
    "Cred-S3cret",
];

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows {s}:\n{text}");
    }
}

#[test]
fn secrets_are_masked_everywhere() {
    let yaml = load_text(
        "s.yml",
        "all:\n  vars:\n    trustsweep_repair_user: LAB\\svc\n    trustsweep_repair_password: R3pair-S3cret\n  hosts:\n    ws1:\n      ansible_user: Administrator\n      ansible_password: Adm1n-S3cret\n      ansible_become_pass: Become-S3cret\n",
    )
    .unwrap();
    let ini = load_text("s.ini", "[w]\nws1 ansible_user=Administrator ansible_password=Adm1n-S3cret\n[w:vars]\ntrustsweep_repair_password=R3pair-S3cret\n").unwrap();
    let csv = load_text(
        "s.csv",
        "name,ansible_password,Password\nws1,Adm1n-S3cret,Csv-S3cret\n",
    )
    .unwrap();
    for inv in [yaml, ini, csv] {
        let h = &inv.hosts[0];
        assert!(!h.secrets.is_empty());
        for (k, v) in &h.secrets {
            assert!(SECRETS.contains(&v.expose_secret()), "{k}");
            assert!(!h.vars.contains_key(k), "{k} leaked into vars");
        }
        assert_clean("Debug", &format!("{inv:?}"));
        assert_clean("Debug (pretty)", &format!("{inv:#?}"));
        let rows = inv.to_display_rows();
        assert_clean("rows", &format!("{rows:?}"));
        for k in h.secrets.keys() {
            assert_eq!(rows[0].vars.get(k).map(String::as_str), Some(MASK), "{k}");
        }
        let table = inv.to_table();
        assert_clean("table", &table);
        assert!(table.contains(MASK), "{table}");
        let json = serde_json::to_string(&inv).unwrap();
        assert_clean("JSON", &json);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["hosts"][0]["vars"]["ansible_password"], MASK);
        assert_clean("JSON of rows", &serde_json::to_string(&rows).unwrap());
        assert_clean(
            "limited",
            &format!("{:?}", inv.limit(&Pattern::parse("all").unwrap())),
        );
    }
}

#[test]
fn credentials_are_masked_too() {
    let mut inv = load_text("c.ini", "[w]\nws1\n").unwrap();
    let c = Credentials::parse(
        "all:\n  user: admin\n  password: Cred-S3cret\n",
        std::path::Path::new("c.yml"),
    )
    .unwrap();
    assert_clean("credentials Debug", &format!("{c:?} {:?}", c.get("all")));
    inv.apply_credentials(&c);
    assert_eq!(
        host(&inv, "ws1").password().unwrap().expose_secret(),
        "Cred-S3cret"
    );
    assert_clean("Debug", &format!("{inv:?}"));
    assert_clean("JSON", &serde_json::to_string(&inv).unwrap());
    assert_clean("table", &inv.to_table());
}

#[test]
fn errors_do_not_echo_a_quoted_password() {
    let e = common::load_err("q.ini", "[w]\nws1 ansible_password=\"Adm1n-S3cret\n");
    assert_clean("error", &e);
}

#[test]
fn table_and_json_shape() {
    let inv = load_text(
        "t.ini",
        "[web]\nws1 ansible_host=10.0.0.1 ansible_port=5986 ansible_password=Adm1n-S3cret note=\"two words\"\nws2\n",
    )
    .unwrap();
    let table = inv.to_table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "NAME  ADDRESS   PORT  GROUPS  VARS");
    assert_eq!(lines[1], "ws1   10.0.0.1  5986  web     ansible_host=10.0.0.1 ansible_password=******** ansible_port=5986 note=\"two words\"");
    assert_eq!(lines[2], "ws2   ws2       -     web");
    let v = serde_json::to_value(&inv).unwrap();
    assert_eq!(
        v["hosts"][0],
        serde_json::json!({
            "name": "ws1",
            "address": "10.0.0.1",
            "port": 5986,
            "groups": ["all", "web"],
            "vars": {"ansible_host": "10.0.0.1", "ansible_password": MASK, "ansible_port": 5986, "note": "two words"}
        })
    );
    assert!(v["source"].as_str().unwrap().ends_with("t.ini"));
}
