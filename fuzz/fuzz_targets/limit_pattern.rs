//! `--limit` patterns (Ansible host patterns: `:`/`,` terms, `&`/`!`, globs, `~regex`,
//! subscripts `web[0:2]`) applied to a small inventory, and inventory host names with
//! ranges and ports (`inventory::hostpattern`).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use inventory::{Inventory, Pattern};
use libfuzzer_sys::fuzz_target;

const INVENTORY: &str = "\
[web]
web[01:03].lab.test
[db]
db-[a:c].lab.test ansible_port=5986
[prod:children]
web
db
[kiosk]
ws0001.lab.test
10.0.0.7
";

fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| {
        inventory::parse_ini(INVENTORY, Path::new("hosts.ini")).expect("the target's inventory")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = inventory::hostpattern::expand_host_pattern(text);
    if let Ok(pattern) = Pattern::parse(text) {
        let inv = inventory();
        let _ = inv.try_limit(&pattern);
        let _ = inv.limit(&pattern);
        for host in &inv.hosts {
            let _ = pattern.matches(host);
        }
    }
});
