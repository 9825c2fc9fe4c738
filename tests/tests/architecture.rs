//! ARCHITECTURE.md names each crate's allowed dependencies on our other crates; the
//! manifests must obey it (issue 13). Reads the "Depends on:" of every crate line and the
//! `[dependencies]` of every member's Cargo.toml.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Our crates by directory, and the dependency keys the manifests use for them.
const OURS: [(&str, &str); 8] = [
    ("winrm", "winrm"),
    ("ad", "ad"),
    ("inventory", "inventory"),
    ("playbooks", "playbooks"),
    ("lab", "lab"),
    ("report", "trustsweep-report"),
    ("cli", "trustsweep"),
    ("tests", "trustsweep-tests"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `crate dir → allowed crate dirs`, from ARCHITECTURE.md's "Depends on:" clauses (up to
/// the first parenthesis, which qualifies test-only edges).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        let Some((dir, _)) = rest.split_once("/`") else {
            continue;
        };
        let Some((_, deps)) = line.rsplit_once("Depends on: ") else {
            panic!("ARCHITECTURE.md: the line for {dir}/ names no dependencies");
        };
        let deps = deps.split(['(', ';']).next().unwrap_or_default();
        let allowed = OURS
            .iter()
            .map(|(d, _)| *d)
            .filter(|d| deps.contains(&format!("`{d}`")))
            .map(String::from)
            .collect();
        out.insert(dir.to_string(), allowed);
    }
    out
}

/// The crates of ours in a manifest's `[dependencies]` (not dev-dependencies).
fn manifest_deps(dir: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps {
            continue;
        }
        let key = line
            .split(['.', '=', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if let Some((d, _)) = OURS.iter().find(|(_, k)| *k == key) {
            out.insert(d.to_string());
        }
    }
    out
}

#[test]
fn manifests_obey_architecture_md() {
    let documented = documented();
    for (dir, _) in OURS {
        let allowed = documented
            .get(dir)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md has no line for {dir}/"));
        let actual = manifest_deps(dir);
        let extra: Vec<_> = actual.difference(allowed).collect();
        assert!(
            extra.is_empty(),
            "{dir}/Cargo.toml depends on {extra:?}, which ARCHITECTURE.md does not allow for {dir}/"
        );
    }
    // The lab answers as Windows would: it must never see the playbooks.
    assert!(!manifest_deps("lab").contains("playbooks"));
    assert!(!manifest_deps("lab").contains("inventory"));
}
