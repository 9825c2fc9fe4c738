//! Values read from Active Directory over LDAP (`trustsweep-ad`): binary `objectSid`
//! (MS-DTYP 2.4.2), FILETIMEs (`pwdLastSet`, LAPS expiry), Windows LAPS' `msLAPS-Password`
//! JSON, DNs and RDNs with escapes (RFC 4514), and bind diagnostics.
#![no_main]

use ad::fuzzing::{bind_failure_reason, parse_windows_laps, rdn_parts, split_dn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ad::decode_sid(data);
    if let Some(bytes) = data.first_chunk::<8>() {
        let filetime = u64::from_le_bytes(*bytes);
        let _ = ad::filetime_display(filetime);
        let _ = ad::filetime_to_system_time(filetime);
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_windows_laps("WS0001", &text, Some(133_000_000_000_000_000));
    for rdn in split_dn(&text) {
        let _ = rdn_parts(&rdn);
    }
    let _ = ad::parent_dn(&text);
    for ou in ad::ou_path(&text) {
        let _ = ad::group_name(&ou);
    }
    let _ = bind_failure_reason(&text);
});
