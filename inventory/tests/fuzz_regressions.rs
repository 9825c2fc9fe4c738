//! Inputs the fuzz targets (`fuzz/`, RELIABILITY.md "Fuzzing") found, kept as tests: each
//! is named after its target and holds the offending input (or the few lines that make it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

/// `n` lines of one 100,000-host range each: 4 KB of text.
fn range_lines(n: usize, head: &str) -> String {
    let mut text = String::from(head);
    for i in 0..n {
        text.push_str(&format!("h{i}-[0:99999]\n"));
    }
    text
}

/// fuzz/inventory_ini: each name may make 100,000 hosts, but 300 such lines made 30
/// million (past libFuzzer's 512 MB in two lines under ASAN). Now the inventory stops at
/// 100,000 hosts, with a message naming the line.
#[test]
fn inventory_ini_ranges_are_bounded_per_inventory() {
    let text = range_lines(300, "[g]\n");
    assert!(text.len() < 4500);
    let err = inventory::parse_ini(&text, Path::new("hosts.ini")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("hosts.ini:3: more than 100000 hosts"),
        "{msg}"
    );
    // One full range is still fine.
    let inv = inventory::parse_ini(&range_lines(1, "[g]\n"), Path::new("hosts.ini")).unwrap();
    assert_eq!(inv.hosts.len(), 100_000);
}

/// The same range listed under many groups adds no hosts, only group entries: bounded too.
#[test]
fn inventory_ini_group_entries_are_bounded() {
    let mut text = String::new();
    for g in 0..11 {
        text.push_str(&format!("[g{g}]\nws[0:99999]\n"));
    }
    let err = inventory::parse_ini(&text, Path::new("hosts.ini")).unwrap_err();
    assert!(err.to_string().contains("host-in-group entries"), "{err}");
    // Listing the same hosts in a second group is not refused.
    let inv =
        inventory::parse_ini("[a]\nws[0:99999]\n[b]\nws[0:99999]\n", Path::new("h.ini")).unwrap();
    assert_eq!(inv.hosts.len(), 100_000);
}

/// fuzz/inventory_csv (plain lists) and fuzz/inventory_yaml: the same bound.
#[test]
fn inventory_list_and_yaml_ranges_are_bounded() {
    let err = inventory::parse_list(&range_lines(3, ""), Path::new("hosts.txt")).unwrap_err();
    assert!(err.to_string().contains("more than 100000 hosts"), "{err}");
    let mut yaml = String::from("all:\n  hosts:\n");
    for i in 0..3 {
        yaml.push_str(&format!("    h{i}-[0:99999]:\n"));
    }
    let err = inventory::parse_yaml(&yaml, Path::new("hosts.yml")).unwrap_err();
    assert!(err.to_string().contains("more than 100000 hosts"), "{err}");
}
