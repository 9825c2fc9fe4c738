//! SOAP responses and faults a WinRM server sends (MS-WSMV 3.1.4, 2.2.4.x; WS-Management
//! faults, MS-WSMV 2.2.5): `parse_response`, `parse_fault`, and the `xs:duration` values
//! they carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winrm::soap::{parse_duration, parse_fault, parse_response};

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    let _ = parse_fault(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_duration(text);
    }
});
