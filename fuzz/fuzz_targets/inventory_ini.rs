//! Ansible INI inventories (`inventory::parse_ini`, ranges and `:vars`/`:children`
//! sections included), and the format detection that picks the parser.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("hosts.ini");
    if let Ok(inv) = inventory::parse_ini(text, path) {
        let _ = inv.group_names();
    }
    let _ = inventory::Format::detect(Path::new("hosts"), text);
});
