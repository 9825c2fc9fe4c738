//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use inventory::{Host, Inventory};

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh private directory for one test.
pub fn tmpdir(tag: &str) -> PathBuf {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("inventory-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `text` to `name` in a fresh directory and loads it.
pub fn load_text(name: &str, text: &str) -> Result<Inventory, inventory::InventoryError> {
    let d = tmpdir("load");
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    inventory::load(&p)
}

/// The error message for `text` loaded as `name`, with the temporary directory cut off so
/// it reads `name:line: message`.
pub fn load_err(name: &str, text: &str) -> String {
    let d = tmpdir("err");
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    let e = inventory::load(&p).expect_err("should fail").to_string();
    e.replace(&format!("{}/", d.display()), "")
}

pub fn names(inv: &Inventory) -> Vec<&str> {
    inv.hosts.iter().map(|h| h.name.as_str()).collect()
}

pub fn host<'a>(inv: &'a Inventory, name: &str) -> &'a Host {
    inv.host(name)
        .unwrap_or_else(|| panic!("no host {name} in {:?}", names(inv)))
}

pub fn in_group<'a>(inv: &'a Inventory, group: &str) -> Vec<&'a str> {
    inv.hosts
        .iter()
        .filter(|h| h.in_group(group))
        .map(|h| h.name.as_str())
        .collect()
}

pub fn path(p: &str) -> &Path {
    Path::new(p)
}
