//! Ansible YAML inventories (`inventory::parse_yaml`) and credentials files
//! (`inventory::Credentials::parse`, YAML or `key=value`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inv) = inventory::parse_yaml(text, Path::new("hosts.yml")) {
        let _ = inv.group_names();
    }
    if let Ok(creds) = inventory::Credentials::parse(text, Path::new("credentials.yml")) {
        let _ = creds.groups().count();
    }
});
