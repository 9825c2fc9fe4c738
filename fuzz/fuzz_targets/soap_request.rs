//! SOAP requests a WinRM client sends (the listener side, `winrm::server` and the lab):
//! `parse_request` and `peek_message_id` (MS-WSMV 3.1.4, WS-Addressing headers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::soap::{parse_request, peek_message_id};

fuzz_target!(|data: &[u8]| {
    let _ = peek_message_id(data);
    if let Ok(req) = parse_request(data) {
        let _ = req.option("WINRS_CODEPAGE");
        let _ = req.selector("ShellId");
    }
});
