//! CSV host lists (`inventory::parse_csv`), plain host lists (`parse_list`), and any text
//! through format detection and the parser it picks (`inventory::parse`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = inventory::parse_csv(text, Path::new("hosts.csv"));
    let _ = inventory::parse_list(text, Path::new("hosts.txt"));
    let format = inventory::Format::detect(Path::new("hosts"), text);
    let _ = inventory::parse(text, Path::new("hosts"), format);
});
